//! Goals and their daily history on PostgreSQL.

use async_trait::async_trait;
use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tracing::instrument;

use super::{PgStore, execute, lock_user, query, query_opt};
use crate::domain::goals::{Goal, GoalChanges, GoalProgress, GoalType};
use crate::domain::paging::Page;
use crate::domain::time::Timestamp;
use crate::store::columns::GOAL_COLUMNS;
use crate::store::{GoalStore, StoreResult};

/// Reads `GOAL_COLUMNS`.
fn goal_from_row(row: &Row) -> StoreResult<Goal> {
    let goal_type: &str = row.try_get(2)?;
    Ok(Goal {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        goal_type: GoalType::parse(goal_type).unwrap_or_default(),
        target_value: row.try_get(3)?,
        current_value: row.try_get(4)?,
        min_value: row.try_get(5)?,
        max_value: row.try_get(6)?,
        unit: row.try_get(7)?,
        is_active: row.try_get(8)?,
        created_at: row.try_get(9)?,
        updated_at: row.try_get(10)?,
    })
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
             min_value, max_value, unit, is_active, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
        ],
    )
    .await
    .map(|_| ())
}

/// Deactivates the oldest active goals so that `kept` (just created) and the `max_active - 1`
/// newest others stay active.
async fn retire_oldest_active(
    client: &impl GenericClient,
    user_id: &str,
    kept: &Goal,
    max_active: usize,
) -> StoreResult<()> {
    let others_kept = i64::try_from(max_active.saturating_sub(1)).unwrap_or(i64::MAX);
    execute(
        client,
        "UPDATE goals SET is_active = false, updated_at = $3
         WHERE user_id = $1 AND id IN (
             SELECT id FROM goals WHERE user_id = $1 AND is_active AND id <> $2
             ORDER BY created_at DESC, id DESC
             OFFSET $4)",
        &[&user_id, &kept.id, &kept.created_at, &others_kept],
    )
    .await
    .map(|_| ())
}

async fn save(client: &impl GenericClient, user_id: &str, goal: &Goal) -> StoreResult<()> {
    execute(
        client,
        "UPDATE goals
         SET title = $3, target_value = $4, current_value = $5, min_value = $6, max_value = $7,
             unit = $8, updated_at = $9
         WHERE user_id = $1 AND id = $2",
        &[
            &user_id,
            &goal.id,
            &goal.title,
            &goal.target_value,
            &goal.current_value,
            &goal.min_value,
            &goal.max_value,
            &goal.unit,
            &goal.updated_at,
        ],
    )
    .await
    .map(|_| ())
}

#[async_trait]
impl GoalStore for PgStore {
    #[instrument(skip_all)]
    async fn create_goal(&self, user_id: &str, goal: Goal, max_active: usize) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            // Creations for one user queue on the user's row, so two replicas creating goals at
            // once cannot both leave more than `max_active` active.
            lock_user(tx, user_id).await?;
            insert(tx, user_id, &goal).await?;
            retire_oldest_active(tx, user_id, &goal, max_active).await?;
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
            // The row lock keeps a concurrent update from overwriting this one's fields.
            let Some(row) = query_opt(tx, &sql, &[&user_id, &id]).await? else {
                return Ok(None);
            };
            let mut goal = goal_from_row(&row)?;
            goal.apply(&changes, at);
            save(tx, user_id, &goal).await?;
            if changes.records_progress() {
                record_progress(tx, user_id, &goal.id, &goal.progress_at(at)).await?;
            }
            Ok(Some(goal))
        })
    }

    #[instrument(skip_all)]
    async fn delete_goal(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        with_connection!(self, |client| {
            // The history goes with the goal through its foreign key's ON DELETE CASCADE.
            let deleted = execute(
                client,
                "DELETE FROM goals WHERE user_id = $1 AND id = $2",
                &[&user_id, &id],
            )
            .await?;
            Ok(deleted > 0)
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
                .map(|row| {
                    Ok(GoalProgress {
                        date: row.try_get(0)?,
                        value: row.try_get(1)?,
                        recorded_at: row.try_get(2)?,
                    })
                })
                .collect::<StoreResult<_>>()?;
            Ok(Some(history))
        })
    }
}
