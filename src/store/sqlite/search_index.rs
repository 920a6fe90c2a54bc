//! New memories and action items join the full-text index and the embedding queue at the end of
//! the transaction that stores them, all of them with one statement per table.
//!
//! Each insert records its object in the table's `*_search_docs` table ([`add_memory`],
//! [`add_action_item`]), which gives it its document number; [`index_new_documents`] runs just
//! before every commit of the writer (and once when the store opens) and indexes the documents
//! numbered above the newest one the FTS5 index holds. Row triggers used to do this: a trigger
//! that writes to an FTS5 table opens a statement savepoint for each insert, and FTS5 writes its
//! pending terms out as a new segment at every savepoint, so a 50-item batch wrote 50 one-row
//! segments and merged them (docs/DECISIONS.md, "Index maintenance cost on writes"). Updates and deletes keep their
//! triggers: they are one row per statement, and one that meets a document not indexed yet
//! changes nothing there, which is right, since the commit indexes the row as it then is.
//!
//! Document numbers only grow within a transaction (`INTEGER PRIMARY KEY`, the largest plus
//! one), and every document up to the newest indexed one is indexed, so "above the newest
//! indexed" is exactly the documents still waiting. A deleted newest document may have its
//! number given again; its index row was deleted with it.

use rusqlite::{Connection, params};

/// Records a new memory for the index (in the transaction that inserts it).
pub fn add_memory(connection: &Connection, user_id: &str, id: &str) -> rusqlite::Result<()> {
    connection
        .prepare_cached("INSERT INTO memory_search_docs (user_id, id) VALUES (?1, ?2)")?
        .execute(params![user_id, id])?;
    Ok(())
}

/// Records a new action item for the index (in the transaction that inserts it).
pub fn add_action_item(connection: &Connection, user_id: &str, id: &str) -> rusqlite::Result<()> {
    connection
        .prepare_cached("INSERT INTO action_item_search_docs (user_id, id) VALUES (?1, ?2)")?
        .execute(params![user_id, id])?;
    Ok(())
}

/// One index fed at commit: its documents table, its FTS5 table, and how to read the indexed
/// columns of a document's object.
struct Index {
    /// The kind in `search_vector_queue`.
    kind: &'static str,
    /// The newest document number recorded.
    newest_document: &'static str,
    /// The newest document number indexed: the largest rowid of the FTS5 table's column-size
    /// table, which holds one row per indexed document.
    newest_indexed: &'static str,
    /// Indexes the documents numbered above `?1`.
    index: &'static str,
    /// Queues the objects of the documents numbered above `?1` for a vector (only those that
    /// exist, like the index: a record without its object is never queued again and again).
    queue: &'static str,
}

const INDEXES: [Index; 2] = [
    Index {
        kind: "memory",
        newest_document: "SELECT max(doc) FROM memory_search_docs",
        newest_indexed: "SELECT max(id) FROM memories_fts_docsize",
        index: "INSERT INTO memories_fts (rowid, content, tags)
                SELECT d.doc, m.content, m.tags
                FROM memory_search_docs d
                CROSS JOIN memories m ON m.user_id = d.user_id AND m.id = d.id
                WHERE d.doc > ?1 ORDER BY d.doc",
        queue: "INSERT INTO search_vector_queue (kind, user_id, id)
                SELECT 'memory', d.user_id, d.id
                FROM memory_search_docs d
                CROSS JOIN memories m ON m.user_id = d.user_id AND m.id = d.id
                WHERE d.doc > ?1 ORDER BY d.doc",
    },
    Index {
        kind: "action_item",
        newest_document: "SELECT max(doc) FROM action_item_search_docs",
        newest_indexed: "SELECT max(id) FROM action_items_fts_docsize",
        index: "INSERT INTO action_items_fts (rowid, description)
                SELECT d.doc, a.description
                FROM action_item_search_docs d
                CROSS JOIN action_items a ON a.id = d.id AND +a.user_id = d.user_id
                WHERE d.doc > ?1 ORDER BY d.doc",
        queue: "INSERT INTO search_vector_queue (kind, user_id, id)
                SELECT 'action_item', d.user_id, d.id
                FROM action_item_search_docs d
                CROSS JOIN action_items a ON a.id = d.id AND +a.user_id = d.user_id
                WHERE d.doc > ?1 ORDER BY d.doc",
    },
];

fn newest(connection: &Connection, sql: &str) -> rusqlite::Result<i64> {
    let newest: Option<i64> = connection
        .prepare_cached(sql)?
        .query_row([], |row| row.get(0))?;
    Ok(newest.unwrap_or(0))
}

/// Indexes the memories and action items recorded since the last call and queues them for a
/// vector; runs inside the transaction, just before it commits. Two lookups of a table's last
/// row each when nothing is waiting.
pub fn index_new_documents(connection: &Connection) -> rusqlite::Result<()> {
    for index in &INDEXES {
        let indexed = newest(connection, index.newest_indexed)?;
        if newest(connection, index.newest_document)? <= indexed {
            continue;
        }
        // Queued first: a statement that can fail halfway opens a savepoint, and FTS5 writes
        // its pending terms out at every savepoint once it is part of the transaction; in this
        // order they are written once, at the commit.
        connection.prepare_cached(index.queue)?.execute([indexed])?;
        connection.prepare_cached(index.index)?.execute([indexed])?;
        tracing::trace!(kind = index.kind, after = indexed, "indexed new documents");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::memories::{Memory, MemoryCategory, Visibility};
    use crate::domain::time;
    use crate::store::sqlite::migrations;
    use crate::store::sqlite::rows::insert_memory;

    fn database() -> Connection {
        let mut connection = Connection::open_in_memory().unwrap();
        migrations::apply(&mut connection).unwrap();
        connection
            .execute_batch(
                "INSERT INTO users (id, name, display_name, token_hash, created_at)
                 VALUES ('u', 'alice', 'Alice', 'h', 0)",
            )
            .unwrap();
        connection
    }

    fn memory(id: &str, content: &str) -> Memory {
        let now = time::now();
        Memory {
            id: id.into(),
            content: content.into(),
            category: MemoryCategory::System,
            visibility: Visibility::Private,
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
            manually_added: true,
            scoring: "01_999_0".into(),
            reviewed: false,
            user_review: None,
            edited: false,
            conversation_id: None,
        }
    }

    /// The ids of the memories whose index entry matches `query`.
    fn matches(connection: &Connection, query: &str) -> Vec<String> {
        let mut statement = connection
            .prepare(
                "SELECT d.id FROM memories_fts CROSS JOIN memory_search_docs d
                 ON d.doc = memories_fts.rowid WHERE memories_fts MATCH ?1 ORDER BY d.id",
            )
            .unwrap();
        statement
            .query_map([query], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn queued(connection: &Connection) -> Vec<String> {
        let mut statement = connection
            .prepare("SELECT id FROM search_vector_queue WHERE kind = 'memory' ORDER BY seq")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn commit(connection: &mut Connection, work: impl FnOnce(&Connection)) {
        let transaction = connection.transaction().unwrap();
        work(&transaction);
        index_new_documents(&transaction).unwrap();
        transaction.commit().unwrap();
    }

    #[test]
    fn new_memories_are_indexed_at_commit_as_they_then_are() {
        let mut connection = database();
        commit(&mut connection, |c| {
            insert_memory(c, "u", &memory("a", "sailing on the lake")).unwrap();
            insert_memory(c, "u", &memory("b", "sailing at sea")).unwrap();
            insert_memory(c, "u", &memory("c", "climbing")).unwrap();
            assert!(matches(c, "sailing").is_empty(), "not before the commit");
            // Changed and deleted before the commit: the index takes what is there then.
            c.execute(
                "UPDATE memories SET content = 'rowing on the lake' WHERE id = 'a'",
                [],
            )
            .unwrap();
            c.execute("DELETE FROM memories WHERE id = 'b'", [])
                .unwrap();
        });
        assert!(matches(&connection, "sailing").is_empty());
        assert_eq!(matches(&connection, "rowing"), ["a"]);
        assert_eq!(matches(&connection, "climbing"), ["c"]);
        assert_eq!(
            queued(&connection)[..2],
            ["a", "a"],
            "queued by the update and the commit"
        );
        assert!(!queued(&connection).contains(&"b".to_string()));

        // The newest document deleted: the next one is numbered after what is left, below the
        // deleted one's number.
        commit(&mut connection, |c| {
            c.execute("DELETE FROM memories WHERE id = 'c'", [])
                .unwrap();
        });
        commit(&mut connection, |c| {
            insert_memory(c, "u", &memory("d", "climbing again")).unwrap();
        });
        assert_eq!(matches(&connection, "climbing"), ["d"]);
        // Nothing waiting: a commit changes nothing.
        let before = queued(&connection).len();
        commit(&mut connection, |_| {});
        assert_eq!(queued(&connection).len(), before);
        assert_eq!(matches(&connection, "lake"), ["a"]);
    }

    /// Rows recorded with the store's helpers on a connection of their own (as the benchmark
    /// seeds a file) are indexed when the store next opens the file.
    #[tokio::test]
    async fn the_store_indexes_what_was_recorded_outside_its_writer_when_it_opens() {
        use crate::store::sqlite::{SqliteOptions, SqliteStore};
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("omi.db");
        drop(
            SqliteStore::open(&SqliteOptions::for_path(&path))
                .await
                .unwrap(),
        );
        {
            let connection = Connection::open(&path).unwrap();
            connection
                .execute_batch(
                    "INSERT INTO users (id, name, display_name, token_hash, created_at)
                     VALUES ('u', 'alice', 'Alice', 'h', 0)",
                )
                .unwrap();
            insert_memory(&connection, "u", &memory("a", "sailing on the lake")).unwrap();
            assert!(matches(&connection, "sailing").is_empty());
        }
        drop(
            SqliteStore::open(&SqliteOptions::for_path(&path))
                .await
                .unwrap(),
        );
        let connection = Connection::open(&path).unwrap();
        assert_eq!(matches(&connection, "sailing"), ["a"]);
        assert_eq!(queued(&connection), ["a"]);
    }
}
