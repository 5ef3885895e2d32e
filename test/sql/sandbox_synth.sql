-- Synthetic sandboxes: rows generated from the sources' statistics, not
-- copied.  A star schema (customers referring to customers, products,
-- orders) ANALYZEd; every foreign key and CHECK of the copies holds; row
-- counts by scale and rows; a masked e-mail shows no source value; the
-- distributions of unmasked columns follow the source's within the
-- tolerances of docs/design.md (most common values and null fractions
-- within 3 percentage points, the median and 90th percentile of numbers
-- within 10%); the same seed gives the same rows, another seed others;
-- bad input, tables without statistics and roles that may not read.
CREATE EXTENSION IF NOT EXISTS elt_governance;
SET client_min_messages = warning;
SET DateStyle = ISO;
SET TimeZone = 'UTC';

CREATE ROLE sy_owner;
CREATE ROLE sy_nobody;
CREATE ROLE sy_reader;
GRANT CREATE ON DATABASE contrib_regression TO sy_nobody, sy_reader;
CREATE SCHEMA src AUTHORIZATION sy_owner;
GRANT USAGE ON SCHEMA src TO sy_nobody;

SET ROLE sy_owner;
CREATE TABLE src.customers (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    region text NOT NULL,
    born date,
    referrer int REFERENCES src.customers
);
CREATE TABLE src.products (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    price numeric(8,2) NOT NULL CHECK (price > 0)
);
CREATE TABLE src.orders (
    id bigint PRIMARY KEY,
    customer_id int NOT NULL REFERENCES src.customers,
    product_id int REFERENCES src.products,
    status text NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
    qty int NOT NULL CHECK (qty BETWEEN 1 AND 7),
    amount numeric(10,2) NOT NULL CHECK (amount >= 0),
    ordered_at timestamptz NOT NULL,
    note text,
    doubled int GENERATED ALWAYS AS (qty * 2) STORED,
    -- two columns drawn independently break it now and then: those rows are dropped
    CONSTRAINT big_orders_few CHECK (qty * amount <= 6000)
);
INSERT INTO src.customers (email, region, born)
SELECT 'user' || g || '@shop.test', (ARRAY['north', 'south', 'east', 'west', 'north'])[1 + g % 5],
       date '1950-01-01' + (g * 37) % 20000
FROM generate_series(1, 2000) g;
-- referral chains: a third refer to nobody
UPDATE src.customers SET referrer = id - 1 WHERE id % 3 <> 1;
INSERT INTO src.products (name, price) SELECT 'product ' || g, 1 + (g % 50) * 2.5 FROM generate_series(1, 100) g;
INSERT INTO src.orders (id, customer_id, product_id, status, qty, amount, ordered_at, note)
SELECT o, 1 + (o * 7) % 2000, CASE WHEN o % 10 <> 0 THEN 1 + (o * 3) % 100 END,
       CASE WHEN o % 20 < 10 THEN 'paid' WHEN o % 20 < 16 THEN 'shipped' WHEN o % 20 < 19 THEN 'new' ELSE 'cancelled' END,
       1 + o % 7, floor(LEAST((hashint4(o) & 65535) / 65.536, 6000.0 / (1 + o % 7)) * 100) / 100,
       timestamptz '2026-01-01' + (o % 300) * interval '1 day' + (o % 86400) * interval '1 second',
       CASE WHEN o % 4 = 0 THEN 'note ' || o END
FROM generate_series(1, 20000) o;
ANALYZE src.customers, src.products, src.orders;
SELECT elt.mask_set('src.customers', 'email', 'pseudonym', '{"kind": "email"}') > 0 AS set;
RESET ROLE;

-------------------------------------------------------------------------------
-- A synthetic sandbox at scale 1, masked
-------------------------------------------------------------------------------
SELECT relation, source, rows FROM elt.sandbox_create('syn', ARRAY['src'], '{"synthetic": true, "seed": 42}')
ORDER BY relation::text COLLATE "C";
-- the copies' foreign keys are there and validated; nothing dangles
SELECT conrelid::regclass AS copy, conname, convalidated FROM pg_constraint
WHERE connamespace = 'syn'::regnamespace AND contype = 'f' ORDER BY 1::text COLLATE "C", 2;
SELECT count(*) AS orders_without_customer FROM syn.orders o
WHERE NOT EXISTS (SELECT 1 FROM syn.customers c WHERE c.id = o.customer_id);
SELECT count(*) AS orders_without_product FROM syn.orders o
WHERE o.product_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM syn.products p WHERE p.id = o.product_id);
-- every CHECK holds, and the two-column one did drop rows that were topped up
SELECT count(*) FILTER (WHERE NOT (status IN ('new', 'paid', 'shipped', 'cancelled'))) AS bad_status,
       count(*) FILTER (WHERE NOT (qty BETWEEN 1 AND 7)) AS bad_qty,
       count(*) FILTER (WHERE amount < 0) AS bad_amount,
       count(*) FILTER (WHERE qty * amount > 6000) AS bad_big,
       count(*) FILTER (WHERE doubled <> qty * 2) AS bad_generated
FROM syn.orders;
SELECT count(*) FILTER (WHERE price <= 0) AS bad_price FROM syn.products;
-- primary keys and the unique e-mail hold (the copies' indexes are there)
SELECT count(*) = count(DISTINCT email) AS emails_distinct FROM syn.customers;
-- the masked e-mail: no source value, only pseudonyms
SELECT count(*) AS source_emails FROM syn.customers c JOIN src.customers s ON s.email = c.email;
SELECT bool_and(email ~ '@example\.(com|org|net)$') AS all_pseudonyms FROM syn.customers;
-- sequences and identities go on after the generated rows
SELECT nextval(pg_get_serial_sequence('syn.customers', 'id')) > (SELECT max(id) FROM syn.customers) AS serial_after;
-- the manifest: synthetic, its seed, rows asked and made, no source checksum
SELECT manifest->'synthetic' AS synthetic, manifest->'seed' AS seed, t->>'copy' AS copy, t->'rows' AS rows,
       t->'rows_asked' AS asked, t->'source_checksum' AS checksum
FROM elt.sandboxes, jsonb_array_elements(manifest->'tables') t WHERE name = 'syn' ORDER BY 3;

-------------------------------------------------------------------------------
-- Distributions: generated against the source
-------------------------------------------------------------------------------
-- most common values: each status within 3 percentage points
SELECT s.status, abs(s.f - g.f) <= 0.03 AS within_3pp
FROM (SELECT status, count(*)::float8 / sum(count(*)) OVER () AS f FROM src.orders GROUP BY status) s
JOIN (SELECT status, count(*)::float8 / sum(count(*)) OVER () AS f FROM syn.orders GROUP BY status) g USING (status)
ORDER BY 1;
SELECT s.region, abs(s.f - g.f) <= 0.03 AS within_3pp
FROM (SELECT region, count(*)::float8 / sum(count(*)) OVER () AS f FROM src.customers GROUP BY region) s
JOIN (SELECT region, count(*)::float8 / sum(count(*)) OVER () AS f FROM syn.customers GROUP BY region) g USING (region)
ORDER BY 1;
-- null fractions within 3 percentage points (a nullable foreign key too)
SELECT abs((SELECT avg((note IS NULL)::int) FROM src.orders) - (SELECT avg((note IS NULL)::int) FROM syn.orders)) <= 0.03 AS note_nulls,
       abs((SELECT avg((product_id IS NULL)::int) FROM src.orders) - (SELECT avg((product_id IS NULL)::int) FROM syn.orders)) <= 0.03 AS product_nulls,
       abs((SELECT avg((referrer IS NULL)::int) FROM src.customers) - (SELECT avg((referrer IS NULL)::int) FROM syn.customers)) <= 0.03 AS referrer_nulls;
-- numbers, dates and timestamps: median and 90th percentile within 10% (of the range, for dates)
SELECT abs(g.m / s.m - 1) <= 0.10 AS amount_median, abs(g.p / s.p - 1) <= 0.10 AS amount_p90
FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS m,
             percentile_cont(0.9) WITHIN GROUP (ORDER BY amount) AS p FROM src.orders) s,
     (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS m,
             percentile_cont(0.9) WITHIN GROUP (ORDER BY amount) AS p FROM syn.orders) g;
SELECT abs(g.m / s.m - 1) <= 0.10 AS price_median, abs(g.p / s.p - 1) <= 0.10 AS price_p90
FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY price) AS m,
             percentile_cont(0.9) WITHIN GROUP (ORDER BY price) AS p FROM src.products) s,
     (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY price) AS m,
             percentile_cont(0.9) WITHIN GROUP (ORDER BY price) AS p FROM syn.products) g;
SELECT abs(extract(epoch FROM g.m - s.m)) <= 0.10 * 300 * 86400 AS ordered_median
FROM (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ordered_at) AS m FROM src.orders) s,
     (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ordered_at) AS m FROM syn.orders) g;
SELECT (SELECT min(born) FROM syn.customers) >= (SELECT min(born) FROM src.customers)
   AND (SELECT max(born) FROM syn.customers) <= (SELECT max(born) FROM src.customers) AS born_within_range;
-- every customer's referrer is an earlier one (no cycles), the first none
SELECT bool_and(referrer < id) AS earlier, count(*) > 0 AS some FROM syn.customers WHERE referrer IS NOT NULL;
SELECT referrer IS NULL AS first_refers_to_none FROM syn.customers ORDER BY id LIMIT 1;
-- integer keys counted up from the source's low end: distinct, in the source's range
SELECT min(id) = 1 AS from_low_end, count(DISTINCT id) = 2000 AS distinct_ids FROM syn.customers;

-------------------------------------------------------------------------------
-- Scale, rows, seeds and refresh
-------------------------------------------------------------------------------
SELECT relation, rows FROM elt.sandbox_create('syn_half', ARRAY['src'], '{"synthetic": true, "scale": 0.5, "seed": 42}')
ORDER BY relation::text COLLATE "C";
SELECT relation, rows FROM elt.sandbox_create('syn_rows', ARRAY['src'],
    '{"synthetic": true, "scale": 0.01, "rows": {"src.orders": 3000, "src.products": 7}, "seed": 1}')
ORDER BY relation::text COLLATE "C";
-- the same seed and statistics: the same rows; another seed: others
SELECT count(*) AS tables FROM elt.sandbox_create('syn_same', ARRAY['src'], '{"synthetic": true, "seed": 42}');
SELECT count(*) AS tables FROM elt.sandbox_create('syn_other', ARRAY['src'], '{"synthetic": true, "seed": 43}');
SELECT t, elt.table_checksum(format('syn.%I', t)::regclass) = elt.table_checksum(format('syn_same.%I', t)::regclass) AS same_seed_same,
       elt.table_checksum(format('syn.%I', t)::regclass) = elt.table_checksum(format('syn_other.%I', t)::regclass) AS other_seed_same
FROM unnest(ARRAY['customers', 'orders', 'products']) t ORDER BY 1;
-- refresh makes the same rows again from the same seed
CREATE TABLE sums AS SELECT t, elt.table_checksum(format('syn_same.%I', t)::regclass) AS sum
FROM unnest(ARRAY['customers', 'orders', 'products']) t;
SELECT count(*) AS tables FROM elt.sandbox_refresh('syn_same');
SELECT t, elt.table_checksum(format('syn_same.%I', t)::regclass) = sum AS same_after_refresh FROM sums ORDER BY 1;
DROP TABLE sums;
-- unmasked: the values as pg_stats holds them (the unique e-mail tagged to stay distinct)
SELECT count(*) AS tables FROM elt.sandbox_create('syn_plain', ARRAY['src'], '{"synthetic": true, "seed": 42, "scale": 0.1}', false);
SELECT count(*) = count(DISTINCT email) AS distinct_emails, bool_and(email LIKE '%@shop.test-%') AS source_shaped
FROM syn_plain.customers;

-------------------------------------------------------------------------------
-- Partitioned tables, keys of several columns, one-to-one keys, fewer rows
-------------------------------------------------------------------------------
CREATE SCHEMA more;
-- a partitioned table's key holds its partition column: the id is counted up
CREATE TABLE more.events (id int, region text, v numeric(8,3), PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE more.events_n PARTITION OF more.events FOR VALUES IN ('n');
CREATE TABLE more.events_s PARTITION OF more.events FOR VALUES IN ('s');
INSERT INTO more.events SELECT g, CASE WHEN g % 3 = 0 THEN 's' ELSE 'n' END, g / 7.0 FROM generate_series(1, 3000) g;
-- a composite foreign key, and a one-to-one key (each parent once)
CREATE TABLE more.tags (event int, region text, tag text NOT NULL, FOREIGN KEY (event, region) REFERENCES more.events);
INSERT INTO more.tags SELECT id, region, 't' || id % 5 FROM more.events WHERE id % 2 = 0;
CREATE TABLE more.details (event int, region text, info text, PRIMARY KEY (event, region),
                           FOREIGN KEY (event, region) REFERENCES more.events);
INSERT INTO more.details SELECT id, region, 'i' FROM more.events WHERE id % 4 = 0;
-- a unique date of 30 days cannot have 100 rows
CREATE TABLE more.days (d date NOT NULL UNIQUE);
INSERT INTO more.days SELECT date '2026-06-01' + g FROM generate_series(0, 29) g;
-- a unique self-reference: each row points at the one just before (a chain)
CREATE TABLE more.chain (id int PRIMARY KEY, prev int UNIQUE REFERENCES more.chain);
INSERT INTO more.chain SELECT g, NULLIF(g - 1, 0) FROM generate_series(1, 200) g;
ANALYZE more.events, more.tags, more.details, more.days, more.chain;
SELECT relation, rows FROM elt.sandbox_create('syn_more', ARRAY['more'], '{"synthetic": true, "seed": 5, "rows": {"more.days": 100}}')
ORDER BY relation::text COLLATE "C";
SELECT abs((SELECT avg((region = 's')::int) FROM more.events) - (SELECT avg((region = 's')::int) FROM syn_more.events)) <= 0.03
       AS region_within_3pp,
       (SELECT count(*) FROM syn_more.tags t WHERE NOT EXISTS
          (SELECT 1 FROM syn_more.events e WHERE (e.id, e.region) = (t.event, t.region))) AS tags_dangling,
       (SELECT count(*) = count(DISTINCT (event, region)) FROM syn_more.details) AS details_one_each,
       (SELECT count(prev) = count(DISTINCT prev) AND bool_and(prev < id) FROM syn_more.chain) AS chain_unique_earlier;
SELECT (t->>'rows')::int < (t->>'rows_asked')::int AS fewer, (t->>'rows')::int <= 30 AS at_most_the_days
FROM elt.sandboxes, jsonb_array_elements(manifest->'tables') t WHERE name = 'syn_more' AND t->>'copy' = 'syn_more.days';

-------------------------------------------------------------------------------
-- Self-references, statistics, bad input, privileges
-------------------------------------------------------------------------------
CREATE SCHEMA tree;
CREATE TABLE tree.node (id int PRIMARY KEY, parent int NOT NULL REFERENCES tree.node, label text);
INSERT INTO tree.node SELECT g, GREATEST(g - 1, 1), 'n' || g FROM generate_series(1, 50) g;
ANALYZE tree.node;
\set VERBOSITY default
-- a NOT NULL self-reference: the first generated row would have nothing to point at
SELECT * FROM elt.sandbox_create('syn_tree', ARRAY['tree'], '{"synthetic": true}');
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'syn_tree';
-- a synthetic sample takes no percent, rows as a number, root, where or max_rows
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['src'], '{"synthetic": true, "percent": 5}');
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['src'], '{"synthetic": true, "rows": 100}');
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['src'], '{"synthetic": true, "root": "src.orders"}');
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['src'], '{"synthetic": "yes"}');
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['src'], '{"synthetic": true, "scale": 0}');
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['src'], '{"synthetic": true, "scale": "big"}');
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['src'], '{"synthetic": true, "rows": {"src.nowhere": 10}}');
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['src'], '{"synthetic": true, "rows": {"tree.node": 10}}');
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['src'], '{"synthetic": true, "rows": {"src.orders": -1}}');
-- a table with rows and no statistics
CREATE SCHEMA fresh;
CREATE TABLE fresh.t (id int PRIMARY KEY, v text);
INSERT INTO fresh.t VALUES (1, 'a'), (2, 'b');
SELECT * FROM elt.sandbox_create('syn_bad', ARRAY['fresh'], '{"synthetic": true}');
-- none is needed for no rows
SELECT relation, rows FROM elt.sandbox_create('syn_fresh0', ARRAY['fresh'], '{"synthetic": true, "rows": {"fresh.t": 0}}');
SELECT elt.sandbox_drop('syn_fresh0');
-- an empty one needs none (and gets no rows)
TRUNCATE fresh.t;
SELECT relation, rows FROM elt.sandbox_create('syn_fresh', ARRAY['fresh'], '{"synthetic": true}');
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'syn_bad';
-- a role that may not read the source is refused
SET ROLE sy_nobody;
SELECT * FROM elt.sandbox_create('syn_nobody', ARRAY['src'], '{"synthetic": true}');
RESET ROLE;
-- pg_stats shows no statistics of a table whose row-level security applies to the reader
CREATE SCHEMA sec;
CREATE TABLE sec.t (id int PRIMARY KEY, owner_name text);
INSERT INTO sec.t SELECT g, 'o' || (g % 3) FROM generate_series(1, 100) g;
ANALYZE sec.t;
ALTER TABLE sec.t ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON sec.t USING (owner_name = current_user);
GRANT USAGE ON SCHEMA sec TO sy_reader;
GRANT SELECT ON sec.t TO sy_reader;
SET ROLE sy_reader;
SELECT * FROM elt.sandbox_create('syn_sec', ARRAY['sec'], '{"synthetic": true}');
RESET ROLE;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname IN ('syn_nobody', 'syn_sec');

-- clean up
SELECT count(*) AS dropped FROM elt.sandboxes s, LATERAL elt.sandbox_drop(s.name)
WHERE s.name IN ('syn', 'syn_half', 'syn_rows', 'syn_same', 'syn_other', 'syn_plain', 'syn_fresh', 'syn_more');
SELECT elt.mask_drop('src.customers', 'email');
DROP SCHEMA src, tree, fresh, sec, more CASCADE;
REVOKE CREATE ON DATABASE contrib_regression FROM sy_nobody, sy_reader;
DROP ROLE sy_owner, sy_nobody, sy_reader;
