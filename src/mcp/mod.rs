//! The Model Context Protocol endpoint: the REST API's data for AI assistants, over Streamable
//! HTTP at `/v1/mcp` (also served at `/v1/mcp/sse`) and over stdio (`omi-server mcp --stdio`).
//!
//! Every tool call is one in-process request through the REST router (see `server`), so
//! authentication, scopes, rate limits, validation and error messages are the REST ones by
//! construction. The HTTP endpoint itself only checks the host (DNS rebinding) and that the
//! request carries a valid developer key; it does not count against the rate limits, the tool
//! calls do.

pub mod calls;
pub mod hosts;
pub mod server;
pub mod tools;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::auth::middleware::{authenticate_dev_key, bearer_token, peer_of};
use crate::auth::origin::{PublicOrigin, public_origin};
use crate::domain::credentials::Secret;
use crate::domain::oauth::resource_metadata_path;
use crate::error::{ApiError, details};
use crate::state::AppState;
use hosts::AllowedHosts;
pub use server::OmiMcp;

pub const PATH: &str = "/v1/mcp";
/// A permanent alias of `PATH` (upstream's legacy name): the same transport, methods and checks.
pub const SSE_ALIAS_PATH: &str = "/v1/mcp/sse";

/// The `/v1/mcp` route. `api` is the REST application the tool calls go through.
pub fn routes(state: &AppState, api: Router) -> Router {
    let config = StreamableHttpServerConfig::default()
        // The gate below checks hosts and origins against OMI_MCP_ALLOWED_HOSTS, with JSON errors.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(state.settings.max_body_bytes)
        // Open event streams end at shutdown, so that in-flight requests can drain.
        .with_cancellation_token(state.shutdown.child_token());
    let handler = OmiMcp::over_http(api);
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let gate = Gate {
        state: state.clone(),
        hosts: Arc::new(AllowedHosts::parse(&state.settings.mcp_allowed_hosts)),
    };
    Router::new()
        .route_service(PATH, service.clone())
        .route_service(SSE_ALIAS_PATH, service)
        .route_layer(from_fn_with_state(gate, check_host_and_key))
}

#[derive(Clone)]
struct Gate {
    state: AppState,
    hosts: Arc<AllowedHosts>,
}

/// 403 for a host or origin that is not allowed, then the REST 401s (and the failed-auth
/// limit) for a missing or invalid key, before any MCP session exists. A POST's body is then
/// read (within the body limit) to mark `tools/call` arguments that are not an object.
async fn check_host_and_key(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    if let Err(refusal) = gate.hosts.check(request.uri(), request.headers()) {
        tracing::warn!(
            host = ?request.headers().get(axum::http::header::HOST),
            origin = ?request.headers().get(axum::http::header::ORIGIN),
            "MCP request refused: {}",
            refusal.detail()
        );
        return ApiError::new(StatusCode::FORBIDDEN, refusal.detail()).into_response();
    }
    let peer = peer_of(&request);
    if let Err(mut rejection) = authenticate_dev_key(&gate.state, request.headers(), peer).await {
        if rejection.status() == StatusCode::UNAUTHORIZED {
            let origin = public_origin(request.headers(), peer, &gate.state.settings);
            let presented = bearer_token(request.headers()).is_some();
            if let Ok(value) = challenge(&origin, request.uri().path(), presented).parse() {
                rejection
                    .headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, value);
            }
        }
        return rejection;
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, gate.state.settings.max_body_bytes).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, details::BODY_TOO_LARGE)
            .into_response();
    };
    let body = match calls::mark_non_object_arguments(&bytes) {
        Some(marked) => Body::from(marked),
        None => Body::from(bytes),
    };
    let mut request = Request::from_parts(parts, body);
    // The length changed with the body; the library reads the body itself.
    request.headers_mut().remove(CONTENT_LENGTH);
    next.run(request).await
}

/// The `WWW-Authenticate` challenge of a 401 (RFC 9728 §5.1): where to find the OAuth
/// metadata for this resource, and `invalid_token` when a token was presented (RFC 6750 §3.1).
fn challenge(origin: &PublicOrigin, path: &str, presented: bool) -> String {
    let resource = if path == SSE_ALIAS_PATH {
        SSE_ALIAS_PATH
    } else {
        PATH
    };
    let metadata = origin.url(&resource_metadata_path(resource));
    if presented {
        format!(
            "Bearer resource_metadata=\"{metadata}\", error=\"invalid_token\", \
             error_description=\"The access token is missing, invalid, revoked or expired\""
        )
    } else {
        format!("Bearer resource_metadata=\"{metadata}\"")
    }
}

/// Serves MCP on stdin/stdout with `key` until the client closes the stream; `api` is the REST
/// application the tool calls go through.
pub async fn serve_stdio(api: Router, key: Secret) -> anyhow::Result<()> {
    let server = OmiMcp::with_key(api, key);
    server
        .check_key()
        .await
        .map_err(|detail| anyhow::anyhow!("OMI_API_KEY: {detail}"))?;
    let running = server.serve(rmcp::transport::io::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
