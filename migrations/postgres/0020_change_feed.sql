-- The change feed. Every write transaction of a user takes its change time from the user's row:
-- `last_change_at` moves to greatest(clock, last + 1 µs) and is used as `updated_at` of everything
-- the transaction writes (and `deleted_at` of the tombstones it leaves). Writers of one user
-- queue on that row lock, so (updated_at, id) order is commit order on every replica, whatever
-- each process's clock says. One update per transaction, never a per-row trigger.
ALTER TABLE users ADD COLUMN last_change_at timestamptz;

-- Feed order for every list: (user_id, updated_at, id).
CREATE INDEX memories_feed ON memories (user_id, updated_at, id);
CREATE INDEX action_items_feed ON action_items (user_id, updated_at, id);
CREATE INDEX conversations_feed ON conversations (user_id, updated_at, id);
CREATE INDEX goals_feed ON goals (user_id, updated_at, id);
CREATE INDEX folders_feed ON folders (user_id, updated_at, id);

-- What a deletion leaves behind for the deletions feed, kept OMI_TOMBSTONE_DAYS. One row per
-- object: deleting again (a memory's id comes back with its content) moves it forward.
CREATE TABLE tombstones (
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    object_type text NOT NULL,
    object_id   text NOT NULL,
    deleted_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, object_type, object_id)
);

CREATE INDEX tombstones_feed ON tombstones (user_id, deleted_at, object_type, object_id);
CREATE INDEX tombstones_by_age ON tombstones (deleted_at);
