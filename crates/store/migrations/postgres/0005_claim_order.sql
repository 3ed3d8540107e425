-- Claims (the engine's "best task" selection) read tasks of one status by priority, then
-- due date (none last), then age.
CREATE INDEX tasks_claim ON tasks (status, priority DESC, (COALESCE(due_at, 9223372036854775807)), broker_id);
