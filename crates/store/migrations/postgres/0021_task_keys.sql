-- A task's keys that seldom change once it is created: its captureId, process and due
-- date, with whether it has finished. An UPDATE that changes an indexed column of tasks
-- (a reprioritization's priority, a distribution's status) writes a new entry in every
-- index over the row, so tasks_capture, tasks_process and the due-date indexes took an
-- entry at every step of a live task, each unchanged. Here they take one when the task is
-- created and one when it finishes (or its process or due date changes). The columns
-- stay on tasks, unindexed; queries filter on them through this table (`KEY_OPEN`).
CREATE TABLE task_keys (
    broker_id        BIGINT  PRIMARY KEY,
    capture_point_id TEXT    NOT NULL,
    capture_id       TEXT    NOT NULL,
    process_id       TEXT,
    due_at           BIGINT,
    done             BOOLEAN NOT NULL
);
INSERT INTO task_keys (broker_id, capture_point_id, capture_id, process_id, due_at, done)
    SELECT broker_id, capture_point_id, capture_id, process_id, due_at,
           status IN ('Completed', 'Canceled', 'Rejected')
    FROM tasks;
CREATE INDEX task_keys_capture ON task_keys (capture_point_id, capture_id);
CREATE INDEX task_keys_process ON task_keys (process_id, broker_id);
-- Live tasks by due date (overdue) and, as a second range, finished ones (dueBefore).
CREATE INDEX task_keys_due ON task_keys (done, due_at) WHERE due_at IS NOT NULL;
DROP INDEX tasks_capture;
DROP INDEX tasks_process;
DROP INDEX tasks_open_due;
DROP INDEX tasks_done_due;
ANALYZE task_keys;
