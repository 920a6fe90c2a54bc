//! Title and overview (PROCESSING.md §2). The overview is extractive: the most central
//! sentences in their original order, chosen by TextRank for short conversations and by a
//! linear-time TF-IDF centroid for long ones, so that 100,000 characters stay fast.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::text::{
    content_words, cut_at_word_boundary, is_stopword, title_case, tokenize,
    trim_sentence_punctuation, truncate_words,
};

/// Above this many sentences TextRank's quadratic similarity matrix costs too much.
const TEXTRANK_MAX_SENTENCES: usize = 80;
const TEXTRANK_ITERATIONS: usize = 30;
const TEXTRANK_DAMPING: f64 = 0.85;
const MAX_OVERVIEW_SENTENCE_CHARS: usize = 400;
const MAX_TITLE_WORDS: usize = 10;
const TITLE_FALLBACK_CHARS: usize = 60;

static TITLE_OPENERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:(?:so|ok(?:ay)?|um+|uh+|well|hey|hi|hello|alright|right|yeah|yes|and|but|anyway|basically|actually|just|i think|i guess|i mean|you know|like|oh)\b[\s,.!:;-]*)+")
        .expect("valid regex")
});
static TITLE_CLAUSE_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:[,;:(]|\s(?:and|but|because|since|so|which|who|that|when|while|if|although)\s)",
    )
    .expect("valid regex")
});
/// Determiners dropped from titles built from an action ("Call Dentist About Crown").
const TITLE_DETERMINERS: &[&str] = &[
    "the", "a", "an", "my", "our", "your", "his", "her", "their", "some", "this", "that",
];

/// Whether a sentence says anything beyond filler and function words.
pub fn is_substantive(sentence: &str) -> bool {
    tokenize(sentence).iter().any(|t| !is_stopword(t))
}

/// The overview and the single most central sentence (a title candidate).
pub struct Summary {
    pub overview: String,
    pub central_sentence: Option<String>,
}

pub fn summarize(sentences: &[&str]) -> Summary {
    let substantive: Vec<&str> = sentences
        .iter()
        .copied()
        .filter(|s| is_substantive(s))
        .collect();
    if substantive.is_empty() {
        let joined = sentences.join(" ");
        return Summary {
            overview: cut_at_word_boundary(&joined, MAX_OVERVIEW_SENTENCE_CHARS),
            central_sentence: sentences.first().map(|s| s.to_string()),
        };
    }
    if substantive.len() <= 2 {
        return Summary {
            overview: substantive
                .iter()
                .map(|s| cut_at_word_boundary(s, MAX_OVERVIEW_SENTENCE_CHARS))
                .collect::<Vec<_>>()
                .join(" "),
            central_sentence: Some(substantive[0].to_string()),
        };
    }
    let bags: Vec<Vec<String>> = substantive.iter().map(|s| content_words(s)).collect();
    let scores = if substantive.len() <= TEXTRANK_MAX_SENTENCES {
        textrank(&bags)
    } else {
        tfidf_centroid(&bags)
    };
    let mut ranked: Vec<usize> = (0..substantive.len()).collect();
    // Ties go to the earlier sentence: openings tend to state the topic.
    ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let keep = (substantive.len() / 3).clamp(1, 3);
    let mut chosen: Vec<usize> = ranked[..keep].to_vec();
    chosen.sort_unstable();
    Summary {
        overview: chosen
            .iter()
            .map(|&i| cut_at_word_boundary(substantive[i], MAX_OVERVIEW_SENTENCE_CHARS))
            .collect::<Vec<_>>()
            .join(" "),
        central_sentence: Some(substantive[ranked[0]].to_string()),
    }
}

/// TextRank over word-overlap similarity (Mihalcea & Tarau, 2004).
fn textrank(bags: &[Vec<String>]) -> Vec<f64> {
    let n = bags.len();
    let sets: Vec<std::collections::HashSet<&str>> = bags
        .iter()
        .map(|b| b.iter().map(String::as_str).collect())
        .collect();
    let mut weights = vec![vec![0.0f64; n]; n];
    for i in 0..n {
        for j in (i + 1)..n {
            let overlap = sets[i].intersection(&sets[j]).count() as f64;
            if overlap == 0.0 {
                continue;
            }
            let norm = (sets[i].len() as f64 + 1.0).ln() + (sets[j].len() as f64 + 1.0).ln();
            let similarity = overlap / norm.max(1.0);
            weights[i][j] = similarity;
            weights[j][i] = similarity;
        }
    }
    let out_sums: Vec<f64> = weights.iter().map(|row| row.iter().sum()).collect();
    let mut scores = vec![1.0f64; n];
    for _ in 0..TEXTRANK_ITERATIONS {
        let next: Vec<f64> = (0..n)
            .map(|i| {
                let incoming: f64 = (0..n)
                    .filter(|&j| out_sums[j] > 0.0 && weights[j][i] > 0.0)
                    .map(|j| weights[j][i] / out_sums[j] * scores[j])
                    .sum();
                (1.0 - TEXTRANK_DAMPING) + TEXTRANK_DAMPING * incoming
            })
            .collect();
        scores = next;
    }
    scores
}

/// Cosine similarity of each sentence's TF-IDF vector to the document centroid; linear in the
/// number of words.
fn tfidf_centroid(bags: &[Vec<String>]) -> Vec<f64> {
    let n = bags.len() as f64;
    let mut document_frequency: HashMap<&str, f64> = HashMap::new();
    let term_counts: Vec<HashMap<&str, f64>> = bags
        .iter()
        .map(|bag| {
            let mut counts: HashMap<&str, f64> = HashMap::new();
            for word in bag {
                *counts.entry(word.as_str()).or_default() += 1.0;
            }
            for word in counts.keys() {
                *document_frequency.entry(word).or_default() += 1.0;
            }
            counts
        })
        .collect();
    let idf = |word: &str| (n / document_frequency.get(word).copied().unwrap_or(1.0)).ln() + 1.0;
    let mut centroid: HashMap<&str, f64> = HashMap::new();
    for counts in &term_counts {
        for (&word, &count) in counts {
            *centroid.entry(word).or_default() += count * idf(word);
        }
    }
    let centroid_norm = centroid
        .values()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
        .max(1e-9);
    term_counts
        .iter()
        .map(|counts| {
            let mut dot = 0.0;
            let mut norm = 0.0;
            for (&word, &count) in counts {
                let weight = count * idf(word);
                dot += weight * centroid.get(word).copied().unwrap_or(0.0);
                norm += weight * weight;
            }
            if norm == 0.0 {
                0.0
            } else {
                dot / (norm.sqrt() * centroid_norm)
            }
        })
        .collect()
}

/// A title from an action or event: determiners dropped, Title Case ("Call Dentist About Crown").
pub fn title_from_action(action: &str) -> String {
    let words: Vec<&str> = trim_sentence_punctuation(action)
        .split_whitespace()
        .filter(|w| !TITLE_DETERMINERS.contains(&w.to_lowercase().as_str()))
        .collect();
    title_case(&truncate_words(&words.join(" "), MAX_TITLE_WORDS))
}

/// A title from the most central sentence: openers and trailing clauses removed, at most
/// 60 characters and 10 words.
pub fn title_from_sentence(sentence: &str) -> String {
    let sentence = trim_sentence_punctuation(sentence);
    let without_opener = TITLE_OPENERS.replace(sentence, "");
    let mut core = without_opener.trim().to_string();
    if let Some(m) = TITLE_CLAUSE_END.find(&core)
        && core[..m.start()].split_whitespace().count() >= 3
    {
        core.truncate(m.start());
    }
    if core.split_whitespace().count() < 2 {
        core = sentence.to_string();
    }
    title_from_words(&cut_at_word_boundary(&core, TITLE_FALLBACK_CHARS))
}

/// At most 10 words in Title Case, without a dangling "and", "the" or "to" at the end.
fn title_from_words(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    words.truncate(MAX_TITLE_WORDS);
    while words.len() > 1
        && words
            .last()
            .is_some_and(|w| is_stopword(&w.to_lowercase()) && w.len() <= 4)
    {
        words.pop();
    }
    title_case(trim_sentence_punctuation(&words.join(" ")))
}

/// The documented fallback: the first sentence cut to 60 characters at a word boundary.
pub fn fallback_title(first_sentence: &str) -> String {
    title_from_words(&cut_at_word_boundary(
        trim_sentence_punctuation(first_sentence),
        TITLE_FALLBACK_CHARS,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_two_sentences_are_their_own_overview() {
        let summary = summarize(&["Buy milk.", "Call mom."]);
        assert_eq!(summary.overview, "Buy milk. Call mom.");
    }

    #[test]
    fn filler_sentences_never_reach_the_overview() {
        let summary = summarize(&["Yeah.", "Okay okay.", "The budget is over by ten percent."]);
        assert_eq!(summary.overview, "The budget is over by ten percent.");
    }

    #[test]
    fn the_overview_keeps_central_sentences_in_original_order() {
        let sentences = [
            "We reviewed the marketing budget for the launch.",
            "The weather was nice.",
            "The marketing budget needs another review before the launch.",
            "Lunch was fine.",
            "Launch marketing is the priority and the budget must cover it.",
            "Parking was hard.",
        ];
        let summary = summarize(&sentences);
        assert!(
            summary
                .overview
                .starts_with("We reviewed the marketing budget")
        );
        assert!(!summary.overview.contains("Parking"));
    }

    #[test]
    fn long_texts_use_the_centroid_and_stay_bounded() {
        let sentences: Vec<String> = (0..500)
            .map(|i| format!("Sentence number {i} talks about the quarterly budget review."))
            .collect();
        let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
        let summary = summarize(&refs);
        assert_eq!(summary.overview.matches("Sentence").count(), 3);
    }

    #[test]
    fn action_titles_drop_determiners() {
        assert_eq!(
            title_from_action("Call the dentist about my crown"),
            "Call Dentist About Crown"
        );
    }

    #[test]
    fn sentence_titles_lose_openers_and_trailing_clauses() {
        assert_eq!(
            title_from_sentence("So, we reviewed the Q2 budget and it is over by ten percent."),
            "We Reviewed the Q2 Budget"
        );
    }

    #[test]
    fn the_fallback_title_is_cut_at_a_word_boundary() {
        let title = fallback_title(
            "This is a rather long first sentence that certainly goes past sixty characters",
        );
        assert_eq!(
            title,
            "This Is a Rather Long First Sentence That Certainly Goes"
        );
    }
}
