-- A dead letter without a resource key (a line that is not JSON, say) is recorded once too:
-- NULL keys count as equal for the uniqueness of (type, key, version).
ALTER TABLE dead_letter DROP CONSTRAINT dead_letter_resource_type_resource_key_version_id_key;
ALTER TABLE dead_letter ADD CONSTRAINT dead_letter_once
  UNIQUE NULLS NOT DISTINCT (resource_type, resource_key, version_id);
