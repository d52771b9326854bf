#!/usr/bin/env bash
# Starts a throwaway PostgreSQL and the FHIR test server with 200 generated patients
# (fixture.sh), runs the given integration test modules against them, each alone in a process
# of its own with its own work folder, databases and pseudonym key (run_module.sh), and stops
# both servers. Modules do not depend on each other: any of them, in any order. Exits non-zero
# when a module fails, after running the rest.
#
#   bash tests/integration/run.sh BUILD/fhir-risk-adapter [MODULE...]
#
# MODULEs default to every tests/integration/test_*.py, in name order. ctest runs the same
# modules as tests of their own, with the servers as fixtures (`ctest -R test_audit`).
set -euo pipefail
binary=$(realpath "${1:?usage: run.sh PATH/TO/fhir-risk-adapter [MODULE...]}")
shift
here=$(cd "$(dirname "$0")" && pwd)
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
  for f in "$here"/test_*.py; do modules+=("$(basename "$f" .py)"); done
fi
state=$(mktemp -d /tmp/fra-e2e.XXXXXX)

cleanup() {
  local rc=$?
  bash "$here/fixture.sh" stop fhir "$state" || true
  bash "$here/fixture.sh" stop postgresql "$state" || true
  rm -rf "$state"
  exit $rc
}
trap cleanup EXIT

bash "$here/fixture.sh" start postgresql "$state"
bash "$here/fixture.sh" start fhir "$state"
failed=()
for m in "${modules[@]}"; do
  bash "$here/run_module.sh" "$state" "$binary" "$m" || failed+=("$m")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: failed: ${failed[*]}" >&2
  exit 1
fi
