#!/usr/bin/python3
"""Crash safety: a sync of 51,000 resources killed with SIGKILL at random moments, ten times, then
run to the end, leaves a store identical to an uninterrupted sync's and no patient with two
RiskAssessments on the server.

Run by tests/integration/run.sh or ctest; starts a FHIR test server of its own with 2,000
patients, and needs only the shared PostgreSQL.
"""
import os
import random
import re
import signal
import subprocess
import time
import unittest

from support import binary, database, faults, free_port, our_risk_assessments, psql, table_hashes, work, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Crash(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        log = os.path.join(work(), "crash-fhir.log")
        cls.fhir = subprocess.run(["bash", f"{ROOT}/deploy/fhir-sandbox.sh", str(free_port()), "2000", "7", log],
                                  check=True, capture_output=True, text=True).stdout.strip()
        with open(log + ".pid") as f:
            cls.fhir_pid = int(f.read())

    @classmethod
    def tearDownClass(cls):
        os.kill(cls.fhir_pid, signal.SIGTERM)

    @staticmethod
    def progress(url):
        q = ("SELECT (SELECT count(*) FROM resource_version) || ' resources, ' || (SELECT count(*) FROM score) || "
             "' scores, ' || (SELECT count(*) FROM risk_assessment WHERE written_score_id IS NOT NULL) || ' written'")
        return psql(url, q, check=False).stdout.strip()

    def sync(self, cfg):
        return subprocess.Popen([binary(), "sync", "--once", "--config", cfg], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def test_sigkill_at_random_moments_loses_and_duplicates_nothing(self):
        crashed, clean = database("crashed"), database("uncrashed")
        crashed_cfg = write_config("crashed.toml", fhir=self.fhir, db=crashed)
        clean_cfg = write_config("uncrashed.toml", fhir=self.fhir, db=clean)
        for cfg in (crashed_cfg, clean_cfg):
            self.assertEqual(subprocess.run([binary(), "migrate", "--config", cfg], capture_output=True).returncode, 0)

        # 10 ms added to every request stretches the run (about 7 s of ingest, 1 s of scoring,
        # 20 s of write-back) so that the ten kills, at these moments after each restart, land in
        # all three phases while work is left; the sync resumes where the last commit left it.
        faults(0, 10, base=self.fhir)
        rng = random.Random(2026)
        killed = 0
        try:
            for attempt, base in enumerate([0.2, 0.5, 1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 2.0, 3.0], 1):
                proc = self.sync(crashed_cfg)
                delay = base + rng.uniform(0, 0.2)
                time.sleep(delay)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    killed += 1
                proc.communicate()
                print(f"  run {attempt}: {'killed' if proc.returncode == -9 else 'finished'} after {delay:.2f} s; "
                      f"store: {self.progress(crashed)}", flush=True)
        finally:
            faults(0, 0, base=self.fhir)
        self.assertEqual(killed, 10, "the sync finished before it could be killed ten times")
        last = self.sync(crashed_cfg)
        out, err = last.communicate()
        self.assertEqual(last.returncode, 0, out + err)

        ref = self.sync(clean_cfg)
        ref_out, ref_err = ref.communicate()
        self.assertEqual(ref.returncode, 0, ref_out + ref_err)
        resources = sum(int(n) for n in re.findall(r"fetched +(\d+)", ref_out))
        self.assertGreaterEqual(resources, 50000, ref_out)
        print("  uninterrupted: " + " | ".join(line.split("  cursor")[0] for line in ref_out.splitlines()))

        self.assertEqual(table_hashes(crashed), table_hashes(clean))
        subjects = [ra["subject"]["reference"] for ra in our_risk_assessments(crashed, clean, base=self.fhir)]
        self.assertEqual(len(subjects), len(set(subjects)), "a patient has two RiskAssessments")
        self.assertEqual(len(subjects), 2000)


if __name__ == "__main__":
    unittest.main(verbosity=2)
