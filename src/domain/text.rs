//! Text normalisation shared by the API and the processor.

/// Lowercase, punctuation dropped (apostrophes vanish, so "don't" and "dont" agree), whitespace
/// folded: two texts that normalise equally are the same memory or action item for
/// de-duplication. The processor owns the rule, because its post-processing compares candidates
/// against the stored `normalized_*` columns with it; one implementation keeps both sides equal.
pub fn normalize_for_dedup(text: &str) -> String {
    crate::processing::normalize_for_dedup(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_punctuation_and_spacing_do_not_matter() {
        assert_eq!(
            normalize_for_dedup("  Call the Dentist!  (ASAP) "),
            "call the dentist asap"
        );
        assert_eq!(
            normalize_for_dedup("call   the dentist asap"),
            normalize_for_dedup("Call the dentist, ASAP.")
        );
    }

    #[test]
    fn letters_of_any_script_are_kept() {
        assert_eq!(normalize_for_dedup("Café Über"), "café über");
    }

    #[test]
    fn apostrophes_do_not_split_words() {
        assert_eq!(normalize_for_dedup("Don't forget"), "dont forget");
    }
}
