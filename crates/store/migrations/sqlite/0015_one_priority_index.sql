-- A create wrote two indexes ordered by priority: tasks_status_priority and tasks_claim,
-- which begins with the same columns. Each new task lands on a page of its own in both
-- (priorities are spread), so a group commit of 16 creates wrote about 35 more pages
-- for the first one alone. Listings by status in priority order read tasks_claim now
-- (sorting only the tasks of one priority by brokerId).
DROP INDEX tasks_status_priority;
-- A queue's oldest waiting task (the console's queues page), which SQLite found through
-- tasks_status_priority; PostgreSQL has had this index since 0013.
CREATE INDEX tasks_queue_waiting ON tasks (queue, broker_id) WHERE status = 'Distributed';
