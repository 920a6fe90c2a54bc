//! Action items: open or done, complete or reopen, set or clear the due date.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use minijinja::context;
use serde::Deserialize;

use crate::console::form::CsrfForm;
use crate::console::pages::{Notice, PageResult, date_field};
use crate::console::session::Session;
use crate::console::view::{ConsoleError, page};
use crate::domain::action_items::{ActionItemChanges, ActionItemFilter};
use crate::domain::ids::is_plausible_id;
use crate::domain::paging::Page;
use crate::domain::patch::Patch;
use crate::domain::time;
use crate::state::AppState;

const PAGE_SIZE: i64 = 100;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    show: Option<String>,
    notice: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let done = query.show.as_deref() == Some("done");
    let filter = ActionItemFilter {
        completed: Some(done),
        ..ActionItemFilter::default()
    };
    let items = state
        .store
        .list_action_items(
            &session.user.id,
            filter,
            Page {
                limit: PAGE_SIZE,
                offset: 0,
            },
        )
        .await?;
    let notice = Notice {
        notice: query.notice,
    };
    page(
        &session,
        "action-items",
        "action_items.html",
        context! { items, done, notice => notice.text() },
    )
}

/// One form per change: `action=complete`, `reopen`, or `due` with a `due` date (empty clears).
pub async fn update(
    State(state): State<AppState>,
    Path(item_id): Path<String>,
    CsrfForm { session, form }: CsrfForm,
) -> PageResult {
    let changes = match form.get("action") {
        Some("complete") => ActionItemChanges {
            description: None,
            completed: Some(true),
            due_at: Patch::Absent,
        },
        Some("reopen") => ActionItemChanges {
            description: None,
            completed: Some(false),
            due_at: Patch::Absent,
        },
        Some("due") => ActionItemChanges {
            description: None,
            completed: None,
            // A day picked in the form is due at its start, in UTC.
            due_at: match date_field(form.get("due"))? {
                Some(day) => Patch::Value(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
                None => Patch::Null,
            },
        },
        _ => return Err(ConsoleError::Invalid("Unknown change.".into())),
    };
    if !is_plausible_id(&item_id)
        || state
            .store
            .update_action_item(&session.user.id, &item_id, changes, time::now())
            .await?
            .is_none()
    {
        return Err(ConsoleError::NotFound);
    }
    let back = if form.get("show") == Some("done") {
        "/console/action-items?show=done&notice=item-saved".to_string()
    } else {
        "/console/action-items?notice=item-saved".to_string()
    };
    Ok(Redirect::to(&back).into_response())
}
