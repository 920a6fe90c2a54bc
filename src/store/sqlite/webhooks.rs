//! Webhook subscriptions, outbox and deliveries on SQLite. [`record`] is what every write
//! method calls inside its transaction.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tracing::instrument;

use super::{SqliteStore, map_error};
use crate::domain::credentials::Secret;
use crate::domain::ids::new_id;
use crate::domain::paging::Page;
use crate::domain::time::{Timestamp, from_micros, now, to_micros};
use crate::domain::webhooks::{
    Change, Delivery, EventType, Subscription, SubscriptionFilters, disabled_reason, ping_body,
};
use crate::store::webhooks::{
    AttemptRecord, ClaimedDelivery, NewSubscription, NextStep, QueueStats, SubscriptionChanges,
    WebhookStore,
};
use crate::store::{StoreError, StoreResult};

const SUBSCRIPTION_COLUMNS: &str = "id, url, events, folder_id, category, source, active, \
     disabled_reason, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "d.id, d.subscription_id, d.event_type, d.status, d.attempts, \
     d.response_status, d.latency_ms, d.next_attempt_at, d.error, e.payload, d.created_at, \
     d.delivered_at";

fn events_from_json(text: &str) -> Vec<EventType> {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| EventType::parse(name))
        .collect()
}

fn events_json(events: &[EventType]) -> String {
    serde_json::to_string(&events.iter().map(|e| e.as_str()).collect::<Vec<_>>())
        .expect("names serialize")
}

fn subscription_from_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    Ok(Subscription {
        id: row.get(0)?,
        url: row.get(1)?,
        events: events_from_json(&row.get::<_, String>(2)?),
        filters: SubscriptionFilters {
            folder_id: row.get(3)?,
            category: row.get(4)?,
            source: row.get(5)?,
        },
        active: row.get(6)?,
        disabled_reason: row.get(7)?,
        created_at: from_micros(row.get(8)?),
        updated_at: from_micros(row.get(9)?),
    })
}

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let status: String = row.get(3)?;
    let payload: Option<String> = row.get(9)?;
    Ok(Delivery {
        id: row.get(0)?,
        webhook_id: row.get(1)?,
        event: EventType::parse(&row.get::<_, String>(2)?).unwrap_or(EventType::Ping),
        next_attempt_at: (status == "pending")
            .then(|| row.get::<_, i64>(7).map(from_micros))
            .transpose()?,
        status,
        attempts: row.get(4)?,
        response_status: row.get(5)?,
        latency_ms: row.get::<_, Option<i64>>(6)?.map(|l| l as u64),
        error: row.get(8)?,
        payload: payload.and_then(|text| serde_json::from_str(&text).ok()),
        created_at: from_micros(row.get(10)?),
        delivered_at: row.get::<_, Option<i64>>(11)?.map(from_micros),
    })
}

fn find_subscription(
    connection: &Connection,
    user_id: &str,
    id: &str,
) -> rusqlite::Result<Option<Subscription>> {
    connection
        .prepare_cached(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
             WHERE user_id = ?1 AND id = ?2"
        ))?
        .query_row(params![user_id, id], subscription_from_row)
        .optional()
}

fn find_delivery(connection: &Connection, id: &str) -> rusqlite::Result<Option<Delivery>> {
    connection
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
             JOIN webhook_events e ON e.id = d.event_id WHERE d.id = ?1"
        ))?
        .query_row([id], delivery_from_row)
        .optional()
}

/// The user's active subscriptions: the one query a write pays when nobody listens.
fn active_subscriptions(
    connection: &Connection,
    user_id: &str,
) -> rusqlite::Result<Vec<Subscription>> {
    connection
        .prepare_cached(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
             WHERE user_id = ?1 AND active = 1"
        ))?
        .query_map([user_id], subscription_from_row)?
        .collect()
}

/// Whether any active subscription of the user wants one of `events`: lets a caller skip
/// loading what a body needs when nobody listens.
pub(super) fn wanted(
    connection: &Connection,
    user_id: &str,
    events: &[EventType],
) -> rusqlite::Result<bool> {
    Ok(active_subscriptions(connection, user_id)?
        .iter()
        .any(|s| events.iter().any(|e| s.events.contains(e))))
}

fn insert_event(
    connection: &Connection,
    id: &str,
    user_id: &str,
    event: EventType,
    payload: &str,
    at: i64,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO webhook_events (id, user_id, event_type, payload, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, user_id, event.as_str(), payload, at])?;
    Ok(())
}

fn insert_delivery(
    connection: &Connection,
    subscription_id: &str,
    user_id: &str,
    event_id: &str,
    event: EventType,
    ordering_key: &str,
    at: i64,
) -> rusqlite::Result<String> {
    let id = new_id();
    connection
        .prepare_cached(
            "INSERT INTO webhook_deliveries (id, subscription_id, user_id, event_id, event_type,
                 ordering_key, status, attempts, next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7, ?7)",
        )?
        .execute(params![
            id,
            subscription_id,
            user_id,
            event_id,
            event.as_str(),
            ordering_key,
            at
        ])?;
    Ok(id)
}

/// Writes the events of `changes` (one per change that an active subscription wants) and a
/// delivery per wanting subscription, inside the caller's transaction.
pub(super) fn record(
    connection: &Connection,
    user_id: &str,
    changes: &[Change],
) -> rusqlite::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let subscriptions = active_subscriptions(connection, user_id)?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    let at = to_micros(now());
    for change in changes {
        let (event, attributes) = (change.event_type(), change.attributes());
        let wanting: Vec<&Subscription> = subscriptions
            .iter()
            .filter(|s| s.wants(event, &attributes))
            .collect();
        if wanting.is_empty() {
            continue;
        }
        let event_id = new_id();
        let payload = change.body(user_id).to_string();
        insert_event(connection, &event_id, user_id, event, &payload, at)?;
        let key = change.ordering_key();
        for subscription in wanting {
            insert_delivery(
                connection,
                &subscription.id,
                user_id,
                &event_id,
                event,
                &key,
                at,
            )?;
        }
    }
    Ok(())
}

#[async_trait]
impl WebhookStore for SqliteStore {
    #[instrument(skip_all)]
    async fn create_subscription(
        &self,
        user_id: &str,
        subscription: NewSubscription,
        max_per_user: usize,
    ) -> StoreResult<Subscription> {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            let count: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM webhook_subscriptions WHERE user_id = ?1",
                    [&user_id],
                    |row| row.get(0),
                )
                .map_err(map_error)?;
            if count as usize >= max_per_user {
                return Err(StoreError::LimitReached);
            }
            let at = to_micros(subscription.created_at);
            tx.execute(
                "INSERT INTO webhook_subscriptions (id, user_id, url, events, folder_id, category,
                     source, active, secret, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![
                    subscription.id,
                    user_id,
                    subscription.url,
                    events_json(&subscription.events),
                    subscription.filters.folder_id,
                    subscription.filters.category,
                    subscription.filters.source,
                    subscription.active,
                    subscription.secret.expose(),
                    at
                ],
            )
            .map_err(map_error)?;
            find_subscription(tx, &user_id, &subscription.id)
                .map_err(map_error)?
                .ok_or_else(|| StoreError::Internal(anyhow::anyhow!("inserted row is missing")))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_subscriptions(&self, user_id: &str) -> StoreResult<Vec<Subscription>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE user_id = ?1
                 ORDER BY created_at, id"
            ))?
            .query_map([user_id], subscription_from_row)?
            .collect()
        })
    }

    #[instrument(skip_all)]
    async fn get_subscription(&self, user_id: &str, id: &str) -> StoreResult<Option<Subscription>> {
        self.read(|c| find_subscription(c, user_id, id))
    }

    #[instrument(skip_all)]
    async fn update_subscription(
        &self,
        user_id: &str,
        id: &str,
        changes: SubscriptionChanges,
        now: Timestamp,
    ) -> StoreResult<Option<Subscription>> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |tx| {
            let Some(mut current) = find_subscription(tx, &user_id, &id).map_err(map_error)? else {
                return Ok(None);
            };
            let reactivated = changes.active == Some(true) && !current.active;
            if let Some(url) = changes.url {
                current.url = url;
            }
            if let Some(events) = changes.events {
                current.events = events;
            }
            if let Some(filters) = changes.filters {
                current.filters = filters;
            }
            if let Some(active) = changes.active {
                current.active = active;
            }
            tx.execute(
                "UPDATE webhook_subscriptions
                 SET url = ?3, events = ?4, folder_id = ?5, category = ?6, source = ?7,
                     active = ?8, updated_at = ?9,
                     disabled_reason = CASE WHEN ?10 THEN NULL ELSE disabled_reason END,
                     failing_since = CASE WHEN ?10 THEN NULL ELSE failing_since END
                 WHERE user_id = ?1 AND id = ?2",
                params![
                    user_id,
                    id,
                    current.url,
                    events_json(&current.events),
                    current.filters.folder_id,
                    current.filters.category,
                    current.filters.source,
                    current.active,
                    to_micros(now),
                    reactivated
                ],
            )
            .map_err(map_error)?;
            find_subscription(tx, &user_id, &id).map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn rotate_subscription_secret(
        &self,
        user_id: &str,
        id: &str,
        secret: Secret,
        now: Timestamp,
    ) -> StoreResult<Option<Subscription>> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |tx| {
            tx.execute(
                "UPDATE webhook_subscriptions SET secret = ?3, updated_at = ?4
                 WHERE user_id = ?1 AND id = ?2",
                params![user_id, id, secret.expose(), to_micros(now)],
            )
            .map_err(map_error)?;
            find_subscription(tx, &user_id, &id).map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn delete_subscription(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |tx| {
            let deleted = tx
                .execute(
                    "DELETE FROM webhook_subscriptions WHERE user_id = ?1 AND id = ?2",
                    params![user_id, id],
                )
                .map_err(map_error)?;
            Ok(deleted > 0)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn record_changes(&self, user_id: &str, changes: Vec<Change>) -> StoreResult<()> {
        let user_id = user_id.to_string();
        self.write(move |tx| record(tx, &user_id, &changes).map_err(map_error))
            .await
    }

    #[instrument(skip_all)]
    async fn enqueue_ping(
        &self,
        user_id: &str,
        subscription_id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>> {
        let (user_id, subscription_id) = (user_id.to_string(), subscription_id.to_string());
        self.write(move |tx| {
            if find_subscription(tx, &user_id, &subscription_id)
                .map_err(map_error)?
                .is_none()
            {
                return Ok(None);
            }
            let at = to_micros(now);
            let event_id = new_id();
            let body = ping_body(&subscription_id, &now).to_string();
            insert_event(tx, &event_id, &user_id, EventType::Ping, &body, at).map_err(map_error)?;
            let id = insert_delivery(
                tx,
                &subscription_id,
                &user_id,
                &event_id,
                EventType::Ping,
                &format!("ping:{event_id}"),
                at,
            )
            .map_err(map_error)?;
            find_delivery(tx, &id).map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_deliveries(
        &self,
        user_id: &str,
        subscription_id: &str,
        page: Page,
    ) -> StoreResult<Option<Vec<Delivery>>> {
        self.read(|c| {
            if find_subscription(c, user_id, subscription_id)?.is_none() {
                return Ok(None);
            }
            c.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
                 JOIN webhook_events e ON e.id = d.event_id
                 WHERE d.subscription_id = ?1 ORDER BY d.seq DESC LIMIT ?2 OFFSET ?3"
            ))?
            .query_map(
                params![subscription_id, page.limit, page.offset],
                delivery_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map(Some)
        })
    }

    #[instrument(skip_all)]
    async fn redeliver(
        &self,
        user_id: &str,
        subscription_id: &str,
        delivery_id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>> {
        let (user_id, subscription_id, delivery_id) = (
            user_id.to_string(),
            subscription_id.to_string(),
            delivery_id.to_string(),
        );
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?4,
                         lease_until = NULL, lease_token = NULL, updated_at = ?4
                     WHERE id = ?3 AND subscription_id = ?2 AND user_id = ?1
                       AND EXISTS (SELECT 1 FROM webhook_events e
                                   WHERE e.id = event_id AND e.payload IS NOT NULL)",
                    params![user_id, subscription_id, delivery_id, to_micros(now)],
                )
                .map_err(map_error)?;
            if changed == 0 {
                return Ok(None);
            }
            find_delivery(tx, &delivery_id).map_err(map_error)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
        lease_token: &str,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let token = lease_token.to_string();
        let at = to_micros(now);
        let until = at + lease.as_micros() as i64;
        self.write(move |tx| {
            let claimed = tx
                .prepare_cached(
                    "SELECT d.id, d.subscription_id, d.user_id, s.url, s.secret, d.event_type,
                         e.payload, d.attempts, e.created_at
                     FROM webhook_deliveries d
                     JOIN webhook_subscriptions s ON s.id = d.subscription_id
                     JOIN webhook_events e ON e.id = d.event_id
                     WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
                       AND (d.lease_until IS NULL OR d.lease_until < ?1)
                       AND (s.active = 1 OR d.event_type = 'ping') AND e.payload IS NOT NULL
                       AND NOT EXISTS (
                           SELECT 1 FROM webhook_deliveries p
                           WHERE p.subscription_id = d.subscription_id
                             AND p.ordering_key = d.ordering_key
                             AND p.status = 'pending' AND p.seq < d.seq)
                     ORDER BY d.next_attempt_at, d.seq LIMIT ?2",
                )
                .map_err(map_error)?
                .query_map(params![at, limit as i64], |row| {
                    Ok(ClaimedDelivery {
                        id: row.get(0)?,
                        subscription_id: row.get(1)?,
                        user_id: row.get(2)?,
                        url: row.get(3)?,
                        secret: Secret::new(row.get::<_, String>(4)?),
                        event_type: row.get(5)?,
                        payload: row.get(6)?,
                        attempts: row.get(7)?,
                        event_created_at: from_micros(row.get(8)?),
                        lease_token: token.clone(),
                    })
                })
                .map_err(map_error)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_error)?;
            let mut lease = tx
                .prepare_cached(
                    "UPDATE webhook_deliveries SET lease_until = ?2, lease_token = ?3
                     WHERE id = ?1",
                )
                .map_err(map_error)?;
            for delivery in &claimed {
                lease
                    .execute(params![delivery.id, until, token])
                    .map_err(map_error)?;
            }
            Ok(claimed)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        record: AttemptRecord,
    ) -> StoreResult<()> {
        let delivery = delivery.clone();
        self.write(move |tx| {
            let at = to_micros(record.at);
            let (status, next, delivered_at) = match record.next {
                NextStep::Delivered => ("delivered", at, Some(at)),
                NextStep::RetryAt(next) => ("pending", to_micros(next), None),
                NextStep::Failed => ("failed", at, None),
            };
            let changed = tx
                .prepare_cached(
                    "UPDATE webhook_deliveries
                     SET status = ?3, attempts = attempts + 1, next_attempt_at = ?4,
                         lease_until = NULL, lease_token = NULL, response_status = ?5,
                         latency_ms = ?6, error = ?7, updated_at = ?8,
                         delivered_at = COALESCE(?9, delivered_at)
                     WHERE id = ?1 AND lease_token = ?2",
                )
                .map_err(map_error)?
                .execute(params![
                    delivery.id,
                    delivery.lease_token,
                    status,
                    next,
                    record.response_status,
                    record.latency_ms as i64,
                    record.error,
                    at,
                    delivered_at
                ])
                .map_err(map_error)?;
            if changed == 0 {
                return Ok(());
            }
            if record.next == NextStep::Delivered {
                tx.prepare_cached(
                    "UPDATE webhook_subscriptions SET failing_since = NULL
                     WHERE id = ?1 AND failing_since IS NOT NULL",
                )
                .map_err(map_error)?
                .execute([&delivery.subscription_id])
                .map_err(map_error)?;
            } else {
                let disable_before = at - record.disable_after.as_micros() as i64;
                tx.prepare_cached(
                    "UPDATE webhook_subscriptions
                     SET failing_since = COALESCE(failing_since, ?2),
                         active = CASE WHEN failing_since <= ?3 THEN 0 ELSE active END,
                         disabled_reason = CASE WHEN failing_since <= ?3
                             THEN ?4 ELSE disabled_reason END,
                         updated_at = CASE WHEN failing_since <= ?3 THEN ?2 ELSE updated_at END
                     WHERE id = ?1",
                )
                .map_err(map_error)?
                .execute(params![
                    delivery.subscription_id,
                    at,
                    disable_before,
                    disabled_reason(
                        record.disable_after,
                        &record.error.clone().unwrap_or_else(|| format!(
                            "HTTP {}",
                            record.response_status.unwrap_or_default()
                        ))
                    )
                ])
                .map_err(map_error)?;
            }
            Ok(())
        })
        .await
    }

    #[instrument(skip_all)]
    async fn webhook_queue(&self) -> StoreResult<QueueStats> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'",
            )?
            .query_row([], |row| {
                Ok(QueueStats {
                    pending: row.get::<_, i64>(0)? as u64,
                    oldest_pending: row.get::<_, Option<i64>>(1)?.map(from_micros),
                })
            })
        })
    }

    #[instrument(skip_all)]
    async fn purge_webhook_bodies(&self, before: Timestamp) -> StoreResult<u64> {
        let before = to_micros(before);
        self.write(move |tx| {
            let purged = tx
                .execute(
                    "UPDATE webhook_events SET payload = NULL
                     WHERE created_at < ?1 AND payload IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                       WHERE d.event_id = webhook_events.id
                                         AND d.status = 'pending')",
                    [before],
                )
                .map_err(map_error)?;
            Ok(purged as u64)
        })
        .await
    }
}

/// Records the event of one object an import wrote (`kind` as the import names it), read
/// back in the import's transaction.
pub(super) fn record_imported(
    c: &Connection,
    user_id: &str,
    kind: &str,
    local_id: &str,
    created: bool,
) -> rusqlite::Result<()> {
    let change = match kind {
        "conversation" => {
            if !wanted(
                c,
                user_id,
                &[
                    EventType::ConversationCreated,
                    EventType::ConversationUpdated,
                ],
            )? {
                return Ok(());
            }
            super::conversations::find_conversation(c, user_id, local_id, true)?
                .filter(|conversation| !(created && conversation.discarded))
                .map(|conversation| Change::Conversation {
                    created,
                    updated_at: now(),
                    conversation: Box::new(conversation),
                })
        }
        "action_item" => {
            super::action_items::find(c, user_id, local_id)?.map(|item| Change::ActionItem {
                created,
                item: Box::new(item),
            })
        }
        "memory" => {
            super::memories::find_memory(c, user_id, local_id)?.map(|memory| Change::Memory {
                created,
                memory: Box::new(memory),
            })
        }
        "goal" => super::goals::find(c, user_id, local_id)?.map(|g| Change::Goal(Box::new(g))),
        _ => None,
    };
    match change {
        Some(change) => record(c, user_id, &[change]),
        None => Ok(()),
    }
}
