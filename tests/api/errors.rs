//! The error layer of API.md §1.1: every layer answers `{"detail"}` JSON with the right status.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::{Backend, Reply, TestServer};

#[tokio::test]
async fn an_unknown_path_is_not_found_as_json_with_a_request_id() {
    let server = TestServer::start().await;
    let reply = server
        .call(Method::GET, "/v1/dev/nothing-here", None, None)
        .await;
    reply.assert_error(404, "Not Found");
    assert!(
        reply
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty())
    );
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_before_authentication() {
    let server = TestServer::start().await;
    let reply = server.call(Method::PUT, "/v1/dev/keys", None, None).await;
    reply.assert_error(405, "Method Not Allowed");
    let allow = reply.header("allow").expect("Allow header");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let dev = server.call(Method::DELETE, "/v1/dev/key", None, None).await;
    dev.assert_error(405, "Method Not Allowed");
}

#[tokio::test]
async fn a_request_id_is_echoed_when_acceptable_and_replaced_otherwise() {
    let server = TestServer::start().await;
    let echoed = server
        .client
        .get(server.url("/healthz"))
        .header("X-Request-Id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc-123");
    let too_long = "x".repeat(129);
    let replaced = server
        .client
        .get(server.url("/healthz"))
        .header("X-Request-Id", &too_long)
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(!id.is_empty() && id != too_long);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let response = server
        .client
        .post(server.url("/v1/dev/keys"))
        .bearer_auth(&alice.account_token)
        .header("Content-Type", "text/plain")
        .body(r#"{"name": "x"}"#)
        .send()
        .await
        .unwrap();
    Reply::from(response)
        .await
        .assert_error(415, "Content-Type must be application/json");
}

#[tokio::test]
async fn a_json_variant_content_type_with_charset_is_accepted() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let response = server
        .client
        .post(server.url("/v1/dev/keys"))
        .bearer_auth(&alice.account_token)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(r#"{"name": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let server = TestServer::start_with(|s| s.max_body_bytes = 1024).await;
    let alice = server.user("alice").await;
    let reply = server
        .post(
            "/v1/dev/keys",
            &alice.account_token,
            json!({"name": "x".repeat(2000)}),
        )
        .await;
    reply.assert_error(413, "Request body too large");
}

async fn malformed_json_and_wrong_types_are_422_naming_the_field(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let wrong_type = server
        .post("/v1/dev/keys", &alice.account_token, json!({"name": 5}))
        .await;
    wrong_type.assert_error(422, "Validation error: name must be a string");
    let wrong_list = server
        .post(
            "/v1/dev/keys",
            &alice.account_token,
            json!({"name": "k", "scopes": "memories:read"}),
        )
        .await;
    wrong_list.assert_error(422, "Validation error: scopes must be a sequence");
    let broken = server
        .client
        .post(server.url("/v1/dev/keys"))
        .bearer_auth(&alice.account_token)
        .header("Content-Type", "application/json")
        .body(r#"{"name": "#)
        .send()
        .await
        .unwrap();
    let broken = Reply::from(broken).await;
    assert_eq!(broken.status, 422);
    assert!(
        broken
            .detail()
            .starts_with("Validation error: body is not valid JSON")
    );
}

async fn a_missing_body_is_422(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    server
        .call(
            Method::POST,
            "/v1/dev/keys",
            Some(&alice.account_token),
            None,
        )
        .await
        .assert_error(422, "Validation error: body is required");
}

async fn authentication_comes_before_body_validation(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let response = server
        .client
        .post(server.url("/v1/dev/keys"))
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_locked_database_answers_503_and_recovers() {
    let server = TestServer::start_with(|s| s.sqlite_busy_timeout_ms = 100).await;
    let alice = server.user("alice").await;
    // Another process holding the write lock past the busy timeout.
    let blocker = rusqlite::Connection::open(server.db_path()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let reply = server
        .post(
            "/v1/dev/keys",
            &alice.account_token,
            json!({"name": "blocked"}),
        )
        .await;
    reply.assert_error(503, "Service unavailable");
    blocker.execute_batch("ROLLBACK;").unwrap();
    drop(blocker);
    let after = server
        .post(
            "/v1/dev/keys",
            &alice.account_token,
            json!({"name": "after"}),
        )
        .await;
    assert_eq!(after.status, 200, "{after:?}");
    let names: Vec<String> = server
        .get("/v1/dev/keys", &alice.account_token)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !names.contains(&"blocked".to_string()),
        "the failed write left nothing"
    );
}

async fn healthz_and_readyz_answer(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let health = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (health.status, health.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let ready = server.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, 200);
}

#[test]
fn a_panicking_handler_answers_500_and_logs_the_cause_under_the_request_id() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // One thread, so the subscriber sees the server's events too.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let router = omi_server::app::with_standard_layers(
                axum::Router::new().route(
                    "/boom",
                    axum::routing::get(|| async {
                        panic!("kaboom in handler");
                        #[allow(unreachable_code)]
                        ""
                    }),
                ),
                &omi_server::config::Settings::defaults(),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, router).await });
            let response = omi_server::outbound::Outbound::system()
                .http_client()
                .build()
                .unwrap()
                .get(format!("http://{addr}/boom"))
                .header("X-Request-Id", "req-panic-1")
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap();
            let reply = Reply::from(response).await;
            reply.assert_error(500, "Internal server error");
            assert_eq!(reply.header("x-request-id"), Some("req-panic-1"));
            assert!(!reply.text.contains("kaboom"), "the cause is never echoed");
        });
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|line| line.contains("kaboom in handler"))
        .unwrap_or_else(|| panic!("panic not logged: {log}"));
    assert!(line.contains("req-panic-1"), "{line}");
}

crate::backend_tests!(
    malformed_json_and_wrong_types_are_422_naming_the_field,
    a_missing_body_is_422,
    authentication_comes_before_body_validation,
    healthz_and_readyz_answer,
);
