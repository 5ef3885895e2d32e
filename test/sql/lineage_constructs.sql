-- Row lineage of the SQL people write (issue 23): DISTINCT ON, top-N
-- (ORDER BY … LIMIT, OFFSET, FETCH … WITH TIES), LATERAL subqueries and
-- set-returning functions in FROM are traced exactly; each is checked
-- against a plain-SQL oracle of every target row's sources.  Window
-- functions, INTERSECT and EXCEPT are refused with an error naming them.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = notice;
CREATE SCHEMA lc_raw;
CREATE SCHEMA lc_mart;
CREATE TABLE lc_raw.customers (id int PRIMARY KEY, region text NOT NULL);
INSERT INTO lc_raw.customers SELECT g, (ARRAY['north', 'south', 'west'])[1 + g % 3] FROM generate_series(1, 20) g;
CREATE TABLE lc_raw.orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric NOT NULL,
                            tags text[] NOT NULL);
INSERT INTO lc_raw.orders
SELECT g, 1 + g % 20, (g * 37) % 101, ARRAY['t' || (g % 4), 'u' || (g % 5)]
FROM generate_series(1, 200) g;

-- each row's sources as row lineage records them, against the oracle's:
-- rows of the target whose traced keys of rel differ from the expected ones
CREATE FUNCTION lc_raw.mismatches(target regclass, key_sql text, rel regclass, expected_sql text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format($q$
    SELECT count(*) FROM (SELECT %s AS k, t.* FROM %s t) t
    WHERE ARRAY(SELECT x.key FROM elt.trace(%L, t.k, 1) x WHERE x.relation = %L::regclass ORDER BY x.key)
          IS DISTINCT FROM ARRAY(SELECT e::text FROM (%s) o(e) ORDER BY e::text)$q$,
    key_sql, target, target, rel, expected_sql) INTO n;
  RETURN n;
END $$;

-- DISTINCT ON: a row's sources are the row it kept (its order, its customer)
CREATE TABLE lc_mart.biggest (customer_id int PRIMARY KEY, order_id bigint, amount numeric, region text);
SELECT elt.transform_create('lc_biggest', 'lc_mart.biggest', $$
  SELECT DISTINCT ON (o.customer_id) o.customer_id, o.id AS order_id, o.amount, c.region
  FROM lc_raw.orders o JOIN lc_raw.customers c ON c.id = o.customer_id
  ORDER BY o.customer_id, o.amount DESC, o.id$$, 'merge') > 0 AS created;
SELECT lineage_level FROM elt.transform_versions WHERE transform = 'lc_biggest';
SELECT elt.transform_run('lc_biggest') > 0 AS ran;
SELECT count(*) AS rows FROM lc_mart.biggest;
SELECT lc_raw.mismatches('lc_mart.biggest', 't.customer_id::text', 'lc_raw.orders',
  'SELECT t.order_id') AS order_mismatches;
SELECT lc_raw.mismatches('lc_mart.biggest', 't.customer_id::text', 'lc_raw.customers',
  'SELECT t.customer_id') AS customer_mismatches;
-- DISTINCT ON over groups: the kept group's rows
CREATE TABLE lc_mart.best_region_customer (region text PRIMARY KEY, customer_id int, total numeric);
SELECT elt.transform_create('lc_best', 'lc_mart.best_region_customer', $$
  SELECT DISTINCT ON (c.region) c.region, o.customer_id, sum(o.amount) AS total
  FROM lc_raw.orders o JOIN lc_raw.customers c ON c.id = o.customer_id
  GROUP BY c.region, o.customer_id
  ORDER BY c.region, sum(o.amount) DESC, o.customer_id$$, 'replace') > 0 AS created;
SELECT elt.transform_run('lc_best') > 0 AS ran;
SELECT lc_raw.mismatches('lc_mart.best_region_customer', 't.region', 'lc_raw.orders',
  'SELECT o.id FROM lc_raw.orders o WHERE o.customer_id = t.customer_id') AS order_mismatches;

-- top-N: ORDER BY … LIMIT, OFFSET, FETCH FIRST … WITH TIES keep rows whole
CREATE TABLE lc_mart.top_orders (id bigint PRIMARY KEY, amount numeric);
SELECT elt.transform_create('lc_top', 'lc_mart.top_orders', $$
  SELECT id, amount FROM lc_raw.orders ORDER BY amount DESC, id LIMIT 10 OFFSET 2$$, 'replace') > 0 AS created;
SELECT elt.transform_run('lc_top') > 0 AS ran;
SELECT count(*) AS rows FROM lc_mart.top_orders;
SELECT lc_raw.mismatches('lc_mart.top_orders', 't.id::text', 'lc_raw.orders', 'SELECT t.id') AS mismatches;
CREATE TABLE lc_mart.top_customers (customer_id int PRIMARY KEY, total numeric);
SELECT elt.transform_create('lc_top_customers', 'lc_mart.top_customers', $$
  SELECT customer_id, sum(amount) AS total FROM lc_raw.orders GROUP BY customer_id
  ORDER BY sum(amount) DESC FETCH FIRST 3 ROWS WITH TIES$$, 'replace') > 0 AS created;
SELECT elt.transform_run('lc_top_customers') > 0 AS ran;
SELECT count(*) >= 3 AS rows FROM lc_mart.top_customers;
SELECT lc_raw.mismatches('lc_mart.top_customers', 't.customer_id::text', 'lc_raw.orders',
  'SELECT o.id FROM lc_raw.orders o WHERE o.customer_id = t.customer_id') AS mismatches;
-- a LIMIT in a subquery: the rows it kept, through the outer level
CREATE TABLE lc_mart.recent_per_region (region text PRIMARY KEY, n bigint);
SELECT elt.transform_create('lc_recent', 'lc_mart.recent_per_region', $$
  SELECT c.region, count(*) AS n
  FROM (SELECT id, customer_id FROM lc_raw.orders ORDER BY id DESC LIMIT 30) o
  JOIN lc_raw.customers c ON c.id = o.customer_id GROUP BY c.region$$, 'replace') > 0 AS created;
SELECT elt.transform_run('lc_recent') > 0 AS ran;
SELECT lc_raw.mismatches('lc_mart.recent_per_region', 't.region', 'lc_raw.orders',
  $$SELECT o.id FROM lc_raw.orders o JOIN lc_raw.customers c ON c.id = o.customer_id
    WHERE o.id > 170 AND c.region = t.region$$) AS mismatches;

-- LATERAL: a row's sources are its outer row's and the lateral rows' it was made of
CREATE TABLE lc_mart.customer_last (customer_id int PRIMARY KEY, last_order bigint, last_two numeric);
SELECT elt.transform_create('lc_last', 'lc_mart.customer_last', $$
  SELECT c.id AS customer_id, l.last_order, l.last_two
  FROM lc_raw.customers c
  CROSS JOIN LATERAL (SELECT max(o.id) AS last_order, sum(o.amount) AS last_two
                      FROM (SELECT id, amount FROM lc_raw.orders o
                            WHERE o.customer_id = c.id ORDER BY o.id DESC LIMIT 2) o) l$$,
  'merge') > 0 AS created;
SELECT elt.transform_run('lc_last') > 0 AS ran;
SELECT lc_raw.mismatches('lc_mart.customer_last', 't.customer_id::text', 'lc_raw.orders',
  $$SELECT o.id FROM lc_raw.orders o WHERE o.customer_id = t.customer_id ORDER BY o.id DESC LIMIT 2$$)
  AS order_mismatches;
SELECT lc_raw.mismatches('lc_mart.customer_last', 't.customer_id::text', 'lc_raw.customers',
  'SELECT t.customer_id') AS customer_mismatches;

-- a set-returning function in FROM: each row it makes comes from its outer row
CREATE TABLE lc_mart.order_tags (order_id bigint, tag text, PRIMARY KEY (order_id, tag));
SELECT elt.transform_create('lc_tags', 'lc_mart.order_tags', $$
  SELECT o.id AS order_id, t.tag FROM lc_raw.orders o, LATERAL unnest(o.tags) AS t(tag)
  WHERE o.id <= 50$$, 'merge') > 0 AS created;
SELECT elt.transform_run('lc_tags') > 0 AS ran;
SELECT count(*) AS rows FROM lc_mart.order_tags;
SELECT lc_raw.mismatches('lc_mart.order_tags', $$format('(%s,%s)', t.order_id, t.tag)$$, 'lc_raw.orders',
  'SELECT t.order_id') AS mismatches;
CREATE TABLE lc_mart.tag_counts (tag text PRIMARY KEY, n bigint);
SELECT elt.transform_create('lc_tag_counts', 'lc_mart.tag_counts', $$
  SELECT t.tag, count(*) AS n FROM lc_raw.orders o CROSS JOIN LATERAL unnest(o.tags) WITH ORDINALITY AS t(tag, i)
  GROUP BY t.tag$$, 'replace') > 0 AS created;
SELECT elt.transform_run('lc_tag_counts') > 0 AS ran;
SELECT lc_raw.mismatches('lc_mart.tag_counts', 't.tag', 'lc_raw.orders',
  'SELECT o.id FROM lc_raw.orders o WHERE t.tag = ANY (o.tags)') AS mismatches;

-- refused, naming the construct (table lineage on request)
CREATE TABLE lc_mart.any_orders (id bigint PRIMARY KEY, n bigint);
\set VERBOSITY terse
SELECT elt.transform_create('lc_bad', 'lc_mart.any_orders',
  'SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY id) AS n FROM lc_raw.orders');
SELECT elt.transform_create('lc_bad', 'lc_mart.any_orders',
  'SELECT id, 1 AS n FROM lc_raw.orders INTERSECT ALL SELECT id, 1 FROM lc_raw.orders');
SELECT elt.transform_create('lc_bad', 'lc_mart.any_orders',
  'SELECT id, 1 AS n FROM lc_raw.orders EXCEPT SELECT id, 1 FROM lc_raw.orders WHERE id > 5');
\set VERBOSITY default
SELECT count(*) AS nothing_created FROM elt.transforms WHERE name = 'lc_bad';

DROP SCHEMA lc_raw, lc_mart CASCADE;
