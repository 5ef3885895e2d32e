-- Row lineage honours row-level security.  elt.trace() and elt.impact()
-- show the keys of rows; a key is a row's identity, so a row that a policy
-- hides from the caller must not be shown by its key either.  Starting
-- from a relation whose row-level security applies to the caller is
-- refused (as elt.table_checksum() is); relations reached on the way whose
-- row-level security applies to the caller are left out, like relations it
-- may not read, and counted in a NOTICE.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = notice;

-- sln_owner owns the schema and its tables; sln_reader reads them through
-- policies; the superuser made the transforms and runs them
CREATE ROLE sln_owner;
CREATE ROLE sln_reader;
CREATE SCHEMA sln AUTHORIZATION sln_owner;
SET ROLE sln_owner;
CREATE TABLE sln.orders (id int PRIMARY KEY, region text NOT NULL, amount int NOT NULL);
INSERT INTO sln.orders VALUES (1, 'north', 10), (2, 'south', 20), (3, 'north', 30), (4, 'south', 40);
ALTER TABLE sln.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY north_only ON sln.orders FOR SELECT TO sln_reader USING (region = 'north');
-- one row per order, and one per region: neither has row-level security
CREATE TABLE sln.order_copy (id int PRIMARY KEY, amount int);
CREATE TABLE sln.region_totals (region text PRIMARY KEY, total bigint);
-- made from the totals, with row-level security of its own
CREATE TABLE sln.region_flags (region text PRIMARY KEY, big boolean);
ALTER TABLE sln.region_flags ENABLE ROW LEVEL SECURITY;
CREATE POLICY not_south ON sln.region_flags FOR SELECT TO sln_reader USING (region <> 'south');
-- and made from the totals, without
CREATE TABLE sln.region_names (region text PRIMARY KEY, label text);
GRANT USAGE ON SCHEMA sln TO sln_reader;
GRANT SELECT ON sln.orders, sln.order_copy, sln.region_totals, sln.region_flags, sln.region_names
  TO sln_reader;
RESET ROLE;
SELECT elt.transform_create('sln_copy', 'sln.order_copy', 'SELECT id, amount FROM sln.orders') > 0 AS created;
SELECT elt.transform_create('sln_totals', 'sln.region_totals',
  'SELECT region, sum(amount) AS total FROM sln.orders GROUP BY region') > 0 AS created;
SELECT elt.transform_create('sln_flags', 'sln.region_flags',
  'SELECT region, total > 40 AS big FROM sln.region_totals') > 0 AS created;
SELECT elt.transform_create('sln_names', 'sln.region_names',
  'SELECT region, upper(region) AS label FROM sln.region_totals') > 0 AS created;
SELECT elt.transform_run('sln_copy') > 0 AS ran;
SELECT elt.transform_run('sln_totals') > 0 AS ran;
SELECT elt.transform_run('sln_flags') > 0 AS ran;
SELECT elt.transform_run('sln_names') > 0 AS ran;

-------------------------------------------------------------------------------
-- The reader: the policies hide the south orders and the south flag
-------------------------------------------------------------------------------
SET ROLE sln_reader;
SELECT id, region FROM sln.orders ORDER BY id;
SELECT region FROM sln.region_flags ORDER BY region;
-- upstream into sln.orders: left out, counted in the NOTICE; order 2 is
-- not shown, nor are the orders of the south total
SELECT depth, relation, key FROM elt.trace('sln.order_copy', '2');
SELECT depth, relation, key FROM elt.trace('sln.region_totals', 'south');
-- the whole relation is left out, also for the rows the reader may see
SELECT depth, relation, key FROM elt.trace('sln.order_copy', '1');
-- relations without row-level security are shown; the walk stops where
-- it applies: upstream at sln.orders, downstream at sln.region_flags
SELECT depth, relation, key FROM elt.trace('sln.region_names', 'south');
SELECT depth, relation, key FROM elt.impact('sln.region_totals', 'south');
-- starting from a relation whose row-level security applies: refused
SELECT depth, relation, key FROM elt.impact('sln.orders', '2');
SELECT depth, relation, key FROM elt.impact('sln.orders', '1');
SELECT depth, relation, key FROM elt.trace('sln.region_flags', 'south');
\set VERBOSITY sqlstate
SELECT depth, relation, key FROM elt.impact('sln.orders', '2');
\set VERBOSITY default
RESET ROLE;

-------------------------------------------------------------------------------
-- The owner: not subject to its own policies, sees everything
-------------------------------------------------------------------------------
SET ROLE sln_owner;
SELECT depth, relation, key FROM elt.trace('sln.region_names', 'south') ORDER BY depth, key;
SELECT depth, relation, key FROM elt.impact('sln.region_totals', 'south') ORDER BY relation::text;
SELECT depth, relation, key FROM elt.trace('sln.order_copy', '2');
SELECT depth, relation, key FROM elt.trace('sln.region_totals', 'south') ORDER BY key;
SELECT depth, relation, key FROM elt.impact('sln.orders', '2') ORDER BY depth, relation::text;
SELECT depth, relation, key FROM elt.trace('sln.region_flags', 'south') ORDER BY depth, key;
-- until it forces row-level security on itself: then its policies (none
-- for it: it sees no row) apply to it too
ALTER TABLE sln.orders FORCE ROW LEVEL SECURITY;
SELECT count(*) AS orders_the_owner_sees FROM sln.orders;
SELECT depth, relation, key FROM elt.trace('sln.order_copy', '2');
SELECT depth, relation, key FROM elt.trace('sln.region_flags', 'south') ORDER BY depth, key;
SELECT depth, relation, key FROM elt.impact('sln.orders', '2');
RESET ROLE;

-------------------------------------------------------------------------------
-- A superuser bypasses row-level security: everything, even when forced
-------------------------------------------------------------------------------
SELECT depth, relation, key FROM elt.trace('sln.region_names', 'south') ORDER BY depth, key;
SELECT depth, relation, key FROM elt.trace('sln.order_copy', '2');
SELECT depth, relation, key FROM elt.trace('sln.region_flags', 'south') ORDER BY depth, key;
SELECT depth, relation, key FROM elt.impact('sln.orders', '2') ORDER BY depth, relation::text;

-- the lineage itself is untouched: the reader was only shown less of it
SELECT count(*) AS lineage_rows FROM elt.lineage_rows l
JOIN elt.transform_runs r USING (run_id) JOIN elt.transform_defs d USING (transform_id)
WHERE d.name LIKE 'sln\_%';

DROP SCHEMA sln CASCADE;
DROP OWNED BY sln_owner;
DROP ROLE sln_owner;
DROP OWNED BY sln_reader;
DROP ROLE sln_reader;
