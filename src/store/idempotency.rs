//! Kept answers for `Idempotency-Key` retries: the trait both backends implement, and the one
//! decision they share about a row that already exists.

use async_trait::async_trait;

use crate::domain::time::Timestamp;
use crate::store::StoreResult;

/// Whose retry this is: one developer key, one method and path, one idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope {
    pub key_id: String,
    pub method: String,
    pub path: String,
    pub idempotency_key: String,
}

/// A finished answer, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What a request carrying an idempotency key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// It is the first (or the first since the last one expired or was abandoned): run it.
    Run,
    /// A request with the same fingerprint finished: answer with this.
    Replay(KeptResponse),
    /// The key was used for a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// A row found under the scope, as both backends read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRow {
    pub fingerprint: String,
    pub created_at: Timestamp,
    pub response: Option<KeptResponse>,
}

/// When rows stop counting: older than `expired_before` they are gone; unfinished and older
/// than `abandoned_before` their request died with its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyClock {
    pub now: Timestamp,
    pub expired_before: Timestamp,
    pub abandoned_before: Timestamp,
}

impl KeptRow {
    /// `None` when the row no longer counts and the new request takes its place.
    pub fn decide(self, fingerprint: &str, clock: &IdempotencyClock) -> Option<IdempotencyClaim> {
        if self.created_at < clock.expired_before {
            return None;
        }
        if self.fingerprint != fingerprint {
            return Some(IdempotencyClaim::Mismatch);
        }
        match self.response {
            Some(response) => Some(IdempotencyClaim::Replay(response)),
            None if self.created_at < clock.abandoned_before => None,
            None => Some(IdempotencyClaim::InProgress),
        }
    }
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Looks the scope up and, when the request should run, marks it in progress, atomically:
    /// of two concurrent requests with the same scope exactly one gets `Run`. Expired rows of
    /// the same developer key are purged on the way.
    async fn claim_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
        clock: IdempotencyClock,
    ) -> StoreResult<IdempotencyClaim>;
    /// Keeps the answer of a request that ran.
    async fn complete_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        response: &KeptResponse,
    ) -> StoreResult<()>;
    /// Forgets an unfinished claim, so that a retry runs again (the answer is not kept).
    async fn release_idempotency_key(&self, scope: &IdempotencyScope) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_datetime;

    fn clock() -> IdempotencyClock {
        IdempotencyClock {
            now: parse_datetime("2026-01-02T12:00:00Z").unwrap(),
            expired_before: parse_datetime("2026-01-01T12:00:00Z").unwrap(),
            abandoned_before: parse_datetime("2026-01-02T11:58:00Z").unwrap(),
        }
    }

    fn row(at: &str, response: Option<KeptResponse>) -> KeptRow {
        KeptRow {
            fingerprint: "f".into(),
            created_at: parse_datetime(at).unwrap(),
            response,
        }
    }

    #[test]
    fn a_finished_answer_is_replayed_until_it_expires() {
        let kept = KeptResponse {
            status: 200,
            content_type: Some("application/json".into()),
            body: b"{}".to_vec(),
        };
        assert_eq!(
            row("2026-01-02T00:00:00Z", Some(kept.clone())).decide("f", &clock()),
            Some(IdempotencyClaim::Replay(kept.clone()))
        );
        assert_eq!(
            row("2026-01-01T11:59:59Z", Some(kept)).decide("f", &clock()),
            None
        );
    }

    #[test]
    fn another_request_under_the_same_key_is_a_mismatch_even_while_running() {
        assert_eq!(
            row("2026-01-02T11:59:00Z", None).decide("g", &clock()),
            Some(IdempotencyClaim::Mismatch)
        );
    }

    #[test]
    fn a_running_request_blocks_retries_until_it_is_abandoned() {
        assert_eq!(
            row("2026-01-02T11:59:00Z", None).decide("f", &clock()),
            Some(IdempotencyClaim::InProgress)
        );
        assert_eq!(
            row("2026-01-02T11:57:00Z", None).decide("f", &clock()),
            None
        );
    }
}
