#!/usr/bin/python3
"""Scores the hand-computed LACE table with the adapter and checks every case.

    /usr/bin/python3 tests/lace_table.py path/to/fhir-risk-adapter

Reads tests/data/lace_cases.csv (written by hand from the published LACE points; see
models/lace/README.md), writes its four feature columns under the package's feature names to a
temporary CSV (an empty cell is a missing value), runs

    <binary> score-csv --model models/lace --input <csv> --output <out> --margin --contributions

and checks, for every case:
- the score column equals lace_points exactly. The column is `points` or `score` if the output
  has one, else `prediction` (what score-csv writes today for a reg:squarederror model);
- `margin`, when present, equals lace_points too (the score is the model's margin);
- `contrib_<feature>`, when present, equals that part's points (the L+A+C+E breakdown at the
  start of the case's note) within 1e-4, and `contrib_bias` is 0 within 1e-4;
- the band, when the output has a `band` (or `band_code`) column: low below 5 points, moderate
  below 10, high from 10 (the cut-offs of models/lace/manifest.json).
Prints a table of the mismatches and exits 1 if there is any; exits 2 if the adapter could not
score the table (it prints why), 0 when every case matches.
"""
import csv
import math
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "tests", "data", "lace_cases.csv")
PACKAGE = os.path.join(ROOT, "models", "lace")
# Table column -> the package's feature name, in the model's order.
FEATURES = [
    ("length_of_stay_days", "lace_length_of_stay_days"),
    ("emergent_admission", "lace_emergent_admission"),
    ("charlson_index", "charlson_index"),
    ("emergency_visits_6m", "emergency_visits_6m"),
]
SCORE_COLUMNS = ("points", "score", "prediction")
BAND_COLUMNS = ("band", "band_code")
TOLERANCE = 1e-4


def band_of(points):
    return "low" if points < 5 else "moderate" if points < 10 else "high"


def read_cases():
    with open(CASES, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        m = re.match(r"L(\d+)\+A(\d+)\+C(\d+)\+E(\d+);", r["note"])
        if not m:
            sys.exit(f"lace_table.py: {CASES}: case {r['case']}: the note must start with Ln+An+Cn+En;")
        r["parts"] = [int(g) for g in m.groups()]
        r["points"] = int(r["lace_points"])
        if sum(r["parts"]) != r["points"]:
            sys.exit(f"lace_table.py: {CASES}: case {r['case']}: the breakdown does not add up to lace_points")
    return rows


def score(binary, cases, tmp):
    """The adapter's output rows (dicts), one per case, or None after printing why not."""
    src, out = os.path.join(tmp, "lace_features.csv"), os.path.join(tmp, "lace_scores.csv")
    with open(src, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([name for _, name in FEATURES])
        for r in cases:
            w.writerow([r[column] for column, _ in FEATURES])
    cmd = [binary, "score-csv", "--model", PACKAGE, "--input", src, "--output", out, "--margin", "--contributions"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"lace_table.py: the adapter could not score the table (exit {proc.returncode}):")
        print("  " + " ".join(cmd))
        for line in (proc.stderr + proc.stdout).strip().splitlines():
            print(f"  {line}")
        return None
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(cases):
        print(f"lace_table.py: {len(rows)} output rows for {len(cases)} cases")
        return None
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 tests/lace_table.py path/to/fhir-risk-adapter")
    cases = read_cases()
    with tempfile.TemporaryDirectory(prefix="lace-table.") as tmp:
        rows = score(sys.argv[1], cases, tmp)
    if rows is None:
        sys.exit(2)
    header = list(rows[0].keys()) if rows else []
    score_column = next((c for c in SCORE_COLUMNS if c in header), None)
    if score_column is None:
        print(f"lace_table.py: no score column ({', '.join(SCORE_COLUMNS)}) in the output: {','.join(header)}")
        sys.exit(2)
    band_column = next((c for c in BAND_COLUMNS if c in header), None)
    checks = [score_column] + (["margin"] if "margin" in header else [])
    contrib = [f"contrib_{name}" for _, name in FEATURES]
    has_contrib = all(c in header for c in contrib) and "contrib_bias" in header

    mismatches = []  # (case, what, got, expected)
    for case, row in zip(cases, rows):
        for column in checks:
            got = float(row[column])
            if got != case["points"]:
                mismatches.append((case["case"], column, row[column], case["points"]))
        if has_contrib:
            for column, part in zip(contrib, case["parts"]):
                got = float(row[column])
                if math.isnan(got) or abs(got - part) > TOLERANCE:
                    mismatches.append((case["case"], column, row[column], part))
            bias = float(row["contrib_bias"])
            if math.isnan(bias) or abs(bias) > TOLERANCE:
                mismatches.append((case["case"], "contrib_bias", row["contrib_bias"], 0))
        if band_column and row[band_column] != band_of(case["points"]):
            mismatches.append((case["case"], band_column, row[band_column], band_of(case["points"])))

    checked = ", ".join(checks + (["contrib_*"] if has_contrib else []) + ([band_column] if band_column else []))
    if not mismatches:
        print(f"ok: {len(cases)} LACE cases, {checked} as computed by hand")
        return
    print(f"{len(mismatches)} mismatches in {len({m[0] for m in mismatches})} of {len(cases)} cases "
          f"(checked {checked}):")
    print(f"{'case':>4}  {'LOS d':>6} {'A':>2} {'C':>3} {'E':>3}  {'column':<36} {'adapter':>12} {'by hand':>8}")
    by_case = {c["case"]: c for c in cases}
    for case_id, column, got, expected in mismatches:
        c = by_case[case_id]
        values = " ".join(f"{c[col] or '-':>{w}}" for (col, _), w in zip(FEATURES, (6, 2, 3, 3)))
        print(f"{case_id:>4}  {values}  {column:<36} {got:>12} {expected:>8}")
    sys.exit(1)


if __name__ == "__main__":
    main()
