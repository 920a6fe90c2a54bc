//! Outbound webhook delivery rules, each proven on its own: `Retry-After` honoured and 4xx other
//! than 408/429 final, one object's events in order through failures, the per-endpoint
//! concurrency limit, response bodies read only up to 64 KB, bodies kept 7 days, an endpoint
//! switched off after failing for the whole window (a short configured window, and the 72 h
//! default on a test clock), `day_summary` announced when a summary is made or received, and
//! writes through MCP and the importer announced like API writes.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use omi_server::config::Settings;
use omi_server::domain::time::{self, parse_datetime};
use omi_server::domain::webhooks::DISABLE_AFTER;
use omi_server::processing::OfflineProcessor;
use omi_server::service::daily_summaries;
use omi_server::service::webhooks::purge_old_bodies;
use omi_server::store::webhooks::{AttemptRecord, NextStep};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::{Backend, TestServer, TestUser};
use crate::webhook_receiver::{Answer, Receiver, assert_signed};
use crate::webhooks::{HOOKS, deliveries, fast, settled, subscribe};

async fn ping(server: &TestServer, user: &TestUser, hook_id: &str) -> String {
    let reply = server
        .post(&format!("{HOOKS}/{hook_id}/test"), &user.key, json!({}))
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap().to_string()
}

/// A 429 asking for a 1 s pause gets it although the schedule says 50 ms; a 408 is retried;
/// a 404 ends the delivery with no further attempt.
async fn retry_after_is_honoured_and_other_4xx_are_final(backend: Backend) {
    let server = TestServer::start_on_with(backend, fast).await;
    let alice = server.user("alice").await;
    let receiver = Receiver::start(|n, _| match n {
        0 => Answer::RetryAfter(429, 1),
        1 => Answer::Status(408),
        2 => Answer::Status(404),
        _ => Answer::Status(200),
    })
    .await;
    let hook = subscribe(&server, &alice, &receiver.url, &["memory.created"]).await;
    let hook_id = id_of(&hook);
    ping(&server, &alice, &hook_id).await;
    let log = settled(&server, &alice, &hook_id, 1).await;
    assert_eq!(log[0]["status"], "failed", "{log:#?}");
    assert_eq!(log[0]["response_status"], 404);
    assert_eq!(log[0]["attempts"], 3, "{log:#?}");
    // Nothing more arrives after the 404.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits = receiver.hits();
    assert_eq!(
        hits.iter().map(|h| h.answered).collect::<Vec<_>>(),
        [429, 408, 404]
    );
    assert!(hits.iter().all(|h| h.id() == hits[0].id()), "one delivery");
    let waited = hits[1].at - hits[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured: the retry came after {waited:?}"
    );
}

/// All events are recorded while no worker runs, so the worker finds them due together; every
/// delivery's first attempt fails, so retries interleave: still, each conversation's events
/// reach the endpoint exactly in the order they were recorded.
async fn one_conversations_events_arrive_in_order_through_failures(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        fast(s);
        s.webhooks = false;
    })
    .await;
    let alice = server.user("alice").await;
    let tried: Arc<Mutex<HashSet<String>>> = Arc::default();
    let receiver = {
        let tried = tried.clone();
        Receiver::start(move |_, hit| {
            if tried.lock().insert(hit.id().to_string()) {
                Answer::Status(503)
            } else {
                Answer::Status(200)
            }
        })
        .await
    };
    let hook = subscribe(
        &server,
        &alice,
        &receiver.url,
        &["conversation.created", "conversation.updated"],
    )
    .await;
    let mut ids = Vec::new();
    for text in [
        "We planned the garden: tomatoes along the fence and herbs by the door.",
        "The plumber comes on Monday to fix the kitchen sink and the shower.",
    ] {
        let reply = server
            .post(
                "/v1/dev/user/conversations",
                &alice.key,
                json!({"text": text}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        ids.push(id_of(&reply.body));
    }
    for n in 1..=5 {
        for (id, prefix) in ids.iter().zip(["A", "B"]) {
            let reply = server
                .patch(
                    &format!("/v1/dev/user/conversations/{id}"),
                    &alice.key,
                    json!({"title": format!("{prefix}{n}")}),
                )
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
        }
    }
    // Delivery starts with all twelve pending.
    let database = server.database.clone();
    let mut settings = server.settings();
    let dir = server.stop().await;
    settings.webhooks = true;
    let mut server = TestServer::start_in(dir, settings).await;
    server.database = database;
    let log = settled(&server, &alice, &id_of(&hook), 12).await;
    assert_eq!(log.len(), 12, "{log:#?}");
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:#?}");
    assert!(
        log.iter().all(|d| d["attempts"] == 2),
        "every first try failed"
    );
    let accepted = receiver.accepted();
    for (id, prefix) in ids.iter().zip(["A", "B"]) {
        let seen: Vec<String> = accepted
            .iter()
            .filter(|h| h.json()["id"] == id.as_str())
            .map(|h| match h.event() {
                "conversation.created" => "created".to_string(),
                _ => h.json()["structured"]["title"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            })
            .collect();
        let expected: Vec<String> = std::iter::once("created".to_string())
            .chain((1..=5).map(|n| format!("{prefix}{n}")))
            .collect();
        assert_eq!(seen, expected, "conversation {id}");
    }
}

/// With `OMI_WEBHOOK_ENDPOINT_CONCURRENCY=3`, a slow receiver never has more than three
/// deliveries of one subscription in flight, and has exactly three at its busiest; a second
/// subscription has its own three.
async fn the_concurrency_limit_holds_per_endpoint(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        fast(s);
        s.webhook_endpoint_concurrency = 3;
        s.webhook_concurrency = 64;
        s.webhook_timeout_ms = 5_000;
    })
    .await;
    let alice = server.user("alice").await;
    let receiver = Receiver::start(|_, _| Answer::Slow(200, Duration::from_millis(150))).await;
    let mut hooks = Vec::new();
    for path in ["/a", "/b"] {
        let hook = subscribe(
            &server,
            &alice,
            &format!("{}{path}", receiver.url),
            &["action_item.created"],
        )
        .await;
        hooks.push(id_of(&hook));
    }
    let items: Vec<Value> = (0..24)
        .map(|n| json!({"description": format!("item {n}")}))
        .collect();
    let reply = server
        .post(
            "/v1/dev/user/action-items/batch",
            &alice.key,
            json!({"action_items": items}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    for hook in &hooks {
        let log = settled(&server, &alice, hook, 24).await;
        assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:#?}");
    }
    assert_eq!(receiver.hits().len(), 48);
    assert_eq!(receiver.max_in_flight("/a"), 3);
    assert_eq!(receiver.max_in_flight("/b"), 3);
}

/// A receiver that answers 200 with an endless body: the worker reads at most 64 KB of it and
/// records the delivery at once, instead of reading until the total timeout.
async fn response_bodies_are_read_only_up_to_64_kb(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        fast(s);
        s.webhook_timeout_ms = 6_000;
    })
    .await;
    let alice = server.user("alice").await;
    let receiver = Receiver::start(|_, _| Answer::Endless).await;
    let hook = subscribe(&server, &alice, &receiver.url, &["memory.created"]).await;
    let hook_id = id_of(&hook);
    ping(&server, &alice, &hook_id).await;
    let log = settled(&server, &alice, &hook_id, 1).await;
    assert_eq!(log[0]["status"], "delivered", "{log:#?}");
    assert_eq!(log[0]["attempts"], 1);
    let latency = log[0]["latency_ms"].as_u64().unwrap();
    assert!(
        latency < 3_000,
        "the body was read far beyond 64 KB: the attempt took {latency} ms"
    );
}

/// Bodies stay in the log (and can be sent again) for 7 days after their event; then a
/// finished delivery keeps its log row without the body, while a pending one keeps its body.
async fn bodies_are_kept_seven_days_then_dropped(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        fast(s);
        // After one failure the next attempt is an hour away: the delivery stays pending.
        s.webhook_retry_delays = "3600".into();
    })
    .await;
    let alice = server.user("alice").await;
    let ok = Receiver::ok().await;
    let failing = Receiver::start(|_, _| Answer::Status(503)).await;
    let done_hook = id_of(&subscribe(&server, &alice, &ok.url, &["memory.created"]).await);
    let pending_hook = id_of(&subscribe(&server, &alice, &failing.url, &["memory.created"]).await);
    let done = ping(&server, &alice, &done_hook).await;
    ping(&server, &alice, &pending_hook).await;
    settled(&server, &alice, &done_hook, 1).await;
    failing
        .wait_for("the first attempt", |hits| !hits.is_empty())
        .await;
    let store = &*server.state.store;

    let six_days = time::now() + TimeDelta::days(6);
    assert_eq!(purge_old_bodies(store, six_days).await.unwrap(), 0);
    let log = deliveries(&server, &alice, &done_hook).await;
    assert_eq!(log[0]["payload"]["type"], "ping", "{log:#?}");

    let eight_days = time::now() + TimeDelta::days(7) + TimeDelta::minutes(1);
    assert_eq!(purge_old_bodies(store, eight_days).await.unwrap(), 1);
    let log = deliveries(&server, &alice, &done_hook).await;
    assert_eq!(log.len(), 1, "the log row stays");
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["payload"], Value::Null, "{log:#?}");
    server
        .post(
            &format!("{HOOKS}/{done_hook}/deliveries/{done}/redeliver"),
            &alice.key,
            json!({}),
        )
        .await
        .assert_error(404, "Delivery not found");
    let log = deliveries(&server, &alice, &pending_hook).await;
    assert_eq!(log[0]["status"], "pending", "{log:#?}");
    assert_eq!(log[0]["payload"]["type"], "ping", "a pending body is kept");
}

/// With a one-second window, a subscription whose deliveries keep failing is switched off with
/// the reason; its pending delivery waits (nothing is sent, no new event is queued for it) and
/// goes out once the user switches it on again, which clears the reason.
async fn an_endpoint_failing_for_the_window_is_switched_off(backend: Backend) {
    assert_eq!(
        Settings::defaults().webhook_disable_after_seconds,
        72 * 3600,
        "the default window is 72 hours"
    );
    let server = TestServer::start_on_with(backend, |s| {
        fast(s);
        s.webhook_retry_delays = vec!["0.2"; 40].join(",");
        s.webhook_disable_after_seconds = 1;
    })
    .await;
    let alice = server.user("alice").await;
    let healthy = Arc::new(AtomicBool::new(false));
    let receiver = {
        let healthy = healthy.clone();
        Receiver::start(move |_, _| {
            if healthy.load(Ordering::SeqCst) {
                Answer::Status(200)
            } else {
                Answer::Status(500)
            }
        })
        .await
    };
    let hook_id = id_of(&subscribe(&server, &alice, &receiver.url, &["memory.created"]).await);
    let path = format!("{HOOKS}/{hook_id}");
    let memory = server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Sam plays the cello on Sundays"}),
        )
        .await;
    assert_eq!(memory.status, 200, "{memory:?}");

    let mut subscription = Value::Null;
    for _ in 0..200 {
        subscription = server.get(&path, &alice.key).await.body;
        if subscription["active"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(subscription["active"], false, "{subscription:#}");
    assert_eq!(
        subscription["disabled_reason"],
        "deliveries failed for 1 seconds; last error: HTTP 500"
    );
    let attempts = receiver.hits().len();
    assert!(attempts >= 2, "{attempts}");

    // Switched off: the pending delivery waits and new changes queue nothing for it.
    let later = server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Sam's cello teacher is called Ines"}),
        )
        .await;
    assert_eq!(later.status, 200, "{later:?}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.hits().len(), attempts, "nothing sent while off");
    let log = deliveries(&server, &alice, &hook_id).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["status"], "pending");

    healthy.store(true, Ordering::SeqCst);
    let on = server
        .patch(&path, &alice.key, json!({"active": true}))
        .await;
    assert_eq!(on.status, 200, "{on:?}");
    assert_eq!(on.body["active"], true);
    assert_eq!(on.body["disabled_reason"], Value::Null);
    let log = settled(&server, &alice, &hook_id, 1).await;
    assert_eq!(log[0]["status"], "delivered", "{log:#?}");
}

/// The default 72-hour window on a test clock: attempts recorded at chosen times. Failures for
/// 71 h 59 min leave the subscription on; the failure at 72 h switches it off.
async fn the_72_hour_window_counts_from_the_first_failure(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        fast(s);
        s.webhooks = false;
    })
    .await;
    let alice = server.user("alice").await;
    let hook_id = id_of(
        &subscribe(
            &server,
            &alice,
            "https://hooks.example.net/x",
            &["memory.created"],
        )
        .await,
    );
    ping(&server, &alice, &hook_id).await;
    let store = &*server.state.store;
    let start = time::now();
    let fail_at = |offset: TimeDelta| async move {
        let at = start + offset;
        let claimed = store
            .claim_webhook_deliveries(at, Duration::from_secs(60), 10, "clock")
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "at {offset}");
        store
            .record_attempt(
                &claimed[0],
                AttemptRecord {
                    response_status: Some(500),
                    latency_ms: 3,
                    error: Some("HTTP 500".into()),
                    next: NextStep::RetryAt(at + TimeDelta::seconds(1)),
                    at,
                    disable_after: DISABLE_AFTER,
                },
            )
            .await
            .unwrap();
    };
    let path = format!("{HOOKS}/{hook_id}");
    fail_at(TimeDelta::zero()).await;
    fail_at(TimeDelta::hours(30)).await;
    fail_at(TimeDelta::hours(72) - TimeDelta::minutes(1)).await;
    let on = server.get(&path, &alice.key).await.body;
    assert_eq!(on["active"], true, "{on:#}");
    assert_eq!(on["disabled_reason"], Value::Null);
    fail_at(TimeDelta::hours(72)).await;
    let off = server.get(&path, &alice.key).await.body;
    assert_eq!(off["active"], false, "{off:#}");
    assert_eq!(
        off["disabled_reason"],
        "deliveries failed for 72 hours; last error: HTTP 500"
    );
}

/// `day_summary` goes out with upstream's body when the scheduler makes a summary and when the
/// Omi app's summary is received through the ingest route; the same summary received again
/// announces nothing.
async fn a_day_summary_is_announced_when_made_or_received(backend: Backend) {
    let server = TestServer::start_on_with(backend, fast).await;
    let alice = server.user("alice").await;
    let receiver = Receiver::ok().await;
    let hook = subscribe(&server, &alice, &receiver.url, &["day_summary"]).await;
    let (hook_id, secret) = (id_of(&hook), hook["secret"].as_str().unwrap().to_string());

    let reply = server
        .post(
            "/v1/dev/user/conversations",
            &alice.key,
            json!({"text": "We reviewed the quarterly budget and agreed to cut the events line.",
                   "started_at": "2026-07-01T12:00:00Z", "finished_at": "2026-07-01T12:20:00Z"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let report = daily_summaries::run_due(
        &*server.state.store,
        &OfflineProcessor,
        "scheduler",
        parse_datetime("2026-07-02T00:20:00Z").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(report.created, 1);
    receiver
        .wait_for("the generated summary", |hits| hits.len() == 1)
        .await;
    let made = receiver.hits()[0].json();
    assert_eq!(receiver.hits()[0].event(), "day_summary");
    assert_eq!(made["uid"], alice.id.as_str());
    assert_eq!(made["summary_json"]["date"], "2026-07-01");
    // Upstream's legacy field: the summary as Python prints the dict.
    let legacy = made["summary"].as_str().unwrap();
    assert!(
        legacy.starts_with("{'") && legacy.contains("'date': '2026-07-01'"),
        "{made:#}"
    );
    assert!(made["created_at"].as_str().unwrap().ends_with("+00:00"));

    let key = server.key_with(&alice, &["ingest:write"]).await;
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/data/ingest/day_summary.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    for delivery in ["first", "again"] {
        let reply = server
            .client
            .post(server.url(&format!("/v1/ingest/omi/day-summary?key={key}")))
            .header("Idempotency-Key", delivery)
            .json(&fixture)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    for _ in 0..200 {
        let inbox = server.state.store.inbox_summary(10).await.unwrap();
        if inbox.done == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.state.store.inbox_summary(10).await.unwrap().done, 2);
    let log = settled(&server, &alice, &hook_id, 2).await;
    assert_eq!(log.len(), 2, "the same summary again is not news: {log:#?}");
    receiver
        .wait_for("the received summary", |hits| hits.len() == 2)
        .await;
    let received = receiver.hits()[1].json();
    assert_eq!(received["uid"], alice.id.as_str());
    assert_eq!(received["summary_json"]["date"], "2026-12-06");
    assert_eq!(
        received["summary_json"]["headline"],
        "Dentist moved, Q1 plan locked"
    );
    assert_signed(&receiver.hits(), &secret);
}

/// A JSON-RPC message to the MCP endpoint in a session; the answer carrying an id, if any.
async fn mcp(
    server: &TestServer,
    key: &str,
    session: Option<&str>,
    body: Value,
) -> (Option<String>, Option<Value>) {
    let mut request = server
        .client
        .post(server.url("/v1/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(key)
        .body(body.to_string());
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    let reply = request.send().await.unwrap();
    assert!(reply.status().is_success(), "{}", reply.status());
    let session = reply
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = reply.text().await.unwrap();
    let answer = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some());
    (session, answer)
}

/// A memory saved through an MCP tool and one imported from Omi's cloud (the importer's store
/// path) reach subscribers like any API write.
async fn mcp_and_import_writes_reach_subscribers(backend: Backend) {
    let server = TestServer::start_on_with(backend, fast).await;
    let alice = server.user("alice").await;
    let receiver = Receiver::ok().await;
    let hook_id = id_of(&subscribe(&server, &alice, &receiver.url, &["memory.created"]).await);

    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}}});
    let (session, _) = mcp(&server, &alice.key, None, initialize).await;
    let session = session.expect("an MCP session");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    mcp(&server, &alice.key, Some(&session), initialized).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "create_memory",
                   "arguments": {"content": "Ines teaches the cello on Sundays"}}});
    let (_, answer) = mcp(&server, &alice.key, Some(&session), call).await;
    let answer = answer.expect("a tools/call answer");
    assert_ne!(answer["result"]["isError"], true, "{answer}");

    let record = omi_server::service::import::upstream::memory(&json!({
        "id": "upstream-memory-1",
        "content": "Leo runs along the river on Tuesdays",
        "created_at": "2026-01-02T03:04:05+00:00",
    }))
    .unwrap();
    let key = omi_server::store::import::ImportKey {
        source: "https://api.omi.me".into(),
        source_id: "upstream-memory-1".into(),
        fingerprint: "v1".into(),
    };
    let written = server
        .state
        .store
        .import_page(&alice.id, vec![(key, record)], None, time::now())
        .await
        .unwrap();
    assert!(written[0].is_ok(), "{written:?}");

    let log = settled(&server, &alice, &hook_id, 2).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    receiver
        .wait_for("both memories", |hits| hits.len() == 2)
        .await;
    let mut contents: Vec<String> = receiver
        .hits()
        .iter()
        .map(|h| h.json()["content"].as_str().unwrap().to_string())
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        [
            "Ines teaches the cello on Sundays",
            "Leo runs along the river on Tuesdays"
        ]
    );
}

/// The value of the sample `series` (name and labels exactly) in a scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `/metrics` counts attempts by outcome and shows the queue: a delivery retried then
/// delivered, one refused for good, and one waiting an hour for its next attempt.
async fn delivery_outcomes_and_the_queue_show_in_metrics(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        fast(s);
        s.webhook_retry_delays = "0.05,3600".into();
        s.metrics_listen = omi_server::config::MetricsListen::At("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let alice = server.user("alice").await;
    // `/flaky` fails once then succeeds, `/gone` is final, `/down` keeps failing.
    let flaky_seen = Arc::new(AtomicBool::new(false));
    let receiver = {
        let flaky_seen = flaky_seen.clone();
        Receiver::start(move |_, hit| match hit.uri.split('?').next().unwrap() {
            "/flaky" if flaky_seen.swap(true, Ordering::SeqCst) => Answer::Status(200),
            "/gone" => Answer::Status(410),
            _ => Answer::Status(503),
        })
        .await
    };
    let mut hooks = Vec::new();
    for path in ["/flaky", "/gone", "/down"] {
        let url = format!("{}{path}", receiver.url);
        let hook = id_of(&subscribe(&server, &alice, &url, &["memory.created"]).await);
        ping(&server, &alice, &hook).await;
        hooks.push(hook);
    }
    settled(&server, &alice, &hooks[0], 1).await;
    settled(&server, &alice, &hooks[1], 1).await;
    // `/down`: the first attempt, the retry 50 ms later, then an hour to wait.
    receiver
        .wait_for("two attempts to /down", |hits| {
            hits.iter().filter(|h| h.uri.starts_with("/down")).count() == 2
        })
        .await;
    let url = format!("{}/metrics", server.metrics_url.as_ref().unwrap());
    let mut text = String::new();
    // The queue gauges are read every 5 s.
    for _ in 0..160 {
        text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if sample(&text, "omi_webhook_queue_depth") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let count = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}: {text}"));
    assert_eq!(
        count("omi_webhook_deliveries_total{outcome=\"delivered\"}"),
        1.0
    );
    assert_eq!(
        count("omi_webhook_deliveries_total{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(
        count("omi_webhook_deliveries_total{outcome=\"retried\"}"),
        3.0
    );
    assert_eq!(count("omi_webhook_queue_depth"), 1.0, "{text}");
    assert!(count("omi_webhook_oldest_pending_seconds") > 0.0, "{text}");
}

backend_tests!(
    mcp_and_import_writes_reach_subscribers,
    delivery_outcomes_and_the_queue_show_in_metrics,
    retry_after_is_honoured_and_other_4xx_are_final,
    one_conversations_events_arrive_in_order_through_failures,
    the_concurrency_limit_holds_per_endpoint,
    response_bodies_are_read_only_up_to_64_kb,
    bodies_are_kept_seven_days_then_dropped,
    an_endpoint_failing_for_the_window_is_switched_off,
    the_72_hour_window_counts_from_the_first_failure,
    a_day_summary_is_announced_when_made_or_received,
);
