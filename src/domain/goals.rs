//! Goals and their daily progress history (API.md §7, §11.11).

use chrono::{NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::patch::Patch;
use crate::domain::time::{Timestamp, serde_rfc3339};

pub const MAX_ACTIVE_GOALS: usize = 3;
pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_UNIT_CHARS: usize = 100;
const ID_PREFIX: &str = "goal_";
const ID_HEX_CHARS: usize = 12;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GoalType {
    Boolean,
    #[default]
    Scale,
    Numeric,
}

impl GoalType {
    pub fn as_str(self) -> &'static str {
        match self {
            GoalType::Boolean => "boolean",
            GoalType::Scale => "scale",
            GoalType::Numeric => "numeric",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [GoalType::Boolean, GoalType::Scale, GoalType::Numeric]
            .into_iter()
            .find(|goal_type| goal_type.as_str() == text)
    }
}

/// A goal as stored and as the API returns it (field order as in the contract).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Goal {
    /// `goal_` + 12 hex characters.
    pub id: String,
    pub title: String,
    pub goal_type: GoalType,
    pub target_value: f64,
    pub current_value: f64,
    pub min_value: f64,
    pub max_value: f64,
    pub unit: Option<String>,
    pub is_active: bool,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// The value a goal had at the end of one UTC day (the last value recorded that day).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GoalProgress {
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub value: f64,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Timestamp,
}

/// A fresh random id. 48 random bits make a clash between one user's goals negligible; the
/// store refuses one anyway and creation then draws again.
pub fn new_goal_id() -> String {
    let mut bytes = [0u8; ID_HEX_CHARS / 2];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    format!("{ID_PREFIX}{}", hex::encode(bytes))
}

/// Only ids of the goal shape are worth a lookup (API.md §11.2).
pub fn is_goal_id(id: &str) -> bool {
    id.strip_prefix(ID_PREFIX)
        .is_some_and(|hex| hex.len() == ID_HEX_CHARS && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Why a goal field was refused; the route words it as the contract says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalFieldError {
    EmptyTitle,
    TitleTooLong,
    UnitTooLong,
}

/// Trimmed, 1..500 characters.
pub fn parse_title(raw: &str) -> Result<String, GoalFieldError> {
    let title = raw.trim();
    if title.is_empty() {
        return Err(GoalFieldError::EmptyTitle);
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(GoalFieldError::TitleTooLong);
    }
    Ok(title.to_string())
}

/// Trimmed, at most 100 characters; a blank unit is no unit.
pub fn parse_unit(raw: &str) -> Result<Option<String>, GoalFieldError> {
    let unit = raw.trim();
    if unit.chars().count() > MAX_UNIT_CHARS {
        return Err(GoalFieldError::UnitTooLong);
    }
    Ok((!unit.is_empty()).then(|| unit.to_string()))
}

/// The validated fields of a new goal; defaults as in API.md §7.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGoal {
    pub title: String,
    pub goal_type: GoalType,
    pub target_value: f64,
    pub current_value: f64,
    pub min_value: f64,
    pub max_value: f64,
    pub unit: Option<String>,
}

impl Goal {
    /// A new goal is active; the store retires the oldest active one if this makes four.
    pub fn new(fields: NewGoal, created_at: Timestamp) -> Self {
        Goal {
            id: new_goal_id(),
            title: fields.title,
            goal_type: fields.goal_type,
            target_value: fields.target_value,
            current_value: fields.current_value,
            min_value: fields.min_value,
            max_value: fields.max_value,
            unit: fields.unit,
            is_active: true,
            created_at,
            updated_at: created_at,
        }
    }

    /// Applies a validated PATCH at time `at`.
    pub fn apply(&mut self, changes: &GoalChanges, at: Timestamp) {
        if let Some(title) = &changes.title {
            self.title.clone_from(title);
        }
        let numbers = [
            (changes.target_value, &mut self.target_value),
            (changes.current_value, &mut self.current_value),
            (changes.min_value, &mut self.min_value),
            (changes.max_value, &mut self.max_value),
        ];
        for (change, field) in numbers {
            if let Some(value) = change {
                *field = value;
            }
        }
        match &changes.unit {
            Patch::Absent => {}
            Patch::Null => self.unit = None,
            Patch::Value(unit) => self.unit = Some(unit.clone()),
        }
        self.updated_at = at;
    }

    /// The history entry for the goal's current value at `at`: one per UTC day.
    pub fn progress_at(&self, at: Timestamp) -> GoalProgress {
        GoalProgress {
            date: at.date_naive(),
            value: self.current_value,
            recorded_at: at,
        }
    }
}

/// The validated fields of a PATCH (or of a progress update, which sets `current_value` alone).
/// A blank unit arrives here as `Patch::Null`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoalChanges {
    pub title: Option<String>,
    pub target_value: Option<f64>,
    pub current_value: Option<f64>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub unit: Patch<String>,
}

impl GoalChanges {
    pub fn progress(current_value: f64) -> Self {
        GoalChanges {
            current_value: Some(current_value),
            ..Default::default()
        }
    }

    /// Every change of `current_value` is recorded in the history (API.md §11.11).
    pub fn records_progress(&self) -> bool {
        self.current_value.is_some()
    }
}

/// The first day of a history window of `days` days ending today (today counts as one).
pub fn history_start(today: NaiveDate, days: i64) -> NaiveDate {
    today - TimeDelta::days(days.max(1) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_datetime;

    fn at(text: &str) -> Timestamp {
        parse_datetime(text).unwrap()
    }

    fn new_goal() -> NewGoal {
        NewGoal {
            title: "Ship".into(),
            goal_type: GoalType::default(),
            target_value: 10.0,
            current_value: 0.0,
            min_value: 0.0,
            max_value: 10.0,
            unit: None,
        }
    }

    #[test]
    fn ids_are_goal_and_twelve_hex_characters() {
        let id = new_goal_id();
        assert!(is_goal_id(&id), "{id}");
        assert_ne!(id, new_goal_id());
        assert!(!is_goal_id("goal_12345"));
        assert!(!is_goal_id("goal_1a2b3c4d5e6g"));
        assert!(!is_goal_id("0190f5d2-7b1c-7000-8000-000000000000"));
    }

    #[test]
    fn the_default_goal_type_is_scale_and_unknown_types_are_refused() {
        assert_eq!(GoalType::default(), GoalType::Scale);
        assert_eq!(GoalType::parse("numeric"), Some(GoalType::Numeric));
        assert_eq!(GoalType::parse("percent"), None);
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(parse_title("  Ship v1 ").unwrap(), "Ship v1");
        assert_eq!(parse_title("  "), Err(GoalFieldError::EmptyTitle));
        assert_eq!(
            parse_title(&"x".repeat(501)),
            Err(GoalFieldError::TitleTooLong)
        );
    }

    #[test]
    fn a_blank_unit_is_no_unit() {
        assert_eq!(parse_unit(" km ").unwrap(), Some("km".to_string()));
        assert_eq!(parse_unit("  ").unwrap(), None);
        assert_eq!(
            parse_unit(&"x".repeat(101)),
            Err(GoalFieldError::UnitTooLong)
        );
    }

    #[test]
    fn a_patch_changes_only_the_fields_it_names() {
        let mut goal = Goal::new(
            NewGoal {
                unit: Some("km".into()),
                ..new_goal()
            },
            at("2025-01-01T10:00:00Z"),
        );
        let changes = GoalChanges {
            current_value: Some(2.5),
            unit: Patch::Null,
            ..Default::default()
        };
        goal.apply(&changes, at("2025-01-02T10:00:00Z"));
        assert_eq!(goal.current_value, 2.5);
        assert_eq!(goal.target_value, 10.0);
        assert_eq!(goal.unit, None);
        assert_eq!(goal.updated_at, at("2025-01-02T10:00:00Z"));
        assert!(changes.records_progress());
    }

    #[test]
    fn progress_is_dated_by_its_utc_day() {
        let goal = Goal::new(new_goal(), at("2025-01-01T10:00:00Z"));
        let progress = goal.progress_at(at("2025-01-01T23:30:00-02:00"));
        assert_eq!(progress.date.to_string(), "2025-01-02");
    }

    #[test]
    fn a_history_window_counts_today_as_its_first_day() {
        let today = NaiveDate::from_ymd_opt(2025, 3, 31).unwrap();
        assert_eq!(history_start(today, 1), today);
        assert_eq!(history_start(today, 30).to_string(), "2025-03-02");
    }
}
