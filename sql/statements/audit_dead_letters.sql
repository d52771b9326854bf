-- One 'dead-letter' event for each of the given dead letters, in id order: type and pseudonym,
-- version, reason code and JSON pointer (never the reason's text, which may quote the input).
--   $1 actor   $2 dead_letter ids, bigint[]
INSERT INTO audit_log (actor, action, object, details)
SELECT $1, 'dead-letter', resource_type || '/' || coalesce(resource_key, '(no id)'),
       jsonb_build_object('version', version_id, 'reason_code', reason_code, 'json_pointer', json_pointer)
FROM dead_letter WHERE id = ANY($2::bigint[]) ORDER BY id
