//! Daily summaries, people, profiles, timezones and leases on PostgreSQL.

use async_trait::async_trait;
use chrono::NaiveDate;
use tokio_postgres::Row;
use tracing::instrument;

use super::{PgStore, execute, query, query_opt};
use crate::domain::daily_summaries::{DailySummary, SummaryFilter};
use crate::domain::paging::Page;
use crate::domain::people::Profile;
use crate::domain::time::Timestamp;
use crate::domain::webhooks::Change;
use crate::processing::insights::Sighting;
use crate::store::insights::{InsightStore, MemoryState, StoredProfile, SummaryOrigin};
use crate::store::{StoreError, StoreResult};

fn summary_from_row(row: &Row) -> StoreResult<DailySummary> {
    let body: serde_json::Value = row.get(0);
    serde_json::from_value(body).map_err(|e| StoreError::Internal(e.into()))
}

#[async_trait]
impl InsightStore for PgStore {
    #[instrument(skip_all)]
    async fn person_sightings(&self, user_id: &str) -> StoreResult<Vec<Sighting>> {
        with_connection!(self, |client| {
            let rows = query(
                client,
                "SELECT s.person_id, s.speaker, s.text, c.created_at
                 FROM transcript_segments s JOIN conversations c ON c.id = s.conversation_id
                 WHERE s.user_id = $1 AND s.person_id IS NOT NULL AND c.user_id = $1
                 ORDER BY c.created_at DESC, c.id DESC, s.position DESC",
                &[&user_id],
            )
            .await?;
            Ok(rows
                .iter()
                .map(|row| Sighting {
                    person_id: row.get(0),
                    speaker: row.get(1),
                    text: row.get(2),
                    seen_at: row.get(3),
                })
                .collect())
        })
    }

    #[instrument(skip_all)]
    async fn memory_state(&self, user_id: &str) -> StoreResult<MemoryState> {
        with_connection!(self, |client| {
            let rows = query(
                client,
                "SELECT COUNT(*), MAX(updated_at) FROM memories WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
            Ok(rows
                .first()
                .map(|row| MemoryState {
                    count: row.get(0),
                    last_updated_at: row.get(1),
                })
                .unwrap_or_default())
        })
    }

    #[instrument(skip_all)]
    async fn get_profile(&self, user_id: &str) -> StoreResult<Option<StoredProfile>> {
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                "SELECT profile_text, generated_at, data_sources_used, memory_count,
                     memories_updated_at
                 FROM user_profiles WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
            Ok(row.map(|row| {
                let generated_at: Timestamp = row.get(1);
                StoredProfile {
                    profile: Profile {
                        profile_text: row.get(0),
                        generated_at: Some(generated_at),
                        data_sources_used: row.get(2),
                    },
                    generated_at,
                    built_from: MemoryState {
                        count: row.get(3),
                        last_updated_at: row.get(4),
                    },
                }
            }))
        })
    }

    #[instrument(skip_all)]
    async fn save_profile(&self, user_id: &str, profile: StoredProfile) -> StoreResult<()> {
        with_connection!(self, |client| {
            execute(
                client,
                "INSERT INTO user_profiles (user_id, profile_text, generated_at, data_sources_used,
                     memory_count, memories_updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id) DO UPDATE SET profile_text = excluded.profile_text,
                     generated_at = excluded.generated_at,
                     data_sources_used = excluded.data_sources_used,
                     memory_count = excluded.memory_count,
                     memories_updated_at = excluded.memories_updated_at",
                &[
                    &user_id,
                    &profile.profile.profile_text,
                    &profile.generated_at,
                    &profile.profile.data_sources_used,
                    &profile.built_from.count,
                    &profile.built_from.last_updated_at,
                ],
            )
            .await
            .map(|_| ())
        })
    }

    #[instrument(skip_all)]
    async fn user_timezone(&self, user_id: &str) -> StoreResult<Option<String>> {
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                "SELECT timezone FROM users WHERE id = $1",
                &[&user_id],
            )
            .await?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    #[instrument(skip_all)]
    async fn set_user_timezone(&self, user_id: &str, timezone: &str) -> StoreResult<bool> {
        with_connection!(self, |client| {
            let changed = execute(
                client,
                "UPDATE users SET timezone = $2 WHERE id = $1",
                &[&user_id, &timezone],
            )
            .await?;
            Ok(changed > 0)
        })
    }

    #[instrument(skip_all)]
    async fn user_timezones(&self) -> StoreResult<Vec<(String, String)>> {
        with_connection!(self, |client| {
            let rows = query(client, "SELECT id, timezone FROM users ORDER BY id", &[]).await?;
            Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        })
    }

    #[instrument(skip_all)]
    async fn list_daily_summaries(
        &self,
        user_id: &str,
        filter: SummaryFilter,
        page: Page,
    ) -> StoreResult<Vec<DailySummary>> {
        with_connection!(self, |client| {
            let rows = query(
                client,
                "SELECT body FROM daily_summaries
                 WHERE user_id = $1 AND ($2::date IS NULL OR date >= $2)
                   AND ($3::date IS NULL OR date <= $3)
                 ORDER BY date DESC, created_at DESC, id DESC LIMIT $4 OFFSET $5",
                &[
                    &user_id,
                    &filter.start_date,
                    &filter.end_date,
                    &page.limit,
                    &page.offset,
                ],
            )
            .await?;
            rows.iter().map(summary_from_row).collect()
        })
    }

    #[instrument(skip_all)]
    async fn get_daily_summary(
        &self,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<DailySummary>> {
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                "SELECT body FROM daily_summaries WHERE user_id = $1 AND id = $2",
                &[&user_id, &id],
            )
            .await?;
            row.as_ref().map(summary_from_row).transpose()
        })
    }

    #[instrument(skip_all)]
    async fn has_daily_summary(&self, user_id: &str, date: NaiveDate) -> StoreResult<bool> {
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                "SELECT 1 FROM daily_summaries WHERE user_id = $1 AND date = $2",
                &[&user_id, &date],
            )
            .await?;
            Ok(row.is_some())
        })
    }

    #[instrument(skip_all)]
    async fn save_daily_summary(
        &self,
        user_id: &str,
        summary: &DailySummary,
        origin: SummaryOrigin,
    ) -> StoreResult<bool> {
        let body = serde_json::to_value(summary).map_err(|e| StoreError::Internal(e.into()))?;
        in_transaction!(self, |tx| {
            if origin == SummaryOrigin::Received {
                // The same summary received again (a retry the inbox could not recognise, or a
                // delivery processed again after a crash) changes nothing and is not announced.
                let held = query_opt(
                    tx,
                    "SELECT origin, body FROM daily_summaries WHERE user_id = $1 AND date = $2",
                    &[&user_id, &summary.date],
                )
                .await?;
                if let Some(row) = held
                    && row.try_get::<_, String>(0)? == origin.as_str()
                    && row.try_get::<_, serde_json::Value>(1)? == body
                {
                    return Ok(false);
                }
                execute(
                    tx,
                    "DELETE FROM daily_summaries WHERE user_id = $1 AND date = $2",
                    &[&user_id, &summary.date],
                )
                .await?;
            }
            let inserted = execute(
                tx,
                "INSERT INTO daily_summaries (id, user_id, date, created_at, origin, body)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id, date) DO NOTHING",
                &[
                    &summary.id,
                    &user_id,
                    &summary.date,
                    &summary.created_at,
                    &origin.as_str(),
                    &body,
                ],
            )
            .await?;
            // Announced whether made here or received from the Omi app.
            if inserted > 0 {
                let change = Change::DaySummary(Box::new(summary.clone()));
                super::webhooks::record(tx, user_id, &[change]).await?;
            }
            Ok(inserted > 0)
        })
    }

    #[instrument(skip_all)]
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        with_connection!(self, |client| {
            let taken = execute(
                client,
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $4)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                     expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= $3",
                &[&name, &holder, &now, &until],
            )
            .await?;
            Ok(taken > 0)
        })
    }
}
