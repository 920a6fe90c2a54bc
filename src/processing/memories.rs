//! Memories (PROCESSING.md §5): timeless facts the user states about themselves, rewritten in
//! the third person, and insights the user attributes to someone else ("X: <insight>").
//! Precision matters more than recall, so every pattern is narrow.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::dates::mentions_relative_time;
use super::speakers::{Conversation, SpeakerRole, Utterance};
use super::text::{capitalize_first, title_case, trim_sentence_punctuation, truncate_words};
use super::{ExtractedMemory, MemoryKind};
use crate::domain::memories::MemoryCategory;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid memory regex")
}

/// The object of a fact: up to the end of its clause ("St." and "Dr." do not end it).
const OBJECT: &str = r"((?:\b(?:[Ss]t|[Dd]r|[Mm]t|[Ff]t|[Mm]rs?|[Mm]s)\.|[^.,;!?])+)";

static NAME: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\bmy name is ([\p{L}'-]+(?:\s+[\p{Lu}][\p{L}'-]+)?)"));
static ALLERGY: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\bi(?:['’]m| am) (?:very |severely |really |deathly |super )?allergic to {OBJECT}"
    ))
});
static WORK: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\bi(?: work|['’]m working| am working) (at|for|as|in) {OBJECT}"
    ))
});
static CONDITION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\bi(?:['’]m| am) (?:a |an )?(vegetarian|vegan|pescatarian|gluten[- ]free|lactose[- ]intolerant|diabetic|celiac|left[- ]handed|colou?r[- ]?blind|sober|married|divorced|retired|an introvert|an extrovert|introverted|extroverted)\b",
    )
});
static ROLE: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"(?i)\bi(?:['’]m| am) (an?|the) {OBJECT}")));
static LIVE: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\bi(?: live|['’]m based| am based| grew up) (in|on) {OBJECT}"
    ))
});
static ORIGIN: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"(?i)\bi(?:['’]m| am| come) from {OBJECT}")));
static PREFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\bi (?:really |absolutely |totally |just |honestly )?(prefer|love|hate|can['’]t stand|cannot stand|enjoy|don['’]t like|dislike|adore|don['’]t eat|never eat|don['’]t drink) {OBJECT}"
    ))
});
static RELATION_NAME: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\bmy (wife|husband|partner|son|daughter|brother|sister|mom|mother|dad|father|boss|dog|cat|girlfriend|boyfriend|best friend|kid|baby|fiancée?|grandma|grandmother|grandpa|grandfather|manager|puppy|kitten)(?:['’]s name is| is (?:called|named)) ([\p{L}'-]+)",
    )
});
/// "my brother Luis lives in Madrid": a named relative and one fact about them.
static RELATION_FACT: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\bmy (wife|husband|partner|son|daughter|brother|sister|mom|mother|dad|father|girlfriend|boyfriend|best friend|grandma|grandmother|grandpa|grandfather|cousin|aunt|uncle|niece|nephew) (?-i:([\p{{Lu}}][\p{{L}}'-]+)) (lives in|lives on|works at|works as|works for|is an?|studies) {OBJECT}"
    ))
});
static BIRTHDAY: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"(?i)\bmy birthday is (?:on )?{OBJECT}")));
static HAVE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\bi have (an?|one|two|three|four|five) ((?:little |young |older |younger |big )?(?:dog|cat|kid|kids|child|children|son|sons|daughter|daughters|brother|brothers|sister|sisters|puppy|cat|cats|dogs|twins|grandkids|horse|parrot|rabbit)(?: (?:named|called) [\p{L}'-]+)?)\b",
    )
});
static SPEAK: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\bi speak ((?:fluent )?[\p{Lu}a-z][\p{L}]+(?: and [\p{L}]+)?)"));
static HABIT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\bi (meditate|run|jog|swim|cycle|bike|walk|cook|read|journal|pray|work out|practice yoga|do yoga) (every (?:morning|day|night|evening|week|weekend)|daily|each morning|on weekends)\b",
    )
});
static CLAUSE_BEFORE_FIRST_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)(?:,\s*(?:and\s+|but\s+|so\s+|now\s+)?|\s+(?:and|but)\s+)(i\b|i['’]m\b|my\b)")
});
static PLAY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\bi play (?:the )?(guitar|piano|violin|drums|cello|bass|saxophone|trumpet|flute|tennis|soccer|football|basketball|golf|chess|volleyball|hockey|baseball|badminton|squash|cricket|rugby|ukulele)\b",
    )
});

/// Role words that make "I'm a/an X" a statement about what the user is.
const ROLE_WORDS: &[&str] = &[
    "engineer",
    "developer",
    "designer",
    "teacher",
    "nurse",
    "doctor",
    "lawyer",
    "student",
    "manager",
    "accountant",
    "chef",
    "cook",
    "writer",
    "artist",
    "musician",
    "scientist",
    "researcher",
    "programmer",
    "consultant",
    "architect",
    "pilot",
    "firefighter",
    "pharmacist",
    "dentist",
    "therapist",
    "photographer",
    "journalist",
    "editor",
    "farmer",
    "electrician",
    "plumber",
    "carpenter",
    "mechanic",
    "founder",
    "entrepreneur",
    "analyst",
    "professor",
    "vegetarian",
    "vegan",
    "runner",
    "parent",
    "mom",
    "dad",
    "mother",
    "father",
    "freelancer",
    "contractor",
    "paramedic",
    "veterinarian",
    "vet",
    "librarian",
    "barista",
    "realtor",
    "product manager",
    "surgeon",
    "physician",
    "intern",
    "owner",
    "citizen",
    "native",
    "fan",
    "lifeguard",
    "coach",
    "trainer",
    "translator",
    "economist",
    "psychologist",
    "officer",
    "cashier",
    "driver",
    "baker",
    "tutor",
    "biologist",
    "chemist",
    "physicist",
    "sailor",
    "soldier",
    "student",
    "swimmer",
    "cyclist",
    "climber",
    "gamer",
    "mathematician",
    "cto",
    "ceo",
    "cfo",
    "coo",
    "cofounder",
    "co-founder",
];
/// Words that turn "I'm a …" into a state of mind rather than a role.
const NOT_ROLES: &[&str] = &[
    "bit",
    "little",
    "lot",
    "mess",
    "wreck",
    "fool",
    "idiot",
    "sucker",
    "big fan of your",
    "moment",
    "second",
    "minute",
    "fan of you",
];
/// Objects that make a preference meaningless out of context ("I love that", "I hate it").
const VAGUE_OBJECTS: &[&str] = &[
    "you",
    "it",
    "that",
    "this",
    "them",
    "him",
    "her",
    "those",
    "these",
    "when",
    "how",
    "what",
    "the idea",
    "your",
    "to say",
    "to tell",
    "to admit",
    "to bother",
    "to interrupt",
    "to break",
    "having",
    "the way",
    "so much",
    "everything",
    "everyone",
    "all",
];

static ATTRIBUTED_TO_ROLE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(my (?:[a-z]{3,}(?:ologist|ician|trist)|doctor|dentist|coach|mentor|therapist|trainer|boss|manager|teacher|professor|mom|dad|mother|father|grandma|grandpa|grandmother|grandfather|nutritionist|dietitian|physio|physiotherapist|advisor|accountant|lawyer|financial advisor|friend|sister|brother|yoga teacher|personal trainer))\s+(says|said|recommends|recommended|suggests|suggested|advised|advises|always says|swears|told me|thinks)\s+(?:that\s+)?(.+)",
    )
});
static ATTRIBUTED_TO_NAME: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b((?:Dr\.? |Doctor |Professor |Coach )?[\p{Lu}][\p{Ll}]+(?: [\p{Lu}][\p{Ll}]+)?)\s+(says|said|recommends|recommended|suggests|suggested|advised|advises|always says|swears|told me|thinks)\s+(?:that\s+)?(.+)",
    )
});
static ACCORDING_TO: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\baccording to ([^,]{2,40}),\s*(.+)"));
/// Words that make an attributed statement advice or wisdom rather than news.
static ADVICE_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:should|shouldn['’]t|must|recommend\w*|best|better|always|never|key|important|essential|helps?|good for|bad for|avoid|make sure|worth|secret|don['’]t|do not|need to|works?|the trick|improves?|reduces?|increases?|causes?|healthier|tip)\b",
    )
});
/// Pronouns and words that look like names at the start of a sentence but are not people.
const NOT_PEOPLE: &[&str] = &[
    "He",
    "She",
    "They",
    "It",
    "This",
    "That",
    "Someone",
    "Somebody",
    "Everyone",
    "Everybody",
    "Nobody",
    "Who",
    "What",
    "He'd",
    "She'd",
    "Which",
    "There",
    "Then",
    "And",
    "But",
    "So",
    "Research",
    "Science",
    "Google",
    "The",
];
static INSIGHT_CLAUSE_END: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)(?:[.;!?]|,\s*(?:but|so|and i|which)\b|\s+but\s)"));
static FACT_CLAUSE_END: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\s+(?:and i|and we|but|because|since|so|though|although|which|who|where|when|if|and my|and it)\b",
    )
});
static BLOCKED: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:if|would|wish|imagine|suppose|pretend|used to|anymore|no longer|not|never been|joking|kidding|lol)\b",
    )
});
static FIRST_PERSON_I: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:I|i)\b"));
static FIRST_PERSON_ME: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\b(?:me|myself)\b"));
static FIRST_PERSON_MY: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\bmy\b"));
static I_AM: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\b(?:i['’]m|i am)\b"));

/// Finds memory candidates in priority order: facts about the user first, then insights.
pub fn extract_memories(conversation: &Conversation, user_name: &str) -> Vec<ExtractedMemory> {
    let user = if user_name.trim().is_empty() {
        "The user"
    } else {
        user_name.trim()
    };
    let user_sentences: Vec<&Utterance> = conversation
        .utterances
        .iter()
        .filter(|u| u.role == SpeakerRole::User)
        .filter(|u| !u.text.trim_end().ends_with('?'))
        .filter(|u| could_hold_memory(&u.lower))
        .filter(|u| !mentions_relative_time(&u.lower))
        .collect();
    let mut facts = Vec::new();
    let mut insights = Vec::new();
    for utterance in user_sentences {
        for clause in first_person_clauses(&utterance.text) {
            if !BLOCKED.is_match(clause)
                && let Some(fact) = fact_about_user(clause, user)
            {
                facts.push(ExtractedMemory {
                    content: fact,
                    kind: MemoryKind::System,
                });
            }
        }
        if let Some(insight) = attributed_insight(&utterance.text, user) {
            insights.push(ExtractedMemory {
                content: insight,
                kind: MemoryKind::Interesting,
            });
        }
    }
    facts.extend(insights);
    facts
}

/// A cheap test that skips the pattern battery for sentences that cannot match any of it.
fn could_hold_memory(lower: &str) -> bool {
    const CUES: &[&str] = &[
        "i ",
        "i'",
        "i’",
        "my ",
        "according",
        "says",
        "said",
        "recommend",
        "suggest",
        "advise",
        "told",
        "swears",
        "thinks",
    ];
    CUES.iter().any(|cue| lower.contains(cue))
}

/// Splits "My name is Jo and I work as a nurse" into one clause per first-person statement, so
/// that each can be a fact and a "used to" in one does not block the other.
fn first_person_clauses(sentence: &str) -> Vec<&str> {
    let mut clauses = Vec::new();
    let mut start = 0;
    for c in CLAUSE_BEFORE_FIRST_PERSON.captures_iter(sentence) {
        let (Some(whole), Some(subject)) = (c.get(0), c.get(1)) else {
            continue;
        };
        if whole.start() > start {
            clauses.push(&sentence[start..whole.start()]);
        }
        start = subject.start();
    }
    clauses.push(&sentence[start..]);
    clauses
}

fn fact_about_user(text: &str, user: &str) -> Option<String> {
    if let Some(c) = NAME.captures(text) {
        return Some(format!("{user}'s name is {}", title_case(&c[1])));
    }
    if let Some(c) = ALLERGY.captures(text) {
        return Some(format!("{user} is allergic to {}", object(&c, 1)?));
    }
    if let Some(c) = CONDITION.captures(text) {
        return Some(format!("{user} is {}", c[1].to_lowercase()));
    }
    if let Some(c) = RELATION_NAME.captures(text) {
        return Some(format!(
            "{user}'s {} is named {}",
            c[1].to_lowercase(),
            capitalize_first(&c[2])
        ));
    }
    if let Some(c) = RELATION_FACT.captures(text) {
        return Some(format!(
            "{user}'s {} {} {} {}",
            c[1].to_lowercase(),
            &c[2],
            c[3].to_lowercase(),
            object(&c, 4)?
        ));
    }
    if let Some(c) = WORK.captures(text) {
        return Some(format!(
            "{user} works {} {}",
            c[1].to_lowercase(),
            object(&c, 2)?
        ));
    }
    if let Some(c) = LIVE.captures(text) {
        let preposition = c[1].to_lowercase();
        let verb = if c[0].to_lowercase().contains("grew up") {
            "grew up"
        } else {
            "lives"
        };
        let place = object(&c, 2)?;
        // "I live in fear of it": a state, not a place.
        let first = place.split_whitespace().next().unwrap_or("").to_lowercase();
        if matches!(
            first.as_str(),
            "fear" | "denial" | "hope" | "dread" | "terror" | "hell"
        ) {
            return None;
        }
        return Some(format!("{user} {verb} {preposition} {place}"));
    }
    if let Some(c) = BIRTHDAY.captures(text) {
        return Some(format!("{user}'s birthday is {}", object(&c, 1)?));
    }
    if let Some(c) = HAVE.captures(text) {
        return Some(format!("{user} has {} {}", c[1].to_lowercase(), &c[2]));
    }
    if let Some(c) = ROLE.captures(text) {
        let role = object(&c, 2)?;
        // "the cto and maya's the ceo": the role is the user's up to the next subject.
        let role = match role.find(" and ") {
            Some(i) => role[..i].to_string(),
            None => role,
        };
        if is_role(&role) {
            return Some(format!("{user} is {} {role}", c[1].to_lowercase()));
        }
    }
    if let Some(c) = ORIGIN.captures(text) {
        let place = object(&c, 1)?;
        // "I'm from the office" is not an origin: places are names.
        if place.chars().next().is_some_and(char::is_uppercase) {
            return Some(format!("{user} is from {place}"));
        }
    }
    if let Some(c) = SPEAK.captures(text) {
        return Some(format!("{user} speaks {}", &c[1]));
    }
    if let Some(c) = PLAY.captures(text) {
        let article = if is_instrument(&c[1]) { "the " } else { "" };
        return Some(format!("{user} plays {article}{}", c[1].to_lowercase()));
    }
    if let Some(c) = HABIT.captures(text) {
        let verb = c[1].to_lowercase();
        let third = match verb.split_once(' ') {
            Some((head, rest)) => format!("{} {rest}", third_person_verb(head)),
            None => third_person_verb(&verb),
        };
        return Some(format!("{user} {third} {}", c[2].to_lowercase()));
    }
    if let Some(c) = PREFERENCE.captures(text) {
        let target = object(&c, 2)?;
        let lower_target = target.to_lowercase();
        if VAGUE_OBJECTS
            .iter()
            .any(|v| lower_target == *v || lower_target.starts_with(&format!("{v} ")))
        {
            return None;
        }
        let verb = match c[1].to_lowercase().replace('’', "'").as_str() {
            "prefer" => "prefers",
            "love" => "loves",
            "hate" => "hates",
            "can't stand" | "cannot stand" => "can't stand",
            "enjoy" => "enjoys",
            "don't like" => "doesn't like",
            "dislike" => "dislikes",
            "adore" => "adores",
            "don't eat" | "never eat" => "doesn't eat",
            "don't drink" => "doesn't drink",
            _ => return None,
        };
        return Some(format!("{user} {verb} {}", third_person(&target, user)));
    }
    None
}

/// The captured object, cut at its clause and kept short; `None` when nothing is left.
fn object(c: &Captures<'_>, group: usize) -> Option<String> {
    let raw = c.get(group)?.as_str();
    let raw = match FACT_CLAUSE_END.find(raw) {
        Some(m) => &raw[..m.start()],
        None => raw,
    };
    let cleaned = trim_sentence_punctuation(raw);
    let cleaned = cleaned
        .trim_end_matches(" too")
        .trim_end_matches(" as well")
        .trim_end_matches(" actually")
        .trim();
    (!cleaned.is_empty()).then(|| truncate_words(cleaned, 8))
}

fn is_role(role: &str) -> bool {
    let lower = role.to_lowercase();
    // "a nurse at St. Mary's", "an engineer in Berlin": the role is what comes before the place.
    let lower = [" at ", " in ", " for ", " with ", " from ", " on "]
        .iter()
        .filter_map(|p| lower.find(p))
        .min()
        .map_or(lower.clone(), |i| lower[..i].to_string());
    if NOT_ROLES.iter().any(|n| lower.starts_with(n)) || lower.split_whitespace().count() > 4 {
        return false;
    }
    let head = lower.split_whitespace().last().unwrap_or("");
    let head = head
        .strip_suffix('s')
        .filter(|_| head.ends_with("ists"))
        .unwrap_or(head);
    ROLE_WORDS.contains(&head)
        || ROLE_WORDS.contains(&lower.as_str())
        || lower.contains(" fan of ")
        || ["ist", "ian", "eer"]
            .iter()
            .any(|s| head.ends_with(s) && head.len() > 5)
}

fn third_person_verb(verb: &str) -> String {
    match verb {
        "do" => "does".to_string(),
        v if v.ends_with("sh") || v.ends_with("ch") => format!("{v}es"),
        v => format!("{v}s"),
    }
}

fn is_instrument(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "guitar"
            | "piano"
            | "violin"
            | "drums"
            | "cello"
            | "bass"
            | "saxophone"
            | "trumpet"
            | "flute"
            | "ukulele"
    )
}

/// Rewrites the user's first-person words in a clause into the third person.
fn third_person(clause: &str, user: &str) -> String {
    let clause = I_AM.replace_all(clause, format!("{user} is"));
    let clause = FIRST_PERSON_MY.replace_all(&clause, format!("{user}'s"));
    let clause = FIRST_PERSON_ME.replace_all(&clause, user);
    FIRST_PERSON_I.replace_all(&clause, user).into_owned()
}

fn attributed_insight(text: &str, user: &str) -> Option<String> {
    let (who, verb, insight) = if let Some(c) = ACCORDING_TO.captures(text) {
        (c[1].to_string(), "says".to_string(), c[2].to_string())
    } else if let Some(c) = ATTRIBUTED_TO_ROLE.captures(text) {
        (c[1].to_string(), c[2].to_lowercase(), c[3].to_string())
    } else {
        let c = ATTRIBUTED_TO_NAME.captures(text)?;
        if NOT_PEOPLE.contains(&c[1].split_whitespace().next().unwrap_or("")) {
            return None;
        }
        (c[1].to_string(), c[2].to_string(), c[3].to_string())
    };
    if BLOCKED.is_match(&who) {
        return None;
    }
    let insight = match INSIGHT_CLAUSE_END.find(&insight) {
        Some(m) if m.start() > 0 => &insight[..m.start()],
        _ => insight.as_str(),
    };
    let insight = trim_sentence_punctuation(insight);
    let advice_verb = matches!(
        verb.as_str(),
        "recommends" | "recommended" | "suggests" | "suggested" | "advised" | "advises" | "swears"
    );
    if !(advice_verb || ADVICE_MARKER.is_match(insight)) || insight.split_whitespace().count() < 3 {
        return None;
    }
    // "told me to stretch" / "advised me to stretch": the advice is the action itself.
    let insight = insight
        .strip_prefix("me to ")
        .or_else(|| insight.strip_prefix("to "))
        .unwrap_or(insight);
    let who = third_person(&who, user);
    let who = capitalize_first(&who);
    let insight = capitalize_first(&third_person(insight, user));
    Some(truncate_words(&format!("{who}: {insight}"), 15))
}

static ATTRIBUTION_FORM: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^[^:]{1,40}:\s+\S|\b(?:says|said|recommends|recommended|suggests|suggested|advises|advised|according to|swears by|quote|once told)\b",
    )
});
static SELF_ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:i|we)\s+(?:says|said|recommends|recommended|suggests|suggested|advises|advised)\b",
    )
});
static ADVICE_FORM: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^(?:always|never|don['’]t|do not|try to|remember that|make sure|avoid|the best way)\b|\byou should\b|\b(?:it['’]s|it is) (?:best|better|important|worth|essential)\b|\bthe (?:key|secret|trick) to\b|\btip:|\bpro tip\b",
    )
});

/// Category of an API-created memory without one: attribution or advice form is
/// `interesting`, anything else is a fact about the user (`system`).
pub fn categorize_memory_content(content: &str) -> MemoryKind {
    let content = content.trim();
    // "I said yes to the offer" reports the user's own act: only someone else's words are
    // an attributed insight.
    let others_words = SELF_ATTRIBUTION.replace_all(content, "");
    if ATTRIBUTION_FORM.is_match(&others_words) || ADVICE_FORM.is_match(content) {
        MemoryKind::Interesting
    } else {
        MemoryKind::System
    }
}

/// The category of a memory created without one (PROCESSING.md §5): `interesting` for
/// attributed insight or advice, otherwise `system`. The processor owns the rule, so memories
/// extracted from conversations and created through the API are classified alike.
pub fn default_memory_category(content: &str) -> MemoryCategory {
    match categorize_memory_content(content.trim()) {
        MemoryKind::Interesting => MemoryCategory::Interesting,
        MemoryKind::System => MemoryCategory::System,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processing::{ConversationInput, TextSource};
    use chrono::Utc;

    fn memories(text: &str) -> Vec<String> {
        let input = ConversationInput::from_text(text, TextSource::OtherText, Utc::now(), "Alex");
        extract_memories(&Conversation::from_input(&input), "Alex")
            .into_iter()
            .map(|m| m.content)
            .collect()
    }

    #[test]
    fn facts_are_rewritten_in_the_third_person_with_the_users_name() {
        assert_eq!(
            memories("I'm allergic to peanuts."),
            vec!["Alex is allergic to peanuts"]
        );
        assert_eq!(
            memories("I work at Acme Corp."),
            vec!["Alex works at Acme Corp"]
        );
        assert_eq!(
            memories("I live in Lisbon, it's lovely."),
            vec!["Alex lives in Lisbon"]
        );
        assert_eq!(
            memories("My sister is called Maria."),
            vec!["Alex's sister is named Maria"]
        );
        assert_eq!(memories("I'm a nurse."), vec!["Alex is a nurse"]);
    }

    #[test]
    fn ordinary_ways_of_stating_a_fact_are_recognised() {
        assert_eq!(memories("I'm a pharmacist."), vec!["Alex is a pharmacist"]);
        assert_eq!(
            memories("My brother Luis lives in Madrid."),
            vec!["Alex's brother Luis lives in Madrid"]
        );
        assert_eq!(
            memories("that's me. i'm the cto and maya's the ceo"),
            vec!["Alex is the cto"]
        );
        assert_eq!(
            memories("i live on elm street, right by the park"),
            vec!["Alex lives on elm street"]
        );
        assert_eq!(
            memories("just so you know i'm a nurse at st. mary's so my income is steady"),
            vec!["Alex is a nurse at st. mary's"]
        );
    }

    #[test]
    fn each_first_person_clause_of_a_sentence_can_be_a_fact() {
        assert_eq!(
            memories("I live in Seattle and I work at Boeing as an engineer."),
            vec![
                "Alex lives in Seattle",
                "Alex works at Boeing as an engineer"
            ]
        );
        assert_eq!(
            memories("I used to work at Google, now I'm a freelancer."),
            vec!["Alex is a freelancer"]
        );
    }

    #[test]
    fn daily_habits_are_facts() {
        assert_eq!(
            memories("I meditate every morning before work."),
            vec!["Alex meditates every morning"]
        );
    }

    #[test]
    fn preferences_about_vague_objects_are_not_memories() {
        assert!(memories("I love that.").is_empty());
        assert_eq!(
            memories("I can't stand cilantro."),
            vec!["Alex can't stand cilantro"]
        );
    }

    #[test]
    fn states_of_mind_are_not_roles() {
        assert!(memories("I'm a bit tired.").is_empty());
    }

    #[test]
    fn sentences_tied_to_a_moment_are_not_memories() {
        assert!(memories("I love the pasta place we went to yesterday.").is_empty());
    }

    #[test]
    fn hypothetical_and_past_facts_are_not_memories() {
        assert!(memories("If I lived in Paris I would cycle.").is_empty());
        assert!(memories("I used to live in Berlin.").is_empty());
    }

    #[test]
    fn attributed_advice_becomes_an_interesting_memory() {
        assert_eq!(
            memories("My doctor says I should cut back on coffee."),
            vec!["Alex's doctor: Alex should cut back on coffee"]
        );
        assert_eq!(
            memories("Dr. Patel recommends stretching before every run."),
            vec!["Dr. Patel: Stretching before every run"]
        );
    }

    #[test]
    fn attributed_news_is_not_an_insight() {
        assert!(memories("Sam said he is late.").is_empty());
    }

    #[test]
    fn api_memory_categories_follow_the_attribution_or_advice_form() {
        assert_eq!(
            categorize_memory_content("Alex is allergic to peanuts"),
            MemoryKind::System
        );
        assert_eq!(
            categorize_memory_content("Dr. Patel: stretch before running"),
            MemoryKind::Interesting
        );
        assert_eq!(
            categorize_memory_content("My mentor says to ship early"),
            MemoryKind::Interesting
        );
        assert_eq!(
            categorize_memory_content("Always carry a spare charger"),
            MemoryKind::Interesting
        );
        assert_eq!(
            categorize_memory_content("Likes hiking in the Alps"),
            MemoryKind::System
        );
    }

    #[test]
    fn facts_about_the_user_default_to_system() {
        for content in [
            "Alex is allergic to peanuts",
            "Alex works at Acme as a designer",
            "Alex's sister is called Maya",
            "I said yes to the job offer in Berlin",
            "Alex loves hiking in the Alps",
            "Alex always drinks coffee at 7",
        ] {
            assert_eq!(
                default_memory_category(content),
                MemoryCategory::System,
                "{content}"
            );
        }
    }

    #[test]
    fn attributed_insights_and_advice_default_to_interesting() {
        for content in [
            "Naval Ravikant: seek wealth, not money or status",
            "According to Dr. Lee, sleep matters more than diet",
            "Alex's coach says consistency beats intensity",
            "My doctor recommended walking after meals",
            "Always back up before upgrading",
            "Don't negotiate against yourself",
            "You should read the contract twice",
        ] {
            assert_eq!(
                default_memory_category(content),
                MemoryCategory::Interesting,
                "{content}"
            );
        }
    }
}
