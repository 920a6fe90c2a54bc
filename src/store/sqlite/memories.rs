//! Memories on SQLite. Every statement is scoped by `user_id`; lists read an index in list order.

use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, params};
use tracing::instrument;

use super::feed::{change_stamp, leave_tombstone, lift_tombstone};
use super::rows::{insert_memory, memory_from_row};
use super::{SqliteStore, map_error};
use crate::domain::feed::TombstoneType;
use crate::domain::memories::{Memory, MemoryCategory, MemoryChanges, NewMemory};
use crate::domain::paging::Page;
use crate::domain::text::normalize_for_dedup;
use crate::domain::time::{Timestamp, to_micros};
use crate::domain::webhooks::Change;
use crate::store::columns::MEMORY_COLUMNS;
use crate::store::{MemoryStore, StoreResult};

/// The list query for `category_count` categories (0 = all). Unfiltered, it walks
/// `memories_list_order`; one category walks `memories_by_category`; several walk
/// `memories_list_order` checking the category stored in the index. None sorts.
pub fn list_sql(category_count: usize) -> String {
    let filter = match category_count {
        0 => String::new(),
        n => format!(" AND category IN ({})", vec!["?"; n].join(", ")),
    };
    format!(
        "SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = ?{filter}
         ORDER BY scoring DESC, created_at DESC, id DESC LIMIT ? OFFSET ?"
    )
}

/// The list query for every number of categories, built once: the text is the statement cache's key.
static LIST_SQL: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..=MemoryCategory::ALL.len()).map(list_sql).collect());

pub(super) fn find_memory(
    connection: &Connection,
    user_id: &str,
    memory_id: &str,
) -> rusqlite::Result<Option<Memory>> {
    connection
        .prepare_cached(&format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = ?1 AND id = ?2"
        ))?
        .query_row(params![user_id, memory_id], memory_from_row)
        .optional()
}

/// Writes every mutable field of a stored memory (the key and creation time never change).
fn rewrite_memory(connection: &Connection, user_id: &str, memory: &Memory) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "UPDATE memories SET content = ?1, normalized_content = ?2, category = ?3,
                 visibility = ?4, tags = ?5, scoring = ?6, manually_added = ?7, reviewed = ?8,
                 user_review = ?9, edited = ?10, updated_at = ?11
             WHERE user_id = ?12 AND id = ?13",
        )?
        .execute(params![
            memory.content,
            normalize_for_dedup(&memory.content),
            memory.category.as_str(),
            memory.visibility.as_str(),
            serde_json::to_string(&memory.tags).expect("tags serialize"),
            memory.scoring,
            memory.manually_added,
            memory.reviewed,
            memory.user_review,
            memory.edited,
            to_micros(memory.updated_at),
            user_id,
            memory.id,
        ])?;
    Ok(())
}

/// Creates the memory, or applies the request to the stored one with the same derived id.
fn save_memory(
    connection: &Connection,
    user_id: &str,
    request: NewMemory,
    now: Timestamp,
) -> rusqlite::Result<Memory> {
    match find_memory(connection, user_id, &request.id())? {
        Some(existing) => {
            let memory = request.applied_to(existing, now);
            rewrite_memory(connection, user_id, &memory)?;
            Ok(memory)
        }
        None => {
            let memory = request.into_memory(now, crate::processing::default_memory_category);
            insert_memory(connection, user_id, &memory)?;
            lift_tombstone(connection, user_id, TombstoneType::Memory, &memory.id)?;
            Ok(memory)
        }
    }
}

#[async_trait]
impl MemoryStore for SqliteStore {
    #[instrument(skip_all)]
    async fn list_memories(
        &self,
        user_id: &str,
        categories: &[MemoryCategory],
        page: Page,
    ) -> StoreResult<Vec<Memory>> {
        // Repeats dropped, so there are at most 14 and each count has its prepared statement.
        let mut category_names: Vec<&str> = Vec::with_capacity(categories.len());
        for category in categories {
            if !category_names.contains(&category.as_str()) {
                category_names.push(category.as_str());
            }
        }
        self.read(|c| {
            let mut statement = c.prepare_cached(&LIST_SQL[category_names.len()])?;
            let mut values: Vec<&dyn ToSql> = Vec::with_capacity(category_names.len() + 3);
            values.push(&user_id);
            values.extend(category_names.iter().map(|name| name as &dyn ToSql));
            values.push(&page.limit);
            values.push(&page.offset);
            statement
                .query_map(values.as_slice(), memory_from_row)?
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn get_memory(&self, user_id: &str, memory_id: &str) -> StoreResult<Option<Memory>> {
        self.read(|c| find_memory(c, user_id, memory_id))
    }

    #[instrument(skip_all, fields(count = requests.len()))]
    async fn save_memories(
        &self,
        user_id: &str,
        requests: Vec<NewMemory>,
        now: Timestamp,
    ) -> StoreResult<Vec<Memory>> {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            // One change time for the whole batch.
            let now = change_stamp(tx, &user_id, now).map_err(map_error)?;
            let saved = requests
                .into_iter()
                .map(|request| save_memory(tx, &user_id, request, now))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_error)?;
            let changes: Vec<Change> = saved
                .iter()
                .map(|memory| Change::Memory {
                    created: memory.created_at == now,
                    memory: Box::new(memory.clone()),
                })
                .collect();
            super::webhooks::record(tx, &user_id, &changes).map_err(map_error)?;
            Ok(saved)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn update_memory(
        &self,
        user_id: &str,
        memory_id: &str,
        changes: MemoryChanges,
        now: Timestamp,
    ) -> StoreResult<Option<Memory>> {
        let (user_id, memory_id) = (user_id.to_string(), memory_id.to_string());
        self.write(move |tx| {
            let Some(stored) = find_memory(tx, &user_id, &memory_id).map_err(map_error)? else {
                return Ok(None);
            };
            let now = change_stamp(tx, &user_id, now).map_err(map_error)?;
            let memory = changes.applied_to(stored, now);
            rewrite_memory(tx, &user_id, &memory).map_err(map_error)?;
            let change = Change::Memory {
                created: false,
                memory: Box::new(memory.clone()),
            };
            super::webhooks::record(tx, &user_id, &[change]).map_err(map_error)?;
            Ok(Some(memory))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn delete_memory(&self, user_id: &str, memory_id: &str) -> StoreResult<bool> {
        let (user_id, memory_id) = (user_id.to_string(), memory_id.to_string());
        self.write(move |tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM memories WHERE user_id = ?1 AND id = ?2")
                .and_then(|mut statement| statement.execute(params![user_id, memory_id]))
                .map_err(map_error)?;
            if deleted > 0 {
                let at =
                    change_stamp(tx, &user_id, crate::domain::time::now()).map_err(map_error)?;
                leave_tombstone(tx, &user_id, TombstoneType::Memory, &memory_id, at)
                    .map_err(map_error)?;
                let change = Change::MemoryDeleted { id: memory_id, at };
                super::webhooks::record(tx, &user_id, &[change]).map_err(map_error)?;
            }
            Ok(deleted > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteOptions;

    /// The `detail` lines of the plan SQLite chooses for the list query.
    fn list_plan(store: &SqliteStore, category_count: usize) -> Vec<String> {
        let sql = format!("EXPLAIN QUERY PLAN {}", list_sql(category_count));
        store
            .read(|c| {
                let mut statement = c.prepare(&sql)?;
                let mut values: Vec<Box<dyn ToSql>> = vec![Box::new("user")];
                values.extend(
                    MemoryCategory::ALL
                        .iter()
                        .take(category_count)
                        .map(|category| Box::new(category.as_str()) as Box<dyn ToSql>),
                );
                values.push(Box::new(25_i64));
                values.push(Box::new(0_i64));
                let values: Vec<&dyn ToSql> = values.iter().map(|v| v.as_ref()).collect();
                statement
                    .query_map(values.as_slice(), |row| row.get::<_, String>(3))?
                    .collect()
            })
            .unwrap()
    }

    #[tokio::test]
    async fn every_list_query_reads_an_index_in_list_order_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&SqliteOptions::for_path(dir.path().join("plan.db")))
            .await
            .unwrap();
        for (category_count, index) in [
            (0, "memories_list_order"),
            (1, "memories_by_category"),
            (2, "memories_list_order"),
            (14, "memories_list_order"),
        ] {
            let plan = list_plan(&store, category_count);
            assert!(
                plan.iter()
                    .any(|step| step.starts_with("SEARCH memories USING") && step.contains(index)),
                "{category_count} categories: expected {index}, got {plan:?}"
            );
            assert!(
                plan.iter().all(|step| !step.contains("TEMP B-TREE")),
                "{category_count} categories sort: {plan:?}"
            );
        }
    }
}
