//! Users and developer keys on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};
use tracing::instrument;

use super::{SqliteStore, map_error};
use crate::domain::keys::DevApiKey;
use crate::domain::scope::ScopeSet;
use crate::domain::time::{Timestamp, from_micros, to_micros};
use crate::domain::users::User;
use crate::store::columns::{KEY_COLUMNS, USER_COLUMNS};
use crate::store::{AuthenticatedKey, IdentityStore, NewApiKey, NewUser, StoreError, StoreResult};

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        name: row.get(1)?,
        display_name: row.get(2)?,
        created_at: from_micros(row.get(3)?),
    })
}

/// Reads `KEY_COLUMNS`.
fn key_from_row(row: &Row<'_>) -> rusqlite::Result<AuthenticatedKey> {
    Ok(AuthenticatedKey {
        key: DevApiKey {
            id: row.get(0)?,
            name: row.get(1)?,
            key_prefix: row.get(2)?,
            scopes: ScopeSet::from_bits(row.get(3)?),
            created_at: from_micros(row.get(4)?),
            last_used_at: row.get::<_, Option<i64>>(5)?.map(from_micros),
        },
        user_id: row.get(6)?,
    })
}

#[async_trait]
impl IdentityStore for SqliteStore {
    #[instrument(skip_all)]
    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.write(move |tx| {
            let inserted = tx
                .execute(
                    "INSERT INTO users (id, name, display_name, token_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO NOTHING",
                    params![
                        user.id,
                        user.name,
                        user.display_name,
                        user.token_hash,
                        to_micros(user.created_at)
                    ],
                )
                .map_err(map_error)?;
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
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"
            ))?;
            stmt.query_map([], user_from_row)?.collect()
        })
    }

    #[instrument(skip_all)]
    async fn count_users(&self) -> StoreResult<u64> {
        self.read(|c| c.query_row("SELECT COUNT(*) FROM users", [], |row| row.get::<_, i64>(0)))
            .map(|count| count as u64)
    }

    #[instrument(skip_all)]
    async fn find_user(&self, id_or_name: &str) -> StoreResult<Option<User>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id = ?1
                 UNION ALL
                 SELECT {USER_COLUMNS} FROM users WHERE name = ?1 AND id <> ?1
                 LIMIT 1"
            ))?;
            stmt.query_row([id_or_name], user_from_row).optional()
        })
    }

    #[instrument(skip_all)]
    async fn find_user_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<User>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE token_hash = ?1"
            ))?;
            stmt.query_row([token_hash], user_from_row).optional()
        })
    }

    #[instrument(skip_all)]
    async fn create_key(&self, key: NewApiKey, max_per_user: usize) -> StoreResult<DevApiKey> {
        self.write(move |tx| {
            let held: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM api_keys WHERE user_id = ?1",
                    [&key.user_id],
                    |row| row.get(0),
                )
                .map_err(map_error)?;
            if held as usize >= max_per_user {
                return Err(StoreError::LimitReached);
            }
            tx.execute(
                "INSERT INTO api_keys (id, user_id, name, key_hash, key_prefix, scopes, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    key.id,
                    key.user_id,
                    key.name,
                    key.key_hash,
                    key.key_prefix,
                    key.scopes.bits(),
                    to_micros(key.created_at)
                ],
            )
            .map_err(map_error)?;
            Ok(DevApiKey {
                id: key.id,
                name: key.name,
                key_prefix: key.key_prefix,
                scopes: key.scopes,
                created_at: key.created_at,
                last_used_at: None,
            })
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_keys(&self, user_id: &str) -> StoreResult<Vec<DevApiKey>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1
                 ORDER BY created_at DESC, id DESC"
            ))?;
            stmt.query_map([user_id], |row| key_from_row(row).map(|found| found.key))?
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn find_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<AuthenticatedKey>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"
            ))?;
            stmt.query_row([key_hash], key_from_row).optional()
        })
    }

    #[instrument(skip_all)]
    async fn find_key_by_id(&self, key_id: &str) -> StoreResult<Option<AuthenticatedKey>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))?;
            stmt.query_row([key_id], key_from_row).optional()
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
        let (user_id, key_id) = (user_id.to_string(), key_id.to_string());
        let (key_hash, key_prefix) = (key_hash.to_string(), key_prefix.to_string());
        self.write(move |tx| {
            tx.query_row(
                &format!(
                    "UPDATE api_keys SET key_hash = ?1, key_prefix = ?2, last_used_at = NULL
                     WHERE id = ?3 AND user_id = ?4
                     RETURNING {KEY_COLUMNS}"
                ),
                params![key_hash, key_prefix, key_id, user_id],
                |row| key_from_row(row).map(|found| found.key),
            )
            .optional()
            .map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn delete_key(&self, user_id: &str, key_id: &str) -> StoreResult<bool> {
        let (user_id, key_id) = (user_id.to_string(), key_id.to_string());
        self.write(move |tx| {
            let deleted = tx
                .execute(
                    "DELETE FROM api_keys WHERE id = ?1 AND user_id = ?2",
                    params![key_id, user_id],
                )
                .map_err(map_error)?;
            if deleted > 0 {
                let at = super::feed::change_stamp(tx, &user_id, crate::domain::time::now())
                    .map_err(map_error)?;
                super::feed::leave_tombstone(
                    tx,
                    &user_id,
                    crate::domain::feed::TombstoneType::Key,
                    &key_id,
                    at,
                )
                .map_err(map_error)?;
            }
            Ok(deleted > 0)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn touch_key(
        &self,
        key_id: &str,
        at: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<()> {
        let key_id = key_id.to_string();
        self.write(move |tx| {
            let touched = tx
                .execute(
                    "UPDATE api_keys SET last_used_at = ?1
                     WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?3)",
                    params![to_micros(at), key_id, to_micros(stale_before)],
                )
                .map_err(map_error)?;
            if touched == 0 {
                // Not a key (or fresh): an OAuth grant authenticates under its own id.
                tx.execute(
                    "UPDATE oauth_grants SET last_used_at = ?1
                     WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?3)",
                    params![to_micros(at), key_id, to_micros(stale_before)],
                )
                .map_err(map_error)?;
            }
            Ok(())
        })
        .await
    }
}
