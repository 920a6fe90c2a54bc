//! Action items (PROCESSING.md §3): a sentence becomes a task only when it has an owner (the
//! user), a concrete action and a timing cue, and nothing marks it as done, hypothetical, vague
//! or a mere question. Missing a marginal task is better than inventing several.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;

use super::ExtractedActionItem;
use super::dates::{has_time_cue, resolve_due, strip_time_expressions};
use super::speakers::{Conversation, SpeakerRole, Utterance};
use super::text::{capitalize_first, trim_sentence_punctuation, truncate_words};

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid action-item regex")
}

/// Phrases that make any conversation worth keeping and any following action a task.
static REMINDER_PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:remind me|don'?t forget|do not forget|remember to|note to self|make a note|set (?:a|an|the) (?:reminder|alarm|timer)|add .{1,60}? to (?:my|the) (?:\w+ )?(?:list|calendar|to-?do|todo))",
    )
});

/// A reminder the user sets for themselves; the action follows the match.
static SELF_REMINDER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:remind me (?:to|that i (?:need|have) to)|note to self\s*[:,\-]?\s*(?:to\s+|i (?:need|have) to\s+)?|make a note (?:to|that i (?:need|have) to)|set (?:a|an) reminder (?:to|for)\s+(?:me\s+to\s+)?|remember to)\s*",
    )
});
/// "Don't forget to", "make sure to": a self-reminder from the user, a request from others.
static FORGET_NOT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:don'?t forget to|do not forget to|make sure (?:you |that you |to )|be sure to)\s*",
    )
});
/// A list or calendar addition: the whole phrase is the task.
static ADD_TO_LIST: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\badd .{1,60}? to (?:my|the) (?:\w+ )?(?:list|calendar|to-?do|todo)\b")
});
static FIRST_PERSON_OBLIGATION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:i|we)\s+(?:really\s+|still\s+|definitely\s+|also\s+|absolutely\s+)?(?:need to|have to|must|should|will|gotta|got to|ought to)\s+|\b(?:i['’]ll|i['’]ve got to|i['’]m going to|i am going to|i['’]m gonna|we['’]ve got to)\s+(?:also\s+|definitely\s+|really\s+)?",
    )
});
static REQUEST_TO_LISTENER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:can you|could you|would you|will you|can u|you need to|you have to|you should|you must|you['’]ll need to|i need you to|i want you to|please)\s+(?:please\s+|also\s+|just\s+)?",
    )
});
/// Discourse openers stripped before looking for a sentence-initial imperative.
static OPENERS: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^(?:(?:ok(?:ay)?|so|and|also|oh|um+|uh+|well|alright|all right|hey|right|yeah|then|actually|anyway|btw|plus|first|next|finally|reminder|todo|to-?do|task|urgent|important|please|pls)\b[\s,:;\-]*)+",
    )
});

/// Verbs that start a concrete action. Multi-word verbs come first so they win.
const ACTION_VERBS: &[&str] = &[
    "pick up",
    "drop off",
    "follow up",
    "fill out",
    "fill in",
    "sign up",
    "set up",
    "look into",
    "reach out",
    "back up",
    "sort out",
    "talk to",
    "go to",
    "call",
    "email",
    "e-mail",
    "text",
    "message",
    "send",
    "buy",
    "pay",
    "book",
    "schedule",
    "submit",
    "finish",
    "review",
    "renew",
    "cancel",
    "fix",
    "order",
    "return",
    "write",
    "prepare",
    "update",
    "check",
    "confirm",
    "reply",
    "respond",
    "file",
    "sign",
    "bring",
    "get",
    "clean",
    "wash",
    "grab",
    "drop",
    "take",
    "ask",
    "tell",
    "remind",
    "contact",
    "print",
    "read",
    "practice",
    "study",
    "register",
    "apply",
    "upload",
    "install",
    "share",
    "invite",
    "reserve",
    "water",
    "feed",
    "walk",
    "visit",
    "move",
    "charge",
    "post",
    "mail",
    "ship",
    "deliver",
    "research",
    "draft",
    "plan",
    "organize",
    "organise",
    "arrange",
    "meet",
    "finalize",
    "finalise",
    "complete",
    "start",
    "replace",
    "repair",
    "transfer",
    "deposit",
    "refill",
    "collect",
    "test",
    "deploy",
    "merge",
    "ping",
    "invoice",
    "wrap up",
    "clear",
    "cook",
    "make",
    "see",
    "give",
    "hand in",
    "turn in",
    "migrate",
    "clean up",
    "look at",
    "go over",
    "double-check",
    "double check",
    "pack",
    "print",
    "rsvp",
    "sort",
    "vacuum",
    "call back",
];

static COMPLETED: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:already|just (?:sent|did|finished|called|emailed|paid|booked|submitted|bought|ordered|done|fixed|texted|got)|i did|did that|i['’]ve (?:done|sent|finished|called|paid|booked|submitted|bought|ordered|fixed|texted|emailed)|took care of|taken care of|done with)\b",
    )
});
static HYPOTHETICAL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:if|would(?:n['’]t)?|could have|should have|in case|unless|i wish|suppose|imagine|hypothetically|whether|were to)\b",
    )
});
static WOULD_YOU: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\bwould you\b"));
static VAGUE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:maybe|sometime|some time|at some point|someday|some day|one day|eventually|probably|perhaps|possibly|might|whenever|one of these days|not sure|i guess)\b",
    )
});
static NEGATED: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:don['’]?t need to|do not need to|no need to|won['’]t|will not|shouldn['’]t|not going to|never|don['’]?t have to|doesn['’]t need|didn['’]t|not)\b",
    )
});
/// Where an action phrase ends: the next clause rarely belongs to the task.
static CLAUSE_END: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(?:[;!?]|\.(?:\s|$)|,\s*(?:but|because|since|so|and then|which|as|though|although|otherwise|okay|ok|alright|right|thanks|cool)\b|\s+(?:because|since|so that|so i|so we|but|otherwise|and then|then|and i|and we|while|when i|when we|before (?:i|we|you|they|it|he|she))\b)",
    )
});
/// Courtesy words left at the end of an action phrase.
static TRAILING_COURTESY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(?:[\s,]+(?:please|pls|for me|thanks|thank you|okay|ok|as well|too|right|alright|again|if you can|if possible))+\s*$",
    )
});
static LEADING_FILLER: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)^(?:also|just|really|quickly|definitely|go ahead and|try to|remember to)\s+")
});
static OPENS_WITH_PLEASE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^(?:\W*\w+\W+)?(?:please|pls)\b"));
static ME: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:me|Me)\b"));
static MY: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:my|My)\b"));
static YOUR: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\byour\b"));
/// An object pronoun that the same sentence may name earlier ("the report ... send it").
static VAGUE_OBJECT: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\w+(?: \w+)?) (it|that|this)\b"));
static NAMED_OBJECT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:the|my|our|your|this|that) ([a-z]+(?: (?:report|form|file|deck|slides|document|contract|invoice|bill|list))?)\b",
    )
});

pub fn has_reminder_phrase(lower: &str) -> bool {
    REMINDER_PHRASE.is_match(lower)
}

/// How a task was found; it decides whose sentences may produce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Reminder,
    Obligation,
    Request,
    Imperative,
}

/// Finds the action items of a conversation, in conversation order, at most one per sentence.
pub fn extract_action_items(
    conversation: &Conversation,
    reference: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<ExtractedActionItem> {
    conversation
        .utterances
        .iter()
        .filter_map(|u| action_from_utterance(u, conversation, reference, now))
        .collect()
}

fn action_from_utterance(
    utterance: &Utterance,
    conversation: &Conversation,
    reference: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<ExtractedActionItem> {
    if utterance.role == SpeakerRole::Unknown {
        return None;
    }
    let text = utterance.text.as_str();
    let lower = utterance.lower.as_str();
    let (trigger, action_start) = find_trigger(utterance, conversation)?;
    if !trigger_allowed(trigger, utterance.role, conversation) {
        return None;
    }
    if is_blocked(text, trigger, utterance.role) {
        return None;
    }
    if trigger != Trigger::Reminder && !has_time_cue(lower) {
        return None;
    }
    let description = describe_action(text, action_start, trigger, utterance)?;
    Some(ExtractedActionItem {
        description,
        due_at: resolve_due(text, reference, now),
    })
}

/// Whether a task found this way belongs to the user, given who said it.
fn trigger_allowed(trigger: Trigger, role: SpeakerRole, conversation: &Conversation) -> bool {
    match (trigger, role) {
        (_, SpeakerRole::Unknown) => false,
        (Trigger::Reminder | Trigger::Obligation, SpeakerRole::User) => true,
        // Requests from the user are asked of someone else; in text the author is the user.
        (Trigger::Request, SpeakerRole::User) => false,
        (Trigger::Request, SpeakerRole::Other) => true,
        (Trigger::Reminder, SpeakerRole::Other) => true,
        (Trigger::Obligation, SpeakerRole::Other) => false,
        // A user's imperative is a note to self only when nobody else is there to receive it.
        (Trigger::Imperative, SpeakerRole::User) => conversation.single_speaker,
        (Trigger::Imperative, SpeakerRole::Other) => true,
    }
}

/// The trigger of a sentence and the byte offset where the action phrase starts.
fn find_trigger(utterance: &Utterance, _conversation: &Conversation) -> Option<(Trigger, usize)> {
    let text = utterance.text.as_str();
    if let Some(m) = ADD_TO_LIST.find(text) {
        return Some((Trigger::Reminder, m.start()));
    }
    if utterance.role == SpeakerRole::User
        && let Some(m) = SELF_REMINDER.find(text)
    {
        return Some((Trigger::Reminder, m.end()));
    }
    if let Some(m) = FORGET_NOT.find(text) {
        return Some((Trigger::Reminder, m.end()));
    }
    if utterance.role == SpeakerRole::User {
        if let Some(m) = FIRST_PERSON_OBLIGATION.find(text)
            && starts_with_action_verb(&text[m.end()..])
        {
            return Some((Trigger::Obligation, m.end()));
        }
    } else if let Some(m) = REQUEST_TO_LISTENER.find(text)
        && starts_with_action_verb(&text[m.end()..])
    {
        return Some((Trigger::Request, m.end()));
    }
    let opener_end = OPENERS.find(text).map_or(0, |m| m.end());
    // The user saying "please send me…" or "send me…" asks someone else.
    let user_asks_someone = utterance.role == SpeakerRole::User
        && (OPENS_WITH_PLEASE.is_match(text) || ME.is_match(&text[opener_end..]));
    if !user_asks_someone && starts_with_action_verb(&text[opener_end..]) {
        return Some((Trigger::Imperative, opener_end));
    }
    None
}

fn starts_with_action_verb(phrase: &str) -> bool {
    let phrase = LEADING_FILLER.replace(phrase.trim_start(), "");
    let lower = phrase.to_lowercase();
    ACTION_VERBS.iter().any(|verb| {
        lower.starts_with(verb)
            && lower[verb.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric())
    })
}

fn is_blocked(text: &str, trigger: Trigger, role: SpeakerRole) -> bool {
    if COMPLETED.is_match(text) || VAGUE.is_match(text) {
        return true;
    }
    let hypothetical = HYPOTHETICAL.find_iter(text).any(|m| {
        // "would you" is a polite request, not a hypothetical.
        !(m.as_str().eq_ignore_ascii_case("would")
            && WOULD_YOU
                .find_at(text, m.start())
                .is_some_and(|w| w.start() == m.start()))
    });
    if hypothetical {
        return true;
    }
    // "don't forget to" carries a negation that asks for the action.
    let negation_outside_reminder = NEGATED.find_iter(text).any(|m| {
        !(trigger == Trigger::Reminder
            && FORGET_NOT
                .find(text)
                .is_some_and(|f| f.start() <= m.start() && m.end() <= f.end()))
    });
    if negation_outside_reminder {
        return true;
    }
    // A question asks something of the listener: only a request to the user is a task.
    text.trim_end().ends_with('?') && !(trigger == Trigger::Request && role == SpeakerRole::Other)
}

fn describe_action(
    text: &str,
    action_start: usize,
    trigger: Trigger,
    utterance: &Utterance,
) -> Option<String> {
    let prefix = &text[..action_start];
    let phrase = strip_time_expressions(&text[action_start..]);
    let phrase = match CLAUSE_END.find(&phrase) {
        Some(m) if m.start() > 0 => &phrase[..m.start()],
        _ => phrase.as_str(),
    };
    let phrase = TRAILING_COURTESY.replace(phrase, "");
    let phrase = LEADING_FILLER.replace(trim_sentence_punctuation(&phrase), "");
    let mut phrase = trim_sentence_punctuation(&phrase)
        .trim_end_matches([',', '-', ':'])
        .trim()
        .to_string();
    if matches!(
        trigger,
        Trigger::Request | Trigger::Imperative | Trigger::Reminder
    ) && utterance.role == SpeakerRole::Other
    {
        // The speaker asked the user: "send me your notes" is "Send Sam my notes" for the user.
        let speaker = utterance.speaker_name.as_deref().unwrap_or("them");
        let speaker_possessive = utterance
            .speaker_name
            .as_deref()
            .map_or_else(|| "their".to_string(), |name| format!("{name}'s"));
        phrase = MY.replace_all(&phrase, "\u{0}").into_owned();
        phrase = YOUR.replace_all(&phrase, "my").into_owned();
        phrase = ME.replace_all(&phrase, speaker).into_owned();
        phrase = phrase.replace('\u{0}', &speaker_possessive);
    }
    phrase = resolve_vague_object(&phrase, prefix);
    if phrase.split_whitespace().count() < 2 {
        return None;
    }
    Some(capitalize_first(&truncate_words(&phrase, 15)))
}

/// "The report is late, I need to send it by friday" -> "send the report".
fn resolve_vague_object(phrase: &str, prefix: &str) -> String {
    let Some(c) = VAGUE_OBJECT.captures(phrase) else {
        return phrase.to_string();
    };
    let Some(named) = NAMED_OBJECT.captures_iter(prefix).last() else {
        return phrase.to_string();
    };
    let whole = c.get(0).expect("match");
    let pronoun = c.get(2).expect("pronoun group");
    let object = named.get(0).expect("match").as_str().to_lowercase();
    format!(
        "{}{}{}",
        &phrase[..pronoun.start()],
        object,
        &phrase[whole.end()..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processing::{ConversationInput, InputKind, Segment, TextSource};
    use chrono::TimeZone;

    fn tuesday() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 10, 15, 0, 0).unwrap()
    }

    fn from_text(text: &str) -> Vec<ExtractedActionItem> {
        let input = ConversationInput::from_text(text, TextSource::OtherText, tuesday(), "Alex");
        extract_action_items(&Conversation::from_input(&input), tuesday(), tuesday())
    }

    fn from_segments(parts: &[(&str, &str, bool)]) -> Vec<ExtractedActionItem> {
        let input = ConversationInput {
            kind: InputKind::Segments,
            segments: parts
                .iter()
                .enumerate()
                .map(|(i, (speaker, text, is_user))| Segment {
                    text: text.to_string(),
                    speaker: speaker.to_string(),
                    speaker_id: i64::from(*speaker != "SPEAKER_00"),
                    is_user: *is_user,
                    start: i as f64,
                    end: i as f64 + 1.0,
                })
                .collect(),
            started_at: tuesday(),
            language: "en".into(),
            user_display_name: "Alex".into(),
        };
        extract_action_items(&Conversation::from_input(&input), tuesday(), tuesday())
    }

    #[test]
    fn a_first_person_obligation_with_a_date_becomes_a_task_without_the_date_words() {
        let items = from_text("I need to call the dentist tomorrow about my crown.");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].description, "Call the dentist about my crown");
        assert_eq!(
            items[0].due_at,
            Some(Utc.with_ymd_and_hms(2025, 6, 11, 23, 59, 0).unwrap())
        );
    }

    #[test]
    fn an_obligation_without_any_timing_is_not_a_task() {
        assert!(from_text("I need to call the dentist about my crown.").is_empty());
    }

    #[test]
    fn a_reminder_phrase_needs_no_timing() {
        let items = from_text("Remind me to buy oat milk.");
        assert_eq!(items[0].description, "Buy oat milk");
        assert_eq!(items[0].due_at, None);
    }

    #[test]
    fn completed_hypothetical_and_vague_sentences_are_not_tasks() {
        assert!(from_text("I already sent the invoice on friday.").is_empty());
        assert!(from_text("If I had time I would call her tomorrow.").is_empty());
        assert!(from_text("Maybe I should paint the fence sometime next week.").is_empty());
        assert!(from_text("Should I call him tomorrow?").is_empty());
    }

    #[test]
    fn a_request_from_another_speaker_is_the_users_task() {
        let items = from_segments(&[
            ("Sam", "Can you send me the slides by Friday?", false),
            ("SPEAKER_00", "Sure.", true),
        ]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].description, "Send Sam the slides");
    }

    #[test]
    fn another_speakers_own_obligation_is_not_the_users_task() {
        let items = from_segments(&[
            ("Sam", "I need to book my flight tomorrow.", false),
            ("SPEAKER_00", "Good luck.", true),
        ]);
        assert!(items.is_empty());
    }

    #[test]
    fn without_an_identified_user_nothing_is_a_task() {
        let items = from_segments(&[
            ("SPEAKER_00", "I need to book the flight tomorrow.", false),
            ("SPEAKER_01", "Okay.", false),
        ]);
        assert!(items.is_empty());
    }

    #[test]
    fn a_pronoun_object_is_resolved_from_the_same_sentence() {
        let items = from_text("The insurance form is due, I have to submit it by Friday.");
        assert_eq!(items[0].description, "Submit the insurance form");
    }
}
