//! Action items (PROCESSING.md §3): a sentence becomes a task only when it has an owner (the
//! user), a concrete action and a timing cue, and nothing marks it as done, hypothetical, vague
//! or a mere question. Missing a marginal task is better than inventing several.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;

use super::ExtractedActionItem;
use super::clauses::{Fragment, Lead, Role, fragments, is_only_time, starts_with_subject};
use super::dates::{find_day, has_time_cue, resolve_due_on, strip_time_expressions};
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
static FORGET_NOT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\b(?:don'?t forget to|do not forget to|make sure to)\s*"));
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
        r"(?i)(?:[;!?]|\.(?:\s|$)|,\s*(?:but|because|since|so|and then|which|as|though|although|otherwise|okay|ok|alright|right|thanks|cool)\b|\s+(?:because|since|so that|so (?:i|we|you|she|he|they|it|the|our|my)|but|otherwise|and then|then|and i|and we|or (?:i|you|we|else)|while|when i|when we|before (?:i|we|you|they|it|he|she)|porque|sonst|parce que|pour que|para que)\b)",
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

/// How a task was found; it decides whose sentences may produce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Reminder,
    Obligation,
    Request,
    /// "She asked me to …", "my boss wants me to …": a request reported by the user.
    Reported,
    Imperative,
}

/// A request reported by the user: someone asked, told or wants them to do something.
static REPORTED_REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:asked|told|wants|wanted|needs|needed|reminded|begged|expects)\s+me\s+to\s+|\bi(?:['’]ve| have)?\s+(?:was |been |got )?asked\s+to\s+|\bi['’]m supposed to\s+|\bi am supposed to\s+",
    )
});
/// Obligations and requests in the other languages whose forms are as regular as English ones.
static FOREIGN_OBLIGATION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:ich muss|ich sollte|ich werde|je dois|il faut que je|tengo que|necesito|debo|tenho que|preciso|vou)\s+",
    )
});
static FOREIGN_REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(?:¿|\b)(?:puedes|podrías|podrias|puede usted|pourrais-tu|peux-tu|tu peux|vous pouvez|pourriez-vous|kannst du|könntest du|können sie|você pode|voce pode|podes)\s+",
    )
});
static FOREIGN_REMINDER: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\b(?:note pour moi|nota para mí|lembrete|notiz für mich)\s*:?\s*")
});
/// "Don't forget to" in other languages: a request or obligation that still needs a time.
static FOREIGN_DONT_FORGET: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:no te olvides de|no olvides|n['’]oublie pas de|n['’]oubliez pas de|vergiss nicht|nicht vergessen|não (?:se |te )?esque[çc]a(?:s)? de)\s*",
    )
});
/// Verb-final obligations (German): the verb phrase ends the clause instead of starting it.
static VERB_FINAL: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^(?:ich muss|ich sollte|ich werde)\s+$"));
/// Polite request forms that take a gerund: "would you mind reviewing".
static MIND_GERUND: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\b(?:would|do) you mind\s+(?:please\s+|just\s+)?"));
/// A request addressed through someone: "make sure you", "I'd like you to".
static OTHER_REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:make sure (?:that )?you|be sure to|wondering if you could|i['’]d like you to|i would like you to|i['’]d love (?:for )?you to|you['’]re going to need to|you gotta|you['’]ve got to)\s+",
    )
});
/// Conditions that are only politeness: the request stands.
static POLITE_CONDITION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:if you (?:get|have|find) (?:a |the )?(?:chance|minute|moment|second|sec|time)|if you can|if possible|if you don['’]t mind|(?:i was |i['’]m |i am )?wondering if you could)\b",
    )
});
/// "You two", "you guys": the addressee, not part of the task.
static ADDRESSEE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^(?:you )?(?:two|both|guys|all)\s+"));
/// Words that cannot start a verb phrase: after "I need to" they mean the sentence is about
/// something else ("I need to be there", "I have to say").
const NOT_ACTIONS: &[&str] = &[
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "say",
    "mention",
    "think",
    "know",
    "believe",
    "guess",
    "mean",
    "feel",
    "hear",
    "imagine",
    "remember",
    "forget",
    "like",
    "love",
    "hate",
    "want",
    "need",
    "wish",
    "hope",
    "try",
    "let",
    "stay",
    "wait",
    "worry",
    "expect",
    "agree",
    "understand",
    "promise",
    "bet",
    "admit",
    "see",
    "come",
    "sleep",
    "relax",
    "go",
    "get",
    "keep",
    "the",
    "a",
    "an",
    "my",
    "your",
    "his",
    "her",
    "our",
    "their",
    "this",
    "that",
    "these",
    "those",
    "it",
    "i",
    "we",
    "you",
    "he",
    "she",
    "they",
    "there",
    "some",
    "any",
    "um",
    "uh",
    "not",
    "never",
    "probably",
    "maybe",
    "actually",
    "really",
    "so",
    "too",
    "also",
    "still",
    "always",
    "ever",
    "at",
    "by",
    "on",
    "in",
    "to",
    "for",
    "with",
    "about",
    "from",
    "if",
    "and",
    "or",
    "but",
    "because",
    "ser",
    "estar",
    "sein",
    "être",
    "etre",
    "do",
    "tell",
    "talk",
    "figure",
    "deal",
    "handle",
    "use",
    "make",
    "take",
    "start",
    "finish",
    "work",
    "check",
    "look",
    "put",
    "ask",
    "find",
    "mind",
];
/// Verbs that only make a task when the words after them name what to do ("put the request
/// in", "look over the draft", "check the oil"), never on their own.
const NEED_OBJECT: &[&str] = &[
    "get", "go", "do", "make", "take", "start", "finish", "work", "check", "look", "put", "ask",
    "find", "use", "handle", "figure", "talk", "tell", "deal",
];
static NAMED_THING: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:the|a|an|my|our|your|his|her|their|this|that)\s+((?:[\p{L}\d'’-]+\s+){0,2}[\p{L}\d'’-]+)",
    )
});
/// Words that end a noun phrase found by [`NAMED_THING`].
const NOT_IN_NOUN_PHRASE: &[&str] = &[
    "so", "and", "but", "or", "to", "for", "with", "at", "on", "in", "by", "is", "are", "was",
    "were", "needs", "need", "has", "have", "i", "we", "you", "it", "that", "this", "because",
    "um", "uh", "like", "gotta", "got", "should", "will", "can", "about", "from", "of", "then",
    "before", "after", "today", "tomorrow", "tonight",
];
/// Words a description must not end on once the time words are gone ("book it for").
const DANGLING: &[&str] = &[
    "for", "by", "on", "at", "to", "with", "before", "until", "till", "from", "of", "the", "a",
    "an", "and", "or", "but", "so", "around", "um", "uh", "like", "is", "are", "was", "de", "para",
    "el", "la", "bis", "à", "às", "pour", "first", "thing", "no", "later", "than", "due", "then",
    "this", "next", "within", "um", "just", "please",
];
/// Names and words that stand before "can you" without naming someone else.
const NOT_A_VOCATIVE: &[&str] = &[
    "ok",
    "okay",
    "and",
    "oh",
    "hey",
    "so",
    "also",
    "cool",
    "um",
    "uh",
    "yeah",
    "alright",
    "well",
    "then",
    "now",
    "but",
    "plus",
    "hi",
    "hello",
    "babe",
    "baby",
    "honey",
    "dear",
    "guys",
    "mate",
    "man",
    "dude",
    "bro",
    "sweetie",
    "sweetheart",
    "love",
    "please",
    "sorry",
    "wait",
    "actually",
    "quick",
    "question",
    "great",
    "perfect",
    "right",
    "anyway",
    "first",
    "next",
    "yo",
    "mom",
    "dad",
    "son",
    "buddy",
    "hun",
    "mija",
    "mijo",
    "kiddo",
    "listen",
    "look",
    "lol",
    "good",
    "nice",
    "thanks",
    "ah",
    "hmm",
    "sir",
    "ma'am",
    "folks",
    "everyone",
    "team",
    "y",
    "oye",
    "bueno",
    "pues",
    "alors",
    "bon",
    "also",
    "na",
    "und",
    "e",
    "olá",
    "oi",
];

pub fn has_reminder_phrase(lower: &str) -> bool {
    REMINDER_PHRASE.is_match(lower) || FOREIGN_REMINDER.is_match(lower)
}

/// Finds the action items of a conversation, in conversation order: one per clause that asks
/// something of the user and says when.
pub fn extract_action_items(
    conversation: &Conversation,
    reference: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<ExtractedActionItem> {
    let mut items = Vec::new();
    let mut previous_text: Option<&str> = None;
    for utterance in &conversation.utterances {
        if utterance.role != SpeakerRole::Unknown {
            actions_from_utterance(
                utterance,
                conversation,
                previous_text,
                reference,
                now,
                &mut items,
            );
        }
        previous_text = Some(utterance.text.as_str());
    }
    items
}

/// One clause of a sentence as the task rules see it.
#[derive(Debug, Clone)]
struct TaskClause {
    /// Byte range of the clause's own words, continuations included.
    body: usize,
    end: usize,
    role: Role,
    /// What joined it to the clause before.
    lead: Lead,
    /// Text that times this clause: its own words plus time fragments attached to it.
    timing: String,
    /// A condition ("if I have time") governs it.
    conditional: bool,
}

fn classify(text: &str, fragment: &Fragment) -> Role {
    let body = text[fragment.body..fragment.end].trim();
    if body.is_empty() {
        return Role::Aside;
    }
    // "if you get a chance, can you …": the courtesy is neither a condition nor the request.
    let whole = &text[fragment.start..fragment.end];
    let without_courtesy = if POLITE_CONDITION.is_match(whole) {
        POLITE_CONDITION.replace_all(whole, "")
    } else {
        std::borrow::Cow::Borrowed(whole)
    };
    let courtesy = without_courtesy.len() != whole.len();
    if courtesy && without_courtesy.trim().is_empty() {
        return Role::Aside;
    }
    let lower = if courtesy {
        without_courtesy.trim().to_lowercase()
    } else {
        body.to_lowercase()
    };
    let opens_if = lower.starts_with("if ") || lower.starts_with("unless ");
    match fragment.lead {
        Lead::Because => Role::Aside,
        Lead::If if courtesy => Role::Aside,
        Lead::If => Role::Condition,
        Lead::Temporal => Role::TimeClause,
        _ if opens_if => Role::Condition,
        _ if is_only_time(body) => Role::Time,
        Lead::Start | Lead::Semicolon | Lead::RunOn | Lead::But | Lead::So => Role::Main,
        Lead::And => {
            if lower.starts_with("to ") && lower.len() > 3 {
                Role::ToInfinitive
            } else if starts_with_subject(body)
                || has_trigger_word(body)
                || lower.starts_with("you ")
            {
                Role::Main
            } else {
                Role::Continuation
            }
        }
        Lead::Comma => {
            if starts_with_subject(body) || has_trigger_word(body) {
                Role::Main
            } else if starts_with_action_verb(body) {
                // "I need to pick up groceries, drop off the kids …": the next action of a list
                // under the same trigger.
                Role::ToInfinitive
            } else {
                Role::Aside
            }
        }
    }
}

fn has_trigger_word(body: &str) -> bool {
    let head: String = body.chars().take(40).collect();
    REQUEST_TO_LISTENER
        .find(&head)
        .is_some_and(|m| m.start() < 12)
        || FOREIGN_REQUEST.find(&head).is_some_and(|m| m.start() < 12)
        || FOREIGN_DONT_FORGET
            .find(&head)
            .is_some_and(|m| m.start() < 12)
        || REMINDER_PHRASE.find(&head).is_some_and(|m| m.start() < 12)
}

/// Groups the fragments of a sentence into clauses, each with the time words that belong to it.
fn task_clauses(text: &str) -> Vec<TaskClause> {
    let fragments = fragments(text);
    let roles: Vec<Role> = fragments.iter().map(|f| classify(text, f)).collect();
    let mut clauses: Vec<TaskClause> = Vec::new();
    let mut pending_time = String::new();
    let mut pending_condition = false;
    for (i, (fragment, role)) in fragments.iter().zip(&roles).enumerate() {
        let own = &text[fragment.start..fragment.end];
        match role {
            Role::Main | Role::ToInfinitive => {
                let mut timing = std::mem::take(&mut pending_time);
                timing.push(' ');
                timing.push_str(own);
                clauses.push(TaskClause {
                    body: fragment.body,
                    end: fragment.end,
                    role: *role,
                    lead: fragment.lead,
                    timing,
                    conditional: std::mem::take(&mut pending_condition),
                });
            }
            Role::Continuation => match clauses.last_mut() {
                Some(last) => {
                    last.end = fragment.end;
                    last.timing.push(' ');
                    last.timing.push_str(own);
                }
                None => clauses.push(TaskClause {
                    body: fragment.body,
                    end: fragment.end,
                    role: Role::Main,
                    lead: fragment.lead,
                    timing: own.to_string(),
                    conditional: false,
                }),
            },
            Role::Time => {
                // A time before a clause without one times it ("tonight I have to …");
                // otherwise it times the clause before it ("…, by friday").
                let next_is_untimed_main =
                    fragments
                        .get(i + 1)
                        .zip(roles.get(i + 1))
                        .is_some_and(|(next, role)| {
                            matches!(role, Role::Main)
                                && !has_time_cue(&text[next.start..next.end].to_lowercase())
                        });
                match clauses.last_mut() {
                    Some(last) if !next_is_untimed_main => {
                        last.timing.push(' ');
                        last.timing.push_str(own);
                    }
                    _ => {
                        pending_time.push(' ');
                        pending_time.push_str(own);
                    }
                }
            }
            Role::TimeClause => {
                if let Some(last) = clauses.last_mut()
                    && !has_time_cue(&last.timing.to_lowercase())
                {
                    last.timing.push(' ');
                    last.timing.push_str(own);
                }
            }
            Role::Condition => {
                if i == 0 || fragment.lead == Lead::If && i + 1 < fragments.len() {
                    pending_condition = true;
                } else if let Some(last) = clauses.last_mut() {
                    last.conditional = true;
                }
            }
            Role::Aside => {}
        }
    }
    // A list of actions under one trigger shares the time said at its end ("pick up groceries,
    // drop off the kids and call the vet by 5pm").
    for i in (0..clauses.len().saturating_sub(1)).rev() {
        if clauses[i + 1].role == Role::ToInfinitive
            && !has_time_cue(&clauses[i].timing.to_lowercase())
            && has_time_cue(&clauses[i + 1].timing.to_lowercase())
        {
            let later = clauses[i + 1].timing.clone();
            clauses[i].timing.push(' ');
            clauses[i].timing.push_str(&later);
        }
    }
    // … or the time said at its start ("tomorrow I have to finish the slides, send them …").
    for i in 1..clauses.len() {
        if clauses[i].role == Role::ToInfinitive
            && !has_time_cue(&clauses[i].timing.to_lowercase())
            && has_time_cue(&clauses[i - 1].timing.to_lowercase())
        {
            let earlier = clauses[i - 1].timing.clone();
            clauses[i].timing = format!("{earlier} {}", clauses[i].timing);
        }
    }
    clauses
}

fn actions_from_utterance(
    utterance: &Utterance,
    conversation: &Conversation,
    previous_text: Option<&str>,
    reference: DateTime<Utc>,
    now: DateTime<Utc>,
    items: &mut Vec<ExtractedActionItem>,
) {
    let text = utterance.text.as_str();
    // Every task needs a timing cue in its own sentence or an explicit reminder phrase: a
    // sentence with neither needs no clause analysis.
    if !has_time_cue(&utterance.lower) && !has_reminder_phrase(&utterance.lower) {
        return;
    }
    let is_question = text.trim_end().ends_with('?');
    let mut reminder_context = false;
    let mut previous_trigger: Option<Trigger> = None;
    // The timing words of the clauses already seen, for the date a later clause leaves out
    // ("tomorrow I drop the kids at 8, and then at noon …"); resolved only when needed.
    let mut earlier_timings: Vec<String> = Vec::new();
    let mut untasked_timing: Option<String> = None;
    for clause in task_clauses(text) {
        let body = &text[clause.body..clause.end];
        let found = if clause.role == Role::ToInfinitive {
            let after_to = if body.to_lowercase().starts_with("to ") {
                3
            } else {
                0
            };
            previous_trigger
                .map(|t| (t, after_to))
                .or_else(|| find_trigger(body, utterance, conversation))
        } else {
            find_trigger(body, utterance, conversation)
        };
        let found = match found {
            Some((Trigger::Reminder, start)) if !starts_with_verb_phrase(&body[start..]) => {
                // "note to self: the car needs an oil change, so I gotta book that": the
                // reminder covers the clauses that follow.
                reminder_context = true;
                None
            }
            None if reminder_context && starts_with_verb_phrase(body) => {
                Some((Trigger::Reminder, 0))
            }
            other => other,
        };
        let Some((trigger, start)) = found else {
            earlier_timings.push(clause.timing.clone());
            if clause.role == Role::Main {
                untasked_timing = Some(clause.timing.clone());
            }
            continue;
        };
        previous_trigger = Some(trigger);
        let mut timing = clause.timing.clone();
        // Only a clause set beside the other, not one that follows from it ("… so I need to
        // tell Dana" is not due when the meeting is).
        let beside = matches!(clause.lead, Lead::Comma | Lead::RunOn | Lead::Semicolon);
        if !has_time_cue(&timing.to_lowercase())
            && beside
            && let Some(earlier) = untasked_timing.take()
        {
            // "Practice moved to Wednesday at 6pm, I have to bring the snacks": the time of
            // the clause before, which asks nothing itself, is the task's.
            timing = format!("{earlier} {timing}");
        }
        let clause = TaskClause { timing, ..clause };
        let timed = has_time_cue(&clause.timing.to_lowercase());
        let allowed = trigger_allowed(trigger, utterance.role, conversation)
            && !clause.conditional
            && !is_blocked(
                &text[..clause.end],
                body,
                trigger,
                utterance.role,
                is_question,
            )
            && (trigger == Trigger::Reminder || timed)
            && addressed_to_user(body, trigger, utterance, conversation);
        if allowed
            && let Some(description) = describe_action(
                body,
                start,
                trigger,
                utterance,
                text,
                clause.body,
                previous_text,
            )
        {
            let due = if timed {
                let earlier_day = || {
                    earlier_timings
                        .iter()
                        .rev()
                        .find_map(|timing| find_day(timing, reference))
                };
                let day_hint = match find_day(&clause.timing, reference) {
                    Some(_) => None,
                    None => earlier_day(),
                };
                resolve_due_on(&clause.timing, reference, now, day_hint)
            } else {
                None
            };
            items.push(ExtractedActionItem {
                description,
                due_at: due,
            });
        }
        earlier_timings.push(clause.timing);
    }
}

/// Whether a task found this way belongs to the user, given who said it.
fn trigger_allowed(trigger: Trigger, role: SpeakerRole, conversation: &Conversation) -> bool {
    match (trigger, role) {
        (_, SpeakerRole::Unknown) => false,
        (Trigger::Reminder | Trigger::Obligation | Trigger::Reported, SpeakerRole::User) => true,
        // Requests from the user are asked of someone else; in text the author is the user.
        (Trigger::Request, SpeakerRole::User) => false,
        (Trigger::Request, SpeakerRole::Other) => true,
        (Trigger::Reminder, SpeakerRole::Other) => true,
        (Trigger::Obligation | Trigger::Reported, SpeakerRole::Other) => false,
        // A user's imperative is a note to self only when nobody else is there to receive it.
        (Trigger::Imperative, SpeakerRole::User) => conversation.single_speaker,
        (Trigger::Imperative, SpeakerRole::Other) => true,
    }
}

/// A request that names its addressee ("Priya, can you …") is for the user only when the name
/// is the user's.
fn addressed_to_user(
    body: &str,
    trigger: Trigger,
    utterance: &Utterance,
    conversation: &Conversation,
) -> bool {
    if utterance.role != SpeakerRole::Other || !matches!(trigger, Trigger::Request) {
        return true;
    }
    let Some(m) = REQUEST_TO_LISTENER
        .find(body)
        .or_else(|| FOREIGN_REQUEST.find(body))
    else {
        return true;
    };
    let before: Vec<&str> = body[..m.start()]
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .collect();
    let named: Vec<String> = before
        .iter()
        .map(|w| w.to_lowercase())
        .filter(|w| !NOT_A_VOCATIVE.contains(&w.as_str()))
        .collect();
    let [word] = named.as_slice() else {
        return true;
    };
    let user_first = conversation
        .user_name
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_lowercase();
    *word == user_first || before.len() > 3
}

/// The trigger of a clause and the byte offset (in the clause) where the action phrase starts.
fn find_trigger(
    text: &str,
    utterance: &Utterance,
    _conversation: &Conversation,
) -> Option<(Trigger, usize)> {
    if let Some(m) = ADD_TO_LIST.find(text) {
        return Some((Trigger::Reminder, m.start()));
    }
    if utterance.role == SpeakerRole::User
        && let Some(m) = SELF_REMINDER.find(text)
    {
        return Some((Trigger::Reminder, m.end()));
    }
    if let Some(m) = FORGET_NOT
        .find(text)
        .or_else(|| FOREIGN_REMINDER.find(text))
    {
        return Some((Trigger::Reminder, m.end()));
    }
    if utterance.role == SpeakerRole::User {
        if let Some(m) = REPORTED_REQUEST.find(text)
            && starts_with_verb_phrase(&text[m.end()..])
        {
            return Some((Trigger::Reported, m.end()));
        }
        if let Some(m) = FIRST_PERSON_OBLIGATION.find(text)
            && starts_with_verb_phrase(&text[m.end()..])
        {
            return Some((Trigger::Obligation, m.end()));
        }
        if let Some(m) = FOREIGN_DONT_FORGET.find(text) {
            return Some((Trigger::Obligation, m.end()));
        }
        if let Some(m) = FOREIGN_OBLIGATION.find(text)
            && (VERB_FINAL.is_match(m.as_str()) || starts_with_verb_phrase(&text[m.end()..]))
        {
            return Some((Trigger::Obligation, m.end()));
        }
    } else {
        for pattern in [
            &*FOREIGN_DONT_FORGET,
            &*MIND_GERUND,
            &*OTHER_REQUEST,
            &*REQUEST_TO_LISTENER,
            &*FOREIGN_REQUEST,
        ] {
            if let Some(m) = pattern.find(text) {
                let rest = &text[m.end()..];
                let addressee = ADDRESSEE.find(rest).map_or(0, |a| a.end());
                if starts_with_verb_phrase(&rest[addressee..]) {
                    return Some((Trigger::Request, m.end() + addressee));
                }
            }
        }
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

/// After an explicit trigger ("I need to", "can you"), any verb starts an action, not only
/// those of the imperative list, unless it is a state or a speech act ("be", "say", "think")
/// or a light verb with nothing concrete after it.
fn starts_with_verb_phrase(phrase: &str) -> bool {
    if starts_with_action_verb(phrase) {
        return true;
    }
    let phrase = LEADING_FILLER.replace(phrase.trim_start(), "");
    let mut words = phrase
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’' || c == '-'))
        .filter(|w| !w.is_empty());
    let Some(first) = words.next() else {
        return false;
    };
    let first = first.to_lowercase();
    if NEED_OBJECT.contains(&first.as_str()) {
        // "put the request in", "look over the draft": a light verb and its object.
        return words.next().is_some_and(|w| {
            !matches!(
                w.to_lowercase().as_str(),
                "it" | "that"
                    | "this"
                    | "there"
                    | "back"
                    | "to"
                    | "ready"
                    | "done"
                    | "going"
                    | "better"
                    | "worse"
            )
        });
    }
    first.chars().all(char::is_alphabetic)
        && first.chars().count() >= 2
        && !NOT_ACTIONS.contains(&first.as_str())
        && !first.ends_with("ly")
}

fn is_blocked(
    up_to_clause: &str,
    clause: &str,
    trigger: Trigger,
    role: SpeakerRole,
    is_question: bool,
) -> bool {
    if COMPLETED.is_match(clause) || VAGUE.is_match(clause) {
        return true;
    }
    // "if you get a chance", "I was wondering if you could": courtesy, not a condition.
    let up_to_clause = &*POLITE_CONDITION.replace_all(up_to_clause, "");
    let hypothetical = HYPOTHETICAL.find_iter(up_to_clause).any(|m| {
        let word = m.as_str().to_lowercase();
        // "would you (mind)" and "I'd like you to" are polite requests, not hypotheticals.
        !(word == "would"
            && (WOULD_YOU
                .find_at(up_to_clause, m.start())
                .is_some_and(|w| w.start() == m.start())
                || up_to_clause[m.end()..]
                    .trim_start()
                    .to_lowercase()
                    .starts_with("like you")))
    });
    if hypothetical {
        return true;
    }
    // "don't forget to" carries a negation that asks for the action.
    let negation_outside_reminder = NEGATED.find_iter(clause).any(|m| {
        !(trigger == Trigger::Reminder
            && FORGET_NOT
                .find(clause)
                .or_else(|| FOREIGN_REMINDER.find(clause))
                .is_some_and(|f| f.start() <= m.start() && m.end() <= f.end()))
    });
    if negation_outside_reminder {
        return true;
    }
    // A question asks something of the listener: only a request to the user is a task.
    is_question && !(trigger == Trigger::Request && role == SpeakerRole::Other)
}

#[allow(clippy::too_many_arguments)]
fn describe_action(
    clause: &str,
    action_start: usize,
    trigger: Trigger,
    utterance: &Utterance,
    sentence: &str,
    clause_start: usize,
    previous_text: Option<&str>,
) -> Option<String> {
    let phrase = strip_time_expressions(&clause[action_start..]);
    let phrase = match CLAUSE_END.find(&phrase) {
        Some(m) if m.start() > 0 => &phrase[..m.start()],
        _ => phrase.as_str(),
    };
    let phrase = cut_at_aside(phrase);
    let phrase = TRAILING_COURTESY.replace(phrase, "");
    let phrase = LEADING_FILLER.replace(trim_sentence_punctuation(&phrase), "");
    let phrase = ADDRESSEE.replace(&phrase, "");
    let mut phrase = trim_sentence_punctuation(&phrase)
        .trim_end_matches([',', '-', ':'])
        .trim()
        .to_string();
    phrase = drop_dangling_words(&phrase);
    if MIND_GERUND.is_match(&clause[..action_start]) {
        phrase = gerund_to_base(&phrase);
    }
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
    let before = &sentence[..clause_start + action_start];
    phrase = resolve_vague_object(&phrase, before, previous_text);
    // "bring it in" with nothing named before it: too vague to be a task.
    if VAGUE_OBJECT.is_match(&phrase) {
        return None;
    }
    if phrase.split_whitespace().count() < 2 {
        return None;
    }
    Some(capitalize_first(&truncate_words(&phrase, 15)))
}

/// Cuts a description at its first comma: what follows is an aside ("…, just like a page"),
/// unless the comma separates the items of a short list ("eggs, milk and bread").
fn cut_at_aside(phrase: &str) -> &str {
    let Some(comma) = phrase.find(',') else {
        return phrase;
    };
    let rest = phrase[comma + 1..].trim();
    let is_list = rest.split(',').all(|item| {
        let item = item
            .trim()
            .trim_start_matches("and ")
            .trim_start_matches("or ");
        let n = item.split_whitespace().count();
        (1..=3).contains(&n) && !starts_with_subject(item) && !starts_with_action_verb(item)
    }) && (rest.contains(" and ")
        || rest.contains(" or ")
        || rest.starts_with("and ")
        || rest.starts_with("or "));
    if is_list { phrase } else { &phrase[..comma] }
}

/// Removes words left hanging at the end once the time words are gone ("book it for").
fn drop_dangling_words(phrase: &str) -> String {
    let mut words: Vec<&str> = phrase.split_whitespace().collect();
    while words.len() > 1 {
        let last = words[words.len() - 1]
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        if last.is_empty() || DANGLING.contains(&last.as_str()) {
            words.pop();
        } else {
            break;
        }
    }
    words
        .join(" ")
        .trim_end_matches([',', '-', ':', ';'])
        .to_string()
}

/// "reviewing my cover letter" -> "review my cover letter".
fn gerund_to_base(phrase: &str) -> String {
    let (first, rest) = phrase.split_once(' ').unwrap_or((phrase, ""));
    let Some(stem) = first.strip_suffix("ing") else {
        return phrase.to_string();
    };
    let chars: Vec<char> = stem.chars().collect();
    let base = if chars.len() >= 3
        && chars[chars.len() - 1] == chars[chars.len() - 2]
        && !matches!(chars[chars.len() - 1], 'l' | 's' | 'f' | 'z')
    {
        // "getting" -> "get", "dropping" -> "drop".
        chars[..chars.len() - 1].iter().collect()
    } else if ACTION_VERBS.contains(&format!("{stem}e").to_lowercase().as_str())
        || matches!(
            stem.to_lowercase().as_str(),
            "mak"
                | "tak"
                | "writ"
                | "giv"
                | "us"
                | "hav"
                | "sav"
                | "shar"
                | "prepar"
                | "updat"
                | "schedul"
                | "complet"
                | "finaliz"
                | "organiz"
                | "driv"
                | "leav"
                | "mov"
                | "chang"
                | "arrang"
                | "plac"
                | "receiv"
                | "clos"
                | "creat"
                | "handl"
                | "reserv"
                | "proofread"
                | "declin"
                | "not"
                | "reviv"
                | "pric"
        )
    {
        format!("{stem}e")
    } else {
        stem.to_string()
    };
    if rest.is_empty() {
        base
    } else {
        format!("{base} {rest}")
    }
}

/// "The report is late, I need to send it by friday" -> "send the report": a pronoun object
/// becomes the nearest thing named before it, in the sentence or the one before.
fn resolve_vague_object(phrase: &str, before: &str, previous_text: Option<&str>) -> String {
    let Some(c) = VAGUE_OBJECT.captures(phrase) else {
        return phrase.to_string();
    };
    let Some(object) =
        last_named_thing(before).or_else(|| previous_text.and_then(last_named_thing))
    else {
        return phrase.to_string();
    };
    let whole = c.get(0).expect("match");
    let pronoun = c.get(2).expect("pronoun group");
    format!(
        "{}{}{}",
        &phrase[..pronoun.start()],
        object,
        &phrase[whole.end()..]
    )
}

/// The last noun phrase introduced by a determiner ("an oil change", "the insurance form").
fn last_named_thing(text: &str) -> Option<String> {
    let mut found = None;
    let mut at = 0;
    while let Some(c) = NAMED_THING.captures_at(text, at) {
        let whole = c.get(0).expect("match");
        let determiner_end = c.get(1).expect("group").start();
        let determiner = text[whole.start()..determiner_end].trim().to_lowercase();
        let words: Vec<&str> = c[1]
            .split_whitespace()
            .take_while(|w| {
                !NOT_IN_NOUN_PHRASE.contains(
                    &w.to_lowercase()
                        .trim_matches(|ch: char| !ch.is_alphanumeric()),
                )
            })
            .collect();
        if !words.is_empty() && !matches!(determiner.as_str(), "this" | "that") {
            let determiner = if matches!(determiner.as_str(), "my" | "your") {
                determiner
            } else {
                "the".to_string()
            };
            found = Some(format!("{determiner} {}", words.join(" ").to_lowercase()));
        }
        at = c.get(1).expect("group").start();
        if at >= text.len() {
            break;
        }
    }
    found
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
    fn a_description_never_ends_on_the_preposition_of_a_removed_time() {
        let items = from_segments(&[
            (
                "SPEAKER_00",
                "please book a follow-up with me for next week so we can go over the panel",
                false,
            ),
            ("SPEAKER_01", "will do", true),
        ]);
        assert_eq!(items[0].description, "Book a follow-up with them");
    }

    #[test]
    fn each_clause_of_a_sentence_is_its_own_task_with_its_own_time() {
        let items = from_text(
            "Tonight I have to call the bank, and on Friday I need to return the rental car.",
        );
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].description, "Call the bank");
        assert_eq!(
            items[0].due_at,
            Some(Utc.with_ymd_and_hms(2025, 6, 10, 20, 0, 0).unwrap())
        );
        assert_eq!(items[1].description, "Return the rental car");
        assert_eq!(
            items[1].due_at,
            Some(Utc.with_ymd_and_hms(2025, 6, 13, 23, 59, 0).unwrap())
        );
    }

    #[test]
    fn requests_addressed_to_the_user_and_reported_requests_are_tasks() {
        let items = from_segments(&[
            (
                "SPEAKER_00",
                "Can you get me the budget sheet before Wednesday?",
                false,
            ),
            ("SPEAKER_01", "Sure.", true),
        ]);
        assert_eq!(items[0].description, "Get them the budget sheet");
        let items = from_text("He asked me to send the signed lease by Monday.");
        assert_eq!(items[0].description, "Send the signed lease");
        let items = from_segments(&[
            (
                "SPEAKER_00",
                "Could you look over my draft within the next hour?",
                false,
            ),
            ("SPEAKER_01", "Sure.", true),
        ]);
        assert_eq!(items[0].description, "Look over their draft");
        assert_eq!(
            items[0].due_at,
            Some(Utc.with_ymd_and_hms(2025, 6, 10, 16, 0, 0).unwrap())
        );
    }

    #[test]
    fn a_request_naming_someone_else_is_not_the_users() {
        let items = from_segments(&[
            (
                "SPEAKER_00",
                "Priya can you review the deck by Friday?",
                false,
            ),
            ("SPEAKER_01", "Sure.", true),
        ]);
        assert!(items.is_empty());
    }

    #[test]
    fn a_list_of_actions_under_one_trigger_shares_its_time() {
        let items = from_text(
            "I need to pick up groceries, drop off the kids and then call the vet by 5pm.",
        );
        let five = Some(Utc.with_ymd_and_hms(2025, 6, 10, 17, 0, 0).unwrap());
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].description, "Pick up groceries");
        assert_eq!(items[0].due_at, five);
        assert_eq!(items[1].description, "Drop off the kids");
        assert_eq!(items[1].due_at, five);
    }

    #[test]
    fn courtesy_is_not_a_condition_but_a_real_condition_blocks() {
        let items = from_segments(&[
            (
                "SPEAKER_00",
                "If you get a chance, can you email Bob by Friday?",
                false,
            ),
            ("SPEAKER_01", "Sure.", true),
        ]);
        assert_eq!(items[0].description, "Email Bob");
        let items = from_segments(&[
            (
                "SPEAKER_00",
                "If it rains, can you bring the chairs in tomorrow?",
                false,
            ),
            ("SPEAKER_01", "Sure.", true),
        ]);
        assert!(items.is_empty());
    }

    #[test]
    fn a_description_stops_at_the_next_clause() {
        let items = from_text("Text Omar back tonight, he's been waiting all day.");
        assert_eq!(items[0].description, "Text Omar back");
    }

    #[test]
    fn a_pronoun_object_is_resolved_from_the_same_sentence() {
        let items = from_text("The insurance form is due, I have to submit it by Friday.");
        assert_eq!(items[0].description, "Submit the insurance form");
    }
}
