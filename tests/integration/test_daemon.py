#!/usr/bin/python3
"""`fhir-risk-adapter run`, the daemon, against the real FHIR test server and PostgreSQL.

- /healthz, /readyz and /metrics; /metrics parses as Prometheus text (prometheus_client's own
  parser) and every metric moves when it should.
- SIGHUP with a broken model package: refused, the old model goes on scoring; a good one is
  taken.
- SIGTERM in the middle of a first sync: exit 0 within 10 s, and finishing the sync afterwards
  gives exactly the store of an uninterrupted sync.
- Subscription mode: rest-hook Subscriptions registered on the server; the time from an
  Observation create to the updated RiskAssessment on the server, p50 and p95 over 200 changes;
  with notifications switched off on the server, changes still arrive through the safety-net
  poll; a clean stop removes the Subscriptions.

Run by tests/integration/run.sh or ctest, against the shared servers, in databases of its own.
"""
import json
import os
import shutil
import signal
import statistics
import time
import unittest
import urllib.error
import urllib.request

import numpy as np
import xgboost as xgb

from support import (RA_SYSTEM, adapter, database, faults, fhir_all, fhir_get, fhir_origin, fhir_post, free_port,
                     model_dir, pseudonym, psql, sql, table_hashes, vital_sign, work, write_config)
from support.daemon import Daemon, daemon_config, value

METRICS = ["fra_database_errors_total", "fra_resources_ingested_total", "fra_resources_dead_lettered_total", "fra_sync_lag_seconds",
           "fra_queue_depth", "fra_scores_total", "fra_scoring_seconds", "fra_writeback_seconds",
           "fra_fhir_http_responses_total", "fra_fhir_retries_total", "fra_notifications_total",
           "fra_model_reloads_total", "fra_model_info", "fra_risk_assessments_written_total", "fra_sync_errors_total"]


def write_secret():
    path = os.path.join(work(), "notify.secret")
    with open(path, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(path, 0o600)
    return path


def ra_of(identifier):
    found = fhir_get(f"RiskAssessment?identifier={RA_SYSTEM}|{identifier}").get("entry", [])
    return found[0]["resource"] if found else None


def flipping_patients(db, n):
    """(patient id, RiskAssessment identifier) of n patients whose probability differs between
    their stored heart rate, one of 40 and one of 170 /min, by XGBoost on their stored features
    (the tests move each from its stored rate to 40, then to 170)."""
    with open(os.path.join(model_dir(), "manifest.json")) as f:
        names = [x["name"] for x in json.load(f)["features"]]
    booster = xgb.Booster(model_file=os.path.join(model_dir(), "model.json"))
    out = []
    for p in fhir_all("Patient?_count=500"):
        key = pseudonym("Patient", p["id"])
        rows = sql(f"SELECT ra.identifier, s.features::text FROM risk_assessment ra JOIN score s ON "
                   f"s.id = ra.written_score_id WHERE ra.patient_key = '{key}'", db)
        if not rows:
            continue
        feats = json.loads(rows[0][1])
        x = np.array([[np.nan if feats[k] is None else feats[k] for k in names]] * 3, dtype=np.float32)
        x[1, names.index("heart_rate")], x[2, names.index("heart_rate")] = 40, 170
        stored, p40, p170 = booster.inplace_predict(x)
        if abs(p40 - p170) > 1e-3 and abs(stored - p40) > 1e-3:
            out.append((p["id"], rows[0][0]))
        if len(out) == n:
            return out
    raise AssertionError(f"only {len(out)} patients whose score a heart rate moves")


class DaemonTests(unittest.TestCase):
    def test_1_probes_metrics_and_sighup(self):
        db = database("probes")
        cfg = write_config("daemon-migrate.toml", db=db)
        self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        model = os.path.join(work(), "daemon-model")
        shutil.copytree(model_dir(), model)
        port = free_port()
        cfg = daemon_config("daemon.toml", db, port)
        with open(cfg) as f:
            text = f.read().replace(json.dumps(model_dir()), json.dumps(model), 1)
        with open(cfg, "w") as f:
            f.write(text)
        d = Daemon(cfg, port, "daemon.log")
        try:
            d.wait_until("/healthz", lambda: d.get("/healthz")[0] == 200)
            patients = len(fhir_all("Patient?_count=500"))
            d.wait_until("the first sync", lambda: d.idle(patients), timeout=120)
            status, body = d.get("/readyz")
            self.assertEqual(status, 200, body)
            self.assertEqual(body.split("\n")[:3], ["database ok", "fhir ok", "model loaded"])
            m, text = d.metrics()
            for name in METRICS:
                self.assertIn(f"# TYPE {name} ", text, name)
            self.assertGreaterEqual(value(m, "fra_resources_ingested_total", type="Patient"), patients)
            self.assertGreater(value(m, "fra_resources_ingested_total", type="Observation"), 1000)
            self.assertEqual(sum(v for (n, _), v in m.items() if n == "fra_scores_total"), patients)
            self.assertGreater(value(m, "fra_fhir_http_responses_total", code="200"), 10)
            self.assertGreater(value(m, "fra_scoring_seconds_count"), 0)
            self.assertGreater(value(m, "fra_writeback_seconds_count"), 0)
            self.assertEqual(value(m, "fra_queue_depth"), 0)
            info = [dict(l) for (n, l), v in m.items() if n == "fra_model_info" and v == 1]
            self.assertEqual(len(info), 1)
            self.assertRegex(info[0]["model"], r"^readmission-risk \S+ sha256:[0-9a-f]{64}$")

            # A change moves the counters, the band counts and the written RiskAssessments.
            patient, identifier = flipping_patients(db, 1)[0]
            fhir_post(vital_sign(patient, "8867-4", 40, "/min"))  # a known start: the newest
            d.wait_until("the start", lambda: value(d.metrics()[0], "fra_resources_ingested_total",
                                                    type="Observation") > value(m, "fra_resources_ingested_total",
                                                                                type="Observation"))
            d.wait_until("the start scored", lambda: value(d.metrics()[0], "fra_queue_depth") == 0)
            time.sleep(0.5)
            m, _ = d.metrics()
            before = ra_of(identifier)
            fhir_post(vital_sign(patient, "8867-4", 170, "/min"))
            d.wait_until("the change written", lambda: ra_of(identifier)["meta"]["versionId"] !=
                         before["meta"]["versionId"])
            m2, _ = d.metrics()
            self.assertEqual(value(m2, "fra_resources_ingested_total", type="Observation"),
                             value(m, "fra_resources_ingested_total", type="Observation") + 1)
            self.assertEqual(sum(v for (n, _), v in m2.items() if n == "fra_scores_total"),
                             sum(v for (n, _), v in m.items() if n == "fra_scores_total") + 1)
            self.assertEqual(value(m2, "fra_risk_assessments_written_total", result="updated"),
                             value(m, "fra_risk_assessments_written_total", result="updated") + 1)
            self.assertLess(value(m2, "fra_sync_lag_seconds", type="Observation"), 10)

            # An Observation in a unit no feature converts: a dead letter, counted (on top of those
            # other modules left on the shared server, which the first sync met).
            dead = value(d.metrics()[0], "fra_resources_dead_lettered_total", type="Observation")
            fhir_post(vital_sign(patient, "8867-4", 80, "kg"))
            d.wait_until("the dead letter", lambda: value(d.metrics()[0], "fra_resources_dead_lettered_total",
                                                          type="Observation") == dead + 1)
            # Faults on the server: retried, counted, and 503s among the statuses.
            faults(0.5, 0)
            try:
                d.wait_until("retries", lambda: value(d.metrics()[0], "fra_fhir_retries_total") >= 3)
            finally:
                faults(0, 0)
            m3, _ = d.metrics()
            self.assertGreater(value(m3, "fra_fhir_http_responses_total", code="503") +
                               value(m3, "fra_fhir_http_responses_total", code="429"), 0)

            # The database connection cut under it: it reconnects and goes on.
            psql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            d.wait_until("the reconnection", lambda: "database: connected again" in d.output())
            self.assertGreaterEqual(value(d.metrics()[0], "fra_database_errors_total"), 1)

            # SIGHUP with a broken model package: refused; the old model goes on scoring.
            with open(os.path.join(model, "model.json"), "a") as f:
                f.write(" ")  # no longer the file the manifest's sha256 names
            d.proc.send_signal(signal.SIGHUP)
            d.wait_until("the reload refused", lambda: value(d.metrics()[0], "fra_model_reloads_total",
                                                             result="refused") == 1)
            self.assertIn("model reload refused; still serving readmission-risk", d.output())
            before = ra_of(identifier)
            time.sleep(1)  # a later effective time than the 170 above
            fhir_post(vital_sign(patient, "8867-4", 40, "/min"))
            d.wait_until("the change written", lambda: ra_of(identifier)["meta"]["versionId"] !=
                         before["meta"]["versionId"])
            after = ra_of(identifier)
            self.assertEqual(after["method"]["coding"][0]["version"], before["method"]["coding"][0]["version"])
            self.assertNotEqual(after["prediction"][0]["probabilityDecimal"],
                                before["prediction"][0]["probabilityDecimal"])

            # A good package (a new version of it) is taken.
            shutil.copy(os.path.join(model_dir(), "model.json"), os.path.join(model, "model.json"))
            with open(os.path.join(model, "manifest.json")) as f:
                manifest = json.load(f)
            manifest["version"] = "9.9.9"
            with open(os.path.join(model, "manifest.json"), "w") as f:
                json.dump(manifest, f)
            d.proc.send_signal(signal.SIGHUP)
            d.wait_until("the reload", lambda: value(d.metrics()[0], "fra_model_reloads_total", result="ok") == 1)
            info = [dict(l)["model"] for (n, l), v in d.metrics()[0].items() if n == "fra_model_info" and v == 1]
            self.assertEqual(len(info), 1)
            self.assertTrue(info[0].startswith("readmission-risk 9.9.9 "), info)
        finally:
            code, seconds = d.stop()
        self.assertEqual(code, 0, d.output()[-2000:])
        self.assertLess(seconds, 10)
        self.assertIn("stopped", d.output())

    def test_2_sigterm_mid_sync_leaves_nothing_half_written(self):
        reference, interrupted = database("reference"), database("interrupted")
        for db in (reference, interrupted):
            self.assertEqual(adapter("migrate", "--config", write_config("term-migrate.toml", db=db)).returncode, 0)
        run = adapter("sync", "--once", "--config", write_config("term-ref.toml", db=reference))
        self.assertEqual(run.returncode, 0, run.stderr)
        port = free_port()
        cfg = daemon_config("term.toml", interrupted, port)
        faults(0, 25)  # every request 25 ms slower: the first sync takes several seconds
        try:
            d = Daemon(cfg, port, "term.log")
            # Encounters done: the Observations (50 pages of 100, each 25 ms slower) are being stored,
            # and the patients stored so far wait on the queue.
            d.wait_until("ingest under way",
                         lambda: value(d.metrics()[0], "fra_resources_ingested_total", type="Encounter") > 0)
            self.assertGreater(value(d.metrics()[0], "fra_queue_depth"), 0)
            code, seconds = d.stop()
        finally:
            faults(0, 0)
        self.assertEqual(code, 0, d.output()[-2000:])
        self.assertLess(seconds, 10)
        self.assertIn("SIGTERM: finishing the work in hand, then stopping", d.output())
        # It stopped in the middle: the rest is still to do.
        rest = adapter("sync", "--once", "--config", write_config("term-rest.toml", db=interrupted))
        self.assertEqual(rest.returncode, 0, rest.stderr)
        self.assertRegex(rest.stdout, r"Observation +fetched +\d+ +stored +[1-9]")
        self.assertEqual(table_hashes(interrupted), table_hashes(reference))

    def test_3_subscription_latency_and_safety_net(self):
        db = database("subscription")
        self.assertEqual(adapter("migrate", "--config", write_config("sub-migrate.toml", db=db)).returncode, 0)
        secret = write_secret()
        port = free_port()
        cfg = daemon_config("sub.toml", db, port,
                            f'mode = "subscription"\nsafety_net_seconds = 3\n[subscription]\nshape = "r4"\n'
                            f'endpoint = "http://127.0.0.1:{port}/notify"\nsecret_file = "{secret}"\n')
        d = Daemon(cfg, port, "sub.log")
        try:
            d.wait_until("the first sync", lambda: d.idle(len(fhir_all("Patient?_count=500"))), timeout=120)
            ours = [s for s in fhir_all("Subscription?_count=100")
                    if s.get("channel", {}).get("endpoint", "").startswith(f"http://127.0.0.1:{port}/notify")]
            self.assertEqual(sorted(s["criteria"] for s in ours), ["Condition", "Encounter", "Observation", "Patient"])
            self.assertTrue(all(s["status"] == "active" for s in ours))
            # A notification without the secret is refused.
            req = urllib.request.Request(f"http://127.0.0.1:{port}/notify/Observation", data=b"", method="POST")
            with self.assertRaises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(req)
            self.assertEqual(refused.exception.code, 401)

            pairs = flipping_patients(db, 20)
            # Every one of them at 40 /min first (not timed), so that each change below moves a score.
            for patient, _ in pairs:
                fhir_post(vital_sign(patient, "8867-4", 40, "/min"))
            time.sleep(1)
            d.wait_until("the warm-up scored", lambda: value(d.metrics()[0], "fra_queue_depth") == 0)
            time.sleep(0.5)
            # Watched by id (a read), not by identifier (a search), so that watching costs the server little.
            ids = {identifier: ra_of(identifier)["id"] for _, identifier in pairs}
            latencies = []
            for i in range(200):
                patient, identifier = pairs[i % len(pairs)]
                before = fhir_get(f"RiskAssessment/{ids[identifier]}")["meta"]["versionId"]
                hr = 40 if i // len(pairs) % 2 else 170
                t0 = time.monotonic()
                fhir_post(vital_sign(patient, "8867-4", hr, "/min"))
                end = t0 + 10
                while time.monotonic() < end:
                    if fhir_get(f"RiskAssessment/{ids[identifier]}")["meta"]["versionId"] != before:
                        latencies.append(time.monotonic() - t0)
                        break
                    time.sleep(0.002)
            changed = len(latencies)
            m, _ = d.metrics()
            self.assertGreater(value(m, "fra_notifications_total", result="accepted"), 150)
            self.assertEqual(value(m, "fra_notifications_total", result="refused"), 1)

            # Notifications off on the server: the safety net (3 s here) still brings changes in.
            urllib.request.urlopen(urllib.request.Request(f"{fhir_origin()}/admin/notifications", method="POST",
                                                          data=json.dumps({"enabled": False}).encode(),
                                                          headers={"Content-Type": "application/json"})).read()
            accepted = value(d.metrics()[0], "fra_notifications_total", result="accepted")
            slow = []
            for patient, identifier in pairs[:3]:
                before = ra_of(identifier)
                hr = 40 if 200 // len(pairs) % 2 else 170  # the other value than the last change's
                t0 = time.monotonic()
                fhir_post(vital_sign(patient, "8867-4", hr, "/min"))
                d.wait_until("the safety-net poll", lambda: ra_of(identifier)["meta"]["versionId"] !=
                             before["meta"]["versionId"], timeout=15)
                slow.append(time.monotonic() - t0)
            self.assertEqual(value(d.metrics()[0], "fra_notifications_total", result="accepted"), accepted)
        finally:
            urllib.request.urlopen(urllib.request.Request(f"{fhir_origin()}/admin/notifications", method="POST",
                                                          data=json.dumps({"enabled": True}).encode(),
                                                          headers={"Content-Type": "application/json"})).read()
            code, seconds = d.stop()
        self.assertEqual(code, 0, d.output()[-2000:])
        left = [s for s in fhir_all("Subscription?_count=100")
                if s.get("channel", {}).get("endpoint", "").startswith(f"http://127.0.0.1:{port}/notify")]
        self.assertEqual(left, [], "a clean stop removes the Subscriptions")
        self.assertEqual(changed, 200, f"only {changed} of 200 changes reached the server within 10 s")
        p50, p95 = statistics.median(latencies), sorted(latencies)[int(0.95 * len(latencies)) - 1]
        print(f"\nsubscription mode, FHIR create to updated RiskAssessment, 200 changes: p50 {1000 * p50:.0f} ms, "
              f"p95 {1000 * p95:.0f} ms, max {1000 * max(latencies):.0f} ms; notifications off, through the "
              f"3 s safety-net poll: {', '.join(f'{s:.1f} s' for s in slow)}")
        self.assertLess(p95, 0.5)

    def test_4_backport_topic_when_the_server_offers_one(self):
        db = database("backport")
        self.assertEqual(adapter("migrate", "--config", write_config("bp-migrate.toml", db=db)).returncode, 0)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}/notify"
        cfg = daemon_config("bp.toml", db, port,
                            f'mode = "subscription"\nsafety_net_seconds = 300\n[subscription]\n'
                            f'endpoint = "{endpoint}"\nsecret_file = "{write_secret()}"\n[log]\nformat = "json"\n')
        d = Daemon(cfg, port, "bp.log")
        try:
            d.wait_until("the first sync", lambda: d.idle(len(fhir_all("Patient?_count=500"))), timeout=120)
            ours = [s for s in fhir_all("Subscription?_count=100") if s.get("channel", {}).get("endpoint") == endpoint]
            self.assertEqual(len(ours), 1)
            self.assertEqual(ours[0]["criteria"], "http://fhir-risk-adapter.test/SubscriptionTopic/clinical-data")
            self.assertIn("Subscriptions Backport", d.output())
            self.assertIn('"message":"subscribed to the topic ', d.output())
            # A change arrives by notification: the safety net is 300 s away.
            patient, identifier = flipping_patients(db, 1)[0]
            rid = ra_of(identifier)["id"]
            m, _ = d.metrics()
            for hr in (40, 170):
                before = fhir_get(f"RiskAssessment/{rid}")["meta"]["versionId"]
                fhir_post(vital_sign(patient, "8867-4", hr, "/min"))
                d.wait_until("the notified change", lambda: fhir_get(f"RiskAssessment/{rid}")["meta"]["versionId"] !=
                             before, timeout=10)
                time.sleep(0.2)
            m2, _ = d.metrics()
            self.assertGreaterEqual(value(m2, "fra_notifications_total", result="accepted") -
                                    value(m, "fra_notifications_total", result="accepted"), 2)
        finally:
            code, _ = d.stop()
        self.assertEqual(code, 0, d.output()[-2000:])
        self.assertEqual([s for s in fhir_all("Subscription?_count=100")
                          if s.get("channel", {}).get("endpoint") == endpoint], [])
        # log.format = "json": every line one JSON object with a time, a level and a message.
        lines = d.output().splitlines()
        self.assertGreater(len(lines), 5)
        for line in lines:
            event = json.loads(line)
            self.assertEqual(sorted(event), ["level", "message", "time"], line)
            self.assertRegex(event["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(event["level"], ["info", "warning", "error"])
        self.assertIn("stopped", [json.loads(line)["message"] for line in lines])


if __name__ == "__main__":
    unittest.main(verbosity=2)
