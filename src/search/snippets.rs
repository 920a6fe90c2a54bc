//! Transcript snippets for a search hit (upstream's MCP `match_snippets`): segments that hold
//! the query as a phrase, or all of its words, case-folded, each shown with one neighbouring
//! segment on either side.

/// Snippets per conversation, at most.
pub const MAX_SNIPPETS: usize = 3;
/// Characters of a snippet's text, at most.
pub const MAX_SNIPPET_CHARS: usize = 240;

/// One transcript segment, as far as snippets need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub id: String,
    pub text: String,
    pub is_user: bool,
    pub speaker_id: i64,
    pub start: f64,
    pub end: f64,
}

impl Line {
    fn labelled(&self) -> String {
        if self.is_user {
            format!("User: {}", self.text.trim())
        } else {
            format!("Speaker {}: {}", self.speaker_id, self.text.trim())
        }
    }
}

/// A matching segment with its neighbours' lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Snippet {
    pub text: String,
    pub segment_id: String,
    pub start: f64,
    pub end: f64,
    pub speaker_id: i64,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Up to three snippets of `lines` for `query`, in transcript order.
pub fn find(lines: &[Line], query: &str) -> Vec<Snippet> {
    let phrase = words(query).join(" ");
    let terms = words(query);
    if terms.is_empty() {
        return Vec::new();
    }
    let mut snippets = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let folded = words(&line.text);
        let joined = format!(" {} ", folded.join(" "));
        let hit = joined.contains(&format!(" {phrase} "))
            || terms.iter().all(|term| folded.contains(term));
        if !hit {
            continue;
        }
        let first = index.saturating_sub(1);
        let last = (index + 1).min(lines.len() - 1);
        let text: String = lines[first..=last]
            .iter()
            .map(Line::labelled)
            .collect::<Vec<_>>()
            .join("\n");
        let text = if text.chars().count() > MAX_SNIPPET_CHARS {
            text.chars().take(MAX_SNIPPET_CHARS - 3).collect::<String>() + "..."
        } else {
            text
        };
        snippets.push(Snippet {
            text,
            segment_id: line.id.clone(),
            start: line.start,
            end: line.end,
            speaker_id: line.speaker_id,
        });
        if snippets.len() == MAX_SNIPPETS {
            break;
        }
    }
    snippets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, text: &str, is_user: bool) -> Line {
        Line {
            id: id.to_string(),
            text: text.to_string(),
            is_user,
            speaker_id: i64::from(!is_user),
            start: 1.0,
            end: 2.0,
        }
    }

    #[test]
    fn a_matching_segment_comes_with_its_neighbours() {
        let lines = vec![
            line("a", "Hello there", true),
            line("b", "The Budget is due Friday", false),
            line("c", "Thanks", true),
            line("d", "Unrelated", false),
        ];
        let found = find(&lines, "budget friday");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].text,
            "User: Hello there\nSpeaker 1: The Budget is due Friday\nUser: Thanks"
        );
        assert_eq!(found[0].segment_id, "b");
        assert!(find(&lines, "budget monday").is_empty());
    }

    #[test]
    fn snippets_are_bounded_in_number_and_length() {
        let lines: Vec<Line> = (0..10)
            .map(|i| line(&i.to_string(), &format!("budget {}", "x".repeat(200)), true))
            .collect();
        let found = find(&lines, "budget");
        assert_eq!(found.len(), MAX_SNIPPETS);
        assert!(
            found
                .iter()
                .all(|s| s.text.chars().count() <= MAX_SNIPPET_CHARS)
        );
    }
}
