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

-- The row hash checked against the SipHash-1-3-128 reference vectors (tests).
CREATE FUNCTION elt._checksum_selftest() RETURNS boolean
    LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'elt_checksum_selftest';

-- Per range of a key column: its rows and their checksum, in one scan.
-- Ranges are cut at the key's quantiles (segments) or at the bounds given
-- (for comparing two tables over the same ranges); segment 0 holds the rows
-- with a NULL key (listed always, so that two results join on segment),
-- segment i >= 1 the keys from lower (inclusive) to upper
-- (exclusive).  Bounds are canonical text (DateStyle ISO, TimeZone UTC).
CREATE FUNCTION elt.table_checksum_ranges(rel regclass, key text, segments integer, columns text[] DEFAULT NULL)
RETURNS TABLE (segment integer, lower text, upper text, row_count bigint, checksum text)
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'elt_table_checksum_ranges_n';
CREATE FUNCTION elt.table_checksum_ranges(rel regclass, key text, bounds text[], columns text[] DEFAULT NULL)
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

------------------------------------------------------------------------------
-- Run manifests, replay and verification (see src/manifest.c)
------------------------------------------------------------------------------

-- One row per run: a transform run on its own (kind 'transform', the same
-- id as its transform run), the work between elt.run_begin() and
-- elt.run_end() (kind 'pipeline'), a replay (kind 'replay'), or a manifest
-- brought from another database (imported).  role is the role whose
-- members may read, replay and verify it.
CREATE TABLE elt.run_defs (
    run_id          bigint PRIMARY KEY,
    pipeline        text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('transform', 'pipeline', 'replay')),
    params          jsonb NOT NULL,
    snapshot_policy text NOT NULL CHECK (snapshot_policy IN ('none', 'checksum', 'full')),
    clock           timestamptz NOT NULL,       -- elt.now() inside the run
    random_seed     bigint NOT NULL,            -- seeds elt.random(), per step
    fingerprint     jsonb NOT NULL,
    role            regrole NOT NULL,
    started_at      timestamptz NOT NULL,
    replay_of       bigint REFERENCES elt.run_defs (run_id),
    sandbox         text,                       -- the schema a replay wrote
    imported        boolean NOT NULL DEFAULT false,
    backend_pid     integer,                    -- a pipeline run: the session that began it
    backend_start   timestamptz
);
CREATE INDEX run_defs_replay_of_idx ON elt.run_defs (replay_of);

-- The steps of a run, each written in the transaction of its work (a step
-- that rolled back leaves none): what ran, and the relations it read first
-- and wrote, as parts of the manifest.
CREATE TABLE elt.run_steps (
    run_id           bigint NOT NULL REFERENCES elt.run_defs (run_id),
    step             integer NOT NULL CHECK (step > 0),
    transform_run_id bigint,
    fragment         jsonb NOT NULL,            -- {"step": ..., "inputs": [...], "output": ...}
    PRIMARY KEY (run_id, step)
);

-- A finished run's manifest, immutable; manifest_id is the SHA-256 of its
-- canonical JSON (jsonb's text form) without "id".
CREATE TABLE elt.run_manifests (
    run_id      bigint PRIMARY KEY REFERENCES elt.run_defs (run_id),
    manifest_id text NOT NULL,
    manifest    jsonb NOT NULL,
    finished_at timestamptz NOT NULL
);
CREATE INDEX run_manifests_id_idx ON elt.run_manifests (manifest_id);

-- The snapshots a run references: elt.snapshot_drop() refuses to drop them
-- without force, elt.snapshot_purge() keeps them.
CREATE TABLE elt.run_snapshots (
    run_id      bigint NOT NULL REFERENCES elt.run_defs (run_id),
    snapshot_id bigint NOT NULL,
    PRIMARY KEY (snapshot_id, run_id)
);

SELECT pg_catalog.pg_extension_config_dump('elt.run_defs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.run_steps', '');
SELECT pg_catalog.pg_extension_config_dump('elt.run_manifests', '');
SELECT pg_catalog.pg_extension_config_dump('elt.run_snapshots', '');
-- Manifests hold parameters and SQL: read through elt.runs and
-- elt.run_manifest(), which show each role its own runs.
REVOKE ALL ON elt.run_defs, elt.run_steps, elt.run_manifests, elt.run_snapshots FROM PUBLIC;

CREATE TRIGGER run_defs_append_only
    BEFORE UPDATE OR DELETE ON elt.run_defs
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER run_defs_no_truncate
    BEFORE TRUNCATE ON elt.run_defs
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER run_steps_append_only
    BEFORE UPDATE OR DELETE ON elt.run_steps
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER run_steps_no_truncate
    BEFORE TRUNCATE ON elt.run_steps
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER run_manifests_append_only
    BEFORE UPDATE OR DELETE ON elt.run_manifests
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER run_manifests_no_truncate
    BEFORE TRUNCATE ON elt.run_manifests
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER run_snapshots_append_only
    BEFORE UPDATE OR DELETE ON elt.run_snapshots
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER run_snapshots_no_truncate
    BEFORE TRUNCATE ON elt.run_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

-- A timestamp as canonical text: ISO 8601 in UTC, microseconds.
CREATE FUNCTION elt._utc_text(ts timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$SELECT pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')$$;

-- A relation's columns as a manifest records them (types qualified unless
-- in pg_catalog, defaults as expressions) and its primary key.
CREATE FUNCTION elt._relation_shape(rel oid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT jsonb_build_object(
    'columns', coalesce((
        SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                   'name', a.attname,
                   'type', format_type(a.atttypid, a.atttypmod),
                   'not_null', a.attnotnull,
                   'default', CASE WHEN a.attidentity = '' AND a.attgenerated = ''
                                    AND pg_get_serial_sequence(rel::regclass::text, a.attname) IS NULL
                                   THEN pg_get_expr(d.adbin, d.adrelid) END,
                   'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                   'identity', a.attidentity <> ''
                               OR pg_get_serial_sequence(rel::regclass::text, a.attname) IS NOT NULL))
                   ORDER BY a.attnum)
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped), '[]'),
    'primary_key', (
        SELECT jsonb_agg(a.attname ORDER BY k.ord)
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = rel AND i.indisprimary),
    'schema_version', (
        SELECT max(v.version) FROM elt.schema_versions v WHERE v.relid = rel))
$$;

-- A finished run's manifest from its steps: the steps in order, the
-- relations each read first (inputs) and the last state of every relation
-- written (outputs).
CREATE FUNCTION elt._run_manifest_assemble(p_run_id bigint, p_finished timestamptz) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT jsonb_build_object(
    'format', 'elt_governance.run_manifest.v1',
    'run', jsonb_strip_nulls(jsonb_build_object(
        'run_id', r.run_id,
        'pipeline', r.pipeline,
        'kind', r.kind,
        'snapshot_policy', r.snapshot_policy,
        'clock', elt._utc_text(r.clock),
        'random_seed', r.random_seed,
        'role', r.role::text,
        'started_at', elt._utc_text(r.started_at),
        'finished_at', elt._utc_text(p_finished),
        'replay_of', r.replay_of,
        'sandbox', r.sandbox)) || jsonb_build_object('params', r.params),
    'fingerprint', r.fingerprint,
    'steps', coalesce((SELECT jsonb_agg(s.fragment -> 'step' ORDER BY s.step)
                       FROM elt.run_steps s WHERE s.run_id = r.run_id), '[]'),
    'inputs', coalesce((SELECT jsonb_agg(i.value ORDER BY s.step, i.ordinality)
                        FROM elt.run_steps s
                        CROSS JOIN LATERAL jsonb_array_elements(s.fragment -> 'inputs') WITH ORDINALITY i
                        WHERE s.run_id = r.run_id), '[]'),
    'outputs', coalesce((SELECT jsonb_agg(o.output ORDER BY o.step)
                         FROM (SELECT DISTINCT ON (s.fragment -> 'output' ->> 'relation')
                                      s.step, s.fragment -> 'output' AS output
                               FROM elt.run_steps s
                               WHERE s.run_id = r.run_id AND s.fragment ? 'output'
                               ORDER BY s.fragment -> 'output' ->> 'relation', s.step DESC) o), '[]'))
FROM elt.run_defs r
WHERE r.run_id = p_run_id
$$;

-- Runs: each role sees the runs of the roles it has the privileges of.  A
-- run whose session ended before elt.run_end() is abandoned: it has no
-- manifest, and its committed steps stay in elt.run_steps.
CREATE VIEW elt.runs AS
SELECT r.run_id,
       r.pipeline,
       r.kind,
       CASE WHEN m.run_id IS NOT NULL THEN 'finished'
            WHEN elt._backend_alive(r.backend_pid, r.backend_start) THEN 'open'
            ELSE 'abandoned' END AS status,
       r.snapshot_policy,
       r.params,
       r.clock,
       r.random_seed,
       (SELECT count(*) FROM elt.run_steps s WHERE s.run_id = r.run_id) AS steps,
       r.role,
       r.started_at,
       m.finished_at,
       m.manifest_id,
       r.replay_of,
       r.sandbox,
       r.imported
FROM elt.run_defs r
LEFT JOIN elt.run_manifests m ON m.run_id = r.run_id
WHERE pg_catalog.pg_has_role(r.role, 'USAGE');
GRANT SELECT ON elt.runs TO PUBLIC;

CREATE FUNCTION elt.run_begin(pipeline text, params jsonb DEFAULT '{}',
                              snapshot_policy text DEFAULT 'checksum')
    RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_run_begin';
CREATE FUNCTION elt.run_end() RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_run_end';
CREATE FUNCTION elt.run_manifest(run_id bigint) RETURNS jsonb
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'elt_run_manifest';
CREATE FUNCTION elt.run_manifest_import(manifest jsonb) RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_run_manifest_import';
CREATE FUNCTION elt.replay(run_id bigint, into_schema text DEFAULT NULL,
                           trust_imported boolean DEFAULT false) RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_replay';
CREATE FUNCTION elt.verify_replay(original bigint, replay bigint,
                                  numeric_tolerance double precision DEFAULT 0)
RETURNS TABLE (check_name text, relation text, expected text, actual text, ok boolean)
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_verify_replay';

-- The checks of elt.verify_replay() (which audits them): the steps, the
-- inputs, and per output its rows, columns and checksum; when checksums
-- differ, the rows that differ, found by primary key (numbers within
-- tolerance count as equal) or, without a key, as whole rows, with a
-- sample of at most ten.  The original rows are the output's snapshot
-- (snapshot_policy 'full'), or the live relation while it still has the
-- recorded checksum.
CREATE FUNCTION elt._verify_replay(original bigint, replay bigint, tolerance double precision)
RETURNS TABLE (check_name text, relation text, expected text, actual text, ok boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    mo jsonb := elt.run_manifest(original);
    mr jsonb := elt.run_manifest(replay);
    o jsonb;
    r jsonb;
    orig_rel text;
    rep_rel text;
    keys text[];
    cols text[];
    numeric_cols text[];
    c text;
    q text;
    cond text;
    o_show text;
    r_show text;
    n bigint;
    tol_ok boolean;
    rec record;
BEGIN
    IF mr -> 'run' ->> 'kind' IS DISTINCT FROM 'replay' THEN
        RAISE EXCEPTION 'run % is not a replay', replay
            USING ERRCODE = '22023', HINT = 'Make one with elt.replay(run_id); elt.runs lists runs and their kinds.';
    END IF;
    IF NOT EXISTS (SELECT FROM elt.runs x WHERE x.run_id = replay AND x.replay_of = original AND NOT x.imported) THEN
        RAISE EXCEPTION 'run % is not a replay of run %', replay, original
            USING ERRCODE = '22023', HINT = 'elt.runs lists each replay with the run it replays (replay_of).';
    END IF;
    IF tolerance IS NULL OR tolerance < 0 OR tolerance = 'NaN' THEN
        RAISE EXCEPTION 'numeric_tolerance must be zero or positive'
            USING ERRCODE = '22023', HINT = 'For example 1e-9: numbers that differ by at most that count as equal.';
    END IF;

    check_name := 'steps';
    relation := NULL;
    expected := (SELECT string_agg(format('%s v%s %s', s ->> 'transform', s ->> 'version', left(s ->> 'code_hash', 12)), ', '
                                   ORDER BY (s ->> 'step')::int)
                 FROM jsonb_array_elements(mo -> 'steps') s);
    actual := (SELECT string_agg(format('%s v%s %s', s ->> 'transform', s ->> 'version', left(s ->> 'code_hash', 12)), ', '
                                 ORDER BY (s ->> 'step')::int)
               FROM jsonb_array_elements(mr -> 'steps') s);
    ok := expected IS NOT DISTINCT FROM actual;
    RETURN NEXT;

    FOR o IN SELECT value FROM jsonb_array_elements(mo -> 'inputs') LOOP
        r := (SELECT value FROM jsonb_array_elements(mr -> 'inputs')
              WHERE value ->> 'relation' = o ->> 'relation' AND value ->> 'step' = o ->> 'step'
              LIMIT 1);
        check_name := 'input';
        relation := o ->> 'relation';
        expected := o ->> 'checksum';
        actual := r ->> 'checksum';
        ok := r IS NOT NULL AND expected IS NOT DISTINCT FROM actual;
        RETURN NEXT;
    END LOOP;

    FOR o IN SELECT value FROM jsonb_array_elements(mo -> 'outputs') LOOP
        relation := o ->> 'relation';
        r := (SELECT value FROM jsonb_array_elements(mr -> 'outputs')
              WHERE value ->> 'relation' = o ->> 'relation' LIMIT 1);
        IF r IS NULL THEN
            check_name := 'output';
            expected := 'written';
            actual := 'not written by the replay';
            ok := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        check_name := 'row_count';
        expected := o ->> 'rows';
        actual := r ->> 'rows';
        ok := expected IS NOT DISTINCT FROM actual;
        RETURN NEXT;
        check_name := 'shape';
        expected := (SELECT string_agg(format('%s %s', x ->> 'name', x ->> 'type'), ', ')
                     FROM jsonb_array_elements(o -> 'columns') x);
        actual := (SELECT string_agg(format('%s %s', x ->> 'name', x ->> 'type'), ', ')
                   FROM jsonb_array_elements(r -> 'columns') x);
        ok := expected IS NOT DISTINCT FROM actual;
        RETURN NEXT;

        check_name := 'checksum';
        expected := o ->> 'checksum';
        actual := r ->> 'checksum';
        IF expected IS NOT NULL AND expected = actual THEN
            ok := true;
            RETURN NEXT;
            CONTINUE;
        END IF;

        -- they differ (or were not recorded): compare the rows
        -- names as regclass, printed back quoted: never SQL from a manifest
        rep_rel := to_regclass(r ->> 'sandbox_relation')::text;
        orig_rel := NULL;
        IF o -> 'snapshot' ->> 'id' IS NOT NULL THEN
            SELECT to_regclass(s.storage)::text INTO orig_rel FROM elt.snapshots s
            WHERE s.snapshot_id = (o -> 'snapshot' ->> 'id')::bigint
              AND s.checksum = o ->> 'checksum'
              AND to_regclass(s.storage) IS NOT NULL;
        END IF;
        IF orig_rel IS NULL AND o ->> 'checksum' IS NOT NULL
           AND to_regclass(o ->> 'relation') IS NOT NULL
           AND has_table_privilege(o ->> 'relation', 'SELECT')
           AND elt.table_checksum((o ->> 'relation')::regclass) = o ->> 'checksum' THEN
            orig_rel := to_regclass(o ->> 'relation')::text;
        END IF;
        IF orig_rel IS NULL OR rep_rel IS NULL THEN
            ok := false;
            RETURN NEXT;
            check_name := 'rows';
            expected := 'the original rows';
            actual := CASE WHEN rep_rel IS NULL THEN 'the replay kept no rows'
                           ELSE 'not kept: the run did not snapshot its outputs (snapshot_policy ''full'' does) and the live relation has changed' END;
            ok := false;
            RETURN NEXT;
            CONTINUE;
        END IF;

        keys := ARRAY(SELECT jsonb_array_elements_text(o -> 'primary_key'));
        cols := ARRAY(SELECT x ->> 'name' FROM jsonb_array_elements(o -> 'columns') x
                      WHERE NOT (x ->> 'name' = ANY (keys))
                        AND EXISTS (SELECT FROM jsonb_array_elements(r -> 'columns') y
                                    WHERE y ->> 'name' = x ->> 'name'));
        numeric_cols := ARRAY(SELECT x ->> 'name' FROM jsonb_array_elements(o -> 'columns') x
                              WHERE x ->> 'type' ~ '^(smallint|integer|bigint|numeric|real|double precision)(\(\d+(,\d+)?\))?$');
        IF cardinality(keys) > 0 THEN
            cond := format('o.%I IS NULL OR r.%I IS NULL', keys[1], keys[1]);
            o_show := '';
            r_show := '';
            FOREACH c IN ARRAY cols LOOP
                IF c = ANY (numeric_cols) AND tolerance > 0 THEN
                    q := format('(o.%1$I IS DISTINCT FROM r.%1$I AND NOT coalesce(abs(o.%1$I::numeric - r.%1$I::numeric) <= %2$L::numeric, false))',
                                c, tolerance);
                ELSE
                    q := format('(o.%1$I::text IS DISTINCT FROM r.%1$I::text)', c);
                END IF;
                cond := cond || ' OR ' || q;
                o_show := o_show || format(', CASE WHEN %s THEN %L || ''='' || coalesce(o.%I::text, ''NULL'') END', q, c, c);
                r_show := r_show || format(', CASE WHEN %s THEN %L || ''='' || coalesce(r.%I::text, ''NULL'') END', q, c, c);
            END LOOP;
            q := format('SELECT count(*) OVER () AS n, k, ok_o, ok_r, ov, rv FROM ('
                        ' SELECT coalesce(%s, %s) AS k, o.%I IS NOT NULL AS ok_o, r.%I IS NOT NULL AS ok_r,'
                        ' concat_ws('', ''%s) AS ov, concat_ws('', ''%s) AS rv'
                        ' FROM %s o FULL JOIN %s r ON %s WHERE %s) d ORDER BY k LIMIT 10',
                        (SELECT 'ROW(' || string_agg(format('o.%I', k), ', ') || ')::text' FROM unnest(keys) k),
                        (SELECT 'ROW(' || string_agg(format('r.%I', k), ', ') || ')::text' FROM unnest(keys) k),
                        keys[1], keys[1], o_show, r_show, orig_rel, rep_rel,
                        (SELECT string_agg(format('o.%1$I = r.%1$I', k), ' AND ') FROM unnest(keys) k),
                        cond);
        ELSE
            q := format('SELECT count(*) OVER () AS n, k, ok_o, ok_r, k AS ov, k AS rv FROM ('
                        ' (SELECT t::text AS k, true AS ok_o, false AS ok_r FROM %1$s t'
                        '  EXCEPT ALL SELECT t::text, true, false FROM %2$s t)'
                        ' UNION ALL'
                        ' (SELECT t::text, false, true FROM %2$s t'
                        '  EXCEPT ALL SELECT t::text, false, true FROM %1$s t)) d ORDER BY k LIMIT 10',
                        orig_rel, rep_rel);
        END IF;
        n := 0;
        FOR rec IN EXECUTE q LOOP
            n := rec.n;
            EXIT;
        END LOOP;
        tol_ok := (n = 0);
        ok := tol_ok;
        IF tol_ok AND tolerance > 0 THEN
            actual := coalesce(actual, 'none') || format(' (rows equal within %s)', tolerance);
        END IF;
        RETURN NEXT;
        check_name := 'rows';
        expected := CASE WHEN cardinality(keys) > 0 THEN format('no differing rows by key (%s)', array_to_string(keys, ', '))
                         ELSE 'no differing rows' END;
        actual := format('%s differing rows', n);
        ok := tol_ok;
        RETURN NEXT;
        FOR rec IN EXECUTE q LOOP
            check_name := 'row';
            expected := CASE WHEN NOT rec.ok_o THEN format('%s: none', rec.k)
                             ELSE format('%s: %s', rec.k, rec.ov) END;
            actual := CASE WHEN NOT rec.ok_r THEN format('%s: none', rec.k)
                           ELSE format('%s: %s', rec.k, rec.rv) END;
            IF cardinality(keys) = 0 THEN
                expected := CASE WHEN rec.ok_o THEN rec.k ELSE 'none' END;
                actual := CASE WHEN rec.ok_r THEN rec.k ELSE 'none' END;
            END IF;
            ok := false;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;
