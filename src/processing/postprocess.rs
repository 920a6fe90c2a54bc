//! Post-processing shared by every backend: bounds, de-duplication against the user's existing
//! items and within the conversation, caps, and the minimal structure used when processing
//! fails.

use std::collections::HashSet;

use super::category::ConversationCategory;
use super::dates::mentions_relative_time;
use super::events::{DEFAULT_DURATION_MINUTES, MAX_DURATION_MINUTES};
use super::speakers::Conversation;
use super::structure::{fallback_title, title_from_sentence};
use super::text::{content_words, cut_at_word_boundary, truncate_words};
use super::{
    ConversationInput, ExtractedActionItem, ExtractedEvent, ExtractedMemory, ProcessedConversation,
    ProcessingContext, Provenance,
};

pub const MAX_ACTION_ITEMS: usize = 5;
pub const MAX_MEMORIES: usize = 2;
pub const MAX_ACTION_ITEM_WORDS: usize = 15;
pub const MAX_MEMORY_WORDS: usize = 15;
pub const MAX_TITLE_WORDS: usize = 10;
/// Two actions sharing this share of their content words are about the same topic.
const SAME_TOPIC_OVERLAP: f64 = 0.6;
const MINIMAL_OVERVIEW_CHARS: usize = 300;
const UNTITLED: &str = "Untitled Conversation";

/// The normalisation used for both dedup sets; one implementation serves the API and the
/// processor.
pub use crate::domain::text::normalize_for_dedup;

/// Applies the shared rules to any backend's output. See the module docs and PROCESSING.md.
pub fn finalize(
    p: ProcessedConversation,
    ctx: &ProcessingContext,
    existing_open_action_items: &HashSet<String>,
    existing_memories: &HashSet<String>,
) -> ProcessedConversation {
    if p.discarded {
        return ProcessedConversation {
            provenance: p.provenance,
            ..ProcessedConversation::discarded()
        };
    }
    let mut title = truncate_words(p.title.trim(), MAX_TITLE_WORDS);
    if title.is_empty() {
        title = fallback_title(&p.overview);
    }
    if title.is_empty() {
        title = UNTITLED.to_string();
    }
    ProcessedConversation {
        discarded: false,
        title,
        overview: p.overview.trim().to_string(),
        emoji: p.emoji,
        category: p.category,
        action_items: finalize_action_items(p.action_items, ctx, existing_open_action_items),
        events: finalize_events(p.events, ctx),
        memories: finalize_memories(p.memories, existing_memories),
        provenance: p.provenance,
    }
}

fn finalize_action_items(
    items: Vec<ExtractedActionItem>,
    ctx: &ProcessingContext,
    existing: &HashSet<String>,
) -> Vec<ExtractedActionItem> {
    let mut kept: Vec<ExtractedActionItem> = Vec::new();
    let mut topics: Vec<(String, HashSet<String>)> = Vec::new();
    for item in items {
        let description = truncate_words(item.description.trim(), MAX_ACTION_ITEM_WORDS);
        let normalized = normalize_for_dedup(&description);
        if normalized.is_empty() || existing.contains(&normalized) {
            continue;
        }
        let due_at = item.due_at.filter(|due| *due >= ctx.now);
        let words: HashSet<String> = content_words(&description).into_iter().collect();
        if let Some(index) = topics
            .iter()
            .position(|(n, w)| *n == normalized || same_topic(w, &words))
        {
            // Same topic said twice: keep the first wording, but not at the cost of a due date.
            if kept[index].due_at.is_none() {
                kept[index].due_at = due_at;
            }
            continue;
        }
        topics.push((normalized, words));
        kept.push(ExtractedActionItem {
            description,
            due_at,
        });
    }
    kept.truncate(MAX_ACTION_ITEMS);
    kept
}

fn same_topic(a: &HashSet<String>, b: &HashSet<String>) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let shared = a.intersection(b).count() as f64;
    shared / a.len().min(b.len()) as f64 >= SAME_TOPIC_OVERLAP
}

fn finalize_events(events: Vec<ExtractedEvent>, ctx: &ProcessingContext) -> Vec<ExtractedEvent> {
    let mut seen = HashSet::new();
    events
        .into_iter()
        .filter(|e| e.start >= ctx.now)
        .filter_map(|e| {
            let title = truncate_words(e.title.trim(), MAX_TITLE_WORDS);
            if title.is_empty() || !seen.insert((normalize_for_dedup(&title), e.start)) {
                return None;
            }
            let duration_minutes = match e.duration_minutes {
                0 => DEFAULT_DURATION_MINUTES,
                minutes => minutes.min(MAX_DURATION_MINUTES),
            };
            Some(ExtractedEvent {
                title,
                description: e.description.trim().to_string(),
                start: e.start,
                duration_minutes,
            })
        })
        .collect()
}

fn finalize_memories(
    memories: Vec<ExtractedMemory>,
    existing: &HashSet<String>,
) -> Vec<ExtractedMemory> {
    let mut seen = HashSet::new();
    memories
        .into_iter()
        .filter_map(|m| {
            let content = truncate_words(m.content.trim(), MAX_MEMORY_WORDS);
            let normalized = normalize_for_dedup(&content);
            // A memory is timeless: "tomorrow" in it would be wrong the day after.
            if normalized.is_empty()
                || mentions_relative_time(&content.to_lowercase())
                || existing.contains(&normalized)
                || !seen.insert(normalized)
            {
                return None;
            }
            Some(ExtractedMemory {
                content,
                kind: m.kind,
            })
        })
        .take(MAX_MEMORIES)
        .collect()
}

/// The structure stored when processing fails: kept, titled from the first sentence, the start
/// of the cleaned text as overview, category `other`, nothing extracted.
pub fn minimal_structure(input: &ConversationInput) -> ProcessedConversation {
    let conversation = Conversation::from_input(input);
    let first_sentence = conversation
        .utterances
        .first()
        .map_or("", |u| u.text.as_str());
    let mut title = fallback_title(first_sentence);
    if title.is_empty() {
        title = title_from_sentence(&conversation.full_text);
    }
    if title.is_empty() {
        title = UNTITLED.to_string();
    }
    ProcessedConversation {
        discarded: false,
        title,
        overview: cut_at_word_boundary(&conversation.full_text, MINIMAL_OVERVIEW_CHARS),
        emoji: ConversationCategory::Other.emoji().to_string(),
        category: ConversationCategory::Other,
        action_items: Vec::new(),
        events: Vec::new(),
        memories: Vec::new(),
        provenance: Provenance::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processing::{MemoryKind, TextSource};
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 10, 15, 0, 0).unwrap()
    }

    fn ctx() -> ProcessingContext {
        ProcessingContext { now: now() }
    }

    fn item(description: &str, due_at: Option<DateTime<Utc>>) -> ExtractedActionItem {
        ExtractedActionItem {
            description: description.to_string(),
            due_at,
        }
    }

    fn memory(content: &str) -> ExtractedMemory {
        ExtractedMemory {
            content: content.to_string(),
            kind: MemoryKind::System,
        }
    }

    fn processed() -> ProcessedConversation {
        ProcessedConversation {
            discarded: false,
            title: "A Title".into(),
            overview: "An overview.".into(),
            emoji: "💬".into(),
            category: ConversationCategory::Work,
            action_items: Vec::new(),
            events: Vec::new(),
            memories: Vec::new(),
            provenance: Provenance::default(),
        }
    }

    #[test]
    fn normalisation_lowercases_strips_punctuation_and_folds_spaces() {
        assert_eq!(
            normalize_for_dedup("  Don't   call Mom!! "),
            "dont call mom"
        );
        assert_eq!(
            normalize_for_dedup("Send the Q2-report."),
            "send the q2 report"
        );
    }

    #[test]
    fn due_dates_in_the_past_are_dropped_but_the_item_stays() {
        let mut p = processed();
        p.action_items = vec![item("Pay rent", Some(now() - Duration::hours(1)))];
        let out = finalize(p, &ctx(), &HashSet::new(), &HashSet::new());
        assert_eq!(out.action_items, vec![item("Pay rent", None)]);
    }

    #[test]
    fn items_already_open_for_the_user_are_skipped_and_the_rest_capped_at_five() {
        let mut p = processed();
        let tasks = [
            "Buy milk",
            "Call mom",
            "Pay rent",
            "Book flights",
            "Email Sam",
            "Water plants",
            "Fix bike",
            "Renew passport",
        ];
        p.action_items = tasks.iter().map(|t| item(t, None)).collect();
        let existing: HashSet<String> = [normalize_for_dedup("buy milk!")].into();
        let out = finalize(p, &ctx(), &existing, &HashSet::new());
        assert_eq!(out.action_items.len(), 5);
        assert_eq!(out.action_items[0].description, "Call mom");
    }

    #[test]
    fn two_items_on_one_topic_become_one_that_keeps_a_due_date() {
        let due = now() + Duration::days(1);
        let mut p = processed();
        p.action_items = vec![
            item("Call the dentist", None),
            item("Call the dentist about the crown", Some(due)),
        ];
        let out = finalize(p, &ctx(), &HashSet::new(), &HashSet::new());
        assert_eq!(out.action_items, vec![item("Call the dentist", Some(due))]);
    }

    #[test]
    fn memories_are_timeless_bounded_deduplicated_and_capped_at_two() {
        let mut p = processed();
        p.memories = vec![
            memory("Alex is allergic to peanuts"),
            memory("Alex is allergic to peanuts."),
            memory("Alex works at Acme"),
            memory("Alex flies to Rome tomorrow"),
            memory("Alex lives in Lisbon"),
            memory(&"word ".repeat(30)),
        ];
        let existing: HashSet<String> = [normalize_for_dedup("Alex works at Acme")].into();
        let out = finalize(p, &ctx(), &HashSet::new(), &existing);
        let contents: Vec<&str> = out.memories.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(
            contents,
            vec!["Alex is allergic to peanuts", "Alex lives in Lisbon"]
        );
    }

    #[test]
    fn long_titles_and_event_durations_are_bounded() {
        let mut p = processed();
        p.title = "one two three four five six seven eight nine ten eleven twelve".into();
        p.events = vec![ExtractedEvent {
            title: "Workshop".into(),
            description: String::new(),
            start: now() + Duration::days(1),
            duration_minutes: 600,
        }];
        let out = finalize(p, &ctx(), &HashSet::new(), &HashSet::new());
        assert_eq!(out.title.split_whitespace().count(), 10);
        assert_eq!(out.events[0].duration_minutes, 180);
    }

    #[test]
    fn a_discarded_conversation_comes_out_empty() {
        let mut p = processed();
        p.discarded = true;
        p.action_items = vec![item("Pay rent", None)];
        let out = finalize(p, &ctx(), &HashSet::new(), &HashSet::new());
        assert!(out.title.is_empty() && out.overview.is_empty() && out.action_items.is_empty());
        assert_eq!(out.category, ConversationCategory::Other);
    }

    #[test]
    fn the_minimal_structure_titles_from_the_first_sentence_and_extracts_nothing() {
        let input = ConversationInput::from_text(
            "Speaker 0: we should probably look at the garden fence before the winter storms arrive. It is leaning.",
            TextSource::AudioTranscript,
            now(),
            "Alex",
        );
        let out = minimal_structure(&input);
        assert!(!out.discarded);
        assert_eq!(
            out.title,
            "We Should Probably Look at the Garden Fence Before"
        );
        assert!(out.overview.starts_with("we should probably"));
        assert_eq!(out.category, ConversationCategory::Other);
        assert!(out.action_items.is_empty() && out.memories.is_empty());
    }
}
