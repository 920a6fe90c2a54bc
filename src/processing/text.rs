//! Text primitives shared by the rules: cleaning transcripts, splitting sentences, tokenising,
//! word lists (filler, function words) and title casing.

use std::sync::LazyLock;

use regex::Regex;

/// Speaker labels that transcription tools put in front of lines ("Speaker 0:", "SPEAKER_01:");
/// they are noise for every rule and must never reach a title or overview.
static SPEAKER_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|\b)(?:speaker[ _-]?\d+|unknown speaker)\s*:\s*").expect("valid regex")
});
static WHITESPACE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("valid regex"));

/// Removes speaker labels and folds whitespace.
pub fn clean_text(raw: &str) -> String {
    let without_labels = SPEAKER_LABEL.replace_all(raw, " ");
    WHITESPACE
        .replace_all(without_labels.trim(), " ")
        .into_owned()
}

/// Splits text into sentences at `.`, `!`, `?`, `…` and line breaks. Periods inside numbers
/// ("3.5"), common abbreviations ("Dr.", "e.g.") and times ("5 p.m.") do not end a sentence.
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' || c == '\r' {
            push_sentence(&mut sentences, &mut current);
            i += 1;
            continue;
        }
        current.push(c);
        let is_terminal = matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？');
        if is_terminal {
            // Swallow runs of terminal punctuation and closing quotes ("?!", "...", ".\"").
            while i + 1 < chars.len() && matches!(chars[i + 1], '.' | '!' | '?' | '"' | '\'' | ')')
            {
                i += 1;
                current.push(chars[i]);
            }
            let next = chars.get(i + 1).copied();
            let ends_here = match next {
                None => true,
                Some(n) if n.is_whitespace() => c != '.' || !is_abbreviation_end(&current),
                Some(_) => matches!(c, '。' | '！' | '？'),
            };
            if ends_here {
                push_sentence(&mut sentences, &mut current);
            }
        }
        i += 1;
    }
    push_sentence(&mut sentences, &mut current);
    sentences
}

fn push_sentence(sentences: &mut Vec<String>, current: &mut String) {
    let trimmed = current.trim();
    if trimmed.chars().any(char::is_alphanumeric) {
        sentences.push(trimmed.to_string());
    }
    current.clear();
}

/// True when the period that ends `current` belongs to an abbreviation rather than a sentence.
fn is_abbreviation_end(current: &str) -> bool {
    let last_word = current
        .trim_end_matches('.')
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("")
        .to_lowercase();
    const ABBREVIATIONS: &[&str] = &[
        "dr", "mr", "mrs", "ms", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "prof",
        "approx", "no", "inc", "co",
    ];
    // "no." ends sentences far more often than it abbreviates "number", except before a digit.
    ABBREVIATIONS.contains(&last_word.as_str()) && last_word != "no"
        || (last_word.len() == 1 && last_word.chars().all(char::is_alphabetic) && last_word != "i")
}

/// Lowercase word tokens: runs of letters, digits and inner apostrophes ("don't", "q2").
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if (c == '\'' || c == '’')
            && !current.is_empty()
            && chars.peek().is_some_and(|n| n.is_alphanumeric())
        {
            current.push('\'');
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Original-case words (for spotting capitalised names), split like [`tokenize`].
pub fn raw_words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Keeps the first `max_words` words.
pub fn truncate_words(text: &str, max_words: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= max_words {
        return words.join(" ");
    }
    words[..max_words]
        .join(" ")
        .trim_end_matches([',', ';', ':', '-'])
        .to_string()
}

/// Cuts `text` to at most `max_chars` characters at a word boundary.
pub fn cut_at_word_boundary(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split_whitespace() {
        let extra = if out.is_empty() { 0 } else { 1 } + word.chars().count();
        if out.chars().count() + extra > max_chars {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        // A single overlong word: cut it rather than return nothing.
        out = text.chars().take(max_chars).collect();
    }
    out.trim_end_matches([',', ';', ':', '-']).to_string()
}

/// Title Case: every word capitalised except short function words in the middle; words that
/// already carry capitals or digits ("Q2", "iPhone") are kept as written.
pub fn title_case(text: &str) -> String {
    const MINOR: &[&str] = &[
        "a", "an", "the", "and", "or", "but", "nor", "of", "to", "in", "on", "at", "for", "by",
        "with", "as", "vs",
    ];
    let words: Vec<&str> = text.split_whitespace().collect();
    let last = words.len().saturating_sub(1);
    words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let lower = word.to_lowercase();
            let keeps_own_case = word
                .chars()
                .skip(1)
                .any(|c| c.is_uppercase() || c.is_numeric());
            if keeps_own_case {
                word.to_string()
            } else if i != 0 && i != last && MINOR.contains(&lower.as_str()) {
                lower
            } else {
                capitalize_first(&lower)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn capitalize_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Strips trailing sentence punctuation and surrounding quotes/space.
pub fn trim_sentence_punctuation(text: &str) -> &str {
    text.trim()
        .trim_end_matches(['.', '!', '?', ',', ';', ':', '…', '"', '\''])
        .trim_start_matches(['"', '\''])
        .trim()
}

/// Filler and backchannel words: a conversation made only of these says nothing.
pub fn is_filler(token: &str) -> bool {
    const FILLER: &[&str] = &[
        "um", "umm", "uh", "uhh", "er", "erm", "ah", "ahh", "oh", "eh", "hm", "hmm", "mm", "mhm",
        "mmhmm", "uhhuh", "uh-huh", "yeah", "yea", "yep", "yup", "yes", "no", "nope", "nah",
        "okay", "ok", "okey", "k", "kk", "alright", "thanks", "thank", "thx", "ty", "hello", "hi",
        "hey", "bye", "goodbye", "right", "sure", "sorry", "cool", "nice", "great", "wow", "huh",
        "like", "so", "well", "anyway", "whatever", "oops", "ha", "haha", "hahaha", "lol",
        "totally", "exactly", "indeed", "cheers", "you", "know", "mean", "gotcha", "fine", "good",
    ];
    if FILLER.contains(&token) {
        return true;
    }
    // Elongations ("hmmm", "ummmm", "sooo", "yeahhh"): squeeze repeated letters and look again.
    let mut squeezed = String::with_capacity(token.len());
    let mut previous = None;
    for c in token.chars() {
        if Some(c) != previous {
            squeezed.push(c);
        }
        previous = Some(c);
    }
    squeezed != token
        && (FILLER.contains(&squeezed.as_str())
            || matches!(
                squeezed.as_str(),
                "hm" | "um" | "uh" | "m" | "ah" | "so" | "ye" | "yeah" | "oh" | "ok" | "okay"
            ))
}

/// Function words: pronouns, auxiliaries, articles, prepositions and light verbs. They carry no
/// topic of their own.
pub fn is_function_word(token: &str) -> bool {
    const FUNCTION: &[&str] = &[
        "i",
        "me",
        "my",
        "mine",
        "myself",
        "you",
        "your",
        "yours",
        "he",
        "him",
        "his",
        "she",
        "her",
        "hers",
        "it",
        "its",
        "we",
        "us",
        "our",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "who",
        "which",
        "when",
        "where",
        "why",
        "how",
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "than",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "by",
        "with",
        "from",
        "up",
        "down",
        "out",
        "about",
        "into",
        "over",
        "just",
        "is",
        "am",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "will",
        "would",
        "can",
        "could",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "get",
        "got",
        "go",
        "going",
        "gonna",
        "wanna",
        "gotta",
        "make",
        "made",
        "take",
        "say",
        "said",
        "see",
        "let",
        "let's",
        "i'm",
        "i've",
        "i'll",
        "i'd",
        "you're",
        "it's",
        "that's",
        "there's",
        "don't",
        "doesn't",
        "didn't",
        "can't",
        "won't",
        "isn't",
        "aren't",
        "wasn't",
        "not",
        "all",
        "some",
        "any",
        "very",
        "really",
        "too",
        "also",
        "now",
        "again",
        "thing",
        "things",
        "stuff",
        "one",
        "lot",
        "bit",
        "kind",
        "sort",
        "way",
        "yeah",
        "maybe",
        "think",
        "guess",
        "want",
        "need",
        "come",
        "look",
        "put",
        "tell",
        "thought",
        "something",
        "anything",
        "nothing",
        "everything",
        "yes",
        "no",
        "more",
        "much",
        "many",
        "as",
        "like",
        "well",
        "so",
        "oh",
        "okay",
        "ok",
        "right",
        "sure",
        "good",
        "what's",
        "he's",
        "she's",
        "we're",
        "they're",
        "wait",
        "hold",
        "on",
        "back",
        "go",
        "again",
        "still",
    ];
    FUNCTION.contains(&token)
}

/// Words that carry no topic; used to compare sentences and actions by their content.
pub fn is_stopword(token: &str) -> bool {
    is_function_word(token) || is_filler(token)
}

/// The content words of a text, for similarity and topic comparisons.
pub fn content_words(text: &str) -> Vec<String> {
    tokenize(text)
        .into_iter()
        .filter(|t| !is_stopword(t) && t.chars().count() > 1)
        .map(|t| light_stem(&t))
        .collect()
}

/// A very light stemmer: enough to make "reports"/"report" and "meeting"/"meetings" agree
/// without mangling names.
pub fn light_stem(token: &str) -> String {
    let len = token.chars().count();
    if len > 4 && token.ends_with("ies") {
        format!("{}y", &token[..token.len() - 3])
    } else if len > 3 && token.ends_with('s') && !token.ends_with("ss") && !token.ends_with("us") {
        token[..token.len() - 1].to_string()
    } else {
        token.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaker_labels_are_removed_from_cleaned_text() {
        assert_eq!(
            clean_text("Speaker 0: hello there\nSPEAKER_01: hi"),
            "hello there hi"
        );
    }

    #[test]
    fn sentences_split_on_terminal_punctuation_but_not_on_abbreviations_or_decimals() {
        let sentences = split_sentences("I saw Dr. Patel at 3.5 miles. Then I left! Did you?");
        assert_eq!(
            sentences,
            vec!["I saw Dr. Patel at 3.5 miles.", "Then I left!", "Did you?"]
        );
    }

    #[test]
    fn line_breaks_end_sentences() {
        assert_eq!(
            split_sentences("buy milk\ncall mom"),
            vec!["buy milk", "call mom"]
        );
    }

    #[test]
    fn tokens_are_lowercase_and_keep_inner_apostrophes() {
        assert_eq!(
            tokenize("Don't SEND it, ok?"),
            vec!["don't", "send", "it", "ok"]
        );
    }

    #[test]
    fn elongated_backchannel_words_are_filler() {
        assert!(is_filler("hmmm"));
        assert!(is_filler("ummmm"));
        assert!(is_filler("okay"));
        assert!(!is_filler("dentist"));
    }

    #[test]
    fn title_case_keeps_minor_words_lowercase_and_acronyms_intact() {
        assert_eq!(
            title_case("review the Q2 budget with sam"),
            "Review the Q2 Budget with Sam"
        );
    }

    #[test]
    fn cutting_at_a_word_boundary_never_splits_a_word() {
        assert_eq!(
            cut_at_word_boundary("alpha beta gamma delta", 12),
            "alpha beta"
        );
    }

    #[test]
    fn truncating_keeps_the_first_words() {
        assert_eq!(truncate_words("one two three four", 2), "one two");
    }
}
