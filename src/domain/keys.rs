//! Developer API keys as the API shows them, and the rules for creating them (API.md §2.2-2.3).

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::credentials::Secret;
use crate::domain::scope::ScopeSet;
use crate::domain::time::{Timestamp, serde_rfc3339, serde_rfc3339_option};

pub const MAX_KEYS_PER_USER: usize = 100;
pub const MAX_KEY_NAME_CHARS: usize = 100;

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DevApiKey {
    pub id: String,
    pub name: String,
    /// `omi_dev_` + first 4 + `...` + last 4 characters of the secret.
    pub key_prefix: String,
    #[schema(value_type = Vec<String>)]
    pub scopes: ScopeSet,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(serialize_with = "serde_rfc3339_option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
}

/// The create and rotate answer: the key plus its raw secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedDevApiKey {
    #[serde(flatten)]
    pub info: DevApiKey,
    /// The raw key. It cannot be shown again.
    #[schema(value_type = String)]
    #[serde(rename = "key", serialize_with = "serialize_secret")]
    pub raw_key: Secret,
}

fn serialize_secret<S: serde::Serializer>(
    secret: &Secret,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

/// Why a key request was refused; the caller words it (API.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFieldError {
    EmptyName,
    NameTooLong,
    /// A scope name outside the eight of API.md §2.2.
    UnknownScope,
}

/// Trims and bounds a key name.
pub fn parse_key_name(raw: &str) -> Result<String, KeyFieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(KeyFieldError::EmptyName);
    }
    if name.chars().count() > MAX_KEY_NAME_CHARS {
        return Err(KeyFieldError::NameTooLong);
    }
    Ok(name.to_string())
}

/// `None` (absent or null) gets the read-only default.
pub fn parse_scopes(requested: Option<&[String]>) -> Result<ScopeSet, KeyFieldError> {
    match requested {
        None => Ok(ScopeSet::default_read_only()),
        Some(names) => ScopeSet::parse(names.iter().map(String::as_str))
            .map_err(|_| KeyFieldError::UnknownScope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_trimmed_and_must_not_be_blank() {
        assert_eq!(parse_key_name("  laptop ").unwrap(), "laptop");
        assert_eq!(parse_key_name("   "), Err(KeyFieldError::EmptyName));
    }

    #[test]
    fn key_names_longer_than_100_chars_are_refused() {
        assert!(parse_key_name(&"x".repeat(100)).is_ok());
        assert_eq!(
            parse_key_name(&"x".repeat(101)),
            Err(KeyFieldError::NameTooLong)
        );
    }

    #[test]
    fn unknown_scopes_are_refused() {
        assert_eq!(
            parse_scopes(Some(&["nope".to_string()])),
            Err(KeyFieldError::UnknownScope)
        );
    }

    #[test]
    fn an_empty_scope_list_is_a_valid_key() {
        assert_eq!(parse_scopes(Some(&[])).unwrap(), ScopeSet::EMPTY);
    }
}
