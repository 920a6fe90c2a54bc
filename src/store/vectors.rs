//! The vectors of semantic search: one per memory, action item and conversation, with the model
//! that made it, and the queue of objects waiting for one (filled by triggers on every write,
//! emptied by the embedding worker).

use async_trait::async_trait;

use super::{ConversationSearchFilter, StoreResult};
use crate::domain::memories::MemoryCategory;

/// What a vector belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorKind {
    Memory,
    ActionItem,
    Conversation,
}

impl VectorKind {
    pub const ALL: [VectorKind; 3] = [
        VectorKind::Memory,
        VectorKind::ActionItem,
        VectorKind::Conversation,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            VectorKind::Memory => "memory",
            VectorKind::ActionItem => "action_item",
            VectorKind::Conversation => "conversation",
        }
    }

    pub fn parse(name: &str) -> Option<VectorKind> {
        VectorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// An object waiting for its vector, in queue order. `text` is `None` when the object is gone
/// (deleted after it was queued): its entry is only to be dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingText {
    /// The queue entry.
    pub seq: i64,
    pub kind: VectorKind,
    pub user_id: String,
    pub id: String,
    pub text: Option<String>,
}

/// A vector made for a queued object.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVector {
    pub kind: VectorKind,
    pub user_id: String,
    pub id: String,
    pub vector: Vec<f32>,
}

/// Which of the user's objects a semantic search may return: the same filters as the lexical
/// search of that kind.
#[derive(Debug, Clone, Copy)]
pub enum VectorFilter<'a> {
    Memories {
        categories: &'a [MemoryCategory],
    },
    ActionItems {
        completed: Option<bool>,
    },
    /// Kept (not discarded) conversations in the window.
    Conversations(ConversationSearchFilter),
}

impl VectorFilter<'_> {
    pub fn kind(&self) -> VectorKind {
        match self {
            VectorFilter::Memories { .. } => VectorKind::Memory,
            VectorFilter::ActionItems { .. } => VectorKind::ActionItem,
            VectorFilter::Conversations(_) => VectorKind::Conversation,
        }
    }
}

/// A semantic search over one user's vectors of one model.
#[derive(Debug, Clone, Copy)]
pub struct NearestQuery<'a> {
    pub user_id: &'a str,
    pub model: &'a str,
    pub vector: &'a [f32],
    pub filter: VectorFilter<'a>,
    /// The candidates are the user's `newest` most recently embedded objects that pass the
    /// filter, plus the objects of `also` (the lexical matches): exact cosine over a bounded
    /// set, so a search costs the same on a large collection (docs/DECISIONS.md).
    pub newest: i64,
    pub also: &'a [String],
    /// Candidates below this cosine similarity are not matches.
    pub min_similarity: f64,
    /// At most this many, most similar first.
    pub limit: usize,
}

#[async_trait]
pub trait VectorStore: Send + Sync {
    /// Empties the queue and queues every object without a vector of `model`: at start, for
    /// existing data and after a change of model. The number queued.
    async fn queue_missing_vectors(&self, model: &str) -> StoreResult<u64>;

    /// Empties the queue (at start without an embeddings endpoint: a later start with one
    /// queues whatever has no vector anyway).
    async fn clear_vector_queue(&self) -> StoreResult<()>;

    /// The first `limit` queue entries with the text to embed.
    async fn pending_vector_texts(&self, limit: i64) -> StoreResult<Vec<PendingText>>;

    /// Stores `vectors` (replacing an object's older one) and removes the queue entries `done`,
    /// in one transaction. A vector whose object is gone by then is not stored.
    async fn save_vectors(
        &self,
        model: &str,
        vectors: Vec<NewVector>,
        done: Vec<i64>,
    ) -> StoreResult<()>;

    /// Queue entries left.
    async fn vector_backlog(&self) -> StoreResult<i64>;

    /// The dimension of the vectors stored for `model`, if any.
    async fn vector_dimension(&self, model: &str) -> StoreResult<Option<usize>>;

    /// The user's vectors of `kind` (any model).
    async fn vector_count(&self, user_id: &str, kind: VectorKind) -> StoreResult<i64>;

    /// The ids of the candidates most similar to the query vector, with their cosine
    /// similarity, best first.
    async fn nearest(&self, query: NearestQuery<'_>) -> StoreResult<Vec<(String, f64)>>;
}

/// The candidates' ids and similarities, best first, at least `min_similarity`, at most `limit`
/// (shared by the backends, which compute the similarities).
pub fn best_matches(
    mut scored: Vec<(String, f64)>,
    min_similarity: f64,
    limit: usize,
) -> Vec<(String, f64)> {
    scored.retain(|(_, similarity)| *similarity >= min_similarity);
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    scored.dedup_by(|a, b| a.0 == b.0);
    scored.truncate(limit);
    scored
}
