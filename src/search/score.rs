//! Scores on the wire: floats in `(0, 1]`, higher is better, rounded to 4 decimals, comparable
//! within one response only (API.md §13.A.0).

/// An object found by a search, with its normalised score.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<T> {
    pub item: T,
    pub score: f64,
}

/// The smallest score a match gets, so that a weak match never rounds to 0.
pub const MIN_SCORE: f64 = 0.0001;

/// Rounds to 4 decimals.
pub fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// Scales raw relevances (higher is better, any positive range: negated BM25, `ts_rank`) by the
/// best of all matches, `best`, so the best match scores 1 and every match scores in `(0, 1]`.
/// `best` is the best over every match of the query, not just the page, so a later page keeps
/// the scale of the first.
pub fn normalize(raw: f64, best: f64) -> f64 {
    if !raw.is_finite() || !best.is_finite() || best <= 0.0 || raw <= 0.0 {
        return MIN_SCORE;
    }
    round4((raw / best).min(1.0)).max(MIN_SCORE)
}

/// Normalises a page of `(item, raw)` pairs against `best`.
pub fn normalize_scores<T>(hits: Vec<(T, f64)>, best: f64) -> Vec<Scored<T>> {
    hits.into_iter()
        .map(|(item, raw)| Scored {
            item,
            score: normalize(raw, best),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_match_scores_one_and_the_rest_scale_below_it() {
        let scored = normalize_scores(vec![("a", 8.0), ("b", 2.0), ("c", 1e-9)], 8.0);
        let scores: Vec<f64> = scored.iter().map(|s| s.score).collect();
        assert_eq!(scores, [1.0, 0.25, MIN_SCORE]);
    }

    #[test]
    fn odd_raw_values_never_leave_the_range() {
        for (raw, best) in [(f64::NAN, 1.0), (1.0, 0.0), (-3.0, 2.0), (5.0, 2.0)] {
            let score = normalize(raw, best);
            assert!(score > 0.0 && score <= 1.0, "{raw} / {best} -> {score}");
        }
        assert_eq!(round4(0.123_456), 0.1235);
    }
}
