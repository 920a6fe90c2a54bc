//! Goals and their daily history on SQLite.

use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row, params};

use tracing::instrument;

use super::{SqliteStore, map_error};
use crate::domain::goals::{Goal, GoalChanges, GoalProgress, GoalType};
use crate::domain::paging::Page;
use crate::domain::time::{Timestamp, from_micros, to_micros};
use crate::store::columns::GOAL_COLUMNS;
use crate::store::{GoalStore, StoreResult};

const DATE_FORMAT: &str = "%Y-%m-%d";

fn goal_from_row(row: &Row<'_>) -> rusqlite::Result<Goal> {
    let goal_type: String = row.get(2)?;
    Ok(Goal {
        id: row.get(0)?,
        title: row.get(1)?,
        goal_type: GoalType::parse(&goal_type).unwrap_or_default(),
        target_value: row.get(3)?,
        current_value: row.get(4)?,
        min_value: row.get(5)?,
        max_value: row.get(6)?,
        unit: row.get(7)?,
        is_active: row.get(8)?,
        created_at: from_micros(row.get(9)?),
        updated_at: from_micros(row.get(10)?),
    })
}

fn progress_from_row(row: &Row<'_>) -> rusqlite::Result<GoalProgress> {
    let date: String = row.get(0)?;
    let date = NaiveDate::parse_from_str(&date, DATE_FORMAT).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, error.into())
    })?;
    Ok(GoalProgress {
        date,
        value: row.get(1)?,
        recorded_at: from_micros(row.get(2)?),
    })
}

fn find(connection: &Connection, user_id: &str, id: &str) -> rusqlite::Result<Option<Goal>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = ?1 AND id = ?2"
    ))?;
    statement
        .query_row(params![user_id, id], goal_from_row)
        .optional()
}

/// One entry per goal per UTC day: a later value the same day replaces the earlier one.
pub(super) fn record_progress(
    connection: &Connection,
    user_id: &str,
    goal_id: &str,
    progress: &GoalProgress,
) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO goal_history (user_id, goal_id, date, value, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, goal_id, date)
         DO UPDATE SET value = excluded.value, recorded_at = excluded.recorded_at",
    )?;
    statement.execute(params![
        user_id,
        goal_id,
        progress.date.format(DATE_FORMAT).to_string(),
        progress.value,
        to_micros(progress.recorded_at),
    ])?;
    Ok(())
}

pub(super) fn insert(connection: &Connection, user_id: &str, goal: &Goal) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO goals (user_id, id, title, goal_type, target_value, current_value,
             min_value, max_value, unit, is_active, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    statement.execute(params![
        user_id,
        goal.id,
        goal.title,
        goal.goal_type.as_str(),
        goal.target_value,
        goal.current_value,
        goal.min_value,
        goal.max_value,
        goal.unit,
        goal.is_active,
        to_micros(goal.created_at),
        to_micros(goal.updated_at),
    ])?;
    Ok(())
}

/// Deactivates the oldest active goals so that `kept` (just created) and the `max_active - 1`
/// newest others stay active. Runs inside the creating transaction, on the single writer, so two
/// concurrent creations cannot both leave four active goals.
fn retire_oldest_active(
    connection: &Connection,
    user_id: &str,
    kept: &Goal,
    max_active: usize,
) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "UPDATE goals SET is_active = 0, updated_at = ?3
         WHERE user_id = ?1 AND id IN (
             SELECT id FROM goals WHERE user_id = ?1 AND is_active = 1 AND id <> ?2
             ORDER BY created_at DESC, id DESC
             LIMIT -1 OFFSET ?4)",
    )?;
    statement.execute(params![
        user_id,
        kept.id,
        to_micros(kept.created_at),
        i64::try_from(max_active.saturating_sub(1)).unwrap_or(i64::MAX)
    ])?;
    Ok(())
}

fn save(connection: &Connection, user_id: &str, goal: &Goal) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "UPDATE goals
         SET title = ?3, target_value = ?4, current_value = ?5, min_value = ?6, max_value = ?7,
             unit = ?8, updated_at = ?9
         WHERE user_id = ?1 AND id = ?2",
    )?;
    statement.execute(params![
        user_id,
        goal.id,
        goal.title,
        goal.target_value,
        goal.current_value,
        goal.min_value,
        goal.max_value,
        goal.unit,
        to_micros(goal.updated_at),
    ])?;
    Ok(())
}

#[async_trait]
impl GoalStore for SqliteStore {
    #[instrument(skip_all)]
    async fn create_goal(&self, user_id: &str, goal: Goal, max_active: usize) -> StoreResult<()> {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            insert(tx, &user_id, &goal).map_err(map_error)?;
            retire_oldest_active(tx, &user_id, &goal, max_active).map_err(map_error)?;
            record_progress(tx, &user_id, &goal.id, &goal.progress_at(goal.created_at))
                .map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_goals(
        &self,
        user_id: &str,
        include_inactive: bool,
        page: Page,
    ) -> StoreResult<Vec<Goal>> {
        let sql = if include_inactive {
            format!(
                "SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
            )
        } else {
            format!(
                "SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = ?1 AND is_active = 1
                 ORDER BY created_at, id LIMIT ?2 OFFSET ?3"
            )
        };
        self.read(|c| {
            let mut statement = c.prepare_cached(&sql)?;
            statement
                .query_map(params![user_id, page.limit, page.offset], goal_from_row)?
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn get_goal(&self, user_id: &str, id: &str) -> StoreResult<Option<Goal>> {
        self.read(|c| find(c, user_id, id))
    }

    #[instrument(skip_all)]
    async fn update_goal(
        &self,
        user_id: &str,
        id: &str,
        changes: GoalChanges,
        at: Timestamp,
    ) -> StoreResult<Option<Goal>> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |tx| {
            let Some(mut goal) = find(tx, &user_id, &id).map_err(map_error)? else {
                return Ok(None);
            };
            goal.apply(&changes, at);
            save(tx, &user_id, &goal).map_err(map_error)?;
            if changes.records_progress() {
                record_progress(tx, &user_id, &goal.id, &goal.progress_at(at))
                    .map_err(map_error)?;
            }
            Ok(Some(goal))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn delete_goal(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |tx| {
            // The history goes with the goal through its foreign key's ON DELETE CASCADE.
            let deleted = tx
                .execute(
                    "DELETE FROM goals WHERE user_id = ?1 AND id = ?2",
                    params![user_id, id],
                )
                .map_err(map_error)?;
            Ok(deleted > 0)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn goal_history(
        &self,
        user_id: &str,
        id: &str,
        since: NaiveDate,
    ) -> StoreResult<Option<Vec<GoalProgress>>> {
        self.read(|c| {
            let mut exists =
                c.prepare_cached("SELECT 1 FROM goals WHERE user_id = ?1 AND id = ?2")?;
            if exists
                .query_row(params![user_id, id], |_| Ok(()))
                .optional()?
                .is_none()
            {
                return Ok(None);
            }
            let mut statement = c.prepare_cached(
                "SELECT date, value, recorded_at FROM goal_history
                 WHERE user_id = ?1 AND goal_id = ?2 AND date >= ?3
                 ORDER BY date DESC",
            )?;
            let since = since.format(DATE_FORMAT).to_string();
            statement
                .query_map(params![user_id, id, since], progress_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map(Some)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connection: &Connection, sql: &str) -> String {
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let count = statement.parameter_count();
        let values: Vec<i64> = (0..count as i64).collect();
        statement
            .query_map(rusqlite::params_from_iter(values), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
            .join("\n")
    }

    #[test]
    fn goal_lists_and_history_read_indexes_without_sorting() {
        let mut connection = Connection::open_in_memory().unwrap();
        super::super::migrations::apply(&mut connection).unwrap();
        for sql in [
            "SELECT id FROM goals WHERE user_id = ?1 AND is_active = 1 ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
            "SELECT id FROM goals WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
            "SELECT date FROM goal_history WHERE user_id = ?1 AND goal_id = ?2 AND date >= ?3 ORDER BY date DESC",
        ] {
            let plan = plan(&connection, sql);
            assert!(plan.contains("USING"), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }
}
