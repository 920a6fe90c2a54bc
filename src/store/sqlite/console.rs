//! Web console sessions on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use tracing::instrument;

use super::{SqliteStore, map_error};
use crate::domain::time::{Timestamp, from_micros, to_micros};
use crate::domain::users::User;
use crate::store::StoreResult;
use crate::store::console::{ConsoleSession, ConsoleStore, NewConsoleSession, SessionBounds};

#[async_trait]
impl ConsoleStore for SqliteStore {
    #[instrument(skip_all)]
    async fn create_console_session(
        &self,
        session: NewConsoleSession,
        bounds: SessionBounds,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM console_sessions
                 WHERE user_id = ?1 AND (created_at <= ?2 OR last_seen_at <= ?3)",
                params![
                    session.user_id,
                    to_micros(bounds.created_after),
                    to_micros(bounds.seen_after)
                ],
            )
            .map_err(map_error)?;
            tx.execute(
                "INSERT INTO console_sessions (id_hash, user_id, token_hash, created_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![
                    session.id_hash,
                    session.user_id,
                    session.token_hash,
                    to_micros(session.created_at)
                ],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    #[instrument(skip_all)]
    async fn find_console_session(
        &self,
        id_hash: &str,
        bounds: SessionBounds,
    ) -> StoreResult<Option<ConsoleSession>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT u.id, u.name, u.display_name, u.created_at, s.created_at, s.last_seen_at
                 FROM console_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id_hash = ?1 AND s.token_hash = u.token_hash
                   AND s.created_at > ?2 AND s.last_seen_at > ?3",
            )?;
            stmt.query_row(
                params![
                    id_hash,
                    to_micros(bounds.created_after),
                    to_micros(bounds.seen_after)
                ],
                |row| {
                    Ok(ConsoleSession {
                        user: User {
                            id: row.get(0)?,
                            name: row.get(1)?,
                            display_name: row.get(2)?,
                            created_at: from_micros(row.get(3)?),
                        },
                        created_at: from_micros(row.get(4)?),
                        last_seen_at: from_micros(row.get(5)?),
                    })
                },
            )
            .optional()
        })
    }

    #[instrument(skip_all)]
    async fn touch_console_session(&self, id_hash: &str, at: Timestamp) -> StoreResult<()> {
        let id_hash = id_hash.to_string();
        self.write(move |tx| {
            tx.execute(
                "UPDATE console_sessions SET last_seen_at = ?2
                 WHERE id_hash = ?1 AND last_seen_at < ?2",
                params![id_hash, to_micros(at)],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    #[instrument(skip_all)]
    async fn delete_console_session(&self, id_hash: &str) -> StoreResult<()> {
        let id_hash = id_hash.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM console_sessions WHERE id_hash = ?1", [id_hash])
                .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    #[instrument(skip_all)]
    async fn replace_account_token(&self, user_id: &str, token_hash: &str) -> StoreResult<bool> {
        let (user_id, token_hash) = (user_id.to_string(), token_hash.to_string());
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE users SET token_hash = ?2 WHERE id = ?1",
                    params![user_id, token_hash],
                )
                .map_err(map_error)?;
            tx.execute(
                "DELETE FROM console_sessions WHERE user_id = ?1",
                [&user_id],
            )
            .map_err(map_error)?;
            Ok(changed == 1)
        })
        .await
    }
}
