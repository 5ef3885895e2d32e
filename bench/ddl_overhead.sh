#!/usr/bin/env bash
# Benchmark of the schema-version engine (issue: foundation).
#
#   1. DDL overhead: 1000 ADD COLUMN / DROP COLUMN pairs, each statement in
#      its own transaction (pgbench), on a governed table and, as the peer,
#      on the same table ungoverned; also on an ungoverned table in a
#      database where something else is governed (the fast path every DDL
#      pays).
#   2. Governing a schema of 1000 tables (primary key, 5 columns, an index).
#
# Runs a throwaway cluster with the library preloaded, like make demo.
# Usage: bash bench/ddl_overhead.sh [pairs] [tables] [repeats]
. "$(dirname "$0")/lib.sh"

PAIRS="${1:-1000}"
TABLES="${2:-1000}"
REPEATS="${3:-3}"

bash scripts/setup.sh >/dev/null
build_and_install

PORT="${BENCH_PORT:-54339}"
bench_start_cluster "$PORT"

as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d postgres -X -q -c "CREATE DATABASE bench"

psql_q <<'SQL'
CREATE EXTENSION elt_governance;
CREATE SCHEMA gov;
CREATE SCHEMA plain;
CREATE TABLE gov.t (id bigint PRIMARY KEY, a text, b numeric, c date);
CREATE TABLE plain.t (id bigint PRIMARY KEY, a text, b numeric, c date);
SQL

# average latency (ms) of one ADD COLUMN + DROP COLUMN pair on a table
pair_latency() {
  local table=$1
  as_postgres sh -c "printf 'ALTER TABLE %s ADD COLUMN x int;\nALTER TABLE %s DROP COLUMN x;\n' $table $table > '$WORK/pair.sql'"
  if ! as_postgres "$PG_BIN/pgbench" -h "$WORK" -p "$PORT" -n -t "$PAIRS" \
       -f "$WORK/pair.sql" bench >"$WORK/pgbench.out" 2>&1; then
    cat "$WORK/pgbench.out" >&2
    exit 1
  fi
  awk '/latency average/ {print $4}' "$WORK/pgbench.out"
}

# Each measurement uses a fresh table: every ADD/DROP pair leaves a dropped
# column behind, which slows DDL on that table down (and 1600 is the limit),
# so only tables with the same history are compared.
fresh_tables() {
  psql_q <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS gov.t, plain.t, plain.u;
CREATE TABLE gov.t (id bigint PRIMARY KEY, a text, b numeric, c date);
CREATE TABLE plain.t (id bigint PRIMARY KEY, a text, b numeric, c date);
CREATE TABLE plain.u (id bigint PRIMARY KEY, a text, b numeric, c date);
SQL
}

echo "pairs=$PAIRS tables=$TABLES repeats=$REPEATS"
echo "run,ungoverned_db_ms,governed_ms,fast_path_ms"
for r in $(seq 1 "$REPEATS"); do
  # peer: nothing governed at all in the database
  psql_q -c "SELECT elt.ungovern('gov')" >/dev/null 2>&1 || true
  fresh_tables
  base=$(pair_latency plain.t)
  # governed table
  # policy off: DROP COLUMN is a breaking change; off records it and lets it run
  psql_q -c "SELECT elt.govern('gov', 'off')" >/dev/null
  gov=$(pair_latency gov.t)
  # ungoverned table while another schema is governed
  fast=$(pair_latency plain.u)
  echo "$r,$base,$gov,$fast"
done

versions=$(psql_q -c "SELECT count(*) FROM elt.schema_versions")
valid=$(psql_q -c "SELECT valid FROM elt.audit_verify()")
echo "versions recorded: $versions, audit chain valid: $valid"

echo "run,govern_${TABLES}_tables_ms"
for r in $(seq 1 "$REPEATS"); do
  psql_q -c "CREATE SCHEMA many$r"
  psql_q -c "DO \$\$ DECLARE i int; BEGIN FOR i IN 1..$TABLES LOOP EXECUTE format('CREATE TABLE many$r.t%s (id bigint PRIMARY KEY, a text, b numeric, c date, d timestamptz DEFAULT now())', i); EXECUTE format('CREATE INDEX ON many$r.t%s (c)', i); END LOOP; END \$\$"
  ms=$(psql_q -c '\timing on' -c "SELECT elt.govern('many$r')" | awk '/^Time:/ {print $2}')
  echo "$r,$ms"
done
echo "audit chain valid: $(psql_q -c "SELECT valid FROM elt.audit_verify()")"
