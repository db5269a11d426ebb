-- Set while a projection is being rebuilt from zero, until it first reaches the head of the
-- log: a runner that restarts halfway knows it is still rebuilding (and so still refuses
-- events this build of dcp does not know, instead of skipping them).
ALTER TABLE projection_checkpoints ADD COLUMN rebuilding boolean NOT NULL DEFAULT false;
