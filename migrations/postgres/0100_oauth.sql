-- OAuth 2.1 for MCP clients. Codes and tokens are stored only as hashes. A grant is what a user
-- approved for one client; deleting it (disconnecting the app) deletes its tokens.
CREATE TABLE oauth_clients (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    redirect_uris text[] NOT NULL, -- matched exactly
    created_at    timestamptz NOT NULL
);

CREATE INDEX oauth_clients_by_age ON oauth_clients (created_at);

CREATE TABLE oauth_codes (
    code_hash      text PRIMARY KEY CHECK (char_length(code_hash) = 64),
    client_id      text NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    user_id        text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri   text NOT NULL,
    scopes         text[] NOT NULL,
    code_challenge text NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);

CREATE TABLE oauth_grants (
    id           text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id    text NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    scopes       text[] NOT NULL,
    code_hash    text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz
);

CREATE INDEX oauth_grants_by_user ON oauth_grants (user_id, created_at);
CREATE INDEX oauth_grants_by_code ON oauth_grants (code_hash);
CREATE INDEX oauth_grants_by_client ON oauth_grants (client_id);

CREATE TABLE oauth_tokens (
    token_hash text PRIMARY KEY CHECK (char_length(token_hash) = 64),
    grant_id   text NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('access', 'refresh')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz
);

CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id, expires_at);
