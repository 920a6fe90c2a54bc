//! The HTTP surface, one module per resource. Each handler carries its `#[utoipa::path]`, and the
//! router and the OpenAPI document are both built from the lists below, so they cannot drift.
//!
//! Adding a route: write the handler with its `#[utoipa::path]` in the resource's module, take
//! `Authorized<scopes::X>` for the scope check and `ApiJson`/`ApiQuery` for input, and list it in
//! that module's `router()` wrapped in the guard it needs (`guards.developer(routes!(...))`).

pub mod action_items;
pub mod conversations;
pub mod deletions;
pub mod export;
pub mod feed;
pub mod folders;
pub mod goals;
pub mod idempotency;
pub mod ingest;
pub mod insights;
pub mod keys;
pub mod memories;
pub mod oauth;
pub mod params;
pub mod service;
pub mod webhooks;

use axum::Json;
use axum::middleware::from_fn_with_state;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::auth::middleware::{require_account_token, require_dev_key, require_ingest_key};
use crate::domain::time::{Timestamp, parse_end_bound_exclusive, parse_start_bound};
use crate::error::ApiError;
use crate::search::LexicalQuery;
use crate::search::query::{SearchTextError, search_text};
use crate::service::search::Mode;
use crate::state::AppState;

pub type ApiRouter = OpenApiRouter<AppState>;
pub type ApiRoutes = UtoipaMethodRouter<AppState>;

/// Puts the authentication layer on a path's method handlers. The layer wraps the handlers
/// only, not the method router's fallback, so a wrong method answers 405 before any 401.
/// Built without a state (for the OpenAPI document alone) it adds nothing.
#[derive(Clone, Default)]
pub struct Guards {
    state: Option<AppState>,
}

impl Guards {
    pub fn enforcing(state: AppState) -> Self {
        Guards { state: Some(state) }
    }

    /// Developer-key authentication and rate limiting, then `Idempotency-Key` on POSTs.
    pub fn developer(&self, (schemas, paths, methods): ApiRoutes) -> ApiRoutes {
        match &self.state {
            Some(state) => (
                schemas,
                paths,
                methods
                    .route_layer(from_fn_with_state(
                        state.clone(),
                        idempotency::idempotent_posts,
                    ))
                    .route_layer(from_fn_with_state(state.clone(), require_dev_key)),
            ),
            None => (schemas, paths, methods),
        }
    }

    /// The webhook receivers: a developer key from the header or, ingest-only, from the URL;
    /// rate limits; and the larger body limit a conversation with photos needs. Retries are
    /// de-duplicated by the inbox, not by the `Idempotency-Key` replay of the API routes.
    pub fn ingest(&self, (schemas, paths, methods): ApiRoutes) -> ApiRoutes {
        match &self.state {
            Some(state) => (
                schemas,
                paths,
                methods
                    .route_layer(from_fn_with_state(state.clone(), require_ingest_key))
                    .route_layer(axum::extract::DefaultBodyLimit::max(
                        state.settings.ingest_max_body_bytes,
                    )),
            ),
            None => (schemas, paths, methods),
        }
    }

    /// Account-token authentication (key management).
    pub fn account(&self, (schemas, paths, methods): ApiRoutes) -> ApiRoutes {
        match &self.state {
            Some(state) => (
                schemas,
                paths,
                methods.route_layer(from_fn_with_state(state.clone(), require_account_token)),
            ),
            None => (schemas, paths, methods),
        }
    }
}

/// The answer of a deletion: `{"success": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuccessResponse {
    pub success: bool,
}

impl SuccessResponse {
    pub fn done() -> Json<Self> {
        Json(SuccessResponse { success: true })
    }
}

/// 422 for `null` on a PATCH field that cannot be cleared (API.md §11.4).
pub fn cannot_be_null(field: &str) -> ApiError {
    ApiError::validation(format!("{field} cannot be null"))
}

/// The `start_date`/`end_date` query bounds of a list, as `[from, before)`: a bare date starts or
/// ends with its whole UTC day, a date-time is included itself (API.md §1, §11.3).
pub fn created_between(
    start_date: Option<&str>,
    end_date: Option<&str>,
) -> Result<(Option<Timestamp>, Option<Timestamp>), ApiError> {
    let bound = |name: &str, text: Option<&str>, parse: fn(&str) -> Option<Timestamp>| {
        text.map(|text| {
            parse(text).ok_or_else(|| {
                ApiError::validation(format!(
                    "{name} must be a date (YYYY-MM-DD) or an RFC 3339 date-time"
                ))
            })
        })
        .transpose()
    };
    Ok((
        bound("start_date", start_date, parse_start_bound)?,
        bound("end_date", end_date, parse_end_bound_exclusive)?,
    ))
}

/// The response header that says how a search ranked its results: `lexical` (full-text only)
/// or `hybrid` (full-text fused with semantic similarity).
pub const SEARCH_MODE_HEADER: &str = "x-search-mode";

/// The `X-Search-Mode` header of a search's answer.
pub fn search_mode(mode: Mode) -> [(axum::http::HeaderName, axum::http::HeaderValue); 1] {
    [(
        axum::http::HeaderName::from_static(SEARCH_MODE_HEADER),
        axum::http::HeaderValue::from_static(mode.as_str()),
    )]
}

/// The `query` parameter of the search routes (API.md §13.A.0): the trimmed text (what the
/// embeddings endpoint reads) and its lexical reading.
pub fn search_query(raw: Option<&str>) -> Result<(String, LexicalQuery), ApiError> {
    let raw = raw.ok_or_else(|| ApiError::validation("query is required"))?;
    match search_text(raw) {
        Ok(text) => Ok((text.to_string(), LexicalQuery::parse(text))),
        Err(SearchTextError::Empty) => Err(ApiError::unprocessable("query cannot be empty")),
        Err(error @ SearchTextError::TooLong) => Err(ApiError::validation(error)),
    }
}

/// Every documented route.
pub fn api(guards: &Guards) -> ApiRouter {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(keys::router(guards))
        .merge(memories::router(guards))
        .merge(action_items::router(guards))
        .merge(goals::router(guards))
        .merge(conversations::router(guards))
        .merge(folders::router(guards))
        .merge(deletions::router(guards))
        .merge(insights::router(guards))
        .merge(ingest::router(guards))
        .merge(webhooks::router(guards))
        .merge(export::router(guards))
        .merge(service::documented_router())
}
