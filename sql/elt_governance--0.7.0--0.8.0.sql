-- elt_governance 0.7.0 -> 0.8.0: working with the tools warehouses already
-- run (dbt, pg_partman, pg_repack, sqitch, Alembic, pg_cron, pg_dump).
-- sql/elt_governance--0.8.0.sql is the same schema as one full script; every
-- change here is also made there (test/t/004_upgrade.pl compares them).

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.8.0'" to load this file. \quit

-- --------------------------------------------------------------------------
-- pg_dump / pg_restore: sequences and references that survive a restore
-- into another cluster (issue 20, item 6)
-- --------------------------------------------------------------------------
-- The ids of elt.check_result_log and elt.deployment_event_log came from
-- identity sequences, which are not members of the extension: pg_dump did
-- not dump their values and a restored database failed every new result or
-- deployment action with a duplicate key.  They now come from sequences of
-- the extension, config-dumped.  Each goes on from the identity's next
-- value, or after the highest id when that is higher (a database restored
-- from a 0.7.0 dump, whose identity started over).
CREATE SEQUENCE elt.check_result_id_seq;
CREATE SEQUENCE elt.deployment_event_id_seq;
DO $$
DECLARE
    t record;
    seq text;
    last bigint;
    called boolean;
    top bigint;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('elt.check_result_log', 'result_id', 'elt.check_result_id_seq'),
                                   ('elt.deployment_event_log', 'event_id', 'elt.deployment_event_id_seq')) v(tab, col, seq)
    LOOP
        seq := pg_catalog.pg_get_serial_sequence(t.tab, t.col);
        EXECUTE pg_catalog.format('SELECT last_value, is_called FROM %s', seq) INTO last, called;
        EXECUTE pg_catalog.format('SELECT max(%I) FROM %s', t.col, t.tab) INTO top;
        last := CASE WHEN called THEN last + 1 ELSE last END;
        IF top IS NOT NULL AND top + 1 > last THEN
            last := top + 1;
        END IF;
        PERFORM pg_catalog.setval(t.seq, last, false);
    END LOOP;
END
$$;
ALTER TABLE elt.check_result_log ALTER COLUMN result_id DROP IDENTITY;
ALTER TABLE elt.check_result_log ALTER COLUMN result_id SET DEFAULT pg_catalog.nextval('elt.check_result_id_seq');
ALTER TABLE elt.deployment_event_log ALTER COLUMN event_id DROP IDENTITY;
ALTER TABLE elt.deployment_event_log ALTER COLUMN event_id SET DEFAULT pg_catalog.nextval('elt.deployment_event_id_seq');
SELECT pg_catalog.pg_extension_config_dump('elt.check_result_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.deployment_event_id_seq', '');

-- Relations become regclass and roles regrole: pg_dump writes them as
-- names and a restore resolves them again, also in another cluster where
-- the oids differ.  The conversion keeps every value: the oid of a relation
-- or role dropped since stays a number (shown as such, as before).  The
-- views over these columns are made again, unchanged.
DROP VIEW elt.checks;
DROP VIEW elt.check_results;
DROP VIEW elt.deployments;
DROP VIEW elt.deployment_events;
ALTER TABLE elt.check_defs
    ALTER COLUMN relation TYPE regclass USING relation::regclass,
    ALTER COLUMN owner TYPE regrole USING owner::regrole;
ALTER TABLE elt.check_result_log
    ALTER COLUMN declared_on TYPE regclass USING declared_on::regclass,
    ALTER COLUMN checked_by TYPE regrole USING checked_by::regrole,
    ALTER COLUMN check_owner TYPE regrole USING check_owner::regrole;
ALTER TABLE elt.deploy_interfaces
    ALTER COLUMN owner TYPE regrole USING owner::regrole,
    ALTER COLUMN initialized_by TYPE regrole USING initialized_by::regrole,
    ALTER COLUMN canary_roles TYPE regrole[] USING canary_roles::regrole[];
ALTER TABLE elt.deployment_defs
    ALTER COLUMN prepared_by TYPE regrole USING prepared_by::regrole,
    ALTER COLUMN promoted_by TYPE regrole USING promoted_by::regrole,
    ALTER COLUMN rolled_back_by TYPE regrole USING rolled_back_by::regrole,
    ALTER COLUMN decommissioned_by TYPE regrole USING decommissioned_by::regrole;
ALTER TABLE elt.deployment_event_log
    ALTER COLUMN actor TYPE regrole USING actor::regrole;
ALTER TABLE elt.snapshot_defs
    ALTER COLUMN source_oid TYPE regclass USING source_oid::regclass;

CREATE VIEW elt.checks WITH (security_barrier = true) AS
SELECT c.check_id, c.name, c.relation::regclass AS relation, c.kind,
       CASE WHEN o.sees THEN c.args END AS args,
       c.severity, c.owner::regrole AS owner, c.created_at, c.search_path
FROM elt.check_defs c
CROSS JOIN LATERAL (SELECT elt._sees_role(c.owner) AS sees) o
WHERE o.sees OR pg_catalog.has_table_privilege(c.relation, 'SELECT');

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

-- A relation's schema_version in a run manifest: through the table's
-- history (elt.tracked_tables.relid follows the table across a restore;
-- elt.schema_versions.relid is the oid it had when each version was
-- recorded).
-- A relation's columns as a manifest records them (types qualified unless
-- in pg_catalog, defaults as expressions) and its primary key.
CREATE OR REPLACE FUNCTION elt._relation_shape(rel oid) RETURNS jsonb
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

-- Migrations named by settings (sqitch, Alembic): elt.migration and
-- elt.approved_by open or join one window across a tool's sessions
-- --------------------------------------------------------------------------

ALTER TABLE elt.migration_windows ALTER COLUMN approved_by DROP NOT NULL;
ALTER TABLE elt.migration_windows
    ADD COLUMN opened_via text NOT NULL DEFAULT 'function'
        CHECK (opened_via IN ('function', 'settings'));

CREATE OR REPLACE VIEW elt.migrations AS
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


-- ==========================================================================
-- pg_partman: partitions in the parent's history
-- ==========================================================================
-- A partition of a governed parent has no history of its own: the parent's
-- versions record each partition attached, detached or dropped as one
-- change of its own (partition_attached, partition_detached,
-- partition_dropped) instead of one partitions_changed listing them all.

CREATE OR REPLACE FUNCTION elt._shape_diff(a jsonb, b jsonb)
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

CREATE OR REPLACE FUNCTION elt._describe_change(change text, object text, before text, after text)
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

CREATE OR REPLACE FUNCTION elt._version_diff(a elt.schema_versions, b elt.schema_versions)
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

-- Findings per role (issue 20, dbt): elt.my_findings
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
