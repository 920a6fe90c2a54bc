//! Logging and the per-request context: a request id on every response, one span per request
//! (method, matched path, request id, status, latency), and the guarantee that every error from
//! every layer (panics included) leaves as `{"detail": ...}` JSON.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use tracing::Instrument;

use crate::error::{ApiError, details};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Marks a request the server sends to itself on behalf of an MCP tool call. It is an ordinary
/// REST request in every respect (it counts once against the rate limits); its log line names
/// the tool instead of repeating the MCP transport request that carried the call.
#[derive(Debug, Clone, Copy)]
pub struct InProcess {
    pub tool: &'static str,
}

/// Logs to stderr; `OMI_LOG` (or `RUST_LOG`) sets the filter, `info` by default.
pub fn init_logging() {
    let filter = std::env::var("OMI_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// The caller's request id when it is 1..=128 visible ASCII characters, else a new one.
fn request_id_for(request: &Request) -> HeaderValue {
    request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::now_v7().simple().to_string())
                .expect("a uuid is a valid header value")
        })
}

pub async fn request_context(request: Request, next: Next) -> Response {
    let request_id = request_id_for(&request);
    let matched_path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = matched_path.as_deref().unwrap_or("<unmatched>"),
        request_id = request_id.to_str().unwrap_or_default(),
        status = tracing::field::Empty,
        latency_us = tracing::field::Empty,
        mcp_tool = tracing::field::Empty,
    );
    if let Some(in_process) = request.extensions().get::<InProcess>() {
        span.record("mcp_tool", in_process.tool);
    }
    let started = Instant::now();
    let outcome = AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let mut response = match outcome {
        Ok(response) => response,
        Err(payload) => {
            // The cause goes to the log under the request id, never to the client.
            span.in_scope(|| {
                tracing::error!(
                    request_id = request_id.to_str().unwrap_or_default(),
                    panic = panic_message(&*payload),
                    "handler panicked"
                )
            });
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, details::INTERNAL).into_response()
        }
    };
    if response.status().as_u16() >= 400
        && !is_json(&response)
        && response.extensions().get::<HtmlErrorPage>().is_none()
    {
        response = json_error_for(response);
    }
    response.headers_mut().insert(REQUEST_ID, request_id);
    let status = response.status().as_u16();
    span.record("status", status);
    span.record("latency_us", started.elapsed().as_micros() as u64);
    span.in_scope(|| tracing::info!("request completed"));
    response
}

/// Marks an error response that is a page written for people (the web console's), which keeps
/// its body instead of becoming the API's JSON error.
#[derive(Debug, Clone, Copy)]
pub struct HtmlErrorPage;

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// Replaces a plain-text error body (axum's 405, a layer's 413, ...) with the contract's JSON,
/// keeping the status and headers such as `Allow`.
fn json_error_for(response: Response) -> Response {
    let (parts, _) = response.into_parts();
    let detail = match parts.status {
        StatusCode::NOT_FOUND => details::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => details::METHOD_NOT_ALLOWED,
        StatusCode::PAYLOAD_TOO_LARGE => details::BODY_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => details::UNSUPPORTED_MEDIA_TYPE,
        StatusCode::SERVICE_UNAVAILABLE => details::SERVICE_UNAVAILABLE,
        status if status.is_server_error() => details::INTERNAL,
        status => status.canonical_reason().unwrap_or("Error"),
    };
    let mut rebuilt = ApiError::new(parts.status, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rebuilt
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("<non-string panic payload>")
}
