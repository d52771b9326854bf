#!/usr/bin/python3
"""The Grafana dashboard (deploy/grafana/) and the Prometheus alert rules (deploy/prometheus/)
against the metrics the adapter declares: fails, naming the panel or rule, when one of them
reads a metric the adapter does not declare or is incomplete.

- Metrics: every `declare("name", "type", ...)` call in adapter/ (the list is in
  adapter/app/run.cpp), histograms with their _bucket, _sum and _count series, and Prometheus'
  own `up`. Every metric name in every PromQL expression of the dashboard (panels and template
  variables) and of the rules must be one of them, every function a PromQL function, and every
  declared metric must be on some panel.
- Dashboard: JSON; every panel has a title, a core panel type and at least one target with an
  expression; ids unique; data sources only through the dashboard's data source variable.
- Rules: every alert has `for`, a `severity` label (critical, warning or info), a summary and a
  description that names a section of docs/operations.md which exists, and a runbook link to one.
- promtool (Debian's prometheus package), when on PATH: `promtool check rules` on the rules and
  on the dashboard's expressions (as recording rules), and `promtool test rules` on
  tests/prometheus/fhir-risk-adapter.rules.test.yml. Required when CI=true; otherwise its
  absence is reported and those checks are skipped.

A self-check first makes sure the checks can fail: a made-up metric, function, histogram suffix
and an incomplete rule and panel must each be reported.

    /usr/bin/python3 tests/check_dashboards.py
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    sys.exit("check_dashboards: PyYAML is missing: install Debian's python3-yaml "
             "(deploy/install-deps.sh does)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADAPTER = os.path.join(ROOT, "adapter")
RUN_CPP = os.path.join(ADAPTER, "app", "run.cpp")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "fhir-risk-adapter.json")
RULES = os.path.join(ROOT, "deploy", "prometheus", "fhir-risk-adapter.rules.yml")
RULE_TESTS = os.path.join(ROOT, "tests", "prometheus", "fhir-risk-adapter.rules.test.yml")
OPERATIONS = os.path.join(ROOT, "docs", "operations.md")

PROMETHEUS_OWN = {"up"}
SEVERITIES = {"critical", "warning", "info"}
DECLARE = re.compile(r'\bdeclare\(\s*"([^"]*)"\s*,\s*"([^"]*)"')
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")

# Grafana's own panels (no plugin to install).
CORE_PANELS = {
    "row", "timeseries", "stat", "gauge", "bargauge", "table", "text", "barchart", "piechart",
    "heatmap", "histogram", "state-timeline", "status-history", "xychart", "trend", "logs",
    "nodeGraph", "alertlist", "annolist", "dashlist", "news", "canvas", "geomap", "candlestick",
    "flamegraph", "traces", "datagrid",
}

# PromQL, as of Prometheus 2.42 (Debian 12).
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile"}
FUNCTIONS = AGGREGATIONS | {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "exp", "floor", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "max_over_time",
    "min_over_time", "minute", "month", "pi", "predict_linear", "present_over_time",
    "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin", "sinh",
    "sort", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan",
    "tanh", "time", "timestamp", "vector", "year", "start", "end",
}
LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
OPERATOR_KEYWORDS = {"and", "or", "unless", "bool", "atan2", "offset"}
LITERALS = {"inf", "nan"}

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_:]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<punct>==|!=|=~|!~|>=|<=|[-+*/%^<>=(){}\[\],@])
""", re.VERBOSE)


def tokens(expr):
    """PromQL's tokens as (kind, text), or raises ValueError at the first character it cannot read."""
    out, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup not in ("space", "comment"):
            out.append((m.lastgroup, m.group()))
    return out


def expression_names(expr):
    """(metric names, problems) of one PromQL expression. A metric name is an identifier outside
    label matchers and range brackets that is neither a keyword nor followed by "(" (then it is
    a function, which must be PromQL's), or the value of a `__name__="..."` matcher."""
    try:
        toks = tokens(expr)
    except ValueError as e:
        return set(), [str(e)]
    names, problems = set(), []
    i, n = 0, len(toks)
    while i < n:
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < n else None
        if text == "{":  # label matchers: only __name__ names a metric
            i += 1
            while i < n and toks[i][1] != "}":
                if (toks[i][1] == "__name__" and i + 2 < n and toks[i + 1][1] == "="
                        and toks[i + 2][0] == "string"):
                    names.add(toks[i + 2][1][1:-1])
                elif toks[i][1] == "__name__":
                    problems.append("a __name__ matcher other than __name__=\"...\" cannot be checked")
                i += 1
        elif text == "[":  # a range or a subquery: durations and variables
            while i < n and toks[i][1] != "]":
                i += 1
        elif kind == "ident":
            low = text.lower()
            if low in LIST_KEYWORDS:
                if nxt == "(":
                    depth = 0
                    while i + 1 < n:
                        i += 1
                        depth += {"(": 1, ")": -1}.get(toks[i][1], 0)
                        if depth == 0:
                            break
            elif low in OPERATOR_KEYWORDS or low in LITERALS:
                pass
            elif text in AGGREGATIONS and (nxt or "").lower() in ("by", "without"):
                pass  # sum by (type) (...)
            elif nxt == "(":
                if text not in FUNCTIONS:
                    problems.append(f"unknown function {text}()")
            else:
                names.add(text)
        i += 1
    return names, problems


def declared_metrics():
    """name -> type of every metric the adapter declares (its sources under adapter/)."""
    found, problems = {}, []
    in_run_cpp = 0
    for folder, _, files in os.walk(ADAPTER):
        for f in sorted(files):
            if not f.endswith((".cpp", ".hpp")):
                continue
            path = os.path.join(folder, f)
            with open(path, encoding="utf-8") as fh:
                for name, kind in DECLARE.findall(fh.read()):
                    rel = os.path.relpath(path, ROOT)
                    if kind not in ("counter", "gauge", "histogram") or not METRIC_NAME.match(name):
                        problems.append(f"{rel}: declare(\"{name}\", \"{kind}\") is not a metric "
                                        "this check understands")
                        continue
                    found[name] = kind
                    in_run_cpp += path == RUN_CPP
    if in_run_cpp == 0:
        problems.append(f"{os.path.relpath(RUN_CPP, ROOT)}: no m.declare(\"name\", \"type\", ...) "
                        "call found: has their form changed? (this check reads them with "
                        f"{DECLARE.pattern})")
    return found, problems


def series_names(declared):
    """The series names a query may use: counters and gauges as declared, histograms by their
    _bucket, _sum and _count series (and the bare name, which Grafana's metric browser offers
    but which has no series: not accepted), Prometheus' own `up`."""
    names = set(PROMETHEUS_OWN)
    for name, kind in declared.items():
        if kind == "histogram":
            names |= {name + "_bucket", name + "_sum", name + "_count"}
        else:
            names.add(name)
    return names


def check_expression(where, expr, known, used=None):
    names, problems = expression_names(expr)
    out = [f"{where}: {p} in: {expr}" for p in problems]
    for name in sorted(names - known):
        out.append(f"{where}: unknown metric {name} (the adapter declares no such series) in: "
                   f"{' '.join(expr.split())}")
    if used is not None:
        used |= names & known
    return out


def walk_panels(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        for inner in panel.get("panels", []) or []:
            yield inner


def datasource_refs(dashboard):
    """The data source references a panel may use: the dashboard's data source variables and
    its __inputs of type datasource."""
    refs = set()
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "datasource":
            refs |= {"$" + var["name"], "${" + var["name"] + "}"}
    for inp in dashboard.get("__inputs", []):
        if inp.get("type") == "datasource":
            refs |= {"$" + inp["name"], "${" + inp["name"] + "}"}
    return refs


def check_dashboard(dashboard, known, used, label):
    """Problems of a dashboard (a parsed JSON model); adds the metrics it reads to `used`."""
    problems = []
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
        problems.append(f"{label}: schemaVersion {dashboard.get('schemaVersion')!r}: expected 36 "
                        "or later (Grafana 9+)")
    for key in ("title", "uid"):
        if not dashboard.get(key):
            problems.append(f"{label}: no {key}")
    refs = datasource_refs(dashboard)
    if not refs:
        problems.append(f"{label}: neither a data source variable nor a datasource input")

    def check_ds(where, ds):
        if ds is None:
            return
        uid = ds.get("uid") if isinstance(ds, dict) else ds
        if uid not in refs:
            problems.append(f"{where}: data source {ds!r}: use the dashboard's variable "
                            f"({' or '.join(sorted(refs)) or 'none defined'})")

    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        where = f"{label}: variable {var.get('name')!r}"
        check_ds(where, var.get("datasource"))
        query = var.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        m = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*", query)
        m = m or re.fullmatch(r"\s*query_result\((.*)\)\s*", query)
        if m:
            problems += check_expression(where, m.group(1), known)
        else:
            problems.append(f"{where}: query {query!r} is not label_values(...) or "
                            "query_result(...), which this check reads")
    ids = {}
    for panel in walk_panels(dashboard):
        title = panel.get("title")
        where = f"{label}: panel {title!r} (id {panel.get('id')})" if title else \
            f"{label}: panel id {panel.get('id')}"
        if not title:
            problems.append(f"{where}: no title")
        if panel.get("id") in ids:
            problems.append(f"{where}: id {panel.get('id')} already used by panel "
                            f"{ids[panel.get('id')]!r}")
        ids[panel.get("id")] = title
        kind = panel.get("type")
        if kind not in CORE_PANELS:
            problems.append(f"{where}: panel type {kind!r} is not one of Grafana's own")
        pos = panel.get("gridPos", {})
        if not pos or pos.get("x", 0) + pos.get("w", 0) > 24:
            problems.append(f"{where}: gridPos {pos!r} missing or wider than the 24 columns")
        if kind == "row":
            continue
        check_ds(where, panel.get("datasource"))
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no target")
        refids = set()
        for t in targets:
            ref = t.get("refId")
            twhere = f"{where} (target {ref})"
            if ref in refids:
                problems.append(f"{twhere}: refId used twice")
            refids.add(ref)
            check_ds(twhere, t.get("datasource"))
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{twhere}: no PromQL expression")
                continue
            problems += check_expression(twhere, expr, known, used)
    return problems


def operations_sections():
    """Headings of docs/operations.md: their text and their GitHub anchors."""
    with open(OPERATIONS, encoding="utf-8") as f:
        titles = [m.group(1).strip() for m in re.finditer(r"^#{1,6}\s+(.*)$", f.read(), re.M)]
    anchors = {re.sub(r"[^\w\- ]", "", t.lower()).replace(" ", "-") for t in titles}
    return set(titles), anchors


SECTION_REFS = re.compile(r'docs/operations\.md,\s*"([^"]+)"((?:\s*(?:,|and|;\s*see also)\s*"[^"]+")*)')


def check_rules(rules, known, label, sections):
    """Problems of a rule file (parsed YAML); `sections` is (titles, anchors) of operations.md."""
    problems = []
    titles, anchors = sections
    groups = rules.get("groups") if isinstance(rules, dict) else None
    if not groups:
        return [f"{label}: no rule groups"]
    names = set()
    known = set(known)
    for group in groups:
        for rule in group.get("rules") or []:
            if rule.get("record"):
                known.add(rule["record"])
    for group in groups:
        if not group.get("rules"):
            problems.append(f"{label}: group {group.get('name')!r} has no rules")
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            where = f"{label}: rule {name!r}"
            if not name:
                problems.append(f"{label}: a rule of group {group.get('name')!r} with neither "
                                "alert nor record")
                continue
            if name in names and rule.get("alert"):
                problems.append(f"{where}: a second alert of that name")
            names.add(name)
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where}: no expr")
            else:
                problems += check_expression(where, expr, known)
            if rule.get("record"):
                continue
            if not re.fullmatch(r"(?:\d+(?:ms|[smhdwy]))+", str(rule.get("for", ""))):
                problems.append(f"{where}: no `for` (a duration such as 15m)")
            severity = (rule.get("labels") or {}).get("severity")
            if severity not in SEVERITIES:
                problems.append(f"{where}: labels.severity is {severity!r}, not one of "
                                f"{', '.join(sorted(SEVERITIES))}")
            notes = rule.get("annotations") or {}
            for key in ("summary", "description"):
                if not isinstance(notes.get(key), str) or not notes[key].strip():
                    problems.append(f"{where}: no annotations.{key}")
            description = notes.get("description") or ""
            refs = []
            for m in SECTION_REFS.finditer(description):
                refs += [m.group(1)] + re.findall(r'"([^"]+)"', m.group(2))
            if not refs:
                problems.append(f"{where}: the description names no section of "
                                "docs/operations.md (as: docs/operations.md, \"Section\")")
            for ref in refs:
                if ref not in titles:
                    problems.append(f"{where}: the description names the section {ref!r}, "
                                    "which docs/operations.md does not have")
            runbook = notes.get("runbook", "")
            m = re.fullmatch(r"docs/operations\.md#([\w\-]+)", runbook)
            if not m:
                problems.append(f"{where}: annotations.runbook {runbook!r} is not "
                                "docs/operations.md#<section>")
            elif m.group(1) not in anchors:
                problems.append(f"{where}: annotations.runbook: docs/operations.md has no "
                                f"section #{m.group(1)}")
    return problems


def grafana_to_promql(expr):
    """A dashboard expression with Grafana's variables replaced, for promtool to parse."""
    expr = re.sub(r"\$\{__\w+\}|\$__\w+", "5m", expr)
    return re.sub(r"\$\{[^}]*\}|\$[A-Za-z_]\w*", ".*", expr)


def promtool_checks(promtool, dashboard, rules):
    """Problems promtool finds: the rules, the dashboard's expressions, the rule unit tests."""
    problems = []

    def run(*args, cwd=None):
        return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd)

    r = run("check", "rules", RULES)
    if r.returncode != 0:
        problems.append(f"promtool check rules {os.path.relpath(RULES, ROOT)} failed:\n"
                        f"{r.stdout}{r.stderr}")
    with tempfile.TemporaryDirectory() as tmp:
        # The dashboard's expressions as recording rules: promtool parses each one.
        records, where = [], {}
        for panel in walk_panels(dashboard):
            for t in panel.get("targets") or []:
                if isinstance(t.get("expr"), str) and t["expr"].strip():
                    record = f"dashboard:panel_{panel.get('id')}:{t.get('refId')}"
                    where[record] = (f"panel {panel.get('title')!r} (id {panel.get('id')}, "
                                     f"target {t.get('refId')})")
                    records.append({"record": record, "expr": grafana_to_promql(t["expr"])})
        path = os.path.join(tmp, "dashboard.rules.yml")
        with open(path, "w") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}, f)
        r = run("check", "rules", path)
        if r.returncode != 0:
            named = "".join(f"\n  {k} is {v}" for k, v in where.items()
                            if f'"{k}"' in r.stdout + r.stderr)
            problems.append("promtool cannot parse expressions of the dashboard "
                            f"{os.path.relpath(DASHBOARD, ROOT)} (checked as recording rules):"
                            f"\n{r.stdout}{r.stderr}{named}")
        # The rule unit tests, on the rules without their annotations (promtool compares the
        # annotations' text too; `check rules` above checked their templates).
        bare = json.loads(json.dumps(rules))
        for group in bare["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        with open(os.path.join(tmp, "rules.yml"), "w") as f:
            yaml.safe_dump(bare, f, sort_keys=False)
        with open(RULE_TESTS) as f:
            tests = yaml.safe_load(f)
        tests["rule_files"] = ["rules.yml"]
        with open(os.path.join(tmp, "rules.test.yml"), "w") as f:
            yaml.safe_dump(tests, f, sort_keys=False)
        r = run("test", "rules", "rules.test.yml", cwd=tmp)
        if r.returncode != 0:
            problems.append(f"promtool test rules {os.path.relpath(RULE_TESTS, ROOT)} failed:\n"
                            f"{r.stdout}{r.stderr}")
    return problems


def self_check(known, sections, promtool):
    """The checks report what they must: a made-up metric, function and histogram suffix, an
    incomplete rule and an incomplete panel. Returns the failures of the checks themselves."""
    failures = []

    def expect(what, problems, *needles):
        if not any(all(n in p for n in needles) for p in problems):
            failures.append(f"self-check: {what} not reported (got {problems!r})")

    def expect_none(what, problems):
        if problems:
            failures.append(f"self-check: {what}: unexpected {problems!r}")

    expect("a made-up metric", check_expression("synthetic", 'sum(rate(fra_made_up_total[5m]))',
                                                known), "synthetic", "fra_made_up_total")
    expect("a histogram suffix on a counter",
           check_expression("synthetic", "rate(fra_scores_total_bucket[5m])", known),
           "fra_scores_total_bucket")
    expect("a histogram's bare name",
           check_expression("synthetic", "rate(fra_scoring_seconds[5m])", known),
           "fra_scoring_seconds")
    expect("a made-up metric in __name__",
           check_expression("synthetic", '{__name__="fra_made_up", type="Patient"}', known),
           "fra_made_up")
    expect("an unknown function", check_expression("synthetic", "rates(fra_scores_total[5m])",
                                                   known), "unknown function rates()")
    expect_none("a valid expression", check_expression(
        "synthetic",
        'histogram_quantile(0.95, sum by (le) (rate(fra_scoring_seconds_bucket{job=~"$job", '
        'le!="{not_a_metric}"}[$__rate_interval]))) > bool 1e3 and on (instance) group_left '
        "(model) fra_model_info offset 5m or vector(0) * time() - sum without (band) "
        "(fra_scores_total @ end()) # a comment: not_a_metric", known))
    panel = {"id": 1, "type": "timeseries", "title": "Synthetic",
             "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "targets": [{"refId": "A", "expr": "sum(rate(fra_made_up_total[5m]))"}]}
    dash = {"schemaVersion": 39, "title": "t", "uid": "t",
            "templating": {"list": [{"type": "datasource", "name": "datasource"}]},
            "panels": [panel, {"id": 2, "type": "stat", "title": "Empty",
                               "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8}, "targets": []},
                       {"id": 3, "type": "some-plugin-panel", "title": "Plugin",
                        "gridPos": {"x": 0, "y": 8, "w": 12, "h": 8},
                        "datasource": {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"},
                        "targets": [{"refId": "A", "expr": "up"}]}]}
    problems = check_dashboard(dash, known, set(), "synthetic.json")
    expect("a made-up metric in a panel", problems, "panel 'Synthetic'", "fra_made_up_total")
    expect("a panel without a target", problems, "panel 'Empty'", "no target")
    expect("a plugin panel", problems, "panel 'Plugin'", "not one of Grafana's own")
    expect("a hard-wired data source", problems, "panel 'Plugin'", "data source")
    rules = {"groups": [{"name": "g", "rules": [
        {"alert": "Incomplete", "expr": "fra_made_up_total > 0"},
        {"alert": "BadSection", "expr": "up == 0", "for": "5m", "labels": {"severity": "page"},
         "annotations": {"summary": "s", "description": 'docs/operations.md, "No such section"',
                         "runbook": "docs/operations.md#no-such-section"}}]}]}
    problems = check_rules(rules, known, "synthetic.rules.yml", sections)
    expect("a made-up metric in a rule", problems, "rule 'Incomplete'", "fra_made_up_total")
    for what in ("`for`", "labels.severity", "annotations.summary", "annotations.description"):
        expect(f"a rule without {what}", problems, "rule 'Incomplete'", what)
    expect("a severity not known", problems, "rule 'BadSection'", "'page'")
    expect("a section that does not exist", problems, "rule 'BadSection'", "No such section")
    expect("a runbook anchor that does not exist", problems, "rule 'BadSection'",
           "#no-such-section")
    if promtool:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "broken.rules.yml")
            with open(path, "w") as f:
                f.write("groups:\n  - name: g\n    rules:\n      - alert: A\n"
                        "        expr: sum(rate(up[5m])\n")
            if subprocess.run([promtool, "check", "rules", path], capture_output=True).returncode == 0:
                failures.append("self-check: promtool check rules accepted a broken expression")
    return failures


def main():
    declared, problems = declared_metrics()
    known = series_names(declared)
    sections = operations_sections()
    promtool = shutil.which("promtool")
    ci = os.environ.get("CI") == "true"

    failures = self_check(known, sections, promtool)
    if failures:
        sys.exit("\n".join(failures + ["check_dashboards: the checks themselves are broken"]))
    print("self-check: made-up metrics, functions, incomplete panels and rules are reported")

    try:
        with open(DASHBOARD, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"{os.path.relpath(DASHBOARD, ROOT)}: {e}")
    try:
        with open(RULES, encoding="utf-8") as f:
            rules = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        sys.exit(f"{os.path.relpath(RULES, ROOT)}: {e}")

    used = set()
    problems += check_dashboard(dashboard, known, used, os.path.relpath(DASHBOARD, ROOT))
    for name, kind in sorted(declared.items()):
        series = {name + s for s in ("_bucket", "_sum", "_count")} if kind == "histogram" else {name}
        if not series & used:
            problems.append(f"{os.path.relpath(DASHBOARD, ROOT)}: {name} ({kind}), which the "
                            "adapter declares, is on no panel")
    problems += check_rules(rules, known, os.path.relpath(RULES, ROOT), sections)

    panels = [p for p in walk_panels(dashboard) if p.get("type") != "row"]
    exprs = sum(len(p.get("targets") or []) for p in panels)
    alerts = [r for g in rules.get("groups") or [] for r in g.get("rules") or [] if r.get("alert")]
    print(f"metrics: {len(declared)} declared in adapter/ "
          f"({sum(k == 'histogram' for k in declared.values())} histograms), plus up")
    print(f"dashboard: {len(panels)} panels, {exprs} expressions; rules: {len(alerts)} alerts")

    if promtool:
        problems += promtool_checks(promtool, dashboard, rules)
        version = subprocess.run([promtool, "--version"], capture_output=True,
                                 text=True).stdout.splitlines()
        print(f"promtool ({version[0] if version else promtool}): check rules on the rules and "
              "on the dashboard's expressions, test rules on "
              f"{os.path.relpath(RULE_TESTS, ROOT)}")
    elif ci:
        problems.append("promtool is not on PATH and CI=true: the rules must be checked in CI. "
                        "Install Debian's prometheus package (deploy/install-deps.sh does)")
    else:
        print("promtool not on PATH: promtool check rules and test rules were NOT run "
              "(Debian's prometheus package has it; deploy/install-deps.sh installs it; "
              "CI=true requires it)")

    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(f"check_dashboards: {len(problems)} problem(s)")
    print("check_dashboards: ok")


if __name__ == "__main__":
    main()
