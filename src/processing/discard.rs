//! The keep-or-drop decision (PROCESSING.md §1). A false discard loses a user's data while a kept
//! junk conversation costs nothing, so every rule errs towards keeping.

use super::action_items::has_reminder_phrase;
use super::text::{is_filler, is_function_word, raw_words, split_sentences, tokenize};

/// Words of a microphone check ("testing one two three", "can you hear me", "is this on").
const MIC_CHECK_WORDS: &[&str] = &[
    "testing",
    "test",
    "tests",
    "one",
    "two",
    "three",
    "four",
    "five",
    "mic",
    "mike",
    "check",
    "checking",
    "can",
    "you",
    "hear",
    "me",
    "is",
    "this",
    "thing",
    "on",
    "working",
    "recording",
    "it",
    "sound",
    "audio",
    "does",
    "do",
    "work",
    "microphone",
    "am",
    "i",
    "being",
    "recorded",
    "loud",
    "and",
    "clear",
    "now",
];
/// At least one of these must be present for a text to be a microphone check.
const MIC_CHECK_MARKERS: &[&str] = &[
    "testing",
    "test",
    "mic",
    "mike",
    "hear",
    "check",
    "checking",
    "recording",
    "working",
    "microphone",
    "recorded",
];

/// Words in the middle of a sentence whose capital letter does not suggest a name.
const NOT_NAMES: &[&str] = &["I", "I'm", "I'll", "I've", "I'd", "OK", "Okay", "Ok"];

/// What the discard rules conclude about a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardVerdict {
    /// A rule says it holds nothing worth keeping (rules 1, 3, 5, 6).
    Discard,
    /// A rule says keep it (text form, a reminder phrase, more than 100 words).
    Keep,
    /// No rule decides (rule 7): kept by default, and a model may be asked.
    Unsure,
}

/// Decides whether a conversation says nothing worth keeping. `is_text_form` conversations
/// (created from plain text) are only dropped when they hold no words at all.
pub fn discard_verdict(text: &str, is_text_form: bool) -> DiscardVerdict {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return DiscardVerdict::Discard;
    }
    if is_text_form || has_reminder_phrase(&text.to_lowercase()) {
        return DiscardVerdict::Keep;
    }
    if tokens.iter().all(|t| is_filler(t)) {
        return DiscardVerdict::Discard;
    }
    if tokens.len() > 100 {
        return DiscardVerdict::Keep;
    }
    let chatter = tokens.len() <= 25
        && tokens.iter().all(|t| is_filler(t) || is_function_word(t))
        && !tokens.iter().any(|t| t.chars().any(|c| c.is_ascii_digit()))
        && !has_capitalised_word_mid_sentence(text);
    if is_mic_check(&tokens) || chatter {
        DiscardVerdict::Discard
    } else {
        DiscardVerdict::Unsure
    }
}

fn is_mic_check(tokens: &[String]) -> bool {
    let content: Vec<&String> = tokens.iter().filter(|t| !is_filler(t)).collect();
    !content.is_empty()
        && content
            .iter()
            .all(|t| MIC_CHECK_WORDS.contains(&t.as_str()))
        && content
            .iter()
            .any(|t| MIC_CHECK_MARKERS.contains(&t.as_str()))
}

fn has_capitalised_word_mid_sentence(text: &str) -> bool {
    split_sentences(text).iter().any(|sentence| {
        raw_words(sentence).iter().skip(1).any(|word| {
            word.chars().next().is_some_and(char::is_uppercase) && !NOT_NAMES.contains(word)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn should_discard(text: &str, is_text_form: bool) -> bool {
        discard_verdict(text, is_text_form) == DiscardVerdict::Discard
    }

    #[test]
    fn only_conversations_no_rule_decides_are_unsure() {
        assert_eq!(discard_verdict("um okay", true), DiscardVerdict::Keep);
        assert_eq!(
            discard_verdict("uh remind me to do it", false),
            DiscardVerdict::Keep
        );
        assert_eq!(
            discard_verdict("The dentist moved my appointment.", false),
            DiscardVerdict::Unsure
        );
        assert_eq!(discard_verdict("yeah okay", false), DiscardVerdict::Discard);
    }

    #[test]
    fn a_conversation_without_words_is_discarded_even_from_text() {
        assert!(should_discard("  ... !! ", true));
        assert!(should_discard("", false));
    }

    #[test]
    fn text_conversations_are_kept_even_when_they_are_filler() {
        assert!(!should_discard("um okay yeah", true));
    }

    #[test]
    fn pure_backchannel_is_discarded() {
        assert!(should_discard("Hmmm. Yeah yeah. Okay, thanks, bye.", false));
    }

    #[test]
    fn a_reminder_phrase_keeps_even_a_tiny_conversation() {
        assert!(!should_discard("uh remind me to do it", false));
    }

    #[test]
    fn microphone_checks_are_discarded() {
        assert!(should_discard("Testing, testing, one two three.", false));
        assert!(should_discard("Can you hear me? Is this thing on?", false));
    }

    #[test]
    fn a_mic_check_followed_by_content_is_kept() {
        assert!(!should_discard(
            "Can you hear me? Good. Let's talk about the budget.",
            false
        ));
    }

    #[test]
    fn short_function_word_chatter_is_discarded_unless_it_names_someone() {
        assert!(should_discard("oh I think so, yeah, I guess it is", false));
        assert!(!should_discard("oh I think it is Maria", false));
        assert!(!should_discard("I think it is 42", false));
    }

    #[test]
    fn anything_with_content_words_is_kept() {
        assert!(!should_discard("The dentist moved my appointment.", false));
    }
}
