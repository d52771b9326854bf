-- Comorbidities and coded values become features.
--
-- condition_code: one row per coding of a stored Condition's code ("system|code": SNOMED CT,
-- ICD-10-CM, ...), with what decides whether it holds at a given time. Every coding is kept,
-- whichever value set a feature reads now, so a new value set needs no new fetch. Codes name
-- diagnoses, never a person.
CREATE TABLE condition_code (
  resource_key   text        NOT NULL,  -- HMAC of "Condition/<id>"
  code           text        NOT NULL,  -- system|code of one coding of Condition.code
  patient_key    text        NOT NULL,
  counts         boolean     NOT NULL,  -- false when refuted, entered-in-error or of an unknown clinicalStatus
  active         boolean     NOT NULL,  -- clinicalStatus active, recurrence or relapse
  onset          timestamptz,           -- onset[x], else recordedDate; NULL: never counts
  abatement      timestamptz,           -- abatement[x]
  PRIMARY KEY (resource_key, code)
);
CREATE INDEX condition_code_patient ON condition_code (patient_key);
COMMENT ON TABLE condition_code IS 'the codings of each stored Condition, keyed by pseudonyms';

-- A coded Observation value (valueCodeableConcept, e.g. smoking status): the coding a feature
-- compares with, and no number.
ALTER TABLE observation_value ALTER COLUMN value DROP NOT NULL,
                              ADD COLUMN value_code text,
                              ADD CONSTRAINT observation_value_number_or_code
                                CHECK ((value IS NULL) <> (value_code IS NULL));
COMMENT ON COLUMN observation_value.value_code IS 'system|code of a coded value (valueCodeableConcept); NULL for a number';

-- An emergency admission by the record itself (priority EM, or admitSource emd): the acuity of
-- a stay, with an emergency visit that led to it (the feature code decides that).
ALTER TABLE encounter ADD COLUMN emergent boolean NOT NULL DEFAULT false;

GRANT SELECT, INSERT, UPDATE, DELETE ON condition_code TO fra_writer;
