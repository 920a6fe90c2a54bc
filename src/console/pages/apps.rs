//! Connected apps: the OAuth grants a user approved, and disconnecting one (which revokes every
//! token it holds at once).

use axum::extract::{Path, Query, State};

use crate::console::form::CsrfForm;
use crate::console::pages::{Notice, PageResult, redirect_with};
use crate::console::session::Session;
use crate::console::view::{ConsoleError, page};
use crate::state::AppState;
use minijinja::context;

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(notice): Query<Notice>,
) -> PageResult {
    let grants = state.store.list_oauth_grants(&session.user.id).await?;
    page(
        &session,
        "apps",
        "apps.html",
        context! { grants, notice => notice.text() },
    )
}

pub async fn disconnect(
    State(state): State<AppState>,
    Path(grant_id): Path<String>,
    CsrfForm { session, .. }: CsrfForm,
) -> PageResult {
    if !state
        .store
        .delete_oauth_grant(&session.user.id, &grant_id)
        .await?
    {
        return Err(ConsoleError::NotFound);
    }
    Ok(redirect_with("/console/apps", "app-disconnected"))
}
