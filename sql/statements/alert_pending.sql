-- Alerts waiting to be sent for a model, in score order, of scores after $3: the patient, its
-- sealed reference (hex), the alert's number, the score, and the RiskAssessment identifier and
-- the resource the write-back holds for the patient (what the Communication is about).
--   $1 model name  $2 limit  $3 after this score id
SELECT a.patient_key, encode(p.sealed_ref, 'hex'), a.episodes, s.id, s.probability, s.band,
       (extract(epoch FROM s.as_of) * 1000000)::bigint, s.contributions::text,
       coalesce(ra.identifier, ''), coalesce(ra.target_type, ''),
       coalesce(encode(ra.target_ref, 'hex'), '')
FROM alert a
JOIN score s ON s.id = a.pending_score_id
JOIN patient p ON p.patient_key = a.patient_key
LEFT JOIN risk_assessment ra ON ra.patient_key = a.patient_key AND ra.model_name = a.model_name
WHERE a.model_name = $1 AND a.pending_score_id > $3
ORDER BY s.id
LIMIT $2
