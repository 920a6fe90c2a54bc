//! Boolean and decimal query parameters, read the way the upstream API (FastAPI) reads them so
//! that existing clients keep working: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.

use serde::{Deserialize, Deserializer, de};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryBool(pub bool);

impl<'de> Deserialize<'de> for QueryBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_bool(&text)
            .map(QueryBool)
            .ok_or_else(|| de::Error::custom("must be a boolean (true or false)"))
    }
}

/// The boolean forms a query parameter may take (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A finite decimal number: `nan` and `inf`, which Rust would parse, cannot be stored or
/// returned as JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryFloat(pub f64);

impl<'de> Deserialize<'de> for QueryFloat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_finite(&text)
            .map(QueryFloat)
            .ok_or_else(|| de::Error::custom("must be a finite number"))
    }
}

fn parse_finite(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_the_upstream_api_reads_them() {
        for text in ["true", "True", "1", "yes", "on"] {
            assert_eq!(parse_bool(text), Some(true), "{text}");
        }
        for text in ["false", "FALSE", "0", "no", "off"] {
            assert_eq!(parse_bool(text), Some(false), "{text}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn only_finite_numbers_are_accepted() {
        assert_eq!(parse_finite("3.5"), Some(3.5));
        assert_eq!(parse_finite("-2"), Some(-2.0));
        assert_eq!(parse_finite("1e3"), Some(1000.0));
        for text in ["nan", "NaN", "inf", "-infinity", "1e999", "", "abc"] {
            assert_eq!(parse_finite(text), None, "{text}");
        }
    }
}
