-- Answers kept for Idempotency-Key retries: one row per (key, method, path, idempotency key).
-- `status` is NULL while the first request runs. Times are integer microseconds.
CREATE TABLE idempotency_keys (
    key_id          TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    status          INTEGER,
    content_type    TEXT,
    body            BLOB,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (key_id, method, path, idempotency_key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (key_id, created_at);
