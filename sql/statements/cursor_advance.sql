-- Moves a cursor forward to an instant, never back.
--   $1 the cursor's key   $2 the instant, epoch microseconds
INSERT INTO sync_cursor (resource_type, last_updated)
VALUES ($1, timestamptz 'epoch' + $2::bigint * interval '1 microsecond')
ON CONFLICT (resource_type) DO UPDATE
SET last_updated = greatest(sync_cursor.last_updated, EXCLUDED.last_updated), updated_at = now()
