-- Most live tasks have no queue yet and no user, yet two indexes held an entry for every
-- task, written with each create. Listings by queue or user (`= ?`) are all they serve,
-- and SQLite uses a partial index `WHERE x IS NOT NULL` for `x = ?`. (SQLite rewrites
-- only the indexes over the columns an UPDATE changes; PostgreSQL's migration 0016 also
-- narrows tasks_status_activation, which SQLite's planner could not use for its reads.)
DROP INDEX tasks_user;
CREATE INDEX tasks_user ON tasks (assigned_to_user, broker_id) WHERE assigned_to_user IS NOT NULL;
DROP INDEX tasks_queue;
CREATE INDEX tasks_queue ON tasks (queue, broker_id) WHERE queue IS NOT NULL;
