-- Most live tasks have no queue yet and no user, and are neither Captured nor New, yet
-- three indexes held an entry for every task. PostgreSQL writes a new entry in every
-- index that covers a row each time an UPDATE moves it (any change to an indexed column,
-- such as a reprioritization's priority), so each of those entries was written again on
-- every change. Listings by queue or user (`= $1`) and the processor's reads of Captured
-- and New tasks are all these indexes serve, and each implies its index's predicate.
DROP INDEX tasks_user;
CREATE INDEX tasks_user ON tasks (assigned_to_user, broker_id) WHERE assigned_to_user IS NOT NULL;
DROP INDEX tasks_queue;
CREATE INDEX tasks_queue ON tasks (queue, broker_id) WHERE queue IS NOT NULL;
DROP INDEX tasks_status_activation;
CREATE INDEX tasks_status_activation ON tasks (status, activation_at)
    WHERE status IN ('Captured', 'New');
