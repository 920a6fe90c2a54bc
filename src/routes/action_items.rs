//! Action items (API.md §4): list, read, create one or a batch, update, delete.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, scopes};
use crate::domain::action_items::{
    ActionItem, ActionItemChanges, ActionItemFilter, ActionItemProblem, MAX_BATCH_ITEMS,
    parse_description, parse_due_at,
};
use crate::domain::feed::FeedPosition;
use crate::domain::ids::is_plausible_id;
use crate::domain::patch::Patch;
use crate::domain::time::{self, Timestamp};
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::{ApiJson, ApiQuery, parse_json_element};
use crate::routes::feed;
use crate::routes::params::QueryBool;
use crate::routes::params::{self, QueryInt};
use crate::routes::{
    ApiRouter, Guards, SuccessResponse, cannot_be_null, created_between, search_mode, search_query,
};
use crate::state::AppState;

const RESOURCE: &str = "Action item";
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
const SEARCH_DEFAULT_LIMIT: i64 = 10;
/// Upstream's MCP search caps at 50 (API.md §13.A.4).
const SEARCH_MAX_LIMIT: i64 = 50;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new()
        .routes(guards.developer(routes!(list_action_items, create_action_item)))
        .routes(guards.developer(routes!(create_action_items_batch)))
        .routes(guards.developer(routes!(search_action_items)))
        .routes(guards.developer(routes!(
            get_action_item,
            update_action_item,
            delete_action_item
        )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListActionItemsQuery {
    /// Only items extracted from this conversation.
    pub conversation_id: Option<String>,
    /// Only completed (`true`) or only open (`false`) items.
    #[param(value_type = Option<bool>)]
    pub completed: Option<QueryBool>,
    /// Items created at or after this time. A bare date (`YYYY-MM-DD`) is the start of that UTC day.
    pub start_date: Option<String>,
    /// Items created at or before this time. A bare date includes that whole UTC day.
    pub end_date: Option<String>,
    /// Page size, 1..1000 (default 100); values out of range are clamped.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
    /// Items to skip (default 0); negative values count as 0.
    #[param(value_type = Option<i64>)]
    pub offset: Option<QueryInt>,
    /// Change feed: only items changed at or after this RFC 3339 date-time (inclusive), in
    /// `(updated_at, id)` order; `offset` is ignored. The next page is announced in `X-Next-Cursor` and `Link`
    /// (both absent on the last page).
    pub updated_since: Option<String>,
    /// Change feed: the `X-Next-Cursor` of the previous page (opaque; an unreadable one is a 400).
    pub cursor: Option<String>,
}

impl ListActionItemsQuery {
    fn filter(&self) -> ApiResult<ActionItemFilter> {
        let (created_from, created_before) =
            created_between(self.start_date.as_deref(), self.end_date.as_deref())?;
        Ok(ActionItemFilter {
            conversation_id: self.conversation_id.clone(),
            completed: self.completed.map(|QueryBool(value)| value),
            created_from,
            created_before,
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchActionItemsQuery {
    /// The words to find in descriptions, 1..500 characters after trimming (required).
    #[param(required = true)]
    pub query: Option<String>,
    /// Only completed (`true`) or only open (`false`) items.
    #[param(value_type = Option<bool>)]
    pub completed: Option<QueryBool>,
    /// Results: default 10, values outside 1..50 are clamped into it.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
}

/// An action item that matches a search, with its relevance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionItemSearchHit {
    pub action_item: ActionItem,
    /// In `(0, 1]`, higher is better, rounded to 4 decimals; comparable within one response.
    pub score: f64,
}

/// One action item to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateActionItem {
    /// 1..500 characters after trimming.
    pub description: String,
    /// Whether it is already done (default false).
    #[serde(default)]
    pub completed: Option<bool>,
    /// An RFC 3339 date-time (any offset; none means UTC), or a bare date meaning 23:59:00Z that day.
    #[serde(default)]
    pub due_at: Option<String>,
}

impl CreateActionItem {
    /// Checks the description (blank, then length), then the due date.
    fn into_item(self, now: Timestamp) -> Result<ActionItem, ActionItemProblem> {
        let description = parse_description(&self.description)?;
        let due_at = self.due_at.as_deref().map(parse_due_at).transpose()?;
        Ok(ActionItem::new(
            description,
            self.completed.unwrap_or(false),
            due_at,
            now,
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchCreateActionItems {
    /// At most 50 items, created together or not at all.
    #[schema(value_type = Vec<CreateActionItem>, max_items = 50)]
    pub action_items: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchActionItemsResponse {
    /// The created items, in the order they were sent.
    pub action_items: Vec<ActionItem>,
    pub created_count: usize,
}

/// Any of the fields; `due_at: null` clears the due date, an absent field is left alone.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateActionItem {
    /// 1..500 characters after trimming.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub description: Patch<String>,
    /// `true` sets `completed_at` (keeping an earlier one); `false` clears it.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub completed: Patch<bool>,
    /// A date-time or a bare date (23:59:00Z that day); `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub due_at: Patch<String>,
}

impl UpdateActionItem {
    /// Every field is checked before anything is written.
    fn into_changes(self) -> ApiResult<ActionItemChanges> {
        if self.description.is_absent() && self.completed.is_absent() && self.due_at.is_absent() {
            return Err(ApiError::unprocessable(
                "At least one field must be provided",
            ));
        }
        let description = match self.description {
            Patch::Absent => None,
            Patch::Null => return Err(cannot_be_null("description")),
            Patch::Value(text) => Some(parse_description(&text).map_err(single_item_error)?),
        };
        let completed = match self.completed {
            Patch::Absent => None,
            Patch::Null => return Err(cannot_be_null("completed")),
            Patch::Value(completed) => Some(completed),
        };
        let due_at = match self.due_at {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(text) => Patch::Value(parse_due_at(&text).map_err(single_item_error)?),
        };
        Ok(ActionItemChanges {
            description,
            completed,
            due_at,
        })
    }
}

fn single_item_error(problem: ActionItemProblem) -> ApiError {
    match problem {
        ActionItemProblem::BlankDescription => {
            ApiError::unprocessable("description cannot be empty")
        }
        other => ApiError::validation(format!("{} {}", other.field(), other.what())),
    }
}

fn batch_item_error(index: usize, problem: ActionItemProblem) -> ApiError {
    match problem {
        ActionItemProblem::BlankDescription => {
            ApiError::unprocessable("All action items must have non-empty descriptions")
        }
        other => ApiError::validation(format!(
            "action_items[{index}].{} {}",
            other.field(),
            other.what()
        )),
    }
}

/// Search the user's action items by description.
#[utoipa::path(get, path = "/v1/dev/user/action-items/search", tag = "Action Items",
    operation_id = "searchActionItems",
    security(("bearerAuth" = ["action_items:read"])),
    params(SearchActionItemsQuery),
    responses(
        (status = 200, description = "Matching items: `score` desc, then `created_at` desc, `id` desc; `[]` when nothing matches", body = [ActionItemSearchHit],
            headers(("X-Search-Mode" = String, description = "`lexical` (full-text ranking) or `hybrid` (full-text fused with semantic similarity)"))),
        (status = 422, description = "Validation error: query is required; query cannot be empty; Validation error: query must be at most 500 characters", body = ErrorResponse),
    ))]
pub async fn search_action_items(
    State(state): State<AppState>,
    auth: Authorized<scopes::ActionItemsRead>,
    ApiQuery(query): ApiQuery<SearchActionItemsQuery>,
) -> ApiResult<impl IntoResponse> {
    let (text, lexical) = search_query(query.query.as_deref())?;
    let page = params::page(query.limit, None, SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT);
    let completed = query.completed.map(|QueryBool(value)| value);
    let found = state
        .retrieval
        .action_items(
            &*state.store,
            &auth.user_id,
            &text,
            &lexical,
            completed,
            page,
        )
        .await?;
    let hits: Vec<ActionItemSearchHit> = found
        .hits
        .into_iter()
        .map(|hit| ActionItemSearchHit {
            action_item: hit.item,
            score: hit.score,
        })
        .collect();
    Ok((search_mode(found.mode), Json(hits)))
}

/// List action items: open first, then completed; within each, items with a due date by due
/// date, then the rest; ties by `created_at` desc, then `id` desc.
#[utoipa::path(get, path = "/v1/dev/user/action-items", tag = "Action Items",
    operation_id = "listActionItems",
    security(("bearerAuth" = ["action_items:read"])),
    params(ListActionItemsQuery),
    responses(
        (status = 200, description = "One page of action items; with `updated_since` or `cursor`, `updated_at` asc then `id` asc", body = [ActionItem],
            headers(("X-Next-Cursor" = String, description = "Change feed only: the `cursor` of the next page, absent on the last page"), ("Link" = String, description = "Change feed only: `<...>; rel=\"next\"`, the next page's URL"))),
        (status = 400, description = "Invalid cursor", body = ErrorResponse),
        (status = 422, description = "Validation error: updated_since must be an RFC 3339 date-time", body = ErrorResponse),
    ))]
pub async fn list_action_items(
    State(state): State<AppState>,
    auth: Authorized<scopes::ActionItemsRead>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(query): ApiQuery<ListActionItemsQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<ActionItem>>)> {
    let filter = query.filter()?;
    let page = params::page(query.limit, query.offset, DEFAULT_LIMIT, MAX_LIMIT);
    let window = feed::requested_window(
        query.updated_since.as_deref(),
        query.cursor.as_deref(),
        page.limit,
    )?;
    let Some(window) = window else {
        let items = state
            .store
            .list_action_items(&auth.user_id, filter, page)
            .await?;
        return Ok((HeaderMap::new(), Json(items)));
    };
    let changed = state
        .store
        .action_items_changed(&auth.user_id, filter, &window)
        .await?;
    Ok(feed::feed_response(&uri, changed, page.limit, |item| {
        FeedPosition {
            at: item.updated_at,
            id: item.id.clone(),
        }
    }))
}

/// Get one action item.
#[utoipa::path(get, path = "/v1/dev/user/action-items/{action_item_id}", tag = "Action Items",
    operation_id = "getActionItem",
    security(("bearerAuth" = ["action_items:read"])),
    params(("action_item_id" = String, Path, description = "The action item's id")),
    responses(
        (status = 200, description = "The action item", body = ActionItem),
        (status = 404, description = "Action item not found", body = ErrorResponse),
    ))]
pub async fn get_action_item(
    State(state): State<AppState>,
    auth: Authorized<scopes::ActionItemsRead>,
    Path(action_item_id): Path<String>,
) -> ApiResult<Json<ActionItem>> {
    if !is_plausible_id(&action_item_id) {
        return Err(ApiError::not_found(RESOURCE));
    }
    let item = state
        .store
        .get_action_item(&auth.user_id, &action_item_id)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE))?;
    Ok(Json(item))
}

/// Create an action item.
#[utoipa::path(post, path = "/v1/dev/user/action-items", tag = "Action Items",
    operation_id = "createActionItem",
    security(("bearerAuth" = ["action_items:write"])),
    request_body = CreateActionItem,
    responses(
        (status = 200, description = "The created action item", body = ActionItem),
        (status = 422, description = "`description cannot be empty`, a description over 500 characters, or an unreadable due date", body = ErrorResponse),
    ))]
pub async fn create_action_item(
    State(state): State<AppState>,
    auth: Authorized<scopes::ActionItemsWrite>,
    ApiJson(body): ApiJson<CreateActionItem>,
) -> ApiResult<Json<ActionItem>> {
    let item = body.into_item(time::now()).map_err(single_item_error)?;
    state
        .store
        .create_action_items(&auth.user_id, vec![item.clone()])
        .await?;
    Ok(Json(item))
}

/// Create up to 50 action items in one request, all or none.
#[utoipa::path(post, path = "/v1/dev/user/action-items/batch", tag = "Action Items",
    operation_id = "createActionItemsBatch",
    security(("bearerAuth" = ["action_items:write"])),
    request_body = BatchCreateActionItems,
    responses(
        (status = 200, description = "The created items in the order sent", body = BatchActionItemsResponse),
        (status = 422, description = "`Maximum 50 action items per batch request`, `All action items must have non-empty descriptions`, or an invalid item (named by its index); nothing is created", body = ErrorResponse),
    ))]
pub async fn create_action_items_batch(
    State(state): State<AppState>,
    auth: Authorized<scopes::ActionItemsWrite>,
    ApiJson(body): ApiJson<BatchCreateActionItems>,
) -> ApiResult<Json<BatchActionItemsResponse>> {
    // The count is checked before any item (API.md §11.5), so items are read one by one here.
    if body.action_items.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::unprocessable(format!(
            "Maximum {MAX_BATCH_ITEMS} action items per batch request"
        )));
    }
    let now = time::now();
    let items = body
        .action_items
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let fields: CreateActionItem =
                parse_json_element(value, &format!("action_items[{index}]"))?;
            fields
                .into_item(now)
                .map_err(|problem| batch_item_error(index, problem))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    if !items.is_empty() {
        state
            .store
            .create_action_items(&auth.user_id, items.clone())
            .await?;
    }
    Ok(Json(BatchActionItemsResponse {
        created_count: items.len(),
        action_items: items,
    }))
}

/// Update an action item's description, completion or due date.
#[utoipa::path(patch, path = "/v1/dev/user/action-items/{action_item_id}", tag = "Action Items",
    operation_id = "updateActionItem",
    security(("bearerAuth" = ["action_items:write"])),
    params(("action_item_id" = String, Path, description = "The action item's id")),
    request_body = UpdateActionItem,
    responses(
        (status = 200, description = "The updated action item", body = ActionItem),
        (status = 404, description = "Action item not found", body = ErrorResponse),
        (status = 422, description = "`At least one field must be provided`, `description cannot be empty`, a null description or completed, or an invalid value; nothing is changed", body = ErrorResponse),
    ))]
pub async fn update_action_item(
    State(state): State<AppState>,
    auth: Authorized<scopes::ActionItemsWrite>,
    Path(action_item_id): Path<String>,
    ApiJson(body): ApiJson<UpdateActionItem>,
) -> ApiResult<Json<ActionItem>> {
    let changes = body.into_changes()?;
    if !is_plausible_id(&action_item_id) {
        return Err(ApiError::not_found(RESOURCE));
    }
    let item = state
        .store
        .update_action_item(&auth.user_id, &action_item_id, changes, time::now())
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE))?;
    Ok(Json(item))
}

/// Delete an action item.
#[utoipa::path(delete, path = "/v1/dev/user/action-items/{action_item_id}", tag = "Action Items",
    operation_id = "deleteActionItem",
    security(("bearerAuth" = ["action_items:write"])),
    params(("action_item_id" = String, Path, description = "The action item's id")),
    responses(
        (status = 200, description = "Deleted", body = SuccessResponse),
        (status = 404, description = "Action item not found", body = ErrorResponse),
    ))]
pub async fn delete_action_item(
    State(state): State<AppState>,
    auth: Authorized<scopes::ActionItemsWrite>,
    Path(action_item_id): Path<String>,
) -> ApiResult<Json<SuccessResponse>> {
    if is_plausible_id(&action_item_id)
        && state
            .store
            .delete_action_item(&auth.user_id, &action_item_id)
            .await?
    {
        Ok(SuccessResponse::done())
    } else {
        Err(ApiError::not_found(RESOURCE))
    }
}
