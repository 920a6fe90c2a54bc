//! The webhook inbox and live-transcript sessions on PostgreSQL. Claims skip rows another
//! replica holds; session changes run under the user's row lock.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tracing::instrument;

use super::feed::{change_stamp, leave_tombstone, lift_tombstone};
use super::import::{announce, import_one};
use super::{PgStore, execute, lock_user, query, query_opt};
use crate::domain::feed::TombstoneType;
use crate::domain::ids::new_id;
use crate::domain::time::Timestamp;
use crate::store::StoreResult;
use crate::store::import::{ImportKey, ImportOutcome, ImportRecord, Imported};
use crate::store::ingest::{
    Delivery, InboxSummary, IngestStore, NewDelivery, Session, SessionAddition, SessionAudio,
    StuckDelivery, merge_segments,
};

const SESSION_COLUMNS: &str =
    "id, user_id, state, started_at, last_at, segments, events, conversation_id";

fn session_from(row: &Row) -> StoreResult<Session> {
    let segments: String = row.try_get(5)?;
    let events: String = row.try_get(6)?;
    Ok(Session {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        state: row.try_get(2)?,
        started_at: row.try_get(3)?,
        last_at: row.try_get(4)?,
        segments: serde_json::from_str(&segments).unwrap_or_default(),
        events: serde_json::from_str(&events).unwrap_or_default(),
        conversation_id: row.try_get(7)?,
    })
}

async fn open_session(c: &impl GenericClient, user_id: &str) -> StoreResult<Option<Session>> {
    let row = query_opt(
        c,
        &format!(
            "SELECT {SESSION_COLUMNS} FROM ingest_sessions WHERE user_id = $1 AND state = 'open'"
        ),
        &[&user_id],
    )
    .await?;
    row.as_ref().map(session_from).transpose()
}

async fn add_to_session(
    c: &impl GenericClient,
    user_id: &str,
    addition: SessionAddition,
    now: Timestamp,
) -> StoreResult<String> {
    lock_user(c, user_id).await?;
    let session = match open_session(c, user_id).await? {
        Some(session) => session,
        None => {
            let id = new_id();
            execute(
                c,
                "INSERT INTO ingest_sessions (id, user_id, state, started_at, last_at, segments,
                     events)
                 VALUES ($1, $2, 'open', $3, $3, '[]', '[]')",
                &[&id, &user_id, &now],
            )
            .await?;
            open_session(c, user_id)
                .await?
                .expect("the session was just opened")
        }
    };
    let last_at = now.max(session.last_at);
    match addition {
        SessionAddition::Segments(segments) => {
            let merged = merge_segments(session.segments, segments);
            let merged = serde_json::to_string(&merged).expect("segments serialize");
            execute(
                c,
                "UPDATE ingest_sessions SET segments = $1, last_at = $2 WHERE id = $3",
                &[&merged, &last_at, &session.id],
            )
            .await?;
        }
        SessionAddition::Audio {
            pcm,
            sample_rate,
            max_bytes,
        } => {
            execute(
                c,
                "UPDATE ingest_sessions SET
                     audio = CASE WHEN octet_length(coalesce(audio, ''::bytea))
                                       + octet_length($1::bytea) <= $2::bigint
                                  THEN coalesce(audio, ''::bytea) || $1::bytea ELSE audio END,
                     sample_rate = coalesce(sample_rate, $3), last_at = $4
                 WHERE id = $5",
                &[&pcm, &max_bytes, &sample_rate, &last_at, &session.id],
            )
            .await?;
        }
        SessionAddition::Event(event) => {
            let mut events = session.events;
            events.push(event);
            let events = serde_json::to_string(&events).expect("events serialize");
            execute(
                c,
                "UPDATE ingest_sessions SET events = $1, last_at = $2 WHERE id = $3",
                &[&events, &last_at, &session.id],
            )
            .await?;
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
async fn stamp_delivered(
    c: &impl GenericClient,
    user_id: &str,
    kind: &str,
    local_id: &str,
    at: Timestamp,
) -> StoreResult<()> {
    let Some((table, tombstone)) = feed_object(kind) else {
        return Ok(());
    };
    execute(
        c,
        &format!("UPDATE {table} SET updated_at = $3 WHERE user_id = $1 AND id = $2"),
        &[&user_id, &local_id, &at],
    )
    .await?;
    lift_tombstone(c, user_id, tombstone, local_id).await?;
    if kind == "action_item" {
        execute(
            c,
            "UPDATE conversations SET updated_at = $3 WHERE user_id = $1 AND id =
                 (SELECT conversation_id FROM action_items WHERE user_id = $1 AND id = $2)",
            &[&user_id, &local_id, &at],
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl IngestStore for PgStore {
    #[instrument(skip_all)]
    async fn import_delivered(
        &self,
        user_id: &str,
        records: Vec<(ImportKey, ImportRecord)>,
        now: Timestamp,
    ) -> StoreResult<Vec<Imported>> {
        in_transaction!(self, |tx| {
            // The change stamp first: the user row is the first lock every write takes.
            let at = change_stamp(tx, user_id, now).await?;
            let mut written = Vec::with_capacity(records.len());
            for (key, record) in records.clone() {
                let kind = record.kind();
                let imported = import_one(tx, user_id, &key, record, now).await?;
                if imported.outcome != ImportOutcome::Unchanged {
                    stamp_delivered(tx, user_id, kind, &imported.local_id, at).await?;
                }
                // Subscribers hear of what the app delivered as of any other write.
                let imported = announce(tx, user_id, kind, imported).await?;
                written.push(imported);
            }
            Ok(written)
        })
    }

    #[instrument(skip_all)]
    async fn accept_delivery(&self, d: NewDelivery) -> StoreResult<bool> {
        with_connection!(self, |client| {
            let inserted = execute(
                client,
                "INSERT INTO ingest_inbox (user_id, kind, dedupe_key, body, params, received_at,
                     state, attempts, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $6)
                 ON CONFLICT (user_id, dedupe_key) DO NOTHING",
                &[
                    &d.user_id,
                    &d.kind,
                    &d.dedupe_key,
                    &d.body,
                    &d.params,
                    &d.received_at,
                ],
            )
            .await?;
            Ok(inserted == 1)
        })
    }

    #[instrument(skip_all)]
    async fn claim_inbox_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        with_connection!(self, |client| {
            let rows = query(
                client,
                "UPDATE ingest_inbox SET lease_until = $2
                 WHERE seq IN (
                     SELECT seq FROM ingest_inbox
                     WHERE state = 'pending' AND next_attempt_at <= $1
                         AND (lease_until IS NULL OR lease_until <= $1)
                     ORDER BY seq LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                 RETURNING seq, user_id, kind, body, params, received_at, attempts",
                &[&now, &lease_until, &limit],
            )
            .await?;
            let mut deliveries = rows
                .iter()
                .map(|row| {
                    Ok(Delivery {
                        seq: row.try_get(0)?,
                        user_id: row.try_get(1)?,
                        kind: row.try_get(2)?,
                        body: row.try_get(3)?,
                        params: row.try_get(4)?,
                        received_at: row.try_get(5)?,
                        attempts: row.try_get(6)?,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            deliveries.sort_by_key(|d| d.seq);
            Ok(deliveries)
        })
    }

    #[instrument(skip_all)]
    async fn finish_delivery(&self, seq: i64, now: Timestamp) -> StoreResult<()> {
        with_connection!(self, |client| {
            execute(
                client,
                "UPDATE ingest_inbox SET state = 'done', body = ''::bytea, lease_until = NULL,
                     attempts = attempts + 1, processed_at = $1, last_error = NULL
                 WHERE seq = $2",
                &[&now, &seq],
            )
            .await
            .map(|_| ())
        })
    }

    #[instrument(skip_all)]
    async fn fail_delivery(
        &self,
        seq: i64,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> StoreResult<()> {
        let state = if retry_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        with_connection!(self, |client| {
            execute(
                client,
                "UPDATE ingest_inbox SET state = $1, attempts = attempts + 1, lease_until = NULL,
                     last_error = $2, next_attempt_at = coalesce($3, next_attempt_at)
                 WHERE seq = $4",
                &[&state, &error, &retry_at, &seq],
            )
            .await
            .map(|_| ())
        })
    }

    #[instrument(skip_all)]
    async fn prune_inbox(&self, before: Timestamp, limit: i64) -> StoreResult<u64> {
        with_connection!(self, |client| {
            execute(
                client,
                "DELETE FROM ingest_inbox WHERE seq IN
                     (SELECT seq FROM ingest_inbox
                      WHERE state = 'done' AND processed_at < $1
                      ORDER BY processed_at LIMIT $2)",
                &[&before, &limit],
            )
            .await
        })
    }

    #[instrument(skip_all)]
    async fn inbox_summary(&self, limit: i64) -> StoreResult<InboxSummary> {
        with_connection!(self, |client| {
            let mut summary = InboxSummary::default();
            for row in query(
                client,
                "SELECT state, count(*) FROM ingest_inbox GROUP BY state",
                &[],
            )
            .await?
            {
                let state: String = row.try_get(0)?;
                let count: i64 = row.try_get(1)?;
                match state.as_str() {
                    "pending" => summary.pending = count,
                    "done" => summary.done = count,
                    _ => summary.failed += count,
                }
            }
            summary.stuck = query(
                client,
                "SELECT seq, user_id, kind, state, attempts, last_error, received_at
                 FROM ingest_inbox
                 WHERE state = 'failed' OR (state = 'pending' AND attempts > 0)
                 ORDER BY seq LIMIT $1",
                &[&limit],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(StuckDelivery {
                    seq: row.try_get(0)?,
                    user_id: row.try_get(1)?,
                    kind: row.try_get(2)?,
                    state: row.try_get(3)?,
                    attempts: row.try_get(4)?,
                    error: row.try_get(5)?,
                    received_at: row.try_get(6)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
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
        in_transaction!(self, |tx| {
            add_to_session(tx, user_id, addition.clone(), now).await
        })
    }

    #[instrument(skip_all)]
    async fn overdue_sessions(&self, before: Timestamp, limit: i64) -> StoreResult<Vec<Session>> {
        with_connection!(self, |client| {
            query(
                client,
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM ingest_sessions
                     WHERE state = 'open' AND last_at < $1 ORDER BY last_at LIMIT $2"
                ),
                &[&before, &limit],
            )
            .await?
            .iter()
            .map(session_from)
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
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM ingest_sessions
                     WHERE user_id = $1 AND state IN ('open', 'closed')
                         AND started_at <= $3 AND last_at >= $2
                     ORDER BY last_at DESC LIMIT 1"
                ),
                &[&user_id, &from, &to],
            )
            .await?;
            row.as_ref().map(session_from).transpose()
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
        with_connection!(self, |client| {
            let changed = execute(
                client,
                "UPDATE ingest_sessions SET state = $1, conversation_id = $2, closed_at = $3
                 WHERE id = $4 AND user_id = $5 AND state = 'open'",
                &[&state, &conversation_id, &now, &session_id, &user_id],
            )
            .await?;
            Ok(changed == 1)
        })
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
        in_transaction!(self, |tx| {
            lock_user(tx, user_id).await?;
            // An empty fingerprint never matches, so the next import writes the app's version
            // over the local conversation.
            execute(
                tx,
                "INSERT INTO import_objects (user_id, source, kind, source_id, local_id,
                     fingerprint, imported_at)
                 VALUES ($1, $2, 'conversation', $3, $4, '', $5)
                 ON CONFLICT (user_id, source, kind, source_id) DO UPDATE SET
                     local_id = excluded.local_id, fingerprint = ''",
                &[&user_id, &source, &upstream_id, &local_id, &now],
            )
            .await?;
            // Deleted action items leave tombstones, and the conversation changes with them.
            let dropped = query(
                tx,
                "DELETE FROM action_items WHERE user_id = $1 AND conversation_id = $2
                 RETURNING id",
                &[&user_id, &local_id],
            )
            .await?;
            if !dropped.is_empty() {
                let at = change_stamp(tx, user_id, now).await?;
                for row in &dropped {
                    let id: String = row.try_get(0)?;
                    leave_tombstone(tx, user_id, TombstoneType::ActionItem, &id, at).await?;
                }
                execute(
                    tx,
                    "UPDATE conversations SET updated_at = $3 WHERE user_id = $1 AND id = $2",
                    &[&user_id, &local_id, &at],
                )
                .await?;
            }
            execute(
                tx,
                "UPDATE ingest_sessions SET state = 'merged'
                 WHERE user_id = $1 AND conversation_id = $2",
                &[&user_id, &local_id],
            )
            .await?;
            Ok(())
        })
    }

    #[instrument(skip_all)]
    async fn conversation_audio(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<SessionAudio>> {
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                "SELECT audio, sample_rate FROM ingest_sessions
                 WHERE user_id = $1 AND conversation_id = $2 AND audio IS NOT NULL
                 ORDER BY last_at DESC LIMIT 1",
                &[&user_id, &conversation_id],
            )
            .await?;
            row.map(|row| {
                Ok(SessionAudio {
                    pcm: row.try_get(0)?,
                    sample_rate: row.try_get::<_, Option<i64>>(1)?.unwrap_or(16_000),
                })
            })
            .transpose()
        })
    }

    #[instrument(skip_all)]
    async fn has_conversation_audio(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<bool> {
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                "SELECT EXISTS (SELECT 1 FROM ingest_sessions
                 WHERE user_id = $1 AND conversation_id = $2 AND audio IS NOT NULL)",
                &[&user_id, &conversation_id],
            )
            .await?;
            Ok(row.map(|row| row.try_get(0)).transpose()?.unwrap_or(false))
        })
    }
}
