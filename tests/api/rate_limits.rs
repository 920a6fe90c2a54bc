//! Rate limits as clients see them (API.md §10), in process and through a real Redis.

use std::time::Duration;

use omi_server::domain::credentials::Secret;
use reqwest::Method;

use crate::common::{Reply, TestServer};
use crate::tcp_proxy::Proxy;

/// Counting tests must not straddle a calendar minute: wait for a fresh one when it is late.
async fn wait_for_room_in_this_minute() {
    let second = chrono::Utc::now().timestamp() % 60;
    if second >= 50 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
}

fn header_number(reply: &Reply, name: &str) -> i64 {
    reply
        .header(name)
        .unwrap_or_else(|| panic!("missing {name}: {reply:?}"))
        .parse()
        .unwrap()
}

fn redis_url() -> Option<String> {
    let url = std::env::var("OMI_TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("OMI_TEST_REDIS_URL is unset: skipping a Redis test");
    }
    url
}

#[tokio::test]
async fn every_response_to_a_valid_key_carries_the_limit_headers() {
    wait_for_room_in_this_minute().await;
    let server = TestServer::start_with(|s| {
        s.rate_limit_per_minute = 5;
        s.rate_limit_per_day = 100;
    })
    .await;
    let alice = server.user("alice").await;
    let first = server.get("/v1/dev/key", &alice.key).await;
    assert_eq!(first.status, 200);
    assert_eq!(header_number(&first, "x-ratelimit-limit"), 5);
    assert_eq!(header_number(&first, "x-ratelimit-remaining"), 4);
    let reset = header_number(&first, "x-ratelimit-reset");
    let now = chrono::Utc::now().timestamp();
    assert!(
        reset > now && reset <= now - now % 60 + 60,
        "reset {reset} now {now}"
    );
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"minute\";q=5;w=60, \"day\";q=100;w=86400")
    );
    let ratelimit = first.header("ratelimit").unwrap();
    assert!(ratelimit.starts_with("\"minute\";r=4;t="), "{ratelimit}");
    assert!(ratelimit.contains("\"day\";r=99;t="), "{ratelimit}");
}

#[tokio::test]
async fn client_errors_count_and_carry_the_headers_too() {
    wait_for_room_in_this_minute().await;
    let server = TestServer::start_with(|s| s.rate_limit_per_minute = 10).await;
    let alice = server.user("alice").await;
    let read_only = server.key_with(&alice, &["memories:read"]).await;
    let forbidden = server
        .post(
            "/v1/dev/user/memories",
            &read_only,
            serde_json::json!({"content": "x"}),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(header_number(&forbidden, "x-ratelimit-remaining"), 9);
    let invalid = server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            serde_json::json!({"content": "  "}),
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert_eq!(header_number(&invalid, "x-ratelimit-remaining"), 9);
    let missing = server
        .get(
            "/v1/dev/user/memories/00000000-0000-4000-8000-000000000000",
            &read_only,
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        header_number(&missing, "x-ratelimit-remaining"),
        8,
        "403s count too"
    );
}

#[tokio::test]
async fn past_the_minute_limit_requests_get_429_and_consume_nothing() {
    wait_for_room_in_this_minute().await;
    let server = TestServer::start_with(|s| s.rate_limit_per_minute = 3).await;
    let alice = server.user("alice").await;
    for expected_remaining in [2, 1, 0] {
        let reply = server.get("/v1/dev/key", &alice.key).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            header_number(&reply, "x-ratelimit-remaining"),
            expected_remaining
        );
    }
    for _ in 0..3 {
        let limited = server.get("/v1/dev/key", &alice.key).await;
        assert_eq!(limited.status, 429, "{limited:?}");
        let retry_after = header_number(&limited, "retry-after");
        assert!((1..=60).contains(&retry_after));
        assert_eq!(
            limited.detail(),
            format!("Rate limit exceeded. Try again in {retry_after}s.")
        );
        assert_eq!(header_number(&limited, "x-ratelimit-remaining"), 0);
        assert_eq!(header_number(&limited, "x-ratelimit-limit"), 3);
    }
    // The day window saw only the admitted requests.
    let keys = server.get("/v1/dev/keys", &alice.account_token).await;
    assert_eq!(keys.status, 200, "account-token requests are not limited");
    assert!(keys.header("x-ratelimit-limit").is_none());
}

#[tokio::test]
async fn the_day_window_is_shared_by_all_keys_of_a_user() {
    let server = TestServer::start_with(|s| {
        s.rate_limit_per_minute = 0;
        s.rate_limit_per_day = 3;
    })
    .await;
    let alice = server.user("alice").await;
    let other_key = server.key_with(&alice, &[]).await;
    assert_eq!(server.get("/v1/dev/key", &alice.key).await.status, 200);
    assert_eq!(server.get("/v1/dev/key", &alice.key).await.status, 200);
    let third = server.get("/v1/dev/key", &other_key).await;
    assert_eq!(third.status, 200);
    assert_eq!(
        header_number(&third, "x-ratelimit-limit"),
        3,
        "only the day window is on"
    );
    assert_eq!(
        third.header("ratelimit-policy"),
        Some("\"day\";q=3;w=86400"),
        "a window set to 0 is never reported"
    );
    assert_eq!(server.get("/v1/dev/key", &other_key).await.status, 429);
    // Another user is not affected.
    let bob = server.user("bob").await;
    assert_eq!(server.get("/v1/dev/key", &bob.key).await.status, 200);
}

#[tokio::test]
async fn rejected_credentials_carry_no_limit_headers() {
    let server = TestServer::start_with(|s| s.rate_limit_per_minute = 5).await;
    let reply = server
        .get("/v1/dev/key", &format!("omi_dev_{}", "a".repeat(32)))
        .await;
    reply.assert_error(401, "Invalid API key");
    assert!(reply.header("x-ratelimit-limit").is_none());
    assert!(reply.header("ratelimit").is_none());
    let unmatched = server
        .call(Method::GET, "/v1/dev/nowhere", None, None)
        .await;
    assert!(unmatched.header("x-ratelimit-limit").is_none());
}

#[tokio::test]
async fn repeated_failed_authentications_from_one_address_are_blocked() {
    wait_for_room_in_this_minute().await;
    let server = TestServer::start_with(|s| s.failed_auth_per_minute = 3).await;
    let alice = server.user("alice").await;
    let unknown = format!("omi_dev_{}", "b".repeat(32));
    for _ in 0..3 {
        server
            .get("/v1/dev/key", &unknown)
            .await
            .assert_error(401, "Invalid API key");
    }
    let blocked = server.get("/v1/dev/key", &unknown).await;
    assert_eq!(blocked.status, 429, "{blocked:?}");
    assert!(
        blocked
            .detail()
            .starts_with("Rate limit exceeded. Try again in ")
    );
    assert!(blocked.header("retry-after").is_some());
    assert_eq!(
        server.get("/v1/dev/key", &alice.key).await.status,
        200,
        "valid credentials are never blocked"
    );
}

/// A second server process stand-in: same database file, its own limiter and connections.
async fn replica_of(server: &TestServer) -> TestServer {
    TestServer::start_in(tempfile::tempdir().unwrap(), server.settings()).await
}

#[tokio::test]
async fn redis_counters_are_shared_exactly_by_replicas() {
    let Some(url) = redis_url() else { return };
    wait_for_room_in_this_minute().await;
    let prefix = format!("omi-test:{}:", uuid::Uuid::new_v4().simple());
    let first = TestServer::start_with(|s| {
        s.redis_url = Some(Secret::new(url.clone()));
        s.redis_key_prefix = prefix.clone();
        s.rate_limit_per_minute = 10;
    })
    .await;
    let second = replica_of(&first).await;
    let alice = first.user("alice").await;
    let requests = (0..30).map(|i| {
        let server = if i % 2 == 0 { &first } else { &second };
        server.get("/v1/dev/key", &alice.key)
    });
    let replies = futures::future::join_all(requests).await;
    let admitted = replies.iter().filter(|r| r.status == 200).count();
    let limited = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!((admitted, limited), (10, 20));
}

#[tokio::test]
async fn redis_outage_answers_503_and_recovers_without_a_restart() {
    let Some(url) = redis_url() else { return };
    let upstream = url
        .split_once("://")
        .map_or(url.as_str(), |(_, rest)| rest)
        .trim_end_matches('/')
        .to_string();
    let proxy = Proxy::start(upstream).await;
    let server = TestServer::start_with(|s| {
        s.redis_url = Some(Secret::new(format!("redis://{}", proxy.addr)));
        s.redis_key_prefix = format!("omi-test:{}:", uuid::Uuid::new_v4().simple());
        s.rate_limit_per_minute = 1000;
    })
    .await;
    let alice = server.user("alice").await;
    assert_eq!(server.get("/v1/dev/key", &alice.key).await.status, 200);

    proxy.cut();
    let down = server.get("/v1/dev/key", &alice.key).await;
    down.assert_error(503, "Rate limiter unavailable");
    let ready = server.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, 503);

    proxy.restore();
    assert_eq!(server.get("/v1/dev/key", &alice.key).await.status, 200);
    assert_eq!(
        server.call(Method::GET, "/readyz", None, None).await.status,
        200
    );
}
