//! Folders (API.md §6): read-only; the three system folders appear with the first kept
//! conversation.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, scopes};
use crate::domain::folders::Folder;
use crate::error::ApiResult;
use crate::routes::{ApiRouter, Guards};
use crate::state::AppState;

pub fn router(guards: &Guards) -> ApiRouter {
    OpenApiRouter::new().routes(guards.developer(routes!(list_folders)))
}

/// The user's folders by `order`, each with its live count of kept conversations.
#[utoipa::path(get, path = "/v1/dev/user/folders", tag = "Folders",
    operation_id = "listFolders",
    security(("bearerAuth" = ["conversations:read"])),
    responses((status = 200, description = "The folders; empty before the first kept conversation", body = [Folder])))]
pub async fn list_folders(
    State(state): State<AppState>,
    auth: Authorized<scopes::ConversationsRead>,
) -> ApiResult<Json<Vec<Folder>>> {
    Ok(Json(state.store.list_folders(&auth.user_id).await?))
}
