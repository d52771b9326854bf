-- Records the cohort's members (new ones due at once; returning ones back in the cohort).
--   $1 [{key, sealed}] (sealed: "Patient/<id>" sealed, hex)
INSERT INTO cohort_member (patient_key, sealed_ref)
SELECT key, decode(sealed, 'hex') FROM json_to_recordset($1::json) AS m(key text, sealed text)
ON CONFLICT (patient_key) DO UPDATE SET in_cohort = true, sealed_ref = EXCLUDED.sealed_ref
WHERE NOT cohort_member.in_cohort OR cohort_member.sealed_ref <> EXCLUDED.sealed_ref
