//! Schema migrations for PostgreSQL, applied in order at start and by `omi-server migrate`.
//!
//! All pending migrations run in one transaction holding a transaction-scoped advisory lock:
//! replicas that start together queue on the lock, and the later ones find nothing left to do.
//! PostgreSQL DDL is transactional, so a failed migration leaves the schema as it was.

use anyhow::Context;
use deadpool_postgres::Object;

/// (version, name, SQL). Append only: a released migration never changes.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "identity",
        include_str!("../../../migrations/postgres/0001_identity.sql"),
    ),
    (
        2,
        "memories",
        include_str!("../../../migrations/postgres/0002_memories.sql"),
    ),
    (
        3,
        "action_items",
        include_str!("../../../migrations/postgres/0003_action_items.sql"),
    ),
    (
        4,
        "goals",
        include_str!("../../../migrations/postgres/0004_goals.sql"),
    ),
    (
        5,
        "conversations",
        include_str!("../../../migrations/postgres/0005_conversations.sql"),
    ),
    (
        6,
        "processing_parts",
        include_str!("../../../migrations/postgres/0006_processing_parts.sql"),
    ),
    (
        7,
        "conversation_items_index",
        include_str!("../../../migrations/postgres/0007_conversation_items_index.sql"),
    ),
    (
        8,
        "idempotency",
        include_str!("../../../migrations/postgres/0008_idempotency.sql"),
    ),
    (
        9,
        "conversation_starred",
        include_str!("../../../migrations/postgres/0009_conversation_starred.sql"),
    ),
    (
        10,
        "insights",
        include_str!("../../../migrations/postgres/0010_insights.sql"),
    ),
    (
        11,
        "goals_v2",
        include_str!("../../../migrations/postgres/0011_goals_v2.sql"),
    ),
    (
        12,
        "search",
        include_str!("../../../migrations/postgres/0012_search.sql"),
    ),
    (
        20,
        "change_feed",
        include_str!("../../../migrations/postgres/0020_change_feed.sql"),
    ),
    (
        30,
        "import",
        include_str!("../../../migrations/postgres/0030_import.sql"),
    ),
    (
        40,
        "ingest",
        include_str!("../../../migrations/postgres/0040_ingest.sql"),
    ),
    (
        50,
        "webhooks",
        include_str!("../../../migrations/postgres/0050_webhooks.sql"),
    ),
    (
        60,
        "search_candidates",
        include_str!("../../../migrations/postgres/0060_search_candidates.sql"),
    ),
    (
        61,
        "search_imported",
        include_str!("../../../migrations/postgres/0061_search_imported.sql"),
    ),
    (
        70,
        "export_order",
        include_str!("../../../migrations/postgres/0070_export_order.sql"),
    ),
    (
        80,
        "console_sessions",
        include_str!("../../../migrations/postgres/0080_console_sessions.sql"),
    ),
    (
        90,
        "search_vectors",
        include_str!("../../../migrations/postgres/0090_search_vectors.sql"),
    ),
    (
        100,
        "oauth",
        include_str!("../../../migrations/postgres/0100_oauth.sql"),
    ),
    (
        110,
        "ingest_inbox_retention",
        include_str!("../../../migrations/postgres/0110_ingest_inbox_retention.sql"),
    ),
];

/// The advisory lock key that serializes migrations: the bytes of "omi-migr".
const MIGRATION_LOCK_KEY: i64 = 0x6f6d_692d_6d69_6772;

pub async fn apply(client: &mut Object) -> anyhow::Result<usize> {
    let tx = client.transaction().await?;
    // A migration may legitimately take longer than a request's statement timeout, and the
    // "already exists" notices of a second replica are noise.
    tx.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL client_min_messages = warning")
        .await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .context("taking the migration lock")?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL
         )",
    )
    .await?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying migration {version} ({name})"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())",
            &[version, name],
        )
        .await?;
        applied += 1;
    }
    tx.commit().await?;
    Ok(applied)
}
