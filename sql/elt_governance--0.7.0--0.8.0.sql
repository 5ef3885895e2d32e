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

