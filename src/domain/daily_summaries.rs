//! Daily summaries (API.md §13.C): one per user and user-local day, read by the Developer API
//! and the MCP `get_daily_summaries` tool.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::time::{Timestamp, serde_rfc3339};

pub const DEFAULT_HEADLINE: &str = "Your Day in Review";
pub const DEFAULT_DAY_EMOJI: &str = "📅";
/// `unresolved_questions`, `decisions_made` and `knowledge_nuggets` hold at most this many.
pub const MAX_INSIGHTS: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DayStats {
    /// Kept (not discarded) conversations of the day.
    pub total_conversations: i64,
    /// Their summed durations, in minutes, rounded to the nearest minute.
    pub total_duration_minutes: i64,
    /// The number of entries in `action_items`.
    pub action_items_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Highlight {
    pub topic: String,
    pub emoji: String,
    pub summary: String,
    pub conversation_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DayActionItem {
    pub description: String,
    /// `high`, `medium` or `low`.
    pub priority: String,
    pub completed: bool,
    pub source_conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnresolvedQuestion {
    pub question: String,
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    pub decision: String,
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KnowledgeNugget {
    pub insight: String,
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DayLocation {
    pub latitude: f64,
    pub longitude: f64,
    pub address: Option<String>,
    pub conversation_id: Option<String>,
    /// Local `HH:MM` in the user's timezone.
    pub time: Option<String>,
}

/// A summary of one user-local day (field order as upstream's model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DailySummary {
    pub id: String,
    /// The user-local day covered, `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    pub headline: String,
    pub overview: String,
    pub day_emoji: String,
    pub stats: DayStats,
    pub highlights: Vec<Highlight>,
    pub action_items: Vec<DayActionItem>,
    pub unresolved_questions: Vec<UnresolvedQuestion>,
    pub decisions_made: Vec<Decision>,
    pub knowledge_nuggets: Vec<KnowledgeNugget>,
    pub locations: Vec<DayLocation>,
}

/// The list filter: `date` between the two days, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SummaryFilter {
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

/// A `YYYY-MM-DD` day, as the list filters and the command line take it.
pub fn parse_day(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    if raw.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_strict_iso_dates() {
        assert_eq!(
            parse_day("2026-12-06"),
            NaiveDate::from_ymd_opt(2026, 12, 6)
        );
        for bad in [
            "2026-2-6",
            "2026-02-30",
            "06.12.2026",
            "2026-12-06T00:00:00Z",
            "",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}
