-- Records that the server holds the alert of each given score; a no-op for one superseded by a
-- newer alert meanwhile. Returns the score ids marked.
--   $1 model name  $2 patient keys text[]  $3 score ids bigint[]
UPDATE alert a SET sent_score_id = u.s, sent_at = now(), pending_score_id = NULL
FROM unnest($2::text[], $3::bigint[]) AS u(k, s)
WHERE a.patient_key = u.k AND a.model_name = $1 AND a.pending_score_id = u.s
RETURNING u.s
