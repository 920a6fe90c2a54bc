//! Kept Idempotency-Key answers on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use tracing::instrument;

use super::{SqliteStore, map_error};
use crate::domain::time::{from_micros, to_micros};
use crate::store::StoreResult;
use crate::store::idempotency::{
    IdempotencyClaim, IdempotencyClock, IdempotencyScope, IdempotencyStore, KeptResponse, KeptRow,
};

#[async_trait]
impl IdempotencyStore for SqliteStore {
    #[instrument(skip_all)]
    async fn claim_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
        clock: IdempotencyClock,
    ) -> StoreResult<IdempotencyClaim> {
        let (scope, fingerprint) = (scope.clone(), fingerprint.to_string());
        // On the writer: the read and the claim are one transaction, so two requests with the
        // same key cannot both run.
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM idempotency_keys WHERE key_id = ?1 AND created_at < ?2",
                params![scope.key_id, to_micros(clock.expired_before)],
            )
            .map_err(map_error)?;
            let existing = tx
                .query_row(
                    "SELECT fingerprint, created_at, status, content_type, body
                     FROM idempotency_keys
                     WHERE key_id = ?1 AND method = ?2 AND path = ?3 AND idempotency_key = ?4",
                    params![
                        scope.key_id,
                        scope.method,
                        scope.path,
                        scope.idempotency_key
                    ],
                    |row| {
                        let status: Option<i64> = row.get(2)?;
                        Ok(KeptRow {
                            fingerprint: row.get(0)?,
                            created_at: from_micros(row.get(1)?),
                            response: match status {
                                Some(status) => Some(KeptResponse {
                                    status: status as u16,
                                    content_type: row.get(3)?,
                                    body: row.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                                }),
                                None => None,
                            },
                        })
                    },
                )
                .optional()
                .map_err(map_error)?;
            if let Some(decided) = existing.and_then(|row| row.decide(&fingerprint, &clock)) {
                return Ok(decided);
            }
            tx.execute(
                "INSERT INTO idempotency_keys
                     (key_id, method, path, idempotency_key, fingerprint, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (key_id, method, path, idempotency_key) DO UPDATE SET
                     fingerprint = excluded.fingerprint, created_at = excluded.created_at,
                     status = NULL, content_type = NULL, body = NULL",
                params![
                    scope.key_id,
                    scope.method,
                    scope.path,
                    scope.idempotency_key,
                    fingerprint,
                    to_micros(clock.now)
                ],
            )
            .map_err(map_error)?;
            Ok(IdempotencyClaim::Run)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn complete_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        response: &KeptResponse,
    ) -> StoreResult<()> {
        let (scope, response) = (scope.clone(), response.clone());
        self.write(move |tx| {
            tx.execute(
                "UPDATE idempotency_keys SET status = ?5, content_type = ?6, body = ?7
                 WHERE key_id = ?1 AND method = ?2 AND path = ?3 AND idempotency_key = ?4",
                params![
                    scope.key_id,
                    scope.method,
                    scope.path,
                    scope.idempotency_key,
                    i64::from(response.status),
                    response.content_type,
                    response.body
                ],
            )
            .map(|_| ())
            .map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn release_idempotency_key(&self, scope: &IdempotencyScope) -> StoreResult<()> {
        let scope = scope.clone();
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM idempotency_keys
                 WHERE key_id = ?1 AND method = ?2 AND path = ?3 AND idempotency_key = ?4
                   AND status IS NULL",
                params![
                    scope.key_id,
                    scope.method,
                    scope.path,
                    scope.idempotency_key
                ],
            )
            .map(|_| ())
            .map_err(map_error)
        })
        .await
    }
}
