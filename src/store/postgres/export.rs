//! The portable export on PostgreSQL: keyset pages by id, and faithful all-or-nothing restores
//! under the user's row lock.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tracing::instrument;

use super::goals::{goal_from_row, progress_from_row, record_progress};
use super::rows::{
    action_item_from_row, insert_action_item, insert_memory, insert_segments, memory_from_row,
};
use super::{PgStore, execute, lock_user, query, query_opt};
use crate::domain::conversations::NewSegment;
use crate::domain::export::{
    ExportKind, ExportRecord, ExportedConversation, ExportedDailySummary, ExportedFolder,
    ExportedGoal, sorted_keys,
};
use crate::domain::goals::GoalProgress;
use crate::store::columns::{ACTION_ITEM_COLUMNS, GOAL_COLUMNS, MEMORY_COLUMNS};
use crate::store::export::{ExportStore, Nth, RestoreOutcome, table_of};
use crate::store::{StoreError, StoreResult};

const DATE_FORMAT: &str = "%Y-%m-%d";

const FOLDER_COLUMNS: &str = "id, name, description, color, icon, sort_order, is_default, \
     is_system, system_key, created_at, updated_at";

const CONVERSATION_COLUMNS: &str = "id, created_at, started_at, finished_at, updated_at, title, \
     overview, emoji, category, events, language, source, discarded, starred, processed_by, \
     folder_id, geolocation, text, text_source, text_source_spec, processing_parts";

const SUMMARY_COLUMNS: &str = "id, date, created_at, origin, body";

fn json_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> StoreResult<T> {
    serde_json::from_value(value)
        .map_err(|error| StoreError::Internal(anyhow::anyhow!("a stored JSON column: {error}")))
}

fn folder_from_row(row: &Row) -> StoreResult<ExportedFolder> {
    Ok(ExportedFolder {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        color: row.try_get(3)?,
        icon: row.try_get(4)?,
        order: row.try_get(5)?,
        is_default: row.try_get(6)?,
        is_system: row.try_get(7)?,
        system_key: row.try_get(8)?,
        created_at: row.try_get(9)?,
        updated_at: row.try_get(10)?,
    })
}

fn conversation_from_row(row: &Row) -> StoreResult<ExportedConversation> {
    let geolocation: Option<serde_json::Value> = row.try_get(16)?;
    Ok(ExportedConversation {
        id: row.try_get(0)?,
        created_at: row.try_get(1)?,
        started_at: row.try_get(2)?,
        finished_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
        title: row.try_get(5)?,
        overview: row.try_get(6)?,
        emoji: row.try_get(7)?,
        category: row.try_get(8)?,
        events: json_value(row.try_get(9)?)?,
        language: row.try_get(10)?,
        source: row.try_get(11)?,
        discarded: row.try_get(12)?,
        starred: row.try_get(13)?,
        processed_by: row.try_get(14)?,
        folder_id: row.try_get(15)?,
        geolocation: geolocation.map(json_value).transpose()?,
        text: row.try_get(17)?,
        text_source: row.try_get(18)?,
        text_source_spec: row.try_get(19)?,
        processing_parts: row
            .try_get::<_, Option<serde_json::Value>>(20)?
            .map(sorted_keys),
        transcript_segments: Vec::new(),
    })
}

fn summary_from_row(row: &Row) -> StoreResult<ExportedDailySummary> {
    let date: NaiveDate = row.try_get(1)?;
    Ok(ExportedDailySummary {
        id: row.try_get(0)?,
        date: date.format(DATE_FORMAT).to_string(),
        created_at: row.try_get(2)?,
        origin: row.try_get(3)?,
        body: sorted_keys(row.try_get(4)?),
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

fn record_from_row(kind: ExportKind, row: &Row) -> StoreResult<ExportRecord> {
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

/// Fills in transcripts and goal histories for a page: one query each.
async fn attach(
    c: &impl GenericClient,
    user_id: &str,
    records: &mut [ExportRecord],
) -> StoreResult<()> {
    let conversation_ids: Vec<&str> = records
        .iter()
        .filter(|r| matches!(r, ExportRecord::Conversation(_)))
        .map(ExportRecord::id)
        .collect();
    let goal_ids: Vec<&str> = records
        .iter()
        .filter(|r| matches!(r, ExportRecord::Goal(_)))
        .map(ExportRecord::id)
        .collect();
    let mut segments: HashMap<String, Vec<NewSegment>> = HashMap::new();
    if !conversation_ids.is_empty() {
        for row in query(
            c,
            "SELECT conversation_id, id, text, speaker, speaker_id, is_user, person_id,
                 start_seconds, end_seconds
             FROM transcript_segments WHERE user_id = $1 AND conversation_id = ANY($2)
             ORDER BY conversation_id, position",
            &[&user_id, &conversation_ids],
        )
        .await?
        {
            segments
                .entry(row.try_get(0)?)
                .or_default()
                .push(NewSegment {
                    id: row.try_get(1)?,
                    text: row.try_get(2)?,
                    speaker: row.try_get(3)?,
                    speaker_id: row.try_get(4)?,
                    is_user: row.try_get(5)?,
                    person_id: row.try_get(6)?,
                    start: row.try_get(7)?,
                    end: row.try_get(8)?,
                });
        }
    }
    let mut history: HashMap<String, Vec<GoalProgress>> = HashMap::new();
    if !goal_ids.is_empty() {
        for row in query(
            c,
            "SELECT goal_id, date, value, recorded_at FROM goal_history
             WHERE user_id = $1 AND goal_id = ANY($2) ORDER BY goal_id, date",
            &[&user_id, &goal_ids],
        )
        .await?
        {
            let goal_id: String = row.try_get(0)?;
            history
                .entry(goal_id)
                .or_default()
                .push(progress_from_row(&row, 1)?);
        }
    }
    for record in records.iter_mut() {
        match record {
            ExportRecord::Conversation(conversation) => {
                conversation.transcript_segments =
                    segments.remove(&conversation.id).unwrap_or_default();
            }
            ExportRecord::Goal(goal) => {
                goal.history = history.remove(&goal.goal.id).unwrap_or_default();
            }
            _ => {}
        }
    }
    Ok(())
}

async fn page(
    c: &impl GenericClient,
    user_id: &str,
    kind: ExportKind,
    after_id: &str,
    limit: i64,
) -> StoreResult<Vec<ExportRecord>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        columns_of(kind),
        table_of(kind)
    );
    let mut records = query(c, &sql, &[&user_id, &after_id, &limit])
        .await?
        .iter()
        .map(|row| record_from_row(kind, row))
        .collect::<StoreResult<Vec<_>>>()?;
    attach(c, user_id, &mut records).await?;
    Ok(records)
}

async fn current(
    c: &impl GenericClient,
    user_id: &str,
    kind: ExportKind,
    id: &str,
) -> StoreResult<Option<ExportRecord>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE user_id = $1 AND id = $2",
        columns_of(kind),
        table_of(kind)
    );
    let Some(row) = query_opt(c, &sql, &[&user_id, &id]).await? else {
        return Ok(None);
    };
    let mut records = vec![record_from_row(kind, &row)?];
    attach(c, user_id, &mut records).await?;
    Ok(records.pop())
}

async fn insert_folder(
    c: &impl GenericClient,
    user_id: &str,
    folder: &ExportedFolder,
) -> StoreResult<()> {
    execute(
        c,
        "INSERT INTO folders (id, user_id, system_key, name, description, color, icon, sort_order,
             is_default, is_system, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET system_key = excluded.system_key, name = excluded.name,
             description = excluded.description, color = excluded.color, icon = excluded.icon,
             sort_order = excluded.sort_order, is_default = excluded.is_default,
             is_system = excluded.is_system, created_at = excluded.created_at,
             updated_at = excluded.updated_at",
        &[
            &folder.id,
            &user_id,
            &folder.system_key,
            &folder.name,
            &folder.description,
            &folder.color,
            &folder.icon,
            &folder.order,
            &folder.is_default,
            &folder.is_system,
            &folder.created_at,
            &folder.updated_at,
        ],
    )
    .await
    .map(|_| ())
}

/// Inserts a conversation row with its transcript (and the transcript's search vector),
/// exactly as given. Shared by the restore of an export and the import from another server.
pub(super) async fn insert_conversation(
    c: &impl GenericClient,
    user_id: &str,
    conversation: &ExportedConversation,
) -> StoreResult<()> {
    let events = serde_json::to_value(&conversation.events).expect("events serialize");
    let geolocation = conversation
        .geolocation
        .as_ref()
        .map(|g| serde_json::to_value(g).expect("geolocation serializes"));
    let transcript = match &conversation.text {
        Some(text) => text.clone(),
        None => conversation
            .transcript_segments
            .iter()
            .map(|segment| segment.text.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    execute(
        c,
        "INSERT INTO conversations (id, user_id, created_at, started_at, finished_at,
             updated_at, title, overview, emoji, category, events, language, source, text,
             text_source, text_source_spec, discarded, starred, processed_by, folder_id,
             geolocation, processing_parts, transcript_search)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20, $21, $22, setweight(to_tsvector('omi_search', $23::text), 'C'))",
        &[
            &conversation.id,
            &user_id,
            &conversation.created_at,
            &conversation.started_at,
            &conversation.finished_at,
            &conversation.updated_at,
            &conversation.title,
            &conversation.overview,
            &conversation.emoji,
            &conversation.category,
            &events,
            &conversation.language,
            &conversation.source,
            &conversation.text,
            &conversation.text_source,
            &conversation.text_source_spec,
            &conversation.discarded,
            &conversation.starred,
            &conversation.processed_by,
            &conversation.folder_id,
            &geolocation,
            &conversation.processing_parts,
            &transcript,
        ],
    )
    .await?;
    insert_segments(
        c,
        user_id,
        &conversation.id,
        &conversation.transcript_segments,
    )
    .await
}

/// Removes the user's object (and what hangs off it) so that the record can be written anew.
async fn remove(
    c: &impl GenericClient,
    user_id: &str,
    kind: ExportKind,
    id: &str,
) -> StoreResult<()> {
    match kind {
        ExportKind::Conversation => {
            execute(
                c,
                "DELETE FROM transcript_segments WHERE conversation_id = $1",
                &[&id],
            )
            .await?;
        }
        ExportKind::Goal => {
            execute(
                c,
                "DELETE FROM goal_history WHERE user_id = $1 AND goal_id = $2",
                &[&user_id, &id],
            )
            .await?;
        }
        _ => {}
    }
    execute(
        c,
        &format!(
            "DELETE FROM {} WHERE user_id = $1 AND id = $2",
            table_of(kind)
        ),
        &[&user_id, &id],
    )
    .await
    .map(|_| ())
}

/// Tables keyed by id alone: an id another user holds cannot be restored.
async fn held_by_another(
    c: &impl GenericClient,
    user_id: &str,
    kind: ExportKind,
    id: &str,
) -> StoreResult<bool> {
    if matches!(kind, ExportKind::Memory | ExportKind::Goal) {
        return Ok(false);
    }
    let sql = format!(
        "SELECT 1 FROM {} WHERE id = $1 AND user_id <> $2",
        table_of(kind)
    );
    Ok(query_opt(c, &sql, &[&id, &user_id]).await?.is_some())
}

async fn write(c: &impl GenericClient, user_id: &str, record: &ExportRecord) -> StoreResult<()> {
    match record {
        ExportRecord::Folder(folder) => {
            // The user's system folder of that name under another id gives way, and its
            // conversations follow the restored one.
            let displaced: Option<String> = match &folder.system_key {
                Some(key) => query_opt(
                    c,
                    "SELECT id FROM folders WHERE user_id = $1 AND system_key = $2 AND id <> $3",
                    &[&user_id, key, &folder.id],
                )
                .await?
                .map(|row| row.try_get(0))
                .transpose()?,
                None => None,
            };
            if let Some(old) = &displaced {
                execute(
                    c,
                    "UPDATE folders SET system_key = NULL WHERE id = $1",
                    &[old],
                )
                .await?;
            }
            insert_folder(c, user_id, folder).await?;
            if let Some(old) = &displaced {
                execute(
                    c,
                    "UPDATE conversations SET folder_id = $1 WHERE user_id = $2 AND folder_id = $3",
                    &[&folder.id, &user_id, old],
                )
                .await?;
                remove(c, user_id, ExportKind::Folder, old).await?;
            }
        }
        ExportRecord::Conversation(conversation) => {
            insert_conversation(c, user_id, conversation).await?
        }
        ExportRecord::ActionItem(item) => insert_action_item(c, user_id, item).await?,
        ExportRecord::Memory(memory) => {
            insert_memory(c, user_id, memory).await?;
        }
        ExportRecord::Goal(goal) => {
            super::goals::insert(c, user_id, &goal.goal).await?;
            for progress in &goal.history {
                record_progress(c, user_id, &goal.goal.id, progress).await?;
            }
        }
        ExportRecord::DailySummary(summary) => {
            let date = NaiveDate::parse_from_str(&summary.date, DATE_FORMAT).map_err(|_| {
                StoreError::Conflict(format!("daily summary date {:?}", summary.date))
            })?;
            // One summary per day: another one of the same day gives way.
            execute(
                c,
                "DELETE FROM daily_summaries WHERE user_id = $1 AND date = $2",
                &[&user_id, &date],
            )
            .await?;
            execute(
                c,
                "INSERT INTO daily_summaries (id, user_id, date, created_at, origin, body)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &summary.id,
                    &user_id,
                    &date,
                    &summary.created_at,
                    &summary.origin,
                    &summary.body,
                ],
            )
            .await?;
        }
    }
    Ok(())
}

async fn restore_one(
    c: &impl GenericClient,
    user_id: &str,
    record: &ExportRecord,
) -> StoreResult<RestoreOutcome> {
    let (kind, id) = (record.kind(), record.id());
    if held_by_another(c, user_id, kind, id).await? {
        return Err(StoreError::Conflict(format!(
            "another user holds the {} id {id}",
            kind.as_str()
        )));
    }
    let outcome = match current(c, user_id, kind, id).await? {
        Some(existing) if existing == *record => return Ok(RestoreOutcome::Unchanged),
        // A folder is rewritten in place: removing it would take its conversations out of it.
        Some(_) if kind == ExportKind::Folder => RestoreOutcome::Updated,
        Some(_) => {
            remove(c, user_id, kind, id).await?;
            RestoreOutcome::Updated
        }
        None => RestoreOutcome::Created,
    };
    write(c, user_id, record).await?;
    Ok(outcome)
}

#[async_trait]
impl ExportStore for PgStore {
    #[instrument(skip_all)]
    async fn export_page(
        &self,
        user_id: &str,
        kind: ExportKind,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ExportRecord>> {
        let after = after_id.unwrap_or("");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        with_connection!(self, |client| {
            page(client, user_id, kind, after, limit).await
        })
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
        let offset = i64::try_from(n.saturating_sub(1)).unwrap_or(i64::MAX);
        with_connection!(self, |client| {
            let found = query_opt(
                client,
                &format!(
                    "SELECT id FROM {table} WHERE user_id = $1 AND id > $2
                     ORDER BY id LIMIT 1 OFFSET $3"
                ),
                &[&user_id, &after, &offset],
            )
            .await?;
            if let Some(row) = found {
                return Ok(Nth::Found(row.try_get(0)?));
            }
            let row = query_opt(
                client,
                &format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1 AND id > $2"),
                &[&user_id, &after],
            )
            .await?;
            let count: i64 = match row {
                Some(row) => row.try_get(0)?,
                None => 0,
            };
            Ok(Nth::Short(count.max(0) as u64))
        })
    }

    #[instrument(skip_all)]
    async fn restore_records(
        &self,
        user_id: &str,
        records: Vec<ExportRecord>,
    ) -> StoreResult<Vec<RestoreOutcome>> {
        in_transaction!(self, |tx| {
            lock_user(tx, user_id).await?;
            let mut outcomes = Vec::with_capacity(records.len());
            for record in &records {
                outcomes.push(restore_one(tx, user_id, record).await?);
            }
            Ok(outcomes)
        })
    }
}
