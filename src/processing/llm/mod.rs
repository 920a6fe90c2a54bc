//! The `llm` backend: any OpenAI-compatible chat-completions endpoint, with the offline backend
//! inside as the fallback of every step (PROCESSING.md).
//!
//! The offline rules run first, on the blocking pool: their result is the fallback, and their
//! discard verdict says whether the model is asked to decide (only the cases no rule settles).
//! The model then answers the structure, the action items and the memories concurrently, each
//! within one deadline per conversation and a bounded number of requests in flight. A step
//! that fails in any way (unreachable, HTTP error, timeout, unusable answer) keeps the offline
//! part; the conversation records which parts came from where.

pub mod client;
mod insights;
mod parse;
pub mod prompts;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use self::client::{ChatClient, ChatRequest, ClientError};
use self::parse::Clock;
use self::prompts::Step;
use super::discard::DiscardVerdict;
use super::{
    ConversationInput, OfflineProcessor, ProcessedConversation, ProcessingContext, ProcessingError,
    Processor, Provenance, Source,
};
use crate::domain::conversations::Conversation;
use crate::domain::credentials::Secret;
use crate::domain::daily_summaries::DailySummary;
use crate::domain::memories::Memory;

/// How to reach the model and how much of it one server may use.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Up to and including `/v1`, e.g. `http://127.0.0.1:11434/v1` or
    /// `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
    /// Time the model may spend on one conversation, waiting for a request slot included.
    pub timeout: Duration,
    /// Requests to the model in flight at once, over all conversations.
    pub max_concurrency: usize,
    /// The HTTP client, from the shared outbound setup.
    pub http: reqwest::Client,
}

pub struct LlmProcessor {
    client: ChatClient,
    offline: OfflineProcessor,
    slots: Arc<Semaphore>,
    timeout: Duration,
}

/// Why one step did not use the model's answer.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("no answer within the conversation's deadline")]
    Deadline,
    #[error("unusable answer: {0}")]
    Unusable(String),
}

impl LlmProcessor {
    pub fn new(config: LlmConfig) -> anyhow::Result<LlmProcessor> {
        Ok(LlmProcessor {
            client: ChatClient::new(config.http, &config.base_url, &config.model, config.api_key)?,
            offline: OfflineProcessor,
            slots: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            timeout: config.timeout,
        })
    }

    /// Asks one step's question and reads the answer with `read`. Waiting for a request slot
    /// counts against the deadline: when the model is saturated a conversation waits for a
    /// slot only as long as its deadline allows, then falls back.
    async fn ask<T>(
        &self,
        step: Step,
        user_message: &str,
        deadline: Instant,
        read: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, StepError> {
        let schema = step.schema();
        let schema_name = step.schema_name();
        let request = ChatRequest {
            system: step.system_prompt(),
            user: user_message,
            schema_name: &schema_name,
            schema: &schema,
        };
        let answer = tokio::time::timeout_at(deadline, async {
            let _slot = self
                .slots
                .acquire()
                .await
                .expect("the semaphore is never closed");
            self.client.complete(&request).await
        })
        .await
        .map_err(|_| StepError::Deadline)??;
        read(&answer).map_err(StepError::Unusable)
    }
}

/// The source of a step's part, logging why the model's answer was not used.
fn source_of<T>(step: Step, outcome: &Result<T, StepError>) -> Source {
    match outcome {
        Ok(_) => Source::Llm,
        Err(error) => {
            tracing::warn!(step = ?step, error = %error, "model step failed; using the offline result for it");
            Source::Offline
        }
    }
}

#[async_trait::async_trait]
impl Processor for LlmProcessor {
    fn name(&self) -> &'static str {
        "llm"
    }

    async fn process(
        &self,
        input: &ConversationInput,
        ctx: &ProcessingContext,
    ) -> Result<ProcessedConversation, ProcessingError> {
        let analysis = self.offline.analyse_blocking(input, ctx).await;
        let mut out = analysis.processed;
        let deadline = Instant::now() + self.timeout;
        let reference = ctx.reference_time(input.started_at);
        let clock = Clock {
            reference,
            now: ctx.now,
        };
        let message = prompts::user_message(input, reference);

        out.provenance.discard = match analysis.verdict {
            DiscardVerdict::Discard | DiscardVerdict::Keep => Source::Rules,
            DiscardVerdict::Unsure => {
                let decision = self
                    .ask(Step::Discard, &message, deadline, parse::discard)
                    .await;
                if let Ok(true) = decision {
                    return Ok(ProcessedConversation {
                        provenance: Provenance::LLM,
                        ..ProcessedConversation::discarded()
                    });
                }
                source_of(Step::Discard, &decision)
            }
        };
        if out.discarded {
            return Ok(out);
        }

        let (structure, action_items, memories) = tokio::join!(
            self.ask(Step::Structure, &message, deadline, |a| parse::structure(
                a, &clock
            )),
            self.ask(Step::ActionItems, &message, deadline, |a| {
                parse::action_items(a, &clock)
            }),
            self.ask(Step::Memories, &message, deadline, parse::memories),
        );
        out.provenance.structure = source_of(Step::Structure, &structure);
        if let Ok(s) = structure {
            (out.title, out.overview, out.emoji, out.category, out.events) =
                (s.title, s.overview, s.emoji, s.category, s.events);
        }
        out.provenance.action_items = source_of(Step::ActionItems, &action_items);
        if let Ok(items) = action_items {
            out.action_items = items;
        }
        out.provenance.memories = source_of(Step::Memories, &memories);
        if let Ok(memories) = memories {
            out.memories = memories;
        }
        Ok(out)
    }

    async fn write_day(
        &self,
        summary: DailySummary,
        conversations: &[Conversation],
    ) -> DailySummary {
        let deadline = Instant::now() + self.timeout;
        let message = insights::day_message(&summary, conversations);
        let written = self
            .ask(Step::DaySummary, &message, deadline, |answer| {
                let mut written = summary.clone();
                insights::apply_day_answer(answer, &mut written, conversations).map(|()| written)
            })
            .await;
        source_of(Step::DaySummary, &written);
        written.unwrap_or(summary)
    }

    async fn write_profile(
        &self,
        display_name: &str,
        memories: &[Memory],
        extractive: String,
    ) -> String {
        let deadline = Instant::now() + self.timeout;
        let message = insights::profile_message(display_name, memories);
        let written = self
            .ask(Step::Profile, &message, deadline, insights::profile_answer)
            .await;
        source_of(Step::Profile, &written);
        written.unwrap_or(extractive)
    }
}
