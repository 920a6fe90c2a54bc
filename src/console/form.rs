//! Form bodies (`application/x-www-form-urlencoded`), read as name/value pairs so that repeated
//! names (scope checkboxes) keep every value, and the CSRF check every form post goes through.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};

use crate::console::session::Session;
use crate::console::view::ConsoleError;
use crate::domain::console::tokens_match;
use crate::state::AppState;

/// The hidden field every form carries.
pub const CSRF_FIELD: &str = "csrf";

#[derive(Debug, Default, Clone)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> Self {
        FormData(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value given for `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

/// A form posted by a signed-in user with the session's CSRF token; anything else is refused
/// before the handler runs (403), so no handler can forget the check.
pub struct CsrfForm {
    pub session: Session,
    pub form: FormData,
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = FormData::parse(&body);
        if !tokens_match(&session.csrf, form.get(CSRF_FIELD).unwrap_or_default()) {
            return Err(ConsoleError::CsrfRejected.into_response());
        }
        Ok(CsrfForm { session, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_keep_every_value() {
        let form = FormData::parse(b"scope=memories%3Aread&scope=goals%3Aread&name=a+b");
        assert_eq!(form.all("scope"), ["memories:read", "goals:read"]);
        assert_eq!(form.get("name"), Some("a b"));
        assert_eq!(form.get("missing"), None);
    }
}
