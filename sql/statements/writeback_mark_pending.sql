-- Marks new scores for write-back (writeback_unmark_unchanged follows).
--   $1 patient keys text[]  $2 model name  $3 RiskAssessment identifiers text[]  $4 score ids bigint[]
INSERT INTO risk_assessment (patient_key, model_name, identifier, pending_score_id)
SELECT u.k, $2, u.i, u.s FROM unnest($1::text[], $3::text[], $4::bigint[]) AS u(k, i, s)
ON CONFLICT (patient_key, model_name) DO UPDATE SET pending_score_id = EXCLUDED.pending_score_id
