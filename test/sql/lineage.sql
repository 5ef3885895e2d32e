-- Row lineage: every supported shape, compared exactly with the lineage
-- recomputed independently in plain SQL; chains traced up and down; merge
-- re-runs; unsupported constructs; failed runs; privileges.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = notice;
-- canonical keys are ISO: the expected lineage is printed the same way
SET DateStyle = ISO;
SELECT coalesce(max(id), 0) AS audit_start FROM elt.audit_log \gset

CREATE SCHEMA raw;
CREATE SCHEMA mart;
CREATE TABLE raw.customers (id int PRIMARY KEY, name text NOT NULL, region text NOT NULL);
CREATE TABLE raw.orders (id bigint PRIMARY KEY, customer_id int, day date NOT NULL,
                         amount numeric NOT NULL);
CREATE TABLE raw.products (sku text PRIMARY KEY, title text);
CREATE TABLE raw.order_lines (order_id bigint, line_no int, sku text, qty int,
                              PRIMARY KEY (order_id, line_no));
INSERT INTO raw.customers
SELECT g, 'customer ' || g, (ARRAY['north', 'south', 'east'])[1 + g % 3]
FROM generate_series(1, 30) g;
-- customer_id 99 does not exist: outer joins leave it unmatched
INSERT INTO raw.orders
SELECT g, CASE WHEN g % 17 = 0 THEN 99 ELSE 1 + g % 30 END,
       date '2026-01-01' + (g % 5), (g * 7) % 50
FROM generate_series(1, 200) g;
INSERT INTO raw.products SELECT 'SKU-' || g, 'product ' || g FROM generate_series(1, 8) g;
INSERT INTO raw.order_lines
SELECT o, l, 'SKU-' || (1 + (o + l) % 8), 1 + (o * l) % 4
FROM generate_series(1, 60) o, generate_series(1, 3) l;

-- the lineage of a run, one row per (target key, source relation, source key)
CREATE FUNCTION lin(run bigint) RETURNS TABLE (tkey text, src regclass, skey text)
LANGUAGE sql AS $$
  SELECT COALESCE(l.target_key::text, l.target_key_text), l.source_rel::regclass, k
  FROM elt.lineage_rows l,
       unnest(COALESCE(l.source_keys::text[], l.source_keys_text)) k
  WHERE l.run_id = run
$$;

-- the same, from the chunks that look up by source key
CREATE FUNCTION lin_by_source(run bigint) RETURNS TABLE (tkey text, src regclass, skey text)
LANGUAGE sql AS $$
  SELECT t, c.rel::regclass, COALESCE(e.key::text, e.key_text)
  FROM elt.lineage_chunks c, elt._lineage_chunk_entries(c.data) e,
       unnest(COALESCE(e.keys::text[], e.keys_text)) t
  WHERE c.run_id = run AND c.dir = 's'
$$;

-- differences between the recorded lineage (both ways) and the expected one
CREATE FUNCTION lineage_diff(run bigint, expected text)
RETURNS TABLE (side text, tkey text, src regclass, skey text)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH e AS (%s), a AS (SELECT * FROM lin(%s)), b AS (SELECT * FROM lin_by_source(%s))
     (SELECT ''missing'', * FROM (SELECT * FROM e EXCEPT ALL SELECT * FROM a) x)
     UNION ALL
     (SELECT ''extra'', * FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM e) y)
     UNION ALL
     (SELECT ''missing by source'', * FROM (SELECT * FROM e EXCEPT ALL SELECT * FROM b) x)
     UNION ALL
     (SELECT ''extra by source'', * FROM (SELECT * FROM b EXCEPT ALL SELECT * FROM e) y)
     ORDER BY 1, 2, 3, 4', expected, run, run);
END $$;

-- edges recorded by a run, per source relation
CREATE FUNCTION edges(run bigint) RETURNS TABLE (src regclass, edges bigint)
LANGUAGE sql AS $$
  SELECT src, count(*) FROM lin(run) GROUP BY src ORDER BY src::text
$$;

-------------------------------------------------------------------------------
-- Filter and projection
-------------------------------------------------------------------------------
CREATE TABLE mart.big_orders (id bigint PRIMARY KEY, cents bigint);
SELECT elt.transform_create('big_orders', 'mart.big_orders',
  'SELECT id, (amount * 100)::bigint AS cents FROM raw.orders WHERE amount > 30') > 0 AS created;
SELECT elt.transform_run('big_orders') AS run \gset
SELECT * FROM edges(:run);
SELECT * FROM lineage_diff(:run,
  $$SELECT id::text, 'raw.orders'::regclass, id::text FROM raw.orders WHERE amount > 30$$);

-------------------------------------------------------------------------------
-- Inner join
-------------------------------------------------------------------------------
CREATE TABLE mart.order_customers (order_id bigint PRIMARY KEY, customer text);
SELECT elt.transform_create('order_customers', 'mart.order_customers',
  'SELECT o.id AS order_id, c.name AS customer
   FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id') > 0 AS created;
SELECT elt.transform_run('order_customers') AS run \gset
SELECT * FROM edges(:run);
SELECT * FROM lineage_diff(:run, $$
  SELECT o.id::text, 'raw.orders'::regclass, o.id::text
  FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id
  UNION ALL
  SELECT o.id::text, 'raw.customers'::regclass, c.id::text
  FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id$$);

-------------------------------------------------------------------------------
-- Left join: no customer key for orders without a customer
-------------------------------------------------------------------------------
CREATE TABLE mart.order_regions (order_id bigint PRIMARY KEY, region text);
SELECT elt.transform_create('order_regions', 'mart.order_regions',
  'SELECT o.id AS order_id, coalesce(c.region, ''unknown'') AS region
   FROM raw.orders o LEFT JOIN raw.customers c ON c.id = o.customer_id') > 0 AS created;
SELECT elt.transform_run('order_regions') AS run \gset
SELECT * FROM edges(:run);
SELECT count(*) AS unmatched_orders FROM mart.order_regions WHERE region = 'unknown';
SELECT * FROM lineage_diff(:run, $$
  SELECT o.id::text, 'raw.orders'::regclass, o.id::text FROM raw.orders o
  UNION ALL
  SELECT o.id::text, 'raw.customers'::regclass, c.id::text
  FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id$$);

-------------------------------------------------------------------------------
-- GROUP BY with aggregates: the keys of the group
-------------------------------------------------------------------------------
CREATE TABLE mart.customer_totals (customer_id int PRIMARY KEY, orders bigint, revenue numeric);
SELECT elt.transform_create('customer_totals', 'mart.customer_totals',
  'SELECT customer_id, count(*) AS orders, sum(amount) AS revenue
   FROM raw.orders WHERE customer_id <> 99 GROUP BY customer_id HAVING sum(amount) > 0') > 0 AS created;
SELECT elt.transform_run('customer_totals') AS run \gset
SELECT * FROM edges(:run);
SELECT * FROM lineage_diff(:run, $$
  SELECT o.customer_id::text, 'raw.orders'::regclass, o.id::text
  FROM raw.orders o
  WHERE o.customer_id IN (SELECT customer_id FROM raw.orders WHERE customer_id <> 99
                          GROUP BY customer_id HAVING sum(amount) > 0)$$);
-- a group's keys are stored as one array per target row
SELECT count(*) AS lineage_rows, count(*) = (SELECT count(*) FROM mart.customer_totals) AS one_per_target
FROM elt.lineage_rows WHERE run_id = :run;

-------------------------------------------------------------------------------
-- DISTINCT: a text target key, and the keys of the rows that collapsed
-------------------------------------------------------------------------------
CREATE TABLE mart.regions (region text PRIMARY KEY);
SELECT elt.transform_create('regions', 'mart.regions',
  'SELECT DISTINCT region FROM raw.customers') > 0 AS created;
SELECT elt.transform_run('regions') AS run \gset
SELECT * FROM edges(:run);
SELECT * FROM lineage_diff(:run, $$
  SELECT region, 'raw.customers'::regclass, id::text FROM raw.customers$$);

-------------------------------------------------------------------------------
-- UNION ALL: each branch's own sources
-------------------------------------------------------------------------------
CREATE TABLE mart.things (id bigint PRIMARY KEY, kind text);
SELECT elt.transform_create('things', 'mart.things',
  'SELECT id, ''order'' AS kind FROM raw.orders WHERE id <= 20
   UNION ALL
   SELECT id + 1000, ''customer'' FROM raw.customers
   UNION ALL
   SELECT o.id + 2000, c.region FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id
   WHERE o.id <= 5') > 0 AS created;
SELECT elt.transform_run('things') AS run \gset
SELECT * FROM edges(:run);
SELECT * FROM lineage_diff(:run, $$
  SELECT id::text, 'raw.orders'::regclass, id::text FROM raw.orders WHERE id <= 20
  UNION ALL
  SELECT (id + 1000)::text, 'raw.customers'::regclass, id::text FROM raw.customers
  UNION ALL
  SELECT (o.id + 2000)::text, 'raw.orders'::regclass, o.id::text
  FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id WHERE o.id <= 5
  UNION ALL
  SELECT (o.id + 2000)::text, 'raw.customers'::regclass, c.id::text
  FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id WHERE o.id <= 5$$);

-- inside a subquery without a column list, grouped above
CREATE TABLE mart.kind_counts (kind text PRIMARY KEY, n bigint);
SELECT elt.transform_create('kind_counts', 'mart.kind_counts',
  'SELECT u.kind, count(*) AS n FROM
     (SELECT id, ''order'' AS kind FROM raw.orders WHERE id <= 10
      UNION ALL SELECT id, ''customer'' FROM raw.customers WHERE id <= 5) u
   GROUP BY u.kind') > 0 AS created;
SELECT elt.transform_run('kind_counts') AS run \gset
SELECT * FROM lineage_diff(:run, $$
  SELECT 'order', 'raw.orders'::regclass, id::text FROM raw.orders WHERE id <= 10
  UNION ALL
  SELECT 'customer', 'raw.customers'::regclass, id::text FROM raw.customers WHERE id <= 5$$);

-------------------------------------------------------------------------------
-- CTE, referenced twice
-------------------------------------------------------------------------------
CREATE TABLE mart.day_pairs (day date PRIMARY KEY, orders bigint, next_day_orders bigint);
SELECT elt.transform_create('day_pairs', 'mart.day_pairs',
  'WITH per_day AS (SELECT day, count(*) AS n FROM raw.orders WHERE amount > 2 GROUP BY day)
   SELECT a.day, a.n AS orders, b.n AS next_day_orders
   FROM per_day a LEFT JOIN per_day b ON b.day = a.day + 1') > 0 AS created;
SELECT elt.transform_run('day_pairs') AS run \gset
SELECT * FROM edges(:run);
SELECT * FROM lineage_diff(:run, $$
  SELECT d.day::text, 'raw.orders'::regclass, o.id::text
  FROM mart.day_pairs d JOIN raw.orders o
    ON o.amount > 2 AND (o.day = d.day OR o.day = d.day + 1)$$);

-------------------------------------------------------------------------------
-- Subquery in FROM, and a lateral function (no rows of a table)
-------------------------------------------------------------------------------
CREATE TABLE mart.cheap_order_regions (order_id bigint PRIMARY KEY, region text, n int);
SELECT elt.transform_create('cheap_order_regions', 'mart.cheap_order_regions',
  'SELECT s.id AS order_id, c.region, g.n
   FROM (SELECT id, customer_id FROM raw.orders WHERE amount < 10) s
   JOIN raw.customers c ON c.id = s.customer_id
   CROSS JOIN LATERAL (SELECT 1 AS n) g') > 0 AS created;
SELECT elt.transform_run('cheap_order_regions') AS run \gset
SELECT * FROM edges(:run);
SELECT * FROM lineage_diff(:run, $$
  SELECT o.id::text, 'raw.orders'::regclass, o.id::text
  FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id WHERE o.amount < 10
  UNION ALL
  SELECT o.id::text, 'raw.customers'::regclass, c.id::text
  FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id WHERE o.amount < 10$$);

-------------------------------------------------------------------------------
-- Composite and text keys; settings do not change stored keys
-------------------------------------------------------------------------------
CREATE TABLE mart.sku_qty (sku text PRIMARY KEY, qty bigint);
SELECT elt.transform_create('sku_qty', 'mart.sku_qty',
  'SELECT p.sku, sum(l.qty) AS qty
   FROM raw.order_lines l JOIN raw.products p ON p.sku = l.sku GROUP BY p.sku') > 0 AS created;
SELECT elt.transform_run('sku_qty') AS run \gset
SELECT * FROM edges(:run);
SELECT * FROM lineage_diff(:run, $$
  SELECT l.sku, 'raw.order_lines'::regclass, ROW(l.order_id, l.line_no)::text FROM raw.order_lines l
  UNION ALL
  SELECT p.sku, 'raw.products'::regclass, p.sku FROM raw.products p$$);

-- a char(n) target key is kept as the table stores it
CREATE TABLE mart.sku_codes (code char(6) PRIMARY KEY, lines bigint);
SELECT elt.transform_create('sku_codes', 'mart.sku_codes',
  'SELECT sku AS code, count(*) AS lines FROM raw.order_lines GROUP BY sku') > 0 AS created;
SELECT elt.transform_run('sku_codes') AS run \gset
SELECT count(DISTINCT tkey) AS target_keys, min(tkey) AS first FROM lin(:run);
SELECT count(*) AS traced FROM elt.trace('mart.sku_codes', 'SKU-1');

-- a composite key is printed as record_out prints it: quoted fields, empty
-- strings, special and BC dates, types without a fast path (numeric)
CREATE TABLE raw.labels (id int PRIMARY KEY, label text, d date, amount numeric);
INSERT INTO raw.labels VALUES (1, 'a b', '2026-01-02', 1.50), (2, 'x,y', 'infinity', 2),
  (3, 'q"t', '-infinity', 3), (4, 'back\slash', '0044-03-15 BC', 4.0), (5, '', '2026-12-31', 5),
  (6, '(paren)', '2026-01-01', 6), (7, 'plain', '2026-01-01', -7.25), (8, 'plain', '2026-01-01', 1e-3);
CREATE TABLE mart.labels (label text, d date, amount numeric, n bigint, PRIMARY KEY (label, d, amount));
SELECT elt.transform_create('labels', 'mart.labels',
  'SELECT label, d, amount, count(*) AS n FROM raw.labels GROUP BY 1, 2, 3') > 0 AS created;
SET DateStyle = 'SQL, DMY';
SELECT elt.transform_run('labels') AS run \gset
SET DateStyle = ISO;
SELECT * FROM lineage_diff(:run, $$
  SELECT ROW(label, d, amount)::text, 'raw.labels'::regclass, id::text FROM raw.labels$$);
SELECT key FROM elt.trace('mart.labels', '("q""t",-infinity,3)') ORDER BY 1;
SELECT key FROM elt.trace('mart.labels', '(back\\slash,0044-03-15 BC,4.0)') ORDER BY 1;

CREATE TABLE raw.readings (taken_at timestamptz, sensor int, value float8,
                           PRIMARY KEY (taken_at, sensor));
INSERT INTO raw.readings VALUES ('2026-03-01 10:00:00+00', 1, 0.1), ('2026-03-01 10:00:00+00', 2, 1.0 / 3),
                                ('2026-03-02 23:30:00+00', 1, 2.5);
CREATE TABLE mart.sensor_days (day date, sensor int, total float8, PRIMARY KEY (day, sensor));
SELECT elt.transform_create('sensor_days', 'mart.sensor_days',
  'SELECT (taken_at AT TIME ZONE ''UTC'')::date AS day, sensor, sum(value) AS total
   FROM raw.readings GROUP BY 1, 2') > 0 AS created;
SET TimeZone = 'Pacific/Chatham';
SET DateStyle = 'SQL, DMY';
SELECT elt.transform_run('sensor_days') AS run \gset
SET DateStyle = ISO;
RESET TimeZone;
-- keys are ISO and UTC whatever the session's settings were
SELECT tkey, src, skey FROM lin(:run) ORDER BY 1, 3;
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'America/New_York';
-- and a key typed under the session's settings finds them
SELECT depth, relation, key, transform, leaf FROM elt.trace('mart.sensor_days', '(01/03/2026,1)') ORDER BY key;
SELECT depth, relation, key, transform FROM elt.impact('raw.readings', '(01/03/2026 05:00:00 EST,2)');
SET DateStyle = ISO;
RESET TimeZone;

-------------------------------------------------------------------------------
-- A chain of three transforms, traced to raw rows and back
-------------------------------------------------------------------------------
CREATE TABLE mart.daily (customer_id int, day date, region text, orders bigint, revenue numeric,
                         PRIMARY KEY (customer_id, day));
CREATE TABLE mart.region_day (region text, day date, revenue numeric, PRIMARY KEY (region, day));
CREATE TABLE mart.region_total (region text PRIMARY KEY, revenue numeric);
SELECT elt.transform_create('daily', 'mart.daily',
  'SELECT c.id AS customer_id, o.day, c.region, count(*) AS orders, sum(o.amount) AS revenue
   FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id
   GROUP BY c.id, o.day, c.region', 'merge') > 0 AS created;
SELECT elt.transform_create('region_day', 'mart.region_day',
  'SELECT region, day, sum(revenue) AS revenue FROM mart.daily GROUP BY region, day', 'replace') > 0 AS created;
SELECT elt.transform_create('region_total', 'mart.region_total',
  'SELECT region, sum(revenue) AS revenue FROM mart.region_day GROUP BY region', 'replace') > 0 AS created;
SELECT elt.transform_run('daily') AS run1 \gset
SELECT elt.transform_run('region_day') AS run2 \gset
SELECT elt.transform_run('region_total') AS run3 \gset
SELECT * FROM mart.region_total ORDER BY region;

-- upstream from one region: depth 1 region days, depth 2 daily rows, depth 3 raw rows
SELECT depth, relation, count(*) AS rows, bool_and(leaf) AS all_leaves, min(transform) AS transform
FROM elt.trace('mart.region_total', 'north') GROUP BY 1, 2 ORDER BY 1, 2;
-- the raw orders reached are exactly the north customers' orders
SELECT (SELECT array_agg(key::bigint ORDER BY key::bigint) FROM elt.trace('mart.region_total', 'north')
        WHERE relation = 'raw.orders'::regclass)
     = (SELECT array_agg(o.id ORDER BY o.id) FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id
        WHERE c.region = 'north') AS exact;
-- depth limits the walk
SELECT depth, relation, count(*) FROM elt.trace('mart.region_total', 'north', 1) GROUP BY 1, 2;
-- downstream from one raw order, to the region total
SELECT depth, relation, key, transform, leaf FROM elt.impact('raw.orders', '3') ORDER BY depth, relation::text, key;
SELECT depth, relation, key FROM elt.impact('raw.customers', '4') ORDER BY depth, relation::text, key;

-------------------------------------------------------------------------------
-- Merge re-runs: trace shows the sources of the latest run that wrote a row
-------------------------------------------------------------------------------
SELECT key FROM elt.trace('mart.daily', '(3,2026-01-03)') WHERE relation = 'raw.orders'::regclass ORDER BY key::bigint;
INSERT INTO raw.orders VALUES (1001, 3, '2026-01-03', 10);
DELETE FROM raw.orders WHERE id = 2;
-- re-merge one customer's rows, the customer given as a run parameter
SELECT elt.transform_create('daily_one', 'mart.daily',
  'SELECT c.id AS customer_id, o.day, c.region, count(*) AS orders, sum(o.amount) AS revenue
   FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id
   WHERE c.id = elt.param(''customer'')::int
   GROUP BY c.id, o.day, c.region', 'merge') > 0 AS created;
SELECT elt.transform_run('daily_one', '{"customer": 3}') AS rerun \gset
SELECT orders, revenue FROM mart.daily WHERE customer_id = 3 AND day = '2026-01-03';
SELECT key, transform, run_id = :rerun AS latest_run FROM elt.trace('mart.daily', '(3,2026-01-03)')
WHERE relation = 'raw.orders'::regclass ORDER BY key::bigint;
-- order 2 made that row in the first run only: no longer upstream of it
SELECT count(*) AS rows_made_from_order_2 FROM elt.impact('raw.orders', '2') WHERE relation = 'mart.daily'::regclass;
SELECT depth, relation, key, transform FROM elt.impact('raw.orders', '1001') ORDER BY depth;
-- a row the re-run did not write keeps the lineage of the run that did
SELECT DISTINCT transform, run_id = :run1 AS from_first_run FROM elt.trace('mart.daily', '(1,2026-01-01)');

-- a diamond: daily rows reached twice keep their leaf flag
CREATE TABLE mart.customer_day_share (customer_id int, day date, share numeric,
                                      PRIMARY KEY (customer_id, day));
SELECT elt.transform_create('customer_day_share', 'mart.customer_day_share',
  'SELECT d.customer_id, d.day, d.revenue / r.revenue AS share
   FROM mart.daily d JOIN mart.region_day r ON r.region = d.region AND r.day = d.day') > 0 AS created;
SELECT elt.transform_run('customer_day_share') > 0 AS ran;
SELECT depth, relation, count(*) AS rows, bool_or(leaf) AS any_leaf
FROM elt.trace('mart.customer_day_share', '(3,2026-01-03)') GROUP BY 1, 2 ORDER BY 1, relation::text;

-- a run without row lineage may rewrite rows: older row lineage of its
-- target is no longer shown
CREATE TABLE mart.order_copy (id bigint PRIMARY KEY, amount numeric);
SELECT elt.transform_create('order_copy', 'mart.order_copy',
  'SELECT id, amount FROM raw.orders WHERE id <= 3', 'merge') > 0 AS created;
SELECT elt.transform_run('order_copy') > 0 AS ran;
SELECT count(*) AS traced FROM elt.trace('mart.order_copy', '1');
SELECT elt.transform_run('order_copy', lineage => 'table') AS run \gset
SELECT lineage FROM elt.transform_runs WHERE run_id = :run;
SELECT count(*) AS lineage_rows FROM elt.lineage_rows WHERE run_id = :run;
SELECT count(*) AS traced FROM elt.trace('mart.order_copy', '1');
SELECT count(*) AS impacted FROM elt.impact('raw.orders', '1') WHERE relation = 'mart.order_copy'::regclass;
-- until a run records row lineage again
SELECT elt.transform_run('order_copy') > 0 AS ran;
SELECT count(*) AS traced FROM elt.trace('mart.order_copy', '1');
-- an append run, or a run that wrote nothing, rewrites nothing: it hides nothing
CREATE TABLE mart.order_log (id bigint PRIMARY KEY, amount numeric);
SELECT elt.transform_create('order_log', 'mart.order_log',
  'SELECT id, amount FROM raw.orders WHERE id BETWEEN elt.param(''lo'')::int AND elt.param(''hi'')::int') > 0 AS created;
SELECT elt.transform_run('order_log', '{"lo": 1, "hi": 3}') > 0 AS ran;
SELECT elt.transform_run('order_log', '{"lo": 4, "hi": 6}', 'none') > 0 AS ran;
SELECT elt.transform_run('order_copy', '{}', 'none') > 0 AS ran_again;
SELECT count(*) AS traced_log FROM elt.trace('mart.order_log', '1');

-------------------------------------------------------------------------------
-- Built-in functions that read no table, whatever their volatility: '' || on
-- a bigint (textanycat, written in SQL), date_trunc on timestamptz, to_char,
-- format, quote_literal(anyelement) (old-style SQL); an empty text key
-------------------------------------------------------------------------------
CREATE TABLE raw.moves (id bigint PRIMARY KEY, at timestamptz NOT NULL, code text NOT NULL,
                        amount numeric);
INSERT INTO raw.moves
SELECT g, timestamptz '2026-01-01 10:00+00' + g * interval '7 hours',
       CASE WHEN g % 3 = 0 THEN '' ELSE 'c' || g END, g * 1.5
FROM generate_series(1, 6) g;
CREATE TABLE mart.moves (id text PRIMARY KEY, day timestamptz, label text, q text);
SELECT elt.transform_create('moves', 'mart.moves',
  $$SELECT 'o' || id AS id, date_trunc('day', at) AS day,
           format('%s-%s', code, to_char(at, 'YYYY')) AS label, quote_literal(amount) AS q
    FROM raw.moves$$) > 0 AS created;
SELECT elt.transform_run('moves') AS run \gset
SELECT * FROM lineage_diff(:run, $$
  SELECT 'o' || id, 'raw.moves'::regclass, id::text FROM raw.moves$$);
SELECT depth, relation, key FROM elt.trace('mart.moves', 'o3');
CREATE TABLE mart.move_codes (code text PRIMARY KEY, n bigint);
SELECT elt.transform_create('move_codes', 'mart.move_codes',
  'SELECT code, count(*) AS n FROM raw.moves GROUP BY code') > 0 AS created;
SELECT elt.transform_run('move_codes') AS run \gset
SELECT * FROM lineage_diff(:run, $$
  SELECT code, 'raw.moves'::regclass, id::text FROM raw.moves$$);
-- the empty key: traced like any other
SELECT depth, relation, key FROM elt.trace('mart.move_codes', '') ORDER BY key;
SELECT elt.trace('mart.move_codes', NULL);
-- a function of one's own named like the built-in changes nothing: || still
-- resolves to pg_catalog's
CREATE FUNCTION public.textanycat(text, bigint) RETURNS text LANGUAGE sql STABLE
  AS 'SELECT count(*)::text FROM raw.customers';
SELECT elt.transform_update('moves',
  $$SELECT 'o' || id AS id, date_trunc('day', at) AS day, code AS label, NULL AS q
    FROM raw.moves$$) > 0 AS updated;
DROP FUNCTION public.textanycat(text, bigint);

-------------------------------------------------------------------------------
-- Constructs whose row lineage cannot be exact: an error naming them
-------------------------------------------------------------------------------
CREATE TABLE mart.any_orders (id bigint PRIMARY KEY, n bigint);
\set VERBOSITY terse
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, count(*) OVER () AS n FROM raw.orders');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, generate_series(1, 2) AS n FROM raw.orders');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, 1 AS n FROM raw.orders INTERSECT SELECT id, 1 FROM raw.customers');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, 1 AS n FROM raw.orders EXCEPT SELECT id, 1 FROM raw.customers');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, 1 AS n FROM raw.orders UNION SELECT id, 1 FROM raw.customers');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'WITH RECURSIVE r(id, n) AS (SELECT 1::bigint, 1::bigint UNION ALL SELECT id + 1, n FROM r WHERE id < 3)
   SELECT id, n FROM r');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT o.id, c.id AS n FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id AND random() < 0.5');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, 1 AS n FROM raw.orders WHERE customer_id IN (SELECT id FROM raw.customers)');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, (SELECT count(*) FROM raw.customers) AS n FROM raw.orders');
CREATE VIEW raw.orders_view AS SELECT * FROM raw.orders;
SELECT elt.transform_create('bad', 'mart.any_orders', 'SELECT id, 1 AS n FROM raw.orders_view');
CREATE TABLE raw.no_key (id bigint, n bigint);
SELECT elt.transform_create('bad', 'mart.any_orders', 'SELECT id, n FROM raw.no_key');
CREATE FUNCTION raw.lookup(bigint) RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM raw.customers WHERE id = $1';
SELECT elt.transform_create('bad', 'mart.any_orders', 'SELECT id, raw.lookup(customer_id) AS n FROM raw.orders');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT j.order_id AS id, 1 AS n FROM (raw.orders o JOIN raw.customers c ON c.id = o.customer_id) AS j(order_id)');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT s.id, length(row_to_json(s)::text)::bigint AS n FROM (SELECT id, amount FROM raw.orders) s');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, length(query_to_xml(''SELECT * FROM raw.customers'', true, false, '''')::text)::bigint AS n
   FROM raw.orders');
-- built-ins that read what the tree does not show: a catalog table from a
-- body written in SQL, server files, large objects
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, length(col_description(''raw.orders''::regclass, 1))::bigint AS n FROM raw.orders');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, length(obj_description(''raw.orders''::regclass))::bigint AS n FROM raw.orders');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, length(pg_read_file(''postgresql.conf''))::bigint AS n FROM raw.orders');
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, length(lo_get(1))::bigint AS n FROM raw.orders');
CREATE TABLE raw.parent (id bigint PRIMARY KEY);
CREATE TABLE raw.child () INHERITS (raw.parent);
SELECT elt.transform_create('bad', 'mart.any_orders', 'SELECT id, 1 AS n FROM raw.parent');
CREATE TABLE mart.no_key_target (id bigint, n bigint);
SELECT elt.transform_create('bad', 'mart.no_key_target', 'SELECT id, 1 AS n FROM raw.orders');
\set VERBOSITY default
-- the first one in full
SELECT elt.transform_create('bad', 'mart.any_orders',
  'SELECT id, count(*) OVER () AS n FROM raw.orders');
SELECT count(*) AS nothing_created FROM elt.transforms WHERE name = 'bad';

-- with lineage => 'table' they are accepted; runs keep no row lineage
SELECT elt.transform_create('top_orders', 'mart.any_orders',
  'SELECT id, count(*) OVER () AS n FROM raw.orders ORDER BY amount DESC LIMIT 5',
  options => '{"lineage": "table"}') > 0 AS created;
SELECT transform, lineage_level, lineage_note FROM elt.transform_versions WHERE transform = 'top_orders';
SELECT elt.transform_run('top_orders') AS run \gset
SELECT lineage, rows_written FROM elt.transform_runs WHERE run_id = :run;
SELECT count(*) AS lineage_rows FROM elt.lineage_rows WHERE run_id = :run;
-- and column lineage is still known
SELECT target_column, source_relation, source_column, kind FROM elt.column_lineage('mart.any_orders');

SELECT elt.transform_run('big_orders', lineage => 'some');

-- a source that lost its key after creation stops row lineage at run time
CREATE TABLE raw.tags (id int PRIMARY KEY, tag text);
INSERT INTO raw.tags VALUES (1, 'a');
CREATE TABLE mart.tags (id int PRIMARY KEY, tag text);
SELECT elt.transform_create('tags', 'mart.tags', 'SELECT id, tag FROM raw.tags') > 0 AS created;
ALTER TABLE raw.tags DROP CONSTRAINT tags_pkey;
SELECT elt.transform_run('tags');
SELECT elt.transform_run('tags', lineage => 'table') > 0 AS ran_with_table_lineage;

-------------------------------------------------------------------------------
-- A failed run leaves neither rows nor lineage; it is recorded as failed
-------------------------------------------------------------------------------
SELECT count(*) AS runs_before FROM elt.transform_runs \gset
SELECT count(*) AS lineage_before FROM elt.lineage_rows \gset
SELECT count(*) AS rows_before FROM mart.big_orders \gset
-- appending the same keys again violates the target's primary key
SELECT elt.transform_run('big_orders');
SELECT (SELECT count(*) FROM elt.lineage_rows) = :lineage_before AS no_lineage,
       (SELECT count(*) FROM mart.big_orders) = :rows_before AS no_rows,
       (SELECT count(*) FROM elt.transform_runs) = :runs_before + 1 AS one_run_more;
SELECT d.name, r.status, r.error, r.rows_written, r.role = current_user AS by_me
FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id)
ORDER BY r.run_id DESC LIMIT 1;

-------------------------------------------------------------------------------
-- Column lineage
-------------------------------------------------------------------------------
SELECT target_column, source_relation, source_column, kind FROM elt.column_lineage('mart.daily');
SELECT target_column, source_relation, source_column, kind FROM elt.column_lineage('mart.things');
SELECT target_column, source_relation, source_column, kind FROM elt.column_lineage('mart.day_pairs');

-------------------------------------------------------------------------------
-- Privileges
-------------------------------------------------------------------------------
CREATE ROLE lineage_analyst;
CREATE ROLE lineage_engineer;
GRANT USAGE ON SCHEMA raw, mart TO lineage_analyst, lineage_engineer;
GRANT SELECT ON mart.region_total, mart.region_day TO lineage_analyst;
GRANT SELECT ON raw.orders TO lineage_engineer;
GRANT SELECT, INSERT ON mart.big_orders TO lineage_engineer;
SET ROLE lineage_analyst;
-- the analyst may read the marts but not the daily table or the raw rows:
-- those rows are left out
SELECT depth, relation, count(*) FROM elt.trace('mart.region_total', 'south') GROUP BY 1, 2;
-- tracing a relation one cannot read is refused
SELECT * FROM elt.trace('raw.orders', '1');
SELECT * FROM elt.impact('mart.daily', '(1,2026-01-02)');
-- the catalog of keys is not readable directly
SELECT count(*) FROM elt.lineage_rows;
-- creating a transform needs the right to read its sources and write its target
SELECT elt.transform_create('analyst_copy', 'mart.region_total',
  'SELECT region, sum(revenue) AS revenue FROM mart.region_day GROUP BY region');
RESET ROLE;
SET ROLE lineage_engineer;
SELECT elt.transform_create('engineer_copy', 'mart.big_orders',
  'SELECT o.id, 1::bigint AS cents FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id');
-- a transform belongs to its creator
SELECT elt.transform_update('big_orders', 'SELECT id, 0::bigint AS cents FROM raw.orders');
-- running someone else's transform is for members of its owner role
SELECT elt.transform_run('region_total');
-- one's own: it runs as its owner, and the run records who ran it
SELECT elt.transform_create('engineer_copy', 'mart.big_orders',
  'SELECT id, 1::bigint AS cents FROM raw.orders WHERE id = 1001') > 0 AS created;
SELECT elt.transform_run('engineer_copy') AS run \gset
SELECT role FROM elt.transform_run_history WHERE run_id = :run;
-- the catalog's internals are not for calling
SELECT * FROM elt._lineage_pending();
SELECT elt._lineage_capture(1, 1::bigint);
-- and lineage purge only touches one's own transforms
SELECT elt.lineage_purge(now() + interval '1 day') AS purged_by_engineer;
RESET ROLE;
-- a superuser running it runs it as its owner, who may not read raw.customers
SELECT elt.transform_update('engineer_copy',
  'SELECT o.id, 1::bigint AS cents FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id WHERE o.id = 1001')
  AS version;
SELECT elt.transform_run('engineer_copy');
SELECT elt.transform_update('engineer_copy', 'SELECT id, 2::bigint AS cents FROM raw.orders WHERE id = 1001') AS version;
GRANT UPDATE ON mart.big_orders TO lineage_engineer;
-- replace mode under a transaction snapshot is refused
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT elt.transform_run('region_total');
ROLLBACK;

-------------------------------------------------------------------------------
-- A run larger than maintenance_work_mem: lineage kept in batches of chunks
-------------------------------------------------------------------------------
CREATE TABLE raw.clicks (id bigint PRIMARY KEY, customer_id int NOT NULL, page text NOT NULL);
INSERT INTO raw.clicks SELECT g, 1 + g % 30, 'page ' || (g % 8000) FROM generate_series(1, 120000) g;
CREATE TABLE mart.page_customers (page text, customer_id int, clicks bigint, region text,
                                  PRIMARY KEY (page, customer_id));
SELECT elt.transform_create('page_customers', 'mart.page_customers',
  'SELECT k.page, k.customer_id, count(*) AS clicks, c.region
   FROM raw.clicks k JOIN raw.customers c ON c.id = k.customer_id
   GROUP BY k.page, k.customer_id, c.region') > 0 AS created;
SET maintenance_work_mem = '1MB';
SELECT elt.transform_run('page_customers') AS run \gset
RESET maintenance_work_mem;
SELECT * FROM lineage_diff(:run, $$
  SELECT (k.page, k.customer_id)::text, 'raw.clicks'::regclass, k.id::text FROM raw.clicks k
  UNION ALL
  SELECT DISTINCT (k.page, k.customer_id)::text, 'raw.customers'::regclass, k.customer_id::text
  FROM raw.clicks k$$);
-- one customer's target rows were written in several batches
SELECT count(*) > 1 AS batches FROM elt.lineage_chunks c, elt._lineage_chunk_entries(c.data) e
WHERE c.run_id = :run AND c.dir = 's' AND c.rel = 'raw.customers'::regclass AND e.key = 1;
-- a damaged chunk is an error, not a crash
SELECT * FROM elt._lineage_chunk_entries('\x0300'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x010005'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x010902'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x0109010903'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x01090103020501'::bytea);
-- a packed text field with a zero byte, a day number out of range
SELECT * FROM elt._lineage_chunk_entries('\x0109020505060300204101610000'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x0109010405fcffffff0f0000'::bytea);
-- chunks are written in format 2 (a list's count, then the list); format 1
-- (its byte length first), which 0.4.0 to 0.8.0 wrote, reads the same
SELECT DISTINCT get_byte(data, 0) AS format FROM elt.lineage_chunks;
SELECT * FROM elt._lineage_chunk_entries('\x020002020a03'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x01000202020a03'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x0202020103616263'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x010202040103616263'::bytea);
-- format 2 damaged: no count, a count past the end, a list that runs off
-- the end, a text longer than what is left
SELECT * FROM elt._lineage_chunk_entries('\x020002'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x02000205'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x0200020280'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x020202010561'::bytea);
-- and chunks of small entries stay small (a customer's entry by source
-- key lists thousands of target keys: it is one entry, whatever its size)
SELECT count(*) > 100 AS many_chunks,
       max(length(data)) FILTER (WHERE rel <> 'raw.customers'::regclass) < 8192 AS small_chunks
FROM elt.lineage_chunks WHERE run_id = :run;
-- impact finds all of them; trace finds a row's clicks
SELECT count(*) = (SELECT count(*) FROM mart.page_customers WHERE customer_id = 1) AS all_rows
FROM elt.impact('raw.customers', '1', 1) WHERE relation = 'mart.page_customers'::regclass;
SELECT relation, key FROM elt.trace('mart.page_customers', '("page 7",8)') ORDER BY 1, 2;

-------------------------------------------------------------------------------
-- Retention
-------------------------------------------------------------------------------
CREATE TABLE mart.kept (id bigint PRIMARY KEY, amount numeric);
SELECT elt.transform_create('kept', 'mart.kept', 'SELECT id, amount FROM raw.orders WHERE id <= 3',
  'merge', '{"keep_runs": 2}') > 0 AS created;
SELECT elt.transform_run('kept') AS k1 \gset
SELECT elt.transform_run('kept') AS k2 \gset
SELECT elt.transform_run('kept') AS k3 \gset
SELECT run_id = :k1 AS first, count(*) AS lineage_rows FROM elt.lineage_rows
WHERE run_id IN (:k1, :k2, :k3) GROUP BY 1 ORDER BY 1;
SELECT elt.lineage_purge(now() + interval '1 day') > 0 AS purged;
SELECT count(*) AS lineage_rows_left FROM elt.lineage_rows;
SELECT count(*) > 0 AS runs_kept FROM elt.transform_runs;
SELECT elt.lineage_purge(NULL);
SELECT action, count(*) FROM elt.audit_log
WHERE id > :audit_start AND (action LIKE 'transform%' OR action = 'lineage_purge')
GROUP BY action ORDER BY action;

-------------------------------------------------------------------------------
-- Composite target keys whose packed form holds zero bytes: the integer 0,
-- the date 2000-01-01 (day 0 of PostgreSQL's epoch) and the empty text are
-- each a zero byte; multi-byte varints (64, 128, 8192, a text of 128 bytes)
-- for contrast.  Every key is traced and impacted, against plain SQL.
-------------------------------------------------------------------------------
CREATE SCHEMA zk;
CREATE TABLE zk.src (id int PRIMARY KEY, i int NOT NULL, j int NOT NULL, s smallint NOT NULL,
                     b bigint NOT NULL, d date NOT NULL, t text NOT NULL);
INSERT INTO zk.src VALUES
  (1, 0, 0, 0, 0, '2000-01-01', ''),
  (2, 0, 0, 0, 0, '2000-01-01', 'a'),
  (3, 0, 1, 0, 1, '2000-01-01', ''),
  (4, 1, 0, 1, 0, '2000-01-02', 'a'),
  (5, 0, 0, 0, 0, '2000-01-01', 'a'),
  (6, -1, 0, -1, -1, '1999-12-31', 'b'),
  (7, 64, 128, 64, 8192, '2000-03-05', repeat('x', 128)),
  (8, 0, 0, 0, 0, '2000-01-01', '');
CREATE TABLE zk.int_text (i int, t text, n bigint, PRIMARY KEY (i, t));
CREATE TABLE zk.bigint_date (b bigint, d date, n bigint, PRIMARY KEY (b, d));
CREATE TABLE zk.smallint_int (s smallint, j int, n bigint, PRIMARY KEY (s, j));
CREATE TABLE zk.date_text (d date, t text, n bigint, PRIMARY KEY (d, t));
CREATE TABLE zk.int_int (i int, j int, n bigint, PRIMARY KEY (i, j));
-- and one level more, reading every key of zk.int_text at once
CREATE TABLE zk.total (id int PRIMARY KEY, n bigint);
SELECT elt.transform_create('zk_int_text', 'zk.int_text',
  'SELECT i, t, count(*) AS n FROM zk.src GROUP BY i, t') > 0 AS created;
SELECT elt.transform_create('zk_bigint_date', 'zk.bigint_date',
  'SELECT b, d, count(*) AS n FROM zk.src GROUP BY b, d') > 0 AS created;
SELECT elt.transform_create('zk_smallint_int', 'zk.smallint_int',
  'SELECT s, j, count(*) AS n FROM zk.src GROUP BY s, j') > 0 AS created;
SELECT elt.transform_create('zk_date_text', 'zk.date_text',
  'SELECT d, t, count(*) AS n FROM zk.src GROUP BY d, t') > 0 AS created;
SELECT elt.transform_create('zk_int_int', 'zk.int_int',
  'SELECT i, j, count(*) AS n FROM zk.src GROUP BY i, j') > 0 AS created;
SELECT elt.transform_create('zk_total', 'zk.total',
  'SELECT 1 AS id, sum(n) AS n FROM zk.int_text') > 0 AS created;
SELECT elt.transform_run('zk_int_text') AS run_it \gset
SELECT elt.transform_run('zk_bigint_date') AS run_bd \gset
SELECT elt.transform_run('zk_smallint_int') AS run_si \gset
SELECT elt.transform_run('zk_date_text') AS run_dt \gset
SELECT elt.transform_run('zk_int_int') AS run_ii \gset
SELECT elt.transform_run('zk_total') > 0 AS ran;
-- what was recorded, both ways
SELECT * FROM lineage_diff(:run_it, $$SELECT ROW(i, t)::text, 'zk.src'::regclass, id::text FROM zk.src$$);
SELECT * FROM lineage_diff(:run_bd, $$SELECT ROW(b, d)::text, 'zk.src'::regclass, id::text FROM zk.src$$);
SELECT * FROM lineage_diff(:run_si, $$SELECT ROW(s, j)::text, 'zk.src'::regclass, id::text FROM zk.src$$);
SELECT * FROM lineage_diff(:run_dt, $$SELECT ROW(d, t)::text, 'zk.src'::regclass, id::text FROM zk.src$$);
SELECT * FROM lineage_diff(:run_ii, $$SELECT ROW(i, j)::text, 'zk.src'::regclass, id::text FROM zk.src$$);

-- the expected edges: (source row, target, target key)
CREATE VIEW zk.expected AS
  SELECT id, 'zk.int_text'::regclass AS target, ROW(i, t)::text AS tkey FROM zk.src
  UNION ALL SELECT id, 'zk.bigint_date'::regclass, ROW(b, d)::text FROM zk.src
  UNION ALL SELECT id, 'zk.smallint_int'::regclass, ROW(s, j)::text FROM zk.src
  UNION ALL SELECT id, 'zk.date_text'::regclass, ROW(d, t)::text FROM zk.src
  UNION ALL SELECT id, 'zk.int_int'::regclass, ROW(i, j)::text FROM zk.src;
-- every target row traced to its source rows: differences with plain SQL
WITH traced AS (
  SELECT x.key::int AS id, e.target, e.tkey
  FROM (SELECT DISTINCT target, tkey FROM zk.expected) e, elt.trace(e.target, e.tkey) x
  WHERE x.relation = 'zk.src'::regclass)
(SELECT 'missing' AS side, * FROM (SELECT * FROM zk.expected EXCEPT ALL SELECT * FROM traced) m)
UNION ALL
(SELECT 'extra', * FROM (SELECT * FROM traced EXCEPT ALL SELECT * FROM zk.expected) x)
ORDER BY 1, 2, 3, 4;
-- every source row impacted: the same edges seen from the other side
WITH impacted AS (
  SELECT s.id, x.relation AS target, x.key AS tkey
  FROM zk.src s, elt.impact('zk.src', s.id::text, 1) x)
(SELECT 'missing' AS side, * FROM (SELECT * FROM zk.expected EXCEPT ALL SELECT * FROM impacted) m)
UNION ALL
(SELECT 'extra', * FROM (SELECT * FROM impacted EXCEPT ALL SELECT * FROM zk.expected) x)
ORDER BY 1, 2, 3, 4;
-- the keys made of zero bytes only, in full
SELECT depth, relation, key, transform FROM elt.trace('zk.int_text', '(0,"")') ORDER BY key::int;
SELECT depth, relation, key, transform FROM elt.trace('zk.int_text', '(0,a)') ORDER BY key::int;
SELECT depth, relation, key, transform FROM elt.trace('zk.bigint_date', '(0,2000-01-01)') ORDER BY key::int;
SELECT depth, relation, key, transform FROM elt.trace('zk.smallint_int', '(0,0)') ORDER BY key::int;
SELECT depth, relation, key, transform FROM elt.trace('zk.date_text', '(2000-01-01,"")') ORDER BY key::int;
SELECT depth, relation, key, transform FROM elt.trace('zk.int_int', '(0,0)') ORDER BY key::int;
SELECT depth, relation, key, transform FROM elt.impact('zk.src', '1') ORDER BY depth, relation::text, key;
-- two levels up: every key of zk.int_text looked up at once, then the source rows
SELECT depth, relation, left(key, 16) AS key_start FROM elt.trace('zk.total', '1') ORDER BY depth, relation::text, key;
SELECT (SELECT array_agg(key::int ORDER BY key::int) FROM elt.trace('zk.total', '1')
        WHERE relation = 'zk.src'::regclass) = (SELECT array_agg(id ORDER BY id) FROM zk.src) AS exact;

-------------------------------------------------------------------------------
-- A lookup reads a key's chunks newest run first and stops at the run that
-- last wrote it.  Run "all" writes 2000 rows (chunks of several buckets),
-- then 40 one-row runs (all in one bucket) each rewrite one of rows 1..40,
-- then run "upper" rewrites rows 1001..2000.  Every row's latest run is
-- known here: each key is traced and impacted and must show that run
-- only, whether it is found in the newest chunk of its bucket, after a
-- few rounds, or only in what the last round reads (rows 41..1000: 40
-- newer chunks in one bucket, a newer run in the other).
-------------------------------------------------------------------------------
CREATE SCHEMA nf;
CREATE TABLE nf.src (id int PRIMARY KEY, v int);
INSERT INTO nf.src SELECT g, g * 7 FROM generate_series(1, 2000) g;
CREATE TABLE nf.tgt (id int PRIMARY KEY, v int);
SELECT elt.transform_create('nf', 'nf.tgt',
  'SELECT id, v FROM nf.src WHERE id BETWEEN elt.param(''lo'')::int AND elt.param(''hi'')::int',
  'merge') > 0 AS created;
CREATE TABLE nf.writer (id int PRIMARY KEY, run_id bigint);
SELECT elt.transform_run('nf', '{"lo": 1, "hi": 2000}') AS nf_all \gset
INSERT INTO nf.writer SELECT g, :nf_all FROM generate_series(1, 2000) g;
DO $$
DECLARE r bigint;
BEGIN
  FOR i IN 1..40 LOOP
    r := elt.transform_run('nf', jsonb_build_object('lo', i, 'hi', i));
    UPDATE nf.writer SET run_id = r WHERE id = i;
  END LOOP;
  r := elt.transform_run('nf', '{"lo": 1001, "hi": 2000}');
  UPDATE nf.writer SET run_id = r WHERE id > 1000;
END $$;
SELECT count(DISTINCT run_id) AS runs, count(DISTINCT bucket >> 32) > 1 AS several_layouts
FROM elt.lineage_chunks WHERE rel = 'nf.tgt'::regclass;
-- upstream: each row's sources are from its latest run, and only that run
SELECT count(*) AS rows_traced_wrong FROM nf.writer w
WHERE (SELECT array_agg(DISTINCT run_id::text) || array_agg(DISTINCT key) FROM elt.trace('nf.tgt', w.id::text))
      IS DISTINCT FROM ARRAY[w.run_id::text, w.id::text];
-- downstream: each source row made its target row in the row's latest run
SELECT count(*) AS rows_impacted_wrong FROM nf.writer w
WHERE (SELECT array_agg(DISTINCT run_id::text) || array_agg(DISTINCT key) FROM elt.impact('nf.src', w.id::text))
      IS DISTINCT FROM ARRAY[w.run_id::text, w.id::text];
-- all keys at once: a total over nf.tgt traced two levels up looks up its
-- 2000 rows in one go
CREATE TABLE nf.total (id int PRIMARY KEY, v bigint);
SELECT elt.transform_create('nf_total', 'nf.total', 'SELECT 1 AS id, sum(v) AS v FROM nf.tgt GROUP BY 1',
  'replace') > 0 AS created;
SELECT elt.transform_run('nf_total') > 0 AS ran;
SELECT count(*) AS sources, count(*) FILTER (WHERE t.run_id = w.run_id) AS from_latest_run
FROM elt.trace('nf.total', '1') t JOIN nf.writer w ON w.id = t.key::int
WHERE t.relation = 'nf.src'::regclass;
