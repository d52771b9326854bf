#!/usr/bin/python3
"""Ingest throughput, in one run, on a throwaway PostgreSQL and the FHIR test server:

1. ndjson backfill against the ceiling of a plain COPY of the same rows into the same tables.
   Generates N vital-sign Observations (default 200,000) over N/40 patients as Bulk Data
   ndjson, backfills them, then copies the rows the backfill stored back into emptied tables
   with COPY: the ceiling, since it skips parsing, mapping, pseudonymising and merging. Prints
   both rates, their ratio and the backfill's peak resident memory.
2. sync from the FHIR test server (--patients, default 1000) against the server's own ceiling:
   the time a client that does nothing with the pages takes to walk the same searches.

    /usr/bin/python3 tests/bench/bench_ingest.py BUILD/fhir-risk-adapter [--observations N] [--patients P]
"""
import argparse
import json
import os
import random
import re
import subprocess
import time
import urllib.request

from sandbox import ROOT, adapter_config, postgresql, work_folder

VITALS = [("8867-4", "/min", 60, 110), ("9279-1", "/min", 10, 26), ("59408-5", "%", 88, 100),
          ("8310-5", "Cel", 36, 39.5), ("29463-7", "kg", 45, 120), ("39156-5", "kg/m2", 17, 40)]
# Every table the backfill fills row for row (input_version: one lineage row per version).
TABLES = ["resource_version", "patient", "observation_value", "input_version"]


def generate(folder, n_obs):
    rng = random.Random(7)
    n_pat = max(1, n_obs // 40)
    with open(os.path.join(folder, "1.Patient.ndjson"), "w") as f:
        for p in range(n_pat):
            f.write(json.dumps({"resourceType": "Patient", "id": f"p{p}",
                                "meta": {"versionId": "1", "lastUpdated": "2026-11-01T00:00:00.000Z"},
                                "gender": rng.choice(["female", "male"]),
                                "birthDate": f"{rng.randint(1930, 2005)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"})
                    + "\n")
    with open(os.path.join(folder, "2.Observation.ndjson"), "w") as f:
        for o in range(n_obs):
            code, unit, lo, hi = rng.choice(VITALS)
            f.write(json.dumps({
                "resourceType": "Observation", "id": f"o{o}",
                "meta": {"versionId": "1", "lastUpdated": "2026-11-01T00:00:00.000Z"}, "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                          "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/p{rng.randrange(n_pat)}"},
                "effectiveDateTime": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}T08:00:00Z",
                "valueQuantity": {"value": round(rng.uniform(lo, hi), 1), "unit": unit,
                                  "system": "http://unitsofmeasure.org", "code": unit}}) + "\n")
    return n_pat + n_obs


def psql(url, sql):
    return subprocess.run(["psql", url, "-X", "-A", "-t", "-q", "-c", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def walk(base, rtype, count):
    """Follows a search's next links, reading each page and nothing more; returns resources seen."""
    url, seen = f"{base}/{rtype}?_sort=_lastUpdated&_count={count}", 0
    while url:
        with urllib.request.urlopen(url) as r:
            page = json.load(r)
        seen += len(page.get("entry", []))
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    return seen


def sync_benchmark(args, work, url, cfg):
    log = os.path.join(work, "fhir.log")
    port = "55993"
    base = subprocess.run(["bash", f"{ROOT}/deploy/fhir-sandbox.sh", port, str(args.patients), "42", log],
                          check=True, capture_output=True, text=True).stdout.strip()
    try:
        t0 = time.monotonic()
        # Every type the adapter reads: the shipped features read Conditions too.
        seen = sum(walk(base, t, 200) for t in ("Patient", "Encounter", "Condition", "Observation"))
        walk_s = time.monotonic() - t0
        psql(url, "TRUNCATE resource_version, patient, observation_value, encounter, condition_code, "
                  "input_version, scoring_queue, dead_letter, alert, score, risk_assessment, sync_cursor")
        env = {**os.environ, "FRA_FHIR_BASE_URL": base}
        run = subprocess.run([args.binary, "sync", "--once", "--config", cfg], check=True, capture_output=True,
                             text=True, env=env)
        print("\n" + run.stdout, end="")
        ingest_s = sum(float(x) for x in re.findall(r" in ([0-9.]+) s  cursor", run.stdout))
        print(f"\nsync from the FHIR test server ({args.patients} patients): {seen} resources ingested in "
              f"{ingest_s:.2f} s = {seen / ingest_s:,.0f} resources/s")
        print(f"the server's own ceiling (a client that only reads the same pages): {walk_s:.2f} s = "
              f"{seen / walk_s:,.0f} resources/s; sync / ceiling: {walk_s / ingest_s:.0%}")
        return walk_s / ingest_s
    finally:
        with open(log + ".pid") as f:
            os.kill(int(f.read()), 15)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--observations", type=int, default=200000)
    ap.add_argument("--patients", type=int, default=1000)
    args = ap.parse_args()
    work = work_folder()
    pg, url = postgresql(work, 55991)
    try:
        folder = os.path.join(work, "ndjson")
        os.makedirs(folder)
        total = generate(folder, args.observations)
        cfg, _ = adapter_config(work, "http://127.0.0.1:9/fhir/R4", url)  # the sync sets its own
        subprocess.run([args.binary, "migrate", "--config", cfg], check=True, capture_output=True)

        t0 = time.monotonic()
        run = subprocess.run(["/usr/bin/time", "-v", args.binary, "backfill", "--ndjson", folder, "--config", cfg],
                             check=True, capture_output=True, text=True)
        backfill_s = time.monotonic() - t0
        peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
        print(run.stdout, end="")

        # The ceiling: the same rows, already mapped, COPYed into the same (emptied) tables.
        dumps = {}
        for t in TABLES:
            dumps[t] = os.path.join(work, f"{t}.copy")
            psql(url, f"\\copy {t} TO '{dumps[t]}'")
        psql(url, "TRUNCATE " + ", ".join(TABLES))
        t0 = time.monotonic()
        for t in TABLES:
            psql(url, f"\\copy {t} FROM '{dumps[t]}'")
        copy_s = time.monotonic() - t0

        rate = total / backfill_s
        ceiling = total / copy_s
        print(f"\nbackfill: {total} resources ({args.observations} Observations) in {backfill_s:.2f} s = "
              f"{rate:,.0f} resources/s, {args.observations / backfill_s:,.0f} Observations/s; "
              f"peak resident memory {peak_kb / 1024:.0f} MB")
        print(f"COPY of the same rows into the same tables (ceiling): {copy_s:.2f} s = {ceiling:,.0f} resources/s")
        print(f"backfill / ceiling: {rate / ceiling:.0%}")
        obs_rate = args.observations / backfill_s
        sync_ratio = sync_benchmark(args, work, url, cfg)
        print("\ntargets:")
        print(f"  backfill at least 50% of the COPY ceiling: {rate / ceiling:.0%}, "
              f"{'met' if rate >= 0.5 * ceiling else 'NOT met'}")
        print(f"  sync at least 60% of the read ceiling: {sync_ratio:.0%}, "
              f"{'met' if sync_ratio >= 0.6 else 'NOT met'}")
        print(f"  backfill at least 50,000 Observations/s: {obs_rate:,.0f}/s, "
              f"{'met' if obs_rate >= 50000 else 'NOT met'} (that is "
              f"{50000 / (ceiling * args.observations / total):.0%} of this run's COPY ceiling in Observations)")
    finally:
        subprocess.run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "stop", pg], check=False)
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
