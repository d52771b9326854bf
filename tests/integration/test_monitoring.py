#!/usr/bin/python3
"""Monitoring the model in production, from the store alone.

Two FHIR test servers of its own with 1,500 generated patients each (seed 7): one drawn as the
model's training population was, one shifted on purpose (`--shift`: 15 years older, twice the
chronic comorbidities at ten times the odds, a pulse oximeter reading 3 points low). Each is synced into a database
of its own, then `monitor report` is asked:

- the population stability index of the shifted features (age, oxygen saturation, the Charlson
  index, heart failure, COPD, chronic kidney disease) exceeds 0.25 and every other feature's stays under 0.1; on the
  unshifted population every feature's stays under 0.1;
- with outcomes drawn from the generator's known model, the AUC, Brier score and calibration
  slope and intercept the report gives equal those scikit-learn (Debian's python3-sklearn)
  computes from the adapter's own predictions at each discharge and the training export's
  labels, within 1e-6, for all patients and for women;
- `run` exports the figures in /metrics (fra_feature_psi, fra_model_auc, ...), computed at
  start, not on a scrape;
- the HTML report is one self-contained page whose every chart headless Chromium draws, loading
  nothing from outside (tests/check_report_chromium.py).

Run by tests/integration/run.sh or ctest; needs the shared PostgreSQL only.
"""
import csv
import json
import math
import os
import signal
import subprocess
import sys
import unittest

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from support import binary, database, free_port, model_dir, ok, work, write_config
from support.daemon import Daemon, value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIFTED = {"age_years", "oxygen_saturation", "charlson_index", "heart_failure", "copd", "chronic_kidney_disease"}


def server(name, *options):
    log = os.path.join(work(), f"{name}-fhir.log")
    base = subprocess.run(["bash", f"{ROOT}/deploy/fhir-sandbox.sh", str(free_port()), "1500", "7", log, *options],
                          check=True, capture_output=True, text=True).stdout.strip()
    with open(log + ".pid") as f:
        return base, int(f.read())


def report(cfg, name, fmt="json", since="2000-01-01"):
    path = os.path.join(work(), name)
    ok("monitor", "report", "--config", cfg, "--out", path, "--format", fmt, "--since", since)
    if fmt != "json":
        return path
    with open(path) as f:
        return json.load(f)


class Monitoring(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pids = []
        cls.cfg, cls.base = {}, {}
        for name, options in (("plain", ()), ("shifted", ("--shift",))):
            base, pid = server(name, *options)
            cls.pids.append(pid)
            cls.base[name] = base
            db = database(f"monitor_{name}")
            cls.cfg[name] = write_config(f"monitor-{name}.toml", fhir=base, db=db)
            ok("migrate", "--config", cls.cfg[name])
            ok("sync", "--once", "--config", cls.cfg[name])
        cls.reports = {name: report(cfg, f"{name}.json") for name, cfg in cls.cfg.items()}

    @classmethod
    def tearDownClass(cls):
        for pid in cls.pids:
            os.kill(pid, signal.SIGTERM)

    def psi(self, name):
        return {d["feature"]: d["psi"] for d in self.reports[name]["drift"]}

    def test_1_the_shifted_features_drift_and_no_other(self):
        plain, shifted = self.psi("plain"), self.psi("shifted")
        with open(os.path.join(model_dir(), "manifest.json")) as f:
            names = [x["name"] for x in json.load(f)["features"]]
        self.assertEqual(set(plain), set(names))
        self.assertEqual({k: v for k, v in plain.items() if not v < 0.1}, {})
        self.assertEqual({k: v for k, v in shifted.items() if k in SHIFTED and not v > 0.25}, {})
        self.assertEqual({k: v for k, v in shifted.items() if k not in SHIFTED and not v < 0.1}, {})
        print("\nPSI, shifted population: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(shifted.items())))

    def test_2_discrimination_and_calibration_equal_scikit_learns(self):
        cfg = self.cfg["plain"]
        export = os.path.join(work(), "plain-training.csv")
        ok("export-training", "--config", cfg, "--out", export)
        with open(export, newline="") as f:
            rows = list(csv.reader(f))
        header, rows = rows[0], rows[1:]
        features = header[2:-1]
        scored_in, scored_out = os.path.join(work(), "plain-x.csv"), os.path.join(work(), "plain-p.csv")
        with open(scored_in, "w", newline="") as f:
            csv.writer(f).writerows([features] + [r[2:-1] for r in rows])
        ok("score-csv", "--model", model_dir(), "--input", scored_in, "--output", scored_out)
        with open(scored_out, newline="") as f:
            p = np.array([float(r["probability"]) for r in csv.DictReader(f)])
        y = np.array([int(r[-1]) for r in rows])
        female = np.array([r[2 + features.index("sex_female")] == "1" for r in rows])
        perf = {g["group"]: g for g in self.reports["plain"]["performance"]}
        self.assertGreater(len(y), 300)
        for group, mask in (("all", np.ones(len(y), bool)), ("sex=female", female)):
            got = perf[group]
            self.assertEqual(got["n"], int(mask.sum()), group)
            self.assertEqual(got["events"], int(y[mask].sum()), group)
            self.assertAlmostEqual(got["auc"], roc_auc_score(y[mask], p[mask]), delta=1e-6, msg=group)
            self.assertAlmostEqual(got["brier"], brier_score_loss(y[mask], p[mask]), delta=1e-6, msg=group)
            logit = np.log(p[mask] / (1 - p[mask])).reshape(-1, 1)
            fit = LogisticRegression(penalty=None, tol=1e-12, max_iter=10000).fit(logit, y[mask])
            self.assertAlmostEqual(got["calibration_slope"], fit.coef_[0][0], delta=1e-6, msg=group)
            self.assertAlmostEqual(got["calibration_intercept"], fit.intercept_[0], delta=1e-6, msg=group)
        deciles = perf["all"]["deciles"]
        self.assertEqual(sum(d["n"] for d in deciles), len(y))
        self.assertAlmostEqual(sum(d["observed"] * d["n"] for d in deciles), y.sum(), delta=1e-6)
        print(f"\nlocal validation, {len(y)} discharges: AUC {perf['all']['auc']:.4f}, calibration slope "
              f"{perf['all']['calibration_slope']:.4f}, intercept {perf['all']['calibration_intercept']:.4f}")

    def test_3_run_exports_the_figures_it_computes_after_its_first_pass(self):
        port = free_port()
        db = database("monitor_metrics")
        cfg = write_config("monitor-run.toml", fhir=self.base["shifted"], db=db)
        with open(cfg, "a") as f:
            f.write(f'[http]\nlisten = "127.0.0.1:{port}"\n')
        ok("migrate", "--config", cfg)
        d = Daemon(cfg, port, "monitor-run.log")
        try:
            # Computed once the first pass has stored and scored everyone, then a day later.
            d.wait_until("the monitoring figures",
                         lambda: value(d.metrics()[0], "fra_monitor_computed_timestamp_seconds") > 0, timeout=180)
            m = d.metrics()[0]
            self.assertGreater(value(m, "fra_feature_psi", feature="age_years"), 0.25)
            self.assertLess(value(m, "fra_feature_psi", feature="heart_rate"), 0.1)
            self.assertGreater(value(m, "fra_feature_missing_ratio", feature="current_smoker"), 0)
            self.assertIn("monitoring: 1500 patients' latest scores", d.output())
        finally:
            d.stop()

    def test_4_the_html_report_draws_every_chart_and_loads_nothing(self):
        path = report(self.cfg["shifted"], "report.html", fmt="html")
        with open(path) as f:
            page = f.read()
        self.assertNotIn("Patient/", page)
        self.assertIn("readmission-risk", page)
        run = subprocess.run(["/usr/bin/python3", f"{ROOT}/tests/check_report_chromium.py", path],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
