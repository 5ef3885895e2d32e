-- OpenLineage: a transform run as an OpenLineage RunEvent, built from the
-- catalog by elt.openlineage_event(run_id).  The extension sends nothing
-- anywhere (it has no HTTP client): what SQL reaches is the event and the
-- setting elt.openlineage_namespace.  The event's fields for a run, its
-- column lineage and a failed run's error are asserted in the transform
-- suite, its validity against the OpenLineage schema in TAP 008.  Here:
-- the setting and its bad values, what the event takes from the run and
-- what from the catalog as it is now, and what a role that owns nothing
-- gets.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = notice;

CREATE SCHEMA ol;
CREATE TABLE ol.src (id int PRIMARY KEY, region text NOT NULL, amount numeric(10,2));
INSERT INTO ol.src SELECT g, (ARRAY['north', 'south'])[1 + g % 2], g FROM generate_series(1, 20) g;
CREATE TABLE ol.by_region (region text PRIMARY KEY, total numeric);
CREATE TABLE ol.copy (id int PRIMARY KEY, amount numeric);
SELECT elt.transform_create('ol_regions', 'ol.by_region',
  'SELECT region, sum(amount) AS total FROM ol.src GROUP BY region', 'replace') > 0 AS created;
SELECT elt.transform_create('ol_copy', 'ol.copy', 'SELECT id, amount FROM ol.src WHERE id <= 5') > 0 AS created;
SELECT elt.transform_run('ol_regions') AS ok_run \gset
SELECT elt.transform_run('ol_copy') > 0 AS ran;
-- the second run writes the same keys again: it fails, and is recorded as failed
\set VERBOSITY terse
SELECT elt.transform_run('ol_copy');
\set VERBOSITY default
SELECT run_id AS failed_run FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id)
WHERE d.name = 'ol_copy' AND r.status = 'failed' \gset
SELECT d.name, r.status FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id)
WHERE d.name LIKE 'ol\_%' ORDER BY r.run_id;

-------------------------------------------------------------------------------
-- The namespace setting
-------------------------------------------------------------------------------
-- empty by default, which means postgres://<host name>:<port of this server>
SHOW elt.openlineage_namespace;
SELECT e->'job'->>'namespace' ~ ('^postgres://[^:/]+:' || current_setting('port') || '$') AS default_namespace
FROM elt.openlineage_event(:ok_run) e;
-- a set namespace is the one of every job and dataset in the event
SET elt.openlineage_namespace = 'postgres://warehouse.example:5432';
SELECT count(*) AS namespaces, count(DISTINCT ns) AS distinct_namespaces, min(ns #>> '{}') AS namespace
FROM elt.openlineage_event(:ok_run) e, jsonb_path_query(e, 'strict $.**.namespace') ns;
-- it is not checked as a URL; quotes and backslashes stay a JSON string
SET elt.openlineage_namespace = 'warehouse "east"\1';
SELECT e->'job'->>'namespace' AS namespace, jsonb_typeof(e->'job'->'namespace') AS type
FROM elt.openlineage_event(:ok_run) e;
-- empty again is the default again
SET elt.openlineage_namespace = '';
SELECT e->'job'->>'namespace' ~ ('^postgres://[^:/]+:' || current_setting('port') || '$') AS default_namespace
FROM elt.openlineage_event(:ok_run) e;
RESET elt.openlineage_namespace;
-- a misspelled name under the extension's prefix is refused, not invented
SET elt.openlineage_namespac = 'postgres://warehouse:5432';

-------------------------------------------------------------------------------
-- What the event takes from the run
-------------------------------------------------------------------------------
-- the event time is the run's end, in UTC; the run id starts with the
-- run's start in milliseconds (UUIDv7) and differs between runs
SELECT r.status, (e->>'eventTime')::timestamptz = r.finished_at AS time_is_finish,
       replace(e->'run'->>'runId', '-', '')
         LIKE lpad(to_hex((EXTRACT(epoch FROM r.started_at) * 1000)::int8), 12, '0') || '7%' AS id_has_start
FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id), elt.openlineage_event(r.run_id) e
WHERE d.name LIKE 'ol\_%' ORDER BY r.run_id;
SELECT count(DISTINCT e->'run'->>'runId') AS run_ids, count(*) AS runs
FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id), elt.openlineage_event(r.run_id) e
WHERE d.name LIKE 'ol\_%';
-- one producer, named by every facet
SELECT e->>'producer' LIKE 'https://github.com/elt-governance/elt_governance/%' AS producer_url,
       count(*) AS facets, bool_and(p = e->'producer') AS same_producer
FROM elt.openlineage_event(:ok_run) e, jsonb_path_query(e, 'strict $.**._producer') p GROUP BY e;
-- the session's settings do not change the event
SELECT elt.openlineage_event(:ok_run)::text AS ok_event \gset
SET TimeZone = 'Pacific/Kiritimati';
SET DateStyle = 'SQL, DMY';
SET extra_float_digits = -3;
SELECT elt.openlineage_event(:ok_run)::text = :'ok_event' AS same_event;
RESET TimeZone;
RESET DateStyle;
RESET extra_float_digits;
-- the SQL facet is the run's version of the transform, not the current one
SELECT elt.transform_update('ol_regions',
  'SELECT region, sum(amount) * 2 AS total FROM ol.src GROUP BY region') AS version;
SELECT e->'job'->'facets'->'sql'->>'query' AS query FROM elt.openlineage_event(:ok_run) e;

-------------------------------------------------------------------------------
-- What the event takes from the catalog as it is now
-------------------------------------------------------------------------------
-- the input's schema facet lists the source's current columns and types
ALTER TABLE ol.src ADD COLUMN note varchar(20);
SELECT f->>'name' AS name, f->>'type' AS type
FROM elt.openlineage_event(:ok_run) e, jsonb_array_elements(e->'inputs'->0->'facets'->'schema'->'fields') f;
-- datasets are named by the tables' current names
ALTER TABLE ol.by_region RENAME TO regions;
SELECT e->'inputs'->0->>'name' = current_database() || '.ol.src' AS input_name,
       e->'outputs'->0->>'name' = current_database() || '.ol.regions' AS output_name
FROM elt.openlineage_event(:ok_run) e;

-------------------------------------------------------------------------------
-- A role that owns nothing
-------------------------------------------------------------------------------
SELECT elt.openlineage_event(:ok_run)::text AS ok_event \gset
SELECT elt.openlineage_event(:failed_run)::text AS failed_event \gset
CREATE ROLE ol_nobody;
SET ROLE ol_nobody;
-- it reads the setting, but may not change it
SHOW elt.openlineage_namespace;
SET elt.openlineage_namespace = 'postgres://mine:1';
-- it gets the event of a run as it is
SELECT elt.openlineage_event(:ok_run)::text = :'ok_event' AS same_event;
-- and of a failed run, all but the error message, which may quote values
SELECT e #- '{run,facets,errorMessage,message}' = (:'failed_event')::jsonb #- '{run,facets,errorMessage,message}'
         AS same_but_message,
       e->'run'->'facets'->'errorMessage'->>'message' AS message,
       (:'failed_event')::jsonb->'run'->'facets'->'errorMessage'->>'message' LIKE '23505:%' AS owner_sees_error
FROM elt.openlineage_event(:failed_run) e;
-- errors are the same as for anyone
SELECT elt.openlineage_event(9223372036854775807);
RESET ROLE;
DROP ROLE ol_nobody;
