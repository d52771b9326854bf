-- Removes resources the server deleted: each gets a tombstone version (so an older copy seen
-- later is not taken back) when it is newer than what the store holds; the rows of those the
-- store held go, their lineage stops being an input, and their patients go on the scoring queue.
-- Returns how many the store held.
--   $1 the resource type   $2 [{key, at}] (at: the deletion's instant, epoch microseconds)
WITH gone AS (
  SELECT DISTINCT ON (key) key, at FROM json_to_recordset($2::json) AS g(key text, at bigint) ORDER BY key, at DESC
), tomb AS (
  INSERT INTO resource_version (resource_type, resource_key, version_id, source_updated)
  SELECT $1, key, 'deleted', timestamptz 'epoch' + at * interval '1 microsecond' FROM gone
  ON CONFLICT (resource_type, resource_key) DO UPDATE
  SET version_id = 'deleted', source_updated = EXCLUDED.source_updated, stored_at = now()
  WHERE resource_version.version_id <> 'deleted'
    AND resource_version.source_updated <= EXCLUDED.source_updated
  RETURNING resource_key, xmax <> 0 AS held  -- xmax 0: inserted, a resource never stored here
), held AS (
  SELECT resource_key FROM tomb WHERE held
), superseded AS (
  UPDATE input_version v SET superseded_at = now() FROM held h
  WHERE v.resource_key = h.resource_key AND v.superseded_at IS NULL
), gone_values AS (
  DELETE FROM observation_value o USING held h WHERE $1 = 'Observation' AND o.resource_key = h.resource_key
  RETURNING o.patient_key
), gone_encounters AS (
  DELETE FROM encounter e USING held h WHERE $1 = 'Encounter' AND e.resource_key = h.resource_key
  RETURNING e.patient_key
), gone_conditions AS (
  DELETE FROM condition_code k USING held h WHERE $1 = 'Condition' AND k.resource_key = h.resource_key
  RETURNING k.patient_key
), queued AS (
  INSERT INTO scoring_queue (patient_key)
  SELECT patient_key FROM gone_values UNION SELECT patient_key FROM gone_encounters
  UNION SELECT patient_key FROM gone_conditions
  ON CONFLICT DO NOTHING
)
SELECT count(*)::int FROM held
