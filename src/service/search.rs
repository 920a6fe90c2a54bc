//! Search over memories, conversations and action items: lexical always, hybrid when an
//! embeddings endpoint is configured and answers.
//!
//! Hybrid search embeds the query (within a short deadline), takes the lexical ranking and the
//! ranking by cosine similarity over a bounded set of candidates, and fuses the two with
//! reciprocal rank fusion. Whenever the query cannot be embedded (no endpoint, endpoint down,
//! slow, or answering another dimension) the search answers lexically and says so in its mode;
//! the reason is logged once when it starts, not per request, and the endpoint is left alone
//! for a short while so that every search does not wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::Settings;
use crate::domain::action_items::ActionItem;
use crate::domain::conversations::Conversation;
use crate::domain::memories::{Memory, MemoryCategory};
use crate::domain::paging::Page;
use crate::search::embed::{EmbedError, Embedder, EmbedderConfig};
use crate::search::fuse::reciprocal_rank_fusion;
use crate::search::score::{MIN_SCORE, round4};
use crate::search::{LexicalQuery, Scored};
use crate::store::vectors::{NearestQuery, VectorFilter};
use crate::store::{ConversationSearchFilter, Store, StoreResult};

/// How many of each ranking are fused (more when a page reaches further).
pub const FUSION_DEPTH: i64 = 50;
/// How many of the user's most recently embedded objects are compared with the query, besides
/// the lexical matches.
pub const VECTOR_CANDIDATES: i64 = 2_000;
/// How long searches stay lexical after the endpoint failed, before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// How a search ranked its results (`X-Search-Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Lexical,
    Hybrid,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Lexical => "lexical",
            Mode::Hybrid => "hybrid",
        }
    }
}

/// Results and how they were ranked.
#[derive(Debug, Clone)]
pub struct Found<T> {
    pub hits: Vec<Scored<T>>,
    pub mode: Mode,
}

/// The embeddings endpoint and what searches learned about it.
pub struct Semantic {
    pub embedder: Arc<Embedder>,
    /// How long a search waits for its query's vector.
    pub query_timeout: Duration,
    pub min_similarity: f64,
    health: Mutex<Health>,
    /// Fallbacks logged so far (one per outage, not one per request).
    logged: AtomicU64,
    /// Set by the embedding worker once it has queued what has no vector of this model.
    pub queue_prepared: Arc<AtomicBool>,
}

#[derive(Default)]
struct Health {
    /// The kind of the failure that was logged, while the endpoint keeps failing.
    failing: Option<&'static str>,
    /// Searches stay lexical until then.
    retry_at: Option<Instant>,
}

impl Semantic {
    pub fn new(embedder: Arc<Embedder>, query_timeout: Duration, min_similarity: f64) -> Self {
        Semantic {
            embedder,
            query_timeout,
            min_similarity,
            health: Mutex::new(Health::default()),
            logged: AtomicU64::new(0),
            queue_prepared: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The query's vector, or `None` (and the search is lexical).
    async fn query_vector(&self, text: &str) -> Option<Vec<f32>> {
        if self
            .health
            .lock()
            .retry_at
            .is_some_and(|at| Instant::now() < at)
        {
            return None;
        }
        match self
            .embedder
            .embed(&[text.to_string()], self.query_timeout)
            .await
        {
            Ok(mut vectors) if vectors.len() == 1 => {
                let mut health = self.health.lock();
                if health.failing.take().is_some() {
                    tracing::info!("the embeddings endpoint answers again; searches are hybrid");
                }
                health.retry_at = None;
                vectors.pop()
            }
            Ok(_) => None,
            Err(error) => {
                self.failed(&error);
                None
            }
        }
    }

    fn failed(&self, error: &EmbedError) {
        let mut health = self.health.lock();
        if health.failing != Some(error.kind()) {
            self.logged.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                reason = %error,
                "searches fall back to lexical ranking until the embeddings endpoint answers"
            );
            health.failing = Some(error.kind());
        }
        health.retry_at = Some(Instant::now() + RETRY_AFTER);
    }

    /// How many fallbacks were logged.
    pub fn fallbacks_logged(&self) -> u64 {
        self.logged.load(Ordering::Relaxed)
    }
}

/// The search engine every route, MCP tool and `ask` use.
#[derive(Default)]
pub struct Retrieval {
    pub semantic: Option<Semantic>,
}

impl Retrieval {
    /// Lexical only.
    pub fn lexical() -> Retrieval {
        Retrieval { semantic: None }
    }

    /// From `OMI_EMBEDDINGS_*`; lexical when no endpoint is set. `http` is the shared outbound
    /// client.
    pub fn from_settings(settings: &Settings, http: reqwest::Client) -> anyhow::Result<Retrieval> {
        let Some(base_url) = settings.embeddings_base_url.as_deref().map(str::trim) else {
            tracing::info!(
                "no embeddings endpoint (OMI_EMBEDDINGS_BASE_URL): searches rank by words only"
            );
            return Ok(Retrieval::lexical());
        };
        let model = settings
            .embeddings_model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "OMI_EMBEDDINGS_MODEL is required when OMI_EMBEDDINGS_BASE_URL is set"
                )
            })?;
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            anyhow::bail!("OMI_EMBEDDINGS_BASE_URL must be an http:// or https:// URL");
        }
        if !(0.0..=1.0).contains(&settings.embeddings_min_similarity) {
            anyhow::bail!("OMI_EMBEDDINGS_MIN_SIMILARITY must be between 0 and 1");
        }
        let embedder = Embedder::new(EmbedderConfig {
            base_url: base_url.to_string(),
            model: model.to_string(),
            api_key: settings.embeddings_api_key.clone(),
            http,
        });
        tracing::info!(
            url = embedder.url(),
            model,
            "searches are hybrid: words and meaning (embeddings), words alone while the endpoint is unavailable"
        );
        Ok(Retrieval {
            semantic: Some(Semantic::new(
                Arc::new(embedder),
                Duration::from_millis(settings.embeddings_timeout_ms),
                settings.embeddings_min_similarity,
            )),
        })
    }

    /// The query's vector when hybrid search is possible now.
    async fn vector(&self, text: &str) -> Option<(&Semantic, Vec<f32>)> {
        let semantic = self.semantic.as_ref()?;
        let vector = semantic.query_vector(text).await?;
        Some((semantic, vector))
    }

    /// Memory content and tags (`text` is the query as typed, `query` its lexical reading).
    pub async fn memories(
        &self,
        store: &dyn Store,
        user_id: &str,
        text: &str,
        query: &LexicalQuery,
        categories: &[MemoryCategory],
        page: Page,
    ) -> StoreResult<Found<Memory>> {
        let Some((semantic, vector)) = self.vector(text).await else {
            let hits = store
                .search_memories(user_id, query, categories, page)
                .await?;
            return Ok(lexical(hits));
        };
        let depth = depth(page);
        let lexical = store
            .search_memories(user_id, query, categories, first(depth))
            .await?;
        let filter = VectorFilter::Memories { categories };
        let ranked = fuse(
            store,
            semantic,
            user_id,
            &vector,
            filter,
            lexical,
            depth,
            |m| &m.id,
        )
        .await?;
        page_of(ranked, page, |id| async move {
            store.get_memory(user_id, &id).await
        })
        .await
    }

    /// Action item descriptions.
    pub async fn action_items(
        &self,
        store: &dyn Store,
        user_id: &str,
        text: &str,
        query: &LexicalQuery,
        completed: Option<bool>,
        page: Page,
    ) -> StoreResult<Found<ActionItem>> {
        let Some((semantic, vector)) = self.vector(text).await else {
            let hits = store
                .search_action_items(user_id, query, completed, page)
                .await?;
            return Ok(lexical(hits));
        };
        let depth = depth(page);
        let lexical = store
            .search_action_items(user_id, query, completed, first(depth))
            .await?;
        let filter = VectorFilter::ActionItems { completed };
        let ranked = fuse(
            store,
            semantic,
            user_id,
            &vector,
            filter,
            lexical,
            depth,
            |a| &a.id,
        )
        .await?;
        page_of(ranked, page, |id| async move {
            store.get_action_item(user_id, &id).await
        })
        .await
    }

    /// Title, overview and transcript of kept conversations (the lexical search's arguments,
    /// plus the query as typed).
    #[allow(clippy::too_many_arguments)]
    pub async fn conversations(
        &self,
        store: &dyn Store,
        user_id: &str,
        text: &str,
        query: &LexicalQuery,
        filter: ConversationSearchFilter,
        page: Page,
        include_transcript: bool,
    ) -> StoreResult<Found<Conversation>> {
        let Some((semantic, vector)) = self.vector(text).await else {
            let hits = store
                .search_conversations(user_id, query, filter, page, include_transcript)
                .await?;
            return Ok(lexical(hits));
        };
        let depth = depth(page);
        let lexical = store
            .search_conversations(user_id, query, filter, first(depth), include_transcript)
            .await?;
        let window = VectorFilter::Conversations(filter);
        let ranked = fuse(
            store,
            semantic,
            user_id,
            &vector,
            window,
            lexical,
            depth,
            |c| &c.id,
        )
        .await?;
        page_of(ranked, page, |id| async move {
            store
                .get_conversation(user_id, &id, include_transcript)
                .await
        })
        .await
    }
}

fn lexical<T>(hits: Vec<Scored<T>>) -> Found<T> {
    Found {
        hits,
        mode: Mode::Lexical,
    }
}

/// The page's part of a fused ranking as a hybrid answer: the objects the lexical search
/// already read are kept, the others loaded with `load` (one that went meanwhile is left out).
async fn page_of<T, F, Fut>(ranked: Vec<Ranked<T>>, page: Page, load: F) -> StoreResult<Found<T>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Option<T>>>,
{
    let mut hits = Vec::new();
    for (id, item, score) in paged(ranked, page) {
        let item = match item {
            Some(item) => Some(item),
            None => load(id).await?,
        };
        hits.extend(item.map(|item| Scored { item, score }));
    }
    Ok(Found {
        hits,
        mode: Mode::Hybrid,
    })
}

/// How deep each ranking is read: the fusion depth, or further for a deep page.
fn depth(page: Page) -> i64 {
    FUSION_DEPTH.max(page.offset.saturating_add(page.limit))
}

fn first(limit: i64) -> Page {
    Page { limit, offset: 0 }
}

/// One fused result: its id, the object when the lexical search already read it, its score.
type Ranked<T> = (String, Option<T>, f64);

/// The lexical hits and the nearest vectors fused by rank, best first, with scores scaled so
/// that the best is 1 (rounded to 4 decimals, at least [`MIN_SCORE`]). Ties keep the lexical
/// order.
#[allow(clippy::too_many_arguments)]
async fn fuse<T>(
    store: &dyn Store,
    semantic: &Semantic,
    user_id: &str,
    vector: &[f32],
    filter: VectorFilter<'_>,
    lexical: Vec<Scored<T>>,
    depth: i64,
    id_of: impl Fn(&T) -> &String,
) -> StoreResult<Vec<Ranked<T>>> {
    let lexical_ids: Vec<String> = lexical.iter().map(|hit| id_of(&hit.item).clone()).collect();
    let nearest = store
        .nearest(NearestQuery {
            user_id,
            model: semantic.embedder.model(),
            vector,
            filter,
            newest: VECTOR_CANDIDATES,
            also: &lexical_ids,
            min_similarity: semantic.min_similarity,
            limit: usize::try_from(depth).unwrap_or(usize::MAX),
        })
        .await?;
    let nearest_ids: Vec<String> = nearest.into_iter().map(|(id, _)| id).collect();
    let fused = reciprocal_rank_fusion(&[lexical_ids, nearest_ids]);
    let best = fused.first().map_or(1.0, |(_, score)| *score);
    let mut items: HashMap<String, T> = lexical
        .into_iter()
        .map(|hit| (id_of(&hit.item).clone(), hit.item))
        .collect();
    Ok(fused
        .into_iter()
        .map(|(id, score)| {
            let item = items.remove(&id);
            (id, item, round4(score / best).clamp(MIN_SCORE, 1.0))
        })
        .collect())
}

/// The page's part of a fused ranking.
fn paged<T>(ranked: Vec<Ranked<T>>, page: Page) -> impl Iterator<Item = Ranked<T>> {
    ranked
        .into_iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(base_url: Option<&str>, model: Option<&str>) -> Settings {
        let mut settings = Settings::defaults();
        settings.embeddings_base_url = base_url.map(str::to_string);
        settings.embeddings_model = model.map(str::to_string);
        settings
    }

    fn http() -> reqwest::Client {
        crate::outbound::Outbound::system()
            .http_client()
            .build()
            .unwrap()
    }

    #[test]
    fn settings_pick_lexical_or_hybrid_and_refuse_half_a_configuration() {
        assert!(
            Retrieval::from_settings(&settings(None, None), http())
                .unwrap()
                .semantic
                .is_none()
        );
        let hybrid =
            Retrieval::from_settings(&settings(Some("http://127.0.0.1:9/v1"), Some("m")), http())
                .unwrap();
        let semantic = hybrid.semantic.unwrap();
        assert_eq!(semantic.embedder.url(), "http://127.0.0.1:9/v1/embeddings");
        assert_eq!(semantic.query_timeout, Duration::from_millis(1_500));
        for (base, model) in [
            (Some("http://127.0.0.1:9/v1"), None),
            (Some("http://127.0.0.1:9/v1"), Some(" ")),
            (Some("ftp://127.0.0.1/v1"), Some("m")),
        ] {
            assert!(Retrieval::from_settings(&settings(base, model), http()).is_err());
        }
    }

    #[tokio::test]
    async fn a_failure_is_logged_once_and_the_endpoint_rested() {
        let retrieval = Retrieval::from_settings(
            // Nothing listens on the discard port of the loopback address.
            &settings(Some("http://127.0.0.1:9/v1"), Some("m")),
            http(),
        )
        .unwrap();
        let semantic = retrieval.semantic.as_ref().unwrap();
        for _ in 0..3 {
            assert!(semantic.query_vector("peanuts").await.is_none());
        }
        assert_eq!(semantic.fallbacks_logged(), 1);
        assert!(semantic.health.lock().retry_at.is_some());
        // Another kind of failure is news, and is logged.
        semantic.health.lock().retry_at = None;
        semantic.failed(&EmbedError::WrongDimension {
            expected: 2,
            got: 3,
        });
        assert_eq!(semantic.fallbacks_logged(), 2);
    }

    #[test]
    fn pages_are_cut_from_the_fused_ranking() {
        let ranked: Vec<Ranked<u8>> = (0..5)
            .map(|n| (n.to_string(), Some(n), 1.0 - f64::from(n) / 10.0))
            .collect();
        let page: Vec<String> = paged(
            ranked,
            Page {
                limit: 2,
                offset: 1,
            },
        )
        .map(|(id, _, _)| id)
        .collect();
        assert_eq!(page, ["1", "2"]);
        assert_eq!(
            depth(Page {
                limit: 100,
                offset: 20
            }),
            120
        );
        assert_eq!(
            depth(Page {
                limit: 10,
                offset: 0
            }),
            FUSION_DEPTH
        );
    }
}
