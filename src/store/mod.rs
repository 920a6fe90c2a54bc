//! Storage behind traits, one sub-trait per resource, so handlers never see SQL and a backend
//! (SQLite or PostgreSQL) is chosen once from the database URL.

pub mod columns;
pub mod console;
pub mod conversations;
pub mod export;
pub mod feed;
pub mod idempotency;
pub mod import;
pub mod ingest;
pub mod insights;
pub mod oauth;
pub mod postgres;
pub mod sqlite;
pub mod vectors;
pub mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;

use crate::config::Settings;
use crate::domain::action_items::{ActionItem, ActionItemChanges, ActionItemFilter};
use crate::domain::conversations::Conversation;
use crate::domain::goals::{Goal, GoalChanges, GoalProgress};
use crate::domain::keys::DevApiKey;
use crate::domain::memories::{Memory, MemoryCategory, MemoryChanges, NewMemory};
use crate::domain::paging::Page;
use crate::domain::scope::ScopeSet;
use crate::domain::time::Timestamp;
use crate::domain::users::User;
use crate::outbound::Outbound;
use crate::search::{LexicalQuery, Scored};
pub use console::ConsoleStore;
pub use conversations::ConversationStore;
pub use export::ExportStore;
pub use feed::FeedStore;
pub use idempotency::IdempotencyStore;
pub use import::ImportStore;
pub use ingest::IngestStore;
pub use insights::InsightStore;
pub use oauth::OAuthStore;
pub use vectors::VectorStore;
pub use webhooks::WebhookStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is locked past its timeout: answered as 503.
    #[error("database unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// A uniqueness rule refused the write (e.g. a user name that exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A per-user cap was reached (e.g. 100 keys).
    #[error("limit reached")]
    LimitReached,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user to insert; the token is stored only as its hash.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub token_hash: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub key_hash: String,
    pub key_prefix: String,
    pub scopes: ScopeSet,
    pub created_at: Timestamp,
}

/// A key found by its hash, with its owner: the result of authenticating a request.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey {
    pub user_id: String,
    pub key: DevApiKey,
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<u64>;
    /// Matches an id first, then a name (API.md §8 `--user`).
    async fn find_user(&self, id_or_name: &str) -> StoreResult<Option<User>>;
    async fn find_user_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<User>>;

    /// Inserts the key unless its owner already holds `max_per_user` keys (`LimitReached`).
    async fn create_key(&self, key: NewApiKey, max_per_user: usize) -> StoreResult<DevApiKey>;
    /// Newest first: `created_at` desc, then `id` desc.
    async fn list_keys(&self, user_id: &str) -> StoreResult<Vec<DevApiKey>>;
    async fn find_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<AuthenticatedKey>>;
    /// For the command line, which names keys by id alone.
    async fn find_key_by_id(&self, key_id: &str) -> StoreResult<Option<AuthenticatedKey>>;
    /// Replaces the secret; `last_used_at` is reset. `None` when the user has no such key.
    async fn rotate_key(
        &self,
        user_id: &str,
        key_id: &str,
        key_hash: &str,
        key_prefix: &str,
    ) -> StoreResult<Option<DevApiKey>>;
    /// `false` when the user has no such key.
    async fn delete_key(&self, user_id: &str, key_id: &str) -> StoreResult<bool>;
    /// Records use of a key, or of an OAuth grant (which authenticates as a key with the
    /// grant's id), unless the stored value is newer than `stale_before`.
    async fn touch_key(
        &self,
        key_id: &str,
        at: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait MemoryStore: Send + Sync {
    /// `scoring` desc, then `created_at` desc, then `id` desc; only the given categories unless
    /// the list is empty.
    async fn list_memories(
        &self,
        user_id: &str,
        categories: &[MemoryCategory],
        page: Page,
    ) -> StoreResult<Vec<Memory>>;
    async fn get_memory(&self, user_id: &str, memory_id: &str) -> StoreResult<Option<Memory>>;
    /// Creates each memory, or updates the user's memory with the same derived id, all in one
    /// transaction; the results in the order given. Requests must not repeat a content.
    async fn save_memories(
        &self,
        user_id: &str,
        requests: Vec<NewMemory>,
        now: Timestamp,
    ) -> StoreResult<Vec<Memory>>;
    /// `None` when the user has no such memory.
    async fn update_memory(
        &self,
        user_id: &str,
        memory_id: &str,
        changes: MemoryChanges,
        now: Timestamp,
    ) -> StoreResult<Option<Memory>>;
    /// `false` when the user has no such memory.
    async fn delete_memory(&self, user_id: &str, memory_id: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait ActionItemStore: Send + Sync {
    /// Inserts every item in one transaction, or none of them.
    async fn create_action_items(&self, user_id: &str, items: Vec<ActionItem>) -> StoreResult<()>;
    /// Open items first, then completed; within each, items with a due date by due date, then
    /// the rest; ties by `created_at` desc, then `id` desc (API.md §4).
    async fn list_action_items(
        &self,
        user_id: &str,
        filter: ActionItemFilter,
        page: Page,
    ) -> StoreResult<Vec<ActionItem>>;
    async fn get_action_item(&self, user_id: &str, id: &str) -> StoreResult<Option<ActionItem>>;
    /// Applies the changes as of `at` in one transaction. `None` when the user has no such item.
    async fn update_action_item(
        &self,
        user_id: &str,
        id: &str,
        changes: ActionItemChanges,
        at: Timestamp,
    ) -> StoreResult<Option<ActionItem>>;
    /// `false` when the user has no such item.
    async fn delete_action_item(&self, user_id: &str, id: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait GoalStore: Send + Sync {
    /// Inserts the goal and records its value in the history; no other goal changes.
    /// `Conflict` when the user already has a goal with this id.
    async fn create_goal(&self, user_id: &str, goal: Goal) -> StoreResult<()>;
    /// Active goals by `created_at` asc, then `id` asc; with `include_inactive`, all goals by
    /// `created_at` desc, then `id` desc.
    async fn list_goals(
        &self,
        user_id: &str,
        include_inactive: bool,
        page: Page,
    ) -> StoreResult<Vec<Goal>>;
    async fn get_goal(&self, user_id: &str, id: &str) -> StoreResult<Option<Goal>>;
    /// Applies the changes as of `at`; a new `current_value` is recorded as the value of `at`'s
    /// UTC day. `None` when the user has no such goal.
    async fn update_goal(
        &self,
        user_id: &str,
        id: &str,
        changes: GoalChanges,
        at: Timestamp,
    ) -> StoreResult<Option<Goal>>;
    /// Ends the goal as abandoned (API.md §13.K.6): it stays readable with its history.
    /// `false` when the user has no such goal.
    async fn abandon_goal(&self, user_id: &str, id: &str, at: Timestamp) -> StoreResult<bool>;
    /// The daily values from `since` on, newest first. `None` when the user has no such goal.
    async fn goal_history(
        &self,
        user_id: &str,
        id: &str,
        since: NaiveDate,
    ) -> StoreResult<Option<Vec<GoalProgress>>>;
}

/// The conversation search filters (API.md §13.A.3), on `created_at`; `created_before` is
/// exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConversationSearchFilter {
    pub created_from: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

/// Full-text search over the user's own objects, kept in step with every write by the backend.
/// Scores are normalised to `(0, 1]` against the best match of the whole query (not just the
/// page); another user's objects never match. A query with nothing to match finds nothing.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Memory content and tags; `score` desc, then `scoring` desc, `created_at` desc, `id` desc.
    async fn search_memories(
        &self,
        user_id: &str,
        query: &LexicalQuery,
        categories: &[MemoryCategory],
        page: Page,
    ) -> StoreResult<Vec<Scored<Memory>>>;

    /// Action item descriptions; `score` desc, then `created_at` desc, `id` desc.
    async fn search_action_items(
        &self,
        user_id: &str,
        query: &LexicalQuery,
        completed: Option<bool>,
        page: Page,
    ) -> StoreResult<Vec<Scored<ActionItem>>>;

    /// Title, overview and transcript of kept (not discarded) conversations, with their action
    /// items and folder name, and their transcripts when asked; `score` desc, then `created_at`
    /// desc, `id` desc.
    async fn search_conversations(
        &self,
        user_id: &str,
        query: &LexicalQuery,
        filter: ConversationSearchFilter,
        page: Page,
        include_transcript: bool,
    ) -> StoreResult<Vec<Scored<Conversation>>>;
}

/// Everything the server needs from a database.
#[async_trait]
pub trait Store:
    IdentityStore
    + MemoryStore
    + ActionItemStore
    + GoalStore
    + ConversationStore
    + IdempotencyStore
    + InsightStore
    + SearchStore
    + VectorStore
    + ImportStore
    + IngestStore
    + WebhookStore
    + ConsoleStore
    + OAuthStore
    + FeedStore
    + ExportStore
    + Send
    + Sync
{
    /// For `/readyz`: answers when the database does.
    async fn ping(&self) -> StoreResult<()>;
    /// Flushes and closes cleanly at shutdown.
    async fn close(&self) -> StoreResult<()>;
    /// How busy each connection pool is, for the metrics listener. Reads counters only: it never
    /// waits for a connection, so a scrape cannot queue behind (or delay) requests.
    fn pool_usage(&self) -> Vec<PoolUsage>;
}

/// One connection pool of a backend at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// `sqlite_read`, `sqlite_write`, `postgres` or `postgres_lookups`.
    pub pool: &'static str,
    /// Connections the pool may hold.
    pub max: usize,
    /// Connections open now.
    pub open: usize,
    /// Open connections lent out to a request.
    pub in_use: usize,
    /// Requests waiting for a connection, where the pool counts them.
    pub waiting: Option<usize>,
}

/// Opens the backend named by the URL scheme and applies pending migrations.
pub async fn open(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    open_with(settings, &Outbound::from_settings(settings)?).await
}

/// [`open`], with the outbound TLS setup the rest of the process shares (PostgreSQL's
/// `sslmode=verify-*` without `sslrootcert` trusts its roots).
pub async fn open_with(settings: &Settings, outbound: &Outbound) -> anyhow::Result<Arc<dyn Store>> {
    let url = settings.database_url.expose();
    if url.starts_with("sqlite:") {
        let store =
            sqlite::SqliteStore::open(&sqlite::SqliteOptions::from_settings(settings)?).await?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store =
            postgres::PgStore::open(&postgres::PgOptions::from_settings(settings, outbound))
                .await?;
        Ok(Arc::new(store))
    } else {
        anyhow::bail!("unsupported database URL scheme: expected sqlite:// or postgres://")
    }
}
