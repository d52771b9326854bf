-- Stores a batch of scores, one row per patient, with the model that made them, the feature
-- vector and the contributions; returns each patient's new score id.
--   $1 patient keys text[]  $2 model name  $3 model version  $4 model sha256
--   $5 as-of, epoch microseconds  $6 probabilities float8[]  $7 bands text[]
--   $8 feature vectors (JSON objects) text[]  $9 contributions (JSON arrays) text[]
INSERT INTO score (patient_key, model_name, model_version, model_sha256, as_of, probability, band,
                   features, contributions)
SELECT u.k, $2, $3, $4, timestamptz 'epoch' + $5::bigint * interval '1 microsecond', u.p, u.b,
       u.f::jsonb, u.c::jsonb
FROM unnest($1::text[], $6::float8[], $7::text[], $8::text[], $9::text[]) WITH ORDINALITY AS u(k, p, b, f, c, n)
ORDER BY u.n
RETURNING patient_key, id
