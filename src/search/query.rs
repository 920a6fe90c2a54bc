//! A user's search text read as words and quoted phrases, and rendered into the match syntax of
//! each backend (an FTS5 `MATCH` expression, a PostgreSQL `to_tsquery` text) from words made of
//! letters and digits only, so no user input is ever parsed as query syntax.
//!
//! Semantics, the same on both backends:
//! - bare words are alternatives (any may match); documents that hold more of them, rarer ones,
//!   or all of them in the order typed rank higher, because the whole text is also searched as a
//!   phrase;
//! - a quoted phrase is required, word for word in that order;
//! - the last bare word also matches as a prefix (`pean` finds `peanuts`), unless the text ends
//!   with a space;
//! - common function words (`the`, `what`, `did`...) are dropped from the alternatives unless
//!   nothing else is left; they stay inside phrases.

/// Words kept from one query, at most this many: a bound on the work one query can cause.
pub const MAX_WORDS: usize = 32;

/// The longest search text, in characters after trimming (API.md §13.A.0).
pub const MAX_QUERY_CHARS: usize = 500;

/// Why a search text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SearchTextError {
    #[error("query cannot be empty")]
    Empty,
    #[error("query must be at most {MAX_QUERY_CHARS} characters")]
    TooLong,
}

/// The trimmed search text, 1..500 characters.
pub fn search_text(raw: &str) -> Result<&str, SearchTextError> {
    let text = raw.trim();
    if text.is_empty() {
        Err(SearchTextError::Empty)
    } else if text.chars().count() > MAX_QUERY_CHARS {
        Err(SearchTextError::TooLong)
    } else {
        Ok(text)
    }
}

/// English function words, plus a few of the most frequent ones of French, Spanish, German and
/// Portuguese, that would match nearly every document.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "for",
    "from",
    "had",
    "has",
    "have",
    "he",
    "her",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "me",
    "my",
    "of",
    "on",
    "or",
    "our",
    "she",
    "so",
    "some",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "us",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "tell",
    "know",
    "anything",
    "something",
    "le",
    "la",
    "les",
    "de",
    "des",
    "du",
    "un",
    "une",
    "et",
    "est",
    "que",
    "qui",
    "en",
    "el",
    "los",
    "las",
    "y",
    "es",
    "del",
    "der",
    "die",
    "das",
    "und",
    "ist",
    "ein",
    "eine",
    "o",
    "os",
    "e",
    "um",
    "uma",
];

pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// A query read into words; build it with [`LexicalQuery::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LexicalQuery {
    /// Quoted phrases, each a list of words; every one must match.
    pub phrases: Vec<Vec<String>>,
    /// The bare words that may match, de-duplicated, in the order typed.
    pub terms: Vec<String>,
    /// Every bare word in the order typed (stop words included), searched as a phrase to rank
    /// the exact text first. Empty when there are fewer than two.
    pub whole: Vec<String>,
    /// Whether the last entry of `terms` also matches as a prefix.
    pub last_is_prefix: bool,
}

impl LexicalQuery {
    /// Reads a search text. Characters other than letters and digits separate words; a `"`
    /// opens or closes a phrase (an unclosed one runs to the end).
    pub fn parse(text: &str) -> LexicalQuery {
        let mut phrases: Vec<Vec<String>> = Vec::new();
        let mut bare: Vec<String> = Vec::new();
        let mut current = String::new();
        let mut phrase: Option<Vec<String>> = None;
        let mut word_count = 0usize;
        // Whether the last word read was a bare one (not inside a phrase).
        let mut last_word_bare = false;
        let mut push_word = |word: &mut String, phrase: &mut Option<Vec<String>>| {
            if word.is_empty() {
                return;
            }
            let taken = std::mem::take(word);
            if word_count >= MAX_WORDS {
                return;
            }
            word_count += 1;
            last_word_bare = phrase.is_none();
            match phrase {
                Some(words) => words.push(taken),
                None => bare.push(taken),
            }
        };
        for ch in text.chars() {
            if ch.is_alphanumeric() {
                current.extend(ch.to_lowercase());
            } else {
                push_word(&mut current, &mut phrase);
                if ch == '"' {
                    match phrase.take() {
                        Some(words) if !words.is_empty() => phrases.push(words),
                        Some(_) => {}
                        None => phrase = Some(Vec::new()),
                    }
                }
            }
        }
        push_word(&mut current, &mut phrase);
        if let Some(words) = phrase.take()
            && !words.is_empty()
        {
            phrases.push(words);
        }
        let ends_in_word = text.chars().last().is_some_and(char::is_alphanumeric);
        let last_bare_is_last_word = ends_in_word && last_word_bare;
        let mut terms: Vec<String> = Vec::new();
        for word in &bare {
            if !terms.contains(word) {
                terms.push(word.clone());
            }
        }
        let content: Vec<String> = terms
            .iter()
            .filter(|word| !is_stop_word(word))
            .cloned()
            .collect();
        let last_word = bare.last().cloned();
        let terms = if content.is_empty() { terms } else { content };
        // Prefix only for a word of two letters or more that is still the last of the terms.
        let last_is_prefix = last_bare_is_last_word
            && last_word
                .as_ref()
                .is_some_and(|last| terms.last() == Some(last) && last.chars().count() >= 2);
        let whole = if bare.len() >= 2 { bare } else { Vec::new() };
        LexicalQuery {
            phrases,
            terms,
            whole,
            last_is_prefix,
        }
    }

    /// Nothing to match (the text had no letters or digits).
    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty() && self.terms.is_empty()
    }

    fn term_is_prefix(&self, index: usize) -> bool {
        self.last_is_prefix && index + 1 == self.terms.len()
    }

    /// The FTS5 `MATCH` expression; `None` when there is nothing to match. Every word is a
    /// quoted string, so no input can be read as an operator, a column filter or a syntax error.
    pub fn fts5_expression(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let quote = fts5_quote;
        let mut alternatives: Vec<String> = self
            .terms
            .iter()
            .enumerate()
            .map(|(index, term)| {
                let quoted = quote(std::slice::from_ref(term));
                if self.term_is_prefix(index) {
                    format!("{quoted} *")
                } else {
                    quoted
                }
            })
            .collect();
        if !self.whole.is_empty() {
            alternatives.push(quote(&self.whole));
        }
        let mut required: Vec<String> = self.phrases.iter().map(|words| quote(words)).collect();
        if !alternatives.is_empty() {
            required.push(format!("({})", alternatives.join(" OR ")));
        }
        Some(required.join(" AND "))
    }

    /// Each phrase of [`LexicalQuery::fts5_expression`] as an expression of its own, in the
    /// order FTS5 numbers them (left to right): the quoted phrases, the terms, the whole text.
    pub fn fts5_phrases(&self) -> Vec<String> {
        let mut phrases: Vec<String> = self.phrases.iter().map(|words| fts5_quote(words)).collect();
        for (index, term) in self.terms.iter().enumerate() {
            let quoted = fts5_quote(std::slice::from_ref(term));
            phrases.push(if self.term_is_prefix(index) {
                format!("{quoted} *")
            } else {
                quoted
            });
        }
        if !self.whole.is_empty() {
            phrases.push(fts5_quote(&self.whole));
        }
        phrases
    }

    /// The PostgreSQL `to_tsquery` text that selects matching documents; `None` when there is
    /// nothing to match. Words are single-quoted lexemes of letters and digits.
    pub fn tsquery(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let alternatives: Vec<String> = self
            .terms
            .iter()
            .enumerate()
            .map(|(index, term)| {
                if self.term_is_prefix(index) {
                    format!("'{term}':*")
                } else {
                    format!("'{term}'")
                }
            })
            .collect();
        let mut required: Vec<String> = self
            .phrases
            .iter()
            .map(|words| format!("({})", ts_phrase(words)))
            .collect();
        if !alternatives.is_empty() {
            required.push(format!("({})", alternatives.join(" | ")));
        }
        Some(required.join(" & "))
    }

    /// The PostgreSQL `to_tsquery` text of the whole bare text as a phrase, which ranks the
    /// exact text first; `None` for fewer than two bare words.
    pub fn tsquery_whole(&self) -> Option<String> {
        (!self.whole.is_empty()).then(|| ts_phrase(&self.whole))
    }

    /// The words a snippet or an extractive answer looks for: phrase words and terms.
    pub fn words(&self) -> Vec<String> {
        let mut words: Vec<String> = self.terms.clone();
        for phrase in &self.phrases {
            for word in phrase {
                if !words.contains(word) && !is_stop_word(word) {
                    words.push(word.clone());
                }
            }
        }
        words
    }
}

/// Words as one quoted FTS5 string (a phrase when there are several).
fn fts5_quote(words: &[String]) -> String {
    format!("\"{}\"", words.join(" ").replace('"', "\"\""))
}

fn ts_phrase(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("'{word}'"))
        .collect::<Vec<_>>()
        .join(" <-> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_text_is_trimmed_and_bounded() {
        assert_eq!(search_text("  peanuts \n"), Ok("peanuts"));
        assert_eq!(search_text(" \t "), Err(SearchTextError::Empty));
        assert_eq!(search_text(&"é".repeat(500)), Ok("é".repeat(500).as_str()));
        assert_eq!(search_text(&"a".repeat(501)), Err(SearchTextError::TooLong));
    }

    #[test]
    fn bare_words_are_alternatives_with_the_whole_text_as_a_phrase() {
        let query = LexicalQuery::parse("Dentist appointment moved");
        assert_eq!(query.terms, ["dentist", "appointment", "moved"]);
        assert_eq!(
            query.fts5_expression().unwrap(),
            r#"("dentist" OR "appointment" OR "moved" * OR "dentist appointment moved")"#
        );
        assert_eq!(
            query.tsquery().unwrap(),
            "('dentist' | 'appointment' | 'moved':*)"
        );
        assert_eq!(
            query.fts5_phrases(),
            [
                r#""dentist""#,
                r#""appointment""#,
                r#""moved" *"#,
                r#""dentist appointment moved""#
            ]
        );
        assert_eq!(
            query.tsquery_whole().unwrap(),
            "'dentist' <-> 'appointment' <-> 'moved'"
        );
    }

    #[test]
    fn a_trailing_space_turns_the_prefix_off() {
        let query = LexicalQuery::parse("peanut ");
        assert!(!query.last_is_prefix);
        assert_eq!(query.fts5_expression().unwrap(), r#"("peanut")"#);
        assert!(LexicalQuery::parse("pean").last_is_prefix);
    }

    #[test]
    fn quoted_phrases_are_required() {
        let query = LexicalQuery::parse(r#""raise prices" january"#);
        assert_eq!(query.phrases, vec![vec!["raise", "prices"]]);
        assert_eq!(
            query.fts5_expression().unwrap(),
            r#""raise prices" AND ("january" *)"#
        );
        assert_eq!(
            query.fts5_phrases(),
            [r#""raise prices""#, r#""january" *"#]
        );
        assert_eq!(
            query.tsquery().unwrap(),
            "('raise' <-> 'prices') & ('january':*)"
        );
        let unclosed = LexicalQuery::parse(r#"budget "next quarter"#);
        assert_eq!(unclosed.phrases, vec![vec!["next", "quarter"]]);
        assert!(!unclosed.last_is_prefix, "the last word is in a phrase");
    }

    #[test]
    fn operators_and_syntax_in_the_text_are_plain_separators() {
        for text in [
            r#"NEAR(a b) OR col:x AND NOT y*"#,
            "a' OR 1=1; --",
            "\\ ( ) { } [ ] ^ ~ : * - + | & ! <->",
        ] {
            let query = LexicalQuery::parse(text);
            let expression = query.fts5_expression().unwrap_or_default();
            for word in &query.terms {
                assert!(word.chars().all(char::is_alphanumeric), "{word}");
            }
            assert!(!expression.contains("col:"), "{expression}");
        }
        assert!(LexicalQuery::parse("!!! ??? ...").is_empty());
        assert_eq!(LexicalQuery::parse("!!!").fts5_expression(), None);
        assert_eq!(LexicalQuery::parse("\"\"").tsquery(), None);
    }

    #[test]
    fn stop_words_are_dropped_unless_nothing_else_is_left() {
        let query = LexicalQuery::parse("what did I decide about pricing?");
        assert_eq!(query.terms, ["decide", "pricing"]);
        assert_eq!(query.whole.len(), 6);
        assert_eq!(LexicalQuery::parse("the who").terms, ["the", "who"]);
    }

    #[test]
    fn words_are_lowercased_across_scripts_and_bounded() {
        let query = LexicalQuery::parse("Café MÜNCHEN Ελλάδα 東京");
        assert_eq!(query.terms, ["café", "münchen", "ελλάδα", "東京"]);
        let long = "word ".repeat(2000);
        assert_eq!(LexicalQuery::parse(&long).terms, ["word"]);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(LexicalQuery::parse(&many).terms.len(), MAX_WORDS);
    }
}
