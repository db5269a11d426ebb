-- The event store: postgres-es's `events` table plus the columns the global log needs.
-- postgres-es names its seven insert columns, so the extra columns are filled by defaults.
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    event_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    global_position bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_global_position_key UNIQUE (global_position)
);

-- The order every consumer reads in: (transaction_id, global_position).
CREATE INDEX events_log_order ON events (transaction_id, global_position);

-- Wake readers when events commit (NOTIFY is delivered at commit; duplicates in one
-- transaction collapse into one).
--
-- A transaction that NOTIFYs holds PostgreSQL's notify lock from pre-commit until its
-- commit record is flushed, so notifying writers commit one at a time (no group commit).
-- The dcp server therefore opts out per connection (`dcp.notify_in_transaction=off`) and
-- rings the same channel right after each commit from outside the transaction; any other
-- writer (psql, a tool, an older server) still wakes readers through this trigger.
CREATE FUNCTION dcp_notify_events_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF coalesce(current_setting('dcp.notify_in_transaction', true), 'on') <> 'off' THEN
        PERFORM pg_notify('dcp_events', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_appended
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION dcp_notify_events_appended();

-- Events are facts: the store is append-only.
CREATE FUNCTION dcp_refuse_event_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'the event store is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION dcp_refuse_event_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION dcp_refuse_event_change();

-- One row per projection: its version and how far along the global log it is.
CREATE TABLE projection_checkpoints
(
    name                text PRIMARY KEY,
    version             integer     NOT NULL,
    last_transaction_id xid8        NOT NULL DEFAULT '0',
    last_position       bigint      NOT NULL DEFAULT 0,
    events_applied      bigint      NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    rebuilt_at          timestamptz,
    -- Set by `dcp projections rebuild NAME` while a server holds the runner lock.
    rebuild_requested   boolean     NOT NULL DEFAULT false
);
