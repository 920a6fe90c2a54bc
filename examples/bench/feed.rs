//! The change-feed scale check: one feed page (`GET memories?updated_since=...&limit=25`) for a
//! user with 1,000 memories against one with 1,000,000, on one SQLite database seeded straight
//! into the file, with the plan of the feed query printed. A page reads the
//! `(user_id, updated_at, id)` index from its position, so its cost should not grow with the
//! user's size.

use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use chrono::Duration as ChronoDuration;
use hyper::Method;
use omi_server::domain::feed::FeedWindow;
use omi_server::domain::time;
use omi_server::store::sqlite::feed::memories_feed_sql;

use crate::load::{self, Target};
use crate::report::{Check, Row};
use crate::server_process::{CliUser, ServerProcess, create_user, database_in, sqlite_url};
use crate::{Plan, SERVER_ENV, seed};

const PAGE: i64 = 25;

pub async fn scale_check(binary: &Path, plan: &Plan) -> anyhow::Result<Check> {
    let folder = tempfile::tempdir()?;
    let database = database_in(folder.path());
    let url = sqlite_url(&database);
    let small: CliUser = create_user(binary, &url, "small")?;
    let big: CliUser = create_user(binary, &url, "big")?;
    let started = Instant::now();
    // Seeded memories changed one second apart, the newest now.
    let newest = time::now();
    seed::memories_into_sqlite(&database, &small.id, 1_000)?;
    seed::memories_into_sqlite(&database, &big.id, 1_000_000)?;
    eprintln!(
        "seeded 1,000 + 1,000,000 memories into SQLite in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // A page from the middle of each user's history: the feed has to seek, not just start.
    let middle = |count: i64| newest - ChronoDuration::seconds(count / 2);
    print_plan(&database, &big.id, middle(1_000_000))?;

    let server = ServerProcess::start(binary, &url, &SERVER_ENV)?;
    println!(
        "\nChange feed: GET /v1/dev/user/memories?updated_since=<middle>&limit={PAGE}, 64 connections"
    );
    let mut p50 = Vec::new();
    for (label, user, count) in [
        ("1,000 memories", &small, 1_000),
        ("1,000,000 memories", &big, 1_000_000),
    ] {
        let since = time::format(&middle(count)).replace('+', "%2B");
        let target = Target {
            method: Method::GET,
            path: format!("/v1/dev/user/memories?updated_since={since}&limit={PAGE}"),
            authorization: Some(format!("Bearer {}", user.key)),
            body: None,
            idempotency_keys: false,
        };
        let mut outcomes = Vec::new();
        for _ in 0..plan.runs {
            outcomes.push(load::run(&[server.address], &target, 64, plan.budget).await);
        }
        let row = Row::from_runs("feed", label.into(), 64, &outcomes, None, false);
        println!(
            "  {label:<20} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  failed {}",
            row.requests_per_second, row.p50_ms, row.p99_ms, row.failures
        );
        if row.failures > 0 {
            bail!(
                "the feed check had failed requests: {}",
                row.failure_example
            );
        }
        p50.push(row.p50_ms);
    }
    let ratio = p50[1] / p50[0];
    println!("  p50 ratio 1,000,000 / 1,000: {ratio:.2}x");
    Ok(Check {
        what: "change-feed page, 1,000,000 vs 1,000 memories (p50 ratio)".into(),
        target: "within 2x".into(),
        measured: format!("{ratio:.2}x"),
        met: ratio <= 2.0,
    })
}

/// The server's own feed statement and the plan SQLite chooses for it.
fn print_plan(database: &Path, user_id: &str, since: time::Timestamp) -> anyhow::Result<()> {
    let connection = rusqlite::Connection::open(database)?;
    let (sql, values) =
        memories_feed_sql(user_id, &[], &FeedWindow::probing(Some(since), None, PAGE));
    let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let details: Vec<String> = statement
        .query_map(rusqlite::params_from_iter(values.iter()), |row| row.get(3))?
        .collect::<Result<_, _>>()?;
    println!(
        "\nEXPLAIN QUERY PLAN {}",
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    for detail in details {
        println!("  {detail}");
    }
    Ok(())
}
