//! The model's part of a daily summary and of a profile: what it is asked, and how its answer is
//! read. The offline summary is always made first; the model only rewrites its written parts
//! (headline, overview, emoji, highlights, questions, decisions, knowledge nuggets), never the
//! counts, the action items or the locations, which stay exact. An answer that names a
//! conversation the day does not hold loses that reference: a summary never points at a source
//! that is not the user's.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::parse::{is_emoji_like, json_object};
use super::prompts::{nullable, strict_object};
use crate::domain::conversations::Conversation;
use crate::domain::daily_summaries::{
    DailySummary, Decision, Highlight, KnowledgeNugget, MAX_INSIGHTS, UnresolvedQuestion,
};
use crate::domain::memories::Memory;
use crate::processing::text::cut_at_word_boundary;

pub const DAY_SUMMARY: &str = "You write the end-of-day review of the owner of a wearable \
microphone (\"the user\"), from the list of the day's recorded conversations, each with its id, \
local time, title, overview and tasks.

Return JSON with:
- \"headline\": at most 8 words naming what the day was about. Never empty.
- \"overview\": two or three plain sentences about the day, in the order things happened. Use \
names the conversations give; do not invent anything.
- \"day_emoji\": one emoji fitting the day.
- \"highlights\": one to four themes of the day, each with \"topic\" (a few words), \"emoji\", \
\"summary\" (one sentence) and \"conversation_ids\" (the ids of the conversations it comes from, \
copied exactly from the list).
- \"unresolved_questions\", \"decisions_made\", \"knowledge_nuggets\": at most three each, only \
when a conversation clearly holds one: an open question (\"question\"), a decision taken \
(\"decision\"), a fact or insight worth keeping (\"insight\"), each with the \"conversation_id\" \
it comes from (copied exactly from the list) or null. Empty lists are the usual answer.

Write in the language of the conversations.";

pub const PROFILE: &str = "You write a short profile of a person (\"the user\") from facts \
their assistant has remembered about them. Three to five plain sentences in the third person, \
using the user's name when given: who they are, what they do, the people and places in their \
life, what they like and care about. Use only the facts given; never invent or guess.

Answer in JSON: {\"profile\": \"...\"}.";

/// The longest day sent, in characters, as for a transcript.
const MAX_DAY_CHARS: usize = 32_000;
/// The longest profile kept, in characters.
pub const MAX_PROFILE_CHARS: usize = 2_000;

pub fn day_summary_schema() -> Value {
    let highlight = strict_object(json!({
        "topic": {"type": "string"},
        "emoji": {"type": "string"},
        "summary": {"type": "string"},
        "conversation_ids": {"type": "array", "items": {"type": "string"}},
    }));
    let question = strict_object(json!({
        "question": {"type": "string"},
        "conversation_id": nullable("string"),
    }));
    let decision = strict_object(json!({
        "decision": {"type": "string"},
        "conversation_id": nullable("string"),
    }));
    let nugget = strict_object(json!({
        "insight": {"type": "string"},
        "conversation_id": nullable("string"),
    }));
    strict_object(json!({
        "headline": {"type": "string"},
        "overview": {"type": "string"},
        "day_emoji": {"type": "string"},
        "highlights": {"type": "array", "items": highlight},
        "unresolved_questions": {"type": "array", "items": question},
        "decisions_made": {"type": "array", "items": decision},
        "knowledge_nuggets": {"type": "array", "items": nugget},
    }))
}

pub fn profile_schema() -> Value {
    strict_object(json!({"profile": {"type": "string"}}))
}

/// The day as the model reads it: the offline summary's date and the kept conversations, one
/// block each, cut at [`MAX_DAY_CHARS`].
pub fn day_message(summary: &DailySummary, conversations: &[Conversation]) -> String {
    let mut message = format!("Day: {}\n\nConversations:\n", summary.date);
    for conversation in conversations.iter().filter(|c| !c.discarded) {
        let structured = &conversation.structured;
        let mut block = format!(
            "\n[id: {}] started {}\nTitle: {}\nOverview: {}\n",
            conversation.id,
            conversation.started_at.format("%H:%M UTC"),
            structured.title.trim(),
            structured.overview.trim(),
        );
        for item in &structured.action_items {
            block.push_str(&format!("Task: {}\n", item.description.trim()));
        }
        if message.len() + block.len() > MAX_DAY_CHARS {
            break;
        }
        message.push_str(&block);
    }
    message
}

/// The memories as the model reads them, one per line, with the user's name.
pub fn profile_message(display_name: &str, memories: &[Memory]) -> String {
    let mut message = match display_name.trim() {
        "" => "The user's name is not known.\n\nFacts:\n".to_string(),
        name => format!("The user's name: {name}\n\nFacts:\n"),
    };
    for memory in memories.iter().filter(|m| !m.content.trim().is_empty()) {
        message.push_str("- ");
        message.push_str(memory.content.trim());
        message.push('\n');
    }
    message
}

/// Writes the model's answer into the offline `summary`. The headline and overview are
/// required; the rest keeps the offline value when the answer has none that holds up.
pub fn apply_day_answer(
    answer: &str,
    summary: &mut DailySummary,
    conversations: &[Conversation],
) -> Result<(), String> {
    let object = json_object(answer).ok_or("no JSON object in the answer")?;
    let headline = text(&object, "headline").ok_or("no headline in the answer")?;
    let overview = text(&object, "overview").ok_or("no overview in the answer")?;
    let known: HashSet<&str> = conversations
        .iter()
        .filter(|c| !c.discarded)
        .map(|c| c.id.as_str())
        .collect();
    let known_id = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .filter(|id| known.contains(id))
            .map(str::to_string)
    };

    summary.headline = cut_at_word_boundary(headline, 120);
    summary.overview = overview.to_string();
    if let Some(emoji) = text(&object, "day_emoji").filter(|e| is_emoji_like(e)) {
        summary.day_emoji = emoji.to_string();
    }
    let highlights: Vec<Highlight> = items(&object, "highlights")
        .filter_map(|item| {
            let ids: Vec<String> = item
                .get("conversation_ids")?
                .as_array()?
                .iter()
                .filter_map(|id| known_id(Some(id)))
                .collect();
            (!ids.is_empty()).then(|| Highlight {
                topic: text(item, "topic").unwrap_or_default().to_string(),
                emoji: text(item, "emoji")
                    .filter(|e| is_emoji_like(e))
                    .unwrap_or("✨")
                    .to_string(),
                summary: text(item, "summary").unwrap_or_default().to_string(),
                conversation_ids: ids,
            })
        })
        .filter(|h| !h.topic.is_empty() && !h.summary.is_empty())
        .collect();
    if !highlights.is_empty() {
        summary.highlights = highlights;
    }
    summary.unresolved_questions = insights(&object, "unresolved_questions", "question")
        .map(|(question, id)| UnresolvedQuestion {
            question,
            conversation_id: known_id(id),
        })
        .collect();
    summary.decisions_made = insights(&object, "decisions_made", "decision")
        .map(|(decision, id)| Decision {
            decision,
            conversation_id: known_id(id),
        })
        .collect();
    summary.knowledge_nuggets = insights(&object, "knowledge_nuggets", "insight")
        .map(|(insight, id)| KnowledgeNugget {
            insight,
            conversation_id: known_id(id),
        })
        .collect();
    Ok(())
}

/// The profile answer, cut at [`MAX_PROFILE_CHARS`].
pub fn profile_answer(answer: &str) -> Result<String, String> {
    let object = json_object(answer).ok_or("no JSON object in the answer")?;
    let profile = text(&object, "profile").ok_or("no profile in the answer")?;
    Ok(cut_at_word_boundary(profile, MAX_PROFILE_CHARS))
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    object
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn items<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    object
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// Up to [`MAX_INSIGHTS`] non-empty `(text, conversation_id)` pairs of one insight list.
fn insights<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    text_field: &'a str,
) -> impl Iterator<Item = (String, Option<&'a Value>)> {
    items(object, field)
        .filter_map(move |item| {
            Some((
                text(item, text_field)?.to_string(),
                item.get("conversation_id"),
            ))
        })
        .take(MAX_INSIGHTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversations::Structured;
    use crate::domain::daily_summaries::DayStats;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn conversation(id: &str, title: &str) -> Conversation {
        let started_at = Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap();
        Conversation {
            id: id.to_string(),
            created_at: started_at,
            started_at,
            finished_at: started_at + chrono::Duration::minutes(30),
            updated_at: started_at + chrono::Duration::minutes(30),
            structured: Structured {
                title: title.to_string(),
                overview: "Talked.".to_string(),
                emoji: "💼".to_string(),
                category: "work".to_string(),
                action_items: Vec::new(),
                events: Vec::new(),
            },
            language: "en".into(),
            source: "omi".into(),
            status: "completed".into(),
            discarded: false,
            starred: false,
            processed_by: "offline".into(),
            folder_id: None,
            folder_name: None,
            geolocation: None,
            transcript_segments: None,
        }
    }

    fn offline() -> DailySummary {
        DailySummary {
            id: "s1".into(),
            date: NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
            created_at: Utc.with_ymd_and_hms(2026, 12, 7, 0, 10, 0).unwrap(),
            headline: "Budget Review".into(),
            overview: "Budget Review.".into(),
            day_emoji: "💼".into(),
            stats: DayStats {
                total_conversations: 1,
                total_duration_minutes: 30,
                action_items_count: 0,
            },
            highlights: vec![],
            action_items: vec![],
            unresolved_questions: vec![],
            decisions_made: vec![],
            knowledge_nuggets: vec![],
            locations: vec![],
        }
    }

    #[test]
    fn the_model_rewrites_the_words_and_loses_unknown_sources() {
        let day = [conversation("c1", "Budget Review")];
        let mut summary = offline();
        let answer = json!({
            "headline": "A Day of Budgets",
            "overview": "The user reviewed the budget.",
            "day_emoji": "📊",
            "highlights": [
                {"topic": "Work", "emoji": "💼", "summary": "Budget.", "conversation_ids": ["c1", "nope"]},
                {"topic": "Ghost", "emoji": "👻", "summary": "Made up.", "conversation_ids": ["nope"]}
            ],
            "unresolved_questions": [{"question": "Who signs?", "conversation_id": "nope"}],
            "decisions_made": [{"decision": "Cut travel.", "conversation_id": "c1"}],
            "knowledge_nuggets": [
                {"insight": "a", "conversation_id": null}, {"insight": "b", "conversation_id": null},
                {"insight": "c", "conversation_id": null}, {"insight": "d", "conversation_id": null}
            ]
        });
        apply_day_answer(&answer.to_string(), &mut summary, &day).unwrap();
        assert_eq!(summary.headline, "A Day of Budgets");
        assert_eq!(summary.day_emoji, "📊");
        assert_eq!(summary.highlights.len(), 1);
        assert_eq!(summary.highlights[0].conversation_ids, vec!["c1"]);
        assert_eq!(summary.unresolved_questions[0].conversation_id, None);
        assert_eq!(
            summary.decisions_made[0].conversation_id.as_deref(),
            Some("c1")
        );
        assert_eq!(summary.knowledge_nuggets.len(), MAX_INSIGHTS);
        assert_eq!(summary.stats.total_conversations, 1, "counts stay exact");
    }

    #[test]
    fn an_answer_without_headline_or_overview_is_unusable() {
        let day = [conversation("c1", "Budget Review")];
        let mut summary = offline();
        let answer = json!({"headline": "", "overview": "Something."}).to_string();
        assert!(apply_day_answer(&answer, &mut summary, &day).is_err());
        assert!(apply_day_answer("no json here", &mut summary, &day).is_err());
        assert_eq!(summary, offline(), "a failed answer changes nothing");
    }

    #[test]
    fn the_day_message_lists_each_kept_conversation_with_its_id() {
        let mut discarded = conversation("c2", "Noise");
        discarded.discarded = true;
        let message = day_message(
            &offline(),
            &[conversation("c1", "Budget Review"), discarded],
        );
        assert!(message.starts_with("Day: 2026-12-06"));
        assert!(message.contains("[id: c1] started 09:00 UTC\nTitle: Budget Review"));
        assert!(!message.contains("c2"));
    }

    #[test]
    fn a_profile_answer_needs_text() {
        assert_eq!(
            profile_answer(r#"{"profile": " Alex is a pharmacist. "}"#).unwrap(),
            "Alex is a pharmacist."
        );
        assert!(profile_answer(r#"{"profile": ""}"#).is_err());
    }
}
