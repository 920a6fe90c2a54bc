//! Users and developer keys on PostgreSQL.

use std::sync::LazyLock;

use async_trait::async_trait;
use tokio_postgres::Row;
use tracing::instrument;

use super::{PgStore, execute, lock_user, query, query_opt};
use crate::domain::keys::DevApiKey;
use crate::domain::scope::{Scope, ScopeSet};
use crate::domain::time::Timestamp;
use crate::domain::users::User;
use crate::store::columns::{KEY_COLUMNS, USER_COLUMNS};
use crate::store::{AuthenticatedKey, IdentityStore, NewApiKey, NewUser, StoreError, StoreResult};

static KEY_BY_HASH_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"));

/// Reads `USER_COLUMNS`.
fn user_from_row(row: &Row) -> StoreResult<User> {
    Ok(User {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        display_name: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

/// Reads `KEY_COLUMNS`. Scope names this build does not know are ignored.
fn key_from_row(row: &Row) -> StoreResult<AuthenticatedKey> {
    let names: Vec<String> = row.try_get(3)?;
    let scopes: ScopeSet = names.iter().filter_map(|name| Scope::parse(name)).collect();
    Ok(AuthenticatedKey {
        key: DevApiKey {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            key_prefix: row.try_get(2)?,
            scopes,
            created_at: row.try_get(4)?,
            last_used_at: row.try_get(5)?,
        },
        user_id: row.try_get(6)?,
    })
}

#[async_trait]
impl IdentityStore for PgStore {
    #[instrument(skip_all)]
    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        let inserted = with_connection!(self, |client| {
            execute(
                client,
                "INSERT INTO users (id, name, display_name, token_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (name) DO NOTHING",
                &[
                    &user.id,
                    &user.name,
                    &user.display_name,
                    &user.token_hash,
                    &user.created_at,
                ],
            )
            .await
        })?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a user named '{}' already exists",
                user.name
            )));
        }
        Ok(User {
            id: user.id,
            name: user.name,
            display_name: user.display_name,
            created_at: user.created_at,
        })
    }

    #[instrument(skip_all)]
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id");
        with_connection!(self, |client| {
            let rows = query(client, &sql, &[]).await?;
            rows.iter().map(user_from_row).collect()
        })
    }

    #[instrument(skip_all)]
    async fn count_users(&self) -> StoreResult<u64> {
        with_connection!(self, |client| {
            let row = query_opt(client, "SELECT count(*) FROM users", &[]).await?;
            let count: i64 = row.map(|row| row.try_get(0)).transpose()?.unwrap_or(0);
            Ok(count as u64)
        })
    }

    #[instrument(skip_all)]
    async fn find_user(&self, id_or_name: &str) -> StoreResult<Option<User>> {
        // An id match wins over a name match (API.md §8 `--user`).
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1 OR name = $1
             ORDER BY (id = $1) DESC LIMIT 1"
        );
        with_connection!(self, |client| {
            let row = query_opt(client, &sql, &[&id_or_name]).await?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    #[instrument(skip_all)]
    async fn find_user_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE token_hash = $1");
        with_connection!(self, |client| {
            let row = query_opt(client, &sql, &[&token_hash]).await?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    #[instrument(skip_all)]
    async fn create_key(&self, key: NewApiKey, max_per_user: usize) -> StoreResult<DevApiKey> {
        let scopes = key.scopes.names();
        in_transaction!(self, |tx| {
            // The owner's row lock serializes key creation per user across every replica, so
            // the count below cannot be overtaken by a concurrent insert.
            lock_user(tx, &key.user_id).await?;
            let held: i64 = query_opt(
                tx,
                "SELECT count(*) FROM api_keys WHERE user_id = $1",
                &[&key.user_id],
            )
            .await?
            .map(|row| row.try_get(0))
            .transpose()?
            .unwrap_or(0);
            if held as usize >= max_per_user {
                return Err(StoreError::LimitReached);
            }
            execute(
                tx,
                "INSERT INTO api_keys (id, user_id, name, key_hash, key_prefix, scopes, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &key.id,
                    &key.user_id,
                    &key.name,
                    &key.key_hash,
                    &key.key_prefix,
                    &scopes,
                    &key.created_at,
                ],
            )
            .await?;
            Ok(())
        })?;
        Ok(DevApiKey {
            id: key.id,
            name: key.name,
            key_prefix: key.key_prefix,
            scopes: key.scopes,
            created_at: key.created_at,
            last_used_at: None,
        })
    }

    #[instrument(skip_all)]
    async fn list_keys(&self, user_id: &str) -> StoreResult<Vec<DevApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1
             ORDER BY created_at DESC, id DESC"
        );
        with_connection!(self, |client| {
            let rows = query(client, &sql, &[&user_id]).await?;
            rows.iter()
                .map(|row| key_from_row(row).map(|found| found.key))
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn find_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<AuthenticatedKey>> {
        // Every request's first statement; `key_hash` is unique, so its index is the plan.
        with_lookup_connection!(self, |client| {
            let row = query_opt(client, &KEY_BY_HASH_SQL, &[&key_hash]).await?;
            row.as_ref().map(key_from_row).transpose()
        })
    }

    #[instrument(skip_all)]
    async fn find_key_by_id(&self, key_id: &str) -> StoreResult<Option<AuthenticatedKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        with_connection!(self, |client| {
            let row = query_opt(client, &sql, &[&key_id]).await?;
            row.as_ref().map(key_from_row).transpose()
        })
    }

    #[instrument(skip_all)]
    async fn rotate_key(
        &self,
        user_id: &str,
        key_id: &str,
        key_hash: &str,
        key_prefix: &str,
    ) -> StoreResult<Option<DevApiKey>> {
        let sql = format!(
            "UPDATE api_keys SET key_hash = $1, key_prefix = $2, last_used_at = NULL
             WHERE id = $3 AND user_id = $4
             RETURNING {KEY_COLUMNS}"
        );
        with_connection!(self, |client| {
            let row = query_opt(client, &sql, &[&key_hash, &key_prefix, &key_id, &user_id]).await?;
            row.as_ref()
                .map(|row| key_from_row(row).map(|found| found.key))
                .transpose()
        })
    }

    #[instrument(skip_all)]
    async fn delete_key(&self, user_id: &str, key_id: &str) -> StoreResult<bool> {
        in_transaction!(self, |tx| {
            let at = super::feed::change_stamp(tx, user_id, crate::domain::time::now()).await?;
            let deleted = execute(
                tx,
                "DELETE FROM api_keys WHERE id = $1 AND user_id = $2",
                &[&key_id, &user_id],
            )
            .await?;
            if deleted > 0 {
                super::feed::leave_tombstone(
                    tx,
                    user_id,
                    crate::domain::feed::TombstoneType::Key,
                    key_id,
                    at,
                )
                .await?;
            }
            Ok(deleted > 0)
        })
    }

    #[instrument(skip_all)]
    async fn touch_key(
        &self,
        key_id: &str,
        at: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<()> {
        with_connection!(self, |client| {
            let touched = execute(
                client,
                "UPDATE api_keys SET last_used_at = $1
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
                &[&at, &key_id, &stale_before],
            )
            .await?;
            if touched == 0 {
                // Not a key (or fresh): an OAuth grant authenticates under its own id.
                execute(
                    client,
                    "UPDATE oauth_grants SET last_used_at = $1
                     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
                    &[&at, &key_id, &stale_before],
                )
                .await?;
            }
            Ok(())
        })
    }
}
