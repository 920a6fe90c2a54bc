-- Conversations imported before imports were indexed: add them to the search index.
INSERT INTO conversation_search_docs (user_id, id)
    SELECT c.user_id, c.id FROM conversations c
    WHERE NOT EXISTS (SELECT 1 FROM conversation_search_docs d
                      WHERE d.user_id = c.user_id AND d.id = c.id)
    ORDER BY c.rowid;
INSERT INTO conversations_fts (rowid, title, overview, transcript)
    SELECT d.doc, c.title, c.overview,
           COALESCE(c.text, (SELECT group_concat(s.text, char(10) ORDER BY s.position)
                             FROM transcript_segments s WHERE s.conversation_id = c.id), '')
    FROM conversation_search_docs d JOIN conversations c ON c.user_id = d.user_id AND c.id = d.id
    WHERE d.doc NOT IN (SELECT rowid FROM conversations_fts);
