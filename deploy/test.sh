#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: installs the Debian packages and the FHIR
# test server's npm packages, builds (warnings are errors when CI=true), and runs ctest:
# unit tests, the evaluator against XGBoost, and the end-to-end tests against a throwaway
# PostgreSQL and the FHIR test server.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

bash "$root/deploy/install-deps.sh"
(cd "$root/tests/fhir-server" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$root/tests/cds-client" && npm ci --no-audit --no-fund --loglevel=error)

werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRA_WERROR=$werror >/dev/null
cmake --build "$root/build" -j"$(nproc)"
cd "$root/build"
ctest --output-on-failure
