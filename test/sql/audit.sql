-- The hash-chained audit log: append-only, verifiable, tamper-evident.
CREATE EXTENSION elt_governance;
CREATE SCHEMA a;
CREATE TABLE a.t (id int PRIMARY KEY, v text);
SELECT elt.govern('a', 'enforce', 'initial contract');
ALTER TABLE a.t ADD COLUMN w int;
SELECT elt.approver_add('dba-team');
SELECT elt.migration_begin('rename v', 'clearer name', 'dba-team');
ALTER TABLE a.t RENAME COLUMN v TO v2;
SELECT elt.migration_end();
CREATE INDEX t_w ON a.t (w);

SELECT id, action, object, reason, length(row_hash) AS hash_len,
       prev_hash = lag(row_hash, 1, repeat('0', 64)) OVER (ORDER BY id) AS linked
FROM elt.audit_log ORDER BY id;
SELECT * FROM elt.audit_verify();

-- the row hash is the documented SHA-256, which anyone can recompute
CREATE FUNCTION pg_temp.f(x text) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN x IS NULL THEN '-1:' ELSE octet_length(x) || ':' || x END $$;
SELECT bool_and(row_hash = encode(sha256(convert_to(
           pg_temp.f(id::text) ||
           pg_temp.f((extract(epoch FROM logged_at) * 1000000)::bigint::text) ||
           pg_temp.f(role::text) || pg_temp.f(session_role::text) ||
           pg_temp.f(action) || pg_temp.f(object) || pg_temp.f(details::text) ||
           pg_temp.f(reason) || pg_temp.f(prev_hash), 'UTF8')), 'hex')) AS recomputed
FROM elt.audit_log;

-- the check does not depend on session settings
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'SQL, DMY';
SET extra_float_digits = 0;
SELECT valid, checked FROM elt.audit_verify();
RESET TimeZone;
RESET DateStyle;
RESET extra_float_digits;

-- history tables refuse UPDATE, DELETE and TRUNCATE, even from a superuser
UPDATE elt.audit_log SET reason = 'rewritten' WHERE id = 1;
DELETE FROM elt.audit_log WHERE id = 1;
TRUNCATE elt.audit_log;
UPDATE elt.schema_versions SET statement = 'nothing happened';
DELETE FROM elt.schema_versions;
TRUNCATE elt.schema_versions CASCADE;

-- a superuser who bypasses the triggers is caught by audit_verify()
SET session_replication_role = replica;
-- 1. an edited row
UPDATE elt.audit_log SET reason = 'nobody asked' WHERE id = 1;
SELECT * FROM elt.audit_verify();
UPDATE elt.audit_log SET reason = 'initial contract' WHERE id = 1;
SELECT valid FROM elt.audit_verify();
-- 2. a deleted row in the middle
CREATE TEMP TABLE kept AS SELECT * FROM elt.audit_log WHERE id = 3;
DELETE FROM elt.audit_log WHERE id = 3;
SELECT * FROM elt.audit_verify();
INSERT INTO elt.audit_log SELECT * FROM kept;
SELECT valid FROM elt.audit_verify();
-- 3. a re-linked chain: a row whose prev_hash was changed
UPDATE elt.audit_log SET prev_hash = repeat('f', 64) WHERE id = 4;
SELECT * FROM elt.audit_verify();
UPDATE elt.audit_log a SET prev_hash = p.row_hash FROM elt.audit_log p WHERE a.id = 4 AND p.id = 3;
SELECT valid FROM elt.audit_verify();
-- 4. an edited schema version
UPDATE elt.schema_versions SET statement = 'ALTER TABLE a.t ADD COLUMN nothing_to_see int'
WHERE version = 2;
SELECT * FROM elt.audit_verify();
UPDATE elt.schema_versions SET statement = 'ALTER TABLE a.t ADD COLUMN w int' WHERE version = 2;
SELECT valid FROM elt.audit_verify();
-- 5. a deleted schema version
CREATE TEMP TABLE kept_version AS SELECT * FROM elt.schema_versions WHERE version = 3;
DELETE FROM elt.schema_versions WHERE version = 3;
SELECT * FROM elt.audit_verify();
INSERT INTO elt.schema_versions SELECT * FROM kept_version;
SELECT valid FROM elt.audit_verify();
-- 6. a forged schema version
INSERT INTO elt.schema_versions
SELECT table_id, 99, relid, schema_name, table_name, 'altered', shape, 'forged', 'ALTER TABLE',
       role, xid, recorded_at, NULL
FROM elt.schema_versions WHERE version = 1;
SELECT * FROM elt.audit_verify();
DELETE FROM elt.schema_versions WHERE version = 99;
SELECT valid FROM elt.audit_verify();
-- 7. the newest rows cut off, version and audit row together: the chain
--    alone still holds, the digest taken before does not
SELECT elt.audit_digest() AS digest \gset
SELECT jsonb_object_keys(:'digest'::jsonb) AS digest_keys ORDER BY 1;
SELECT valid FROM elt.audit_verify(:'digest');
CREATE TEMP TABLE kept_tail AS SELECT * FROM elt.audit_log WHERE id = (SELECT max(id) FROM elt.audit_log);
CREATE TEMP TABLE kept_tail_version AS
SELECT v.* FROM elt.schema_versions v, kept_tail k
WHERE v.table_id = (k.details->>'table_id')::bigint AND v.version = (k.details->>'version')::int;
DELETE FROM elt.audit_log WHERE id = (SELECT id FROM kept_tail);
DELETE FROM elt.schema_versions v USING kept_tail_version k
WHERE v.table_id = k.table_id AND v.version = k.version;
SELECT valid, checked FROM elt.audit_verify();
SELECT valid, first_broken_id = (:'digest'::jsonb->>'head_id')::bigint AS at_head, detail
FROM elt.audit_verify(:'digest');
INSERT INTO elt.audit_log SELECT * FROM kept_tail;
INSERT INTO elt.schema_versions SELECT * FROM kept_tail_version;
SELECT valid FROM elt.audit_verify(:'digest');
-- cutting only the audit row leaves its version orphaned, which the chain catches
DELETE FROM elt.audit_log WHERE id = (SELECT id FROM kept_tail);
SELECT * FROM elt.audit_verify();
INSERT INTO elt.audit_log SELECT * FROM kept_tail;
-- 8. a rewritten head row is not the row the digest recorded
SELECT valid, first_broken_id = (:'digest'::jsonb->>'head_id')::bigint AS at_head
FROM elt.audit_verify(jsonb_set(:'digest'::jsonb, '{head_hash}', to_jsonb(repeat('a', 64))));
-- 9. governance changed behind the extension's back: the targets are
--    checked against what the governance actions in the chain leave behind
CREATE TEMP TABLE kept_targets AS SELECT * FROM elt.governed_targets;
DELETE FROM elt.governed_targets;
SELECT * FROM elt.audit_verify();
INSERT INTO elt.governed_targets SELECT * FROM kept_targets;
UPDATE elt.governed_targets SET policy = 'off';
SELECT * FROM elt.audit_verify();
UPDATE elt.governed_targets SET policy = 'enforce';
SELECT valid FROM elt.audit_verify();
RESET session_replication_role;

-- a digest that is not one
SELECT * FROM elt.audit_verify('{}');
SELECT * FROM elt.audit_verify('{"head_id": "x", "head_hash": 1}');
SELECT * FROM elt.audit_verify('{"head_id": -1, "head_hash": "x"}');
SELECT * FROM elt.audit_verify('{"head_id": 1e30, "head_hash": "x"}');
SELECT * FROM elt.audit_verify('{"head_id": 2.5, "head_hash": "x"}');

-- later digests still verify, and the chain grows from where it was
ALTER TABLE a.t ADD COLUMN later int;
SELECT valid FROM elt.audit_verify(:'digest');
SELECT (elt.audit_digest()->>'head_id')::bigint > (:'digest'::jsonb->>'head_id')::bigint AS grew;

-- a rolled-back subtransaction appends nothing
SELECT count(*) AS before FROM elt.audit_log \gset
BEGIN;
SAVEPOINT s;
SELECT elt.ungovern('a');
ROLLBACK TO SAVEPOINT s;
ALTER TABLE a.t ADD COLUMN in_tx int;
COMMIT;
SELECT count(*) AS added, max(action) AS action FROM elt.audit_log WHERE id > :before;

-- an empty log verifies, and its digest says so
DROP EXTENSION elt_governance;
CREATE EXTENSION elt_governance;
SELECT * FROM elt.audit_verify();
SELECT elt.audit_digest() - 'taken_at' - 'database';
-- the digest of an empty chain is contained in every later chain
SELECT elt.audit_digest() AS empty_digest \gset
SELECT * FROM elt.audit_verify(:'empty_digest');

DROP EXTENSION elt_governance;
DROP SCHEMA a CASCADE;

-------------------------------------------------------------------------------
-- Tables outside the chain, cross-checked against it: quality checks (their
-- actions replayed), transform runs and versions (each joined to the audit
-- row that recorded it), approvers (replayed)
-------------------------------------------------------------------------------
CREATE EXTENSION elt_governance;
CREATE ROLE ax_reader;
CREATE SCHEMA ax;
CREATE TABLE ax.t (id int PRIMARY KEY, v text);
CREATE TABLE ax.u (id int PRIMARY KEY);
INSERT INTO ax.t VALUES (1, 'a'), (2, 'b');
CREATE TABLE ax.totals (v text PRIMARY KEY, n bigint);
SELECT elt.check_create('ax.t', 'not_null', '{"column": "id"}') AS check_id \gset
SELECT elt.check_create('ax.t', 'accepted_values', '{"column": "v", "values": ["a", "b"]}', 'warn') > 0 AS created;
SELECT elt.check_create('ax.t', 'unique', '{"column": "v"}', 'error', 'v_unique') > 0 AS created;
SELECT elt.check_drop('ax.t', 'v_unique');
SELECT elt.transform_create('totals', 'ax.totals', 'SELECT v, count(*) AS n FROM ax.t GROUP BY v', 'replace') > 0 AS created;
SELECT elt.transform_run('totals') AS run_id \gset
-- a failed run is recorded (by a worker) and audited too
SELECT elt.transform_update('totals', 'SELECT v, count(*) / 0 AS n FROM ax.t GROUP BY v') AS version;
\set VERBOSITY terse
SELECT elt.transform_run('totals');
\set VERBOSITY default
SELECT elt.transform_update('totals', 'SELECT v, count(*) AS n FROM ax.t GROUP BY v') AS version;
SELECT elt.approver_add('qa-lead', 'signs off checks');
SELECT elt.approver_add('ops');
SELECT elt.approver_remove('ops');
SELECT * FROM elt.audit_verify();

-- what the audit rows say: checks with their relation and owner (oids, as
-- elt.check_defs has them), drops with the check_id, runs with their status
-- and run_hash, approvers with their note
SELECT id, action, object,
       details - 'relation' - 'owner' - 'run_hash' - 'code_hash' - 'previous_hash' AS details,
       (details->>'relation')::oid = 'ax.t'::regclass::oid AS on_t,
       (details->>'owner')::oid = current_user::regrole::oid AS owned,
       length(details->>'run_hash') AS run_hash_len
FROM elt.audit_log ORDER BY id;
-- the run_hash is the documented SHA-256 of the run row
SELECT count(*) AS runs, bool_and(a.details->>'run_hash' = encode(sha256(convert_to(
           pg_temp.f(r.run_id::text) || pg_temp.f(r.transform_id::text) ||
           pg_temp.f(r.version::text) || pg_temp.f(r.code_hash) || pg_temp.f(r.params::text) ||
           pg_temp.f(r.lineage) || pg_temp.f(r.status) ||
           pg_temp.f((extract(epoch FROM r.started_at) * 1000000)::bigint::text) ||
           pg_temp.f((extract(epoch FROM r.finished_at) * 1000000)::bigint::text) ||
           pg_temp.f(r.rows_read::text) || pg_temp.f(r.rows_written::text) ||
           pg_temp.f(r.rows_deleted::text) || pg_temp.f(r.role::text) || pg_temp.f(r.error) ||
           pg_temp.f(r.random_seed::text), 'UTF8')), 'hex')) AS recomputed
FROM elt.audit_log a JOIN elt.transform_runs r ON r.run_id = (a.details->>'run_id')::bigint
WHERE a.action = 'transform_run';

-- 10. quality checks edited behind the extension's back (elt.check_defs is
--     written only by the extension's owner; a superuser can still write it)
UPDATE elt.check_defs SET severity = 'warn' WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
-- a role that may not read elt.check_defs learns that it differs, not how
SET ROLE ax_reader;
SELECT * FROM elt.check_defs;
SELECT * FROM elt.audit_verify();
RESET ROLE;
UPDATE elt.check_defs SET severity = 'error' WHERE check_id = :check_id;
SELECT valid FROM elt.audit_verify();
SET ROLE ax_reader;
SELECT valid FROM elt.audit_verify();
RESET ROLE;
UPDATE elt.check_defs SET args = '{"column": "v"}' WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.check_defs SET args = '{"column": "id"}' WHERE check_id = :check_id;
UPDATE elt.check_defs SET relation = 'ax.u'::regclass WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.check_defs SET relation = 'ax.t'::regclass WHERE check_id = :check_id;
UPDATE elt.check_defs SET owner = 'ax_reader'::regrole WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.check_defs SET owner = current_user::regrole WHERE check_id = :check_id;
UPDATE elt.check_defs SET kind = 'unique' WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.check_defs SET kind = 'not_null', name = 'renamed' WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.check_defs SET name = 'not_null_id' WHERE check_id = :check_id;
SELECT valid FROM elt.audit_verify();
-- its search_path, which its SQL's names resolve with
UPDATE elt.check_defs SET search_path = 'ax_evil, pg_catalog' WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.check_defs SET search_path = '"$user", public' WHERE check_id = :check_id;
SELECT valid FROM elt.audit_verify();
-- a check deleted without check_drop
CREATE TEMP TABLE kept_check AS SELECT * FROM elt.check_defs WHERE check_id = :check_id;
DELETE FROM elt.check_defs WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
INSERT INTO elt.check_defs SELECT * FROM kept_check;
SELECT valid FROM elt.audit_verify();
-- a check inserted without check_create
INSERT INTO elt.check_defs
SELECT 99, 'forged', relation, 'expression', '{"expression": "true"}', 'warn', owner, now()
FROM elt.check_defs WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
DELETE FROM elt.check_defs WHERE check_id = 99;
SELECT valid FROM elt.audit_verify();

-- 11. transform runs and versions: append-only, so only by going around the
--     triggers
SET session_replication_role = replica;
-- a deleted run
CREATE TEMP TABLE kept_run AS SELECT * FROM elt.transform_runs WHERE run_id = :run_id;
DELETE FROM elt.transform_runs WHERE run_id = :run_id;
SELECT * FROM elt.audit_verify();
INSERT INTO elt.transform_runs SELECT * FROM kept_run;
SELECT valid FROM elt.audit_verify();
-- a run whose status changed, and one whose parameters changed (which only
-- the run_hash covers)
UPDATE elt.transform_runs SET status = 'failed', error = 'it never ran' WHERE run_id = :run_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.transform_runs SET status = 'succeeded', error = NULL WHERE run_id = :run_id;
UPDATE elt.transform_runs SET params = '{"day": "2024-01-01"}' WHERE run_id = :run_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.transform_runs SET params = '{}' WHERE run_id = :run_id;
SELECT valid FROM elt.audit_verify();
-- a failed run's error rewritten
UPDATE elt.transform_runs SET error = 'disk full' WHERE status = 'failed';
SELECT * FROM elt.audit_verify();
UPDATE elt.transform_runs SET error = '22012: division by zero' WHERE status = 'failed';
SELECT valid FROM elt.audit_verify();
-- an inserted run
INSERT INTO elt.transform_runs
SELECT 999, transform_id, version, code_hash, params, lineage, status, started_at, finished_at,
       rows_read, rows_written, rows_deleted, role, error, random_seed
FROM elt.transform_runs WHERE run_id = :run_id;
SELECT * FROM elt.audit_verify();
DELETE FROM elt.transform_runs WHERE run_id = 999;
SELECT valid FROM elt.audit_verify();
-- an audit row that no longer names its run is a modified row, not an error
UPDATE elt.audit_log SET details = jsonb_set(details, '{run_id}', '"x"') WHERE id = 6;
SELECT * FROM elt.audit_verify();
UPDATE elt.audit_log SET details = jsonb_set(details, '{run_id}', '1') WHERE id = 6;
SELECT valid FROM elt.audit_verify();
-- a transform's SQL edited under its code_hash
UPDATE elt.transform_code SET sql = 'SELECT v, 0 AS n FROM ax.t GROUP BY v'
WHERE transform_id = 1 AND version = 1;
SELECT * FROM elt.audit_verify();
UPDATE elt.transform_code SET sql = 'SELECT v, count(*) AS n FROM ax.t GROUP BY v'
WHERE transform_id = 1 AND version = 1;
SELECT valid FROM elt.audit_verify();
-- a version deleted, and one forged
CREATE TEMP TABLE kept_code AS SELECT * FROM elt.transform_code WHERE transform_id = 1 AND version = 3;
DELETE FROM elt.transform_code WHERE transform_id = 1 AND version = 3;
SELECT * FROM elt.audit_verify();
INSERT INTO elt.transform_code SELECT * FROM kept_code;
UPDATE kept_code SET version = 4;
INSERT INTO elt.transform_code SELECT * FROM kept_code;
SELECT * FROM elt.audit_verify();
DELETE FROM elt.transform_code WHERE transform_id = 1 AND version = 4;
SELECT valid FROM elt.audit_verify();
RESET session_replication_role;

-- 12. approvers added or removed by hand
INSERT INTO elt.approvers VALUES ('mallory', current_user, now(), 'trust me');
SELECT * FROM elt.audit_verify();
DELETE FROM elt.approvers WHERE approver = 'mallory';
CREATE TEMP TABLE kept_approver AS SELECT * FROM elt.approvers WHERE approver = 'qa-lead';
DELETE FROM elt.approvers WHERE approver = 'qa-lead';
SELECT * FROM elt.audit_verify();
INSERT INTO elt.approvers SELECT * FROM kept_approver;
UPDATE elt.approvers SET note = 'signs off anything' WHERE approver = 'qa-lead';
SELECT * FROM elt.audit_verify();
UPDATE elt.approvers SET note = 'signs off checks' WHERE approver = 'qa-lead';
SELECT valid FROM elt.audit_verify();

-- 13. a forced promotion that makes a view again moves its checks, and each
--     move is audited (check_moved), so the chain still accounts for them;
--     so does the rollback, which makes it again
CREATE SCHEMA ay;
CREATE TABLE ay.t (id int PRIMARY KEY, a int);
SELECT elt.deploy_init('ay') AS tables;
SELECT elt.deploy_prepare('ay') AS candidate;
DROP TABLE ay__green.t;
CREATE TABLE ay__green.t (id int PRIMARY KEY, a text);
SELECT elt.check_create('ay.t', 'not_null', '{"column": "a"}', 'warn') AS moving_check \gset
SELECT 'ay.t'::regclass::oid AS old_view \gset
SELECT elt.migration_begin('retype ay.t.a', 'codes are text now', 'qa-lead') > 0 AS begun;
SELECT elt.deploy_promote('ay', 'retype a', force => true) > 0 AS promoted;
SELECT elt.migration_end() > 0 AS ended;
SELECT 'ay.t'::regclass::oid <> :old_view AS view_made_again,
       relation = 'ay.t'::regclass::oid AS check_followed
FROM elt.check_defs WHERE check_id = :moving_check;
SELECT valid, detail FROM elt.audit_verify();
SELECT elt.deploy_rollback('ay', 'back to int') > 0 AS rolled_back;
SELECT action, object, reason, details->>'name' AS name,
       (details->>'relation')::oid = 'ay.t'::regclass::oid AS to_the_view_now
FROM elt.audit_log WHERE action = 'check_moved' ORDER BY id;
SELECT valid, detail FROM elt.audit_verify();
-- a move that went unaudited (as 0.6.0 made them) would be caught
UPDATE elt.check_defs SET relation = 'ay__blue.t'::regclass WHERE check_id = :moving_check;
SELECT valid, detail FROM elt.audit_verify();
UPDATE elt.check_defs SET relation = 'ay.t'::regclass WHERE check_id = :moving_check;
SELECT valid FROM elt.audit_verify();

-- 14. migration windows and the approvals that opened them
UPDATE elt.migration_windows SET approved_by = 'nobody' WHERE name = 'retype ay.t.a';
SELECT * FROM elt.audit_verify();
UPDATE elt.migration_windows SET approved_by = 'qa-lead', closed_at = NULL WHERE name = 'retype ay.t.a';
SELECT * FROM elt.audit_verify();
UPDATE elt.migration_windows SET closed_at = opened_at WHERE name = 'retype ay.t.a';
SELECT valid FROM elt.audit_verify();
SELECT session_user AS me \gset
SET elt.require_second_approver = on;
SELECT elt.approver_add('ax_reader');
SET SESSION AUTHORIZATION ax_reader;
SELECT elt.migration_approve('widen', :'me') > 0 AS approved;
RESET SESSION AUTHORIZATION;
SELECT elt.migration_begin('widen', 'bigger ids', 'ax_reader') > 0 AS begun;
SELECT elt.migration_end() > 0 AS ended;
RESET elt.require_second_approver;
SELECT valid, detail FROM elt.audit_verify();
UPDATE elt.migration_approvals SET approver = 'qa-lead' WHERE name = 'widen';
SELECT * FROM elt.audit_verify();
UPDATE elt.migration_approvals SET approver = 'ax_reader', migration_id = NULL WHERE name = 'widen';
SELECT * FROM elt.audit_verify();
UPDATE elt.migration_approvals a SET migration_id = w.migration_id
FROM elt.migration_windows w WHERE a.name = 'widen' AND w.name = 'widen';
INSERT INTO elt.migration_approvals (approval_id, name, approver, requested_by, approved_at)
VALUES (99, 'widen', 'ax_reader', :'me', now());
SELECT * FROM elt.audit_verify();
DELETE FROM elt.migration_approvals WHERE approval_id = 99;
SELECT valid FROM elt.audit_verify();

-- 15. audit rows written before 0.7.0 carry less: they still verify, and
--     what they carry is still compared.  Rewrite the rows as 0.6.0 wrote
--     them, then re-link the chain (which anyone with the hash recipe can:
--     only a digest kept outside the database tells such a chain apart).
CREATE FUNCTION pg_temp.rechain() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
    prev text := repeat('0', 64);
    h text;
BEGIN
    FOR r IN SELECT * FROM elt.audit_log ORDER BY id LOOP
        h := encode(sha256(convert_to(
                 pg_temp.f(r.id::text) ||
                 pg_temp.f((extract(epoch FROM r.logged_at) * 1000000)::bigint::text) ||
                 pg_temp.f(r.role::text) || pg_temp.f(r.session_role::text) ||
                 pg_temp.f(r.action) || pg_temp.f(r.object) || pg_temp.f(r.details::text) ||
                 pg_temp.f(r.reason) || pg_temp.f(prev), 'UTF8')), 'hex');
        UPDATE elt.audit_log SET prev_hash = prev, row_hash = h WHERE id = r.id;
        prev := h;
    END LOOP;
END $$;
SET session_replication_role = replica;
UPDATE elt.audit_log SET details = details - 'relation' - 'owner' WHERE action = 'check_create';
UPDATE elt.audit_log SET details = details - 'check_id' WHERE action = 'check_drop';
UPDATE elt.audit_log SET details = details - 'note' WHERE action = 'approver_added';
UPDATE elt.audit_log SET details = details - 'opened_by' WHERE action = 'migration_begun';
UPDATE elt.audit_log SET details = details - 'run_hash' - 'status'
WHERE action = 'transform_run' AND details->>'status' = 'succeeded';
UPDATE elt.audit_log SET details = details - 'run_hash' - 'transform_id' - 'code_hash' - 'lineage'
WHERE action = 'transform_run' AND details->>'status' = 'failed';
SELECT * FROM elt.audit_verify();
SELECT pg_temp.rechain();
SELECT * FROM elt.audit_verify();
-- a legacy run: the fields its details carry are compared, not the others
UPDATE elt.transform_runs SET status = 'failed' WHERE run_id = :run_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.transform_runs SET status = 'succeeded' WHERE run_id = :run_id;
-- a legacy check: name, kind, args and severity are compared, not its
-- relation and owner, which its details do not carry
UPDATE elt.check_defs SET severity = 'warn' WHERE check_id = :check_id;
SELECT * FROM elt.audit_verify();
UPDATE elt.check_defs SET severity = 'error' WHERE check_id = :check_id;
-- a legacy approver: its added_by is compared, not its note
UPDATE elt.approvers SET added_by = 'ax_reader' WHERE approver = 'qa-lead';
SELECT * FROM elt.audit_verify();
UPDATE elt.approvers SET added_by = current_user WHERE approver = 'qa-lead';
SELECT valid FROM elt.audit_verify();
RESET session_replication_role;

SET client_min_messages = warning;
DROP EXTENSION elt_governance;
DROP SCHEMA ax, ay, ay__blue, ay__green CASCADE;
DROP ROLE ax_reader;
RESET client_min_messages;
