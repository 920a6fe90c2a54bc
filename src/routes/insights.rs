//! Daily summaries, people and the user's profile (API.md §13.C, §13.D).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, scopes};
use crate::domain::daily_summaries::{DailySummary, SummaryFilter, parse_day};
use crate::domain::ids::is_plausible_id;
use crate::domain::people::{NO_PROFILE_MESSAGE, Person, Profile};
use crate::domain::time;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::ApiQuery;
use crate::routes::params::{self, QueryInt};
use crate::routes::{ApiRouter, Guards};
use crate::service;
use crate::state::AppState;

const SUMMARY_RESOURCE: &str = "Daily summary";
pub const DEFAULT_SUMMARY_LIMIT: i64 = 30;
pub const MAX_SUMMARY_LIMIT: i64 = 100;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new()
        .routes(guards.developer(routes!(list_daily_summaries)))
        .routes(guards.developer(routes!(get_daily_summary)))
        .routes(guards.developer(routes!(list_people)))
        .routes(guards.developer(routes!(get_profile)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDailySummariesQuery {
    /// Summaries of this day (`YYYY-MM-DD`, the user-local day) or later.
    pub start_date: Option<String>,
    /// Summaries of this day (`YYYY-MM-DD`) or earlier.
    pub end_date: Option<String>,
    /// Page size, 1..100 (default 30); values out of range are clamped.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
    /// Summaries to skip (default 0); negative values count as 0.
    #[param(value_type = Option<i64>)]
    pub offset: Option<QueryInt>,
}

/// The `start_date`/`end_date` filter of the summary lists (REST and MCP).
pub fn summary_filter(
    start_date: Option<&str>,
    end_date: Option<&str>,
) -> Result<SummaryFilter, ApiError> {
    let day = |name: &str, raw: Option<&str>| {
        raw.map(|raw| {
            parse_day(raw)
                .ok_or_else(|| ApiError::validation(format!("{name} must be a date (YYYY-MM-DD)")))
        })
        .transpose()
    };
    Ok(SummaryFilter {
        start_date: day("start_date", start_date)?,
        end_date: day("end_date", end_date)?,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DailySummaryList {
    pub summaries: Vec<DailySummary>,
}

/// The user's daily summaries, newest day first.
#[utoipa::path(get, path = "/v1/dev/user/daily-summaries", tag = "Daily Summaries",
    operation_id = "getDeveloperDailySummaries",
    security(("bearerAuth" = ["conversations:read"])),
    params(ListDailySummariesQuery),
    responses(
        (status = 200, description = "One page of summaries, `date` desc", body = DailySummaryList),
        (status = 422, description = "`Validation error: start_date must be a date (YYYY-MM-DD)` (or end_date)", body = ErrorResponse),
    ))]
pub async fn list_daily_summaries(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
    ApiQuery(query): ApiQuery<ListDailySummariesQuery>,
) -> ApiResult<Json<DailySummaryList>> {
    let filter = summary_filter(query.start_date.as_deref(), query.end_date.as_deref())?;
    let page = params::page(
        query.limit,
        query.offset,
        DEFAULT_SUMMARY_LIMIT,
        MAX_SUMMARY_LIMIT,
    );
    let summaries = state
        .store
        .list_daily_summaries(&auth.user_id, filter, page)
        .await?;
    Ok(Json(DailySummaryList { summaries }))
}

/// One daily summary.
#[utoipa::path(get, path = "/v1/dev/user/daily-summaries/{summary_id}", tag = "Daily Summaries",
    operation_id = "getDeveloperDailySummary",
    security(("bearerAuth" = ["conversations:read"])),
    params(("summary_id" = String, Path, description = "The summary's id")),
    responses(
        (status = 200, description = "The summary", body = DailySummary),
        (status = 404, description = "Daily summary not found", body = ErrorResponse),
    ))]
pub async fn get_daily_summary(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
    Path(summary_id): Path<String>,
) -> ApiResult<Json<DailySummary>> {
    if !is_plausible_id(&summary_id) {
        return Err(ApiError::not_found(SUMMARY_RESOURCE));
    }
    state
        .store
        .get_daily_summary(&auth.user_id, &summary_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(SUMMARY_RESOURCE))
}

/// The people heard in the user's conversations: one per `person_id` of their transcripts.
#[utoipa::path(get, path = "/v1/dev/user/people", tag = "People",
    operation_id = "listPeople",
    security(("bearerAuth" = ["conversations:read"])),
    responses(
        (status = 200, description = "Every person, by name", body = [Person]),
    ))]
pub async fn list_people(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
) -> ApiResult<Json<Vec<Person>>> {
    Ok(Json(
        service::people::people(&*state.store, &auth.user_id).await?,
    ))
}

/// The answer for a user without a profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoProfile {
    /// Always null.
    #[schema(value_type = Option<Object>)]
    pub profile: Option<()>,
    /// `No profile has been generated for this user yet.`
    pub message: String,
}

/// A profile, or the answer that there is none yet.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ProfileAnswer {
    Profile(Profile),
    None(NoProfile),
}

impl ProfileAnswer {
    pub fn from_profile(profile: Option<Profile>) -> ProfileAnswer {
        match profile {
            Some(profile) => ProfileAnswer::Profile(profile),
            None => ProfileAnswer::None(NoProfile {
                profile: None,
                message: NO_PROFILE_MESSAGE.to_string(),
            }),
        }
    }
}

/// The user's profile, built from their top memories (rebuilt when they changed, at most
/// hourly).
#[utoipa::path(get, path = "/v1/dev/user/profile", tag = "Profile",
    operation_id = "getUserProfile",
    security(("bearerAuth" = ["memories:read"])),
    responses(
        (status = 200, description = "The profile, or `{\"profile\": null, \"message\": \"No profile has been generated for this user yet.\"}`", body = ProfileAnswer),
    ))]
pub async fn get_profile(
    State(state): State<AppState>,
    auth: Authorized<scopes::MemoriesRead>,
) -> ApiResult<Json<ProfileAnswer>> {
    let profile =
        service::people::profile(&*state.store, &*state.processor, &auth.user_id, time::now())
            .await?;
    Ok(Json(ProfileAnswer::from_profile(profile)))
}
