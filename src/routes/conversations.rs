//! Conversations (API.md §5): create from text or from transcript segments (processed before
//! the answer), list, read, update title or discard state, delete.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer, Serialize, de};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, scopes};
use crate::domain::conversations::{
    Conversation, ConversationFieldError, ConversationSource, DurationRule, Geolocation,
    MAX_SEGMENTS, STATUS_COMPLETED, SegmentInput, largest_end_micros, parse_client_session_id,
    parse_language, parse_text, parse_title, resolve_times, validate_segments,
};
use crate::domain::feed::FeedPosition;
use crate::domain::folders::SystemFolderSpec;
use crate::domain::ids::is_plausible_id;
use crate::domain::patch::Patch;
use crate::domain::time::{self, Timestamp, parse_datetime};
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::{ApiJson, ApiQuery};
use crate::processing::{ConversationCategory, system_folder_for};
use crate::routes::feed;
use crate::routes::params::{self, QueryInt};
use crate::routes::params::{QueryBool, parse_bool};
use crate::routes::{
    ApiRouter, Guards, SuccessResponse, created_between, search_mode, search_query,
};
use crate::service::ask as ask_service;
use crate::service::conversations::{self as pipeline, ConversationError, Created, Draft};
use crate::state::AppState;
use crate::store::ConversationSearchFilter;
use crate::store::conversations::{
    ConversationBody, ConversationFilter, ConversationUpdate, FolderChange,
};

const RESOURCE: &str = "Conversation";
const DEFAULT_LIMIT: i64 = 25;
const MAX_LIMIT: i64 = 100;
/// Pages that carry transcripts are smaller.
const MAX_LIMIT_WITH_TRANSCRIPT: i64 = 25;
const SEARCH_DEFAULT_LIMIT: i64 = 10;
const SEARCH_MAX_LIMIT: i64 = 100;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new()
        .routes(guards.developer(routes!(list_conversations, create_conversation)))
        .routes(guards.developer(routes!(create_conversation_from_segments)))
        .routes(guards.developer(routes!(search_conversations)))
        .routes(guards.developer(routes!(ask)))
        .routes(guards.developer(routes!(
            get_conversation,
            update_conversation,
            delete_conversation
        )))
}

/// Where a plain text came from.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TextSourceParam {
    AudioTranscript,
    Message,
    OtherText,
}

impl TextSourceParam {
    fn as_str(self) -> &'static str {
        match self {
            TextSourceParam::AudioTranscript => "audio_transcript",
            TextSourceParam::Message => "message",
            TextSourceParam::OtherText => "other_text",
        }
    }
}

/// `started_at` / `finished_at`: an RFC 3339 date-time (any offset; none means UTC). A bare date
/// is refused, since it does not say when the conversation happened.
fn optional_datetime<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Timestamp>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| {
            parse_datetime(&text).ok_or_else(|| {
                de::Error::custom("must be an RFC 3339 date-time such as 2025-12-10T17:00:00Z")
            })
        })
        .transpose()
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateConversationRequest {
    /// 1..100,000 characters after trimming.
    pub text: String,
    /// `audio_transcript`, `message` or `other_text` (default).
    #[serde(default)]
    pub text_source: Option<TextSourceParam>,
    /// Free text saying more about the source (an app name, a channel).
    #[serde(default)]
    pub text_source_spec: Option<String>,
    /// Default: now, or `finished_at` minus 300 s.
    #[serde(default, deserialize_with = "optional_datetime")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    /// Default: `started_at` plus 300 s; may equal `started_at`.
    #[serde(default, deserialize_with = "optional_datetime")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// 1..16 characters (default `en`).
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::wire::optional_object")]
    pub geolocation: Option<Geolocation>,
    /// Makes the creation idempotent: a repeat with the same id returns the first result.
    #[serde(default)]
    pub client_session_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SegmentRequest {
    pub text: String,
    /// A diarisation label such as `SPEAKER_01` (default `SPEAKER_00`) or a person's name.
    #[serde(default)]
    pub speaker: Option<String>,
    /// Used when the label carries no number (default 0).
    #[serde(default, deserialize_with = "crate::domain::wire::optional_integer")]
    pub speaker_id: Option<i64>,
    /// Whether the user is speaking (default false).
    #[serde(default)]
    pub is_user: Option<bool>,
    #[serde(default)]
    pub person_id: Option<String>,
    /// Seconds from the start of the conversation, >= 0.
    pub start: f64,
    /// Seconds from the start of the conversation, > `start`.
    pub end: f64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateFromSegmentsRequest {
    /// 1..500 segments.
    #[serde(deserialize_with = "crate::domain::wire::objects")]
    pub transcript_segments: Vec<SegmentRequest>,
    /// The recording device; unknown values are stored as `unknown` (default `phone`).
    #[serde(default)]
    pub source: Option<String>,
    /// Default: now, or `finished_at` minus the largest segment end.
    #[serde(default, deserialize_with = "optional_datetime")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    /// Default: `started_at` plus the largest segment end; must be after `started_at`.
    #[serde(default, deserialize_with = "optional_datetime")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// 1..16 characters (default `en`).
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::wire::optional_object")]
    pub geolocation: Option<Geolocation>,
    /// 1..200 characters. Makes the creation idempotent: a repeat with the same id returns the
    /// first result; 409 while the first is still being processed.
    #[serde(default)]
    pub client_session_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedConversation {
    pub id: String,
    /// Always `completed`: processing finishes before the answer.
    pub status: String,
    pub discarded: bool,
}

impl From<Created> for CreatedConversation {
    fn from(created: Created) -> Self {
        CreatedConversation {
            id: created.id,
            status: STATUS_COMPLETED.to_string(),
            discarded: created.discarded,
        }
    }
}

impl CreateConversationRequest {
    /// Text, then times, then the optional fields.
    fn into_draft(self) -> ApiResult<Draft> {
        let text = parse_text(&self.text)?;
        let times = resolve_times(
            self.started_at,
            self.finished_at,
            DurationRule::Text,
            time::now(),
        )?;
        Ok(Draft {
            started_at: times.started_at,
            finished_at: times.finished_at,
            language: parse_language(self.language.as_deref())?,
            source: ConversationSource::ExternalIntegration.as_str().to_string(),
            geolocation: self.geolocation.map(Geolocation::validated).transpose()?,
            body: ConversationBody::Text {
                text,
                text_source: self
                    .text_source
                    .unwrap_or(TextSourceParam::OtherText)
                    .as_str()
                    .to_string(),
                text_source_spec: self.text_source_spec,
            },
            client_session_id: parse_client_session_id(self.client_session_id.as_deref())?,
        })
    }
}

impl CreateFromSegmentsRequest {
    /// Segments, then times, then the optional fields.
    fn into_draft(self) -> ApiResult<Draft> {
        let segments = validate_segments(
            self.transcript_segments
                .into_iter()
                .map(|s| SegmentInput {
                    text: s.text,
                    speaker: s.speaker,
                    speaker_id: s.speaker_id,
                    is_user: s.is_user.unwrap_or(false),
                    person_id: s.person_id,
                    start: s.start,
                    end: s.end,
                })
                .collect(),
        )?;
        let times = resolve_times(
            self.started_at,
            self.finished_at,
            DurationRule::Segments {
                largest_end_micros: largest_end_micros(&segments),
            },
            time::now(),
        )?;
        let source = self
            .source
            .as_deref()
            .map_or(ConversationSource::Phone, |s| {
                ConversationSource::parse_or_unknown(s.trim())
            });
        Ok(Draft {
            started_at: times.started_at,
            finished_at: times.finished_at,
            language: parse_language(self.language.as_deref())?,
            source: source.as_str().to_string(),
            geolocation: self.geolocation.map(Geolocation::validated).transpose()?,
            body: ConversationBody::Segments(segments),
            client_session_id: parse_client_session_id(self.client_session_id.as_deref())?,
        })
    }
}

/// Create a conversation from text. It is processed before the answer: summary, discard
/// decision, action items, memories and folder.
#[utoipa::path(post, path = "/v1/dev/user/conversations", tag = "Conversations",
    operation_id = "createConversation",
    security(("bearerAuth" = ["conversations:write"])),
    request_body = CreateConversationRequest,
    responses(
        (status = 200, description = "The stored conversation's id and discard decision", body = CreatedConversation),
        (status = 409, description = "`Conversation creation already in progress` (same client_session_id)", body = ErrorResponse),
        (status = 422, description = "`text cannot be empty`, `text cannot exceed 100,000 characters`, `finished_at must be after started_at`, or an invalid field", body = ErrorResponse),
    ))]
pub async fn create_conversation(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsWrite>,
    ApiJson(body): ApiJson<CreateConversationRequest>,
) -> ApiResult<Json<CreatedConversation>> {
    let draft = body.into_draft()?;
    let created = pipeline::create(state.store, state.processor, &auth.user_id, draft).await?;
    Ok(Json(created.into()))
}

/// Create a conversation from transcript segments. It is processed before the answer.
#[utoipa::path(post, path = "/v1/dev/user/conversations/from-segments", tag = "Conversations",
    operation_id = "createConversationFromSegments",
    security(("bearerAuth" = ["conversations:write"])),
    request_body = CreateFromSegmentsRequest,
    responses(
        (status = 200, description = "The stored conversation's id and discard decision", body = CreatedConversation),
        (status = 409, description = "`Conversation creation already in progress` (same client_session_id)", body = ErrorResponse),
        (status = 422, description = "`transcript_segments cannot be empty`, `Maximum 500 transcript segments allowed`, `Segment {i}: ...` for the first failing segment, `finished_at must be after started_at`, or an invalid field", body = ErrorResponse),
    ))]
pub async fn create_conversation_from_segments(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsWrite>,
    ApiJson(body): ApiJson<CreateFromSegmentsRequest>,
) -> ApiResult<Json<CreatedConversation>> {
    let draft = body.into_draft()?;
    let created = pipeline::create(state.store, state.processor, &auth.user_id, draft).await?;
    Ok(Json(created.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListConversationsQuery {
    /// Conversations created at or after this time. A bare date (`YYYY-MM-DD`) is the start of
    /// that UTC day.
    pub start_date: Option<String>,
    /// Conversations created at or before this time. A bare date includes that whole UTC day.
    pub end_date: Option<String>,
    /// Comma-separated `structured.category` values; an unknown one is a 400.
    pub categories: Option<String>,
    /// Only conversations filed in this folder; an empty value is a 422.
    pub folder_id: Option<String>,
    /// `true`: only starred conversations; `false`: only the others; absent: both.
    #[param(value_type = Option<bool>)]
    pub starred: Option<String>,
    /// Page size, 1..100 (default 25; at most 25 with `include_transcript=true`); values out of
    /// range are clamped.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
    /// Conversations to skip (default 0); negative values count as 0.
    #[param(value_type = Option<i64>)]
    pub offset: Option<QueryInt>,
    /// Include each conversation's transcript segments (default false).
    #[param(value_type = Option<bool>)]
    pub include_transcript: Option<QueryBool>,
    /// Change feed: only conversations changed at or after this RFC 3339 date-time (inclusive), in
    /// `(updated_at, id)` order, discarded ones included (`discarded: true`); `offset` is ignored. The next page is announced in `X-Next-Cursor` and `Link`
    /// (both absent on the last page).
    pub updated_since: Option<String>,
    /// Change feed: the `X-Next-Cursor` of the previous page (opaque; an unreadable one is a 400).
    pub cursor: Option<String>,
}

impl ListConversationsQuery {
    fn filter(&self) -> ApiResult<ConversationFilter> {
        let (created_from, created_before) =
            created_between(self.start_date.as_deref(), self.end_date.as_deref())?;
        if self.folder_id.as_deref().is_some_and(|id| id.is_empty()) {
            return Err(ApiError::validation("folder_id cannot be empty"));
        }
        let starred = self
            .starred
            .as_deref()
            .map(|raw| {
                parse_bool(raw).ok_or_else(|| ApiError::validation("starred must be true or false"))
            })
            .transpose()?;
        Ok(ConversationFilter {
            created_from,
            created_before,
            categories: parse_categories(self.categories.as_deref())?,
            folder_id: self.folder_id.clone(),
            starred,
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchConversationsQuery {
    /// The words to find in titles, summaries and transcripts, 1..500 characters after
    /// trimming (required).
    #[param(required = true)]
    pub query: Option<String>,
    /// Conversations created at or after this time; no offset means UTC, a bare date
    /// (`YYYY-MM-DD`) is the start of that UTC day.
    pub start_date: Option<String>,
    /// Conversations created at or before this time; a bare date includes that whole UTC day.
    /// Before `start_date` is a 422.
    pub end_date: Option<String>,
    /// Results: default 10, values outside 1..100 are clamped into it.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
    /// Include each conversation's transcript segments (default false: `transcript_segments`
    /// is `null`). An omi-server addition.
    #[param(value_type = Option<bool>)]
    pub include_transcript: Option<QueryBool>,
}

/// A conversation that matches a search (without its transcript), with its relevance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationSearchHit {
    pub conversation: Conversation,
    /// In `(0, 1]`, higher is better, rounded to 4 decimals; comparable within one response.
    pub score: f64,
}

/// The `start_date`/`end_date` of a conversation search: a start after the end is a 422
/// (upstream's rule, unlike the lists' empty answer).
pub fn search_window(
    start_date: Option<&str>,
    end_date: Option<&str>,
) -> ApiResult<ConversationSearchFilter> {
    let (created_from, created_before) = created_between(start_date, end_date)?;
    if let (Some(from), Some(before)) = (created_from, created_before)
        && from >= before
    {
        return Err(ApiError::validation(
            "start_date must not be after end_date",
        ));
    }
    Ok(ConversationSearchFilter {
        created_from,
        created_before,
    })
}

/// Search the user's kept conversations by title, summary and transcript.
#[utoipa::path(get, path = "/v1/dev/user/conversations/search", tag = "Conversations",
    operation_id = "searchConversations",
    security(("bearerAuth" = ["conversations:read"])),
    params(SearchConversationsQuery),
    responses(
        (status = 200, description = "Matching conversations with `transcript_segments: null`: `score` desc, then `created_at` desc, `id` desc; `[]` when nothing matches", body = [ConversationSearchHit],
            headers(("X-Search-Mode" = String, description = "`lexical` (full-text ranking) or `hybrid` (full-text fused with semantic similarity)"))),
        (status = 422, description = "Validation error: query is required; query cannot be empty; Validation error: query must be at most 500 characters; Validation error: start_date must not be after end_date", body = ErrorResponse),
    ))]
pub async fn search_conversations(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
    ApiQuery(query): ApiQuery<SearchConversationsQuery>,
) -> ApiResult<impl IntoResponse> {
    let (text, lexical) = search_query(query.query.as_deref())?;
    let filter = search_window(query.start_date.as_deref(), query.end_date.as_deref())?;
    let page = params::page(query.limit, None, SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT);
    let found = state
        .retrieval
        .conversations(
            &*state.store,
            &auth.user_id,
            &text,
            &lexical,
            filter,
            page,
            query
                .include_transcript
                .is_some_and(|QueryBool(value)| value),
        )
        .await?;
    let hits: Vec<ConversationSearchHit> = found
        .hits
        .into_iter()
        .map(|hit| ConversationSearchHit {
            conversation: hit.item,
            score: hit.score,
        })
        .collect();
    Ok((search_mode(found.mode), Json(hits)))
}

/// A question about the user's conversations.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AskRequest {
    /// 1..1000 characters.
    pub question: String,
    /// How many of the most relevant conversations to ground the answer on, 1..10 (default 5).
    #[serde(default, deserialize_with = "crate::domain::wire::optional_integer")]
    pub limit: Option<i64>,
    /// The IANA time zone relative dates in the question are resolved in (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A conversation the answer is grounded on.
#[derive(Debug, Serialize, ToSchema)]
pub struct AskSource {
    pub id: String,
    /// May be `""`.
    pub title: String,
    #[serde(serialize_with = "crate::domain::time::serde_rfc3339_option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AskResponse {
    /// `[n]` refers to the n-th entry of `sources` (1-based).
    pub answer: String,
    /// In retrieval order; `[]` when nothing was found.
    pub sources: Vec<AskSource>,
}

const ASK_MAX_QUESTION_CHARS: usize = 1000;

impl AskRequest {
    fn into_question(self) -> ApiResult<ask_service::Question> {
        let text = self.question.trim();
        if text.is_empty() {
            return Err(ApiError::unprocessable("question cannot be empty"));
        }
        if self.question.chars().count() > ASK_MAX_QUESTION_CHARS {
            return Err(ApiError::validation(format!(
                "question must be at most {ASK_MAX_QUESTION_CHARS} characters"
            )));
        }
        let limit = self.limit.unwrap_or(5);
        if !(1..=10).contains(&limit) {
            return Err(ApiError::validation("limit must be between 1 and 10"));
        }
        let zone = match self.timezone.as_deref() {
            None => chrono_tz::Tz::UTC,
            Some(name) => crate::search::when::parse_time_zone(name)
                .ok_or_else(|| ApiError::validation("timezone must be an IANA time zone name"))?,
        };
        Ok(ask_service::Question {
            text: text.to_string(),
            limit,
            zone,
        })
    }
}

/// Ask a question answered from the user's own conversations, with `[n]` citations. Without a
/// model configured (or when it fails) the answer is extractive: the best matching passages,
/// each cited. Nothing is stored.
#[utoipa::path(post, path = "/v1/dev/user/ask", tag = "Conversations",
    operation_id = "ask", summary = "Ask Conversations",
    security(("bearerAuth" = ["conversations:read"])),
    request_body = AskRequest,
    responses(
        (status = 200, description = "The answer and its sources", body = AskResponse,
            headers(
                ("X-Omi-Answer-Mode" = String, description = "`llm` (written by the configured model) or `extractive`"),
                ("Cache-Control" = String, description = "`no-store`"),
                ("X-Search-Mode" = String, description = "How the sources were found: `lexical` (full-text ranking) or `hybrid` (full-text fused with semantic similarity)"),
            )),
        (status = 422, description = "question cannot be empty; Validation error: question must be at most 1000 characters; Validation error: limit must be between 1 and 10; Validation error: timezone must be an IANA time zone name", body = ErrorResponse),
        (status = 429, description = "Rate limit exceeded. Try again in <n>s. (also `OMI_ASK_RATE_LIMIT_PER_HOUR` per key)", body = ErrorResponse),
    ))]
pub async fn ask(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
    ApiJson(body): ApiJson<AskRequest>,
) -> ApiResult<impl IntoResponse> {
    let question = body.into_question()?;
    check_ask_limit(&state, &auth).await?;
    let answer = ask_service::ask(
        state.store.as_ref(),
        &state.retrieval,
        state.ask_writer.as_deref(),
        &auth.user_id,
        &question,
        time::now(),
    )
    .await?;
    let headers = [
        (
            axum::http::HeaderName::from_static("x-omi-answer-mode"),
            axum::http::HeaderValue::from_static(answer.mode.as_str()),
        ),
        (
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        ),
        (
            axum::http::HeaderName::from_static(super::SEARCH_MODE_HEADER),
            axum::http::HeaderValue::from_static(answer.search_mode.as_str()),
        ),
    ];
    Ok((
        headers,
        Json(AskResponse {
            answer: answer.answer,
            sources: answer
                .sources
                .into_iter()
                .map(|source| AskSource {
                    id: source.id,
                    title: source.title,
                    created_at: source.created_at,
                })
                .collect(),
        }),
    ))
}

/// `OMI_ASK_RATE_LIMIT_PER_HOUR` per key (API.md §13.B), on top of the §10 windows: the same
/// 429 answer, with `Retry-After` for the hour.
async fn check_ask_limit(
    state: &AppState,
    auth: &Authorized<scopes::ConversationsRead>,
) -> ApiResult<()> {
    let limit = state.settings.ask_rate_limit_per_hour;
    if limit == 0 {
        return Ok(());
    }
    let verdict = state
        .limiter
        .check_hourly("ask", &auth.key.id, &auth.user_id, limit)
        .await
        .map_err(|error| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                crate::error::details::LIMITER_UNAVAILABLE,
            )
            .with_cause(anyhow::anyhow!("ask limit: {}", error.reason()))
        })?;
    if verdict.allowed {
        return Ok(());
    }
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(verdict.reset_in),
    );
    headers.insert(
        "x-ratelimit-limit",
        axum::http::HeaderValue::from(verdict.limit),
    );
    headers.insert("x-ratelimit-remaining", axum::http::HeaderValue::from(0u64));
    headers.insert(
        "x-ratelimit-reset",
        axum::http::HeaderValue::from(verdict.reset_at),
    );
    Err(ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        crate::ratelimit::rate_limited_detail(verdict.reset_in),
    )
    .with_headers(headers))
}

/// Comma-separated categories, blanks ignored, duplicates collapsed.
fn parse_categories(raw: Option<&str>) -> ApiResult<Vec<String>> {
    let mut categories: Vec<String> = Vec::new();
    for value in raw.unwrap_or_default().split(',').map(str::trim) {
        if value.is_empty() {
            continue;
        }
        let category = ConversationCategory::parse(value)
            .ok_or_else(|| ApiError::bad_request(format!("Invalid category: {value}")))?;
        let name = category.as_str().to_string();
        if !categories.contains(&name) {
            categories.push(name);
        }
    }
    Ok(categories)
}

/// List kept conversations, newest first.
#[utoipa::path(get, path = "/v1/dev/user/conversations", tag = "Conversations",
    operation_id = "listConversations",
    security(("bearerAuth" = ["conversations:read"])),
    params(ListConversationsQuery),
    responses(
        (status = 200, description = "One page of conversations, `created_at` desc then `id` desc; with `updated_since` or `cursor`, `updated_at` asc then `id` asc, discarded ones included", body = [Conversation],
            headers(("X-Next-Cursor" = String, description = "Change feed only: the `cursor` of the next page, absent on the last page"), ("Link" = String, description = "Change feed only: `<...>; rel=\"next\"`, the next page's URL"))),
        (status = 400, description = "`Invalid category: <value>`, `Invalid cursor`", body = ErrorResponse),
        (status = 422, description = "`Validation error: folder_id cannot be empty`, `Validation error: starred must be true or false`, `Validation error: updated_since must be an RFC 3339 date-time`", body = ErrorResponse),
    ))]
pub async fn list_conversations(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(query): ApiQuery<ListConversationsQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<Conversation>>)> {
    let filter = query.filter()?;
    let include_transcript = query.include_transcript.unwrap_or_default().0;
    let max_limit = if include_transcript {
        MAX_LIMIT_WITH_TRANSCRIPT
    } else {
        MAX_LIMIT
    };
    let page = params::page(query.limit, query.offset, DEFAULT_LIMIT, max_limit);
    let window = feed::requested_window(
        query.updated_since.as_deref(),
        query.cursor.as_deref(),
        page.limit,
    )?;
    if filter
        .folder_id
        .as_deref()
        .is_some_and(|id| !is_plausible_id(id))
    {
        return Ok((HeaderMap::new(), Json(Vec::new())));
    }
    let Some(window) = window else {
        let conversations = state
            .store
            .list_conversations(&auth.user_id, &filter, page, include_transcript)
            .await?;
        return Ok((HeaderMap::new(), Json(conversations)));
    };
    let changed = state
        .store
        .conversations_changed(&auth.user_id, &filter, &window, include_transcript)
        .await?;
    Ok(feed::feed_response(&uri, changed, page.limit, |c| {
        FeedPosition {
            at: c.updated_at,
            id: c.id.clone(),
        }
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetConversationQuery {
    /// Include the transcript segments (default false).
    #[param(value_type = Option<bool>)]
    pub include_transcript: Option<QueryBool>,
}

/// One conversation, discarded ones included.
#[utoipa::path(get, path = "/v1/dev/user/conversations/{conversation_id}", tag = "Conversations",
    operation_id = "getConversation",
    security(("bearerAuth" = ["conversations:read"])),
    params(("conversation_id" = String, Path, description = "The conversation's id"), GetConversationQuery),
    responses(
        (status = 200, description = "The conversation", body = Conversation),
        (status = 404, description = "Conversation not found", body = ErrorResponse),
    ))]
pub async fn get_conversation(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
    Path(conversation_id): Path<String>,
    ApiQuery(query): ApiQuery<GetConversationQuery>,
) -> ApiResult<Json<Conversation>> {
    let include_transcript = query.include_transcript.unwrap_or_default().0;
    Ok(Json(
        find(&state, &auth.user_id, &conversation_id, include_transcript).await?,
    ))
}

async fn find(
    state: &AppState,
    user_id: &str,
    conversation_id: &str,
    include_transcript: bool,
) -> ApiResult<Conversation> {
    if !is_plausible_id(conversation_id) {
        return Err(ApiError::not_found(RESOURCE));
    }
    state
        .store
        .get_conversation(user_id, conversation_id, include_transcript)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateConversationRequest {
    /// 1..500 characters after trimming; sets `structured.title`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub title: Patch<String>,
    /// Discard (`true`) or restore (`false`). A restored conversation without a title is
    /// processed again.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub discarded: Patch<bool>,
    /// Star (`true`) or unstar (`false`); independent of `discarded` and of folders.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub starred: Patch<bool>,
}

/// The changes a valid PATCH body asks for.
struct RequestedChanges {
    title: Option<String>,
    discarded: Option<bool>,
    starred: Option<bool>,
}

impl UpdateConversationRequest {
    fn validated(self) -> ApiResult<RequestedChanges> {
        if self.title.is_absent() && self.discarded.is_absent() && self.starred.is_absent() {
            return Err(ApiError::unprocessable(
                "At least one field (title or discarded) must be provided",
            ));
        }
        let title = match self.title {
            Patch::Absent => None,
            Patch::Null => return Err(ApiError::validation("title must be a string")),
            Patch::Value(title) => Some(parse_title(&title)?),
        };
        let discarded = match self.discarded {
            Patch::Absent => None,
            Patch::Null => return Err(ApiError::validation("discarded must be a boolean")),
            Patch::Value(discarded) => Some(discarded),
        };
        let starred = match self.starred {
            Patch::Absent => None,
            Patch::Null => return Err(ApiError::validation("starred must be a boolean")),
            Patch::Value(starred) => Some(starred),
        };
        Ok(RequestedChanges {
            title,
            discarded,
            starred,
        })
    }
}

/// Change the title, discard or restore the conversation, or star or unstar it.
#[utoipa::path(patch, path = "/v1/dev/user/conversations/{conversation_id}", tag = "Conversations",
    operation_id = "updateConversation",
    security(("bearerAuth" = ["conversations:write"])),
    params(("conversation_id" = String, Path, description = "The conversation's id")),
    request_body = UpdateConversationRequest,
    responses(
        (status = 200, description = "The updated conversation", body = Conversation),
        (status = 404, description = "Conversation not found", body = ErrorResponse),
        (status = 422, description = "`At least one field (title or discarded) must be provided`, or an invalid title", body = ErrorResponse),
    ))]
pub async fn update_conversation(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsWrite>,
    Path(conversation_id): Path<String>,
    ApiJson(body): ApiJson<UpdateConversationRequest>,
) -> ApiResult<Json<Conversation>> {
    let RequestedChanges {
        title,
        discarded,
        starred,
    } = body.validated()?;
    let current = find(&state, &auth.user_id, &conversation_id, false).await?;
    let restoring = discarded == Some(false) && current.discarded;
    let reprocessed = if restoring && current.structured.title.is_empty() {
        Some(
            pipeline::reprocess(
                &*state.store,
                &state.processor,
                &auth.user_id,
                &conversation_id,
            )
            .await?,
        )
    } else {
        None
    };
    let folder = match discarded {
        Some(true) => FolderChange::Clear,
        Some(false) if restoring => {
            let category = reprocessed
                .as_ref()
                .map_or(current.structured.category.as_str(), |r| {
                    r.structured.category.as_str()
                });
            let category =
                ConversationCategory::parse(category).unwrap_or(ConversationCategory::Other);
            FolderChange::File(SystemFolderSpec::of(system_folder_for(category)))
        }
        _ => FolderChange::Keep,
    };
    let update = ConversationUpdate {
        title,
        discarded,
        starred,
        folder,
        reprocessed,
        updated_at: time::now(),
    };
    if !state
        .store
        .update_conversation(&auth.user_id, &conversation_id, update)
        .await?
    {
        return Err(ApiError::not_found(RESOURCE));
    }
    Ok(Json(
        find(&state, &auth.user_id, &conversation_id, false).await?,
    ))
}

/// Delete a conversation and its transcript. Action items and memories extracted from it stay.
#[utoipa::path(delete, path = "/v1/dev/user/conversations/{conversation_id}", tag = "Conversations",
    operation_id = "deleteConversation",
    security(("bearerAuth" = ["conversations:write"])),
    params(("conversation_id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "Deleted", body = SuccessResponse),
        (status = 404, description = "Conversation not found", body = ErrorResponse),
    ))]
pub async fn delete_conversation(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsWrite>,
    Path(conversation_id): Path<String>,
) -> ApiResult<Json<SuccessResponse>> {
    if !is_plausible_id(&conversation_id)
        || !state
            .store
            .delete_conversation(&auth.user_id, &conversation_id)
            .await?
    {
        return Err(ApiError::not_found(RESOURCE));
    }
    Ok(SuccessResponse::done())
}

/// The contract's wording for a refused conversation field (API.md §5, §11.9).
impl From<ConversationFieldError> for ApiError {
    fn from(error: ConversationFieldError) -> Self {
        use ConversationFieldError as E;
        match error {
            E::LatitudeOutOfRange => {
                ApiError::validation("geolocation.latitude must be between -90 and 90")
            }
            E::LongitudeOutOfRange => {
                ApiError::validation("geolocation.longitude must be between -180 and 180")
            }
            E::NoSegments => ApiError::unprocessable("transcript_segments cannot be empty"),
            E::TooManySegments => ApiError::unprocessable(format!(
                "Maximum {MAX_SEGMENTS} transcript segments allowed"
            )),
            E::SegmentEndNotAfterStart(index) => ApiError::unprocessable(format!(
                "Segment {index}: end time must be after start time"
            )),
            E::SegmentStartNegative(index) => {
                ApiError::unprocessable(format!("Segment {index}: start time cannot be negative"))
            }
            E::SegmentTextEmpty(index) => {
                ApiError::unprocessable(format!("Segment {index}: text cannot be empty"))
            }
            E::TimesOutOfRange => ApiError::validation("conversation times are out of range"),
            E::FinishedNotAfterStarted => {
                ApiError::unprocessable("finished_at must be after started_at")
            }
            E::EmptyText => ApiError::unprocessable("text cannot be empty"),
            E::TextTooLong => ApiError::unprocessable("text cannot exceed 100,000 characters"),
            E::Blank(field) => ApiError::validation(format!("{field} cannot be empty")),
            E::TooLong { field, max_chars } => {
                ApiError::validation(format!("{field} must be at most {max_chars} characters"))
            }
        }
    }
}

/// The contract's answer for a failed creation or reprocessing (API.md §5, §11.8).
impl From<ConversationError> for ApiError {
    fn from(error: ConversationError) -> Self {
        match error {
            ConversationError::InProgress => {
                ApiError::conflict("Conversation creation already in progress")
            }
            ConversationError::NotFound => ApiError::not_found("Conversation"),
            ConversationError::TaskFailed(cause) => {
                ApiError::internal(anyhow::anyhow!("creation task failed: {cause}"))
            }
            ConversationError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_checked_trimmed_and_collapsed() {
        assert_eq!(
            parse_categories(Some("work, health,,work")).unwrap(),
            vec!["work".to_string(), "health".to_string()]
        );
        assert_eq!(
            parse_categories(Some("work,cooking")).unwrap_err().detail(),
            "Invalid category: cooking"
        );
        assert!(parse_categories(None).unwrap().is_empty());
    }
}
