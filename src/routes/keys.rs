//! Developer key management (API.md §2.3, account token) and `GET /v1/dev/key` (§2.4).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AccountCaller, Caller};
use crate::domain::keys::{CreatedDevApiKey, DevApiKey, KeyFieldError, MAX_KEYS_PER_USER};
use crate::domain::scope::invalid_scopes_detail;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::ApiJson;
use crate::routes::{ApiRouter, Guards};
use crate::service::keys::{self, KeyError};
use crate::state::AppState;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new()
        .routes(guards.account(routes!(list_keys, create_key)))
        .routes(guards.account(routes!(rotate_key)))
        .routes(guards.account(routes!(delete_key)))
        .routes(guards.developer(routes!(current_key)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    /// A label for the key, 1..100 characters after trimming.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// Scopes to grant; absent or null grants the four `:read` scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// List the account's developer keys, newest first.
#[utoipa::path(get, path = "/v1/dev/keys", tag = "API Keys",
    security(("accountToken" = [])),
    responses((status = 200, description = "The keys, newest first", body = [DevApiKey])))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: AccountCaller,
) -> ApiResult<Json<Vec<DevApiKey>>> {
    Ok(Json(keys::list_keys(&*state.store, &caller.user.id).await?))
}

/// Create a developer key. The raw key is in the answer and cannot be shown again.
#[utoipa::path(post, path = "/v1/dev/keys", tag = "API Keys",
    security(("accountToken" = [])),
    request_body = CreateKeyRequest,
    responses(
        (status = 200, description = "The new key with its raw secret", body = CreatedDevApiKey),
        (status = 400, description = "An unknown scope", body = ErrorResponse),
        (status = 422, description = "Empty or too long name, or 100 keys already", body = ErrorResponse),
    ))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> ApiResult<Json<CreatedDevApiKey>> {
    let created = keys::create_key(
        &*state.store,
        &caller.user.id,
        &body.name,
        body.scopes.as_deref(),
    )
    .await?;
    Ok(Json(created))
}

/// Give a key a new secret; the old secret stops working at once.
#[utoipa::path(post, path = "/v1/dev/keys/{key_id}/rotate", tag = "API Keys",
    security(("accountToken" = [])),
    params(("key_id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key with its new raw secret", body = CreatedDevApiKey),
        (status = 404, description = "API key not found", body = ErrorResponse),
    ))]
pub async fn rotate_key(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(key_id): Path<String>,
) -> ApiResult<Json<CreatedDevApiKey>> {
    Ok(Json(
        keys::rotate_key(&*state.store, &caller.user.id, &key_id).await?,
    ))
}

/// Revoke a key; it stops working on the next request.
#[utoipa::path(delete, path = "/v1/dev/keys/{key_id}", tag = "API Keys",
    security(("accountToken" = [])),
    params(("key_id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "API key not found", body = ErrorResponse),
    ))]
pub async fn delete_key(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(key_id): Path<String>,
) -> ApiResult<StatusCode> {
    keys::revoke_key(&*state.store, &caller.user.id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The calling key: lets a client check which key and scopes it holds.
#[utoipa::path(get, path = "/v1/dev/key", tag = "API Keys",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The calling key", body = DevApiKey)))]
pub async fn current_key(caller: Caller) -> Json<DevApiKey> {
    Json(caller.key)
}

/// The contract's answer for each way a key operation fails (API.md §2.3).
impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Field(KeyFieldError::EmptyName) => {
                ApiError::unprocessable("Key name cannot be empty")
            }
            KeyError::Field(KeyFieldError::NameTooLong) => ApiError::validation(format!(
                "name must be at most {} characters",
                crate::domain::keys::MAX_KEY_NAME_CHARS
            )),
            KeyError::Field(KeyFieldError::UnknownScope) => {
                ApiError::bad_request(invalid_scopes_detail())
            }
            KeyError::LimitReached => {
                ApiError::unprocessable(format!("Maximum {MAX_KEYS_PER_USER} API keys per user"))
            }
            KeyError::NotFound => ApiError::not_found("API key"),
            KeyError::Store(error) => error.into(),
        }
    }
}
