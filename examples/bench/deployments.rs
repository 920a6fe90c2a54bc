//! `--deployments`: the same endpoints on the embedded SQLite default, on PostgreSQL, and on two
//! stateless replicas sharing that PostgreSQL database, side by side in one run, each figure with
//! its ratio to the SQLite one measured in the same run.
//!
//! Every deployment gets a fresh database (a temporary SQLite file, or a new database on the
//! PostgreSQL server, dropped afterwards), the same seed, and the same load; with two replicas
//! the load generator spreads its connections over both, as a round-robin load balancer would.
//! All of it runs on this one machine. With enough CPUs (one for the load generator, one for
//! PostgreSQL, one per replica) each part is pinned to CPUs of its own and PostgreSQL is a private
//! instance started for the run, so a second replica shows what its own cores add; with fewer, the
//! run says that pinning was skipped, and replicas compete with each other, with PostgreSQL and
//! with the load generator for the same cores.
//!
//! PostgreSQL is reached over loopback without TLS (`sslmode=disable`), as a server on the same
//! host is best reached; one more deployment measures the same single replica with TLS
//! (`sslmode=require`), which every statement pays on both sides (docs/BENCHMARKS.md). It is left
//! out when the run starts its own PostgreSQL for pinning, which has no certificate.

use std::path::Path;

use anyhow::Context;

use crate::pinning::{self, CpuLayout};
use crate::postgres::TestDatabase;
use crate::private_postgres::PrivatePostgres;
use crate::report::{self, Row};
use crate::server_process::{ServerProcess, create_user, database_in, sqlite_url};
use crate::{Plan, Scenario, measure, seed_for};

/// The endpoints compared: the static ceiling, the hot list and the batch write.
const SCENARIOS: [&str; 3] = ["healthz", "memories", "action-items-batch"];

struct Deployment {
    name: &'static str,
    postgres: bool,
    replicas: usize,
    /// Whether the replicas reach PostgreSQL over TLS.
    tls: bool,
}

const DEPLOYMENTS: [Deployment; 4] = [
    Deployment {
        name: "SQLite, 1 server",
        postgres: false,
        replicas: 1,
        tls: false,
    },
    Deployment {
        name: "PostgreSQL, 1 replica",
        postgres: true,
        replicas: 1,
        tls: false,
    },
    Deployment {
        name: "PostgreSQL, 2 replicas",
        postgres: true,
        replicas: 2,
        tls: false,
    },
    Deployment {
        name: "PostgreSQL TLS, 1 replica",
        postgres: true,
        replicas: 1,
        tls: true,
    },
];

/// Where a deployment's data lives; dropping it removes the data.
enum Database {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Database {
    async fn create(postgres: bool, server_url: &str) -> anyhow::Result<Self> {
        Ok(if postgres {
            Database::Postgres(TestDatabase::create_on(server_url.to_string()).await)
        } else {
            Database::Sqlite(tempfile::tempdir()?)
        })
    }

    fn url(&self, tls: bool) -> String {
        match self {
            Database::Sqlite(folder) => sqlite_url(&database_in(folder.path())),
            Database::Postgres(database) => {
                let separator = if database.url.contains('?') { '&' } else { '?' };
                let mode = if tls { "require" } else { "disable" };
                format!("{}{separator}sslmode={mode}", database.url)
            }
        }
    }
}

pub async fn compare(
    binary: &Path,
    postgres_server_url: &str,
    scenarios: Vec<Scenario>,
    server_env: &[(&str, &str)],
    plan: &Plan,
) -> anyhow::Result<()> {
    let scenarios: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|s| SCENARIOS.contains(&s.name))
        .collect();
    let most_replicas = DEPLOYMENTS.iter().map(|d| d.replicas).max().unwrap_or(1);
    // One layout for every deployment: each replica keeps its CPUs from one to the next.
    let layout = CpuLayout::split(&pinning::available_cpus(), most_replicas);
    let pinning_note = match &layout {
        Ok(layout) => layout.to_string(),
        Err(skipped) => skipped.to_string(),
    };
    eprintln!("{pinning_note}");
    let private_postgres = match &layout {
        Ok(layout) => Some(PrivatePostgres::start(&layout.postgres).await?),
        Err(_) => None,
    };
    let postgres_server_url = private_postgres
        .as_ref()
        .map_or(postgres_server_url, |server| server.url.as_str());
    if let Ok(layout) = &layout {
        pinning::pin_process(std::process::id(), &layout.load_generator)?;
    }
    let mut results: Vec<(&'static str, Vec<Row>)> = Vec::new();
    for deployment in &DEPLOYMENTS {
        if deployment.tls && private_postgres.is_some() {
            eprintln!(
                "--- {}: skipped, the private PostgreSQL has no certificate",
                deployment.name
            );
            continue;
        }
        eprintln!("--- {}", deployment.name);
        let database = Database::create(deployment.postgres, postgres_server_url).await?;
        let url = database.url(deployment.tls);
        let user = create_user(binary, &url, "bench")?;
        let servers = (0..deployment.replicas)
            .map(|_| ServerProcess::start(binary, &url, server_env))
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| format!("starting {}", deployment.name))?;
        if let Ok(layout) = &layout {
            for (server, cpus) in servers.iter().zip(&layout.replicas) {
                pinning::pin_process(server.pid(), cpus)?;
            }
        }
        seed_for(&scenarios, &servers[0], &user.key).await?;
        let mut rows = Vec::new();
        for scenario in &scenarios {
            rows.push(measure(&servers, scenario, &user.key, plan).await);
        }
        report::with_ceiling(&mut rows);
        results.push((deployment.name, rows));
        drop(servers);
        drop(database);
    }
    print(&results, &pinning_note, layout.is_ok());
    Ok(())
}

fn print(results: &[(&'static str, Vec<Row>)], pinning_note: &str, pinned: bool) {
    let baseline = &results[0].1;
    println!(
        "\n{:<24} {:<52} {:>5} {:>9} {:>8} {:>8} {:>9} {:>8} {:>6}",
        "deployment",
        "endpoint",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "vs SQLite",
        "vs ceil",
        "failed"
    );
    for (deployment, rows) in results {
        for (row, base) in rows.iter().zip(baseline) {
            println!(
                "{:<24} {:<52} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>8.2}x {:>8.2} {:>6}",
                deployment,
                row.label,
                row.connections,
                row.requests_per_second,
                row.p50_ms,
                row.p99_ms,
                row.requests_per_second / base.requests_per_second,
                row.vs_ceiling.unwrap_or(f64::NAN),
                row.failures
            );
        }
    }
    println!("\n{pinning_note}.");
    if !pinned {
        println!(
            "One machine: replicas, PostgreSQL and the load generator share its cores, so a \
             second replica shows its coordination cost here, not the capacity it adds on its own \
             machine."
        );
    }
}
