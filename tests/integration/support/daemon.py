"""The daemon (`fhir-risk-adapter run`) as a process under test, with its HTTP endpoint."""
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from support.adapter import write_config
from support.env import binary, work


def daemon_config(name, db, port, extra=""):
    """A configuration for `run`: its HTTP endpoint on `port`, each type synced every second, and
    `extra` lines at the end; its path."""
    path = write_config(name, db=db)
    with open(path, "a") as f:
        f.write(f'[http]\nlisten = "127.0.0.1:{port}"\n[sync]\npatient_interval_seconds = 1\n'
                f'encounter_interval_seconds = 1\nobservation_interval_seconds = 1\n{extra}')
    return path


class Daemon:
    """A `run` process with its HTTP endpoint."""

    def __init__(self, config, port, log_name):
        self.port = port
        self.log_path = os.path.join(work(), log_name)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary(), "run", "--config", config], stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        status, text = self.get("/metrics")
        assert status == 200, status
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out, text

    def wait_until(self, what, check, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, f"the daemon exited ({self.proc.returncode}): {self.output()}"
            try:
                if check():
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.output()[-3000:]}")

    def idle(self, patients):
        """The first sync done: every patient's RiskAssessment written, the queue empty."""
        m, _ = self.metrics()
        written = value(m, "fra_risk_assessments_written_total", result="created") + \
            value(m, "fra_risk_assessments_written_total", result="updated")
        return written >= patients and value(m, "fra_queue_depth") == 0

    def stop(self, sig=signal.SIGTERM, timeout=10):
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code, time.monotonic() - start

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()


def value(metrics, name, **labels):
    """A sample of Daemon.metrics() by name and labels; 0 when absent."""
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)
