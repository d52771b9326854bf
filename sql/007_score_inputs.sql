-- Lineage: every version the store took as an input, with its patient and the interval in which
-- it was the current one. The inputs of a score are the versions of its patient current when
-- it was scored; `audit_score_inputs` lists them.
CREATE TABLE input_version (
  resource_type  text        NOT NULL,
  resource_key   text        NOT NULL,
  version_id     text        NOT NULL,
  patient_key    text        NOT NULL,
  stored_at      timestamptz NOT NULL DEFAULT now(),
  superseded_at  timestamptz,            -- a newer version, or a deletion, came
  PRIMARY KEY (resource_type, resource_key, version_id)
);
CREATE INDEX input_version_patient ON input_version (patient_key, stored_at);

CREATE VIEW audit_score_inputs AS
  SELECT s.id AS score_id, s.patient_key AS patient_pseudonym, i.resource_type, i.resource_key AS resource_pseudonym,
         i.version_id, i.stored_at
    FROM score s JOIN input_version i ON i.patient_key = s.patient_key
   WHERE i.stored_at <= s.scored_at AND (i.superseded_at IS NULL OR i.superseded_at > s.scored_at);

REVOKE ALL ON input_version FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON input_version TO fra_writer;
GRANT SELECT ON audit_score_inputs TO fra_auditor;
