#!/usr/bin/python3
"""Resilience: a sync through 20% injected 429/503 answers (with Retry-After) and added latency
ends with a store identical to a fault-free sync of the same server, table by table
(support/identical.py says what "identical" compares).

Run by tests/integration/run.sh or ctest, against the shared servers, in databases of its own.
"""
import unittest

from support import adapter, database, faults, our_risk_assessments, psql, table_hashes, write_config


class Faults(unittest.TestCase):
    def test_store_after_faults_equals_store_without(self):
        clean, faulty = database("clean"), database("faulty")
        clean_cfg = write_config("clean.toml", db=clean)
        faulty_cfg = write_config("faulty.toml", db=faulty)
        for cfg in (clean_cfg, faulty_cfg):
            self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        run = adapter("sync", "--once", "--config", clean_cfg)
        self.assertEqual(run.returncode, 0, run.stderr)
        faults(0.2, 5)
        try:
            # Backoff short enough for a test, long enough that Retry-After (1 s) governs.
            bad = adapter("sync", "--once", "--config", faulty_cfg, env={"FRA_FHIR_MAX_ATTEMPTS": "10"})
        finally:
            faults(0, 0)
        self.assertEqual(bad.returncode, 0, bad.stdout + bad.stderr)
        print("\n" + bad.stdout, end="")
        self.assertIn("0 failed", bad.stdout)
        retried = [line for line in bad.stderr.splitlines() if "retry" in line.lower()]
        self.assertGreater(len(retried), 5, "expected retries to be logged under 20% faults:\n" + bad.stderr[-2000:])
        clean_hashes, faulty_hashes = table_hashes(clean), table_hashes(faulty)
        self.assertGreater(int(clean_hashes["observation_value"].split(":")[0]), 1000)
        self.assertEqual(faulty_hashes, clean_hashes)
        subjects = [ra["subject"]["reference"] for ra in our_risk_assessments(clean, faulty)]
        self.assertEqual(len(subjects), len(set(subjects)), "a patient has two RiskAssessments")

    def test_pages_that_are_not_json_are_retried_then_stop_the_run(self):
        url = database("garbage")
        cfg = write_config("garbage.toml", db=url)
        self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        faults(0, 0, garbage=1)
        try:
            run = adapter("sync", "--once", "--config", cfg, env={"FRA_FHIR_MAX_ATTEMPTS": "3"})
        finally:
            faults(0, 0)
        self.assertEqual(run.returncode, 69, run.stdout + run.stderr)
        errors = [line for line in run.stderr.splitlines() if "error:" in line]
        self.assertEqual(len(errors), 1, run.stderr)
        self.assertIn("search page is not JSON", errors[0])
        self.assertIn("(3 attempts); the cursor stays", errors[0])
        self.assertEqual(psql(url, "SELECT count(*) FROM sync_cursor").stdout.strip(), "0")

        faults(0, 0, garbage=0.3)
        try:
            run = adapter("sync", "--once", "--config", cfg, env={"FRA_FHIR_MAX_ATTEMPTS": "10"})
        finally:
            faults(0, 0)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("search page is not JSON", run.stderr)  # retried, and said so
        ref = database("garbage_ref")
        ref_cfg = write_config("garbage_ref.toml", db=ref)
        self.assertEqual(adapter("migrate", "--config", ref_cfg).returncode, 0)
        self.assertEqual(adapter("sync", "--once", "--config", ref_cfg).returncode, 0)
        clean = table_hashes(ref)
        self.assertEqual({k: v for k, v in table_hashes(url).items() if k in ("patient", "observation_value")},
                         {k: v for k, v in clean.items() if k in ("patient", "observation_value")})


if __name__ == "__main__":
    unittest.main(verbosity=2)
