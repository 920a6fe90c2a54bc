//! The signed-in session: the cookie that names it, the lookup that checks its lifetime and
//! its account token, and the cookie flags.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::auth::client_addr::client_address;
use crate::auth::origin::over_https;
use crate::console::view::ConsoleError;
use crate::domain::console::{
    SESSION_ABSOLUTE, SESSION_IDLE, SESSION_TOUCH_INTERVAL, csrf_token_for, is_plausible_session_id,
};
use crate::domain::credentials::hash_secret;
use crate::domain::time::{self, Timestamp};
use crate::domain::users::User;
use crate::state::AppState;
use crate::store::console::SessionBounds;

/// The session cookie.
pub const COOKIE_NAME: &str = "omi_console";
/// The sign-in form's CSRF cookie, set before there is a session (double submit).
pub const LOGIN_COOKIE_NAME: &str = "omi_console_login";
const COOKIE_PATH: &str = "/console";

/// A signed-in user, taken from the session cookie. A missing, expired or revoked session
/// sends the browser to the sign-in page instead.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    /// The token this session's forms must carry.
    pub csrf: String,
    pub id_hash: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(raw) =
            cookie(&parts.headers, COOKIE_NAME).filter(|raw| is_plausible_session_id(raw))
        else {
            return Err(to_sign_in());
        };
        let id_hash = hash_secret(raw);
        let now = time::now();
        let found = state
            .store
            .find_console_session(&id_hash, bounds(now))
            .await
            .map_err(|error| ConsoleError::from(error).into_response())?;
        let Some(found) = found else {
            return Err(to_sign_in());
        };
        if now - found.last_seen_at >= SESSION_TOUCH_INTERVAL
            && let Err(error) = state.store.touch_console_session(&id_hash, now).await
        {
            // The session stays valid for hours more; one missed touch is not worth a failure.
            tracing::warn!(error = %error, "could not record console activity");
        }
        Ok(Session {
            user: found.user,
            csrf: csrf_token_for(raw),
            id_hash,
        })
    }
}

/// The live-session bounds as of `now`.
pub fn bounds(now: Timestamp) -> SessionBounds {
    SessionBounds {
        created_after: now - SESSION_ABSOLUTE,
        seen_after: now - SESSION_IDLE,
    }
}

fn to_sign_in() -> Response {
    Redirect::to("/console/login").into_response()
}

/// The value of the request's cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// Where a request came from, as the sign-in and cookie code needs it.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Cookies get `Secure`.
    pub secure: bool,
    /// The address failed sign-ins are counted against.
    pub client: String,
}

impl FromRequestParts<AppState> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = peer(&parts.extensions);
        Ok(Origin {
            secure: over_https(&parts.headers, peer, &state.settings),
            client: client_address(peer, &parts.headers, &state.settings.trusted_proxies),
        })
    }
}

fn peer(parts_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    parts_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}

/// `Set-Cookie` for a cookie of the console: HttpOnly, SameSite=Strict, scoped to `/console`,
/// Secure over https. `None` as the value clears it.
pub fn set_cookie(
    name: &str,
    value: Option<&str>,
    max_age_seconds: i64,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let (value, max_age) = match value {
        Some(value) => (value, max_age_seconds),
        None => ("", 0),
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("cookie values are hex")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; omi_console=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, COOKIE_NAME), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn session_cookies_carry_their_flags() {
        let value = set_cookie(COOKIE_NAME, Some("abc"), 60, true);
        let value = value.to_str().unwrap();
        for flag in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/console",
            "Max-Age=60",
        ] {
            assert!(value.contains(flag), "{value} lacks {flag}");
        }
        assert!(
            !set_cookie(COOKIE_NAME, None, 60, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
