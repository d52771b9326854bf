-- Queued patients whose Patient resource has not arrived yet.
SELECT count(*) FROM scoring_queue q
WHERE NOT EXISTS (SELECT 1 FROM patient p WHERE p.patient_key = q.patient_key)
