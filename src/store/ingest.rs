//! What receiving the Omi app's developer webhooks needs from a database: the inbox every
//! delivery is written to before it is acknowledged, and the live-transcript sessions that
//! deliveries accumulate into.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::time::Timestamp;
use crate::store::StoreResult;
use crate::store::import::{ImportKey, ImportRecord, Imported};

/// A delivery to make durable.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub user_id: String,
    /// `conversation`, `transcript`, `day_summary`, `audio` or `button`.
    pub kind: String,
    /// The `Idempotency-Key` the sender gave, or a digest of the content.
    pub dedupe_key: String,
    pub body: Vec<u8>,
    /// The query parameters as JSON (the key removed).
    pub params: String,
    pub received_at: Timestamp,
}

/// A delivery taken from the inbox to be processed.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub seq: i64,
    pub user_id: String,
    pub kind: String,
    pub body: Vec<u8>,
    pub params: String,
    pub received_at: Timestamp,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// A delivery that could not be processed, for `omi-server ingest status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StuckDelivery {
    pub seq: i64,
    pub user_id: String,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub received_at: Timestamp,
}

/// How the inbox stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InboxSummary {
    pub pending: i64,
    pub done: i64,
    pub failed: i64,
    /// Failed deliveries, and pending ones that have failed at least once, oldest first.
    pub stuck: Vec<StuckDelivery>,
}

/// One segment of a live transcript as the session keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSegment {
    pub id: String,
    pub text: String,
    pub speaker: String,
    pub speaker_id: i64,
    pub is_user: bool,
    pub person_id: Option<String>,
    pub start: f64,
    pub end: f64,
}

/// A live-transcript session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    /// `open`, `closed` or `merged`.
    pub state: String,
    pub started_at: Timestamp,
    pub last_at: Timestamp,
    /// In order of `start`, one per segment id.
    pub segments: Vec<SessionSegment>,
    /// Button events received during the session, as delivered.
    pub events: Vec<serde_json::Value>,
    pub conversation_id: Option<String>,
}

/// What a delivery adds to the user's open session (which it opens when there is none).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionAddition {
    /// Segments; one with an id already held replaces it (the last text wins).
    Segments(Vec<SessionSegment>),
    /// PCM16 mono audio at a sample rate; what would pass `max_bytes` is dropped.
    Audio {
        pcm: Vec<u8>,
        sample_rate: i64,
        max_bytes: i64,
    },
    /// A button event, kept in the session's metadata.
    Event(serde_json::Value),
}

/// A conversation's audio, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionAudio {
    pub pcm: Vec<u8>,
    pub sample_rate: i64,
}

/// The session's segments with the new ones: one per id, the last text winning, in order of
/// their start.
pub fn merge_segments(
    mut held: Vec<SessionSegment>,
    new: Vec<SessionSegment>,
) -> Vec<SessionSegment> {
    for segment in new {
        match held.iter_mut().find(|s| s.id == segment.id) {
            Some(existing) => *existing = segment,
            None => held.push(segment),
        }
    }
    held.sort_by(|a, b| a.start.total_cmp(&b.start));
    held
}

#[async_trait]
pub trait IngestStore: Send + Sync {
    /// Stores the delivery unless one with the same `dedupe_key` exists for the user; `true`
    /// when it was new. Committed before this returns.
    async fn accept_delivery(&self, delivery: NewDelivery) -> StoreResult<bool>;

    /// Claims up to `limit` pending deliveries due at `now` (in the order they arrived), each
    /// held until `lease_until`.
    async fn claim_inbox_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>>;

    /// Marks a delivery processed; its body is no longer kept.
    async fn finish_delivery(&self, seq: i64, now: Timestamp) -> StoreResult<()>;

    /// Records a failed attempt: retried at `retry_at`, or `failed` for good when `None`.
    async fn fail_delivery(
        &self,
        seq: i64,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> StoreResult<()>;

    /// Removes up to `limit` processed deliveries, and with them their dedupe keys, processed
    /// before `before`; how many went. Pending and failed deliveries are never removed.
    async fn prune_inbox(&self, before: Timestamp, limit: i64) -> StoreResult<u64>;

    /// Counts by state and the deliveries that failed, at most `limit` of them.
    async fn inbox_summary(&self, limit: i64) -> StoreResult<InboxSummary>;

    /// Adds to the user's open session, opening one at `now` if there is none; returns its id.
    async fn add_to_session(
        &self,
        user_id: &str,
        addition: SessionAddition,
        now: Timestamp,
    ) -> StoreResult<String>;

    /// Open sessions whose last delivery is older than `before`, oldest first.
    async fn overdue_sessions(&self, before: Timestamp, limit: i64) -> StoreResult<Vec<Session>>;

    /// The user's session (open, or closed into a conversation) whose time span overlaps
    /// `[from, to]`, the most recent first.
    async fn overlapping_session(
        &self,
        user_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Option<Session>>;

    /// Ends a session: `closed` into the conversation it became, or `merged` into one the app
    /// delivered. `false` when it was not open (or not the user's).
    async fn end_session(
        &self,
        user_id: &str,
        session_id: &str,
        state: &str,
        conversation_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Writes what one delivery brings (a conversation and its action items, or the memories
    /// extracted from it) through the import's mapping, all in one transaction: all or nothing.
    /// Unlike an import, which keeps the source's times, everything written takes the user's
    /// change stamp as its `updated_at` (an action item's conversation too) and lifts any
    /// tombstone of its id, so copies following the change feed see what the app delivered.
    async fn import_delivered(
        &self,
        user_id: &str,
        records: Vec<(ImportKey, ImportRecord)>,
        now: Timestamp,
    ) -> StoreResult<Vec<Imported>>;

    /// Makes a conversation delivered by the app (`source`, `upstream_id`) land on the local
    /// conversation `local_id` that a closed session produced: records the mapping the import
    /// follows, and drops the action items processing extracted from the session (the app's
    /// own replace them).
    async fn adopt_conversation(
        &self,
        user_id: &str,
        source: &str,
        upstream_id: &str,
        local_id: &str,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// The audio of the session that became (or merged into) the conversation.
    async fn conversation_audio(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<SessionAudio>>;

    /// Whether [`conversation_audio`](Self::conversation_audio) would find audio, without
    /// reading it.
    async fn has_conversation_audio(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(id: &str, text: &str, start: f64) -> SessionSegment {
        SessionSegment {
            id: id.into(),
            text: text.into(),
            speaker: "SPEAKER_00".into(),
            speaker_id: 0,
            is_user: true,
            person_id: None,
            start,
            end: start + 1.0,
        }
    }

    #[test]
    fn repeated_segment_ids_keep_the_last_text_in_time_order() {
        let merged = merge_segments(
            vec![segment("a", "hel", 0.0), segment("b", "world", 2.0)],
            vec![segment("a", "hello", 0.0), segment("c", "first", -1.0)],
        );
        let texts: Vec<&str> = merged.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, vec!["first", "hello", "world"]);
    }
}
