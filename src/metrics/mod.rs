//! Prometheus metrics, served as `GET /metrics` on a listener of their own
//! (`OMI_METRICS_LISTEN`, off by default): request counts and latencies by method, matched route
//! and status; connection pool usage; rate-limiter decisions.
//!
//! When the setting is off there is no [`Metrics`] at all: the recording layer is not installed
//! and the limiter call sites skip their counter, so a server without metrics pays nothing.
//! The listener has no authentication, like most Prometheus targets: it is meant for a private
//! network, away from the API's public address.

pub mod http;
pub mod limiter;
pub mod text;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use std::sync::atomic::Ordering;

use crate::error::{ApiError, details};
use crate::service::ingest::IngestCounters;
use crate::service::webhooks::DeliveryStats;
use crate::store::{PoolUsage, Store};

pub use self::http::{HttpMetrics, RecordLayer};
pub use self::limiter::{DecisionKind, DecisionOutcome, LimiterMetrics};
use self::text::TextWriter;

/// Everything this process counts, shared by the API (which records) and the metrics listener
/// (which renders).
#[derive(Default)]
pub struct Metrics {
    pub http: Arc<HttpMetrics>,
    pub limiter: LimiterMetrics,
    /// Shared with the webhook inbox and its worker, which count into it.
    pub ingest: Arc<IngestCounters>,
    pub webhooks: Arc<DeliveryStats>,
}

impl Metrics {
    /// One scrape answer in the text exposition format.
    pub fn render(&self, pools: &[PoolUsage]) -> String {
        let mut text = TextWriter::default();
        self.http.render(&mut text);
        render_pools(&mut text, pools);
        self.limiter.render(&mut text);
        render_ingest(&mut text, &self.ingest);
        render_webhooks(&mut text, &self.webhooks);
        text.finish()
    }
}

fn render_ingest(text: &mut TextWriter, counters: &IngestCounters) {
    const DELIVERIES: &str = "omi_ingest_deliveries_total";
    text.family(
        DELIVERIES,
        "counter",
        "Omi app webhook deliveries by outcome: accepted (new, stored), duplicate (a retry already \
         held), processed, retried (an attempt failed; tried again later), failed (given up on; \
         kept in the inbox with its error, see `omi-server ingest status`).",
    );
    for (outcome, counter) in [
        ("accepted", &counters.accepted),
        ("duplicate", &counters.duplicates),
        ("processed", &counters.processed),
        ("retried", &counters.retried),
        ("failed", &counters.failed),
    ] {
        text.sample(
            DELIVERIES,
            &[("outcome", outcome)],
            IngestCounters::read(counter),
        );
    }
}

fn render_pools(text: &mut TextWriter, pools: &[PoolUsage]) {
    // `in_use` and `idle` add up to the open connections, so `sum by (pool)` means something;
    // the ceiling and the queue are separate gauges.
    const CONNECTIONS: &str = "omi_db_pool_connections";
    const MAX: &str = "omi_db_pool_max_connections";
    const WAITING: &str = "omi_db_pool_waiting";
    text.family(
        CONNECTIONS,
        "gauge",
        "Open database connections by pool and state (in_use or idle).",
    );
    for pool in pools {
        let idle = pool.open.saturating_sub(pool.in_use);
        text.sample(
            CONNECTIONS,
            &[("pool", pool.pool), ("state", "in_use")],
            pool.in_use,
        );
        text.sample(CONNECTIONS, &[("pool", pool.pool), ("state", "idle")], idle);
    }
    text.family(
        MAX,
        "gauge",
        "Most connections each database pool may open.",
    );
    for pool in pools {
        text.sample(MAX, &[("pool", pool.pool)], pool.max);
    }
    text.family(
        WAITING,
        "gauge",
        "Requests waiting for a database connection (pools that count them).",
    );
    for pool in pools {
        if let Some(waiting) = pool.waiting {
            text.sample(WAITING, &[("pool", pool.pool)], waiting);
        }
    }
}

fn render_webhooks(text: &mut TextWriter, stats: &DeliveryStats) {
    const ATTEMPTS: &str = "omi_webhook_deliveries_total";
    const PENDING: &str = "omi_webhook_queue_depth";
    const OLDEST: &str = "omi_webhook_oldest_pending_seconds";
    text.family(
        ATTEMPTS,
        "counter",
        "Webhook delivery attempts by outcome (delivered, retried, failed).",
    );
    for (outcome, counter) in [
        ("delivered", &stats.delivered),
        ("retried", &stats.retried),
        ("failed", &stats.failed),
    ] {
        text.sample(
            ATTEMPTS,
            &[("outcome", outcome)],
            counter.load(Ordering::Relaxed),
        );
    }
    text.family(
        PENDING,
        "gauge",
        "Webhook deliveries waiting to be sent (read every few seconds).",
    );
    text.sample(PENDING, &[], stats.pending.load(Ordering::Relaxed));
    text.family(
        OLDEST,
        "gauge",
        "Age of the oldest pending webhook delivery, 0 when none.",
    );
    text.sample(
        OLDEST,
        &[],
        stats.oldest_pending_age_seconds(crate::domain::time::now()),
    );
}

#[derive(Clone)]
struct Source {
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
}

/// The metrics listener's application: `GET /metrics` and JSON 404/405 for anything else. It
/// has no request logging: a scrape every few seconds would drown the API's log lines.
pub fn router(metrics: Arc<Metrics>, store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(ApiError::unmatched_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Source { metrics, store })
}

async fn scrape(State(source): State<Source>) -> Response {
    let body = source.metrics.render(&source.store.pool_usage());
    ([(header::CONTENT_TYPE, text::CONTENT_TYPE)], body).into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, details::METHOD_NOT_ALLOWED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_report_in_use_and_idle_connections_their_ceiling_and_waiters() {
        let pools = [
            PoolUsage {
                pool: "sqlite_read",
                max: 4,
                open: 4,
                in_use: 1,
                waiting: None,
            },
            PoolUsage {
                pool: "postgres",
                max: 16,
                open: 3,
                in_use: 2,
                waiting: Some(5),
            },
        ];
        let text = Metrics::default().render(&pools);
        for line in [
            "# TYPE omi_db_pool_connections gauge",
            "omi_db_pool_connections{pool=\"sqlite_read\",state=\"in_use\"} 1",
            "omi_db_pool_connections{pool=\"sqlite_read\",state=\"idle\"} 3",
            "omi_db_pool_connections{pool=\"postgres\",state=\"in_use\"} 2",
            "omi_db_pool_connections{pool=\"postgres\",state=\"idle\"} 1",
            "omi_db_pool_max_connections{pool=\"sqlite_read\"} 4",
            "omi_db_pool_max_connections{pool=\"postgres\"} 16",
            "omi_db_pool_waiting{pool=\"postgres\"} 5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("omi_db_pool_waiting{pool=\"sqlite_read\"}"));
    }

    #[test]
    fn an_idle_server_still_announces_every_family() {
        let text = Metrics::default().render(&[]);
        for family in [
            "omi_http_requests_total counter",
            "omi_http_request_duration_seconds histogram",
            "omi_db_pool_connections gauge",
            "omi_rate_limit_decisions_total counter",
        ] {
            assert!(text.contains(&format!("# TYPE {family}\n")), "{text}");
        }
    }
}
