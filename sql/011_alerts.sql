-- Alerts: when a patient's score enters the alert band (alerts.band or a higher one), one FHIR
-- Communication to the care team, once, not on every rescore.
--
-- alert: per patient and model, whether the latest score is in the band, when it last left it,
-- how many alerts were raised, and the score whose alert is still to be sent. It changes in the
-- scoring transaction that makes the score (so a crash never loses an alert or raises one
-- twice) and is marked sent after the Communication is on the server; the Communication's
-- identifier is derived from the patient's pseudonym and the alert's number, so a send repeated
-- after a crash updates the same one.
CREATE TABLE alert (
  patient_key       text        NOT NULL,
  model_name        text        NOT NULL,
  in_band           boolean     NOT NULL DEFAULT false,  -- the latest score is in or above the band
  left_at           timestamptz,                          -- when the score last left the band
  episodes          integer     NOT NULL DEFAULT 0,       -- alerts raised so far
  pending_score_id  bigint      REFERENCES score (id),    -- set: an alert to send for this score
  sent_score_id     bigint      REFERENCES score (id),
  sent_at           timestamptz,
  PRIMARY KEY (patient_key, model_name)
);
CREATE INDEX alert_pending ON alert (model_name) WHERE pending_score_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE ON alert TO fra_writer;
-- What an auditor sees of the alerts: pseudonyms, states and times.
CREATE VIEW audit_alerts AS
  SELECT patient_key AS patient_pseudonym, model_name, in_band, left_at, episodes,
         pending_score_id IS NOT NULL AS send_pending, sent_score_id, sent_at
  FROM alert;
GRANT SELECT ON audit_alerts TO fra_auditor;
