//! The PostgreSQL backend, for several server replicas sharing one database.
//!
//! Connection model:
//! - `OMI_PG_POOL_SIZE` connections per process (deadpool), in two pools that differ only in
//!   how statements are planned (see [`PgStore`]), each connection with its own
//!   prepared-statement cache, checked only for being closed when handed out (no extra round
//!   trip per request);
//! - every operation runs within `OMI_PG_TIMEOUT_MS`: connecting, waiting for a free connection
//!   and the statements themselves (also enforced by the server as `statement_timeout`), so an
//!   unreachable database answers 503 instead of hanging; a connection abandoned at the deadline
//!   is discarded rather than handed to the next request;
//! - writes that read before they write take a row lock on the owner (`SELECT ... FOR UPDATE` on
//!   the user row) inside READ COMMITTED transactions, so per-user rules hold across replicas;
//!   serialization failures and deadlocks are retried a few times before answering 503.

/// `with_connection!(store, |client| body)`: evaluates `body` (an expression of type
/// `StoreResult<T>` that may use `.await` and `?`) with `client: &Object` taken from the pool,
/// within the operation deadline, and again on a serialization failure. For reads and
/// single-statement writes.
///
/// Macros rather than functions taking async closures: a closure borrowing its connection
/// argument cannot yet be proven `Send` for every lifetime, which `async_trait` requires.
macro_rules! with_connection {
    ($store:expr, |$client:ident| $body:expr) => {
        with_connection!(@from connection, $store, |$client| $body)
    };
    (@from $take:ident, $store:expr, |$client:ident| $body:expr) => {{
        let store: &$crate::store::postgres::PgStore = $store;
        store
            .retrying(|| async {
                let deadline = store.deadline();
                let connection = store.$take(deadline).await?;
                let outcome = store
                    .within_deadline(deadline, async {
                        let $client = &connection;
                        $body
                    })
                    .await;
                store.settle(connection, outcome)
            })
            .await
    }};
}

/// `with_lookup_connection!(store, |client| body)`: like `with_connection!`, on a connection of
/// the lookup pool, where statements keep their generic plan (see [`PgStore`]). Only for reads
/// whose best plan is the same for every value and every table size.
macro_rules! with_lookup_connection {
    ($store:expr, |$client:ident| $body:expr) => {
        with_connection!(@from lookup_connection, $store, |$client| $body)
    };
}

/// `in_transaction!(store, |tx| body)`: like `with_connection!`, inside one READ COMMITTED
/// transaction that commits whole or not at all: an `Err` from `body` rolls it back, an `Ok`
/// (also one given by `return`) commits. The whole transaction runs again on a serialization
/// failure or deadlock.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store: &$crate::store::postgres::PgStore = $store;
        store
            .retrying(|| async {
                let deadline = store.deadline();
                let mut connection = store.connection(deadline).await?;
                let outcome = store
                    .within_deadline(deadline, async {
                        let transaction = connection
                            .transaction()
                            .await
                            .map_err($crate::store::postgres::map_error)?;
                        // Its own block, so that a `return` in `body` still commits.
                        let value: $crate::store::StoreResult<_> = async {
                            let $tx = &transaction;
                            $body
                        }
                        .await;
                        let value = value?;
                        transaction
                            .commit()
                            .await
                            .map_err($crate::store::postgres::map_error)?;
                        Ok(value)
                    })
                    .await;
                store.settle(connection, outcome)
            })
            .await
    }};
}

mod action_items;
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
mod memories;
mod migrations;
mod oauth;
pub mod rows;
mod search;
pub mod tls;
mod vectors;
mod webhooks;

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use deadpool_postgres::{
    GenericClient, Hook, HookError, Manager, ManagerConfig, Object, Pool, PoolError,
    RecyclingMethod, Runtime,
};
use tokio::time::Instant;
use tokio::time::error::Elapsed;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tracing::instrument;

use crate::config::Settings;
use crate::outbound::Outbound;
use crate::store::{Store, StoreError, StoreResult};

use self::tls::PgUrl;

/// How many times an operation runs when PostgreSQL reports a serialization failure or deadlock.
const MAX_ATTEMPTS: u32 = 5;

/// The general pool's plan mode: each execution planned for its values.
const CUSTOM_PLANS: &str = "SET plan_cache_mode = force_custom_plan";
/// The lookup pool's plan mode: each prepared statement planned once per connection.
const GENERIC_PLANS: &str = "SET plan_cache_mode = force_generic_plan";

#[derive(Debug, Clone)]
pub struct PgOptions {
    pub url: String,
    pub pool_size: usize,
    pub timeout: Duration,
    /// Trusted roots for `sslmode=verify-*` without `sslrootcert`.
    pub outbound: Outbound,
}

impl PgOptions {
    pub fn from_settings(settings: &Settings, outbound: &Outbound) -> Self {
        PgOptions {
            url: settings.database_url.expose().to_string(),
            pool_size: settings.pg_pool_size.max(1),
            timeout: Duration::from_millis(settings.pg_timeout_ms.max(1)),
            outbound: outbound.clone(),
        }
    }
}

/// Two pools share `OMI_PG_POOL_SIZE` connections: the general one plans every execution of a
/// statement for its values, and the lookup one keeps each prepared statement's generic plan.
///
/// A cached statement otherwise switches to a generic plan after five runs, chosen from the
/// statistics of that moment: a connection opened while a table was nearly empty kept
/// sequential-scan plans as it grew (seeding 100k memories slowed from ~200 to ~5 batches/s
/// until a restart). Planning each run keeps the index plans, but for the hottest reads (the
/// key lookup of every request, the plain memory list) planning cost PostgreSQL more time than
/// running them. Their best plan is the same for every value and every table size (a lookup by
/// a unique key, one user's rows read in an index's order), so they run on connections whose
/// mode says so once, at connect, rather than switching a general connection's mode around each
/// of them (two more statements per read: docs/BENCHMARKS.md, "The read path, profiled").
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    lookups: Pool,
    timeout: Duration,
}

/// How `OMI_PG_POOL_SIZE` is shared: half for the lookups (every request makes one), the rest
/// for everything else; at least one each.
fn pool_sizes(total: usize) -> (usize, usize) {
    let lookups = (total / 2).max(1);
    (total.saturating_sub(lookups).max(1), lookups)
}

impl PgStore {
    /// Connects, and applies pending migrations under an advisory lock so that replicas starting
    /// together do not race.
    pub async fn open(options: &PgOptions) -> anyhow::Result<Self> {
        let url = PgUrl::parse(&options.url)?;
        let tls = url.connector(&options.outbound)?;
        let mut config = url.config.clone();
        config.connect_timeout(options.timeout);
        if config.get_application_name().is_none() {
            config.application_name("omi-server");
        }
        let manager = || {
            Manager::from_config(
                config.clone(),
                tls.clone(),
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            )
        };
        let statement_timeout = format!("SET statement_timeout = {}", options.timeout.as_millis());
        let (general_size, lookup_size) = pool_sizes(options.pool_size);
        let build = |size: usize, plans: &'static str| {
            let statement_timeout = statement_timeout.clone();
            Pool::builder(manager())
                .max_size(size)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(options.timeout))
                .create_timeout(Some(options.timeout))
                .recycle_timeout(Some(options.timeout))
                .post_create(Hook::async_fn(move |client, _| {
                    let statement_timeout = statement_timeout.clone();
                    Box::pin(async move {
                        client
                            .batch_execute(&statement_timeout)
                            .await
                            .map_err(HookError::Backend)?;
                        // Servers without the setting (PostgreSQL before 12, some
                        // PostgreSQL-wire databases) just keep their default.
                        if let Err(error) = client.batch_execute(plans).await {
                            tracing::debug!(error = %error, "plan_cache_mode is not supported");
                        }
                        Ok(())
                    })
                }))
                .build()
                .context("building the PostgreSQL connection pool")
        };
        let pool = build(general_size, CUSTOM_PLANS)?;
        let lookups = build(lookup_size, GENERIC_PLANS)?;
        let mut client = pool.get().await.map_err(|error| {
            let reason = match &error {
                PoolError::Backend(error) => with_causes(error),
                other => other.to_string(),
            };
            match url.explain(&reason) {
                Some(advice) => anyhow::anyhow!("connecting to PostgreSQL: {advice}: {reason}"),
                None => anyhow::anyhow!("connecting to PostgreSQL: {reason}"),
            }
        })?;
        migrations::apply(&mut client).await?;
        drop(client);
        Ok(PgStore {
            pool,
            lookups,
            timeout: options.timeout,
        })
    }

    /// Runs `attempt` again (a few times, after a short pause) while it fails with a
    /// serialization failure or a deadlock.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(error) if tries < MAX_ATTEMPTS && is_retryable(&error) => {
                    tracing::debug!(error = %error, tries, "retrying a PostgreSQL transaction");
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
                    tries += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// When an operation starting now must have finished, connection included.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    pub(crate) async fn connection(&self, deadline: Instant) -> StoreResult<Object> {
        self.take(&self.pool, deadline).await
    }

    /// A connection of the lookup pool (generic plans).
    pub(crate) async fn lookup_connection(&self, deadline: Instant) -> StoreResult<Object> {
        self.take(&self.lookups, deadline).await
    }

    async fn take(&self, pool: &Pool, deadline: Instant) -> StoreResult<Object> {
        match tokio::time::timeout_at(deadline, pool.get()).await {
            Ok(connection) => connection.map_err(map_pool_error),
            Err(_) => Err(self.timed_out()),
        }
    }

    pub(crate) async fn within_deadline<T>(
        &self,
        deadline: Instant,
        work: impl Future<Output = StoreResult<T>>,
    ) -> Result<StoreResult<T>, Elapsed> {
        tokio::time::timeout_at(deadline, work).await
    }

    fn timed_out(&self) -> StoreError {
        StoreError::Unavailable(anyhow::anyhow!(
            "PostgreSQL did not answer within {} ms",
            self.timeout.as_millis()
        ))
    }

    /// A connection whose operation ran past the deadline may still be waiting on a stalled
    /// network: it is detached from the pool (and so closed) instead of being reused.
    pub(crate) fn settle<T>(
        &self,
        connection: Object,
        outcome: Result<StoreResult<T>, Elapsed>,
    ) -> StoreResult<T> {
        match outcome {
            Ok(result) => result,
            Err(_) => {
                drop(Object::take(connection));
                Err(self.timed_out())
            }
        }
    }
}

/// PostgreSQL errors that mean the database cannot serve now (503) rather than a bug (500).
fn is_unavailable_state(state: &SqlState) -> bool {
    let code = state.code();
    // 08: connection exception; 53: insufficient resources (too many connections, disk full);
    // 57: operator intervention (shutdown, statement timeout); 58: system error; 28: the
    // credentials stopped working; 3D: the database is gone; 25006: a read-only standby after
    // failover; 55P03: lock not available; 40001/40P01: still conflicting after the retries.
    ["08", "53", "57", "58", "28", "3D"]
        .iter()
        .any(|class| code.starts_with(class))
        || [
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ]
        .contains(state)
}

pub(crate) fn map_error(error: tokio_postgres::Error) -> StoreError {
    match error.code() {
        // 23: integrity constraint violation (unique, foreign key, check).
        Some(state) if state.code().starts_with("23") => {
            let message = error
                .as_db_error()
                .map(|db| db.message().to_string())
                .unwrap_or_else(|| error.to_string());
            StoreError::Conflict(message)
        }
        Some(state) if is_unavailable_state(state) => StoreError::Unavailable(error.into()),
        Some(_) => StoreError::Internal(error.into()),
        // Without a server error code: a closed connection or a socket failure is an outage;
        // anything else (a type mismatch, a missing column) is a bug.
        None if error.is_closed() || has_io_cause(&error) => StoreError::Unavailable(error.into()),
        None => StoreError::Internal(error.into()),
    }
}

/// The error and its causes on one line (the driver's own message omits the cause, such as
/// "connection refused").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text
}

fn has_io_cause(error: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        if current.is::<std::io::Error>() {
            return true;
        }
        cause = current.source();
    }
    false
}

fn map_pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => map_error(error),
        PoolError::PostCreateHook(HookError::Backend(error)) => map_error(error),
        PoolError::Timeout(_) | PoolError::Closed | PoolError::PostCreateHook(_) => {
            StoreError::Unavailable(anyhow::anyhow!("PostgreSQL connection pool: {error}"))
        }
        PoolError::NoRuntimeSpecified => StoreError::Internal(anyhow::anyhow!("{error}")),
    }
}

fn is_retryable(error: &StoreError) -> bool {
    let StoreError::Unavailable(cause) = error else {
        return false;
    };
    cause
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|state| {
            *state == SqlState::T_R_SERIALIZATION_FAILURE
                || *state == SqlState::T_R_DEADLOCK_DETECTED
        })
}

/// Runs one statement through the connection's prepared-statement cache.
pub(crate) async fn query_opt(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Option<Row>> {
    let statement = client.prepare_cached(sql).await.map_err(map_error)?;
    client
        .query_opt(&statement, params)
        .await
        .map_err(map_error)
}

/// Runs one statement through the connection's prepared-statement cache.
pub(crate) async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Vec<Row>> {
    let statement = client.prepare_cached(sql).await.map_err(map_error)?;
    client.query(&statement, params).await.map_err(map_error)
}

/// Runs one statement through the connection's prepared-statement cache.
pub(crate) async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<u64> {
    let statement = client.prepare_cached(sql).await.map_err(map_error)?;
    client.execute(&statement, params).await.map_err(map_error)
}

/// Locks the user's row until the transaction ends: writes that check a per-user rule before
/// writing (a cap, an upsert by content) queue here, on every replica.
pub(crate) async fn lock_user(client: &impl GenericClient, user_id: &str) -> StoreResult<()> {
    query_opt(
        client,
        "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
        &[&user_id],
    )
    .await
    .map(|_| ())
}

#[async_trait]
impl Store for PgStore {
    #[instrument(skip_all)]
    async fn ping(&self) -> StoreResult<()> {
        with_connection!(self, |client| {
            client
                .simple_query("SELECT 1")
                .await
                .map(|_| ())
                .map_err(map_error)
        })
    }

    #[instrument(skip_all)]
    async fn close(&self) -> StoreResult<()> {
        self.pool.close();
        self.lookups.close();
        Ok(())
    }

    fn pool_usage(&self) -> Vec<crate::store::PoolUsage> {
        let usage =
            |pool: &'static str, status: deadpool_postgres::Status| crate::store::PoolUsage {
                pool,
                max: status.max_size,
                open: status.size,
                // `available` counts idle connections only; deadpool reports waiters separately.
                in_use: status.size.saturating_sub(status.available),
                waiting: Some(status.waiting),
            };
        vec![
            usage("postgres", self.pool.status()),
            usage("postgres_lookups", self.lookups.status()),
        ]
    }
}

/// Lets row mapping use `?` on `Row::try_get`: a column of an unexpected type becomes an error
/// the caller sees, never a panic in a request.
impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        map_error(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database on the server `OMI_TEST_DATABASE_URL` names, dropped at the end.
    async fn with_scratch_database(test: impl AsyncFnOnce(&str)) {
        let Ok(server) = std::env::var("OMI_TEST_DATABASE_URL") else {
            eprintln!("skipped: set OMI_TEST_DATABASE_URL to run it");
            return;
        };
        let (admin, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .expect("connecting to the test server");
        tokio::spawn(connection);
        let name = format!("omi_unit_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (base, _) = server.rsplit_once('/').expect("a database in the URL");
        test(&format!("{base}/{name}")).await;
        admin
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn lookups_keep_their_generic_plan_and_other_statements_are_planned_each_run() {
        with_scratch_database(async |url| {
            let store = PgStore::open(&PgOptions {
                url: url.to_string(),
                pool_size: 1,
                timeout: Duration::from_secs(5),
                outbound: Outbound::system(),
            })
            .await
            .unwrap();
            /// How the connection plans: its mode and the (generic, custom) plans made for a
            /// read run three times on it.
            async fn mode_and_plans(client: &Object) -> StoreResult<(String, (i64, i64))> {
                let read = "SELECT id FROM users WHERE id = $1";
                for _ in 0..3 {
                    query(client, read, &[&"someone"]).await?;
                }
                let mode: String = client.query_one("SHOW plan_cache_mode", &[]).await?.get(0);
                let row = query_opt(
                    client,
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements
                     WHERE statement = $1",
                    &[&read],
                )
                .await?
                .expect("a prepared statement");
                Ok((mode, (row.get(0), row.get(1))))
            }
            let lookup = with_lookup_connection!(&store, |client| mode_and_plans(client).await);
            let general = with_connection!(&store, |client| mode_and_plans(client).await);
            assert_eq!(
                lookup.unwrap(),
                ("force_generic_plan".to_string(), (3, 0)),
                "the lookup pool: mode, (generic, custom) plans"
            );
            assert_eq!(
                general.unwrap(),
                ("force_custom_plan".to_string(), (0, 3)),
                "the general pool: mode, (generic, custom) plans"
            );
            assert_eq!(
                store
                    .pool_usage()
                    .iter()
                    .map(|usage| (usage.pool, usage.max))
                    .collect::<Vec<_>>(),
                [("postgres", 1), ("postgres_lookups", 1)],
                "a pool size of 1 still gives each pool a connection"
            );
            store.close().await.unwrap();
        })
        .await;
    }

    #[test]
    fn the_pool_size_is_shared_half_and_half() {
        assert_eq!(pool_sizes(16), (8, 8));
        assert_eq!(pool_sizes(5), (3, 2));
        assert_eq!(pool_sizes(2), (1, 1));
        assert_eq!(pool_sizes(1), (1, 1));
    }
}
