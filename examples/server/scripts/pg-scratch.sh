#!/usr/bin/env bash
# A scratch PostgreSQL cluster for the server's tests: `start` prints the URL to export as
# PAYSTATE_TEST_DATABASE, `stop` stops it and deletes it.
#   eval "$(examples/server/scripts/pg-scratch.sh start)"   # exports PAYSTATE_TEST_DATABASE
#   examples/server/scripts/pg-scratch.sh stop
# PG_SCRATCH_PORT and PG_SCRATCH_DIR choose the port and the directory; PG_SCRATCH_FSYNC=on
# makes commits durable (for measurements; the default, off, is for tests).
# PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user.
# Installs Debian's postgresql package when no initdb is found (needs apt-get, as root).
set -euo pipefail
PORT="${PG_SCRATCH_PORT:-55432}"
DIR="${PG_SCRATCH_DIR:-${TMPDIR:-/tmp}/paystate-pg-scratch}"
FSYNC="${PG_SCRATCH_FSYNC:-off}"
case "$FSYNC" in on|off) ;; *) echo "PG_SCRATCH_FSYNC must be on or off" >&2; exit 2 ;; esac

find_bin() {
  local b
  for b in "$(command -v "$1" 2>/dev/null || true)" /usr/lib/postgresql/*/bin/"$1"; do
    [ -n "$b" ] && [ -x "$b" ] && { echo "$b"; return 0; }
  done
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    if ! find_bin initdb >/dev/null; then
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2
    fi
    INITDB="$(find_bin initdb)"; PG_CTL="$(find_bin pg_ctl)"
    if [ -f "$DIR/data/postmaster.pid" ]; then as_owner "$PG_CTL" -D "$DIR/data" stop -m immediate >&2 || true; fi
    rm -rf "$DIR"; mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    as_owner "$INITDB" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
    as_owner "$PG_CTL" -D "$DIR/data" -l "$DIR/log" -w \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=$FSYNC" start >&2
    echo "export PAYSTATE_TEST_DATABASE=postgres://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    PG_CTL="$(find_bin pg_ctl)"
    [ -d "$DIR/data" ] && as_owner "$PG_CTL" -D "$DIR/data" stop -m fast >&2 || true
    rm -rf "$DIR"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
