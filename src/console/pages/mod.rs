//! One module per console page. Each reads and writes through the same store and service
//! functions as the API, always with the signed-in user's id, so another user's object is
//! simply not found.

pub mod action_items;
pub mod apps;
pub mod conversations;
pub mod goals;
pub mod keys;
pub mod login;
pub mod memories;
pub mod oauth;
pub mod overview;
pub mod webhooks;

use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::console::view::ConsoleError;

pub type PageResult = Result<Response, ConsoleError>;

/// Unknown console paths answer the console's 404 page, not the API's JSON.
pub async fn not_found() -> Response {
    ConsoleError::NotFound.into_response()
}

/// The `?notice=` a page shows after a form redirected to it.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    pub notice: Option<String>,
}

impl Notice {
    /// Only known codes are shown: a link cannot put words on the page.
    pub fn text(&self) -> Option<&'static str> {
        Some(match self.notice.as_deref()? {
            "memory-saved" => "Memory saved.",
            "memory-deleted" => "Memory deleted.",
            "key-revoked" => "Key revoked. Requests with it are refused from now on.",
            "item-saved" => "Action item saved.",
            "conversation-saved" => "Conversation saved.",
            "conversation-deleted" => "Conversation deleted.",
            "webhook-paused" => "Webhook paused: nothing is sent to it until you resume it.",
            "webhook-resumed" => "Webhook resumed.",
            "webhook-deleted" => "Webhook deleted with its delivery log.",
            "webhook-test-queued" => "Test ping queued: its outcome shows in the log below.",
            "webhook-redelivery-queued" => "Redelivery queued.",
            "app-disconnected" => "App disconnected. Its tokens no longer work.",
            _ => return None,
        })
    }
}

/// Back to a page after a form, with a notice (POST, redirect, GET).
pub fn redirect_with(path: &str, notice: &str) -> Response {
    Redirect::to(&format!("{path}?notice={notice}")).into_response()
}

/// A `YYYY-MM-DD` date field; empty is `None`.
pub fn date_field(value: Option<&str>) -> Result<Option<chrono::NaiveDate>, ConsoleError> {
    match value.map(str::trim).filter(|value| !value.is_empty()) {
        None => Ok(None),
        Some(value) => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ConsoleError::Invalid(format!("Not a date: {value} (use YYYY-MM-DD)"))),
    }
}
