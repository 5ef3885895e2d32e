-- elt.check_ddl(): a dry run of a whole script against the live catalog.
CREATE EXTENSION elt_governance;
SET elt.large_table_rows = 100;
CREATE SCHEMA k;
CREATE TABLE k.orders (order_id bigint PRIMARY KEY, amount numeric(10,2) NOT NULL,
                       note varchar(20), qty int, status text DEFAULT 'new');
CREATE TABLE k.big (id int PRIMARY KEY, v int);
INSERT INTO k.big SELECT g, g FROM generate_series(1, 1000) g;
ANALYZE k.big;
ANALYZE k.orders;
CREATE VIEW k.revenue AS SELECT sum(amount) AS total FROM k.orders;
CREATE TABLE public.plain (id int, v text);
SELECT elt.govern('k');
SELECT elt.consumer_register('k.orders', 'dashboard:ops', ARRAY['qty']);

-- one finding per row, in statement order; nothing is executed
SELECT statement_no, statement, rule, class, object, dependents
FROM elt.check_ddl($$
ALTER TABLE k.orders ADD COLUMN region text;
ALTER TABLE k.orders DROP COLUMN amount;
ALTER TABLE k.orders ALTER COLUMN qty TYPE bigint;
ALTER TABLE k.orders ALTER COLUMN note TYPE varchar(10);
CREATE INDEX ON k.big (v);
CREATE INDEX CONCURRENTLY ON k.big (v);
CREATE INDEX ON k.orders (note);
ALTER TABLE public.plain DROP COLUMN v;
COMMENT ON TABLE k.orders IS 'orders';
$$);
SELECT count(*) AS region_added FROM pg_attribute
WHERE attrelid = 'k.orders'::regclass AND attname = 'region';

-- reason and suggestion
SELECT rule, reason, suggestion FROM elt.check_ddl(
    'ALTER TABLE k.orders RENAME COLUMN note TO remark');

-- later statements see what earlier ones did: a table created in the script
-- is not missing and has no readers; a renamed table is found under its new
-- name and gone under the old; a dropped column is gone; SET lock_timeout
-- takes EG208 away
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
CREATE TABLE k.new_orders (id int);
ALTER TABLE k.new_orders ADD COLUMN total int NOT NULL;
ALTER TABLE k.new_orders DROP COLUMN total;
ALTER TABLE k.orders ADD COLUMN batch int;
ALTER TABLE k.orders DROP COLUMN batch;
ALTER TABLE k.orders RENAME COLUMN note TO remark;
ALTER TABLE k.orders ALTER COLUMN remark TYPE text;
ALTER TABLE k.orders ALTER COLUMN note TYPE text;
ALTER TABLE k.orders RENAME TO orders_v1;
ALTER TABLE k.orders_v1 DROP COLUMN status;
ALTER TABLE k.orders ADD COLUMN x int;
ALTER TABLE k.orders_v1 DROP COLUMN status;
SET lock_timeout = '3s';
ALTER TABLE k.orders_v1 ALTER COLUMN qty TYPE bigint;
RESET lock_timeout;
ALTER TABLE k.orders_v1 ALTER COLUMN qty TYPE bigint;
ALTER TABLE k.nope ADD COLUMN y int;
ALTER TABLE IF EXISTS k.nope ADD COLUMN y int;
DROP TABLE IF EXISTS k.nope;
CREATE TYPE k.level AS ENUM ('low');
ALTER TYPE k.level ADD VALUE 'high';
$$) ORDER BY statement_no, rule;

-- the last thing the script did to a name is what counts
SELECT statement_no, rule, object FROM elt.check_ddl($$
ALTER TABLE k.orders DROP COLUMN qty;
ALTER TABLE k.orders ADD COLUMN qty int;
ALTER TABLE k.orders ALTER COLUMN qty SET NOT NULL;
ALTER TABLE k.orders RENAME COLUMN note TO note2;
ALTER TABLE k.orders RENAME COLUMN note2 TO note;
ALTER TABLE k.orders DROP COLUMN note;
ALTER TABLE k.orders RENAME TO orders2;
ALTER TABLE k.orders2 RENAME TO orders;
ALTER TABLE k.orders2 ADD COLUMN z int;
ALTER TABLE k.orders ADD COLUMN z int NOT NULL;
$$) ORDER BY statement_no, rule;

-- SET search_path in the script, and tables created with their schema
SELECT statement_no, rule, object FROM elt.check_ddl($$
SET search_path = k;
ALTER TABLE orders DROP COLUMN qty;
RESET search_path;
ALTER TABLE orders DROP COLUMN qty;
CREATE SCHEMA k2 CREATE TABLE t (id int) CREATE VIEW v AS SELECT 1 AS one;
ALTER TABLE k2.t ADD COLUMN x int NOT NULL;
$$) ORDER BY statement_no, rule;
SHOW search_path;
-- a schema the script creates comes first in its search_path
SELECT statement_no, rule, object FROM elt.check_ddl($$
CREATE SCHEMA staging;
SET search_path = staging;
CREATE TABLE orders (id int);
SET search_path = k;
DROP TABLE orders;
$$);
-- domains the script creates, and lock_timeout '0s' is no timeout
SELECT statement_no, rule, object FROM elt.check_ddl($$
CREATE DOMAIN public.d AS int;
ALTER DOMAIN public.d SET NOT NULL;
SET lock_timeout = '0s';
ALTER TABLE k.orders ALTER COLUMN qty TYPE bigint;
$$) ORDER BY statement_no, rule;
-- an error while checking names the statement
SELECT * FROM elt.check_ddl($$ALTER TABLE k.orders ADD COLUMN a int;
ALTER TABLE k.orders ALTER COLUMN note TYPE varchar(0);$$);

-- the live catalog is unchanged
SELECT attname FROM pg_attribute WHERE attrelid = 'k.orders'::regclass AND attnum > 0
ORDER BY attnum;

-- a syntax error anywhere stops the whole check, with its line and column
SELECT * FROM elt.check_ddl($$ALTER TABLE k.orders ADD COLUMN a int;
ALTER TABLE k.orders DROP COLUM b;$$);
-- an empty script, comments only, or NULL: no findings
SELECT count(*) FROM elt.check_ddl('');
SELECT count(*) FROM elt.check_ddl('-- nothing here');
SELECT count(*) FROM elt.check_ddl(NULL);
-- statements that are not DDL are skipped
SELECT count(*) FROM elt.check_ddl('SELECT 1; INSERT INTO k.orders VALUES (1, 1)');
-- in a database where nothing is governed, only missing objects are reported
SELECT elt.ungovern('k');
SELECT statement_no, rule, object FROM elt.check_ddl(
    'ALTER TABLE k.orders DROP COLUMN amount; ALTER TABLE k.gone DROP COLUMN a');

DROP EXTENSION elt_governance;
DROP SCHEMA k CASCADE;
DROP TABLE public.plain;
