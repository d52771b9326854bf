-- A resource type's sync cursor, in epoch microseconds; no row before the first sync.
--   $1 the cursor's key (a resource type, or "<type>/_history")
SELECT (extract(epoch FROM last_updated) * 1000000)::bigint FROM sync_cursor WHERE resource_type = $1
