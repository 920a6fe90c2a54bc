//! Webhook durability: the real binary is killed with SIGKILL while deliveries are pending and
//! in flight. After a restart every event reaches the receiver (which deduplicates by
//! `webhook-id`), and an event the receiver already acknowledged is sent again only if the
//! kill came between its answer and its record (the at-least-once rule).

#[path = "support/server_process.rs"]
mod server_process;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use server_process::{ServerProcess, create_user, database_in, sqlite_url};
use webhook_receiver::{Answer, Receiver};

const ITEMS: usize = 40;
const ENDPOINT_CONCURRENCY: usize = 4;

fn server_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("OMI_WEBHOOK_ALLOW_PRIVATE", "true"),
        (
            "OMI_WEBHOOK_RETRY_DELAYS",
            "0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1",
        ),
        ("OMI_WEBHOOK_POLL_MS", "20"),
        ("OMI_WEBHOOK_TIMEOUT_MS", "2000"),
        ("OMI_WEBHOOK_ENDPOINT_CONCURRENCY", "4"),
        ("OMI_DAILY_SUMMARIES", "false"),
        ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
        ("OMI_RATE_LIMIT_PER_DAY", "0"),
    ]
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> Value {
    let mut request = client.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    assert!(response.status().is_success(), "{response:?}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn pending_deliveries_survive_sigkill_and_are_sent_once_more_at_most_when_in_flight() {
    let binary = Path::new(env!("CARGO_BIN_EXE_omi-server"));
    let folder = tempfile::tempdir().unwrap();
    let url = sqlite_url(&database_in(folder.path()));
    let user = create_user(binary, &url, "hooks").unwrap();
    let client = omi_server::outbound::Outbound::system()
        .http_client()
        .build()
        .unwrap();

    // Accepts a few, then fails everything until the test says it has recovered.
    let recovered = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start({
        let recovered = recovered.clone();
        move |n, _| {
            if n < 8 || recovered.load(Ordering::Relaxed) {
                Answer::Status(200)
            } else {
                Answer::Status(503)
            }
        }
    })
    .await;

    let env = server_env();
    let mut server = ServerProcess::start(binary, &url, &env).unwrap();
    let base = server.base_url();
    let hook = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/v1/dev/user/webhooks"),
        &user.key,
        Some(json!({"url": receiver.url, "events": ["action_item.created"]})),
    )
    .await;
    let items: Vec<Value> = (0..ITEMS)
        .map(|n| json!({"description": format!("durable {n}")}))
        .collect();
    call(
        &client,
        reqwest::Method::POST,
        format!("{base}/v1/dev/user/action-items/batch"),
        &user.key,
        Some(json!({"action_items": items})),
    )
    .await;
    // Some delivered, the rest failing and being retried: kill mid-flight.
    receiver
        .wait_for("failures after the first deliveries", |hits| {
            hits.len() >= 20
        })
        .await;
    server.kill();
    // The killed process's connections were all accepted before this point: what arrives on
    // them, however late it is read, is the killed process's.
    receiver.next_generation();
    let server = ServerProcess::start(binary, &url, &env).unwrap();
    recovered.store(true, Ordering::Relaxed);
    let base = server.base_url();
    receiver
        .wait_for("every event after the restart", |hits| {
            hits.iter()
                .filter(|h| h.answered == 200)
                .map(|h| h.id())
                .collect::<HashSet<_>>()
                .len()
                >= ITEMS
        })
        .await;

    // Every event arrived (by description), each under one id.
    let accepted = receiver.accepted();
    let descriptions: HashSet<String> = accepted
        .iter()
        .map(|h| h.json()["description"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(descriptions.len(), ITEMS);
    let mut times: HashMap<&str, usize> = HashMap::new();
    for hit in &accepted {
        *times.entry(hit.id()).or_default() += 1;
    }
    assert_eq!(times.len(), ITEMS);
    // Sent again only when acknowledged by the receiver but not yet recorded at the kill: at
    // most the deliveries that were in flight. A request the killed process wrote before it died
    // may be read after the restart (and then accepted); it is still one of the killed
    // process's, so it is told apart by its connection, not by when it was read.
    let accepted_before: HashSet<String> = accepted
        .iter()
        .filter(|h| h.generation == 0)
        .map(|h| h.id().to_string())
        .collect();
    assert!(!accepted_before.is_empty());
    let twice: Vec<&&str> = times.keys().filter(|id| times[**id] > 1).collect();
    assert!(
        twice.len() <= ENDPOINT_CONCURRENCY,
        "{} acknowledged deliveries were sent again: {twice:?}",
        twice.len()
    );
    assert!(twice.iter().all(|id| accepted_before.contains(**id)));

    // And the log says every one was delivered.
    let hook_id = hook["id"].as_str().unwrap();
    for _ in 0..200 {
        let log = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/v1/dev/user/webhooks/{hook_id}/deliveries?limit=200"),
            &user.key,
            None,
        )
        .await;
        let log = log.as_array().unwrap();
        if log.len() == ITEMS && log.iter().all(|d| d["status"] == "delivered") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery log did not record every delivery");
}
