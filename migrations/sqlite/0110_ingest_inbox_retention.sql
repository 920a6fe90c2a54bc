-- Processed inbox rows are kept only as long as the app may retry them (`OMI_INGEST_INBOX_DAYS`),
-- then removed oldest first; this index finds them without reading pending or failed rows.
CREATE INDEX ingest_inbox_done ON ingest_inbox (processed_at) WHERE state = 'done';
