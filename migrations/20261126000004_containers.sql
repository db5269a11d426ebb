-- Which Container aggregate stands for which Docker container. Written in the same
-- transaction as the event that establishes it (ContainerCreated, ContainerDiscovered).
CREATE TABLE container_ids
(
    host         text NOT NULL,
    docker_id    text NOT NULL,
    aggregate_id uuid NOT NULL UNIQUE,
    PRIMARY KEY (host, docker_id)
);
