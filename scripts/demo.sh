#!/usr/bin/env bash
# make demo: install what is missing, build and install the extension, start
# a throwaway cluster with the library preloaded, run scripts/demo.sql, and
# remove the cluster again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

bash scripts/setup.sh
build_and_install

PORT="${DEMO_PORT:-54329}"
start_throwaway_cluster "$PORT"
as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d postgres -X -q \
  -v ON_ERROR_STOP=1 -c "CREATE DATABASE demo"
as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d demo -X \
  -v ON_ERROR_STOP=1 -P pager=off -e -f "$WORK/scripts/demo.sql"
echo
echo "demo finished: the throwaway cluster is removed."
