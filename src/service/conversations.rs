//! Creating a conversation and processing one again: runs the processor (whatever backend the
//! state holds, protected against errors and panics), de-duplicates its findings against what
//! the user already has, and turns the result into what the store keeps in one transaction.
//! Creation with a `client_session_id` is idempotent through a claim held in the database
//! (API.md §11.8).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Duration;

use crate::domain::action_items::ActionItem;
use crate::domain::conversations::{Event, Geolocation};
use crate::domain::folders::SystemFolderSpec;
use crate::domain::ids::new_id;
use crate::domain::memories::{Memory, MemoryCategory, Visibility, memory_id_for, scoring};
use crate::domain::text::normalize_for_dedup;
use crate::domain::time::{self, Timestamp, truncate_to_micros};
use crate::processing::{
    ConversationInput, InputKind, MemoryKind, ProcessedConversation, ProcessingContext, Processor,
    Segment, TextSource, finalize, minimal_structure, system_folder_for,
};
use crate::store::conversations::{
    Claim, ConversationBody, NewConversation, ProcessedRecord, StoredInput, StructuredRecord,
};
use crate::store::{Store, StoreError};

/// A claim that has not produced a conversation after this long is abandoned (API.md §11.8).
pub const CLAIM_TIMEOUT_SECONDS: i64 = 120;
/// An extracted action item equal to an open one created this recently is dropped.
pub const OPEN_ITEM_WINDOW_DAYS: i64 = 7;
/// The processor bounds descriptions and memories to this many words; the lookup of existing
/// texts also tries candidates cut there, so that it finds what `finalize` will compare.
const MAX_EXTRACTED_WORDS: usize = 15;

/// Why a creation or a reprocessing failed.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// Another request with the same `client_session_id` is still running (API.md §11.8).
    #[error("a creation with this client_session_id is still in progress")]
    InProgress,
    /// Missing, or owned by another user: never reveal which.
    #[error("conversation not found")]
    NotFound,
    #[error("the creation task failed: {0}")]
    TaskFailed(String),
    #[error("the database failed: {0}")]
    Store(#[from] StoreError),
}

pub type ConversationResult<T> = Result<T, ConversationError>;

/// A validated creation request.
#[derive(Debug, Clone)]
pub struct Draft {
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub language: String,
    pub source: String,
    pub geolocation: Option<Geolocation>,
    pub body: ConversationBody,
    pub client_session_id: Option<String>,
}

/// The answer to a creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub discarded: bool,
}

/// Creates a conversation. The work runs in its own task so that it finishes even when the
/// client disconnects: a retry with the same `client_session_id` then finds the result.
pub async fn create(
    store: Arc<dyn Store>,
    processor: Arc<dyn Processor>,
    user_id: &str,
    draft: Draft,
) -> ConversationResult<Created> {
    let user_id = user_id.to_string();
    tokio::spawn(async move { create_claimed(&*store, &processor, &user_id, draft).await })
        .await
        .map_err(|error| ConversationError::TaskFailed(error.to_string()))?
}

async fn create_claimed(
    store: &dyn Store,
    processor: &Arc<dyn Processor>,
    user_id: &str,
    draft: Draft,
) -> ConversationResult<Created> {
    let now = time::now();
    let id = new_id();
    let Some(client_session_id) = draft.client_session_id.clone() else {
        return process_and_store(store, processor, user_id, id, draft, now).await;
    };
    let abandoned_before = now - Duration::seconds(CLAIM_TIMEOUT_SECONDS);
    match store
        .claim_conversation(user_id, &client_session_id, &id, now, abandoned_before)
        .await?
    {
        Claim::Claimed => {}
        other => return answer_for(other),
    }
    let result = process_and_store(store, processor, user_id, id.clone(), draft, now).await;
    if result.is_err() {
        // Let a retry run at once instead of waiting for the claim to expire.
        if let Err(error) = store.release_claim(user_id, &client_session_id, &id).await {
            tracing::warn!(error = %error, "could not release a conversation claim");
        }
    }
    result
}

fn answer_for(claim: Claim) -> ConversationResult<Created> {
    match claim {
        Claim::Completed {
            conversation_id,
            discarded,
        } => Ok(Created {
            id: conversation_id,
            discarded,
        }),
        Claim::InProgress | Claim::Claimed => Err(ConversationError::InProgress),
    }
}

async fn process_and_store(
    store: &dyn Store,
    processor: &Arc<dyn Processor>,
    user_id: &str,
    id: String,
    draft: Draft,
    now: Timestamp,
) -> ConversationResult<Created> {
    let display_name = store
        .find_user(user_id)
        .await?
        .map(|user| user.display_name)
        .unwrap_or_default();
    let input = processing_input(&StoredInput {
        started_at: draft.started_at,
        language: draft.language.clone(),
        user_display_name: display_name,
        body: draft.body.clone(),
    });
    let processed = process(store, processor, user_id, &id, &input, now, false).await?;
    let discarded = processed.structured.discarded;
    let conversation = NewConversation {
        id: id.clone(),
        started_at: draft.started_at,
        finished_at: draft.finished_at,
        processed_at: now,
        language: draft.language,
        source: draft.source,
        geolocation: draft.geolocation,
        body: draft.body,
        processed,
        client_session_id: draft.client_session_id,
    };
    match store.create_conversation(user_id, conversation).await? {
        Claim::Claimed => Ok(Created { id, discarded }),
        // Our claim expired and another request took it over: answer as a repeat would.
        other => answer_for(other),
    }
}

/// Processes a stored conversation again for `PATCH {"discarded": false}` (API.md §11.10). The
/// user asked to keep it, so a discard decision gives way to the minimal structure.
pub async fn reprocess(
    store: &dyn Store,
    processor: &Arc<dyn Processor>,
    user_id: &str,
    conversation_id: &str,
) -> ConversationResult<ProcessedRecord> {
    let stored = store
        .conversation_input(user_id, conversation_id)
        .await?
        .ok_or(ConversationError::NotFound)?;
    let input = processing_input(&stored);
    Ok(process(
        store,
        processor,
        user_id,
        conversation_id,
        &input,
        time::now(),
        true,
    )
    .await?)
}

/// The memories this server's processor finds in a stored conversation that it did not make
/// (one delivered by the Omi app, which carries none), de-duplicated against the user's own.
/// Its title, summary and items are left as they are.
pub async fn extract_memories(
    store: &dyn Store,
    processor: &Arc<dyn Processor>,
    user_id: &str,
    conversation_id: &str,
) -> ConversationResult<Vec<Memory>> {
    let stored = store
        .conversation_input(user_id, conversation_id)
        .await?
        .ok_or(ConversationError::NotFound)?;
    let input = processing_input(&stored);
    let processed = process(
        store,
        processor,
        user_id,
        conversation_id,
        &input,
        time::now(),
        false,
    )
    .await?;
    Ok(processed.memories)
}

/// What the processor sees: the text form is one segment spoken by the user.
fn processing_input(stored: &StoredInput) -> ConversationInput {
    let (kind, segments) = match &stored.body {
        ConversationBody::Text {
            text, text_source, ..
        } => (
            InputKind::Text {
                text_source: TextSource::parse(text_source).unwrap_or(TextSource::OtherText),
            },
            vec![Segment {
                text: text.clone(),
                speaker: crate::domain::conversations::DEFAULT_SPEAKER.to_string(),
                speaker_id: 0,
                is_user: true,
                start: 0.0,
                end: 0.0,
            }],
        ),
        ConversationBody::Segments(segments) => (
            InputKind::Segments,
            segments
                .iter()
                .map(|s| Segment {
                    text: s.text.clone(),
                    speaker: s.speaker.clone(),
                    speaker_id: s.speaker_id,
                    is_user: s.is_user,
                    start: s.start,
                    end: s.end,
                })
                .collect(),
        ),
    };
    ConversationInput {
        kind,
        segments,
        started_at: stored.started_at,
        language: stored.language.clone(),
        user_display_name: stored.user_display_name.clone(),
    }
}

async fn process(
    store: &dyn Store,
    processor: &Arc<dyn Processor>,
    user_id: &str,
    conversation_id: &str,
    input: &ConversationInput,
    now: Timestamp,
    keep: bool,
) -> Result<ProcessedRecord, StoreError> {
    let ctx = ProcessingContext { now };
    let mut processed = run_processor(processor, input, &ctx).await;
    if keep && processed.discarded {
        processed = minimal_structure(input);
    }
    let existing = store
        .existing_texts(
            user_id,
            &lookup_keys(
                processed
                    .action_items
                    .iter()
                    .map(|a| a.description.as_str()),
            ),
            now - Duration::days(OPEN_ITEM_WINDOW_DAYS),
            &lookup_keys(processed.memories.iter().map(|m| m.content.as_str())),
        )
        .await?;
    let finalized = finalize(
        processed,
        &ctx,
        &existing.open_action_items,
        &existing.memories,
    );
    Ok(record(finalized, conversation_id, now))
}

/// Runs the backend in its own task, so that a panic in it is caught; the backend keeps its CPU
/// work on the blocking pool and its network waits on async workers. An error or a panic gives
/// the minimal structure, never a failed request.
async fn run_processor(
    processor: &Arc<dyn Processor>,
    input: &ConversationInput,
    ctx: &ProcessingContext,
) -> ProcessedConversation {
    let (backend, owned_input, ctx) = (processor.clone(), input.clone(), *ctx);
    let outcome = tokio::spawn(async move { backend.process(&owned_input, &ctx).await }).await;
    match outcome {
        Ok(Ok(processed)) => processed,
        Ok(Err(error)) => {
            tracing::warn!(backend = processor.name(), error = %error, "processing failed; storing the minimal structure");
            minimal_structure(input)
        }
        Err(_) => {
            tracing::error!(
                backend = processor.name(),
                "processing panicked; storing the minimal structure"
            );
            minimal_structure(input)
        }
    }
}

/// Normalised forms to look up: each candidate whole and cut to the word bound.
fn lookup_keys<'a>(candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for candidate in candidates {
        keys.insert(normalize_for_dedup(candidate));
        let cut: Vec<&str> = candidate
            .split_whitespace()
            .take(MAX_EXTRACTED_WORDS)
            .collect();
        keys.insert(normalize_for_dedup(&cut.join(" ")));
    }
    keys.remove("");
    keys.into_iter().collect()
}

/// The stored form of a finalised result: items created now and linked to the conversation,
/// and the system folder its category belongs in.
fn record(p: ProcessedConversation, conversation_id: &str, now: Timestamp) -> ProcessedRecord {
    let folder = (!p.discarded).then(|| SystemFolderSpec::of(system_folder_for(p.category)));
    let action_items = p
        .action_items
        .into_iter()
        .map(|item| ActionItem {
            id: new_id(),
            description: item.description,
            completed: false,
            created_at: now,
            updated_at: now,
            due_at: item.due_at.map(truncate_to_micros),
            completed_at: None,
            conversation_id: Some(conversation_id.to_string()),
        })
        .collect();
    let memories = p
        .memories
        .into_iter()
        .map(|memory| {
            let category = match memory.kind {
                MemoryKind::System => MemoryCategory::System,
                MemoryKind::Interesting => MemoryCategory::Interesting,
            };
            let content = memory.content.trim().to_string();
            Memory {
                id: memory_id_for(&content),
                content,
                category,
                visibility: Visibility::Private,
                tags: Vec::new(),
                created_at: now,
                updated_at: now,
                manually_added: false,
                scoring: scoring(false, category, now),
                reviewed: false,
                user_review: None,
                edited: false,
                conversation_id: Some(conversation_id.to_string()),
            }
        })
        .collect();
    let events = p
        .events
        .into_iter()
        .map(|event| Event {
            title: event.title,
            description: event.description,
            start: truncate_to_micros(event.start),
            duration: event.duration_minutes,
            created: false,
        })
        .collect();
    ProcessedRecord {
        structured: StructuredRecord {
            title: p.title,
            overview: p.overview,
            emoji: p.emoji,
            category: p.category.as_str().to_string(),
            events,
            discarded: p.discarded,
            processed_by: p.provenance.processed_by().to_string(),
            processing_parts: p.provenance,
        },
        action_items,
        memories,
        folder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_keys_cover_the_whole_and_the_cut_candidate() {
        let long = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen";
        let keys = lookup_keys(["Buy milk!", long, "   "].into_iter());
        assert!(keys.contains(&"buy milk".to_string()));
        assert!(keys.contains(&normalize_for_dedup(long)));
        assert!(keys.iter().any(|k| k.ends_with("fifteen")));
        assert!(!keys.contains(&String::new()));
    }

    #[test]
    fn a_discarded_result_keeps_nothing_and_has_no_folder() {
        let now = time::now();
        let stored = record(ProcessedConversation::discarded(), "c1", now);
        assert!(stored.folder.is_none());
        assert!(stored.action_items.is_empty() && stored.memories.is_empty());
        assert_eq!(stored.structured.category, "other");
        assert!(stored.structured.title.is_empty());
        assert_eq!(stored.structured.processed_by, "offline");
    }
}
