/* elt_governance 0.1.0 -> 0.2.0: backward-compatibility contracts */

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------------

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

-- Approved change windows.  A window belongs to one session (backend_pid,
-- backend_start) and is open until elt.migration_end() or the end of that
-- session.
CREATE TABLE elt.migration_windows (
    migration_id  bigint PRIMARY KEY DEFAULT pg_catalog.nextval('elt.migration_id_seq'),
    name          text NOT NULL CHECK (name <> ''),
    reason        text NOT NULL CHECK (reason <> ''),
    approved_by   text NOT NULL,
    opened_by     name NOT NULL,
    role          name NOT NULL,
    backend_pid   integer NOT NULL,
    backend_start timestamptz,
    opened_at     timestamptz NOT NULL,
    closed_at     timestamptz
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
    class        text NOT NULL CHECK (class IN ('safe', 'breaking', 'lock_hazard')),
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
           WHEN elt._backend_alive(m.backend_pid, m.backend_start) THEN 'open'
           ELSE 'abandoned'
       END AS status,
       (SELECT count(*) FROM elt.schema_changes c
        WHERE c.migration_id = m.migration_id AND c.class <> 'safe') AS changes,
       (SELECT count(*) FROM elt.schema_versions v
        WHERE v.migration_id = m.migration_id) AS versions
FROM elt.migration_windows m;

GRANT SELECT ON elt.migrations TO PUBLIC;

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
CREATE FUNCTION elt.check_ddl(sql text,
    OUT statement_no integer, OUT statement text, OUT rule text,
    OUT class text, OUT object text, OUT reason text, OUT dependents text[],
    OUT suggestion text)
    RETURNS SETOF record
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'elt_check_ddl';
