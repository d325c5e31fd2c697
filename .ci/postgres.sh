#!/usr/bin/env bash
# Install (Debian package) and start a private PostgreSQL server for the ledger tests.
# Source it: sets ERASEKIT_TEST_POSTGRES_URL and stops the server when the calling shell exits.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG_DATA=$(mktemp -d /tmp/erasekit-pg.XXXXXX)
PG_PORT=${ERASEKIT_PG_PORT:-55432}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$PG_DATA"
as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U erasekit >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1" -l "$PG_DATA/server.log" -w start >/dev/null
trap 'as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true; rm -rf "$PG_DATA"' EXIT
export ERASEKIT_TEST_POSTGRES_URL="postgresql://erasekit@127.0.0.1:$PG_PORT/postgres"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT for the ledger tests"
