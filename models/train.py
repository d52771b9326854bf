#!/usr/bin/python3
"""Trains the default model package from generated feature vectors.

The features are the ones the adapter computes (see manifest.json); the label is
"readmitted within 30 days", drawn from a known logistic function of the features so
the model has something real to learn. Deterministic: same seed, same model file.

    /usr/bin/python3 models/train.py [--seed 7] [--rows 20000] [--out models/readmission-risk]
"""
import argparse
import hashlib
import json
import os

import numpy as np
import xgboost as xgb

FEATURES = [
    ("age_years", "a", "Age in years"),
    ("sex_female", "1", "1 if administrative sex is female, 0 otherwise"),
    ("heart_rate", "/min", "Last heart rate"),
    ("respiratory_rate", "/min", "Last respiratory rate"),
    ("oxygen_saturation", "%", "Last oxygen saturation (SpO2)"),
    ("body_temperature", "Cel", "Last body temperature"),
    ("systolic_bp", "mm[Hg]", "Last systolic blood pressure"),
    ("diastolic_bp", "mm[Hg]", "Last diastolic blood pressure"),
    ("body_weight", "kg", "Last body weight"),
    ("bmi", "kg/m2", "Last body mass index"),
    ("inpatient_admissions_365d", "1", "Inpatient admissions in the last 365 days"),
]


def generate(rng, n):
    sick = rng.random(n) < 0.25
    cols = {
        "age_years": rng.integers(18, 96, n).astype(np.float32),
        "sex_female": (rng.random(n) < 0.5).astype(np.float32),
        "heart_rate": rng.normal(np.where(sick, 98, 76), 12),
        "respiratory_rate": rng.normal(np.where(sick, 22, 15), 3),
        "oxygen_saturation": np.clip(rng.normal(np.where(sick, 92, 97.5), 2), 70, 100),
        "body_temperature": rng.normal(np.where(sick, 37.9, 36.8), 0.5),
        "systolic_bp": rng.normal(np.where(sick, 145, 122), 15),
        "diastolic_bp": rng.normal(np.where(sick, 88, 78), 9),
        "body_weight": rng.normal(78, 16, n),
        "bmi": rng.normal(27, 5, n),
        "inpatient_admissions_365d": rng.poisson(np.where(sick, 1.6, 0.3)).astype(np.float32),
    }
    X = np.stack([cols[name].astype(np.float32) for name, _, _ in FEATURES], axis=1)
    # Missing values, as the feature store produces them when a vital sign was never taken.
    X[rng.random(X.shape) < 0.08] = np.nan
    z = (
        -4.2
        + 0.025 * (cols["age_years"] - 50)
        + 0.04 * (cols["heart_rate"] - 75)
        + 0.12 * (cols["respiratory_rate"] - 15)
        - 0.18 * (cols["oxygen_saturation"] - 97)
        + 0.6 * (cols["body_temperature"] - 37)
        + 0.012 * (cols["systolic_bp"] - 120)
        + 0.55 * cols["inpatient_admissions_365d"]
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float32)
    return X, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "readmission-risk"))
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    X, y = generate(rng, args.rows)
    dtrain = xgb.DMatrix(X, label=y, feature_names=[f[0] for f in FEATURES], missing=np.nan)
    params = {
        "objective": "binary:logistic",
        "max_depth": 4,
        "eta": 0.1,
        "subsample": 0.8,
        "seed": args.seed,
        "nthread": 1,
        "eval_metric": "auc",
    }
    booster = xgb.train(params, dtrain, num_boost_round=120)
    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, "model.json")
    booster.save_model(model_path)
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    manifest = {
        "name": "readmission-risk",
        "version": "1.0.0",
        "description": "Risk of unplanned readmission within 30 days, from vital signs, age, "
                       "sex and recent inpatient admissions. Trained on generated data: "
                       "a demonstration model, not for clinical use.",
        "outcome": {"system": "http://snomed.info/sct", "code": "417005",
                    "display": "Hospital re-admission"},
        "model_file": "model.json",
        "model_sha256": sha,
        "features": [{"name": n, "unit": u, "description": d} for n, u, d in FEATURES],
        "bands": [
            {"code": "low", "display": "Low likelihood", "below": 0.10},
            {"code": "moderate", "display": "Moderate likelihood", "below": 0.30},
            {"code": "high", "display": "High likelihood", "below": 1.01},
        ],
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    auc = booster.eval(dtrain).split(":")[-1]
    print(f"trained {model_path}: 120 trees, depth 4, train {auc}, sha256 {sha}")


if __name__ == "__main__":
    main()
