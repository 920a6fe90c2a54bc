//! The application state every handler shares (database, rate limiter, processing backend,
//! settings, metrics registry) and its construction from the settings.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::outbound::Outbound;
use crate::processing::llm::{LlmConfig, LlmProcessor};
use crate::processing::{OfflineProcessor, Processor};
use crate::ratelimit::{InMemoryLimiter, Limiter, Limits, RedisLimiter};
use crate::service::ask;
use crate::service::ingest::IngestCounters;
use crate::service::search::Retrieval;
use crate::service::usage::KeyUsage;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limiter: Arc<dyn Limiter>,
    pub settings: Arc<Settings>,
    pub key_usage: Arc<KeyUsage>,
    /// The conversation processing backend; replaceable so that another one can be plugged in.
    pub processor: Arc<dyn Processor>,
    /// Cancelled when the server starts shutting down, to end long-lived MCP event streams.
    pub shutdown: CancellationToken,
    /// What the metrics listener exports; `None` when `OMI_METRICS_LISTEN` is off, and then
    /// nothing is recorded.
    pub metrics: Option<Arc<Metrics>>,
    /// Search: lexical, or hybrid with the embeddings endpoint (`OMI_EMBEDDINGS_*`).
    pub retrieval: Arc<Retrieval>,
    /// The model that writes `ask` answers; `None` answers extractively.
    pub ask_writer: Option<Arc<ask::Writer>>,
    /// What the webhook inbox counted, for `/metrics`.
    pub ingest_counters: Arc<IngestCounters>,
    /// Rung when a webhook delivery is accepted, so that the worker starts on it at once.
    pub ingest_wake: Arc<tokio::sync::Notify>,
}

impl AppState {
    pub fn new(settings: Settings, store: Arc<dyn Store>, limiter: Arc<dyn Limiter>) -> Self {
        let metrics = settings
            .metrics_listen
            .address()
            .map(|_| Arc::new(Metrics::default()));
        let ingest_counters = metrics
            .as_ref()
            .map(|metrics| metrics.ingest.clone())
            .unwrap_or_default();
        AppState {
            store,
            limiter,
            settings: Arc::new(settings),
            key_usage: Arc::new(KeyUsage::default()),
            processor: Arc::new(OfflineProcessor),
            shutdown: CancellationToken::new(),
            metrics,
            retrieval: Arc::new(Retrieval::lexical()),
            ask_writer: None,
            ingest_counters,
            ingest_wake: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

pub fn limits(settings: &Settings) -> Limits {
    Limits {
        per_minute: settings.rate_limit_per_minute,
        per_day: settings.rate_limit_per_day,
        failed_auth_per_minute: settings.failed_auth_per_minute,
    }
}

/// Opens the database (migrating it) and the rate limiter named by the settings, and picks the
/// processing backend.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let outbound = Outbound::from_settings(&settings)?;
    let processor = processor(&settings, &outbound)?;
    let store = crate::store::open_with(&settings, &outbound).await?;
    let limiter = open_limiter(&settings, &outbound).await?;
    let http = outbound
        .http_client()
        .build()
        .map_err(|error| anyhow::anyhow!("building the HTTP client: {error}"))?;
    let retrieval = Retrieval::from_settings(&settings, http)?;
    let mut state = AppState::new(settings, store, limiter);
    state.processor = processor;
    state.retrieval = Arc::new(retrieval);
    state.ask_writer = outbound
        .http_client()
        .build()
        .ok()
        .and_then(|http| ask::Writer::from_settings(&state.settings, http))
        .map(Arc::new);
    Ok(state)
}

/// The offline backend, or the LLM one (with the offline one inside as its fallback) when
/// `OMI_LLM_BASE_URL` is set. The model is not contacted here: a model that is down only
/// makes conversations fall back, it never stops the server or its readiness.
pub fn processor(settings: &Settings, outbound: &Outbound) -> anyhow::Result<Arc<dyn Processor>> {
    let Some(base_url) = settings.llm_base_url.as_deref().map(str::trim) else {
        return Ok(Arc::new(OfflineProcessor));
    };
    let model = settings
        .llm_model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| anyhow::anyhow!("OMI_LLM_MODEL is required when OMI_LLM_BASE_URL is set"))?;
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        anyhow::bail!("OMI_LLM_BASE_URL must be an http:// or https:// URL");
    }
    let http = outbound
        .http_client()
        .build()
        .map_err(|error| anyhow::anyhow!("building the HTTP client: {error}"))?;
    let processor = LlmProcessor::new(LlmConfig {
        http,
        base_url: base_url.to_string(),
        model: model.to_string(),
        api_key: settings.llm_api_key.clone(),
        timeout: Duration::from_millis(settings.llm_timeout_ms),
        max_concurrency: settings.llm_max_concurrency as usize,
    })?;
    tracing::info!(
        base_url,
        model,
        "conversations are processed by the model, offline rules as fallback"
    );
    Ok(Arc::new(processor))
}

/// In-process counters, or Redis ones shared by every replica when `OMI_REDIS_URL` is set. A
/// Redis that is down at start does not stop the server: requests get 503 until it answers.
pub async fn open_limiter(
    settings: &Settings,
    outbound: &Outbound,
) -> anyhow::Result<Arc<dyn Limiter>> {
    let limits = limits(settings);
    let Some(url) = &settings.redis_url else {
        return Ok(Arc::new(InMemoryLimiter::new(limits)));
    };
    let limiter =
        RedisLimiter::new_lazy_with(url.expose(), &settings.redis_key_prefix, limits, outbound)
            .map_err(|error| anyhow::anyhow!("OMI_REDIS_URL: {error}"))?;
    if let Err(error) = limiter.ping().await {
        tracing::warn!(error = %error, "Redis does not answer yet; rate-limited requests get 503 until it does");
    }
    Ok(Arc::new(limiter))
}
