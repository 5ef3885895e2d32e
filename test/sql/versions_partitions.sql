-- Partitions of a governed partitioned table: no history of their own unless
-- governed on their own; the parent's history records each partition
-- attached, detached or dropped; none of that is a breaking change, while a
-- breaking change to the parent's shape still is.
CREATE EXTENSION elt_governance;
CREATE SCHEMA pt;
CREATE TABLE pt.events (id int NOT NULL, at date NOT NULL, note text) PARTITION BY RANGE (at);
CREATE TABLE pt.events_2025 PARTITION OF pt.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE VIEW pt.recent AS SELECT id, at, note FROM pt.events;
-- governing the schema records a baseline of the parent only
SELECT elt.govern('pt', 'enforce');
SELECT schema_name, table_name FROM elt.tracked_tables ORDER BY table_id;

CREATE FUNCTION pg_temp.history() RETURNS TABLE (version int, command_tag text, summary text)
LANGUAGE sql AS $$
    SELECT version, command_tag, summary FROM elt.schema_history
    WHERE schema_name = 'pt' AND table_name = 'events' ORDER BY version
$$;

-- CREATE TABLE ... PARTITION OF: one version of the parent
CREATE TABLE pt.events_2026 PARTITION OF pt.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
-- pg_partman's way: CREATE TABLE ... (LIKE parent), then ATTACH, in one
-- transaction: the new table's versions are taken back
BEGIN;
CREATE TABLE pt.events_2027 (LIKE pt.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE INDEX ON pt.events_2027 (at);
SELECT count(*) AS versions_before_attach FROM elt.schema_versions WHERE table_name = 'events_2027';
ALTER TABLE pt.events ATTACH PARTITION pt.events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
SELECT count(*) AS versions_after_attach FROM elt.schema_versions WHERE table_name = 'events_2027';
COMMIT;
SELECT * FROM pg_temp.history();
SELECT schema_name, table_name FROM elt.tracked_tables ORDER BY table_id;
-- and nothing of it reached the audit log, which still verifies
SELECT count(*) FROM elt.audit_log WHERE object LIKE 'pt.events\_%' AND action = 'version_recorded';
SELECT valid FROM elt.audit_verify();

-- an attach rolled back to a savepoint keeps the table's own history
BEGIN;
CREATE TABLE pt.events_2028 (LIKE pt.events);
SAVEPOINT s;
ALTER TABLE pt.events ATTACH PARTITION pt.events_2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT table_name, version, event FROM elt.schema_versions WHERE table_name = 'events_2028';
SELECT valid FROM elt.audit_verify();
-- a table with a committed history records its attach, then pauses while it
-- is a partition, and goes on when detached
ALTER TABLE pt.events ATTACH PARTITION pt.events_2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');
CREATE INDEX events_at_idx ON pt.events (at);
ALTER TABLE pt.events DETACH PARTITION pt.events_2028;
SELECT version, command_tag, summary FROM elt.schema_history
WHERE table_name = 'events_2028' ORDER BY version;

-- detaching and dropping partitions is no finding under enforce: it runs,
-- is recorded as a safe change of the parent, and the parent's history
-- says what happened; the detached table gets no history of its own
ALTER TABLE pt.events DETACH PARTITION pt.events_2025;
DROP TABLE pt.events_2026;
SELECT * FROM pg_temp.history();
SELECT schema_name, table_name FROM elt.tracked_tables ORDER BY table_id;
SELECT object, class, policy, decision, left(statement, 50) AS statement
FROM elt.schema_changes WHERE statement ~ '(DETACH PARTITION|DROP TABLE) pt\.events_202[56]' ORDER BY change_id;
SELECT change, object, description FROM elt.schema_diff('pt.events', 5, 7);

-- a partition detached by this very transaction has no readers as a table
-- yet: moving it away is not judged (pg_partman's retention_schema) ...
CREATE SCHEMA pt_archive;
CREATE TABLE pt.events_2030 PARTITION OF pt.events FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');
CREATE TABLE pt.events_2031 PARTITION OF pt.events FOR VALUES FROM ('2031-01-01') TO ('2032-01-01');
BEGIN;
ALTER TABLE pt.events DETACH PARTITION pt.events_2030;
ALTER TABLE pt.events_2030 SET SCHEMA pt_archive;
COMMIT;
-- ... but one detached earlier is an ordinary table of the schema
ALTER TABLE pt.events DETACH PARTITION pt.events_2031;
ALTER TABLE pt.events_2031 SET SCHEMA pt_archive;
SELECT version, command_tag, summary FROM pg_temp.history() WHERE version > 8;
SELECT schema_name, table_name FROM elt.tracked_tables ORDER BY table_id;

-- a breaking change to the parent's shape is still judged
ALTER TABLE pt.events DROP COLUMN note;
ALTER TABLE pt.events ALTER COLUMN id TYPE smallint;
-- and NO INHERIT from a governed (inheritance) parent still is EG120
CREATE TABLE pt.hist (id int);
CREATE TABLE pt.hist_2020 () INHERITS (pt.hist);
ALTER TABLE pt.hist_2020 NO INHERIT pt.hist;

-- a partition governed on its own keeps a history of its own and is judged
-- under its own policy only: enforce blocks its drop ...
SELECT elt.govern('pt.events_2027', 'enforce');
ALTER TABLE pt.events_2027 ADD CONSTRAINT note_len CHECK (length(note) < 10) NOT VALID;
SELECT version, event, summary FROM elt.schema_history
WHERE table_name = 'events_2027' ORDER BY version;
DROP TABLE pt.events_2027;
-- ... and off lets it go, although the parent is governed under enforce
SELECT elt.govern('pt.events_2027', 'off');
DROP TABLE pt.events_2027;
SELECT version, event, summary FROM elt.schema_history
WHERE table_name = 'events_2027' ORDER BY version;
SELECT version, command_tag, summary FROM pg_temp.history() WHERE version > 12;

-- a governed table attached and detached again by one transaction is judged
-- as the table it was: attaching it hides none of its breaking changes
CREATE TABLE pt.loose (id int NOT NULL, at date NOT NULL, note text);
BEGIN;
ALTER TABLE pt.events ATTACH PARTITION pt.loose FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');
ALTER TABLE pt.events DETACH PARTITION pt.loose;
ALTER TABLE pt.loose RENAME TO loose_gone;
ROLLBACK;
-- nor is a partition governed on its own, or read by a registered consumer,
-- once detached: its readers are its own
CREATE TABLE pt.events_2035 PARTITION OF pt.events FOR VALUES FROM ('2035-01-01') TO ('2036-01-01');
SELECT elt.consumer_register('pt.events_2035', 'app:billing', ARRAY['note']);
BEGIN;
ALTER TABLE pt.events DETACH PARTITION pt.events_2035;
ALTER TABLE pt.events_2035 RENAME COLUMN note TO remark;
ROLLBACK;
SELECT elt.consumer_unregister('pt.events_2035', 'app:billing');
SELECT attname FROM pg_attribute WHERE attrelid = 'pt.loose'::regclass AND attnum > 0 ORDER BY attnum;
SELECT attname FROM pg_attribute WHERE attrelid = 'pt.events_2035'::regclass AND attnum > 0 ORDER BY attnum;
SET elt.enabled = off;
DROP TABLE pt.loose, pt.events_2035;
RESET elt.enabled;

-- dropping the parent drops its partitions, and is still EG101
CREATE TABLE pt.events_2029 PARTITION OF pt.events FOR VALUES FROM ('2029-01-01') TO ('2030-01-01');
DROP TABLE pt.events CASCADE;

-- a role that owns nothing cannot delete history, nor attach what it does
-- not own
CREATE ROLE elt_partitions_nobody;
SET ROLE elt_partitions_nobody;
DELETE FROM elt.schema_versions;
ALTER TABLE pt.events ATTACH PARTITION pt.events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
RESET ROLE;
-- even the extension's owner cannot: the trigger refuses it
DELETE FROM elt.schema_versions WHERE table_name = 'events';

SET elt.enabled = off;
DROP SCHEMA pt, pt_archive CASCADE;
RESET elt.enabled;
DROP ROLE elt_partitions_nobody;
DROP EXTENSION elt_governance;
