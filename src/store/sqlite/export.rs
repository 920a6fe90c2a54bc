//! The portable export on SQLite: keyset pages by id, and faithful all-or-nothing restores.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tracing::instrument;

use super::goals::{goal_from_row, progress_from_row, record_progress};
use super::rows::{action_item_from_row, insert_action_item, insert_memory, memory_from_row};
use super::{SqliteStore, map_error};
use crate::domain::conversations::NewSegment;
use crate::domain::export::{
    ExportKind, ExportRecord, ExportedConversation, ExportedDailySummary, ExportedFolder,
    ExportedGoal, sorted_keys,
};
use crate::domain::text::normalize_for_dedup;
use crate::domain::time::{from_micros, to_micros};
use crate::store::columns::{ACTION_ITEM_COLUMNS, GOAL_COLUMNS, MEMORY_COLUMNS};
use crate::store::export::{ExportStore, Nth, RestoreOutcome, table_of};
use crate::store::{StoreError, StoreResult};

const FOLDER_COLUMNS: &str = "id, name, description, color, icon, sort_order, is_default, \
     is_system, system_key, created_at, updated_at";

const CONVERSATION_COLUMNS: &str = "id, created_at, started_at, finished_at, updated_at, title, \
     overview, emoji, category, events, language, source, discarded, starred, processed_by, \
     folder_id, geolocation, text, text_source, text_source_spec, processing_parts";

const SUMMARY_COLUMNS: &str = "id, date, created_at, origin, body";

fn json_column<T: serde::de::DeserializeOwned>(index: usize, text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
    })
}

fn folder_from_row(row: &Row<'_>) -> rusqlite::Result<ExportedFolder> {
    Ok(ExportedFolder {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        color: row.get(3)?,
        icon: row.get(4)?,
        order: row.get(5)?,
        is_default: row.get(6)?,
        is_system: row.get(7)?,
        system_key: row.get(8)?,
        created_at: from_micros(row.get(9)?),
        updated_at: from_micros(row.get(10)?),
    })
}

fn conversation_from_row(row: &Row<'_>) -> rusqlite::Result<ExportedConversation> {
    let events: String = row.get(9)?;
    let geolocation: Option<String> = row.get(16)?;
    let parts: Option<String> = row.get(20)?;
    Ok(ExportedConversation {
        id: row.get(0)?,
        created_at: from_micros(row.get(1)?),
        started_at: from_micros(row.get(2)?),
        finished_at: from_micros(row.get(3)?),
        updated_at: from_micros(row.get(4)?),
        title: row.get(5)?,
        overview: row.get(6)?,
        emoji: row.get(7)?,
        category: row.get(8)?,
        events: json_column(9, &events)?,
        language: row.get(10)?,
        source: row.get(11)?,
        discarded: row.get(12)?,
        starred: row.get(13)?,
        processed_by: row.get(14)?,
        folder_id: row.get(15)?,
        geolocation: geolocation.map(|g| json_column(16, &g)).transpose()?,
        text: row.get(17)?,
        text_source: row.get(18)?,
        text_source_spec: row.get(19)?,
        processing_parts: parts
            .map(|p| json_column(20, &p).map(sorted_keys))
            .transpose()?,
        transcript_segments: Vec::new(),
    })
}

fn segments_of(c: &Connection, conversation_id: &str) -> rusqlite::Result<Vec<NewSegment>> {
    c.prepare_cached(
        "SELECT id, text, speaker, speaker_id, is_user, person_id, start_seconds, end_seconds
         FROM transcript_segments WHERE conversation_id = ?1 ORDER BY position",
    )?
    .query_map([conversation_id], |row| {
        Ok(NewSegment {
            id: row.get(0)?,
            text: row.get(1)?,
            speaker: row.get(2)?,
            speaker_id: row.get(3)?,
            is_user: row.get(4)?,
            person_id: row.get(5)?,
            start: row.get(6)?,
            end: row.get(7)?,
        })
    })?
    .collect()
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<ExportedDailySummary> {
    let body: String = row.get(4)?;
    Ok(ExportedDailySummary {
        id: row.get(0)?,
        date: row.get(1)?,
        created_at: from_micros(row.get(2)?),
        origin: row.get(3)?,
        body: sorted_keys(json_column(4, &body)?),
    })
}

fn columns_of(kind: ExportKind) -> &'static str {
    match kind {
        ExportKind::Folder => FOLDER_COLUMNS,
        ExportKind::Conversation => CONVERSATION_COLUMNS,
        ExportKind::ActionItem => ACTION_ITEM_COLUMNS,
        ExportKind::Memory => MEMORY_COLUMNS,
        ExportKind::Goal => GOAL_COLUMNS,
        ExportKind::DailySummary => SUMMARY_COLUMNS,
    }
}

fn record_from_row(kind: ExportKind, row: &Row<'_>) -> rusqlite::Result<ExportRecord> {
    Ok(match kind {
        ExportKind::Folder => ExportRecord::Folder(folder_from_row(row)?),
        ExportKind::Conversation => {
            ExportRecord::Conversation(Box::new(conversation_from_row(row)?))
        }
        ExportKind::ActionItem => ExportRecord::ActionItem(action_item_from_row(row)?),
        ExportKind::Memory => ExportRecord::Memory(memory_from_row(row)?),
        ExportKind::Goal => ExportRecord::Goal(Box::new(ExportedGoal {
            goal: goal_from_row(row)?,
            history: Vec::new(),
        })),
        ExportKind::DailySummary => ExportRecord::DailySummary(summary_from_row(row)?),
    })
}

/// Fills in what lives in other tables: a conversation's transcript, a goal's history.
fn attach(c: &Connection, user_id: &str, record: &mut ExportRecord) -> rusqlite::Result<()> {
    match record {
        ExportRecord::Conversation(conversation) => {
            conversation.transcript_segments = segments_of(c, &conversation.id)?;
        }
        ExportRecord::Goal(goal) => {
            goal.history = c
                .prepare_cached(
                    "SELECT date, value, recorded_at FROM goal_history
                     WHERE user_id = ?1 AND goal_id = ?2 ORDER BY date",
                )?
                .query_map(params![user_id, goal.goal.id], progress_from_row)?
                .collect::<rusqlite::Result<_>>()?;
        }
        _ => {}
    }
    Ok(())
}

fn page(
    c: &Connection,
    user_id: &str,
    kind: ExportKind,
    after_id: &str,
    limit: usize,
) -> rusqlite::Result<Vec<ExportRecord>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE user_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        columns_of(kind),
        table_of(kind)
    );
    let mut records = c
        .prepare_cached(&sql)?
        .query_map(params![user_id, after_id, limit as i64], |row| {
            record_from_row(kind, row)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for record in &mut records {
        attach(c, user_id, record)?;
    }
    Ok(records)
}

fn current(
    c: &Connection,
    user_id: &str,
    kind: ExportKind,
    id: &str,
) -> rusqlite::Result<Option<ExportRecord>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE user_id = ?1 AND id = ?2",
        columns_of(kind),
        table_of(kind)
    );
    let record = c
        .prepare_cached(&sql)?
        .query_row(params![user_id, id], |row| record_from_row(kind, row))
        .optional()?;
    match record {
        Some(mut record) => {
            attach(c, user_id, &mut record)?;
            Ok(Some(record))
        }
        None => Ok(None),
    }
}

/// Inserts a folder row as given.
pub(super) fn insert_folder(
    c: &Connection,
    user_id: &str,
    folder: &ExportedFolder,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO folders (id, user_id, system_key, name, description, color, icon, sort_order,
             is_default, is_system, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        folder.id,
        user_id,
        folder.system_key,
        folder.name,
        folder.description,
        folder.color,
        folder.icon,
        folder.order,
        folder.is_default,
        folder.is_system,
        to_micros(folder.created_at),
        to_micros(folder.updated_at),
    ])?;
    Ok(())
}

fn update_folder(c: &Connection, user_id: &str, folder: &ExportedFolder) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE folders SET system_key = ?3, name = ?4, description = ?5, color = ?6, icon = ?7,
             sort_order = ?8, is_default = ?9, is_system = ?10, created_at = ?11, updated_at = ?12
         WHERE id = ?1 AND user_id = ?2",
    )?
    .execute(params![
        folder.id,
        user_id,
        folder.system_key,
        folder.name,
        folder.description,
        folder.color,
        folder.icon,
        folder.order,
        folder.is_default,
        folder.is_system,
        to_micros(folder.created_at),
        to_micros(folder.updated_at),
    ])?;
    Ok(())
}

/// Inserts a conversation row, its transcript and its search entry, exactly as given. Shared
/// by the restore of an export and the import from another server.
pub(super) fn insert_conversation(
    c: &Connection,
    user_id: &str,
    conversation: &ExportedConversation,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO conversations (id, user_id, created_at, started_at, finished_at,
             updated_at, title, overview, emoji, category, events, language, source, text,
             text_source, text_source_spec, discarded, starred, processed_by, folder_id,
             geolocation, processing_parts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21, ?22)",
    )?
    .execute(params![
        conversation.id,
        user_id,
        to_micros(conversation.created_at),
        to_micros(conversation.started_at),
        to_micros(conversation.finished_at),
        to_micros(conversation.updated_at),
        conversation.title,
        conversation.overview,
        conversation.emoji,
        conversation.category,
        serde_json::to_string(&conversation.events).expect("events serialize"),
        conversation.language,
        conversation.source,
        conversation.text,
        conversation.text_source,
        conversation.text_source_spec,
        conversation.discarded,
        conversation.starred,
        conversation.processed_by,
        conversation.folder_id,
        conversation
            .geolocation
            .as_ref()
            .map(|g| serde_json::to_string(g).expect("geolocation serializes")),
        conversation
            .processing_parts
            .as_ref()
            .map(|p| p.to_string()),
    ])?;
    let mut insert_segment = c.prepare_cached(
        "INSERT INTO transcript_segments (conversation_id, position, user_id, id, text, speaker,
             speaker_id, is_user, person_id, start_seconds, end_seconds)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (position, segment) in conversation.transcript_segments.iter().enumerate() {
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
    let transcript = match &conversation.text {
        Some(text) => text.clone(),
        None => conversation
            .transcript_segments
            .iter()
            .map(|segment| segment.text.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    super::search::index_conversation_text(
        c,
        user_id,
        &conversation.id,
        &conversation.title,
        &conversation.overview,
        &transcript,
    )
}

/// Removes the user's object (and what hangs off it) so that the record can be written anew.
fn remove(c: &Connection, user_id: &str, kind: ExportKind, id: &str) -> rusqlite::Result<()> {
    match kind {
        ExportKind::Conversation => {
            c.prepare_cached("DELETE FROM transcript_segments WHERE conversation_id = ?1")?
                .execute([id])?;
        }
        ExportKind::Goal => {
            c.prepare_cached("DELETE FROM goal_history WHERE user_id = ?1 AND goal_id = ?2")?
                .execute(params![user_id, id])?;
        }
        _ => {}
    }
    c.prepare_cached(&format!(
        "DELETE FROM {} WHERE user_id = ?1 AND id = ?2",
        table_of(kind)
    ))?
    .execute(params![user_id, id])?;
    Ok(())
}

/// Tables keyed by id alone: an id another user holds cannot be restored.
fn held_by_another(
    c: &Connection,
    user_id: &str,
    kind: ExportKind,
    id: &str,
) -> rusqlite::Result<bool> {
    if matches!(kind, ExportKind::Memory | ExportKind::Goal) {
        return Ok(false);
    }
    c.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE id = ?1 AND user_id <> ?2)",
        table_of(kind)
    ))?
    .query_row(params![id, user_id], |row| row.get(0))
}

fn write(
    c: &Connection,
    user_id: &str,
    record: &ExportRecord,
    existed: bool,
) -> rusqlite::Result<()> {
    match record {
        ExportRecord::Folder(folder) => {
            // The user's system folder of that name under another id gives way, and its
            // conversations follow the restored one.
            let displaced: Option<String> = match &folder.system_key {
                Some(key) => c
                    .prepare_cached(
                        "SELECT id FROM folders WHERE user_id = ?1 AND system_key = ?2 AND id <> ?3",
                    )?
                    .query_row(params![user_id, key, folder.id], |row| row.get(0))
                    .optional()?,
                None => None,
            };
            if let Some(old) = &displaced {
                c.prepare_cached("UPDATE folders SET system_key = NULL WHERE id = ?1")?
                    .execute([old])?;
            }
            if existed {
                update_folder(c, user_id, folder)?;
            } else {
                insert_folder(c, user_id, folder)?;
            }
            if let Some(old) = &displaced {
                c.prepare_cached(
                    "UPDATE conversations SET folder_id = ?1 WHERE user_id = ?2 AND folder_id = ?3",
                )?
                .execute(params![folder.id, user_id, old])?;
                remove(c, user_id, ExportKind::Folder, old)?;
            }
        }
        ExportRecord::Conversation(conversation) => insert_conversation(c, user_id, conversation)?,
        ExportRecord::ActionItem(item) => {
            insert_action_item(c, user_id, item, &normalize_for_dedup(&item.description))?
        }
        ExportRecord::Memory(memory) => {
            insert_memory(c, user_id, memory)?;
        }
        ExportRecord::Goal(goal) => {
            super::goals::insert(c, user_id, &goal.goal)?;
            for progress in &goal.history {
                record_progress(c, user_id, &goal.goal.id, progress)?;
            }
        }
        ExportRecord::DailySummary(summary) => {
            // One summary per day: another one of the same day gives way.
            c.prepare_cached("DELETE FROM daily_summaries WHERE user_id = ?1 AND date = ?2")?
                .execute(params![user_id, summary.date])?;
            c.prepare_cached(
                "INSERT INTO daily_summaries (id, user_id, date, created_at, origin, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                summary.id,
                user_id,
                summary.date,
                to_micros(summary.created_at),
                summary.origin,
                summary.body.to_string(),
            ])?;
        }
    }
    Ok(())
}

fn restore_one(
    c: &Connection,
    user_id: &str,
    record: &ExportRecord,
) -> StoreResult<RestoreOutcome> {
    let (kind, id) = (record.kind(), record.id());
    if held_by_another(c, user_id, kind, id).map_err(map_error)? {
        return Err(StoreError::Conflict(format!(
            "another user holds the {} id {id}",
            kind.as_str()
        )));
    }
    let outcome = match current(c, user_id, kind, id).map_err(map_error)? {
        Some(existing) if existing == *record => return Ok(RestoreOutcome::Unchanged),
        // A folder is rewritten in place: removing it would take its conversations out of it.
        Some(_) if kind == ExportKind::Folder => RestoreOutcome::Updated,
        Some(_) => {
            remove(c, user_id, kind, id).map_err(map_error)?;
            RestoreOutcome::Updated
        }
        None => RestoreOutcome::Created,
    };
    write(c, user_id, record, outcome == RestoreOutcome::Updated).map_err(map_error)?;
    Ok(outcome)
}

#[async_trait]
impl ExportStore for SqliteStore {
    #[instrument(skip_all)]
    async fn export_page(
        &self,
        user_id: &str,
        kind: ExportKind,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ExportRecord>> {
        self.read(|c| page(c, user_id, kind, after_id.unwrap_or(""), limit))
    }

    #[instrument(skip_all)]
    async fn export_nth(
        &self,
        user_id: &str,
        kind: ExportKind,
        after_id: Option<&str>,
        n: u64,
    ) -> StoreResult<Nth> {
        let table = table_of(kind);
        let after = after_id.unwrap_or("");
        self.read(|c| {
            let found: Option<String> = c
                .prepare_cached(&format!(
                    "SELECT id FROM {table} WHERE user_id = ?1 AND id > ?2
                     ORDER BY id LIMIT 1 OFFSET ?3"
                ))?
                .query_row(params![user_id, after, n.saturating_sub(1) as i64], |row| {
                    row.get(0)
                })
                .optional()?;
            if let Some(id) = found {
                return Ok(Nth::Found(id));
            }
            let count: i64 = c
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE user_id = ?1 AND id > ?2"
                ))?
                .query_row(params![user_id, after], |row| row.get(0))?;
            Ok(Nth::Short(count as u64))
        })
    }

    #[instrument(skip_all)]
    async fn restore_records(
        &self,
        user_id: &str,
        records: Vec<ExportRecord>,
    ) -> StoreResult<Vec<RestoreOutcome>> {
        let user_id = user_id.to_string();
        self.write(move |c| {
            records
                .iter()
                .map(|record| restore_one(c, &user_id, record))
                .collect()
        })
        .await
    }
}
