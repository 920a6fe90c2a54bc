//! The source's objects as the Omi Developer API serves them, read leniently (unknown fields are
//! ignored, missing optional ones take their documented defaults), and their mapping onto what
//! this server stores. Plain code: no I/O.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::action_items::ActionItem;
use crate::domain::categories::SystemFolder;
use crate::domain::conversations::{Event, Geolocation, NewSegment};
use crate::domain::folders::SystemFolderSpec;
use crate::domain::goals::{
    Goal, GoalMetric, GoalProgress, GoalSource, GoalStatus, GoalType, NewGoal,
};
use crate::domain::memories::{Memory, MemoryCategory, Visibility, memory_id_for, scoring};
use crate::domain::time::{Timestamp, parse_date, parse_datetime};
use crate::store::import::{FolderRef, ImportRecord, ImportedConversation, ImportedFolder};

/// Why one source object could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// A digest of the object exactly as served: equal digests mean an unchanged object.
pub fn fingerprint(values: &[&Value]) -> String {
    let mut hasher = Sha256::new();
    for value in values {
        hasher.update(serde_json::to_vec(value).expect("a JSON value serializes"));
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

/// The object's `id`, which every listed object of the Developer API has.
pub fn source_id(value: &Value) -> Option<String> {
    match value.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn time(raw: &Option<String>, field: &str) -> Result<Timestamp, Unreadable> {
    let text = raw
        .as_deref()
        .ok_or_else(|| Unreadable(format!("{field} is missing")))?;
    parse_datetime(text).ok_or_else(|| Unreadable(format!("{field} is not a date-time: {text}")))
}

fn optional_time(raw: &Option<String>) -> Option<Timestamp> {
    raw.as_deref().and_then(parse_datetime)
}

fn parse<T: for<'de> Deserialize<'de>>(value: &Value) -> Result<T, Unreadable> {
    T::deserialize(value).map_err(|error| Unreadable(format!("unexpected shape: {error}")))
}

#[derive(Debug, Deserialize)]
struct SourceMemory {
    content: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    manually_added: bool,
    #[serde(default)]
    reviewed: bool,
    #[serde(default)]
    user_review: Option<bool>,
    #[serde(default)]
    edited: bool,
    #[serde(default)]
    conversation_id: Option<String>,
}

pub fn memory(value: &Value) -> Result<ImportRecord, Unreadable> {
    let source: SourceMemory = parse(value)?;
    let content = source.content.trim().to_string();
    if content.is_empty() {
        return Err(Unreadable("content is empty".into()));
    }
    let category = source
        .category
        .as_deref()
        .and_then(MemoryCategory::parse)
        .unwrap_or(MemoryCategory::Manual);
    let created_at = time(&source.created_at, "created_at")?;
    let updated_at = optional_time(&source.updated_at).unwrap_or(created_at);
    Ok(ImportRecord::Memory(Memory {
        id: memory_id_for(&content),
        content,
        category,
        visibility: source
            .visibility
            .as_deref()
            .and_then(Visibility::parse)
            .unwrap_or(Visibility::Private),
        tags: source.tags.unwrap_or_default(),
        created_at,
        updated_at,
        manually_added: source.manually_added,
        scoring: scoring(source.manually_added, category, created_at),
        reviewed: source.reviewed,
        user_review: source.user_review,
        edited: source.edited,
        conversation_id: source.conversation_id,
    }))
}

#[derive(Debug, Deserialize)]
struct SourceActionItem {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    completed: bool,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    due_at: Option<String>,
    #[serde(default)]
    completed_at: Option<String>,
    #[serde(default)]
    conversation_id: Option<String>,
}

pub fn action_item(id: &str, value: &Value) -> Result<ImportRecord, Unreadable> {
    let source: SourceActionItem = parse(value)?;
    let description = source.description.unwrap_or_default().trim().to_string();
    if description.is_empty() {
        return Err(Unreadable("description is empty".into()));
    }
    let created_at = time(&source.created_at, "created_at")?;
    Ok(ImportRecord::ActionItem(ActionItem {
        id: id.to_string(),
        description,
        completed: source.completed,
        created_at,
        updated_at: optional_time(&source.updated_at).unwrap_or(created_at),
        due_at: optional_time(&source.due_at),
        completed_at: optional_time(&source.completed_at),
        conversation_id: source.conversation_id.filter(|c| !c.is_empty()),
    }))
}

#[derive(Debug, Deserialize)]
struct SourceGoal {
    title: String,
    #[serde(default)]
    desired_outcome: Option<String>,
    #[serde(default)]
    why_it_matters: Option<String>,
    #[serde(default)]
    success_criteria: Vec<String>,
    #[serde(default)]
    horizon_at: Option<String>,
    #[serde(default)]
    goal_type: Option<String>,
    #[serde(default)]
    target_value: Option<f64>,
    #[serde(default)]
    current_value: Option<f64>,
    #[serde(default)]
    min_value: Option<f64>,
    #[serde(default)]
    max_value: Option<f64>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
}

/// The metric an older source's flat fields describe (API.md §13.F.1): one exists when a
/// target or a type is named.
fn flat_metric(source: &SourceGoal) -> Option<GoalMetric> {
    (source.target_value.is_some() || source.goal_type.is_some()).then(|| GoalMetric {
        metric_type: source
            .goal_type
            .as_deref()
            .and_then(GoalType::parse)
            .unwrap_or(GoalType::Scale),
        current: source.current_value.unwrap_or(0.0),
        target: source.target_value.unwrap_or(0.0),
        min: source.min_value,
        max: source.max_value,
        unit: source.unit.clone(),
    })
}

#[derive(Debug, Deserialize)]
struct SourceProgress {
    date: String,
    value: f64,
    #[serde(default)]
    recorded_at: Option<String>,
}

pub fn goal(id: &str, value: &Value, history: &Value) -> Result<ImportRecord, Unreadable> {
    let source: SourceGoal = parse(value)?;
    let created_at = time(&source.created_at, "created_at")?;
    let is_active = source.is_active.unwrap_or(!matches!(
        source.status.as_deref(),
        Some("achieved" | "abandoned")
    ));
    let history: Vec<SourceProgress> = match history {
        Value::Null => Vec::new(),
        other => parse(other)?,
    };
    let history = history
        .into_iter()
        .map(|p| {
            let date = parse_date(&p.date)
                .ok_or_else(|| Unreadable(format!("history date is not a date: {}", p.date)))?;
            Ok(GoalProgress {
                date,
                value: p.value,
                recorded_at: optional_time(&p.recorded_at).unwrap_or(created_at),
            })
        })
        .collect::<Result<Vec<_>, Unreadable>>()?;
    // Goals v2 (API.md §13.F): a metric exists when the source names a target or a type;
    // otherwise the goal is qualitative. The status follows the source's, or its active flag.
    // A source that speaks goals v2 sends `metric` (null for a qualitative goal, whose flat
    // aliases are still filled); an older one sends the flat fields alone.
    let metric = match value.get("metric") {
        Some(Value::Null) => None,
        Some(metric) => Some(parse::<GoalMetric>(metric)?),
        None => flat_metric(&source),
    };
    let status = source
        .status
        .as_deref()
        .and_then(GoalStatus::parse)
        .unwrap_or(if is_active {
            GoalStatus::Background
        } else {
            GoalStatus::Abandoned
        });
    let updated_at = optional_time(&source.updated_at).unwrap_or(created_at);
    let ended_at = (!status.is_active()).then_some(updated_at);
    let fields = NewGoal {
        desired_outcome: source
            .desired_outcome
            .filter(|text| !text.trim().is_empty())
            .unwrap_or_else(|| source.title.clone()),
        title: source.title,
        why_it_matters: source.why_it_matters,
        success_criteria: source.success_criteria,
        horizon_at: optional_time(&source.horizon_at),
        status,
        source: source
            .source
            .as_deref()
            .map_or(GoalSource::Imported, GoalSource::read),
        metric,
    };
    Ok(ImportRecord::Goal(
        Goal::from_parts(id.to_string(), fields, created_at, updated_at, ended_at),
        history,
    ))
}

#[derive(Debug, Deserialize)]
struct SourceFolder {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    icon: Option<String>,
    #[serde(default)]
    order: Option<i64>,
    #[serde(default)]
    is_system: bool,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
}

fn system_folder_named(name: &str) -> Option<SystemFolderSpec> {
    SystemFolder::ALL
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
        .map(SystemFolderSpec::of)
}

pub fn folder(value: &Value, now: Timestamp) -> Result<ImportRecord, Unreadable> {
    let source: SourceFolder = parse(value)?;
    let name = source.name.trim().to_string();
    if name.is_empty() {
        return Err(Unreadable("name is empty".into()));
    }
    let system = if source.is_system {
        system_folder_named(&name)
    } else {
        None
    };
    let created_at = optional_time(&source.created_at).unwrap_or(now);
    Ok(ImportRecord::Folder(ImportedFolder {
        name,
        description: source.description,
        color: source.color.unwrap_or_else(|| "#6B7280".to_string()),
        icon: source.icon.unwrap_or_else(|| "📁".to_string()),
        order: source.order.unwrap_or(100),
        created_at,
        updated_at: optional_time(&source.updated_at).unwrap_or(created_at),
        system,
    }))
}

#[derive(Debug, Deserialize, Default)]
struct SourceStructured {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    overview: Option<String>,
    #[serde(default)]
    emoji: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    events: Vec<SourceEvent>,
}

#[derive(Debug, Deserialize)]
struct SourceEvent {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
    start: String,
    #[serde(default)]
    duration: Option<u32>,
    #[serde(default)]
    created: bool,
}

#[derive(Debug, Deserialize)]
struct SourceSegment {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    speaker: Option<String>,
    #[serde(default)]
    speaker_id: Option<i64>,
    #[serde(default)]
    is_user: bool,
    #[serde(default)]
    person_id: Option<String>,
    #[serde(default)]
    start: f64,
    #[serde(default)]
    end: f64,
}

#[derive(Debug, Deserialize)]
struct SourceConversation {
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    structured: Option<SourceStructured>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    discarded: bool,
    #[serde(default)]
    processed_by: Option<String>,
    #[serde(default)]
    folder_id: Option<String>,
    #[serde(default)]
    folder_name: Option<String>,
    #[serde(default)]
    geolocation: Option<Geolocation>,
    #[serde(default)]
    transcript_segments: Option<Vec<SourceSegment>>,
}

pub fn conversation(id: &str, value: &Value) -> Result<ImportRecord, Unreadable> {
    let source: SourceConversation = parse(value)?;
    let created_at = time(&source.created_at, "created_at")?;
    let started_at = optional_time(&source.started_at).unwrap_or(created_at);
    let finished_at = optional_time(&source.finished_at).unwrap_or(started_at);
    let structured = source.structured.unwrap_or_default();
    let events = structured
        .events
        .into_iter()
        .map(|e| {
            Ok(Event {
                start: parse_datetime(&e.start).ok_or_else(|| {
                    Unreadable(format!("event start is not a date-time: {}", e.start))
                })?,
                title: e.title,
                description: e.description.unwrap_or_default(),
                duration: e.duration.unwrap_or(30),
                created: e.created,
            })
        })
        .collect::<Result<Vec<_>, Unreadable>>()?;
    let segments = source
        .transcript_segments
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let speaker_id = s.speaker_id.unwrap_or(0);
            NewSegment {
                id: s.id.unwrap_or_else(|| format!("{id}-{i}")),
                text: s.text,
                speaker: s
                    .speaker
                    .unwrap_or_else(|| format!("SPEAKER_{speaker_id:02}")),
                speaker_id,
                is_user: s.is_user,
                person_id: s.person_id,
                start: s.start,
                end: s.end,
            }
        })
        .collect();
    let folder = source
        .folder_id
        .filter(|f| !f.is_empty())
        .map(|folder_id| FolderRef {
            source_id: folder_id,
            system: source.folder_name.as_deref().and_then(system_folder_named),
        });
    Ok(ImportRecord::Conversation(Box::new(ImportedConversation {
        id: id.to_string(),
        created_at,
        started_at,
        finished_at,
        updated_at: optional_time(&source.updated_at).unwrap_or(created_at),
        title: structured.title.unwrap_or_default(),
        overview: structured.overview.unwrap_or_default(),
        emoji: structured.emoji.unwrap_or_else(|| "🧠".to_string()),
        category: structured.category.unwrap_or_else(|| "other".to_string()),
        events,
        language: source
            .language
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "en".to_string()),
        source: source.source.unwrap_or_else(|| "omi".to_string()),
        discarded: source.discarded,
        processed_by: source
            .processed_by
            .unwrap_or_else(|| "imported".to_string()),
        folder,
        geolocation: source.geolocation,
        segments,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_memory_gets_this_servers_id_and_keeps_its_flags() {
        let value = json!({"id": "m1", "content": "  Likes tea ", "category": "interesting",
            "visibility": "public", "tags": ["a"], "created_at": "2025-01-02T03:04:05+00:00",
            "reviewed": true, "user_review": false, "edited": true, "manually_added": true});
        let ImportRecord::Memory(m) = memory(&value).unwrap() else {
            panic!("not a memory")
        };
        assert_eq!(m.id, memory_id_for("Likes tea"));
        assert_eq!(m.content, "Likes tea");
        assert!(m.reviewed && m.edited && m.manually_added);
        assert_eq!(m.user_review, Some(false));
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(m.updated_at, m.created_at);
    }

    #[test]
    fn a_conversation_without_transcript_fields_takes_defaults() {
        let value = json!({"id": "c1", "created_at": "2025-01-02T03:04:05Z",
            "structured": {"title": "T", "events": [{"title": "E", "start": "2025-01-03T00:00:00Z"}]}});
        let ImportRecord::Conversation(c) = conversation("c1", &value).unwrap() else {
            panic!("not a conversation")
        };
        assert_eq!(c.started_at, c.created_at);
        assert_eq!(c.events[0].duration, 30);
        assert!(c.segments.is_empty());
        assert_eq!(c.language, "en");
    }

    #[test]
    fn unreadable_objects_say_why() {
        assert!(
            memory(&json!({"content": "x"}))
                .unwrap_err()
                .0
                .contains("created_at")
        );
        assert!(action_item("a", &json!({"description": " "})).is_err());
    }

    #[test]
    fn fingerprints_follow_the_content() {
        let a = json!({"id": "1", "content": "a"});
        let b = json!({"id": "1", "content": "b"});
        assert_eq!(fingerprint(&[&a]), fingerprint(&[&a.clone()]));
        assert_ne!(fingerprint(&[&a]), fingerprint(&[&b]));
    }
}
