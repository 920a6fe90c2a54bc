//! Memories: facts about the user (`system`) or insights from others (`interesting`)
//! (API.md §3).

use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::time::{Timestamp, serde_rfc3339};

pub const MAX_CONTENT_CHARS: usize = 500;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemoryCategory {
    Interesting,
    System,
    Manual,
    Workflow,
    Core,
    Hobbies,
    Lifestyle,
    Interests,
    Habits,
    Work,
    Skills,
    Learnings,
    Other,
    Auto,
}

impl MemoryCategory {
    pub const ALL: [MemoryCategory; 14] = [
        MemoryCategory::Interesting,
        MemoryCategory::System,
        MemoryCategory::Manual,
        MemoryCategory::Workflow,
        MemoryCategory::Core,
        MemoryCategory::Hobbies,
        MemoryCategory::Lifestyle,
        MemoryCategory::Interests,
        MemoryCategory::Habits,
        MemoryCategory::Work,
        MemoryCategory::Skills,
        MemoryCategory::Learnings,
        MemoryCategory::Other,
        MemoryCategory::Auto,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemoryCategory::Interesting => "interesting",
            MemoryCategory::System => "system",
            MemoryCategory::Manual => "manual",
            MemoryCategory::Workflow => "workflow",
            MemoryCategory::Core => "core",
            MemoryCategory::Hobbies => "hobbies",
            MemoryCategory::Lifestyle => "lifestyle",
            MemoryCategory::Interests => "interests",
            MemoryCategory::Habits => "habits",
            MemoryCategory::Work => "work",
            MemoryCategory::Skills => "skills",
            MemoryCategory::Learnings => "learnings",
            MemoryCategory::Other => "other",
            MemoryCategory::Auto => "auto",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        MemoryCategory::ALL
            .into_iter()
            .find(|category| category.as_str() == text)
    }

    /// Legacy values are accepted but, on create, stored as `system`.
    pub fn is_legacy(self) -> bool {
        !matches!(
            self,
            MemoryCategory::Interesting
                | MemoryCategory::System
                | MemoryCategory::Manual
                | MemoryCategory::Workflow
        )
    }

    /// What a create request's category is stored as.
    pub fn stored_on_create(self) -> Self {
        if self.is_legacy() {
            MemoryCategory::System
        } else {
            self
        }
    }

    /// The `BBB` part of `scoring` is 999 minus this boost.
    pub fn boost(self) -> u32 {
        match self {
            MemoryCategory::Interesting
            | MemoryCategory::Manual
            | MemoryCategory::Workflow
            | MemoryCategory::Core
            | MemoryCategory::Hobbies
            | MemoryCategory::Lifestyle
            | MemoryCategory::Interests
            | MemoryCategory::Work
            | MemoryCategory::Skills
            | MemoryCategory::Learnings => 1,
            MemoryCategory::System
            | MemoryCategory::Habits
            | MemoryCategory::Other
            | MemoryCategory::Auto => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "private" => Some(Visibility::Private),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }
}

/// A memory as stored and as the API returns it (field order as in the contract).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Memory {
    pub id: String,
    pub content: String,
    pub category: MemoryCategory,
    pub visibility: Visibility,
    pub tags: Vec<String>,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub manually_added: bool,
    /// `MM_BBB_TTTTTTTTTT`: provenance, category boost, creation time; lists sort on it.
    pub scoring: String,
    pub reviewed: bool,
    pub user_review: Option<bool>,
    pub edited: bool,
    pub conversation_id: Option<String>,
}

/// The id derived from the trimmed content: the first 16 bytes of its SHA-256 with the UUID
/// version-4 and variant bits set. The same content always gets the same id (per user).
pub fn memory_id_for(trimmed_content: &str) -> String {
    let digest = Sha256::digest(trimmed_content.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// `MM_BBB_TTTTTTTTTT` (API.md §3).
pub fn scoring(manually_added: bool, category: MemoryCategory, created_at: Timestamp) -> String {
    format!(
        "{}_{:03}_{:010}",
        if manually_added { "01" } else { "00" },
        999 - category.boost(),
        created_at.timestamp().max(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_datetime;

    #[test]
    fn ids_are_derived_from_content_as_version_4_uuids() {
        let id = memory_id_for("Alex is allergic to peanuts");
        assert_eq!(id, memory_id_for("Alex is allergic to peanuts"));
        assert_ne!(id, memory_id_for("Alex is allergic to cats"));
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn scoring_encodes_provenance_boost_and_time() {
        let at = parse_datetime("2024-12-06T11:08:20Z").unwrap();
        assert_eq!(
            scoring(true, MemoryCategory::System, at),
            "01_999_1733483300"
        );
        assert_eq!(
            scoring(false, MemoryCategory::Interesting, at),
            "00_998_1733483300"
        );
    }

    #[test]
    fn legacy_categories_are_stored_as_system_on_create() {
        assert_eq!(
            MemoryCategory::Hobbies.stored_on_create(),
            MemoryCategory::System
        );
        assert_eq!(
            MemoryCategory::Workflow.stored_on_create(),
            MemoryCategory::Workflow
        );
        assert_eq!(MemoryCategory::parse("auto"), Some(MemoryCategory::Auto));
        assert_eq!(MemoryCategory::parse("bogus"), None);
    }
}
