//! The change feed on SQLite: the per-user change clock every write takes its time from, the
//! tombstones deletions leave, and the feed reads (see `store::feed` for why the order holds).

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use tracing::instrument;

use super::conversations::{FOLDERS_SQL, attach_details, conversation_from_row, list_or_feed_sql};
use super::goals::goal_from_row;
use super::rows::{action_item_from_row, memory_from_row};
use super::{SqliteStore, map_error};
use crate::domain::action_items::{ActionItem, ActionItemFilter};
use crate::domain::conversations::Conversation;
use crate::domain::feed::{FeedWindow, Tombstone, TombstoneType};
use crate::domain::folders::Folder;
use crate::domain::goals::Goal;
use crate::domain::memories::{Memory, MemoryCategory};
use crate::domain::time::{Timestamp, from_micros, to_micros};
use crate::store::StoreResult;
use crate::store::columns::{ACTION_ITEM_COLUMNS, GOAL_COLUMNS, MEMORY_COLUMNS};
use crate::store::conversations::ConversationFilter;
use crate::store::feed::FeedStore;

/// Moves the user's change clock to `max(now, last + 1 µs)` and returns it: the `updated_at` of
/// everything this write transaction changes. SQLite has one writer, so the order holds already;
/// the clock makes two changes in one microsecond (or after the wall clock stepped back) still
/// come in order.
pub(super) fn change_stamp(
    connection: &Connection,
    user_id: &str,
    now: Timestamp,
) -> rusqlite::Result<Timestamp> {
    let stamped: Option<i64> = connection
        .prepare_cached(
            "UPDATE users SET last_change_at = max(?2, coalesce(last_change_at + 1, ?2))
             WHERE id = ?1 RETURNING last_change_at",
        )?
        .query_row(params![user_id, to_micros(now)], |row| row.get(0))
        .or_else(|error| match error {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })?;
    Ok(stamped.map(from_micros).unwrap_or(now))
}

/// Records that the object is gone (or that it went again, later).
pub(super) fn leave_tombstone(
    connection: &Connection,
    user_id: &str,
    kind: TombstoneType,
    id: &str,
    at: Timestamp,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO tombstones (user_id, object_type, object_id, deleted_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, object_type, object_id)
             DO UPDATE SET deleted_at = excluded.deleted_at",
        )?
        .execute(params![user_id, kind.as_str(), id, to_micros(at)])?;
    Ok(())
}

/// An object that exists again (a memory's id comes back with its content) is no longer gone.
pub(super) fn lift_tombstone(
    connection: &Connection,
    user_id: &str,
    kind: TombstoneType,
    id: &str,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "DELETE FROM tombstones WHERE user_id = ?1 AND object_type = ?2 AND object_id = ?3",
        )?
        .execute(params![user_id, kind.as_str(), id])?;
    Ok(())
}

/// Appends the window's conditions on `{prefix}updated_at` and `{prefix}id`, binding their
/// values after those already in `values`.
pub(super) fn push_window(
    sql: &mut String,
    values: &mut Vec<Value>,
    prefix: &str,
    window: &FeedWindow,
) {
    if let Some(since) = window.since {
        values.push(Value::Integer(to_micros(since)));
        sql.push_str(&format!(" AND {prefix}updated_at >= ?{}", values.len()));
    }
    if let Some(after) = &window.after {
        values.push(Value::Integer(to_micros(after.at)));
        values.push(Value::Text(after.id.clone()));
        sql.push_str(&format!(
            " AND ({prefix}updated_at, {prefix}id) > (?{}, ?{})",
            values.len() - 1,
            values.len()
        ));
    }
}

/// `ORDER BY updated_at, id LIMIT ?` with the window's limit bound.
fn push_order(sql: &mut String, values: &mut Vec<Value>, prefix: &str, window: &FeedWindow) {
    values.push(Value::Integer(window.limit));
    sql.push_str(&format!(
        " ORDER BY {prefix}updated_at, {prefix}id LIMIT ?{}",
        values.len()
    ));
}

/// The feed query over one table: `base` ends in its own conditions on `user_id` (bound first).
pub fn feed_sql(base: &str, user_id: &str, window: &FeedWindow) -> (String, Vec<Value>) {
    let mut sql = base.to_string();
    let mut values = vec![Value::Text(user_id.to_string())];
    push_window(&mut sql, &mut values, "", window);
    push_order(&mut sql, &mut values, "", window);
    (sql, values)
}

/// The memories feed query (the benchmark prints its plan).
pub fn memories_feed_sql(
    user_id: &str,
    categories: &[MemoryCategory],
    window: &FeedWindow,
) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = ?1");
    let mut values = vec![Value::Text(user_id.to_string())];
    if !categories.is_empty() {
        values.push(text_list(categories.iter().map(|c| c.as_str())));
        sql.push_str(" AND category IN (SELECT value FROM json_each(?2))");
    }
    push_window(&mut sql, &mut values, "", window);
    push_order(&mut sql, &mut values, "", window);
    (sql, values)
}

fn text_list(items: impl IntoIterator<Item = impl Into<String>>) -> Value {
    let items: Vec<String> = items.into_iter().map(Into::into).collect();
    Value::Text(serde_json::to_string(&items).expect("strings serialize"))
}

#[async_trait]
impl FeedStore for SqliteStore {
    #[instrument(skip_all)]
    async fn memories_changed(
        &self,
        user_id: &str,
        categories: &[MemoryCategory],
        window: &FeedWindow,
    ) -> StoreResult<Vec<Memory>> {
        let (sql, values) = memories_feed_sql(user_id, categories, window);
        self.read(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(values.iter()), memory_from_row)?
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn action_items_changed(
        &self,
        user_id: &str,
        filter: ActionItemFilter,
        window: &FeedWindow,
    ) -> StoreResult<Vec<ActionItem>> {
        if filter.is_empty_range() {
            return Ok(Vec::new());
        }
        let mut sql = format!("SELECT {ACTION_ITEM_COLUMNS} FROM action_items WHERE user_id = ?1");
        let mut values = vec![Value::Text(user_id.to_string())];
        let mut bind = |sql: &mut String, condition: &str, value: Value| {
            values.push(value);
            sql.push_str(&condition.replace('?', &format!("?{}", values.len())));
        };
        if let Some(conversation_id) = &filter.conversation_id {
            bind(
                &mut sql,
                " AND conversation_id = ?",
                Value::Text(conversation_id.clone()),
            );
        }
        if let Some(completed) = filter.completed {
            bind(
                &mut sql,
                " AND completed = ?",
                Value::Integer(i64::from(completed)),
            );
        }
        if let Some(from) = filter.created_from {
            bind(
                &mut sql,
                " AND created_at >= ?",
                Value::Integer(to_micros(from)),
            );
        }
        if let Some(before) = filter.created_before {
            bind(
                &mut sql,
                " AND created_at < ?",
                Value::Integer(to_micros(before)),
            );
        }
        push_window(&mut sql, &mut values, "", window);
        push_order(&mut sql, &mut values, "", window);
        self.read(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(values.iter()), action_item_from_row)?
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn conversations_changed(
        &self,
        user_id: &str,
        filter: &ConversationFilter,
        window: &FeedWindow,
        include_transcript: bool,
    ) -> StoreResult<Vec<Conversation>> {
        let mut values = vec![Value::Text(user_id.to_string())];
        let sql = list_or_feed_sql(filter, Some(window), &mut values);
        let count = values.len();
        values[count - 2] = Value::Integer(window.limit);
        values[count - 1] = Value::Integer(0);
        self.read(|c| {
            let loaded = c
                .prepare_cached(&sql)?
                .query_map(params_from_iter(values.iter()), conversation_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            attach_details(c, user_id, loaded, include_transcript)
        })
    }

    #[instrument(skip_all)]
    async fn goals_changed(&self, user_id: &str, window: &FeedWindow) -> StoreResult<Vec<Goal>> {
        let (sql, values) = feed_sql(
            &format!("SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = ?1"),
            user_id,
            window,
        );
        self.read(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(values.iter()), goal_from_row)?
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn folders_changed(
        &self,
        user_id: &str,
        window: &FeedWindow,
    ) -> StoreResult<Vec<Folder>> {
        let base = FOLDERS_SQL
            .split(" ORDER BY")
            .next()
            .expect("the folder query has a body");
        let mut sql = base.to_string();
        let mut values = vec![Value::Text(user_id.to_string())];
        push_window(&mut sql, &mut values, "f.", window);
        push_order(&mut sql, &mut values, "f.", window);
        self.read(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(values.iter()), |row| {
                    Ok(Folder {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        description: row.get(2)?,
                        color: row.get(3)?,
                        icon: row.get(4)?,
                        created_at: from_micros(row.get(5)?),
                        updated_at: from_micros(row.get(6)?),
                        order: row.get(7)?,
                        is_default: row.get(8)?,
                        is_system: row.get(9)?,
                        conversation_count: row.get(10)?,
                    })
                })?
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn deletions(
        &self,
        user_id: &str,
        types: &[TombstoneType],
        window: &FeedWindow,
    ) -> StoreResult<Vec<Tombstone>> {
        let mut sql = "SELECT object_type, object_id, deleted_at FROM tombstones
                       WHERE user_id = ?1"
            .to_string();
        let mut values = vec![Value::Text(user_id.to_string())];
        if !types.is_empty() {
            values.push(text_list(types.iter().map(|t| t.as_str())));
            sql.push_str(" AND object_type IN (SELECT value FROM json_each(?2))");
        }
        // Ties on `deleted_at` (one transaction's deletions) are broken by `type/id`.
        let key = "object_type || '/' || object_id";
        if let Some(since) = window.since {
            values.push(Value::Integer(to_micros(since)));
            sql.push_str(&format!(" AND deleted_at >= ?{}", values.len()));
        }
        if let Some(after) = &window.after {
            values.push(Value::Integer(to_micros(after.at)));
            values.push(Value::Text(after.id.clone()));
            sql.push_str(&format!(
                " AND (deleted_at, {key}) > (?{}, ?{})",
                values.len() - 1,
                values.len()
            ));
        }
        values.push(Value::Integer(window.limit));
        sql.push_str(&format!(
            " ORDER BY deleted_at, {key} LIMIT ?{}",
            values.len()
        ));
        self.read(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(values.iter()), |row| {
                    let kind: String = row.get(0)?;
                    Ok((kind, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
                })?
                .filter_map(|row| match row {
                    Ok((kind, id, at)) => TombstoneType::parse(&kind).map(|kind| {
                        Ok(Tombstone {
                            kind,
                            id,
                            deleted_at: from_micros(at),
                        })
                    }),
                    Err(error) => Some(Err(error)),
                })
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn prune_tombstones(&self, before: Timestamp, limit: i64) -> StoreResult<u64> {
        let before = to_micros(before);
        self.write(move |tx| {
            tx.prepare_cached(
                "DELETE FROM tombstones WHERE rowid IN
                     (SELECT rowid FROM tombstones WHERE deleted_at < ?1 LIMIT ?2)",
            )
            .and_then(|mut statement| statement.execute(params![before, limit]))
            .map(|pruned| pruned as u64)
            .map_err(map_error)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::feed::FeedPosition;
    use crate::domain::time::now;
    use crate::store::sqlite::SqliteOptions;

    /// The plan SQLite chooses for `sql`, one step per line.
    fn plan(store: &SqliteStore, sql: &str, values: &[Value]) -> String {
        store
            .read(|c| {
                let mut statement = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                statement
                    .query_map(params_from_iter(values.iter()), |row| {
                        row.get::<_, String>(3)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap()
            .join("\n")
    }

    /// Every feed page reads its table's feed index in feed order: its cost does not grow
    /// with the number of objects the user has.
    #[tokio::test]
    async fn every_feed_reads_its_index_in_feed_order_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&SqliteOptions::for_path(dir.path().join("plan.db")))
            .await
            .unwrap();
        let windows = [
            FeedWindow::probing(Some(now()), None, 25),
            FeedWindow::probing(
                None,
                Some(FeedPosition {
                    at: now(),
                    id: "x".into(),
                }),
                25,
            ),
        ];
        for window in &windows {
            let mut cases = vec![
                (memories_feed_sql("u", &[], window), "memories_feed"),
                (
                    feed_sql(
                        &format!("SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = ?1"),
                        "u",
                        window,
                    ),
                    "goals_feed",
                ),
                (
                    feed_sql(
                        &format!(
                            "SELECT {ACTION_ITEM_COLUMNS} FROM action_items WHERE user_id = ?1"
                        ),
                        "u",
                        window,
                    ),
                    "action_items_feed",
                ),
            ];
            let mut values = vec![Value::Text("u".into())];
            let sql = list_or_feed_sql(&ConversationFilter::default(), Some(window), &mut values);
            cases.push(((sql, values), "conversations_feed"));
            for ((sql, values), index) in cases {
                let plan = plan(&store, &sql, &values);
                assert!(plan.contains(index), "{index}: {plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{index}: {plan}");
            }
        }
    }
}
