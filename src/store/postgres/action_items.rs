//! Action items on PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tracing::instrument;

use super::feed::{change_stamp, leave_tombstone};
use super::rows::{action_item_from_row, insert_action_items};
use super::{PgStore, execute, query, query_opt};
use crate::domain::action_items::{ActionItem, ActionItemChanges, ActionItemFilter};
use crate::domain::feed::TombstoneType;
use crate::domain::paging::Page;
use crate::domain::text::normalize_for_dedup;
use crate::domain::time::Timestamp;
use crate::domain::webhooks::Change;
use crate::store::columns::ACTION_ITEM_COLUMNS;
use crate::store::{ActionItemStore, StoreResult};

/// The list order; `action_items_list_order` holds exactly these terms after `user_id` (and
/// `completed`), so the rows come off the index already sorted.
const LIST_ORDER: &str = "completed, (due_at IS NULL), due_at, created_at DESC, id DESC";

/// The list query with only the filters in use (each combination is its own prepared statement
/// with its own plan), and its parameters in order.
fn list_query<'a>(
    user_id: &'a &'a str,
    filter: &'a ActionItemFilter,
    page: &'a Page,
) -> (String, Vec<&'a (dyn ToSql + Sync)>) {
    let mut sql = format!("SELECT {ACTION_ITEM_COLUMNS} FROM action_items WHERE user_id = $1");
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![user_id];
    // `$?` in a condition stands for its parameter's number.
    let mut condition = |test: &str, value: &'a (dyn ToSql + Sync)| {
        params.push(value);
        sql.push_str(" AND ");
        sql.push_str(&test.replace("$?", &format!("${}", params.len())));
    };
    if let Some(conversation_id) = &filter.conversation_id {
        condition("conversation_id = $?", conversation_id);
    }
    if let Some(completed) = &filter.completed {
        condition("completed = $?", completed);
    }
    if let Some(from) = &filter.created_from {
        condition("created_at >= $?", from);
    }
    if let Some(before) = &filter.created_before {
        condition("created_at < $?", before);
    }
    params.push(&page.limit);
    params.push(&page.offset);
    sql.push_str(&format!(
        " ORDER BY {LIST_ORDER} LIMIT ${} OFFSET ${}",
        params.len() - 1,
        params.len()
    ));
    (sql, params)
}

async fn save(client: &impl GenericClient, user_id: &str, item: &ActionItem) -> StoreResult<()> {
    execute(
        client,
        "UPDATE action_items
         SET description = $3, normalized_description = $4, completed = $5, due_at = $6,
             completed_at = $7, updated_at = $8
         WHERE id = $1 AND user_id = $2",
        &[
            &item.id,
            &user_id,
            &item.description,
            &normalize_for_dedup(&item.description),
            &item.completed,
            &item.due_at,
            &item.completed_at,
            &item.updated_at,
        ],
    )
    .await
    .map(|_| ())
}

/// A conversation shows its action items: changing one changes the conversation too.
async fn touch_conversation(
    client: &impl GenericClient,
    user_id: &str,
    conversation_id: Option<&str>,
    at: Timestamp,
) -> StoreResult<()> {
    if let Some(conversation_id) = conversation_id {
        execute(
            client,
            "UPDATE conversations SET updated_at = $3 WHERE user_id = $1 AND id = $2",
            &[&user_id, &conversation_id, &at],
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl ActionItemStore for PgStore {
    #[instrument(skip_all, fields(count = items.len()))]
    async fn create_action_items(&self, user_id: &str, items: Vec<ActionItem>) -> StoreResult<()> {
        let latest = items.iter().map(|item| item.updated_at).max();
        in_transaction!(self, |tx| {
            let at =
                change_stamp(tx, user_id, latest.unwrap_or_else(crate::domain::time::now)).await?;
            let items: Vec<ActionItem> = items
                .iter()
                .map(|item| ActionItem {
                    updated_at: at,
                    ..item.clone()
                })
                .collect();
            insert_action_items(tx, user_id, &items).await?;
            let changes: Vec<Change> = items
                .iter()
                .map(|item| Change::ActionItem {
                    created: true,
                    item: Box::new(item.clone()),
                })
                .collect();
            super::webhooks::record(tx, user_id, &changes).await
        })
    }

    #[instrument(skip_all)]
    async fn list_action_items(
        &self,
        user_id: &str,
        filter: ActionItemFilter,
        page: Page,
    ) -> StoreResult<Vec<ActionItem>> {
        if filter.is_empty_range() {
            return Ok(Vec::new());
        }
        let (sql, params) = list_query(&user_id, &filter, &page);
        with_connection!(self, |client| {
            let rows = query(client, &sql, &params).await?;
            rows.iter().map(action_item_from_row).collect()
        })
    }

    #[instrument(skip_all)]
    async fn get_action_item(&self, user_id: &str, id: &str) -> StoreResult<Option<ActionItem>> {
        let sql = format!(
            "SELECT {ACTION_ITEM_COLUMNS} FROM action_items WHERE id = $1 AND user_id = $2"
        );
        with_connection!(self, |client| {
            let row = query_opt(client, &sql, &[&id, &user_id]).await?;
            row.as_ref().map(action_item_from_row).transpose()
        })
    }

    #[instrument(skip_all)]
    async fn update_action_item(
        &self,
        user_id: &str,
        id: &str,
        changes: ActionItemChanges,
        at: Timestamp,
    ) -> StoreResult<Option<ActionItem>> {
        let sql = format!(
            "SELECT {ACTION_ITEM_COLUMNS} FROM action_items WHERE id = $1 AND user_id = $2
             FOR UPDATE"
        );
        in_transaction!(self, |tx| {
            // The change time first: the user row is always the first lock a write takes.
            let changed_at = change_stamp(tx, user_id, at).await?;
            // The row lock keeps a concurrent PATCH from overwriting this one's fields.
            let Some(row) = query_opt(tx, &sql, &[&id, &user_id]).await? else {
                return Ok(None);
            };
            let mut item = action_item_from_row(&row)?;
            // `at` dates the completion; the change time only orders the feed.
            item.apply(&changes, at);
            item.updated_at = changed_at;
            save(tx, user_id, &item).await?;
            touch_conversation(tx, user_id, item.conversation_id.as_deref(), changed_at).await?;
            let change = Change::ActionItem {
                created: false,
                item: Box::new(item.clone()),
            };
            super::webhooks::record(tx, user_id, &[change]).await?;
            Ok(Some(item))
        })
    }

    #[instrument(skip_all)]
    async fn delete_action_item(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        in_transaction!(self, |tx| {
            let at = change_stamp(tx, user_id, crate::domain::time::now()).await?;
            let Some(row) = query_opt(
                tx,
                "DELETE FROM action_items WHERE id = $1 AND user_id = $2 RETURNING conversation_id",
                &[&id, &user_id],
            )
            .await?
            else {
                return Ok(false);
            };
            let conversation_id: Option<String> = row.try_get(0)?;
            leave_tombstone(tx, user_id, TombstoneType::ActionItem, id, at).await?;
            touch_conversation(tx, user_id, conversation_id.as_deref(), at).await?;
            let change = Change::ActionItemDeleted {
                id: id.to_string(),
                at,
            };
            super::webhooks::record(tx, user_id, &[change]).await?;
            Ok(true)
        })
    }
}
