//! The llm backend's tests once more, with the fake model served over HTTPS by a certificate from
//! a CA made in the test and trusted through `OMI_EXTRA_CA_FILE`; and what happens when the
//! certificate is not trusted.

#[path = "api/common.rs"]
mod common;
#[path = "support/fake_llm.rs"]
mod fake_llm;
#[path = "api/llm.rs"]
mod llm;

/// How `llm` reaches its fake model in this crate.
pub const LLM_TRANSPORT: fake_llm::Transport = fake_llm::Transport::Https;

use std::sync::{Arc, Mutex};

use omi_server::processing::llm::prompts::Step;
use omi_server::state;
use serde_json::json;

use common::{TestServer, test_settings};
use fake_llm::{FakeLlm, Transport};

const MODEL: &str = "test-model";

fn structure() -> serde_json::Value {
    json!({"title": "Dentist Call", "overview": "Alice has to call the dentist.",
           "emoji": "🦷", "category": "health", "events": []})
}

async fn fake() -> FakeLlm {
    FakeLlm::answering_over(
        Transport::Https,
        vec![
            (Step::Structure, structure()),
            (Step::ActionItems, json!({"action_items": []})),
            (Step::Memories, json!({"memories": []})),
        ],
    )
    .await
}

/// Creates a note and returns it as stored.
async fn create(server: &TestServer, user: &common::TestUser) -> serde_json::Value {
    let reply = server
        .post("/v1/dev/user/conversations", &user.key, note())
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap();
    server
        .get(&format!("/v1/dev/user/conversations/{id}"), &user.key)
        .await
        .body
}

fn note() -> serde_json::Value {
    json!({"text": "I need to call the dentist tomorrow about my crown.",
           "started_at": "2030-01-15T10:00:00Z"})
}

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

/// Runs `test` on one thread with a subscriber that sees the server's events; returns the log.
fn logged(test: impl AsyncFnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(test()));
    String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn an_untrusted_certificate_falls_back_to_offline_processing_and_says_why() {
    let log = logged(async || {
        let fake = fake().await;
        // The fake's CA is not given: its certificate chains to nothing the server trusts.
        let base_url = fake.base_url.clone();
        let server = TestServer::start_with(|s| {
            s.llm_base_url = Some(base_url);
            s.llm_model = Some(MODEL.into());
        })
        .await;
        let alice = server.user("alice").await;
        let stored = create(&server, &alice).await;
        assert_eq!(stored["processed_by"], "offline", "{stored}");
        assert!(
            fake.received().is_empty(),
            "no request gets past the handshake"
        );
    });
    let line = log
        .lines()
        .find(|line| line.contains("model step failed"))
        .unwrap_or_else(|| panic!("the fallback is not logged: {log}"));
    assert!(
        line.contains("certificate") && line.contains("UnknownIssuer"),
        "the reason names the certificate problem: {line}"
    );
}

#[test]
fn skipping_verification_reaches_an_untrusted_server_and_warns_at_start() {
    let log = logged(async || {
        let fake = fake().await;
        let base_url = fake.base_url.clone();
        let server = TestServer::start_with(|s| {
            s.llm_base_url = Some(base_url);
            s.llm_model = Some(MODEL.into());
            s.tls_insecure_skip_verify = true;
        })
        .await;
        let alice = server.user("alice").await;
        let stored = create(&server, &alice).await;
        assert_eq!(stored["processed_by"], "llm", "{stored}");
        assert_eq!(stored["structured"]["title"], "Dentist Call");
    });
    assert!(
        log.lines()
            .any(|line| line.contains("WARN") && line.contains("OMI_TLS_INSECURE_SKIP_VERIFY")),
        "{log}"
    );
}

#[tokio::test]
async fn an_unreadable_extra_ca_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    settings.extra_ca_file = Some(dir.path().join("missing-ca.pem"));
    let error = state::build_state(settings).await.err().unwrap();
    let message = format!("{error:#}");
    assert!(
        message.contains("OMI_EXTRA_CA_FILE") && message.contains("missing-ca.pem"),
        "{message}"
    );
}
