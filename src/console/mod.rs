//! The web console at `/console`: server-rendered pages over the same store and services as the
//! API, signed in with the account token, every asset embedded in the binary. Forms post back
//! to the server, so every page works with JavaScript off; the one script only adds copy
//! buttons.

mod assets;
mod form;
mod headers;
mod pages;
mod session;
mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub use session::{COOKIE_NAME, LOGIN_COOKIE_NAME};

/// Every console route, with the security headers on each answer.
pub fn router(state: &AppState) -> Router {
    Router::new()
        .route("/console", get(pages::overview::show))
        .route("/console/", get(pages::overview::show))
        .route("/console/assets/console.css", get(assets::stylesheet))
        .route("/console/assets/console.js", get(assets::script))
        .route(
            "/console/login",
            get(pages::login::form).post(pages::login::sign_in),
        )
        .route("/console/logout", post(pages::login::sign_out))
        .route(
            "/console/account/token",
            post(pages::overview::replace_token),
        )
        .route(
            "/console/keys",
            get(pages::keys::list).post(pages::keys::create),
        )
        .route("/console/keys/{id}/rotate", post(pages::keys::rotate))
        .route("/console/keys/{id}/revoke", post(pages::keys::revoke))
        .route("/console/memories", get(pages::memories::list))
        .route("/console/memories/{id}", post(pages::memories::update))
        .route(
            "/console/memories/{id}/delete",
            post(pages::memories::delete),
        )
        .route("/console/conversations", get(pages::conversations::list))
        .route(
            "/console/conversations/{id}",
            get(pages::conversations::show),
        )
        .route(
            "/console/conversations/{id}/audio",
            get(pages::conversations::audio),
        )
        .route(
            "/console/conversations/{id}/star",
            post(pages::conversations::star),
        )
        .route(
            "/console/conversations/{id}/folder",
            post(pages::conversations::move_to_folder),
        )
        .route(
            "/console/conversations/{id}/delete",
            post(pages::conversations::delete),
        )
        .route("/console/action-items", get(pages::action_items::list))
        .route(
            "/console/action-items/{id}",
            post(pages::action_items::update),
        )
        .route("/console/goals", get(pages::goals::list))
        .route(
            "/console/webhooks",
            get(pages::webhooks::list).post(pages::webhooks::create),
        )
        .route("/console/webhooks/{id}", get(pages::webhooks::show))
        .route(
            "/console/webhooks/{id}/active",
            post(pages::webhooks::set_active),
        )
        .route(
            "/console/webhooks/{id}/rotate",
            post(pages::webhooks::rotate),
        )
        .route(
            "/console/webhooks/{id}/delete",
            post(pages::webhooks::delete),
        )
        .route(
            "/console/webhooks/{id}/test",
            post(pages::webhooks::send_test),
        )
        .route(
            "/console/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            post(pages::webhooks::redeliver),
        )
        .route("/console/apps", get(pages::apps::list))
        .route(
            "/console/apps/{id}/disconnect",
            post(pages::apps::disconnect),
        )
        .route(
            "/console/oauth/authorize",
            get(pages::oauth::consent).post(pages::oauth::decide),
        )
        // The console's own 404 page (not the API's JSON) for any other console path; a
        // fallback here would replace the API's when the routers merge.
        .route(
            "/console/{*rest}",
            get(pages::not_found).post(pages::not_found),
        )
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state.clone())
}
