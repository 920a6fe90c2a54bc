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

/// One stored vector, decoded once, with its norm.
#[derive(Debug)]
pub struct CachedVector {
    pub id: String,
    vector: Box<[f32]>,
    norm: f32,
}

impl CachedVector {
    pub fn new(id: String, vector: Vec<f32>) -> CachedVector {
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        CachedVector {
            id,
            vector: vector.into_boxed_slice(),
            norm,
        }
    }

    /// Cosine similarity with `target`, whose norm is `target_norm` (0 when either is a zero
    /// vector or the lengths differ), the same value as `search::embed::cosine`.
    pub fn cosine(&self, target: &[f32], target_norm: f32) -> f64 {
        if self.vector.len() != target.len()
            || target.is_empty()
            || self.norm <= 0.0
            || target_norm <= 0.0
        {
            return 0.0;
        }
        let dot: f32 = self.vector.iter().zip(target).map(|(x, y)| x * y).sum();
        f64::from(dot) / (f64::from(self.norm) * f64::from(target_norm))
    }

    fn bytes(&self) -> usize {
        self.vector.len() * std::mem::size_of::<f32>() + self.id.len() + 64
    }
}

/// The norm `CachedVector::cosine` takes for a query vector.
pub fn norm(vector: &[f32]) -> f32 {
    vector.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// Decoded vectors by their row number (`seq`), shared by a store's connections, so that a
/// semantic search reads only which rows are its candidates (off an index) and decodes none of
/// the blobs it has already seen.
///
/// A stored vector is never changed in place: a new embedding is a new row and the old one is
/// deleted. A deleted row is no longer a candidate, so its entry is never read again and
/// nothing needs invalidating when objects are edited or deleted (by any write path, through
/// the triggers). The one hazard is a row number used again for another vector (SQLite reuses
/// the highest rowid after it is deleted), and the only code that inserts vectors calls
/// [`VectorCache::forget`] with the rows it wrote once they are committed. A search that read
/// a row before that commit and caches it after `forget` would bring the old vector back, so
/// `forget` also moves an epoch on, and vectors read under an older epoch are not cached.
///
/// Bounded by an estimate of its size; when full, the least recently used half is dropped.
pub struct VectorCache {
    inner: parking_lot::Mutex<CacheInner>,
    budget_bytes: usize,
}

#[derive(Default)]
struct CacheInner {
    entries: std::collections::HashMap<i64, (std::sync::Arc<CachedVector>, u64)>,
    bytes: usize,
    clock: u64,
    epoch: u64,
}

/// The default bound: 16 MiB, about 16,000 vectors of 256 dimensions or 2,700 of 1,536 (the
/// 2,000 newest of one user searched by one model fit either way).
pub const VECTOR_CACHE_BYTES: usize = 16 << 20;

impl Default for VectorCache {
    fn default() -> Self {
        VectorCache::new(VECTOR_CACHE_BYTES)
    }
}

impl VectorCache {
    pub fn new(budget_bytes: usize) -> VectorCache {
        VectorCache {
            inner: parking_lot::Mutex::new(CacheInner::default()),
            budget_bytes,
        }
    }

    /// The cached vectors of `seqs` (in that order, `None` where missing), marked as used.
    pub fn get(&self, seqs: &[i64]) -> Vec<Option<std::sync::Arc<CachedVector>>> {
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let now = inner.clock;
        seqs.iter()
            .map(|seq| {
                inner.entries.get_mut(seq).map(|(vector, used)| {
                    *used = now;
                    vector.clone()
                })
            })
            .collect()
    }

    /// Read before reading the rows given to [`VectorCache::insert`].
    pub fn epoch(&self) -> u64 {
        self.inner.lock().epoch
    }

    /// Adds vectors read from the store since `epoch` was read (nothing when vectors were
    /// written since), dropping the least recently used half when over budget.
    pub fn insert(&self, epoch: u64, vectors: &[(i64, std::sync::Arc<CachedVector>)]) {
        let mut inner = self.inner.lock();
        if inner.epoch != epoch {
            return;
        }
        inner.clock += 1;
        let now = inner.clock;
        for (seq, vector) in vectors {
            let size = vector.bytes();
            if let Some((old, _)) = inner.entries.insert(*seq, (vector.clone(), now)) {
                inner.bytes -= old.bytes();
            }
            inner.bytes += size;
        }
        if inner.bytes > self.budget_bytes {
            let mut ages: Vec<u64> = inner.entries.values().map(|(_, used)| *used).collect();
            let middle = ages.len() / 2;
            let (_, cut, _) = ages.select_nth_unstable(middle);
            let cut = *cut;
            inner.entries.retain(|_, (_, used)| *used >= cut);
            inner.bytes = inner.entries.values().map(|(v, _)| v.bytes()).sum();
            // Most entries used at the same time: drop them all but the newest use, then all.
            if inner.bytes > self.budget_bytes {
                inner.entries.retain(|_, (_, used)| *used > cut);
                inner.bytes = inner.entries.values().map(|(v, _)| v.bytes()).sum();
            }
            if inner.bytes > self.budget_bytes {
                inner.entries.clear();
                inner.bytes = 0;
            }
        }
    }

    /// Drops the entries of rows just written (their numbers may have been used before), once
    /// they are committed.
    pub fn forget(&self, seqs: &[i64]) {
        let mut inner = self.inner.lock();
        inner.epoch += 1;
        for seq in seqs {
            if let Some((old, _)) = inner.entries.remove(seq) {
                inner.bytes -= old.bytes();
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::search::embed::cosine;

    #[test]
    fn cached_cosine_is_the_plain_cosine() {
        let a = vec![0.5, -1.25, 3.0];
        let b = vec![1.0, 2.0, -0.5];
        let cached = CachedVector::new("a".to_string(), a.clone());
        assert!((cached.cosine(&b, norm(&b)) - cosine(&a, &b)).abs() < 1e-6);
        assert_eq!(cached.cosine(&[1.0, 2.0], norm(&[1.0, 2.0])), 0.0);
        assert_eq!(
            CachedVector::new("z".to_string(), vec![0.0; 3]).cosine(&b, norm(&b)),
            0.0
        );
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_what_was_used_last() {
        let vector = |n: i64| Arc::new(CachedVector::new(n.to_string(), vec![1.0; 64]));
        let one = vector(0).bytes();
        let cache = VectorCache::new(one * 10);
        let first: Vec<_> = (0..8).map(|n| (n, vector(n))).collect();
        cache.insert(cache.epoch(), &first);
        assert_eq!(cache.len(), 8);
        // Rows 0 and 1 are used again, then more rows push the cache over its budget.
        assert!(cache.get(&[0, 1]).iter().all(Option::is_some));
        let more: Vec<_> = (8..12).map(|n| (n, vector(n))).collect();
        cache.insert(cache.epoch(), &more);
        assert!(cache.len() <= 10);
        let kept = cache.get(&[0, 1, 8, 11]);
        assert!(kept.iter().all(Option::is_some), "{kept:?}");
        assert!(cache.get(&[2]).first().unwrap().is_none());
        cache.forget(&[0]);
        assert!(cache.get(&[0]).first().unwrap().is_none());
        assert_eq!(cache.get(&[1])[0].as_ref().unwrap().id, "1");
    }

    #[test]
    fn vectors_read_before_a_write_are_not_cached_after_it() {
        let cache = VectorCache::default();
        let epoch = cache.epoch();
        // A search reads row 7; meanwhile the worker replaces the vector stored as row 7.
        cache.forget(&[7]);
        cache.insert(
            epoch,
            &[(7, Arc::new(CachedVector::new("x".to_string(), vec![1.0])))],
        );
        assert!(cache.is_empty());
    }
}
