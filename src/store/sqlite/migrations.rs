//! Schema migrations for SQLite, applied in order, each in its own transaction, at start and by
//! `omi-server migrate`.

use anyhow::Context;
use rusqlite::Connection;

/// (version, name, SQL). Append only: a released migration never changes.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "identity",
        include_str!("../../../migrations/sqlite/0001_identity.sql"),
    ),
    (
        2,
        "memories",
        include_str!("../../../migrations/sqlite/0002_memories.sql"),
    ),
    (
        3,
        "action_items",
        include_str!("../../../migrations/sqlite/0003_action_items.sql"),
    ),
    (
        4,
        "goals",
        include_str!("../../../migrations/sqlite/0004_goals.sql"),
    ),
    (
        5,
        "conversations",
        include_str!("../../../migrations/sqlite/0005_conversations.sql"),
    ),
    (
        6,
        "processing_parts",
        include_str!("../../../migrations/sqlite/0006_processing_parts.sql"),
    ),
    (
        7,
        "conversation_items_index",
        include_str!("../../../migrations/sqlite/0007_conversation_items_index.sql"),
    ),
    (
        8,
        "idempotency",
        include_str!("../../../migrations/sqlite/0008_idempotency.sql"),
    ),
    (
        30,
        "import",
        include_str!("../../../migrations/sqlite/0030_import.sql"),
    ),
];

pub fn apply(connection: &mut Connection) -> anyhow::Result<usize> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT;",
    )?;
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |row| row.get(0),
        )?;
        if !done {
            tx.execute_batch(sql)
                .with_context(|| format!("applying migration {version} ({name})"))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![
                    version,
                    name,
                    crate::domain::time::to_micros(crate::domain::time::now())
                ],
            )?;
            applied += 1;
        }
        tx.commit()?;
    }
    Ok(applied)
}
