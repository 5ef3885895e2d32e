-- Blue-green deployments from the attacker's side: an interface must not
-- widen what a role can read (row level security, column grants), and
-- preparing a candidate must not run the interface owner's code with the
-- caller's rights.
--   sdp_owner       owns the interface schema and its tables (not a superuser)
--   sdp_member      a member of sdp_owner, who deploys
--   sdp_analyst     owns nothing; may read some columns of one table
--   sdp_rls_reader  reads a table through a row level security policy
--   sdp_reviewer    reads both colors of an interface; not a member of sdp_owner
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = warning;

CREATE ROLE sdp_owner;
CREATE ROLE sdp_member IN ROLE sdp_owner;
CREATE ROLE sdp_analyst;
CREATE ROLE sdp_rls_reader;
CREATE ROLE sdp_reviewer;
SELECT current_database() AS db \gset
GRANT CREATE ON DATABASE :"db" TO sdp_owner;

SET ROLE sdp_owner;
CREATE SCHEMA sdp_mart;
CREATE SCHEMA sdp_private;
CREATE SCHEMA sdp_fns;
GRANT USAGE ON SCHEMA sdp_mart, sdp_private TO sdp_analyst, sdp_rls_reader;
CREATE TABLE sdp_mart.customers (id int PRIMARY KEY, name text NOT NULL, email text, region text);
INSERT INTO sdp_mart.customers VALUES (1, 'ada', 'ada@example.com', 'north'), (2, 'bob', 'bob@example.com', 'south');
GRANT SELECT (id, name) ON sdp_mart.customers TO sdp_analyst;
-- a serial column: the candidate's sequence must be the owner's, not the caller's
CREATE TABLE sdp_mart.tickets (id bigserial PRIMARY KEY, subject text);
INSERT INTO sdp_mart.tickets (subject) VALUES ('a'), ('b'), ('c');
-- a table whose readers are limited by a policy
CREATE TABLE sdp_mart.secrets (id int PRIMARY KEY, region text NOT NULL, note text);
INSERT INTO sdp_mart.secrets VALUES (1, 'north', 'north only'), (2, 'south', 'south only');
ALTER TABLE sdp_mart.secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY north ON sdp_mart.secrets TO sdp_rls_reader USING (region = 'north');
GRANT SELECT ON sdp_mart.secrets TO sdp_rls_reader;
-- and one whose owner forced it on themselves
CREATE TABLE sdp_mart.ledger (id int PRIMARY KEY, amount numeric);
ALTER TABLE sdp_mart.ledger FORCE ROW LEVEL SECURITY;
RESET ROLE;
SET ROLE sdp_rls_reader;
SELECT id, note FROM sdp_mart.secrets ORDER BY id;
RESET ROLE;

-------------------------------------------------------------------------------
-- 1. deploy_init refuses a schema with row level security: the view that
--    would take the table's place reads as its owner, who bypasses the
--    policies.  Nothing changes.
-------------------------------------------------------------------------------
SET ROLE sdp_member;
SELECT elt.deploy_init('sdp_mart');
RESET ROLE;
SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
WHERE c.relnamespace = 'sdp_mart'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1;
SELECT count(*) AS color_schemas FROM pg_namespace WHERE nspname LIKE 'sdp\_mart\_\_%';
SET ROLE sdp_rls_reader;
SELECT id, note FROM sdp_mart.secrets ORDER BY id;
RESET ROLE;
-- what the hint says: the policy-protected table leaves the interface schema,
-- the forced-only one drops what it does not need
SET ROLE sdp_owner;
ALTER TABLE sdp_mart.secrets SET SCHEMA sdp_private;
ALTER TABLE sdp_mart.ledger NO FORCE ROW LEVEL SECURITY;
RESET ROLE;

-------------------------------------------------------------------------------
-- The trap for finding 3: an expression index whose function, labelled
-- IMMUTABLE, makes its owner a superuser when a superuser runs it, and says
-- as whom it runs.  is_superuser reports the session's role, not the
-- current user, so it always tries here; a failed try is swallowed.
-------------------------------------------------------------------------------
SET ROLE sdp_owner;
CREATE FUNCTION sdp_fns.escalate() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'ALTER ROLE sdp_owner SUPERUSER';
END
$$;
CREATE FUNCTION sdp_fns.touch(x text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE NOTICE 'index function runs as %', current_user;
    IF current_setting('is_superuser') = 'on' THEN
        -- quietly: a failed try must not give the trap away
        BEGIN
            PERFORM sdp_fns.escalate();
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'escalation failed: %', SQLSTATE;
        END;
    END IF;
    RETURN x;
END
$$;
-- the same, quiet, for index predicates: PostgreSQL calls it over its
-- constant argument when it plans the predicate (CREATE TABLE ... LIKE
-- does); it says who ran it when the test asks (sdp.trace_fold)
CREATE FUNCTION sdp_fns.fold(x text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF current_setting('sdp.trace_fold', true) = 'on' THEN
        RAISE NOTICE 'predicate function runs as %', current_user;
    END IF;
    IF current_setting('is_superuser') = 'on' THEN
        BEGIN
            PERFORM sdp_fns.escalate();
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
    END IF;
    RETURN x;
END
$$;
CREATE TABLE sdp_mart.events (id int PRIMARY KEY, payload text);
CREATE INDEX events_touch ON sdp_mart.events (sdp_fns.touch(payload));
INSERT INTO sdp_mart.events VALUES (1, 'a'), (2, 'b');
RESET ROLE;
-- the trap is armed: run by a superuser, it works (rolled back here)
BEGIN;
SELECT sdp_fns.touch('x') IS NOT NULL AS ran_as_superuser;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'sdp_owner';
ROLLBACK;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'sdp_owner';

-------------------------------------------------------------------------------
-- 2. deploy_init: the views get the tables' column grants
-------------------------------------------------------------------------------
SET ROLE sdp_member;
SELECT elt.deploy_init('sdp_mart') AS tables;
RESET ROLE;
SET ROLE sdp_analyst;
SELECT id, name FROM sdp_mart.customers ORDER BY id;
SELECT email FROM sdp_mart.customers;
SELECT * FROM sdp_mart.customers;
SELECT id FROM sdp_mart.events;
RESET ROLE;
SELECT attname, attacl FROM pg_attribute
WHERE attrelid = 'sdp_mart.customers'::regclass AND attnum > 0 ORDER BY attnum;

-------------------------------------------------------------------------------
-- 3. Row level security can never be turned on behind an interface: not by
--    the tables' owner, not with elt.enabled off, not by moving a table in.
--    Nothing changes.
-------------------------------------------------------------------------------
SET ROLE sdp_owner;
ALTER TABLE sdp_mart__blue.customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE sdp_mart__blue.customers FORCE ROW LEVEL SECURITY;
ALTER TABLE sdp_private.secrets SET SCHEMA sdp_mart__blue;
RESET ROLE;
SET elt.enabled = off;
ALTER TABLE sdp_mart__blue.events ADD COLUMN extra int, ENABLE ROW LEVEL SECURITY;
RESET elt.enabled;
SELECT c.oid::regclass AS rel, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
WHERE c.relnamespace IN ('sdp_mart__blue'::regnamespace, 'sdp_private'::regnamespace) AND c.relkind = 'r' ORDER BY c.oid::regclass::text;
SELECT count(*) AS events_columns FROM pg_attribute WHERE attrelid = 'sdp_mart__blue.events'::regclass AND attnum > 0;
-- turning it off, and tables outside the colors, are not affected
ALTER TABLE sdp_mart__blue.customers DISABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY;
SET ROLE sdp_owner;
CREATE TABLE sdp_private.notes (id int);
ALTER TABLE sdp_private.notes ENABLE ROW LEVEL SECURITY;
DROP TABLE sdp_private.notes;
RESET ROLE;

-------------------------------------------------------------------------------
-- 4. deploy_prepare(copy_data => true) by a superuser makes and fills the
--    candidate's tables as their owner, in a security-restricted operation:
--    the traps run as sdp_owner and find no superuser rights to take.
--    (The predicate's trap lives only for this step: any role that plans a
--    query on the table runs it, as that role; PostgreSQL's doing, not the
--    extension's.)
-------------------------------------------------------------------------------
SET ROLE sdp_owner;
CREATE INDEX events_fold ON sdp_mart__blue.events (id) WHERE payload <> sdp_fns.fold('-');
RESET ROLE;
SET sdp.trace_fold = on;
SET client_min_messages = notice;
SELECT elt.deploy_prepare('sdp_mart', copy_data => true) AS candidate;
SET client_min_messages = warning;
RESET sdp.trace_fold;
SET ROLE sdp_owner;
SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid::regclass::text) AS trap_indexes
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indpred IS NOT NULL
  AND i.indrelid IN ('sdp_mart__blue.events'::regclass, 'sdp_mart__green.events'::regclass) \gset
DROP INDEX :trap_indexes;
RESET ROLE;
SELECT :'trap_indexes' AS trap_indexes_dropped;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'sdp_owner';
SELECT (SELECT count(*) FROM sdp_mart__green.events) AS events_copied,
       (SELECT count(*) FROM sdp_mart__green.customers) AS customers_copied;
-- the candidate's tables and sequences have the live tables' owner; the
-- tables have their column grants
SELECT c.oid::regclass AS rel, c.relkind, c.relowner::regrole AS owner FROM pg_class c
WHERE c.relnamespace = 'sdp_mart__green'::regnamespace AND c.relkind IN ('r', 'S') ORDER BY c.oid::regclass::text;
SELECT pg_get_serial_sequence('sdp_mart__green.tickets', 'id') AS own_sequence,
       pg_sequence_last_value(pg_get_serial_sequence('sdp_mart__green.tickets', 'id')::regclass) AS continues_from;
SET ROLE sdp_analyst;
SELECT id, name FROM sdp_mart__green.customers ORDER BY id;
SELECT email FROM sdp_mart__green.customers;
RESET ROLE;

-------------------------------------------------------------------------------
-- 5. Row level security turned on while the event trigger did not fire:
--    prepare, promote and canary refuse, naming the tables
-------------------------------------------------------------------------------
ALTER EVENT TRIGGER elt_ddl_command_start DISABLE;
ALTER TABLE sdp_mart__blue.customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE sdp_mart__green.events FORCE ROW LEVEL SECURITY;
ALTER EVENT TRIGGER elt_ddl_command_start ENABLE;
SET ROLE sdp_member;
SELECT elt.deploy_prepare('sdp_mart');
SELECT elt.deploy_promote('sdp_mart', 'v2');
SELECT elt.deploy_canary('sdp_mart', roles => ARRAY['sdp_analyst']);
RESET ROLE;
SELECT state, live, canary FROM elt.deployments WHERE interface = 'sdp_mart';
SELECT pg_get_viewdef('sdp_mart.customers') LIKE '%sdp_mart__blue.customers%' AS views_still_read_blue;
SET ROLE sdp_owner;
ALTER TABLE sdp_mart__blue.customers DISABLE ROW LEVEL SECURITY;
ALTER TABLE sdp_mart__green.events NO FORCE ROW LEVEL SECURITY;
RESET ROLE;

-------------------------------------------------------------------------------
-- 6. Column grants through a canary, a promotion that appends a column, and
--    a rollback (which refuses a color with row level security too)
-------------------------------------------------------------------------------
SET ROLE sdp_owner;
ALTER TABLE sdp_mart__green.customers ADD COLUMN tier text DEFAULT 'gold';
GRANT SELECT (tier) ON sdp_mart__green.customers TO sdp_analyst;
UPDATE sdp_mart__green.customers SET name = upper(name);
RESET ROLE;
SET ROLE sdp_member;
SELECT elt.deploy_canary('sdp_mart', roles => ARRAY['sdp_analyst']) > 0 AS canary;
RESET ROLE;
SET ROLE sdp_analyst;
SELECT id, name FROM sdp_mart.customers ORDER BY id;
SELECT email FROM sdp_mart.customers;
SELECT tier FROM sdp_mart.customers;
RESET ROLE;
SET ROLE sdp_member;
SELECT elt.deploy_promote('sdp_mart', 'v2: tiers') > 0 AS promoted;
RESET ROLE;
SET ROLE sdp_analyst;
SELECT id, name, tier FROM sdp_mart.customers ORDER BY id;
SELECT email FROM sdp_mart.customers;
SELECT region FROM sdp_mart.customers;
RESET ROLE;
-- a rollback refuses, too, to point the views at a color with row level security
ALTER EVENT TRIGGER elt_ddl_command_start DISABLE;
ALTER TABLE sdp_mart__blue.ledger ENABLE ROW LEVEL SECURITY;
ALTER EVENT TRIGGER elt_ddl_command_start ENABLE;
SET ROLE sdp_member;
SELECT elt.deploy_rollback('sdp_mart', 'v2 names are wrong');
RESET ROLE;
ALTER TABLE sdp_mart__blue.ledger DISABLE ROW LEVEL SECURITY;
SET ROLE sdp_member;
SELECT elt.deploy_rollback('sdp_mart', 'v2 names are wrong') > 0 AS rolled_back;
RESET ROLE;
SET ROLE sdp_analyst;
SELECT id, name, tier FROM sdp_mart.customers ORDER BY id;
SELECT email FROM sdp_mart.customers;
RESET ROLE;

-------------------------------------------------------------------------------
-- 7. A forced promotion that makes a view again (a retyped column) gives it
--    its table's column grants; a new table's view gets its table's
-------------------------------------------------------------------------------
SET ROLE sdp_member;
SELECT elt.deploy_prepare('sdp_mart', copy_data => true) AS candidate;
RESET ROLE;
SET ROLE sdp_owner;
ALTER TABLE sdp_mart__green.customers ALTER COLUMN region TYPE varchar(10);
CREATE TABLE sdp_mart__green.regions (code text PRIMARY KEY, label text, manager text);
GRANT SELECT (code, label) ON sdp_mart__green.regions TO sdp_analyst;
INSERT INTO sdp_mart__green.regions VALUES ('north', 'North', 'ann');
RESET ROLE;
SELECT elt.approver_add('sdp-lead', 'signs off the security_deploy suite') IS NOT NULL AS approver;
SET ROLE sdp_member;
BEGIN;
SELECT elt.migration_begin('sdp retype region', 'region codes are short', 'sdp-lead') > 0 AS begun;
SELECT elt.deploy_promote('sdp_mart', 'v3: short regions', force => true) > 0 AS promoted;
SELECT elt.migration_end() > 0 AS ended;
COMMIT;
RESET ROLE;
SELECT v.value ->> 'view' AS view, v.value ->> 'change' AS change
FROM elt.deployment_events e, jsonb_array_elements(e.details -> 'views') v
WHERE e.interface = 'sdp_mart' AND e.action = 'deploy_promote' AND e.details ->> 'live' = 'sdp_mart__green'
  AND e.event_id = (SELECT max(event_id) FROM elt.deployment_events WHERE interface = 'sdp_mart')
ORDER BY 1;
SET ROLE sdp_analyst;
SELECT id, name FROM sdp_mart.customers ORDER BY id;
SELECT email FROM sdp_mart.customers;
SELECT code, label FROM sdp_mart.regions;
SELECT manager FROM sdp_mart.regions;
RESET ROLE;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'sdp_owner';

-------------------------------------------------------------------------------
-- 8. A table whose owner cannot make its candidate (no USAGE or CREATE on
--    the schema: a superuser gave it that owner): a clear error, and
--    nothing changes
-------------------------------------------------------------------------------
SET ROLE sdp_member;
SELECT elt.deploy_decommission('sdp_mart', '0 seconds') AS dropped;
RESET ROLE;
CREATE ROLE sdp_loader;
ALTER TABLE sdp_mart__green.regions OWNER TO sdp_loader;
SELECT elt.deploy_prepare('sdp_mart', copy_data => true);
SELECT count(*) AS blue_schemas FROM pg_namespace WHERE nspname = 'sdp_mart__blue';
SELECT state FROM elt.deployments WHERE interface = 'sdp_mart' ORDER BY deployment_id DESC LIMIT 1;
GRANT USAGE, CREATE ON SCHEMA sdp_mart__green TO sdp_loader;
SELECT elt.deploy_prepare('sdp_mart', copy_data => true) AS candidate;
SELECT relowner::regrole AS owner, (SELECT count(*) FROM sdp_mart__blue.regions) AS rows_copied
FROM pg_class WHERE oid = 'sdp_mart__blue.regions'::regclass;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'sdp_owner';

-------------------------------------------------------------------------------
-- 9. deploy_compare and deploy_diff compare each table as its owner, in a
--    security-restricted operation with search_path pinned: what they call
--    of the owner's (casts of its enum to text and json, the CHECK of its
--    domain on the key, its = operator if it were ever found) runs as
--    sdp_owner and finds no superuser rights to take, and settings it
--    changes do not stay in the caller's session.  A member of the owner
--    compares too; a role that reads both colors but is not a member is
--    refused before anything runs; a candidate with another owner than its
--    live table is refused.
-------------------------------------------------------------------------------
SET ROLE sdp_owner;
CREATE FUNCTION sdp_fns.trap(what text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    tried text := '';
BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        BEGIN
            PERFORM sdp_fns.escalate();
            tried := ', made sdp_owner a superuser';
        EXCEPTION WHEN insufficient_privilege THEN
            tried := ', could not escalate';
        END;
    END IF;
    RAISE NOTICE '% runs as %', what, current_user || tried;
END
$$;
CREATE TYPE sdp_fns.mood AS ENUM ('happy', 'sad');
CREATE FUNCTION sdp_fns.mood_text(m sdp_fns.mood) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sdp_fns.trap('cast to text');
    RETURN m::varchar;
END
$$;
-- the cast to json also plants a search_path in the session it runs in
CREATE FUNCTION sdp_fns.mood_json(m sdp_fns.mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sdp_fns.trap('cast to json');
    PERFORM set_config('search_path', 'sdp_fns, public', false);
    RETURN to_json(m::varchar);
END
$$;
CREATE FUNCTION sdp_fns.mood_eq(a sdp_fns.mood, b sdp_fns.mood) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sdp_fns.trap('= operator');
    RETURN a::varchar = b::varchar;
END
$$;
CREATE FUNCTION sdp_fns.code_ok(c int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('sdp.trace_code', true) = 'on' THEN
        PERFORM sdp_fns.trap('domain check');
    END IF;
    RETURN c > 0;
END
$$;
CREATE CAST (sdp_fns.mood AS text) WITH FUNCTION sdp_fns.mood_text(sdp_fns.mood);
CREATE CAST (sdp_fns.mood AS json) WITH FUNCTION sdp_fns.mood_json(sdp_fns.mood);
CREATE OPERATOR sdp_fns.= (LEFTARG = sdp_fns.mood, RIGHTARG = sdp_fns.mood, FUNCTION = sdp_fns.mood_eq);
CREATE DOMAIN sdp_fns.code AS int CHECK (sdp_fns.code_ok(VALUE));
CREATE SCHEMA sdp_dash;
CREATE TABLE sdp_dash.moods (id sdp_fns.code, k sdp_fns.mood, m sdp_fns.mood, PRIMARY KEY (id, k));
INSERT INTO sdp_dash.moods VALUES (1, 'happy', 'happy'), (2, 'happy', 'sad'), (3, 'sad', 'happy');
RESET ROLE;
SET ROLE sdp_member;
SELECT elt.deploy_init('sdp_dash') AS tables;
SELECT elt.deploy_prepare('sdp_dash', copy_data => true) AS candidate;
RESET ROLE;
SET ROLE sdp_owner;
UPDATE sdp_dash__green.moods SET m = 'sad' WHERE id = 1;
DELETE FROM sdp_dash__green.moods WHERE id = 3;
INSERT INTO sdp_dash__green.moods VALUES (4, 'sad', 'sad');
RESET ROLE;
-- a superuser reviews the candidate: the owner's code runs as the owner
SHOW search_path;
SET sdp.trace_code = on;
SET client_min_messages = notice;
SELECT relation, shape, compatibility, live_rows, candidate_rows, missing, extra, changed
FROM elt.deploy_compare('sdp_dash');
SELECT key, change, columns, live, candidate FROM elt.deploy_diff('sdp_dash', 'moods');
SET client_min_messages = warning;
RESET sdp.trace_code;
SHOW search_path;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'sdp_owner';
-- a member of the owner compares
SET ROLE sdp_member;
SELECT relation, compatibility, live_rows, candidate_rows, missing, extra, changed FROM elt.deploy_compare('sdp_dash');
SELECT key, change, columns FROM elt.deploy_diff('sdp_dash', 'sdp_dash.moods');
RESET ROLE;
-- a role that may read both colors, but not act as their owner, is refused
-- before any of the owner's code runs
SET ROLE sdp_owner;
GRANT USAGE ON SCHEMA sdp_dash, sdp_dash__blue, sdp_dash__green TO sdp_reviewer;
GRANT SELECT ON sdp_dash__blue.moods, sdp_dash__green.moods TO sdp_reviewer;
RESET ROLE;
SET ROLE sdp_reviewer;
SELECT count(*) AS reads_live FROM sdp_dash__blue.moods;
SET sdp.trace_code = on;
SET client_min_messages = notice;
SELECT * FROM elt.deploy_compare('sdp_dash');
SELECT * FROM elt.deploy_diff('sdp_dash', 'moods');
SET client_min_messages = warning;
RESET sdp.trace_code;
RESET ROLE;
-- a candidate that has another owner than its live table: refused
ALTER TABLE sdp_dash__green.moods OWNER TO sdp_loader;
SELECT * FROM elt.deploy_compare('sdp_dash');
SELECT * FROM elt.deploy_diff('sdp_dash', 'moods');
ALTER TABLE sdp_dash__green.moods OWNER TO sdp_owner;
SELECT relation, changed FROM elt.deploy_compare('sdp_dash');
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'sdp_owner';
-- the tables of one interface with different owners (sdp_mart.regions
-- belongs to sdp_loader since step 8): each is compared as its own owner; a
-- member of sdp_owner compares sdp_owner's tables, and is refused the
-- interface as a whole
SELECT relation, compatibility, live_rows, candidate_rows, missing, extra, changed FROM elt.deploy_compare('sdp_mart');
SET ROLE sdp_member;
SELECT count(*) AS customers_differ FROM elt.deploy_diff('sdp_mart', 'customers');
SELECT relation FROM elt.deploy_compare('sdp_mart');
SELECT count(*) FROM elt.deploy_diff('sdp_mart', 'regions');
RESET ROLE;

-------------------------------------------------------------------------------
-- 10. A promotion's gates list their checks' results (taken as the checks'
--     owners) to the interface owner's members and elt_reader only; a role
--     that may use the interface sees the deployments without them
-------------------------------------------------------------------------------
SET ROLE sdp_analyst;
SELECT count(*) AS promotions, count(*) FILTER (WHERE gates ? 'checks') AS with_checks
FROM elt.deployments WHERE interface = 'sdp_mart' AND gates IS NOT NULL;
SELECT count(*) AS promote_events, count(*) FILTER (WHERE details -> 'gates' ? 'checks') AS with_checks
FROM elt.deployment_events WHERE interface = 'sdp_mart' AND action = 'deploy_promote';
RESET ROLE;
SET ROLE sdp_member;
SELECT count(*) AS promotions, count(*) FILTER (WHERE gates ? 'checks') AS with_checks
FROM elt.deployments WHERE interface = 'sdp_mart' AND gates IS NOT NULL;
SELECT count(*) AS promote_events, count(*) FILTER (WHERE details -> 'gates' ? 'checks') AS with_checks
FROM elt.deployment_events WHERE interface = 'sdp_mart' AND action = 'deploy_promote';
RESET ROLE;

-------------------------------------------------------------------------------
-- Clean up
-------------------------------------------------------------------------------
DROP SCHEMA sdp_mart, sdp_mart__blue, sdp_mart__green, sdp_dash, sdp_dash__blue, sdp_dash__green, sdp_private, sdp_fns CASCADE;
DROP OWNED BY sdp_owner, sdp_member, sdp_analyst, sdp_rls_reader, sdp_loader, sdp_reviewer;
DROP ROLE sdp_member, sdp_analyst, sdp_rls_reader, sdp_loader, sdp_reviewer, sdp_owner;
