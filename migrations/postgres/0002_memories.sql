-- Memories. The id is derived from the content, so the key is (user_id, id). Tags are a JSON
-- array of strings.
CREATE TABLE memories (
    user_id            text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id                 text NOT NULL,
    content            text NOT NULL,
    normalized_content text NOT NULL,
    category           text NOT NULL,
    visibility         text NOT NULL CHECK (visibility IN ('private', 'public')),
    tags               jsonb NOT NULL CHECK (jsonb_typeof(tags) = 'array'),
    scoring            text NOT NULL,
    manually_added     boolean NOT NULL,
    reviewed           boolean NOT NULL,
    user_review        boolean,
    edited             boolean NOT NULL,
    conversation_id    text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);

-- The list order: scoring desc, then created_at desc, then id desc. The trailing category lets a
-- filter on several categories skip rows while reading the index in order.
CREATE INDEX memories_list_order ON memories (user_id, scoring DESC, created_at DESC, id DESC, category);
CREATE INDEX memories_by_category ON memories (user_id, category, scoring DESC, created_at DESC, id DESC);
-- De-duplication of memories extracted from conversations.
CREATE INDEX memories_by_normalized_content ON memories (user_id, normalized_content);
