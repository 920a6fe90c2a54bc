-- Deliveries from the Omi app's developer webhooks (`/v1/ingest/omi/...`). The raw body is
-- written here before the server answers, then processed behind the answer; a delivery that
-- cannot be processed stays with its error. `dedupe_key` is the `Idempotency-Key` the app sent,
-- or a digest of the content when it sent none, so a retried delivery is stored once.
CREATE TABLE ingest_inbox (
    seq             BIGSERIAL PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL,
    body            BYTEA NOT NULL,
    params          TEXT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    -- `pending` (to process), `done`, or `failed` (retries exhausted or never processable).
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- A worker holds a claimed delivery until then; after it, another may take it over.
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    processed_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX ingest_inbox_dedupe ON ingest_inbox (user_id, dedupe_key);
CREATE INDEX ingest_inbox_due ON ingest_inbox (next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX ingest_inbox_failed ON ingest_inbox (seq) WHERE state = 'failed';

-- A live transcript (`realtime_transcript`) being received: segments accumulate until no new
-- one arrives for the gap, then the session closes into a conversation. At most one open
-- session per user. Audio and button events delivered meanwhile belong to the session.
CREATE TABLE ingest_sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- `open`, `closed` (a conversation was made from it) or `merged` (a finished conversation
    -- delivered by the app took its place).
    state           TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    last_at         TIMESTAMPTZ NOT NULL,
    segments        TEXT NOT NULL,
    events          TEXT NOT NULL,
    audio           BYTEA,
    sample_rate     BIGINT,
    conversation_id TEXT,
    closed_at       TIMESTAMPTZ
);
CREATE UNIQUE INDEX ingest_sessions_open ON ingest_sessions (user_id) WHERE state = 'open';
CREATE INDEX ingest_sessions_by_conversation ON ingest_sessions (user_id, conversation_id);
CREATE INDEX ingest_sessions_by_time ON ingest_sessions (user_id, last_at);
