-- Undoing a run (issue 23): elt.run_revert() puts the target back as it was
-- just before the run (appended rows removed, updated and deleted rows
-- restored), refuses when later runs changed or read what it wrote unless
-- cascade => true, and elt.run_dependents() lists the runs that read it.
-- Every revert is checked against a copy of the table taken before the run
-- (the oracle): the two must hold the same rows.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = notice;
CREATE ROLE rv_etl;
CREATE ROLE rv_member IN ROLE rv_etl;
CREATE ROLE rv_nobody;
CREATE SCHEMA rv;
GRANT USAGE ON SCHEMA rv TO rv_etl, rv_nobody;
CREATE TABLE rv.src (id int PRIMARY KEY, grp int NOT NULL, v numeric NOT NULL,
                     at timestamptz NOT NULL, tag text);
INSERT INTO rv.src SELECT g, g % 3, g * 1.5, timestamptz '2026-01-01 10:00+00' + g * interval '1 hour',
                          CASE WHEN g % 4 = 0 THEN NULL ELSE 'tag "' || g || '", x' END
FROM generate_series(1, 12) g;
-- targets: every kind of column a revert must put back exactly
CREATE TABLE rv.copy (id int PRIMARY KEY, grp int, v numeric, at timestamptz, tag text,
                      doubled numeric GENERATED ALWAYS AS (v * 2) STORED);
CREATE TABLE rv.totals (grp int PRIMARY KEY, total numeric, n bigint);
CREATE TABLE rv.log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, grp int, total numeric);
GRANT SELECT ON rv.src TO rv_etl;
GRANT ALL ON rv.copy, rv.totals, rv.log TO rv_etl;
GRANT USAGE ON SEQUENCE rv.log_id_seq TO rv_etl;
-- run ids in messages do not depend on the suites before
SELECT setval('elt.run_id_seq', 1000000) > 0 AS ids_pinned;
SET ROLE rv_etl;
SELECT elt.transform_create('rv_copy', 'rv.copy',
  'SELECT id, grp, v, at, tag FROM rv.src WHERE id <= elt.param(''upto'')::int', 'merge') > 0 AS created;
SELECT elt.transform_create('rv_totals', 'rv.totals',
  'SELECT grp, sum(v) AS total, count(*) AS n FROM rv.copy GROUP BY grp', 'replace') > 0 AS created;
SELECT elt.transform_create('rv_log', 'rv.log',
  'SELECT grp, total FROM rv.totals', 'append') > 0 AS created;
RESET ROLE;

-- compare a table with its oracle copy: rows only in one of them
CREATE FUNCTION rv.differs(a regclass, b regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((TABLE %s EXCEPT ALL TABLE %s) UNION ALL (TABLE %s EXCEPT ALL TABLE %s)) d',
                 a, b, b, a) INTO n;
  RETURN n;
END $$;

-- 1. merge: inserted rows removed, updated rows restored
SET ROLE rv_etl;
SELECT elt.transform_run('rv_copy', '{"upto": 6}') AS r1 \gset
RESET ROLE;
CREATE TABLE rv.copy_before_r2 AS SELECT id, grp, v, at, tag FROM rv.copy;
UPDATE rv.src SET v = v + 100, tag = 'changed' WHERE id IN (2, 3);
SET ROLE rv_etl;
SELECT elt.transform_run('rv_copy', '{"upto": 9}') AS r2 \gset
RESET ROLE;
SELECT count(*) AS rows, count(*) FILTER (WHERE tag = 'changed') AS changed FROM rv.copy;
SELECT state, images FROM elt.run_undo WHERE run_id = :r2;
SET ROLE rv_etl;
SELECT run_id = :r2 AS r2, transform, target, rows_removed, rows_restored, cascade_of
FROM elt.run_revert(:r2, 'bad source load');
RESET ROLE;
CREATE TABLE rv.copy_now AS SELECT id, grp, v, at, tag FROM rv.copy;
SELECT rv.differs('rv.copy_now', 'rv.copy_before_r2') AS differences;
SELECT doubled = v * 2 AS generated_recomputed FROM rv.copy WHERE id = 2;
DROP TABLE rv.copy_now;
-- shown in the history and the runs view, audited, its lineage no longer traced
SELECT reverted_at IS NOT NULL AS reverted FROM elt.transform_run_history WHERE run_id = :r2;
SELECT reverted_at IS NOT NULL AS reverted FROM elt.runs WHERE run_id = :r2;
SELECT action, object, details->>'rows_removed' AS removed, details->>'rows_restored' AS restored, reason
FROM elt.audit_trail WHERE action = 'run_revert' ORDER BY id DESC LIMIT 1;
SELECT count(*) AS lineage_chunks FROM elt.lineage_chunks WHERE run_id = :r2;
SELECT count(*) AS traced_to_r2 FROM elt.trace('rv.copy', '8') WHERE run_id = :r2;
-- a reverted run stays reverted
SELECT * FROM elt.run_revert(:r2, 'again');

-- 2. replace and append: r3 (totals), r4 (copy), r5 (totals, reads copy), r6 (log, reads totals)
UPDATE rv.src SET v = v + 1000 WHERE id = 1;
CREATE TABLE rv.totals_before AS TABLE rv.totals;
SET ROLE rv_etl;
SELECT elt.transform_run('rv_totals') AS r3 \gset
RESET ROLE;
CREATE TABLE rv.totals_before_r4 AS TABLE rv.totals;
SET ROLE rv_etl;
SELECT elt.transform_run('rv_copy', '{"upto": 12}') AS r4 \gset
SELECT elt.transform_run('rv_totals') AS r5 \gset
SELECT elt.transform_run('rv_log') AS r6 \gset
RESET ROLE;
-- what read r4's rows: r5 by its row lineage, r6 through r5
SELECT run_id = :r5 AS is_r5, run_id = :r6 AS is_r6, depth, transform, target, via
FROM elt.run_dependents(:r4) ORDER BY depth;
-- r3 wrote totals; r5 replaced all of them (changed its rows)
SELECT * FROM elt.run_revert(:r3, 'x');
SELECT * FROM elt.run_revert(:r4, 'x');
-- nothing changed by the refusals
SELECT count(*) AS copy_rows FROM rv.copy;
SELECT count(*) AS log_rows FROM rv.log;
-- revert the last one alone: append rows removed
SELECT run_id = :r6 AS r6, rows_removed, rows_restored FROM elt.run_revert(:r6, 'x');
SELECT count(*) AS log_rows FROM rv.log;
-- replace: every row it deleted is back
SELECT run_id = :r5 AS r5, rows_removed, rows_restored FROM elt.run_revert(:r5, 'x');
SELECT rv.differs('rv.totals', 'rv.totals_before_r4') AS differences;
-- cascade: r3 is reverted after nothing is left in its way; r4 with it only if asked
SELECT run_id = :r3 AS r3, rows_removed, rows_restored, cascade_of FROM elt.run_revert(:r3, 'x');
SELECT rv.differs('rv.totals', 'rv.totals_before') AS differences;

-- 3. cascade through the lineage graph, newest first
SET ROLE rv_etl;
SELECT elt.transform_run('rv_totals') AS r7 \gset
SELECT elt.transform_run('rv_log') AS r8 \gset
RESET ROLE;
SELECT * FROM elt.run_revert(:r4, 'x');
SELECT CASE run_id WHEN :r4 THEN 'r4' WHEN :r7 THEN 'r7' WHEN :r8 THEN 'r8' END AS run,
       transform, rows_removed, rows_restored,
       CASE cascade_of WHEN :r4 THEN 'r4' WHEN :r7 THEN 'r7' END AS cascade_of
FROM elt.run_revert(:r4, 'bad transform version', cascade => true);
CREATE TABLE rv.copy_now AS SELECT id, grp, v, at, tag FROM rv.copy;
SELECT rv.differs('rv.copy_now', 'rv.copy_before_r2') AS differences;
DROP TABLE rv.copy_now;
SELECT rv.differs('rv.totals', 'rv.totals_before') AS differences;
SELECT count(*) AS log_rows FROM rv.log;
-- rows a revert put back are the earlier run's again: r1 can be reverted now
SELECT run_id = :r1 AS r1, rows_removed, rows_restored FROM elt.run_revert(:r1, 'x');
SELECT count(*) AS copy_rows FROM rv.copy;

-- 4. refusals: each changes nothing
SET ROLE rv_etl;
SELECT elt.transform_run('rv_copy', '{"upto": 4}') AS r9 \gset
RESET ROLE;
SELECT elt.table_checksum('rv.copy') AS sum_before \gset
-- no reason
SELECT * FROM elt.run_revert(:r9);
SELECT * FROM elt.run_revert(:r9, '');
SELECT * FROM elt.run_revert(NULL, 'x');
SELECT * FROM elt.run_revert(-1, 'x');
-- a role that owns nothing; a member of the owner may
SET ROLE rv_nobody;
SELECT * FROM elt.run_revert(:r9, 'x');
SELECT * FROM elt.run_dependents(:r9);
RESET ROLE;
-- a transaction snapshot
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM elt.run_revert(:r9, 'x');
ROLLBACK;
-- rows changed outside transform runs
BEGIN;
UPDATE rv.copy SET tag = 'by hand' WHERE id = 1;
SELECT * FROM elt.run_revert(:r9, 'x');
ROLLBACK;
-- the target changed shape
BEGIN;
ALTER TABLE rv.copy ADD COLUMN extra int;
SELECT * FROM elt.run_revert(:r9, 'x');
ROLLBACK;
SELECT elt.table_checksum('rv.copy') = :'sum_before' AS unchanged;
-- a failed run
SET ROLE rv_etl;
\set VERBOSITY terse
SELECT elt.transform_run('rv_copy', '{"upto": "x"}');
\set VERBOSITY default
RESET ROLE;
SELECT max(run_id) AS failed FROM elt.transform_runs WHERE status = 'failed' \gset
SELECT * FROM elt.run_revert(:failed, 'x');
-- a member of the owner reverts it
SET ROLE rv_member;
SELECT run_id = :r9 AS r9, rows_removed FROM elt.run_revert(:r9, 'x');
RESET ROLE;

-- 5. retention: over elt.undo_max_rows, and purged
SET elt.undo_max_rows = 2;
SET ROLE rv_etl;
SELECT elt.transform_run('rv_copy', '{"upto": 4}') AS r10 \gset
SELECT elt.transform_run('rv_copy', '{"upto": 5}') AS r11 \gset
RESET ROLE;
RESET elt.undo_max_rows;
SELECT state, images FROM elt.run_undo WHERE run_id = :r11;
SELECT * FROM elt.run_revert(:r11, 'x');
-- r10 cannot be reverted alone: r11 may have changed its rows
SELECT * FROM elt.run_revert(:r10, 'x');
SET ROLE rv_nobody;
SELECT elt.run_undo_purge(now());
RESET ROLE;
SELECT state FROM elt.run_undo WHERE run_id = :r10;
SET ROLE rv_etl;
SELECT elt.run_undo_purge(now()) >= 2 AS purged;
RESET ROLE;
\set VERBOSITY terse
SELECT * FROM elt.run_revert(:r10, 'x');
\set VERBOSITY default
SELECT count(*) AS images_left FROM elt.run_undo_images WHERE run_id IN (:r10, :r11);
-- with elt.undo_retention = 0 runs keep nothing
SET elt.undo_retention = 0;
SET ROLE rv_etl;
SELECT elt.transform_run('rv_copy', '{"upto": 4}') AS r12 \gset
RESET ROLE;
RESET elt.undo_retention;
SELECT * FROM elt.run_revert(:r12, 'x');

-- 6. a pipeline run: its transform runs, newest first.  A superuser
-- reverting rv_etl's runs writes the target as rv_etl (its trigger says so)
CREATE TABLE rv.who (u name);
GRANT INSERT ON rv.who TO rv_etl;
CREATE FUNCTION rv.note() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO rv.who VALUES (current_user); RETURN NULL; END$$;
CREATE TRIGGER note AFTER DELETE ON rv.log FOR EACH STATEMENT EXECUTE FUNCTION rv.note();
SELECT elt.transform_run('rv_totals') AS r13 \gset
CREATE TABLE rv.totals_before_p AS TABLE rv.totals;
SELECT elt.run_begin('rv_pipeline', '{}', 'none') AS p \gset
SELECT * FROM elt.run_revert(:p, 'x');
SELECT elt.transform_run('rv_totals') > 0 AS ran;
SELECT elt.transform_run('rv_log') > 0 AS ran;
SELECT elt.run_end() = :p AS ended;
SELECT transform, rows_removed, cascade_of FROM elt.run_revert(:p, 'pipeline rerun needed');
SELECT rv.differs('rv.totals', 'rv.totals_before_p') AS differences;
SELECT reverted_at IS NOT NULL AS reverted FROM elt.runs WHERE run_id = :p;
SELECT DISTINCT u AS deleted_as FROM rv.who;

-- 7. cases found by attacking it (each against its oracle)
-- a table without a primary key, identical rows, replaced and reverted twice
CREATE TABLE rv.bag (v text);
INSERT INTO rv.bag VALUES ('a'), ('a');
CREATE TABLE rv.bag_before AS TABLE rv.bag;
CREATE TABLE rv.one (id int PRIMARY KEY, v text);
INSERT INTO rv.one VALUES (1, 'new');
SELECT elt.transform_create('rv_bag', 'rv.bag', 'SELECT v FROM rv.one', 'replace', '{"lineage": "table"}') > 0 AS created;
SELECT elt.transform_run('rv_bag') AS b1 \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:b1, 'x');
SELECT elt.transform_run('rv_bag') AS b2 \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:b2, 'x');
SELECT rv.differs('rv.bag', 'rv.bag_before') AS differences;
-- a cascade, then a later run of the same key: it reverts
CREATE TABLE rv.k (id int PRIMARY KEY, v text);
INSERT INTO rv.k VALUES (1, 'outside');
CREATE TABLE rv.k_before AS TABLE rv.k;
SELECT elt.transform_create('rv_k', 'rv.k', 'SELECT id, v FROM rv.one', 'merge', '{"lineage": "table"}') > 0 AS created;
SELECT elt.transform_run('rv_k') AS ka \gset
UPDATE rv.one SET v = 'B';
SELECT elt.transform_run('rv_k') AS kb \gset
SELECT count(*) AS reverted FROM elt.run_revert(:ka, 'x', cascade => true);
UPDATE rv.one SET v = 'C';
SELECT elt.transform_run('rv_k') AS kc \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:kc, 'x');
SELECT rv.differs('rv.k', 'rv.k_before') AS differences;
-- a row a merge run only updated is put back in place: a foreign key ON
-- DELETE CASCADE that references it keeps its rows; deleting rows the run
-- added would cascade, and is refused
CREATE TABLE rv.parent (id int PRIMARY KEY, v text);
INSERT INTO rv.parent VALUES (1, 'orig');
CREATE TABLE rv.child (id int PRIMARY KEY, parent int REFERENCES rv.parent ON DELETE CASCADE);
INSERT INTO rv.child VALUES (10, 1);
CREATE TABLE rv.parent_before AS TABLE rv.parent;
SELECT elt.transform_create('rv_parent', 'rv.parent', 'SELECT id, v FROM rv.one', 'merge') > 0 AS created;
SELECT elt.transform_run('rv_parent') AS pa \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:pa, 'x');
SELECT rv.differs('rv.parent', 'rv.parent_before') AS differences, (SELECT count(*) FROM rv.child) AS children;
INSERT INTO rv.one VALUES (2, 'added');
SELECT elt.transform_run('rv_parent') AS pb \gset
INSERT INTO rv.child VALUES (20, 2);
SELECT * FROM elt.run_revert(:pb, 'x');
SELECT count(*) AS children FROM rv.child;
DELETE FROM rv.child WHERE id = 20;
SELECT rows_removed, rows_restored FROM elt.run_revert(:pb, 'x');
SELECT rv.differs('rv.parent', 'rv.parent_before') AS differences;
DELETE FROM rv.one WHERE id = 2;
-- a BEFORE trigger that cancels the run's delete (replace) or update (merge):
-- the row it kept is left as it is
CREATE TABLE rv.guarded (v text, keep bool);
INSERT INTO rv.guarded VALUES ('protected', true), ('normal', false);
CREATE FUNCTION rv.protect() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN IF OLD.keep THEN RETURN NULL; END IF; RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END; END$$;
CREATE TRIGGER protect BEFORE DELETE ON rv.guarded FOR EACH ROW EXECUTE FUNCTION rv.protect();
CREATE TABLE rv.guarded_before AS TABLE rv.guarded;
SELECT elt.transform_create('rv_guarded', 'rv.guarded', 'SELECT v, false AS keep FROM rv.one', 'replace',
                            '{"lineage": "table"}') > 0 AS created;
SELECT elt.transform_run('rv_guarded') AS g1 \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:g1, 'x');
SELECT rv.differs('rv.guarded', 'rv.guarded_before') AS differences;
CREATE TABLE rv.guarded_k (id int PRIMARY KEY, v text, keep bool);
INSERT INTO rv.guarded_k VALUES (1, 'protected', true);
CREATE TRIGGER protect BEFORE UPDATE ON rv.guarded_k FOR EACH ROW EXECUTE FUNCTION rv.protect();
CREATE TABLE rv.guarded_k_before AS TABLE rv.guarded_k;
SELECT elt.transform_create('rv_guarded_k', 'rv.guarded_k', 'SELECT id, v, false AS keep FROM rv.one', 'merge')
  > 0 AS created;
SELECT elt.transform_run('rv_guarded_k') AS g2 \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:g2, 'x');
SELECT rv.differs('rv.guarded_k', 'rv.guarded_k_before') AS differences;
-- a change made by hand in the transaction of a revert is not the revert's
SELECT elt.transform_run('rv_k') AS k1 \gset
UPDATE rv.one SET v = 'D';
SELECT elt.transform_run('rv_k') AS k2 \gset
BEGIN;
SELECT rows_removed, rows_restored FROM elt.run_revert(:k2, 'x');
UPDATE rv.k SET v = 'fixed by hand' WHERE id = 1;
COMMIT;
SELECT * FROM elt.run_revert(:k1, 'x');
-- a column of a user type, the run under a search_path that shows the type
CREATE TYPE rv.mood AS ENUM ('sad', 'ok');
CREATE TABLE rv.moods (id int PRIMARY KEY, m rv.mood);
SELECT elt.transform_create('rv_moods', 'rv.moods', 'SELECT id, ''ok''::rv.mood AS m FROM rv.one', 'merge')
  > 0 AS created;
SET search_path = rv, public;
SELECT elt.transform_run('rv_moods') AS m1 \gset
RESET search_path;
SELECT rows_removed, rows_restored FROM elt.run_revert(:m1, 'x');
-- past elt.undo_retention, a run is not revertible even if nothing retired it
SELECT elt.transform_run('rv_moods') AS m2 \gset
SELECT pg_sleep(1.1);
SET elt.undo_retention = 1;
\set VERBOSITY terse
SELECT * FROM elt.run_revert(:m2, 'x');
\set VERBOSITY default
RESET elt.undo_retention;
-- a role that ran it and was since revoked from the owner may no longer revert
CREATE ROLE rv_former IN ROLE rv_etl;
SET ROLE rv_former;
SELECT elt.transform_run('rv_copy', '{"upto": 2}') AS f1 \gset
RESET ROLE;
REVOKE rv_etl FROM rv_former;
SET ROLE rv_former;
SELECT * FROM elt.run_revert(:f1, 'x');
RESET ROLE;
DROP ROLE rv_former;

-- 8. cases found by the second attack
-- a BEFORE trigger that skips the revert's own update or insert: refused, nothing changed
CREATE TABLE rv.s8 (id int PRIMARY KEY, v text, ver int);
INSERT INTO rv.s8 VALUES (1, 'old', 1), (2, 'old', 1);
CREATE TABLE rv.t8 (id int PRIMARY KEY, v text, ver int);
INSERT INTO rv.t8 VALUES (1, 'old', 1), (2, 'old', 1);
CREATE TABLE rv.t8_child (id int PRIMARY KEY, t8 int REFERENCES rv.t8);
CREATE FUNCTION rv.no_stale() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN IF NEW.ver < OLD.ver THEN RETURN NULL; END IF; RETURN NEW; END$$;
CREATE TRIGGER no_stale BEFORE UPDATE ON rv.t8 FOR EACH ROW EXECUTE FUNCTION rv.no_stale();
SELECT elt.transform_create('rv_t8', 'rv.t8', 'SELECT id, v, ver FROM rv.s8', 'merge') > 0 AS created;
UPDATE rv.s8 SET v = 'new', ver = 2 WHERE id = 1;
SELECT elt.transform_run('rv_t8') AS t8 \gset
SELECT * FROM elt.run_revert(:t8, 'x');
SELECT id, v, ver FROM rv.t8 ORDER BY id;
CREATE TABLE rv.t9 (id int PRIMARY KEY, v text, legacy bool DEFAULT false);
INSERT INTO rv.t9 VALUES (1, 'o', false), (2, 'legacy row', true);
CREATE FUNCTION rv.no_legacy() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN IF NEW.legacy THEN RETURN NULL; END IF; RETURN NEW; END$$;
CREATE TRIGGER no_legacy BEFORE INSERT ON rv.t9 FOR EACH ROW EXECUTE FUNCTION rv.no_legacy();
SELECT elt.transform_create('rv_t9', 'rv.t9', 'SELECT id, v FROM rv.one', 'replace') > 0 AS created;
SELECT elt.transform_run('rv_t9') AS t9 \gset
SELECT * FROM elt.run_revert(:t9, 'x');
SELECT count(*) AS rows FROM rv.t9;
-- unique values other than the key: a dimension with an identity key and a
-- unique code, replaced; two rows swapping a unique position; a merge that
-- moved a unique value to a new row
CREATE TABLE rv.codes (code text PRIMARY KEY, name text);
INSERT INTO rv.codes VALUES ('a', 'A2'), ('b', 'B2');
CREATE TABLE rv.dim (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text UNIQUE NOT NULL, name text);
INSERT INTO rv.dim (code, name) VALUES ('a', 'A1'), ('b', 'B1');
CREATE TABLE rv.dim_before AS TABLE rv.dim;
SELECT elt.transform_create('rv_dim', 'rv.dim', 'SELECT code, name FROM rv.codes', 'replace') > 0 AS created;
SELECT elt.transform_run('rv_dim') AS d1 \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:d1, 'x');
SELECT rv.differs('rv.dim', 'rv.dim_before') AS differences;
CREATE TABLE rv.pos_src (id int PRIMARY KEY, pos int);
INSERT INTO rv.pos_src VALUES (1, 7), (3, 1);
CREATE TABLE rv.pos (id int PRIMARY KEY, pos int UNIQUE);
INSERT INTO rv.pos VALUES (1, 1);
CREATE TABLE rv.pos_before AS TABLE rv.pos;
SELECT elt.transform_create('rv_pos', 'rv.pos', 'SELECT id, pos FROM rv.pos_src', 'merge') > 0 AS created;
SELECT elt.transform_run('rv_pos') AS p1 \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:p1, 'x');
SELECT rv.differs('rv.pos', 'rv.pos_before') AS differences;
-- replace: an identity column that is not the key comes back as it was
CREATE TABLE rv.seq (code text PRIMARY KEY, id int GENERATED ALWAYS AS IDENTITY, name text);
INSERT INTO rv.seq (code, name) VALUES ('a', 'A1');
CREATE TABLE rv.seq_before AS TABLE rv.seq;
SELECT elt.transform_create('rv_seq', 'rv.seq', 'SELECT ''a'' AS code, ''A2'' AS name', 'replace') > 0 AS created;
SELECT elt.transform_run('rv_seq') AS q1 \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:q1, 'x');
SELECT rv.differs('rv.seq', 'rv.seq_before') AS differences;
-- a self-referencing target: rows the run added that reference each other go together
CREATE TABLE rv.tree (id int PRIMARY KEY, parent int REFERENCES rv.tree ON DELETE CASCADE, name text);
INSERT INTO rv.tree VALUES (1, NULL, 'root');
CREATE TABLE rv.tree_src (id int PRIMARY KEY, parent int, name text);
INSERT INTO rv.tree_src VALUES (10, 1, 'x'), (11, 10, 'y');
SELECT elt.transform_create('rv_tree', 'rv.tree', 'SELECT id, parent, name FROM rv.tree_src', 'append') > 0 AS created;
SELECT elt.transform_run('rv_tree') AS tr \gset
SELECT rows_removed, rows_restored FROM elt.run_revert(:tr, 'x');
SELECT count(*) AS rows FROM rv.tree;
-- a later run that read the target through a view, or read it emptied, depends on the run
CREATE TABLE rv.stage (id int PRIMARY KEY, v int);
INSERT INTO rv.stage VALUES (1, 10), (2, 20);
CREATE VIEW rv.stage_v AS SELECT * FROM rv.stage;
CREATE TABLE rv.mart (k int PRIMARY KEY, n bigint);
CREATE TABLE rv.empty_src (id int PRIMARY KEY, v int);
SELECT elt.transform_create('rv_stage', 'rv.stage', 'SELECT id, v FROM rv.empty_src', 'replace') > 0 AS created;
SELECT elt.transform_create('rv_mart', 'rv.mart', 'SELECT 1 AS k, count(*) AS n FROM rv.stage_v', 'merge',
                            '{"lineage": "table"}') > 0 AS created;
SELECT elt.transform_run('rv_stage') AS st \gset
SELECT elt.transform_run('rv_mart') AS mt \gset
SELECT run_id = :mt AS is_mart_run, depth, via FROM elt.run_dependents(:st);
SELECT count(*) AS reverted FROM elt.run_revert(:st, 'x', cascade => true);
SELECT count(*) AS stage_rows, (SELECT count(*) FROM rv.mart) AS mart_rows FROM rv.stage;

-- internal functions refuse to be called outside a run
SELECT elt._undo_image(1, '1'::xid, 'k', ROW(1));
SELECT * FROM elt._undo_pending();

DROP SCHEMA rv CASCADE;
DROP ROLE rv_member;
DROP ROLE rv_nobody;
DROP ROLE rv_etl;
