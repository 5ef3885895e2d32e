-- DDL impact through lineage (issue 23): the current version of every
-- transform is a consumer of the source columns its column lineage names and
-- of the target columns it writes.  Dropping, renaming or narrowing one is
-- breaking and names the transform and its owner, under enforce before the
-- DDL runs, under warn in a WARNING, and in check_ddl.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = notice;
CREATE ROLE cl_etl;
CREATE SCHEMA cl_raw;
CREATE SCHEMA cl_mart;
CREATE TABLE cl_raw.orders (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2),
                            qty int, note text, region text);
CREATE TABLE cl_raw.customers (id int PRIMARY KEY, name text);
INSERT INTO cl_raw.customers VALUES (1, 'a'), (2, 'b');
INSERT INTO cl_raw.orders SELECT g, 1 + g % 2, g * 1.5, g, 'n' || g, 'r' FROM generate_series(1, 10) g;
CREATE TABLE cl_mart.revenue (customer text PRIMARY KEY, total numeric, n bigint,
                              loaded_at timestamptz DEFAULT now());
CREATE TABLE cl_raw.events (id bigint PRIMARY KEY);
CREATE TABLE cl_mart.event_count (k text PRIMARY KEY, n bigint);
GRANT USAGE ON SCHEMA cl_raw, cl_mart TO cl_etl;
GRANT SELECT ON ALL TABLES IN SCHEMA cl_raw TO cl_etl;
GRANT ALL ON ALL TABLES IN SCHEMA cl_mart TO cl_etl;
SET ROLE cl_etl;
SELECT elt.transform_create('cl_revenue', 'cl_mart.revenue',
  $$SELECT c.name AS customer, sum(o.amount) AS total, count(*) AS n
    FROM cl_raw.orders o JOIN cl_raw.customers c ON c.id = o.customer_id
    WHERE o.qty > 0 GROUP BY c.name$$) > 0 AS created;
-- a transform that reads a table without naming a column of it
SELECT elt.transform_create('cl_event_count', 'cl_mart.event_count',
  'SELECT ''all'' AS k, count(*) AS n FROM cl_raw.events') > 0 AS created;
RESET ROLE;
SELECT elt.govern('cl_raw', 'enforce');
DROP TABLE cl_raw.events;

-- read as a value, as a join key, as a filter: each names the transform
ALTER TABLE cl_raw.orders DROP COLUMN amount;
ALTER TABLE cl_raw.orders RENAME COLUMN customer_id TO client_id;
ALTER TABLE cl_raw.orders ALTER COLUMN qty TYPE smallint;
ALTER TABLE cl_raw.customers DROP COLUMN name;
DROP TABLE cl_raw.customers;
-- a column no transform reads: the finding names nobody
ALTER TABLE cl_raw.orders DROP COLUMN note;
-- a widening keeps the values readable: no finding for the transform
SELECT rule, dependents FROM elt.check_ddl('ALTER TABLE cl_raw.orders ALTER COLUMN qty TYPE bigint')
ORDER BY rule;
SELECT count(*) AS columns_kept FROM pg_attribute
WHERE attrelid = 'cl_raw.orders'::regclass AND attnum > 0 AND NOT attisdropped;

-- check_ddl says the same
SELECT statement_no, rule, object, dependents
FROM elt.check_ddl($$
ALTER TABLE cl_raw.orders DROP COLUMN amount;
ALTER TABLE cl_raw.orders RENAME COLUMN region TO area;
ALTER TABLE cl_raw.orders DROP COLUMN region;
$$) ORDER BY statement_no, rule;

-- the target's columns it writes (by its output names, with or without a
-- source column), not the ones it leaves to their default
SELECT elt.govern('cl_mart', 'enforce');
ALTER TABLE cl_mart.revenue DROP COLUMN total;
ALTER TABLE cl_mart.revenue RENAME COLUMN n TO orders;
SELECT rule, dependents FROM elt.check_ddl('ALTER TABLE cl_mart.revenue DROP COLUMN loaded_at')
ORDER BY rule;

-- under warn: it runs, with a WARNING that names the transform, recorded
SELECT elt.govern('cl_raw', 'warn');
ALTER TABLE cl_raw.orders DROP COLUMN amount;
SELECT rule, decision, dependents FROM elt.schema_changes
WHERE object = 'cl_raw.orders.amount' ORDER BY change_id DESC LIMIT 1;

-- only the current version counts: a version that no longer reads the
-- column frees it
SET ROLE cl_etl;
SELECT elt.transform_update('cl_revenue',
  $$SELECT c.name AS customer, 0::numeric AS total, count(*) AS n
    FROM cl_raw.orders o JOIN cl_raw.customers c ON c.id = o.customer_id GROUP BY c.name$$) > 0 AS updated;
RESET ROLE;
SELECT rule, dependents FROM elt.check_ddl('ALTER TABLE cl_raw.orders DROP COLUMN qty');

-- impact_of_ddl walks the lineage graph: the transform that breaks, its
-- target left stale, the transforms that read that target, their targets,
-- and the consumers registered on them
CREATE TABLE cl_mart.top (customer text PRIMARY KEY, total numeric);
GRANT ALL ON cl_mart.top TO cl_etl;
SET ROLE cl_etl;
SELECT elt.transform_create('cl_top', 'cl_mart.top',
  'SELECT customer, total FROM cl_mart.revenue WHERE total > 0') > 0 AS created;
RESET ROLE;
SELECT elt.consumer_register('cl_mart.top', 'finance_dashboard');
SELECT * FROM elt.impact_of_ddl($$
ALTER TABLE cl_raw.orders DROP COLUMN customer_id;
ALTER TABLE cl_raw.orders DROP COLUMN region;
$$);
SELECT count(*) AS nothing_breaks FROM elt.impact_of_ddl('ALTER TABLE cl_raw.orders ADD COLUMN x int');
-- a role that owns nothing: names are resolved with its rights (no USAGE
-- on the schema, check_ddl's error); with USAGE it sees what everyone sees
-- (transforms, their owners and consumers are public); nothing changes
CREATE ROLE cl_nobody;
SET ROLE cl_nobody;
SELECT depth, kind, name, via FROM elt.impact_of_ddl('ALTER TABLE cl_raw.orders DROP COLUMN customer_id');
RESET ROLE;
GRANT USAGE ON SCHEMA cl_raw TO cl_nobody;
SET ROLE cl_nobody;
SELECT depth, kind, name, via FROM elt.impact_of_ddl('ALTER TABLE cl_raw.orders DROP COLUMN customer_id');
RESET ROLE;
REVOKE USAGE ON SCHEMA cl_raw FROM cl_nobody;
DROP ROLE cl_nobody;
SELECT attnum > 0 AS column_still_there FROM pg_attribute
WHERE attrelid = 'cl_raw.orders'::regclass AND attname = 'customer_id';
SELECT elt.impact_of_ddl(NULL);

SELECT elt.ungovern('cl_raw');
SELECT elt.ungovern('cl_mart');
DROP SCHEMA cl_raw, cl_mart CASCADE;
DROP ROLE cl_etl;
