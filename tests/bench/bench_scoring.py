#!/usr/bin/python3
"""Scoring and write-back throughput, in one run, on a throwaway PostgreSQL and the FHIR test server.

1. Store to scored: `sync --once` against the test server with P generated patients (default
   3,000); the scoring phase (read each queued patient's inputs, compute the feature vector,
   evaluate the model and its TreeSHAP contributions, store the score row, mark the write-back)
   in patients per second, with the share the feature computation took.
2. Write-back: the same sync's RiskAssessments written per second (batch Bundles of conditional
   updates, several in flight), beside the server's own ceiling for plain creates of the same
   RiskAssessments (batch Bundles of POSTs, as many in flight), measured next in the same run.

    /usr/bin/python3 tests/bench/bench_scoring.py BUILD/fhir-risk-adapter [--patients P] [--in-flight K]
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
from writeback_ceiling import plain_create_ceiling  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fhir_all(url):
    out = []
    while url:
        with urllib.request.urlopen(url) as r:
            page = json.load(r)
        out += [e["resource"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--patients", type=int, default=3000)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)

    work = tempfile.mkdtemp(prefix="fra-bench-scoring.")
    os.chmod(work, 0o755)
    pg = os.path.join(work, "pg")
    db = subprocess.run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "start", pg, str(free_port())], check=True,
                        capture_output=True, text=True).stdout.strip()
    log = os.path.join(work, "fhir.log")
    base = None
    try:
        base = subprocess.run(["bash", f"{ROOT}/deploy/fhir-sandbox.sh", str(free_port()), str(args.patients), "42", log],
                              check=True, capture_output=True, text=True).stdout.strip()
        key = os.path.join(work, "pseudonym.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)
        cfg = os.path.join(work, "adapter.toml")
        model = f"{ROOT}/models/readmission-risk"
        with open(cfg, "w") as f:
            f.write(f'[fhir]\nbase_url = "{base}"\n[database]\nurl = "{db}"\n[pseudonym]\nkey_file = "{key}"\n'
                    f'[model]\npath = "{model}"\n[features]\nfile = "{model}/features.toml"\n'
                    f'[writeback]\nbatch_size = {args.batch}\nin_flight = {args.in_flight}\n')
        subprocess.run([binary, "migrate", "--config", cfg], check=True, capture_output=True)
        out = subprocess.run([binary, "sync", "--once", "--config", cfg], check=True, capture_output=True,
                             text=True).stdout
        m = re.search(r"scored (\d+) patients .* in ([\d.]+) s \(features ([\d.]+) s, model ([\d.]+) s\)", out)
        w = re.search(r"RiskAssessments: (\d+) created, (\d+) updated, (\d+) failed in ([\d.]+) s", out)
        if not m or not w:
            sys.exit(f"unexpected sync output:\n{out}")
        scored, score_s, feat_s, model_s = int(m[1]), float(m[2]), float(m[3]), float(m[4])
        written, write_s = int(w[1]) + int(w[2]), float(w[4])
        if int(w[3]) != 0 or written != scored:
            sys.exit(f"write-back incomplete:\n{out}")

        # The ceiling: the same RiskAssessments again, as plain creates under another identifier.
        ras = [r for r in fhir_all(f"{base}/RiskAssessment?_count=1000")]
        for r in ras:
            r.pop("id", None)
            r.pop("meta", None)
            r["identifier"][0]["system"] = "urn:fhir-risk-adapter:bench-ceiling"
        ceiling = plain_create_ceiling(base, ras, batch_size=args.batch, in_flight=args.in_flight)

        print(f"patients {scored}, model {model}")
        print(f"store to scored: {scored / score_s:,.0f} patients/s ({score_s:.3f} s); feature computation "
              f"{feat_s:.3f} s = {100 * feat_s / score_s:.0f}%, model and TreeSHAP {model_s:.3f} s = "
              f"{100 * model_s / score_s:.0f}%, the rest is the database (reading inputs, writing score rows)")
        print(f"write-back: {written / write_s:,.0f} RiskAssessments/s ({write_s:.2f} s, batch Bundles of "
              f"{args.batch} conditional updates, {args.in_flight} in flight)")
        print(f"server ceiling, plain creates of the same RiskAssessments: {ceiling['per_second']:,.0f}/s "
              f"({ceiling['seconds']:.2f} s, batch Bundles of {args.batch}, {args.in_flight} in flight)")
        print(f"write-back / ceiling: {100 * written / write_s / ceiling['per_second']:.0f}%")
    finally:
        if base:
            with open(log + ".pid") as f:
                subprocess.run(["kill", f.read().strip()])
        subprocess.run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "stop", pg], capture_output=True)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
