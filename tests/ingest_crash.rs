//! Crash durability of the webhook inbox: the real binary is killed with SIGKILL while 200
//! `memory_created` deliveries are posted concurrently. After a restart, every delivery that
//! got a 200 is stored, each exactly once (one conversation with its own two action items), and
//! nothing stays unprocessed.

#[path = "support/server_process.rs"]
mod server_process;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};

use server_process::{ServerProcess, create_user, database_in, omi_json, sqlite_url};

const DELIVERIES: usize = 200;
/// Deliveries acknowledged before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 60;
const SERVER_ENV: [(&str, &str); 3] = [
    ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
    ("OMI_RATE_LIMIT_PER_DAY", "0"),
    ("OMI_FAILED_AUTH_PER_MINUTE", "0"),
];

fn delivery(n: usize) -> Value {
    let id = format!("crash-{n:04}");
    json!({
        "id": id,
        "created_at": "2026-12-07T14:02:10+00:00",
        "started_at": "2026-12-07T14:02:10+00:00",
        "finished_at": "2026-12-07T14:07:55+00:00",
        "source": "omi",
        "language": "en",
        "structured": {"title": format!("Recording {n}"), "overview": "o", "emoji": "🦷",
            "category": "health", "events": [],
            "action_items": [{"description": format!("First task of {n}"), "completed": false},
                             {"description": format!("Second task of {n}"), "completed": false}]},
        "transcript_segments": [{"id": format!("{id}-s"), "text": format!("Recording number {n}."),
            "speaker": "SPEAKER_00", "speaker_id": 0, "is_user": true, "person_id": null,
            "start": 0.0, "end": 2.0}],
        "discarded": false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_deliveries_survive_sigkill_and_are_processed_once() {
    let binary = Path::new(env!("CARGO_BIN_EXE_omi-server"));
    let folder = tempfile::tempdir().unwrap();
    let url = sqlite_url(&database_in(folder.path()));
    let user = create_user(binary, &url, "crash").unwrap();
    let ingest_key = omi_json(
        binary,
        &url,
        &[
            "keys",
            "create",
            "--user",
            "crash",
            "--name",
            "omi-app",
            "--scopes",
            "ingest:write",
        ],
    )
    .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut server = ServerProcess::start(binary, &url, &SERVER_ENV).unwrap();
    let client = omi_server::outbound::Outbound::system()
        .http_client()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let base = server.base_url();
    let senders: Vec<_> = (0..DELIVERIES)
        .map(|n| {
            let (client, acknowledged, key, base) = (
                client.clone(),
                acknowledged.clone(),
                ingest_key.clone(),
                base.clone(),
            );
            tokio::spawn(async move {
                let sent = client
                    .post(format!(
                        "{base}/v1/ingest/omi/conversations?key={key}&uid=u"
                    ))
                    .header("Idempotency-Key", format!("delivery-{n}"))
                    .json(&delivery(n))
                    .send()
                    .await;
                if let Ok(reply) = sent
                    && reply.status() == 200
                {
                    acknowledged.lock().push(n);
                }
            })
        })
        .collect();
    for _ in 0..600 {
        if acknowledged.lock().len() >= ACKNOWLEDGED_BEFORE_KILL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().clone();
    assert!(
        acknowledged.len() >= ACKNOWLEDGED_BEFORE_KILL,
        "{} acknowledged before the kill",
        acknowledged.len()
    );

    let server = ServerProcess::start(binary, &url, &SERVER_ENV).unwrap();
    // The restarted worker drains the inbox (bounded wait).
    let mut status = Value::Null;
    for _ in 0..600 {
        status = omi_json(binary, &url, &["ingest", "status"]).unwrap();
        if status["pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["pending"], 0, "{status}");
    assert_eq!(status["failed"], 0, "{status}");

    let base = server.base_url();
    let get = |path: String| {
        let (client, key) = (client.clone(), user.key.clone());
        async move {
            let reply = client.get(path).bearer_auth(key).send().await.unwrap();
            (
                reply.status().as_u16(),
                reply.json::<Value>().await.unwrap(),
            )
        }
    };
    let (_, items) = get(format!("{base}/v1/dev/user/action-items?limit=500")).await;
    let items = items.as_array().unwrap().clone();
    for n in &acknowledged {
        let id = format!("crash-{n:04}");
        let (status, conversation) = get(format!("{base}/v1/dev/user/conversations/{id}")).await;
        assert_eq!(
            status, 200,
            "acknowledged delivery {n} is stored: {conversation}"
        );
        assert_eq!(
            conversation["structured"]["title"],
            format!("Recording {n}")
        );
        let own = items.iter().filter(|i| i["conversation_id"] == id).count();
        assert_eq!(own, 2, "delivery {n} processed exactly once");
    }
    // Nothing was stored twice, acknowledged or not.
    let mut stored = Vec::new();
    for offset in (0..DELIVERIES).step_by(100) {
        let (_, page) = get(format!(
            "{base}/v1/dev/user/conversations?limit=100&offset={offset}"
        ))
        .await;
        stored.extend(page.as_array().unwrap().iter().map(|c| c["id"].clone()));
    }
    let distinct: std::collections::HashSet<String> =
        stored.iter().map(|id| id.to_string()).collect();
    assert_eq!(distinct.len(), stored.len(), "no conversation stored twice");
    assert_eq!(items.len(), 2 * stored.len(), "no action item stored twice");
    eprintln!(
        "{} of {DELIVERIES} deliveries acknowledged before the kill; {} stored after the restart",
        acknowledged.len(),
        stored.len()
    );
}
