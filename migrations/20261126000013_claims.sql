-- Exclusive use of secrets and host names (issue 5 review).

-- Who uses a sealed secret: a wizard (then the host it makes, whose id is the wizard's) or
-- a host. A secret has one user at most, so forgetting it with its user never breaks
-- another; a second claim fails the append (409).
CREATE TABLE secret_claims
(
    secret_id uuid PRIMARY KEY REFERENCES sealed_secrets (id) ON DELETE CASCADE,
    owner     text        NOT NULL,
    since     timestamptz NOT NULL DEFAULT now()
);

-- Host names, unique case-insensitively, claimed in the transaction of the event that
-- gives or changes a name (the read model is not a lock).
CREATE TABLE host_names
(
    name_key text PRIMARY KEY,
    host_id  text NOT NULL
);
CREATE INDEX host_names_host ON host_names (host_id);
