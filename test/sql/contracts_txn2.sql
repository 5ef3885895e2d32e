-- elt.check_ddl() and the live trigger, continued: savepoints, the
-- columns a transaction added (inheritance, rollbacks, renames, drops),
-- NOT NULL proofs through renames, locks remembered by a script.
CREATE EXTENSION elt_governance;
SET elt.large_table_rows = 100;
SET client_min_messages = warning;
CREATE SCHEMA app;
CREATE SCHEMA scratch;
CREATE TABLE app.t (id int PRIMARY KEY, x int, b int, w int);
INSERT INTO app.t SELECT g, g, g, g FROM generate_series(1, 1000) g;
CREATE VIEW app.tv AS SELECT id, x, b FROM app.t;
CREATE TABLE app.child (id int, x bigint);
CREATE VIEW app.cv AS SELECT id, x FROM app.child;
CREATE TABLE scratch.base (id int);
ALTER TABLE app.child INHERIT scratch.base;
ANALYZE app.t;
SELECT elt.govern('app', policy => 'enforce');
RESET client_min_messages;

-- 1. (attacker #2) ADD COLUMN on an ungoverned parent merges into a
-- governed inheritor's column: it is not new, so renaming or narrowing it
-- is judged (check_ddl and live)
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
BEGIN;
ALTER TABLE scratch.base ADD COLUMN x bigint;
ALTER TABLE scratch.base RENAME COLUMN x TO y;
COMMIT;
$$) ORDER BY 1, 2;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
BEGIN;
ALTER TABLE scratch.base ADD COLUMN x bigint;
ALTER TABLE scratch.base ALTER COLUMN x TYPE smallint;
COMMIT;
$$) ORDER BY 1, 2;
SET client_min_messages = warning;
BEGIN;
ALTER TABLE scratch.base ADD COLUMN x bigint;
ALTER TABLE scratch.base RENAME COLUMN x TO y;
ROLLBACK;
BEGIN;
ALTER TABLE scratch.base ADD COLUMN x bigint;
ALTER TABLE scratch.base ALTER COLUMN x TYPE smallint;
ROLLBACK;
RESET client_min_messages;
SELECT attname FROM pg_attribute WHERE attrelid = 'app.child'::regclass AND attnum > 0 ORDER BY attnum;
