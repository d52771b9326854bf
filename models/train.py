#!/usr/bin/python3
"""Trains the shipped readmission-risk model from the adapter's training export.

    /usr/bin/python3 models/train.py --csv training.csv [--features FILE] [--out DIR] [--seed 7]

The CSV is what `fhir-risk-adapter export-training` writes (docs/features.md): columns
`patient` (a pseudonym), `as_of`, one column per feature in the order of the feature
definitions, `label` (1 when another inpatient stay started within 30 days of the discharge);
an empty cell is a missing value. The features' names, units and labels come from the
definitions file (default models/readmission-risk/features.toml) and the CSV header must name
exactly those features in that order, so the model reads in production what it was trained on.

Where clinical knowledge gives the direction of a feature's effect, the model is constrained
to it (XGBoost's `monotone_constraints`, MONOTONE below): more comorbidity, more prior stays and
emergency visits, a longer or emergent stay, older age and current smoking can only raise the
risk, a higher oxygen saturation only lower it. Vital signs whose harm lies on both sides
(heart rate, temperature, blood pressure) are left free. The manifest records each constraint
(`"monotone"` of a feature), so a test can check the TreeSHAP contributions against it.

The manifest also keeps the reference distribution of each feature and of the score
(`"reference"`: decile bin edges, the share of rows in each bin, the share missing), which the
adapter's monitoring compares production with (population stability index). Production scores
every patient as of now, not at a discharge, so the reference is taken the same way:

    /usr/bin/python3 models/train.py --set-reference scores.jsonl [--out DIR]

reads one JSON object per line, {"features": {name: value | null}, "probability": p}, the
training population scored by the adapter with the new model (build.sh writes it from the
store), and writes its distributions into the package's manifest (the model file unchanged).

20% of the patients are held out to report a validation AUC and calibration (the slope and
intercept of the logistic recalibration of the held-out outcomes on the predicted log-odds:
1 and 0 when calibrated); the model written is then trained on every row. Both go into the
manifest (`"validation"`). Deterministic: the same rows give the same model file, whatever the pseudonym key
(rows are put in an order of their content, and patients are assigned to the hold-out by a hash
of their rows, not of their pseudonyms), with a fixed seed and one thread. `bash models/build.sh`
runs the whole chain (test server, adapter, export, this script).

    /usr/bin/python3 models/train.py --feature-package DIR [--features FILE]

writes a model package whose manifest lists the definitions' features and whose model is a
constant. export-training writes the features of the configured model's manifest, so
build.sh points the adapter at this package to export exactly the features defined now.
"""
import argparse
import csv
import hashlib
import json
import math
import os
import sys
import tomllib

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.join(HERE, "readmission-risk")
HOLDOUT = 0.2
ROUNDS = 150
# Defined and exported, but not in the model: the generated outcome does not depend on them, so a
# model could only learn noise from them and show it to clinicians as a reason ("Body mass index
# 16 kg/m2 lowers the risk"). A hospital training on its own data decides again.
UNUSED = {"body_weight", "body_weight_change_90d", "bmi"}
# +1: the risk can only rise with the feature; -1: only fall. Others are free.
MONOTONE = {
    "age_years": 1,
    "oxygen_saturation": -1,
    "inpatient_admissions_365d": 1,
    "length_of_stay_days": 1,
    "emergent_admission": 1,
    "emergency_visits_6m": 1,
    "charlson_index": 1,
    "heart_failure": 1,
    "copd": 1,
    "chronic_kidney_disease": 1,
    "current_smoker": 1,
}
PARAMS = {
    "objective": "binary:logistic",
    "max_depth": 3,
    "eta": 0.05,
    "min_child_weight": 5,
    "subsample": 0.8,
    "colsample_bynode": 0.8,
    "nthread": 1,
    "eval_metric": "auc",
}
MANIFEST = {
    "name": "readmission-risk",
    "version": "3.0.0",
    "description": "Risk of another inpatient stay within 30 days of an inpatient discharge, from vital "
                   "signs, age, sex, comorbidities (Charlson index, heart failure, COPD, chronic "
                   "kidney disease), smoking, the index stay (length, emergent admission), prior inpatient "
                   "stays and emergency visits, the direction of each effect that clinical knowledge "
                   "gives constrained to it. Trained on the adapter's training export of generated "
                   "patients: a demonstration model, not for clinical use.",
    "outcome": {"system": "http://snomed.info/sct", "code": "417005", "display": "Hospital re-admission"},
}
BANDS = [
    {"code": "low", "display": "Low likelihood", "below": 0.10},
    {"code": "moderate", "display": "Moderate likelihood", "below": 0.30},
    {"code": "high", "display": "High likelihood", "below": 1.01},
]


def fail(message):
    sys.stderr.write(f"train.py: error: {message}\n")
    sys.exit(65)


def load_features(path):
    """[(name, unit, label)] of the [[feature]] tables of a definitions file, in order."""
    try:
        with open(path, "rb") as f:
            tables = tomllib.load(f).get("feature", [])
    except (OSError, tomllib.TOMLDecodeError) as e:
        fail(f"{path}: {e}")
    if not tables:
        fail(f"{path}: no [[feature]] tables")
    out = []
    for i, t in enumerate(tables):
        if "name" not in t or "unit" not in t:
            fail(f"{path}: feature[{i}]: needs a name and a unit")
        out.append((t["name"], t["unit"], t.get("label", t["name"])))
    return out


def read_export(path, names):
    """Patients, as-of times, feature matrix (NaN for empty cells) and labels of a training export."""
    expected = ["patient", "as_of", *names, "label"]
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != expected:
            got = set(header or [])
            missing = [c for c in expected if c not in got]
            extra = [c for c in (header or []) if c not in expected]
            detail = (f"missing {missing}" if missing else "") + ("; " if missing and extra else "") + \
                     (f"not defined {extra}" if extra else "")
            fail(f"{path}: header does not match the feature definitions: {detail or 'columns in another order'}; "
                 f"expected {','.join(expected)}")
        patients, as_of, X, y = [], [], [], []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(expected):
                fail(f"{path}:{line}: {len(row)} cells, expected {len(expected)}")
            try:
                X.append([float(v) if v != "" else math.nan for v in row[2:-1]])
            except ValueError:
                fail(f"{path}:{line}: a feature value is not a number")
            if row[-1] not in ("0", "1"):
                fail(f"{path}:{line}: label must be 0 or 1")
            if not row[0]:
                fail(f"{path}:{line}: empty patient")
            patients.append(row[0])
            as_of.append(row[1])
            y.append(float(row[-1]))
    if not X:
        fail(f"{path}: no rows")
    X, y = np.array(X, dtype=np.float32), np.array(y, dtype=np.float32)
    if y.min() == y.max():
        fail(f"{path}: every label is {int(y[0])}; training needs both outcomes")
    return patients, as_of, X, y


def canonical(patients, as_of, X, y, seed):
    """Rows in an order of their content, and a hold-out mask of about HOLDOUT of the patients.

    Pseudonyms change with the pseudonym key, so neither the order nor the split may depend on
    them: a patient is identified by a hash of their rows instead.
    """
    rows = [as_of[i].encode() + X[i].tobytes() + y[i].tobytes() for i in range(len(y))]
    order = sorted(range(len(y)), key=lambda i: rows[i])
    by_patient = {}
    for i in order:
        by_patient.setdefault(patients[i], []).append(rows[i])
    digest = {p: hashlib.sha256(str(seed).encode() + b"".join(r)).digest() for p, r in by_patient.items()}
    ranked = sorted(digest, key=digest.get)
    held = set(ranked[:round(HOLDOUT * len(ranked))])
    order = np.array(order)
    return order, np.array([patients[i] in held for i in order])


def constraints(names):
    """XGBoost's monotone_constraints for the features, in order."""
    return "(" + ",".join(str(MONOTONE.get(n, 0)) for n in names) + ")"


def train(X, y, names, seed, evals=()):
    params = {**PARAMS, "seed": seed, "monotone_constraints": constraints(names)}
    dtrain = xgb.DMatrix(X, label=y, feature_names=names, missing=np.nan)
    return xgb.train(params, dtrain, num_boost_round=ROUNDS, evals=evals, verbose_eval=False)


def reference(X, names, p):
    """Each feature's training distribution and the score's: bin edges (the deciles' distinct
    cut points), the share of rows in each bin ([-inf, e0), [e0, e1), ..., [e_last, inf)) and
    the share missing; what the adapter's monitoring measures drift against (PSI)."""
    def dist(v):
        present = v[~np.isnan(v)]
        distinct = np.unique(present)
        if len(distinct) <= 10:  # a flag or a small count: each value a bin of its own
            cuts = distinct[1:]
        else:
            cuts = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9)))
        # Each edge halfway between two values that occur, never on one: a value stored with
        # fewer digits (the adapter keeps features as float32) falls in the same bin.
        edges = []
        for c in cuts:
            below = distinct[distinct < c]
            edges.append(float((below[-1] + c) / 2) if len(below) else float(c))
        edges = sorted(set(edges))
        counts = np.zeros(len(edges) + 1)
        for i in np.searchsorted(np.array(edges, dtype=np.float64), present.astype(np.float64), side="right"):
            counts[i] += 1
        return {"edges": edges, "shares": [float(c / len(v)) for c in counts],
                "missing": float(np.isnan(v).mean())}
    return {"rows": int(len(p)), "features": {n: dist(X[:, j].astype(np.float64)) for j, n in enumerate(names)},
            "score": dist(p.astype(np.float64))}


def write_package(out, booster, features, description=None, validation=None, ref=None):
    os.makedirs(out, exist_ok=True)
    model_path = os.path.join(out, "model.json")
    booster.save_model(model_path)
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    manifest = {**MANIFEST, "model_file": "model.json", "model_sha256": sha,
                "features": [{"name": n, "unit": u, "description": label,
                              **({"monotone": MONOTONE[n]} if n in MONOTONE else {})}
                             for n, u, label in features],
                "bands": BANDS}
    if validation:
        manifest["validation"] = validation
    if ref:
        manifest["reference"] = ref
    if description:
        manifest["description"] = description
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return model_path, sha


def feature_package(out, features):
    """A package with the definitions' features and a constant model (one leaf, probability 0.5)."""
    names = [n for n, _, _ in features]
    dtrain = xgb.DMatrix(np.full((2, len(names)), np.nan, dtype=np.float32), label=[0, 1], feature_names=names,
                         missing=np.nan)
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1, "base_score": 0.5}, dtrain, num_boost_round=1)
    write_package(out, booster, features,
                  "Feature list for export-training only: a constant model, never for scoring.")
    print(f"wrote {out}: {len(names)} features, constant model")


def auc(y, p):
    """Area under the ROC curve (ties count half)."""
    order = np.argsort(p, kind="stable")
    ranks = np.empty(len(p))
    sp = p[order]
    i = 0
    while i < len(sp):
        j = i
        while j + 1 < len(sp) and sp[j + 1] == sp[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def calibration(y, p):
    """Slope and intercept of the logistic regression of outcomes y on the log-odds of p
    (Newton's method; Cox's recalibration): 1 and 0 for a calibrated model."""
    p = np.clip(p.astype(np.float64), 1e-12, 1 - 1e-12)
    x = np.log(p / (1 - p))
    X = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(100):
        mu = 1 / (1 + np.exp(-X @ beta))
        w = mu * (1 - mu)
        step = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (y - mu))
        beta += step
        if np.abs(step).max() < 1e-12:
            break
    return float(beta[1]), float(beta[0])


def set_reference(path, out, names):
    """Rewrites the package's manifest with the reference distributions of the scored population."""
    rows, p = [], []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            rows.append([np.nan if r["features"].get(n) is None else float(r["features"][n]) for n in names])
            p.append(float(r["probability"]))
    if not rows:
        fail(f"{path}: no scores")
    manifest_path = os.path.join(out, "manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest["reference"] = reference(np.array(rows, dtype=np.float64), names, np.array(p, dtype=np.float64))
    manifest["reference"]["population"] = ("the training population, every patient scored as of the end "
                                           "of its data, as the adapter scores in production")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"reference of {len(rows)} scored patients written into {manifest_path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--csv", help="training export (fhir-risk-adapter export-training --out FILE)")
    what.add_argument("--feature-package", metavar="DIR", help="write a feature-list package for export-training")
    what.add_argument("--set-reference", metavar="JSONL", help="the population's scores: the manifest's reference")
    ap.add_argument("--features", default=os.path.join(PACKAGE, "features.toml"), help="feature definitions (TOML)")
    ap.add_argument("--out", default=PACKAGE, help="model package directory to write")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    features = load_features(args.features)
    names = [n for n, _, _ in features]
    if args.feature_package:
        feature_package(args.feature_package, features)
        return
    model_features = [f for f in features if f[0] not in UNUSED]
    if args.set_reference:
        set_reference(args.set_reference, args.out, [n for n, _, _ in model_features])
        return

    patients, as_of, X, y = read_export(args.csv, names)
    X = X[:, [names.index(n) for n, _, _ in model_features]]
    features, names = model_features, [n for n, _, _ in model_features]
    order, held = canonical(patients, as_of, X, y, args.seed)
    X, y = X[order], y[order]
    n_patients, n_held = len(set(patients)), len({patients[i] for i in order[held]})
    if held.all() or not held.any() or y[held].min() == y[held].max() or y[~held].min() == y[~held].max():
        fail(f"{args.csv}: too few patients ({n_patients}) to hold out {HOLDOUT:.0%} with both outcomes on each side")

    check = train(X[~held], y[~held], names, args.seed)
    p_held = check.predict(xgb.DMatrix(X[held], feature_names=names, missing=np.nan))
    val_auc = auc(y[held], p_held)
    slope, intercept = calibration(y[held], p_held)
    validation = {"discharges": int(held.sum()), "patients": int(n_held),
                  "readmitted": round(float(y[held].mean()), 4), "auc": round(float(val_auc), 4),
                  "calibration_slope": round(slope, 4), "calibration_intercept": round(intercept, 4),
                  "mean_predicted": round(float(p_held.mean()), 4),
                  "note": f"{HOLDOUT:.0%} of the generated patients held out, the model trained on the rest"}

    booster = train(X, y, names, args.seed)
    p_all = booster.predict(xgb.DMatrix(X, feature_names=names, missing=np.nan))
    model_path, sha = write_package(args.out, booster, features, validation=validation,
                                    ref=reference(X, names, p_all))
    print(f"{len(y)} discharges of {n_patients} patients, {y.mean():.1%} readmitted within the horizon, "
          f"{np.isnan(X).mean():.1%} of values missing")
    print(f"validation: {held.sum()} discharges of {n_held} held-out patients ({y[held].mean():.1%} readmitted), "
          f"AUC {val_auc:.3f}, calibration slope {slope:.3f} and intercept {intercept:.3f}, mean predicted "
          f"{p_held.mean():.1%} (model trained on the other {(~held).sum()})")
    print(f"trained {model_path} on all {len(y)}: {ROUNDS} trees, depth {PARAMS['max_depth']}, "
          f"training AUC {auc(y, p_all):.3f}, sha256 {sha}")


if __name__ == "__main__":
    main()
