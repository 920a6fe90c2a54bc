//! Row mapping and inserts for memories, action items and transcript segments, shared by their
//! own stores and by conversation creation (which stores extracted items in the same
//! transaction).
//!
//! Each insert writes any number of rows as one statement, `INSERT ... SELECT ... FROM
//! UNNEST(...)` with one array parameter per column: a 50-item batch is one round trip and one
//! execution instead of 50 (per-row triggers and index updates still run per row). The arrays
//! keep the order given, so rows go in the order of the slice.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::execute;
use crate::domain::action_items::ActionItem;
use crate::domain::conversations::NewSegment;
use crate::domain::memories::{Memory, MemoryCategory, Visibility};
use crate::domain::text::normalize_for_dedup;
use crate::domain::time::Timestamp;
use crate::store::StoreResult;

/// Reads `MEMORY_COLUMNS`.
pub fn memory_from_row(row: &Row) -> StoreResult<Memory> {
    let category: &str = row.try_get(2)?;
    let visibility: &str = row.try_get(3)?;
    // Straight from the `jsonb` bytes into the list, without an intermediate JSON value; what
    // is not a list of strings reads as no tags, as it always did.
    let tags = row
        .try_get::<_, Json<Vec<String>>>(4)
        .map(|Json(tags)| tags)
        .unwrap_or_default();
    Ok(Memory {
        id: row.try_get(0)?,
        content: row.try_get(1)?,
        category: MemoryCategory::parse(category).unwrap_or(MemoryCategory::System),
        visibility: Visibility::parse(visibility).unwrap_or(Visibility::Private),
        tags,
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

/// The columns of a memory every write binds, one array each (the key is bound apart).
struct MemoryArrays<'a> {
    ids: Vec<&'a str>,
    contents: Vec<&'a str>,
    normalized: Vec<String>,
    categories: Vec<&'static str>,
    visibilities: Vec<&'static str>,
    tags: Vec<serde_json::Value>,
    scorings: Vec<&'a str>,
    manually_added: Vec<bool>,
    reviewed: Vec<bool>,
    user_reviews: Vec<Option<bool>>,
    edited: Vec<bool>,
    updated_at: Vec<Timestamp>,
}

impl<'a> MemoryArrays<'a> {
    fn of(memories: &'a [Memory]) -> Self {
        MemoryArrays {
            ids: memories.iter().map(|m| m.id.as_str()).collect(),
            contents: memories.iter().map(|m| m.content.as_str()).collect(),
            normalized: memories
                .iter()
                .map(|m| normalize_for_dedup(&m.content))
                .collect(),
            categories: memories.iter().map(|m| m.category.as_str()).collect(),
            visibilities: memories.iter().map(|m| m.visibility.as_str()).collect(),
            tags: memories.iter().map(|m| serde_json::json!(m.tags)).collect(),
            scorings: memories.iter().map(|m| m.scoring.as_str()).collect(),
            manually_added: memories.iter().map(|m| m.manually_added).collect(),
            reviewed: memories.iter().map(|m| m.reviewed).collect(),
            user_reviews: memories.iter().map(|m| m.user_review).collect(),
            edited: memories.iter().map(|m| m.edited).collect(),
            updated_at: memories.iter().map(|m| m.updated_at).collect(),
        }
    }
}

/// Inserts the memories the user has none with the id of (the first of repeated ids wins);
/// returns how many were inserted.
pub async fn insert_memories(
    client: &impl GenericClient,
    user_id: &str,
    memories: &[Memory],
) -> StoreResult<u64> {
    if memories.is_empty() {
        return Ok(0);
    }
    let columns = MemoryArrays::of(memories);
    let conversation_ids: Vec<Option<&str>> = memories
        .iter()
        .map(|m| m.conversation_id.as_deref())
        .collect();
    let created_at: Vec<Timestamp> = memories.iter().map(|m| m.created_at).collect();
    execute(
        client,
        "INSERT INTO memories (user_id, id, content, normalized_content, category, visibility,
             tags, scoring, manually_added, reviewed, user_review, edited, conversation_id,
             created_at, updated_at)
         SELECT $1::text, m.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::jsonb[], $8::text[], $9::bool[], $10::bool[], $11::bool[],
             $12::bool[], $13::text[], $14::timestamptz[], $15::timestamptz[]) AS m
         ON CONFLICT (user_id, id) DO NOTHING",
        &[
            &user_id,
            &columns.ids,
            &columns.contents,
            &columns.normalized,
            &columns.categories,
            &columns.visibilities,
            &columns.tags,
            &columns.scorings,
            &columns.manually_added,
            &columns.reviewed,
            &columns.user_reviews,
            &columns.edited,
            &conversation_ids,
            &created_at,
            &columns.updated_at,
        ],
    )
    .await
}

/// Inserts a memory unless the user already has one with its id; `true` when inserted.
pub async fn insert_memory(
    client: &impl GenericClient,
    user_id: &str,
    memory: &Memory,
) -> StoreResult<bool> {
    Ok(insert_memories(client, user_id, std::slice::from_ref(memory)).await? > 0)
}

/// Writes every mutable field of the user's stored memories with these ids (the key, creation
/// time and conversation never change). The ids must be distinct: one statement changes a row
/// once.
pub async fn rewrite_memories(
    client: &impl GenericClient,
    user_id: &str,
    memories: &[Memory],
) -> StoreResult<()> {
    if memories.is_empty() {
        return Ok(());
    }
    let columns = MemoryArrays::of(memories);
    execute(
        client,
        "UPDATE memories SET content = m.content, normalized_content = m.normalized_content,
             category = m.category, visibility = m.visibility, tags = m.tags,
             scoring = m.scoring, manually_added = m.manually_added, reviewed = m.reviewed,
             user_review = m.user_review, edited = m.edited, updated_at = m.updated_at
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::jsonb[], $8::text[], $9::bool[], $10::bool[], $11::bool[], $12::bool[],
             $13::timestamptz[])
             AS m (id, content, normalized_content, category, visibility, tags, scoring,
                 manually_added, reviewed, user_review, edited, updated_at)
         WHERE memories.user_id = $1 AND memories.id = m.id",
        &[
            &user_id,
            &columns.ids,
            &columns.contents,
            &columns.normalized,
            &columns.categories,
            &columns.visibilities,
            &columns.tags,
            &columns.scorings,
            &columns.manually_added,
            &columns.reviewed,
            &columns.user_reviews,
            &columns.edited,
            &columns.updated_at,
        ],
    )
    .await
    .map(|_| ())
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

/// Inserts the items; an id that is taken (or repeated) fails the statement, and so the
/// caller's transaction, whole.
pub async fn insert_action_items(
    client: &impl GenericClient,
    user_id: &str,
    items: &[ActionItem],
) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let descriptions: Vec<&str> = items.iter().map(|i| i.description.as_str()).collect();
    let normalized: Vec<String> = items
        .iter()
        .map(|i| normalize_for_dedup(&i.description))
        .collect();
    let completed: Vec<bool> = items.iter().map(|i| i.completed).collect();
    let due_at: Vec<Option<Timestamp>> = items.iter().map(|i| i.due_at).collect();
    let completed_at: Vec<Option<Timestamp>> = items.iter().map(|i| i.completed_at).collect();
    let conversation_ids: Vec<Option<&str>> =
        items.iter().map(|i| i.conversation_id.as_deref()).collect();
    let created_at: Vec<Timestamp> = items.iter().map(|i| i.created_at).collect();
    let updated_at: Vec<Timestamp> = items.iter().map(|i| i.updated_at).collect();
    execute(
        client,
        "INSERT INTO action_items (user_id, id, description, normalized_description, completed,
             due_at, completed_at, conversation_id, created_at, updated_at)
         SELECT $1::text, i.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bool[],
             $6::timestamptz[], $7::timestamptz[], $8::text[], $9::timestamptz[],
             $10::timestamptz[]) AS i",
        &[
            &user_id,
            &ids,
            &descriptions,
            &normalized,
            &completed,
            &due_at,
            &completed_at,
            &conversation_ids,
            &created_at,
            &updated_at,
        ],
    )
    .await
    .map(|_| ())
}

pub async fn insert_action_item(
    client: &impl GenericClient,
    user_id: &str,
    item: &ActionItem,
) -> StoreResult<()> {
    insert_action_items(client, user_id, std::slice::from_ref(item)).await
}

/// Inserts a conversation's transcript, numbering the segments from 0 in the order given.
pub async fn insert_segments(
    client: &impl GenericClient,
    user_id: &str,
    conversation_id: &str,
    segments: &[NewSegment],
) -> StoreResult<()> {
    if segments.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = segments.iter().map(|s| s.id.as_str()).collect();
    let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
    let speakers: Vec<&str> = segments.iter().map(|s| s.speaker.as_str()).collect();
    let speaker_ids: Vec<i64> = segments.iter().map(|s| s.speaker_id).collect();
    let is_user: Vec<bool> = segments.iter().map(|s| s.is_user).collect();
    let person_ids: Vec<Option<&str>> = segments.iter().map(|s| s.person_id.as_deref()).collect();
    let starts: Vec<f64> = segments.iter().map(|s| s.start).collect();
    let ends: Vec<f64> = segments.iter().map(|s| s.end).collect();
    // `WITH ORDINALITY` counts from 1; positions count from 0.
    execute(
        client,
        "INSERT INTO transcript_segments (conversation_id, user_id, position, id, text, speaker,
             speaker_id, is_user, person_id, start_seconds, end_seconds)
         SELECT $1::text, $2::text, (s.n - 1)::integer, s.id, s.text, s.speaker, s.speaker_id,
             s.is_user, s.person_id, s.start_seconds, s.end_seconds
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::bigint[], $7::bool[], $8::text[],
             $9::float8[], $10::float8[]) WITH ORDINALITY
             AS s (id, text, speaker, speaker_id, is_user, person_id, start_seconds,
                 end_seconds, n)",
        &[
            &conversation_id,
            &user_id,
            &ids,
            &texts,
            &speakers,
            &speaker_ids,
            &is_user,
            &person_ids,
            &starts,
            &ends,
        ],
    )
    .await
    .map(|_| ())
}
