//! Rate-limiter decisions by kind and outcome: a fixed grid of counters, all exported from the
//! start (at 0) so that `rate()` over them works before the first rejection.

use std::sync::atomic::{AtomicU64, Ordering};

use super::text::TextWriter;

const DECISIONS: &str = "omi_rate_limit_decisions_total";

/// What was asked of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// A request with a valid developer key, counted against its windows.
    Request,
    /// A failed authentication, counted against the client address.
    FailedAuth,
}

/// What the limiter answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionOutcome {
    /// Admitted; for a failed authentication: not blocked, so the client got 401.
    Allowed,
    /// Over a limit: 429.
    Rejected,
    /// The shared counters (Redis) could not be reached: 503.
    Unavailable,
}

const KINDS: [(DecisionKind, &str); 2] = [
    (DecisionKind::Request, "request"),
    (DecisionKind::FailedAuth, "failed_auth"),
];
const OUTCOMES: [(DecisionOutcome, &str); 3] = [
    (DecisionOutcome::Allowed, "allowed"),
    (DecisionOutcome::Rejected, "rejected"),
    (DecisionOutcome::Unavailable, "unavailable"),
];

#[derive(Default)]
pub struct LimiterMetrics {
    counts: [[AtomicU64; 3]; 2],
}

impl LimiterMetrics {
    pub fn record(&self, kind: DecisionKind, outcome: DecisionOutcome) {
        self.counts[kind as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self, kind: DecisionKind, outcome: DecisionOutcome) -> u64 {
        self.counts[kind as usize][outcome as usize].load(Ordering::Relaxed)
    }

    pub fn render(&self, text: &mut TextWriter) {
        text.family(
            DECISIONS,
            "counter",
            "Rate-limiter decisions: kind request or failed_auth, outcome allowed, rejected (429) or unavailable (503).",
        );
        for (kind, kind_label) in KINDS {
            for (outcome, outcome_label) in OUTCOMES {
                text.sample(
                    DECISIONS,
                    &[("kind", kind_label), ("outcome", outcome_label)],
                    self.count(kind, outcome),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_outcome_is_exported_even_at_zero() {
        let metrics = LimiterMetrics::default();
        metrics.record(DecisionKind::FailedAuth, DecisionOutcome::Rejected);
        metrics.record(DecisionKind::FailedAuth, DecisionOutcome::Rejected);
        let mut text = TextWriter::default();
        metrics.render(&mut text);
        let text = text.finish();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "omi_rate_limit_decisions_total{kind=\"request\",outcome=\"allowed\"} 0",
                "omi_rate_limit_decisions_total{kind=\"request\",outcome=\"rejected\"} 0",
                "omi_rate_limit_decisions_total{kind=\"request\",outcome=\"unavailable\"} 0",
                "omi_rate_limit_decisions_total{kind=\"failed_auth\",outcome=\"allowed\"} 0",
                "omi_rate_limit_decisions_total{kind=\"failed_auth\",outcome=\"rejected\"} 2",
                "omi_rate_limit_decisions_total{kind=\"failed_auth\",outcome=\"unavailable\"} 0",
            ]
        );
    }
}
