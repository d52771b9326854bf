#!/usr/bin/python3
"""Declared features and RiskAssessments, checked against independent implementations.

- Every RiskAssessment on the server is valid against the FHIR R4 JSON schema, and each element
  says what docs/risk-assessment.md promises.
- The features are recomputed from the FHIR resources on the server by independent_features.py
  (a second implementation of docs/features.md); XGBoost's own prediction on them is the
  probability on the server, and its pred_contribs are the factors shown.
- export-training gives the same features and labels as the independent code, and adding data
  dated after an index event changes none of that event's features (no leakage).
- Re-running changes nothing.

Run by tests/integration/run.sh or ctest (the environment: support/env.py): syncs the shared
FHIR server into a database of its own, with a pseudonym key of its own.
"""
import csv
import hashlib
import json
import os
import sys
import tomllib
import unittest
import urllib.request

import numpy as np
import xgboost as xgb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fhir_schema import load_validator  # noqa: E402
from independent_features import Features, PatientData, format_instant, parse_instant  # noqa: E402
from support import config, fhir_all, fhir_base, model_dir, ok, pseudonym, risk_assessments, sql, work  # noqa: E402

FACTOR_URL = "urn:fhir-risk-adapter:extension:risk-factor"
DAY = 86400 * 10**6


def fhir_batch(resources):
    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [{"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]}
    req = urllib.request.Request(fhir_base(), data=json.dumps(bundle).encode(), method="POST",
                                 headers={"Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(req) as r:
        statuses = [e["response"]["status"] for e in json.load(r)["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses


with open(os.path.join(model_dir(), "manifest.json")) as f:
    MANIFEST = json.load(f)
NAMES = [feature["name"] for feature in MANIFEST["features"]]
FEATURES = Features.load(os.path.join(model_dir(), "features.toml"))
with open(os.path.join(model_dir(), "features.toml"), "rb") as f:
    DEFINITIONS = {d["name"]: d for d in tomllib.load(f)["feature"]}
BOOSTER = xgb.Booster(model_file=os.path.join(model_dir(), MANIFEST["model_file"]))


def server_data():
    """{Patient id: PatientData} of everything on the server now (its Conditions when a feature
    reads them, as the adapter fetches them only then)."""
    reads_conditions = any(d["source"] == "condition" for d in DEFINITIONS.values())
    data, _ = PatientData.from_resources(fhir_all("Patient?_count=1000"), fhir_all("Observation?_count=1000"),
                                         fhir_all("Encounter?_count=1000"), FEATURES,
                                         fhir_all("Condition?_count=1000") if reads_conditions else ())
    return data


def factors_of(ra):
    """The risk-factor extensions of a RiskAssessment, each as {part: value}, in order."""
    return [{part["url"]: next(v for k, v in part.items() if k.startswith("value")) for part in ext["extension"]}
            for ext in ra["prediction"][0].get("extension", []) if ext["url"] == FACTOR_URL]


def near(a, b):
    """Equal to the 6 significant digits the extension gives a contribution."""
    return abs(a - b) <= 1e-5 * max(1.0, abs(b))


def band_of(p):
    return next(b for b in MANIFEST["bands"] if p < b["below"])


def export(name):
    """Rows of export-training as {(patient, as_of): (features, label)}, and the header."""
    path = os.path.join(work(), name)
    run = ok("export-training", "--config", config(), "--out", path)
    assert not os.path.exists(path + ".partial")
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = {(r[0], r[1]): ([float(v) if v else np.nan for v in r[2:-1]], r[-1]) for r in reader}
    return header, rows, run.stdout


def close(a, b):
    """Equal as the adapter's float32 feature values: NaN to NaN, else within float32 rounding."""
    a, b = np.float32(a), np.float32(b)
    return (np.isnan(a) and np.isnan(b)) or bool(np.isclose(a, b, rtol=2e-6, atol=1e-5))


class Features_(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ok("migrate", "--config", config())
        cls.sync = ok("sync", "--once", "--config", config())
        cls.ras = risk_assessments()
        cls.data = server_data()
        cls.rows = {r[0]: r for r in sql(
            "SELECT ra.identifier, ra.patient_key, s.features::text, s.probability, s.band, s.model_sha256, "
            "to_char(s.as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), s.contributions::text "
            "FROM risk_assessment ra JOIN score s ON s.id = ra.written_score_id")}

    def test_01_every_risk_assessment_is_valid_fhir_r4(self):
        validate = load_validator()
        self.assertGreaterEqual(len(self.ras), 200)
        problems = {k: validate(ra) for k, ra in self.ras.items()}
        self.assertEqual({k: p for k, p in problems.items() if p}, {})
        # The validator does refuse a broken one, so the check above could fail.
        broken = dict(next(iter(self.ras.values())), status="bogus")
        self.assertTrue(validate(broken))

    def test_02_each_element(self):
        with open(os.path.join(model_dir(), MANIFEST["model_file"]), "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(set(self.ras), set(self.rows))
        patients = {p["id"] for p in fhir_all("Patient?_count=1000")}
        subjects = set()
        for identifier, ra in self.ras.items():
            _, key, features, probability, band, model_sha, as_of, contributions = self.rows[identifier]
            ref = ra["subject"]["reference"]
            self.assertRegex(ref, r"^Patient/[^/]+$")
            subjects.add(ref)
            self.assertIn(ref[8:], patients)
            self.assertEqual(key, pseudonym("Patient", ref[8:]))
            # The identifier is derived: neither the store's key nor the FHIR id.
            self.assertRegex(identifier, r"^[0-9a-f]{64}$")
            self.assertNotEqual(identifier, key)
            self.assertNotIn(ref[8:], identifier)
            self.assertEqual(ra["status"], "final")
            self.assertEqual(ra["occurrenceDateTime"], as_of)
            method = ra["method"]["coding"][0]
            self.assertEqual((method["system"], method["code"], method["version"]),
                             ("urn:fhir-risk-adapter:model", MANIFEST["name"], MANIFEST["version"]))
            self.assertIn(sha, ra["method"]["text"])
            self.assertEqual(model_sha, sha)
            self.assertEqual(len(ra["prediction"]), 1)
            prediction = ra["prediction"][0]
            self.assertEqual(prediction["outcome"]["coding"][0],
                             {k: MANIFEST["outcome"][k] for k in ("system", "code", "display")})
            p = prediction["probabilityDecimal"]
            self.assertAlmostEqual(p, float(probability), delta=1e-8)
            risk = prediction["qualitativeRisk"]["coding"][0]
            self.assertEqual(risk["system"], "http://terminology.hl7.org/CodeSystem/risk-probability")
            self.assertEqual((risk["code"], risk["display"]), (band_of(p)["code"], band_of(p)["display"]))
            self.assertEqual(band, band_of(p)["code"])
            factors = factors_of(ra)
            self.assertEqual([f["rank"] for f in factors], [1, 2, 3])
            stored = json.loads(contributions)
            self.assertEqual([f["feature"] for f in factors], [c["feature"] for c in stored])
            values = json.loads(features)
            note = ra["note"][0]["text"]
            self.assertTrue(note.startswith(f"{MANIFEST['outcome']['display']} risk: {100 * p:.1f}% "
                                            f"({band_of(p)['display']}), {MANIFEST['name']} {MANIFEST['version']}."),
                            note)
            for f, s in zip(factors, stored):
                self.assertTrue(near(f["contribution"], s["contribution"]), (f, s))
                self.assertEqual(f["effect"], "raises" if f["contribution"] > 0 else "lowers")
                definition = DEFINITIONS[f["feature"]]
                self.assertEqual(f["label"], definition["label"])
                if values[f["feature"]] is None:
                    self.assertNotIn("value", f)
                elif definition.get("attribute") == "sex":
                    self.assertEqual(f["value"], definition["equals"] if values[f["feature"]] else
                                     f"not {definition['equals']}")
                else:
                    self.assertAlmostEqual(f["value"]["value"], values[f["feature"]], delta=1e-3 *
                                           max(1, abs(values[f["feature"]])))
                    self.assertEqual(f["value"]["code"], definition["unit"])
                self.assertIn(f"({f['effect']} the risk)", note)
        self.assertEqual(len(subjects), len(self.ras), "one RiskAssessment per patient and model")

    def test_03_features_recomputed_independently_score_as_xgboost_scores_them(self):
        X, stored, on_server, ids = [], [], [], []
        for identifier, ra in self.ras.items():
            pid = ra["subject"]["reference"][8:]
            as_of = parse_instant(ra["occurrenceDateTime"])
            X.append(FEATURES.vector(self.data[pid], as_of, NAMES))
            values = json.loads(self.rows[identifier][2])
            stored.append([np.nan if values[n] is None else values[n] for n in NAMES])
            on_server.append(ra["prediction"][0]["probabilityDecimal"])
            ids.append(identifier)
        X = np.array(X, dtype=np.float32)
        stored = np.array(stored, dtype=np.float32)
        self.assertGreater(np.isnan(X).sum(), 0, "generated data should leave some features missing")
        self.assertGreater(len({round(x, 3) for x in X[:, NAMES.index("heart_rate")] if not np.isnan(x)}), 40)
        differ = [(ids[i], NAMES[j], float(X[i, j]), float(stored[i, j]))
                  for i in range(len(ids)) for j in range(len(NAMES)) if not close(X[i, j], stored[i, j])]
        self.assertEqual(differ[:10], [], f"{len(differ)} feature values differ from the independent computation")
        expected = BOOSTER.inplace_predict(X)
        self.assertGreater(len(set(np.round(expected, 3))), 50, "probabilities should vary across patients")
        np.testing.assert_allclose(on_server, expected, rtol=0, atol=1e-6)
        # The factors shown are XGBoost's three largest TreeSHAP contributions.
        contribs = BOOSTER.predict(xgb.DMatrix(X, missing=np.nan, feature_names=NAMES), pred_contribs=True)
        for identifier, c in zip(ids, contribs):
            shown = [(f["feature"], f["contribution"]) for f in factors_of(self.ras[identifier])]
            top = sorted(range(len(NAMES)), key=lambda j: -abs(c[j]))[:3]
            self.assertEqual(len(shown), 3)
            self.assertEqual([abs(v) for _, v in shown], sorted((abs(v) for _, v in shown), reverse=True))
            for (name, value), j in zip(shown, top):
                self.assertTrue(near(value, float(c[NAMES.index(name)])), (name, value, c))
                self.assertTrue(near(abs(value), abs(float(c[j]))), (name, value, NAMES[j], c[j]))

    def test_04_export_matches_independent_features_and_labels(self):
        header, rows, out = export("training-1.csv")
        self.assertEqual(header, ["patient", "as_of", *FEATURES.order, "label"])
        by_key = {pseudonym("Patient", pid): pid for pid in self.data}
        expected, censored = {}, 0
        newest = max(t for d in self.data.values() for s in d.stays for t in (s.start, s.end) if t is not None)
        for pid, d in self.data.items():
            stays = [s for s in d.stays if s.class_code == "IMP" and s.start is not None and s.end is not None
                     and s.end >= s.start]
            for t in sorted({s.end for s in stays}):
                if t + 30 * DAY > newest:
                    censored += 1
                    continue
                label = any(t < s.start <= t + 30 * DAY for s in d.stays if s.class_code == "IMP" and s.start)
                expected[(pseudonym("Patient", pid), format_instant(t))] = (pid, t, "1" if label else "0")
        self.assertEqual(set(rows), set(expected))
        self.assertGreater(len(rows), 50)
        positives = sum(label == "1" for _, label in rows.values())
        self.assertTrue(0 < positives < len(rows))
        self.assertIn(f"exported {len(rows)} index events ({positives} readmitted within P30D)", out)
        self.assertIn(f"{censored} discharges too recent", out)
        differ = []
        for key, (values, label) in rows.items():
            pid, t, want_label = expected[key]
            self.assertIn(key[0], by_key)
            self.assertEqual(label, want_label, key)
            want = FEATURES.vector(self.data[pid], t, FEATURES.order)
            differ += [(key, n) for n, a, b in zip(FEATURES.order, values, want) if not close(a, b)]
        self.assertEqual(differ[:10], [], f"{len(differ)} exported values differ")

    def test_05_data_dated_after_an_index_event_changes_none_of_its_features(self):
        _, before, _ = export("training-before.csv")
        by_key = {pseudonym("Patient", pid): pid for pid in self.data}
        # One event of each of 25 patients: data added after one patient's event may rightly
        # change that patient's later events, which are not checked here.
        first_of = {}
        for patient, as_of in sorted(before):
            first_of.setdefault(patient, (patient, as_of))
        events = sorted(first_of.values())[:: max(1, len(first_of) // 25)][:25]
        late, exact = [], []

        def vitals(pid, when, heart_rate, weight):
            def obs(code, value, unit):
                return {"resourceType": "Observation", "status": "final",
                        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                                  "code": "vital-signs"}]}],
                        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
                        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                                          "code": unit}}
            return [obs("8867-4", heart_rate, "/min"), obs("29463-7", weight, "kg"), obs("59408-5", 71, "%")]

        for i, (patient, as_of) in enumerate(events):
            pid, t = by_key[patient], parse_instant(as_of)
            after = format_instant(t + 10**6).replace(".000000Z", "Z")  # one second after T
            if i % 5 == 4:
                # Control: at T exactly, which counts, so this event's row must change.
                late += vitals(pid, as_of, 163, 181.5)
                exact.append((patient, as_of))
            else:
                late += vitals(pid, after, 163, 181.5)
                # And an inpatient stay that starts a second after T.
                late.append({"resourceType": "Encounter", "status": "finished",
                             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                             "subject": {"reference": f"Patient/{pid}"},
                             "period": {"start": after, "end": format_instant(t + 3 * DAY)}})
        fhir_batch(late)
        ok("sync", "--once", "--config", config())
        _, after_rows, _ = export("training-after.csv")
        self.assertLessEqual(set(before), set(after_rows), "an index event disappeared")
        changed = [k for k in events if not all(close(a, b) for a, b in zip(before[k][0], after_rows[k][0]))]
        self.assertEqual(sorted(changed), sorted(exact), "only the events given data at T exactly may change")
        hr = FEATURES.order.index("heart_rate")
        for k in exact:
            self.assertEqual(after_rows[k][0][hr], 163)
        # The new stays start within 30 days of the events they follow: those are readmissions now.
        for k in events:
            if k not in exact:
                self.assertEqual(after_rows[k][1], "1", k)

    def test_06_rerun_changes_nothing(self):
        first = ok("sync", "--once", "--config", config())
        scores = sql("SELECT count(*) FROM score")
        versions = {k: ra["meta"]["versionId"] for k, ra in risk_assessments().items()}
        again = ok("sync", "--once", "--config", config())
        self.assertIn("scored 0 patients", again.stdout, first.stdout)
        self.assertIn("RiskAssessments: 0 created, 0 updated, 0 failed", again.stdout)
        self.assertEqual(sql("SELECT count(*) FROM score"), scores)
        self.assertEqual({k: ra["meta"]["versionId"] for k, ra in risk_assessments().items()},
                         versions)
        # A rescore of everything (same inputs) writes nothing the clinician would see.
        sql("INSERT INTO scoring_queue (patient_key) SELECT patient_key FROM patient ON CONFLICT DO NOTHING")
        forced = ok("sync", "--once", "--config", config())
        self.assertRegex(forced.stdout, r"scored [1-9]\d* patients")
        self.assertIn("RiskAssessments: 0 created, 0 updated, 0 failed", forced.stdout)
        self.assertEqual({k: ra["meta"]["versionId"] for k, ra in risk_assessments().items()},
                         versions)


if __name__ == "__main__":
    unittest.main(verbosity=2)
