-- A search ranks only the newest matches of a common query (src/search/mod.rs, CANDIDATES); this
-- index hands them over newest first without reading every match. Action items and
-- conversations already have a (user_id, created_at) index.
CREATE INDEX memories_by_created ON memories (user_id, created_at DESC);
