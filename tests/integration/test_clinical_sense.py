#!/usr/bin/python3
"""The shipped demonstration model makes clinical sense.

models/train.py constrains each feature whose direction is clinical knowledge (more
comorbidity, prior stays and emergency visits, a longer or emergent stay, older age, current
smoking raise the risk; a higher oxygen saturation lowers it), and the manifest records each
constraint (`"monotone"`). Over the generated cohort on the test server, scored by the adapter:

- each constrained feature's TreeSHAP contribution rises (or, for -1, falls) with its value:
  every scored patient's feature vector, that feature moved over a grid of the cohort's values,
  scored by the adapter (`score-csv --contributions`, the evaluator the sync uses);
- no RiskAssessment names a factor whose direction contradicts its constraint: a risk factor
  present (1) or at the cohort's highest value never "lowers the risk", absent (0) or at the
  lowest never "raises" it (the other way round for -1), and the factor's contribution is the
  one the grid gives at its value;
- the validation figures the manifest reports (AUC, calibration slope and intercept) are there
  and within the ranges a usable model has.

Run by tests/integration/run.sh or ctest (the environment: support/env.py).
"""
import csv
import json
import math
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from support import adapter, database, model_dir, ok, psql, risk_assessments, work, write_config  # noqa: E402

FACTOR_URL = "urn:fhir-risk-adapter:extension:risk-factor"
with open(os.path.join(model_dir(), "manifest.json")) as f:
    MANIFEST = json.load(f)
NAMES = [feature["name"] for feature in MANIFEST["features"]]
MONOTONE = {f["name"]: f["monotone"] for f in MANIFEST["features"] if f.get("monotone")}


def score_csv(rows):
    """The adapter's contributions for rows of feature values (NaN: missing), one dict a row."""
    path_in, path_out = os.path.join(work(), "grid.csv"), os.path.join(work(), "grid-out.csv")
    with open(path_in, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(NAMES)
        for r in rows:
            w.writerow(["" if math.isnan(v) else repr(float(v)) for v in r])
    ok("score-csv", "--model", model_dir(), "--input", path_in, "--output", path_out, "--contributions")
    with open(path_out, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def grid(values):
    """The values to move a feature over: each one the cohort has, or its deciles when many."""
    distinct = sorted(set(v for v in values if not math.isnan(v)))
    if len(distinct) <= 12:
        return distinct
    return sorted(set(float(np.quantile(distinct, q)) for q in np.linspace(0, 1, 11)))


class ClinicalSense(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = database("sense")
        cls.cfg = write_config("sense.toml", db=cls.url)
        ok("migrate", "--config", cls.cfg)
        ok("sync", "--once", "--config", cls.cfg)
        rows = psql(cls.url, "SELECT ra.identifier, s.features::text FROM risk_assessment ra "
                             "JOIN score s ON s.id = ra.written_score_id").stdout.splitlines()
        cls.vectors = {}
        for r in rows:
            identifier, features = r.split("|", 1)
            f = json.loads(features)
            cls.vectors[identifier] = [math.nan if f[n] is None else float(f[n]) for n in NAMES]
        cls.ras = risk_assessments(cls.url)
        cls.grids = {n: grid([v[NAMES.index(n)] for v in cls.vectors.values()]) for n in MONOTONE}

    def test_1_the_constraints_cover_what_clinical_knowledge_orders(self):
        for name in ("age_years", "charlson_index", "length_of_stay_days", "emergent_admission",
                     "inpatient_admissions_365d", "emergency_visits_6m", "current_smoker"):
            self.assertEqual(MONOTONE.get(name), 1, name)
        self.assertEqual(MONOTONE.get("oxygen_saturation"), -1)
        # Vital signs harmful on both sides are left free.
        for name in ("heart_rate", "body_temperature", "systolic_bp"):
            self.assertNotIn(name, MONOTONE)
        self.assertGreaterEqual(len(self.vectors), 150)
        for name, g in self.grids.items():
            self.assertGreaterEqual(len(g), 2, f"{name}: the cohort has one value only")

    def test_2_each_constrained_contribution_moves_with_its_value(self):
        keys = sorted(self.vectors)
        rows, where = [], []
        for name, g in self.grids.items():
            j = NAMES.index(name)
            for k in keys:
                for v in g:
                    row = list(self.vectors[k])
                    row[j] = v
                    rows.append(row)
                    where.append((name, k, v))
        out = score_csv(rows)
        curves = {}
        for (name, k, v), r in zip(where, out):
            curves.setdefault((name, k), []).append((v, r[f"contrib_{name}"]))
        bad = []
        for (name, k), curve in curves.items():
            sign = MONOTONE[name]
            steps = [sign * (b[1] - a[1]) for a, b in zip(curve, curve[1:])]
            if min(steps) < -1e-6:
                bad.append((name, k[:12], curve))
        self.assertEqual(bad[:5], [], f"{len(bad)} of {len(curves)} curves do not follow the constraint")
        # Each constrained feature the model splits on moves the score somewhere in the cohort, so
        # the check above could fail; most constrained features are used.
        with open(os.path.join(model_dir(), MANIFEST["model_file"])) as f:
            used = {NAMES[i] for t in json.load(f)["learner"]["gradient_booster"]["model"]["trees"]
                    for i, left in zip(t["split_indices"], t["left_children"]) if left != -1}
        self.assertGreaterEqual(len(used & set(self.grids)), 6, used)
        for name in used & set(self.grids):
            spread = max(abs(c[-1][1] - c[0][1]) for (n, _), c in curves.items() if n == name)
            self.assertGreater(spread, 0, name)

    def test_3_no_risk_assessment_names_a_factor_against_its_constraint(self):
        checked, contradictions = 0, []
        for identifier, ra in self.ras.items():
            for ext in ra["prediction"][0].get("extension", []):
                if ext["url"] != FACTOR_URL:
                    continue
                parts = {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]}
                name = parts["feature"]
                if name not in MONOTONE or "value" not in parts:
                    continue
                value = parts["value"]["value"] if isinstance(parts["value"], dict) else parts["value"]
                sign, contribution = MONOTONE[name], parts["contribution"]
                lowest, highest = self.grids[name][0], self.grids[name][-1]
                raises = contribution > 0
                if sign > 0 and ((value >= highest and not raises) or (value <= lowest and raises)):
                    contradictions.append((name, value, contribution))
                if sign < 0 and ((value <= lowest and not raises) or (value >= highest and raises)):
                    contradictions.append((name, value, contribution))
                checked += 1
        self.assertEqual(contradictions, [])
        self.assertGreater(checked, 0, "no factor of a constrained feature was shown")

    def test_4_the_manifest_reports_validation_auc_and_calibration(self):
        v = MANIFEST["validation"]
        self.assertGreater(v["auc"], 0.65)
        self.assertLess(abs(v["calibration_slope"] - 1), 0.25)
        self.assertLess(abs(v["calibration_intercept"]), 0.5)
        self.assertGreater(v["discharges"], 500)
        run = adapter("model", "inspect", model_dir())
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn(f"AUC {v['auc']}", run.stdout)


if __name__ == "__main__":
    unittest.main()
