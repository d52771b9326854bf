#!/usr/bin/python3
"""The audit log and the roles, on databases synced from the FHIR test server.

- Every sync writes a hash-chained, append-only audit log; `audit verify` finds an untouched
  chain whole, and names the row a superuser altered (one field) or deleted.
- The daemon's work runs as a login in the writer role (no superuser, no DDL); the auditor role
  reads the documented views and is refused the base tables, any write and the functions.

Run by tests/integration/run.sh or ctest, against the shared servers, in databases of its own.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import unittest

from support import (adapter, binary, database, fhir_all, fhir_post, model_dir, ok, pseudonym, pseudonym_key, psql,
                     vital_sign, work, write_config)


def as_user(url, user):
    """The same database, logged in as `user` (the sandbox trusts local logins)."""
    return url.replace("postgresql://fra@", f"postgresql://{user}@")


def synced(name):
    """A database of its own, migrated and synced from the test server."""
    url = database(name)
    cfg = write_config(f"{name}.toml", db=url)
    ok("migrate", "--config", cfg)
    ok("sync", "--once", "--config", cfg)
    return url, cfg


def verify(url):
    return subprocess.run([binary(), "audit", "verify"], capture_output=True, text=True,
                          env={**os.environ, "FRA_DATABASE_URL": url}, timeout=120)


class AuditLog(unittest.TestCase):
    def test_1_a_sync_leaves_a_whole_chain_of_what_it_did(self):
        url, _ = synced("chain")
        rows = psql(url, "SELECT action, count(*) FROM audit_log GROUP BY action ORDER BY action").stdout.split()
        counts = dict(r.split("|") for r in rows)
        scores = int(psql(url, "SELECT count(*) FROM score").stdout)
        self.assertEqual(int(counts["score"]), scores)
        self.assertEqual(counts["migrate"], "1")
        self.assertEqual(counts["model-load"], "1")
        self.assertGreater(int(counts["ingest"]), 3)
        self.assertGreaterEqual(int(counts["write-back"]), 1)
        self.assertEqual(int(counts.get("dead-letter", 0)), int(psql(url, "SELECT count(*) FROM dead_letter").stdout))
        # Each score's event says what the score row says.
        mismatched = psql(url, "SELECT count(*) FROM audit_log a JOIN score s ON s.id = (a.details->>'score_id')::bigint "
                               "WHERE a.action = 'score' AND (s.probability <> (a.details->>'probability')::float8 "
                               "OR s.band <> a.details->>'band' OR encode(sha256(convert_to(s.features::text, 'UTF8')), "
                               "'hex') <> a.details->>'features_sha256')").stdout
        self.assertEqual(int(mismatched), 0)
        actors = psql(url, "SELECT DISTINCT actor FROM audit_log ORDER BY actor").stdout.split("\n")
        self.assertIn("fhir-risk-adapter sync (fra)", actors)
        run = verify(url)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        total = int(psql(url, "SELECT count(*) FROM audit_log").stdout)
        self.assertRegex(run.stdout, rf"^audit log: {total} rows, every hash and link holds; head [0-9a-f]{{64}}\n$")
        # A second sync adds to the same chain, which still holds.
        self.assertEqual(adapter("sync", "--once", "--config", write_config("chain.toml", db=url)).returncode, 0)
        self.assertEqual(verify(url).returncode, 0)

    def test_2_the_log_refuses_changes_and_verify_names_a_tampered_row(self):
        url, _ = synced("tamper")
        for statement in ("UPDATE audit_log SET actor = 'x' WHERE id = 3", "DELETE FROM audit_log WHERE id = 3",
                          "TRUNCATE audit_log"):
            refused = psql(url, statement, check=False)
            self.assertNotEqual(refused.returncode, 0, statement)
            self.assertIn("append-only", refused.stderr)
        # A superuser can get past the triggers; the chain shows it.
        middle = int(psql(url, "SELECT count(*) / 2 FROM audit_log").stdout)
        psql(url, f"SET session_replication_role = replica; UPDATE audit_log SET details = details || "
                  f"'{{\"probability\": 0.01}}' WHERE id = {middle}")
        run = verify(url)
        self.assertEqual(run.returncode, 65, run.stdout + run.stderr)
        self.assertIn(f"row {middle}: its content does not match its hash (altered)", run.stdout)
        self.assertIn(f"audit log: {middle - 1} rows before it hold", run.stdout)

        url2, _ = synced("tamper_delete")
        victim = int(psql(url2, "SELECT count(*) / 3 FROM audit_log").stdout)
        psql(url2, f"SET session_replication_role = replica; DELETE FROM audit_log WHERE id = {victim}")
        run = verify(url2)
        self.assertEqual(run.returncode, 65, run.stdout + run.stderr)
        self.assertIn(f"row {victim + 1} follows row {victim - 1}: row {victim} is missing", run.stdout)
        # The last row deleted: only the head knows.
        url3, _ = synced("tamper_last")
        last = int(psql(url3, "SELECT max(id) FROM audit_log").stdout)
        psql(url3, f"SET session_replication_role = replica; DELETE FROM audit_log WHERE id = {last}")
        run = verify(url3)
        self.assertEqual(run.returncode, 65, run.stdout + run.stderr)
        self.assertIn(f"the chain ends at row {last - 1} but its head says {last}: row {last} is missing", run.stdout)

    def test_3_writer_and_auditor_roles(self):
        url, _ = synced("roles")
        psql(url, "DROP ROLE IF EXISTS fra_test_writer; DROP ROLE IF EXISTS fra_test_auditor; "
                  "CREATE ROLE fra_test_writer LOGIN IN ROLE fra_writer; "
                  "CREATE ROLE fra_test_auditor LOGIN IN ROLE fra_auditor")
        writer, auditor = as_user(url, "fra_test_writer"), as_user(url, "fra_test_auditor")
        # The adapter's work runs as the writer: a sync, and its events name that login.
        cfg = write_config("roles_writer.toml", db=writer)
        run = adapter("sync", "--once", "--config", cfg)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertEqual(psql(url, "SELECT count(*) > 0 FROM audit_log WHERE actor = "
                                   "'fhir-risk-adapter sync (fra_test_writer)'").stdout.strip(), "t")
        for statement in ("CREATE TABLE x (i int)", "ALTER TABLE score ADD COLUMN x int", "DROP TABLE score",
                          "UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "UPDATE audit_head SET last_id = 0",
                          "UPDATE score SET probability = 0", "DELETE FROM score",
                          "CREATE ROLE y"):
            refused = psql(writer, statement, check=False)
            self.assertNotEqual(refused.returncode, 0, statement)
        # The auditor reads the views...
        for view in ("audit_events", "audit_chain_head", "audit_scores", "audit_risk_assessments",
                     "audit_resource_versions", "audit_dead_letters", "audit_schema", "audit_score_inputs",
                     "audit_cohort", "audit_alerts"):
            ok = psql(auditor, f"SELECT count(*) FROM {view}", check=False)
            self.assertEqual(ok.returncode, 0, view + ok.stderr)
        self.assertGreater(int(psql(auditor, "SELECT count(*) FROM audit_scores").stdout), 0)
        run = verify(auditor)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        # ...and nothing else: base tables, writes, the adapter's functions.
        for statement in ("SELECT * FROM score LIMIT 1", "SELECT * FROM patient LIMIT 1", "SELECT * FROM condition_code LIMIT 1",
                          "SELECT * FROM alert LIMIT 1", "SELECT * FROM audit_log LIMIT 1",
                          "SELECT * FROM audit_head", "SELECT * FROM resource_version LIMIT 1", "SELECT * FROM input_version LIMIT 1",
                          "INSERT INTO audit_log (actor, action) VALUES ('x', 'y')", "DELETE FROM scoring_queue",
                          "UPDATE risk_assessment SET written_band = 'low'",
                          "SELECT audit_canonical(1, now(), 'a', 'b', 'c', '{}', 'd')", "SELECT audit_chain()",
                          "CREATE TABLE x (i int)"):
            refused = psql(auditor, statement, check=False)
            self.assertNotEqual(refused.returncode, 0, statement)
            self.assertRegex(refused.stderr, r"permission denied|must be owner", statement)

    def test_4_rescore_reproduces_every_score_and_names_a_swapped_model(self):
        url, cfg = synced("rescore")
        scores = int(psql(url, "SELECT count(*) FROM score").stdout)
        run = adapter("audit", "rescore", "--config", cfg)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertRegex(run.stdout, rf"^{scores} scores read, {scores} rescored with readmission-risk \S+ "
                                     rf"\(sha256 [0-9a-f]{{64}}\): 0 differ\n$")
        run = adapter("audit", "rescore", "--config", cfg, "--sample", "25")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("25 scores read, 25 rescored", run.stdout)
        # A stored probability changed behind the adapter's back.
        victim = psql(url, "SELECT min(id) FROM score").stdout.strip()
        psql(url, f"UPDATE score SET probability = probability / 2 WHERE id = {victim}")
        run = adapter("audit", "rescore", "--config", cfg)
        self.assertEqual(run.returncode, 65, run.stdout + run.stderr)
        self.assertRegex(run.stdout, rf"^score {victim}: stored [\d.e-]+, recomputed [\d.e-]+\n")
        self.assertIn(": 1 differ", run.stdout)
        # Another model file at model.path: the scores are not silently rescored with it.
        other = os.path.join(work(), "other-model")
        shutil.copytree(model_dir(), other)
        with open(os.path.join(other, "model.json"), "a") as f:
            f.write("\n")
        with open(os.path.join(other, "manifest.json")) as f:
            manifest = json.load(f)
        with open(os.path.join(other, "model.json"), "rb") as f:
            manifest["model_sha256"] = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(other, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        with open(cfg) as f:
            text = f.read().replace(json.dumps(model_dir()), json.dumps(other))
        swapped = os.path.join(work(), "rescore-swapped.toml")
        with open(swapped, "w") as f:
            f.write(text)
        run = adapter("audit", "rescore", "--config", swapped)
        self.assertEqual(run.returncode, 65, run.stdout + run.stderr)
        self.assertIn(f"{scores} scores read, 0 rescored", run.stdout)
        self.assertRegex(run.stdout, rf"{scores} scores were made by the model with sha256 [0-9a-f]{{64}}, not the one "
                                     rf"at model.path: not rescored")

    def test_5_retention_purges_old_inputs_keeps_scores_and_changes_no_score(self):
        url, cfg = synced("retention")
        with open(cfg, "a") as f:
            f.write("[retention]\nraw_inputs_days = 400\n")
        counts = lambda: [int(psql(url, f"SELECT count(*) FROM {t}").stdout)
                          for t in ("observation_value", "encounter", "score")]
        values, encounters, scores = counts()
        old = int(psql(url, "SELECT count(*) FROM observation_value WHERE effective < now() - interval '400 days'").stdout)
        self.assertGreater(old, 0, "generated data should reach back further than 400 days")
        run = adapter("purge", "--config", cfg)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertRegex(run.stdout, rf"^purged inputs older than \S+: {old} observation values, \d+ encounters, "
                                     rf"\d+ dead letters\n$")
        after = counts()
        self.assertEqual(after[0], values - old)
        self.assertLess(after[1], encounters)
        self.assertEqual(after[2], scores, "scores and their feature vectors stay")
        self.assertEqual(psql(url, "SELECT count(*) FROM audit_log WHERE action = 'purge'").stdout.strip(), "1")
        self.assertEqual(verify(url).returncode, 0)
        # Windows are shorter than the retention: rescoring everyone changes nothing a clinician sees.
        psql(url, "INSERT INTO scoring_queue (patient_key) SELECT patient_key FROM patient")
        run = adapter("sync", "--once", "--config", cfg)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertRegex(run.stdout, r"scored [1-9]\d* patients")
        self.assertIn("RiskAssessments: 0 created, 0 updated, 0 failed", run.stdout)
        # Everything fetched again (a Bulk Data export): the purged versions are not stored again.
        run = adapter("backfill", "--export", "--config", cfg)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertEqual(counts()[:2], after[:2])
        self.assertEqual(psql(url, "SELECT object FROM audit_log WHERE action = 'backfill'").stdout.strip(),
                         "bulk data export")
        # A retention shorter than a feature's window is refused, naming the feature.
        short = cfg.replace(".toml", "-short.toml")
        with open(cfg) as f, open(short, "w") as g:
            g.write(f.read().replace("raw_inputs_days = 400", "raw_inputs_days = 300"))
        run = adapter("purge", "--config", short)
        self.assertEqual(run.returncode, 78, run.stdout + run.stderr)
        self.assertIn("retention.raw_inputs_days (300) must be longer than the window of feature", run.stderr)

    def test_6_a_separate_sealing_key(self):
        url = database("sealkey")
        seal = os.path.join(work(), "seal.key")
        with open(seal, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(seal, 0o600)
        cfg = write_config("sealkey.toml", db=url)
        with open(cfg) as f:
            text = f.read().replace("[pseudonym]\n", f"[pseudonym]\nseal_key_file = {json.dumps(seal)}\n")
        with open(cfg, "w") as f:
            f.write(text)
        for args in (("migrate", "--config", cfg), ("sync", "--once", "--config", cfg)):
            run = adapter(*args)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("0 failed", run.stdout)  # every sealed reference opened for the write-back
        # The same references do not open under the pseudonym key alone.
        other = write_config("sealkey_without.toml", db=url)
        psql(url, "UPDATE risk_assessment SET written_probability = NULL, pending_score_id = written_score_id")
        run = adapter("sync", "--once", "--config", other)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("does not open under this key", run.stderr)
        os.chmod(seal, 0o640)
        run = adapter("sync", "--once", "--config", cfg)
        self.assertEqual(run.returncode, 78, run.stderr)
        self.assertIn("pseudonym.seal_key_file:", run.stderr)
        self.assertIn("readable by group or others", run.stderr)
        os.chmod(seal, 0o600)
        with open(pseudonym_key(), "rb") as f, open(seal, "wb") as g:
            g.write(f.read())
        run = adapter("sync", "--once", "--config", cfg)
        self.assertEqual(run.returncode, 78, run.stderr)
        self.assertIn("the same key as pseudonym.key_file", run.stderr)

    def test_7_another_pseudonym_key_is_refused_before_anything_is_stored(self):
        url, _ = synced("otherkey")
        other = os.path.join(work(), "other.key")
        with open(other, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(other, 0o600)
        cfg = write_config("otherkey_wrong.toml", db=url, key=other)
        before = psql(url, "SELECT count(*) FROM patient").stdout
        for args in (("sync", "--once", "--config", cfg), ("backfill", "--export", "--config", cfg)):
            run = adapter(*args)
            self.assertEqual(run.returncode, 78, run.stdout + run.stderr)
            self.assertIn("this database's pseudonyms were made with another key", run.stderr)
        self.assertEqual(psql(url, "SELECT count(*) FROM patient").stdout, before)
        self.assertEqual(psql(url, "SELECT count(*) FROM audit_log WHERE action = 'key-fingerprint'").stdout.strip(), "1")

    def test_8_rekey_moves_every_pseudonym_in_one_transaction(self):
        # A dead letter of its own to carry through: a heart rate in kilograms.
        fhir_post(vital_sign(fhir_all("Patient?_count=1")[0]["id"], "8867-4", 80, "kg", when="2026-11-21T08:00:00Z"))
        url, cfg = synced("rekey")
        tables = ("resource_version", "patient", "observation_value", "encounter", "condition_code", "dead_letter",
                  "score", "risk_assessment")
        before = {t: psql(url, f"SELECT count(*) FROM {t}").stdout for t in tables}
        identifiers = psql(url, "SELECT identifier FROM risk_assessment ORDER BY identifier").stdout
        old_keys = set(psql(url, "SELECT patient_key FROM patient").stdout.split())
        self.assertGreater(int(before["dead_letter"]), 0)
        new = os.path.join(work(), "rekey-new.key")
        with open(new, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(new, 0o600)
        run = adapter("rekey", "--config", cfg, "--new-key-file", new)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        patients = fhir_all("Patient?_count=1000")
        self.assertRegex(run.stdout, rf"re-derived \d+ pseudonyms \({len(patients)} patients, \d+ dead letters\)")
        # Every patient's pseudonym is the new key's, and no old one is left anywhere.
        want = {pseudonym("Patient", p["id"], key_file=new) for p in patients}
        self.assertEqual(set(psql(url, "SELECT patient_key FROM patient").stdout.split()), want)
        for t in ("patient", "observation_value", "encounter", "condition_code", "scoring_queue", "score",
                  "risk_assessment"):
            left = set(psql(url, f"SELECT DISTINCT patient_key FROM {t}").stdout.split()) & old_keys
            self.assertEqual(left, set(), t)
        after = {t: psql(url, f"SELECT count(*) FROM {t}").stdout for t in tables}
        self.assertEqual({t: v for t, v in after.items() if t != "resource_version"},
                         {t: v for t, v in before.items() if t != "resource_version"})
        self.assertEqual(psql(url, "SELECT identifier FROM risk_assessment ORDER BY identifier").stdout, identifiers)
        self.assertEqual(psql(url, "SELECT count(*) FROM audit_log WHERE action = 'rekey'").stdout.strip(), "1")
        self.assertEqual(verify(url).returncode, 0)
        # The old key is refused from now on; with the new one, everything fetched again is known.
        run = adapter("sync", "--once", "--config", cfg)
        self.assertEqual(run.returncode, 78, run.stdout + run.stderr)
        new_cfg = write_config("rekey_new.toml", db=url, key=new)
        run = adapter("backfill", "--export", "--config", new_cfg)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertEqual(set(re.findall(r"stored +(\d+)", run.stdout)), {"0"}, run.stdout)
        self.assertEqual(psql(url, "SELECT count(*) FROM patient").stdout, before["patient"])
        # A change reaches the same RiskAssessment: the identifiers followed.
        fhir_post({"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
                   "subject": {"reference": f"Patient/{patients[3]['id']}"}, "effectiveDateTime": "2026-11-22T08:00:00Z",
                   "valueQuantity": {"value": 74, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}})
        run = adapter("sync", "--once", "--config", new_cfg)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("RiskAssessments: 0 created, 1 updated, 0 failed", run.stdout)
        self.assertEqual(psql(url, "SELECT count(*) FROM risk_assessment").stdout, before["risk_assessment"])

    def test_9_each_score_keeps_the_versions_that_fed_it(self):
        url, cfg = synced("lineage")
        patient = fhir_all("Patient?_count=10")[5]["id"]
        key = pseudonym("Patient", patient)
        first = psql(url, f"SELECT max(id) FROM score WHERE patient_key = '{key}'").stdout.strip()
        inputs = lambda score: set(psql(url, f"SELECT resource_type || ' ' || resource_pseudonym || ' ' || version_id "
                                             f"FROM audit_score_inputs WHERE score_id = {score}").stdout.splitlines())
        before = inputs(first)
        stored = set(psql(url, "SELECT resource_type || ' ' || resource_key || ' ' || version_id FROM resource_version "
                               f"WHERE (resource_type = 'Patient' AND resource_key = '{key}') "
                               f"OR resource_key IN (SELECT resource_key FROM observation_value WHERE patient_key = '{key}') "
                               f"OR resource_key IN (SELECT resource_key FROM encounter WHERE patient_key = '{key}')")
                     .stdout.splitlines())
        self.assertGreater(len(stored), 5)
        self.assertLessEqual(stored, before, "every stored input of the patient is in the score's lineage")
        self.assertIn(f"Patient {key} ", " ".join(sorted(before)) + " ")
        # A new observation: the next score has it among its inputs, the first keeps its own.
        obs = fhir_post({"resourceType": "Observation", "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                         "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2026-11-23T08:00:00Z",
                         "valueQuantity": {"value": 131, "unit": "/min", "system": "http://unitsofmeasure.org",
                                           "code": "/min"}})
        run = adapter("sync", "--once", "--config", cfg)
        self.assertEqual(run.returncode, 0, run.stderr)
        second = psql(url, f"SELECT max(id) FROM score WHERE patient_key = '{key}'").stdout.strip()
        self.assertNotEqual(second, first)
        obs_key = pseudonym("Observation", obs["id"])
        added = inputs(second) - before
        self.assertEqual(len(added), 1, added)
        self.assertTrue(next(iter(added)).startswith(f"Observation {obs_key} "))
        self.assertEqual(inputs(first), before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
