//! Goals and their daily history on SQLite.

use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tracing::instrument;

use super::feed::change_stamp;
use super::{SqliteStore, map_error};
use crate::domain::goals::{
    Goal, GoalChanges, GoalMetric, GoalProgress, GoalSource, GoalStatus, NewGoal,
};
use crate::domain::paging::Page;
use crate::domain::time::{Timestamp, from_micros, to_micros};
use crate::domain::webhooks::Change;
use crate::store::columns::GOAL_COLUMNS;
use crate::store::{GoalStore, StoreResult};

const DATE_FORMAT: &str = "%Y-%m-%d";

fn json_column<T: serde::de::DeserializeOwned>(index: usize, text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
    })
}

pub(super) fn goal_from_row(row: &Row<'_>) -> rusqlite::Result<Goal> {
    let criteria: String = row.get(4)?;
    let status: String = row.get(6)?;
    let source: String = row.get(7)?;
    let metric: Option<String> = row.get(8)?;
    let fields = NewGoal {
        title: row.get(1)?,
        desired_outcome: row.get(2)?,
        why_it_matters: row.get(3)?,
        success_criteria: json_column(4, &criteria)?,
        horizon_at: row.get::<_, Option<i64>>(5)?.map(from_micros),
        status: GoalStatus::parse(&status).unwrap_or_default(),
        source: GoalSource::read(&source),
        metric: metric
            .map(|m| json_column::<GoalMetric>(8, &m))
            .transpose()?,
    };
    Ok(Goal::from_parts(
        row.get(0)?,
        fields,
        from_micros(row.get(9)?),
        from_micros(row.get(10)?),
        row.get::<_, Option<i64>>(11)?.map(from_micros),
    ))
}

fn metric_json(goal: &Goal) -> Option<String> {
    goal.metric
        .as_ref()
        .map(|m| serde_json::to_string(m).expect("a metric serializes"))
}

fn criteria_json(goal: &Goal) -> String {
    serde_json::to_string(&goal.success_criteria).expect("strings serialize")
}

pub(super) fn progress_from_row(row: &Row<'_>) -> rusqlite::Result<GoalProgress> {
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

pub(super) fn find(
    connection: &Connection,
    user_id: &str,
    id: &str,
) -> rusqlite::Result<Option<Goal>> {
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
             min_value, max_value, unit, is_active, created_at, updated_at, desired_outcome,
             why_it_matters, success_criteria, horizon_at, status, source, metric, ended_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20)",
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
        goal.desired_outcome,
        goal.why_it_matters,
        criteria_json(goal),
        goal.horizon_at.map(to_micros),
        goal.status.as_str(),
        goal.source.as_str(),
        metric_json(goal),
        goal.ended_at.map(to_micros),
    ])?;
    Ok(())
}

/// Writes every field back; the flat columns keep a copy of the metric's aliases.
fn save(connection: &Connection, user_id: &str, goal: &Goal) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "UPDATE goals
         SET title = ?3, goal_type = ?4, target_value = ?5, current_value = ?6, min_value = ?7,
             max_value = ?8, unit = ?9, is_active = ?10, updated_at = ?11, desired_outcome = ?12,
             why_it_matters = ?13, success_criteria = ?14, horizon_at = ?15, status = ?16,
             source = ?17, metric = ?18, ended_at = ?19
         WHERE user_id = ?1 AND id = ?2",
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
        to_micros(goal.updated_at),
        goal.desired_outcome,
        goal.why_it_matters,
        criteria_json(goal),
        goal.horizon_at.map(to_micros),
        goal.status.as_str(),
        goal.source.as_str(),
        metric_json(goal),
        goal.ended_at.map(to_micros),
    ])?;
    Ok(())
}

#[async_trait]
impl GoalStore for SqliteStore {
    #[instrument(skip_all)]
    async fn create_goal(&self, user_id: &str, mut goal: Goal) -> StoreResult<()> {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            goal.updated_at = change_stamp(tx, &user_id, goal.updated_at).map_err(map_error)?;
            insert(tx, &user_id, &goal).map_err(map_error)?;
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
            // `at` dates the progress; the change time only orders the feed.
            let changed_at = change_stamp(tx, &user_id, at).map_err(map_error)?;
            goal.apply(&changes, at);
            goal.updated_at = changed_at;
            save(tx, &user_id, &goal).map_err(map_error)?;
            if changes.records_progress() {
                record_progress(tx, &user_id, &goal.id, &goal.progress_at(at))
                    .map_err(map_error)?;
            }
            let change = Change::Goal(Box::new(goal.clone()));
            super::webhooks::record(tx, &user_id, &[change]).map_err(map_error)?;
            Ok(Some(goal))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn abandon_goal(&self, user_id: &str, id: &str, at: Timestamp) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |tx| {
            let Some(mut goal) = find(tx, &user_id, &id).map_err(map_error)? else {
                return Ok(false);
            };
            if goal.status != GoalStatus::Abandoned {
                let changed_at = change_stamp(tx, &user_id, at).map_err(map_error)?;
                goal.abandon(at);
                goal.updated_at = changed_at;
                save(tx, &user_id, &goal).map_err(map_error)?;
                let change = Change::Goal(Box::new(goal));
                super::webhooks::record(tx, &user_id, &[change]).map_err(map_error)?;
            }
            Ok(true)
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
