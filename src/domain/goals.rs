//! Goals and their daily progress history (API.md §7, §11.11).

use chrono::{NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::patch::Patch;
use crate::domain::time::{Timestamp, serde_rfc3339, serde_rfc3339_option};

pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_UNIT_CHARS: usize = 100;
pub const MAX_TEXT_CHARS: usize = 2000;
pub const MAX_CRITERIA: usize = 20;
pub const MAX_CRITERION_CHARS: usize = 500;
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

/// Where a goal is in its life (API.md §13.F). `achieved` and `abandoned` end it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GoalStatus {
    #[default]
    Background,
    Focused,
    Paused,
    Achieved,
    Abandoned,
}

impl GoalStatus {
    pub const ALL: [GoalStatus; 5] = [
        GoalStatus::Background,
        GoalStatus::Focused,
        GoalStatus::Paused,
        GoalStatus::Achieved,
        GoalStatus::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GoalStatus::Background => "background",
            GoalStatus::Focused => "focused",
            GoalStatus::Paused => "paused",
            GoalStatus::Achieved => "achieved",
            GoalStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Active means not ended.
    pub fn is_active(self) -> bool {
        !matches!(self, GoalStatus::Achieved | GoalStatus::Abandoned)
    }
}

/// Who proposed a goal; unknown stored values read as `imported`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GoalSource {
    #[default]
    User,
    AiSuggested,
    Imported,
}

impl GoalSource {
    pub fn as_str(self) -> &'static str {
        match self {
            GoalSource::User => "user",
            GoalSource::AiSuggested => "ai_suggested",
            GoalSource::Imported => "imported",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            GoalSource::User,
            GoalSource::AiSuggested,
            GoalSource::Imported,
        ]
        .into_iter()
        .find(|source| source.as_str() == text)
    }

    pub fn read(text: &str) -> Self {
        Self::parse(text).unwrap_or(GoalSource::Imported)
    }
}

/// A goal's measure; a goal without one is qualitative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GoalMetric {
    #[serde(rename = "type")]
    pub metric_type: GoalType,
    pub current: f64,
    pub target: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub unit: Option<String>,
}

impl GoalMetric {
    /// A metric made by setting values on a qualitative goal: every unset value 0.
    pub fn empty(metric_type: GoalType) -> Self {
        GoalMetric {
            metric_type,
            current: 0.0,
            target: 0.0,
            min: None,
            max: None,
            unit: None,
        }
    }
}

/// A goal as stored and as the API returns it (field order as upstream's `DeveloperGoal`). The
/// flat metric fields are aliases of `metric`, always filled (qualitative: scale 0/0, 0..10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Goal {
    /// `goal_` + 12 hex characters.
    pub id: String,
    /// The same as `id`.
    pub goal_id: String,
    pub title: String,
    pub desired_outcome: String,
    pub why_it_matters: Option<String>,
    pub success_criteria: Vec<String>,
    #[serde(with = "serde_rfc3339_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub horizon_at: Option<Timestamp>,
    pub status: GoalStatus,
    pub source: GoalSource,
    /// Always null: omi-server has no focus ranking.
    pub focus_rank: Option<i64>,
    pub metric: Option<GoalMetric>,
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
    /// When the goal was achieved or abandoned.
    #[serde(with = "serde_rfc3339_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
}

/// The value a goal had at the end of one UTC day (the last value recorded that day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    EmptyDesiredOutcome,
    DesiredOutcomeTooLong,
    WhyItMattersTooLong,
    TooManyCriteria,
    CriterionTooLong,
}

/// `desired_outcome`: trimmed, 1..2000 characters.
pub fn parse_desired_outcome(raw: &str) -> Result<String, GoalFieldError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(GoalFieldError::EmptyDesiredOutcome);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(GoalFieldError::DesiredOutcomeTooLong);
    }
    Ok(text.to_string())
}

/// `why_it_matters`: trimmed, at most 2000 characters; blank is none.
pub fn parse_why_it_matters(raw: &str) -> Result<Option<String>, GoalFieldError> {
    let text = raw.trim();
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(GoalFieldError::WhyItMattersTooLong);
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// `success_criteria`: blank items dropped, the rest trimmed; at most 20 of 500 characters.
pub fn parse_success_criteria(raw: &[String]) -> Result<Vec<String>, GoalFieldError> {
    let criteria: Vec<String> = raw
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    if criteria.len() > MAX_CRITERIA {
        return Err(GoalFieldError::TooManyCriteria);
    }
    if criteria
        .iter()
        .any(|c| c.chars().count() > MAX_CRITERION_CHARS)
    {
        return Err(GoalFieldError::CriterionTooLong);
    }
    Ok(criteria)
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

/// The validated fields of a new goal (API.md §13.F).
#[derive(Debug, Clone, PartialEq)]
pub struct NewGoal {
    pub title: String,
    pub desired_outcome: String,
    pub why_it_matters: Option<String>,
    pub success_criteria: Vec<String>,
    pub horizon_at: Option<Timestamp>,
    pub status: GoalStatus,
    pub source: GoalSource,
    pub metric: Option<GoalMetric>,
}

impl Goal {
    /// A goal from its stored parts, with its aliases filled in.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        id: String,
        fields: NewGoal,
        created_at: Timestamp,
        updated_at: Timestamp,
        ended_at: Option<Timestamp>,
    ) -> Self {
        let mut goal = Goal {
            goal_id: id.clone(),
            id,
            title: fields.title,
            desired_outcome: fields.desired_outcome,
            why_it_matters: fields.why_it_matters,
            success_criteria: fields.success_criteria,
            horizon_at: fields.horizon_at,
            status: fields.status,
            source: fields.source,
            focus_rank: None,
            metric: fields.metric,
            goal_type: GoalType::Scale,
            target_value: 0.0,
            current_value: 0.0,
            min_value: 0.0,
            max_value: 10.0,
            unit: None,
            is_active: true,
            created_at,
            updated_at,
            ended_at,
        };
        goal.refresh();
        goal
    }

    /// A new goal; no other goal changes (API.md §13.F.2).
    pub fn new(fields: NewGoal, created_at: Timestamp) -> Self {
        Self::from_parts(new_goal_id(), fields, created_at, created_at, None)
    }

    /// The goal with its derived fields recomputed from the stored ones, as the store reads
    /// it back (an imported goal's flat aliases may disagree with its metric).
    pub fn refreshed(mut self) -> Self {
        self.refresh();
        self
    }

    /// Recomputes what derives from the stored fields: the flat aliases and `is_active`.
    fn refresh(&mut self) {
        self.goal_id.clone_from(&self.id);
        self.is_active = self.status.is_active();
        match &self.metric {
            None => {
                self.goal_type = GoalType::Scale;
                self.current_value = 0.0;
                self.target_value = 0.0;
                self.min_value = 0.0;
                self.max_value = 10.0;
                self.unit = None;
            }
            Some(metric) => {
                self.goal_type = metric.metric_type;
                self.current_value = metric.current;
                self.target_value = metric.target;
                self.min_value = metric.min.unwrap_or(0.0);
                self.max_value = metric.max.unwrap_or(metric.target.max(10.0));
                self.unit.clone_from(&metric.unit);
            }
        }
    }

    /// Applies a validated PATCH at time `at`. A metric value set on a qualitative goal creates
    /// a metric (scale from PATCH, numeric from a progress update), its unset values 0.
    pub fn apply(&mut self, changes: &GoalChanges, at: Timestamp) {
        if let Some(title) = &changes.title {
            self.title.clone_from(title);
        }
        if let Some(outcome) = &changes.desired_outcome {
            self.desired_outcome.clone_from(outcome);
        }
        match &changes.why_it_matters {
            Patch::Absent => {}
            Patch::Null => self.why_it_matters = None,
            Patch::Value(why) => self.why_it_matters = Some(why.clone()),
        }
        if let Some(criteria) = &changes.success_criteria {
            self.success_criteria.clone_from(criteria);
        }
        match changes.horizon_at {
            Patch::Absent => {}
            Patch::Null => self.horizon_at = None,
            Patch::Value(at) => self.horizon_at = Some(at),
        }
        let sets_metric = changes.target_value.is_some()
            || changes.current_value.is_some()
            || changes.min_value.is_some()
            || changes.max_value.is_some()
            || matches!(changes.unit, Patch::Value(_));
        if sets_metric && self.metric.is_none() {
            let metric_type = if changes.from_progress {
                GoalType::Numeric
            } else {
                GoalType::Scale
            };
            self.metric = Some(GoalMetric::empty(metric_type));
        }
        if let Some(metric) = &mut self.metric {
            if let Some(target) = changes.target_value {
                metric.target = target;
            }
            if let Some(current) = changes.current_value {
                metric.current = current;
            }
            if let Some(min) = changes.min_value {
                metric.min = Some(min);
            }
            if let Some(max) = changes.max_value {
                metric.max = Some(max);
            }
            match &changes.unit {
                Patch::Absent => {}
                Patch::Null => metric.unit = None,
                Patch::Value(unit) => metric.unit = Some(unit.clone()),
            }
        }
        if let Some(status) = changes.status
            && status != self.status
        {
            self.status = status;
            self.ended_at = (!status.is_active()).then_some(at);
        }
        self.updated_at = at;
        self.refresh();
    }

    /// Ends the goal as abandoned (DELETE, API.md §13.K.6).
    pub fn abandon(&mut self, at: Timestamp) {
        let changes = GoalChanges {
            status: Some(GoalStatus::Abandoned),
            ..Default::default()
        };
        self.apply(&changes, at);
    }

    /// The history entry for the goal's current value at `at`: one per UTC day.
    pub fn progress_at(&self, at: Timestamp) -> GoalProgress {
        GoalProgress {
            date: at.date_naive(),
            value: self.current_value,
            recorded_at: at,
        }
    }

    /// The stored fields, for writing back.
    pub fn fields(&self) -> NewGoal {
        NewGoal {
            title: self.title.clone(),
            desired_outcome: self.desired_outcome.clone(),
            why_it_matters: self.why_it_matters.clone(),
            success_criteria: self.success_criteria.clone(),
            horizon_at: self.horizon_at,
            status: self.status,
            source: self.source,
            metric: self.metric.clone(),
        }
    }
}

/// The validated fields of a PATCH (or of a progress update, which sets `current_value` alone).
/// A blank unit arrives here as `Patch::Null`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoalChanges {
    pub title: Option<String>,
    pub desired_outcome: Option<String>,
    pub why_it_matters: Patch<String>,
    pub success_criteria: Option<Vec<String>>,
    pub horizon_at: Patch<Timestamp>,
    pub status: Option<GoalStatus>,
    pub target_value: Option<f64>,
    pub current_value: Option<f64>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub unit: Patch<String>,
    /// Set by the progress route: a metric it creates is numeric.
    pub from_progress: bool,
}

impl GoalChanges {
    pub fn progress(current_value: f64) -> Self {
        GoalChanges {
            current_value: Some(current_value),
            from_progress: true,
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
            desired_outcome: "Ship".into(),
            why_it_matters: None,
            success_criteria: Vec::new(),
            horizon_at: None,
            status: GoalStatus::Background,
            source: GoalSource::User,
            metric: Some(GoalMetric {
                target: 10.0,
                ..GoalMetric::empty(GoalType::Scale)
            }),
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
        let mut fields = new_goal();
        fields.metric.as_mut().unwrap().unit = Some("km".into());
        let mut goal = Goal::new(fields, at("2025-01-01T10:00:00Z"));
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
    fn qualitative_goals_have_default_aliases_and_progress_creates_a_numeric_metric() {
        let mut goal = Goal::new(
            NewGoal {
                metric: None,
                ..new_goal()
            },
            at("2025-01-01T10:00:00Z"),
        );
        assert_eq!(
            (
                goal.goal_type,
                goal.current_value,
                goal.target_value,
                goal.min_value,
                goal.max_value
            ),
            (GoalType::Scale, 0.0, 0.0, 0.0, 10.0)
        );
        assert_eq!(goal.goal_id, goal.id);
        goal.apply(&GoalChanges::progress(3.0), at("2025-01-02T10:00:00Z"));
        assert_eq!(
            goal.metric,
            Some(GoalMetric {
                current: 3.0,
                ..GoalMetric::empty(GoalType::Numeric)
            })
        );
        assert_eq!((goal.current_value, goal.max_value), (3.0, 10.0));
        let mut other = Goal::new(
            NewGoal {
                metric: None,
                ..new_goal()
            },
            at("2025-01-01T10:00:00Z"),
        );
        other.apply(
            &GoalChanges {
                target_value: Some(20.0),
                ..Default::default()
            },
            at("2025-01-02T10:00:00Z"),
        );
        assert_eq!(other.metric.as_ref().unwrap().metric_type, GoalType::Scale);
        assert_eq!((other.target_value, other.max_value), (20.0, 20.0));
    }

    #[test]
    fn ending_a_goal_sets_ended_at_and_deactivates_it() {
        let mut goal = Goal::new(new_goal(), at("2025-01-01T10:00:00Z"));
        goal.abandon(at("2025-01-03T10:00:00Z"));
        assert_eq!(goal.status, GoalStatus::Abandoned);
        assert!(!goal.is_active);
        assert_eq!(goal.ended_at, Some(at("2025-01-03T10:00:00Z")));
        goal.apply(
            &GoalChanges {
                status: Some(GoalStatus::Paused),
                ..Default::default()
            },
            at("2025-01-04T10:00:00Z"),
        );
        assert!(goal.is_active && goal.ended_at.is_none());
        assert_eq!(GoalSource::read("partner"), GoalSource::Imported);
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
