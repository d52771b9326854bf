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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_models import (LOGISTIC, MODELS, NODE_WALK, NTHREAD, SPECS, Generated,  # noqa: E402
                           contribution_columns, margin_columns, prediction_columns, write_input)

BINARY = None
KEEP = None
TIMINGS = {}


# ---------------------------------------------------------------- checking

def prediction_tolerance(spec):
    if spec.objective == "multi:softmax":
        return "exact", 0.0
    if spec.objective in LOGISTIC or spec.objective == "multi:softprob":
        return "abs", 1e-6
    return "rel", 1e-5  # reg:squarederror, count:poisson, binary:logitraw (a margin)


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
        gen = Generated(spec, self.root, keep=bool(KEEP))
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
