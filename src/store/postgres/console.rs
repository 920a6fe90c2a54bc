//! Web console sessions on PostgreSQL.

use async_trait::async_trait;
use tracing::instrument;

use super::{PgStore, execute, query_opt};
use crate::domain::time::Timestamp;
use crate::domain::users::User;
use crate::store::StoreResult;
use crate::store::console::{ConsoleSession, ConsoleStore, NewConsoleSession, SessionBounds};

#[async_trait]
impl ConsoleStore for PgStore {
    #[instrument(skip_all)]
    async fn create_console_session(
        &self,
        session: NewConsoleSession,
        bounds: SessionBounds,
    ) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            execute(
                tx,
                "DELETE FROM console_sessions
                 WHERE user_id = $1 AND (created_at <= $2 OR last_seen_at <= $3)",
                &[&session.user_id, &bounds.created_after, &bounds.seen_after],
            )
            .await?;
            execute(
                tx,
                "INSERT INTO console_sessions (id_hash, user_id, token_hash, created_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $4)",
                &[
                    &session.id_hash,
                    &session.user_id,
                    &session.token_hash,
                    &session.created_at,
                ],
            )
            .await?;
            Ok(())
        })
    }

    #[instrument(skip_all)]
    async fn find_console_session(
        &self,
        id_hash: &str,
        bounds: SessionBounds,
    ) -> StoreResult<Option<ConsoleSession>> {
        let row = with_connection!(self, |client| {
            query_opt(
                client,
                "SELECT u.id, u.name, u.display_name, u.created_at, s.created_at, s.last_seen_at
                 FROM console_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id_hash = $1 AND s.token_hash = u.token_hash
                   AND s.created_at > $2 AND s.last_seen_at > $3",
                &[&id_hash, &bounds.created_after, &bounds.seen_after],
            )
            .await
        })?;
        row.map(|row| {
            Ok(ConsoleSession {
                user: User {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    display_name: row.try_get(2)?,
                    created_at: row.try_get(3)?,
                },
                created_at: row.try_get(4)?,
                last_seen_at: row.try_get(5)?,
            })
        })
        .transpose()
    }

    #[instrument(skip_all)]
    async fn touch_console_session(&self, id_hash: &str, at: Timestamp) -> StoreResult<()> {
        with_connection!(self, |client| {
            execute(
                client,
                "UPDATE console_sessions SET last_seen_at = $2
                 WHERE id_hash = $1 AND last_seen_at < $2",
                &[&id_hash, &at],
            )
            .await
        })?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn delete_console_session(&self, id_hash: &str) -> StoreResult<()> {
        with_connection!(self, |client| {
            execute(
                client,
                "DELETE FROM console_sessions WHERE id_hash = $1",
                &[&id_hash],
            )
            .await
        })?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn replace_account_token(&self, user_id: &str, token_hash: &str) -> StoreResult<bool> {
        in_transaction!(self, |tx| {
            let changed = execute(
                tx,
                "UPDATE users SET token_hash = $2 WHERE id = $1",
                &[&user_id, &token_hash],
            )
            .await?;
            execute(
                tx,
                "DELETE FROM console_sessions WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
            Ok(changed == 1)
        })
    }
}
