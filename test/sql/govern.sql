-- Governing and ungoverning: targets, policies, bad input, privileges.
CREATE EXTENSION elt_governance;
SHOW elt.enabled;

CREATE SCHEMA analytics;
CREATE TABLE analytics.orders (order_id bigint PRIMARY KEY, amount numeric NOT NULL);
CREATE TABLE analytics.customers (customer_id int PRIMARY KEY, name text);
CREATE VIEW analytics.order_view AS SELECT order_id FROM analytics.orders;
CREATE TABLE public.loose (id int);

-- bad input: each is a clear error and changes nothing
SELECT elt.govern('nosuchschema');
SELECT elt.govern('analytics', 'strict');
SELECT elt.govern('pg_catalog');
SELECT elt.govern('information_schema');
SELECT elt.govern('elt');
SELECT elt.govern('pg_toast');
SELECT elt.govern('analytics.nosuchtable');
SELECT elt.govern('nosuchschema.orders');
SELECT elt.govern('analytics.order_view');
SELECT elt.govern('pg_catalog.pg_class');
SELECT elt.govern('a.b.c');
SELECT elt.govern('loose');
SELECT elt.govern(NULL);
SELECT elt.govern('analytics', NULL);
SELECT elt.govern('"unterminated');
SELECT elt.govern('');
SELECT elt.ungovern('pg_catalog');
SELECT elt.table_shape('analytics.orders_pkey');
SELECT elt.table_shape('analytics.order_view');
SELECT count(*) AS targets FROM elt.governed_targets;
SELECT count(*) AS versions FROM elt.schema_versions;
SELECT count(*) AS audit_rows FROM elt.audit_log;

-- governing a schema records version 1 of each of its tables
SELECT elt.govern('analytics');
SELECT kind, target, policy, tables, governed_by FROM elt.governed;
SELECT schema_name, table_name, version, event, command_tag, statement
FROM elt.schema_versions ORDER BY table_id, version;

-- governing again: same policy is a notice; another policy changes it
SELECT elt.govern('analytics');
SELECT elt.govern('analytics', 'warn', 'dashboards moving to v2');
SELECT kind, target, policy FROM elt.governed;

-- a table inside a governed schema can carry its own policy; no new baseline
SELECT elt.govern('analytics.orders', 'off');
SELECT target, policy FROM elt.governed ORDER BY kind, target;
SELECT elt.policy_for('analytics.orders') AS orders, elt.policy_for('analytics.customers') AS customers,
       elt.policy_for('public.loose') AS loose;

-- ungovern: the table target, then errors for what is not governed
SELECT elt.ungovern('analytics.orders');
SELECT elt.ungovern('analytics.orders');
SELECT elt.ungovern('public.loose');
SELECT elt.ungovern('public');
SELECT elt.ungovern('nosuchschema');

-- a table in an ungoverned schema can be governed on its own
SELECT elt.govern('public.loose', 'enforce');
ALTER TABLE public.loose ADD COLUMN note text;
SELECT table_name, version, event FROM elt.schema_versions WHERE table_name = 'loose' ORDER BY version;
SELECT elt.ungovern('public.loose');
ALTER TABLE public.loose ADD COLUMN more text;
SELECT count(*) AS loose_versions FROM elt.schema_versions WHERE table_name = 'loose';

-- ungoverning keeps the history; DDL is no longer recorded
SELECT elt.ungovern('analytics');
ALTER TABLE analytics.customers ADD COLUMN email text;
SELECT table_name, version, event FROM elt.schema_versions WHERE schema_name = 'analytics' ORDER BY table_id, version;
-- governing again records a new baseline where the shape may have moved on
SELECT elt.govern('analytics');
SELECT table_name, version, event FROM elt.schema_versions WHERE schema_name = 'analytics' ORDER BY table_id, version;

SELECT id, action, object, details - 'version_hash' AS details, reason
FROM elt.audit_log ORDER BY id;

-- partitioned tables are governed too
CREATE SCHEMA events;
CREATE TABLE events.clicks (id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE events.clicks_2026 PARTITION OF events.clicks
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT elt.govern('events');
SELECT table_name, version, event, shape->>'kind' AS kind, shape->>'partition_key' AS partition_key
FROM elt.schema_versions WHERE schema_name = 'events' ORDER BY table_name;

-- temporary tables cannot be governed
CREATE TEMP TABLE scratch (id int);
SELECT elt.govern('pg_temp.scratch');
SELECT elt.govern('scratch');

-- privileges: only the owner of a schema or table may govern it
CREATE ROLE elt_alice LOGIN;
CREATE ROLE elt_bob LOGIN;
CREATE SCHEMA alice_area AUTHORIZATION elt_alice;
CREATE TABLE alice_area.t (id int);
ALTER TABLE alice_area.t OWNER TO elt_alice;
GRANT USAGE ON SCHEMA alice_area TO elt_bob;
SET ROLE elt_bob;
SELECT elt.govern('alice_area');
SELECT elt.govern('alice_area.t');
SELECT elt.govern('analytics');
SELECT elt.ungovern('analytics');
-- the catalog is readable but not writable by ordinary roles
SELECT count(*) > 0 AS can_read FROM elt.schema_versions;
SELECT count(*) > 0 AS can_read_history FROM elt.schema_history;
SELECT count(*) > 0 AS can_read_governed FROM elt.governed;
SELECT valid FROM elt.audit_verify();
INSERT INTO elt.audit_log (id, logged_at, role, session_role, action, prev_hash, row_hash)
VALUES (1000, now(), 'x', 'x', 'forged', 'x', 'y');
DELETE FROM elt.governed_targets;
-- elt.enabled is for superusers only
SET elt.enabled = off;
RESET ROLE;

SET ROLE elt_alice;
SELECT elt.govern('alice_area');
-- DDL by a non-superuser on a governed table is recorded as that role
ALTER TABLE alice_area.t ADD COLUMN v text;
SELECT table_name, version, event, role FROM elt.schema_versions
WHERE schema_name = 'alice_area' ORDER BY version;
SELECT action, object, role FROM elt.audit_trail WHERE object LIKE 'alice_area%' ORDER BY id;
RESET ROLE;

-- elt.enabled = off: a maintenance window, nothing is captured
SET elt.enabled = off;
ALTER TABLE analytics.customers ADD COLUMN phone text;
RESET elt.enabled;
SELECT count(*) AS customers_versions FROM elt.schema_versions WHERE table_name = 'customers';
-- governing again baselines what was missed
SELECT elt.govern('analytics');
SELECT count(*) AS customers_versions FROM elt.schema_versions WHERE table_name = 'customers';

-- elt.reason is recorded with every action of the session
SET elt.reason = 'CHG-1234';
ALTER TABLE analytics.customers ADD COLUMN fax text;
RESET elt.reason;
SELECT action, object, reason FROM elt.audit_log ORDER BY id DESC LIMIT 1;

-- a transaction that recorded governance actions cannot be prepared
BEGIN;
ALTER TABLE analytics.customers ADD COLUMN in_2pc text;
PREPARE TRANSACTION 'elt_2pc';
SELECT count(*) AS in_2pc_versions FROM elt.schema_versions WHERE statement LIKE '%in_2pc%';
-- one that did not can
BEGIN;
CREATE TABLE public.two_phase (id int);
PREPARE TRANSACTION 'elt_2pc_plain';
ROLLBACK PREPARED 'elt_2pc_plain';

-- a table dropped while capture is off still lets go of its history and target
CREATE TABLE public.offline (id int);
SELECT elt.govern('public.offline');
SET elt.enabled = off;
DROP TABLE public.offline;
RESET elt.enabled;
SELECT table_name, relid IS NULL AS detached, dropped_at IS NOT NULL AS dropped
FROM elt.tracked_tables WHERE table_name = 'offline';
SELECT count(*) AS offline_targets FROM elt.governed_targets WHERE kind = 'table' AND rel IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = rel);
SELECT count(*) AS offline_versions FROM elt.schema_versions WHERE table_name = 'offline';

-- with capture off, a governed schema dropped is no longer governed, and
-- one renamed stays governed under its new name
CREATE SCHEMA gone_off;
CREATE SCHEMA moved_off;
SELECT elt.govern('gone_off');
SELECT elt.govern('moved_off');
SET elt.enabled = off;
DROP SCHEMA gone_off;
ALTER SCHEMA moved_off RENAME TO moved_on;
RESET elt.enabled;
SELECT target FROM elt.governed WHERE target IN ('gone_off', 'moved_off', 'moved_on');
-- a superuser can still remove the target of a schema that no longer exists
SELECT elt.govern('moved_on', 'warn');
SET elt.enabled = off;
DROP SCHEMA moved_on;
RESET elt.enabled;
SELECT target FROM elt.governed WHERE target = 'moved_on';

-- the elt.* prefix is reserved
SET elt.no_such_setting = 1;

-- dropping a governed schema ends its governance (policy off: the drop
-- itself is a breaking change, tested in contracts.sql)
SELECT elt.govern('events', 'off');
DROP SCHEMA events CASCADE;
SELECT target FROM elt.governed ORDER BY target;
SELECT action, object, details->>'cause' AS cause FROM elt.audit_log
WHERE action = 'ungovern' ORDER BY id DESC LIMIT 1;
SELECT table_name, version, event FROM elt.schema_versions WHERE schema_name = 'events' ORDER BY table_name, version;

-- a governed table target that is dropped is no longer governed
CREATE TABLE public.solo (id int);
SELECT elt.govern('public.solo', 'warn');
DROP TABLE public.solo;
SELECT count(*) AS solo_targets FROM elt.governed WHERE target = 'public.solo';
SELECT action, object, details->>'cause' AS cause FROM elt.audit_log
WHERE action = 'ungovern' ORDER BY id DESC LIMIT 1;

SELECT valid, first_broken_id, detail FROM elt.audit_verify();

-- the extension can be dropped while things are governed, and DDL goes on
DROP EXTENSION elt_governance;
ALTER TABLE analytics.orders ADD COLUMN after_drop int;
DROP SCHEMA analytics CASCADE;
DROP SCHEMA alice_area CASCADE;
DROP TABLE public.loose;
DROP ROLE elt_alice;
DROP ROLE elt_bob;
