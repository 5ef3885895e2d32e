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
