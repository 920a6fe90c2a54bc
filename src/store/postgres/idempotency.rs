//! Kept Idempotency-Key answers on PostgreSQL. Replicas share the rows, so a retry sent to
//! another replica is answered the same way.

use async_trait::async_trait;
use tracing::instrument;

use super::{PgStore, execute, query_opt};
use crate::store::StoreResult;
use crate::store::idempotency::{
    IdempotencyClaim, IdempotencyClock, IdempotencyScope, IdempotencyStore, KeptResponse, KeptRow,
};

#[async_trait]
impl IdempotencyStore for PgStore {
    #[instrument(skip_all)]
    async fn claim_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
        clock: IdempotencyClock,
    ) -> StoreResult<IdempotencyClaim> {
        in_transaction!(self, |tx| {
            execute(
                tx,
                "DELETE FROM idempotency_keys WHERE key_id = $1 AND created_at < $2",
                &[&scope.key_id, &clock.expired_before],
            )
            .await?;
            // Inserting first makes a concurrent request with the same scope wait on the row
            // until this transaction ends, then find it.
            let inserted = execute(
                tx,
                "INSERT INTO idempotency_keys
                     (key_id, method, path, idempotency_key, fingerprint, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (key_id, method, path, idempotency_key) DO NOTHING",
                &[
                    &scope.key_id,
                    &scope.method,
                    &scope.path,
                    &scope.idempotency_key,
                    &fingerprint,
                    &clock.now,
                ],
            )
            .await?;
            if inserted > 0 {
                return Ok(IdempotencyClaim::Run);
            }
            let row = query_opt(
                tx,
                "SELECT fingerprint, created_at, status, content_type, body
                 FROM idempotency_keys
                 WHERE key_id = $1 AND method = $2 AND path = $3 AND idempotency_key = $4
                 FOR UPDATE",
                &[
                    &scope.key_id,
                    &scope.method,
                    &scope.path,
                    &scope.idempotency_key,
                ],
            )
            .await?;
            let existing = match row {
                Some(row) => {
                    let status: Option<i32> = row.try_get(2)?;
                    Some(KeptRow {
                        fingerprint: row.try_get(0)?,
                        created_at: row.try_get(1)?,
                        response: match status {
                            Some(status) => Some(KeptResponse {
                                status: status as u16,
                                content_type: row.try_get(3)?,
                                body: row.try_get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                            }),
                            None => None,
                        },
                    })
                }
                None => None,
            };
            if let Some(decided) = existing.and_then(|row| row.decide(fingerprint, &clock)) {
                return Ok(decided);
            }
            execute(
                tx,
                "INSERT INTO idempotency_keys
                     (key_id, method, path, idempotency_key, fingerprint, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (key_id, method, path, idempotency_key) DO UPDATE SET
                     fingerprint = excluded.fingerprint, created_at = excluded.created_at,
                     status = NULL, content_type = NULL, body = NULL",
                &[
                    &scope.key_id,
                    &scope.method,
                    &scope.path,
                    &scope.idempotency_key,
                    &fingerprint,
                    &clock.now,
                ],
            )
            .await?;
            Ok(IdempotencyClaim::Run)
        })
    }

    #[instrument(skip_all)]
    async fn complete_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        response: &KeptResponse,
    ) -> StoreResult<()> {
        with_connection!(self, |client| {
            execute(
                client,
                "UPDATE idempotency_keys SET status = $5, content_type = $6, body = $7
                 WHERE key_id = $1 AND method = $2 AND path = $3 AND idempotency_key = $4",
                &[
                    &scope.key_id,
                    &scope.method,
                    &scope.path,
                    &scope.idempotency_key,
                    &i32::from(response.status),
                    &response.content_type,
                    &response.body,
                ],
            )
            .await
            .map(|_| ())
        })
    }

    #[instrument(skip_all)]
    async fn release_idempotency_key(&self, scope: &IdempotencyScope) -> StoreResult<()> {
        with_connection!(self, |client| {
            execute(
                client,
                "DELETE FROM idempotency_keys
                 WHERE key_id = $1 AND method = $2 AND path = $3 AND idempotency_key = $4
                   AND status IS NULL",
                &[
                    &scope.key_id,
                    &scope.method,
                    &scope.path,
                    &scope.idempotency_key,
                ],
            )
            .await
            .map(|_| ())
        })
    }
}
