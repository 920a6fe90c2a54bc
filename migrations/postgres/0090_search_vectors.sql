-- Semantic search: one vector per memory, action item and conversation, with the model that
-- made it and its dimension, and the queue of objects waiting for one.
--
-- Vectors are `real[]` compared by exact cosine in the server over a bounded set of candidates:
-- the pgvector extension is not assumed (docs/DECISIONS.md, "Search and ask"). `seq` grows with
-- every vector written, so the newest vectors of a user come straight off
-- `search_vectors_newest`.
--
-- Triggers queue every new object and every changed text (dropping the stale vector in the same
-- transaction), and drop the vector of a deleted object, so no write path can forget them. The
-- embedding worker empties the queue; at start it queues whatever has no vector for the current
-- model (existing data, or everything after a change of model).

CREATE TABLE search_vectors (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind      text NOT NULL CHECK (kind IN ('memory', 'action_item', 'conversation')),
    user_id   text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id        text NOT NULL,
    model     text NOT NULL,
    dimension integer NOT NULL,
    vector    real[] NOT NULL
);
CREATE UNIQUE INDEX search_vectors_by_object ON search_vectors (kind, user_id, id);
CREATE INDEX search_vectors_newest ON search_vectors (kind, user_id, model, dimension, seq DESC);

CREATE TABLE search_vector_queue (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind    text NOT NULL,
    user_id text NOT NULL,
    id      text NOT NULL
);

-- TG_ARGV[0] is the kind.
CREATE FUNCTION search_vector_queue_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM search_vectors WHERE kind = TG_ARGV[0] AND user_id = NEW.user_id AND id = NEW.id;
    END IF;
    INSERT INTO search_vector_queue (kind, user_id, id) VALUES (TG_ARGV[0], NEW.user_id, NEW.id);
    RETURN NULL;
END $$;

CREATE FUNCTION search_vector_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM search_vectors WHERE kind = TG_ARGV[0] AND user_id = OLD.user_id AND id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER memories_vector_insert AFTER INSERT ON memories
    FOR EACH ROW EXECUTE FUNCTION search_vector_queue_new('memory');
CREATE TRIGGER memories_vector_update AFTER UPDATE OF content ON memories
    FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content)
    EXECUTE FUNCTION search_vector_queue_new('memory');
CREATE TRIGGER memories_vector_delete AFTER DELETE ON memories
    FOR EACH ROW EXECUTE FUNCTION search_vector_drop('memory');

CREATE TRIGGER action_items_vector_insert AFTER INSERT ON action_items
    FOR EACH ROW EXECUTE FUNCTION search_vector_queue_new('action_item');
CREATE TRIGGER action_items_vector_update AFTER UPDATE OF description ON action_items
    FOR EACH ROW WHEN (OLD.description IS DISTINCT FROM NEW.description)
    EXECUTE FUNCTION search_vector_queue_new('action_item');
CREATE TRIGGER action_items_vector_delete AFTER DELETE ON action_items
    FOR EACH ROW EXECUTE FUNCTION search_vector_drop('action_item');

CREATE TRIGGER conversations_vector_insert AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION search_vector_queue_new('conversation');
CREATE TRIGGER conversations_vector_update AFTER UPDATE OF title, overview ON conversations
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.overview IS DISTINCT FROM NEW.overview)
    EXECUTE FUNCTION search_vector_queue_new('conversation');
CREATE TRIGGER conversations_vector_delete AFTER DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION search_vector_drop('conversation');
