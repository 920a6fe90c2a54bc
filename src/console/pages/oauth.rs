//! The OAuth consent page: which app asks, where it will send the answer, and the scopes it
//! asked for as checkboxes the user can narrow; approving issues a code through the same
//! service as the token endpoint redeems it with.

use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};

use crate::auth::origin::PublicOrigin;
use crate::console::form::{CsrfForm, FormData};
use crate::console::headers::policy_with_form_target;
use crate::console::pages::login::sign_in_then;
use crate::console::session::Session;
use crate::console::view::{ConsoleError, html_error, page, public_page};
use crate::domain::oauth::{redirect_host, redirect_origin, redirect_with};
use crate::domain::scope::{Scope, ScopeSet};
use crate::service::oauth::{
    self as service, AuthorizationParams, AuthorizeError, ValidAuthorization,
};
use crate::state::AppState;

/// What each scope lets an app do, in the user's words.
fn describe(scope: Scope) -> &'static str {
    match scope {
        Scope::ConversationsRead => "Read your conversations and their transcripts",
        Scope::ConversationsWrite => "Create, change and delete conversations",
        Scope::MemoriesRead => "Read your memories",
        Scope::MemoriesWrite => "Create, change and delete memories",
        Scope::ActionItemsRead => "Read your action items",
        Scope::ActionItemsWrite => "Create, complete and delete action items",
        Scope::GoalsRead => "Read your goals",
        Scope::GoalsWrite => "Create and update goals",
        Scope::IngestWrite => "Send recordings and transcripts into your account",
        Scope::WebhooksRead => "See your webhook subscriptions",
        Scope::WebhooksWrite => "Manage your webhook subscriptions",
    }
}

/// An error page for a request that cannot be trusted enough to redirect.
fn refusal_page(message: &str) -> Response {
    let body = public_page(
        "error.html",
        context! { status => 400, reason => "Bad Request", message },
    )
    .unwrap_or_else(|_| message.to_string());
    html_error(StatusCode::BAD_REQUEST, body)
}

/// An error sent back to the client (RFC 6749 §4.1.2.1).
fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    code: &str,
    description: &str,
    issuer: &PublicOrigin,
) -> Response {
    let mut params = vec![("error", code), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", &issuer.0));
    Redirect::to(&redirect_with(redirect_uri, &params)).into_response()
}

fn authorize_error(error: AuthorizeError, issuer: &PublicOrigin) -> Response {
    match error {
        AuthorizeError::Page(message) => refusal_page(&message),
        AuthorizeError::Redirect {
            redirect_uri,
            state,
            code,
            description,
        } => redirect_error(&redirect_uri, state.as_deref(), code, &description, issuer),
        AuthorizeError::Store(error) => ConsoleError::Store(error).into_response(),
    }
}

/// `GET /console/oauth/authorize`: check the request, then (signed in) show the consent form.
pub async fn consent(
    State(state): State<AppState>,
    issuer: PublicOrigin,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    session: Result<Session, Response>,
) -> Response {
    let params: AuthorizationParams = match serde_urlencoded::from_str(&query.unwrap_or_default()) {
        Ok(params) => params,
        Err(_) => {
            return refusal_page(
                "The authorization request is malformed (a parameter is repeated or not text).",
            );
        }
    };
    let authorization = match service::check_authorization(&*state.store, &params).await {
        Ok(authorization) => authorization,
        Err(error) => return authorize_error(error, &issuer),
    };
    let Ok(session) = session else {
        let back = uri
            .path_and_query()
            .map(|path| path.as_str())
            .unwrap_or("/console/oauth/authorize");
        return sign_in_then(back);
    };
    match render(&session, &authorization, &params) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn render(
    session: &Session,
    authorization: &ValidAuthorization,
    params: &AuthorizationParams,
) -> Result<Response, ConsoleError> {
    let scopes: Vec<Value> = authorization
        .offered
        .iter()
        .map(|scope| context! { name => scope.as_str(), description => describe(scope) })
        .collect();
    let asked_for_none = params
        .scope
        .as_deref()
        .is_none_or(|scope| scope.trim().is_empty());
    let mut response = page(
        session,
        "apps",
        "consent.html",
        context! {
            client_name => authorization.client.name,
            client_id => authorization.client.id,
            redirect_uri => authorization.redirect_uri,
            redirect_host => redirect_host(&authorization.redirect_uri),
            state => authorization.state,
            code_challenge => authorization.code_challenge,
            requested_scope => params.scope,
            resource => params.resource,
            scopes,
            asked_for_none,
        },
    )?;
    if let Some(policy) =
        redirect_origin(&authorization.redirect_uri).and_then(|o| policy_with_form_target(&o))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    Ok(response)
}

/// The authorization request the consent form carries back in hidden fields.
fn params_from(form: &FormData) -> AuthorizationParams {
    let text = |name: &str| form.get(name).map(str::to_string);
    AuthorizationParams {
        response_type: Some("code".into()),
        client_id: text("client_id"),
        redirect_uri: text("redirect_uri"),
        scope: text("requested_scope"),
        state: text("state"),
        code_challenge: text("code_challenge"),
        code_challenge_method: Some("S256".into()),
        resource: text("resource"),
    }
}

/// `POST /console/oauth/authorize`: approve (with the ticked scopes) or deny.
pub async fn decide(
    State(state): State<AppState>,
    issuer: PublicOrigin,
    CsrfForm { session, form }: CsrfForm,
) -> Response {
    let params = params_from(&form);
    let authorization = match service::check_authorization(&*state.store, &params).await {
        Ok(authorization) => authorization,
        Err(error) => return authorize_error(error, &issuer),
    };
    let state_param = authorization.state.as_deref();
    if form.get("decision") != Some("approve") {
        return redirect_error(
            &authorization.redirect_uri,
            state_param,
            "access_denied",
            "the user denied the request",
            &issuer,
        );
    }
    let chosen = match ScopeSet::parse(form.all("scope").iter().map(String::as_str)) {
        Ok(chosen) => chosen,
        Err(_) => {
            return ConsoleError::Invalid("One of the scopes is not one this server knows.".into())
                .into_response();
        }
    };
    if chosen
        .iter()
        .any(|scope| !authorization.offered.contains(scope))
    {
        return ConsoleError::Invalid("Only the scopes the app asked for can be granted.".into())
            .into_response();
    }
    if chosen == ScopeSet::EMPTY {
        return ConsoleError::Invalid("Tick at least one scope, or deny the request.".into())
            .into_response();
    }
    match service::approve(&*state.store, &session.user.id, &authorization, chosen).await {
        Ok(code) => {
            let mut params = vec![("code", code.expose())];
            if let Some(state) = state_param {
                params.push(("state", state));
            }
            params.push(("iss", &issuer.0));
            Redirect::to(&redirect_with(&authorization.redirect_uri, &params)).into_response()
        }
        Err(error) => ConsoleError::Store(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::oauth::default_offer;

    #[test]
    fn every_offered_scope_has_a_description() {
        for scope in default_offer().iter() {
            assert!(!describe(scope).is_empty());
        }
    }
}
