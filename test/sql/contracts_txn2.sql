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
CREATE INDEX t_b_idx ON app.t (b);
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

-- 2. SAVEPOINT / ROLLBACK TO / RELEASE in check_ddl: ROLLBACK TO undoes
-- what followed the savepoint (a CHECK validated, a lock taken, an index
-- built) and keeps the savepoint; RELEASE keeps it all; COMMIT AND CHAIN
-- opens the next block at once
ALTER TABLE app.t ADD CONSTRAINT nn2 CHECK (b > 0) NOT VALID;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
BEGIN;
SAVEPOINT a;
ALTER TABLE app.t ADD CONSTRAINT nn CHECK (x IS NOT NULL) NOT VALID;
ALTER TABLE app.t VALIDATE CONSTRAINT nn;
ROLLBACK TO a;
SET LOCAL lock_timeout = 1000;
ALTER TABLE app.t ALTER COLUMN x SET NOT NULL;
COMMIT;
$$) ORDER BY 1, 2;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
BEGIN;
SAVEPOINT a;
ALTER TABLE app.t ADD CONSTRAINT nn CHECK (x IS NOT NULL) NOT VALID;
ALTER TABLE app.t VALIDATE CONSTRAINT nn;
RELEASE a;
SET LOCAL lock_timeout = 1000;
ALTER TABLE app.t ALTER COLUMN x SET NOT NULL;
COMMIT;
$$) ORDER BY 1, 2;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
BEGIN;
SAVEPOINT a;
LOCK app.t IN ACCESS EXCLUSIVE MODE;
ROLLBACK TO a;
ALTER TABLE app.t VALIDATE CONSTRAINT nn2;
SAVEPOINT a;
LOCK app.t IN ACCESS EXCLUSIVE MODE;
ROLLBACK TO a;
ROLLBACK TO a;
ALTER TABLE app.t VALIDATE CONSTRAINT nn2;
SAVEPOINT b;
LOCK app.t IN ACCESS EXCLUSIVE MODE;
RELEASE b;
ALTER TABLE app.t VALIDATE CONSTRAINT nn2;
COMMIT AND CHAIN;
ALTER TABLE app.t VALIDATE CONSTRAINT nn2;
CREATE INDEX CONCURRENTLY ON app.t (b);
COMMIT;
$$) ORDER BY 1, 2;
-- (ROLLBACK undoes an index the block built)
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
BEGIN;
CREATE UNIQUE INDEX t_b_key ON app.t (b);
ROLLBACK;
ALTER TABLE app.t ADD CONSTRAINT t_b_key UNIQUE USING INDEX t_b_key;
$$) ORDER BY 1, 2;
-- live: the rolled-back validation proves nothing
\set VERBOSITY terse
BEGIN;
SAVEPOINT a;
ALTER TABLE app.t ADD CONSTRAINT nn CHECK (x IS NOT NULL) NOT VALID;
ALTER TABLE app.t VALIDATE CONSTRAINT nn;
ROLLBACK TO a;
SET LOCAL lock_timeout = 1000;
ALTER TABLE app.t ALTER COLUMN x SET NOT NULL;
ROLLBACK;

-- 3. the live list of columns the transaction added: a rolled-back
-- savepoint (or a statement that failed in one) takes its columns with it;
-- a dropped column, or a name another column is renamed into, is no longer
-- one it added (wn is governed 'warn': the warnings show what is judged)
SET client_min_messages = warning;
CREATE SCHEMA wn;
CREATE TABLE wn.t (id int, b int, w int);
CREATE VIEW wn.v AS SELECT id, b, w FROM wn.t;
SELECT elt.govern('wn', policy => 'warn');
SET lock_timeout = 1000;
BEGIN;
SAVEPOINT s;
ALTER TABLE wn.t ADD COLUMN c int;
ROLLBACK TO s;
ALTER TABLE wn.t RENAME COLUMN w TO c;
ALTER TABLE wn.t DROP COLUMN c CASCADE;
ROLLBACK;
BEGIN;
SAVEPOINT s;
ALTER TABLE wn.t ADD COLUMN c int, ADD COLUMN c2 no_such_type;
ROLLBACK TO s;
ALTER TABLE wn.t RENAME COLUMN w TO c;
ALTER TABLE wn.t DROP COLUMN c CASCADE;
ROLLBACK;
BEGIN;
ALTER TABLE wn.t ADD COLUMN c int;
ALTER TABLE wn.t DROP COLUMN c;
ALTER TABLE wn.t RENAME COLUMN w TO c;
ALTER TABLE wn.t DROP COLUMN c CASCADE;
ROLLBACK;
BEGIN;
ALTER TABLE wn.t ADD COLUMN c int;
ALTER TABLE wn.t RENAME COLUMN c TO d;
ALTER TABLE wn.t RENAME COLUMN w TO c;
ALTER TABLE wn.t DROP COLUMN c CASCADE;
ALTER TABLE wn.t DROP COLUMN d;
ROLLBACK;
-- (released: still added, nothing to judge)
BEGIN;
SAVEPOINT s;
ALTER TABLE wn.t ADD COLUMN c int;
RELEASE s;
SAVEPOINT s2;
ALTER TABLE wn.t DROP COLUMN c;
ROLLBACK;
-- the same in check_ddl
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
BEGIN;
SAVEPOINT s;
ALTER TABLE wn.t ADD COLUMN c int;
ROLLBACK TO s;
ALTER TABLE wn.t RENAME COLUMN w TO c;
ALTER TABLE wn.t DROP COLUMN c CASCADE;
ROLLBACK;
BEGIN;
SAVEPOINT s;
ALTER TABLE wn.t ADD COLUMN c int;
RELEASE s;
ALTER TABLE wn.t DROP COLUMN c;
ROLLBACK;
$$) ORDER BY 1, 2;
RESET lock_timeout;
RESET client_min_messages;
\set VERBOSITY default

-- 4. a NOT NULL proof follows the script's renames and drops: of the
-- column (a CHECK the script validated, or a live one) and of the CHECK
SET client_min_messages = warning;
CREATE TABLE app.p (id int, x int, y int, CONSTRAINT xnn CHECK (x IS NOT NULL),
                    CONSTRAINT ynn CHECK (y IS NOT NULL));
INSERT INTO app.p SELECT g, g, g FROM generate_series(1, 1000) g;
ANALYZE app.p;
RESET client_min_messages;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
ALTER TABLE app.p ADD COLUMN w int;
ALTER TABLE app.p ADD CONSTRAINT wnn CHECK (w IS NOT NULL) NOT VALID;
ALTER TABLE app.p VALIDATE CONSTRAINT wnn;
BEGIN;
ALTER TABLE app.p RENAME COLUMN w TO w2;
ALTER TABLE app.p ALTER COLUMN w2 SET NOT NULL;
ALTER TABLE app.p DROP COLUMN w2;
ALTER TABLE app.p ADD COLUMN w2 int;
ALTER TABLE app.p ALTER COLUMN w2 SET NOT NULL;
COMMIT;
$$) ORDER BY 1, 2;
-- a live CHECK dropped by the script proves nothing; one whose column the
-- script renamed still proves it under the new name
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
ALTER TABLE app.p DROP CONSTRAINT xnn;
ALTER TABLE app.p ALTER COLUMN x SET NOT NULL;
ALTER TABLE app.p RENAME COLUMN y TO y2;
ALTER TABLE app.p ALTER COLUMN y2 SET NOT NULL;
$$) ORDER BY 1, 2;
-- live, the same verdicts
SET lock_timeout = 1000;
BEGIN;
ALTER TABLE app.p DROP CONSTRAINT xnn;
ALTER TABLE app.p ALTER COLUMN x SET NOT NULL;
ROLLBACK;
SET client_min_messages = warning;
CREATE TABLE wn.p (id int, y int, CONSTRAINT ynn CHECK (y IS NOT NULL));
INSERT INTO wn.p SELECT g, g FROM generate_series(1, 1000) g;
ANALYZE wn.p;
SELECT elt.govern('wn', policy => 'warn');
BEGIN;
ALTER TABLE wn.p RENAME COLUMN y TO y2;
ALTER TABLE wn.p ALTER COLUMN y2 SET NOT NULL;
ROLLBACK;
RESET client_min_messages;
RESET lock_timeout;

-- 5. IF NOT EXISTS on a column or index the script itself added does
-- nothing: the column keeps its state (NOT NULL with a default), the
-- index is not built again
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
BEGIN;
ALTER TABLE app.t ADD COLUMN c int NOT NULL DEFAULT 0;
ALTER TABLE app.t ADD COLUMN IF NOT EXISTS c int;
ALTER TABLE app.t ALTER COLUMN c DROP DEFAULT;
COMMIT;
CREATE INDEX i1 ON app.t (b);
CREATE INDEX IF NOT EXISTS i1 ON app.t (b);
$$) ORDER BY 1, 2;

-- 6. the locks a statement takes come from one place (EltAddLock): in a
-- block, CLUSTER's ACCESS EXCLUSIVE lock makes a later validation EG210;
-- a SHARE lock held (CREATE INDEX, LOCK TABLE IN SHARE MODE) spares a
-- later CREATE INDEX its EG208, not a later ALTER TABLE (stronger)
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
BEGIN;
CLUSTER app.t USING t_b_idx;
ALTER TABLE app.t VALIDATE CONSTRAINT nn2;
ROLLBACK;
BEGIN;
CREATE INDEX ON app.t (x);
CREATE INDEX ON app.t (w);
LOCK app.p IN SHARE MODE;
CREATE INDEX ON app.p (x);
ALTER TABLE app.p ADD COLUMN z int;
COMMIT;
$$) ORDER BY 1, 2;
-- live (wn is 'warn'): the same
SET client_min_messages = warning;
CREATE INDEX p_id_idx ON wn.p (id);
ALTER TABLE wn.p ADD CONSTRAINT pid CHECK (id > 0) NOT VALID;
BEGIN;
CLUSTER wn.p USING p_id_idx;
ALTER TABLE wn.p VALIDATE CONSTRAINT pid;
ROLLBACK;
RESET client_min_messages;

-- 7. a column the script added is new only in the transaction that added
-- it: after COMMIT (or, outside a block, after its statement) it is judged
-- as a live column, as the live trigger judges it in a later transaction
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
ALTER TABLE app.t ADD COLUMN e int;
ALTER TABLE app.t ALTER COLUMN e TYPE smallint;
BEGIN;
ALTER TABLE app.t ADD COLUMN f int NOT NULL DEFAULT 0;
ALTER TABLE app.t RENAME COLUMN f TO f2;
COMMIT;
ALTER TABLE app.t ALTER COLUMN f2 DROP NOT NULL;
ALTER TABLE app.t DROP COLUMN f2;
ALTER TABLE app.t DROP COLUMN e;
$$) ORDER BY 1, 2;
SET lock_timeout = 1000;
ALTER TABLE app.t ADD COLUMN e int;
ALTER TABLE app.t DROP COLUMN e;
RESET lock_timeout;

-- 8. PRIMARY KEY USING INDEX an index the script built: its columns are
-- checked for NOT NULL as the script left them; USING INDEX an index that
-- is not there (never built, rolled back, renamed away) is EG001
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
CREATE UNIQUE INDEX CONCURRENTLY p_x_key ON app.p (x);
ALTER TABLE app.p ADD CONSTRAINT p_pk PRIMARY KEY USING INDEX p_x_key;
$$) ORDER BY 1, 2;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
CREATE UNIQUE INDEX CONCURRENTLY p_id_key ON app.p (id);
ALTER TABLE app.p ALTER COLUMN id SET NOT NULL;
ALTER TABLE app.p ADD CONSTRAINT p_pk PRIMARY KEY USING INDEX p_id_key;
ALTER TABLE app.p ADD CONSTRAINT p_u UNIQUE USING INDEX nope;
ALTER INDEX app.t_b_idx RENAME TO t_b_idx2;
ALTER TABLE app.t ADD CONSTRAINT t_u UNIQUE USING INDEX t_b_idx;
BEGIN;
CREATE UNIQUE INDEX t_w_key ON app.t (w);
ROLLBACK;
ALTER TABLE app.t ADD CONSTRAINT t_u UNIQUE USING INDEX t_w_key;
$$) ORDER BY 1, 2;

-- 9. a table whose persistence the script changed is not judged by the
-- catalog's setting (SET LOGGED after SET UNLOGGED copies the table again);
-- after CREATE EXTENSION, a default may call functions it brought
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
ALTER TABLE app.p SET LOGGED;
ALTER TABLE app.p SET UNLOGGED;
ALTER TABLE app.p SET LOGGED;
$$) ORDER BY 1, 2;
SET client_min_messages = warning;
SET lock_timeout = 1000;
ALTER TABLE wn.p SET UNLOGGED;
ALTER TABLE wn.p SET LOGGED;
RESET lock_timeout;
RESET client_min_messages;
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
ALTER TABLE app.p ADD COLUMN h1 int DEFAULT ext_func_nowhere();
CREATE EXTENSION IF NOT EXISTS some_extension;
ALTER TABLE app.p ADD COLUMN h2 int DEFAULT ext_func_nowhere();
$$) ORDER BY 1, 2;

-- (ROLLBACK AND CHAIN: the lock is gone, the next block is open)
SELECT statement_no, rule, class, object FROM elt.check_ddl($$
SET lock_timeout = 1000;
BEGIN;
LOCK app.t IN ACCESS EXCLUSIVE MODE;
ROLLBACK AND CHAIN;
ALTER TABLE app.t VALIDATE CONSTRAINT nn2;
CREATE INDEX CONCURRENTLY ON app.t (w);
COMMIT;
$$) ORDER BY 1, 2;

DROP EXTENSION elt_governance;
SET client_min_messages = warning;
DROP SCHEMA app, scratch, wn CASCADE;
RESET client_min_messages;
