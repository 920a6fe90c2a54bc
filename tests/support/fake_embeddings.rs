//! An in-process OpenAI-compatible embeddings server on 127.0.0.1:0 (`POST /v1/embeddings`),
//! deterministic, shared by several test crates.
//!
//! It answers like a real server: `{"object": "list", "data": [{"object": "embedding",
//! "index": i, "embedding": [...]}], "model", "usage"}` (the items in reverse order, which the
//! client must put back by `index`), and OpenAI's error bodies for a bad request, a wrong key or
//! an outage. A test can switch it to answer 503, slowly, or with another dimension.
//!
//! The vectors stand in for a semantic model: each word adds its character trigrams (so a
//! misspelling lands near the word) and its concept from a small table of related words (so a
//! paraphrase lands near what it paraphrases), hashed into `DIMENSION` dimensions, normalised.

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
use parking_lot::Mutex;
use serde_json::{Value, json};

pub const DIMENSION: usize = 256;

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Normal,
    /// 503 with an OpenAI-style error body.
    Down,
    /// Waits this long, then answers.
    Slow(Duration),
    /// Vectors of this many dimensions.
    Dimension(usize),
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    api_key: Option<String>,
    requests: AtomicUsize,
    texts: AtomicUsize,
}

pub struct FakeEmbeddings {
    /// Up to `/v1`, as `OMI_EMBEDDINGS_BASE_URL` takes it.
    pub base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEmbeddings {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeEmbeddings {
    pub async fn start() -> FakeEmbeddings {
        FakeEmbeddings::start_with_key(None).await
    }

    /// A server that wants `Authorization: Bearer <key>`.
    pub async fn start_with_key(api_key: Option<&str>) -> FakeEmbeddings {
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(Behaviour::Normal),
            api_key: api_key.map(str::to_string),
            requests: AtomicUsize::new(0),
            texts: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake embeddings server");
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeEmbeddings {
            base_url,
            shared,
            task,
        }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock() = behaviour;
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Texts embedded so far (successful answers only).
    pub fn texts(&self) -> usize {
        self.shared.texts.load(Ordering::SeqCst)
    }
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": code}})),
    )
        .into_response()
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(key) = &shared.api_key {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(key.as_str()) {
            return openai_error(
                StatusCode::UNAUTHORIZED,
                "Incorrect API key provided.",
                "invalid_request_error",
                Some("invalid_api_key"),
            );
        }
    }
    let behaviour = *shared.behaviour.lock();
    match behaviour {
        Behaviour::Down => {
            return openai_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is overloaded or not ready yet.",
                "server_error",
                None,
            );
        }
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::Normal | Behaviour::Dimension(_) => {}
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
        );
    };
    let Some(model) = request["model"].as_str() else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "you must provide a model parameter",
            "invalid_request_error",
            None,
        );
    };
    let inputs: Vec<String> = match &request["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .map(|item| item.as_str().unwrap().to_string())
            .collect(),
        _ => Vec::new(),
    };
    if inputs.is_empty() || inputs.iter().any(|text| text.is_empty()) {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            "invalid_request_error",
            None,
        );
    }
    let dimension = match behaviour {
        Behaviour::Dimension(dimension) => dimension,
        _ => DIMENSION,
    };
    shared.texts.fetch_add(inputs.len(), Ordering::SeqCst);
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(index, text)| {
            json!({"object": "embedding", "index": index, "embedding": embed(text, dimension)})
        })
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .into_response()
}

/// Related words: each word of a group shares the group's concept.
const CONCEPTS: &[&[&str]] = &[
    &["sick", "ill", "allergic", "allergy", "intolerant", "epipen"],
    &["race", "marathon", "running", "run", "runner"],
    &["boss", "manager", "reports", "supervisor", "head"],
    &["pet", "cat", "dog", "kitten", "puppy"],
    &["loan", "mortgage", "credit", "rate"],
    &["work", "commute", "commutes", "office", "job"],
    &["instrument", "guitar", "piano", "music", "violin"],
    &["coffee", "flat", "latte", "espresso", "caffeine"],
    &[
        "sleep",
        "sleeping",
        "sleeps",
        "asleep",
        "insomnia",
        "sleepless",
    ],
    &["parents", "mother", "father", "mum", "dad"],
    &["doctor", "gp", "physician", "clinic", "appointment"],
    &["holiday", "vacation", "trip", "travel", "booked"],
    &["database", "outage", "down", "postmortem", "disk"],
    &["school", "teacher", "maths", "reading", "pupil"],
    &["candidate", "hiring", "hire", "offer", "recruit"],
    &["married", "wedding", "marriage", "marry"],
    &["soup", "bouillabaisse", "stew"],
    &["grandmother", "grandma", "grand", "mère", "mere"],
    &["fixed", "variable", "interest"],
];

const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "am", "i", "my", "me", "we", "our", "to", "of", "in", "on",
    "at", "for", "and", "or", "do", "did", "does", "what", "which", "who", "where", "when", "how",
    "why", "with", "about", "anything", "say", "kind", "have", "has", "up", "get", "going", "be",
    "it", "that", "this", "by", "from", "any",
];

fn concept(word: &str) -> Option<usize> {
    CONCEPTS.iter().position(|group| group.contains(&word))
}

fn hash(feature: &str, dimension: usize) -> usize {
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in feature.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % dimension as u64) as usize
}

/// The fake model: trigrams and concepts of each word, hashed and normalised.
pub fn embed(text: &str, dimension: usize) -> Vec<f32> {
    let mut vector = vec![0.0_f32; dimension];
    let lower = text.to_lowercase();
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w))
    {
        if let Some(group) = concept(word) {
            vector[hash(&format!("concept:{group}"), dimension)] += 2.0;
        }
        let padded: Vec<char> = format!(" {word} ").chars().collect();
        let trigrams: Vec<String> = padded.windows(3).map(|w| w.iter().collect()).collect();
        let weight = 1.0 / (trigrams.len() as f32).sqrt();
        for trigram in &trigrams {
            vector[hash(&format!("tri:{trigram}"), dimension)] += weight;
        }
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    } else {
        // A text with no words still gets a vector, as real models give one.
        vector[0] = 1.0;
    }
    vector
}
