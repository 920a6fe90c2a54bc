//! The change feed: every list read in `(updated_at, id)` order from a position, and the
//! tombstones that deletions leave. A position travels as an opaque cursor.
//!
//! `updated_at` is assigned by the store inside each write transaction from a per-user clock
//! that only moves forward (see `store::feed`), so this order is the order in which one user's
//! changes were committed: a reader that has seen a position has seen every change before it.

use crate::domain::time::{Timestamp, from_micros, to_micros};

/// A place in a feed: the last object a page returned. The next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPosition {
    pub at: Timestamp,
    /// The object's id (for tombstones, `type/id`).
    pub id: String,
}

/// Which part of a feed to read: changes at or after `since`, strictly after `after`, at most
/// `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedWindow {
    pub since: Option<Timestamp>,
    pub after: Option<FeedPosition>,
    pub limit: i64,
}

impl FeedWindow {
    /// The bounds of a page one longer than asked, so the reader learns whether another follows.
    pub fn probing(since: Option<Timestamp>, after: Option<FeedPosition>, limit: i64) -> Self {
        FeedWindow {
            since,
            after,
            limit: limit.saturating_add(1),
        }
    }
}

/// Cursors name their format so that a later one can change without misreading an old one.
const CURSOR_VERSION: &str = "c1";

impl FeedPosition {
    /// An opaque, URL-safe cursor: hex of `c1:<microseconds>:<id>`.
    pub fn to_cursor(&self) -> String {
        let plain = format!("{CURSOR_VERSION}:{}:{}", to_micros(self.at), self.id);
        plain.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// `None` for anything [`to_cursor`](Self::to_cursor) did not produce.
    pub fn from_cursor(cursor: &str) -> Option<Self> {
        if cursor.is_empty() || !cursor.len().is_multiple_of(2) || cursor.len() > 1024 {
            return None;
        }
        let bytes = (0..cursor.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let plain = String::from_utf8(bytes).ok()?;
        let mut parts = plain.splitn(3, ':');
        if parts.next()? != CURSOR_VERSION {
            return None;
        }
        let micros: i64 = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_string();
        if id.is_empty() {
            return None;
        }
        Some(FeedPosition {
            at: from_micros(micros),
            id,
        })
    }
}

/// What kind of object a tombstone stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TombstoneType {
    Memory,
    ActionItem,
    Conversation,
    Goal,
    Key,
}

impl TombstoneType {
    pub const ALL: [TombstoneType; 5] = [
        TombstoneType::Memory,
        TombstoneType::ActionItem,
        TombstoneType::Conversation,
        TombstoneType::Goal,
        TombstoneType::Key,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TombstoneType::Memory => "memory",
            TombstoneType::ActionItem => "action_item",
            TombstoneType::Conversation => "conversation",
            TombstoneType::Goal => "goal",
            TombstoneType::Key => "key",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text.trim())
    }
}

/// What is left of a deleted object for the deletions feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub kind: TombstoneType,
    pub id: String,
    pub deleted_at: Timestamp,
}

impl Tombstone {
    /// Its place in the deletions feed (ties on `deleted_at` are broken by `type/id`).
    pub fn position(&self) -> FeedPosition {
        FeedPosition {
            at: self.deleted_at,
            id: format!("{}/{}", self.kind.as_str(), self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_its_position() {
        let position = FeedPosition {
            at: from_micros(1_765_000_000_123_456),
            id: "memory:with:colons".to_string(),
        };
        let cursor = position.to_cursor();
        assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(FeedPosition::from_cursor(&cursor), Some(position));
    }

    #[test]
    fn anything_else_is_not_a_cursor() {
        for bad in [
            "",
            "zz",
            "abc",
            "6331",
            "63313a78793a6964",
            "63323a313a6964",
        ] {
            assert_eq!(FeedPosition::from_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn tombstone_types_read_back() {
        for kind in TombstoneType::ALL {
            assert_eq!(TombstoneType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(TombstoneType::parse("folder"), None);
    }
}
