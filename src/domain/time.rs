//! Timestamps: stored as integer microseconds, returned as RFC 3339 UTC with a `Z` suffix,
//! accepted with any offset (a date-time without offset is UTC).

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serializer};

pub type Timestamp = DateTime<Utc>;

/// The current time at the storage precision (microseconds), so a value read back equals the one
/// that was written.
pub fn now() -> Timestamp {
    truncate_to_micros(Utc::now())
}

pub fn truncate_to_micros(ts: Timestamp) -> Timestamp {
    from_micros(to_micros(ts))
}

pub fn to_micros(ts: Timestamp) -> i64 {
    ts.timestamp_micros()
}

pub fn from_micros(micros: i64) -> Timestamp {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `2025-12-10T17:00:00Z`, with fractional seconds only when there are any.
pub fn format(ts: &Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Whether `ts` can be written in RFC 3339, whose years are `0000`..`9999` (chrono would write
/// `-0001-...` or `+10000-...` outside them).
pub fn is_rfc3339_year(ts: &Timestamp) -> bool {
    use chrono::Datelike;
    (0..=9999).contains(&ts.year())
}

/// Parses an RFC 3339 date-time; one without an offset is taken as UTC. A time whose UTC year
/// falls outside `0000`..`9999` (`0000-01-01T00:00:00+01:00`) is refused: it could not be
/// written back.
pub fn parse_datetime(text: &str) -> Option<Timestamp> {
    parse_any_year(text).filter(is_rfc3339_year)
}

fn parse_any_year(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(ts) = DateTime::parse_from_rfc3339(text) {
        return Some(truncate_to_micros(ts.with_timezone(&Utc)));
    }
    // RFC 3339 allows a space or a lowercase `t` between date and time; offset-less means UTC.
    for pattern in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, pattern) {
            return Some(truncate_to_micros(Utc.from_utc_datetime(&naive)));
        }
    }
    if let Ok(ts) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(truncate_to_micros(ts.with_timezone(&Utc)));
    }
    None
}

/// A bare `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

pub fn start_of_day(date: NaiveDate) -> Timestamp {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// A `start_date` query bound, inclusive: a bare date is the start of that UTC day (API.md §1).
pub fn parse_start_bound(text: &str) -> Option<Timestamp> {
    match parse_date(text) {
        Some(date) => Some(start_of_day(date)),
        None => parse_datetime(text),
    }
}

/// An `end_date` query bound, returned as an exclusive limit so both forms compare with `<`: a
/// bare date includes its whole UTC day (< next midnight, §11.3), a date-time includes itself.
pub fn parse_end_bound_exclusive(text: &str) -> Option<Timestamp> {
    match parse_date(text) {
        Some(date) => Some(
            date.succ_opt()
                .map_or(DateTime::<Utc>::MAX_UTC, start_of_day),
        ),
        None => parse_datetime(text).map(|ts| ts + chrono::TimeDelta::microseconds(1)),
    }
}

/// Serde helpers for `#[serde(with = "...")]` on response and request fields.
pub mod serde_rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(ts: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_datetime(&text).ok_or_else(|| {
            serde::de::Error::custom("must be an RFC 3339 date-time such as 2025-12-10T17:00:00Z")
        })
    }
}

pub mod serde_rfc3339_option {
    use super::*;

    pub fn serialize<S: Serializer>(
        ts: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => serializer.serialize_str(&format(ts)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => parse_datetime(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 date-time")),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_whole_seconds_without_fraction_and_with_z() {
        let ts = parse_datetime("2025-12-10T17:00:00Z").unwrap();
        assert_eq!(format(&ts), "2025-12-10T17:00:00Z");
    }

    #[test]
    fn converts_offsets_to_utc() {
        let ts = parse_datetime("2025-12-10T19:00:00+02:00").unwrap();
        assert_eq!(format(&ts), "2025-12-10T17:00:00Z");
    }

    #[test]
    fn reads_a_datetime_without_offset_as_utc() {
        let ts = parse_datetime("2025-12-10T17:00:00").unwrap();
        assert_eq!(format(&ts), "2025-12-10T17:00:00Z");
    }

    #[test]
    fn keeps_microseconds_and_drops_finer_precision() {
        let ts = parse_datetime("2025-12-10T17:00:00.123456789Z").unwrap();
        assert_eq!(format(&ts), "2025-12-10T17:00:00.123456Z");
        assert_eq!(from_micros(to_micros(ts)), ts);
    }

    #[test]
    fn a_bare_end_date_includes_its_whole_day() {
        let end = parse_end_bound_exclusive("2025-12-10").unwrap();
        assert_eq!(format(&end), "2025-12-11T00:00:00Z");
        let start = parse_start_bound("2025-12-10").unwrap();
        assert_eq!(format(&start), "2025-12-10T00:00:00Z");
    }

    #[test]
    fn a_datetime_end_bound_includes_that_instant() {
        let end = parse_end_bound_exclusive("2025-12-10T17:00:00+01:00").unwrap();
        assert_eq!(format(&end), "2025-12-10T16:00:00.000001Z");
        assert!(parse_end_bound_exclusive("10/12/2025").is_none());
    }

    #[test]
    fn rejects_a_bare_date_as_a_datetime() {
        assert!(parse_datetime("2025-12-10").is_none());
        assert!(parse_date("2025-12-10").is_some());
        assert!(parse_date("2025-12-1").is_none());
    }
}
