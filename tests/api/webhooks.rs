//! Outbound webhooks: subscriptions, signed upstream-compatible deliveries through failures and
//! recovery, the delivery log, redelivery, the SSRF guard, rolled-back writes and replicas.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use omi_server::config::Settings;
use omi_server::domain::action_items::ActionItem;
use omi_server::domain::time;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::{Backend, TestServer, TestUser};
use crate::webhook_receiver::{Answer, Receiver, assert_signed};

pub(crate) const HOOKS: &str = "/v1/dev/user/webhooks";

const ALL_EVENTS: [&str; 11] = [
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

/// Quick retries, short timeouts and polls, receivers on 127.0.0.1 allowed.
pub(crate) fn fast(settings: &mut Settings) {
    settings.webhook_allow_private = true;
    settings.webhook_retry_delays = vec!["0.05"; 20].join(",");
    settings.webhook_timeout_ms = 700;
    settings.webhook_connect_timeout_ms = 700;
    settings.webhook_poll_ms = 20;
    settings.daily_summaries = false;
}

pub(crate) async fn subscribe(
    server: &TestServer,
    user: &TestUser,
    url: &str,
    events: &[&str],
) -> Value {
    let reply = server
        .post(HOOKS, &user.key, json!({"url": url, "events": events}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

pub(crate) async fn deliveries(server: &TestServer, user: &TestUser, hook: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("{HOOKS}/{hook}/deliveries?limit=200"), &user.key)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body.as_array().unwrap().clone()
}

/// Waits (bounded) until the log has at least `count` deliveries and none is pending.
pub(crate) async fn settled(
    server: &TestServer,
    user: &TestUser,
    hook: &str,
    count: usize,
) -> Vec<Value> {
    for _ in 0..600 {
        let log = deliveries(server, user, hook).await;
        if log.len() >= count && log.iter().all(|d| d["status"] != "pending") {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries did not settle: {:#?}",
        deliveries(server, user, hook).await
    );
}

async fn subscriptions_are_managed_per_user_with_scopes_and_a_cap(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| s.webhooks = false).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;

    server
        .post(
            HOOKS,
            &alice.key,
            json!({"url": "ftp://x.example/", "events": ["memory.created"]}),
        )
        .await
        .assert_error(422, "Validation error: url must be an http or https URL");
    server
        .post(
            HOOKS,
            &alice.key,
            json!({"url": "https://x.example/", "events": ["nope"]}),
        )
        .await
        .assert_error(
            422,
            "Invalid events. Available: conversation.created, conversation.updated, \
             conversation.deleted, memory.created, memory.updated, memory.deleted, \
             action_item.created, action_item.updated, action_item.deleted, goal.updated, \
             day_summary",
        );
    server
        .post(
            HOOKS,
            &alice.key,
            json!({"url": "https://x.example/", "events": []}),
        )
        .await
        .assert_error(422, "Validation error: events must not be empty");

    let created = server
        .post(
            HOOKS,
            &alice.key,
            json!({"url": "https://hooks.example.net/omi?token=abc",
                   "events": ["conversation.created", "memory.created"],
                   "filters": {"category": "work"}}),
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.body["id"].as_str().unwrap().to_string();
    let secret = created.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["filters"]["category"], "work");
    assert_eq!(
        created.body["events"],
        json!(["conversation.created", "memory.created"])
    );

    let listed = server.get(HOOKS, &alice.key).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert!(
        listed.body[0].get("secret").is_none(),
        "the secret is shown once"
    );
    assert!(!listed.text.contains(&secret));

    let path = format!("{HOOKS}/{id}");
    let patched = server
        .patch(
            &path,
            &alice.key,
            json!({"active": false, "events": ["goal.updated"]}),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["active"], false);
    assert_eq!(patched.body["events"], json!(["goal.updated"]));
    server
        .patch(&path, &alice.key, json!({"events": null}))
        .await
        .assert_error(422, "Validation error: events cannot be null");

    let rotated = server
        .post(&format!("{path}/rotate-secret"), &alice.key, json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let new_secret = rotated.body["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    // Another user's subscription does not exist for bob.
    server
        .get(&path, &bob.key)
        .await
        .assert_error(404, "Webhook not found");
    server
        .delete(&path, &bob.key)
        .await
        .assert_error(404, "Webhook not found");
    server
        .get(&format!("{path}/deliveries"), &bob.key)
        .await
        .assert_error(404, "Webhook not found");

    // Scopes.
    let reader = server.key_with(&alice, &["memories:read"]).await;
    server.get(HOOKS, &reader).await.assert_error(
        403,
        "Insufficient permissions. Required scope: webhooks:read",
    );
    let read_only = server.key_with(&alice, &["webhooks:read"]).await;
    assert_eq!(server.get(HOOKS, &read_only).await.status, 200);
    server
        .post(
            HOOKS,
            &read_only,
            json!({"url": "https://x.example/", "events": ["memory.created"]}),
        )
        .await
        .assert_error(
            403,
            "Insufficient permissions. Required scope: webhooks:write",
        );

    // At most 20 per user.
    for n in 1..20 {
        subscribe(
            &server,
            &alice,
            &format!("https://x.example/{n}"),
            &["memory.created"],
        )
        .await;
    }
    server
        .post(
            HOOKS,
            &alice.key,
            json!({"url": "https://x.example/21", "events": ["memory.created"]}),
        )
        .await
        .assert_error(422, "Maximum 20 webhooks per user");
    assert_eq!(
        server.delete(&path, &alice.key).await.body,
        json!({"success": true})
    );
    server
        .get(&path, &alice.key)
        .await
        .assert_error(404, "Webhook not found");
    subscribe(
        &server,
        &alice,
        "https://x.example/again",
        &["memory.created"],
    )
    .await;
}

/// The receiver fails, times out, answers 429 and 410, then recovers: every event arrives
/// exactly once (by `webhook-id`) with valid signatures, a conversation's events in order, and
/// the one answered 410 (final, not retried) arrives once redelivered.
async fn deliveries_survive_failures_and_arrive_once_in_order_signed(backend: Backend) {
    let server = TestServer::start_on_with(backend, fast).await;
    let alice = server.user("alice").await;
    let receiver = Receiver::start(|n, _| match n {
        0..=2 => Answer::Status(500),
        3 => Answer::Hang,
        4 => Answer::RetryAfter(429, 0),
        5 => Answer::Status(410),
        6 => Answer::Status(503),
        _ => Answer::Status(200),
    })
    .await;
    let hook = subscribe(
        &server,
        &alice,
        &format!("{}/omi?token=abc&uid=someone-else", receiver.url),
        &ALL_EVENTS,
    )
    .await;
    let (hook_id, secret) = (
        hook["id"].as_str().unwrap().to_string(),
        hook["secret"].as_str().unwrap().to_string(),
    );

    let conversation = server
        .post(
            "/v1/dev/user/conversations",
            &alice.key,
            json!({"text": "I need to call the dentist tomorrow about my crown. \
                   I'm allergic to peanuts, so the clinic should know before the appointment."}),
        )
        .await;
    assert_eq!(conversation.status, 200, "{conversation:?}");
    let conversation_id = conversation.body["id"].as_str().unwrap().to_string();
    for title in ["T1", "T2", "T3"] {
        let reply = server
            .patch(
                &format!("/v1/dev/user/conversations/{conversation_id}"),
                &alice.key,
                json!({"title": title}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let memory = server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Alex drinks tea daily"}),
        )
        .await;
    assert_eq!(memory.status, 200, "{memory:?}");
    let memory_id = memory.body["id"].as_str().unwrap();
    let memory_path = format!("/v1/dev/user/memories/{memory_id}");
    assert_eq!(
        server
            .patch(
                &memory_path,
                &alice.key,
                json!({"content": "Alex drinks green tea"})
            )
            .await
            .status,
        200
    );
    assert_eq!(server.delete(&memory_path, &alice.key).await.status, 200);
    let batch = server
        .post(
            "/v1/dev/user/action-items/batch",
            &alice.key,
            json!({"action_items": [{"description": "One"}, {"description": "Two"}]}),
        )
        .await;
    assert_eq!(batch.status, 200, "{batch:?}");

    let log = settled(&server, &alice, &hook_id, 10).await;
    let failed: Vec<&Value> = log.iter().filter(|d| d["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "only the 410 is final: {log:#?}");
    assert_eq!(failed[0]["response_status"], 410);
    let refused_id = failed[0]["id"].as_str().unwrap().to_string();
    // A 4xx other than 408/429 is final: the 410 was that delivery's last attempt.
    let tries: Vec<u16> = receiver
        .hits()
        .iter()
        .filter(|h| h.id() == refused_id)
        .map(|h| h.answered)
        .collect();
    assert_eq!(tries.last(), Some(&410), "{tries:?}");
    assert_eq!(failed[0]["attempts"], tries.len());
    let redelivered = server
        .post(
            &format!("{HOOKS}/{hook_id}/deliveries/{refused_id}/redeliver"),
            &alice.key,
            json!({}),
        )
        .await;
    assert_eq!(redelivered.status, 202, "{redelivered:?}");
    let log = settled(&server, &alice, &hook_id, 10).await;
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:#?}");

    // Exactly once by webhook-id after recovery, every delivery seen.
    let accepted = receiver.accepted();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for hit in &accepted {
        *seen.entry(hit.id().to_string()).or_default() += 1;
    }
    let logged: HashSet<String> = log
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen.keys().cloned().collect::<HashSet<_>>(), logged);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    // Retries keep the id; Idempotency-Key carries the same id; uid replaces the URL's.
    let all = receiver.hits();
    assert!(all.len() > accepted.len(), "failures were retried");
    for hit in &all {
        assert_eq!(hit.header("idempotency-key"), Some(hit.id()));
        assert!(hit.uri.contains("token=abc"), "{}", hit.uri);
        assert!(
            hit.uri.ends_with(&format!("uid={}", alice.id)),
            "{}",
            hit.uri
        );
        assert_eq!(hit.header("content-type"), Some("application/json"));
    }
    let retried = all
        .iter()
        .filter(|h| h.answered != 200)
        .map(|h| h.id())
        .collect::<Vec<_>>();
    assert!(retried.iter().any(|id| seen.contains_key(*id)));

    // One conversation's events in order (the redelivered one aside).
    let titles: Vec<String> = accepted
        .iter()
        .filter(|h| h.id() != refused_id && h.event().starts_with("conversation."))
        .map(|h| {
            format!(
                "{} {}",
                h.event(),
                h.json()["structured"]["title"].as_str().unwrap()
            )
        })
        .collect();
    let expected: Vec<String> = ["T1", "T2", "T3"]
        .iter()
        .map(|t| format!("conversation.updated {t}"))
        .collect();
    let updates: Vec<&String> = titles
        .iter()
        .filter(|t| t.starts_with("conversation.updated"))
        .collect();
    assert_eq!(
        updates.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        expected
            .iter()
            .filter(|e| titles.contains(e))
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "{titles:?}"
    );
    if let Some(created) = titles
        .iter()
        .position(|t| t.starts_with("conversation.created"))
    {
        assert_eq!(created, 0, "created comes first: {titles:?}");
    }

    // The conversation body as upstream's memory_created sends it.
    let body = accepted
        .iter()
        .find(|h| h.event() == "conversation.updated")
        .unwrap()
        .json();
    for field in [
        "id",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
        "source",
        "language",
        "structured",
        "transcript_segments",
        "transcript_segments_compressed",
        "geolocation",
        "photos",
        "audio_files",
        "conversation_audio",
        "private_cloud_sync_enabled",
        "apps_results",
        "suggested_summarization_apps",
        "plugins_results",
        "external_data",
        "app_id",
        "discarded",
        "visibility",
        "starred",
        "processing_memory_id",
        "processing_conversation_id",
        "status",
        "is_locked",
        "deferred",
        "data_protection_level",
        "folder_id",
        "call_id",
        "calendar_event",
        "client_device_id",
        "client_platform",
        "folder_name",
    ] {
        assert!(body.get(field).is_some(), "missing {field}: {body:#}");
    }
    assert_eq!(body["id"], conversation_id.as_str());
    assert_eq!(body["status"], "completed");
    assert_eq!(body["visibility"], "private");
    assert_eq!(body["structured"]["sections"], json!([]));
    assert!(
        body["created_at"].as_str().unwrap().ends_with("+00:00"),
        "{body:#}"
    );
    assert!(body["updated_at"].as_str().unwrap().ends_with("+00:00"));
    for item in body["structured"]["action_items"].as_array().unwrap() {
        assert!(item["created_at"].as_str().unwrap().ends_with("+00:00"));
        assert_eq!(item["source_segment_ids"], json!([]));
    }
    let deleted = accepted
        .iter()
        .find(|h| h.event() == "memory.deleted")
        .unwrap()
        .json();
    assert_eq!(deleted["id"], memory_id);

    // The official verifier accepts every signature.
    assert_signed(&accepted, &secret);

    // A signed ping through the same path.
    let ping = server
        .post(&format!("{HOOKS}/{hook_id}/test"), &alice.key, json!({}))
        .await;
    assert_eq!(ping.status, 202, "{ping:?}");
    let ping_id = ping.body["id"].as_str().unwrap().to_string();
    receiver
        .wait_for("the ping", |hits| hits.iter().any(|h| h.id() == ping_id))
        .await;
    let ping_hit = receiver
        .hits()
        .into_iter()
        .find(|h| h.id() == ping_id)
        .unwrap();
    assert_eq!(ping_hit.json()["type"], "ping");
    assert_signed(&[ping_hit], &secret);
}

/// A write that rolls back records no event, so nothing is ever sent for it.
async fn a_rolled_back_write_sends_nothing(backend: Backend) {
    let server = TestServer::start_on_with(backend, fast).await;
    let alice = server.user("alice").await;
    let receiver = Receiver::ok().await;
    let hook = subscribe(&server, &alice, &receiver.url, &["action_item.created"]).await;
    let hook_id = hook["id"].as_str().unwrap();

    // The same id twice: the second insert fails and the whole batch rolls back.
    let doomed = ActionItem::new("doomed".into(), false, None, time::now());
    let refused = server
        .state
        .store
        .create_action_items(&alice.id, vec![doomed.clone(), doomed])
        .await;
    assert!(refused.is_err());

    let reply = server
        .post(
            "/v1/dev/user/action-items/batch",
            &alice.key,
            json!({"action_items": [{"description": "kept"}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let log = settled(&server, &alice, hook_id, 1).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    receiver
        .wait_for("the kept item", |hits| !hits.is_empty())
        .await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].json()["description"], "kept");
}

/// With the guard on (the default), loopback, private, link-local and metadata destinations
/// are refused at delivery, a name that resolves to loopback too; nothing reaches them.
async fn the_ssrf_guard_refuses_private_destinations(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        fast(s);
        s.webhook_allow_private = false;
    })
    .await;
    let alice = server.user("alice").await;
    let receiver = Receiver::ok().await;
    let port = receiver.url.rsplit(':').next().unwrap().to_string();
    for url in [
        receiver.url.clone(),
        "http://10.0.0.1/hook".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::1]:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let hook = subscribe(&server, &alice, &url, &["memory.created"]).await;
        let hook_id = hook["id"].as_str().unwrap();
        let ping = server
            .post(&format!("{HOOKS}/{hook_id}/test"), &alice.key, json!({}))
            .await;
        assert_eq!(ping.status, 202);
        let log = settled(&server, &alice, hook_id, 1).await;
        assert_eq!(log[0]["status"], "failed", "{url}: {log:#?}");
        assert!(
            log[0]["error"].as_str().unwrap().starts_with("refused"),
            "{url}: {log:#?}"
        );
        assert_eq!(
            log[0]["attempts"], 1,
            "a refused destination is not retried"
        );
    }
    assert!(receiver.hits().is_empty(), "{:#?}", receiver.hits());
}

/// Redirects are never followed (here with private addresses allowed, so that the first hop
/// is reachable at all): the target of the redirect gets nothing.
async fn redirects_are_not_followed(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        fast(s);
        s.webhook_retry_delays = "0.05,0.05".into();
    })
    .await;
    let alice = server.user("alice").await;
    let target = Receiver::ok().await;
    let location = format!("{}/elsewhere", target.url);
    let redirector = Receiver::start(move |_, _| Answer::Redirect(location.clone())).await;
    let hook = subscribe(&server, &alice, &redirector.url, &["memory.created"]).await;
    let hook_id = hook["id"].as_str().unwrap();
    server
        .post(&format!("{HOOKS}/{hook_id}/test"), &alice.key, json!({}))
        .await;
    let log = settled(&server, &alice, hook_id, 1).await;
    assert_eq!(log[0]["status"], "failed", "{log:#?}");
    assert_eq!(log[0]["response_status"], 302);
    assert_eq!(log[0]["attempts"], 3, "3xx is retried, as upstream does");
    assert_eq!(redirector.hits().len(), 3);
    assert!(target.hits().is_empty());
}

backend_tests!(
    subscriptions_are_managed_per_user_with_scopes_and_a_cap,
    deliveries_survive_failures_and_arrive_once_in_order_signed,
    a_rolled_back_write_sends_nothing,
    the_ssrf_guard_refuses_private_destinations,
    redirects_are_not_followed,
);

/// Two replicas on one PostgreSQL database: each event is delivered by exactly one of them.
#[tokio::test]
async fn two_replicas_deliver_each_event_once() {
    let Some(backend) = Backend::postgres_if_configured("webhooks::two_replicas") else {
        return;
    };
    let first = TestServer::start_on_with(backend, fast).await;
    let second = TestServer::start_in(tempfile::tempdir().unwrap(), first.settings()).await;
    let alice = first.user("alice").await;
    let receiver = Receiver::ok().await;
    let hook = subscribe(&first, &alice, &receiver.url, &["action_item.created"]).await;
    let hook_id = hook["id"].as_str().unwrap();
    for round in 0..4 {
        let server = if round % 2 == 0 { &first } else { &second };
        let items: Vec<Value> = (0..25)
            .map(|n| json!({"description": format!("item {round}-{n}")}))
            .collect();
        let reply = server
            .post(
                "/v1/dev/user/action-items/batch",
                &alice.key,
                json!({"action_items": items}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let log = settled(&first, &alice, hook_id, 100).await;
    assert_eq!(log.len(), 100);
    let hits = receiver.hits();
    let ids: HashSet<&str> = hits.iter().map(|h| h.id()).collect();
    assert_eq!(ids.len(), 100);
    assert_eq!(hits.len(), 100, "no event was sent twice");
    drop(second);
}
