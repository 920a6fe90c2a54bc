//! Who is the user (PROCESSING.md §3), and the conversation broken into sentences that each
//! know who said them.

use std::sync::LazyLock;

use regex::Regex;

use super::text::{clean_text, split_sentences};
use super::{ConversationInput, InputKind, Segment};

/// Who said a sentence, as far as the rules are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerRole {
    /// The user: the author of a text conversation, or the speaker of `is_user` segments.
    User,
    /// Someone else, while the user is known to be in the conversation.
    Other,
    /// Nobody could be identified as the user, so nothing said can be attributed to them.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Utterance {
    /// The cleaned sentence, original case.
    pub text: String,
    pub lower: String,
    pub role: SpeakerRole,
    /// The speaker's name when the label is a name rather than `SPEAKER_NN`.
    pub speaker_name: Option<String>,
}

/// A conversation reduced to what the extraction rules need.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub utterances: Vec<Utterance>,
    /// All the cleaned text, for whole-conversation rules (discard, category, overview).
    pub full_text: String,
    pub is_text_form: bool,
    /// True when every sentence comes from one speaker, so imperatives are notes to self.
    pub single_speaker: bool,
    /// The user's display name, to tell a request addressed to them from one to someone else.
    pub user_name: String,
}

static GENERIC_SPEAKER_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:speaker[ _-]?\d+|unknown|user|me|you)?$").expect("valid regex")
});

/// True for labels such as `SPEAKER_01` or `user` that name nobody.
pub fn is_generic_label(label: &str) -> bool {
    GENERIC_SPEAKER_LABEL.is_match(label.trim())
}

/// Who the user is in one conversation (PROCESSING.md §3, "Who is the user").
#[derive(Debug, Clone, Copy)]
pub struct UserRoles {
    is_text_form: bool,
    anyone_marked: bool,
    single_speaker: bool,
}

impl UserRoles {
    pub fn of(input: &ConversationInput) -> UserRoles {
        let segments = &input.segments;
        let first_speaker = segments.first().map(|s| (s.speaker.as_str(), s.speaker_id));
        UserRoles {
            is_text_form: matches!(input.kind, InputKind::Text { .. }),
            anyone_marked: segments.iter().any(|s| s.is_user),
            single_speaker: segments
                .iter()
                .all(|s| Some((s.speaker.as_str(), s.speaker_id)) == first_speaker),
        }
    }

    pub fn role(&self, segment: &Segment) -> SpeakerRole {
        if self.is_text_form || segment.is_user || (!self.anyone_marked && self.single_speaker) {
            SpeakerRole::User
        } else if self.anyone_marked {
            SpeakerRole::Other
        } else {
            SpeakerRole::Unknown
        }
    }
}

impl Conversation {
    pub fn from_input(input: &ConversationInput) -> Conversation {
        let roles = UserRoles::of(input);
        let (is_text_form, single_speaker) = (roles.is_text_form, roles.single_speaker);
        let mut utterances = Vec::new();
        let mut full_text = String::new();
        for segment in &input.segments {
            let role = roles.role(segment);
            let label = segment.speaker.trim();
            let speaker_name = (!is_generic_label(label)).then(|| label.to_string());
            let cleaned = clean_text(&segment.text);
            if cleaned.is_empty() {
                continue;
            }
            // Keep line breaks of text conversations: notes and lists end sentences there.
            let source = if is_text_form {
                segment.text.as_str()
            } else {
                cleaned.as_str()
            };
            for sentence in split_sentences(source) {
                let text = clean_text(&sentence);
                if text.is_empty() {
                    continue;
                }
                utterances.push(Utterance {
                    lower: text.to_lowercase(),
                    text,
                    role,
                    speaker_name: speaker_name.clone(),
                });
            }
            if !full_text.is_empty() {
                full_text.push(' ');
            }
            full_text.push_str(&cleaned);
        }
        Conversation {
            utterances,
            full_text,
            is_text_form,
            single_speaker: is_text_form || single_speaker,
            user_name: input.user_display_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn segment(text: &str, speaker: &str, is_user: bool) -> Segment {
        Segment {
            text: text.to_string(),
            speaker: speaker.to_string(),
            speaker_id: 0,
            is_user,
            start: 0.0,
            end: 1.0,
        }
    }

    fn input(segments: Vec<Segment>) -> ConversationInput {
        ConversationInput {
            kind: InputKind::Segments,
            segments,
            started_at: Utc::now(),
            language: "en".into(),
            user_display_name: "Alex".into(),
        }
    }

    #[test]
    fn marked_segments_are_the_user_and_the_rest_are_others() {
        let c = Conversation::from_input(&input(vec![
            segment("Hi.", "SPEAKER_00", true),
            segment("Hello.", "Sam", false),
        ]));
        assert_eq!(c.utterances[0].role, SpeakerRole::User);
        assert_eq!(c.utterances[1].role, SpeakerRole::Other);
        assert_eq!(c.utterances[1].speaker_name.as_deref(), Some("Sam"));
        assert_eq!(c.utterances[0].speaker_name, None);
    }

    #[test]
    fn a_lone_unmarked_speaker_is_the_user() {
        let c = Conversation::from_input(&input(vec![
            segment("One.", "SPEAKER_01", false),
            segment("Two.", "SPEAKER_01", false),
        ]));
        assert!(c.utterances.iter().all(|u| u.role == SpeakerRole::User));
    }

    #[test]
    fn several_unmarked_speakers_leave_nobody_as_the_user() {
        let c = Conversation::from_input(&input(vec![
            segment("One.", "SPEAKER_00", false),
            segment("Two.", "SPEAKER_01", false),
        ]));
        assert!(c.utterances.iter().all(|u| u.role == SpeakerRole::Unknown));
    }
}
