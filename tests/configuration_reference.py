#!/usr/bin/python3
"""docs/configuration.md's key table is what `fhir-risk-adapter config reference` prints from the
table of keys (key_specs() in adapter/config/keys.cpp): fails, showing the difference, when it is
not. With --write, puts the printed table in its place between the markers instead.

    python3 tests/configuration_reference.py BUILD/fhir-risk-adapter [--write]
"""
import difflib
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "configuration.md")
BEGIN, END = "<!-- BEGIN keys:", "<!-- END keys -->"


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--write"):
        sys.exit(__doc__)
    binary = sys.argv[1]
    printed = subprocess.run([binary, "config", "reference"], check=True, capture_output=True,
                             text=True).stdout
    with open(DOC) as f:
        doc = f.read()
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start or doc[start:].count(BEGIN) != 1:
        sys.exit(f"{DOC}: expected one '{BEGIN} ...' line and one '{END}' line after it")
    end += len(END) + 1  # its line end
    committed = doc[start:end]
    if committed == printed:
        return
    if len(sys.argv) == 3:
        with open(DOC, "w") as f:
            f.write(doc[:start] + printed + doc[end:])
        print(f"{DOC}: key table rewritten")
        return
    sys.stdout.writelines(difflib.unified_diff(committed.splitlines(True), printed.splitlines(True),
                                               "docs/configuration.md", "config reference"))
    sys.exit(f"docs/configuration.md's key table is stale; regenerate it with\n"
             f"  python3 tests/configuration_reference.py {binary} --write")


if __name__ == "__main__":
    main()
