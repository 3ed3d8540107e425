-- tasks_due held every task with a due date, yet tasks_open_due already holds the live
-- ones in the same order. An UPDATE that changes an indexed column (a reprioritization's
-- priority, a distribution's status) writes a new entry in every index covering the row,
-- so each live task's change wrote its due date twice. tasks_due now holds finished tasks
-- only; a listing by due date reads the live ones from tasks_open_due (see `DUE_BEFORE`).
DROP INDEX tasks_due;
CREATE INDEX tasks_done_due ON tasks (due_at)
    WHERE due_at IS NOT NULL AND status IN ('Completed', 'Canceled', 'Rejected');
