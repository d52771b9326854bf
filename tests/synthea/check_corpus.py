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
import collections
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import DIRECTORY, DISPLAY_SCANNED, LOADED, read_corpus  # noqa: E402
from phi_scan import MIN_NEEDLE, scan_for_phi  # noqa: E402
from report import print_features, print_shift, print_table, thousands  # noqa: E402
from sandbox import ROOT, Sandbox, http, load, pseudonym, run, server_count, sql, write_config  # noqa: E402

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SUMMARY_RE = re.compile(r"^(?:\S+\s+fetched |cohort |ignored |scored |RiskAssessments: |Score Observations: |write-back )")


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
