//! Building the answer of `ask` (API.md §13.B): the extractive answer used without a model (or
//! when the model fails), the model's prompt, and the check that keeps only citations that point
//! at a real source.

use std::sync::LazyLock;

use regex::Regex;

/// The answer when retrieval finds nothing; the model is not called (API.md §13.K.9).
pub const NOTHING_FOUND: &str = "I couldn't find anything in your conversations about that.";

/// The opening line of an extractive answer.
pub const EXTRACTIVE_HEADER: &str = "Here is what I found in your conversations:";

/// Transcript characters given to the model per source.
pub const MAX_TRANSCRIPT_CHARS: usize = 4000;

/// What a retrieved conversation contributes to an answer; `transcript` is its text or its
/// segments' lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceText {
    pub title: String,
    pub overview: String,
    pub transcript: String,
}

/// Splits a text into sentences (on `.`, `!`, `?` followed by a space, and on line ends).
pub fn sentences(text: &str) -> Vec<&str> {
    static END: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?:[.!?。！？]+\s+|\n+)").expect("valid sentence regex"));
    let mut out = Vec::new();
    let mut start = 0;
    for found in END.find_iter(text) {
        let sentence = text[start..found.end()].trim();
        if !sentence.is_empty() {
            out.push(sentence);
        }
        start = found.end();
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// How many of `words` (lowercase) a text holds, as whole words or word prefixes (`peanut`
/// counts in `peanuts`).
fn matches(text: &str, words: &[String]) -> usize {
    let lowered = text.to_lowercase();
    let tokens: Vec<&str> = lowered
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    words
        .iter()
        .filter(|word| {
            let stem: String = word
                .chars()
                .take(word.chars().count().clamp(1, 5))
                .collect();
            tokens.iter().any(|token| token.starts_with(stem.as_str()))
        })
        .count()
}

/// The sentence of `text` that holds most of `words` (the first one on a tie); `None` when none
/// holds any.
pub fn best_sentence<'a>(text: &'a str, words: &[String]) -> Option<&'a str> {
    let mut best: Option<(&str, usize)> = None;
    for sentence in sentences(text) {
        let count = matches(sentence, words);
        if count > 0 && best.is_none_or(|(_, most)| count > most) {
            best = Some((sentence, count));
        }
    }
    best.map(|(sentence, _)| sentence)
}

fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let clipped: String = text.chars().take(max_chars).collect();
        format!("{}…", clipped.trim_end())
    }
}

/// The answer without a model: one line per source, `- <title>: <overview> [n]`, in retrieval
/// order. A source without an overview shows its transcript sentence that best matches the
/// question instead.
pub fn extractive(sources: &[SourceText], words: &[String]) -> String {
    if sources.is_empty() {
        return NOTHING_FOUND.to_string();
    }
    let mut answer = EXTRACTIVE_HEADER.to_string();
    for (index, source) in sources.iter().enumerate() {
        let title = if source.title.trim().is_empty() {
            "Untitled"
        } else {
            source.title.trim()
        };
        let overview = source.overview.trim();
        let body = if !overview.is_empty() {
            clip(overview, 500)
        } else {
            best_sentence(&source.transcript, words)
                .or_else(|| sentences(&source.transcript).into_iter().next())
                .map(|sentence| clip(sentence, 300))
                .unwrap_or_default()
        };
        if body.is_empty() {
            answer.push_str(&format!("\n- {title} [{}]", index + 1));
        } else {
            answer.push_str(&format!("\n- {title}: {body} [{}]", index + 1));
        }
    }
    answer
}

/// Removes every `[n]` that does not name one of the `count` sources (1-based), so an answer
/// can only cite what was retrieved. `None` when nothing is left.
pub fn keep_valid_citations(answer: &str, count: usize) -> Option<String> {
    static CITATION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\s?\[(\d{1,4})\]").expect("valid citation regex"));
    let cleaned = CITATION.replace_all(answer, |captures: &regex::Captures<'_>| {
        let valid = captures[1]
            .parse::<usize>()
            .is_ok_and(|n| (1..=count).contains(&n));
        if valid {
            captures[0].to_string()
        } else {
            String::new()
        }
    });
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

/// The system prompt of the model.
pub const SYSTEM_PROMPT: &str = "You answer a user's question about their own recorded conversations. \
Use only the numbered sources and the facts about the user given to you. Cite every claim with the \
number of the source it comes from in square brackets, like [1] or [2][3]; cite only numbers that \
appear in the sources. If the sources do not answer the question, say you could not find it. Answer \
in the language of the question, briefly, in plain text.";

/// The user message: the date, the facts about the user, the numbered sources, the question.
pub fn user_message(
    question: &str,
    local_now: &str,
    sources: &[(String, SourceText)],
    memories: &[String],
) -> String {
    let mut message = format!("Current date and time for the user: {local_now}\n\n");
    if !memories.is_empty() {
        message.push_str("Facts about the user (not citable):\n");
        for memory in memories {
            message.push_str(&format!("- {memory}\n"));
        }
        message.push('\n');
    }
    message.push_str("Sources:\n");
    for (index, (created_at, source)) in sources.iter().enumerate() {
        message.push_str(&format!(
            "[{}] {} ({created_at})\nSummary: {}\nTranscript: {}\n\n",
            index + 1,
            if source.title.is_empty() {
                "Untitled"
            } else {
                &source.title
            },
            source.overview,
            clip(&source.transcript, MAX_TRANSCRIPT_CHARS),
        ));
    }
    message.push_str(&format!("Question: {question}"));
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_extractive_answer_cites_each_source_in_order() {
        let sources = vec![
            SourceText {
                title: "Pricing sync".into(),
                overview: "Prices go up 10% in January.".into(),
                transcript: String::new(),
            },
            SourceText {
                title: String::new(),
                overview: String::new(),
                transcript: "We met. The pricing change is final! Bye.".into(),
            },
        ];
        assert_eq!(
            extractive(&sources, &words(&["pricing"])),
            "Here is what I found in your conversations:\n\
             - Pricing sync: Prices go up 10% in January. [1]\n\
             - Untitled: The pricing change is final! [2]"
        );
        assert_eq!(extractive(&[], &[]), NOTHING_FOUND);
    }

    #[test]
    fn citations_outside_the_sources_are_removed() {
        assert_eq!(
            keep_valid_citations("Yes [1], and also [3] or [0][2].", 2).unwrap(),
            "Yes [1], and also or[2]."
        );
        assert_eq!(keep_valid_citations(" [9] ", 2), None);
    }

    #[test]
    fn the_best_sentence_holds_the_most_query_words() {
        let text = "Peanuts are bad. Alex is allergic to peanuts and shellfish. Ok.";
        assert_eq!(
            best_sentence(text, &words(&["allergic", "peanut"])),
            Some("Alex is allergic to peanuts and shellfish.")
        );
        assert_eq!(best_sentence(text, &words(&["zebra"])), None);
    }
}
