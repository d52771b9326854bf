-- Claims up to $1 members due for a refresh at or before $3 with a lease of $2 seconds, oldest
-- due first. Rows another process is claiming are skipped, not waited for; a lease that ran out
-- (a process that died mid-refresh) is taken over.
--   $1 limit  $2 lease seconds  $3 due at or before (epoch microseconds): the pass's start, so
--   that a pass refreshes each patient once however short the interval
UPDATE cohort_member m SET leased_until = now() + make_interval(secs => $2)
FROM (SELECT patient_key FROM cohort_member
      WHERE in_cohort AND due_at <= least(now(), timestamptz 'epoch' + $3 * interval '1 microsecond')
        AND (leased_until IS NULL OR leased_until < now())
      ORDER BY due_at
      LIMIT $1
      FOR UPDATE SKIP LOCKED) due
WHERE m.patient_key = due.patient_key
RETURNING m.patient_key, encode(m.sealed_ref, 'hex')
