-- elt_governance 0.4.0 -> 0.5.0: reproducible runs, first part — the
-- environment fingerprint and table checksums.

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.5.0'" to load this file. \quit

-- The environment a result depends on, as one JSON object: the server
-- version, every installed extension, the database's encoding and locale,
-- the versions of the collations in use (recorded in the catalog and
-- reported by the library now), and every setting that changes how values
-- are read, printed or compared.  "id" is the SHA-256 of the canonical
-- JSON (jsonb's text form) of everything else.
CREATE FUNCTION elt._env_fingerprint(caller_search_path text) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f jsonb;
BEGIN
    SELECT jsonb_build_object(
        'server_version', current_setting('server_version'),
        'server_version_num', current_setting('server_version_num')::int,
        'extensions', (SELECT coalesce(jsonb_object_agg(e.extname, e.extversion), '{}'::jsonb)
                       FROM pg_extension e),
        'database', jsonb_build_object(
            'encoding', pg_encoding_to_char(d.encoding),
            'collate', d.datcollate,
            'ctype', d.datctype,
            'locale_provider', CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu'
                                    ELSE d.datlocprovider::text END,
            'icu_locale', d.daticulocale),
        'collations', jsonb_build_object('default', jsonb_build_object(
                'recorded', d.datcollversion,
                'actual', pg_database_collation_actual_version(d.oid)))
            || (SELECT coalesce(jsonb_object_agg(
                    format('%I.%I', n.nspname, c.collname),
                    jsonb_build_object('recorded', c.collversion,
                                       'actual', pg_collation_actual_version(c.oid))), '{}'::jsonb)
                FROM pg_collation c
                JOIN pg_namespace n ON n.oid = c.collnamespace
                WHERE c.oid IN (SELECT a.attcollation FROM pg_attribute a
                                JOIN pg_class r ON r.oid = a.attrelid
                                WHERE a.attnum > 0 AND NOT a.attisdropped
                                  AND r.relkind IN ('r', 'p', 'm', 'v', 'f')
                                  AND r.relnamespace NOT IN ('pg_catalog'::regnamespace,
                                                             'information_schema'::regnamespace))
                  AND c.collname NOT IN ('default', 'C', 'POSIX', 'ucs_basic')),
        'settings', (SELECT jsonb_object_agg(s.name, CASE s.name WHEN 'search_path'
                                                         THEN caller_search_path
                                                         ELSE s.setting END)
                     FROM pg_settings s
                     WHERE s.name IN ('TimeZone', 'DateStyle', 'IntervalStyle', 'extra_float_digits',
                                      'search_path', 'standard_conforming_strings', 'bytea_output',
                                      'lc_monetary', 'lc_numeric', 'lc_time',
                                      'default_text_search_config', 'timezone_abbreviations',
                                      'xmloption')
                        OR s.name LIKE 'elt.%'))
    INTO f
    FROM pg_database d
    WHERE d.datname = current_database();
    RETURN jsonb_build_object('id', encode(sha256(convert_to(f::text, 'UTF8')), 'hex')) || f;
END
$$;

-- (search_path is the caller's: the function above runs with its own.)
CREATE FUNCTION elt.env_fingerprint() RETURNS jsonb
    LANGUAGE sql STABLE
    AS 'SELECT elt._env_fingerprint(pg_catalog.current_setting(''search_path''))';

-- The differences between two fingerprints, one row per differing leaf
-- (nested keys joined by '.'; "id" is left out).
CREATE FUNCTION elt.env_diff(a jsonb, b jsonb)
RETURNS TABLE (key text, a_value jsonb, b_value jsonb)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RAISE EXCEPTION 'elt.env_diff() needs two fingerprints, got NULL'
            USING ERRCODE = '22004', HINT = 'Pass two results of elt.env_fingerprint().';
    END IF;
    IF jsonb_typeof(a) <> 'object' OR jsonb_typeof(b) <> 'object' THEN
        RAISE EXCEPTION 'elt.env_diff() compares JSON objects, got % and %', jsonb_typeof(a), jsonb_typeof(b)
            USING ERRCODE = '22023', HINT = 'Pass two results of elt.env_fingerprint().';
    END IF;
    RETURN QUERY
    WITH RECURSIVE fa(path, v) AS (
        SELECT e.key, e.value FROM jsonb_each(a - 'id') e
        UNION ALL
        SELECT fa.path || '.' || e.key, e.value
        FROM fa, jsonb_each(CASE WHEN jsonb_typeof(fa.v) = 'object' THEN fa.v ELSE '{}' END) e
    ), fb(path, v) AS (
        SELECT e.key, e.value FROM jsonb_each(b - 'id') e
        UNION ALL
        SELECT fb.path || '.' || e.key, e.value
        FROM fb, jsonb_each(CASE WHEN jsonb_typeof(fb.v) = 'object' THEN fb.v ELSE '{}' END) e
    ), la AS (
        SELECT path, v FROM fa WHERE jsonb_typeof(v) <> 'object' OR v = '{}'
    ), lb AS (
        SELECT path, v FROM fb WHERE jsonb_typeof(v) <> 'object' OR v = '{}'
    )
    SELECT coalesce(la.path, lb.path), la.v, lb.v
    FROM la FULL JOIN lb ON la.path = lb.path
    WHERE la.v IS DISTINCT FROM lb.v
    ORDER BY 1;
END
$$;

-- An order-independent checksum of a table's rows, computed in C from the
-- values' binary form (see src/checksum.c): "v1:<rows>:<128-bit sum>".
CREATE FUNCTION elt.table_checksum(rel regclass, columns text[] DEFAULT NULL) RETURNS text
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'elt_table_checksum';

-- The row hash checked against the SipHash-2-4-128 reference vectors (tests).
CREATE FUNCTION elt._checksum_selftest() RETURNS boolean
    LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'elt_checksum_selftest';

-- Per range of a key column: its rows and their checksum, in one scan.
-- Ranges are cut at the key's quantiles (segments) or at the bounds given
-- (for comparing two tables over the same ranges); segment 0 holds the rows
-- with a NULL key (listed always, so that two results join on segment),
-- segment i >= 1 the keys from lower (inclusive) to upper
-- (exclusive).  Bounds are canonical text (DateStyle ISO, TimeZone UTC).
CREATE FUNCTION elt.table_checksum_ranges(rel regclass, key text, segments integer)
RETURNS TABLE (segment integer, lower text, upper text, row_count bigint, checksum text)
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'elt_table_checksum_ranges_n';
CREATE FUNCTION elt.table_checksum_ranges(rel regclass, key text, bounds text[])
RETURNS TABLE (segment integer, lower text, upper text, row_count bigint, checksum text)
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'elt_table_checksum_ranges_b';

-- Snapshots: immutable, content-addressed copies of a relation's rows (see
-- src/snapshot.c).  The copies live in the schema elt_snapshots, made on
-- first use (a plain schema, so that pg_dump keeps them), one table per
-- content and owning role; this catalog lists them.
CREATE SEQUENCE elt.snapshot_id_seq;
CREATE TABLE elt.snapshot_defs (
    snapshot_id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.snapshot_id_seq'),
    storage     name NOT NULL UNIQUE,            -- the table in elt_snapshots
    source_name text NOT NULL,                   -- the relation, when it was copied
    source_oid  oid,
    columns     jsonb NOT NULL,                  -- [{"name": ..., "type": ...}]
    shape_hash  text NOT NULL,                   -- SHA-256 of columns
    checksum    text NOT NULL,                   -- elt.table_checksum of the copy
    row_count   bigint NOT NULL,
    created_by  regrole NOT NULL,                -- the owning role: it reads, verifies, drops
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (created_by, shape_hash, checksum)
);
SELECT pg_catalog.pg_extension_config_dump('elt.snapshot_defs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.snapshot_id_seq', '');
REVOKE ALL ON elt.snapshot_defs FROM PUBLIC;

-- Refuses every change to a snapshot's rows.
CREATE FUNCTION elt._snapshot_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'snapshot %.% is immutable', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = '55000',
              HINT = 'Make a new snapshot with elt.snapshot_create(); elt.snapshot_drop() removes one.';
END
$$;

-- Each role sees the snapshots of the roles it has the privileges of.
CREATE VIEW elt.snapshots AS
SELECT s.snapshot_id,
       s.source_name,
       pg_catalog.format('elt_snapshots.%I', s.storage) AS storage,
       s.row_count,
       s.checksum,
       s.columns,
       (SELECT pg_catalog.pg_total_relation_size(c.oid)
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'elt_snapshots' AND c.relname = s.storage) AS bytes,
       s.created_by,
       s.created_at
FROM elt.snapshot_defs s
WHERE pg_catalog.pg_has_role(s.created_by, 'USAGE');
GRANT SELECT ON elt.snapshots TO PUBLIC;

CREATE FUNCTION elt.snapshot_create(rel regclass) RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_snapshot_create';
CREATE FUNCTION elt.snapshot_verify(snapshot_id bigint) RETURNS boolean
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_snapshot_verify';
CREATE FUNCTION elt.snapshot_drop(snapshot_id bigint, force boolean DEFAULT false) RETURNS boolean
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_snapshot_drop';
CREATE FUNCTION elt.snapshot_purge(older_than interval DEFAULT NULL, keep_last integer DEFAULT NULL)
RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_snapshot_purge';
