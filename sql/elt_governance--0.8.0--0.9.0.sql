-- elt_governance 0.8.0 -> 0.9.0: contracts that are right more often than
-- any linter (a transaction model for scripts, the rebuild commands,
-- size-aware hazards).
-- sql/elt_governance--0.9.0.sql is the same schema as one full script; every
-- change here is also made there (test/t/004_upgrade.pl compares them).

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.9.0'" to load this file. \quit

-- --------------------------------------------------------------------------
-- Contracts: the advice class (EG208, a lock taken with no lock_timeout,
-- never blocks) and check_ddl(sql, single_transaction) for scripts that a
-- migration tool runs as one transaction (issue 21)
-- --------------------------------------------------------------------------
ALTER TABLE elt.schema_changes DROP CONSTRAINT schema_changes_class_check,
    ADD CONSTRAINT schema_changes_class_check
        CHECK (class IN ('safe', 'breaking', 'lock_hazard', 'advice'));

DROP FUNCTION elt.check_ddl(text);
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

-- --------------------------------------------------------------------------
-- PostgreSQL 15 to 18 (issue 22): the environment fingerprint reads the
-- database's locale from pg_database.datlocale on 17 and later
-- (daticulocale before), and names the builtin locale provider
-- --------------------------------------------------------------------------
-- The environment a result depends on, as one JSON object: the server
-- version, every installed extension, the database's encoding and locale,
-- the versions of the collations in use (recorded in the catalog and
-- reported by the library now), and every setting that changes how values
-- are read, printed or compared.  "id" is the SHA-256 of the canonical
-- JSON (jsonb's text form) of everything else.
CREATE OR REPLACE FUNCTION elt._env_fingerprint(caller_search_path text) RETURNS jsonb
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

-- Undo of transform runs: elt.run_revert(), elt.run_dependents()
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

CREATE OR REPLACE VIEW elt.transform_run_history AS
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

-- Row lineage lookups read a key's chunks newest run first and stop at
-- the run that last wrote it: the lookup index orders a bucket's chunks
-- by run.  Chunks are written in format 2 from now on (no byte length
-- before each list); the format 1 chunks already stored are still read.
DROP INDEX elt.lineage_chunks_lookup_idx;
CREATE INDEX lineage_chunks_lookup_idx ON elt.lineage_chunks (rel, dir, bucket, run_id);

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

-- Runs in a sandbox: elt.transform_run(..., sandbox, sql, version) and
-- elt.replay(..., sandbox); a transform run in a sandbox is a run of kind
-- 'sandbox'.
ALTER TABLE elt.run_defs DROP CONSTRAINT run_defs_kind_check;
ALTER TABLE elt.run_defs ADD CONSTRAINT run_defs_kind_check
    CHECK (kind IN ('transform', 'pipeline', 'replay', 'sandbox'));
DROP FUNCTION elt.transform_run(text, jsonb, text);
CREATE FUNCTION elt.transform_run(name text, params jsonb DEFAULT '{}',
                                  lineage text DEFAULT 'row', sandbox name DEFAULT NULL,
                                  sql text DEFAULT NULL, version integer DEFAULT NULL)
    RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_transform_run';
DROP FUNCTION elt.replay(bigint, text, boolean);
CREATE FUNCTION elt.replay(run_id bigint, into_schema text DEFAULT NULL,
                           trust_imported boolean DEFAULT false, sandbox name DEFAULT NULL) RETURNS bigint
    LANGUAGE c CALLED ON NULL INPUT AS 'MODULE_PATHNAME', 'elt_replay';

-- Issue 25: the shape of a Citus table records its distribution (method,
-- distribution column, colocation group); its changes are described.
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

-- Issue 25: elt.deploy_diff finds the differing rows first, then their
-- differing columns, so that Citus can run it over distributed tables.
CREATE OR REPLACE FUNCTION elt._deploy_diff_rows(live_rel regclass, candidate_rel regclass, max_rows integer)
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

-- --------------------------------------------------------------------------
-- Backfills on Citus (issue 25): the chunks of a hash-distributed table are
-- planned per shard; each chunk records the shard it lies in
-- --------------------------------------------------------------------------
ALTER TABLE elt.backfill_chunks
    ADD COLUMN shard_id bigint,
    ADD COLUMN shard_min integer,
    ADD COLUMN shard_max integer;
