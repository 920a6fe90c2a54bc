//! A client for OpenAI-compatible `POST {base}/embeddings` (OpenAI, Ollama, llama.cpp, vLLM):
//! texts in, one vector per text out, read by `data[i].index` (servers need not answer in
//! order), and checked to have the dimension the stored vectors have.
//!
//! The base URL goes up to `/v1`, like the chat endpoint's (`OMI_LLM_BASE_URL`), so one server
//! can serve both with the same prefix.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::domain::credentials::Secret;

/// Characters of a text sent to be embedded: embedding models read a few thousand tokens at
/// most, and the start of a memory or conversation says what it is about.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// Characters of an error body kept in an error message.
const ERROR_BODY_CHARS: usize = 200;

/// How to reach the embeddings endpoint.
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    /// Up to and including `/v1`, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
    /// The HTTP client, from the shared outbound setup.
    pub http: reqwest::Client,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum EmbedError {
    #[error("cannot reach the embeddings server: {0}")]
    Unreachable(String),
    #[error("the embeddings server answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the embeddings server's answer is not an embeddings list: {0}")]
    Malformed(String),
    #[error(
        "the embeddings server answered vectors of {got} dimensions, the stored ones have {expected}"
    )]
    WrongDimension { expected: usize, got: usize },
    #[error("the embeddings server did not answer within {0:?}")]
    Timeout(Duration),
}

impl EmbedError {
    /// A short name of the failure, so that a repeated failure of the same kind is logged once.
    pub fn kind(&self) -> &'static str {
        match self {
            EmbedError::Unreachable(_) => "unreachable",
            EmbedError::Status { .. } => "status",
            EmbedError::Malformed(_) => "malformed",
            EmbedError::WrongDimension { .. } => "wrong_dimension",
            EmbedError::Timeout(_) => "timeout",
        }
    }
}

#[derive(Debug, Deserialize)]
struct EmbeddingList {
    data: Vec<EmbeddingItem>,
}

#[derive(Debug, Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

pub struct Embedder {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<Secret>,
    /// The dimension of the vectors, 0 until known (from the stored vectors of this model or
    /// the first answer). An answer of another dimension is refused: its vectors could not be
    /// compared with the stored ones.
    dimension: AtomicUsize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("url", &self.url)
            .field("model", &self.model)
            .finish()
    }
}

impl Embedder {
    pub fn new(config: EmbedderConfig) -> Embedder {
        Embedder {
            http: config.http,
            url: format!("{}/embeddings", config.base_url.trim_end_matches('/')),
            model: config.model,
            api_key: config.api_key,
            dimension: AtomicUsize::new(0),
        }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The dimension answers must have, when known.
    pub fn dimension(&self) -> Option<usize> {
        match self.dimension.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Pins the dimension (that of the vectors already stored for this model).
    pub fn expect_dimension(&self, dimension: usize) {
        self.dimension.store(dimension, Ordering::Relaxed);
    }

    /// One vector per text, in the order given, within `deadline`.
    pub async fn embed(
        &self,
        texts: &[String],
        deadline: Duration,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        match tokio::time::timeout(deadline, self.send(texts)).await {
            Ok(answer) => answer,
            Err(_) => Err(EmbedError::Timeout(deadline)),
        }
    }

    async fn send(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let input: Vec<&str> = texts.iter().map(|text| clip(text)).collect();
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({"model": self.model, "input": input, "encoding_format": "float"}));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|error| EmbedError::Unreachable(crate_causes(&error)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| EmbedError::Unreachable(crate_causes(&error)))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(EmbedError::Status {
                status: status.as_u16(),
                body: text.chars().take(ERROR_BODY_CHARS).collect(),
            });
        }
        let list: EmbeddingList = serde_json::from_slice(&body)
            .map_err(|error| EmbedError::Malformed(error.to_string()))?;
        let vectors = in_order(list, texts.len())?;
        self.check_dimension(&vectors)?;
        Ok(vectors)
    }

    fn check_dimension(&self, vectors: &[Vec<f32>]) -> Result<(), EmbedError> {
        let Some(first) = vectors.first() else {
            return Ok(());
        };
        let got = first.len();
        if got == 0 || vectors.iter().any(|v| v.len() != got) {
            return Err(EmbedError::Malformed(
                "vectors of different or zero lengths".to_string(),
            ));
        }
        if vectors.iter().flatten().any(|x| !x.is_finite()) {
            return Err(EmbedError::Malformed("a value is not finite".to_string()));
        }
        match self
            .dimension
            .compare_exchange(0, got, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => Ok(()),
            Err(expected) if expected == got => Ok(()),
            Err(expected) => Err(EmbedError::WrongDimension { expected, got }),
        }
    }
}

/// The answer's vectors placed by their `index`; every text must have exactly one.
fn in_order(list: EmbeddingList, count: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    if list.data.len() != count {
        return Err(EmbedError::Malformed(format!(
            "{} vectors for {count} texts",
            list.data.len()
        )));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; count];
    for item in list.data {
        let slot = slots
            .get_mut(item.index)
            .ok_or_else(|| EmbedError::Malformed(format!("index {} out of range", item.index)))?;
        if slot.replace(item.embedding).is_some() {
            return Err(EmbedError::Malformed(format!(
                "index {} answered twice",
                item.index
            )));
        }
    }
    Ok(slots
        .into_iter()
        .map(|slot| slot.unwrap_or_default())
        .collect())
}

/// At most [`MAX_TEXT_CHARS`] characters of `text`, cut at a character boundary.
fn clip(text: &str) -> &str {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The error with its causes (reqwest hides the useful part, "connection refused", in them).
fn crate_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Cosine similarity in `[-1, 1]`; 0 when either vector is zero or the lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut norm_a, mut norm_b) = (0.0_f32, 0.0_f32, 0.0_f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    if norm_a <= 0.0 || norm_b <= 0.0 {
        return 0.0;
    }
    f64::from(dot) / (f64::from(norm_a).sqrt() * f64::from(norm_b).sqrt())
}

/// A vector as stored: little-endian `f32`s.
pub fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector back; `None` when the length is not a whole number of `f32`s.
pub fn from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_placed_by_index_and_checked() {
        let list = EmbeddingList {
            data: vec![
                EmbeddingItem {
                    index: 1,
                    embedding: vec![2.0],
                },
                EmbeddingItem {
                    index: 0,
                    embedding: vec![1.0],
                },
            ],
        };
        assert_eq!(in_order(list, 2).unwrap(), vec![vec![1.0], vec![2.0]]);
        let twice = EmbeddingList {
            data: vec![
                EmbeddingItem {
                    index: 0,
                    embedding: vec![1.0],
                },
                EmbeddingItem {
                    index: 0,
                    embedding: vec![2.0],
                },
            ],
        };
        assert!(matches!(in_order(twice, 2), Err(EmbedError::Malformed(_))));
        let short = EmbeddingList { data: vec![] };
        assert!(matches!(in_order(short, 1), Err(EmbedError::Malformed(_))));
    }

    #[test]
    fn cosine_and_storage_round_trip() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-9);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-9);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
        let vector = vec![0.5, -1.25, 3.0];
        assert_eq!(from_bytes(&to_bytes(&vector)).unwrap(), vector);
        assert_eq!(from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    // ring is the crypto provider the server installs too (see `outbound.rs`).
    #[allow(deprecated)]
    fn a_second_dimension_is_refused() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let embedder = Embedder::new(EmbedderConfig {
            base_url: "http://127.0.0.1:1/v1/".to_string(),
            model: "m".to_string(),
            api_key: None,
            http: reqwest::Client::new(),
        });
        assert_eq!(embedder.url(), "http://127.0.0.1:1/v1/embeddings");
        assert!(embedder.check_dimension(&[vec![1.0, 2.0]]).is_ok());
        assert_eq!(embedder.dimension(), Some(2));
        assert_eq!(
            embedder.check_dimension(&[vec![1.0, 2.0, 3.0]]),
            Err(EmbedError::WrongDimension {
                expected: 2,
                got: 3
            })
        );
        assert!(clip(&"é".repeat(MAX_TEXT_CHARS + 5)).chars().count() == MAX_TEXT_CHARS);
    }
}
