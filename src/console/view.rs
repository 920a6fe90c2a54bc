//! Rendering: the templates (compiled into the binary, HTML-escaped by default) and the error
//! pages.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};

use crate::console::session::Session;
use crate::store::StoreError;
use crate::telemetry::HtmlErrorPage;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("new_token.html", include_str!("templates/new_token.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("keys.html", include_str!("templates/keys.html")),
    ("memories.html", include_str!("templates/memories.html")),
    (
        "conversations.html",
        include_str!("templates/conversations.html"),
    ),
    (
        "conversation.html",
        include_str!("templates/conversation.html"),
    ),
    (
        "action_items.html",
        include_str!("templates/action_items.html"),
    ),
    ("goals.html", include_str!("templates/goals.html")),
    ("consent.html", include_str!("templates/consent.html")),
    ("apps.html", include_str!("templates/apps.html")),
    ("webhooks.html", include_str!("templates/webhooks.html")),
    ("webhook.html", include_str!("templates/webhook.html")),
];

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    environment.add_filter("when", when);
    for (name, source) in TEMPLATES {
        environment
            .add_template(name, source)
            .unwrap_or_else(|error| panic!("console template {name}: {error}"));
    }
    environment
});

/// An RFC 3339 time as `2026-12-07 09:30 UTC`; anything else as given.
fn when(value: String) -> String {
    match chrono::DateTime::parse_from_rfc3339(&value) {
        Ok(at) => at
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        Err(_) => value,
    }
}

/// A page of a signed-in user: `context` plus what the layout needs (the user's name, the CSRF
/// token for the forms, which navigation entry is current).
pub fn page(
    session: &Session,
    current: &str,
    template: &str,
    context: Value,
) -> Result<Response, ConsoleError> {
    let full = context! {
        user_name => session.user.display_name,
        csrf => session.csrf,
        current => current,
        ..context
    };
    Ok(Html(render(template, full)?).into_response())
}

/// A page without a session (sign-in, errors).
pub fn public_page(template: &str, context: Value) -> Result<String, ConsoleError> {
    render(template, context)
}

fn render(template: &str, context: Value) -> Result<String, ConsoleError> {
    ENVIRONMENT
        .get_template(template)
        .and_then(|template| template.render(context))
        .map_err(|error| ConsoleError::Internal(anyhow::anyhow!("rendering {template}: {error:#}")))
}

/// What a console page answers instead of its content.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Missing, or another user's: never tell which.
    #[error("not found")]
    NotFound,
    #[error("the form's CSRF token is missing or wrong")]
    CsrfRejected,
    /// The form's input, with what to fix.
    #[error("{0}")]
    Invalid(String),
    #[error("too many failed sign-ins")]
    TooManyAttempts { retry_after: u64 },
    #[error("the rate limiter is unavailable")]
    LimiterUnavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl ConsoleError {
    fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            ConsoleError::NotFound => (
                StatusCode::NOT_FOUND,
                "There is nothing here, or it is not yours.".into(),
            ),
            ConsoleError::CsrfRejected => (
                StatusCode::FORBIDDEN,
                "This form expired or did not come from this console. Go back, reload the page and try again.".into(),
            ),
            ConsoleError::Invalid(message) => (StatusCode::UNPROCESSABLE_ENTITY, message.clone()),
            ConsoleError::TooManyAttempts { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed sign-ins from your address. Try again in {retry_after} s."),
            ),
            ConsoleError::LimiterUnavailable | ConsoleError::Store(StoreError::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot reach its database or rate limiter right now. Try again shortly.".into(),
            ),
            ConsoleError::Store(_) | ConsoleError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on the server.".into(),
            ),
        }
    }
}

/// An HTML page with an error status, kept as HTML by the telemetry layer.
pub fn html_error(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    response.extensions_mut().insert(HtmlErrorPage);
    response
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        if status.is_server_error() {
            tracing::error!(error = %self, "console page failed");
        }
        let body = render(
            "error.html",
            context! { status => status.as_u16(), reason => status.canonical_reason(), message },
        )
        .unwrap_or_else(|_| message.clone());
        let mut response = html_error(status, body);
        if let ConsoleError::TooManyAttempts { retry_after } = self
            && let Ok(value) = retry_after.to_string().parse()
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}
