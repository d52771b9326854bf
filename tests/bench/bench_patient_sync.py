#!/usr/bin/python3
"""Per-patient sync against the FHIR test server's Oracle Health profile (patient-scoped searches,
a first Observation page of 50, If-Match updates; or `--profile epic`: no meta, pages of 200, a
new score Observation for a changed score), on a throwaway PostgreSQL, in one run:

1. the server's own ceiling: a client that walks the same three searches a patient
   (Patient?_id, Observation?patient&code&date, Encounter?patient&date, following next links)
   for every member of the cohort and does nothing with the pages;
2. the adapter's first `sync --once` (everything new: stored, scored, one score Observation
   created a patient): patients refreshed a second, against the ceiling;
3. a second sync with nothing new: requests a refreshed patient (target: at most 3);
4. a sync after new vital signs for one patient: that patient's requests, its refresh and the
   update of its score Observation (target: at most 4 for the refresh).
Request counts are the server's own (GET /admin/stats), not the adapter's.

    /usr/bin/python3 tests/bench/bench_patient_sync.py BUILD/fhir-risk-adapter [--patients N] [--profile epic]
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import time
import tomllib
import urllib.parse
import urllib.request

from sandbox import ROOT, adapter_config, fhir_server, postgresql, stop, work_folder

PANELS = {"http://loinc.org|85354-9": ["http://loinc.org|8480-6", "http://loinc.org|8462-4"],
          "http://loinc.org|55284-4": ["http://loinc.org|8480-6", "http://loinc.org|8462-4"]}


def get(url):
    with urllib.request.urlopen(url) as r:
        return json.load(r)


def admin(base, reset=False):
    origin = base.split("/fhir/")[0]
    req = urllib.request.Request(f"{origin}/admin/stats", method="POST" if reset else "GET",
                                 data=b'{"reset": true}' if reset else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def search_codes():
    with open(os.path.join(ROOT, "models/readmission-risk/features.toml"), "rb") as f:
        features = tomllib.load(f)["feature"]
    codes = {c for f in features if f.get("source") == "observation" for c in f.get("codes", [])}
    codes |= {panel for panel, parts in PANELS.items() if any(p in codes for p in parts)}
    return sorted(codes)


def walk(conn, url):
    """Reads a search's pages over one kept-alive connection (as the adapter's libcurl does), doing
    nothing with them; returns the requests it took."""
    requests = 0
    while url:
        parts = urllib.parse.urlsplit(url)
        conn.request("GET", f"{parts.path}?{parts.query}", headers={"Accept": "application/fhir+json"})
        page = json.loads(conn.getresponse().read())
        requests += 1
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    return requests


def ceiling(base, members, page_size):
    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=366)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    code = ",".join(urllib.parse.quote(c, safe="") for c in search_codes())
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(base).netloc)
    t0, requests = time.monotonic(), 0
    for pid in members:
        requests += walk(conn, f"{base}/Patient?_id={pid}")
        requests += walk(conn, f"{base}/Observation?patient={pid}&code={code}&date=ge{since}&_count={page_size}")
        requests += walk(conn, f"{base}/Encounter?patient={pid}&date=ge{since}&_count={page_size}")
    conn.close()
    return time.monotonic() - t0, requests


def sync(binary, cfg):
    run = subprocess.run([binary, "sync", "--once", "--config", cfg], check=True, capture_output=True, text=True)
    m = re.search(r"refreshed (\d+) patients with (\d+) requests .* in ([0-9.]+) s", run.stdout)
    return run.stdout, int(m.group(1)), int(m.group(2)), float(m.group(3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--profile", choices=["oracle", "epic"], default="oracle",
                    help="the test server's vendor profile (epic: pages of 200 from the first)")
    args = ap.parse_args()
    work = work_folder()
    pg, url = postgresql(work, 55981)
    base, log = fhir_server(work, 55983, args.patients, 42, "--profile", args.profile, "--group",
                           str(args.patients))
    try:
        cfg, key = adapter_config(work, base, url,
                                  '[sync]\nstrategy = "patient"\n[cohort]\ngroup_id = "cohort"\n'
                                  'patient_interval_seconds = 1\n[writeback]\ntarget = "observation"\n')
        subprocess.run([args.binary, "migrate", "--config", cfg], check=True, capture_output=True)
        members = [m["entity"]["reference"].split("/", 1)[1] for m in get(f"{base}/Group/cohort")["member"]]

        ceiling(base, members[:20], 200)  # the server warmed up (its JIT) before anything is timed
        walk_s, walk_requests = ceiling(base, members, 200)
        admin(base, reset=True)
        out, n, requests, seconds = sync(args.binary, cfg)
        print(out, end="")
        again_s, _ = ceiling(base, members, 200)  # and once more after: the faster of the two
        walk_s = min(walk_s, again_s)
        print(f"the server's ceiling: {len(members)} patients walked in {walk_s:.2f} s = "
              f"{len(members) / walk_s:.1f} patients/s ({walk_requests} requests; the faster of two walks, "
              f"before and after the sync)")
        print(f"first sync: {n} patients refreshed in {seconds:.2f} s = {n / seconds:.1f} patients/s; "
              f"sync / ceiling: {walk_s / seconds:.0%}")

        time.sleep(1.1)
        admin(base, reset=True)
        out, n, requests, seconds = sync(args.binary, cfg)
        s = admin(base)
        print(f"nothing new: {n} patients refreshed with {requests} requests = {requests / n:.2f} a patient "
              f"(server counted {s['requests']}, the Group read included; target at most 3) in {seconds:.2f} s "
              f"= {n / seconds:.1f} patients/s; / ceiling: {walk_s / seconds:.0%}")

        # New vital signs for one member; only that member due.
        pid = members[0]
        for code, value, unit in [("8867-4", 131, "/min"), ("9279-1", 29, "/min"), ("8310-5", 39.1, "Cel")]:
            obs = {"resourceType": "Observation", "status": "final",
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                             "code": "vital-signs"}]}],
                   "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                   "subject": {"reference": f"Patient/{pid}"},
                   "effectiveDateTime": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                                     "code": unit}}
            req = urllib.request.Request(f"{base}/Observation", data=json.dumps(obs).encode(), method="POST",
                                         headers={"Content-Type": "application/fhir+json"})
            urllib.request.urlopen(req).read()
        subprocess.run(["psql", url, "-X", "-q", "-c", "UPDATE cohort_member SET due_at = now() + interval '1 hour'"],
                       check=True)
        with open(key, "rb") as f:
            changed = hmac.new(f.read(), f"Patient/{pid}".encode(), hashlib.sha256).hexdigest()
        subprocess.run(["psql", url, "-X", "-q", "-c",
                        f"UPDATE cohort_member SET due_at = now() WHERE patient_key = '{changed}'"], check=True)
        admin(base, reset=True)
        out, n, requests, seconds = sync(args.binary, cfg)
        s = admin(base)
        print(out, end="")
        print(f"with a change: {n} patient refreshed with {requests} requests (target at most 4); the server "
              f"counted {s['requests']} in all ({json.dumps(s['byInteraction'])}), the Group read and the "
              f"score Observation's update included")
    finally:
        stop(pg, log)


if __name__ == "__main__":
    main()
