-- Up to $2 stored patients after the pseudonym $1, in pseudonym order (a walk over all of them).
SELECT patient_key, birth_year, sex FROM patient WHERE patient_key > $1 ORDER BY patient_key LIMIT $2
