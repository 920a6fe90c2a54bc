//! The subcommands of `omi-server` (API.md §8). `--json` prints exactly one JSON value on stdout.

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::app;
use crate::config::{
    Cli, Command, ExportFormat, ImportCommand, IngestCommand, KeysCommand, Settings,
    SummariesCommand, UsersCommand, WebhooksCommand,
};
use crate::domain::credentials::{Secret, generate_account_token};
use crate::domain::daily_summaries::parse_day;
use crate::domain::ids::new_id;
use crate::domain::keys::CreatedDevApiKey;
use crate::domain::scope::ScopeSet;
use crate::domain::time;
use crate::domain::users::{BOOTSTRAP_DISPLAY_NAME, BOOTSTRAP_USER_NAME, User, parse_user_name};
use crate::error::ApiError;
use crate::processing::insights::parse_timezone;
use crate::service::daily_summaries::{self, Generated};
use crate::service::keys::{self, KeyError};
use crate::state;
use crate::store::{self, NewUser, Store, StoreError};

/// A failure reported to the operator as `error: ...` with exit code 1.
#[derive(Debug)]
pub struct CliError(String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(error: E) -> Self {
        CliError(format!("{error:#}"))
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let outcome = match cli.command {
        Command::Serve => serve(cli.settings).await,
        Command::Migrate => migrate(&cli.settings).await,
        Command::Users(command) => users(&cli.settings, command).await,
        Command::Keys(command) => keys_command(&cli.settings, command).await,
        Command::Summaries(command) => summaries(&cli.settings, command).await,
        Command::Webhooks(command) => webhooks_command(&cli.settings, command).await,
        Command::Openapi => {
            println!("{}", crate::openapi::render(app::openapi_document()));
            Ok(())
        }
        Command::Mcp { stdio: _ } => mcp_stdio(cli.settings).await,
        Command::Import(command) => import_command(&cli.settings, command).await,
        Command::Ingest(command) => ingest_command(&cli.settings, command).await,
        Command::Backup { out } => backup(&cli.settings, &out).await,
        Command::Export { user, format, out } => {
            export_command(&cli.settings, &user, format, &out).await
        }
        Command::Restore { from } => restore(&cli.settings, &from).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), CliError> {
    let listen = settings.listen;
    let state = state::build_state(settings).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| CliError(format!("cannot listen on {listen}: {error}")))?;
    let metrics_listener =
        match state.settings.metrics_listen.address() {
            Some(address) => Some(tokio::net::TcpListener::bind(address).await.map_err(
                |error| {
                    CliError(format!(
                        "cannot listen for metrics on {address} (OMI_METRICS_LISTEN): {error}"
                    ))
                },
            )?),
            None => None,
        };
    if let Some(secrets) = bootstrap_if_empty(&*state.store).await? {
        print_bootstrap(&secrets, listener.local_addr()?);
    }
    app::serve_with_metrics(state, listener, metrics_listener, shutdown_signal()).await?;
    Ok(())
}

/// Sets what runs once after everything has started, just before `serve` takes the first
/// request, and once more after the first conversation is processed, when the processing rules
/// have been compiled. The binary drops the code that only starting up and compiling ran from its
/// memory there (src/main.rs).
pub fn on_serving(hook: fn()) {
    app::on_serving(hook);
    crate::processing::after_first_conversation(hook);
}

/// An address range of the process.
#[derive(Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: usize,
    pub end: usize,
}

/// The mappings of `path` in a `/proc/<pid>/smaps` text that are not writable and hold no
/// anonymous (copied-on-write) page: dropping them from memory loses nothing, the next access
/// maps the same bytes from the page cache again.
pub fn file_backed_clean_mappings(smaps: &str, path: &str) -> Vec<Mapping> {
    let mut found = Vec::new();
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            let permissions = fields.next().unwrap_or_default();
            let named = fields.nth(3).is_some_and(|name| name == path);
            current = (named && permissions.starts_with("r-")).then_some(Mapping { start, end });
        } else if first == "Anonymous:"
            && let Some(mapping) = current.take()
            && fields.next() == Some("0")
        {
            found.push(mapping);
        }
    }
    found
}

/// The secrets created for the first user of an empty database, shown once.
pub struct BootstrapSecrets {
    pub account_token: Secret,
    pub key: CreatedDevApiKey,
}

/// On a database with no users, creates `default` with an all-scope key. A replica that loses
/// the race to another one finds the name taken and prints nothing.
pub async fn bootstrap_if_empty(store: &dyn Store) -> Result<Option<BootstrapSecrets>, CliError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (user, account_token) =
        match create_user(store, BOOTSTRAP_USER_NAME, Some(BOOTSTRAP_DISPLAY_NAME)).await {
            Ok(created) => created,
            Err(StoreError::Conflict(_)) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
    let all_scopes: Vec<String> = ScopeSet::all()
        .names()
        .into_iter()
        .map(String::from)
        .collect();
    let key = keys::create_key(store, &user.id, "default", Some(&all_scopes))
        .await
        .map_err(key_failure)?;
    Ok(Some(BootstrapSecrets { account_token, key }))
}

fn print_bootstrap(secrets: &BootstrapSecrets, listen: std::net::SocketAddr) {
    let host = if listen.ip().is_unspecified() {
        format!("127.0.0.1:{}", listen.port())
    } else {
        listen.to_string()
    };
    let key = secrets.key.raw_key.expose();
    println!(
        "Created user '{BOOTSTRAP_USER_NAME}' on an empty database. These secrets are shown only once:"
    );
    println!(
        "  account token (manages keys): {}",
        secrets.account_token.expose()
    );
    println!("  developer key (all scopes):   {key}");
    println!("Try it:");
    println!(
        "  curl -H \"Authorization: Bearer {key}\" \"http://{host}/v1/dev/user/memories?limit=5\""
    );
    println!("Or open http://{host}/console and sign in with the account token.");
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// The key comes from the environment only, so it never shows in a process listing.
async fn mcp_stdio(settings: Settings) -> Result<(), CliError> {
    let key = std::env::var("OMI_API_KEY")
        .ok()
        .map(|key| key.trim().to_string())
        .filter(|key| !key.is_empty())
        .ok_or_else(|| CliError("OMI_API_KEY must hold a developer key (omi_dev_...)".into()))?;
    let state = state::build_state(settings).await?;
    let store = state.store.clone();
    let outcome = crate::mcp::serve_stdio(app::api_router(state), Secret::new(key)).await;
    store.close().await?;
    Ok(outcome?)
}

/// The SQLite file behind the settings; PostgreSQL has its own tools.
fn sqlite_file(settings: &Settings) -> Result<std::path::PathBuf, CliError> {
    let url = settings.database_url.expose();
    if !url.starts_with("sqlite:") {
        return Err(CliError(
            "backup and restore handle the SQLite database; for PostgreSQL use pg_dump and \
             pg_restore (README, \"Backups\")"
                .into(),
        ));
    }
    Ok(store::sqlite::path_from_url(url)?)
}

async fn backup(settings: &Settings, out: &std::path::Path) -> Result<(), CliError> {
    let database = sqlite_file(settings)?;
    eprintln!("backing up {} to {} ...", database.display(), out.display());
    let (database, out) = (database.clone(), out.to_path_buf());
    let report =
        tokio::task::spawn_blocking(move || store::sqlite::backup::backup(&database, &out))
            .await
            .map_err(|error| CliError(error.to_string()))??;
    println!(
        "backup written: {} ({} bytes, schema version {}, integrity ok) in {:.1} s",
        report.path.display(),
        report.bytes,
        report.schema_version,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

async fn restore(settings: &Settings, from: &std::path::Path) -> Result<(), CliError> {
    let database = sqlite_file(settings)?;
    eprintln!(
        "restoring {} into {} ...",
        from.display(),
        database.display()
    );
    let (database, from) = (database.clone(), from.to_path_buf());
    let (report, kept) =
        tokio::task::spawn_blocking(move || store::sqlite::backup::restore(&from, &database))
            .await
            .map_err(|error| CliError(error.to_string()))??;
    if let Some(kept) = kept {
        println!("the replaced database is kept as {}", kept.display());
    }
    println!(
        "restored: {} ({} bytes, schema version {}, integrity ok) in {:.1} s; `omi-server serve` \
         applies any newer migrations",
        report.path.display(),
        report.bytes,
        report.schema_version,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, CliError> {
    Ok(store::open(settings).await?)
}

async fn migrate(settings: &Settings) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    store.close().await?;
    eprintln!("database is up to date");
    Ok(())
}

/// Creates a user with a fresh account token.
pub async fn create_user(
    store: &dyn Store,
    name: &str,
    display_name: Option<&str>,
) -> Result<(User, Secret), StoreError> {
    let name = parse_user_name(name).map_err(StoreError::Conflict)?;
    let display_name = display_name
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(&name)
        .to_string();
    let token = generate_account_token();
    let user = store
        .create_user(NewUser {
            id: new_id(),
            name,
            display_name,
            token_hash: token.hash,
            created_at: time::now(),
        })
        .await?;
    Ok((user, token.raw))
}

fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("output serializes")
    );
}

async fn users(settings: &Settings, command: UsersCommand) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    match command {
        UsersCommand::Create {
            name,
            display_name,
            json,
        } => {
            let (user, token) = create_user(&*store, &name, display_name.as_deref()).await?;
            if json {
                print_json(&json!({
                    "id": user.id,
                    "name": user.name,
                    "display_name": user.display_name,
                    "account_token": token.expose(),
                }));
            } else {
                println!("Created user '{}' (id {}).", user.name, user.id);
                println!(
                    "Account token (shown only once; it manages this user's keys): {}",
                    token.expose()
                );
            }
        }
        UsersCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                print_json(&users);
            } else {
                println!("{:<36}  {:<24}  DISPLAY NAME", "ID", "NAME");
                for user in users {
                    println!("{:<36}  {:<24}  {}", user.id, user.name, user.display_name);
                }
            }
        }
        UsersCommand::SetTimezone { user, timezone } => {
            let user = find_user(&*store, &user).await?;
            let tz = parse_timezone(&timezone).ok_or_else(|| {
                CliError(format!(
                    "unknown timezone '{}': use an IANA name such as Europe/Berlin or UTC",
                    timezone.trim()
                ))
            })?;
            store.set_user_timezone(&user.id, tz.name()).await?;
            println!("User '{}' now counts days in {}.", user.name, tz.name());
        }
    }
    store.close().await?;
    Ok(())
}

async fn find_user(store: &dyn Store, id_or_name: &str) -> Result<User, CliError> {
    store
        .find_user(id_or_name)
        .await?
        .ok_or_else(|| CliError(format!("no user with id or name '{id_or_name}'")))
}

fn print_created_key(created: &CreatedDevApiKey, json: bool) {
    if json {
        print_json(created);
    } else {
        println!(
            "Key '{}' (id {}) with scopes [{}].",
            created.info.name,
            created.info.id,
            created.info.scopes.names().join(", ")
        );
        println!("Raw key (shown only once): {}", created.raw_key.expose());
    }
}

async fn keys_command(settings: &Settings, command: KeysCommand) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    match command {
        KeysCommand::Create {
            user,
            name,
            scopes,
            json,
        } => {
            let user = find_user(&*store, &user).await?;
            let scopes: Option<Vec<String>> = scopes.map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|scope| !scope.is_empty())
                    .map(String::from)
                    .collect()
            });
            let created = keys::create_key(&*store, &user.id, &name, scopes.as_deref())
                .await
                .map_err(key_failure)?;
            print_created_key(&created, json);
        }
        KeysCommand::List { user, json } => {
            let user = find_user(&*store, &user).await?;
            let list = keys::list_keys(&*store, &user.id)
                .await
                .map_err(key_failure)?;
            if json {
                print_json(&list);
            } else {
                println!("{:<36}  {:<20}  {:<22}  SCOPES", "ID", "NAME", "PREFIX");
                for key in list {
                    println!(
                        "{:<36}  {:<20}  {:<22}  {}",
                        key.id,
                        key.name,
                        key.key_prefix,
                        key.scopes.names().join(",")
                    );
                }
            }
        }
        KeysCommand::Revoke { key_id } => {
            let owner = key_owner(&*store, &key_id).await?;
            keys::revoke_key(&*store, &owner, &key_id)
                .await
                .map_err(key_failure)?;
            println!("Revoked key {key_id}.");
        }
        KeysCommand::Rotate { key_id, json } => {
            let owner = key_owner(&*store, &key_id).await?;
            let rotated = keys::rotate_key(&*store, &owner, &key_id)
                .await
                .map_err(key_failure)?;
            print_created_key(&rotated, json);
        }
    }
    store.close().await?;
    Ok(())
}

async fn summaries(settings: &Settings, command: SummariesCommand) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    match command {
        SummariesCommand::Generate { user, date, json } => {
            let user = find_user(&*store, &user).await?;
            let day = parse_day(&date)
                .ok_or_else(|| CliError(format!("--date must be YYYY-MM-DD, not '{date}'")))?;
            let tz = daily_summaries::user_timezone(&*store, &user.id).await?;
            // With an LLM configured, the model writes the summary's words, as the scheduler's.
            let outbound = crate::outbound::Outbound::from_settings(settings)?;
            let processor = state::processor(settings, &outbound)?;
            let outcome =
                daily_summaries::generate_day(&*store, &*processor, &user.id, tz, day, time::now())
                    .await?;
            match outcome {
                Generated::Created(summary) if json => print_json(&summary),
                Generated::Created(summary) => println!(
                    "Created the summary of {day} for '{}' (id {}): {}",
                    user.name, summary.id, summary.headline
                ),
                Generated::Exists => println!("{day} already has a summary for '{}'.", user.name),
                Generated::NoConversations => println!(
                    "No summary: '{}' has no kept conversation on {day} ({}).",
                    user.name,
                    tz.name()
                ),
            }
        }
    }
    store.close().await?;
    Ok(())
}

async fn ingest_command(settings: &Settings, command: IngestCommand) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    match command {
        IngestCommand::Status { limit, json } => {
            let summary = store.inbox_summary(limit.clamp(1, 10_000)).await?;
            if json {
                print_json(&summary);
            } else {
                println!(
                    "Inbox: {} pending, {} processed, {} failed.",
                    summary.pending, summary.done, summary.failed
                );
                for stuck in &summary.stuck {
                    println!(
                        "  #{} {} for user {} received {} ({}, {} attempts): {}",
                        stuck.seq,
                        stuck.kind,
                        stuck.user_id,
                        time::format(&stuck.received_at),
                        stuck.state,
                        stuck.attempts,
                        stuck.error.as_deref().unwrap_or("-")
                    );
                }
            }
        }
    }
    store.close().await?;
    Ok(())
}

async fn webhooks_command(settings: &Settings, command: WebhooksCommand) -> Result<(), CliError> {
    use crate::service::webhooks::{self as hooks, SubscriptionRequest, WebhookError};
    let store = open_store(settings).await?;
    let failure = |error: WebhookError| match error {
        WebhookError::Store(cause) => CliError(format!("{cause:#}")),
        refused => CliError(ApiError::from(refused).detail().to_string()),
    };
    let print_secret = |created: hooks::WithSecret, json: bool| {
        if json {
            print_json(&serde_json::json!({
                "subscription": created.subscription,
                "secret": created.secret.expose(),
            }));
        } else {
            println!(
                "Webhook {} -> {} for [{}].",
                created.subscription.id,
                created.subscription.url,
                created
                    .subscription
                    .events
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!(
                "Signing secret (shown only once): {}",
                created.secret.expose()
            );
        }
    };
    let missing = || CliError("Webhook not found".into());
    match command {
        WebhooksCommand::Create {
            user,
            url,
            events,
            json,
        } => {
            let user = find_user(&*store, &user).await?;
            let request = SubscriptionRequest {
                url,
                events: events.split(',').map(|e| e.trim().to_string()).collect(),
                filters: Default::default(),
                active: true,
            };
            let created = hooks::create(&*store, &user.id, request)
                .await
                .map_err(failure)?;
            print_secret(created, json);
        }
        WebhooksCommand::List { user, json } => {
            let user = find_user(&*store, &user).await?;
            let list = store.list_subscriptions(&user.id).await?;
            if json {
                print_json(&list);
            } else {
                println!("{:<36}  {:<6}  URL", "ID", "ACTIVE");
                for hook in list {
                    println!("{:<36}  {:<6}  {}", hook.id, hook.active, hook.url);
                }
            }
        }
        WebhooksCommand::Delete { user, id } => {
            let user = find_user(&*store, &user).await?;
            if !store.delete_subscription(&user.id, &id).await? {
                return Err(missing());
            }
            println!("Deleted webhook {id}.");
        }
        WebhooksCommand::RotateSecret { user, id, json } => {
            let user = find_user(&*store, &user).await?;
            let rotated = hooks::rotate_secret(&*store, &user.id, &id)
                .await
                .map_err(failure)?;
            print_secret(rotated, json);
        }
        WebhooksCommand::Test { user, id } => {
            let user = find_user(&*store, &user).await?;
            let delivery = store
                .enqueue_ping(&user.id, &id, time::now())
                .await?
                .ok_or_else(missing)?;
            println!("Queued ping {} (a running server sends it).", delivery.id);
        }
        WebhooksCommand::Deliveries { user, id, json } => {
            let user = find_user(&*store, &user).await?;
            let page = crate::domain::paging::Page {
                limit: 100,
                offset: 0,
            };
            let log = store
                .list_deliveries(&user.id, &id, page)
                .await?
                .ok_or_else(missing)?;
            if json {
                print_json(&log);
            } else {
                println!(
                    "{:<36}  {:<22}  {:<9}  {:>8}  {:>6}  ERROR",
                    "ID", "EVENT", "STATUS", "ATTEMPTS", "CODE"
                );
                for d in log {
                    println!(
                        "{:<36}  {:<22}  {:<9}  {:>8}  {:>6}  {}",
                        d.id,
                        d.event.as_str(),
                        d.status,
                        d.attempts,
                        d.response_status.map(|c| c.to_string()).unwrap_or_default(),
                        d.error.unwrap_or_default()
                    );
                }
            }
        }
        WebhooksCommand::Redeliver {
            user,
            id,
            delivery_id,
        } => {
            let user = find_user(&*store, &user).await?;
            store
                .redeliver(&user.id, &id, &delivery_id, time::now())
                .await?
                .ok_or_else(|| CliError("Delivery not found".into()))?;
            println!("Queued delivery {delivery_id} again.");
        }
    }
    store.close().await?;
    Ok(())
}

/// A refused request reads as the API words it; a database failure shows its real cause.
fn key_failure(error: KeyError) -> CliError {
    match error {
        KeyError::Store(cause) => CliError(format!("{cause:#}")),
        refused => CliError(ApiError::from(refused).detail().to_string()),
    }
}

async fn key_owner(store: &dyn Store, key_id: &str) -> Result<String, CliError> {
    store
        .find_key_by_id(key_id)
        .await?
        .map(|found| found.user_id)
        .ok_or_else(|| CliError("API key not found".to_string()))
}

async fn import_command(settings: &Settings, command: ImportCommand) -> Result<(), CliError> {
    use crate::service::import::{self, ImportOptions, Resource, RetryPolicy};
    let (from, key, user, only, since, reprocess, dry_run, retries) = match command {
        ImportCommand::Ndjson { user, file } => return import_ndjson(settings, &user, &file).await,
        ImportCommand::Omi {
            from,
            key,
            user,
            only,
            since,
            reprocess,
            dry_run,
            retries,
        } => (from, key, user, only, since, reprocess, dry_run, retries),
    };
    if key.expose().trim().is_empty() {
        return Err(CliError(
            "a source key is required: --key or OMI_IMPORT_KEY (omi_dev_...)".into(),
        ));
    }
    let only = match only {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(|part| {
                Resource::parse(part).ok_or_else(|| {
                    CliError(format!(
                        "--only: unknown resource '{}' (memories, conversations, action-items, goals, folders)",
                        part.trim()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let since = match since {
        None => None,
        Some(text) => Some(
            time::parse_date(&text)
                .map(time::start_of_day)
                .or_else(|| time::parse_datetime(&text))
                .ok_or_else(|| {
                    CliError(format!(
                        "--since: '{text}' is not a date (YYYY-MM-DD) or date-time"
                    ))
                })?,
        ),
    };
    let store = store::open(settings).await?;
    let outbound = std::sync::Arc::new(crate::outbound::Outbound::from_settings(settings)?);
    let processor = if reprocess {
        Some(state::processor(settings, &outbound)?)
    } else {
        None
    };
    let options = ImportOptions {
        source: from,
        key: Secret::new(key.expose().trim()),
        user,
        only,
        since,
        reprocess,
        dry_run,
        retry: RetryPolicy {
            attempts: retries.max(1),
            ..RetryPolicy::default()
        },
        outbound,
    };
    let display = import_display::Display::new();
    let outcome = import::run(&*store, processor.as_ref(), &options, &display).await;
    display.clear();
    store.close().await?;
    let report = outcome?;
    import_display::print_report(&options, &report);
    let failed = report.failed();
    if failed > 0 {
        return Err(CliError(format!(
            "{failed} object(s) could not be imported (listed above); run the import again once \
             the cause is fixed"
        )));
    }
    Ok(())
}

/// A running count on stderr when it is a terminal, so redirected output stays clean.
fn progress_printer(what: &'static str) -> impl FnMut(u64) + Send {
    use std::io::{IsTerminal, Write};
    let terminal = std::io::stderr().is_terminal();
    move |count| {
        if terminal {
            eprint!("\r{what}: {count} records");
            let _ = std::io::stderr().flush();
        }
    }
}

async fn export_command(
    settings: &Settings,
    user: &str,
    format: ExportFormat,
    out: &std::path::Path,
) -> Result<(), CliError> {
    use crate::service::export::{vault, write_ndjson};
    let store = store::open(settings).await?;
    let user = find_user(&*store, user).await?;
    std::fs::create_dir_all(out)
        .map_err(|error| CliError(format!("creating {}: {error}", out.display())))?;
    let outcome = match format {
        ExportFormat::Ndjson => {
            let path = out.join("export.ndjson");
            let temporary = out.join("export.ndjson.partial");
            let file = std::fs::File::create(&temporary)
                .map_err(|error| CliError(format!("creating {}: {error}", temporary.display())))?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
            let started = std::time::Instant::now();
            let written = write_ndjson(
                store.clone(),
                &user.id,
                &mut writer,
                progress_printer("exported"),
            )
            .await
            .map_err(CliError::from)
            .and_then(|counts| {
                writer
                    .into_inner()
                    .map_err(|error| CliError(format!("writing: {}", error.error())))?
                    .sync_all()?;
                // Only a complete export takes the final name.
                std::fs::rename(&temporary, &path)?;
                Ok(counts)
            });
            eprintln!();
            written.map(|counts| {
                println!(
                    "Exported {} records of user '{}' to {} in {:.1} s ({counts}).",
                    counts.total(),
                    user.name,
                    path.display(),
                    started.elapsed().as_secs_f64()
                );
            })
        }
        ExportFormat::Markdown => {
            vault::write_vault(store.clone(), &user.id, &user.display_name, out)
                .await
                .map(|report| {
                    println!(
                        "Vault of user '{}' in {}: {} conversations, {} daily notes, {} memories \
                         in {} notes, {} goals; {} notes written, {} unchanged, {} removed.",
                        user.name,
                        out.display(),
                        report.conversations,
                        report.daily_notes,
                        report.memories,
                        report.memory_notes,
                        report.goals,
                        report.written,
                        report.unchanged,
                        report.removed
                    );
                })
                .map_err(CliError::from)
        }
    };
    store.close().await?;
    outcome
}

async fn import_ndjson(
    settings: &Settings,
    user: &str,
    file: &std::path::Path,
) -> Result<(), CliError> {
    use crate::service::export::restore::restore_file;
    let store = store::open(settings).await?;
    let user = find_user(&*store, user).await?;
    let outcome = restore_file(store.clone(), &user.id, file, progress_printer("imported")).await;
    eprintln!();
    store.close().await?;
    let report = outcome?;
    println!(
        "Imported {} records into user '{}': created {} ({}), updated {} ({}), unchanged {} ({}).",
        report.total(),
        user.name,
        report.created.total(),
        report.created,
        report.updated.total(),
        report.updated,
        report.unchanged.total(),
        report.unchanged,
    );
    Ok(())
}

/// How a long import shows itself: a progress bar per resource on a terminal, a log line every
/// few seconds otherwise, and the final report.
mod import_display {
    use std::collections::HashMap;
    use std::io::IsTerminal;
    use std::time::{Duration, Instant};

    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
    use parking_lot::Mutex;

    use crate::service::import::{ImportOptions, Progress, Report, Resource, ResourceReport};

    const LOG_EVERY: Duration = Duration::from_secs(5);

    pub struct Display {
        bars: Option<(MultiProgress, Mutex<HashMap<Resource, ProgressBar>>)>,
        last_line: Mutex<Instant>,
    }

    fn counts(report: &ResourceReport) -> String {
        format!(
            "{} read: {} created, {} updated, {} unchanged, {} skipped, {} failed",
            report.read,
            report.created,
            report.updated,
            report.unchanged,
            report.skipped.len(),
            report.failed.len()
        )
    }

    impl Display {
        pub fn new() -> Display {
            let bars = std::io::stderr().is_terminal().then(|| {
                (
                    MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                    Mutex::new(HashMap::new()),
                )
            });
            Display {
                bars,
                last_line: Mutex::new(Instant::now()),
            }
        }

        pub fn clear(&self) {
            if let Some((multi, _)) = &self.bars {
                let _ = multi.clear();
            }
        }
    }

    impl Progress for Display {
        fn started(&self, resource: Resource, resumed_at: Option<i64>) {
            let resumed = resumed_at
                .map(|offset| format!(" (resuming at item {offset})"))
                .unwrap_or_default();
            match &self.bars {
                Some((multi, bars)) => {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:>13} {elapsed:>4} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(resource.name());
                    bar.set_message(format!("reading{resumed}"));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bars.lock().insert(resource, bar);
                }
                None => eprintln!("import: {}: reading{resumed}", resource.name()),
            }
        }

        fn advanced(&self, resource: Resource, report: &ResourceReport) {
            match &self.bars {
                Some((_, bars)) => {
                    if let Some(bar) = bars.lock().get(&resource) {
                        bar.set_message(counts(report));
                    }
                }
                None => {
                    let mut last = self.last_line.lock();
                    if last.elapsed() >= LOG_EVERY {
                        *last = Instant::now();
                        eprintln!("import: {}: {}", resource.name(), counts(report));
                    }
                }
            }
        }

        fn finished(&self, resource: Resource, report: &ResourceReport) {
            let line = match &report.unavailable {
                Some(why) => format!("not imported: {why}"),
                None => format!("done, {}", counts(report)),
            };
            match &self.bars {
                Some((_, bars)) => {
                    if let Some(bar) = bars.lock().get(&resource) {
                        bar.finish_with_message(line);
                    }
                }
                None => eprintln!("import: {}: {line}", resource.name()),
            }
        }
    }

    /// At most this many skipped or failed objects are listed per resource.
    const LISTED: usize = 20;

    pub fn print_report(options: &ImportOptions, report: &Report) {
        let verb = if report.dry_run {
            "Dry run (nothing written) of an import"
        } else {
            "Imported"
        };
        println!(
            "{verb} from {} for user '{}' in {:.1} s ({} requests, {} rate-limited waits, {} retries)",
            options.source.trim().trim_end_matches('/'),
            options.user,
            report.elapsed.as_secs_f64(),
            report.source.requests,
            report.source.rate_limited,
            report.source.retried
        );
        println!(
            "  {:<14} {:>8} {:>8} {:>8} {:>9} {:>8} {:>7}",
            "", "read", "created", "updated", "unchanged", "skipped", "failed"
        );
        for (resource, r) in &report.resources {
            match &r.unavailable {
                Some(why) => println!("  {:<14} not imported: {why}", resource.name()),
                None => println!(
                    "  {:<14} {:>8} {:>8} {:>8} {:>9} {:>8} {:>7}",
                    resource.name(),
                    r.read,
                    r.created,
                    r.updated,
                    r.unchanged,
                    r.skipped.len(),
                    r.failed.len()
                ),
            }
        }
        for (resource, r) in &report.resources {
            if r.kept_without_transcript > 0 {
                println!(
                    "  {}: {} without a transcript kept the source's summary (nothing to process again)",
                    resource.name(),
                    r.kept_without_transcript
                );
            }
        }
        for (title, pick) in [
            (
                "skipped",
                (|r: &ResourceReport| &r.skipped) as fn(&ResourceReport) -> &Vec<_>,
            ),
            ("failed", |r: &ResourceReport| &r.failed),
        ] {
            for (resource, r) in &report.resources {
                let notes = pick(r);
                for note in notes.iter().take(LISTED) {
                    println!("{title}: {} {}: {}", resource.name(), note.id, note.reason);
                }
                if notes.len() > LISTED {
                    println!(
                        "{title}: {} ... and {} more",
                        resource.name(),
                        notes.len() - LISTED
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_mappings_of_the_executable_are_released() {
        let smaps = "\
55de00000000-55de00010000 r--p 00000000 fe:00 42   /srv/omi-server
Rss:                  64 kB
Anonymous:             0 kB
55de00010000-55de00030000 r-xp 00010000 fe:00 42   /srv/omi-server
Rss:                 128 kB
Anonymous:             0 kB
55de00030000-55de00031000 r--p 00030000 fe:00 42   /srv/omi-server
Rss:                   4 kB
Anonymous:             4 kB
55de00031000-55de00032000 rw-p 00031000 fe:00 42   /srv/omi-server
Rss:                   4 kB
Anonymous:             0 kB
7f0000000000-7f0000001000 r-xp 00000000 fe:00 7    /usr/lib/libc.so.6
Rss:                   4 kB
Anonymous:             0 kB
7f0000002000-7f0000003000 rw-p 00000000 00:00 0
Rss:                   4 kB
Anonymous:             4 kB
";
        assert_eq!(
            file_backed_clean_mappings(smaps, "/srv/omi-server"),
            vec![
                Mapping {
                    start: 0x55de00000000,
                    end: 0x55de00010000
                },
                Mapping {
                    start: 0x55de00010000,
                    end: 0x55de00030000
                },
            ]
        );
    }
}
