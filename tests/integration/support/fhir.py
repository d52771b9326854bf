"""The FHIR test server: reading, writing, its fault switch, and the RiskAssessments a module wrote.

The shared server outlives each module and keeps what modules wrote to it; a module counts only
RiskAssessments whose identifiers are in its own databases (support.adapter.pseudonym_key
gives each module identifiers of its own)."""
import datetime
import json
import urllib.request

from support.env import fhir_base, fhir_origin
from support.postgres import sql

RA_SYSTEM = "urn:fhir-risk-adapter:risk-assessment"


def fhir_get(path):
    """A GET of `path` under the shared server's base, or of a full URL; the parsed answer."""
    url = path if path.startswith("http") else f"{fhir_base()}/{path}"
    with urllib.request.urlopen(url) as r:
        return json.load(r)


def fhir_all(path):
    """Every resource a search returns, following next links."""
    out, bundle = [], fhir_get(path)
    while True:
        out += [e["resource"] for e in bundle.get("entry", [])]
        nxt = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not nxt:
            return out
        bundle = fhir_get(nxt[0])


def fhir_post(resource):
    """Creates `resource` on the shared server; the resource as stored."""
    req = urllib.request.Request(f"{fhir_base()}/{resource['resourceType']}", data=json.dumps(resource).encode(),
                                 headers={"Content-Type": "application/fhir+json"}, method="POST")
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def faults(rate, latency_ms, garbage=0, base=None):
    """Sets the test server's fault injection (the shared server's unless `base` is given): the
    fraction of requests answered 429/503, the latency added to each, the fraction of GETs
    answered with an HTML page."""
    req = urllib.request.Request(f"{fhir_origin(base)}/admin/faults?rate={rate}&latency_ms={latency_ms}"
                                 f"&garbage={garbage}", method="POST", data=b"")
    urllib.request.urlopen(req).read()


def our_risk_assessments(*urls, base=None):
    """The adapter's RiskAssessments on the server (the shared one unless `base` is given) whose
    identifiers are in the databases at `urls` (the module's main one by default), as a list:
    two with one identifier would both be in it."""
    ours = set()
    for url in urls or (None,):
        ours.update(row[0] for row in sql("SELECT identifier FROM risk_assessment", url))
    page = f"{base}/RiskAssessment?_count=1000" if base else "RiskAssessment?_count=1000"
    return [ra for ra in fhir_all(page) if ra.get("identifier", [{}])[0].get("system") == RA_SYSTEM
            and ra["identifier"][0]["value"] in ours]


def risk_assessments(*urls):
    """our_risk_assessments by identifier."""
    return {ra["identifier"][0]["value"]: ra for ra in our_risk_assessments(*urls)}


def vital_sign(patient_id, code, value, unit, when=None):
    """A vital-signs Observation of a patient: LOINC `code`, a UCUM quantity, effective `when`
    (now, to the millisecond, by default: two changes of one patient within a second must not tie)."""
    return {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": when or datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
