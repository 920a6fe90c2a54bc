-- Conversations, their transcripts, the folders they are filed in, and the claims that make
-- creation with a client_session_id idempotent.

-- System folders are keyed by (user_id, system_key) so that two conversations filed at once
-- cannot create a folder twice.
CREATE TABLE folders (
    id          text PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    system_key  text,
    name        text NOT NULL,
    description text,
    color       text NOT NULL,
    icon        text NOT NULL,
    sort_order  bigint NOT NULL,
    is_default  boolean NOT NULL,
    is_system   boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE UNIQUE INDEX folders_by_system_key ON folders (user_id, system_key);
CREATE INDEX folders_by_order ON folders (user_id, sort_order, created_at, id);

-- A stored conversation is always complete: one still being processed exists only as a claim.
-- `text` and `text_source` are set for conversations created from text, so that a restored
-- conversation can be processed again.
CREATE TABLE conversations (
    id               text PRIMARY KEY,
    user_id          text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    title            text NOT NULL,
    overview         text NOT NULL,
    emoji            text NOT NULL,
    category         text NOT NULL,
    events           jsonb NOT NULL CHECK (jsonb_typeof(events) = 'array'),
    language         text NOT NULL,
    source           text NOT NULL,
    text             text,
    text_source      text,
    text_source_spec text,
    discarded        boolean NOT NULL,
    processed_by     text NOT NULL,
    folder_id        text REFERENCES folders (id) ON DELETE SET NULL,
    geolocation      jsonb
);

-- The list order (created_at desc, then id desc) over kept conversations, with and without the
-- category and folder filters. The trailing category lets a filter on several categories be
-- checked while reading the index in order.
CREATE INDEX conversations_list_order ON conversations (user_id, created_at DESC, id DESC, category)
    WHERE NOT discarded;
CREATE INDEX conversations_by_category ON conversations (user_id, category, created_at DESC, id DESC)
    WHERE NOT discarded;
-- Also answers the folders' live counts.
CREATE INDEX conversations_by_folder
    ON conversations (user_id, folder_id, discarded, created_at DESC, id DESC);

CREATE TABLE transcript_segments (
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position        integer NOT NULL,
    user_id         text NOT NULL,
    id              text NOT NULL,
    text            text NOT NULL,
    speaker         text NOT NULL,
    speaker_id      bigint NOT NULL,
    is_user         boolean NOT NULL,
    person_id       text,
    start_seconds   double precision NOT NULL,
    end_seconds     double precision NOT NULL,
    PRIMARY KEY (conversation_id, position)
);

-- One row per (user, client_session_id). `completed_at` is null while the creation runs; a claim
-- that stays incomplete for two minutes is abandoned and may be taken over. The claim outlives
-- its conversation, so a late repeat still gets the first answer.
CREATE TABLE conversation_claims (
    user_id           text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_session_id text NOT NULL,
    conversation_id   text NOT NULL,
    claimed_at        timestamptz NOT NULL,
    completed_at      timestamptz,
    discarded         boolean,
    PRIMARY KEY (user_id, client_session_id)
);

-- De-duplication of action items extracted from conversations against the user's open ones.
CREATE INDEX action_items_by_normalized_description
    ON action_items (user_id, normalized_description, created_at);
