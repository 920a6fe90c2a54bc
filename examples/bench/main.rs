//! Load benchmark of the release server (see the README's "Benchmarks" section).
//!
//! `cargo run --release --example bench [-- --quick] [-- --only memories,action-items-batch]`
//! `cargo run --release --example bench -- --deployments` (SQLite, PostgreSQL, two replicas)
//! `cargo run --release --example bench -- --import [--quick]` (`omi-server import omi`)
//! `cargo run --release --example bench -- --ingest [--quick]` (Omi app webhooks received)
//! `cargo run --release --example bench -- --hybrid [--quick]` (memory search, lexical and hybrid)
//! `cargo run --release --example bench -- --write-cost [--quick]` (what search costs writes)
//!
//! Builds and starts the release `omi-server serve` on a fresh SQLite file in a temporary folder
//! (rate limits off), creates a user and key with the command line, seeds data through the API
//! batches, then drives each endpoint with keep-alive connections and prints requests/s, p50/p99
//! latency and peak server RSS beside the targets, each figure the median of the runs, with
//! every endpoint's ratio to the static `/healthz` ceiling measured in the same run. A scale
//! check compares list latency for 1,000 and 1,000,000 memories (seeded straight into SQLite)
//! and prints the list query's plan.

mod deployments;
mod feed;
mod hybrid;
mod import;
mod ingest;
mod load;
mod pinning;
#[path = "../../tests/support/postgres.rs"]
mod postgres;
mod private_postgres;
mod report;
mod seed;
#[path = "../../tests/support/server_process.rs"]
mod server_process;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hyper::Method;

use load::{Budget, Outcome, Target};
use report::{Check, Row};
use server_process::{CliUser, ServerProcess, create_user, database_in, sqlite_url};

#[derive(Debug, Parser)]
#[command(about = "Load benchmark of the release omi-server")]
struct Args {
    /// Comma list of scenarios to run; a name also selects the names that extend it
    /// (`memories` selects `memories` and `memories-create`). The `/healthz` ceiling always runs.
    /// Scenarios: key, memories, memories-search, memories-create, action-items,
    /// action-items-batch, action-items-batch-normal, conversations, conversations-search,
    /// conversations-create, scale, scale-feed.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// One run of 2 s per scenario instead of the median of 3 runs of 5 s.
    #[arg(long)]
    quick: bool,
    /// Run the server with the rate limiter on (limits too high to reject anything), to
    /// measure what limiting costs against a run without this flag.
    #[arg(long)]
    with_rate_limits: bool,
    /// Instead of the full table: `GET memories` and the 50-item batch on SQLite, on PostgreSQL,
    /// and on two replicas sharing the PostgreSQL database, side by side.
    #[arg(long)]
    deployments: bool,
    /// Instead of the table: `omi-server import omi` of a whole history from a local source
    /// (timed, with the importer's peak RSS), then against a source limited to 100 requests a
    /// minute. With `--quick`, a tenth of the history.
    #[arg(long)]
    import: bool,
    /// Instead of the table: `memory_created` webhook deliveries acknowledged (requests/s,
    /// p99) with the worker off, then the backlog drained after a restart, beside the
    /// processor's own speed.
    #[arg(long)]
    ingest: bool,
    /// Instead of the table: memory search p95 at 16 connections over 100,000 memories, lexical
    /// and hybrid (embeddings from an in-process fake server that answers at once).
    #[arg(long)]
    hybrid: bool,
    /// Instead of the table: only the last part of `--hybrid`, what the search index and the
    /// embedding queue cost writes (outside the server, on the server's SQLite layout).
    #[arg(long)]
    write_cost: bool,
    /// The PostgreSQL server `--deployments` creates its (temporary) databases on.
    #[arg(
        long,
        env = "OMI_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
}

/// The settings every benchmarked server runs with: no rate limits (they would measure 429s).
const SERVER_ENV: [(&str, &str); 3] = [
    ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
    ("OMI_RATE_LIMIT_PER_DAY", "0"),
    ("OMI_FAILED_AUTH_PER_MINUTE", "0"),
];

/// With `--with-rate-limits`: both windows counted, never reached.
const LIMITED_SERVER_ENV: [(&str, &str); 3] = [
    ("OMI_RATE_LIMIT_PER_MINUTE", "1000000000000"),
    ("OMI_RATE_LIMIT_PER_DAY", "1000000000000"),
    ("OMI_FAILED_AUTH_PER_MINUTE", "0"),
];

/// Data a scenario needs seeded before it runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seed {
    Memories,
    ActionItems,
    Conversations,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Synchronous {
    Full,
    Normal,
}

struct Scenario {
    name: &'static str,
    method: Method,
    path: &'static str,
    /// The path as the API document names it, to tell whether this build has the route.
    documented_path: &'static str,
    connections: usize,
    seed: Option<Seed>,
    synchronous: Synchronous,
    body: Option<fn(u64) -> load::BodyFn>,
    /// Every request carries its own `Idempotency-Key` (stored and checked by the server).
    idempotency_keys: bool,
}

fn scenarios() -> Vec<Scenario> {
    let read = |name, path, documented_path, seed| Scenario {
        name,
        method: Method::GET,
        path,
        documented_path,
        connections: 64,
        seed,
        synchronous: Synchronous::Full,
        body: None,
        idempotency_keys: false,
    };
    // The load for search: 16 connections.
    let search = |name, path, documented_path, seed| Scenario {
        connections: 16,
        ..read(name, path, documented_path, seed)
    };
    let write = |name, path, seed, synchronous, body| Scenario {
        name,
        method: Method::POST,
        path,
        documented_path: path,
        connections: 16,
        seed: Some(seed),
        synchronous,
        body: Some(body),
        idempotency_keys: false,
    };
    vec![
        read("healthz", "/healthz", "/healthz", None),
        read("key", "/v1/dev/key", "/v1/dev/key", None),
        read(
            "memories",
            "/v1/dev/user/memories?limit=25",
            "/v1/dev/user/memories",
            Some(Seed::Memories),
        ),
        read(
            "action-items",
            "/v1/dev/user/action-items",
            "/v1/dev/user/action-items",
            Some(Seed::ActionItems),
        ),
        read(
            "conversations",
            "/v1/dev/user/conversations",
            "/v1/dev/user/conversations",
            Some(Seed::Conversations),
        ),
        search(
            "memories-search",
            "/v1/dev/user/memories/search?query=allergic%20to%20peanuts",
            "/v1/dev/user/memories/search",
            Some(Seed::Memories),
        ),
        search(
            "conversations-search",
            "/v1/dev/user/conversations/search?query=merchant%20account%20fees",
            "/v1/dev/user/conversations/search",
            Some(Seed::Conversations),
        ),
        write(
            "memories-create",
            "/v1/dev/user/memories",
            Seed::Memories,
            Synchronous::Full,
            seed::single_memory_bodies,
        ),
        Scenario {
            name: "memories-create-idempotent",
            idempotency_keys: true,
            ..write(
                "memories-create-idempotent",
                "/v1/dev/user/memories",
                Seed::Memories,
                Synchronous::Full,
                // Other contents than the plain create's, so neither meets the other's memories.
                |run| seed::single_memory_bodies(run + 100),
            )
        },
        write(
            "action-items-batch",
            "/v1/dev/user/action-items/batch",
            Seed::ActionItems,
            Synchronous::Full,
            seed::action_item_batch_bodies,
        ),
        write(
            "conversations-create",
            "/v1/dev/user/conversations",
            Seed::Conversations,
            Synchronous::Full,
            |run| seed::conversation_bodies(run, seed::CONVERSATION_WORDS),
        ),
        write(
            "action-items-batch-normal",
            "/v1/dev/user/action-items/batch",
            Seed::ActionItems,
            Synchronous::Normal,
            seed::action_item_batch_bodies,
        ),
    ]
}

impl Scenario {
    fn label(&self) -> String {
        let mut label = format!("{} {}", self.method, self.path);
        if self.name.starts_with("action-items-batch") {
            label.push_str(&format!(" ({} items)", seed::ACTION_ITEM_BATCH));
        }
        if self.name == "conversations-create" {
            label.push_str(&format!(" (~{} words)", seed::CONVERSATION_WORDS));
        }
        if self.idempotency_keys {
            label.push_str(" with Idempotency-Key");
        }
        if self.synchronous == Synchronous::Normal {
            label.push_str(" synchronous=NORMAL");
        }
        if self.name == "healthz" {
            label.push_str(" (ceiling)");
        }
        label
    }

    fn target(&self, run: u64, key: &str) -> Target {
        Target {
            method: self.method.clone(),
            path: self.path.to_string(),
            authorization: (self.name != "healthz").then(|| format!("Bearer {key}")),
            body: self.body.map(|make| make(run)),
            idempotency_keys: self.idempotency_keys,
        }
    }
}

fn selected(only: &[String], name: &str) -> bool {
    only.is_empty()
        || name == "healthz"
        || only
            .iter()
            .any(|wanted| name == wanted || name.starts_with(&format!("{wanted}-")))
}

struct Plan {
    runs: usize,
    budget: Budget,
}

impl Plan {
    fn from(args: &Args) -> Self {
        let (runs, warmup, measure) = if args.quick {
            (1, 0.5, 2.0)
        } else {
            (3, 1.0, 5.0)
        };
        Plan {
            runs,
            budget: Budget::Timed {
                warmup: Duration::from_secs_f64(warmup),
                measure: Duration::from_secs_f64(measure),
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = Plan::from(&args);
    let binary = build_server()?;
    let server_env = if args.with_rate_limits {
        LIMITED_SERVER_ENV
    } else {
        SERVER_ENV
    };
    if args.import {
        return import::run(&binary, args.quick).await;
    }
    if args.ingest {
        return ingest::run(&binary, args.quick).await;
    }
    if args.hybrid {
        return hybrid::run(&binary, args.quick).await;
    }
    if args.write_cost {
        return hybrid::write_cost::run(&binary, args.quick).await;
    }
    if args.deployments {
        return deployments::compare(&binary, &args.postgres_url, scenarios(), &server_env, &plan)
            .await;
    }
    let folder = tempfile::tempdir()?;
    let database = database_in(folder.path());
    let url = sqlite_url(&database);
    let user = create_user(&binary, &url, "bench")?;

    let chosen: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|s| !s.name.starts_with("scale") && selected(&args.only, s.name))
        .collect();
    let mut server = ServerProcess::start(&binary, &url, &server_env)?;
    let documented = documented_paths(&server).await?;
    let (available, missing): (Vec<Scenario>, Vec<Scenario>) = chosen
        .into_iter()
        .partition(|s| documented.iter().any(|p| p == s.documented_path));
    for scenario in &missing {
        eprintln!(
            "skipping {}: {} is not in this build's API",
            scenario.name, scenario.documented_path
        );
    }
    if let Err(error) = seed_for(&available, &server, &user.key).await {
        bail!(
            "{error:#}\nserver exit status: {:?}\nserver log:\n{}",
            server.exit_status(),
            server.recent_log()
        );
    }

    let mut rows = Vec::new();
    let mut checks = Vec::new();
    let mut current = Synchronous::Full;
    for scenario in &available {
        if scenario.synchronous != current {
            server.kill();
            let mut env = server_env.to_vec();
            env.push(("OMI_SQLITE_SYNCHRONOUS", "NORMAL"));
            server = ServerProcess::start(&binary, &url, &env)?;
            current = scenario.synchronous;
        }
        let row = measure(std::slice::from_ref(&server), scenario, &user.key, &plan).await;
        checks.extend(report::checks_for(scenario.name, &row));
        rows.push(row);
    }
    drop(server);
    report::with_ceiling(&mut rows);
    let fsync_ms = report::fsync_latency_ms(folder.path())?;
    report::print_table(&rows, &plan_text(&plan), fsync_ms);
    checks.push(report::rss_check(&rows));
    checks.extend(report::idempotency_check(&rows));

    if selected(&args.only, "scale") {
        checks.extend(scale_check(&binary, &plan).await?);
    }
    if selected(&args.only, "scale-feed") {
        checks.push(feed::scale_check(&binary, &plan).await?);
    }
    report::print_checks(&checks);
    println!(
        "\nNote: the load generator shares the machine's cores with the server, and any other \
         build or process running meanwhile makes every figure noisy; compare ratios within one run."
    );
    Ok(())
}

fn plan_text(plan: &Plan) -> String {
    match plan.budget {
        Budget::Timed { warmup, measure } => format!(
            "median of {} run(s), each {:.1} s after a {:.1} s warm-up",
            plan.runs,
            measure.as_secs_f64(),
            warmup.as_secs_f64()
        ),
        Budget::Count(_) => String::new(),
    }
}

/// Builds the release server binary beside this example's own binary and returns its path.
fn build_server() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--bin", "omi-server"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release --bin omi-server failed");
    }
    // This example runs from target/release/examples/; the binary is in target/release/.
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .context("the example's folder")?;
    let binary = release.join("omi-server");
    if !binary.exists() || !release.ends_with("release") {
        bail!(
            "no release binary at {} (run with `cargo run --release --example bench`)",
            binary.display()
        );
    }
    Ok(binary)
}

async fn documented_paths(server: &ServerProcess) -> anyhow::Result<Vec<String>> {
    let target = Target {
        method: Method::GET,
        path: "/v1/openapi.json".into(),
        authorization: None,
        body: None,
        idempotency_keys: false,
    };
    let (status, body) = load::once(server.address, &target).await?;
    anyhow::ensure!(status == 200, "GET /v1/openapi.json answered {status}");
    let document: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(document["paths"]
        .as_object()
        .map(|paths| paths.keys().cloned().collect())
        .unwrap_or_default())
}

impl Seed {
    const ALL: [Seed; 3] = [Seed::Memories, Seed::ActionItems, Seed::Conversations];

    /// What seeding sends: the path, how many requests, their bodies, and what they add up to.
    fn requests(self) -> (&'static str, u64, load::BodyFn, String) {
        let batched = |path, total: u64, size: u64, bodies, noun: &str| {
            let what = format!("{total} {noun} in batches of {size}");
            (path, total / size, bodies, what)
        };
        match self {
            Seed::Memories => batched(
                "/v1/dev/user/memories/batch",
                seed::MEMORIES,
                seed::MEMORY_BATCH,
                seed::memory_batch_bodies(0),
                "memories",
            ),
            Seed::ActionItems => batched(
                "/v1/dev/user/action-items/batch",
                seed::ACTION_ITEMS,
                seed::ACTION_ITEM_BATCH,
                seed::action_item_batch_bodies(0),
                "action items",
            ),
            Seed::Conversations => (
                "/v1/dev/user/conversations",
                seed::CONVERSATIONS,
                seed::conversation_bodies(0, 300),
                format!("{} conversations of ~300 words", seed::CONVERSATIONS),
            ),
        }
    }
}

/// Seeds, through the API, what the chosen scenarios read or write next to.
async fn seed_for(scenarios: &[Scenario], server: &ServerProcess, key: &str) -> anyhow::Result<()> {
    for kind in Seed::ALL {
        if !scenarios.iter().any(|s| s.seed == Some(kind)) {
            continue;
        }
        let (path, requests, bodies, what) = kind.requests();
        let started = Instant::now();
        seed::through_api(server.address, key, path, requests, bodies).await?;
        eprintln!("seeded {what} in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Runs one scenario `plan.runs` times against `servers` (connections spread over them); each
/// figure is the median over the runs, the peak RSS the highest over them, read from the first
/// server (its peak is reset before the first run).
async fn measure(servers: &[ServerProcess], scenario: &Scenario, key: &str, plan: &Plan) -> Row {
    let addresses: Vec<SocketAddr> = servers.iter().map(|s| s.address).collect();
    let pid = servers[0].pid();
    let rss_reset = report::reset_peak_rss(pid);
    let mut outcomes: Vec<Outcome> = Vec::new();
    for run in 0..plan.runs {
        // Run numbers start at 1: run 0's contents were used for seeding.
        let target = scenario.target(run as u64 + 1, key);
        let outcome = load::run(&addresses, &target, scenario.connections, plan.budget).await;
        eprintln!(
            "{:<28} run {}: {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  failed {}",
            scenario.name,
            run + 1,
            outcome.requests_per_second(),
            outcome.latency_ms(0.5),
            outcome.latency_ms(0.99),
            outcome.failures()
        );
        outcomes.push(outcome);
    }
    Row::from_runs(
        scenario.name,
        scenario.label(),
        scenario.connections,
        &outcomes,
        report::peak_rss_kb(pid),
        rss_reset,
    )
}

/// List latency for one user with 1,000 memories against one with 1,000,000, on one database
/// seeded straight into SQLite, and the plan of the list query.
async fn scale_check(binary: &Path, plan: &Plan) -> anyhow::Result<Option<Check>> {
    let folder = tempfile::tempdir()?;
    let database = database_in(folder.path());
    let url = sqlite_url(&database);
    let small: CliUser = create_user(binary, &url, "small")?;
    let big: CliUser = create_user(binary, &url, "big")?;
    let started = Instant::now();
    seed::memories_into_sqlite(&database, &small.id, 1_000)?;
    seed::memories_into_sqlite(&database, &big.id, 1_000_000)?;
    eprintln!(
        "seeded 1,000 + 1,000,000 memories into SQLite in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    report::print_query_plan(&database, &big.id)?;

    let server = ServerProcess::start(binary, &url, &SERVER_ENV)?;
    if !documented_paths(&server)
        .await?
        .iter()
        .any(|p| p == "/v1/dev/user/memories")
    {
        eprintln!("skipping the scale check: /v1/dev/user/memories is not in this build's API");
        return Ok(None);
    }
    let mut p50 = Vec::new();
    println!("\nScale: GET /v1/dev/user/memories?limit=25, 64 connections");
    for (label, user) in [("1,000 memories", &small), ("1,000,000 memories", &big)] {
        let target = Target {
            method: Method::GET,
            path: "/v1/dev/user/memories?limit=25".into(),
            authorization: Some(format!("Bearer {}", user.key)),
            body: None,
            idempotency_keys: false,
        };
        let mut outcomes = Vec::new();
        for _ in 0..plan.runs {
            outcomes.push(load::run(&[server.address], &target, 64, plan.budget).await);
        }
        let row = Row::from_runs("scale", label.into(), 64, &outcomes, None, false);
        println!(
            "  {label:<20} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  failed {}",
            row.requests_per_second, row.p50_ms, row.p99_ms, row.failures
        );
        p50.push(row.p50_ms);
        if row.failures > 0 {
            bail!(
                "the scale check had failed requests: {}",
                row.failure_example
            );
        }
    }
    let ratio = p50[1] / p50[0];
    println!("  p50 ratio 1,000,000 / 1,000: {ratio:.2}x");
    Ok(Some(Check {
        what: "list latency, 1,000,000 vs 1,000 memories (p50 ratio)".into(),
        target: "within 2x".into(),
        measured: format!("{ratio:.2}x"),
        met: ratio <= 2.0,
    }))
}
