#!/usr/bin/python3
"""TLS: a FHIR server with a certificate from a hospital's own CA and mutual TLS. The adapter
syncs when told the CA and given its client certificate; without the CA, or without a client
certificate, it stops with one line. Also HTTP basic authentication on the plain server.

Run by tests/integration/run.sh or ctest: starts an HTTPS test server of its own; basic
authentication is tried on the shared server, in databases of its own.
"""
import json
import os
import signal
import subprocess
import unittest
import urllib.request

from support import adapter, database, fhir_origin, free_port, work, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(folder):
    os.makedirs(folder, exist_ok=True)
    p = lambda name: os.path.join(folder, name)  # noqa: E731
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Hospital Test CA", "-days", "2",
            "-keyout", p("ca.key"), "-out", p("ca.pem"))
    with open(p("san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "fhir-risk-adapter")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", p(f"{name}.key"),
                "-out", p(f"{name}.csr"))
        openssl("x509", "-req", "-in", p(f"{name}.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
                "-CAcreateserial", "-days", "2", "-out", p(f"{name}.pem"), "-extfile", p("san.ext"))
        os.chmod(p(f"{name}.key"), 0o600)
    return p


def with_lines(path, extra):
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("[fhir]\n", "[fhir]\n" + extra, 1))
    return path


def one_error_line(test, run, needle):
    test.assertEqual(run.returncode, 69, run.stdout + run.stderr)
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    test.assertEqual(len(errors), 1, run.stderr)
    test.assertIn(needle, errors[0])


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = staticmethod(make_pki(os.path.join(work(), "pki")))
        port = free_port()
        log = os.path.join(work(), "tls-fhir.log")
        cls.base = subprocess.run(
            ["bash", f"{ROOT}/deploy/fhir-sandbox.sh", str(port), "20", "3", log, "--tls-cert", cls.pki("server.pem"),
             "--tls-key", cls.pki("server.key"), "--tls-client-ca", cls.pki("ca.pem")],
            check=True, capture_output=True, text=True).stdout.strip()
        with open(log + ".pid") as f:
            cls.pid = int(f.read())

    @classmethod
    def tearDownClass(cls):
        os.kill(cls.pid, signal.SIGTERM)

    def config(self, name, extra):
        return with_lines(write_config(name, fhir=self.base, db=database(name.split(".")[0])), extra)

    def test_own_ca_and_client_certificate(self):
        self.assertTrue(self.base.startswith("https://"))
        cfg = self.config("tls_ok.toml", f'ca_file = "{self.pki("ca.pem")}"\nclient_cert_file = "{self.pki("client.pem")}"\n'
                                         f'client_key_file = "{self.pki("client.key")}"\n')
        self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        run = adapter("sync", "--once", "--config", cfg)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertRegex(run.stdout, r"Patient +fetched +20 ")

    def test_unknown_ca_is_refused(self):
        cfg = self.config("tls_noca.toml", "")
        self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        one_error_line(self, adapter("sync", "--once", "--config", cfg), "certificate")

    def test_missing_client_certificate_is_refused(self):
        cfg = self.config("tls_nocert.toml", f'ca_file = "{self.pki("ca.pem")}"\n')
        self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
        one_error_line(self, adapter("sync", "--once", "--config", cfg, env={"FRA_FHIR_MAX_ATTEMPTS": "1"}),
                       "GET https://")


class Basic(unittest.TestCase):
    def admin(self, body):
        req = urllib.request.Request(fhir_origin() + "/admin/smart", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()

    def test_basic_authentication(self):
        password = os.path.join(work(), "basic.password")
        with open(password, "w") as f:
            f.write("correct horse\n")
        os.chmod(password, 0o600)
        wrong = os.path.join(work(), "wrong.password")
        with open(wrong, "w") as f:
            f.write("battery staple\n")
        os.chmod(wrong, 0o600)  # the wrong password, not an open file, is what is refused
        self.admin({"basic": {"user": "fra", "password": "correct horse"}})
        try:
            ok = with_lines(write_config("basic.toml", db=database("basic")),
                            f'basic_user = "fra"\nbasic_password_file = "{password}"\n')
            bad = with_lines(write_config("basic_bad.toml", db=database("basic_bad")),
                             f'basic_user = "fra"\nbasic_password_file = "{wrong}"\n')
            for cfg in (ok, bad):
                self.assertEqual(adapter("migrate", "--config", cfg).returncode, 0)
            run = adapter("sync", "--once", "--config", ok)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            run = adapter("sync", "--once", "--config", bad)
            one_error_line(self, run, "HTTP 401")
            self.assertNotIn("battery", run.stdout + run.stderr)
        finally:
            self.admin({"basic": None})


if __name__ == "__main__":
    unittest.main(verbosity=2)
