-- Sandboxes: masked copies of a star schema and a self-referencing table,
-- whole and sampled (percent, rows, a root with a condition), closed under
-- foreign keys; what they hold checked against the sources; bad input;
-- privileges of the creator, the owner and roles that own nothing.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = warning;
SET DateStyle = ISO;
SET TimeZone = 'UTC';
SELECT COALESCE(pg_catalog.max(id), 0) AS audit_start FROM elt.audit_log \gset

CREATE ROLE sb_owner;
CREATE ROLE sb_analyst;
CREATE ROLE sb_nobody;
CREATE ROLE sb_admin IN ROLE elt_admin;
CREATE SCHEMA star AUTHORIZATION sb_owner;
GRANT USAGE ON SCHEMA star TO sb_admin;
GRANT CREATE ON DATABASE contrib_regression TO sb_owner, sb_admin;

SET ROLE sb_owner;
CREATE TABLE star.customers (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text,
    region text NOT NULL,
    referrer int REFERENCES star.customers
);
CREATE TABLE star.products (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    price numeric(8,2) NOT NULL CHECK (price >= 0)
);
CREATE TABLE star.orders (
    id bigint PRIMARY KEY,
    customer_id int NOT NULL REFERENCES star.customers,
    product_id int NOT NULL REFERENCES star.products,
    qty int NOT NULL,
    amount numeric(10,2) NOT NULL,
    doubled int GENERATED ALWAYS AS (qty * 2) STORED
);
CREATE INDEX orders_customer_idx ON star.orders (customer_id);
INSERT INTO star.customers (email, name, region)
SELECT 'user' || g || '@shop.test', 'Name ' || g, (ARRAY['north', 'south', 'east', 'west'])[1 + g % 4]
FROM generate_series(1, 400) g;
-- referral chains of up to five
UPDATE star.customers SET referrer = id - 1 WHERE id % 5 <> 1;
INSERT INTO star.products (name, price) SELECT 'product ' || g, g * 1.25 FROM generate_series(1, 40) g;
INSERT INTO star.orders (id, customer_id, product_id, qty, amount)
SELECT o, 1 + (o * 7) % 400, 1 + (o * 3) % 40, 1 + o % 5, (o % 97) * 3.5 + 1
FROM generate_series(1, 4000) o;
SELECT elt.mask_set('star.customers', 'id', 'hash') > 0 AS set;
SELECT elt.mask_set('star.customers', 'referrer', 'hash') > 0 AS set;
SELECT elt.mask_set('star.orders', 'customer_id', 'hash') > 0 AS set;
SELECT elt.mask_set('star.customers', 'email', 'pseudonym', '{"kind": "email"}') > 0 AS set;
SELECT elt.mask_set('star.customers', 'name', 'pseudonym', '{"kind": "name"}') > 0 AS set;
SELECT elt.mask_set('star.orders', 'amount', 'noise', '{"ratio": 0.1}') > 0 AS set;
RESET ROLE;

-------------------------------------------------------------------------------
-- A whole masked copy
-------------------------------------------------------------------------------
SET ROLE sb_owner;
SELECT relation, source, rows FROM elt.sandbox_create('sb_full', ARRAY['star']) ORDER BY relation::text COLLATE "C";
-- the same shape: constraints, indexes, identity, foreign keys (validated)
SELECT conrelid::regclass AS relation, contype, convalidated
FROM pg_constraint WHERE connamespace = 'sb_full'::regnamespace AND contype <> 'n'
ORDER BY conrelid::regclass::text COLLATE "C", contype, conname COLLATE "C";
SELECT indexrelid::regclass AS index FROM pg_index
WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'sb_full'::regnamespace)
ORDER BY indexrelid::regclass::text COLLATE "C";
-- every masked value differs from its source, keys stay distinct, joins hold
SELECT (SELECT count(*) FROM sb_full.customers c JOIN star.customers s USING (email)) AS emails_kept,
       (SELECT count(*) FROM sb_full.customers c JOIN star.customers s USING (name)) AS names_kept,
       (SELECT count(DISTINCT id) FROM sb_full.customers) AS distinct_ids,
       (SELECT count(*) FROM sb_full.customers WHERE id BETWEEN 1 AND 400) AS ids_in_source_range;
SELECT count(*) AS orders, count(c.id) AS with_customer,
       count(*) FILTER (WHERE o.amount BETWEEN s.amount * 0.9 - 0.01 AND s.amount * 1.1 + 0.01) AS amount_near,
       count(*) FILTER (WHERE o.doubled = s.qty * 2) AS generated_copied
FROM sb_full.orders o JOIN star.orders s USING (id) LEFT JOIN sb_full.customers c ON c.id = o.customer_id;
-- the referral chains are kept, hashed
SELECT count(*) AS referred, count(r.id) AS referrer_found
FROM sb_full.customers c LEFT JOIN sb_full.customers r ON r.id = c.referrer WHERE c.referrer IS NOT NULL;
-- new rows get new keys: the sandbox's own sequences, past the copied rows
INSERT INTO sb_full.products (name, price) VALUES ('new', 1) RETURNING id;
INSERT INTO sb_full.customers (email, region) VALUES ('new@shop.test', 'north') RETURNING id > 0 AS new_id;
SELECT pg_get_serial_sequence('sb_full.customers', 'id') AS own_sequence;
SELECT last_value FROM star.customers_id_seq;
RESET ROLE;

-------------------------------------------------------------------------------
-- Samples, closed under foreign keys
-------------------------------------------------------------------------------
SET ROLE sb_owner;
-- 5% of each table, and every row their rows reference
SELECT relation, rows FROM elt.sandbox_create('sb_pct', ARRAY['star'], '{"percent": 5, "seed": 7}') ORDER BY relation::text COLLATE "C";
-- every foreign key holds (checked by the constraints, validated); no order
-- lost its customer or product, no customer its referrer
SELECT (SELECT count(*) FROM sb_pct.orders o LEFT JOIN sb_pct.customers c ON c.id = o.customer_id WHERE c.id IS NULL) AS orphan_orders,
       (SELECT count(*) FROM sb_pct.customers c LEFT JOIN sb_pct.customers r ON r.id = c.referrer
        WHERE c.referrer IS NOT NULL AND r.id IS NULL) AS orphan_referrals,
       (SELECT bool_and(convalidated) FROM pg_constraint WHERE connamespace = 'sb_pct'::regnamespace AND contype = 'f') AS fkeys_valid;
-- the same seed chooses the same rows
SELECT relation, rows FROM elt.sandbox_create('sb_pct2', ARRAY['star'], '{"percent": 5, "seed": 7}') ORDER BY relation::text COLLATE "C";
SELECT (SELECT count(*) FROM (SELECT id FROM sb_pct.orders EXCEPT SELECT id FROM sb_pct2.orders) d) AS orders_differ;
-- n rows of each table, closed
SELECT relation, rows FROM elt.sandbox_create('sb_rows', ARRAY['star'], '{"rows": 10, "seed": 1}') ORDER BY relation::text COLLATE "C";
SELECT count(*) >= 10 AS at_least_ten FROM sb_rows.orders;
-- from a root: the north customers, the orders that reference them, and
-- what those reference (products; the referrers of the customers)
SELECT relation, rows FROM elt.sandbox_create('sb_north', ARRAY['star'],
  '{"root": "star.customers", "where": "region = ''north'' AND id <= 40"}') ORDER BY relation::text COLLATE "C";
SELECT (SELECT count(*) FROM star.orders WHERE customer_id IN (SELECT id FROM star.customers WHERE region = 'north' AND id <= 40))
       <= (SELECT count(*) FROM sb_north.orders) AS their_orders_kept,
       (SELECT count(*) FROM sb_north.orders o LEFT JOIN sb_north.products p ON p.id = o.product_id WHERE p.id IS NULL) AS orphan_orders;
RESET ROLE;

-------------------------------------------------------------------------------
-- Bad input: clear errors, nothing created
-------------------------------------------------------------------------------
SELECT count(*) AS schemas_before FROM pg_namespace \gset
SELECT count(*) AS sandboxes_before FROM elt.sandbox_defs \gset
SET ROLE sb_owner;
\set VERBOSITY terse
SELECT * FROM elt.sandbox_create('sb_full', ARRAY['star']);
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], NULL, true, '-1 hour');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['nosuch']);
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY[]::name[]);
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"percent": 0}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"percent": 5, "rows": 3}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"fraction": 5}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"rows": 2.5}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"where": "true"}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"root": "star.nosuch"}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"root": "pg_catalog.pg_class"}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"root": "star.customers", "where": "true; DROP TABLE star.orders"}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"root": "star.customers", "where": "nosuch > 1"}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '[1]');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], NULL, true, '1 day', 'sb_analyst');
SELECT * FROM elt.sandbox_create(NULL, ARRAY['star']);
-- a sample too big to close within its bound: says so, suggests a root
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"rows": 5, "max_rows": 20}');
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"percent": 50, "max_rows": 100, "seed": 1}');
\set VERBOSITY default
RESET ROLE;
SELECT count(*) = :schemas_before AS no_schema_made, (SELECT count(*) FROM elt.sandbox_defs) = :sandboxes_before AS none_recorded
FROM pg_namespace;

-------------------------------------------------------------------------------
-- Privileges
-------------------------------------------------------------------------------
\set VERBOSITY terse
-- a role that may not read the sources makes nothing
SET ROLE sb_nobody;
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star']);
SELECT count(*) AS sandboxes_seen FROM elt.sandboxes;
SELECT * FROM sb_full.customers LIMIT 1;
SELECT elt.sandbox_drop('sb_full');
SELECT elt.sandbox_expire();
RESET ROLE;
-- an administrator that may read the tables but is not their owner's member:
-- copying would run the owner's code (a CHECK calling its function) as it
SET ROLE sb_owner;
CREATE FUNCTION star.positive(numeric) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 >= 0';
ALTER TABLE star.products ADD CONSTRAINT price_positive CHECK (star.positive(price));
GRANT SELECT ON ALL TABLES IN SCHEMA star TO sb_admin;
RESET ROLE;
SET ROLE sb_admin;
SELECT * FROM elt.sandbox_create('sb_adm', ARRAY['star']);
RESET ROLE;
SET ROLE sb_owner;
ALTER TABLE star.products DROP CONSTRAINT price_positive;
RESET ROLE;
\set VERBOSITY default
-- a masked sandbox for a role that may not read the sources: it reads the
-- copies, masked, and nothing else; an unmasked one for it is refused (it
-- would be read with its own rights)
GRANT sb_analyst TO sb_owner;
SET ROLE sb_owner;
SELECT count(*) AS tables FROM elt.sandbox_create('sb_for_analyst', ARRAY['star'], '{"percent": 10, "seed": 3}',
                                                  true, '2 days', 'sb_analyst');
\set VERBOSITY terse
SELECT * FROM elt.sandbox_create('sb_plain', ARRAY['star'], NULL, false, '2 days', 'sb_analyst');
\set VERBOSITY default
RESET ROLE;
SET ROLE sb_analyst;
SELECT count(*) > 0 AS reads_copies, bool_and(email LIKE '%@example.%') AS masked FROM sb_for_analyst.customers;
SELECT name, owner, created_by, masked, tables FROM elt.sandboxes ORDER BY name;
-- its owner, who did not make it, sees neither the rules nor the checksums of the sources
SELECT count(*) AS tables, count(*) FILTER (WHERE t ? 'masking' OR t ? 'source_checksum' OR t ? 'sampled_checksum') AS shown
FROM elt.sandboxes, jsonb_array_elements(manifest->'tables') t WHERE name = 'sb_for_analyst';
\set VERBOSITY terse
SELECT count(*) FROM star.customers;
SELECT count(*) FROM sb_full.customers;
\set VERBOSITY default
SELECT elt.sandbox_drop('sb_for_analyst', 'done');
RESET ROLE;
-- what was made from what: the manifest
SELECT name, owner, masked, sources, sample, CASE WHEN sample IS NOT NULL THEN manifest->>'seed' END AS seed,
       jsonb_path_query_array(manifest, '$.tables[*].rows') AS rows,
       jsonb_path_query_array(manifest, '$.tables[*].source_checksum') @? '$[*] ? (@ like_regex "^v1:")' AS whole_checksums,
       manifest->'tables'->0->'masking'->'email'->>'rule' AS email_rule
FROM elt.sandboxes WHERE name IN ('sb_pct', 'sb_full') ORDER BY name;
-- a sample records the checksum of the source rows it took (as
-- elt.table_checksum of a table holding just those rows), not of the
-- whole source, which it does not read again
CREATE TEMP TABLE kept_orders AS SELECT * FROM star.orders WHERE id IN (SELECT id FROM sb_pct.orders);
CREATE TEMP TABLE kept_products AS SELECT * FROM star.products WHERE id IN (SELECT id FROM sb_pct.products);
SELECT t->>'source' AS source, t->'source_checksum' AS whole,
       t->>'sampled_checksum' = elt.table_checksum(CASE t->>'source' WHEN 'star.orders' THEN 'kept_orders'
                                                   ELSE 'kept_products' END::regclass) AS sampled_as_oracle,
       t->>'sampled_checksum' <> elt.table_checksum((t->>'source')::regclass) AS not_whole
FROM elt.sandboxes, jsonb_array_elements(manifest->'tables') t
WHERE name = 'sb_pct' AND t->>'source' IN ('star.orders', 'star.products') ORDER BY 1;
SELECT count(*) AS sampled_checksums FROM elt.sandboxes, jsonb_array_elements(manifest->'tables') t
WHERE name = 'sb_pct' AND t->>'sampled_checksum' LIKE 'v1:%';
SELECT count(*) AS whole_has_no_sampled FROM elt.sandboxes, jsonb_array_elements(manifest->'tables') t
WHERE name = 'sb_full' AND t ? 'sampled_checksum';
DROP TABLE kept_orders, kept_products;

-------------------------------------------------------------------------------
-- Refreshing: made again from the same sources, sample, seed and rules
-------------------------------------------------------------------------------
SET ROLE sb_owner;
SELECT pg_catalog.string_agg(id::text, ',' ORDER BY id) AS before FROM sb_pct.orders \gset
SELECT expires_at AS expires_before FROM elt.sandboxes WHERE name = 'sb_pct' \gset
-- the same data: the same rows
SELECT relation, rows FROM elt.sandbox_refresh('sb_pct') ORDER BY relation::text COLLATE "C";
SELECT pg_catalog.string_agg(id::text, ',' ORDER BY id) = :'before' AS same_orders FROM sb_pct.orders;
SELECT expires_at = :'expires_before' AS same_expiry, sample FROM elt.sandboxes WHERE name = 'sb_pct';
-- new source data shows after a refresh; the masking is the same
UPDATE star.customers SET name = 'Renamed ' || id WHERE id = 1;
SELECT count(*) AS tables FROM elt.sandbox_refresh('sb_full');
SELECT count(*) AS renamed_unmasked FROM sb_full.customers WHERE name LIKE 'Renamed%';
SELECT (SELECT count(*) FROM sb_full.orders o JOIN sb_full.customers c ON c.id = o.customer_id) AS joined_orders;
RESET ROLE;
\set VERBOSITY terse
SET ROLE sb_nobody;
SELECT * FROM elt.sandbox_refresh('sb_full');
RESET ROLE;
SELECT * FROM elt.sandbox_refresh('no_such_sandbox');
SELECT * FROM elt.sandbox_refresh(NULL);
\set VERBOSITY default

-------------------------------------------------------------------------------
-- Expiry and dropping
-------------------------------------------------------------------------------
-- (the launcher drops expired sandboxes by itself: test/t/024_sandbox_expiry.pl;
-- here the expiry is moved back inside the transaction that expires it, so
-- that the launcher cannot get there first)
SET ROLE sb_owner;
SELECT count(*) AS tables FROM elt.sandbox_create('sb_brief', ARRAY['star'], '{"rows": 1}', true, '1 hour');
RESET ROLE;
BEGIN;
UPDATE elt.sandbox_defs SET expires_at = now() - interval '1 second' WHERE name = 'sb_brief';
SET ROLE sb_admin;
SELECT elt.sandbox_expire() AS expired;
RESET ROLE;
COMMIT;
SELECT count(*) AS brief_left FROM pg_namespace WHERE nspname = 'sb_brief';
SET ROLE sb_owner;
SELECT elt.sandbox_drop('sb_pct2');
\set VERBOSITY terse
SELECT elt.sandbox_drop('sb_pct2');
\set VERBOSITY default
RESET ROLE;
SELECT action, object, count(*) FROM elt.audit_log
WHERE id > :audit_start AND action LIKE 'sandbox%' GROUP BY 1, 2 ORDER BY 1, 2 COLLATE "C";

-------------------------------------------------------------------------------
-- Found by attack
-------------------------------------------------------------------------------
-- no code that is not built in is copied, not even by a superuser: a CHECK
-- through an operator of the owner's, a cast to the owner's domain
SET ROLE sb_owner;
CREATE SCHEMA trap;
CREATE FUNCTION trap.eq(int, int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2';
CREATE OPERATOR trap.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = trap.eq);
CREATE TABLE trap.t1 (id int PRIMARY KEY CHECK (NOT (id OPERATOR(trap.===) -1)));
CREATE DOMAIN trap.dom AS text CHECK (length(VALUE) < 100);
CREATE SCHEMA trap2;
CREATE TABLE trap2.t2 (id int PRIMARY KEY, v text CHECK ((v)::trap.dom IS NOT NULL));
RESET ROLE;
\set VERBOSITY terse
SELECT * FROM elt.sandbox_create('sb_trap', ARRAY['trap']);
SELECT * FROM elt.sandbox_create('sb_trap2', ARRAY['trap2']);
\set VERBOSITY default
-- a renamed sandbox is still the one dropped; a schema that took its name is not
SET ROLE sb_owner;
SELECT count(*) AS tables FROM elt.sandbox_create('sb_moved', ARRAY['star'], '{"rows": 1, "seed": 1}');
ALTER SCHEMA sb_moved RENAME TO sb_moved_elsewhere;
CREATE SCHEMA sb_moved;
CREATE TABLE sb_moved.real_work (x int);
SELECT elt.sandbox_drop('sb_moved');
SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sb_moved%' ORDER BY 1;
SELECT count(*) AS real_work_kept FROM sb_moved.real_work;
DROP SCHEMA sb_moved CASCADE;
-- foreign keys are rebuilt from the catalog, whatever the columns' names;
-- generated columns are computed from the masked values; partitions are
-- sampled by (partition, row); serial sequences of their own, uniquely
-- named, started past hashed (negative) keys
CREATE SCHEMA odd;
CREATE TABLE odd.p (id int PRIMARY KEY);
INSERT INTO odd.p SELECT generate_series(1, 5);
CREATE TABLE odd.c ("a REFERENCES odd.p(" int REFERENCES odd.p, "x%s" int, email text,
                    local text GENERATED ALWAYS AS (split_part(email, '@', 1)) STORED);
INSERT INTO odd.c VALUES (1, 1, 'alice@odd.test'), (2, 2, 'bob@odd.test');
SELECT elt.mask_set('odd.c', 'email', 'pseudonym', '{"kind": "email"}') > 0 AS set;
CREATE TABLE odd.a_b (c serial PRIMARY KEY, v int);
CREATE TABLE odd.a (b_c serial PRIMARY KEY, v int);
INSERT INTO odd.a_b (v) SELECT generate_series(1, 3);
INSERT INTO odd.a (v) SELECT generate_series(1, 3);
SELECT elt.mask_set('odd.a', 'b_c', 'hash') > 0 AS set;
CREATE TABLE odd.events (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE odd.events_n PARTITION OF odd.events FOR VALUES IN ('north');
CREATE TABLE odd.events_s PARTITION OF odd.events FOR VALUES IN ('south');
INSERT INTO odd.events SELECT g, r FROM generate_series(1, 5) g, (VALUES ('north'), ('south')) v(r);
SELECT relation, rows FROM elt.sandbox_create('sb_odd', ARRAY['odd']) ORDER BY relation::text COLLATE "C";
SELECT conrelid::regclass AS relation, confrelid::regclass AS references_table
FROM pg_constraint WHERE connamespace = 'sb_odd'::regnamespace AND contype = 'f';
SELECT email LIKE '%@example.%' AS masked, local = split_part(email, '@', 1) AS generated_from_masked
FROM sb_odd.c ORDER BY 1, 2;
INSERT INTO sb_odd.a (v) VALUES (4) RETURNING b_c > 0 AS new_key;
INSERT INTO sb_odd.a_b (v) VALUES (4) RETURNING c;
SELECT relation, rows FROM elt.sandbox_create('sb_odd_n', ARRAY['odd'],
  '{"root": "odd.events", "where": "region = ''north'' AND id <= 2"}') WHERE relation::text LIKE '%events';
SELECT region, id FROM sb_odd_n.events ORDER BY 1, 2;
-- two sampled sandboxes in one transaction
BEGIN;
SELECT count(*) AS tables FROM elt.sandbox_create('sb_t1', ARRAY['odd'], '{"rows": 1, "seed": 2}');
SELECT count(*) AS tables FROM elt.sandbox_create('sb_t2', ARRAY['odd'], '{"rows": 1, "seed": 2}');
COMMIT;
RESET ROLE;
-- a role that may only read the sources copies them without locking them
-- against writes; an unmasked sandbox for another role that may read them
-- works; row-level security for the caller: no checksum, not an error
CREATE SCHEMA ro;
CREATE TABLE ro.t (id int PRIMARY KEY, owner_name text);
INSERT INTO ro.t VALUES (1, 'sb_analyst'), (2, 'someone');
ALTER TABLE ro.t ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON ro.t FOR SELECT USING (owner_name = current_user);
GRANT USAGE ON SCHEMA ro TO sb_analyst;
GRANT SELECT ON ro.t TO sb_analyst;
GRANT CREATE ON DATABASE contrib_regression TO sb_analyst;
SET ROLE sb_analyst;
BEGIN;
SELECT relation, rows FROM elt.sandbox_create('sb_ro', ARRAY['ro']);
SELECT string_agg(mode, ',' ORDER BY mode) AS locks_on_source FROM pg_locks
WHERE relation = 'ro.t'::regclass AND pid = pg_backend_pid();
COMMIT;
SELECT manifest->'tables'->0->'source_checksum' AS checksum FROM elt.sandboxes WHERE name = 'sb_ro';
RESET ROLE;
GRANT sb_analyst TO sb_admin;
SET ROLE sb_admin;
SELECT relation, rows FROM elt.sandbox_create('sb_ro_plain', ARRAY['ro'], NULL, false, '1 day', 'sb_analyst');
RESET ROLE;
-- the owner of a sandbox made by another role sees no masking rules and no
-- checksums in its manifest; default privileges of the maker are revoked
SET ROLE sb_owner;
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO sb_nobody;
SELECT count(*) AS tables FROM elt.sandbox_create('sb_given', ARRAY['star'], '{"rows": 2, "seed": 5}', true, '1 day', 'sb_analyst');
ALTER DEFAULT PRIVILEGES REVOKE SELECT ON TABLES FROM sb_nobody;
RESET ROLE;
SELECT count(*) AS grants_to_others FROM pg_class c, aclexplode(c.relacl) a
WHERE c.relnamespace = 'sb_given'::regnamespace AND a.grantee <> c.relowner;
SET ROLE sb_analyst;
SELECT manifest->'tables'->0 ? 'masking' AS sees_masking, manifest->'tables'->0 ? 'rows' AS sees_rows
FROM elt.sandboxes WHERE name = 'sb_given';
RESET ROLE;
-- a where that is more than a condition
SET ROLE sb_owner;
\set VERBOSITY terse
SELECT * FROM elt.sandbox_create('sb_bad', ARRAY['star'], '{"root": "star.customers", "where": "true) OFFSET (1"}');
\set VERBOSITY default
RESET ROLE;
