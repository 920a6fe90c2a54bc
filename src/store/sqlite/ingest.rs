//! The webhook inbox and live-transcript sessions on SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tracing::instrument;

use super::feed::{change_stamp, leave_tombstone, lift_tombstone};
use super::import::{announce, import_one};
use super::{SqliteStore, map_error};
use crate::domain::feed::TombstoneType;
use crate::domain::ids::new_id;
use crate::domain::time::{Timestamp, from_micros, to_micros};
use crate::store::StoreResult;
use crate::store::import::{ImportKey, ImportOutcome, ImportRecord, Imported};
use crate::store::ingest::{
    Delivery, InboxSummary, IngestStore, NewDelivery, Session, SessionAddition, SessionAudio,
    StuckDelivery, merge_segments,
};

const SESSION_COLUMNS: &str =
    "id, user_id, state, started_at, last_at, segments, events, conversation_id";

fn session_from(row: &Row<'_>) -> rusqlite::Result<Session> {
    let segments: String = row.get(5)?;
    let events: String = row.get(6)?;
    Ok(Session {
        id: row.get(0)?,
        user_id: row.get(1)?,
        state: row.get(2)?,
        started_at: from_micros(row.get(3)?),
        last_at: from_micros(row.get(4)?),
        segments: serde_json::from_str(&segments).unwrap_or_default(),
        events: serde_json::from_str(&events).unwrap_or_default(),
        conversation_id: row.get(7)?,
    })
}

fn open_session(c: &Connection, user_id: &str) -> rusqlite::Result<Option<Session>> {
    c.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM ingest_sessions WHERE user_id = ?1 AND state = 'open'"
    ))?
    .query_row([user_id], session_from)
    .optional()
}

fn add_to_session(
    c: &Connection,
    user_id: &str,
    addition: SessionAddition,
    now: Timestamp,
) -> rusqlite::Result<String> {
    let session = match open_session(c, user_id)? {
        Some(session) => session,
        None => {
            let id = new_id();
            c.prepare_cached(
                "INSERT INTO ingest_sessions (id, user_id, state, started_at, last_at, segments,
                     events)
                 VALUES (?1, ?2, 'open', ?3, ?3, '[]', '[]')",
            )?
            .execute(params![id, user_id, to_micros(now)])?;
            open_session(c, user_id)?.expect("the session was just opened")
        }
    };
    let last_at = to_micros(now.max(session.last_at));
    match addition {
        SessionAddition::Segments(segments) => {
            let merged = merge_segments(session.segments, segments);
            c.prepare_cached(
                "UPDATE ingest_sessions SET segments = ?1, last_at = ?2 WHERE id = ?3",
            )?
            .execute(params![
                serde_json::to_string(&merged).expect("segments serialize"),
                last_at,
                session.id
            ])?;
        }
        SessionAddition::Audio {
            pcm,
            sample_rate,
            max_bytes,
        } => {
            // Appended only while the whole stays within the bound; `sample_rate` of the first
            // chunk is kept.
            c.prepare_cached(
                "UPDATE ingest_sessions SET
                     audio = CASE WHEN length(coalesce(audio, x'')) + length(?1) <= ?2
                                  THEN CAST(coalesce(audio, x'') || ?1 AS BLOB) ELSE audio END,
                     sample_rate = coalesce(sample_rate, ?3), last_at = ?4
                 WHERE id = ?5",
            )?
            .execute(params![pcm, max_bytes, sample_rate, last_at, session.id])?;
        }
        SessionAddition::Event(event) => {
            let mut events = session.events;
            events.push(event);
            c.prepare_cached("UPDATE ingest_sessions SET events = ?1, last_at = ?2 WHERE id = ?3")?
                .execute(params![
                    serde_json::to_string(&events).expect("events serialize"),
                    last_at,
                    session.id
                ])?;
        }
    }
    Ok(session.id)
}

/// The table and tombstone kind of what the import mapping calls `kind`.
fn feed_object(kind: &str) -> Option<(&'static str, TombstoneType)> {
    match kind {
        "conversation" => Some(("conversations", TombstoneType::Conversation)),
        "action_item" => Some(("action_items", TombstoneType::ActionItem)),
        "memory" => Some(("memories", TombstoneType::Memory)),
        "goal" => Some(("goals", TombstoneType::Goal)),
        _ => None,
    }
}

/// Gives an object written from a delivery the transaction's change stamp: it (and an action
/// item's conversation, which changes with its action items) moves to the head of the feed.
fn stamp_delivered(
    c: &Connection,
    user_id: &str,
    kind: &str,
    local_id: &str,
    at: Timestamp,
) -> rusqlite::Result<()> {
    let Some((table, tombstone)) = feed_object(kind) else {
        return Ok(());
    };
    c.prepare_cached(&format!(
        "UPDATE {table} SET updated_at = ?3 WHERE user_id = ?1 AND id = ?2"
    ))?
    .execute(params![user_id, local_id, to_micros(at)])?;
    lift_tombstone(c, user_id, tombstone, local_id)?;
    if kind == "action_item" {
        c.prepare_cached(
            "UPDATE conversations SET updated_at = ?3 WHERE user_id = ?1 AND id =
                 (SELECT conversation_id FROM action_items WHERE user_id = ?1 AND id = ?2)",
        )?
        .execute(params![user_id, local_id, to_micros(at)])?;
    }
    Ok(())
}

fn import_delivered(
    c: &Connection,
    user_id: &str,
    records: Vec<(ImportKey, ImportRecord)>,
    now: Timestamp,
) -> rusqlite::Result<Vec<Imported>> {
    let at = change_stamp(c, user_id, now)?;
    let mut written = Vec::with_capacity(records.len());
    for (key, record) in records {
        let kind = record.kind();
        let imported = import_one(c, user_id, &key, record, now)?;
        if imported.outcome != ImportOutcome::Unchanged {
            stamp_delivered(c, user_id, kind, &imported.local_id, at)?;
        }
        // Subscribers hear of what the app delivered as of any other write.
        let imported = announce(c, user_id, kind, imported)?;
        written.push(imported);
    }
    Ok(written)
}

#[async_trait]
impl IngestStore for SqliteStore {
    #[instrument(skip_all)]
    async fn import_delivered(
        &self,
        user_id: &str,
        records: Vec<(ImportKey, ImportRecord)>,
        now: Timestamp,
    ) -> StoreResult<Vec<Imported>> {
        let user_id = user_id.to_string();
        self.write(move |c| import_delivered(c, &user_id, records, now).map_err(map_error))
            .await
    }

    #[instrument(skip_all)]
    async fn accept_delivery(&self, d: NewDelivery) -> StoreResult<bool> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO ingest_inbox (user_id, kind, dedupe_key, body, params, received_at,
                     state, attempts, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?6)
                 ON CONFLICT (user_id, dedupe_key) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    d.user_id,
                    d.kind,
                    d.dedupe_key,
                    d.body,
                    d.params,
                    to_micros(d.received_at)
                ])
            })
            .map(|inserted| inserted == 1)
            .map_err(map_error)
        })
        .await
    }

    /// One process owns a SQLite database, so its one worker never competes for a delivery:
    /// the lease is recorded but not waited for, and a delivery interrupted by a crash is
    /// taken again at the next start.
    #[instrument(skip_all)]
    async fn claim_inbox_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        self.write(move |c| {
            let claimed = (|| {
                let deliveries = c
                    .prepare_cached(
                        "SELECT seq, user_id, kind, body, params, received_at, attempts
                         FROM ingest_inbox
                         WHERE state = 'pending' AND next_attempt_at <= ?1
                         ORDER BY seq LIMIT ?2",
                    )?
                    .query_map(params![to_micros(now), limit], |row| {
                        Ok(Delivery {
                            seq: row.get(0)?,
                            user_id: row.get(1)?,
                            kind: row.get(2)?,
                            body: row.get(3)?,
                            params: row.get(4)?,
                            received_at: from_micros(row.get(5)?),
                            attempts: row.get(6)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut lease =
                    c.prepare_cached("UPDATE ingest_inbox SET lease_until = ?1 WHERE seq = ?2")?;
                for delivery in &deliveries {
                    lease.execute(params![to_micros(lease_until), delivery.seq])?;
                }
                Ok(deliveries)
            })();
            claimed.map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn finish_delivery(&self, seq: i64, now: Timestamp) -> StoreResult<()> {
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE ingest_inbox SET state = 'done', body = x'', lease_until = NULL,
                     attempts = attempts + 1, processed_at = ?1, last_error = NULL
                 WHERE seq = ?2",
            )
            .and_then(|mut s| s.execute(params![to_micros(now), seq]))
            .map(|_| ())
            .map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn fail_delivery(
        &self,
        seq: i64,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> StoreResult<()> {
        let error = error.to_string();
        self.write(move |c| {
            let (state, next) = match retry_at {
                Some(at) => ("pending", Some(to_micros(at))),
                None => ("failed", None),
            };
            c.prepare_cached(
                "UPDATE ingest_inbox SET state = ?1, attempts = attempts + 1, lease_until = NULL,
                     last_error = ?2, next_attempt_at = coalesce(?3, next_attempt_at)
                 WHERE seq = ?4",
            )
            .and_then(|mut s| s.execute(params![state, error, next, seq]))
            .map(|_| ())
            .map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn prune_inbox(&self, before: Timestamp, limit: i64) -> StoreResult<u64> {
        let before = to_micros(before);
        self.write(move |c| {
            c.prepare_cached(
                "DELETE FROM ingest_inbox WHERE seq IN
                     (SELECT seq FROM ingest_inbox
                      WHERE state = 'done' AND processed_at < ?1
                      ORDER BY processed_at LIMIT ?2)",
            )
            .and_then(|mut s| s.execute(params![before, limit]))
            .map(|pruned| pruned as u64)
            .map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn inbox_summary(&self, limit: i64) -> StoreResult<InboxSummary> {
        self.read(|c| {
            let mut summary = InboxSummary::default();
            let mut counts =
                c.prepare_cached("SELECT state, count(*) FROM ingest_inbox GROUP BY state")?;
            let rows = counts.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
            for row in rows {
                let (state, count) = row?;
                match state.as_str() {
                    "pending" => summary.pending = count,
                    "done" => summary.done = count,
                    _ => summary.failed += count,
                }
            }
            summary.stuck = c
                .prepare_cached(
                    "SELECT seq, user_id, kind, state, attempts, last_error, received_at
                     FROM ingest_inbox
                     WHERE state = 'failed' OR (state = 'pending' AND attempts > 0)
                     ORDER BY seq LIMIT ?1",
                )?
                .query_map([limit], |row| {
                    Ok(StuckDelivery {
                        seq: row.get(0)?,
                        user_id: row.get(1)?,
                        kind: row.get(2)?,
                        state: row.get(3)?,
                        attempts: row.get(4)?,
                        error: row.get(5)?,
                        received_at: from_micros(row.get(6)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(summary)
        })
    }

    #[instrument(skip_all)]
    async fn add_to_session(
        &self,
        user_id: &str,
        addition: SessionAddition,
        now: Timestamp,
    ) -> StoreResult<String> {
        let user_id = user_id.to_string();
        self.write(move |c| add_to_session(c, &user_id, addition, now).map_err(map_error))
            .await
    }

    #[instrument(skip_all)]
    async fn overdue_sessions(&self, before: Timestamp, limit: i64) -> StoreResult<Vec<Session>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM ingest_sessions
                 WHERE state = 'open' AND last_at < ?1 ORDER BY last_at LIMIT ?2"
            ))?
            .query_map(params![to_micros(before), limit], session_from)?
            .collect()
        })
    }

    #[instrument(skip_all)]
    async fn overlapping_session(
        &self,
        user_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Option<Session>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM ingest_sessions
                 WHERE user_id = ?1 AND state IN ('open', 'closed')
                     AND started_at <= ?3 AND last_at >= ?2
                 ORDER BY last_at DESC LIMIT 1"
            ))?
            .query_row(
                params![user_id, to_micros(from), to_micros(to)],
                session_from,
            )
            .optional()
        })
    }

    #[instrument(skip_all)]
    async fn end_session(
        &self,
        user_id: &str,
        session_id: &str,
        state: &str,
        conversation_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (user_id, session_id, state) = (
            user_id.to_string(),
            session_id.to_string(),
            state.to_string(),
        );
        let conversation_id = conversation_id.map(str::to_string);
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE ingest_sessions SET state = ?1, conversation_id = ?2, closed_at = ?3
                 WHERE id = ?4 AND user_id = ?5 AND state = 'open'",
            )
            .and_then(|mut s| {
                s.execute(params![
                    state,
                    conversation_id,
                    to_micros(now),
                    session_id,
                    user_id
                ])
            })
            .map(|changed| changed == 1)
            .map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn adopt_conversation(
        &self,
        user_id: &str,
        source: &str,
        upstream_id: &str,
        local_id: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let (user_id, source, upstream_id, local_id) = (
            user_id.to_string(),
            source.to_string(),
            upstream_id.to_string(),
            local_id.to_string(),
        );
        self.write(move |c| {
            let adopted = (|| {
                // An empty fingerprint never matches, so the next import writes the app's
                // version over the local conversation.
                c.prepare_cached(
                    "INSERT INTO import_objects (user_id, source, kind, source_id, local_id,
                         fingerprint, imported_at)
                     VALUES (?1, ?2, 'conversation', ?3, ?4, '', ?5)
                     ON CONFLICT (user_id, source, kind, source_id) DO UPDATE SET
                         local_id = excluded.local_id, fingerprint = ''",
                )?
                .execute(params![
                    user_id,
                    source,
                    upstream_id,
                    local_id,
                    to_micros(now)
                ])?;
                // Deleted action items leave tombstones, and the conversation changes with them.
                let dropped = c
                    .prepare_cached(
                        "DELETE FROM action_items WHERE user_id = ?1 AND conversation_id = ?2
                         RETURNING id",
                    )?
                    .query_map(params![user_id, local_id], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                if !dropped.is_empty() {
                    let at = change_stamp(c, &user_id, now)?;
                    for id in &dropped {
                        leave_tombstone(c, &user_id, TombstoneType::ActionItem, id, at)?;
                    }
                    c.prepare_cached(
                        "UPDATE conversations SET updated_at = ?3 WHERE user_id = ?1 AND id = ?2",
                    )?
                    .execute(params![user_id, local_id, to_micros(at)])?;
                }
                c.prepare_cached(
                    "UPDATE ingest_sessions SET state = 'merged'
                     WHERE user_id = ?1 AND conversation_id = ?2",
                )?
                .execute(params![user_id, local_id])?;
                Ok(())
            })();
            adopted.map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn conversation_audio(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<SessionAudio>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT audio, sample_rate FROM ingest_sessions
                 WHERE user_id = ?1 AND conversation_id = ?2 AND audio IS NOT NULL
                 ORDER BY last_at DESC LIMIT 1",
            )?
            .query_row(params![user_id, conversation_id], |row| {
                Ok(SessionAudio {
                    pcm: row.get(0)?,
                    sample_rate: row.get::<_, Option<i64>>(1)?.unwrap_or(16_000),
                })
            })
            .optional()
        })
    }

    #[instrument(skip_all)]
    async fn has_conversation_audio(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<bool> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM ingest_sessions
                 WHERE user_id = ?1 AND conversation_id = ?2 AND audio IS NOT NULL)",
            )?
            .query_row(params![user_id, conversation_id], |row| row.get(0))
        })
    }
}
