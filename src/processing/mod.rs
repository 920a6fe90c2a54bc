//! Conversation processing: turns raw text or transcript segments into a discard decision, a
//! structured summary (title, overview, category, emoji), action items with due dates, calendar
//! events and memories about the user.
//!
//! The types here are the contract between the server and any processing backend. The offline
//! backend ([`OfflineProcessor`]) is deterministic and rule based; every backend's output goes
//! through [`finalize`] so that all of them obey the same bounds, caps and de-duplication.

mod action_items;
mod category;
mod clauses;
mod dates;
mod discard;
mod events;
pub mod insights;
pub mod llm;
mod memories;
mod offline;
mod postprocess;
mod speakers;
mod structure;
mod text;
mod workers;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::conversations::Conversation;
use crate::domain::daily_summaries::DailySummary;
use crate::domain::memories::Memory;

pub use category::{ConversationCategory, SystemFolder, system_folder_for};
pub use dates::resolve_due;
pub use memories::{categorize_memory_content, default_memory_category};
pub use offline::OfflineProcessor;
pub use postprocess::{finalize, minimal_structure, normalize_for_dedup};
pub use workers::after_first_conversation;

/// One transcript segment as received from the client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub text: String,
    /// A label such as `SPEAKER_01`, or a person's name.
    pub speaker: String,
    pub speaker_id: i64,
    pub is_user: bool,
    pub start: f64,
    pub end: f64,
}

/// Where a plain-text conversation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextSource {
    AudioTranscript,
    Message,
    OtherText,
}

impl TextSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            TextSource::AudioTranscript => "audio_transcript",
            TextSource::Message => "message",
            TextSource::OtherText => "other_text",
        }
    }

    pub fn parse(value: &str) -> Option<TextSource> {
        match value {
            "audio_transcript" => Some(TextSource::AudioTranscript),
            "message" => Some(TextSource::Message),
            "other_text" => Some(TextSource::OtherText),
            _ => None,
        }
    }
}

/// How the conversation was created, which changes who counts as the user and whether it may be
/// discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InputKind {
    Text { text_source: TextSource },
    Segments,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationInput {
    pub kind: InputKind,
    /// For the text form: exactly one segment holding the whole text, with `is_user` set.
    pub segments: Vec<Segment>,
    pub started_at: DateTime<Utc>,
    pub language: String,
    /// Used to write memories in the third person ("Alex is allergic to peanuts").
    pub user_display_name: String,
}

impl ConversationInput {
    /// A plain-text conversation written by the user.
    pub fn from_text(
        text: impl Into<String>,
        text_source: TextSource,
        started_at: DateTime<Utc>,
        user_display_name: impl Into<String>,
    ) -> ConversationInput {
        ConversationInput {
            kind: InputKind::Text { text_source },
            segments: vec![Segment {
                text: text.into(),
                speaker: "SPEAKER_00".to_string(),
                speaker_id: 0,
                is_user: true,
                start: 0.0,
                end: 0.0,
            }],
            started_at,
            language: "en".to_string(),
            user_display_name: user_display_name.into(),
        }
    }
}

/// Everything the processor may know about the moment of processing; the processor never reads
/// the clock itself so that results are reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingContext {
    pub now: DateTime<Utc>,
}

impl ProcessingContext {
    /// The reference time for relative dates: when the conversation started, unless that is more
    /// than a week ago (a late upload), in which case "tomorrow" is read from now.
    pub fn reference_time(&self, started_at: DateTime<Utc>) -> DateTime<Utc> {
        if started_at < self.now - Duration::days(7) {
            self.now
        } else {
            started_at
        }
    }
}

/// Category of a memory: a fact about the user, or an insight attributed to someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    System,
    Interesting,
}

impl MemoryKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            MemoryKind::System => "system",
            MemoryKind::Interesting => "interesting",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractedActionItem {
    pub description: String,
    pub due_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractedEvent {
    pub title: String,
    pub description: String,
    pub start: DateTime<Utc>,
    pub duration_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractedMemory {
    pub content: String,
    pub kind: MemoryKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessedConversation {
    pub discarded: bool,
    pub title: String,
    pub overview: String,
    pub emoji: String,
    pub category: ConversationCategory,
    /// Candidates in priority order; [`finalize`] de-duplicates and caps them.
    pub action_items: Vec<ExtractedActionItem>,
    pub events: Vec<ExtractedEvent>,
    /// Candidates in priority order; [`finalize`] de-duplicates and caps them.
    pub memories: Vec<ExtractedMemory>,
    /// Which backend made each part.
    pub provenance: Provenance,
}

/// Who made one part of a processed conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The offline rules: the offline backend, or the fallback of a model step that failed.
    #[default]
    Offline,
    /// The model answered this step.
    Llm,
    /// The offline rules decide this in every backend, so no model was asked (a discard rule
    /// that is sure, PROCESSING.md §1 rules 1-6).
    Rules,
}

/// Which backend made each part of a result; the default is all offline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// Title, overview, emoji, category and events.
    pub structure: Source,
    pub action_items: Source,
    pub memories: Source,
    pub discard: Source,
}

impl Provenance {
    /// Every part from the model.
    pub const LLM: Provenance = Provenance {
        structure: Source::Llm,
        action_items: Source::Llm,
        memories: Source::Llm,
        discard: Source::Llm,
    };

    /// The `processed_by` value (API.md §5): `llm` when the model made every part it was asked
    /// for, `llm+offline` when some fell back, `offline` when none came from the model.
    pub fn processed_by(&self) -> &'static str {
        let parts = [
            self.structure,
            self.action_items,
            self.memories,
            self.discard,
        ];
        if !parts.contains(&Source::Llm) {
            "offline"
        } else if parts.contains(&Source::Offline) {
            "llm+offline"
        } else {
            "llm"
        }
    }
}

impl ProcessedConversation {
    /// The stored shape of a discarded conversation: nothing about it survives but the decision.
    pub fn discarded() -> ProcessedConversation {
        ProcessedConversation {
            discarded: true,
            title: String::new(),
            overview: String::new(),
            emoji: ConversationCategory::Other.emoji().to_string(),
            category: ConversationCategory::Other,
            action_items: Vec::new(),
            events: Vec::new(),
            memories: Vec::new(),
            provenance: Provenance::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessingError {
    /// The backend could not produce a result; the conversation is stored with the minimal
    /// structure instead.
    #[error("processing backend unavailable: {0}")]
    Unavailable(String),
}

/// A processing backend. Implementations must be deterministic given the input and context,
/// and must not hold an async worker for CPU-heavy work (run it on the blocking pool).
#[async_trait::async_trait]
pub trait Processor: Send + Sync {
    /// The backend's name as recorded in `processed_by`.
    fn name(&self) -> &'static str;

    async fn process(
        &self,
        input: &ConversationInput,
        ctx: &ProcessingContext,
    ) -> Result<ProcessedConversation, ProcessingError>;

    /// Rewrites the written parts of a day's offline summary (headline, overview, highlights,
    /// questions, decisions, knowledge nuggets) from the day's conversations. The offline
    /// backend keeps the summary as it is; a backend that fails keeps it too.
    async fn write_day(
        &self,
        summary: DailySummary,
        _conversations: &[Conversation],
    ) -> DailySummary {
        summary
    }

    /// A profile of the user from their top memories, given the extractive one, which the
    /// offline backend (and a backend that fails) returns.
    async fn write_profile(
        &self,
        _display_name: &str,
        _memories: &[Memory],
        extractive: String,
    ) -> String {
        extractive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processed_by_names_the_backends_that_made_the_parts() {
        assert_eq!(Provenance::default().processed_by(), "offline");
        assert_eq!(Provenance::LLM.processed_by(), "llm");
        let rules_discard = Provenance {
            discard: Source::Rules,
            ..Provenance::LLM
        };
        assert_eq!(rules_discard.processed_by(), "llm");
        let fell_back = Provenance {
            memories: Source::Offline,
            ..rules_discard
        };
        assert_eq!(fell_back.processed_by(), "llm+offline");
        let none_answered = Provenance {
            discard: Source::Rules,
            ..Provenance::default()
        };
        assert_eq!(none_answered.processed_by(), "offline");
    }
}
