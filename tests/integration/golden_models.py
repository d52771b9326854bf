"""The models check_evaluator_goldens.py scores and XGBoost's goldens for them.

Each Spec is trained with Debian's XGBoost 1.7 from deterministic seeds; probe rows are steered
down the trees' real paths (thresholds exactly, one float32 ulp either side, NaN, categorical
oddities) or carry extreme cells; the goldens are XGBoost's own predictions, margins and
contributions on those rows. Generated does all of it for one model in a folder of its own.
"""
import json
import os
import time

import numpy as np
import xgboost as xgb

NTHREAD = 1  # one OpenMP thread: spinning threads crawl when the cores are busy with other tests
F32 = np.float32
F32_MAX = np.finfo(np.float32).max
F32_DENORMAL = np.nextafter(F32(0), F32(1))  # 1.4e-45
MAX_CAT = 16777216  # XGBoost 1.7: a category value >= 2**24 (or < 0) is not a category

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


class Generated:
    """Everything generated for one model, in its own directory; with `keep`, the goldens too, as
    CSV files beside the model and its input."""

    def __init__(self, spec, root, keep=False):
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
        if keep:
            write_table(os.path.join(self.dir, "golden_predict.csv"), prediction_columns(spec), self.golden["predict"])
            write_table(os.path.join(self.dir, "golden_margin.csv"), margin_columns(spec), self.golden["margin"])
            write_table(os.path.join(self.dir, "golden_contributions.csv"), contribution_columns(spec, self.names),
                        self.golden["contributions"])
        self.seconds = time.monotonic() - t0
        self.train_seconds = t_train

