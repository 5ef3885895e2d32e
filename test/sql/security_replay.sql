-- Replay, from the attacker's side: a replay runs the recorded SQL as the
-- run's role, never as the caller; its sandbox belongs to that role, and
-- elt.verify_replay() reads it as that role.
--   srp_mallory  owns a schema with a source, a target and transforms whose
--                SQL calls her function: it reports current_user and, run
--                as a superuser, makes her one
--   srp_member   a member of srp_mallory
--   srp_eve      owns nothing
--   srp_gone     records a run, then is dropped
-- and the superuser running this suite.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = warning;

CREATE ROLE srp_mallory LOGIN;
CREATE ROLE srp_member LOGIN IN ROLE srp_mallory;
CREATE ROLE srp_eve LOGIN;
CREATE ROLE srp_gone LOGIN;
-- a replay makes a schema: its caller needs CREATE on the database
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO srp_member, srp_eve', current_database()); END $$;
CREATE SCHEMA srp_m AUTHORIZATION srp_mallory;
-- an error as psql prints it, with checksums and numbers (run ids, OIDs)
-- masked: the numbers depend on the suites that ran before in this database
CREATE SCHEMA srp_util;
GRANT USAGE ON SCHEMA srp_util TO PUBLIC;
CREATE FUNCTION srp_util.masked(t text) RETURNS text LANGUAGE sql AS
$$SELECT regexp_replace(regexp_replace(t, 'v\d+:\d+:[0-9a-f]{32}', 'CHECKSUM', 'g'), '\d+', 'N', 'g')$$;
CREATE FUNCTION srp_util.error_of(sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    m text;
    d text;
    h text;
BEGIN
    EXECUTE sql;
    RETURN NEXT 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN NEXT 'ERROR:  ' || srp_util.masked(m);
    IF d <> '' THEN
        RETURN NEXT 'DETAIL:  ' || srp_util.masked(d);
    END IF;
    IF h <> '' THEN
        RETURN NEXT 'HINT:  ' || srp_util.masked(h);
    END IF;
END $$;

-------------------------------------------------------------------------------
-- Mallory's schema, transforms and run
-------------------------------------------------------------------------------
SET SESSION AUTHORIZATION srp_mallory;
CREATE TABLE srp_m.src (id int PRIMARY KEY, amount numeric NOT NULL);
INSERT INTO srp_m.src SELECT g, g * 10 FROM generate_series(1, 5) g;
-- the attack: who runs it, and a superuser role for mallory when that is a
-- superuser.  (is_superuser is the session's: in a superuser's session the
-- attempt is made, and refused unless current_user is a superuser.)
CREATE FUNCTION srp_m.who() RETURNS text LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        BEGIN
            EXECUTE 'ALTER ROLE srp_mallory SUPERUSER';
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
    END IF;
    RETURN current_user::text;
END $$;
-- a second attack: run in someone else's session, leave a search_path that
-- finds mallory's schema first (plant_log shows in whose sessions it did)
CREATE TABLE srp_m.plant_log (planted_in text);
CREATE FUNCTION srp_m.plant() RETURNS int LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    IF session_user <> current_user THEN
        PERFORM set_config('search_path', 'srp_m, public', false);
        INSERT INTO srp_m.plant_log VALUES (session_user);
    END IF;
    RETURN 1;
END $$;
-- ran_as: filled by the SQL; stamped_by: by the column's default (the SQL leaves it out)
CREATE TABLE srp_m.dst (id int PRIMARY KEY, amount numeric, ran_as text,
                        stamped_by text DEFAULT srp_m.who());
CREATE TABLE srp_m.planted (id int PRIMARY KEY, n int);
SELECT elt.transform_create('srp_load', 'srp_m.dst',
  'SELECT id, amount, srp_m.who() AS ran_as FROM srp_m.src', 'replace', '{"lineage": "table"}') IS NOT NULL AS created;
SELECT elt.transform_create('srp_plant', 'srp_m.planted',
  'SELECT id, srp_m.plant() AS n FROM srp_m.src', 'replace', '{"lineage": "table"}') IS NOT NULL AS created;
SELECT elt.run_begin('srp_nightly', '{}', 'full') AS run \gset
SELECT elt.transform_run('srp_load') IS NOT NULL AS ran;
SELECT elt.transform_run('srp_plant') IS NOT NULL AS ran;
SELECT elt.run_end() = :run AS ended;
SELECT ran_as, stamped_by, count(*) FROM srp_m.dst GROUP BY 1, 2;
SELECT role FROM elt.runs WHERE run_id = :run;
RESET SESSION AUTHORIZATION;
SHOW search_path;

-------------------------------------------------------------------------------
-- The superuser replays it: the SQL and the defaults run as srp_mallory
-------------------------------------------------------------------------------
SELECT elt.replay(:run, 'srp_sandbox_su') AS rep_su \gset
SELECT ran_as, stamped_by, count(*) FROM srp_sandbox_su.dst GROUP BY 1, 2;
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'srp_mallory';
-- mallory's function set a search_path in the superuser's session: it did not stay
SELECT planted_in = session_user AS planted_here, count(*) FROM srp_m.plant_log GROUP BY 1;
SHOW search_path;
-- the sandbox is mallory's: its schema, its tables, the recorded default
SELECT nspowner::regrole AS schema_owner FROM pg_namespace WHERE nspname = 'srp_sandbox_su';
SELECT relname, relowner::regrole AS owner FROM pg_class
WHERE relnamespace = 'srp_sandbox_su'::regnamespace AND relkind = 'r' ORDER BY 1;
SELECT column_default FROM information_schema.columns
WHERE table_schema = 'srp_sandbox_su' AND table_name = 'dst' AND column_name = 'stamped_by';
-- the replay is a run of srp_mallory's, made by the superuser
SELECT kind, role, replay_of = :run AS of_run FROM elt.runs WHERE run_id = :rep_su;
SELECT role = current_user AS by_caller FROM elt.audit_log
WHERE action = 'replay' AND (details ->> 'replay_id')::bigint = :rep_su;
SELECT check_name, relation, ok FROM elt.verify_replay(:run, :rep_su) ORDER BY 1, 2;

-------------------------------------------------------------------------------
-- Mallory reads and verifies the replay: it ran as her
-------------------------------------------------------------------------------
SET SESSION AUTHORIZATION srp_mallory;
SELECT kind, role FROM elt.runs WHERE run_id = :rep_su;
SELECT bool_and(ok) AS all_ok FROM elt.verify_replay(:run, :rep_su);
SELECT count(*) AS sandbox_rows FROM srp_sandbox_su.dst;
RESET SESSION AUTHORIZATION;

-------------------------------------------------------------------------------
-- A member of srp_mallory replays it: the same
-------------------------------------------------------------------------------
SET SESSION AUTHORIZATION srp_member;
SELECT elt.replay(:run, 'srp_sandbox_member') AS rep_member \gset
SELECT ran_as, stamped_by, count(*) FROM srp_sandbox_member.dst GROUP BY 1, 2;
SELECT kind, role FROM elt.runs WHERE run_id = :rep_member;
SELECT bool_and(ok) AS all_ok FROM elt.verify_replay(:run, :rep_member);
RESET SESSION AUTHORIZATION;
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'srp_mallory';
SELECT nspowner::regrole AS schema_owner FROM pg_namespace WHERE nspname = 'srp_sandbox_member';
SELECT planted_in, count(*) FROM srp_m.plant_log WHERE planted_in <> session_user GROUP BY 1;
SHOW search_path;

-------------------------------------------------------------------------------
-- Eve, who owns nothing, can neither replay nor verify it, nor read the sandbox
-------------------------------------------------------------------------------
SET SESSION AUTHORIZATION srp_eve;
SELECT srp_util.error_of(format('SELECT elt.replay(%s, %L)', :run, 'srp_sandbox_eve'));
SELECT srp_util.error_of(format('SELECT * FROM elt.verify_replay(%s, %s)', :run, :rep_su));
SELECT count(*) FROM srp_sandbox_su.dst;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS eve_schemas FROM pg_namespace WHERE nspname = 'srp_sandbox_eve';

-------------------------------------------------------------------------------
-- A pipeline run begun by another role than the owner of its transforms:
-- its steps ran as srp_mallory, the run is the beginner's.  Replaying it
-- as the run's role would run mallory's SQL as that role: refused, nothing
-- made.
-------------------------------------------------------------------------------
-- begun by the superuser
SELECT elt.run_begin('srp_admin_nightly', '{}', 'full') AS prun \gset
SELECT elt.transform_run('srp_load') IS NOT NULL AS ran;
SELECT elt.run_end() = :prun AS ended;
SELECT role = current_user::regrole AS run_of_caller FROM elt.runs WHERE run_id = :prun;
SELECT srp_util.error_of(format('SELECT elt.replay(%s, %L)', :prun, 'srp_sandbox_pipeline'));
SELECT count(*) AS pipeline_schemas FROM pg_namespace WHERE nspname = 'srp_sandbox_pipeline';
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'srp_mallory';
-- begun by the member
SET SESSION AUTHORIZATION srp_member;
SELECT elt.run_begin('srp_member_nightly', '{}', 'full') AS brun \gset
SELECT elt.transform_run('srp_load') IS NOT NULL AS ran;
SELECT elt.run_end() = :brun AS ended;
SELECT role FROM elt.runs WHERE run_id = :brun;
SELECT srp_util.error_of(format('SELECT elt.replay(%s, %L)', :brun, 'srp_sandbox_member_run'));
-- begun as the owner (SET ROLE): its replay runs as srp_mallory
SET ROLE srp_mallory;
SELECT elt.run_begin('srp_member_as_owner', '{}', 'full') AS orun \gset
SELECT elt.transform_run('srp_load') IS NOT NULL AS ran;
SELECT elt.run_end() = :orun AS ended;
RESET ROLE;
SELECT role FROM elt.runs WHERE run_id = :orun;
SELECT elt.replay(:orun, 'srp_sandbox_owner_run') AS orep \gset
SELECT ran_as, stamped_by, count(*) FROM srp_sandbox_owner_run.dst GROUP BY 1, 2;
SELECT bool_and(ok) AS all_ok FROM elt.verify_replay(:orun, :orep);
RESET SESSION AUTHORIZATION;
SELECT count(*) AS member_run_schemas FROM pg_namespace WHERE nspname = 'srp_sandbox_member_run';

-------------------------------------------------------------------------------
-- Mallory owns her sandboxes: she makes a replay differ, swaps its table for
-- a view that calls her function, and waits for the superuser to verify it.
-- The verification reads the sandbox as srp_mallory.
-------------------------------------------------------------------------------
SET SESSION AUTHORIZATION srp_mallory;
CREATE OR REPLACE FUNCTION srp_m.who() RETURNS text LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        BEGIN
            EXECUTE 'ALTER ROLE srp_mallory SUPERUSER';
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
    END IF;
    RETURN current_user::text || ' (changed)';
END $$;
RESET SESSION AUTHORIZATION;
SELECT elt.replay(:run, 'srp_sandbox_swapped') AS rep_sw \gset
SET SESSION AUTHORIZATION srp_mallory;
DROP TABLE srp_sandbox_swapped.dst;
CREATE VIEW srp_sandbox_swapped.dst AS
SELECT id, amount, srp_m.who() AS ran_as, srp_m.who() AS stamped_by FROM srp_m.src;
RESET SESSION AUTHORIZATION;
SELECT check_name, relation, ok FROM elt.verify_replay(:run, :rep_sw)
WHERE check_name IN ('checksum', 'rows') ORDER BY 1, 2;
SELECT max(actual) FILTER (WHERE check_name = 'row') LIKE '%ran_as=srp_mallory (changed)%' AS read_as_mallory
FROM elt.verify_replay(:run, :rep_sw);
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'srp_mallory';

-------------------------------------------------------------------------------
-- The snapshots a replay reads are ones the run's role may read: with
-- mallory's snapshot of srp_m.src gone, the superuser's snapshot of the
-- same rows does not stand in for it
-------------------------------------------------------------------------------
SET SESSION AUTHORIZATION srp_mallory;
SELECT elt.snapshot_drop((i -> 'snapshot' ->> 'id')::bigint, force => true) AS dropped
FROM jsonb_array_elements(elt.run_manifest(:run) -> 'inputs') i WHERE i ->> 'step' = '1';
RESET SESSION AUTHORIZATION;
SELECT elt.snapshot_create('srp_m.src') IS NOT NULL AS superusers_snapshot;
SELECT srp_util.error_of(format('SELECT elt.replay(%s, %L)', :run, 'srp_sandbox_no_snapshot'));
SELECT count(*) AS no_snapshot_schemas FROM pg_namespace WHERE nspname = 'srp_sandbox_no_snapshot';
-- one of mallory's own, made again, does
SET SESSION AUTHORIZATION srp_mallory;
SELECT elt.snapshot_create('srp_m.src') IS NOT NULL AS mallorys_snapshot;
RESET SESSION AUTHORIZATION;
SELECT elt.replay(:run, 'srp_sandbox_snapshot_again') AS rep_again \gset
SELECT count(*) AS sandbox_rows FROM srp_sandbox_snapshot_again.src;

-------------------------------------------------------------------------------
-- A run whose role was dropped cannot be replayed: nothing is made, and
-- a replay whose role was dropped cannot be verified
-------------------------------------------------------------------------------
CREATE SCHEMA srp_g AUTHORIZATION srp_gone;
SET SESSION AUTHORIZATION srp_gone;
CREATE TABLE srp_g.src (id int PRIMARY KEY);
INSERT INTO srp_g.src SELECT generate_series(1, 3);
CREATE TABLE srp_g.dst (id int PRIMARY KEY);
SELECT elt.transform_create('srp_gone_copy', 'srp_g.dst', 'SELECT id FROM srp_g.src', 'replace') IS NOT NULL AS created;
SELECT elt.run_begin('srp_gone_nightly', '{}', 'full') AS grun \gset
SELECT elt.transform_run('srp_gone_copy') IS NOT NULL AS ran;
SELECT elt.run_end() = :grun AS ended;
RESET SESSION AUTHORIZATION;
SELECT elt.replay(:grun) AS grep \gset
DROP OWNED BY srp_gone;
DROP ROLE srp_gone;
-- a superuser still reads it, others are told why they cannot
SELECT elt.run_manifest(:grun) -> 'run' ->> 'kind' AS kind;
SET SESSION AUTHORIZATION srp_eve;
SELECT srp_util.error_of(format('SELECT elt.run_manifest(%s)', :grun));
RESET SESSION AUTHORIZATION;
SELECT srp_util.error_of(format('SELECT elt.replay(%s, %L)', :grun, 'srp_sandbox_gone'));
SELECT count(*) AS gone_schemas FROM pg_namespace WHERE nspname = 'srp_sandbox_gone';
-- nor can its replay be verified: its sandbox is read only as that role
SELECT srp_util.error_of(format('SELECT * FROM elt.verify_replay(%s, %s)', :grun, :grep));

-------------------------------------------------------------------------------
-- Clean up
-------------------------------------------------------------------------------
DROP SCHEMA srp_util CASCADE;
DROP OWNED BY srp_member;
DROP ROLE srp_member;
DROP OWNED BY srp_eve;
DROP ROLE srp_eve;
DROP OWNED BY srp_mallory;
DROP ROLE srp_mallory;
