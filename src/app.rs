//! Builds the application from its state and serves it on an already-bound listener, so tests
//! bind `127.0.0.1:0` and exercise the same code path as production.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::usage::KeyUsage;
use crate::config::Settings;
use crate::metrics::{Metrics, RecordLayer};
use crate::processing::llm::{LlmConfig, LlmProcessor};
use crate::processing::{OfflineProcessor, Processor};
use crate::ratelimit::{InMemoryLimiter, Limiter, Limits, RedisLimiter};
use crate::store::Store;
use crate::{mcp, openapi, routes, telemetry};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limiter: Arc<dyn Limiter>,
    pub settings: Arc<Settings>,
    pub key_usage: Arc<KeyUsage>,
    /// The conversation processing backend; replaceable so that another one can be plugged in.
    pub processor: Arc<dyn Processor>,
    /// The rendered OpenAPI document, built once.
    pub openapi_json: Arc<String>,
    /// Cancelled when the server starts shutting down, to end long-lived MCP event streams.
    pub shutdown: CancellationToken,
    /// What the metrics listener exports; `None` when `OMI_METRICS_LISTEN` is off, and then
    /// nothing is recorded.
    pub metrics: Option<Arc<Metrics>>,
}

impl AppState {
    pub fn new(settings: Settings, store: Arc<dyn Store>, limiter: Arc<dyn Limiter>) -> Self {
        let metrics = settings
            .metrics_listen
            .address()
            .map(|_| Arc::new(Metrics::default()));
        AppState {
            store,
            limiter,
            settings: Arc::new(settings),
            key_usage: Arc::new(KeyUsage::default()),
            processor: Arc::new(OfflineProcessor),
            openapi_json: Arc::new(openapi::document_json()),
            shutdown: CancellationToken::new(),
            metrics,
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
    let processor = processor(&settings)?;
    let store = crate::store::open(&settings).await?;
    let limiter = open_limiter(&settings).await?;
    let mut state = AppState::new(settings, store, limiter);
    state.processor = processor;
    Ok(state)
}

/// The offline backend, or the LLM one (with the offline one inside as its fallback) when
/// `OMI_LLM_BASE_URL` is set. The model is not contacted here: a model that is down only
/// makes conversations fall back, it never stops the server or its readiness.
pub fn processor(settings: &Settings) -> anyhow::Result<Arc<dyn Processor>> {
    let Some(base_url) = settings.llm_base_url.as_deref().map(str::trim) else {
        return Ok(Arc::new(OfflineProcessor));
    };
    let model = settings
        .llm_model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| anyhow::anyhow!("OMI_LLM_MODEL is required when OMI_LLM_BASE_URL is set"))?;
    // The binary carries no TLS stack: a remote HTTPS endpoint is reached through a local
    // TLS-terminating proxy.
    if !base_url.starts_with("http://") {
        anyhow::bail!(
            "OMI_LLM_BASE_URL must be an http:// URL (for an https endpoint, run a local TLS proxy)"
        );
    }
    let processor = LlmProcessor::new(LlmConfig {
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
pub async fn open_limiter(settings: &Settings) -> anyhow::Result<Arc<dyn Limiter>> {
    let limits = limits(settings);
    let Some(url) = &settings.redis_url else {
        return Ok(Arc::new(InMemoryLimiter::new(limits)));
    };
    let limiter = RedisLimiter::new_lazy(url.expose(), &settings.redis_key_prefix, limits)
        .map_err(|error| anyhow::anyhow!("OMI_REDIS_URL: {error}"))?;
    if let Err(error) = limiter.ping().await {
        tracing::warn!(error = %error, "Redis does not answer yet; rate-limited requests get 503 until it does");
    }
    Ok(Arc::new(limiter))
}

/// The whole application: the REST routes and the MCP endpoint (kept out of the OpenAPI
/// document, like `/docs`).
pub fn router(state: AppState) -> Router {
    let rest = rest_routes(&state);
    let mcp = mcp::routes(&state, with_app_layers(rest.clone(), &state));
    with_app_layers(rest.merge(mcp), &state)
}

/// The REST application alone, with the standard layers: what MCP tool calls go through.
pub fn api_router(state: AppState) -> Router {
    with_app_layers(rest_routes(&state), &state)
}

fn rest_routes(state: &AppState) -> Router {
    let (api, _) = routes::api(&routes::Guards::enforcing(state.clone())).split_for_parts();
    api.merge(routes::service::router())
        .with_state(state.clone())
}

/// The layers every route and the 404 fallback get: body limit, panic catching, request id,
/// logging span, JSON errors, and CORS when configured.
pub fn with_standard_layers(routes: Router, settings: &Settings) -> Router {
    let mut app = routes
        .fallback(routes::service::not_found)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(axum::middleware::from_fn(telemetry::request_context));
    if let Some(cors) = cors_layer(settings) {
        app = app.layer(cors);
    }
    app
}

/// The standard layers, wrapped in request metrics when they are on. Metrics go outermost so
/// they see the status the client gets (after panics and plain-text errors are turned into
/// JSON) and time the whole stack. MCP tool calls run through this too: each is recorded under
/// the REST route it called, besides the `/v1/mcp` request that carried it.
fn with_app_layers(routes: Router, state: &AppState) -> Router {
    let app = with_standard_layers(routes, &state.settings);
    match &state.metrics {
        Some(metrics) => app.layer(RecordLayer::new(metrics.http.clone())),
        None => app,
    }
}

fn cors_layer(settings: &Settings) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = settings
        .cors_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin.trim()).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                telemetry::REQUEST_ID,
            ])
            .expose_headers([telemetry::REQUEST_ID, header::RETRY_AFTER]),
    )
}

/// Serves until `shutdown` resolves, lets in-flight requests finish, then closes the database.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_metrics(state, listener, None, shutdown).await
}

/// [`serve`], plus `GET /metrics` on `metrics_listener` (which needs metrics turned on in the
/// settings) until the same shutdown.
pub async fn serve_with_metrics(
    state: AppState,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = state.store.clone();
    let stopping = state.shutdown.clone();
    let metrics_task = match (metrics_listener, &state.metrics) {
        (None, _) => None,
        (Some(_), None) => {
            anyhow::bail!("a metrics listener was given but OMI_METRICS_LISTEN is off")
        }
        (Some(metrics_listener), Some(metrics)) => {
            let app = crate::metrics::router(metrics.clone(), store.clone());
            // Not "listening": that line announces the API address, and tools wait for it.
            tracing::info!(
                metrics_address = %metrics_listener.local_addr()?,
                "serving Prometheus metrics at /metrics"
            );
            let stopped = stopping.clone().cancelled_owned();
            Some(tokio::spawn(async move {
                axum::serve(metrics_listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }))
        }
    };
    let shutdown = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            stopping.cancel();
        }
    };
    let scheduler = state
        .settings
        .daily_summaries
        .then(|| crate::service::daily_summaries::spawn_scheduler(store.clone(), stopping.clone()));
    let app = router(state);
    tracing::info!(address = %listener.local_addr()?, "listening");
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    // Also when the API stopped on an error, so the metrics listener does not outlive it.
    stopping.cancel();
    if let Some(task) = metrics_task {
        task.await??;
    }
    if let Some(task) = scheduler {
        task.await?;
    }
    served?;
    store.close().await?;
    tracing::info!("stopped");
    Ok(())
}
