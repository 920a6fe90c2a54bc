//! Calendar events (PROCESSING.md §4): an appointment noun, a resolved date and an explicit
//! clock time, in a sentence that involves the user.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;

use super::ExtractedEvent;
use super::dates::{has_date_and_clock_time, resolve_due, strip_time_expressions};
use super::speakers::{Conversation, SpeakerRole, Utterance};
use super::text::{is_stopword, title_case, trim_sentence_punctuation, truncate_words};

/// Default and maximum event lengths in minutes.
pub const DEFAULT_DURATION_MINUTES: u32 = 30;
pub const MAX_DURATION_MINUTES: u32 = 180;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid event regex")
}

static APPOINTMENT_NOUN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(meeting|appointment|appt|interview|flight|consulta|cita|termin|rendez-vous|réunion|reunião|reunión|dinner|lunch|breakfast|brunch|call with|video call|phone call|doctor|dentist|class|lesson|session|party|concert|reservation|check-?up|haircut|conference|webinar|standup|stand-up|sync|demo|presentation|wedding|ceremony|rehearsal|workshop|exam|surgery|therapy|massage|game|match|recital|screening|date with|viewing|tour|orientation|consultation|practice|vet|open house|cleaning|recital)s?\b",
    )
});
/// The words after the noun that belong to the title ("with Sarah", "to Denver").
static TITLE_TAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^\s+((?:with|to|at|for|about|on|com|con|mit|avec)\s+(?:(?:the|my|our|a|o|la|el|le|der|die|dem|den)\s+)?(?:(?:doutora|doutor|doctora|doctor|docteur|dr\.?|mrs?\.?|ms\.?)\s+)?[\p{L}\d'&-]+(?:\s+(?:and\s+)?[\p{Lu}\d][\p{L}\d'&-]*)*)",
    )
});
/// Who is involved: the user speaks, or someone talks to or with them.
static INVOLVES_LISTENER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:you|your|we|us|our|let['’]s|everyone|everybody|the whole team|all of us|sua|seu|você|vous|votre|tu|tú|usted|du|dein\w*|ihr\w*|nos|nous)\b",
    )
});
static BLOCKED: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:if|would|could have|cancel(?:l?ed)?|called off|postponed indefinitely|not|never|maybe|might|perhaps|probably|was|were|had|missed|skipped|yesterday|last)\b",
    )
});
static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\bfor\s+(?:about\s+|around\s+)?(an?|one|two|three|four|half an|\d{1,3})\s+(hours?|hrs?|minutes?|mins?)(\s+and\s+a\s+half)?\b",
    )
});
static HOUR_LONG: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\b(\d{1,3})[- ](minute|hour)(?:[- ]long)?\s"));

pub fn extract_events(
    conversation: &Conversation,
    reference: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<ExtractedEvent> {
    conversation
        .utterances
        .iter()
        .filter_map(|u| event_from_utterance(u, reference, now))
        .collect()
}

fn event_from_utterance(
    utterance: &Utterance,
    reference: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<ExtractedEvent> {
    let involves_user = match utterance.role {
        SpeakerRole::User => true,
        SpeakerRole::Other => INVOLVES_LISTENER.is_match(&utterance.text),
        SpeakerRole::Unknown => false,
    };
    if !involves_user || utterance.text.trim_end().ends_with('?') {
        return None;
    }
    // "dry cleaning" and "the conference room" name no appointment.
    let noun = APPOINTMENT_NOUN.find_iter(&utterance.text).find(|m| {
        let before = utterance.text[..m.start()].to_lowercase();
        let after = utterance.text[m.end()..].to_lowercase();
        !before.trim_end().ends_with("dry")
            && !after.trim_start().starts_with("room")
            && !after.trim_start().starts_with("form")
    })?;
    // "dentist appointment", "team lunch meeting": the whole compound names the event.
    let mut noun_end = noun.end();
    while let Some(next) = APPOINTMENT_NOUN.find_at(&utterance.text, noun_end) {
        if next.start() != noun_end + 1 {
            break;
        }
        noun_end = next.end();
    }
    if BLOCKED.is_match(&utterance.text) || !has_date_and_clock_time(&utterance.lower) {
        return None;
    }
    let start = resolve_due(&utterance.text, reference, now)?;
    Some(ExtractedEvent {
        title: event_title(&utterance.text, noun.start(), noun_end),
        description: trim_sentence_punctuation(&utterance.text).to_string(),
        start,
        duration_minutes: duration_minutes(&utterance.text),
    })
}

/// "I have a dentist appointment friday at 3" -> "Dentist Appointment";
/// "dinner with Sarah and Tom at 7" -> "Dinner with Sarah and Tom".
fn event_title(text: &str, noun_start: usize, noun_end: usize) -> String {
    let mut title = String::new();
    let qualifier = text[..noun_start]
        .split_whitespace()
        .next_back()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty() && !is_stopword(&w.to_lowercase()) && !is_time_word(w));
    if let Some(qualifier) = qualifier {
        title.push_str(qualifier);
        title.push(' ');
    }
    let noun = &text[noun_start..noun_end];
    // "call with the mortgage advisor": the noun ends in "with", the person follows.
    let (noun, joined) = match noun
        .strip_suffix(" with")
        .or_else(|| noun.strip_suffix(" With"))
    {
        Some(head) => (head, true),
        None => (noun, false),
    };
    title.push_str(noun);
    let rest = strip_time_expressions(&text[noun_end..]);
    let rest = if joined {
        let words: Vec<&str> = rest
            .split_whitespace()
            .take_while(|w| {
                !matches!(
                    w.to_lowercase().as_str(),
                    "on" | "at"
                        | "in"
                        | "about"
                        | "for"
                        | "to"
                        | "and"
                        | "but"
                        | "so"
                        | "tomorrow"
                        | "today"
                )
            })
            .take(4)
            .collect();
        return title_case(trim_sentence_punctuation(&truncate_words(
            &format!("{title} with {}", words.join(" ")),
            8,
        )));
    } else {
        format!(" {rest}")
    };
    if let Some(tail) = TITLE_TAIL.captures(&rest) {
        title.push(' ');
        title.push_str(&tail[1]);
    }
    title_case(trim_sentence_punctuation(&truncate_words(&title, 8)))
}

fn is_time_word(word: &str) -> bool {
    let lower = word.to_lowercase();
    strip_time_expressions(&lower).is_empty() || matches!(lower.as_str(), "next" | "this")
}

fn duration_minutes(text: &str) -> u32 {
    let minutes = if let Some(c) = DURATION.captures(text) {
        let amount: f64 = match c[1].to_lowercase().as_str() {
            "a" | "an" | "one" => 1.0,
            "two" => 2.0,
            "three" => 3.0,
            "four" => 4.0,
            "half an" => 0.5,
            digits => digits.parse().unwrap_or(0.0),
        };
        let half = if c.get(3).is_some() { 0.5 } else { 0.0 };
        if c[2].to_lowercase().starts_with('h') {
            ((amount + half) * 60.0) as u32
        } else {
            amount as u32
        }
    } else if let Some(c) = HOUR_LONG.captures(text) {
        let amount: u32 = c[1].parse().unwrap_or(0);
        if c[2].eq_ignore_ascii_case("hour") {
            amount * 60
        } else {
            amount
        }
    } else {
        DEFAULT_DURATION_MINUTES
    };
    if minutes == 0 {
        DEFAULT_DURATION_MINUTES
    } else {
        minutes.min(MAX_DURATION_MINUTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processing::{ConversationInput, TextSource};
    use chrono::TimeZone;

    fn tuesday() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 10, 15, 0, 0).unwrap()
    }

    fn events(text: &str) -> Vec<ExtractedEvent> {
        let input = ConversationInput::from_text(text, TextSource::OtherText, tuesday(), "Alex");
        extract_events(&Conversation::from_input(&input), tuesday(), tuesday())
    }

    #[test]
    fn an_appointment_with_a_day_and_a_time_is_an_event() {
        let found = events("I have a dentist appointment on Friday at 3pm.");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].title, "Dentist Appointment");
        assert_eq!(
            found[0].start,
            Utc.with_ymd_and_hms(2025, 6, 13, 15, 0, 0).unwrap()
        );
        assert_eq!(found[0].duration_minutes, 30);
    }

    #[test]
    fn the_title_keeps_who_the_event_is_with() {
        let found = events("Dinner with Sarah tomorrow at 7 for two hours.");
        assert_eq!(found[0].title, "Dinner with Sarah");
        assert_eq!(found[0].duration_minutes, 120);
    }

    #[test]
    fn an_event_without_a_clock_time_is_not_created() {
        assert!(events("The team meeting is on Friday.").is_empty());
    }

    #[test]
    fn cancelled_and_hypothetical_events_are_not_created() {
        assert!(events("The meeting on Friday at 3pm was cancelled.").is_empty());
        assert!(events("If we had a meeting friday at 3pm it would be fine.").is_empty());
    }

    #[test]
    fn durations_are_capped_at_three_hours() {
        assert_eq!(duration_minutes("a workshop for 5 hours"), 180);
        assert_eq!(duration_minutes("for an hour and a half"), 90);
        assert_eq!(duration_minutes("for 45 minutes"), 45);
    }
}
