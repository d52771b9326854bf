#!/usr/bin/python3
"""Alerts: one FHIR Communication when a patient's score enters the alert band, none while it
stays there, a new one only after it has been out for alerts.rearm_hours, nothing lost or sent
twice across a SIGKILL.

Run by tests/integration/run.sh or ctest, against the shared servers, in databases of its own.
"""
import json
import os
import signal
import subprocess
import time
import unittest

import numpy as np
import xgboost as xgb

from support import (binary, database, faults, fhir_all, fhir_post, model_dir, ok, pseudonym, psql, sql,
                     vital_sign, write_config)

ALERT_SYSTEM = "urn:fhir-risk-adapter:alert"
RECIPIENT = "Group/transitions-team"
with open(os.path.join(model_dir(), "manifest.json")) as f:
    MANIFEST = json.load(f)
NAMES = [feature["name"] for feature in MANIFEST["features"]]
HIGH = next(b["below"] for b in MANIFEST["bands"] if b["code"] == "moderate")  # high from here


def alerts_config(name, db):
    path = write_config(name, db=db)
    with open(path, "a") as f:
        f.write(f'[alerts]\nenabled = true\nband = "high"\nrecipient = "{RECIPIENT}"\nrearm_hours = 24\n')
    return path


def communications(db):
    """The adapter's alerts on the server whose patients are in `db`, by identifier: a list each
    (two with one identifier would both be there)."""
    keys = {row[0] for row in sql("SELECT patient_key FROM patient", db)}
    out = {}
    for c in fhir_all("Communication?_count=1000"):
        ids = [i["value"] for i in c.get("identifier", []) if i.get("system") == ALERT_SYSTEM]
        if ids and pseudonym("Patient", c["subject"]["reference"][8:]) in keys:
            out.setdefault(ids[0], []).append(c)
    return out


def first_bands(db):
    """{patient key: band of its first score}."""
    rows = sql("SELECT DISTINCT ON (patient_key) patient_key, band FROM score ORDER BY patient_key, id", db)
    return {k: b for k, b in rows}


class Alerts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = database("alerts")
        cls.cfg = alerts_config("alerts.toml", cls.db)
        ok("migrate", "--config", cls.cfg)
        cls.first = ok("sync", "--once", "--config", cls.cfg)

    def sync(self):
        return ok("sync", "--once", "--config", self.cfg)

    def test_1_every_patient_first_scored_high_gets_exactly_one(self):
        high = {k for k, b in first_bands(self.db).items() if b == "high"}
        self.assertGreater(len(high), 3, "too few high-risk patients to test with")
        sent = communications(self.db)
        self.assertEqual({k: len(v) for k, v in sent.items() if len(v) != 1}, {})
        by_patient = {pseudonym("Patient", c[0]["subject"]["reference"][8:]): c[0] for c in sent.values()}
        self.assertEqual(set(by_patient), high)
        self.assertIn(f"alerts: {len(high)} raised, {len(high)} sent, 0 failed", self.first.stdout)
        names = {n for p in fhir_all("Patient?_count=1000") for x in p.get("name", [])
                 for n in [x.get("family", ""), *x.get("given", [])] if n}
        for c in by_patient.values():
            self.assertEqual(c["status"], "completed")
            self.assertEqual(c["priority"], "urgent")
            self.assertEqual(c["category"][0]["coding"][0],
                             {"system": "http://terminology.hl7.org/CodeSystem/communication-category",
                              "code": "alert", "display": "Alert"})
            self.assertEqual(c["recipient"], [{"reference": RECIPIENT}])
            about = c["about"][0]
            self.assertEqual(about["type"], "RiskAssessment")
            self.assertEqual(about["identifier"]["system"], "urn:fhir-risk-adapter:risk-assessment")
            text = c["payload"][0]["contentString"]
            self.assertRegex(text, r"risk: \d+\.\d% \(High likelihood\).*Main factors: ")
            self.assertEqual([n for n in names if n in text], [])
            self.assertRegex(c["identifier"][0]["value"], r"^[0-9a-f]{64}$")
        self.assertEqual(sql("SELECT count(*) FROM audit_log WHERE action = 'alert'", self.db), [[str(len(high))]])

    def test_2_a_second_sync_and_a_forced_rescore_send_none(self):
        before = {k: v[0]["meta"]["versionId"] for k, v in communications(self.db).items()}
        run = self.sync()
        self.assertNotIn("alerts:", run.stdout)
        psql(self.db, "INSERT INTO scoring_queue (patient_key) SELECT patient_key FROM patient ON CONFLICT DO NOTHING")
        run = self.sync()
        self.assertRegex(run.stdout, rf"scored {len(first_bands(self.db))} patients")
        self.assertNotIn("alerts:", run.stdout)
        self.assertEqual({k: v[0]["meta"]["versionId"] for k, v in communications(self.db).items()}, before)

    def pick_patient(self):
        """A patient not in the high band whose score a heart rate of 170 /min takes into it and
        one of 75 /min out, by XGBoost on the stored features."""
        booster = xgb.Booster(model_file=os.path.join(model_dir(), "model.json"))
        latest = {r[0]: json.loads(r[1]) for r in sql(
            "SELECT DISTINCT ON (patient_key) patient_key, features::text FROM score "
            "ORDER BY patient_key, id DESC", self.db)}
        bands = {r[0]: r[1] for r in sql("SELECT DISTINCT ON (patient_key) patient_key, band FROM score "
                                         "ORDER BY patient_key, id DESC", self.db)}
        for p in fhir_all("Patient?_count=1000"):
            key = pseudonym("Patient", p["id"])
            if key not in latest or bands[key] == "high":
                continue
            x = np.array([[np.nan if latest[key][n] is None else latest[key][n] for n in NAMES]] * 2,
                         dtype=np.float32)
            x[0, NAMES.index("heart_rate")], x[1, NAMES.index("heart_rate")] = 170, 75
            up, down = booster.inplace_predict(x)
            if up >= HIGH + 0.02 and down < HIGH - 0.02:
                return p["id"], key
        self.fail("no patient whose heart rate moves the score across the alert band")

    def test_3_out_and_back_alerts_again_only_after_the_rearm_time(self):
        pid, key = self.pick_patient()
        count = lambda: sum(1 for v in communications(self.db).values()  # noqa: E731
                            if v[0]["subject"]["reference"] == f"Patient/{pid}")
        band = lambda: sql(f"SELECT band FROM score WHERE patient_key = '{key}' ORDER BY id DESC LIMIT 1",  # noqa: E731
                           self.db)[0][0]
        before = count()

        def move(rate):
            time.sleep(0.01)
            fhir_post(vital_sign(pid, "8867-4", rate, "/min"))
            return self.sync()

        run = move(170)  # into the band: the first alert of this patient
        self.assertEqual(band(), "high")
        self.assertIn("alerts: 1 raised, 1 sent, 0 failed", run.stdout)
        self.assertEqual(count(), before + 1)
        move(75)  # out
        self.assertNotEqual(band(), "high")
        run = move(170)  # back within the rearm time: none
        self.assertEqual(band(), "high")
        self.assertNotIn("alerts:", run.stdout)
        self.assertEqual(count(), before + 1)
        move(75)
        # Out for longer than alerts.rearm_hours (24): the time it left, moved back 25 hours.
        psql(self.db, f"UPDATE alert SET left_at = left_at - interval '25 hours' WHERE patient_key = '{key}'")
        run = move(170)
        self.assertIn("alerts: 1 raised, 1 sent, 0 failed", run.stdout)
        self.assertEqual(count(), before + 2)
        self.assertEqual(sql(f"SELECT episodes FROM audit_alerts WHERE patient_pseudonym = '{key}'", self.db),
                         [["2"]])

    def test_4_a_sigkill_between_the_score_and_the_send_loses_and_duplicates_nothing(self):
        db = database("alerts_kill")
        cfg = alerts_config("alerts-kill.toml", db)
        ok("migrate", "--config", cfg)
        ok("backfill", "--export", "--config", cfg)  # the store loaded; the sync then scores
        # Every request answered 3 s late: the scores (and their alerts) are committed long before
        # the write-back and the alerts are sent, and the process is killed in between.
        faults(0, 3000)
        try:
            proc = subprocess.Popen([binary(), "sync", "--once", "--config", cfg], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if sql("SELECT count(*) FROM alert WHERE pending_score_id IS NOT NULL", db)[0][0] != "0":
                    break
                time.sleep(0.2)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            faults(0, 0)
        pending = int(sql("SELECT count(*) FROM alert WHERE pending_score_id IS NOT NULL", db)[0][0])
        self.assertGreater(pending, 0, "killed before any alert was raised")
        self.assertEqual(sql("SELECT count(*) FROM alert WHERE sent_score_id IS NOT NULL", db), [["0"]])
        ok("sync", "--once", "--config", cfg)
        high = {k for k, b in first_bands(db).items() if b == "high"}
        sent = communications(db)
        self.assertEqual({k: len(v) for k, v in sent.items() if len(v) != 1}, {})
        self.assertEqual({pseudonym("Patient", v[0]["subject"]["reference"][8:]) for v in sent.values()}, high)
        # Killed after the send and before it was recorded: sent again, it updates the same one.
        psql(db, "UPDATE alert SET pending_score_id = sent_score_id, sent_score_id = NULL")
        run = ok("sync", "--once", "--config", cfg)
        self.assertIn(f"alerts: 0 raised, {len(high)} sent, 0 failed", run.stdout)
        again = communications(db)
        self.assertEqual(set(again), set(sent))
        self.assertEqual({k: len(v) for k, v in again.items() if len(v) != 1}, {})

    def test_5_a_recipient_or_band_that_cannot_be_is_refused_at_start(self):
        db = database("alerts_bad")
        for name, line, message in (
                ("bad-recipient.toml", 'recipient = "Patient/123"', "alerts.recipient: expected Group/<id>"),
                ("bad-band.toml", 'band = "extreme"', "alerts.band: 'extreme' is not a band of model")):
            path = write_config(name, db=db)
            with open(path, "a") as f:
                f.write("[alerts]\nenabled = true\n" + line + "\n" +
                        ('band = "high"\n' if "band" not in line else f'recipient = "{RECIPIENT}"\n'))
            ok("migrate", "--config", path)
            run = subprocess.run([binary(), "sync", "--once", "--config", path], capture_output=True, text=True)
            self.assertEqual(run.returncode, 78, run.stdout + run.stderr)
            self.assertIn(message, run.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
