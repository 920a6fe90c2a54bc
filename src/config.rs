//! Typed settings: every option is a flag and an environment variable (API.md §8).
//! Secrets (the database and Redis URLs may hold passwords) are redacted in `Debug`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::credentials::Secret;

#[derive(Debug, Parser)]
#[command(
    name = "omi-server",
    version,
    about = "Self-hosted Omi Developer API server"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

/// Page cache of each SQLite read connection unless `OMI_SQLITE_READ_CACHE_KIB` says otherwise.
pub const DEFAULT_SQLITE_READ_CACHE_KIB: u32 = 4_000;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Database URL: sqlite://path/to/file.db (created if missing) or postgres://...
    #[arg(
        long,
        env = "OMI_DATABASE_URL",
        default_value = "sqlite://omi-data/omi.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Secret,

    /// Address the API listens on.
    #[arg(
        long,
        env = "OMI_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Redis URL for rate-limit counters shared by several replicas; unset keeps them in process.
    #[arg(long, env = "OMI_REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// Prefix of every Redis key this server writes.
    #[arg(
        long,
        env = "OMI_REDIS_KEY_PREFIX",
        default_value = "omi:",
        global = true
    )]
    pub redis_key_prefix: String,

    /// Requests per developer key per calendar minute (0 = no limit).
    #[arg(
        long,
        env = "OMI_RATE_LIMIT_PER_MINUTE",
        default_value_t = 100,
        global = true
    )]
    pub rate_limit_per_minute: u64,

    /// Requests per user per UTC day (0 = no limit).
    #[arg(
        long,
        env = "OMI_RATE_LIMIT_PER_DAY",
        default_value_t = 10_000,
        global = true
    )]
    pub rate_limit_per_day: u64,

    /// `POST /v1/dev/user/ask` requests per developer key per calendar hour, on top of the
    /// other limits (0 = no limit).
    #[arg(
        long,
        env = "OMI_ASK_RATE_LIMIT_PER_HOUR",
        default_value_t = 25,
        global = true
    )]
    pub ask_rate_limit_per_hour: u64,

    /// Failed authentications per client address per minute before 429 (0 = off).
    #[arg(
        long,
        env = "OMI_FAILED_AUTH_PER_MINUTE",
        default_value_t = 30,
        global = true
    )]
    pub failed_auth_per_minute: u64,

    /// Largest accepted request body in bytes.
    #[arg(
        long,
        env = "OMI_MAX_BODY_BYTES",
        default_value_t = 2 * 1024 * 1024,
        global = true
    )]
    pub max_body_bytes: usize,

    /// Proxies whose X-Forwarded-For is trusted (comma list of addresses).
    #[arg(
        long,
        env = "OMI_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Vec<IpAddr>,

    /// SQLite durability: FULL survives power loss; NORMAL may lose the last commits on power loss.
    #[arg(
        long,
        env = "OMI_SQLITE_SYNCHRONOUS",
        value_enum,
        ignore_case = true,
        default_value = "FULL",
        global = true
    )]
    pub sqlite_synchronous: SqliteSynchronous,

    /// How long a SQLite statement waits for a lock before the request gets 503.
    #[arg(
        long,
        env = "OMI_SQLITE_BUSY_TIMEOUT_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub sqlite_busy_timeout_ms: u64,

    /// Page cache of each SQLite read connection, in KiB. Reads beyond it come from the operating
    /// system's file cache, which all connections share, at the cost of a system call and a copy
    /// per page; a search over 100,000 memories touches a few MB of pages (docs/DECISIONS.md,
    /// "`OMI_SQLITE_READ_CACHE_KIB`").
    #[arg(
        long,
        env = "OMI_SQLITE_READ_CACHE_KIB",
        default_value_t = DEFAULT_SQLITE_READ_CACHE_KIB,
        value_parser = clap::value_parser!(u32).range(64..),
        global = true
    )]
    pub sqlite_read_cache_kib: u32,

    /// Most connections each server process keeps open to PostgreSQL (at least 2: half serve the
    /// key lookups and the memory list, the rest everything else).
    #[arg(long, env = "OMI_PG_POOL_SIZE", default_value_t = 16, global = true)]
    pub pg_pool_size: usize,

    /// How long connecting to PostgreSQL, waiting for a pooled connection, or one database
    /// operation may take before the request gets 503.
    #[arg(
        long,
        env = "OMI_PG_TIMEOUT_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub pg_timeout_ms: u64,

    /// Address of the Prometheus metrics listener (`GET /metrics`, no authentication: keep it
    /// on a private network); off when unset or empty.
    #[arg(
        long,
        env = "OMI_METRICS_LISTEN",
        default_value = "",
        hide_default_value = true,
        global = true
    )]
    pub metrics_listen: MetricsListen,

    /// Allowed browser origins for CORS (comma list); CORS is off when empty.
    #[arg(long, env = "OMI_CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,

    /// Host names the MCP endpoint answers to (comma list; `name:port` pins a port, `*` allows
    /// any host). Protects a local server from DNS rebinding; list your public name when exposed.
    #[arg(
        long,
        env = "OMI_MCP_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,[::1]",
        global = true
    )]
    pub mcp_allowed_hosts: Vec<String>,

    /// The server's public base URL (e.g. https://omi.example.com), used in the OAuth metadata
    /// documents and `WWW-Authenticate` challenges; unset, it is taken from each request's
    /// `Host` (and a trusted proxy's `X-Forwarded-Proto` / `X-Forwarded-Host`).
    #[arg(long, env = "OMI_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Lifetime of an OAuth access token, in seconds (refresh tokens rotate and live 30 days).
    #[arg(
        long,
        env = "OMI_OAUTH_ACCESS_TOKEN_SECONDS",
        default_value_t = 3600,
        global = true
    )]
    pub oauth_access_token_seconds: u64,

    /// OpenAI-compatible chat-completions endpoint for conversation processing, up to `/v1`
    /// (e.g. http://127.0.0.1:11434/v1); unset processes offline only.
    #[arg(long, env = "OMI_LLM_BASE_URL", global = true)]
    pub llm_base_url: Option<String>,

    /// Model name sent to the LLM endpoint (required with `OMI_LLM_BASE_URL`).
    #[arg(long, env = "OMI_LLM_MODEL", global = true)]
    pub llm_model: Option<String>,

    /// Bearer key for the LLM endpoint, when it needs one.
    #[arg(long, env = "OMI_LLM_API_KEY", global = true, hide_env_values = true)]
    pub llm_api_key: Option<Secret>,

    /// Time the model may spend on one conversation before its unfinished steps fall back to
    /// offline processing.
    #[arg(
        long,
        env = "OMI_LLM_TIMEOUT_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub llm_timeout_ms: u64,

    /// Requests the server sends to the model at once; more wait for a slot within their
    /// deadline.
    #[arg(
        long,
        env = "OMI_LLM_MAX_CONCURRENCY",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub llm_max_concurrency: u32,

    /// OpenAI-compatible embeddings endpoint for semantic search, up to `/v1` (e.g.
    /// http://127.0.0.1:11434/v1; `POST {base}/embeddings`); unset searches by words only.
    #[arg(long, env = "OMI_EMBEDDINGS_BASE_URL", global = true)]
    pub embeddings_base_url: Option<String>,

    /// Model name sent to the embeddings endpoint (required with `OMI_EMBEDDINGS_BASE_URL`);
    /// stored with every vector, so a new name re-embeds everything.
    #[arg(long, env = "OMI_EMBEDDINGS_MODEL", global = true)]
    pub embeddings_model: Option<String>,

    /// Bearer key for the embeddings endpoint, when it needs one.
    #[arg(
        long,
        env = "OMI_EMBEDDINGS_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub embeddings_api_key: Option<Secret>,

    /// Time a search waits for its query's vector before it answers by words alone.
    #[arg(
        long,
        env = "OMI_EMBEDDINGS_TIMEOUT_MS",
        default_value_t = 1_500,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub embeddings_timeout_ms: u64,

    /// Cosine similarity a memory, conversation or action item needs to count as a semantic
    /// match (depends on the model; unrelated texts score about 0.1-0.3 on common ones).
    #[arg(
        long,
        env = "OMI_EMBEDDINGS_MIN_SIMILARITY",
        default_value_t = 0.35,
        global = true
    )]
    pub embeddings_min_similarity: f64,

    /// PEM file of extra certificate authorities trusted for outgoing TLS (HTTPS model
    /// endpoints, `rediss://`, PostgreSQL without `sslrootcert`), besides the system's; read at
    /// start.
    #[arg(long, env = "OMI_EXTRA_CA_FILE", global = true)]
    pub extra_ca_file: Option<PathBuf>,

    /// Accept any certificate from HTTPS and `rediss://` servers. For tests only: logs a warning.
    #[arg(
        long,
        env = "OMI_TLS_INSECURE_SKIP_VERIFY",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        global = true
    )]
    pub tls_insecure_skip_verify: bool,

    /// Generate each user's daily summary after their day ends (`true`/`false`). Among replicas
    /// sharing a database, one at a time generates (a lease in the database).
    #[arg(
        long,
        env = "OMI_DAILY_SUMMARIES",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub daily_summaries: bool,

    /// A live transcript received from the Omi app closes into a conversation after this many
    /// seconds without a new segment.
    #[arg(
        long,
        env = "OMI_INGEST_GAP_SECONDS",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub ingest_gap_seconds: u64,

    /// Accept raw audio from the Omi app (`/v1/ingest/omi/audio`) and keep it with the
    /// conversation (`true`/`false`).
    #[arg(
        long,
        env = "OMI_INGEST_AUDIO",
        default_value_t = false,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub ingest_audio: bool,

    /// Most audio kept per conversation, in MiB; later audio is dropped.
    #[arg(
        long,
        env = "OMI_INGEST_AUDIO_MAX_MB",
        default_value_t = 64,
        global = true
    )]
    pub ingest_audio_max_mb: u64,

    /// Extract memories with this server's processor from conversations the Omi app delivers
    /// (`true`/`false`); the app's payload carries none.
    #[arg(
        long,
        env = "OMI_INGEST_EXTRACT_MEMORIES",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub ingest_extract_memories: bool,

    /// Process received webhook deliveries in this process (`true`/`false`). Off, deliveries
    /// are still accepted and kept; another replica (or a later start) processes them.
    #[arg(
        long,
        env = "OMI_INGEST_WORKER",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub ingest_worker: bool,

    /// Largest accepted webhook body in bytes (a conversation may carry photos).
    #[arg(
        long,
        env = "OMI_INGEST_MAX_BODY_BYTES",
        default_value_t = 16 * 1024 * 1024,
        global = true
    )]
    pub ingest_max_body_bytes: usize,

    /// How many days a processed webhook delivery's dedupe key (its `Idempotency-Key` or content
    /// digest) is kept, so that the app's retries of it are recognised; then it is removed.
    /// Failed and pending deliveries are kept until handled.
    #[arg(
        long,
        env = "OMI_INGEST_INBOX_DAYS",
        default_value_t = 7,
        value_parser = clap::value_parser!(u32).range(1..=3650),
        global = true
    )]
    pub ingest_inbox_days: u32,
    /// Deliver outbound webhooks from this process (`true`/`false`). Every replica may: each
    /// delivery is claimed by one of them.
    #[arg(
        long,
        env = "OMI_WEBHOOKS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub webhooks: bool,

    /// Let webhook URLs reach loopback, private, link-local and metadata addresses
    /// (`true`/`false`); off, such destinations are refused at every delivery.
    #[arg(
        long,
        env = "OMI_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        global = true
    )]
    pub webhook_allow_private: bool,

    /// Webhook deliveries in flight at once in this process.
    #[arg(
        long,
        env = "OMI_WEBHOOK_CONCURRENCY",
        default_value_t = 64,
        global = true
    )]
    pub webhook_concurrency: u32,

    /// Webhook deliveries in flight at once to one subscription.
    #[arg(
        long,
        env = "OMI_WEBHOOK_ENDPOINT_CONCURRENCY",
        default_value_t = 8,
        global = true
    )]
    pub webhook_endpoint_concurrency: u32,

    /// Connect timeout of a webhook delivery, in milliseconds (upstream: 2 s).
    #[arg(
        long,
        env = "OMI_WEBHOOK_CONNECT_TIMEOUT_MS",
        default_value_t = 2_000,
        global = true
    )]
    pub webhook_connect_timeout_ms: u64,

    /// Total timeout of a webhook delivery, in milliseconds (upstream: 15 s).
    #[arg(
        long,
        env = "OMI_WEBHOOK_TIMEOUT_MS",
        default_value_t = 15_000,
        global = true
    )]
    pub webhook_timeout_ms: u64,

    /// Seconds between webhook attempts, comma-separated (e.g. `1,5,30`); empty: the default
    /// schedule over 24 hours.
    #[arg(
        long,
        env = "OMI_WEBHOOK_RETRY_DELAYS",
        default_value = "",
        global = true
    )]
    pub webhook_retry_delays: String,

    /// A subscription whose deliveries have failed for this many seconds without a single
    /// success is switched off, with the reason (default 72 hours).
    #[arg(
        long,
        env = "OMI_WEBHOOK_DISABLE_AFTER_SECONDS",
        default_value_t = 72 * 3600,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub webhook_disable_after_seconds: u64,

    /// How often an idle webhook worker looks for due deliveries, in milliseconds.
    #[arg(
        long,
        env = "OMI_WEBHOOK_POLL_MS",
        default_value_t = 500,
        global = true
    )]
    pub webhook_poll_ms: u64,
    /// How many days the deletions feed keeps a deleted object's tombstone. A mirror that last
    /// synced longer ago than this must copy everything again.
    #[arg(
        long,
        env = "OMI_TOMBSTONE_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..=3650),
        global = true
    )]
    pub tombstone_days: u32,
}

impl Settings {
    /// The defaults, as if no flag or variable were given.
    pub fn defaults() -> Self {
        Cli::parse_from(["omi-server", "serve"]).settings
    }
}

/// Where the Prometheus metrics listener binds, if anywhere. An empty value is off too, so a
/// deployment can blank `OMI_METRICS_LISTEN` instead of removing it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsListen {
    #[default]
    Off,
    At(SocketAddr),
}

impl MetricsListen {
    pub fn address(self) -> Option<SocketAddr> {
        match self {
            MetricsListen::Off => None,
            MetricsListen::At(address) => Some(address),
        }
    }
}

impl std::str::FromStr for MetricsListen {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(MetricsListen::Off);
        }
        value.parse().map(MetricsListen::At).map_err(|_| {
            format!(
                "`{value}` is not a socket address such as 127.0.0.1:9090 (leave it empty for off)"
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSynchronous {
    #[value(name = "FULL")]
    Full,
    #[value(name = "NORMAL")]
    Normal,
}

impl SqliteSynchronous {
    pub fn as_pragma(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Normal => "NORMAL",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (migrates first; bootstraps a user on an empty database).
    Serve,
    /// Apply schema migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage developer API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Daily summaries.
    #[command(subcommand)]
    Summaries(SummariesCommand),
    /// Manage a user's outbound webhook subscriptions.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Write a consistent, verified copy of the SQLite database while the server runs.
    Backup {
        /// The file to write; it must not exist yet.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Replace the SQLite database with a backup (stop the server first); the replaced database
    /// is kept beside it.
    Restore {
        /// The backup to restore.
        #[arg(long)]
        from: std::path::PathBuf,
    },
    /// Import a user's history from another server of the Omi Developer API, or restore an
    /// export.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Deliveries received from the Omi app's developer webhooks.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Export everything a user holds: NDJSON (restorable with `import ndjson`) or a Markdown
    /// vault (Obsidian-style) that a later run brings up to date.
    Export {
        /// The user (id or name).
        #[arg(long)]
        user: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
        format: ExportFormat,
        /// The directory to write into: `export.ndjson` for NDJSON, the vault for Markdown.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Serve the MCP tools to a local assistant that launches this process (key in OMI_API_KEY).
    Mcp {
        /// Speak MCP on stdin/stdout (the HTTP endpoint is /v1/mcp on `serve`).
        #[arg(long, required = true)]
        stdio: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Ndjson,
    Markdown,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Restore an export made by `omi-server export --format ndjson` (or `GET
    /// /v1/dev/user/export`) exactly: ids, timestamps, transcripts, states. Importing the same
    /// file again changes nothing.
    Ndjson {
        /// The user (id or name) who receives the data.
        #[arg(long)]
        user: String,
        /// The NDJSON file.
        file: std::path::PathBuf,
    },
    /// Import memories, conversations (with transcripts), action items, goals and folders from
    /// Omi's cloud (https://api.omi.me) or any server of the Omi Developer API, through its public
    /// API. Resumable: run it again to continue or to bring in what changed.
    Omi {
        /// The source's base URL, e.g. https://api.omi.me.
        #[arg(long = "from")]
        from: String,
        /// A developer key of the source (omi_dev_...). Prefer OMI_IMPORT_KEY, which keeps it
        /// out of the shell history.
        #[arg(long, env = "OMI_IMPORT_KEY", hide_env_values = true)]
        key: Secret,
        /// The user of this server (id or name) who receives the history.
        #[arg(long)]
        user: String,
        /// Comma-separated: memories, conversations, action-items, goals, folders (default: all).
        #[arg(long)]
        only: Option<String>,
        /// Skip objects created before this date (YYYY-MM-DD) or date-time.
        #[arg(long)]
        since: Option<String>,
        /// Process imported conversations here instead of keeping the source's summaries.
        #[arg(long)]
        reprocess: bool,
        /// Read everything and report what would change, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Attempts per request on server errors and broken connections.
        #[arg(long, default_value_t = 5)]
        retries: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user and print its account token once.
    Create {
        name: String,
        /// Name used for the user's own speech and in memories about them (defaults to the name).
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set the IANA timezone (e.g. Europe/Berlin; default UTC) a user's days are counted in.
    SetTimezone {
        /// The user's id or name.
        #[arg(long)]
        user: String,
        timezone: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Count received deliveries by state and list those that failed, with their error.
    Status {
        /// Most failed deliveries to list.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SummariesCommand {
    /// Generate the summary of one user-local day now, unless it has one already or has no
    /// kept conversation.
    Generate {
        /// The user's id or name.
        #[arg(long)]
        user: String,
        /// The day, YYYY-MM-DD, in the user's timezone.
        #[arg(long)]
        date: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a developer key for a user and print it once.
    Create {
        /// The user's id or name.
        #[arg(long)]
        user: String,
        /// A label for the key.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes (default: the four read scopes).
        #[arg(long)]
        scopes: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List a user's keys.
    List {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key (effective on the next request).
    Revoke { key_id: String },
    /// Give a key a new secret; the old one stops working at once.
    Rotate {
        key_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Subscribe a URL to events and print the signing secret once.
    Create {
        /// The user's id or name.
        #[arg(long)]
        user: String,
        #[arg(long)]
        url: String,
        /// Comma-separated event types, e.g. `conversation.created,memory.created`.
        #[arg(long)]
        events: String,
        #[arg(long)]
        json: bool,
    },
    /// List a user's subscriptions.
    List {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a subscription and its delivery log.
    Delete {
        #[arg(long)]
        user: String,
        id: String,
    },
    /// Give a subscription a new signing secret and print it once.
    RotateSecret {
        #[arg(long)]
        user: String,
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Queue a signed ping to a subscription.
    Test {
        #[arg(long)]
        user: String,
        id: String,
    },
    /// A subscription's delivery log, newest first.
    Deliveries {
        #[arg(long)]
        user: String,
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Send a delivery again (same webhook-id).
    Redeliver {
        #[arg(long)]
        user: String,
        id: String,
        delivery_id: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let settings = Settings::defaults();
        assert_eq!(settings.database_url.expose(), "sqlite://omi-data/omi.db");
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.rate_limit_per_minute, 100);
        assert_eq!(settings.rate_limit_per_day, 10_000);
        assert_eq!(settings.ask_rate_limit_per_hour, 25);
        assert_eq!(settings.failed_auth_per_minute, 30);
        assert_eq!(settings.max_body_bytes, 2_097_152);
        assert_eq!(settings.sqlite_synchronous, SqliteSynchronous::Full);
        assert_eq!(settings.pg_pool_size, 16);
        assert_eq!(settings.pg_timeout_ms, 5_000);
        assert_eq!(settings.oauth_access_token_seconds, 3600);
        assert_eq!(settings.public_url, None);
        assert_eq!(
            settings.mcp_allowed_hosts,
            ["localhost", "127.0.0.1", "[::1]"]
        );
        assert!(settings.llm_base_url.is_none());
        assert!(settings.extra_ca_file.is_none());
        assert!(
            !settings.tls_insecure_skip_verify,
            "certificates are verified by default"
        );
        assert_eq!(
            settings.metrics_listen,
            MetricsListen::Off,
            "metrics are off by default"
        );
    }

    #[test]
    fn the_metrics_listener_takes_a_socket_address_or_nothing() {
        let cli = Cli::parse_from(["omi-server", "--metrics-listen", "127.0.0.1:9090", "serve"]);
        assert_eq!(
            cli.settings.metrics_listen.address(),
            Some("127.0.0.1:9090".parse().unwrap())
        );
        let blank = Cli::parse_from(["omi-server", "--metrics-listen", "", "serve"]);
        assert_eq!(blank.settings.metrics_listen, MetricsListen::Off);
        let error = Cli::try_parse_from(["omi-server", "--metrics-listen", "9090", "serve"])
            .expect_err("a port alone is not an address");
        let message = error.to_string();
        assert!(
            message.contains("--metrics-listen") && message.contains("127.0.0.1:9090"),
            "{message}"
        );
    }

    #[test]
    fn debug_output_redacts_urls_that_may_hold_passwords() {
        let cli = Cli::parse_from([
            "omi-server",
            "--database-url",
            "postgres://u:hunter2@db/omi",
            "--redis-url",
            "redis://:hunter2@cache",
            "--llm-api-key",
            "sk-hunter2",
            "migrate",
        ]);
        assert!(!format!("{cli:?}").contains("hunter2"));
    }
}
