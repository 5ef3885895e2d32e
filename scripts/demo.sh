#!/usr/bin/env bash
# make demo: install what is missing, build and install the extension, start
# a throwaway cluster with the library preloaded, run scripts/demo.sql, and
# remove the cluster again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

bash scripts/setup.sh
build_and_install

WORK=$(scratch_copy)
PORT="${DEMO_PORT:-54329}"
cleanup() {
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
  as_root rm -rf "$WORK"
}
trap cleanup EXIT

as_postgres "$PG_BIN/initdb" -D "$WORK/data" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_postgres sh -c "cat >> '$WORK/data/postgresql.conf'" <<CONF
shared_preload_libraries = 'elt_governance'
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
CONF
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d postgres -X -q \
  -v ON_ERROR_STOP=1 -c "CREATE DATABASE demo"
as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d demo -X \
  -v ON_ERROR_STOP=1 -P pager=off -e -f "$WORK/scripts/demo.sql"
echo
echo "demo finished: the throwaway cluster is removed."
