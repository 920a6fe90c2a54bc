//! An in-process OpenAI-compatible chat-completions server on 127.0.0.1:0 that answers what a
//! test tells it and records every request, shared by several test crates. Over plain HTTP, or
//! over HTTPS with a certificate from a CA made for it (its PEM in `ca_file`).

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use omi_server::processing::llm::prompts::Step;
use serde_json::{Value, json};

/// What the fake answers to one request.
#[derive(Debug, Clone)]
pub enum FakeReply {
    /// HTTP 200 with a chat completion whose message content is this text.
    Answer(String),
    /// This status with an OpenAI-style error body.
    Status(u16),
    /// Waits this long, then answers.
    Slow(Duration, Box<FakeReply>),
}

impl FakeReply {
    /// An answer holding this JSON value, as a server enforcing the schema would give it.
    pub fn json(value: Value) -> FakeReply {
        FakeReply::Answer(value.to_string())
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub authorization: Option<String>,
    pub body: Value,
}

impl Received {
    pub fn step(&self) -> Step {
        step_of(&self.body)
    }

    pub fn system(&self) -> &str {
        self.body["messages"][0]["content"].as_str().unwrap_or("")
    }

    pub fn user(&self) -> &str {
        self.body["messages"][1]["content"].as_str().unwrap_or("")
    }

    pub fn response_format_type(&self) -> Option<&str> {
        self.body["response_format"]["type"].as_str()
    }
}

/// The step a request asks about, told by its system prompt.
pub fn step_of(body: &Value) -> Step {
    let system = body["messages"][0]["content"].as_str().unwrap_or("");
    Step::ALL
        .into_iter()
        .find(|step| system.starts_with(step.system_prompt()))
        .expect("the system prompt is one of the steps'")
}

#[path = "tls.rs"]
pub mod tls;

/// How the fake is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    /// HTTPS at `https://127.0.0.1:<port>/v1`, with a certificate for `127.0.0.1` and
    /// `localhost` from a CA of its own.
    Https,
}

type Answerer = dyn Fn(&Received) -> FakeReply + Send + Sync;

#[derive(Clone)]
struct Shared {
    answer: Arc<Answerer>,
    received: Arc<parking_lot::Mutex<Vec<Received>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

pub struct FakeLlm {
    /// Up to and including `/v1`, as `OMI_LLM_BASE_URL` takes it.
    pub base_url: String,
    /// Over HTTPS: the CA that issued the fake's certificate (`ca.ca_file` is its PEM).
    pub ca: Option<tls::TestCa>,
    shared: Shared,
}

impl FakeLlm {
    pub async fn start(answer: impl Fn(&Received) -> FakeReply + Send + Sync + 'static) -> Self {
        Self::start_over(Transport::Http, answer).await
    }

    /// The PEM file of the CA to trust for this fake, over HTTPS.
    pub fn ca_file(&self) -> Option<std::path::PathBuf> {
        self.ca.as_ref().map(|ca| ca.ca_file.clone())
    }

    pub async fn start_over(
        transport: Transport,
        answer: impl Fn(&Received) -> FakeReply + Send + Sync + 'static,
    ) -> Self {
        let shared = Shared {
            answer: Arc::new(answer),
            received: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        match transport {
            Transport::Http => {
                tokio::spawn(async move { axum::serve(listener, app).await });
                FakeLlm {
                    base_url: format!("http://{address}/v1"),
                    ca: None,
                    shared,
                }
            }
            Transport::Https => {
                let ca = tls::TestCa::new("omi-server test model CA");
                let certificate = ca.issue(&["127.0.0.1", "localhost"]);
                serve_tls(listener, certificate.server_config(), app);
                FakeLlm {
                    base_url: format!("https://{address}/v1"),
                    ca: Some(ca),
                    shared,
                }
            }
        }
    }

    /// Answers each step with the given JSON (steps not listed get HTTP 500).
    pub async fn answering(answers: Vec<(Step, Value)>) -> Self {
        Self::answering_over(Transport::Http, answers).await
    }

    /// [`Self::answering`] over `transport`.
    pub async fn answering_over(transport: Transport, answers: Vec<(Step, Value)>) -> Self {
        Self::start_over(transport, move |request| {
            answers
                .iter()
                .find(|(step, _)| *step == request.step())
                .map_or(FakeReply::Status(500), |(_, value)| {
                    FakeReply::json(value.clone())
                })
        })
        .await
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().clone()
    }

    pub fn received_for(&self, step: Step) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.step() == step)
            .collect()
    }

    /// The most requests that were being answered at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn complete(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let received = Received {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
    };
    shared.received.lock().push(received.clone());
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    // Counts the request as finished even when the client gives up and the handler is dropped.
    let _in_flight = InFlight(shared.in_flight.clone());
    respond((shared.answer)(&received)).await
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn respond(mut reply: FakeReply) -> Response {
    loop {
        match reply {
            FakeReply::Slow(delay, then) => {
                tokio::time::sleep(delay).await;
                reply = *then;
            }
            FakeReply::Status(status) => {
                let status = StatusCode::from_u16(status).unwrap();
                let error = json!({"error": {"message": "fake failure", "type": "server_error"}});
                return (status, Json(error)).into_response();
            }
            FakeReply::Answer(content) => {
                return Json(json!({
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "model": "fake",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                }))
                .into_response();
            }
        }
    }
}

/// Serves `app` over TLS on `listener`: each accepted connection does its handshake in its own
/// task (a failed handshake just ends that connection) and is then served as HTTP/1.1.
pub fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: Router,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
