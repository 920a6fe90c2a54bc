-- Full-text search over memories (content, tags), action items (description) and conversations
-- (title, overview, transcript): a `search` tsvector column on each table, generated from the
-- row so that every write keeps it in step in the same statement, with a GIN index.
--
-- The text search configuration `omi_search` is English (stemming, stop words) with diacritics
-- folded by `unaccent` when that extension can be created; without it, the words keep their
-- accents. A conversation's transcript lives in other rows, so its vector is written with the
-- conversation (`transcript_search`) and the generated column adds it.

DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS unaccent;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'unaccent is not available: search keeps diacritics';
    END;
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'omi_search') THEN
        CREATE TEXT SEARCH CONFIGURATION omi_search (COPY = english);
        IF EXISTS (SELECT 1 FROM pg_ts_dict WHERE dictname = 'unaccent') THEN
            ALTER TEXT SEARCH CONFIGURATION omi_search
                ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
        END IF;
    END IF;
END
$$;

ALTER TABLE memories ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('omi_search'::regconfig, content), 'A')
    || setweight(to_tsvector('omi_search'::regconfig, tags::text), 'B')
) STORED;
CREATE INDEX memories_search ON memories USING gin (search);

ALTER TABLE action_items ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('omi_search'::regconfig, description)
) STORED;
CREATE INDEX action_items_search ON action_items USING gin (search);

ALTER TABLE conversations ADD COLUMN transcript_search tsvector;
UPDATE conversations c SET transcript_search = setweight(to_tsvector('omi_search'::regconfig,
    COALESCE(c.text, (SELECT string_agg(s.text, E'\n' ORDER BY s.position)
                      FROM transcript_segments s WHERE s.conversation_id = c.id), '')), 'C');
ALTER TABLE conversations ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('omi_search'::regconfig, title), 'A')
    || setweight(to_tsvector('omi_search'::regconfig, overview), 'B')
    || COALESCE(transcript_search, ''::tsvector)
) STORED;
CREATE INDEX conversations_search ON conversations USING gin (search);
