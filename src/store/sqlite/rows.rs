//! Row mapping and inserts for memories and action items, shared by their own stores and by
//! conversation creation (which stores extracted items in the same transaction).

use rusqlite::{Connection, Row, params};

use super::search_index;
use crate::domain::action_items::ActionItem;
use crate::domain::memories::{Memory, MemoryCategory, Visibility};
use crate::domain::text::normalize_for_dedup;
use crate::domain::time::{from_micros, to_micros};

pub fn memory_from_row(row: &Row<'_>) -> rusqlite::Result<Memory> {
    let category: String = row.get(2)?;
    let visibility: String = row.get(3)?;
    let tags: String = row.get(4)?;
    Ok(Memory {
        id: row.get(0)?,
        content: row.get(1)?,
        category: MemoryCategory::parse(&category).unwrap_or(MemoryCategory::System),
        visibility: Visibility::parse(&visibility).unwrap_or(Visibility::Private),
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        created_at: from_micros(row.get(5)?),
        updated_at: from_micros(row.get(6)?),
        manually_added: row.get(7)?,
        scoring: row.get(8)?,
        reviewed: row.get(9)?,
        user_review: row.get(10)?,
        edited: row.get(11)?,
        conversation_id: row.get(12)?,
    })
}

/// Inserts a memory unless the user already has one with its id, and records it for the search
/// index (`search_index`); `true` when inserted.
pub fn insert_memory(
    connection: &Connection,
    user_id: &str,
    memory: &Memory,
) -> rusqlite::Result<bool> {
    let inserted = insert_memory_row(connection, user_id, memory)?;
    if inserted {
        search_index::add_memory(connection, user_id, &memory.id)?;
    }
    Ok(inserted)
}

/// The memory's row alone, as [`insert_memory`] stores it (the write-cost benchmark's baseline).
pub fn insert_memory_row(
    connection: &Connection,
    user_id: &str,
    memory: &Memory,
) -> rusqlite::Result<bool> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO memories (user_id, id, content, normalized_content, category, visibility,
             tags, scoring, manually_added, reviewed, user_review, edited, conversation_id,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (user_id, id) DO NOTHING",
    )?;
    let inserted = statement.execute(params![
        user_id,
        memory.id,
        memory.content,
        normalize_for_dedup(&memory.content),
        memory.category.as_str(),
        memory.visibility.as_str(),
        serde_json::to_string(&memory.tags).expect("tags serialize"),
        memory.scoring,
        memory.manually_added,
        memory.reviewed,
        memory.user_review,
        memory.edited,
        memory.conversation_id,
        to_micros(memory.created_at),
        to_micros(memory.updated_at),
    ])?;
    Ok(inserted > 0)
}

pub fn action_item_from_row(row: &Row<'_>) -> rusqlite::Result<ActionItem> {
    Ok(ActionItem {
        id: row.get(0)?,
        description: row.get(1)?,
        completed: row.get(2)?,
        created_at: from_micros(row.get(3)?),
        updated_at: from_micros(row.get(4)?),
        due_at: row.get::<_, Option<i64>>(5)?.map(from_micros),
        completed_at: row.get::<_, Option<i64>>(6)?.map(from_micros),
        conversation_id: row.get(7)?,
    })
}

/// Inserts an action item and records it for the search index (`search_index`); `normalized` is
/// its de-duplication key (`normalize_for_dedup` of the description), computed by the caller so
/// that batch requests do it before their write reaches the single writer thread, where it was
/// a measurable share of a batch's time.
pub fn insert_action_item(
    connection: &Connection,
    user_id: &str,
    item: &ActionItem,
    normalized: &str,
) -> rusqlite::Result<()> {
    insert_action_item_row(connection, user_id, item, normalized)?;
    search_index::add_action_item(connection, user_id, &item.id)
}

/// The action item's row alone, as [`insert_action_item`] stores it (the write-cost benchmark's
/// baseline).
pub fn insert_action_item_row(
    connection: &Connection,
    user_id: &str,
    item: &ActionItem,
    normalized: &str,
) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO action_items (id, user_id, description, normalized_description, completed,
             due_at, completed_at, conversation_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    statement.execute(params![
        item.id,
        user_id,
        item.description,
        normalized,
        item.completed,
        item.due_at.map(to_micros),
        item.completed_at.map(to_micros),
        item.conversation_id,
        to_micros(item.created_at),
        to_micros(item.updated_at),
    ])?;
    Ok(())
}
