-- Lineage, leaner to write. A resource key is an HMAC of "<type>/<id>", so it names its type:
-- (resource_key, version_id) identifies a version without the type, and the primary key's
-- index no longer repeats it in every entry.
ALTER TABLE input_version DROP CONSTRAINT input_version_pkey;
ALTER TABLE input_version ADD PRIMARY KEY (resource_key, version_id);
DROP INDEX input_version_patient;
CREATE INDEX input_version_patient ON input_version USING hash (patient_key);
