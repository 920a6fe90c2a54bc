//! The scopes of API.md §2.2 (and `ingest:write`, §13.G; `webhooks:read`/`webhooks:write`) and the set a key holds, stored as a bit mask.

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    ConversationsRead,
    ConversationsWrite,
    MemoriesRead,
    MemoriesWrite,
    ActionItemsRead,
    ActionItemsWrite,
    GoalsRead,
    GoalsWrite,
    /// Write-only access for the Omi app's developer webhooks (`/v1/ingest/omi/...`): the one
    /// scope a key given in a URL may hold.
    IngestWrite,
    WebhooksRead,
    WebhooksWrite,
}

impl Scope {
    /// Canonical order: keys list their scopes in this order.
    pub const ALL: [Scope; 11] = [
        Scope::ConversationsRead,
        Scope::ConversationsWrite,
        Scope::MemoriesRead,
        Scope::MemoriesWrite,
        Scope::ActionItemsRead,
        Scope::ActionItemsWrite,
        Scope::GoalsRead,
        Scope::GoalsWrite,
        Scope::IngestWrite,
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ConversationsRead => "conversations:read",
            Scope::ConversationsWrite => "conversations:write",
            Scope::MemoriesRead => "memories:read",
            Scope::MemoriesWrite => "memories:write",
            Scope::ActionItemsRead => "action_items:read",
            Scope::ActionItemsWrite => "action_items:write",
            Scope::GoalsRead => "goals:read",
            Scope::GoalsWrite => "goals:write",
            Scope::IngestWrite => "ingest:write",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The detail of a 400 for an unknown scope (API.md §2.3).
pub fn invalid_scopes_detail() -> String {
    let names: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
    format!("Invalid scopes. Available: {}", names.join(", "))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u32);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    /// What a key created without `scopes` gets: the four `:read` scopes.
    pub fn default_read_only() -> Self {
        [
            Scope::ConversationsRead,
            Scope::MemoriesRead,
            Scope::ActionItemsRead,
            Scope::GoalsRead,
        ]
        .into_iter()
        .collect()
    }

    /// Parses a list of scope names; duplicates collapse. `Err` names the first unknown value.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = ScopeSet::EMPTY;
        for name in names {
            let scope = Scope::parse(name.trim()).ok_or_else(|| name.to_string())?;
            set = set.with(scope);
        }
        Ok(set)
    }

    pub fn with(self, scope: Scope) -> Self {
        ScopeSet(self.0 | scope.bit())
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    pub fn bits(self) -> i64 {
        i64::from(self.0)
    }

    /// From the stored mask; unknown bits are ignored.
    pub fn from_bits(bits: i64) -> Self {
        ScopeSet((bits as u32) & ScopeSet::all().0)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(ScopeSet::EMPTY, ScopeSet::with)
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_scopes_in_canonical_order_without_duplicates() {
        let set = ScopeSet::parse(["goals:write", "memories:read", "goals:write"]).unwrap();
        assert_eq!(set.names(), vec!["memories:read", "goals:write"]);
    }

    #[test]
    fn names_the_first_unknown_scope() {
        assert_eq!(
            ScopeSet::parse(["memories:read", "memories:delete"]),
            Err("memories:delete".to_string())
        );
    }

    #[test]
    fn default_scopes_are_the_four_reads() {
        assert_eq!(
            ScopeSet::default_read_only().names(),
            vec![
                "conversations:read",
                "memories:read",
                "action_items:read",
                "goals:read"
            ]
        );
    }

    #[test]
    fn write_does_not_imply_read() {
        let set = ScopeSet::parse(["memories:write"]).unwrap();
        assert!(!set.contains(Scope::MemoriesRead));
    }

    #[test]
    fn the_mask_round_trips() {
        let all = ScopeSet::all();
        assert_eq!(ScopeSet::from_bits(all.bits()), all);
    }

    #[test]
    fn invalid_scope_detail_lists_every_scope() {
        assert_eq!(
            invalid_scopes_detail(),
            "Invalid scopes. Available: conversations:read, conversations:write, memories:read, memories:write, action_items:read, action_items:write, goals:read, goals:write, ingest:write, webhooks:read, webhooks:write"
        );
    }
}
