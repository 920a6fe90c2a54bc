//! Conversations, transcripts, folders and creation claims on PostgreSQL.
//!
//! Reads load a page in a fixed number of queries (conversations with their folder names, then
//! the page's action items, then its transcripts) whatever the page size; lists of ids or texts
//! are bound as one array (`= ANY($n)`). Claims are rows locked with `FOR UPDATE`, so two
//! replicas handling repeats of one `client_session_id` agree on a single creation.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use tracing::instrument;

use super::feed::{change_stamp, leave_tombstone, lift_tombstones};
use super::rows::{action_item_from_row, insert_action_items, insert_memories, insert_segments};
use super::{PgStore, execute, query, query_opt};
use crate::domain::action_items::ActionItem;
use crate::domain::conversations::{
    Conversation, NewSegment, STATUS_COMPLETED, Structured, TranscriptSegment, speaker_name,
};
use crate::domain::feed::{FeedWindow, TombstoneType};
use crate::domain::folders::{Folder, SystemFolderSpec};
use crate::domain::ids::new_id;
use crate::domain::paging::Page;
use crate::domain::time::Timestamp;
use crate::domain::webhooks::{Change, EventType};
use crate::store::StoreResult;
use crate::store::columns::ACTION_ITEM_COLUMNS;
use crate::store::columns::{CONVERSATION_COLUMNS, SEGMENT_COLUMNS};
use crate::store::conversations::{
    Claim, ClaimRow, ConversationBody, ConversationFilter, ConversationStore, ConversationUpdate,
    ExistingTexts, FolderChange, NewConversation, ProcessedRecord, StoredInput, StructuredRecord,
};

const CONVERSATION_FROM: &str =
    "FROM conversations c LEFT JOIN folders f ON f.id = c.folder_id AND f.user_id = c.user_id";

/// The claim of a client session id with the current `discarded` of its conversation (falling
/// back to the recorded one when the conversation was deleted since), locked until the
/// transaction ends.
const CLAIM_SQL: &str = "SELECT k.conversation_id, k.claimed_at, k.completed_at IS NOT NULL,
         COALESCE(c.discarded, k.discarded, false)
     FROM conversation_claims k
     LEFT JOIN conversations c ON c.id = k.conversation_id AND c.user_id = k.user_id
     WHERE k.user_id = $1 AND k.client_session_id = $2
     FOR UPDATE OF k";

pub(super) const FOLDERS_SQL: &str =
    "SELECT f.id, f.name, f.description, f.color, f.icon, f.created_at,
         f.updated_at, f.sort_order, f.is_default, f.is_system,
         (SELECT count(*) FROM conversations c
          WHERE c.user_id = f.user_id AND c.folder_id = f.id AND NOT c.discarded)
     FROM folders f WHERE f.user_id = $1
     ORDER BY f.sort_order, f.created_at, f.id";

/// A conversation row, and whether it was created from text (it has no transcript).
pub(super) struct Loaded {
    conversation: Conversation,
    from_text: bool,
}

/// Reads `CONVERSATION_COLUMNS`.
pub(super) fn conversation_from_row(row: &Row) -> StoreResult<Loaded> {
    let events: serde_json::Value = row.try_get(8)?;
    let geolocation: Option<serde_json::Value> = row.try_get(15)?;
    Ok(Loaded {
        conversation: Conversation {
            id: row.try_get(0)?,
            created_at: row.try_get(1)?,
            started_at: row.try_get(2)?,
            finished_at: row.try_get(3)?,
            updated_at: row.try_get(18)?,
            structured: Structured {
                title: row.try_get(4)?,
                overview: row.try_get(5)?,
                emoji: row.try_get(6)?,
                category: row.try_get(7)?,
                action_items: Vec::new(),
                events: serde_json::from_value(events).unwrap_or_default(),
            },
            language: row.try_get(9)?,
            source: row.try_get(10)?,
            status: STATUS_COMPLETED.to_string(),
            discarded: row.try_get(11)?,
            starred: row.try_get(17)?,
            processed_by: row.try_get(12)?,
            folder_id: row.try_get(13)?,
            folder_name: row.try_get(14)?,
            geolocation: geolocation.and_then(|g| serde_json::from_value(g).ok()),
            transcript_segments: None,
        },
        from_text: row.try_get(16)?,
    })
}

/// Fills in each conversation's current action items and, when asked, its transcript: two
/// queries for the whole page.
pub(super) async fn attach_details(
    client: &impl GenericClient,
    user_id: &str,
    loaded: Vec<Loaded>,
    include_transcript: bool,
) -> StoreResult<Vec<Conversation>> {
    if loaded.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = loaded.iter().map(|l| l.conversation.id.as_str()).collect();
    let mut action_items = action_items_by_conversation(client, user_id, &ids).await?;
    let mut segments = if include_transcript {
        segments_by_conversation(client, user_id, &ids).await?
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

async fn action_items_by_conversation(
    client: &impl GenericClient,
    user_id: &str,
    ids: &[&str],
) -> StoreResult<HashMap<String, Vec<ActionItem>>> {
    let sql = format!(
        "SELECT {ACTION_ITEM_COLUMNS} FROM action_items
         WHERE user_id = $1 AND conversation_id = ANY($2)
         ORDER BY created_at, id"
    );
    let mut grouped: HashMap<String, Vec<ActionItem>> = HashMap::new();
    for row in query(client, &sql, &[&user_id, &ids]).await? {
        let item = action_item_from_row(&row)?;
        if let Some(conversation_id) = item.conversation_id.clone() {
            grouped.entry(conversation_id).or_default().push(item);
        }
    }
    Ok(grouped)
}

async fn segments_by_conversation(
    client: &impl GenericClient,
    user_id: &str,
    ids: &[&str],
) -> StoreResult<HashMap<String, Vec<TranscriptSegment>>> {
    let display_name: String = query_opt(
        client,
        "SELECT display_name FROM users WHERE id = $1",
        &[&user_id],
    )
    .await?
    .map(|row| row.try_get(0))
    .transpose()?
    .unwrap_or_default();
    let sql = format!(
        "SELECT {SEGMENT_COLUMNS} FROM transcript_segments s
         WHERE s.user_id = $1 AND s.conversation_id = ANY($2)
         ORDER BY s.conversation_id, s.position"
    );
    let mut grouped: HashMap<String, Vec<TranscriptSegment>> = HashMap::new();
    for row in query(client, &sql, &[&user_id, &ids]).await? {
        let speaker: String = row.try_get(3)?;
        let speaker_id: i64 = row.try_get(4)?;
        let is_user: bool = row.try_get(5)?;
        grouped
            .entry(row.try_get(0)?)
            .or_default()
            .push(TranscriptSegment {
                id: row.try_get(1)?,
                text: row.try_get(2)?,
                speaker_name: speaker_name(&speaker, speaker_id, is_user, &display_name),
                speaker,
                speaker_id,
                is_user,
                person_id: row.try_get(6)?,
                start: row.try_get(7)?,
                end: row.try_get(8)?,
            });
    }
    Ok(grouped)
}

async fn segments_of(
    client: &impl GenericClient,
    user_id: &str,
    conversation_id: &str,
) -> StoreResult<Vec<NewSegment>> {
    let sql = format!(
        "SELECT {SEGMENT_COLUMNS} FROM transcript_segments s
         WHERE s.conversation_id = $2 AND s.user_id = $1 ORDER BY s.position"
    );
    let rows = query(client, &sql, &[&user_id, &conversation_id]).await?;
    rows.iter()
        .map(|row| {
            Ok(NewSegment {
                id: row.try_get(1)?,
                text: row.try_get(2)?,
                speaker: row.try_get(3)?,
                speaker_id: row.try_get(4)?,
                is_user: row.try_get(5)?,
                person_id: row.try_get(6)?,
                start: row.try_get(7)?,
                end: row.try_get(8)?,
            })
        })
        .collect()
}

async fn claim_row(
    client: &impl GenericClient,
    user_id: &str,
    client_session_id: &str,
) -> StoreResult<Option<ClaimRow>> {
    let row = query_opt(client, CLAIM_SQL, &[&user_id, &client_session_id]).await?;
    row.map(|row| {
        Ok(ClaimRow {
            conversation_id: row.try_get(0)?,
            claimed_at: row.try_get(1)?,
            completed: row.try_get(2)?,
            discarded: row.try_get(3)?,
        })
    })
    .transpose()
}

/// Creates the user's three system folders unless they exist (the unique key on
/// `(user_id, system_key)` makes concurrent creations agree) and returns the id of `wanted`.
pub(super) async fn system_folder_id(
    client: &impl GenericClient,
    user_id: &str,
    wanted: &SystemFolderSpec,
    now: Timestamp,
) -> StoreResult<String> {
    let find = "SELECT id FROM folders WHERE user_id = $1 AND system_key = $2";
    if let Some(row) = query_opt(client, find, &[&user_id, &wanted.key]).await? {
        return Ok(row.try_get(0)?);
    }
    for spec in SystemFolderSpec::all() {
        execute(
            client,
            "INSERT INTO folders (id, user_id, system_key, name, description, color, icon,
                 sort_order, is_default, is_system, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true, $10, $10)
             ON CONFLICT (user_id, system_key) DO NOTHING",
            &[
                &new_id(),
                &user_id,
                &spec.key,
                &spec.name,
                &spec.description,
                &spec.color,
                &spec.icon,
                &spec.order,
                &spec.is_default,
                &now,
            ],
        )
        .await?;
    }
    // READ COMMITTED: this statement sees a folder another transaction committed meanwhile.
    let row = query_opt(client, find, &[&user_id, &wanted.key]).await?;
    Ok(row
        .map(|row| row.try_get(0))
        .transpose()?
        .unwrap_or_default())
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
async fn touch_folder_of(
    client: &impl GenericClient,
    user_id: &str,
    conversation_id: &str,
    at: Timestamp,
) -> StoreResult<()> {
    execute(
        client,
        "UPDATE folders SET updated_at = $3 WHERE user_id = $1 AND id =
             (SELECT folder_id FROM conversations WHERE user_id = $1 AND id = $2)",
        &[&user_id, &conversation_id, &at],
    )
    .await
    .map(|_| ())
}

async fn insert_extracted(
    client: &impl GenericClient,
    user_id: &str,
    processed: &ProcessedRecord,
) -> StoreResult<()> {
    insert_action_items(client, user_id, &processed.action_items).await?;
    insert_memories(client, user_id, &processed.memories).await?;
    Ok(())
}

fn events_json(structured: &StructuredRecord) -> serde_json::Value {
    serde_json::to_value(&structured.events).expect("events serialize")
}

fn parts_json(structured: &StructuredRecord) -> serde_json::Value {
    serde_json::to_value(structured.processing_parts).expect("provenance serializes")
}

/// The text a conversation's transcript is searched by: the text it was created from, or its
/// segments' texts one per line. Segments never change after creation, so neither does this.
fn transcript_text(body: &ConversationBody) -> String {
    match body {
        ConversationBody::Text { text, .. } => text.clone(),
        ConversationBody::Segments(segments) => segments
            .iter()
            .map(|segment| segment.text.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

async fn insert_conversation(
    client: &impl GenericClient,
    user_id: &str,
    conversation: &NewConversation,
) -> StoreResult<()> {
    let processed = &conversation.processed;
    let structured = &processed.structured;
    let folder_id = match processed.folder {
        Some(spec) => {
            Some(system_folder_id(client, user_id, &spec, conversation.processed_at).await?)
        }
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
    let geolocation = conversation
        .geolocation
        .as_ref()
        .map(|g| serde_json::to_value(g).expect("geolocation serializes"));
    execute(
        client,
        "INSERT INTO conversations (id, user_id, created_at, started_at, finished_at,
             updated_at, title, overview, emoji, category, events, language, source, text,
             text_source, text_source_spec, discarded, processed_by, folder_id, geolocation,
             processing_parts, transcript_search)
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
             $17, $18, $19, $20, setweight(to_tsvector('omi_search', $21::text), 'C'))",
        &[
            &conversation.id,
            &user_id,
            &conversation.started_at,
            &conversation.finished_at,
            &conversation.processed_at,
            &structured.title,
            &structured.overview,
            &structured.emoji,
            &structured.category,
            &events_json(structured),
            &conversation.language,
            &conversation.source,
            &text,
            &text_source,
            &text_source_spec,
            &structured.discarded,
            &structured.processed_by,
            &folder_id,
            &geolocation,
            &parts_json(structured),
            &transcript_text(&conversation.body),
        ],
    )
    .await?;
    insert_segments(client, user_id, &conversation.id, segments).await?;
    insert_extracted(client, user_id, processed).await
}

/// The conversation with its transcript, action items and folder name.
pub(super) async fn find_conversation(
    client: &impl GenericClient,
    user_id: &str,
    conversation_id: &str,
) -> StoreResult<Option<Conversation>> {
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} {CONVERSATION_FROM} WHERE c.user_id = $1 AND c.id = $2"
    );
    let Some(row) = query_opt(client, &sql, &[&user_id, &conversation_id]).await? else {
        return Ok(None);
    };
    let loaded = vec![conversation_from_row(&row)?];
    Ok(attach_details(client, user_id, loaded, true).await?.pop())
}

/// Records the webhook events of a stored conversation change: the conversation (read back
/// whole, only when someone listens) unless `event` is `None`, and the items processing
/// extracted with it.
async fn record_conversation_events(
    client: &impl GenericClient,
    user_id: &str,
    conversation_id: &str,
    event: Option<bool>,
    at: Timestamp,
    extracted: Option<&ProcessedRecord>,
) -> StoreResult<()> {
    let mut changes = Vec::new();
    if let Some(created) = event
        && super::webhooks::wanted(
            client,
            user_id,
            &[
                EventType::ConversationCreated,
                EventType::ConversationUpdated,
            ],
        )
        .await?
        && let Some(conversation) = find_conversation(client, user_id, conversation_id).await?
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
    super::webhooks::record(client, user_id, &changes).await
}

async fn apply_update(
    client: &impl GenericClient,
    user_id: &str,
    conversation_id: &str,
    update: &ConversationUpdate,
) -> StoreResult<bool> {
    // The row lock orders concurrent updates of one conversation.
    let exists = query_opt(
        client,
        "SELECT 1 FROM conversations WHERE user_id = $1 AND id = $2 FOR UPDATE",
        &[&user_id, &conversation_id],
    )
    .await?;
    if exists.is_none() {
        return Ok(false);
    }
    if let Some(processed) = &update.reprocessed {
        let s = &processed.structured;
        execute(
            client,
            "UPDATE conversations SET title = $3, overview = $4, emoji = $5, category = $6,
                 events = $7, processed_by = $8, discarded = $9, updated_at = $10,
                 processing_parts = $11
             WHERE user_id = $1 AND id = $2",
            &[
                &user_id,
                &conversation_id,
                &s.title,
                &s.overview,
                &s.emoji,
                &s.category,
                &events_json(s),
                &s.processed_by,
                &s.discarded,
                &update.updated_at,
                &parts_json(s),
            ],
        )
        .await?;
        insert_extracted(client, user_id, processed).await?;
    }
    execute(
        client,
        "UPDATE conversations SET title = COALESCE($3, title),
             discarded = COALESCE($4, discarded), updated_at = $5,
             starred = COALESCE($6, starred)
         WHERE user_id = $1 AND id = $2",
        &[
            &user_id,
            &conversation_id,
            &update.title,
            &update.discarded,
            &update.updated_at,
            &update.starred,
        ],
    )
    .await?;
    if update.folder != FolderChange::Keep {
        let folder_id = match update.folder {
            FolderChange::File(spec) => {
                Some(system_folder_id(client, user_id, &spec, update.updated_at).await?)
            }
            FolderChange::Keep | FolderChange::Clear => None,
        };
        execute(
            client,
            "UPDATE conversations SET folder_id = $3 WHERE user_id = $1 AND id = $2",
            &[&user_id, &conversation_id, &folder_id],
        )
        .await?;
    }
    Ok(true)
}

/// The list query with only the filters in use (each combination is its own prepared statement
/// with its own plan), and its parameters in order.
fn list_query<'a>(
    user_id: &'a &'a str,
    filter: &'a ConversationFilter,
    page: &'a Page,
) -> (String, Vec<&'a (dyn ToSql + Sync)>) {
    list_or_feed_query(user_id, filter, Err(page))
}

/// The list query (`Err(page)`), or with a feed window (`Ok(window)`) the change-feed query: the
/// same filters, discarded conversations included, in `(updated_at, id)` order from the window.
pub(super) fn list_or_feed_query<'a>(
    user_id: &'a &'a str,
    filter: &'a ConversationFilter,
    feed: Result<&'a FeedWindow, &'a Page>,
) -> (String, Vec<&'a (dyn ToSql + Sync)>) {
    let kept_only = if feed.is_ok() {
        ""
    } else {
        " AND NOT c.discarded"
    };
    let mut sql = format!(
        "SELECT {CONVERSATION_COLUMNS} {CONVERSATION_FROM} WHERE c.user_id = $1{kept_only}"
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![user_id];
    // `$?` in a condition stands for its parameter's number.
    let mut condition = |test: &str, value: &'a (dyn ToSql + Sync)| {
        params.push(value);
        sql.push_str(" AND ");
        sql.push_str(&test.replace("$?", &format!("${}", params.len())));
    };
    if let Some(from) = &filter.created_from {
        condition("c.created_at >= $?", from);
    }
    if let Some(before) = &filter.created_before {
        condition("c.created_at < $?", before);
    }
    // One category reads its own index in list order; several are checked on the list order
    // index, which carries the category for that.
    match filter.categories.as_slice() {
        [] => {}
        [category] => condition("c.category = $?", category),
        _ => condition("c.category = ANY($?)", &filter.categories),
    }
    if let Some(folder_id) = &filter.folder_id {
        condition("c.folder_id = $?", folder_id);
    }
    if let Some(starred) = &filter.starred {
        condition("c.starred = $?", starred);
    }
    let page = match feed {
        Ok(window) => {
            if let Some(since) = &window.since {
                condition("c.updated_at >= $?", since);
            }
            if let Some(after) = &window.after {
                condition("c.updated_at >= $?", &after.at);
                params.push(&after.at);
                params.push(&after.id);
                sql.push_str(&format!(
                    " AND (c.updated_at, c.id) > (${}, ${})",
                    params.len() - 1,
                    params.len()
                ));
            }
            sql.push_str(" ORDER BY c.updated_at, c.id");
            params.push(&window.limit);
            params.push(&0_i64);
            sql.push_str(&format!(
                " LIMIT ${} OFFSET ${}",
                params.len() - 1,
                params.len()
            ));
            return (sql, params);
        }
        Err(page) => page,
    };
    params.push(&page.limit);
    params.push(&page.offset);
    sql.push_str(&format!(
        " ORDER BY c.created_at DESC, c.id DESC LIMIT ${} OFFSET ${}",
        params.len() - 1,
        params.len()
    ));
    (sql, params)
}

#[async_trait]
impl ConversationStore for PgStore {
    #[instrument(skip_all)]
    async fn claim_conversation(
        &self,
        user_id: &str,
        client_session_id: &str,
        conversation_id: &str,
        now: Timestamp,
        abandoned_before: Timestamp,
    ) -> StoreResult<Claim> {
        in_transaction!(self, |tx| {
            // A concurrent claim of the same id waits here until the first one commits, then
            // inserts nothing and finds that claim below.
            let inserted = execute(
                tx,
                "INSERT INTO conversation_claims
                     (user_id, client_session_id, conversation_id, claimed_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id, client_session_id) DO NOTHING",
                &[&user_id, &client_session_id, &conversation_id, &now],
            )
            .await?;
            if inserted > 0 {
                return Ok(Claim::Claimed);
            }
            let Some(row) = claim_row(tx, user_id, client_session_id).await? else {
                // Released between the insert and the read: the next repeat claims it.
                return Ok(Claim::InProgress);
            };
            if row.stands(abandoned_before) {
                return Ok(row.outcome());
            }
            execute(
                tx,
                "UPDATE conversation_claims SET conversation_id = $3, claimed_at = $4
                 WHERE user_id = $1 AND client_session_id = $2",
                &[&user_id, &client_session_id, &conversation_id, &now],
            )
            .await?;
            Ok(Claim::Claimed)
        })
    }

    #[instrument(skip_all)]
    async fn release_claim(
        &self,
        user_id: &str,
        client_session_id: &str,
        conversation_id: &str,
    ) -> StoreResult<()> {
        with_connection!(self, |client| {
            execute(
                client,
                "DELETE FROM conversation_claims
                 WHERE user_id = $1 AND client_session_id = $2 AND conversation_id = $3
                   AND completed_at IS NULL",
                &[&user_id, &client_session_id, &conversation_id],
            )
            .await
            .map(|_| ())
        })
    }

    #[instrument(skip_all)]
    async fn existing_texts(
        &self,
        user_id: &str,
        action_item_keys: &[String],
        open_since: Timestamp,
        memory_keys: &[String],
    ) -> StoreResult<ExistingTexts> {
        with_connection!(self, |client| {
            let mut existing = ExistingTexts::default();
            if !action_item_keys.is_empty() {
                let rows = query(
                    client,
                    "SELECT normalized_description FROM action_items
                     WHERE user_id = $1 AND normalized_description = ANY($2)
                       AND created_at >= $3 AND NOT completed",
                    &[&user_id, &action_item_keys, &open_since],
                )
                .await?;
                existing.open_action_items = rows
                    .iter()
                    .map(|row| row.try_get(0))
                    .collect::<Result<_, _>>()?;
            }
            if !memory_keys.is_empty() {
                let rows = query(
                    client,
                    "SELECT normalized_content FROM memories
                     WHERE user_id = $1 AND normalized_content = ANY($2)",
                    &[&user_id, &memory_keys],
                )
                .await?;
                existing.memories = rows
                    .iter()
                    .map(|row| row.try_get(0))
                    .collect::<Result<_, _>>()?;
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
        in_transaction!(self, |tx| {
            if let Some(client_session_id) = &conversation.client_session_id {
                // Locked: a takeover by another replica waits until this creation is stored.
                match claim_row(tx, user_id, client_session_id).await? {
                    Some(row) if row.conversation_id == conversation.id && !row.completed => {}
                    Some(row) => return Ok(row.outcome()),
                    None => return Ok(Claim::InProgress),
                }
            }
            let at = change_stamp(tx, user_id, conversation.processed_at).await?;
            let mut conversation = conversation.clone();
            conversation.processed_at = at;
            stamp_extracted(&mut conversation.processed, at);
            insert_conversation(tx, user_id, &conversation).await?;
            let memory_ids: Vec<String> = conversation
                .processed
                .memories
                .iter()
                .map(|memory| memory.id.clone())
                .collect();
            lift_tombstones(tx, user_id, TombstoneType::Memory, &memory_ids).await?;
            touch_folder_of(tx, user_id, &conversation.id, at).await?;
            // A discarded conversation is not announced until it is restored (API.md §13.G.2).
            record_conversation_events(
                tx,
                user_id,
                &conversation.id,
                (!conversation.processed.structured.discarded).then_some(true),
                conversation.processed_at,
                Some(&conversation.processed),
            )
            .await?;
            if let Some(client_session_id) = &conversation.client_session_id {
                execute(
                    tx,
                    "UPDATE conversation_claims SET completed_at = $3, discarded = $4
                     WHERE user_id = $1 AND client_session_id = $2",
                    &[
                        &user_id,
                        client_session_id,
                        &conversation.processed_at,
                        &conversation.processed.structured.discarded,
                    ],
                )
                .await?;
            }
            Ok(Claim::Claimed)
        })
    }

    #[instrument(skip_all)]
    async fn get_conversation(
        &self,
        user_id: &str,
        conversation_id: &str,
        include_transcript: bool,
    ) -> StoreResult<Option<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} {CONVERSATION_FROM} WHERE c.user_id = $1 AND c.id = $2"
        );
        with_connection!(self, |client| {
            let Some(row) = query_opt(client, &sql, &[&user_id, &conversation_id]).await? else {
                return Ok(None);
            };
            let loaded = vec![conversation_from_row(&row)?];
            Ok(attach_details(client, user_id, loaded, include_transcript)
                .await?
                .pop())
        })
    }

    #[instrument(skip_all)]
    async fn list_conversations(
        &self,
        user_id: &str,
        filter: &ConversationFilter,
        page: Page,
        include_transcript: bool,
    ) -> StoreResult<Vec<Conversation>> {
        let (sql, params) = list_query(&user_id, filter, &page);
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
    async fn conversation_input(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<StoredInput>> {
        with_connection!(self, |client| {
            let Some(row) = query_opt(
                client,
                "SELECT c.started_at, c.language, c.text, c.text_source, c.text_source_spec,
                     u.display_name
                 FROM conversations c JOIN users u ON u.id = c.user_id
                 WHERE c.user_id = $1 AND c.id = $2",
                &[&user_id, &conversation_id],
            )
            .await?
            else {
                return Ok(None);
            };
            let text: Option<String> = row.try_get(2)?;
            let body = match text {
                Some(text) => ConversationBody::Text {
                    text,
                    text_source: row.try_get::<_, Option<String>>(3)?.unwrap_or_default(),
                    text_source_spec: row.try_get(4)?,
                },
                None => {
                    ConversationBody::Segments(segments_of(client, user_id, conversation_id).await?)
                }
            };
            Ok(Some(StoredInput {
                started_at: row.try_get(0)?,
                language: row.try_get(1)?,
                user_display_name: row.try_get(5)?,
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
        in_transaction!(self, |tx| {
            // The change time first: the user row is always the first lock a write takes.
            let mut update = update.clone();
            update.updated_at = change_stamp(tx, user_id, update.updated_at).await?;
            // Whether it was discarded before: a restore is announced as its creation.
            let Some(was_discarded) = query_opt(
                tx,
                "SELECT discarded FROM conversations WHERE user_id = $1 AND id = $2 FOR UPDATE",
                &[&user_id, &conversation_id],
            )
            .await?
            .map(|row| row.try_get::<_, bool>(0))
            .transpose()?
            else {
                return Ok(false);
            };
            if let Some(processed) = &mut update.reprocessed {
                stamp_extracted(processed, update.updated_at);
            }
            // The folder it leaves and the one it enters both change their count.
            touch_folder_of(tx, user_id, conversation_id, update.updated_at).await?;
            if !apply_update(tx, user_id, conversation_id, &update).await? {
                return Ok(false);
            }
            touch_folder_of(tx, user_id, conversation_id, update.updated_at).await?;
            // A restore is the conversation's first kept appearance: announced as created.
            let restored = was_discarded && update.discarded == Some(false);
            record_conversation_events(
                tx,
                user_id,
                conversation_id,
                Some(restored),
                update.updated_at,
                update.reprocessed.as_ref(),
            )
            .await?;
            Ok(true)
        })
    }

    #[instrument(skip_all)]
    async fn delete_conversation(&self, user_id: &str, conversation_id: &str) -> StoreResult<bool> {
        in_transaction!(self, |tx| {
            let at = change_stamp(tx, user_id, crate::domain::time::now()).await?;
            touch_folder_of(tx, user_id, conversation_id, at).await?;
            let deleted = execute(
                tx,
                "DELETE FROM conversations WHERE user_id = $1 AND id = $2",
                &[&user_id, &conversation_id],
            )
            .await?;
            if deleted > 0 {
                leave_tombstone(
                    tx,
                    user_id,
                    TombstoneType::Conversation,
                    conversation_id,
                    at,
                )
                .await?;
                let change = Change::ConversationDeleted {
                    id: conversation_id.to_string(),
                    at,
                };
                super::webhooks::record(tx, user_id, &[change]).await?;
            }
            Ok(deleted > 0)
        })
    }

    #[instrument(skip_all)]
    async fn list_folders(&self, user_id: &str) -> StoreResult<Vec<Folder>> {
        with_connection!(self, |client| {
            let rows = query(client, FOLDERS_SQL, &[&user_id]).await?;
            rows.iter().map(|row| Ok(folder_from_row(row)?)).collect()
        })
    }
}

/// A folder from a row of `FOLDERS_SQL`'s columns (the folder feed selects the same ones).
pub(super) fn folder_from_row(row: &tokio_postgres::Row) -> Result<Folder, tokio_postgres::Error> {
    Ok(Folder {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        color: row.try_get(3)?,
        icon: row.try_get(4)?,
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
        order: row.try_get(7)?,
        is_default: row.try_get(8)?,
        is_system: row.try_get(9)?,
        conversation_count: row.try_get(10)?,
    })
}
