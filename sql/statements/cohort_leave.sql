-- Patients no longer in the cohort stop being refreshed; their data stays.
--   $1 the members' keys text[]
UPDATE cohort_member SET in_cohort = false
WHERE in_cohort AND NOT (patient_key = ANY ($1::text[]))
