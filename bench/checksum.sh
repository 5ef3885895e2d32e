#!/usr/bin/env bash
# Benchmark of table checksums (issue: reproducible runs).
#
# Data (deterministic): bench.t (id bigint PRIMARY KEY, amount numeric(12,2),
# label text, at timestamptz, doc jsonb), ROWS rows (default 10,000,000),
# about 10% NULLs in each of amount, label, at and doc.
#
# Contenders, each run REPEATS times round-robin after a warm-up read of the
# table, median of psql's \timing reported:
#   elt       SELECT elt.table_checksum('bench.t')
#   md5_agg   SELECT md5(string_agg(t::text, '' ORDER BY id)) FROM bench.t t
#             (the hand-written whole-table hash; it builds one text of the
#             whole table, which must stay under 1 GB)
#   datadiff  SELECT sum(('x' || substring(md5(t::text), 21))::bit(48)::bigint)
#             FROM bench.t t   (data-diff's per-row checksum, summed)
#   scan      SELECT count(*) FROM bench.t t WHERE t IS NOT NULL
#             (reads and deforms every column of every row: the limit)
# A contender that fails (for example md5_agg past 1 GB of text) is
# reported with its error.  The same contenders also run on the first
# SMALL_ROWS rows (a copy, bench.s), where md5_agg fits.
#
# Goals: elt at least 10x faster than md5_agg, 3x faster than datadiff,
# within 2x of scan.
#
# Snapshots (SECTIONS contains "snapshot"): on the big table, REPEATS times,
#   ctas      CREATE TABLE bench.copy AS SELECT * FROM bench.t (then dropped)
#   snapshot  SELECT elt.snapshot_create('bench.t') on a changed table (one
#             row updated before each run, so that nothing can be reused)
#   reuse     SELECT elt.snapshot_create('bench.t') again, unchanged (reused:
#             a checksum, no copy)
#
# SECTIONS (default "checksum snapshot") chooses what runs.
#
# Uses the INSTALLED build of elt_governance on a throwaway cluster with
# the library preloaded, shared_buffers 4GB, work_mem 64MB, jit off (so
# that the hand-written queries are not charged for JIT compilation),
# max_parallel_workers_per_gather 0 (one process each, as the C function).
#
# Usage: bash bench/checksum.sh [repeats, default 3] [rows, default 10000000]
. "$(dirname "$0")/lib.sh"

REPEATS="${1:-3}"
ROWS="${2:-10000000}"
SMALL_ROWS="${SMALL_ROWS:-1000000}"
SECTIONS="${SECTIONS:-checksum snapshot}"
PORT="${BENCH_PORT:-5512}"

bench_require_installed 0.5.0 0.4.0--0.5.0
bench_start_cluster "$PORT"
bench_configure <<CONF
shared_buffers = 4GB
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
jit = off
max_parallel_workers_per_gather = 0
lc_messages = 'C'
timezone = 'UTC'
CONF

as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d postgres -X -q -c "CREATE DATABASE bench" >/dev/null
psql_q -c "CREATE EXTENSION elt_governance"

echo "# command: bash bench/checksum.sh $*  (repeats=$REPEATS, rows=$ROWS, small rows=$SMALL_ROWS)"
echo "# PostgreSQL $(psql_q -c 'SHOW server_version'), elt_governance $(psql_q -c "SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'") $(bench_build)"
bench_tree
bench_machine
echo "# settings: shared_buffers $(psql_q -c 'SHOW shared_buffers'), work_mem $(psql_q -c 'SHOW work_mem'), jit $(psql_q -c 'SHOW jit'), max_parallel_workers_per_gather $(psql_q -c 'SHOW max_parallel_workers_per_gather')"
bench_load_start

log "loading $ROWS rows"
psql_q <<SQL
CREATE SCHEMA bench;
CREATE TABLE bench.t (id bigint PRIMARY KEY, amount numeric(12,2), label text, at timestamptz, doc jsonb);
INSERT INTO bench.t
SELECT g,
       CASE WHEN g % 10 = 1 THEN NULL ELSE (hashint8(g) % 1000000) / 100.0 END,
       CASE WHEN g % 10 = 2 THEN NULL ELSE 'customer ' || (hashint8(g) % 100000) || ' / order ' || g END,
       CASE WHEN g % 10 = 3 THEN NULL ELSE timestamptz '2026-01-01 00:00:00+00' + (g % 7776000) * interval '1 second' END,
       CASE WHEN g % 10 = 4 THEN NULL ELSE jsonb_build_object('region', (ARRAY['north', 'south', 'east', 'west'])[1 + g % 4], 'items', g % 17, 'paid', g % 3 = 0) END
FROM generate_series(1, $ROWS) g;
CREATE TABLE bench.s AS SELECT * FROM bench.t WHERE id <= $SMALL_ROWS;
ALTER TABLE bench.s ADD PRIMARY KEY (id);
VACUUM ANALYZE bench.t;
VACUUM ANALYZE bench.s;
SQL
echo "# data: bench.t $(psql_q -c "SELECT pg_size_pretty(pg_table_size('bench.t'))") ($ROWS rows), bench.s $(psql_q -c "SELECT pg_size_pretty(pg_table_size('bench.s'))") ($SMALL_ROWS rows)"

declare -A SQLS=(
  [elt]="SELECT elt.table_checksum('%T')"
  [md5_agg]="SELECT md5(string_agg(t::text, '' ORDER BY id)) FROM %T t"
  [datadiff]="SELECT sum(('x' || substring(md5(t::text), 21))::bit(48)::bigint) FROM %T t"
  [scan]="SELECT count(*) FROM %T t WHERE t IS NOT NULL"
)
ORDER=(elt md5_agg datadiff scan)


run_table() {
  local table=$1 rows=$2
  declare -A TIMES ERR
  local c r sql out
  psql_q -c "SELECT count(*) FROM $table" >/dev/null   # warm the cache
  for r in $(seq 1 "$REPEATS"); do
    for c in "${ORDER[@]}"; do
      [ -n "${ERR[$c]:-}" ] && continue
      sql=${SQLS[$c]//%T/$table}
      if out=$(psql_q -c '\timing on' -c "$sql" 2>&1); then
        t=$(grep -o 'Time: [0-9.]* ms' <<<"$out" | tail -n 1 | awk '{print $2}')
        TIMES[$c]="${TIMES[$c]:-} $t"
        log "$table run $r $c: $t ms"
      else
        ERR[$c]=$(grep -m1 ERROR <<<"$out" || echo "$out" | head -n 1)
        log "$table run $r $c: failed: ${ERR[$c]}"
      fi
    done
  done
  local elt_ms
  elt_ms=$(echo "${TIMES[elt]:-}" | median)
  echo
  echo "### $table: $rows rows, median of $REPEATS"
  echo
  echo "| contender | runs, ms | median ms | elt.table_checksum is faster by |"
  echo "|---|---|---|---|"
  for c in "${ORDER[@]}"; do
    local m
    if [ -n "${ERR[$c]:-}" ]; then
      echo "| $c: \`${SQLS[$c]//%T/$table}\` | failed: ${ERR[$c]} | – | – |"
      continue
    fi
    m=$(echo "${TIMES[$c]}" | median)
    echo "| $c: \`${SQLS[$c]//%T/$table}\` | $(echo ${TIMES[$c]} | sed 's/ / \/ /g') | $m | $(awk -v a="$m" -v b="$elt_ms" 'BEGIN {printf "%.2fx", a / b}') |"
  done
}

if [[ " $SECTIONS " == *" checksum "* ]]; then
  run_table bench.s "$SMALL_ROWS"
  run_table bench.t "$ROWS"
fi

if [[ " $SECTIONS " == *" snapshot "* ]]; then
  declare -a T_CTAS T_SNAP T_REUSE
  psql_q -c "SELECT count(*) FROM bench.t" >/dev/null
  for r in $(seq 1 "$REPEATS"); do
    T_CTAS+=("$(timed_ms -c "CREATE TABLE bench.copy AS SELECT * FROM bench.t")")
    psql_q -c "DROP TABLE bench.copy" -c "CHECKPOINT"
    psql_q -c "UPDATE bench.t SET label = label || '.' WHERE id = $r" -c "CHECKPOINT"
    T_SNAP+=("$(timed_ms -c "SELECT elt.snapshot_create('bench.t')")")
    T_REUSE+=("$(timed_ms -c "SELECT elt.snapshot_create('bench.t')")")
    log "snapshot run $r: ctas ${T_CTAS[-1]} ms, snapshot ${T_SNAP[-1]} ms, reuse ${T_REUSE[-1]} ms"
    psql_q -c "SELECT elt.snapshot_purge(interval '0 seconds')" -c "CHECKPOINT" >/dev/null
  done
  ctas=$(echo "${T_CTAS[*]}" | median); snap=$(echo "${T_SNAP[*]}" | median); reuse=$(echo "${T_REUSE[*]}" | median)
  echo
  echo "### Snapshots of bench.t ($ROWS rows), median of $REPEATS"
  echo
  echo "| contender | runs, ms | median ms | × CREATE TABLE AS |"
  echo "|---|---|---|---|"
  echo "| \`CREATE TABLE bench.copy AS SELECT * FROM bench.t\` (peer) | ${T_CTAS[*]} | $ctas | 1.00 |"
  echo "| \`elt.snapshot_create('bench.t')\`, new content (checksum, copy, checksum of the copy) | ${T_SNAP[*]} | $snap | $(awk -v a="$snap" -v b="$ctas" 'BEGIN {printf "%.2f", a / b}') |"
  echo "| \`elt.snapshot_create('bench.t')\`, same content (reused: a checksum, no copy) | ${T_REUSE[*]} | $reuse | $(awk -v a="$reuse" -v b="$ctas" 'BEGIN {printf "%.2f", a / b}') |"
fi

echo
bench_load_end
bench_check_library
