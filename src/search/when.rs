//! Relative dates in a question ("yesterday", "last week", "3 days ago", "on monday"), resolved
//! as a window of whole days in the asker's time zone and returned in UTC, so that "yesterday"
//! asked at 01:00 in Tokyo means the Tokyo yesterday.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use regex::{Captures, Regex};

/// A time window named in a question: `[from, before)` in UTC, and where the words were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateWindow {
    pub from: DateTime<Utc>,
    pub before: DateTime<Utc>,
    /// The byte range of the words in the question, to keep them out of the search text.
    pub span: std::ops::Range<usize>,
}

/// An IANA zone name (`Europe/Paris`); `None` for anything else.
pub fn parse_time_zone(name: &str) -> Option<Tz> {
    name.trim().parse::<Tz>().ok()
}

const WEEKDAY: &str = r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)";
const NUMBER: &str = r"(\d{1,3}|a|one|two|three|four|five|six|seven|eight|nine|ten|couple of)";
const UNIT: &str = r"(day|week|month|year)s?";

static PATTERNS: LazyLock<Vec<(Rule, Regex)>> = LazyLock::new(|| {
    let rules = [
        (
            Rule::DayBeforeYesterday,
            r"\bday before yesterday\b".to_string(),
        ),
        (Rule::Yesterday, r"\byesterday\b".to_string()),
        (
            Rule::Today,
            r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b".to_string(),
        ),
        (
            Rule::Past,
            format!(r"\b(?:in the |over the )?(?:last|past) {NUMBER} {UNIT}\b"),
        ),
        (Rule::Ago, format!(r"\b{NUMBER} {UNIT} ago\b")),
        (Rule::ThisUnit, r"\bthis (week|month|year)\b".to_string()),
        (Rule::LastUnit, r"\blast (week|month|year)\b".to_string()),
        (
            Rule::Weekday,
            format!(r"\b(?:(last|on|this past) )?{WEEKDAY}\b"),
        ),
    ];
    rules
        .into_iter()
        .map(|(rule, pattern)| {
            (
                rule,
                Regex::new(&format!("(?i){pattern}")).expect("valid date pattern"),
            )
        })
        .collect()
});

#[derive(Debug, Clone, Copy)]
enum Rule {
    DayBeforeYesterday,
    Yesterday,
    Today,
    Past,
    Ago,
    ThisUnit,
    LastUnit,
    Weekday,
}

fn number(text: &str) -> Option<u32> {
    match text.to_ascii_lowercase().as_str() {
        "a" | "one" => Some(1),
        "two" | "couple of" => Some(2),
        "three" => Some(3),
        "four" => Some(4),
        "five" => Some(5),
        "six" => Some(6),
        "seven" => Some(7),
        "eight" => Some(8),
        "nine" => Some(9),
        "ten" => Some(10),
        digits => digits.parse().ok(),
    }
}

fn weekday(name: &str) -> Option<Weekday> {
    name.to_ascii_lowercase().parse().ok()
}

fn week_start(day: NaiveDate) -> NaiveDate {
    day - Days::new(u64::from(day.weekday().num_days_from_monday()))
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn year_start(day: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap_or(day)
}

/// `[first, end)` in local days for a rule that matched.
fn local_days(
    rule: Rule,
    captures: &Captures<'_>,
    today: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    let next = |day: NaiveDate| day.checked_add_days(Days::new(1));
    match rule {
        Rule::DayBeforeYesterday => {
            let day = today.checked_sub_days(Days::new(2))?;
            Some((day, next(day)?))
        }
        Rule::Yesterday => {
            let day = today.checked_sub_days(Days::new(1))?;
            Some((day, today))
        }
        Rule::Today => Some((today, next(today)?)),
        Rule::Past => {
            let count = number(captures.get(1)?.as_str())?.clamp(1, 3650);
            let first = back(today, captures.get(2)?.as_str(), count)?;
            Some((first, next(today)?))
        }
        Rule::Ago => {
            let count = number(captures.get(1)?.as_str())?.clamp(1, 3650);
            let unit = captures.get(2)?.as_str().to_ascii_lowercase();
            let day = back(today, &unit, count)?;
            match unit.as_str() {
                "day" => Some((day, next(day)?)),
                "week" => Some((week_start(day), week_start(day) + Days::new(7))),
                "month" => Some((
                    month_start(day),
                    month_start(day).checked_add_months(Months::new(1))?,
                )),
                _ => Some((
                    year_start(day),
                    year_start(day).checked_add_months(Months::new(12))?,
                )),
            }
        }
        Rule::ThisUnit => match captures.get(1)?.as_str().to_ascii_lowercase().as_str() {
            "week" => Some((week_start(today), next(today)?)),
            "month" => Some((month_start(today), next(today)?)),
            _ => Some((year_start(today), next(today)?)),
        },
        Rule::LastUnit => match captures.get(1)?.as_str().to_ascii_lowercase().as_str() {
            "week" => {
                let this = week_start(today);
                Some((this.checked_sub_days(Days::new(7))?, this))
            }
            "month" => {
                let this = month_start(today);
                Some((this.checked_sub_months(Months::new(1))?, this))
            }
            _ => {
                let this = year_start(today);
                Some((this.checked_sub_months(Months::new(12))?, this))
            }
        },
        Rule::Weekday => {
            let wanted = weekday(captures.get(2)?.as_str())?;
            let strictly_before = captures
                .get(1)
                .is_some_and(|m| !m.as_str().eq_ignore_ascii_case("on"));
            let mut day = if strictly_before {
                today.checked_sub_days(Days::new(1))?
            } else {
                today
            };
            while day.weekday() != wanted {
                day = day.checked_sub_days(Days::new(1))?;
            }
            Some((day, next(day)?))
        }
    }
}

fn back(today: NaiveDate, unit: &str, count: u32) -> Option<NaiveDate> {
    match unit.to_ascii_lowercase().trim_end_matches('s') {
        "day" => today.checked_sub_days(Days::new(u64::from(count))),
        "week" => today.checked_sub_days(Days::new(7 * u64::from(count))),
        "month" => today.checked_sub_months(Months::new(count)),
        _ => today.checked_sub_months(Months::new(12 * count)),
    }
}

/// Local midnight of `day` in `zone`, in UTC (the earliest instant on a DST gap or overlap).
fn local_midnight(zone: Tz, day: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = day.and_hms_opt(0, 0, 0)?;
    let local = zone.from_local_datetime(&midnight).earliest().or_else(|| {
        zone.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
            .earliest()
    })?;
    Some(local.with_timezone(&Utc))
}

/// The first relative date named in `question`, as seen at `now` in `zone`.
pub fn resolve(question: &str, now: DateTime<Utc>, zone: Tz) -> Option<DateWindow> {
    let today = now.with_timezone(&zone).date_naive();
    let (rule, captures) = PATTERNS
        .iter()
        .filter_map(|(rule, pattern)| pattern.captures(question).map(|c| (*rule, c)))
        .min_by_key(|(_, captures)| captures.get(0).map_or(usize::MAX, |m| m.start()))?;
    let whole = captures.get(0)?;
    let (first, end) = local_days(rule, &captures, today)?;
    Some(DateWindow {
        from: local_midnight(zone, first)?,
        before: local_midnight(zone, end)?,
        span: whole.start()..whole.end(),
    })
}

/// The question without the words of its date window, for the search text.
pub fn without_window(question: &str, window: Option<&DateWindow>) -> String {
    match window {
        Some(window) => format!(
            "{} {}",
            &question[..window.span.start],
            &question[window.span.end..]
        ),
        None => question.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn window(question: &str, now: &str, zone: &str) -> Option<(String, String)> {
        resolve(question, at(now), parse_time_zone(zone).unwrap())
            .map(|w| (w.from.to_rfc3339(), w.before.to_rfc3339()))
    }

    #[test]
    fn yesterday_is_the_local_yesterday_of_the_askers_zone() {
        // 2026-07-21T16:30Z is already 01:30 on the 22nd in Tokyo.
        assert_eq!(
            window(
                "what did I do yesterday?",
                "2026-07-21T16:30:00Z",
                "Asia/Tokyo"
            )
            .unwrap(),
            (
                "2026-07-20T15:00:00+00:00".into(),
                "2026-07-21T15:00:00+00:00".into()
            )
        );
        assert_eq!(
            window("what did I do yesterday?", "2026-07-21T16:30:00Z", "UTC").unwrap(),
            (
                "2026-07-20T00:00:00+00:00".into(),
                "2026-07-21T00:00:00+00:00".into()
            )
        );
    }

    #[test]
    fn weeks_months_and_counts_resolve_to_whole_local_days() {
        // Wednesday 2026-07-22.
        let now = "2026-07-22T12:00:00Z";
        assert_eq!(
            window("pricing last week", now, "UTC").unwrap(),
            (
                "2026-07-13T00:00:00+00:00".into(),
                "2026-07-20T00:00:00+00:00".into()
            )
        );
        assert_eq!(
            window("this month", now, "UTC").unwrap().0,
            "2026-07-01T00:00:00+00:00"
        );
        assert_eq!(
            window("in the last 3 days", now, "UTC").unwrap(),
            (
                "2026-07-19T00:00:00+00:00".into(),
                "2026-07-23T00:00:00+00:00".into()
            )
        );
        assert_eq!(
            window("two days ago", now, "UTC").unwrap(),
            (
                "2026-07-20T00:00:00+00:00".into(),
                "2026-07-21T00:00:00+00:00".into()
            )
        );
        assert_eq!(
            window("what happened last Monday", now, "Europe/Paris").unwrap(),
            (
                "2026-07-19T22:00:00+00:00".into(),
                "2026-07-20T22:00:00+00:00".into()
            )
        );
    }

    #[test]
    fn a_question_without_a_date_has_no_window() {
        assert_eq!(
            window("what is my favourite food", "2026-07-22T12:00:00Z", "UTC"),
            None
        );
        assert!(parse_time_zone("Not/Real").is_none());
        assert!(parse_time_zone("America/New_York").is_some());
    }

    #[test]
    fn the_date_words_are_cut_from_the_search_text() {
        let question = "what did we decide yesterday about pricing";
        let found = resolve(question, at("2026-07-22T12:00:00Z"), Tz::UTC);
        assert_eq!(
            without_window(question, found.as_ref()),
            "what did we decide   about pricing"
        );
    }
}
