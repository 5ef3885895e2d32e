#!/usr/bin/env bash
# Benchmark of sandboxes (issue 24): what a masked copy of a star schema
# costs against the plain SQL a user would otherwise run, and what a sample
# closed under foreign keys costs against the whole copy.
#
# Data (deterministic): star.customers (id int PRIMARY KEY, email text
# UNIQUE, name text, region text) CUSTOMERS rows; star.products (id int
# PRIMARY KEY, name text, price numeric) 10,000 rows; star.orders (id bigint
# PRIMARY KEY, customer_id int REFERENCES customers, product_id int
# REFERENCES products, amount numeric(10,2), ordered_at date) ORDERS rows
# (default 10,000,000; customers ORDERS / 10).  Masking rules: customers.id
# and orders.customer_id hash, customers.email and name pseudonym,
# orders.amount noise (ratio 0.1).
#
# Contenders, each REPEATS times round-robin after a CHECKPOINT, median:
#   ctas          CREATE TABLE peer.x AS SELECT * FROM star.x for the three
#                 tables (the peer the ratio is to: an unmasked copy, no
#                 keys);
#   ctas_keys     the same, then the primary keys, the unique e-mail and the
#                 foreign keys (a usable copy, still unmasked);
#   sandbox_full  elt.sandbox_create(..., ARRAY['star']): masked, with keys,
#                 sequences, validated foreign keys, and the sources'
#                 checksums in its manifest;
#   sandbox_1pct  the same with sample {"percent": 1}, closed under foreign
#                 keys (goal: at most 0.1x sandbox_full);
#   sandbox_synth synthetic generation (the issue's third figure): sample
#                 {"synthetic": true, "scale": 0.1, "rows": {"star.orders":
#                 1000000}}: 1 million orders and a tenth of the customers
#                 and products, generated from pg_stats, masked, with keys
#                 and validated foreign keys; reported in rows/s (all rows,
#                 and orders alone over the whole call).
#
# Uses the INSTALLED build on a throwaway cluster (shared_buffers 2GB,
# work_mem 64MB, maintenance_work_mem 512MB, max_wal_size 16GB).
#
# Usage: bash bench/sandbox.sh [repeats, default 3] [orders, default 10000000]
. "$(dirname "$0")/lib.sh"

REPEATS="${1:-3}"
ORDERS="${2:-10000000}"
CUSTOMERS=$(( ORDERS / 10 ))
PORT="${BENCH_PORT:-5515}"

bench_require_installed 0.9.0 0.8.0--0.9.0
bench_start_cluster "$PORT"
bench_configure <<CONF
shared_buffers = 2GB
max_wal_size = 16GB
work_mem = 64MB
maintenance_work_mem = 512MB
checkpoint_timeout = 30min
lc_messages = 'C'
timezone = 'UTC'
CONF
as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d postgres -X -q -v ON_ERROR_STOP=1 \
  -c "CREATE DATABASE bench" >/dev/null

echo "# command: bash bench/sandbox.sh $*  (repeats=$REPEATS, orders=$ORDERS, customers=$CUSTOMERS)"
echo "# PostgreSQL $(psql_q -c 'SHOW server_version'), elt_governance $(psql_q -c "CREATE EXTENSION elt_governance" -c "SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'") $(bench_build)"
bench_tree
bench_machine
bench_load_start

log "loading the star schema ($ORDERS orders)"
t=$(now_s)
psql_q >/dev/null <<SQL
CREATE SCHEMA star;
CREATE TABLE star.customers (id int PRIMARY KEY, email text NOT NULL UNIQUE, name text, region text);
INSERT INTO star.customers
SELECT g, 'customer' || g || '@mail.test', 'Customer ' || g, (ARRAY['north', 'south', 'east', 'west'])[1 + g % 4]
FROM generate_series(1, $CUSTOMERS) g;
CREATE TABLE star.products (id int PRIMARY KEY, name text, price numeric(8,2));
INSERT INTO star.products SELECT g, 'product ' || g, (g % 500) + 0.99 FROM generate_series(1, 10000) g;
CREATE TABLE star.orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES star.customers,
                          product_id int NOT NULL REFERENCES star.products, amount numeric(10,2) NOT NULL,
                          ordered_at date NOT NULL);
INSERT INTO star.orders
SELECT o, 1 + (hashint8(o)::bigint & 2147483647) % $CUSTOMERS, 1 + (hashint8(-o)::bigint & 2147483647) % 10000,
       ((hashint8(o + 7)::bigint & 2147483647) % 100000) / 100.0, date '2026-01-01' + (o % 365)::int
FROM generate_series(1, $ORDERS) o;
VACUUM ANALYZE star.customers, star.products, star.orders;
SELECT elt.mask_set('star.customers', 'id', 'hash');
SELECT elt.mask_set('star.orders', 'customer_id', 'hash');
SELECT elt.mask_set('star.customers', 'email', 'pseudonym', '{"kind": "email"}');
SELECT elt.mask_set('star.customers', 'name', 'pseudonym', '{"kind": "name"}');
SELECT elt.mask_set('star.orders', 'amount', 'noise', '{"ratio": 0.1}');
CREATE SCHEMA peer;
SQL
log "loaded in $(sub "$(now_s)" "$t") s: $(psql_q -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c WHERE c.relnamespace = 'star'::regnamespace AND c.relkind = 'r'")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
CTAS=(-c "CREATE TABLE peer.customers AS SELECT * FROM star.customers"
      -c "CREATE TABLE peer.products AS SELECT * FROM star.products"
      -c "CREATE TABLE peer.orders AS SELECT * FROM star.orders")
KEYS=(-c "ALTER TABLE peer.customers ADD PRIMARY KEY (id), ADD UNIQUE (email)"
      -c "ALTER TABLE peer.products ADD PRIMARY KEY (id)"
      -c "ALTER TABLE peer.orders ADD PRIMARY KEY (id), ADD FOREIGN KEY (customer_id) REFERENCES peer.customers,
            ADD FOREIGN KEY (product_id) REFERENCES peer.products")
# the whole of one contender's statements, in one psql session, timed outside
run_ms() {
  local t0 t1
  t0=$(now_ns)
  psql_q "$@" >/dev/null || { log "failed: $*"; return 1; }
  t1=$(now_ns)
  awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.1f", (a - b) / 1e6}'
}
declare -A MS
CONTENDERS="ctas ctas_keys sandbox_full sandbox_1pct sandbox_synth"
SYNTH='{"synthetic": true, "seed": 1, "scale": 0.1, "rows": {"star.orders": 1000000}}'
for rep in $(seq 1 "$REPEATS"); do
  for c in $CONTENDERS; do
    psql_q -c "DROP SCHEMA IF EXISTS peer CASCADE" -c "CREATE SCHEMA peer" >/dev/null
    psql_q -c "SELECT elt.sandbox_drop(name) FROM elt.sandboxes" >/dev/null 2>&1 || true
    psql_q -c "CHECKPOINT"
    case "$c" in
      ctas)         ms=$(run_ms "${CTAS[@]}") ;;
      ctas_keys)    ms=$(run_ms "${CTAS[@]}" "${KEYS[@]}") ;;
      sandbox_full) ms=$(run_ms -c "SELECT count(*) FROM elt.sandbox_create('sb', ARRAY['star'])") ;;
      sandbox_1pct) ms=$(run_ms -c "SELECT count(*) FROM elt.sandbox_create('sb', ARRAY['star'], '{\"percent\": 1, \"seed\": 1}')") ;;
      sandbox_synth) ms=$(run_ms -c "SELECT count(*) FROM elt.sandbox_create('sb', ARRAY['star'], '$SYNTH')")
                     SYNTH_ROWS=$(psql_q -c "SELECT sum((c->>'rows')::bigint) FROM elt.sandboxes, jsonb_array_elements(manifest->'tables') c")
                     SYNTH_ORDERS=$(psql_q -c "SELECT (c->>'rows')::bigint FROM elt.sandboxes, jsonb_array_elements(manifest->'tables') c WHERE c->>'copy' = 'sb.orders'") ;;
    esac
    extra=""
    case "$c" in
      sandbox_*) extra="; $(psql_q -c "SELECT string_agg(format('%s %s', c->>'copy', c->>'rows'), ', ') FROM elt.sandboxes, jsonb_array_elements(manifest->'tables') c")" ;;
    esac
    MS[$c]="${MS[$c]:-} $ms"
    log "run $rep $c: $ms ms$extra"
  done
done

base=$(median <<<"${MS[ctas]}")
full=$(median <<<"${MS[sandbox_full]}")
echo
echo "## Copies of the star schema: $ORDERS orders, $CUSTOMERS customers, 10000 products (median of $REPEATS)"
echo
echo "| contender | runs, ms | median ms | × CREATE TABLE AS | × sandbox_full |"
echo "|---|---|---|---|---|"
for c in ${CONTENDERS% sandbox_synth}; do
  m=$(median <<<"${MS[$c]}")
  echo "| $c | $(echo ${MS[$c]} | sed 's/ / \/ /g') | $m | $(ratio "$m" "$base") | $(ratio "$m" "$full") |"
done
m=$(median <<<"${MS[sandbox_synth]}")
echo
echo "## Synthetic generation: $SYNTH_ORDERS orders of $SYNTH_ROWS rows in all, from the statistics of the star above (median of $REPEATS)"
echo
echo "| contender | runs, ms | median ms | rows/s (all rows) | orders/s |"
echo "|---|---|---|---|---|"
echo "| sandbox_synth | $(echo ${MS[sandbox_synth]} | sed 's/ / \/ /g') | $m | $(awk -v r="$SYNTH_ROWS" -v ms="$m" 'BEGIN {printf "%.0f", r / ms * 1000}') | $(awk -v r="$SYNTH_ORDERS" -v ms="$m" 'BEGIN {printf "%.0f", r / ms * 1000}') |"
bench_load_end
bench_check_library
log "done"
