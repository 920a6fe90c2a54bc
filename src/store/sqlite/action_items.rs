//! Action items on SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tracing::instrument;

use super::feed::{change_stamp, leave_tombstone};
use super::rows::{action_item_from_row, insert_action_item};
use super::{SqliteStore, map_error};
use crate::domain::action_items::{ActionItem, ActionItemChanges, ActionItemFilter};
use crate::domain::feed::TombstoneType;
use crate::domain::paging::Page;
use crate::domain::text::normalize_for_dedup;
use crate::domain::time::{Timestamp, to_micros};
use crate::domain::webhooks::Change;
use crate::store::columns::ACTION_ITEM_COLUMNS;
use crate::store::{ActionItemStore, StoreResult};

/// The list order; `action_items_list_order` holds exactly these terms after `user_id` (and
/// `completed`), so the rows come off the index already sorted.
const LIST_ORDER: &str = "completed, due_at IS NULL, due_at, created_at DESC, id DESC";

/// The list query with only the filters in use, so that each combination gets its own plan
/// (and its own cached statement). Parameters keep fixed numbers; unused ones are ignored.
fn list_sql(filter: &ActionItemFilter) -> String {
    let mut sql = format!("SELECT {ACTION_ITEM_COLUMNS} FROM action_items WHERE user_id = ?1");
    if filter.conversation_id.is_some() {
        sql.push_str(" AND conversation_id = ?2");
    }
    if filter.completed.is_some() {
        sql.push_str(" AND completed = ?3");
    }
    if filter.created_from.is_some() {
        sql.push_str(" AND created_at >= ?4");
    }
    if filter.created_before.is_some() {
        sql.push_str(" AND created_at < ?5");
    }
    sql.push_str(&format!(" ORDER BY {LIST_ORDER} LIMIT ?6 OFFSET ?7"));
    sql
}

pub(super) fn find(
    connection: &Connection,
    user_id: &str,
    id: &str,
) -> rusqlite::Result<Option<ActionItem>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {ACTION_ITEM_COLUMNS} FROM action_items WHERE id = ?1 AND user_id = ?2"
    ))?;
    statement
        .query_row(params![id, user_id], action_item_from_row)
        .optional()
}

fn save(connection: &Connection, user_id: &str, item: &ActionItem) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "UPDATE action_items
         SET description = ?3, normalized_description = ?4, completed = ?5, due_at = ?6,
             completed_at = ?7, updated_at = ?8
         WHERE id = ?1 AND user_id = ?2",
    )?;
    statement.execute(params![
        item.id,
        user_id,
        item.description,
        normalize_for_dedup(&item.description),
        item.completed,
        item.due_at.map(to_micros),
        item.completed_at.map(to_micros),
        to_micros(item.updated_at),
    ])?;
    Ok(())
}

/// A conversation shows its action items: changing one changes the conversation too.
fn touch_conversation(
    connection: &Connection,
    user_id: &str,
    conversation_id: Option<&str>,
    at: Timestamp,
) -> rusqlite::Result<()> {
    if let Some(conversation_id) = conversation_id {
        connection
            .prepare_cached(
                "UPDATE conversations SET updated_at = ?3 WHERE user_id = ?1 AND id = ?2",
            )?
            .execute(params![user_id, conversation_id, to_micros(at)])?;
    }
    Ok(())
}

#[async_trait]
impl ActionItemStore for SqliteStore {
    #[instrument(skip_all)]
    async fn create_action_items(&self, user_id: &str, items: Vec<ActionItem>) -> StoreResult<()> {
        let user_id = user_id.to_string();
        let normalized: Vec<String> = items
            .iter()
            .map(|item| normalize_for_dedup(&item.description))
            .collect();
        self.write(move |tx| {
            let latest = items.iter().map(|item| item.updated_at).max();
            let at = change_stamp(
                tx,
                &user_id,
                latest.unwrap_or_else(crate::domain::time::now),
            )
            .map_err(map_error)?;
            for (item, normalized) in items.iter().zip(&normalized) {
                let item = ActionItem {
                    updated_at: at,
                    ..item.clone()
                };
                insert_action_item(tx, &user_id, &item, normalized).map_err(map_error)?;
            }
            let changes: Vec<Change> = items
                .into_iter()
                .map(|item| Change::ActionItem {
                    created: true,
                    item: Box::new(item),
                })
                .collect();
            super::webhooks::record(tx, &user_id, &changes).map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_action_items(
        &self,
        user_id: &str,
        filter: ActionItemFilter,
        page: Page,
    ) -> StoreResult<Vec<ActionItem>> {
        if filter.is_empty_range() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            let mut statement = c.prepare_cached(&list_sql(&filter))?;
            statement
                .query_map(
                    params![
                        user_id,
                        filter.conversation_id,
                        filter.completed,
                        filter.created_from.map(to_micros),
                        filter.created_before.map(to_micros),
                        page.limit,
                        page.offset,
                    ],
                    action_item_from_row,
                )?
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn get_action_item(&self, user_id: &str, id: &str) -> StoreResult<Option<ActionItem>> {
        self.read(|c| find(c, user_id, id))
    }

    #[instrument(skip_all)]
    async fn update_action_item(
        &self,
        user_id: &str,
        id: &str,
        changes: ActionItemChanges,
        at: Timestamp,
    ) -> StoreResult<Option<ActionItem>> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |tx| {
            let Some(mut item) = find(tx, &user_id, &id).map_err(map_error)? else {
                return Ok(None);
            };
            // `at` dates the completion; the change time only orders the feed.
            let changed_at = change_stamp(tx, &user_id, at).map_err(map_error)?;
            item.apply(&changes, at);
            item.updated_at = changed_at;
            save(tx, &user_id, &item).map_err(map_error)?;
            touch_conversation(tx, &user_id, item.conversation_id.as_deref(), changed_at)
                .map_err(map_error)?;
            let change = Change::ActionItem {
                created: false,
                item: Box::new(item.clone()),
            };
            super::webhooks::record(tx, &user_id, &[change]).map_err(map_error)?;
            Ok(Some(item))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn delete_action_item(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |tx| {
            let deleted: Option<Option<String>> = tx
                .prepare_cached(
                    "DELETE FROM action_items WHERE id = ?1 AND user_id = ?2
                     RETURNING conversation_id",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row(params![id, user_id], |row| row.get(0))
                        .optional()
                })
                .map_err(map_error)?;
            let Some(conversation_id) = deleted else {
                return Ok(false);
            };
            let at = change_stamp(tx, &user_id, crate::domain::time::now()).map_err(map_error)?;
            leave_tombstone(tx, &user_id, TombstoneType::ActionItem, &id, at).map_err(map_error)?;
            touch_conversation(tx, &user_id, conversation_id.as_deref(), at).map_err(map_error)?;
            let change = Change::ActionItemDeleted { id, at };
            super::webhooks::record(tx, &user_id, &[change]).map_err(map_error)?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_datetime;

    fn plan(connection: &Connection, filter: &ActionItemFilter) -> String {
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {}", list_sql(filter)))
            .unwrap();
        let rows: Vec<String> = statement
            .query_map(params!["u", "c", true, 0i64, 1i64, 10i64, 0i64], |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.join("\n")
    }

    fn migrated() -> Connection {
        let mut connection = Connection::open_in_memory().unwrap();
        super::super::migrations::apply(&mut connection).unwrap();
        connection
    }

    /// Each filter combination that can return many rows reads them off an index in list order.
    #[test]
    fn lists_read_an_index_in_list_order_without_sorting() {
        let connection = migrated();
        let cases = [
            (ActionItemFilter::default(), "action_items_list_order"),
            (
                ActionItemFilter {
                    completed: Some(false),
                    ..Default::default()
                },
                "action_items_list_order",
            ),
            (
                ActionItemFilter {
                    conversation_id: Some("c".into()),
                    ..Default::default()
                },
                "action_items_by_conversation",
            ),
            (
                ActionItemFilter {
                    conversation_id: Some("c".into()),
                    completed: Some(true),
                    ..Default::default()
                },
                "action_items_by_conversation",
            ),
        ];
        for (filter, index) in cases {
            let plan = plan(&connection, &filter);
            assert!(plan.contains(index), "{filter:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{filter:?}: {plan}");
        }
    }

    #[test]
    fn a_date_range_reads_the_creation_index() {
        let connection = migrated();
        let filter = ActionItemFilter {
            created_from: parse_datetime("2025-01-01T00:00:00Z"),
            created_before: parse_datetime("2025-02-01T00:00:00Z"),
            ..Default::default()
        };
        let plan = plan(&connection, &filter);
        assert!(plan.contains("action_items_by_created"), "{plan}");
    }
}
