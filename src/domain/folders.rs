//! Folders conversations are filed in (API.md §6). Only the three system folders exist; they are
//! created for a user together, when the first kept conversation is filed.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::categories::SystemFolder;
use crate::domain::time::{Timestamp, serde_rfc3339};

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Folder {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// `#RRGGBB`
    pub color: String,
    /// An emoji.
    pub icon: String,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub order: i64,
    /// The folder that takes whatever fits nowhere else (Personal).
    pub is_default: bool,
    pub is_system: bool,
    /// Kept (not discarded) conversations filed here.
    pub conversation_count: i64,
}

/// What the store needs to create a system folder; `key` names it among the user's folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemFolderSpec {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub color: &'static str,
    pub icon: &'static str,
    pub order: i64,
    pub is_default: bool,
}

impl SystemFolderSpec {
    pub fn of(folder: SystemFolder) -> SystemFolderSpec {
        let (key, description) = match folder {
            SystemFolder::Work => (
                "work",
                "Meetings, projects, money and everything about your job",
            ),
            SystemFolder::Personal => (
                "personal",
                "Health, family, plans and everything else in your life",
            ),
            SystemFolder::Social => ("social", "Friends, entertainment, sports, news and culture"),
        };
        SystemFolderSpec {
            key,
            name: folder.name(),
            description,
            color: folder.color(),
            icon: folder.emoji(),
            order: i64::from(folder.order()),
            is_default: folder == SystemFolder::Personal,
        }
    }

    /// All three, created together.
    pub fn all() -> [SystemFolderSpec; 3] {
        SystemFolder::ALL.map(SystemFolderSpec::of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_folders_follow_the_contract() {
        let [work, personal, social] = SystemFolderSpec::all();
        assert_eq!(
            (work.name, work.icon, work.color, work.order),
            ("Work", "💼", "#3B82F6", 0)
        );
        assert_eq!(
            (personal.name, personal.icon, personal.color, personal.order),
            ("Personal", "👤", "#10B981", 1)
        );
        assert_eq!(
            (social.name, social.icon, social.color, social.order),
            ("Social", "👥", "#8B5CF6", 2)
        );
        assert!(personal.is_default && !work.is_default && !social.is_default);
    }
}
