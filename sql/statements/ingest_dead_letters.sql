-- Stores a page's dead letters (resources that could not be mapped: type, pseudonym, version and
-- the reason, never a field's value), each once; returns the ids of those new, in page order
-- (the audit log records each: audit_dead_letters).
--   $1 [{ord, type, key, version, reason_code, reason, pointer, sealed}]
INSERT INTO dead_letter (resource_type, resource_key, version_id, reason_code, reason, json_pointer, sealed_ref)
SELECT d.type, d.key, d.version, d.reason_code, d.reason, d.pointer, decode(d.sealed, 'hex')
FROM json_to_recordset($1::json) AS d(ord int, type text, key text, version text, reason_code text, reason text,
                                      pointer text, sealed text)
ORDER BY d.ord
ON CONFLICT DO NOTHING
RETURNING id
