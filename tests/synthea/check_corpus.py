#!/usr/bin/env python3
"""Runs the adapter against real Synthea output, by hand, and reports what it made of it.

    /usr/bin/python3 tests/synthea/check_corpus.py path/to/fhir-risk-adapter SYNTHEA_DIR [--model DIR]
        [--shift-days N|auto]

SYNTHEA_DIR holds gzipped ndjson, one file per resource type (Patient.ndjson.gz, ...), as in
/work/shared/data/synthea. It is read where it is, never copied; this script is not part of the
test suite, which must pass on a fresh clone without the corpus.

What it does, in a temporary folder, stopping everything it started whatever happens:
1. starts a throwaway PostgreSQL (deploy/pg-sandbox.sh) and the FHIR test server with no
   generated patients (deploy/fhir-sandbox.sh; it validates every write against FHIR R4 unless
   told --no-validate);
2. moves every date, dateTime and instant of the loaded resources by the same whole number of
   days (--shift-days; `auto`, the default, puts the newest clinical time of the corpus 3 days
   before now, so that features with look-back windows see the data; 0 loads the dates as they
   are): each value keeps its precision and its time zone form, only its calendar date changes;
   ids, codes, references, identifier values and other non-date strings are left alone. Then it
   loads Patient, Encounter, Condition and Observation into the server, one batch Bundle per
   patient (the Patient, then its Encounters, Conditions and Observations), each entry a
   `PUT Type/<id>`: the server keeps the corpus ids, so the corpus's `Type/<id>` references
   resolve as they are. Practitioner, Organization and Location are not loaded: the test server
   does not check that references resolve and the adapter reads none of them;
3. writes an adapter configuration (page_size 1000, a fresh 32-byte pseudonym key, the model
   package and its features.toml), runs `migrate`, then `sync --once` with its output in a log;
4. reports from the database: patients stored and scored against the corpus, dead letters,
   the sync's summary lines, condition_code rows, scores by band, and per feature of the model,
   over each patient's latest score, how many patients have it (not null) and its mean, min, max;
5. checks that no PHI reached the store or the log: every PHI string of the corpus (names,
   name forms as in `display` fields, the display of patient and practitioner references,
   addresses, telecom, birth dates, identifier values, mothers' maiden names, birth places,
   Patient ids; dates as loaded, i.e. shifted) is searched for, as an exact case-sensitive substring, in a plain `pg_dump` of
   the database and in the sync log. The rules that avoid false alarms are printed with the
   counts they discarded.

Exit 0 when the sync succeeded, every corpus patient has a score and there is no PHI hit;
1 otherwise.
"""
import argparse
import bisect
import collections
import datetime
import decimal
import gzip
import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOADED = ("Patient", "Encounter", "Condition", "Observation")
DISPLAY_SCANNED = LOADED + ("MedicationRequest", "Practitioner", "Organization", "Location")
DIRECTORY = ("Practitioner", "Organization", "Location")
MIN_NEEDLE = 5  # shorter strings (state codes, "Mr.", "PhD", short names) are not searched for
CLINICAL_TIME_KEYS = {
    "Encounter": ("period",),
    "Observation": ("effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued"),
    "Condition": ("onsetDateTime", "onsetPeriod", "abatementDateTime", "abatementPeriod", "recordedDate"),
}
PERSON_REFERENCES = ("subject", "patient", "participant.individual", "performer", "requester")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A FHIR date, dateTime or instant of at least day precision (what a shift by whole days can move
# keeping its precision); the calendar date is group 1.
DAY_TIME_RE = re.compile(r"([0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01]))"
                         r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})?"
                         r"(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?")
PARTIAL_DATE_RE = re.compile(r"[0-9]{4}(?:-(?:0[1-9]|1[0-2]))?")  # a year or a year-month: not shifted
DATE_INSIDE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Keys whose string values are never dates (ids, codes, references, identifier and contact values,
# text); of the value[x] choices only valueDate, valueDateTime and valueInstant are dates.
NOT_DATE_KEYS = {"id", "reference", "code", "system", "url", "version", "display", "text", "div", "value", "unit",
                 "fullUrl", "profile"}
DATE_VALUE_KEYS = {"valueDate", "valueDateTime", "valueInstant"}
AUTO_SHIFT_AGE = datetime.timedelta(days=3)  # --shift-days auto: the newest clinical time lies this long before now
SUMMARY_RE = re.compile(r"^(?:\S+\s+fetched |cohort |ignored |scored |RiskAssessments: |Score Observations: |write-back )")


class Corpus:
    """The corpus as the load and the checks need it: raw lines grouped by patient, counts, PHI
    strings with their kinds, the dates of clinical times, and how its references resolve."""

    def __init__(self):
        self.patients = {}  # Patient id -> [(type, id, raw line)], the Patient first
        self.orphans = []  # resources whose subject is no corpus Patient
        self.counts = collections.Counter()  # lines per type
        self.needles = collections.defaultdict(set)  # PHI string -> kinds
        self.clinical_dates = set()  # YYYY-MM-DD of Encounter, Observation and Condition times
        self.ids = collections.defaultdict(set)  # type -> ids
        self.references = collections.Counter()  # target type -> references to it
        self.unresolved = collections.Counter()  # target type -> references to ids not in the corpus
        self.condition_codings = 0  # distinct system|code per Condition, summed
        self.shift_days = 0  # days every date of the loaded resources was moved by
        self.shift_asked = "0"  # what --shift-days said
        self.now = None  # when the auto shift was computed (UTC)
        self.newest_clinical = None  # (original, as loaded) newest clinical time, aware datetimes
        self.latest_loaded = None  # (instant, path, value as loaded) of the latest date of any kind loaded
        self.dates = collections.Counter()  # (what was done, path) -> date strings of the loaded resources


def read_lines(folder, resource_type):
    """The lines of `resource_type`.ndjson.gz in `folder` (none when the file is missing)."""
    path = os.path.join(folder, f"{resource_type}.ndjson.gz")
    if not os.path.exists(path):
        return
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line.rstrip("\n")


def walk_references(node, path, out):
    """Appends (path, reference, display) for every Reference inside `node`."""
    if isinstance(node, dict):
        if "reference" in node or ("display" in node and "code" not in node and "system" not in node):
            out.append((path, node.get("reference"), node.get("display")))
        for key, value in node.items():
            walk_references(value, f"{path}.{key}", out)
    elif isinstance(node, list):
        for value in node:
            walk_references(value, path, out)


def add_needle(corpus, value, kind):
    """Records a PHI string and its kind (and its JSON-escaped form when it is not ASCII)."""
    if not isinstance(value, str) or not value:
        return
    corpus.needles[value].add(kind)
    escaped = json.dumps(value)[1:-1]
    if escaped != value:
        corpus.needles[escaped].add(kind + " (JSON-escaped)")


def patient_needles(corpus, p):
    """The PHI strings of one Patient resource."""
    add_needle(corpus, p.get("id"), "Patient.id")
    for ident in p.get("identifier", []):
        codes = [c.get("code") for c in ident.get("type", {}).get("coding", []) if c.get("code")]
        label = codes[0] if codes else ident.get("system", "?").rsplit("/", 1)[-1]
        add_needle(corpus, ident.get("value"), f"identifier {label}")
    for name in p.get("name", []):
        given, family = name.get("given", []), name.get("family")
        prefix, suffix = name.get("prefix", []), name.get("suffix", [])
        for g in given:
            add_needle(corpus, g, "name.given")
        add_needle(corpus, family, "name.family")
        for x in prefix:
            add_needle(corpus, x, "name.prefix")
        for x in suffix:
            add_needle(corpus, x, "name.suffix")
        if given and family:
            add_needle(corpus, " ".join(given + [family]), "name (Given Family)")
            if prefix:
                add_needle(corpus, " ".join(prefix + given + [family]), "name (Prefix Given Family)")
            if suffix:
                add_needle(corpus, " ".join(prefix + given + [family] + suffix), "name (Prefix Given Family Suffix)")
    for address in p.get("address", []):
        for line in address.get("line", []):
            add_needle(corpus, line, "address.line")
        add_needle(corpus, address.get("city"), "address.city")
        add_needle(corpus, address.get("postalCode"), "address.postalCode")
    for telecom in p.get("telecom", []):
        add_needle(corpus, telecom.get("value"), "telecom")
    add_needle(corpus, p.get("birthDate"), "birthDate")
    for ext in p.get("extension", []):
        url = ext.get("url", "")
        if url.endswith("patient-mothersMaidenName"):
            add_needle(corpus, ext.get("valueString"), "mothersMaidenName")
        elif url.endswith("patient-birthPlace"):
            for key, value in ext.get("valueAddress", {}).items():
                for v in value if isinstance(value, list) else [value]:
                    add_needle(corpus, v, f"birthPlace.{key}")


def time_dates(value):
    """The calendar dates (as written, and in UTC) of a dateTime, instant or Period."""
    if isinstance(value, dict):
        return time_dates(value.get("start")) | time_dates(value.get("end"))
    if not isinstance(value, str) or len(value) < 10:
        return set()
    dates = {value[:10]}
    try:
        if len(value) > 10:
            dates.add(datetime.datetime.fromisoformat(value).astimezone(datetime.timezone.utc).date().isoformat())
    except ValueError:
        pass
    return dates


def instant(value):
    """The aware datetime (UTC when no zone is written; a date at its midnight) of a date,
    dateTime or instant of at least day precision; None for anything else."""
    if not isinstance(value, str) or not DAY_TIME_RE.fullmatch(value):
        return None
    try:
        dt = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=datetime.timezone.utc)


def clinical_instants(resource_type, r):
    """The instants of the clinical times (CLINICAL_TIME_KEYS, Period start and end) of a resource."""
    out = []
    for key in CLINICAL_TIME_KEYS.get(resource_type, ()):
        value = r.get(key)
        for v in (value.get("start"), value.get("end")) if isinstance(value, dict) else (value,):
            t = instant(v)
            if t is not None:
                out.append(t)
    return out


def is_date_key(key):
    """Whether a string under `key` may be a FHIR date, dateTime or instant."""
    if key in NOT_DATE_KEYS:
        return False
    return not key.startswith("value") or key in DATE_VALUE_KEYS


def shift_dates(node, days, corpus, path, key=""):
    """Moves, in place, every date, dateTime and instant inside `node` (a parsed resource or part
    of one) by `days` days: only the calendar date changes, so the time, fraction and zone stay as
    written. Year and year-month values (which a day shift cannot move keeping their precision) and
    dates inside other strings are left alone; all are counted in corpus.dates by path."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, value in items:
        child_key = k if isinstance(node, dict) else key
        child_path = f"{path}.{k}" if isinstance(node, dict) else path
        if isinstance(value, (dict, list)):
            shift_dates(value, days, corpus, child_path, child_key)
        elif isinstance(value, str):
            m = DAY_TIME_RE.fullmatch(value) if is_date_key(child_key) else None
            if m:
                moved = (datetime.date.fromisoformat(m.group(1)) + datetime.timedelta(days=days)).isoformat()
                node[k] = moved + value[10:]
                corpus.dates[("shifted", child_path)] += 1
                t = instant(node[k])
                if t is not None and (corpus.latest_loaded is None or t > corpus.latest_loaded[0]):
                    corpus.latest_loaded = (t, child_path, node[k])
            elif is_date_key(child_key) and PARTIAL_DATE_RE.fullmatch(value):
                corpus.dates[("left as is: a year or year-month", child_path)] += 1
            elif DATE_INSIDE_RE.search(value):
                corpus.dates[("left as is: a date inside another string", child_path)] += 1


def to_json(node):
    """`node` (parsed with parse_float=Decimal) as compact JSON, numbers as they were written."""
    if isinstance(node, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + to_json(v) for k, v in node.items()) + "}"
    if isinstance(node, list):
        return "[" + ",".join(to_json(v) for v in node) + "]"
    if isinstance(node, decimal.Decimal):
        return str(node)
    return json.dumps(node, ensure_ascii=False)


def auto_shift(folder, now):
    """(days, newest clinical time): the whole number of days that puts the newest clinical time
    of the loaded resources AUTO_SHIFT_AGE before `now` (never later), and that time; (0, None)
    when there is none."""
    newest = None
    for resource_type in CLINICAL_TIME_KEYS:
        for line in read_lines(folder, resource_type):
            for t in clinical_instants(resource_type, json.loads(line)):
                if newest is None or t > newest:
                    newest = t
    if newest is None:
        return 0, None
    return (now - AUTO_SHIFT_AGE - newest) // datetime.timedelta(days=1), newest


def read_corpus(folder, shift="auto"):
    """Reads the corpus (every file once, the clinical ones twice for `shift` "auto"), moving the
    dates of the loaded resources by `shift` days ("auto": see auto_shift); a Corpus, its needles
    and clinical dates those of the resources as loaded."""
    corpus = Corpus()
    corpus.shift_asked = str(shift)
    if shift == "auto":
        corpus.now = datetime.datetime.now(datetime.timezone.utc)
        corpus.shift_days, newest = auto_shift(folder, corpus.now)
        corpus.newest_clinical = (newest, None)
    else:
        corpus.shift_days = int(shift)
    newest_loaded = None
    refs = []  # (target type, id)
    for resource_type in DISPLAY_SCANNED:
        for line in read_lines(folder, resource_type):
            if resource_type in LOADED and corpus.shift_days:
                r = json.loads(line, parse_float=decimal.Decimal)
                shift_dates(r, corpus.shift_days, corpus, resource_type)
                line = to_json(r)
            else:
                r = json.loads(line)
            if resource_type in LOADED:
                for t in clinical_instants(resource_type, r):
                    if newest_loaded is None or t > newest_loaded:
                        newest_loaded = t
            corpus.counts[resource_type] += 1
            corpus.ids[resource_type].add(r.get("id"))
            found = []
            walk_references(r, resource_type, found)
            for path, reference, display in found:
                if isinstance(reference, str) and "/" in reference and not reference.startswith(("urn:", "http")):
                    target, _, target_id = reference.partition("/")
                    refs.append((target, target_id))
                if isinstance(display, str) and ("." + path).endswith(tuple("." + p for p in PERSON_REFERENCES)):
                    add_needle(corpus, display, f"{path}.display")
            if resource_type == "Patient":
                patient_needles(corpus, r)
                corpus.patients[r["id"]] = [(resource_type, r["id"], line)]
            elif resource_type in LOADED:
                for key in CLINICAL_TIME_KEYS[resource_type]:
                    corpus.clinical_dates |= time_dates(r.get(key))
                if resource_type == "Condition":
                    corpus.condition_codings += len({(c.get("system"), c.get("code"))
                                                     for c in r.get("code", {}).get("coding", [])})
                subject = (r.get("subject") or {}).get("reference", "")
                owner = corpus.patients.get(subject.removeprefix("Patient/"))
                (owner if owner is not None else corpus.orphans).append((resource_type, r["id"], line))
    for target, target_id in refs:
        corpus.references[target] += 1
        if target_id not in corpus.ids.get(target, ()):
            corpus.unresolved[target] += 1
    original = corpus.newest_clinical[0] if corpus.newest_clinical else None
    if original is None and newest_loaded is not None:
        original = newest_loaded - datetime.timedelta(days=corpus.shift_days)
    corpus.newest_clinical = (original, newest_loaded)
    return corpus


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


def trie_pattern(words):
    """A regular expression matching any of `words` (all of one length), as a trie, so that the
    engine does not try them one by one at each position."""
    trie = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})

    def build(node):
        alternatives = [re.escape(ch) + build(child) for ch, child in sorted(node.items())]
        if len(alternatives) <= 1:
            return "".join(alternatives)
        return "(?:" + "|".join(alternatives) + ")"

    return build(trie)


def occurrences(text, needles):
    """Every (position, needle) at which a needle (each at least MIN_NEEDLE long) occurs in
    `text`, overlapping ones included."""
    by_prefix = collections.defaultdict(list)
    for needle in needles:
        by_prefix[needle[:MIN_NEEDLE]].append(needle)
    pattern = re.compile(trie_pattern(by_prefix))  # starts with a character set: the engine skips ahead fast
    m = pattern.search(text)
    while m:
        i = m.start()
        for needle in by_prefix[text[i:i + MIN_NEEDLE]]:
            if text.startswith(needle, i):
                yield i, needle
        m = pattern.search(text, i + 1)


def dump_sections(dump):
    """(start positions, table names) of the COPY blocks of a plain pg_dump, for locating a hit."""
    starts, names = [0], ["(schema: DDL, comments)"]
    for m in re.finditer(r"^COPY (\S+) ", dump, re.MULTILINE):
        end = dump.find("\n\\.\n", m.start())
        starts += [m.start(), len(dump) if end < 0 else end]
        names += [m.group(1), "(schema: DDL, comments)"]
    return starts, names


def scan_for_phi(corpus, texts):
    """Searches each text ({name: text}) for the corpus's PHI strings under the rules; (hits,
    discarded occurrences by rule and place, needles searched by kind, needles skipped as short
    by kind, birth dates that are clinical dates)."""
    searched, short = collections.Counter(), collections.Counter()
    needles = []
    for needle, kinds in corpus.needles.items():
        for kind in kinds:
            (short if len(needle) < MIN_NEEDLE else searched)[kind] += 1
        if len(needle) >= MIN_NEEDLE:
            needles.append(needle)
    clinical_birth_dates = {n for n, kinds in corpus.needles.items()
                            if kinds == {"birthDate"} and n in corpus.clinical_dates}
    hits, discarded = [], collections.Counter()
    for where, text in texts.items():
        sections = dump_sections(text) if where == "pg_dump" else None
        for i, needle in occurrences(text, needles):
            place = where
            if sections:
                place = f"{where} {sections[1][bisect.bisect_right(sections[0], i) - 1]}"
            before, after = text[i - 1:i] if i else "", text[i + len(needle):i + len(needle) + 1]
            if needle in clinical_birth_dates:
                discarded[("birth date that is also a clinical date", place)] += 1
            elif needle.isdigit() and (re.match(r"[0-9A-Za-z.]", before) or re.match(r"[0-9A-Za-z.]", after)):
                discarded[("digits inside a longer number or hex string", place)] += 1
            else:
                line = text.count("\n", 0, i) + 1
                context = text[max(0, i - 40):i + len(needle) + 40].replace("\n", "\\n")
                hits.append((sorted(corpus.needles[needle]), needle, place, line, context))
    return hits, discarded, searched, short, clinical_birth_dates


def thousands(n):
    """`n` with thousands separators (None as is)."""
    return f"{n:,}" if isinstance(n, int) else str(n)


def print_table(rows, header):
    """Prints rows (lists of strings) under a header, columns aligned."""
    rows = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[k]) for r in rows) for k in range(len(header))]
    numeric = [all(r[k].replace(",", "").isdigit() for r in rows[1:]) for k in range(len(header))]
    for r in rows:
        print("  " + "  ".join(c.rjust(w) if right else c.ljust(w) for c, w, right in zip(r, widths, numeric)).rstrip())


def print_shift(corpus):
    """Prints the date shift applied to the loaded resources and what it moved."""
    days = corpus.shift_days
    original, loaded = corpus.newest_clinical or (None, None)
    how = f"--shift-days {corpus.shift_asked}"
    if corpus.now:
        how += f", computed at {corpus.now.isoformat(timespec='seconds')}"
    print(f"\n== date shift: {days:+,} days ({how})")
    if original is None:
        print("  no clinical time in the loaded resources" + ("; nothing moved" if not days else ""))
    else:
        print(f"  newest clinical time (Encounter.period, Observation.effective[x]/issued, Condition onset/abatement/"
              f"recordedDate): {original.isoformat()} in the corpus, {loaded.isoformat()} as loaded")
        if corpus.now:
            print(f"  that is {corpus.now - loaded} before now (target {AUTO_SHIFT_AGE.days} days, whole days)")
    if not days:
        print("  dates loaded as they are")
        return
    if corpus.latest_loaded:
        t, path, value = corpus.latest_loaded
        print(f"  latest date of any kind as loaded: {value} ({path})"
              + (f"; {'AFTER' if t > corpus.now else 'before'} now" if corpus.now else ""))
    rows = [[what, path, f"{n:,}"] for (what, path), n in sorted(corpus.dates.items())]
    print(f"  date strings of the loaded resources, by path (each keeps its precision and zone form):")
    print_table(rows, ["done", "path", "values"])


def print_features(db_url, model):
    """Prints, per model and feature, over each patient's latest score: how many have the feature
    (not null), and its mean, min and max."""
    try:
        with open(os.path.join(model, "manifest.json")) as f:
            declared = [x["name"] for x in json.load(f).get("features", [])]
    except (OSError, ValueError, KeyError, TypeError):
        declared = []
    rows = sql(db_url, """
        WITH latest AS (
          SELECT DISTINCT ON (patient_key, model_name) model_name, features
          FROM score ORDER BY patient_key, model_name, as_of DESC, id DESC)
        SELECT l.model_name, f.key,
               count(*) FILTER (WHERE jsonb_typeof(f.value) <> 'null'),
               count(*) FILTER (WHERE jsonb_typeof(f.value) NOT IN ('null', 'number', 'boolean')),
               avg(v.x), min(v.x), max(v.x)
        FROM latest l
        CROSS JOIN LATERAL jsonb_each(l.features) f
        CROSS JOIN LATERAL (SELECT CASE jsonb_typeof(f.value)
                                     WHEN 'number' THEN (f.value #>> '{}')::float8
                                     WHEN 'boolean' THEN CASE WHEN (f.value #>> '{}')::boolean THEN 1 ELSE 0 END
                                   END AS x) v
        GROUP BY 1, 2""")
    totals = dict(sql(db_url, "SELECT model_name, count(DISTINCT patient_key) FROM score GROUP BY 1"))
    by_model = collections.defaultdict(dict)
    for model_name, key, present, other, mean, low, high in rows:
        by_model[model_name][key] = (int(present), int(other), mean, low, high)

    def number(text, spec):
        return format(float(text), spec) if text else "-"

    for model_name, total in sorted(totals.items()):
        features = by_model.get(model_name, {})
        order = [n for n in declared if n in features] + sorted(n for n in features if n not in declared)
        print(f"  features of {model_name}, over the latest score of each of its {int(total)} scored patients:")
        table = []
        for name in order:
            present, other, mean, low, high = features[name]
            table.append([name, f"{present:,}", f"{100 * present / int(total):.0f}%", number(mean, ".3f"),
                          number(low, ".6g"), number(high, ".6g")] + ([f"{other} not numeric"] if other else []))
        width = max(len(r) for r in table) if table else 6
        print_table([r + [""] * (width - len(r)) for r in table],
                    ["feature", "present", "of all", "mean", "min", "max", ""][:width])
        missing = [n for n in declared if n not in features]
        if missing and model_name == os.path.basename(model.rstrip("/")):
            print(f"  features of the model in no score's features: {', '.join(missing)}")
        strange = [n for n in features if declared and n not in declared]
        if strange:
            print(f"  keys of score.features the model does not declare: {', '.join(strange)}")


def main():
    """Runs the whole check; the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", help="the fhir-risk-adapter binary")
    parser.add_argument("corpus", help="folder of Synthea ndjson.gz files (Patient.ndjson.gz, ...)")
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "readmission-risk"),
                        help="model package (default: models/readmission-risk)")
    parser.add_argument("--no-validate", action="store_true",
                        help="start the FHIR test server with --no-validate (by default it validates every write)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (log, dump, key) and say where")
    parser.add_argument("--shift-days", default="auto", metavar="N|auto",
                        help="move every date of the loaded resources by N days before loading; auto (the default): "
                             "the newest clinical time then lies 3 days before now; 0: load the dates as they are")
    args = parser.parse_args()
    if args.shift_days != "auto" and not re.fullmatch(r"[+-]?[0-9]+", args.shift_days):
        parser.error(f"--shift-days: a whole number of days or auto, not {args.shift_days!r}")
    binary, folder, model = (os.path.realpath(p) for p in (args.binary, args.corpus, args.model))
    if not os.access(binary, os.X_OK):
        parser.error(f"{binary} is not an executable")
    if not os.path.isfile(os.path.join(folder, "Patient.ndjson.gz")):
        parser.error(f"{folder} has no Patient.ndjson.gz")
    if not os.path.isfile(os.path.join(model, "features.toml")):
        parser.error(f"{model} has no features.toml")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that the sandbox is stopped
    sys.stdout.reconfigure(line_buffering=True)

    print(f"command: {shlex.join([sys.executable] + sys.argv)}")
    print(f"binary {binary}\ncorpus {folder}\nmodel {model}")
    t = time.monotonic()
    corpus = read_corpus(folder, args.shift_days)
    print(f"\n== corpus (read in {time.monotonic() - t:.1f} s)")
    print("  " + ", ".join(f"{t} {corpus.counts[t]:,}" for t in DISPLAY_SCANNED))
    print(f"  references: " + ", ".join(f"to {t} {n:,} ({corpus.unresolved[t]:,} to no resource of the corpus)"
                                        for t, n in sorted(corpus.references.items())))
    print(f"  resources whose subject is no corpus Patient: {len(corpus.orphans)}")
    print_shift(corpus)

    work = tempfile.mkdtemp(prefix="fra-synthea-", dir="/tmp")
    os.chmod(work, 0o755)  # the sandbox PostgreSQL runs as a user of its own
    sandbox = Sandbox(work, validate=not args.no_validate)
    try:
        return check(args, binary, model, corpus, sandbox)
    except subprocess.CalledProcessError as e:
        print(f"\nFAIL: {shlex.join(e.cmd)} exited {e.returncode}\n{e.stdout or ''}{e.stderr or ''}")
        return 1
    finally:
        sandbox.stop()
        if args.keep:
            print(f"\nwork folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def check(args, binary, model, corpus, sandbox):
    """Steps 1 to 6 with the sandbox; the exit code."""
    sandbox.start()
    base = sandbox.fhir_base
    print(f"\n== sandbox\n  PostgreSQL {sandbox.db_url}\n  FHIR test server {base} (0 generated patients, "
          f"{'validating writes' if sandbox.validate else '--no-validate'})")

    t = time.monotonic()
    accepted, rejected = load(base, corpus)
    load_seconds = time.monotonic() - t
    print(f"\n== load: {len(corpus.patients)} batch Bundles of PUT Type/<id> (one per patient), "
          f"{load_seconds:.1f} s")
    rows = [[t, f"{corpus.counts[t]:,}", f"{accepted[t]:,}", f"{sum(rejected[t].values()):,}",
             thousands(server_count(base, t))] for t in LOADED]
    print_table(rows, ["type", "corpus", "accepted", "rejected", "on the server"])
    for t, reasons in rejected.items():
        for reason, n in reasons.most_common(10):
            print(f"  rejected {t} x{n}: {reason}")
    first = next(iter(corpus.patients))
    status, _ = http("GET", f"{base}/Patient/{first}")
    print(f"  ids kept: GET Patient/<the first corpus Patient's id> -> {status}")
    print(f"  not loaded: {', '.join(f'{t} ({corpus.counts[t]:,})' for t in DIRECTORY + ('MedicationRequest',))}; "
          f"the server accepted the {sum(corpus.references[t] for t in DIRECTORY):,} references to "
          f"Practitioner/Organization/Location without them")

    config, key_file = write_config(sandbox.work, base, sandbox.db_url, model)
    run([binary, "migrate", "--config", config])
    log_path = os.path.join(sandbox.work, "sync.log")
    t = time.monotonic()
    with open(log_path, "w") as log:
        sync = subprocess.run([binary, "sync", "--once", "--config", config], stdout=log, stderr=subprocess.STDOUT,
                              timeout=3600)
    sync_seconds = time.monotonic() - t
    with open(log_path, encoding="utf-8", errors="replace") as f:
        log_text = f.read()
    print(f"\n== sync --once: exit {sync.returncode}, {sync_seconds:.1f} s, log {len(log_text.splitlines())} lines")
    for line in log_text.splitlines():
        if SUMMARY_RE.match(line):
            print(f"  {line}")
    others = [line for line in log_text.splitlines() if not SUMMARY_RE.match(line)]
    if others:
        print(f"  other log lines: {len(others)}; the first ones:")
        for line in others[:10]:
            print(f"    {line[:200]}")

    with open(key_file, "rb") as f:
        key = f.read()
    keys = {pseudonym(key, "Patient", pid): pid for pid in corpus.patients}
    stored = {r[0] for r in sql(sandbox.db_url, "SELECT patient_key FROM patient")}
    scored = {r[0] for r in sql(sandbox.db_url, "SELECT DISTINCT patient_key FROM score")}
    unscored = [pid for k, pid in keys.items() if k not in scored]
    print("\n== store")
    print(f"  patients in the corpus {len(keys)}, stored {len(stored)} ({len(stored & keys.keys())} of the corpus's "
          f"pseudonyms), scored {len(scored)} ({len(scored & keys.keys())} of the corpus's)")
    if unscored:
        print(f"  corpus patients with no score: {len(unscored)}: {', '.join(unscored[:20])}"
              f"{' ...' if len(unscored) > 20 else ''}")
    counts = sql(sandbox.db_url, "SELECT (SELECT count(*) FROM encounter), (SELECT count(*) FROM observation_value), "
                                 "(SELECT count(DISTINCT resource_key) FROM observation_value), "
                                 "(SELECT count(*) FROM condition_code), "
                                 "(SELECT count(DISTINCT resource_key) FROM condition_code), "
                                 "(SELECT count(DISTINCT patient_key) FROM condition_code), "
                                 "(SELECT count(*) FROM scoring_queue), "
                                 "(SELECT count(*) FROM risk_assessment WHERE written_score_id IS NOT NULL)")[0]
    print(f"  encounter rows {int(counts[0]):,}; observation_value rows {int(counts[1]):,} "
          f"(from {int(counts[2]):,} Observations)")
    print(f"  condition_code rows {int(counts[3]):,} from {int(counts[4]):,} Conditions of {int(counts[5])} patients "
          f"(corpus: {corpus.counts['Condition']:,} Conditions with {corpus.condition_codings:,} distinct codings)")
    print(f"  scoring_queue left {counts[6]}; RiskAssessments written {counts[7]} "
          f"(on the server: {server_count(base, 'RiskAssessment')})")
    print("  scores by band:")
    print_table(sql(sandbox.db_url, "SELECT band, count(*), count(DISTINCT patient_key) FROM score "
                                    "GROUP BY band ORDER BY 2 DESC"), ["band", "scores", "patients"])
    print_features(sandbox.db_url, model)
    dead = sql(sandbox.db_url, "SELECT resource_type, reason_code, json_pointer, count(*) FROM dead_letter "
                               "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3")
    print(f"  dead letters: {sum(int(r[3]) for r in dead):,}")
    if dead:
        print_table(dead, ["type", "reason_code", "json_pointer", "count"])
    unscored_keys = [k for k, pid in keys.items() if k not in scored]
    if unscored_keys:
        in_list = ",".join(f"'{k}'" for k in unscored_keys)
        rows = sql(sandbox.db_url, f"SELECT reason_code, json_pointer, count(*) FROM dead_letter "
                                   f"WHERE resource_type = 'Patient' AND resource_key IN ({in_list}) GROUP BY 1, 2")
        print(f"  dead letters of the unscored patients' Patient resources: {rows or 'none'}")

    t = time.monotonic()
    dump = run(["pg_dump", "--no-owner", "--format=plain", sandbox.db_url], env={**os.environ, "PGTZ": "UTC"}).stdout
    if args.keep:
        with open(os.path.join(sandbox.work, "dump.sql"), "w") as f:
            f.write(dump)
    hits, discarded, searched, short, clinical_birth_dates = scan_for_phi(corpus, {"pg_dump": dump, "sync log": log_text})
    scan_seconds = time.monotonic() - t
    print(f"\n== PHI check: pg_dump --no-owner ({len(dump):,} characters) and the sync log, {scan_seconds:.1f} s")
    print(f"  {len([n for n in corpus.needles if len(n) >= MIN_NEEDLE]):,} distinct strings searched, exact and "
          f"case-sensitive; by kind (a string can be of several kinds):")
    print_table([[k, f"{searched[k]:,}", f"{short[k]:,}"] for k in sorted(searched.keys() | short.keys())],
                ["kind", "searched", f"skipped (< {MIN_NEEDLE} chars)"])
    print("  rules against false alarms:")
    print(f"   1. strings shorter than {MIN_NEEDLE} characters are not searched for (state codes, Mr., PhD, short "
          f"names): {sum(1 for n in corpus.needles if len(n) < MIN_NEEDLE)} distinct strings skipped")
    births = {n for n, kinds in corpus.needles.items() if "birthDate" in kinds}
    print(f"   2. a birth date (YYYY-MM-DD) that is also the date of an Encounter, Observation or Condition time in the "
          f"corpus is no hit (the store keeps clinical times): {len(clinical_birth_dates)} of {len(births)} birth dates; "
          f"occurrences discarded: {sum(n for (rule, _), n in discarded.items() if rule.startswith('birth'))}")
    print(f"   3. a string of digits only (postal codes) is a hit only when it stands alone, not next to a digit, a "
          f"letter or '.' (hex pseudonyms and 17-digit floats contain any 5 digits): occurrences discarded: "
          f"{sum(n for (rule, _), n in discarded.items() if rule.startswith('digits'))}")
    for (rule, place), n in sorted(discarded.items()):
        print(f"      {rule}: {n:,} in {place}")
    patient_id_hits = [h for h in hits if "Patient.id" in h[0]]
    print(f"  Patient ids found: {len(patient_id_hits)} (pseudonymisation: none may appear)")
    other_ids = collections.Counter()
    all_ids = {i: t for t in ("Encounter", "Condition", "Observation") for i in corpus.ids[t]}
    for where, text in (("pg_dump", dump), ("sync log", log_text)):
        for m in UUID_RE.finditer(text):
            if m.group(0) in all_ids:
                other_ids[(all_ids[m.group(0)], where)] += 1
    print(f"  Encounter/Condition/Observation ids found (not PHI, not counted as hits): "
          f"{dict(other_ids) if other_ids else 0}")
    print(f"  PHI hits: {len(hits)}")
    for kinds, needle, place, line, context in hits:
        print(f"    [{', '.join(kinds)}] {needle!r} in {place}, line {line}: ...{context}...")

    complete = sync.returncode == 0 and not unscored
    print(f"\n== result\n  command: {shlex.join([sys.executable] + sys.argv)}")
    print(f"  dates moved by {corpus.shift_days:+,} days (--shift-days {corpus.shift_asked})")
    print(f"  load {load_seconds:.1f} s, sync {sync_seconds:.1f} s, PHI scan {scan_seconds:.1f} s")
    print(f"  sync exit {sync.returncode}; patients scored {len(scored & keys.keys())} of {len(keys)}; "
          f"PHI hits {len(hits)}")
    ok = complete and not hits
    print(f"  {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
