-- Backfill workers are capped in the cluster (elt.max_backfill_workers) and
-- per role (elt.max_backfill_workers_per_role), so that one role's backfills
-- cannot take every slot of max_worker_processes: a role at its cap is
-- refused, another role still gets workers, a start beyond what is left gets
-- what is left.  The chunks wait for an advisory lock this session holds,
-- so the workers stay alive, and each start returns only once its workers
-- are counted: nothing here depends on timing.
CREATE EXTENSION IF NOT EXISTS elt_governance;

-- the workers of earlier suites have exited
DO $$ BEGIN
  FOR i IN 1..600 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'elt_governance backfill');
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT count(*) AS workers_before FROM pg_stat_activity WHERE backend_type = 'elt_governance backfill';

-- until every named backfill has stopped and its workers have exited
CREATE PROCEDURE bfc_wait(names text[]) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN NOT EXISTS (SELECT FROM elt.backfill_status WHERE name = ANY (names)
                          AND (state NOT IN ('finished', 'failed', 'cancelled', 'paused') OR live_workers > 0));
    COMMIT;
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;

-- the defaults: half of max_worker_processes, and half of that per role
SHOW max_worker_processes;
SHOW elt.max_backfill_workers;
SHOW elt.max_backfill_workers_per_role;

CREATE ROLE bfc_a LOGIN;
CREATE ROLE bfc_b LOGIN;
CREATE ROLE bfc_op IN ROLE elt_operator;
CREATE SCHEMA bfc;
GRANT USAGE ON SCHEMA bfc TO bfc_a, bfc_b;
CREATE TABLE bfc.ta (id int PRIMARY KEY, v int NOT NULL);
CREATE TABLE bfc.tb (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO bfc.ta SELECT g, 0 FROM generate_series(1, 8) g;
INSERT INTO bfc.tb SELECT g, 0 FROM generate_series(1, 8) g;
ALTER TABLE bfc.ta OWNER TO bfc_a;
ALTER TABLE bfc.tb OWNER TO bfc_b;
SET ROLE bfc_a;
SELECT count(elt.backfill_create(n, 'bfc.ta',
  'UPDATE bfc.ta SET v = v + 1 WHERE id >= $1 AND id < $2'
  ' AND (SELECT true FROM pg_catalog.pg_advisory_xact_lock_shared(7301))',
  chunk_rows => 1, options => '{"target_chunk_ms": 0, "max_chunk_rows": 1}')) AS created
FROM unnest(ARRAY['bfc_a1', 'bfc_a2']) n;
RESET ROLE;
SET ROLE bfc_b;
SELECT count(elt.backfill_create(n, 'bfc.tb',
  'UPDATE bfc.tb SET v = v + 1 WHERE id >= $1 AND id < $2'
  ' AND (SELECT true FROM pg_catalog.pg_advisory_xact_lock_shared(7301))',
  chunk_rows => 1, options => '{"target_chunk_ms": 0, "max_chunk_rows": 1}')) AS created
FROM unnest(ARRAY['bfc_b1', 'bfc_b2']) n;
RESET ROLE;

-- a role may not raise the caps; a superuser's session may set them
SET ROLE bfc_a;
SET elt.max_backfill_workers_per_role = 100;
RESET ROLE;
SET elt.max_backfill_workers = 3;
SET elt.max_backfill_workers_per_role = 2;

-- the chunks wait for this lock
SELECT pg_advisory_lock(7301) IS NOT NULL AS held;

-- role a takes its two workers; its next start is refused, and changes nothing
SET ROLE bfc_a;
SELECT elt.backfill_start('bfc_a1', 2) AS started;
SELECT elt.backfill_start('bfc_a2', 1);
SELECT name, state, live_workers FROM elt.backfill_status WHERE name LIKE 'bfc_a_' ORDER BY 1;
RESET ROLE;
-- an operator starting role a's backfill counts against role a's cap
SET ROLE bfc_op;
SELECT elt.backfill_start('bfc_a2', 1);
RESET ROLE;
-- role b still gets a worker: the one the cluster has left, not the two asked for
SET ROLE bfc_b;
SELECT elt.backfill_start('bfc_b1', 2) AS started;
-- the cluster is full: refused
SELECT elt.backfill_start('bfc_b2', 1);
RESET ROLE;
SELECT usename, count(*) AS workers FROM pg_stat_activity
WHERE backend_type = 'elt_governance backfill' GROUP BY 1 ORDER BY 1;
SELECT name, s.state, b.workers, s.live_workers FROM elt.backfills b
JOIN elt.backfill_status s USING (name) WHERE name LIKE 'bfc\_%' ORDER BY 1;

-- a paused backfill whose workers still run their chunks keeps its slots:
-- resuming it is refused, and it stays paused
SET ROLE bfc_a;
SELECT elt.backfill_pause('bfc_a1');
SELECT elt.backfill_resume('bfc_a1');
SELECT state FROM elt.backfill_status WHERE name = 'bfc_a1';
RESET ROLE;

-- the chunks go on; once the workers have exited there is room again
SELECT pg_advisory_unlock(7301) AS released;
CALL bfc_wait(ARRAY['bfc_a1', 'bfc_b1']);
SET ROLE bfc_a;
SELECT elt.backfill_resume('bfc_a1') AS resumed_with;
RESET ROLE;
CALL bfc_wait(ARRAY['bfc_a1']);
SET ROLE bfc_a;
SELECT elt.backfill_start('bfc_a2', 2) AS started;
RESET ROLE;
SET ROLE bfc_b;
SELECT elt.backfill_start('bfc_b2', 1) AS started;
RESET ROLE;
CALL bfc_wait(ARRAY['bfc_a2', 'bfc_b2']);
SELECT name, state, chunks_done, live_workers FROM elt.backfill_status WHERE name LIKE 'bfc\_%' ORDER BY 1;
SELECT (SELECT array_agg(DISTINCT v) FROM bfc.ta) AS ta_applied, (SELECT array_agg(DISTINCT v) FROM bfc.tb) AS tb_applied;

-- no workers at all: a start is refused; the backfill runs in a session
SET elt.max_backfill_workers = 0;
SET ROLE bfc_b;
SELECT elt.backfill_create('bfc_b3', 'bfc.tb', 'UPDATE bfc.tb SET v = v + 1 WHERE id >= $1 AND id < $2') > 0 AS created;
SELECT elt.backfill_start('bfc_b3', 1);
CALL elt.backfill_run('bfc_b3');
RESET ROLE;
SELECT array_agg(DISTINCT v) AS tb_applied FROM bfc.tb;
RESET elt.max_backfill_workers;
RESET elt.max_backfill_workers_per_role;

-- the story in the audit log: what was refused left no row, what started
-- records the workers it got
SELECT object, action, details->>'workers' AS workers
FROM elt.audit_log WHERE object LIKE 'bfc\_%' AND action LIKE 'backfill\_%' AND action <> 'backfill_created'
ORDER BY object, id;

DROP PROCEDURE bfc_wait(text[]);
DROP SCHEMA bfc CASCADE;
DROP OWNED BY bfc_a, bfc_b, bfc_op;
DROP ROLE bfc_a, bfc_b, bfc_op;
