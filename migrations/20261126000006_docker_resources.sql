-- What the Docker event watcher and the image, volume and network operations need.

-- The Docker ids and names an operation touched (container id, image id and reference,
-- volume name, network name and id, the connected container): the watcher recognises
-- the Docker events dcp's own operations caused by them, so they are not recorded twice.
ALTER TABLE operations ADD COLUMN targets text[] NOT NULL DEFAULT '{}';
CREATE INDEX operations_recent ON operations (host, resource_type, requested_at DESC);

-- Progress of long operations (image pulls), so far. Not an event: progress is frequent and
-- only matters while the operation runs; the outcome event keeps the summary.
CREATE TABLE operation_progress
(
    op_id      uuid PRIMARY KEY,
    progress   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Where each host's Docker event watcher resumes (`since`), in Docker's nanoseconds.
CREATE TABLE docker_event_cursors
(
    host       text PRIMARY KEY,
    time_nano  bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The containers read model: what the platform knows about each container (who created
-- it and when, its last operation), merged into the live list from Docker.
CREATE TABLE containers
(
    aggregate_id      text PRIMARY KEY,
    host              text        NOT NULL,
    docker_id         text,
    name              text,
    -- `dcp` (created through dcp) or `docker` (discovered).
    origin            text        NOT NULL,
    created_by        uuid,
    created_by_name   text,
    known_since       timestamptz NOT NULL,
    last_action       text,
    last_status       text,
    last_operation_id uuid,
    last_at           timestamptz,
    last_by_name      text,
    removed           boolean     NOT NULL DEFAULT false,
    last_position     bigint      NOT NULL
);
CREATE UNIQUE INDEX containers_docker_id ON containers (host, docker_id) WHERE docker_id IS NOT NULL;
