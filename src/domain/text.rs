//! Text normalisation shared by the API and the processor.

/// Lowercase, punctuation dropped (apostrophes vanish, so "don't" and "dont" agree),
/// whitespace folded: two texts that normalise equally are the same memory or action item for
/// de-duplication.
pub fn normalize_for_dedup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for ch in text.chars() {
        if ch == '\'' || ch == '’' {
            continue;
        }
        if ch.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(ch.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
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
}
