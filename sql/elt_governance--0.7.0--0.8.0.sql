-- elt_governance 0.7.0 -> 0.8.0: working with the tools warehouses already
-- run (dbt, pg_partman, pg_repack, sqitch, Alembic, pg_cron, pg_dump).
-- sql/elt_governance--0.8.0.sql is the same schema as one full script; every
-- change here is also made there (test/t/004_upgrade.pl compares them).

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.8.0'" to load this file. \quit

-- --------------------------------------------------------------------------
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

