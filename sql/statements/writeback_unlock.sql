-- Releases writeback_lock.
--   $1 model name
SELECT pg_advisory_unlock(hashtextextended('fhir-risk-adapter write-back ' || $1, 0))
