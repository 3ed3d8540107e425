-- Held deliveries (a task's notifications stored behind its one in flight) get their own
-- status, which no claim takes. They used to be stored pending with a next attempt of
-- 9999-12-30T00:00:00Z (the epoch microseconds below), so that none was ever due. A held
-- row's next attempt is now the time it was stored: its updated_at, since whatever
-- writes to a held row (its release, a resend, a replay) also makes it due.
UPDATE deliveries SET status = 'held', next_attempt_at = updated_at
WHERE status = 'pending' AND next_attempt_at = 253402128000000000;

-- A task's queue is its pending and held rows: a pending row waits behind either, and a
-- new notification of a task with any of them is stored behind them. Queries name the
-- set with this exact predicate (SQLite uses a partial index only when it, or one of
-- its OR-ed terms, is among the query's terms). Held rows leave deliveries_due and
-- deliveries_pending_id, since they are neither due nor pending.
DROP INDEX deliveries_task;
CREATE INDEX deliveries_task ON deliveries (target, broker_id, seq)
    WHERE status = 'pending' OR status = 'held';
-- Listing held ones, like pending and failed ones, walks only their own rows.
CREATE INDEX deliveries_held_id ON deliveries (target, id) WHERE status = 'held';
