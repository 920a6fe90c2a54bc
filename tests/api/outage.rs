//! PostgreSQL going away and coming back (ARCHITECTURE.md habit 8): requests answer 503
//! `Service unavailable` within the configured deadline instead of hanging, and service resumes
//! without a restart when the database is reachable again, with every acknowledged write kept.
//! The path to the database runs through a proxy the test controls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use omi_server::domain::credentials::Secret;
use reqwest::Method;
use serde_json::json;

use crate::common::pg_support::TestDatabase;
use crate::common::{Backend, Reply, TestServer, TestUser};
use crate::tcp_proxy::Proxy;

/// The server's database deadline in these tests.
const TIMEOUT_MS: u64 = 1_500;

async fn server_behind_proxy() -> (TestServer, Proxy) {
    let database = TestDatabase::create().await;
    let proxy = Proxy::start(database.server_address()).await;
    let url = database.url_through(proxy.addr);
    let mut server = TestServer::start_with(|settings| {
        settings.database_url = Secret::new(url);
        settings.pg_timeout_ms = TIMEOUT_MS;
    })
    .await;
    server.database = Some(Arc::new(database));
    (server, proxy)
}

/// Sends the request and checks it ends within the deadline plus a margin.
async fn timed(request: impl Future<Output = Reply>) -> Reply {
    let started = Instant::now();
    let reply = request.await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2 * TIMEOUT_MS + 1_000),
        "answered after {took:?}: {reply:?}"
    );
    reply
}

async fn assert_unavailable(server: &TestServer, alice: &TestUser) {
    timed(server.get("/v1/dev/key", &alice.key))
        .await
        .assert_error(503, "Service unavailable");
    timed(server.post(
        "/v1/dev/keys",
        &alice.account_token,
        json!({"name": "during the outage"}),
    ))
    .await
    .assert_error(503, "Service unavailable");
    let ready = timed(server.call(Method::GET, "/readyz", None, None)).await;
    assert_eq!(ready.status, 503, "{ready:?}");
}

/// Polls `/readyz` (bounded) until the database answers again.
async fn wait_until_ready(server: &TestServer) {
    for _ in 0..50 {
        if server.call(Method::GET, "/readyz", None, None).await.status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become ready again after the database came back");
}

async fn key_names(server: &TestServer, alice: &TestUser) -> Vec<String> {
    let listed = server.get("/v1/dev/keys", &alice.account_token).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["name"].as_str().unwrap().to_string())
        .collect()
}

async fn acknowledged_writes(server: &TestServer, alice: &TestUser, names: &[&str]) {
    for name in names {
        let created = server
            .post("/v1/dev/keys", &alice.account_token, json!({"name": name}))
            .await;
        assert_eq!(created.status, 200, "{created:?}");
    }
}

async fn a_cut_database_answers_503_quickly_and_service_resumes_without_restart(_backend: Backend) {
    let (server, proxy) = server_behind_proxy().await;
    let alice = server.user("alice").await;
    acknowledged_writes(&server, &alice, &["before 1", "before 2"]).await;

    proxy.cut();
    assert_unavailable(&server, &alice).await;

    proxy.restore();
    wait_until_ready(&server).await;
    assert_eq!(server.get("/v1/dev/key", &alice.key).await.status, 200);
    acknowledged_writes(&server, &alice, &["after"]).await;
    let names = key_names(&server, &alice).await;
    assert_eq!(names, ["after", "before 2", "before 1", "all"]);
}

async fn a_stalled_network_answers_503_within_the_deadline_instead_of_hanging(_backend: Backend) {
    let (server, proxy) = server_behind_proxy().await;
    let alice = server.user("alice").await;
    acknowledged_writes(&server, &alice, &["before"]).await;

    proxy.stall();
    assert_unavailable(&server, &alice).await;

    proxy.restore();
    wait_until_ready(&server).await;
    acknowledged_writes(&server, &alice, &["after"]).await;
    assert_eq!(
        key_names(&server, &alice).await,
        ["after", "before", "all"],
        "nothing acknowledged is lost; the transaction refused during the stall left nothing"
    );
}

/// Only the PostgreSQL variants: SQLite has no network path (its locked-database case is in
/// `errors.rs`).
mod postgres {
    use super::*;

    #[tokio::test]
    async fn a_cut_database_answers_503_quickly_and_service_resumes_without_restart() {
        if let Some(backend) = Backend::postgres_if_configured(module_path!()) {
            super::a_cut_database_answers_503_quickly_and_service_resumes_without_restart(backend)
                .await
        }
    }

    #[tokio::test]
    async fn a_stalled_network_answers_503_within_the_deadline_instead_of_hanging() {
        if let Some(backend) = Backend::postgres_if_configured(module_path!()) {
            super::a_stalled_network_answers_503_within_the_deadline_instead_of_hanging(backend)
                .await
        }
    }
}
