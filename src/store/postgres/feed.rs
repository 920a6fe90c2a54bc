//! The change feed on PostgreSQL: the per-user change clock every write takes its time from, the
//! tombstones deletions leave, and the feed reads (see `store::feed` for why the order holds).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tracing::instrument;

use super::conversations::{
    FOLDERS_SQL, attach_details, conversation_from_row, list_or_feed_query,
};
use super::goals::goal_from_row;
use super::rows::{action_item_from_row, memory_from_row};
use super::{PgStore, execute, query, query_opt};
use crate::domain::action_items::{ActionItem, ActionItemFilter};
use crate::domain::conversations::Conversation;
use crate::domain::feed::{FeedWindow, Tombstone, TombstoneType};
use crate::domain::folders::Folder;
use crate::domain::goals::Goal;
use crate::domain::memories::{Memory, MemoryCategory};
use crate::domain::time::Timestamp;
use crate::store::StoreResult;
use crate::store::columns::{ACTION_ITEM_COLUMNS, GOAL_COLUMNS, MEMORY_COLUMNS};
use crate::store::conversations::ConversationFilter;
use crate::store::feed::FeedStore;

/// Moves the user's change clock to `greatest(now, last + 1 µs)` and returns it: the `updated_at`
/// of everything this write transaction changes. The update locks the user row until commit, so
/// the user's writers on every replica take their times in commit order. Call it first in the
/// transaction, so the user row is always the first lock a write takes (no lock-order deadlocks).
pub(super) async fn change_stamp(
    client: &impl GenericClient,
    user_id: &str,
    now: Timestamp,
) -> StoreResult<Timestamp> {
    let row = query_opt(
        client,
        "UPDATE users
         SET last_change_at = greatest($2::timestamptz, last_change_at + interval '1 microsecond')
         WHERE id = $1 RETURNING last_change_at",
        &[&user_id, &now],
    )
    .await?;
    match row {
        Some(row) => Ok(row.try_get(0)?),
        None => Ok(now),
    }
}

/// Records that the object is gone (or that it went again, later).
pub(super) async fn leave_tombstone(
    client: &impl GenericClient,
    user_id: &str,
    kind: TombstoneType,
    id: &str,
    at: Timestamp,
) -> StoreResult<()> {
    execute(
        client,
        "INSERT INTO tombstones (user_id, object_type, object_id, deleted_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, object_type, object_id)
         DO UPDATE SET deleted_at = excluded.deleted_at",
        &[&user_id, &kind.as_str(), &id, &at],
    )
    .await
    .map(|_| ())
}

/// Objects that exist again (a memory's id comes back with its content) are no longer gone.
pub(super) async fn lift_tombstones(
    client: &impl GenericClient,
    user_id: &str,
    kind: TombstoneType,
    ids: &[String],
) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    execute(
        client,
        "DELETE FROM tombstones
         WHERE user_id = $1 AND object_type = $2 AND object_id = ANY($3)",
        &[&user_id, &kind.as_str(), &ids],
    )
    .await
    .map(|_| ())
}

pub(super) async fn lift_tombstone(
    client: &impl GenericClient,
    user_id: &str,
    kind: TombstoneType,
    id: &str,
) -> StoreResult<()> {
    lift_tombstones(client, user_id, kind, &[id.to_string()]).await
}

/// A feed query under construction: its text and its parameters, numbered as they are added.
pub struct FeedQuery<'a> {
    pub sql: String,
    pub params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> FeedQuery<'a> {
    /// `base` filters on `user_id = $1`.
    pub fn new(base: &str, user_id: &'a &'a str) -> Self {
        FeedQuery {
            sql: base.to_string(),
            params: vec![user_id],
        }
    }

    /// `condition` with `$?` standing for the parameter's number.
    pub fn and(&mut self, condition: &str, value: &'a (dyn ToSql + Sync)) {
        self.params.push(value);
        self.sql.push_str(" AND ");
        self.sql
            .push_str(&condition.replace("$?", &format!("${}", self.params.len())));
    }

    /// The window's bounds on `{prefix}updated_at, {prefix}id`, the feed order and the limit.
    pub fn window(mut self, prefix: &str, window: &'a FeedWindow) -> Self {
        if let Some(since) = &window.since {
            self.and(&format!("{prefix}updated_at >= $?"), since);
        }
        if let Some(after) = &window.after {
            self.params.push(&after.at);
            self.params.push(&after.id);
            let count = self.params.len();
            self.sql.push_str(&format!(
                " AND ({prefix}updated_at, {prefix}id) > (${}, ${count})",
                count - 1
            ));
        }
        self.params.push(&window.limit);
        self.sql.push_str(&format!(
            " ORDER BY {prefix}updated_at, {prefix}id LIMIT ${}",
            self.params.len()
        ));
        self
    }
}

#[async_trait]
impl FeedStore for PgStore {
    #[instrument(skip_all)]
    async fn memories_changed(
        &self,
        user_id: &str,
        categories: &[MemoryCategory],
        window: &FeedWindow,
    ) -> StoreResult<Vec<Memory>> {
        let names: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
        let user_id = &user_id;
        let mut feed = FeedQuery::new(
            &format!("SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = $1"),
            user_id,
        );
        if !names.is_empty() {
            feed.and("category = ANY($?)", &names);
        }
        let feed = feed.window("", window);
        with_connection!(self, |client| {
            let rows = query(client, &feed.sql, &feed.params).await?;
            rows.iter().map(memory_from_row).collect()
        })
    }

    #[instrument(skip_all)]
    async fn action_items_changed(
        &self,
        user_id: &str,
        filter: ActionItemFilter,
        window: &FeedWindow,
    ) -> StoreResult<Vec<ActionItem>> {
        if filter.is_empty_range() {
            return Ok(Vec::new());
        }
        let user_id = &user_id;
        let mut feed = FeedQuery::new(
            &format!("SELECT {ACTION_ITEM_COLUMNS} FROM action_items WHERE user_id = $1"),
            user_id,
        );
        if let Some(conversation_id) = &filter.conversation_id {
            feed.and("conversation_id = $?", conversation_id);
        }
        if let Some(completed) = &filter.completed {
            feed.and("completed = $?", completed);
        }
        if let Some(from) = &filter.created_from {
            feed.and("created_at >= $?", from);
        }
        if let Some(before) = &filter.created_before {
            feed.and("created_at < $?", before);
        }
        let feed = feed.window("", window);
        with_connection!(self, |client| {
            let rows = query(client, &feed.sql, &feed.params).await?;
            rows.iter().map(action_item_from_row).collect()
        })
    }

    #[instrument(skip_all)]
    async fn conversations_changed(
        &self,
        user_id: &str,
        filter: &ConversationFilter,
        window: &FeedWindow,
        include_transcript: bool,
    ) -> StoreResult<Vec<Conversation>> {
        let (sql, params) = list_or_feed_query(&user_id, filter, Ok(window));
        with_connection!(self, |client| {
            let rows = query(client, &sql, &params).await?;
            let loaded = rows
                .iter()
                .map(conversation_from_row)
                .collect::<StoreResult<_>>()?;
            attach_details(client, user_id, loaded, include_transcript).await
        })
    }

    #[instrument(skip_all)]
    async fn goals_changed(&self, user_id: &str, window: &FeedWindow) -> StoreResult<Vec<Goal>> {
        let user_id = &user_id;
        let feed = FeedQuery::new(
            &format!("SELECT {GOAL_COLUMNS} FROM goals WHERE user_id = $1"),
            user_id,
        )
        .window("", window);
        with_connection!(self, |client| {
            let rows = query(client, &feed.sql, &feed.params).await?;
            rows.iter().map(goal_from_row).collect()
        })
    }

    #[instrument(skip_all)]
    async fn folders_changed(
        &self,
        user_id: &str,
        window: &FeedWindow,
    ) -> StoreResult<Vec<Folder>> {
        let base = FOLDERS_SQL
            .split(" ORDER BY")
            .next()
            .expect("the folder query has a body");
        let user_id = &user_id;
        let feed = FeedQuery::new(base, user_id).window("f.", window);
        with_connection!(self, |client| {
            let rows = query(client, &feed.sql, &feed.params).await?;
            rows.iter()
                .map(|row| Ok(super::conversations::folder_from_row(row)?))
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn deletions(
        &self,
        user_id: &str,
        types: &[TombstoneType],
        window: &FeedWindow,
    ) -> StoreResult<Vec<Tombstone>> {
        let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        let user_id = &user_id;
        let mut feed = FeedQuery::new(
            "SELECT object_type, object_id, deleted_at FROM tombstones WHERE user_id = $1",
            user_id,
        );
        if !names.is_empty() {
            feed.and("object_type = ANY($?)", &names);
        }
        // Ties on `deleted_at` (one transaction's deletions) are broken by `type/id`.
        let key = "(object_type || '/' || object_id) COLLATE \"C\"";
        if let Some(since) = &window.since {
            feed.and("deleted_at >= $?", since);
        }
        if let Some(after) = &window.after {
            feed.params.push(&after.at);
            feed.params.push(&after.id);
            let count = feed.params.len();
            feed.sql.push_str(&format!(
                " AND (deleted_at, {key}) > (${}, ${count})",
                count - 1
            ));
        }
        feed.params.push(&window.limit);
        feed.sql.push_str(&format!(
            " ORDER BY deleted_at, {key} LIMIT ${}",
            feed.params.len()
        ));
        with_connection!(self, |client| {
            let rows = query(client, &feed.sql, &feed.params).await?;
            let mut tombstones = Vec::with_capacity(rows.len());
            for row in &rows {
                let kind: &str = row.try_get(0)?;
                if let Some(kind) = TombstoneType::parse(kind) {
                    tombstones.push(Tombstone {
                        kind,
                        id: row.try_get(1)?,
                        deleted_at: row.try_get(2)?,
                    });
                }
            }
            Ok(tombstones)
        })
    }

    #[instrument(skip_all)]
    async fn prune_tombstones(&self, before: Timestamp, limit: i64) -> StoreResult<u64> {
        with_connection!(self, |client| {
            execute(
                client,
                "DELETE FROM tombstones WHERE ctid IN
                     (SELECT ctid FROM tombstones WHERE deleted_at < $1 LIMIT $2)",
                &[&before, &limit],
            )
            .await
        })
    }
}
