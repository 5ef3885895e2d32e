-- Rebuild commands (REINDEX, VACUUM FULL, CLUSTER, REFRESH MATERIALIZED VIEW,
-- ALTER DOMAIN ... VALIDATE CONSTRAINT), size-aware lock hazards, EG208 as
-- advice, no-op settings, key swaps, index rebuilds of a type change,
-- DETACH PARTITION and enum ADD VALUE: in elt.check_ddl() and live.
CREATE EXTENSION elt_governance;
SET elt.large_table_rows = 100;
SET timezone = 'UTC';   -- timestamp -> timestamptz then keeps the data

CREATE SCHEMA r;
CREATE DOMAIN r.pos AS int;
CREATE TYPE r.mood AS ENUM ('a', 'b');
CREATE TABLE r.big (id int PRIMARY KEY, v int, ts timestamp, p r.pos, note varchar(20));
INSERT INTO r.big SELECT g, g, '2026-01-01'::timestamp + g * interval '1 hour', g, 'n' || g
FROM generate_series(1, 1000) g;
CREATE INDEX big_ts_idx ON r.big (ts);
CREATE INDEX big_note_idx ON r.big (note);
CREATE TABLE r.small (id int PRIMARY KEY, p r.pos, ts timestamp, m r.mood);
CREATE INDEX small_ts_idx ON r.small (ts);
CREATE MATERIALIZED VIEW r.big_mv AS SELECT id, v FROM r.big;
CREATE UNIQUE INDEX big_mv_id ON r.big_mv (id);
CREATE MATERIALIZED VIEW r.small_mv AS SELECT 1 AS one;
CREATE TABLE r.ev (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE r.ev_2026 PARTITION OF r.ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE r.k (id int NOT NULL, v int, CONSTRAINT k_pkey PRIMARY KEY (id));
CREATE UNIQUE INDEX k_id_twin ON r.k (id);
CREATE UNIQUE INDEX k_id_v ON r.k (id, v);
CREATE TABLE r.u (code text NOT NULL, CONSTRAINT u_code_key UNIQUE (code));
CREATE UNIQUE INDEX u_code_twin ON r.u (code);
ALTER DOMAIN r.pos ADD CONSTRAINT pos_ck CHECK (VALUE > 0) NOT VALID;
ANALYZE r.big, r.small, r.big_mv, r.small_mv, r.ev_2026, r.k, r.u;
SELECT elt.govern('r');

-- rebuild commands: a finding on a relation over elt.large_table_rows, and
-- EG208 (advice) on every relation whose traffic queues behind the lock
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
REINDEX TABLE r.big;
REINDEX INDEX r.big_ts_idx;
REINDEX (CONCURRENTLY false) TABLE r.big;
REINDEX TABLE CONCURRENTLY r.big;
REINDEX (CONCURRENTLY) INDEX r.big_ts_idx;
REINDEX TABLE r.small;
VACUUM FULL r.big;
VACUUM (FULL) r.small;
VACUUM r.big;
VACUUM (FULL false, ANALYZE) r.big;
ANALYZE r.big;
CLUSTER r.big USING big_pkey;
CLUSTER r.small USING small_pkey;
REFRESH MATERIALIZED VIEW r.big_mv;
REFRESH MATERIALIZED VIEW CONCURRENTLY r.big_mv;
REFRESH MATERIALIZED VIEW r.small_mv;
REFRESH MATERIALIZED VIEW r.big_mv WITH NO DATA;
ALTER DOMAIN r.pos VALIDATE CONSTRAINT pos_ck;
REINDEX TABLE r.nope;
$$) ORDER BY statement_no, rule, object;

-- REINDEX SCHEMA goes through every table and materialized view in it
SELECT statement_no, rule, class, object FROM elt.check_ddl('REINDEX SCHEMA r')
ORDER BY rule, object;

-- the reasons
SELECT rule, reason FROM elt.check_ddl($$
REINDEX TABLE r.big;
REFRESH MATERIALIZED VIEW r.big_mv;
ALTER DOMAIN r.pos VALIDATE CONSTRAINT pos_ck;
$$) ORDER BY statement_no, rule;

-- a lock_timeout takes the advice away, and nothing else
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = '2s';
REINDEX TABLE r.big;
VACUUM FULL r.small;
ALTER TABLE r.small ADD COLUMN x int;
$$) ORDER BY statement_no, rule, object;

-- size: a rewrite, scan or build of a small table is no hazard; the lock is
-- advice whatever the size.  No-op settings are no rewrite.
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
ALTER TABLE r.small ALTER COLUMN id TYPE bigint;
ALTER TABLE r.big ALTER COLUMN v TYPE bigint;
ALTER TABLE r.small ADD CONSTRAINT small_id_pos CHECK (id > 0);
ALTER TABLE r.big ADD CONSTRAINT big_v_pos CHECK (v > 0);
ALTER TABLE r.big SET LOGGED;
ALTER TABLE r.big SET TABLESPACE pg_default;
ALTER TABLE r.big SET ACCESS METHOD heap;
ALTER TABLE r.big SET UNLOGGED;
ALTER TABLE r.big SET (fillfactor = 90);
ALTER TABLE r.small ADD CONSTRAINT small_big_fk FOREIGN KEY (id) REFERENCES r.big NOT VALID;
CREATE INDEX ON r.small (p);
CREATE INDEX CONCURRENTLY ON r.big (v);
DROP INDEX r.small_ts_idx;
DROP INDEX CONCURRENTLY r.big_note_idx;
CREATE TABLE r.fresh (id int);
ALTER TABLE r.fresh ADD COLUMN x int;
$$) ORDER BY statement_no, rule, object;

-- which lock, and that traffic queues behind it
SELECT rule, reason FROM elt.check_ddl($$
ALTER TABLE r.small ADD CONSTRAINT small_big_fk FOREIGN KEY (id) REFERENCES r.big NOT VALID;
CREATE INDEX ON r.small (p);
$$) ORDER BY statement_no, object;

-- a type change that keeps the rows but rebuilds the column's indexes: EG214
-- (timestamp_ops is not timestamptz_ops); varchar -> text keeps text_ops
SELECT statement_no, rule, class, object, reason FROM elt.check_ddl($$
ALTER TABLE r.big ALTER COLUMN ts TYPE timestamptz;
ALTER TABLE r.small ALTER COLUMN ts TYPE timestamptz;
ALTER TABLE r.big ALTER COLUMN note TYPE text;
ALTER TABLE r.big ALTER COLUMN note TYPE varchar(40);
$$) ORDER BY statement_no, rule, object;

-- key swaps: a primary key or unique constraint replaced by one USING an
-- index with exactly the same key is no EG122; with another key it is.
-- Each case is a script of its own (in one script, the second would find
-- k_pkey dropped by the first: EG001)
SELECT s.n, f.rule, f.class, f.object
FROM (VALUES
  (1, 'ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD PRIMARY KEY USING INDEX k_id_twin'),
  (2, 'ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD CONSTRAINT k_pkey PRIMARY KEY USING INDEX k_id_twin'),
  (3, 'ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD PRIMARY KEY USING INDEX k_id_v'),
  (4, 'ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD CONSTRAINT k_uq UNIQUE USING INDEX k_id_twin'),
  (5, 'ALTER TABLE r.u DROP CONSTRAINT u_code_key, ADD CONSTRAINT u_code_key UNIQUE USING INDEX u_code_twin')
) s(n, sql), LATERAL elt.check_ddl(s.sql) f
ORDER BY s.n, f.rule, f.object;

-- ... with the index built earlier in the script (compared from its statement)
SELECT s.n, f.statement_no, f.rule, f.class, f.object
FROM (VALUES
  (1, 'CREATE UNIQUE INDEX CONCURRENTLY k_id_new ON r.k (id);
       ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD PRIMARY KEY USING INDEX k_id_new'),
  (2, 'CREATE UNIQUE INDEX CONCURRENTLY k_v_new ON r.k (v);
       ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD PRIMARY KEY USING INDEX k_v_new')
) s(n, sql), LATERAL elt.check_ddl(s.sql) f
ORDER BY s.n, f.statement_no, f.rule, f.object;

-- not the same key: a deferrable one (ON CONFLICT refuses it, a new foreign
-- key cannot reference it)
SELECT s.n, f.rule, f.class, f.object
FROM (VALUES
  (1, 'ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD CONSTRAINT k_pkey PRIMARY KEY USING INDEX k_id_twin DEFERRABLE'),
  (2, 'ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD CONSTRAINT k_pkey PRIMARY KEY USING INDEX k_id_twin DEFERRABLE INITIALLY DEFERRED')
) s(n, sql), LATERAL elt.check_ddl(s.sql) f
ORDER BY s.n, f.rule, f.object;

-- a unique index whose key calls a function that is not built in is never
-- compared (comparing would fold it: run it, with the rights of whoever
-- checks the script): it stays EG113, and the function does not run
CREATE FUNCTION public.elt_probe(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE NOTICE 'elt_probe ran';
    RETURN i;
END
$$;
SELECT rule, class FROM elt.check_ddl($$
CREATE UNIQUE INDEX ON r.k (id, (public.elt_probe(1)));
CREATE UNIQUE INDEX ON r.k (id) WHERE public.elt_probe(1) = 1;
$$) WHERE rule = 'EG113' ORDER BY statement_no;

-- DETACH PARTITION: ACCESS EXCLUSIVE on the parent (advice); CONCURRENTLY
-- lets traffic go on
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
ALTER TABLE r.ev DETACH PARTITION r.ev_2026;
ALTER TABLE r.ev DETACH PARTITION r.ev_2026 CONCURRENTLY;
$$) ORDER BY statement_no, rule, object;

-- enum ADD VALUE: EG115 wherever the value sorts; IF NOT EXISTS on a value
-- that is there does nothing
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
ALTER TYPE r.mood ADD VALUE 'c';
ALTER TYPE r.mood ADD VALUE 'c0' AFTER 'a';
ALTER TYPE r.mood ADD VALUE 'c1' BEFORE 'a';
ALTER TYPE r.mood ADD VALUE IF NOT EXISTS 'a' BEFORE 'b';
$$) ORDER BY statement_no, rule, object;

-- ------------------------------------------------------------------
-- live, under enforce
-- ------------------------------------------------------------------
-- try(stmt): run a statement, report what was recorded, roll it back
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
    r text;
BEGIN
    BEGIN
        SELECT coalesce(max(change_id), 0) INTO last FROM elt.schema_changes;
        EXECUTE stmt;
        SELECT string_agg(coalesce(rule, 'safe') || ':' || class || ':' || object || ':' || decision,
                          ' ' ORDER BY change_id)
          INTO r FROM elt.schema_changes WHERE change_id > last;
        RAISE EXCEPTION USING ERRCODE = 'P0099', MESSAGE = coalesce(r, 'nothing recorded');
    EXCEPTION
        WHEN SQLSTATE 'P0099' THEN RETURN 'ran ' || SQLERRM;
        WHEN SQLSTATE '42ZEG' THEN RETURN 'blocked ' || split_part(SQLERRM, ':', 1);
        WHEN OTHERS THEN RETURN 'failed: ' || SQLERRM;
    END;
END
$$;

SELECT stmt, pg_temp.try(stmt) AS enforce FROM (VALUES
 ('REINDEX TABLE r.big'),
 ('REINDEX (CONCURRENTLY false) INDEX r.big_ts_idx'),
 ('REINDEX TABLE r.small'),
 ('CLUSTER r.big USING big_pkey'),
 ('CLUSTER r.small USING small_pkey'),
 ('REFRESH MATERIALIZED VIEW r.big_mv'),
 ('REFRESH MATERIALIZED VIEW r.small_mv'),
 ('ALTER DOMAIN r.pos VALIDATE CONSTRAINT pos_ck'),
 ('ALTER TABLE r.big ALTER COLUMN ts TYPE timestamptz'),
 ('ALTER TABLE r.small ALTER COLUMN ts TYPE timestamptz'),
 ('ALTER TABLE r.big ALTER COLUMN v TYPE bigint'),
 ('ALTER TABLE r.small ALTER COLUMN id TYPE bigint'),
 ('ALTER TABLE r.big SET LOGGED'),
 ('ALTER TABLE r.big SET TABLESPACE pg_default'),
 ('ALTER TABLE r.big SET UNLOGGED'),
 ('ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD PRIMARY KEY USING INDEX k_id_twin'),
 ('ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD PRIMARY KEY USING INDEX k_id_v'),
 ('ALTER TABLE r.ev DETACH PARTITION r.ev_2026'),
 ('ALTER TYPE r.mood ADD VALUE ''c0'' AFTER ''a''')) v(stmt);

-- a deferrable key is not the same key; a key over a user function is not
-- compared (nor run); REINDEX of a partitioned index reaches its governed
-- partitions
CREATE SCHEMA r_free;
CREATE TABLE r_free.pp (id int, v int) PARTITION BY RANGE (id);
CREATE TABLE r.pp_1 PARTITION OF r_free.pp FOR VALUES FROM (0) TO (100000);
CREATE INDEX pp_v_idx ON r_free.pp (v);   -- empty yet: no build hazard
INSERT INTO r_free.pp SELECT g, g FROM generate_series(1, 1000) g;
ANALYZE r.pp_1;
SELECT stmt, pg_temp.try(stmt) AS enforce FROM (VALUES
 ('ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD CONSTRAINT k_pkey PRIMARY KEY USING INDEX k_id_twin DEFERRABLE INITIALLY DEFERRED'),
 ('CREATE UNIQUE INDEX ON r.k (id, (public.elt_probe(1)))'),
 ('REINDEX INDEX r_free.pp_v_idx'),
 ('REINDEX TABLE r_free.pp')) v(stmt);

-- the same with a lock_timeout: the advice goes, a safe change is recorded
SET lock_timeout = '2s';
SELECT stmt, pg_temp.try(stmt) AS enforce FROM (VALUES
 ('REINDEX TABLE r.small'),
 ('ALTER TABLE r.big SET LOGGED')) v(stmt);
RESET lock_timeout;

-- a blocked statement lists its advice in the detail
REINDEX TABLE r.big;
-- under warn: a warning for the hazard, none for advice alone
SELECT elt.govern('r', 'warn');
BEGIN;
REINDEX TABLE r.big;
REINDEX TABLE r.small;
ROLLBACK;
-- under off: advice recorded as such
SELECT elt.govern('r', 'off');
SELECT pg_temp.try('REINDEX TABLE r.small') AS off;
SELECT elt.govern('r', 'enforce');

-- VACUUM FULL cannot run in a function: at top level (the ProcessUtility
-- hook judges it, REINDEX and CLUSTER: they fire no event trigger)
VACUUM FULL r.big;
VACUUM r.big;
REINDEX TABLE CONCURRENTLY r.big;
REFRESH MATERIALIZED VIEW CONCURRENTLY r.big_mv;
VACUUM FULL r.small;
SELECT command_tag, rule, class, object, decision FROM elt.schema_changes
ORDER BY change_id DESC LIMIT 1;
SELECT count(*) AS vacuum_records FROM elt.schema_changes WHERE command_tag = 'VACUUM';

-- a swap of the primary key for a twin index, for real
CREATE UNIQUE INDEX CONCURRENTLY k_id_new ON r.k (id);
ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD CONSTRAINT k_pkey PRIMARY KEY USING INDEX k_id_new;
SELECT conname, conindid::regclass FROM pg_constraint WHERE conrelid = 'r.k'::regclass AND contype = 'p';
SELECT rule, class, object, decision FROM elt.schema_changes ORDER BY change_id DESC LIMIT 1;

-- the no-op settings copy nothing, as their findings say: the file stays
CREATE TEMP TABLE fn AS SELECT pg_relation_filenode('r.big') AS before;
ALTER TABLE r.big SET LOGGED;
ALTER TABLE r.big SET TABLESPACE pg_default;
ALTER TABLE r.big SET ACCESS METHOD heap;
SELECT pg_relation_filenode('r.big') = before AS same_file FROM fn;

-- what schema_changes and elt.my_findings hold for advice
SELECT class, decision, count(*) FROM elt.schema_changes GROUP BY 1, 2 ORDER BY 1, 2;

SELECT rule, class, decision FROM elt.my_findings WHERE class = 'advice' ORDER BY change_id DESC LIMIT 1;

-- a column type change that keeps a partitioned table's rows rebuilds its
-- partitioned index (EG214, sized over the partitions); ALTER DOMAIN scans
-- the columns of a domain over the domain too (EG213)
CREATE TABLE r.pts (id int, ts timestamp) PARTITION BY RANGE (id);
CREATE TABLE r.pts_1 PARTITION OF r.pts FOR VALUES FROM (0) TO (100000);
CREATE INDEX pts_ts_idx ON r.pts (ts);
INSERT INTO r.pts SELECT g, '2026-01-01'::timestamp + g * interval '1 hour' FROM generate_series(1, 1000) g;
ANALYZE r.pts_1;
CREATE DOMAIN r.base_d AS int;
CREATE DOMAIN r.sub_d AS r.base_d;
CREATE TABLE r.dd (id int, p r.sub_d);
INSERT INTO r.dd SELECT g, g FROM generate_series(1, 1000) g;
ANALYZE r.dd;
ALTER DOMAIN r.base_d ADD CONSTRAINT base_ck CHECK (VALUE > 0) NOT VALID;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
ALTER TABLE r.pts ALTER COLUMN ts TYPE timestamptz;
ALTER DOMAIN r.base_d VALIDATE CONSTRAINT base_ck;
$$) ORDER BY statement_no, rule, object;
SELECT stmt, pg_temp.try(stmt) AS enforce FROM (VALUES
 ('ALTER TABLE r.pts ALTER COLUMN ts TYPE timestamptz'),
 ('ALTER DOMAIN r.base_d VALIDATE CONSTRAINT base_ck')) v(stmt);

-- EG208 for the lock of a trigger, policy or rule statement (SHARE ROW
-- EXCLUSIVE for CREATE TRIGGER, else ACCESS EXCLUSIVE) and of LOCK TABLE
-- (check_ddl only: LOCK fires no event trigger); not with NOWAIT, not
-- under SHARE
SELECT statement_no, rule, class, object, reason FROM elt.check_ddl($$
CREATE TRIGGER trg BEFORE UPDATE ON r.small FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
CREATE POLICY pol ON r.small USING (true);
ALTER POLICY pol ON r.small USING (id > 0);
CREATE RULE rl AS ON DELETE TO r.small DO INSTEAD NOTHING;
ALTER TRIGGER trg ON r.small RENAME TO trg2;
DROP TRIGGER IF EXISTS trg2 ON r.small;
DROP POLICY pol ON r.small;
DROP RULE rl ON r.small;
LOCK TABLE r.small IN SHARE MODE;
LOCK TABLE r.small IN ACCESS EXCLUSIVE MODE NOWAIT;
LOCK TABLE r.small IN ROW EXCLUSIVE MODE;
CREATE TABLE r.newt (id int);
CREATE TRIGGER trg BEFORE UPDATE ON r.newt FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
$$) ORDER BY statement_no, rule, object;
SELECT stmt, pg_temp.try(stmt) AS enforce FROM (VALUES
 ('CREATE TRIGGER trg BEFORE UPDATE ON r.small FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()'),
 ('CREATE POLICY pol ON r.small USING (true)'),
 ('CREATE RULE rl AS ON DELETE TO r.small DO INSTEAD NOTHING')) v(stmt);
SET lock_timeout = '5s';
SELECT stmt, pg_temp.try(stmt) AS with_timeout FROM (VALUES
 ('CREATE TRIGGER trg BEFORE UPDATE ON r.small FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()')) v(stmt);
RESET lock_timeout;

-- sizes from the pages a table has now (attacker #5): statistics taken
-- when it was empty hide nothing; a leaf never analyzed counts; a table with
-- no page has no row (not the planner's ten-page guess)
CREATE TABLE r.late (id int, v int) WITH (autovacuum_enabled = off);
ANALYZE r.late;
INSERT INTO r.late SELECT g, g FROM generate_series(1, 1000) g;
CREATE TABLE r.evl (id int, v int) PARTITION BY RANGE (id);
CREATE TABLE r.evl_1 PARTITION OF r.evl FOR VALUES FROM (0) TO (100000)
  WITH (autovacuum_enabled = off);
INSERT INTO r.evl SELECT g, g FROM generate_series(1, 1000) g;
CREATE TABLE r.none (id int, v int) WITH (autovacuum_enabled = off);
SELECT relname, reltuples FROM pg_class WHERE oid IN ('r.late'::regclass, 'r.evl_1'::regclass, 'r.none'::regclass)
ORDER BY 1;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
ALTER TABLE r.late ALTER COLUMN v TYPE bigint;
ALTER TABLE r.evl ALTER COLUMN v TYPE bigint;
ALTER TABLE r.none ALTER COLUMN v TYPE bigint;
$$) ORDER BY statement_no, rule, object;
-- REINDEX SCHEMA passes over a table with no index (nothing to rebuild);
-- VACUUM FULL does not
SELECT statement_no, rule, object FROM elt.check_ddl('REINDEX SCHEMA r; VACUUM FULL r.late')
WHERE object LIKE 'r.late%' ORDER BY 1, 2, 3;
SELECT stmt, pg_temp.try(stmt) AS enforce FROM (VALUES
 ('ALTER TABLE r.late ALTER COLUMN v TYPE bigint'),
 ('ALTER TABLE r.evl ALTER COLUMN v TYPE bigint'),
 ('ALTER TABLE r.none ALTER COLUMN v TYPE bigint')) v(stmt);

-- a long script of statements that reach every table: each statement is
-- classified in its own memory, freed once its rows are out (attacker #7);
-- what the script remembers (a unique index it built) lives on
SELECT count(*) AS findings, count(DISTINCT statement_no) AS statements
FROM elt.check_ddl(repeat('REINDEX SCHEMA r; ', 200));
SELECT statement_no, rule, object FROM elt.check_ddl(
  'CREATE UNIQUE INDEX CONCURRENTLY k_id_new2 ON r.k (id); ' || repeat('REINDEX TABLE r.small; ', 50) ||
  'ALTER TABLE r.k DROP CONSTRAINT k_pkey, ADD CONSTRAINT k_pkey PRIMARY KEY USING INDEX k_id_new2')
WHERE rule <> 'EG208' ORDER BY 1, 2, 3;

-- maintenance by a database owner or a schema owner who owns no table
-- (attacker #3): PostgreSQL lets them rebuild the tables, so the contract
-- judges it; a role with no such right is left to PostgreSQL's own check
CREATE ROLE elt_rb_dbo;
CREATE ROLE elt_rb_nspo;
CREATE ROLE elt_rb_nobody;
GRANT USAGE ON SCHEMA r TO elt_rb_dbo, elt_rb_nobody;
CREATE SCHEMA r_nsp AUTHORIZATION elt_rb_nspo;
GRANT USAGE ON SCHEMA r_nsp TO elt_rb_dbo;
CREATE TABLE r_nsp.big (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
INSERT INTO r_nsp.big SELECT g, g FROM generate_series(1, 1000) g;
ANALYZE r_nsp.big;
SELECT elt.govern('r_nsp');
SELECT statement_no, rule, class, object FROM elt.check_ddl('REINDEX SCHEMA r_nsp')
ORDER BY rule, object;
SELECT pg_catalog.pg_get_userbyid(datdba) AS dbowner FROM pg_database
WHERE datname = current_database() \gset
SELECT format('ALTER DATABASE %I OWNER TO elt_rb_dbo', current_database()) \gexec
SET ROLE elt_rb_dbo;
VACUUM FULL r.big;
VACUUM (FULL) r_nsp.big;
\set VERBOSITY terse
SELECT format('REINDEX DATABASE %I', current_database()) \gexec
\set VERBOSITY default
RESET ROLE;
SET ROLE elt_rb_nspo;
REINDEX SCHEMA r_nsp;
RESET ROLE;
SET ROLE elt_rb_nobody;
SET client_min_messages = error;
VACUUM FULL r.big;      -- PostgreSQL skips it (a warning): nothing to judge
RESET client_min_messages;
RESET ROLE;
SELECT format('ALTER DATABASE %I OWNER TO %I', current_database(), :'dbowner') \gexec
SELECT count(*) AS vacuum_full_records FROM elt.schema_changes
WHERE command_tag = 'VACUUM' AND rule = 'EG209';
REVOKE USAGE ON SCHEMA r FROM elt_rb_dbo, elt_rb_nobody;
REVOKE USAGE ON SCHEMA r_nsp FROM elt_rb_dbo;
DROP ROLE elt_rb_dbo;
DROP ROLE elt_rb_nobody;

DROP EXTENSION elt_governance;
DROP SCHEMA r_nsp CASCADE;
DROP ROLE elt_rb_nspo;
DROP SCHEMA r_free CASCADE;
DROP SCHEMA r CASCADE;
DROP FUNCTION public.elt_probe(int);
