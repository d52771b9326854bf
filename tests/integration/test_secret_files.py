#!/usr/bin/python3
"""Every file the configuration names that holds a secret is refused, with exit 78 and one line
naming its key, when group or others may read it, when it is missing, or when it is empty; the
secret itself never appears in the output.

Defect 3: fhir.basic_password_file and fhir.bearer_token_file were read without the mode check
the key files had. The database named here does not exist, so a command that wrongly gets past
the secrets stops at the database (exit 69) and touches nothing another module uses.

Run by tests/integration/run.sh or ctest (alone: run.sh BINARY test_secret_files).
"""
import json
import os
import unittest

from support import adapter, cluster_url, work, write_config

SECRET = "Zq9-not-for-any-log-" + os.urandom(8).hex()


def absent_db():
    """A database on the test cluster that nobody creates."""
    return cluster_url().rsplit("/", 1)[0] + "/secret_files_absent"


def secret_file(name, mode, text=SECRET * 2):
    path = os.path.join(work(), "secrets", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def config_with(name, lines, key=None):
    """The shared test configuration, on the absent database, with `lines` added: a dict of
    section to the keys and values to add to it."""
    path = write_config(name, db=absent_db(), **({"key": key} if key else {}))
    with open(path) as f:
        text = f.read()
    for section, added in lines.items():
        block = "".join(f"{k} = {json.dumps(v)}\n" for k, v in added.items())
        if f"[{section}]\n" in text:
            text = text.replace(f"[{section}]\n", f"[{section}]\n{block}", 1)
        else:
            text += f"[{section}]\n{block}"
    with open(path, "w") as f:
        f.write(text)
    return path


# The key, the command that reads it, and the other keys it needs to be read at all.
CASES = {
    "fhir.basic_password_file": (["sync", "--once"], {"fhir": {"basic_user": "fra"}}),
    "fhir.bearer_token_file": (["sync", "--once"], {}),
    "fhir.client_key_file": (["sync", "--once"], {"fhir": {"client_cert_file": "@cert"}}),
    "fhir.smart_private_key_file": (["sync", "--once"], {"fhir": {
        "smart_token_url": "http://127.0.0.1:9/token", "smart_client_id": "fra"}}),
    "pseudonym.key_file": (["sync", "--once"], {}),
    "pseudonym.seal_key_file": (["sync", "--once"], {}),
    "subscription.secret_file": (["run"], {"sync": {"mode": "subscription"}, "subscription": {
        "endpoint": "http://127.0.0.1:9/notify"}, "http": {"listen": "127.0.0.1:0"}}),
}


class SecretFiles(unittest.TestCase):
    def run_with(self, key, path, label):
        args, others = CASES[key]
        lines = {section: dict(keys) for section, keys in others.items()}
        if lines.get("fhir", {}).get("client_cert_file") == "@cert":  # there; libcurl reads it
            lines["fhir"]["client_cert_file"] = secret_file("client.pem", 0o644, "-----BEGIN CERTIFICATE-----\n")
        section, name = key.split(".")
        if key == "pseudonym.key_file":  # the shared configuration names one already
            cfg = config_with(f"secret-{label}.toml", lines, key=path)
        else:
            lines.setdefault(section, {})[name] = path
            cfg = config_with(f"secret-{label}.toml", lines)
        return adapter(*args, "--config", cfg, env={"FRA_FHIR_MAX_ATTEMPTS": "1"})

    def assert_one_line(self, run, line):
        self.assertEqual(run.returncode, 78, run.stdout + run.stderr)
        self.assertEqual(run.stderr.strip().splitlines(), [line])
        self.assertNotIn(SECRET[:12], run.stdout + run.stderr)

    def test_defect_3_a_secret_file_others_can_read_is_accepted(self):
        for key in CASES:
            for mode in (0o644, 0o640, 0o604):
                with self.subTest(key=key, mode=oct(mode)):
                    label = f"{key.replace('.', '-')}-{mode:o}"
                    path = secret_file(label, mode)
                    run = self.run_with(key, path, label)
                    self.assert_one_line(run, f"fhir-risk-adapter: error: {key}: {path}: readable by group or "
                                              f"others (mode {mode:o}); chmod 600 it")

    def test_the_same_file_at_0600_gets_past_the_check(self):
        for key in CASES:
            if key == "subscription.secret_file":
                continue  # at 0600 `run` would start; test_daemon covers a good secret
            with self.subTest(key=key):
                label = f"{key.replace('.', '-')}-600"
                run = self.run_with(key, secret_file(label, 0o600), label)
                self.assertNotIn("readable by group or others", run.stderr)
                self.assertNotIn(SECRET[:12], run.stdout + run.stderr)

    def test_a_missing_or_empty_secret_file_is_refused(self):
        for key in ("fhir.basic_password_file", "fhir.bearer_token_file"):
            with self.subTest(key=key):
                label = key.replace(".", "-")
                missing = os.path.join(work(), "secrets", "absent-" + label)
                self.assert_one_line(self.run_with(key, missing, "absent-" + label),
                                     f"fhir-risk-adapter: error: {key}: {missing}: cannot read (No such file or "
                                     "directory)")
                empty = secret_file("empty-" + label, 0o600, "")
                self.assert_one_line(self.run_with(key, empty, "empty-" + label),
                                     f"fhir-risk-adapter: error: {key}: {empty}: the file is empty")

    def test_a_new_key_file_for_rekey_is_held_to_the_same_rule(self):
        path = secret_file("new-key-644", 0o644)
        cfg = write_config("secret-rekey.toml", db=absent_db())
        run = adapter("rekey", "--config", cfg, "--new-key-file", path)
        self.assert_one_line(run, f"fhir-risk-adapter: error: --new-key-file: {path}: readable by group or others "
                                  "(mode 644); chmod 600 it")


if __name__ == "__main__":
    unittest.main(verbosity=2)
