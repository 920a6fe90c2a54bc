//! The embedded SQLite backend.
//!
//! Connection model (measured, see ARCHITECTURE.md performance notes):
//! - one writer connection on its own thread, every write all-or-nothing in a savepoint of a
//!   `BEGIN IMMEDIATE` transaction that concurrent writes share (group commit, see `writer`);
//! - a small set of read connections used inline on the calling worker thread: bounded, indexed
//!   reads take tens of microseconds, far less than a hand-off to another thread would cost;
//! - WAL, `synchronous=FULL` by default, a busy timeout, and the query-planner stability
//!   guarantee so that cached statements with bound `LIMIT`/`OFFSET` are not re-planned.

mod action_items;
pub mod backup;
mod checkpointer;
mod console;
mod conversations;
mod export;
pub mod feed;
mod goals;
mod idempotency;
mod identity;
mod import;
mod ingest;
mod insights;
pub mod memories;
mod migrations;
mod oauth;
mod pool;
mod rank;
pub mod rows;
mod search;
pub mod search_index;
mod vectors;
mod webhooks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tracing::instrument;

use crate::config::{DEFAULT_SQLITE_READ_CACHE_KIB, Settings, SqliteSynchronous};
use crate::store::{Store, StoreError, StoreResult};
use pool::ReadPool;
use writer::Writer;

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    pub synchronous: SqliteSynchronous,
    pub busy_timeout: Duration,
    pub read_connections: usize,
    /// Page cache of each read connection, in KiB.
    pub read_cache_kib: u32,
}

impl SqliteOptions {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        Ok(SqliteOptions {
            path: path_from_url(settings.database_url.expose())?,
            synchronous: settings.sqlite_synchronous,
            busy_timeout: Duration::from_millis(settings.sqlite_busy_timeout_ms),
            read_connections: default_read_connections(),
            read_cache_kib: settings.sqlite_read_cache_kib,
        })
    }

    pub fn for_path(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            synchronous: SqliteSynchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: default_read_connections(),
            read_cache_kib: DEFAULT_SQLITE_READ_CACHE_KIB,
        }
    }
}

/// Two read connections per core: every worker thread finds one free, with spares for the
/// blocking pool.
fn default_read_connections() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .max(4)
}

/// `sqlite://omi-data/omi.db` is relative to the working directory; `sqlite:///var/omi.db` is
/// absolute.
pub fn path_from_url(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("a SQLite URL starts with sqlite://")?;
    let path = rest.split('?').next().unwrap_or_default();
    anyhow::ensure!(
        !path.is_empty() && path != ":memory:",
        "the SQLite URL must name a database file, e.g. sqlite://omi-data/omi.db"
    );
    Ok(PathBuf::from(path))
}

#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<ReadPool>,
    /// Decoded semantic search vectors (`vectors.rs`).
    vectors: Arc<crate::store::vectors::VectorCache>,
    /// Document counts of search phrases (`search.rs`).
    phrase_counts: Arc<search::PhraseCounts>,
}

impl SqliteStore {
    /// Opens (creating the folder and file if missing) and migrates.
    pub async fn open(options: &SqliteOptions) -> anyhow::Result<Self> {
        let options = options.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&options)).await?
    }

    fn open_blocking(options: &SqliteOptions) -> anyhow::Result<Self> {
        if let Some(parent) = options.path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the folder {}", parent.display()))?;
        }
        let mut writer = open_connection(&options.path, options, Role::Writer)?;
        migrations::apply(&mut writer)?;
        // Documents recorded outside the writer (the benchmark seeds files with the row
        // helpers) are indexed now.
        let transaction = writer.transaction()?;
        search_index::index_new_documents(&transaction)
            .context("indexing documents recorded for search")?;
        transaction.commit()?;
        // One process owns a SQLite file: a webhook lease left in it belongs to a process that
        // has ended (a crash), so its deliveries are due again now, not when the lease expires.
        writer.execute(
            "UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL
             WHERE lease_token IS NOT NULL AND status = 'pending'",
            [],
        )?;
        writer.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpointer::WRITER_AUTOCHECKPOINT_PAGES,
        )?;
        let commits =
            checkpointer::start(open_connection(&options.path, options, Role::Checkpointer)?)
                .context("starting the SQLite checkpoint thread")?;
        let readers = (0..options.read_connections.max(1))
            .map(|_| open_connection(&options.path, options, Role::Reader))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SqliteStore {
            writer: Writer::start(writer, commits, search_index::index_new_documents)
                .context("starting the SQLite writer thread")?,
            readers: Arc::new(ReadPool::new(readers)),
            vectors: Arc::default(),
            phrase_counts: Arc::default(),
        })
    }

    /// Runs `work` inline on a read connection.
    pub(crate) fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        self.readers.with(work).map_err(map_error)
    }

    /// Runs `work` all-or-nothing on the writer and answers once it is committed. Any error
    /// rolls back everything `work` wrote.
    pub(crate) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.write(work).await
    }
}

/// What a connection is for, which sets its page cache and whether it may write.
#[derive(Clone, Copy)]
enum Role {
    Writer,
    Reader,
    Checkpointer,
}

impl Role {
    /// Page cache per connection, in KiB. The writer keeps SQLite's default (the index pages
    /// every insert touches); readers keep what a search touches (`OMI_SQLITE_READ_CACHE_KIB`)
    /// and share the operating system's cache beyond it; the checkpointer only copies pages
    /// through.
    fn cache_kib(self, options: &SqliteOptions) -> u32 {
        match self {
            Role::Writer => 2_000,
            Role::Reader => options.read_cache_kib,
            Role::Checkpointer => 100,
        }
    }
}

fn open_connection(path: &Path, options: &SqliteOptions, role: Role) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening SQLite database {}", path.display()))?;
    connection.busy_timeout(options.busy_timeout)?;
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    connection.set_prepared_statement_cache_capacity(64);
    rank::register(&connection).context("registering the search ranking function")?;
    connection.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {};
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{};
         PRAGMA query_only = {};",
        options.synchronous.as_pragma(),
        role.cache_kib(options),
        if matches!(role, Role::Reader) {
            "ON"
        } else {
            "OFF"
        },
    ))?;
    Ok(connection)
}

/// Locked, busy, unopenable or failing storage is "unavailable" (503); everything else is a bug.
pub(crate) fn map_error(error: rusqlite::Error) -> StoreError {
    match classify(&error) {
        ErrorKind::Unavailable => StoreError::Unavailable(error.into()),
        ErrorKind::Conflict => StoreError::Conflict(error.to_string()),
        ErrorKind::Internal => StoreError::Internal(error.into()),
    }
}

/// The same mapping for an error that several callers share (a failed group commit).
pub(crate) fn map_error_ref(error: &rusqlite::Error) -> StoreError {
    match classify(error) {
        ErrorKind::Unavailable => StoreError::Unavailable(anyhow::anyhow!("{error}")),
        ErrorKind::Conflict => StoreError::Conflict(error.to_string()),
        ErrorKind::Internal => StoreError::Internal(anyhow::anyhow!("{error}")),
    }
}

enum ErrorKind {
    Unavailable,
    Conflict,
    Internal,
}

fn classify(error: &rusqlite::Error) -> ErrorKind {
    match error.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::NotADatabase
            | ErrorCode::DatabaseCorrupt,
        ) => ErrorKind::Unavailable,
        Some(ErrorCode::ConstraintViolation) => ErrorKind::Conflict,
        _ => ErrorKind::Internal,
    }
}

#[async_trait]
impl Store for SqliteStore {
    #[instrument(skip_all)]
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())))
    }

    #[instrument(skip_all)]
    async fn close(&self) -> StoreResult<()> {
        // Folds the WAL back into the database file so the next start opens a tidy file.
        self.writer.checkpoint().await
    }

    fn pool_usage(&self) -> Vec<crate::store::PoolUsage> {
        pool::usage(&self.readers, self.writer.pending())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_urls_map_to_paths() {
        assert_eq!(
            path_from_url("sqlite://omi-data/omi.db").unwrap(),
            PathBuf::from("omi-data/omi.db")
        );
        assert_eq!(
            path_from_url("sqlite:///var/lib/omi.db").unwrap(),
            PathBuf::from("/var/lib/omi.db")
        );
        assert!(path_from_url("sqlite://").is_err());
        assert!(path_from_url("postgres://x").is_err());
    }
}
