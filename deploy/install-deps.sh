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
  python3-yaml
  # scikit-learn: the second computation of the monitoring statistics (AUC, calibration)
  python3-sklearn
  # headless Chromium: the test that the monitoring report's charts are drawn
  chromium
  # promtool, for the dashboards test (`promtool check rules` on deploy/prometheus/); the
  # package also brings a Prometheus server, which is stopped and disabled below
  prometheus
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
# Only promtool is wanted from `prometheus`: a server it started (systemd, or its init script
# where no policy-rc.d forbids it) would hold port 9090 and keep running, so stop it and keep it
# from starting at boot. Only when this run installed it: a Prometheus set up before is left alone.
if printf '%s\n' "${missing[@]}" | grep -qx prometheus; then
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  else
    $sudo invoke-rc.d prometheus stop >/dev/null 2>&1 || true
    $sudo update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi
echo "install-deps: done"
