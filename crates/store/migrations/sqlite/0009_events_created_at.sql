-- Events written before 0008 read created_at 0, which retention would take for older than
-- any period and prune at its first pass after an upgrade. They get their own time, from
-- the eventDateTime in their body (to the millisecond).
UPDATE events
SET created_at = COALESCE(
    CAST(ROUND((julianday(json_extract(body, '$.eventDateTime')) - 2440587.5) * 86400000.0) AS INTEGER) * 1000,
    0)
WHERE created_at = 0;
