"""Feature vectors computed from FHIR resources by a second implementation of docs/features.md,
written apart from the adapter's C++ so that the two can check each other.

    features = Features.load("models/readmission-risk/features.toml")
    data, dead = PatientData.from_resources(patients, observations, encounters, features, conditions)
    row = features.vector(data["<patient id>"], as_of, names)   # float32 array, NaN when missing

Times are integer microseconds since the epoch (UTC), as FHIR instants carry at most that.
Where docs/features.md is silent, this follows what the adapter is described to do elsewhere
(docs/data-model.md: which Observations are dead letters) or, failing that, reads the resource
as fhir/resources.cpp does (which effective[x] counts); each such place says so.
"""
import datetime
import math
import os
import re
import tomllib
from dataclasses import dataclass, field

import numpy as np

UCUM = "http://unitsofmeasure.org"
MICROS_PER_DAY = 86400 * 10**6
COUNTING_STATUSES = {"final", "amended", "corrected", "preliminary"}
NOT_COUNTING_ENCOUNTERS = {"cancelled", "entered-in-error"}
EMERGENCY_CLASS = "EMER"
LED_TO_STAY_WITHIN = 24 * 3600 * 10**6  # an emergency visit that ended less than 24 h before a stay began led to it
NOT_HOLDING_VERIFICATIONS = {"refuted", "entered-in-error"}
HOLDING_CLINICAL = {"active", "recurrence", "relapse"}
ABATED_CLINICAL = {"inactive", "remission", "resolved"}

# Linear UCUM units: value in the dimension's base unit = value * factor.
LINEAR_UNITS = {
    "kg": ("mass", 1.0), "g": ("mass", 1e-3), "[lb_av]": ("mass", 0.45359237),
    "cm": ("length", 0.01), "m": ("length", 1.0), "[in_i]": ("length", 0.0254),
    "/min": ("rate", 1.0), "{beats}/min": ("rate", 1.0), "{breaths}/min": ("rate", 1.0),
    "%": ("percent", 1.0), "mm[Hg]": ("pressure", 1.0), "kg/m2": ("mass per area", 1.0),
}
TO_CELSIUS = {"Cel": lambda v: v, "[degF]": lambda v: (v - 32.0) * 5.0 / 9.0, "K": lambda v: v - 273.15}
FROM_CELSIUS = {"Cel": lambda c: c, "[degF]": lambda c: c * 9.0 / 5.0 + 32.0, "K": lambda c: c + 273.15}
SECONDS_PER = {"s": 1, "min": 60, "h": 3600, "d": 86400, "wk": 7 * 86400}

DATETIME = re.compile(r"(\d{4})(?:-(\d\d)(?:-(\d\d)(?:T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d))?)?)?")
DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def parse_instant(text):
    """Microseconds since the epoch of a FHIR date, dateTime or instant (a partial date is its
    first moment, in UTC); None when it is not one. Digits past the microsecond are dropped."""
    m = DATETIME.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        date = datetime.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return None
    micros = (date.toordinal() - datetime.date(1970, 1, 1).toordinal()) * MICROS_PER_DAY
    if hour is None:
        return micros
    if int(hour) > 23 or int(minute) > 59 or int(second) > 60:
        return None
    micros += ((int(hour) * 60 + int(minute)) * 60 + int(second)) * 10**6 + int((fraction or "0")[:6].ljust(6, "0"))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        micros -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 10**6
    return micros


def format_instant(micros):
    """The instant as the adapter writes it: 2026-10-30T08:15:00.000000Z."""
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=micros)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def year_of(micros):
    """The UTC calendar year of an instant."""
    return (datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=micros)).year


def parse_duration(text):
    """Microseconds of an ISO 8601 duration in weeks, days, hours, minutes, seconds."""
    m = DURATION.fullmatch(text)
    assert m and any(m.groups()), f"not a duration features.md allows: {text}"
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return ((((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds) * 10**6


def convert(value, unit, to):
    """value in `unit` converted to `to`, or None when the two do not convert."""
    if unit == to:
        return value
    if unit in TO_CELSIUS and to in FROM_CELSIUS:
        return FROM_CELSIUS[to](TO_CELSIUS[unit](value))
    (dim_from, f_from), (dim_to, f_to) = LINEAR_UNITS.get(unit, (None, 0)), LINEAR_UNITS.get(to, ("", 0))
    return value * f_from / f_to if dim_from == dim_to else None


def patient_id(resource):
    """The id of the Patient that `subject` references (relative or absolute), else None."""
    ref = (resource.get("subject") or {}).get("reference", "")
    m = re.search(r"(?:^|/)Patient/([^/]+)(?:/_history/.*)?$", ref)
    return m.group(1) if m else None


def first_code(concept):
    """The code of the first coding of a CodeableConcept, else None."""
    codings = (concept or {}).get("coding") or [{}]
    return codings[0].get("code")


def codings_of(concept):
    """`system|code` of each coding of a CodeableConcept that has a code, in order."""
    return [f"{x.get('system', '')}|{x['code']}" for x in (concept or {}).get("coding", []) if "code" in x]


def matches(entry, coding):
    """Whether a `codes` or value-set entry (`system|code`, or a prefix `system|I50*`) matches a
    coding's `system|code`: a prefix matches codes of its system that start with it, dots ignored
    on both sides; any other entry only the same `system|code`."""
    if not entry.endswith("*"):
        return entry == coding
    system, _, prefix = entry[:-1].partition("|")
    coding_system, _, code = coding.partition("|")
    return coding_system == system and code.replace(".", "").startswith(prefix.replace(".", ""))


@dataclass
class Value:
    """One usable value of an Observation: a number in the unit the store keeps for its code, or
    for a code read with last_code the `system|code` of the coding kept."""
    code: str
    value: float | str
    effective: int


@dataclass
class Stay:
    """An Encounter that counts (any class), and whether it was emergent."""
    class_code: str
    start: int | None
    end: int | None
    emergent: bool = False


@dataclass
class Condition:
    """A Condition of the patient: every coding of its code, and what says when it holds."""
    codings: list
    onset: int | None
    clinical_status: str | None
    abatement: int | None
    verification_status: str | None

    def holds(self, as_of):
        """Whether the Condition holds at `as_of` (docs/features.md, "Condition measures")."""
        if self.verification_status in NOT_HOLDING_VERIFICATIONS or self.onset is None or self.onset > as_of:
            return False
        if self.clinical_status in HOLDING_CLINICAL:
            return True
        if self.clinical_status is None:
            # features.md: an absent status is active until its abatement, if it has one.
            return self.abatement is None or self.abatement > as_of
        # A clinicalStatus code outside the six features.md names never holds (a choice).
        return self.clinical_status in ABATED_CLINICAL and self.abatement is not None and self.abatement > as_of


def led_to(visit, stay):
    """Whether an emergency visit led to a stay: it began before the stay did and was still going
    (no end, or an end after the stay's start), or had ended less than 24 hours before, then."""
    if visit.class_code != EMERGENCY_CLASS or visit.start is None or stay.start is None:
        return False
    return visit.start < stay.start and (visit.end is None or visit.end > stay.start - LED_TO_STAY_WITHIN)


@dataclass
class PatientData:
    birth_year: int | None
    gender: str | None
    values: list = field(default_factory=list)
    stays: list = field(default_factory=list)  # Encounters that count
    conditions: list = field(default_factory=list)  # only when a feature reads Conditions

    @staticmethod
    def from_resources(patients, observations, encounters, features, conditions=()):
        """{Patient id: PatientData} of the resources, and the dead letters: {Observation id:
        reason} and {("Condition", id): reason}."""
        out, dead = {}, {}
        for p in patients:
            born = parse_instant(p.get("birthDate"))
            out[p["id"]] = PatientData(None if born is None else year_of(born), p.get("gender"))
        for o in observations:
            values, reason = features.observation_values(o)
            if reason:
                dead[o["id"]] = reason
            elif values and patient_id(o) in out:
                out[patient_id(o)].values += values
        for e in encounters:
            period = e.get("period", {})
            start, end = parse_instant(period.get("start")), parse_instant(period.get("end"))
            unreadable = (start is None and "start" in period) or (end is None and "end" in period)
            if patient_id(e) in out and not unreadable and e.get("status") not in NOT_COUNTING_ENCOUNTERS:
                # The first coding's code of each, whatever its system (features.md names the
                # systems, v3 ActPriority and admit-source, but not whether the code is checked
                # against them: it is not here).
                recorded = (first_code(e.get("priority")) == "EM"
                            or first_code((e.get("hospitalization") or {}).get("admitSource")) == "emd")
                out[patient_id(e)].stays.append(Stay((e.get("class") or {}).get("code"), start, end, recorded))
        for data in out.values():
            for stay in data.stays:
                stay.emergent = stay.emergent or any(led_to(v, stay) for v in data.stays)
        for c in conditions if features.reads_conditions else ():
            condition, reason = features.condition(c)
            if reason:
                dead[("Condition", c.get("id"))] = reason
            elif patient_id(c) in out:
                out[patient_id(c)].conditions.append(condition)
        return out, dead


class Features:
    """The [[feature]] tables of a definitions file, and what they make of resources."""

    def __init__(self, definitions, base="."):
        """`base`: the directory that a definition's `value_set` is relative to."""
        self.defs = {d["name"]: d for d in definitions}
        self.order = [d["name"] for d in definitions]
        # A code read with last_code keeps coded values: the coding that one of the `equals` of
        # the last_code features on that code names. features.md says "one of the features'
        # equals"; this takes those of the features that read the code, and the first such
        # coding in the CodeableConcept's order when several are named.
        self.coded = {}
        for d in definitions:
            if d["source"] == "observation" and d["aggregation"] == "last_code":
                for code in d["codes"]:
                    self.coded.setdefault(code, set()).update(d["equals"])
        # Each code is kept in the unit, and checked against the plausible range, of the first
        # feature that reads it (a count keeps values in whatever unit another feature gives).
        self.kept = {}
        for d in definitions:
            if d["source"] == "observation" and d["aggregation"] not in ("count", "last_code"):
                for code in d["codes"]:
                    assert code not in self.coded, f"{code} is read with last_code, and as numbers by {d['name']}"
                    self.kept.setdefault(code, (d["unit"], *d.get("plausible", (-math.inf, math.inf))))
        for d in definitions:
            if d["source"] == "observation" and d["aggregation"] == "count":
                for code in d["codes"]:
                    if code not in self.coded:  # a count of a coded code counts its coded values
                        self.kept.setdefault(code, (None, -math.inf, math.inf))
        # A condition feature's codes: its `codes` and its value set's; a charlson feature's
        # categories: (name, weight, codes, superseded_by) of its value set's [[category]] tables.
        # features.md gives the Charlson score from the categories alone: a charlson feature's own
        # `codes` (and a value set's top-level `codes`) are not read by it, and present and count
        # read no category's codes.
        self.condition_codes, self.categories = {}, {}
        for d in definitions:
            if d["source"] == "condition":
                value_set = {}
                if "value_set" in d:
                    with open(os.path.join(base, d["value_set"]), "rb") as f:
                        value_set = tomllib.load(f)
                self.condition_codes[d["name"]] = [*d.get("codes", []), *value_set.get("codes", [])]
                self.categories[d["name"]] = [(c["name"], c["weight"], c["codes"], c.get("superseded_by"))
                                              for c in value_set.get("category", [])]
        self.reads_conditions = bool(self.condition_codes)

    @classmethod
    def load(cls, path):
        """The definitions of a features file, its value sets relative to the file."""
        with open(path, "rb") as f:
            return cls(tomllib.load(f)["feature"], os.path.dirname(os.path.abspath(path)))

    def read_code(self, part):
        """The first code of an Observation or component that some feature reads, or None."""
        return next((c for c in (f"{x.get('system', '')}|{x.get('code')}"
                                 for x in (part.get("code") or {}).get("coding", []) if "code" in x)
                     if c in self.kept or c in self.coded), None)

    def observation_values(self, o):
        """([Value], None) of one Observation, or ([], reason) when it is a dead letter: only one
        that some feature reads can be (docs/features.md)."""
        # fhir/resources.cpp: effectiveDateTime, else effectivePeriod.start (a period without a
        # start gives no time), else effectiveInstant.
        if "effectiveDateTime" in o:
            text = o["effectiveDateTime"]
        elif "effectivePeriod" in o:
            text = o["effectivePeriod"].get("start")
        else:
            text = o.get("effectiveInstant")
        effective = None if text is None else parse_instant(text)
        if text is not None and effective is None:
            return [], "bad-date"
        parts = [o, *o.get("component", [])]
        if all(self.read_code(part) is None for part in parts):
            return [], None  # no feature reads it: ignored, whatever its value or subject
        if patient_id(o) is None:
            return [], "missing-subject"
        if o.get("status") not in COUNTING_STATUSES:
            return [], None
        values = []
        for part in parts:
            code = self.read_code(part)
            if code is None or any(v.code == code for v in values):
                continue  # a code no feature reads, or one this Observation already gave a value for
            if code in self.coded:
                value, reason = self.coded_value(code, part)
                if reason:
                    return [], reason
                if value is not None:
                    values.append(Value(code, value, effective))
                continue
            # A value of another type than Quantity, where a feature reads the code.
            quantity = part.get("valueQuantity")
            if quantity is None and any(k.startswith("value") and len(k) > 5 for k in part):
                return [], "bad-value"
            if quantity is not None and type(quantity.get("value", 0)) not in (int, float):
                return [], "bad-value"
            value, reason = self.measure(code, quantity)
            if reason:
                return [], reason
            if value is not None:
                values.append(Value(code, value, effective))
        if values and effective is None:
            return [], "missing-effective"
        return values, None

    def coded_value(self, code, part):
        """(`system|code` kept of a code read with last_code, None), (None, None) without a value,
        or (None, "bad-value") for a value of another type than CodeableConcept."""
        concept = part.get("valueCodeableConcept")
        if concept is None:
            return None, ("bad-value" if any(k.startswith("value") and len(k) > 5 for k in part) else None)
        codings = codings_of(concept)
        # A CodeableConcept without a coding that has a code (text only) is no value, not a dead
        # letter (features.md is silent); "its first coding" is the first that has a code.
        if not codings:
            return None, None
        return next((c for c in codings if c in self.coded[code]), codings[0]), None

    def condition(self, c):
        """(Condition, None) of one Condition resource, or (None, reason) when it is a dead letter."""
        if patient_id(c) is None:
            return None, "missing-subject"
        # The onset is onsetDateTime, else onsetPeriod.start, else recordedDate (also when the
        # onset is of another type, onsetAge or onsetString, or a period without a start). A date
        # that cannot be read makes the Condition a dead letter ("bad-date", as for an
        # Observation's effective time; features.md is silent).
        onset_text = c.get("onsetDateTime", (c.get("onsetPeriod") or {}).get("start"))
        if onset_text is None:
            onset_text = c.get("recordedDate")
        abatement_text = c.get("abatementDateTime", (c.get("abatementPeriod") or {}).get("end"))
        onset, abatement = (None if t is None else parse_instant(t) for t in (onset_text, abatement_text))
        if (onset_text is not None and onset is None) or (abatement_text is not None and abatement is None):
            return None, "bad-date"
        # An abatement is abatementDateTime or abatementPeriod.end only: abatementAge,
        # abatementString or a period without an end is none.
        return Condition(codings_of(c.get("code")), onset, first_code(c.get("clinicalStatus")), abatement,
                         first_code(c.get("verificationStatus"))), None

    def measure(self, code, quantity):
        """(value in the code's kept unit, None), (None, None) without a value, or (None, reason)."""
        if not quantity or quantity.get("value") is None:
            return None, None
        unit, low, high = self.kept[code]
        system, ucum = quantity.get("system"), quantity.get("code") or quantity.get("unit", "")
        if system not in (None, "", UCUM) and quantity.get("code"):
            return None, "unknown-unit"
        if unit is None:
            return float(quantity["value"]), None
        value = convert(float(quantity["value"]), ucum, unit)
        if value is None:
            return None, "unknown-unit"
        if not (low <= value <= high):
            return None, "implausible-value"
        return value, None

    def vector(self, data, as_of, names):
        """The features `names` of one patient as of `as_of`, float32, NaN when missing."""
        return np.array([self.value(self.defs[n], data, as_of) for n in names], dtype=np.float32)

    def value(self, d, data, as_of):
        """One feature of one patient as of `as_of`, NaN when missing."""
        window = parse_duration(d["window"]) if "window" in d else None
        in_window = lambda t: t is not None and t <= as_of and (window is None or t > as_of - window)
        if d["source"] == "patient":
            if d["attribute"] == "age":
                return math.nan if data.birth_year is None else year_of(as_of) - data.birth_year
            if data.gender in (None, "unknown"):
                return math.nan
            return 1.0 if data.gender == d["equals"] else 0.0
        if d["source"] == "encounter":
            stays = [s for s in data.stays if s.class_code in d["classes"]]
            if d["measure"] == "admissions":
                return float(sum(1 for s in stays if in_window(s.start)))
            # The last stay that ended at or before as-of, in the window. features.md does not
            # say which of two stays ending together counts; the adapter takes the longer.
            ended = [s for s in stays if s.start is not None and in_window(s.end) and s.start <= s.end]
            last = max(ended, key=lambda s: (s.end, -s.start)) if ended else None
            if d["measure"] == "emergency_visits":
                # "Started in the window before the index stay began (before the as-of time
                # without one)": in (t - window, t), t excluded in both cases, as "before" says
                # where features.md elsewhere says "at or before". Every emergency visit that led
                # to the index stay is left out, should there be more than one.
                t = as_of if last is None else last.start
                return float(sum(1 for v in data.stays if v.class_code == EMERGENCY_CLASS and v.start is not None
                                 and v.start < t and (window is None or v.start > t - window)
                                 and not (last is not None and led_to(v, last))))
            if last is None:
                return math.nan
            if d["measure"] == "acuity":
                return 1.0 if last.emergent else 0.0
            micros = last.end - last.start if d["measure"] == "length_of_stay" else as_of - last.end
            return micros / (SECONDS_PER[d["unit"]] * 10**6)
        if d["source"] == "condition":
            return self.condition_value(d, [c for c in data.conditions if c.holds(as_of)])
        if d["aggregation"] == "last_code":
            points = sorted((v.effective, v.value) for v in data.values
                            if v.code in d["codes"] and in_window(v.effective))
            # The latest coded value, at equal times the larger `system|code` string.
            return math.nan if not points else 1.0 if points[-1][1] in d["equals"] else 0.0
        points = sorted((v.effective, convert(v.value, self.kept[v.code][0], d["unit"])
                         if d["aggregation"] != "count" else v.value)
                        for v in data.values if v.code in d["codes"] and in_window(v.effective))
        return aggregate(d["aggregation"], points)

    def condition_value(self, d, holding):
        """present, count or charlson of a condition feature over the Conditions that hold."""
        has = lambda c, codes: any(matches(entry, coding) for entry in codes for coding in c.codings)
        if d["measure"] in ("present", "count"):
            n = sum(1 for c in holding if has(c, self.condition_codes[d["name"]]))
            return float(n) if d["measure"] == "count" else float(n > 0)
        assert d["measure"] == "charlson", d["measure"]
        present = {name: (weight, superseded_by) for name, weight, codes, superseded_by in self.categories[d["name"]]
                   if any(has(c, codes) for c in holding)}
        return float(sum(weight for weight, superseded_by in present.values() if superseded_by not in present))


def aggregate(how, points):
    """last, min, max, mean, count, delta or slope (per day) of (time, value) points in (time,
    value) order."""
    if how == "count":
        return float(len(points))
    if not points:
        return math.nan
    values = [v for _, v in points]
    if how == "last":
        return values[-1]
    if how == "delta":
        return values[-1] - values[0]
    if how in ("min", "max"):
        return min(values) if how == "min" else max(values)
    if how == "mean":
        return sum(values) / len(values)
    assert how == "slope", how
    days = [(t - points[0][0]) / MICROS_PER_DAY for t, _ in points]
    mean_t, mean_v = sum(days) / len(days), sum(values) / len(values)
    sxx = sum((t - mean_t) ** 2 for t in days)
    if sxx == 0:
        return math.nan
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(days, values)) / sxx
