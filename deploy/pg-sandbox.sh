#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster: initdb in a folder of its own, its own port, run as an
# unprivileged user (PostgreSQL refuses to run as root).
#
#   deploy/pg-sandbox.sh start DIR [PORT]   prints the database URL on stdout
#   deploy/pg-sandbox.sh stop DIR           stops the cluster and removes DIR
set -euo pipefail

cmd=${1:?usage: pg-sandbox.sh start|stop DIR [PORT]}
dir=${2:?usage: pg-sandbox.sh start|stop DIR [PORT]}
port=${3:-55432}
pg_bin=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)
[ -n "$pg_bin" ] || { echo "pg-sandbox: PostgreSQL 15 is not installed (run deploy/install-deps.sh)" >&2; exit 69; }
run_user=fra-pg

as_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$run_user" -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    if [ "$(id -u)" -eq 0 ] && ! id "$run_user" >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin "$run_user"
    fi
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$run_user" "$dir"
    chmod 700 "$dir"
    as_user "$pg_bin/initdb" -D "$dir/data" -U fra --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 70; }
    as_user "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >/dev/null ||
      { cat "$dir/postgres.log" >&2; exit 70; }
    as_user "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U fra fra
    echo "postgresql://fra@127.0.0.1:$port/fra"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_user "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg-sandbox.sh start|stop DIR [PORT]" >&2
    exit 64
    ;;
esac
