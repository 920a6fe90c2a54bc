-- Conversations can be starred (API.md §13.E.1). Existing conversations are not starred.
ALTER TABLE conversations ADD COLUMN starred boolean NOT NULL DEFAULT false;
