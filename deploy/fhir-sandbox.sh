#!/usr/bin/env bash
# Starts the FHIR test server (Medplum's FHIR router, in memory) in the background with
# generated patients, waits until it is ready and prints its base URL. Its pid goes to LOG.pid.
#
#   deploy/fhir-sandbox.sh PORT PATIENTS SEED LOG [SERVER OPTION...]   (e.g. --tls-cert F --tls-key K)
set -euo pipefail
port=${1:?usage: fhir-sandbox.sh PORT PATIENTS SEED LOG}
patients=${2:-200}
seed=${3:-42}
log=${4:?usage: fhir-sandbox.sh PORT PATIENTS SEED LOG}
shift 4
dir=$(cd "$(dirname "$0")/../tests/fhir-server" && pwd)

# npm ci only when node_modules is missing or older than the lock file.
if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
node "$dir/server.js" --port "$port" --patients "$patients" --seed "$seed" "$@" >"$log" 2>&1 &
echo $! >"$log.pid"
# Loading takes about 2.5 s a thousand patients: wait up to 3 minutes.
for _ in $(seq 1 1800); do
  if grep -q "listening on" "$log"; then
    grep -o 'https\?://[^ ]*' "$log" | head -1
    exit 0
  fi
  kill -0 "$(cat "$log.pid")" 2>/dev/null || break
  sleep 0.1
done
echo "fhir-sandbox: the FHIR test server did not start:" >&2
cat "$log" >&2
exit 70
