#!/usr/bin/env bash
# Rebuilds the shipped model (models/readmission-risk/) end to end, through the adapter's own
# feature code: starts a throwaway PostgreSQL and the FHIR test server with generated patients,
# loads them with the adapter (Bulk Data export, then backfill), writes the training export
# (features as of each inpatient discharge, readmission label) and trains on it. Everything it
# started is stopped at the end. The features are those of models/readmission-risk/features.toml.
#
#   bash models/build.sh path/to/fhir-risk-adapter [PATIENTS]      (default 20000, seed 42)
#
# The same binary and generator give the same model file: train.py does not depend on the
# pseudonyms, which change with the fresh key of each run.
set -euo pipefail
binary=$(realpath "${1:?usage: models/build.sh path/to/fhir-risk-adapter [PATIENTS]}")
patients=${2:-20000}
seed=42
root=$(cd "$(dirname "$0")/.." && pwd)
package="$root/models/readmission-risk"
python=/usr/bin/python3

work=$(mktemp -d /tmp/fra-train.XXXXXX)
chmod 755 "$work" # the sandbox PostgreSQL runs as an unprivileged user of its own
cleanup() {
  local rc=$?
  if [ -f "$work/fhir.log.pid" ]; then kill "$(cat "$work/fhir.log.pid")" 2>/dev/null || true; fi
  bash "$root/deploy/pg-sandbox.sh" stop "$work/pg" || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SECONDS=0
echo "== a throwaway PostgreSQL 15 and the FHIR test server with $patients generated patients (seed $seed)"
db_url=$(bash "$root/deploy/pg-sandbox.sh" start "$work/pg" "$(free_port)")
fhir_url=$(bash "$root/deploy/fhir-sandbox.sh" "$(free_port)" "$patients" "$seed" "$work/fhir.log")

(umask 077 && head -c 32 /dev/urandom >"$work/pseudonym.key")
chmod 600 "$work/pseudonym.key"
# export-training writes every defined feature; the configured model is only bound, and must
# name defined features. A package listing the features defined now (its model a constant)
# keeps the build from depending on the shipped model it is about to replace.
"$python" "$root/models/train.py" --feature-package "$work/feature-list" --features "$package/features.toml" >/dev/null
cat >"$work/adapter.toml" <<TOML
[fhir]
base_url = "$fhir_url"
page_size = 1000

[database]
url = "$db_url"

[pseudonym]
key_file = "$work/pseudonym.key"

[model]
path = "$work/feature-list"

[features]
file = "$package/features.toml"
TOML

echo "== fhir-risk-adapter migrate"
"$binary" migrate --config "$work/adapter.toml"
echo "== fhir-risk-adapter backfill --export (loads the store without scoring)"
"$binary" backfill --export --config "$work/adapter.toml"
echo "== fhir-risk-adapter export-training"
"$binary" export-training --config "$work/adapter.toml" --out "$work/training.csv"
echo "== models/train.py"
"$python" "$root/models/train.py" --csv "$work/training.csv" --features "$package/features.toml" --out "$package"
echo "== the reference distributions: the same patients scored by the new model, as production scores"
sed -i "s|^path = \"$work/feature-list\"|path = \"$package\"|" "$work/adapter.toml"
"$binary" sync --once --config "$work/adapter.toml" >/dev/null
psql "$db_url" -X -A -t -v ON_ERROR_STOP=1 -c \
  "SELECT json_build_object('features', features, 'probability', probability) FROM score ORDER BY patient_key" \
  >"$work/scores.jsonl"
"$python" "$root/models/train.py" --set-reference "$work/scores.jsonl" --features "$package/features.toml" --out "$package"
echo "== done in $SECONDS s; check the package with: $binary model inspect $package"
