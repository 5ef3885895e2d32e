-- Transforms: creation and its checks, versions and code hashes, modes,
-- run parameters and the run clock, runs from a backfill, OpenLineage
-- events, audit.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = notice;
SET DateStyle = ISO;

CREATE TABLE src (id bigint PRIMARY KEY, grp text NOT NULL, amount numeric NOT NULL);
INSERT INTO src SELECT g, 'g' || (g % 4), g FROM generate_series(1, 100) g;
CREATE TABLE totals (grp text PRIMARY KEY, n bigint NOT NULL, total numeric, note text DEFAULT 'none');
CREATE TABLE copy (id bigint PRIMARY KEY, amount numeric);
CREATE TABLE events (event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     src_id bigint NOT NULL, amount numeric);

-------------------------------------------------------------------------------
-- Creation and its checks
-------------------------------------------------------------------------------
SELECT elt.transform_create('totals', 'totals',
  'SELECT grp, count(*) AS n, sum(amount) AS total FROM src GROUP BY grp', 'replace') AS id \gset
SELECT name, target, mode, lineage, current_version, lineage_level, keep_runs, owner, last_run_id
FROM elt.transforms;
SELECT transform, version, current, lineage_level, sources, nondeterministic, length(code_hash) AS hash_len
FROM elt.transform_versions;

-- bad input: clear errors, nothing created
SELECT elt.transform_create('totals', 'totals', 'SELECT grp, 1 AS n FROM src');
SELECT elt.transform_create('bad name!', 'totals', 'SELECT grp, 1 AS n FROM src');
SELECT elt.transform_create(NULL, 'totals', 'SELECT 1');
SELECT elt.transform_create('x', NULL, 'SELECT 1');
SELECT elt.transform_create('x', 'totals', NULL);
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n FROM src', 'upsert');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n FROM src', options => '{"lineage": "column"}');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n FROM src', options => '{"keep_runs": 0}');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n FROM src', options => '{"keep": 3}');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n FROM src', options => '[1]');
CREATE VIEW totals_view AS SELECT * FROM totals;
SELECT elt.transform_create('x', 'totals_view', 'SELECT grp, 1 AS n FROM src');
SELECT elt.transform_create('x', 'totals', 'SELECT grp FROM src; SELECT 1');
SELECT elt.transform_create('x', 'totals', 'DELETE FROM src');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n INTO newtab FROM src');
SELECT elt.transform_create('x', 'totals',
  'WITH d AS (DELETE FROM src RETURNING grp) SELECT grp, 1 AS n FROM d');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n, 2 AS extra FROM src');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n, 2 AS n FROM src');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, now() AS n FROM src');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 FROM src');
SELECT elt.transform_create('x', 'totals', 'SELECT grp FROM src');
SELECT elt.transform_create('x', 'copy', 'SELECT amount FROM src', 'merge');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n, 1 AS __elt_x FROM src');
SELECT elt.transform_create('x', 'totals', 'SELECT grp, 1 AS n FROM no_such_table');
SELECT count(*) AS transforms FROM elt.transforms;

-- a time-dependent query is accepted with a warning pointing to elt.now()
CREATE TABLE stamped (id bigint PRIMARY KEY, at timestamptz, r float8);
SELECT elt.transform_create('stamped', 'stamped',
  'SELECT id, now() AS at, random() AS r FROM src WHERE id <= 3') > 0 AS created;
SELECT nondeterministic FROM elt.transform_versions WHERE transform = 'stamped';
SELECT elt.transform_update('stamped',
  'SELECT id, elt.now() AS at, elt.random() AS r FROM src WHERE id <= 3 AND current_date > ''2000-01-01''');
SELECT elt.transform_update('stamped',
  'SELECT id, elt.now() AS at, elt.random() AS r FROM src WHERE id <= 3');
SELECT version, nondeterministic FROM elt.transform_versions WHERE transform = 'stamped' ORDER BY version;

-------------------------------------------------------------------------------
-- Versions and code hashes
-------------------------------------------------------------------------------
-- comments, whitespace, case and a trailing semicolon do not change the hash
SELECT elt.transform_update('totals', $$
  -- the same query, written differently
  select GRP, count(*) as N,   sum(AMOUNT) /* total */ as TOTAL
  from SRC
  group by GRP;
$$) AS version;
SELECT count(*) AS versions FROM elt.transform_versions WHERE transform = 'totals';
-- literals do
SELECT elt.transform_update('totals',
  'SELECT grp, count(*) AS n, sum(amount) AS total, ''v2'' AS note FROM src GROUP BY grp') AS version;
SELECT elt.transform_update('totals',
  'SELECT grp, count(*) AS n, sum(amount) AS total, ''V2'' AS note FROM src GROUP BY grp') AS version;
SELECT version, current, code_hash <> lag(code_hash) OVER (ORDER BY version) AS hash_changed
FROM elt.transform_versions WHERE transform = 'totals' ORDER BY version;
SELECT current_version FROM elt.transforms WHERE name = 'totals';
SELECT elt.transform_update('no_such', 'SELECT 1');
SELECT elt.transform_update('totals', 'SELECT grp FROM nowhere');
-- versions are immutable
UPDATE elt.transform_code SET sql = 'SELECT 1';
DELETE FROM elt.transform_code;

-------------------------------------------------------------------------------
-- Modes
-------------------------------------------------------------------------------
SELECT elt.transform_run('totals') AS run \gset
SELECT grp, n, total, note FROM totals ORDER BY grp;
SELECT version, params, lineage, status, rows_read, rows_written, rows_deleted, role = current_user AS by_me,
       finished_at >= started_at AS timed
FROM elt.transform_runs WHERE run_id = :run;
-- replace: the whole target, again
UPDATE src SET amount = amount * 2 WHERE id <= 10;
SELECT elt.transform_run('totals') AS run \gset
SELECT grp, n, total FROM totals ORDER BY grp;
SELECT rows_written, rows_deleted FROM elt.transform_runs WHERE run_id = :run;

-- append: new rows only; the same rows again violate the key and leave nothing
SELECT elt.transform_create('copy_low', 'copy',
  'SELECT id, amount FROM src WHERE id BETWEEN elt.param(''lo'')::bigint AND elt.param(''hi'')::bigint') > 0 AS created;
SELECT elt.transform_run('copy_low', '{"lo": 1, "hi": 10}') > 0 AS ran;
SELECT elt.transform_run('copy_low', '{"lo": 11, "hi": 20}') > 0 AS ran;
SELECT count(*), min(id), max(id) FROM copy;
SELECT elt.transform_run('copy_low', '{"lo": 5, "hi": 15}');
SELECT count(*) FROM copy;
-- parameters: missing, and of every JSON type
SELECT elt.transform_run('copy_low', '{"lo": 1}');
SELECT elt.transform_run('copy_low', '[1, 2]');
SELECT elt.param('lo');

-- merge: upsert on the primary key
SELECT elt.transform_create('copy_merge', 'copy', 'SELECT id, amount * 10 AS amount FROM src WHERE id <= 15',
  'merge') > 0 AS created;
SELECT elt.transform_run('copy_merge') AS run \gset
SELECT count(*), sum(amount) FROM copy;
SELECT rows_written, rows_deleted FROM elt.transform_runs WHERE run_id = :run;

-- a generated identity key is drawn per row, and lineage knows it
SELECT elt.transform_create('events', 'events', 'SELECT id AS src_id, amount FROM src WHERE id <= 3') > 0 AS created;
SELECT elt.transform_run('events') AS run \gset
SELECT event_id, src_id, amount FROM events ORDER BY event_id;
SELECT target_key, source_keys FROM elt.lineage_rows WHERE run_id = :run ORDER BY target_key;

-- the run clock and random numbers: fixed per run
SELECT elt.transform_run('stamped') AS run \gset
SELECT count(DISTINCT at) AS one_clock, count(DISTINCT r) AS distinct_randoms,
       min(at) = (SELECT started_at FROM elt.transform_runs WHERE run_id = :run) AS clock_is_run_start
FROM stamped;
SELECT elt.now() = now() AS outside_a_run_now_is_transaction_start;

-- a run parameter of each JSON type, seen as text
CREATE TABLE params (k text PRIMARY KEY, v text);
SELECT elt.transform_create('params', 'params',
  'SELECT k, elt.param(k) AS v FROM (VALUES (''s''), (''n''), (''b''), (''z''), (''o'')) AS t(k)') > 0 AS created;
SELECT elt.transform_run('params', '{"s": "text", "n": 1.50, "b": true, "z": null, "o": {"a": [1]}}') > 0 AS ran;
SELECT k, v FROM params ORDER BY k;

-- runs cannot nest
CREATE FUNCTION nested_run() RETURNS text LANGUAGE plpgsql IMMUTABLE AS
  $$ BEGIN PERFORM elt.transform_run('totals'); RETURN 'x'; END $$;
CREATE TABLE nest (k text PRIMARY KEY);
SELECT elt.transform_create('nest', 'nest', 'SELECT nested_run() AS k') > 0 AS created;
SELECT elt.transform_run('nest');
-- nor can a pipeline run begin, end or replay inside one (0.7.0 checked a
-- run id that is drawn only after the statement: these calls went through)
CREATE FUNCTION nested_pipeline(what text) RETURNS text LANGUAGE plpgsql VOLATILE AS
  $$ BEGIN
       IF what = 'begin' THEN PERFORM elt.run_begin('inner');
       ELSIF what = 'end' THEN PERFORM elt.run_end();
       ELSE PERFORM elt.replay(1); END IF;
       RETURN what;
     END $$;
SELECT elt.transform_create('nest_begin', 'nest', 'SELECT nested_pipeline(''begin'') AS k', options => '{"lineage": "table"}') > 0 AS created;
SELECT elt.transform_run('nest_begin');
SELECT elt.transform_create('nest_replay', 'nest', 'SELECT nested_pipeline(''replay'') AS k', options => '{"lineage": "table"}') > 0 AS created;
SELECT elt.transform_run('nest_replay');
SELECT elt.transform_create('nest_end', 'nest', 'SELECT nested_pipeline(''end'') AS k', options => '{"lineage": "table"}') > 0 AS created;
BEGIN;
SELECT elt.run_begin('outer') > 0 AS begun;
SELECT elt.transform_run('nest_end');
ROLLBACK;
SELECT count(*) AS nest_rows FROM nest;
SELECT count(*) AS open_runs FROM elt.runs WHERE pipeline IN ('inner', 'outer');
SELECT elt.transform_run('no_such');
SELECT elt.transform_run(NULL);

-------------------------------------------------------------------------------
-- A run per backfill chunk, with the chunk's bounds as parameters
-------------------------------------------------------------------------------
TRUNCATE copy;
SELECT elt.transform_create('copy_chunk', 'copy',
  'SELECT id, amount FROM src WHERE id >= elt.param(''lo'')::bigint AND id < elt.param(''hi'')::bigint',
  'merge') > 0 AS created;
SELECT elt.backfill_create('copy_by_chunks', 'src',
  'SELECT elt.transform_run(''copy_chunk'', jsonb_build_object(''lo'', $1, ''hi'', $2))',
  chunk_rows => 25, options => '{"target_chunk_ms": 0}') > 0 AS created;
CALL elt.backfill_run('copy_by_chunks');
SELECT state, chunks_done FROM elt.backfill_status WHERE name = 'copy_by_chunks';
SELECT count(*), sum(amount) = (SELECT sum(amount) FROM src) AS same_total FROM copy;
SELECT count(*) AS runs, sum(rows_written) AS written FROM elt.transform_runs r
JOIN elt.transform_defs d USING (transform_id) WHERE d.name = 'copy_chunk';

-------------------------------------------------------------------------------
-- OpenLineage
-------------------------------------------------------------------------------
-- the namespace defaults to postgres://<host>:<port>; pinned for the test
SET elt.openlineage_namespace = 'postgres://warehouse:5432';
SELECT run_id AS run FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id)
WHERE d.name = 'totals' ORDER BY run_id DESC LIMIT 1 \gset
SELECT e->>'eventType' AS type, e->'job'->>'name' AS job, e->>'schemaURL' AS schema_url,
       e->'run'->>'runId' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_v7,
       e->>'eventTime' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS iso_time,
       e->'job'->'namespace' = e->'inputs'->0->'namespace' AS same_namespace,
       e->'job'->'facets'->'sql'->>'query' LIKE 'SELECT grp%' AS sql_facet,
       e->'inputs'->0->>'name' AS input,
       e->'outputs'->0->>'name' AS output,
       e->'outputs'->0->'outputFacets'->'outputStatistics'->>'rowCount' AS row_count,
       jsonb_array_length(e->'outputs'->0->'facets'->'schema'->'fields') AS output_fields
FROM elt.openlineage_event(:run) e;
SELECT jsonb_pretty(elt.openlineage_event(:run)->'outputs'->0->'facets'->'columnLineage');
SELECT elt.openlineage_event(:run)->'run'->>'runId' = elt.openlineage_event(:run)->'run'->>'runId' AS stable_id;
-- a failed run is a FAIL event, with its error
SELECT run_id AS failed FROM elt.transform_runs WHERE status = 'failed' ORDER BY run_id LIMIT 1 \gset
SELECT e->>'eventType' AS type, e->'run'->'facets'->'errorMessage'->>'message' AS message,
       e->'outputs'->0->'outputFacets'->'outputStatistics'->>'rowCount' AS row_count
FROM elt.openlineage_event(:failed) e;
SELECT d.name, r.status, count(*) FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id)
WHERE r.status = 'failed' GROUP BY 1, 2 ORDER BY 1;
SELECT elt.openlineage_event(-1);
SELECT elt.openlineage_event(NULL);

-------------------------------------------------------------------------------
-- Audit
-------------------------------------------------------------------------------
SELECT action, object, details->>'version' AS version, details->>'lineage' AS lineage
FROM elt.audit_log WHERE action IN ('transform_create', 'transform_update')
ORDER BY id;
SELECT count(*) > 0 AS runs_audited FROM elt.audit_log WHERE action = 'transform_run';
SELECT valid FROM elt.audit_verify();

-------------------------------------------------------------------------------
-- A transform whose target was dropped: a clear error, and nothing recorded
-------------------------------------------------------------------------------
CREATE TABLE doomed (id bigint PRIMARY KEY, amount numeric);
SELECT elt.transform_create('doomed', 'doomed', 'SELECT id, amount FROM src WHERE id <= 3') > 0 AS created;
SELECT elt.transform_run('doomed') > 0 AS ran;
DROP TABLE doomed;
SELECT count(*) AS runs_before FROM elt.transform_runs \gset
SELECT count(*) AS versions_before FROM elt.transform_versions \gset
SELECT max(id) AS audit_before FROM elt.audit_log \gset
\set VERBOSITY sqlstate
SELECT elt.transform_run('doomed');
SELECT elt.transform_update('doomed', 'SELECT id, amount FROM src');
\set VERBOSITY default
SELECT elt.transform_run('doomed');
SELECT elt.transform_update('doomed', 'SELECT id, amount FROM src');
-- a new table of the same name is another table
CREATE TABLE doomed (id bigint PRIMARY KEY, amount numeric);
SELECT elt.transform_run('doomed');
SELECT (SELECT count(*) FROM elt.transform_runs) = :runs_before AS no_run_recorded,
       (SELECT count(*) FROM elt.transform_versions) = :versions_before AS no_version_added,
       (SELECT max(id) FROM elt.audit_log) = :audit_before AS nothing_audited;
-- what the hint says works
SELECT elt.transform_create('doomed_again', 'doomed', 'SELECT id, amount FROM src WHERE id <= 3') > 0 AS created;
SELECT elt.transform_run('doomed_again') > 0 AS ran;
SELECT count(*) AS rows_written FROM doomed;
