-- Web console sign-ins. The session id is stored only as its hash; `token_hash` is the account
-- token the user signed in with, so replacing that token ends every session made with it.
-- Times are integer microseconds since the Unix epoch.
CREATE TABLE console_sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) STRICT;

CREATE INDEX console_sessions_by_user ON console_sessions (user_id, created_at);
