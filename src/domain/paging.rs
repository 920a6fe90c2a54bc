//! Query integers and pagination bounds (API.md §1, §11.1): a non-integer is a 422; any
//! integer, however large or negative, is clamped into the route's range.

use serde::{Deserialize, Deserializer, de};

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
    value.map_or(default, |QueryInt(v)| v).clamp(min, max)
}

/// A page: `limit` in `[1, max_limit]`, `offset >= 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    pub fn new(
        limit: Option<QueryInt>,
        offset: Option<QueryInt>,
        default_limit: i64,
        max_limit: i64,
    ) -> Self {
        Page {
            limit: clamp(limit, default_limit, 1, max_limit),
            offset: clamp(offset, 0, 0, i64::MAX),
        }
    }
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
    fn pages_clamp_into_range() {
        let page = Page::new(Some(QueryInt(0)), Some(QueryInt(-5)), 25, 1000);
        assert_eq!(
            page,
            Page {
                limit: 1,
                offset: 0
            }
        );
        let page = Page::new(Some(QueryInt(i64::MAX)), None, 25, 1000);
        assert_eq!(page.limit, 1000);
        assert_eq!(Page::new(None, None, 25, 1000).limit, 25);
    }
}
