-- Semantic search: one vector per memory, action item and conversation, with the model that
-- made it and its dimension, and the queue of objects waiting for one.
--
-- Vectors are little-endian f32 blobs compared by exact cosine in the server (docs/DECISIONS.md,
-- "Search and ask"). `seq` grows with every vector written, so the newest vectors of a user come
-- straight off `search_vectors_newest`.
--
-- Triggers queue every new object and every changed text (dropping the stale vector in the same
-- transaction), and drop the vector of a deleted object, so no write path can forget them. The
-- embedding worker empties the queue; at start it queues whatever has no vector for the current
-- model (existing data, or everything after a change of model).

CREATE TABLE search_vectors (
    seq       INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('memory', 'action_item', 'conversation')),
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    id        TEXT NOT NULL,
    model     TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    vector    BLOB NOT NULL
) STRICT;
CREATE UNIQUE INDEX search_vectors_by_object ON search_vectors (kind, user_id, id);
CREATE INDEX search_vectors_newest ON search_vectors (kind, user_id, model, dimension, seq DESC);

CREATE TABLE search_vector_queue (
    seq     INTEGER PRIMARY KEY,
    kind    TEXT NOT NULL,
    user_id TEXT NOT NULL,
    id      TEXT NOT NULL
) STRICT;

CREATE TRIGGER memories_vector_insert AFTER INSERT ON memories BEGIN
    INSERT INTO search_vector_queue (kind, user_id, id) VALUES ('memory', new.user_id, new.id);
END;
CREATE TRIGGER memories_vector_update AFTER UPDATE OF content ON memories
    WHEN old.content IS NOT new.content BEGIN
    DELETE FROM search_vectors WHERE kind = 'memory' AND user_id = new.user_id AND id = new.id;
    INSERT INTO search_vector_queue (kind, user_id, id) VALUES ('memory', new.user_id, new.id);
END;
CREATE TRIGGER memories_vector_delete AFTER DELETE ON memories BEGIN
    DELETE FROM search_vectors WHERE kind = 'memory' AND user_id = old.user_id AND id = old.id;
END;

CREATE TRIGGER action_items_vector_insert AFTER INSERT ON action_items BEGIN
    INSERT INTO search_vector_queue (kind, user_id, id)
    VALUES ('action_item', new.user_id, new.id);
END;
CREATE TRIGGER action_items_vector_update AFTER UPDATE OF description ON action_items
    WHEN old.description IS NOT new.description BEGIN
    DELETE FROM search_vectors
    WHERE kind = 'action_item' AND user_id = new.user_id AND id = new.id;
    INSERT INTO search_vector_queue (kind, user_id, id)
    VALUES ('action_item', new.user_id, new.id);
END;
CREATE TRIGGER action_items_vector_delete AFTER DELETE ON action_items BEGIN
    DELETE FROM search_vectors
    WHERE kind = 'action_item' AND user_id = old.user_id AND id = old.id;
END;

CREATE TRIGGER conversations_vector_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO search_vector_queue (kind, user_id, id)
    VALUES ('conversation', new.user_id, new.id);
END;
CREATE TRIGGER conversations_vector_update AFTER UPDATE OF title, overview ON conversations
    WHEN old.title IS NOT new.title OR old.overview IS NOT new.overview BEGIN
    DELETE FROM search_vectors
    WHERE kind = 'conversation' AND user_id = new.user_id AND id = new.id;
    INSERT INTO search_vector_queue (kind, user_id, id)
    VALUES ('conversation', new.user_id, new.id);
END;
CREATE TRIGGER conversations_vector_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM search_vectors
    WHERE kind = 'conversation' AND user_id = old.user_id AND id = old.id;
END;
