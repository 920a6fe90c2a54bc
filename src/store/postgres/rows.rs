//! Row mapping and inserts for memories and action items, shared by their own stores and by
//! conversation creation (which stores extracted items in the same transaction).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::execute;
use crate::domain::action_items::ActionItem;
use crate::domain::memories::{Memory, MemoryCategory, Visibility};
use crate::domain::text::normalize_for_dedup;
use crate::store::StoreResult;

/// Reads `MEMORY_COLUMNS`.
pub fn memory_from_row(row: &Row) -> StoreResult<Memory> {
    let category: &str = row.try_get(2)?;
    let visibility: &str = row.try_get(3)?;
    let tags: serde_json::Value = row.try_get(4)?;
    Ok(Memory {
        id: row.try_get(0)?,
        content: row.try_get(1)?,
        category: MemoryCategory::parse(category).unwrap_or(MemoryCategory::System),
        visibility: Visibility::parse(visibility).unwrap_or(Visibility::Private),
        tags: serde_json::from_value(tags).unwrap_or_default(),
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
        manually_added: row.try_get(7)?,
        scoring: row.try_get(8)?,
        reviewed: row.try_get(9)?,
        user_review: row.try_get(10)?,
        edited: row.try_get(11)?,
        conversation_id: row.try_get(12)?,
    })
}

/// Inserts a memory unless the user already has one with its id; `true` when inserted.
pub async fn insert_memory(
    client: &impl GenericClient,
    user_id: &str,
    memory: &Memory,
) -> StoreResult<bool> {
    let inserted = execute(
        client,
        "INSERT INTO memories (user_id, id, content, normalized_content, category, visibility,
             tags, scoring, manually_added, reviewed, user_review, edited, conversation_id,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (user_id, id) DO NOTHING",
        &[
            &user_id,
            &memory.id,
            &memory.content,
            &normalize_for_dedup(&memory.content),
            &memory.category.as_str(),
            &memory.visibility.as_str(),
            &serde_json::json!(memory.tags),
            &memory.scoring,
            &memory.manually_added,
            &memory.reviewed,
            &memory.user_review,
            &memory.edited,
            &memory.conversation_id,
            &memory.created_at,
            &memory.updated_at,
        ],
    )
    .await?;
    Ok(inserted > 0)
}

/// Reads `ACTION_ITEM_COLUMNS`.
pub fn action_item_from_row(row: &Row) -> StoreResult<ActionItem> {
    Ok(ActionItem {
        id: row.try_get(0)?,
        description: row.try_get(1)?,
        completed: row.try_get(2)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
        due_at: row.try_get(5)?,
        completed_at: row.try_get(6)?,
        conversation_id: row.try_get(7)?,
    })
}

pub async fn insert_action_item(
    client: &impl GenericClient,
    user_id: &str,
    item: &ActionItem,
) -> StoreResult<()> {
    execute(
        client,
        "INSERT INTO action_items (id, user_id, description, normalized_description, completed,
             due_at, completed_at, conversation_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &item.id,
            &user_id,
            &item.description,
            &normalize_for_dedup(&item.description),
            &item.completed,
            &item.due_at,
            &item.completed_at,
            &item.conversation_id,
            &item.created_at,
            &item.updated_at,
        ],
    )
    .await
    .map(|_| ())
}
