-- A patient's Observations, Encounters and Conditions the store holds inside the refreshed window that the
-- server no longer returned: deleted at the source. An Observation is inside when a value of it
-- is effective at or after the window's start; an Encounter when its period reaches it (what a
-- FHIR `date=ge` search matches); a Condition always (its search has no date).
--   $1 patient key  $2 window start (epoch microseconds)  $3 the keys the server returned text[]
SELECT 'Observation', o.resource_key FROM observation_value o
WHERE o.patient_key = $1 AND o.effective >= timestamptz 'epoch' + $2 * interval '1 microsecond'
  AND NOT (o.resource_key = ANY ($3::text[]))
UNION
SELECT 'Encounter', e.resource_key FROM encounter e
WHERE e.patient_key = $1
  AND coalesce(e.period_end, e.period_start, 'infinity') >= timestamptz 'epoch' + $2 * interval '1 microsecond'
  AND NOT (e.resource_key = ANY ($3::text[]))
UNION
SELECT 'Condition', k.resource_key FROM condition_code k
WHERE k.patient_key = $1 AND NOT (k.resource_key = ANY ($3::text[]))
