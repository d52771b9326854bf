-- Appends one event to the audit log; the chaining trigger (004_audit.sql) fills in its
-- position, time, database user and hashes.
--   $1 actor   $2 action   $3 object   $4 details, a JSON object
INSERT INTO audit_log (actor, action, object, details) VALUES ($1, $2, $3, $4::jsonb)
