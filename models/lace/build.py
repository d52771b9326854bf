#!/usr/bin/python3
"""Writes the LACE index package (models/lace/model.json and manifest.json) and checks it.

    /usr/bin/python3 models/lace/build.py

LACE (van Walraven C et al., CMAJ 2010;182(6):551-7, doi:10.1503/cmaj.091117) is a points
score, not a trained model: this script writes it by hand as an XGBoost 1.7 JSON model of four
regression trees (objective reg:squarederror, base_score 0), one per part of the score, each
splitting only on its own feature at the published cut-offs, with the points as leaves. The
model's prediction (its margin) is then exactly L + A + C + E. See README.md for the points and
where each comes from.

Covers (`sum_hessian`) are chosen so that TreeSHAP gives each part's points as that feature's
contribution: the 0-points leaf of each tree holds almost all the cover (2^23) and every other
leaf a cover of 1, so each tree's expected value (sum of leaf * cover / total) is below 3e-6
and a feature's contribution is its points minus that. Every count is an integer below 2^24,
so float32 holds the covers and their sums exactly. A missing value goes to the 0-points leaf
(`default_left` at each root, whose left child is that leaf).

The hand-built model is loaded by XGBoost and saved by it, so model.json is exactly what
XGBoost writes. The result is then checked with XGBoost itself on every row of
tests/data/lace_cases.csv (written by hand, not from these trees): the prediction must equal
the row's lace_points exactly as float32, and pred_contribs must give each part's points (the
L+A+C+E breakdown at the start of the row's note) within 1e-4 and a bias within 1e-4 of 0. Any
failure exits 1. The same run twice writes the same bytes (checked: the model is built twice).
"""
import csv
import hashlib
import json
import math
import os
import re
import sys
import tempfile

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CASES = os.path.join(ROOT, "tests", "data", "lace_cases.csv")

ZERO_COVER = float(2 ** 23)  # the 0-points leaf of every tree
OTHER_COVER = 1.0  # every other leaf
TOLERANCE = 1e-4

FEATURES = [
    ("lace_length_of_stay_days", "d", "Length of stay of the index stay (LACE L)"),
    ("lace_emergent_admission", "1", "Emergent (acute) admission (LACE A)"),
    ("charlson_index", "1", "Charlson comorbidity index score (LACE C)"),
    ("emergency_visits_6m", "1", "Emergency department visits in the 6 months before admission (LACE E)"),
]

MANIFEST = {
    "name": "lace-index",
    "version": "1.0.0",
    "description": "The LACE index (van Walraven et al., CMAJ 2010;182(6):551-7) as published: points "
                   "for Length of stay, Acuity of admission, Comorbidity (Charlson index score) and "
                   "Emergency department visits in the 6 months before admission, 0 to 19. A validated "
                   "score of the risk of death or unplanned readmission within 30 days after discharge "
                   "to the community, derived in adult medical and surgical patients in Ontario; the "
                   "score is points, not a probability. The outcome code names readmission; the "
                   "published outcome also counts death.",
    "output": "points",
    "outcome": {"system": "http://snomed.info/sct", "code": "417005", "display": "Hospital re-admission"},
}

# Common usage in the literature (not in the 2010 paper): 0-4 low, 5-9 moderate, 10 or more
# high. `below` is in points; the maximum is 19.
BANDS = [
    {"code": "low", "display": "Low risk (LACE 0\u20134)", "below": 5},
    {"code": "moderate", "display": "Moderate risk (LACE 5\u20139)", "below": 10},
    {"code": "high", "display": "High risk (LACE 10 or more)", "below": 20},
]


# A tree is written as nested tuples: ("leaf", points) or ("split", threshold, left, right),
# where x < threshold goes left. Every root's left child is the 0-points leaf and a missing
# value goes left at the root; below the root no missing value arrives.
def leaf(points):
    return ("leaf", float(points))


def split(threshold, left, right):
    return ("split", float(threshold), left, right)


# L: length of stay in whole days elapsed. <1 d 0, 1 d 1, 2 d 2, 3 d 3, 4-6 d 4, 7-13 d 5,
# 14 d or more 7 (there is no 6).
LENGTH_OF_STAY = split(1, leaf(0),
                       split(4,
                             split(2, leaf(1), split(3, leaf(2), leaf(3))),
                             split(7, leaf(4), split(14, leaf(5), leaf(7)))))
# A: emergent admission 3, otherwise 0.
ACUITY = split(0.5, leaf(0), leaf(3))
# C: Charlson index score 0 0, 1 1, 2 2, 3 3, 4 or more 5 (there is no 4).
COMORBIDITY = split(1, leaf(0),
                    split(3,
                          split(2, leaf(1), leaf(2)),
                          split(4, leaf(3), leaf(5))))
# E: emergency department visits 0 0, 1 1, 2 2, 3 3, 4 or more 4.
EMERGENCY_VISITS = split(1, leaf(0),
                         split(3,
                               split(2, leaf(1), leaf(2)),
                               split(4, leaf(3), leaf(4))))
TREES = [LENGTH_OF_STAY, ACUITY, COMORBIDITY, EMERGENCY_VISITS]  # tree i splits on feature i


def f32(x):
    return float(np.float32(x))


def tree_json(root, feature, tree_id):
    """The XGBoost 1.7 JSON of one tree, nodes numbered breadth first."""
    nodes, parents, queue = [], [], [(root, 2147483647)]
    while queue:  # breadth first, so that children come after their parent
        node, parent = queue.pop(0)
        nodes.append(node)
        parents.append(parent)
        if node[0] == "split":
            queue.append((node[2], len(nodes) - 1))
            queue.append((node[3], len(nodes) - 1))
    index = {id(n): i for i, n in enumerate(nodes)}

    def cover(n):
        if n[0] == "leaf":
            return ZERO_COVER if n[1] == 0 else OTHER_COVER
        return cover(n[2]) + cover(n[3])

    def mean(n):  # the node's weight as if it were a leaf: the cover-weighted mean of its leaves
        if n[0] == "leaf":
            return n[1]
        return (mean(n[2]) * cover(n[2]) + mean(n[3]) * cover(n[3])) / cover(n)

    t = {k: [] for k in ("base_weights", "default_left", "left_children", "loss_changes", "right_children",
                         "split_conditions", "split_indices", "split_type", "sum_hessian")}
    for i, n in enumerate(nodes):
        is_leaf = n[0] == "leaf"
        t["base_weights"].append(f32(mean(n)))
        t["default_left"].append(1 if i == 0 else 0)
        t["left_children"].append(-1 if is_leaf else index[id(n[2])])
        t["right_children"].append(-1 if is_leaf else index[id(n[3])])
        t["loss_changes"].append(0.0)
        t["split_conditions"].append(n[1])
        t["split_indices"].append(0 if is_leaf else feature)
        t["split_type"].append(0)
        t["sum_hessian"].append(cover(n))
    assert nodes[0][0] == "split" and nodes[1] == ("leaf", 0.0), "the root's left child is the 0-points leaf"
    return {**t, "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": [],
            "id": tree_id, "parents": parents,
            "tree_param": {"num_deleted": "0", "num_feature": str(len(FEATURES)), "num_nodes": str(len(nodes)),
                           "size_leaf_vector": "0"}}


def model_json():
    trees = [tree_json(root, i, i) for i, root in enumerate(TREES)]
    return {
        "learner": {
            "attributes": {},
            "feature_names": [name for name, _, _ in FEATURES],
            "feature_types": [],
            "gradient_booster": {
                "model": {
                    "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": str(len(trees)),
                                           "size_leaf_vector": "0"},
                    "tree_info": [0] * len(trees),
                    "trees": trees,
                },
                "name": "gbtree",
            },
            "learner_model_param": {"base_score": "0E0", "boost_from_average": "1", "num_class": "0",
                                    "num_feature": str(len(FEATURES)), "num_target": "1"},
            "objective": {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}},
        },
        "version": [1, 7, 4],
    }


def saved_by_xgboost():
    """The model's bytes as XGBoost saves it, after loading the hand-built JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        hand = os.path.join(tmp, "hand.json")
        with open(hand, "w") as f:
            json.dump(model_json(), f)
        booster = xgb.Booster(model_file=hand)
        out = os.path.join(tmp, "model.json")
        booster.save_model(out)
        with open(out, "rb") as f:
            return f.read()


def read_cases(path):
    """Rows of the hand table: (case, x[4] with NaN for empty cells, lace_points, parts[4])."""
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        expected = ["case", "length_of_stay_days", "emergent_admission", "charlson_index",
                    "emergency_visits_6m", "lace_points", "note"]
        if reader.fieldnames != expected:
            sys.exit(f"build.py: {path}: header must be {','.join(expected)}")
        for r in reader:
            x = [float(r[c]) if r[c] != "" else math.nan for c in expected[1:5]]
            m = re.match(r"L(\d+)\+A(\d+)\+C(\d+)\+E(\d+);", r["note"])
            if not m:
                sys.exit(f"build.py: {path}: case {r['case']}: the note must start with the breakdown Ln+An+Cn+En;")
            rows.append((r["case"], x, int(r["lace_points"]), [int(g) for g in m.groups()]))
    return rows


def verify(model_path, cases):
    """Problems found checking the written model with XGBoost on the hand table (none: empty)."""
    names = [n for n, _, _ in FEATURES]
    booster = xgb.Booster(model_file=model_path)
    problems = []
    if booster.feature_names != names:
        problems.append(f"feature names {booster.feature_names}, expected {names}")
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    base_score = float(config["learner"]["learner_model_param"]["base_score"])
    if objective != "reg:squarederror" or base_score != 0:
        problems.append(f"objective {objective} base_score {base_score}, expected reg:squarederror 0")
    X = np.array([x for _, x, _, _ in cases], dtype=np.float32)
    dm = xgb.DMatrix(X, feature_names=names, missing=np.nan)
    pred = booster.predict(dm)
    margin = booster.predict(dm, output_margin=True)
    contribs = booster.predict(dm, pred_contribs=True)
    print(f"{'case':>4} {'L':>7} {'A':>3} {'C':>4} {'E':>4} {'points':>6} {'xgboost':>8}  "
          f"contributions L A C E | bias")
    worst_contrib = worst_bias = 0.0
    for i, (case, x, points, parts) in enumerate(cases):
        if sum(parts) != points:
            problems.append(f"case {case}: the note's breakdown {parts} adds up to {sum(parts)}, not {points}")
        if pred[i] != np.float32(points) or margin[i] != np.float32(points):
            problems.append(f"case {case}: prediction {pred[i]!r} margin {margin[i]!r}, expected {points}")
        c = contribs[i]
        for j, p in enumerate(parts):
            worst_contrib = max(worst_contrib, abs(float(c[j]) - p))
            if abs(float(c[j]) - p) > TOLERANCE:
                problems.append(f"case {case}: contribution of {names[j]} {c[j]!r}, expected {p}")
        worst_bias = max(worst_bias, abs(float(c[-1])))
        if abs(float(c[-1])) > TOLERANCE:
            problems.append(f"case {case}: bias {c[-1]!r}, expected 0 within {TOLERANCE}")
        cells = " ".join(f"{v:>{w}g}" if not math.isnan(v) else f"{'-':>{w}}" for v, w in zip(x, (7, 3, 4, 4)))
        print(f"{case:>4} {cells} {points:>6} {pred[i]:>8g}  "
              f"{' '.join(f'{v:.6f}' for v in c[:-1])} | {c[-1]:.2e}")
    print(f"{len(cases)} cases: largest |contribution - points| {worst_contrib:.2e}, "
          f"largest |bias| {worst_bias:.2e} (tolerance {TOLERANCE:g})")
    return problems


def main():
    cases = read_cases(CASES)
    first, second = saved_by_xgboost(), saved_by_xgboost()
    if first != second:
        sys.exit("build.py: error: two builds of the model differ")
    model_path = os.path.join(HERE, "model.json")
    with open(model_path, "wb") as f:
        f.write(first)
    sha = hashlib.sha256(first).hexdigest()
    manifest = {**MANIFEST, "model_file": "model.json", "model_sha256": sha,
                "features": [{"name": n, "unit": u, "description": d} for n, u, d in FEATURES],
                "bands": BANDS}
    with open(os.path.join(HERE, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(model_path, ROOT)} (sha256 {sha}) and manifest.json; "
          f"XGBoost {xgb.__version__}")

    problems = verify(model_path, cases)
    if problems:
        for p in problems:
            sys.stderr.write(f"build.py: FAIL: {p}\n")
        sys.exit(1)
    print("ok: every prediction equals lace_points exactly, every contribution its part's points")


if __name__ == "__main__":
    main()
