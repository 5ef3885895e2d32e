#!/usr/bin/env bash
# Benchmark of the backfill engine (issue: backfills).
#
# One backfill, the same for every contender, on a table of 10 million rows
# keyed by bigint:
#
#   orders (order_id bigint PRIMARY KEY, amount numeric, total_cents bigint, note text)
#   UPDATE orders SET total_cents = amount * 100 WHERE order_id >= $1 AND order_id < $2
#
# Contenders:
#   update   one plain UPDATE of the whole table (the peer every ratio is to);
#   keyset   a hand-written PL/pgSQL keyset loop, a PROCEDURE that COMMITs
#            every 10000 rows;
#   pgroll   1000-row batches in pgroll's form, UPDATE ... WHERE id IN
#            (SELECT id ... WHERE id > last ORDER BY id LIMIT 1000) RETURNING
#            id, next batch after the greatest id returned, a COMMIT per batch
#            (also a PROCEDURE);
#   elt1     elt.backfill_create + elt.backfill_start(name, 1): one worker;
#   elt2     the same with two workers;
#   eltrun   the same, run in the session with CALL elt.backfill_run(name).
# elt runs with its default options (chunk_rows 10000, target_chunk_ms 200,
# lock_timeout_ms 1000).
#
# Before each contender the table is rebuilt from a template (CREATE TABLE AS
# in the template's physical order, primary key, VACUUM (FREEZE, ANALYZE),
# CHECKPOINT), so every contender starts from the same physical state;
# autovacuum is off for orders so that it does not start in some runs and
# not in others.
#
# During each contender, and alone for a baseline, a write load runs on the
# same table: pgbench -M prepared -R 200 -c 2 -j 2, single-row UPDATEs of
# random rows (UPDATE orders SET note = 'x' WHERE order_id = :id).  Its
# throughput and latency (from pgbench's per-transaction log, latency counted
# from the scheduled start, so waiting for a row lock counts) are measured
# over exactly the contender's run.  --latency-limit 1000 makes pgbench skip
# transactions that could not even start within 1 s of their schedule instead
# of firing a backlog afterwards; skipped transactions are reported.
#
# Uses the INSTALLED build of elt_governance (it neither builds nor installs
# it) on a throwaway cluster with the library preloaded and shared_buffers
# 2GB, max_wal_size 8GB, checkpoint_timeout 30min.
#
# Usage: bash bench/backfill.sh [rows] [baseline_seconds]
#        CONTENDERS="update elt1" bash bench/backfill.sh   # a subset
. "$(dirname "$0")/lib.sh"

ROWS="${1:-10000000}"
BASELINE_S="${2:-30}"
CONTENDERS="${CONTENDERS:-update keyset pgroll elt1 elt2 eltrun}"
PORT="${BENCH_PORT:-5497}"
RATE=200                # pgbench -R
LATENCY_LIMIT=1000      # pgbench --latency-limit, ms
WARMUP_S=2              # pgbench runs this long before a contender starts
MARGIN_S=3              # ... and this long after it ends
ELT_TIMEOUT_S="${ELT_TIMEOUT_S:-900}"    # give up on an elt run after this
PGBENCH_MAX_S=3600      # pgbench -T: it is stopped earlier (SIGALRM), this is a backstop

bench_require_installed 0.3.0 0.2.0--0.3.0
bench_start_cluster "$PORT"
bench_configure <<CONF
shared_buffers = 2GB
max_wal_size = 8GB
checkpoint_timeout = 30min
CONF
as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d postgres -X -q -v ON_ERROR_STOP=1 \
  -c "CREATE DATABASE bench" >/dev/null

PGBENCH_OPTS="-n -M prepared -R $RATE -c 2 -j 2 --latency-limit=$LATENCY_LIMIT"
echo "# command: bash bench/backfill.sh $*  (rows=$ROWS baseline=${BASELINE_S}s contenders: $CONTENDERS)"
echo "# write load: pgbench $PGBENCH_OPTS -T <run> -l -f writers.sql, writers.sql:"
echo "#   \\set id random(1, $ROWS)"
echo "#   UPDATE orders SET note = 'x' WHERE order_id = :id;"
echo "# PostgreSQL $(psql_q -c 'SHOW server_version'), elt_governance $(psql_q -c "CREATE EXTENSION elt_governance" -c "SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'") $(bench_build)"
echo "# tree: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src sql 2>/dev/null || echo ' with uncommitted changes in src/ or sql/'); $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB; shared_buffers $(psql_q -c 'SHOW shared_buffers'), max_wal_size $(psql_q -c 'SHOW max_wal_size'), checkpoint_timeout $(psql_q -c 'SHOW checkpoint_timeout')"
bench_load_start

##############################################################################
# Setup: the template table, the loops, the side tables
##############################################################################
log "building the template table ($ROWS rows)"
t=$(now_s)
psql_q <<SQL
CREATE TABLE orders_template AS
  SELECT g::bigint AS order_id, round((g % 100000) / 100.0 + 1, 2) AS amount,
         NULL::bigint AS total_cents, 'n' || g AS note
  FROM generate_series(1, $ROWS) g;
VACUUM (FREEZE, ANALYZE) orders_template;

-- per-batch times of the contenders other than elt (elt has elt.backfill_chunks)
CREATE UNLOGGED TABLE bench_batches (contender text, batch_no int, rows bigint, ms float8);
-- pgbench's per-transaction log, one row per transaction
CREATE UNLOGGED TABLE bench_tx (contender text, client int, tx bigint, latency text,
                                script int, epoch bigint, us bigint, lag bigint);

-- (b) hand-written keyset loop: 10000 keys at a time from the primary key
-- index, one UPDATE and one COMMIT per batch
CREATE PROCEDURE keyset_loop(batch int) LANGUAGE plpgsql AS \$\$
DECLARE
  lo bigint := (SELECT min(order_id) FROM orders) - 1;
  hi bigint;
  n bigint;
  b int := 0;
  t timestamptz;
BEGIN
  LOOP
    t := clock_timestamp();
    SELECT max(order_id) INTO hi
    FROM (SELECT order_id FROM orders WHERE order_id > lo ORDER BY order_id LIMIT batch) s;
    EXIT WHEN hi IS NULL;
    UPDATE orders SET total_cents = amount * 100 WHERE order_id > lo AND order_id <= hi;
    GET DIAGNOSTICS n = ROW_COUNT;
    b := b + 1;
    INSERT INTO bench_batches VALUES ('keyset', b, n, extract(epoch FROM clock_timestamp() - t) * 1000);
    COMMIT;
    lo := hi;
  END LOOP;
  COMMIT;
END \$\$;

-- (c) pgroll's batch form: UPDATE ... WHERE id IN (SELECT id ... LIMIT 1000)
-- RETURNING id, the next batch after the greatest id returned; a COMMIT per
-- batch
CREATE PROCEDURE pgroll_batches(batch int) LANGUAGE plpgsql AS \$\$
DECLARE
  last bigint := (SELECT min(order_id) FROM orders) - 1;
  hi bigint;
  n bigint;
  b int := 0;
  t timestamptz;
BEGIN
  LOOP
    t := clock_timestamp();
    WITH u AS (
      UPDATE orders SET total_cents = amount * 100
      WHERE order_id IN (SELECT order_id FROM orders WHERE order_id > last
                         ORDER BY order_id LIMIT batch)
      RETURNING order_id)
    SELECT max(order_id), count(*) INTO hi, n FROM u;
    EXIT WHEN n = 0;
    b := b + 1;
    INSERT INTO bench_batches VALUES ('pgroll', b, n, extract(epoch FROM clock_timestamp() - t) * 1000);
    COMMIT;
    last := hi;
  END LOOP;
  COMMIT;
END \$\$;
SQL
log "template built in $(sub "$(now_s)" "$t") s"

printf '\\set id random(1, %s)\nUPDATE orders SET note = '"'x'"' WHERE order_id = :id;\n' "$ROWS" | put writers.sql

# the table as the template has it, in the same physical order, every time
rebuild() {
  psql_q <<'SQL'
SET client_min_messages = warning;
SET synchronize_seqscans = off;
DROP TABLE IF EXISTS orders;
CREATE TABLE orders AS SELECT * FROM orders_template;
ALTER TABLE orders ADD PRIMARY KEY (order_id);
ALTER TABLE orders SET (autovacuum_enabled = off);
VACUUM (FREEZE, ANALYZE) orders;
CHECKPOINT;
SQL
}

# --- the write load ---------------------------------------------------------
PGB_PID=""
PGB_WAIT=""
pgbench_start() {   # contender
  as_postgres sh -c "rm -f '$WORK'/pgb_$1.*"
  # sh execs pgbench, so the pid it writes is pgbench's; statement_timeout
  # bounds any single write (the plain UPDATE blocks writers for its whole run)
  as_postgres sh -c "echo \$\$ > '$WORK/pgbench.pid'; cd '$WORK'; \
    PGOPTIONS='-c statement_timeout=${ELT_TIMEOUT_S}s' exec '$PG_BIN/pgbench' -h '$WORK' -p $PORT \
    $PGBENCH_OPTS -T $PGBENCH_MAX_S -l --log-prefix='$WORK/pgb_$1' -f '$WORK/writers.sql' bench" \
    >"$WORK/pgbench_$1.out" 2>&1 &
  PGB_WAIT=$!
  sleep 0.5
  PGB_PID=$(cat "$WORK/pgbench.pid")
  sleep "$WARMUP_S"
}
# end pgbench the way -T does (its SIGALRM handler), so that it finishes its
# transactions in flight and writes its logs; load them
pgbench_stop() {   # contender
  sleep "$MARGIN_S"
  kill -ALRM "$PGB_PID" 2>/dev/null || true
  if ! wait "$PGB_WAIT"; then
    log "pgbench failed:"; cat "$WORK/pgbench_$1.out" >&2
  fi
  local f
  for f in "$WORK"/pgb_"$1".*; do
    awk -v c="$1" 'BEGIN {OFS = "\t"} {print c, $1, $2, $3, $4, $5, $6, ($7 == "" ? "\\N" : $7)}' "$f" \
      | psql_q -c "\\copy bench_tx FROM pstdin"
  done
}
# tps over [t0, t1] (completed transactions that ended in it), and the
# latency of the transactions scheduled in it (ended up to MARGIN_S later)
WRITER_STATS_SQL=$(cat <<'SQL'
WITH x AS (
  SELECT latency = 'skipped' AS skipped,
         CASE WHEN latency <> 'skipped' THEN latency::bigint / 1000.0 END AS ms,
         epoch + us / 1e6 AS ended
  FROM bench_tx WHERE contender = :'c'),
w AS (
  SELECT count(*) FILTER (WHERE NOT skipped AND ended BETWEEN :t0 AND :t1) AS done,
         count(*) FILTER (WHERE skipped AND ended BETWEEN :t0 AND :t1 + :m) AS skipped,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)
           FILTER (WHERE NOT skipped AND ended - ms / 1000 BETWEEN :t0 AND :t1) AS p50,
         percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)
           FILTER (WHERE NOT skipped AND ended - ms / 1000 BETWEEN :t0 AND :t1) AS p99,
         max(ms) FILTER (WHERE NOT skipped AND ended - ms / 1000 BETWEEN :t0 AND :t1) AS max,
         count(*) FILTER (WHERE NOT skipped AND ended - ms / 1000 BETWEEN :t0 AND :t1
                          AND ms > 100) AS over100,
         count(*) FILTER (WHERE NOT skipped AND ended - ms / 1000 BETWEEN :t0 AND :t1
                          AND ms > :lim) AS late
  FROM x)
SELECT round(done / (:t1 - :t0), 1), round(p50::numeric, 1), round(p99::numeric, 1),
       round(max::numeric, 0), over100, late, skipped
FROM w
SQL
)
writer_stats() {   # contender t0 t1 -> "tps p50 p99 max over100 late skipped"
  psql_q -F' ' -v c="$1" -v t0="$2" -v t1="$3" -v m="$MARGIN_S" -v lim="$LATENCY_LIMIT" <<<"$WRITER_STATS_SQL"
}

declare -A TOTAL WR BATCH
baseline() {   # label
  rebuild
  log "baseline $1: write load alone for ${BASELINE_S}s"
  pgbench_start "$1"
  local t0 t1
  t0=$(now_s); sleep "$BASELINE_S"; t1=$(now_s)
  pgbench_stop "$1"
  WR[$1]=$(writer_stats "$1" "$t0" "$t1")
  log "baseline $1: ${WR[$1]}"
}

# --- the contenders ---------------------------------------------------------
ELT_SQL='UPDATE orders SET total_cents = amount * 100 WHERE order_id >= $1 AND order_id < $2'
# wait for an elt backfill run by workers to end; 1 if it does not
elt_wait() {   # name deadline
  local s
  while :; do
    s=$(psql_q -c "SELECT state FROM elt.backfill_status WHERE name = '$1'")
    case "$s" in
      finished) return 0 ;;
      failed|cancelled|paused|interrupted) log "elt backfill $1 ended $s"; return 1 ;;
    esac
    if [ "$(date +%s)" -ge "$2" ]; then log "elt backfill $1 still $s after ${ELT_TIMEOUT_S}s"; return 1; fi
    sleep 1   # the end time is finished_at; polling more often costs CPU the worker needs
  done
}
elt_report_failure() {   # name
  echo "## elt backfill $1 did not finish"
  psql_q -P pager=off -c "SELECT * FROM elt.backfill_status WHERE name = '$1'" -x
  psql_q -c "SELECT chunk_no, state, attempts, last_error FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
             WHERE b.name = '$1' AND (c.state <> 'done' OR c.last_error IS NOT NULL) ORDER BY chunk_no LIMIT 20"
  echo "--- last 40 lines of the server log ---"
  tail -n 40 "$WORK/server.log"
  psql_q -c "SELECT elt.backfill_cancel('$1')" >/dev/null 2>&1 || true
}

run_contender() {   # name -> sets T0 T1 (wall clock) or returns 1
  local c=$1
  case "$c" in
    update)
      T0=$(now_s)
      psql_q -c "UPDATE orders SET total_cents = amount * 100"
      T1=$(now_s)
      psql_q -c "INSERT INTO bench_batches VALUES ('update', 1, $ROWS, ($T1 - $T0) * 1000)" ;;
    keyset)
      T0=$(now_s); psql_q -c "CALL keyset_loop(10000)"; T1=$(now_s) ;;
    pgroll)
      T0=$(now_s); psql_q -c "CALL pgroll_batches(1000)"; T1=$(now_s) ;;
    elt1|elt2)
      psql_q -c "SELECT elt.backfill_create('$c', 'orders', \$q\$$ELT_SQL\$q\$)" >/dev/null
      T0=$(now_s)
      psql_q -c "SELECT elt.backfill_start('$c', ${c#elt})" >/dev/null
      if ! elt_wait "$c" $(( $(date +%s) + ELT_TIMEOUT_S )); then
        T1=$(now_s); elt_report_failure "$c"; return 1
      fi
      # the moment the backfill's last transaction committed
      T1=$(psql_q -c "SELECT extract(epoch FROM finished_at) FROM elt.backfills WHERE name = '$c'") ;;
    eltrun)
      psql_q -c "SELECT elt.backfill_create('$c', 'orders', \$q\$$ELT_SQL\$q\$)" >/dev/null
      T0=$(now_s)
      if ! psql_q -c "SET statement_timeout = '${ELT_TIMEOUT_S}s'" -c "CALL elt.backfill_run('$c')"; then
        T1=$(now_s); elt_report_failure "$c"; return 1
      fi
      T1=$(now_s)
      if [ "$(psql_q -c "SELECT state FROM elt.backfill_status WHERE name = '$c'")" != finished ]; then
        elt_report_failure "$c"; return 1
      fi ;;
  esac
}

# how many chunks (batches), p50 p99 max of their statement times, and their sum
batch_stats() {   # contender
  case "$1" in
    elt*) psql_q -F' ' -c "SELECT count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)::numeric, 1),
                                  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms)::numeric, 1),
                                  round(max(duration_ms)::numeric, 1), round((sum(duration_ms) / 1000)::numeric, 1)
                           FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
                           WHERE b.name = '$1' AND c.state = 'done'" ;;
    *) psql_q -F' ' -c "SELECT count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                               round(max(ms)::numeric, 1), round((sum(ms) / 1000)::numeric, 1)
                        FROM bench_batches WHERE contender = '$1'" ;;
  esac
}

baseline base_start
for c in $CONTENDERS; do
  rebuild
  log "$c: start (load average $(cut -d' ' -f1 /proc/loadavg))"
  pgbench_start "$c"
  if run_contender "$c"; then ok=1; else ok=0; fi
  pgbench_stop "$c"
  WR[$c]=$(writer_stats "$c" "$T0" "$T1")
  if [ "$ok" = 1 ]; then
    TOTAL[$c]=$(sub "$T1" "$T0")
    BATCH[$c]=$(batch_stats "$c")
    wrong=$(psql_q -c "SELECT count(*) FROM orders WHERE total_cents IS DISTINCT FROM amount * 100")
    [ "$wrong" = 0 ] || log "$c: $wrong rows NOT backfilled"
    log "$c: ${TOTAL[$c]} s; batches ${BATCH[$c]}; writers ${WR[$c]}; rows left undone: $wrong"
  else
    TOTAL[$c]=DNF
    BATCH[$c]="- - - - -"
    log "$c: did not finish"
  fi
done
baseline base_end

##############################################################################
# Results
##############################################################################
read -r base_tps _ <<<"${WR[base_start]}"
upd=${TOTAL[update]:-}
echo
echo "## Backfill of $ROWS rows: time, chunk/batch statement time, and a concurrent write load"
echo
echo "Write load alone (pgbench -R $RATE, ${BASELINE_S}s): at the start $(cut -d' ' -f1 <<<"${WR[base_start]}") tps (latency p50/p99/max ms $(cut -d' ' -f2-4 <<<"${WR[base_start]}" | tr ' ' /)),"
echo "at the end $(cut -d' ' -f1 <<<"${WR[base_end]}") tps ($(cut -d' ' -f2-4 <<<"${WR[base_end]}" | tr ' ' /)). Percentages are of the start baseline."
echo
echo "| contender | total s | × plain UPDATE | chunks / batches | chunk p50 ms | chunk p99 ms | chunk max ms | Σ chunk statements s | writers tps | % of baseline | writer latency p50 / p99 / max ms | writes > 100 ms | > ${LATENCY_LIMIT} ms | skipped |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
label() {
  case "$1" in
    update) echo "plain UPDATE (one transaction)" ;;
    keyset) echo "PL/pgSQL keyset loop, 10000 rows, COMMIT each" ;;
    pgroll) echo "pgroll-style 1000-row batches, COMMIT each" ;;
    elt1) echo "elt.backfill, 1 worker" ;;
    elt2) echo "elt.backfill, 2 workers" ;;
    eltrun) echo "elt.backfill_run (in session)" ;;
  esac
}
for c in $CONTENDERS; do
  read -r n p50 p99 mx sum <<<"${BATCH[$c]}"
  read -r tps wp50 wp99 wmax over100 late skipped <<<"${WR[$c]}"
  ratio="–"
  if [ -n "$upd" ] && [ "$upd" != DNF ] && [ "${TOTAL[$c]}" != DNF ]; then
    ratio=$(awk -v a="${TOTAL[$c]}" -v b="$upd" 'BEGIN {printf "%.2f", a / b}')
  fi
  pct=$(awk -v a="$tps" -v b="$base_tps" 'BEGIN {printf "%.0f%%", 100 * a / b}')
  echo "| $(label "$c") | ${TOTAL[$c]} | $ratio | $n | $p50 | $p99 | $mx | $sum | $tps | $pct | $wp50 / $wp99 / $wmax | $over100 | $late | $skipped |"
done

echo
echo "Chunk sizes planned by elt (rows_planned of done chunks) and retries:"
echo
echo "| run | chunks | min | p10 | p50 | p90 | max rows | rows/chunk-second | chunks retried | attempts > 1 | errors seen |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
psql_q -c "SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |', b.name, count(*),
                  min(rows_planned), percentile_disc(0.1) WITHIN GROUP (ORDER BY rows_planned),
                  percentile_disc(0.5) WITHIN GROUP (ORDER BY rows_planned),
                  percentile_disc(0.9) WITHIN GROUP (ORDER BY rows_planned), max(rows_planned),
                  round(sum(rows_planned) / (sum(duration_ms) / 1000))::bigint,
                  count(*) FILTER (WHERE attempts > 1), sum(attempts - 1),
                  coalesce(string_agg(DISTINCT last_error, '; '), '–'))
           FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
           WHERE c.state = 'done' GROUP BY b.name ORDER BY b.name"
echo
echo "elt chunk sizes by time (every 10th chunk of each run: chunk_no rows_planned duration_ms):"
psql_q -c "SELECT b.name || ': ' || string_agg(format('%s:%s:%s', chunk_no, rows_planned, round(duration_ms::numeric)), ' ' ORDER BY chunk_no)
           FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
           WHERE chunk_no % 10 = 1 OR final GROUP BY b.name ORDER BY b.name"
echo
echo "Server log: $(grep -c 'ERROR' "$WORK/server.log" || true) ERROR lines; by message:"
grep -o 'ERROR: .*' "$WORK/server.log" | sed 's/[0-9]\{3,\}/N/g' | sort | uniq -c | sort -rn | head -10 || true
bench_load_end
bench_check_library
log "done"
