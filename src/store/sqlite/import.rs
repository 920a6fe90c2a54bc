//! Imports on SQLite: each object and its mapping in one write transaction.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tracing::instrument;

use super::conversations::system_folder_id;
use super::export::insert_conversation;
use super::rows::{insert_action_item, insert_memory};
use super::{SqliteStore, map_error};
use crate::domain::ids::new_id;
use crate::domain::text::normalize_for_dedup;
use crate::domain::time::{Timestamp, to_micros};
use crate::store::StoreResult;
use crate::store::import::{
    FolderRef, ImportKey, ImportOutcome, ImportRecord, ImportStore, Imported, ImportedConversation,
    ImportedFolder, PageCheckpoint,
};

fn mapping(
    c: &Connection,
    user_id: &str,
    source: &str,
    kind: &str,
    source_id: &str,
) -> rusqlite::Result<Option<(String, String)>> {
    c.prepare_cached(
        "SELECT local_id, fingerprint FROM import_objects
         WHERE user_id = ?1 AND source = ?2 AND kind = ?3 AND source_id = ?4",
    )?
    .query_row(params![user_id, source, kind, source_id], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
    .optional()
}

/// The owner of a row with this id in a table keyed by id alone, if any.
fn owner_of(c: &Connection, table: &str, id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached(&format!("SELECT user_id FROM {table} WHERE id = ?1"))?
        .query_row([id], |row| row.get(0))
        .optional()
}

fn exists_for_user(c: &Connection, table: &str, user_id: &str, id: &str) -> rusqlite::Result<bool> {
    c.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE user_id = ?1 AND id = ?2)"
    ))?
    .query_row(params![user_id, id], |row| row.get(0))
}

/// The id a new object of a table keyed by id alone gets: the source's when no one holds it;
/// `(id, true)` when the user already holds it (a previous import without a mapping).
fn claim_id(
    c: &Connection,
    table: &str,
    user_id: &str,
    wanted: &str,
) -> rusqlite::Result<(String, bool)> {
    match owner_of(c, table, wanted)? {
        None => Ok((wanted.to_string(), false)),
        Some(owner) if owner == user_id => Ok((wanted.to_string(), true)),
        Some(_) => Ok((new_id(), false)),
    }
}

fn folder_for(
    c: &Connection,
    user_id: &str,
    source: &str,
    folder: &Option<FolderRef>,
    now: Timestamp,
) -> rusqlite::Result<Option<String>> {
    let Some(folder) = folder else {
        return Ok(None);
    };
    if let Some((local, _)) = mapping(c, user_id, source, "folder", &folder.source_id)?
        && exists_for_user(c, "folders", user_id, &local)?
    {
        return Ok(Some(local));
    }
    match &folder.system {
        Some(spec) => system_folder_id(c, user_id, spec, now).map(Some),
        None => Ok(None),
    }
}

fn write_folder(
    c: &Connection,
    user_id: &str,
    mapped: Option<&str>,
    folder: &ImportedFolder,
    source_id: &str,
    now: Timestamp,
) -> rusqlite::Result<(String, bool)> {
    if let Some(spec) = &folder.system {
        // Mapped for the first time: the user's own system folder of that name.
        return Ok((system_folder_id(c, user_id, spec, now)?, false));
    }
    let (id, existed) = match mapped {
        Some(local) if exists_for_user(c, "folders", user_id, local)? => (local.to_string(), true),
        _ => claim_id(c, "folders", user_id, source_id)?,
    };
    c.prepare_cached(
        "INSERT INTO folders (id, user_id, system_key, name, description, color, icon, sort_order,
             is_default, is_system, created_at, updated_at)
         VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7, 0, 0, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
             color = excluded.color, icon = excluded.icon, sort_order = excluded.sort_order,
             created_at = excluded.created_at, updated_at = excluded.updated_at",
    )?
    .execute(params![
        id,
        user_id,
        folder.name,
        folder.description,
        folder.color,
        folder.icon,
        folder.order,
        to_micros(folder.created_at),
        to_micros(folder.updated_at),
    ])?;
    Ok((id, existed))
}

fn write_conversation(
    c: &Connection,
    user_id: &str,
    source: &str,
    mapped: Option<&str>,
    conversation: &ImportedConversation,
    now: Timestamp,
) -> rusqlite::Result<(String, bool)> {
    let (id, existed) = match mapped {
        Some(local) if exists_for_user(c, "conversations", user_id, local)? => {
            (local.to_string(), true)
        }
        _ => claim_id(c, "conversations", user_id, &conversation.id)?,
    };
    if existed {
        c.prepare_cached("DELETE FROM transcript_segments WHERE conversation_id = ?1")?
            .execute([&id])?;
        c.prepare_cached("DELETE FROM conversations WHERE id = ?1 AND user_id = ?2")?
            .execute(params![id, user_id])?;
    }
    let folder_id = folder_for(c, user_id, source, &conversation.folder, now)?;
    insert_conversation(c, user_id, &conversation.stored_as(id.clone(), folder_id))?;
    Ok((id, existed))
}

pub(super) fn import_one(
    c: &Connection,
    user_id: &str,
    key: &ImportKey,
    record: ImportRecord,
    now: Timestamp,
) -> rusqlite::Result<Imported> {
    let kind = record.kind();
    let mapped = mapping(c, user_id, &key.source, kind, &key.source_id)?;
    let mapped_id = mapped.as_ref().map(|(local, _)| local.as_str());
    if let Some((local, fingerprint)) = &mapped {
        let table = match &record {
            ImportRecord::Folder(f) if f.system.is_some() => None,
            ImportRecord::Folder(_) => Some("folders"),
            ImportRecord::Conversation(_) => Some("conversations"),
            ImportRecord::ActionItem(_) => Some("action_items"),
            ImportRecord::Memory(_) => Some("memories"),
            ImportRecord::Goal(..) => Some("goals"),
        };
        let present = match table {
            Some(table) => exists_for_user(c, table, user_id, local)?,
            None => true,
        };
        if present && *fingerprint == key.fingerprint {
            return Ok(Imported {
                outcome: ImportOutcome::Unchanged,
                local_id: local.clone(),
            });
        }
    }
    let (local_id, existed) = match record {
        ImportRecord::Folder(folder) => {
            write_folder(c, user_id, mapped_id, &folder, &key.source_id, now)?
        }
        ImportRecord::Conversation(conversation) => {
            write_conversation(c, user_id, &key.source, mapped_id, &conversation, now)?
        }
        ImportRecord::ActionItem(mut item) => {
            if let Some(conversation) = item.conversation_id.take() {
                let local = mapping(c, user_id, &key.source, "conversation", &conversation)?
                    .map(|(local, _)| local);
                item.conversation_id = Some(local.unwrap_or(conversation));
            }
            let (id, existed) = match mapped_id {
                Some(local) if exists_for_user(c, "action_items", user_id, local)? => {
                    (local.to_string(), true)
                }
                _ => claim_id(c, "action_items", user_id, &item.id)?,
            };
            if existed {
                c.prepare_cached("DELETE FROM action_items WHERE id = ?1 AND user_id = ?2")?
                    .execute(params![id, user_id])?;
            }
            item.id = id.clone();
            insert_action_item(c, user_id, &item, &normalize_for_dedup(&item.description))?;
            (id, existed)
        }
        ImportRecord::Memory(mut memory) => {
            if let Some(conversation) = memory.conversation_id.take() {
                let local = mapping(c, user_id, &key.source, "conversation", &conversation)?
                    .map(|(local, _)| local);
                memory.conversation_id = Some(local.unwrap_or(conversation));
            }
            // A changed content changes the id: the old object goes.
            if let Some(old) = mapped_id.filter(|old| *old != memory.id) {
                c.prepare_cached("DELETE FROM memories WHERE user_id = ?1 AND id = ?2")?
                    .execute(params![user_id, old])?;
            }
            let existed = exists_for_user(c, "memories", user_id, &memory.id)?;
            c.prepare_cached("DELETE FROM memories WHERE user_id = ?1 AND id = ?2")?
                .execute(params![user_id, memory.id])?;
            insert_memory(c, user_id, &memory)?;
            (memory.id, existed || mapped_id.is_some())
        }
        ImportRecord::Goal(mut goal, history) => {
            let id = match mapped_id {
                Some(local) if exists_for_user(c, "goals", user_id, local)? => local.to_string(),
                _ => goal.id.clone(),
            };
            let existed = exists_for_user(c, "goals", user_id, &id)?;
            if existed {
                c.prepare_cached("DELETE FROM goal_history WHERE user_id = ?1 AND goal_id = ?2")?
                    .execute(params![user_id, id])?;
                c.prepare_cached("DELETE FROM goals WHERE user_id = ?1 AND id = ?2")?
                    .execute(params![user_id, id])?;
            }
            goal.id = id.clone();
            super::goals::insert(c, user_id, &goal)?;
            for progress in &history {
                super::goals::record_progress(c, user_id, &id, progress)?;
            }
            (id, existed)
        }
    };
    c.prepare_cached(
        "INSERT INTO import_objects (user_id, source, kind, source_id, local_id, fingerprint,
             imported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (user_id, source, kind, source_id) DO UPDATE SET
             local_id = excluded.local_id, fingerprint = excluded.fingerprint,
             imported_at = excluded.imported_at",
    )?
    .execute(params![
        user_id,
        key.source,
        kind,
        key.source_id,
        local_id,
        key.fingerprint,
        to_micros(now)
    ])?;
    Ok(Imported {
        outcome: if existed || mapped.is_some() {
            ImportOutcome::Updated
        } else {
            ImportOutcome::Created
        },
        local_id,
    })
}

/// Records the next offset to read (`Some`), or that the resource finished (`None`).
fn write_checkpoint(
    c: &Connection,
    user_id: &str,
    source: &str,
    resource: &str,
    next_offset: Option<i64>,
    now: Timestamp,
) -> rusqlite::Result<()> {
    match next_offset {
        Some(offset) => c
            .prepare_cached(
                "INSERT INTO import_checkpoints (user_id, source, resource, next_offset,
                     updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (user_id, source, resource) DO UPDATE SET
                     next_offset = excluded.next_offset, updated_at = excluded.updated_at",
            )?
            .execute(params![user_id, source, resource, offset, to_micros(now)])?,
        None => c
            .prepare_cached(
                "DELETE FROM import_checkpoints
                 WHERE user_id = ?1 AND source = ?2 AND resource = ?3",
            )?
            .execute(params![user_id, source, resource])?,
    };
    Ok(())
}

/// Records the webhook event of an object the import wrote (none when it was unchanged).
pub(super) fn announce(
    c: &Connection,
    user_id: &str,
    kind: &str,
    imported: Imported,
) -> rusqlite::Result<Imported> {
    if imported.outcome != ImportOutcome::Unchanged {
        let created = imported.outcome == ImportOutcome::Created;
        super::webhooks::record_imported(c, user_id, kind, &imported.local_id, created)?;
    }
    Ok(imported)
}

/// One object behind a savepoint: a failure rolls back what it wrote and nothing else.
fn import_behind_savepoint(
    c: &Connection,
    user_id: &str,
    key: &ImportKey,
    record: ImportRecord,
    now: Timestamp,
) -> rusqlite::Result<rusqlite::Result<Imported>> {
    c.execute_batch("SAVEPOINT import_object")?;
    let kind = record.kind();
    let outcome = import_one(c, user_id, key, record, now)
        .and_then(|imported| announce(c, user_id, kind, imported));
    if outcome.is_err() {
        c.execute_batch("ROLLBACK TO import_object")?;
    }
    c.execute_batch("RELEASE import_object")?;
    Ok(outcome)
}

#[async_trait]
impl ImportStore for SqliteStore {
    #[instrument(skip_all)]
    async fn import_page(
        &self,
        user_id: &str,
        records: Vec<(ImportKey, ImportRecord)>,
        checkpoint: Option<PageCheckpoint>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Imported>>> {
        let user_id = user_id.to_string();
        self.write(move |c| {
            let mut outcomes = Vec::with_capacity(records.len());
            for (key, record) in records {
                let outcome =
                    import_behind_savepoint(c, &user_id, &key, record, now).map_err(map_error)?;
                outcomes.push(outcome.map_err(map_error));
            }
            if let Some(at) = checkpoint {
                write_checkpoint(
                    c,
                    &user_id,
                    &at.source,
                    &at.resource,
                    Some(at.next_offset),
                    now,
                )
                .map_err(map_error)?;
            }
            Ok(outcomes)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn import_record(
        &self,
        user_id: &str,
        key: ImportKey,
        record: ImportRecord,
        now: Timestamp,
    ) -> StoreResult<Imported> {
        let user_id = user_id.to_string();
        let kind = record.kind();
        self.write(move |c| {
            import_one(c, &user_id, &key, record, now)
                .and_then(|imported| announce(c, &user_id, kind, imported))
                .map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn import_status(
        &self,
        user_id: &str,
        kind: &str,
        key: &ImportKey,
    ) -> StoreResult<Option<bool>> {
        self.read(|c| {
            Ok(mapping(c, user_id, &key.source, kind, &key.source_id)?
                .map(|(_, fingerprint)| fingerprint == key.fingerprint))
        })
    }

    #[instrument(skip_all)]
    async fn import_checkpoint(
        &self,
        user_id: &str,
        source: &str,
        resource: &str,
    ) -> StoreResult<Option<i64>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT next_offset FROM import_checkpoints
                 WHERE user_id = ?1 AND source = ?2 AND resource = ?3",
            )?
            .query_row(params![user_id, source, resource], |row| row.get(0))
            .optional()
        })
    }

    #[instrument(skip_all)]
    async fn save_import_checkpoint(
        &self,
        user_id: &str,
        source: &str,
        resource: &str,
        next_offset: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let (user_id, source, resource) = (
            user_id.to_string(),
            source.to_string(),
            resource.to_string(),
        );
        self.write(move |c| {
            write_checkpoint(c, &user_id, &source, &resource, next_offset, now).map_err(map_error)
        })
        .await
    }
}
