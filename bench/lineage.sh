#!/usr/bin/env bash
# Benchmark of transforms with row lineage (issue: transforms and row-level
# lineage).
#
# Data (deterministic, hashint4-based):
#   raw.customers (id int PRIMARY KEY, name text, region text)      10,000 rows, 4 regions
#   raw.orders (id bigint PRIMARY KEY, customer_id int, ordered_at timestamptz,
#               amount numeric(12,2))                          1,000,000 rows over the
#                                                              90 days 2026-01-01..03-31 (UTC)
#
# 1. Cost of a run.  The same statement feeds
#      mart.daily (customer_id int, day date, region text, orders bigint,
#                  revenue numeric, PRIMARY KEY (customer_id, day))
#    from
#      SELECT c.id AS customer_id, o.ordered_at::date AS day, c.region,
#             count(*) AS orders, sum(o.amount) AS revenue
#      FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id
#      GROUP BY c.id, o.ordered_at::date, c.region
#    in four ways:
#      plain     INSERT INTO mart.daily SELECT ... (the peer every ratio is to);
#      elt_row   SELECT elt.transform_run('daily')  (row lineage; the transform
#                was made with elt.transform_create(..., 'append'));
#      elt_table SELECT elt.transform_run('daily', '{}', 'table');
#      elt_manifest  elt_row with the run's manifest checksumming its inputs
#                and output (elt.manifest_policy = checksum, the default;
#                every other run of this script sets it to none, so that
#                the lineage figures are of lineage alone; likewise
#                elt.undo_retention = 0: the merge runs keep no
#                before-images, whose cost bench/undo.sh measures);
#      trigger   the plain INSERT with an AFTER INSERT FOR EACH ROW PL/pgSQL
#                trigger on mart.daily writing to_jsonb(NEW) to a log table
#                (the pgMemento / supa_audit way).
#    Each is run REPEATS times, round-robin; before every run mart.daily,
#    elt.lineage_chunks and the audit log are TRUNCATEd and a CHECKPOINT is
#    taken.  Time is psql's \timing of the one statement; the median is
#    reported.  For the elt runs auto_explain (log_analyze off,
#    log_nested_statements on, log_min_duration 50 ms) logs the duration of
#    the statements the run executes through SPI, so the time is split into
#    the transform's INSERT (with the capture of its lineage), the insert of
#    the lineage chunks, and the rest (cutting the captured records into
#    chunks, bookkeeping).
#
# 2. Tracing.  A chain of three transforms:
#      raw.orders + raw.customers -> mart.daily          ('daily', above)
#      mart.daily -> mart.region_day (region, day)        ('region_day', replace)
#      mart.region_day -> mart.region_month (region, month) ('region_month', replace)
#    row lineage is grown to at least MIN_EDGES edges (an edge = one
#    source key): 'daily', 'region_day' and 'region_month' run once, then
#    'daily_merge' (the same query as 'daily', mode merge, same target)
#    runs until the count is reached (a trace follows the latest run of
#    each key).  Then pgbench -n -t N -f <file> (one client, one
#    connection) times
#      SELECT count(*) FROM elt.trace(<rel>, <key>[, depth])
#      SELECT count(*) FROM elt.impact(<rel>, <key>)
#    for one key of each level, twice: as the runs left elt.lineage_chunks
#    (autovacuum may or may not have visited it) and after VACUUM ANALYZE
#    elt.lineage_chunks.  The fan-out (rows
#    returned) of each call is reported.  A key of mart.region_month reaches
#    a whole region-month of raw rows; its full trace is tried once, with
#    statement_timeout, and its depth-1 trace is timed with pgbench.
#
# The server runs under a per-process address-space limit (ulimit -v,
# MEM_CAP_GB, default 8 GB, shared_buffers included) so that a call that
# runs away with memory fails with "out of memory" instead of waking the
# kernel's OOM killer.
#
# Uses the INSTALLED build of elt_governance (it neither builds nor
# installs it) on a throwaway cluster with the library preloaded,
# shared_buffers 2GB, max_wal_size 8GB, work_mem 64MB,
# maintenance_work_mem 512MB, checkpoint_timeout 30min, TimeZone UTC.
#
# Usage: bash bench/lineage.sh [repeats, default 3] [min edges, default 10000000]
. "$(dirname "$0")/lib.sh"

REPEATS="${1:-3}"
MIN_EDGES="${2:-10000000}"
PORT="${BENCH_PORT:-5511}"
MEM_CAP_GB="${MEM_CAP_GB:-8}"
MAX_MERGES="${BENCH_MAX_MERGES:-12}"   # growth runs at most this many merge runs (BENCH_MAX_MERGES)
TRACE_TIMEOUT_S=600     # the full trace of a region-month key

# --- the installed extension ------------------------------------------------
bench_require_installed 0.4.0 0.3.0--0.4.0
bench_start_cluster "$PORT"
bench_configure norestart <<CONF
shared_buffers = 2GB
max_wal_size = 8GB
work_mem = 64MB
maintenance_work_mem = 512MB
checkpoint_timeout = 30min
lc_messages = 'C'
timezone = 'UTC'
log_timezone = 'UTC'
CONF
as_postgres sh -c "ulimit -v $(( MEM_CAP_GB * 1024 * 1024 )) && exec '$PG_BIN/pg_ctl' -D '$WORK/data' -l '$WORK/server.log' -w restart" >/dev/null

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
log_pos() { as_postgres sh -c "wc -c < '$WORK/server.log'"; }
# durations auto_explain logged since byte $1: "<statement ms> <lineage insert ms>"
spi_split() {
  as_postgres sh -c "tail -c +$(( $1 + 1 )) '$WORK/server.log'" | awk '
    /LOG:  duration: [0-9.]+ ms  plan:/ { for (i = 1; i <= NF; i++) if ($i == "duration:") d = $(i + 1); want = 1; next }
    want && /Query Text:/ {
      if ($0 ~ /AS __elt_t /) s += d
      else if ($0 ~ /INSERT INTO elt.lineage_chunks/) l += d
      want = 0 }
    END {printf "%.1f %.1f\n", s, l}'
}
as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d postgres -X -q -v ON_ERROR_STOP=1 \
  -c "CREATE DATABASE bench" -c "ALTER DATABASE bench SET elt.manifest_policy = none" \
  -c "ALTER DATABASE bench SET elt.undo_retention = 0" >/dev/null

echo "# command: bash bench/lineage.sh $*  (repeats=$REPEATS, min edges=$MIN_EDGES)"
echo "# PostgreSQL $(psql_q -c 'SHOW server_version'), elt_governance $(psql_q -c "CREATE EXTENSION elt_governance" -c "SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'") $(bench_build)"
bench_tree
bench_machine
echo "# settings: shared_buffers $(psql_q -c 'SHOW shared_buffers'), max_wal_size $(psql_q -c 'SHOW max_wal_size'), work_mem $(psql_q -c 'SHOW work_mem'), maintenance_work_mem $(psql_q -c 'SHOW maintenance_work_mem'), checkpoint_timeout $(psql_q -c 'SHOW checkpoint_timeout'), jit $(psql_q -c 'SHOW jit'), TimeZone $(psql_q -c 'SHOW timezone'); server address space capped at ${MEM_CAP_GB} GB per process"
bench_load_start

##############################################################################
# Setup
##############################################################################
QUERY='SELECT c.id AS customer_id, o.ordered_at::date AS day, c.region, count(*) AS orders, sum(o.amount) AS revenue FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id GROUP BY c.id, o.ordered_at::date, c.region'
log "loading raw.customers (10000) and raw.orders (1000000)"
t=$(date +%s.%N)
psql_q >/dev/null <<SQL
CREATE SCHEMA raw;
CREATE SCHEMA mart;
CREATE TABLE raw.customers (id int PRIMARY KEY, name text, region text);
INSERT INTO raw.customers
SELECT g, 'customer ' || g,
       (ARRAY['north', 'south', 'east', 'west'])[1 + (hashint4(g)::bigint + 2147483648) % 4]
FROM generate_series(1, 10000) g;
CREATE TABLE raw.orders (id bigint PRIMARY KEY, customer_id int, ordered_at timestamptz, amount numeric(12,2));
INSERT INTO raw.orders
SELECT g,
       1 + (hashint4(g)::bigint + 2147483648) % 10000,
       timestamptz '2026-01-01 00:00:00+00'
         + ((hashint4(-g)::bigint + 2147483648) % (90 * 86400)) * interval '1 second',
       ((hashint4(g + 1000000007)::bigint + 2147483648) % 100000) / 100.0
FROM generate_series(1, 1000000) g;
VACUUM ANALYZE raw.customers, raw.orders;

CREATE TABLE mart.daily (customer_id int, day date, region text, orders bigint, revenue numeric,
                         PRIMARY KEY (customer_id, day));
CREATE TABLE mart.region_day (region text, day date, orders bigint, revenue numeric,
                              PRIMARY KEY (region, day));
CREATE TABLE mart.region_month (region text, month date, revenue numeric,
                                PRIMARY KEY (region, month));

-- the audit-trigger peer (pgMemento / supa_audit style): one jsonb row per written row
CREATE TABLE public.audit_log (id bigserial PRIMARY KEY, table_name text NOT NULL, op text NOT NULL,
                               at timestamptz NOT NULL DEFAULT now(), row_data jsonb NOT NULL);
CREATE FUNCTION public.audit_row() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO public.audit_log (table_name, op, row_data)
  VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
  RETURN NULL;
END \$\$;

SELECT elt.transform_create('daily', 'mart.daily', \$q\$$QUERY\$q\$, 'append');
SELECT elt.transform_create('daily_merge', 'mart.daily', \$q\$$QUERY\$q\$, 'merge');
SELECT elt.transform_create('region_day', 'mart.region_day',
  \$q\$SELECT region, day, sum(orders) AS orders, sum(revenue) AS revenue FROM mart.daily GROUP BY region, day\$q\$,
  'replace');
SELECT elt.transform_create('region_month', 'mart.region_month',
  \$q\$SELECT region, date_trunc('month', day)::date AS month, sum(revenue) AS revenue FROM mart.region_day GROUP BY region, date_trunc('month', day)::date\$q\$,
  'replace');
SQL
log "loaded in $(awk -v a="$(date +%s.%N)" -v b="$t" 'BEGIN {printf "%.1f", a - b}') s"
echo "# lineage level of each transform: $(psql_q -c "SELECT string_agg(transform || '=' || lineage_level || coalesce(' (' || lineage_note || ')', ''), ', ' ORDER BY transform) FROM elt.transform_versions")"

##############################################################################
# 1. Cost of a run
##############################################################################
EDGES_SQL='SELECT coalesce(sum(coalesce(cardinality(source_keys), 0) + coalesce(cardinality(source_keys_text), 0)), 0) FROM elt.lineage_rows'
CHUNKS_SQL="SELECT format('%s lineage rows in %s chunks', coalesce(sum(entries) FILTER (WHERE dir = 't'), 0), count(*)) FROM elt.lineage_chunks"
AE=(-c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 50"
    -c "SET auto_explain.log_nested_statements = on" -c "SET auto_explain.log_analyze = off")
declare -A MS SPLIT_S SPLIT_L
CONTENDERS="plain elt_row elt_table elt_manifest trigger"
for rep in $(seq 1 "$REPEATS"); do
  for c in $CONTENDERS; do
    psql_q -c "TRUNCATE mart.daily, public.audit_log, elt.lineage_chunks, elt.lineage_layout" -c "CHECKPOINT"
    pos=$(log_pos)
    case "$c" in
      plain)     ms=$(timed_ms -c "INSERT INTO mart.daily $QUERY") ;;
      elt_row)   ms=$(timed_ms "${AE[@]}" -c "SELECT elt.transform_run('daily')") ;;
      elt_table) ms=$(timed_ms "${AE[@]}" -c "SELECT elt.transform_run('daily', '{}', 'table')") ;;
      elt_manifest) ms=$(timed_ms "${AE[@]}" -c "SET elt.manifest_policy = checksum" -c "SELECT elt.transform_run('daily')") ;;
      trigger)
        psql_q -c "CREATE TRIGGER daily_audit AFTER INSERT ON mart.daily FOR EACH ROW EXECUTE FUNCTION public.audit_row()"
        ms=$(timed_ms -c "INSERT INTO mart.daily $QUERY")
        psql_q -c "DROP TRIGGER daily_audit ON mart.daily" ;;
    esac
    rows=$(psql_q -c "SELECT count(*) FROM mart.daily")
    extra=""
    case "$c" in
      elt_*)
        read -r s l <<<"$(spi_split "$pos")"
        SPLIT_S[$c]="${SPLIT_S[$c]:-} $s"; SPLIT_L[$c]="${SPLIT_L[$c]:-} $l"
        extra="; statement $s ms, lineage insert $l ms; $(psql_q -c "$CHUNKS_SQL"), edges $(psql_q -c "$EDGES_SQL")" ;;
      trigger) extra="; audit rows $(psql_q -c 'SELECT count(*) FROM public.audit_log')" ;;
    esac
    MS[$c]="${MS[$c]:-} $ms"
    log "run $rep $c: $ms ms, $rows rows in mart.daily$extra"
  done
done
psql_q -c "TRUNCATE mart.daily, public.audit_log, elt.lineage_chunks, elt.lineage_layout"

label() {
  case "$1" in
    plain) echo "plain INSERT … SELECT (peer)" ;;
    elt_row) echo "elt.transform_run('daily'), row lineage" ;;
    elt_table) echo "elt.transform_run('daily', '{}', 'table'), table lineage" ;;
    elt_manifest) echo "elt.transform_run('daily'), row lineage and a manifest with checksums of the 2 sources and the target (elt.manifest_policy = checksum, the default)" ;;
    trigger) echo "INSERT … SELECT + AFTER INSERT FOR EACH ROW audit trigger (to_jsonb(NEW))" ;;
  esac
}
base=$(median <<<"${MS[plain]}")
echo
echo "## 1. One run writing $(psql_q -c "SELECT count(*) FROM (SELECT 1 FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id GROUP BY c.id, o.ordered_at::date, c.region) s") rows of mart.daily from 1,000,000 orders (median of $REPEATS)"
echo
echo "| contender | runs, ms | median ms | × plain INSERT | of which: transform INSERT (with capture) ms | lineage chunks insert ms |"
echo "|---|---|---|---|---|---|"
for c in $CONTENDERS; do
  m=$(median <<<"${MS[$c]}")
  s="–"; l="–"
  if [ -n "${SPLIT_S[$c]:-}" ]; then s=$(median <<<"${SPLIT_S[$c]}"); l=$(median <<<"${SPLIT_L[$c]}"); fi
  echo "| $(label "$c") | $(echo ${MS[$c]} | sed 's/ / \/ /g') | $m | $(ratio "$m" "$base") | $s | $l |"
done
echo
echo "(INSERT and chunk-insert times are auto_explain's durations of the statements the run executes through SPI; the INSERT includes encoding each captured row; the rest of a run is cutting the encoded rows into chunks, its own catalog work and commit.)"

##############################################################################
# 2. Tracing through a chain of three transforms
##############################################################################
log "growing row lineage to >= $MIN_EDGES edges"
echo
echo "## 2. Tracing: raw.orders + raw.customers -> mart.daily -> mart.region_day -> mart.region_month"
echo
echo "| run | transform | ms | the run's lineage | edges after |"
echo "|---|---|---|---|---|"
# the edges and chunks of the last run only, added up: decoding the whole
# store after every run would cost more than the runs once it holds 10^8
LAST_RUN='(SELECT max(run_id) FROM elt.transform_runs)'
RUN_EDGES_SQL="SELECT coalesce(sum(coalesce(cardinality(source_keys), 0) + coalesce(cardinality(source_keys_text), 0)), 0) FROM elt.lineage_rows WHERE run_id = $LAST_RUN"
RUN_CHUNKS_SQL="SELECT format('%s lineage rows in %s chunks', coalesce(sum(entries) FILTER (WHERE dir = 't'), 0), count(*)) FROM elt.lineage_chunks WHERE run_id = $LAST_RUN"
EDGES=0
growth_row() {   # transform label
  local ms
  ms=$(timed_ms -c "SELECT elt.transform_run('$1')")
  EDGES=$((EDGES + $(psql_q -c "$RUN_EDGES_SQL")))
  echo "| $2 | $1 | $ms | $(psql_q -c "$RUN_CHUNKS_SQL") | $EDGES |"
}
growth_row daily 1
growth_row region_day 2
growth_row region_month 3
n=0
while [ "$EDGES" -lt "$MIN_EDGES" ] && [ "$n" -lt "$MAX_MERGES" ]; do
  n=$((n + 1))
  growth_row daily_merge "$((n + 3))"
done
echo
echo "elt.lineage_chunks: $(psql_q -c "$CHUNKS_SQL"), **$EDGES edges**, $(psql_q -c "SELECT pg_size_pretty(pg_table_size('elt.lineage_chunks'))") table (TOAST included) + $(psql_q -c "SELECT pg_size_pretty(pg_indexes_size('elt.lineage_chunks'))") indexes."
if [ "$EDGES" -lt "$MIN_EDGES" ]; then echo "WARNING: fewer than $MIN_EDGES edges"; fi

K_DAILY=$(psql_q -c "SELECT format('(%s,%s)', customer_id, day) FROM mart.daily WHERE day = '2026-01-05' ORDER BY customer_id LIMIT 1")
K_RD='(north,2026-01-05)'
K_RM='(north,2026-01-01)'
ORDER_ID=12345
CUSTOMER_ID=$(psql_q -c "SELECT customer_id FROM raw.orders WHERE id = $ORDER_ID")

# the boolean column that marks rows with no lineage of their own (raw
# rows): the last output column of elt.trace, whatever it is called
LEAF=$(psql_q -c "SELECT proargnames[array_length(proargnames, 1)] FROM pg_proc WHERE oid = 'elt.trace(regclass, text, integer)'::regprocedure")
# fan-out of one call: rows, leaf rows, distinct (relation, key), rows per depth and relation
fanout() {
  psql_q -c "WITH t AS (SELECT * FROM $1),
                  g AS (SELECT depth, relation, count(*) AS n FROM t GROUP BY depth, relation)
             SELECT (SELECT count(*) FROM t) || ' rows (' || (SELECT count(*) FROM t WHERE $LEAF) || ' $LEAF, '
                    || (SELECT count(DISTINCT (relation, key)) FROM t) || ' distinct rows): '
                    || coalesce((SELECT string_agg(format('%s %s ×%s', depth, relation, n), ', ' ORDER BY depth, relation::text) FROM g), '')"
}
pgb() {   # transactions sql -> average latency ms
  local f="pgb_$RANDOM.sql" out
  echo "$2" | put "$f"
  if ! out=$(as_postgres sh -c "cd '$WORK' && PGOPTIONS='-c statement_timeout=${TRACE_TIMEOUT_S}s' '$PG_BIN/pgbench' -h '$WORK' -p $PORT -n -t $1 -f '$WORK/$f' bench" 2>&1); then
    log "pgbench failed: $out"; echo "failed"; return 0
  fi
  grep -o 'latency average = [0-9.]* ms' <<<"$out" | awk '{print $4}'
}
# lineage_chunks' vacuum state
gin_state() {
  psql_q -c "SELECT format('lineage_chunks last (auto)vacuum %s, rows inserted since %s',
                coalesce(to_char(greatest(s.last_vacuum, s.last_autovacuum), 'HH24:MI:SS'), 'never'), s.n_ins_since_vacuum)
             FROM pg_stat_all_tables s WHERE s.relid = 'elt.lineage_chunks'::regclass"
}

# label hops transactions-before transactions-after call
CALLS=(
  "1|200|200|elt.trace('mart.daily', '$K_DAILY')"
  "2|10|20|elt.trace('mart.region_day', '$K_RD')"
  "1|200|200|elt.trace('mart.region_month', '$K_RM', 1)"
  "3|50|50|elt.impact('raw.orders', '$ORDER_ID')"
  "3|5|20|elt.impact('raw.customers', '$CUSTOMER_ID')"
)
declare -A LAT_A LAT_B FAN
STATE_A=$(gin_state)
log "timing the calls as the runs left elt.lineage_chunks ($STATE_A)"
for c in "${CALLS[@]}"; do
  IFS='|' read -r hops ta tb call <<<"$c"
  log "  $call (pgbench -t $ta)"
  LAT_A[$call]=$(pgb "$ta" "SELECT count(*) FROM $call;")
done
log "VACUUM ANALYZE elt.lineage_chunks"
vac=$(timed_ms -c "VACUUM ANALYZE elt.lineage_chunks")
STATE_B=$(gin_state)
for c in "${CALLS[@]}"; do
  IFS='|' read -r hops ta tb call <<<"$c"
  log "  $call (pgbench -t $tb)"
  FAN[$call]=$(fanout "$call")
  LAT_B[$call]=$(pgb "$tb" "SELECT count(*) FROM $call;")
done

echo
echo "Keys: mart.daily $K_DAILY; mart.region_day $K_RD; mart.region_month $K_RM; raw.orders $ORDER_ID (of customer $CUSTOMER_ID)."
echo "Average latency of pgbench -n -t N -f <file> (one connection) running \`SELECT count(*) FROM <call>;\`, in ms:"
echo "- *as the runs left it*: right after the last run; $STATE_A;"
echo "- *after VACUUM ANALYZE elt.lineage_chunks* ($vac ms): $STATE_B."
echo
echo "| call | hops | as the runs left it (-t) | after VACUUM ANALYZE (-t) | fan-out: rows returned, by depth and relation |"
echo "|---|---|---|---|---|"
for c in "${CALLS[@]}"; do
  IFS='|' read -r hops ta tb call <<<"$c"
  echo "| \`$call\` | $hops | ${LAT_A[$call]} ($ta) | ${LAT_B[$call]} ($tb) | ${FAN[$call]} |"
done

# the full trace of a region-month key: once, bounded by statement_timeout and the memory cap
log "full trace of mart.region_month $K_RM (statement_timeout ${TRACE_TIMEOUT_S}s, ${MEM_CAP_GB} GB cap)"
t=$(date +%s.%N)
if out=$(psql_q -c "SET statement_timeout = '${TRACE_TIMEOUT_S}s'" \
                -c "SELECT count(*) || ' rows (' || count(*) FILTER (WHERE $LEAF) || ' $LEAF)' FROM elt.trace('mart.region_month', '$K_RM')" 2>&1); then
  res="$out"
else
  res="ERROR: $(grep -o 'ERROR: .*' <<<"$out" | head -n 1 | sed 's/^ERROR: *//')"
fi
el=$(awk -v a="$(date +%s.%N)" -v b="$t" 'BEGIN {printf "%.0f", (a - b) * 1000}')
echo "| \`elt.trace('mart.region_month', '$K_RM')\` (full, once, with psql) | 3 | – | $el | $res |"
# upstream fan-out of the region-month key, counted from the tables themselves
echo
echo "What a full trace of $K_RM would return, counted from the tables: $(psql_q -c "
  SELECT format('%s region_day rows, %s daily rows, %s orders, %s customers',
    (SELECT count(*) FROM mart.region_day WHERE region = 'north' AND day >= '2026-01-01' AND day < '2026-02-01'),
    (SELECT count(*) FROM mart.daily WHERE region = 'north' AND day >= '2026-01-01' AND day < '2026-02-01'),
    (SELECT count(*) FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id
      WHERE c.region = 'north' AND o.ordered_at >= '2026-01-01' AND o.ordered_at < '2026-02-01'),
    (SELECT count(DISTINCT customer_id) FROM mart.daily WHERE region = 'north' AND day >= '2026-01-01' AND day < '2026-02-01'))")."

echo
echo "Server log: $(grep -c 'ERROR' "$WORK/server.log" || true) ERROR lines, $(grep -c 'terminated by signal' "$WORK/server.log" || true) crashed backends; by message:"
grep -o 'ERROR: .*' "$WORK/server.log" | sed 's/[0-9]\{3,\}/N/g' | sort | uniq -c | sort -rn | head -10 || true
bench_load_end
bench_check_library
log "done"
