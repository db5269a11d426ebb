-- The operations projection keeps its own map of each container aggregate's host and
-- current Docker id, built from the events, instead of reading the command side's
-- `container_ids`: its result then depends on the events alone, so a rebuild, or a replay
-- into another database as of a past moment, gives exactly what live processing gave.
CREATE TABLE operation_containers
(
    aggregate_id text PRIMARY KEY,
    host         text NOT NULL,
    docker_id    text
);

-- One row per `dcp replay --into` run that filled this database (or schema).
CREATE TABLE replays
(
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text        NOT NULL,
    -- Events recorded at or before this moment were applied (null: up to the head).
    until         timestamptz,
    last_position bigint      NOT NULL,
    events        bigint      NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL
);
