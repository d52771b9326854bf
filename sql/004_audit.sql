-- Audit: an append-only, hash-chained log of what the adapter did, two roles (the daemon writes,
-- an auditor reads documented views only), and the views themselves. docs/compliance.md.

-- Roles belong to the cluster, not the database: made once, granted per database.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fra_writer') THEN
    CREATE ROLE fra_writer NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fra_auditor') THEN
    CREATE ROLE fra_auditor NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
  END IF;
END
$$;

-- One row per event. `id` is the position in the chain, given under the head's lock, so ids are
-- gapless in chain order; `row_hash` is the SHA-256 of the row's canonical form, which includes
-- `prev_hash`, the row_hash of the row before (64 zeros for the first).
CREATE TABLE audit_log (
  id         bigint      PRIMARY KEY,
  at         timestamptz NOT NULL,
  actor      text        NOT NULL,
  action     text        NOT NULL,
  object     text        NOT NULL DEFAULT '',
  details    jsonb       NOT NULL DEFAULT '{}',
  prev_hash  text        NOT NULL,
  row_hash   text        NOT NULL
);

-- The chain's head: the last id and hash. One row; only the chaining trigger writes it.
CREATE TABLE audit_head (
  one        boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_id    bigint  NOT NULL,
  last_hash  text    NOT NULL
);
INSERT INTO audit_head VALUES (true, 0, repeat('0', 64));

-- The canonical form of a row: each field as <byte length>:<text>, one per line, in this order:
-- id, at (UTC, microseconds), actor, action, object, details (jsonb's own text), prev_hash.
-- `fhir-risk-adapter audit verify` recomputes it independently.
CREATE FUNCTION audit_canonical(p_id bigint, p_at timestamptz, p_actor text, p_action text, p_object text,
                                p_details jsonb, p_prev text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public AS $$
DECLARE
  fields text[] := ARRAY[p_id::text, to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), p_actor,
                         p_action, p_object, p_details::text, p_prev];
  out text := '';
  f text;
BEGIN
  FOREACH f IN ARRAY fields LOOP
    out := out || octet_length(f) || ':' || f || E'\n';
  END LOOP;
  RETURN out;
END
$$;

-- Chains each new row: position, time, actor (as given, plus the database user), hashes. Runs
-- as the owner, so that writers need no right on audit_head. The first row of a transaction
-- locks the head; the transaction's chain position then travels in a transaction-local setting
-- (`fra.audit_head`: txid:id:hash), and the head row is written once per statement, not per row
-- (a thousand updates of one row in one transaction would make each next read slower).
CREATE FUNCTION audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  carried text := current_setting('fra.audit_head', true);
  parts text[];
  last_id bigint;
  last_hash text;
BEGIN
  parts := string_to_array(coalesce(carried, ''), ':');
  IF array_length(parts, 1) = 3 AND parts[1] = txid_current()::text THEN
    last_id := parts[2]::bigint;
    last_hash := parts[3];
  ELSE
    SELECT h.last_id, h.last_hash INTO last_id, last_hash FROM audit_head h FOR UPDATE;
  END IF;
  NEW.id := last_id + 1;
  NEW.at := date_trunc('microseconds', clock_timestamp());
  NEW.actor := coalesce(NEW.actor, '') || ' (' || session_user || ')';
  NEW.object := coalesce(NEW.object, '');
  NEW.details := coalesce(NEW.details, '{}');
  NEW.prev_hash := last_hash;
  NEW.row_hash := encode(sha256(convert_to(
      audit_canonical(NEW.id, NEW.at, NEW.actor, NEW.action, NEW.object, NEW.details, NEW.prev_hash), 'UTF8')), 'hex');
  PERFORM set_config('fra.audit_head', txid_current() || ':' || NEW.id || ':' || NEW.row_hash, true);
  RETURN NEW;
END
$$;

-- Writes the transaction's chain position to the head, once per inserting statement.
CREATE FUNCTION audit_head_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  parts text[] := string_to_array(coalesce(current_setting('fra.audit_head', true), ''), ':');
BEGIN
  IF array_length(parts, 1) = 3 AND parts[1] = txid_current()::text THEN
    UPDATE audit_head SET last_id = parts[2]::bigint, last_hash = parts[3];
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION audit_refuse() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();
CREATE TRIGGER audit_head_update AFTER INSERT ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_head_update();
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();

-- The auditor's views: what was done, by which model, from which inputs. Pseudonyms only.
CREATE VIEW audit_events AS
  SELECT id, at, actor, action, object, details, prev_hash, row_hash FROM audit_log;
CREATE VIEW audit_scores AS
  SELECT id AS score_id, patient_key AS patient_pseudonym, model_name, model_version, model_sha256, as_of,
         probability, band, features, contributions, scored_at
    FROM score;
CREATE VIEW audit_risk_assessments AS
  SELECT patient_key AS patient_pseudonym, model_name, identifier, written_score_id, written_probability, written_band,
         written_at, pending_score_id IS NOT NULL AS write_pending
    FROM risk_assessment;
CREATE VIEW audit_resource_versions AS
  SELECT resource_type, resource_key AS resource_pseudonym, version_id, source_updated, stored_at FROM resource_version;
CREATE VIEW audit_dead_letters AS
  SELECT resource_type, resource_key AS resource_pseudonym, version_id, reason_code, json_pointer, seen_at
    FROM dead_letter;
CREATE VIEW audit_chain_head AS
  SELECT last_id, last_hash FROM audit_head;
CREATE VIEW audit_schema AS
  SELECT version, name, applied_at FROM schema_migrations;

-- Privileges: nothing for PUBLIC; the writer reads and writes the store and appends to the log;
-- the auditor reads the views and nothing else.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_canonical(bigint, timestamptz, text, text, text, jsonb, text), audit_chain(),
  audit_head_update(), audit_refuse() FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO fra_writer, fra_auditor;
GRANT SELECT, INSERT, UPDATE, DELETE ON resource_version, patient, observation_value, encounter, sync_cursor,
  dead_letter, scoring_queue, risk_assessment TO fra_writer;
-- A score, once stored, is never changed by the daemon.
GRANT SELECT, INSERT ON score TO fra_writer;
GRANT SELECT ON schema_migrations TO fra_writer;
GRANT SELECT, INSERT ON audit_log TO fra_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO fra_writer;
GRANT SELECT ON audit_events, audit_chain_head, audit_scores, audit_risk_assessments, audit_resource_versions, audit_dead_letters,
  audit_schema TO fra_auditor;
