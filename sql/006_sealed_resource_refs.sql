-- Each stored version and dead letter keeps "<type>/<id>" sealed (AES-256-GCM under the sealing
-- key), so that `fhir-risk-adapter rekey` can derive every pseudonym again under a new key.
-- Rows stored before this migration have none; rekey refuses while any remain.
ALTER TABLE resource_version ADD COLUMN sealed_ref bytea;
ALTER TABLE dead_letter ADD COLUMN sealed_ref bytea;
