//! `--ingest`: the Omi app's `memory_created` webhook received by the release server on SQLite,
//! as the webhook issue's benchmark asks. First the acknowledgement: deliveries posted over
//! keep-alive connections with the key in the URL while the server's worker is off, so only the
//! durable inbox write is measured (requests/s, p50/p99), beside the static `/healthz` ceiling
//! measured in the same run. Then the backlog: the server restarts with its worker on and the
//! time until the inbox is empty is taken, beside the processor's own speed in the same run
//! (the same conversations created one after another through `from-segments`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::Method;
use serde_json::json;

use crate::load::{self, Budget, Target};
use crate::seed::conversation_text;
use crate::server_process::{ServerProcess, create_user, database_in, omi_json, sqlite_url};

const CONNECTIONS: usize = 32;
const TARGET_PER_SECOND: f64 = 1000.0;
const TARGET_P99_MS: f64 = 100.0;
/// Words of each delivered conversation's transcript.
const WORDS: usize = 150;

fn env(worker: bool) -> [(&'static str, &'static str); 3] {
    [
        ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
        ("OMI_RATE_LIMIT_PER_DAY", "0"),
        ("OMI_INGEST_WORKER", if worker { "true" } else { "false" }),
    ]
}

/// The `n`th conversation as the Omi app delivers it (API.md §13.G.2, trimmed to what matters).
fn delivery(n: u64) -> serde_json::Value {
    let id = format!("bench-{n:08}");
    json!({
        "id": id, "created_at": "2026-12-07T14:02:10+00:00",
        "started_at": "2026-12-07T14:02:10+00:00", "finished_at": "2026-12-07T14:07:55+00:00",
        "source": "omi", "language": "en",
        "structured": {"title": format!("Meeting {n}"), "overview": "Notes.", "emoji": "🗓",
            "category": "work", "events": [],
            "action_items": [{"description": format!("Send the notes of meeting {n}"), "completed": false}]},
        "transcript_segments": [{"id": format!("{id}-0"), "text": conversation_text(WORDS, &id),
            "speaker": "SPEAKER_00", "speaker_id": 0, "is_user": true, "person_id": null,
            "start": 0.0, "end": 60.0}],
        "geolocation": null, "photos": [], "apps_results": [], "discarded": false,
        "folder_id": null, "folder_name": null
    })
}

pub async fn run(binary: &Path, quick: bool) -> anyhow::Result<()> {
    let measure = Duration::from_secs(if quick { 5 } else { 15 });
    let folder = tempfile::tempdir()?;
    let url = sqlite_url(&database_in(folder.path()));
    let user = create_user(binary, &url, "bench")?;
    let ingest_key = omi_json(
        binary,
        &url,
        &[
            "keys",
            "create",
            "--user",
            "bench",
            "--name",
            "omi-app",
            "--scopes",
            "ingest:write",
        ],
    )?["key"]
        .as_str()
        .context("no key")?
        .to_string();

    let server = ServerProcess::start(binary, &url, &env(false))?;
    let timed = Budget::Timed {
        warmup: Duration::from_secs(2),
        measure,
    };
    let ceiling = load::run(
        &[server.address],
        &Target {
            method: Method::GET,
            path: "/healthz".into(),
            authorization: None,
            body: None,
            idempotency_keys: false,
        },
        CONNECTIONS,
        timed,
    )
    .await;
    let bodies: load::BodyFn = Arc::new(|n| Bytes::from(delivery(n).to_string()));
    let acks = load::run(
        &[server.address],
        &Target {
            method: Method::POST,
            path: format!("/v1/ingest/omi/conversations?key={ingest_key}&uid=bench"),
            authorization: None,
            body: Some(bodies.clone()),
            idempotency_keys: false,
        },
        CONNECTIONS,
        timed,
    )
    .await;
    if acks.failures() > 0 {
        bail!(
            "{} deliveries failed ({:?}): {:?}",
            acks.failures(),
            acks.failed,
            acks.failure_example
        );
    }
    // The processor's own speed, one conversation after another like the worker.
    let reference = 200;
    let segments: load::BodyFn = Arc::new(|n| {
        let body = delivery(1_000_000_000 + n);
        Bytes::from(
            json!({"transcript_segments": body["transcript_segments"], "source": "omi"})
                .to_string(),
        )
    });
    let processor = load::run(
        &[server.address],
        &Target {
            method: Method::POST,
            path: "/v1/dev/user/conversations/from-segments".into(),
            authorization: Some(format!("Bearer {}", user.key)),
            body: Some(segments),
            idempotency_keys: false,
        },
        1,
        Budget::Count(reference),
    )
    .await;
    drop(server);

    let backlog = omi_json(binary, &url, &["ingest", "status"])?["pending"]
        .as_u64()
        .unwrap_or(0);
    let draining = Instant::now();
    let server = ServerProcess::start(binary, &url, &env(true))?;
    let mut pending = backlog;
    for _ in 0..36_000 {
        pending = omi_json(binary, &url, &["ingest", "status"])?["pending"]
            .as_u64()
            .unwrap_or(0);
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = draining.elapsed();
    drop(server);
    if pending > 0 {
        bail!("{pending} deliveries still pending after the drain window");
    }

    let ack_rate = acks.requests_per_second();
    let drain_rate = backlog as f64 / drained.as_secs_f64();
    let processor_rate = processor.requests_per_second();
    println!("\n{:<58} {:>12} {:>10}", "", "measured", "target");
    println!(
        "{:<58} {:>10.0}/s {:>8.0}/s  {}",
        "memory_created acknowledged (SQLite, 32 connections)",
        ack_rate,
        TARGET_PER_SECOND,
        if ack_rate >= TARGET_PER_SECOND {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "{:<58} {:>9.1} ms {:>7.0} ms  {}",
        "  p99 latency of the acknowledgement",
        acks.latency_ms(0.99),
        TARGET_P99_MS,
        if acks.latency_ms(0.99) < TARGET_P99_MS {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "{:<58} {:>9.1} ms",
        "  p50 latency of the acknowledgement",
        acks.latency_ms(0.5)
    );
    println!(
        "{:<58} {:>10.2}",
        "  ratio to the /healthz ceiling of this run",
        ack_rate / ceiling.requests_per_second()
    );
    println!(
        "{:<58} {:>10.0}/s",
        format!("backlog of {backlog} drained after a restart"),
        drain_rate
    );
    println!(
        "{:<58} {:>10.0}/s",
        "  the processor's own speed (from-segments, one at a time)", processor_rate
    );
    println!(
        "{:<58} {:>10.2}",
        "  ratio of the drain to the processor",
        drain_rate / processor_rate
    );
    Ok(())
}
