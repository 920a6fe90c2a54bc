//! Webhooks: subscriptions (create with event checkboxes, the secret shown once; pause and
//! resume, rotate the secret, delete, send a test) and each one's delivery log with redeliver.
//! The same service and store functions as `/v1/dev/user/webhooks`.

use axum::extract::{Path, Query, State};
use minijinja::{Value, context};

use crate::console::form::CsrfForm;
use crate::console::pages::{Notice, PageResult, redirect_with};
use crate::console::session::Session;
use crate::console::view::{ConsoleError, page};
use crate::domain::ids::is_plausible_id;
use crate::domain::paging::Page;
use crate::domain::webhooks::{MAX_SUBSCRIPTIONS_PER_USER, MAX_URL_CHARS, WebhookFieldError};
use crate::service::webhooks::{
    self as service, SubscriptionPatch, SubscriptionRequest, WebhookError, WithSecret,
};
use crate::state::AppState;

/// Deliveries shown on a subscription's page.
const DELIVERIES_SHOWN: i64 = 50;

impl From<WebhookError> for ConsoleError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Field(field) => ConsoleError::Invalid(match field {
                WebhookFieldError::UrlInvalid => "The URL must be an absolute URL.".into(),
                WebhookFieldError::UrlScheme => {
                    "The URL must start with http:// or https://.".into()
                }
                WebhookFieldError::UrlTooLong => {
                    format!("The URL has at most {MAX_URL_CHARS} characters.")
                }
                WebhookFieldError::EventsEmpty => "Pick at least one event.".into(),
                WebhookFieldError::EventUnknown(name) => {
                    format!("{name} is not an event this server sends.")
                }
            }),
            WebhookError::LimitReached => ConsoleError::Invalid(format!(
                "You already have {MAX_SUBSCRIPTIONS_PER_USER} webhooks: delete one first."
            )),
            WebhookError::NotFound => ConsoleError::NotFound,
            WebhookError::Store(error) => ConsoleError::Store(error),
        }
    }
}

/// A path id that cannot name anything is simply not found.
fn check_id(id: &str) -> Result<(), ConsoleError> {
    if is_plausible_id(id) {
        Ok(())
    } else {
        Err(ConsoleError::NotFound)
    }
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(notice): Query<Notice>,
) -> PageResult {
    render_list(&state, &session, None, notice.text()).await
}

async fn render_list(
    state: &AppState,
    session: &Session,
    created: Option<WithSecret>,
    notice: Option<&str>,
) -> PageResult {
    let subscriptions = state.store.list_subscriptions(&session.user.id).await?;
    let events: Vec<Value> = service::event_names()
        .into_iter()
        .map(|name| context! { name })
        .collect();
    let created = created.map(|created| {
        context! {
            url => created.subscription.url,
            secret => created.secret.expose(),
            id => created.subscription.id,
        }
    });
    page(
        session,
        "webhooks",
        "webhooks.html",
        context! {
            subscriptions, events, created, notice,
            max => MAX_SUBSCRIPTIONS_PER_USER,
        },
    )
}

pub async fn create(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm,
) -> PageResult {
    let request = SubscriptionRequest {
        url: form.get("url").unwrap_or_default().to_string(),
        events: form.all("event"),
        filters: Default::default(),
        active: true,
    };
    let created = service::create(&*state.store, &session.user.id, request).await?;
    render_list(&state, &session, Some(created), None).await
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> PageResult {
    render_one(&state, &session, &id, None, notice.text()).await
}

async fn render_one(
    state: &AppState,
    session: &Session,
    id: &str,
    secret: Option<String>,
    notice: Option<&str>,
) -> PageResult {
    check_id(id)?;
    let subscription = state
        .store
        .get_subscription(&session.user.id, id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let deliveries = state
        .store
        .list_deliveries(
            &session.user.id,
            id,
            Page {
                limit: DELIVERIES_SHOWN,
                offset: 0,
            },
        )
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let deliveries: Vec<Value> = deliveries
        .into_iter()
        .map(|delivery| {
            let payload = delivery
                .payload
                .as_ref()
                .and_then(|payload| serde_json::to_string_pretty(payload).ok());
            context! { delivery, payload }
        })
        .collect();
    page(
        session,
        "webhooks",
        "webhook.html",
        context! { subscription, deliveries, secret, notice },
    )
}

pub async fn set_active(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, form }: CsrfForm,
) -> PageResult {
    check_id(&id)?;
    let active = form.get("active") == Some("true");
    let patch = SubscriptionPatch {
        active: Some(active),
        ..Default::default()
    };
    service::update(&*state.store, &session.user.id, &id, patch).await?;
    Ok(redirect_with(
        &format!("/console/webhooks/{id}"),
        if active {
            "webhook-resumed"
        } else {
            "webhook-paused"
        },
    ))
}

pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm,
) -> PageResult {
    check_id(&id)?;
    let rotated = service::rotate_secret(&*state.store, &session.user.id, &id).await?;
    render_one(
        &state,
        &session,
        &id,
        Some(rotated.secret.expose().to_string()),
        None,
    )
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm,
) -> PageResult {
    check_id(&id)?;
    if !state
        .store
        .delete_subscription(&session.user.id, &id)
        .await?
    {
        return Err(ConsoleError::NotFound);
    }
    Ok(redirect_with("/console/webhooks", "webhook-deleted"))
}

pub async fn send_test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm,
) -> PageResult {
    check_id(&id)?;
    state
        .store
        .enqueue_ping(&session.user.id, &id, crate::domain::time::now())
        .await?
        .ok_or(ConsoleError::NotFound)?;
    Ok(redirect_with(
        &format!("/console/webhooks/{id}"),
        "webhook-test-queued",
    ))
}

pub async fn redeliver(
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(String, String)>,
    CsrfForm { session, .. }: CsrfForm,
) -> PageResult {
    check_id(&id)?;
    check_id(&delivery_id)?;
    state
        .store
        .redeliver(
            &session.user.id,
            &id,
            &delivery_id,
            crate::domain::time::now(),
        )
        .await?
        .ok_or(ConsoleError::NotFound)?;
    Ok(redirect_with(
        &format!("/console/webhooks/{id}"),
        "webhook-redelivery-queued",
    ))
}
