//! The column lists both backends select, in the order their row readers expect. The schemas
//! name the columns alike, so the lists live once.

/// Read by the backends' `memory_from_row`.
pub const MEMORY_COLUMNS: &str = "id, content, category, visibility, tags, created_at, updated_at, \
     manually_added, scoring, reviewed, user_review, edited, conversation_id";

/// Read by the backends' `action_item_from_row`.
pub const ACTION_ITEM_COLUMNS: &str =
    "id, description, completed, created_at, updated_at, due_at, completed_at, conversation_id";

/// A conversation joined with its folder (`c`, `f`); read by `conversation_from_row`.
pub const CONVERSATION_COLUMNS: &str = "c.id, c.created_at, c.started_at, c.finished_at, c.title, \
     c.overview, c.emoji, c.category, c.events, c.language, c.source, c.discarded, \
     c.processed_by, c.folder_id, f.name, c.geolocation, c.text IS NOT NULL, c.starred, \
     c.updated_at";

/// Transcript segments (`s`), grouped by their conversation.
pub const SEGMENT_COLUMNS: &str = "s.conversation_id, s.id, s.text, s.speaker, s.speaker_id, \
     s.is_user, s.person_id, s.start_seconds, s.end_seconds";

pub const GOAL_COLUMNS: &str = "id, title, desired_outcome, why_it_matters, success_criteria, \
     horizon_at, status, source, metric, created_at, updated_at, ended_at";

pub const USER_COLUMNS: &str = "id, name, display_name, created_at";

pub const KEY_COLUMNS: &str = "id, name, key_prefix, scopes, created_at, last_used_at, user_id";

/// How many columns a list above names (none holds a comma inside an expression), so a reader
/// knows where the columns a query appends after it begin.
pub fn count(columns: &str) -> usize {
    columns.split(',').count()
}
