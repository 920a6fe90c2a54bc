//! Developer keys: create with chosen scopes (the key shown once), rotate, revoke.

use axum::extract::{Path, State};
use minijinja::{Value, context};

use crate::console::form::CsrfForm;
use crate::console::pages::{Notice, PageResult, redirect_with};
use crate::console::session::Session;
use crate::console::view::{ConsoleError, page};
use crate::domain::keys::{CreatedDevApiKey, KeyFieldError, MAX_KEYS_PER_USER};
use crate::domain::scope::{Scope, ScopeSet};
use crate::service::keys::{self, KeyError};
use crate::state::AppState;

impl From<KeyError> for ConsoleError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Field(KeyFieldError::EmptyName) => {
                ConsoleError::Invalid("Give the key a name.".into())
            }
            KeyError::Field(KeyFieldError::NameTooLong) => {
                ConsoleError::Invalid("A key name has at most 100 characters.".into())
            }
            KeyError::Field(KeyFieldError::UnknownScope) => {
                ConsoleError::Invalid("One of the scopes is not one this server knows.".into())
            }
            KeyError::LimitReached => ConsoleError::Invalid(format!(
                "You already have {MAX_KEYS_PER_USER} keys: revoke one first."
            )),
            KeyError::NotFound => ConsoleError::NotFound,
            KeyError::Store(error) => ConsoleError::Store(error),
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Query(notice): axum::extract::Query<Notice>,
) -> PageResult {
    render(&state, &session, None, notice.text()).await
}

pub async fn create(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm,
) -> PageResult {
    let scopes = form.all("scope");
    if scopes.is_empty() {
        return Err(ConsoleError::Invalid("Pick at least one scope.".into()));
    }
    let created = keys::create_key(
        &*state.store,
        &session.user.id,
        form.get("name").unwrap_or_default(),
        Some(&scopes),
    )
    .await?;
    render(&state, &session, Some(created), None).await
}

pub async fn rotate(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    CsrfForm { session, .. }: CsrfForm,
) -> PageResult {
    let rotated = keys::rotate_key(&*state.store, &session.user.id, &key_id).await?;
    render(&state, &session, Some(rotated), None).await
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    CsrfForm { session, .. }: CsrfForm,
) -> PageResult {
    keys::revoke_key(&*state.store, &session.user.id, &key_id).await?;
    Ok(redirect_with("/console/keys", "key-revoked"))
}

/// The key list, with a just-made key's secret when there is one: the only time it is shown.
async fn render(
    state: &AppState,
    session: &Session,
    new_key: Option<CreatedDevApiKey>,
    notice: Option<&str>,
) -> PageResult {
    let keys = keys::list_keys(&*state.store, &session.user.id).await?;
    let defaults = ScopeSet::default_read_only();
    let scopes: Vec<Value> = Scope::ALL
        .iter()
        .map(|scope| {
            context! { name => scope.as_str(), checked => defaults.contains(*scope) }
        })
        .collect();
    let new_key = new_key.map(|created| {
        context! {
            name => created.info.name,
            secret => created.raw_key.expose(),
            scopes => created.info.scopes.names(),
        }
    });
    page(
        session,
        "keys",
        "keys.html",
        context! { keys, scopes, new_key, notice, max_keys => MAX_KEYS_PER_USER },
    )
}
