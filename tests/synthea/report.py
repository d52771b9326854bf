"""The printed report of check_corpus.py: aligned tables, the date shift, and each model feature's
coverage over the latest scores.
"""
import collections
import json
import os

from corpus import AUTO_SHIFT_AGE
from sandbox import sql


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
