-- The codings of the stored Conditions that count (not refuted, not entered-in-error) of the
-- given patients ($1, text[]); times in epoch microseconds (NULL when unknown).
SELECT patient_key, resource_key, code, active, (extract(epoch FROM onset) * 1000000)::bigint,
       (extract(epoch FROM abatement) * 1000000)::bigint
FROM condition_code WHERE counts AND patient_key = ANY($1::text[])
