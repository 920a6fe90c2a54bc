-- The change feed. Every write transaction of a user takes its change time from the user's row:
-- `last_change_at` moves to max(clock, last + 1 µs) and is used as `updated_at` of everything the
-- transaction writes (and `deleted_at` of the tombstones it leaves). Writers of one user queue on
-- that row, so (updated_at, id) order is commit order, whatever each process's clock says.
ALTER TABLE users ADD COLUMN last_change_at INTEGER;

-- Feed order for every list: (user_id, updated_at, id).
CREATE INDEX memories_feed ON memories (user_id, updated_at, id);
CREATE INDEX action_items_feed ON action_items (user_id, updated_at, id);
CREATE INDEX conversations_feed ON conversations (user_id, updated_at, id);
CREATE INDEX goals_feed ON goals (user_id, updated_at, id);
CREATE INDEX folders_feed ON folders (user_id, updated_at, id);

-- What a deletion leaves behind for the deletions feed, kept OMI_TOMBSTONE_DAYS. One row per
-- object: deleting again (a memory's id comes back with its content) moves it forward.
CREATE TABLE tombstones (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    deleted_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, object_type, object_id)
) STRICT;

CREATE INDEX tombstones_feed ON tombstones (user_id, deleted_at, object_type, object_id);
CREATE INDEX tombstones_by_age ON tombstones (deleted_at);
