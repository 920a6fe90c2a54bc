//! The embedding worker: gives every memory, action item and conversation a vector of the
//! configured model, in the background, in bounded batches.
//!
//! Triggers queue each new object and each changed text in the write's own transaction, so
//! nothing written is missed; at start the worker queues everything that has no vector for the
//! current model (data from before, or all of it after a change of model). While the endpoint
//! fails, the worker waits longer and longer (up to a minute) and logs the failure once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::search::embed::{EmbedError, Embedder};
use crate::store::vectors::NewVector;
use crate::store::{Store, StoreError};

/// Objects embedded per request to the endpoint.
pub const BATCH: i64 = 32;
/// How long the endpoint may take for one batch.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an empty queue is looked at again.
const IDLE: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Endpoint(#[from] EmbedError),
}

/// At start: the dimension of this model's stored vectors becomes the one answers must have,
/// and whatever has no vector of this model is queued. The number queued.
pub async fn prepare(store: &dyn Store, embedder: &Embedder) -> Result<u64, StoreError> {
    if let Some(dimension) = store.vector_dimension(embedder.model()).await? {
        embedder.expect_dimension(dimension);
    }
    store.queue_missing_vectors(embedder.model()).await
}

/// Embeds the first batch of the queue; how many queue entries it settled (0: the queue is
/// empty). An entry whose object is gone, or whose text is blank, is settled without a vector.
/// An endpoint that refuses a batch as a whole (4xx) is asked again one text at a time, so that
/// one text it cannot take does not hold up the rest: that text is then dropped, with a warning.
pub async fn embed_batch(
    store: &dyn Store,
    embedder: &Embedder,
    limit: i64,
) -> Result<usize, EmbeddingError> {
    let pending = store.pending_vector_texts(limit).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let done: Vec<i64> = pending.iter().map(|p| p.seq).collect();
    let wanted: Vec<_> = pending
        .into_iter()
        .filter_map(|mut p| match p.text.take() {
            Some(text) if !text.trim().is_empty() => Some((p, text)),
            _ => None,
        })
        .collect();
    let texts: Vec<String> = wanted.iter().map(|(_, text)| text.clone()).collect();
    let vectors: Vec<Option<Vec<f32>>> = match embedder.embed(&texts, BATCH_TIMEOUT).await {
        Ok(vectors) => vectors.into_iter().map(Some).collect(),
        Err(EmbedError::Status { status, .. }) if refuses_the_input(status) && texts.len() > 1 => {
            let mut one_by_one = Vec::with_capacity(texts.len());
            for text in &texts {
                match embedder
                    .embed(std::slice::from_ref(text), BATCH_TIMEOUT)
                    .await
                {
                    Ok(mut vectors) => one_by_one.push(vectors.pop()),
                    Err(EmbedError::Status { status, body }) if refuses_the_input(status) => {
                        tracing::warn!(status, body = %body, "the embeddings endpoint refuses a text; it is left out of semantic search");
                        one_by_one.push(None);
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            one_by_one
        }
        Err(EmbedError::Status { status, body }) if refuses_the_input(status) => {
            tracing::warn!(status, body = %body, "the embeddings endpoint refuses a text; it is left out of semantic search");
            vec![None]
        }
        Err(error) => return Err(error.into()),
    };
    let vectors: Vec<NewVector> = wanted
        .into_iter()
        .zip(vectors)
        .filter_map(|((pending, _), vector)| {
            vector.map(|vector| NewVector {
                kind: pending.kind,
                user_id: pending.user_id,
                id: pending.id,
                vector,
            })
        })
        .collect();
    let settled = done.len();
    store.save_vectors(embedder.model(), vectors, done).await?;
    Ok(settled)
}

/// A status that says "this input", not "this server" or "this key", is the problem.
fn refuses_the_input(status: u16) -> bool {
    matches!(status, 400 | 413 | 422)
}

/// Embeds until the queue is empty (tests and benchmarks; the server runs [`spawn`]).
pub async fn embed_all(store: &dyn Store, embedder: &Embedder) -> Result<usize, EmbeddingError> {
    let mut total = 0;
    loop {
        let settled = embed_batch(store, embedder, BATCH).await?;
        if settled == 0 {
            return Ok(total);
        }
        total += settled;
    }
}

/// Runs the worker until `stop` is cancelled; `prepared` is set once the start's queueing is
/// done.
pub fn spawn(
    store: Arc<dyn Store>,
    embedder: Arc<Embedder>,
    prepared: Arc<AtomicBool>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = IDLE;
        loop {
            match prepare(&*store, &embedder).await {
                Ok(queued) => {
                    if queued > 0 {
                        tracing::info!(
                            queued,
                            model = embedder.model(),
                            "embedding objects without a vector of this model"
                        );
                    }
                    prepared.store(true, Ordering::SeqCst);
                    break;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "cannot queue objects for embedding yet");
                    if sleep_or_stop(&stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        let mut failing: Option<String> = None;
        backoff = IDLE;
        loop {
            let wait = match embed_batch(&*store, &embedder, BATCH).await {
                Ok(settled) => {
                    if failing.take().is_some() {
                        tracing::info!("the embedding worker reaches the endpoint again");
                    }
                    backoff = IDLE;
                    if settled > 0 {
                        continue;
                    }
                    IDLE
                }
                Err(error) => {
                    let kind = match &error {
                        EmbeddingError::Store(_) => "store".to_string(),
                        EmbeddingError::Endpoint(error) => error.kind().to_string(),
                    };
                    if failing.as_deref() != Some(kind.as_str()) {
                        tracing::warn!(error = %error, "the embedding worker waits: new objects are found by words only until it resumes");
                        failing = Some(kind);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    backoff
                }
            };
            if sleep_or_stop(&stop, wait).await {
                return;
            }
        }
    })
}

/// Sleeps; `true` when `stop` was cancelled meanwhile.
async fn sleep_or_stop(stop: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}

/// Without an embeddings endpoint nothing reads the queue the triggers fill: it is emptied at
/// start and then every ten minutes (a later start with an endpoint queues whatever has no
/// vector anyway).
pub fn spawn_queue_trimmer(store: Arc<dyn Store>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = store.clear_vector_queue().await {
                tracing::debug!(error = %error, "the embedding queue could not be emptied");
            }
            if sleep_or_stop(&stop, Duration::from_secs(600)).await {
                return;
            }
        }
    })
}
