//! Memories: facts about the user (`system`) or insights from others (`interesting`)
//! (API.md §3).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::time::{Timestamp, serde_rfc3339};

pub const MAX_CONTENT_CHARS: usize = 500;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

/// Why a memory field was refused; routes put each into the contract's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryFieldError {
    EmptyContent,
    ContentTooLong,
    TooManyTags,
    EmptyTag(usize),
    TagTooLong(usize),
}

/// The content as stored: trimmed, 1..=500 characters.
pub fn memory_content(raw: &str) -> Result<String, MemoryFieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        Err(MemoryFieldError::EmptyContent)
    } else if trimmed.chars().count() > MAX_CONTENT_CHARS {
        Err(MemoryFieldError::ContentTooLong)
    } else {
        Ok(trimmed.to_string())
    }
}

/// Tags as stored: at most 50, each trimmed to 1..=100 characters, in the given order.
pub fn memory_tags(raw: Vec<String>) -> Result<Vec<String>, MemoryFieldError> {
    if raw.len() > MAX_TAGS {
        return Err(MemoryFieldError::TooManyTags);
    }
    raw.into_iter()
        .enumerate()
        .map(|(index, tag)| {
            let tag = tag.trim();
            if tag.is_empty() {
                Err(MemoryFieldError::EmptyTag(index))
            } else if tag.chars().count() > MAX_TAG_CHARS {
                Err(MemoryFieldError::TagTooLong(index))
            } else {
                Ok(tag.to_string())
            }
        })
        .collect()
}

/// A validated create request. Absent fields stay `None`: a new memory takes the defaults, an
/// existing one with the same derived id keeps its stored values.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMemory {
    pub content: String,
    pub category: Option<MemoryCategory>,
    pub visibility: Option<Visibility>,
    pub tags: Option<Vec<String>>,
}

impl NewMemory {
    pub fn id(&self) -> String {
        memory_id_for(&self.content)
    }

    /// The memory this request creates when the user has none with its id; `categorize` picks
    /// the category when the request names none (the processor's rule, PROCESSING.md §5).
    pub fn into_memory(
        self,
        now: Timestamp,
        categorize: impl FnOnce(&str) -> MemoryCategory,
    ) -> Memory {
        let category = match self.category {
            Some(category) => category.stored_on_create(),
            None => categorize(&self.content),
        };
        Memory {
            id: self.id(),
            scoring: scoring(true, category, now),
            content: self.content,
            category,
            visibility: self.visibility.unwrap_or(Visibility::Private),
            tags: self.tags.unwrap_or_default(),
            created_at: now,
            updated_at: now,
            manually_added: true,
            reviewed: true,
            user_review: Some(true),
            edited: false,
            conversation_id: None,
        }
    }

    /// Creating a memory whose id exists updates it: present fields replace, absent fields
    /// keep, and the memory becomes API-provenance (`MM` = `01`, creation time unchanged).
    pub fn applied_to(self, existing: Memory, now: Timestamp) -> Memory {
        let category = self
            .category
            .map_or(existing.category, MemoryCategory::stored_on_create);
        Memory {
            scoring: scoring(true, category, existing.created_at),
            content: self.content,
            category,
            visibility: self.visibility.unwrap_or(existing.visibility),
            tags: self.tags.unwrap_or(existing.tags),
            updated_at: now,
            manually_added: true,
            reviewed: true,
            user_review: Some(true),
            ..existing
        }
    }

    /// A later request for the same content, as if applied after this one: its present fields win.
    fn absorb(&mut self, later: NewMemory) {
        self.content = later.content;
        self.category = later.category.or(self.category);
        self.visibility = later.visibility.or(self.visibility);
        self.tags = later.tags.or(self.tags.take());
    }
}

/// Requests with the same content become one (the memory they name is one), in order of first
/// appearance, later occurrences' present fields winning.
pub fn collapse_same_content(requests: Vec<NewMemory>) -> Vec<NewMemory> {
    let mut collapsed: Vec<NewMemory> = Vec::with_capacity(requests.len());
    for request in requests {
        match collapsed
            .iter_mut()
            .find(|seen| seen.content == request.content)
        {
            Some(seen) => seen.absorb(request),
            None => collapsed.push(request),
        }
    }
    collapsed
}

/// A validated PATCH: the fields to change, at least one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryChanges {
    pub content: Option<String>,
    pub category: Option<MemoryCategory>,
    pub visibility: Option<Visibility>,
    pub tags: Option<Vec<String>>,
}

impl MemoryChanges {
    pub fn is_empty(&self) -> bool {
        self.content.is_none()
            && self.category.is_none()
            && self.visibility.is_none()
            && self.tags.is_none()
    }

    /// The category is stored as given (legacy values too) and `BBB` follows it; a different
    /// content marks the memory edited. The id, provenance and creation time never change.
    pub fn applied_to(self, memory: Memory, now: Timestamp) -> Memory {
        let category = self.category.unwrap_or(memory.category);
        let edited = memory.edited
            || self
                .content
                .as_ref()
                .is_some_and(|content| *content != memory.content);
        Memory {
            scoring: scoring(memory.manually_added, category, memory.created_at),
            content: self.content.unwrap_or(memory.content),
            category,
            visibility: self.visibility.unwrap_or(memory.visibility),
            tags: self.tags.unwrap_or(memory.tags),
            updated_at: now,
            edited,
            ..memory
        }
    }
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

    fn at(text: &str) -> Timestamp {
        parse_datetime(text).unwrap()
    }

    fn request(content: &str) -> NewMemory {
        NewMemory {
            content: content.to_string(),
            category: None,
            visibility: None,
            tags: None,
        }
    }

    #[test]
    fn content_is_trimmed_and_bounded_in_characters() {
        assert_eq!(memory_content("  hi  ").unwrap(), "hi");
        assert_eq!(
            memory_content(" \n\t "),
            Err(MemoryFieldError::EmptyContent)
        );
        assert!(memory_content(&"é".repeat(500)).is_ok());
        assert_eq!(
            memory_content(&"é".repeat(501)),
            Err(MemoryFieldError::ContentTooLong)
        );
    }

    #[test]
    fn tags_are_bounded_in_count_and_length() {
        assert_eq!(
            memory_tags(vec![" health ".into()]).unwrap(),
            vec!["health".to_string()]
        );
        assert_eq!(
            memory_tags(vec!["x".into(); 51]),
            Err(MemoryFieldError::TooManyTags)
        );
        assert!(memory_tags(vec!["x".into(); 50]).is_ok());
        assert_eq!(
            memory_tags(vec!["a".into(), " ".into()]),
            Err(MemoryFieldError::EmptyTag(1))
        );
        assert_eq!(
            memory_tags(vec!["a".repeat(101)]),
            Err(MemoryFieldError::TagTooLong(0))
        );
    }

    #[test]
    fn a_new_memory_is_api_provenance_with_defaults() {
        let now = at("2024-12-06T11:08:20Z");
        let memory = NewMemory {
            category: Some(MemoryCategory::Hobbies),
            ..request("Alex plays chess")
        }
        .into_memory(now, |_| MemoryCategory::System);
        assert_eq!(memory.id, memory_id_for("Alex plays chess"));
        assert_eq!(memory.category, MemoryCategory::System);
        assert_eq!(memory.visibility, Visibility::Private);
        assert_eq!(memory.tags, Vec::<String>::new());
        assert_eq!(memory.scoring, "01_999_1733483300");
        assert!(memory.manually_added && memory.reviewed && !memory.edited);
        assert_eq!(memory.user_review, Some(true));
    }

    #[test]
    fn creating_again_updates_present_fields_and_promotes_to_api_provenance() {
        let created = at("2024-12-06T11:08:20Z");
        let extracted = Memory {
            manually_added: false,
            reviewed: false,
            user_review: None,
            tags: vec!["kept".into()],
            scoring: scoring(false, MemoryCategory::System, created),
            conversation_id: Some("c1".into()),
            ..request("Alex plays chess").into_memory(created, |_| MemoryCategory::System)
        };
        let later = at("2025-01-01T00:00:00Z");
        let updated = NewMemory {
            category: Some(MemoryCategory::Interesting),
            visibility: Some(Visibility::Public),
            ..request("Alex plays chess")
        }
        .applied_to(extracted.clone(), later);
        assert_eq!(updated.id, extracted.id);
        assert_eq!(updated.category, MemoryCategory::Interesting);
        assert_eq!(updated.visibility, Visibility::Public);
        assert_eq!(updated.tags, vec!["kept".to_string()]);
        assert_eq!(updated.scoring, "01_998_1733483300");
        assert_eq!(updated.created_at, created);
        assert_eq!(updated.updated_at, later);
        assert!(updated.manually_added && updated.reviewed);
        assert_eq!(updated.user_review, Some(true));
        assert_eq!(updated.conversation_id, Some("c1".into()));
    }

    #[test]
    fn same_content_collapses_in_first_appearance_order_with_later_fields_winning() {
        let collapsed = collapse_same_content(vec![
            NewMemory {
                visibility: Some(Visibility::Public),
                tags: Some(vec!["first".into()]),
                ..request("a")
            },
            request("b"),
            NewMemory {
                tags: Some(vec!["last".into()]),
                ..request("a")
            },
        ]);
        assert_eq!(collapsed.len(), 2);
        assert_eq!(collapsed[0].content, "a");
        assert_eq!(collapsed[0].visibility, Some(Visibility::Public));
        assert_eq!(collapsed[0].tags, Some(vec!["last".to_string()]));
        assert_eq!(collapsed[1].content, "b");
    }

    #[test]
    fn changes_keep_the_id_store_legacy_categories_and_mark_new_content_edited() {
        let created = at("2024-12-06T11:08:20Z");
        let memory = request("Alex plays chess").into_memory(created, |_| MemoryCategory::System);
        let later = at("2025-01-01T00:00:00Z");
        let recategorised = MemoryChanges {
            category: Some(MemoryCategory::Hobbies),
            content: Some("Alex plays chess".into()),
            ..MemoryChanges::default()
        }
        .applied_to(memory.clone(), later);
        assert_eq!(recategorised.category, MemoryCategory::Hobbies);
        assert_eq!(recategorised.scoring, "01_998_1733483300");
        assert!(!recategorised.edited, "the same content is not an edit");

        let edited = MemoryChanges {
            content: Some("Alex plays go".into()),
            ..MemoryChanges::default()
        }
        .applied_to(memory.clone(), later);
        assert_eq!(edited.id, memory.id);
        assert!(edited.edited);
        assert_eq!(edited.updated_at, later);
        assert!(MemoryChanges::default().is_empty());
    }
}
