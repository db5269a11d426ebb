-- Read models maintained by projections (dcp-projections). Never written by the API.

CREATE TABLE users
(
    id                   uuid PRIMARY KEY,
    username             text        NOT NULL,
    email                text        NOT NULL,
    full_name            text        NOT NULL,
    role                 text        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    is_active            boolean     NOT NULL,
    must_change_password boolean     NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    last_login_at        timestamptz,
    version              bigint      NOT NULL,
    last_position        bigint      NOT NULL
);
CREATE INDEX users_username_lower ON users (lower(username));
CREATE INDEX users_email_lower ON users (lower(email));

CREATE TABLE sessions
(
    id          uuid PRIMARY KEY,
    user_id     uuid        NOT NULL,
    started_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    end_reason  text,
    ip_address  text,
    user_agent  text
);
CREATE INDEX sessions_user ON sessions (user_id);

-- The audit log: one entry per event, in global log order (`seq`).
CREATE TABLE audit_logs
(
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid        NOT NULL UNIQUE,
    global_position bigint      NOT NULL UNIQUE,
    user_id         uuid,
    username        text,
    role            text,
    action          varchar(100) NOT NULL,
    resource_type   varchar(50),
    resource_id     varchar(255),
    details         jsonb       NOT NULL DEFAULT '{}',
    ip_address      inet,
    user_agent      text,
    request_id      text,
    created_at      timestamptz NOT NULL,
    hash            text
);
CREATE INDEX audit_user_seq ON audit_logs (user_id, seq DESC);
CREATE INDEX audit_action_seq ON audit_logs (action, seq DESC);
CREATE INDEX audit_resource_seq ON audit_logs (resource_type, resource_id, seq DESC);
CREATE INDEX audit_created ON audit_logs (created_at);
