-- Blue-green with the views a warehouse already has: views in other
-- schemas (a reporting schema, a BI tool's) that read an interface's tables
-- are made to read the interface's views at elt.deploy_init(), as their
-- owner, keeping their owner, grants, comments and options; then they
-- follow every promotion and rollback.  What cannot follow is refused by
-- name.
--   dv_owner    owns the schemas dv_sales and dv_mart and their tables (not a superuser)
--   dv_bi       owns the reporting views (a BI tool's role)
--   dv_member   a member of dv_owner and of dv_bi, who deploys
--   dv_reader   reads the reports; some columns only
--   dv_nobody   owns nothing
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = warning;
SET DateStyle = ISO;

CREATE ROLE dv_owner;
CREATE ROLE dv_bi;
CREATE ROLE dv_member IN ROLE dv_owner;
CREATE ROLE dv_reader;
CREATE ROLE dv_nobody;
SELECT current_database() AS db \gset
GRANT CREATE ON DATABASE :"db" TO dv_owner, dv_bi;

SET ROLE dv_owner;
CREATE SCHEMA dv_sales;
GRANT USAGE ON SCHEMA dv_sales TO dv_bi, dv_reader;
CREATE TABLE dv_sales.orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric(10,2), status text);
INSERT INTO dv_sales.orders VALUES (1, 'ada', 10, 'paid'), (2, 'bob', 250, 'open'), (3, 'cy', 120, 'paid');
CREATE TABLE dv_sales.customers (name text PRIMARY KEY, region text);
INSERT INTO dv_sales.customers VALUES ('ada', 'north'), ('bob', 'south'), ('cy', 'north');
GRANT SELECT ON dv_sales.orders, dv_sales.customers TO dv_bi;
-- the reader may read two columns of orders, for the security_invoker report
GRANT SELECT (id, amount) ON dv_sales.orders TO dv_reader;
RESET ROLE;

SET ROLE dv_bi;
CREATE SCHEMA dv_rep;
GRANT USAGE ON SCHEMA dv_rep TO dv_reader;
-- plain, with a comment and column grants
CREATE VIEW dv_rep.paid AS SELECT o.id, o.customer, o.amount FROM dv_sales.orders o WHERE o.status = 'paid';
COMMENT ON VIEW dv_rep.paid IS 'paid orders';
COMMENT ON COLUMN dv_rep.paid.amount IS 'in euros';
GRANT SELECT (id, amount) ON dv_rep.paid TO dv_reader;
-- reading the invoker's rights
CREATE VIEW dv_rep.amounts WITH (security_invoker = true) AS SELECT id, amount FROM dv_sales.orders;
CREATE VIEW dv_rep.statuses WITH (security_invoker = true) AS SELECT id, status FROM dv_sales.orders;
GRANT SELECT ON dv_rep.amounts, dv_rep.statuses TO dv_reader;
-- options: security_barrier and a check option
CREATE VIEW dv_rep.open_orders WITH (security_barrier) AS SELECT id, customer, status FROM dv_sales.orders WHERE status = 'open'
  WITH LOCAL CHECK OPTION;
-- a join of two tables, and a view on a view
CREATE VIEW dv_rep.by_region AS SELECT c.region, sum(o.amount) AS total FROM dv_sales.orders o JOIN dv_sales.customers c ON c.name = o.customer
  GROUP BY c.region;
CREATE VIEW dv_rep.big_paid AS SELECT id, amount FROM dv_rep.paid WHERE amount > 50;
GRANT SELECT ON dv_rep.big_paid TO dv_reader;
RESET ROLE;
-- what the reader may read before: two columns of the paid orders, the
-- amounts (its own column grants), not the statuses
SET ROLE dv_reader;
SELECT id, amount FROM dv_rep.paid ORDER BY id;
SELECT customer FROM dv_rep.paid;
SELECT id, amount FROM dv_rep.amounts ORDER BY id;
SELECT id, status FROM dv_rep.statuses;
RESET ROLE;

-- what the views answer before
CREATE TABLE dv_before AS
SELECT 'paid' AS v, (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.paid x)::text AS rows
UNION ALL SELECT 'statuses', (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.statuses x)::text
UNION ALL SELECT 'amounts', (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.amounts x)::text
UNION ALL SELECT 'open_orders', (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.open_orders x)::text
UNION ALL SELECT 'by_region', (SELECT json_agg(x ORDER BY x.region) FROM dv_rep.by_region x)::text
UNION ALL SELECT 'big_paid', (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.big_paid x)::text;
CREATE TABLE dv_views_before AS
SELECT c.oid, c.relname, c.relowner::regrole::text AS owner, c.relacl::text AS acl, c.reloptions::text AS options,
       obj_description(c.oid, 'pg_class') AS comment,
       (SELECT string_agg(a.attname || '=' || coalesce(a.attacl::text, '') || '/' || coalesce(col_description(c.oid, a.attnum), ''), ' '
               ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0) AS columns
FROM pg_class c WHERE c.relnamespace = 'dv_rep'::regnamespace;

-------------------------------------------------------------------------------
-- 1. Who may: the caller must have the privileges of each view's owner
-------------------------------------------------------------------------------
-- a role that owns nothing cannot even start
SET ROLE dv_nobody;
SELECT elt.deploy_init('dv_sales');
RESET ROLE;
-- the schema's owner, who is not a member of dv_bi: the views are named,
-- with their owner, and nothing changes
SET ROLE dv_owner;
SELECT elt.deploy_init('dv_sales');
RESET ROLE;
SELECT count(*) AS tables_still_here FROM pg_tables WHERE schemaname = 'dv_sales';
SELECT count(*) AS no_color FROM pg_namespace WHERE nspname = 'dv_sales__blue';

-------------------------------------------------------------------------------
-- 2. What cannot follow is refused, by name, and nothing changes
-------------------------------------------------------------------------------
GRANT dv_bi TO dv_member;
SET ROLE dv_bi;
CREATE MATERIALIZED VIEW dv_rep.totals AS SELECT count(*) AS n FROM dv_sales.orders;
CREATE FUNCTION dv_rep.order_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM dv_sales.orders; END;
CREATE TABLE dv_rep.notes (order_id int, note text);
CREATE POLICY known_orders ON dv_rep.notes USING (order_id IN (SELECT id FROM dv_sales.orders));
CREATE RULE log_notes AS ON INSERT TO dv_rep.notes DO ALSO SELECT count(*) FROM dv_sales.orders;
RESET ROLE;
SET ROLE dv_member;
SELECT elt.deploy_init('dv_sales');
RESET ROLE;
SELECT count(*) AS tables_still_here FROM pg_tables WHERE schemaname = 'dv_sales';
DROP MATERIALIZED VIEW dv_rep.totals;
DROP FUNCTION dv_rep.order_count();
DROP TABLE dv_rep.notes;
-- a temporary view cannot be made again from here
CREATE TEMPORARY VIEW dv_scratch AS SELECT id FROM dv_sales.orders;
SET ROLE dv_member;
SELECT elt.deploy_init('dv_sales');
RESET ROLE;
DROP VIEW dv_scratch;
-- a view whose column would change type: a whole-row reference reads the
-- table's row type, which the interface's view does not have
SET ROLE dv_bi;
CREATE VIEW dv_rep.whole AS SELECT o AS row_value FROM dv_sales.orders o;
-- a view on a system column the interface's view does not have
CREATE VIEW dv_rep.versions AS SELECT xmin AS version, id FROM dv_sales.orders;
RESET ROLE;
SET ROLE dv_member;
SELECT elt.deploy_init('dv_sales');
RESET ROLE;
DROP VIEW dv_rep.whole;
SET ROLE dv_member;
SELECT elt.deploy_init('dv_sales');
RESET ROLE;
DROP VIEW dv_rep.versions;
SELECT count(*) AS tables_still_here FROM pg_tables WHERE schemaname = 'dv_sales';

-------------------------------------------------------------------------------
-- 3. deploy_init as a member of both owners: the views now read the
--    interface's views, and answer the same
-------------------------------------------------------------------------------
SET ROLE dv_member;
SELECT elt.deploy_init('dv_sales') AS tables;
RESET ROLE;
SELECT b.relname, c.oid = b.oid AS same_oid, c.relowner::regrole::text = b.owner AS same_owner,
       c.relacl::text IS NOT DISTINCT FROM b.acl AS same_grants, c.reloptions::text IS NOT DISTINCT FROM b.options AS same_options,
       obj_description(c.oid, 'pg_class') IS NOT DISTINCT FROM b.comment AS same_comment,
       (SELECT string_agg(a.attname || '=' || coalesce(a.attacl::text, '') || '/' || coalesce(col_description(c.oid, a.attnum), ''), ' '
               ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0) = b.columns AS same_columns
FROM dv_views_before b JOIN pg_class c ON c.relname = b.relname AND c.relnamespace = 'dv_rep'::regnamespace ORDER BY 1;
SELECT c.relname, c.reloptions FROM pg_class c WHERE c.relnamespace = 'dv_rep'::regnamespace AND c.reloptions IS NOT NULL ORDER BY 1;
-- what each view reads now: the interface's views, never a color's table
SELECT DISTINCT v.relname AS view, r.oid::regclass AS reads, r.relkind
FROM pg_class v JOIN pg_rewrite w ON w.ev_class = v.oid
JOIN pg_depend d ON d.objid = w.oid AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
JOIN pg_class r ON r.oid = d.refobjid AND r.oid <> v.oid
WHERE v.relnamespace = 'dv_rep'::regnamespace ORDER BY 1, 2;
SELECT b.v, (CASE b.v
  WHEN 'paid' THEN (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.paid x)::text
  WHEN 'amounts' THEN (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.amounts x)::text
  WHEN 'statuses' THEN (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.statuses x)::text
  WHEN 'open_orders' THEN (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.open_orders x)::text
  WHEN 'by_region' THEN (SELECT json_agg(x ORDER BY x.region) FROM dv_rep.by_region x)::text
  WHEN 'big_paid' THEN (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.big_paid x)::text END) = b.rows AS same_rows
FROM dv_before b ORDER BY 1;
SELECT details -> 'views_repointed' AS views_repointed FROM elt.deployment_event_log
WHERE interface = 'dv_sales' AND action = 'deploy_init';
-- the check option still holds (through the interface's view)
SET ROLE dv_owner;
GRANT INSERT ON dv_sales.orders TO dv_bi;
RESET ROLE;
SET ROLE dv_bi;
INSERT INTO dv_rep.open_orders VALUES (4, 'dee', 'paid');
RESET ROLE;

-------------------------------------------------------------------------------
-- 4. The reader sees no more than before: column grants of the report,
--    and the invoker's own column grants for a security_invoker report
-------------------------------------------------------------------------------
SET ROLE dv_reader;
SELECT id, amount FROM dv_rep.paid ORDER BY id;
SELECT customer FROM dv_rep.paid;
SELECT id, amount FROM dv_rep.amounts ORDER BY id;
SELECT id, status FROM dv_rep.statuses;
SELECT id, amount FROM dv_rep.big_paid ORDER BY id;
RESET ROLE;

-------------------------------------------------------------------------------
-- 5. Promote a candidate with other rows: the reports read it; roll back:
--    the old rows again
-------------------------------------------------------------------------------
SET ROLE dv_member;
SELECT elt.deploy_prepare('dv_sales', copy_data => true) AS candidate;
UPDATE dv_sales__green.orders SET status = 'paid' WHERE id = 2;
INSERT INTO dv_sales__green.orders VALUES (5, 'eve', 999, 'paid');
INSERT INTO dv_sales__green.customers VALUES ('eve', 'west');
SELECT elt.deploy_promote('dv_sales', 'v2 of the orders') > 0 AS promoted;
RESET ROLE;
SELECT id, customer, amount FROM dv_rep.paid ORDER BY id;
SELECT region, total FROM dv_rep.by_region ORDER BY 1;
SET ROLE dv_reader;
SELECT id, amount FROM dv_rep.big_paid ORDER BY id;
SELECT id, amount FROM dv_rep.amounts ORDER BY id;
SELECT id, status FROM dv_rep.statuses;
RESET ROLE;
SET ROLE dv_member;
SELECT elt.deploy_rollback('dv_sales', 'v2 reports are wrong') > 0 AS rolled_back;
RESET ROLE;
SELECT id, customer, amount FROM dv_rep.paid ORDER BY id;
SELECT region, total FROM dv_rep.by_region ORDER BY 1;
SELECT b.v, (CASE b.v
  WHEN 'paid' THEN (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.paid x)::text
  WHEN 'by_region' THEN (SELECT json_agg(x ORDER BY x.region) FROM dv_rep.by_region x)::text
  WHEN 'big_paid' THEN (SELECT json_agg(x ORDER BY x.id) FROM dv_rep.big_paid x)::text END) = b.rows AS same_rows
FROM dv_before b WHERE b.v IN ('paid', 'by_region', 'big_paid') ORDER BY 1;

-------------------------------------------------------------------------------
-- 6. A forced promotion that changes a column's type makes the interface's
--    view again; the views on it elsewhere are made again after it, as
--    their owner (the caller must have the owner's privileges), with their
--    grants, column grants and comments
-------------------------------------------------------------------------------
SET ROLE dv_member;
SELECT elt.deploy_prepare('dv_sales', copy_data => true) AS candidate;
ALTER TABLE dv_sales__green.orders ALTER COLUMN amount TYPE numeric(12,2);
RESET ROLE;
SELECT elt.approver_add('dv-lead', 'signs off forced promotions') IS NOT NULL AS approver;
REVOKE dv_bi FROM dv_member;
BEGIN;
SELECT elt.migration_begin('widen amounts', 'amounts grow', 'dv-lead') > 0 AS begun;
SET ROLE dv_member;
SELECT elt.deploy_promote('dv_sales', 'widen amounts', force => true);
ROLLBACK;
GRANT dv_bi TO dv_member;
BEGIN;
SELECT elt.migration_begin('widen amounts', 'amounts grow', 'dv-lead') > 0 AS begun;
SET ROLE dv_member;
SELECT elt.deploy_promote('dv_sales', 'widen amounts', force => true) > 0 AS promoted;
RESET ROLE;
SELECT elt.migration_end() > 0 AS ended;
COMMIT;
SELECT b.relname, c.relowner::regrole::text = b.owner AS same_owner,
       c.relacl::text IS NOT DISTINCT FROM b.acl AS same_grants, c.reloptions::text IS NOT DISTINCT FROM b.options AS same_options,
       obj_description(c.oid, 'pg_class') IS NOT DISTINCT FROM b.comment AS same_comment,
       (SELECT string_agg(a.attname || '=' || coalesce(a.attacl::text, '') || '/' || coalesce(col_description(c.oid, a.attnum), ''), ' '
               ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0) = b.columns AS same_columns
FROM dv_views_before b JOIN pg_class c ON c.relname = b.relname AND c.relnamespace = 'dv_rep'::regnamespace ORDER BY 1;
SELECT format_type(atttypid, atttypmod) AS amount_type FROM pg_attribute WHERE attrelid = 'dv_rep.big_paid'::regclass AND attname = 'amount';
SELECT jsonb_path_query_array(details -> 'views', '$[*] ? (@.change == "dependent view made again").view') AS made_again
FROM elt.deployment_event_log WHERE interface = 'dv_sales' AND action = 'deploy_promote' ORDER BY event_id DESC LIMIT 1;
SET ROLE dv_reader;
SELECT id, amount FROM dv_rep.big_paid ORDER BY id;
SELECT customer FROM dv_rep.paid;
RESET ROLE;

-------------------------------------------------------------------------------
-- 7. A superuser initializing another role's schema: each view is made
--    again as its owner, so it is held to what the owner may do (here the
--    owner lost USAGE on the schema its view names, and cannot name it any
--    more); with it back, the views follow and keep their owner
-------------------------------------------------------------------------------
SET ROLE dv_owner;
CREATE SCHEMA dv_mart;
GRANT USAGE ON SCHEMA dv_mart TO dv_bi;
CREATE TABLE dv_mart.stock (sku text PRIMARY KEY, qty int);
INSERT INTO dv_mart.stock VALUES ('a', 1), ('b', 0);
GRANT SELECT ON dv_mart.stock TO dv_bi;
RESET ROLE;
SET ROLE dv_bi;
CREATE VIEW dv_rep.in_stock AS SELECT sku FROM dv_mart.stock WHERE qty > 0;
GRANT SELECT ON dv_rep.in_stock TO dv_reader;
RESET ROLE;
REVOKE USAGE ON SCHEMA dv_mart FROM dv_bi;
SELECT elt.deploy_init('dv_mart');
SELECT count(*) AS tables_still_here FROM pg_tables WHERE schemaname = 'dv_mart';
GRANT USAGE ON SCHEMA dv_mart TO dv_bi;
SELECT elt.deploy_init('dv_mart') AS tables;
-- (PostgreSQL 17 adds MAINTAIN, m, to the owner's privileges: left out)
SELECT c.relowner::regrole AS owner, regexp_replace(c.relacl::text, 'xtm/', 'xt/', 'g') AS relacl FROM pg_class c WHERE c.oid = 'dv_rep.in_stock'::regclass;
SET ROLE dv_reader;
SELECT sku FROM dv_rep.in_stock;
RESET ROLE;

-- clean up
DROP TABLE dv_before, dv_views_before;
SELECT valid FROM elt.audit_verify();
DROP SCHEMA dv_rep, dv_sales, dv_sales__blue, dv_sales__green, dv_mart, dv_mart__blue CASCADE;
REVOKE CREATE ON DATABASE :"db" FROM dv_owner, dv_bi;
DROP OWNED BY dv_owner, dv_bi, dv_member, dv_reader, dv_nobody;
DROP ROLE dv_member, dv_reader, dv_nobody, dv_bi, dv_owner;
