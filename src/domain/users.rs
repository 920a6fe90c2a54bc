//! Users: the owners of every stored object (API.md §2.1, §8).

use serde::Serialize;

use crate::domain::time::{Timestamp, serde_rfc3339};

pub const MAX_USER_NAME_CHARS: usize = 64;
pub const BOOTSTRAP_USER_NAME: &str = "default";
pub const BOOTSTRAP_DISPLAY_NAME: &str = "User";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
    /// Used for the user's own transcript segments and in memories extracted about them.
    pub display_name: String,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Timestamp,
}

pub fn parse_user_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("user name cannot be empty".into());
    }
    if name.chars().count() > MAX_USER_NAME_CHARS {
        return Err(format!(
            "user name must be at most {MAX_USER_NAME_CHARS} characters"
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_trimmed_and_bounded() {
        assert_eq!(parse_user_name(" alice ").unwrap(), "alice");
        assert!(parse_user_name("").is_err());
        assert!(parse_user_name(&"a".repeat(64)).is_ok());
        assert!(parse_user_name(&"a".repeat(65)).is_err());
    }
}
