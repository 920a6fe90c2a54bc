//! Memories on PostgreSQL. Every statement is scoped by `user_id`; lists read an index in list
//! order.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tracing::instrument;

use super::feed::{change_stamp, leave_tombstone, lift_tombstones};
use super::rows::{insert_memories, memory_from_row, rewrite_memories};
use super::{PgStore, execute, lock_user, query, query_opt};
use crate::domain::feed::TombstoneType;
use crate::domain::memories::{Memory, MemoryCategory, MemoryChanges, NewMemory};
use crate::domain::paging::Page;
use crate::domain::time::Timestamp;
use crate::domain::webhooks::Change;
use crate::store::columns::MEMORY_COLUMNS;
use crate::store::{MemoryStore, StoreResult};

/// The memories `requests` leave, one per request in order: each applies to the latest state of
/// its id, stored or saved earlier in the batch, as if they ran one after another. Returns them
/// with the final state of each id, split into the ids to rewrite (`stored` held them) and to
/// insert.
fn resolve(
    requests: &[NewMemory],
    stored: Vec<Memory>,
    now: Timestamp,
) -> (Vec<Memory>, Vec<Memory>, Vec<Memory>) {
    let stored_count = stored.len();
    // The current state of every id met so far, the stored ones first.
    let mut latest = stored;
    let mut saved = Vec::with_capacity(requests.len());
    for request in requests.iter().cloned() {
        let memory = match latest.iter().position(|memory| memory.id == request.id()) {
            Some(index) => {
                let memory = request.applied_to(latest[index].clone(), now);
                latest[index] = memory.clone();
                memory
            }
            None => {
                let memory = request.into_memory(now, crate::processing::default_memory_category);
                latest.push(memory.clone());
                memory
            }
        };
        saved.push(memory);
    }
    let inserted = latest.split_off(stored_count);
    (saved, latest, inserted)
}

#[async_trait]
impl MemoryStore for PgStore {
    #[instrument(skip_all)]
    async fn list_memories(
        &self,
        user_id: &str,
        categories: &[MemoryCategory],
        page: Page,
    ) -> StoreResult<Vec<Memory>> {
        use std::sync::LazyLock;
        use tokio_postgres::types::ToSql;

        const ORDER: &str = "ORDER BY scoring DESC, created_at DESC, id DESC";
        static ALL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = $1 {ORDER} LIMIT $2 OFFSET $3"
            )
        });
        static BY_CATEGORY: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = $1 AND category = ANY($2)
                 {ORDER} LIMIT $3 OFFSET $4"
            )
        });
        let names: Vec<&str> = categories
            .iter()
            .map(|category| category.as_str())
            .collect();
        let rows = if names.is_empty() {
            // The hot list: the user's rows read in `memories_list_order`'s order, the best plan
            // whoever the user and whichever the page, so its generic plan is kept.
            with_lookup_connection!(self, |client| {
                query(client, &ALL, &[&user_id, &page.limit, &page.offset]).await
            })?
        } else {
            // Which index serves a category filter depends on the categories: planned each time.
            let params: [&(dyn ToSql + Sync); 4] = [&user_id, &names, &page.limit, &page.offset];
            with_connection!(self, |client| query(client, &BY_CATEGORY, &params).await)?
        };
        rows.iter().map(memory_from_row).collect()
    }

    #[instrument(skip_all)]
    async fn get_memory(&self, user_id: &str, memory_id: &str) -> StoreResult<Option<Memory>> {
        let sql = format!("SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = $1 AND id = $2");
        with_connection!(self, |client| {
            let row = query_opt(client, &sql, &[&user_id, &memory_id]).await?;
            row.as_ref().map(memory_from_row).transpose()
        })
    }

    #[instrument(skip_all, fields(count = requests.len()))]
    async fn save_memories(
        &self,
        user_id: &str,
        requests: Vec<NewMemory>,
        now: Timestamp,
    ) -> StoreResult<Vec<Memory>> {
        let ids: Vec<String> = requests.iter().map(NewMemory::id).collect();
        let find =
            format!("SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = $1 AND id = ANY($2)");
        in_transaction!(self, |tx| {
            // Saves of one user queue on the user's row, so two replicas creating the same
            // content at once update one memory instead of colliding on the key.
            lock_user(tx, user_id).await?;
            // One change time for the whole batch.
            let now = change_stamp(tx, user_id, now).await?;
            let stored: Vec<Memory> = query(tx, &find, &[&user_id, &ids])
                .await?
                .iter()
                .map(memory_from_row)
                .collect::<StoreResult<_>>()?;
            let (saved, rewritten, inserted) = resolve(&requests, stored, now);
            rewrite_memories(tx, user_id, &rewritten).await?;
            insert_memories(tx, user_id, &inserted).await?;
            lift_tombstones(tx, user_id, TombstoneType::Memory, &ids).await?;
            let changes: Vec<Change> = saved
                .iter()
                .map(|memory| Change::Memory {
                    created: memory.created_at == now,
                    memory: Box::new(memory.clone()),
                })
                .collect();
            super::webhooks::record(tx, user_id, &changes).await?;
            Ok(saved)
        })
    }

    #[instrument(skip_all)]
    async fn update_memory(
        &self,
        user_id: &str,
        memory_id: &str,
        changes: MemoryChanges,
        now: Timestamp,
    ) -> StoreResult<Option<Memory>> {
        let find = format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = $1 AND id = $2 FOR UPDATE"
        );
        in_transaction!(self, |tx| {
            // The change time first: the user row is always the first lock a write takes.
            let now = change_stamp(tx, user_id, now).await?;
            // The row lock keeps a concurrent PATCH from overwriting this one's fields.
            let Some(row) = query_opt(tx, &find, &[&user_id, &memory_id]).await? else {
                return Ok(None);
            };
            let memory = changes.clone().applied_to(memory_from_row(&row)?, now);
            rewrite_memories(tx, user_id, std::slice::from_ref(&memory)).await?;
            let change = Change::Memory {
                created: false,
                memory: Box::new(memory.clone()),
            };
            super::webhooks::record(tx, user_id, &[change]).await?;
            Ok(Some(memory))
        })
    }

    #[instrument(skip_all)]
    async fn delete_memory(&self, user_id: &str, memory_id: &str) -> StoreResult<bool> {
        in_transaction!(self, |tx| {
            let at = change_stamp(tx, user_id, crate::domain::time::now()).await?;
            let deleted = execute(
                tx,
                "DELETE FROM memories WHERE user_id = $1 AND id = $2",
                &[&user_id, &memory_id],
            )
            .await?;
            if deleted > 0 {
                leave_tombstone(tx, user_id, TombstoneType::Memory, memory_id, at).await?;
                let change = Change::MemoryDeleted {
                    id: memory_id.to_string(),
                    at,
                };
                super::webhooks::record(tx, user_id, &[change]).await?;
            }
            Ok(deleted > 0)
        })
    }
}
