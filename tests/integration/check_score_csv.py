#!/usr/bin/python3
"""score-csv equals XGBoost's own predictions (within 1e-6) on the shipped model and on a
deeper model trained here, for rows that hit split thresholds exactly, NaN, ±inf and extremes.

    /usr/bin/python3 tests/integration/check_score_csv.py BINARY MODEL_DIR
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import xgboost as xgb

BINARY = MODEL_DIR = None


def thresholds(model_json):
    """Every split threshold per feature, as XGBoost stores them (float32)."""
    out = {}
    for tree in model_json["learner"]["gradient_booster"]["model"]["trees"]:
        for left, feat, cond in zip(tree["left_children"], tree["split_indices"], tree["split_conditions"]):
            if left != -1:
                out.setdefault(feat, set()).add(np.float32(cond))
    return out


def awkward_rows(model_path, n_features, rng, n=3000):
    """Random rows, then rows set to thresholds exactly, one ulp either side, NaN, ±inf, extremes."""
    with open(model_path) as f:
        th = thresholds(json.load(f))
    X = rng.normal(0, 1, (n, n_features)).astype(np.float32)
    for j in range(n_features):
        values = sorted(th.get(j, {np.float32(0)}))
        X[:, j] = rng.choice(values, n) + X[:, j] * np.float32(np.std(values) if len(values) > 1 else 1)
    for i in range(n):
        j = rng.integers(0, n_features)
        values = sorted(th.get(j, {np.float32(0)}))
        t = np.float32(rng.choice(values))
        kind = i % 8
        X[i, j] = [t, np.nextafter(t, np.float32(-np.inf)), np.nextafter(t, np.float32(np.inf)), np.nan,
                   np.inf, -np.inf, np.float32(3.4e38), np.float32(-3.4e38)][kind]
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def write_csv(path, names, X):
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for row in X:
            f.write(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n")


def run_score_csv(model, names, X, tmp):
    inp, out = os.path.join(tmp, "in.csv"), os.path.join(tmp, "out.csv")
    write_csv(inp, names, X)
    subprocess.run([BINARY, "score-csv", "--model", model, "--input", inp, "--output", out], check=True)
    with open(out) as f:
        header = f.readline().strip()
        return header, np.array([float(line) for line in f], dtype=np.float64)


class ScoreCsvMatchesXGBoost(unittest.TestCase):
    def check(self, model_file, model_arg, names, X):
        booster = xgb.Booster(model_file=model_file)
        expected = booster.inplace_predict(X)
        with tempfile.TemporaryDirectory() as tmp:
            header, got = run_score_csv(model_arg, names, X, tmp)
        self.assertEqual(header, "probability")
        self.assertEqual(len(got), len(X))
        diff = np.abs(got - expected.astype(np.float64))
        worst = int(np.argmax(diff))
        self.assertLessEqual(diff[worst], 1e-6, f"row {worst}: adapter {got[worst]!r}, xgboost {expected[worst]!r}")
        return diff

    def test_shipped_model_package(self):
        with open(os.path.join(MODEL_DIR, "manifest.json")) as f:
            names = [feat["name"] for feat in json.load(f)["features"]]
        model_file = os.path.join(MODEL_DIR, "model.json")
        X = awkward_rows(model_file, len(names), np.random.default_rng(1))
        self.check(model_file, MODEL_DIR, names, X)

    def test_deep_model_trained_here(self):
        rng = np.random.default_rng(2)
        X = rng.normal(0, 1, (4000, 20)).astype(np.float32)
        X[rng.random(X.shape) < 0.2] = np.nan
        y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) + rng.normal(0, 1, 4000) > 0)
        names = [f"x{i}" for i in range(20)]
        dtrain = xgb.DMatrix(X, label=y.astype(np.float32), feature_names=names)
        booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "nthread": 1},
                            dtrain, num_boost_round=200)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "deep.json")
            booster.save_model(path)
            Xt = awkward_rows(path, 20, rng)
            self.check(path, path, names, Xt)


if __name__ == "__main__":
    BINARY, MODEL_DIR = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
