-- Conversations imported before imports were indexed: give them their transcript's vector.
UPDATE conversations c SET transcript_search = setweight(to_tsvector('omi_search'::regconfig,
    COALESCE(c.text, (SELECT string_agg(s.text, E'\n' ORDER BY s.position)
                      FROM transcript_segments s WHERE s.conversation_id = c.id), '')), 'C')
WHERE c.transcript_search IS NULL;
