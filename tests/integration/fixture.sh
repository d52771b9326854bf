#!/usr/bin/env bash
# The servers the integration test modules share, started once for a run (CTest fixtures in
# tests/CMakeLists.txt; run.sh uses them too): a throwaway PostgreSQL 15 cluster
# (deploy/pg-sandbox.sh) and the FHIR test server with 200 generated patients, seed 42
# (deploy/fhir-sandbox.sh). `start` writes the server's URL to STATE/<server>.url, which
# run_module.sh passes to each module; `stop` stops it and removes what `start` made.
#
#   bash tests/integration/fixture.sh start|stop postgresql|fhir STATE
set -euo pipefail
usage="usage: fixture.sh start|stop postgresql|fhir STATE"
action=${1:?$usage}
server=${2:?$usage}
state=${3:?$usage}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$state"
state=$(cd "$state" && pwd)

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stop_postgresql() {
  if [ -f "$state/postgresql.dir" ]; then
    local dir
    dir=$(cat "$state/postgresql.dir")
    bash "$root/deploy/pg-sandbox.sh" stop "$dir/pg" || true
    rm -rf "$dir"
  fi
  rm -f "$state/postgresql.dir" "$state/postgresql.url"
}

stop_fhir() {
  if [ -f "$state/fhir.log.pid" ]; then kill "$(cat "$state/fhir.log.pid")" 2>/dev/null || true; fi
  rm -f "$state/fhir.log.pid" "$state/fhir.url"
}

case "$action:$server" in
  start:postgresql)
    stop_postgresql  # what an interrupted run left
    # The cluster lives under /tmp: its socket path must stay short, and PostgreSQL's own user
    # (pg-sandbox.sh runs it unprivileged) must be able to reach it.
    dir=$(mktemp -d /tmp/fra-pg.XXXXXX)
    chmod 755 "$dir"
    echo "$dir" >"$state/postgresql.dir"
    bash "$root/deploy/pg-sandbox.sh" start "$dir/pg" "$(free_port)" >"$state/postgresql.url"
    ;;
  start:fhir)
    stop_fhir
    bash "$root/deploy/fhir-sandbox.sh" "$(free_port)" 200 42 "$state/fhir.log" >"$state/fhir.url"
    ;;
  stop:postgresql) stop_postgresql ;;
  stop:fhir) stop_fhir ;;
  *) echo "$usage" >&2; exit 64 ;;
esac
