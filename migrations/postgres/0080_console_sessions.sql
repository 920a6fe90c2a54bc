-- Web console sign-ins. The session id is stored only as its hash; `token_hash` is the account
-- token the user signed in with, so replacing that token ends every session made with it.
CREATE TABLE console_sessions (
    id_hash      text PRIMARY KEY CHECK (char_length(id_hash) = 64),
    user_id      text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);

CREATE INDEX console_sessions_by_user ON console_sessions (user_id, created_at);
