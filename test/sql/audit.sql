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
