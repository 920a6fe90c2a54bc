//! The offline backend: deterministic rules, no network, no model files.

use super::action_items::extract_action_items;
use super::category::{categorize, emoji_for};
use super::discard::{DiscardVerdict, discard_verdict};
use super::events::extract_events;
use super::memories::extract_memories;
use super::speakers::Conversation;
use super::structure::{
    fallback_title, is_substantive, summarize, title_from_action, title_from_sentence,
};
use super::workers;
use super::{
    ConversationInput, ProcessedConversation, ProcessingContext, ProcessingError, Processor,
    Provenance,
};

/// Conversations longer than this many substantive sentences are titled by their topic rather
/// than by their first action: one task rarely sums up a long meeting.
const ACTION_TITLE_MAX_SENTENCES: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineProcessor;

/// The offline result and how sure the discard rules were about it.
#[derive(Debug, Clone)]
pub(crate) struct OfflineAnalysis {
    pub processed: ProcessedConversation,
    pub verdict: DiscardVerdict,
}

impl OfflineProcessor {
    /// Processes a conversation. Returns candidates in priority order; run [`super::finalize`]
    /// on the result to apply de-duplication and caps.
    pub fn process_sync(
        &self,
        input: &ConversationInput,
        ctx: &ProcessingContext,
    ) -> ProcessedConversation {
        self.analyse(input, ctx).processed
    }

    /// [`Self::analyse`] on the processing threads (one per core), so that a long text does not
    /// hold an async worker; a panic in the rules is raised again in the caller's task.
    pub(crate) async fn analyse_blocking(
        &self,
        input: &ConversationInput,
        ctx: &ProcessingContext,
    ) -> OfflineAnalysis {
        let (processor, input, ctx) = (*self, input.clone(), *ctx);
        workers::run(move || processor.analyse(&input, &ctx)).await
    }

    /// The offline result with the discard verdict, which tells a model backend whether the
    /// keep-or-drop decision is still open.
    pub(crate) fn analyse(
        &self,
        input: &ConversationInput,
        ctx: &ProcessingContext,
    ) -> OfflineAnalysis {
        let conversation = Conversation::from_input(input);
        let verdict = discard_verdict(&conversation.full_text, conversation.is_text_form);
        if verdict == DiscardVerdict::Discard {
            return OfflineAnalysis {
                processed: ProcessedConversation::discarded(),
                verdict,
            };
        }
        let reference = ctx.reference_time(input.started_at);
        let action_items = extract_action_items(&conversation, reference, ctx.now);
        let events = extract_events(&conversation, reference, ctx.now);
        let memories = extract_memories(&conversation, &input.user_display_name);

        let sentences: Vec<&str> = conversation
            .utterances
            .iter()
            .map(|u| u.text.as_str())
            .collect();
        let summary = summarize(&sentences);
        let substantive_count = sentences.iter().filter(|s| is_substantive(s)).count();
        let short = substantive_count <= ACTION_TITLE_MAX_SENTENCES;
        let mut title = if let (true, Some(event)) = (short, events.first()) {
            event.title.clone()
        } else if let (true, Some(item)) = (short, action_items.first()) {
            title_from_action(&item.description)
        } else {
            summary
                .central_sentence
                .as_deref()
                .map(title_from_sentence)
                .unwrap_or_default()
        };
        if title.is_empty() {
            title = fallback_title(sentences.first().copied().unwrap_or(""));
        }

        let category = categorize(&conversation.full_text);
        let processed = ProcessedConversation {
            discarded: false,
            title,
            overview: summary.overview,
            emoji: emoji_for(&conversation.full_text, category).to_string(),
            category,
            action_items,
            events,
            memories,
            provenance: Provenance::default(),
        };
        OfflineAnalysis { processed, verdict }
    }
}

#[async_trait::async_trait]
impl Processor for OfflineProcessor {
    fn name(&self) -> &'static str {
        "offline"
    }

    async fn process(
        &self,
        input: &ConversationInput,
        ctx: &ProcessingContext,
    ) -> Result<ProcessedConversation, ProcessingError> {
        Ok(self.analyse_blocking(input, ctx).await.processed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processing::{
        ConversationCategory, InputKind, Segment, TextSource, finalize, normalize_for_dedup,
    };
    use chrono::{DateTime, TimeZone, Utc};
    use std::collections::HashSet;

    fn tuesday() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 10, 15, 0, 0).unwrap()
    }

    fn ctx() -> ProcessingContext {
        ProcessingContext { now: tuesday() }
    }

    #[test]
    fn a_dentist_note_is_titled_by_its_action_and_filed_under_health() {
        let input = ConversationInput::from_text(
            "I need to call the dentist tomorrow about my crown. It still hurts when I eat.",
            TextSource::OtherText,
            tuesday(),
            "Alex",
        );
        let out = OfflineProcessor.process_sync(&input, &ctx());
        assert!(!out.discarded);
        assert_eq!(out.title, "Call Dentist About Crown");
        assert_eq!(out.category, ConversationCategory::Health);
        assert_eq!(out.emoji, "🦷");
        assert_eq!(out.action_items.len(), 1);
    }

    #[test]
    fn a_backchannel_transcript_is_discarded_with_nothing_kept() {
        let input = ConversationInput {
            kind: InputKind::Segments,
            segments: vec![Segment {
                text: "Mm-hmm. Yeah. Okay, bye.".into(),
                speaker: "SPEAKER_00".into(),
                speaker_id: 0,
                is_user: false,
                start: 0.0,
                end: 2.0,
            }],
            started_at: tuesday(),
            language: "en".into(),
            user_display_name: "Alex".into(),
        };
        let out = OfflineProcessor.process_sync(&input, &ctx());
        assert!(out.discarded);
        assert!(out.title.is_empty());
    }

    #[test]
    fn a_late_upload_reads_relative_dates_from_now() {
        let long_ago = tuesday() - chrono::Duration::days(30);
        let input = ConversationInput::from_text(
            "Remind me to renew my passport tomorrow.",
            TextSource::OtherText,
            long_ago,
            "Alex",
        );
        let out = OfflineProcessor.process_sync(&input, &ctx());
        assert_eq!(
            out.action_items[0].due_at,
            Some(Utc.with_ymd_and_hms(2025, 6, 11, 23, 59, 0).unwrap())
        );
    }

    #[test]
    fn processing_is_deterministic_and_finalize_removes_known_items() {
        let input = ConversationInput::from_text(
            "Remind me to buy oat milk. I'm allergic to peanuts.",
            TextSource::Message,
            tuesday(),
            "Alex",
        );
        let first = OfflineProcessor.process_sync(&input, &ctx());
        assert_eq!(first, OfflineProcessor.process_sync(&input, &ctx()));
        let existing: HashSet<String> = [normalize_for_dedup("Buy oat milk")].into();
        let out = finalize(first, &ctx(), &existing, &HashSet::new());
        assert!(out.action_items.is_empty());
        assert_eq!(out.memories[0].content, "Alex is allergic to peanuts");
    }

    #[tokio::test]
    async fn the_async_interface_gives_the_same_result() {
        let input = ConversationInput::from_text("Buy milk.", TextSource::OtherText, tuesday(), "");
        let processor: &dyn Processor = &OfflineProcessor;
        assert_eq!(processor.name(), "offline");
        let out = processor.process(&input, &ctx()).await.unwrap();
        assert_eq!(out, OfflineProcessor.process_sync(&input, &ctx()));
    }
}
