-- Patients on the scoring queue.
SELECT count(*) FROM scoring_queue
