//! Goals and their daily history on PostgreSQL.

use async_trait::async_trait;
use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tracing::instrument;

use super::feed::change_stamp;
use super::{PgStore, execute, query, query_opt};
use crate::domain::goals::{
    Goal, GoalChanges, GoalMetric, GoalProgress, GoalSource, GoalStatus, NewGoal,
};
use crate::domain::paging::Page;
use crate::domain::time::Timestamp;
use crate::domain::webhooks::Change;
use crate::store::columns::GOAL_COLUMNS;
use crate::store::{GoalStore, StoreResult};

/// Reads `GOAL_COLUMNS`. A stored metric that does not read (never written by this code) makes
/// the goal qualitative rather than failing the request.
pub(super) fn goal_from_row(row: &Row) -> StoreResult<Goal> {
    let criteria: serde_json::Value = row.try_get(4)?;
    let status: &str = row.try_get(6)?;
    let source: &str = row.try_get(7)?;
    let metric: Option<serde_json::Value> = row.try_get(8)?;
    let fields = NewGoal {
        title: row.try_get(1)?,
        desired_outcome: row.try_get(2)?,
        why_it_matters: row.try_get(3)?,
        success_criteria: serde_json::from_value(criteria).unwrap_or_default(),
        horizon_at: row.try_get(5)?,
        status: GoalStatus::parse(status).unwrap_or_default(),
        source: GoalSource::read(source),
        metric: metric.and_then(|m| serde_json::from_value::<GoalMetric>(m).ok()),
    };
    Ok(Goal::from_parts(
        row.try_get(0)?,
        fields,
        row.try_get(9)?,
        row.try_get(10)?,
        row.try_get(11)?,
    ))
}

/// Reads `date, value, recorded_at` starting at column `first`.
pub(super) fn progress_from_row(row: &Row, first: usize) -> StoreResult<GoalProgress> {
    Ok(GoalProgress {
        date: row.try_get(first)?,
        value: row.try_get(first + 1)?,
        recorded_at: row.try_get(first + 2)?,
    })
}

fn metric_json(goal: &Goal) -> Option<serde_json::Value> {
    goal.metric
        .as_ref()
        .map(|m| serde_json::to_value(m).expect("a metric serializes"))
}

fn criteria_json(goal: &Goal) -> serde_json::Value {
    serde_json::to_value(&goal.success_criteria).expect("strings serialize")
}

/// One entry per goal per UTC day: a later value the same day replaces the earlier one.
pub(super) async fn record_progress(
    client: &impl GenericClient,
    user_id: &str,
    goal_id: &str,
    progress: &GoalProgress,
) -> StoreResult<()> {
    execute(
        client,
        "INSERT INTO goal_history (user_id, goal_id, date, value, recorded_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, goal_id, date)
         DO UPDATE SET value = excluded.value, recorded_at = excluded.recorded_at",
        &[
            &user_id,
            &goal_id,
            &progress.date,
            &progress.value,
            &progress.recorded_at,
        ],
    )
    .await
    .map(|_| ())
}

pub(super) async fn insert(
    client: &impl GenericClient,
    user_id: &str,
    goal: &Goal,
) -> StoreResult<()> {
    execute(
        client,
        "INSERT INTO goals (user_id, id, title, goal_type, target_value, current_value,
             min_value, max_value, unit, is_active, created_at, updated_at, desired_outcome,
             why_it_matters, success_criteria, horizon_at, status, source, metric, ended_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20)",
        &[
            &user_id,
            &goal.id,
            &goal.title,
            &goal.goal_type.as_str(),
            &goal.target_value,
            &goal.current_value,
            &goal.min_value,
            &goal.max_value,
            &goal.unit,
            &goal.is_active,
            &goal.created_at,
            &goal.updated_at,
            &goal.desired_outcome,
            &goal.why_it_matters,
            &criteria_json(goal),
            &goal.horizon_at,
            &goal.status.as_str(),
            &goal.source.as_str(),
            &metric_json(goal),
            &goal.ended_at,
        ],
    )
    .await
    .map(|_| ())
}

/// Writes every field back; the flat columns keep a copy of the metric's aliases.
async fn save(client: &impl GenericClient, user_id: &str, goal: &Goal) -> StoreResult<()> {
    execute(
        client,
        "UPDATE goals
         SET title = $3, goal_type = $4, target_value = $5, current_value = $6, min_value = $7,
             max_value = $8, unit = $9, is_active = $10, updated_at = $11, desired_outcome = $12,
             why_it_matters = $13, success_criteria = $14, horizon_at = $15, status = $16,
             source = $17, metric = $18, ended_at = $19
         WHERE user_id = $1 AND id = $2",
        &[
            &user_id,
            &goal.id,
            &goal.title,
            &goal.goal_type.as_str(),
            &goal.target_value,
            &goal.current_value,
            &goal.min_value,
            &goal.max_value,
            &goal.unit,
            &goal.is_active,
            &goal.updated_at,
            &goal.desired_outcome,
            &goal.why_it_matters,
            &criteria_json(goal),
            &goal.horizon_at,
            &goal.status.as_str(),
            &goal.source.as_str(),
            &metric_json(goal),
            &goal.ended_at,
        ],
    )
    .await
    .map(|_| ())
}

#[async_trait]
impl GoalStore for PgStore {
    #[instrument(skip_all)]
    async fn create_goal(&self, user_id: &str, goal: Goal) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            let mut goal = goal.clone();
            goal.updated_at = change_stamp(tx, user_id, goal.updated_at).await?;
            insert(tx, user_id, &goal).await?;
            record_progress(tx, user_id, &goal.id, &goal.progress_at(goal.created_at)).await
        })
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
                "SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = $1
                 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
            )
        } else {
            format!(
                "SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = $1 AND is_active
                 ORDER BY created_at, id LIMIT $2 OFFSET $3"
            )
        };
        with_connection!(self, |client| {
            let rows = query(client, &sql, &[&user_id, &page.limit, &page.offset]).await?;
            rows.iter().map(goal_from_row).collect()
        })
    }

    #[instrument(skip_all)]
    async fn get_goal(&self, user_id: &str, id: &str) -> StoreResult<Option<Goal>> {
        let sql = format!("SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = $1 AND id = $2");
        with_connection!(self, |client| {
            let row = query_opt(client, &sql, &[&user_id, &id]).await?;
            row.as_ref().map(goal_from_row).transpose()
        })
    }

    #[instrument(skip_all)]
    async fn update_goal(
        &self,
        user_id: &str,
        id: &str,
        changes: GoalChanges,
        at: Timestamp,
    ) -> StoreResult<Option<Goal>> {
        let sql =
            format!("SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = $1 AND id = $2 FOR UPDATE");
        in_transaction!(self, |tx| {
            // The change time first: the user row is always the first lock a write takes.
            let changed_at = change_stamp(tx, user_id, at).await?;
            // The row lock keeps a concurrent update from overwriting this one's fields.
            let Some(row) = query_opt(tx, &sql, &[&user_id, &id]).await? else {
                return Ok(None);
            };
            let mut goal = goal_from_row(&row)?;
            // `at` dates the progress; the change time only orders the feed.
            goal.apply(&changes, at);
            goal.updated_at = changed_at;
            save(tx, user_id, &goal).await?;
            if changes.records_progress() {
                record_progress(tx, user_id, &goal.id, &goal.progress_at(at)).await?;
            }
            let change = Change::Goal(Box::new(goal.clone()));
            super::webhooks::record(tx, user_id, &[change]).await?;
            Ok(Some(goal))
        })
    }

    #[instrument(skip_all)]
    async fn abandon_goal(&self, user_id: &str, id: &str, at: Timestamp) -> StoreResult<bool> {
        let sql =
            format!("SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = $1 AND id = $2 FOR UPDATE");
        in_transaction!(self, |tx| {
            let changed_at = change_stamp(tx, user_id, at).await?;
            let Some(row) = query_opt(tx, &sql, &[&user_id, &id]).await? else {
                return Ok(false);
            };
            let mut goal = goal_from_row(&row)?;
            if goal.status != GoalStatus::Abandoned {
                goal.abandon(at);
                goal.updated_at = changed_at;
                save(tx, user_id, &goal).await?;
                let change = Change::Goal(Box::new(goal));
                super::webhooks::record(tx, user_id, &[change]).await?;
            }
            Ok(true)
        })
    }

    #[instrument(skip_all)]
    async fn goal_history(
        &self,
        user_id: &str,
        id: &str,
        since: NaiveDate,
    ) -> StoreResult<Option<Vec<GoalProgress>>> {
        with_connection!(self, |client| {
            let exists = query_opt(
                client,
                "SELECT 1 FROM goals WHERE user_id = $1 AND id = $2",
                &[&user_id, &id],
            )
            .await?;
            if exists.is_none() {
                return Ok(None);
            }
            let rows = query(
                client,
                "SELECT date, value, recorded_at FROM goal_history
                 WHERE user_id = $1 AND goal_id = $2 AND date >= $3
                 ORDER BY date DESC",
                &[&user_id, &id, &since],
            )
            .await?;
            let history = rows
                .iter()
                .map(|row| progress_from_row(row, 0))
                .collect::<StoreResult<_>>()?;
            Ok(Some(history))
        })
    }
}
