#!/usr/bin/env bash
# Benchmark of what keeping a run revertible costs (issue 23, undoing a run).
#
# Data: raw.src (id int PRIMARY KEY, grp int, v numeric, note text), ROWS
# rows (default 1,000,000); target mart.copy of the same shape.  Every
# measured statement rewrites all ROWS rows of mart.copy:
#
#   merge     the peer: INSERT INTO mart.copy SELECT ... FROM raw.src
#             ON CONFLICT (id) DO UPDATE SET ... (every row exists: all
#             updated); against elt.transform_run('copy_merge', ..., 'table')
#             with undo off (elt.undo_retention = 0) and on (the default:
#             every updated row's before-image kept; elt.undo_max_rows raised
#             to ROWS).
#   replace   the peer: DELETE FROM mart.copy; INSERT ... SELECT in one
#             transaction; against the replace transform, undo off and on.
#   revert    elt.run_revert() of the last merge run and of the last replace
#             run (delete the rows the run wrote, put ROWS rows back).
#
# Table lineage everywhere, so that the figures are of undo alone (row
# lineage has its own benchmark, bench/lineage.sh).  Each measurement is
# taken REPEATS times, round-robin, after a CHECKPOINT; the median is
# reported.  Uses the INSTALLED build on a throwaway cluster
# (shared_buffers 2GB, work_mem 64MB, max_wal_size 8GB).
#
# Usage: bash bench/undo.sh [repeats, default 3] [rows, default 1000000]
. "$(dirname "$0")/lib.sh"

REPEATS="${1:-3}"
ROWS="${2:-1000000}"
PORT="${BENCH_PORT:-5514}"

bench_require_installed 0.9.0 0.8.0--0.9.0
bench_start_cluster "$PORT"
bench_configure <<CONF
shared_buffers = 2GB
max_wal_size = 8GB
work_mem = 64MB
checkpoint_timeout = 30min
lc_messages = 'C'
timezone = 'UTC'
CONF
as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d postgres -X -q -v ON_ERROR_STOP=1 \
  -c "CREATE DATABASE bench" -c "ALTER DATABASE bench SET elt.manifest_policy = none" >/dev/null

echo "# command: bash bench/undo.sh $*  (repeats=$REPEATS, rows=$ROWS)"
echo "# PostgreSQL $(psql_q -c 'SHOW server_version'), elt_governance $(psql_q -c "CREATE EXTENSION elt_governance" -c "SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'") $(bench_build)"
bench_tree
bench_machine
bench_load_start

psql_q >/dev/null <<SQL
CREATE SCHEMA raw;
CREATE SCHEMA mart;
CREATE TABLE raw.src (id int PRIMARY KEY, grp int, v numeric, note text);
INSERT INTO raw.src SELECT g, g % 100, g * 1.25, 'note ' || md5(g::text) FROM generate_series(1, $ROWS) g;
CREATE TABLE mart.copy (id int PRIMARY KEY, grp int, v numeric, note text);
INSERT INTO mart.copy SELECT * FROM raw.src;
VACUUM ANALYZE raw.src, mart.copy;
SELECT elt.transform_create('copy_merge', 'mart.copy',
  'SELECT id, grp, v + elt.param(''d'')::numeric AS v, note FROM raw.src', 'merge', '{"lineage": "table"}');
SELECT elt.transform_create('copy_replace', 'mart.copy',
  'SELECT id, grp, v + elt.param(''d'')::numeric AS v, note FROM raw.src', 'replace', '{"lineage": "table"}');
SQL

n=0
run() {   # label, SQL (a statement or a transaction), settings
  local label=$1 sql=$2 settings=$3
  n=$((n + 1))
  psql_q -c "CHECKPOINT" >/dev/null
  ms=$(psql_q -c "SET elt.undo_max_rows = $ROWS" -c "$settings" -c '\timing on' -c "$sql" \
       | grep -o 'Time: [0-9.]* ms' | awk '{s += $2} END {print s}')
  eval "T_$label=\"\${T_$label:-} $ms\""
}
for r in $(seq 1 "$REPEATS"); do
  log "round $r of $REPEATS"
  run merge_peer "INSERT INTO mart.copy SELECT id, grp, v + $r, note FROM raw.src ON CONFLICT (id) DO UPDATE SET grp = EXCLUDED.grp, v = EXCLUDED.v, note = EXCLUDED.note" "SELECT 1"
  run merge_off "SELECT elt.transform_run('copy_merge', jsonb_build_object('d', $r), 'table')" "SET elt.undo_retention = 0"
  run merge_on "SELECT elt.transform_run('copy_merge', jsonb_build_object('d', $r), 'table')" "SELECT 1"
  run revert_merge "SELECT count(*) FROM elt.run_revert((SELECT max(run_id) FROM elt.transform_runs), 'bench')" "SELECT 1"
  run replace_peer "BEGIN; DELETE FROM mart.copy; INSERT INTO mart.copy SELECT id, grp, v + $r, note FROM raw.src; COMMIT" "SELECT 1"
  run replace_off "SELECT elt.transform_run('copy_replace', jsonb_build_object('d', $r), 'table')" "SET elt.undo_retention = 0"
  run replace_on "SELECT elt.transform_run('copy_replace', jsonb_build_object('d', $r), 'table')" "SELECT 1"
  run revert_replace "SELECT count(*) FROM elt.run_revert((SELECT max(run_id) FROM elt.transform_runs), 'bench')" "SELECT 1"
done
images=$(psql_q -c "SELECT pg_size_pretty(pg_total_relation_size('elt.run_undo_images'))")

m() { eval "echo \$T_$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "| $ROWS rows rewritten | median ms | × peer |"
echo "|---|---|---|"
echo "| merge: INSERT … ON CONFLICT DO UPDATE (peer) | $(m merge_peer) | 1.00 |"
echo "| merge transform, undo off | $(m merge_off) | $(ratio "$(m merge_off)" "$(m merge_peer)") |"
echo "| merge transform, undo on (before-images kept) | $(m merge_on) | $(ratio "$(m merge_on)" "$(m merge_peer)") |"
echo "| elt.run_revert() of that merge run | $(m revert_merge) | $(ratio "$(m revert_merge)" "$(m merge_peer)") |"
echo "| replace: DELETE + INSERT … SELECT (peer) | $(m replace_peer) | 1.00 |"
echo "| replace transform, undo off | $(m replace_off) | $(ratio "$(m replace_off)" "$(m replace_peer)") |"
echo "| replace transform, undo on | $(m replace_on) | $(ratio "$(m replace_on)" "$(m replace_peer)") |"
echo "| elt.run_revert() of that replace run | $(m revert_replace) | $(ratio "$(m revert_replace)" "$(m replace_peer)") |"
echo
echo "# elt.run_undo_images after the rounds (reverted runs' images deleted, not yet vacuumed): $images"
bench_load_end
