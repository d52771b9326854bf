"""The environment a test module runs in, as tests/integration/run_module.sh passes it:

- FRA_TEST_BINARY  the adapter binary under test
- FRA_TEST_DB      a database URL on the throwaway PostgreSQL cluster (the fixture's); each
                   module makes databases of its own next to it (support.postgres)
- FRA_TEST_FHIR    the FHIR test server's base URL (the fixture's: 200 patients, seed 42);
                   unset for modules that start their own server
- FRA_TEST_WORK    a folder of this module's own, for keys, configuration files and logs
- FRA_TEST_MODEL   the model package
- FRA_TEST_MODULE  the module's name (default: the file run as __main__)

Each is read when asked for, so that importing needs none of them.
"""
import os
import socket
import sys


def _get(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the module with tests/integration/run.sh or ctest")
    return value


def binary():
    return _get("FRA_TEST_BINARY")


def cluster_url():
    """The URL of the database the cluster was made with: where databases are created from."""
    return _get("FRA_TEST_DB")


def fhir_base():
    """The shared FHIR test server's base URL, e.g. http://127.0.0.1:PORT/fhir/R4."""
    return _get("FRA_TEST_FHIR")


def fhir_origin(base=None):
    """Scheme, host and port of a FHIR base URL (the shared server's by default): where the
    test server's /admin endpoints are."""
    return (base or fhir_base()).split("/fhir/")[0]


def work():
    return _get("FRA_TEST_WORK")


def model_dir():
    return _get("FRA_TEST_MODEL")


def module_name():
    """test_audit, test_daemon, ...: names this module's databases."""
    name = os.environ.get("FRA_TEST_MODULE")
    if not name:
        main = getattr(sys.modules.get("__main__"), "__file__", None) or "test_unknown"
        name = os.path.splitext(os.path.basename(main))[0]
    return name


def free_port():
    """A TCP port nothing listens on now, for a server a test starts of its own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
