-- Backward-compatibility contracts: every rule under every policy, safe
-- statements, multi-subcommand statements, ungoverned tables, consumers,
-- migrations and the record of changes.
CREATE EXTENSION elt_governance;
SET elt.large_table_rows = 100;

CREATE SCHEMA c;
CREATE TYPE c.mood AS ENUM ('sad', 'ok');
CREATE TABLE c.customers (customer_id int PRIMARY KEY, name text);
CREATE TABLE c.orders (
    order_id    bigint PRIMARY KEY,
    amount      numeric(10,2) NOT NULL,
    status      text DEFAULT 'new',
    note        varchar(20),
    qty         int,
    customer_id int,
    price       numeric(8,2),
    label       text,
    mood        c.mood);
ALTER TABLE c.orders ADD CONSTRAINT orders_qty_check CHECK (qty >= 0) NOT VALID;
CREATE INDEX orders_note_idx ON c.orders (note);
CREATE TABLE c.big (id int PRIMARY KEY, v int);
INSERT INTO c.big SELECT g, g FROM generate_series(1, 1000) g;
ANALYZE c.big;
ANALYZE c.orders;   -- known empty (a table is measured by its pages now: an empty one has no rows)
ANALYZE c.customers;
CREATE INDEX big_v_idx ON c.big (v);
CREATE VIEW c.order_totals AS SELECT order_id, amount FROM c.orders;
CREATE VIEW public.report AS SELECT order_id, amount FROM c.order_totals;
CREATE MATERIALIZED VIEW c.daily AS SELECT status, count(*) AS n FROM c.orders GROUP BY status;
CREATE FUNCTION c.all_orders() RETURNS SETOF c.orders LANGUAGE sql AS 'SELECT * FROM c.orders';
CREATE VIEW c.v_simple AS SELECT 1 AS one;
CREATE TABLE c.ev (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE c.ev_2026 PARTITION OF c.ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE SCHEMA c2;
CREATE TABLE c2.t (id int);

SELECT elt.govern('c');
SELECT elt.govern('c2');
SELECT elt.consumer_register('c.orders', 'dashboard:revenue', ARRAY['amount', 'qty']);
SELECT elt.approver_add('cto', 'signs off schema changes');

-- try(policy, statement, in_migration): run a statement with both schemas
-- under a policy, report what happened, and roll it all back
CREATE FUNCTION pg_temp.try(policy text, stmt text, in_migration boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
    r text;
    msgs text := current_setting('client_min_messages');
BEGIN
    BEGIN
        PERFORM set_config('client_min_messages', 'warning', true);
        PERFORM elt.govern('c', policy);
        PERFORM elt.govern('c2', policy);
        PERFORM set_config('client_min_messages', msgs, true);
        IF in_migration THEN
            PERFORM elt.migration_begin('try', 'testing every rule', 'cto');
        END IF;
        SELECT coalesce(max(change_id), 0) INTO last FROM elt.schema_changes;
        EXECUTE stmt;
        SELECT string_agg(coalesce(rule, 'safe') || ':' || decision, ' ' ORDER BY change_id)
          INTO r FROM elt.schema_changes WHERE change_id > last;
        RAISE EXCEPTION USING ERRCODE = 'P0099', MESSAGE = coalesce(r, 'nothing recorded');
    EXCEPTION
        WHEN SQLSTATE 'P0099' THEN RETURN 'ran ' || SQLERRM;
        WHEN SQLSTATE '42ZEG' THEN RETURN 'blocked ' || split_part(SQLERRM, ':', 1);
        WHEN OTHERS THEN RETURN 'failed: ' || SQLERRM;
    END;
END
$$;

CREATE TEMP TABLE cases (code text, stmt text);
INSERT INTO cases VALUES
 ('EG101', 'DROP TABLE c.customers'),
 ('EG102', 'DROP VIEW c.v_simple'),
 ('EG103', 'DROP SCHEMA c2 CASCADE'),
 ('EG104', 'ALTER TABLE c.orders DROP COLUMN price'),
 ('EG105', 'ALTER TABLE c.customers RENAME TO clients'),
 ('EG105', 'ALTER TABLE c.customers SET SCHEMA public'),
 ('EG106', 'ALTER TABLE c.customers RENAME COLUMN name TO full_name'),
 ('EG107', 'ALTER TABLE c.orders ALTER COLUMN note TYPE varchar(10)'),
 ('EG108', 'ALTER TABLE c.orders ALTER COLUMN amount DROP NOT NULL'),
 ('EG109', 'ALTER TABLE c.customers ALTER COLUMN name SET NOT NULL'),
 ('EG110', 'ALTER TABLE c.customers ADD COLUMN tier int NOT NULL'),
 ('EG111', 'ALTER TABLE c.orders ALTER COLUMN status DROP DEFAULT'),
 ('EG112', 'ALTER TABLE c.customers ADD CONSTRAINT name_len CHECK (length(name) < 100)'),
 ('EG113', 'ALTER TABLE c.customers ADD CONSTRAINT name_uq UNIQUE (name)'),
 ('EG114', 'ALTER TABLE c.orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES c.customers'),
 ('EG115', 'ALTER TYPE c.mood ADD VALUE ''happy'''),
 ('EG116', 'ALTER TYPE c.mood RENAME VALUE ''sad'' TO ''blue'''),
 ('EG117', 'ALTER TABLE c.orders ALTER COLUMN qty SET DEFAULT 1'),
 ('EG118', 'TRUNCATE c.customers'),
 ('EG119', 'ALTER SCHEMA c2 RENAME TO c3'),
 ('EG120', 'ALTER TABLE c.ev DETACH PARTITION c.ev_2026'),
 ('EG121', 'ALTER TABLE c.customers ENABLE ROW LEVEL SECURITY'),
 ('EG122', 'ALTER TABLE c.customers DROP CONSTRAINT customers_pkey'),
 ('EG201', 'ALTER TABLE c.big ALTER COLUMN v TYPE bigint'),
 ('EG202', 'ALTER TABLE c.big ADD COLUMN uid uuid DEFAULT gen_random_uuid()'),
 ('EG203', 'ALTER TABLE c.big ALTER COLUMN v SET NOT NULL'),
 ('EG204', 'ALTER TABLE c.big ADD CONSTRAINT v_pos CHECK (v > 0)'),
 ('EG205', 'ALTER TABLE c.big ADD CONSTRAINT v_uq UNIQUE (v)'),
 ('EG206', 'CREATE INDEX big_id_v_idx ON c.big (id, v)'),
 ('EG207', 'DROP INDEX c.big_v_idx'),
 ('EG208', 'ALTER TABLE c.orders SET LOGGED'),
 ('EG209', 'ALTER TABLE c.big SET UNLOGGED');
-- (since 0.9.0 the lock hazards EG201-EG209 are findings only on a table
-- over elt.large_table_rows: they are tried on c.big; EG208 is advice, on
-- every statement that takes a lock blocking traffic, and never blocks)

-- enforce: every rule blocks, with its code first in the message
SELECT code, pg_temp.try('enforce', stmt) AS enforce FROM cases ORDER BY code, stmt;
-- and nothing was left behind
SELECT count(*) AS changes_left FROM elt.schema_changes;
SELECT attname FROM pg_attribute WHERE attrelid = 'c.orders'::regclass AND attname = 'price';

-- warn: every statement runs and is recorded as warned (the WARNING itself
-- is shown below for a few statements)
SET client_min_messages = error;
SELECT code, pg_temp.try('warn', stmt) AS warn FROM cases ORDER BY code, stmt;
RESET client_min_messages;

-- off: every statement runs, silently, and is recorded
SELECT code, pg_temp.try('off', stmt) AS off FROM cases ORDER BY code, stmt;

-- inside a migration: every statement is approved
SET client_min_messages = warning;
SELECT code, pg_temp.try('enforce', stmt, true) AS in_migration FROM cases ORDER BY code, stmt;
RESET client_min_messages;

-- what a blocked statement says: rule, dependents (views, also through other
-- views, materialized views, functions, registered consumers) and the way out
ALTER TABLE c.orders DROP COLUMN amount;
ALTER TABLE c.orders RENAME COLUMN status TO state;
ALTER TABLE c.orders ALTER COLUMN qty TYPE bigint;
DROP SCHEMA c2 CASCADE;
ALTER TYPE c.mood RENAME VALUE 'sad' TO 'blue';
CREATE INDEX ON c.big (v, id);
-- the same under warn: a WARNING with the same content, and it runs
SELECT elt.govern('c', 'warn');
BEGIN;
ALTER TABLE c.orders RENAME COLUMN status TO state;
ROLLBACK;
SELECT elt.govern('c');

-- a lock_timeout removes EG208, and nothing else
SET lock_timeout = '5s';
SELECT pg_temp.try('enforce', 'ALTER TABLE c.big ALTER COLUMN v TYPE bigint');
RESET lock_timeout;
-- a validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan: no EG203
ALTER TABLE c.customers ADD CONSTRAINT name_nn CHECK (name IS NOT NULL) NOT VALID;
ALTER TABLE c.customers VALIDATE CONSTRAINT name_nn;
SELECT pg_temp.try('enforce', 'ALTER TABLE c.customers ALTER COLUMN name SET NOT NULL');
-- CREATE INDEX without CONCURRENTLY on a small table is no hazard
SELECT pg_temp.try('enforce', 'CREATE INDEX ON c.orders (qty)');
SET elt.large_table_rows = 100000;
SELECT pg_temp.try('enforce', 'CREATE INDEX ON c.big (v, id)');
SET elt.large_table_rows = 100;
-- a unique index is a stricter write contract, concurrently or not
SELECT pg_temp.try('enforce', 'CREATE UNIQUE INDEX ON c.orders (note)');
-- the prefix of the settings is reserved and they are superuser-only
SELECT name, setting, context FROM pg_settings
WHERE name IN ('elt.large_table_rows', 'elt.require_second_approver') ORDER BY name;

-- widenings are safe for readers; a rewrite is still a lock hazard
CREATE TEMP TABLE type_cases (stmt text);
INSERT INTO type_cases VALUES
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE bigint'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE numeric'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE numeric(10,0)'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE numeric(9,0)'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE smallint'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE double precision'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE real'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE text'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE bigint USING customer_id + 0'),
 ('ALTER TABLE c.orders ALTER COLUMN note TYPE varchar(40)'),
 ('ALTER TABLE c.orders ALTER COLUMN note TYPE varchar'),
 ('ALTER TABLE c.orders ALTER COLUMN note TYPE text'),
 ('ALTER TABLE c.orders ALTER COLUMN note TYPE varchar(20)'),
 ('ALTER TABLE c.orders ALTER COLUMN note TYPE char(20)'),
 ('ALTER TABLE c.orders ALTER COLUMN price TYPE numeric(12,2)'),
 ('ALTER TABLE c.orders ALTER COLUMN price TYPE numeric(12,4)'),
 ('ALTER TABLE c.orders ALTER COLUMN price TYPE numeric(6,2)'),
 ('ALTER TABLE c.orders ALTER COLUMN price TYPE numeric'),
 ('ALTER TABLE c.orders ALTER COLUMN price TYPE float8'),
 ('ALTER TABLE c.orders ALTER COLUMN label TYPE varchar'),
 ('ALTER TABLE c.orders ALTER COLUMN label TYPE varchar(5)');
-- (a rewrite is a hazard on a table over elt.large_table_rows: give c.orders a row)
INSERT INTO c.orders (order_id, amount) VALUES (1, 1);
ANALYZE c.orders;
SET elt.large_table_rows = 0;
SET lock_timeout = '5s';
SELECT stmt, pg_temp.try('off', stmt) AS result FROM type_cases;
RESET lock_timeout;
SET elt.large_table_rows = 100;
DELETE FROM c.orders;
ANALYZE c.orders;

-- safe statements: never flagged under enforce (with a lock_timeout, which
-- removes the advice EG208 most of them get without one; ADD VALUE with
-- BEFORE or AFTER, 35 and 36, is EG115 since 0.9.0)
CREATE INDEX orders_small_idx ON c.orders (customer_id);
SET lock_timeout = '5s';
CREATE TEMP TABLE safe_cases (n serial, stmt text);
INSERT INTO safe_cases (stmt) VALUES
 ('ALTER TABLE c.orders ADD COLUMN note2 text'),
 ('ALTER TABLE c.orders ADD COLUMN flag boolean DEFAULT false'),
 ('ALTER TABLE c.orders ADD COLUMN created date DEFAULT ''2026-01-01'''),
 ('ALTER TABLE c.orders ADD COLUMN seen_at timestamptz DEFAULT now()'),
 ('ALTER TABLE c.orders ADD COLUMN n int NOT NULL DEFAULT 0'),
 ('ALTER TABLE c.orders ADD COLUMN tags text[] DEFAULT ''{}'''),
 ('ALTER TABLE c.orders ADD COLUMN IF NOT EXISTS note text'),
 ('ALTER TABLE c.orders ADD COLUMN a int, ADD COLUMN b text DEFAULT ''x'''),
 ('ALTER TABLE c.orders ADD CONSTRAINT qty_pos CHECK (qty > 0) NOT VALID'),
 ('ALTER TABLE c.orders ADD CONSTRAINT fk_c FOREIGN KEY (customer_id) REFERENCES c.customers NOT VALID'),
 ('ALTER TABLE c.orders VALIDATE CONSTRAINT orders_qty_check'),
 ('ALTER TABLE c.orders DROP CONSTRAINT orders_qty_check'),
 ('ALTER TABLE c.orders RENAME CONSTRAINT orders_qty_check TO qty_check'),
 ('ALTER TABLE c.orders ALTER COLUMN note TYPE varchar(40)'),
 ('ALTER TABLE c.orders ALTER COLUMN note TYPE text'),
 ('ALTER TABLE c.orders ALTER COLUMN price TYPE numeric(12,2)'),
 ('ALTER TABLE c.orders ALTER COLUMN price TYPE numeric'),
 ('ALTER TABLE c.orders ALTER COLUMN qty TYPE int'),
 ('ALTER TABLE c.orders ALTER COLUMN status SET DEFAULT ''open'''),
 ('ALTER TABLE c.orders ALTER COLUMN note DROP NOT NULL'),
 ('ALTER TABLE c.orders ALTER COLUMN amount SET NOT NULL'),
 ('ALTER TABLE c.orders ALTER COLUMN qty SET STATISTICS 500'),
 ('ALTER TABLE c.orders ALTER COLUMN note SET STORAGE EXTERNAL'),
 ('ALTER TABLE c.orders ALTER COLUMN note SET COMPRESSION pglz'),
 ('ALTER TABLE c.orders ALTER COLUMN note SET (n_distinct = 10)'),
 ('ALTER TABLE c.orders SET (fillfactor = 90)'),
 ('ALTER TABLE c.orders RESET (fillfactor)'),
 ('ALTER TABLE c.orders OWNER TO CURRENT_USER'),
 ('ALTER TABLE c.orders REPLICA IDENTITY FULL'),
 ('ALTER TABLE c.orders CLUSTER ON orders_pkey'),
 ('ALTER TABLE c.orders SET WITHOUT CLUSTER'),
 ('ALTER TABLE c.orders DISABLE TRIGGER USER'),
 ('ALTER TABLE c.orders DISABLE ROW LEVEL SECURITY'),
 ('ALTER INDEX c.orders_note_idx RENAME TO orders_note_ix'),
 ('ALTER TYPE c.mood ADD VALUE ''happy'' AFTER ''ok'''),
 ('ALTER TYPE c.mood ADD VALUE ''meh'' BEFORE ''ok'''),
 ('CREATE INDEX ON c.orders (qty)'),
 ('DROP INDEX c.orders_small_idx'),
 ('CREATE TABLE c.new_table (id int)'),
 ('CREATE VIEW c.new_view AS SELECT order_id FROM c.orders'),
 ('CREATE STATISTICS c.orders_stats ON qty, price FROM c.orders'),
 ('COMMENT ON TABLE c.orders IS ''all orders'''),
 ('COMMENT ON COLUMN c.orders.amount IS ''in euros'''),
 ('GRANT SELECT ON c.orders TO PUBLIC'),
 ('REVOKE SELECT ON c.orders FROM PUBLIC'),
 ('ALTER TABLE c.orders ALTER COLUMN status SET DEFAULT ''new'', ALTER COLUMN note SET STATISTICS 100');
SELECT count(*) AS safe_statements,
       count(*) FILTER (WHERE r NOT IN ('ran safe:allowed', 'ran nothing recorded')) AS flagged
FROM (SELECT pg_temp.try('enforce', stmt) AS r FROM safe_cases) s;
SELECT n, stmt, pg_temp.try('enforce', stmt) AS result FROM safe_cases ORDER BY n;
RESET lock_timeout;

-- CONCURRENTLY cannot run inside a function: at top level
CREATE INDEX CONCURRENTLY big_v2_idx ON c.big (v);
DROP INDEX CONCURRENTLY c.big_v2_idx;
SELECT command_tag, rule, class, object, decision FROM elt.schema_changes
ORDER BY change_id DESC LIMIT 2;

-- a statement with one breaking part is judged as a whole: nothing runs
ALTER TABLE c.orders ADD COLUMN kept int, DROP COLUMN price, ALTER COLUMN note TYPE text;
SELECT count(*) AS kept_added FROM pg_attribute WHERE attrelid = 'c.orders'::regclass AND attname = 'kept';
-- several breaking parts are all named
ALTER TABLE c.customers ADD COLUMN tier int NOT NULL, ADD CONSTRAINT name_uq UNIQUE (name);
ALTER TABLE c.customers RENAME COLUMN name TO full_name;
ALTER TABLE c.orders DROP COLUMN price, DROP COLUMN mood, ALTER COLUMN status DROP DEFAULT;
-- DROP of several tables: one governed is enough
CREATE TABLE public.scratch (id int);
DROP TABLE public.scratch, c.customers;
SELECT to_regclass('public.scratch') IS NOT NULL AS scratch_still_there;

-- ungoverned tables are never blocked, and nothing is recorded for them
CREATE TABLE public.loose (id int PRIMARY KEY, v text, w int);
CREATE VIEW public.loose_v AS SELECT v FROM public.loose;
SELECT count(*) AS before FROM elt.schema_changes \gset
ALTER TABLE public.loose RENAME COLUMN w TO w2;
ALTER TABLE public.loose ALTER COLUMN w2 TYPE text;
ALTER TABLE public.loose ADD COLUMN z int NOT NULL;
TRUNCATE public.loose;
DROP VIEW public.loose_v;
ALTER TABLE public.loose DROP COLUMN v;
DROP TABLE public.loose;
SELECT count(*) - :before AS recorded FROM elt.schema_changes;
-- nor with elt.enabled off (a superuser's maintenance switch)
SET elt.enabled = off;
ALTER TABLE c.orders RENAME COLUMN note TO remark;
ALTER TABLE c.orders RENAME COLUMN remark TO note;
RESET elt.enabled;

-- consumers
SELECT kind, rel, consumer, columns FROM elt.consumers ORDER BY kind, rel::text, consumer;
SELECT elt.consumer_register('c.orders', 'dashboard:revenue', ARRAY['amount', 'status']);
SELECT rel, consumer, columns FROM elt.consumers WHERE kind = 'registered';
SELECT elt.consumer_register('c.orders', 'x', ARRAY['nope']);
SELECT elt.consumer_register('c.orders', 'x', ARRAY['qty', 'qty']);
SELECT elt.consumer_register('c.orders', 'x', ARRAY[]::text[]);
SELECT elt.consumer_register('c.orders', 'x', ARRAY['qty', NULL]);
SELECT elt.consumer_register('c.orders', '', NULL);
SELECT elt.consumer_register(NULL, 'x', NULL);
SELECT elt.consumer_register('c.orders_pkey', 'x', NULL);
SELECT elt.consumer_unregister('c.orders', 'nobody');
-- a consumer of the whole table: any column change is EG117
SELECT elt.consumer_register('c.customers', 'export:crm');
SELECT pg_temp.try('enforce', 'ALTER TABLE c.customers ALTER COLUMN name SET DEFAULT ''?''');
-- privileges: only a role that may read what the consumer reads
CREATE ROLE elt_contract_reader;
CREATE ROLE elt_contract_other;
GRANT USAGE ON SCHEMA c TO elt_contract_reader, elt_contract_other;
GRANT SELECT (order_id, qty) ON c.orders TO elt_contract_reader;
SET ROLE elt_contract_reader;
SELECT elt.consumer_register('c.orders', 'reader:qty', ARRAY['qty']);
SELECT elt.consumer_register('c.orders', 'reader:amount', ARRAY['amount']);
SELECT elt.consumer_register('c.orders', 'reader:all');
SET ROLE elt_contract_other;
SELECT elt.consumer_unregister('c.orders', 'reader:qty');
SELECT elt.approver_add('me');
RESET ROLE;
SET ROLE elt_contract_reader;
SELECT elt.consumer_unregister('c.orders', 'reader:qty');
RESET ROLE;
REVOKE ALL ON c.orders FROM elt_contract_reader;
REVOKE ALL ON SCHEMA c FROM elt_contract_reader, elt_contract_other;
-- a dropped relation takes its registrations with it
CREATE TABLE c.tmp (id int, v int);
SELECT elt.consumer_register('c.tmp', 'job:tmp', ARRAY['v']);
SELECT elt.govern('c', 'off');
DROP TABLE c.tmp;
SELECT elt.govern('c');
SELECT count(*) AS registrations FROM elt.consumer_registrations WHERE consumer = 'job:tmp';
SELECT action, object, details FROM elt.audit_log
WHERE action LIKE 'consumer%' ORDER BY id DESC LIMIT 2;


-- inheritance and partitions: a change that reaches a governed table through
-- an ungoverned parent, or a governed parent's partition, is judged too
CREATE TABLE public.parent (id int, x int);
CREATE TABLE c.child () INHERITS (public.parent);
ALTER TABLE public.parent DROP COLUMN x;
ALTER TABLE ONLY public.parent ALTER COLUMN id SET DEFAULT 0;
TRUNCATE public.parent;
TRUNCATE ONLY public.parent;
CREATE TABLE public.events (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE public.events_2026 PARTITION OF public.events
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE public.events_2027 PARTITION OF public.events
    FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
SELECT elt.govern('public.events');
TRUNCATE public.events_2026;
-- dropping a partition is no finding (retention drops rows on purpose):
-- see versions_partitions
DROP TABLE public.events_2027;
CREATE INDEX ON ONLY public.events (at);
ALTER TABLE public.events SET TABLESPACE pg_default;
SELECT elt.ungovern('public.events');
SET elt.enabled = off;
DROP TABLE public.events, public.parent CASCADE;
RESET elt.enabled;

-- unique keys that upserts rely on
SET elt.enabled = off;
CREATE UNIQUE INDEX big_v_uq ON c.big (v);
RESET elt.enabled;
SELECT pg_temp.try('enforce', 'DROP INDEX c.big_v_uq');
-- an inline CHECK on a new column matters only if it can fail on existing rows
-- (and its scan, EG204, on a table over elt.large_table_rows)
INSERT INTO c.customers VALUES (1, 'a');
ANALYZE c.customers;
SET elt.large_table_rows = 0;
SELECT pg_temp.try('enforce', 'ALTER TABLE c.customers ADD COLUMN score int CHECK (score > 0)');
SELECT pg_temp.try('enforce', 'ALTER TABLE c.customers ADD COLUMN score int DEFAULT 1 CHECK (score > 0)');
SET elt.large_table_rows = 100;
DELETE FROM c.customers;
ANALYZE c.customers;

-- a table created by this very transaction has no readers yet
BEGIN;
CREATE TABLE c.fresh (id int, v text);
ALTER TABLE c.fresh ADD PRIMARY KEY (id);
ALTER TABLE c.fresh DROP COLUMN v;
COMMIT;
ALTER TABLE c.fresh ADD COLUMN w int NOT NULL;

-- what a statement drops by cascade, or DROP OWNED, is judged too
CREATE TYPE public.level AS ENUM ('low', 'high');
ALTER TABLE c.fresh ADD COLUMN lvl public.level;
DROP TYPE public.level CASCADE;
CREATE VIEW public.ids AS SELECT 1 AS id;
CREATE VIEW c.ids_view AS SELECT id FROM public.ids;
DROP VIEW public.ids CASCADE;
CREATE ROLE elt_contract_owner;
CREATE TABLE c.owned (id int);
ALTER TABLE c.owned OWNER TO elt_contract_owner;
DROP OWNED BY elt_contract_owner;
SELECT to_regclass('c.owned') IS NOT NULL AS owned_still_there;
SELECT elt.govern('c', 'warn');
DROP VIEW public.ids CASCADE;
SELECT elt.govern('c');
-- a stricter neighbour is not lost to a cascade that warn lets through
CREATE SCHEMA c3;
CREATE TABLE c3.loose (id int);
CREATE TABLE c3.strict (id int);
SELECT elt.govern('c3', 'warn');
SELECT elt.govern('c3.strict', 'enforce');
DROP SCHEMA c3 CASCADE;
SELECT to_regclass('c3.strict') IS NOT NULL AS strict_still_there;
SELECT elt.govern('c3', 'off');
SELECT elt.govern('c3.strict', 'off');
DROP SCHEMA c3 CASCADE;
-- TRUNCATE ... CASCADE reaches the tables that reference the truncated one
CREATE TABLE public.dim (code int PRIMARY KEY);
ALTER TABLE c.fresh ADD COLUMN code int,
    ADD CONSTRAINT fresh_code_fk FOREIGN KEY (code) REFERENCES public.dim NOT VALID;
TRUNCATE public.dim CASCADE;
TRUNCATE public.dim;
-- ... also through foreign keys that reference an inheritance child
CREATE TABLE public.dim_parent (code int);
CREATE TABLE public.dim_child (code int PRIMARY KEY) INHERITS (public.dim_parent);
ALTER TABLE c.fresh ADD COLUMN child_code int,
    ADD CONSTRAINT fresh_child_fk FOREIGN KEY (child_code) REFERENCES public.dim_child NOT VALID;
TRUNCATE public.dim_parent CASCADE;
TRUNCATE ONLY public.dim_parent CASCADE;
-- a default dropped with the sequence it uses
CREATE SEQUENCE public.fresh_seq;
SELECT elt.govern('c', 'off');
ALTER TABLE c.fresh ADD COLUMN n bigint DEFAULT nextval('public.fresh_seq');
SELECT elt.govern('c');
DROP SEQUENCE public.fresh_seq CASCADE;
-- without the privilege, the privilege error, not a contract finding
GRANT USAGE ON SCHEMA c TO elt_contract_reader;
SET ROLE elt_contract_reader;
DROP TABLE c.fresh;
TRUNCATE c.fresh;
ALTER TABLE c.fresh DROP COLUMN id;
RESET ROLE;
REVOKE USAGE ON SCHEMA c FROM elt_contract_reader;


-- a parent created by this transaction does not exempt the governed tables
-- under it
BEGIN;
CREATE TABLE c.p_new (name text);
ALTER TABLE c.customers INHERIT c.p_new;
ALTER TABLE c.p_new RENAME COLUMN name TO full_name;
ROLLBACK;
-- the owner of a schema may drop what is in it, and is judged for it; the
-- owner of a child takes it out of its parent
CREATE ROLE elt_contract_schema_owner;
CREATE SCHEMA c4 AUTHORIZATION elt_contract_schema_owner;
CREATE TABLE c4.t (id int UNIQUE);
CREATE TABLE c4.par (id int);
CREATE TABLE c4.kid () INHERITS (c4.par);
ALTER TABLE c4.kid OWNER TO elt_contract_schema_owner;
SELECT elt.govern('c4');
SET ROLE elt_contract_schema_owner;
DROP INDEX c4.t_id_key;
DROP TABLE c4.t;
ALTER TABLE c4.kid NO INHERIT c4.par;
RESET ROLE;
SELECT elt.ungovern('c4');
DROP SCHEMA c4 CASCADE;
DROP ROLE elt_contract_schema_owner;
-- DETACH is judged by the parent, not by its other partitions
CREATE TABLE public.ev (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE public.ev_old PARTITION OF public.ev FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE c.ev_new PARTITION OF public.ev FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
ALTER TABLE public.ev DETACH PARTITION public.ev_old;
-- DROP EXPRESSION makes a generated column an ordinary one: safe
CREATE TABLE c.gen (a int, b int GENERATED ALWAYS AS (a * 2) STORED);
ALTER TABLE c.gen ALTER COLUMN b DROP EXPRESSION;

-- a table created and dropped by the same transaction is not judged
BEGIN;
CREATE TABLE c.scratch (id int);
DROP TABLE c.scratch;
COMMIT;

-- more of what the catalog knows (c.orders given a row, over the limit)
INSERT INTO c.orders (order_id, amount) VALUES (1, 1);
ANALYZE c.orders;
SET elt.large_table_rows = 0;
SELECT stmt, pg_temp.try('enforce', stmt) AS result FROM (VALUES
 ('ALTER TABLE c.orders ADD COLUMN y int CHECK (qty > 0)'),
 ('ALTER TABLE c.orders ALTER COLUMN status SET DEFAULT NULL'),
 ('ALTER TABLE c.orders ALTER COLUMN note TYPE varchar(20) COLLATE "C"'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE int USING customer_id::int'),
 ('ALTER TABLE c.orders ALTER COLUMN customer_id TYPE bigint USING customer_id::bigint'),
 ('ALTER TYPE c.mood ADD VALUE IF NOT EXISTS ''ok'''),
 ('CREATE INDEX IF NOT EXISTS big_v_idx ON c.big (v)'),
 ('DROP INDEX IF EXISTS c.no_such_idx')) v(stmt);
SET elt.large_table_rows = 100;
DELETE FROM c.orders;
ANALYZE c.orders;
CREATE TABLE c.times (t time(2), tz timetz(2), i interval minute, ts timestamp(0));
SET lock_timeout = '5s';
SELECT stmt, pg_temp.try('enforce', stmt) AS result FROM (VALUES
 ('ALTER TABLE c.times ALTER COLUMN t TYPE time(4)'),
 ('ALTER TABLE c.times ALTER COLUMN t TYPE time(1)'),
 ('ALTER TABLE c.times ALTER COLUMN tz TYPE timetz(6)'),
 ('ALTER TABLE c.times ALTER COLUMN i TYPE interval'),
 ('ALTER TABLE c.times ALTER COLUMN ts TYPE timestamp(3)'),
 ('ALTER TABLE c.times ALTER COLUMN ts TYPE timestamp(0) with time zone')) v(stmt);
RESET lock_timeout;
-- an enum a governed column uses through a domain
CREATE TYPE public.severity AS ENUM ('low', 'high');
CREATE DOMAIN public.severity_d AS public.severity;
ALTER TABLE c.times ADD COLUMN sev public.severity_d;
SELECT pg_temp.try('enforce', 'ALTER TYPE public.severity RENAME VALUE ''low'' TO ''minor''');

-- domains and types that governed columns use
CREATE DOMAIN c.amount_d AS numeric DEFAULT 0;
CREATE TABLE c.refunds (id int, amount c.amount_d);
CREATE DOMAIN public.unused_d AS int;
SELECT stmt, pg_temp.try('enforce', stmt) AS result FROM (VALUES
 ('ALTER DOMAIN c.amount_d DROP DEFAULT'),
 ('ALTER DOMAIN c.amount_d SET DEFAULT 1'),
 ('ALTER DOMAIN c.amount_d SET NOT NULL'),
 ('ALTER DOMAIN c.amount_d ADD CONSTRAINT amount_pos CHECK (VALUE >= 0)'),
 ('ALTER DOMAIN c.amount_d ADD CONSTRAINT amount_pos CHECK (VALUE >= 0) NOT VALID'),
 ('ALTER DOMAIN c.amount_d RENAME TO money_d'),
 ('ALTER TYPE c.mood RENAME TO feeling'),
 ('ALTER TYPE c.mood SET SCHEMA public'),
 ('ALTER DOMAIN public.unused_d SET NOT NULL')) v(stmt);

-- without ownership, DROP INDEX on a large table fails on privileges, at
-- once: the size is looked up (under the statement's own lock) only for the
-- owner
GRANT USAGE ON SCHEMA c TO elt_contract_other;
SET ROLE elt_contract_other;
DROP INDEX c.big_v_idx;
RESET ROLE;
REVOKE ALL ON SCHEMA c FROM elt_contract_other;

-- registrations follow a column renamed or dropped by an allowed statement
SELECT elt.consumer_register('c.customers', 'report:names', ARRAY['name', 'customer_id']);
SELECT elt.migration_begin('rename name', 'clearer', 'cto') > 0 AS open;
-- another role sees the window open (pg_stat_activity would hide its start)
SET ROLE elt_contract_reader;
SELECT name, status FROM elt.migrations WHERE status = 'open';
RESET ROLE;
ALTER TABLE c.customers RENAME COLUMN name TO full_name;
SELECT consumer, columns FROM elt.consumer_registrations WHERE rel = 'c.customers'::regclass ORDER BY consumer;
ALTER TABLE c.customers DROP COLUMN customer_id CASCADE;
SELECT consumer, columns FROM elt.consumer_registrations WHERE rel = 'c.customers'::regclass ORDER BY consumer;
ALTER TABLE c.customers DROP COLUMN full_name;
SELECT consumer, columns FROM elt.consumer_registrations WHERE rel = 'c.customers'::regclass ORDER BY consumer;
SELECT elt.migration_end() > 0 AS closed;
SELECT action, details->>'consumer' AS consumer, details->>'cause' AS cause
FROM elt.audit_log WHERE action = 'consumer_unregistered' ORDER BY id DESC LIMIT 1;

-- migrations
SELECT elt.migration_end();
SELECT elt.migration_begin('x', 'y', 'nobody');
SELECT elt.migration_begin('', 'y', 'cto');
SELECT elt.migration_begin('x', NULL, 'cto');
SELECT elt.migration_current() IS NULL AS none_open;
-- a migration begun in a transaction that rolls back was never open
BEGIN;
SELECT elt.migration_begin('rolled back', 'test', 'cto') > 0 AS begun;
ROLLBACK;
SELECT elt.migration_current() IS NULL AS none_open;
-- nor in a subtransaction that rolls back
BEGIN;
SAVEPOINT s;
SELECT elt.migration_begin('rolled back too', 'test', 'cto') > 0 AS begun;
ROLLBACK TO SAVEPOINT s;
SELECT elt.migration_current() IS NULL AS none_open;
COMMIT;
-- one that commits stays open across transactions
SELECT elt.migration_begin('split orders.note', 'notes move to their own table', 'cto') AS mig \gset
SELECT elt.migration_begin('another', 'nested', 'cto');
ALTER TABLE c.orders DROP COLUMN note CASCADE;
ALTER TABLE c.orders RENAME COLUMN status TO state;
-- an end that rolls back leaves it open
BEGIN;
SELECT elt.migration_end() = :mig AS ended;
ROLLBACK;
SELECT elt.migration_current() = :mig AS still_open;
SELECT elt.migration_end() = :mig AS ended;
SELECT name, reason, approved_by, status, changes, versions FROM elt.migrations ORDER BY migration_id;
SELECT rule, class, object, decision, migration_id = :mig AS in_migration
FROM elt.schema_changes WHERE migration_id IS NOT NULL ORDER BY change_id;
SELECT table_name, version, migration_id = :mig AS in_migration
FROM elt.schema_versions WHERE migration_id IS NOT NULL ORDER BY table_name, version;
-- and after it, the contract holds again
ALTER TABLE c.orders RENAME COLUMN state TO status;
-- a second approver
SET elt.require_second_approver = on;
SELECT elt.approver_add(session_user);
SELECT elt.migration_begin('self', 'approving myself', session_user);
-- the approver must have approved it, in their own session
SELECT elt.migration_begin('widen qty', 'bigger orders', 'cto');
SET SESSION AUTHORIZATION elt_contract_reader;
SELECT elt.migration_approve('widen qty', 'postgres');
RESET SESSION AUTHORIZATION;
SELECT elt.approver_add('elt_contract_reader');
SET SESSION AUTHORIZATION elt_contract_reader;
SELECT elt.migration_approve('widen qty', 'elt_contract_reader');
-- approved for one session user, usable by no other
SELECT elt.migration_approve('widen qty', 'elt_contract_other', 'for the other team') > 0 AS approved;
SELECT elt.migration_approve('widen qty', 'postgres', 'for the current one') > 0 AS approved;
RESET SESSION AUTHORIZATION;
SELECT elt.migration_begin('widen qty', 'bigger orders', 'elt_contract_reader') > 0 AS open;
SELECT elt.migration_end() > 0 AS closed;
-- one approval opens one window
SELECT elt.migration_begin('widen qty', 'again', 'elt_contract_reader');
SELECT name, approver, note, migration_id IS NOT NULL AS used FROM elt.migration_approvals
ORDER BY approval_id;
RESET elt.require_second_approver;
SELECT approver FROM elt.approvers ORDER BY approver;
SELECT elt.approver_add('cto');
SELECT elt.approver_remove(session_user);
SELECT elt.approver_remove('nobody');
SELECT elt.approver_add(NULL);

-- the record: append-only, and in the audit chain
SELECT class, count(*) FROM elt.schema_changes GROUP BY class ORDER BY class;
SELECT decision, count(*) FROM elt.schema_changes GROUP BY decision ORDER BY decision;
UPDATE elt.schema_changes SET decision = 'allowed';
DELETE FROM elt.schema_changes;
SELECT count(*) > 0 AS audited FROM elt.audit_log WHERE action = 'change_classified';
SELECT valid, detail FROM elt.audit_verify();
SELECT rule, class, title FROM elt.rules() ORDER BY rule;

-- a unique index over exactly the key of a unique index the table has
-- (pg_repack --only-indexes builds one for each) makes no write fail: safe;
-- over a subset or a superset, with another predicate, expression, collation
-- or NULLS NOT DISTINCT: EG113.  Dropping a unique index whose twin stays is
-- safe; dropping the last one with that key is EG122.
CREATE SCHEMA rp;
CREATE TABLE rp.t (id bigint PRIMARY KEY, a int NOT NULL, b text, c text,
  CONSTRAINT t_ab_key UNIQUE (a, b));
CREATE UNIQUE INDEX t_c_live ON rp.t (lower(c)) WHERE a > 0;
CREATE UNIQUE INDEX t_defer_src ON rp.t (c);
CREATE VIEW rp.v AS SELECT id, a, b FROM rp.t;
SELECT elt.govern('rp', 'enforce');
SELECT count(*) AS versions_before FROM elt.schema_versions WHERE schema_name = 'rp';
CREATE UNIQUE INDEX CONCURRENTLY index_twin_pk ON rp.t (id);           -- safe
CREATE UNIQUE INDEX CONCURRENTLY index_twin_ab ON rp.t USING btree (a, b) INCLUDE (c);  -- safe
CREATE UNIQUE INDEX CONCURRENTLY index_twin_c ON rp.t (lower(c)) WHERE a > 0;  -- safe
CREATE UNIQUE INDEX CONCURRENTLY bad_subset ON rp.t (a);                -- EG113
CREATE UNIQUE INDEX CONCURRENTLY bad_superset ON rp.t (id, a);          -- EG113
CREATE UNIQUE INDEX CONCURRENTLY bad_order ON rp.t (b, a);              -- EG113
CREATE UNIQUE INDEX CONCURRENTLY bad_pred ON rp.t (lower(c)) WHERE a > 1;  -- EG113
CREATE UNIQUE INDEX CONCURRENTLY bad_partial ON rp.t (id) WHERE a > 0;  -- EG113: not exactly the key's predicate
CREATE UNIQUE INDEX CONCURRENTLY bad_expr ON rp.t (upper(c)) WHERE a > 0;  -- EG113
CREATE UNIQUE INDEX CONCURRENTLY bad_coll ON rp.t (c COLLATE "C");      -- EG113
CREATE UNIQUE INDEX CONCURRENTLY bad_nnd ON rp.t (a, b) NULLS NOT DISTINCT;  -- EG113
SELECT rule, reason FROM elt.check_ddl('CREATE UNIQUE INDEX x ON rp.t (id); CREATE UNIQUE INDEX y ON rp.t (id, b)');
SELECT relname FROM pg_class WHERE relnamespace = 'rp'::regnamespace AND relkind = 'i' ORDER BY relname;
DROP INDEX CONCURRENTLY rp.index_twin_pk;                               -- safe: t_pkey stays
DROP INDEX rp.index_twin_ab, rp.t_defer_src;                            -- safe for the twin; t_defer_src has none: EG122
DROP INDEX CONCURRENTLY rp.t_defer_src;                                 -- EG122
DROP INDEX CONCURRENTLY rp.index_twin_c;                                -- safe
SELECT rule, class, decision, statement FROM elt.schema_changes
WHERE statement ~ 'index_twin' ORDER BY change_id;
SELECT count(*) AS versions_after FROM elt.schema_versions WHERE schema_name = 'rp';
SELECT elt.ungovern('rp');
DROP SCHEMA rp CASCADE;

DROP EXTENSION elt_governance;
DROP SCHEMA c CASCADE;
DROP SCHEMA c2 CASCADE;
DROP DOMAIN public.severity_d;
DROP DOMAIN public.unused_d;
DROP TYPE public.severity;
DROP TABLE public.dim CASCADE;
DROP TABLE public.dim_parent, public.dim_child CASCADE;
DROP TABLE public.ev, public.ev_old;
DROP SEQUENCE public.fresh_seq;
DROP ROLE elt_contract_reader;
DROP ROLE elt_contract_other;
DROP ROLE elt_contract_owner;
