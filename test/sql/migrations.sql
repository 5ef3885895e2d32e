-- The change protocol (migrations.c): approvers, migration windows,
-- registered consumers, through their SQL API.  What contracts.sql does not
-- show: the audit details each action writes (names with quotes and
-- backslashes stay valid JSON), windows and subtransactions, bad input, and
-- a role that owns nothing.
-- The suites before this one may leave the extension behind: start afresh.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS elt_governance CASCADE;
RESET client_min_messages;
CREATE EXTENSION elt_governance;
CREATE SCHEMA m;
CREATE TABLE m.orders (id int PRIMARY KEY, amount numeric, "odd ""col" text);
CREATE SEQUENCE m.seq;
SELECT elt.govern('m');
CREATE ROLE mig_nobody;   -- owns nothing, member of nothing

-- approvers: a note or none, a name that needs escaping, a repeat
SELECT elt.approver_add('lead "one" \ two', 'signs off');
SELECT elt.approver_add('cto');
SELECT elt.approver_add('cto', 'again');
SELECT approver, added_by = current_user AS by_me, note FROM elt.approvers ORDER BY approver;
SELECT action, object, details FROM elt.audit_log
WHERE action LIKE 'approver%' ORDER BY id;
-- bad input: NULL or empty names, a name that is not there
SELECT elt.approver_add(NULL);
SELECT elt.approver_add('');
SELECT elt.approver_remove(NULL);
SELECT elt.approver_remove('nobody');
SELECT elt.approver_remove('cto');
SELECT count(*) AS approvers FROM elt.approvers;
SELECT action, details FROM elt.audit_log WHERE action = 'approver_removed';

-- a window: begun, shown, the change approved and recorded with its id, ended
SELECT elt.migration_current() IS NULL AS none_open;
SELECT elt.migration_begin('drop amount', 'moved to amount_cents', 'lead "one" \ two') AS mig \gset
SELECT elt.migration_current() = :mig AS this_one;
SELECT name, reason, approved_by, opened_by = session_user AS opened_by_me, status
FROM elt.migrations WHERE migration_id = :mig;
ALTER TABLE m.orders DROP COLUMN amount;
SELECT rule, decision, migration_id = :mig AS in_window FROM elt.schema_changes ORDER BY change_id;
SELECT details - 'changes' = jsonb_build_object('command_tag', 'ALTER TABLE', 'migration_id', :mig) AS tag_and_window,
       jsonb_array_length(details -> 'changes') AS changes,
       (details #> '{changes,0}') - 'change_id'::text AS change
FROM elt.audit_log WHERE action = 'change_classified';
SELECT elt.migration_end() = :mig AS ended;
SELECT elt.migration_current() IS NULL AS none_open;
SELECT status, closed_at IS NOT NULL AS closed FROM elt.migrations WHERE migration_id = :mig;
SELECT action, details = jsonb_build_object('migration_id', :mig, 'name', 'drop amount',
                                            'approved_by', 'lead "one" \ two',
                                            'opened_by', session_user::text) AS details_right
FROM elt.audit_log WHERE action = 'migration_begun';
SELECT details = jsonb_build_object('migration_id', :mig) AS details_right
FROM elt.audit_log WHERE action = 'migration_ended';
-- ending twice, or without a window
SELECT elt.migration_end();
-- bad input to migration_begin: NULLs, empty names, an approver that is not one
SELECT elt.migration_begin(NULL, 'r', 'cto');
SELECT elt.migration_begin('n', '', 'lead "one" \ two');
SELECT elt.migration_begin('n', 'r', NULL);
SELECT elt.migration_begin('n', 'r', 'cto');
SELECT elt.migration_current() IS NULL AS none_open;
SELECT count(*) AS windows FROM elt.migration_windows;

-- a window opened in a subtransaction is kept when the savepoint is
-- released; an end rolled back to a savepoint leaves the window open
BEGIN;
SAVEPOINT a;
SELECT elt.migration_begin('kept', 'released savepoint', 'lead "one" \ two') > 0 AS begun;
RELEASE SAVEPOINT a;
SELECT elt.migration_current() IS NOT NULL AS still_open;
SAVEPOINT b;
SELECT elt.migration_end() > 0 AS ended;
ROLLBACK TO SAVEPOINT b;
SELECT elt.migration_current() IS NOT NULL AS open_again;
SELECT elt.migration_end() > 0 AS ended;
COMMIT;
SELECT name, status FROM elt.migrations ORDER BY migration_id;

-- elt.migration_approve: bad input (the session user is no approver yet)
SELECT elt.migration_approve(NULL, 'x');
SELECT elt.migration_approve('n', NULL);
SELECT elt.migration_approve('n', 'x');
SELECT count(*) AS approvals FROM elt.migration_approvals;

-- consumers: the columns array in the audit details, every column (NULL),
-- a column name that needs escaping, registering again replaces the columns
SELECT elt.consumer_register('m.orders', 'dash "q"', ARRAY['id', 'odd "col']);
SELECT elt.consumer_register('m.orders', 'export', NULL);
SELECT elt.consumer_register('m.orders', 'export', ARRAY['id']);
SELECT consumer, columns, registered_by = current_user AS by_me
FROM elt.consumer_registrations ORDER BY consumer;
SELECT object, details FROM elt.audit_log WHERE action = 'consumer_registered' ORDER BY id;
-- bad input: a sequence, a two-dimensional array, a NULL relation or name
SELECT elt.consumer_register('m.seq', 'x', NULL);
SELECT elt.consumer_register('m.orders', 'x', ARRAY[['id'], ['id']]);
SELECT elt.consumer_register(NULL, 'x', NULL);
SELECT elt.consumer_register('m.orders', NULL, NULL);
SELECT elt.consumer_unregister(NULL, 'x');
SELECT elt.consumer_unregister('m.orders', NULL);

-- a role that owns nothing: refused everywhere it would change another's
-- data, with nothing written; it may look, and a window it opens gives it
-- no right it did not have
GRANT USAGE ON SCHEMA m TO mig_nobody;
SET ROLE mig_nobody;
SELECT elt.approver_add('mallory');
SELECT elt.approver_remove('lead "one" \ two');
SELECT elt.consumer_register('m.orders', 'mine', NULL);
SELECT elt.consumer_register('m.orders', 'mine', ARRAY['id']);
SELECT elt.consumer_unregister('m.orders', 'export');
SELECT name, status FROM elt.migrations ORDER BY migration_id;
SELECT elt.migration_begin('mine', 'try', 'lead "one" \ two') > 0 AS begun;
DROP TABLE m.orders;
ALTER TABLE m.orders DROP COLUMN id;
SELECT elt.migration_end() > 0 AS ended;
RESET ROLE;
SELECT name, role, status FROM elt.migrations WHERE name = 'mine';
SELECT count(*) AS changes FROM elt.schema_changes WHERE migration_id IS NOT NULL;
SELECT count(*) AS approvers FROM elt.approvers;
SELECT consumer FROM elt.consumer_registrations ORDER BY consumer;
SELECT count(*) AS approvals FROM elt.migration_approvals;

-- unregistering, and a relation dropped with its registrations
SELECT elt.consumer_unregister('m.orders', 'export');
SELECT elt.consumer_unregister('m.orders', 'export');
SELECT details FROM elt.audit_log WHERE action = 'consumer_unregistered' ORDER BY id;
SELECT elt.migration_begin('drop orders', 'gone', 'lead "one" \ two') > 0 AS begun;
DROP TABLE m.orders;
SELECT elt.migration_end() > 0 AS ended;
SELECT count(*) AS registrations FROM elt.consumer_registrations;
SELECT object, details FROM elt.audit_log WHERE action = 'consumer_unregistered' ORDER BY id;
SELECT valid, detail FROM elt.audit_verify();

-- windows named by settings (elt.migration, elt.approved_by)
CREATE TABLE m.named (id int, a int);
-- a breaking change to a table the named window did not create is judged
BEGIN;
SET LOCAL elt.migration = 'rel-x';
ALTER TABLE m.named DROP COLUMN a;
ROLLBACK;
SELECT count(*) AS rolled_back_windows FROM elt.migration_windows WHERE name = 'rel-x';
-- a table the named window created, that nothing reads: not judged
SET elt.migration = 'rel-x';
CREATE TABLE m.fresh (id int, a int);
ALTER TABLE m.fresh RENAME COLUMN a TO b;
SELECT elt.migration_current() IS NULL AS approves_nothing;
-- a view reads it: judged again
CREATE VIEW public.fresh_v AS SELECT id, b FROM m.fresh;
ALTER TABLE m.fresh RENAME COLUMN b TO c;
DROP VIEW public.fresh_v;
ALTER TABLE m.fresh RENAME COLUMN b TO c;
-- a table created outside it is still judged by name
ALTER TABLE m.named RENAME COLUMN a TO b;
-- an approver that is not one is refused at the first governed statement
SET elt.approved_by = 'nobody';
ALTER TABLE m.named ADD COLUMN c int;
-- approved: a new window (another approver), joined by the later statements
SET elt.approved_by = 'lead "one" \ two';
ALTER TABLE m.named RENAME COLUMN a TO b;
ALTER TABLE m.named RENAME COLUMN b TO a;
SELECT elt.migration_current() > 0 AS approved;
SELECT name, approved_by, status, opened_via, changes, versions FROM elt.migrations
 WHERE name = 'rel-x' ORDER BY migration_id;
SELECT elt.migration_end() > 0 AS ended;
SELECT name, approved_by, status FROM elt.migrations WHERE name = 'rel-x' ORDER BY migration_id;
RESET elt.approved_by;
SELECT elt.migration_end() > 0 AS ended_the_named_one;
RESET elt.migration;
SELECT elt.migration_end();
SELECT count(*) AS open_windows FROM elt.migrations WHERE name = 'rel-x' AND status = 'open';
SELECT details->>'via' AS via, details->>'approved_by' AS approved_by FROM elt.audit_log
 WHERE action = 'migration_begun' AND details->>'name' = 'rel-x' ORDER BY id;
SELECT elt.migration_begin('cleanup', 'test tables', 'lead "one" \ two') > 0 AS begun;
DROP TABLE m.fresh, m.named;
SELECT elt.migration_end() > 0 AS ended;

-- a window opened while elt.require_second_approver was off, without an
-- approval, cannot be joined by a later session once it is on
CREATE TABLE m.gate (id int, a int);
SET elt.migration = 'rel-y';
SET elt.approved_by = 'lead "one" \ two';
ALTER TABLE m.gate ADD COLUMN b int;
SELECT elt.migration_current() > 0 AS approved;
\c -
SET elt.require_second_approver = on;
SET elt.migration = 'rel-y';
SET elt.approved_by = 'lead "one" \ two';
\set VERBOSITY terse
ALTER TABLE m.gate DROP COLUMN a;
\set VERBOSITY default
SELECT elt.migration_current() IS NULL AS approves_nothing;
SELECT attname FROM pg_attribute WHERE attrelid = 'm.gate'::regclass AND attnum > 0
 AND NOT attisdropped ORDER BY attnum;
-- its session user still ends it
SELECT elt.migration_end() > 0 AS ended;
SELECT count(*) AS open_windows FROM elt.migrations WHERE name = 'rel-y' AND status = 'open';
RESET elt.require_second_approver;
RESET elt.migration;
RESET elt.approved_by;
SET elt.enabled = off;
DROP TABLE m.gate;
RESET elt.enabled;

-- a session that joined a window leaves it once its approver is removed:
-- its next breaking change is refused, not approved by the old window
SELECT elt.approver_add('rel_w_approver');
CREATE TABLE m.gate2 (id int, a int);
SET elt.migration = 'rel-w';
SET elt.approved_by = 'rel_w_approver';
ALTER TABLE m.gate2 ADD COLUMN b int;
SELECT elt.migration_current() > 0 AS approved;
SELECT elt.approver_remove('rel_w_approver');
ALTER TABLE m.gate2 DROP COLUMN a;
SELECT attname FROM pg_attribute WHERE attrelid = 'm.gate2'::regclass AND attnum > 0
 AND NOT attisdropped ORDER BY attnum;
SELECT elt.migration_end() > 0 AS ended;
RESET elt.migration;
RESET elt.approved_by;
SET elt.enabled = off;
DROP TABLE m.gate2;
RESET elt.enabled;

-- a table the named window created is judged when a cascade drops part of
-- it along with a view that read it (pg_depend no longer shows the view)
SET elt.migration = 'rel-c';
CREATE FUNCTION public.mig_dbl(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 2';
CREATE TABLE m.gen (id int, g int GENERATED ALWAYS AS (public.mig_dbl(id)) STORED);
CREATE VIEW public.gen_report AS SELECT id, g FROM m.gen;
DROP FUNCTION public.mig_dbl(int) CASCADE;
SELECT to_regclass('public.gen_report') IS NOT NULL AS report_kept;
-- once nothing reads it, the cascade goes ahead
DROP VIEW public.gen_report;
DROP FUNCTION public.mig_dbl(int) CASCADE;
SELECT attname FROM pg_attribute WHERE attrelid = 'm.gen'::regclass AND attnum > 0
 AND NOT attisdropped ORDER BY attnum;
SELECT elt.migration_end() > 0 AS ended;
RESET elt.migration;
SET elt.enabled = off;
DROP TABLE m.gen;
RESET elt.enabled;

-- the suites after this one share the extension
SELECT elt.ungovern('m');
DROP SCHEMA m CASCADE;
DROP ROLE mig_nobody;
