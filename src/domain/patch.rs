//! Three-state PATCH fields: absent (leave alone), `null` (clear), or a value (API.md §11.4).

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

/// Serde only calls this when the field is present, so a missing field stays `Absent` through
/// `#[serde(default)]`.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => Patch::Value(value),
            None => Patch::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        due_at: Patch<String>,
    }

    #[test]
    fn distinguishes_absent_null_and_value() {
        let absent: Body = serde_json::from_str("{}").unwrap();
        let null: Body = serde_json::from_str(r#"{"due_at": null}"#).unwrap();
        let value: Body = serde_json::from_str(r#"{"due_at": "x"}"#).unwrap();
        assert_eq!(absent.due_at, Patch::Absent);
        assert_eq!(null.due_at, Patch::Null);
        assert_eq!(value.due_at, Patch::Value("x".to_string()));
    }
}
