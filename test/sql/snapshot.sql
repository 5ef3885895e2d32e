-- Snapshots: elt.snapshot_create, elt.snapshots and elt.snapshot_purge on
-- their own (checksum.sql covers content addressing and snapshot_drop)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS elt_governance;

CREATE SCHEMA sn;
CREATE TABLE sn.t (id int PRIMARY KEY, "we""ird" text, "n\m" numeric(6,2));
INSERT INTO sn.t VALUES (1, 'x', 1.5), (2, 'y', NULL);
CREATE TABLE sn.u (id int);
INSERT INTO sn.u VALUES (1);
-- the snapshots' owner (its purges touch only its own), and a role that
-- owns nothing and may read nothing here
CREATE ROLE sn_owner;
GRANT USAGE ON SCHEMA sn TO sn_owner;
GRANT SELECT ON sn.t, sn.u TO sn_owner;
CREATE ROLE sn_nobody;
GRANT USAGE ON SCHEMA sn TO sn_nobody;

SET ROLE sn_owner;
-- column names with a quote and a backslash are kept as they are
SELECT elt.snapshot_create('sn.t') AS s1 \gset
SELECT source_name, row_count, columns FROM elt.snapshots WHERE snapshot_id = :s1;
SELECT jsonb_typeof(columns) AS shape, columns -> 1 ->> 'name' AS second_column
FROM elt.snapshots WHERE snapshot_id = :s1;
SELECT elt.snapshot_create('sn.t') = :s1 AS reused;
RESET ROLE;
-- audited: a new copy, then the same rows again
SELECT role::text, details ->> 'source' AS source, (details ->> 'rows')::int AS rows, details -> 'reused' AS reused,
       (details ->> 'snapshot_id')::bigint = :s1 AS its_id
FROM elt.audit_trail WHERE action = 'snapshot_create' ORDER BY id DESC LIMIT 2;

-- bad input
SELECT elt.snapshot_create('sn.no_such_table');
SELECT elt.snapshot_purge(NULL, NULL);
SELECT elt.snapshot_purge(interval '1 day', -2);

-- a role that owns nothing: no rights on the table, nothing to see or purge
SET ROLE sn_nobody;
SELECT elt.snapshot_create('sn.u');
SELECT count(*) AS snapshots_it_sees FROM elt.snapshots;
SELECT elt.snapshot_purge(interval '0 seconds') AS purged;
SELECT elt.snapshot_purge(keep_last => 0) AS purged;
RESET ROLE;
SELECT count(*) AS still_there FROM elt.snapshots WHERE snapshot_id = :s1;
SELECT (details ->> 'dropped')::int AS dropped, role::text FROM elt.audit_trail
WHERE action = 'snapshot_purge' ORDER BY id DESC LIMIT 1;

-- keep_last keeps each source's newest copies, older_than the recent ones
INSERT INTO sn.t VALUES (3, 'z', 3);
SET ROLE sn_owner;
SELECT elt.snapshot_create('sn.t') <> :s1 AS new_rows_new_copy;
SELECT elt.snapshot_create('sn.u') > 0 AS other_source;
SELECT elt.snapshot_purge(interval '1 hour') AS purged_recent;
SELECT elt.snapshot_purge(keep_last => 1) AS purged_older;
SELECT source_name, row_count FROM elt.snapshots ORDER BY source_name;
SELECT elt.snapshot_purge(interval '0 seconds', 1) AS purged_kept_last;
SELECT elt.snapshot_purge(interval '0 seconds') AS purged_rest;
SELECT count(*) AS left_of_its_own FROM elt.snapshots;
RESET ROLE;
SELECT (details ->> 'dropped')::int AS dropped FROM elt.audit_trail
WHERE action = 'snapshot_purge' AND role = 'sn_owner' ORDER BY id;

DROP SCHEMA sn CASCADE;
DROP OWNED BY sn_owner, sn_nobody;
DROP ROLE sn_owner, sn_nobody;
