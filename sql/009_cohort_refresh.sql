-- Per-patient sync of a cohort, for servers that answer only patient-scoped searches.
--
-- cohort_member: the patients of the cohort (a FHIR Group, a file of patients) and when each is
-- due to be refreshed. A refresh claims the patient with a lease (leased_until) taken with
-- FOR UPDATE SKIP LOCKED and committed, so several adapter processes share one cohort and never
-- refresh one patient at once; the refresh's own transaction releases it and sets the next due
-- time. A patient who leaves the cohort keeps the row (in_cohort false) and is not refreshed;
-- their data stays until retention removes it. The sealed reference opens to "Patient/<id>"
-- only with the adapter's key.
CREATE TABLE cohort_member (
  patient_key    text        PRIMARY KEY,  -- HMAC of "Patient/<id>"
  sealed_ref     bytea       NOT NULL,
  in_cohort      boolean     NOT NULL DEFAULT true,
  due_at         timestamptz NOT NULL DEFAULT now(),
  leased_until   timestamptz,
  refreshed_at   timestamptz,
  refreshes      integer     NOT NULL DEFAULT 0,  -- completed refreshes
  last_requests  integer                          -- FHIR requests the last refresh took
);
CREATE INDEX cohort_member_due ON cohort_member (due_at) WHERE in_cohort;

-- Write-back targets other than a conditional update: the resource the server holds for a
-- patient and model ("RiskAssessment/<id>" or "Observation/<id>", sealed like the patient
-- reference) and its version, so the next write updates it in place with If-Match.
ALTER TABLE risk_assessment ADD COLUMN target_type text,
                            ADD COLUMN target_ref bytea,
                            ADD COLUMN target_version text;

GRANT SELECT, INSERT, UPDATE ON cohort_member TO fra_writer;
-- What an auditor may see of the cohort: pseudonyms and refresh times, never the reference.
CREATE VIEW audit_cohort AS
  SELECT patient_key AS patient_pseudonym, in_cohort, due_at, refreshed_at, refreshes, last_requests
  FROM cohort_member;
GRANT SELECT ON audit_cohort TO fra_auditor;
