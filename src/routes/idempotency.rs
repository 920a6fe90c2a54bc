//! `Idempotency-Key` on every POST under `/v1/dev/user/` (Stripe's semantics, the IETF httpapi
//! draft): the first answer of a request is kept 24 h per (developer key, method, path,
//! idempotency key) in the database and replayed to a retry with the same body, marked
//! `Idempotent-Replayed: true`. The same key with another body is a 422, a retry while the
//! first still runs a 409. Only successful answers are kept: a refused or failed request runs
//! again when retried. Runs inside authentication and rate limiting, so every retry counts.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;

use crate::auth::Caller;
use crate::domain::idempotency::{
    ABANDONED_AFTER_SECONDS, KEPT_HOURS, parse_idempotency_key, request_fingerprint,
};
use crate::domain::time;
use crate::error::{ApiError, details};
use crate::state::AppState;
use crate::store::idempotency::{
    IdempotencyClaim, IdempotencyClock, IdempotencyScope, KeptResponse,
};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
pub const REUSED_DETAIL: &str = "Idempotency-Key reused with a different request";
pub const IN_PROGRESS_DETAIL: &str = "A request with this Idempotency-Key is still in progress";
pub const MALFORMED_DETAIL: &str =
    "Validation error: Idempotency-Key must be 1 to 255 visible ASCII characters";
/// Answers larger than this are sent but not kept (a batch answer is far smaller).
const MAX_KEPT_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Whether the request is one the key applies to.
fn applies(request: &Request) -> bool {
    request.method() == Method::POST && request.uri().path().starts_with("/v1/dev/user/")
}

pub async fn idempotent_posts(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !applies(&request) {
        return next.run(request).await;
    }
    let Some(raw_key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let Ok(idempotency_key) = parse_idempotency_key(raw_key.as_bytes()) else {
        return ApiError::unprocessable(MALFORMED_DETAIL).into_response();
    };
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, state.settings.max_body_bytes).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, details::BODY_TOO_LARGE)
            .into_response();
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let fingerprint = request_fingerprint(parts.method.as_str(), path_and_query, &body);
    let scope = IdempotencyScope {
        key_id: caller.key.id.clone(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        idempotency_key,
    };
    let now = time::now();
    let clock = IdempotencyClock {
        now,
        expired_before: now - Duration::hours(KEPT_HOURS),
        abandoned_before: now - Duration::seconds(ABANDONED_AFTER_SECONDS),
    };
    let claim = match state
        .store
        .claim_idempotency_key(&scope, &fingerprint, clock)
        .await
    {
        Ok(claim) => claim,
        Err(error) => return ApiError::from(error).into_response(),
    };
    match claim {
        IdempotencyClaim::Run => {}
        IdempotencyClaim::Replay(kept) => return replay(kept),
        IdempotencyClaim::Mismatch => {
            return ApiError::unprocessable(REUSED_DETAIL).into_response();
        }
        IdempotencyClaim::InProgress => {
            return ApiError::conflict(IN_PROGRESS_DETAIL).into_response();
        }
    }
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    keep_or_release(&state, &scope, response).await
}

/// Keeps a successful answer (and sends it on); forgets the claim of any other.
async fn keep_or_release(
    state: &AppState,
    scope: &IdempotencyScope,
    response: Response,
) -> Response {
    if !response.status().is_success() {
        if let Err(error) = state.store.release_idempotency_key(scope).await {
            tracing::warn!(error = %error, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, MAX_KEPT_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            // The handler already acted; what it answered cannot be read back, so a retry
            // after the claim is abandoned runs again.
            tracing::warn!(error = %error, "an answer too large to keep for Idempotency-Key");
            return ApiError::internal(anyhow::anyhow!("unreadable response body: {error}"))
                .into_response();
        }
    };
    let kept = KeptResponse {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
        body: bytes.to_vec(),
    };
    if let Err(error) = state.store.complete_idempotency_key(scope, &kept).await {
        tracing::warn!(error = %error, "could not keep an answer for Idempotency-Key");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(kept: KeptResponse) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, kept.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    if let Some(value) = kept
        .content_type
        .and_then(|value| HeaderValue::from_str(&value).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
