-- Records the resource the server holds for a patient and model, for sinks that write by id.
--   $1 model name  $2 [{key, type, ref, version}] (ref: "<type>/<id>" sealed, hex)
UPDATE risk_assessment ra
SET target_type = t.type, target_ref = decode(t.ref, 'hex'), target_version = t.version
FROM json_to_recordset($2::json) AS t(key text, type text, ref text, version text)
WHERE ra.patient_key = t.key AND ra.model_name = $1
