//! Signing in with the account token, and out.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;

use crate::auth::middleware::count_failed_auth;
use crate::console::form::{CSRF_FIELD, CsrfForm, FormData};
use crate::console::pages::PageResult;
use crate::console::session::{COOKIE_NAME, LOGIN_COOKIE_NAME, Origin, bounds, cookie, set_cookie};
use crate::console::view::{ConsoleError, html_error, public_page};
use crate::domain::console::{
    SESSION_ABSOLUTE, generate_login_nonce, generate_session, tokens_match,
};
use crate::domain::credentials::{Credential, classify, hash_secret};
use crate::domain::time;
use crate::state::AppState;
use crate::store::console::NewConsoleSession;

/// The sign-in form lives for this long before it must be reloaded.
const LOGIN_FORM_SECONDS: i64 = 3600;

/// `?next=`: the console page to return to after signing in.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Next {
    pub next: Option<String>,
}

/// A console path to return to, or `None`: only same-site `/console/...` paths, so the
/// sign-in form cannot be made to send anyone elsewhere.
fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|next| {
        next.starts_with("/console/")
            && !next.starts_with("//")
            && !next.contains('\\')
            && !next.chars().any(char::is_control)
    })
}

/// Where a signed-out visitor of `path_and_query` is sent: the sign-in form, which brings them
/// back afterwards.
pub fn sign_in_then(path_and_query: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
    Redirect::to(&format!("/console/login?next={next}")).into_response()
}

pub async fn form(origin: Origin, Query(next): Query<Next>) -> PageResult {
    login_page(
        &origin,
        StatusCode::OK,
        None,
        safe_next(next.next.as_deref()),
    )
}

fn login_page(
    origin: &Origin,
    status: StatusCode,
    error: Option<&str>,
    next: Option<&str>,
) -> PageResult {
    let nonce = generate_login_nonce();
    let body = public_page("login.html", context! { csrf => nonce, error, next })?;
    let secure = origin.secure;
    let mut response = html_error(status, body);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE_NAME, Some(&nonce), LOGIN_FORM_SECONDS, secure),
    );
    Ok(response)
}

pub async fn sign_in(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let form = FormData::parse(&body);
    let expected = cookie(&headers, LOGIN_COOKIE_NAME).unwrap_or_default();
    if expected.is_empty() || !tokens_match(expected, form.get(CSRF_FIELD).unwrap_or_default()) {
        return Err(ConsoleError::CsrfRejected);
    }
    let token = form.get("token").unwrap_or_default().trim();
    let token_hash = match classify(token) {
        Credential::AccountToken(secret) => Some(hash_secret(secret)),
        _ => None,
    };
    let user = match &token_hash {
        Some(hash) => state.store.find_user_by_token_hash(hash).await?,
        None => None,
    };
    let (Some(user), Some(token_hash)) = (user, token_hash) else {
        return match count_failed_auth(&state, &origin.client).await {
            Ok(verdict) if verdict.blocked => Err(ConsoleError::TooManyAttempts {
                retry_after: verdict.retry_after,
            }),
            Ok(_) => login_page(
                &origin,
                StatusCode::UNAUTHORIZED,
                Some("That is not a valid account token. It starts with omi_acct_."),
                safe_next(form.get("next")),
            ),
            Err(_) => Err(ConsoleError::LimiterUnavailable),
        };
    };

    let now = time::now();
    let generated = generate_session();
    state
        .store
        .create_console_session(
            NewConsoleSession {
                id_hash: generated.hash,
                user_id: user.id,
                token_hash,
                created_at: now,
            },
            bounds(now),
        )
        .await?;
    let secure = origin.secure;
    let back = safe_next(form.get("next")).unwrap_or("/console");
    let mut response = Redirect::to(back).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            COOKIE_NAME,
            Some(generated.raw.expose()),
            SESSION_ABSOLUTE.num_seconds(),
            secure,
        ),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE_NAME, None, 0, secure),
    );
    Ok(response)
}

pub async fn sign_out(State(state): State<AppState>, origin: Origin, form: CsrfForm) -> Response {
    if let Err(error) = state
        .store
        .delete_console_session(&form.session.id_hash)
        .await
    {
        return ConsoleError::from(error).into_response();
    }
    signed_out(&origin, Redirect::to("/console/login").into_response())
}

/// `response`, clearing the session cookie.
pub fn signed_out(origin: &Origin, mut response: Response) -> Response {
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE_NAME, None, 0, origin.secure),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_returned_to() {
        assert_eq!(
            safe_next(Some("/console/oauth/authorize?a=b")),
            Some("/console/oauth/authorize?a=b")
        );
        for next in [
            "https://evil.example/",
            "//evil.example",
            "/v1/dev/keys",
            "/console\\x",
        ] {
            assert_eq!(safe_next(Some(next)), None, "{next}");
        }
        assert_eq!(safe_next(None), None);
    }
}
