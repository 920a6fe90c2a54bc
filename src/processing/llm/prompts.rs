//! The questions asked of the model, one per processing step, with the JSON schema of each
//! answer. The texts restate the rules of PROCESSING.md so that a model's answer and the
//! offline rules aim at the same result; the shared post-processing enforces the bounds either
//! way. A change to a prompt or a schema bumps [`PROMPT_VERSION`], which is part of every schema
//! name, so that logs and recorded answers say which wording produced them.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::insights;
use crate::processing::speakers::{SpeakerRole, UserRoles, is_generic_label};
use crate::processing::text::cut_at_word_boundary;
use crate::processing::{ConversationCategory, ConversationInput, InputKind};

pub const PROMPT_VERSION: &str = "v2";

/// One step of processing that the model may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Discard,
    Structure,
    ActionItems,
    Memories,
    /// The written parts of a daily summary (API.md §13.C).
    DaySummary,
    /// A profile from the user's memories (API.md §13.D.2).
    Profile,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Discard,
        Step::Structure,
        Step::ActionItems,
        Step::Memories,
        Step::DaySummary,
        Step::Profile,
    ];

    /// The schema name sent in `response_format`, e.g. `omi_structure_v2`.
    pub fn schema_name(self) -> String {
        let step = match self {
            Step::Discard => "discard",
            Step::Structure => "structure",
            Step::ActionItems => "action_items",
            Step::Memories => "memories",
            Step::DaySummary => "day_summary",
            Step::Profile => "profile",
        };
        format!("omi_{step}_{PROMPT_VERSION}")
    }

    pub fn system_prompt(self) -> &'static str {
        match self {
            Step::Discard => DISCARD,
            Step::Structure => STRUCTURE,
            Step::ActionItems => ACTION_ITEMS,
            Step::Memories => MEMORIES,
            Step::DaySummary => insights::DAY_SUMMARY,
            Step::Profile => insights::PROFILE,
        }
    }

    pub fn schema(self) -> Value {
        match self {
            Step::Discard => discard_schema(),
            Step::Structure => structure_schema(),
            Step::ActionItems => action_items_schema(),
            Step::Memories => memories_schema(),
            Step::DaySummary => insights::day_summary_schema(),
            Step::Profile => insights::profile_schema(),
        }
    }
}

const DISCARD: &str = "You review recordings captured by a wearable microphone and decide whether \
a recording is worth keeping for its owner (\"the user\").

Discard it only when it holds nothing a person would want to find again: small talk made only of \
greetings and backchannel words, a microphone check, background noise transcribed as stray words, \
or chatter with no topic, no name, no number and no request. Keep anything that mentions a plan, a \
task, a person, a place, a fact, a decision, a feeling worth remembering, or any topic at all. \
Losing a real conversation is much worse than keeping a useless one: when unsure, keep it.

Answer in JSON: {\"discard\": true|false, \"reason\": \"<a few words>\"}.";

const STRUCTURE: &str =
    "You summarise a conversation recorded by a wearable microphone, or a note \
written by its owner (\"the user\"), for the user's own archive.

Return JSON with:
- \"title\": at most 10 words in Title Case, naming the main action or topic (for example \
\"Call Dentist About Crown\" or \"Q2 Budget Review\"). Never empty.
- \"overview\": one to three plain sentences saying what was discussed or decided, in the order it \
happened. Use names when the transcript gives them; never write speaker labels such as \
\"Speaker 0\". Do not invent anything that was not said.
- \"emoji\": one emoji fitting the conversation.
- \"category\": exactly one value from the list in the schema; \"other\" when none fits.
- \"events\": calendar events the user will attend, only when the conversation names an \
appointment (meeting, appointment, interview, flight, dinner, call with someone, doctor, dentist, \
class, ...) with both a day and an explicit clock time. For each: \"title\" (a few words), \
\"description\" (may be empty), \"when\" (the exact words of the conversation giving the day and \
time, such as \"friday at 3pm\"), \"start\" (that moment as an ISO 8601 date-time in UTC ending in \
Z, read relative to the reference time given with the transcript, or null), and \
\"duration_minutes\" (from phrases like \"for an hour\", else null). No event without a clock \
time; an empty list is the usual answer.";

const ACTION_ITEMS: &str = "You find the tasks the owner of a recording (\"the user\") has \
committed to or been asked to do, in a conversation recorded by a wearable microphone or a note \
the user wrote.

Default to nothing: one missed marginal task is better than several invented ones. A task counts \
only when all of these hold:
- The user owns it: the user says \"I need to\", \"I have to\", \"I'll\", \"I should\", \"we need \
to\", \"remind me to\", \"don't forget to\", or gives themselves an instruction (\"call the \
bank\"), or reports a request (\"He asked me to send the signed lease by Monday\"), or another \
speaker asks the user to do it (\"Can you get me the budget sheet before Wednesday?\", \"Please \
reserve the meeting room for Tuesday at 3pm\", \"Could you look over my draft within the next \
hour?\", \"I need you to...\", \"make sure you...\"). A request that names someone else (\"Priya, \
can you...\") is not the user's. What other speakers say they will do themselves is not the \
user's task. In a note, the author is the user.
- It is a concrete action (call, email, send, buy, pay, book, schedule, submit, review, pick up, \
renew, cancel, fix, order, return, ...).
- It has a timing cue (a day, a date, a time, \"urgent\", \"ASAP\") or an explicit reminder \
phrase (\"remind me\", \"don't forget\", \"note to self\").
- It is not already done (\"I already sent it\"), not hypothetical (\"if I had time I would\"), \
not vague (\"maybe sometime\"), not a question that asks nothing of the user.

One sentence can hold several tasks, each with its own time: \"Tonight I have to call the bank, \
and on Friday I need to return the rental car\" is two tasks, \"Call the bank\" due tonight and \
\"Return the rental car\" due Friday. Never give one clause's time to another; a reason (\"because \
finance closes early today\") times nothing.

For each task return \"description\": the verb phrase of its own clause as a short imperative \
phrase, capitalised, at most 15 words, without the time words and without the rest of the \
sentence (\"Text Omar back, he's been waiting all day\" is \"Text Omar back\"); replace \"it\" or \
\"that\" by the thing it stands for when the sentence names it (\"the car needs an oil change so I \
gotta book that for Saturday\" is \"Book the oil change\"); \"due_phrase\": the exact words of \
the conversation giving the time (\"tomorrow at 3pm\", \"by friday\"), or null; and \"due_at\": \
that moment as an ISO 8601 date-time in UTC ending in Z, read relative to the reference time \
given with the transcript, or null. At most 5 tasks, one per topic. Conversations in other \
languages follow the same rules; keep the description in the conversation's language.

Answer in JSON: {\"action_items\": [...]} (an empty list when there is no task).";

const MEMORIES: &str = "You pick out lasting facts worth remembering about the owner of a \
recording (\"the user\"), from a conversation recorded by a wearable microphone or a note the \
user wrote.

Be strict: at most 2 memories, usually none. Only what the user says counts; what other speakers \
say about themselves is not a memory of the user. Two kinds:
- \"system\": a stable fact about the user stated by the user: their name, job or employer (\"I'm \
a pharmacist\", \"I'm the CTO\"), where they live (\"I live on Elm Street\"), allergies, strong \
preferences (\"I love\", \"I hate\", \"I can't stand\"), the name of a \
relative or partner (\"my brother Luis lives in Madrid\"), their birthday. Write it in the third person with the user's name given with \
the transcript (\"Alex is allergic to peanuts\").
- \"interesting\": advice or an insight the user reports from a named source (\"my doctor says \
...\", \"according to Sam ...\"), written \"Source: insight\" (\"Dr. Lee: stretch before running\").

Each memory is at most 15 words and must stay true later: nothing tied to a day (\"tomorrow\", \
\"on friday\", \"last week\"), no plans, no tasks, no passing moods.

Answer in JSON: {\"memories\": [{\"content\": \"...\", \"category\": \"system\"|\"interesting\"}]} \
(an empty list when there is nothing lasting).";

/// The longest transcript sent, in characters: about 8,000 tokens, which fits the context of
/// small local models beside the prompt and the answer. Offline processing still reads it all.
pub const MAX_TRANSCRIPT_CHARS: usize = 32_000;

/// The user message of every step: the reference time for relative dates, who the user is, and
/// the transcript with one line per speaker turn.
pub fn user_message(input: &ConversationInput, reference: DateTime<Utc>) -> String {
    let user = match input.user_display_name.trim() {
        "" => "the user",
        name => name,
    };
    let transcript = match input.kind {
        InputKind::Text { .. } => {
            let text: Vec<&str> = input.segments.iter().map(|s| s.text.trim()).collect();
            format!("A note written by {user}:\n{}", text.join("\n"))
        }
        InputKind::Segments => format!("Transcript:\n{}", turns(input, user)),
    };
    format!(
        "Reference time (UTC): {} ({})\nThe user's name: {user}\n\n{}",
        reference.format("%Y-%m-%dT%H:%M:%SZ"),
        reference.format("%A"),
        cut_at_word_boundary(&transcript, MAX_TRANSCRIPT_CHARS),
    )
}

/// "Name: text" lines, consecutive segments of one speaker joined. The user's turns carry the
/// user's name; when nobody is known to be the user, the prompt says so.
fn turns(input: &ConversationInput, user: &str) -> String {
    let roles = UserRoles::of(input);
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut unknown = false;
    for segment in &input.segments {
        let role = roles.role(segment);
        unknown |= role == SpeakerRole::Unknown;
        let speaker = match role {
            SpeakerRole::User => format!("{user} (the user)"),
            _ if is_generic_label(&segment.speaker) => format!("Speaker {}", segment.speaker_id),
            _ => segment.speaker.trim().to_string(),
        };
        match lines.last_mut() {
            Some((last, text)) if *last == speaker => {
                text.push(' ');
                text.push_str(segment.text.trim());
            }
            _ => lines.push((speaker, segment.text.trim().to_string())),
        }
    }
    let mut rendered: Vec<String> = lines
        .into_iter()
        .map(|(speaker, text)| format!("{speaker}: {text}"))
        .collect();
    if unknown {
        rendered.insert(
            0,
            "(The user is not identified among these speakers: nothing here is the user's own \
             task or fact.)"
                .to_string(),
        );
    }
    rendered.join("\n")
}

pub(super) fn strict_object(properties: Value) -> Value {
    let required: Vec<&String> = properties
        .as_object()
        .expect("properties is an object")
        .keys()
        .collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

pub(super) fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

fn discard_schema() -> Value {
    strict_object(json!({
        "discard": {"type": "boolean"},
        "reason": {"type": "string"},
    }))
}

fn structure_schema() -> Value {
    let categories: Vec<&str> = ConversationCategory::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let event = strict_object(json!({
        "title": {"type": "string"},
        "description": {"type": "string"},
        "when": {"type": "string"},
        "start": nullable("string"),
        "duration_minutes": nullable("integer"),
    }));
    strict_object(json!({
        "title": {"type": "string"},
        "overview": {"type": "string"},
        "emoji": {"type": "string"},
        "category": {"type": "string", "enum": categories},
        "events": {"type": "array", "items": event},
    }))
}

fn action_items_schema() -> Value {
    let item = strict_object(json!({
        "description": {"type": "string"},
        "due_phrase": nullable("string"),
        "due_at": nullable("string"),
    }));
    strict_object(json!({"action_items": {"type": "array", "items": item}}))
}

fn memories_schema() -> Value {
    let memory = strict_object(json!({
        "content": {"type": "string"},
        "category": {"type": "string", "enum": ["system", "interesting"]},
    }));
    strict_object(json!({"memories": {"type": "array", "items": memory}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::processing::{Segment, TextSource};
    use chrono::TimeZone;

    fn segment(text: &str, speaker: &str, speaker_id: i64, is_user: bool) -> Segment {
        Segment {
            text: text.to_string(),
            speaker: speaker.to_string(),
            speaker_id,
            is_user,
            start: 0.0,
            end: 1.0,
        }
    }

    fn tuesday() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 10, 15, 0, 0).unwrap()
    }

    #[test]
    fn the_user_message_names_the_user_and_joins_turns() {
        let input = ConversationInput {
            kind: InputKind::Segments,
            segments: vec![
                segment("Can you send me the deck", "SPEAKER_01", 1, false),
                segment("by friday?", "SPEAKER_01", 1, false),
                segment("Sure.", "SPEAKER_00", 0, true),
                segment("Thanks.", "Maria", 2, false),
            ],
            started_at: tuesday(),
            language: "en".into(),
            user_display_name: "Alex".into(),
        };
        assert_eq!(
            user_message(&input, tuesday()),
            "Reference time (UTC): 2025-06-10T15:00:00Z (Tuesday)\nThe user's name: Alex\n\n\
             Transcript:\nSpeaker 1: Can you send me the deck by friday?\n\
             Alex (the user): Sure.\nMaria: Thanks."
        );
    }

    #[test]
    fn a_note_is_the_users_and_unidentified_speakers_are_flagged() {
        let note = ConversationInput::from_text("Buy milk", TextSource::Message, tuesday(), "");
        assert!(user_message(&note, tuesday()).ends_with("A note written by the user:\nBuy milk"));
        let mut input = note.clone();
        input.kind = InputKind::Segments;
        input.segments = vec![
            segment("Hi.", "SPEAKER_00", 0, false),
            segment("Hello.", "SPEAKER_01", 1, false),
        ];
        assert!(user_message(&input, tuesday()).contains("The user is not identified"));
    }

    #[test]
    fn schema_names_are_versioned_and_unique() {
        let names: Vec<String> = Step::ALL.iter().map(|s| s.schema_name()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.ends_with(&format!("_{PROMPT_VERSION}")) && n.starts_with("omi_"))
        );
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), Step::ALL.len());
    }

    #[test]
    fn schemas_are_strict_every_property_required() {
        for step in Step::ALL {
            let schema = step.schema();
            assert_eq!(schema["additionalProperties"], false);
            let properties = schema["properties"].as_object().unwrap();
            assert_eq!(
                schema["required"].as_array().unwrap().len(),
                properties.len()
            );
        }
    }

    #[test]
    fn the_structure_schema_lists_all_33_categories() {
        let schema = Step::Structure.schema();
        let categories = schema["properties"]["category"]["enum"].as_array().unwrap();
        assert_eq!(categories.len(), 33);
        assert!(categories.contains(&json!("other")));
    }
}
