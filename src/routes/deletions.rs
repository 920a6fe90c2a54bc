//! The deletions feed: what was deleted, for mirrors that follow the change feed of each list.
//! Tombstones are kept `OMI_TOMBSTONE_DAYS` days.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::domain::feed::{FeedWindow, Tombstone, TombstoneType};
use crate::domain::scope::Scope;
use crate::domain::time::{self, Timestamp, serde_rfc3339};
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::ApiQuery;
use crate::routes::params::{self, QueryInt};
use crate::routes::{ApiRouter, Guards, feed};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new().routes(guards.developer(routes!(list_deletions)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDeletionsQuery {
    /// Only deletions at or after this RFC 3339 date-time (inclusive).
    pub since: Option<String>,
    /// The `X-Next-Cursor` of the previous page (opaque; an unreadable one is a 400).
    pub cursor: Option<String>,
    /// Comma-separated types to keep: `memory`, `action_item`, `conversation`, `goal`, `key`.
    /// Default: every type the key may read. A type whose read scope the key lacks is a 403.
    pub types: Option<String>,
    /// Page size, 1..1000 (default 100); values out of range are clamped.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
}

/// What is left of a deleted object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deletion {
    /// `memory`, `action_item`, `conversation`, `goal` or `key`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deleted_at: Timestamp,
}

impl From<Tombstone> for Deletion {
    fn from(tombstone: Tombstone) -> Self {
        Deletion {
            kind: tombstone.kind.as_str().to_string(),
            id: tombstone.id,
            deleted_at: tombstone.deleted_at,
        }
    }
}

/// The scope that reads a type's objects; a key's own deletions are visible to every key.
fn read_scope(kind: TombstoneType) -> Option<Scope> {
    match kind {
        TombstoneType::Memory => Some(Scope::MemoriesRead),
        TombstoneType::ActionItem => Some(Scope::ActionItemsRead),
        TombstoneType::Conversation => Some(Scope::ConversationsRead),
        TombstoneType::Goal => Some(Scope::GoalsRead),
        TombstoneType::Key => None,
    }
}

fn readable_types(caller: &Caller, requested: Option<&str>) -> ApiResult<Vec<TombstoneType>> {
    let readable =
        |kind: TombstoneType| read_scope(kind).is_none_or(|s| caller.key.scopes.contains(s));
    let Some(requested) = requested.filter(|text| !text.trim().is_empty()) else {
        return Ok(TombstoneType::ALL
            .into_iter()
            .filter(|k| readable(*k))
            .collect());
    };
    let mut types = Vec::new();
    for name in requested.split(',') {
        let kind = TombstoneType::parse(name)
            .ok_or_else(|| ApiError::bad_request(format!("Invalid type: {}", name.trim())))?;
        if let Some(scope) = read_scope(kind).filter(|s| !caller.key.scopes.contains(*s)) {
            return Err(ApiError::forbidden_scope(scope.as_str()));
        }
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    Ok(types)
}

/// Deleted objects by `deleted_at` asc (ties by type, then id). A mirror applies them after
/// reading each list's change feed; an object that exists again after its deletion (a memory
/// created again with the same content) has no tombstone any more.
#[utoipa::path(get, path = "/v1/dev/user/deletions", tag = "Sync",
    operation_id = "listDeletions",
    security(("bearerAuth" = [])),
    params(ListDeletionsQuery),
    responses(
        (status = 200, description = "A page of tombstones, oldest first", body = [Deletion],
            headers(("X-Next-Cursor" = String, description = "The `cursor` of the next page, absent on the last page"), ("Link" = String, description = "`<...>; rel=\"next\"`, the next page's URL"))),
        (status = 400, description = "Invalid type: <value>; Invalid cursor", body = ErrorResponse),
        (status = 403, description = "The key lacks the read scope of a requested type", body = ErrorResponse),
        (status = 422, description = "Validation error: since must be an RFC 3339 date-time", body = ErrorResponse),
    ))]
pub async fn list_deletions(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    ApiQuery(query): ApiQuery<ListDeletionsQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<Deletion>>)> {
    let types = readable_types(&caller, query.types.as_deref())?;
    let limit = params::clamp(query.limit, DEFAULT_LIMIT, 1, MAX_LIMIT);
    let since = query
        .since
        .as_deref()
        .map(|text| {
            time::parse_datetime(text)
                .ok_or_else(|| ApiError::validation("since must be an RFC 3339 date-time"))
        })
        .transpose()?;
    let after = query
        .cursor
        .as_deref()
        .map(|text| {
            crate::domain::feed::FeedPosition::from_cursor(text.trim())
                .ok_or_else(feed::invalid_cursor)
        })
        .transpose()?;
    if types.is_empty() {
        return Ok((HeaderMap::new(), Json(Vec::new())));
    }
    // Tombstones past their keeping time are gone even if the pruner has not run yet.
    let kept_from = time::now() - Duration::days(i64::from(state.settings.tombstone_days));
    let since = Some(since.map_or(kept_from, |since| since.max(kept_from)));
    let window = FeedWindow::probing(since, after, limit);
    let tombstones = state
        .store
        .deletions(&caller.user_id, &types, &window)
        .await?;
    let (page, headers) = {
        let (page, next) = feed::next_page(tombstones, limit, Tombstone::position);
        (page, feed::next_page_headers(&uri, next.as_ref()))
    };
    Ok((
        headers,
        Json(page.into_iter().map(Deletion::from).collect()),
    ))
}
