-- elt_governance 0.6.0 -> 0.7.0: least privilege — a role model, catalog
-- views that show each role what it may read, and every engine's code run
-- as the role that owns it.

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.7.0'" to load this file. \quit

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
