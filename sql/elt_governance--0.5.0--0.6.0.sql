-- elt_governance 0.5.0 -> 0.6.0: blue-green deployments and quality checks.

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.6.0'" to load this file. \quit

-------------------------------------------------------------------------------
-- Catalog
-------------------------------------------------------------------------------

-- An interface schema: views that consumers read, over the tables of the
-- live color (<interface>__blue or <interface>__green).
CREATE TABLE elt.deploy_interfaces (
    interface name PRIMARY KEY,
    live_color text NOT NULL CHECK (live_color IN ('blue', 'green')),
    owner oid NOT NULL,
    initialized_by oid NOT NULL,
    initialized_at timestamptz NOT NULL,
    canary_deployment bigint,
    canary_roles oid[],
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
    prepared_by oid NOT NULL,
    prepared_at timestamptz NOT NULL,
    promoted_by oid,
    promoted_at timestamptz,
    promote_reason text,
    forced boolean,
    gates jsonb,
    rolled_back_by oid,
    rolled_back_at timestamptz,
    rollback_reason text,
    decommissioned_by oid,
    decommissioned_at timestamptz
);
CREATE INDEX deployment_defs_interface_idx ON elt.deployment_defs (interface, deployment_id);

-- What happened to each interface, in order (append-only).
CREATE TABLE elt.deployment_event_log (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id bigint,
    interface name NOT NULL,
    action text NOT NULL,
    actor oid NOT NULL,
    happened_at timestamptz NOT NULL,
    reason text,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX deployment_event_log_interface_idx ON elt.deployment_event_log (interface, event_id);

CREATE SEQUENCE elt.check_id_seq;

-- A declared expectation on a relation.
CREATE TABLE elt.check_defs (
    check_id bigint PRIMARY KEY,
    name text NOT NULL,
    relation oid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('not_null', 'unique', 'accepted_values', 'relationships',
                                       'row_count_between', 'freshness', 'expression', 'custom',
                                       'row_count_delta')),
    args jsonb NOT NULL,
    severity text NOT NULL CHECK (severity IN ('error', 'warn')),
    owner oid NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (relation, name)
);

-- Every result of every check run (append-only).
CREATE TABLE elt.check_result_log (
    result_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    check_id bigint NOT NULL,
    check_name text NOT NULL,
    declared_on oid NOT NULL,
    checked_relation text NOT NULL,
    kind text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL CHECK (status IN ('pass', 'warn', 'fail', 'error')),
    failing_rows bigint,
    sample jsonb,
    message text,
    run_id bigint,
    deployment_id bigint,
    checked_by oid NOT NULL,
    checked_at timestamptz NOT NULL,
    duration_ms double precision NOT NULL
);
CREATE INDEX check_result_log_check_idx ON elt.check_result_log (check_id, result_id);

SELECT pg_catalog.pg_extension_config_dump('elt.deploy_interfaces', '');
SELECT pg_catalog.pg_extension_config_dump('elt.deployment_defs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.deployment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.deployment_event_log', '');
SELECT pg_catalog.pg_extension_config_dump('elt.check_defs', '');
SELECT pg_catalog.pg_extension_config_dump('elt.check_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('elt.check_result_log', '');
REVOKE ALL ON elt.deploy_interfaces, elt.deployment_defs, elt.deployment_event_log,
    elt.check_defs, elt.check_result_log FROM PUBLIC;
-- which color each interface reads, and who is in its canary: public
GRANT SELECT ON elt.deploy_interfaces TO PUBLIC;

CREATE TRIGGER deployment_event_log_append_only
    BEFORE UPDATE OR DELETE ON elt.deployment_event_log
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER deployment_event_log_no_truncate
    BEFORE TRUNCATE ON elt.deployment_event_log
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER check_result_log_append_only
    BEFORE UPDATE OR DELETE ON elt.check_result_log
    FOR EACH ROW EXECUTE FUNCTION elt.refuse_history_change();
CREATE TRIGGER check_result_log_no_truncate
    BEFORE TRUNCATE ON elt.check_result_log
    FOR EACH STATEMENT EXECUTE FUNCTION elt.refuse_history_change();

-------------------------------------------------------------------------------
-- Views
-------------------------------------------------------------------------------

-- Deployments of the interfaces whose schema the caller may use.
CREATE VIEW elt.deployments AS
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
       d.promoted_by::regrole AS promoted_by, d.promoted_at, d.promote_reason, d.forced, d.gates,
       d.rolled_back_by::regrole AS rolled_back_by, d.rolled_back_at, d.rollback_reason,
       d.decommissioned_by::regrole AS decommissioned_by, d.decommissioned_at
FROM elt.deployment_defs d
JOIN elt.deploy_interfaces i USING (interface)
WHERE pg_catalog.has_schema_privilege(i.interface, 'USAGE');

CREATE VIEW elt.deployment_events AS
SELECT e.event_id, e.deployment_id, e.interface, e.action,
       e.actor::regrole AS actor, e.happened_at, e.reason, e.details
FROM elt.deployment_event_log e
WHERE pg_catalog.to_regnamespace(pg_catalog.quote_ident(e.interface)) IS NOT NULL
  AND pg_catalog.has_schema_privilege(pg_catalog.quote_ident(e.interface), 'USAGE');

-- Checks on relations the caller may read.
CREATE VIEW elt.checks AS
SELECT c.check_id, c.name, c.relation::regclass AS relation, c.kind, c.args, c.severity,
       c.owner::regrole AS owner, c.created_at
FROM elt.check_defs c
WHERE pg_catalog.has_table_privilege(c.relation, 'SELECT');

CREATE VIEW elt.check_results AS
SELECT r.result_id, r.check_id, r.check_name, r.declared_on::regclass AS declared_on,
       r.checked_relation, r.kind, r.severity, r.status, r.failing_rows, r.sample, r.message,
       r.run_id, r.deployment_id, r.checked_by::regrole AS checked_by, r.checked_at, r.duration_ms
FROM elt.check_result_log r
WHERE EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = r.declared_on)
  AND pg_catalog.has_table_privilege(r.declared_on, 'SELECT');

GRANT SELECT ON elt.deployments, elt.deployment_events, elt.checks, elt.check_results TO PUBLIC;

-------------------------------------------------------------------------------
-- Quality checks
-------------------------------------------------------------------------------

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

-------------------------------------------------------------------------------
-- Deployments
-------------------------------------------------------------------------------

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

-- Per table of an interface: shape differences, live and candidate rows,
-- missing, extra and changed rows.  Key-range checksums over the common
-- columns first; only ranges whose checksums differ are compared row by row.
CREATE FUNCTION elt.deploy_compare(interface text, segments integer DEFAULT 16)
RETURNS TABLE (relation text, shape text, compatibility text, live_rows bigint, candidate_rows bigint,
               missing bigint, extra bigint, changed bigint, ranges_compared integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    m record;
    bounds text[];
    r record;
    cond text;
    a bigint;
    b bigint;
    ch bigint;
BEGIN
    IF segments IS NULL OR segments < 1 OR segments > 1000 THEN
        RAISE EXCEPTION 'segments must be between 1 and 1000' USING ERRCODE = '22023';
    END IF;
    FOR p IN SELECT * FROM elt._deploy_pairs(interface) LOOP
        relation := format('%I.%I', interface, p.name);
        shape := NULL; compatibility := NULL; live_rows := NULL; candidate_rows := NULL;
        missing := NULL; extra := NULL; changed := NULL; ranges_compared := 0;
        IF p.candidate IS NULL THEN
            shape := 'table missing in the candidate';
            compatibility := 'breaking';
            EXECUTE format('SELECT count(*) FROM %s', p.live) INTO live_rows;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p.live IS NULL THEN
            shape := 'new table';
            compatibility := 'safe';
            EXECUTE format('SELECT count(*) FROM %s', p.candidate) INTO candidate_rows;
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT string_agg(format('%s %s%s', d.change, d.col,
                                 CASE WHEN d.before IS NOT NULL AND d.after IS NOT NULL
                                      THEN format(' (%s -> %s)', d.before, d.after) ELSE '' END), ', '),
               CASE WHEN count(*) = 0 THEN NULL WHEN bool_or(d.compatibility = 'breaking') THEN 'breaking' ELSE 'safe' END
        INTO shape, compatibility
        FROM elt._deploy_shape_diff(p.live, p.candidate) d;
        compatibility := coalesce(compatibility, 'same');
        SELECT * INTO m FROM elt._deploy_rowmatch(p.live, p.candidate);
        -- the live table's ranges cut the candidate's the same way
        SELECT array_agg(x.upper ORDER BY x.segment) FILTER (WHERE x.upper IS NOT NULL)
        INTO bounds
        FROM elt.table_checksum_ranges(p.live, m.key[1], segments, m.cols) x;
        live_rows := 0; candidate_rows := 0; missing := 0; extra := 0; changed := 0;
        FOR r IN
            SELECT x.segment, x.lower, x.upper, x.row_count AS lrows, y.row_count AS crows,
                   x.checksum IS DISTINCT FROM y.checksum AS differs
            FROM elt.table_checksum_ranges(p.live, m.key[1], coalesce(bounds, '{}'), m.cols) x
            JOIN elt.table_checksum_ranges(p.candidate, m.key[1], coalesce(bounds, '{}'), m.cols) y USING (segment)
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
                           m.key[1], m.diffcond, p.live, cond, p.candidate, m.joincond)
            INTO a, b, ch;
            missing := missing + a;
            extra := extra + b;
            changed := changed + ch;
        END LOOP;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The rows of one table of an interface that differ between live and the
-- candidate, side by side, by key.
CREATE FUNCTION elt.deploy_diff(interface text, rel text, max_rows integer DEFAULT 100)
RETURNS TABLE (key jsonb, change text, columns text[], live jsonb, candidate jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    m record;
    collist text;
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be at least 1' USING ERRCODE = '22023';
    END IF;
    -- the table's name, or the view's as deploy_compare lists it
    SELECT * INTO p FROM elt._deploy_pairs(interface) x
    WHERE x.name = rel OR format('%I.%I', interface, x.name) = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'interface "%" has no table "%"', interface, rel
            USING ERRCODE = '42P01', HINT = 'elt.deploy_compare(interface) lists its tables.';
    END IF;
    IF p.live IS NULL OR p.candidate IS NULL THEN
        RAISE EXCEPTION 'table "%" is only in the % color', rel,
                        CASE WHEN p.live IS NULL THEN 'candidate' ELSE 'live' END
            USING ERRCODE = '55000', HINT = 'elt.deploy_compare(interface) shows it as a shape difference.';
    END IF;
    SELECT * INTO m FROM elt._deploy_rowmatch(p.live, p.candidate);
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
        m.key[1], collist, p.live, p.candidate, m.joincond, m.diffcond,
        (SELECT string_agg(format('coalesce(l.%1$I, c.%1$I)', k), ', ') FROM unnest(m.key) k),
        max_rows);
END
$$;

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
