#!/usr/bin/env bash
# Benchmark of blue-green promotion (issue: blue-green deployments).
#
# "Promotion of 50 tables under a concurrent read load: switch time and the
# longest wait of a reader, against the hand-made swap (two ALTER SCHEMA …
# RENAME in one transaction), and showing what the hand-made swap gets
# wrong with dependent views."
#
# Data (deterministic): TABLES tables (default 50) t001.. of ROWS rows each
# (default 20,000): (id int PRIMARY KEY, version int NOT NULL, val numeric
# NOT NULL, label text NOT NULL).  Version 1 is live; the new version of
# every table has the same rows with version 2.
#
# Contenders, each in its own database of the same cluster:
#   elt   database "bench": schema mart is a deployment interface
#         (elt.deploy_init: tables in mart__blue, one view per table in
#         mart); two quality checks are declared on mart.t001 (not_null
#         version, unique id).  A cycle: elt.deploy_prepare('mart') and the
#         candidate built with INSERT … SELECT id, 2, val, label FROM mart.tNNN
#         and ANALYZE (before the readers start: not measured), then, under
#         the read load, SELECT elt.deploy_promote('mart', …) and later
#         SELECT elt.deploy_rollback('mart', …).
#   hand  database "peer", without the extension (its event triggers would
#         charge the peer for DDL capture): schema mart_h (version 1) and
#         mart_h_next (version 2), the same tables; a cycle, under the same
#         load: the swap
#           BEGIN; ALTER SCHEMA mart_h RENAME TO mart_h_old;
#                  ALTER SCHEMA mart_h_next RENAME TO mart_h; COMMIT;
#         and later the swap back (mart_h -> mart_h_next, mart_h_old ->
#         mart_h), also in one transaction.
# Each database has consumers in another schema, made on the interface
# after it exists, as a consumer would:
#   reporting.totals   view: SELECT a.id, a.version AS v_a, b.version AS v_b,
#                      a.val + b.val AS total FROM <s>.t001 a JOIN <s>.t002 b
#                      USING (id)            (s = mart, resp. mart_h)
#   reporting.v_plpgsql()  PL/pgSQL function reading <s>.t001
#   reporting.v_atomic()   SQL function with a BEGIN ATOMIC body reading it
#
# Read load: pgbench, CLIENTS clients (default 4, -j 2), throttled to RATE
# transactions/s in all (default 2000: the machine is not saturated), -n,
# per-transaction log.  Four scripts, one query each on a random key:
#   0 (weight 60) a lookup in one random table;
#   1 (weight 29) two tables joined in one query, t_i with t_i+1;
#   2 (weight W_REVERSE, default 1) the last table joined with the first
#                 (against the OID order in which a switch locks);
#   3 (weight 10) a lookup in the dependent view.
# The joins divide by zero if the two versions differ, so that a query
# that sees a mix of versions fails.  Every protocol in MODES (default
# "simple prepared") runs the whole benchmark.
#
# Per contender and protocol: one baseline run (BASE_S seconds, default 6,
# no switch), then CYCLES runs of RUN_S seconds (default 3.5) with a switch
# at 1.0 s (promote, resp. swap) and one at 2.5 s (rollback, resp. swap
# back).  Measured for every switch:
#   switch time      psql's \timing of the one query string (the call, resp.
#                    BEGIN\; ALTER\; ALTER\; COMMIT sent as one string);
#   longest wait     the longest time a reader transaction that overlaps the
#                    switch (clock_timestamp() before the call to after it)
#                    took to run (pgbench's latency minus its schedule lag),
#                    also per script, and counted from its scheduled start;
#   what is read right after it: t001 and the dependent view, version of
#                    row 1, against the version that should be live;
#   lock attempts    elt only, from elt.deployment_events;
# and per run: failed transactions and aborted clients (pgbench aborts a
# client on any error but a serialization failure or deadlock), with the
# errors.
# Then, with the first protocol, one more cycle per contender with a long
# reader: SELECT pg_sleep(LONG_S) FROM <s>.<middle table> LIMIT 1 (default 3 s)
# starts at 0.8 s, the switch at 1.0 s, the switch back after the report.
# Last, without load, the other consumers: a prepared statement (generic
# plan) and the PL/pgSQL function used before the switch in one session,
# the switch made by another, then read again; and the BEGIN ATOMIC function.
#
# The cluster runs WITHOUT shared_preload_libraries (the deployment
# functions do not need preloading, and a preloaded library that is
# reinstalled during the run breaks new backends); shared_buffers 1GB.
# Uses the INSTALLED build; run it under a shared lock so that nobody
# installs during the run:
#   flock -s /tmp/elt-install.lock bash bench/deploy.sh
# Usage: bash bench/deploy.sh [cycles, default 10] [tables, default 50]
#        [rows, default 20000]; environment CLIENTS, RATE, MODES, BASE_S,
#        RUN_S, LONG_S (0: no long reader), W_REVERSE, BENCH_PORT (default
#        5531).
. "$(dirname "$0")/lib.sh"

CYCLES="${1:-10}"
TABLES="${2:-50}"
ROWS="${3:-20000}"
CLIENTS="${CLIENTS:-4}"
RATE="${RATE:-2000}"
MODES="${MODES:-simple prepared}"
BASE_S="${BASE_S:-6}"
RUN_S="${RUN_S:-3.5}"
LONG_S="${LONG_S:-3}"
W_REVERSE="${W_REVERSE:-1}"            # weight of the join against OID order (may be 0)
PORT="${BENCH_PORT:-5531}"
SW1_AT=1.0
SW2_AT=2.5

bench_require_installed 0.6.0 0.5.0--0.6.0
if [ "$TABLES" -lt 2 ] || [ "$TABLES" -gt 999 ]; then
  echo "deploy.sh: tables must be between 2 and 999" >&2
  exit 1
fi

PGBENCH_PID=""
bench_before_stop() {   # called by lib.sh's exit trap
  if [ -n "$PGBENCH_PID" ]; then kill "$PGBENCH_PID" 2>/dev/null || true; fi
}
bench_start_cluster "$PORT"
# no preloaded library (see above); the other settings for a read load
bench_configure <<CONF
shared_preload_libraries = ''
shared_buffers = 1GB
max_wal_size = 4GB
checkpoint_timeout = 30min
jit = off
lc_messages = 'C'
timezone = 'UTC'
CONF

putf() { as_postgres sh -c "cat > '$1'"; }           # write stdin to a file in $WORK, by its full path
get() { as_postgres sh -c "cat $1"; }               # read files of $WORK (0700, postgres); $1 may be a glob
tname() { printf 't%03d' "$1"; }

psql_db postgres -c "CREATE DATABASE bench" -c "CREATE DATABASE peer"
psql_db bench -c "CREATE EXTENSION elt_governance"

echo "# command: bash bench/deploy.sh $*  (cycles=$CYCLES, tables=$TABLES, rows=$ROWS, clients=$CLIENTS, rate=$RATE tps, modes=$MODES, run=${RUN_S}s, baseline=${BASE_S}s, long reader=${LONG_S}s, reverse-join weight=$W_REVERSE)"
echo "# PostgreSQL $(psql_db bench -c 'SHOW server_version'), pgbench $("$PG_BIN/pgbench" --version | awk '{print $3}'), elt_governance $(psql_db bench -c "SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'") $(bench_build)"
bench_tree
bench_machine
echo "# settings: shared_preload_libraries '$(psql_db bench -c 'SHOW shared_preload_libraries')', shared_buffers $(psql_db bench -c 'SHOW shared_buffers'), deadlock_timeout $(psql_db bench -c 'SHOW deadlock_timeout'), elt.deploy_lock_timeout $(psql_db bench -c "LOAD 'elt_governance'" -c 'SHOW elt.deploy_lock_timeout'), elt.deploy_lock_retries $(psql_db bench -c "LOAD 'elt_governance'" -c 'SHOW elt.deploy_lock_retries'), readers' pgbench -R $RATE -c $CLIENTS -j 2"
bench_load_start

# ---------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------
make_tables() {  # schema version
  cat <<SQL
CREATE SCHEMA $1;
DO \$\$
BEGIN
  FOR i IN 1..$TABLES LOOP
    EXECUTE format('CREATE TABLE %I.%I (id int PRIMARY KEY, version int NOT NULL, val numeric NOT NULL, label text NOT NULL)',
                   '$1', 't' || lpad(i::text, 3, '0'));
    EXECUTE format('INSERT INTO %I.%I SELECT g, $2, (hashint4(g + %s) %% 100000) / 100.0, %L || g FROM generate_series(1, $ROWS) g',
                   '$1', 't' || lpad(i::text, 3, '0'), i, 'row ' || i || '/');
  END LOOP;
END
\$\$;
SQL
}
log "loading $TABLES tables of $ROWS rows: elt (1 version), peer (2 versions)"
{ make_tables mart 1
  cat <<SQL
SELECT elt.deploy_init('mart');
CREATE SCHEMA reporting;
CREATE VIEW reporting.totals AS
  SELECT a.id, a.version AS v_a, b.version AS v_b, a.val + b.val AS total
  FROM mart.t001 a JOIN mart.t002 b USING (id);
CREATE FUNCTION reporting.v_plpgsql() RETURNS int LANGUAGE plpgsql AS
  \$f\$ BEGIN RETURN (SELECT version FROM mart.t001 WHERE id = 1); END \$f\$;
CREATE FUNCTION reporting.v_atomic() RETURNS int LANGUAGE sql
  BEGIN ATOMIC SELECT version FROM mart.t001 WHERE id = 1; END;
SELECT elt.check_create('mart.t001', 'not_null', '{"column": "version"}');
SELECT elt.check_create('mart.t001', 'unique', '{"column": "id"}');
VACUUM ANALYZE;
SQL
} | psql_db bench >/dev/null
{ make_tables mart_h 1
  make_tables mart_h_next 2
  cat <<SQL
CREATE SCHEMA reporting;
CREATE VIEW reporting.totals AS
  SELECT a.id, a.version AS v_a, b.version AS v_b, a.val + b.val AS total
  FROM mart_h.t001 a JOIN mart_h.t002 b USING (id);
CREATE FUNCTION reporting.v_plpgsql() RETURNS int LANGUAGE plpgsql AS
  \$f\$ BEGIN RETURN (SELECT version FROM mart_h.t001 WHERE id = 1); END \$f\$;
CREATE FUNCTION reporting.v_atomic() RETURNS int LANGUAGE sql
  BEGIN ATOMIC SELECT version FROM mart_h.t001 WHERE id = 1; END;
VACUUM ANALYZE;
SQL
} | psql_db peer >/dev/null

# ---------------------------------------------------------------------
# The readers' script (one per interface schema)
# ---------------------------------------------------------------------
# four scripts, the same in every contender: 0 one table (weight 60),
# 1 two tables in OID order (29), 2 two tables against OID order (1: the
# last table joined with the first), 3 the dependent view (10)
READER_KINDS=("one table" "two tables, in OID order" "two tables, against OID order" "dependent view")
reader_scripts() {  # schema file-prefix
  local s=$1 f=$2 i
  { echo "\\set id random(1, $ROWS)"
    echo "\\set t random(1, $TABLES)"
    for i in $(seq 1 "$TABLES"); do
      if [ "$i" -eq 1 ]; then echo "\\if :t = 1"; else echo "\\elif :t = $i"; fi
      echo "SELECT version, val, label FROM $s.$(tname "$i") WHERE id = :id;"
    done
    echo "\\endif"
  } | putf "${f}_0.sql"
  { echo "\\set id random(1, $ROWS)"
    echo "\\set t random(1, $(( TABLES - 1 )))"
    for i in $(seq 1 $(( TABLES - 1 ))); do
      if [ "$i" -eq 1 ]; then echo "\\if :t = 1"; else echo "\\elif :t = $i"; fi
      echo "SELECT 1 / (a.version = b.version)::int AS same_version, a.val + b.val FROM $s.$(tname "$i") a JOIN $s.$(tname $(( i + 1 ))) b USING (id) WHERE a.id = :id;"
    done
    echo "\\endif"
  } | putf "${f}_1.sql"
  { echo "\\set id random(1, $ROWS)"
    echo "SELECT 1 / (a.version = b.version)::int AS same_version, a.val + b.val FROM $s.$(tname "$TABLES") a JOIN $s.t001 b USING (id) WHERE a.id = :id;"
  } | putf "${f}_2.sql"
  { echo "\\set id random(1, $ROWS)"
    echo "SELECT v_a, v_b, total FROM reporting.totals WHERE id = :id;"
  } | putf "${f}_3.sql"
}
reader_scripts mart "$WORK/read_elt"
reader_scripts mart_h "$WORK/read_hand"

# ---------------------------------------------------------------------
# Switches: one psql session each; prints WINDOW t0 t1 (server clock, µs),
# the \timing of the switch, and SEEN <table version> <dependent view version>
# ---------------------------------------------------------------------
switch_sql() {  # contender kind cycle
  local c=$1 k=$2 n=$3 s q
  if [ "$c" = elt ]; then
    s=mart
    if [ "$k" = 1 ]; then q="SELECT elt.deploy_promote('mart', 'bench cycle $n')"
    else q="SELECT elt.deploy_rollback('mart', 'bench cycle $n')"; fi
  else
    s=mart_h
    if [ "$k" = 1 ]; then q="BEGIN\\; ALTER SCHEMA mart_h RENAME TO mart_h_old\\; ALTER SCHEMA mart_h_next RENAME TO mart_h\\; COMMIT"
    else q="BEGIN\\; ALTER SCHEMA mart_h RENAME TO mart_h_next\\; ALTER SCHEMA mart_h_old RENAME TO mart_h\\; COMMIT"; fi
  fi
  cat <<SQL
SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS t0 \\gset
\\timing on
$q;
\\timing off
SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS t1 \\gset
\\echo WINDOW :t0 :t1
SELECT 'SEEN', (SELECT version FROM $s.t001 WHERE id = 1), (SELECT v_a FROM reporting.totals WHERE id = 1);
SQL
  if [ "$c" = elt ]; then
    echo "SELECT 'LOCKS', details->>'lock_attempts' FROM elt.deployment_events ORDER BY event_id DESC LIMIT 1;"
  else
    echo "SELECT 'LOCKS', '-';"
  fi
}

# the candidate of an elt cycle: prepared, built with version 2, analyzed
elt_build() {
  local cand i
  cand=$(psql_db bench -c "SELECT elt.deploy_prepare('mart')")
  { for i in $(seq 1 "$TABLES"); do
      echo "INSERT INTO $cand.$(tname "$i") SELECT id, 2, val, label FROM mart.$(tname "$i");"
    done
    echo "ANALYZE;"
  } | psql_db bench >/dev/null
}

sleep_until() {  # start_ns seconds
  local left
  left=$(awk -v a="$1" -v b="$(date +%s%N)" -v s="$2" 'BEGIN {l = s - (b - a) / 1e9; printf "%.3f", (l > 0 ? l : 0)}')
  sleep "$left"
}

RES="$WORK/switches.txt"       # contender mode cycle kind ms t0 t1 table_v view_v expected lock_attempts
RUNS="$WORK/runs.txt"          # contender mode run failed aborted tps
echo -n | putf "$RES"
echo -n | putf "$RUNS"
ERRS="$WORK/errors.txt"
echo -n | putf "$ERRS"

# pgbench run in the background: contender mode run seconds
start_readers() {
  local c=$1 m=$2 r=$3 secs=$4 db=bench
  [ "$c" = hand ] && db=peer
  as_postgres sh -c 'out=$1; err=$2; shift 2; exec "$@" >"$out" 2>"$err"' sh "$WORK/pgb.out" "$WORK/pgb.err" \
    "$PG_BIN/pgbench" -h "$WORK" -p "$PORT" -n -c "$CLIENTS" -j 2 -R "$RATE" -M "${m%+long}" \
    -T "$(awk -v s="$secs" 'BEGIN {printf "%d", s + 0.999}')" --random-seed="$r" --failures-detailed \
    -l --log-prefix="$WORK/log_${c}_${m}_${r}" \
    -f "$WORK/read_${c}_0.sql@60" -f "$WORK/read_${c}_1.sql@29" -f "$WORK/read_${c}_2.sql@$W_REVERSE" \
    -f "$WORK/read_${c}_3.sql@10" "$db" &
  PGBENCH_PID=$!
}
finish_readers() {  # contender mode run
  local rc=0 failed aborted tps pout perr
  wait "$PGBENCH_PID" || rc=$?
  PGBENCH_PID=""
  pout=$(get "$WORK/pgb.out"); perr=$(get "$WORK/pgb.err")
  failed=$(awk '/number of failed transactions/ {print $5; exit}' <<<"$pout")
  aborted=$(grep -c 'aborted in command' <<<"$perr" || true)
  tps=$(awk '/^tps = / {printf "%.0f", $3; exit}' <<<"$pout")
  echo "$1 $2 $3 ${failed:-?} $aborted ${tps:-?} $rc" | as_postgres sh -c "cat >> '$RUNS'"
  if [ "$aborted" != 0 ] || [ "${failed:-0}" != 0 ]; then
    grep -E 'aborted|ERROR|error' <<<"$perr" | sed "s/^/$1 $2 run $3: /" | as_postgres sh -c "cat >> '$ERRS'"
    log "$1 $2 run $3: ${failed:-?} failed transactions, $aborted aborted clients"
  fi
  if [ "$rc" != 0 ] && [ "$aborted" = 0 ]; then
    echo "$perr" >&2
    echo "deploy.sh: pgbench failed" >&2
    exit 1
  fi
}

do_switch() {  # contender mode cycle kind(1|2)
  local c=$1 m=$2 n=$3 k=$4 db=bench out ms w seen expected locks
  [ "$c" = hand ] && db=peer
  out=$(switch_sql "$c" "$k" "$n" | psql_db "$db" 2>&1) || { echo "$out" >&2; echo "deploy.sh: switch failed ($c $m cycle $n)" >&2; exit 1; }
  ms=$(grep -o 'Time: [0-9.]* ms' <<<"$out" | head -n 1 | awk '{print $2}')
  w=$(awk '/^WINDOW/ {print $2, $3}' <<<"$out")
  seen=$(awk -F'|' '/^SEEN/ {print $2, $3}' <<<"$out")
  locks=$(awk -F'|' '/^LOCKS/ {print $2}' <<<"$out")
  expected=$(( k == 1 ? 2 : 1 ))
  echo "$c $m $n $k $ms $w $seen $expected $locks" | as_postgres sh -c "cat >> '$RES'"
}

for m in $MODES; do
  for c in elt hand; do
    log "$c, -M $m: baseline ${BASE_S}s"
    start_readers "$c" "$m" 0 "$BASE_S"
    finish_readers "$c" "$m" 0
    for n in $(seq 1 "$CYCLES"); do
      [ "$c" = elt ] && elt_build
      start_readers "$c" "$m" "$n" "$RUN_S"
      t=$(date +%s%N)
      sleep_until "$t" "$SW1_AT"
      do_switch "$c" "$m" "$n" 1
      sleep_until "$t" "$SW2_AT"
      do_switch "$c" "$m" "$n" 2
      finish_readers "$c" "$m" "$n"
      log "$c -M $m cycle $n: $(get "$RES" | awk -v c="$c" -v m="$m" -v n="$n" '$1 == c && $2 == m && $3 == n {printf "%s ms  ", $5}')"
    done
  done
done

# One more cycle per contender with a long reader: a report query that holds
# the middle table (or view) for LONG_S seconds, started just before the
# switch.  The switch waits for it (elt) or not (hand-made).
LONG_MODE=${MODES%% *}
LONG_TABLE=$(tname $(( (TABLES + 1) / 2 )))
if [ "$LONG_S" != 0 ]; then
  for c in elt hand; do
    s=mart db=bench
    [ "$c" = hand ] && s=mart_h db=peer
    [ "$c" = elt ] && elt_build
    start_readers "$c" "$LONG_MODE+long" 1 "$(awk -v l="$LONG_S" 'BEGIN {print l + 4}')"
    t=$(date +%s%N)
    sleep_until "$t" 0.8
    psql_db "$db" -c "SELECT 'LONG', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, pg_sleep($LONG_S), (extract(epoch FROM clock_timestamp()) * 1000000)::bigint FROM $s.$LONG_TABLE LIMIT 1" >/dev/null &
    LONG_PID=$!
    sleep_until "$t" 1.0
    do_switch "$c" "$LONG_MODE+long" 1 1
    wait "$LONG_PID"
    sleep_until "$t" "$(awk -v l="$LONG_S" 'BEGIN {print l + 2}')"
    do_switch "$c" "$LONG_MODE+long" 1 2
    finish_readers "$c" "$LONG_MODE+long" 1
    log "$c with a ${LONG_S}s reader: $(get "$RES" | awk -v c="$c" -v m="$LONG_MODE+long" '$1 == c && $2 == m {printf "%s ms  ", $5}')"
  done
fi

# Consumers of other kinds, without load: one session prepares a statement
# (generic plan) and calls a PL/pgSQL function (cached plan) before the
# switch; another session switches (psql's \!); the first reads again.
consumers_check() {  # contender
  local c=$1 s=mart db=bench q1 q2 sw
  [ "$c" = hand ] && s=mart_h db=peer
  [ "$c" = elt ] && elt_build
  sw="$PG_BIN/psql -h $WORK -p $PORT -d $db -X -q -At -v ON_ERROR_STOP=1 -c"
  if [ "$c" = elt ]; then
    q1="SELECT elt.deploy_promote('mart', 'consumers check')"
    q2="SELECT elt.deploy_rollback('mart', 'consumers check')"
  else
    q1="BEGIN; ALTER SCHEMA mart_h RENAME TO mart_h_old; ALTER SCHEMA mart_h_next RENAME TO mart_h; COMMIT"
    q2="BEGIN; ALTER SCHEMA mart_h RENAME TO mart_h_next; ALTER SCHEMA mart_h_old RENAME TO mart_h; COMMIT"
  fi
  psql_db "$db" <<SQL
SET plan_cache_mode = force_generic_plan;
PREPARE q(int) AS SELECT version FROM $s.t001 WHERE id = \$1;
EXECUTE q(1) \\gset p_
SELECT reporting.v_plpgsql();
SELECT 'CONS', 'before', 1, (SELECT version FROM $s.t001 WHERE id = 1), :p_version, reporting.v_plpgsql(), reporting.v_atomic(), (SELECT v_a FROM reporting.totals WHERE id = 1);
\\! $sw "$q1" >/dev/null
EXECUTE q(1) \\gset p_
SELECT 'CONS', 'switch', 2, (SELECT version FROM $s.t001 WHERE id = 1), :p_version, reporting.v_plpgsql(), reporting.v_atomic(), (SELECT v_a FROM reporting.totals WHERE id = 1);
\\! $sw "$q2" >/dev/null
EXECUTE q(1) \\gset p_
SELECT 'CONS', 'switch back', 1, (SELECT version FROM $s.t001 WHERE id = 1), :p_version, reporting.v_plpgsql(), reporting.v_atomic(), (SELECT v_a FROM reporting.totals WHERE id = 1);
SQL
}
CONS_ELT=$(consumers_check elt | grep '^CONS')
CONS_HAND=$(consumers_check hand | grep '^CONS')

# ---------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------
# per switch, appended to its line: the longest time a reader transaction
# overlapping [t0, t1] took to run (ms: pgbench's latency minus its schedule
# lag), the longest latency counted from the scheduled start (ms: includes
# the wait of the transactions queued behind it in the same client), and
# the number of reader transactions overlapping the switch.  pgbench's log:
# client_id transaction_no time(µs) script_no epoch µs schedule_lag(µs).
analyse_switches() {
  local line c m n
  get "$RES" | while read -r line; do
    set -- $line
    c=$1 m=$2 n=$3
    get "$WORK/log_${c}_${m}_${n}.*" | awk -v t0="$6" -v t1="$7" -v line="$line" '
      $3 ~ /^[0-9]+$/ { lag = ($7 ~ /^[0-9]+$/) ? $7 : 0; run = $3 - lag
                        e = $5 * 1000000 + $6
                        if (e - run <= t1 && e >= t0) { k++; if (run > mx) mx = run; if (run > ms[$4]) ms[$4] = run; if (run > 100000) h++ }
                        if (e - $3 <= t1 && e >= t0) { if ($3 > ml) ml = $3 } }
      END { printf "%s %.1f %.1f %d %.1f %.1f %.1f %.1f %d\n", line, mx / 1000, ml / 1000, k, ms[0] / 1000, ms[1] / 1000, ms[2] / 1000, ms[3] / 1000, h }'
  done
}
SW=$(analyse_switches)

# latency percentiles of the baseline runs, ms: contender mode -> "p50 p99 p99.9 max"
baseline_stats() {  # contender mode
  get "$WORK/log_$1_$2_0.*" | awk '$3 ~ /^[0-9]+$/ {print ($3 - (($7 ~ /^[0-9]+$/) ? $7 : 0)) / 1000}' | sort -g |
    awk '{a[NR] = $1} END {printf "%.2f %.2f %.2f %.1f", a[int(NR * 0.5) + 1], a[int(NR * 0.99) + 1], a[int(NR * 0.999) + 1], a[NR]}'
}
col() { awk -v c="$1" -v m="$2" -v k="$3" -v f="$4" '$1 == c && $2 == m && (k == 0 || $4 == k) {print $f}' <<<"$SW"; }
maxof() { sort -g | tail -n 1; }

RUNS_TXT=$(get "$RUNS")
ERRS_TXT=$(get "$ERRS")

label() { if [ "$1" = elt ]; then echo "elt.deploy_promote / deploy_rollback"; else echo "hand-made swap (2× ALTER SCHEMA RENAME)"; fi; }
kname() { if [ "$1" = elt ]; then [ "$2" = 1 ] && echo promote || echo rollback; else [ "$2" = 1 ] && echo swap || echo "swap back"; fi; }

echo
echo "### Switch time and the longest reader wait ($CYCLES cycles, $TABLES tables × $ROWS rows, $CLIENTS readers at $RATE tps)"
echo
echo "Median and max over the $CYCLES switches of each kind, ms. *Switch*: psql's \\timing of the switch. *Longest wait*: the longest time one reader transaction overlapping the switch took to run. *From schedule*: the same, counted from the transaction's scheduled start (it includes the wait of the transactions queued behind a held-up one in the same client). Baseline: the readers without any switch (run time)."
echo
echo "| contender | -M | switch | switch, median | switch, max | longest wait, median | longest wait, max | from schedule, max | reader transactions overlapping, median | lock attempts, max | baseline p50 / p99 / p99.9 / max |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for m in $MODES; do
  for c in elt hand; do
    base=$(baseline_stats "$c" "$m" | awk '{printf "%s / %s / %s / %s", $1, $2, $3, $4}')
    for k in 1 2; do
      echo "| $(label "$c") | $m | $(kname "$c" "$k") | $(col "$c" "$m" "$k" 5 | median) | $(col "$c" "$m" "$k" 5 | maxof) | $(col "$c" "$m" "$k" 12 | median) | $(col "$c" "$m" "$k" 12 | maxof) | $(col "$c" "$m" "$k" 13 | maxof) | $(col "$c" "$m" "$k" 14 | median) | $(col "$c" "$m" "$k" 11 | maxof) |  $base |"
    done
  done
done
echo
echo "Longest wait by the kind of reader query (max over all switches, ms; the scripts' weights: 60 / 29 / $W_REVERSE / 10):"
echo
echo "| contender | -M | switch | ${READER_KINDS[0]} | ${READER_KINDS[1]} | ${READER_KINDS[2]} | ${READER_KINDS[3]} |"
echo "|---|---|---|---|---|---|---|"
for m in $MODES; do
  for c in elt hand; do
    for k in 1 2; do
      echo "| $(label "$c") | $m | $(kname "$c" "$k") | $(col "$c" "$m" "$k" 15 | maxof) | $(col "$c" "$m" "$k" 16 | maxof) | $(col "$c" "$m" "$k" 17 | maxof) | $(col "$c" "$m" "$k" 18 | maxof) |"
    done
  done
done
echo
echo "Every switch (contender, -M, cycle, switch: time ms / longest wait ms / lock attempts):"
echo
echo '```'
for m in $MODES; do
  for c in elt hand; do
    echo "$c -M $m: $(awk -v c="$c" -v m="$m" '$1 == c && $2 == m {printf "%s%d%s %s/%s/%s", (n++ ? "  " : ""), $3, ($4 == 1 ? "a" : "b"), $5, $12, $11}' <<<"$SW")"
  done
done
echo '```'
echo "(a: promote, resp. swap; b: rollback, resp. swap back)"
if [ "$LONG_S" != 0 ]; then
  echo
  echo "### With a long reader (-M $LONG_MODE)"
  echo
  echo "One more cycle per contender: at 0.8 s a report query holds $LONG_TABLE for $LONG_S s (\`SELECT pg_sleep($LONG_S) FROM <interface>.$LONG_TABLE LIMIT 1\`); the switch starts at 1.0 s; the switch back at $(awk -v l="$LONG_S" 'BEGIN {print l + 2}') s, after the report ended. Times in ms."
  echo
  echo "| contender | switch | switch time | lock attempts | longest wait | from schedule | reader transactions overlapping | of which ran > 100 ms | ${READER_KINDS[0]} | ${READER_KINDS[1]} | ${READER_KINDS[3]} |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for c in elt hand; do
    for k in 1 2; do
      awk -v c="$c" -v m="$LONG_MODE+long" -v k="$k" -v lab="$(label "$c")" -v kn="$(kname "$c" "$k")" \
        '$1 == c && $2 == m && $4 == k {printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", lab, kn, $5, $11, $12, $13, $14, $19, $15, $16, $18}' <<<"$SW"
    done
  done
fi

echo
echo "### Failed reader queries"
echo
echo "| contender | -M | runs | reader transactions | failed transactions | aborted clients | tps (target $RATE) |"
echo "|---|---|---|---|---|---|---|"
TAGS="$MODES"; [ "$LONG_S" != 0 ] && TAGS="$TAGS $LONG_MODE+long"
for m in $TAGS; do
  for c in elt hand; do
    txns=$(get "$WORK/log_${c}_${m}_*.*" | awk '$3 ~ /^[0-9]+$/' | wc -l)
    awk -v c="$c" -v m="$m" -v lab="$(label "$c")" -v txns="$txns" '
      $1 == c && $2 == m { r++; f += ($4 == "?" ? 0 : $4); a += $5; if ($6 != "?") { t += $6; tn++ } }
      END { printf "| %s | %s | %d | %d | %d | %d | %.0f |\n", lab, m, r, txns, f, a, (tn ? t / tn : 0) }' <<<"$RUNS_TXT"
  done
done
if [ -n "$ERRS_TXT" ]; then
  echo
  echo "Errors seen by readers (first 10):"
  echo
  echo '```'
  head -n 10 <<<"$ERRS_TXT"
  echo '```'
fi
echo
echo "### What readers see right after each switch (row 1, column version)"
echo
echo "\`t001\`: the interface table (elt: view mart.t001; hand-made: mart_h.t001). \`reporting.totals\`: the dependent view on t001 ⋈ t002, made before the first switch."
echo
echo "| contender | -M | cycle | switch | should be live | t001 | reporting.totals |"
echo "|---|---|---|---|---|---|---|"
for m in $MODES; do
  for c in elt hand; do
    awk -v c="$c" -v m="$m" '$1 == c && $2 == m && $3 <= 2' <<<"$SW" | while read -r c_ m_ n k ms t0 t1 tv dv exp rest; do
      mark=""; [ "$dv" != "$exp" ] && mark=" **wrong**"
      echo "| $(label "$c") | $m | $n | $(kname "$c" "$k") | $exp | $tv | $dv$mark |"
    done
  done
done
echo
echo "| contender | -M | switches | t001 wrong | reporting.totals wrong |"
echo "|---|---|---|---|---|"
for m in $TAGS; do
  for c in elt hand; do
    awk -v c="$c" -v m="$m" -v lab="$(label "$c")" '$1 == c && $2 == m { n++; if ($8 != $10) a++; if ($9 != $10) b++ }
      END { printf "| %s | %s | %d | %d | %d |\n", lab, m, n, a, b }' <<<"$SW"
  done
done

echo
echo "### Other consumers (no load): version of row 1 of t001 as each reads it"
echo
echo "One session prepares \`SELECT version FROM <interface>.t001 WHERE id = \$1\` with \`plan_cache_mode = force_generic_plan\` and calls a PL/pgSQL function (its plan cached) before the switch; another session switches; the first reads again. The SQL function has a \`BEGIN ATOMIC\` body (parsed when made, like a view)."
echo
echo "| contender | after | should be | query | prepared statement | PL/pgSQL function | SQL function (BEGIN ATOMIC) | dependent view |"
echo "|---|---|---|---|---|---|---|---|"
for c in elt hand; do
  [ "$c" = elt ] && v=$CONS_ELT || v=$CONS_HAND
  awk -F'|' -v lab="$(label "$c")" '{
      printf "| %s | %s | %s |", lab, $2, $3
      for (i = 4; i <= 8; i++) printf " %s%s |", $i, ($i != $3 ? " **wrong**" : "")
      printf "\n" }' <<<"$v"
done

echo
bench_check_library
bench_load_end
