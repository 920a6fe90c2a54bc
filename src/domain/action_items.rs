//! Action items: tasks, created directly or extracted from conversations (API.md §4).

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::time::{Timestamp, serde_rfc3339, serde_rfc3339_option};

pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// An action item as stored and as the API returns it (field order as in the contract).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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
    #[serde(serialize_with = "serde_rfc3339_option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Timestamp>,
    #[serde(serialize_with = "serde_rfc3339_option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
    pub conversation_id: Option<String>,
}
