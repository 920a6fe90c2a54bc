//! Offline, deterministic building of the derived views of a user's data (API.md §13.C, §13.D):
//! the daily summary of a day's conversations, the people seen in transcripts, and the
//! extractive profile. Pure functions; the use cases that read and store them live in
//! `crate::service`.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::domain::categories::{ConversationCategory, SystemFolder, system_folder_for};
use crate::domain::conversations::{Conversation, speaker_number};
use crate::domain::daily_summaries::{
    DEFAULT_DAY_EMOJI, DEFAULT_HEADLINE, DailySummary, DayActionItem, DayLocation, DayStats,
    Highlight,
};
use crate::domain::memories::Memory;
use crate::domain::people::{MAX_SAMPLE_CHARS, MAX_SAMPLES, Person};
use crate::domain::time::Timestamp;

/// Summaries of a day are made from this local time of the next day on.
pub const GENERATE_AT: NaiveTime = match NaiveTime::from_hms_opt(0, 10, 0) {
    Some(time) => time,
    None => panic!("a valid time"),
};
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// How many memories an offline profile is built from.
pub const PROFILE_MEMORIES: usize = 30;
/// Three titles make the offline overview.
const OVERVIEW_TITLES: usize = 3;

/// An IANA timezone name such as `Europe/Berlin` or `UTC`.
pub fn parse_timezone(raw: &str) -> Option<Tz> {
    raw.trim().parse::<Tz>().ok()
}

/// The first instant of `date` in `tz`. Where the day starts inside a daylight-saving gap (a
/// few zones move their clocks at midnight), the first instant that exists.
pub fn day_start(tz: Tz, date: NaiveDate) -> Timestamp {
    let mut local = date.and_time(NaiveTime::MIN);
    // Gaps last at most a few hours; step over them a quarter hour at a time.
    for _ in 0..24 {
        if let Some(start) = tz.from_local_datetime(&local).earliest() {
            return start.to_utc();
        }
        local += Duration::minutes(15);
    }
    tz.from_utc_datetime(&date.and_time(NaiveTime::MIN))
        .to_utc()
}

/// `[start, end)` of the user-local `date`: 23, 24 or 25 hours.
pub fn day_bounds(tz: Tz, date: NaiveDate) -> (Timestamp, Timestamp) {
    let next = date.succ_opt().unwrap_or(date);
    (day_start(tz, date), day_start(tz, next))
}

/// The most recent day whose summary is due at `now`: yesterday once the local clock has passed
/// `GENERATE_AT`, otherwise the day before.
pub fn due_day(tz: Tz, now: Timestamp) -> NaiveDate {
    let local = now.with_timezone(&tz);
    let today = local.date_naive();
    let back = if local.time() >= GENERATE_AT { 1 } else { 2 };
    today - Duration::days(back)
}

fn duration_seconds(conversation: &Conversation) -> i64 {
    (conversation.finished_at - conversation.started_at)
        .num_seconds()
        .max(0)
}

fn local_hhmm(tz: Tz, at: Timestamp) -> String {
    let local = at.with_timezone(&tz);
    format!("{:02}:{:02}", local.hour(), local.minute())
}

fn group_of(conversation: &Conversation) -> SystemFolder {
    let category = ConversationCategory::parse(&conversation.structured.category)
        .unwrap_or(ConversationCategory::Other);
    system_folder_for(category)
}

/// The offline summary of a day from its kept conversations; `None` when there are none
/// (discarded ones are ignored).
///
/// - `stats` are exact; the duration is the sum of `finished_at - started_at`, rounded to the
///   nearest minute.
/// - `headline` and `day_emoji` are those of the longest conversation (the earliest on a tie),
///   `overview` joins the titles of the three longest.
/// - One highlight per folder group (Work, Personal, Social), largest total duration first.
/// - `action_items` are the items extracted from the day's conversations, in conversation
///   order, priority `medium`; `locations` come from the conversations' geolocations.
pub fn summarize_day(
    id: String,
    date: NaiveDate,
    created_at: Timestamp,
    tz: Tz,
    conversations: &[Conversation],
) -> Option<DailySummary> {
    let mut kept: Vec<&Conversation> = conversations.iter().filter(|c| !c.discarded).collect();
    if kept.is_empty() {
        return None;
    }
    kept.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
    let total_seconds: i64 = kept.iter().map(|c| duration_seconds(c)).sum();

    // Longest first; a stable sort keeps the earliest first among equals.
    let mut by_length = kept.clone();
    by_length.sort_by_key(|c| std::cmp::Reverse(duration_seconds(c)));
    let titled: Vec<&&Conversation> = by_length
        .iter()
        .filter(|c| !c.structured.title.trim().is_empty())
        .collect();
    let headline = titled.first().map_or(DEFAULT_HEADLINE.to_string(), |c| {
        c.structured.title.trim().to_string()
    });
    let day_emoji = titled
        .first()
        .map(|c| c.structured.emoji.trim())
        .filter(|e| !e.is_empty())
        .unwrap_or(DEFAULT_DAY_EMOJI)
        .to_string();
    let overview = titled
        .iter()
        .take(OVERVIEW_TITLES)
        .map(|c| c.structured.title.trim())
        .collect::<Vec<_>>()
        .join("; ");
    let overview = if overview.is_empty() {
        overview
    } else {
        format!("{overview}.")
    };

    let mut groups: HashMap<SystemFolder, Vec<&Conversation>> = HashMap::new();
    for conversation in &kept {
        groups
            .entry(group_of(conversation))
            .or_default()
            .push(conversation);
    }
    let mut groups: Vec<(SystemFolder, Vec<&Conversation>)> = groups.into_iter().collect();
    groups.sort_by_key(|(group, members)| {
        let seconds: i64 = members.iter().map(|c| duration_seconds(c)).sum();
        (std::cmp::Reverse(seconds), group.order())
    });
    let highlights = groups
        .into_iter()
        .map(|(group, members)| Highlight {
            topic: group.name().to_string(),
            emoji: group.emoji().to_string(),
            summary: members
                .iter()
                .map(|c| c.structured.title.trim())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
            conversation_ids: members.iter().map(|c| c.id.clone()).collect(),
        })
        .collect();

    let action_items: Vec<DayActionItem> = kept
        .iter()
        .flat_map(|c| {
            c.structured.action_items.iter().map(|item| DayActionItem {
                description: item.description.clone(),
                priority: "medium".to_string(),
                completed: item.completed,
                source_conversation_id: Some(c.id.clone()),
            })
        })
        .collect();
    let locations = kept
        .iter()
        .filter_map(|c| {
            c.geolocation.as_ref().map(|g| DayLocation {
                latitude: g.latitude,
                longitude: g.longitude,
                address: g.address.clone(),
                conversation_id: Some(c.id.clone()),
                time: Some(local_hhmm(tz, c.started_at)),
            })
        })
        .collect();

    Some(DailySummary {
        id,
        date,
        created_at,
        headline,
        overview,
        day_emoji,
        stats: DayStats {
            total_conversations: kept.len() as i64,
            total_duration_minutes: (total_seconds + 30) / 60,
            action_items_count: action_items.len() as i64,
        },
        highlights,
        action_items,
        unresolved_questions: Vec::new(),
        decisions_made: Vec::new(),
        knowledge_nuggets: Vec::new(),
        locations,
    })
}

/// One transcript segment spoken by a known person.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub person_id: String,
    pub speaker: String,
    pub text: String,
    /// When the conversation holding the segment was created.
    pub seen_at: Timestamp,
}

fn clip(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// One person per `person_id`, from sightings given newest first: named by the most recent
/// label that is not a diarisation label (`SPEAKER_NN`), else the id; the five most recent
/// sentences; first seen as `created_at`. Ordered by name (case-insensitive), then id.
pub fn people_from(sightings: &[Sighting]) -> Vec<Person> {
    let mut people: BTreeMap<&str, Person> = BTreeMap::new();
    for sighting in sightings {
        let person = people
            .entry(sighting.person_id.as_str())
            .or_insert_with(|| Person {
                id: sighting.person_id.clone(),
                name: String::new(),
                created_at: sighting.seen_at,
                speech_sample_transcripts: Vec::new(),
            });
        let label = sighting.speaker.trim();
        if person.name.is_empty() && !label.is_empty() && speaker_number(label).is_none() {
            person.name = label.to_string();
        }
        if person.speech_sample_transcripts.len() < MAX_SAMPLES {
            person
                .speech_sample_transcripts
                .push(clip(&sighting.text, MAX_SAMPLE_CHARS));
        }
        person.created_at = person.created_at.min(sighting.seen_at);
    }
    let mut people: Vec<Person> = people
        .into_values()
        .map(|mut person| {
            if person.name.is_empty() {
                person.name = person.id.clone();
            }
            person
        })
        .collect();
    people.sort_by(|a, b| (a.name.to_lowercase(), &a.id).cmp(&(b.name.to_lowercase(), &b.id)));
    people
}

fn as_sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// The extractive profile: the user's display name as a heading line, then the given memories
/// (the top ones by score) as sentences.
pub fn extractive_profile(display_name: &str, memories: &[Memory]) -> String {
    let facts = memories
        .iter()
        .filter(|m| !m.content.trim().is_empty())
        .take(PROFILE_MEMORIES)
        .map(|m| as_sentence(&m.content))
        .collect::<Vec<_>>()
        .join(" ");
    format!("{}\n\n{facts}", display_name.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::action_items::ActionItem;
    use crate::domain::conversations::{Geolocation, Structured};
    use crate::domain::time::parse_datetime;

    fn at(text: &str) -> Timestamp {
        parse_datetime(text).unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn conversation(
        id: &str,
        start: &str,
        minutes: i64,
        title: &str,
        category: &str,
    ) -> Conversation {
        let started_at = at(start);
        Conversation {
            id: id.to_string(),
            created_at: started_at,
            started_at,
            finished_at: started_at + Duration::minutes(minutes),
            updated_at: started_at + Duration::minutes(minutes),
            structured: Structured {
                title: title.to_string(),
                overview: String::new(),
                emoji: "🧠".to_string(),
                category: category.to_string(),
                action_items: Vec::new(),
                events: Vec::new(),
            },
            language: "en".into(),
            source: "phone".into(),
            status: "completed".into(),
            discarded: false,
            starred: false,
            processed_by: "offline".into(),
            folder_id: None,
            folder_name: None,
            geolocation: None,
            transcript_segments: None,
        }
    }

    #[test]
    fn days_have_their_local_length_across_daylight_saving_changes() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let (start, end) = day_bounds(ny, day("2026-03-08"));
        assert_eq!(start, at("2026-03-08T05:00:00Z"));
        assert_eq!(end, at("2026-03-09T04:00:00Z"), "23-hour day");
        let (start, end) = day_bounds(ny, day("2026-11-01"));
        assert_eq!((end - start).num_hours(), 25);
        let (start, _) = day_bounds(Tz::UTC, day("2026-12-06"));
        assert_eq!(start, at("2026-12-06T00:00:00Z"));
        // Santiago moved its clocks at midnight: the day starts at 01:00 local.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let (start, _) = day_bounds(santiago, day("2022-09-11"));
        assert_eq!(start, at("2022-09-11T04:00:00Z"));
    }

    #[test]
    fn the_previous_day_is_due_after_ten_past_midnight_local() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 00:05 in Berlin on the 7th: the 6th is not due yet.
        assert_eq!(
            due_day(berlin, at("2026-12-06T23:05:00Z")),
            day("2026-12-05")
        );
        assert_eq!(
            due_day(berlin, at("2026-12-06T23:10:00Z")),
            day("2026-12-06")
        );
        assert_eq!(
            due_day(Tz::UTC, at("2026-12-06T23:10:00Z")),
            day("2026-12-05")
        );
    }

    #[test]
    fn an_empty_or_discarded_day_has_no_summary() {
        let mut discarded = conversation("a", "2026-12-06T09:00:00Z", 10, "", "other");
        discarded.discarded = true;
        assert!(
            summarize_day(
                "s".into(),
                day("2026-12-06"),
                at("2026-12-07T00:10:00Z"),
                Tz::UTC,
                &[discarded]
            )
            .is_none()
        );
        assert!(
            summarize_day(
                "s".into(),
                day("2026-12-06"),
                at("2026-12-07T00:10:00Z"),
                Tz::UTC,
                &[]
            )
            .is_none()
        );
    }

    #[test]
    fn the_offline_summary_is_exact() {
        let mut roadmap = conversation(
            "c2",
            "2026-12-06T14:00:00Z",
            45,
            "Q1 roadmap with Sam",
            "business",
        );
        roadmap.structured.emoji = "🚀".into();
        roadmap.structured.action_items = vec![ActionItem {
            id: "i1".into(),
            description: "Send Sam the revised roadmap".into(),
            completed: false,
            created_at: at("2026-12-06T14:45:00Z"),
            updated_at: at("2026-12-06T14:45:00Z"),
            due_at: None,
            completed_at: None,
            conversation_id: Some("c2".into()),
        }];
        roadmap.geolocation = Some(Geolocation {
            latitude: 52.5,
            longitude: 13.4,
            address: Some("Berlin".into()),
            google_place_id: None,
            location_type: None,
        });
        let dentist = conversation(
            "c1",
            "2026-12-06T09:00:00Z",
            10,
            "Dentist moved to Thursday",
            "health",
        );
        let lunch = conversation("c3", "2026-12-06T12:00:00Z", 28, "Lunch with Ana", "social");
        let mut dropped = conversation("c4", "2026-12-06T18:00:00Z", 90, "", "other");
        dropped.discarded = true;
        let summary = summarize_day(
            "s".into(),
            day("2026-12-06"),
            at("2026-12-07T00:10:00Z"),
            "Europe/Berlin".parse().unwrap(),
            &[roadmap, dentist, lunch, dropped],
        )
        .unwrap();
        assert_eq!(
            summary.stats,
            DayStats {
                total_conversations: 3,
                total_duration_minutes: 83,
                action_items_count: 1
            }
        );
        assert_eq!(summary.headline, "Q1 roadmap with Sam");
        assert_eq!(summary.day_emoji, "🚀");
        assert_eq!(
            summary.overview,
            "Q1 roadmap with Sam; Lunch with Ana; Dentist moved to Thursday."
        );
        let topics: Vec<(&str, Vec<&str>)> = summary
            .highlights
            .iter()
            .map(|h| {
                (
                    h.topic.as_str(),
                    h.conversation_ids.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            topics,
            [
                ("Work", vec!["c2"]),
                ("Social", vec!["c3"]),
                ("Personal", vec!["c1"])
            ]
        );
        assert_eq!(
            summary.action_items[0].source_conversation_id.as_deref(),
            Some("c2")
        );
        assert_eq!(summary.action_items[0].priority, "medium");
        assert_eq!(
            summary.locations[0].time.as_deref(),
            Some("15:00"),
            "Berlin local time"
        );
        assert!(summary.unresolved_questions.is_empty() && summary.knowledge_nuggets.is_empty());
    }

    #[test]
    fn people_are_named_by_their_latest_real_label() {
        let sighting = |person: &str, speaker: &str, text: &str, seen: &str| Sighting {
            person_id: person.into(),
            speaker: speaker.into(),
            text: text.into(),
            seen_at: at(seen),
        };
        // Newest first.
        let sightings = vec![
            sighting("p1", "SPEAKER_01", "six", "2026-12-06T10:00:00Z"),
            sighting("p1", "Sam Rivera", "five", "2026-12-05T10:00:00Z"),
            sighting("p1", "Sam", "four", "2026-12-04T10:00:00Z"),
            sighting("p2", "SPEAKER_02", &"x".repeat(300), "2026-12-04T10:00:00Z"),
            sighting("p1", "Sam", "three", "2026-12-03T10:00:00Z"),
            sighting("p1", "Sam", "two", "2026-12-02T10:00:00Z"),
            sighting("p1", "Sam", "one", "2026-12-01T10:00:00Z"),
        ];
        let people = people_from(&sightings);
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].id, "p2", "named by its id, which sorts first");
        assert_eq!(people[0].name, "p2");
        assert_eq!(people[0].speech_sample_transcripts[0].chars().count(), 200);
        assert_eq!(people[1].name, "Sam Rivera");
        assert_eq!(
            people[1].speech_sample_transcripts,
            ["six", "five", "four", "three", "two"]
        );
        assert_eq!(people[1].created_at, at("2026-12-01T10:00:00Z"));
    }
}
