//! Goals (API.md §7, §13.F): qualitative or measured, with a lifecycle status and a daily
//! history of their value. Upstream's older flat metric shape is still accepted.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, scopes};
use crate::domain::feed::FeedPosition;
use crate::domain::goals::{
    Goal, GoalChanges, GoalFieldError, GoalMetric, GoalProgress, GoalSource, GoalStatus, GoalType,
    MAX_CRITERIA, MAX_CRITERION_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, MAX_UNIT_CHARS, NewGoal,
    history_start, is_goal_id, parse_desired_outcome, parse_success_criteria, parse_title,
    parse_unit, parse_why_it_matters,
};
use crate::domain::patch::Patch;
use crate::domain::time::{self, Timestamp, parse_datetime};
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::feed;
use crate::routes::params::{self, QueryInt, clamp};
use crate::routes::params::{QueryBool, QueryFloat};
use crate::routes::{ApiRouter, Guards};
use crate::routes::{SuccessResponse, cannot_be_null};
use crate::state::AppState;
use crate::store::StoreError;

const RESOURCE: &str = "Goal";
const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 1000;
const DEFAULT_HISTORY_DAYS: i64 = 30;
const MAX_HISTORY_DAYS: i64 = 365;
/// A fresh random id clashes with one of the user's goals about once in 10^14 creations; a few
/// draws make a failure practically impossible without looping forever on a broken store.
const ID_ATTEMPTS: usize = 3;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new()
        .routes(guards.developer(routes!(list_goals, create_goal)))
        .routes(guards.developer(routes!(get_goal, update_goal, delete_goal)))
        .routes(guards.developer(routes!(update_goal_progress)))
        .routes(guards.developer(routes!(goal_history)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListGoalsQuery {
    /// Page size, 1..1000 (default 10); values out of range are clamped.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
    /// Goals to skip (default 0); negative values count as 0.
    #[param(value_type = Option<i64>)]
    pub offset: Option<QueryInt>,
    /// Include deactivated goals (default false); the order is then newest first.
    #[param(value_type = Option<bool>)]
    pub include_inactive: Option<QueryBool>,
    /// Change feed: only goals changed at or after this RFC 3339 date-time (inclusive), in
    /// `(updated_at, id)` order, ended ones included; `offset` and `include_inactive` are ignored. The next page is announced in `X-Next-Cursor` and `Link`
    /// (both absent on the last page).
    pub updated_since: Option<String>,
    /// Change feed: the `X-Next-Cursor` of the previous page (opaque; an unreadable one is a 400).
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
    /// The goal's new current value.
    #[param(value_type = f64)]
    pub current_value: QueryFloat,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Days to cover, today included: 1..365 (default 30); values out of range are clamped.
    #[param(value_type = Option<i64>)]
    pub days: Option<QueryInt>,
}

/// A date-time field of a goal (`horizon_at`).
fn parse_horizon(raw: &str) -> ApiResult<Timestamp> {
    parse_datetime(raw).ok_or_else(|| {
        ApiError::validation(
            "horizon_at must be an RFC 3339 date-time such as 2026-12-31T00:00:00Z",
        )
    })
}

/// A status a request may set: `focused` only through the app's focus list upstream, so never
/// here; on creation only `background` or `paused`.
fn settable_status(status: GoalStatus, creating: bool) -> ApiResult<GoalStatus> {
    match status {
        GoalStatus::Focused => Err(ApiError::validation(if creating {
            "status focused must be set after creation"
        } else {
            "status focused cannot be set through this API"
        })),
        GoalStatus::Achieved | GoalStatus::Abandoned if creating => Err(ApiError::validation(
            "status must be background or paused when a goal is created",
        )),
        other => Ok(other),
    }
}

/// The canonical metric object (an omi-server addition on create).
#[derive(Debug, Deserialize, ToSchema)]
pub struct MetricRequest {
    #[serde(rename = "type", default)]
    pub metric_type: Option<GoalType>,
    #[serde(default)]
    pub current: Option<f64>,
    #[serde(default)]
    pub target: Option<f64>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub unit: Option<String>,
}

/// Upstream's `CreateGoalRequest`: only `title` is required. A metric exists when `target_value`
/// or `goal_type` is given (or the `metric` object, which wins over the flat fields).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateGoal {
    /// 1..500 characters after trimming.
    pub title: String,
    /// At most 2000 characters; defaults to the title.
    #[serde(default)]
    pub desired_outcome: Option<String>,
    /// Legacy name of `desired_outcome`, used only when that is absent.
    #[serde(default)]
    pub description: Option<String>,
    /// At most 2000 characters.
    #[serde(default)]
    pub why_it_matters: Option<String>,
    /// Up to 20 items; blank items are dropped.
    #[serde(default)]
    pub success_criteria: Option<Vec<String>>,
    /// RFC 3339 date-time.
    #[serde(default)]
    pub horizon_at: Option<String>,
    /// `background` (default) or `paused`.
    #[serde(default)]
    pub status: Option<GoalStatus>,
    /// `user` (default), `ai_suggested` or `imported`.
    #[serde(default)]
    pub source: Option<GoalSource>,
    #[serde(default, deserialize_with = "crate::domain::wire::optional_object")]
    pub metric: Option<MetricRequest>,
    /// `boolean`, `scale` (the default of a metric) or `numeric`.
    #[serde(default)]
    pub goal_type: Option<GoalType>,
    #[serde(default)]
    pub target_value: Option<f64>,
    /// Default 0.
    #[serde(default)]
    pub current_value: Option<f64>,
    #[serde(default)]
    pub min_value: Option<f64>,
    #[serde(default)]
    pub max_value: Option<f64>,
    /// At most 100 characters; blank means none.
    #[serde(default)]
    pub unit: Option<String>,
}

impl CreateGoal {
    fn into_new_goal(self) -> ApiResult<NewGoal> {
        let title = parse_title(&self.title)?;
        let desired_outcome = match self.desired_outcome.or(self.description) {
            Some(text) if !text.trim().is_empty() => parse_desired_outcome(&text)?,
            _ => title.clone(),
        };
        let unit = |raw: Option<String>| -> ApiResult<Option<String>> {
            Ok(raw.as_deref().map(parse_unit).transpose()?.flatten())
        };
        let metric = match self.metric {
            Some(metric) => Some(GoalMetric {
                metric_type: metric.metric_type.unwrap_or_default(),
                current: metric.current.unwrap_or(0.0),
                target: metric.target.unwrap_or(0.0),
                min: metric.min,
                max: metric.max,
                unit: unit(metric.unit)?,
            }),
            None if self.target_value.is_some() || self.goal_type.is_some() => Some(GoalMetric {
                metric_type: self.goal_type.unwrap_or_default(),
                current: self.current_value.unwrap_or(0.0),
                target: self.target_value.unwrap_or(0.0),
                min: self.min_value,
                max: self.max_value,
                unit: unit(self.unit)?,
            }),
            None => None,
        };
        Ok(NewGoal {
            title,
            desired_outcome,
            why_it_matters: self
                .why_it_matters
                .as_deref()
                .map(parse_why_it_matters)
                .transpose()?
                .flatten(),
            success_criteria: parse_success_criteria(&self.success_criteria.unwrap_or_default())?,
            horizon_at: self.horizon_at.as_deref().map(parse_horizon).transpose()?,
            status: settable_status(self.status.unwrap_or_default(), true)?,
            source: self.source.unwrap_or_default(),
            metric,
        })
    }
}

/// Any of the fields; `why_it_matters`, `horizon_at` and `unit` may be null to clear them, an
/// absent field is left alone. A metric value on a qualitative goal creates a metric.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateGoal {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub title: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub desired_outcome: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub why_it_matters: Patch<String>,
    /// `[]` clears.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub success_criteria: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub horizon_at: Patch<String>,
    /// `background`, `paused`, `achieved` or `abandoned` (the last two end the goal).
    #[serde(default)]
    #[schema(value_type = Option<GoalStatus>)]
    pub status: Patch<GoalStatus>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub target_value: Patch<f64>,
    /// Recorded as today's value in the history.
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub current_value: Patch<f64>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub min_value: Patch<f64>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub max_value: Patch<f64>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub unit: Patch<String>,
}

/// A field that may be absent or a value, never null (API.md §11.4).
fn required<T>(field: &str, patch: Patch<T>) -> ApiResult<Option<T>> {
    match patch {
        Patch::Absent => Ok(None),
        Patch::Null => Err(cannot_be_null(field)),
        Patch::Value(value) => Ok(Some(value)),
    }
}

impl UpdateGoal {
    /// Every field is checked before anything is written.
    fn into_changes(self) -> ApiResult<GoalChanges> {
        let untouched = self.title.is_absent()
            && self.desired_outcome.is_absent()
            && self.why_it_matters.is_absent()
            && self.success_criteria.is_absent()
            && self.horizon_at.is_absent()
            && self.status.is_absent()
            && self.target_value.is_absent()
            && self.current_value.is_absent()
            && self.min_value.is_absent()
            && self.max_value.is_absent()
            && self.unit.is_absent();
        if untouched {
            return Err(ApiError::unprocessable(
                "At least one field must be provided",
            ));
        }
        let title = required("title", self.title)?
            .map(|title| parse_title(&title))
            .transpose()?;
        let desired_outcome = required("desired_outcome", self.desired_outcome)?
            .map(|text| parse_desired_outcome(&text))
            .transpose()?;
        let why_it_matters = match self.why_it_matters {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(text) => match parse_why_it_matters(&text)? {
                Some(text) => Patch::Value(text),
                None => Patch::Null,
            },
        };
        let success_criteria = required("success_criteria", self.success_criteria)?
            .map(|criteria| parse_success_criteria(&criteria))
            .transpose()?;
        let horizon_at = match self.horizon_at {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(text) => Patch::Value(parse_horizon(&text)?),
        };
        let status = required("status", self.status)?
            .map(|status| settable_status(status, false))
            .transpose()?;
        let unit = match self.unit {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(text) => match parse_unit(&text)? {
                Some(unit) => Patch::Value(unit),
                None => Patch::Null,
            },
        };
        Ok(GoalChanges {
            title,
            desired_outcome,
            why_it_matters,
            success_criteria,
            horizon_at,
            status,
            target_value: required("target_value", self.target_value)?,
            current_value: required("current_value", self.current_value)?,
            min_value: required("min_value", self.min_value)?,
            max_value: required("max_value", self.max_value)?,
            unit,
            from_progress: false,
        })
    }
}

fn check_id(goal_id: &str) -> ApiResult<()> {
    if is_goal_id(goal_id) {
        Ok(())
    } else {
        Err(ApiError::not_found(RESOURCE))
    }
}

/// List goals: active ones oldest first, or with `include_inactive` every goal newest first.
#[utoipa::path(get, path = "/v1/dev/user/goals", tag = "Goals",
    operation_id = "listGoals",
    security(("bearerAuth" = ["goals:read"])),
    params(ListGoalsQuery),
    responses(
        (status = 200, description = "One page of goals; with `updated_since` or `cursor`, every goal by `updated_at` asc then `id` asc", body = [Goal],
            headers(("X-Next-Cursor" = String, description = "Change feed only: the `cursor` of the next page, absent on the last page"), ("Link" = String, description = "Change feed only: `<...>; rel=\"next\"`, the next page's URL"))),
        (status = 400, description = "Invalid cursor", body = ErrorResponse),
        (status = 422, description = "Validation error: updated_since must be an RFC 3339 date-time", body = ErrorResponse),
    ))]
pub async fn list_goals(
    State(state): State<AppState>,
    auth: Authorized<scopes::GoalsRead>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(query): ApiQuery<ListGoalsQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<Goal>>)> {
    let page = params::page(query.limit, query.offset, DEFAULT_LIMIT, MAX_LIMIT);
    if let Some(window) = feed::requested_window(
        query.updated_since.as_deref(),
        query.cursor.as_deref(),
        page.limit,
    )? {
        let changed = state.store.goals_changed(&auth.user_id, &window).await?;
        return Ok(feed::feed_response(&uri, changed, page.limit, |goal| {
            FeedPosition {
                at: goal.updated_at,
                id: goal.id.clone(),
            }
        }));
    }
    let include_inactive = query.include_inactive.is_some_and(|QueryBool(value)| value);
    let goals = state
        .store
        .list_goals(&auth.user_id, include_inactive, page)
        .await?;
    Ok((HeaderMap::new(), Json(goals)))
}

/// Get one goal.
#[utoipa::path(get, path = "/v1/dev/user/goals/{goal_id}", tag = "Goals",
    operation_id = "getGoal",
    security(("bearerAuth" = ["goals:read"])),
    params(("goal_id" = String, Path, description = "The goal's id")),
    responses(
        (status = 200, description = "The goal", body = Goal),
        (status = 404, description = "Goal not found", body = ErrorResponse),
    ))]
pub async fn get_goal(
    State(state): State<AppState>,
    auth: Authorized<scopes::GoalsRead>,
    Path(goal_id): Path<String>,
) -> ApiResult<Json<Goal>> {
    check_id(&goal_id)?;
    let goal = state
        .store
        .get_goal(&auth.user_id, &goal_id)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE))?;
    Ok(Json(goal))
}

/// Create a durable goal. Metrics are optional and other goals are never changed implicitly.
#[utoipa::path(post, path = "/v1/dev/user/goals", tag = "Goals",
    operation_id = "createGoal",
    security(("bearerAuth" = ["goals:write"])),
    request_body = CreateGoal,
    responses(
        (status = 200, description = "The created goal", body = Goal),
        (status = 422, description = "`title cannot be empty`, `Validation error: status focused must be set after creation`, an unknown goal type or status, or an out-of-range value", body = ErrorResponse),
    ))]
pub async fn create_goal(
    State(state): State<AppState>,
    auth: Authorized<scopes::GoalsWrite>,
    ApiJson(body): ApiJson<CreateGoal>,
) -> ApiResult<Json<Goal>> {
    let fields = body.into_new_goal()?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let goal = Goal::new(fields.clone(), time::now());
        match state.store.create_goal(&auth.user_id, goal.clone()).await {
            Ok(()) => return Ok(Json(goal)),
            Err(StoreError::Conflict(_)) if attempts < ID_ATTEMPTS => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

/// Update a goal's title, values or unit. A new `current_value` is recorded in the history.
#[utoipa::path(patch, path = "/v1/dev/user/goals/{goal_id}", tag = "Goals",
    operation_id = "updateGoal",
    security(("bearerAuth" = ["goals:write"])),
    params(("goal_id" = String, Path, description = "The goal's id")),
    request_body = UpdateGoal,
    responses(
        (status = 200, description = "The updated goal", body = Goal),
        (status = 404, description = "Goal not found", body = ErrorResponse),
        (status = 422, description = "`At least one field must be provided`, `title cannot be empty`, a null field other than unit, or an invalid value; nothing is changed", body = ErrorResponse),
    ))]
pub async fn update_goal(
    State(state): State<AppState>,
    auth: Authorized<scopes::GoalsWrite>,
    Path(goal_id): Path<String>,
    ApiJson(body): ApiJson<UpdateGoal>,
) -> ApiResult<Json<Goal>> {
    let changes = body.into_changes()?;
    check_id(&goal_id)?;
    apply_changes(&state, &auth.user_id, &goal_id, changes).await
}

/// Set a goal's current value and record it as today's value in the history.
#[utoipa::path(patch, path = "/v1/dev/user/goals/{goal_id}/progress", tag = "Goals",
    operation_id = "updateGoalProgress",
    security(("bearerAuth" = ["goals:write"])),
    params(("goal_id" = String, Path, description = "The goal's id"), ProgressQuery),
    responses(
        (status = 200, description = "The updated goal", body = Goal),
        (status = 404, description = "Goal not found", body = ErrorResponse),
    ))]
pub async fn update_goal_progress(
    State(state): State<AppState>,
    auth: Authorized<scopes::GoalsWrite>,
    Path(goal_id): Path<String>,
    ApiQuery(query): ApiQuery<ProgressQuery>,
) -> ApiResult<Json<Goal>> {
    check_id(&goal_id)?;
    let QueryFloat(current_value) = query.current_value;
    let changes = GoalChanges::progress(current_value);
    apply_changes(&state, &auth.user_id, &goal_id, changes).await
}

async fn apply_changes(
    state: &AppState,
    user_id: &str,
    goal_id: &str,
    changes: GoalChanges,
) -> ApiResult<Json<Goal>> {
    let goal = state
        .store
        .update_goal(user_id, goal_id, changes, time::now())
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE))?;
    Ok(Json(goal))
}

/// A goal's daily values over the last `days` days (today included), newest first.
#[utoipa::path(get, path = "/v1/dev/user/goals/{goal_id}/history", tag = "Goals",
    operation_id = "getGoalHistory",
    security(("bearerAuth" = ["goals:read"])),
    params(("goal_id" = String, Path, description = "The goal's id"), HistoryQuery),
    responses(
        (status = 200, description = "One entry per day with a recorded value, newest first", body = [GoalProgress]),
        (status = 404, description = "Goal not found", body = ErrorResponse),
    ))]
pub async fn goal_history(
    State(state): State<AppState>,
    auth: Authorized<scopes::GoalsRead>,
    Path(goal_id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Vec<GoalProgress>>> {
    check_id(&goal_id)?;
    let days = clamp(query.days, DEFAULT_HISTORY_DAYS, 1, MAX_HISTORY_DAYS);
    let since = history_start(time::now().date_naive(), days);
    let history = state
        .store
        .goal_history(&auth.user_id, &goal_id, since)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE))?;
    Ok(Json(history))
}

/// Abandon a goal (upstream's soft delete): `status: abandoned`, `is_active: false`, `ended_at`
/// set. It stays readable by id, with its history, and is listed with `include_inactive=true`.
#[utoipa::path(delete, path = "/v1/dev/user/goals/{goal_id}", tag = "Goals",
    operation_id = "deleteGoal",
    security(("bearerAuth" = ["goals:write"])),
    params(("goal_id" = String, Path, description = "The goal's id")),
    responses(
        (status = 200, description = "Abandoned", body = SuccessResponse),
        (status = 404, description = "Goal not found", body = ErrorResponse),
    ))]
pub async fn delete_goal(
    State(state): State<AppState>,
    auth: Authorized<scopes::GoalsWrite>,
    Path(goal_id): Path<String>,
) -> ApiResult<Json<SuccessResponse>> {
    check_id(&goal_id)?;
    if state
        .store
        .abandon_goal(&auth.user_id, &goal_id, time::now())
        .await?
    {
        Ok(SuccessResponse::done())
    } else {
        Err(ApiError::not_found(RESOURCE))
    }
}

/// The contract's wording for a refused goal field (API.md §7).
impl From<GoalFieldError> for ApiError {
    fn from(error: GoalFieldError) -> Self {
        match error {
            GoalFieldError::EmptyTitle => ApiError::unprocessable("title cannot be empty"),
            GoalFieldError::TitleTooLong => ApiError::validation(format!(
                "title must be at most {MAX_TITLE_CHARS} characters"
            )),
            GoalFieldError::UnitTooLong => {
                ApiError::validation(format!("unit must be at most {MAX_UNIT_CHARS} characters"))
            }
            GoalFieldError::EmptyDesiredOutcome => {
                ApiError::validation("desired_outcome cannot be empty")
            }
            GoalFieldError::DesiredOutcomeTooLong => ApiError::validation(format!(
                "desired_outcome must be at most {MAX_TEXT_CHARS} characters"
            )),
            GoalFieldError::WhyItMattersTooLong => ApiError::validation(format!(
                "why_it_matters must be at most {MAX_TEXT_CHARS} characters"
            )),
            GoalFieldError::TooManyCriteria => ApiError::validation(format!(
                "success_criteria must have at most {MAX_CRITERIA} items"
            )),
            GoalFieldError::CriterionTooLong => ApiError::validation(format!(
                "success_criteria items must be at most {MAX_CRITERION_CHARS} characters"
            )),
        }
    }
}
