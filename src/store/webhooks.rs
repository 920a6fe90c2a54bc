//! Webhook subscriptions, the event outbox and the deliveries: what both backends keep.
//!
//! Events are written by the backends' own write methods in the transaction of the change they
//! describe (`record_changes` is the same thing for callers that write elsewhere), so an event
//! exists exactly when its change was committed. One delivery row per (event, subscription)
//! carries the retry state; workers claim due rows with a lease.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::credentials::Secret;
use crate::domain::paging::Page;
use crate::domain::time::Timestamp;
use crate::domain::webhooks::{Change, Delivery, EventType, Subscription, SubscriptionFilters};
use crate::store::StoreResult;

#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub filters: SubscriptionFilters,
    pub active: bool,
    pub secret: Secret,
    pub created_at: Timestamp,
}

/// A PATCH: `None` keeps the field. Turning `active` on clears the disabled reason.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChanges {
    pub url: Option<String>,
    pub events: Option<Vec<EventType>>,
    pub filters: Option<SubscriptionFilters>,
    pub active: Option<bool>,
}

/// A delivery a worker holds the lease of, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: String,
    pub subscription_id: String,
    pub user_id: String,
    pub url: String,
    pub secret: Secret,
    pub event_type: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub event_created_at: Timestamp,
    pub lease_token: String,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(Timestamp),
    Failed,
}

/// One attempt's outcome, for the delivery log.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub response_status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub next: NextStep,
    pub at: Timestamp,
    /// A failure run of the subscription this long (no success since its first failure)
    /// switches the subscription off.
    pub disable_after: Duration,
}

/// The queue at one instant, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    pub pending: u64,
    pub oldest_pending: Option<Timestamp>,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// `LimitReached` when the user already has `max_per_user` subscriptions.
    async fn create_subscription(
        &self,
        user_id: &str,
        subscription: NewSubscription,
        max_per_user: usize,
    ) -> StoreResult<Subscription>;
    /// Oldest first.
    async fn list_subscriptions(&self, user_id: &str) -> StoreResult<Vec<Subscription>>;
    async fn get_subscription(&self, user_id: &str, id: &str) -> StoreResult<Option<Subscription>>;
    async fn update_subscription(
        &self,
        user_id: &str,
        id: &str,
        changes: SubscriptionChanges,
        now: Timestamp,
    ) -> StoreResult<Option<Subscription>>;
    async fn rotate_subscription_secret(
        &self,
        user_id: &str,
        id: &str,
        secret: Secret,
        now: Timestamp,
    ) -> StoreResult<Option<Subscription>>;
    /// Also removes its deliveries.
    async fn delete_subscription(&self, user_id: &str, id: &str) -> StoreResult<bool>;

    /// Records events for changes written outside this store's own write methods (one
    /// transaction of its own). Every store write method already records its events.
    async fn record_changes(&self, user_id: &str, changes: Vec<Change>) -> StoreResult<()>;

    /// Queues a signed `ping` to the subscription (active or not). `None` when the user has no
    /// such subscription.
    async fn enqueue_ping(
        &self,
        user_id: &str,
        subscription_id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>>;
    /// Newest first. `None` when the user has no such subscription.
    async fn list_deliveries(
        &self,
        user_id: &str,
        subscription_id: &str,
        page: Page,
    ) -> StoreResult<Option<Vec<Delivery>>>;
    /// Sends the delivery again, with the same id, as soon as a worker is free; its body must
    /// still be kept. `None` when there is no such delivery (or its body is gone).
    async fn redeliver(
        &self,
        user_id: &str,
        subscription_id: &str,
        delivery_id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>>;

    /// Leases up to `limit` due deliveries of active subscriptions, each the oldest unfinished
    /// one of its subscription and ordering key, so that one object's events go out in order.
    /// Rows another worker holds are skipped (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
    async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
        lease_token: &str,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records an attempt of a leased delivery and the subscription's failure run; a failed
    /// attempt at `record.at` when the run started at least `record.disable_after` before
    /// switches the subscription off with the reason. Ignored when the lease was lost.
    async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        record: AttemptRecord,
    ) -> StoreResult<()>;
    async fn webhook_queue(&self) -> StoreResult<QueueStats>;
    /// Drops the bodies of events recorded before `before` whose deliveries have all ended.
    async fn purge_webhook_bodies(&self, before: Timestamp) -> StoreResult<u64>;
}
