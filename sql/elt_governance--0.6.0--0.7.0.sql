-- elt_governance 0.6.0 -> 0.7.0: least privilege — a role model, catalog
-- views that show each role what it may read, and every engine's code run
-- as the role that owns it.

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.7.0'" to load this file. \quit

-------------------------------------------------------------------------------
-- The role model (see src/roles.c and the README's Security section)
-------------------------------------------------------------------------------

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

-------------------------------------------------------------------------------
-- What each role sees of the catalog
-------------------------------------------------------------------------------

-- Tables that hold values copied from the warehouse's tables (run
-- parameters and errors, key bounds, audit details) are no longer readable
-- by PUBLIC: the views below show each role its own, like
-- pg_stat_activity.  elt_reader reads every catalog table except row
-- lineage (which holds the keys of whole tables: elt.trace and elt.impact
-- show it to the roles that may read them).
REVOKE SELECT ON elt.audit_log, elt.transform_runs, elt.backfills, elt.backfill_chunks FROM PUBLIC;
GRANT SELECT ON elt.governed_targets, elt.tracked_tables, elt.schema_versions, elt.audit_log,
    elt.approvers, elt.migration_windows, elt.migration_approvals, elt.consumer_registrations,
    elt.schema_changes, elt.backfills, elt.backfill_chunks, elt.transform_defs, elt.transform_code,
    elt.lineage_columns, elt.transform_runs, elt.snapshot_defs, elt.run_defs, elt.run_steps,
    elt.run_manifests, elt.run_snapshots, elt.deploy_interfaces, elt.deployment_defs,
    elt.deployment_event_log, elt.check_defs, elt.check_result_log
    TO elt_reader;

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

-- Every transform run; its parameters and error for the members of the
-- role that ran it and of the transform's owner, and elt_reader.
CREATE VIEW elt.transform_run_history AS
SELECT r.run_id, d.name AS transform, r.transform_id, r.version, r.code_hash,
       CASE WHEN v.sees THEN r.params END AS params,
       r.lineage, r.status, r.started_at, r.finished_at, r.rows_read, r.rows_written,
       r.rows_deleted, r.role,
       CASE WHEN v.sees THEN r.error END AS error,
       r.random_seed
FROM elt.transform_runs r
JOIN elt.transform_defs d ON d.transform_id = r.transform_id
CROSS JOIN LATERAL (SELECT elt._sees_role_name(r.role) OR elt._sees_role_name(d.owner) AS sees) v;

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

GRANT SELECT ON elt.audit_trail, elt.transform_run_history, elt.backfill_chunk_status TO PUBLIC;

-- Errors and state reasons (which quote what failed) for the owner's
-- members and elt_reader.
CREATE OR REPLACE VIEW elt.backfill_status AS
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

-- Runs and snapshots: also every one for elt_reader.  The views that leave
-- rows out are security barriers: a function in the reader's WHERE clause
-- never sees a row the view's own condition leaves out.
CREATE OR REPLACE VIEW elt.runs WITH (security_barrier = true) AS
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
WHERE elt._sees_role(r.role::oid);

CREATE OR REPLACE VIEW elt.snapshots WITH (security_barrier = true) AS
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

-- Deployments of the interfaces whose schema the caller may use (by oid:
-- an interface schema dropped or renamed behind the extension's back is
-- not an error), and every one for elt_reader.  The checks in a
-- promotion's or canary's gates (their statuses and counts of failing rows,
-- taken as the checks' owners) for the members of the interface's owner
-- and elt_reader.
CREATE OR REPLACE VIEW elt.deployments WITH (security_barrier = true) AS
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

CREATE OR REPLACE VIEW elt.deployment_events WITH (security_barrier = true) AS
SELECT e.event_id, e.deployment_id, e.interface, e.action,
       e.actor::regrole AS actor, e.happened_at, e.reason,
       CASE WHEN elt._sees_role(i.owner) OR NOT e.details ? 'gates' THEN e.details
            ELSE pg_catalog.jsonb_set(e.details, '{gates}', (e.details -> 'gates') - 'checks') END AS details
FROM elt.deployment_event_log e
LEFT JOIN elt.deploy_interfaces i ON i.interface = e.interface
WHERE elt._sees_all()
   OR pg_catalog.has_schema_privilege(pg_catalog.to_regnamespace(pg_catalog.quote_ident(e.interface))::oid, 'USAGE');

-- The search_path a check was declared with: its SQL runs with it, never
-- with the caller's (NULL for checks declared before 0.7.0: a member of the
-- owner runs them with its own, anyone else with pg_catalog only).
ALTER TABLE elt.check_defs ADD COLUMN search_path text;

-- Checks: on relations the caller may read, or of a role whose privileges
-- it has; arguments (accepted values, expressions, custom SQL) for the
-- owner's members and elt_reader.
CREATE OR REPLACE VIEW elt.checks WITH (security_barrier = true) AS
SELECT c.check_id, c.name, c.relation::regclass AS relation, c.kind,
       CASE WHEN o.sees THEN c.args END AS args,
       c.severity, c.owner::regrole AS owner, c.created_at, c.search_path
FROM elt.check_defs c
CROSS JOIN LATERAL (SELECT elt._sees_role(c.owner) AS sees) o
WHERE o.sees OR pg_catalog.has_table_privilege(c.relation, 'SELECT');

-- The check's owner when it ran (results before 0.7.0: the role that ran
-- it, which had the owner's privileges).
ALTER TABLE elt.check_result_log ADD COLUMN check_owner oid;

-- Check results: the status, the count of failing rows, samples and
-- messages were read as the check's owner (a count over rows that
-- row-level security hides, or over other tables in a custom check's SQL,
-- tells about them too): shown to the owner's members and elt_reader, and
-- to roles that read the declared and the checked relation themselves with
-- no row-level security applying (never for custom checks).
CREATE OR REPLACE VIEW elt.check_results WITH (security_barrier = true) AS
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

-- The chain head, for every role: read through elt.audit_trail (ids and
-- hashes are shown to all), now that elt.audit_log is not readable by PUBLIC.
CREATE OR REPLACE FUNCTION elt.audit_digest() RETURNS jsonb
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

-------------------------------------------------------------------------------
-- Deployments: column grants follow the tables to their views and candidates
-------------------------------------------------------------------------------

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

-------------------------------------------------------------------------------
-- Internal functions that are not for calling
-------------------------------------------------------------------------------

-- Decodes chunks of elt.lineage_chunks for elt.lineage_rows (which only
-- superusers and the extension's owner read); any bytea given to it is
-- decoded and checked, but it has nothing to offer PUBLIC.
REVOKE EXECUTE ON FUNCTION elt._lineage_chunk_entries(bytea) FROM PUBLIC;

-------------------------------------------------------------------------------
-- Deployments: deploy_compare and deploy_diff compare each table as its owner
-------------------------------------------------------------------------------

-- They were PL/pgSQL functions that ran as the caller, and comparing rows
-- calls code of the tables' owner: a cast of a column's type to text or
-- json, the CHECK of a domain on the key, constant parts of index
-- expressions and predicates.  Now C functions (src/deploy_compare.c) list
-- the tables as the caller, check that it has the privileges of each
-- table's owner, and compare each table as that owner, in a
-- security-restricted operation with search_path pinned, by calling the
-- two functions below.
DROP FUNCTION elt.deploy_compare(text, integer);
DROP FUNCTION elt.deploy_diff(text, text, integer);

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
    RETURN QUERY EXECUTE format(
        'SELECT jsonb_build_object(%1$s),'
        ' CASE WHEN c.%2$I IS NULL THEN ''missing'' WHEN l.%2$I IS NULL THEN ''extra'' ELSE ''changed'' END,'
        ' CASE WHEN c.%2$I IS NOT NULL AND l.%2$I IS NOT NULL THEN'
        '  ARRAY(SELECT a.key FROM jsonb_each(to_jsonb(l)) a JOIN jsonb_each(to_jsonb(c)) b USING (key)'
        '        WHERE a.value::text IS DISTINCT FROM b.value::text ORDER BY a.key) END,'
        ' to_jsonb(l), to_jsonb(c)'
        ' FROM (SELECT %3$s FROM %4$s) l FULL JOIN (SELECT %3$s FROM %5$s) c ON %6$s'
        ' WHERE c.%2$I IS NULL OR l.%2$I IS NULL OR (%7$s)'
        ' ORDER BY %8$s LIMIT %9$s',
        (SELECT string_agg(format('%1$L, coalesce(l.%1$I, c.%1$I)', k), ', ') FROM unnest(m.key) k),
        m.key[1], collist, live_rel, candidate_rel, m.joincond, m.diffcond,
        (SELECT string_agg(format('coalesce(l.%1$I, c.%1$I)', k), ', ') FROM unnest(m.key) k),
        max_rows);
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

-------------------------------------------------------------------------------
-- Snapshots: serialized per role; the storage schema's privileges are set once
-------------------------------------------------------------------------------

-- Every role may use the schema elt_snapshots (each copy's own privileges
-- say who reads it; PUBLIC creates nothing in it), so that a creation no
-- longer grants USAGE to its role: two roles' creations updated the
-- schema's catalog row and waited for each other.  A schema made by 0.6.0
-- gets these privileges here; one made later gets them when it is made.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_extension e ON e.extowner = n.nspowner
             WHERE n.nspname = 'elt_snapshots' AND e.extname = 'elt_governance') THEN
    REVOKE ALL ON SCHEMA elt_snapshots FROM PUBLIC;
    GRANT USAGE ON SCHEMA elt_snapshots TO PUBLIC;
  END IF;
END $$;
