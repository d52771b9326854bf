#!/usr/bin/python3
"""Nothing identifies a patient: after an end-to-end run of the daemon (debug logging, the most
it ever says), a change, dead letters, `sync --once`, `audit verify` and `audit rescore`, no
generated patient's FHIR id, identifier value, name, birth date, phone number or address line is
in a `pg_dump` of the database, in the adapter's logs and output, or in its `/metrics`.

Run by tests/integration/run.sh or ctest, against the shared servers, in a database of its own.
"""
import subprocess
import unittest

from support import adapter, fhir_all, fhir_post, free_port, occurring, store_url, vital_sign, write_config
from support.daemon import Daemon, daemon_config


def needles():
    """Every identifying value of every Patient on the server."""
    out = set()
    for p in fhir_all("Patient?_count=1000"):
        out.add(p["id"])
        out.update(i["value"] for i in p.get("identifier", []))
        for n in p.get("name", []):
            if n.get("family"):
                out.add(n["family"])
            out.update(n.get("given", []))
        if p.get("birthDate"):
            out.add(p["birthDate"])
        out.update(t["value"] for t in p.get("telecom", []))
        out.update(a["line"][0] for a in p.get("address", []) if a.get("line"))
    return out


class Privacy(unittest.TestCase):
    def test_no_patient_identity_in_database_logs_or_metrics(self):
        db = store_url()
        texts = {}
        migrate = adapter("migrate", "--config", write_config("privacy-migrate.toml", db=db))
        self.assertEqual(migrate.returncode, 0, migrate.stderr)
        port = free_port()
        cfg = daemon_config("privacy.toml", db, port, '[log]\nlevel = "debug"\n')
        d = Daemon(cfg, port, "privacy.log")
        try:
            patients = fhir_all("Patient?_count=1000")
            d.wait_until("the first sync", lambda: d.idle(len(patients)), timeout=120)
            dead_letters = lambda: sum(v for (n, _), v in d.metrics()[0].items()  # noqa: E731
                                       if n == "fra_resources_dead_lettered_total")
            before = dead_letters()  # what other modules left on the shared server
            p = patients[0]["id"]
            fhir_post(vital_sign(p, "8867-4", 171, "/min"))
            fhir_post(vital_sign(p, "8867-4", 80, "kg"))  # a dead letter
            fhir_post(vital_sign(p, "59408-5", 250, "%"))  # an implausible value
            d.wait_until("the dead letters", lambda: dead_letters() >= before + 2)
            texts["metrics"] = d.metrics()[1]
            for path in ("/healthz", "/readyz"):
                texts[path] = d.get(path)[1]
        finally:
            code, _ = d.stop()
        self.assertEqual(code, 0)
        texts["daemon log"] = d.output()
        for args in (("sync", "--once", "--config", cfg), ("audit", "verify", "--config", cfg),
                     ("audit", "rescore", "--config", cfg)):
            run = adapter(*args, env={"FRA_LOG_LEVEL": "debug"})
            texts[" ".join(args[:2])] = run.stdout + run.stderr
        texts["pg_dump"] = subprocess.run(["pg_dump", db], check=True, capture_output=True, text=True).stdout

        # What is scanned is the real thing.
        self.assertGreater(texts["daemon log"].count("\n"), 50)
        self.assertIn(" debug ", texts["daemon log"])
        self.assertIn("fra_resources_ingested_total", texts["metrics"])
        self.assertIn("COPY public.audit_log", texts["pg_dump"])
        self.assertIn("COPY public.dead_letter", texts["pg_dump"])
        found = needles()
        self.assertGreater(len(found), 5 * len(patients))
        leaks = {name: occurring(found, text)[:5] for name, text in texts.items()}
        self.assertEqual({k: v for k, v in leaks.items() if v}, {})


if __name__ == "__main__":
    unittest.main(verbosity=2)
