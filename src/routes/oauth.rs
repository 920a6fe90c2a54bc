//! The OAuth 2.1 authorization server for MCP clients: metadata (RFC 8414, RFC 9728), dynamic
//! client registration (RFC 7591), the authorization endpoint (which hands over to the
//! console's consent page), the token endpoint and revocation (RFC 7009). These are standard
//! endpoints described by the metadata documents, not part of the `/v1` API's OpenAPI document.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::Duration;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::cors::{Any, CorsLayer};

use crate::auth::client_addr::client_address;
use crate::auth::middleware::count_failed_auth;
use crate::auth::origin::PublicOrigin;
use crate::domain::oauth::{
    PROTECTED_RESOURCE_METADATA, RegistrationRequest, resource_metadata_path,
};
use crate::domain::scope::Scope;
use crate::ratelimit::failed_auth_headers;
use crate::service::oauth::{self as service, OAuthError, TokenRequest};
use crate::state::AppState;

pub const AUTHORIZATION_SERVER_METADATA: &str = "/.well-known/oauth-authorization-server";
/// The console page the authorization endpoint hands over to.
pub const CONSENT_PATH: &str = "/console/oauth/authorize";
/// The MCP endpoint and its alias (`mcp::PATH`, `mcp::SSE_ALIAS_PATH`; routes sit beside, not
/// above, that module).
const MCP_PATH: &str = "/v1/mcp";
const MCP_SSE_ALIAS_PATH: &str = "/v1/mcp/sse";

pub fn router(state: &AppState) -> Router {
    let open = Router::new()
        .route(AUTHORIZATION_SERVER_METADATA, get(authorization_server))
        .route(PROTECTED_RESOURCE_METADATA, get(protected_resource_root))
        .route(
            &resource_metadata_path(MCP_PATH),
            get(protected_resource_mcp),
        )
        .route(
            &resource_metadata_path(MCP_SSE_ALIAS_PATH),
            get(protected_resource_mcp_sse),
        )
        .route("/oauth/register", post(register))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke));
    // These endpoints use no cookies, so any origin may call them (browser-based MCP clients),
    // unless OMI_CORS_ORIGINS is set: then the application's CORS layer answers for them, and
    // a second one would repeat its headers.
    let open = if state.settings.cors_origins.is_empty() {
        open.layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods(Any)
                .allow_headers(Any),
        )
    } else {
        open
    };
    open.route("/oauth/authorize", get(authorize))
        .with_state(state.clone())
}

fn scopes_supported() -> Vec<&'static str> {
    Scope::ALL.iter().map(|scope| scope.as_str()).collect()
}

async fn authorization_server(origin: PublicOrigin) -> Json<Value> {
    Json(json!({
        "issuer": origin.0,
        "authorization_endpoint": origin.url("/oauth/authorize"),
        "token_endpoint": origin.url("/oauth/token"),
        "registration_endpoint": origin.url("/oauth/register"),
        "revocation_endpoint": origin.url("/oauth/revoke"),
        "scopes_supported": scopes_supported(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": origin.url("/docs"),
    }))
}

fn protected_resource(origin: &PublicOrigin, resource_path: &str) -> Json<Value> {
    Json(json!({
        "resource": origin.url(resource_path),
        "authorization_servers": [origin.0],
        "scopes_supported": scopes_supported(),
        "bearer_methods_supported": ["header"],
        "resource_name": "omi-server",
        "resource_documentation": origin.url("/docs"),
    }))
}

/// The API as a whole: every `/v1` route accepts the access tokens.
async fn protected_resource_root(origin: PublicOrigin) -> Json<Value> {
    protected_resource(&origin, "")
}

async fn protected_resource_mcp(origin: PublicOrigin) -> Json<Value> {
    protected_resource(&origin, MCP_PATH)
}

async fn protected_resource_mcp_sse(origin: PublicOrigin) -> Json<Value> {
    protected_resource(&origin, MCP_SSE_ALIAS_PATH)
}

/// An RFC 6749 §5.2 error answer: 401 for `invalid_client`, 503/500 for the server's own
/// trouble, 400 otherwise; never cached.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match &self {
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::TooManyClients => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Store(crate::store::StoreError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            OAuthError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let description = match &self {
            OAuthError::Store(error) => {
                tracing::error!(error = %error, "OAuth endpoint failed");
                "the server could not complete the request".to_string()
            }
            other => other.to_string(),
        };
        no_store(
            status,
            json!({"error": self.code(), "error_description": description}),
        )
    }
}

fn no_store(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Debug, Deserialize)]
struct RegistrationBody {
    #[serde(default)]
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
}

async fn register(State(state): State<AppState>, body: Bytes) -> Response {
    let body: RegistrationBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => {
            return no_store(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_client_metadata",
                       "error_description": format!("the body must be a JSON object of client metadata: {error}")}),
            );
        }
    };
    let request = RegistrationRequest {
        redirect_uris: body.redirect_uris,
        client_name: body.client_name,
        token_endpoint_auth_method: body.token_endpoint_auth_method,
        grant_types: body.grant_types,
        response_types: body.response_types,
    };
    match service::register(&*state.store, request).await {
        Ok(client) => no_store(
            StatusCode::CREATED,
            json!({
                "client_id": client.id,
                "client_id_issued_at": client.created_at.timestamp(),
                "client_name": client.name,
                "redirect_uris": client.redirect_uris,
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }),
        ),
        Err(error) => error.into_response(),
    }
}

/// A form body's parameters; a repeated one is `invalid_request` (RFC 6749 §3.1).
fn form_parameters(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| {
            value
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    for (index, (name, _)) in pairs.iter().enumerate() {
        if pairs[..index].iter().any(|(seen, _)| seen == name) {
            return Err(OAuthError::InvalidRequest(format!(
                "parameter {name} is given more than once"
            )));
        }
    }
    Ok(pairs)
}

fn parameter(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

/// The client id of an `Authorization: Basic` header (public clients have no secret to check).
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let id = decoded.split(':').next()?;
    form_urlencoded::parse(format!("id={id}").as_bytes())
        .next()
        .map(|(_, id)| id.into_owned())
}

/// The client id from the body, or from HTTP Basic; both given must agree.
fn client_id(
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<Option<String>, OAuthError> {
    let in_body = parameter(pairs, "client_id");
    match (in_body, basic_client_id(headers)) {
        (Some(body), Some(basic)) if body != basic => Err(OAuthError::InvalidRequest(
            "client_id differs between the body and the Authorization header".into(),
        )),
        (Some(id), _) | (None, Some(id)) => Ok(Some(id)),
        (None, None) => Ok(None),
    }
}

/// The connection's peer, when the server records it.
struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0),
        ))
    }
}

/// A wrong code, refresh token or client id counts against the client address's failed-auth
/// limit, like a wrong key; past it the answer is 429 with `Retry-After`.
async fn count_failure(
    state: &AppState,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    error: OAuthError,
) -> Response {
    if !matches!(
        error,
        OAuthError::InvalidGrant(_) | OAuthError::InvalidClient(_)
    ) {
        return error.into_response();
    }
    let client = client_address(peer, headers, &state.settings.trusted_proxies);
    match count_failed_auth(state, &client).await {
        Ok(verdict) if verdict.blocked => {
            let mut response = no_store(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "temporarily_unavailable",
                       "error_description": format!("too many failed attempts from your address; retry in {} s", verdict.retry_after)}),
            );
            response.headers_mut().extend(failed_auth_headers(&verdict));
            response
        }
        // A limiter that cannot be reached does not turn a refusal into a 503.
        _ => error.into_response(),
    }
}

async fn token(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = async {
        let pairs = form_parameters(&headers, &body)?;
        let request = TokenRequest {
            grant_type: parameter(&pairs, "grant_type"),
            client_id: client_id(&headers, &pairs)?,
            code: parameter(&pairs, "code"),
            redirect_uri: parameter(&pairs, "redirect_uri"),
            code_verifier: parameter(&pairs, "code_verifier"),
            refresh_token: parameter(&pairs, "refresh_token"),
            scope: parameter(&pairs, "scope"),
        };
        let lifetime = Duration::seconds(state.settings.oauth_access_token_seconds.max(1) as i64);
        service::token(&*state.store, request, lifetime).await
    }
    .await;
    match outcome {
        Ok(answer) => no_store(StatusCode::OK, json!(answer)),
        Err(error) => count_failure(&state, peer, &headers, error).await,
    }
}

async fn revoke(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = async {
        let pairs = form_parameters(&headers, &body)?;
        let client_id = client_id(&headers, &pairs)?;
        service::revoke(
            &*state.store,
            client_id.as_deref(),
            parameter(&pairs, "token").as_deref(),
        )
        .await
    }
    .await;
    match outcome {
        Ok(()) => no_store(StatusCode::OK, json!({})),
        Err(error) => count_failure(&state, peer, &headers, error).await,
    }
}

/// Hands the request to the console's consent page. A page that moves on by itself rather than
/// a redirect: the console's cookie is `SameSite=Strict`, so on the navigation that arrives from
/// the client's site the browser withholds it; the page's own navigation is same-site and
/// carries it, so a signed-in user is not asked to sign in again.
async fn authorize(RawQuery(query): RawQuery) -> Response {
    // Re-encoded from the parsed pairs, so nothing in it can leave the attribute or the URL.
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(query.unwrap_or_default().as_bytes()))
        .finish();
    // `&` is the only character of the URL that HTML gives a meaning in an attribute.
    let target = format!("{CONSENT_PATH}?{query}").replace('&', "&amp;");
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={target}\">\
         <title>Continue · omi-server</title></head>\
         <body><p><a href=\"{target}\">Continue to omi-server</a></p></body></html>\n"
    );
    let mut response = Html(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_name_the_client() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("omi_client_x:");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        assert_eq!(basic_client_id(&headers).as_deref(), Some("omi_client_x"));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert!(form_parameters(&headers, b"code=a&code=b").is_err());
        assert_eq!(
            form_parameters(&headers, b"code=a&state=b").unwrap().len(),
            2
        );
        assert!(form_parameters(&HeaderMap::new(), b"code=a").is_err());
    }
}
