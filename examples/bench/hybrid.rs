//! `--hybrid`: memory search p95 at 16 connections over one user with 100,000 memories, lexical
//! against hybrid, on the release server on SQLite. The embeddings come from an in-process fake
//! OpenAI-compatible server that answers at once (`tests/support/fake_embeddings.rs`), so the
//! hybrid figure is the server's own cost: embedding the query over loopback, the vector
//! candidates read and compared, the rank fusion.
//!
//! The memories are seeded through the API batches with the embeddings endpoint configured; the
//! benchmark waits until the server's worker has embedded all of them, measures hybrid search,
//! then restarts the server without the endpoint and measures lexical search on the same data.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::Method;

#[path = "../../tests/support/fake_embeddings.rs"]
mod fake_embeddings;

use crate::load::{self, Budget, Target};
use crate::seed;
use crate::server_process::{ServerProcess, create_user, database_in, sqlite_url};

const CONNECTIONS: usize = 16;
const TARGET_LEXICAL_P95_MS: f64 = 20.0;
const TARGET_HYBRID_P95_MS: f64 = 50.0;
/// A query with words that match part of the seeded facts.
const QUERY: &str = "window%20seat%20on%20long%20flights";

const BASE_ENV: [(&str, &str); 3] = [
    ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
    ("OMI_RATE_LIMIT_PER_DAY", "0"),
    ("OMI_FAILED_AUTH_PER_MINUTE", "0"),
];

/// Objects still waiting for a vector, read straight from the SQLite file.
fn backlog(database: &Path) -> anyhow::Result<i64> {
    let connection = rusqlite::Connection::open(database)?;
    Ok(
        connection.query_row("SELECT count(*) FROM search_vector_queue", [], |row| {
            row.get(0)
        })?,
    )
}

fn p95_ms(outcome: &load::Outcome) -> f64 {
    let latencies = &outcome.latencies_us;
    if latencies.is_empty() {
        return f64::NAN;
    }
    let index = ((latencies.len() as f64 * 0.95).ceil() as usize).saturating_sub(1);
    f64::from(latencies[index]) / 1000.0
}

async fn search_p95(
    server: &ServerProcess,
    key: &str,
    mode: &str,
    budget: Budget,
) -> anyhow::Result<f64> {
    let target = Target {
        method: Method::GET,
        path: format!("/v1/dev/user/memories/search?query={QUERY}"),
        authorization: Some(format!("Bearer {key}")),
        body: None,
        idempotency_keys: false,
    };
    let outcome = load::run(&[server.address], &target, CONNECTIONS, budget).await;
    if outcome.succeeded == 0 {
        bail!(
            "{mode} search answered nothing: {:?} {:?}",
            outcome.failed,
            outcome.failure_example
        );
    }
    let p95 = p95_ms(&outcome);
    let per_second = outcome.succeeded as f64 / outcome.measured.as_secs_f64();
    println!(
        "memory search, {mode:<7} {CONNECTIONS} connections: p95 {p95:.1} ms, {per_second:.0} req/s ({} answers)",
        outcome.succeeded
    );
    Ok(p95)
}

pub async fn run(binary: &Path, quick: bool) -> anyhow::Result<()> {
    let budget = Budget::Timed {
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(if quick { 3 } else { 10 }),
    };
    let fake = fake_embeddings::FakeEmbeddings::start().await;
    let folder = tempfile::tempdir()?;
    let database = database_in(folder.path());
    let url = sqlite_url(&database);
    let user = create_user(binary, &url, "bench")?;

    let mut hybrid_env: Vec<(&str, &str)> = BASE_ENV.to_vec();
    hybrid_env.push(("OMI_EMBEDDINGS_BASE_URL", &fake.base_url));
    hybrid_env.push(("OMI_EMBEDDINGS_MODEL", "bench-fake"));
    let server = ServerProcess::start(binary, &url, &hybrid_env)?;
    let started = Instant::now();
    seed::through_api(
        server.address,
        &user.key,
        "/v1/dev/user/memories/batch",
        seed::MEMORIES / seed::MEMORY_BATCH,
        seed::memory_batch_bodies(0),
    )
    .await?;
    eprintln!(
        "seeded {} memories in {:.1} s",
        seed::MEMORIES,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    loop {
        let left = backlog(&database).context("reading the embedding queue")?;
        if left == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("{left} memories still wait for a vector after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "embedded them in {:.1} s ({} requests to the embeddings server)",
        started.elapsed().as_secs_f64(),
        fake.requests()
    );
    let hybrid = search_p95(&server, &user.key, "hybrid", budget).await?;
    drop(server);

    let server = ServerProcess::start(binary, &url, &BASE_ENV)?;
    let lexical = search_p95(&server, &user.key, "lexical", budget).await?;
    drop(server);
    println!(
        "targets: lexical p95 < {TARGET_LEXICAL_P95_MS} ms ({}), hybrid p95 < {TARGET_HYBRID_P95_MS} ms ({})",
        if lexical < TARGET_LEXICAL_P95_MS {
            "met"
        } else {
            "missed"
        },
        if hybrid < TARGET_HYBRID_P95_MS {
            "met"
        } else {
            "missed"
        },
    );
    Ok(())
}
