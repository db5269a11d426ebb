-- Where the event bus relay is in the global log: it advances only after the bus has
-- acknowledged every event up to here.
CREATE TABLE relay_checkpoints
(
    name                text PRIMARY KEY,
    last_transaction_id xid8        NOT NULL DEFAULT '0',
    last_position       bigint      NOT NULL DEFAULT 0,
    events_published    bigint      NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
