#!/usr/bin/python3
"""Defect: "identical store" forgot a table. The crash, fault, backfill and daemon tests call two
stores identical when every table's content hash is equal; the tables were a list written out by
hand, which left out input_version (each score's lineage) when it came, so lineage was never
compared. What is compared now comes from information_schema, less an explicit list of what two
correct runs may differ in, each with its reason (support/identical.py).

Run by tests/integration/run.sh or ctest; needs only the shared PostgreSQL.
"""
import unittest

from support import database, ok, psql, table_hashes, write_config
from support.identical import COMPARED_BY_PRESENCE, UNCOMPARED_COLUMNS, UNCOMPARED_TABLES


def migrated(name):
    """A new database, migrated; its URL."""
    url = database(name)
    # migrate reads no FHIR server: an address where none listens will do.
    ok("migrate", "--config", write_config(f"{name}.toml", fhir="http://127.0.0.1:9/fhir/R4", db=url))
    return url


def run(url, *statements):
    psql(url, "; ".join(statements))


def differing(a, b):
    """The tables whose hashes differ between the databases at `a` and `b`."""
    ha, hb = table_hashes(a), table_hashes(b)
    return sorted(t for t in ha.keys() | hb.keys() if ha.get(t) != hb.get(t))


class IdenticalStore(unittest.TestCase):
    def test_identical_store_compares_every_table(self):
        url = migrated("tables")
        tables = {line for line in psql(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                             "current_schema() AND table_type = 'BASE TABLE'").stdout.split()}
        self.assertIn("input_version", tables)
        self.assertEqual(sorted(table_hashes(url)), sorted(tables - UNCOMPARED_TABLES))
        # Every exclusion names what is there: a stale one would read as a reason that no longer holds.
        columns = {tuple(line.split("|")) for line in psql(url, "SELECT table_name, column_name FROM "
                                                                "information_schema.columns WHERE table_schema = "
                                                                "current_schema()").stdout.split()}
        self.assertEqual(UNCOMPARED_TABLES - tables, set())
        self.assertEqual((UNCOMPARED_COLUMNS | COMPARED_BY_PRESENCE) - columns, set())

    def test_identical_store_sees_a_difference_in_lineage(self):
        a, b = migrated("lineage_a"), migrated("lineage_b")
        self.assertEqual(differing(a, b), [])
        run(b, "INSERT INTO input_version (resource_type, resource_key, version_id, patient_key) "
               "VALUES ('Observation', 'an-observation', '1', 'a-patient')")
        self.assertEqual(differing(a, b), ["input_version"])

    def test_identical_store_compares_a_table_or_column_a_migration_adds(self):
        a, b = migrated("added_a"), migrated("added_b")
        for url in (a, b):
            run(url, "CREATE TABLE added_later (id int PRIMARY KEY, what text)",
                "ALTER TABLE patient ADD COLUMN added_later text")
        run(a, "INSERT INTO added_later VALUES (1, 'one')")
        run(b, "INSERT INTO added_later VALUES (1, 'two')")
        self.assertEqual(differing(a, b), ["added_later"])
        run(a, "INSERT INTO patient (patient_key, sealed_ref, added_later) VALUES ('a-patient', '\\x01', 'one')")
        run(b, "INSERT INTO patient (patient_key, sealed_ref, added_later) VALUES ('a-patient', '\\x01', 'two')")
        self.assertEqual(differing(a, b), ["added_later", "patient"])

    def test_what_two_correct_runs_differ_in_is_left_out(self):
        a, b = migrated("excluded_a"), migrated("excluded_b")
        # The same patient stored at another time, its reference sealed under another nonce.
        run(a, "INSERT INTO patient (patient_key, birth_year, sex, sealed_ref, stored_at) "
               "VALUES ('a-patient', 1950, 'female', '\\x01', now() - interval '1 day')")
        run(b, "INSERT INTO patient (patient_key, birth_year, sex, sealed_ref) VALUES ('a-patient', 1950, 'female', '\\x02')")
        # The same lineage, superseded at other times: compared by whether it was.
        for url in (a, b):
            run(url, "INSERT INTO input_version (resource_type, resource_key, version_id, patient_key, superseded_at) "
                     "VALUES ('Observation', 'an-observation', '1', 'a-patient', clock_timestamp())")
        self.assertEqual(differing(a, b), [])
        run(b, "UPDATE input_version SET superseded_at = NULL")
        self.assertEqual(differing(a, b), ["input_version"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
