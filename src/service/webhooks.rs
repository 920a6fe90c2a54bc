//! Outbound webhooks: the subscription use cases shared by HTTP and the command line, and the
//! delivery workers that send the outbox.
//!
//! Workers claim due deliveries with a lease (one replica sends each), send them signed through
//! the SSRF-guarded client, and record each attempt. An idle worker holds no database
//! connection between polls: it sleeps until its poll interval passes or one of its own
//! deliveries finishes (which may make the next event of the same object due).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::credentials::Secret;
use crate::domain::ids::new_id;
use crate::domain::time::{self, Timestamp, to_micros};
use crate::domain::webhooks::{
    AttemptVerdict, DEFAULT_RETRY_DELAYS, EventType, MAX_RESPONSE_BYTES,
    MAX_SUBSCRIPTIONS_PER_USER, Subscription, SubscriptionFilters, WebhookFieldError,
    generate_secret, next_attempt, sign, validate_url, verdict,
};
use crate::egress::{self, EgressOptions};
use crate::outbound::Outbound;
use crate::store::webhooks::{
    AttemptRecord, ClaimedDelivery, NewSubscription, NextStep, SubscriptionChanges,
};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid field")]
    Field(WebhookFieldError),
    #[error("subscription limit reached")]
    LimitReached,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for WebhookError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LimitReached => WebhookError::LimitReached,
            other => WebhookError::Store(other),
        }
    }
}

/// A subscription to create, as given.
#[derive(Debug, Clone)]
pub struct SubscriptionRequest {
    pub url: String,
    pub events: Vec<String>,
    pub filters: SubscriptionFilters,
    pub active: bool,
}

/// A subscription with its signing secret, shown once.
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub subscription: Subscription,
    pub secret: Secret,
}

fn blank_to_none(filters: SubscriptionFilters) -> SubscriptionFilters {
    let clean = |value: Option<String>| {
        value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    SubscriptionFilters {
        folder_id: clean(filters.folder_id),
        category: clean(filters.category),
        source: clean(filters.source),
    }
}

pub async fn create(
    store: &dyn Store,
    user_id: &str,
    request: SubscriptionRequest,
) -> Result<WithSecret, WebhookError> {
    let url = validate_url(&request.url).map_err(WebhookError::Field)?;
    let events = crate::domain::webhooks::parse_events(request.events.iter().map(String::as_str))
        .map_err(WebhookError::Field)?;
    let secret = generate_secret();
    let subscription = store
        .create_subscription(
            user_id,
            NewSubscription {
                id: new_id(),
                url,
                events,
                filters: blank_to_none(request.filters),
                active: request.active,
                secret: secret.clone(),
                created_at: time::now(),
            },
            MAX_SUBSCRIPTIONS_PER_USER,
        )
        .await?;
    Ok(WithSecret {
        subscription,
        secret,
    })
}

/// A PATCH as given: `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub filters: Option<SubscriptionFilters>,
    pub active: Option<bool>,
}

pub async fn update(
    store: &dyn Store,
    user_id: &str,
    id: &str,
    patch: SubscriptionPatch,
) -> Result<Subscription, WebhookError> {
    let url = patch
        .url
        .as_deref()
        .map(validate_url)
        .transpose()
        .map_err(WebhookError::Field)?;
    let events = patch
        .events
        .as_ref()
        .map(|names| crate::domain::webhooks::parse_events(names.iter().map(String::as_str)))
        .transpose()
        .map_err(WebhookError::Field)?;
    let changes = SubscriptionChanges {
        url,
        events,
        filters: patch.filters.map(blank_to_none),
        active: patch.active,
    };
    store
        .update_subscription(user_id, id, changes, time::now())
        .await?
        .ok_or(WebhookError::NotFound)
}

pub async fn rotate_secret(
    store: &dyn Store,
    user_id: &str,
    id: &str,
) -> Result<WithSecret, WebhookError> {
    let secret = generate_secret();
    let subscription = store
        .rotate_subscription_secret(user_id, id, secret.clone(), time::now())
        .await?
        .ok_or(WebhookError::NotFound)?;
    Ok(WithSecret {
        subscription,
        secret,
    })
}

/// Deliveries by outcome and the queue, for the metrics listener.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    pub pending: AtomicU64,
    /// Microseconds since the epoch of the oldest pending delivery; 0 when none.
    pub oldest_pending_micros: AtomicI64,
}

impl DeliveryStats {
    /// Seconds the oldest pending delivery has waited, 0 when none.
    pub fn oldest_pending_age_seconds(&self, now: Timestamp) -> f64 {
        match self.oldest_pending_micros.load(Ordering::Relaxed) {
            0 => 0.0,
            oldest => ((to_micros(now) - oldest).max(0) as f64) / 1e6,
        }
    }
}

/// How the workers run, from the settings.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub egress: EgressOptions,
    pub concurrency: usize,
    pub endpoint_concurrency: usize,
    pub schedule: Vec<Duration>,
    pub poll: Duration,
    pub lease: Duration,
    /// Failing this long without a success switches a subscription off.
    pub disable_after: Duration,
}

impl WorkerOptions {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let schedule = parse_schedule(&settings.webhook_retry_delays)?;
        let total = Duration::from_millis(settings.webhook_timeout_ms.max(1));
        Ok(WorkerOptions {
            egress: EgressOptions {
                allow_private: settings.webhook_allow_private,
                connect_timeout: Duration::from_millis(settings.webhook_connect_timeout_ms.max(1)),
                total_timeout: total,
            },
            concurrency: settings.webhook_concurrency.max(1) as usize,
            endpoint_concurrency: settings.webhook_endpoint_concurrency.max(1) as usize,
            schedule,
            poll: Duration::from_millis(settings.webhook_poll_ms.max(1)),
            // Long enough for a delivery that waits for its endpoint's turn, then times out.
            lease: (total * 8).max(Duration::from_secs(120)),
            disable_after: Duration::from_secs(settings.webhook_disable_after_seconds.max(1)),
        })
    }
}

/// `OMI_WEBHOOK_RETRY_DELAYS`: seconds, comma-separated; empty is the default schedule.
pub fn parse_schedule(text: &str) -> anyhow::Result<Vec<Duration>> {
    if text.trim().is_empty() {
        return Ok(DEFAULT_RETRY_DELAYS
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect());
    }
    text.split(',')
        .map(|part| {
            let seconds: f64 = part.trim().parse().map_err(|_| {
                anyhow::anyhow!("OMI_WEBHOOK_RETRY_DELAYS: {part:?} is not a number of seconds")
            })?;
            anyhow::ensure!(
                seconds.is_finite() && seconds >= 0.0,
                "OMI_WEBHOOK_RETRY_DELAYS: delays are zero or more seconds"
            );
            Ok(Duration::from_secs_f64(seconds))
        })
        .collect()
}

/// Drops the bodies of events recorded more than [`BODY_RETENTION`] before `now` once none of
/// their deliveries is pending (the log rows stay); how many. The workers run it hourly.
///
/// [`BODY_RETENTION`]: crate::domain::webhooks::BODY_RETENTION
pub async fn purge_old_bodies(store: &dyn Store, now: Timestamp) -> Result<u64, StoreError> {
    let retention =
        chrono::TimeDelta::from_std(crate::domain::webhooks::BODY_RETENTION).unwrap_or_default();
    store.purge_webhook_bodies(now - retention).await
}

/// Starts the delivery loop; it ends when `stop` is cancelled, after the attempts in flight.
pub fn spawn_workers(
    store: Arc<dyn Store>,
    outbound: &Outbound,
    options: WorkerOptions,
    stats: Arc<DeliveryStats>,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = egress::guarded_client(outbound, options.egress)?;
    let worker = Arc::new(Worker {
        store,
        client,
        endpoints: Mutex::new(HashMap::new()),
        finished: Notify::new(),
        stats,
        token: new_id(),
        options,
    });
    Ok(tokio::spawn(worker.run(stop)))
}

struct Worker {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    /// Per subscription: how many of its deliveries this process has in flight.
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
    finished: Notify,
    stats: Arc<DeliveryStats>,
    token: String,
    options: WorkerOptions,
}

/// Queue statistics and old bodies are looked after this often.
const HOUSEKEEPING: Duration = Duration::from_secs(5);
const PURGE: Duration = Duration::from_secs(3600);

impl Worker {
    async fn run(self: Arc<Self>, stop: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.options.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        let mut last_stats = Instant::now() - HOUSEKEEPING;
        let mut last_purge = Instant::now() - PURGE;
        loop {
            if stop.is_cancelled() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            if last_stats.elapsed() >= HOUSEKEEPING {
                last_stats = Instant::now();
                self.refresh_stats().await;
            }
            if last_purge.elapsed() >= PURGE {
                last_purge = Instant::now();
                if let Err(error) = purge_old_bodies(&*self.store, time::now()).await {
                    tracing::warn!(error = %error, "dropping old webhook bodies failed");
                }
            }
            let free = slots.available_permits();
            let mut claimed = 0;
            if free > 0 {
                match self
                    .store
                    .claim_webhook_deliveries(time::now(), self.options.lease, free, &self.token)
                    .await
                {
                    Ok(batch) => {
                        claimed = batch.len();
                        for delivery in batch {
                            let Ok(slot) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            let worker = self.clone();
                            tasks.spawn(async move {
                                worker.deliver(delivery).await;
                                drop(slot);
                                worker.finished.notify_one();
                            });
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "claiming webhook deliveries failed")
                    }
                }
            }
            if claimed > 0 && claimed == free {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.finished.notified() => {}
                _ = tokio::time::sleep(self.options.poll) => {}
            }
        }
        // Attempts in flight finish and are recorded; unclaimed work stays for the next start.
        while tasks.join_next().await.is_some() {}
    }

    async fn refresh_stats(&self) {
        match self.store.webhook_queue().await {
            Ok(queue) => {
                self.stats.pending.store(queue.pending, Ordering::Relaxed);
                self.stats.oldest_pending_micros.store(
                    queue.oldest_pending.map(to_micros).unwrap_or(0),
                    Ordering::Relaxed,
                );
            }
            Err(error) => tracing::debug!(error = %error, "reading the webhook queue failed"),
        }
    }

    fn endpoint(&self, subscription_id: &str) -> Arc<Semaphore> {
        self.endpoints
            .lock()
            .entry(subscription_id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.options.endpoint_concurrency)))
            .clone()
    }

    async fn deliver(&self, delivery: ClaimedDelivery) {
        let endpoint = self.endpoint(&delivery.subscription_id);
        let Ok(_turn) = endpoint.acquire().await else {
            return;
        };
        let record = self.attempt(&delivery).await;
        let counter = match record.next {
            NextStep::Delivered => &self.stats.delivered,
            NextStep::RetryAt(_) => &self.stats.retried,
            NextStep::Failed => &self.stats.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = self.store.record_attempt(&delivery, record).await {
            // The lease runs out and the delivery is tried again: at least once.
            tracing::warn!(error = %error, delivery = %delivery.id, "recording a webhook attempt failed");
        }
    }

    async fn attempt(&self, delivery: &ClaimedDelivery) -> AttemptRecord {
        let started = Instant::now();
        let outcome = self.send(delivery).await;
        let at = time::now();
        let latency_ms = started.elapsed().as_millis() as u64;
        let (status, retry_after, error) = match outcome {
            Sent::Answered {
                status,
                retry_after,
            } => (
                Some(status),
                retry_after,
                (!(200..300).contains(&status)).then(|| format!("HTTP {status}")),
            ),
            Sent::Refused(reason) => {
                return AttemptRecord {
                    response_status: None,
                    latency_ms,
                    error: Some(format!("refused: {reason}")),
                    next: NextStep::Failed,
                    at,
                    disable_after: self.options.disable_after,
                };
            }
            Sent::Failed(reason) => (None, None, Some(reason)),
        };
        let next = match verdict(status) {
            AttemptVerdict::Delivered => NextStep::Delivered,
            AttemptVerdict::Refused => NextStep::Failed,
            AttemptVerdict::Retry => match next_attempt(
                &self.options.schedule,
                delivery.attempts + 1,
                jitter(),
                retry_after,
                delivery.event_created_at,
                at,
            ) {
                Some(next) => NextStep::RetryAt(next),
                None => NextStep::Failed,
            },
        };
        AttemptRecord {
            response_status: status,
            latency_ms,
            error,
            next,
            at,
            disable_after: self.options.disable_after,
        }
    }

    async fn send(&self, delivery: &ClaimedDelivery) -> Sent {
        let url = match target_url(&delivery.url, &delivery.user_id) {
            Ok(url) => url,
            Err(reason) => return Sent::Refused(reason),
        };
        if let Err(refused) = egress::check_url(&url, self.options.egress.allow_private) {
            return Sent::Refused(refused.to_string());
        }
        let timestamp = time::now().timestamp();
        let signature = sign(
            &delivery.secret,
            &delivery.id,
            timestamp,
            delivery.payload.as_bytes(),
        );
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("Idempotency-Key", &delivery.id)
            .header("X-Omi-Event", &delivery.event_type)
            .body(delivery.payload.clone());
        match request.send().await {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                // Read (and drop) at most 64 KB, so the connection can be reused.
                let mut read = 0usize;
                while read < MAX_RESPONSE_BYTES {
                    match response.chunk().await {
                        Ok(Some(chunk)) => read += chunk.len(),
                        _ => break,
                    }
                }
                Sent::Answered {
                    status,
                    retry_after,
                }
            }
            Err(error) if egress::refused_by_guard(&error) => {
                Sent::Refused(egress::Refused::NoAllowedAddress.to_string())
            }
            Err(error) if error.is_timeout() => Sent::Failed("timed out".into()),
            Err(error) if error.is_connect() => Sent::Failed("connection failed".into()),
            Err(_) => Sent::Failed("request failed".into()),
        }
    }
}

enum Sent {
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The guard refused the destination: not retried.
    Refused(String),
    /// No answer (timeout, connection error): retried.
    Failed(String),
}

/// The subscription's URL with `uid` set to the user's id (an existing `uid` is replaced,
/// other parameters kept), as upstream sends it.
pub fn target_url(url: &str, user_id: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(url).map_err(|_| "the URL is not valid".to_string())?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != "uid")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("uid", user_id);
    Ok(url)
}

/// `Retry-After` as seconds (an HTTP date is read as no hint: the schedule applies).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A uniform number in `[0, 1)`.
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    u32::from_le_bytes(bytes) as f64 / (u32::MAX as f64 + 1.0)
}

/// Every event type, for the command line's help.
pub fn event_names() -> Vec<&'static str> {
    EventType::SUBSCRIBABLE.iter().map(|e| e.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uid_is_set_and_other_parameters_kept() {
        let url = target_url("https://h.example/x?token=abc&uid=old", "u1").unwrap();
        assert_eq!(url.as_str(), "https://h.example/x?token=abc&uid=u1");
    }

    #[test]
    fn schedules_parse_from_seconds() {
        assert_eq!(
            parse_schedule("0.5, 2").unwrap(),
            vec![Duration::from_millis(500), Duration::from_secs(2)]
        );
        assert_eq!(
            parse_schedule("").unwrap().len(),
            DEFAULT_RETRY_DELAYS.len()
        );
        assert!(parse_schedule("x").is_err());
    }
}
