//! The one error type that leaves a handler, rendered as `{"detail": "..."}` (API.md §1.1).
//!
//! Internal causes are logged (inside the request's span, so under its request id) and never
//! echoed to the client.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// Exact `detail` strings shared by more than one layer.
pub mod details {
    pub const MISSING_AUTHORIZATION: &str =
        "Missing or invalid Authorization header. Must be 'Bearer API_KEY'";
    pub const INVALID_API_KEY: &str = "Invalid API key";
    pub const ACCOUNT_TOKEN_REQUIRED: &str =
        "Account token required: developer API keys cannot manage keys";
    /// A key in a webhook URL (`?key=`) that could do more than ingest (API.md §13.G).
    pub const URL_KEY_NOT_INGEST_ONLY: &str = "A key in the URL is accepted only when its scopes are exactly [\"ingest:write\"]: send this key in the Authorization header, or create an ingest-only key for the webhook URL";
    pub const NOT_FOUND: &str = "Not Found";
    pub const METHOD_NOT_ALLOWED: &str = "Method Not Allowed";
    pub const BODY_TOO_LARGE: &str = "Request body too large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "Content-Type must be application/json";
    pub const INTERNAL: &str = "Internal server error";
    pub const SERVICE_UNAVAILABLE: &str = "Service unavailable";
    pub const LIMITER_UNAVAILABLE: &str = "Rate limiter unavailable";
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    /// Human readable description of the error.
    pub detail: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: Cow<'static, str>,
    /// Extra response headers (rare, so boxed to keep `Result<_, ApiError>` small).
    headers: Option<Box<HeaderMap>>,
    /// Logged, never sent.
    cause: Option<anyhow::Error>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            detail: detail.into(),
            headers: None,
            cause: None,
        }
    }

    /// 400 with a route-specific message.
    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404 `<Resource> not found`, used for missing and foreign objects alike.
    pub fn not_found(resource: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{resource} not found"))
    }

    /// 404 with a route-specific message.
    pub fn not_found_detail(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 422 with an exact string named by the contract (`content cannot be empty`, ...).
    pub fn unprocessable(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 422 in the generic `Validation error: <where> <what>` form.
    pub fn validation(what: impl std::fmt::Display) -> Self {
        Self::unprocessable(format!("Validation error: {what}"))
    }

    pub fn conflict(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    pub fn unauthorized(detail: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn forbidden_scope(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("Insufficient permissions. Required scope: {scope}"),
        )
    }

    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            details::SERVICE_UNAVAILABLE,
        )
        .with_cause(cause)
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, details::INTERNAL).with_cause(cause)
    }

    /// The answer for a path no route matches: 404 `Not Found` (API.md §1.1). Usable as a
    /// router fallback.
    pub async fn unmatched_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, details::NOT_FOUND)
    }

    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers
            .get_or_insert_with(Default::default)
            .insert(name, value);
        self
    }

    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers
            .get_or_insert_with(Default::default)
            .extend(headers);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            if self.status.is_server_error() {
                tracing::error!(status = self.status.as_u16(), cause = %format!("{cause:#}"), "request failed");
            } else {
                tracing::debug!(status = self.status.as_u16(), cause = %format!("{cause:#}"), "request rejected");
            }
        }
        let mut response = (
            self.status,
            Json(ErrorResponse {
                detail: self.detail.into_owned(),
            }),
        )
            .into_response();
        if let Some(headers) = self.headers {
            response.headers_mut().extend(*headers);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => ApiError::unavailable(cause),
            other => ApiError::internal(other),
        }
    }
}
