//! Builds the application from its state (router, layers, the OpenAPI document it serves) and
//! serves it on an already-bound listener, so tests bind `127.0.0.1:0` and exercise the same
//! code path as production.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use serde_json::Value;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::RecordLayer;
use crate::state::AppState;
use crate::{console, mcp, openapi, routes, telemetry};

/// The whole application: the REST routes and the MCP endpoint (kept out of the OpenAPI
/// document, like `/docs`).
pub fn router(state: AppState) -> Router {
    let rest = rest_routes(&state);
    let mcp = mcp::routes(&state, with_app_layers(rest.clone(), &state));
    let oauth = routes::oauth::router(&state);
    with_app_layers(
        rest.merge(mcp).merge(oauth).merge(console::router(&state)),
        &state,
    )
}

/// The REST application alone, with the standard layers: what MCP tool calls go through.
pub fn api_router(state: AppState) -> Router {
    with_app_layers(rest_routes(&state), &state)
}

/// The REST routes, and the OpenAPI document served at `/v1/openapi.json`, from the one
/// `split_for_parts()`: what is served is what is documented.
fn rest_routes(state: &AppState) -> Router {
    let (api, spec) = routes::api(&routes::Guards::enforcing(state.clone())).split_for_parts();
    let document = openapi::render(openapi::complete(spec));
    api.merge(routes::service::router(document))
        .with_state(state.clone())
}

/// The OpenAPI document of every route, built without a state (no database needed), as
/// `omi-server openapi` prints it. Equal to what a running server serves.
pub fn openapi_document() -> Value {
    let (_, spec) = routes::api(&routes::Guards::default()).split_for_parts();
    openapi::complete(spec)
}

/// The layers every route and the 404 fallback get: body limit, panic catching, request id,
/// logging span, JSON errors, and CORS when configured.
pub fn with_standard_layers(routes: Router, settings: &Settings) -> Router {
    let mut app = routes
        .fallback(ApiError::unmatched_route)
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
                HeaderName::from_static(routes::idempotency::HEADER),
            ])
            .expose_headers([
                telemetry::REQUEST_ID,
                header::RETRY_AFTER,
                HeaderName::from_static(routes::idempotency::REPLAYED),
            ]),
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

static ON_SERVING: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets what `serve` runs once everything has started (the router included), just before it takes
/// the first request.
pub fn on_serving(hook: fn()) {
    let _ = ON_SERVING.set(hook);
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
    let scheduler = state.settings.daily_summaries.then(|| {
        crate::service::daily_summaries::spawn_scheduler(
            store.clone(),
            state.processor.clone(),
            stopping.clone(),
        )
    });
    let ingest_worker = state.settings.ingest_worker.then(|| {
        crate::service::ingest::Worker {
            store: store.clone(),
            processor: state.processor.clone(),
            settings: crate::service::ingest::WorkerSettings {
                gap: std::time::Duration::from_secs(state.settings.ingest_gap_seconds),
                extract_memories: state.settings.ingest_extract_memories,
                audio_max_bytes: (state.settings.ingest_audio_max_mb as i64)
                    .saturating_mul(1024 * 1024),
            },
            counters: state.ingest_counters.clone(),
            wake: state.ingest_wake.clone(),
        }
        .spawn(stopping.clone())
    });
    let deliveries = if state.settings.webhooks {
        let stats = state
            .metrics
            .as_ref()
            .map(|metrics| metrics.webhooks.clone())
            .unwrap_or_default();
        Some(crate::service::webhooks::spawn_workers(
            store.clone(),
            &crate::outbound::Outbound::from_settings(&state.settings)?,
            crate::service::webhooks::WorkerOptions::from_settings(&state.settings)?,
            stats,
            stopping.clone(),
        )?)
    } else {
        None
    };
    let embedding = match &state.retrieval.semantic {
        Some(semantic) => crate::service::embedding::spawn(
            store.clone(),
            semantic.embedder.clone(),
            semantic.queue_prepared.clone(),
            stopping.clone(),
        ),
        None => crate::service::embedding::spawn_queue_trimmer(store.clone(), stopping.clone()),
    };
    let pruner = crate::service::tombstones::spawn_pruner(
        store.clone(),
        state.settings.tombstone_days,
        stopping.clone(),
    );
    let inbox_pruner = crate::service::ingest::retention::spawn_pruner(
        store.clone(),
        state.settings.ingest_inbox_days,
        stopping.clone(),
    );
    let app = router(state);
    // After the router and its API document are built: building them is start-up work too.
    if let Some(hook) = ON_SERVING.get() {
        hook();
    }
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
    if let Some(task) = ingest_worker {
        task.await?;
    }
    if let Some(task) = deliveries {
        task.await?;
    }
    pruner.await?;
    embedding.await?;
    inbox_pruner.await?;
    served?;
    store.close().await?;
    tracing::info!("stopped");
    Ok(())
}
