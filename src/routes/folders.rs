//! Folders (API.md §6): read-only; the three system folders appear with the first kept
//! conversation.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, scopes};
use crate::domain::feed::FeedPosition;
use crate::domain::folders::Folder;
use crate::error::{ApiResult, ErrorResponse};
use crate::extract::ApiQuery;
use crate::routes::params::{self, QueryInt};
use crate::routes::{ApiRouter, Guards, feed};
use crate::state::AppState;

/// Change-feed pages only: the folder list itself is never paged.
const FEED_DEFAULT_LIMIT: i64 = 100;
const FEED_MAX_LIMIT: i64 = 1000;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new().routes(guards.developer(routes!(list_folders)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListFoldersQuery {
    /// Change feed: only folders changed (a conversation filed in or out included) at or after
    /// this RFC 3339 date-time (inclusive), in `(updated_at, id)` order. The next page is
    /// announced in `X-Next-Cursor` and `Link` (both absent on the last page).
    pub updated_since: Option<String>,
    /// Change feed: the `X-Next-Cursor` of the previous page (opaque; an unreadable one is a 400).
    pub cursor: Option<String>,
    /// Change feed page size, 1..1000 (default 100); ignored without `updated_since`/`cursor`.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
}

/// The user's folders by `order`, each with its live count of kept conversations.
#[utoipa::path(get, path = "/v1/dev/user/folders", tag = "Folders",
    operation_id = "listFolders",
    security(("bearerAuth" = ["conversations:read"])),
    params(ListFoldersQuery),
    responses(
        (status = 200, description = "The folders; empty before the first kept conversation. With `updated_since` or `cursor`, a page by `updated_at` asc then `id` asc", body = [Folder],
            headers(("X-Next-Cursor" = String, description = "Change feed only: the `cursor` of the next page, absent on the last page"), ("Link" = String, description = "Change feed only: `<...>; rel=\"next\"`, the next page's URL"))),
        (status = 400, description = "Invalid cursor", body = ErrorResponse),
        (status = 422, description = "Validation error: updated_since must be an RFC 3339 date-time", body = ErrorResponse),
    ))]
pub async fn list_folders(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(query): ApiQuery<ListFoldersQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<Folder>>)> {
    let limit = params::clamp(query.limit, FEED_DEFAULT_LIMIT, 1, FEED_MAX_LIMIT);
    let window = feed::requested_window(
        query.updated_since.as_deref(),
        query.cursor.as_deref(),
        limit,
    )?;
    let Some(window) = window else {
        return Ok((
            HeaderMap::new(),
            Json(state.store.list_folders(&auth.user_id).await?),
        ));
    };
    let changed = state.store.folders_changed(&auth.user_id, &window).await?;
    Ok(feed::feed_response(&uri, changed, limit, |folder| {
        FeedPosition {
            at: folder.updated_at,
            id: folder.id.clone(),
        }
    }))
}
