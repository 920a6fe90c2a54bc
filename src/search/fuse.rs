//! Reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009): each ranked list gives an
//! object `1 / (K + rank)`, the sums rank the fused list. Ranks, not scores, are fused, so
//! BM25 and cosine similarity need no common scale.

use std::collections::HashMap;

/// The constant of the original paper, used by most hybrid search engines.
pub const K: f64 = 60.0;

/// The fused order of the ids of `lists` (each best first), with their fused scores, best first;
/// ties keep the order of first appearance (the earlier list's, then the rank within it).
pub fn reciprocal_rank_fusion(lists: &[Vec<String>]) -> Vec<(String, f64)> {
    let mut scores: HashMap<&str, (f64, usize)> = HashMap::new();
    let mut seen = 0_usize;
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            let entry = scores.entry(id.as_str()).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            entry.0 += 1.0 / (K + rank as f64 + 1.0);
        }
    }
    let mut fused: Vec<(String, f64, usize)> = scores
        .into_iter()
        .map(|(id, (score, first))| (id.to_string(), score, first))
        .collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    fused
        .into_iter()
        .map(|(id, score, _)| (id, score))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_object_in_both_lists_beats_one_in_a_single_list() {
        let fused = reciprocal_rank_fusion(&[ids(&["a", "b", "c"]), ids(&["c", "d"])]);
        let order: Vec<&str> = fused.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(order, ["c", "a", "b", "d"]);
        let c = fused[0].1;
        assert!((c - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-12);
    }

    #[test]
    fn ties_keep_the_first_lists_order() {
        let fused = reciprocal_rank_fusion(&[ids(&["a"]), ids(&["b"])]);
        assert_eq!(fused[0].0, "a");
        assert_eq!(fused[1].0, "b");
        assert!(reciprocal_rank_fusion(&[]).is_empty());
    }
}
