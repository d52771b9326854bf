#!/usr/bin/python3
"""A lost database connection exits 69 (unavailable), as the README promises, with one error line:
PostgreSQL stopped in the middle of `sync --once` and of `backfill`.

Regression: libpqxx 6.4's broken_connection and in_doubt_error are not sql_errors, and the store
caught sql_error only, so `sync --once` died with "internal error: Could not obtain client
encoding: not connected." (exit 70) and `backfill` with "bad input" (exit 65).

Uses the shared FHIR test server; starts and stops PostgreSQL clusters of its own, since it stops
them.
"""
import json
import os
import random
import subprocess
import tempfile
import time
import unittest

from support import binary, faults, fhir_base, free_port, model_dir, write_key

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class DatabaseOutage(unittest.TestCase):
    def setUp(self):
        # In /tmp, open to the cluster's own (unprivileged) user.
        self.dir = tempfile.mkdtemp(prefix="fra-outage-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.pg = os.path.join(self.dir, "pg")
        self.db = subprocess.run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "start", self.pg, str(free_port())],
                                 check=True, capture_output=True, text=True).stdout.strip()
        key = write_key("outage.key", 32)
        self.config = os.path.join(self.dir, "adapter.toml")
        with open(self.config, "w") as f:
            f.write(f'[fhir]\nbase_url = "{fhir_base()}"\npage_size = 50\n[database]\nurl = "{self.db}"\n'
                    f'[pseudonym]\nkey_file = "{key}"\n[model]\npath = "{model_dir()}"\n'
                    f'[features]\nfile = "{model_dir()}/features.toml"\n')
        run = subprocess.run([binary(), "migrate", "--config", self.config], capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)

    def tearDown(self):
        subprocess.run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "stop", self.pg], check=False)
        subprocess.run(["rm", "-rf", self.dir], check=False)

    def stop_database_during(self, args, after_s):
        proc = subprocess.Popen([binary(), *args, "--config", self.config], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(after_s)
        self.assertIsNone(proc.poll(), "finished before the database could be stopped")
        subprocess.run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "stop", self.pg], check=True)
        out, err = proc.communicate(timeout=120)
        return proc.returncode, err

    def assert_unavailable(self, code, err):
        self.assertEqual(code, 69, err)
        lines = err.strip().splitlines()
        self.assertIn("fhir-risk-adapter: error: ", lines[-1], err)
        self.assertNotIn("internal error", err)
        self.assertNotIn("bad input", err)

    def test_lost_database_connection_during_sync_exits_69(self):
        faults(0, 25)  # pages of 50 take a while: the stop lands mid-sync
        try:
            code, err = self.stop_database_during(["sync", "--once"], 1.5)
        finally:
            faults(0, 0)
        self.assert_unavailable(code, err)

    def test_lost_database_connection_during_backfill_exits_69(self):
        folder = os.path.join(self.dir, "ndjson")
        os.makedirs(folder)
        rng = random.Random(3)
        with open(os.path.join(folder, "1.Patient.ndjson"), "w") as f:
            for p in range(2000):
                f.write(json.dumps({"resourceType": "Patient", "id": f"p{p}", "gender": "female",
                                    "birthDate": "1950-01-01"}) + "\n")
        with open(os.path.join(folder, "2.Observation.ndjson"), "w") as f:
            for o in range(300000):
                f.write(json.dumps({
                    "resourceType": "Observation", "id": f"o{o}", "status": "final",
                    "meta": {"versionId": "1", "lastUpdated": "2026-11-01T00:00:00Z"},
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/p{rng.randrange(2000)}"},
                    "effectiveDateTime": "2026-10-01T08:00:00Z",
                    "valueQuantity": {"value": 70, "unit": "/min", "system": "http://unitsofmeasure.org",
                                      "code": "/min"}}) + "\n")
        code, err = self.stop_database_during(["backfill", "--ndjson", folder, "--batch", "500"], 1.5)
        self.assert_unavailable(code, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
