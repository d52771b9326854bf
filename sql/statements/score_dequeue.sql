-- Takes the given patients ($1, text[]) off the scoring queue.
DELETE FROM scoring_queue WHERE patient_key = ANY($1::text[])
