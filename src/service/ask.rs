//! `ask` (API.md §13.B): answers a question from the user's own conversations, with `[n]`
//! citations that point at the returned sources.
//!
//! Retrieval is the conversation search (hybrid when an embeddings endpoint answers) with the
//! question as the query; a relative date in the
//! question ("yesterday", "last week") becomes a window on `created_at` in the asker's time zone,
//! and when its words match nothing in that window the window's newest conversations are used.
//! With a model configured, the model writes the answer from the sources and the user's
//! matching memories; citations outside the sources are removed, and any failure of the model
//! falls back to the extractive answer. Nothing is stored.

use std::time::Duration;

use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::domain::conversations::Conversation;
use crate::domain::paging::Page;
use crate::domain::time::Timestamp;
use crate::processing::llm::client::{ChatClient, ChatRequest};
use crate::search::LexicalQuery;
use crate::search::answer::{self, SourceText};
use crate::search::when;
use crate::service::search::{Mode, Retrieval};
use crate::store::conversations::{ConversationBody, ConversationFilter};
use crate::store::{ConversationSearchFilter, Store, StoreResult};

/// The user's matching memories given to the model as background.
const CONTEXT_MEMORIES: i64 = 5;

/// A checked question.
#[derive(Debug, Clone)]
pub struct Question {
    pub text: String,
    /// How many conversations to ground the answer on, 1..10.
    pub limit: i64,
    pub zone: Tz,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// Built from the sources' own words.
    Extractive,
    /// Written by the configured model.
    Llm,
}

impl AnswerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerMode::Extractive => "extractive",
            AnswerMode::Llm => "llm",
        }
    }
}

/// A conversation an answer is grounded on; `[n]` in the answer names the n-th (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: String,
    pub title: String,
    pub created_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub answer: String,
    pub sources: Vec<Source>,
    pub mode: AnswerMode,
    /// How the sources were ranked.
    pub search_mode: Mode,
}

/// The model that writes answers, when one is configured (`OMI_LLM_BASE_URL`, `OMI_LLM_MODEL`).
pub struct Writer {
    client: ChatClient,
    timeout: Duration,
}

impl Writer {
    /// `None` without a model, or with settings the server refuses anyway at start. `http` is
    /// the shared outbound client, so an `https://` model is verified like every connection.
    pub fn from_settings(settings: &Settings, http: reqwest::Client) -> Option<Writer> {
        let base_url = settings.llm_base_url.as_deref()?.trim();
        let model = settings.llm_model.as_deref()?.trim();
        let scheme_ok = base_url.starts_with("http://") || base_url.starts_with("https://");
        if model.is_empty() || !scheme_ok {
            return None;
        }
        let client = ChatClient::new(http, base_url, model, settings.llm_api_key.clone()).ok()?;
        Some(Writer {
            client,
            timeout: Duration::from_millis(settings.llm_timeout_ms),
        })
    }

    /// The model's answer, or why there is none.
    async fn write(&self, system: &str, user: &str) -> Result<String, String> {
        let schema = json!({
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
            "additionalProperties": false
        });
        let request = ChatRequest {
            system,
            user,
            schema_name: "answer",
            schema: &schema,
        };
        let text = tokio::time::timeout(self.timeout, self.client.complete(&request))
            .await
            .map_err(|_| "the model did not answer in time".to_string())?
            .map_err(|error| error.to_string())?;
        answer_text(&text).ok_or_else(|| "the model's answer holds no text".to_string())
    }
}

/// The `answer` of a JSON reply, or the reply itself when it is plain text.
fn answer_text(reply: &str) -> Option<String> {
    let trimmed = reply.trim();
    let object = trimmed
        .find('{')
        .zip(trimmed.rfind('}'))
        .and_then(|(start, end)| serde_json::from_str::<Value>(&trimmed[start..=end]).ok());
    let text = match object {
        Some(value) => value.get("answer")?.as_str()?.trim().to_string(),
        None => trimmed.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// The transcript text of a stored conversation, one segment per line.
async fn transcript(store: &dyn Store, user_id: &str, id: &str) -> StoreResult<String> {
    Ok(match store.conversation_input(user_id, id).await? {
        Some(input) => match input.body {
            ConversationBody::Text { text, .. } => text,
            ConversationBody::Segments(segments) => segments
                .iter()
                .map(|segment| segment.text.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        },
        None => String::new(),
    })
}

/// The conversations to ground an answer on, most relevant first, and how they were ranked.
async fn retrieve(
    store: &dyn Store,
    retrieval: &Retrieval,
    user_id: &str,
    text: &str,
    window: Option<&when::DateWindow>,
    limit: i64,
) -> StoreResult<(Vec<Conversation>, Mode)> {
    let query = LexicalQuery::parse(text);
    let filter = ConversationSearchFilter {
        created_from: window.map(|w| w.from),
        created_before: window.map(|w| w.before),
    };
    let page = Page { limit, offset: 0 };
    let found = retrieval
        .conversations(store, user_id, text, &query, filter, page, false)
        .await?;
    let mode = found.mode;
    let found: Vec<Conversation> = found.hits.into_iter().map(|hit| hit.item).collect();
    if !found.is_empty() || window.is_none() {
        return Ok((found, mode));
    }
    // "What did I do yesterday?": the window is the question.
    let list = ConversationFilter {
        created_from: filter.created_from,
        created_before: filter.created_before,
        ..Default::default()
    };
    Ok((
        store
            .list_conversations(user_id, &list, page, false)
            .await?,
        mode,
    ))
}

/// The conversations `ask` grounds an answer on for `question` (its relative dates resolved at
/// `now` in `zone`), most relevant first, and how they were ranked: the retrieval half of
/// `ask`, also used to measure it.
pub async fn retrieve_for_question(
    store: &dyn Store,
    retrieval: &Retrieval,
    user_id: &str,
    question: &str,
    now: Timestamp,
    zone: Tz,
    limit: i64,
) -> StoreResult<(Vec<Conversation>, Mode)> {
    let window = when::resolve(question, now, zone);
    let text = when::without_window(question, window.as_ref());
    retrieve(store, retrieval, user_id, &text, window.as_ref(), limit).await
}

/// Answers `question` for `user_id` as of `now`, with the model when `writer` is given.
pub async fn ask(
    store: &dyn Store,
    retrieval: &Retrieval,
    writer: Option<&Writer>,
    user_id: &str,
    question: &Question,
    now: Timestamp,
) -> StoreResult<Answer> {
    let window = when::resolve(&question.text, now, question.zone);
    let text = when::without_window(&question.text, window.as_ref());
    let query = LexicalQuery::parse(&text);
    let (conversations, search_mode) = retrieve(
        store,
        retrieval,
        user_id,
        &text,
        window.as_ref(),
        question.limit,
    )
    .await?;
    if conversations.is_empty() {
        return Ok(Answer {
            answer: answer::NOTHING_FOUND.to_string(),
            sources: Vec::new(),
            mode: AnswerMode::Extractive,
            search_mode,
        });
    }
    let mut texts = Vec::with_capacity(conversations.len());
    for conversation in &conversations {
        texts.push(SourceText {
            title: conversation.structured.title.clone(),
            overview: conversation.structured.overview.clone(),
            transcript: transcript(store, user_id, &conversation.id).await?,
        });
    }
    let sources: Vec<Source> = conversations
        .iter()
        .map(|conversation| Source {
            id: conversation.id.clone(),
            title: conversation.structured.title.clone(),
            created_at: Some(conversation.created_at),
        })
        .collect();
    if let Some(writer) = writer {
        let memories: Vec<String> = retrieval
            .memories(
                store,
                user_id,
                &text,
                &query,
                &[],
                Page {
                    limit: CONTEXT_MEMORIES,
                    offset: 0,
                },
            )
            .await?
            .hits
            .into_iter()
            .map(|hit| hit.item.content)
            .collect();
        let local_now = now
            .with_timezone(&question.zone)
            .format("%A %Y-%m-%d %H:%M (%Z)")
            .to_string();
        let dated: Vec<(String, SourceText)> = conversations
            .iter()
            .zip(texts.iter().cloned())
            .map(|(conversation, text)| {
                let local = conversation.created_at.with_timezone(&question.zone);
                (local.format("%Y-%m-%d %H:%M").to_string(), text)
            })
            .collect();
        let user = answer::user_message(&question.text, &local_now, &dated, &memories);
        match writer.write(answer::SYSTEM_PROMPT, &user).await {
            Ok(text) => {
                if let Some(answer) = answer::keep_valid_citations(&text, sources.len()) {
                    return Ok(Answer {
                        answer,
                        sources,
                        mode: AnswerMode::Llm,
                        search_mode,
                    });
                }
                tracing::warn!(
                    "the model's answer held only invalid citations; answering extractively"
                );
            }
            Err(reason) => {
                tracing::warn!(reason = %reason, "the model could not answer; answering extractively");
            }
        }
    }
    Ok(Answer {
        answer: answer::extractive(&texts, &query.words()),
        sources,
        mode: AnswerMode::Extractive,
        search_mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_read_from_json_or_plain_text() {
        assert_eq!(
            answer_text(r#"{"answer": " Yes [1] "}"#).as_deref(),
            Some("Yes [1]")
        );
        assert_eq!(
            answer_text("```json\n{\"answer\":\"No\"}\n```").as_deref(),
            Some("No")
        );
        assert_eq!(
            answer_text("Plain words [2]").as_deref(),
            Some("Plain words [2]")
        );
        assert_eq!(answer_text(r#"{"answer": ""}"#), None);
        assert_eq!(answer_text(r#"{"other": "x"}"#), None);
    }
}
