-- The console's figures (SPEC 11), kept as the tasks change instead of counted per view.
-- A write transaction appends one row per figure it moves to the *_deltas tables (rows
-- that no two writers share, so nodes never wait on one another for a counter); a fold
-- moves the deltas into the totals from time to time. A figure is its total plus its
-- deltas.

-- Tasks by status, queue and process ('' for none): the backlog.
CREATE TABLE task_counts (
    status     TEXT   NOT NULL,
    queue      TEXT   NOT NULL,
    process_id TEXT   NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (status, queue, process_id)
) WITHOUT ROWID;
CREATE TABLE task_count_deltas (
    id INTEGER PRIMARY KEY,
    status     TEXT   NOT NULL,
    queue      TEXT   NOT NULL,
    process_id TEXT   NOT NULL,
    n          INTEGER NOT NULL
);
INSERT INTO task_counts (status, queue, process_id, n)
    SELECT status, COALESCE(queue, ''), COALESCE(process_id, ''), COUNT(*)
    FROM tasks GROUP BY status, COALESCE(queue, ''), COALESCE(process_id, '');

-- Throughput per 15 minutes (start_at: the period's start, epoch microseconds): tasks
-- created and completed, completions that had a due date and those finished by it, and
-- the sums behind the average finish time (created to completed) and handle time
-- (assigned to completed). Periods start with this migration: earlier tasks are not
-- counted.
CREATE TABLE periods (
    start_at          INTEGER PRIMARY KEY,
    created           INTEGER NOT NULL,
    completed         INTEGER NOT NULL,
    completed_due     INTEGER NOT NULL,
    completed_on_time INTEGER NOT NULL,
    finish_us         INTEGER NOT NULL,
    handle_us         INTEGER NOT NULL,
    handled           INTEGER NOT NULL
);
CREATE TABLE period_deltas (
    id INTEGER PRIMARY KEY,
    start_at          INTEGER NOT NULL,
    created           INTEGER NOT NULL,
    completed         INTEGER NOT NULL,
    completed_due     INTEGER NOT NULL,
    completed_on_time INTEGER NOT NULL,
    finish_us         INTEGER NOT NULL,
    handle_us         INTEGER NOT NULL,
    handled           INTEGER NOT NULL
);

-- Open tasks with a due date, by due date: the console's overdue filter reads only the
-- tasks that are late, and "overdue now" counts the current period's from it.
CREATE INDEX tasks_open_due ON tasks (due_at)
    WHERE due_at IS NOT NULL AND status NOT IN ('Completed', 'Canceled', 'Rejected');

-- Open tasks with a due date by queue ('' for none) and the 15-minute period their due
-- date falls in (due_period: its start, epoch microseconds): "overdue now" is the sum over
-- the periods before now's, plus the tasks due in now's period so far.
CREATE TABLE due_counts (
    queue      TEXT   NOT NULL,
    due_period INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (queue, due_period)
) WITHOUT ROWID;
CREATE TABLE due_count_deltas (
    id INTEGER PRIMARY KEY,
    queue      TEXT   NOT NULL,
    due_period INTEGER NOT NULL,
    n          INTEGER NOT NULL
);
INSERT INTO due_counts (queue, due_period, n)
    SELECT COALESCE(queue, ''), due_at - ((due_at % 900000000) + 900000000) % 900000000, COUNT(*)
    FROM tasks WHERE due_at IS NOT NULL AND status NOT IN ('Completed', 'Canceled', 'Rejected')
    GROUP BY COALESCE(queue, ''), due_at - ((due_at % 900000000) + 900000000) % 900000000;

-- A workbin's tasks (queueTarget: the agent, group or place whose workbin holds them), for
-- the agent desktop's workbin and the task list's filter.
ALTER TABLE tasks ADD COLUMN queue_target TEXT;
UPDATE tasks SET queue_target = json_extract(body, '$.queueTarget') WHERE json_extract(body, '$.queueTarget') IS NOT NULL;
CREATE INDEX tasks_queue_target ON tasks (queue_target, broker_id) WHERE queue_target IS NOT NULL;
