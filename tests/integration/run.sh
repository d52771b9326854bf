#!/usr/bin/env bash
# Starts a throwaway PostgreSQL and the FHIR test server (200 generated patients), runs the
# end-to-end tests against them with the given adapter binary, and stops both.
#
#   bash tests/integration/run.sh BUILD/fhir-risk-adapter [MODULE...]
#
# MODULEs default to every test module here, in order: test_end_to_end, test_features, test_daemon, test_audit, test_privacy, test_faults,
# test_backfill, test_crash, test_smart, test_tls, test_secret_files.
set -euo pipefail
binary=$(realpath "${1:?usage: run.sh PATH/TO/fhir-risk-adapter [MODULE...]}")
shift
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(test_end_to_end test_features test_daemon test_audit test_privacy test_faults test_backfill test_crash test_smart test_tls test_secret_files)
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/fra-e2e.XXXXXX)
chmod 755 "$work"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
fhir_port=$(free_port)

cleanup() {
  local rc=$?
  if [ -n "${fhir_pid:-}" ]; then kill "$fhir_pid" 2>/dev/null || true; fi
  bash "$root/deploy/pg-sandbox.sh" stop "$work/pg" || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

db_url=$(bash "$root/deploy/pg-sandbox.sh" start "$work/pg" "$pg_port")
fhir_url=$(bash "$root/deploy/fhir-sandbox.sh" "$fhir_port" 200 42 "$work/fhir.log")
fhir_pid=$(cat "$work/fhir.log.pid")

export FRA_TEST_BINARY="$binary" FRA_TEST_DB="$db_url" FRA_TEST_FHIR="$fhir_url" FRA_TEST_WORK="$work"
export FRA_TEST_MODEL="$root/models/readmission-risk"
for m in "${modules[@]}"; do
  /usr/bin/python3 "$root/tests/integration/$m.py"
done
