//! Developer key management (API.md §2.2-2.4).

use reqwest::Method;
use serde_json::json;

use crate::common::{Backend, TestServer};

const READ_SCOPES: [&str; 4] = [
    "conversations:read",
    "memories:read",
    "action_items:read",
    "goals:read",
];

async fn creating_a_key_returns_it_once_with_the_read_only_default_scopes(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let reply = server.create_key(&alice, "  laptop  ", None).await;
    let key = reply.body["key"].as_str().unwrap();
    assert!(key.starts_with("omi_dev_") && key.len() == 40, "{key}");
    let secret = &key[8..];
    assert_eq!(reply.body["name"], "laptop");
    assert_eq!(
        reply.body["key_prefix"],
        format!("omi_dev_{}...{}", &secret[..4], &secret[28..])
    );
    assert_eq!(reply.body["scopes"], json!(READ_SCOPES));
    assert_eq!(reply.body["last_used_at"], json!(null));
    assert!(reply.body["created_at"].as_str().unwrap().ends_with('Z'));

    let listed = server.get("/v1/dev/keys", &alice.account_token).await;
    assert_eq!(listed.status, 200);
    let keys = listed.body.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["id"], reply.body["id"], "newest first");
    assert!(
        keys.iter().all(|k| k.get("key").is_none()),
        "raw keys are never listed"
    );
}

async fn scopes_are_deduplicated_and_returned_in_canonical_order(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let reply = server
        .create_key(
            &alice,
            "k",
            Some(&["goals:write", "memories:read", "goals:write"]),
        )
        .await;
    assert_eq!(
        reply.body["scopes"],
        json!(["memories:read", "goals:write"])
    );
}

async fn a_key_with_no_scopes_can_only_read_itself(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let key = server.key_with(&alice, &[]).await;
    let me = server.get("/v1/dev/key", &key).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["scopes"], json!([]));
}

async fn an_unknown_scope_is_a_bad_request(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let reply = server
        .post(
            "/v1/dev/keys",
            &alice.account_token,
            json!({"name": "k", "scopes": ["memories:read", "memories:delete"]}),
        )
        .await;
    reply.assert_error(
        400,
        "Invalid scopes. Available: conversations:read, conversations:write, memories:read, memories:write, action_items:read, action_items:write, goals:read, goals:write, ingest:write, webhooks:read, webhooks:write",
    );
}

async fn key_names_must_not_be_blank_or_too_long(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let blank = server
        .post("/v1/dev/keys", &alice.account_token, json!({"name": "   "}))
        .await;
    blank.assert_error(422, "Key name cannot be empty");
    let long = server
        .post(
            "/v1/dev/keys",
            &alice.account_token,
            json!({"name": "x".repeat(101)}),
        )
        .await;
    assert_eq!(long.status, 422, "{long:?}");
    let missing = server
        .post("/v1/dev/keys", &alice.account_token, json!({}))
        .await;
    missing.assert_error(422, "Validation error: name is required");
}

async fn a_user_holds_at_most_100_keys(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await; // holds one key already
    for i in 1..100 {
        server.create_key(&alice, &format!("k{i}"), None).await;
    }
    let over = server
        .post(
            "/v1/dev/keys",
            &alice.account_token,
            json!({"name": "one too many"}),
        )
        .await;
    over.assert_error(422, "Maximum 100 API keys per user");
    let listed = server.get("/v1/dev/keys", &alice.account_token).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 100);
}

async fn the_current_key_route_describes_the_calling_key(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let me = server.get("/v1/dev/key", &alice.key).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], alice.key_id.as_str());
    assert_eq!(me.body["scopes"].as_array().unwrap().len(), 11);
    assert!(me.body.get("key").is_none());
}

async fn last_used_at_is_recorded_when_a_key_authenticates(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let first = server.get("/v1/dev/key", &alice.key).await;
    assert_eq!(
        first.body["last_used_at"],
        json!(null),
        "shows the state before this use"
    );
    let second = server.get("/v1/dev/key", &alice.key).await;
    let used = second.body["last_used_at"].as_str().expect("recorded");
    // Within the 60 s window the stored value does not move.
    let third = server.get("/v1/dev/key", &alice.key).await;
    assert_eq!(third.body["last_used_at"].as_str(), Some(used));
}

async fn rotation_kills_the_old_secret_at_once_and_keeps_the_identity(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    server.get("/v1/dev/key", &alice.key).await; // sets last_used_at
    let rotated = server
        .call(
            Method::POST,
            &format!("/v1/dev/keys/{}/rotate", alice.key_id),
            Some(&alice.account_token),
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    assert_eq!(rotated.body["id"], alice.key_id.as_str());
    assert_eq!(rotated.body["name"], "all");
    assert_eq!(rotated.body["scopes"].as_array().unwrap().len(), 11);
    assert_eq!(rotated.body["last_used_at"], json!(null));
    let new_key = rotated.body["key"].as_str().unwrap();
    assert_ne!(new_key, alice.key);

    server
        .get("/v1/dev/key", &alice.key)
        .await
        .assert_error(401, "Invalid API key");
    assert_eq!(server.get("/v1/dev/key", new_key).await.status, 200);
}

async fn revocation_takes_effect_on_the_next_request(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    assert_eq!(server.get("/v1/dev/key", &alice.key).await.status, 200);
    let deleted = server
        .delete(
            &format!("/v1/dev/keys/{}", alice.key_id),
            &alice.account_token,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.text.is_empty());
    server
        .get("/v1/dev/key", &alice.key)
        .await
        .assert_error(401, "Invalid API key");
    server
        .delete(
            &format!("/v1/dev/keys/{}", alice.key_id),
            &alice.account_token,
        )
        .await
        .assert_error(404, "API key not found");
}

async fn another_users_key_id_is_not_found(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    server
        .delete(
            &format!("/v1/dev/keys/{}", bob.key_id),
            &alice.account_token,
        )
        .await
        .assert_error(404, "API key not found");
    server
        .call(
            Method::POST,
            &format!("/v1/dev/keys/{}/rotate", bob.key_id),
            Some(&alice.account_token),
            None,
        )
        .await
        .assert_error(404, "API key not found");
    assert_eq!(
        server.get("/v1/dev/key", &bob.key).await.status,
        200,
        "bob's key untouched"
    );
    let alice_keys = server.get("/v1/dev/keys", &alice.account_token).await;
    assert!(
        alice_keys
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != bob.key_id.as_str()),
        "lists never mix users"
    );
}

async fn an_id_that_cannot_exist_is_not_found(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    server
        .delete("/v1/dev/keys/..%2F..%2Fetc", &alice.account_token)
        .await
        .assert_error(404, "API key not found");
}

async fn developer_keys_cannot_manage_keys(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    for (method, path) in [
        (Method::GET, "/v1/dev/keys".to_string()),
        (Method::POST, "/v1/dev/keys".to_string()),
        (
            Method::POST,
            format!("/v1/dev/keys/{}/rotate", alice.key_id),
        ),
        (Method::DELETE, format!("/v1/dev/keys/{}", alice.key_id)),
    ] {
        let body = (method == Method::POST).then(|| json!({"name": "x"}));
        server
            .call(method, &path, Some(&alice.key), body)
            .await
            .assert_error(
                401,
                "Account token required: developer API keys cannot manage keys",
            );
    }
}

async fn account_tokens_are_not_developer_keys(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    server
        .get("/v1/dev/key", &alice.account_token)
        .await
        .assert_error(401, "Invalid API key");
}

async fn missing_malformed_and_unknown_credentials_are_refused(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let _alice = server.user("alice").await;
    for path in ["/v1/dev/key", "/v1/dev/keys"] {
        let none = server.call(Method::GET, path, None, None).await;
        none.assert_error(
            401,
            "Missing or invalid Authorization header. Must be 'Bearer API_KEY'",
        );
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        let basic = server
            .client
            .get(server.url(path))
            .header("Authorization", "Basic abc")
            .send()
            .await
            .unwrap();
        crate::common::Reply::from(basic).await.assert_error(
            401,
            "Missing or invalid Authorization header. Must be 'Bearer API_KEY'",
        );
        let unknown = format!("omi_acct_{}", "0".repeat(32));
        for token in ["garbage", "omi_acct_short", unknown.as_str()] {
            server
                .get(path, token)
                .await
                .assert_error(401, "Invalid API key");
        }
    }
    let unknown_dev = format!("omi_dev_{}", "a".repeat(32));
    for token in ["omi_dev_short", unknown_dev.as_str()] {
        let reply = server.get("/v1/dev/key", token).await;
        reply.assert_error(401, "Invalid API key");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let reply = server
        .client
        .get(server.url("/v1/dev/key"))
        .header("Authorization", format!("bEaReR {}", alice.key))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

async fn keys_and_users_survive_a_restart(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let restarted = server.restart().await;
    assert_eq!(restarted.get("/v1/dev/key", &alice.key).await.status, 200);
    let listed = restarted.get("/v1/dev/keys", &alice.account_token).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}

async fn the_key_cap_holds_under_concurrent_creation(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await; // holds one key already
    let attempts = (0..130).map(|i| {
        server.post(
            "/v1/dev/keys",
            &alice.account_token,
            json!({"name": format!("racer {i}")}),
        )
    });
    let replies = futures::future::join_all(attempts).await;
    let created = replies.iter().filter(|r| r.status == 200).count();
    for refused in replies.iter().filter(|r| r.status != 200) {
        refused.assert_error(422, "Maximum 100 API keys per user");
    }
    assert_eq!(created, 99);
    let listed = server.get("/v1/dev/keys", &alice.account_token).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 100);
}

crate::backend_tests!(
    creating_a_key_returns_it_once_with_the_read_only_default_scopes,
    scopes_are_deduplicated_and_returned_in_canonical_order,
    a_key_with_no_scopes_can_only_read_itself,
    an_unknown_scope_is_a_bad_request,
    key_names_must_not_be_blank_or_too_long,
    a_user_holds_at_most_100_keys,
    the_current_key_route_describes_the_calling_key,
    last_used_at_is_recorded_when_a_key_authenticates,
    rotation_kills_the_old_secret_at_once_and_keeps_the_identity,
    revocation_takes_effect_on_the_next_request,
    another_users_key_id_is_not_found,
    an_id_that_cannot_exist_is_not_found,
    developer_keys_cannot_manage_keys,
    account_tokens_are_not_developer_keys,
    missing_malformed_and_unknown_credentials_are_refused,
    the_bearer_scheme_is_case_insensitive,
    keys_and_users_survive_a_restart,
    the_key_cap_holds_under_concurrent_creation,
);
