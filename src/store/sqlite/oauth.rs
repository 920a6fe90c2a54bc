//! OAuth clients, codes, grants and tokens on SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tracing::instrument;

use super::{SqliteStore, map_error};
use crate::domain::keys::DevApiKey;
use crate::domain::oauth::ACCESS_TOKEN_PREFIX;
use crate::domain::scope::ScopeSet;
use crate::domain::time::{Timestamp, from_micros, to_micros};
use crate::store::oauth::{
    CodeRedemption, NewAuthorizationCode, NewTokens, OAuthClient, OAuthGrant, OAuthStore, Redeemed,
    Refreshed,
};
use crate::store::{AuthenticatedKey, StoreError, StoreResult};

/// Stores an access and a refresh token for the grant, and forgets its expired ones.
fn insert_tokens(
    tx: &Connection,
    grant_id: &str,
    tokens: &NewTokens,
    now: Timestamp,
) -> StoreResult<()> {
    let now = to_micros(now);
    tx.execute(
        "DELETE FROM oauth_tokens WHERE grant_id = ?1 AND expires_at <= ?2",
        params![grant_id, now],
    )
    .map_err(map_error)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO oauth_tokens (token_hash, grant_id, kind, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(map_error)?;
    insert
        .execute(params![
            tokens.access_hash,
            grant_id,
            "access",
            now,
            to_micros(tokens.access_expires_at)
        ])
        .map_err(map_error)?;
    insert
        .execute(params![
            tokens.refresh_hash,
            grant_id,
            "refresh",
            now,
            to_micros(tokens.refresh_expires_at)
        ])
        .map_err(map_error)?;
    Ok(())
}

fn uris_to_json(uris: &[String]) -> StoreResult<String> {
    serde_json::to_string(uris).map_err(|error| StoreError::Internal(error.into()))
}

#[async_trait]
impl OAuthStore for SqliteStore {
    #[instrument(skip_all)]
    async fn register_oauth_client(
        &self,
        client: OAuthClient,
        unused_before: Timestamp,
        max_clients: u64,
    ) -> StoreResult<bool> {
        let uris = uris_to_json(&client.redirect_uris)?;
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM oauth_clients
                 WHERE created_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.id)",
                [to_micros(unused_before)],
            )
            .map_err(map_error)?;
            let held: i64 = tx
                .query_row("SELECT count(*) FROM oauth_clients", [], |row| row.get(0))
                .map_err(map_error)?;
            if held as u64 >= max_clients {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO oauth_clients (id, name, redirect_uris, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![client.id, client.name, uris, to_micros(client.created_at)],
            )
            .map_err(map_error)?;
            Ok(true)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn find_oauth_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>> {
        let found = self.read(|c| {
            c.prepare_cached(
                "SELECT id, name, redirect_uris, created_at FROM oauth_clients WHERE id = ?1",
            )?
            .query_row([client_id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })
            .optional()
        })?;
        found
            .map(|(id, name, uris, created_at)| {
                Ok(OAuthClient {
                    id,
                    name,
                    redirect_uris: serde_json::from_str(&uris)
                        .map_err(|error| StoreError::Internal(error.into()))?,
                    created_at: from_micros(created_at),
                })
            })
            .transpose()
    }

    #[instrument(skip_all)]
    async fn create_authorization_code(
        &self,
        code: NewAuthorizationCode,
        forget_before: Timestamp,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM oauth_codes WHERE expires_at < ?1",
                [to_micros(forget_before)],
            )
            .map_err(map_error)?;
            tx.execute(
                "INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, scopes,
                                          code_challenge, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    code.code_hash,
                    code.client_id,
                    code.user_id,
                    code.redirect_uri,
                    code.scopes.bits(),
                    code.code_challenge,
                    to_micros(code.created_at),
                    to_micros(code.expires_at)
                ],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    #[instrument(skip_all)]
    async fn redeem_authorization_code(&self, redemption: CodeRedemption) -> StoreResult<Redeemed> {
        self.write(move |tx| {
            let row = tx
                .query_row(
                    "SELECT client_id, user_id, redirect_uri, scopes, code_challenge, expires_at,
                            used_at
                     FROM oauth_codes WHERE code_hash = ?1",
                    [&redemption.code_hash],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, i64>(5)?,
                            row.get::<_, Option<i64>>(6)?,
                        ))
                    },
                )
                .optional()
                .map_err(map_error)?;
            let Some((client_id, user_id, redirect_uri, scopes, challenge, expires_at, used_at)) =
                row
            else {
                return Ok(Redeemed::Unknown);
            };
            if used_at.is_some() {
                tx.execute(
                    "DELETE FROM oauth_grants WHERE code_hash = ?1",
                    [&redemption.code_hash],
                )
                .map_err(map_error)?;
                return Ok(Redeemed::Reused);
            }
            let now = to_micros(redemption.now);
            tx.execute(
                "UPDATE oauth_codes SET used_at = ?2 WHERE code_hash = ?1",
                params![redemption.code_hash, now],
            )
            .map_err(map_error)?;
            if client_id != redemption.client_id
                || redirect_uri != redemption.redirect_uri
                || challenge != redemption.code_challenge
                || expires_at <= now
            {
                return Ok(Redeemed::Mismatch);
            }
            tx.execute(
                "INSERT INTO oauth_grants (id, user_id, client_id, scopes, code_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    redemption.grant_id,
                    user_id,
                    client_id,
                    scopes,
                    redemption.code_hash,
                    now
                ],
            )
            .map_err(map_error)?;
            insert_tokens(tx, &redemption.grant_id, &redemption.tokens, redemption.now)?;
            Ok(Redeemed::Granted {
                scopes: ScopeSet::from_bits(scopes),
            })
        })
        .await
    }

    #[instrument(skip_all)]
    async fn rotate_refresh_token(
        &self,
        refresh_hash: &str,
        client_id: &str,
        now: Timestamp,
        tokens: NewTokens,
    ) -> StoreResult<Refreshed> {
        let (refresh_hash, client_id) = (refresh_hash.to_string(), client_id.to_string());
        self.write(move |tx| {
            let row = tx
                .query_row(
                    "SELECT t.grant_id, t.expires_at, t.rotated_at, g.client_id, g.scopes
                     FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
                     WHERE t.token_hash = ?1 AND t.kind = 'refresh'",
                    [&refresh_hash],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, Option<i64>>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(map_error)?;
            let Some((grant_id, expires_at, rotated_at, owner, scopes)) = row else {
                return Ok(Refreshed::Invalid);
            };
            if owner != client_id {
                return Ok(Refreshed::Invalid);
            }
            if rotated_at.is_some() {
                tx.execute("DELETE FROM oauth_grants WHERE id = ?1", [&grant_id])
                    .map_err(map_error)?;
                return Ok(Refreshed::Reused);
            }
            if expires_at <= to_micros(now) {
                return Ok(Refreshed::Invalid);
            }
            tx.execute(
                "UPDATE oauth_tokens SET rotated_at = ?2 WHERE token_hash = ?1",
                params![refresh_hash, to_micros(now)],
            )
            .map_err(map_error)?;
            insert_tokens(tx, &grant_id, &tokens, now)?;
            Ok(Refreshed::Rotated {
                scopes: ScopeSet::from_bits(scopes),
            })
        })
        .await
    }

    #[instrument(skip_all)]
    async fn find_access_token(
        &self,
        access_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<AuthenticatedKey>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT g.id, c.name, g.scopes, g.created_at, g.last_used_at, g.user_id
                 FROM oauth_tokens t
                 JOIN oauth_grants g ON g.id = t.grant_id
                 JOIN oauth_clients c ON c.id = g.client_id
                 WHERE t.token_hash = ?1 AND t.kind = 'access' AND t.expires_at > ?2",
            )?
            .query_row(params![access_hash, to_micros(now)], |row| {
                Ok(AuthenticatedKey {
                    key: DevApiKey {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        key_prefix: format!("{ACCESS_TOKEN_PREFIX}..."),
                        scopes: ScopeSet::from_bits(row.get(2)?),
                        created_at: from_micros(row.get(3)?),
                        last_used_at: row.get::<_, Option<i64>>(4)?.map(from_micros),
                    },
                    user_id: row.get(5)?,
                })
            })
            .optional()
        })
    }

    #[instrument(skip_all)]
    async fn revoke_oauth_token(&self, token_hash: &str, client_id: &str) -> StoreResult<()> {
        let (token_hash, client_id) = (token_hash.to_string(), client_id.to_string());
        self.write(move |tx| {
            let row = tx
                .query_row(
                    "SELECT t.kind, t.grant_id FROM oauth_tokens t
                     JOIN oauth_grants g ON g.id = t.grant_id
                     WHERE t.token_hash = ?1 AND g.client_id = ?2",
                    params![token_hash, client_id],
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(map_error)?;
            match row {
                Some((kind, grant_id)) if kind == "refresh" => {
                    tx.execute("DELETE FROM oauth_grants WHERE id = ?1", [grant_id])
                        .map_err(map_error)?;
                }
                Some(_) => {
                    tx.execute(
                        "DELETE FROM oauth_tokens WHERE token_hash = ?1",
                        [token_hash],
                    )
                    .map_err(map_error)?;
                }
                None => {}
            }
            Ok(())
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_oauth_grants(&self, user_id: &str) -> StoreResult<Vec<OAuthGrant>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT g.id, c.name, g.scopes, g.created_at, g.last_used_at
                 FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id
                 WHERE g.user_id = ?1
                 ORDER BY g.created_at DESC, g.id DESC",
            )?
            .query_map([user_id], |row| {
                Ok(OAuthGrant {
                    id: row.get(0)?,
                    client_name: row.get(1)?,
                    scopes: ScopeSet::from_bits(row.get(2)?).names(),
                    created_at: from_micros(row.get(3)?),
                    last_used_at: row.get::<_, Option<i64>>(4)?.map(from_micros),
                })
            })?
            .collect()
        })
    }

    #[instrument(skip_all)]
    async fn delete_oauth_grant(&self, user_id: &str, grant_id: &str) -> StoreResult<bool> {
        let (user_id, grant_id) = (user_id.to_string(), grant_id.to_string());
        self.write(move |tx| {
            let deleted = tx
                .execute(
                    "DELETE FROM oauth_grants WHERE id = ?1 AND user_id = ?2",
                    params![grant_id, user_id],
                )
                .map_err(map_error)?;
            Ok(deleted == 1)
        })
        .await
    }
}
