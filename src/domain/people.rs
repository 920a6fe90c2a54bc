//! People seen in a user's transcripts and the user's profile (API.md §13.D).

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::time::{Timestamp, serde_rfc3339, serde_rfc3339_option};

/// At most this many sample sentences per person, each at most `MAX_SAMPLE_CHARS` characters.
pub const MAX_SAMPLES: usize = 5;
pub const MAX_SAMPLE_CHARS: usize = 200;
/// Upstream's exact answer for a user without a profile.
pub const NO_PROFILE_MESSAGE: &str = "No profile has been generated for this user yet.";

/// One person: a distinct `person_id` of the user's transcript segments.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Person {
    pub id: String,
    pub name: String,
    /// When the person was first seen (the earliest conversation they speak in).
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Up to five of their most recent sentences.
    pub speech_sample_transcripts: Vec<String>,
}

/// A generated profile.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Profile {
    pub profile_text: String,
    #[serde(serialize_with = "serde_rfc3339_option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub generated_at: Option<Timestamp>,
    /// The number of memories the profile was built from.
    pub data_sources_used: i64,
}
