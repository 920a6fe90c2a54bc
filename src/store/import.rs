//! What an import from another Omi-compatible server needs from a database: each source object
//! written faithfully (no processing) in one transaction together with the record of which local
//! object it became, and a checkpoint per resource so that an interrupted import resumes.

use async_trait::async_trait;

use crate::domain::action_items::ActionItem;
use crate::domain::conversations::{Event, Geolocation, NewSegment};
use crate::domain::export::ExportedConversation;
use crate::domain::folders::SystemFolderSpec;
use crate::domain::goals::{Goal, GoalProgress};
use crate::domain::memories::Memory;
use crate::domain::time::Timestamp;
use crate::store::StoreResult;

/// Which source object a record is, and the fingerprint of the version read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportKey {
    /// The source's base URL, as given.
    pub source: String,
    pub source_id: String,
    /// A digest of the object as the source served it: equal digests mean nothing changed.
    pub fingerprint: String,
}

/// A folder of the source. A system folder maps onto this server's folder of the same name.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedFolder {
    pub name: String,
    pub description: Option<String>,
    pub color: String,
    pub icon: String,
    pub order: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub system: Option<SystemFolderSpec>,
}

/// The folder a conversation was in at the source.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderRef {
    pub source_id: String,
    /// Set when the source's folder is one of the system folders (matched by name).
    pub system: Option<SystemFolderSpec>,
}

/// A conversation as the source holds it. `id` is the source's id, kept unless another user of
/// this server already has a conversation with that id.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedConversation {
    pub id: String,
    pub created_at: Timestamp,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub updated_at: Timestamp,
    pub title: String,
    pub overview: String,
    pub emoji: String,
    pub category: String,
    pub events: Vec<Event>,
    pub language: String,
    pub source: String,
    pub discarded: bool,
    /// Which backend summarised it at the source (`imported` when the source does not say).
    pub processed_by: String,
    pub folder: Option<FolderRef>,
    pub geolocation: Option<Geolocation>,
    pub segments: Vec<NewSegment>,
}

impl ImportedConversation {
    /// The row to store for it under the local `id`, in the local folder: a conversation from
    /// another server is not starred and has no input text to process again.
    pub fn stored_as(&self, id: String, folder_id: Option<String>) -> ExportedConversation {
        ExportedConversation {
            id,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            updated_at: self.updated_at,
            title: self.title.clone(),
            overview: self.overview.clone(),
            emoji: self.emoji.clone(),
            category: self.category.clone(),
            events: self.events.clone(),
            language: self.language.clone(),
            source: self.source.clone(),
            discarded: self.discarded,
            starred: false,
            processed_by: self.processed_by.clone(),
            folder_id,
            geolocation: self.geolocation.clone(),
            text: None,
            text_source: None,
            text_source_spec: None,
            processing_parts: None,
            transcript_segments: self.segments.clone(),
        }
    }
}

/// One object to import.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportRecord {
    Folder(ImportedFolder),
    Conversation(Box<ImportedConversation>),
    /// `id` is the source's (kept when free); `conversation_id` names the source's conversation
    /// and is mapped onto the imported one.
    ActionItem(ActionItem),
    /// `id` follows this server's rule (derived from the content).
    Memory(Memory),
    /// `id` is the source's (kept when free for the user); the daily values come with it.
    Goal(Goal, Vec<GoalProgress>),
}

impl ImportRecord {
    /// The name the mapping is kept under.
    pub fn kind(&self) -> &'static str {
        match self {
            ImportRecord::Folder(_) => "folder",
            ImportRecord::Conversation(_) => "conversation",
            ImportRecord::ActionItem(_) => "action_item",
            ImportRecord::Memory(_) => "memory",
            ImportRecord::Goal(..) => "goal",
        }
    }
}

/// What importing one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Created,
    /// The source's version changed since the last import (or the object already existed
    /// here): the local object now holds the source's version.
    Updated,
    Unchanged,
}

/// The result of importing one object: what happened and the local id it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub outcome: ImportOutcome,
    pub local_id: String,
}

/// Where a resource's import goes on after a page: saved with the page's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCheckpoint {
    pub source: String,
    pub resource: String,
    pub next_offset: i64,
}

#[async_trait]
pub trait ImportStore: Send + Sync {
    /// A page of objects and the resource's checkpoint in one transaction (one commit for the
    /// page, not one per object). Each object is written as [`Self::import_record`] writes it,
    /// behind its own savepoint, so one that fails (its error in its place in the answer) leaves
    /// nothing of itself and the others are kept. An error of the whole call (the database went
    /// away) writes nothing.
    async fn import_page(
        &self,
        user_id: &str,
        records: Vec<(ImportKey, ImportRecord)>,
        checkpoint: Option<PageCheckpoint>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Imported>>>;

    /// Writes the object and its mapping in one transaction: unchanged when the mapping holds
    /// the same fingerprint and the local object still exists; otherwise the local object is
    /// replaced (or created) with the source's version.
    async fn import_record(
        &self,
        user_id: &str,
        key: ImportKey,
        record: ImportRecord,
        now: Timestamp,
    ) -> StoreResult<Imported>;

    /// Whether the object would be unchanged by importing this version (for `--dry-run`):
    /// `None` when it was never imported, else whether the fingerprint matches.
    async fn import_status(
        &self,
        user_id: &str,
        kind: &str,
        key: &ImportKey,
    ) -> StoreResult<Option<bool>>;

    /// The offset a resource's import stopped at, if it did not finish.
    async fn import_checkpoint(
        &self,
        user_id: &str,
        source: &str,
        resource: &str,
    ) -> StoreResult<Option<i64>>;

    /// Records the next offset to read (`Some`), or that the resource finished (`None`).
    async fn save_import_checkpoint(
        &self,
        user_id: &str,
        source: &str,
        resource: &str,
        next_offset: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<()>;
}
