//! Memories (API.md §3): list, read, create (one or a batch of 25), edit and delete.
//!
//! Every check runs before the store is touched, so a refused request writes nothing.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::instrument;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, scopes};
use crate::domain::feed::FeedPosition;
use crate::domain::ids::is_plausible_id;
use crate::domain::memories::{
    MAX_CONTENT_CHARS, MAX_TAG_CHARS, MAX_TAGS, Memory, MemoryCategory, MemoryChanges,
    MemoryFieldError, NewMemory, Visibility, collapse_same_content, memory_content, memory_tags,
};
use crate::domain::patch::Patch;
use crate::domain::time::now;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::{ApiJson, ApiQuery, parse_json_element};
use crate::routes::feed;
use crate::routes::params::{self, QueryInt};
use crate::routes::{
    ApiRouter, Guards, SuccessResponse, cannot_be_null, search_mode, search_query,
};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 25;
const MAX_LIMIT: i64 = 1000;
const MAX_BATCH: usize = 25;
const SEARCH_DEFAULT_LIMIT: i64 = 10;
const SEARCH_MAX_LIMIT: i64 = 100;

const CONTENT_EMPTY: &str = "content cannot be empty";
const BATCH_CONTENT_EMPTY: &str = "All memories must have non-empty content";
const BATCH_TOO_LARGE: &str = "Maximum 25 memories per batch request";
const VISIBILITY_INVALID: &str = "visibility must be 'public' or 'private'";
const NOTHING_TO_UPDATE: &str =
    "At least one field (content, visibility, tags, or category) must be provided";

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new()
        .routes(guards.developer(routes!(list_memories, create_memory)))
        .routes(guards.developer(routes!(create_memories_batch)))
        .routes(guards.developer(routes!(search_memories)))
        .routes(guards.developer(routes!(vector_search_memories)))
        .routes(guards.developer(routes!(get_memory, update_memory, delete_memory)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListMemoriesQuery {
    /// Page size: default 25, values outside 1..1000 are clamped into it.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
    /// Memories to skip: default 0, negative values count as 0.
    #[param(value_type = Option<i64>)]
    pub offset: Option<QueryInt>,
    /// Comma-separated categories to keep, e.g. `system,interesting`; an unknown one is a 400.
    pub categories: Option<String>,
    /// Change feed: only memories changed at or after this RFC 3339 date-time (inclusive), in
    /// `(updated_at, id)` order; `offset` is ignored. The next page is announced in
    /// `X-Next-Cursor` and `Link` (both absent on the last page).
    pub updated_since: Option<String>,
    /// Change feed: the `X-Next-Cursor` of the previous page (opaque; an unreadable one is a 400).
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchMemoriesQuery {
    /// The words to find, 1..500 characters after trimming (required). Words match in any
    /// form (`peanut` finds `peanuts`), without accents, the last one also as a prefix;
    /// `"quoted words"` must appear as written.
    #[param(required = true)]
    pub query: Option<String>,
    /// Page size: default 10, values outside 1..100 are clamped into it.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
    /// Results to skip: default 0, negative values count as 0.
    #[param(value_type = Option<i64>)]
    pub offset: Option<QueryInt>,
    /// Comma-separated categories to keep, e.g. `system,interesting`; an unknown one is a 400.
    pub categories: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VectorSearchMemoriesQuery {
    /// The text to find, 1..500 characters after trimming (required).
    #[param(required = true)]
    pub query: Option<String>,
    /// Results: default 10, values outside 1..100 are clamped into it.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
}

/// A memory that matches a search, with its relevance.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemorySearchHit {
    pub memory: Memory,
    /// In `(0, 1]`, higher is better, rounded to 4 decimals; comparable within one response.
    pub score: f64,
}

/// A memory found by the vector route: the memory's fields plus `relevance_score`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VectorSearchItem {
    #[serde(flatten)]
    pub memory: Memory,
    /// In `(0, 1]`, higher is better, rounded to 4 decimals; comparable within one response.
    pub relevance_score: f64,
}

/// Upstream's access policy block; constant here, where there are no grants or archive tier.
#[derive(Debug, Serialize, ToSchema)]
pub struct VectorSearchPolicy {
    pub consumer: String,
    pub app_has_default_memory_grant: bool,
    pub archive_capability: bool,
    pub raw_provenance_capability: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VectorSearchResponse {
    /// Most relevant first.
    pub items: Vec<VectorSearchItem>,
    /// The number of `items`.
    pub returned_count: usize,
    /// Always false: there is no archive tier.
    pub archive_default_visible: bool,
    pub policy: VectorSearchPolicy,
}

/// One memory to create. Creating a content the user already has updates that memory.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateMemoryRequest {
    /// 1..500 characters after trimming; the memory's id is derived from it.
    pub content: String,
    /// Omitted: `interesting` for attributed advice or wisdom, otherwise `system`. Legacy
    /// values are stored as `system`.
    #[serde(default)]
    #[schema(value_type = Option<MemoryCategory>)]
    pub category: Option<String>,
    /// `private` (default) or `public`.
    #[serde(default)]
    #[schema(value_type = Option<Visibility>)]
    pub visibility: Option<Value>,
    /// Up to 50 tags of 1..100 characters.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// Up to 25 memories, created together or not at all.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateMemoriesBatchRequest {
    /// Identical contents become one memory, the last occurrence's fields winning.
    // Items are read one by one after the count check, so that errors come in the contract's
    // order (count, then items in index order).
    #[schema(value_type = Vec<CreateMemoryRequest>, max_items = 25)]
    pub memories: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemoriesBatchResponse {
    /// The memories created or updated, in order of first appearance in the request.
    pub memories: Vec<Memory>,
    /// The number of memories returned.
    pub created_count: usize,
}

/// The fields to change, at least one; `null` is refused for each.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMemoryRequest {
    /// 1..500 characters after trimming; a different content marks the memory `edited`. The
    /// id stays.
    #[serde(default)]
    #[schema(value_type = String)]
    pub content: Patch<String>,
    /// Stored as given, legacy values included.
    #[serde(default)]
    #[schema(value_type = MemoryCategory)]
    pub category: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Visibility)]
    pub visibility: Patch<Value>,
    /// Replaces the tags: up to 50 of 1..100 characters.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub tags: Patch<Vec<String>>,
}

/// The user's memories, highest `scoring` first.
#[utoipa::path(get, path = "/v1/dev/user/memories", tag = "Memories",
    security(("bearerAuth" = ["memories:read"])),
    params(ListMemoriesQuery),
    responses(
        (status = 200, description = "A page of memories: `scoring` desc, then `created_at` desc, then `id` desc; with `updated_since` or `cursor`, `updated_at` asc then `id` asc", body = [Memory],
            headers(("X-Next-Cursor" = String, description = "Change feed only: the `cursor` of the next page, absent on the last page"), ("Link" = String, description = "Change feed only: `<...>; rel=\"next\"`, the next page's URL"))),
        (status = 400, description = "Invalid category: <value>; Invalid cursor", body = ErrorResponse),
        (status = 422, description = "Validation error: updated_since must be an RFC 3339 date-time", body = ErrorResponse),
    ))]
#[instrument(skip_all)]
pub async fn list_memories(
    State(state): State<AppState>,
    auth: Authorized<scopes::MemoriesRead>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(query): ApiQuery<ListMemoriesQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<Memory>>)> {
    let categories = categories_filter(query.categories.as_deref())?;
    let page = params::page(query.limit, query.offset, DEFAULT_LIMIT, MAX_LIMIT);
    let window = feed::requested_window(
        query.updated_since.as_deref(),
        query.cursor.as_deref(),
        page.limit,
    )?;
    let Some(window) = window else {
        let memories = state
            .store
            .list_memories(&auth.user_id, &categories, page)
            .await?;
        return Ok((HeaderMap::new(), Json(memories)));
    };
    let changed = state
        .store
        .memories_changed(&auth.user_id, &categories, &window)
        .await?;
    Ok(feed::feed_response(&uri, changed, page.limit, |memory| {
        FeedPosition {
            at: memory.updated_at,
            id: memory.id.clone(),
        }
    }))
}

/// Search the user's memories by content and tags.
#[utoipa::path(get, path = "/v1/dev/user/memories/search", tag = "Memories",
    security(("bearerAuth" = ["memories:read"])),
    params(SearchMemoriesQuery),
    responses(
        (status = 200, description = "Matching memories: `score` desc, then `scoring` desc, `created_at` desc, `id` desc; `[]` when nothing matches", body = [MemorySearchHit],
            headers(("X-Search-Mode" = String, description = "`lexical` (full-text ranking) or `hybrid` (full-text fused with semantic similarity)"))),
        (status = 400, description = "Invalid category: <value>", body = ErrorResponse),
        (status = 422, description = "Validation error: query is required; query cannot be empty; Validation error: query must be at most 500 characters", body = ErrorResponse),
    ))]
#[instrument(skip_all)]
pub async fn search_memories(
    State(state): State<AppState>,
    auth: Authorized<scopes::MemoriesRead>,
    ApiQuery(query): ApiQuery<SearchMemoriesQuery>,
) -> ApiResult<impl IntoResponse> {
    let (text, lexical) = search_query(query.query.as_deref())?;
    let categories = categories_filter(query.categories.as_deref())?;
    let page = params::page(
        query.limit,
        query.offset,
        SEARCH_DEFAULT_LIMIT,
        SEARCH_MAX_LIMIT,
    );
    let found = state
        .retrieval
        .memories(
            &*state.store,
            &auth.user_id,
            &text,
            &lexical,
            &categories,
            page,
        )
        .await?;
    let hits: Vec<MemorySearchHit> = found
        .hits
        .into_iter()
        .map(|hit| MemorySearchHit {
            memory: hit.item,
            score: hit.score,
        })
        .collect();
    Ok((search_mode(found.mode), Json(hits)))
}

/// Search the user's memories by meaning (upstream's vector route): the same hybrid ranking as
/// `/memories/search`, by full text alone (and said so in `X-Search-Mode`) while no embeddings
/// endpoint is configured or answering.
#[utoipa::path(get, path = "/v1/dev/user/memories/vector/search", tag = "Memories",
    security(("bearerAuth" = ["memories:read"])),
    params(VectorSearchMemoriesQuery),
    responses(
        (status = 200, description = "Matching memories, `relevance_score` desc", body = VectorSearchResponse,
            headers(("X-Search-Mode" = String, description = "`lexical` (full-text ranking) or `hybrid` (full-text fused with semantic similarity)"))),
        (status = 422, description = "Validation error: query is required; query cannot be empty; Validation error: query must be at most 500 characters", body = ErrorResponse),
    ))]
#[instrument(skip_all)]
pub async fn vector_search_memories(
    State(state): State<AppState>,
    auth: Authorized<scopes::MemoriesRead>,
    ApiQuery(query): ApiQuery<VectorSearchMemoriesQuery>,
) -> ApiResult<impl IntoResponse> {
    let (text, lexical) = search_query(query.query.as_deref())?;
    let page = params::page(query.limit, None, SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT);
    let found = state
        .retrieval
        .memories(&*state.store, &auth.user_id, &text, &lexical, &[], page)
        .await?;
    let items: Vec<VectorSearchItem> = found
        .hits
        .into_iter()
        .map(|hit| VectorSearchItem {
            memory: hit.item,
            relevance_score: hit.score,
        })
        .collect();
    Ok((
        search_mode(found.mode),
        Json(VectorSearchResponse {
            returned_count: items.len(),
            items,
            archive_default_visible: false,
            policy: VectorSearchPolicy {
                consumer: "developer_api".to_string(),
                app_has_default_memory_grant: true,
                archive_capability: false,
                raw_provenance_capability: false,
            },
        }),
    ))
}

/// One memory.
#[utoipa::path(get, path = "/v1/dev/user/memories/{id}", tag = "Memories",
    security(("bearerAuth" = ["memories:read"])),
    params(("id" = String, Path, description = "The memory's id")),
    responses(
        (status = 200, description = "The memory", body = Memory),
        (status = 404, description = "Memory not found", body = ErrorResponse),
    ))]
#[instrument(skip_all)]
pub async fn get_memory(
    State(state): State<AppState>,
    auth: Authorized<scopes::MemoriesRead>,
    Path(memory_id): Path<String>,
) -> ApiResult<Json<Memory>> {
    require_plausible(&memory_id)?;
    state
        .store
        .get_memory(&auth.user_id, &memory_id)
        .await?
        .map(Json)
        .ok_or_else(memory_not_found)
}

/// Create a memory, or update the one with the same content.
#[utoipa::path(post, path = "/v1/dev/user/memories", tag = "Memories",
    security(("bearerAuth" = ["memories:write"])),
    request_body = CreateMemoryRequest,
    responses(
        (status = 200, description = "The memory created or updated", body = Memory),
        (status = 422, description = "content cannot be empty; visibility must be 'public' or 'private'; or a `Validation error: ...`", body = ErrorResponse),
    ))]
#[instrument(skip_all)]
pub async fn create_memory(
    State(state): State<AppState>,
    auth: Authorized<scopes::MemoriesWrite>,
    ApiJson(body): ApiJson<CreateMemoryRequest>,
) -> ApiResult<Json<Memory>> {
    let request = new_memory(body, "", CONTENT_EMPTY)?;
    let saved = state
        .store
        .save_memories(&auth.user_id, vec![request], now())
        .await?;
    saved
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a saved memory was not returned")))
}

/// Create up to 25 memories in one all-or-nothing request.
#[utoipa::path(post, path = "/v1/dev/user/memories/batch", tag = "Memories",
    security(("bearerAuth" = ["memories:write"])),
    request_body = CreateMemoriesBatchRequest,
    responses(
        (status = 200, description = "The memories created or updated", body = MemoriesBatchResponse),
        (status = 422, description = "Maximum 25 memories per batch request; All memories must have non-empty content; or a `Validation error: memories[i]...`", body = ErrorResponse),
    ))]
#[instrument(skip_all)]
pub async fn create_memories_batch(
    State(state): State<AppState>,
    auth: Authorized<scopes::MemoriesWrite>,
    ApiJson(body): ApiJson<CreateMemoriesBatchRequest>,
) -> ApiResult<Json<MemoriesBatchResponse>> {
    if body.memories.len() > MAX_BATCH {
        return Err(ApiError::unprocessable(BATCH_TOO_LARGE));
    }
    let requests = body
        .memories
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let at = format!("memories[{index}]");
            new_memory(parse_json_element(item, &at)?, &at, BATCH_CONTENT_EMPTY)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let memories = if requests.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .save_memories(&auth.user_id, collapse_same_content(requests), now())
            .await?
    };
    Ok(Json(MemoriesBatchResponse {
        created_count: memories.len(),
        memories,
    }))
}

/// Change a memory's content, category, visibility or tags; all fields are checked before any
/// is written.
#[utoipa::path(patch, path = "/v1/dev/user/memories/{id}", tag = "Memories",
    security(("bearerAuth" = ["memories:write"])),
    params(("id" = String, Path, description = "The memory's id")),
    request_body = UpdateMemoryRequest,
    responses(
        (status = 200, description = "The updated memory", body = Memory),
        (status = 404, description = "Memory not found", body = ErrorResponse),
        (status = 422, description = "No field given, a null field, or an invalid value", body = ErrorResponse),
    ))]
#[instrument(skip_all)]
pub async fn update_memory(
    State(state): State<AppState>,
    auth: Authorized<scopes::MemoriesWrite>,
    Path(memory_id): Path<String>,
    ApiJson(body): ApiJson<UpdateMemoryRequest>,
) -> ApiResult<Json<Memory>> {
    let changes = memory_changes(body)?;
    require_plausible(&memory_id)?;
    state
        .store
        .update_memory(&auth.user_id, &memory_id, changes, now())
        .await?
        .map(Json)
        .ok_or_else(memory_not_found)
}

/// Delete a memory.
#[utoipa::path(delete, path = "/v1/dev/user/memories/{id}", tag = "Memories",
    security(("bearerAuth" = ["memories:write"])),
    params(("id" = String, Path, description = "The memory's id")),
    responses(
        (status = 200, description = "Deleted", body = SuccessResponse),
        (status = 404, description = "Memory not found", body = ErrorResponse),
    ))]
#[instrument(skip_all)]
pub async fn delete_memory(
    State(state): State<AppState>,
    auth: Authorized<scopes::MemoriesWrite>,
    Path(memory_id): Path<String>,
) -> ApiResult<Json<SuccessResponse>> {
    require_plausible(&memory_id)?;
    if state.store.delete_memory(&auth.user_id, &memory_id).await? {
        Ok(SuccessResponse::done())
    } else {
        Err(memory_not_found())
    }
}

fn memory_not_found() -> ApiError {
    ApiError::not_found("Memory")
}

/// An id that cannot name a memory answers the 404 without a query.
fn require_plausible(memory_id: &str) -> ApiResult<()> {
    if is_plausible_id(memory_id) {
        Ok(())
    } else {
        Err(memory_not_found())
    }
}

/// The `categories` filter: entries are trimmed and empty ones ignored.
fn categories_filter(list: Option<&str>) -> ApiResult<Vec<MemoryCategory>> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            MemoryCategory::parse(name)
                .ok_or_else(|| ApiError::bad_request(format!("Invalid category: {name}")))
        })
        .collect()
}

/// Checks a create request: a blank content first (`blank` is the route's exact string), then
/// the bounds. `at` is the item's place in the body (`memories[3]`), empty for a lone memory.
fn new_memory(request: CreateMemoryRequest, at: &str, blank: &'static str) -> ApiResult<NewMemory> {
    let field_error = |error| describe_field_error(error, at, blank);
    let content = memory_content(&request.content).map_err(field_error)?;
    let category = request
        .category
        .map(|name| category_named(&name, at))
        .transpose()?;
    let visibility = request.visibility.map(visibility_from).transpose()?;
    let tags = request
        .tags
        .map(memory_tags)
        .transpose()
        .map_err(field_error)?;
    Ok(NewMemory {
        content,
        category,
        visibility,
        tags,
    })
}

/// Checks a PATCH: something to change, no `null`, then each value as on create.
fn memory_changes(body: UpdateMemoryRequest) -> ApiResult<MemoryChanges> {
    let fields = [
        (
            "content",
            body.content.is_absent(),
            body.content == Patch::Null,
        ),
        (
            "category",
            body.category.is_absent(),
            body.category == Patch::Null,
        ),
        (
            "visibility",
            body.visibility.is_absent(),
            body.visibility == Patch::Null,
        ),
        ("tags", body.tags.is_absent(), body.tags == Patch::Null),
    ];
    if fields.iter().all(|(_, absent, _)| *absent) {
        return Err(ApiError::unprocessable(NOTHING_TO_UPDATE));
    }
    if let Some((name, _, _)) = fields.iter().find(|(_, _, null)| *null) {
        return Err(cannot_be_null(name));
    }
    let field_error = |error| describe_field_error(error, "", CONTENT_EMPTY);
    Ok(MemoryChanges {
        content: patch_value(body.content)
            .map(|content| memory_content(&content))
            .transpose()
            .map_err(field_error)?,
        category: patch_value(body.category)
            .map(|name| category_named(&name, ""))
            .transpose()?,
        visibility: patch_value(body.visibility)
            .map(visibility_from)
            .transpose()?,
        tags: patch_value(body.tags)
            .map(memory_tags)
            .transpose()
            .map_err(field_error)?,
    })
}

fn patch_value<T>(patch: Patch<T>) -> Option<T> {
    match patch {
        Patch::Value(value) => Some(value),
        Patch::Absent | Patch::Null => None,
    }
}

/// `memories[3].content` in a batch, `content` alone.
fn field_at(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_string()
    } else {
        format!("{at}.{field}")
    }
}

fn describe_field_error(error: MemoryFieldError, at: &str, blank: &'static str) -> ApiError {
    let content = field_at(at, "content");
    let tags = field_at(at, "tags");
    match error {
        MemoryFieldError::EmptyContent => ApiError::unprocessable(blank),
        MemoryFieldError::ContentTooLong => ApiError::validation(format!(
            "{content} must be at most {MAX_CONTENT_CHARS} characters"
        )),
        MemoryFieldError::TooManyTags => {
            ApiError::validation(format!("{tags} must have at most {MAX_TAGS} items"))
        }
        MemoryFieldError::EmptyTag(index) => {
            ApiError::validation(format!("{tags}[{index}] cannot be empty"))
        }
        MemoryFieldError::TagTooLong(index) => ApiError::validation(format!(
            "{tags}[{index}] must be at most {MAX_TAG_CHARS} characters"
        )),
    }
}

/// Any of the 14 accepted categories; anything else is a 422 listing them.
fn category_named(name: &str, at: &str) -> ApiResult<MemoryCategory> {
    MemoryCategory::parse(name).ok_or_else(|| {
        let accepted: Vec<String> = MemoryCategory::ALL
            .iter()
            .map(|category| format!("'{}'", category.as_str()))
            .collect();
        ApiError::validation(format!(
            "{} must be one of {}",
            field_at(at, "category"),
            accepted.join(", ")
        ))
    })
}

/// Any value but the two strings (another string, a number, a list) gets the contract's message.
fn visibility_from(value: Value) -> ApiResult<Visibility> {
    value
        .as_str()
        .and_then(Visibility::parse)
        .ok_or_else(|| ApiError::unprocessable(VISIBILITY_INVALID))
}
