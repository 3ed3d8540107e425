-- A create wrote two indexes ordered by priority: tasks_status_priority and tasks_claim,
-- which begins with the same columns, each new task on a page of its own in both
-- (priorities are spread). Listings by status in priority order read tasks_claim now
-- (an incremental sort of the tasks of one priority by brokerId).
DROP INDEX tasks_status_priority;
