#!/usr/bin/env bash
# Runs one integration test module against the servers fixture.sh started (their URLs are in
# STATE; a module that needs a server not started fails saying so), in a process and a work
# folder of its own; the module makes its own databases, named after it.
#
#   bash tests/integration/run_module.sh STATE BUILD/fhir-risk-adapter MODULE   (e.g. test_audit)
set -euo pipefail
usage="usage: run_module.sh STATE PATH/TO/fhir-risk-adapter MODULE"
state=${1:?$usage}
binary=$(realpath "${2:?$usage}")
module=${3:?$usage}
root=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$root/tests/integration/$module.py" ] || { echo "run_module.sh: no module $module in tests/integration" >&2; exit 64; }

work=$(mktemp -d "/tmp/fra-$module.XXXXXX")
trap 'rm -rf "$work"' EXIT
export FRA_TEST_BINARY="$binary" FRA_TEST_WORK="$work" FRA_TEST_MODULE="$module"
export FRA_TEST_MODEL="$root/models/readmission-risk"
unset FRA_TEST_DB FRA_TEST_FHIR
if [ -f "$state/postgresql.url" ]; then FRA_TEST_DB=$(cat "$state/postgresql.url"); export FRA_TEST_DB; fi
if [ -f "$state/fhir.url" ]; then FRA_TEST_FHIR=$(cat "$state/fhir.url"); export FRA_TEST_FHIR; fi
/usr/bin/python3 "$root/tests/integration/$module.py"
