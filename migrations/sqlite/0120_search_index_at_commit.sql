-- New memories and action items reach the full-text index and the embedding queue once per
-- transaction, just before it commits, instead of row by row from insert triggers
-- (`src/store/sqlite/search_index.rs`).
--
-- A trigger that writes to an FTS5 table makes each insert a statement that may abort halfway,
-- so SQLite opens a statement savepoint for it; FTS5 answers every savepoint by writing its
-- pending terms out as a new index segment. A 50-item batch wrote 50 one-row segments (and
-- merged them), about 40% of its time. The store now records each new object
-- in its `*_search_docs` table and indexes all of a transaction's new documents with one
-- statement at the end: one segment per transaction. Updates and deletes keep their triggers
-- (one row per statement).
DROP TRIGGER memories_search_insert;
DROP TRIGGER action_items_search_insert;
DROP TRIGGER memories_vector_insert;
DROP TRIGGER action_items_vector_insert;
