-- The stored encounters that count of the given patients ($1, text[]), times in epoch
-- microseconds (NULL when open or unknown), and whether the record calls the stay emergent.
SELECT patient_key, class_code, (extract(epoch FROM period_start) * 1000000)::bigint,
       (extract(epoch FROM period_end) * 1000000)::bigint, emergent
FROM encounter WHERE counts AND patient_key = ANY($1::text[])
