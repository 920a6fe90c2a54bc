//! A small clause analysis for one sentence: where its clauses start, what joins them
//! ("and", "because", a comma, nothing at all in run-on speech) and what each one is for the
//! rules: a main clause that may hold a task, a time phrase that belongs to its neighbour, a
//! subordinate clause that explains rather than asks, or the continuation of the clause before
//! it ("sign the form and send it back").
//!
//! It works on words and punctuation only, in one pass, with no dictionary beyond a few
//! closed word classes (conjunctions, pronouns, auxiliaries), so it is fast and predictable.

use super::dates::strip_time_expressions;

/// What opened a fragment of a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lead {
    /// The start of the sentence.
    Start,
    /// A comma with no conjunction after it.
    Comma,
    /// A semicolon, or a colon that introduces what follows ("plan for the move: I'll …").
    Semicolon,
    /// "and", "or", "plus", with or without a comma.
    And,
    /// "but", "yet".
    But,
    /// "so" (a consequence, or a discourse "so" before a new request).
    So,
    /// "because", "since", "which", "although", "otherwise": an explanation, never a task.
    Because,
    /// "before we close", "until you hear", "when I get home": a time for its main clause.
    Temporal,
    /// "if you have time": the clause it belongs to is hypothetical.
    If,
    /// A new subject without any joining word ("… today it's been sitting there").
    RunOn,
}

/// One stretch of a sentence between two clause boundaries.
#[derive(Debug, Clone, Copy)]
pub struct Fragment {
    pub lead: Lead,
    /// Byte range of the whole fragment (joining words included) in the sentence.
    pub start: usize,
    pub end: usize,
    /// Where the fragment's own words start, after the joining words and fillers.
    pub body: usize,
}

/// What a fragment is to the action-item rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May hold a task of its own.
    Main,
    /// Only a time ("tonight", ", by friday", "first thing monday"): it times a neighbour.
    Time,
    /// A temporal subordinate clause ("before we close at 7"): it times the clause before it.
    TimeClause,
    /// Belongs to the clause before it: a second verb ("and send it back") or more of its
    /// object ("and the signed application").
    Continuation,
    /// "and to order her gift": a second action under the same trigger as the clause before.
    ToInfinitive,
    /// An explanation or an aside that neither asks anything nor times anything.
    Aside,
    /// A hypothetical condition.
    Condition,
}

#[derive(Debug, Clone, Copy)]
struct Word<'a> {
    start: usize,
    end: usize,
    text: &'a str,
    /// The punctuation between the previous word and this one.
    comma_before: bool,
    semicolon_before: bool,
}

const SUBJECTS: &[&str] = &[
    "i", "i'm", "i'll", "i've", "i'd", "we", "we're", "we'll", "we've", "he", "he's", "he'll",
    "she", "she's", "she'll", "they", "they're", "they'll", "they've", "it's", "it'll", "you're",
    "you'll", "you've", "ich", "je", "yo", "eu", "wir", "nous",
];
/// "it" and "you" start a clause only when a verb follows them directly.
const AMBIGUOUS_SUBJECTS: &[&str] = &["it", "you", "that"];
const FINITE: &[&str] = &[
    "is", "are", "was", "were", "has", "have", "had", "will", "can", "could", "should", "would",
    "does", "do", "did", "goes", "gets", "needs", "closes", "ends", "starts", "opens", "looks",
    "seems", "feels", "says", "wants", "keeps", "likes", "expires", "isn't", "aren't", "wasn't",
    "won't", "can't", "doesn't", "don't", "didn't", "must", "might", "may", "called", "said",
    "got", "went", "came", "moved", "changed", "leaks", "works",
];
/// Words after which a subject pronoun continues the same clause ("I think I", "so that we").
const NO_SPLIT_BEFORE_SUBJECT: &[&str] = &[
    "and",
    "but",
    "or",
    "so",
    "because",
    "since",
    "that",
    "if",
    "when",
    "before",
    "after",
    "until",
    "till",
    "while",
    "as",
    "though",
    "although",
    "where",
    "which",
    "who",
    "whom",
    "whether",
    "than",
    "what",
    "how",
    "why",
    "once",
    "unless",
    "cause",
    "cuz",
    "know",
    "think",
    "guess",
    "mean",
    "hope",
    "bet",
    "said",
    "say",
    "says",
    "sure",
    "believe",
    "feel",
    "thought",
    "wish",
    "realize",
    "like",
    "glad",
    "afraid",
    "worried",
    "can",
    "could",
    "would",
    "will",
    "should",
    "do",
    "did",
    "does",
    "are",
    "is",
    "was",
    "were",
    "have",
    "has",
    "had",
    "shall",
    "may",
    "might",
    "must",
    "maybe",
    "let",
    "tell",
    "told",
    "asked",
    "ask",
    "then",
    "now",
    "yeah",
    "yes",
    "ok",
    "okay",
    "oh",
    "well",
    "um",
    "uh",
    "hmm",
    "also",
    "actually",
    "honestly",
    "probably",
    "definitely",
    "really",
    "just",
    "not",
    "bet",
    "see",
    "make",
    "made",
    "wonder",
    "where",
    "cause",
    "hear",
    "heard",
    "heard",
    "noticed",
    "saw",
    "remember",
    "forget",
    "realised",
    "realized",
    "assume",
    "suppose",
    "even",
    "only",
    "promise",
    "swear",
    "figured",
    "figure",
    "decided",
    "decide",
    "hoped",
    "knew",
];
const CONJUNCTIONS: &[(&str, Lead)] = &[
    ("and", Lead::And),
    ("or", Lead::And),
    ("plus", Lead::And),
    ("but", Lead::But),
    ("yet", Lead::But),
    ("because", Lead::Because),
    ("cause", Lead::Because),
    ("cuz", Lead::Because),
    ("since", Lead::Because),
    ("which", Lead::Because),
    ("although", Lead::Because),
    ("though", Lead::Because),
    ("otherwise", Lead::Because),
    ("porque", Lead::Because),
    ("sonst", Lead::Because),
    ("weil", Lead::Because),
    ("parce", Lead::Because),
    ("y", Lead::And),
    ("und", Lead::And),
    ("et", Lead::And),
    ("e", Lead::And),
];
const TEMPORAL: &[&str] = &[
    "before", "after", "until", "till", "when", "once", "while", "whenever",
];
const PRONOUN_AFTER_TEMPORAL: &[&str] = &[
    "i", "we", "you", "he", "she", "they", "it", "i'm", "we're", "you're", "the", "my", "your",
    "our",
];
/// Words skipped at the start of a fragment before its own words begin.
const FILLERS: &[&str] = &[
    "um", "uh", "umm", "uhh", "er", "erm", "like", "then", "also", "so", "ok", "okay", "oh",
    "well", "yeah", "and", "alright", "anyway", "plus", "just", "please", "pls", "hey",
];

fn words(sentence: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut comma = false;
    let mut semicolon = false;
    let mut start: Option<usize> = None;
    let bytes: Vec<(usize, char)> = sentence.char_indices().collect();
    for (k, &(i, c)) in bytes.iter().enumerate() {
        let inner_joiner = (c == '\'' || c == '’' || c == '-' || c == '.' || c == ':' || c == '/')
            && start.is_some()
            && bytes.get(k + 1).is_some_and(|&(_, n)| n.is_alphanumeric())
            && (c != '.' && c != ':' && c != '/'
                || bytes[k - 1].1.is_ascii_digit() && bytes[k + 1].1.is_ascii_digit());
        if c.is_alphanumeric() || inner_joiner {
            if start.is_none() {
                start = Some(i);
            }
            continue;
        }
        if let Some(s) = start.take() {
            out.push(Word {
                start: s,
                end: i,
                text: &sentence[s..i],
                comma_before: comma,
                semicolon_before: semicolon,
            });
            comma = false;
            semicolon = false;
        }
        match c {
            // "January 31, 2025": the comma before a year separates nothing.
            ',' if sentence[i + 1..]
                .trim_start()
                .starts_with(|ch: char| ch.is_ascii_digit())
                && sentence[i + 1..]
                    .trim_start()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .count()
                    == 4 => {}
            ',' => comma = true,
            ';' | '—' | '–' => semicolon = true,
            ':' => semicolon = true,
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Word {
            start: s,
            end: sentence.len(),
            text: &sentence[s..],
            comma_before: comma,
            semicolon_before: semicolon,
        });
    }
    out
}

fn lower(word: &Word<'_>) -> String {
    word.text.to_lowercase().replace('’', "'")
}

fn is_subject_at(ws: &[Word<'_>], lowers: &[String], i: usize) -> bool {
    let w = lowers[i].as_str();
    if SUBJECTS.contains(&w) {
        return true;
    }
    AMBIGUOUS_SUBJECTS.contains(&w)
        && lowers
            .get(i + 1)
            .is_some_and(|n| FINITE.contains(&n.as_str()) && !ws[i + 1].comma_before)
}

/// Splits a sentence into fragments at clause boundaries.
pub fn fragments(sentence: &str) -> Vec<Fragment> {
    let ws = words(sentence);
    let lowers: Vec<String> = ws.iter().map(lower).collect();
    let mut out: Vec<Fragment> = Vec::new();
    let mut current = Fragment {
        lead: Lead::Start,
        start: 0,
        end: sentence.len(),
        body: ws.first().map_or(0, |w| w.start),
    };
    let mut i = 0;
    // Index of the first word of the current fragment, to avoid splitting twice in a row.
    let mut fragment_first_word = 0usize;
    while i < ws.len() {
        let w = lowers[i].as_str();
        let mut lead = None;
        if i > 0 {
            let next = lowers.get(i + 1).map(String::as_str);
            // "since thursday" is a time, "since we moved" a clause.
            let conj = CONJUNCTIONS
                .iter()
                .find(|(c, _)| *c == w)
                .map(|(_, l)| *l)
                .filter(|_| {
                    w != "since" || next.is_some_and(|n| PRONOUN_AFTER_TEMPORAL.contains(&n))
                });
            if ws[i].semicolon_before {
                lead = Some(Lead::Semicolon);
            } else if ws[i].comma_before {
                lead = Some(conj.unwrap_or(match w {
                    "so" => Lead::So,
                    "if" | "unless" => Lead::If,
                    _ if TEMPORAL.contains(&w) => Lead::Temporal,
                    _ => Lead::Comma,
                }));
            } else if let Some(conj) = conj {
                // "parce que": only with its "que".
                if w != "parce" || next == Some("que") {
                    lead = Some(conj);
                }
            } else if w == "so"
                && next.is_some_and(|n| {
                    SUBJECTS.contains(&n)
                        || matches!(
                            n,
                            "the"
                                | "my"
                                | "our"
                                | "that"
                                | "um"
                                | "uh"
                                | "it"
                                | "you"
                                | "she"
                                | "he"
                        )
                })
            {
                lead = Some(Lead::So);
            } else if (w == "if" || w == "unless")
                && next.is_some_and(|n| PRONOUN_AFTER_TEMPORAL.contains(&n))
                && lowers[i - 1] != "wondering"
            {
                lead = Some(Lead::If);
            } else if TEMPORAL.contains(&w)
                && next.is_some_and(|n| PRONOUN_AFTER_TEMPORAL.contains(&n))
            {
                lead = Some(Lead::Temporal);
            } else if is_subject_at(&ws, &lowers, i)
                && i > fragment_first_word
                && !NO_SPLIT_BEFORE_SUBJECT.contains(&lowers[i - 1].as_str())
            {
                lead = Some(Lead::RunOn);
            }
        }
        if let Some(lead) = lead {
            // A boundary right after the joining words of the previous one only refines it
            // (", and I …" is one boundary; "ok so I …" has no fragment before "I").
            let only_joiners_so_far = lowers[fragment_first_word..i]
                .iter()
                .all(|l| FILLERS.contains(&l.as_str()) || CONJUNCTIONS.iter().any(|(c, _)| c == l));
            if !only_joiners_so_far {
                let trimmed =
                    sentence[..ws[i].start].trim_end_matches([' ', ',', ';', ':', '—', '–']);
                current.end = trimmed.len().max(current.start);
                out.push(current);
                current = Fragment {
                    lead,
                    start: ws[i].start,
                    end: sentence.len(),
                    body: ws[i].start,
                };
                fragment_first_word = i;
            } else if current.lead != Lead::Start && lead != Lead::RunOn && lead != Lead::And {
                current.lead = lead;
            }
        }
        i += 1;
    }
    out.push(current);
    // Bodies start after the joining words and fillers.
    for fragment in &mut out {
        // Bullets and dashes before the first word are not part of the body.
        let first = ws.partition_point(|w| w.start < fragment.start);
        let mut body = ws
            .get(first)
            .map_or(fragment.start, |w| w.start.min(fragment.end));
        for (w, l) in ws[first..].iter().zip(&lowers[first..]) {
            if w.start >= fragment.end {
                break;
            }
            let joiner = FILLERS.contains(&l.as_str())
                || CONJUNCTIONS.iter().any(|(c, _)| c == l)
                || (fragment.lead == Lead::Temporal
                    && TEMPORAL.contains(&l.as_str())
                    && body == w.start)
                || (fragment.lead == Lead::If && matches!(l.as_str(), "if" | "unless"))
                || (l == "que" && body == w.start);
            if joiner && body == w.start {
                body = w.end;
                // Skip the space after it.
                body +=
                    sentence[body..].len() - sentence[body..].trim_start_matches([' ', ',']).len();
            } else {
                break;
            }
        }
        fragment.body = body.min(fragment.end).max(fragment.start);
    }
    out
}

/// Whether a fragment's own words hold nothing but a time ("tonight", "by friday at 3",
/// "first thing monday").
pub fn is_only_time(body: &str) -> bool {
    // A time phrase is short; longer fragments are clauses.
    if body.split_whitespace().nth(7).is_some() {
        return false;
    }
    let stripped = strip_time_expressions(body);
    if stripped.len() == body.trim().len() {
        return false;
    }
    stripped
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .all(|w| {
            matches!(
                w.to_lowercase().as_str(),
                "um" | "uh"
                    | "so"
                    | "ok"
                    | "okay"
                    | "and"
                    | "then"
                    | "also"
                    | "please"
                    | "pls"
                    | "like"
                    | "first"
                    | "thing"
                    | "by"
                    | "on"
                    | "at"
                    | "for"
                    | "before"
                    | "latest"
                    | "the"
                    | "at the"
                    | "oh"
                    | "right"
                    | "just"
            )
        })
}

/// Whether the first words of a fragment make it a clause of its own: a subject pronoun, or
/// a noun followed closely by a finite verb ("the rate goes up", "offer ends at midnight").
pub fn starts_with_subject(body: &str) -> bool {
    let ws = words(body);
    let lowers: Vec<String> = ws.iter().map(lower).collect();
    if lowers.is_empty() {
        return false;
    }
    if is_subject_at(&ws, &lowers, 0) {
        return true;
    }
    lowers.iter().take(4).skip(1).any(|l| {
        FINITE.contains(&l.as_str()) || l.ends_with("'s") && l.len() > 2 && lowers[0] == "it"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(sentence: &str) -> Vec<(Lead, &str)> {
        fragments(sentence)
            .into_iter()
            .map(|f| (f.lead, &sentence[f.body..f.end]))
            .collect()
    }

    #[test]
    fn splits_coordinated_obligations_each_with_its_time() {
        let p = pieces(
            "Tonight I have to call the bank, and on Friday I need to return the rental car.",
        );
        assert_eq!(p[0].1, "Tonight");
        assert_eq!(p[1].1, "I have to call the bank");
        assert!(p.iter().any(|(_, t)| t.starts_with("on Friday")));
        assert!(
            p.iter()
                .any(|(_, t)| t.starts_with("I need to return the rental car"))
        );
    }

    #[test]
    fn run_on_speech_starts_a_new_clause_at_a_new_subject() {
        let p = pieces("review marco's pr today it's been sitting there since thursday");
        assert_eq!(p[0].1, "review marco's pr today");
        assert_eq!(
            p[1],
            (Lead::RunOn, "it's been sitting there since thursday")
        );
    }

    #[test]
    fn subordinate_and_temporal_clauses_are_marked() {
        let p = pieces("please pick up your prescription before we close at 7 tonight");
        assert_eq!(p[1], (Lead::Temporal, "we close at 7 tonight"));
        let p = pieces("I need to submit the form because finance closes early today");
        assert_eq!(p[1].0, Lead::Because);
    }

    #[test]
    fn a_subject_after_a_verb_of_thinking_stays_in_its_clause() {
        assert_eq!(pieces("I think I need to call her tomorrow").len(), 1);
    }

    #[test]
    fn only_time_fragments() {
        assert!(is_only_time("tonight"));
        assert!(is_only_time("first thing Monday"));
        assert!(is_only_time("by 9:30 tomorrow"));
        assert!(!is_only_time("offer ends at midnight"));
        assert!(!is_only_time("the bank"));
    }
}
