"""What the benchmarks share: a work folder, a throwaway PostgreSQL, the FHIR test server, a
pseudonym key and an adapter configuration over them."""
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def work_folder():
    """A new folder under /tmp that PostgreSQL's own user can reach."""
    work = tempfile.mkdtemp(prefix="fra-bench-", dir="/tmp")
    os.chmod(work, 0o755)
    return work


def postgresql(work, port):
    """A throwaway cluster in `work`/pg on `port`: its folder and database URL."""
    pg = os.path.join(work, "pg")
    url = subprocess.run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "start", pg, str(port)], check=True,
                         capture_output=True, text=True).stdout.strip()
    return pg, url


def fhir_server(work, port, patients, seed=42, *options):
    """The FHIR test server on `port` with generated patients: its base URL and log (the pid is in
    LOG.pid)."""
    log = os.path.join(work, "fhir.log")
    base = subprocess.run(["bash", f"{ROOT}/deploy/fhir-sandbox.sh", str(port), str(patients), str(seed), log,
                           *options], check=True, capture_output=True, text=True).stdout.strip()
    return base, log


def stop(pg, log):
    """Stops the FHIR server of `log` and the cluster in `pg`."""
    with open(log + ".pid") as f:
        os.kill(int(f.read()), 15)
    subprocess.run(["bash", f"{ROOT}/deploy/pg-sandbox.sh", "stop", pg], capture_output=True)


def adapter_config(work, fhir, url, extra=""):
    """adapter.toml in `work`: the server, the database, a new key, the shipped model; `extra`
    TOML after it. Its path."""
    key = os.path.join(work, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    cfg = os.path.join(work, "adapter.toml")
    with open(cfg, "w") as f:
        f.write(f'[fhir]\nbase_url = "{fhir}"\npage_size = 200\n[database]\nurl = "{url}"\n'
                f'[pseudonym]\nkey_file = "{key}"\n[model]\npath = "{ROOT}/models/readmission-risk"\n'
                f'[features]\nfile = "{ROOT}/models/readmission-risk/features.toml"\n{extra}')
    return cfg, key
