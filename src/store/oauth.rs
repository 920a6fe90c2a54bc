//! OAuth clients, authorization codes, grants and their tokens. Codes and tokens are stored
//! only as hashes; a grant is what the user approved for one client, and disconnecting it (or
//! a refresh token used twice) deletes it with every token it issued.

use async_trait::async_trait;

use crate::domain::scope::ScopeSet;
use crate::domain::time::Timestamp;
use crate::store::{AuthenticatedKey, StoreResult};

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub created_at: Timestamp,
}

/// A code to store, redeemable once before `expires_at`.
#[derive(Debug, Clone)]
pub struct NewAuthorizationCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    /// The S256 challenge the redeeming verifier must hash to.
    pub code_challenge: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A token pair to store for a grant.
#[derive(Debug, Clone)]
pub struct NewTokens {
    pub access_hash: String,
    pub access_expires_at: Timestamp,
    pub refresh_hash: String,
    pub refresh_expires_at: Timestamp,
}

/// What redeeming a code must match: the caller hashes the verifier, so the store compares
/// plain values inside the transaction that burns the code.
#[derive(Debug, Clone)]
pub struct CodeRedemption {
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub now: Timestamp,
    /// The id of the grant to create.
    pub grant_id: String,
    pub tokens: NewTokens,
}

/// How redeeming a code went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The grant was created with these scopes.
    Granted { scopes: ScopeSet },
    /// No such code.
    Unknown,
    /// The code was used before: the grant it made is revoked (RFC 6749 §4.1.2).
    Reused,
    /// Expired, or another client, redirect URI or verifier: the code is spent all the same.
    Mismatch,
}

/// How using a refresh token went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// New tokens were stored for the grant; the old refresh token is spent.
    Rotated { scopes: ScopeSet },
    /// Unknown, expired, or issued to another client.
    Invalid,
    /// Already rotated: someone else holds a copy, so the whole grant is revoked.
    Reused,
}

/// A grant as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OAuthGrant {
    pub id: String,
    pub client_name: String,
    pub scopes: Vec<&'static str>,
    #[serde(with = "crate::domain::time::serde_rfc3339")]
    pub created_at: Timestamp,
    #[serde(serialize_with = "crate::domain::time::serde_rfc3339_option::serialize")]
    pub last_used_at: Option<Timestamp>,
}

#[async_trait]
pub trait OAuthStore: Send + Sync {
    /// Stores the client after forgetting clients older than `unused_before` that hold no
    /// grant; `false` (nothing stored) when `max_clients` are registered even so.
    async fn register_oauth_client(
        &self,
        client: OAuthClient,
        unused_before: Timestamp,
        max_clients: u64,
    ) -> StoreResult<bool>;
    async fn find_oauth_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>>;
    /// Stores the code, and forgets codes that expired before `forget_before`.
    async fn create_authorization_code(
        &self,
        code: NewAuthorizationCode,
        forget_before: Timestamp,
    ) -> StoreResult<()>;
    /// Burns the code and, when everything matches, creates the grant with its first tokens,
    /// all in one transaction.
    async fn redeem_authorization_code(&self, redemption: CodeRedemption) -> StoreResult<Redeemed>;
    /// Replaces a refresh token of `client_id` with `tokens`, in one transaction.
    async fn rotate_refresh_token(
        &self,
        refresh_hash: &str,
        client_id: &str,
        now: Timestamp,
        tokens: NewTokens,
    ) -> StoreResult<Refreshed>;
    /// The grant behind a live access token, as a key with the granted scopes (its id is the
    /// grant's id, its name the client's).
    async fn find_access_token(
        &self,
        access_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<AuthenticatedKey>>;
    /// RFC 7009: a refresh token revokes its grant, an access token only itself; a token of
    /// another client, or none, changes nothing.
    async fn revoke_oauth_token(&self, token_hash: &str, client_id: &str) -> StoreResult<()>;
    /// The user's grants, newest first.
    async fn list_oauth_grants(&self, user_id: &str) -> StoreResult<Vec<OAuthGrant>>;
    /// Disconnects an app: the grant and all its tokens. `false` when the user has no such grant.
    async fn delete_oauth_grant(&self, user_id: &str, grant_id: &str) -> StoreResult<bool>;
}
