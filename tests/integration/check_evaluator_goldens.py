#!/usr/bin/python3
"""score-csv against XGBoost's own outputs (the goldens) for every model kind the evaluator supports.

Each model is trained here with Debian's XGBoost 1.7 (deterministic seeds), saved as JSON and as
UBJSON, and scored by `score-csv` three times per format: predictions, `--margin` and
`--contributions` (plus once with both flags, JSON only, to check the column order). Predictions
and margins are also computed `--row-by-row` (the single-row path, with and without the AVX-512
walk), which must equal XGBoost and, to the bit, the batch run. The rows
are steered down real tree paths so that features sit exactly on split thresholds, one float32
ulp either side, on NaN; other rows carry ±inf, ±3.4e38, ±FLT_MAX, denormals and, for
categorical features, category ids that are seen, unseen, negative, fractional, huge or NaN.

    /usr/bin/python3 tests/integration/check_evaluator_goldens.py BINARY [--only NAME] [--keep DIR]

--only NAME   run only that model (repeatable, or comma separated; `malformed` is the
              malformed-model test); --list prints the names.
--keep DIR    write models, input CSVs, outputs and golden CSVs under DIR/NAME and keep them.

Tolerances: margins |a-b|/max(1,|b|) <= 1e-5; probabilities |a-b| <= 1e-6; regression, poisson
and logitraw predictions |a-b|/max(1,|b|) <= 1e-5; contributions |a-b| <= 1e-5*max(1,|b|);
multi:softmax class exactly.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import xgboost as xgb

BINARY = None
KEEP = None
NTHREAD = 1  # one OpenMP thread: spinning threads crawl when the cores are busy with other tests
F32 = np.float32
F32_MAX = np.finfo(np.float32).max
F32_DENORMAL = np.nextafter(F32(0), F32(1))  # 1.4e-45
MAX_CAT = 16777216  # XGBoost 1.7: a category value >= 2**24 (or < 0) is not a category
TIMINGS = {}

LOGISTIC = ("binary:logistic", "reg:logistic")


class Spec:
    """One model to train. `cards` puts categorical features (value = cardinality) at those columns."""

    def __init__(self, name, objective, rounds, depth, rows, features, nan, tree_method="hist",
                 names=True, probes=1200, contrib_rows=None, num_class=1, cards=None, eta=0.1,
                 base_score=None, extra=None, seed=0):
        self.name, self.objective, self.rounds, self.depth = name, objective, rounds, depth
        self.rows, self.features, self.nan, self.tree_method = rows, features, nan, tree_method
        self.names, self.probes, self.num_class, self.cards = names, probes, num_class, cards or {}
        self.contrib_rows = contrib_rows if contrib_rows is not None else probes
        self.eta, self.base_score, self.extra, self.seed = eta, base_score, extra or {}, seed


MODELS = [
    Spec("logistic_200x6", "binary:logistic", 200, 6, 5000, 20, 0.10, tree_method="exact",
         probes=2000, contrib_rows=300, seed=1),
    Spec("logistic_1000x8", "binary:logistic", 1000, 8, 3000, 20, 0.10, names=False, probes=1000,
         contrib_rows=250, extra={"min_child_weight": 0.2}, seed=2),
    Spec("regression", "reg:squarederror", 150, 6, 4000, 15, 0.10, base_score="mean", probes=1500,
         contrib_rows=300, seed=3),
    Spec("softprob3", "multi:softprob", 60, 5, 3000, 12, 0.10, tree_method="approx", num_class=3,
         names=False, probes=1200, contrib_rows=300, seed=4),
    Spec("softmax4", "multi:softmax", 40, 4, 3000, 10, 0.10, num_class=4, probes=1200,
         contrib_rows=300, seed=5),
    Spec("categorical", "binary:logistic", 120, 6, 5000, 10, 0.10, cards={1: 3, 3: 8, 4: 20, 7: 20},
         probes=2000, contrib_rows=300, extra={"max_cat_to_onehot": 1}, seed=6),
    Spec("sparse_missing", "binary:logistic", 150, 6, 5000, 20, 0.65, probes=1500, contrib_rows=300,
         seed=7),
    Spec("logitraw", "binary:logitraw", 60, 4, 2000, 10, 0.10, names=False, probes=1000, seed=8),
    Spec("reg_logistic", "reg:logistic", 60, 4, 2000, 10, 0.10, base_score="mean", probes=1000, seed=9),
    Spec("poisson", "count:poisson", 80, 4, 2000, 10, 0.10, probes=1000, seed=10),
    Spec("forest3", "binary:logistic", 8, 6, 2000, 12, 0.10, eta=1.0, probes=1000,
         extra={"num_parallel_tree": 3, "subsample": 0.8, "colsample_bynode": 0.8}, seed=11),
    Spec("forest_softprob", "multi:softprob", 6, 4, 2000, 10, 0.10, num_class=3, probes=1000,
         extra={"num_parallel_tree": 2, "subsample": 0.8, "colsample_bynode": 0.8}, seed=12),
]
SPECS = {s.name: s for s in MODELS}
# Models the compact layout refuses (beside categorical ones): padded to complete trees of
# depth 8, the sparse trees of logistic_1000x8 would take more memory than its own nodes.
NODE_WALK = {"logistic_1000x8"}


# ---------------------------------------------------------------- training data and models

def numeric_column(rng, n, j):
    """Features of very different scales so thresholds and their ulps vary in magnitude."""
    kind = j % 5
    if kind == 0:
        return rng.normal(0, 1, n)
    if kind == 1:
        return rng.lognormal(4, 0.6, n)       # lab-value scale
    if kind == 2:
        return rng.integers(18, 95, n)        # integer valued (age)
    if kind == 3:
        return rng.normal(0, 1e-3, n)         # tiny scale
    return rng.uniform(-5e4, 5e4, n)          # large scale


def training_data(spec, rng):
    n, p = spec.rows, spec.features
    X = np.empty((n, p), np.float32)
    for j in range(p):
        X[:, j] = rng.integers(0, spec.cards[j], n) if j in spec.cards else numeric_column(rng, n, j)
    Z = np.zeros((n, p))
    for j in range(p):
        if j in spec.cards:
            Z[:, j] = rng.normal(0, 1.5, spec.cards[j])[X[:, j].astype(int)]
        else:
            col = X[:, j].astype(np.float64)
            Z[:, j] = (col - col.mean()) / (col.std() + 1e-30)

    def score(w_seed):
        w = np.random.default_rng(w_seed).normal(0, 1, p)
        return (Z @ w) / np.sqrt(p) + 0.8 * Z[:, 0] * Z[:, 1 % p] + np.sin(2 * Z[:, 2 % p]) + (Z[:, 3 % p] > 0.5)

    s = score(spec.seed)
    obj = spec.objective
    if obj == "binary:logistic" or obj == "binary:logitraw":
        y = (s + rng.normal(0, 1, n) > 0).astype(np.float32)
    elif obj == "reg:logistic":
        y = (1 / (1 + np.exp(-(s + rng.normal(0, 0.5, n))))).astype(np.float32)
    elif obj == "reg:squarederror":
        y = (3 * s + 10 + rng.normal(0, 1, n)).astype(np.float32)
    elif obj == "count:poisson":
        y = rng.poisson(np.exp(0.5 * s + 0.5)).astype(np.float32)
    else:  # multi-class
        scores = np.stack([score(spec.seed * 100 + g) for g in range(spec.num_class)], axis=1)
        y = np.argmax(scores + rng.gumbel(0, 0.7, scores.shape), axis=1).astype(np.float32)
    X[rng.random(X.shape) < spec.nan] = np.nan
    return X, y


def feature_names(spec):
    if not spec.names:
        return None
    base = ["age", "creatinine", "sodium", "hba1c", "bmi", "heart_rate", "systolic_bp", "ldl", "crp",
            "albumin", "los_days", "prior_admits", "ed_visits", "egfr", "potassium", "glucose",
            "hemoglobin", "wbc", "platelets", "inr"]
    cat = ["ward", "admit_source", "diagnosis_group", "discharge_code"]
    out, ci = [], 0
    for j in range(spec.features):
        if j in spec.cards:
            out.append(cat[ci % len(cat)] + ("" if ci < len(cat) else f"_{ci}"))
            ci += 1
        else:
            out.append(base[j % len(base)] + ("" if j < len(base) else f"_{j}"))
    return out


def feature_types(spec):
    if not spec.cards:
        return None
    return ["c" if j in spec.cards else "q" for j in range(spec.features)]


def train(spec):
    rng = np.random.default_rng(spec.seed)
    X, y = training_data(spec, rng)
    params = {"objective": spec.objective, "max_depth": spec.depth, "eta": spec.eta,
              "tree_method": spec.tree_method, "nthread": NTHREAD, "seed": spec.seed}
    if spec.num_class > 1:
        params["num_class"] = spec.num_class
    if spec.base_score == "mean":
        params["base_score"] = float(np.mean(y))
    params.update(spec.extra)
    dtrain = xgb.DMatrix(X, label=y, missing=np.nan, feature_names=feature_names(spec),
                         feature_types=feature_types(spec), enable_categorical=bool(spec.cards),
                         nthread=NTHREAD)
    booster = xgb.train(params, dtrain, num_boost_round=spec.rounds)
    booster.set_param({"nthread": NTHREAD})
    return booster, X


# ---------------------------------------------------------------- model structure

class Tree:
    def __init__(self, t):
        self.left, self.right = t["left_children"], t["right_children"]
        self.feat, self.cond = t["split_indices"], t["split_conditions"]
        self.default_left = t["default_left"]
        self.split_type = t.get("split_type") or [0] * len(self.left)
        self.cats = {}
        segs, sizes, cats = t.get("categories_segments", []), t.get("categories_sizes", []), t.get("categories", [])
        for node, seg, size in zip(t.get("categories_nodes", []), segs, sizes):
            self.cats[node] = set(cats[seg:seg + size])

    def goes_left(self, i, x):
        """Only used to steer probe rows down real paths; the goldens come from XGBoost itself.

        XGBoost 1.7, as observed on its own predictions: NaN follows default_left (categorical
        splits too); a categorical value goes right only when it is in [0, 2**24) and its
        truncation is a listed category, so -0.0 is category 0, 2.7 is 2, -0.5 goes left (not
        category 0), and unseen, negative, huge and ±inf values go left.
        """
        if np.isnan(x):
            return bool(self.default_left[i])
        if self.split_type[i] == 1:
            if not (x >= 0 and x < MAX_CAT):
                return True
            return int(x) not in self.cats.get(i, set())
        return bool(F32(x) < F32(self.cond[i]))


def model_structure(path):
    with open(path) as f:
        model = json.load(f)
    trees = [Tree(t) for t in model["learner"]["gradient_booster"]["model"]["trees"]]
    thresholds, cat_sets = {}, {}
    depth = 0
    for tr in trees:
        stack = [(0, 0)]
        while stack:
            i, d = stack.pop()
            depth = max(depth, d)
            if tr.left[i] == -1:
                continue
            if tr.split_type[i] == 1:
                cat_sets.setdefault(tr.feat[i], []).append(tr.cats.get(i, set()))
            else:
                thresholds.setdefault(tr.feat[i], set()).add(F32(tr.cond[i]))
            stack += [(tr.left[i], d + 1), (tr.right[i], d + 1)]
    return model, trees, thresholds, cat_sets, depth


# ---------------------------------------------------------------- probe rows

NUMERIC_EXTREMES = [F32(np.inf), F32(-np.inf), F32(3.4e38), F32(-3.4e38), F32_MAX, -F32_MAX,
                    F32_DENORMAL, -F32_DENORMAL, F32(-0.0)]


def categorical_values(card, in_set, rng):
    """Category-ish inputs: in the split set, truncating onto it, seen but not in it, unseen, negative, huge."""
    s = sorted(in_set) or [0]
    member = F32(rng.choice(s))
    others = [c for c in range(card) if c not in in_set] or [card]
    return [member, member, member + F32(0.5), member + F32(0.999), F32(rng.choice(others)),
            F32(card), F32(card + 7), F32(31), F32(32), F32(63), F32(64), F32(1000), F32(65536),
            F32(-0.0), F32(-0.5), F32(-0.999), F32(-1), F32(-3), F32(2.7), F32(0.5),
            F32(MAX_CAT - 1), F32(MAX_CAT), F32(1e10), F32(3.4e38), F32_MAX,
            F32(np.nan), F32(np.inf), F32(-np.inf)]


def numeric_at_threshold(t, rng):
    k = rng.random()
    if k < 0.35:
        return t
    if k < 0.6:
        return np.nextafter(t, F32(-np.inf))
    if k < 0.85:
        return np.nextafter(t, F32(np.inf))
    return F32(np.nan)


def probe_rows(spec, X_train, trees, thresholds, cat_sets, rng):
    """Fixed extreme rows, then rows steered down a random tree's path (exact thresholds, ulps,
    NaN, categorical oddities at the nodes actually visited), then rows with extreme cells."""
    p = spec.features
    fixed = [np.full(p, v, np.float32) for v in
             (np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, F32_MAX, -F32_MAX, 0.0, -0.0, F32_DENORMAL)]
    n = spec.probes - len(fixed)
    X = X_train[rng.integers(0, len(X_train), n)].copy()
    for r in range(n):
        if r % 4 != 3:
            tr = trees[rng.integers(0, len(trees))]
            assigned = set()
            i = 0
            while tr.left[i] != -1:
                j = tr.feat[i]
                if j not in assigned:
                    assigned.add(j)
                    if tr.split_type[i] == 1:
                        vals = categorical_values(spec.cards.get(j, 20), tr.cats.get(i, set()), rng)
                        X[r, j] = vals[rng.integers(0, len(vals))]
                    else:
                        X[r, j] = numeric_at_threshold(F32(tr.cond[i]), rng)
                i = tr.left[i] if tr.goes_left(i, X[r, j]) else tr.right[i]
        else:
            for j in rng.choice(p, size=min(p, int(rng.integers(1, 4))), replace=False):
                if j in spec.cards:
                    sets = cat_sets.get(j, [set()])
                    vals = categorical_values(spec.cards[j], sets[rng.integers(0, len(sets))], rng)
                else:
                    vals = NUMERIC_EXTREMES
                X[r, j] = vals[rng.integers(0, len(vals))]
    return np.vstack([np.array(fixed), X]).astype(np.float32)


# ---------------------------------------------------------------- goldens

def prediction_columns(spec):
    if spec.objective == "multi:softprob":
        return [f"prob_{g}" for g in range(spec.num_class)]
    if spec.objective == "multi:softmax":
        return ["class"]
    return ["probability"] if spec.objective in LOGISTIC else ["prediction"]


def margin_columns(spec):
    return [f"margin_{g}" for g in range(spec.num_class)] if spec.num_class > 1 else ["margin"]


def contribution_columns(spec, names):
    if spec.num_class == 1:
        return [f"contrib_{f}" for f in names] + ["contrib_bias"]
    return [c for g in range(spec.num_class) for c in [f"contrib_{g}_{f}" for f in names] + [f"contrib_{g}_bias"]]


def prediction_tolerance(spec):
    if spec.objective == "multi:softmax":
        return "exact", 0.0
    if spec.objective in LOGISTIC or spec.objective == "multi:softprob":
        return "abs", 1e-6
    return "rel", 1e-5  # reg:squarederror, count:poisson, binary:logitraw (a margin)


def as_table(a, n):
    return np.asarray(a, dtype=np.float64).reshape(n, -1)


def goldens(spec, booster, X, n_contrib, has_cat):
    n = len(X)
    g = {"predict": as_table(booster.inplace_predict(X), n),
         "margin": as_table(booster.inplace_predict(X, predict_type="margin"), n)}
    # DMatrix refuses ±inf ("Input data contains `inf`"), in-place prediction takes them. For the
    # contributions ±inf become ±FLT_MAX: no finite threshold separates the two (checked below),
    # and both are out of range as a category, so every tree takes the same path.
    Xc = X[:n_contrib].copy()
    Xc[Xc == np.inf] = F32_MAX
    Xc[Xc == -np.inf] = -F32_MAX
    same = booster.inplace_predict(Xc, predict_type="margin")
    assert np.array_equal(as_table(same, n_contrib), g["margin"][:n_contrib]), "inf -> FLT_MAX changed a margin"
    dm = xgb.DMatrix(Xc, missing=np.nan, feature_names=booster.feature_names,
                     feature_types=booster.feature_types, enable_categorical=has_cat, nthread=NTHREAD)
    g["contributions"] = as_table(booster.predict(dm, pred_contribs=True), n_contrib)
    return g


def write_table(path, columns, table):
    with open(path, "w") as f:
        f.write(",".join(columns) + "\n")
        for row in table:
            f.write(",".join(f"{v:.9g}" for v in row) + "\n")


def write_input(path, names, X, rng):
    """Feature columns shuffled, with two extra columns the CLI must ignore."""
    order = list(rng.permutation(len(names)))
    header = ["row_id"] + [names[j] for j in order]
    header.insert(len(header) // 2 + 1, "note")
    note_at = header.index("note")
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r, row in enumerate(X):
            cells = [str(r)] + ["" if np.isnan(row[j]) else repr(float(row[j])) for j in order]
            cells.insert(note_at, f"n{r % 7}")
            f.write(",".join(cells) + "\n")


def read_output(path):
    with open(path) as f:
        lines = f.read().splitlines()
    header = lines[0].split(",") if lines else []
    rows = []
    for k, line in enumerate(lines[1:], start=2):
        if line.strip():
            try:
                rows.append([float(c) for c in line.split(",")])
            except ValueError:
                raise AssertionError(f"{path} line {k}: not numbers: {line[:200]!r}")
    return header, rows


# ---------------------------------------------------------------- the tests

class Generated:
    """Everything generated for one model, in its own directory."""

    def __init__(self, spec, root):
        t0 = time.monotonic()
        self.spec = spec
        self.dir = os.path.join(root, spec.name)
        os.makedirs(self.dir, exist_ok=True)
        booster, X_train = train(spec)
        t_train = time.monotonic() - t0
        self.paths = {"json": os.path.join(self.dir, "model.json"), "ubj": os.path.join(self.dir, "model.ubj")}
        booster.save_model(self.paths["json"])
        booster.save_model(self.paths["ubj"])
        self.model, trees, thresholds, cat_sets, self.max_depth = model_structure(self.paths["json"])
        self.n_trees = len(trees)
        self.n_nodes = sum(len(t.left) for t in trees)
        self.cat_nodes = [(t, i) for t in trees for i, s in enumerate(t.split_type) if s == 1 and t.left[i] != -1]
        assert not any(abs(v) == F32_MAX for vs in thresholds.values() for v in vs), "threshold at ±FLT_MAX"
        self.names = feature_names(spec) or [f"f{j}" for j in range(spec.features)]
        rng = np.random.default_rng(1000 + spec.seed)
        self.X = probe_rows(spec, X_train, trees, thresholds, cat_sets, rng)
        self.n_contrib = min(spec.contrib_rows, len(self.X))
        self.input = os.path.join(self.dir, "probe.csv")
        self.input_contrib = os.path.join(self.dir, "probe_contributions.csv")
        write_input(self.input, self.names, self.X, rng)
        write_input(self.input_contrib, self.names, self.X[:self.n_contrib], rng)
        self.golden = goldens(spec, booster, self.X, self.n_contrib, bool(spec.cards))
        # Both saved files must be the same model as far as XGBoost is concerned.
        for fmt, path in self.paths.items():
            again = xgb.Booster(params={"nthread": NTHREAD}, model_file=path)
            m = as_table(again.inplace_predict(self.X, predict_type="margin"), len(self.X))
            assert np.array_equal(m, self.golden["margin"]), f"{spec.name}: reloaded {fmt} predicts differently"
        if KEEP:
            write_table(os.path.join(self.dir, "golden_predict.csv"), prediction_columns(spec), self.golden["predict"])
            write_table(os.path.join(self.dir, "golden_margin.csv"), margin_columns(spec), self.golden["margin"])
            write_table(os.path.join(self.dir, "golden_contributions.csv"), contribution_columns(spec, self.names),
                        self.golden["contributions"])
        self.seconds = time.monotonic() - t0
        self.train_seconds = t_train


class EvaluatorGoldens(unittest.TestCase):
    root = None

    @classmethod
    def setUpClass(cls):
        if KEEP:
            cls.root = KEEP
            os.makedirs(KEEP, exist_ok=True)
        else:
            cls.root = tempfile.mkdtemp(prefix="evaluator-goldens-")

    @classmethod
    def tearDownClass(cls):
        if not KEEP:
            shutil.rmtree(cls.root, ignore_errors=True)

    # -- helpers

    def score_csv(self, model, inp, out, flags, timeout=300, env=None):
        cmd = [BINARY, "score-csv", "--model", model, "--input", inp, "--output", out, *flags]
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               env=None if env is None else {**os.environ, **env})
        finally:
            TIMINGS["score-csv"] = TIMINGS.get("score-csv", 0.0) + time.monotonic() - t0
        return p

    @staticmethod
    def mismatches(what, columns, got, expected, kind, tol, row_offset=0):
        """None when every value is within tolerance, else a message naming rows, columns and values."""
        got = np.asarray(got, dtype=np.float64)
        if kind == "exact":
            err = np.where(got == expected, 0.0, np.inf)
        else:
            scale = 1.0 if kind == "abs" else np.maximum(1.0, np.abs(expected))
            with np.errstate(invalid="ignore"):
                err = np.abs(got - expected) / scale
            err[np.isnan(err) & ~(np.isnan(got) & np.isnan(expected))] = np.inf
            err[np.isnan(got) & np.isnan(expected)] = 0.0
            # Equal infinities compare equal.
            err[np.isinf(got) & (got == expected)] = 0.0
        bad = err > tol
        if not bad.any():
            return None
        rows, cols = np.nonzero(bad)
        r, c = np.unravel_index(int(np.argmax(err)), err.shape)
        lines = [f"{what}: {int(bad.sum())} of {bad.size} values off ({kind} tolerance {tol:g}); "
                 f"worst: row {r + row_offset}, column {columns[c]}: score-csv {got[r, c]!r}, "
                 f"xgboost {expected[r, c]!r}"]
        for rr, cc in list(zip(rows, cols))[:5]:
            lines.append(f"  row {rr + row_offset}, column {columns[cc]}: score-csv {got[rr, cc]!r}, "
                         f"xgboost {expected[rr, cc]!r}")
        return "\n".join(lines)

    def run_and_check(self, gen, fmt, mode, row_by_row=None):
        """row_by_row: None for batches, else the environment of a --row-by-row run."""
        spec = gen.spec
        what = f"{spec.name} [{fmt}] {mode}"
        pred_cols = prediction_columns(spec)
        flags, inp, n = [], gen.input, len(gen.X)
        if row_by_row is not None:
            flags.append("--row-by-row")
            what += " row by row" + "".join(f" {k}={v}" for k, v in row_by_row.items())
        expected_cols = list(pred_cols)
        if mode in ("margin", "margin+contributions"):
            flags.append("--margin")
            expected_cols += margin_columns(spec)
        if mode in ("contributions", "margin+contributions"):
            flags.append("--contributions")
            expected_cols += contribution_columns(spec, gen.names)
            inp, n = gen.input_contrib, gen.n_contrib
        batch_out = os.path.join(gen.dir, f"out_{fmt}_{mode.replace('+', '_')}.csv")
        out = batch_out
        if row_by_row is not None:
            out = batch_out.replace(".csv", "_rows" + "".join(f"_{k}{v}" for k, v in row_by_row.items()) + ".csv")
        p = self.score_csv(gen.paths[fmt], inp, out, flags, env=row_by_row)
        self.assertEqual(p.returncode, 0, f"{what}: score-csv {' '.join(flags)} exited {p.returncode}: "
                                          f"{p.stderr.strip()[:500]}")
        header, rows = read_output(out)
        self.assertEqual(header, expected_cols, f"{what}: output columns")
        self.assertEqual(len(rows), n, f"{what}: {len(rows)} output rows for {n} input rows")
        table = np.array(rows, dtype=np.float64).reshape(n, len(expected_cols))
        kind, tol = prediction_tolerance(spec)
        problems = [self.mismatches(what + " prediction", pred_cols, table[:, :len(pred_cols)],
                                    gen.golden["predict"][:n], kind, tol)]
        at = len(pred_cols)
        if "--margin" in flags:
            cols = margin_columns(spec)
            problems.append(self.mismatches(what + " margin", cols, table[:, at:at + len(cols)],
                                            gen.golden["margin"][:n], "rel", 1e-5))
            at += len(cols)
        if "--contributions" in flags:
            cols = contribution_columns(spec, gen.names)
            problems.append(self.mismatches(what + " contributions", cols, table[:, at:at + len(cols)],
                                            gen.golden["contributions"], "rel", 1e-5))
        if row_by_row is not None:
            # `audit rescore` recomputes one row at a time what the daemon scored in batches,
            # and compares exactly: the two paths must agree to the bit. (Batches go through the
            # same compact layout, row by row, when the model has one.)
            _, batch_rows = read_output(batch_out)
            batch = np.array(batch_rows, dtype=np.float64).reshape(n, len(expected_cols))
            same = (table == batch) | (np.isnan(table) & np.isnan(batch))
            if not same.all():
                r, c = np.argwhere(~same)[0]
                problems.append(f"{what}: {int((~same).sum())} values differ from the batch run; first: row {r}, "
                                f"column {expected_cols[c]}: {table[r, c]!r} row by row, {batch[r, c]!r} in a batch")
        problems = [p for p in problems if p]
        if problems:
            self.fail("\n".join(problems))

    def check_model(self, name):
        spec = SPECS[name]
        gen = Generated(spec, self.root)
        TIMINGS[name] = {"generate": gen.seconds, "train": gen.train_seconds}
        sys.stderr.write(f"\n  {name}: {spec.objective}, {gen.n_trees} trees (max depth {gen.max_depth}, "
                         f"{gen.n_nodes} nodes, {len(gen.cat_nodes)} categorical splits), {len(gen.X)} rows "
                         f"({gen.n_contrib} for contributions), generated in {gen.seconds:.1f}s ... ")
        if spec.cards:
            self.assertTrue(gen.cat_nodes, f"{name}: no categorical (split_type 1) node in the saved model")
            self.assertTrue(any(0 in t.cats.get(i, ()) for t, i in gen.cat_nodes),
                            f"{name}: no categorical split sends category 0 right (-0.5 vs 0 untested)")
            self.assertTrue(any(not t.default_left[i] for t, i in gen.cat_nodes),
                            f"{name}: no categorical split sends missing right")
        # Which layout scores the model: the compact one unless the model has categorical splits or
        # its padded trees would outgrow its own nodes (the sparse 1000-tree model). Asserted, so
        # that a golden cannot silently stop testing the layout it is meant to.
        p = subprocess.run([BINARY, "model", "inspect", gen.paths["json"]], capture_output=True, text=True)
        scoring = next((l for l in p.stdout.splitlines() if l.startswith("scoring")), "")
        sys.stderr.write(f"[{scoring.split(None, 1)[-1] if scoring else 'no scoring line'}] ")
        expect_node_walk = bool(spec.cards) or name in NODE_WALK
        self.assertIn("node walk" if expect_node_walk else "compact layout", scoring, f"{name}: model inspect")
        t0 = time.monotonic()
        for fmt in ("json", "ubj"):
            for mode in ("predict", "margin", "contributions"):
                with self.subTest(format=fmt, output=mode):
                    self.run_and_check(gen, fmt, mode)
        with self.subTest(format="json", output="margin+contributions"):
            self.run_and_check(gen, "json", "margin+contributions")
        # The single-row path, with the vector walk where the CPU has it and without (FRA_SIMD=0).
        for fmt in ("json", "ubj"):
            with self.subTest(format=fmt, output="margin, row by row"):
                self.run_and_check(gen, fmt, "margin", row_by_row={})
        with self.subTest(format="ubj", output="margin, row by row, portable walk"):
            self.run_and_check(gen, "ubj", "margin", row_by_row={"FRA_SIMD": "0"})
        TIMINGS[name]["score-csv"] = time.monotonic() - t0

    # -- malformed models

    def test_malformed(self):
        """Broken model files: a small positive exit code, one line on stderr, no crash, no hang."""
        work = os.path.join(self.root, "malformed")
        os.makedirs(work, exist_ok=True)
        rng = np.random.default_rng(99)
        X = rng.normal(size=(400, 4)).astype(np.float32)
        X[:, 1] = rng.integers(0, 10, 400)
        y = (X[:, 0] + (X[:, 1] % 3 == 0) > 0.3).astype(np.float32)
        params = {"objective": "binary:logistic", "max_depth": 3, "nthread": NTHREAD, "tree_method": "hist"}
        num = xgb.train(params, xgb.DMatrix(X, label=y), 3)
        cat = xgb.train(dict(params, max_cat_to_onehot=1),
                        xgb.DMatrix(X, label=y, feature_types=["q", "c", "q", "q"], enable_categorical=True), 3)
        for b, stem in ((num, "num"), (cat, "cat")):
            b.save_model(os.path.join(work, stem + ".json"))
            b.save_model(os.path.join(work, stem + ".ubj"))
        inp = os.path.join(work, "in.csv")
        write_input(inp, [f"f{j}" for j in range(4)], X[:20], rng)

        def load(stem):
            with open(os.path.join(work, stem + ".json")) as f:
                return json.load(f)

        def trees(m):
            return m["learner"]["gradient_booster"]["model"]["trees"]

        def internal_non_root(t):
            return next(i for i in range(1, len(t["left_children"])) if t["left_children"][i] != -1)

        with open(os.path.join(work, "num.ubj"), "rb") as f:
            ubj = f.read()
        cases = {}
        cases["truncated.ubj"] = ubj[:len(ubj) // 2]
        cases["truncated_header.ubj"] = ubj[:7]
        key = b"left_children[$l#L"
        at = ubj.find(key)
        self.assertGreater(at, 0, "UBJSON layout: left_children typed array not found")
        first = at + len(key) + 8  # int64 count, then big-endian int32 items
        cases["child_out_of_range.ubj"] = ubj[:first] + (10 ** 6).to_bytes(4, "big", signed=True) + ubj[first + 4:]
        m = load("num")
        t = trees(m)[0]
        t["left_children"][0] = len(t["left_children"]) + 10
        cases["child_out_of_range.json"] = json.dumps(m)
        m = load("num")
        trees(m)[1]["right_children"][0] = -7
        cases["negative_child.json"] = json.dumps(m)
        m = load("num")
        t = trees(m)[0]
        t["left_children"][internal_non_root(t)] = 0
        cases["child_cycle.json"] = json.dumps(m)
        m = load("num")
        trees(m)[0]["split_indices"][0] = 4 + 3
        cases["feature_out_of_range.json"] = json.dumps(m)
        m = load("cat")
        t = next(t for t in trees(m) if t["categories_nodes"])
        t["categories_segments"][0] = len(t["categories"]) + 1000
        cases["category_segment_out_of_range.json"] = json.dumps(m)
        text = json.dumps(load("num"))
        cases["truncated.json"] = text[:len(text) // 2]
        cases["empty.json"] = ""

        for name, content in cases.items():
            with self.subTest(model=name):
                path = os.path.join(work, name)
                with open(path, "wb") as f:
                    f.write(content.encode() if isinstance(content, str) else content)
                out = os.path.join(work, "out_" + name + ".csv")
                try:
                    p = self.score_csv(path, inp, out, [], timeout=60)
                except subprocess.TimeoutExpired:
                    self.fail(f"{name}: score-csv still running after 60 s")
                msg = p.stderr.strip()
                self.assertTrue(0 < p.returncode < 126,
                                f"{name}: exit status {p.returncode} (want a small positive code); "
                                f"stderr {msg[:300]!r}")
                self.assertTrue(msg, f"{name}: nothing on stderr")
                self.assertEqual(len(msg.splitlines()), 1, f"{name}: stderr is not one line: {msg[:500]!r}")


for _spec in MODELS:
    setattr(EvaluatorGoldens, f"test_{_spec.name}", lambda self, _n=_spec.name: self.check_model(_n))


def main():
    global BINARY, KEEP
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary", nargs="?")
    ap.add_argument("--only", action="append", default=[], metavar="NAME")
    ap.add_argument("--keep", metavar="DIR")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    names = [s.name for s in MODELS] + ["malformed"]
    if args.list:
        print("\n".join(names))
        return 0
    if not args.binary:
        ap.error("BINARY is required")
    BINARY = os.path.abspath(args.binary)
    KEEP = os.path.abspath(args.keep) if args.keep else None
    only = [n for arg in args.only for n in arg.split(",") if n]
    unknown = [n for n in only if n not in names]
    if unknown:
        ap.error(f"unknown model {', '.join(unknown)} (known: {', '.join(names)})")
    order = only or names
    suite = unittest.TestSuite(EvaluatorGoldens(f"test_{n}") for n in order)
    t0 = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    total = time.monotonic() - t0
    gen = sum(v["generate"] for v in TIMINGS.values() if isinstance(v, dict))
    sys.stderr.write(f"generation (training, probes, goldens) {gen:.1f}s, score-csv runs "
                     f"{TIMINGS.get('score-csv', 0.0):.1f}s, total {total:.1f}s\n")
    if KEEP:
        sys.stderr.write(f"kept in {KEEP}\n")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
