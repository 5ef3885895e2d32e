/* elt_governance 0.3.0 -> 0.4.0: transforms and row-level lineage */

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.4.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------------

CREATE SEQUENCE elt.transform_id_seq;
CREATE SEQUENCE elt.run_id_seq;

-- One row per transform.  The code lives in elt.transform_code, one row per
-- version; the view elt.transforms joins the two.
CREATE TABLE elt.transform_defs (
    transform_id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.transform_id_seq'),
    name         text NOT NULL UNIQUE CHECK (name <> ''),
    target       regclass NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('append', 'replace', 'merge')),
    lineage      text NOT NULL CHECK (lineage IN ('row', 'table')),
    keep_runs    integer CHECK (keep_runs > 0),
    options      jsonb NOT NULL,
    owner        name NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX transform_defs_target_idx ON elt.transform_defs (target);

-- One row per version of a transform; versions are immutable.  code_hash is
-- the SHA-256 of the SQL with comments and whitespace normalized away.
-- lineage_level is what the query can be traced at: 'row', or 'table' with
-- lineage_note naming the construct that prevents row lineage.  sources are
-- the relations the query reads; key_sources the ones row lineage records
-- keys of, in slot order.
CREATE TABLE elt.transform_code (
    transform_id   bigint NOT NULL REFERENCES elt.transform_defs (transform_id),
    version        integer NOT NULL CHECK (version > 0),
    sql            text NOT NULL,
    code_hash      text NOT NULL,
    search_path    text NOT NULL,
    lineage_level  text NOT NULL CHECK (lineage_level IN ('row', 'table')),
    lineage_note   text,
    sources        regclass[] NOT NULL,
    source_names   text[] NOT NULL,
    nondeterministic text[] NOT NULL DEFAULT '{}',
    created_by     name NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (transform_id, version)
);

-- Column lineage of each version, from the analyzed query tree.  Direct
-- edges (identity, transformation, aggregation) have a target column;
-- indirect ones (join, filter, group_by) concern every row and have none.
CREATE TABLE elt.lineage_columns (
    transform_id   bigint NOT NULL,
    version        integer NOT NULL,
    target_column  name,
    source_rel     regclass NOT NULL,
    source_name    text NOT NULL,
    source_column  name NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('identity', 'transformation', 'aggregation',
                                                 'join', 'filter', 'group_by')),
    FOREIGN KEY (transform_id, version) REFERENCES elt.transform_code (transform_id, version)
);
CREATE INDEX lineage_columns_version_idx ON elt.lineage_columns (transform_id, version);

-- One row per transform run that committed, written in the caller's
-- transaction, and per failed run, written by the failure recorder in a
-- transaction of its own.  run_id is drawn when the run is recorded, after
-- its rows are written: of two runs that wrote one row, the later writer
-- has the greater id.  random_seed seeds elt.random() in the run.
CREATE TABLE elt.transform_runs (
    run_id        bigint PRIMARY KEY,
    transform_id  bigint NOT NULL REFERENCES elt.transform_defs (transform_id),
    version       integer NOT NULL,
    code_hash     text NOT NULL,
    params        jsonb NOT NULL,
    lineage       text NOT NULL CHECK (lineage IN ('row', 'table', 'none')),
    status        text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    rows_read     bigint,
    rows_written  bigint,
    rows_deleted  bigint,
    role          name NOT NULL,
    error         text,
    random_seed   bigint
);
CREATE INDEX transform_runs_transform_idx ON elt.transform_runs (transform_id, run_id);
CREATE INDEX transform_runs_finished_idx ON elt.transform_runs (finished_at);
-- runs without row lineage make older row lineage of their target unknown
CREATE INDEX transform_runs_no_row_lineage_idx ON elt.transform_runs (transform_id, run_id)
    WHERE lineage <> 'row';

-- Relations are regclass so that pg_dump and restore keep pointing at them
-- by name (a relation dropped since keeps its number).
--
-- Row lineage, in chunks.  A chunk holds the lineage of one run, in one
-- direction, between two relations, for the keys whose hash falls in its
-- bucket:
--   dir 't': rel is the target, other_rel a source; each entry is a target
--            key and the keys of the source rows in other_rel that made it;
--   dir 's': rel is a source, other_rel the target; each entry is a source
--            key and the keys of the target rows made from it.
-- bucket is (bits << 32) | the top `bits` bits of the key's hash; a run's
-- rows are split into chunks of 1 to 2 kB on average (toast_tuple_target
-- keeps them inline and uncompressed), so a run of ten rows makes one
-- chunk and one of a million some thousands.  Integer keys are kept as
-- integers, others as canonical text (the key's output under DateStyle ISO
-- and TimeZone UTC; a row literal for a composite key), target keys with
-- integer or date columns packed.  data is encoded by the extension (see
-- src/lineage_store.c); elt.lineage_rows decodes it.
CREATE TABLE elt.lineage_chunks (
    run_id    bigint NOT NULL,
    rel       regclass NOT NULL,
    dir       "char" NOT NULL CHECK (dir IN ('t', 's')),
    other_rel regclass NOT NULL,
    bucket    bigint NOT NULL,
    entries   integer NOT NULL,
    data      bytea NOT NULL
) WITH (toast_tuple_target = 8160);
CREATE INDEX lineage_chunks_lookup_idx ON elt.lineage_chunks (rel, dir, bucket);
CREATE INDEX lineage_chunks_run_idx ON elt.lineage_chunks (run_id);

-- The bucket sizes (bits) in use for a relation and direction: a lookup
-- reads, for each, the one bucket its key falls in.
CREATE TABLE elt.lineage_layout (
    rel  regclass NOT NULL,
    dir  "char" NOT NULL,
    bits integer NOT NULL,
    PRIMARY KEY (rel, dir, bits)
);

SELECT pg_catalog.pg_extension_config_dump('elt.transform_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.transform_defs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.transform_code', '');
SELECT pg_catalog.pg_extension_config_dump('elt.lineage_columns', '');
SELECT pg_catalog.pg_extension_config_dump('elt.transform_runs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.lineage_chunks', '');
SELECT pg_catalog.pg_extension_config_dump('elt.lineage_layout', '');

-- Definitions, code and runs are readable by every role, like the rest of
-- the catalog.  Row lineage holds key values of the sources, so it is read
-- only through elt.trace() and elt.impact(), which check the caller's
-- privileges on each relation.
REVOKE ALL ON elt.transform_defs, elt.transform_code, elt.lineage_columns,
    elt.transform_runs, elt.lineage_chunks, elt.lineage_layout FROM PUBLIC;
GRANT SELECT ON elt.transform_defs, elt.transform_code, elt.lineage_columns,
    elt.transform_runs TO PUBLIC;

-- Versions and column lineage are history: never rewritten.
CREATE TRIGGER transform_code_append_only
    BEFORE UPDATE OR DELETE ON elt.transform_code
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER transform_code_no_truncate
    BEFORE TRUNCATE ON elt.transform_code
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER lineage_columns_append_only
    BEFORE UPDATE OR DELETE ON elt.lineage_columns
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER lineage_columns_no_truncate
    BEFORE TRUNCATE ON elt.lineage_columns
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER transform_runs_append_only
    BEFORE UPDATE OR DELETE ON elt.transform_runs
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER transform_runs_no_truncate
    BEFORE TRUNCATE ON elt.transform_runs
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

------------------------------------------------------------------------------
-- Functions
------------------------------------------------------------------------------

CREATE FUNCTION elt.transform_create(name text, target regclass, sql text,
                                     mode text DEFAULT 'append',
                                     options jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_transform_create';

CREATE FUNCTION elt.transform_update(name text, sql text)
    RETURNS integer
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_transform_update';

CREATE FUNCTION elt.transform_run(name text, params jsonb DEFAULT '{}',
                                  lineage text DEFAULT 'row')
    RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_transform_run';

-- Inside a run: a run parameter, the run's clock and the run's random
-- numbers.  They read backend-local state, so they are parallel restricted.
CREATE FUNCTION elt.param(name text) RETURNS text
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'elt_param';
CREATE FUNCTION elt.now() RETURNS timestamptz
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'elt_now';
CREATE FUNCTION elt.random() RETURNS double precision
    LANGUAGE c VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'elt_random';

CREATE FUNCTION elt.trace(rel regclass, key text, depth integer DEFAULT NULL)
    RETURNS TABLE (depth integer, relation regclass, key text, transform text,
                   version integer, run_id bigint, run_at timestamptz, leaf boolean)
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_trace';

CREATE FUNCTION elt.impact(rel regclass, key text, depth integer DEFAULT NULL)
    RETURNS TABLE (depth integer, relation regclass, key text, transform text,
                   version integer, run_id bigint, run_at timestamptz, leaf boolean)
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_impact';

CREATE FUNCTION elt.lineage_purge(before timestamptz) RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_lineage_purge';

CREATE FUNCTION elt.openlineage_event(run_id bigint) RETURNS jsonb
    LANGUAGE c STABLE CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_openlineage_event';

-- Column lineage of the current version of every transform into target.
CREATE FUNCTION elt.column_lineage(target regclass)
    RETURNS TABLE (transform text, version integer, target_column name,
                   source_relation regclass, source_column name, kind text)
    LANGUAGE sql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.name, c.version, c.target_column,
           CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_class r
                             WHERE r.oid OPERATOR(pg_catalog.=) c.source_rel)
                THEN c.source_rel END,
           c.source_column, c.kind
    FROM elt.transform_defs d
    JOIN LATERAL (SELECT max(v.version) AS version FROM elt.transform_code v
                  WHERE v.transform_id = d.transform_id) cur ON true
    JOIN elt.lineage_columns c
      ON c.transform_id = d.transform_id AND c.version = cur.version
    WHERE d.target OPERATOR(pg_catalog.=) $1
    ORDER BY d.name, c.target_column NULLS LAST, c.source_name, c.source_column, c.kind
$$;

-- Internal: the OpenLineage schema facet of a relation ('{}' once it is gone).
CREATE FUNCTION elt._ol_schema_facet(rel oid, producer text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN count(*) = 0 THEN '{}'::jsonb
           ELSE jsonb_build_object('schema', jsonb_build_object(
                    '_producer', $2,
                    '_schemaURL', 'https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet',
                    'fields', jsonb_agg(jsonb_build_object('name', a.attname,
                                                           'type', format_type(a.atttypid, a.atttypmod))
                                        ORDER BY a.attnum)))
           END
    FROM pg_attribute a
    WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- Internal: key capture inside rewritten transform queries.
CREATE FUNCTION elt._lineage_key_text(anyelement) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_lineage_key_text';

CREATE FUNCTION elt._lineage_int8_add(internal, bigint) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_lineage_int8_add';
CREATE FUNCTION elt._lineage_int8_cat(internal, bigint[]) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_lineage_int8_cat';
CREATE FUNCTION elt._lineage_int8_final(internal) RETURNS bigint[]
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_lineage_int8_final';
CREATE FUNCTION elt._lineage_text_add(internal, text) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_lineage_text_add';
CREATE FUNCTION elt._lineage_text_cat(internal, text[]) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_lineage_text_cat';
CREATE FUNCTION elt._lineage_text_final(internal) RETURNS text[]
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_lineage_text_final';

-- The distinct non-null keys of a group, sorted.
CREATE AGGREGATE elt._lineage_keys(bigint) (
    SFUNC = elt._lineage_int8_add, STYPE = internal, SSPACE = 32, FINALFUNC_MODIFY = READ_WRITE,
    FINALFUNC = elt._lineage_int8_final);
CREATE AGGREGATE elt._lineage_keys(bigint[]) (
    SFUNC = elt._lineage_int8_cat, STYPE = internal, SSPACE = 32, FINALFUNC_MODIFY = READ_WRITE,
    FINALFUNC = elt._lineage_int8_final);
CREATE AGGREGATE elt._lineage_keys(text) (
    SFUNC = elt._lineage_text_add, STYPE = internal, SSPACE = 64, FINALFUNC_MODIFY = READ_WRITE,
    FINALFUNC = elt._lineage_text_final);
CREATE AGGREGATE elt._lineage_keys(text[]) (
    SFUNC = elt._lineage_text_cat, STYPE = internal, SSPACE = 64, FINALFUNC_MODIFY = READ_WRITE,
    FINALFUNC = elt._lineage_text_final);

-- Called by a run's INSERT for each row it writes (with the run's token,
-- the row's key and its key columns): keeps the row's lineage in memory.
-- Refused outside elt.transform_run().
CREATE FUNCTION elt._lineage_capture(bigint, VARIADIC "any") RETURNS boolean
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_lineage_capture';

-- The chunks a run encoded, handed over once to the catalog insert.
CREATE FUNCTION elt._lineage_pending()
    RETURNS TABLE (rel oid, dir "char", other_rel oid, bucket bigint, entries integer, data bytea)
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_lineage_pending';
REVOKE EXECUTE ON FUNCTION elt._lineage_pending() FROM PUBLIC;

-- The entries of a chunk, decoded.
CREATE FUNCTION elt._lineage_chunk_entries(data bytea)
    RETURNS TABLE (key bigint, key_text text, keys bigint[], keys_text text[])
    LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'elt_lineage_chunk_entries';

-- Row lineage one row per target row and source relation, decoded from the
-- chunks; like them, not readable by PUBLIC.
CREATE VIEW elt.lineage_rows AS
SELECT c.run_id, c.rel AS target_rel, e.key AS target_key, e.key_text AS target_key_text,
       c.other_rel AS source_rel, e.keys AS source_keys, e.keys_text AS source_keys_text
FROM elt.lineage_chunks c, LATERAL elt._lineage_chunk_entries(c.data) e
WHERE c.dir = 't';
REVOKE ALL ON elt.lineage_rows FROM PUBLIC;

-- the aggregates' internal-state helpers are called only by the aggregates
REVOKE EXECUTE ON FUNCTION elt._lineage_int8_add(internal, bigint),
    elt._lineage_int8_cat(internal, bigint[]), elt._lineage_int8_final(internal),
    elt._lineage_text_add(internal, text), elt._lineage_text_cat(internal, text[]),
    elt._lineage_text_final(internal) FROM PUBLIC;

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

CREATE VIEW elt.transforms AS
SELECT d.name,
       d.target,
       d.mode,
       d.lineage,
       v.version AS current_version,
       v.code_hash,
       v.lineage_level,
       d.keep_runs,
       d.owner,
       d.created_at,
       v.created_at AS updated_at,
       r.run_id AS last_run_id,
       r.finished_at AS last_run_at,
       r.status AS last_run_status,
       d.options
FROM elt.transform_defs d
JOIN LATERAL (SELECT c.* FROM elt.transform_code c
              WHERE c.transform_id = d.transform_id
              ORDER BY c.version DESC LIMIT 1) v ON true
LEFT JOIN LATERAL (SELECT t.run_id, t.finished_at, t.status FROM elt.transform_runs t
                   WHERE t.transform_id = d.transform_id
                   ORDER BY t.run_id DESC LIMIT 1) r ON true;

CREATE VIEW elt.transform_versions AS
SELECT d.name AS transform,
       c.version,
       c.code_hash,
       c.version = (SELECT max(c2.version) FROM elt.transform_code c2
                    WHERE c2.transform_id = c.transform_id) AS current,
       c.lineage_level,
       c.lineage_note,
       c.source_names AS sources,
       c.nondeterministic,
       c.sql,
       c.created_by,
       c.created_at
FROM elt.transform_code c
JOIN elt.transform_defs d USING (transform_id);

GRANT SELECT ON elt.transforms, elt.transform_versions TO PUBLIC;
