//! The Redis limiter against a real Redis: set `OMI_TEST_REDIS_URL` (e.g.
//! `redis://127.0.0.1:6379`) to run these; without it they are skipped with a notice. Each test
//! uses its own key prefix and deletes its keys at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use omi_server::ratelimit::{Limiter, Limits, RedisLimiter, RedisSetupError, WindowName};
use redis::AsyncCommands as _;
use tokio::net::TcpListener;

#[path = "support/tcp_proxy.rs"]
mod tcp_proxy;
use tcp_proxy::Proxy;
use tokio::task::JoinHandle;

fn redis_url(test: &str) -> Option<String> {
    let url = std::env::var("OMI_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipping {test}: OMI_TEST_REDIS_URL is not set");
    }
    url
}

fn unique_prefix() -> String {
    format!("omi-test:{}:", uuid::Uuid::new_v4())
}

fn limits(per_minute: u64, per_day: u64, failed_auth_per_minute: u64) -> Limits {
    Limits {
        per_minute,
        per_day,
        failed_auth_per_minute,
    }
}

async fn admin(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn keys_under(url: &str, prefix: &str) -> Vec<String> {
    let mut conn = admin(url).await;
    let mut keys: Vec<String> = Vec::new();
    let mut iter: redis::AsyncIter<String> = conn.scan_match(format!("{prefix}*")).await.unwrap();
    while let Some(key) = iter.next_item().await {
        keys.push(key.unwrap());
    }
    keys
}

async fn cleanup(url: &str, prefix: &str) {
    let keys = keys_under(url, prefix).await;
    if !keys.is_empty() {
        let _: () = admin(url).await.del(keys).await.unwrap();
    }
}

/// Redis time in Unix milliseconds (the limiter's windows follow it).
async fn redis_now_ms(url: &str) -> i64 {
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut admin(url).await)
        .await
        .unwrap();
    secs * 1000 + micros / 1000
}

/// Make sure at least 5 s of the current minute remain, so a test's requests share one window.
async fn wait_for_minute_room(url: &str) {
    let into_minute = redis_now_ms(url).await.rem_euclid(60_000);
    if into_minute > 55_000 {
        let wait = 60_000 - into_minute + 100;
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_admit_exactly_the_limit() {
    let Some(url) = redis_url("two_instances_admit_exactly_the_limit") else {
        return;
    };
    let prefix = unique_prefix();
    // Two limiters, as two replicas would have: separate connections.
    let a = Arc::new(
        RedisLimiter::connect(&url, &prefix, limits(50, 0, 0))
            .await
            .unwrap(),
    );
    let b = Arc::new(
        RedisLimiter::connect(&url, &prefix, limits(50, 0, 0))
            .await
            .unwrap(),
    );
    wait_for_minute_room(&url).await;

    let tasks: Vec<JoinHandle<_>> = (0..200)
        .map(|i| {
            let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { limiter.check_request("key-1", "user-1").await.unwrap() })
        })
        .collect();
    let mut remaining_of_admitted = Vec::new();
    let mut rejected = 0;
    for task in tasks {
        let decision = task.await.unwrap();
        assert_eq!(decision.windows.len(), 1);
        if decision.allowed {
            remaining_of_admitted.push(decision.windows[0].remaining);
        } else {
            rejected += 1;
            assert_eq!(decision.windows[0].remaining, 0);
            assert!(decision.windows[0].exceeded);
            assert!((1..=60).contains(&decision.retry_after().unwrap()));
        }
    }
    assert_eq!(remaining_of_admitted.len(), 50);
    assert_eq!(rejected, 150);
    // Each slot of the window was handed out exactly once.
    remaining_of_admitted.sort_unstable();
    assert_eq!(remaining_of_admitted, (0..50).collect::<Vec<u64>>());

    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn day_window_is_shared_by_the_keys_of_one_user() {
    let Some(url) = redis_url("day_window_is_shared_by_the_keys_of_one_user") else {
        return;
    };
    let prefix = unique_prefix();
    let limiter = RedisLimiter::connect(&url, &prefix, limits(100, 5, 0))
        .await
        .unwrap();
    wait_for_minute_room(&url).await;

    for _ in 0..3 {
        assert!(
            limiter
                .check_request("key-a", "user-1")
                .await
                .unwrap()
                .allowed
        );
    }
    let d = limiter.check_request("key-b", "user-1").await.unwrap();
    assert!(d.allowed);
    // key-b has used 1 of its minute, the user 4 of the day.
    assert_eq!(d.windows[0].name, WindowName::Minute);
    assert_eq!(d.windows[0].remaining, 99);
    assert_eq!(d.windows[1].name, WindowName::Day);
    assert_eq!(d.windows[1].remaining, 1);
    assert!(
        limiter
            .check_request("key-b", "user-1")
            .await
            .unwrap()
            .allowed
    );

    // The day is used up for every key of the user, and rejections do not count.
    for key in ["key-a", "key-b", "key-c", "key-a"] {
        let d = limiter.check_request(key, "user-1").await.unwrap();
        assert!(!d.allowed);
        assert!(!d.windows[0].exceeded);
        assert!(d.windows[1].exceeded);
        let now_ms = redis_now_ms(&url).await;
        let next_midnight = (now_ms.div_euclid(86_400_000) + 1) * 86_400;
        assert_eq!(d.windows[1].reset_at, next_midnight);
        assert_eq!(d.retry_after(), Some(d.windows[1].reset_in));
    }
    let mut conn = admin(&url).await;
    let day_count: u64 = conn
        .hget(format!("{prefix}rl:{{user-1}}:day"), "c")
        .await
        .unwrap();
    assert_eq!(day_count, 5);
    let minute_count: Option<u64> = conn
        .hget(format!("{prefix}rl:{{user-1}}:key:key-c"), "c")
        .await
        .unwrap();
    assert_eq!(
        minute_count, None,
        "a rejected request must not touch the minute counter"
    );

    // Another user has a day of their own.
    assert!(
        limiter
            .check_request("key-z", "user-2")
            .await
            .unwrap()
            .allowed
    );

    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn keys_carry_the_prefix_and_expire_with_their_window() {
    let Some(url) = redis_url("keys_carry_the_prefix_and_expire_with_their_window") else {
        return;
    };
    let prefix = unique_prefix();
    let limiter = RedisLimiter::connect(&url, &prefix, limits(10, 10, 10))
        .await
        .unwrap();
    limiter.check_request("key-1", "user-1").await.unwrap();
    limiter.register_failed_auth("192.0.2.7").await.unwrap();

    let mut keys = keys_under(&url, &prefix).await;
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("{prefix}rl:auth:192.0.2.7"),
            format!("{prefix}rl:{{user-1}}:day"),
            format!("{prefix}rl:{{user-1}}:key:key-1"),
        ]
    );
    let mut conn = admin(&url).await;
    for (key, window_ms) in [
        (&keys[0], 60_000),
        (&keys[1], 86_400_000),
        (&keys[2], 60_000),
    ] {
        let ttl: i64 = conn.pttl(key).await.unwrap();
        assert!(ttl > 0 && ttl <= window_ms, "{key} expires in {ttl} ms");
    }

    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn failed_auth_blocks_an_address_past_the_limit() {
    let Some(url) = redis_url("failed_auth_blocks_an_address_past_the_limit") else {
        return;
    };
    let prefix = unique_prefix();
    let limiter = RedisLimiter::connect(&url, &prefix, limits(100, 100, 3))
        .await
        .unwrap();
    wait_for_minute_room(&url).await;

    for _ in 0..3 {
        assert!(
            !limiter
                .register_failed_auth("198.51.100.1")
                .await
                .unwrap()
                .blocked
        );
    }
    let verdict = limiter.register_failed_auth("198.51.100.1").await.unwrap();
    assert!(verdict.blocked);
    let left_in_minute = 60 - redis_now_ms(&url).await.rem_euclid(60_000) / 1000;
    assert!(verdict.retry_after.abs_diff(left_in_minute as u64) <= 1);
    assert!(
        limiter
            .register_failed_auth("198.51.100.1")
            .await
            .unwrap()
            .blocked
    );
    // Other addresses and valid requests are unaffected.
    assert!(
        !limiter
            .register_failed_auth("198.51.100.2")
            .await
            .unwrap()
            .blocked
    );
    assert!(
        limiter
            .check_request("key-1", "user-1")
            .await
            .unwrap()
            .allowed
    );

    // 0 turns the block off, without touching Redis.
    let off_prefix = unique_prefix();
    let off = RedisLimiter::connect(&url, &off_prefix, limits(100, 100, 0))
        .await
        .unwrap();
    for _ in 0..10 {
        assert!(
            !off.register_failed_auth("198.51.100.1")
                .await
                .unwrap()
                .blocked
        );
    }
    assert!(keys_under(&url, &off_prefix).await.is_empty());

    cleanup(&url, &prefix).await;
}

/// A port with nothing listening: bind, note the port, close.
async fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test]
async fn unreachable_redis_is_reported_quickly() {
    // Needs no Redis at all.
    let addr = closed_port().await;
    let url = format!("redis://{addr}");

    let started = Instant::now();
    let err = RedisLimiter::connect(&url, "omi-test:", limits(10, 10, 10)).await;
    assert!(matches!(err, Err(RedisSetupError::Unreachable(_))));
    assert!(started.elapsed() < Duration::from_secs(4));

    let limiter = RedisLimiter::new_lazy(&url, "omi-test:", limits(10, 10, 10)).unwrap();
    let started = Instant::now();
    assert!(limiter.check_request("key-1", "user-1").await.is_err());
    assert!(limiter.register_failed_auth("192.0.2.1").await.is_err());
    assert!(limiter.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn silent_redis_is_reported_within_the_deadline() {
    // Accepts connections (the kernel completes the handshake) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let limiter = RedisLimiter::new_lazy(&url, "omi-test:", limits(10, 10, 10)).unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let result = limiter.check_request("key-1", "user-1").await;
        assert!(result.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "took {:?}",
            started.elapsed()
        );
    }
    drop(listener);
}

/// `host:port` of a `redis://[user:pass@]host[:port][/db]` URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap()
}

#[tokio::test]
async fn the_same_limiter_recovers_when_redis_comes_back() {
    let Some(url) = redis_url("the_same_limiter_recovers_when_redis_comes_back") else {
        return;
    };
    let upstream = authority(&url);
    let upstream_addr = if upstream.contains(':') {
        upstream.to_owned()
    } else {
        format!("{upstream}:6379")
    };
    let proxy = Proxy::start(upstream_addr).await;
    let proxied_url = url.replacen(upstream, &proxy.addr.to_string(), 1);
    let prefix = unique_prefix();
    let limiter = RedisLimiter::connect(&proxied_url, &prefix, limits(0, 1000, 0))
        .await
        .unwrap();
    let remaining = |d: omi_server::ratelimit::Decision| d.windows[0].remaining;

    assert_eq!(
        remaining(limiter.check_request("k", "u").await.unwrap()),
        999
    );

    // Outage seen by requests.
    proxy.cut();
    for _ in 0..3 {
        let started = Instant::now();
        assert!(limiter.check_request("k", "u").await.is_err());
        assert!(limiter.ping().await.is_err());
        assert!(started.elapsed() < Duration::from_secs(4));
    }
    proxy.restore();
    // The first request after the restore succeeds, and the count survived (failed calls
    // counted nothing).
    assert_eq!(
        remaining(limiter.check_request("k", "u").await.unwrap()),
        998
    );
    limiter.ping().await.unwrap();

    // Outage nobody noticed: the idle connection was closed while no request ran.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.restore();
    assert_eq!(
        remaining(limiter.check_request("k", "u").await.unwrap()),
        997
    );

    drop(proxy);
    cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_an_hourly_window_exactly() {
    let Some(url) = redis_url("two_instances_share_an_hourly_window_exactly") else {
        return;
    };
    let prefix = unique_prefix();
    let a = Arc::new(
        RedisLimiter::connect(&url, &prefix, limits(0, 0, 0))
            .await
            .unwrap(),
    );
    let b = Arc::new(
        RedisLimiter::connect(&url, &prefix, limits(0, 0, 0))
            .await
            .unwrap(),
    );
    // Keep clear of an hour boundary, so every request falls in one window.
    let into_hour = redis_now_ms(&url).await.rem_euclid(3_600_000);
    if into_hour > 3_595_000 {
        tokio::time::sleep(Duration::from_millis((3_600_000 - into_hour + 100) as u64)).await;
    }
    let tasks: Vec<JoinHandle<_>> = (0..40)
        .map(|i| {
            let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                limiter
                    .check_hourly("ask", "key-1", "user-1", 25)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        let verdict = task.await.unwrap();
        if verdict.allowed {
            admitted += 1;
        } else {
            assert_eq!(verdict.remaining, 0);
            assert!(verdict.reset_in >= 1 && verdict.reset_in <= 3600);
        }
    }
    assert_eq!(admitted, 25);
    assert!(
        a.check_hourly("ask", "key-2", "user-1", 25)
            .await
            .unwrap()
            .allowed,
        "the window is per key"
    );
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn usage_reads_the_counters_without_counting() {
    let Some(url) = redis_url("usage_reads_the_counters_without_counting") else {
        return;
    };
    let prefix = unique_prefix();
    let limiter = RedisLimiter::connect(&url, &prefix, limits(100, 1000, 0))
        .await
        .unwrap();
    wait_for_minute_room(&url).await;
    for _ in 0..3 {
        assert!(
            limiter
                .check_request("key-a", "user-1")
                .await
                .unwrap()
                .allowed
        );
    }
    assert!(
        limiter
            .check_request("key-b", "user-1")
            .await
            .unwrap()
            .allowed
    );
    let keys = [
        "key-a".to_string(),
        "key-b".to_string(),
        "key-c".to_string(),
    ];
    let usage = limiter.usage("user-1", &keys).await.unwrap();
    assert_eq!(usage.minute, Some(vec![3, 1, 0]));
    assert_eq!(usage.day, Some(4));
    assert_eq!(
        limiter.usage("user-1", &keys).await.unwrap(),
        usage,
        "reading counts nothing"
    );
    assert_eq!(
        limiter.usage("user-2", &keys).await.unwrap().day,
        Some(0),
        "another user's counters are their own"
    );
    cleanup(&url, &prefix).await;
}
