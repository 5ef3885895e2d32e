-- Quality checks: elt.check_create, elt.check_drop, elt.check_run and
-- elt.check_results on their own (deploy.sql covers them as gates of a
-- promotion, security.sql as the owner's rights)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS elt_governance;

CREATE SCHEMA qc;
CREATE TABLE qc.items (id int PRIMARY KEY, name text, qty int);
INSERT INTO qc.items VALUES (1, 'a', 1), (2, NULL, 2), (3, 'c', -3), (4, NULL, 4);
CREATE TABLE qc.empty (id int PRIMARY KEY);
CREATE SCHEMA qc_none;
-- the checks' owner, and a role that owns nothing and may read nothing here
CREATE ROLE qc_owner;
GRANT USAGE ON SCHEMA qc TO qc_owner;
GRANT SELECT ON qc.items, qc.empty TO qc_owner;
CREATE ROLE qc_nobody;
GRANT USAGE ON SCHEMA qc TO qc_nobody;
SET ROLE qc_owner;

-- the name defaults to the kind and its column
SELECT elt.check_create('qc.items', 'not_null', '{"column": "name"}') AS name_check \gset
SELECT name, kind, severity FROM elt.checks WHERE check_id = :name_check;
SELECT elt.check_create('qc.items', 'expression', '{"expression": "qty > 0"}', 'warn', 'qty_positive') > 0 AS created;

-- bad input
SELECT elt.check_create(NULL, 'not_null', '{"column": "name"}');
SELECT elt.check_create('qc.items', 'not_null', '{"column": "name"}', 'error', '');
SELECT elt.check_create('qc.items', 'not_null', '{"column": "name"}', 'error', repeat('n', 64));
SELECT elt.check_create('qc.items', 'expression', '{"expression": "no_such_column > 0"}');
SELECT elt.check_drop(NULL, 'qty_positive');
SELECT elt.check_drop('qc.items', 'no_such_check');
SELECT elt.check_drop('qc.empty', 'qty_positive');

-- a run: a failing error check, a failing warning
SELECT check_name, kind, severity, status, failing_rows, jsonb_array_length(sample) AS sampled, message
FROM elt.check_run('qc.items') ORDER BY check_name;
-- a relation without checks, a schema without checks
SELECT count(*) AS no_checks FROM elt.check_run('qc.empty');
SELECT count(*) AS no_checks_in_schema FROM elt.check_run('qc_none');
SELECT * FROM elt.check_run('qc.no_such_table');
-- the results are kept, by whom and without a run
SELECT check_name, status, failing_rows, checked_by::text, run_id IS NULL AS outside_a_run, deployment_id IS NULL AS no_deployment
FROM elt.check_results WHERE checked_relation = 'qc.items' ORDER BY result_id;
RESET ROLE;

-- a role that owns nothing
SET ROLE qc_nobody;
SELECT elt.check_create('qc.items', 'not_null', '{"column": "id"}');
SELECT check_name, status, failing_rows, sample, message FROM elt.check_run('qc.items') ORDER BY check_name;
SELECT elt.check_drop('qc.items', 'qty_positive');
SELECT count(*) AS results_it_sees FROM elt.check_results WHERE checked_relation = 'qc.items';
RESET ROLE;
-- its refused run is kept, as its own
SELECT check_name, status, failing_rows IS NULL AS no_count FROM elt.check_results
WHERE checked_by = 'qc_nobody'::regrole ORDER BY check_name;

-- the audit details: a search_path with a quote in it stays valid JSON
CREATE SCHEMA "qc""q";
SET search_path = "qc""q", public;
SET ROLE qc_owner;
SELECT elt.check_create('qc.items', 'unique', '{"column": "id"}', 'error', 'id_unique') > 0 AS created;
RESET ROLE;
RESET search_path;
SELECT details ->> 'name' AS name, details ->> 'kind' AS kind, details ->> 'search_path' AS search_path,
       details -> 'args' AS args, details ? 'relation' AS has_relation, details ? 'owner' AS has_owner
FROM elt.audit_trail WHERE action = 'check_create' ORDER BY id DESC LIMIT 1;
SELECT elt.check_drop('qc.items', 'id_unique');
SELECT details ->> 'name' AS name, details ? 'check_id' AS has_check_id, object
FROM elt.audit_trail WHERE action = 'check_drop' ORDER BY id DESC LIMIT 1;
-- dropped checks keep their results; the view of checks forgets them
SELECT elt.check_drop('qc.items', 'qty_positive');
SELECT count(*) AS checks_left FROM elt.checks WHERE relation = 'qc.items'::regclass;
SELECT count(*) AS results_kept FROM elt.check_results WHERE check_name = 'qty_positive' AND checked_relation = 'qc.items';

DROP SCHEMA "qc""q";
DROP SCHEMA qc_none;
SELECT elt.check_drop('qc.items', 'not_null_name');
DROP SCHEMA qc CASCADE;
DROP OWNED BY qc_owner, qc_nobody;
DROP ROLE qc_owner, qc_nobody;
