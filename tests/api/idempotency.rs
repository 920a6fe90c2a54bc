//! `Idempotency-Key` on POSTs under `/v1/dev/user/`: replay, a reused key with another body, a
//! retry while the first runs, refused requests retried, expiry, and scoping per key.

use chrono::Duration;
use omi_server::domain::time;
use omi_server::store::idempotency::{IdempotencyClaim, IdempotencyClock, IdempotencyScope};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, Reply, TestServer, TestUser};

const ITEMS: &str = "/v1/dev/user/action-items";

async fn post_with_key(
    server: &TestServer,
    token: &str,
    path: &str,
    idempotency_key: &str,
    body: Value,
) -> Reply {
    let response = server
        .client
        .request(Method::POST, server.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", idempotency_key)
        .json(&body)
        .send()
        .await
        .expect("request");
    Reply::from(response).await
}

async fn item_count(server: &TestServer, user: &TestUser) -> usize {
    let reply = server.get(ITEMS, &user.key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body.as_array().unwrap().len()
}

async fn a_retry_gets_the_first_answer_and_creates_nothing_more(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let user = server.user("alice").await;
    let body = json!({"description": "Call the bank"});
    let first = post_with_key(&server, &user.key, ITEMS, "retry-1", body.clone()).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = post_with_key(&server, &user.key, ITEMS, "retry-1", body).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(
        again.text, first.text,
        "the answer is replayed byte for byte"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("content-type"), Some("application/json"));
    assert_eq!(item_count(&server, &user).await, 1);
    // Without the header every POST creates.
    let plain = server
        .post(ITEMS, &user.key, json!({"description": "Call the bank"}))
        .await;
    assert_eq!(plain.status, 200);
    assert_eq!(item_count(&server, &user).await, 2);
}

async fn a_reused_key_with_another_body_is_refused_and_changes_nothing(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let user = server.user("alice").await;
    let first = post_with_key(&server, &user.key, ITEMS, "k", json!({"description": "A"})).await;
    assert_eq!(first.status, 200);
    let other = post_with_key(&server, &user.key, ITEMS, "k", json!({"description": "B"})).await;
    other.assert_error(422, "Idempotency-Key reused with a different request");
    // The same key on another path is another request.
    let batch = post_with_key(
        &server,
        &user.key,
        "/v1/dev/user/action-items/batch",
        "k",
        json!({"action_items": [{"description": "C"}]}),
    )
    .await;
    assert_eq!(batch.status, 200, "{batch:?}");
    assert_eq!(item_count(&server, &user).await, 2);
}

async fn a_retry_while_the_first_runs_gets_409(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let user = server.user("alice").await;
    let body = json!({"description": "Slow one"});
    let bytes = serde_json::to_vec(&body).unwrap();
    // The first request holds the claim, as one still running on this or another replica.
    let scope = IdempotencyScope {
        key_id: user.key_id.clone(),
        method: "POST".into(),
        path: ITEMS.into(),
        idempotency_key: "busy".into(),
    };
    let now = time::now();
    let claim = server
        .state
        .store
        .claim_idempotency_key(
            &scope,
            &omi_server::domain::idempotency::request_fingerprint("POST", ITEMS, &bytes),
            IdempotencyClock {
                now,
                expired_before: now - Duration::hours(24),
                abandoned_before: now - Duration::seconds(120),
            },
        )
        .await
        .unwrap();
    assert_eq!(claim, IdempotencyClaim::Run);
    let retry = post_with_key(&server, &user.key, ITEMS, "busy", body.clone()).await;
    retry.assert_error(
        409,
        "A request with this Idempotency-Key is still in progress",
    );
    assert_eq!(item_count(&server, &user).await, 0);
    // Once the first gives up without an answer, the retry runs.
    server
        .state
        .store
        .release_idempotency_key(&scope)
        .await
        .unwrap();
    let retry = post_with_key(&server, &user.key, ITEMS, "busy", body).await;
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(item_count(&server, &user).await, 1);
}

async fn a_refused_request_is_not_kept_and_its_retry_runs(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let user = server.user("alice").await;
    let blank = json!({"description": "  "});
    for _ in 0..2 {
        let refused = post_with_key(&server, &user.key, ITEMS, "fix-me", blank.clone()).await;
        refused.assert_error(422, "description cannot be empty");
        assert_eq!(refused.header("idempotent-replayed"), None);
    }
    let fixed = post_with_key(
        &server,
        &user.key,
        ITEMS,
        "fix-me",
        json!({"description": "Fixed"}),
    )
    .await;
    assert_eq!(fixed.status, 200, "{fixed:?}");
    // A key without the route's scope is refused and nothing is kept either.
    let reader = server.key_with(&user, &["action_items:read"]).await;
    let forbidden = post_with_key(
        &server,
        &reader,
        ITEMS,
        "scoped",
        json!({"description": "X"}),
    )
    .await;
    forbidden.assert_error(
        403,
        "Insufficient permissions. Required scope: action_items:write",
    );
    assert_eq!(item_count(&server, &user).await, 1);
}

async fn keys_are_scoped_to_the_developer_key_and_expire(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let user = server.user("alice").await;
    let second_key = server.key_with(&user, &["action_items:write"]).await;
    let body = json!({"description": "Same"});
    assert_eq!(
        post_with_key(&server, &user.key, ITEMS, "shared", body.clone())
            .await
            .status,
        200
    );
    let other = post_with_key(&server, &second_key, ITEMS, "shared", body).await;
    assert_eq!(other.status, 200);
    assert_eq!(
        other.header("idempotent-replayed"),
        None,
        "another key, another request"
    );
    assert_eq!(item_count(&server, &user).await, 2);

    // An answer kept 25 hours ago no longer counts: the key may carry a new request.
    let scope = IdempotencyScope {
        key_id: user.key_id.clone(),
        method: "POST".into(),
        path: ITEMS.into(),
        idempotency_key: "old".into(),
    };
    let long_ago = time::now() - Duration::hours(25);
    let store = &server.state.store;
    let clock = IdempotencyClock {
        now: long_ago,
        expired_before: long_ago - Duration::hours(24),
        abandoned_before: long_ago - Duration::seconds(120),
    };
    assert_eq!(
        store
            .claim_idempotency_key(&scope, "another body", clock)
            .await
            .unwrap(),
        IdempotencyClaim::Run
    );
    let fresh = post_with_key(
        &server,
        &user.key,
        ITEMS,
        "old",
        json!({"description": "New"}),
    )
    .await;
    assert_eq!(fresh.status, 200, "{fresh:?}");
    assert_eq!(fresh.header("idempotent-replayed"), None);
}

#[tokio::test]
async fn a_malformed_key_is_refused_before_anything_runs() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let long = "k".repeat(256);
    let reply = post_with_key(
        &server,
        &user.key,
        ITEMS,
        &long,
        json!({"description": "A"}),
    )
    .await;
    reply.assert_error(
        422,
        "Validation error: Idempotency-Key must be 1 to 255 visible ASCII characters",
    );
    assert_eq!(item_count(&server, &user).await, 0);
}

crate::backend_tests!(
    a_retry_gets_the_first_answer_and_creates_nothing_more,
    a_reused_key_with_another_body_is_refused_and_changes_nothing,
    a_retry_while_the_first_runs_gets_409,
    a_refused_request_is_not_kept_and_its_retry_runs,
    keys_are_scoped_to_the_developer_key_and_expire,
);
