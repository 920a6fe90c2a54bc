//! Outbound webhooks: event types, subscriptions and their validation, the bodies each event
//! sends (upstream-compatible where upstream has one, API.md §13.G), Standard Webhooks signing,
//! and the retry rules. No I/O: the store records events, the service delivers them.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::SecondsFormat;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::domain::action_items::ActionItem;
use crate::domain::conversations::Conversation;
use crate::domain::credentials::Secret;
use crate::domain::daily_summaries::DailySummary;
use crate::domain::goals::Goal;
use crate::domain::memories::Memory;
use crate::domain::time::{Timestamp, serde_rfc3339, serde_rfc3339_option};

/// At most this many subscriptions per user (issue: "At most 20 per user").
pub const MAX_SUBSCRIPTIONS_PER_USER: usize = 20;
/// Longest accepted URL.
pub const MAX_URL_CHARS: usize = 2048;
/// A response body is read up to this many bytes, the rest is dropped.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How long request bodies of finished deliveries are kept.
pub const BODY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Failures over this long disable the endpoint (`OMI_WEBHOOK_DISABLE_AFTER_SECONDS`).
pub const DISABLE_AFTER: Duration = Duration::from_secs(72 * 3600);
/// A delivery is retried for at most this long after its event.
pub const RETRY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The default delays between attempts: upstream's 1 s, 5 s, 30 s first (the floor), then
/// growing to 8 h, about 23.7 h in all, so the last attempt lands inside the 24 h window.
pub const DEFAULT_RETRY_DELAYS: [u64; 11] = [
    1, 5, 30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800, 28_800,
];

/// What happened, as the `webhook-event` type names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "conversation.created")]
    ConversationCreated,
    #[serde(rename = "conversation.updated")]
    ConversationUpdated,
    #[serde(rename = "conversation.deleted")]
    ConversationDeleted,
    #[serde(rename = "memory.created")]
    MemoryCreated,
    #[serde(rename = "memory.updated")]
    MemoryUpdated,
    #[serde(rename = "memory.deleted")]
    MemoryDeleted,
    #[serde(rename = "action_item.created")]
    ActionItemCreated,
    #[serde(rename = "action_item.updated")]
    ActionItemUpdated,
    #[serde(rename = "action_item.deleted")]
    ActionItemDeleted,
    #[serde(rename = "goal.updated")]
    GoalUpdated,
    #[serde(rename = "day_summary")]
    DaySummary,
    /// Sent only by `POST .../test`; never subscribed to.
    #[serde(rename = "ping")]
    Ping,
}

impl EventType {
    /// The types a subscription may ask for.
    pub const SUBSCRIBABLE: [EventType; 11] = [
        EventType::ConversationCreated,
        EventType::ConversationUpdated,
        EventType::ConversationDeleted,
        EventType::MemoryCreated,
        EventType::MemoryUpdated,
        EventType::MemoryDeleted,
        EventType::ActionItemCreated,
        EventType::ActionItemUpdated,
        EventType::ActionItemDeleted,
        EventType::GoalUpdated,
        EventType::DaySummary,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ConversationCreated => "conversation.created",
            EventType::ConversationUpdated => "conversation.updated",
            EventType::ConversationDeleted => "conversation.deleted",
            EventType::MemoryCreated => "memory.created",
            EventType::MemoryUpdated => "memory.updated",
            EventType::MemoryDeleted => "memory.deleted",
            EventType::ActionItemCreated => "action_item.created",
            EventType::ActionItemUpdated => "action_item.updated",
            EventType::ActionItemDeleted => "action_item.deleted",
            EventType::GoalUpdated => "goal.updated",
            EventType::DaySummary => "day_summary",
            EventType::Ping => "ping",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        if text == "ping" {
            return Some(EventType::Ping);
        }
        EventType::SUBSCRIBABLE
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// The detail of a 422 for an unknown event name.
pub fn invalid_events_detail() -> String {
    let names: Vec<&str> = EventType::SUBSCRIBABLE.iter().map(|e| e.as_str()).collect();
    format!("Invalid events. Available: {}", names.join(", "))
}

/// Optional narrowing of the events a subscription receives. A filter applies to the events
/// whose object carries that field (folder and source: conversations; category: conversations
/// and memories); other events pass it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SubscriptionFilters {
    pub folder_id: Option<String>,
    pub category: Option<String>,
    pub source: Option<String>,
}

/// What an event's object says about the filter fields (`None`: not applicable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventAttributes {
    pub folder_id: Option<String>,
    pub category: Option<String>,
    pub source: Option<String>,
}

impl SubscriptionFilters {
    pub fn matches(&self, attributes: &EventAttributes) -> bool {
        fn passes(filter: &Option<String>, value: &Option<String>) -> bool {
            match (filter, value) {
                (Some(wanted), Some(actual)) => wanted == actual,
                _ => true,
            }
        }
        passes(&self.folder_id, &attributes.folder_id)
            && passes(&self.category, &attributes.category)
            && passes(&self.source, &attributes.source)
    }
}

/// A subscription as the API shows it (the secret only on creation and rotation).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    #[schema(value_type = Vec<String>)]
    pub events: Vec<EventType>,
    pub filters: SubscriptionFilters,
    pub active: bool,
    /// Why the server switched the subscription off (72 h of failed deliveries), if it did.
    pub disabled_reason: Option<String>,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl Subscription {
    pub fn wants(&self, event: EventType, attributes: &EventAttributes) -> bool {
        self.active && self.events.contains(&event) && self.filters.matches(attributes)
    }
}

/// A subscription with the secret that signs its deliveries.
#[derive(Debug, Clone)]
pub struct SigningSubscription {
    pub subscription: Subscription,
    pub secret: Secret,
}

/// Why a subscription's fields were refused; the routes word it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookFieldError {
    UrlInvalid,
    UrlScheme,
    UrlTooLong,
    EventsEmpty,
    EventUnknown(String),
}

/// A URL a subscription may hold: absolute `http` or `https` with a host, no credentials.
/// Where it points is checked at every delivery (after name resolution), not here.
pub fn validate_url(raw: &str) -> Result<String, WebhookFieldError> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(WebhookFieldError::UrlTooLong);
    }
    let url = reqwest::Url::parse(raw).map_err(|_| WebhookFieldError::UrlInvalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhookFieldError::UrlScheme);
    }
    if url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() {
        return Err(WebhookFieldError::UrlInvalid);
    }
    Ok(url.to_string())
}

/// The event names of a request; duplicates collapse, order kept.
pub fn parse_events<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<EventType>, WebhookFieldError> {
    let mut events = Vec::new();
    for name in names {
        let kind = EventType::parse(name.trim())
            .filter(|kind| *kind != EventType::Ping)
            .ok_or_else(|| WebhookFieldError::EventUnknown(name.to_string()))?;
        if !events.contains(&kind) {
            events.push(kind);
        }
    }
    if events.is_empty() {
        return Err(WebhookFieldError::EventsEmpty);
    }
    Ok(events)
}

/// A fresh signing secret in the Standard Webhooks form: `whsec_` and base64 of 32 random bytes.
pub fn generate_secret() -> Secret {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    Secret::new(format!("whsec_{}", BASE64.encode(bytes)))
}

/// The HMAC key of a `whsec_` secret (base64 after the prefix); another secret is its bytes.
fn signing_key(secret: &Secret) -> Vec<u8> {
    let raw = secret.expose();
    raw.strip_prefix("whsec_")
        .and_then(|encoded| BASE64.decode(encoded).ok())
        .unwrap_or_else(|| raw.as_bytes().to_vec())
}

/// `webhook-signature` per the Standard Webhooks specification: `v1,` and the base64
/// HMAC-SHA256 of `<id>.<timestamp>.<body>`.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing_key(secret))
        .expect("HMAC accepts a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// Python's `isoformat()` of a UTC time: `+00:00`, microseconds only when non-zero (G.1).
pub fn python_time(ts: &Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, false)
        .replace(".000000+", "+")
}

/// Rewrites the API's `Z` timestamps in `value` to [`python_time`]: fields named `*_at`,
/// `start` and `timestamp`, at any depth.
pub fn to_python_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                let is_time = key.ends_with("_at") || key == "start" || key == "timestamp";
                match field {
                    Value::String(text) if is_time => {
                        if let Some(ts) = crate::domain::time::parse_datetime(text) {
                            *text = python_time(&ts);
                        }
                    }
                    other => to_python_times(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_python_times),
        _ => {}
    }
}

/// One change to deliver, with what it needs to render its body.
#[derive(Debug, Clone)]
pub enum Change {
    /// `conversation` carries its transcript and folder name.
    Conversation {
        created: bool,
        conversation: Box<Conversation>,
        updated_at: Timestamp,
    },
    ConversationDeleted {
        id: String,
        at: Timestamp,
    },
    Memory {
        created: bool,
        memory: Box<Memory>,
    },
    MemoryDeleted {
        id: String,
        at: Timestamp,
    },
    ActionItem {
        created: bool,
        item: Box<ActionItem>,
    },
    ActionItemDeleted {
        id: String,
        at: Timestamp,
    },
    Goal(Box<Goal>),
    DaySummary(Box<DailySummary>),
}

impl Change {
    pub fn event_type(&self) -> EventType {
        match self {
            Change::Conversation { created: true, .. } => EventType::ConversationCreated,
            Change::Conversation { created: false, .. } => EventType::ConversationUpdated,
            Change::ConversationDeleted { .. } => EventType::ConversationDeleted,
            Change::Memory { created: true, .. } => EventType::MemoryCreated,
            Change::Memory { created: false, .. } => EventType::MemoryUpdated,
            Change::MemoryDeleted { .. } => EventType::MemoryDeleted,
            Change::ActionItem { created: true, .. } => EventType::ActionItemCreated,
            Change::ActionItem { created: false, .. } => EventType::ActionItemUpdated,
            Change::ActionItemDeleted { .. } => EventType::ActionItemDeleted,
            Change::Goal(_) => EventType::GoalUpdated,
            Change::DaySummary(_) => EventType::DaySummary,
        }
    }

    /// Deliveries that share a key reach an endpoint in the order they were recorded: one key
    /// per object (a conversation's events are in order).
    pub fn ordering_key(&self) -> String {
        match self {
            Change::Conversation { conversation, .. } => {
                format!("conversation:{}", conversation.id)
            }
            Change::ConversationDeleted { id, .. } => format!("conversation:{id}"),
            Change::Memory { memory, .. } => format!("memory:{}", memory.id),
            Change::MemoryDeleted { id, .. } => format!("memory:{id}"),
            Change::ActionItem { item, .. } => format!("action_item:{}", item.id),
            Change::ActionItemDeleted { id, .. } => format!("action_item:{id}"),
            Change::Goal(goal) => format!("goal:{}", goal.id),
            Change::DaySummary(summary) => format!("day_summary:{}", summary.date),
        }
    }

    pub fn attributes(&self) -> EventAttributes {
        match self {
            Change::Conversation { conversation, .. } => EventAttributes {
                folder_id: Some(conversation.folder_id.clone().unwrap_or_default()),
                category: Some(conversation.structured.category.clone()),
                source: Some(conversation.source.clone()),
            },
            Change::Memory { memory, .. } => EventAttributes {
                category: serde_json::to_value(memory.category)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string)),
                ..Default::default()
            },
            _ => EventAttributes::default(),
        }
    }

    /// The JSON body, with timestamps in upstream's `+00:00` form.
    pub fn body(&self, user_id: &str) -> Value {
        let mut body = match self {
            Change::Conversation {
                conversation,
                updated_at,
                ..
            } => conversation_body(conversation, *updated_at),
            Change::Memory { memory, .. } => json!(memory),
            Change::ActionItem { item, .. } => json!(item),
            Change::Goal(goal) => json!(goal),
            Change::DaySummary(summary) => return day_summary_body(summary, user_id),
            Change::ConversationDeleted { id, at }
            | Change::MemoryDeleted { id, at }
            | Change::ActionItemDeleted { id, at } => {
                json!({"id": id, "deleted": true, "deleted_at": crate::domain::time::format(at)})
            }
        };
        to_python_times(&mut body);
        body
    }
}

/// The body of a `ping` (`POST .../test`).
pub fn ping_body(subscription_id: &str, at: &Timestamp) -> Value {
    json!({"type": "ping", "webhook_id": subscription_id, "timestamp": python_time(at)})
}

/// The conversation object exactly as upstream's `memory_created` webhook sends it (§13.G.2),
/// every field, constants where omi-server has no such concept, plus `processed_by`.
pub fn conversation_body(conversation: &Conversation, updated_at: Timestamp) -> Value {
    let items: Vec<Value> = conversation
        .structured
        .action_items
        .iter()
        .map(|item| {
            json!({
                "id": item.id,
                "description": item.description,
                "completed": item.completed,
                "created_at": crate::domain::time::format(&item.created_at),
                "updated_at": crate::domain::time::format(&item.updated_at),
                "due_at": item.due_at.as_ref().map(crate::domain::time::format),
                "completed_at": item.completed_at.as_ref().map(crate::domain::time::format),
                "conversation_id": item.conversation_id,
                "capture_kind": null, "capture_confidence": null, "ownership_confidence": null,
                "capture_owner": null, "owner_name": null, "context": null,
                "due_certainty": null, "concrete_deliverable": null, "candidate_action": null,
                "target_task_id": null, "source_segment_ids": [],
            })
        })
        .collect();
    let segments: Vec<Value> = conversation
        .transcript_segments
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|segment| {
            json!({
                "id": segment.id, "text": segment.text, "speaker": segment.speaker,
                "speaker_id": segment.speaker_id, "is_user": segment.is_user,
                "person_id": segment.person_id, "start": segment.start, "end": segment.end,
                "translations": [], "speaker_name": segment.speaker_name,
            })
        })
        .collect();
    let geolocation = conversation.geolocation.as_ref().map(|g| {
        let mut value = json!(g);
        if let Value::Object(map) = &mut value {
            for key in ["google_place_id", "address", "location_type"] {
                map.entry(key).or_insert(Value::Null);
            }
        }
        value
    });
    let format = crate::domain::time::format;
    let mut body = Map::new();
    let mut put = |key: &str, value: Value| {
        body.insert(key.to_string(), value);
    };
    put("id", json!(conversation.id));
    put("created_at", json!(format(&conversation.created_at)));
    put("updated_at", json!(format(&updated_at)));
    put("started_at", json!(format(&conversation.started_at)));
    put("finished_at", json!(format(&conversation.finished_at)));
    put("source", json!(conversation.source));
    put("language", json!(conversation.language));
    put(
        "structured",
        json!({
            "title": conversation.structured.title,
            "overview": conversation.structured.overview,
            "emoji": conversation.structured.emoji,
            "category": conversation.structured.category,
            "sections": [],
            "action_items": items,
            "events": conversation.structured.events,
        }),
    );
    put("transcript_segments", json!(segments));
    put("transcript_segments_compressed", json!(false));
    put("geolocation", json!(geolocation));
    put("photos", json!([]));
    put("audio_files", json!([]));
    put("conversation_audio", Value::Null);
    put("private_cloud_sync_enabled", json!(false));
    put("apps_results", json!([]));
    put("suggested_summarization_apps", json!([]));
    put("plugins_results", json!([]));
    put("external_data", Value::Null);
    put("app_id", Value::Null);
    put("discarded", json!(conversation.discarded));
    put("visibility", json!("private"));
    put("starred", json!(conversation.starred));
    put("processing_memory_id", Value::Null);
    put("processing_conversation_id", Value::Null);
    put("status", json!("completed"));
    put("is_locked", json!(false));
    put("deferred", json!(false));
    put("data_protection_level", Value::Null);
    put("folder_id", json!(conversation.folder_id));
    put("call_id", Value::Null);
    put("calendar_event", Value::Null);
    put("client_device_id", Value::Null);
    put("client_platform", Value::Null);
    put("folder_name", json!(conversation.folder_name));
    put("processed_by", json!(conversation.processed_by));
    Value::Object(body)
}

/// Upstream's `day_summary` body (§13.G.4): the legacy Python rendering, the JSON object, the
/// uid and the send time. `created_at` here is when the event was recorded.
pub fn day_summary_body(summary: &DailySummary, user_id: &str) -> Value {
    let mut summary_json = json!(summary);
    to_python_times(&mut summary_json);
    json!({
        "summary": python_literal(&summary_json),
        "summary_json": summary_json,
        "uid": user_id,
        "created_at": python_time(&crate::domain::time::now()),
    })
}

/// A JSON value as Python's `repr` of the same dict prints it: `'…'` strings, `True`, `False`,
/// `None`, keys in object order.
pub fn python_literal(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => python_string(text),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_literal).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", python_string(k), python_literal(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `repr` of a str: single quotes unless the text holds one and no double quote.
fn python_string(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// What one attempt's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptVerdict {
    Delivered,
    /// Try again later (3xx, 5xx, 408, 429, timeouts, connection errors).
    Retry,
    /// Final failure: a 4xx other than 408 and 429 (upstream's rule).
    Refused,
}

/// The verdict for an HTTP status; `None` (no answer: timeout, connection refused) is retried.
pub fn verdict(status: Option<u16>) -> AttemptVerdict {
    match status {
        Some(200..=299) => AttemptVerdict::Delivered,
        Some(408 | 429) | None => AttemptVerdict::Retry,
        Some(400..=499) => AttemptVerdict::Refused,
        Some(_) => AttemptVerdict::Retry,
    }
}

/// When to try again after `attempts` attempts (1 after the first), or `None` when the
/// schedule or the 24 h window is used up. `jitter` in `[0, 1)` spreads the delay by ±20 %;
/// a `Retry-After` longer than the delay wins.
pub fn next_attempt(
    schedule: &[Duration],
    attempts: u32,
    jitter: f64,
    retry_after: Option<Duration>,
    event_at: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    let base = *schedule.get(attempts.saturating_sub(1) as usize)?;
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    let mut delay = base.mul_f64(factor);
    if let Some(asked) = retry_after {
        delay = delay.max(asked);
    }
    let at = now + chrono::TimeDelta::from_std(delay).ok()?;
    let deadline = event_at + chrono::TimeDelta::from_std(RETRY_WINDOW).ok()?;
    (at <= deadline).then_some(crate::domain::time::truncate_to_micros(at))
}

/// Why a subscription was switched off after failing for `window` without a success.
pub fn disabled_reason(window: Duration, last_error: &str) -> String {
    let seconds = window.as_secs();
    let span = match seconds {
        s if s >= 3600 && s.is_multiple_of(3600) => format!("{} hours", s / 3600),
        s if s >= 60 && s.is_multiple_of(60) => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    };
    format!("deliveries failed for {span}; last error: {last_error}")
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Delivery {
    /// Also the `webhook-id` and `Idempotency-Key` headers: the same on every attempt.
    pub id: String,
    pub webhook_id: String,
    #[schema(value_type = String)]
    pub event: EventType,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub response_status: Option<u16>,
    pub latency_ms: Option<u64>,
    #[serde(serialize_with = "serde_rfc3339_option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    pub error: Option<String>,
    /// Kept 7 days after the delivery ends; `null` after that.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(serialize_with = "serde_rfc3339_option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_datetime;

    #[test]
    fn signatures_follow_the_standard_webhooks_test_vector() {
        // The specification's example (standard-webhooks/spec).
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn python_times_drop_zero_microseconds_and_use_an_offset() {
        let whole = parse_datetime("2026-12-07T14:02:10Z").unwrap();
        assert_eq!(python_time(&whole), "2026-12-07T14:02:10+00:00");
        let fraction = parse_datetime("2026-12-07T14:08:42.118204Z").unwrap();
        assert_eq!(python_time(&fraction), "2026-12-07T14:08:42.118204+00:00");
        let millis = parse_datetime("2026-12-07T14:08:42.5Z").unwrap();
        assert_eq!(python_time(&millis), "2026-12-07T14:08:42.500000+00:00");
    }

    #[test]
    fn python_literals_read_like_repr() {
        let value = json!({"a": "it's", "b": true, "c": null, "d": [1, 2.5], "e": "x'y\"z"});
        assert_eq!(
            python_literal(&value),
            r#"{'a': "it's", 'b': True, 'c': None, 'd': [1, 2.5], 'e': 'x\'y"z'}"#
        );
    }

    #[test]
    fn four_hundreds_are_final_except_408_and_429() {
        assert_eq!(verdict(Some(204)), AttemptVerdict::Delivered);
        assert_eq!(verdict(Some(410)), AttemptVerdict::Refused);
        assert_eq!(verdict(Some(400)), AttemptVerdict::Refused);
        assert_eq!(verdict(Some(408)), AttemptVerdict::Retry);
        assert_eq!(verdict(Some(429)), AttemptVerdict::Retry);
        assert_eq!(verdict(Some(302)), AttemptVerdict::Retry);
        assert_eq!(verdict(Some(503)), AttemptVerdict::Retry);
        assert_eq!(verdict(None), AttemptVerdict::Retry);
    }

    #[test]
    fn the_default_schedule_spans_the_day_and_ends_inside_it() {
        let schedule: Vec<Duration> = DEFAULT_RETRY_DELAYS
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect();
        let total: u64 = DEFAULT_RETRY_DELAYS.iter().sum();
        assert!(total > 20 * 3600 && total < 24 * 3600, "{total}");
        let start = parse_datetime("2026-01-01T00:00:00Z").unwrap();
        let mut now = start;
        let mut attempts = 1;
        while let Some(next) = next_attempt(&schedule, attempts, 0.5, None, start, now) {
            assert!(next > now);
            now = next;
            attempts += 1;
        }
        assert_eq!(attempts, 12, "an attempt now and eleven retries");
        // Retry-After wins when longer, and is held to the window.
        let next = next_attempt(
            &schedule,
            1,
            0.0,
            Some(Duration::from_secs(60)),
            start,
            start,
        );
        assert_eq!(next, Some(start + chrono::TimeDelta::seconds(60)));
        assert_eq!(
            next_attempt(
                &schedule,
                1,
                0.0,
                Some(Duration::from_secs(90_000)),
                start,
                start
            ),
            None
        );
    }

    #[test]
    fn the_disabled_reason_names_the_window_and_the_last_error() {
        assert_eq!(
            disabled_reason(DISABLE_AFTER, "HTTP 500"),
            "deliveries failed for 72 hours; last error: HTTP 500"
        );
        assert_eq!(
            disabled_reason(Duration::from_secs(1), "timed out"),
            "deliveries failed for 1 seconds; last error: timed out"
        );
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(validate_url("https://hooks.example.net/x?token=1").is_ok());
        assert_eq!(
            validate_url("ftp://x.net/"),
            Err(WebhookFieldError::UrlScheme)
        );
        assert_eq!(
            validate_url("not a url"),
            Err(WebhookFieldError::UrlInvalid)
        );
        assert_eq!(
            validate_url("https://user:pw@x.net/"),
            Err(WebhookFieldError::UrlInvalid)
        );
    }

    #[test]
    fn filters_apply_only_where_the_object_has_the_field() {
        let filters = SubscriptionFilters {
            category: Some("work".into()),
            ..Default::default()
        };
        assert!(filters.matches(&EventAttributes::default()));
        assert!(!filters.matches(&EventAttributes {
            category: Some("health".into()),
            ..Default::default()
        }));
    }
}
