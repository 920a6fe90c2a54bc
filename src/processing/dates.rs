//! The due-date resolver: finds the time expression in a sentence and turns it into an instant,
//! relative to a reference time, in UTC (the API carries no time zone yet).
//!
//! The rules follow the table in PROCESSING.md §3 "Due dates". Anything that resolves into the
//! past yields no due date: a wrong reminder is worse than none.

use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, Days, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc,
    Weekday,
};
use regex::{Captures, Regex};

const MONTH: &str = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";
/// Weekday names in English, Spanish, German, French and Portuguese.
const WEEKDAY: &str = r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday|lunes|martes|mi[ée]rcoles|jueves|viernes|s[áa]bado|domingo|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|segunda-feira|ter[çc]a(?:-feira)?|quarta-feira|quinta-feira|sexta(?:-feira)?)";
const NUMBER: &str = r"(\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty[- ]five|forty|fifty|sixty|ninety|a couple of|couple of)";
const MERIDIEM: &str = r"(a\.?m\.?|p\.?m\.?)";

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid date regex")
}

static ISO_DATE: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"));
static NUMERIC_DATE_WITH_YEAR: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"));
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b{MONTH}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?"
    ))
});
static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}\b(?:,?\s+(\d{{4}})\b)?"
    ))
});
static DAY_OF_MONTH: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b"));
static DAY_AFTER_TOMORROW: LazyLock<Regex> = LazyLock::new(|| regex(r"\bday after tomorrow\b"));
static TOMORROW: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(?:tomorrow|tmrw|tmr|mañana|morgen|demain|amanhã)\b"));
static TODAY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(?:today|tonight|this (?:morning|afternoon|evening)|hoy|heute|aujourd'hui|hoje|esta noche|ce soir)\b",
    )
});
static TONIGHT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(?:tonight|esta noche|heute abend|ce soir|hoje à noite)\b"));
static NEXT_WEEK_WEEKDAY: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b(?:{WEEKDAY}\s+(?:of\s+)?next\s+week|next\s+week\s+(?:on\s+)?{WEEKDAY})\b"
    ))
});
static WEEKDAY_NAME: LazyLock<Regex> = LazyLock::new(|| regex(&format!(r"\b{WEEKDAY}\b")));
static NEXT_WEEK: LazyLock<Regex> = LazyLock::new(|| regex(r"\bnext week\b"));
static WEEKEND: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(?:this|the|over the|on the|by the) weekend\b"));
static END_OF_WEEK: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(?:end of (?:the |this )?week|eow)\b"));
static END_OF_MONTH: LazyLock<Regex> = LazyLock::new(|| regex(r"\bend of (?:the |this )?month\b"));
static RELATIVE_OFFSET: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b(?:in|within)\s+(?:the\s+next\s+)?{NUMBER}\s+(minutes?|mins?|hours?|hrs?|days?|weeks?)\b"
    ))
});
/// "within the next hour", "in the next hour", "within the hour": one hour.
static NEXT_HOUR: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(?:in|within)\s+the\s+(?:next\s+)?hour\b"));
static HALF_AN_HOUR: LazyLock<Regex> = LazyLock::new(|| regex(r"\bin\s+half\s+an\s+hour\b"));
static URGENT: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\b(?:asap|a\.s\.a\.p\.?|urgent(?:ly)?|as soon as possible|right away|immediately)")
});
static CLOCK_WITH_MERIDIEM: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b(\d{{1,2}})(?::(\d{{2}}))?\s*{MERIDIEM}(?:\W|$)"
    ))
});
static CLOCK_AFTER_PREPOSITION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?:\b(?:at|by|around|until|till|before|from|a las|à|às)|@)\s+(\d{1,2})(?::(\d{2}))?(\s*o'?clock)?\b",
    )
});
static CLOCK_HH_MM: LazyLock<Regex> = LazyLock::new(|| regex(r"(?:^|[^\d/:.])(\d{1,2}):(\d{2})\b"));
static CLOCK_OCLOCK: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(\d{1,2})\s*o'?clock\b"));
/// "8h", "15h30" (French, Portuguese), "18 uhr" (German): a 24-hour clock.
static CLOCK_H: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(\d{1,2})\s?(?:h|uhr)(?:\s?(\d{2}))?\b"));
static NOON: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:noon|midday)\b"));
static MIDNIGHT: LazyLock<Regex> = LazyLock::new(|| regex(r"\bmidnight\b"));
static END_OF_DAY: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(?:end of (?:the |to)?day|eod|close of business|cob)\b"));
static MORNING: LazyLock<Regex> = LazyLock::new(|| regex(r"\bmorning\b"));
static AFTERNOON: LazyLock<Regex> = LazyLock::new(|| regex(r"\bafternoon\b"));
static EVENING: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:evening|night)\b"));
/// Past references make a sentence time-bound without giving a future due date; memories use
/// this to stay timeless.
/// A superset of every time expression above, matched as plain substrings in one pass: a
/// sentence without any of these holds no time, and most sentences are ruled out here without
/// running the patterns one by one.
static TIME_HINT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\d|to(?:day|night|morrow)|tmr|morning|afternoon|evening|night|noon|midday|midnight|week|eow|eod|cob|close of business|month|day|hour|hr|min|asap|a\.s\.a\.p|urgent|as soon as|right away|immediately|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mañana|morgen|demain|amanh|hoy|heute|aujourd|hoje|noche|soir|lunes|martes|mi[ée]rcoles|jueves|viernes|s[áa]bado|domingo|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|segunda|ter[çc]a|quarta|quinta|sexta|uhr",
    )
});

/// Time words in other languages that the patterns above would misread ("guten morgen" is a
/// greeting, "por la mañana" a morning), rewritten before matching.
fn normalise_foreign(lower: &str) -> std::borrow::Cow<'_, str> {
    if !lower.contains("morgen") && !lower.contains("mañana") {
        return std::borrow::Cow::Borrowed(lower);
    }
    std::borrow::Cow::Owned(
        lower
            .replace("guten morgen", "guten tag")
            .replace("de la mañana", "morning")
            .replace("por la mañana", "morning")
            .replace("mañana por la morning", "tomorrow morning"),
    )
}

static PAST_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(?:yesterday|last (?:night|week|month|year|monday|tuesday|wednesday|thursday|friday|saturday|sunday)|ago|right now|this week|this month|this year|next (?:month|year)|soon|later)\b",
    )
});

/// Every time expression, with the prepositions that introduce it, for removal from action
/// descriptions (the time goes into `due_at`).
static TIME_PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives = [
        r"\d{4}-\d{1,2}-\d{1,2}".to_string(),
        r"\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})".to_string(),
        format!(r"{MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"),
        format!(r"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}(?:,?\s+\d{{4}})?"),
        r"the\s+\d{1,2}(?:st|nd|rd|th)".to_string(),
        r"(?:the\s+)?day after tomorrow".to_string(),
        r"(?:tomorrow|tmrw|tmr|mañana|morgen|demain|amanhã)(?:\s+(?:morning|afternoon|evening|night))?".to_string(),
        r"today|tonight|this (?:morning|afternoon|evening)|hoy|heute(?: abend)?|aujourd'hui|hoje(?: à noite)?|esta noche|ce soir".to_string(),
        format!(r"{WEEKDAY}\s+(?:of\s+)?next\s+week"),
        format!(r"next\s+week\s+(?:on\s+)?{WEEKDAY}"),
        format!(r"{WEEKDAY}(?:\s+(?:morning|afternoon|evening|night))?"),
        r"next week".to_string(),
        r"(?:this|the|over the|on the|by the) weekend".to_string(),
        r"(?:the\s+)?end of (?:the |this )?(?:week|month|day)|end of today|eod|eow|close of business|cob".to_string(),
        format!(r"(?:in|within)\s+(?:the\s+next\s+)?{NUMBER}\s+(?:minutes?|mins?|hours?|hrs?|days?|weeks?)"),
        r"(?:in|within)\s+the\s+(?:next\s+)?hour".to_string(),
        r"\d{1,2}\s?(?:h|uhr)(?:\s?\d{2})?".to_string(),
        r"in\s+half\s+an\s+hour".to_string(),
        r"asap|a\.s\.a\.p\.?|urgently|as soon as possible|right away|immediately".to_string(),
        format!(r"\d{{1,2}}(?::\d{{2}})?\s*{MERIDIEM}"),
        r"\d{1,2}:\d{2}".to_string(),
        r"\d{1,2}\s*o'?clock".to_string(),
        r"noon|midday|midnight".to_string(),
        r"(?:in the\s+)?(?:morning|afternoon|evening)".to_string(),
    ];
    let joined = alternatives.join("|");
    regex(&format!(
        r"(?i)(?:\s*,)?\s*\b(?:(?:by|on|at|before|until|till|around|this|next|due|from|for|no later than|first thing|bis|am|um|le|para el|para la|para|el|la|à|às|a las|avant|antes del|antes de|pour)\s+)*(?:{joined})(?:\s+(?:at|by|around)\s+\d{{1,2}}(?::\d{{2}})?(?:\s*{MERIDIEM})?)?\b\.?"
    ))
});
static BARE_AT_HOUR: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\s*\b(?:at|by|around|a las|à|às)\s+\d{1,2}(?::\d{2})?\b"));

/// Resolves the time expression found in `sentence` to an instant, or `None` when there is
/// none or it lies before `now`.
pub fn resolve_due(
    sentence: &str,
    reference: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    resolve_due_on(sentence, reference, now, None)
}

/// [`resolve_due`] for one clause of a longer sentence: when the clause gives a time of day but
/// no date ("and then at noon …"), `day` (the date named earlier in the sentence) is its date.
pub fn resolve_due_on(
    sentence: &str,
    reference: DateTime<Utc>,
    now: DateTime<Utc>,
    day: Option<NaiveDate>,
) -> Option<DateTime<Utc>> {
    let lower = sentence.to_lowercase();
    let lower = normalise_foreign(&lower);
    let reference = reference.naive_utc();
    let resolved = match day {
        Some(day) if find_date(&lower, reference.date()).is_none() => {
            let clock = find_clock_time(&lower);
            let part_of_day = find_part_of_day(&lower);
            match (clock, part_of_day) {
                (None, None) => resolve_lowercase(&lower, reference)?,
                (clock, part) => {
                    let time = clock
                        .map(|c| c.resolve(part))
                        .or(part)
                        .unwrap_or_else(end_of_day);
                    let day = if clock.is_some_and(|c| c.is_midnight) {
                        day.checked_add_days(Days::new(1))?
                    } else {
                        day
                    };
                    day.and_time(time)
                }
            }
        }
        _ => resolve_lowercase(&lower, reference)?,
    };
    let resolved = resolved.and_utc();
    (resolved >= now).then_some(resolved)
}

/// The date a sentence names, resolved against the reference day ("tomorrow", "on the 3rd").
pub fn find_day(sentence: &str, reference: DateTime<Utc>) -> Option<NaiveDate> {
    let lower = sentence.to_lowercase();
    let lower = normalise_foreign(&lower);
    let reference = reference.date_naive();
    let found = find_date(&lower, reference)?;
    if found.kind == DateKind::MonthDay && found.date < reference {
        return found.date.with_year(found.date.year() + 1);
    }
    Some(found.date)
}

/// True when the sentence holds any time expression, resolvable or not (including urgency).
pub fn has_time_cue(lower: &str) -> bool {
    if !TIME_HINT.is_match(lower) {
        return false;
    }
    let lower = &*normalise_foreign(lower);
    // Any ordinary day works as the reference: only whether something is found matters.
    let any_day = NaiveDate::from_ymd_opt(2000, 1, 3).expect("valid date");
    find_date(lower, any_day).is_some()
        || find_clock_time(lower).is_some()
        || find_offset(lower).is_some()
        || URGENT.is_match(lower)
        || END_OF_DAY.is_match(lower)
}

/// True when the sentence names both a day and a clock time: what a calendar event needs.
pub fn has_date_and_clock_time(lower: &str) -> bool {
    if !TIME_HINT.is_match(lower) {
        return false;
    }
    let lower = &*normalise_foreign(lower);
    let any_day = NaiveDate::from_ymd_opt(2000, 1, 3).expect("valid date");
    find_date(lower, any_day).is_some() && find_clock_time(lower).is_some()
}

/// True when the sentence is tied to a moment relative to when it was said ("tomorrow",
/// "friday", "last week"), so that it cannot be a timeless memory. Calendar dates ("my birthday
/// is march 3rd") are timeless and do not count.
pub fn mentions_relative_time(lower: &str) -> bool {
    [
        &*DAY_AFTER_TOMORROW,
        &*TOMORROW,
        &*TODAY,
        &*WEEKDAY_NAME,
        &*NEXT_WEEK,
        &*WEEKEND,
        &*END_OF_WEEK,
        &*END_OF_MONTH,
        &*RELATIVE_OFFSET,
        &*HALF_AN_HOUR,
        &*URGENT,
        &*PAST_REFERENCE,
    ]
    .iter()
    .any(|pattern| pattern.is_match(lower))
}

/// Removes time expressions (and the prepositions introducing them) from an action phrase.
pub fn strip_time_expressions(text: &str) -> String {
    let stripped = TIME_PHRASE.replace_all(text, "");
    let stripped = BARE_AT_HOUR.replace_all(&stripped, "");
    stripped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The date found in a sentence and how it was expressed, which decides how it may be shifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateKind {
    /// Carries its own year: never shifted.
    Explicit,
    /// Month and day without a year: next year when already past.
    MonthDay,
    /// Relative to the reference ("tomorrow", "friday", "next week").
    Relative,
}

#[derive(Debug, Clone, Copy)]
struct FoundDate {
    date: NaiveDate,
    kind: DateKind,
    /// The time implied by the expression itself ("next week" -> 23:59, "tonight" -> 20:00).
    implied_time: Option<NaiveTime>,
}

fn resolve_lowercase(lower: &str, reference: NaiveDateTime) -> Option<NaiveDateTime> {
    let found_date = find_date(lower, reference.date());
    let clock = find_clock_time(lower);
    let part_of_day = find_part_of_day(lower);

    if found_date.is_none() && clock.is_none() {
        if let Some(offset) = find_offset(lower) {
            return Some(reference + offset);
        }
        if let Some(time) = part_of_day {
            return Some(roll_forward(reference.date().and_time(time), reference));
        }
        if URGENT.is_match(lower) {
            return Some(reference + Duration::hours(2));
        }
        return None;
    }

    let time = clock
        .map(|c| c.resolve(part_of_day))
        .or(part_of_day)
        .or(found_date.and_then(|d| d.implied_time))
        .unwrap_or_else(end_of_day);

    match found_date {
        None => {
            // Days in an offset ("in 2 days at 3pm") give the date; otherwise the reference day,
            // rolled to tomorrow when that time has already passed.
            if let Some(offset) = find_offset(lower).filter(|o| o.num_days() >= 1) {
                return Some((reference + offset).date().and_time(time));
            }
            Some(roll_forward(reference.date().and_time(time), reference))
        }
        Some(found) => {
            let mut date = found.date;
            if found.kind == DateKind::MonthDay && date < reference.date() {
                date = date.with_year(date.year() + 1).unwrap_or(date);
            }
            let at_midnight = clock.is_some_and(|c| c.is_midnight);
            let date = if at_midnight {
                // "friday at midnight" means the end of friday.
                date.checked_add_days(Days::new(1))?
            } else {
                date
            };
            Some(date.and_time(time))
        }
    }
}

fn roll_forward(candidate: NaiveDateTime, reference: NaiveDateTime) -> NaiveDateTime {
    if candidate < reference {
        candidate + Duration::days(1)
    } else {
        candidate
    }
}

fn end_of_day() -> NaiveTime {
    NaiveTime::from_hms_opt(23, 59, 0).expect("valid time")
}

fn hm(hour: u32, minute: u32) -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(hour, minute, 0)
}

fn find_date(lower: &str, reference: NaiveDate) -> Option<FoundDate> {
    let relative = |date: NaiveDate| FoundDate {
        date,
        kind: DateKind::Relative,
        implied_time: None,
    };
    if let Some(c) = ISO_DATE.captures(lower) {
        let date = NaiveDate::from_ymd_opt(num(&c, 1)? as i32, num(&c, 2)?, num(&c, 3)?)?;
        return Some(FoundDate {
            date,
            kind: DateKind::Explicit,
            implied_time: None,
        });
    }
    if let Some(c) = NUMERIC_DATE_WITH_YEAR.captures(lower) {
        let mut year = num(&c, 3)? as i32;
        if year < 100 {
            year += 2000;
        }
        let date = NaiveDate::from_ymd_opt(year, num(&c, 1)?, num(&c, 2)?)?;
        return Some(FoundDate {
            date,
            kind: DateKind::Explicit,
            implied_time: None,
        });
    }
    for (pattern, month_group, day_group) in [(&*MONTH_DAY, 1, 2), (&*DAY_MONTH, 2, 1)] {
        for c in pattern.captures_iter(lower) {
            let Some(month) = month_number(&c[month_group]) else {
                continue;
            };
            // "may" is mostly a modal verb: only a month when a plausible day follows directly.
            let Some(day) = num(&c, day_group) else {
                continue;
            };
            let explicit_year = c.get(3).and_then(|y| y.as_str().parse::<i32>().ok());
            let year = explicit_year.unwrap_or(reference.year());
            let Some(date) = NaiveDate::from_ymd_opt(year, month, day) else {
                continue;
            };
            return Some(FoundDate {
                date,
                kind: if explicit_year.is_some() {
                    DateKind::Explicit
                } else {
                    DateKind::MonthDay
                },
                implied_time: None,
            });
        }
    }
    if DAY_AFTER_TOMORROW.is_match(lower) {
        return reference.checked_add_days(Days::new(2)).map(relative);
    }
    if TOMORROW.is_match(lower) {
        return reference.checked_add_days(Days::new(1)).map(relative);
    }
    if TODAY.is_match(lower) {
        return Some(FoundDate {
            date: reference,
            kind: DateKind::Relative,
            implied_time: TONIGHT.is_match(lower).then(|| hm(20, 0)).flatten(),
        });
    }
    if let Some(c) = NEXT_WEEK_WEEKDAY.captures(lower) {
        let name = c.get(1).or_else(|| c.get(2))?.as_str();
        let weekday = weekday_from_name(name)?;
        let monday_next_week = reference
            .checked_sub_days(Days::new(u64::from(
                reference.weekday().num_days_from_monday(),
            )))?
            .checked_add_days(Days::new(7))?;
        let date = monday_next_week
            .checked_add_days(Days::new(u64::from(weekday.num_days_from_monday())))?;
        return Some(relative(date));
    }
    if let Some(c) = WEEKDAY_NAME.captures(lower) {
        let weekday = weekday_from_name(&c[1])?;
        return Some(relative(next_weekday_after(reference, weekday)));
    }
    if NEXT_WEEK.is_match(lower) {
        return reference.checked_add_days(Days::new(7)).map(relative);
    }
    if WEEKEND.is_match(lower) {
        let date = if reference.weekday() == Weekday::Sat {
            reference
        } else {
            next_weekday_after(reference, Weekday::Sat)
        };
        return Some(relative(date));
    }
    if END_OF_WEEK.is_match(lower) {
        let date = if reference.weekday() == Weekday::Fri {
            reference
        } else {
            next_weekday_after(reference, Weekday::Fri)
        };
        return Some(relative(date));
    }
    if END_OF_MONTH.is_match(lower) {
        let first_of_month = reference.with_day(1)?;
        let last = first_of_month
            .checked_add_months(Months::new(1))?
            .checked_sub_days(Days::new(1))?;
        return Some(relative(last));
    }
    if let Some(c) = DAY_OF_MONTH.captures(lower) {
        let day = num(&c, 1)?;
        let mut date = NaiveDate::from_ymd_opt(reference.year(), reference.month(), day)?;
        if date < reference {
            date = date.checked_add_months(Months::new(1))?;
        }
        return Some(relative(date));
    }
    None
}

fn next_weekday_after(reference: NaiveDate, weekday: Weekday) -> NaiveDate {
    let from = reference.weekday().num_days_from_monday();
    let to = weekday.num_days_from_monday();
    let ahead = (to + 7 - from) % 7;
    let ahead = if ahead == 0 { 7 } else { ahead };
    reference + Duration::days(i64::from(ahead))
}

fn weekday_from_name(name: &str) -> Option<Weekday> {
    let name = name.trim_end_matches("-feira");
    Some(match name {
        "monday" | "lunes" | "montag" | "lundi" | "segunda" => Weekday::Mon,
        "tuesday" | "martes" | "dienstag" | "mardi" | "terça" | "terca" => Weekday::Tue,
        "wednesday" | "miércoles" | "miercoles" | "mittwoch" | "mercredi" | "quarta" => {
            Weekday::Wed
        }
        "thursday" | "jueves" | "donnerstag" | "jeudi" | "quinta" => Weekday::Thu,
        "friday" | "viernes" | "freitag" | "vendredi" | "sexta" => Weekday::Fri,
        "saturday" | "sábado" | "sabado" | "samstag" | "samedi" => Weekday::Sat,
        "sunday" | "domingo" | "sonntag" | "dimanche" => Weekday::Sun,
        _ => return None,
    })
}

fn month_number(name: &str) -> Option<u32> {
    let prefix: String = name.chars().take(3).collect();
    Some(match prefix.as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    })
}

fn num(c: &Captures<'_>, group: usize) -> Option<u32> {
    c.get(group)?.as_str().parse().ok()
}

/// A clock time as said: the hour may still need the am/pm rule.
#[derive(Debug, Clone, Copy)]
struct ClockTime {
    hour: u32,
    minute: u32,
    meridiem: Option<Meridiem>,
    is_midnight: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meridiem {
    Am,
    Pm,
}

impl ClockTime {
    fn resolve(self, part_of_day: Option<NaiveTime>) -> NaiveTime {
        let hour = match self.meridiem {
            Some(Meridiem::Am) => self.hour % 12,
            Some(Meridiem::Pm) => self.hour % 12 + 12,
            None if self.hour >= 12 || self.hour == 0 => self.hour,
            None => {
                let said_in_evening = part_of_day.is_some_and(|t| t.hour() >= 14);
                let said_in_morning = part_of_day.is_some_and(|t| t.hour() < 12);
                if said_in_evening || (!said_in_morning && self.hour <= 7) {
                    self.hour + 12
                } else {
                    self.hour
                }
            }
        };
        hm(hour.min(23), self.minute).unwrap_or_else(end_of_day)
    }
}

/// Quantities that follow a number and make "at 5" something other than a clock time.
fn is_quantity_suffix(rest: &str) -> bool {
    let rest = rest.trim_start();
    [
        "%", "percent", "people", "dollars", "bucks", "euros", "pounds", "times", "items", "kg",
        "miles", "km", "of", "years", "minutes", "hours", "days", "weeks", "more", "degrees", "x ",
        "mph", "stars", "out of",
    ]
    .iter()
    .any(|s| rest.starts_with(s))
}

fn find_clock_time(lower: &str) -> Option<ClockTime> {
    if NOON.is_match(lower) {
        return Some(ClockTime {
            hour: 12,
            minute: 0,
            meridiem: None,
            is_midnight: false,
        });
    }
    if MIDNIGHT.is_match(lower) {
        return Some(ClockTime {
            hour: 0,
            minute: 0,
            meridiem: None,
            is_midnight: true,
        });
    }
    let build = |hour: u32, minute: u32, meridiem: Option<Meridiem>| {
        let valid = match meridiem {
            Some(_) => (1..=12).contains(&hour),
            None => hour <= 23,
        } && minute < 60;
        valid.then_some(ClockTime {
            hour,
            minute,
            meridiem,
            is_midnight: false,
        })
    };
    if let Some(c) = CLOCK_WITH_MERIDIEM.captures(lower) {
        let meridiem = if c[3].starts_with('a') {
            Meridiem::Am
        } else {
            Meridiem::Pm
        };
        let minute = c.get(2).map_or(Some(0), |m| m.as_str().parse().ok())?;
        return build(num(&c, 1)?, minute, Some(meridiem));
    }
    if let Some(c) = CLOCK_HH_MM.captures(lower) {
        return build(num(&c, 1)?, num(&c, 2)?, None);
    }
    if let Some(c) = CLOCK_H.captures(lower) {
        let minute = c.get(2).map_or(Some(0), |m| m.as_str().parse().ok())?;
        let hour = num(&c, 1)?;
        if hour <= 23 && minute < 60 {
            // A 24-hour clock: "8h" is 08:00 and "15h" 15:00, no am/pm rule.
            return Some(ClockTime {
                hour,
                minute,
                meridiem: (hour != 0 && hour < 12).then_some(Meridiem::Am),
                is_midnight: false,
            });
        }
    }
    for c in CLOCK_AFTER_PREPOSITION.captures_iter(lower) {
        let whole = c.get(0)?;
        if c.get(3).is_none() && is_quantity_suffix(&lower[whole.end()..]) {
            continue;
        }
        // "call 1-800-555-0199": a phone number, not a time.
        let mut after = lower[whole.end()..].chars();
        if matches!(after.next(), Some('-' | '.'))
            && after.next().is_some_and(|d| d.is_ascii_digit())
        {
            continue;
        }
        let minute = c.get(2).map_or(Some(0), |m| m.as_str().parse().ok())?;
        if let Some(time) = build(num(&c, 1)?, minute, None) {
            return Some(time);
        }
    }
    if let Some(c) = CLOCK_OCLOCK.captures(lower) {
        return build(num(&c, 1)?, 0, None);
    }
    None
}

fn find_part_of_day(lower: &str) -> Option<NaiveTime> {
    if END_OF_DAY.is_match(lower) {
        Some(end_of_day())
    } else if TONIGHT.is_match(lower) {
        hm(20, 0)
    } else if MORNING.is_match(lower) {
        hm(9, 0)
    } else if AFTERNOON.is_match(lower) {
        hm(14, 0)
    } else if EVENING.is_match(lower) {
        hm(18, 0)
    } else {
        None
    }
}

fn find_offset(lower: &str) -> Option<Duration> {
    if HALF_AN_HOUR.is_match(lower) {
        return Some(Duration::minutes(30));
    }
    if NEXT_HOUR.is_match(lower) {
        return Some(Duration::hours(1));
    }
    let c = RELATIVE_OFFSET.captures(lower)?;
    let amount = number_value(&c[1])?;
    let unit = &c[2];
    Some(if unit.starts_with("min") {
        Duration::minutes(amount)
    } else if unit.starts_with('h') {
        Duration::hours(amount)
    } else if unit.starts_with('d') {
        Duration::days(amount)
    } else {
        Duration::weeks(amount)
    })
}

fn number_value(word: &str) -> Option<i64> {
    if let Ok(n) = word.parse::<i64>() {
        return (n > 0).then_some(n);
    }
    Some(match word {
        "a" | "an" | "one" => 1,
        "two" | "a couple of" | "couple of" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "forty-five" | "forty five" => 45,
        "fifty" => 50,
        "sixty" => 60,
        "ninety" => 90,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// Tuesday 2025-06-10 15:00 UTC.
    fn tuesday_afternoon() -> DateTime<Utc> {
        at(2025, 6, 10, 15, 0)
    }

    #[test]
    fn due_date_table() {
        let tue = tuesday_afternoon();
        let fri = at(2025, 6, 13, 10, 0);
        let december = at(2025, 12, 15, 10, 0);
        type Case = (&'static str, DateTime<Utc>, Option<DateTime<Utc>>);
        let cases: Vec<Case> = vec![
            ("call mom today", tue, Some(at(2025, 6, 10, 23, 59))),
            ("watch it tonight", tue, Some(at(2025, 6, 10, 20, 0))),
            ("tonight at 9", tue, Some(at(2025, 6, 10, 21, 0))),
            ("send it tomorrow", tue, Some(at(2025, 6, 11, 23, 59))),
            ("tomorrow morning", tue, Some(at(2025, 6, 11, 9, 0))),
            ("tomorrow afternoon", tue, Some(at(2025, 6, 11, 14, 0))),
            ("tomorrow evening", tue, Some(at(2025, 6, 11, 18, 0))),
            ("the day after tomorrow", tue, Some(at(2025, 6, 12, 23, 59))),
            ("by friday", tue, Some(at(2025, 6, 13, 23, 59))),
            ("on monday", tue, Some(at(2025, 6, 16, 23, 59))),
            // Said on a friday, "friday" is next week's.
            ("by friday", fri, Some(at(2025, 6, 20, 23, 59))),
            ("tuesday", tue, Some(at(2025, 6, 17, 23, 59))),
            ("friday at 3pm", tue, Some(at(2025, 6, 13, 15, 0))),
            ("next week", tue, Some(at(2025, 6, 17, 23, 59))),
            ("wednesday next week", tue, Some(at(2025, 6, 18, 23, 59))),
            ("in 3 hours", tue, Some(at(2025, 6, 10, 18, 0))),
            ("in 20 minutes", tue, Some(at(2025, 6, 10, 15, 20))),
            ("in two days", tue, Some(at(2025, 6, 12, 15, 0))),
            ("in half an hour", tue, Some(at(2025, 6, 10, 15, 30))),
            ("march 3rd", tue, Some(at(2026, 3, 3, 23, 59))),
            ("june 20", tue, Some(at(2025, 6, 20, 23, 59))),
            ("3 july", tue, Some(at(2025, 7, 3, 23, 59))),
            ("the 5th of july at 10am", tue, Some(at(2025, 7, 5, 10, 0))),
            // Year rollover: said in December, March is next year's.
            ("march 3rd", december, Some(at(2026, 3, 3, 23, 59))),
            ("january 2", december, Some(at(2026, 1, 2, 23, 59))),
            // Month rollover.
            ("on the 2nd", tue, Some(at(2025, 7, 2, 23, 59))),
            (
                "by the end of the month",
                tue,
                Some(at(2025, 6, 30, 23, 59)),
            ),
            ("2025-07-01", tue, Some(at(2025, 7, 1, 23, 59))),
            ("march 3rd 2026", tue, Some(at(2026, 3, 3, 23, 59))),
            // An explicit year in the past is never shifted: dropped.
            ("march 3rd, 2024", tue, None),
            ("2024-01-05", tue, None),
            ("at 3", tue, Some(at(2025, 6, 10, 15, 0))),
            ("at 7", tue, Some(at(2025, 6, 10, 19, 0))),
            ("at 9", tue, Some(at(2025, 6, 11, 9, 0))),
            ("at 4:30", tue, Some(at(2025, 6, 10, 16, 30))),
            // 2pm already passed at 15:00 with no date: rolls to tomorrow.
            ("at 2pm", tue, Some(at(2025, 6, 11, 14, 0))),
            ("at 10 am", tue, Some(at(2025, 6, 11, 10, 0))),
            ("5 p.m.", tue, Some(at(2025, 6, 10, 17, 0))),
            ("at noon", tue, Some(at(2025, 6, 11, 12, 0))),
            ("by midnight", tue, Some(at(2025, 6, 11, 0, 0))),
            ("by end of day", tue, Some(at(2025, 6, 10, 23, 59))),
            ("eod", tue, Some(at(2025, 6, 10, 23, 59))),
            ("this evening", tue, Some(at(2025, 6, 10, 18, 0))),
            ("this morning", tue, None),
            ("asap", tue, Some(at(2025, 6, 10, 17, 0))),
            ("it's urgent", tue, Some(at(2025, 6, 10, 17, 0))),
            (
                "urgent: pay it by friday",
                tue,
                Some(at(2025, 6, 13, 23, 59)),
            ),
            ("this weekend", tue, Some(at(2025, 6, 14, 23, 59))),
            ("by the end of the week", tue, Some(at(2025, 6, 13, 23, 59))),
            ("at 5 people", tue, None),
            ("nothing here", tue, None),
            ("we may go", tue, None),
        ];
        for (sentence, reference, expected) in cases {
            assert_eq!(
                resolve_due(sentence, reference, reference),
                expected,
                "resolving {sentence:?} from {reference}"
            );
        }
    }

    #[test]
    fn a_due_date_before_now_is_dropped_even_when_it_follows_the_reference() {
        let reference = tuesday_afternoon();
        let now = at(2025, 6, 12, 0, 0);
        assert_eq!(resolve_due("call her tomorrow", reference, now), None);
        assert_eq!(
            resolve_due("call her friday", reference, now),
            Some(at(2025, 6, 13, 23, 59))
        );
    }

    #[test]
    fn time_expressions_are_stripped_with_their_prepositions() {
        assert_eq!(
            strip_time_expressions("call the dentist tomorrow at 3pm about the crown"),
            "call the dentist about the crown"
        );
        assert_eq!(
            strip_time_expressions("send the report by friday"),
            "send the report"
        );
        assert_eq!(strip_time_expressions("pay rent asap"), "pay rent");
        assert_eq!(
            strip_time_expressions("finish the slides by end of day"),
            "finish the slides"
        );
    }

    #[test]
    fn relative_and_past_references_tie_a_sentence_to_a_moment() {
        assert!(mentions_relative_time("i went there yesterday"));
        assert!(mentions_relative_time("my flight is on friday"));
        assert!(!mentions_relative_time("i am allergic to peanuts"));
        assert!(!mentions_relative_time("my birthday is march 3rd"));
    }
}
