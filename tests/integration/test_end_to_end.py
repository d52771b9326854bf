#!/usr/bin/python3
"""End to end: a real PostgreSQL and the real FHIR test server (200 generated patients).

Run by tests/integration/run.sh or ctest (the environment: support/env.py), in a database and
with a pseudonym key of its own. Tests run in name order: they follow one deployment's life.
"""
import json
import os
import re
import subprocess
import tomllib
import unittest
import urllib.request

import numpy as np
import xgboost as xgb

from support import (adapter, config, database, fhir_all, fhir_base, fhir_post, model_dir, occurring,
                     pseudonym, risk_assessments, sql, store_url, work, write_config, write_key)


class EndToEnd(unittest.TestCase):
    first = second = None

    @classmethod
    def setUpClass(cls):
        cls.migrate1 = adapter("migrate", "--config", config())
        cls.migrate2 = adapter("migrate", "--config", config())
        cls.first = adapter("sync", "--once", "--config", config())
        cls.after_first = risk_assessments()
        cls.scores_after_first = sql("SELECT count(*) FROM score")[0][0]
        cls.second = adapter("sync", "--once", "--config", config())
        cls.after_second = risk_assessments()

    def test_01_migrate_applies_once(self):
        self.assertEqual(self.migrate1.returncode, 0, self.migrate1.stderr)
        self.assertIn("applied 001_feature_store", self.migrate1.stdout)
        self.assertIn("applied 002_dead_letter_once", self.migrate1.stdout)
        self.assertIn("applied 003_declared_features", self.migrate1.stdout)
        self.assertIn("applied 004_audit", self.migrate1.stdout)
        self.assertIn("applied 007_score_inputs", self.migrate1.stdout)
        self.assertIn("applied 009_cohort_refresh", self.migrate1.stdout)
        self.assertEqual(self.migrate2.returncode, 0, self.migrate2.stderr)
        self.assertIn("schema up to date at version 11", self.migrate2.stdout)
        self.assertEqual(sql("SELECT count(*) FROM schema_migrations"), [["11"]])

    def test_02_first_sync_scores_every_patient(self):
        self.assertEqual(self.first.returncode, 0, self.first.stderr)
        patients = fhir_all("Patient?_count=500")
        self.assertGreaterEqual(len(patients), 200)
        self.assertRegex(self.first.stdout, rf"scored {len(patients)} patients")
        self.assertRegex(self.first.stdout, rf"RiskAssessments: {len(patients)} created, 0 updated, 0 failed in ")

    def test_03_one_risk_assessment_per_scored_patient(self):
        ras = self.after_first
        scored = int(sql("SELECT count(DISTINCT patient_key) FROM score")[0][0])
        self.assertEqual(len(ras), scored)
        subjects = [ra["subject"]["reference"] for ra in ras.values()]
        self.assertEqual(len(set(subjects)), len(subjects), "two RiskAssessments for one patient")
        patient_ids = {p["id"] for p in fhir_all("Patient?_count=500")}
        self.assertEqual({s.split("/")[1] for s in subjects}, patient_ids)
        for ra in ras.values():
            self.assertEqual(ra["status"], "final")
            band = ra["prediction"][0]["qualitativeRisk"]["coding"][0]
            self.assertEqual(band["system"], "http://terminology.hl7.org/CodeSystem/risk-probability")
            self.assertIn(band["code"], {"low", "moderate", "high"})

    def test_04_probabilities_equal_xgboost(self):
        with open(os.path.join(model_dir(), "manifest.json")) as f:
            names = [feat["name"] for feat in json.load(f)["features"]]
        rows = sql("SELECT ra.identifier, s.features::text, s.probability FROM risk_assessment ra "
                   "JOIN score s ON s.id = ra.written_score_id")
        self.assertEqual(len(rows), len(self.after_first))
        X = np.array([[np.nan if json.loads(feats)[n] is None else json.loads(feats)[n] for n in names]
                      for _, feats, _ in rows], dtype=np.float32)
        self.assertGreater(np.isnan(X).sum(), 0, "expected some missing features in generated data")
        expected = xgb.Booster(model_file=os.path.join(model_dir(), "model.json")).inplace_predict(X)
        self.assertGreater(len(set(np.round(expected, 3))), 20, "probabilities should vary across patients")
        for (identifier, _, stored), want in zip(rows, expected):
            on_server = self.after_first[identifier]["prediction"][0]["probabilityDecimal"]
            self.assertAlmostEqual(float(stored), float(want), delta=1e-6)
            self.assertAlmostEqual(on_server, float(want), delta=1e-6)

    def test_04b_notes_name_the_main_factors_as_xgboost_ranks_them(self):
        with open(os.path.join(model_dir(), "features.toml"), "rb") as f:
            labels = {d["name"]: ("Sex" if d.get("attribute") == "sex" else d.get("label", d["name"]))
                      for d in tomllib.load(f)["feature"]}
        with open(os.path.join(model_dir(), "manifest.json")) as f:
            names = [feat["name"] for feat in json.load(f)["features"]]
        rows = sql("SELECT ra.identifier, s.features::text FROM risk_assessment ra "
                   "JOIN score s ON s.id = ra.written_score_id")
        X = np.array([[np.nan if json.loads(feats)[n] is None else json.loads(feats)[n] for n in names]
                      for _, feats in rows], dtype=np.float32)
        booster = xgb.Booster(model_file=os.path.join(model_dir(), "model.json"))
        contribs = booster.predict(xgb.DMatrix(X, missing=np.nan, feature_names=names), pred_contribs=True)
        for (identifier, _), c in zip(rows, contribs):
            note = self.after_first[identifier]["note"][0]["text"]
            self.assertEqual(note.count(" the risk)"), 3, note)
            top = names[int(np.argmax(np.abs(c[:-1])))]
            effect = "raises" if c[names.index(top)] > 0 else "lowers"
            self.assertRegex(note, rf"Main factors: {labels[top]} [^;]*\({effect} the risk\);", note)

    def test_05_cursor_advanced_to_newest_resource(self):
        cursors = dict(sql("SELECT resource_type, to_char(last_updated AT TIME ZONE 'UTC', "
                           "'YYYY-MM-DD\"T\"HH24:MI:SS.MS') FROM sync_cursor"))
        for rtype in ("Patient", "Encounter", "Observation"):
            newest = max(r["meta"]["lastUpdated"] for r in fhir_all(f"{rtype}?_count=1000"))
            self.assertEqual(cursors[rtype], newest[:23], rtype)

    def test_06_second_sync_writes_nothing(self):
        self.assertEqual(self.second.returncode, 0, self.second.stderr)
        self.assertIn("scored 0 patients", self.second.stdout)
        self.assertIn("RiskAssessments: 0 created, 0 updated, 0 failed", self.second.stdout)
        self.assertEqual(sql("SELECT count(*) FROM score")[0][0], self.scores_after_first)
        self.assertEqual({k: v["meta"]["versionId"] for k, v in self.after_second.items()},
                         {k: v["meta"]["versionId"] for k, v in self.after_first.items()})

    def test_07_no_plaintext_identity_in_pg_dump(self):
        dump = subprocess.run(["pg_dump", "--data-only", store_url()], check=True, capture_output=True, text=True).stdout
        dump += subprocess.run(["pg_dump", "--schema-only", store_url()], check=True, capture_output=True, text=True).stdout
        self.assertIn("COPY public.score", dump)
        patients = fhir_all("Patient?_count=500")
        needles = set()
        for p in patients:
            needles.add(p["id"])
            needles.update(i["value"] for i in p.get("identifier", []))
            for n in p.get("name", []):
                needles.add(n["family"])
                needles.update(n.get("given", []))
            needles.add(p["birthDate"])
            needles.update(t["value"] for t in p.get("telecom", []))
            needles.update(a["line"][0] for a in p.get("address", []) if a.get("line"))
        self.assertGreater(len(needles), 5 * len(patients))
        found = occurring(needles, dump)
        self.assertEqual(found, [], "plaintext identity in the database")

    def test_08_changed_observation_rescores_and_updates_in_place(self):
        before = self.after_second
        patient = fhir_all("Patient?_count=1")[0]
        EndToEnd.spo2 = fhir_post({"resourceType": "Observation", "status": "final",
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                             "code": "vital-signs"}]}],
                   "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
                   "subject": {"reference": f"Patient/{patient['id']}"},
                   "effectiveDateTime": "2026-11-20T08:00:00Z",
                   "valueQuantity": {"value": 78, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}})
        run = adapter("sync", "--once", "--config", config())
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("scored 1 patients", run.stdout)
        self.assertIn("RiskAssessments: 0 created, 1 updated, 0 failed", run.stdout)
        after = risk_assessments()
        self.assertEqual(set(after), set(before))
        changed = [k for k in after if after[k]["meta"]["versionId"] != before[k]["meta"]["versionId"]]
        self.assertEqual(len(changed), 1)
        self.assertEqual(after[changed[0]]["subject"]["reference"], f"Patient/{patient['id']}")

    def test_09_unmappable_resource_is_dead_lettered_and_sync_goes_on(self):
        patient = fhir_all("Patient?_count=1")[0]
        # Unmappable resources other modules left on the shared server are dead letters already.
        before = int(sql("SELECT count(*) FROM dead_letter")[0][0])
        posted = fhir_post({"resourceType": "Observation", "status": "final",
                            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                            "subject": {"reference": f"Patient/{patient['id']}"},
                            "effectiveDateTime": "2026-11-21T08:00:00Z",
                            "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "kg"}})
        run = adapter("sync", "--once", "--config", config())
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertRegex(run.stdout, r"Observation .* dead-lettered +1 ")
        rows = sql("SELECT resource_type, reason_code, json_pointer FROM dead_letter "
                   f"WHERE resource_key = '{pseudonym('Observation', posted['id'])}'")
        self.assertEqual(rows, [["Observation", "unknown-unit", "/valueQuantity/code"]])
        self.assertEqual(sql("SELECT count(*) FROM dead_letter"), [[str(before + 1)]])
        again = adapter("sync", "--once", "--config", config())
        self.assertEqual(sql("SELECT count(*) FROM dead_letter"), [[str(before + 1)]], again.stdout)

    def test_09b_what_no_feature_reads_is_ignored_not_dead_lettered(self):
        # As Synthea writes them: a cause of death as a coded value, a survey answer as text. No
        # feature reads either code: counted as ignored, never a dead letter.
        patient = fhir_all("Patient?_count=1")[0]
        before = int(sql("SELECT count(*) FROM dead_letter")[0][0])
        for code, value in (("69453-9", {"valueCodeableConcept": {"coding": [
                                {"system": "http://snomed.info/sct", "code": "266919005"}]}}),
                            ("44250-9", {"valueString": "Not at all"})):
            fhir_post({"resourceType": "Observation", "status": "final",
                       "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                       "subject": {"reference": f"Patient/{patient['id']}"},
                       "effectiveDateTime": "2026-11-21T08:00:00+00:00", **value})
        run = adapter("sync", "--once", "--config", config())
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertRegex(run.stdout, r"Observation .* dead-lettered +0 +ignored +2 ")
        self.assertIn("ignored 2 not read by any feature", run.stdout)
        self.assertEqual(sql("SELECT count(*) FROM dead_letter"), [[str(before)]])

    def test_10_deleted_observation_leaves_the_store_and_rescores(self):
        values = int(sql("SELECT count(*) FROM observation_value")[0][0])
        before = risk_assessments()
        req = urllib.request.Request(f"{fhir_base()}/Observation/{EndToEnd.spo2['id']}", method="DELETE")
        urllib.request.urlopen(req).read()
        run = adapter("sync", "--once", "--config", config())
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertRegex(run.stdout, r"Observation .* deleted +1 ")
        self.assertIn("scored 1 patients", run.stdout)
        self.assertIn("RiskAssessments: 0 created, 1 updated", run.stdout)
        self.assertEqual(int(sql("SELECT count(*) FROM observation_value")[0][0]), values - 1)
        self.assertEqual(sql("SELECT count(*) FROM resource_version WHERE version_id = 'deleted'"), [["1"]])
        after = risk_assessments()
        changed = [k for k in after if after[k]["meta"]["versionId"] != before[k]["meta"]["versionId"]]
        self.assertEqual(len(changed), 1)
        again = adapter("sync", "--once", "--config", config())
        self.assertRegex(again.stdout, r"Observation .* deleted +0 ")


class BadConfiguration(unittest.TestCase):
    """Bad configuration exits non-zero with one line naming the problem, never a stack trace."""

    def one_line_error(self, run, code, needle):
        self.assertEqual(run.returncode, code, run.stdout + run.stderr)
        # Log lines (retries, say) may come first; the problem itself is one line.
        lines = [line for line in run.stderr.strip().splitlines()
                 if not re.match(r"^\d{4}-\d\d-\d\dT\S+ (trace|debug|info|warning) ", line)]
        self.assertEqual(len(lines), 1, run.stderr)
        self.assertIn(needle, lines[0])
        self.assertNotIn("terminate called", run.stderr)

    def test_missing_key(self):
        cfg = write_config("missing.toml", skip={"database.url"})
        self.one_line_error(adapter("sync", "--once", "--config", cfg), 78,
                            "database.url: required key is missing")

    def test_model_feature_without_definition(self):
        # The shipped definitions less heart_rate: the model needs it, so the adapter stops.
        with open(os.path.join(model_dir(), "features.toml")) as f:
            # Value sets are named relative to the file: point them at the package's.
            tables = f.read().replace('value_set = "../', f'value_set = "{model_dir()}/../').split("[[feature]]")
        kept = [t for t in tables[1:] if 'name = "heart_rate"' not in t]
        self.assertEqual(len(kept), len(tables) - 2)
        path = os.path.join(work(), "features-less.toml")
        with open(path, "w") as f:
            f.write("".join("[[feature]]" + t for t in kept))
        cfg = write_config("unbound.toml", features=path)
        self.one_line_error(adapter("sync", "--once", "--config", cfg), 78,
                            "the model needs feature 'heart_rate', which has no definition")

    def test_feature_definition_mistake_names_file_line_and_feature(self):
        path = os.path.join(work(), "features-bad.toml")
        with open(os.path.join(model_dir(), "features.toml")) as f:
            text = f.read().replace('aggregation = "last"', 'aggregation = "latest"', 1).replace(
                'value_set = "../', f'value_set = "{model_dir()}/../')
        with open(path, "w") as f:
            f.write(text)
        cfg = write_config("badfeature.toml", features=path)
        run = adapter("config", "check", cfg)
        self.assertEqual(run.returncode, 78, run.stderr)
        line = next(i for i, l in enumerate(text.splitlines(), 1) if 'aggregation = "latest"' in l)
        self.assertIn(f"{path}:{line}:15: error: feature 'heart_rate'.aggregation: expected one of last, min, max, "
                      'mean, count, delta, slope, last_code, got "latest"', run.stderr)

    def test_short_key(self):
        cfg = write_config("short.toml", key=write_key("short.key", 16))
        self.one_line_error(adapter("sync", "--once", "--config", cfg), 78,
                            "short.key: key is 16 bytes; at least 32 are required")

    def test_group_readable_key(self):
        cfg = write_config("open.toml", key=write_key("open.key", 32, 0o644))
        self.one_line_error(adapter("sync", "--once", "--config", cfg), 78, "readable by group or others")

    def test_unreachable_fhir_server(self):
        # A database of its own, migrated, so that only the FHIR server is missing.
        cfg = write_config("nofhir.toml", fhir="http://127.0.0.1:9/fhir/R4", db=database("nofhir"))
        self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        run = adapter("sync", "--once", "--config", cfg, env={"FRA_FHIR_MAX_ATTEMPTS": "2"})
        self.one_line_error(run, 69, "FHIR server http://127.0.0.1:9/fhir/R4: GET http://127.0.0.1:9/fhir/R4/Patient")
        self.assertIn("gave up after 2 attempts", run.stderr)

    def test_unreachable_database(self):
        cfg = write_config("nodb.toml", db="postgresql://fra@127.0.0.1:9/fra")
        self.one_line_error(adapter("sync", "--once", "--config", cfg), 69, "cannot connect to the database")

    def test_type_error_names_file_line_and_key(self):
        path = os.path.join(work(), "typo.toml")
        with open(config()) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("page_size = 100", 'page_size = "ten"'))
        self.one_line_error(adapter("sync", "--once", "--config", path), 78,
                            f'{path}:3:13: error: fhir.page_size: expected integer 1..1000, got "ten"')

    def test_help_on_every_subcommand(self):
        for args in (["--help"], ["migrate", "--help"], ["sync", "--help"], ["score-csv", "--help"],
                     ["config", "check", "--help"], ["model", "inspect", "--help"]):
            run = adapter(*args)
            self.assertEqual(run.returncode, 0, args)
            self.assertIn("Usage", run.stdout, args)


if __name__ == "__main__":
    unittest.main(verbosity=2)
