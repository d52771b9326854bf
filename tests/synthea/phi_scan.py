"""The PHI check of check_corpus.py: every PHI string of the corpus searched for, exact and
case-sensitive, in texts (a pg_dump of the store, the sync log), under the rules that avoid false
alarms.
"""
import bisect
import collections
import re

MIN_NEEDLE = 5  # shorter strings (state codes, "Mr.", "PhD", short names) are not searched for


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
