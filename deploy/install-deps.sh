#!/usr/bin/env bash
# Installs every Debian package fhir-risk-adapter needs to build, test and run its local
# sandbox. Idempotent: a second run installs nothing. Needs root (or sudo) and apt.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config git
  rapidjson-dev libpqxx-dev libpq-dev libfmt-dev doctest-dev
  libcurl4-openssl-dev libssl-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libcpp-httplib-dev
  libbenchmark-dev clang clang-format libclang-rt-14-dev
  postgresql-15 postgresql-client-15
  python3 python3-xgboost python3-numpy python3-jsonschema python3-prometheus-client libxgboost-dev
  util-linux procps time
)
# node and npm run the FHIR test server; keep a node that is already there (it may come
# from another repository than Debian's), otherwise take Debian's.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
