//! `--hybrid`: memory search p95 at 16 connections over one user with 100,000 memories, lexical
//! against hybrid, on the release server on SQLite. The embeddings come from an in-process fake
//! OpenAI-compatible server that answers at once (`tests/support/fake_embeddings.rs`), so the
//! hybrid figure is the server's own cost: embedding the query over loopback, the vector
//! candidates read and compared, the rank fusion.
//!
//! The memories are seeded through the API batches with the embeddings endpoint configured; the
//! benchmark waits until the server's worker has embedded all of them, measures hybrid search,
//! then restarts the server without the endpoint and measures lexical search on the same data.
//! Last, what the search index and the embedding queue cost writes ([`write_cost`]).

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
    write_cost::run(binary, quick).await
}

/// What index maintenance costs a write, measured outside the server on the same SQLite file
/// layout and settings as the server's writer (WAL, `synchronous=FULL`, statement journals in
/// memory): the store's own row inserts, one memory per transaction (`POST memories`) and 50
/// action items per transaction (the batch), in three variants:
/// - as served: each object recorded for the index, the transaction's new documents indexed and
///   queued for a vector just before it commits (`search_index`);
/// - row triggers: the same index kept by the insert triggers that migration 0120 replaced, the
///   layout before it;
/// - none: the rows alone, no search index and no embedding queue.
///
/// The variants take turns in short slices, so that the machine's changing speed weighs on all
/// of them alike.
pub mod write_cost {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use anyhow::ensure;
    use hyper::Method;
    use omi_server::domain::action_items::ActionItem;
    use omi_server::domain::memories::{Memory, MemoryCategory, Visibility, scoring};
    use omi_server::domain::text::normalize_for_dedup;
    use omi_server::domain::time;
    use omi_server::store::sqlite::rows::{
        insert_action_item, insert_action_item_row, insert_memory, insert_memory_row,
    };
    use omi_server::store::sqlite::search_index::index_new_documents;
    use rusqlite::Connection;

    use crate::load::{self, Budget, Target};
    use crate::seed;
    use crate::server_process::{ServerProcess, create_user, database_in, sqlite_url};

    /// Memories and action items in every file before measuring, so that the indexes are not
    /// trivially small.
    const PRESEED_MEMORIES: u64 = 20_000;
    const PRESEED_ACTION_ITEMS: u64 = 5_000;
    const BATCH: u64 = 50;

    /// The insert triggers of migrations 0012 and 0090, which migration 0120 dropped.
    const ROW_TRIGGERS: &str = "
        CREATE TRIGGER memories_search_insert AFTER INSERT ON memories BEGIN
            INSERT INTO memory_search_docs (user_id, id) VALUES (new.user_id, new.id);
            INSERT INTO memories_fts (rowid, content, tags)
            VALUES (last_insert_rowid(), new.content, new.tags);
        END;
        CREATE TRIGGER action_items_search_insert AFTER INSERT ON action_items BEGIN
            INSERT INTO action_item_search_docs (user_id, id) VALUES (new.user_id, new.id);
            INSERT INTO action_items_fts (rowid, description)
            VALUES (last_insert_rowid(), new.description);
        END;
        CREATE TRIGGER memories_vector_insert AFTER INSERT ON memories BEGIN
            INSERT INTO search_vector_queue (kind, user_id, id)
            VALUES ('memory', new.user_id, new.id);
        END;
        CREATE TRIGGER action_items_vector_insert AFTER INSERT ON action_items BEGIN
            INSERT INTO search_vector_queue (kind, user_id, id)
            VALUES ('action_item', new.user_id, new.id);
        END;";

    #[derive(Clone, Copy, PartialEq)]
    enum Maintenance {
        AtCommit,
        RowTriggers,
        None,
    }

    struct Variant {
        name: &'static str,
        maintenance: Maintenance,
        connection: Connection,
        user_id: String,
        singles: u64,
        singles_time: Duration,
        batches: u64,
        batches_time: Duration,
        next: u64,
    }

    const VARIANTS: [(&str, Maintenance); 3] = [
        ("as served (indexed at commit)", Maintenance::AtCommit),
        ("row triggers (before 0120)", Maintenance::RowTriggers),
        ("none", Maintenance::None),
    ];

    fn memory(n: u64) -> Memory {
        let created_at = time::now();
        let category = if n.is_multiple_of(3) {
            MemoryCategory::Interesting
        } else {
            MemoryCategory::System
        };
        Memory {
            id: format!("write-cost-memory-{n}"),
            content: crate::seed::memory_content(n),
            category,
            visibility: Visibility::Private,
            tags: vec!["bench".into()],
            created_at,
            updated_at: created_at,
            manually_added: true,
            scoring: scoring(true, category, created_at),
            reviewed: false,
            user_review: None,
            edited: false,
            conversation_id: None,
        }
    }

    fn action_item(n: u64) -> ActionItem {
        let now = time::now();
        ActionItem {
            id: format!("write-cost-item-{n}"),
            description: format!("Review the pull request for the billing service (task {n})"),
            completed: false,
            created_at: now,
            updated_at: now,
            due_at: None,
            completed_at: None,
            conversation_id: None,
        }
    }

    /// Commits like the server's writer: the new documents indexed just before `COMMIT`.
    fn commit(
        maintenance: Maintenance,
        transaction: rusqlite::Transaction<'_>,
    ) -> rusqlite::Result<()> {
        if maintenance == Maintenance::AtCommit {
            index_new_documents(&transaction)?;
        }
        transaction.commit()
    }

    fn insert_batch(variant: &mut Variant, items: u64) -> rusqlite::Result<()> {
        let transaction = variant.connection.transaction()?;
        for _ in 0..items {
            let item = action_item(variant.next);
            variant.next += 1;
            let normalized = normalize_for_dedup(&item.description);
            if variant.maintenance == Maintenance::AtCommit {
                insert_action_item(&transaction, &variant.user_id, &item, &normalized)?;
            } else {
                insert_action_item_row(&transaction, &variant.user_id, &item, &normalized)?;
            }
        }
        commit(variant.maintenance, transaction)
    }

    fn insert_single(variant: &mut Variant) -> rusqlite::Result<()> {
        let transaction = variant.connection.transaction()?;
        let memory = memory(variant.next);
        variant.next += 1;
        if variant.maintenance == Maintenance::AtCommit {
            insert_memory(&transaction, &variant.user_id, &memory)?;
        } else {
            insert_memory_row(&transaction, &variant.user_id, &memory)?;
        }
        commit(variant.maintenance, transaction)
    }

    fn open(
        binary: &Path,
        folder: &Path,
        maintenance: Maintenance,
    ) -> anyhow::Result<(Connection, String)> {
        std::fs::create_dir_all(folder)?;
        let database = database_in(folder);
        let user = create_user(binary, &sqlite_url(&database), "writes")?;
        let connection = Connection::open(&database)?;
        // The writer connection's settings (src/store/sqlite/mod.rs).
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -2000;",
        )?;
        if maintenance == Maintenance::RowTriggers {
            connection.execute_batch(ROW_TRIGGERS)?;
        }
        Ok((connection, user.id))
    }

    /// Both measurements: the store's inserts alone ([`outside`]), then the server ([`in_server`]).
    pub async fn run(binary: &Path, quick: bool) -> anyhow::Result<()> {
        outside(binary, quick)?;
        in_server(binary, quick).await
    }

    /// Makes a database's index recording a no-op: each row recorded for the index is dropped
    /// by a trigger, so nothing is ever indexed or queued. What is left of the index's cost is
    /// the recording statement itself (one insert per object, now swallowed), so the loss this
    /// baseline shows is slightly under the true one.
    const INDEX_OFF: &str = "
        CREATE TRIGGER memory_search_docs_off BEFORE INSERT ON memory_search_docs
        BEGIN SELECT RAISE(IGNORE); END;
        CREATE TRIGGER action_item_search_docs_off BEFORE INSERT ON action_item_search_docs
        BEGIN SELECT RAISE(IGNORE); END;";

    /// What clients see: `POST memories` and the 50-item action-item batch at 16 connections
    /// against two release servers, one as served and one whose index recording is switched
    /// off ([`INDEX_OFF`]), taking turns.
    pub async fn in_server(binary: &Path, quick: bool) -> anyhow::Result<()> {
        let folder = tempfile::tempdir()?;
        let mut servers = Vec::new();
        for (index, off) in [false, true].into_iter().enumerate() {
            let place = folder.path().join(index.to_string());
            std::fs::create_dir_all(&place)?;
            let database = database_in(&place);
            let url = sqlite_url(&database);
            let user = create_user(binary, &url, "writes")?;
            if off {
                Connection::open(&database)?.execute_batch(INDEX_OFF)?;
            }
            let server = ServerProcess::start(binary, &url, &super::BASE_ENV)?;
            servers.push((
                server,
                format!("Bearer {}", user.key),
                [0u64; 2],
                [Duration::ZERO; 2],
            ));
        }
        let rounds = if quick { 3 } else { 8 };
        let budget = Budget::Timed {
            warmup: Duration::from_millis(300),
            measure: Duration::from_millis(if quick { 1_000 } else { 2_000 }),
        };
        for round in 0..rounds {
            for (server, authorization, counts, times) in &mut servers {
                let kinds = [
                    ("/v1/dev/user/memories", seed::single_memory_bodies(round)),
                    (
                        "/v1/dev/user/action-items/batch",
                        seed::action_item_batch_bodies(round),
                    ),
                ];
                for (kind, (path, bodies)) in kinds.into_iter().enumerate() {
                    let target = Target {
                        method: Method::POST,
                        path: path.into(),
                        authorization: Some(authorization.clone()),
                        body: Some(bodies),
                        idempotency_keys: false,
                    };
                    let outcome = load::run(&[server.address], &target, 16, budget).await;
                    ensure!(
                        outcome.failed.is_empty() && outcome.transport_errors == 0,
                        "writes failed: {:?} {:?}",
                        outcome.failed,
                        outcome.failure_example
                    );
                    counts[kind] += outcome.succeeded;
                    times[kind] += outcome.measured;
                }
            }
        }
        let rate = |count: u64, time: Duration| count as f64 / time.as_secs_f64();
        let off = &servers[1];
        let base = [rate(off.2[0], off.3[0]), rate(off.2[1], off.3[1])];
        println!(
            "write cost in the server (16 connections, {rounds} turns of {} ms per server and kind):",
            match budget {
                Budget::Timed { measure, .. } => measure.as_millis(),
                Budget::Count(_) => 0,
            }
        );
        for (name, (_, _, counts, times)) in ["as served", "index recording off"]
            .into_iter()
            .zip(&servers)
        {
            let memories = rate(counts[0], times[0]);
            let batches = rate(counts[1], times[1]);
            println!(
                "  {name:<30} POST memories {memories:>7.0}/s ({:.2} of off), 50-item batches {batches:>6.0}/s ({:.2} of off)",
                memories / base[0],
                batches / base[1],
            );
        }
        Ok(())
    }

    fn outside(binary: &Path, quick: bool) -> anyhow::Result<()> {
        let folder = tempfile::tempdir()?;
        let mut variants = Vec::new();
        for (index, (name, maintenance)) in VARIANTS.into_iter().enumerate() {
            let (connection, user_id) =
                open(binary, &folder.path().join(index.to_string()), maintenance)?;
            let mut variant = Variant {
                name,
                maintenance,
                connection,
                user_id,
                singles: 0,
                singles_time: Duration::ZERO,
                batches: 0,
                batches_time: Duration::ZERO,
                next: 0,
            };
            // Pre-seeded in large transactions (fast); the measured writes follow.
            let transaction = variant.connection.transaction()?;
            for n in 0..PRESEED_MEMORIES {
                let memory = memory(1_000_000 + n);
                if maintenance == Maintenance::AtCommit {
                    insert_memory(&transaction, &variant.user_id, &memory)?;
                } else {
                    insert_memory_row(&transaction, &variant.user_id, &memory)?;
                }
            }
            commit(maintenance, transaction)?;
            insert_batch(&mut variant, PRESEED_ACTION_ITEMS)?;
            variants.push(variant);
        }
        let rounds = if quick { 4 } else { 12 };
        let slice = Duration::from_millis(500);
        for _ in 0..rounds {
            for variant in &mut variants {
                let started = Instant::now();
                while started.elapsed() < slice {
                    insert_single(variant)?;
                    variant.singles += 1;
                }
                variant.singles_time += started.elapsed();
                let started = Instant::now();
                while started.elapsed() < slice {
                    insert_batch(variant, BATCH)?;
                    variant.batches += 1;
                }
                variant.batches_time += started.elapsed();
            }
        }
        println!(
            "write cost outside the server ({rounds} turns of {} ms per variant and kind, \
             the writer's settings, {PRESEED_MEMORIES} memories and {PRESEED_ACTION_ITEMS} action items already stored):",
            slice.as_millis()
        );
        let per_second = |count: u64, time: Duration| count as f64 / time.as_secs_f64();
        let none = variants.len() - 1;
        let base_singles = per_second(variants[none].singles, variants[none].singles_time);
        let base_batches = per_second(variants[none].batches, variants[none].batches_time);
        for variant in &variants {
            let singles = per_second(variant.singles, variant.singles_time);
            let batches = per_second(variant.batches, variant.batches_time);
            println!(
                "  {:<30} memory inserts {singles:>7.0}/s ({:.2} of none), 50-item batches {batches:>6.0}/s ({:.2} of none)",
                variant.name,
                singles / base_singles,
                batches / base_batches,
            );
        }
        Ok(())
    }
}
