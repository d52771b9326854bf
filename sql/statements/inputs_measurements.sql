-- The stored observation values of the given patients ($1, text[]), times in epoch microseconds:
-- a number, or (value NULL) a coded value.
SELECT patient_key, code, value, (extract(epoch FROM effective) * 1000000)::bigint, value_code
FROM observation_value WHERE patient_key = ANY($1::text[])
