//! The receivers of the Omi app's developer webhooks (API.md §13.G) under `/v1/ingest/omi/`,
//! and the audio a conversation kept. A delivery is checked, made durable in the inbox and
//! answered `{}`; processing runs behind the answer (`service::ingest::worker`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiRouter, Guards, idempotency};
use crate::auth::middleware::URL_KEY_PARAMETER;
use crate::auth::{Authorized, scopes};
use crate::domain::audio::wav;
use crate::domain::time;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::{ApiBody, content_type_essence, is_json_content_type};
use crate::service::ingest::{self, Kind, Received};
use crate::state::AppState;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new()
        .routes(guards.ingest(routes!(receive_conversation)))
        .routes(guards.ingest(routes!(receive_transcript)))
        .routes(guards.ingest(routes!(receive_day_summary)))
        .routes(guards.ingest(routes!(receive_audio)))
        .routes(guards.ingest(routes!(receive_button)))
        .routes(guards.developer(routes!(get_conversation_audio)))
}

/// The answer to an accepted delivery: an empty object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {}

/// `detail` of a 415 on the audio receiver.
pub const AUDIO_CONTENT_TYPE: &str = "Content-Type must be application/octet-stream";
/// `detail` of the audio receiver while `OMI_INGEST_AUDIO` is off.
pub const AUDIO_OFF: &str =
    "Audio ingest is off on this server (OMI_INGEST_AUDIO=true turns it on)";

/// The query parameters the sender appended (`uid`, `sample_rate`, `session_id`), the key
/// never among them: it is not stored.
fn params(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name != URL_KEY_PARAMETER)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

async fn receive(
    state: AppState,
    user_id: &str,
    kind: Kind,
    headers: &HeaderMap,
    query: Option<String>,
    body: ApiBody,
) -> ApiResult<Json<Accepted>> {
    if kind == Kind::Audio {
        if !state.settings.ingest_audio {
            return Err(ApiError::not_found_detail(AUDIO_OFF));
        }
        if content_type_essence(headers).as_deref() != Some("application/octet-stream") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                AUDIO_CONTENT_TYPE,
            ));
        }
    } else {
        if body.0.is_empty() {
            return Err(ApiError::validation("body is required"));
        }
        if !is_json_content_type(headers) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                crate::error::details::UNSUPPORTED_MEDIA_TYPE,
            ));
        }
    }
    let received = Received {
        kind,
        body: body.0.to_vec(),
        params: params(query.as_deref()),
        idempotency_key: headers
            .get(idempotency::HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
    };
    ingest::check(&received).map_err(ApiError::validation)?;
    ingest::accept(
        &*state.store,
        &state.ingest_counters,
        user_id,
        received,
        time::now(),
    )
    .await?;
    state.ingest_wake.notify_one();
    Ok(Json(Accepted {}))
}

/// `memory_created` ("Conversation Events"): the finished conversation object, stored like an
/// imported one; a re-delivery of the same id updates it in place.
#[utoipa::path(post, path = "/v1/ingest/omi/conversations", tag = "Ingest",
    operation_id = "ingestOmiConversation",
    security(("bearerAuth" = ["ingest:write"])),
    params(
        ("key" = Option<String>, Query, description = "A developer key whose scopes are exactly `[\"ingest:write\"]`, for webhook URLs (instead of the Authorization header)"),
        ("uid" = Option<String>, Query, description = "Appended by the Omi app; ignored (the key names the user)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries of one delivery share it; without it, equal bodies are one delivery"),
    ),
    request_body(content = serde_json::Value, description = "The conversation object (API.md §13.G.2)", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored durably; processed behind the answer", body = Accepted),
        (status = 401, description = "`A key in the URL is accepted only when its scopes are exactly [\"ingest:write\"]: ...`, or a missing or invalid key", body = ErrorResponse),
        (status = 413, description = "`Request body too large`", body = ErrorResponse),
        (status = 415, description = "`Content-Type must be application/json`", body = ErrorResponse),
        (status = 422, description = "`Validation error: ...`: the body is not an Omi conversation", body = ErrorResponse),
    ))]
pub async fn receive_conversation(
    State(state): State<AppState>,
    auth: Authorized<scopes::IngestWrite>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: ApiBody,
) -> ApiResult<Json<Accepted>> {
    receive(
        state,
        &auth.user_id,
        Kind::Conversation,
        &headers,
        query,
        body,
    )
    .await
}

/// `realtime_transcript`: new segments of the live transcript (`{session_id, segments}` or a
/// bare list). They accumulate into one conversation that closes after `OMI_INGEST_GAP_SECONDS`
/// without a new segment.
#[utoipa::path(post, path = "/v1/ingest/omi/transcript", tag = "Ingest",
    operation_id = "ingestOmiTranscript",
    security(("bearerAuth" = ["ingest:write"])),
    params(
        ("key" = Option<String>, Query, description = "An ingest-only developer key (see the conversation receiver)"),
        ("uid" = Option<String>, Query, description = "Appended by the Omi app; ignored"),
        ("session_id" = Option<String>, Query, description = "Appended by the Omi app; ignored"),
    ),
    request_body(content = serde_json::Value, description = "`{\"segments\": [...], \"session_id\": ...}` or the bare list of segments (API.md §13.G.3)", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored durably", body = Accepted),
        (status = 415, description = "`Content-Type must be application/json`", body = ErrorResponse),
        (status = 422, description = "`Validation error: ...`", body = ErrorResponse),
    ))]
pub async fn receive_transcript(
    State(state): State<AppState>,
    auth: Authorized<scopes::IngestWrite>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: ApiBody,
) -> ApiResult<Json<Accepted>> {
    receive(
        state,
        &auth.user_id,
        Kind::Transcript,
        &headers,
        query,
        body,
    )
    .await
}

/// `day_summary`: its `summary_json` becomes the summary of its date.
#[utoipa::path(post, path = "/v1/ingest/omi/day-summary", tag = "Ingest",
    operation_id = "ingestOmiDaySummary",
    security(("bearerAuth" = ["ingest:write"])),
    params(("key" = Option<String>, Query, description = "An ingest-only developer key")),
    request_body(content = serde_json::Value, description = "`{summary, summary_json, uid, created_at}` (API.md §13.G.4)", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored durably", body = Accepted),
        (status = 422, description = "`Validation error: ...`", body = ErrorResponse),
    ))]
pub async fn receive_day_summary(
    State(state): State<AppState>,
    auth: Authorized<scopes::IngestWrite>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: ApiBody,
) -> ApiResult<Json<Accepted>> {
    receive(
        state,
        &auth.user_id,
        Kind::DaySummary,
        &headers,
        query,
        body,
    )
    .await
}

/// `audio_bytes`: PCM16 little-endian mono at `sample_rate`, appended to the live session's
/// audio. Off unless `OMI_INGEST_AUDIO=true`.
#[utoipa::path(post, path = "/v1/ingest/omi/audio", tag = "Ingest",
    operation_id = "ingestOmiAudio",
    security(("bearerAuth" = ["ingest:write"])),
    params(
        ("key" = Option<String>, Query, description = "An ingest-only developer key"),
        ("sample_rate" = i64, Query, description = "1000..192000"),
    ),
    request_body(content = Vec<u8>, description = "PCM16 little-endian mono", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored durably", body = Accepted),
        (status = 404, description = "`Audio ingest is off on this server (OMI_INGEST_AUDIO=true turns it on)`", body = ErrorResponse),
        (status = 415, description = "`Content-Type must be application/octet-stream`", body = ErrorResponse),
        (status = 422, description = "`Validation error: ...` (no or bad sample_rate, an odd number of bytes)", body = ErrorResponse),
    ))]
pub async fn receive_audio(
    State(state): State<AppState>,
    auth: Authorized<scopes::IngestWrite>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: ApiBody,
) -> ApiResult<Json<Accepted>> {
    receive(state, &auth.user_id, Kind::Audio, &headers, query, body).await
}

/// `button_event`: kept in the live session's metadata.
#[utoipa::path(post, path = "/v1/ingest/omi/button", tag = "Ingest",
    operation_id = "ingestOmiButton",
    security(("bearerAuth" = ["ingest:write"])),
    params(("key" = Option<String>, Query, description = "An ingest-only developer key")),
    request_body(content = serde_json::Value, description = "`{event_type, button_event, device_id, event_id, timestamp, session_id}` (API.md §13.G.6)", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored durably", body = Accepted),
        (status = 422, description = "`Validation error: ...`", body = ErrorResponse),
    ))]
pub async fn receive_button(
    State(state): State<AppState>,
    auth: Authorized<scopes::IngestWrite>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: ApiBody,
) -> ApiResult<Json<Accepted>> {
    receive(state, &auth.user_id, Kind::Button, &headers, query, body).await
}

/// The audio received with a live transcript that became this conversation, as WAV.
#[utoipa::path(get, path = "/v1/dev/user/conversations/{conversation_id}/audio", tag = "Conversations",
    operation_id = "getConversationAudio",
    security(("bearerAuth" = ["conversations:read"])),
    params(("conversation_id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "PCM16 mono WAV", content_type = "audio/wav", body = Vec<u8>),
        (status = 404, description = "`Conversation audio not found` (no audio, or not the caller's)", body = ErrorResponse),
    ))]
pub async fn get_conversation_audio(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
    Path(conversation_id): Path<String>,
) -> ApiResult<Response> {
    let audio = state
        .store
        .conversation_audio(&auth.user_id, &conversation_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Conversation audio"))?;
    let wav = wav(&audio.pcm, audio.sample_rate);
    Ok(([(header::CONTENT_TYPE, "audio/wav")], wav).into_response())
}

/// A RIFF/WAVE file around PCM16 mono samples.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_never_among_the_stored_parameters() {
        let kept = params(Some("uid=u1&key=omi_dev_secret&sample_rate=16000"));
        assert_eq!(
            kept,
            vec![
                ("uid".to_string(), "u1".to_string()),
                ("sample_rate".to_string(), "16000".to_string())
            ]
        );
    }

    #[test]
    fn a_wav_header_describes_the_samples() {
        let file = wav(&[1, 0, 2, 0], 16_000);
        assert_eq!(&file[..4], b"RIFF");
        assert_eq!(file.len(), 48);
        assert_eq!(u32::from_le_bytes(file[24..28].try_into().unwrap()), 16_000);
        assert_eq!(u32::from_le_bytes(file[40..44].try_into().unwrap()), 4);
    }
}
