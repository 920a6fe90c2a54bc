//! What the server needs from a database for conversations and folders.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::domain::action_items::ActionItem;
use crate::domain::conversations::{Conversation, Event, Geolocation, NewSegment};
use crate::domain::folders::{Folder, SystemFolderSpec};
use crate::domain::memories::Memory;
use crate::domain::paging::Page;
use crate::domain::time::Timestamp;
use crate::processing::Provenance;
use crate::store::StoreResult;

/// The state of a `client_session_id` after trying to claim it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the creation and must store `conversation_id` (or release the claim).
    Claimed,
    /// An earlier request finished: its answer.
    Completed {
        conversation_id: String,
        discarded: bool,
    },
    /// An earlier request is still running and its claim is fresh.
    InProgress,
}

/// A stored claim of a client session id, with the current `discarded` of its conversation
/// (falling back to the recorded one when the conversation was deleted since). Both backends
/// read it and decide with it alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRow {
    pub conversation_id: String,
    pub claimed_at: Timestamp,
    pub completed: bool,
    pub discarded: bool,
}

impl ClaimRow {
    /// Whether the claim still stands: its creation finished, or it was made after
    /// `abandoned_before` (API.md §11.8). A claim that does not stand may be taken over.
    pub fn stands(&self, abandoned_before: Timestamp) -> bool {
        self.completed || self.claimed_at >= abandoned_before
    }

    /// The answer a repeat of the creation gets from a claim that stands.
    pub fn outcome(self) -> Claim {
        if self.completed {
            Claim::Completed {
                conversation_id: self.conversation_id,
                discarded: self.discarded,
            }
        } else {
            Claim::InProgress
        }
    }
}

/// The generated part of a conversation, as processing left it.
#[derive(Debug, Clone, PartialEq)]
pub struct StructuredRecord {
    pub title: String,
    pub overview: String,
    pub emoji: String,
    pub category: String,
    pub events: Vec<Event>,
    pub discarded: bool,
    pub processed_by: String,
    /// Which backend made each part; kept for operators, not shown in the API.
    pub processing_parts: Provenance,
}

/// What processing produced for a conversation: its structure, the items to store with it, and
/// the system folder it goes in (`None` for a discarded one).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedRecord {
    pub structured: StructuredRecord,
    pub action_items: Vec<ActionItem>,
    pub memories: Vec<Memory>,
    pub folder: Option<SystemFolderSpec>,
}

/// How the conversation was given: the text (kept so it can be processed again) or segments.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationBody {
    Text {
        text: String,
        text_source: String,
        text_source_spec: Option<String>,
    },
    Segments(Vec<NewSegment>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewConversation {
    pub id: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub processed_at: Timestamp,
    pub language: String,
    pub source: String,
    pub geolocation: Option<Geolocation>,
    pub body: ConversationBody,
    pub processed: ProcessedRecord,
    /// Set when the creation holds a claim; the claim is completed in the same transaction.
    pub client_session_id: Option<String>,
}

/// What a conversation needs to be processed again.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInput {
    pub started_at: Timestamp,
    pub language: String,
    pub user_display_name: String,
    pub body: ConversationBody,
}

/// The list filters (API.md §5); `created_before` is exclusive.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConversationFilter {
    pub created_from: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub categories: Vec<String>,
    pub folder_id: Option<String>,
    /// Only starred (`true`) or only not starred (`false`) conversations.
    pub starred: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderChange {
    Keep,
    Clear,
    File(SystemFolderSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConversationUpdate {
    pub title: Option<String>,
    pub discarded: Option<bool>,
    pub starred: Option<bool>,
    pub folder: FolderChange,
    /// A new structure and extracted items, when a restored conversation is processed again.
    pub reprocessed: Option<ProcessedRecord>,
    pub updated_at: Timestamp,
}

/// Normalised texts (`crate::domain::text::normalize_for_dedup`) that already exist for a user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExistingTexts {
    pub open_action_items: HashSet<String>,
    pub memories: HashSet<String>,
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Claims `client_session_id` for a creation that will store `conversation_id`, in its own
    /// committed transaction. A claim still incomplete at `abandoned_before` is taken over.
    async fn claim_conversation(
        &self,
        user_id: &str,
        client_session_id: &str,
        conversation_id: &str,
        now: Timestamp,
        abandoned_before: Timestamp,
    ) -> StoreResult<Claim>;

    /// Gives up a claim this request holds, so that a retry need not wait for it to expire.
    async fn release_claim(
        &self,
        user_id: &str,
        client_session_id: &str,
        conversation_id: &str,
    ) -> StoreResult<()>;

    /// Which of these normalised texts the user already has: open action items created at or
    /// after `open_since`, and memories.
    async fn existing_texts(
        &self,
        user_id: &str,
        action_item_keys: &[String],
        open_since: Timestamp,
        memory_keys: &[String],
    ) -> StoreResult<ExistingTexts>;

    /// Stores the conversation with its transcript, extracted items and folder in one
    /// transaction. With a claim: `Claim::Claimed` when stored; otherwise the claim was taken
    /// over by another request, nothing was stored, and the value says what the claim holds now.
    async fn create_conversation(
        &self,
        user_id: &str,
        conversation: NewConversation,
    ) -> StoreResult<Claim>;

    async fn get_conversation(
        &self,
        user_id: &str,
        conversation_id: &str,
        include_transcript: bool,
    ) -> StoreResult<Option<Conversation>>;

    /// Kept conversations, `created_at` desc then `id` desc.
    async fn list_conversations(
        &self,
        user_id: &str,
        filter: &ConversationFilter,
        page: Page,
        include_transcript: bool,
    ) -> StoreResult<Vec<Conversation>>;

    async fn conversation_input(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<StoredInput>>;

    /// `false` when the user has no such conversation.
    async fn update_conversation(
        &self,
        user_id: &str,
        conversation_id: &str,
        update: ConversationUpdate,
    ) -> StoreResult<bool>;

    /// Removes the conversation and its transcript; its action items and memories stay.
    async fn delete_conversation(&self, user_id: &str, conversation_id: &str) -> StoreResult<bool>;

    /// By `order`, with live counts of kept conversations.
    async fn list_folders(&self, user_id: &str) -> StoreResult<Vec<Folder>>;
}
