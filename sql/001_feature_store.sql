-- The feature store. Every patient-linked row is keyed by an HMAC-SHA256 pseudonym (hex);
-- no FHIR id, identifier, name, birth date, address or telecom is stored anywhere.

-- One row per resource seen: the version stored, so a re-fetched version is skipped and a
-- newer one replaces the older.
CREATE TABLE resource_version (
  resource_type  text        NOT NULL,
  resource_key   text        NOT NULL,  -- HMAC of "<type>/<id>"
  version_id     text        NOT NULL,
  source_updated timestamptz NOT NULL,  -- meta.lastUpdated on the server
  stored_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (resource_type, resource_key)
);

CREATE TABLE patient (
  patient_key    text        PRIMARY KEY,  -- HMAC of "Patient/<id>"
  birth_year     integer,                  -- the year only, never the date
  sex            text,                     -- administrative gender code
  sealed_ref     bytea       NOT NULL,     -- AES-256-GCM of "Patient/<id>" under a key outside the database
  stored_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per usable value: a blood-pressure panel gives two.
CREATE TABLE observation_value (
  resource_key   text             NOT NULL,
  code           text             NOT NULL,  -- LOINC
  patient_key    text             NOT NULL,
  value          double precision NOT NULL,  -- in the canonical unit of the code
  unit           text             NOT NULL,  -- UCUM
  effective      timestamptz      NOT NULL,
  PRIMARY KEY (resource_key, code)
);
CREATE INDEX observation_value_patient ON observation_value (patient_key, code, effective);

CREATE TABLE encounter (
  resource_key   text        PRIMARY KEY,
  patient_key    text        NOT NULL,
  status         text        NOT NULL,
  counts         boolean     NOT NULL,  -- false for cancelled and entered-in-error
  class_code     text        NOT NULL,  -- v3 ActCode: IMP, AMB, EMER, ...
  period_start   timestamptz,
  period_end     timestamptz
);
CREATE INDEX encounter_patient ON encounter (patient_key);

-- The search cursor per resource type: committed with the rows it covers.
CREATE TABLE sync_cursor (
  resource_type  text        PRIMARY KEY,
  last_updated   timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Resources that could not be mapped: why, never what they said.
CREATE TABLE dead_letter (
  id             bigserial   PRIMARY KEY,
  resource_type  text        NOT NULL,
  resource_key   text,                  -- NULL when the resource had no id
  version_id     text        NOT NULL DEFAULT '',
  reason_code    text        NOT NULL,
  reason         text        NOT NULL,
  json_pointer   text        NOT NULL DEFAULT '',
  seen_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (resource_type, resource_key, version_id)
);

-- Patients whose inputs changed and who must be scored again.
CREATE TABLE scoring_queue (
  patient_key    text        PRIMARY KEY,
  enqueued_at    timestamptz NOT NULL DEFAULT now()
);

-- Every score, with the exact inputs and model that produced it.
CREATE TABLE score (
  id             bigserial        PRIMARY KEY,
  patient_key    text             NOT NULL,
  model_name     text             NOT NULL,
  model_version  text             NOT NULL,
  model_sha256   text             NOT NULL,
  as_of          timestamptz      NOT NULL,
  probability    double precision NOT NULL,
  band           text             NOT NULL,
  features       jsonb            NOT NULL,  -- feature name -> value (null when missing)
  scored_at      timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX score_patient ON score (patient_key, model_name, id);

-- The RiskAssessment kept on the FHIR server for each patient and model.
CREATE TABLE risk_assessment (
  patient_key          text        NOT NULL,
  model_name           text        NOT NULL,
  identifier           text        NOT NULL UNIQUE,  -- derived; not the patient key
  pending_score_id     bigint      REFERENCES score (id),  -- set: must be written
  written_score_id     bigint      REFERENCES score (id),
  written_probability  double precision,
  written_band         text,
  written_at           timestamptz,
  PRIMARY KEY (patient_key, model_name)
);
CREATE INDEX risk_assessment_pending ON risk_assessment (model_name) WHERE pending_score_id IS NOT NULL;
