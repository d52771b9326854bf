#!/usr/bin/python3
"""CDS Hooks patient-view latency, in one run: `run` with the CDS Hooks service on, a throwaway
PostgreSQL and the FHIR test server (200 patients); one patient's prefetch built as an EHR would
(tests/cds-client), then N calls (default 1,000) each with a token of its own (ES384), over one
kept-alive connection, timed by the caller. Beside them, the ceiling: parsing the same request
body alone, N times, with RapidJSON as the service does (build/tests/bench_json_parse).

    /usr/bin/python3 tests/bench/bench_cds.py BUILD/fhir-risk-adapter [--calls N]
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

from sandbox import ROOT, adapter_config, fhir_server, postgresql, stop, work_folder

CLIENT = os.path.join(ROOT, "tests", "cds-client")
SERVICE = "readmission-risk"

PREPARE = """
import { loadIssuer, token, discover, prefetchFor, patientViewRequest, serviceUrl } from './client.mjs';
const [dir, base, fhir, patient, n] = process.argv.slice(1);
const issuer = await loadIssuer(dir);
const d = await discover(base);
const templates = d.json.services.find((s) => s.id === 'SERVICE').prefetch;
const prefetch = await prefetchFor(fhir, patient, templates);
const body = patientViewRequest({ fhirServer: fhir, patientId: patient, userId: 'Practitioner/bench', prefetch });
const tokens = [];
for (let i = 0; i < Number(n); i++) tokens.push(await token(issuer, { aud: serviceUrl(base, 'SERVICE') }));
process.stdout.write(JSON.stringify({ body, tokens }));
""".replace("SERVICE", SERVICE)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()
    build = os.path.dirname(os.path.abspath(args.binary))
    work = work_folder()
    pg, url = postgresql(work, 55971)
    fhir, log = fhir_server(work, 55973, 200)
    daemon = None
    try:
        issuer = os.path.join(work, "issuer")
        subprocess.run(["node", "client.mjs", "issuer", "--alg", "ES384", "--iss", "https://ehr.bench", "--kid",
                        "k1", "--out", issuer], cwd=CLIENT, check=True, capture_output=True)
        with open(os.path.join(work, "issuers.json"), "w") as f:
            json.dump([{"iss": "https://ehr.bench", "jwks_file": os.path.join(issuer, "jwks.json")}], f)
        base = "http://127.0.0.1:55975"
        cfg, _ = adapter_config(work, fhir, url,
                                '[http]\nlisten = "127.0.0.1:55975"\n[sync]\nobservation_interval_seconds = 3600\n'
                                'encounter_interval_seconds = 3600\npatient_interval_seconds = 3600\n'
                                f'[cds_hooks]\nenabled = true\nbase_url = "{base}"\nissuers_file = "issuers.json"\n')
        subprocess.run([args.binary, "migrate", "--config", cfg], check=True, capture_output=True)
        subprocess.run([args.binary, "sync", "--once", "--config", cfg], check=True, capture_output=True)
        daemon = subprocess.Popen([args.binary, "run", "--config", cfg], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz").read()
                break
            except OSError:
                time.sleep(0.1)
        with urllib.request.urlopen(fhir + "/Patient?_count=1") as r:
            patient = json.load(r)["entry"][0]["resource"]["id"]
        prepared = json.loads(subprocess.run(["node", "--input-type=module", "-e", PREPARE, issuer, base, fhir,
                                              patient, str(args.calls + 50)],
                                             cwd=CLIENT, check=True, capture_output=True, text=True).stdout)
        body = json.dumps(prepared["body"]).encode()
        body_file = os.path.join(work, "request.json")
        with open(body_file, "wb") as f:
            f.write(body)

        conn = http.client.HTTPConnection("127.0.0.1", 55975)
        conn.connect()
        # As an EHR's client does: a request's headers and body are not held back for an ACK.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for i, tok in enumerate(prepared["tokens"]):
            t0 = time.perf_counter()
            conn.request("POST", f"/cds-services/{SERVICE}", body=body,
                         headers={"Content-Type": "application/json", "Authorization": "Bearer " + tok})
            resp = conn.getresponse()
            answer = resp.read()
            elapsed = (time.perf_counter() - t0) * 1000
            assert resp.status == 200, (resp.status, answer[:200])
            if i >= 50:  # the first 50 warm the connection and the caches
                times.append(elapsed)
        card = json.loads(answer)["cards"][0]
        ceiling = json.loads(subprocess.run([os.path.join(build, "tests", "bench_json_parse"), body_file,
                                             str(args.calls)], check=True, capture_output=True,
                                            text=True).stdout)
        print(f"request: {len(body):,} bytes ({len(prepared['body']['prefetch'])} prefetch keys); "
              f"card: {card['summary']}")
        print(f"patient-view with prefetch, {len(times)} calls: p50 {percentile(times, 50):.2f} ms, "
              f"p95 {percentile(times, 95):.2f} ms (target p95 under 20 ms), max {max(times):.2f} ms")
        print(f"the ceiling, parsing the same body alone: p50 {ceiling['p50_us'] / 1000:.3f} ms, "
              f"p95 {ceiling['p95_us'] / 1000:.3f} ms; the call / parsing at p50: "
              f"{percentile(times, 50) * 1000 / ceiling['p50_us']:.0f}x")
    finally:
        if daemon:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        stop(pg, log)


if __name__ == "__main__":
    main()
