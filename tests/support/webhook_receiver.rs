//! A webhook receiver on 127.0.0.1 whose answers a test scripts (fail, hang, 410, 429,
//! redirect, answer slowly, send an endless body, succeed), recording every request it gets
//! with its arrival time and how many requests were in flight per path at once, and
//! signature verification by an
//! independent verifier: the official `standardwebhooks` Python package when the virtual
//! environment `.ci/run` prepares exists (target/pyenv), else a from-specification check
//! written here (not the server's code).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use parking_lot::Mutex;
use serde_json::Value;

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
pub struct Hit {
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub answered: u16,
    /// When the request arrived.
    pub at: Instant,
    /// The receiver's generation when the request's connection was accepted
    /// ([`Receiver::next_generation`]).
    pub generation: usize,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn id(&self) -> &str {
        self.header("webhook-id").unwrap_or_default()
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn event(&self) -> &str {
        self.header("x-omi-event").unwrap_or_default()
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// A status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Never answer in time (the server's timeout fires).
    Hang,
    /// `302` to the location.
    Redirect(String),
    /// The status after a pause (the request counts as in flight meanwhile).
    Slow(u16, Duration),
    /// `200` with a body that keeps coming (for a minute) until the client goes away.
    Endless,
}

type Script = Box<dyn Fn(usize, &Hit) -> Answer + Send + Sync>;

pub struct Receiver {
    pub url: String,
    hits: Mutex<Vec<Hit>>,
    script: Script,
    /// Per request path: requests in flight now, and the most there ever were at once.
    in_flight: Mutex<HashMap<String, (usize, usize)>>,
    /// Stamped on every connection when it is accepted (shared with the listener's
    /// [`Generation`]s).
    generation: Arc<AtomicUsize>,
}

/// The generation a connection was accepted in. A request reaching the receiver late still
/// carries the generation of its connection, so a test can tell the requests of a killed
/// server (its connections were all accepted before the kill) from those of its successor,
/// however late the former are read.
#[derive(Clone)]
struct Generation(usize);

/// The counter the listener reads at each accepted connection.
static LISTENER_GENERATIONS: Mutex<Vec<(std::net::SocketAddr, Arc<AtomicUsize>)>> =
    Mutex::new(Vec::new());

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Generation {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        let local = stream.io().local_addr().ok();
        let generation = LISTENER_GENERATIONS
            .lock()
            .iter()
            .find(|(address, _)| Some(*address) == local)
            .map_or(0, |(_, counter)| counter.load(Ordering::SeqCst));
        Generation(generation)
    }
}

/// Counts a request as in flight until it is answered or its client goes away.
struct InFlight {
    receiver: Arc<Receiver>,
    path: String,
}

impl InFlight {
    fn enter(receiver: &Arc<Receiver>, path: &str) -> Self {
        let mut counts = receiver.in_flight.lock();
        let entry = counts.entry(path.to_string()).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(entry.0);
        InFlight {
            receiver: receiver.clone(),
            path: path.to_string(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(entry) = self.receiver.in_flight.lock().get_mut(&self.path) {
            entry.0 -= 1;
        }
    }
}

impl Receiver {
    /// Answers each request (numbered from 0) as `script` says.
    pub async fn start(
        script: impl Fn(usize, &Hit) -> Answer + Send + Sync + 'static,
    ) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let generation = Arc::new(AtomicUsize::new(0));
        LISTENER_GENERATIONS
            .lock()
            .push((address, generation.clone()));
        let receiver = Arc::new(Receiver {
            url: format!("http://{address}"),
            hits: Mutex::new(Vec::new()),
            script: Box::new(script),
            in_flight: Mutex::new(HashMap::new()),
            generation,
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(receiver.clone());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<Generation>(),
            )
            .await
        });
        receiver
    }

    /// Starts a new generation: connections accepted from now on carry the next number.
    /// Connections opened before (a killed server's) keep theirs.
    pub fn next_generation(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Always 200.
    pub async fn ok() -> Arc<Self> {
        Self::start(|_, _| Answer::Status(200)).await
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().clone()
    }

    /// The most requests to `path` that were in flight at once.
    pub fn max_in_flight(&self, path: &str) -> usize {
        self.in_flight.lock().get(path).map_or(0, |c| c.1)
    }

    /// The requests answered with a 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|hit| (200..300).contains(&hit.answered))
            .collect()
    }

    /// Waits (bounded) until `done` holds for the hits so far.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Hit]) -> bool) {
        for _ in 0..600 {
            if done(&self.hits()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "receiver: gave up waiting for {what}; got {:#?}",
            self.hits()
        );
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    ConnectInfo(Generation(generation)): ConnectInfo<Generation>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut hit = Hit {
        uri: uri.to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        answered: 0,
        at: Instant::now(),
        generation,
    };
    let _in_flight = InFlight::enter(&receiver, uri.path());
    let number = receiver.hits.lock().len();
    let answer = (receiver.script)(number, &hit);
    hit.answered = match &answer {
        Answer::Status(status) | Answer::RetryAfter(status, _) => *status,
        Answer::Hang => 0,
        Answer::Redirect(_) => 302,
        Answer::Slow(status, _) => *status,
        Answer::Endless => 200,
    };
    receiver.hits.lock().push(hit);
    match answer {
        Answer::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Answer::RetryAfter(status, seconds) => (
            StatusCode::from_u16(status).unwrap(),
            [("retry-after", seconds.to_string())],
        )
            .into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        Answer::Redirect(location) => (StatusCode::FOUND, [("location", location)]).into_response(),
        Answer::Slow(status, pause) => {
            tokio::time::sleep(pause).await;
            StatusCode::from_u16(status).unwrap().into_response()
        }
        Answer::Endless => {
            // 64 KiB every 10 ms, for a minute at most: reading it all takes longer than any
            // timeout a test sets, whatever the machine's speed.
            let chunks = futures::stream::unfold(0u32, |sent| async move {
                if sent > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (sent < 6_000).then(|| {
                    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                    (Ok::<_, std::io::Error>(chunk), sent + 1)
                })
            });
            axum::body::Body::from_stream(chunks).into_response()
        }
    }
}

/// The Python interpreter of the environment holding the official `standardwebhooks` package.
fn python_verifier() -> Option<std::path::PathBuf> {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import standardwebhooks"])
        .output()
        .is_ok_and(|out| out.status.success());
    ok.then_some(python)
}

/// Checks every hit's signature against `secret`; panics naming the first that fails.
pub fn assert_signed(hits: &[Hit], secret: &str) {
    assert!(!hits.is_empty());
    match python_verifier() {
        Some(python) => verify_with_python(&python, hits, secret),
        None => {
            eprintln!(
                "the standardwebhooks Python package is not installed in target/pyenv \
                 (.ci/run installs it); verifying from the specification instead"
            );
            for hit in hits {
                verify_from_spec(hit, secret);
            }
        }
    }
}

fn verify_with_python(python: &std::path::Path, hits: &[Hit], secret: &str) {
    let cases: Vec<Value> = hits
        .iter()
        .map(|hit| {
            serde_json::json!({
                "body": hit.body,
                "headers": {
                    "webhook-id": hit.header("webhook-id"),
                    "webhook-timestamp": hit.header("webhook-timestamp"),
                    "webhook-signature": hit.header("webhook-signature"),
                },
            })
        })
        .collect();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
data = json.load(sys.stdin)
hook = Webhook(data["secret"])
for i, case in enumerate(data["cases"]):
    try:
        hook.verify(case["body"], case["headers"])
    except Exception as error:
        print(f"case {i} ({case['headers']['webhook-id']}): {error!r}")
        sys.exit(1)
# A changed body must fail.
bad = dict(data["cases"][0])
try:
    hook.verify(bad["body"] + " ", bad["headers"])
    print("a tampered body verified")
    sys.exit(1)
except Exception:
    pass
print("verified", len(data["cases"]))
"#;
    let input = serde_json::json!({"secret": secret, "cases": cases}).to_string();
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "standardwebhooks refused a signature: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Standard Webhooks rule, written from the specification: HMAC-SHA256 keyed with the
/// base64 after `whsec_`, over `id.timestamp.body`, base64, prefixed `v1,`.
fn verify_from_spec(hit: &Hit, secret: &str) {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(secret.strip_prefix("whsec_").expect("whsec_ secret"))
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    let signed = format!(
        "{}.{}.{}",
        hit.id(),
        hit.header("webhook-timestamp").unwrap(),
        hit.body
    );
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", engine.encode(mac.finalize().into_bytes()));
    let given = hit.header("webhook-signature").unwrap();
    assert!(
        given.split(' ').any(|s| s == expected),
        "bad signature on {}",
        hit.id()
    );
}
