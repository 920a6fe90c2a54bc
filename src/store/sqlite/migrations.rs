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
        9,
        "conversation_starred",
        include_str!("../../../migrations/sqlite/0009_conversation_starred.sql"),
    ),
    (
        10,
        "insights",
        include_str!("../../../migrations/sqlite/0010_insights.sql"),
    ),
    (
        11,
        "goals_v2",
        include_str!("../../../migrations/sqlite/0011_goals_v2.sql"),
    ),
    (
        12,
        "search",
        include_str!("../../../migrations/sqlite/0012_search.sql"),
    ),
    (
        20,
        "change_feed",
        include_str!("../../../migrations/sqlite/0020_change_feed.sql"),
    ),
    (
        30,
        "import",
        include_str!("../../../migrations/sqlite/0030_import.sql"),
    ),
    (
        40,
        "ingest",
        include_str!("../../../migrations/sqlite/0040_ingest.sql"),
    ),
    (
        50,
        "webhooks",
        include_str!("../../../migrations/sqlite/0050_webhooks.sql"),
    ),
    (
        61,
        "search_imported",
        include_str!("../../../migrations/sqlite/0061_search_imported.sql"),
    ),
    (
        70,
        "export_order",
        include_str!("../../../migrations/sqlite/0070_export_order.sql"),
    ),
    (
        80,
        "console_sessions",
        include_str!("../../../migrations/sqlite/0080_console_sessions.sql"),
    ),
    (
        90,
        "search_vectors",
        include_str!("../../../migrations/sqlite/0090_search_vectors.sql"),
    ),
    (
        100,
        "oauth",
        include_str!("../../../migrations/sqlite/0100_oauth.sql"),
    ),
    (
        110,
        "ingest_inbox_retention",
        include_str!("../../../migrations/sqlite/0110_ingest_inbox_retention.sql"),
    ),
    (
        120,
        "search_index_at_commit",
        include_str!("../../../migrations/sqlite/0120_search_index_at_commit.sql"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_migration_indexes_the_rows_already_there() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("PRAGMA foreign_keys = ON")
            .unwrap();
        // The schema as it was before search, with data in it.
        for (_, _, sql) in &MIGRATIONS[..7] {
            connection.execute_batch(sql).unwrap();
        }
        connection
            .execute_batch(
                "INSERT INTO users VALUES ('u', 'alice', 'Alice', 'h', 0);
                 INSERT INTO memories (user_id, id, content, normalized_content, category,
                     visibility, tags, scoring, manually_added, reviewed, user_review, edited,
                     conversation_id, created_at, updated_at)
                 VALUES ('u', 'm', 'Allergic to peanuts', 'allergic to peanuts', 'system',
                     'private', '[\"health\"]', '01_999_0', 1, 1, 1, 0, NULL, 0, 0);
                 INSERT INTO action_items (id, user_id, description, normalized_description,
                     completed, due_at, completed_at, conversation_id, created_at, updated_at)
                 VALUES ('a', 'u', 'Renew the passport', 'renew the passport', 0, NULL, NULL,
                     NULL, 0, 0);
                 INSERT INTO conversations (id, user_id, created_at, started_at, finished_at,
                     updated_at, title, overview, emoji, category, events, language, source,
                     text, text_source, text_source_spec, discarded, processed_by, folder_id,
                     geolocation)
                 VALUES ('c1', 'u', 0, 0, 0, 0, 'Zoo', 'A visit', 'x', 'other', '[]', 'en',
                     'phone', NULL, NULL, NULL, 0, 'offline', NULL, NULL),
                        ('c2', 'u', 0, 0, 0, 0, 'Notes', 'Text', 'x', 'other', '[]', 'en',
                     'external_integration', 'The budget meeting', 'other_text', NULL, 0,
                     'offline', NULL, NULL);
                 INSERT INTO transcript_segments VALUES
                     ('c1', 1, 'u', 's2', 'the penguins', 'SPEAKER_01', 1, 0, NULL, 1, 2),
                     ('c1', 0, 'u', 's1', 'look at the kangaroos', 'SPEAKER_00', 0, 1, NULL, 0, 1);",
            )
            .unwrap();
        // Record the seven as applied, then let `apply` run the rest.
        connection
            .execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                     applied_at INTEGER NOT NULL) STRICT;
                 INSERT INTO schema_migrations VALUES (1, 'a', 0), (2, 'a', 0), (3, 'a', 0),
                     (4, 'a', 0), (5, 'a', 0), (6, 'a', 0), (7, 'a', 0);",
            )
            .unwrap();
        assert_eq!(apply(&mut connection).unwrap(), MIGRATIONS.len() - 7);
        let count = |table: &str, query: &str| -> i64 {
            connection
                .query_row(
                    &format!("SELECT count(*) FROM {table} WHERE {table} MATCH ?1"),
                    [query],
                    |row| row.get(0),
                )
                .unwrap()
        };
        assert_eq!(count("memories_fts", "peanut"), 1);
        assert_eq!(count("memories_fts", "health"), 1);
        assert_eq!(count("action_items_fts", "passports"), 1);
        assert_eq!(count("conversations_fts", "kangaroo"), 1);
        assert_eq!(
            count("conversations_fts", "\"kangaroos the penguins\""),
            1,
            "segments in order"
        );
        assert_eq!(count("conversations_fts", "budget"), 1);
        assert_eq!(count("conversations_fts", "zoo"), 1);
    }
}
