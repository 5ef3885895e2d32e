-- Backfills: creation and its checks, chunking over every key type, the
-- tail, retries and failures, states, workers, governance and privileges.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = notice;

-- wait for a backfill run by workers to end (or give up after 60 s)
CREATE PROCEDURE wait_backfill(bf text) LANGUAGE plpgsql AS $$
DECLARE s text;
BEGIN
  FOR i IN 1..600 LOOP
    SELECT state INTO s FROM elt.backfill_status WHERE name = bf;
    EXIT WHEN s IN ('finished', 'failed', 'cancelled', 'paused')
              AND (SELECT live_workers FROM elt.backfill_status WHERE name = bf) = 0;
    COMMIT;
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;

-- what the view shows, without times
CREATE VIEW progress AS
SELECT name, state, chunks_done, chunks_failed, chunks_total, rows_done,
       rows_total_estimate, rows_affected, percent, live_workers, runner
FROM elt.backfill_status;

CREATE TABLE orders (order_id bigint PRIMARY KEY, amount numeric NOT NULL,
                     total_cents bigint, applied int NOT NULL DEFAULT 0);
INSERT INTO orders (order_id, amount) SELECT g, g % 100 FROM generate_series(1, 1000) g;

-------------------------------------------------------------------------------
-- Creation
-------------------------------------------------------------------------------
SELECT elt.backfill_create('orders_v2', 'orders',
  'UPDATE orders SET total_cents = amount * 100, applied = applied + 1
   WHERE order_id >= $1 AND order_id < $2',
  chunk_rows => 100, options => '{"target_chunk_ms": 0}') AS id;
SELECT name, rel, key_column, key_type, chunk_rows, owner, state, schema_version,
       options->>'max_attempts' AS max_attempts, options->>'lock_timeout_ms' AS lock_timeout_ms
FROM elt.backfills;
SELECT * FROM progress;

-- bad input: each a clear error, nothing created
SELECT elt.backfill_create('orders_v2', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2');
SELECT elt.backfill_create('x', 'no_such_table', 'SELECT $1, $2');
SELECT elt.backfill_create('x', 'orders', 'SELECT 1 WHERE $1 < $2', key => 'nope');
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1');
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET nope = 1 WHERE order_id >= $1 AND order_id < $2');
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2 AND $3');
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2; SELECT 1');
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2 AND amount = $1::text');
SELECT elt.backfill_create('x', 'orders', 'VACUUM orders');
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2', chunk_rows => 0);
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2', options => '{"chunk_size": 5}');
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2', options => '{"max_attempts": "three"}');
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2', options => '[1]');
SELECT elt.backfill_create('x', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2', options => '{"min_chunk_rows": 500, "max_chunk_rows": 100}');
SELECT elt.backfill_create('bad name', 'orders', 'UPDATE orders SET applied = 1 WHERE order_id >= $1 AND order_id < $2');
SELECT elt.backfill_create(NULL, 'orders', 'x');
SELECT elt.backfill_create('x', 'orders', NULL);

CREATE TABLE nokey (id int, v int);
SELECT elt.backfill_create('x', 'nokey', 'UPDATE nokey SET v = 1 WHERE id >= $1 AND id < $2');
SELECT elt.backfill_create('x', 'nokey', 'UPDATE nokey SET v = 1 WHERE id >= $1 AND id < $2', key => 'id');
SELECT elt.backfill_create('x', 'nokey', 'UPDATE nokey SET v = 1 WHERE id >= $1 AND id < $2', key => 'id',
  options => '{"allow_null_keys": true}');
CREATE INDEX ON nokey (id);
SELECT elt.backfill_create('x', 'nokey', 'UPDATE nokey SET v = 1 WHERE id >= $1 AND id < $2', key => 'id',
  options => '{"allow_null_keys": true}');
CREATE TABLE twokey (a int, b int, v int, PRIMARY KEY (a, b));
SELECT elt.backfill_create('x', 'twokey', 'UPDATE twokey SET v = 1 WHERE a >= $1 AND a < $2');
CREATE TABLE boolkey (k boolean PRIMARY KEY);
SELECT elt.backfill_create('x', 'boolkey', 'SELECT $1 AND $2');
CREATE VIEW orders_view AS SELECT * FROM orders;
SELECT elt.backfill_create('x', 'orders_view', 'SELECT $1 < $2', key => 'order_id');
CREATE TEMP TABLE temp_t (id int PRIMARY KEY);
SELECT elt.backfill_create('x', 'temp_t', 'UPDATE temp_t SET id = id WHERE id >= $1 AND id < $2');
SELECT count(*) AS backfills FROM elt.backfills;

-------------------------------------------------------------------------------
-- Running in a session, chunk by chunk
-------------------------------------------------------------------------------
BEGIN;
CALL elt.backfill_run('orders_v2');
ROLLBACK;
CALL elt.backfill_run('nope');
CALL elt.backfill_run('orders_v2', max_chunks => 3);
SELECT * FROM progress;
SELECT chunk_no, lower_bound, upper_bound, final, state, rows_planned, rows_affected, attempts
FROM elt.backfill_chunks ORDER BY chunk_no;
SELECT count(*) FILTER (WHERE applied = 1) AS applied_once, count(*) FILTER (WHERE applied = 0) AS not_yet
FROM orders;
-- rows inserted past the planned end while it runs are covered by the final chunk
INSERT INTO orders (order_id, amount) VALUES (5000, 1), (5001, 2);
CALL elt.backfill_run('orders_v2');
SELECT * FROM progress;
SELECT chunk_no, lower_bound, upper_bound, final, rows_planned, rows_affected
FROM elt.backfill_chunks WHERE chunk_no >= 9 ORDER BY chunk_no;
SELECT applied, count(*), bool_and(total_cents = amount * 100) AS correct FROM orders GROUP BY applied;
-- a finished backfill: run is a no-op, start is an error
CALL elt.backfill_run('orders_v2');
SELECT elt.backfill_start('orders_v2');

-------------------------------------------------------------------------------
-- Every key type
-------------------------------------------------------------------------------
CREATE FUNCTION key_test(typ text, gen text, n int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE TABLE kt_%s (k %s PRIMARY KEY, applied int NOT NULL DEFAULT 0)', typ, typ);
  EXECUTE format('INSERT INTO kt_%s (k) SELECT DISTINCT %s FROM generate_series(1, %s) g', typ, gen, n);
  PERFORM elt.backfill_create('kt_' || typ, ('kt_' || typ)::regclass,
    format('UPDATE kt_%s SET applied = applied + 1 WHERE k >= $1 AND k < $2', typ),
    chunk_rows => 7, options => '{"target_chunk_ms": 0}');
  RETURN typ;
END $$;
SELECT key_test('int2', 'g::int2', 50), key_test('int4', '(g * 3)::int4', 50),
       key_test('int8', '(g::int8 << 40)', 50), key_test('numeric', 'g / 7.0', 50),
       key_test('text', '''k'' || g', 50), key_test('uuid', 'md5(g::text)::uuid', 50),
       key_test('date', '''2024-01-01''::date + g', 50),
       key_test('timestamp', '''2024-01-01''::timestamp + g * interval ''1 hour 1 microsecond''', 50),
       key_test('timestamptz', '''2024-03-31 00:00+00''::timestamptz + g * interval ''17 minutes''', 50);
-- bounds are written and read in ISO form, whatever the session's settings
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Pacific/Chatham';
CALL elt.backfill_run('kt_int2');
CALL elt.backfill_run('kt_int4');
CALL elt.backfill_run('kt_int8');
CALL elt.backfill_run('kt_numeric');
CALL elt.backfill_run('kt_text');
CALL elt.backfill_run('kt_uuid');
CALL elt.backfill_run('kt_date');
CALL elt.backfill_run('kt_timestamp');
CALL elt.backfill_run('kt_timestamptz');
RESET DateStyle;
RESET TimeZone;
SELECT 'int2' AS typ, min(applied), max(applied), count(*) FROM kt_int2
UNION ALL SELECT 'int4', min(applied), max(applied), count(*) FROM kt_int4
UNION ALL SELECT 'int8', min(applied), max(applied), count(*) FROM kt_int8
UNION ALL SELECT 'numeric', min(applied), max(applied), count(*) FROM kt_numeric
UNION ALL SELECT 'text', min(applied), max(applied), count(*) FROM kt_text
UNION ALL SELECT 'uuid', min(applied), max(applied), count(*) FROM kt_uuid
UNION ALL SELECT 'date', min(applied), max(applied), count(*) FROM kt_date
UNION ALL SELECT 'timestamp', min(applied), max(applied), count(*) FROM kt_timestamp
UNION ALL SELECT 'timestamptz', min(applied), max(applied), count(*) FROM kt_timestamptz;
SELECT name, state, chunks_done, rows_done FROM progress WHERE name LIKE 'kt_%' ORDER BY name;
SELECT lower_bound, upper_bound FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
WHERE b.name = 'kt_timestamptz' ORDER BY chunk_no LIMIT 2;
SELECT upper_bound FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
WHERE b.name IN ('kt_text', 'kt_int4', 'kt_uuid') AND c.final ORDER BY b.name;
-- a key at the greatest value of its type has no exclusive upper bound
CREATE TABLE kt_max (k int2 PRIMARY KEY, applied int NOT NULL DEFAULT 0);
INSERT INTO kt_max (k) VALUES (1), (32767);
SELECT elt.backfill_create('kt_max', 'kt_max', 'UPDATE kt_max SET applied = applied + 1 WHERE k >= $1 AND k < $2');
CALL elt.backfill_run('kt_max');
SELECT state, last_error FROM elt.backfill_status WHERE name = 'kt_max';
SELECT k, applied FROM kt_max ORDER BY k;

-- duplicate keys, when allowed, share a chunk; NULL keys are left out
CREATE TABLE dups (k int, applied int NOT NULL DEFAULT 0);
CREATE INDEX ON dups (k);
INSERT INTO dups (k) SELECT g / 10 FROM generate_series(0, 99) g;
INSERT INTO dups (k) VALUES (NULL);
SELECT elt.backfill_create('dups', 'dups', 'UPDATE dups SET applied = applied + 1 WHERE k >= $1 AND k < $2',
  key => 'k', chunk_rows => 4, options => '{"allow_duplicate_keys": true, "allow_null_keys": true, "target_chunk_ms": 0}');
CALL elt.backfill_run('dups');
SELECT k IS NULL AS null_key, applied, count(*) FROM dups GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS chunks, max(rows_planned) AS largest FROM elt.backfill_chunks c
JOIN elt.backfills b USING (backfill_id) WHERE b.name = 'dups';

-- follow_tail paginates keys added past the planned end, in chunks
CREATE TABLE tail (id int PRIMARY KEY, applied int NOT NULL DEFAULT 0);
INSERT INTO tail (id) SELECT generate_series(1, 20);
SELECT elt.backfill_create('tail', 'tail', 'UPDATE tail SET applied = applied + 1 WHERE id >= $1 AND id < $2',
  chunk_rows => 10, options => '{"follow_tail": true, "target_chunk_ms": 0}');
CALL elt.backfill_run('tail', max_chunks => 1);
INSERT INTO tail (id) SELECT generate_series(21, 45);
CALL elt.backfill_run('tail');
SELECT chunk_no, lower_bound, upper_bound, final, rows_planned FROM elt.backfill_chunks c
JOIN elt.backfills b USING (backfill_id) WHERE b.name = 'tail' ORDER BY chunk_no;
SELECT applied, count(*) FROM tail GROUP BY 1;

-- an empty table: one final chunk that finds nothing
CREATE TABLE empty_t (id int PRIMARY KEY);
SELECT elt.backfill_create('empty', 'empty_t', 'UPDATE empty_t SET id = id WHERE id >= $1 AND id < $2');
CALL elt.backfill_run('empty');
SELECT name, state, chunks_done, chunks_total, rows_done, percent FROM progress WHERE name = 'empty';

-------------------------------------------------------------------------------
-- Retries and failures
-------------------------------------------------------------------------------
CREATE TABLE flaky (id int PRIMARY KEY, applied int NOT NULL DEFAULT 0);
INSERT INTO flaky (id) SELECT generate_series(1, 30);
CREATE SEQUENCE tries;
-- its first chunk fails with a serialization failure on its first two attempts
CREATE FUNCTION flaky_chunk(lo int, hi int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  IF lo = 1 AND nextval('tries') <= 2 THEN
    RAISE EXCEPTION 'simulated conflict' USING ERRCODE = 'serialization_failure';
  END IF;
  UPDATE flaky SET applied = applied + 1 WHERE id >= lo AND id < hi;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
SELECT elt.backfill_create('flaky', 'flaky', 'SELECT flaky_chunk($1, $2)', chunk_rows => 10,
  options => '{"target_chunk_ms": 0, "max_attempts": 3}');
CALL elt.backfill_run('flaky');
SELECT chunk_no, c.state, attempts, last_error FROM elt.backfill_chunks c
JOIN elt.backfills b USING (backfill_id) WHERE b.name = 'flaky' ORDER BY chunk_no;
SELECT applied, count(*) FROM flaky GROUP BY 1;

-- too many retryable failures: the chunk fails
ALTER SEQUENCE tries RESTART;
UPDATE flaky SET applied = 0;
SELECT elt.backfill_create('flaky2', 'flaky', 'SELECT flaky_chunk($1, $2)', chunk_rows => 10,
  options => '{"target_chunk_ms": 0, "max_attempts": 2}');
CALL elt.backfill_run('flaky2');
SELECT name, state, chunks_done, chunks_failed, last_error FROM elt.backfill_status WHERE name = 'flaky2';
SELECT chunk_no, c.state, attempts FROM elt.backfill_chunks c
JOIN elt.backfills b USING (backfill_id) WHERE b.name = 'flaky2' ORDER BY chunk_no;
-- retry reruns the failed chunk and goes on
SELECT elt.backfill_retry('flaky2');
CALL elt.backfill_run('flaky2');
SELECT name, state, chunks_done, chunks_failed FROM elt.backfill_status WHERE name = 'flaky2';
SELECT applied, count(*) FROM flaky GROUP BY 1;
SELECT elt.backfill_retry('flaky2');

-- any other error fails the chunk and the backfill, leaving nothing of the chunk
CREATE TABLE divs (id int PRIMARY KEY, d int NOT NULL, r int);
INSERT INTO divs SELECT g, CASE WHEN g = 15 THEN 0 ELSE 1 END FROM generate_series(1, 40) g;
SELECT elt.backfill_create('divs', 'divs', 'UPDATE divs SET r = 100 / d WHERE id >= $1 AND id < $2',
  chunk_rows => 10, options => '{"target_chunk_ms": 0}');
CALL elt.backfill_run('divs');
SELECT name, state, chunks_done, chunks_failed, state_reason FROM elt.backfill_status WHERE name = 'divs';
SELECT count(r) AS processed FROM divs;
CALL elt.backfill_run('divs');
-- fix the data, retry
UPDATE divs SET d = 1 WHERE id = 15;
SELECT elt.backfill_retry('divs');
CALL elt.backfill_run('divs');
SELECT name, state, chunks_done, chunks_failed FROM elt.backfill_status WHERE name = 'divs';
SELECT count(r) AS processed FROM divs;

-- continue_on_error: the other chunks go on; the backfill fails at the end
UPDATE divs SET d = 0, r = NULL WHERE id IN (5, 25);
UPDATE divs SET r = NULL;
SELECT elt.backfill_create('divs2', 'divs', 'UPDATE divs SET r = 100 / d WHERE id >= $1 AND id < $2',
  chunk_rows => 10, options => '{"target_chunk_ms": 0, "continue_on_error": true}');
CALL elt.backfill_run('divs2');
SELECT name, state, chunks_done, chunks_failed, state_reason FROM elt.backfill_status WHERE name = 'divs2';
SELECT count(r) AS processed FROM divs;

-- a chunk over statement_timeout_ms fails with that reason
CREATE TABLE slow (id int PRIMARY KEY);
INSERT INTO slow VALUES (1), (2);
SELECT elt.backfill_create('slow', 'slow', 'SELECT pg_sleep(5) WHERE $1 < $2',
  options => '{"statement_timeout_ms": 100}');
CALL elt.backfill_run('slow');
SELECT state, last_error FROM elt.backfill_status WHERE name = 'slow';

-------------------------------------------------------------------------------
-- States
-------------------------------------------------------------------------------
CREATE TABLE st (id int PRIMARY KEY, applied int NOT NULL DEFAULT 0);
INSERT INTO st (id) SELECT generate_series(1, 50);
SELECT elt.backfill_create('st', 'st', 'UPDATE st SET applied = applied + 1 WHERE id >= $1 AND id < $2',
  chunk_rows => 10, options => '{"target_chunk_ms": 0}');
SELECT elt.backfill_pause('st');
SELECT elt.backfill_resume('st');
CALL elt.backfill_run('st', max_chunks => 2);
SELECT elt.backfill_pause('st');
SELECT name, state, state_reason, chunks_done FROM elt.backfill_status WHERE name = 'st';
CALL elt.backfill_run('st');
SELECT elt.backfill_pause('st');
SELECT elt.backfill_start('st');
SELECT elt.backfill_resume('st');
CALL elt.backfill_run('st', max_chunks => 1);
SELECT elt.backfill_cancel('st');
SELECT name, state, chunks_done FROM elt.backfill_status WHERE name = 'st';
CALL elt.backfill_run('st');
SELECT elt.backfill_start('st');
SELECT elt.backfill_resume('st');
SELECT elt.backfill_cancel('st');
SELECT elt.backfill_pause('nope');
SELECT applied, count(*) FROM st GROUP BY 1 ORDER BY 1;


-- a key whose type changed: its bounds no longer apply, an error says so
CREATE TABLE retyped (id int PRIMARY KEY, applied int NOT NULL DEFAULT 0);
INSERT INTO retyped (id) SELECT generate_series(1, 30);
SELECT elt.backfill_create('retyped', 'retyped', 'UPDATE retyped SET applied = applied + 1 WHERE id >= $1 AND id < $2',
  chunk_rows => 10, options => '{"target_chunk_ms": 0}');
CALL elt.backfill_run('retyped', max_chunks => 1);
ALTER TABLE retyped ALTER COLUMN id TYPE numeric;
CALL elt.backfill_run('retyped');
SELECT applied, count(*) FROM retyped GROUP BY 1 ORDER BY 1;

-- what the statement sets does not stay in the session that runs it
SELECT elt.backfill_create('setter', 'st', 'SELECT set_config(''work_mem'', ''1234kB'', false) WHERE $1 < $2');
SHOW work_mem;
CALL elt.backfill_run('setter');
SHOW work_mem;

-------------------------------------------------------------------------------
-- Background workers
-------------------------------------------------------------------------------
CREATE TABLE wk (id int PRIMARY KEY, v int NOT NULL, applied int NOT NULL DEFAULT 0);
INSERT INTO wk SELECT g, g FROM generate_series(1, 5000) g;
SELECT elt.backfill_create('wk', 'wk', 'UPDATE wk SET v = v * 2, applied = applied + 1 WHERE id >= $1 AND id < $2',
  chunk_rows => 100, options => '{"target_chunk_ms": 0}');
SELECT elt.backfill_start('wk', workers => 0);
SELECT elt.backfill_start('wk', workers => 10000);
SELECT elt.backfill_start('wk', workers => 2);
CALL wait_backfill('wk');
SELECT name, state, chunks_done, chunks_failed, chunks_total, rows_done, percent, live_workers, runner
FROM progress WHERE name = 'wk';
SELECT applied, count(*), bool_and(v = id * 2) AS doubled FROM wk GROUP BY 1;
SELECT count(*) AS chunks, sum(attempts) AS attempts FROM elt.backfill_chunks c
JOIN elt.backfills b USING (backfill_id) WHERE b.name = 'wk';
-- chunks are contiguous and do not overlap
SELECT count(*) AS gaps FROM (
  SELECT upper_bound::int AS hi, lead(lower_bound::int) OVER (ORDER BY chunk_no) AS next_lo
  FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id) WHERE b.name = 'wk') s
WHERE next_lo IS NOT NULL AND hi <> next_lo;

-- more workers than free slots: an error, and the backfill is not started
-- (with caps that allow every slot; backfill_caps tests the caps)
SELECT elt.backfill_create('wk2', 'wk', 'UPDATE wk SET applied = applied + 1 WHERE id >= $1 AND id < $2');
SET elt.max_backfill_workers = 1000;
SET elt.max_backfill_workers_per_role = 1000;
SELECT elt.backfill_start('wk2', workers => current_setting('max_worker_processes')::int);
RESET elt.max_backfill_workers;
RESET elt.max_backfill_workers_per_role;
SELECT state FROM elt.backfill_status WHERE name = 'wk2';
-- (the workers registered before the error see the start roll back, and exit)
DO $$ BEGIN
  FOR i IN 1..300 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN i > 20 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity
                                     WHERE backend_type = 'elt_governance backfill');
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT count(*) AS workers_left FROM pg_stat_activity WHERE backend_type = 'elt_governance backfill';
SELECT applied, count(*) FROM wk GROUP BY 1;

-------------------------------------------------------------------------------
-- Governance: the audit trail, breaking changes pause a backfill
-------------------------------------------------------------------------------
SELECT action, object, details->>'workers' AS workers, details->>'chunks' AS chunks
FROM elt.audit_log WHERE object IN ('orders_v2', 'wk', 'divs', 'st') ORDER BY id;
SELECT valid FROM elt.audit_verify();

CREATE SCHEMA gov;
CREATE TABLE gov.t (id int PRIMARY KEY, a int, b int, applied int NOT NULL DEFAULT 0);
INSERT INTO gov.t (id, a) SELECT g, g FROM generate_series(1, 30) g;
SELECT elt.govern('gov', 'warn');
SELECT elt.backfill_create('gov_t', 'gov.t', 'UPDATE gov.t SET applied = applied + 1 WHERE id >= $1 AND id < $2',
  chunk_rows => 10, options => '{"target_chunk_ms": 0}');
SELECT schema_version FROM elt.backfills WHERE name = 'gov_t';
CALL elt.backfill_run('gov_t', max_chunks => 1);
ALTER TABLE gov.t ADD COLUMN c int;
SELECT state FROM elt.backfill_status WHERE name = 'gov_t';
ALTER TABLE gov.t DROP COLUMN b;
SELECT state, state_reason FROM elt.backfill_status WHERE name = 'gov_t';
SELECT action, details->>'rule' AS rule FROM elt.audit_log WHERE object = 'gov_t' ORDER BY id;
SELECT elt.backfill_resume('gov_t');
CALL elt.backfill_run('gov_t');
SELECT applied, count(*) FROM gov.t GROUP BY 1;

-------------------------------------------------------------------------------
-- Privileges
-------------------------------------------------------------------------------
CREATE ROLE bf_alice LOGIN;
CREATE ROLE bf_bob LOGIN;
CREATE TABLE alice_t (id int PRIMARY KEY, v int);
INSERT INTO alice_t SELECT g, 0 FROM generate_series(1, 20) g;
GRANT SELECT, UPDATE ON alice_t TO bf_alice;
GRANT SELECT ON alice_t TO bf_bob;
CREATE TABLE secret (v int);
SET ROLE bf_bob;
SELECT elt.backfill_create('bob', 'alice_t', 'UPDATE alice_t SET v = 1 WHERE id >= $1 AND id < $2');
RESET ROLE;
SET ROLE bf_alice;
SELECT elt.backfill_create('alice', 'alice_t', 'UPDATE alice_t SET v = 1 WHERE id >= $1 AND id < $2');
RESET ROLE;
SET ROLE bf_bob;
SELECT elt.backfill_pause('alice');
CALL elt.backfill_run('alice');
SELECT elt.backfill_cancel('alice');
RESET ROLE;
SET ROLE bf_alice;
CALL elt.backfill_run('alice');
RESET ROLE;
SELECT owner, state FROM elt.backfill_status WHERE name = 'alice';
SELECT count(*) FILTER (WHERE v = 1) AS updated FROM alice_t;
-- a superuser running alice's backfill still runs its statement as alice
GRANT SELECT ON secret TO bf_alice;
SET ROLE bf_alice;
SELECT elt.backfill_create('alice3', 'alice_t',
  'UPDATE alice_t SET v = (SELECT count(*) FROM secret) + 10 WHERE id >= $1 AND id < $2');
RESET ROLE;
REVOKE SELECT ON secret FROM bf_alice;
CALL elt.backfill_run('alice3');
SELECT state, last_error FROM elt.backfill_status WHERE name = 'alice3';
-- workers connect as the owner, who must be able to log in
ALTER ROLE bf_alice NOLOGIN;
GRANT SELECT ON secret TO bf_alice;
SELECT elt.backfill_retry('alice3');
SELECT elt.backfill_pause('alice3');
SET ROLE bf_alice;
SELECT elt.backfill_create('alice4', 'alice_t', 'UPDATE alice_t SET v = 4 WHERE id >= $1 AND id < $2');
RESET ROLE;
SELECT elt.backfill_start('alice4');
SELECT state FROM elt.backfill_status WHERE name = 'alice4';

-------------------------------------------------------------------------------
-- Throttle: max_rows_per_second spaces chunks out (60 rows at 200 rows/s
-- take at least 0.3 s; a lower bound, which no slow machine breaks)
-------------------------------------------------------------------------------
CREATE TABLE throttled (id int PRIMARY KEY);
INSERT INTO throttled SELECT generate_series(1, 60);
SELECT elt.backfill_create('throttled', 'throttled', 'UPDATE throttled SET id = id WHERE id >= $1 AND id < $2',
  chunk_rows => 20, options => '{"target_chunk_ms": 0, "max_rows_per_second": 200}');
SELECT clock_timestamp() AS t0 \gset
CALL elt.backfill_run('throttled');
SELECT clock_timestamp() - :'t0'::timestamptz >= interval '250 ms' AS spaced_out;

-------------------------------------------------------------------------------
-- Purge
-------------------------------------------------------------------------------
SELECT elt.backfill_purge('-1 day');
SELECT elt.backfill_purge(NULL);
SELECT elt.backfill_purge('1 day');
SELECT count(*) AS finished_before FROM elt.backfills WHERE state IN ('finished', 'cancelled', 'failed');
SELECT elt.backfill_purge('0');
SELECT name, state FROM elt.backfills ORDER BY name;
SELECT count(*) AS orphan_chunks FROM elt.backfill_chunks c
WHERE NOT EXISTS (SELECT 1 FROM elt.backfills b WHERE b.backfill_id = c.backfill_id);
SELECT action, details FROM elt.audit_log WHERE action = 'backfill_purged';
SELECT valid FROM elt.audit_verify();
