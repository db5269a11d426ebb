-- Remote Docker hosts and setup wizards (issue 5).

-- The `hosts` read model: one row per registered host (the `local` engine is not a host).
-- `doc` is the host's view as the API shows it (no secret, only its id).
CREATE TABLE hosts
(
    id            text PRIMARY KEY,
    name          text        NOT NULL,
    status        text        NOT NULL,
    doc           jsonb       NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       bigint      NOT NULL,
    last_position bigint      NOT NULL
);
CREATE INDEX hosts_name ON hosts (name);

-- The `wizards` read model: one row per wizard, its view in `doc`.
CREATE TABLE wizards
(
    id            uuid PRIMARY KEY,
    user_id       uuid        NOT NULL,
    wizard_type   text        NOT NULL,
    status        text        NOT NULL,
    doc           jsonb       NOT NULL,
    updated_at    timestamptz NOT NULL,
    last_position bigint      NOT NULL
);
CREATE INDEX wizards_user_status ON wizards (user_id, status, updated_at DESC);

-- When each host last answered (observations, not events: a host that stays up writes no
-- events; its status changes are events on the `host` aggregate).
CREATE TABLE host_liveness
(
    host_id      text PRIMARY KEY,
    last_seen    timestamptz,
    last_checked timestamptz NOT NULL,
    last_error   text,
    latency_ms   double precision
);

-- Who made a secret: a generated key is usable only by the admin who generated it.
ALTER TABLE sealed_secrets ADD COLUMN created_by uuid;
