-- Ends a member's refresh: due again in $2 seconds, the lease released.
--   $1 patient key  $2 seconds until the next refresh  $3 FHIR requests it took (-1: it failed)
UPDATE cohort_member
SET due_at = now() + make_interval(secs => $2), leased_until = NULL,
    refreshed_at = CASE WHEN $3 < 0 THEN refreshed_at ELSE now() END,
    refreshes = refreshes + CASE WHEN $3 < 0 THEN 0 ELSE 1 END,
    last_requests = CASE WHEN $3 < 0 THEN last_requests ELSE $3 END
WHERE patient_key = $1
