//! The OAuth 2.1 authorization server's use cases: registering a client, checking an
//! authorization request, issuing a code for what the user approved, exchanging it (PKCE),
//! rotating refresh tokens and revoking. The HTTP endpoints and the console's consent page
//! call these; they word the errors.

use chrono::Duration;

use crate::domain::credentials::Secret;
use crate::domain::ids::new_id;
use crate::domain::oauth::{
    self, CODE_LIFETIME, MAX_CLIENTS, REFRESH_LIFETIME, RegistrationError, RegistrationRequest,
    UNUSED_CLIENT_LIFETIME,
};
use crate::domain::scope::ScopeSet;
use crate::domain::time::{self, Timestamp};
use crate::store::oauth::{
    CodeRedemption, NewAuthorizationCode, NewTokens, OAuthClient, Redeemed, Refreshed,
};
use crate::store::{Store, StoreError};

/// An error of the token, registration or revocation endpoint, by its RFC 6749 §5.2 /
/// RFC 7591 §3.2.2 code, with a description for the developer.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    /// Registration is full even after forgetting unused clients.
    #[error("too many clients are registered; try again later")]
    TooManyClients,
    #[error("the database failed: {0}")]
    Store(#[from] StoreError),
}

impl OAuthError {
    /// The `error` code of the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::Registration(error) => error.code(),
            OAuthError::TooManyClients => "temporarily_unavailable",
            OAuthError::Store(StoreError::Unavailable(_)) => "temporarily_unavailable",
            OAuthError::Store(_) => "server_error",
        }
    }
}

pub type OAuthResult<T> = Result<T, OAuthError>;

/// Registers a public client (RFC 7591).
pub async fn register(store: &dyn Store, request: RegistrationRequest) -> OAuthResult<OAuthClient> {
    let registration = oauth::check_registration(request)?;
    let now = time::now();
    let client = OAuthClient {
        id: oauth::new_client_id(),
        name: registration.name,
        redirect_uris: registration.redirect_uris,
        created_at: now,
    };
    let stored = store
        .register_oauth_client(client.clone(), now - UNUSED_CLIENT_LIFETIME, MAX_CLIENTS)
        .await?;
    if !stored {
        return Err(OAuthError::TooManyClients);
    }
    Ok(client)
}

/// The query of `GET /oauth/authorize`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct AuthorizationParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// RFC 8707: accepted and not checked further; every token is for this server.
    pub resource: Option<String>,
}

/// An authorization request that may be shown to the user.
#[derive(Debug, Clone)]
pub struct ValidAuthorization {
    pub client: OAuthClient,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// What the user is offered (and may narrow).
    pub offered: ScopeSet,
}

/// Why an authorization request cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The client or its redirect URI cannot be trusted: tell the user, never redirect.
    #[error("{0}")]
    Page(String),
    /// Sent back to the (validated) redirect URI, RFC 6749 §4.1.2.1.
    #[error("{code}: {description}")]
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        code: &'static str,
        description: String,
    },
    #[error("the database failed: {0}")]
    Store(#[from] StoreError),
}

/// Checks the client and redirect URI first (errors there are shown, not redirected), then the
/// rest of the request (errors there go back to the client).
pub async fn check_authorization(
    store: &dyn Store,
    params: &AuthorizationParams,
) -> Result<ValidAuthorization, AuthorizeError> {
    let client_id = params
        .client_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| AuthorizeError::Page("The request names no client (client_id).".into()))?;
    let client = store.find_oauth_client(client_id).await?.ok_or_else(|| {
        AuthorizeError::Page("This app is not registered with this server.".into())
    })?;
    let redirect_uri = match params.redirect_uri.as_deref() {
        Some(uri) if client.redirect_uris.iter().any(|known| known == uri) => uri.to_string(),
        Some(_) => {
            return Err(AuthorizeError::Page(
                "The app asked to return to an address it did not register.".into(),
            ));
        }
        // RFC 6749 §3.1.2.3: optional only when exactly one is registered.
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(AuthorizeError::Page(
                "The request names no redirect_uri.".into(),
            ));
        }
    };
    let state = params.state.clone();
    let refuse = |code: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        code,
        description: description.to_string(),
    };
    if params.response_type.as_deref() != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    match params.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not supported)",
            ));
        }
        None => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method=S256 is required",
            ));
        }
    }
    let code_challenge = match params.code_challenge.as_deref() {
        Some(challenge) if oauth::is_valid_challenge(challenge) => challenge.to_string(),
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be 43 base64url characters",
            ));
        }
        None => return Err(refuse("invalid_request", "code_challenge is required")),
    };
    let offered = oauth::requested_scopes(params.scope.as_deref())
        .map_err(|unknown| refuse("invalid_scope", &format!("unknown scope: {unknown}")))?;
    if offered == ScopeSet::EMPTY {
        return Err(refuse("invalid_scope", "no scope requested"));
    }
    Ok(ValidAuthorization {
        client,
        redirect_uri,
        state,
        code_challenge,
        offered,
    })
}

/// Issues a code for what the user approved (a subset of what was offered).
pub async fn approve(
    store: &dyn Store,
    user_id: &str,
    authorization: &ValidAuthorization,
    scopes: ScopeSet,
) -> Result<Secret, StoreError> {
    let now = time::now();
    let code = oauth::issue_code();
    store
        .create_authorization_code(
            NewAuthorizationCode {
                code_hash: code.hash,
                client_id: authorization.client.id.clone(),
                user_id: user_id.to_string(),
                redirect_uri: authorization.redirect_uri.clone(),
                scopes,
                code_challenge: authorization.code_challenge.clone(),
                created_at: now,
                expires_at: now + CODE_LIFETIME,
            },
            // Used codes are kept a day, so that a replay is recognised (and revokes).
            now - Duration::days(1),
        )
        .await?;
    Ok(code.raw)
}

/// A token endpoint answer (RFC 6749 §5.1).
#[derive(Debug, serde::Serialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub scope: String,
}

fn new_tokens(now: Timestamp, access_lifetime: Duration) -> (NewTokens, Secret, Secret) {
    let access = oauth::issue_access_token();
    let refresh = oauth::issue_refresh_token();
    (
        NewTokens {
            access_hash: access.hash,
            access_expires_at: now + access_lifetime,
            refresh_hash: refresh.hash,
            refresh_expires_at: now + REFRESH_LIFETIME,
        },
        access.raw,
        refresh.raw,
    )
}

fn answer(access: Secret, refresh: Secret, lifetime: Duration, scopes: ScopeSet) -> TokenAnswer {
    TokenAnswer {
        access_token: access.expose().to_string(),
        token_type: "Bearer",
        expires_in: lifetime.num_seconds(),
        refresh_token: refresh.expose().to_string(),
        scope: oauth::scope_string(scopes),
    }
}

fn required<'a>(value: Option<&'a str>, name: &str) -> OAuthResult<&'a str> {
    value
        .filter(|value| !value.is_empty())
        .ok_or_else(|| OAuthError::InvalidRequest(format!("{name} is required")))
}

/// The public client named by `client_id`.
async fn client(store: &dyn Store, client_id: Option<&str>) -> OAuthResult<OAuthClient> {
    let client_id = client_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| OAuthError::InvalidClient("client_id is required".into()))?;
    store
        .find_oauth_client(client_id)
        .await?
        .ok_or_else(|| OAuthError::InvalidClient("unknown client_id".into()))
}

/// The form of `POST /oauth/token`.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

/// `POST /oauth/token`.
pub async fn token(
    store: &dyn Store,
    request: TokenRequest,
    access_lifetime: Duration,
) -> OAuthResult<TokenAnswer> {
    match request.grant_type.as_deref() {
        Some("authorization_code") => exchange_code(store, request, access_lifetime).await,
        Some("refresh_token") => refresh(store, request, access_lifetime).await,
        Some(other) => Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type {other} is not supported"
        ))),
        None => Err(OAuthError::InvalidRequest("grant_type is required".into())),
    }
}

async fn exchange_code(
    store: &dyn Store,
    request: TokenRequest,
    access_lifetime: Duration,
) -> OAuthResult<TokenAnswer> {
    let client = client(store, request.client_id.as_deref()).await?;
    let code = required(request.code.as_deref(), "code")?;
    let verifier = required(request.code_verifier.as_deref(), "code_verifier")?;
    let code_challenge = oauth::s256_challenge(verifier).ok_or_else(|| {
        OAuthError::InvalidRequest("code_verifier must be 43 to 128 unreserved characters".into())
    })?;
    let redirect_uri = match request.redirect_uri {
        Some(uri) => uri,
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(OAuthError::InvalidRequest(
                "redirect_uri is required".into(),
            ));
        }
    };
    let now = time::now();
    let (tokens, access, refresh) = new_tokens(now, access_lifetime);
    let redeemed = store
        .redeem_authorization_code(CodeRedemption {
            code_hash: oauth::code_hash(code),
            client_id: client.id,
            redirect_uri,
            code_challenge,
            now,
            grant_id: new_id(),
            tokens,
        })
        .await?;
    match redeemed {
        Redeemed::Granted { scopes } => Ok(answer(access, refresh, access_lifetime, scopes)),
        Redeemed::Unknown => Err(OAuthError::InvalidGrant("unknown authorization code".into())),
        Redeemed::Reused => Err(OAuthError::InvalidGrant(
            "authorization code already used; the tokens it issued are revoked".into(),
        )),
        Redeemed::Mismatch => Err(OAuthError::InvalidGrant(
            "authorization code expired, or issued to another client, redirect_uri or code_verifier"
                .into(),
        )),
    }
}

async fn refresh(
    store: &dyn Store,
    request: TokenRequest,
    access_lifetime: Duration,
) -> OAuthResult<TokenAnswer> {
    let client = client(store, request.client_id.as_deref()).await?;
    let token = required(request.refresh_token.as_deref(), "refresh_token")?;
    if let Some(asked) = request.scope.as_deref() {
        ScopeSet::parse(asked.split_ascii_whitespace())
            .map_err(|unknown| OAuthError::InvalidScope(format!("unknown scope: {unknown}")))?;
    }
    let Some(hash) = oauth::refresh_token_hash(token) else {
        return Err(OAuthError::InvalidGrant("unknown refresh token".into()));
    };
    let now = time::now();
    let (tokens, access, refresh) = new_tokens(now, access_lifetime);
    match store
        .rotate_refresh_token(&hash, &client.id, now, tokens)
        .await?
    {
        // The grant keeps what the user approved; the answer's `scope` says so (RFC 6749 §5.1).
        Refreshed::Rotated { scopes } => Ok(answer(access, refresh, access_lifetime, scopes)),
        Refreshed::Invalid => Err(OAuthError::InvalidGrant(
            "refresh token unknown, expired, or issued to another client".into(),
        )),
        Refreshed::Reused => Err(OAuthError::InvalidGrant(
            "refresh token already used; the grant is revoked".into(),
        )),
    }
}

/// `POST /oauth/revoke` (RFC 7009): unknown tokens are not an error.
pub async fn revoke(
    store: &dyn Store,
    client_id: Option<&str>,
    token: Option<&str>,
) -> OAuthResult<()> {
    let client = client(store, client_id).await?;
    let token = required(token, "token")?;
    if let Some(hash) = oauth::token_hash(token) {
        store.revoke_oauth_token(&hash, &client.id).await?;
    }
    Ok(())
}
