-- Action items. Ids are time-ordered UUIDv7, so batch inserts append to the primary key.
CREATE TABLE action_items (
    id                     text PRIMARY KEY,
    user_id                text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    description            text NOT NULL,
    normalized_description text NOT NULL,
    completed              boolean NOT NULL,
    due_at                 timestamptz,
    completed_at           timestamptz,
    conversation_id        text,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);

-- The list order: open first, then items with a due date by due date, then the rest; ties by
-- created_at desc, then id desc.
CREATE INDEX action_items_list_order ON action_items
    (user_id, completed, (due_at IS NULL), due_at, created_at DESC, id DESC);
-- A conversation's items, already in the list order.
CREATE INDEX action_items_by_conversation ON action_items
    (user_id, conversation_id, completed, (due_at IS NULL), due_at, created_at DESC, id DESC);
CREATE INDEX action_items_by_created ON action_items (user_id, created_at);
