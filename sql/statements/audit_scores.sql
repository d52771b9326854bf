-- One 'score' event for each of the given scores, in id order, carrying what the score says and
-- a hash of its feature vector and contributions, so that a score altered afterwards no longer
-- matches the chain.
--   $1 actor   $2 score ids, bigint[]
INSERT INTO audit_log (actor, action, object, details)
SELECT $1, 'score', 'Patient/' || patient_key,
       jsonb_build_object('score_id', id, 'model', model_name, 'model_version', model_version,
                          'model_sha256', model_sha256, 'as_of', as_of, 'probability', probability, 'band', band,
                          'features_sha256', encode(sha256(convert_to(features::text, 'UTF8')), 'hex'),
                          'contributions_sha256', encode(sha256(convert_to(contributions::text, 'UTF8')), 'hex'),
                          'scored_at', scored_at)
FROM score WHERE id = ANY($2::bigint[]) ORDER BY id
