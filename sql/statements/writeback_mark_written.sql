-- Records that the server holds the given scores now; each a no-op when a newer score is pending.
--   $1 model name  $2 patient keys text[]  $3 score ids bigint[]  $4 probabilities float8[]
--   $5 bands text[]
UPDATE risk_assessment ra
SET written_score_id = u.s, written_probability = u.p, written_band = u.b, written_at = now(),
    pending_score_id = NULL
FROM unnest($2::text[], $3::bigint[], $4::float8[], $5::text[]) AS u(k, s, p, b)
WHERE ra.patient_key = u.k AND ra.model_name = $1 AND ra.pending_score_id = u.s
