#!/usr/bin/env bash
# Benchmark of backward-compatibility contracts (issue: backward-compatibility
# contracts).
#
#   1. Classification overhead per DDL statement: the same statements, each in
#      its own transaction rolled back (pgbench -r, per-statement latency), on
#      a governed table (policy 'off', so they run) with 100 dependent views
#      and, as the peer, on an identical ungoverned table with its own 100
#      views (in the same database).  Two more columns: the governed table in
#      a database whose catalog is at 0.1.0 (versions recorded, no contracts:
#      the library skips classification there), which splits the overhead into
#      versioning and classification; and the ungoverned table in a database
#      where nothing is governed, which shows what the peer itself pays for
#      sharing a database with governed tables (the fast path).
#   2. elt.check_ddl() throughput on a generated 1000-statement migration
#      script against 20 governed tables; squawk on the same script; the same
#      script in a database of 500 schemas x 20 tables with enums and domains
#      in use (CATALOG_SCHEMAS=n changes the 500), and two enum statements
#      there (a type 20 tables use, one 10,000 tables use).
#   3. Side by side with squawk on a corpus of representative migration
#      statements: time per statement, and what each tool says per statement;
#      as a cross-check, the corpus also runs for real on a copy of the tables
#      governed with policy 'warn' (the event trigger's WARNINGs, and errors).
#
# Uses the INSTALLED build of elt_governance (it neither builds nor installs
# it) on a throwaway cluster with the library preloaded; installs squawk-cli
# with npm into bench/.squawk (not globally) if it is not there.
#
# Usage: [BENCH_PORT=5510] [CATALOG_SCHEMAS=500] bash bench/contracts.sh [transactions] [repeats] [large_table_rows]
. "$(dirname "$0")/lib.sh"

TX="${1:-200}"             # pgbench transactions per measurement (part 1)
REPEATS="${2:-5}"          # repeats of every measurement
LARGE_ROWS="${3:-10000}"   # elt.large_table_rows for the run (default 100000)
CATALOG_SCHEMAS="${CATALOG_SCHEMAS:-500}"   # part 2b: schemas of 20 tables each
SQUAWK_VERSION="${SQUAWK_VERSION:-2.66.0}"
PORT="${BENCH_PORT:-5510}"
HERE="$PWD/bench"


# --- squawk -----------------------------------------------------------------
SQUAWK_DIR="$HERE/.squawk"
SQUAWK="$SQUAWK_DIR/node_modules/.bin/squawk"
if ! [ -x "$SQUAWK" ] || [ "$("$SQUAWK" --version 2>/dev/null)" != "squawk $SQUAWK_VERSION" ]; then
  log "installing squawk-cli@$SQUAWK_VERSION into $SQUAWK_DIR"
  mkdir -p "$SQUAWK_DIR"
  npm install --prefix "$SQUAWK_DIR" --no-audit --no-fund --loglevel=error \
    "squawk-cli@$SQUAWK_VERSION" >/dev/null
fi
# the npm package is a node wrapper that spawns a native binary
SQUAWK_NATIVE=$(ls "$SQUAWK_DIR"/node_modules/@squawk-cli/*/bin/squawk 2>/dev/null | head -1 || true)

# --- the installed extension ------------------------------------------------
bench_require_installed 0.2.0 0.1.0--0.2.0
bench_start_cluster "$PORT"

as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d postgres -X -q -v ON_ERROR_STOP=1 \
  -c "ALTER SYSTEM SET elt.large_table_rows = $LARGE_ROWS" -c "SELECT pg_reload_conf()" \
  -c "CREATE DATABASE bench" -c "CREATE DATABASE bench01" -c "CREATE DATABASE bare" >/dev/null

# this report's medians keep three decimals (lib.sh's median, one)
median3() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
minmax() { sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "–" hi}'; }
# server time (ms) of elt.check_ddl() on a script file in $WORK, twice in one
# new session: "first second" (the first call also prepares the plans of the
# catalog queries and warms the caches of the backend)
check_ms() {
  psql_q <<SQL | awk '/^Time:/ {print $2}' | paste -sd' '
\\set script \`cat $WORK/$1\`
\\timing on
SELECT count(*) FROM elt.check_ddl(:'script');
SELECT count(*) FROM elt.check_ddl(:'script');
SQL
}

SERVER_VERSION=$(psql_q -c "SHOW server_version")
EXT_VERSION=$(psql_q -c "CREATE EXTENSION elt_governance" -c "SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'")
psql_db bench01 -c "CREATE EXTENSION elt_governance VERSION '0.1.0'"
psql_db bare -c "CREATE EXTENSION elt_governance"
echo "# bench/contracts.sh tx=$TX repeats=$REPEATS elt.large_table_rows=$(psql_q -c 'SHOW elt.large_table_rows')"
echo "# PostgreSQL $SERVER_VERSION, elt_governance $EXT_VERSION $(bench_build), $(nproc) cores, $("$SQUAWK" --version)"
bench_tree
bench_load_start

##############################################################################
# 1. Classification overhead per DDL statement
##############################################################################
log "part 1: setting up tables with 100 views each"
# t: 1000 rows; the views read id, a, b; c, d, e are read by no view
table_with_views() {   # schema
  cat <<SQL
CREATE SCHEMA $1;
CREATE TABLE $1.t (id bigint PRIMARY KEY, a int, b text, c varchar(40), d date, e bigint);
INSERT INTO $1.t SELECT g, g, 'b' || g, 'c' || g, DATE '2020-01-01' + g % 1000, g FROM generate_series(1, 1000) g;
DO \$\$ BEGIN FOR i IN 1..100 LOOP
  EXECUTE format('CREATE VIEW $1.v%s AS SELECT id, a, b FROM $1.t WHERE id %% 100 = %s', i, i - 1);
END LOOP; END \$\$;
ANALYZE $1.t;
SQL
}
{ table_with_views gov; table_with_views plain; echo "SELECT elt.govern('gov', 'off');"; } | psql_q >/dev/null
{ table_with_views gov; echo "SELECT elt.govern('gov', 'off');"; } | psql_db bench01 >/dev/null
table_with_views plain | psql_db bare >/dev/null

# name|statement with %s for the table
P1_STATEMENTS=(
  "ADD COLUMN (safe)|ALTER TABLE %s ADD COLUMN x int"
  "RENAME COLUMN read by 100 views|ALTER TABLE %s RENAME COLUMN a TO a_renamed"
  "DROP COLUMN read by no view|ALTER TABLE %s DROP COLUMN e"
  "ALTER COLUMN TYPE varchar(40)→varchar(20)|ALTER TABLE %s ALTER COLUMN c TYPE varchar(20)"
  "CREATE INDEX (small table)|CREATE INDEX ON %s (d)"
)

# per-statement latency (ms) of one statement in BEGIN; ...; ROLLBACK
stmt_ms() {   # db sql transactions
  printf 'BEGIN;\n%s;\nROLLBACK;\n' "$2" | put stmt.sql
  if ! as_postgres "$PG_BIN/pgbench" -h "$WORK" -p "$PORT" -n -r -t "$3" \
       -f "$WORK/stmt.sql" "$1" >"$WORK/pgbench.out" 2>&1; then
    cat "$WORK/pgbench.out" >&2
    exit 1
  fi
  awk '/^statement latencies/ {s=1; next} s && ++k == 2 {print $1}' "$WORK/pgbench.out"
}

declare -A P1
for i in "${!P1_STATEMENTS[@]}"; do   # warm-up
  sql=${P1_STATEMENTS[$i]#*|}
  stmt_ms bench "$(printf "$sql" plain.t)" 100 >/dev/null
  stmt_ms bench "$(printf "$sql" gov.t)" 100 >/dev/null
  stmt_ms bench01 "$(printf "$sql" gov.t)" 100 >/dev/null
  stmt_ms bare "$(printf "$sql" plain.t)" 100 >/dev/null
done
echo
echo "## 1. Per-statement latency, ms (pgbench -r, $TX transactions of BEGIN; statement; ROLLBACK)"
echo
echo "run,statement,nothing_governed_ms,ungoverned_ms,governed_ms,governed_versions_only_ms"
for r in $(seq 1 "$REPEATS"); do
  log "part 1: run $r of $REPEATS"
  for i in "${!P1_STATEMENTS[@]}"; do
    sql=${P1_STATEMENTS[$i]#*|}
    # alternate the order of the four sides from run to run
    if (( r % 2 )); then
      n=$(stmt_ms bare "$(printf "$sql" plain.t)" "$TX")
      p=$(stmt_ms bench "$(printf "$sql" plain.t)" "$TX")
      g=$(stmt_ms bench "$(printf "$sql" gov.t)" "$TX")
      v=$(stmt_ms bench01 "$(printf "$sql" gov.t)" "$TX")
    else
      v=$(stmt_ms bench01 "$(printf "$sql" gov.t)" "$TX")
      g=$(stmt_ms bench "$(printf "$sql" gov.t)" "$TX")
      p=$(stmt_ms bench "$(printf "$sql" plain.t)" "$TX")
      n=$(stmt_ms bare "$(printf "$sql" plain.t)" "$TX")
    fi
    P1[$i,n]+="$n "; P1[$i,p]+="$p "; P1[$i,g]+="$g "; P1[$i,v]+="$v "
    P1[$i,f]+="$(awk -v a="$p" -v b="$n" 'BEGIN {printf "%.3f", a - b}') "
    P1[$i,o]+="$(awk -v a="$g" -v b="$p" 'BEGIN {printf "%.3f", a - b}') "
    P1[$i,c]+="$(awk -v a="$g" -v b="$v" 'BEGIN {printf "%.3f", a - b}') "
    echo "$r,$i,$n,$p,$g,$v"
  done
done
echo
echo "Medians of $REPEATS runs, ms. Overhead = governed − ungoverned (peer); classification ="
echo "governed − versions only; fast path = ungoverned (peer) − nothing governed; each the"
echo "median of the per-run differences (min–max):"
echo
echo "| statement | elt finding on the governed table | ungoverned (peer) | governed | overhead | governed, versions only (0.1.0 catalog) | of which classification | ungoverned, nothing governed in the database | fast path |"
echo "|---|---|---|---|---|---|---|---|---|"
for i in "${!P1_STATEMENTS[@]}"; do
  name=${P1_STATEMENTS[$i]%%|*}
  sql=$(printf "${P1_STATEMENTS[$i]#*|}" gov.t)
  finding=$(psql_q -v s="$sql" <<<"SELECT coalesce(string_agg(rule || CASE WHEN cardinality(dependents) > 0 THEN ' (' || cardinality(dependents) || ' dependents)' ELSE '' END, ', ' ORDER BY rule), 'safe') FROM elt.check_ddl(:'s')")
  med() { tr ' ' '\n' <<<"${P1[$i,$1]}" | grep . | median3; }
  rng() { tr ' ' '\n' <<<"${P1[$i,$1]}" | grep . | minmax; }
  echo "| $name | $finding | $(med p) | $(med g) | **$(med o)** ($(rng o)) | $(med v) | $(med c) ($(rng c)) | $(med n) | $(med f) ($(rng f)) |"
done
echo
echo "rows left in elt.schema_changes after part 1 (all rolled back): $(psql_q -c 'SELECT count(*) FROM elt.schema_changes')"

##############################################################################
# 2. check_ddl throughput on a generated 1000-statement script
##############################################################################
log "part 2: 20 governed tables, a 1000-statement script"
psql_q >/dev/null <<'SQL'
CREATE SCHEMA mix;
CREATE TABLE mix.parent (id int PRIMARY KEY);
INSERT INTO mix.parent SELECT generate_series(0, 1000);
DO $$
DECLARE
  t text;
  cols text := 'id bigint PRIMARY KEY';
  n int;
BEGIN
  FOR i IN 1..8 LOOP cols := cols || format(', i%s int, v%s varchar(40)', i, i); END LOOP;
  FOR i IN 1..4 LOOP cols := cols || format(', b%s bigint, c%s varchar(40), t%s text, n%s int, d%s date', i, i, i, i, i); END LOOP;
  FOR w IN 1..20 LOOP
    t := format('mix.w%s', lpad(w::text, 2, '0'));
    EXECUTE format('CREATE TABLE %s (%s)', t, cols);
    -- w01..w04 are large (20000 rows), the others small (500 rows)
    n := CASE WHEN w <= 4 THEN 20000 ELSE 500 END;
    EXECUTE format('INSERT INTO %s SELECT g, g %% 1000, ''v'' || g, g %% 1000, ''v'' || g, g %% 1000, ''v'' || g,'
                   ' g %% 1000, ''v'' || g, g %% 1000, ''v'' || g, g %% 1000, ''v'' || g, g %% 1000, ''v'' || g,'
                   ' g %% 1000, ''v'' || g, g, ''c'' || g, ''t'' || g, g, DATE ''2020-01-01'' + g %% 1000,'
                   ' g, ''c'' || g, ''t'' || g, g, DATE ''2020-01-01'' + g %% 1000,'
                   ' g, ''c'' || g, ''t'' || g, g, DATE ''2020-01-01'' + g %% 1000,'
                   ' g, ''c'' || g, ''t'' || g, g, DATE ''2020-01-01'' + g %% 1000'
                   ' FROM generate_series(1, %s) g', t, n);
    FOR v IN 1..5 LOOP
      EXECUTE format('CREATE VIEW %s_v%s AS SELECT id, v1, v2 FROM %s WHERE id %% 5 = %s', t, v, t, v - 1);
    END LOOP;
    EXECUTE format('ANALYZE %s', t);
  END LOOP;
END $$;
SELECT elt.govern('mix');
SQL

# statement s goes to table s%20; the tables take turns through 15 kinds of
# statement, each round k (1..4) on other columns
awk 'BEGIN {
  for (s = 0; s < 1000; s++) {
    w = sprintf("w%02d", s % 20 + 1); T = "mix." w
    idx = int(s / 20); kind = idx % 15; k = int(idx / 15) + 1
    if (kind == 0)  printf "ALTER TABLE %s ADD COLUMN add%d int;\n", T, k
    if (kind == 1)  printf "ALTER TABLE %s ADD COLUMN flag%d boolean NOT NULL DEFAULT false;\n", T, k
    if (kind == 2)  printf "ALTER TABLE %s DROP COLUMN t%d;\n", T, k
    if (kind == 3)  printf "ALTER TABLE %s RENAME COLUMN v%d TO v%d_renamed;\n", T, k, k
    if (kind == 4)  printf "ALTER TABLE %s ALTER COLUMN i%d TYPE bigint;\n", T, k
    if (kind == 5)  printf "ALTER TABLE %s ALTER COLUMN b%d TYPE int;\n", T, k
    if (kind == 6)  printf "ALTER TABLE %s ALTER COLUMN v%d TYPE varchar(80);\n", T, k + 4
    if (kind == 7)  printf "ALTER TABLE %s ALTER COLUMN c%d TYPE varchar(10);\n", T, k
    if (kind == 8)  printf "ALTER TABLE %s ALTER COLUMN n%d SET NOT NULL;\n", T, k
    if (kind == 9)  printf "ALTER TABLE %s ADD CONSTRAINT %s_i%d_nonneg CHECK (i%d >= 0) NOT VALID;\n", T, w, k + 4, k + 4
    if (kind == 10) printf "ALTER TABLE %s ADD CONSTRAINT %s_d%d_recent CHECK (d%d > DATE %s2000-01-01%s);\n", T, w, k, k, "\047", "\047"
    if (kind == 11) printf "CREATE INDEX %s_d%d_idx ON %s (d%d);\n", w, k, T, k
    if (kind == 12) printf "CREATE INDEX CONCURRENTLY %s_i%d_idx ON %s (i%d);\n", w, k + 4, T, k + 4
    if (kind == 13) printf "COMMENT ON COLUMN %s.add%d IS %smigration %d%s;\n", T, k, "\047", k, "\047"
    if (kind == 14) printf "ALTER TABLE %s ADD CONSTRAINT %s_parent_fk%d FOREIGN KEY (i%d) REFERENCES mix.parent (id) NOT VALID;\n", T, w, k, k + 4
  }
}' | put mix.sql
NSTMT=$(wc -l <"$WORK/mix.sql")

echo
echo "## 2. elt.check_ddl() on a generated $NSTMT-statement script (20 governed tables, 4 of them over elt.large_table_rows)"
echo
echo "run,first_call_ms,second_call_ms,statements_per_s_first,statements_per_s_second"
declare -a CK CK1
sps() { awk -v n="$2" -v ms="$1" 'BEGIN {printf "%.0f", n / ms * 1000}'; }
for r in $(seq 1 "$REPEATS"); do
  read -r first second <<<"$(check_ms mix.sql)"
  CK1+=("$first"); CK+=("$second")
  echo "$r,$first,$second,$(sps "$first" "$NSTMT"),$(sps "$second" "$NSTMT")"
done
ck1_med=$(printf '%s\n' "${CK1[@]}" | median3)
ck_med=$(printf '%s\n' "${CK[@]}" | median3)
echo
echo "check_ddl, server side, median of $REPEATS: first call in a session $ck1_med ms = $(sps "$ck1_med" "$NSTMT") statements/s; second call $ck_med ms = $(sps "$ck_med" "$NSTMT") statements/s ($(awk -v n="$NSTMT" -v ms="$ck_med" 'BEGIN {printf "%.3f", ms / n}') ms per statement)"
summary=$(psql_q <<SQL
\\set script \`cat $WORK/mix.sql\`
  SELECT format('%s findings on %s of %s statements; by rule: %s',
                sum(n), (SELECT count(DISTINCT statement_no) FROM elt.check_ddl(:'script')), $NSTMT,
                string_agg(rule || '×' || n, ', ' ORDER BY rule))
  FROM (SELECT rule, count(*) AS n FROM elt.check_ddl(:'script') GROUP BY rule) x;
SQL
)
echo "findings: $summary"

# the same script in a database of $CATALOG_SCHEMAS schemas x 20 tables whose
# columns use enums and domains (half the schemas governed): the cost of a
# lookup must grow with the tables a statement touches, not with the catalog
log "part 2b: the same script in a database of $CATALOG_SCHEMAS schemas x 20 tables"
psql_db postgres -c "CREATE DATABASE catalog"
psql_db catalog -c "CREATE EXTENSION elt_governance"
sed -n '/^CREATE SCHEMA mix;/,/^SELECT elt.govern(.mix.);/p' "$0" | psql_db catalog >/dev/null
psql_db catalog >/dev/null <<SQL
CREATE TYPE public.status AS ENUM ('new', 'open', 'done');
CREATE DOMAIN public.email AS text CHECK (VALUE LIKE '%@%');
CREATE DOMAIN public.status_d AS public.status;
CREATE PROCEDURE public.make_catalog() LANGUAGE plpgsql AS \$\$
BEGIN
  FOR s IN 1..$CATALOG_SCHEMAS LOOP
    EXECUTE format('CREATE SCHEMA s%s', lpad(s::text, 3, '0'));
    EXECUTE format('CREATE TYPE s%s.kind AS ENUM (''a'', ''b'')', lpad(s::text, 3, '0'));
    FOR t IN 1..20 LOOP
      EXECUTE format('CREATE TABLE s%s.t%s (id bigint PRIMARY KEY, st public.status, em public.email,'
                     ' sd public.status_d, tags public.status[], k s%s.kind, note text)',
                     lpad(s::text, 3, '0'), lpad(t::text, 2, '0'), lpad(s::text, 3, '0'));
    END LOOP;
    IF s % 2 = 1 THEN PERFORM elt.govern(format('s%s', lpad(s::text, 3, '0'))); END IF;
    COMMIT;
  END LOOP;
END \$\$;
CALL public.make_catalog();
DROP PROCEDURE public.make_catalog();
SQL
check_ms_db() {   # db file statement-or-empty
  as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d "$1" -X -q <<SQL | awk '/^Time:/ {print $2}' | paste -sd' '
\\set script \`cat $WORK/$2\`
\\timing on
SELECT count(*) FROM elt.check_ddl(:'script');
SELECT count(*) FROM elt.check_ddl(:'script');
SQL
}
declare -a CC
for r in $(seq 1 "$REPEATS"); do
  read -r _ second <<<"$(check_ms_db catalog mix.sql)"
  CC+=("$second")
done
cc_med=$(printf '%s\n' "${CC[@]}" | median3)
echo "check_ddl in a database of $CATALOG_SCHEMAS schemas x 20 tables (enums, domains, arrays of enums in use; $((CATALOG_SCHEMAS / 2 + CATALOG_SCHEMAS % 2)) schemas governed), second call, median of $REPEATS: $cc_med ms = $(sps "$cc_med" "$NSTMT") statements/s"
for stmt in "ALTER TYPE s001.kind RENAME VALUE 'a' TO 'z'" "ALTER TYPE public.status RENAME VALUE 'new' TO 'fresh'"; do
  printf '%s;\n' "$stmt" | put one.sql
  read -r _ second <<<"$(check_ms_db catalog one.sql)"
  echo "check_ddl of \`$stmt\` in that database: $second ms"
done

# squawk on the same script
sq_run() {   # binary file -> wall ms
  local t0 t1
  t0=$(now_ns)
  "$1" --reporter json --pg-version 15.0 "$2" >"$WORK/squawk.out" 2>&1 || true
  t1=$(now_ns)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e6}'
}
declare -a SQ SQN
for r in $(seq 1 "$REPEATS"); do
  SQ+=("$(sq_run "$SQUAWK" "$WORK/mix.sql")")
  [ -n "$SQUAWK_NATIVE" ] && SQN+=("$(sq_run "$SQUAWK_NATIVE" "$WORK/mix.sql")")
done
sq_findings=$(jq 'length' "$WORK/squawk.out")
sq_rules=$(jq -r 'group_by(.rule_name) | map("\(.[0].rule_name)×\(length)") | join(", ")' "$WORK/squawk.out")
sq_med=$(printf '%s\n' "${SQ[@]}" | median3)
echo "squawk (npm wrapper, wall clock incl. process start): median $sq_med ms = $(awk -v n="$NSTMT" -v ms="$sq_med" 'BEGIN {printf "%.0f", n / ms * 1000}') statements/s"
if [ -n "$SQUAWK_NATIVE" ]; then
  sqn_med=$(printf '%s\n' "${SQN[@]}" | median3)
  echo "squawk (native binary, wall clock incl. process start): median $sqn_med ms = $(awk -v n="$NSTMT" -v ms="$sqn_med" 'BEGIN {printf "%.0f", n / ms * 1000}') statements/s"
fi
echo "squawk findings: $sq_findings; by rule: $sq_rules"

##############################################################################
# 3. Side by side with squawk on a corpus of migration statements
##############################################################################
log "part 3: corpus"
P3_SETUP=$(cat <<'SQL'
CREATE SCHEMA app;       -- governed (policy enforce)
CREATE SCHEMA legacy;    -- not governed
CREATE SCHEMA reporting; -- views over both
CREATE TABLE app.customers (id bigint PRIMARY KEY, email text, name text, phone varchar(20));
INSERT INTO app.customers SELECT g, 'c' || g || '@example.com', 'name ' || g, '555-' || g FROM generate_series(1, 1000) g;
CREATE TABLE app.small (id int PRIMARY KEY, name text);
INSERT INTO app.small SELECT g, 'n' || g FROM generate_series(1, 100) g;
CREATE TABLE app.orders (id int PRIMARY KEY, customer_id bigint, qty int, total bigint,
    code varchar(20), note varchar(40), amount numeric(10,2), status text,
    legacy_flag boolean, created_at timestamptz);
CREATE TABLE legacy.orders (LIKE app.orders INCLUDING ALL);
INSERT INTO app.orders SELECT g, g % 1000 + 1, g % 7, g * 10, 'C' || g % 100, 'note ' || g,
    (g % 1000) / 10.0, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END, false,
    TIMESTAMPTZ '2025-01-01' + g * INTERVAL '1 minute'
  FROM generate_series(1, 50000) g;
INSERT INTO legacy.orders SELECT * FROM app.orders;
CREATE INDEX orders_created_idx ON app.orders (created_at);
ANALYZE app.customers, app.small, app.orders, legacy.orders;
CREATE VIEW app.open_orders AS SELECT id, customer_id, status FROM app.orders WHERE status = 'open';
CREATE VIEW reporting.customer_revenue AS SELECT customer_id, sum(amount) AS revenue FROM app.orders GROUP BY customer_id;
CREATE MATERIALIZED VIEW reporting.daily_amount AS SELECT created_at::date AS day, sum(amount) AS amount FROM app.orders GROUP BY 1;
CREATE VIEW legacy.open_orders AS SELECT id, customer_id, status FROM legacy.orders WHERE status = 'open';
CREATE VIEW reporting.legacy_revenue AS SELECT customer_id, sum(amount) AS revenue FROM legacy.orders GROUP BY customer_id;
SELECT elt.govern('app');
SELECT elt.consumer_register('app.customers', 'crm_export', ARRAY['email', 'name']);
SELECT elt.consumer_register('app.orders', 'finance_export', ARRAY['total', 'amount']);
SQL
)
psql_q <<<"$P3_SETUP" >/dev/null
# the same tables in a database of their own, where the corpus really runs
psql_db postgres -c "CREATE DATABASE live"
psql_db live <<<"CREATE EXTENSION elt_governance; $P3_SETUP SELECT elt.govern('app', 'warn');" >/dev/null

# statement ## what it shows; one statement per line (squawk reports lines)
put corpus.full <<'CORPUS'
ALTER TABLE app.orders ALTER COLUMN qty TYPE bigint; ## int→bigint: widening, but rewrites the 50k-row table
ALTER TABLE app.orders ALTER COLUMN total TYPE int; ## bigint→int: narrowing; consumer finance_export reads it
ALTER TABLE app.orders ALTER COLUMN code TYPE varchar(40); ## varchar(20)→(40): widening, no rewrite
ALTER TABLE app.orders ALTER COLUMN note TYPE varchar(10); ## varchar(40)→(10): narrowing, rewrite
ALTER TABLE app.orders ALTER COLUMN code TYPE text; ## varchar→text: widening, no rewrite
ALTER TABLE app.orders RENAME COLUMN customer_id TO client_id; ## read by 2 views
ALTER TABLE app.orders DROP COLUMN legacy_flag; ## read by nobody
ALTER TABLE app.orders ADD COLUMN discount numeric; ## safe
ALTER TABLE app.orders ADD COLUMN region text NOT NULL; ## NOT NULL without default: inserts fail
ALTER TABLE app.orders ADD COLUMN ref uuid DEFAULT gen_random_uuid(); ## volatile default: rewrite
ALTER TABLE app.orders ALTER COLUMN status SET NOT NULL; ## scan + breaks writers of NULL
ALTER TABLE app.orders ADD CONSTRAINT orders_qty_positive CHECK (qty > 0) NOT VALID; ## the safe way
ALTER TABLE app.orders ADD CONSTRAINT orders_total_nonneg CHECK (total >= 0); ## validating scan
CREATE INDEX orders_status_idx ON app.orders (status); ## 50k rows > elt.large_table_rows
CREATE INDEX CONCURRENTLY orders_code_idx ON app.orders (code); ## the safe way
CREATE INDEX small_name_idx ON app.small (name); ## 100 rows: harmless
DROP INDEX app.orders_created_idx; ## 50k rows > elt.large_table_rows
ALTER TABLE app.customers RENAME COLUMN email TO email_address; ## consumer crm_export reads email
ALTER TABLE app.customers ALTER COLUMN name SET DEFAULT 'unknown'; ## consumer crm_export reads name
ALTER TABLE app.customers ALTER COLUMN phone TYPE varchar(32); ## widening, column nobody registered
ALTER TABLE app.orders ALTER COLUMN amount TYPE numeric(14,2); ## widening, but 2 views read amount (PostgreSQL refuses)
ALTER TABLE app.orders ADD CONSTRAINT orders_client_fk FOREIGN KEY (client_id) REFERENCES app.customers (id) NOT VALID; ## uses the column renamed above
ALTER TABLE legacy.orders ALTER COLUMN total TYPE int; ## ungoverned table
ALTER TABLE legacy.orders RENAME COLUMN customer_id TO client_id; ## ungoverned, read by 2 views
CREATE INDEX legacy_orders_status_idx ON legacy.orders (status); ## ungoverned, 50k rows
COMMENT ON TABLE app.orders IS 'orders, one row per order'; ## comment
SET lock_timeout = '5s'; ## from here on a lock_timeout is set
CREATE INDEX orders_qty_idx ON app.orders (qty); ## 50k rows, with lock_timeout
DROP TABLE app.small; ## drop a governed table
CORPUS
sed 's/ *## .*//' "$WORK/corpus.full" | put corpus.sql
sed -n 's/.* ## //p' "$WORK/corpus.full" | put corpus.desc
NCORPUS=$(wc -l <"$WORK/corpus.sql")

# timings
declare -a E_SRV E_SRV1 E_WALL S_NODE S_NAT
for r in $(seq 1 "$REPEATS"); do
  read -r first second <<<"$(check_ms corpus.sql)"
  E_SRV1+=("$first"); E_SRV+=("$second")
  t0=$(now_ns)
  printf '\\set script `cat %s`\nSELECT count(*) FROM elt.check_ddl(:%sscript%s);\n' "$WORK/corpus.sql" "'" "'" | psql_q >/dev/null
  t1=$(now_ns)
  E_WALL+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e6}')")
  S_NODE+=("$(sq_run "$SQUAWK" "$WORK/corpus.sql")")
  [ -n "$SQUAWK_NATIVE" ] && S_NAT+=("$(sq_run "$SQUAWK_NATIVE" "$WORK/corpus.sql")")
done
"$SQUAWK" --reporter json --pg-version 15.0 "$WORK/corpus.sql" >"$WORK/corpus.squawk.json" 2>/dev/null || true

# run the corpus for real, statement by statement (autocommit), with the
# schema governed under policy warn: what the event trigger says, and errors
as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d live -X -q -f "$WORK/corpus.sql" \
  >/dev/null 2>"$WORK/live.err" || true
awk '
  function add(n, text,  t) { t = (n in out) ? out[n] "; " text : text; out[n] = t }
  match($0, /:[0-9]+: WARNING:  EG[0-9]+(, EG[0-9]+)*:/) {
    s = substr($0, RSTART + 1, RLENGTH - 2); n = s; sub(/:.*/, "", n)
    c = s; sub(/^[0-9]+: WARNING:  /, "", c)
    add(n, "WARNING " c) }
  match($0, /:[0-9]+: ERROR:  /) {
    n = substr($0, RSTART + 1); sub(/:.*/, "", n)
    add(n, "ERROR: " substr($0, RSTART + RLENGTH)) }
  END { for (n in out) print n "\t" out[n] }' "$WORK/live.err" | put live.txt

per() { awk -v ms="$1" -v n="$2" 'BEGIN {printf "%.3f", ms / n}'; }
row() {   # label, ms array..., n
  local label=$1 n=$2; shift 2
  local m; m=$(printf '%s\n' "$@" | median3)
  echo "| $label | $m | $(per "$m" "$n") |"
}
echo
echo "## 3. elt.check_ddl() vs squawk $SQUAWK_VERSION"
echo
echo "Time for the $NCORPUS-statement corpus (median of $REPEATS) and, from part 2, the $NSTMT-statement script:"
echo
echo "| tool | corpus ms | ms / statement | $NSTMT-statement script ms | ms / statement |"
echo "|---|---|---|---|---|"
m1=$(printf '%s\n' "${E_SRV1[@]}" | median3)
echo "| elt.check_ddl(), server time, first call in a session | $m1 | $(per "$m1" "$NCORPUS") | $ck1_med | $(per "$ck1_med" "$NSTMT") |"
m1=$(printf '%s\n' "${E_SRV[@]}" | median3)
echo "| elt.check_ddl(), server time, second call | $m1 | $(per "$m1" "$NCORPUS") | $ck_med | $(per "$ck_med" "$NSTMT") |"
m1=$(printf '%s\n' "${E_WALL[@]}" | median3)
echo "| elt.check_ddl() via a new psql process (connect + check) | $m1 | $(per "$m1" "$NCORPUS") | – | – |"
m1=$(printf '%s\n' "${S_NODE[@]}" | median3)
echo "| squawk via npm wrapper (node + binary) | $m1 | $(per "$m1" "$NCORPUS") | $sq_med | $(per "$sq_med" "$NSTMT") |"
if [ -n "$SQUAWK_NATIVE" ]; then
  m1=$(printf '%s\n' "${S_NAT[@]}" | median3)
  echo "| squawk native binary | $m1 | $(per "$m1" "$NCORPUS") | $sqn_med | $(per "$sqn_med" "$NSTMT") |"
fi

echo
echo "What each tool says, per statement (squawk: its rule names, default rules;"
echo "elt: rule codes from elt.check_ddl() with the dependents it found; last"
echo "column: the corpus run for real in a copy of the tables governed with policy"
echo "warn, the event trigger's WARNING codes and PostgreSQL's errors):"
echo
put compare.sql <<SQL
\\set corpus \`cat $WORK/corpus.sql\`
\\set descs \`cat $WORK/corpus.desc\`
\\set sq \`cat $WORK/corpus.squawk.json\`
\\set live \`cat $WORK/live.txt\`
WITH stmts AS (
  SELECT n, s FROM unnest(string_to_array(:'corpus', E'\n')) WITH ORDINALITY AS u(s, n)),
descs AS (
  SELECT n, d FROM unnest(string_to_array(:'descs', E'\n')) WITH ORDINALITY AS u(d, n)),
sq AS (
  SELECT (e->>'line')::int + 1 AS n,
         string_agg(DISTINCT e->>'rule_name', ', ') AS rules
  FROM jsonb_array_elements(:'sq'::jsonb) e GROUP BY 1),
el AS (
  SELECT statement_no AS n,
         string_agg(rule || CASE WHEN cardinality(dependents) > 0
                                 THEN ' (' || array_to_string(dependents, ', ') || ')' ELSE '' END,
                    ', ' ORDER BY rule) AS rules
  FROM elt.check_ddl(:'corpus') GROUP BY 1),
live AS (
  SELECT split_part(l, E'\t', 1)::int AS n, split_part(l, E'\t', 2) AS said
  FROM unnest(string_to_array(:'live', E'\n')) AS u(l) WHERE l <> '')
SELECT format('| %s | \`%s\` | %s | %s | %s | %s |', s.n, rtrim(s.s, ';'), d.d,
              coalesce(sq.rules, '–'), coalesce(el.rules, '–'), coalesce(live.said, 'ran, no warning'))
FROM stmts s JOIN descs d USING (n) LEFT JOIN sq USING (n) LEFT JOIN el USING (n)
     LEFT JOIN live USING (n)
ORDER BY s.n;
SQL
echo "| # | statement | what it shows | squawk | elt.check_ddl | run for real (policy warn) |"
echo "|---|---|---|---|---|---|"
psql_q -f "$WORK/compare.sql"
echo
echo "elt.large_table_rows = $(psql_q -c 'SHOW elt.large_table_rows') (lowered from 100000 for this run); planner estimates: $(psql_q -c "SELECT string_agg(format('%s %s', oid::regclass, reltuples::bigint), ', ' ORDER BY oid::regclass::text) FROM pg_class WHERE oid IN ('app.orders'::regclass, 'app.small'::regclass, 'legacy.orders'::regclass)")"
bench_load_end
bench_check_library
log "done"
