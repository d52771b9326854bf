"""Per-patient sync and write-back by id against the FHIR test server's vendor profiles: `epic`
(patient-scoped searches only, no meta, no RiskAssessment, Observation create only) and `oracle`
(patient-scoped searches, newest first, a first Observation page of 50, updates only with
If-Match, no conditional update). Each class starts a server of its own with a Group of half its
patients (Group/cohort) and runs the adapter against it with `writeback.target = "observation"`.
"""
import json
import os
import signal
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

from support import (adapter, binary, database, fhir_all, fhir_get, free_port, ok, pseudonym, sql, vital_sign, work,
                     write_config)
from support.keys import keypair

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATIENTS, MEMBERS, SEED = 40, 20, 11
SCORE_CODE = "urn:fhir-risk-adapter:model|readmission-risk"
MRN_SYSTEM = "urn:oid:1.2.36.146.595.217.0.1"


def start_server(profile, name):
    log = os.path.join(work(), f"{name}-fhir.log")
    base = subprocess.run(["bash", f"{ROOT}/deploy/fhir-sandbox.sh", str(free_port()), str(PATIENTS), str(SEED), log,
                           "--profile", profile, "--group", str(MEMBERS)],
                          check=True, capture_output=True, text=True).stdout.strip()
    with open(log + ".pid") as f:
        return base, int(f.read())


def search(base, path):
    """Every resource a search returns, following next links."""
    return fhir_all(f"{base}/{path}")


def post(base, resource):
    req = urllib.request.Request(f"{base}/{resource['resourceType']}", data=json.dumps(resource).encode(),
                                 headers={"Content-Type": "application/fhir+json"}, method="POST")
    with urllib.request.urlopen(req) as r:
        return r.status


def stats(base, reset=False):
    origin = base.split("/fhir/")[0]
    req = urllib.request.Request(f"{origin}/admin/stats", method="POST" if reset else "GET",
                                 data=json.dumps({"reset": True}).encode() if reset else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def members(base):
    group = fhir_get(f"{base}/Group/cohort")
    return [m["entity"]["reference"].split("/", 1)[1] for m in group["member"]]


def non_members(base):
    """The generated patients after the Group's, found by their MRNs (a vendor refuses a search of
    every Patient)."""
    bundle = json.loads(subprocess.run(["node", f"{ROOT}/tests/fhir-server/generate.js", "--patients", str(PATIENTS),
                                        "--seed", str(SEED)], check=True, capture_output=True, text=True).stdout)
    mrns = [i["value"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
            for i in e["resource"]["identifier"] if i["system"] == MRN_SYSTEM]
    out = []
    for mrn in mrns[MEMBERS:]:
        found = search(base, "Patient?identifier=" + urllib.parse.quote(f"{MRN_SYSTEM}|{mrn}"))
        out += [p["id"] for p in found]
    return out


def score_observations(base, patient_id):
    return search(base, f"Observation?patient={patient_id}&code=" + urllib.parse.quote(SCORE_CODE))


def vendor_config(name, base, db, strategy, interval=900):
    path = write_config(name, fhir=base, db=db)
    with open(path, "a") as f:
        f.write(f'[sync]\nstrategy = "{strategy}"\n[cohort]\ngroup_id = "cohort"\npatient_interval_seconds = {interval}\n'
                '[writeback]\ntarget = "observation"\n')
    return path


class VendorCase:
    """The checks every vendor profile passes; a test class with a profile mixes it in."""
    profile = None
    strategy = None

    @classmethod
    def setUpClass(cls):
        cls.base, cls.pid = start_server(cls.profile, cls.profile)
        cls.db = database(cls.profile)
        cls.cfg = vendor_config(f"{cls.profile}.toml", cls.base, cls.db, cls.strategy, interval=1)
        ok("migrate", "--config", cls.cfg)
        cls.first = adapter("sync", "--once", "--config", cls.cfg)
        cls.members = members(cls.base)

    @classmethod
    def tearDownClass(cls):
        os.kill(cls.pid, signal.SIGTERM)

    def stored_probability(self, patient_id):
        key = pseudonym("Patient", patient_id)  # hex: safe in the query
        rows = sql(f"SELECT probability FROM score WHERE patient_key = '{key}' ORDER BY id DESC LIMIT 1", self.db)
        return float(rows[0][0]) if rows else None

    def check_one_score_observation_each(self):
        with_vitals = 0
        for pid in self.members:
            vitals = search(self.base, f"Observation?patient={pid}&category=vital-signs")
            p = self.stored_probability(pid)
            written = score_observations(self.base, pid)
            if vitals:
                with_vitals += 1
                self.assertIsNotNone(p, f"member {pid} has vital signs but no score")
            if p is None:
                self.assertEqual(written, [])
                continue
            self.assertEqual(len(written), 1, f"member {pid}: {len(written)} score Observations")
            value = written[0]["valueQuantity"]["value"]
            self.assertAlmostEqual(value, 100 * p, delta=1e-9 * max(1.0, value))
            self.assertEqual(written[0]["valueQuantity"]["code"], "%")
            self.assertEqual(written[0]["status"], "final")
        self.assertGreater(with_vitals, MEMBERS // 2)

    def test_1_first_sync_scores_every_member(self):
        self.assertEqual(self.first.returncode, 0, self.first.stdout + self.first.stderr)
        self.assertIn(f"refreshed {MEMBERS} patients", self.first.stdout)
        self.check_one_score_observation_each()

    def test_2_no_non_member_is_read_or_written(self):
        outsiders = non_members(self.base)
        self.assertEqual(len(outsiders), PATIENTS - MEMBERS)
        keys = {pseudonym("Patient", pid) for pid in outsiders}
        stored = {row[0] for row in sql("SELECT patient_key FROM patient", self.db)}
        self.assertEqual(stored & keys, set())
        for pid in outsiders:
            self.assertEqual(score_observations(self.base, pid), [])

    def test_3_second_sync_creates_and_updates_nothing(self):
        time.sleep(1.1)  # every member due again
        run = ok("sync", "--once", "--config", self.cfg)
        self.assertIn(f"refreshed {MEMBERS} patients", run.stdout)
        self.assertRegex(run.stdout, r"stored 0 .*deleted 0")
        self.assertIn("Score Observations: 0 created, 0 updated, 0 failed", run.stdout)


class Epic(VendorCase, unittest.TestCase):
    profile = "epic"
    strategy = "auto"

    def test_5_group_export_without_since_then_per_patient_sync(self):
        # Epic exports a Group, all of it (no _since), about once a day: load that, then refresh
        # per patient from there. Resources without meta are versioned by content, so the
        # refresh finds every one of them stored already.
        db = database("epic_backfill")
        cfg = vendor_config("epic-backfill.toml", self.base, db, "patient")
        ok("migrate", "--config", cfg)
        ok("backfill", "--export", "Group/cohort/$export", "--config", cfg)
        loaded = int(sql("SELECT count(*) FROM resource_version", db)[0][0])
        self.assertGreater(loaded, MEMBERS)
        run = ok("sync", "--once", "--config", cfg)
        self.assertIn(f"refreshed {MEMBERS} patients", run.stdout)
        self.assertRegex(run.stdout, r"cohort .* stored 0 ")

    def test_0_auto_chooses_per_patient(self):
        self.assertIn("per patient", self.first.stdout + self.first.stderr)

    def test_4_requests_per_patient_with_nothing_new(self):
        time.sleep(1.1)
        stats(self.base, reset=True)
        run = ok("sync", "--once", "--config", self.cfg)
        s = stats(self.base)
        # Patient, Observation, Encounter and Condition a member (the features read
        # comorbidities), one page each; the Group once.
        self.assertLessEqual(s["requests"], 4 * MEMBERS + 2, s)
        self.assertEqual(s["byType"]["Condition"], MEMBERS, s)
        self.assertIn(f"with {4 * MEMBERS} requests (4.00 a patient)", run.stdout)


    def test_6_a_refused_target_stops_with_the_servers_reason_and_scores_stay_pending(self):
        # Epic takes no RiskAssessment: the write-back stops at the first refusal, in one line
        # naming the server's reason, and every score stays pending for a target that works.
        db = database("epic_refused")
        cfg = vendor_config("epic-refused.toml", self.base, db, "patient")
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace('target = "observation"', 'target = "risk-assessment"'))
        ok("migrate", "--config", cfg)
        run = adapter("sync", "--once", "--config", cfg)
        self.assertEqual(run.returncode, 77, run.stdout + run.stderr)
        refusals = [line for line in (run.stdout + run.stderr).splitlines() if "refused" in line]
        self.assertTrue(refusals and all("RiskAssessment is not a supported resource for write" in line
                                         for line in refusals), refusals)
        self.assertIn("RiskAssessments: 0 created, 0 updated", run.stdout)
        pending = int(sql("SELECT count(*) FROM risk_assessment WHERE pending_score_id IS NOT NULL", db)[0][0])
        scored = int(sql("SELECT count(DISTINCT patient_key) FROM score", db)[0][0])
        self.assertGreater(scored, 0)
        self.assertEqual(pending, scored)


class Oracle(VendorCase, unittest.TestCase):
    profile = "oracle"
    strategy = "patient"

    def test_4_a_new_vital_sign_updates_the_score_observation_in_place(self):
        scored = [pid for pid in self.members if self.stored_probability(pid) is not None]
        pid = scored[0]
        before = score_observations(self.base, pid)
        self.assertEqual(len(before), 1)
        p_before = self.stored_probability(pid)
        for code, value, unit in [("8867-4", 152, "/min"), ("9279-1", 34, "/min"), ("59408-5", 84, "%"),
                                  ("8310-5", 39.8, "Cel")]:
            self.assertEqual(post(self.base, vital_sign(pid, code, value, unit)), 201)
        time.sleep(1.1)
        stats(self.base, reset=True)
        run = ok("sync", "--once", "--config", self.cfg)
        s = stats(self.base)
        p_after = self.stored_probability(pid)
        self.assertNotEqual(p_after, p_before, "the new vital signs should change the score")
        self.assertIn("Score Observations: 0 created, 1 updated", run.stdout)
        after = score_observations(self.base, pid)
        self.assertEqual(len(after), 1)
        self.assertEqual(after[0]["id"], before[0]["id"])
        self.assertNotEqual(after[0]["meta"]["versionId"], before[0]["meta"]["versionId"])
        self.assertAlmostEqual(after[0]["valueQuantity"]["value"], 100 * p_after, delta=1e-9 * 100)
        # The update went by id with If-Match: the profile answers 412 without it and 405 to a
        # conditional update, and nothing was created.
        self.assertEqual(s["byInteraction"].get("update"), 1, s)
        self.assertNotIn("create", s["byInteraction"], s)
        # Requests for the refresh: at most 4 a patient with a change (pages of 200 after a first
        # of 50), plus the Group and the write (a re-read on 412 would add one).
        self.assertLessEqual(s["requests"], 4 * MEMBERS + 4, s)


    def test_5_a_deleted_vital_sign_leaves_the_store_and_rescores(self):
        # A member's heart rate inside the window, gone from the server: not returned any more,
        # so removed from the store (a tombstone) and the patient scored again.
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 300 * 86400))
        for pid in self.members:
            found = search(self.base, f"Observation?patient={pid}&code=http://loinc.org|8867-4&date=ge{since}")
            if found:
                break
        obs = found[0]
        key = pseudonym("Observation", obs["id"])
        self.assertEqual(sql(f"SELECT count(*) FROM observation_value WHERE resource_key = '{key}'", self.db),
                         [["1"]])
        scores_before = int(sql("SELECT count(*) FROM score", self.db)[0][0])
        req = urllib.request.Request(f"{self.base}/Observation/{obs['id']}", method="DELETE")
        with urllib.request.urlopen(req) as r:
            self.assertIn(r.status, (200, 204))
        time.sleep(1.1)
        run = ok("sync", "--once", "--config", self.cfg)
        self.assertRegex(run.stdout, r"deleted 1\b")
        self.assertEqual(sql(f"SELECT count(*) FROM observation_value WHERE resource_key = '{key}'", self.db),
                         [["0"]])
        self.assertEqual(sql(f"SELECT version_id FROM resource_version WHERE resource_key = '{key}'", self.db),
                         [["deleted"]])
        self.assertEqual(int(sql("SELECT count(*) FROM score", self.db)[0][0]), scores_before + 1)


    def test_6_group_export_files_on_another_host_get_no_token(self):
        # The manifest's files are on another host name (storage): the access token stays home.
        token = os.path.join(work(), "oracle.token")
        with open(token, "w") as f:
            f.write("a-static-token-for-the-export-test")
        os.chmod(token, 0o600)
        db = database("oracle_backfill")
        cfg = vendor_config("oracle-backfill.toml", self.base, db, "patient")
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("[fhir]\n", f'[fhir]\nbearer_token_file = "{token}"\n', 1))
        ok("migrate", "--config", cfg)
        stats(self.base, reset=True)
        ok("backfill", "--export", "Group/cohort/$export", "--config", cfg)
        s = stats(self.base)
        self.assertEqual(s["leakedAuthorization"], 0, s)
        self.assertGreater(s["byInteraction"].get("bulk-file", 0), 0, s)
        self.assertGreater(int(sql("SELECT count(*) FROM resource_version", db)[0][0]), MEMBERS)


    def test_7_short_tokens_are_renewed_without_being_throttled(self):
        # Millennium's tokens last under 10 minutes and a new one within a minute is refused
        # (429 slow_down): one sync asks for one token.
        key, pub = keypair("oracle-smart", "ec")
        origin = self.base.split("/fhir/")[0]

        def smart_admin(body):
            req = urllib.request.Request(f"{origin}/admin/smart", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                return json.load(r)

        before = smart_admin({"clientId": "fra-oracle", "publicKeyPem": pub, "required": True})
        try:
            db = database("oracle_smart")
            cfg = vendor_config("oracle-smart.toml", self.base, db, "patient")
            with open(cfg) as f:
                text = f.read()
            with open(cfg, "w") as f:
                f.write(text.replace("[fhir]\n", f'[fhir]\nsmart_token_url = "{origin}/auth/token"\n'
                                                 f'smart_client_id = "fra-oracle"\nsmart_private_key_file = "{key}"\n'
                                                 'smart_key_id = "fra-oracle-key"\n', 1))
            ok("migrate", "--config", cfg)
            stats(self.base, reset=True)
            ok("sync", "--once", "--config", cfg)
            after = smart_admin({"required": True})
            self.assertEqual(after["issued"] - before.get("issued", 0), 1, after)
            self.assertEqual(stats(self.base)["throttled"], 0)
        finally:
            smart_admin({"required": False, "revoke": True})


class TwoProcesses(unittest.TestCase):
    """Two `run` processes on one store and one cohort share the refresh queue."""

    def test_every_patient_refreshed_once_and_written_once(self):
        base, pid = start_server("epic", "shared")
        try:
            db = database("shared")
            daemons = []
            for n in (1, 2):
                cfg = vendor_config(f"shared-{n}.toml", base, db, "patient", interval=3600)
                with open(cfg, "a") as f:
                    f.write(f'[http]\nlisten = "127.0.0.1:{free_port()}"\n')
                if n == 1:
                    ok("migrate", "--config", cfg)
                log = open(os.path.join(work(), f"shared-{n}.log"), "w")
                daemons.append((subprocess.Popen([binary(), "run", "--config", cfg], stdout=log,
                                                 stderr=subprocess.STDOUT), log))
            want = None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = sql("SELECT count(*) FILTER (WHERE refreshes > 0), count(*) FROM cohort_member", db)[0]
                scores = int(sql("SELECT count(*) FROM score", db)[0][0])
                written = int(sql("SELECT count(*) FROM risk_assessment WHERE pending_score_id IS NULL "
                                  "AND written_score_id IS NOT NULL", db)[0][0])
                if int(done[1]) == MEMBERS and int(done[0]) == MEMBERS and scores > 0 and written == scores:
                    want = scores
                    break
                for proc, _ in daemons:
                    self.assertIsNone(proc.poll(), "a daemon exited")
                time.sleep(0.2)
            self.assertIsNotNone(want, "the two daemons did not refresh and write the whole cohort in time")
            time.sleep(1)
            refreshes = [int(r[0]) for r in sql("SELECT refreshes FROM cohort_member", db)]
            self.assertEqual(refreshes, [1] * MEMBERS)  # none twice
            for pid_ in members(base):
                n = len(score_observations(base, pid_))
                self.assertEqual(n, 1 if self.scored(db, pid_) else 0, pid_)
        finally:
            for proc, log in daemons:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
                log.close()
            os.kill(pid, signal.SIGTERM)

    @staticmethod
    def scored(db, patient_id):
        return bool(sql(f"SELECT 1 FROM score WHERE patient_key = '{pseudonym('Patient', patient_id)}'", db))


if __name__ == "__main__":
    unittest.main(verbosity=2)
