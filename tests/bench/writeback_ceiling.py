#!/usr/bin/python3
"""The FHIR server's own ceiling for writing RiskAssessments: plain creates in batch Bundles.

Measured beside the adapter's write-back in the same benchmark run, so the adapter's rate can be
read against what the server itself sustains. Plain creates (`POST RiskAssessment` entries) are
the cheapest write the server accepts: no conditional search, no update. The RiskAssessments it
creates stay on the server, for real Patients, under their own identifier system (BENCH_SYSTEM):
a benchmark that counts RiskAssessments afterwards must leave that system out. Stdlib only.

    /usr/bin/python3 tests/bench/writeback_ceiling.py BASE_URL --count N [--batch 100] [--in-flight 4]

As a module: `plain_create_ceiling(base_url, resources, batch_size, in_flight)` and
`synthetic_risk_assessments(patient_ids, count)`.
"""
import argparse
import http.client
import json
import queue
import random
import sys
import threading
import time
import urllib.parse

# Not the adapter's identifier system: the adapter's conditional updates never match these.
BENCH_SYSTEM = "urn:fhir-risk-adapter:bench"
MODEL_SYSTEM = "urn:fhir-risk-adapter:model"
RISK_PROBABILITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
SCORE_EXTENSION = "urn:fhir-risk-adapter:extension:score-percentile"
BANDS = [(0.1, "low", "Low likelihood"), (0.3, "moderate", "Moderate likelihood"), (1.01, "high", "High likelihood")]


def synthetic_risk_assessments(patient_ids, count, seed=1, identifier_system=BENCH_SYSTEM):
    """`count` RiskAssessments shaped like the adapter's write-back, for the given Patient ids,
    with identifiers bench-<seed>-<n> (the same seed gives the same resources)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        p = rng.betavariate(1.2, 6)
        _, band, band_display = next(b for b in BANDS if p < b[0])
        hr = rng.randint(55, 125)
        out.append({
            "resourceType": "RiskAssessment",
            "identifier": [{"system": identifier_system, "value": f"bench-{seed}-{i:08d}"}],
            "status": "final",
            "subject": {"reference": f"Patient/{rng.choice(patient_ids)}"},
            "occurrenceDateTime": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00.000000Z",
            "method": {"coding": [{"system": MODEL_SYSTEM, "version": "1.0.0", "code": "readmission-risk",
                                   "display": "readmission-risk 1.0.0"}],
                       "text": "readmission-risk 1.0.0 (sha256 5f2c0a9e)"},
            "prediction": [{
                "extension": [{"url": SCORE_EXTENSION, "valueDecimal": round(rng.uniform(0, 100), 1)}],
                "outcome": {"coding": [{"system": "http://snomed.info/sct", "code": "417005",
                                        "display": "Hospital re-admission"}],
                            "text": "Hospital re-admission"},
                "probabilityDecimal": round(p, 9),
                "qualitativeRisk": {"coding": [{"system": RISK_PROBABILITY_SYSTEM, "code": band,
                                                "display": band_display}]},
            }],
            "note": [{"text": f"Hospital re-admission risk: {p * 100:.1f}% ({band_display}), readmission-risk "
                              f"1.0.0. Main factors: Heart rate {hr} /min (raises the risk); Oxygen saturation "
                              f"not recorded (raises the risk); Sex female (lowers the risk)."}],
        })
    return out


class _Connection:
    """One keep-alive connection to the server of `base_url`."""

    def __init__(self, base_url):
        url = urllib.parse.urlsplit(base_url)
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        self.conn = cls(url.hostname, url.port, timeout=300)
        self.path = url.path or "/"

    def request(self, method, path, body=None):
        """The decoded JSON answer; raises RuntimeError on a status other than 200."""
        headers = {"Accept": "application/fhir+json"}
        if body is not None:
            headers["Content-Type"] = "application/fhir+json"
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {r.status}")
        return json.loads(data)

    def close(self):
        self.conn.close()


def patient_ids(base_url, limit=1000):
    """Ids of up to `limit` (at most 1000) Patients on the server: one search page."""
    conn = _Connection(base_url)
    try:
        bundle = conn.request("GET", f"{conn.path}/Patient?_count={min(limit, 1000)}")
    finally:
        conn.close()
    ids = [e["resource"]["id"] for e in bundle.get("entry", [])]
    if not ids:
        raise RuntimeError(f"{base_url}: no Patient to refer to")
    return ids


def _batch_body(resources):
    return json.dumps({
        "resourceType": "Bundle", "type": "batch",
        "entry": [{"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in resources],
    }).encode()


def _check_created(answer, sent, first):
    """Raises RuntimeError unless `answer` is a batch-response with one 201 entry per resource."""
    entries = answer.get("entry", []) if answer.get("type") == "batch-response" else None
    if entries is None or len(entries) != sent:
        raise RuntimeError(f"batch at resource {first}: expected a batch-response with {sent} entries")
    for i, e in enumerate(entries):
        status = str((e or {}).get("response", {}).get("status", ""))
        if status.split(" ")[0] != "201":
            issue = ((e or {}).get("response", {}).get("outcome") or {}).get("issue") or [{}]
            raise RuntimeError(f"resource {first + i}: entry.response.status {status or 'missing'} "
                               f"(issue code {issue[0].get('code', '?')})")


def plain_create_ceiling(base_url, resources, batch_size=100, in_flight=4):
    """POSTs `resources` as plain creates in batch Bundles of `batch_size` entries, `in_flight`
    requests at a time over keep-alive connections, and returns dict(resources, seconds,
    per_second). Raises RuntimeError if any request or entry does not answer 201 Created."""
    if batch_size < 1 or in_flight < 1:
        raise ValueError("batch_size and in_flight must be at least 1")
    # Bodies are encoded before the clock starts: the ceiling is the server's, not this client's.
    work = queue.Queue()
    for first in range(0, len(resources), batch_size):
        chunk = resources[first:first + batch_size]
        work.put((first, len(chunk), _batch_body(chunk)))
    errors = []

    def worker():
        conn = _Connection(base_url)
        try:
            while not errors:
                try:
                    first, sent, body = work.get_nowait()
                except queue.Empty:
                    return
                _check_created(conn.request("POST", conn.path, body), sent, first)
        except Exception as e:  # reported by the caller's thread
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(min(in_flight, max(1, work.qsize())))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return {"resources": len(resources), "seconds": seconds, "per_second": len(resources) / seconds}


def main(argv=None):
    ap = argparse.ArgumentParser(description="The FHIR server's ceiling for plain RiskAssessment creates.")
    ap.add_argument("base_url", help="FHIR base URL, e.g. http://127.0.0.1:18080/fhir/R4")
    ap.add_argument("--count", type=int, required=True, help="RiskAssessments to create")
    ap.add_argument("--batch", type=int, default=100, help="entries per batch Bundle (default 100)")
    ap.add_argument("--in-flight", type=int, default=4, help="requests at a time (default 4)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the synthetic data (default 1)")
    args = ap.parse_args(argv)
    base = args.base_url.rstrip("/")
    resources = synthetic_risk_assessments(patient_ids(base), args.count, seed=args.seed)
    r = plain_create_ceiling(base, resources, args.batch, args.in_flight)
    print(f"plain creates: {r['resources']} RiskAssessments in {r['seconds']:.2f} s, {r['per_second']:.0f}/s "
          f"(batch {args.batch}, {args.in_flight} in flight)")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, OSError) as e:
        sys.exit(f"writeback_ceiling: {e}")
