//! Imports on PostgreSQL: each object and its mapping in one transaction, under the user's row
//! lock so that two imports of one user cannot interleave.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tracing::instrument;

use super::conversations::system_folder_id;
use super::export::insert_conversation;
use super::rows::{insert_action_item, insert_memory};
use super::{PgStore, execute, lock_user, map_error, query_opt};
use crate::domain::ids::new_id;
use crate::domain::time::Timestamp;
use crate::store::StoreResult;
use crate::store::import::{
    FolderRef, ImportKey, ImportOutcome, ImportRecord, ImportStore, Imported, ImportedConversation,
    ImportedFolder, PageCheckpoint,
};

async fn mapping(
    c: &impl GenericClient,
    user_id: &str,
    source: &str,
    kind: &str,
    source_id: &str,
) -> StoreResult<Option<(String, String)>> {
    let row = query_opt(
        c,
        "SELECT local_id, fingerprint FROM import_objects
         WHERE user_id = $1 AND source = $2 AND kind = $3 AND source_id = $4",
        &[&user_id, &source, &kind, &source_id],
    )
    .await?;
    row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .transpose()
}

async fn owner_of(c: &impl GenericClient, table: &str, id: &str) -> StoreResult<Option<String>> {
    let row = query_opt(
        c,
        &format!("SELECT user_id FROM {table} WHERE id = $1"),
        &[&id],
    )
    .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

async fn exists_for_user(
    c: &impl GenericClient,
    table: &str,
    user_id: &str,
    id: &str,
) -> StoreResult<bool> {
    let row = query_opt(
        c,
        &format!("SELECT 1 FROM {table} WHERE user_id = $1 AND id = $2"),
        &[&user_id, &id],
    )
    .await?;
    Ok(row.is_some())
}

/// The source's id when no one holds it; `(id, true)` when the user already holds it.
async fn claim_id(
    c: &impl GenericClient,
    table: &str,
    user_id: &str,
    wanted: &str,
) -> StoreResult<(String, bool)> {
    Ok(match owner_of(c, table, wanted).await? {
        None => (wanted.to_string(), false),
        Some(owner) if owner == user_id => (wanted.to_string(), true),
        Some(_) => (new_id(), false),
    })
}

async fn folder_for(
    c: &impl GenericClient,
    user_id: &str,
    source: &str,
    folder: &Option<FolderRef>,
    now: Timestamp,
) -> StoreResult<Option<String>> {
    let Some(folder) = folder else {
        return Ok(None);
    };
    if let Some((local, _)) = mapping(c, user_id, source, "folder", &folder.source_id).await?
        && exists_for_user(c, "folders", user_id, &local).await?
    {
        return Ok(Some(local));
    }
    match &folder.system {
        Some(spec) => system_folder_id(c, user_id, spec, now).await.map(Some),
        None => Ok(None),
    }
}

async fn write_folder(
    c: &impl GenericClient,
    user_id: &str,
    mapped: Option<&str>,
    folder: &ImportedFolder,
    source_id: &str,
    now: Timestamp,
) -> StoreResult<(String, bool)> {
    if let Some(spec) = &folder.system {
        // Mapped for the first time: the user's own system folder of that name.
        return Ok((system_folder_id(c, user_id, spec, now).await?, false));
    }
    let (id, existed) = match mapped {
        Some(local) if exists_for_user(c, "folders", user_id, local).await? => {
            (local.to_string(), true)
        }
        _ => claim_id(c, "folders", user_id, source_id).await?,
    };
    execute(
        c,
        "INSERT INTO folders (id, user_id, system_key, name, description, color, icon, sort_order,
             is_default, is_system, created_at, updated_at)
         VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, false, false, $8, $9)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
             color = excluded.color, icon = excluded.icon, sort_order = excluded.sort_order,
             created_at = excluded.created_at, updated_at = excluded.updated_at",
        &[
            &id,
            &user_id,
            &folder.name,
            &folder.description,
            &folder.color,
            &folder.icon,
            &folder.order,
            &folder.created_at,
            &folder.updated_at,
        ],
    )
    .await?;
    Ok((id, existed))
}

async fn write_conversation(
    c: &impl GenericClient,
    user_id: &str,
    source: &str,
    mapped: Option<&str>,
    conversation: &ImportedConversation,
    now: Timestamp,
) -> StoreResult<(String, bool)> {
    let (id, existed) = match mapped {
        Some(local) if exists_for_user(c, "conversations", user_id, local).await? => {
            (local.to_string(), true)
        }
        _ => claim_id(c, "conversations", user_id, &conversation.id).await?,
    };
    if existed {
        execute(
            c,
            "DELETE FROM transcript_segments WHERE conversation_id = $1",
            &[&id],
        )
        .await?;
        execute(
            c,
            "DELETE FROM conversations WHERE id = $1 AND user_id = $2",
            &[&id, &user_id],
        )
        .await?;
    }
    let folder_id = folder_for(c, user_id, source, &conversation.folder, now).await?;
    insert_conversation(c, user_id, &conversation.stored_as(id.clone(), folder_id)).await?;
    Ok((id, existed))
}

pub(super) async fn import_one(
    c: &impl GenericClient,
    user_id: &str,
    key: &ImportKey,
    record: ImportRecord,
    now: Timestamp,
) -> StoreResult<Imported> {
    lock_user(c, user_id).await?;
    let kind = record.kind();
    let mapped = mapping(c, user_id, &key.source, kind, &key.source_id).await?;
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
            Some(table) => exists_for_user(c, table, user_id, local).await?,
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
            write_folder(c, user_id, mapped_id, &folder, &key.source_id, now).await?
        }
        ImportRecord::Conversation(conversation) => {
            write_conversation(c, user_id, &key.source, mapped_id, &conversation, now).await?
        }
        ImportRecord::ActionItem(mut item) => {
            if let Some(conversation) = item.conversation_id.take() {
                let local = mapping(c, user_id, &key.source, "conversation", &conversation)
                    .await?
                    .map(|(local, _)| local);
                item.conversation_id = Some(local.unwrap_or(conversation));
            }
            let (id, existed) = match mapped_id {
                Some(local) if exists_for_user(c, "action_items", user_id, local).await? => {
                    (local.to_string(), true)
                }
                _ => claim_id(c, "action_items", user_id, &item.id).await?,
            };
            if existed {
                execute(
                    c,
                    "DELETE FROM action_items WHERE id = $1 AND user_id = $2",
                    &[&id, &user_id],
                )
                .await?;
            }
            item.id = id.clone();
            insert_action_item(c, user_id, &item).await?;
            (id, existed)
        }
        ImportRecord::Memory(mut memory) => {
            if let Some(conversation) = memory.conversation_id.take() {
                let local = mapping(c, user_id, &key.source, "conversation", &conversation)
                    .await?
                    .map(|(local, _)| local);
                memory.conversation_id = Some(local.unwrap_or(conversation));
            }
            if let Some(old) = mapped_id.filter(|old| *old != memory.id) {
                execute(
                    c,
                    "DELETE FROM memories WHERE user_id = $1 AND id = $2",
                    &[&user_id, &old],
                )
                .await?;
            }
            let existed = exists_for_user(c, "memories", user_id, &memory.id).await?;
            execute(
                c,
                "DELETE FROM memories WHERE user_id = $1 AND id = $2",
                &[&user_id, &memory.id],
            )
            .await?;
            insert_memory(c, user_id, &memory).await?;
            (memory.id, existed || mapped_id.is_some())
        }
        ImportRecord::Goal(mut goal, history) => {
            let id = match mapped_id {
                Some(local) if exists_for_user(c, "goals", user_id, local).await? => {
                    local.to_string()
                }
                _ => goal.id.clone(),
            };
            let existed = exists_for_user(c, "goals", user_id, &id).await?;
            if existed {
                execute(
                    c,
                    "DELETE FROM goal_history WHERE user_id = $1 AND goal_id = $2",
                    &[&user_id, &id],
                )
                .await?;
                execute(
                    c,
                    "DELETE FROM goals WHERE user_id = $1 AND id = $2",
                    &[&user_id, &id],
                )
                .await?;
            }
            goal.id = id.clone();
            super::goals::insert(c, user_id, &goal).await?;
            for progress in &history {
                super::goals::record_progress(c, user_id, &id, progress).await?;
            }
            (id, existed)
        }
    };
    execute(
        c,
        "INSERT INTO import_objects (user_id, source, kind, source_id, local_id, fingerprint,
             imported_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (user_id, source, kind, source_id) DO UPDATE SET
             local_id = excluded.local_id, fingerprint = excluded.fingerprint,
             imported_at = excluded.imported_at",
        &[
            &user_id,
            &key.source,
            &kind,
            &key.source_id,
            &local_id,
            &key.fingerprint,
            &now,
        ],
    )
    .await?;
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
async fn write_checkpoint(
    client: &impl GenericClient,
    user_id: &str,
    source: &str,
    resource: &str,
    next_offset: Option<i64>,
    now: Timestamp,
) -> StoreResult<()> {
    match next_offset {
        Some(offset) => {
            execute(
                client,
                "INSERT INTO import_checkpoints (user_id, source, resource, next_offset,
                     updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id, source, resource) DO UPDATE SET
                     next_offset = excluded.next_offset, updated_at = excluded.updated_at",
                &[&user_id, &source, &resource, &offset, &now],
            )
            .await?
        }
        None => {
            execute(
                client,
                "DELETE FROM import_checkpoints
                 WHERE user_id = $1 AND source = $2 AND resource = $3",
                &[&user_id, &source, &resource],
            )
            .await?
        }
    };
    Ok(())
}

/// Records the webhook event of an object the import wrote (none when it was unchanged).
pub(super) async fn announce(
    tx: &impl GenericClient,
    user_id: &str,
    kind: &str,
    imported: Imported,
) -> StoreResult<Imported> {
    if imported.outcome != ImportOutcome::Unchanged {
        let created = imported.outcome == ImportOutcome::Created;
        super::webhooks::record_imported(tx, user_id, kind, &imported.local_id, created).await?;
    }
    Ok(imported)
}

#[async_trait]
impl ImportStore for PgStore {
    #[instrument(skip_all)]
    async fn import_record(
        &self,
        user_id: &str,
        key: ImportKey,
        record: ImportRecord,
        now: Timestamp,
    ) -> StoreResult<Imported> {
        let kind = record.kind();
        in_transaction!(self, |tx| {
            let imported = import_one(tx, user_id, &key, record.clone(), now).await?;
            announce(tx, user_id, kind, imported).await
        })
    }

    #[instrument(skip_all)]
    async fn import_page(
        &self,
        user_id: &str,
        records: Vec<(ImportKey, ImportRecord)>,
        checkpoint: Option<PageCheckpoint>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Imported>>> {
        in_transaction!(self, |tx| {
            let mut outcomes = Vec::with_capacity(records.len());
            for (key, record) in &records {
                // A failure rolls back what this object wrote and nothing else; when even the
                // rollback fails, the connection is gone and so is the page.
                tx.batch_execute("SAVEPOINT import_object")
                    .await
                    .map_err(map_error)?;
                let outcome = match import_one(tx, user_id, key, record.clone(), now).await {
                    Ok(imported) => announce(tx, user_id, record.kind(), imported).await,
                    failed => failed,
                };
                let end = if outcome.is_ok() {
                    "RELEASE SAVEPOINT import_object"
                } else {
                    "ROLLBACK TO SAVEPOINT import_object; RELEASE SAVEPOINT import_object"
                };
                tx.batch_execute(end).await.map_err(map_error)?;
                outcomes.push(outcome);
            }
            if let Some(at) = &checkpoint {
                write_checkpoint(
                    tx,
                    user_id,
                    &at.source,
                    &at.resource,
                    Some(at.next_offset),
                    now,
                )
                .await?;
            }
            Ok(outcomes)
        })
    }

    #[instrument(skip_all)]
    async fn import_status(
        &self,
        user_id: &str,
        kind: &str,
        key: &ImportKey,
    ) -> StoreResult<Option<bool>> {
        with_connection!(self, |client| {
            Ok(mapping(client, user_id, &key.source, kind, &key.source_id)
                .await?
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
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                "SELECT next_offset FROM import_checkpoints
                 WHERE user_id = $1 AND source = $2 AND resource = $3",
                &[&user_id, &source, &resource],
            )
            .await?;
            Ok(row.map(|row| row.try_get(0)).transpose()?)
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
        with_connection!(self, |client| {
            write_checkpoint(client, user_id, source, resource, next_offset, now).await
        })
    }
}
