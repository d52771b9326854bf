-- Unmarks, of the given patients' marked scores, those whose probability and band the server
-- already shows: what the clinician sees did not change.
--   $1 patient keys text[]  $2 model name
UPDATE risk_assessment ra SET pending_score_id = NULL
FROM score s
WHERE ra.model_name = $2 AND ra.patient_key = ANY($1::text[]) AND s.id = ra.pending_score_id
  AND ra.written_probability = s.probability AND ra.written_band = s.band
