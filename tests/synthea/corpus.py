"""The Synthea corpus as check_corpus.py loads and checks it.

Reads the gzipped ndjson files of a Synthea output folder; moves every date, dateTime and instant
of the resources it loads by one whole number of days (each value keeping its precision and its
time zone form); groups those resources by patient for loading; collects the corpus's PHI strings
with their kinds, the dates of its clinical times, and how its references resolve.
"""
import collections
import datetime
import decimal
import gzip
import json
import os
import re

LOADED = ("Patient", "Encounter", "Condition", "Observation")
DISPLAY_SCANNED = LOADED + ("MedicationRequest", "Practitioner", "Organization", "Location")
DIRECTORY = ("Practitioner", "Organization", "Location")
CLINICAL_TIME_KEYS = {
    "Encounter": ("period",),
    "Observation": ("effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued"),
    "Condition": ("onsetDateTime", "onsetPeriod", "abatementDateTime", "abatementPeriod", "recordedDate"),
}
PERSON_REFERENCES = ("subject", "patient", "participant.individual", "performer", "requester")
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
