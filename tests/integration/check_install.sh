#!/usr/bin/env bash
# `cmake --install` into a temporary prefix gives a working layout: the binary, the migrations,
# the default model package (its manifest verified against its model) and an example
# configuration that `config check` accepts once pointed at that prefix.
#
#   bash tests/integration/check_install.sh BUILD_DIR
set -euo pipefail
build=$(realpath "${1:?usage: check_install.sh BUILD_DIR}")
prefix=$(mktemp -d /tmp/fra-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
share="$prefix/share/fhir-risk-adapter"
for f in bin/fhir-risk-adapter share/fhir-risk-adapter/sql/001_feature_store.sql \
         share/fhir-risk-adapter/models/readmission-risk/manifest.json \
         share/fhir-risk-adapter/models/readmission-risk/features.toml share/fhir-risk-adapter/adapter.example.toml \
         share/fhir-risk-adapter/models/lace/manifest.json share/fhir-risk-adapter/models/value-sets/charlson.toml; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
"$prefix/bin/fhir-risk-adapter" model inspect "$share/models/readmission-risk" | grep -q "(verified)"
FRA_MODEL_PATH="$share/models/readmission-risk" FRA_FEATURES_FILE="$share/models/readmission-risk/features.toml" \
  "$prefix/bin/fhir-risk-adapter" config check "$share/adapter.example.toml"
"$prefix/bin/fhir-risk-adapter" model inspect "$share/models/lace" | grep -q "bands (points)"
FRA_MODEL_PATH="$share/models/lace" FRA_FEATURES_FILE="$share/models/lace/features.toml" \
  "$prefix/bin/fhir-risk-adapter" config check "$share/adapter.example.toml"
echo "install layout ok"
