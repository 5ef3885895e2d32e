/* elt_governance 0.1.0: foundation — governing, schema versions, audit log */

\echo Use "CREATE EXTENSION elt_governance" to load this file. \quit

/*
 * Written for a hostile search_path: every function pins its own
 * search_path, and catalog tables are written only by the extension's C code,
 * running as the extension owner.  Everything here lives in schema elt.
 */

------------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------------

CREATE SEQUENCE elt.target_id_seq;
CREATE SEQUENCE elt.table_id_seq;

-- What is under contract: schemas (by name) and tables (by regclass, so a
-- rename keeps the contract and pg_dump/pg_restore re-resolves the oid).
CREATE TABLE elt.governed_targets (
    target_id   bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.target_id_seq'),
    kind        text NOT NULL CHECK (kind IN ('schema', 'table')),
    schema_name name,
    rel         regclass,
    policy      text NOT NULL CHECK (policy IN ('enforce', 'warn', 'off')),
    governed_at timestamptz NOT NULL,
    governed_by name NOT NULL,
    reason      text,
    CHECK ((kind = 'schema') = (schema_name IS NOT NULL)),
    CHECK ((kind = 'table') = (rel IS NOT NULL))
);
CREATE UNIQUE INDEX governed_targets_schema_idx
    ON elt.governed_targets (schema_name) WHERE kind = 'schema';
CREATE UNIQUE INDEX governed_targets_rel_idx
    ON elt.governed_targets (rel) WHERE kind = 'table';

-- Every table that has a version history.  table_id is the stable identity;
-- relid follows the live table (NULL once it is dropped).
CREATE TABLE elt.tracked_tables (
    table_id    bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.table_id_seq'),
    relid       regclass UNIQUE,
    schema_name name NOT NULL,
    table_name  name NOT NULL,
    tracked_at  timestamptz NOT NULL,
    dropped_at  timestamptz
);
CREATE INDEX tracked_tables_schema_idx ON elt.tracked_tables (schema_name);

-- One row per recorded shape of a table; append-only.
CREATE TABLE elt.schema_versions (
    table_id     bigint NOT NULL REFERENCES elt.tracked_tables (table_id),
    version      integer NOT NULL CHECK (version > 0),
    relid        oid NOT NULL,
    schema_name  name NOT NULL,
    table_name   name NOT NULL,
    event        text NOT NULL
                 CHECK (event IN ('baseline', 'created', 'altered', 'dropped')),
    shape        jsonb NOT NULL,
    statement    text,
    command_tag  text,
    role         name NOT NULL,
    xid          xid8 NOT NULL,
    recorded_at  timestamptz NOT NULL,
    migration_id bigint,
    PRIMARY KEY (table_id, version)
);
CREATE INDEX schema_versions_recorded_at_idx ON elt.schema_versions (recorded_at);

-- Hash-chained record of every governance action; append-only.
CREATE TABLE elt.audit_log (
    id           bigint PRIMARY KEY CHECK (id > 0),
    logged_at    timestamptz NOT NULL,
    role         name NOT NULL,
    session_role name NOT NULL,
    action       text NOT NULL,
    object       text,
    details      jsonb NOT NULL DEFAULT '{}',
    reason       text,
    prev_hash    text NOT NULL,
    row_hash     text NOT NULL UNIQUE
);
CREATE INDEX audit_log_action_idx ON elt.audit_log (action, logged_at);

SELECT pg_catalog.pg_extension_config_dump('elt.target_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.table_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.governed_targets', '');
SELECT pg_catalog.pg_extension_config_dump('elt.tracked_tables', '');
SELECT pg_catalog.pg_extension_config_dump('elt.schema_versions', '');
SELECT pg_catalog.pg_extension_config_dump('elt.audit_log', '');

GRANT USAGE ON SCHEMA elt TO PUBLIC;

-- The catalog is written only by the extension itself.  Like pg_catalog it
-- is readable by every role.
REVOKE ALL ON elt.governed_targets, elt.tracked_tables, elt.schema_versions,
    elt.audit_log FROM PUBLIC;
GRANT SELECT ON elt.governed_targets, elt.tracked_tables, elt.schema_versions,
    elt.audit_log TO PUBLIC;

-- History tables refuse UPDATE, DELETE and TRUNCATE.
CREATE FUNCTION elt.refuse_history_change() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_refuse_history_change';

CREATE TRIGGER schema_versions_append_only
    BEFORE UPDATE OR DELETE ON elt.schema_versions
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER schema_versions_no_truncate
    BEFORE TRUNCATE ON elt.schema_versions
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON elt.audit_log
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON elt.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

------------------------------------------------------------------------------
-- Shapes and differences
------------------------------------------------------------------------------

-- The shape of a table as jsonb: columns, primary key, constraints, indexes.
-- search_path is pinned so that every expression is printed fully qualified
-- and the same shape always prints the same way.
CREATE FUNCTION elt.table_shape(rel regclass) RETURNS jsonb
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'elt_table_shape';

-- Text for one column as it would appear in CREATE TABLE.
CREATE FUNCTION elt._column_text(col jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT concat_ws(' ',
    col->>'type',
    CASE WHEN col->>'collation' IS NOT NULL AND col->>'collation' <> 'default'
         THEN 'COLLATE ' || (col->>'collation') END,
    CASE WHEN (col->>'not_null')::boolean THEN 'NOT NULL' END,
    CASE WHEN col->>'default' IS NOT NULL THEN 'DEFAULT ' || (col->>'default') END,
    CASE WHEN col->>'identity' IS NOT NULL
         THEN 'GENERATED ' || upper(col->>'identity') || ' AS IDENTITY' END,
    CASE WHEN col->>'generated' IS NOT NULL
         THEN 'GENERATED ALWAYS AS (' || (col->>'generated') || ') STORED' END)
$$;

-- The elements of a JSON array as one comma-separated text (NULL if none).
CREATE FUNCTION elt._json_list(j jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT string_agg(e, ', ')
FROM jsonb_array_elements_text(CASE jsonb_typeof(j) WHEN 'array' THEN j ELSE '[]' END) e
$$;

-- Every difference between two shapes, one row per change, in table order:
-- columns by attribute number (so a rename is a rename), then constraints
-- and indexes by name.
CREATE FUNCTION elt._shape_diff(a jsonb, b jsonb)
    RETURNS TABLE (change text, object text, before text, after text)
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
WITH ca AS (
    SELECT (e->>'attnum')::int AS n, e
    FROM jsonb_array_elements(COALESCE(a->'columns', '[]')) e),
cb AS (
    SELECT (e->>'attnum')::int AS n, e
    FROM jsonb_array_elements(COALESCE(b->'columns', '[]')) e),
cols AS (
    SELECT COALESCE(ca.n, cb.n) AS n, ca.e AS x, cb.e AS y
    FROM ca FULL JOIN cb ON ca.n = cb.n),
ka AS (
    SELECT e->>'name' AS nm, e
    FROM jsonb_array_elements(COALESCE(a->'constraints', '[]')) e),
kb AS (
    SELECT e->>'name' AS nm, e
    FROM jsonb_array_elements(COALESCE(b->'constraints', '[]')) e),
cons AS (
    SELECT COALESCE(ka.nm, kb.nm) AS nm, ka.e AS x, kb.e AS y
    FROM ka FULL JOIN kb ON ka.nm = kb.nm),
ia AS (
    SELECT e->>'name' AS nm, e
    FROM jsonb_array_elements(COALESCE(a->'indexes', '[]')) e),
ib AS (
    SELECT e->>'name' AS nm, e
    FROM jsonb_array_elements(COALESCE(b->'indexes', '[]')) e),
idx AS (
    SELECT COALESCE(ia.nm, ib.nm) AS nm, ia.e AS x, ib.e AS y
    FROM ia FULL JOIN ib ON ia.nm = ib.nm),
changes AS (
    SELECT 0 AS g, 0 AS n, 1 AS s, 'persistence_changed' AS change, NULL::text AS object,
           CASE WHEN (a->>'unlogged')::boolean THEN 'UNLOGGED' ELSE 'LOGGED' END AS before,
           CASE WHEN (b->>'unlogged')::boolean THEN 'UNLOGGED' ELSE 'LOGGED' END AS after
    WHERE (a->'unlogged') IS DISTINCT FROM (b->'unlogged')
    UNION ALL
    SELECT 0, 0, 2, 'partition_key_changed', NULL, a->>'partition_key', b->>'partition_key'
    WHERE (a->'partition_key') IS DISTINCT FROM (b->'partition_key')
    UNION ALL
    SELECT 0, 0, 3, 'options_changed', NULL,
           elt._json_list(a->'options'), elt._json_list(b->'options')
    WHERE COALESCE(a->'options', 'null') <> COALESCE(b->'options', 'null')
    UNION ALL
    SELECT 0, 0, 4, 'row_security_changed', NULL, a->>'row_security', b->>'row_security'
    WHERE (a->'row_security') IS DISTINCT FROM (b->'row_security')
    UNION ALL
    SELECT 0, 0, 5, 'replica_identity_changed', NULL, a->>'replica_identity', b->>'replica_identity'
    WHERE (a->'replica_identity') IS DISTINCT FROM (b->'replica_identity')
    UNION ALL
    SELECT 0, 0, 6, 'owner_changed', NULL, a->>'owner', b->>'owner'
    WHERE (a->'owner') IS DISTINCT FROM (b->'owner')
    UNION ALL
    SELECT 0, 0, 12, 'access_method_changed', NULL, a->>'access_method', b->>'access_method'
    WHERE COALESCE(a->'access_method', 'null') <> COALESCE(b->'access_method', 'null')
    UNION ALL
    SELECT 0, 0, 13, 'of_type_changed', NULL, a->>'of_type', b->>'of_type'
    WHERE COALESCE(a->'of_type', 'null') <> COALESCE(b->'of_type', 'null')
    UNION ALL
    SELECT 0, 0, 7, 'tablespace_changed', NULL, a->>'tablespace', b->>'tablespace'
    WHERE COALESCE(a->'tablespace', 'null') <> COALESCE(b->'tablespace', 'null')
    UNION ALL
    SELECT 0, 0, 8, 'inheritance_changed', NULL,
           elt._json_list(a->'inherits'), elt._json_list(b->'inherits')
    WHERE COALESCE(a->'inherits', '[]') <> COALESCE(b->'inherits', '[]')
    UNION ALL
    SELECT 0, 0, 9, 'partition_of_changed', NULL,
           NULLIF(concat_ws(' ', a->>'partition_of', a->>'partition_bound'), ''),
           NULLIF(concat_ws(' ', b->>'partition_of', b->>'partition_bound'), '')
    WHERE COALESCE(a->'partition_of', 'null') <> COALESCE(b->'partition_of', 'null')
       OR COALESCE(a->'partition_bound', 'null') <> COALESCE(b->'partition_bound', 'null')
    UNION ALL
    SELECT 0, 0, 10, 'partitions_changed', NULL,
           elt._json_list(a->'partitions'), elt._json_list(b->'partitions')
    WHERE COALESCE(a->'partitions', 'null') <> COALESCE(b->'partitions', 'null')
    UNION ALL
    SELECT 0, 0, 11, 'clustered_on_changed', NULL, a->>'clustered_on', b->>'clustered_on'
    WHERE COALESCE(a->'clustered_on', 'null') <> COALESCE(b->'clustered_on', 'null')
    UNION ALL
    SELECT 1, n, 1, 'column_dropped', x->>'name', elt._column_text(x), NULL
    FROM cols WHERE y IS NULL
    UNION ALL
    SELECT 1, n, 1, 'column_added', y->>'name', NULL, elt._column_text(y)
    FROM cols WHERE x IS NULL
    UNION ALL
    SELECT 1, n, 2, 'column_renamed', y->>'name', x->>'name', y->>'name'
    FROM cols WHERE x->>'name' <> y->>'name'
    UNION ALL
    SELECT 1, n, 3, 'column_type_changed', y->>'name', x->>'type', y->>'type'
    FROM cols WHERE x->>'type' <> y->>'type'
    UNION ALL
    SELECT 1, n, 4, 'nullability_changed', y->>'name',
           CASE WHEN (x->>'not_null')::boolean THEN 'NOT NULL' ELSE 'NULL' END,
           CASE WHEN (y->>'not_null')::boolean THEN 'NOT NULL' ELSE 'NULL' END
    FROM cols WHERE x->'not_null' <> y->'not_null'
    UNION ALL
    SELECT 1, n, 5, 'default_changed', y->>'name', x->>'default', y->>'default'
    FROM cols
    WHERE x IS NOT NULL AND y IS NOT NULL
      AND (x->'default') IS DISTINCT FROM (y->'default')
    UNION ALL
    SELECT 1, n, 6, 'collation_changed', y->>'name', x->>'collation', y->>'collation'
    FROM cols
    WHERE x IS NOT NULL AND y IS NOT NULL
      AND (x->'collation') IS DISTINCT FROM (y->'collation')
    UNION ALL
    SELECT 1, n, 7, 'identity_changed', y->>'name', x->>'identity', y->>'identity'
    FROM cols
    WHERE x IS NOT NULL AND y IS NOT NULL
      AND (x->'identity') IS DISTINCT FROM (y->'identity')
    UNION ALL
    SELECT 1, n, 8, 'generated_changed', y->>'name', x->>'generated', y->>'generated'
    FROM cols
    WHERE x IS NOT NULL AND y IS NOT NULL
      AND (x->'generated') IS DISTINCT FROM (y->'generated')
    UNION ALL
    SELECT 1, n, 9, 'storage_changed', y->>'name', x->>'storage', y->>'storage'
    FROM cols
    WHERE x IS NOT NULL AND y IS NOT NULL
      AND COALESCE(x->'storage', 'null') <> COALESCE(y->'storage', 'null')
    UNION ALL
    SELECT 1, n, 10, 'compression_changed', y->>'name', x->>'compression', y->>'compression'
    FROM cols
    WHERE x IS NOT NULL AND y IS NOT NULL
      AND COALESCE(x->'compression', 'null') <> COALESCE(y->'compression', 'null')
    UNION ALL
    SELECT 1, n, 11, 'statistics_changed', y->>'name', x->>'statistics', y->>'statistics'
    FROM cols
    WHERE x IS NOT NULL AND y IS NOT NULL
      AND COALESCE(x->'statistics', 'null') <> COALESCE(y->'statistics', 'null')
    UNION ALL
    -- a constraint whose definition changed only by losing NOT VALID
    SELECT 2, 0, 1, 'constraint_validated', nm, x->>'definition', y->>'definition'
    FROM cons
    WHERE x IS NOT NULL AND y IS NOT NULL
      AND NOT (x->>'validated')::boolean AND (y->>'validated')::boolean
      AND x->>'definition' = (y->>'definition') || ' NOT VALID'
    UNION ALL
    SELECT 2, 0, 2, 'constraint_dropped', nm, x->>'definition', NULL
    FROM cons
    WHERE x IS NOT NULL
      AND (y IS NULL OR (x->>'definition' <> y->>'definition'
                         AND x->>'definition' <> (y->>'definition') || ' NOT VALID'))
    UNION ALL
    SELECT 2, 0, 3, 'constraint_added', nm, NULL, y->>'definition'
    FROM cons
    WHERE y IS NOT NULL
      AND (x IS NULL OR (x->>'definition' <> y->>'definition'
                         AND x->>'definition' <> (y->>'definition') || ' NOT VALID'))
    UNION ALL
    SELECT 3, 0, 1, 'index_dropped', nm, x->>'definition', NULL
    FROM idx WHERE x IS NOT NULL AND (y IS NULL OR x->>'definition' <> y->>'definition')
    UNION ALL
    SELECT 3, 0, 2, 'index_added', nm, NULL, y->>'definition'
    FROM idx WHERE y IS NOT NULL AND (x IS NULL OR x->>'definition' <> y->>'definition'))
SELECT change, object, before, after FROM changes ORDER BY g, n, object, s
$$;

-- One readable sentence for one change.
CREATE FUNCTION elt._describe_change(change text, object text, before text, after text)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE change
    WHEN 'table_renamed' THEN format('renamed table %s to %s', before, after)
    WHEN 'table_dropped' THEN 'dropped table'
    WHEN 'persistence_changed' THEN format('set %s', after)
    WHEN 'partition_key_changed' THEN format('changed partition key from %s to %s', before, after)
    WHEN 'options_changed' THEN format('changed storage options from %s to %s', COALESCE(before, 'none'), COALESCE(after, 'none'))
    WHEN 'row_security_changed' THEN format('row level security %s', after)
    WHEN 'replica_identity_changed' THEN format('set replica identity %s', after)
    WHEN 'owner_changed' THEN format('changed owner from %s to %s', before, after)
    WHEN 'access_method_changed' THEN format('changed access method from %s to %s', before, after)
    WHEN 'of_type_changed' THEN
        CASE WHEN after IS NULL THEN format('no longer of type %s', before)
             ELSE format('made of type %s', after) END
    WHEN 'tablespace_changed' THEN format('moved to tablespace %s', COALESCE(after, 'pg_default'))
    WHEN 'inheritance_changed' THEN format('changed inheritance parents from %s to %s', COALESCE(before, 'none'), COALESCE(after, 'none'))
    WHEN 'partition_of_changed' THEN
        CASE WHEN after IS NULL THEN format('detached from %s', before)
             WHEN before IS NULL THEN format('attached as partition of %s', after)
             ELSE format('changed partition from %s to %s', before, after) END
    WHEN 'partitions_changed' THEN format('changed partitions from %s to %s', COALESCE(before, 'none'), COALESCE(after, 'none'))
    WHEN 'clustered_on_changed' THEN
        CASE WHEN after IS NULL THEN 'removed clustering'
             ELSE format('clustered on index %s', quote_ident(after)) END
    WHEN 'storage_changed' THEN format('set storage of %s to %s', quote_ident(object), COALESCE(after, 'default'))
    WHEN 'compression_changed' THEN format('set compression of %s to %s', quote_ident(object), COALESCE(after, 'default'))
    WHEN 'statistics_changed' THEN format('set statistics target of %s to %s', quote_ident(object), COALESCE(after, 'default'))
    WHEN 'column_added' THEN format('added column %s %s', quote_ident(object), after)
    WHEN 'column_dropped' THEN format('dropped column %s', quote_ident(object))
    WHEN 'column_renamed' THEN format('renamed column %s to %s', quote_ident(before), quote_ident(after))
    WHEN 'column_type_changed' THEN format('changed type of %s from %s to %s', quote_ident(object), before, after)
    WHEN 'nullability_changed' THEN
        CASE after WHEN 'NOT NULL' THEN format('set %s NOT NULL', quote_ident(object))
                   ELSE format('dropped NOT NULL on %s', quote_ident(object)) END
    WHEN 'default_changed' THEN
        CASE WHEN after IS NULL THEN format('dropped default of %s', quote_ident(object))
             WHEN before IS NULL THEN format('set default of %s to %s', quote_ident(object), after)
             ELSE format('changed default of %s from %s to %s', quote_ident(object), before, after) END
    WHEN 'collation_changed' THEN format('changed collation of %s from %s to %s', quote_ident(object), COALESCE(before, 'none'), COALESCE(after, 'none'))
    WHEN 'identity_changed' THEN format('changed identity of %s from %s to %s', quote_ident(object), COALESCE(before, 'none'), COALESCE(after, 'none'))
    WHEN 'generated_changed' THEN format('changed generation of %s from %s to %s', quote_ident(object), COALESCE(before, 'none'), COALESCE(after, 'none'))
    WHEN 'constraint_added' THEN format('added constraint %s %s', quote_ident(object), after)
    WHEN 'constraint_dropped' THEN format('dropped constraint %s', quote_ident(object))
    WHEN 'constraint_validated' THEN format('validated constraint %s', quote_ident(object))
    WHEN 'index_added' THEN format('added index %s %s', quote_ident(object), after)
    WHEN 'index_dropped' THEN format('dropped index %s', quote_ident(object))
    ELSE change END
$$;

-- Differences between two version rows of one table, with table-level
-- changes (rename, drop) first.
CREATE FUNCTION elt._version_diff(a elt.schema_versions, b elt.schema_versions)
    RETURNS TABLE (change text, object text, before text, after text, description text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT d.change, d.object, d.before, d.after,
       elt._describe_change(d.change, d.object, d.before, d.after)
FROM (
    SELECT 0 AS g, 'table_renamed' AS change,
           NULL::text AS object,
           format('%I.%I', a.schema_name, a.table_name) AS before,
           format('%I.%I', b.schema_name, b.table_name) AS after
    WHERE (a.schema_name, a.table_name) IS DISTINCT FROM (b.schema_name, b.table_name)
    UNION ALL
    SELECT 1, 'table_dropped', NULL, NULL, NULL
    WHERE b.event = 'dropped' AND a.event <> 'dropped'
    UNION ALL
    SELECT 2, s.change, s.object, s.before, s.after
    FROM elt._shape_diff(a.shape, b.shape) s
    WHERE b.event <> 'dropped' AND a.event <> 'dropped') d
$$;

-- The tracked identity of a live table, or an error that says what to do.
CREATE FUNCTION elt._table_id(rel regclass) RETURNS bigint
    LANGUAGE plpgsql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tid bigint;
BEGIN
    SELECT t.table_id INTO tid FROM elt.tracked_tables t WHERE t.relid = rel;
    IF tid IS NULL THEN
        RAISE EXCEPTION 'table "%" has no recorded versions', rel
            USING ERRCODE = 'undefined_object',
                  HINT = 'Govern the table or its schema with elt.govern() to start its history; elt.governed lists what is governed.';
    END IF;
    RETURN tid;
END
$$;

------------------------------------------------------------------------------
-- Reading history
------------------------------------------------------------------------------

CREATE FUNCTION elt.table_versions(rel regclass)
    RETURNS SETOF elt.schema_versions
    LANGUAGE sql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT v.* FROM elt.schema_versions v
WHERE v.table_id = elt._table_id(rel)
ORDER BY v.version
$$;

CREATE FUNCTION elt.schema_diff(rel regclass, from_version integer, to_version integer)
    RETURNS TABLE (change text, object text, before text, after text, description text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tid bigint;
    va elt.schema_versions;
    vb elt.schema_versions;
    last_version integer;
BEGIN
    IF rel IS NULL OR from_version IS NULL OR to_version IS NULL THEN
        RAISE EXCEPTION 'table, from_version and to_version must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'elt.table_versions(table) lists the versions of a table.';
    END IF;
    tid := elt._table_id(rel);
    SELECT max(v.version) INTO last_version FROM elt.schema_versions v WHERE v.table_id = tid;
    SELECT * INTO va FROM elt.schema_versions v WHERE v.table_id = tid AND v.version = from_version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'version % of table "%" does not exist', from_version, rel
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Its versions are 1 to %s.', last_version);
    END IF;
    SELECT * INTO vb FROM elt.schema_versions v WHERE v.table_id = tid AND v.version = to_version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'version % of table "%" does not exist', to_version, rel
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Its versions are 1 to %s.', last_version);
    END IF;
    RETURN QUERY SELECT * FROM elt._version_diff(va, vb);
END
$$;

CREATE VIEW elt.schema_history AS
SELECT v.table_id,
       v.schema_name,
       v.table_name,
       v.version,
       v.event,
       v.recorded_at,
       v.role,
       v.command_tag,
       CASE
           WHEN v.event IN ('baseline', 'created') AND p.version IS NULL THEN
               format('%s with %s column%s',
                      CASE v.event WHEN 'created' THEN 'created' ELSE 'baseline' END,
                      jsonb_array_length(v.shape->'columns'),
                      CASE jsonb_array_length(v.shape->'columns') WHEN 1 THEN '' ELSE 's' END)
           WHEN v.event = 'dropped' THEN 'dropped table'
           ELSE concat_ws(': ',
                    CASE WHEN v.event = 'baseline' THEN 'baseline' END,
                    COALESCE((SELECT string_agg(d.description, '; ')
                              FROM elt._version_diff(p, v) d),
                             'no change to the shape'))
       END AS summary,
       v.statement
FROM elt.schema_versions v
LEFT JOIN elt.schema_versions p ON p.table_id = v.table_id AND p.version = v.version - 1;

GRANT SELECT ON elt.schema_history TO PUBLIC;

------------------------------------------------------------------------------
-- Governing
------------------------------------------------------------------------------

CREATE FUNCTION elt.govern(target text, policy text DEFAULT 'enforce',
                           reason text DEFAULT NULL)
    RETURNS integer
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_govern';

CREATE FUNCTION elt.ungovern(target text, reason text DEFAULT NULL)
    RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_ungovern';

-- The policy in force for a table: its own target's, else its schema's.
CREATE FUNCTION elt.policy_for(rel regclass) RETURNS text
    LANGUAGE sql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT COALESCE(
    (SELECT g.policy FROM elt.governed_targets g
     WHERE g.kind = 'table' AND g.rel = policy_for.rel),
    (SELECT g.policy FROM elt.governed_targets g
     JOIN pg_class c ON c.oid = policy_for.rel
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE g.kind = 'schema' AND g.schema_name = n.nspname
       AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'))
$$;

CREATE VIEW elt.governed AS
SELECT g.kind,
       CASE g.kind WHEN 'schema' THEN quote_ident(g.schema_name)
                   ELSE format('%I.%I', n.nspname, c.relname) END AS target,
       g.policy,
       CASE g.kind
           WHEN 'schema' THEN (SELECT count(*) FROM pg_class sc
                               JOIN pg_namespace sn ON sn.oid = sc.relnamespace
                               WHERE sn.nspname = g.schema_name
                                 AND sc.relkind IN ('r', 'p'))
           ELSE 1 END AS tables,
       g.governed_at,
       g.governed_by,
       g.reason
FROM elt.governed_targets g
LEFT JOIN pg_class c ON c.oid = g.rel
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace;

GRANT SELECT ON elt.governed TO PUBLIC;

------------------------------------------------------------------------------
-- Audit
------------------------------------------------------------------------------

CREATE FUNCTION elt.audit_verify(digest jsonb DEFAULT NULL,
    OUT valid boolean, OUT checked bigint, OUT first_broken_id bigint,
    OUT detail text)
    RETURNS record
    LANGUAGE c CALLED ON NULL INPUT
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'elt_audit_verify';

CREATE FUNCTION elt.audit_digest() RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT jsonb_build_object(
    'head_id', h.id,
    'head_hash', h.row_hash,
    'rows', (SELECT count(*) FROM elt.audit_log),
    'database', current_database(),
    'taken_at', now())
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT a.id, a.row_hash FROM elt.audit_log a
                   ORDER BY a.id DESC LIMIT 1) h ON true
$$;

------------------------------------------------------------------------------
-- Event triggers (created last, so they do not fire for this script)
------------------------------------------------------------------------------

CREATE FUNCTION elt.on_ddl_command_start() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_on_ddl_command_start';
CREATE FUNCTION elt.on_sql_drop() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_on_sql_drop';
CREATE FUNCTION elt.on_ddl_command_end() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_on_ddl_command_end';

CREATE EVENT TRIGGER elt_ddl_command_start ON ddl_command_start
    EXECUTE FUNCTION elt.on_ddl_command_start();
CREATE EVENT TRIGGER elt_sql_drop ON sql_drop
    EXECUTE FUNCTION elt.on_sql_drop();
CREATE EVENT TRIGGER elt_ddl_command_end ON ddl_command_end
    EXECUTE FUNCTION elt.on_ddl_command_end();
