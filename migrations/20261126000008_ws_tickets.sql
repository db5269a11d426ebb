-- Single-use WebSocket tickets (30 s): a browser cannot send an Authorization header on a
-- WebSocket, and an access token in a URL would leak into logs and history. Stored hashed.
CREATE TABLE ws_tickets
(
    ticket_hash bytea PRIMARY KEY,
    user_id     uuid        NOT NULL,
    session_id  uuid        NOT NULL,
    purpose     text        NOT NULL,
    resource_id text,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX ws_tickets_expiry ON ws_tickets (expires_at);
