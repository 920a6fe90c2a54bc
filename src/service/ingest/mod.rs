//! Receiving the Omi app's developer webhooks (API.md §13.G). A delivery is checked, written to
//! the inbox (the same database) and acknowledged; the worker processes it behind the answer:
//! a finished conversation is stored faithfully like an imported one, live transcript segments
//! accumulate into a session that closes into a conversation after a quiet gap, and a finished
//! conversation that overlaps a live session becomes one conversation with it.

pub mod payloads;
pub mod retention;
pub mod worker;

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::time::Timestamp;
use crate::store::ingest::NewDelivery;
use crate::store::{Store, StoreError};
pub use payloads::{Kind, NotOmi};
pub use worker::{Worker, WorkerSettings};

/// The source name conversations delivered by the app are mapped under (the import's mapping
/// table), so a re-delivery of the same id lands on the same conversation.
pub const SOURCE: &str = "omi-app";

/// What this process counted, for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestCounters {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub processed: AtomicU64,
    /// Attempts that failed and will be retried.
    pub retried: AtomicU64,
    /// Deliveries given up on: they stay in the inbox with their error.
    pub failed: AtomicU64,
}

impl IngestCounters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A delivery as the route received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub kind: Kind,
    pub body: Vec<u8>,
    /// The query parameters, the key already removed.
    pub params: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
}

/// The key a retry of the same delivery shares: the sender's `Idempotency-Key`, or else a
/// digest of what was sent. Audio without a key is never de-duplicated: two equal chunks (two
/// seconds of silence) are two seconds of audio.
fn dedupe_key(received: &Received, params_json: &str) -> String {
    let kind = received.kind.as_str();
    if let Some(key) = received
        .idempotency_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        return format!("{kind}:key:{key}");
    }
    if received.kind == Kind::Audio {
        return format!("{kind}:once:{}", crate::domain::ids::new_id());
    }
    let mut hasher = Sha256::new();
    hasher.update(&received.body);
    hasher.update([0u8]);
    hasher.update(params_json.as_bytes());
    format!("{kind}:sha256:{}", hex::encode(hasher.finalize()))
}

/// Checks the body is the payload of its webhook. Audio also needs a `sample_rate`.
pub fn check(received: &Received) -> Result<(), NotOmi> {
    match received.kind {
        Kind::Conversation => payloads::conversation(&received.body).map(|_| ()),
        Kind::Transcript => payloads::transcript(&received.body).map(|_| ()),
        Kind::DaySummary => payloads::day_summary(&received.body).map(|_| ()),
        Kind::Button => payloads::button(&received.body).map(|_| ()),
        Kind::Audio => payloads::audio(&received.body, sample_rate(&received.params)).map(|_| ()),
    }
}

/// The `sample_rate` query parameter, when it is a number.
pub fn sample_rate(params: &[(String, String)]) -> Option<i64> {
    params
        .iter()
        .find(|(name, _)| name == "sample_rate")
        .and_then(|(_, value)| value.trim().parse().ok())
}

/// Makes the delivery durable; `true` when it was new, `false` for a retry already held.
pub async fn accept(
    store: &dyn Store,
    counters: &IngestCounters,
    user_id: &str,
    received: Received,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let params: Map<String, Value> = received
        .params
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let params = Value::Object(params).to_string();
    let dedupe_key = dedupe_key(&received, &params);
    let new = store
        .accept_delivery(NewDelivery {
            user_id: user_id.to_string(),
            kind: received.kind.as_str().to_string(),
            dedupe_key,
            body: received.body,
            params,
            received_at: now,
        })
        .await?;
    IngestCounters::add(if new {
        &counters.accepted
    } else {
        &counters.duplicates
    });
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(kind: Kind, body: &str, key: Option<&str>) -> Received {
        Received {
            kind,
            body: body.as_bytes().to_vec(),
            params: vec![("uid".into(), "u1".into())],
            idempotency_key: key.map(str::to_string),
        }
    }

    #[test]
    fn retries_share_a_key_by_header_or_by_content() {
        let a = received(Kind::Conversation, "{}", Some("k1"));
        let b = received(Kind::Conversation, "{\"other\": 1}", Some("k1"));
        assert_eq!(dedupe_key(&a, "{}"), dedupe_key(&b, "{}"));
        let c = received(Kind::Conversation, "{}", None);
        let d = received(Kind::Conversation, "{}", None);
        assert_eq!(dedupe_key(&c, "{}"), dedupe_key(&d, "{}"));
        let e = received(Kind::Conversation, "{\"x\": 1}", None);
        assert_ne!(dedupe_key(&c, "{}"), dedupe_key(&e, "{}"));
        let audio = received(Kind::Audio, "ab", None);
        assert_ne!(dedupe_key(&audio, "{}"), dedupe_key(&audio, "{}"));
    }
}
