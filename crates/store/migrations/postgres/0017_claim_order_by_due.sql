-- tasks_claim and tasks_queue_claim were both ordered by COALESCE(due_at, <max>), so a
-- queue's claim (status 'Distributed', unoffered, one queue) could be read from either,
-- and when statistics made the queue a common one the planner took tasks_claim: each pull
-- then stepped over every task of other queues and every task on offer with a higher
-- priority, a number that grows as the queue drains (a pull claim went from 0.07 ms to
-- 7 ms over 50,000 pulls). Claims by status now order by due_at itself (ascending, NULLs
-- last: the same order), which only this index gives, and a queue's claim keeps the
-- COALESCE spelling, which only tasks_queue_claim gives.
DROP INDEX tasks_claim;
CREATE INDEX tasks_claim ON tasks (status, priority DESC, due_at, broker_id);
