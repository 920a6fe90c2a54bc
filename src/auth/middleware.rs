//! Authentication layers. `require_dev_key` guards every developer route: it authenticates,
//! applies the rate limits, and stamps the rate-limit headers on whatever the route answers.
//! `require_account_token` guards key management.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::client_addr::client_address;
use crate::auth::{AccountCaller, Caller};
use crate::domain::credentials::{Credential, classify, hash_secret};
use crate::domain::oauth::access_token_hash;
use crate::domain::scope::{Scope, ScopeSet};
use crate::domain::time;
use crate::error::{ApiError, details};
use crate::metrics::{DecisionKind, DecisionOutcome};
use crate::ratelimit::{
    FailedAuthVerdict, LimiterUnavailable, decision_headers, failed_auth_headers,
    rate_limited_detail,
};
use crate::state::AppState;
use crate::store::AuthenticatedKey;

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub async fn require_dev_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let authenticated =
        match authenticate_dev_key(&state, request.headers(), peer_of(&request)).await {
            Ok(authenticated) => authenticated,
            Err(rejection) => return rejection,
        };
    admit(&state, authenticated, request, next).await
}

/// The name of the query parameter that may carry an ingest key (API.md §13.G: the Omi app
/// signs nothing, so a webhook URL carries its credential).
pub const URL_KEY_PARAMETER: &str = "key";

/// The ingest routes: the developer key comes from `Authorization: Bearer`, or from the `key`
/// query parameter when the key can do nothing but ingest. A leaked webhook URL then lets its
/// finder write into one account, never read from it.
pub async fn require_ingest_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let peer = peer_of(&request);
    let url_key = match bearer_token(request.headers()) {
        Some(_) => None,
        None => url_key(request.uri().query()),
    };
    let authenticated = match &url_key {
        None => authenticate_dev_key(&state, request.headers(), peer).await,
        Some(token) => authenticate_token(&state, token, request.headers(), peer).await,
    };
    let authenticated = match authenticated {
        Ok(authenticated) => authenticated,
        Err(rejection) => return rejection,
    };
    if url_key.is_some() && authenticated.key.scopes != ScopeSet::EMPTY.with(Scope::IngestWrite) {
        return ApiError::unauthorized(details::URL_KEY_NOT_INGEST_ONLY).into_response();
    }
    admit(&state, authenticated, request, next).await
}

/// The `key` query parameter, if given and not empty.
fn url_key(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == URL_KEY_PARAMETER)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// Counts an authenticated request against the rate limits and runs the route, stamping the
/// rate-limit headers on its answer.
async fn admit(
    state: &AppState,
    authenticated: AuthenticatedKey,
    mut request: Request,
    next: Next,
) -> Response {
    let decision = state
        .limiter
        .check_request(&authenticated.key.id, &authenticated.user_id)
        .await;
    record_decision(
        state,
        DecisionKind::Request,
        match &decision {
            Ok(decision) if decision.allowed => DecisionOutcome::Allowed,
            Ok(_) => DecisionOutcome::Rejected,
            Err(_) => DecisionOutcome::Unavailable,
        },
    );
    let decision = match decision {
        Ok(decision) => decision,
        Err(error) => return limiter_unavailable(error).into_response(),
    };
    let rate_headers = decision_headers(&decision);
    if !decision.allowed {
        let retry_after = decision.retry_after().unwrap_or(1);
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            rate_limited_detail(retry_after),
        )
        .with_headers(rate_headers)
        .into_response();
    }

    state
        .key_usage
        .record(&state.store, &authenticated.key)
        .await;
    request.extensions_mut().insert(Caller {
        user_id: authenticated.user_id,
        key: authenticated.key,
    });
    let mut response = next.run(request).await;
    response.headers_mut().extend(rate_headers);
    response
}

/// Finds the request's developer key without counting the request against the rate limits.
/// A missing header, an unknown key (counted as a failed authentication) or an unreachable
/// store comes back as the response to send.
pub async fn authenticate_dev_key(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<AuthenticatedKey, Response> {
    let Some(token) = bearer_token(headers) else {
        return Err(ApiError::unauthorized(details::MISSING_AUTHORIZATION).into_response());
    };
    authenticate_token(state, token, headers, peer).await
}

/// Finds the developer key `token` names, as [`authenticate_dev_key`] does.
async fn authenticate_token(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<AuthenticatedKey, Response> {
    // Only a well-formed developer key or OAuth access token is worth a lookup. An access
    // token authenticates as a key with the grant's scopes (same limits, same scope checks).
    let found = match classify(token) {
        Credential::DevKey(secret) => state.store.find_key_by_hash(&hash_secret(secret)).await,
        _ => match access_token_hash(token) {
            Some(hash) => state.store.find_access_token(&hash, time::now()).await,
            None => Ok(None),
        },
    };
    match found {
        Ok(Some(found)) => Ok(found),
        Ok(None) => {
            let client = client_address(peer, headers, &state.settings.trusted_proxies);
            Err(reject_invalid_credential(state, client).await)
        }
        Err(error) => Err(ApiError::from(error).into_response()),
    }
}

pub async fn require_account_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer_token(request.headers()) else {
        return ApiError::unauthorized(details::MISSING_AUTHORIZATION).into_response();
    };
    let found = match classify(token) {
        Credential::DevKey(_) | Credential::MalformedDevKey => {
            return ApiError::unauthorized(details::ACCOUNT_TOKEN_REQUIRED).into_response();
        }
        Credential::AccountToken(secret) => {
            state
                .store
                .find_user_by_token_hash(&hash_secret(secret))
                .await
        }
        Credential::Malformed => Ok(None),
    };
    match found {
        Ok(Some(user)) => {
            request.extensions_mut().insert(AccountCaller { user });
            next.run(request).await
        }
        Ok(None) => reject_invalid_credential(&state, client_of(&state, &request)).await,
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// The peer address, which failed authentications are counted against.
pub fn peer_of(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}

fn client_of(state: &AppState, request: &Request) -> String {
    client_address(
        peer_of(request),
        request.headers(),
        &state.settings.trusted_proxies,
    )
}

/// Counts one failed authentication (a bad key, token or console sign-in) from `client`
/// against the failed-auth limit, and records the decision in the metrics.
pub async fn count_failed_auth(
    state: &AppState,
    client: &str,
) -> Result<FailedAuthVerdict, LimiterUnavailable> {
    let verdict = state.limiter.register_failed_auth(client).await;
    record_decision(
        state,
        DecisionKind::FailedAuth,
        match &verdict {
            Ok(verdict) if verdict.blocked => DecisionOutcome::Rejected,
            Ok(_) => DecisionOutcome::Allowed,
            Err(_) => DecisionOutcome::Unavailable,
        },
    );
    verdict
}

/// `Invalid API key`, or 429 once this client address has failed too often this minute.
async fn reject_invalid_credential(state: &AppState, client: String) -> Response {
    match count_failed_auth(state, &client).await {
        Ok(verdict) if verdict.blocked => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            rate_limited_detail(verdict.retry_after),
        )
        .with_headers(failed_auth_headers(&verdict))
        .into_response(),
        Ok(_) => ApiError::unauthorized(details::INVALID_API_KEY).into_response(),
        Err(error) => limiter_unavailable(error).into_response(),
    }
}

fn record_decision(state: &AppState, kind: DecisionKind, outcome: DecisionOutcome) {
    if let Some(metrics) = &state.metrics {
        metrics.limiter.record(kind, outcome);
    }
}

fn limiter_unavailable(error: impl Into<anyhow::Error>) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        details::LIMITER_UNAVAILABLE,
    )
    .with_cause(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_url_key_is_read_from_the_query_string() {
        assert_eq!(url_key(Some("uid=u&key=abc")), Some("abc".to_string()));
        assert_eq!(url_key(Some("key=a%2Bb")), Some("a+b".to_string()));
        assert_eq!(url_key(Some("key=&uid=u")), None);
        assert_eq!(url_key(None), None);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token(&with_authorization("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with_authorization("BEARER abc")), Some("abc"));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_bearer_tokens() {
        assert_eq!(bearer_token(&with_authorization("Basic abc")), None);
        assert_eq!(bearer_token(&with_authorization("Bearer")), None);
        assert_eq!(bearer_token(&with_authorization("Bearer   ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
