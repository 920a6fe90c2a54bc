//! Processes the inbox behind the acknowledgements, in the order deliveries arrived, and closes
//! live-transcript sessions that have been quiet for the gap (at start too, so that a restart
//! never leaves one open for ever). Processing is idempotent: a delivery processed again after a
//! crash (before it was marked done) changes nothing more.

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::payloads::{self, Kind};
use super::{IngestCounters, SOURCE};
use crate::domain::conversations::NewSegment;
use crate::domain::time::{self, Timestamp};
use crate::processing::Processor;
use crate::service::conversations::{self, ConversationError, Draft};
use crate::service::import::upstream::fingerprint;
use crate::store::conversations::ConversationBody;
use crate::store::import::{ImportKey, ImportOutcome, ImportRecord};
use crate::store::ingest::{Delivery, Session, SessionAddition};
use crate::store::insights::SummaryOrigin;
use crate::store::{Store, StoreError};

/// Deliveries taken per round.
const BATCH: i64 = 64;
/// How long a claimed delivery is held before another worker may take it over.
const LEASE_SECONDS: i64 = 60;
/// Retries after a failed attempt; then the delivery stays `failed` with its error.
const RETRY_DELAYS_SECONDS: [i64; 7] = [1, 5, 30, 120, 600, 1800, 3600];
/// A finished conversation and a live session are one recording when their spans come within
/// this of each other (the session's times are when segments arrived, not when they were said).
const OVERLAP_SLACK_SECONDS: i64 = 30;
/// How often an idle worker looks for overdue sessions and retries that have come due.
const IDLE_POLL: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub gap: Duration,
    pub extract_memories: bool,
    pub audio_max_bytes: i64,
}

/// Why processing a delivery failed.
#[derive(Debug)]
enum Failure {
    /// It can never succeed: it stays `failed` at once.
    Permanent(String),
    /// Worth another attempt later.
    Transient(String),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Transient(error.to_string())
    }
}

impl From<ConversationError> for Failure {
    fn from(error: ConversationError) -> Self {
        Failure::Transient(error.to_string())
    }
}

#[derive(Clone)]
pub struct Worker {
    pub store: Arc<dyn Store>,
    pub processor: Arc<dyn Processor>,
    pub settings: WorkerSettings,
    pub counters: Arc<IngestCounters>,
    /// Rung when a delivery is accepted, so processing starts at once.
    pub wake: Arc<Notify>,
}

impl Worker {
    /// Runs until `stop` is cancelled.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let busy = match self.round(time::now()).await {
                    Ok(busy) => busy,
                    Err(error) => {
                        tracing::warn!(error = %error, "ingest worker round failed");
                        false
                    }
                };
                if stop.is_cancelled() {
                    break;
                }
                if !busy {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
            }
        })
    }

    /// One round: overdue sessions closed, then one batch of due deliveries processed. `true`
    /// when there was work (so another round should follow at once).
    pub async fn round(&self, now: Timestamp) -> Result<bool, StoreError> {
        let closed = self.close_overdue(now).await?;
        let lease_until = now + Span::seconds(LEASE_SECONDS);
        let deliveries = self
            .store
            .claim_inbox_deliveries(now, lease_until, BATCH)
            .await?;
        let busy = closed > 0 || !deliveries.is_empty();
        for delivery in deliveries {
            self.handle(delivery).await?;
        }
        Ok(busy)
    }

    /// Processes everything due now, for tests and the command line: rounds until one finds
    /// nothing (bounded).
    pub async fn drain(&self) -> Result<(), StoreError> {
        for _ in 0..10_000 {
            if !self.round(time::now()).await? {
                break;
            }
        }
        Ok(())
    }

    async fn handle(&self, delivery: Delivery) -> Result<(), StoreError> {
        let seq = delivery.seq;
        let attempts = delivery.attempts;
        match self.process(delivery).await {
            Ok(()) => {
                self.store.finish_delivery(seq, time::now()).await?;
                IngestCounters::add(&self.counters.processed);
            }
            Err(Failure::Permanent(error)) => {
                tracing::warn!(seq, error = %error, "an ingest delivery cannot be processed");
                self.store.fail_delivery(seq, &error, None).await?;
                IngestCounters::add(&self.counters.failed);
            }
            Err(Failure::Transient(error)) => {
                let delay = RETRY_DELAYS_SECONDS.get(attempts as usize).copied();
                let retry_at = delay.map(|seconds| time::now() + Span::seconds(seconds));
                tracing::warn!(seq, attempts = attempts + 1, error = %error, "an ingest delivery failed");
                self.store.fail_delivery(seq, &error, retry_at).await?;
                IngestCounters::add(if retry_at.is_some() {
                    &self.counters.retried
                } else {
                    &self.counters.failed
                });
            }
        }
        Ok(())
    }

    async fn process(&self, delivery: Delivery) -> Result<(), Failure> {
        let kind = Kind::parse(&delivery.kind)
            .ok_or_else(|| Failure::Permanent(format!("unknown kind {}", delivery.kind)))?;
        let permanent = |error: payloads::NotOmi| Failure::Permanent(error.0);
        let user_id = delivery.user_id.as_str();
        match kind {
            Kind::Conversation => self.conversation(user_id, &delivery.body).await,
            Kind::Transcript => {
                let segments = payloads::transcript(&delivery.body).map_err(permanent)?;
                self.store
                    .add_to_session(
                        user_id,
                        SessionAddition::Segments(segments),
                        delivery.received_at,
                    )
                    .await?;
                Ok(())
            }
            Kind::DaySummary => {
                let summary = payloads::day_summary(&delivery.body).map_err(permanent)?;
                self.store
                    .save_daily_summary(user_id, &summary, SummaryOrigin::Received)
                    .await?;
                Ok(())
            }
            Kind::Audio => {
                let params: Vec<(String, String)> = serde_json::from_str::<
                    serde_json::Map<String, serde_json::Value>,
                >(&delivery.params)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                .collect();
                let sample_rate = payloads::audio(&delivery.body, super::sample_rate(&params))
                    .map_err(permanent)?;
                self.store
                    .add_to_session(
                        user_id,
                        SessionAddition::Audio {
                            pcm: delivery.body,
                            sample_rate,
                            max_bytes: self.settings.audio_max_bytes,
                        },
                        delivery.received_at,
                    )
                    .await?;
                Ok(())
            }
            Kind::Button => {
                let event = payloads::button(&delivery.body).map_err(permanent)?;
                self.store
                    .add_to_session(user_id, SessionAddition::Event(event), delivery.received_at)
                    .await?;
                Ok(())
            }
        }
    }

    /// A finished conversation: merged with an overlapping live session, stored faithfully,
    /// its action items with it, then memories extracted here.
    async fn conversation(&self, user_id: &str, body: &[u8]) -> Result<(), Failure> {
        let delivered = payloads::conversation(body).map_err(|e| Failure::Permanent(e.0))?;
        let slack = Span::seconds(OVERLAP_SLACK_SECONDS);
        let overlapping = self
            .store
            .overlapping_session(
                user_id,
                delivered.conversation.started_at - slack,
                delivered.conversation.finished_at + slack,
            )
            .await?;
        // A session already closed into a conversation keeps that conversation's id: the app's
        // version is written over it (change-feed clients see an update).
        if let Some(session) = &overlapping
            && session.state == "closed"
            && let Some(local) = &session.conversation_id
        {
            self.store
                .adopt_conversation(user_id, SOURCE, &delivered.id, local, time::now())
                .await?;
        }
        let discarded = delivered.conversation.discarded;
        let key = ImportKey {
            source: SOURCE.to_string(),
            source_id: delivered.id.clone(),
            fingerprint: fingerprint(&[&delivered.raw]),
        };
        // The conversation and its action items in one transaction, stamped for the change feed.
        let mut records = vec![(key, ImportRecord::Conversation(delivered.conversation))];
        for (source_id, item) in delivered.action_items {
            let fingerprint = match &item {
                ImportRecord::ActionItem(a) => fingerprint(&[&serde_json::json!([
                    a.description,
                    a.completed,
                    a.due_at.map(|t| t.to_rfc3339()),
                    a.completed_at.map(|t| t.to_rfc3339()),
                ])]),
                _ => String::new(),
            };
            let key = ImportKey {
                source: SOURCE.to_string(),
                source_id,
                fingerprint,
            };
            records.push((key, item));
        }
        let imported = self
            .store
            .import_delivered(user_id, records, time::now())
            .await?
            .into_iter()
            .next()
            .expect("the conversation is the first record");
        // A session still open is the same recording, not yet closed: the app's conversation
        // takes its place (no second conversation appears).
        if let Some(session) = &overlapping
            && session.state == "open"
        {
            self.store
                .end_session(
                    user_id,
                    &session.id,
                    "merged",
                    Some(&imported.local_id),
                    time::now(),
                )
                .await?;
        }
        if self.settings.extract_memories
            && !discarded
            && imported.outcome != ImportOutcome::Unchanged
        {
            let memories = conversations::extract_memories(
                &*self.store,
                &self.processor,
                user_id,
                &imported.local_id,
            )
            .await?;
            let records = memories
                .into_iter()
                .map(|memory| {
                    let key = ImportKey {
                        source: SOURCE.to_string(),
                        source_id: format!("memory/{}", memory.id),
                        fingerprint: memory.id.clone(),
                    };
                    (key, ImportRecord::Memory(memory))
                })
                .collect::<Vec<_>>();
            if !records.is_empty() {
                self.store
                    .import_delivered(user_id, records, time::now())
                    .await?;
            }
        }
        Ok(())
    }

    /// Closes the sessions quiet for the gap; returns how many.
    async fn close_overdue(&self, now: Timestamp) -> Result<usize, StoreError> {
        let gap = Span::from_std(self.settings.gap).unwrap_or(Span::seconds(120));
        let sessions = self.store.overdue_sessions(now - gap, BATCH).await?;
        let count = sessions.len();
        for session in sessions {
            if let Err(error) = self.close(session).await {
                tracing::warn!(error = %error, "closing a live-transcript session failed");
            }
        }
        Ok(count)
    }

    /// A session's segments become a conversation, processed like one created from segments.
    /// The creation's idempotency key is the session, so a close interrupted by a crash finds
    /// the conversation it made.
    async fn close(&self, session: Session) -> Result<(), ConversationError> {
        let user_id = session.user_id.clone();
        if session.segments.iter().all(|s| s.text.trim().is_empty()) {
            self.store
                .end_session(&user_id, &session.id, "closed", None, time::now())
                .await?;
            return Ok(());
        }
        let segments: Vec<NewSegment> = session
            .segments
            .iter()
            .map(|s| NewSegment {
                id: s.id.clone(),
                text: s.text.clone(),
                speaker: s.speaker.clone(),
                speaker_id: s.speaker_id,
                is_user: s.is_user,
                person_id: s.person_id.clone(),
                start: s.start,
                end: s.end,
            })
            .collect();
        let draft = Draft {
            started_at: session.started_at,
            finished_at: session.last_at.max(session.started_at),
            language: "en".to_string(),
            source: "omi".to_string(),
            geolocation: None,
            body: ConversationBody::Segments(segments),
            client_session_id: Some(format!("ingest-{}", session.id)),
        };
        let created =
            conversations::create(self.store.clone(), self.processor.clone(), &user_id, draft)
                .await?;
        self.store
            .end_session(
                &user_id,
                &session.id,
                "closed",
                Some(&created.id),
                time::now(),
            )
            .await?;
        Ok(())
    }
}
