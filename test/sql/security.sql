-- Least privilege: the role model (elt_reader, elt_operator, elt_admin) and
-- what each role can call, see and change through every engine's entry
-- points: a role that owns nothing (sec_other), the owner of the schema
-- (sec_owner), a member of the owner (sec_member), and the extension's
-- group roles; the superuser running the suite runs the owner's objects.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = notice;
SET DateStyle = ISO;

-------------------------------------------------------------------------------
-- The group roles: made by the extension, plain NOLOGIN roles
-------------------------------------------------------------------------------
SELECT r.rolname, r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolbypassrls,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1) AS member_of
FROM pg_roles r WHERE r.rolname IN ('elt_reader', 'elt_operator', 'elt_admin') ORDER BY 1;
-- a role of that name that can log in is refused, and nothing is made
CREATE DATABASE sec_other_db;
\c sec_other_db
-- (no CONTEXT: from PostgreSQL 18 on it quotes the install script too)
\set SHOW_CONTEXT never
ALTER ROLE elt_operator LOGIN;
CREATE EXTENSION elt_governance;
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'elt_governance';
ALTER ROLE elt_operator NOLOGIN;
-- a role of that name that the extension did not make, with members, is
-- refused too: they would get its powers
ALTER ROLE elt_reader RENAME TO elt_reader_kept;
CREATE ROLE elt_reader NOLOGIN;
CREATE ROLE sec_mallory;
GRANT elt_reader TO sec_mallory;
CREATE EXTENSION elt_governance;
DROP ROLE elt_reader;
DROP ROLE sec_mallory;
ALTER ROLE elt_reader_kept RENAME TO elt_reader;
-- the extension's own roles are used, members and all: another database
-- shares them
GRANT elt_reader TO elt_operator;
CREATE EXTENSION elt_governance;
SELECT extversion FROM pg_extension WHERE extname = 'elt_governance';
REVOKE elt_reader FROM elt_operator;
DROP EXTENSION elt_governance;
\set SHOW_CONTEXT errors
\c contrib_regression
DROP DATABASE sec_other_db;
SET client_min_messages = notice;
SET DateStyle = ISO;

-------------------------------------------------------------------------------
-- The cast: roles and the owner's objects
-------------------------------------------------------------------------------
-- the SQLSTATE, message and hint of a statement's error, ids left out (they
-- depend on the suites before this one)
CREATE FUNCTION sec_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text;
    message text;
    hint text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN state || ': ' || regexp_replace(message, '[0-9]+', 'N', 'g') || ' (' || hint || ')';
END
$$;
CREATE ROLE sec_owner LOGIN;
CREATE ROLE sec_member LOGIN IN ROLE sec_owner;
CREATE ROLE sec_other LOGIN;
CREATE ROLE sec_admin LOGIN IN ROLE elt_admin;
CREATE ROLE sec_operator LOGIN IN ROLE elt_operator;
CREATE ROLE sec_reader LOGIN IN ROLE elt_reader;
CREATE SCHEMA sec_shop AUTHORIZATION sec_owner;
GRANT USAGE ON SCHEMA sec_shop TO PUBLIC;
SET ROLE sec_owner;
CREATE TABLE sec_shop.customers (id int PRIMARY KEY, email text NOT NULL, region text NOT NULL);
INSERT INTO sec_shop.customers
SELECT g, 'customer' || g || '@example.com', CASE WHEN g % 2 = 0 THEN 'north' ELSE 'south' END
FROM generate_series(1, 10) g;
CREATE TABLE sec_shop.totals (region text PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE sec_shop.numbers (id int PRIMARY KEY, n int);
-- a transform, a successful run with a secret parameter and a failed run
-- whose error quotes a customer's e-mail address
SELECT elt.transform_create('sec_totals', 'sec_shop.totals',
  'SELECT region, count(*) AS n FROM sec_shop.customers WHERE id <> elt.param(''skip'')::int GROUP BY region', 'replace') > 0 AS created;
SELECT elt.transform_run('sec_totals', '{"skip": "0", "api_token": "s3cr3t"}') > 0 AS ran;
SELECT elt.transform_create('sec_numbers', 'sec_shop.numbers',
  'SELECT id, email::int AS n FROM sec_shop.customers', 'merge') > 0 AS created;
SELECT elt.transform_run('sec_numbers');
-- a backfill whose chunk fails, its error quoting an e-mail address
SELECT elt.backfill_create('sec_fill', 'sec_shop.customers',
  'UPDATE sec_shop.customers SET region = (email::int)::text WHERE id >= $1 AND id < $2',
  chunk_rows => 5, options => '{"target_chunk_ms": 0}') > 0 AS created;
CALL elt.backfill_run('sec_fill');
-- a check that fails, and a custom check
SELECT elt.check_create('sec_shop.customers', 'accepted_values',
  '{"column": "region", "values": ["north", "south-secret-list"]}') > 0 AS created;
SELECT elt.check_create('sec_shop.customers', 'custom',
  '{"sql": "SELECT * FROM {rel} WHERE email LIKE ''customer1%''"}', 'warn', 'sec_custom') > 0 AS created;
SELECT check_name, status, failing_rows, sample IS NOT NULL AS has_sample FROM elt.check_run('sec_shop.customers') ORDER BY 1;
SELECT elt.snapshot_create('sec_shop.customers') > 0 AS snapshot;
SELECT elt.run_begin('sec_pipeline', '{"password": "hunter2"}') > 0 AS begun;
SELECT elt.transform_run('sec_totals', '{"skip": "1"}') > 0 AS ran;
SELECT elt.run_end() AS sec_run \gset
RESET ROLE;
SELECT run_id AS sec_failed FROM elt.transform_runs WHERE status = 'failed'
  AND transform_id = (SELECT transform_id FROM elt.transform_defs WHERE name = 'sec_numbers') \gset

-------------------------------------------------------------------------------
-- Catalog tables that hold values are no longer readable by PUBLIC
-------------------------------------------------------------------------------
SET ROLE sec_other;
SELECT count(*) FROM elt.audit_log;
SELECT count(*) FROM elt.transform_runs;
SELECT count(*) FROM elt.backfills;
SELECT count(*) FROM elt.backfill_chunks;
SELECT count(*) FROM elt.check_defs;
SELECT count(*) FROM elt.run_defs;
SELECT count(*) FROM elt.lineage_chunks;
-- the chain head and its verification are for everyone
SELECT (elt.audit_digest() ->> 'rows')::bigint > 0 AS digest, (SELECT valid FROM elt.audit_verify()) AS valid;
RESET ROLE;
-- elt_reader reads every catalog table but row lineage
SET ROLE sec_reader;
SELECT count(*) > 0 AS audit, (SELECT count(*) FROM elt.transform_runs) > 0 AS runs,
       (SELECT count(*) FROM elt.backfill_chunks) > 0 AS chunks, (SELECT count(*) FROM elt.check_defs) > 0 AS checks
FROM elt.audit_log;
SELECT count(*) FROM elt.lineage_chunks;
RESET ROLE;

-------------------------------------------------------------------------------
-- elt.audit_trail: every action; details only where they hold nothing of
-- the data, or for the acting role's members and elt_reader
-------------------------------------------------------------------------------
CREATE FUNCTION sec_audit_view() RETURNS TABLE (action text, rows bigint, with_details bigint)
LANGUAGE sql AS $$
  SELECT action, count(*), count(details) FROM elt.audit_trail
  WHERE role = 'sec_owner' GROUP BY action ORDER BY action
$$;
SET ROLE sec_other;
SELECT * FROM sec_audit_view();
-- nothing of the run's parameters, the snapshot's checksum or the check's values
SELECT count(*) AS leaks FROM elt.audit_trail
WHERE details::text ~ '(s3cr3t|hunter2|south-secret-list|customer[0-9]+@|v1:)';
RESET ROLE;
SET ROLE sec_member;
SELECT * FROM sec_audit_view();
RESET ROLE;
SET ROLE sec_reader;
SELECT * FROM sec_audit_view();
RESET ROLE;

-------------------------------------------------------------------------------
-- Transform runs: parameters and errors for the owner's members and elt_reader
-------------------------------------------------------------------------------
CREATE FUNCTION sec_runs_view() RETURNS TABLE (transform text, status text, params jsonb, error text)
LANGUAGE sql AS $$
  SELECT transform, status, params, error FROM elt.transform_run_history
  WHERE transform LIKE 'sec\_%' ORDER BY run_id
$$;
SET ROLE sec_other;
SELECT * FROM sec_runs_view();
SELECT e -> 'eventType' AS event, e -> 'run' -> 'facets' -> 'errorMessage' ->> 'message' AS message
FROM elt.openlineage_event(:sec_failed) e;
SELECT count(*) AS runs_seen FROM elt.runs;
SELECT sec_try(format('SELECT elt.run_manifest(%s)', :sec_run));
RESET ROLE;
SET ROLE sec_member;
SELECT * FROM sec_runs_view();
SELECT e -> 'run' -> 'facets' -> 'errorMessage' ->> 'message' AS message FROM elt.openlineage_event(:sec_failed) e;
SELECT count(*) AS runs_seen FROM elt.runs WHERE pipeline LIKE 'sec\_%';
RESET ROLE;
SET ROLE sec_reader;
SELECT * FROM sec_runs_view();
SELECT count(*) AS runs_seen FROM elt.runs WHERE pipeline LIKE 'sec\_%';
SELECT count(*) AS snapshots_seen FROM elt.snapshots WHERE created_by = 'sec_owner'::regrole;
RESET ROLE;

-------------------------------------------------------------------------------
-- Backfills: errors for the owner's members and elt_reader; key bounds also
-- for roles that read the key column themselves, without row-level security
-------------------------------------------------------------------------------
CREATE FUNCTION sec_backfill_view() RETURNS TABLE (state text, last_error text, state_reason text)
LANGUAGE sql AS $$ SELECT state, last_error, state_reason FROM elt.backfill_status WHERE name = 'sec_fill' $$;
CREATE FUNCTION sec_chunks_view() RETURNS TABLE (chunk_no int, lower_bound text, upper_bound text, state text, last_error text)
LANGUAGE sql AS $$
  SELECT chunk_no, lower_bound, upper_bound, state, last_error FROM elt.backfill_chunk_status
  WHERE backfill = 'sec_fill' ORDER BY chunk_no
$$;
SET ROLE sec_other;
SELECT * FROM sec_backfill_view();
SELECT * FROM sec_chunks_view();
RESET ROLE;
SET ROLE sec_member;
SELECT * FROM sec_backfill_view();
SELECT * FROM sec_chunks_view();
RESET ROLE;
-- a reader of the key column sees the bounds, not the errors
GRANT SELECT (id) ON sec_shop.customers TO sec_other;
SET ROLE sec_other;
SELECT * FROM sec_chunks_view();
RESET ROLE;
-- unless row-level security hides rows from it
ALTER TABLE sec_shop.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY sec_north ON sec_shop.customers FOR SELECT USING (region = 'north');
SET ROLE sec_other;
SELECT * FROM sec_chunks_view();
RESET ROLE;
ALTER TABLE sec_shop.customers DISABLE ROW LEVEL SECURITY;
REVOKE SELECT (id) ON sec_shop.customers FROM sec_other;

-------------------------------------------------------------------------------
-- Checks: arguments for the owner's members; results (status, count, sample,
-- message) for them and for roles that read the rows themselves (never for
-- custom checks, whose SQL may read other tables)
-------------------------------------------------------------------------------
CREATE FUNCTION sec_checks_view() RETURNS TABLE (name text, kind text, args jsonb)
LANGUAGE sql AS $$ SELECT name, kind, args FROM elt.checks WHERE relation = 'sec_shop.customers'::regclass ORDER BY name $$;
CREATE FUNCTION sec_results_view() RETURNS TABLE (check_name text, status text, failing_rows bigint, sample jsonb)
LANGUAGE sql AS $$
  SELECT check_name, status, failing_rows, sample FROM elt.check_results
  WHERE declared_on = 'sec_shop.customers'::regclass ORDER BY result_id
$$;
SET ROLE sec_other;
SELECT * FROM sec_checks_view();
SELECT * FROM sec_results_view();
RESET ROLE;
GRANT SELECT ON sec_shop.customers TO sec_other;
SET ROLE sec_other;
SELECT * FROM sec_checks_view();
SELECT check_name, status, failing_rows, jsonb_array_length(sample) AS sample_rows FROM sec_results_view();
RESET ROLE;
-- row-level security that hides rows from the reader hides the results too
-- (a count over hidden rows tells about them)
ALTER TABLE sec_shop.customers ENABLE ROW LEVEL SECURITY;
SET ROLE sec_other;
SELECT check_name, status, failing_rows, jsonb_array_length(sample) AS sample_rows FROM sec_results_view();
RESET ROLE;
ALTER TABLE sec_shop.customers DISABLE ROW LEVEL SECURITY;
SET ROLE sec_member;
SELECT * FROM sec_checks_view();
SELECT check_name, status, failing_rows, jsonb_array_length(sample) AS sample_rows FROM sec_results_view();
RESET ROLE;
-- running someone else's checks: refused for a role that owns nothing ...
SET ROLE sec_other;
SELECT check_name, status, failing_rows, sample, message FROM elt.check_run('sec_shop.customers') ORDER BY 1;
RESET ROLE;
-- ... done by elt_operator, as the check's owner, showing it the status only
SET ROLE sec_operator;
SELECT check_name, status, failing_rows, sample, message FROM elt.check_run('sec_shop.customers') ORDER BY 1;
RESET ROLE;
-- the operator's results keep the rows for those who may see them
SET ROLE sec_member;
SELECT check_name, status, jsonb_array_length(sample) AS sample_rows
FROM elt.check_results r WHERE checked_by = 'sec_operator'::regrole ORDER BY 1;
RESET ROLE;
-- the check's names mean what they meant to its owner: an operator's
-- search_path cannot put its own function in the owner's check
SET ROLE sec_owner;
CREATE FUNCTION sec_shop.sec_norm(t text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT lower(t)';
SET search_path = sec_shop, public;
SELECT elt.check_create('sec_shop.customers', 'expression', '{"expression": "sec_norm(region) IN (''north'', ''south'')"}',
  name => 'sec_normalized') > 0 AS created;
RESET search_path;
RESET ROLE;
CREATE SCHEMA sec_evil AUTHORIZATION sec_operator;
SET ROLE sec_operator;
CREATE TABLE sec_evil.loot (who text);
CREATE FUNCTION sec_evil.sec_norm(t text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec_evil.loot VALUES (current_user);
    RETURN 'north';
END
$$;
GRANT INSERT ON sec_evil.loot TO PUBLIC;
GRANT USAGE ON SCHEMA sec_evil TO PUBLIC;
SET search_path = sec_evil, sec_shop, public;
SELECT check_name, status, failing_rows FROM elt.check_run('sec_shop.customers') WHERE check_name = 'sec_normalized';
-- a check made before 0.7.0 (no search_path) runs with pg_catalog only for the operator
RESET ROLE;
UPDATE elt.check_defs SET search_path = NULL WHERE name = 'sec_normalized';
SET ROLE sec_operator;
SET search_path = sec_evil, sec_shop, public;
SELECT check_name, status, message FROM elt.check_run('sec_shop.customers') WHERE check_name = 'sec_normalized';
RESET search_path;
SELECT count(*) AS evil_ran FROM sec_evil.loot;
RESET ROLE;
-- its members still run it with their own search_path
SET ROLE sec_member;
SET search_path = sec_shop, public;
SELECT check_name, status FROM elt.check_run('sec_shop.customers') WHERE check_name = 'sec_normalized';
RESET search_path;
RESET ROLE;
UPDATE elt.check_defs SET search_path = 'sec_shop, public' WHERE name = 'sec_normalized';
SELECT search_path FROM elt.checks WHERE name = 'sec_normalized';
REVOKE SELECT ON sec_shop.customers FROM sec_other;

-------------------------------------------------------------------------------
-- Views that leave rows out are security barriers: a cheap function in the
-- reader's WHERE clause never sees the rows they leave out
-------------------------------------------------------------------------------
SET ROLE sec_other;
CREATE FUNCTION pg_temp.sec_leak(x anyelement) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
    RAISE NOTICE 'leaked: %', x;
    RETURN false;
END
$$;
SELECT count(*) FROM elt.runs WHERE pg_temp.sec_leak(params);
SELECT count(*) FROM elt.snapshots WHERE pg_temp.sec_leak(checksum);
SELECT count(*) FROM elt.checks WHERE pg_temp.sec_leak(name);
SELECT count(*) FROM elt.check_results WHERE pg_temp.sec_leak(failing_rows);
SELECT count(*) FROM elt.deployments WHERE pg_temp.sec_leak(interface);
SELECT count(*) FROM elt.deployment_events WHERE pg_temp.sec_leak(details);
DISCARD TEMP;
RESET ROLE;

-------------------------------------------------------------------------------
-- The caller's temporary objects never stand for the owner's: pg_temp is
-- searched last when another role's code runs, and an operator running
-- another role's check or backfill in a session with temporary objects is
-- refused (a name missing from the owner's schemas would find them)
-------------------------------------------------------------------------------
SET ROLE sec_owner;
SET search_path = sec_shop;
CREATE TABLE sec_shop.regions (name text PRIMARY KEY);
INSERT INTO sec_shop.regions VALUES ('north'), ('south');
SELECT elt.transform_create('sec_region_count', 'sec_shop.totals',
  'SELECT r.name AS region, count(*) AS n FROM regions r JOIN customers c ON c.region = r.name GROUP BY r.name',
  'replace', '{"lineage": "table"}') > 0 AS created;
SELECT elt.check_create('sec_shop.customers', 'custom',
  '{"sql": "SELECT * FROM {rel} c WHERE c.region NOT IN (SELECT name FROM regions)"}', 'warn', 'sec_known_region') > 0 AS created;
RESET search_path;
RESET ROLE;
-- a superuser's temporary table named like the owner's table
CREATE TEMP TABLE regions (name text);
INSERT INTO regions VALUES ('nowhere');
SELECT elt.transform_run('sec_region_count', lineage => 'none') > 0 AS ran;
SELECT region, n FROM sec_shop.totals ORDER BY region;
DROP TABLE pg_temp.regions;
-- an operator with temporary objects
SET ROLE sec_operator;
CREATE TEMP VIEW regions AS SELECT 'north'::text AS name;
SELECT check_name, status, message FROM elt.check_run('sec_shop.customers') WHERE check_name = 'sec_known_region';
SET ROLE sec_owner;
SELECT elt.backfill_create('sec_fill3', 'sec_shop.customers',
  'UPDATE sec_shop.customers SET region = region WHERE id >= $1 AND id < $2', chunk_rows => 5) > 0 AS created;
SET ROLE sec_operator;
CALL elt.backfill_run('sec_fill3');
DISCARD TEMP;
SELECT check_name, status, failing_rows FROM elt.check_run('sec_shop.customers') WHERE check_name = 'sec_known_region';
CALL elt.backfill_run('sec_fill3');
RESET ROLE;
SELECT elt.check_drop('sec_shop.customers', 'sec_known_region');

-- bounds given to table_checksum_ranges are read with the base type's
-- input function: a domain key's CHECK (its owner's code) does not run as
-- the caller
SET ROLE sec_owner;
CREATE FUNCTION sec_shop.sec_positive(x int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE NOTICE 'domain check runs as %', current_user;
    RETURN x > 0;
END
$$;
CREATE DOMAIN sec_shop.sec_id AS int CHECK (sec_shop.sec_positive(VALUE));
CREATE TABLE sec_shop.keyed (id sec_shop.sec_id PRIMARY KEY, v text);
INSERT INTO sec_shop.keyed VALUES (1, 'a'), (7, 'b');
RESET ROLE;
SELECT segment, lower, upper, row_count FROM elt.table_checksum_ranges('sec_shop.keyed', 'id', ARRAY['5']) ORDER BY segment;

-------------------------------------------------------------------------------
-- Internal functions are not for calling
-------------------------------------------------------------------------------
SET ROLE sec_other;
SELECT * FROM elt._lineage_chunk_entries('\x0101036100620000'::bytea);
RESET ROLE;
-- a text with a zero byte, or not in the database encoding, is a corrupt chunk
SELECT * FROM elt._lineage_chunk_entries('\x0101036100620000'::bytea);
SELECT * FROM elt._lineage_chunk_entries('\x010101ff0000'::bytea);

-------------------------------------------------------------------------------
-- What each role may do
-------------------------------------------------------------------------------
-- governing: the owner, its members and elt_admin; not others, not the
-- reader or operator
SET ROLE sec_other;
SELECT elt.govern('sec_shop');
RESET ROLE;
SET ROLE sec_reader;
SELECT elt.govern('sec_shop.customers');
RESET ROLE;
SET ROLE sec_admin;
SELECT elt.govern('sec_shop', 'warn', 'platform team') AS baselines;
SELECT elt.ungovern('sec_shop.customers');
SELECT elt.govern('sec_shop.customers', 'enforce') AS baselines;
RESET ROLE;
SET ROLE sec_member;
SELECT elt.ungovern('sec_shop.customers');
RESET ROLE;
SELECT kind, target, policy, governed_by FROM elt.governed WHERE target LIKE 'sec\_%' ORDER BY 1, 2;
-- approvers: elt_admin, not the others
SET ROLE sec_operator;
SELECT elt.approver_add('sec-lead');
RESET ROLE;
SET ROLE sec_other;
SELECT elt.approver_add('sec-lead');
RESET ROLE;
SET ROLE sec_admin;
SELECT elt.approver_add('sec-lead', 'added by the platform team');
SELECT elt.approver_remove('sec-lead');
RESET ROLE;
SELECT count(*) AS approvers FROM elt.approvers WHERE approver = 'sec-lead';
-- consumers registered by someone else: elt_admin may remove them
GRANT SELECT ON sec_shop.customers TO sec_other;
SET ROLE sec_other;
SELECT elt.consumer_register('sec_shop.customers', 'dashboard:sec', ARRAY['region']);
RESET ROLE;
SET ROLE sec_reader;
SELECT elt.consumer_unregister('sec_shop.customers', 'dashboard:sec');
RESET ROLE;
SET ROLE sec_admin;
SELECT elt.consumer_unregister('sec_shop.customers', 'dashboard:sec');
RESET ROLE;
REVOKE SELECT ON sec_shop.customers FROM sec_other;
-- backfills: controlled by the owner's members and elt_operator
SET ROLE sec_owner;
SELECT elt.backfill_create('sec_fill2', 'sec_shop.customers',
  'UPDATE sec_shop.customers SET region = region WHERE id >= $1 AND id < $2', chunk_rows => 5) > 0 AS created;
RESET ROLE;
SET ROLE sec_other;
CALL elt.backfill_run('sec_fill2');
SELECT elt.backfill_cancel('sec_fill2');
RESET ROLE;
SET ROLE sec_reader;
SELECT elt.backfill_cancel('sec_fill2');
RESET ROLE;
SET ROLE sec_operator;
CALL elt.backfill_run('sec_fill2', max_chunks => 1);
SELECT elt.backfill_pause('sec_fill2');
SELECT elt.backfill_resume('sec_fill2');
CALL elt.backfill_run('sec_fill2');
SELECT elt.backfill_retry('sec_fill');
CALL elt.backfill_run('sec_fill');
SELECT elt.backfill_cancel('sec_fill');
RESET ROLE;
-- the operator's run did the owner's work, as the owner
SELECT name, state, owner FROM elt.backfill_status WHERE name LIKE 'sec\_fill%' ORDER BY 1;
SELECT action, role FROM elt.audit_log
WHERE object IN ('sec_fill', 'sec_fill2') AND action <> 'backfill_created' ORDER BY id;
-- purges: each role its own, elt_operator everyone's
SET ROLE sec_other;
SELECT elt.backfill_purge('0') AS purged;
SELECT elt.lineage_purge(now() + interval '1 day') AS lineage_purged;
RESET ROLE;
SET ROLE sec_operator;
SELECT elt.backfill_purge('0') >= 2 AS purged;
SELECT elt.lineage_purge(now() + interval '1 day') > 0 AS lineage_purged;
RESET ROLE;
SELECT count(*) AS sec_backfills_left FROM elt.backfills WHERE name LIKE 'sec\_%';
-- snapshots: dropped by the owner's members and elt_operator
SELECT snapshot_id AS sec_snapshot FROM elt.snapshots WHERE created_by = 'sec_owner'::regrole \gset
SET ROLE sec_other;
SELECT sec_try(format('SELECT elt.snapshot_drop(%s)', :sec_snapshot));
RESET ROLE;
SET ROLE sec_operator;
SELECT elt.snapshot_drop(:sec_snapshot);
RESET ROLE;
-- checks: dropped by the owner's members and elt_admin
SET ROLE sec_operator;
SELECT elt.check_drop('sec_shop.customers', 'sec_custom');
RESET ROLE;
SET ROLE sec_admin;
SELECT elt.check_drop('sec_shop.customers', 'sec_custom');
RESET ROLE;
-- transforms run as their owner: its members may run them; elt_operator and
-- elt_admin may not (a transform writes its target as the owner)
SET ROLE sec_operator;
SELECT elt.transform_run('sec_totals', '{"skip": "0"}');
RESET ROLE;
SET ROLE sec_member;
SELECT elt.transform_run('sec_totals', '{"skip": "0"}') > 0 AS ran;
RESET ROLE;
-- cursors the owner's code leaves open are closed: a FETCH by the caller
-- would run the owner's query with the caller's rights
SET ROLE sec_owner;
CREATE FUNCTION sec_shop.sec_leave_cursor() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    c refcursor := 'sec_left_open';
BEGIN
    OPEN c FOR SELECT current_user;
    RETURN 1;
END
$$;
CREATE TABLE sec_shop.cursed (id int PRIMARY KEY);
SELECT elt.transform_create('sec_cursor', 'sec_shop.cursed', 'SELECT sec_shop.sec_leave_cursor() AS id', 'replace',
  '{"lineage": "table"}') > 0 AS created;
SELECT elt.check_create('sec_shop.cursed', 'expression', '{"expression": "sec_shop.sec_leave_cursor() = 1"}',
  name => 'sec_cursor') > 0 AS created;
RESET ROLE;
BEGIN;
SELECT elt.transform_run('sec_cursor', lineage => 'none') > 0 AS ran;
SELECT count(*) AS cursors_left FROM pg_cursors WHERE name = 'sec_left_open';
SELECT check_name, status FROM elt.check_run('sec_shop.cursed');
SELECT count(*) AS cursors_left FROM pg_cursors WHERE name = 'sec_left_open';
COMMIT;
-- a superuser running the owner's transform runs it as the owner
SET ROLE sec_owner;
CREATE TABLE sec_shop.whoami (id int PRIMARY KEY, who text NOT NULL);
SELECT elt.transform_create('sec_whoami', 'sec_shop.whoami',
  'SELECT 1 AS id, current_user::text AS who', 'replace', '{"lineage": "table"}') > 0 AS created;
RESET ROLE;
SELECT elt.transform_run('sec_whoami', lineage => 'none') > 0 AS ran;
SELECT who FROM sec_shop.whoami;
-- settings the owner's code changes stay in it: a search_path planted by a
-- transform or a check does not stay in the caller's session (where the
-- caller would then run the owner's functions)
SET ROLE sec_owner;
CREATE FUNCTION sec_shop.sec_plant() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('search_path', 'sec_shop', false);
    RETURN 1;
END
$$;
CREATE TABLE sec_shop.planted (id int PRIMARY KEY);
SELECT elt.transform_create('sec_plant', 'sec_shop.planted', 'SELECT sec_shop.sec_plant() AS id', 'replace',
  '{"lineage": "table"}') > 0 AS created;
SELECT elt.check_create('sec_shop.planted', 'expression', '{"expression": "sec_shop.sec_plant() = 1"}',
  name => 'sec_plant') > 0 AS created;
RESET ROLE;
SHOW search_path;
SELECT elt.transform_run('sec_plant', lineage => 'none') > 0 AS ran;
SHOW search_path;
RESET search_path;
SET ROLE sec_operator;
SELECT check_name, status FROM elt.check_run('sec_shop.planted');
SHOW search_path;
RESET ROLE;
-- manifests: the run's role's members and elt_reader read them; replay runs
-- the role's SQL, so only its members (and superusers) may
SET ROLE sec_reader;
SELECT elt.run_manifest(:sec_run) -> 'run' ->> 'pipeline' AS pipeline;
SELECT sec_try(format('SELECT elt.replay(%s)', :sec_run));
RESET ROLE;

SELECT valid, detail FROM elt.audit_verify();

-------------------------------------------------------------------------------
-- Clean up
-------------------------------------------------------------------------------
DROP FUNCTION sec_try(text), sec_audit_view(), sec_runs_view(), sec_backfill_view(), sec_chunks_view(),
  sec_checks_view(), sec_results_view();
DROP SCHEMA sec_shop CASCADE;
DROP SCHEMA sec_evil CASCADE;
DROP OWNED BY sec_owner, sec_member, sec_other, sec_admin, sec_operator, sec_reader;
DROP ROLE sec_owner, sec_member, sec_other, sec_admin, sec_operator, sec_reader;
