-- Conversations, their transcripts, the folders they are filed in, and the claims that make
-- creation with a client_session_id idempotent. Times are integer microseconds.

-- System folders are keyed by (user_id, system_key) so that two conversations filed at once
-- cannot create a folder twice.
CREATE TABLE folders (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    system_key  TEXT,
    name        TEXT NOT NULL,
    description TEXT,
    color       TEXT NOT NULL,
    icon        TEXT NOT NULL,
    sort_order  INTEGER NOT NULL,
    is_default  INTEGER NOT NULL,
    is_system   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX folders_by_system_key ON folders (user_id, system_key);
CREATE INDEX folders_by_order ON folders (user_id, sort_order, created_at, id);

-- A stored conversation is always complete: one still being processed exists only as a claim.
-- `text` and `text_source` are set for conversations created from text, so that a restored
-- conversation can be processed again; `events` and `geolocation` are JSON.
CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    title            TEXT NOT NULL,
    overview         TEXT NOT NULL,
    emoji            TEXT NOT NULL,
    category         TEXT NOT NULL,
    events           TEXT NOT NULL,
    language         TEXT NOT NULL,
    source           TEXT NOT NULL,
    text             TEXT,
    text_source      TEXT,
    text_source_spec TEXT,
    discarded        INTEGER NOT NULL,
    processed_by     TEXT NOT NULL,
    folder_id        TEXT REFERENCES folders(id) ON DELETE SET NULL,
    geolocation      TEXT
) STRICT;

-- The list order (created_at desc, then id desc) over kept conversations, with and without the
-- category and folder filters. The trailing category lets a filter on several categories be
-- checked without reading the table.
CREATE INDEX conversations_list_order ON conversations (user_id, created_at DESC, id DESC, category)
    WHERE discarded = 0;
CREATE INDEX conversations_by_category ON conversations (user_id, category, created_at DESC, id DESC)
    WHERE discarded = 0;
-- Also answers the folders' live counts without reading the table.
CREATE INDEX conversations_by_folder
    ON conversations (user_id, folder_id, discarded, created_at DESC, id DESC);

CREATE TABLE transcript_segments (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    id              TEXT NOT NULL,
    text            TEXT NOT NULL,
    speaker         TEXT NOT NULL,
    speaker_id      INTEGER NOT NULL,
    is_user         INTEGER NOT NULL,
    person_id       TEXT,
    start_seconds   REAL NOT NULL,
    end_seconds     REAL NOT NULL,
    PRIMARY KEY (conversation_id, position)
) STRICT;

-- One row per (user, client_session_id). `completed_at` is null while the creation runs; a claim
-- that stays incomplete for two minutes is abandoned and may be taken over. The claim outlives
-- its conversation, so a late repeat still gets the first answer.
CREATE TABLE conversation_claims (
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_session_id TEXT NOT NULL,
    conversation_id   TEXT NOT NULL,
    claimed_at        INTEGER NOT NULL,
    completed_at      INTEGER,
    discarded         INTEGER,
    PRIMARY KEY (user_id, client_session_id)
) STRICT;

-- De-duplication of action items extracted from conversations against the user's open ones.
CREATE INDEX action_items_by_normalized_description
    ON action_items (user_id, normalized_description, created_at);
