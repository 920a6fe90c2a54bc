//! Web console sessions, and replacing an account token (which ends them).

use async_trait::async_trait;

use crate::domain::time::Timestamp;
use crate::domain::users::User;
use crate::store::StoreResult;

/// A session to insert; the id is stored only as its hash.
#[derive(Debug, Clone)]
pub struct NewConsoleSession {
    pub id_hash: String,
    pub user_id: String,
    /// The hash of the account token the user signed in with.
    pub token_hash: String,
    pub created_at: Timestamp,
}

/// A live session with its owner.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub user: User,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// How long a session lives: both bounds are checked by the query, so an expired session is
/// never returned whatever the clock of the server that wrote it.
#[derive(Debug, Clone, Copy)]
pub struct SessionBounds {
    /// Sessions created before this are over (the absolute lifetime).
    pub created_after: Timestamp,
    /// Sessions not seen since this are over (the idle lifetime).
    pub seen_after: Timestamp,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Inserts the session and deletes the user's sessions that are over.
    async fn create_console_session(
        &self,
        session: NewConsoleSession,
        bounds: SessionBounds,
    ) -> StoreResult<()>;
    /// The session, unless it is over or its account token was replaced since sign-in.
    async fn find_console_session(
        &self,
        id_hash: &str,
        bounds: SessionBounds,
    ) -> StoreResult<Option<ConsoleSession>>;
    /// Records activity, which keeps the session from idling out.
    async fn touch_console_session(&self, id_hash: &str, at: Timestamp) -> StoreResult<()>;
    /// Signing out. Deleting a session that does not exist is not an error.
    async fn delete_console_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Replaces the user's account token and deletes every console session; `false` when there
    /// is no such user.
    async fn replace_account_token(&self, user_id: &str, token_hash: &str) -> StoreResult<bool>;
}
