"""The throwaway PostgreSQL and FHIR test server check_corpus.py runs the adapter against, and what
it does with them: loads the corpus into the server, writes the adapter's configuration, queries
the store, computes the store's pseudonyms.
"""
import collections
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kwargs):
    """Runs `cmd`, output captured as text; the finished process (raises when it fails)."""
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


class Sandbox:
    """The throwaway PostgreSQL and FHIR test server in a work folder, stopped by stop()."""

    def __init__(self, work, validate):
        self.work = work
        self.pg = os.path.join(work, "pg")
        self.fhir_log = os.path.join(work, "fhir.log")
        self.db_url = self.fhir_base = None
        self.validate = validate

    def start(self):
        """Starts both; sets db_url and fhir_base."""
        self.db_url = run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "start", self.pg, str(free_port())]).stdout.strip()
        options = [] if self.validate else ["--no-validate"]
        self.fhir_base = run(["bash", f"{ROOT}/deploy/fhir-sandbox.sh", str(free_port()), "0", "42", self.fhir_log,
                              *options]).stdout.strip()

    def stop(self):
        """Stops the FHIR server (its pid is in fhir.log.pid) and the cluster; never raises."""
        try:
            with open(self.fhir_log + ".pid") as f:
                pid = int(f.read())
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
        except (OSError, ValueError):
            pass
        subprocess.run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "stop", self.pg], capture_output=True)


def http(method, url, body=None):
    """An HTTP request with a FHIR JSON body (bytes); (status, parsed answer)."""
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/fhir+json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def batch_bundle(resources):
    """A batch Bundle (bytes) of `PUT Type/<id>` entries for (type, id, raw line) triples."""
    entries = ",".join(f'{{"resource":{line},"request":{{"method":"PUT","url":"{t}/{i}"}}}}' for t, i, line in resources)
    return f'{{"resourceType":"Bundle","type":"batch","entry":[{entries}]}}'.encode()


def load(base, corpus):
    """Loads the corpus, one Bundle per patient (orphans in Bundles of 500 after them); the
    entries accepted per type and, for rejected ones, type -> Counter of reasons."""
    accepted, rejected = collections.Counter(), collections.defaultdict(collections.Counter)
    bundles = list(corpus.patients.values())
    bundles += [corpus.orphans[i:i + 500] for i in range(0, len(corpus.orphans), 500)]
    for resources in bundles:
        status, answer = http("POST", base, batch_bundle(resources))
        entries = answer.get("entry", []) if status == 200 else []
        for k, (resource_type, _, _) in enumerate(resources):
            response = entries[k].get("response", {}) if k < len(entries) else {}
            if response.get("status", "").startswith(("200", "201")):
                accepted[resource_type] += 1
            else:
                outcome = response.get("outcome") or answer
                issue = (outcome.get("issue") or [{}])[0]
                reason = f"{response.get('status', status)} {issue.get('details', {}).get('text', issue.get('diagnostics', ''))}"
                rejected[resource_type][reason[:200]] += 1
    return accepted, rejected


def server_count(base, resource_type):
    """What `GET Type?_summary=count` answers on the server (None on an error)."""
    status, answer = http("GET", f"{base}/{resource_type}?_summary=count")
    return answer.get("total") if status == 200 else None


def write_config(work, fhir_base, db_url, model):
    """adapter.toml in `work` (and a new 32-byte pseudonym key, mode 600); (config path, key path)."""
    key = os.path.join(work, "pseudonym.key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    config = os.path.join(work, "adapter.toml")
    with open(config, "w") as f:
        f.write(f"[fhir]\nbase_url = {json.dumps(fhir_base)}\npage_size = 1000\n\n"
                f"[database]\nurl = {json.dumps(db_url)}\n\n"
                f"[pseudonym]\nkey_file = {json.dumps(key)}\n\n"
                f"[model]\npath = {json.dumps(model)}\n\n"
                f"[features]\nfile = {json.dumps(os.path.join(model, 'features.toml'))}\n")
    return config, key


def sql(db_url, query):
    """Rows of `query` on the sandbox database, each a list of strings."""
    out = run(["psql", db_url, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query],
              env={**os.environ, "PGTZ": "UTC"}).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def pseudonym(key, resource_type, fhir_id):
    """The store's key of a resource: HMAC-SHA256 of "<type>/<id>" under the pseudonym key, hex."""
    return hmac.new(key, f"{resource_type}/{fhir_id}".encode(), hashlib.sha256).hexdigest()
