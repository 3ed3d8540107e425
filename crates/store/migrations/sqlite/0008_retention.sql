-- Retention: old events, idempotency records and finished deliveries are pruned in small
-- batches.
--
-- When each event was written (epoch microseconds: its eventDateTime, the engine clock's
-- time the change was decided at). Events written before this migration read 0, so they
-- count as older than any retention period. Pruning walks the log by seq, its primary
-- key, from the lowest: seq grows with time, so no index on this column is needed.
ALTER TABLE events ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;

-- Idempotency records have a text key with no order in time: pruning finds the oldest by
-- this index instead of reading the whole table each pass.
CREATE INDEX requests_created ON requests (created_at);
