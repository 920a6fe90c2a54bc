//! Integer, boolean and decimal query parameters, read the way the upstream API (FastAPI) reads
//! them so that existing clients keep working: a non-integer is a 422 while any integer is
//! clamped into the route's range (API.md §1, §11.1); booleans are `true`/`false`, `1`/`0`,
//! `yes`/`no`, `on`/`off`.

use serde::{Deserialize, Deserializer, de};

use crate::domain::paging::{self, Page};

/// An integer query parameter, saturated to `i64` so that `limit=99999999999999999999` clamps
/// instead of failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryInt(pub i64);

impl<'de> Deserialize<'de> for QueryInt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_saturating(&text)
            .map(QueryInt)
            .ok_or_else(|| de::Error::custom("must be an integer"))
    }
}

fn parse_saturating(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match digits.parse::<i64>() {
        Ok(value) if negative => -value,
        Ok(value) => value,
        Err(_) if negative => i64::MIN,
        Err(_) => i64::MAX,
    })
}

/// `value` (or `default` when absent) clamped into `[min, max]`.
pub fn clamp(value: Option<QueryInt>, default: i64, min: i64, max: i64) -> i64 {
    paging::clamp(value.map(|QueryInt(v)| v), default, min, max)
}

/// The page a list's `limit` and `offset` ask for.
pub fn page(
    limit: Option<QueryInt>,
    offset: Option<QueryInt>,
    default_limit: i64,
    max_limit: i64,
) -> Page {
    Page::new(
        limit.map(|QueryInt(v)| v),
        offset.map(|QueryInt(v)| v),
        default_limit,
        max_limit,
    )
}

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

/// The boolean forms a query parameter may take.
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
    fn integers_of_any_size_saturate() {
        assert_eq!(parse_saturating("25"), Some(25));
        assert_eq!(parse_saturating("-3"), Some(-3));
        assert_eq!(parse_saturating("+7"), Some(7));
        assert_eq!(parse_saturating("99999999999999999999999"), Some(i64::MAX));
        assert_eq!(parse_saturating("-99999999999999999999999"), Some(i64::MIN));
    }

    #[test]
    fn non_integers_are_refused() {
        for text in ["", "1.5", "abc", "1e3", "-", "0x10"] {
            assert_eq!(parse_saturating(text), None, "{text}");
        }
    }

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
