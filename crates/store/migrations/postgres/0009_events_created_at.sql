-- Events written before 0008 read created_at 0, which retention would take for older than
-- any period and prune at its first pass after an upgrade. They get their own time, from
-- the eventDateTime in their body.
UPDATE events
SET created_at = (extract(epoch FROM (body::jsonb ->> 'eventDateTime')::timestamptz) * 1000000)::bigint
WHERE created_at = 0 AND body::jsonb ? 'eventDateTime';
