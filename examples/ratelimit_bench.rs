//! Micro benchmark of the rate limiters.
//!
//! `cargo run --release --example ratelimit_bench`
//!
//! Measures the in-process limiter in ns per `check_request`, and the Redis limiter in latency
//! per request and Redis commands per request (from `INFO commandstats`, to show one `EVALSHA`
//! per request). Redis is taken from `OMI_REDIS_URL`, else `redis://127.0.0.1:6379`; the Redis
//! part is skipped if it cannot be reached. Command counts include any other client of that
//! Redis during the run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use omi_server::ratelimit::{InMemoryLimiter, Limiter, Limits, RedisLimiter};

/// High enough that every request is admitted: the admitted path is the one that writes.
const GENEROUS: Limits = Limits {
    per_minute: u64::MAX / 2,
    per_day: u64::MAX / 2,
    failed_auth_per_minute: 0,
};

fn key_and_user(i: usize) -> (String, String) {
    (format!("key-{}", i % 1000), format!("user-{}", i % 100))
}

async fn bench_in_memory() {
    let limiter = Arc::new(InMemoryLimiter::new(GENEROUS));
    let ids: Vec<_> = (0..1000).map(key_and_user).collect();
    let n = 2_000_000;
    for (key, user) in ids.iter().take(1000) {
        limiter.check_request(key, user).await.unwrap();
    }
    let started = Instant::now();
    for i in 0..n {
        let (key, user) = &ids[i % ids.len()];
        limiter.check_request(key, user).await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "in-process, 1 task:  {:>7.1} ns per check_request ({n} calls, 1000 keys, 100 users)",
        elapsed.as_nanos() as f64 / n as f64
    );

    let tasks = 4;
    let ids = Arc::new(ids);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (limiter, ids) = (limiter.clone(), ids.clone());
            tokio::spawn(async move {
                for i in 0..n / tasks {
                    let (key, user) = &ids[(i * 7 + t) % ids.len()];
                    limiter.check_request(key, user).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "in-process, {tasks} tasks: {:>7.1} ns per check_request of wall time ({} worker threads)",
        elapsed.as_nanos() as f64 / n as f64,
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
}

async fn command_counts(conn: &mut redis::aio::MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

fn delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut d: Vec<_> = after
        .iter()
        .map(|(name, calls)| (name.clone(), calls - before.get(name).copied().unwrap_or(0)))
        .filter(|(name, calls)| *calls > 0 && name != "info")
        .collect();
    d.sort_by_key(|(_, calls)| std::cmp::Reverse(*calls));
    d
}

/// Commands the limiter's Lua scripts call (see `src/ratelimit/lua/`).
const SCRIPT_INTERNAL: [&str; 4] = ["time", "hmget", "hset", "pexpireat"];

fn listing(commands: &[(String, u64)]) -> String {
    commands
        .iter()
        .map(|(name, calls)| format!("{name}={calls}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn bench_redis(url: &str) {
    let prefix = format!("omi-bench:{}:", uuid::Uuid::new_v4());
    let limiter = match RedisLimiter::connect(url, &prefix, GENEROUS).await {
        Ok(l) => Arc::new(l),
        Err(e) => {
            println!("redis: skipped ({e})");
            return;
        }
    };
    let mut admin = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let n = 20_000;
    let before = command_counts(&mut admin).await;
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let (key, user) = key_and_user(i);
        let t = Instant::now();
        limiter.check_request(&key, &user).await.unwrap();
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    let after = command_counts(&mut admin).await;
    latencies.sort_unstable();
    println!(
        "redis, sequential:   {:>7.1} us per check_request (p50 {:?}, p99 {:?}) over {n} calls",
        elapsed.as_secs_f64() * 1e6 / n as f64,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    // INFO commandstats also counts the commands a script runs inside Redis; those are not
    // round trips, so they are listed apart.
    let (inside, sent): (Vec<_>, Vec<_>) = delta(&before, &after)
        .into_iter()
        .partition(|(name, _)| SCRIPT_INTERNAL.contains(&name.as_str()));
    let round_trips: u64 = sent.iter().map(|(_, c)| c).sum();
    println!(
        "redis, commands:     {:.3} round trips per check_request (sent: {}; run by the script: {})",
        round_trips as f64 / n as f64,
        listing(&sent),
        listing(&inside),
    );

    let tasks = 64;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                for i in 0..n / tasks {
                    let (key, user) = key_and_user(i * tasks + t);
                    limiter.check_request(&key, &user).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "redis, {tasks} tasks:      {:>7.0} check_request/s on one limiter (one multiplexed connection)",
        n as f64 / elapsed.as_secs_f64()
    );

    let mut keys: Vec<String> = Vec::new();
    {
        let mut iter: redis::AsyncIter<String> =
            redis::AsyncCommands::scan_match(&mut admin, format!("{prefix}*"))
                .await
                .unwrap();
        while let Some(key) = iter.next_item().await {
            keys.push(key.unwrap());
        }
    }
    for chunk in keys.chunks(500) {
        let _: () = redis::AsyncCommands::del(&mut admin, chunk).await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    bench_in_memory().await;
    let url = std::env::var("OMI_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    bench_redis(&url).await;
}
