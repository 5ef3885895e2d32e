/* elt_governance 0.9.0: the complete current schema, one section per engine */

\echo Use "CREATE EXTENSION elt_governance" to load this file. \quit

/*
 * How this file is maintained.  CREATE EXTENSION elt_governance (the
 * default version) runs this file and nothing else.  An installation of an
 * older version gets here through elt_governance--0.1.0.sql and the upgrade
 * scripts elt_governance--A--B.sql, step by step.  Both ways must end in
 * the same catalog, so every release that changes the schema
 *   1. adds its upgrade script elt_governance--OLD--NEW.sql (released
 *      scripts are never edited), and
 *   2. renames this file to elt_governance--NEW.sql (git mv) and brings it
 *      to the new final state, in the section of the engine concerned: a
 *      table's new column goes at the end of its CREATE TABLE, in the order
 *      the upgrade scripts add them (the upgraded order: SELECT * and row
 *      hashes depend on it); a replaced function or view is written as it
 *      now is; privileges as they end up.
 * test/t/004_upgrade.pl installs both ways and compares the two catalogs:
 * objects, columns in order with types and defaults, constraints, indexes,
 * sequences, function and view definitions, triggers, event triggers,
 * policies, comments, owners, privileges and initial privileges, and the
 * tables pg_dump dumps (pg_extension_config_dump).  It fails when they differ.
 *
 * Written for a hostile search_path: every function pins its own
 * search_path, and catalog tables are written only by the extension's C code,
 * running as the extension owner.  Everything here lives in schema elt.
 * Sections, in dependency order (each holds its engine's sequences, tables,
 * indexes, config dumps, privileges, triggers, functions and views):
 *    1. Roles, schema and shared helpers    8. Lineage
 *    2. Audit log                           9. Checksums and snapshots
 *    3. Governance targets and policy      10. Run manifests, replay and
 *    4. Schema versions                        verification
 *    5. Contracts and migrations           11. Quality checks
 *    6. Backfills                          12. Deployments
 *    7. Transforms and runs                13. Event triggers
 */

-- ==========================================================================
-- 1. Roles, schema and shared helpers
-- ==========================================================================

-- Three group roles, made once per cluster: roles are shared by every
-- database, and DROP EXTENSION leaves them.  One that the extension made
-- (its comment says so: in another database, or before a DROP EXTENSION)
-- is used with the members it was granted to, as long as it cannot log in
-- and has no attributes.  A role of one of these names that someone else
-- made is used only if it is also without members and memberships: it gets
-- powers over governance, and its members with it.
DO $roles$
DECLARE
    r text;
    bad text;
    ours boolean;
BEGIN
    FOREACH r IN ARRAY ARRAY['elt_reader', 'elt_operator', 'elt_admin'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles x WHERE x.rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
            EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r, CASE r
                WHEN 'elt_reader' THEN 'elt_governance: sees every record of the governance catalog'
                WHEN 'elt_operator' THEN 'elt_governance: controls the backfills, checks and purges of every role'
                ELSE 'elt_governance: administers governance (approvers, governed targets) and is elt_reader and elt_operator' END);
            CONTINUE;
        END IF;
        ours := coalesce(pg_catalog.shobj_description(r::pg_catalog.regrole, 'pg_authid') LIKE 'elt_governance: %', false);
        SELECT pg_catalog.concat_ws(', ',
                   CASE WHEN x.rolcanlogin THEN 'it can log in' END,
                   CASE WHEN x.rolsuper THEN 'it is a superuser' END,
                   CASE WHEN x.rolcreaterole OR x.rolcreatedb OR x.rolreplication OR x.rolbypassrls
                        THEN 'it has CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS' END,
                   CASE WHEN NOT ours AND EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                                     JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
                                     WHERE m.member = x.oid
                                       AND g.rolname NOT IN ('elt_reader', 'elt_operator', 'elt_admin'))
                        THEN 'it is a member of other roles' END,
                   CASE WHEN NOT ours AND EXISTS (SELECT FROM pg_catalog.pg_auth_members m WHERE m.roleid = x.oid)
                        THEN 'it has members' END)
        INTO bad
        FROM pg_catalog.pg_roles x WHERE x.rolname = r;
        IF bad <> '' THEN
            RAISE EXCEPTION 'role "%" exists and is not a plain group role: %', r, bad
                USING ERRCODE = '42710',
                      DETAIL = 'elt_governance gives the roles elt_reader, elt_operator and elt_admin powers over governance; their members get them. '
                               || CASE WHEN ours THEN 'It made this one, which has been changed since.'
                                       ELSE 'It did not make this one.' END,
                      HINT = CASE WHEN ours
                                  THEN pg_catalog.format('Make it a group role again (ALTER ROLE %I NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS), then create or update the extension again.', r)
                                  ELSE pg_catalog.format('Rename that role (ALTER ROLE %I RENAME TO ...) or make it a NOLOGIN role without attributes, members or memberships, then create or update the extension again.', r) END;
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                   WHERE m.roleid = 'elt_reader'::pg_catalog.regrole AND m.member = 'elt_admin'::pg_catalog.regrole) THEN
        GRANT elt_reader TO elt_admin;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                   WHERE m.roleid = 'elt_operator'::pg_catalog.regrole AND m.member = 'elt_admin'::pg_catalog.regrole) THEN
        GRANT elt_operator TO elt_admin;
    END IF;
END
$roles$;

GRANT USAGE ON SCHEMA elt TO PUBLIC;

-- Whether the querying role sees every record (elt_reader, superusers).
CREATE FUNCTION elt._sees_all() RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_sees_all';
-- Whether the querying role sees what the catalog records of a role's work:
-- that role's members, elt_reader, superusers (NULL or a dropped role:
-- elt_reader and superusers only).
CREATE FUNCTION elt._sees_role(role oid) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_sees_role';
CREATE FUNCTION elt._sees_role_name(role name) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'elt_sees_role_name';

-- Whether the querying role reads the values of a column of a relation as
-- a query shows them: SELECT on it, and no row-level security applying
-- (which would hide rows).  A relation or column that is gone: no.
CREATE FUNCTION elt._reads_column(rel oid, col name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT coalesce((SELECT has_column_privilege(a.attrelid, a.attnum, 'SELECT')
                        AND NOT row_security_active(a.attrelid)
                 FROM pg_attribute a
                 WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped), false)
$$;

-- The same for whole rows: SELECT on the relation and no row-level security.
CREATE FUNCTION elt._reads_rows(rel oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT coalesce((SELECT has_table_privilege(c.oid, 'SELECT') AND NOT row_security_active(c.oid)
                 FROM pg_class c WHERE c.oid = rel), false)
$$;

-- History tables refuse UPDATE, DELETE and TRUNCATE.
CREATE FUNCTION elt.refuse_history_change() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_refuse_history_change';

-- ==========================================================================
-- 2. Audit log
-- ==========================================================================

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

SELECT pg_catalog.pg_extension_config_dump('elt.audit_log', '');

-- Details can hold values copied from the warehouse's tables: read through
-- elt.audit_trail, which shows each role its own; elt_reader reads it all.
REVOKE ALL ON elt.audit_log FROM PUBLIC;
GRANT SELECT ON elt.audit_log TO elt_reader;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON elt.audit_log
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON elt.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

CREATE FUNCTION elt.audit_verify(digest jsonb DEFAULT NULL,
    OUT valid boolean, OUT checked bigint, OUT first_broken_id bigint,
    OUT detail text)
    RETURNS record
    LANGUAGE c CALLED ON NULL INPUT
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'elt_audit_verify';

-- Every governance action; details are shown for the actions that record
-- only what the catalog shows everyone anyway (names, policies, versions,
-- migrations), and otherwise to the members of the role that acted and to
-- elt_reader: details can hold checksums, row counts, parameters, errors,
-- key bounds and check arguments of tables the reader may not read.
CREATE VIEW elt.audit_trail AS
SELECT a.id, a.logged_at, a.role, a.session_role, a.action, a.object,
       CASE WHEN a.action IN ('govern', 'ungovern', 'policy_changed', 'target_renamed',
                              'version_recorded', 'change_classified', 'migration_begun',
                              'migration_approved', 'migration_ended', 'approver_added',
                              'approver_removed', 'consumer_registered', 'consumer_unregistered',
                              'transform_create', 'transform_update', 'backfill_created',
                              'deploy_init', 'deploy_prepare', 'deploy_canary_stop',
                              'deploy_decommission', 'check_drop')
                 OR elt._sees_role_name(a.role)
            THEN a.details END AS details,
       a.reason, a.prev_hash, a.row_hash
FROM elt.audit_log a;
GRANT SELECT ON elt.audit_trail TO PUBLIC;

-- The chain head, for every role: read through elt.audit_trail (ids and
-- hashes are shown to all; elt.audit_log is not readable by PUBLIC).
CREATE FUNCTION elt.audit_digest() RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT jsonb_build_object(
    'head_id', h.id,
    'head_hash', h.row_hash,
    'rows', (SELECT count(*) FROM elt.audit_trail),
    'database', current_database(),
    'taken_at', now())
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT a.id, a.row_hash FROM elt.audit_trail a
                   ORDER BY a.id DESC LIMIT 1) h ON true
$$;

-- ==========================================================================
-- 3. Governance targets and policy
-- ==========================================================================

CREATE SEQUENCE elt.target_id_seq;

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

SELECT pg_catalog.pg_extension_config_dump('elt.target_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.governed_targets', '');

-- The catalog is written only by the extension itself.  Like pg_catalog it
-- is readable by every role (except where a table says otherwise).
REVOKE ALL ON elt.governed_targets FROM PUBLIC;
GRANT SELECT ON elt.governed_targets TO PUBLIC;
GRANT SELECT ON elt.governed_targets TO elt_reader;

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

-- ==========================================================================
-- 4. Schema versions
-- ==========================================================================

CREATE SEQUENCE elt.table_id_seq;

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
    -- the table's oid when this version was recorded: a historical record
    -- that the audit chain's version_hash covers, so it stays a plain oid
    -- (after a restore it is the old cluster's; elt.tracked_tables.relid,
    -- a regclass, is the live table)
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
    migration_id bigint,                -- references elt.migration_windows (section 5)
    PRIMARY KEY (table_id, version)
);
CREATE INDEX schema_versions_recorded_at_idx ON elt.schema_versions (recorded_at);

SELECT pg_catalog.pg_extension_config_dump('elt.table_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.tracked_tables', '');
SELECT pg_catalog.pg_extension_config_dump('elt.schema_versions', '');

-- The catalog is written only by the extension itself, and readable by
-- every role.
REVOKE ALL ON elt.tracked_tables, elt.schema_versions FROM PUBLIC;
GRANT SELECT ON elt.tracked_tables, elt.schema_versions TO PUBLIC;
GRANT SELECT ON elt.tracked_tables, elt.schema_versions TO elt_reader;

-- History tables refuse UPDATE, DELETE and TRUNCATE.
CREATE TRIGGER schema_versions_append_only
    BEFORE UPDATE OR DELETE ON elt.schema_versions
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER schema_versions_no_truncate
    BEFORE TRUNCATE ON elt.schema_versions
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
    SELECT 0, 0, 14, 'distribution_changed', NULL,
           NULLIF(concat_ws(' ', a->'distribution'->>'method',
                            '(' || quote_ident(a->'distribution'->>'column') || ')',
                            'colocation ' || (a->'distribution'->>'colocation')), ''),
           NULLIF(concat_ws(' ', b->'distribution'->>'method',
                            '(' || quote_ident(b->'distribution'->>'column') || ')',
                            'colocation ' || (b->'distribution'->>'colocation')), '')
    WHERE COALESCE(a->'distribution', 'null') <> COALESCE(b->'distribution', 'null')
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
    SELECT 0, 0, 10, 'partition_attached', x, NULL, x
    FROM jsonb_array_elements_text(CASE jsonb_typeof(b->'partitions')
                                   WHEN 'array' THEN b->'partitions' ELSE '[]' END) x
    WHERE NOT (jsonb_typeof(a->'partitions') = 'array'
               AND a->'partitions' @> jsonb_build_array(x))
    UNION ALL
    SELECT 0, 0, 10, 'partition_detached', x, x, NULL
    FROM jsonb_array_elements_text(CASE jsonb_typeof(a->'partitions')
                                   WHEN 'array' THEN a->'partitions' ELSE '[]' END) x
    WHERE NOT (jsonb_typeof(b->'partitions') = 'array'
               AND b->'partitions' @> jsonb_build_array(x))
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
    WHEN 'distribution_changed' THEN
        CASE WHEN before IS NULL THEN format('distributed by Citus: %s', after)
             WHEN after IS NULL THEN format('no longer distributed by Citus (was %s)', before)
             ELSE format('changed Citus distribution from %s to %s', before, after) END
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
    WHEN 'partition_attached' THEN format('partition %s attached', object)
    WHEN 'partition_detached' THEN format('partition %s detached', object)
    WHEN 'partition_dropped' THEN format('partition %s dropped', object)
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
    SELECT 2,
           CASE WHEN s.change = 'partition_detached' AND b.command_tag LIKE 'DROP %'
                THEN 'partition_dropped' ELSE s.change END,
           s.object, s.before, s.after
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

-- ==========================================================================
-- 5. Contracts and migrations
-- ==========================================================================

CREATE SEQUENCE elt.migration_id_seq;
CREATE SEQUENCE elt.change_id_seq;
CREATE SEQUENCE elt.approval_id_seq;

-- Who may approve a migration (a name: a person, a team, a role).
CREATE TABLE elt.approvers (
    approver  text PRIMARY KEY CHECK (approver <> ''),
    added_by  name NOT NULL,
    added_at  timestamptz NOT NULL,
    note      text
);

-- Change windows.  A window opened by elt.migration_begin() belongs to one
-- session (backend_pid, backend_start) and is open until elt.migration_end()
-- or the end of that session.  A window opened through the settings
-- elt.migration and elt.approved_by (opened_via 'settings') is joined by
-- every session of the same session user with the same settings until
-- elt.migration_end(); approved_by is NULL when it approves nothing.
CREATE TABLE elt.migration_windows (
    migration_id  bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.migration_id_seq'),
    name          text NOT NULL CHECK (name <> ''),
    reason        text NOT NULL CHECK (reason <> ''),
    approved_by   text,
    opened_by     name NOT NULL,
    role          name NOT NULL,
    backend_pid   integer NOT NULL,
    backend_start timestamptz,
    opened_at     timestamptz NOT NULL,
    closed_at     timestamptz,
    opened_via    text NOT NULL DEFAULT 'function'
                  CHECK (opened_via IN ('function', 'settings'))
);

-- Approvals given by an approver in their own session, for a migration of a
-- given name to be opened by a given session user; with
-- elt.require_second_approver on, migration_begin() uses one up
-- (migration_id is set then).
CREATE TABLE elt.migration_approvals (
    approval_id  bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.approval_id_seq'),
    name         text NOT NULL CHECK (name <> ''),
    approver     text NOT NULL,
    requested_by text NOT NULL,
    note         text,
    approved_at  timestamptz NOT NULL,
    migration_id bigint UNIQUE REFERENCES elt.migration_windows (migration_id)
);

-- External readers of a relation and the columns they use (NULL: all).
CREATE TABLE elt.consumer_registrations (
    rel           regclass NOT NULL,
    consumer      text NOT NULL CHECK (consumer <> ''),
    columns       text[],
    registered_by name NOT NULL,
    registered_at timestamptz NOT NULL,
    PRIMARY KEY (rel, consumer)
);

-- One row per finding of a classified statement that ran (one 'safe' row for
-- a statement on a governed object with no finding); append-only.
CREATE TABLE elt.schema_changes (
    change_id    bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.change_id_seq'),
    recorded_at  timestamptz NOT NULL,
    role         name NOT NULL,
    xid          xid8 NOT NULL,
    command_tag  text,
    statement    text,
    rule         text,
    class        text NOT NULL CHECK (class IN ('safe', 'breaking', 'lock_hazard', 'advice')),
    object       text NOT NULL,
    reason       text NOT NULL,
    dependents   text[] NOT NULL DEFAULT '{}',
    suggestion   text,
    policy       text NOT NULL CHECK (policy IN ('enforce', 'warn', 'off')),
    decision     text NOT NULL
                 CHECK (decision IN ('allowed', 'approved', 'warned', 'recorded')),
    migration_id bigint REFERENCES elt.migration_windows (migration_id),
    CHECK ((class = 'safe') = (rule IS NULL))
);
CREATE INDEX schema_changes_recorded_at_idx ON elt.schema_changes (recorded_at);
CREATE INDEX schema_changes_migration_idx ON elt.schema_changes (migration_id)
    WHERE migration_id IS NOT NULL;

ALTER TABLE elt.schema_versions
    ADD FOREIGN KEY (migration_id) REFERENCES elt.migration_windows (migration_id);
CREATE INDEX schema_versions_migration_idx ON elt.schema_versions (migration_id)
    WHERE migration_id IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('elt.migration_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.change_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.approval_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.migration_approvals', '');
SELECT pg_catalog.pg_extension_config_dump('elt.approvers', '');
SELECT pg_catalog.pg_extension_config_dump('elt.migration_windows', '');
SELECT pg_catalog.pg_extension_config_dump('elt.consumer_registrations', '');
SELECT pg_catalog.pg_extension_config_dump('elt.schema_changes', '');

REVOKE ALL ON elt.approvers, elt.migration_windows, elt.migration_approvals,
    elt.consumer_registrations, elt.schema_changes FROM PUBLIC;
GRANT SELECT ON elt.approvers, elt.migration_windows, elt.migration_approvals,
    elt.consumer_registrations, elt.schema_changes TO PUBLIC;
GRANT SELECT ON elt.approvers, elt.migration_windows, elt.migration_approvals,
    elt.consumer_registrations, elt.schema_changes TO elt_reader;

CREATE TRIGGER schema_changes_append_only
    BEFORE UPDATE OR DELETE ON elt.schema_changes
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER schema_changes_no_truncate
    BEFORE TRUNCATE ON elt.schema_changes
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

------------------------------------------------------------------------------
-- Migrations and approvers
------------------------------------------------------------------------------

CREATE FUNCTION elt.approver_add(approver text, note text DEFAULT NULL)
    RETURNS void
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_approver_add';

CREATE FUNCTION elt.approver_remove(approver text)
    RETURNS void
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_approver_remove';

CREATE FUNCTION elt.migration_begin(name text, reason text, approved_by text)
    RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_migration_begin';

-- An approver approves a migration, by name, in their own session.
CREATE FUNCTION elt.migration_approve(name text, requested_by text,
                                      note text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_migration_approve';

CREATE FUNCTION elt.migration_end() RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_migration_end';

-- The migration open in this session, or NULL.
CREATE FUNCTION elt.migration_current() RETURNS bigint
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'elt_migration_current';

-- Whether the session that opened a window still runs (pg_stat_activity
-- hides backend_start of other roles' sessions).
CREATE FUNCTION elt._backend_alive(pid integer, started timestamptz) RETURNS boolean
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'elt_backend_alive';

CREATE VIEW elt.migrations AS
SELECT m.migration_id,
       m.name,
       m.reason,
       m.approved_by,
       m.opened_by,
       m.role,
       m.opened_at,
       m.closed_at,
       CASE
           WHEN m.closed_at IS NOT NULL THEN 'closed'
           WHEN m.opened_via = 'settings' THEN 'open'
           WHEN elt._backend_alive(m.backend_pid, m.backend_start) THEN 'open'
           ELSE 'abandoned'
       END AS status,
       (SELECT count(*) FROM elt.schema_changes c
        WHERE c.migration_id = m.migration_id AND c.class <> 'safe') AS changes,
       (SELECT count(*) FROM elt.schema_versions v
        WHERE v.migration_id = m.migration_id) AS versions,
       m.opened_via
FROM elt.migration_windows m;

GRANT SELECT ON elt.migrations TO PUBLIC;

-- The non-safe findings of the statements the querying role ran, or a role
-- whose privileges it has (a superuser: every role's), newest first: where a
-- tool's user (dbt, Alembic) looks for the warnings its client did not show.
-- elt.schema_changes shows every row to PUBLIC already; this view only picks
-- the reader's own (a dropped role's rows: no one's).
CREATE VIEW elt.my_findings WITH (security_barrier = true) AS
SELECT c.change_id,
       c.recorded_at,
       c.role,
       c.rule,
       c.class,
       c.decision,
       c.policy,
       c.object,
       c.reason,
       c.suggestion,
       c.dependents,
       c.command_tag,
       c.statement,
       c.migration_id,
       m.name AS migration
FROM elt.schema_changes c
LEFT JOIN elt.migration_windows m ON m.migration_id = c.migration_id
WHERE c.class <> 'safe'
  AND coalesce(pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(c.role)),
                                      'USAGE'), false)
ORDER BY c.change_id DESC;

GRANT SELECT ON elt.my_findings TO PUBLIC;

------------------------------------------------------------------------------
-- Consumers
------------------------------------------------------------------------------

CREATE FUNCTION elt.consumer_register(rel regclass, consumer text,
                                      columns text[] DEFAULT NULL)
    RETURNS void
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_consumer_register';

CREATE FUNCTION elt.consumer_unregister(rel regclass, consumer text)
    RETURNS void
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_consumer_unregister';

-- Who reads what: registered consumers of any relation, and the views,
-- materialized views and functions that depend on a governed table
-- (pg_depend), with the columns they use where PostgreSQL records them.
CREATE VIEW elt.consumers AS
WITH governed_tables AS (
    SELECT c.oid
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
      AND EXISTS (SELECT 1 FROM elt.governed_targets g
                  WHERE (g.kind = 'table' AND g.rel = c.oid::pg_catalog.regclass)
                     OR (g.kind = 'schema' AND g.schema_name = n.nspname))),
deps AS (
    SELECT d.refobjid AS rel,
           CASE WHEN d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                THEN r.ev_class ELSE d.objid END AS objid,
           d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AS is_rule,
           d.refobjsubid
    FROM pg_catalog.pg_depend d
    JOIN governed_tables t ON t.oid = d.refobjid
    LEFT JOIN pg_catalog.pg_rewrite r
           ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND r.oid = d.objid
    WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.deptype = 'n'
      AND d.classid IN ('pg_catalog.pg_rewrite'::pg_catalog.regclass,
                        'pg_catalog.pg_proc'::pg_catalog.regclass))
SELECT 'registered'::text AS kind,
       c.rel,
       c.consumer,
       c.columns,
       c.registered_by,
       c.registered_at
FROM elt.consumer_registrations c
UNION ALL
SELECT CASE WHEN NOT d.is_rule THEN 'function'
            WHEN v.relkind = 'm' THEN 'materialized view'
            ELSE 'view' END,
       d.rel::pg_catalog.regclass,
       CASE WHEN d.is_rule THEN d.objid::pg_catalog.regclass::text
            ELSE d.objid::pg_catalog.regprocedure::text END,
       CASE WHEN bool_or(d.refobjsubid = 0) THEN NULL
            ELSE array_agg(DISTINCT a.attname::text ORDER BY a.attname::text)
                 FILTER (WHERE a.attname IS NOT NULL) END,
       NULL::name,
       NULL::timestamptz
FROM deps d
LEFT JOIN pg_catalog.pg_class v ON d.is_rule AND v.oid = d.objid
LEFT JOIN pg_catalog.pg_attribute a
       ON a.attrelid = d.rel AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
WHERE NOT (d.is_rule AND d.objid = d.rel)
GROUP BY d.rel, d.objid, d.is_rule, v.relkind;

GRANT SELECT ON elt.consumers TO PUBLIC;

------------------------------------------------------------------------------
-- Classification
------------------------------------------------------------------------------

-- Every rule: code, class, what it catches, and the safe way.
CREATE FUNCTION elt.rules(OUT rule text, OUT class text, OUT title text,
                          OUT suggestion text)
    RETURNS SETOF record
    LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'elt_rules';

-- Classify a script without running it.
CREATE FUNCTION elt.check_ddl(sql text, single_transaction boolean DEFAULT false,
    OUT statement_no integer, OUT statement text, OUT rule text,
    OUT class text, OUT object text, OUT reason text, OUT dependents text[],
    OUT suggestion text)
    RETURNS SETOF record
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'elt_check_ddl';

-- What a script would break, through the lineage graph: the dependents of
-- every breaking finding of check_ddl (depth 1), and for each transform
-- among them, what its next failed run leaves stale: its target, the
-- transforms whose current version reads that target (and so on, depth 2,
-- 3, ...), and the consumers registered on each stale target.
CREATE FUNCTION elt.impact_of_ddl(sql text, single_transaction boolean DEFAULT false)
    RETURNS TABLE (statement_no integer, rule text, object text, depth integer,
                   kind text, name text, via text)
    LANGUAGE sql STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE
    found AS (
        SELECT f.statement_no, f.rule, f.object, d.dependent,
               t.transform_id
        FROM elt.check_ddl($1, $2) f
        CROSS JOIN LATERAL unnest(f.dependents) d(dependent)
        LEFT JOIN elt.transform_defs t
          ON d.dependent OPERATOR(pg_catalog.=) format('transform %s (owner %s)', t.name, t.owner)
        WHERE f.class OPERATOR(pg_catalog.=) 'breaking'),
    walk (statement_no, rule, object, depth, transform_id, via, path) AS (
        SELECT f.statement_no, f.rule, f.object, 1, f.transform_id, NULL::text,
               ARRAY[f.transform_id]
        FROM found f WHERE f.transform_id IS NOT NULL
        UNION ALL
        SELECT w.statement_no, w.rule, w.object, w.depth OPERATOR(pg_catalog.+) 1,
               t2.transform_id, t1.name, w.path OPERATOR(pg_catalog.||) t2.transform_id
        FROM walk w
        JOIN elt.transform_defs t1 ON t1.transform_id OPERATOR(pg_catalog.=) w.transform_id
        JOIN elt.transform_defs t2 ON t2.transform_id OPERATOR(pg_catalog.<>) ALL (w.path)
        WHERE t1.target OPERATOR(pg_catalog.=) ANY (
                  (SELECT v.sources FROM elt.transform_code v
                   WHERE v.transform_id OPERATOR(pg_catalog.=) t2.transform_id
                   ORDER BY v.version DESC LIMIT 1)::regclass[])),
    stale AS (
        SELECT DISTINCT ON (w.statement_no, w.rule, w.object, w.transform_id)
               w.*, t.name AS transform, t.target
        FROM walk w JOIN elt.transform_defs t USING (transform_id)
        ORDER BY w.statement_no, w.rule, w.object, w.transform_id, w.depth)
    SELECT f.statement_no, f.rule, f.object, 1,
           CASE WHEN f.transform_id IS NOT NULL THEN 'transform'
                WHEN f.dependent LIKE 'materialized view %' THEN 'materialized view'
                ELSE split_part(f.dependent, ' ', 1) END,
           CASE WHEN f.transform_id IS NOT NULL
                THEN (SELECT t.name FROM elt.transform_defs t
                      WHERE t.transform_id OPERATOR(pg_catalog.=) f.transform_id)
                WHEN f.dependent LIKE 'materialized view %' THEN substr(f.dependent, 19)
                ELSE substr(f.dependent, strpos(f.dependent, ' ') OPERATOR(pg_catalog.+) 1) END,
           NULL::text
    FROM found f
    UNION ALL
    SELECT s.statement_no, s.rule, s.object, s.depth, 'transform', s.transform, s.via
    FROM stale s WHERE s.depth OPERATOR(pg_catalog.>) 1
    UNION ALL
    SELECT s.statement_no, s.rule, s.object, s.depth, 'target', s.target::text, s.transform
    FROM stale s
    UNION ALL
    SELECT s.statement_no, s.rule, s.object, s.depth, 'consumer', r.consumer, s.transform
    FROM stale s JOIN elt.consumer_registrations r ON r.rel OPERATOR(pg_catalog.=) s.target
    ORDER BY 1, 2, 3, 4, 5, 6
$$;

-- ==========================================================================
-- 6. Backfills
-- ==========================================================================

CREATE SEQUENCE elt.backfill_id_seq;

-- One row per backfill.  Key bounds are stored as text in ISO form (they are
-- written and read with DateStyle ISO and TimeZone UTC), whatever the key's
-- type.  state is what the backfill should be doing; elt.backfill_status
-- shows a running backfill with no live worker as 'interrupted'.
CREATE TABLE elt.backfills (
    backfill_id        bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.backfill_id_seq'),
    name               text NOT NULL UNIQUE CHECK (name <> ''),
    rel                regclass NOT NULL,
    key_column         name NOT NULL,
    key_type           regtype NOT NULL,
    sql                text NOT NULL,
    search_path        text NOT NULL,
    chunk_rows         integer NOT NULL CHECK (chunk_rows > 0),
    options            jsonb NOT NULL,
    owner              name NOT NULL,
    schema_version     integer,
    state              text NOT NULL DEFAULT 'created'
                       CHECK (state IN ('created', 'running', 'paused', 'finished',
                                        'failed', 'cancelled')),
    state_reason       text,
    runner             text CHECK (runner IN ('workers', 'session')),
    workers            integer NOT NULL DEFAULT 0,
    generation         integer NOT NULL DEFAULT 0,
    planned_end        text,
    rows_estimate      bigint,
    next_lower         text,
    chunks_planned     integer NOT NULL DEFAULT 0,
    chunk_rows_current integer NOT NULL,
    planning_done      boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    launched_at        timestamptz,
    finished_at        timestamptz
);
CREATE INDEX backfills_rel_idx ON elt.backfills (rel);

-- One row per planned chunk: [lower_bound, upper_bound) of the key (on a
-- hash-distributed Citus table, within one shard).  The final chunk gets its
-- upper bound (above the greatest key) when it runs.
-- A chunk's statement and its update to 'done' commit together.
CREATE TABLE elt.backfill_chunks (
    backfill_id    bigint NOT NULL REFERENCES elt.backfills (backfill_id) ON DELETE CASCADE,
    chunk_no       integer NOT NULL CHECK (chunk_no > 0),
    lower_bound    text,
    upper_bound    text,
    final          boolean NOT NULL DEFAULT false,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'done', 'failed')),
    rows_planned   bigint,
    rows_affected  bigint,
    attempts       integer NOT NULL DEFAULT 0,
    retry_at       timestamptz,
    duration_ms    double precision,
    last_error     text,
    planned_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    -- on Citus, the shard a chunk lies in (its shard id and hash range when
    -- planned); NULL for a chunk planned over the whole relation
    shard_id       bigint,
    shard_min      integer,
    shard_max      integer,
    PRIMARY KEY (backfill_id, chunk_no)
);
-- claims scan only pending chunks; progress reads recent finished ones
CREATE INDEX backfill_chunks_pending_idx ON elt.backfill_chunks (backfill_id, chunk_no)
    WHERE state = 'pending';
CREATE INDEX backfill_chunks_finished_idx ON elt.backfill_chunks (backfill_id, finished_at)
    WHERE finished_at IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('elt.backfill_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.backfills', '');
SELECT pg_catalog.pg_extension_config_dump('elt.backfill_chunks', '');

-- Key bounds and errors quote the table's values: read through
-- elt.backfill_status and elt.backfill_chunk_status, which show each role
-- what it may see; elt_reader reads them all.
REVOKE ALL ON elt.backfills, elt.backfill_chunks FROM PUBLIC;
GRANT SELECT ON elt.backfills, elt.backfill_chunks TO elt_reader;

------------------------------------------------------------------------------
-- Functions
------------------------------------------------------------------------------

CREATE FUNCTION elt.backfill_create(name text, relation regclass, sql text,
                                    key text DEFAULT NULL,
                                    chunk_rows integer DEFAULT 10000,
                                    options jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_backfill_create';

CREATE FUNCTION elt.backfill_start(name text, workers integer DEFAULT 1)
    RETURNS integer
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_backfill_start';

CREATE FUNCTION elt.backfill_pause(name text) RETURNS void
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_backfill_pause';

CREATE FUNCTION elt.backfill_resume(name text) RETURNS integer
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_backfill_resume';

CREATE FUNCTION elt.backfill_cancel(name text) RETURNS void
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_backfill_cancel';

CREATE FUNCTION elt.backfill_retry(name text) RETURNS integer
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_backfill_retry';

CREATE FUNCTION elt.backfill_purge(older_than interval) RETURNS integer
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_backfill_purge';

-- The same work as the workers, in the calling session, one transaction per
-- chunk (for pg_cron).
CREATE PROCEDURE elt.backfill_run(name text, max_chunks integer DEFAULT NULL,
                                  max_seconds integer DEFAULT NULL)
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_backfill_run';

-- Processes (workers and backfill_run sessions) working on a backfill now.
CREATE FUNCTION elt._backfill_live_workers(backfill_id bigint) RETURNS integer
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'elt_backfill_live_workers';

------------------------------------------------------------------------------
-- Progress
------------------------------------------------------------------------------

-- Errors and state reasons (which quote what failed) for the owner's
-- members and elt_reader.
CREATE VIEW elt.backfill_status AS
SELECT b.name,
       CASE WHEN b.state = 'running' AND b.runner = 'workers' AND w.live = 0
            THEN 'interrupted' ELSE b.state END AS state,
       b.rel AS relation,
       c.done AS chunks_done,
       c.failed AS chunks_failed,
       CASE WHEN b.planning_done OR b.state IN ('finished', 'cancelled', 'failed')
            THEN c.total
            ELSE c.total + pg_catalog.ceil(GREATEST(COALESCE(b.rows_estimate, 0) - c.rows_planned, 0)
                                  / GREATEST(b.chunk_rows_current, 1))::bigint
       END AS chunks_total,
       c.rows_done,
       t.rows_total AS rows_total_estimate,
       c.rows_affected,
       CASE WHEN b.state = 'finished' THEN 100.0
            WHEN t.rows_total > 0
            THEN LEAST(pg_catalog.round(100.0 * c.rows_done / t.rows_total, 1), 100.0)
            ELSE 0.0 END AS percent,
       r.rows_per_second,
       CASE WHEN b.state = 'running' AND r.rows_per_second > 0
            THEN pg_catalog.make_interval(secs => GREATEST(t.rows_total - c.rows_done, 0)
                                                  / r.rows_per_second)
       END AS eta,
       CASE WHEN o.sees
            THEN COALESCE(e.last_error, CASE WHEN b.state IN ('failed', 'paused') THEN b.state_reason END)
       END AS last_error,
       w.live AS live_workers,
       CASE WHEN o.sees THEN b.state_reason END AS state_reason,
       b.runner,
       b.owner,
       b.created_at,
       b.started_at,
       b.finished_at
FROM elt.backfills b
CROSS JOIN LATERAL (SELECT elt._sees_role_name(b.owner) AS sees) o
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE ch.state = 'done') AS done,
           count(*) FILTER (WHERE ch.state = 'failed') AS failed,
           count(*) AS total,
           COALESCE(sum(ch.rows_planned) FILTER (WHERE ch.state = 'done'), 0) AS rows_done,
           COALESCE(sum(ch.rows_planned), 0) AS rows_planned,
           COALESCE(sum(ch.rows_affected) FILTER (WHERE ch.state = 'done'), 0) AS rows_affected
    FROM elt.backfill_chunks ch
    WHERE ch.backfill_id = b.backfill_id) c
CROSS JOIN LATERAL (
    SELECT CASE WHEN b.state = 'finished' OR (b.planning_done AND NOT EXISTS (
                    SELECT 1 FROM elt.backfill_chunks f
                    WHERE f.backfill_id = b.backfill_id AND f.final AND f.rows_planned IS NULL))
                THEN c.rows_planned
                ELSE GREATEST(COALESCE(b.rows_estimate, 0), c.rows_planned) END AS rows_total) t
CROSS JOIN LATERAL (
    SELECT pg_catalog.round(sum(ch.rows_planned)
               / GREATEST(EXTRACT(epoch FROM pg_catalog.now()
                                  - GREATEST(pg_catalog.now() - interval '60 seconds', b.started_at)), 1)
           , 1) AS rows_per_second
    FROM elt.backfill_chunks ch
    WHERE ch.backfill_id = b.backfill_id AND ch.finished_at IS NOT NULL
      AND ch.finished_at > pg_catalog.now() - interval '60 seconds'
      AND ch.state = 'done') r
LEFT JOIN LATERAL (
    SELECT ch.last_error
    FROM elt.backfill_chunks ch
    WHERE ch.backfill_id = b.backfill_id AND ch.last_error IS NOT NULL
    ORDER BY COALESCE(ch.finished_at, ch.retry_at, ch.planned_at) DESC
    LIMIT 1) e ON true
CROSS JOIN LATERAL (SELECT elt._backfill_live_workers(b.backfill_id) AS live) w;

-- Every chunk of every backfill; key bounds for the roles that may read the
-- key column (without row-level security) and the backfill owner's members,
-- errors for the owner's members; elt_reader sees all.
CREATE VIEW elt.backfill_chunk_status AS
SELECT b.name AS backfill, c.chunk_no,
       CASE WHEN b.bounds THEN c.lower_bound END AS lower_bound,
       CASE WHEN b.bounds THEN c.upper_bound END AS upper_bound,
       c.final, c.state, c.rows_planned, c.rows_affected, c.attempts, c.retry_at, c.duration_ms,
       CASE WHEN b.sees THEN c.last_error END AS last_error,
       c.planned_at, c.finished_at
FROM elt.backfill_chunks c
-- what the reader sees, decided once per backfill (OFFSET 0), not per chunk
JOIN (SELECT b.backfill_id, b.name, o.sees, o.sees OR elt._reads_column(b.rel, b.key_column) AS bounds
      FROM elt.backfills b
      CROSS JOIN LATERAL (SELECT elt._sees_role_name(b.owner) AS sees) o
      OFFSET 0) b ON b.backfill_id = c.backfill_id;

GRANT SELECT ON elt.backfill_status, elt.backfill_chunk_status TO PUBLIC;

-- ==========================================================================
-- 7. Transforms and runs
-- ==========================================================================

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

SELECT pg_catalog.pg_extension_config_dump('elt.transform_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.transform_defs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.transform_code', '');
SELECT pg_catalog.pg_extension_config_dump('elt.transform_runs', '');

-- Definitions and code are readable by every role, like the rest of the
-- catalog; runs hold parameters and errors: read through
-- elt.transform_run_history, which shows each role its own.
REVOKE ALL ON elt.transform_defs, elt.transform_code, elt.transform_runs FROM PUBLIC;
GRANT SELECT ON elt.transform_defs, elt.transform_code TO PUBLIC;
GRANT SELECT ON elt.transform_defs, elt.transform_code, elt.transform_runs TO elt_reader;

-- Versions and runs are history: never rewritten.
CREATE TRIGGER transform_code_append_only
    BEFORE UPDATE OR DELETE ON elt.transform_code
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER transform_code_no_truncate
    BEFORE TRUNCATE ON elt.transform_code
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER transform_runs_append_only
    BEFORE UPDATE OR DELETE ON elt.transform_runs
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER transform_runs_no_truncate
    BEFORE TRUNCATE ON elt.transform_runs
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

-- Undo of transform runs (elt.run_revert()).  One row per transform run
-- that committed and wrote its target since 0.9.0: the transaction id its
-- rows carry (xmin, 32 bits), the target's columns and primary key then,
-- the transaction ids that wrote the rows its images hold (image_xids), and
-- its before-images: 'kept', 'over_limit' (it updated or deleted more
-- rows than elt.undo_max_rows, so none were kept) or 'purged' (finished
-- more than elt.undo_retention ago, or purged by elt.run_undo_purge()).
-- Not dumped: transaction ids do not survive a dump and restore.
CREATE TABLE elt.run_undo (
    run_id       bigint PRIMARY KEY,
    transform_id bigint NOT NULL,
    target       regclass NOT NULL,
    xid          bigint NOT NULL,
    shape        text NOT NULL,
    images       bigint NOT NULL,
    image_xids   bigint[] NOT NULL DEFAULT '{}',
    state        text NOT NULL CHECK (state IN ('kept', 'over_limit', 'purged')),
    finished_at  timestamptz NOT NULL
);
CREATE INDEX run_undo_target_idx ON elt.run_undo (target, run_id);
CREATE INDEX run_undo_xid_idx ON elt.run_undo (target, xid);
CREATE INDEX run_undo_finished_idx ON elt.run_undo (transform_id, finished_at) WHERE state <> 'purged';

-- The rows a run updated or deleted, as they were before it: the row's
-- text under canonical settings, its key (elt._lineage_key_text of its
-- primary key as a row) and the transaction id that wrote it (for a row a
-- revert put back, the one of the run that first wrote it).
CREATE TABLE elt.run_undo_images (
    run_id    bigint NOT NULL,
    key       text NOT NULL,
    image     text NOT NULL,
    image_xid bigint NOT NULL
);
CREATE INDEX run_undo_images_run_idx ON elt.run_undo_images (run_id);

-- Rows a revert put back: they carry the revert's transaction id (xid);
-- owner_xid is the run that wrote them, for a later revert of that run.
CREATE TABLE elt.run_undo_restored (
    rel         regclass NOT NULL,
    xid         bigint NOT NULL,
    key         text NOT NULL,
    owner_xid   bigint NOT NULL,
    restored_at timestamptz NOT NULL
);
CREATE INDEX run_undo_restored_row_idx ON elt.run_undo_restored (rel, xid, key);
CREATE INDEX run_undo_restored_owner_idx ON elt.run_undo_restored (rel, owner_xid);

-- Reverted runs (history): who reverted them, why, and, for a run reverted
-- because another was (cascade), that run.
CREATE TABLE elt.run_reverts (
    run_id        bigint PRIMARY KEY,
    reverted_at   timestamptz NOT NULL,
    reverted_by   name NOT NULL,
    reason        text NOT NULL,
    cascade_of    bigint,
    rows_removed  bigint NOT NULL,
    rows_restored bigint NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('elt.run_reverts', '');
REVOKE ALL ON elt.run_undo, elt.run_undo_images, elt.run_undo_restored, elt.run_reverts FROM PUBLIC;
GRANT SELECT ON elt.run_undo, elt.run_reverts TO elt_reader;
CREATE TRIGGER run_reverts_append_only
    BEFORE UPDATE OR DELETE ON elt.run_reverts
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER run_reverts_no_truncate
    BEFORE TRUNCATE ON elt.run_reverts
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
                                  lineage text DEFAULT 'row', sandbox name DEFAULT NULL,
                                  sql text DEFAULT NULL, version integer DEFAULT NULL)
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

-- Every transform run; its parameters and error for the members of the
-- role that ran it and of the transform's owner, and elt_reader; when it
-- was reverted (elt.run_revert()).
CREATE VIEW elt.transform_run_history AS
SELECT r.run_id, d.name AS transform, r.transform_id, r.version, r.code_hash,
       CASE WHEN v.sees THEN r.params END AS params,
       r.lineage, r.status, r.started_at, r.finished_at, r.rows_read, r.rows_written,
       r.rows_deleted, r.role,
       CASE WHEN v.sees THEN r.error END AS error,
       r.random_seed,
       rv.reverted_at
FROM elt.transform_runs r
JOIN elt.transform_defs d ON d.transform_id = r.transform_id
LEFT JOIN elt.run_reverts rv ON rv.run_id = r.run_id
CROSS JOIN LATERAL (SELECT elt._sees_role_name(r.role) OR elt._sees_role_name(d.owner) AS sees) v;

GRANT SELECT ON elt.transform_run_history TO PUBLIC;

-- ==========================================================================
-- 8. Lineage
-- ==========================================================================

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
-- src/lineage_chunk.c); elt.lineage_rows decodes it.
CREATE TABLE elt.lineage_chunks (
    run_id    bigint NOT NULL,
    rel       regclass NOT NULL,
    dir       "char" NOT NULL CHECK (dir IN ('t', 's')),
    other_rel regclass NOT NULL,
    bucket    bigint NOT NULL,
    entries   integer NOT NULL,
    data      bytea NOT NULL
) WITH (toast_tuple_target = 8160);
CREATE INDEX lineage_chunks_lookup_idx ON elt.lineage_chunks (rel, dir, bucket, run_id);
CREATE INDEX lineage_chunks_run_idx ON elt.lineage_chunks (run_id);

-- The bucket sizes (bits) in use for a relation and direction: a lookup
-- reads, for each, the one bucket its key falls in.
CREATE TABLE elt.lineage_layout (
    rel  regclass NOT NULL,
    dir  "char" NOT NULL,
    bits integer NOT NULL,
    PRIMARY KEY (rel, dir, bits)
);
SELECT pg_catalog.pg_extension_config_dump('elt.lineage_columns', '');
SELECT pg_catalog.pg_extension_config_dump('elt.lineage_chunks', '');
SELECT pg_catalog.pg_extension_config_dump('elt.lineage_layout', '');

-- Column lineage is readable by every role, like the rest of the catalog.
-- Row lineage holds key values of the sources, so it is read only through
-- elt.trace() and elt.impact(), which check the caller's privileges on each
-- relation (not even elt_reader reads it).
REVOKE ALL ON elt.lineage_columns, elt.lineage_chunks, elt.lineage_layout FROM PUBLIC;
GRANT SELECT ON elt.lineage_columns TO PUBLIC;
GRANT SELECT ON elt.lineage_columns TO elt_reader;

-- Column lineage is history: never rewritten.
CREATE TRIGGER lineage_columns_append_only
    BEFORE UPDATE OR DELETE ON elt.lineage_columns
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER lineage_columns_no_truncate
    BEFORE TRUNCATE ON elt.lineage_columns
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

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

-- The entries of a chunk, decoded, for elt.lineage_rows (which only
-- superusers and the extension's owner read); any bytea given to it is
-- decoded and checked, but it has nothing to offer PUBLIC.
CREATE FUNCTION elt._lineage_chunk_entries(data bytea)
    RETURNS TABLE (key bigint, key_text text, keys bigint[], keys_text text[])
    LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'elt_lineage_chunk_entries';
REVOKE EXECUTE ON FUNCTION elt._lineage_chunk_entries(bytea) FROM PUBLIC;

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

-- ==========================================================================
-- 9. Checksums and snapshots
-- ==========================================================================

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
    source_oid  regclass,                        -- the relation (restored by name; a dropped one's oid stays a number)
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
GRANT SELECT ON elt.snapshot_defs TO elt_reader;

-- Refuses every change to a snapshot's rows.
CREATE FUNCTION elt._snapshot_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'snapshot %.% is immutable', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = '55000',
              HINT = 'Make a new snapshot with elt.snapshot_create(); elt.snapshot_drop() removes one.';
END
$$;

-- Each role sees the snapshots of the roles it has the privileges of, and
-- elt_reader every one.  Like every view here that leaves rows out, a
-- security barrier: a function in the reader's WHERE clause never sees a
-- row the view's own condition leaves out.
CREATE VIEW elt.snapshots WITH (security_barrier = true) AS
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
WHERE elt._sees_role(s.created_by::oid);
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

-- Every role may use the schema elt_snapshots (each copy's own privileges
-- say who reads it; PUBLIC creates nothing in it), so that a creation no
-- longer grants USAGE to its role: two roles' creations updated the
-- schema's catalog row and waited for each other.  A schema that exists
-- already (made by 0.6.0, or left by DROP EXTENSION) gets these privileges
-- here; one made later gets them when it is made.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_extension e ON e.extowner = n.nspowner
             WHERE n.nspname = 'elt_snapshots' AND e.extname = 'elt_governance') THEN
    REVOKE ALL ON SCHEMA elt_snapshots FROM PUBLIC;
    GRANT USAGE ON SCHEMA elt_snapshots TO PUBLIC;
  END IF;
END $$;

-- ==========================================================================
-- 10. Run manifests, replay and verification
-- ==========================================================================

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
                                    WHEN 'b' THEN 'builtin' ELSE d.datlocprovider::text END,
            -- daticulocale until PostgreSQL 16, datlocale from 17 on
            'icu_locale', coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale')),
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

-- One row per run: a transform run on its own (kind 'transform', the same
-- id as its transform run), the work between elt.run_begin() and
-- elt.run_end() (kind 'pipeline'), a replay (kind 'replay'), a transform
-- run in a sandbox (kind 'sandbox'), or a manifest brought from another
-- database (imported).  role is the role whose members may read, replay
-- and verify it.
CREATE TABLE elt.run_defs (
    run_id          bigint PRIMARY KEY,
    pipeline        text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('transform', 'pipeline', 'replay', 'sandbox')),
    params          jsonb NOT NULL,
    snapshot_policy text NOT NULL CHECK (snapshot_policy IN ('none', 'checksum', 'full')),
    clock           timestamptz NOT NULL,       -- elt.now() inside the run
    random_seed     bigint NOT NULL,            -- seeds elt.random(), per step
    fingerprint     jsonb NOT NULL,
    role            regrole NOT NULL,
    started_at      timestamptz NOT NULL,
    replay_of       bigint REFERENCES elt.run_defs (run_id),
    sandbox         text,                       -- the schema a replay wrote, or the sandbox a run ran in
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
GRANT SELECT ON elt.run_defs, elt.run_steps, elt.run_manifests, elt.run_snapshots TO elt_reader;

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
        SELECT max(v.version) FROM elt.schema_versions v
        JOIN elt.tracked_tables t ON t.table_id = v.table_id WHERE t.relid = rel))
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

-- Runs: each role sees the runs of the roles it has the privileges of, and
-- elt_reader every one (a security barrier).  A run whose session ended
-- before elt.run_end() is abandoned: it has no manifest, and its committed
-- steps stay in elt.run_steps.  reverted_at: when the run (a pipeline:
-- every transform run of it) was reverted.
CREATE VIEW elt.runs WITH (security_barrier = true) AS
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
       r.imported,
       CASE r.kind
           WHEN 'transform' THEN (SELECT v.reverted_at FROM elt.run_reverts v WHERE v.run_id = r.run_id)
           WHEN 'pipeline' THEN (SELECT max(v.reverted_at)
                                 FROM elt.run_steps s
                                 LEFT JOIN elt.run_reverts v ON v.run_id = s.transform_run_id
                                 WHERE s.run_id = r.run_id AND s.transform_run_id IS NOT NULL
                                 HAVING count(v.run_id) = count(*) AND count(*) > 0)
       END AS reverted_at
FROM elt.run_defs r
LEFT JOIN elt.run_manifests m ON m.run_id = r.run_id
WHERE elt._sees_role(r.role::oid);
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
                           trust_imported boolean DEFAULT false, sandbox name DEFAULT NULL) RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_replay';
CREATE FUNCTION elt.verify_replay(original bigint, replay bigint,
                                  numeric_tolerance double precision DEFAULT 0)
RETURNS TABLE (check_name text, relation text, expected text, actual text, ok boolean)
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_verify_replay';

-- Undo: revert a run (and, with cascade, the runs that changed or read
-- what it wrote), list the runs that read what it wrote, purge undo.
CREATE FUNCTION elt.run_revert(run_id bigint, reason text DEFAULT NULL, "cascade" boolean DEFAULT false)
    RETURNS TABLE (run_id bigint, transform text, target regclass, rows_removed bigint,
                   rows_restored bigint, cascade_of bigint)
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_run_revert';
CREATE FUNCTION elt.run_dependents(run_id bigint)
    RETURNS TABLE (run_id bigint, depth integer, transform text, target regclass, via text,
                   finished_at timestamptz)
    LANGUAGE c STABLE CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_run_dependents';
CREATE FUNCTION elt.run_undo_purge(before timestamptz) RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_run_undo_purge';

-- Internal: called by a run's statement for each row it is about to update
-- or delete (with the run's token), and read once by the run's record.
CREATE FUNCTION elt._undo_image(bigint, xid, text, record) RETURNS boolean
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_undo_image';
CREATE FUNCTION elt._undo_pending()
    RETURNS TABLE (key text, image text, image_xid bigint)
    LANGUAGE c AS 'MODULE_PATHNAME', 'elt_undo_pending';
REVOKE EXECUTE ON FUNCTION elt._undo_pending() FROM PUBLIC;

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

-- ==========================================================================
-- 11. Quality checks
-- ==========================================================================

CREATE SEQUENCE elt.check_id_seq;

-- A declared expectation on a relation.  The relation is a regclass and the
-- owner a regrole: pg_dump writes them as names, and a restore (into
-- another cluster too, where oids differ) resolves them again.
CREATE TABLE elt.check_defs (
    check_id bigint PRIMARY KEY,
    name text NOT NULL,
    relation regclass NOT NULL,
    kind text NOT NULL CHECK (kind IN ('not_null', 'unique', 'accepted_values', 'relationships',
                                       'row_count_between', 'freshness', 'expression', 'custom',
                                       'row_count_delta')),
    args jsonb NOT NULL,
    severity text NOT NULL CHECK (severity IN ('error', 'warn')),
    owner regrole NOT NULL,
    created_at timestamptz NOT NULL,
    -- added by 0.7.0: the search_path the check was declared with; its SQL
    -- runs with it, never with the caller's (NULL for checks declared
    -- before 0.7.0: a member of the owner runs them with its own, anyone
    -- else with pg_catalog only)
    search_path text,
    UNIQUE (relation, name)
);

-- Every result of every check run (append-only).  Its ids come from a
-- sequence of the extension that pg_dump dumps (an identity column's
-- sequence is not a member of the extension: a restore would start it
-- over).  A result of a relation or role dropped since keeps its number.
CREATE SEQUENCE elt.check_result_id_seq;
CREATE TABLE elt.check_result_log (
    result_id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.check_result_id_seq'),
    check_id bigint NOT NULL,
    check_name text NOT NULL,
    declared_on regclass NOT NULL,
    checked_relation text NOT NULL,
    kind text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL CHECK (status IN ('pass', 'warn', 'fail', 'error')),
    failing_rows bigint,
    sample jsonb,
    message text,
    run_id bigint,
    deployment_id bigint,
    checked_by regrole NOT NULL,
    checked_at timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    -- added by 0.7.0: the check's owner when it ran (results before 0.7.0:
    -- NULL, the role that ran it had the owner's privileges)
    check_owner regrole
);
CREATE INDEX check_result_log_check_idx ON elt.check_result_log (check_id, result_id);

SELECT pg_catalog.pg_extension_config_dump('elt.check_defs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.check_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.check_result_log', '');
SELECT pg_catalog.pg_extension_config_dump('elt.check_result_id_seq', '');

-- Arguments and results are read through elt.checks and elt.check_results,
-- which show each role what it may see; elt_reader reads them all.
REVOKE ALL ON elt.check_defs, elt.check_result_log FROM PUBLIC;
GRANT SELECT ON elt.check_defs, elt.check_result_log TO elt_reader;

CREATE TRIGGER check_result_log_append_only
    BEFORE UPDATE OR DELETE ON elt.check_result_log
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER check_result_log_no_truncate
    BEFORE TRUNCATE ON elt.check_result_log
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

-- Checks: on relations the caller may read, or of a role whose privileges
-- it has; arguments (accepted values, expressions, custom SQL) for the
-- owner's members and elt_reader.
CREATE VIEW elt.checks WITH (security_barrier = true) AS
SELECT c.check_id, c.name, c.relation::regclass AS relation, c.kind,
       CASE WHEN o.sees THEN c.args END AS args,
       c.severity, c.owner::regrole AS owner, c.created_at, c.search_path
FROM elt.check_defs c
CROSS JOIN LATERAL (SELECT elt._sees_role(c.owner) AS sees) o
WHERE o.sees OR pg_catalog.has_table_privilege(c.relation, 'SELECT');

-- Check results: the status, the count of failing rows, samples and
-- messages were read as the check's owner (a count over rows that
-- row-level security hides, or over other tables in a custom check's SQL,
-- tells about them too): shown to the owner's members and elt_reader, and
-- to roles that read the declared and the checked relation themselves with
-- no row-level security applying (never for custom checks).
CREATE VIEW elt.check_results WITH (security_barrier = true) AS
SELECT r.result_id, r.check_id, r.check_name, r.declared_on::regclass AS declared_on,
       r.checked_relation, r.kind, r.severity,
       CASE WHEN v.rows THEN r.status END AS status,
       CASE WHEN v.rows THEN r.failing_rows END AS failing_rows,
       CASE WHEN v.rows THEN r.sample END AS sample,
       CASE WHEN v.rows THEN r.message END AS message,
       r.run_id, r.deployment_id, r.checked_by::regrole AS checked_by, r.checked_at, r.duration_ms
FROM elt.check_result_log r
CROSS JOIN LATERAL (SELECT elt._sees_role(coalesce(r.check_owner, r.checked_by)) AS sees) o
CROSS JOIN LATERAL (SELECT o.sees OR (r.kind <> 'custom' AND elt._reads_rows(r.declared_on)
                                      AND elt._reads_rows(pg_catalog.to_regclass(r.checked_relation))) AS rows) v
WHERE o.sees
   OR (EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = r.declared_on)
       AND pg_catalog.has_table_privilege(r.declared_on, 'SELECT'));

GRANT SELECT ON elt.checks, elt.check_results TO PUBLIC;

-- The query that returns the failing rows of a check of the given kind and
-- arguments on rel (a quoted, qualified name), or for the row-count kinds
-- one row when it fails.  related maps an interface relation named in the
-- arguments to the color being checked (NULL: as named).  Identifiers are
-- quoted with %I; values are literals made by format's %L.
CREATE FUNCTION elt._check_sql(kind text, args jsonb, rel text, live_rel text, related text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cols text;
    col text;
BEGIN
    IF jsonb_typeof(args) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'args must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF kind IN ('not_null', 'unique') THEN
        IF args ? 'column' THEN
            IF jsonb_typeof(args -> 'column') <> 'string' THEN
                RAISE EXCEPTION 'args.column must be a string' USING ERRCODE = '22023';
            END IF;
            cols := format('%I', args ->> 'column');
            col := cols;
        ELSIF jsonb_typeof(args -> 'columns') = 'array' AND jsonb_array_length(args -> 'columns') > 0 THEN
            SELECT string_agg(format('%I', c), ', '), string_agg(format('%I IS NULL', c), ' OR ')
            INTO cols, col FROM jsonb_array_elements_text(args -> 'columns') c;
        ELSE
            RAISE EXCEPTION '% needs args.column or args.columns', kind
                USING ERRCODE = '22023',
                      HINT = 'For example {"column": "id"} or {"columns": ["day", "region"]}.';
        END IF;
        IF kind = 'not_null' THEN
            IF NOT args ? 'column' THEN
                RETURN format('SELECT * FROM %s WHERE %s', rel, col);
            END IF;
            RETURN format('SELECT * FROM %s WHERE %s IS NULL', rel, cols);
        END IF;
        RETURN format('SELECT %s, count(*) AS duplicates FROM %s WHERE (%s) IS NOT NULL GROUP BY %s HAVING count(*) > 1',
                      cols, rel, cols, cols);
    ELSIF kind = 'accepted_values' THEN
        IF jsonb_typeof(args -> 'column') IS DISTINCT FROM 'string'
           OR jsonb_typeof(args -> 'values') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'accepted_values needs args.column and args.values'
                USING ERRCODE = '22023', HINT = 'For example {"column": "status", "values": ["open", "paid"]}.';
        END IF;
        RETURN format('SELECT * FROM %s WHERE %I IS NOT NULL AND %I::text <> ALL (%L::text[])',
                      rel, args ->> 'column', args ->> 'column',
                      (SELECT coalesce(array_agg(v), '{}') FROM jsonb_array_elements_text(args -> 'values') v));
    ELSIF kind = 'relationships' THEN
        IF jsonb_typeof(args -> 'column') IS DISTINCT FROM 'string'
           OR jsonb_typeof(args -> 'to') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'relationships needs args.column and args.to'
                USING ERRCODE = '22023',
                      HINT = 'For example {"column": "customer_id", "to": "analytics.customers", "field": "id"}; field defaults to column.';
        END IF;
        RETURN format('SELECT * FROM %s x WHERE x.%I IS NOT NULL AND NOT EXISTS (SELECT FROM %s t WHERE t.%I = x.%I)',
                      rel, args ->> 'column', coalesce(related, (args ->> 'to')::regclass::text),
                      coalesce(args ->> 'field', args ->> 'column'), args ->> 'column');
    ELSIF kind = 'row_count_between' THEN
        IF NOT (args ? 'min' OR args ? 'max') THEN
            RAISE EXCEPTION 'row_count_between needs args.min or args.max'
                USING ERRCODE = '22023', HINT = 'For example {"min": 1, "max": 1000000}.';
        END IF;
        RETURN format('SELECT n AS row_count, %L::bigint AS min, %L::bigint AS max FROM (SELECT count(*) AS n FROM %s) c'
                      ' WHERE n < coalesce(%L::bigint, n) OR n > coalesce(%L::bigint, n)',
                      args ->> 'min', args ->> 'max', rel, args ->> 'min', args ->> 'max');
    ELSIF kind = 'freshness' THEN
        IF jsonb_typeof(args -> 'column') IS DISTINCT FROM 'string'
           OR jsonb_typeof(args -> 'max_age') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'freshness needs args.column and args.max_age'
                USING ERRCODE = '22023', HINT = 'For example {"column": "loaded_at", "max_age": "1 day"}.';
        END IF;
        PERFORM (args ->> 'max_age')::interval;
        RETURN format('SELECT newest, now() - newest AS age FROM (SELECT max(%I)::timestamptz AS newest FROM %s) m'
                      ' WHERE newest IS NULL OR newest < now() - %L::interval',
                      args ->> 'column', rel, args ->> 'max_age');
    ELSIF kind = 'expression' THEN
        IF jsonb_typeof(args -> 'expression') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'expression needs args.expression'
                USING ERRCODE = '22023', HINT = 'For example {"expression": "amount >= 0"}: true for every row.';
        END IF;
        RETURN format('SELECT * FROM %s WHERE (%s) IS NOT TRUE', rel, args ->> 'expression');
    ELSIF kind = 'custom' THEN
        IF jsonb_typeof(args -> 'sql') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'custom needs args.sql'
                USING ERRCODE = '22023',
                      HINT = 'A SELECT that returns the failing rows; {rel} stands for the relation checked.';
        END IF;
        RETURN replace(args ->> 'sql', '{rel}', rel);
    ELSIF kind = 'row_count_delta' THEN
        IF jsonb_typeof(args -> 'max_percent') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'row_count_delta needs args.max_percent'
                USING ERRCODE = '22023', HINT = 'For example {"max_percent": 10}: at most 10% more or fewer rows than live.';
        END IF;
        IF live_rel IS NULL OR live_rel = rel THEN
            -- nothing to compare with: the relation is live
            RETURN 'SELECT WHERE false';
        END IF;
        RETURN format('SELECT candidate, live, round(100.0 * (candidate - live) / nullif(live, 0), 2) AS delta_percent'
                      ' FROM (SELECT (SELECT count(*) FROM %s) AS candidate, (SELECT count(*) FROM %s) AS live) c'
                      ' WHERE abs(candidate - live) > %s * live / 100.0',
                      rel, live_rel, (args ->> 'max_percent')::numeric);
    END IF;
    RAISE EXCEPTION 'unknown check kind "%"', kind
        USING ERRCODE = '22023',
              HINT = 'Kinds: not_null, unique, accepted_values, relationships, row_count_between, freshness, expression, custom, row_count_delta.';
END
$$;

CREATE FUNCTION elt.check_create(rel regclass, kind text, args jsonb DEFAULT '{}',
                                 severity text DEFAULT 'error', name text DEFAULT NULL)
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_check_create';

CREATE FUNCTION elt.check_drop(rel regclass, name text) RETURNS boolean
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_check_drop';

CREATE FUNCTION elt.check_run(target text)
RETURNS TABLE (check_id bigint, check_name text, relation text, kind text, severity text,
               status text, failing_rows bigint, sample jsonb, message text)
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_check_run';


-- ==========================================================================
-- 12. Deployments
-- ==========================================================================

-- An interface schema: views that consumers read, over the tables of the
-- live color (<interface>__blue or <interface>__green).  Roles here and in
-- the deployments and their events are regroles: pg_dump writes them as
-- names, a restore into another cluster resolves them again.
CREATE TABLE elt.deploy_interfaces (
    interface name PRIMARY KEY,
    live_color text NOT NULL CHECK (live_color IN ('blue', 'green')),
    owner regrole NOT NULL,
    initialized_by regrole NOT NULL,
    initialized_at timestamptz NOT NULL,
    canary_deployment bigint,
    canary_roles regrole[],
    canary_percent integer CHECK (canary_percent BETWEEN 1 AND 100)
);

CREATE SEQUENCE elt.deployment_id_seq;

-- One deployment: a candidate color prepared, then promoted, rolled back,
-- decommissioned.
CREATE TABLE elt.deployment_defs (
    deployment_id bigint PRIMARY KEY,
    interface name NOT NULL REFERENCES elt.deploy_interfaces,
    from_color text NOT NULL CHECK (from_color IN ('blue', 'green')),
    to_color text NOT NULL CHECK (to_color IN ('blue', 'green')),
    state text NOT NULL CHECK (state IN ('prepared', 'promoted', 'rolled_back', 'decommissioned', 'abandoned')),
    copy_data boolean NOT NULL,
    prepared_by regrole NOT NULL,
    prepared_at timestamptz NOT NULL,
    promoted_by regrole,
    promoted_at timestamptz,
    promote_reason text,
    forced boolean,
    gates jsonb,
    rolled_back_by regrole,
    rolled_back_at timestamptz,
    rollback_reason text,
    decommissioned_by regrole,
    decommissioned_at timestamptz
);
CREATE INDEX deployment_defs_interface_idx ON elt.deployment_defs (interface, deployment_id);

-- What happened to each interface, in order (append-only); ids from a
-- sequence pg_dump dumps, as for elt.check_result_log.
CREATE SEQUENCE elt.deployment_event_id_seq;
CREATE TABLE elt.deployment_event_log (
    event_id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.deployment_event_id_seq'),
    deployment_id bigint,
    interface name NOT NULL,
    action text NOT NULL,
    actor regrole NOT NULL,
    happened_at timestamptz NOT NULL,
    reason text,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX deployment_event_log_interface_idx ON elt.deployment_event_log (interface, event_id);

SELECT pg_catalog.pg_extension_config_dump('elt.deploy_interfaces', '');
SELECT pg_catalog.pg_extension_config_dump('elt.deployment_defs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.deployment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.deployment_event_log', '');
SELECT pg_catalog.pg_extension_config_dump('elt.deployment_event_id_seq', '');

-- Deployments and their events are read through elt.deployments and
-- elt.deployment_events; elt_reader reads them all.
REVOKE ALL ON elt.deploy_interfaces, elt.deployment_defs, elt.deployment_event_log FROM PUBLIC;
-- which color each interface reads, and who is in its canary: public
GRANT SELECT ON elt.deploy_interfaces TO PUBLIC;
GRANT SELECT ON elt.deploy_interfaces, elt.deployment_defs, elt.deployment_event_log TO elt_reader;

CREATE TRIGGER deployment_event_log_append_only
    BEFORE UPDATE OR DELETE ON elt.deployment_event_log
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER deployment_event_log_no_truncate
    BEFORE TRUNCATE ON elt.deployment_event_log
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

-- Deployments of the interfaces whose schema the caller may use (by oid:
-- an interface schema dropped or renamed behind the extension's back is
-- not an error), and every one for elt_reader.  The checks in a
-- promotion's or canary's gates (their statuses and counts of failing rows,
-- taken as the checks' owners) for the members of the interface's owner
-- and elt_reader.
CREATE VIEW elt.deployments WITH (security_barrier = true) AS
SELECT d.deployment_id, d.interface,
       d.from_color, d.to_color,
       pg_catalog.format('%s__%s', d.interface, d.to_color) AS candidate_schema,
       d.state,
       i.live_color = d.to_color AND d.state IN ('promoted', 'decommissioned')
         AND d.deployment_id = (SELECT max(x.deployment_id) FROM elt.deployment_defs x
                                WHERE x.interface = d.interface AND x.state IN ('promoted', 'decommissioned')) AS live,
       i.canary_deployment IS NOT DISTINCT FROM d.deployment_id AS canary,
       CASE WHEN i.canary_deployment = d.deployment_id THEN i.canary_roles::regrole[] END AS canary_roles,
       CASE WHEN i.canary_deployment = d.deployment_id THEN i.canary_percent END AS canary_percent,
       d.copy_data,
       d.prepared_by::regrole AS prepared_by, d.prepared_at,
       d.promoted_by::regrole AS promoted_by, d.promoted_at, d.promote_reason, d.forced,
       CASE WHEN elt._sees_role(i.owner) THEN d.gates ELSE d.gates - 'checks' END AS gates,
       d.rolled_back_by::regrole AS rolled_back_by, d.rolled_back_at, d.rollback_reason,
       d.decommissioned_by::regrole AS decommissioned_by, d.decommissioned_at
FROM elt.deployment_defs d
JOIN elt.deploy_interfaces i USING (interface)
WHERE elt._sees_all()
   OR pg_catalog.has_schema_privilege(pg_catalog.to_regnamespace(pg_catalog.quote_ident(i.interface))::oid, 'USAGE');

CREATE VIEW elt.deployment_events WITH (security_barrier = true) AS
SELECT e.event_id, e.deployment_id, e.interface, e.action,
       e.actor::regrole AS actor, e.happened_at, e.reason,
       CASE WHEN elt._sees_role(i.owner) OR NOT e.details ? 'gates' THEN e.details
            ELSE pg_catalog.jsonb_set(e.details, '{gates}', (e.details -> 'gates') - 'checks') END AS details
FROM elt.deployment_event_log e
LEFT JOIN elt.deploy_interfaces i ON i.interface = e.interface
WHERE elt._sees_all()
   OR pg_catalog.has_schema_privilege(pg_catalog.to_regnamespace(pg_catalog.quote_ident(e.interface))::oid, 'USAGE');

GRANT SELECT ON elt.deployments, elt.deployment_events TO PUBLIC;

CREATE FUNCTION elt.deploy_init(interface text) RETURNS integer
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_init';

CREATE FUNCTION elt.deploy_prepare(interface text, copy_data boolean DEFAULT false) RETURNS text
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_prepare';

CREATE FUNCTION elt.deploy_promote(interface text, reason text, force boolean DEFAULT false) RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_promote';

CREATE FUNCTION elt.deploy_rollback(interface text, reason text) RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_rollback';

CREATE FUNCTION elt.deploy_decommission(interface text, keep interval DEFAULT '7 days') RETURNS text
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_decommission';

CREATE FUNCTION elt.deploy_canary(interface text, roles text[] DEFAULT NULL, percent integer DEFAULT NULL)
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_canary';

CREATE FUNCTION elt.deploy_canary_stop(interface text, reason text DEFAULT NULL) RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_canary_stop';

-- Whether this session reads a canary's candidate (called by the
-- interface's views during a canary, as the querying role; stable, so that
-- each query chooses one branch).
CREATE FUNCTION elt._canary(deployment bigint, roles regrole[], percent integer) RETURNS boolean
LANGUAGE c STABLE PARALLEL SAFE CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_canary_reads';

-- The columns of a table as the interface shows them: name, type, not null.
CREATE FUNCTION elt._deploy_columns(rel regclass)
RETURNS TABLE (attnum integer, name text, type text, not_null boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT a.attnum::int, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_attribute a
WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
$$;

-- The select list over table tab that keeps a view's columns, in order:
-- a column tab lacks reads NULL of the view's type (a rollback past an
-- added column).  retyped: a column has another type in tab.
CREATE FUNCTION elt._deploy_kept_columns(view regclass, tab regclass, OUT cols text, OUT retyped boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT string_agg(CASE WHEN tc.name IS NULL THEN format('NULL::%s AS %I', vc.type, vc.name)
                       ELSE format('%I', vc.name) END, ', ' ORDER BY vc.attnum),
       coalesce(bool_or(vc.type <> tc.type), false)
FROM elt._deploy_columns(view) vc LEFT JOIN elt._deploy_columns(tab) tc USING (name)
$$;

-- The shape differences of a candidate table against live, with their
-- compatibility class for the interface's consumers.
CREATE FUNCTION elt._deploy_shape_diff(live regclass, candidate regclass)
RETURNS TABLE (change text, col text, before text, after text, compatibility text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
WITH l AS (SELECT * FROM elt._deploy_columns(live)),
     c AS (SELECT * FROM elt._deploy_columns(candidate))
SELECT x.change, x.col, x.before, x.after, x.compatibility
FROM (
    SELECT CASE WHEN c.name IS NULL THEN 'column_dropped'
                WHEN l.name IS NULL THEN 'column_added'
                WHEN l.type <> c.type THEN 'type_changed'
                WHEN l.not_null AND NOT c.not_null THEN 'not_null_dropped'
                WHEN c.not_null AND NOT l.not_null THEN 'not_null_added' END AS change,
           coalesce(l.name, c.name) AS col,
           CASE WHEN l.name IS NOT NULL THEN l.type || CASE WHEN l.not_null THEN ' NOT NULL' ELSE '' END END AS before,
           CASE WHEN c.name IS NOT NULL THEN c.type || CASE WHEN c.not_null THEN ' NOT NULL' ELSE '' END END AS after,
           CASE WHEN c.name IS NULL OR (l.name IS NOT NULL AND l.type <> c.type)
                     OR (l.name IS NOT NULL AND l.not_null AND NOT c.not_null) THEN 'breaking'
                ELSE 'safe' END AS compatibility,
           coalesce(l.attnum, 10000 + c.attnum) AS ord
    FROM l FULL JOIN c ON l.name = c.name) x
WHERE x.change IS NOT NULL
ORDER BY x.ord
$$;

-- The primary key columns of a table, in key order.
CREATE FUNCTION elt._deploy_key(rel regclass) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT array_agg(a.attname::text ORDER BY k.n)
FROM pg_constraint x
CROSS JOIN LATERAL unnest(x.conkey) WITH ORDINALITY k(attnum, n)
JOIN pg_attribute a ON a.attrelid = x.conrelid AND a.attnum = k.attnum
WHERE x.conrelid = rel AND x.contype = 'p'
$$;

-- The live and candidate tables of an interface, by name.
CREATE FUNCTION elt._deploy_pairs(interface text)
RETURNS TABLE (name text, live regclass, candidate regclass)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    live_color text;
    d elt.deployments;
BEGIN
    SELECT i.live_color INTO live_color FROM elt.deploy_interfaces i WHERE i.interface = _deploy_pairs.interface;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schema "%" is not a deployment interface', interface
            USING ERRCODE = '42704', HINT = 'Make it one with elt.deploy_init(interface).';
    END IF;
    SELECT * INTO d FROM elt.deployments x
    WHERE x.interface = _deploy_pairs.interface ORDER BY x.deployment_id DESC LIMIT 1;
    IF NOT FOUND OR d.state <> 'prepared' THEN
        RAISE EXCEPTION 'interface "%" has no prepared deployment', interface
            USING ERRCODE = '55000', HINT = 'Prepare one with elt.deploy_prepare(interface).';
    END IF;
    RETURN QUERY
    SELECT coalesce(l.relname, c.relname)::text, l.oid::regclass, c.oid::regclass
    FROM (SELECT r.oid, r.relname FROM pg_class r
          WHERE r.relnamespace = to_regnamespace(quote_ident(interface || '__' || live_color))
            AND r.relkind IN ('r', 'p') AND NOT r.relispartition) l
    FULL JOIN (SELECT r.oid, r.relname FROM pg_class r
               WHERE r.relnamespace = to_regnamespace(quote_ident(d.candidate_schema))
                 AND r.relkind IN ('r', 'p') AND NOT r.relispartition) c
      ON c.relname = l.relname
    ORDER BY 1;
END
$$;

-- How to compare two tables row by row: the key, the common columns, the
-- join and the difference conditions over aliases l and c.
CREATE FUNCTION elt._deploy_rowmatch(live regclass, candidate regclass,
    OUT key text[], OUT cols text[], OUT joincond text, OUT diffcond text, OUT keytype text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    key := elt._deploy_key(live);
    IF key IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key to compare rows by', live
            USING ERRCODE = '55000',
                  HINT = format('Declare one on both colors, for example ALTER TABLE %s ADD PRIMARY KEY (id), and the same on %s.',
                                live, candidate);
    END IF;
    IF elt._deploy_key(candidate) IS DISTINCT FROM key THEN
        RAISE EXCEPTION 'the candidate % has another primary key than %', candidate, live
            USING ERRCODE = '55000',
                  HINT = format('Rows are matched by the live key (%s): declare it on the candidate too.',
                                array_to_string(key, ', '));
    END IF;
    SELECT array_agg(l.name ORDER BY l.attnum) INTO cols
    FROM elt._deploy_columns(live) l JOIN elt._deploy_columns(candidate) c USING (name)
    WHERE l.type = c.type;
    joincond := (SELECT string_agg(format('l.%1$I = c.%1$I', k), ' AND ') FROM unnest(key) k);
    diffcond := coalesce((SELECT string_agg(format('l.%1$I::text IS DISTINCT FROM c.%1$I::text', x), ' OR ')
                          FROM unnest(cols) x WHERE x <> ALL (key)), 'false');
    keytype := (SELECT d.type FROM elt._deploy_columns(live) d WHERE d.name = key[1]);
END
$$;

-- elt.deploy_compare and elt.deploy_diff are C functions
-- (src/deploy_compare.c): comparing rows calls code of the tables' owner (a
-- cast of a column's type to text or json, the CHECK of a domain on the
-- key, constant parts of index expressions and predicates), so they list
-- the tables as the caller, check that it has the privileges of each
-- table's owner, and compare each table as that owner, in a
-- security-restricted operation with search_path pinned, by calling the
-- two functions below.

-- One row of elt.deploy_compare for the table tab of an interface (live or
-- candidate NULL: the table is only in the other color): shape differences,
-- live and candidate rows, missing, extra and changed rows.  Key-range
-- checksums over the common columns first; only ranges whose checksums
-- differ are compared row by row.  Runs with the rights of whoever calls it:
-- elt.deploy_compare calls it as the tables' owner.
CREATE FUNCTION elt._deploy_compare_pair(interface text, tab text, live regclass, candidate regclass, segments integer)
RETURNS TABLE (relation text, shape text, compatibility text, live_rows bigint, candidate_rows bigint,
               missing bigint, extra bigint, changed bigint, ranges_compared integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m record;
    bounds text[];
    r record;
    cond text;
    a bigint;
    b bigint;
    ch bigint;
BEGIN
    relation := format('%I.%I', interface, tab);
    ranges_compared := 0;
    IF candidate IS NULL THEN
        shape := 'table missing in the candidate';
        compatibility := 'breaking';
        EXECUTE format('SELECT count(*) FROM %s', live) INTO live_rows;
        RETURN NEXT;
        RETURN;
    END IF;
    IF live IS NULL THEN
        shape := 'new table';
        compatibility := 'safe';
        EXECUTE format('SELECT count(*) FROM %s', candidate) INTO candidate_rows;
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT string_agg(format('%s %s%s', d.change, d.col,
                             CASE WHEN d.before IS NOT NULL AND d.after IS NOT NULL
                                  THEN format(' (%s -> %s)', d.before, d.after) ELSE '' END), ', '),
           CASE WHEN count(*) = 0 THEN NULL WHEN bool_or(d.compatibility = 'breaking') THEN 'breaking' ELSE 'safe' END
    INTO shape, compatibility
    FROM elt._deploy_shape_diff(live, candidate) d;
    compatibility := coalesce(compatibility, 'same');
    SELECT * INTO m FROM elt._deploy_rowmatch(live, candidate);
    -- the live table's ranges cut the candidate's the same way
    SELECT array_agg(x.upper ORDER BY x.segment) FILTER (WHERE x.upper IS NOT NULL)
    INTO bounds
    FROM elt.table_checksum_ranges(live, m.key[1], segments, m.cols) x;
    live_rows := 0; candidate_rows := 0; missing := 0; extra := 0; changed := 0;
    FOR r IN
        SELECT x.segment, x.lower, x.upper, x.row_count AS lrows, y.row_count AS crows,
               x.checksum IS DISTINCT FROM y.checksum AS differs
        FROM elt.table_checksum_ranges(live, m.key[1], coalesce(bounds, '{}'), m.cols) x
        JOIN elt.table_checksum_ranges(candidate, m.key[1], coalesce(bounds, '{}'), m.cols) y USING (segment)
        ORDER BY x.segment
    LOOP
        live_rows := live_rows + r.lrows;
        candidate_rows := candidate_rows + r.crows;
        CONTINUE WHEN NOT r.differs OR r.segment = 0;
        ranges_compared := ranges_compared + 1;
        cond := concat_ws(' AND ',
                          CASE WHEN r.lower IS NOT NULL THEN format('%I >= %L::%s', m.key[1], r.lower, m.keytype) END,
                          CASE WHEN r.upper IS NOT NULL THEN format('%I < %L::%s', m.key[1], r.upper, m.keytype) END,
                          'true');
        EXECUTE format('SELECT count(*) FILTER (WHERE c.%1$I IS NULL), count(*) FILTER (WHERE l.%1$I IS NULL),'
                       ' count(*) FILTER (WHERE l.%1$I IS NOT NULL AND c.%1$I IS NOT NULL AND (%2$s))'
                       ' FROM (SELECT * FROM %3$s WHERE %4$s) l FULL JOIN (SELECT * FROM %5$s WHERE %4$s) c ON %6$s',
                       m.key[1], m.diffcond, live, cond, candidate, m.joincond)
        INTO a, b, ch;
        missing := missing + a;
        extra := extra + b;
        changed := changed + ch;
    END LOOP;
    RETURN NEXT;
END
$$;

-- The rows of elt.deploy_diff: those that differ between a live table and
-- its candidate, side by side, by key, at most max_rows.  Runs with the
-- rights of whoever calls it: elt.deploy_diff calls it as the tables' owner.
CREATE FUNCTION elt._deploy_diff_rows(live_rel regclass, candidate_rel regclass, max_rows integer)
RETURNS TABLE (key jsonb, change text, columns text[], live jsonb, candidate jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m record;
    collist text;
BEGIN
    SELECT * INTO m FROM elt._deploy_rowmatch(live_rel, candidate_rel);
    collist := (SELECT string_agg(format('%I', x), ', ') FROM unnest(m.cols) x);
    -- the rows that differ first, then their differing columns: a Citus
    -- cluster runs the first part on the shards and cannot run the second
    -- there (a function in FROM over each row)
    RETURN QUERY EXECUTE format(
        'WITH d AS MATERIALIZED ('
        ' SELECT jsonb_build_object(%1$s) AS key,'
        '  CASE WHEN c.%2$I IS NULL THEN ''missing'' WHEN l.%2$I IS NULL THEN ''extra'' ELSE ''changed'' END AS change,'
        '  to_jsonb(l) AS live, to_jsonb(c) AS candidate, %8$s'
        ' FROM (SELECT %3$s FROM %4$s) l FULL JOIN (SELECT %3$s FROM %5$s) c ON %6$s'
        ' WHERE c.%2$I IS NULL OR l.%2$I IS NULL OR (%7$s)'
        ' ORDER BY %10$s LIMIT %9$s)'
        ' SELECT d.key, d.change,'
        '  CASE WHEN d.change = ''changed'' THEN'
        '   ARRAY(SELECT k FROM jsonb_object_keys(d.live) k'
        '         WHERE (d.live -> k)::text IS DISTINCT FROM (d.candidate -> k)::text ORDER BY k) END,'
        '  d.live, d.candidate'
        ' FROM d ORDER BY %10$s',
        (SELECT string_agg(format('%1$L, coalesce(l.%1$I, c.%1$I)', k), ', ') FROM unnest(m.key) k),
        m.key[1], collist, live_rel, candidate_rel, m.joincond, m.diffcond,
        (SELECT string_agg(format('coalesce(l.%1$I, c.%1$I) AS __elt_k%2$s', u.k, u.o), ', ')
         FROM unnest(m.key) WITH ORDINALITY u(k, o)),
        max_rows,
        (SELECT string_agg(format('__elt_k%s', u.o), ', ') FROM unnest(m.key) WITH ORDINALITY u(k, o)));
END
$$;

-- Per table of an interface's prepared deployment: shape differences, live
-- and candidate rows, missing, extra and changed rows, each table compared
-- as its owner (elt._deploy_compare_pair); the caller must have the
-- privileges of every table's owner.
CREATE FUNCTION elt.deploy_compare(interface text, segments integer DEFAULT 16)
RETURNS TABLE (relation text, shape text, compatibility text, live_rows bigint, candidate_rows bigint,
               missing bigint, extra bigint, changed bigint, ranges_compared integer)
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_compare';

-- The rows of one table of an interface that differ between live and the
-- candidate, side by side, by key, compared as the table's owner
-- (elt._deploy_diff_rows); the caller must have that role's privileges.
CREATE FUNCTION elt.deploy_diff(interface text, rel text, max_rows integer DEFAULT 100)
RETURNS TABLE (key jsonb, change text, columns text[], live jsonb, candidate jsonb)
LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_deploy_diff';

-- GRANT statements that give object what an ACL gives (the owner's own
-- entries left out: the owner is set apart).
CREATE FUNCTION elt._acl_grants(acl aclitem[], owner oid, object text) RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, object,
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
              CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM aclexplode(acl) a
WHERE a.grantee <> owner
$$;

-- COMMENT statements that give target (a view or table with the same
-- column names) the comments of relation src.
CREATE FUNCTION elt._comment_copies(src oid, target text) RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT format('COMMENT ON %s %s IS %L', CASE WHEN t.relkind = 'v' THEN 'VIEW' ELSE 'TABLE' END, target, d)
FROM obj_description(src, 'pg_class') d, pg_class t
WHERE d IS NOT NULL AND t.oid = target::regclass
UNION ALL
SELECT format('COMMENT ON COLUMN %s.%I IS %L', target, a.attname, col_description(src, a.attnum))
FROM pg_attribute a
WHERE a.attrelid = src AND a.attnum > 0 AND NOT a.attisdropped AND col_description(src, a.attnum) IS NOT NULL
$$;

-- GRANT statements that give object (e.g. 'TABLE a.b': a view or table with
-- the same column names) the column grants of relation src
-- (pg_attribute.attacl), for the columns named in cols or all of them; the
-- owner's own entries are left out (the owner is set apart).
CREATE FUNCTION elt._column_acl_grants(src oid, object text, cols text[] DEFAULT NULL) RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT format('GRANT %s (%I) ON %s TO %s%s', x.privilege_type, a.attname, object,
              CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
              CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid
CROSS JOIN LATERAL aclexplode(a.attacl) x
WHERE c.oid = src AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
  AND x.grantee <> c.relowner AND (cols IS NULL OR a.attname::text = ANY (cols))
ORDER BY a.attnum, x.privilege_type, x.grantee
$$;

-- ==========================================================================
-- 13. Event triggers (created last, so that they do not fire for this script)
-- ==========================================================================

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

------------------------------------------------------------------------------
-- Masking rules (src/mask.c, src/mask_rules.c)
------------------------------------------------------------------------------
-- A rule for one column (relation, column_name: set by a member of the
-- table's owner) or for every column whose name matches an ILIKE pattern,
-- in one schema or all (pattern, in_schema: set by elt_admin).  A column
-- gets its own rule, else the longest matching pattern of its schema, else
-- of every schema; a pattern rule skips the columns whose type it does not
-- fit.  Dumped with the database; readable through elt.masks.
CREATE TABLE elt.mask_rules (
    rule_id     bigserial PRIMARY KEY,
    relation    regclass,
    column_name name,
    pattern     text,
    in_schema   name,
    rule        text NOT NULL CHECK (rule IN ('null', 'constant', 'hash', 'pseudonym', 'partial',
                                              'noise', 'generalize', 'custom')),
    args        jsonb NOT NULL DEFAULT '{}',
    set_by      regrole NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((relation IS NULL) = (column_name IS NULL)),
    CHECK ((relation IS NULL) <> (pattern IS NULL)),
    CHECK (in_schema IS NULL OR pattern IS NOT NULL)
);
CREATE UNIQUE INDEX mask_rules_column_idx ON elt.mask_rules (relation, column_name)
    WHERE relation IS NOT NULL;
CREATE UNIQUE INDEX mask_rules_pattern_idx ON elt.mask_rules (pattern, (COALESCE(in_schema, ''::name)))
    WHERE pattern IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('elt.mask_rules', '');
SELECT pg_catalog.pg_extension_config_dump('elt.mask_rules_rule_id_seq', '');

-- The masking key: 32 random bytes, made on first use, readable by the
-- extension's owner only (never by the roles that read masked data: with
-- it, a masked value could be matched to a guess).  Dumped, so that a
-- restored database masks the same way; elt.mask_key_rotate() replaces it.
CREATE TABLE elt.mask_key (
    id         integer PRIMARY KEY CHECK (id = 1),
    key        bytea NOT NULL CHECK (pg_catalog.length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('elt.mask_key', '');
REVOKE ALL ON elt.mask_rules, elt.mask_key FROM PUBLIC;
REVOKE ALL ON SEQUENCE elt.mask_rules_rule_id_seq FROM PUBLIC;

-- The rules a role may see: pattern rules, and the column rules of the
-- relations it owns (through membership) or may read a column of.
CREATE VIEW elt.masks WITH (security_barrier = true) AS
SELECT m.rule_id, m.relation, m.column_name, m.pattern, m.in_schema, m.rule, m.args,
       m.set_by, m.set_at
FROM elt.mask_rules m
WHERE m.relation IS NULL
   OR pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = m.relation), 'USAGE')
   OR pg_catalog.has_any_column_privilege(m.relation, 'SELECT');
GRANT SELECT ON elt.masks TO PUBLIC;

CREATE FUNCTION elt.mask_set(rel regclass, col name, rule text, args jsonb DEFAULT '{}')
    RETURNS bigint LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_mask_set';
CREATE FUNCTION elt.mask_drop(rel regclass, col name)
    RETURNS boolean LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_mask_drop';
CREATE FUNCTION elt.mask_set_pattern(pattern text, rule text, args jsonb DEFAULT '{}',
                                     in_schema name DEFAULT NULL)
    RETURNS bigint LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_mask_set_pattern';
CREATE FUNCTION elt.mask_drop_pattern(pattern text, in_schema name DEFAULT NULL)
    RETURNS boolean LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_mask_drop_pattern';
CREATE FUNCTION elt.mask_key_rotate(reason text)
    RETURNS timestamptz LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_mask_key_rotate';
CREATE FUNCTION elt.mask_for(rel regclass)
    RETURNS TABLE (column_name name, type text, rule text, args jsonb, source text, rule_id bigint,
                   note text)
    LANGUAGE c STABLE CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_mask_for';
CREATE FUNCTION elt.mask_suggest(schema name)
    RETURNS TABLE (relation regclass, column_name name, type text, reason text, rule text, args jsonb)
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_mask_suggest';
CREATE FUNCTION elt.mask_preview(rel regclass, n integer DEFAULT 10)
    RETURNS SETOF jsonb LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_mask_preview';
-- Internal: applies the rule of a slot to a value, for the statement that
-- holds the token (the caller's own statement, run by mask_preview and
-- sandboxes); refused otherwise.
CREATE FUNCTION elt._mask(token bigint, slot integer, value anyelement, rowkey text)
    RETURNS anyelement LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_mask_value';

------------------------------------------------------------------------------
-- Sandboxes (src/sandbox.c)
------------------------------------------------------------------------------
-- One row per sandbox: a schema of copies of the tables of from_schemas,
-- masked or not, whole or a sample closed under foreign keys, owned by
-- `owner`, dropped by the launcher once expires_at has passed.  manifest:
-- the seed, the sample, per table its source, copy, rows, the source's
-- checksum before the copy and the masking rules applied.
CREATE TABLE elt.sandbox_defs (
    sandbox_id  bigserial PRIMARY KEY,
    name        name NOT NULL UNIQUE,
    owner       regrole NOT NULL,
    created_by  regrole NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    sources     text[] NOT NULL,
    sample      jsonb,
    masked      boolean NOT NULL,
    seed        bigint NOT NULL,
    manifest    jsonb NOT NULL,
    -- the schema made: a drop finds it by OID, whatever its name now, and
    -- never drops another schema that took the name
    schema_oid  oid NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('elt.sandbox_defs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.sandbox_defs_sandbox_id_seq', '');
REVOKE ALL ON elt.sandbox_defs FROM PUBLIC;
REVOKE ALL ON SEQUENCE elt.sandbox_defs_sandbox_id_seq FROM PUBLIC;
GRANT SELECT ON elt.sandbox_defs TO elt_reader;

-- The sandboxes a role may see: those it owns or made (through membership),
-- all for elt_reader; with their size now.
CREATE VIEW elt.sandboxes WITH (security_barrier = true) AS
SELECT s.name, s.owner, s.created_by, s.created_at, s.expires_at, s.sources, s.sample, s.masked,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c
        WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace(pg_catalog.quote_ident(s.name))
          AND c.relkind IN ('r', 'p')) AS tables,
       (SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)) FROM pg_catalog.pg_class c
        WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace(pg_catalog.quote_ident(s.name))
          AND c.relkind IN ('r', 'p'))::bigint AS size_bytes,
       -- the masking rules applied are for the sandbox's maker (and elt_reader),
       -- not for its owner, who may not read the sources or their rules
       CASE WHEN elt._sees_role(s.created_by::oid) THEN s.manifest
            ELSE s.manifest - 'tables' || pg_catalog.jsonb_build_object('tables',
                   (SELECT pg_catalog.jsonb_agg(t - 'masking' - 'source_checksum' - 'sampled_checksum')
                    FROM pg_catalog.jsonb_array_elements(s.manifest->'tables') t)) END AS manifest
FROM elt.sandbox_defs s
WHERE elt._sees_role(s.owner::oid) OR elt._sees_role(s.created_by::oid);
GRANT SELECT ON elt.sandboxes TO PUBLIC;

CREATE FUNCTION elt.sandbox_create(name name, from_schemas name[], sample jsonb DEFAULT NULL,
                                   masked boolean DEFAULT true, expires interval DEFAULT '7 days',
                                   owner regrole DEFAULT NULL)
    RETURNS TABLE (relation regclass, source regclass, rows bigint)
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_sandbox_create';
CREATE FUNCTION elt.sandbox_refresh(name name)
    RETURNS TABLE (relation regclass, source regclass, rows bigint)
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_sandbox_refresh';
CREATE FUNCTION elt.sandbox_drop(name name, reason text DEFAULT NULL)
    RETURNS boolean LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_sandbox_drop';
CREATE FUNCTION elt.sandbox_expire()
    RETURNS integer LANGUAGE c AS 'MODULE_PATHNAME', 'elt_sandbox_expire';
