-- Transforms and replays in a sandbox: a version, SQL not recorded yet and
-- an older version run over a masked sample's copies, their output checked
-- against the same SQL over the copies and against live; replay of a
-- pipeline run into a sandbox; whose code may run as the sandbox's owner;
-- privileges and bad input.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = warning;
SET DateStyle = ISO;
SET TimeZone = 'UTC';
SELECT COALESCE(pg_catalog.max(id), 0) AS audit_start FROM elt.audit_log \gset
-- an error whose message names a run id (which depends on the suites run before)
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN regexp_replace(SQLERRM, 'run [0-9]+', 'run N', 'g');
END $$;

CREATE ROLE sr_etl;
CREATE ROLE sr_analyst;
CREATE ROLE sr_nobody;
CREATE SCHEMA sr_shop AUTHORIZATION sr_etl;
CREATE SCHEMA sr_mart AUTHORIZATION sr_etl;
GRANT USAGE ON SCHEMA sr_shop, sr_mart TO sr_analyst;
GRANT CREATE ON DATABASE contrib_regression TO sr_analyst, sr_etl;

SET ROLE sr_etl;
CREATE TABLE sr_shop.customers (id int PRIMARY KEY, email text NOT NULL, region text NOT NULL);
CREATE TABLE sr_shop.orders (
    id bigint PRIMARY KEY,
    customer_id int NOT NULL REFERENCES sr_shop.customers,
    amount numeric(10,2) NOT NULL,
    status text NOT NULL
);
-- a merge target inside the copied schema: the sandbox has its copy
CREATE TABLE sr_shop.region_days (region text PRIMARY KEY, orders bigint NOT NULL);
INSERT INTO sr_shop.customers
SELECT g, 'c' || g || '@x.test', (ARRAY['north', 'south'])[1 + g % 2] FROM generate_series(1, 200) g;
INSERT INTO sr_shop.orders
SELECT o, 1 + o % 200, (o % 50) + 0.5, CASE WHEN o % 10 = 0 THEN 'cancelled' ELSE 'paid' END
FROM generate_series(1, 2000) o;
CREATE TABLE sr_mart.customer_totals (customer_id int PRIMARY KEY, orders bigint NOT NULL, total numeric NOT NULL);
-- a target whose name is taken in the sandbox by another source's copy
CREATE TABLE sr_mart.orders (id bigint PRIMARY KEY);
GRANT SELECT ON sr_shop.customers, sr_shop.orders, sr_shop.region_days, sr_mart.customer_totals TO sr_analyst;
SELECT elt.mask_set('sr_shop.customers', 'id', 'hash') > 0 AS set;
SELECT elt.mask_set('sr_shop.orders', 'customer_id', 'hash') > 0 AS set;
SELECT elt.mask_set('sr_shop.customers', 'email', 'pseudonym', '{"kind": "email"}') > 0 AS set;
SELECT elt.transform_create('totals', 'sr_mart.customer_totals',
  'SELECT o.customer_id, count(*) AS orders, sum(o.amount) AS total FROM sr_shop.orders o GROUP BY o.customer_id',
  'replace') > 0 AS created;
SELECT elt.transform_create('region_days', 'sr_shop.region_days',
  'SELECT c.region, count(*) AS orders FROM sr_shop.orders o JOIN sr_shop.customers c ON c.id = o.customer_id GROUP BY c.region',
  'merge') > 0 AS created;
SELECT elt.transform_create('order_ids', 'sr_mart.orders', 'SELECT id FROM sr_shop.orders', 'append') > 0 AS created;
SELECT elt.transform_run('totals') > 0 AS live_run;
RESET ROLE;
SELECT elt.table_checksum('sr_mart.customer_totals') AS live_checksum \gset
SELECT count(*) AS transform_runs_before FROM elt.transform_runs \gset

-------------------------------------------------------------------------------
-- The current version, in its owner's masked 20% sandbox
-------------------------------------------------------------------------------
SET ROLE sr_etl;
SELECT relation, rows > 0 AS has_rows
FROM elt.sandbox_create('sb_a', ARRAY['sr_shop'], '{"percent": 20, "seed": 7}') ORDER BY relation::text COLLATE "C";
SELECT elt.transform_run('totals', sandbox => 'sb_a') AS r1 \gset
-- the sandbox got a table shaped like the target: its columns and key, the owner's alone
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, c.relacl IS NULL AS default_acl,
       (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                          ', ' ORDER BY a.attnum)
        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0) AS columns,
       (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS key
FROM pg_class c WHERE c.oid = 'sb_a.customer_totals'::regclass;
-- exactly what the SQL gives over the sandbox's copies
SELECT count(*) AS rows,
       (SELECT count(*) FROM (SELECT * FROM sb_a.customer_totals
                              EXCEPT SELECT customer_id, count(*), sum(amount) FROM sb_a.orders GROUP BY customer_id) d) AS not_in_oracle,
       (SELECT count(*) FROM (SELECT customer_id, count(*), sum(amount) FROM sb_a.orders GROUP BY customer_id
                              EXCEPT SELECT * FROM sb_a.customer_totals) d) AS missing,
       (SELECT count(*) FROM sb_a.customer_totals t JOIN sb_a.customers c ON c.id = t.customer_id) AS joins_masked_customers,
       (SELECT count(*) FROM sb_a.customer_totals t JOIN sr_mart.customer_totals l USING (customer_id)) AS live_keys
FROM sb_a.customer_totals;
-- recorded as a run of kind 'sandbox', of the sandbox's owner, with a manifest
SELECT kind, pipeline, status, role, sandbox, replay_of FROM elt.runs WHERE run_id = :r1;
SELECT m -> 'run' ->> 'kind' AS kind, m -> 'run' ->> 'sandbox' AS sandbox,
       s ->> 'transform' AS transform, s ->> 'version' AS version, s ->> 'lineage' AS lineage,
       s -> 'relations' AS relations, s ->> 'sandbox_target' AS sandbox_target,
       (s ->> 'rows_read')::int = (SELECT count(*) FROM sb_a.orders) AS rows_read,
       (s ->> 'rows_written')::int = (SELECT count(*) FROM sb_a.customer_totals) AS rows_written
FROM elt.run_manifest(:r1) m, jsonb_array_elements(m -> 'steps') s;
SELECT i ->> 'relation' AS input, i ->> 'role' AS role,
       i ->> 'checksum' = elt.table_checksum((i ->> 'relation')::regclass) AS checksum_matches
FROM elt.run_manifest(:r1) m, jsonb_array_elements(m -> 'inputs') i;
SELECT o ->> 'relation' AS output, o ->> 'checksum' = elt.table_checksum('sb_a.customer_totals') AS checksum_matches
FROM elt.run_manifest(:r1) m, jsonb_array_elements(m -> 'outputs') o;
RESET ROLE;
-- live is untouched, and no transform run or lineage was recorded
SELECT elt.table_checksum('sr_mart.customer_totals') = :'live_checksum' AS live_unchanged,
       (SELECT count(*) FROM elt.transform_runs) = :transform_runs_before AS no_transform_run;

-------------------------------------------------------------------------------
-- A new version tried first: SQL not recorded yet, compared with the current one
-------------------------------------------------------------------------------
SET ROLE sr_etl;
CREATE TABLE sb_a.current_output AS SELECT * FROM sb_a.customer_totals;
SELECT elt.transform_run('totals', sandbox => 'sb_a', sql => $$
  SELECT o.customer_id, count(*) AS orders,
         coalesce(sum(o.amount) FILTER (WHERE o.status = 'paid'), 0) AS total
  FROM sr_shop.orders o GROUP BY o.customer_id$$) AS r2 \gset
SELECT s ->> 'version' AS version, s ->> 'code_hash' IS NOT NULL AS hashed
FROM elt.run_manifest(:r2) m, jsonb_array_elements(m -> 'steps') s;
-- what the change does: totals lose the cancelled orders, nothing else moves
SELECT count(*) AS customers,
       count(*) FILTER (WHERE n.total < c.total) AS lower,
       count(*) FILTER (WHERE n.total > c.total) AS higher,
       count(*) FILTER (WHERE n.orders <> c.orders) AS orders_changed,
       sum(c.total - n.total) = (SELECT sum(amount) FROM sb_a.orders WHERE status = 'cancelled') AS difference_is_cancelled
FROM sb_a.current_output c JOIN sb_a.customer_totals n USING (customer_id);
-- an SQL that does not fit the target: the usual error, nothing written
SELECT elt.transform_run('totals', sandbox => 'sb_a', sql => 'SELECT o.id FROM sr_shop.orders o');
SELECT count(*) FROM sb_a.customer_totals;
RESET ROLE;

-- a merge target the sandbox copied is written in its copy
SET ROLE sr_etl;
SELECT elt.transform_run('region_days', sandbox => 'sb_a') > 0 AS merged;
SELECT r.region, r.orders = (SELECT count(*) FROM sb_a.orders o JOIN sb_a.customers c ON c.id = o.customer_id
                             WHERE c.region = r.region) AS right_count
FROM sb_a.region_days r ORDER BY r.region COLLATE "C";
RESET ROLE;
SELECT count(*) AS live_region_days FROM sr_shop.region_days;

-------------------------------------------------------------------------------
-- Whose SQL runs: in a sandbox, the owner's own (or a superuser's) only
-------------------------------------------------------------------------------
SET ROLE sr_etl;
CREATE FUNCTION sr_mart.twice(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
SELECT elt.transform_update('totals',
  'SELECT o.customer_id, count(*) AS orders, sr_mart.twice(sum(o.amount)) AS total FROM sr_shop.orders o GROUP BY o.customer_id') AS version;
SELECT elt.transform_run('totals', sandbox => 'sb_a', version => 1) > 0 AS older_version;
SELECT elt.transform_run('totals', sandbox => 'sb_a') > 0 AS own_function;
SELECT (SELECT sum(total) FROM sb_a.customer_totals) = 2 * (SELECT sum(amount) FROM sb_a.orders) AS twice;
RESET ROLE;
-- the analyst's sandbox does not run the owner's SQL, any version
SET ROLE sr_analyst;
SELECT relation, rows > 0 AS has_rows
FROM elt.sandbox_create('sb_an', ARRAY['sr_shop'], '{"percent": 20, "seed": 7}') ORDER BY relation::text COLLATE "C";
SELECT elt.transform_run('totals', sandbox => 'sb_an');
SELECT elt.transform_run('totals', sandbox => 'sb_an', version => 1);
-- read, and passed by the analyst itself, it is the analyst's SQL
SELECT elt.transform_run('totals', sandbox => 'sb_an',
  sql => (SELECT v.sql FROM elt.transform_versions v WHERE v.transform = 'totals' AND v.version = 1)) > 0 AS passed;
SELECT count(*) > 0 AS written FROM sb_an.customer_totals;
RESET ROLE;
-- nor does a superuser's: the owner's type, whose domain runs a CHECK on input
SET ROLE sr_etl;
CREATE FUNCTION sr_mart.positive(numeric) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0';
CREATE DOMAIN sr_mart.amount AS numeric CHECK (sr_mart.positive(VALUE));
CREATE TYPE sr_mart.wrapped AS (a sr_mart.amount);
SELECT elt.transform_update('totals',
  'SELECT o.customer_id, count(*) AS orders, ((''(5)''::sr_mart.wrapped).a)::numeric AS total FROM sr_shop.orders o GROUP BY o.customer_id') AS version;
RESET ROLE;
SELECT count(*) AS tables FROM elt.sandbox_create('sb_su', ARRAY['sr_shop'], '{"percent": 20, "seed": 7}');
SELECT elt.transform_run('totals', sandbox => 'sb_su');
SELECT elt.transform_run('totals', sandbox => 'sb_su', version => 1);
-- a superuser's transform runs in another role's sandbox, as that role
CREATE TABLE sr_mart.order_count (n bigint PRIMARY KEY);
SELECT elt.transform_create('order_count', 'sr_mart.order_count', 'SELECT count(*) AS n FROM sr_shop.orders', 'replace') > 0 AS created;
SET ROLE sr_analyst;
SELECT elt.transform_run('order_count', sandbox => 'sb_an') > 0 AS superuser_sql;
SELECT n = (SELECT count(*) FROM sb_an.orders) AS counted, pg_get_userbyid(c.relowner) AS owner
FROM sb_an.order_count, pg_class c WHERE c.oid = 'sb_an.order_count'::regclass;
RESET ROLE;
SELECT elt.sandbox_drop('sb_su');
-- the table a run writes is a plain table of the owner's: not a view over a live table, nor one with triggers
SET ROLE sr_etl;
CREATE TABLE sr_mart.flags (id bigint PRIMARY KEY);
CREATE TABLE sr_mart.flags_live (id bigint PRIMARY KEY);
SELECT elt.transform_create('flags', 'sr_mart.flags', 'SELECT o.id FROM sr_shop.orders o WHERE o.id % 10 = 1', 'append') > 0 AS created;
CREATE VIEW sb_a.flags AS SELECT id FROM sr_mart.flags_live;
SELECT elt.transform_run('flags', sandbox => 'sb_a');
SELECT count(*) AS live_untouched FROM sr_mart.flags_live;
DROP VIEW sb_a.flags;
CREATE TABLE sb_a.flags (id bigint PRIMARY KEY);
CREATE FUNCTION sb_a.flag_copy() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO sr_mart.flags_live VALUES (NEW.id); RETURN NEW; END$$;
CREATE TRIGGER copy_out AFTER INSERT ON sb_a.flags FOR EACH ROW EXECUTE FUNCTION sb_a.flag_copy();
SELECT elt.transform_run('flags', sandbox => 'sb_a');
DROP TABLE sb_a.flags;
SELECT elt.transform_run('flags', sandbox => 'sb_a') > 0 AS made_its_own;
SELECT count(*) = (SELECT count(*) FROM sb_a.orders WHERE id % 10 = 1) AS flags FROM sb_a.flags;
RESET ROLE;

-- a copy replaced by a view over a live table is not written either
SET ROLE sr_etl;
DROP TABLE sb_a.region_days;
CREATE VIEW sb_a.region_days AS SELECT * FROM sr_shop.region_days;
SELECT elt.transform_run('region_days', sandbox => 'sb_a');
SELECT count(*) AS live_untouched FROM sr_shop.region_days;
DROP VIEW sb_a.region_days;
-- nor a partitioned table with a partition attached from outside the sandbox
CREATE TABLE sb_a.region_days (region text PRIMARY KEY, orders bigint NOT NULL) PARTITION BY LIST (region);
CREATE TABLE sr_mart.north_days (region text PRIMARY KEY, orders bigint NOT NULL);
ALTER TABLE sb_a.region_days ATTACH PARTITION sr_mart.north_days FOR VALUES IN ('north');
SELECT elt.transform_run('region_days', sandbox => 'sb_a');
SELECT count(*) AS live_untouched FROM sr_mart.north_days;
DROP TABLE sb_a.region_days;
RESET ROLE;
-- an object added to an extension is not trusted for that: the owner of a
-- trusted extension may add any of its own (here a domain whose CHECK is its function)
SET ROLE sr_etl;
CREATE EXTENSION citext SCHEMA sr_mart;
CREATE FUNCTION sr_mart.even(integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 % 2 = 0';
CREATE DOMAIN sr_mart.even_int AS integer CHECK (sr_mart.even(VALUE));
ALTER EXTENSION citext ADD FUNCTION sr_mart.even(integer);
ALTER EXTENSION citext ADD DOMAIN sr_mart.even_int;
CREATE TABLE sr_mart.evens (id sr_mart.even_int PRIMARY KEY);
SELECT elt.transform_create('evens', 'sr_mart.evens', 'SELECT o.id FROM sr_shop.orders o WHERE o.id % 2 = 0', 'append') > 0 AS created;
RESET ROLE;
SET ROLE sr_analyst;
SELECT elt.transform_run('evens', sandbox => 'sb_an', sql => 'SELECT o.id FROM sr_shop.orders o WHERE o.id % 2 = 0');
RESET ROLE;
SELECT count(*) FROM elt.sandbox_create('sb_ext', ARRAY['sr_mart']);
SELECT count(*) = 0 AS not_made FROM pg_namespace WHERE nspname = 'sb_ext';
SET ROLE sr_etl;
DROP TABLE sr_mart.evens;
DROP EXTENSION citext;
RESET ROLE;

-- and a sandbox of its own runs the owner's SQL
SET ROLE sr_etl;
SELECT elt.transform_update('totals',
  'SELECT o.customer_id, count(*) AS orders, sr_mart.twice(sum(o.amount)) AS total FROM sr_shop.orders o GROUP BY o.customer_id') AS version;
SELECT count(*) AS tables FROM elt.sandbox_create('sb_e', ARRAY['sr_shop'], '{"percent": 20, "seed": 7}');
SELECT elt.transform_run('totals', sandbox => 'sb_e') > 0 AS own_code;
SELECT (SELECT sum(total) FROM sb_e.customer_totals) = 2 * (SELECT sum(amount) FROM sb_e.orders) AS twice;
RESET ROLE;

-------------------------------------------------------------------------------
-- Replay of a pipeline run into a sandbox
-------------------------------------------------------------------------------
SET ROLE sr_etl;
SELECT elt.run_begin('nightly', '{}', 'none') AS p \gset
SELECT elt.transform_run('totals') > 0 AS step_1;
SELECT elt.transform_run('region_days') > 0 AS step_2;
SELECT elt.run_end() > 0 AS ended;
DELETE FROM sb_e.customer_totals;
SELECT elt.replay(:p, sandbox => 'sb_e') AS rp \gset
SELECT kind, replay_of = :p AS replays_p, sandbox, role, status FROM elt.runs WHERE run_id = :rp;
SELECT s ->> 'step' AS step, s ->> 'transform' AS transform, s -> 'relations' AS relations,
       s ->> 'sandbox_target' AS sandbox_target, (s ->> 'rows_read')::int > 0 AS read_rows
FROM elt.run_manifest(:rp) m, jsonb_array_elements(m -> 'steps') s ORDER BY 1;
SELECT (SELECT count(*) FROM sb_e.customer_totals) = (SELECT count(DISTINCT customer_id) FROM sb_e.orders) AS totals_rows,
       (SELECT sum(orders) FROM sb_e.region_days) = (SELECT count(*) FROM sb_e.orders) AS region_rows;
-- a run in a sandbox is not replayed: it is run again
SELECT elt.transform_run('totals', sandbox => 'sb_e') AS re \gset
SELECT pg_temp.error_of(format('SELECT elt.replay(%s)', :re));
SELECT elt.replay(:p, into_schema => 'elsewhere', sandbox => 'sb_e');
RESET ROLE;
-- the analyst may not replay the owner's run, into its sandbox or any
SET ROLE sr_analyst;
SELECT pg_temp.error_of(format('SELECT elt.replay(%s, sandbox => %L)', :p, 'sb_an'));
RESET ROLE;
-- a superuser may, but not into a sandbox of another role: the SQL is the run's role's
SELECT pg_temp.error_of(format('SELECT elt.replay(%s, sandbox => %L)', :p, 'sb_an'));

-------------------------------------------------------------------------------
-- Privileges and bad input: clear errors, nothing written
-------------------------------------------------------------------------------
SET ROLE sr_nobody;
-- a sandbox it may not run in reads as one that does not exist
SELECT elt.transform_run('totals', sandbox => 'sb_a');
SELECT elt.transform_run('totals', sandbox => 'nowhere');
RESET ROLE;
SET ROLE sr_etl;
SELECT elt.transform_run('totals', sandbox => 'nowhere');
SELECT elt.transform_run('nothing', sandbox => 'sb_a');
SELECT elt.transform_run('totals', version => 1);
SELECT elt.transform_run('totals', sql => 'SELECT 1');
SELECT elt.transform_run('totals', sandbox => 'sb_a', version => 0);
SELECT elt.transform_run('totals', sandbox => 'sb_a', version => 9);
SELECT elt.transform_run('totals', sandbox => 'sb_a', version => 1, sql => 'SELECT 1');
SELECT elt.transform_run('totals', sandbox => 'sb_a', sql => '');
SELECT elt.transform_run('totals', sandbox => 'sb_a', params => '[1]');
-- a relation the sandbox has no copy of
SELECT elt.transform_run('totals', sandbox => 'sb_a', sql =>
  'SELECT t.customer_id, t.orders, t.total FROM sr_mart.customer_totals t JOIN pg_catalog.pg_class c ON false');
-- the target's name is another source's copy
SELECT elt.transform_run('order_ids', sandbox => 'sb_a');
-- not inside another run
SELECT elt.run_begin('outer', '{}', 'none') > 0 AS began;
SELECT elt.transform_run('totals', sandbox => 'sb_a', version => 1);
SELECT elt.run_end() > 0 AS ended;
RESET ROLE;
-- an expired sandbox
UPDATE elt.sandbox_defs SET expires_at = now() - interval '1 minute' WHERE name = 'sb_a';
SET ROLE sr_etl;
SELECT elt.transform_run('totals', sandbox => 'sb_a', version => 1);
RESET ROLE;

-- audited, each run in a sandbox once, with its sandbox
SELECT action, object, details ->> 'sandbox' AS sandbox, details ? 'manifest_id' AS has_manifest
FROM elt.audit_log WHERE id > :audit_start AND action IN ('sandbox_run', 'replay')
ORDER BY id;

-- cleanup
SELECT elt.sandbox_drop('sb_a');
SELECT elt.sandbox_drop('sb_an');
SET ROLE sr_etl;
SELECT elt.sandbox_drop('sb_e');
RESET ROLE;
