#!/usr/bin/env bash
# Sets everything up and runs the main job on a local default: installs dependencies, builds,
# starts a throwaway PostgreSQL and the FHIR test server with generated patients, migrates,
# runs one sync, and prints what it wrote. Everything it started is stopped at the end.
#
#   bash deploy/demo.sh [PATIENTS]      (default 200)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
patients=${1:-200}

bash "$root/deploy/install-deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j"$(nproc)" --target fhir-risk-adapter
bin="$root/build/fhir-risk-adapter"

work=$(mktemp -d /tmp/fra-demo.XXXXXX)
chmod 755 "$work"
cleanup() {
  local rc=$?
  if [ -f "$work/fhir.log.pid" ]; then kill "$(cat "$work/fhir.log.pid")" 2>/dev/null || true; fi
  bash "$root/deploy/pg-sandbox.sh" stop "$work/pg" || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "== starting a throwaway PostgreSQL 15 and the FHIR test server with $patients generated patients"
db_url=$(bash "$root/deploy/pg-sandbox.sh" start "$work/pg" "$(free_port)")
fhir_url=$(bash "$root/deploy/fhir-sandbox.sh" "$(free_port)" "$patients" 42 "$work/fhir.log")
echo "   database    $db_url"
echo "   FHIR server $fhir_url"

head -c 32 /dev/urandom >"$work/pseudonym.key"
chmod 600 "$work/pseudonym.key"
cat >"$work/adapter.toml" <<TOML
[fhir]
base_url = "$fhir_url"

[database]
url = "$db_url"

[pseudonym]
key_file = "$work/pseudonym.key"

[model]
path = "$root/models/readmission-risk"

[features]
file = "$root/models/readmission-risk/features.toml"
TOML

echo "== fhir-risk-adapter migrate"
"$bin" migrate --config "$work/adapter.toml"
echo "== fhir-risk-adapter sync --once"
"$bin" sync --once --config "$work/adapter.toml"

echo "== scores in the feature store, by risk band"
psql "$db_url" -X -q -c "SELECT band, count(*) AS patients, round(min(probability)::numeric, 3) AS min,
  round(max(probability)::numeric, 3) AS max FROM score GROUP BY band ORDER BY min"

echo "== a few of the RiskAssessments on the FHIR server"
curl -sf "$fhir_url/RiskAssessment?_count=5" | /usr/bin/python3 -c '
import json, sys
for e in json.load(sys.stdin).get("entry", []):
    ra = e["resource"]
    p = ra["prediction"][0]
    rid, prob = ra["id"], p["probabilityDecimal"]
    band = p["qualitativeRisk"]["coding"][0]["code"]
    print(f"RiskAssessment/{rid}  probability {prob:.4f}  band {band}")
    print("    " + ra["note"][0]["text"])
'
echo "== a second sync finds nothing new and writes nothing"
"$bin" sync --once --config "$work/adapter.toml" | tail -1
echo "== the audit log: every page, score and write-back above, hash-chained"
psql "$db_url" -X -q -c "SELECT action, count(*) AS events FROM audit_log GROUP BY action ORDER BY min(id)"
FRA_DATABASE_URL="$db_url" "$bin" audit verify
