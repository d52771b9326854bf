"""The CDS Hooks service of `run`, called as an EHR calls it: the in-repo client
(tests/cds-client, npm jose and ajv) signs ES384 and RS384 JWTs, fills the prefetch from the FHIR
test server, and checks every answer against the CDS Hooks schemas. A card's probability must
equal the stored score of the same patient after a `sync --once` of the same data, to the bit.
"""
import functools
import http.server
import json
import os
import subprocess
import threading
import unittest
import urllib.error
import urllib.request

from support import database, fhir_base, fhir_get, free_port, ok, pseudonym, sql, work, write_config
from support.daemon import Daemon, value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT = os.path.join(ROOT, "tests", "cds-client", "client.mjs")
SERVICE = "readmission-risk"
PATIENTS = 30


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def client(*args):
    run = subprocess.run(["node", CLIENT, *args], capture_output=True, text=True, timeout=60)
    return run.returncode, (json.loads(run.stdout) if run.stdout.strip() else None), run.stderr


class CdsHooks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = database("cds")
        # Two issuers: one with its JWK set in a file, one publishing it at a jku URL.
        cls.es = os.path.join(work(), "issuer-es")
        cls.rs = os.path.join(work(), "issuer-rs")
        jwks_port = free_port()
        jku = f"http://127.0.0.1:{jwks_port}/jwks.json"
        for folder, alg, iss, extra in ((cls.es, "ES384", "https://ehr.example.org", []),
                                        (cls.rs, "RS384", "https://other-ehr.example.org", ["--jku", jku])):
            code, out, err = client("issuer", "--alg", alg, "--iss", iss, "--kid", alg.lower() + "-1", "--out",
                                    folder, *extra)
            assert code == 0, err
        handler = functools.partial(QuietFiles, directory=cls.rs)
        cls.jwks_server = http.server.ThreadingHTTPServer(("127.0.0.1", jwks_port), handler)
        threading.Thread(target=cls.jwks_server.serve_forever, daemon=True).start()
        issuers = os.path.join(work(), "issuers.json")
        with open(issuers, "w") as f:
            json.dump([{"iss": "https://ehr.example.org", "jwks_file": os.path.join(cls.es, "jwks.json")},
                       {"iss": "https://other-ehr.example.org", "jku": jku}], f)

        cls.port = free_port()
        cls.base = f"http://127.0.0.1:{cls.port}"
        cls.cfg = write_config("cds.toml", db=cls.db)
        with open(cls.cfg, "a") as f:
            f.write(f'[http]\nlisten = "127.0.0.1:{cls.port}"\n'
                    f'[cds_hooks]\nenabled = true\nbase_url = "{cls.base}"\nissuers_file = "{issuers}"\n'
                    'score_endpoint = true\n')
        if not os.path.isdir(os.path.join(ROOT, "tests", "cds-client", "node_modules")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=os.path.join(ROOT, "tests", "cds-client"), check=True)
        ok("migrate", "--config", cls.cfg)
        ok("sync", "--once", "--config", cls.cfg)
        cls.daemon = Daemon(cls.cfg, cls.port, "cds-run.log")
        cls.daemon.wait_until("the endpoint", lambda: cls.daemon.get("/healthz")[0] == 200)
        bundle = fhir_get(f"Patient?_count={PATIENTS}")
        cls.patients = [e["resource"]["id"] for e in bundle["entry"]]

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.jwks_server.shutdown()

    def stored(self, patient_id):
        key = pseudonym("Patient", patient_id)
        rows = sql(f"SELECT probability FROM score WHERE patient_key = '{key}' ORDER BY id DESC LIMIT 1", self.db)
        return float(rows[0][0])

    def card(self, patient_id, issuer, *extra):
        code, out, err = client("call", "--base", self.base, "--service", SERVICE, "--patient", patient_id,
                                "--fhir", fhir_base(), "--issuer", issuer, *extra)
        self.assertEqual(code, 0, f"{out} {err}")
        self.assertIsNone(out["errors"])
        cards = out["json"]["cards"]
        self.assertEqual(len(cards), 1)
        return cards[0]

    def test_1_discovery_lists_the_model_with_its_prefetch(self):
        code, out, err = client("discover", "--base", self.base)
        self.assertEqual(code, 0, f"{out} {err}")
        (service,) = out["json"]["services"]
        self.assertEqual(service["id"], SERVICE)
        self.assertEqual(service["hook"], "patient-view")
        self.assertEqual(service["prefetch"]["patient"], "Patient/{{context.patientId}}")
        self.assertIn("patient={{context.patientId}}", service["prefetch"]["observations"])

    def test_2_a_card_per_patient_equals_the_stored_score(self):
        before = int(sql("SELECT count(*) FROM audit_log WHERE action = 'cds-score'", self.db)[0][0])
        for n, pid in enumerate(self.patients):
            card = self.card(pid, self.es if n % 2 == 0 else self.rs)
            p = card["extension"]["urn:fhir-risk-adapter:probability"]
            self.assertEqual(p, self.stored(pid), pid)
            self.assertLess(len(card["summary"]), 140)
            self.assertIn(card["indicator"], ("info", "warning", "critical"))
            self.assertTrue(card["source"]["label"].startswith(SERVICE))
            self.assertIn("Main factors", card["detail"])
            self.assertNotIn(pid, json.dumps(card))  # nothing of the patient's identity
        after = int(sql("SELECT count(*) FROM audit_log WHERE action = 'cds-score'", self.db)[0][0])
        self.assertEqual(after - before, PATIENTS)

    def test_3_without_prefetch_the_service_reads_the_fhir_server(self):
        for n, pid in enumerate(self.patients):
            card = self.card(pid, self.rs if n % 2 == 0 else self.es, "--no-prefetch")
            self.assertEqual(card["extension"]["urn:fhir-risk-adapter:probability"], self.stored(pid))

    def test_4_each_untrusted_call_gets_401(self):
        pid = self.patients[0]
        m0, _ = self.daemon.metrics()
        cases = [("no-token", ["--no-token"]), ("unknown-issuer", ["--variant", "wrong-iss"]),
                 ("signature", ["--variant", "bad-signature"]), ("claims", ["--variant", "wrong-aud"]),
                 ("claims", ["--variant", "expired"]), ("unknown-key", ["--variant", "unknown-kid"])]
        for reason, extra in cases:
            code, out, err = client("call", "--base", self.base, "--service", SERVICE, "--patient", pid,
                                    "--fhir", fhir_base(), "--issuer", self.es, *extra)
            self.assertEqual(out["status"], 401, f"{reason}: {out}")
            self.assertNotIn("cards", out["json"] or {})
        # A token used twice: the second call is a replay.
        code, tok, err = client("token", "--issuer", self.es, "--aud", f"{self.base}/cds-services/{SERVICE}")
        body = json.dumps({"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                           "fhirServer": fhir_base(), "context": {"userId": "Practitioner/x", "patientId": pid}})
        statuses = []
        for _ in range(2):
            req = urllib.request.Request(f"{self.base}/cds-services/{SERVICE}", data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": "Bearer " + tok["token"]})
            try:
                with urllib.request.urlopen(req) as r:
                    statuses.append(r.status)
            except urllib.error.HTTPError as e:
                statuses.append(e.code)
        self.assertEqual(statuses, [200, 401])
        m1, _ = self.daemon.metrics()
        for reason in ("no-token", "unknown-issuer", "signature", "claims", "unknown-key", "replay"):
            self.assertGreater(value(m1, "fra_cds_refused_total", reason=reason),
                               value(m0, "fra_cds_refused_total", reason=reason), reason)

    def test_5_feedback_is_recorded_and_audit_rescore_covers_the_cards(self):
        card = self.card(self.patients[1], self.rs)
        code, out, err = client("feedback", "--base", self.base, "--service", SERVICE, "--card", card["uuid"],
                                "--outcome", "overridden", "--reason-code", "not-relevant", "--reason-system",
                                "http://example.org/override", "--reason-display", "Not relevant",
                                "--issuer", self.rs)
        self.assertEqual(out["status"], 200, f"{out} {err}")
        rows = sql("SELECT details->>'card', details->>'outcome', details->'override_reason'->>'code' "
                   "FROM audit_log WHERE action = 'cds-feedback'", self.db)
        self.assertIn([card["uuid"], "overridden", "not-relevant"], rows)
        rescore = ok("audit", "rescore", "--config", self.cfg)
        self.assertIn(": 0 differ", rescore.stdout)
        cards = int(sql("SELECT count(*) FROM audit_log WHERE action = 'cds-score'", self.db)[0][0])
        scores = int(sql("SELECT count(*) FROM score", self.db)[0][0])
        self.assertIn(f"{cards + scores} scores read", rescore.stdout)

    def post(self, path, body, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        req = urllib.request.Request(f"{self.base}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers=headers)
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, None

    def test_6_the_score_endpoint_scores_a_feature_vector_as_the_sync_did(self):
        # A stored score's own feature vector, sent by name: the same probability, to the bit,
        # and contributions that add up to the margin.
        features, stored = sql("SELECT features::text, probability FROM score ORDER BY id LIMIT 1", self.db)[0]
        vector = json.loads(features)
        self.assertEqual(self.post(f"/score/{SERVICE}", vector)[0], 401)
        code, tok, err = client("token", "--issuer", self.es, "--aud", f"{self.base}/score/{SERVICE}")
        status, answer = self.post(f"/score/{SERVICE}", vector, tok["token"])
        self.assertEqual(status, 200)
        self.assertEqual(answer["probability"], float(stored))
        self.assertAlmostEqual(sum(answer["contributions"].values()) + answer["bias"], answer["margin"], places=4)
        self.assertEqual(set(answer["contributions"]), set(vector))
        code, tok, err = client("token", "--issuer", self.es, "--aud", f"{self.base}/score/{SERVICE}")
        self.assertEqual(self.post(f"/score/{SERVICE}", {"no_such_feature": 1}, tok["token"])[0], 400)

    def test_7_a_null_prefetch_is_no_data_and_an_operation_outcome_is_the_ehrs_error(self):
        pid = self.patients[2]

        def send(prefetch):
            code, tok, err = client("token", "--issuer", self.es, "--aud", f"{self.base}/cds-services/{SERVICE}")
            return self.post(f"/cds-services/{SERVICE}",
                             {"hook": "patient-view", "hookInstance": "0f0e8a3c-7c41-4a8e-9b6e-2d8f0c1a5b77",
                              "context": {"userId": "Practitioner/x", "patientId": pid}, "prefetch": prefetch},
                             tok["token"])

        status, answer = send({"patient": None, "observations": None, "encounters": None, "conditions": None})
        self.assertEqual(status, 200)
        (card,) = answer["cards"]
        self.assertIn("not recorded", card["detail"])  # no data: the factors say so
        outcome = {"resourceType": "OperationOutcome",
                   "issue": [{"severity": "error", "code": "exception", "diagnostics": "timeout"}]}
        status, _ = send({"patient": None, "observations": outcome, "encounters": None, "conditions": None})
        self.assertEqual(status, 412)
        self.assertEqual(self.daemon.proc.poll(), None)  # and the daemon goes on


if __name__ == "__main__":
    unittest.main(verbosity=2)
