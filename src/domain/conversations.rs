//! Conversations: what a client sends to create one, the rules it must obey, and the object the
//! API returns (API.md §5, §11.8-11.10).

use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::action_items::ActionItem;
use crate::domain::ids::new_id;
use crate::domain::time::{Timestamp, is_rfc3339_year, serde_rfc3339};

pub const MAX_TEXT_CHARS: usize = 100_000;
pub const MAX_SEGMENTS: usize = 500;
pub const MAX_LANGUAGE_CHARS: usize = 16;
pub const MAX_CLIENT_SESSION_ID_CHARS: usize = 200;
pub const MAX_TITLE_CHARS: usize = 500;
pub const DEFAULT_LANGUAGE: &str = "en";
/// A text conversation without both times lasts this long.
pub const DEFAULT_TEXT_DURATION_SECONDS: i64 = 300;
/// The speaker label a segment without one gets.
pub const DEFAULT_SPEAKER: &str = "SPEAKER_00";
/// Every stored conversation is complete; one being processed is not visible.
pub const STATUS_COMPLETED: &str = "completed";

/// Where a conversation was recorded. Unknown values are kept as `unknown` rather than refused,
/// so new devices do not break old servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationSource {
    Friend,
    Omi,
    Fieldy,
    Bee,
    Plaud,
    Frame,
    FriendCom,
    AppleWatch,
    Phone,
    PhoneCall,
    Desktop,
    Openglass,
    Screenpipe,
    Workflow,
    Sdcard,
    ExternalIntegration,
    Limitless,
    RaybanMeta,
    Onboarding,
    Unknown,
}

impl ConversationSource {
    pub const ALL: [ConversationSource; 20] = [
        Self::Friend,
        Self::Omi,
        Self::Fieldy,
        Self::Bee,
        Self::Plaud,
        Self::Frame,
        Self::FriendCom,
        Self::AppleWatch,
        Self::Phone,
        Self::PhoneCall,
        Self::Desktop,
        Self::Openglass,
        Self::Screenpipe,
        Self::Workflow,
        Self::Sdcard,
        Self::ExternalIntegration,
        Self::Limitless,
        Self::RaybanMeta,
        Self::Onboarding,
        Self::Unknown,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Friend => "friend",
            Self::Omi => "omi",
            Self::Fieldy => "fieldy",
            Self::Bee => "bee",
            Self::Plaud => "plaud",
            Self::Frame => "frame",
            Self::FriendCom => "friend_com",
            Self::AppleWatch => "apple_watch",
            Self::Phone => "phone",
            Self::PhoneCall => "phone_call",
            Self::Desktop => "desktop",
            Self::Openglass => "openglass",
            Self::Screenpipe => "screenpipe",
            Self::Workflow => "workflow",
            Self::Sdcard => "sdcard",
            Self::ExternalIntegration => "external_integration",
            Self::Limitless => "limitless",
            Self::RaybanMeta => "rayban_meta",
            Self::Onboarding => "onboarding",
            Self::Unknown => "unknown",
        }
    }

    /// Exact match; anything else is `unknown` (API.md §11.12).
    pub fn parse_or_unknown(value: &str) -> ConversationSource {
        Self::ALL
            .into_iter()
            .find(|source| source.as_str() == value)
            .unwrap_or(Self::Unknown)
    }
}

/// Why a conversation request was refused; the route words it as the contract says
/// (API.md §5, §11.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationFieldError {
    LatitudeOutOfRange,
    LongitudeOutOfRange,
    NoSegments,
    TooManySegments,
    /// The segment at this index ends at or before its start.
    SegmentEndNotAfterStart(usize),
    SegmentStartNegative(usize),
    SegmentTextEmpty(usize),
    /// The times, or the defaults derived from them, do not fit a timestamp.
    TimesOutOfRange,
    FinishedNotAfterStarted,
    EmptyText,
    TextTooLong,
    /// A free-text field (`language`, `client_session_id`, `title`) blank after trimming.
    Blank(&'static str),
    TooLong {
        field: &'static str,
        max_chars: usize,
    },
}

/// Where the conversation took place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Geolocation {
    /// -90..90
    pub latitude: f64,
    /// -180..180
    pub longitude: f64,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub google_place_id: Option<String>,
    #[serde(default)]
    pub location_type: Option<String>,
}

impl Geolocation {
    pub fn validated(self) -> Result<Geolocation, ConversationFieldError> {
        if !(-90.0..=90.0).contains(&self.latitude) {
            return Err(ConversationFieldError::LatitudeOutOfRange);
        }
        if !(-180.0..=180.0).contains(&self.longitude) {
            return Err(ConversationFieldError::LongitudeOutOfRange);
        }
        Ok(self)
    }
}

/// A transcript segment as a client sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInput {
    pub text: String,
    pub speaker: Option<String>,
    pub speaker_id: Option<i64>,
    pub is_user: bool,
    pub person_id: Option<String>,
    pub start: f64,
    pub end: f64,
}

/// A validated segment, with its id, ready to store (and as an export carries it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSegment {
    pub id: String,
    pub text: String,
    pub speaker: String,
    pub speaker_id: i64,
    pub is_user: bool,
    pub person_id: Option<String>,
    pub start: f64,
    pub end: f64,
}

/// The count first, then each segment in order; within one: times, then start, then text
/// (API.md §5). The first failure is the answer.
pub fn validate_segments(
    segments: Vec<SegmentInput>,
) -> Result<Vec<NewSegment>, ConversationFieldError> {
    if segments.is_empty() {
        return Err(ConversationFieldError::NoSegments);
    }
    if segments.len() > MAX_SEGMENTS {
        return Err(ConversationFieldError::TooManySegments);
    }
    segments
        .into_iter()
        .enumerate()
        .map(|(index, segment)| validate_segment(index, segment))
        .collect()
}

fn validate_segment(
    index: usize,
    segment: SegmentInput,
) -> Result<NewSegment, ConversationFieldError> {
    if segment.end <= segment.start {
        return Err(ConversationFieldError::SegmentEndNotAfterStart(index));
    }
    if segment.start < 0.0 {
        return Err(ConversationFieldError::SegmentStartNegative(index));
    }
    let text = segment.text.trim();
    if text.is_empty() {
        return Err(ConversationFieldError::SegmentTextEmpty(index));
    }
    let speaker = segment
        .speaker
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SPEAKER.to_string());
    let speaker_id = speaker_number(&speaker).or(segment.speaker_id).unwrap_or(0);
    Ok(NewSegment {
        id: new_id(),
        text: text.to_string(),
        speaker,
        speaker_id,
        is_user: segment.is_user,
        person_id: segment.person_id,
        start: segment.start,
        end: segment.end,
    })
}

/// The number in a `SPEAKER_NN` label (`SPEAKER_01` -> 1).
pub fn speaker_number(label: &str) -> Option<i64> {
    let digits = label.strip_prefix("SPEAKER_")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The user's display name for their own segments, else a real speaker label, else
/// `Speaker <id>` for diarisation labels such as `SPEAKER_01`.
pub fn speaker_name(
    speaker: &str,
    speaker_id: i64,
    is_user: bool,
    user_display_name: &str,
) -> String {
    if is_user {
        user_display_name.to_string()
    } else if speaker_number(speaker).is_some() || speaker.is_empty() {
        format!("Speaker {speaker_id}")
    } else {
        speaker.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationTimes {
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

/// How long a conversation lasts when the client gives at most one of its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationRule {
    /// Text: 300 s; `finished_at` may equal `started_at`.
    Text,
    /// Segments: the largest segment end; `finished_at` must be after `started_at`.
    Segments { largest_end_micros: i64 },
}

/// Fills in missing times (API.md §11.9) and checks their order.
pub fn resolve_times(
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    rule: DurationRule,
    now: Timestamp,
) -> Result<ConversationTimes, ConversationFieldError> {
    let duration = match rule {
        DurationRule::Text => Duration::seconds(DEFAULT_TEXT_DURATION_SECONDS),
        DurationRule::Segments { largest_end_micros } => Duration::microseconds(largest_end_micros),
    };
    let (started_at, finished_at) = match (started_at, finished_at) {
        (Some(started), Some(finished)) => Some((started, finished)),
        (Some(started), None) => started.checked_add_signed(duration).map(|f| (started, f)),
        (None, Some(finished)) => finished.checked_sub_signed(duration).map(|s| (s, finished)),
        (None, None) => now.checked_add_signed(duration).map(|f| (now, f)),
    }
    // Segment times of billions of years do not fit a timestamp, and a default reaching before
    // year 0 or past 9999 could not be written in RFC 3339.
    .filter(|(started, finished)| is_rfc3339_year(started) && is_rfc3339_year(finished))
    .ok_or(ConversationFieldError::TimesOutOfRange)?;
    let in_order = match rule {
        DurationRule::Text => finished_at >= started_at,
        DurationRule::Segments { .. } => finished_at > started_at,
    };
    if !in_order {
        return Err(ConversationFieldError::FinishedNotAfterStarted);
    }
    Ok(ConversationTimes {
        started_at,
        finished_at,
    })
}

/// The largest segment end in microseconds (segments are validated, so it is positive).
pub fn largest_end_micros(segments: &[NewSegment]) -> i64 {
    let largest = segments.iter().map(|s| s.end).fold(0.0_f64, f64::max);
    (largest * 1_000_000.0).round() as i64
}

/// Text to process: 1..100,000 characters after trimming.
pub fn parse_text(raw: &str) -> Result<String, ConversationFieldError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(ConversationFieldError::EmptyText);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ConversationFieldError::TextTooLong);
    }
    Ok(text.to_string())
}

/// Free text of 1..16 characters after trimming; absent means `en`.
pub fn parse_language(raw: Option<&str>) -> Result<String, ConversationFieldError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LANGUAGE.to_string());
    };
    bounded("language", raw, MAX_LANGUAGE_CHARS)
}

pub fn parse_client_session_id(
    raw: Option<&str>,
) -> Result<Option<String>, ConversationFieldError> {
    raw.map(|raw| bounded("client_session_id", raw, MAX_CLIENT_SESSION_ID_CHARS))
        .transpose()
}

/// A new title: 1..500 characters after trimming.
pub fn parse_title(raw: &str) -> Result<String, ConversationFieldError> {
    bounded("title", raw, MAX_TITLE_CHARS)
}

fn bounded(
    field: &'static str,
    raw: &str,
    max_chars: usize,
) -> Result<String, ConversationFieldError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ConversationFieldError::Blank(field));
    }
    if value.chars().count() > max_chars {
        return Err(ConversationFieldError::TooLong { field, max_chars });
    }
    Ok(value.to_string())
}

/// A calendar event found in the conversation; never pushed to a calendar (`created` false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub title: String,
    pub description: String,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// Minutes.
    pub duration: u32,
    pub created: bool,
}

/// The generated summary of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Structured {
    /// Empty for a discarded conversation.
    pub title: String,
    pub overview: String,
    pub emoji: String,
    /// One of the 33 conversation categories.
    pub category: String,
    /// The action items currently linked to this conversation, with their ids.
    pub action_items: Vec<ActionItem>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TranscriptSegment {
    pub id: String,
    pub text: String,
    pub speaker: String,
    pub speaker_id: i64,
    pub speaker_name: String,
    pub is_user: bool,
    pub person_id: Option<String>,
    /// Seconds from the start of the conversation.
    pub start: f64,
    pub end: f64,
}

/// A conversation as the API returns it (field order as in the contract).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Conversation {
    pub id: String,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: Timestamp,
    /// When it last changed: title, folder, star, discarding or processing. An addition to
    /// upstream's shape; the change feed is ordered by it.
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub structured: Structured,
    pub language: String,
    pub source: String,
    pub status: String,
    pub discarded: bool,
    /// Set by the user (PATCH); independent of `discarded` and of folders.
    pub starred: bool,
    /// `offline`, `llm` or `llm+offline`.
    pub processed_by: String,
    pub folder_id: Option<String>,
    pub folder_name: Option<String>,
    pub geolocation: Option<Geolocation>,
    /// Only with `include_transcript=true`; `[]` for conversations created from text.
    pub transcript_segments: Option<Vec<TranscriptSegment>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_datetime;

    fn segment(text: &str, start: f64, end: f64) -> SegmentInput {
        SegmentInput {
            text: text.to_string(),
            speaker: None,
            speaker_id: None,
            is_user: false,
            person_id: None,
            start,
            end,
        }
    }

    fn refusal(result: Result<Vec<NewSegment>, ConversationFieldError>) -> ConversationFieldError {
        result.unwrap_err()
    }

    #[test]
    fn the_first_failing_segment_is_reported_with_its_index() {
        let segments = vec![
            segment("fine", 0.0, 1.0),
            segment("  ", 1.0, 2.0),
            segment("late", 5.0, 4.0),
        ];
        assert_eq!(
            refusal(validate_segments(segments)),
            ConversationFieldError::SegmentTextEmpty(1)
        );
    }

    #[test]
    fn within_a_segment_times_are_checked_before_text() {
        assert_eq!(
            refusal(validate_segments(vec![segment("", 2.0, 2.0)])),
            ConversationFieldError::SegmentEndNotAfterStart(0)
        );
        assert_eq!(
            refusal(validate_segments(vec![segment("", -1.0, 2.0)])),
            ConversationFieldError::SegmentStartNegative(0)
        );
    }

    #[test]
    fn segment_counts_are_bounded() {
        assert_eq!(
            refusal(validate_segments(Vec::new())),
            ConversationFieldError::NoSegments
        );
        let many = (0..501)
            .map(|i| segment("x", i as f64, i as f64 + 1.0))
            .collect();
        assert_eq!(
            refusal(validate_segments(many)),
            ConversationFieldError::TooManySegments
        );
    }

    #[test]
    fn speaker_ids_come_from_the_label_then_the_field_then_zero() {
        let mut labelled = segment("a", 0.0, 1.0);
        labelled.speaker = Some("SPEAKER_03".into());
        labelled.speaker_id = Some(7);
        let mut named = segment("b", 0.0, 1.0);
        named.speaker = Some("Maria".into());
        named.speaker_id = Some(7);
        let plain = segment("c", 0.0, 1.0);
        let out = validate_segments(vec![labelled, named, plain]).unwrap();
        assert_eq!(out[0].speaker_id, 3);
        assert_eq!(out[1].speaker_id, 7);
        assert_eq!(
            (out[2].speaker.as_str(), out[2].speaker_id),
            ("SPEAKER_00", 0)
        );
    }

    #[test]
    fn speaker_names_prefer_the_user_then_a_real_label() {
        assert_eq!(speaker_name("SPEAKER_01", 1, true, "Alex"), "Alex");
        assert_eq!(speaker_name("Maria", 4, false, "Alex"), "Maria");
        assert_eq!(speaker_name("SPEAKER_02", 2, false, "Alex"), "Speaker 2");
    }

    #[test]
    fn text_times_default_to_five_minutes_and_may_be_equal() {
        let at = parse_datetime("2025-01-01T10:00:00Z").unwrap();
        let times = resolve_times(None, Some(at), DurationRule::Text, at).unwrap();
        assert_eq!(
            times.started_at,
            parse_datetime("2025-01-01T09:55:00Z").unwrap()
        );
        assert!(resolve_times(Some(at), Some(at), DurationRule::Text, at).is_ok());
        assert!(
            resolve_times(
                Some(at),
                Some(at - Duration::seconds(1)),
                DurationRule::Text,
                at
            )
            .is_err()
        );
    }

    #[test]
    fn segment_times_default_to_the_largest_end_and_must_increase() {
        let at = parse_datetime("2025-01-01T10:00:00Z").unwrap();
        let rule = DurationRule::Segments {
            largest_end_micros: 90_500_000,
        };
        let times = resolve_times(Some(at), None, rule, at).unwrap();
        assert_eq!(
            times.finished_at,
            parse_datetime("2025-01-01T10:01:30.5Z").unwrap()
        );
        assert_eq!(
            resolve_times(Some(at), Some(at), rule, at),
            Err(ConversationFieldError::FinishedNotAfterStarted)
        );
    }

    #[test]
    fn durations_beyond_the_calendar_are_refused() {
        let rule = DurationRule::Segments {
            largest_end_micros: i64::MAX,
        };
        assert_eq!(
            resolve_times(None, None, rule, crate::domain::time::now()),
            Err(ConversationFieldError::TimesOutOfRange)
        );
    }

    #[test]
    fn unknown_sources_are_kept_as_unknown() {
        assert_eq!(
            ConversationSource::parse_or_unknown("omi"),
            ConversationSource::Omi
        );
        assert_eq!(
            ConversationSource::parse_or_unknown("walkie_talkie"),
            ConversationSource::Unknown
        );
    }

    #[test]
    fn texts_and_languages_are_bounded() {
        assert_eq!(parse_text("   "), Err(ConversationFieldError::EmptyText));
        assert_eq!(
            parse_text(&"a".repeat(MAX_TEXT_CHARS + 1)),
            Err(ConversationFieldError::TextTooLong)
        );
        assert_eq!(parse_language(None).unwrap(), "en");
        assert_eq!(
            parse_language(Some(&"x".repeat(17))),
            Err(ConversationFieldError::TooLong {
                field: "language",
                max_chars: 16
            })
        );
    }
}
