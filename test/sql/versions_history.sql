-- elt.schema_history and elt.table_versions: a readable line per version.
CREATE EXTENSION elt_governance;
CREATE SCHEMA h;
CREATE TABLE h.orders (order_id bigint PRIMARY KEY, amount numeric NOT NULL, note text);
SELECT elt.govern('h', 'off');  -- versions only; see contracts.sql
ALTER TABLE h.orders ADD COLUMN status text NOT NULL DEFAULT 'new', ALTER COLUMN note SET DEFAULT '';
ALTER TABLE h.orders RENAME COLUMN note TO remark;
ALTER TABLE h.orders ALTER COLUMN amount TYPE numeric(12,2), ALTER COLUMN amount DROP NOT NULL;
CREATE INDEX orders_status ON h.orders (status);
ALTER TABLE h.orders ADD CONSTRAINT status_known CHECK (status IN ('new', 'paid'));
ALTER TABLE h.orders SET (fillfactor = 90);
ALTER TABLE h.orders RENAME TO purchases;
CREATE TABLE h.lines (order_id bigint REFERENCES h.purchases, n int);
DROP TABLE h.lines;
-- DDL while ungoverned is missed; governing again records a baseline with the difference
SELECT elt.ungovern('h');
ALTER TABLE h.purchases DROP COLUMN remark;
SELECT elt.govern('h', 'off');

SELECT schema_name, table_name, version, event, command_tag, summary
FROM elt.schema_history ORDER BY table_id, version;

-- table_versions returns whole version rows of one live table
SELECT version, event, table_name, role = current_user AS by_me,
       jsonb_array_length(shape->'columns') AS columns,
       xid IS NOT NULL AS has_xid, recorded_at <= now() AS in_past, migration_id
FROM elt.table_versions('h.purchases');

DROP EXTENSION elt_governance;
DROP SCHEMA h CASCADE;
