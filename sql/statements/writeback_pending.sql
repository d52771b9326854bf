-- Scores waiting to be written for a model, in score order, of scores after $3: the patient, the
-- identifier, the sealed patient reference (hex), the score, and the resource the server holds
-- for it when a sink writes by id (its type, sealed reference (hex) and version).
--   $1 model name  $2 limit  $3 after this score id
SELECT ra.patient_key, ra.identifier, encode(p.sealed_ref, 'hex'), s.id, s.probability, s.band,
       (extract(epoch FROM s.as_of) * 1000000)::bigint, s.features::text, s.contributions::text,
       coalesce(ra.target_type, ''), coalesce(encode(ra.target_ref, 'hex'), ''),
       coalesce(ra.target_version, '')
FROM risk_assessment ra
JOIN score s ON s.id = ra.pending_score_id
JOIN patient p ON p.patient_key = ra.patient_key
WHERE ra.model_name = $1 AND ra.pending_score_id > $3
ORDER BY s.id
LIMIT $2
