-- Users and their developer API keys. Ids are opaque text (UUIDv7 today); hashes are lowercase
-- hex SHA-256; scopes are the canonical scope names.
CREATE TABLE users (
    id           text PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 64),
    display_name text NOT NULL,
    token_hash   text NOT NULL UNIQUE CHECK (char_length(token_hash) = 64),
    created_at   timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    key_hash     text NOT NULL UNIQUE CHECK (char_length(key_hash) = 64),
    key_prefix   text NOT NULL,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz
);

-- The key list (newest first) and the 100-keys-per-user count.
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at DESC, id DESC);
