-- Stores one page of mapped resources in one statement (one round trip), the page passed as
-- JSON arrays of rows:
--   $1 versions     [{ord, type, key, version, updated, sealed, patient, has_values}]
--   $2 patients     [{key, version, birth_year, sex, sealed}]
--   $3 encounters   [{key, version, patient, status, counts, class_code, start, stop}]
--   $4 values       [{ord, code, value, unit, effective, value_code}] (ord: its version's row in $1)
--   $5 cursor key (the resource type), $6 the cursor it reaches (epoch microseconds, 0: none)
--   $7 conditions   [{key, version, patient, code, counts, active, onset, abatement}]
-- Times are epoch microseconds, so no time zone setting can shift them.
--
-- The store takes, of each resource in the page, its newest version when that is newer than, or
-- not yet in, the store ("claimed"). A claimed version becomes an input of its patient from now
-- on (lineage), and the version it replaces ceases to be one; its rows replace the old version's
-- rows (a new version may change or drop values, or move to another patient). Every sub-statement
-- sees the tables as they were before the statement, so the old rows are read before they change.
-- The patients whose inputs changed go on the scoring queue; the cursor moves forward (never
-- back), in the caller's transaction (which also records the page in the audit log).
-- Returns how many versions the store took and how many patients went on the queue.
WITH incoming AS (
  -- Sorted by byte ("C"): pseudonyms are hex, and the database's own collation compares slower.
  SELECT DISTINCT ON (type COLLATE "C", key COLLATE "C") ord, type, key, version, updated, sealed, patient,
         has_values
  FROM json_to_recordset($1::json) AS v(ord int, type text, key text, version text, updated bigint,
                                        sealed text, patient text, has_values boolean)
  ORDER BY type COLLATE "C", key COLLATE "C", updated DESC, ord DESC
), up AS (
  INSERT INTO resource_version (resource_type, resource_key, version_id, source_updated, sealed_ref)
  SELECT type, key, version, timestamptz 'epoch' + updated * interval '1 microsecond', decode(sealed, 'hex')
  FROM incoming
  ON CONFLICT (resource_type, resource_key) DO UPDATE
  SET version_id = EXCLUDED.version_id, source_updated = EXCLUDED.source_updated, stored_at = now(),
      sealed_ref = EXCLUDED.sealed_ref
  WHERE resource_version.version_id <> EXCLUDED.version_id
    AND resource_version.source_updated <= EXCLUDED.source_updated
  RETURNING resource_type, resource_key, version_id, xmax = 0 AS first_seen  -- xmax 0: inserted
), claimed AS (
  SELECT u.resource_type AS type, u.resource_key AS key, u.version_id AS version, u.first_seen,
         i.ord, i.patient, i.has_values
  FROM up u JOIN incoming i ON i.type = u.resource_type AND i.key = u.resource_key
), superseded AS (
  UPDATE input_version v SET superseded_at = now() FROM claimed c
  WHERE NOT c.first_seen AND v.resource_key = c.key AND v.superseded_at IS NULL
), lineage AS (
  -- A resource seen for the first time has no lineage yet: a plain insert, the bulk of a backfill.
  INSERT INTO input_version (resource_type, resource_key, version_id, patient_key)
  SELECT type, key, version, patient FROM claimed WHERE first_seen
), lineage_again AS (
  INSERT INTO input_version (resource_type, resource_key, version_id, patient_key)
  SELECT type, key, version, patient FROM claimed WHERE NOT first_seen
  ON CONFLICT DO NOTHING
), new_values AS (
  -- A value names its Observation by the row of its version in $1 (the claimed one, or none).
  SELECT DISTINCT ON (c.key COLLATE "C", v.code COLLATE "C") c.key, v.code, c.patient, v.value, v.unit, v.effective, v.value_code,
         c.first_seen
  FROM json_to_recordset($4::json) AS v(ord int, code text, value float8, unit text, effective bigint,
                                        value_code text)
  JOIN claimed c ON c.ord = v.ord AND c.type = 'Observation'
), put_values AS (
  -- Nor has it values: a plain insert again.
  INSERT INTO observation_value (resource_key, code, patient_key, value, unit, effective, value_code)
  SELECT key, code, patient, value, unit, timestamptz 'epoch' + effective * interval '1 microsecond', value_code
  FROM new_values WHERE first_seen
), put_values_again AS (
  INSERT INTO observation_value (resource_key, code, patient_key, value, unit, effective, value_code)
  SELECT key, code, patient, value, unit, timestamptz 'epoch' + effective * interval '1 microsecond', value_code
  FROM new_values WHERE NOT first_seen
  ON CONFLICT (resource_key, code) DO UPDATE
  SET patient_key = EXCLUDED.patient_key, value = EXCLUDED.value, unit = EXCLUDED.unit,
      effective = EXCLUDED.effective, value_code = EXCLUDED.value_code
), old_values AS (
  SELECT o.resource_key, o.code, o.patient_key
  FROM observation_value o JOIN claimed c ON c.type = 'Observation' AND NOT c.first_seen AND o.resource_key = c.key
), gone_values AS (
  DELETE FROM observation_value o USING old_values g
  WHERE o.resource_key = g.resource_key AND o.code = g.code
    AND NOT EXISTS (SELECT 1 FROM new_values n WHERE n.key = g.resource_key AND n.code = g.code)
), new_encounters AS (
  SELECT DISTINCT ON (e.key) e.*
  FROM json_to_recordset($3::json) AS e(key text, version text, patient text, status text, counts boolean,
                                        class_code text, start bigint, stop bigint, emergent boolean)
  JOIN claimed c ON c.type = 'Encounter' AND c.key = e.key AND c.version = e.version
), put_encounters AS (
  INSERT INTO encounter (resource_key, patient_key, status, counts, class_code, period_start, period_end,
                         emergent)
  SELECT key, patient, status, counts, class_code, timestamptz 'epoch' + start * interval '1 microsecond',
         timestamptz 'epoch' + stop * interval '1 microsecond', coalesce(emergent, false)
  FROM new_encounters
  ON CONFLICT (resource_key) DO UPDATE
  SET patient_key = EXCLUDED.patient_key, status = EXCLUDED.status, counts = EXCLUDED.counts,
      class_code = EXCLUDED.class_code, period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
      emergent = EXCLUDED.emergent
  RETURNING patient_key
), old_encounters AS (
  SELECT e.resource_key, e.patient_key
  FROM encounter e JOIN claimed c ON c.type = 'Encounter' AND NOT c.first_seen AND e.resource_key = c.key
), gone_encounters AS (
  DELETE FROM encounter e USING old_encounters g
  WHERE e.resource_key = g.resource_key AND NOT EXISTS (SELECT 1 FROM new_encounters n WHERE n.key = g.resource_key)
), new_conditions AS (
  SELECT DISTINCT ON (k.key, k.code) k.key, k.code, k.patient, k.counts, k.active, k.onset, k.abatement
  FROM json_to_recordset($7::json) AS k(key text, version text, patient text, code text, counts boolean,
                                        active boolean, onset bigint, abatement bigint)
  JOIN claimed c ON c.type = 'Condition' AND c.key = k.key AND c.version = k.version
), put_conditions AS (
  INSERT INTO condition_code (resource_key, code, patient_key, counts, active, onset, abatement)
  SELECT key, code, patient, counts, active, timestamptz 'epoch' + onset * interval '1 microsecond',
         timestamptz 'epoch' + abatement * interval '1 microsecond'
  FROM new_conditions
  ON CONFLICT (resource_key, code) DO UPDATE
  SET patient_key = EXCLUDED.patient_key, counts = EXCLUDED.counts, active = EXCLUDED.active,
      onset = EXCLUDED.onset, abatement = EXCLUDED.abatement
), old_conditions AS (
  SELECT k.resource_key, k.code, k.patient_key
  FROM condition_code k JOIN claimed c ON c.type = 'Condition' AND NOT c.first_seen AND k.resource_key = c.key
), gone_conditions AS (
  DELETE FROM condition_code k USING old_conditions g
  WHERE k.resource_key = g.resource_key AND k.code = g.code
    AND NOT EXISTS (SELECT 1 FROM new_conditions n WHERE n.key = g.resource_key AND n.code = g.code)
), put_patients AS (
  INSERT INTO patient (patient_key, birth_year, sex, sealed_ref)
  SELECT DISTINCT ON (p.key) p.key, p.birth_year, p.sex, decode(p.sealed, 'hex')
  FROM json_to_recordset($2::json) AS p(key text, version text, birth_year integer, sex text, sealed text)
  JOIN claimed c ON c.type = 'Patient' AND c.key = p.key AND c.version = p.version
  ON CONFLICT (patient_key) DO UPDATE
  SET birth_year = EXCLUDED.birth_year, sex = EXCLUDED.sex, sealed_ref = EXCLUDED.sealed_ref, stored_at = now()
  RETURNING patient_key
), moved AS (
  INSERT INTO sync_cursor (resource_type, last_updated)
  SELECT $5, timestamptz 'epoch' + $6::bigint * interval '1 microsecond' WHERE $6::bigint > 0
  ON CONFLICT (resource_type) DO UPDATE
  SET last_updated = greatest(sync_cursor.last_updated, EXCLUDED.last_updated), updated_at = now()
), touched AS (
  SELECT patient AS patient_key FROM claimed WHERE type = 'Observation' AND has_values
  UNION SELECT patient_key FROM old_values
  UNION SELECT patient_key FROM old_encounters
  UNION SELECT patient FROM claimed WHERE type = 'Condition'
  UNION SELECT patient_key FROM old_conditions
  UNION SELECT patient_key FROM put_encounters
  UNION SELECT patient_key FROM put_patients
), queued AS (
  -- In key order: writers on other lock stripes queue the same patients, and waiting on each
  -- other's new queue rows in one order never makes a cycle.
  INSERT INTO scoring_queue (patient_key) SELECT patient_key FROM touched ORDER BY patient_key COLLATE "C"
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM claimed)::int AS stored, (SELECT count(*) FROM queued)::int AS enqueued
