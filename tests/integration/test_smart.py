#!/usr/bin/python3
"""SMART Backend Services end to end: the adapter signs client assertions (RS384 and ES384), the
test server's token endpoint verifies signature, aud, exp and jti, and every FHIR request then
needs the bearer token; a revoked token is renewed once; a wrong key is refused in one line.

Run by tests/integration/run.sh or ctest, against the shared servers, in databases of its own;
it leaves the server's authentication as it found it.
"""
import json
import os
import subprocess
import unittest
import urllib.error
import urllib.request

from support import adapter, database, fhir_base, fhir_origin, work, write_config
from support.keys import keypair


def admin(body):
    req = urllib.request.Request(fhir_origin() + "/admin/smart", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def smart_config(name, db, client_id, key):
    path = write_config(name, db=db)
    with open(path) as f:
        text = f.read()
    text = text.replace("[fhir]\n", f'[fhir]\nsmart_token_url = "{fhir_origin()}/auth/token"\n'
                                                 f'smart_client_id = "{client_id}"\nsmart_private_key_file = "{key}"\n'
                                                 f'smart_key_id = "{client_id}-key"\n', 1)
    with open(path, "w") as f:
        f.write(text)
    return path


class Smart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rsa_key, rsa_pub = keypair("rsa", "rsa")
        cls.ec_key, ec_pub = keypair("ec", "ec")
        cls.other_key, _ = keypair("other", "rsa")
        admin({"clientId": "adapter-rsa", "publicKeyPem": rsa_pub})
        admin({"clientId": "adapter-ec", "publicKeyPem": ec_pub, "required": True})

    @classmethod
    def tearDownClass(cls):
        admin({"required": False, "revoke": True})

    def test_requests_without_a_token_are_refused(self):
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(fhir_base() + "/Patient?_count=1")
        self.assertEqual(e.exception.code, 401)

    def test_rs384_and_es384_clients_sync(self):
        for client, key in (("adapter-rsa", self.rsa_key), ("adapter-ec", self.ec_key)):
            db = database(client.split("-")[1])
            cfg = smart_config(f"smart-{client}.toml", db, client, key)
            self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
            run = adapter("sync", "--once", "--config", cfg)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            self.assertRegex(run.stdout, r"Observation +fetched +\d{4,}")
            self.assertNotIn("PRIVATE KEY", run.stdout + run.stderr)

    def test_a_revoked_token_is_renewed_on_401(self):
        db = database("renew")
        cfg = smart_config("smart-renew.toml", db, "adapter-rsa", self.rsa_key)
        self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        before = admin({})["issued"]
        admin({"revokeEvery": 15})  # tokens die every 15 requests: the adapter meets 401 mid-run
        try:
            run = adapter("sync", "--once", "--config", cfg)
        finally:
            admin({"revokeEvery": 0})
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertRegex(run.stdout, r"Observation +fetched +\d{4,}")
        self.assertGreater(admin({})["issued"] - before, 3, "expected a new token after each revocation")

    def test_static_bearer_token_from_a_file_or_the_environment(self):
        admin({"mint": "static-token-123"})
        token_file = os.path.join(work(), "bearer.token")
        with open(token_file, "w") as f:
            f.write("static-token-123\n")
        os.chmod(token_file, 0o600)  # a secret file others can read is refused
        db = database("bearer")
        from_file = write_config("bearer.toml", db=db)
        with open(from_file) as f:
            text = f.read()
        with open(from_file, "w") as f:
            f.write(text.replace("[fhir]\n", f'[fhir]\nbearer_token_file = "{token_file}"\n', 1))
        self.assertEqual(adapter("migrate", "--config", from_file).returncode, 0)
        run = adapter("sync", "--once", "--config", from_file)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        plain = write_config("bearer_env.toml", db=db)
        run = adapter("sync", "--once", "--config", plain, env={"FRA_FHIR_BEARER_TOKEN": "static-token-123"})
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        run = adapter("sync", "--once", "--config", plain, env={"FRA_FHIR_BEARER_TOKEN": "not-a-token"})
        self.assertEqual(run.returncode, 69, run.stdout + run.stderr)
        self.assertIn("HTTP 401", run.stderr)
        self.assertNotIn("not-a-token", run.stdout + run.stderr)

    def test_a_key_the_server_does_not_know_is_refused_in_one_line(self):
        db = database("wrong_key")
        cfg = smart_config("smart-wrong.toml", db, "adapter-rsa", self.other_key)
        self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        run = adapter("sync", "--once", "--config", cfg)
        self.assertEqual(run.returncode, 69, run.stdout + run.stderr)
        errors = [line for line in run.stderr.splitlines() if "error:" in line]
        self.assertEqual(len(errors), 1, run.stderr)
        self.assertIn("refused the client credentials: HTTP 401, invalid_client: signature does not verify", errors[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
