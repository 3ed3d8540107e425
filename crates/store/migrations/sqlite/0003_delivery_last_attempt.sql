-- The attempt that delivered a notification is kept on its delivery row, not as an
-- attempt row: a notification delivered at its first try costs one row in all.
-- delivery_attempts holds the attempts that did not deliver.
ALTER TABLE deliveries ADD COLUMN last_attempt_at INTEGER;
ALTER TABLE deliveries ADD COLUMN last_latency_us INTEGER;

-- Listing by status: only the few pending and failed rows are indexed, so a delivered
-- notification's row touches two indexes (its id, its (target, seq)). Listing delivered
-- ones walks the ids.
DROP INDEX deliveries_status;
CREATE INDEX deliveries_pending_id ON deliveries (target, id) WHERE status = 'pending';
CREATE INDEX deliveries_failed_id ON deliveries (target, id) WHERE status = 'failed';
