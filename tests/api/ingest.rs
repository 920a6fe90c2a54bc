//! The Omi app's developer webhooks (API.md §13.G) received under `/v1/ingest/omi/`: realistic
//! payloads replayed over real HTTP and read back field by field, re-deliveries, live
//! transcripts closed by the gap and merged with the finished conversation, restarts, bad
//! input and the key-in-URL rule. Processing is driven by a worker the test runs itself (the
//! server's own is off), so nothing depends on timing.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use omi_server::service::ingest::{Worker, WorkerSettings};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::{Backend, Reply, TestServer, TestUser};

const CONVERSATIONS: &str = "/v1/ingest/omi/conversations";
const TRANSCRIPT: &str = "/v1/ingest/omi/transcript";
const GAP: Duration = Duration::from_secs(120);

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/ingest/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn worker(server: &TestServer) -> Worker {
    Worker {
        store: server.state.store.clone(),
        processor: server.state.processor.clone(),
        settings: WorkerSettings {
            gap: GAP,
            extract_memories: true,
            audio_max_bytes: 1024 * 1024,
        },
        counters: server.state.ingest_counters.clone(),
        wake: server.state.ingest_wake.clone(),
    }
}

async fn start(backend: Backend) -> TestServer {
    TestServer::start_on_with(backend, |s| {
        s.ingest_worker = false;
        s.daily_summaries = false;
        s.ingest_audio = true;
    })
    .await
}

async fn ingest_key(server: &TestServer, user: &TestUser) -> String {
    server.key_with(user, &["ingest:write"]).await
}

/// POSTs `body` the way the Omi app does: the key in the URL, `uid` appended.
async fn deliver(
    server: &TestServer,
    path: &str,
    key: &str,
    body: &Value,
    idempotency_key: Option<&str>,
) -> Reply {
    let mut request = server
        .client
        .post(server.url(&format!("{path}?key={key}&uid=upstream-uid")))
        .json(body);
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("Idempotency-Key", idempotency_key);
    }
    Reply::from(request.send().await.unwrap()).await
}

fn now_iso(offset_seconds: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(offset_seconds))
        .to_rfc3339_opts(SecondsFormat::Micros, false)
}

async fn conversations(server: &TestServer, user: &TestUser) -> Vec<Value> {
    let reply = server
        .get(
            "/v1/dev/user/conversations?include_discarded=true",
            &user.key,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body.as_array().unwrap().clone()
}

async fn conversation(server: &TestServer, user: &TestUser, id: &str) -> Value {
    let reply = server
        .get(
            &format!("/v1/dev/user/conversations/{id}?include_transcript=true"),
            &user.key,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn a_delivered_conversation_is_stored_faithfully_and_redelivery_updates_it(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let body = fixture("memory_created");
    let id = body["id"].as_str().unwrap();

    let reply = deliver(&server, CONVERSATIONS, &key, &body, Some("delivery-1")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, json!({}));
    // Omi's retry of the same delivery, and the same body again without a key.
    assert_eq!(
        deliver(&server, CONVERSATIONS, &key, &body, Some("delivery-1"))
            .await
            .status,
        200
    );
    worker(&server).drain().await.unwrap();

    let stored = conversation(&server, &user, id).await;
    assert_eq!(stored["id"], body["id"]);
    assert_eq!(stored["created_at"], "2026-12-07T14:02:10Z");
    assert_eq!(stored["started_at"], "2026-12-07T14:02:10Z");
    assert_eq!(stored["finished_at"], "2026-12-07T14:07:55Z");
    for field in ["title", "overview", "emoji", "category"] {
        assert_eq!(
            stored["structured"][field], body["structured"][field],
            "{field}"
        );
    }
    let event = &stored["structured"]["events"][0];
    assert_eq!(event["title"], "Dental cleaning");
    assert_eq!(event["description"], "Dr. Patel, moved from Tuesday");
    assert_eq!(event["start"], "2026-12-10T09:30:00Z");
    assert_eq!(event["duration"], 60);
    assert_eq!(stored["language"], "en");
    assert_eq!(stored["source"], "omi");
    assert_eq!(stored["discarded"], false);
    assert_eq!(stored["geolocation"]["latitude"], 52.3676);
    assert_eq!(
        stored["geolocation"]["address"],
        "Keizersgracht 12, Amsterdam"
    );
    assert_eq!(
        stored["geolocation"]["google_place_id"],
        "ChIJVXealLU_xkcRja_At0z9AGY"
    );
    let segments = stored["transcript_segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    for (got, sent) in segments
        .iter()
        .zip(body["transcript_segments"].as_array().unwrap())
    {
        for field in [
            "id",
            "text",
            "speaker",
            "speaker_id",
            "is_user",
            "person_id",
            "start",
            "end",
        ] {
            assert_eq!(got[field], sent[field], "segment {field}");
        }
    }

    let items = server
        .get("/v1/dev/user/action-items?limit=100", &user.key)
        .await
        .body;
    let mut items: Vec<&Value> = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["conversation_id"] == body["id"])
        .collect();
    items.sort_by_key(|i| i["description"].as_str().unwrap().to_string());
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["description"], "Bring the insurance card");
    assert_eq!(items[0]["completed"], true);
    assert_eq!(items[1]["due_at"], "2026-12-09T17:00:00Z");

    // Memories come from this server's processor (the body carries none).
    let memories = server.get("/v1/dev/user/memories", &user.key).await.body;
    assert!(
        memories
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["conversation_id"] == body["id"]),
        "a memory extracted from the transcript: {memories}"
    );

    // The user renames it in the app: the same id arrives again, changed.
    let mut edited = body.clone();
    edited["structured"]["title"] = json!("Dentist moved to Thursday");
    assert_eq!(
        deliver(&server, CONVERSATIONS, &key, &edited, Some("delivery-2"))
            .await
            .status,
        200
    );
    // "Trigger webhook with existing data": the same body, no key.
    assert_eq!(
        deliver(&server, CONVERSATIONS, &key, &edited, None)
            .await
            .status,
        200
    );
    worker(&server).drain().await.unwrap();
    let all = conversations(&server, &user).await;
    assert_eq!(all.len(), 1, "updated in place, never duplicated: {all:?}");
    assert_eq!(all[0]["structured"]["title"], "Dentist moved to Thursday");
    let items = server
        .get("/v1/dev/user/action-items?limit=100", &user.key)
        .await
        .body;
    assert_eq!(
        items
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["conversation_id"] == body["id"])
            .count(),
        2
    );

    let summary = server.state.store.inbox_summary(10).await.unwrap();
    assert_eq!(summary.pending, 0);
    assert_eq!(summary.failed, 0);
    // Two distinct deliveries and one edit without a key; the retries were not stored again.
    assert_eq!(summary.done, 3);
}

async fn a_discarded_conversation_is_stored_as_discarded(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let mut body = fixture("memory_created");
    body["discarded"] = json!(true);
    assert_eq!(
        deliver(&server, CONVERSATIONS, &key, &body, None)
            .await
            .status,
        200
    );
    worker(&server).drain().await.unwrap();
    let stored = conversation(&server, &user, body["id"].as_str().unwrap()).await;
    assert_eq!(stored["discarded"], true);
    // Hidden from the default list, and nothing is learned from it.
    assert!(
        server
            .get("/v1/dev/user/conversations", &user.key)
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    let memories = server.get("/v1/dev/user/memories", &user.key).await.body;
    assert_eq!(
        memories,
        json!([]),
        "no memory from a discarded conversation"
    );
}

/// `OMI_INGEST_EXTRACT_MEMORIES=false`: the conversation and its action items are stored, no
/// memory is extracted from it.
async fn memory_extraction_can_be_switched_off(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let body = fixture("memory_created");
    assert_eq!(
        deliver(&server, CONVERSATIONS, &key, &body, None)
            .await
            .status,
        200
    );
    let mut quiet = worker(&server);
    quiet.settings.extract_memories = false;
    quiet.drain().await.unwrap();
    let stored = conversation(&server, &user, body["id"].as_str().unwrap()).await;
    assert_eq!(stored["structured"]["title"], body["structured"]["title"]);
    let items = server
        .get("/v1/dev/user/action-items?limit=100", &user.key)
        .await
        .body;
    assert_eq!(items.as_array().unwrap().len(), 2, "{items}");
    let memories = server.get("/v1/dev/user/memories", &user.key).await.body;
    assert_eq!(memories, json!([]), "extraction is off");
    // The same delivery with extraction on (the a_delivered_... test) yields memories, so the
    // setting is what made the difference.
    let mut edited = body.clone();
    edited["structured"]["title"] = json!("Edited in the app");
    deliver(&server, CONVERSATIONS, &key, &edited, None).await;
    worker(&server).drain().await.unwrap();
    let memories = server.get("/v1/dev/user/memories", &user.key).await.body;
    assert!(!memories.as_array().unwrap().is_empty(), "{memories}");
}

/// A processed delivery's dedupe key is kept for `OMI_INGEST_INBOX_DAYS` (7): a retry within it
/// is recognised; after it the row is removed (a retry would be stored again). Failed and
/// pending deliveries are never removed.
async fn processed_deliveries_are_forgotten_after_the_retention(backend: Backend) {
    use omi_server::service::ingest::retention;
    assert_eq!(
        omi_server::config::Settings::defaults().ingest_inbox_days,
        7
    );
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let store = &*server.state.store;
    let body = fixture("memory_created");
    deliver(&server, CONVERSATIONS, &key, &body, Some("retry-me")).await;
    store
        .accept_delivery(omi_server::store::ingest::NewDelivery {
            user_id: user.id.clone(),
            kind: "conversation".into(),
            dedupe_key: "broken".into(),
            body: b"{\"id\": 1}".to_vec(),
            params: "{}".into(),
            received_at: Utc::now(),
        })
        .await
        .unwrap();
    worker(&server).drain().await.unwrap();
    // Accepted after the worker ran: still pending.
    deliver(&server, TRANSCRIPT, &key, &fixture("realtime_1"), None).await;
    let counts = |s: omi_server::store::ingest::InboxSummary| (s.pending, s.done, s.failed);
    assert_eq!(counts(store.inbox_summary(10).await.unwrap()), (1, 1, 1));

    // Six days later the processed one is still held, so the app's retry is a duplicate.
    let six_days = Utc::now() + chrono::Duration::days(6);
    assert_eq!(retention::prune(store, 7, six_days).await.unwrap(), 0);
    deliver(&server, CONVERSATIONS, &key, &body, Some("retry-me")).await;
    assert_eq!(counts(store.inbox_summary(10).await.unwrap()), (1, 1, 1));

    // Past seven days it goes; the failed and the pending one stay.
    let later = Utc::now() + chrono::Duration::days(7) + chrono::Duration::minutes(1);
    assert_eq!(retention::prune(store, 7, later).await.unwrap(), 1);
    let inbox = store.inbox_summary(10).await.unwrap();
    assert_eq!(counts(inbox.clone()), (1, 0, 1));
    assert_eq!(inbox.stuck[0].kind, "conversation", "{inbox:?}");
    assert_eq!(retention::prune(store, 7, later).await.unwrap(), 0);

    // A retry this late is stored again, and processing it changes nothing more.
    deliver(&server, CONVERSATIONS, &key, &body, Some("retry-me")).await;
    assert_eq!(counts(store.inbox_summary(10).await.unwrap()), (2, 0, 1));
    worker(&server).drain().await.unwrap();
    let all = conversations(&server, &user).await;
    assert_eq!(all.len(), 1, "{all:?}");
}

/// Malformed bodies of every kind, on every receiver: a 4xx each (never a 5xx), and whatever
/// is accepted can be processed (nothing ends up failed).
async fn malformed_payloads_never_get_a_500(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let when = "\"created_at\": \"2026-12-07T14:02:10+00:00\"";
    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let long_id = format!("{{\"id\": \"{}\", {when}}}", "x".repeat(20_000));
    let bodies: Vec<Vec<u8>> = [
        "",
        " ",
        "null",
        "true",
        "1",
        "\"text\"",
        "[]",
        "{}",
        "[null]",
        "[1, \"a\", {}]",
        "{\"id\": null}",
        "{\"id\": 5}",
        "{\"id\": \"\"}",
        "{\"id\": {}}",
        "{\"id\": \"x\", \"created_at\": 5}",
        "{\"id\": \"x\", \"created_at\": \"not a date\"}",
        "{\"id\": \"x\", \"created_at\": \"9999-99-99T99:99:99Z\"}",
        "{\"id\": \"x\", \"created_at\": \"2026-12-07T14:02:10+00:00\", \"finished_at\": \"1970-01-01T00:00:00Z\"}",
        "{\"id\": \"x\", \"created_at\": \"2026-12-07T14:02:10+00:00\", \"transcript_segments\": \"nope\"}",
        "{\"id\": \"x\", \"created_at\": \"2026-12-07T14:02:10+00:00\", \"transcript_segments\": [{\"text\": 5}, null]}",
        "{\"id\": \"x\", \"created_at\": \"2026-12-07T14:02:10+00:00\", \"structured\": []}",
        "{\"id\": \"x\", \"created_at\": \"2026-12-07T14:02:10+00:00\", \"structured\": {\"title\": 7, \"category\": []}}",
        "{\"id\": \"x\", \"created_at\": \"2026-12-07T14:02:10+00:00\", \"structured\": {\"action_items\": [1, {\"description\": 5}, {\"description\": \"ok\", \"due_at\": \"never\"}]}}",
        "{\"id\": \"x\", \"created_at\": \"2026-12-07T14:02:10+00:00\", \"geolocation\": {\"latitude\": \"north\"}}",
        "{\"id\": \"x\", \"created_at\": \"2026-12-07T14:02:10+00:00\", \"geolocation\": {\"latitude\": 500, \"longitude\": -900}}",
        "{\"id\": \"x\", \"created_at\": \"2026-12-07T14:02:10+00:00\", \"folder_name\": 3, \"discarded\": \"yes\"}",
        "{\"segments\": 1}",
        "{\"segments\": [{\"text\": 5}]}",
        "{\"segments\": [{\"text\": \"a\", \"start\": \"zero\"}]}",
        "{\"segments\": [{\"text\": \"a\", \"start\": 1e400}]}",
        "{\"segments\": [{\"text\": \"a\", \"speaker_id\": 1.5}]}",
        "{\"segments\": [{\"id\": 3, \"text\": \"a\"}]}",
        "{\"summary_json\": {}}",
        "{\"summary_json\": []}",
        "{\"summary_json\": {\"date\": \"yesterday\"}}",
        "{\"summary_json\": {\"id\": \"s\", \"date\": \"2026-02-30\", \"created_at\": \"2026-12-06T22:00:04\"}}",
        "{\"button_event\": 5}",
        "{\"button_event\": null}",
        "{\"a\": 1, \"a\": 2}",
        "{\"id\": \"\\ud800\"}",
    ]
    .into_iter()
    .map(|b| b.as_bytes().to_vec())
    .chain([deep.into_bytes(), long_id.into_bytes(), vec![0xff, 0xfe, b'{', b'}']])
    .collect();
    for path in [
        CONVERSATIONS,
        TRANSCRIPT,
        "/v1/ingest/omi/day-summary",
        "/v1/ingest/omi/button",
    ] {
        for body in &bodies {
            let reply = Reply::from(
                server
                    .client
                    .post(server.url(&format!("{path}?key={key}&uid=u")))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert!(
                reply.status == 200 || (400..500).contains(&reply.status),
                "{path} {:?}: {reply:?}",
                String::from_utf8_lossy(body)
            );
            if reply.status != 200 {
                assert!(
                    !reply.detail().is_empty(),
                    "{path}: a 4xx says why: {reply:?}"
                );
            }
        }
    }
    let audio = |query: &str, body: Vec<u8>| {
        let url = server.url(&format!("/v1/ingest/omi/audio?key={key}{query}"));
        let client = server.client.clone();
        async move {
            Reply::from(
                client
                    .post(url)
                    .header("content-type", "application/octet-stream")
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    for (query, body) in [
        ("", vec![0, 0]),
        ("&sample_rate=abc", vec![0, 0]),
        ("&sample_rate=-16000", vec![0, 0]),
        ("&sample_rate=99999999999999999999999", vec![0, 0]),
        ("&sample_rate=16000", vec![]),
        ("&sample_rate=16000", vec![0, 0, 0]),
    ] {
        let reply = audio(query, body).await;
        assert_eq!(reply.status, 422, "{query}: {reply:?}");
    }
    worker(&server).drain().await.unwrap();
    let inbox = server.state.store.inbox_summary(100).await.unwrap();
    assert_eq!(inbox.failed, 0, "accepted but not processable: {inbox:?}");
    assert_eq!(inbox.pending, 0, "{inbox:?}");
}

async fn a_live_transcript_closes_after_the_gap_and_merges_with_the_finished_conversation(
    backend: Backend,
) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    for batch in ["realtime_1", "realtime_2"] {
        let reply = deliver(&server, TRANSCRIPT, &key, &fixture(batch), None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let worker = worker(&server);
    worker.drain().await.unwrap();
    assert!(
        conversations(&server, &user).await.is_empty(),
        "open while segments may still come"
    );

    // The gap passes.
    let later = Utc::now() + chrono::Duration::seconds(GAP.as_secs() as i64 + 5);
    assert!(worker.round(later).await.unwrap());
    let all = conversations(&server, &user).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let local_id = all[0]["id"].as_str().unwrap().to_string();
    let stored = conversation(&server, &user, &local_id).await;
    let segments = stored["transcript_segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2, "one per segment id: {segments:?}");
    assert_eq!(
        segments[0]["text"], "Remind me to send the onboarding copy to design.",
        "the last text wins"
    );
    assert_eq!(
        segments[1]["person_id"],
        "0193a0ff-1111-7aaa-8bbb-2c3d4e5f6a7b"
    );

    // Then the app delivers the finished conversation of the same recording.
    let mut finished = fixture("memory_created");
    finished["id"] = json!("0193a1d2-ffff-7000-8000-000000000001");
    finished["started_at"] = json!(now_iso(-90));
    finished["created_at"] = json!(now_iso(-90));
    finished["finished_at"] = json!(now_iso(0));
    finished["structured"]["title"] = json!("Onboarding copy");
    assert_eq!(
        deliver(&server, CONVERSATIONS, &key, &finished, None)
            .await
            .status,
        200
    );
    worker.drain().await.unwrap();
    let all = conversations(&server, &user).await;
    assert_eq!(all.len(), 1, "one conversation per recording: {all:?}");
    assert_eq!(
        all[0]["id"],
        local_id.as_str(),
        "the closed session's id survives"
    );
    assert_eq!(all[0]["structured"]["title"], "Onboarding copy");
    // A re-delivery lands on the same conversation.
    finished["structured"]["title"] = json!("Onboarding copy, final");
    deliver(&server, CONVERSATIONS, &key, &finished, None).await;
    worker.drain().await.unwrap();
    let all = conversations(&server, &user).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["structured"]["title"], "Onboarding copy, final");
}

async fn a_finished_conversation_takes_the_place_of_a_session_still_open(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    deliver(&server, TRANSCRIPT, &key, &fixture("realtime_2"), None).await;
    let worker = worker(&server);
    worker.drain().await.unwrap();
    let mut finished = fixture("memory_created");
    finished["started_at"] = json!(now_iso(-60));
    finished["created_at"] = json!(now_iso(-60));
    finished["finished_at"] = json!(now_iso(0));
    deliver(&server, CONVERSATIONS, &key, &finished, None).await;
    worker.drain().await.unwrap();
    // Long after the gap, nothing else appears: the session became the app's conversation.
    let later = Utc::now() + chrono::Duration::seconds(GAP.as_secs() as i64 * 3);
    worker.round(later).await.unwrap();
    let all = conversations(&server, &user).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], finished["id"], "the app's id is kept");
}

async fn open_sessions_and_accepted_deliveries_survive_a_restart(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    deliver(&server, TRANSCRIPT, &key, &fixture("realtime_1"), None).await;
    worker(&server).drain().await.unwrap();
    // Accepted, not yet processed, when the server stops.
    deliver(&server, TRANSCRIPT, &key, &fixture("realtime_2"), None).await;
    let server = server.restart().await;
    let worker = worker(&server);
    worker.drain().await.unwrap();
    let later = Utc::now() + chrono::Duration::seconds(GAP.as_secs() as i64 + 5);
    worker.round(later).await.unwrap();
    let all = conversations(&server, &user).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let stored = conversation(&server, &user, all[0]["id"].as_str().unwrap()).await;
    assert_eq!(stored["transcript_segments"].as_array().unwrap().len(), 2);
}

async fn an_overdue_session_closes_when_the_server_starts(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    deliver(&server, TRANSCRIPT, &key, &fixture("realtime_2"), None).await;
    worker(&server).drain().await.unwrap();
    let database = server.database.clone();
    let mut settings = server.settings();
    let dir = server.stop().await;
    // Restarted with its own worker on and a one-second gap: the session closes by itself.
    settings.ingest_worker = true;
    settings.ingest_gap_seconds = 1;
    let mut server = TestServer::start_in(dir, settings).await;
    server.database = database;
    let mut found = Vec::new();
    for _ in 0..200 {
        found = conversations(&server, &user).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found.len(), 1, "the session closed after the restart");
}

async fn a_day_summary_button_event_and_audio_are_kept(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let reply = deliver(
        &server,
        "/v1/ingest/omi/day-summary",
        &key,
        &fixture("day_summary"),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    deliver(&server, TRANSCRIPT, &key, &fixture("realtime_2"), None).await;
    let reply = deliver(
        &server,
        "/v1/ingest/omi/button",
        &key,
        &fixture("button"),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let pcm: Vec<u8> = (0..3200u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..2 {
        let reply = server
            .client
            .post(server.url(&format!(
                "/v1/ingest/omi/audio?key={key}&sample_rate=8000&uid=u"
            )))
            .header("content-type", "application/octet-stream")
            .body(pcm.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    let worker = worker(&server);
    worker.drain().await.unwrap();
    worker
        .round(Utc::now() + chrono::Duration::seconds(GAP.as_secs() as i64 + 5))
        .await
        .unwrap();
    let inbox = server.state.store.inbox_summary(10).await.unwrap();
    assert_eq!((inbox.done, inbox.failed), (5, 0), "{inbox:?}");

    let summaries = server
        .get("/v1/dev/user/daily-summaries", &user.key)
        .await
        .body;
    let summary = &summaries["summaries"][0];
    assert_eq!(summary["date"], "2026-12-06");
    assert_eq!(summary["headline"], "Dentist moved, Q1 plan locked");
    assert_eq!(summary["stats"]["total_duration_minutes"], 73);

    let all = conversations(&server, &user).await;
    assert_eq!(all.len(), 1);
    let id = all[0]["id"].as_str().unwrap();
    let audio = server
        .client
        .get(server.url(&format!("/v1/dev/user/conversations/{id}/audio")))
        .bearer_auth(&user.key)
        .send()
        .await
        .unwrap();
    assert_eq!(audio.status(), 200);
    assert_eq!(audio.headers()["content-type"], "audio/wav");
    let wav = audio.bytes().await.unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(wav.len(), 44 + 2 * pcm.len(), "both chunks, in order");
    assert_eq!(&wav[44..44 + pcm.len()], &pcm[..]);

    // The console's conversation page plays it, through a route that checks the session.
    let (mut browser, _) = crate::console::Browser::signed_in(&server, &user).await;
    let page = browser.get(&format!("/console/conversations/{id}")).await;
    let player =
        format!(r#"<audio controls preload="none" src="/console/conversations/{id}/audio">"#);
    assert!(page.html.contains(&player), "{}", page.html);
    let played = browser
        .client
        .get(server.url(&format!("/console/conversations/{id}/audio")))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(played.status(), 200);
    assert_eq!(played.headers()["content-type"], "audio/wav");
    assert_eq!(played.bytes().await.unwrap(), wav);

    // Another user cannot read it.
    let other = server.user("other").await;
    let (mut intruder, _) = crate::console::Browser::signed_in(&server, &other).await;
    let foreign = intruder
        .get(&format!("/console/conversations/{id}/audio"))
        .await;
    assert_eq!(foreign.status, 404);
    server
        .get(
            &format!("/v1/dev/user/conversations/{id}/audio"),
            &other.key,
        )
        .await
        .assert_error(404, "Conversation audio not found");
}

async fn a_key_in_the_url_must_be_ingest_only_and_can_read_nothing(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let body = fixture("memory_created");
    // A full-scope key in the URL is refused, even though it holds ingest:write.
    let reply = deliver(&server, CONVERSATIONS, &user.key, &body, None).await;
    reply.assert_error(
        401,
        "A key in the URL is accepted only when its scopes are exactly [\"ingest:write\"]: send this key in the Authorization header, or create an ingest-only key for the webhook URL",
    );
    // The same key in the header is fine.
    let reply = server.post(CONVERSATIONS, &user.key, body.clone()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // An ingest key reads nothing, in the header or in the URL.
    let key = ingest_key(&server, &user).await;
    for path in [
        "/v1/dev/user/memories",
        "/v1/dev/user/conversations",
        "/v1/dev/user/action-items",
        "/v1/dev/user/goals",
    ] {
        let reply = server.get(path, &key).await;
        assert_eq!(reply.status, 403, "{path}: {reply:?}");
        let reply = Reply::from(
            server
                .client
                .get(server.url(&format!("{path}?key={key}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 401, "{path}: {reply:?}");
    }
    let reply = server.get("/v1/dev/keys", &key).await;
    assert_eq!(reply.status, 401);
    // A revoked or unknown key in the URL.
    let reply = deliver(
        &server,
        CONVERSATIONS,
        "omi_dev_00000000000000000000000000000000",
        &body,
        None,
    )
    .await;
    reply.assert_error(401, "Invalid API key");
}

async fn another_users_data_is_never_touched(backend: Backend) {
    let server = start(backend).await;
    let alex = server.user("alex").await;
    let sam = server.user("sam").await;
    let body = fixture("memory_created");
    deliver(
        &server,
        CONVERSATIONS,
        &ingest_key(&server, &alex).await,
        &body,
        None,
    )
    .await;
    worker(&server).drain().await.unwrap();
    // Sam's app sends a conversation with the same id and other content.
    let mut theirs = body.clone();
    theirs["structured"]["title"] = json!("Sam's own");
    deliver(
        &server,
        CONVERSATIONS,
        &ingest_key(&server, &sam).await,
        &theirs,
        None,
    )
    .await;
    worker(&server).drain().await.unwrap();
    let alex_all = conversations(&server, &alex).await;
    assert_eq!(alex_all.len(), 1);
    assert_eq!(
        alex_all[0]["structured"]["title"],
        "Dentist Appointment Moved"
    );
    let sam_all = conversations(&server, &sam).await;
    assert_eq!(sam_all.len(), 1);
    assert_eq!(sam_all[0]["structured"]["title"], "Sam's own");
    assert_ne!(sam_all[0]["id"], alex_all[0]["id"]);
}

async fn bad_input_gets_a_clear_4xx_and_stores_nothing(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        s.ingest_worker = false;
        s.ingest_max_body_bytes = 64 * 1024;
    })
    .await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let url = |path: &str| server.url(&format!("{path}?key={key}"));
    let send = |path: String, content_type: &'static str, body: Vec<u8>| {
        let client = server.client.clone();
        async move {
            Reply::from(
                client
                    .post(path)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let reply = send(
        url(CONVERSATIONS),
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(reply.status, 422, "{reply:?}");
    assert!(
        reply
            .detail()
            .starts_with("Validation error: body is not valid JSON")
    );
    let reply = send(
        url(CONVERSATIONS),
        "application/json",
        b"{\"hello\": 1}".to_vec(),
    )
    .await;
    reply.assert_error(
        422,
        "Validation error: id is required (a conversation object)",
    );
    let reply = send(url(CONVERSATIONS), "application/json", b"[1, 2]".to_vec()).await;
    assert_eq!(reply.status, 422);
    let reply = send(url(CONVERSATIONS), "text/plain", b"{}".to_vec()).await;
    reply.assert_error(415, "Content-Type must be application/json");
    let reply = send(
        url(TRANSCRIPT),
        "application/json",
        b"{\"segs\": []}".to_vec(),
    )
    .await;
    assert_eq!(reply.status, 422);
    let big = serde_json::to_vec(&json!({"id": "x", "pad": "a".repeat(100_000)})).unwrap();
    let reply = send(url(CONVERSATIONS), "application/json", big).await;
    reply.assert_error(413, "Request body too large");
    // Audio is off on this server.
    let reply = send(
        format!("{}&sample_rate=16000", url("/v1/ingest/omi/audio")),
        "application/octet-stream",
        vec![0, 0],
    )
    .await;
    reply.assert_error(
        404,
        "Audio ingest is off on this server (OMI_INGEST_AUDIO=true turns it on)",
    );
    let summary = server.state.store.inbox_summary(10).await.unwrap();
    assert_eq!(
        (summary.pending, summary.done, summary.failed),
        (0, 0, 0),
        "nothing stored"
    );

    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let audio = server.url(&format!("/v1/ingest/omi/audio?key={key}&sample_rate=16000"));
    let reply = Reply::from(
        server
            .client
            .post(audio.clone())
            .header("content-type", "application/json")
            .body("[]")
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_error(415, "Content-Type must be application/octet-stream");
    let reply = Reply::from(
        server
            .client
            .post(audio.replace("sample_rate=16000", "sample_rate=5"))
            .header("content-type", "application/octet-stream")
            .body(vec![0u8, 0])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 422, "{reply:?}");
}

async fn a_delivery_that_cannot_be_processed_stays_with_its_error(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    // Accepted by an older check, say; the worker finds it cannot be processed.
    server
        .state
        .store
        .accept_delivery(omi_server::store::ingest::NewDelivery {
            user_id: user.id.clone(),
            kind: "conversation".into(),
            dedupe_key: "broken".into(),
            body: b"{\"id\": 1}".to_vec(),
            params: "{}".into(),
            received_at: Utc::now(),
        })
        .await
        .unwrap();
    worker(&server).drain().await.unwrap();
    let summary = server.state.store.inbox_summary(10).await.unwrap();
    assert_eq!(summary.failed, 1);
    assert_eq!(summary.stuck.len(), 1);
    assert!(
        summary.stuck[0]
            .error
            .as_deref()
            .unwrap()
            .contains("created_at"),
        "{summary:?}"
    );
}

/// A copy following the change feed sees what the app delivered, even though the app's own times
/// are older than the copy's position: delivered objects take the server's change stamp.
async fn delivered_objects_appear_on_the_change_feed(backend: Backend) {
    let server = start(backend).await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let mut body = fixture("memory_created");
    for field in ["created_at", "updated_at", "started_at", "finished_at"] {
        body[field] = json!("2020-01-01T10:00:00+00:00");
    }
    let id = body["id"].as_str().unwrap().to_string();
    let since = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    assert_eq!(
        deliver(&server, CONVERSATIONS, &key, &body, None)
            .await
            .status,
        200
    );
    worker(&server).drain().await.unwrap();

    let changed = server
        .get(
            &format!("/v1/dev/user/conversations?updated_since={since}"),
            &user.key,
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let ids: Vec<&str> = changed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    let items = server
        .get(
            &format!("/v1/dev/user/action-items?limit=100&updated_since={since}"),
            &user.key,
        )
        .await;
    assert_eq!(items.status, 200, "{items:?}");
    assert_eq!(items.body.as_array().unwrap().len(), 2, "{items:?}");
    // The conversation keeps the app's own times.
    let stored = conversation(&server, &user, &id).await;
    assert_eq!(stored["started_at"], "2020-01-01T10:00:00Z");
}

/// What the app delivers reaches outbound webhook subscribers like any other write.
async fn delivered_conversations_are_announced_to_webhook_subscribers(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        s.ingest_worker = false;
        s.daily_summaries = false;
        // Deliveries are only listed, never sent: no receiver is needed.
        s.webhooks = false;
        s.webhook_allow_private = true;
    })
    .await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let hook = server
        .post(
            "/v1/dev/user/webhooks",
            &user.key,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["conversation.created", "action_item.created"]}),
        )
        .await;
    assert_eq!(hook.status, 200, "{hook:?}");
    let hook_id = hook.body["id"].as_str().unwrap();
    let body = fixture("memory_created");
    assert_eq!(
        deliver(&server, CONVERSATIONS, &key, &body, None)
            .await
            .status,
        200
    );
    worker(&server).drain().await.unwrap();
    let log = server
        .get(
            &format!("/v1/dev/user/webhooks/{hook_id}/deliveries?limit=200"),
            &user.key,
        )
        .await;
    assert_eq!(log.status, 200, "{log:?}");
    let mut events: Vec<&str> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event"].as_str().unwrap())
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            "action_item.created",
            "action_item.created",
            "conversation.created"
        ],
        "{log:?}"
    );
}

/// `/metrics` counts deliveries by outcome: accepted, a retry recognised as a duplicate,
/// processed, and one that can never be processed (failed).
async fn delivery_outcomes_are_counted_in_metrics(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        s.ingest_worker = false;
        s.daily_summaries = false;
        s.webhooks = false;
        s.metrics_listen = omi_server::config::MetricsListen::At("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let user = server.user("alex").await;
    let key = ingest_key(&server, &user).await;
    let body = fixture("memory_created");
    for _ in 0..2 {
        deliver(&server, CONVERSATIONS, &key, &body, Some("once")).await;
    }
    server
        .state
        .store
        .accept_delivery(omi_server::store::ingest::NewDelivery {
            user_id: user.id.clone(),
            kind: "conversation".into(),
            dedupe_key: "broken".into(),
            body: b"{\"id\": 1}".to_vec(),
            params: "{}".into(),
            received_at: Utc::now(),
        })
        .await
        .unwrap();
    worker(&server).drain().await.unwrap();
    let url = format!("{}/metrics", server.metrics_url.as_ref().unwrap());
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    for (outcome, count) in [
        ("accepted", 1),
        ("duplicate", 1),
        ("processed", 1),
        ("retried", 0),
        ("failed", 1),
    ] {
        let line = format!("omi_ingest_deliveries_total{{outcome=\"{outcome}\"}} {count}");
        assert!(text.lines().any(|l| l == line), "missing `{line}`:\n{text}");
    }
}

backend_tests!(
    delivery_outcomes_are_counted_in_metrics,
    delivered_conversations_are_announced_to_webhook_subscribers,
    delivered_objects_appear_on_the_change_feed,
    a_delivered_conversation_is_stored_faithfully_and_redelivery_updates_it,
    a_discarded_conversation_is_stored_as_discarded,
    memory_extraction_can_be_switched_off,
    processed_deliveries_are_forgotten_after_the_retention,
    malformed_payloads_never_get_a_500,
    a_live_transcript_closes_after_the_gap_and_merges_with_the_finished_conversation,
    a_finished_conversation_takes_the_place_of_a_session_still_open,
    open_sessions_and_accepted_deliveries_survive_a_restart,
    an_overdue_session_closes_when_the_server_starts,
    a_day_summary_button_event_and_audio_are_kept,
    a_key_in_the_url_must_be_ingest_only_and_can_read_nothing,
    another_users_data_is_never_touched,
    bad_input_gets_a_clear_4xx_and_stores_nothing,
    a_delivery_that_cannot_be_processed_stays_with_its_error,
);
