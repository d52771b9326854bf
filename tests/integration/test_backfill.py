#!/usr/bin/python3
"""Backfill: Bulk Data ndjson files of everything on the FHIR test server load into a store
identical to a sync's; bad lines become dead letters with a reason while the good lines around
them are stored; a second backfill of the same files changes nothing.

Run by tests/integration/run.sh or ctest, against the shared servers, in databases of its own.
"""
import json
import os
import random
import re
import signal
import subprocess
import time
import unittest

from support import adapter, binary, database, fhir_all, psql, table_hashes, work, write_config

# What a backfill stores: the inputs and their lineage (a sync also scores and writes back).
STORE_TABLES = ["resource_version", "patient", "observation_value", "encounter", "condition_code", "input_version"]


def export(folder):
    """What a Bulk Data $export would write: one ndjson file per resource type."""
    os.makedirs(folder, exist_ok=True)
    counts = {}
    for i, rtype in enumerate(("Patient", "Encounter", "Condition", "Observation")):
        resources = fhir_all(f"{rtype}?_count=1000")
        with open(os.path.join(folder, f"{i}.{rtype}.ndjson"), "w") as f:
            for r in resources:
                f.write(json.dumps(r) + "\n")
        counts[rtype] = len(resources)
    return counts


def observation(oid, **changes):
    o = {"resourceType": "Observation", "id": oid, "meta": {"versionId": "1", "lastUpdated": "2026-11-01T00:00:00Z"},
         "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
         "subject": {"reference": "Patient/backfill-patient"}, "effectiveDateTime": "2026-10-30T08:00:00Z",
         "valueQuantity": {"value": 72, "system": "http://unitsofmeasure.org", "code": "/min"}}
    o.update(changes)
    return json.dumps(o).encode()


def many_versions(folder, n_obs=60000, n_pat=300):
    """ndjson of many Observations of a few patients: some twice, the second version newer, with
    other values and, now and then, another patient; a few bad lines (dead letters)."""
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(12)
    with open(os.path.join(folder, "1.Patient.ndjson"), "w") as f:
        for p in range(n_pat):
            f.write(json.dumps({"resourceType": "Patient", "id": f"wp{p}", "gender": "female",
                                "meta": {"versionId": "1", "lastUpdated": "2026-11-01T00:00:00Z"},
                                "birthDate": "1950-01-01"}) + "\n")
    with open(os.path.join(folder, "2.Observation.ndjson"), "w") as f:
        for o in range(n_obs):
            version = 2 if o % 10 == 9 else 1
            oid = f"wo{o - 9 if version == 2 else o}"  # the 10th line: a new version of the 1st
            patient = rng.randrange(n_pat)
            f.write(json.dumps({
                "resourceType": "Observation", "id": oid, "status": "final",
                "meta": {"versionId": str(version), "lastUpdated": f"2026-11-0{version}T00:00:00Z"},
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": f"Patient/wp{patient}"}, "effectiveDateTime": "2026-10-30T08:00:00Z",
                "valueQuantity": {"value": 60 + o % 40, "system": "http://unitsofmeasure.org", "code": "/min"}})
                + "\n")
            if o % 5000 == 0:
                f.write("not json\n")


class Backfill(unittest.TestCase):
    def test_backfill_equals_sync_and_survives_bad_lines(self):
        folder = os.path.join(work(), "export")
        counts = export(folder)
        synced, filled = database("sync"), database("filled")
        sync_cfg, fill_cfg = write_config("bf_sync.toml", db=synced), write_config("bf.toml", db=filled)
        for cfg in (sync_cfg, fill_cfg):
            self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        run = adapter("sync", "--once", "--config", sync_cfg)
        self.assertEqual(run.returncode, 0, run.stderr)

        run = adapter("backfill", "--ndjson", folder, "--config", fill_cfg, "--batch", "700")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn(f"backfilled {sum(counts.values())} resources from 4 files", run.stdout)
        a, b = table_hashes(synced), table_hashes(filled)
        for table in STORE_TABLES:
            self.assertEqual(b[table], a[table], table)
        self.assertEqual(sql_in(filled, "SELECT count(*) FROM sync_cursor"), "0", "a backfill must not move cursors")

        # Bad lines between good ones, in a file of their own.
        lines = [
            observation("good-1"),
            b"this is not json",
            observation("bad-utf8", meta={"versionId": "1\xff", "lastUpdated": "2026-11-01T00:00:00Z"})
            .replace(b'"1\\u00ff"', b'"1\xff"'),
            b"[" * 10000 + b"]" * 10000,
            b'{"resourceType": "Observation", "id": "huge", "note": [{"text": "' + b"x" * (17 << 20) + b'"}]}',
            observation("no-subject", subject={"display": "somebody"}),
            observation("bad-date", effectiveDateTime="yesterday"),
            observation("bad-type", valueQuantity=None, valueString="high"),
            observation("bad-unit", valueQuantity={"value": 72, "system": "http://unitsofmeasure.org", "code": "kg"}),
            observation("absurd", valueQuantity={"value": 4000, "system": "http://unitsofmeasure.org", "code": "/min"}),
            observation("good-2", effectiveDateTime="2026-10-31T08:00:00Z"),
        ]
        bad_folder = os.path.join(work(), "export-bad")
        os.makedirs(bad_folder, exist_ok=True)
        with open(os.path.join(bad_folder, "Observation.ndjson"), "wb") as f:
            f.write(b"\n".join(line for line in lines) + b"\n")
        run = adapter("backfill", "--ndjson", bad_folder, "--config", fill_cfg, "--batch", "3")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertRegex(run.stdout, r"Observation +lines +11 +stored +2 +unchanged +0 +dead-lettered +9 ")
        reasons = sql_in(filled, "SELECT string_agg(reason_code, ',' ORDER BY reason_code) FROM dead_letter")
        for code in ("not-json", "invalid-utf8", "too-large", "missing-subject", "bad-date", "bad-value",
                     "unknown-unit", "implausible-value"):
            self.assertIn(code, reasons)
        self.assertEqual(sql_in(filled, "SELECT count(*) FROM observation_value WHERE patient_key IN "
                                        "(SELECT patient_key FROM observation_value GROUP BY patient_key "
                                        "HAVING count(*) = 2 AND min(value) = 72 AND max(value) = 72)"), "2")
        dead = sql_in(filled, "SELECT count(*) FROM dead_letter")

        again = adapter("backfill", "--ndjson", bad_folder, "--config", fill_cfg)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertRegex(again.stdout, r"stored +0 +unchanged +11 +dead-lettered +0 ")
        self.assertEqual(sql_in(filled, "SELECT count(*) FROM dead_letter"), dead, "dead letters recorded twice")

    def test_writers_side_by_side_and_sigkill_lose_and_duplicate_nothing(self):
        folder = os.path.join(work(), "many-versions")
        many_versions(folder)
        one, four, killed = database("one_writer"), database("four_writers"), database("killed_writers")
        cfgs = [write_config(f"{name}.toml", db=url)
                for name, url in (("one_writer", one), ("four_writers", four), ("killed_writers", killed))]
        for cfg in cfgs:
            self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        ref = adapter("backfill", "--ndjson", folder, "--config", cfgs[0], "--writers", "1", "--batch", "2000")
        self.assertEqual(ref.returncode, 0, ref.stdout + ref.stderr)
        # A first version in the same batch as its second is not stored: counted unchanged.
        lines = re.search(r"Observation +lines +(\d+) +stored +(\d+) +unchanged +(\d+) +dead-lettered +(\d+) ",
                          ref.stdout)
        self.assertIsNotNone(lines, ref.stdout)
        self.assertEqual([int(lines[1]), int(lines[2]) + int(lines[3]), int(lines[4])], [60012, 60000, 12])
        self.assertEqual(sql_in(one, "SELECT count(*) FROM resource_version WHERE resource_type = 'Observation' "
                                     "AND version_id = '2'"), "6000")
        self.assertEqual(sql_in(one, "SELECT count(*) FROM observation_value"), "54000")
        reference = table_hashes(one)

        run = adapter("backfill", "--ndjson", folder, "--config", cfgs[1], "--writers", "4", "--batch", "2000")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertEqual(table_hashes(four), reference)

        # Three writers, killed at moments through the load, then let finish: the same store. (The
        # same batches: a version and its successor in one batch leave one lineage row, in two
        # batches two, as a sync that saw both would.)
        rng = random.Random(5)
        kills = 0
        for delay in (0.3, 0.6, 0.9, 1.2, 0.5):
            proc = subprocess.Popen([binary(), "backfill", "--ndjson", folder, "--config", cfgs[2], "--writers",
                                     "3", "--batch", "2000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(delay + rng.uniform(0, 0.1))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate()
        self.assertGreaterEqual(kills, 3, "the backfill finished before it could be killed")
        last = adapter("backfill", "--ndjson", folder, "--config", cfgs[2], "--writers", "3", "--batch", "2000")
        self.assertEqual(last.returncode, 0, last.stdout + last.stderr)
        self.assertEqual(table_hashes(killed), reference)

    def test_bulk_export_loads_the_server_and_sets_the_cursors(self):
        exported, ref = database("export"), database("export_ref")
        exp_cfg, ref_cfg = write_config("export.toml", db=exported), write_config("export_ref.toml", db=ref)
        for cfg in (exp_cfg, ref_cfg):
            self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        run = adapter("backfill", "--export", "--config", exp_cfg)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertRegex(run.stdout, r"bulk export Patient/\$export: 4 files after 2 status polls, as of 20")
        self.assertEqual(adapter("sync", "--once", "--config", ref_cfg).returncode, 0)
        a, b = table_hashes(ref), table_hashes(exported)
        for table in STORE_TABLES:
            self.assertEqual(b[table], a[table], table)
        self.assertEqual(sql_in(exported, "SELECT count(*) FROM sync_cursor"), "4")
        # Each cursor the export set is an audit event of its own, at the cursor's instant.
        self.assertEqual(sql_in(exported, "SELECT string_agg(object, ',' ORDER BY object) FROM audit_log "
                                          "WHERE action = 'cursor'"), "Condition,Encounter,Observation,Patient")
        self.assertEqual(sql_in(exported, "SELECT count(*) FROM audit_log a JOIN sync_cursor c "
                                          "ON c.resource_type = a.object WHERE a.action = 'cursor' AND "
                                          "(a.details->>'cursor')::timestamptz = c.last_updated"), "4")
        after = adapter("sync", "--once", "--config", exp_cfg)
        self.assertEqual(after.returncode, 0, after.stderr)
        for rtype in ("Patient", "Encounter", "Condition", "Observation"):
            self.assertRegex(after.stdout, rf"{rtype} +fetched +\d+ +stored +0 ")
        self.assertEqual([d for d in os.listdir("/tmp") if d.startswith("fra-export.")], [], "export files left behind")


def sql_in(url, query):
    return psql(url, query).stdout.strip()


if __name__ == "__main__":
    unittest.main(verbosity=2)
