-- The operations read model: every Docker operation dcp was asked for, and its outcome.
CREATE TABLE operations
(
    id            uuid PRIMARY KEY,
    -- `container.start`, `container.create`, … (the audit action).
    action        text        NOT NULL,
    resource_type text        NOT NULL,
    aggregate_id  text        NOT NULL,
    host          text,
    -- pending | succeeded | failed
    status        text        NOT NULL,
    error_code    text,
    error_message text,
    requested_by  uuid,
    requested_at  timestamptz NOT NULL,
    completed_at  timestamptz,
    last_position bigint      NOT NULL
);
CREATE INDEX operations_pending ON operations (requested_at) WHERE status = 'pending';
CREATE INDEX operations_aggregate ON operations (aggregate_id, requested_at DESC);
