//! The first page after sign-in: the limits and how each key was used, and replacing the
//! account token (which signs out every console session).

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use minijinja::{Value, context};

use crate::console::form::CsrfForm;
use crate::console::pages::PageResult;
use crate::console::pages::login::signed_out;
use crate::console::session::{Origin, Session};
use crate::console::view::{ConsoleError, page, public_page};
use crate::domain::credentials::generate_account_token;
use crate::service::keys;
use crate::state::AppState;

pub async fn show(State(state): State<AppState>, session: Session) -> PageResult {
    let keys = keys::list_keys(&*state.store, &session.user.id)
        .await
        .map_err(|error| ConsoleError::Internal(error.into()))?;
    let key_ids: Vec<String> = keys.iter().map(|key| key.id.clone()).collect();
    // Read without counting: looking at the page uses none of the quota it shows.
    let usage = state.limiter.usage(&session.user.id, &key_ids).await.ok();
    let minute_counts = usage.as_ref().and_then(|usage| usage.minute.clone());
    let keys: Vec<Value> = keys
        .into_iter()
        .enumerate()
        .map(|(index, key)| {
            let this_minute = minute_counts
                .as_ref()
                .and_then(|counts| counts.get(index).copied());
            context! { key, this_minute }
        })
        .collect();
    let settings = &state.settings;
    page(
        &session,
        "overview",
        "overview.html",
        context! {
            keys,
            usage_known => usage.is_some(),
            today => usage.as_ref().and_then(|usage| usage.day),
            per_minute => settings.rate_limit_per_minute,
            per_day => settings.rate_limit_per_day,
            failed_auth_per_minute => settings.failed_auth_per_minute,
        },
    )
}

/// A new account token, shown once; the old one stops working, and with it every console
/// session (this one included).
pub async fn replace_token(
    State(state): State<AppState>,
    origin: Origin,
    form: CsrfForm,
) -> PageResult {
    let token = generate_account_token();
    if !state
        .store
        .replace_account_token(&form.session.user.id, &token.hash)
        .await?
    {
        return Err(ConsoleError::NotFound);
    }
    let body = public_page("new_token.html", context! { token => token.raw.expose() })?;
    let mut response = signed_out(&origin, Html(body).into_response());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
