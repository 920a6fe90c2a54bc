//! Conversation categories (API.md §5) with their emoji, and the system folders kept
//! conversations are filed in (API.md §6): vocabulary shared by processing, storage and the API.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationCategory {
    Personal,
    Education,
    Health,
    Finance,
    Legal,
    Philosophy,
    Spiritual,
    Science,
    Entrepreneurship,
    Parenting,
    Romantic,
    Travel,
    Inspiration,
    Technology,
    Business,
    Social,
    Work,
    Sports,
    Politics,
    Literature,
    History,
    Architecture,
    Music,
    Weather,
    News,
    Entertainment,
    Psychology,
    /// Real estate; the wire value is `real`, as upstream spells it.
    Real,
    Design,
    Family,
    Economics,
    Environment,
    Other,
}

impl ConversationCategory {
    pub const ALL: [ConversationCategory; 33] = [
        Self::Personal,
        Self::Education,
        Self::Health,
        Self::Finance,
        Self::Legal,
        Self::Philosophy,
        Self::Spiritual,
        Self::Science,
        Self::Entrepreneurship,
        Self::Parenting,
        Self::Romantic,
        Self::Travel,
        Self::Inspiration,
        Self::Technology,
        Self::Business,
        Self::Social,
        Self::Work,
        Self::Sports,
        Self::Politics,
        Self::Literature,
        Self::History,
        Self::Architecture,
        Self::Music,
        Self::Weather,
        Self::News,
        Self::Entertainment,
        Self::Psychology,
        Self::Real,
        Self::Design,
        Self::Family,
        Self::Economics,
        Self::Environment,
        Self::Other,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Education => "education",
            Self::Health => "health",
            Self::Finance => "finance",
            Self::Legal => "legal",
            Self::Philosophy => "philosophy",
            Self::Spiritual => "spiritual",
            Self::Science => "science",
            Self::Entrepreneurship => "entrepreneurship",
            Self::Parenting => "parenting",
            Self::Romantic => "romantic",
            Self::Travel => "travel",
            Self::Inspiration => "inspiration",
            Self::Technology => "technology",
            Self::Business => "business",
            Self::Social => "social",
            Self::Work => "work",
            Self::Sports => "sports",
            Self::Politics => "politics",
            Self::Literature => "literature",
            Self::History => "history",
            Self::Architecture => "architecture",
            Self::Music => "music",
            Self::Weather => "weather",
            Self::News => "news",
            Self::Entertainment => "entertainment",
            Self::Psychology => "psychology",
            Self::Real => "real",
            Self::Design => "design",
            Self::Family => "family",
            Self::Economics => "economics",
            Self::Environment => "environment",
            Self::Other => "other",
        }
    }

    pub fn parse(value: &str) -> Option<ConversationCategory> {
        Self::ALL.into_iter().find(|c| c.as_str() == value)
    }

    /// The emoji shown for a conversation of this category when no keyword overrides it.
    pub const fn emoji(self) -> &'static str {
        match self {
            Self::Personal => "👤",
            Self::Education => "📚",
            Self::Health => "🏥",
            Self::Finance => "💰",
            Self::Legal => "⚖️",
            Self::Philosophy => "🤔",
            Self::Spiritual => "🙏",
            Self::Science => "🔬",
            Self::Entrepreneurship => "🚀",
            Self::Parenting => "👶",
            Self::Romantic => "❤️",
            Self::Travel => "✈️",
            Self::Inspiration => "💡",
            Self::Technology => "💻",
            Self::Business => "📈",
            Self::Social => "👥",
            Self::Work => "💼",
            Self::Sports => "⚽",
            Self::Politics => "🏛️",
            Self::Literature => "📖",
            Self::History => "📜",
            Self::Architecture => "🏗️",
            Self::Music => "🎵",
            Self::Weather => "🌦️",
            Self::News => "📰",
            Self::Entertainment => "🎬",
            Self::Psychology => "🧠",
            Self::Real => "🏠",
            Self::Design => "🎨",
            Self::Family => "👨‍👩‍👧",
            Self::Economics => "📊",
            Self::Environment => "🌱",
            Self::Other => "💬",
        }
    }
}

/// The three folders every user gets, into which kept conversations are filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SystemFolder {
    Work,
    Personal,
    Social,
}

impl SystemFolder {
    pub const ALL: [SystemFolder; 3] = [Self::Work, Self::Personal, Self::Social];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Work => "Work",
            Self::Personal => "Personal",
            Self::Social => "Social",
        }
    }

    pub const fn emoji(self) -> &'static str {
        match self {
            Self::Work => "💼",
            Self::Personal => "👤",
            Self::Social => "👥",
        }
    }

    pub const fn color(self) -> &'static str {
        match self {
            Self::Work => "#3B82F6",
            Self::Personal => "#10B981",
            Self::Social => "#8B5CF6",
        }
    }

    pub const fn order(self) -> u32 {
        match self {
            Self::Work => 0,
            Self::Personal => 1,
            Self::Social => 2,
        }
    }
}

/// The folder a kept conversation of `category` is filed in (API.md §6).
pub fn system_folder_for(category: ConversationCategory) -> SystemFolder {
    use ConversationCategory as C;
    match category {
        C::Business
        | C::Technology
        | C::Finance
        | C::Education
        | C::Entrepreneurship
        | C::Economics
        | C::Science
        | C::Work
        | C::Design
        | C::Architecture
        | C::Legal => SystemFolder::Work,
        C::Social
        | C::Entertainment
        | C::Music
        | C::Sports
        | C::News
        | C::Politics
        | C::Literature
        | C::History
        | C::Inspiration => SystemFolder::Social,
        _ => SystemFolder::Personal,
    }
}
