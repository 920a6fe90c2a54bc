-- Outbound webhooks: a user's subscriptions, the outbox of events (written in the transaction
-- of the change they describe), and one delivery per (event, subscription) with its state.

CREATE TABLE webhook_subscriptions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    -- JSON array of event type names.
    events          TEXT NOT NULL,
    folder_id       TEXT,
    category        TEXT,
    source          TEXT,
    active          INTEGER NOT NULL,
    -- The signing secret itself: HMAC needs it (see docs/DECISIONS.md).
    secret          TEXT NOT NULL,
    disabled_reason TEXT,
    -- Start of the current run of failed attempts; cleared by a success.
    failing_since   INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX webhook_subscriptions_by_user ON webhook_subscriptions (user_id, created_at);

CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_type  TEXT NOT NULL,
    -- The JSON body; NULL once the retention period is over.
    payload     TEXT,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX webhook_events_by_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    ordering_key    TEXT NOT NULL,
    -- pending, delivered or failed.
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    lease_token     TEXT,
    response_status INTEGER,
    latency_ms      INTEGER,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_in_order ON webhook_deliveries (subscription_id, ordering_key, seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, seq);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
