"""The adapter under test: its key, its configuration files and running it."""
import functools
import hashlib
import hmac
import json
import os
import subprocess

from support.env import binary, fhir_base, model_dir, work
from support.postgres import store_url


def write_key(name, nbytes, mode=0o600):
    """A new random key file of `nbytes` in this module's work folder; its path."""
    path = os.path.join(work(), name)
    with open(path, "wb") as f:
        f.write(os.urandom(nbytes))
    os.chmod(path, mode)
    return path


@functools.cache
def pseudonym_key():
    """This module's pseudonym key, made on first use: every configuration of the module shares
    it, as one deployment does. Another module has another key, so its pseudonyms and the
    identifiers of the RiskAssessments it writes are its own."""
    return write_key("pseudonym.key", 32)


def write_config(name, fhir=None, db=None, key=None, skip=(), features=None, model=None):
    """An adapter configuration file in the work folder: the shared FHIR server, the module's main
    database and key and the model package (and its features.toml) unless told otherwise; keys
    named in `skip` ("database.url") left out. Its path."""
    model = model or model_dir()
    sections = {"fhir": {"base_url": fhir or fhir_base(), "page_size": 100},
                "database": {"url": db or store_url()},
                "pseudonym": {"key_file": key or pseudonym_key()},
                "model": {"path": model},
                "features": {"file": features or os.path.join(model, "features.toml")}}
    path = os.path.join(work(), name)
    with open(path, "w") as f:
        for section, keys in sections.items():
            f.write(f"[{section}]\n")
            for k, v in keys.items():
                if f"{section}.{k}" not in skip:
                    f.write(f"{k} = {json.dumps(v)}\n")
    return path


@functools.cache
def config():
    """The module's main configuration (adapter.toml), made on first use."""
    return write_config("adapter.toml")


def adapter(*args, env=None):
    """Runs the adapter; the finished process, output captured as text."""
    return subprocess.run([binary(), *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=600)


def ok(*args, env=None):
    """Runs the adapter and asserts that it exits 0; the finished process."""
    run = adapter(*args, env=env)
    assert run.returncode == 0, f"{' '.join(args)}: exit {run.returncode}\n{run.stdout}{run.stderr}"
    return run


def pseudonym(resource_type, fhir_id, key_file=None):
    """The store's key of a resource: HMAC-SHA256 of "<type>/<id>" under the pseudonym key (the
    module's by default)."""
    with open(key_file or pseudonym_key(), "rb") as f:
        secret = f.read()
    return hmac.new(secret, f"{resource_type}/{fhir_id}".encode(), hashlib.sha256).hexdigest()
