//! Service routes without authentication: health, readiness, the API document and its reference
//! page (API.md §9).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, details};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceStatus {
    /// `ok` (healthz) or `ready` (readyz).
    pub status: String,
}

/// Routes that appear in the OpenAPI document.
pub fn documented_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The document (rendered once, by the caller that built the routes) and the page that
/// renders it.
pub fn router(openapi_json: String) -> axum::Router<AppState> {
    let openapi_json = Arc::new(openapi_json);
    axum::Router::new()
        .route(
            "/v1/openapi.json",
            get(move || openapi_document(openapi_json.clone())),
        )
        .route("/docs", get(docs))
}

/// Liveness: 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "Service",
    responses((status = 200, description = "The process is running", body = ServiceStatus)))]
pub async fn healthz() -> Json<ServiceStatus> {
    Json(ServiceStatus {
        status: "ok".into(),
    })
}

/// Readiness: 200 when the database (and Redis, when configured) answer, else 503.
#[utoipa::path(get, path = "/readyz", tag = "Service",
    responses(
        (status = 200, description = "Ready to serve", body = ServiceStatus),
        (status = 503, description = "The database or the rate limiter does not answer", body = crate::error::ErrorResponse),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<ServiceStatus>, ApiError> {
    state.store.ping().await?;
    state.limiter.ping().await.map_err(|error| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            details::LIMITER_UNAVAILABLE,
        )
        .with_cause(error)
    })?;
    Ok(Json(ServiceStatus {
        status: "ready".into(),
    }))
}

async fn openapi_document(document: Arc<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.as_str().to_owned(),
    )
        .into_response()
}

async fn docs() -> Html<&'static str> {
    Html(include_str!("../../assets/docs.html"))
}
