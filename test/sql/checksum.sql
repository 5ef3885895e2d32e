-- Reproducible runs, first part: the environment fingerprint and table checksums
SET client_min_messages = warning;
SET DateStyle = ISO;

-------------------------------------------------------------------------------
-- The row hash is SipHash-1-3-128: checked against the reference vectors
-------------------------------------------------------------------------------
SELECT elt._checksum_selftest() AS siphash_reference_vectors;

-------------------------------------------------------------------------------
-- Table checksums
-------------------------------------------------------------------------------
CREATE SCHEMA ck;
CREATE TABLE ck.a (id bigint PRIMARY KEY, amount numeric(12,2), label text, note text,
                   at timestamptz, doc jsonb, ratio float8, day date, flag boolean,
                   raw bytea, tag uuid, ints int[], small int2);
INSERT INTO ck.a
SELECT g, (g * 1.25)::numeric(12,2), 'label ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'note' END,
       '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 hour',
       jsonb_build_object('g', g, 'even', g % 2 = 0), g / 3.0, DATE '2026-01-01' + g, g % 2 = 0,
       decode(md5(g::text), 'hex'), md5(g::text)::uuid, ARRAY[g::int, NULL, 7], g::int2
FROM generate_series(1, 500) g;
SELECT elt.table_checksum('ck.a') AS a \gset
SELECT :'a' ~ '^v1:500:[0-9a-f]{32}$' AS format_ok;

-- the same rows inserted in another order
CREATE TABLE ck.b (LIKE ck.a INCLUDING ALL);
INSERT INTO ck.b SELECT * FROM ck.a ORDER BY md5(id::text);
SELECT elt.table_checksum('ck.b') = :'a' AS other_order;
-- after CLUSTER and VACUUM FULL
CLUSTER ck.b USING b_pkey;
SELECT elt.table_checksum('ck.b') = :'a' AS after_cluster;
UPDATE ck.b SET note = note WHERE id % 7 = 0;
VACUUM FULL ck.b;
SELECT elt.table_checksum('ck.b') = :'a' AS after_vacuum_full;
-- under other settings
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Pacific/Chatham';
SET extra_float_digits = -3;
SET IntervalStyle = 'sql_standard';
SET bytea_output = 'escape';
SELECT elt.table_checksum('ck.b') = :'a' AS other_settings;
RESET DateStyle;
RESET TimeZone;
RESET extra_float_digits;
RESET IntervalStyle;
RESET bytea_output;
SET DateStyle = ISO;

-- what must change it
BEGIN;
UPDATE ck.b SET amount = amount + 0.01 WHERE id = 250;
SELECT elt.table_checksum('ck.b') <> :'a' AS one_changed_value;
ROLLBACK;
BEGIN;
UPDATE ck.b SET note = '' WHERE id = 3;      -- was NULL
SELECT elt.table_checksum('ck.b') <> :'a' AS null_vs_empty;
ROLLBACK;
BEGIN;
UPDATE ck.b SET note = 'NULL' WHERE id = 3;
SELECT elt.table_checksum('ck.b') <> :'a' AS null_vs_text_null;
ROLLBACK;
BEGIN;
UPDATE ck.b SET label = note, note = label WHERE id = 1;
SELECT elt.table_checksum('ck.b') <> :'a' AS swapped_between_columns;
ROLLBACK;
BEGIN;
DELETE FROM ck.b WHERE id = 17;
SELECT elt.table_checksum('ck.b') <> :'a' AS deleted_row;
ROLLBACK;
-- column boundaries are unambiguous
CREATE TABLE ck.bnd (x text, y text);
INSERT INTO ck.bnd VALUES ('ab', 'c');
SELECT elt.table_checksum('ck.bnd') AS bnd \gset
UPDATE ck.bnd SET x = 'a', y = 'bc';
SELECT elt.table_checksum('ck.bnd') <> :'bnd' AS column_boundary;

-- a duplicated row counts (a sum, not XOR, of the row hashes)
CREATE TABLE ck.d (v text);
INSERT INTO ck.d VALUES ('x'), ('y');
SELECT elt.table_checksum('ck.d') AS d \gset
INSERT INTO ck.d VALUES ('x');
SELECT elt.table_checksum('ck.d') <> :'d' AS duplicated_row;
INSERT INTO ck.d VALUES ('x');
SELECT elt.table_checksum('ck.d') <> :'d' AS duplicated_twice;
SELECT split_part(elt.table_checksum('ck.d'), ':', 2) AS rows;
-- an empty table
CREATE TABLE ck.empty (v text);
SELECT elt.table_checksum('ck.empty');

-- jsonb and numeric are read from their stored form: nested values, bare
-- scalars, numerics with short and long headers, special values, TOASTed values
CREATE TABLE ck.j (id int, doc jsonb, n numeric, t text);
INSERT INTO ck.j VALUES
  (1, '{"b": [1, 2.50, {"c": null}], "a": true}', 1e300, 'x'),
  (2, '"bare"', -1e-300, ''),
  (3, '[]', 'NaN', NULL),
  (4, (SELECT jsonb_agg(g) FROM generate_series(1, 5000) g), '-Infinity', repeat('long text ', 1000)),
  (5, NULL, NULL, 'y');
SELECT elt.table_checksum('ck.j') AS j \gset
CREATE TABLE ck.j2 (t text, n numeric, doc jsonb, id int);
INSERT INTO ck.j2 SELECT t, n, doc::text::jsonb, id FROM ck.j ORDER BY id DESC;
SELECT elt.table_checksum('ck.j2', ARRAY['id', 'doc', 'n', 't']) = :'j' AS jsonb_numeric_same;
BEGIN;
UPDATE ck.j2 SET doc = '{"b": [1, 2.5, {"c": null}], "a": true}' WHERE id = 1;
SELECT elt.table_checksum('ck.j2', ARRAY['id', 'doc', 'n', 't']) <> :'j' AS numeric_scale_in_jsonb;
ROLLBACK;
BEGIN;
UPDATE ck.j2 SET doc = '{"b": [1, 2.50, {"c": null}], "a": "true"}' WHERE id = 1;
SELECT elt.table_checksum('ck.j2', ARRAY['id', 'doc', 'n', 't']) <> :'j' AS string_vs_boolean;
ROLLBACK;
BEGIN;
UPDATE ck.j2 SET doc = '["bare"]' WHERE id = 2;
SELECT elt.table_checksum('ck.j2', ARRAY['id', 'doc', 'n', 't']) <> :'j' AS scalar_vs_array;
ROLLBACK;
BEGIN;
UPDATE ck.j2 SET n = -1.0e-300 WHERE id = 2;
SELECT elt.table_checksum('ck.j2', ARRAY['id', 'doc', 'n', 't']) <> :'j' AS numeric_scale;
ROLLBACK;
BEGIN;
UPDATE ck.j2 SET doc = doc || '5001'::jsonb WHERE id = 4;
SELECT elt.table_checksum('ck.j2', ARRAY['id', 'doc', 'n', 't']) <> :'j' AS toasted_value_changed;
ROLLBACK;

-- arrays and composites are encoded element by element: a NULL bitmap left
-- over by an update, or a type's oid, does not count; every NaN is one NaN
CREATE TYPE ck.pair AS (x int, y text);
CREATE TABLE ck.arr (id int, a int[], p ck.pair, f float8, ps ck.pair[]);
INSERT INTO ck.arr VALUES (1, ARRAY[1, NULL, 3], ROW(1, 'one'), 'NaN', ARRAY[ROW(2, 'two')::ck.pair]),
                          (2, '[0:1]={4,5}', ROW(NULL, ''), 1.5, NULL);
CREATE TABLE ck.arr2 (LIKE ck.arr);
INSERT INTO ck.arr2 VALUES (1, ARRAY[1, 2, 3], ROW(1, 'one'), 'Infinity'::float8 - 'Infinity'::float8,
                            ARRAY[ROW(2, 'two')::ck.pair]),
                           (2, '[0:1]={4,5}', ROW(NULL, ''), 1.5, NULL);
UPDATE ck.arr2 SET a[2] = NULL WHERE id = 1;
SELECT elt.table_checksum('ck.arr') = elt.table_checksum('ck.arr2') AS same_arrays_composites_nans;
UPDATE ck.arr2 SET a[2] = 2 WHERE id = 1;
UPDATE ck.arr SET a = ARRAY[1, 2, 3] WHERE id = 1;
SELECT elt.table_checksum('ck.arr') = elt.table_checksum('ck.arr2') AS null_bitmap_left_over;
UPDATE ck.arr2 SET a = '{4,5}' WHERE id = 2;
SELECT elt.table_checksum('ck.arr') <> elt.table_checksum('ck.arr2') AS lower_bound_counts;
UPDATE ck.arr2 SET a = '[0:1]={4,5}', p = ROW(NULL, NULL) WHERE id = 2;
SELECT elt.table_checksum('ck.arr') <> elt.table_checksum('ck.arr2') AS null_vs_empty_field;

-- a subset of the columns, in the order given
SELECT elt.table_checksum('ck.a', ARRAY['id', 'label']) = elt.table_checksum('ck.b', ARRAY['id', 'label'])
  AS subset;
SELECT elt.table_checksum('ck.a', ARRAY['id', 'label']) <> elt.table_checksum('ck.a', ARRAY['label', 'id'])
  AS order_matters;
BEGIN;
UPDATE ck.b SET note = 'changed';
SELECT elt.table_checksum('ck.a', ARRAY['id', 'label']) = elt.table_checksum('ck.b', ARRAY['id', 'label'])
  AS other_columns_ignored;
ROLLBACK;

-- a partitioned table: its partitions' rows, whatever their column order
CREATE TABLE ck.p (id bigint, label text, day date) PARTITION BY RANGE (id);
CREATE TABLE ck.p1 (day date, label text, id bigint);
ALTER TABLE ck.p ATTACH PARTITION ck.p1 FOR VALUES FROM (0) TO (250);
CREATE TABLE ck.p2 PARTITION OF ck.p FOR VALUES FROM (250) TO (1000);
INSERT INTO ck.p SELECT id, label, day FROM ck.a;
CREATE TABLE ck.flat AS SELECT id, label, day FROM ck.a;
SELECT elt.table_checksum('ck.p') = elt.table_checksum('ck.flat') AS partitioned;
-- a materialized view
CREATE MATERIALIZED VIEW ck.mv AS SELECT id, label, day FROM ck.a;
SELECT elt.table_checksum('ck.mv') = elt.table_checksum('ck.flat') AS matview;
CREATE MATERIALIZED VIEW ck.mv_empty AS SELECT 1 AS x WITH NO DATA;
SELECT elt.table_checksum('ck.mv_empty');

-- bad input: clear errors
CREATE VIEW ck.v AS SELECT * FROM ck.a;
SELECT elt.table_checksum('ck.v');
SELECT elt.table_checksum('ck.a', ARRAY['id', 'nope']);
SELECT elt.table_checksum('ck.a', ARRAY['id', 'id']);
SELECT elt.table_checksum('ck.a', ARRAY[]::text[]);
SELECT elt.table_checksum('ck.a', ARRAY['id', NULL]);
SELECT elt.table_checksum(NULL) IS NULL AS null_relation;
CREATE TABLE ck.pt (p point);
INSERT INTO ck.pt VALUES ('(1,2)');
SELECT elt.table_checksum('ck.pt') ~ '^v1:1:' AS point_by_send;

-- privileges: the caller's own right to read
CREATE ROLE ck_reader;
GRANT USAGE ON SCHEMA ck TO ck_reader;
GRANT SELECT (id, label) ON ck.a TO ck_reader;
SET ROLE ck_reader;
SELECT elt.table_checksum('ck.a', ARRAY['id', 'label']) = elt.table_checksum('ck.a', ARRAY['id', 'label'])
  AS granted_columns;
SELECT elt.table_checksum('ck.a');
SELECT elt.table_checksum('ck.a', ARRAY['id', 'note']);
RESET ROLE;
-- row-level security applies to the caller: refused rather than partial
CREATE TABLE ck.secret (id int, owner name);
INSERT INTO ck.secret VALUES (1, 'ck_reader'), (2, 'someone');
ALTER TABLE ck.secret ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON ck.secret USING (owner = current_user);
GRANT SELECT ON ck.secret TO ck_reader;
SET ROLE ck_reader;
SELECT elt.table_checksum('ck.secret');
RESET ROLE;
SELECT elt.table_checksum('ck.secret') ~ '^v1:2:' AS owner_reads_all;

-------------------------------------------------------------------------------
-- Checksums by key range
-------------------------------------------------------------------------------
SELECT segment, lower, upper, row_count FROM elt.table_checksum_ranges('ck.a', 'id', 4) ORDER BY segment;
-- the ranges add up to the table
SELECT sum(row_count) AS rows FROM elt.table_checksum_ranges('ck.a', 'id', 7);
-- the same bounds on a table with one changed row: only its range differs
BEGIN;
UPDATE ck.b SET label = 'changed' WHERE id = 321;
SELECT a.segment, a.lower, a.upper, a.row_count
FROM elt.table_checksum_ranges('ck.a', 'id', 4) a
JOIN elt.table_checksum_ranges('ck.b', 'id',
       (SELECT array_agg(upper ORDER BY segment) FILTER (WHERE upper IS NOT NULL)
        FROM elt.table_checksum_ranges('ck.a', 'id', 4))) b USING (segment)
WHERE a.checksum <> b.checksum;
ROLLBACK;
-- over some columns: a change in another column leaves every range the same,
-- and each range equals the whole-table checksum of those columns restricted to it
BEGIN;
UPDATE ck.b SET label = 'changed' WHERE id = 321;
SELECT count(*) FILTER (WHERE a.checksum <> b.checksum) AS differing_ranges
FROM elt.table_checksum_ranges('ck.a', 'id', 4, ARRAY['id', 'amount']) a
JOIN elt.table_checksum_ranges('ck.b', 'id',
       (SELECT array_agg(upper ORDER BY segment) FILTER (WHERE upper IS NOT NULL)
        FROM elt.table_checksum_ranges('ck.a', 'id', 4)), ARRAY['id', 'amount']) b USING (segment);
ROLLBACK;
SELECT (SELECT checksum FROM elt.table_checksum_ranges('ck.a', 'id', 1, ARRAY['id', 'amount']) WHERE segment = 1)
       = elt.table_checksum('ck.a', ARRAY['id', 'amount']) AS ranges_use_columns;
SELECT * FROM elt.table_checksum_ranges('ck.a', 'id', 4, ARRAY['nope']);
-- dates as bounds, in canonical text, read back under another DateStyle
SET DateStyle = 'SQL, DMY';
SELECT segment, lower, upper, row_count FROM elt.table_checksum_ranges('ck.a', 'day', ARRAY['2026-03-01', '2026-06-01'])
ORDER BY segment;
SET DateStyle = ISO;
-- NULL keys in segment 0; one segment is the whole table
SELECT segment, lower, upper, row_count FROM elt.table_checksum_ranges('ck.a', 'note', 1) ORDER BY segment;
SELECT checksum = elt.table_checksum('ck.a') AS one_segment_is_the_table
FROM elt.table_checksum_ranges('ck.a', 'id', 1) WHERE segment = 1;
-- skewed keys: repeated quantiles give fewer ranges (segment 0, for NULL keys, is always listed)
SELECT count(*) FILTER (WHERE segment > 0) AS segments FROM elt.table_checksum_ranges('ck.d', 'v', 10);
-- bad input
SELECT * FROM elt.table_checksum_ranges('ck.a', 'nope', 4);
SELECT * FROM elt.table_checksum_ranges('ck.a', 'id', 0);
SELECT * FROM elt.table_checksum_ranges('ck.a', 'id', ARRAY['10', '5']);
SELECT * FROM elt.table_checksum_ranges('ck.a', 'id', ARRAY['10', NULL]);
SELECT * FROM elt.table_checksum_ranges('ck.a', 'id', ARRAY['ten']);
SELECT * FROM elt.table_checksum_ranges('ck.pt', 'p', 2);
SELECT * FROM elt.table_checksum_ranges('ck.a', NULL, 2);

-------------------------------------------------------------------------------
-- Snapshots
-------------------------------------------------------------------------------
SELECT elt.snapshot_create('ck.a') AS s1 \gset
SELECT source_name, storage ~ '^elt_snapshots\.s_[0-9a-f]{24}$' AS content_named, row_count,
       checksum = elt.table_checksum('ck.a') AS checksum_ok, columns->0 AS first_column, bytes > 0 AS stored
FROM elt.snapshots WHERE snapshot_id = :s1;
-- the same content and shape: reused, not copied
SELECT elt.snapshot_create('ck.a') = :s1 AS reused;
SELECT elt.snapshot_create('ck.b') = :s1 AS same_rows_other_table_reused;
SELECT count(*) AS snapshot_tables FROM pg_tables WHERE schemaname = 'elt_snapshots';
-- other content, other shape: new snapshots
INSERT INTO ck.b SELECT id + 1000, amount, label, note, at, doc, ratio, day, flag, raw, tag, ints, small
FROM ck.a WHERE id <= 3;
SELECT elt.snapshot_create('ck.b') AS s2 \gset
SELECT :s2 <> :s1 AS new_content;
SELECT elt.snapshot_create('ck.flat') AS s3 \gset
SELECT row_count, jsonb_array_length(columns) AS columns FROM elt.snapshots WHERE snapshot_id = :s3;
-- the rows cannot be changed
SELECT storage AS s1_table FROM elt.snapshots WHERE snapshot_id = :s1 \gset
UPDATE :s1_table SET label = 'x';
DELETE FROM :s1_table;
TRUNCATE :s1_table;
SELECT count(*) AS rows_still FROM :s1_table;
SELECT elt.snapshot_verify(:s1) AS verified;
-- the source changes and goes; the snapshot stays
DROP TABLE ck.flat;
SELECT elt.snapshot_verify(:s3) AS verified_after_source_dropped;
-- privileges: the caller must read the source; others may not read a snapshot
SET ROLE ck_reader;
SELECT elt.snapshot_create('ck.a');
SELECT count(*) FROM :s1_table;
-- every role may use the schema (each copy says who reads it), none creates in it
SELECT has_schema_privilege('elt_snapshots', 'USAGE') AS may_use,
       has_schema_privilege('elt_snapshots', 'CREATE') AS may_create;
SELECT elt.snapshot_verify(:s1);
SELECT elt.snapshot_drop(:s1);
-- a role that may read the whole source gets its own snapshot, or reads a reused one
RESET ROLE;
CREATE TABLE ck.mine (id int PRIMARY KEY, v text);
INSERT INTO ck.mine VALUES (1, 'a'), (2, 'b');
GRANT SELECT ON ck.mine TO ck_reader;
SET ROLE ck_reader;
SELECT elt.snapshot_create('ck.mine') AS s4 \gset
SELECT storage AS s4_table FROM elt.snapshots WHERE snapshot_id = :s4 \gset
SELECT count(*) AS readable FROM :s4_table;
SELECT elt.snapshot_verify(:s4) AS verified_by_maker;
-- each role sees its own snapshots
SELECT count(*) AS visible, bool_and(snapshot_id = :s4) AS only_its_own FROM elt.snapshots;
RESET ROLE;
-- reuse stays within a role: the same content makes another role its own copy
SELECT elt.snapshot_create('ck.mine') <> :s4 AS own_copy;
SELECT count(*) AS copies_of_mine FROM elt.snapshots WHERE source_name = 'ck.mine';
-- a copy dropped by hand is made again
DROP TABLE :s4_table;
SET ROLE ck_reader;
SELECT elt.snapshot_create('ck.mine') <> :s4 AS made_again;
RESET ROLE;
-- drop and purge; bad input
SELECT elt.snapshot_drop(:s2) AS dropped;
SELECT count(*) AS gone FROM elt.snapshots WHERE snapshot_id = :s2;
SELECT elt.snapshot_drop(:s2);
SELECT elt.snapshot_create(NULL);
SELECT elt.snapshot_create('ck.v');
SELECT elt.snapshot_purge();
SELECT elt.snapshot_purge(keep_last => -1);
SELECT elt.snapshot_purge(keep_last => 1) AS purged;
SELECT elt.snapshot_purge(interval '0 seconds') AS purged_all;
SELECT count(*) AS left FROM elt.snapshots;
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'elt_snapshots';
-- a schema elt_snapshots made by another role is refused
DROP SCHEMA elt_snapshots;
CREATE SCHEMA elt_snapshots AUTHORIZATION ck_reader;
SELECT elt.snapshot_create('ck.mine');
DROP SCHEMA elt_snapshots;
SELECT action, details->>'reused' AS reused, details->>'ok' AS ok
FROM elt.audit_log WHERE action LIKE 'snapshot%' ORDER BY id;

-------------------------------------------------------------------------------
-- Environment fingerprint
-------------------------------------------------------------------------------
SELECT elt.env_fingerprint() AS f \gset
SELECT (:'f'::jsonb) ?& ARRAY['id', 'server_version', 'server_version_num', 'extensions', 'database',
                              'collations', 'settings'] AS has_keys;
SELECT (:'f'::jsonb)->'extensions' ? 'elt_governance' AS lists_extensions,
       (:'f'::jsonb)->'settings' ?& ARRAY['TimeZone', 'DateStyle', 'IntervalStyle', 'extra_float_digits',
         'search_path', 'standard_conforming_strings', 'bytea_output', 'lc_monetary', 'lc_numeric',
         'lc_time', 'default_text_search_config', 'timezone_abbreviations', 'xmloption'] AS lists_settings,
       (:'f'::jsonb)->'collations'->'default' ? 'actual' AS default_collation,
       (:'f'::jsonb)->'database' ?& ARRAY['encoding', 'collate', 'ctype'] AS database;
-- its id is the SHA-256 of the canonical JSON of the rest
SELECT (:'f'::jsonb)->>'id' = encode(sha256(convert_to(((:'f'::jsonb) - 'id')::text, 'UTF8')), 'hex') AS id_ok;
-- the same environment, the same fingerprint
SELECT elt.env_fingerprint() = :'f'::jsonb AS stable;
SELECT count(*) AS no_differences FROM elt.env_diff(:'f'::jsonb, elt.env_fingerprint());
-- the caller's search_path, not the function's
SET search_path = ck, public;
SELECT elt.env_fingerprint()->'settings'->>'search_path' AS search_path;
RESET search_path;
-- another time zone and float output: listed as differences, with another id
SET TimeZone = 'Asia/Kathmandu';
SET extra_float_digits = 0;
SET elt.large_table_rows = 12345;
SELECT key, a_value, b_value FROM elt.env_diff(:'f'::jsonb, elt.env_fingerprint());
SELECT elt.env_fingerprint()->>'id' <> (:'f'::jsonb)->>'id' AS other_id;
RESET TimeZone;
RESET extra_float_digits;
RESET elt.large_table_rows;
-- bad input
SELECT * FROM elt.env_diff('[1]', '{}');
SELECT * FROM elt.env_diff(NULL, '{}');

RESET client_min_messages;

-------------------------------------------------------------------------------
-- A relation given by an OID that names none (0, a dropped table's): a
-- clear error (SQLSTATE 42P01), and nothing made
-------------------------------------------------------------------------------
-- an error's SQLSTATE, message and hint; OIDs other than 0 masked
CREATE FUNCTION ck.error_of(sql text) RETURNS TABLE (sqlstate text, message text, hint text)
LANGUAGE plpgsql AS $$
DECLARE
  st text;
  msg text;
  hnt text;
BEGIN
  EXECUTE sql;
  RETURN QUERY SELECT 'none'::text, NULL::text, NULL::text;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hnt = PG_EXCEPTION_HINT;
  RETURN QUERY SELECT st, regexp_replace(msg, 'OID [1-9][0-9]*', 'OID n'), hnt;
END $$;
CREATE TABLE ck.gone (id int PRIMARY KEY);
SELECT 'ck.gone'::regclass::oid AS gone \gset
DROP TABLE ck.gone;
CREATE SEQUENCE ck.seq;
SELECT count(*) AS snapshots_before FROM elt.snapshot_defs \gset
SELECT max(id) AS audit_before FROM elt.audit_log \gset
\x on
SELECT * FROM ck.error_of('SELECT elt.table_checksum(0)');
SELECT * FROM ck.error_of(format('SELECT elt.table_checksum(%s)', :gone));
SELECT * FROM ck.error_of('SELECT elt.table_checksum(''ck.seq'')');
SELECT * FROM ck.error_of('SELECT * FROM elt.table_checksum_ranges(0, ''id'', 4)');
SELECT * FROM ck.error_of(format('SELECT * FROM elt.table_checksum_ranges(%s, ''id'', 4)', :gone));
SELECT * FROM ck.error_of(format('SELECT * FROM elt.table_checksum_ranges(%s, ''id'', ARRAY[''1''])', :gone));
SELECT * FROM ck.error_of('SELECT elt.snapshot_create(0)');
SELECT * FROM ck.error_of(format('SELECT elt.snapshot_create(%s)', :gone));
\x off
-- at the top level too: the SQLSTATE, and nothing made
\set VERBOSITY sqlstate
SELECT elt.snapshot_create(0);
SELECT elt.snapshot_create(:gone);
\set VERBOSITY default
SELECT (SELECT count(*) FROM elt.snapshot_defs) = :snapshots_before AS no_snapshot,
       (SELECT max(id) FROM elt.audit_log) = :audit_before AS nothing_audited,
       (SELECT count(*) FROM pg_tables WHERE schemaname = 'elt_snapshots') AS snapshot_tables;
