//! Outbound webhook subscriptions, their delivery log, redelivery and a signed test ping
//! (scopes `webhooks:read` / `webhooks:write`). Deliveries are signed per the Standard
//! Webhooks specification; see the README for verification.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, scopes};
use crate::domain::ids::is_plausible_id;
use crate::domain::time;
use crate::domain::webhooks::{
    Delivery, MAX_SUBSCRIPTIONS_PER_USER, MAX_URL_CHARS, Subscription, SubscriptionFilters,
    WebhookFieldError, invalid_events_detail,
};
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::params::{self, QueryInt};
use crate::routes::{ApiRouter, Guards, SuccessResponse, cannot_be_null};
use crate::service::webhooks::{
    self as service, SubscriptionPatch, SubscriptionRequest, WebhookError, WithSecret,
};
use crate::state::AppState;

const RESOURCE: &str = "Webhook";
const DELIVERY: &str = "Delivery";
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new()
        .routes(guards.developer(routes!(list_webhooks, create_webhook)))
        .routes(guards.developer(routes!(get_webhook, update_webhook, delete_webhook)))
        .routes(guards.developer(routes!(rotate_secret)))
        .routes(guards.developer(routes!(list_deliveries)))
        .routes(guards.developer(routes!(redeliver)))
        .routes(guards.developer(routes!(send_test)))
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Field(field) => field_error(field),
            WebhookError::LimitReached => ApiError::unprocessable(format!(
                "Maximum {MAX_SUBSCRIPTIONS_PER_USER} webhooks per user"
            )),
            WebhookError::NotFound => ApiError::not_found(RESOURCE),
            WebhookError::Store(error) => error.into(),
        }
    }
}

fn field_error(error: WebhookFieldError) -> ApiError {
    match error {
        WebhookFieldError::UrlInvalid => ApiError::validation("url must be an absolute URL"),
        WebhookFieldError::UrlScheme => ApiError::validation("url must be an http or https URL"),
        WebhookFieldError::UrlTooLong => {
            ApiError::validation(format!("url must be at most {MAX_URL_CHARS} characters"))
        }
        WebhookFieldError::EventsEmpty => ApiError::validation("events must not be empty"),
        WebhookFieldError::EventUnknown(_) => ApiError::unprocessable(invalid_events_detail()),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct FiltersRequest {
    /// Only conversations in this folder.
    #[serde(default)]
    pub folder_id: Option<String>,
    /// Only conversations (and memories) of this category.
    #[serde(default)]
    pub category: Option<String>,
    /// Only conversations from this source.
    #[serde(default)]
    pub source: Option<String>,
}

impl From<FiltersRequest> for SubscriptionFilters {
    fn from(request: FiltersRequest) -> Self {
        SubscriptionFilters {
            folder_id: request.folder_id,
            category: request.category,
            source: request.source,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateWebhookRequest {
    /// `http(s)` URL; `uid=<user id>` is added to its query on every delivery.
    pub url: String,
    /// Event types, e.g. `["conversation.created", "memory.created"]`.
    pub events: Vec<String>,
    #[serde(default, deserialize_with = "crate::domain::wire::optional_object")]
    pub filters: Option<FiltersRequest>,
    /// Default `true`.
    #[serde(default)]
    pub active: Option<bool>,
}

/// A PATCH: absent fields are kept; `filters` replaces all filters.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateWebhookRequest {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub url: crate::domain::patch::Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub events: crate::domain::patch::Patch<Vec<String>>,
    #[serde(default, deserialize_with = "crate::domain::wire::optional_object")]
    pub filters: Option<FiltersRequest>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub active: crate::domain::patch::Patch<bool>,
}

/// A subscription with its signing secret: shown on creation and rotation only.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Subscription,
    /// `whsec_…`: verify `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

impl From<WithSecret> for WebhookWithSecret {
    fn from(value: WithSecret) -> Self {
        WebhookWithSecret {
            webhook: value.subscription,
            secret: value.secret.expose().to_string(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Page size, 1..200 (default 50); values out of range are clamped.
    #[param(value_type = Option<i64>)]
    pub limit: Option<QueryInt>,
    /// Deliveries to skip (default 0).
    #[param(value_type = Option<i64>)]
    pub offset: Option<QueryInt>,
}

fn check_id(id: &str) -> ApiResult<()> {
    if is_plausible_id(id) {
        Ok(())
    } else {
        Err(ApiError::not_found(RESOURCE))
    }
}

/// List the caller's webhook subscriptions (oldest first).
#[utoipa::path(get, path = "/v1/dev/user/webhooks", tag = "Webhooks",
    operation_id = "listWebhooks",
    security(("bearerAuth" = ["webhooks:read"])),
    responses((status = 200, description = "The subscriptions", body = [Subscription])))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    auth: Authorized<scopes::WebhooksRead>,
) -> ApiResult<Json<Vec<Subscription>>> {
    Ok(Json(state.store.list_subscriptions(&auth.user_id).await?))
}

/// Subscribe a URL to events; the signing secret is in this answer only.
#[utoipa::path(post, path = "/v1/dev/user/webhooks", tag = "Webhooks",
    operation_id = "createWebhook",
    security(("bearerAuth" = ["webhooks:write"])),
    request_body = CreateWebhookRequest,
    responses(
        (status = 200, description = "The subscription with its secret", body = WebhookWithSecret),
        (status = 422, description = "Invalid URL or events, or 20 subscriptions already", body = ErrorResponse),
    ))]
pub async fn create_webhook(
    State(state): State<AppState>,
    auth: Authorized<scopes::WebhooksWrite>,
    ApiJson(body): ApiJson<CreateWebhookRequest>,
) -> ApiResult<Json<WebhookWithSecret>> {
    let request = SubscriptionRequest {
        url: body.url,
        events: body.events,
        filters: body.filters.unwrap_or_default().into(),
        active: body.active.unwrap_or(true),
    };
    let created = service::create(&*state.store, &auth.user_id, request).await?;
    Ok(Json(created.into()))
}

/// Get one subscription.
#[utoipa::path(get, path = "/v1/dev/user/webhooks/{webhook_id}", tag = "Webhooks",
    operation_id = "getWebhook",
    security(("bearerAuth" = ["webhooks:read"])),
    params(("webhook_id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = Subscription),
        (status = 404, description = "Webhook not found", body = ErrorResponse),
    ))]
pub async fn get_webhook(
    State(state): State<AppState>,
    auth: Authorized<scopes::WebhooksRead>,
    Path(webhook_id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    check_id(&webhook_id)?;
    state
        .store
        .get_subscription(&auth.user_id, &webhook_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(RESOURCE))
}

/// Change a subscription's URL, events, filters or active flag. Turning it on again clears the
/// reason it was switched off.
#[utoipa::path(patch, path = "/v1/dev/user/webhooks/{webhook_id}", tag = "Webhooks",
    operation_id = "updateWebhook",
    security(("bearerAuth" = ["webhooks:write"])),
    params(("webhook_id" = String, Path, description = "The subscription's id")),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "The subscription", body = Subscription),
        (status = 404, description = "Webhook not found", body = ErrorResponse),
        (status = 422, description = "Invalid URL or events", body = ErrorResponse),
    ))]
pub async fn update_webhook(
    State(state): State<AppState>,
    auth: Authorized<scopes::WebhooksWrite>,
    Path(webhook_id): Path<String>,
    ApiJson(body): ApiJson<UpdateWebhookRequest>,
) -> ApiResult<Json<Subscription>> {
    use crate::domain::patch::Patch;
    check_id(&webhook_id)?;
    let value = |patch, field: &str| match patch {
        Patch::Absent => Ok(None),
        Patch::Null => Err(cannot_be_null(field)),
        Patch::Value(value) => Ok(Some(value)),
    };
    let patch = SubscriptionPatch {
        url: value(body.url, "url")?,
        events: match body.events {
            Patch::Absent => None,
            Patch::Null => return Err(cannot_be_null("events")),
            Patch::Value(events) => Some(events),
        },
        filters: body.filters.map(Into::into),
        active: match body.active {
            Patch::Absent => None,
            Patch::Null => return Err(cannot_be_null("active")),
            Patch::Value(active) => Some(active),
        },
    };
    Ok(Json(
        service::update(&*state.store, &auth.user_id, &webhook_id, patch).await?,
    ))
}

/// Delete a subscription and its delivery log.
#[utoipa::path(delete, path = "/v1/dev/user/webhooks/{webhook_id}", tag = "Webhooks",
    operation_id = "deleteWebhook",
    security(("bearerAuth" = ["webhooks:write"])),
    params(("webhook_id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Deleted", body = SuccessResponse),
        (status = 404, description = "Webhook not found", body = ErrorResponse),
    ))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    auth: Authorized<scopes::WebhooksWrite>,
    Path(webhook_id): Path<String>,
) -> ApiResult<Json<SuccessResponse>> {
    check_id(&webhook_id)?;
    if state
        .store
        .delete_subscription(&auth.user_id, &webhook_id)
        .await?
    {
        Ok(SuccessResponse::done())
    } else {
        Err(ApiError::not_found(RESOURCE))
    }
}

/// Replace the signing secret; the new one is in this answer only. Deliveries from now on are
/// signed with it, retries of earlier ones included.
#[utoipa::path(post, path = "/v1/dev/user/webhooks/{webhook_id}/rotate-secret", tag = "Webhooks",
    operation_id = "rotateWebhookSecret",
    security(("bearerAuth" = ["webhooks:write"])),
    params(("webhook_id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription with its new secret", body = WebhookWithSecret),
        (status = 404, description = "Webhook not found", body = ErrorResponse),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: Authorized<scopes::WebhooksWrite>,
    Path(webhook_id): Path<String>,
) -> ApiResult<Json<WebhookWithSecret>> {
    check_id(&webhook_id)?;
    let rotated = service::rotate_secret(&*state.store, &auth.user_id, &webhook_id).await?;
    Ok(Json(rotated.into()))
}

/// The delivery log, newest first: status, attempts, last response code and latency, next
/// attempt, last error, and the body (kept 7 days).
#[utoipa::path(get, path = "/v1/dev/user/webhooks/{webhook_id}/deliveries", tag = "Webhooks",
    operation_id = "listWebhookDeliveries",
    security(("bearerAuth" = ["webhooks:read"])),
    params(("webhook_id" = String, Path, description = "The subscription's id"), DeliveriesQuery),
    responses(
        (status = 200, description = "One page of deliveries", body = [Delivery]),
        (status = 404, description = "Webhook not found", body = ErrorResponse),
    ))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    auth: Authorized<scopes::WebhooksRead>,
    Path(webhook_id): Path<String>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<Vec<Delivery>>> {
    check_id(&webhook_id)?;
    let page = params::page(query.limit, query.offset, DEFAULT_LIMIT, MAX_LIMIT);
    state
        .store
        .list_deliveries(&auth.user_id, &webhook_id, page)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(RESOURCE))
}

/// Send a delivery again (same `webhook-id`, so receivers that deduplicate still do), as soon
/// as a worker is free. Its body must still be kept (7 days).
#[utoipa::path(post, path = "/v1/dev/user/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    tag = "Webhooks", operation_id = "redeliverWebhook",
    security(("bearerAuth" = ["webhooks:write"])),
    params(
        ("webhook_id" = String, Path, description = "The subscription's id"),
        ("delivery_id" = String, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 202, description = "Queued", body = Delivery),
        (status = 404, description = "Delivery not found", body = ErrorResponse),
    ))]
pub async fn redeliver(
    State(state): State<AppState>,
    auth: Authorized<scopes::WebhooksWrite>,
    Path((webhook_id, delivery_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    if !is_plausible_id(&webhook_id) || !is_plausible_id(&delivery_id) {
        return Err(ApiError::not_found(DELIVERY));
    }
    state
        .store
        .redeliver(&auth.user_id, &webhook_id, &delivery_id, time::now())
        .await?
        .map(|delivery| (StatusCode::ACCEPTED, Json(delivery)))
        .ok_or_else(|| ApiError::not_found(DELIVERY))
}

/// Queue a signed `ping` to the subscription (sent even when it is switched off); its outcome
/// shows in the delivery log.
#[utoipa::path(post, path = "/v1/dev/user/webhooks/{webhook_id}/test", tag = "Webhooks",
    operation_id = "testWebhook",
    security(("bearerAuth" = ["webhooks:write"])),
    params(("webhook_id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 202, description = "Queued", body = Delivery),
        (status = 404, description = "Webhook not found", body = ErrorResponse),
    ))]
pub async fn send_test(
    State(state): State<AppState>,
    auth: Authorized<scopes::WebhooksWrite>,
    Path(webhook_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    check_id(&webhook_id)?;
    state
        .store
        .enqueue_ping(&auth.user_id, &webhook_id, time::now())
        .await?
        .map(|delivery| (StatusCode::ACCEPTED, Json(delivery)))
        .ok_or_else(|| ApiError::not_found(RESOURCE))
}
