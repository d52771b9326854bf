"""Databases on the test cluster. Every module works in databases of its own, named after it
(test_faults' "clean" is faults_clean), so that no module sees another's rows."""
import functools
import re
import subprocess

from support.env import cluster_url, module_name


def psql(url, query, check=True):
    """Runs `query` in the database at `url`; the finished process (stdout unaligned, tuples only)."""
    return subprocess.run(["psql", url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query], check=check,
                          capture_output=True, text=True)


_made = set()


def database(name):
    """A new, empty database `<module>_<name>` (a previous run's is dropped first); its URL."""
    full = f"{module_name().removeprefix('test_')}_{name}"
    assert re.fullmatch(r"[a-z][a-z0-9_]{0,62}", full), full
    assert full not in _made, f"database {full} made twice in one run"
    _made.add(full)
    psql(cluster_url(), f"DROP DATABASE IF EXISTS {full} WITH (FORCE)")
    psql(cluster_url(), f"CREATE DATABASE {full}")
    return cluster_url().rsplit("/", 1)[0] + "/" + full


@functools.cache
def store_url():
    """The module's own main database, made on first use: the one `sql` and `config()` use."""
    return database("store")


def sql(query, url=None):
    """Rows of `query` in `url` (the module's main database by default), each a list of strings."""
    out = subprocess.run(["psql", url or store_url(), "-X", "-A", "-t", "-F", "\t", "-c", query], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]
