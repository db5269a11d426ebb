-- Secrets and claims written directly by the server, never carried by events.

-- argon2id PHC strings.
CREATE TABLE credentials
(
    user_id       uuid PRIMARY KEY,
    password_hash text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Unique usernames and emails across accounts ('username:alice', 'email:a@example.com',
-- lowercased), claimed before the command that uses them is written.
CREATE TABLE user_handles
(
    handle     text PRIMARY KEY,
    user_id    uuid        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_handles_user ON user_handles (user_id);

-- Opaque refresh tokens, stored as SHA-256. A session is one rotation family.
CREATE TABLE refresh_tokens
(
    token_hash bytea PRIMARY KEY,
    session_id uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    -- 'rotation' (traded for a new token) or 'revocation' (logout, revoked session).
    spent_by   text
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
