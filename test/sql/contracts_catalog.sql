-- Classification proportional to the tables a statement touches (issue 21,
-- item 9): the columns that use an enum or a domain are found through
-- pg_depend, in every form a column can use the type.
CREATE EXTENSION elt_governance;
CREATE SCHEMA g;                  -- governed
CREATE SCHEMA u;                  -- not governed
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN public.mood_d AS public.mood;                 -- a domain over the enum
CREATE DOMAIN public.moods_d AS public.mood[];              -- a domain over its array
CREATE TYPE public.only_u AS ENUM ('x', 'y');               -- used only by ungoverned tables
CREATE TYPE public.unused AS ENUM ('x');                    -- used by nobody
CREATE DOMAIN public.code_d AS text CHECK (VALUE <> '');
CREATE DOMAIN public.codes_d AS public.code_d;              -- a domain over a domain
CREATE TABLE g.direct (id int, m public.mood);
CREATE TABLE g.arr (id int, ms public.mood[]);
CREATE TABLE g.dom (id int, md public.mood_d);
CREATE TABLE g.domarr (id int, mds public.moods_d);
CREATE TABLE g.dropped (id int, m public.mood);
ALTER TABLE g.dropped DROP COLUMN m;                         -- no longer uses it
CREATE TABLE g.codes (id int, c public.code_d, cc public.codes_d);
CREATE VIEW g.direct_v AS SELECT m FROM g.direct;            -- a view is no table
CREATE TABLE u.direct (id int, m public.mood, o public.only_u);
CREATE TABLE u.arr (id int, os public.only_u[]);
CREATE TEMP TABLE tmp_mood (m public.mood);
SELECT elt.govern('g');
SELECT elt.govern('u.direct', 'off');          -- a table target, policy off

-- every governed column of the enum: direct, array, domain, domain over the array
SELECT statement_no, rule, class, object, dependents
FROM elt.check_ddl($$
ALTER TYPE public.mood RENAME VALUE 'ok' TO 'fine';
ALTER TYPE public.mood ADD VALUE 'angry';
ALTER TYPE public.mood ADD VALUE 'meh' AFTER 'sad';
ALTER TYPE public.only_u RENAME VALUE 'x' TO 'z';
ALTER TYPE public.unused RENAME VALUE 'x' TO 'z';
ALTER TYPE public.mood RENAME TO feeling;
ALTER DOMAIN public.mood_d SET NOT NULL;
ALTER DOMAIN public.moods_d ADD CONSTRAINT two CHECK (cardinality(VALUE) < 3) NOT VALID;
ALTER DOMAIN public.code_d SET NOT NULL;
ALTER DOMAIN public.codes_d DROP NOT NULL;
$$) ORDER BY statement_no, rule;

-- the live trigger under enforce gives the same verdicts
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RAISE EXCEPTION USING ERRCODE = 'P0099', MESSAGE = 'ran';
EXCEPTION
    WHEN SQLSTATE 'P0099' THEN RETURN 'ran';
    WHEN SQLSTATE '42ZEG' THEN RETURN 'blocked ' || split_part(SQLERRM, ':', 1);
    WHEN OTHERS THEN RETURN 'failed: ' || SQLERRM;
END
$$;
SELECT stmt, pg_temp.try(stmt) AS result FROM (VALUES
 ('ALTER TYPE public.mood RENAME VALUE ''ok'' TO ''fine'''),
 ('ALTER TYPE public.only_u RENAME VALUE ''x'' TO ''z'''),
 ('ALTER TYPE public.unused RENAME VALUE ''x'' TO ''z'''),
 ('ALTER TYPE public.mood ADD VALUE ''meh'' AFTER ''sad'''),
 ('ALTER DOMAIN public.mood_d SET NOT NULL'),
 ('ALTER DOMAIN public.codes_d DROP NOT NULL')) v(stmt);

-- the governed table with the enum only in its array column leaves: the
-- others still count; when none is left, nothing is governed by the type
SELECT elt.ungovern('g');
SELECT elt.govern('g.arr', 'warn');
SELECT statement_no, rule, class, object, dependents
FROM elt.check_ddl($$ALTER TYPE public.mood RENAME VALUE 'ok' TO 'fine'$$);
ALTER TABLE g.arr DROP COLUMN ms;
SELECT count(*) AS findings
FROM elt.check_ddl($$ALTER TYPE public.mood RENAME VALUE 'ok' TO 'fine'$$);

-- one elt.check_ddl() call caches its lookups: a second call sees a
-- governance change made in between
SELECT elt.govern('g', 'enforce');
SELECT statement_no, rule, object, dependents
FROM elt.check_ddl($$ALTER TABLE g.direct DROP COLUMN m$$);
SELECT elt.ungovern('g');
SELECT count(*) AS findings
FROM elt.check_ddl($$ALTER TABLE g.direct DROP COLUMN m$$);
-- within a call, the same relation judged under its new name after a rename
SELECT elt.govern('g');
SELECT statement_no, rule, object, dependents
FROM elt.check_ddl($$
ALTER TABLE g.direct DROP COLUMN id;
ALTER TABLE g.direct RENAME TO direct2;
ALTER TABLE g.direct2 DROP COLUMN m;
DROP TABLE g.direct2;
ALTER TABLE g.direct DROP COLUMN m;
$$) ORDER BY statement_no, rule;

DROP EXTENSION elt_governance;
DROP SCHEMA g CASCADE;
DROP SCHEMA u CASCADE;
DROP DOMAIN public.codes_d, public.code_d, public.moods_d, public.mood_d;
DROP TYPE public.mood, public.only_u, public.unused CASCADE;

-- a type 1,000 governed tables use (3,000 columns), judged in a new session:
-- the first call prepares the lookup's plan, and the 3,000 dependents must
-- outlive the SPI memory that preparing left current (it crashed the backend)
CREATE EXTENSION elt_governance;
CREATE TYPE public.wide AS ENUM ('new', 'open', 'done');
CREATE DOMAIN public.wide_d AS public.wide;
DO $$ BEGIN
  FOR s IN 1..50 LOOP
    EXECUTE format('CREATE SCHEMA w%s', s);
    FOR t IN 1..20 LOOP
      EXECUTE format('CREATE TABLE w%s.t%s (id int, st public.wide, sd public.wide_d, tags public.wide[])', s, t);
    END LOOP;
    PERFORM elt.govern(format('w%s', s));
  END LOOP;
END $$;
\c
SELECT statement_no, rule, class, object, cardinality(dependents) AS dependents,
       dependents[1] AS first_dependent
FROM elt.check_ddl($$ALTER TYPE public.wide RENAME VALUE 'new' TO 'fresh'$$);
DROP EXTENSION elt_governance;
SET client_min_messages = warning;
DO $$ BEGIN
  FOR s IN 1..50 LOOP
    EXECUTE format('DROP SCHEMA w%s CASCADE', s);
  END LOOP;
END $$;
DROP DOMAIN public.wide_d;
DROP TYPE public.wide;
