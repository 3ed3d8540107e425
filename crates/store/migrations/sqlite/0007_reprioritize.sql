-- When a Queued or Distributed task is next due for reprioritization (the later of its
-- reprioritizeDateTime and activationDateTime), NULL otherwise: the scheduler reads due
-- tasks from this index, never the whole table, and finished tasks leave it.
ALTER TABLE tasks ADD COLUMN reprioritize_at INTEGER;
CREATE INDEX tasks_reprioritize ON tasks (reprioritize_at) WHERE reprioritize_at IS NOT NULL;
