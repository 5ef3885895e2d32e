-- elt.check_ddl() and the live trigger: transaction blocks, IF NOT EXISTS,
-- what a script validated, the columns it added, and missing objects.
CREATE EXTENSION elt_governance;
SET elt.large_table_rows = 100;
SET client_min_messages = warning;
CREATE SCHEMA t;
CREATE TABLE t.big (id int PRIMARY KEY, v int, w int, n int);
INSERT INTO t.big SELECT g, g, g, g FROM generate_series(1, 1000) g;
CREATE INDEX big_v_idx ON t.big (v);
ALTER TABLE t.big ADD CONSTRAINT v_pos CHECK (v > 0) NOT VALID;
CREATE TABLE t.small (id int, v int);
ALTER TABLE t.small ADD CONSTRAINT small_v CHECK (v > 0) NOT VALID;
CREATE VIEW t.vw AS SELECT id, v FROM t.big;
CREATE TABLE public.plain (id int);
ANALYZE t.big;
ANALYZE t.small;
SELECT elt.govern('t');
RESET client_min_messages;

-- 1. IF NOT EXISTS on something that exists leaves it live: later
-- statements are judged as on the live object
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = '2s';
CREATE TABLE IF NOT EXISTS t.big (id int);
ALTER TABLE t.big DROP COLUMN w;
ALTER TABLE t.big ENABLE ROW LEVEL SECURITY;
CREATE TABLE IF NOT EXISTS t.fresh (id int);
ALTER TABLE t.fresh DROP COLUMN id;
CREATE OR REPLACE VIEW t.vw AS SELECT id, v FROM t.big;
DROP VIEW t.vw;
CREATE INDEX IF NOT EXISTS big_v_idx ON t.big (v);
DROP INDEX t.big_v_idx;
ALTER TABLE t.big ADD COLUMN IF NOT EXISTS v int;
ALTER TABLE t.big ALTER COLUMN v TYPE smallint;
ALTER TABLE t.big RENAME TO big2;
CREATE SCHEMA IF NOT EXISTS t;
DROP SCHEMA t CASCADE;
$$) ORDER BY 1, 2;

-- the issue's example: CREATE TABLE IF NOT EXISTS, then DROP TABLE
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
CREATE TABLE IF NOT EXISTS t.big (id int);
DROP TABLE t.big;
$$);

-- 2. transaction blocks.  The ACCESS EXCLUSIVE lock of ADD CONSTRAINT is
-- held through the validation when both are in one block (EG210), not
-- after COMMIT; CREATE INDEX CONCURRENTLY in a block fails (EG002)
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = '2s';
BEGIN;
ALTER TABLE t.big ADD CONSTRAINT w_pos CHECK (w > 0) NOT VALID;
ALTER TABLE t.big VALIDATE CONSTRAINT w_pos;
COMMIT;
ALTER TABLE t.big VALIDATE CONSTRAINT w_pos;
BEGIN;
CREATE INDEX CONCURRENTLY ON t.big (v, id);
DROP INDEX CONCURRENTLY t.big_v_idx;
VACUUM t.big;
ANALYZE t.big;
ALTER SYSTEM SET work_mem = '8MB';
CREATE DATABASE nope;
REINDEX (CONCURRENTLY) TABLE t.big;
ALTER TABLE t.small VALIDATE CONSTRAINT small_v;
CREATE INDEX CONCURRENTLY ON public.plain (id);
END;
CREATE INDEX CONCURRENTLY ON t.big (v, id);
VACUUM t.big;
START TRANSACTION;
LOCK TABLE t.big;
CREATE INDEX ON t.big (n);
CREATE INDEX ON t.small (v);
ROLLBACK;
CREATE INDEX ON t.big (w);
$$) ORDER BY 1, 2;

-- one ALTER TABLE: VALIDATE beside a subcommand that takes ACCESS
-- EXCLUSIVE holds it through the scan (EG210 on a large table only)
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = '2s';
ALTER TABLE t.big VALIDATE CONSTRAINT v_pos, ADD COLUMN x int;
ALTER TABLE t.small VALIDATE CONSTRAINT small_v, ADD COLUMN x int;
ALTER TABLE t.big VALIDATE CONSTRAINT v_pos, ALTER COLUMN v SET STATISTICS 100;
ALTER TABLE t.big ADD COLUMN sid int, ADD CONSTRAINT sid_fk FOREIGN KEY (sid) REFERENCES t.big (id);
ALTER TABLE t.big ADD CONSTRAINT sid_fk FOREIGN KEY (n) REFERENCES t.big (id) NOT VALID, ADD COLUMN y int;
BEGIN;
ALTER TABLE t.big ALTER COLUMN n SET DEFAULT 0, ENABLE TRIGGER ALL;
ALTER TABLE t.big ADD CONSTRAINT n_fk FOREIGN KEY (n) REFERENCES t.big (id);
COMMIT;
$$) ORDER BY 1, 2;

-- RENAME, SET SCHEMA, TRUNCATE and DROP INDEX hold ACCESS EXCLUSIVE too;
-- a table truncated is empty until loaded again; LOCK in a weaker mode does not
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = '2s';
BEGIN;
ALTER TABLE t.big RENAME COLUMN n TO m;
ALTER TABLE t.big VALIDATE CONSTRAINT v_pos;
COMMIT;
BEGIN;
DROP INDEX t.big_v_idx;
CREATE INDEX big_v_idx ON t.big (v);
ROLLBACK;
BEGIN;
TRUNCATE t.small, t.big;
ALTER TABLE t.big VALIDATE CONSTRAINT v_pos;
INSERT INTO t.big SELECT g, g FROM generate_series(1, 1000) g;
ALTER TABLE t.big VALIDATE CONSTRAINT v_pos;
COMMIT;
BEGIN;
LOCK TABLE t.big IN ACCESS SHARE MODE;
ALTER TABLE t.big VALIDATE CONSTRAINT v_pos;
ALTER TABLE t.big SET SCHEMA public;
ALTER TABLE public.big VALIDATE CONSTRAINT v_pos;
COMMIT;
$$) ORDER BY 1, 2;

-- single_transaction: the whole script is one block (psql -1); a COMMIT in
-- it ends the block and what follows runs on its own
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = '2s';
ALTER TABLE t.big ADD CONSTRAINT w_pos CHECK (w > 0) NOT VALID;
ALTER TABLE t.big VALIDATE CONSTRAINT w_pos;
CREATE INDEX CONCURRENTLY ON t.big (v, id);
COMMIT;
CREATE INDEX CONCURRENTLY ON t.big (v, id);
$$, single_transaction => true) ORDER BY 1, 2;
SELECT statement_no, rule, class, object FROM elt.check_ddl(
    'CREATE INDEX CONCURRENTLY ON t.big (v, id)', single_transaction => false);

-- SET LOCAL lock_timeout: only inside a block, only until its end; a
-- session SET in a rolled back block is undone
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET LOCAL lock_timeout = '2s';
ALTER TABLE t.big ALTER COLUMN n TYPE bigint;
BEGIN;
SET LOCAL lock_timeout = '2s';
ALTER TABLE t.big ALTER COLUMN n TYPE bigint;
COMMIT;
ALTER TABLE t.big ALTER COLUMN n TYPE bigint;
BEGIN;
SET lock_timeout = '2s';
ROLLBACK;
ALTER TABLE t.big ALTER COLUMN n TYPE bigint;
BEGIN;
SET lock_timeout = '2s';
COMMIT;
ALTER TABLE t.big ALTER COLUMN n TYPE bigint;
$$) ORDER BY 1, 2;

-- ROLLBACK undoes what the block created, renamed or dropped
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
BEGIN;
CREATE TABLE t.tmp (id int);
ALTER TABLE t.big RENAME TO big_old;
ROLLBACK;
ALTER TABLE t.tmp ADD COLUMN x int;
ALTER TABLE t.big_old ADD COLUMN x int;
ALTER TABLE t.big ADD COLUMN x int;
SAVEPOINT s1;
RELEASE SAVEPOINT s1;
$$) ORDER BY 1, 2;

-- 3. a validated CHECK (col IS NOT NULL) the script added proves SET NOT NULL
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = '2s';
ALTER TABLE t.big ADD CONSTRAINT w_nn CHECK (w IS NOT NULL) NOT VALID;
ALTER TABLE t.big VALIDATE CONSTRAINT w_nn;
ALTER TABLE t.big ALTER COLUMN w SET NOT NULL;
ALTER TABLE t.big ADD CONSTRAINT n_nn CHECK (n IS NOT NULL) NOT VALID;
ALTER TABLE t.big ALTER COLUMN n SET NOT NULL;
ALTER TABLE t.big RENAME CONSTRAINT n_nn TO n_not_null;
ALTER TABLE t.big VALIDATE CONSTRAINT n_not_null;
ALTER TABLE t.big ALTER COLUMN n SET NOT NULL;
ALTER TABLE t.big DROP CONSTRAINT n_not_null;
ALTER TABLE t.big ALTER COLUMN n SET NOT NULL;
$$) ORDER BY 1, 2;

-- 4. columns the script adds: what still applies to them in the
-- transaction that added them (contracts_txn2: after it, everything)
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = '2s';
ALTER TABLE t.big ADD COLUMN c int DEFAULT 10 NOT NULL;
ALTER TABLE t.big ALTER COLUMN c DROP DEFAULT;
ALTER TABLE t.big ADD COLUMN d int;
ALTER TABLE t.big ALTER COLUMN d SET NOT NULL;
ALTER TABLE t.big ADD COLUMN e int;
ALTER TABLE t.big ALTER COLUMN e TYPE bigint;
ALTER TABLE t.big ALTER COLUMN e TYPE int;
ALTER TABLE t.big ALTER COLUMN e TYPE int;
ALTER TABLE t.big RENAME COLUMN e TO e2;
ALTER TABLE t.big DROP COLUMN e2;
ALTER TABLE t.big ADD COLUMN f int DEFAULT 1;
ALTER TABLE t.big ALTER COLUMN f SET NOT NULL;
ALTER TABLE t.big ALTER COLUMN f DROP DEFAULT;
ALTER TABLE t.small ADD COLUMN g int;
ALTER TABLE t.small ALTER COLUMN g TYPE bigint;
ALTER TABLE t.big ADD COLUMN h int NOT NULL DEFAULT 0;
ALTER TABLE t.big ALTER COLUMN h DROP NOT NULL;
ALTER TABLE t.big ALTER COLUMN h DROP DEFAULT;
$$, single_transaction => true) ORDER BY 1, 2;

-- 5. missing objects: functions in defaults, constraints and indexes
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = '2s';
ALTER TABLE t.big ADD COLUMN f int DEFAULT t.no_such_fn();
ALTER TABLE t.big ALTER COLUMN v SET DEFAULT no_such_fn(1);
CREATE FUNCTION t.mkf() RETURNS int LANGUAGE sql AS 'SELECT 1';
ALTER TABLE t.big ALTER COLUMN v SET DEFAULT t.mkf();
ALTER TABLE t.big ALTER COLUMN v SET DEFAULT abs(-1);
ALTER TABLE t.big DROP CONSTRAINT nope;
ALTER TABLE t.big DROP CONSTRAINT IF EXISTS nope;
ALTER TABLE t.big VALIDATE CONSTRAINT nope;
ALTER TABLE t.big RENAME CONSTRAINT nope TO nope2;
ALTER TABLE t.big RENAME CONSTRAINT v_pos TO v_positive;
ALTER TABLE t.big VALIDATE CONSTRAINT v_pos;
ALTER TABLE t.big DROP CONSTRAINT v_positive;
ALTER TABLE t.big DROP CONSTRAINT v_positive;
ALTER TABLE t.big ADD CHECK (w > 0) NOT VALID;
ALTER TABLE t.big VALIDATE CONSTRAINT big_w_check;
ALTER INDEX t.big_v_idx RENAME TO big_v_idx2;
DROP INDEX t.big_v_idx;
ALTER INDEX t.big_v_idx SET (fillfactor = 80);
ALTER INDEX IF EXISTS t.big_v_idx SET (fillfactor = 80);
ALTER INDEX t.big_v_idx2 RENAME TO big_v_idx3;
CREATE INDEX big_n_idx ON t.big (n);
DROP INDEX t.big_n_idx;
$$) ORDER BY 1, 2;

-- the live trigger under enforce, the statements run in one transaction:
-- the same verdicts.  try() reports the first statement blocked, or what
-- was recorded, and rolls everything back.
-- The first `approved` statements run in an approved migration.
SELECT elt.approver_add('cto');
CREATE FUNCTION pg_temp.try(stmts text[], approved int DEFAULT 0) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
    r text;
    s text;
    i int := 0;
BEGIN
    BEGIN
        SET LOCAL client_min_messages = warning;
        PERFORM elt.govern('t', 'enforce');
        RESET client_min_messages;
        SELECT coalesce(max(change_id), 0) INTO last FROM elt.schema_changes;
        FOREACH s IN ARRAY stmts LOOP
            i := i + 1;
            IF i = 1 AND approved > 0 THEN
                PERFORM elt.migration_begin('prepare', 'the statements before', 'cto');
            END IF;
            EXECUTE s;
            IF i = approved THEN
                PERFORM elt.migration_end();
            END IF;
        END LOOP;
        SELECT string_agg(coalesce(rule, 'safe') || ':' || decision, ' ' ORDER BY change_id)
          INTO r FROM elt.schema_changes WHERE change_id > last;
        RAISE EXCEPTION USING ERRCODE = 'P0099', MESSAGE = coalesce(r, 'nothing recorded');
    EXCEPTION
        WHEN SQLSTATE 'P0099' THEN RETURN 'ran ' || SQLERRM;
        WHEN SQLSTATE '42ZEG' THEN RETURN 'statement ' || i || ' blocked ' || split_part(SQLERRM, ':', 1);
        WHEN OTHERS THEN RETURN 'statement ' || i || ' failed: ' || SQLERRM;
    END;
END
$$;
SET lock_timeout = '2s';
-- EG210: the lock of an earlier statement of the transaction, or of
-- another subcommand; not after the lock is let go, not on a small table
SELECT pg_temp.try(ARRAY[
    'ALTER TABLE t.big ADD CONSTRAINT w_pos CHECK (w > 0) NOT VALID',
    'ALTER TABLE t.big VALIDATE CONSTRAINT w_pos']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big VALIDATE CONSTRAINT v_pos']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big VALIDATE CONSTRAINT v_pos, ADD COLUMN x int']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.small VALIDATE CONSTRAINT small_v, ADD COLUMN x int']);
SELECT pg_temp.try(ARRAY['LOCK TABLE t.big', 'CREATE INDEX ON t.big (n)']);
SELECT pg_temp.try(ARRAY['LOCK TABLE t.big IN SHARE MODE', 'CREATE INDEX ON t.big (n)']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big RENAME COLUMN n TO m',
                         'ALTER TABLE t.big VALIDATE CONSTRAINT v_pos'], approved => 1);
SELECT pg_temp.try(ARRAY['DROP INDEX t.big_v_idx',
                         'CREATE INDEX big_v_idx ON t.big (v)'], approved => 1);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big ALTER COLUMN n SET DEFAULT 0, ENABLE TRIGGER ALL',
                         'ALTER TABLE t.big ADD CONSTRAINT n_fk FOREIGN KEY (n) REFERENCES t.big (id)']);
-- a table the transaction truncated is empty: nothing to scan
SELECT pg_temp.try(ARRAY['TRUNCATE t.big CASCADE',
                         'ALTER TABLE t.big VALIDATE CONSTRAINT v_pos'], approved => 1);
SELECT pg_temp.try(ARRAY['TRUNCATE t.big CASCADE',
                         'INSERT INTO t.big SELECT g, g FROM generate_series(1, 1000) g',
                         'ALTER TABLE t.big VALIDATE CONSTRAINT v_pos'], approved => 1);
-- 3. the documented safe path to NOT NULL: in one transaction the
-- validation runs under the lock of ADD CONSTRAINT (EG210); each statement
-- on its own, all are allowed
SELECT pg_temp.try(ARRAY[
    'ALTER TABLE t.big ADD CONSTRAINT w_nn CHECK (w IS NOT NULL) NOT VALID',
    'ALTER TABLE t.big VALIDATE CONSTRAINT w_nn',
    'ALTER TABLE t.big ALTER COLUMN w SET NOT NULL']);
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
ALTER TABLE t.big ADD CONSTRAINT w_nn CHECK (w IS NOT NULL) NOT VALID;
ALTER TABLE t.big VALIDATE CONSTRAINT w_nn;
ALTER TABLE t.big ALTER COLUMN w SET NOT NULL;
$$, single_transaction => true);
SELECT policy FROM elt.governed_targets WHERE schema_name = 't';
SELECT coalesce(max(change_id), 0) AS before FROM elt.schema_changes \gset
ALTER TABLE t.big ADD CONSTRAINT w_nn CHECK (w IS NOT NULL) NOT VALID;
ALTER TABLE t.big VALIDATE CONSTRAINT w_nn;
ALTER TABLE t.big ALTER COLUMN w SET NOT NULL;
SELECT coalesce(rule, 'safe') AS rule, decision FROM elt.schema_changes
WHERE change_id > :before ORDER BY change_id;
SELECT attnotnull FROM pg_attribute WHERE attrelid = 't.big'::regclass AND attname = 'w';
SELECT pg_temp.try(ARRAY[
    'ALTER TABLE t.big ADD CONSTRAINT n_nn CHECK (n IS NOT NULL) NOT VALID',
    'ALTER TABLE t.big ALTER COLUMN n SET NOT NULL']);
-- 4. columns added by the same transaction
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big ADD COLUMN c int DEFAULT 10 NOT NULL',
                         'ALTER TABLE t.big ALTER COLUMN c DROP DEFAULT']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big ADD COLUMN d int',
                         'ALTER TABLE t.big ALTER COLUMN d SET NOT NULL']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big ADD COLUMN e int',
                         'ALTER TABLE t.big ALTER COLUMN e TYPE bigint']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big ADD COLUMN e int NOT NULL DEFAULT 0',
                         'ALTER TABLE t.big ALTER COLUMN e DROP NOT NULL',
                         'ALTER TABLE t.big RENAME COLUMN e TO e2',
                         'ALTER TABLE t.big DROP COLUMN e2']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big ADD COLUMN f int DEFAULT 1',
                         'ALTER TABLE t.big ALTER COLUMN f SET NOT NULL']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big ADD COLUMN f int DEFAULT 1',
                         'ALTER TABLE t.big ALTER COLUMN f DROP DEFAULT']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big ADD COLUMN f int DEFAULT 1',
                         'ALTER TABLE t.big ALTER COLUMN f SET NOT NULL',
                         'ALTER TABLE t.big ALTER COLUMN f DROP DEFAULT']);
SELECT pg_temp.try(ARRAY['ALTER TABLE t.big ADD COLUMN IF NOT EXISTS v int',
                         'ALTER TABLE t.big ALTER COLUMN v TYPE smallint']);
RESET lock_timeout;

-- EG002 and EG001 are reported whatever is governed
SET client_min_messages = warning;
SELECT elt.ungovern('t') IS NOT NULL AS ungoverned;
RESET client_min_messages;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
BEGIN;
CREATE INDEX CONCURRENTLY ON t.big (n);
ALTER TABLE t.big DROP CONSTRAINT nope;
ALTER TABLE t.big DROP COLUMN n;
COMMIT;
$$);

DROP EXTENSION elt_governance;
DROP SCHEMA t CASCADE;
DROP TABLE public.plain;
