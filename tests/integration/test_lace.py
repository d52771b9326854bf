#!/usr/bin/python3
"""The LACE index package (models/lace/) scoring the generated patients end to end.

- Each stored score is the LACE index computed here from the FHIR resources on the server: the
  four parts by the second implementation of docs/features.md (independent_features.py), their
  points by the published table (van Walraven et al., CMAJ 2010; models/lace/README.md), written
  out below apart from the package's trees.
- The RiskAssessment on the server carries the points (no probability), the band at the
  published cut-offs, and as factors exactly the parts that gave points, each with its points.
- `audit rescore` recomputes every LACE score from its stored features with the package and
  finds no difference; a score Observation carries the points in `{score}`.

Run by tests/integration/run.sh or ctest (the environment: support/env.py).
"""
import json
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from independent_features import Features, PatientData  # noqa: E402
from support import (adapter, database, fhir_all, ok, pseudonym, psql, risk_assessments,  # noqa: E402
                     write_config)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LACE = os.path.join(ROOT, "models", "lace")
with open(os.path.join(LACE, "manifest.json")) as f:
    MANIFEST = json.load(f)
NAMES = [feature["name"] for feature in MANIFEST["features"]]
FEATURES = Features.load(os.path.join(LACE, "features.toml"))
POINTS_URL = "urn:fhir-risk-adapter:extension:score-points"
FACTOR_URL = "urn:fhir-risk-adapter:extension:risk-factor"


def lace_points(days, emergent, charlson, visits):
    """The published points of each part (a missing part scores 0, as the package does)."""
    days = 0 if math.isnan(days) else math.floor(days)
    l_points = 0 if days < 1 else days if days <= 3 else 4 if days <= 6 else 5 if days <= 13 else 7
    a_points = 3 if emergent == 1 else 0
    c = 0 if math.isnan(charlson) else int(charlson)
    c_points = c if c <= 3 else 5
    e = 0 if math.isnan(visits) else int(visits)
    e_points = min(e, 4)
    return [l_points, a_points, c_points, e_points]


def band_of(points):
    return next(b for b in MANIFEST["bands"] if points < b["below"])


class LaceIndex(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = database("lace")
        cls.cfg = write_config("lace.toml", db=cls.url, model=LACE)
        ok("migrate", "--config", cls.cfg)
        cls.synced = ok("sync", "--once", "--config", cls.cfg)
        cls.data, _ = PatientData.from_resources(
            fhir_all("Patient?_count=1000"), fhir_all("Observation?_count=1000"),
            fhir_all("Encounter?_count=1000"), FEATURES, fhir_all("Condition?_count=1000"))
        rows = psql(cls.url, "SELECT patient_key, probability, (extract(epoch FROM as_of) * 1000000)::bigint, "
                             "features::text FROM score WHERE model_name = 'lace-index'").stdout.splitlines()
        cls.scores = {r.split("|")[0]: (float(r.split("|")[1]), int(r.split("|")[2]), json.loads(r.split("|", 3)[3]))
                      for r in rows}

    def test_1_every_score_is_the_index_computed_from_the_resources(self):
        self.assertEqual(len(self.scores), len(self.data))
        parts_seen = [set() for _ in NAMES]
        for pid, patient in self.data.items():
            points, as_of, stored = self.scores[pseudonym("Patient", pid)]
            vector = FEATURES.vector(patient, as_of, NAMES)
            for name, value in zip(NAMES, vector):
                got = stored[name]
                self.assertTrue((got is None and math.isnan(value)) or (got is not None and abs(got - value) < 1e-4),
                                f"{pid} {name}: stored {got}, computed here {value}")
            parts = lace_points(*[float(v) for v in vector])
            for i, p in enumerate(parts):
                parts_seen[i].add(p)
            self.assertEqual(points, sum(parts), f"{pid}: {vector}")
        # The generated patients reach every part with points, so each part was exercised.
        self.assertTrue(all(len(s) >= 2 for s in parts_seen), parts_seen)

    def test_2_the_risk_assessment_carries_the_points_and_each_part_as_a_factor(self):
        written = 0
        for ra in risk_assessments(self.url).values():
            if ra.get("method", {}).get("coding", [{}])[0].get("code") != "lace-index":
                continue
            pid = ra["subject"]["reference"].split("/")[-1]
            points, as_of, _ = self.scores[pseudonym("Patient", pid)]
            prediction = ra["prediction"][0]
            self.assertNotIn("probabilityDecimal", prediction)
            extensions = prediction.get("extension", [])
            self.assertEqual([e["valueDecimal"] for e in extensions if e["url"] == POINTS_URL], [points])
            self.assertEqual(prediction["qualitativeRisk"]["coding"][0]["code"], band_of(points)["code"])
            factors = {}
            for e in extensions:
                if e["url"] == FACTOR_URL:
                    parts = {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in e["extension"]}
                    factors[parts["feature"]] = parts["contribution"]
            vector = FEATURES.vector(self.data[pid], as_of, NAMES)
            want = {n: p for n, p in zip(NAMES, lace_points(*[float(v) for v in vector])) if p > 0}
            self.assertEqual(set(factors), set(want), ra["note"][0]["text"])
            for name, p in want.items():
                self.assertAlmostEqual(factors[name], p, places=3)
            self.assertIn(f"{points:g} points", ra["note"][0]["text"])
            written += 1
        self.assertEqual(written, len(self.scores))

    def test_3_audit_rescore_covers_the_package(self):
        run = adapter("audit", "rescore", "--config", self.cfg)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertRegex(run.stdout, rf"{len(self.scores)} scores read, {len(self.scores)} rescored with lace-index "
                                     rf".*: 0 differ")


if __name__ == "__main__":
    unittest.main()
