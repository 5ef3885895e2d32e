/* elt_governance 0.2.0 -> 0.3.0: backfills */

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.3.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------------

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

-- One row per planned chunk: [lower_bound, upper_bound) of the key.  The
-- final chunk gets its upper bound (above the greatest key) when it runs.
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

REVOKE ALL ON elt.backfills, elt.backfill_chunks FROM PUBLIC;
GRANT SELECT ON elt.backfills, elt.backfill_chunks TO PUBLIC;

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
       COALESCE(e.last_error, CASE WHEN b.state IN ('failed', 'paused') THEN b.state_reason END)
           AS last_error,
       w.live AS live_workers,
       b.state_reason,
       b.runner,
       b.owner,
       b.created_at,
       b.started_at,
       b.finished_at
FROM elt.backfills b
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

GRANT SELECT ON elt.backfill_status TO PUBLIC;
