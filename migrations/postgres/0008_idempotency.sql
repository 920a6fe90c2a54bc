-- Answers kept for Idempotency-Key retries: one row per (key, method, path, idempotency key).
-- `status` is NULL while the first request runs.
CREATE TABLE idempotency_keys (
    key_id          text NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    method          text NOT NULL,
    path            text NOT NULL,
    idempotency_key text NOT NULL,
    fingerprint     text NOT NULL,
    status          integer,
    content_type    text,
    body            bytea,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (key_id, method, path, idempotency_key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (key_id, created_at);
