//! Webhook subscriptions, outbox and deliveries on PostgreSQL. [`record`] is what every write
//! method calls inside its transaction; workers of every replica claim due deliveries with
//! `FOR UPDATE SKIP LOCKED`, so each is sent by one of them.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tracing::instrument;

use super::{PgStore, execute, lock_user, query, query_opt};
use crate::domain::credentials::Secret;
use crate::domain::ids::new_id;
use crate::domain::paging::Page;
use crate::domain::time::{Timestamp, now};
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

fn subscription_from_row(row: &Row) -> StoreResult<Subscription> {
    Ok(Subscription {
        id: row.try_get(0)?,
        url: row.try_get(1)?,
        events: events_from_json(row.try_get(2)?),
        filters: SubscriptionFilters {
            folder_id: row.try_get(3)?,
            category: row.try_get(4)?,
            source: row.try_get(5)?,
        },
        active: row.try_get(6)?,
        disabled_reason: row.try_get(7)?,
        created_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
    })
}

fn delivery_from_row(row: &Row) -> StoreResult<Delivery> {
    let status: String = row.try_get(3)?;
    let payload: Option<String> = row.try_get(9)?;
    Ok(Delivery {
        id: row.try_get(0)?,
        webhook_id: row.try_get(1)?,
        event: EventType::parse(row.try_get(2)?).unwrap_or(EventType::Ping),
        next_attempt_at: if status == "pending" {
            Some(row.try_get(7)?)
        } else {
            None
        },
        status,
        attempts: row.try_get::<_, i32>(4)? as u32,
        response_status: row.try_get::<_, Option<i32>>(5)?.map(|s| s as u16),
        latency_ms: row.try_get::<_, Option<i32>>(6)?.map(|l| l as u64),
        error: row.try_get(8)?,
        payload: payload.and_then(|text| serde_json::from_str(&text).ok()),
        created_at: row.try_get(10)?,
        delivered_at: row.try_get(11)?,
    })
}

async fn find_subscription(
    client: &impl GenericClient,
    user_id: &str,
    id: &str,
) -> StoreResult<Option<Subscription>> {
    let sql = format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE user_id = $1 AND id = $2"
    );
    query_opt(client, &sql, &[&user_id, &id])
        .await?
        .as_ref()
        .map(subscription_from_row)
        .transpose()
}

async fn find_delivery(client: &impl GenericClient, id: &str) -> StoreResult<Option<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
         JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1"
    );
    query_opt(client, &sql, &[&id])
        .await?
        .as_ref()
        .map(delivery_from_row)
        .transpose()
}

async fn active_subscriptions(
    client: &impl GenericClient,
    user_id: &str,
) -> StoreResult<Vec<Subscription>> {
    let sql = format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
         WHERE user_id = $1 AND active"
    );
    query(client, &sql, &[&user_id])
        .await?
        .iter()
        .map(subscription_from_row)
        .collect()
}

/// Whether any active subscription of the user wants one of `events`.
pub(super) async fn wanted(
    client: &impl GenericClient,
    user_id: &str,
    events: &[EventType],
) -> StoreResult<bool> {
    Ok(active_subscriptions(client, user_id)
        .await?
        .iter()
        .any(|s| events.iter().any(|e| s.events.contains(e))))
}

/// Events and their deliveries gathered for one write, then inserted as one statement per
/// table (events first: deliveries reference them).
#[derive(Default)]
struct Outbox {
    event_ids: Vec<String>,
    event_types: Vec<&'static str>,
    payloads: Vec<String>,
    delivery_ids: Vec<String>,
    subscription_ids: Vec<String>,
    delivery_event_ids: Vec<String>,
    delivery_types: Vec<&'static str>,
    ordering_keys: Vec<String>,
}

impl Outbox {
    /// Adds an event with one delivery per subscription, in order; returns the delivery ids.
    fn add(
        &mut self,
        event_id: String,
        event: EventType,
        payload: String,
        ordering_key: &str,
        subscription_ids: impl IntoIterator<Item = String>,
    ) -> Vec<String> {
        let mut added = Vec::new();
        for subscription_id in subscription_ids {
            let id = new_id();
            added.push(id.clone());
            self.delivery_ids.push(id);
            self.subscription_ids.push(subscription_id);
            self.delivery_event_ids.push(event_id.clone());
            self.delivery_types.push(event.as_str());
            self.ordering_keys.push(ordering_key.to_string());
        }
        self.event_ids.push(event_id);
        self.event_types.push(event.as_str());
        self.payloads.push(payload);
        added
    }

    async fn write(
        &self,
        client: &impl GenericClient,
        user_id: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        if self.event_ids.is_empty() {
            return Ok(());
        }
        execute(
            client,
            "INSERT INTO webhook_events (user_id, created_at, id, event_type, payload)
             SELECT $1::text, $2::timestamptz, e.*
             FROM UNNEST($3::text[], $4::text[], $5::text[]) AS e",
            &[
                &user_id,
                &at,
                &self.event_ids,
                &self.event_types,
                &self.payloads,
            ],
        )
        .await?;
        // `seq` orders the deliveries of one ordering key: it is drawn in the order added.
        execute(
            client,
            "INSERT INTO webhook_deliveries (user_id, id, subscription_id, event_id, event_type,
                 ordering_key, status, attempts, next_attempt_at, created_at, updated_at)
             SELECT $1::text, d.id, d.subscription_id, d.event_id, d.event_type, d.ordering_key,
                 'pending', 0, $2::timestamptz, $2::timestamptz, $2::timestamptz
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                 WITH ORDINALITY
                 AS d (id, subscription_id, event_id, event_type, ordering_key, n)
             ORDER BY d.n",
            &[
                &user_id,
                &at,
                &self.delivery_ids,
                &self.subscription_ids,
                &self.delivery_event_ids,
                &self.delivery_types,
                &self.ordering_keys,
            ],
        )
        .await
        .map(|_| ())
    }
}

/// Writes the events of `changes` that an active subscription wants, and their deliveries,
/// inside the caller's transaction.
pub(super) async fn record(
    client: &impl GenericClient,
    user_id: &str,
    changes: &[Change],
) -> StoreResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let subscriptions = active_subscriptions(client, user_id).await?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    let mut outbox = Outbox::default();
    for change in changes {
        let (event, attributes) = (change.event_type(), change.attributes());
        let wanting: Vec<String> = subscriptions
            .iter()
            .filter(|s| s.wants(event, &attributes))
            .map(|s| s.id.clone())
            .collect();
        if wanting.is_empty() {
            continue;
        }
        let payload = change.body(user_id).to_string();
        outbox.add(new_id(), event, payload, &change.ordering_key(), wanting);
    }
    outbox.write(client, user_id, now()).await
}

#[async_trait]
impl WebhookStore for PgStore {
    #[instrument(skip_all)]
    async fn create_subscription(
        &self,
        user_id: &str,
        subscription: NewSubscription,
        max_per_user: usize,
    ) -> StoreResult<Subscription> {
        in_transaction!(self, |tx| {
            // Concurrent creations of one user queue here, so the cap holds.
            lock_user(tx, user_id).await?;
            let count: i64 = query_opt(
                tx,
                "SELECT COUNT(*) FROM webhook_subscriptions WHERE user_id = $1",
                &[&user_id],
            )
            .await?
            .map(|row| row.try_get(0))
            .transpose()?
            .unwrap_or_default();
            if count as usize >= max_per_user {
                return Err(StoreError::LimitReached);
            }
            execute(
                tx,
                "INSERT INTO webhook_subscriptions (id, user_id, url, events, folder_id,
                     category, source, active, secret, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                &[
                    &subscription.id,
                    &user_id,
                    &subscription.url,
                    &events_json(&subscription.events),
                    &subscription.filters.folder_id,
                    &subscription.filters.category,
                    &subscription.filters.source,
                    &subscription.active,
                    &subscription.secret.expose(),
                    &subscription.created_at,
                ],
            )
            .await?;
            find_subscription(tx, user_id, &subscription.id)
                .await?
                .ok_or_else(|| StoreError::Internal(anyhow::anyhow!("inserted row is missing")))
        })
    }

    #[instrument(skip_all)]
    async fn list_subscriptions(&self, user_id: &str) -> StoreResult<Vec<Subscription>> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE user_id = $1
             ORDER BY created_at, id"
        );
        with_connection!(self, |client| {
            query(client, &sql, &[&user_id])
                .await?
                .iter()
                .map(subscription_from_row)
                .collect()
        })
    }

    #[instrument(skip_all)]
    async fn get_subscription(&self, user_id: &str, id: &str) -> StoreResult<Option<Subscription>> {
        with_connection!(self, |client| find_subscription(client, user_id, id).await)
    }

    #[instrument(skip_all)]
    async fn update_subscription(
        &self,
        user_id: &str,
        id: &str,
        changes: SubscriptionChanges,
        now: Timestamp,
    ) -> StoreResult<Option<Subscription>> {
        in_transaction!(self, |tx| {
            let sql = format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
                 WHERE user_id = $1 AND id = $2 FOR UPDATE"
            );
            let Some(row) = query_opt(tx, &sql, &[&user_id, &id]).await? else {
                return Ok(None);
            };
            let mut current = subscription_from_row(&row)?;
            let reactivated = changes.active == Some(true) && !current.active;
            if let Some(url) = &changes.url {
                current.url = url.clone();
            }
            if let Some(events) = &changes.events {
                current.events = events.clone();
            }
            if let Some(filters) = &changes.filters {
                current.filters = filters.clone();
            }
            if let Some(active) = changes.active {
                current.active = active;
            }
            execute(
                tx,
                "UPDATE webhook_subscriptions
                 SET url = $3, events = $4, folder_id = $5, category = $6, source = $7,
                     active = $8, updated_at = $9,
                     disabled_reason = CASE WHEN $10 THEN NULL ELSE disabled_reason END,
                     failing_since = CASE WHEN $10 THEN NULL ELSE failing_since END
                 WHERE user_id = $1 AND id = $2",
                &[
                    &user_id,
                    &id,
                    &current.url,
                    &events_json(&current.events),
                    &current.filters.folder_id,
                    &current.filters.category,
                    &current.filters.source,
                    &current.active,
                    &now,
                    &reactivated,
                ],
            )
            .await?;
            find_subscription(tx, user_id, id).await
        })
    }

    #[instrument(skip_all)]
    async fn rotate_subscription_secret(
        &self,
        user_id: &str,
        id: &str,
        secret: Secret,
        now: Timestamp,
    ) -> StoreResult<Option<Subscription>> {
        in_transaction!(self, |tx| {
            execute(
                tx,
                "UPDATE webhook_subscriptions SET secret = $3, updated_at = $4
                 WHERE user_id = $1 AND id = $2",
                &[&user_id, &id, &secret.expose(), &now],
            )
            .await?;
            find_subscription(tx, user_id, id).await
        })
    }

    #[instrument(skip_all)]
    async fn delete_subscription(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        with_connection!(self, |client| {
            execute(
                client,
                "DELETE FROM webhook_subscriptions WHERE user_id = $1 AND id = $2",
                &[&user_id, &id],
            )
            .await
            .map(|deleted| deleted > 0)
        })
    }

    #[instrument(skip_all)]
    async fn record_changes(&self, user_id: &str, changes: Vec<Change>) -> StoreResult<()> {
        in_transaction!(self, |tx| record(tx, user_id, &changes).await)
    }

    #[instrument(skip_all)]
    async fn enqueue_ping(
        &self,
        user_id: &str,
        subscription_id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>> {
        in_transaction!(self, |tx| {
            if find_subscription(tx, user_id, subscription_id)
                .await?
                .is_none()
            {
                return Ok(None);
            }
            let mut outbox = Outbox::default();
            let body = ping_body(subscription_id, &now).to_string();
            let event_id = new_id();
            let ordering_key = format!("ping:{event_id}");
            let ids = outbox.add(
                event_id,
                EventType::Ping,
                body,
                &ordering_key,
                [subscription_id.to_string()],
            );
            outbox.write(tx, user_id, now).await?;
            find_delivery(tx, &ids[0]).await
        })
    }

    #[instrument(skip_all)]
    async fn list_deliveries(
        &self,
        user_id: &str,
        subscription_id: &str,
        page: Page,
    ) -> StoreResult<Option<Vec<Delivery>>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
             JOIN webhook_events e ON e.id = d.event_id
             WHERE d.subscription_id = $1 ORDER BY d.seq DESC LIMIT $2 OFFSET $3"
        );
        with_connection!(self, |client| {
            if find_subscription(client, user_id, subscription_id)
                .await?
                .is_none()
            {
                return Ok(None);
            }
            query(client, &sql, &[&subscription_id, &page.limit, &page.offset])
                .await?
                .iter()
                .map(delivery_from_row)
                .collect::<StoreResult<Vec<_>>>()
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
        in_transaction!(self, |tx| {
            let changed = execute(
                tx,
                "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = $4,
                     lease_until = NULL, lease_token = NULL, updated_at = $4
                 WHERE d.id = $3 AND d.subscription_id = $2 AND d.user_id = $1
                   AND EXISTS (SELECT 1 FROM webhook_events e
                               WHERE e.id = d.event_id AND e.payload IS NOT NULL)",
                &[&user_id, &subscription_id, &delivery_id, &now],
            )
            .await?;
            if changed == 0 {
                return Ok(None);
            }
            find_delivery(tx, delivery_id).await
        })
    }

    #[instrument(skip_all)]
    async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
        lease_token: &str,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let until = now + chrono::TimeDelta::from_std(lease).unwrap_or_default();
        let limit = limit as i64;
        in_transaction!(self, |tx| {
            let rows = query(
                tx,
                "WITH due AS (
                     SELECT d.seq FROM webhook_deliveries d
                     JOIN webhook_subscriptions s ON s.id = d.subscription_id
                     WHERE d.status = 'pending' AND d.next_attempt_at <= $1
                       AND (d.lease_until IS NULL OR d.lease_until < $1)
                       AND (s.active OR d.event_type = 'ping')
                       AND NOT EXISTS (
                           SELECT 1 FROM webhook_deliveries p
                           WHERE p.subscription_id = d.subscription_id
                             AND p.ordering_key = d.ordering_key
                             AND p.status = 'pending' AND p.seq < d.seq)
                     ORDER BY d.next_attempt_at, d.seq LIMIT $2
                     FOR UPDATE OF d SKIP LOCKED)
                 UPDATE webhook_deliveries d SET lease_until = $3, lease_token = $4
                 FROM due, webhook_subscriptions s, webhook_events e
                 WHERE d.seq = due.seq AND s.id = d.subscription_id AND e.id = d.event_id
                   AND e.payload IS NOT NULL
                 RETURNING d.id, d.subscription_id, d.user_id, s.url, s.secret, d.event_type,
                     e.payload, d.attempts, e.created_at",
                &[&now, &limit, &until, &lease_token],
            )
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(ClaimedDelivery {
                        id: row.try_get(0)?,
                        subscription_id: row.try_get(1)?,
                        user_id: row.try_get(2)?,
                        url: row.try_get(3)?,
                        secret: Secret::new(row.try_get::<_, String>(4)?),
                        event_type: row.try_get(5)?,
                        payload: row.try_get(6)?,
                        attempts: row.try_get::<_, i32>(7)? as u32,
                        event_created_at: row.try_get(8)?,
                        lease_token: lease_token.to_string(),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()
        })
    }

    #[instrument(skip_all)]
    async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        record: AttemptRecord,
    ) -> StoreResult<()> {
        let at = record.at;
        let (status, next, delivered_at) = match record.next {
            NextStep::Delivered => ("delivered", at, Some(at)),
            NextStep::RetryAt(next) => ("pending", next, None),
            NextStep::Failed => ("failed", at, None),
        };
        let response_status = record.response_status.map(i32::from);
        let latency = record.latency_ms.min(i32::MAX as u64) as i32;
        let reason = disabled_reason(
            record.disable_after,
            &record
                .error
                .clone()
                .unwrap_or_else(|| format!("HTTP {}", record.response_status.unwrap_or_default())),
        );
        let disable_before =
            at - chrono::TimeDelta::from_std(record.disable_after).unwrap_or_default();
        in_transaction!(self, |tx| {
            let changed = execute(
                tx,
                "UPDATE webhook_deliveries
                 SET status = $3, attempts = attempts + 1, next_attempt_at = $4,
                     lease_until = NULL, lease_token = NULL, response_status = $5,
                     latency_ms = $6, error = $7, updated_at = $8,
                     delivered_at = COALESCE($9, delivered_at)
                 WHERE id = $1 AND lease_token = $2",
                &[
                    &delivery.id,
                    &delivery.lease_token,
                    &status,
                    &next,
                    &response_status,
                    &latency,
                    &record.error,
                    &at,
                    &delivered_at,
                ],
            )
            .await?;
            if changed == 0 {
                return Ok(());
            }
            if record.next == NextStep::Delivered {
                execute(
                    tx,
                    "UPDATE webhook_subscriptions SET failing_since = NULL
                     WHERE id = $1 AND failing_since IS NOT NULL",
                    &[&delivery.subscription_id],
                )
                .await?;
            } else {
                execute(
                    tx,
                    "UPDATE webhook_subscriptions
                     SET failing_since = COALESCE(failing_since, $2),
                         active = CASE WHEN failing_since <= $3 THEN FALSE ELSE active END,
                         disabled_reason = CASE WHEN failing_since <= $3
                             THEN $4 ELSE disabled_reason END,
                         updated_at = CASE WHEN failing_since <= $3 THEN $2 ELSE updated_at END
                     WHERE id = $1",
                    &[&delivery.subscription_id, &at, &disable_before, &reason],
                )
                .await?;
            }
            Ok(())
        })
    }

    #[instrument(skip_all)]
    async fn webhook_queue(&self) -> StoreResult<QueueStats> {
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'",
                &[],
            )
            .await?;
            Ok(match row {
                Some(row) => QueueStats {
                    pending: row.try_get::<_, i64>(0)? as u64,
                    oldest_pending: row.try_get(1)?,
                },
                None => QueueStats::default(),
            })
        })
    }

    #[instrument(skip_all)]
    async fn purge_webhook_bodies(&self, before: Timestamp) -> StoreResult<u64> {
        with_connection!(self, |client| {
            execute(
                client,
                "UPDATE webhook_events e SET payload = NULL
                 WHERE e.created_at < $1 AND e.payload IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                   WHERE d.event_id = e.id AND d.status = 'pending')",
                &[&before],
            )
            .await
        })
    }
}

/// Records the event of one object an import wrote (`kind` as the import names it), read
/// back in the import's transaction.
pub(super) async fn record_imported(
    client: &impl GenericClient,
    user_id: &str,
    kind: &str,
    local_id: &str,
    created: bool,
) -> StoreResult<()> {
    use crate::store::columns::{ACTION_ITEM_COLUMNS, GOAL_COLUMNS, MEMORY_COLUMNS};
    let one = |table: &str, columns: &str| {
        format!("SELECT {columns} FROM {table} WHERE user_id = $1 AND id = $2")
    };
    let change = match kind {
        "conversation" => {
            if !wanted(
                client,
                user_id,
                &[
                    EventType::ConversationCreated,
                    EventType::ConversationUpdated,
                ],
            )
            .await?
            {
                return Ok(());
            }
            super::conversations::find_conversation(client, user_id, local_id)
                .await?
                .filter(|conversation| !(created && conversation.discarded))
                .map(|conversation| Change::Conversation {
                    created,
                    updated_at: now(),
                    conversation: Box::new(conversation),
                })
        }
        "action_item" => query_opt(
            client,
            &one("action_items", ACTION_ITEM_COLUMNS),
            &[&user_id, &local_id],
        )
        .await?
        .map(|row| super::rows::action_item_from_row(&row))
        .transpose()?
        .map(|item| Change::ActionItem {
            created,
            item: Box::new(item),
        }),
        "memory" => query_opt(
            client,
            &one("memories", MEMORY_COLUMNS),
            &[&user_id, &local_id],
        )
        .await?
        .map(|row| super::rows::memory_from_row(&row))
        .transpose()?
        .map(|memory| Change::Memory {
            created,
            memory: Box::new(memory),
        }),
        "goal" => query_opt(client, &one("goals", GOAL_COLUMNS), &[&user_id, &local_id])
            .await?
            .map(|row| super::goals::goal_from_row(&row))
            .transpose()?
            .map(|goal| Change::Goal(Box::new(goal))),
        _ => None,
    };
    match change {
        Some(change) => record(client, user_id, &[change]).await,
        None => Ok(()),
    }
}
