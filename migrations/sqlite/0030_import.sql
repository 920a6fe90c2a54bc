-- What an import from another server (`omi-server import omi`) brought in: one row per source
-- object, naming the local object it became and a fingerprint of the source's version, so that
-- a re-import maps onto the same object and leaves an unchanged one alone.
CREATE TABLE import_objects (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    local_id    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, source, kind, source_id)
) STRICT;

-- How far each resource of an import has read: the next offset to ask the source for. A finished
-- resource has no row.
CREATE TABLE import_checkpoints (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    next_offset INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, source, resource)
) STRICT;
