//! OAuth clients, codes, grants and tokens on PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tracing::instrument;

use super::{PgStore, execute, query, query_opt};
use crate::domain::keys::DevApiKey;
use crate::domain::oauth::ACCESS_TOKEN_PREFIX;
use crate::domain::scope::{Scope, ScopeSet};
use crate::domain::time::Timestamp;
use crate::store::oauth::{
    CodeRedemption, NewAuthorizationCode, NewTokens, OAuthClient, OAuthGrant, OAuthStore, Redeemed,
    Refreshed,
};
use crate::store::{AuthenticatedKey, StoreResult};

/// Scope names this build does not know are ignored.
fn scopes_of(names: Vec<String>) -> ScopeSet {
    names.iter().filter_map(|name| Scope::parse(name)).collect()
}

/// Stores an access and a refresh token for the grant, and forgets its expired ones.
async fn insert_tokens(
    tx: &impl GenericClient,
    grant_id: &str,
    tokens: &NewTokens,
    now: Timestamp,
) -> StoreResult<()> {
    execute(
        tx,
        "DELETE FROM oauth_tokens WHERE grant_id = $1 AND expires_at <= $2",
        &[&grant_id, &now],
    )
    .await?;
    let insert = "INSERT INTO oauth_tokens (token_hash, grant_id, kind, created_at, expires_at)
                  VALUES ($1, $2, $3, $4, $5)";
    execute(
        tx,
        insert,
        &[
            &tokens.access_hash,
            &grant_id,
            &"access",
            &now,
            &tokens.access_expires_at,
        ],
    )
    .await?;
    execute(
        tx,
        insert,
        &[
            &tokens.refresh_hash,
            &grant_id,
            &"refresh",
            &now,
            &tokens.refresh_expires_at,
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl OAuthStore for PgStore {
    #[instrument(skip_all)]
    async fn register_oauth_client(
        &self,
        client: OAuthClient,
        unused_before: Timestamp,
        max_clients: u64,
    ) -> StoreResult<bool> {
        in_transaction!(self, |tx| {
            // One registration at a time, so the count below holds until the insert.
            execute(tx, "LOCK TABLE oauth_clients IN EXCLUSIVE MODE", &[]).await?;
            execute(
                tx,
                "DELETE FROM oauth_clients c
                 WHERE c.created_at < $1
                   AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = c.id)",
                &[&unused_before],
            )
            .await?;
            let held: i64 = query_opt(tx, "SELECT count(*) FROM oauth_clients", &[])
                .await?
                .map(|row| row.try_get(0))
                .transpose()?
                .unwrap_or(0);
            if held as u64 >= max_clients {
                return Ok(false);
            }
            execute(
                tx,
                "INSERT INTO oauth_clients (id, name, redirect_uris, created_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &client.id,
                    &client.name,
                    &client.redirect_uris,
                    &client.created_at,
                ],
            )
            .await?;
            Ok(true)
        })
    }

    #[instrument(skip_all)]
    async fn find_oauth_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>> {
        let row = with_connection!(self, |client| {
            query_opt(
                client,
                "SELECT id, name, redirect_uris, created_at FROM oauth_clients WHERE id = $1",
                &[&client_id],
            )
            .await
        })?;
        row.map(|row| {
            Ok(OAuthClient {
                id: row.try_get(0)?,
                name: row.try_get(1)?,
                redirect_uris: row.try_get(2)?,
                created_at: row.try_get(3)?,
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
        let scopes = code.scopes.names();
        in_transaction!(self, |tx| {
            execute(
                tx,
                "DELETE FROM oauth_codes WHERE expires_at < $1",
                &[&forget_before],
            )
            .await?;
            execute(
                tx,
                "INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, scopes,
                                          code_challenge, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &code.code_hash,
                    &code.client_id,
                    &code.user_id,
                    &code.redirect_uri,
                    &scopes,
                    &code.code_challenge,
                    &code.created_at,
                    &code.expires_at,
                ],
            )
            .await?;
            Ok(())
        })
    }

    #[instrument(skip_all)]
    async fn redeem_authorization_code(&self, redemption: CodeRedemption) -> StoreResult<Redeemed> {
        let r = &redemption;
        in_transaction!(self, |tx| {
            // FOR UPDATE: two redemptions of one code queue here, and the second sees it used.
            let Some(row) = query_opt(
                tx,
                "SELECT client_id, user_id, redirect_uri, scopes, code_challenge, expires_at,
                        used_at
                 FROM oauth_codes WHERE code_hash = $1 FOR UPDATE",
                &[&r.code_hash],
            )
            .await?
            else {
                return Ok(Redeemed::Unknown);
            };
            let client_id: String = row.try_get(0)?;
            let user_id: String = row.try_get(1)?;
            let redirect_uri: String = row.try_get(2)?;
            let scopes: Vec<String> = row.try_get(3)?;
            let challenge: String = row.try_get(4)?;
            let expires_at: Timestamp = row.try_get(5)?;
            let used_at: Option<Timestamp> = row.try_get(6)?;
            if used_at.is_some() {
                execute(
                    tx,
                    "DELETE FROM oauth_grants WHERE code_hash = $1",
                    &[&r.code_hash],
                )
                .await?;
                return Ok(Redeemed::Reused);
            }
            execute(
                tx,
                "UPDATE oauth_codes SET used_at = $2 WHERE code_hash = $1",
                &[&r.code_hash, &r.now],
            )
            .await?;
            if client_id != r.client_id
                || redirect_uri != r.redirect_uri
                || challenge != r.code_challenge
                || expires_at <= r.now
            {
                return Ok(Redeemed::Mismatch);
            }
            execute(
                tx,
                "INSERT INTO oauth_grants (id, user_id, client_id, scopes, code_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &r.grant_id,
                    &user_id,
                    &client_id,
                    &scopes,
                    &r.code_hash,
                    &r.now,
                ],
            )
            .await?;
            insert_tokens(tx, &r.grant_id, &r.tokens, r.now).await?;
            Ok(Redeemed::Granted {
                scopes: scopes_of(scopes),
            })
        })
    }

    #[instrument(skip_all)]
    async fn rotate_refresh_token(
        &self,
        refresh_hash: &str,
        client_id: &str,
        now: Timestamp,
        tokens: NewTokens,
    ) -> StoreResult<Refreshed> {
        let tokens = &tokens;
        in_transaction!(self, |tx| {
            let Some(row) = query_opt(
                tx,
                "SELECT t.grant_id, t.expires_at, t.rotated_at, g.client_id, g.scopes
                 FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
                 WHERE t.token_hash = $1 AND t.kind = 'refresh'
                 FOR UPDATE OF t",
                &[&refresh_hash],
            )
            .await?
            else {
                return Ok(Refreshed::Invalid);
            };
            let grant_id: String = row.try_get(0)?;
            let expires_at: Timestamp = row.try_get(1)?;
            let rotated_at: Option<Timestamp> = row.try_get(2)?;
            let owner: String = row.try_get(3)?;
            let scopes: Vec<String> = row.try_get(4)?;
            if owner != client_id {
                return Ok(Refreshed::Invalid);
            }
            if rotated_at.is_some() {
                execute(tx, "DELETE FROM oauth_grants WHERE id = $1", &[&grant_id]).await?;
                return Ok(Refreshed::Reused);
            }
            if expires_at <= now {
                return Ok(Refreshed::Invalid);
            }
            execute(
                tx,
                "UPDATE oauth_tokens SET rotated_at = $2 WHERE token_hash = $1",
                &[&refresh_hash, &now],
            )
            .await?;
            insert_tokens(tx, &grant_id, tokens, now).await?;
            Ok(Refreshed::Rotated {
                scopes: scopes_of(scopes),
            })
        })
    }

    #[instrument(skip_all)]
    async fn find_access_token(
        &self,
        access_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<AuthenticatedKey>> {
        let row = with_connection!(self, |client| {
            query_opt(
                client,
                "SELECT g.id, c.name, g.scopes, g.created_at, g.last_used_at, g.user_id
                 FROM oauth_tokens t
                 JOIN oauth_grants g ON g.id = t.grant_id
                 JOIN oauth_clients c ON c.id = g.client_id
                 WHERE t.token_hash = $1 AND t.kind = 'access' AND t.expires_at > $2",
                &[&access_hash, &now],
            )
            .await
        })?;
        row.map(|row| {
            Ok(AuthenticatedKey {
                key: DevApiKey {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    key_prefix: format!("{ACCESS_TOKEN_PREFIX}..."),
                    scopes: scopes_of(row.try_get(2)?),
                    created_at: row.try_get(3)?,
                    last_used_at: row.try_get(4)?,
                },
                user_id: row.try_get(5)?,
            })
        })
        .transpose()
    }

    #[instrument(skip_all)]
    async fn revoke_oauth_token(&self, token_hash: &str, client_id: &str) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            let row = query_opt(
                tx,
                "SELECT t.kind, t.grant_id FROM oauth_tokens t
                 JOIN oauth_grants g ON g.id = t.grant_id
                 WHERE t.token_hash = $1 AND g.client_id = $2",
                &[&token_hash, &client_id],
            )
            .await?;
            if let Some(row) = row {
                let kind: String = row.try_get(0)?;
                let grant_id: String = row.try_get(1)?;
                if kind == "refresh" {
                    execute(tx, "DELETE FROM oauth_grants WHERE id = $1", &[&grant_id]).await?;
                } else {
                    execute(
                        tx,
                        "DELETE FROM oauth_tokens WHERE token_hash = $1",
                        &[&token_hash],
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }

    #[instrument(skip_all)]
    async fn list_oauth_grants(&self, user_id: &str) -> StoreResult<Vec<OAuthGrant>> {
        let rows = with_connection!(self, |client| {
            query(
                client,
                "SELECT g.id, c.name, g.scopes, g.created_at, g.last_used_at
                 FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id
                 WHERE g.user_id = $1
                 ORDER BY g.created_at DESC, g.id DESC",
                &[&user_id],
            )
            .await
        })?;
        rows.iter()
            .map(|row| {
                Ok(OAuthGrant {
                    id: row.try_get(0)?,
                    client_name: row.try_get(1)?,
                    scopes: scopes_of(row.try_get(2)?).names(),
                    created_at: row.try_get(3)?,
                    last_used_at: row.try_get(4)?,
                })
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn delete_oauth_grant(&self, user_id: &str, grant_id: &str) -> StoreResult<bool> {
        let deleted = with_connection!(self, |client| {
            execute(
                client,
                "DELETE FROM oauth_grants WHERE id = $1 AND user_id = $2",
                &[&grant_id, &user_id],
            )
            .await
        })?;
        Ok(deleted == 1)
    }
}
