-- One writer a model across processes, for sinks that write by id: two could otherwise both find
-- no resource for a patient and both create one. A session-level advisory lock: it outlives the
-- transaction that takes it, and a lost connection releases it. Returns whether it was taken.
--   $1 model name
SELECT pg_try_advisory_lock(hashtextextended('fhir-risk-adapter write-back ' || $1, 0))
