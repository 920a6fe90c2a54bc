//! Lenient reading of model answers. Models wrap JSON in code fences, add prose around it, invent
//! fields and categories, and compute dates badly; this module takes the first JSON object,
//! ignores unknown fields, maps an unknown category to `other`, and resolves times with the same
//! rules as the offline backend. An answer that lacks what a step needs is an error, so that the
//! step falls back to the offline result.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::{Map, Value};

use crate::processing::dates::{
    has_date_and_clock_time, has_time_cue, resolve_due, strip_time_expressions,
};
use crate::processing::memories::categorize_memory_content;
use crate::processing::text::{
    capitalize_first, clean_text, title_case, trim_sentence_punctuation,
};
use crate::processing::{
    ConversationCategory, ExtractedActionItem, ExtractedEvent, ExtractedMemory, MemoryKind,
};

/// The moments relative dates are read against (see [`crate::processing::ProcessingContext`]).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub reference: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What the structuring step gives.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelStructure {
    pub title: String,
    pub overview: String,
    pub emoji: String,
    pub category: ConversationCategory,
    pub events: Vec<ExtractedEvent>,
}

/// An emoji is short and holds no letters or digits; anything else the model puts there is not
/// one (a word, a sentence).
const MAX_EMOJI_CHARS: usize = 8;

/// The first JSON object in an answer: the whole answer when it parses, else the first balanced
/// `{...}` that parses, skipping code fences and prose.
pub fn json_object(answer: &str) -> Option<Map<String, Value>> {
    if let Ok(Value::Object(object)) = serde_json::from_str(answer.trim()) {
        return Some(object);
    }
    let mut rest = answer;
    while let Some(start) = rest.find('{') {
        let candidate = &rest[start..];
        if let Some(end) = balanced_end(candidate)
            && let Ok(Value::Object(object)) = serde_json::from_str(&candidate[..end])
        {
            return Some(object);
        }
        rest = &candidate[1..];
    }
    None
}

/// The length of the balanced `{...}` at the start of `text`, braces inside strings ignored.
fn balanced_end(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (index, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(index + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn object_of(answer: &str) -> Result<Map<String, Value>, String> {
    json_object(answer).ok_or_else(|| "no JSON object in the answer".to_string())
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    object
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn list<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a Vec<Value>, String> {
    match object.get(field) {
        Some(Value::Array(items)) => Ok(items),
        Some(Value::Null) | None => Err(format!("no {field} list in the answer")),
        Some(_) => Err(format!("{field} is not a list")),
    }
}

/// The keep-or-drop answer: `true` to discard. Strings such as "true" are read too.
pub fn discard(answer: &str) -> Result<bool, String> {
    match object_of(answer)?.get("discard") {
        Some(Value::Bool(discard)) => Ok(*discard),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err("no discard decision in the answer".to_string()),
    }
}

/// The structuring answer. A title and an overview are required; a missing or unknown category
/// is `other`, a missing emoji the category's, missing events none.
pub fn structure(answer: &str, clock: &Clock) -> Result<ModelStructure, String> {
    let object = object_of(answer)?;
    let title = text(&object, "title")
        .map(|t| title_case(trim_sentence_punctuation(t)))
        .filter(|t| !t.is_empty())
        .ok_or("no title in the answer")?;
    let overview = text(&object, "overview")
        .map(clean_text)
        .filter(|o| !o.is_empty())
        .ok_or("no overview in the answer")?;
    let category = text(&object, "category")
        .and_then(|c| ConversationCategory::parse(&c.to_lowercase()))
        .unwrap_or(ConversationCategory::Other);
    let emoji = text(&object, "emoji")
        .filter(|e| is_emoji_like(e))
        .map_or_else(|| category.emoji().to_string(), str::to_string);
    let events = match object.get("events") {
        Some(Value::Array(events)) => events.iter().filter_map(|e| event(e, clock)).collect(),
        _ => Vec::new(),
    };
    Ok(ModelStructure {
        title,
        overview,
        emoji,
        category,
        events,
    })
}

pub(super) fn is_emoji_like(candidate: &str) -> bool {
    candidate.chars().count() <= MAX_EMOJI_CHARS
        && !candidate
            .chars()
            .any(|c| c.is_alphanumeric() || c.is_whitespace())
}

/// An event needs a title and a start with an explicit time; `duration_minutes` 0 means the
/// default, which the shared post-processing fills in.
fn event(value: &Value, clock: &Clock) -> Option<ExtractedEvent> {
    let object = value.as_object()?;
    let title = text(object, "title")?;
    let start = match text(object, "when") {
        Some(when) if has_date_and_clock_time(&when.to_lowercase()) => {
            resolve_due(when, clock.reference, clock.now)
        }
        _ => text(object, "start").and_then(instant_with_zone),
    }?;
    let duration_minutes = object
        .get("duration_minutes")
        .and_then(Value::as_u64)
        .map_or(0, |m| u32::try_from(m).unwrap_or(u32::MAX));
    Some(ExtractedEvent {
        title: title_case(trim_sentence_punctuation(title)),
        description: text(object, "description").unwrap_or("").to_string(),
        start,
        duration_minutes,
    })
}

/// The action items answer. Items without a description are skipped; time words left in a
/// description are removed, as the offline rules do.
pub fn action_items(answer: &str, clock: &Clock) -> Result<Vec<ExtractedActionItem>, String> {
    let object = object_of(answer)?;
    Ok(list(&object, "action_items")?
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|item| {
            let description = text(item, "description")?;
            let description = capitalize_first(trim_sentence_punctuation(&strip_time_expressions(
                description,
            )));
            (!description.is_empty()).then(|| ExtractedActionItem {
                due_at: due(text(item, "due_phrase"), text(item, "due_at"), clock),
                description,
            })
        })
        .collect())
}

/// A due date. The conversation's own words are resolved by the offline table (PROCESSING.md
/// §3), which is the contract; the model's computed instant is used only when those words hold
/// no time expression, and only when it carries a zone or is a bare date (23:59 that day). A
/// naive date-time says nothing reliable about the instant and gives no due date; anything in
/// the past is dropped by the shared post-processing.
pub fn due(phrase: Option<&str>, instant: Option<&str>, clock: &Clock) -> Option<DateTime<Utc>> {
    if let Some(phrase) = phrase
        && has_time_cue(&phrase.to_lowercase())
    {
        return resolve_due(phrase, clock.reference, clock.now);
    }
    let instant = instant?;
    instant_with_zone(instant).or_else(|| {
        let date = NaiveDate::parse_from_str(instant, "%Y-%m-%d").ok()?;
        Some(date.and_time(NaiveTime::from_hms_opt(23, 59, 0)?).and_utc())
    })
}

fn instant_with_zone(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The memories answer. A missing or unknown category is decided by the offline rule for
/// API-created memories.
pub fn memories(answer: &str) -> Result<Vec<ExtractedMemory>, String> {
    let object = object_of(answer)?;
    Ok(list(&object, "memories")?
        .iter()
        .filter_map(|memory| {
            let (content, category) = match memory {
                Value::String(content) => (content.trim(), None),
                Value::Object(object) => (text(object, "content")?, text(object, "category")),
                _ => return None,
            };
            let content = trim_sentence_punctuation(content).to_string();
            let kind = match category.map(str::to_lowercase).as_deref() {
                Some("system") => MemoryKind::System,
                Some("interesting") => MemoryKind::Interesting,
                _ => categorize_memory_content(&content),
            };
            (!content.is_empty()).then_some(ExtractedMemory { content, kind })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Tuesday 2025-06-10 15:00 UTC.
    fn clock() -> Clock {
        let t = Utc.with_ymd_and_hms(2025, 6, 10, 15, 0, 0).unwrap();
        Clock {
            reference: t,
            now: t,
        }
    }

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, d, h, m, 0).unwrap()
    }

    #[test]
    fn json_is_found_inside_fences_and_prose() {
        let fenced = "```json\n{\"discard\": false}\n```";
        assert_eq!(discard(fenced), Ok(false));
        let chatty = "Sure! Here it is: {\"discard\": true, \"reason\": \"a {brace} in text\"} Hope that helps {";
        assert_eq!(discard(chatty), Ok(true));
        let broken_then_good = "{not json} {\"discard\": \"false\"}";
        assert_eq!(discard(broken_then_good), Ok(false));
        assert!(discard("I cannot help with that.").is_err());
    }

    #[test]
    fn an_unknown_category_is_other_and_extra_fields_are_ignored() {
        let answer = r#"{"title": "budget review.", "overview": "Speaker 0: We cut costs.",
            "category": "Gardening", "emoji": "a leaf", "mood": "calm"}"#;
        let s = structure(answer, &clock()).unwrap();
        assert_eq!(s.title, "Budget Review");
        assert_eq!(s.overview, "We cut costs.");
        assert_eq!(s.category, ConversationCategory::Other);
        assert_eq!(s.emoji, ConversationCategory::Other.emoji());
        assert!(s.events.is_empty());
    }

    #[test]
    fn a_structure_without_title_or_overview_is_unusable() {
        assert!(structure(r#"{"overview": "x"}"#, &clock()).is_err());
        assert!(structure(r#"{"title": "x", "overview": "  "}"#, &clock()).is_err());
    }

    #[test]
    fn the_conversations_words_decide_the_due_date() {
        // The model miscounted the weekday; "friday" is read by the offline table.
        let d = due(Some("by friday"), Some("2025-06-12T23:59:00Z"), &clock());
        assert_eq!(d, Some(at(13, 23, 59)));
        assert_eq!(
            due(None, Some("2025-06-12T09:00:00+02:00"), &clock()),
            Some(at(12, 7, 0))
        );
        assert_eq!(
            due(None, Some("2025-06-12"), &clock()),
            Some(at(12, 23, 59))
        );
        assert_eq!(due(None, Some("2025-06-12T09:00:00"), &clock()), None);
        assert_eq!(
            due(
                Some("by 2025-06-01"),
                Some("2025-06-20T15:00:00Z"),
                &clock()
            ),
            None
        );
        assert_eq!(due(Some("soon-ish"), None, &clock()), None);
    }

    #[test]
    fn action_items_lose_their_time_words_and_keep_their_due_date() {
        let answer = r#"{"action_items": [
            {"description": "call the dentist tomorrow", "due_phrase": "tomorrow at 3pm", "due_at": null},
            {"description": "", "due_phrase": null, "due_at": null},
            {"due_at": "2025-06-11T10:00:00Z"}]}"#;
        let items = action_items(answer, &clock()).unwrap();
        assert_eq!(
            items,
            vec![ExtractedActionItem {
                description: "Call the dentist".into(),
                due_at: Some(at(11, 15, 0)),
            }]
        );
        assert!(action_items(r#"{"tasks": []}"#, &clock()).is_err());
    }

    #[test]
    fn events_need_an_explicit_time() {
        let answer = r#"{"title": "Dentist", "overview": "Booked.", "category": "health", "emoji": "🦷",
            "events": [
              {"title": "dentist appointment", "when": "thursday at 10am", "start": null, "duration_minutes": 45},
              {"title": "Lunch", "when": "sometime", "start": "2025-06-12T12:00:00"},
              {"title": "Call with Sam", "when": "", "start": "2025-06-13T16:00:00Z", "duration_minutes": null}]}"#;
        let s = structure(answer, &clock()).unwrap();
        assert_eq!(s.emoji, "🦷");
        let starts: Vec<_> = s
            .events
            .iter()
            .map(|e| (e.title.as_str(), e.start, e.duration_minutes))
            .collect();
        assert_eq!(
            starts,
            vec![
                ("Dentist Appointment", at(12, 10, 0), 45),
                ("Call with Sam", at(13, 16, 0), 0)
            ]
        );
    }

    #[test]
    fn memories_take_the_models_category_or_the_offline_rule() {
        let answer = r#"{"memories": [
            {"content": "Alex is allergic to peanuts.", "category": "system"},
            {"content": "Dr. Lee says stretch before running", "category": "wisdom"},
            "Alex lives in Lisbon"]}"#;
        let found = memories(answer).unwrap();
        let kinds: Vec<_> = found.iter().map(|m| (m.content.as_str(), m.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("Alex is allergic to peanuts", MemoryKind::System),
                (
                    "Dr. Lee says stretch before running",
                    MemoryKind::Interesting
                ),
                ("Alex lives in Lisbon", MemoryKind::System),
            ]
        );
    }
}
