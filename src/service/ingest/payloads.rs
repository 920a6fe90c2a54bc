//! The bodies the Omi app's developer webhooks send (API.md §13.G), read leniently (unknown
//! fields ignored, the older and newest field sets both accepted) and checked before a delivery
//! is acknowledged, so that what is accepted can be processed. Plain code: no I/O.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::daily_summaries::DailySummary;
use crate::domain::time::parse_datetime;
use crate::service::import::upstream;
use crate::store::import::{ImportRecord, ImportedConversation};
use crate::store::ingest::SessionSegment;

/// What a webhook delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `memory_created`: a finished conversation.
    Conversation,
    /// `realtime_transcript`: new segments of the live transcript.
    Transcript,
    /// `day_summary`.
    DaySummary,
    /// `audio_bytes`: PCM16 mono.
    Audio,
    /// `button_event`.
    Button,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Conversation,
        Kind::Transcript,
        Kind::DaySummary,
        Kind::Audio,
        Kind::Button,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Conversation => "conversation",
            Kind::Transcript => "transcript",
            Kind::DaySummary => "day_summary",
            Kind::Audio => "audio",
            Kind::Button => "button",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Why a body is not the payload its webhook sends; the text completes
/// `Validation error: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotOmi(pub String);

/// Sample rates the app sends audio at (API.md §13.G.5).
pub const SAMPLE_RATES: std::ops::RangeInclusive<i64> = 1000..=192_000;

fn json(body: &[u8]) -> Result<Value, NotOmi> {
    serde_json::from_slice(body).map_err(|error| NotOmi(format!("body is not valid JSON: {error}")))
}

/// A `memory_created` body, mapped like an imported conversation, with the action items of its
/// `structured` part.
#[derive(Debug, Clone)]
pub struct DeliveredConversation {
    pub id: String,
    pub conversation: Box<ImportedConversation>,
    /// Each with the source id it is kept under.
    pub action_items: Vec<(String, ImportRecord)>,
    /// The body exactly as received, for the fingerprint.
    pub raw: Value,
}

pub fn conversation(body: &[u8]) -> Result<DeliveredConversation, NotOmi> {
    let raw = json(body)?;
    if !raw.is_object() {
        return Err(NotOmi("body must be a conversation object".into()));
    }
    let id = upstream::source_id(&raw)
        .ok_or_else(|| NotOmi("id is required (a conversation object)".into()))?;
    let ImportRecord::Conversation(conversation) = upstream::conversation(&id, &raw)
        .map_err(|why| NotOmi(format!("not an Omi conversation: {}", why.0)))?
    else {
        unreachable!("the conversation mapping makes a conversation")
    };
    let items = raw
        .pointer("/structured/action_items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut action_items = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let mut item = item;
        if let Some(fields) = item.as_object_mut() {
            // The conversation's own items need no `created_at` or link of their own.
            if !matches!(fields.get("created_at"), Some(Value::String(_))) {
                fields.insert(
                    "created_at".into(),
                    Value::String(conversation.created_at.to_rfc3339()),
                );
            }
            fields.insert("conversation_id".into(), Value::String(id.clone()));
        }
        let source_id = format!("{id}/action_items/{index}");
        let local_id = item_id(&source_id);
        match upstream::action_item(&local_id, &item) {
            Ok(record) => action_items.push((source_id, record)),
            // An item without a description is not an item; the rest of the body stands.
            Err(_) => continue,
        }
    }
    Ok(DeliveredConversation {
        id,
        conversation,
        action_items,
        raw,
    })
}

/// A stable id for an action item the app sends without one: a UUID made from its place in
/// the conversation, so a re-delivery updates the same item.
fn item_id(source_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(source_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[derive(Debug, Deserialize)]
struct Segment {
    #[serde(default)]
    id: Option<String>,
    text: String,
    #[serde(default)]
    speaker: Option<String>,
    #[serde(
        default,
        alias = "speakerId",
        deserialize_with = "crate::domain::wire::optional_integer"
    )]
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

/// A `realtime_transcript` body: `{"segments": [...], "session_id": ...}`, or the bare array.
pub fn transcript(body: &[u8]) -> Result<Vec<SessionSegment>, NotOmi> {
    let raw = json(body)?;
    let segments = match raw {
        Value::Array(segments) => segments,
        Value::Object(mut fields) => match fields.remove("segments") {
            Some(Value::Array(segments)) => segments,
            _ => return Err(NotOmi("segments is required (a list of segments)".into())),
        },
        _ => {
            return Err(NotOmi(
                "body must be {\"segments\": [...]} or a list".into(),
            ));
        }
    };
    segments
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            // serde would also read a segment written as an array, by position.
            if !value.is_object() {
                return Err(NotOmi(format!("segments[{index}] must be an object")));
            }
            let segment: Segment = serde_json::from_value(value)
                .map_err(|error| NotOmi(format!("segments[{index}] {error}")))?;
            if !segment.start.is_finite() || !segment.end.is_finite() {
                return Err(NotOmi(format!("segments[{index}] times must be numbers")));
            }
            let speaker_id = segment.speaker_id.unwrap_or(0);
            Ok(SessionSegment {
                // Without an id a segment is its own: its text and time identify it.
                id: segment.id.unwrap_or_else(|| {
                    format!("{}:{}:{}", segment.start, segment.end, segment.text)
                }),
                text: segment.text,
                speaker: segment
                    .speaker
                    .unwrap_or_else(|| format!("SPEAKER_{speaker_id:02}")),
                speaker_id,
                is_user: segment.is_user,
                person_id: segment.person_id,
                start: segment.start,
                end: segment.end,
            })
        })
        .collect()
}

/// A `day_summary` body: its `summary_json` is the day's summary.
pub fn day_summary(body: &[u8]) -> Result<DailySummary, NotOmi> {
    let raw = json(body)?;
    let summary = raw
        .get("summary_json")
        .filter(|value| value.is_object())
        .ok_or_else(|| NotOmi("summary_json is required (a daily summary object)".into()))?;
    let mut summary = summary.clone();
    // Upstream writes `created_at` as a naive UTC time (API.md §13.G.4).
    if let Some(created) = summary.get("created_at").and_then(Value::as_str)
        && parse_datetime(created).is_none()
        && let Ok(naive) = chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%dT%H:%M:%S%.f")
    {
        summary["created_at"] = Value::String(naive.and_utc().to_rfc3339());
    }
    serde_json::from_value(summary)
        .map_err(|error| NotOmi(format!("summary_json is not a daily summary: {error}")))
}

/// A `button_event` body, kept as delivered.
pub fn button(body: &[u8]) -> Result<Value, NotOmi> {
    let raw = json(body)?;
    match raw.get("button_event") {
        Some(Value::String(_)) if raw.is_object() => Ok(raw),
        _ => Err(NotOmi("button_event is required (a string)".into())),
    }
}

/// An `audio_bytes` body: whole PCM16 samples.
pub fn audio(body: &[u8], sample_rate: Option<i64>) -> Result<i64, NotOmi> {
    let rate = sample_rate.ok_or_else(|| NotOmi("sample_rate is required".into()))?;
    if !SAMPLE_RATES.contains(&rate) {
        return Err(NotOmi("sample_rate must be between 1000 and 192000".into()));
    }
    if body.is_empty() || !body.len().is_multiple_of(2) {
        return Err(NotOmi(
            "body must be PCM16 audio (a non-empty, even number of bytes)".into(),
        ));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_conversation_keeps_its_items_under_stable_ids() {
        let body = json!({"id": "c1", "created_at": "2026-12-07T14:02:10+00:00",
            "structured": {"title": "T", "action_items": [
                {"description": "Call the dentist", "completed": false},
                {"description": "  "}]}});
        let bytes = serde_json::to_vec(&body).unwrap();
        let first = conversation(&bytes).unwrap();
        let again = conversation(&bytes).unwrap();
        assert_eq!(first.action_items.len(), 1);
        let ImportRecord::ActionItem(item) = &first.action_items[0].1 else {
            panic!("not an item")
        };
        let ImportRecord::ActionItem(same) = &again.action_items[0].1 else {
            panic!("not an item")
        };
        assert_eq!(item.id, same.id);
        assert_eq!(item.conversation_id.as_deref(), Some("c1"));
    }

    #[test]
    fn bodies_that_are_not_omi_payloads_say_why() {
        assert!(conversation(b"[]").unwrap_err().0.contains("object"));
        assert!(
            conversation(b"{\"title\": 1}")
                .unwrap_err()
                .0
                .contains("id")
        );
        assert!(
            transcript(b"{\"x\": 1}")
                .unwrap_err()
                .0
                .contains("segments")
        );
        assert!(
            transcript(b"[{\"start\": 1}]")
                .unwrap_err()
                .0
                .contains("text")
        );
        assert!(button(b"{}").is_err());
        assert!(audio(b"abc", Some(16000)).is_err());
        assert!(audio(b"ab", Some(10)).is_err());
        assert_eq!(audio(b"ab", Some(8000)), Ok(8000));
    }

    #[test]
    fn a_transcript_is_an_object_or_a_bare_list() {
        let segment = json!({"id": "s1", "text": "hi", "speaker_id": 1, "start": 1.0, "end": 2.0});
        let object =
            serde_json::to_vec(&json!({"segments": [segment], "session_id": "u"})).unwrap();
        let list = serde_json::to_vec(&json!([segment])).unwrap();
        assert_eq!(transcript(&object).unwrap(), transcript(&list).unwrap());
        assert_eq!(transcript(&list).unwrap()[0].speaker, "SPEAKER_01");
    }
}
