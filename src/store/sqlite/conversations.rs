//! Conversations, transcripts, folders and creation claims on SQLite.
//!
//! Reads load a page in a fixed number of queries (conversations with their folder names, then
//! the page's action items, then its transcripts) whatever the page size. Lists of ids or texts
//! are bound as one JSON array and joined with `CROSS JOIN`, which makes SQLite walk the short
//! list and probe the index for each entry instead of scanning the user's rows.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use tracing::instrument;

use super::feed::{change_stamp, leave_tombstone, lift_tombstone};
use super::rows::{action_item_from_row, insert_action_item, insert_memory};
use super::{SqliteStore, map_error};
use crate::domain::action_items::ActionItem;
use crate::domain::conversations::{
    Conversation, Event, NewSegment, STATUS_COMPLETED, Structured, TranscriptSegment, speaker_name,
};
use crate::domain::feed::{FeedWindow, TombstoneType};
use crate::domain::folders::{Folder, SystemFolderSpec};
use crate::domain::ids::new_id;
use crate::domain::paging::Page;
use crate::domain::text::normalize_for_dedup;
use crate::domain::time::{Timestamp, from_micros, to_micros};
use crate::domain::webhooks::{Change, EventType};
use crate::store::StoreResult;
use crate::store::columns::ACTION_ITEM_COLUMNS;
use crate::store::columns::{CONVERSATION_COLUMNS, SEGMENT_COLUMNS};
use crate::store::conversations::{
    Claim, ClaimRow, ConversationBody, ConversationFilter, ConversationStore, ConversationUpdate,
    ExistingTexts, FolderChange, NewConversation, ProcessedRecord, StoredInput, StructuredRecord,
};

pub(super) const CONVERSATION_FROM: &str =
    "FROM conversations c LEFT JOIN folders f ON f.id = c.folder_id AND f.user_id = c.user_id";

/// The current action items of a page of conversations (ids as a JSON array in `?2`).
fn page_action_items_sql() -> String {
    format!(
        "SELECT {ACTION_ITEM_COLUMNS} FROM (
             SELECT a.* FROM json_each(?2) AS page CROSS JOIN action_items a
             WHERE a.user_id = ?1 AND a.conversation_id = page.value)
         ORDER BY created_at, id"
    )
}

/// The transcripts of a page of conversations (ids as a JSON array in `?2`).
fn page_segments_sql() -> String {
    format!(
        "SELECT {SEGMENT_COLUMNS} FROM json_each(?2) AS page CROSS JOIN transcript_segments s
         WHERE s.conversation_id = page.value AND s.user_id = ?1
         ORDER BY s.conversation_id, s.position"
    )
}

const OPEN_ACTION_ITEMS_SQL: &str = "SELECT a.normalized_description
     FROM json_each(?2) AS k CROSS JOIN action_items a
     WHERE a.user_id = ?1 AND a.normalized_description = k.value
       AND a.created_at >= ?3 AND a.completed = 0";

const EXISTING_MEMORIES_SQL: &str = "SELECT normalized_content FROM memories
     WHERE user_id = ?1 AND normalized_content IN (SELECT value FROM json_each(?2))";

pub(super) const FOLDERS_SQL: &str =
    "SELECT f.id, f.name, f.description, f.color, f.icon, f.created_at,
         f.updated_at, f.sort_order, f.is_default, f.is_system,
         (SELECT COUNT(*) FROM conversations c
          WHERE c.user_id = f.user_id AND c.folder_id = f.id AND c.discarded = 0)
     FROM folders f WHERE f.user_id = ?1
     ORDER BY f.sort_order, f.created_at, f.id";

/// A conversation row, and whether it was created from text (it has no transcript).
pub(super) struct Loaded {
    conversation: Conversation,
    from_text: bool,
}

pub(super) fn conversation_from_row(row: &Row<'_>) -> rusqlite::Result<Loaded> {
    let events: String = row.get(8)?;
    let geolocation: Option<String> = row.get(15)?;
    Ok(Loaded {
        conversation: Conversation {
            id: row.get(0)?,
            created_at: from_micros(row.get(1)?),
            started_at: from_micros(row.get(2)?),
            finished_at: from_micros(row.get(3)?),
            updated_at: from_micros(row.get(18)?),
            structured: Structured {
                title: row.get(4)?,
                overview: row.get(5)?,
                emoji: row.get(6)?,
                category: row.get(7)?,
                action_items: Vec::new(),
                events: serde_json::from_str(&events).unwrap_or_default(),
            },
            language: row.get(9)?,
            source: row.get(10)?,
            status: STATUS_COMPLETED.to_string(),
            discarded: row.get(11)?,
            starred: row.get(17)?,
            processed_by: row.get(12)?,
            folder_id: row.get(13)?,
            folder_name: row.get(14)?,
            geolocation: geolocation.and_then(|g| serde_json::from_str(&g).ok()),
            transcript_segments: None,
        },
        from_text: row.get(16)?,
    })
}

fn json_list(values: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let list: Vec<String> = values.into_iter().map(|v| v.as_ref().to_string()).collect();
    serde_json::to_string(&list).expect("strings serialize")
}

/// Fills in each conversation's current action items and, when asked, its transcript: two
/// queries for the whole page.
pub(super) fn attach_details(
    connection: &Connection,
    user_id: &str,
    loaded: Vec<Loaded>,
    include_transcript: bool,
) -> rusqlite::Result<Vec<Conversation>> {
    if loaded.is_empty() {
        return Ok(Vec::new());
    }
    let ids = json_list(loaded.iter().map(|l| l.conversation.id.as_str()));
    let mut action_items = action_items_by_conversation(connection, user_id, &ids)?;
    let mut segments = if include_transcript {
        segments_by_conversation(connection, user_id, &ids)?
    } else {
        HashMap::new()
    };
    Ok(loaded
        .into_iter()
        .map(
            |Loaded {
                 mut conversation,
                 from_text,
             }| {
                conversation.structured.action_items =
                    action_items.remove(&conversation.id).unwrap_or_default();
                if include_transcript {
                    conversation.transcript_segments = Some(if from_text {
                        Vec::new()
                    } else {
                        segments.remove(&conversation.id).unwrap_or_default()
                    });
                }
                conversation
            },
        )
        .collect())
}

fn action_items_by_conversation(
    connection: &Connection,
    user_id: &str,
    ids_json: &str,
) -> rusqlite::Result<HashMap<String, Vec<ActionItem>>> {
    let mut statement = connection.prepare_cached(&page_action_items_sql())?;
    let mut grouped: HashMap<String, Vec<ActionItem>> = HashMap::new();
    for item in statement.query_map(params![user_id, ids_json], action_item_from_row)? {
        let item = item?;
        if let Some(conversation_id) = item.conversation_id.clone() {
            grouped.entry(conversation_id).or_default().push(item);
        }
    }
    Ok(grouped)
}

fn segments_by_conversation(
    connection: &Connection,
    user_id: &str,
    ids_json: &str,
) -> rusqlite::Result<HashMap<String, Vec<TranscriptSegment>>> {
    let display_name: String = connection
        .prepare_cached("SELECT display_name FROM users WHERE id = ?1")?
        .query_row([user_id], |row| row.get(0))
        .optional()?
        .unwrap_or_default();
    let mut statement = connection.prepare_cached(&page_segments_sql())?;
    let mut grouped: HashMap<String, Vec<TranscriptSegment>> = HashMap::new();
    let mut rows = statement.query(params![user_id, ids_json])?;
    while let Some(row) = rows.next()? {
        let conversation_id: String = row.get(0)?;
        let speaker: String = row.get(3)?;
        let speaker_id: i64 = row.get(4)?;
        let is_user: bool = row.get(5)?;
        grouped
            .entry(conversation_id)
            .or_default()
            .push(TranscriptSegment {
                id: row.get(1)?,
                text: row.get(2)?,
                speaker_name: speaker_name(&speaker, speaker_id, is_user, &display_name),
                speaker,
                speaker_id,
                is_user,
                person_id: row.get(6)?,
                start: row.get(7)?,
                end: row.get(8)?,
            });
    }
    Ok(grouped)
}

fn segments_of(
    connection: &Connection,
    user_id: &str,
    conversation_id: &str,
) -> rusqlite::Result<Vec<NewSegment>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {SEGMENT_COLUMNS} FROM transcript_segments s
         WHERE s.conversation_id = ?2 AND s.user_id = ?1 ORDER BY s.position"
    ))?;
    statement
        .query_map(params![user_id, conversation_id], |row| {
            Ok(NewSegment {
                id: row.get(1)?,
                text: row.get(2)?,
                speaker: row.get(3)?,
                speaker_id: row.get(4)?,
                is_user: row.get(5)?,
                person_id: row.get(6)?,
                start: row.get(7)?,
                end: row.get(8)?,
            })
        })?
        .collect()
}

fn claim_row(
    connection: &Connection,
    user_id: &str,
    client_session_id: &str,
) -> rusqlite::Result<Option<ClaimRow>> {
    connection
        .prepare_cached(
            "SELECT k.conversation_id, k.claimed_at, k.completed_at IS NOT NULL,
                    COALESCE(c.discarded, k.discarded, 0)
             FROM conversation_claims k
             LEFT JOIN conversations c ON c.id = k.conversation_id AND c.user_id = k.user_id
             WHERE k.user_id = ?1 AND k.client_session_id = ?2",
        )?
        .query_row(params![user_id, client_session_id], |row| {
            Ok(ClaimRow {
                conversation_id: row.get(0)?,
                claimed_at: from_micros(row.get(1)?),
                completed: row.get(2)?,
                discarded: row.get(3)?,
            })
        })
        .optional()
}

/// Creates the user's three system folders unless they exist (the unique key on
/// `(user_id, system_key)` makes concurrent creations agree) and returns the id of `wanted`.
pub(super) fn system_folder_id(
    connection: &Connection,
    user_id: &str,
    wanted: &SystemFolderSpec,
    now: Timestamp,
) -> rusqlite::Result<String> {
    let mut find = connection
        .prepare_cached("SELECT id FROM folders WHERE user_id = ?1 AND system_key = ?2")?;
    if let Some(id) = find
        .query_row(params![user_id, wanted.key], |row| row.get(0))
        .optional()?
    {
        return Ok(id);
    }
    let mut insert = connection.prepare_cached(
        "INSERT INTO folders (id, user_id, system_key, name, description, color, icon, sort_order,
             is_default, is_system, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?10)
         ON CONFLICT (user_id, system_key) DO NOTHING",
    )?;
    for spec in SystemFolderSpec::all() {
        insert.execute(params![
            new_id(),
            user_id,
            spec.key,
            spec.name,
            spec.description,
            spec.color,
            spec.icon,
            spec.order,
            spec.is_default,
            to_micros(now),
        ])?;
    }
    find.query_row(params![user_id, wanted.key], |row| row.get(0))
}

fn folder_id_for(
    connection: &Connection,
    user_id: &str,
    change: FolderChange,
    now: Timestamp,
) -> rusqlite::Result<Option<String>> {
    match change {
        FolderChange::File(spec) => system_folder_id(connection, user_id, &spec, now).map(Some),
        FolderChange::Keep | FolderChange::Clear => Ok(None),
    }
}

/// Items extracted by processing are changed by the transaction that stores them.
fn stamp_extracted(processed: &mut ProcessedRecord, at: Timestamp) {
    for item in &mut processed.action_items {
        item.updated_at = at;
    }
    for memory in &mut processed.memories {
        memory.updated_at = at;
    }
}

/// A folder's live count is part of it: a conversation entering or leaving changes the folder.
fn touch_folder_of(
    connection: &Connection,
    user_id: &str,
    conversation_id: &str,
    at: Timestamp,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "UPDATE folders SET updated_at = ?3 WHERE user_id = ?1 AND id =
                 (SELECT folder_id FROM conversations WHERE user_id = ?1 AND id = ?2)",
        )?
        .execute(params![user_id, conversation_id, to_micros(at)])?;
    Ok(())
}

fn insert_extracted(
    connection: &Connection,
    user_id: &str,
    processed: &ProcessedRecord,
) -> rusqlite::Result<()> {
    for item in &processed.action_items {
        insert_action_item(
            connection,
            user_id,
            item,
            &normalize_for_dedup(&item.description),
        )?;
    }
    for memory in &processed.memories {
        insert_memory(connection, user_id, memory)?;
    }
    Ok(())
}

fn events_json(events: &[Event]) -> String {
    serde_json::to_string(events).expect("events serialize")
}

fn parts_json(structured: &StructuredRecord) -> String {
    serde_json::to_string(&structured.processing_parts).expect("provenance serializes")
}

fn insert_conversation(
    connection: &Connection,
    user_id: &str,
    conversation: &NewConversation,
) -> rusqlite::Result<()> {
    let processed = &conversation.processed;
    let structured = &processed.structured;
    let folder_id = match processed.folder {
        Some(spec) => Some(system_folder_id(
            connection,
            user_id,
            &spec,
            conversation.processed_at,
        )?),
        None => None,
    };
    let (text, text_source, text_source_spec, segments) = match &conversation.body {
        ConversationBody::Text {
            text,
            text_source,
            text_source_spec,
        } => (
            Some(text.as_str()),
            Some(text_source.as_str()),
            text_source_spec.as_deref(),
            &[][..],
        ),
        ConversationBody::Segments(segments) => (None, None, None, segments.as_slice()),
    };
    connection
        .prepare_cached(
            "INSERT INTO conversations (id, user_id, created_at, started_at, finished_at,
                 updated_at, title, overview, emoji, category, events, language, source, text,
                 text_source, text_source_spec, discarded, processed_by, folder_id, geolocation,
                 processing_parts)
             VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?18, ?19, ?20)",
        )?
        .execute(params![
            conversation.id,
            user_id,
            to_micros(conversation.started_at),
            to_micros(conversation.finished_at),
            to_micros(conversation.processed_at),
            structured.title,
            structured.overview,
            structured.emoji,
            structured.category,
            events_json(&structured.events),
            conversation.language,
            conversation.source,
            text,
            text_source,
            text_source_spec,
            structured.discarded,
            structured.processed_by,
            folder_id,
            conversation
                .geolocation
                .as_ref()
                .map(|g| serde_json::to_string(g).expect("geolocation serializes")),
            parts_json(structured),
        ])?;
    let mut insert_segment = connection.prepare_cached(
        "INSERT INTO transcript_segments (conversation_id, position, user_id, id, text, speaker,
             speaker_id, is_user, person_id, start_seconds, end_seconds)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (position, segment) in segments.iter().enumerate() {
        insert_segment.execute(params![
            conversation.id,
            position as i64,
            user_id,
            segment.id,
            segment.text,
            segment.speaker,
            segment.speaker_id,
            segment.is_user,
            segment.person_id,
            segment.start,
            segment.end,
        ])?;
    }
    super::search::index_conversation(connection, user_id, conversation)?;
    insert_extracted(connection, user_id, processed)
}

pub(super) fn find_conversation(
    c: &Connection,
    user_id: &str,
    conversation_id: &str,
    include_transcript: bool,
) -> rusqlite::Result<Option<Conversation>> {
    let loaded = c
        .prepare_cached(&format!(
            "SELECT {CONVERSATION_COLUMNS} {CONVERSATION_FROM}
             WHERE c.user_id = ?1 AND c.id = ?2"
        ))?
        .query_row(params![user_id, conversation_id], conversation_from_row)
        .optional()?;
    let Some(loaded) = loaded else {
        return Ok(None);
    };
    Ok(attach_details(c, user_id, vec![loaded], include_transcript)?.pop())
}

/// Records the webhook events of a stored conversation change: the conversation (read back
/// whole, only when someone listens) unless `event` is `None`, and the items processing
/// extracted with it.
fn record_conversation_events(
    c: &Connection,
    user_id: &str,
    conversation_id: &str,
    event: Option<bool>,
    at: Timestamp,
    extracted: Option<&ProcessedRecord>,
) -> rusqlite::Result<()> {
    let mut changes = Vec::new();
    if let Some(created) = event
        && super::webhooks::wanted(
            c,
            user_id,
            &[
                EventType::ConversationCreated,
                EventType::ConversationUpdated,
            ],
        )?
        && let Some(conversation) = find_conversation(c, user_id, conversation_id, true)?
    {
        changes.push(Change::Conversation {
            created,
            conversation: Box::new(conversation),
            updated_at: at,
        });
    }
    if let Some(processed) = extracted {
        changes.extend(
            processed
                .action_items
                .iter()
                .map(|item| Change::ActionItem {
                    created: true,
                    item: Box::new(item.clone()),
                }),
        );
        changes.extend(processed.memories.iter().map(|memory| Change::Memory {
            created: true,
            memory: Box::new(memory.clone()),
        }));
    }
    super::webhooks::record(c, user_id, &changes)
}

fn apply_update(
    connection: &Connection,
    user_id: &str,
    conversation_id: &str,
    update: &ConversationUpdate,
) -> rusqlite::Result<bool> {
    let exists = connection
        .prepare_cached("SELECT 1 FROM conversations WHERE user_id = ?1 AND id = ?2")?
        .query_row(params![user_id, conversation_id], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Ok(false);
    }
    let now = to_micros(update.updated_at);
    if let Some(processed) = &update.reprocessed {
        let s = &processed.structured;
        connection
            .prepare_cached(
                "UPDATE conversations SET title = ?3, overview = ?4, emoji = ?5, category = ?6,
                     events = ?7, processed_by = ?8, discarded = ?9, updated_at = ?10,
                     processing_parts = ?11
                 WHERE user_id = ?1 AND id = ?2",
            )?
            .execute(params![
                user_id,
                conversation_id,
                s.title,
                s.overview,
                s.emoji,
                s.category,
                events_json(&s.events),
                s.processed_by,
                s.discarded,
                now,
                parts_json(s),
            ])?;
        insert_extracted(connection, user_id, processed)?;
    }
    connection
        .prepare_cached(
            "UPDATE conversations SET title = COALESCE(?3, title),
                 discarded = COALESCE(?4, discarded), updated_at = ?5,
                 starred = COALESCE(?6, starred)
             WHERE user_id = ?1 AND id = ?2",
        )?
        .execute(params![
            user_id,
            conversation_id,
            update.title,
            update.discarded,
            now,
            update.starred
        ])?;
    if update.folder != FolderChange::Keep {
        let folder_id = folder_id_for(connection, user_id, update.folder, update.updated_at)?;
        connection
            .prepare_cached(
                "UPDATE conversations SET folder_id = ?3 WHERE user_id = ?1 AND id = ?2",
            )?
            .execute(params![user_id, conversation_id, folder_id])?;
    }
    Ok(true)
}

fn list_sql(filter: &ConversationFilter, values: &mut Vec<Value>) -> String {
    list_or_feed_sql(filter, None, values)
}

/// The list query, or with a feed window the change-feed query: the same filters, discarded
/// conversations included, in `(updated_at, id)` order from the window's position.
pub(super) fn list_or_feed_sql(
    filter: &ConversationFilter,
    feed: Option<&FeedWindow>,
    values: &mut Vec<Value>,
) -> String {
    let kept_only = if feed.is_some() {
        ""
    } else {
        " AND c.discarded = 0"
    };
    let mut sql = format!(
        "SELECT {CONVERSATION_COLUMNS} {CONVERSATION_FROM} WHERE c.user_id = ?1{kept_only}"
    );
    let mut bind = |sql: &mut String, condition: &str, value: Value| {
        values.push(value);
        sql.push_str(&condition.replace('?', &format!("?{}", values.len())));
    };
    if let Some(from) = filter.created_from {
        bind(
            &mut sql,
            " AND c.created_at >= ?",
            Value::Integer(to_micros(from)),
        );
    }
    if let Some(before) = filter.created_before {
        bind(
            &mut sql,
            " AND c.created_at < ?",
            Value::Integer(to_micros(before)),
        );
    }
    // One category reads its own index in list order; several are checked on the list order
    // index, which carries the category for that.
    match filter.categories.as_slice() {
        [] => {}
        [category] => bind(
            &mut sql,
            " AND c.category = ?",
            Value::Text(category.clone()),
        ),
        several => bind(
            &mut sql,
            " AND c.category IN (SELECT value FROM json_each(?))",
            Value::Text(json_list(several)),
        ),
    }
    if let Some(folder_id) = &filter.folder_id {
        bind(
            &mut sql,
            " AND c.folder_id = ?",
            Value::Text(folder_id.clone()),
        );
    }
    if let Some(starred) = filter.starred {
        bind(
            &mut sql,
            " AND c.starred = ?",
            Value::Integer(i64::from(starred)),
        );
    }
    match feed {
        Some(window) => {
            super::feed::push_window(&mut sql, values, "c.", window);
            sql.push_str(" ORDER BY c.updated_at, c.id");
        }
        None => sql.push_str(" ORDER BY c.created_at DESC, c.id DESC"),
    }
    let mut bind = |sql: &mut String, condition: &str, value: Value| {
        values.push(value);
        sql.push_str(&condition.replace('?', &format!("?{}", values.len())));
    };
    bind(&mut sql, " LIMIT ?", Value::Null);
    bind(&mut sql, " OFFSET ?", Value::Null);
    sql
}

#[async_trait]
impl ConversationStore for SqliteStore {
    #[instrument(skip_all)]
    async fn claim_conversation(
        &self,
        user_id: &str,
        client_session_id: &str,
        conversation_id: &str,
        now: Timestamp,
        abandoned_before: Timestamp,
    ) -> StoreResult<Claim> {
        let (user_id, client_session_id, conversation_id) = (
            user_id.to_string(),
            client_session_id.to_string(),
            conversation_id.to_string(),
        );
        self.write(move |tx| {
            let existing = claim_row(tx, &user_id, &client_session_id).map_err(map_error)?;
            match existing {
                Some(row) if row.stands(abandoned_before) => Ok(row.outcome()),
                Some(_) => {
                    tx.execute(
                        "UPDATE conversation_claims SET conversation_id = ?3, claimed_at = ?4
                         WHERE user_id = ?1 AND client_session_id = ?2",
                        params![user_id, client_session_id, conversation_id, to_micros(now)],
                    )
                    .map_err(map_error)?;
                    Ok(Claim::Claimed)
                }
                None => {
                    tx.execute(
                        "INSERT INTO conversation_claims
                             (user_id, client_session_id, conversation_id, claimed_at)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![user_id, client_session_id, conversation_id, to_micros(now)],
                    )
                    .map_err(map_error)?;
                    Ok(Claim::Claimed)
                }
            }
        })
        .await
    }

    #[instrument(skip_all)]
    async fn release_claim(
        &self,
        user_id: &str,
        client_session_id: &str,
        conversation_id: &str,
    ) -> StoreResult<()> {
        let (user_id, client_session_id, conversation_id) = (
            user_id.to_string(),
            client_session_id.to_string(),
            conversation_id.to_string(),
        );
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM conversation_claims
                 WHERE user_id = ?1 AND client_session_id = ?2 AND conversation_id = ?3
                   AND completed_at IS NULL",
                params![user_id, client_session_id, conversation_id],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    #[instrument(skip_all)]
    async fn existing_texts(
        &self,
        user_id: &str,
        action_item_keys: &[String],
        open_since: Timestamp,
        memory_keys: &[String],
    ) -> StoreResult<ExistingTexts> {
        self.read(|c| {
            let mut existing = ExistingTexts::default();
            if !action_item_keys.is_empty() {
                let mut statement = c.prepare_cached(OPEN_ACTION_ITEMS_SQL)?;
                existing.open_action_items = statement
                    .query_map(
                        params![user_id, json_list(action_item_keys), to_micros(open_since)],
                        |row| row.get(0),
                    )?
                    .collect::<rusqlite::Result<_>>()?;
            }
            if !memory_keys.is_empty() {
                let mut statement = c.prepare_cached(EXISTING_MEMORIES_SQL)?;
                existing.memories = statement
                    .query_map(params![user_id, json_list(memory_keys)], |row| row.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
            }
            Ok(existing)
        })
    }

    #[instrument(skip_all)]
    async fn create_conversation(
        &self,
        user_id: &str,
        conversation: NewConversation,
    ) -> StoreResult<Claim> {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            if let Some(client_session_id) = &conversation.client_session_id {
                let holder = claim_row(tx, &user_id, client_session_id).map_err(map_error)?;
                match holder {
                    Some(row) if row.conversation_id == conversation.id && !row.completed => {}
                    Some(row) => return Ok(row.outcome()),
                    None => return Ok(Claim::InProgress),
                }
            }
            let at = change_stamp(tx, &user_id, conversation.processed_at).map_err(map_error)?;
            let mut conversation = conversation;
            conversation.processed_at = at;
            stamp_extracted(&mut conversation.processed, at);
            insert_conversation(tx, &user_id, &conversation).map_err(map_error)?;
            for memory in &conversation.processed.memories {
                lift_tombstone(tx, &user_id, TombstoneType::Memory, &memory.id)
                    .map_err(map_error)?;
            }
            touch_folder_of(tx, &user_id, &conversation.id, at).map_err(map_error)?;
            // A discarded conversation is not announced until it is restored (API.md §13.G.2).
            record_conversation_events(
                tx,
                &user_id,
                &conversation.id,
                (!conversation.processed.structured.discarded).then_some(true),
                conversation.processed_at,
                Some(&conversation.processed),
            )
            .map_err(map_error)?;
            if let Some(client_session_id) = &conversation.client_session_id {
                tx.execute(
                    "UPDATE conversation_claims SET completed_at = ?3, discarded = ?4
                     WHERE user_id = ?1 AND client_session_id = ?2",
                    params![
                        user_id,
                        client_session_id,
                        to_micros(conversation.processed_at),
                        conversation.processed.structured.discarded
                    ],
                )
                .map_err(map_error)?;
            }
            Ok(Claim::Claimed)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn get_conversation(
        &self,
        user_id: &str,
        conversation_id: &str,
        include_transcript: bool,
    ) -> StoreResult<Option<Conversation>> {
        self.read(|c| find_conversation(c, user_id, conversation_id, include_transcript))
    }

    #[instrument(skip_all)]
    async fn list_conversations(
        &self,
        user_id: &str,
        filter: &ConversationFilter,
        page: Page,
        include_transcript: bool,
    ) -> StoreResult<Vec<Conversation>> {
        let mut values = vec![Value::Text(user_id.to_string())];
        let sql = list_sql(filter, &mut values);
        let count = values.len();
        values[count - 2] = Value::Integer(page.limit);
        values[count - 1] = Value::Integer(page.offset);
        self.read(|c| {
            let loaded = c
                .prepare_cached(&sql)?
                .query_map(params_from_iter(values.iter()), conversation_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            attach_details(c, user_id, loaded, include_transcript)
        })
    }

    #[instrument(skip_all)]
    async fn conversation_input(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<StoredInput>> {
        self.read(|c| {
            let row = c
                .prepare_cached(
                    "SELECT c.started_at, c.language, c.text, c.text_source, c.text_source_spec,
                         u.display_name
                     FROM conversations c JOIN users u ON u.id = c.user_id
                     WHERE c.user_id = ?1 AND c.id = ?2",
                )?
                .query_row(params![user_id, conversation_id], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, String>(5)?,
                    ))
                })
                .optional()?;
            let Some((started_at, language, text, text_source, spec, display_name)) = row else {
                return Ok(None);
            };
            let body = match text {
                Some(text) => ConversationBody::Text {
                    text,
                    text_source: text_source.unwrap_or_default(),
                    text_source_spec: spec,
                },
                None => ConversationBody::Segments(segments_of(c, user_id, conversation_id)?),
            };
            Ok(Some(StoredInput {
                started_at: from_micros(started_at),
                language,
                user_display_name: display_name,
                body,
            }))
        })
    }

    #[instrument(skip_all)]
    async fn update_conversation(
        &self,
        user_id: &str,
        conversation_id: &str,
        update: ConversationUpdate,
    ) -> StoreResult<bool> {
        let (user_id, conversation_id) = (user_id.to_string(), conversation_id.to_string());
        self.write(move |tx| {
            // Whether it was discarded before: a restore is announced as its creation.
            let was_discarded: Option<bool> = tx
                .prepare_cached(
                    "SELECT discarded FROM conversations WHERE user_id = ?1 AND id = ?2",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row(params![user_id, conversation_id], |row| row.get(0))
                        .optional()
                })
                .map_err(map_error)?;
            let Some(was_discarded) = was_discarded else {
                return Ok(false);
            };
            let mut update = update;
            update.updated_at = change_stamp(tx, &user_id, update.updated_at).map_err(map_error)?;
            if let Some(processed) = &mut update.reprocessed {
                stamp_extracted(processed, update.updated_at);
            }
            // The folder it leaves and the one it enters both change their count.
            touch_folder_of(tx, &user_id, &conversation_id, update.updated_at)
                .map_err(map_error)?;
            if !apply_update(tx, &user_id, &conversation_id, &update).map_err(map_error)? {
                return Ok(false);
            }
            touch_folder_of(tx, &user_id, &conversation_id, update.updated_at)
                .map_err(map_error)?;
            // A restore is the conversation's first kept appearance: announced as created.
            let restored = was_discarded && update.discarded == Some(false);
            record_conversation_events(
                tx,
                &user_id,
                &conversation_id,
                Some(restored),
                update.updated_at,
                update.reprocessed.as_ref(),
            )
            .map_err(map_error)?;
            Ok(true)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn delete_conversation(&self, user_id: &str, conversation_id: &str) -> StoreResult<bool> {
        let (user_id, conversation_id) = (user_id.to_string(), conversation_id.to_string());
        self.write(move |tx| {
            let at = change_stamp(tx, &user_id, crate::domain::time::now()).map_err(map_error)?;
            touch_folder_of(tx, &user_id, &conversation_id, at).map_err(map_error)?;
            let deleted = tx
                .execute(
                    "DELETE FROM conversations WHERE user_id = ?1 AND id = ?2",
                    params![user_id, conversation_id],
                )
                .map_err(map_error)?;
            if deleted > 0 {
                leave_tombstone(
                    tx,
                    &user_id,
                    TombstoneType::Conversation,
                    &conversation_id,
                    at,
                )
                .map_err(map_error)?;
                let change = Change::ConversationDeleted {
                    id: conversation_id,
                    at,
                };
                super::webhooks::record(tx, &user_id, &[change]).map_err(map_error)?;
            }
            Ok(deleted > 0)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_folders(&self, user_id: &str) -> StoreResult<Vec<Folder>> {
        self.read(|c| {
            c.prepare_cached(FOLDERS_SQL)?
                .query_map([user_id], folder_from_row)?
                .collect()
        })
    }
}

/// A folder from a row of `FOLDERS_SQL`'s columns (the folder feed selects the same ones).
pub(super) fn folder_from_row(row: &rusqlite::Row) -> rusqlite::Result<Folder> {
    Ok(Folder {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        color: row.get(3)?,
        icon: row.get(4)?,
        created_at: from_micros(row.get(5)?),
        updated_at: from_micros(row.get(6)?),
        order: row.get(7)?,
        is_default: row.get(8)?,
        is_system: row.get(9)?,
        conversation_count: row.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteOptions;

    /// The plan of `sql` as SQLite reports it, one step per line.
    fn plan(store: &SqliteStore, sql: &str) -> Vec<String> {
        store
            .read(|c| {
                let mut statement = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let count = statement.parameter_count();
                statement
                    .query_map(params_from_iter((0..count).map(|_| Value::Null)), |row| {
                        row.get::<_, String>(3)
                    })?
                    .collect()
            })
            .unwrap()
    }

    /// No step reads a whole table or index, only the bound JSON lists are walked, and the
    /// main table is reached through `index`.
    fn assert_indexed(store: &SqliteStore, sql: &str, index: &str) {
        let steps = plan(store, sql);
        assert!(
            steps
                .iter()
                .any(|s| s.contains(&format!("INDEX {index} ("))),
            "{sql}\n{steps:#?}"
        );
        for step in &steps {
            let walks_bound_list = step.contains("VIRTUAL TABLE");
            assert!(
                !step.starts_with("SCAN") || walks_bound_list,
                "{sql}\n{steps:#?}"
            );
        }
    }

    #[tokio::test]
    async fn every_read_uses_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&SqliteOptions::for_path(dir.path().join("t.db")))
            .await
            .unwrap();
        let filters = [
            (ConversationFilter::default(), "conversations_list_order"),
            (
                ConversationFilter {
                    created_from: Some(crate::domain::time::now()),
                    created_before: Some(crate::domain::time::now()),
                    ..Default::default()
                },
                "conversations_list_order",
            ),
            (
                ConversationFilter {
                    categories: vec!["work".into()],
                    ..Default::default()
                },
                "conversations_by_category",
            ),
            (
                ConversationFilter {
                    categories: vec!["work".into(), "health".into()],
                    ..Default::default()
                },
                "conversations_list_order",
            ),
            (
                ConversationFilter {
                    folder_id: Some("f".into()),
                    ..Default::default()
                },
                "conversations_by_folder",
            ),
        ];
        for (filter, index) in &filters {
            let sql = list_sql(filter, &mut vec![Value::Null]);
            assert_indexed(&store, &sql, index);
            assert!(
                !plan(&store, &sql).iter().any(|s| s.contains("TEMP B-TREE")),
                "{sql} sorts instead of reading in index order"
            );
        }
        for (sql, index) in [
            (page_action_items_sql(), "action_items_by_conversation"),
            (
                page_segments_sql(),
                "sqlite_autoindex_transcript_segments_1",
            ),
            (
                OPEN_ACTION_ITEMS_SQL.to_string(),
                "action_items_by_normalized_description",
            ),
            (
                EXISTING_MEMORIES_SQL.to_string(),
                "memories_by_normalized_content",
            ),
            (FOLDERS_SQL.to_string(), "conversations_by_folder"),
        ] {
            assert_indexed(&store, &sql, index);
        }
    }
}
