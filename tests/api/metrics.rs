//! The Prometheus metrics listener (`OMI_METRICS_LISTEN`): what a scrape shows after real
//! requests, and that it stays off unless asked for.

use std::time::Duration;

use omi_server::config::{MetricsListen, Settings};
use omi_server::domain::credentials::Secret;
use reqwest::Method;
use serde_json::json;

use crate::common::{Backend, TestServer};

const MEMORIES: &str = "/v1/dev/user/memories";
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn metrics_on(settings: &mut Settings) {
    settings.metrics_listen = MetricsListen::At("127.0.0.1:0".parse().unwrap());
    // The daily-summary scheduler takes a pooled connection whenever it ticks; the pool checks
    // below need a server with no background work of its own.
    settings.daily_summaries = false;
    settings.ingest_worker = false;
    settings.webhooks = false;
}

/// Counting tests must not straddle a calendar minute: wait for a fresh one when it is late.
async fn wait_for_room_in_this_minute() {
    let second = chrono::Utc::now().timestamp() % 60;
    if second >= 50 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
}

/// `GET /metrics` on the metrics listener, without credentials; panics unless it is a 200 in
/// the text format.
async fn scrape(server: &TestServer) -> String {
    let url = format!(
        "{}/metrics",
        server.metrics_url.as_ref().expect("metrics are on")
    );
    let response = reqwest::get(url).await.expect("scrape");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        CONTENT_TYPE
    );
    response.text().await.unwrap()
}

fn assert_lines(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            text.lines().any(|l| l == *line),
            "missing `{line}` in the scrape:\n{text}"
        );
    }
}

/// The value of the sample whose name and labels are exactly `series`.
fn value_of(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in the scrape:\n{text}"))
        .parse()
        .unwrap()
}

async fn requests_limiter_decisions_and_pools_show_in_a_scrape(backend: Backend) {
    wait_for_room_in_this_minute().await;
    let server = TestServer::start_on_with(backend, |s| {
        metrics_on(s);
        s.rate_limit_per_minute = 4;
        s.failed_auth_per_minute = 1;
    })
    .await;
    let alice = server.user("alice").await;

    let created = server
        .post(
            MEMORIES,
            &alice.key,
            json!({"content": "Alex rows on Sundays"}),
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.body["id"].as_str().unwrap().to_string();
    let other_id = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        server
            .get(&format!("{MEMORIES}/{id}"), &alice.key)
            .await
            .status,
        200
    );
    server
        .get(&format!("{MEMORIES}/{other_id}"), &alice.key)
        .await
        .assert_error(404, "Memory not found");
    assert_eq!(server.get(MEMORIES, &alice.key).await.status, 200);
    assert_eq!(server.get(MEMORIES, &alice.key).await.status, 429);
    let invalid = "omi_dev_not-a-real-key";
    assert_eq!(server.get(MEMORIES, invalid).await.status, 401);
    assert_eq!(server.get(MEMORIES, invalid).await.status, 429);
    let anonymous = server.call(Method::GET, MEMORIES, None, None).await;
    assert_eq!(anonymous.status, 401);
    let probe = format!("/v1/dev/probe/{other_id}");
    assert_eq!(server.get(&probe, &alice.key).await.status, 404);

    let text = scrape(&server).await;
    assert_lines(
        &text,
        &[
            "# TYPE omi_http_requests_total counter",
            "omi_http_requests_total{method=\"POST\",path=\"/v1/dev/keys\",status=\"200\"} 1",
            "omi_http_requests_total{method=\"POST\",path=\"/v1/dev/user/memories\",status=\"200\"} 1",
            "omi_http_requests_total{method=\"GET\",path=\"/v1/dev/user/memories/{id}\",status=\"200\"} 1",
            "omi_http_requests_total{method=\"GET\",path=\"/v1/dev/user/memories/{id}\",status=\"404\"} 1",
            "omi_http_requests_total{method=\"GET\",path=\"/v1/dev/user/memories\",status=\"200\"} 1",
            "omi_http_requests_total{method=\"GET\",path=\"/v1/dev/user/memories\",status=\"429\"} 2",
            "omi_http_requests_total{method=\"GET\",path=\"/v1/dev/user/memories\",status=\"401\"} 2",
            "omi_http_requests_total{method=\"GET\",path=\"unmatched\",status=\"404\"} 1",
            "# TYPE omi_http_request_duration_seconds histogram",
            "omi_http_request_duration_seconds_count{method=\"GET\",path=\"/v1/dev/user/memories/{id}\",status=\"200\"} 1",
            "omi_http_request_duration_seconds_bucket{method=\"GET\",path=\"/v1/dev/user/memories/{id}\",status=\"200\",le=\"+Inf\"} 1",
            "omi_http_request_duration_seconds_count{method=\"GET\",path=\"/v1/dev/user/memories\",status=\"429\"} 2",
            "# TYPE omi_rate_limit_decisions_total counter",
            "omi_rate_limit_decisions_total{kind=\"request\",outcome=\"allowed\"} 4",
            "omi_rate_limit_decisions_total{kind=\"request\",outcome=\"rejected\"} 1",
            "omi_rate_limit_decisions_total{kind=\"request\",outcome=\"unavailable\"} 0",
            "omi_rate_limit_decisions_total{kind=\"failed_auth\",outcome=\"allowed\"} 1",
            "omi_rate_limit_decisions_total{kind=\"failed_auth\",outcome=\"rejected\"} 1",
            "omi_rate_limit_decisions_total{kind=\"failed_auth\",outcome=\"unavailable\"} 0",
            "# TYPE omi_db_pool_connections gauge",
        ],
    );
    let sum = value_of(
        &text,
        "omi_http_request_duration_seconds_sum{method=\"GET\",path=\"/v1/dev/user/memories/{id}\",status=\"200\"}",
    );
    assert!(sum > 0.0 && sum < 10.0, "{sum}");

    // Nothing runs at scrape time, so every pool is idle.
    let pools: &[&str] = match backend {
        Backend::Sqlite => &["sqlite_read", "sqlite_write"],
        Backend::Postgres => &["postgres", "postgres_lookups"],
    };
    for pool in pools {
        let in_use = value_of(
            &text,
            &format!("omi_db_pool_connections{{pool=\"{pool}\",state=\"in_use\"}}"),
        );
        let idle = value_of(
            &text,
            &format!("omi_db_pool_connections{{pool=\"{pool}\",state=\"idle\"}}"),
        );
        let max = value_of(
            &text,
            &format!("omi_db_pool_max_connections{{pool=\"{pool}\"}}"),
        );
        assert_eq!(in_use, 0.0, "{pool} in use");
        assert!(idle >= 1.0 && idle <= max, "{pool}: idle {idle}, max {max}");
    }
    match backend {
        Backend::Sqlite => {
            assert_lines(
                &text,
                &[
                    "omi_db_pool_connections{pool=\"sqlite_write\",state=\"idle\"} 1",
                    "omi_db_pool_max_connections{pool=\"sqlite_write\"} 1",
                    "omi_db_pool_waiting{pool=\"sqlite_write\"} 0",
                ],
            );
            assert!(
                !text.contains("omi_db_pool_waiting{pool=\"sqlite_read\"}"),
                "{text}"
            );
        }
        Backend::Postgres => assert_lines(
            &text,
            &[
                // The default 16 connections, shared half and half.
                "omi_db_pool_max_connections{pool=\"postgres\"} 8",
                "omi_db_pool_max_connections{pool=\"postgres_lookups\"} 8",
                "omi_db_pool_waiting{pool=\"postgres\"} 0",
                "omi_db_pool_waiting{pool=\"postgres_lookups\"} 0",
            ],
        ),
    }

    // Labels hold templates and fixed words only: no ids, keys or raw paths.
    for secret in [
        id.as_str(),
        other_id.as_str(),
        alice.id.as_str(),
        alice.key.as_str(),
        alice.account_token.as_str(),
        invalid,
        "/v1/dev/probe",
    ] {
        assert!(!text.contains(secret), "`{secret}` in the scrape:\n{text}");
    }
}

crate::backend_tests!(requests_limiter_decisions_and_pools_show_in_a_scrape);

#[tokio::test]
async fn metrics_are_off_by_default() {
    let server = TestServer::start().await;
    assert!(server.metrics_url.is_none());
    assert!(server.state.metrics.is_none(), "nothing is recorded");
    // The API listener never serves them.
    let reply = server.call(Method::GET, "/metrics", None, None).await;
    reply.assert_error(404, "Not Found");
}

#[tokio::test]
async fn the_metrics_listener_serves_only_get_metrics_and_does_not_count_itself() {
    let server = TestServer::start_with(metrics_on).await;
    let base = server.metrics_url.clone().unwrap();
    let client = omi_server::outbound::Outbound::system()
        .http_client()
        .build()
        .unwrap();

    let other = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(
        other.json::<serde_json::Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
    let post = client.post(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(
        post.json::<serde_json::Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed"})
    );

    assert_eq!(
        server
            .call(Method::GET, "/healthz", None, None)
            .await
            .status,
        200
    );
    scrape(&server).await;
    let text = scrape(&server).await;
    assert_lines(
        &text,
        &["omi_http_requests_total{method=\"GET\",path=\"/healthz\",status=\"200\"} 1"],
    );
    assert!(
        !text.contains("path=\"/metrics\""),
        "scrapes are not API requests:\n{text}"
    );
}

#[tokio::test]
async fn an_unreachable_rate_limiter_is_counted_as_unavailable() {
    // A port that was free a moment ago: nothing answers there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let server = TestServer::start_with(|s| {
        metrics_on(s);
        s.redis_url = Some(Secret::new(format!("redis://{address}")));
        s.rate_limit_per_minute = 100;
    })
    .await;
    let alice = server.user("alice").await;
    server
        .get(MEMORIES, &alice.key)
        .await
        .assert_error(503, "Rate limiter unavailable");
    let text = scrape(&server).await;
    assert_lines(
        &text,
        &[
            "omi_rate_limit_decisions_total{kind=\"request\",outcome=\"unavailable\"} 1",
            "omi_rate_limit_decisions_total{kind=\"request\",outcome=\"allowed\"} 0",
            "omi_http_requests_total{method=\"GET\",path=\"/v1/dev/user/memories\",status=\"503\"} 1",
        ],
    );
}
