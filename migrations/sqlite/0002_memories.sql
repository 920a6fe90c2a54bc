-- Memories. The id is derived from the content, so the key is (user_id, id); the rowid keeps
-- inserts appending. Booleans are 0/1; tags are a JSON array.
CREATE TABLE memories (
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    id                 TEXT NOT NULL,
    content            TEXT NOT NULL,
    normalized_content TEXT NOT NULL,
    category           TEXT NOT NULL,
    visibility         TEXT NOT NULL,
    tags               TEXT NOT NULL,
    scoring            TEXT NOT NULL,
    manually_added     INTEGER NOT NULL,
    reviewed           INTEGER NOT NULL,
    user_review        INTEGER,
    edited             INTEGER NOT NULL,
    conversation_id    TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX memories_by_user_and_id ON memories (user_id, id);
-- The list order: scoring desc, then created_at desc, then id desc. The trailing category lets a
-- filter on several categories skip rows in the index without reading the table.
CREATE INDEX memories_list_order ON memories (user_id, scoring DESC, created_at DESC, id DESC, category);
CREATE INDEX memories_by_category ON memories (user_id, category, scoring DESC, created_at DESC, id DESC);
-- De-duplication of memories extracted from conversations.
CREATE INDEX memories_by_normalized_content ON memories (user_id, normalized_content);
