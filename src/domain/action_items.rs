//! Action items: tasks, created directly or extracted from conversations (API.md §4).

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::new_id;
use crate::domain::patch::Patch;
use crate::domain::time::{
    Timestamp, parse_date, parse_datetime, serde_rfc3339, serde_rfc3339_option,
};

pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_BATCH_ITEMS: usize = 50;

/// An action item as stored and as the API returns it (field order as in the contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionItem {
    pub id: String,
    pub description: String,
    pub completed: bool,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[serde(with = "serde_rfc3339_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Timestamp>,
    #[serde(with = "serde_rfc3339_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
    pub conversation_id: Option<String>,
}

/// Why a field of an action item was refused. The routes word it: the single and the batch
/// creation name a blank description differently (API.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionItemProblem {
    BlankDescription,
    DescriptionTooLong,
    UnreadableDueAt,
}

impl ActionItemProblem {
    /// The field the problem is about.
    pub fn field(self) -> &'static str {
        match self {
            ActionItemProblem::BlankDescription | ActionItemProblem::DescriptionTooLong => {
                "description"
            }
            ActionItemProblem::UnreadableDueAt => "due_at",
        }
    }

    /// What is wrong, as the tail of a `Validation error: <field> <what>` detail.
    pub fn what(self) -> String {
        match self {
            ActionItemProblem::BlankDescription => "cannot be empty".to_string(),
            ActionItemProblem::DescriptionTooLong => {
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters")
            }
            ActionItemProblem::UnreadableDueAt => {
                "must be a date (YYYY-MM-DD) or an RFC 3339 date-time".to_string()
            }
        }
    }
}

/// Trimmed, 1..500 characters.
pub fn parse_description(raw: &str) -> Result<String, ActionItemProblem> {
    let description = raw.trim();
    if description.is_empty() {
        return Err(ActionItemProblem::BlankDescription);
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ActionItemProblem::DescriptionTooLong);
    }
    Ok(description.to_string())
}

/// A bare date is due at 23:59:00Z that day (API.md §11.3); a date-time keeps its instant.
pub fn parse_due_at(raw: &str) -> Result<Timestamp, ActionItemProblem> {
    if let Some(date) = parse_date(raw) {
        let end_of_day = NaiveTime::from_hms_opt(23, 59, 0).expect("23:59 exists");
        return Ok(date.and_time(end_of_day).and_utc());
    }
    parse_datetime(raw).ok_or(ActionItemProblem::UnreadableDueAt)
}

impl ActionItem {
    /// An item created through the API (no conversation). One created completed was completed
    /// when it was created.
    pub fn new(
        description: String,
        completed: bool,
        due_at: Option<Timestamp>,
        created_at: Timestamp,
    ) -> Self {
        ActionItem {
            id: new_id(),
            description,
            completed,
            created_at,
            updated_at: created_at,
            due_at,
            completed_at: completed.then_some(created_at),
            conversation_id: None,
        }
    }

    /// Applies a validated PATCH at time `at`. Completing keeps an existing `completed_at`, so
    /// repeating `completed: true` does not move it; reopening clears it.
    pub fn apply(&mut self, changes: &ActionItemChanges, at: Timestamp) {
        if let Some(description) = &changes.description {
            self.description.clone_from(description);
        }
        if let Some(completed) = changes.completed {
            self.completed = completed;
            self.completed_at = if completed {
                self.completed_at.or(Some(at))
            } else {
                None
            };
        }
        match changes.due_at {
            Patch::Absent => {}
            Patch::Null => self.due_at = None,
            Patch::Value(due_at) => self.due_at = Some(due_at),
        }
        self.updated_at = at;
    }
}

/// The validated fields of a PATCH.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionItemChanges {
    pub description: Option<String>,
    pub completed: Option<bool>,
    pub due_at: Patch<Timestamp>,
}

/// The filters of the list route. Time bounds are on `created_at`: `from` inclusive, `before`
/// exclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionItemFilter {
    pub conversation_id: Option<String>,
    pub completed: Option<bool>,
    pub created_from: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

impl ActionItemFilter {
    /// A start after the end selects nothing; the store need not be asked.
    pub fn is_empty_range(&self) -> bool {
        matches!((self.created_from, self.created_before), (Some(from), Some(before)) if from >= before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::format;

    fn at(text: &str) -> Timestamp {
        parse_datetime(text).unwrap()
    }

    #[test]
    fn descriptions_are_trimmed_and_bounded() {
        assert_eq!(parse_description("  Call Bob \n").unwrap(), "Call Bob");
        assert_eq!(
            parse_description(" \t "),
            Err(ActionItemProblem::BlankDescription)
        );
        assert!(parse_description(&"é".repeat(500)).is_ok());
        assert_eq!(
            parse_description(&"é".repeat(501)),
            Err(ActionItemProblem::DescriptionTooLong)
        );
    }

    #[test]
    fn a_bare_due_date_is_due_at_one_minute_to_midnight_utc() {
        assert_eq!(
            format(&parse_due_at("2025-12-10").unwrap()),
            "2025-12-10T23:59:00Z"
        );
        assert_eq!(
            format(&parse_due_at("2025-12-10T18:00:00+01:00").unwrap()),
            "2025-12-10T17:00:00Z"
        );
        assert_eq!(
            format(&parse_due_at("2025-12-10T17:00:00").unwrap()),
            "2025-12-10T17:00:00Z"
        );
        assert_eq!(
            parse_due_at("tomorrow"),
            Err(ActionItemProblem::UnreadableDueAt)
        );
    }

    #[test]
    fn an_item_created_completed_was_completed_when_created() {
        let created = at("2025-01-01T10:00:00Z");
        let item = ActionItem::new("a".into(), true, None, created);
        assert_eq!(item.completed_at, Some(created));
        let open = ActionItem::new("a".into(), false, None, created);
        assert_eq!(open.completed_at, None);
    }

    #[test]
    fn completing_again_keeps_the_first_completion_time() {
        let mut item = ActionItem::new("a".into(), true, None, at("2025-01-01T10:00:00Z"));
        let complete = ActionItemChanges {
            completed: Some(true),
            ..Default::default()
        };
        item.apply(&complete, at("2025-01-02T10:00:00Z"));
        assert_eq!(item.completed_at, Some(at("2025-01-01T10:00:00Z")));
        assert_eq!(item.updated_at, at("2025-01-02T10:00:00Z"));
    }

    #[test]
    fn reopening_clears_the_completion_time_and_completing_sets_it_now() {
        let mut item = ActionItem::new("a".into(), true, None, at("2025-01-01T10:00:00Z"));
        let reopen = ActionItemChanges {
            completed: Some(false),
            ..Default::default()
        };
        item.apply(&reopen, at("2025-01-02T10:00:00Z"));
        assert_eq!((item.completed, item.completed_at), (false, None));
        let complete = ActionItemChanges {
            completed: Some(true),
            ..Default::default()
        };
        item.apply(&complete, at("2025-01-03T10:00:00Z"));
        assert_eq!(item.completed_at, Some(at("2025-01-03T10:00:00Z")));
    }

    #[test]
    fn a_null_due_date_clears_it_and_an_absent_one_leaves_it() {
        let due = at("2025-02-01T00:00:00Z");
        let mut item = ActionItem::new("a".into(), false, Some(due), at("2025-01-01T10:00:00Z"));
        let rename = ActionItemChanges {
            description: Some("b".into()),
            ..Default::default()
        };
        item.apply(&rename, at("2025-01-02T10:00:00Z"));
        assert_eq!((item.description.as_str(), item.due_at), ("b", Some(due)));
        let clear = ActionItemChanges {
            due_at: Patch::Null,
            ..Default::default()
        };
        item.apply(&clear, at("2025-01-02T10:00:00Z"));
        assert_eq!(item.due_at, None);
    }

    #[test]
    fn a_start_after_the_end_is_an_empty_range() {
        let filter = ActionItemFilter {
            created_from: Some(at("2025-01-02T00:00:00Z")),
            created_before: Some(at("2025-01-01T00:00:00Z")),
            ..Default::default()
        };
        assert!(filter.is_empty_range());
        assert!(!ActionItemFilter::default().is_empty_range());
    }
}
