//! Webhook cost and delivery rate, on SQLite, server and load in one process on 127.0.0.1:
//!
//! 1. `POST action-items/batch` (50 items) with no subscription: the baseline.
//! 2. The same with one subscription to every event, delivery workers off: what recording the
//!    outbox in each write's transaction costs.
//! 3. The same with delivery workers on, sending to a receiver on loopback while the load runs.
//! 4. Delivery rate: a server starts over the queue left by (2) and sends it all to the
//!    receiver; deliveries per second from start to the last one received.
//!
//! `cargo run --release --example webhook_bench [-- seconds]` (default 5 s per phase).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use omi_server::config::Settings;
use omi_server::domain::credentials::Secret;
use omi_server::outbound::Outbound;
use omi_server::state;
use serde_json::{Value, json};

const CONNECTIONS: usize = 16;
const BATCH: usize = 50;

struct Running {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(settings: Settings) -> Running {
    let state = state::build_state(settings).await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(omi_server::app::serve_with_metrics(
        state,
        listener,
        None,
        async {
            let _ = stopped.await;
        },
    ));
    Running { base, stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// A receiver that answers 200 at once and counts.
async fn receiver(count: Arc<AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::Relaxed);
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Batches per second over `seconds` with `CONNECTIONS` clients.
async fn batches_per_second(client: &reqwest::Client, base: &str, key: &str, seconds: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let body: Value = json!({"action_items": (0..BATCH)
        .map(|n| json!({"description": format!("Benchmark task number {n}")}))
        .collect::<Vec<_>>()});
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (client, url, key, body, done, stop) = (
                client.clone(),
                format!("{base}/v1/dev/user/action-items/batch"),
                key.to_string(),
                body.clone(),
                done.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let response = client.post(&url).bearer_auth(&key).json(&body).send().await;
                    if response.is_ok_and(|r| r.status().is_success()) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.database_url = Secret::new(format!("sqlite://{}/bench.db", dir.path().display()));
    settings.rate_limit_per_minute = 0;
    settings.rate_limit_per_day = 0;
    settings.failed_auth_per_minute = 0;
    settings.daily_summaries = false;
    settings.webhook_allow_private = true;
    let client = Outbound::system().http_client().build()?;

    // Users and keys through the store, before any server runs.
    let setup = omi_server::store::open(&settings).await?;
    let mut keys = Vec::new();
    for name in ["plain", "subscribed"] {
        let (user, _) = omi_server::cli::create_user(&*setup, name, None).await?;
        let scopes: Vec<String> = ["action_items:write", "webhooks:write"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let key = omi_server::service::keys::create_key(&*setup, &user.id, "bench", Some(&scopes))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        keys.push(key.raw_key.expose().to_string());
    }
    setup.close().await?;
    drop(setup);
    let (plain, subscribed) = (keys[0].clone(), keys[1].clone());
    let received = Arc::new(AtomicU64::new(0));
    let hook_url = receiver(received.clone()).await;

    // 1 and 2: workers off.
    let mut quiet = settings.clone();
    quiet.webhooks = false;
    let server = start(quiet).await;
    let events: Vec<&str> = vec![
        "conversation.created",
        "conversation.updated",
        "conversation.deleted",
        "memory.created",
        "memory.updated",
        "memory.deleted",
        "action_item.created",
        "action_item.updated",
        "action_item.deleted",
        "goal.updated",
        "day_summary",
    ];
    let created = client
        .post(format!("{}/v1/dev/user/webhooks", server.base))
        .bearer_auth(&subscribed)
        .json(&json!({"url": hook_url, "events": events}))
        .send()
        .await?;
    anyhow::ensure!(created.status().is_success(), "subscribing failed");
    // Warm-up, then interleaved runs so both see the same machine.
    batches_per_second(&client, &server.base, &plain, 1).await;
    let baseline = batches_per_second(&client, &server.base, &plain, seconds).await;
    let recording = batches_per_second(&client, &server.base, &subscribed, seconds).await;
    let baseline_again = batches_per_second(&client, &server.base, &plain, seconds).await;
    server.stop().await;
    let baseline = (baseline + baseline_again) / 2.0;

    // 4: the queue left by (2), sent by a fresh server.
    let queued = (recording * seconds as f64) as u64 * BATCH as u64;
    let before = received.load(Ordering::Relaxed);
    let started = Instant::now();
    let server = start(settings.clone()).await;
    let mut last_change = Instant::now();
    let mut last = before;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = received.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let delivered = last - before;
    let delivery_rate = delivered as f64 / (last_change - started).as_secs_f64();

    // 3: workers on while the load runs (the receiver keeps up as deliveries come).
    let sending = batches_per_second(&client, &server.base, &subscribed, seconds).await;
    let plain_with_workers = batches_per_second(&client, &server.base, &plain, seconds).await;
    server.stop().await;

    println!("webhook benchmark, SQLite, {CONNECTIONS} connections, {seconds} s per phase");
    println!("| run | batches/s | vs baseline |");
    println!("|---|---|---|");
    println!("| batch (50), no subscription (baseline) | {baseline:.0} | 1.00 |");
    println!(
        "| batch (50), one subscription to every event, workers off | {recording:.0} | {:.2} |",
        recording / baseline
    );
    println!(
        "| batch (50), one subscription, workers delivering meanwhile | {sending:.0} | {:.2} |",
        sending / baseline
    );
    println!(
        "| batch (50), no subscription, workers on (other user's deliveries running) | {plain_with_workers:.0} | {:.2} |",
        plain_with_workers / baseline
    );
    println!(
        "deliveries to a loopback receiver: {delivered} of ~{queued} queued in {:.2} s = {delivery_rate:.0}/s",
        (last_change - started).as_secs_f64()
    );
    Ok(())
}
