//! Daily summaries, people, profiles, timezones and leases on SQLite.

use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, map_error};
use crate::domain::daily_summaries::{DailySummary, SummaryFilter};
use crate::domain::paging::Page;
use crate::domain::people::Profile;
use crate::domain::time::{Timestamp, from_micros, to_micros};
use crate::domain::webhooks::Change;
use crate::processing::insights::Sighting;
use crate::store::insights::{InsightStore, MemoryState, StoredProfile, SummaryOrigin};
use crate::store::{StoreError, StoreResult};

fn day_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn summary_from_json(body: &str) -> rusqlite::Result<DailySummary> {
    serde_json::from_str(body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn summary_json(summary: &DailySummary) -> StoreResult<String> {
    serde_json::to_string(summary).map_err(|e| StoreError::Internal(e.into()))
}

#[async_trait]
impl InsightStore for SqliteStore {
    async fn person_sightings(&self, user_id: &str) -> StoreResult<Vec<Sighting>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT s.person_id, s.speaker, s.text, c.created_at
                 FROM transcript_segments s JOIN conversations c ON c.id = s.conversation_id
                 WHERE s.user_id = ?1 AND s.person_id IS NOT NULL AND c.user_id = ?1
                 ORDER BY c.created_at DESC, c.id DESC, s.position DESC",
            )?
            .query_map([user_id], |row| {
                Ok(Sighting {
                    person_id: row.get(0)?,
                    speaker: row.get(1)?,
                    text: row.get(2)?,
                    seen_at: from_micros(row.get(3)?),
                })
            })?
            .collect()
        })
    }

    async fn memory_state(&self, user_id: &str) -> StoreResult<MemoryState> {
        self.read(|c| {
            c.prepare_cached("SELECT COUNT(*), MAX(updated_at) FROM memories WHERE user_id = ?1")?
                .query_row([user_id], |row| {
                    Ok(MemoryState {
                        count: row.get(0)?,
                        last_updated_at: row.get::<_, Option<i64>>(1)?.map(from_micros),
                    })
                })
        })
    }

    async fn get_profile(&self, user_id: &str) -> StoreResult<Option<StoredProfile>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT profile_text, generated_at, data_sources_used, memory_count,
                     memories_updated_at
                 FROM user_profiles WHERE user_id = ?1",
            )?
            .query_row([user_id], |row| {
                let generated_at = from_micros(row.get(1)?);
                Ok(StoredProfile {
                    profile: Profile {
                        profile_text: row.get(0)?,
                        generated_at: Some(generated_at),
                        data_sources_used: row.get(2)?,
                    },
                    generated_at,
                    built_from: MemoryState {
                        count: row.get(3)?,
                        last_updated_at: row.get::<_, Option<i64>>(4)?.map(from_micros),
                    },
                })
            })
            .optional()
        })
    }

    async fn save_profile(&self, user_id: &str, profile: StoredProfile) -> StoreResult<()> {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO user_profiles (user_id, profile_text, generated_at, data_sources_used,
                     memory_count, memories_updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (user_id) DO UPDATE SET profile_text = excluded.profile_text,
                     generated_at = excluded.generated_at,
                     data_sources_used = excluded.data_sources_used,
                     memory_count = excluded.memory_count,
                     memories_updated_at = excluded.memories_updated_at",
                params![
                    user_id,
                    profile.profile.profile_text,
                    to_micros(profile.generated_at),
                    profile.profile.data_sources_used,
                    profile.built_from.count,
                    profile.built_from.last_updated_at.map(to_micros),
                ],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    async fn user_timezone(&self, user_id: &str) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT timezone FROM users WHERE id = ?1")?
                .query_row([user_id], |row| row.get(0))
                .optional()
        })
    }

    async fn set_user_timezone(&self, user_id: &str, timezone: &str) -> StoreResult<bool> {
        let (user_id, timezone) = (user_id.to_string(), timezone.to_string());
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE users SET timezone = ?2 WHERE id = ?1",
                    params![user_id, timezone],
                )
                .map_err(map_error)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn user_timezones(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(|c| {
            c.prepare_cached("SELECT id, timezone FROM users ORDER BY id")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
    }

    async fn list_daily_summaries(
        &self,
        user_id: &str,
        filter: SummaryFilter,
        page: Page,
    ) -> StoreResult<Vec<DailySummary>> {
        // Dates compare as text: `YYYY-MM-DD` sorts as the days do.
        let from = filter.start_date.map(day_text);
        let to = filter.end_date.map(day_text);
        self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT body FROM daily_summaries
                 WHERE user_id = ?1 AND (?2 IS NULL OR date >= ?2) AND (?3 IS NULL OR date <= ?3)
                 ORDER BY date DESC, created_at DESC, id DESC LIMIT ?4 OFFSET ?5",
            )?;
            let mut rows = statement.query(params![user_id, from, to, page.limit, page.offset])?;
            let mut summaries = Vec::new();
            while let Some(row) = rows.next()? {
                summaries.push(summary_from_json(&row.get::<_, String>(0)?)?);
            }
            Ok(summaries)
        })
    }

    async fn get_daily_summary(
        &self,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<DailySummary>> {
        self.read(|c| {
            let body: Option<String> = c
                .prepare_cached("SELECT body FROM daily_summaries WHERE user_id = ?1 AND id = ?2")?
                .query_row(params![user_id, id], |row| row.get(0))
                .optional()?;
            body.map(|b| summary_from_json(&b)).transpose()
        })
    }

    async fn has_daily_summary(&self, user_id: &str, date: NaiveDate) -> StoreResult<bool> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM daily_summaries WHERE user_id = ?1 AND date = ?2)",
            )?
            .query_row(params![user_id, day_text(date)], |row| row.get(0))
        })
    }

    async fn save_daily_summary(
        &self,
        user_id: &str,
        summary: &DailySummary,
        origin: SummaryOrigin,
    ) -> StoreResult<bool> {
        let body = summary_json(summary)?;
        let summary = summary.clone();
        let (user_id, id, date, created_at) = (
            user_id.to_string(),
            summary.id.clone(),
            day_text(summary.date),
            to_micros(summary.created_at),
        );
        self.write(move |tx| {
            if origin == SummaryOrigin::Received {
                // The same summary received again (a retry the inbox could not recognise, or a
                // delivery processed again after a crash) changes nothing and is not announced.
                let held: Option<(String, String)> = tx
                    .query_row(
                        "SELECT origin, body FROM daily_summaries WHERE user_id = ?1 AND date = ?2",
                        params![user_id, date],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()
                    .map_err(map_error)?;
                if let Some((held_origin, held_body)) = held
                    && held_origin == origin.as_str()
                    && serde_json::from_str::<serde_json::Value>(&held_body).ok()
                        == serde_json::from_str::<serde_json::Value>(&body).ok()
                {
                    return Ok(false);
                }
                tx.execute(
                    "DELETE FROM daily_summaries WHERE user_id = ?1 AND date = ?2",
                    params![user_id, date],
                )
                .map_err(map_error)?;
            }
            let inserted = tx
                .execute(
                    "INSERT INTO daily_summaries (id, user_id, date, created_at, origin, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (user_id, date) DO NOTHING",
                    params![id, user_id, date, created_at, origin.as_str(), body],
                )
                .map_err(map_error)?;
            // Announced whether made here or received from the Omi app.
            if inserted > 0 {
                let change = Change::DaySummary(Box::new(summary));
                super::webhooks::record(tx, &user_id, &[change]).map_err(map_error)?;
            }
            Ok(inserted > 0)
        })
        .await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |tx| {
            let taken = tx
                .execute(
                    "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?4)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                         expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3",
                    params![name, holder, to_micros(now), to_micros(until)],
                )
                .map_err(map_error)?;
            Ok(taken > 0)
        })
        .await
    }
}
