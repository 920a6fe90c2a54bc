//! `GET /v1/dev/user/export`: the portable export as NDJSON, streamed page by page from the
//! store. A response holds at most `limit` records; when more remain, `X-Next-Cursor` and
//! `Link: <...>; rel="next"` say where the next response starts. A response cut short (the
//! connection dropped) is resumed by asking for the same cursor again.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde::Deserialize;
use tracing::instrument;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::domain::export::ExportPosition;
use crate::domain::scope::Scope;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::ApiQuery;
use crate::routes::params::{self, QueryInt};
use crate::routes::{ApiRouter, Guards};
use crate::service::export::{
    DEFAULT_PAGE_RECORDS, MAX_PAGE_RECORDS, plan_page, readable_kinds, records,
};
use crate::state::AppState;

pub const PATH: &str = "/v1/dev/user/export";
pub const NEXT_CURSOR: &str = "x-next-cursor";
pub const NDJSON: &str = "application/x-ndjson";
/// Records put into one chunk of the body.
const RECORDS_PER_CHUNK: usize = 64;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new().routes(guards.developer(routes!(export)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Where to resume: the `X-Next-Cursor` of the previous response. Absent: from the start.
    pub cursor: Option<String>,
    /// Records in this response, 1..100000 (default 10000); values out of range are clamped.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
}

/// Everything the key may read, as NDJSON: one `{"type": ..., "data": {...}}` record per line,
/// by type (folder, conversation, action_item, memory, goal, daily_summary) then by id. Folders,
/// conversations (with transcript, structure, events, geolocation) and daily summaries need
/// `conversations:read`, action items `action_items:read`, memories `memories:read`, goals
/// (with their daily history) `goals:read`; types the key cannot read are left out.
#[utoipa::path(get, path = "/v1/dev/user/export", tag = "Export",
    operation_id = "exportUserData",
    security(("bearerAuth" = ["conversations:read", "memories:read", "action_items:read", "goals:read"])),
    params(ExportQuery),
    responses(
        (status = 200, description = "One page of the export, one record per line", content_type = "application/x-ndjson", body = String,
            headers(
                ("X-Next-Cursor" = String, description = "Opaque; pass as `cursor` for the next page. Absent on the last page"),
                ("Link" = String, description = "`<...>; rel=\"next\"`: the next page's URL. Absent on the last page"),
            )),
        (status = 400, description = "Invalid cursor", body = ErrorResponse),
        (status = 403, description = "Insufficient permissions. Required scope: any of conversations:read, memories:read, action_items:read, goals:read", body = ErrorResponse),
    ))]
#[instrument(skip_all)]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let kinds = readable_kinds(caller.key.scopes);
    if kinds.is_empty() {
        let any: Vec<&str> = [
            Scope::ConversationsRead,
            Scope::MemoriesRead,
            Scope::ActionItemsRead,
            Scope::GoalsRead,
        ]
        .iter()
        .map(|scope| scope.as_str())
        .collect();
        return Err(ApiError::forbidden_scope(&format!(
            "any of {}",
            any.join(", ")
        )));
    }
    let start = match query.cursor.as_deref() {
        Some(cursor) => Some(
            ExportPosition::from_cursor(cursor)
                .ok_or_else(|| ApiError::bad_request("Invalid cursor"))?,
        ),
        None => None,
    };
    let limit = params::clamp(
        query.limit,
        DEFAULT_PAGE_RECORDS as i64,
        1,
        MAX_PAGE_RECORDS as i64,
    ) as u64;
    let page = plan_page(state.store.as_ref(), &caller.user_id, kinds, start, limit).await?;
    let next = page.next_cursor();

    let body = records(state.store.clone(), caller.user_id.clone(), page)
        .ready_chunks(RECORDS_PER_CHUNK)
        .map(|chunk| {
            let mut bytes = Vec::new();
            for record in chunk {
                let record = record.map_err(|error| {
                    // Dropping the connection tells the client the page is incomplete.
                    tracing::warn!(error = %error, "export stopped by a store error");
                    std::io::Error::other(error.to_string())
                })?;
                serde_json::to_writer(&mut bytes, &record).map_err(std::io::Error::other)?;
                bytes.push(b'\n');
            }
            Ok::<_, std::io::Error>(Bytes::from(bytes))
        });
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    if let Some(next) = next {
        let mut link = format!("<{PATH}?cursor={next}");
        if let Some(QueryInt(limit)) = query.limit {
            link.push_str(&format!("&limit={limit}"));
        }
        link.push_str(">; rel=\"next\"");
        headers.insert(
            NEXT_CURSOR,
            HeaderValue::from_str(&next).expect("hex is a valid header value"),
        );
        headers.insert(
            header::LINK,
            HeaderValue::from_str(&link).expect("the link is ASCII"),
        );
    }
    Ok(response)
}
