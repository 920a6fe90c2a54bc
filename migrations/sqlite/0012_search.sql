-- Full-text search over memories (content, tags), action items (description) and conversations
-- (title, overview, transcript), kept in step with every write in the same transaction.
--
-- Each index is an FTS5 table keyed by a document number from a `*_search_docs` table, which maps
-- it to the object's (user_id, id). The objects' own rowids are not used: VACUUM may renumber the
-- rowids of tables without an INTEGER PRIMARY KEY, which would silently point the index at the
-- wrong rows. Words are folded to lowercase without diacritics and stemmed (Porter, English).
--
-- Memories and action items are indexed by triggers. A conversation is indexed by its store when
-- it is created (its transcript is written with it and never changes afterwards), and by
-- triggers when its title or overview change or when it is deleted.

CREATE TABLE memory_search_docs (
    doc     INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    id      TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX memory_search_docs_by_id ON memory_search_docs (user_id, id);
CREATE VIRTUAL TABLE memories_fts USING fts5(
    content, tags, tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER memories_search_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memory_search_docs (user_id, id) VALUES (new.user_id, new.id);
    INSERT INTO memories_fts (rowid, content, tags) VALUES (last_insert_rowid(), new.content, new.tags);
END;
CREATE TRIGGER memories_search_update AFTER UPDATE OF content, tags ON memories
    WHEN old.content IS NOT new.content OR old.tags IS NOT new.tags BEGIN
    UPDATE memories_fts SET content = new.content, tags = new.tags
    WHERE rowid = (SELECT doc FROM memory_search_docs WHERE user_id = new.user_id AND id = new.id);
END;
CREATE TRIGGER memories_search_delete AFTER DELETE ON memories BEGIN
    DELETE FROM memories_fts
    WHERE rowid = (SELECT doc FROM memory_search_docs WHERE user_id = old.user_id AND id = old.id);
    DELETE FROM memory_search_docs WHERE user_id = old.user_id AND id = old.id;
END;

CREATE TABLE action_item_search_docs (
    doc     INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    id      TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX action_item_search_docs_by_id ON action_item_search_docs (user_id, id);
CREATE VIRTUAL TABLE action_items_fts USING fts5(
    description, tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER action_items_search_insert AFTER INSERT ON action_items BEGIN
    INSERT INTO action_item_search_docs (user_id, id) VALUES (new.user_id, new.id);
    INSERT INTO action_items_fts (rowid, description) VALUES (last_insert_rowid(), new.description);
END;
CREATE TRIGGER action_items_search_update AFTER UPDATE OF description ON action_items
    WHEN old.description IS NOT new.description BEGIN
    UPDATE action_items_fts SET description = new.description
    WHERE rowid = (SELECT doc FROM action_item_search_docs WHERE user_id = new.user_id AND id = new.id);
END;
CREATE TRIGGER action_items_search_delete AFTER DELETE ON action_items BEGIN
    DELETE FROM action_items_fts
    WHERE rowid = (SELECT doc FROM action_item_search_docs WHERE user_id = old.user_id AND id = old.id);
    DELETE FROM action_item_search_docs WHERE user_id = old.user_id AND id = old.id;
END;

CREATE TABLE conversation_search_docs (
    doc     INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    id      TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX conversation_search_docs_by_id ON conversation_search_docs (user_id, id);
CREATE VIRTUAL TABLE conversations_fts USING fts5(
    title, overview, transcript, tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER conversations_search_update AFTER UPDATE OF title, overview ON conversations
    WHEN old.title IS NOT new.title OR old.overview IS NOT new.overview BEGIN
    UPDATE conversations_fts SET title = new.title, overview = new.overview
    WHERE rowid = (SELECT doc FROM conversation_search_docs WHERE user_id = new.user_id AND id = new.id);
END;
CREATE TRIGGER conversations_search_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM conversations_fts
    WHERE rowid = (SELECT doc FROM conversation_search_docs WHERE user_id = old.user_id AND id = old.id);
    DELETE FROM conversation_search_docs WHERE user_id = old.user_id AND id = old.id;
END;

-- Existing data.
INSERT INTO memory_search_docs (user_id, id) SELECT user_id, id FROM memories ORDER BY rowid;
INSERT INTO memories_fts (rowid, content, tags)
    SELECT d.doc, m.content, m.tags FROM memory_search_docs d
    JOIN memories m ON m.user_id = d.user_id AND m.id = d.id;
INSERT INTO action_item_search_docs (user_id, id) SELECT user_id, id FROM action_items ORDER BY rowid;
INSERT INTO action_items_fts (rowid, description)
    SELECT d.doc, a.description FROM action_item_search_docs d
    JOIN action_items a ON a.user_id = d.user_id AND a.id = d.id;
INSERT INTO conversation_search_docs (user_id, id) SELECT user_id, id FROM conversations ORDER BY rowid;
INSERT INTO conversations_fts (rowid, title, overview, transcript)
    SELECT d.doc, c.title, c.overview,
           COALESCE(c.text, (SELECT group_concat(s.text, char(10) ORDER BY s.position)
                             FROM transcript_segments s WHERE s.conversation_id = c.id), '')
    FROM conversation_search_docs d JOIN conversations c ON c.user_id = d.user_id AND c.id = d.id;
