-- The latest score of each patient made by a model since $2 (epoch microseconds): its
-- probability, band and feature vector. What the monitoring compares with the training reference.
--   $1 model name  $2 since
SELECT DISTINCT ON (patient_key) probability, band, features::text
FROM score
WHERE model_name = $1 AND as_of >= timestamptz 'epoch' + $2::bigint * interval '1 microsecond'
ORDER BY patient_key, id DESC
