#!/usr/bin/env bash
# Benchmark of the engines on a Citus cluster (issue 25): a checksum, a
# backfill and a transform with row lineage over a distributed table,
# against the same work on one node and against what Citus does alone.
#
# Clusters (all on this machine, started here and removed at the end):
#   a Citus cluster, a coordinator and two workers
#     (shared_preload_libraries = 'citus,elt_governance'), ports PORT,
#     PORT+1, PORT+2;
#   one plain node (shared_preload_libraries = 'elt_governance'), PORT+3.
# Each: shared_buffers 1GB, work_mem 64MB, max_wal_size 8GB,
# checkpoint_timeout 30min, elt.manifest_policy = none and
# elt.undo_retention = 0 (manifests and before-images are measured by
# bench/lineage.sh and bench/undo.sh; a run into a Citus table keeps no
# undo anyway).
#
# Data (deterministic), the same on both sides:
#   bench.orders (id bigint PRIMARY KEY, customer_id bigint, amount
#                 numeric(12,2), note text, total numeric, applied int)
#   ROWS rows; on Citus hash-distributed on id (SHARDS shards, default 32,
#   Citus's default: 16 on each worker).
#   bench.facts, bench.facts_peer (id bigint PRIMARY KEY, customer_id
#   bigint, amount numeric(12,2), doubled numeric): on Citus distributed on
#   id and colocated with bench.orders.
#
# Contenders, each REPEATS times, median, a CHECKPOINT on every node first;
# the time is of the whole psql call (client included):
#   checksum     SELECT elt.table_checksum('bench.orders'): on Citus each
#                shard on its node (run_command_on_shards, in parallel),
#                the sums added; on one node one scan.  Correct when both
#                sides give the same checksum.
#   transform    elt.transform_run('facts') (append, row lineage) of
#                  SELECT id, customer_id, amount, amount * 2 AS doubled
#                  FROM bench.orders
#                into bench.facts; on Citus and on one node.  On Citus
#                twice: with elt.citus_pushdown off (the SELECT pulled
#                to the coordinator, capture there, rows sent back: the
#                path before pushdown) and by default (the row work on
#                the shards through a colocated staging table, only the
#                keys back to the coordinator's capture).  The peer on
#                Citus is the same INSERT INTO bench.facts_peer SELECT ...
#                run by Citus without lineage (colocated: pushed down to
#                the shards, in parallel); on one node the plain INSERT too.
#                Correct when every target has the same checksum, the run
#                wrote ROWS rows, and elt.trace finds each sampled row's
#                source.  Targets and lineage are truncated before each run.
#   backfill     elt.backfill_create on bench.orders keyed on id,
#                  UPDATE bench.orders SET total = amount * 2,
#                         applied = applied + 1 WHERE id >= $1 AND id < $2
#                with the default options (chunk_rows 10000,
#                target_chunk_ms 200), then CALL elt.backfill_run(name) in
#                the session; on Citus and on one node.  The peer is one
#                plain UPDATE of the whole table (on Citus, one
#                multi-shard UPDATE run on the shards in parallel).
#                Correct when every row was updated exactly once per run
#                (applied equals the number of updates so far) and both
#                sides' checksums agree afterwards.
#
# On one machine this shows the overhead and the correctness of running on
# Citus, not a speed-up: the three Citus nodes share the same cores and
# disk as the one node.
#
# Uses the INSTALLED build (make install PG_CONFIG=...) and Citus installed
# into the same PostgreSQL (scripts/citus_build.sh).  BENCH_TMP is where the
# clusters go (default /tmp).
#
# Usage: bash bench/citus.sh [repeats, default 1] [rows, default 10000000]
# PARTS=transform (or checksum, backfill; default all three, the checksum
# always) measures only those parts.
. "$(dirname "$0")/lib.sh"

REPEATS="${1:-1}"
ROWS="${2:-10000000}"
SHARDS="${SHARDS:-32}"
PARTS="${PARTS:-checksum transform backfill}"
part() { [[ " $PARTS " == *" $1 "* ]]; }
PORT="${BENCH_PORT:-5561}"
P_COORD=$PORT
P_W1=$((PORT + 1))
P_W2=$((PORT + 2))
P_ONE=$((PORT + 3))

bench_require_installed 0.9.0 0.8.0--0.9.0
if ! [ -f "$("$PG_CONFIG" --sharedir)/extension/citus.control" ]; then
  echo "citus.sh: Citus is not installed for $PG_CONFIG (bash scripts/citus_build.sh PG_CONFIG=$PG_CONFIG)" >&2
  exit 1
fi

WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/elt_citus_bench.XXXXXX")
as_root chown postgres: "$WORK"
NODES="coord w1 w2 one"
port_of() { case "$1" in coord) echo $P_COORD ;; w1) echo $P_W1 ;; w2) echo $P_W2 ;; one) echo $P_ONE ;; esac; }

# stop every node (immediate) and remove the clusters; on failure, show the
# end of each server log first
citus_on_exit() {
  local rc=$? n
  for n in $NODES; do
    if [ "$rc" -ne 0 ] && as_postgres test -f "$WORK/$n.log"; then
      echo "--- last 20 lines of the log of $n ---" >&2
      as_postgres tail -n 20 "$WORK/$n.log" >&2 || true
    fi
    as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$n" -m immediate stop >/dev/null 2>&1 || true
  done
  as_root rm -rf "$WORK"
}
trap citus_on_exit EXIT

# start_node NAME PRELOAD
start_node() {
  local n=$1 preload=$2
  as_postgres "$PG_BIN/initdb" -D "$WORK/$n" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_postgres sh -c "cat >> '$WORK/$n/postgresql.conf'" <<CONF
shared_preload_libraries = '$preload'
port = $(port_of "$n")
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
max_prepared_transactions = 20
max_worker_processes = 20
max_connections = 200
shared_buffers = 1GB
work_mem = 64MB
max_wal_size = 8GB
checkpoint_timeout = 30min
lc_messages = 'C'
timezone = 'UTC'
elt.manifest_policy = none
elt.undo_retention = 0
CONF
  if [ "$preload" != elt_governance ]; then
    as_postgres sh -c "cat >> '$WORK/$n/postgresql.conf'" <<CONF
citus.local_hostname = '127.0.0.1'
citus.enable_statistics_collection = off
CONF
  fi
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$n" -l "$WORK/$n.log" -w start >/dev/null
}

# psql on a node: unaligned, quiet, stop on the first error
pq() { local n=$1; shift; as_postgres "$PG_BIN/psql" -h "$WORK" -p "$(port_of "$n")" -d postgres -X -q -At -v ON_ERROR_STOP=1 "$@"; }
cq() { pq coord "$@"; }
oq() { pq one "$@"; }
# the whole of one psql call, in ms
run_ms() {
  local n=$1 t0 t1
  shift
  t0=$(now_ns)
  pq "$n" "$@" >/dev/null || { log "failed on $n: $*"; return 1; }
  t1=$(now_ns)
  awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.1f", (a - b) / 1e6}'
}
checkpoint_all() { local n; for n in $NODES; do pq "$n" -c CHECKPOINT; done; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
fail() { log "INCORRECT: $*"; echo "# INCORRECT: $*"; exit 1; }

log "starting a coordinator and two workers (ports $P_COORD-$P_W2) and one node ($P_ONE)"
for n in coord w1 w2; do
  start_node "$n" citus,elt_governance
  pq "$n" -c "CREATE EXTENSION citus"
done
start_node one elt_governance
cq -c "SELECT citus_set_coordinator_host('127.0.0.1', $P_COORD)" \
   -c "SELECT citus_add_node('127.0.0.1', $P_W1)" \
   -c "SELECT citus_add_node('127.0.0.1', $P_W2)" \
   -c "CREATE EXTENSION elt_governance" >/dev/null
oq -c "CREATE EXTENSION elt_governance"

echo "# command: bash bench/citus.sh $*  (repeats=$REPEATS, rows=$ROWS, shards=$SHARDS)"
echo "# PostgreSQL $(cq -c 'SHOW server_version'), Citus $(cq -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'"), elt_governance $(cq -c "SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'") $(bench_build)"
bench_tree
bench_machine
bench_load_start

DDL_ORDERS="CREATE SCHEMA bench;
CREATE TABLE bench.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, amount numeric(12,2) NOT NULL,
                           note text, total numeric, applied int NOT NULL DEFAULT 0);
CREATE TABLE bench.facts (id bigint PRIMARY KEY, customer_id bigint, amount numeric(12,2), doubled numeric);
CREATE TABLE bench.facts_peer (LIKE bench.facts INCLUDING ALL);"
LOAD_ORDERS="INSERT INTO bench.orders (id, customer_id, amount, note)
SELECT g, 1 + g % 100000, ((hashint8(g)::bigint & 2147483647) % 100000) / 100.0, 'order ' || g
FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE bench.orders;"
TRANSFORM_SQL='SELECT id, customer_id, amount, amount * 2 AS doubled FROM bench.orders'
PEER_SQL="INSERT INTO bench.facts_peer $TRANSFORM_SQL"

log "loading $ROWS rows on the Citus cluster"
t=$(now_s)
cq >/dev/null <<SQL
$DDL_ORDERS
SELECT create_distributed_table('bench.orders', 'id', shard_count => $SHARDS);
SELECT create_distributed_table('bench.facts', 'id', colocate_with => 'bench.orders');
SELECT create_distributed_table('bench.facts_peer', 'id', colocate_with => 'bench.orders');
$LOAD_ORDERS
SELECT elt.transform_create('facts', 'bench.facts', '$TRANSFORM_SQL', 'append');
SQL
log "loaded on Citus in $(sub "$(now_s)" "$t") s"
log "loading $ROWS rows on one node"
t=$(now_s)
oq >/dev/null <<SQL
$DDL_ORDERS
$LOAD_ORDERS
SELECT elt.transform_create('facts', 'bench.facts', '$TRANSFORM_SQL', 'append');
SQL
log "loaded on one node in $(sub "$(now_s)" "$t") s"
PLACEMENT=$(cq -c "SELECT string_agg(format('%s shards on port %s', n, nodeport), ', ' ORDER BY nodeport)
                   FROM (SELECT nodeport, count(*) n FROM citus_shards WHERE table_name = 'bench.orders'::regclass
                         GROUP BY nodeport) s")
POOL=$(cq -c "SHOW citus.max_adaptive_executor_pool_size")
SIZE=$(cq -c "SELECT pg_size_pretty(citus_total_relation_size('bench.orders'))")
log "bench.orders: $PLACEMENT; $SIZE; citus.max_adaptive_executor_pool_size $POOL"

declare -A MS
add() { MS[$1]="${MS[$1]:-} $2"; log "run $rep $1: $2 ms"; }

##############################################################################
# 1. checksums
##############################################################################
SUM_CITUS=""
for rep in $(seq 1 "$REPEATS"); do
  checkpoint_all
  add checksum_citus "$(run_ms coord -c "SELECT elt.table_checksum('bench.orders')")"
  checkpoint_all
  add checksum_one "$(run_ms one -c "SELECT elt.table_checksum('bench.orders')")"
done
SUM_CITUS=$(cq -c "SELECT elt.table_checksum('bench.orders')")
SUM_ONE=$(oq -c "SELECT elt.table_checksum('bench.orders')")
[ "$SUM_CITUS" = "$SUM_ONE" ] || fail "checksums differ: Citus $SUM_CITUS, one node $SUM_ONE"
[[ "$SUM_CITUS" == v1:$ROWS:* ]] || fail "the checksum does not count $ROWS rows: $SUM_CITUS"
log "checksums agree: $SUM_CITUS"

##############################################################################
# 2. transforms with row lineage, and Citus's INSERT ... SELECT
##############################################################################
if part transform; then
TRUNC="TRUNCATE bench.facts, bench.facts_peer, elt.lineage_chunks, elt.lineage_layout"
for rep in $(seq 1 "$REPEATS"); do
  cq -c "$TRUNC"; oq -c "$TRUNC"
  checkpoint_all
  add insert_citus "$(run_ms coord -c "$PEER_SQL")"
  checkpoint_all
  add transform_citus_coord "$(run_ms coord -c "SET client_min_messages = warning" -c "SET elt.citus_pushdown = off" -c "SELECT elt.transform_run('facts')")"
  COORD_RUN=$(cq -c "SELECT max(run_id) FROM elt.transform_runs")
  cq -c "TRUNCATE bench.facts, elt.lineage_chunks, elt.lineage_layout"
  checkpoint_all
  add transform_citus "$(run_ms coord -c "SET client_min_messages = warning" -c "SELECT elt.transform_run('facts')")"
  checkpoint_all
  add insert_one "$(run_ms one -c "$PEER_SQL")"
  checkpoint_all
  add transform_one "$(run_ms one -c "SELECT elt.transform_run('facts')")"
done
T_SUMS=$(for n in coord one; do for t in facts facts_peer; do
  pq "$n" -c "SELECT elt.table_checksum('bench.$t')"; done; done | sort -u)
[ "$(wc -l <<<"$T_SUMS")" = 1 ] || fail "the targets differ: $T_SUMS"
[[ "$T_SUMS" == v1:$ROWS:* ]] || fail "the targets do not have $ROWS rows: $T_SUMS"
for n in coord one; do
  w=$(pq "$n" -c "SELECT rows_written FROM elt.transform_runs ORDER BY run_id DESC LIMIT 1")
  [ "$w" = "$ROWS" ] || fail "$n: the run wrote $w rows, not $ROWS"
  for k in 1 $((ROWS / 2)) "$ROWS"; do
    tr=$(pq "$n" -c "SELECT string_agg(format('%s %s', relation, key), ', ') FROM elt.trace('bench.facts', '$k')")
    [ "$tr" = "bench.orders $k" ] || fail "$n: the lineage of bench.facts $k is '$tr'"
  done
done
# on Citus: the last run pushed its row work down to the shards, the one
# with elt.citus_pushdown off did not
PD=$(cq -c "SELECT string_agg(coalesce(details->>'pushed_down', 'false'), ' ' ORDER BY (details->>'run_id')::bigint)
            FROM elt.audit_log WHERE action = 'transform_run'
             AND (details->>'run_id')::bigint IN ($COORD_RUN, (SELECT max(run_id) FROM elt.transform_runs))")
[ "$PD" = "false true" ] || fail "pushed down (coordinator run, default run): $PD"
log "every target agrees ($T_SUMS); each run wrote $ROWS rows; lineage traces sampled rows to their source"
LINEAGE_SIZE_CITUS=$(cq -c "SELECT pg_size_pretty(pg_total_relation_size('elt.lineage_chunks'))")
LINEAGE_SIZE_ONE=$(oq -c "SELECT pg_size_pretty(pg_total_relation_size('elt.lineage_chunks'))")
fi

##############################################################################
# 3. backfills, and one plain UPDATE
##############################################################################
applied=0
CHUNKS_CITUS=""
CHUNKS_ONE=""
if part backfill; then
check_applied() {
  local n=$1 c
  c=$(pq "$n" -c "SELECT count(*) FILTER (WHERE applied = $applied AND total = amount * 2) FROM bench.orders")
  [ "$c" = "$ROWS" ] || fail "$n: $c rows of $ROWS were updated exactly $applied times"
}
CHUNKS_CITUS=""
CHUNKS_ONE=""
declare -A CHUNK_STATS
for rep in $(seq 1 "$REPEATS"); do
  BF="UPDATE bench.orders SET total = amount * 2, applied = applied + 1 WHERE id >= \$1 AND id < \$2"
  for n in coord one; do
    pq "$n" -c "SELECT elt.backfill_create('bf$rep', 'bench.orders', '$BF', 'id')" >/dev/null
  done
  checkpoint_all
  add update_citus "$(run_ms coord -c "UPDATE bench.orders SET total = amount * 2, applied = applied + 1")"
  checkpoint_all
  add update_one "$(run_ms one -c "UPDATE bench.orders SET total = amount * 2, applied = applied + 1")"
  applied=$((applied + 1)); check_applied coord; check_applied one
  cq -c "VACUUM bench.orders"; oq -c "VACUUM bench.orders"
  checkpoint_all
  add backfill_citus "$(run_ms coord -c "SET client_min_messages = warning" -c "CALL elt.backfill_run('bf$rep')")"
  checkpoint_all
  add backfill_one "$(run_ms one -c "SET client_min_messages = warning" -c "CALL elt.backfill_run('bf$rep')")"
  applied=$((applied + 1)); check_applied coord; check_applied one
  cq -c "VACUUM bench.orders"; oq -c "VACUUM bench.orders"
  CHUNKS_CITUS="${CHUNKS_CITUS:+$CHUNKS_CITUS / }$(cq -c "SELECT chunks_done FROM elt.backfill_status WHERE name = 'bf$rep'")"
  CHUNKS_ONE="${CHUNKS_ONE:+$CHUNKS_ONE / }$(oq -c "SELECT chunks_done FROM elt.backfill_status WHERE name = 'bf$rep'")"
  # the chunks' statements against the whole call: what planning the next
  # chunk and committing cost
  for n in coord one; do
    CHUNK_STATS[$n]="${CHUNK_STATS[$n]:+${CHUNK_STATS[$n]}; }$(pq "$n" -c "SELECT format('%s chunks (%s per shard, in %s shards), %s rows each on average, chunk statement p50 %s ms, chunk statements %s s in all',
        count(*), CASE WHEN count(to_jsonb(c)->>'shard_id') = count(*) THEN 'all' ELSE 'none' END,
        count(DISTINCT to_jsonb(c)->>'shard_id'),
        round(avg(s.rows_affected)), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s.duration_ms)::numeric),
        round(sum(s.duration_ms)::numeric / 1000, 1))
      FROM elt.backfill_chunk_status s JOIN elt.backfills b ON b.name = s.backfill
      JOIN elt.backfill_chunks c ON c.backfill_id = b.backfill_id AND c.chunk_no = s.chunk_no
      WHERE s.backfill = 'bf$rep' AND s.state = 'done'")"
  done
done
part backfill && for n in coord one; do
  s=$(pq "$n" -c "SELECT string_agg(state || ' ' || rows_done, ', ') FROM elt.backfill_status")
  [[ "$s" =~ ^(finished\ $ROWS(,\ )?)+$ ]] || fail "$n: backfills ended as: $s"
done
SUM_CITUS=$(cq -c "SELECT elt.table_checksum('bench.orders')")
SUM_ONE=$(oq -c "SELECT elt.table_checksum('bench.orders')")
[ "$SUM_CITUS" = "$SUM_ONE" ] || fail "after the backfills the checksums differ: Citus $SUM_CITUS, one node $SUM_ONE"
log "every row updated exactly once per run ($applied in all) on both sides; checksums agree: $SUM_CITUS"
fi

##############################################################################
# report
##############################################################################
row() {  # contender, what, peer contender for the ratio
  local m p
  [ -n "${MS[$1]:-}" ] || return 0
  m=$(median <<<"${MS[$1]}")
  p=$(median <<<"${MS[$3]}")
  echo "| $2 | $(echo ${MS[$1]} | sed 's/ / \/ /g') | $m | $(ratio "$m" "$p") × $4 |"
}
echo
echo "## $ROWS rows: a coordinator and two workers against one node (median of $REPEATS, ms)"
echo
echo "bench.orders on Citus: hash-distributed on id, $SHARDS shards ($PLACEMENT), $SIZE;"
echo "citus.max_adaptive_executor_pool_size $POOL (connections per worker a multi-shard statement may open)."
echo
echo "| contender | runs | median | ratio |"
echo "|---|---|---|---|"
row checksum_one    "checksum, one node" checksum_one "one node"
row checksum_citus  "checksum, Citus ($SHARDS shards in parallel)" checksum_one "one node"
row insert_one      "plain INSERT … SELECT, one node" insert_one "one node"
row insert_citus    "Citus INSERT … SELECT, colocated, no lineage" insert_one "one node"
row transform_one   "transform, row lineage, one node" insert_one "INSERT, one node"
row transform_citus_coord "transform, row lineage, Citus, on the coordinator (elt.citus_pushdown off)" insert_citus "Citus INSERT"
row transform_citus "transform, row lineage, Citus, pushed down (default)" insert_citus "Citus INSERT"
row update_one      "plain UPDATE, one node" update_one "one node"
row update_citus    "Citus UPDATE, multi-shard" update_one "one node"
row backfill_one    "backfill_run, one node ($CHUNKS_ONE chunks)" update_one "UPDATE, one node"
row backfill_citus  "backfill_run, Citus ($CHUNKS_CITUS chunks)" update_citus "Citus UPDATE"
echo
part transform && echo "Ratios across sides: transform Citus pushed down × on the coordinator $(ratio "$(median <<<"${MS[transform_citus]}")" "$(median <<<"${MS[transform_citus_coord]}")"), transform Citus × transform one node $(ratio "$(median <<<"${MS[transform_citus]}")" "$(median <<<"${MS[transform_one]}")")."
part backfill && echo "Ratios across sides: backfill Citus × backfill one node $(ratio "$(median <<<"${MS[backfill_citus]}")" "$(median <<<"${MS[backfill_one]}")")."
part backfill && echo "Backfill chunks: Citus ${CHUNK_STATS[coord]}; one node ${CHUNK_STATS[one]}."
echo "Correct: checksums equal on both sides ($SUM_ONE$(part backfill && echo " after the backfills"))$(part transform && echo "; every target of a transform or INSERT the same ($T_SUMS); each run wrote $ROWS rows; elt.trace of sampled target rows gives their source row")$(part backfill && echo "; every row updated exactly once per UPDATE or backfill ($applied in all)").$(part transform && echo " Lineage stored: $LINEAGE_SIZE_CITUS on the coordinator, $LINEAGE_SIZE_ONE on one node.")"
bench_load_end
bench_check_library
log "done"
