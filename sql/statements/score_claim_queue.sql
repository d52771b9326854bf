-- Takes up to $1 queued patients whose Patient resource has arrived, oldest first, locking them
-- so that another process scoring at the same time takes others (the rest wait on the queue).
SELECT q.patient_key, p.birth_year, p.sex
FROM scoring_queue q JOIN patient p USING (patient_key)
ORDER BY q.enqueued_at, q.patient_key
LIMIT $1
FOR UPDATE OF q SKIP LOCKED
