//! The portable export: every object of a user as one typed record per line of NDJSON
//! (`{"type": "memory", "data": {...}}`), complete enough to restore the user exactly, in a
//! stable order (by type, then by id), resumable from an opaque cursor.

use serde::{Deserialize, Serialize};

use crate::domain::action_items::ActionItem;
use crate::domain::conversations::{Event, Geolocation, NewSegment};
use crate::domain::goals::{Goal, GoalProgress};
use crate::domain::memories::Memory;
use crate::domain::scope::Scope;
use crate::domain::time::{Timestamp, serde_rfc3339};

/// The record types, in export order. Folders come before the conversations filed in them and
/// conversations before the items extracted from them, so an import in file order never refers
/// to an object it has not written yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExportKind {
    Folder,
    Conversation,
    ActionItem,
    Memory,
    Goal,
    DailySummary,
}

impl ExportKind {
    pub const ALL: [ExportKind; 6] = [
        ExportKind::Folder,
        ExportKind::Conversation,
        ExportKind::ActionItem,
        ExportKind::Memory,
        ExportKind::Goal,
        ExportKind::DailySummary,
    ];

    /// The `type` of its records.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Folder => "folder",
            ExportKind::Conversation => "conversation",
            ExportKind::ActionItem => "action_item",
            ExportKind::Memory => "memory",
            ExportKind::Goal => "goal",
            ExportKind::DailySummary => "daily_summary",
        }
    }

    pub fn parse(text: &str) -> Option<ExportKind> {
        ExportKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The scope a key needs for this type to be in its export: the one that reads the same
    /// objects over the API (folders and daily summaries are read with conversations).
    pub fn read_scope(self) -> Scope {
        match self {
            ExportKind::Folder | ExportKind::Conversation | ExportKind::DailySummary => {
                Scope::ConversationsRead
            }
            ExportKind::ActionItem => Scope::ActionItemsRead,
            ExportKind::Memory => Scope::MemoriesRead,
            ExportKind::Goal => Scope::GoalsRead,
        }
    }
}

/// A folder with everything stored about it; `system_key` names a system folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedFolder {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub color: String,
    pub icon: String,
    pub order: i64,
    pub is_default: bool,
    pub is_system: bool,
    pub system_key: Option<String>,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    pub updated_at: Timestamp,
}

/// A conversation with its transcript and everything needed to process it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedConversation {
    pub id: String,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    pub started_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    pub finished_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    pub updated_at: Timestamp,
    pub title: String,
    pub overview: String,
    pub emoji: String,
    pub category: String,
    pub events: Vec<Event>,
    pub language: String,
    pub source: String,
    pub discarded: bool,
    pub starred: bool,
    pub processed_by: String,
    pub folder_id: Option<String>,
    pub geolocation: Option<Geolocation>,
    /// The text it was created from, when it was created from text.
    pub text: Option<String>,
    pub text_source: Option<String>,
    pub text_source_spec: Option<String>,
    /// Which backend made each part of its processing, as stored.
    pub processing_parts: Option<serde_json::Value>,
    pub transcript_segments: Vec<NewSegment>,
}

/// A goal with its daily values, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedGoal {
    #[serde(flatten)]
    pub goal: Goal,
    pub history: Vec<GoalProgress>,
}

/// A daily summary as stored: `body` is the summary the API returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedDailySummary {
    pub id: String,
    /// The user-local day, `YYYY-MM-DD`.
    pub date: String,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Timestamp,
    /// `generated` or `received`.
    pub origin: String,
    pub body: serde_json::Value,
}

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ExportRecord {
    Folder(ExportedFolder),
    Conversation(Box<ExportedConversation>),
    ActionItem(ActionItem),
    Memory(Memory),
    Goal(Box<ExportedGoal>),
    DailySummary(ExportedDailySummary),
}

impl ExportRecord {
    pub fn kind(&self) -> ExportKind {
        match self {
            ExportRecord::Folder(_) => ExportKind::Folder,
            ExportRecord::Conversation(_) => ExportKind::Conversation,
            ExportRecord::ActionItem(_) => ExportKind::ActionItem,
            ExportRecord::Memory(_) => ExportKind::Memory,
            ExportRecord::Goal(_) => ExportKind::Goal,
            ExportRecord::DailySummary(_) => ExportKind::DailySummary,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            ExportRecord::Folder(f) => &f.id,
            ExportRecord::Conversation(c) => &c.id,
            ExportRecord::ActionItem(a) => &a.id,
            ExportRecord::Memory(m) => &m.id,
            ExportRecord::Goal(g) => &g.goal.id,
            ExportRecord::DailySummary(d) => &d.id,
        }
    }

    /// Where this record sits in the export order.
    pub fn position(&self) -> ExportPosition {
        ExportPosition {
            kind: self.kind(),
            after_id: self.id().to_string(),
        }
    }

    /// The NDJSON line, without its newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("export records serialize")
    }
}

/// The value with every object's keys in sorted order, so that free-form JSON reads the same
/// from both backends (PostgreSQL's `jsonb` keeps its own key order).
pub fn sorted_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sorted_keys(value)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted_keys).collect())
        }
        other => other,
    }
}

/// A place in the export order: just after the record of `kind` with id `after_id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExportPosition {
    pub kind: ExportKind,
    pub after_id: String,
}

impl ExportPosition {
    /// The opaque cursor a client sends back: hex of `type:id`.
    pub fn to_cursor(&self) -> String {
        hex::encode(format!("{}:{}", self.kind.as_str(), self.after_id))
    }

    /// `None` for anything [`ExportPosition::to_cursor`] did not make.
    pub fn from_cursor(cursor: &str) -> Option<ExportPosition> {
        let text = String::from_utf8(hex::decode(cursor.trim()).ok()?).ok()?;
        let (kind, id) = text.split_once(':')?;
        Some(ExportPosition {
            kind: ExportKind::parse(kind)?,
            after_id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let position = ExportPosition {
            kind: ExportKind::ActionItem,
            after_id: "a:b".into(),
        };
        assert_eq!(
            ExportPosition::from_cursor(&position.to_cursor()),
            Some(position)
        );
        assert_eq!(ExportPosition::from_cursor("zz"), None);
        assert_eq!(ExportPosition::from_cursor(&hex::encode("nope:x")), None);
    }

    #[test]
    fn records_are_typed_lines() {
        let line = r#"{"type":"daily_summary","data":{"id":"d1","date":"2026-01-02","created_at":"2026-01-02T03:04:05.123456Z","origin":"generated","body":{"a":1}}}"#;
        let record: ExportRecord = serde_json::from_str(line).unwrap();
        assert_eq!(record.kind(), ExportKind::DailySummary);
        assert_eq!(record.to_line(), line);
    }
}
