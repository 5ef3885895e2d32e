-- elt_governance demo: governing a warehouse schema, contracts that stop
-- breaking changes before they run, approved migrations, schema versions,
-- history and diffs, backfills, transforms traced to their raw rows,
-- reproducible runs, blue-green deployments with quality gates, least
-- privilege for many roles, masked sandboxes, and the audit chain.
-- Run by `make demo` against a throwaway cluster with the library preloaded.

\pset border 2
\set ON_ERROR_STOP 1

\echo
\echo '== 1. A small warehouse: raw data and an analytics schema built from it'
CREATE EXTENSION elt_governance;
CREATE SCHEMA raw;
CREATE SCHEMA analytics;
CREATE TABLE raw.orders (order_id bigint PRIMARY KEY, customer text, amount numeric(10,2), ordered_at date);
INSERT INTO raw.orders
SELECT g, 'customer ' || (g % 50), round((random() * 500)::numeric, 2), date '2026-01-01' + (g % 300)
FROM generate_series(1, 5000) g;
CREATE TABLE analytics.daily_revenue AS
SELECT ordered_at AS day, count(*) AS orders, sum(amount) AS revenue
FROM raw.orders GROUP BY ordered_at;
ALTER TABLE analytics.daily_revenue ADD PRIMARY KEY (day);
CREATE TABLE analytics.customers (customer text PRIMARY KEY, first_order date, lifetime_value numeric);
INSERT INTO analytics.customers
SELECT customer, min(ordered_at), sum(amount) FROM raw.orders GROUP BY customer;

\echo
\echo '== 2. Put analytics under contract: version 1 (the baseline) of every table'
SELECT elt.govern('analytics', 'enforce', 'dashboards read this schema') AS baselines;
SELECT kind, target, policy, tables, governed_by FROM elt.governed;

\echo
\echo '== 3. Dashboards read analytics: a view, and a reader the catalog cannot see'
CREATE VIEW analytics.top_customers AS
SELECT customer, lifetime_value FROM analytics.customers ORDER BY lifetime_value DESC LIMIT 10;
SELECT elt.consumer_register('analytics.daily_revenue', 'dashboard:finance', ARRAY['day', 'revenue']);
SELECT kind, rel, consumer, columns FROM elt.consumers ORDER BY rel::text, kind;

\echo
\echo '== 4. Compatible changes go through and become versions'
SET elt.reason = 'JIRA-42: revenue in cents for the finance dashboard';
ALTER TABLE analytics.daily_revenue ADD COLUMN revenue_cents bigint;
UPDATE analytics.daily_revenue SET revenue_cents = (revenue * 100)::bigint;
CREATE INDEX daily_revenue_cents_idx ON analytics.daily_revenue (revenue_cents);
ALTER TABLE analytics.customers ADD CONSTRAINT lifetime_value_not_negative
    CHECK (lifetime_value >= 0) NOT VALID;
ALTER TABLE analytics.customers VALIDATE CONSTRAINT lifetime_value_not_negative;
RESET elt.reason;
-- a new table in a governed schema is governed from its creation
CREATE TABLE analytics.monthly_revenue AS
SELECT date_trunc('month', day)::date AS month, sum(revenue_cents) AS revenue_cents
FROM analytics.daily_revenue GROUP BY 1;
-- a rolled-back change leaves nothing behind
BEGIN;
ALTER TABLE analytics.customers ADD COLUMN segment text;
ROLLBACK;

\echo
\echo '== 5. A breaking change is stopped before it runs, with what it would break'
\set ON_ERROR_STOP 0
ALTER TABLE analytics.customers RENAME COLUMN lifetime_value TO ltv;
ALTER TABLE analytics.daily_revenue ALTER COLUMN revenue TYPE numeric(14,2),
                                    ALTER COLUMN revenue_cents SET NOT NULL;
\set ON_ERROR_STOP 1
SELECT attname FROM pg_attribute
WHERE attrelid = 'analytics.customers'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

\echo
\echo '== 6. Lint the migration before running it: elt.check_ddl knows the live database'
SELECT statement_no, rule, class, object, dependents
FROM elt.check_ddl($$
  ALTER TABLE analytics.customers RENAME COLUMN lifetime_value TO ltv;
  ALTER TABLE analytics.daily_revenue ALTER COLUMN revenue TYPE numeric(14,2);
  ALTER TABLE analytics.daily_revenue ALTER COLUMN revenue_cents SET NOT NULL;
  CREATE TABLE analytics.scratch (id int);
  DROP TABLE analytics.scratch;
  DROP TABLE analytics.monthly_revenue;
$$);

\echo
\echo '== 7. The same change, on purpose: an approved migration'
SELECT elt.approver_add('data-platform-lead', 'signs off breaking changes');
SELECT elt.migration_begin('customers: lifetime_value -> ltv',
                           'shorter name for the new dashboards',
                           'data-platform-lead') AS migration \gset
ALTER TABLE analytics.customers RENAME COLUMN lifetime_value TO ltv;
CREATE OR REPLACE VIEW analytics.top_customers AS
SELECT customer, ltv AS lifetime_value FROM analytics.customers ORDER BY ltv DESC LIMIT 10;
SET lock_timeout = '5s';
ALTER TABLE analytics.daily_revenue ALTER COLUMN revenue_cents SET NOT NULL;
RESET lock_timeout;
CREATE TABLE analytics.scratch (id int);
DROP TABLE analytics.scratch;
SELECT elt.migration_end();
SELECT name, approved_by, status, changes, versions FROM elt.migrations;
SELECT rule, class, object, decision, migration_id FROM elt.schema_changes
WHERE class <> 'safe' ORDER BY change_id;

\echo
\echo '== 8. The history, one readable line per version'
SELECT table_name, version, event, command_tag, summary
FROM elt.schema_history ORDER BY table_id, version;

\echo
\echo '== 9. What changed in daily_revenue between its baseline and now'
SELECT change, object, before, after
FROM elt.schema_diff('analytics.daily_revenue', 1,
                     (SELECT max(version) FROM elt.table_versions('analytics.daily_revenue')));

\echo
\echo '== 10. The statement, role and reason behind each version'
SELECT v.table_name, v.version, v.role, a.reason, v.statement
FROM elt.schema_versions v
JOIN elt.audit_log a ON a.action = 'version_recorded'
 AND (a.details->>'table_id')::bigint = v.table_id AND (a.details->>'version')::int = v.version
WHERE v.table_name = 'daily_revenue' ORDER BY v.version;

\echo
\echo '== 11. New logic for old rows: a backfill in chunks, by background workers'
-- raw.orders gets a column that history must be reprocessed into
ALTER TABLE raw.orders ADD COLUMN amount_cents bigint;
INSERT INTO raw.orders (order_id, customer, amount, ordered_at)
SELECT g, 'c' || (g % 500), (g % 1000) / 10.0, DATE '2024-01-01' + (g % 365)
FROM generate_series(1000, 200000) g ON CONFLICT DO NOTHING;
SELECT elt.backfill_create('orders_cents', 'raw.orders',
  'UPDATE raw.orders SET amount_cents = amount * 100
   WHERE order_id >= $1 AND order_id < $2',
  chunk_rows => 5000, options => '{"target_chunk_ms": 100}');
SELECT elt.backfill_start('orders_cents', workers => 2);
SELECT pg_sleep(0.3);
\echo progress while the workers run (each chunk is its own transaction):
SELECT name, state, chunks_done, chunks_total, percent, live_workers FROM elt.backfill_status;
SELECT pid, backend_type, query FROM pg_stat_activity WHERE backend_type = 'elt_governance backfill';
-- wait for the end (a demo only; a real caller just reads the view)
DO $$ BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN (SELECT state FROM elt.backfills WHERE name = 'orders_cents') <> 'running';
    PERFORM pg_sleep(0.1); PERFORM pg_stat_clear_snapshot();
  END LOOP;
END $$;
SELECT name, state, chunks_done, chunks_total, rows_done, percent, live_workers FROM elt.backfill_status;
\echo chunks grew toward 100 ms each (target_chunk_ms), every range exactly once:
SELECT chunk_no, lower_bound, upper_bound, rows_planned, round(duration_ms) AS ms, attempts
FROM elt.backfill_chunks ORDER BY chunk_no LIMIT 8;
SELECT count(*) FILTER (WHERE amount_cents = amount * 100) AS done, count(*) AS total FROM raw.orders;

\echo
\echo '== 12. The same, driven from a session or pg_cron: one transaction per chunk'
-- a new column (a compatible change: a new version), filled by a backfill
-- with a text key this time
ALTER TABLE analytics.customers ADD COLUMN segment text;
SELECT elt.backfill_create('segments', 'analytics.customers',
  'UPDATE analytics.customers SET segment = CASE WHEN ltv >= 25000 THEN ''large'' ELSE ''small'' END
   WHERE customer >= $1 AND customer < $2', chunk_rows => 20);
CALL elt.backfill_run('segments', max_chunks => 2);
SELECT name, state, chunks_done, rows_done, runner FROM elt.backfill_status WHERE name = 'segments';
CALL elt.backfill_run('segments');
SELECT segment, count(*) FROM analytics.customers GROUP BY segment ORDER BY segment;
SELECT chunk_no, lower_bound, upper_bound, rows_planned FROM elt.backfill_chunks c
JOIN elt.backfills b USING (backfill_id) WHERE b.name = 'segments' ORDER BY chunk_no;
\echo the lifecycle is in the audit log:
SELECT action, object, details->>'workers' AS workers, details->>'chunks' AS chunks
FROM elt.audit_log WHERE action LIKE 'backfill%' ORDER BY id;

\echo
\echo '== 13. Transforms: versioned SQL that feeds a table, recording row lineage'
CREATE SCHEMA marts;
CREATE TABLE raw.customers (customer text PRIMARY KEY, region text NOT NULL);
INSERT INTO raw.customers
SELECT 'customer ' || g, (ARRAY['north', 'south', 'west'])[1 + g % 3] FROM generate_series(0, 49) g;
CREATE TABLE marts.customer_days (customer text, day date, region text, orders bigint, revenue numeric,
                                  PRIMARY KEY (customer, day));
CREATE TABLE marts.region_days (region text, day date, revenue numeric, PRIMARY KEY (region, day));
CREATE TABLE marts.region_months (region text, month date, revenue numeric, PRIMARY KEY (region, month));
SELECT elt.transform_create('customer_days', 'marts.customer_days', $$
  SELECT o.customer, o.ordered_at AS day, c.region, count(*) AS orders, sum(o.amount) AS revenue
  FROM raw.orders o JOIN raw.customers c ON c.customer = o.customer
  WHERE o.ordered_at >= date '2026-01-01'
  GROUP BY o.customer, o.ordered_at, c.region $$, 'merge') AS transform_id;
SELECT elt.transform_create('region_days', 'marts.region_days', $$
  SELECT region, day, sum(revenue) AS revenue FROM marts.customer_days GROUP BY region, day $$,
  'replace') AS transform_id;
-- the dashboard's table
SELECT elt.transform_create('region_months', 'marts.region_months', $$
  SELECT region, date_trunc('month', day)::date AS month, sum(revenue) AS revenue
  FROM marts.region_days GROUP BY region, date_trunc('month', day)::date $$,
  'replace') AS transform_id;
SELECT name, target, mode, current_version, lineage_level, left(code_hash, 16) AS code_hash
FROM elt.transforms ORDER BY name;
SELECT elt.transform_run('customer_days') AS run_1 \gset
SELECT elt.transform_run('region_days') AS run_2 \gset
SELECT elt.transform_run('region_months') AS run_3 \gset
SELECT run_id, d.name AS transform, version, r.lineage, status, rows_read, rows_written, rows_deleted,
       round(extract(epoch FROM finished_at - started_at) * 1000) AS ms
FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id) ORDER BY run_id;
\echo '-- transforms are consumers too: with raw governed, dropping a column that'
\echo '-- customer_days reads is blocked before it runs, naming the transform'
SELECT elt.govern('raw', 'enforce', 'the marts are built from it') AS baselines;
\set ON_ERROR_STOP 0
ALTER TABLE raw.orders DROP COLUMN amount;
\set ON_ERROR_STOP 1
SELECT elt.ungovern('raw', 'demo: back to ungoverned') IS NULL AS ungoverned;

\echo
\echo '== 14. "Why is this number what it is?" Trace it down to the raw rows'
SELECT region, month, revenue FROM marts.region_months WHERE region = 'north' AND month = '2026-02-01';
SELECT depth, relation, count(*) AS rows, min(key) AS first_key, bool_and(leaf) AS raw_rows,
       min(transform) AS made_by, min(version) AS version, min(run_id) AS run
FROM elt.trace('marts.region_months', '(north,2026-02-01)') GROUP BY depth, relation ORDER BY depth, relation;
\echo the raw orders it found add up to the number:
SELECT sum(o.amount) AS revenue_of_traced_orders
FROM elt.trace('marts.region_months', '(north,2026-02-01)') t
JOIN raw.orders o ON t.relation = 'raw.orders'::regclass AND o.order_id = t.key::bigint;
\echo and back up: everything one raw order feeds
SELECT order_id AS order_to_follow FROM raw.orders o JOIN raw.customers c USING (customer)
WHERE c.region = 'north' AND o.ordered_at = date '2026-02-03' ORDER BY order_id LIMIT 1 \gset
SELECT depth, relation, key, transform, run_id FROM elt.impact('raw.orders', :'order_to_follow') ORDER BY depth;

\echo
\echo '== 15. Column lineage, an OpenLineage event, a new version, and a bad run undone'
SELECT target_column, source_relation, source_column, kind FROM elt.column_lineage('marts.customer_days');
SELECT e->>'eventType' AS event, e->'job'->>'name' AS job, e->'run'->>'runId' AS run_id,
       (SELECT string_agg(i->>'name', ', ') FROM jsonb_array_elements(e->'inputs') i) AS inputs,
       e->'outputs'->0->>'name' AS output,
       e->'outputs'->0->'outputFacets'->'outputStatistics'->>'rowCount' AS rows
FROM elt.openlineage_event(:run_1) e;
-- comments and layout do not make a new version; a change of logic does
SELECT elt.transform_update('region_days', $$
  -- revenue per region and day
  SELECT region, day,
         sum(revenue) AS revenue
  FROM marts.customer_days
  GROUP BY region, day $$) AS version;
SELECT elt.transform_update('region_days', $$
  SELECT region, day, round(sum(revenue), 0) AS revenue FROM marts.customer_days GROUP BY region, day $$) AS version;
SELECT transform, version, current, left(code_hash, 16) AS code_hash, created_by
FROM elt.transform_versions WHERE transform = 'region_days' ORDER BY version;
\echo '-- a bad load: one day of orders arrives in cents, and the chain runs on it'
UPDATE raw.orders SET amount = amount * 100 WHERE ordered_at = date '2026-02-03';
SELECT elt.transform_run('customer_days') AS bad_run \gset
SELECT elt.transform_run('region_days') > 0 AS ran, elt.transform_run('region_months') > 0 AS ran;
SELECT region, month, revenue AS wrong_revenue FROM marts.region_months
WHERE region = 'north' AND month = '2026-02-01';
\echo '-- what read the rows of the bad run; then undo it and all built on it, newest first'
SELECT run_id, depth, transform, via FROM elt.run_dependents(:bad_run) ORDER BY depth;
SELECT run_id, transform, target, rows_removed, rows_restored, cascade_of
FROM elt.run_revert(:bad_run, 'INC-7: orders of 2026-02-03 loaded in cents', cascade => true);
SELECT region, month, revenue AS revenue_again FROM marts.region_months
WHERE region = 'north' AND month = '2026-02-01';
UPDATE raw.orders SET amount = amount / 100 WHERE ordered_at = date '2026-02-03';

\echo
\echo '== 16. Reproducibility, first part: what a result depends on, and what the data is'
CREATE TEMP TABLE fingerprint AS SELECT elt.env_fingerprint() AS f;
SELECT left(f->>'id', 16) AS fingerprint_id, f->>'server_version' AS server, f->'extensions' AS extensions,
       f->'database'->>'encoding' AS encoding
FROM fingerprint;
\echo a session with other settings reads and prints values differently; the fingerprint says how:
SET TimeZone = 'Asia/Kolkata';
SET DateStyle = 'SQL, DMY';
SELECT d.* FROM fingerprint, elt.env_diff(f, elt.env_fingerprint()) d;
\echo ... and the table checksum does not care: the same rows, the same checksum
CREATE TEMP TABLE checksum_then AS SELECT elt.table_checksum('marts.customer_days') AS c;
RESET TimeZone;
RESET DateStyle;
SELECT c AS checksum, c = elt.table_checksum('marts.customer_days') AS same_under_other_settings
FROM checksum_then;
\echo one changed cent in one row changes it, and checksums by key range say where:
CREATE TEMP TABLE ranges_before AS
SELECT * FROM elt.table_checksum_ranges('marts.customer_days', 'customer', 5);
BEGIN;
UPDATE marts.customer_days SET revenue = revenue + 0.01
WHERE (customer, day) = (SELECT customer, day FROM marts.customer_days ORDER BY customer, day LIMIT 1 OFFSET 100);
SELECT c <> elt.table_checksum('marts.customer_days') AS changed FROM checksum_then;
SELECT b.segment, b.lower, b.upper, b.row_count
FROM ranges_before b
JOIN elt.table_checksum_ranges('marts.customer_days', 'customer',
       (SELECT array_agg(upper ORDER BY segment) FILTER (WHERE upper IS NOT NULL) FROM ranges_before)) a
  USING (segment)
WHERE a.checksum <> b.checksum;
ROLLBACK;

\echo
\echo '== 17. Reproducible runs: a nightly run kept with its manifest, replayed after its sources changed'
SELECT elt.run_begin('nightly', '{"as_of": "2026-03-31"}', snapshot_policy => 'full') AS nightly \gset
SELECT elt.transform_run('customer_days') IS NOT NULL AS customer_days;
SELECT elt.transform_run('region_days') IS NOT NULL AS region_days;
SELECT elt.transform_run('region_months') IS NOT NULL AS region_months;
SELECT elt.run_end() AS nightly_id;
SELECT run_id, pipeline, kind, status, steps, snapshot_policy, left(manifest_id, 16) AS manifest_id
FROM elt.runs WHERE run_id = :nightly;
\echo what the manifest records: the steps ...
SELECT s->>'step' AS step, s->>'transform' AS transform, s->>'version' AS version,
       left(s->>'code_hash', 12) AS code_hash, s->>'mode' AS mode, s->>'rows_written' AS rows_written,
       s->>'seed' AS seed
FROM jsonb_array_elements(elt.run_manifest(:nightly)->'steps') s;
\echo ... what they read first (for a merge, the earlier rows of the target too), and what they wrote:
SELECT i->>'step' AS step, i->>'relation' AS input, i->>'role' AS role, i->>'rows' AS rows,
       i->>'checksum' AS checksum, i->'snapshot'->>'id' AS snapshot
FROM jsonb_array_elements(elt.run_manifest(:nightly)->'inputs') i;
SELECT o->>'relation' AS output, o->>'rows' AS rows, o->>'checksum' AS checksum
FROM jsonb_array_elements(elt.run_manifest(:nightly)->'outputs') o;
SELECT key, b_value AS recorded FROM elt.env_diff('{}', elt.run_manifest(:nightly)->'fingerprint')
WHERE key IN ('server_version', 'extensions.elt_governance', 'database.encoding', 'settings.TimeZone',
              'database.collate')
ORDER BY key;
\echo months later: raw.orders gained a column, orders were corrected, a customer moved
ALTER TABLE raw.orders ADD COLUMN channel text DEFAULT 'web';
UPDATE raw.orders SET amount = amount * 2 WHERE order_id % 40 = 0;
UPDATE raw.customers SET region = 'west' WHERE customer = 'customer 1';
\echo a replay re-runs the recorded versions against the snapshots of the run, in a sandbox schema ...
SELECT elt.replay(:nightly) AS replay_id \gset
SELECT run_id, kind, replay_of, sandbox, status FROM elt.runs WHERE run_id = :replay_id;
\echo ... and the verification proves it the same:
SELECT * FROM elt.verify_replay(:nightly, :replay_id);
\echo the live source has moved on, the replay read the snapshot taken by the run:
SELECT i->>'checksum' AS recorded,
       elt.table_checksum('raw.orders', ARRAY(SELECT c->>'name' FROM jsonb_array_elements(i->'columns') c)) AS today
FROM jsonb_array_elements(elt.run_manifest(:nightly)->'inputs') i WHERE i->>'relation' = 'raw.orders';
SELECT m.region, m.month, m.revenue AS recorded, r.revenue AS replayed
FROM marts.region_months m JOIN elt_replay_:replay_id.region_months r USING (region, month)
WHERE m.region = 'north' ORDER BY m.month;

\echo
\echo '== 18. Blue-green: dashboards read an interface of views; a new version is built beside it'
CREATE ROLE dashboards;
CREATE ROLE dashboards_beta IN ROLE dashboards;
CREATE SCHEMA dash;
GRANT USAGE ON SCHEMA dash TO dashboards;
CREATE TABLE dash.customer_revenue (customer text PRIMARY KEY, orders bigint NOT NULL, revenue numeric);
CREATE TABLE dash.monthly_revenue (month date PRIMARY KEY, revenue numeric);
INSERT INTO dash.customer_revenue SELECT customer, count(*), sum(amount) FROM raw.orders GROUP BY customer;
INSERT INTO dash.monthly_revenue SELECT date_trunc('month', ordered_at)::date, sum(amount) FROM raw.orders GROUP BY 1;
GRANT SELECT ON dash.customer_revenue, dash.monthly_revenue TO dashboards;
\echo the tables move to dash__blue and dash keeps one view per table, with the same grants:
SELECT elt.deploy_init('dash') AS tables;
SELECT n.nspname AS schema, c.relname, CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END AS kind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('dash', 'dash__blue') AND c.relkind IN ('r', 'v') ORDER BY 1, 2;
\echo a report is built on the interface, as consumers do:
CREATE SCHEMA bi;
GRANT USAGE ON SCHEMA bi TO dashboards;
CREATE VIEW bi.top_customers AS
SELECT customer, revenue FROM dash.customer_revenue ORDER BY revenue DESC, customer LIMIT 3;
GRANT SELECT ON bi.top_customers TO dashboards;
\echo quality checks on the interface: they run against the candidate at promotion
SELECT elt.check_create('dash.customer_revenue', 'not_null', '{"column": "revenue"}') AS check_id;
SELECT elt.check_create('dash.customer_revenue', 'expression', '{"expression": "revenue >= 0"}',
                        name => 'revenue_not_negative') AS check_id;
SELECT elt.check_create('dash.customer_revenue', 'row_count_delta', '{"max_percent": 10}', 'warn') AS check_id;

\echo
\echo '== 19. Version 2, net of refunds, is built into the idle color; a gate stops it, a fix lets it pass'
CREATE TABLE raw.refunds (order_id bigint PRIMARY KEY, amount numeric(10,2) NOT NULL);
INSERT INTO raw.refunds SELECT order_id, round(amount / 2, 2) FROM raw.orders WHERE order_id % 70 = 0;
SELECT elt.deploy_prepare('dash', copy_data => true) AS candidate;
ALTER TABLE dash__green.customer_revenue ADD COLUMN avg_order numeric;
TRUNCATE dash__green.customer_revenue;
INSERT INTO dash__green.customer_revenue
SELECT o.customer, count(*), sum(o.amount) - r.refunded, round(avg(o.amount), 2)
FROM raw.orders o
LEFT JOIN (SELECT x.customer, sum(f.amount) AS refunded
           FROM raw.refunds f JOIN raw.orders x USING (order_id) GROUP BY x.customer) r USING (customer)
GROUP BY o.customer, r.refunded;
\echo compare it with live: shape, then rows (key-range checksums first, rows only where they differ)
SELECT relation, shape, compatibility, live_rows, candidate_rows, missing, extra, changed
FROM elt.deploy_compare('dash');
SELECT key, columns, live ->> 'revenue' AS live_revenue, candidate ->> 'revenue' AS candidate_revenue
FROM elt.deploy_diff('dash', 'customer_revenue', 3);
\echo the gate stops the promotion: customers without refunds lost their revenue (amount minus NULL)
\set ON_ERROR_STOP 0
SELECT elt.deploy_promote('dash', 'v2: net of refunds');
\set ON_ERROR_STOP 1
SELECT relation, check_name, status, failing_rows, sample -> 0 ->> 'customer' AS first_failing
FROM elt.check_run('dash__green') WHERE status <> 'pass';
\echo the fix: no refund is a refund of 0
TRUNCATE dash__green.customer_revenue;
INSERT INTO dash__green.customer_revenue
SELECT o.customer, count(*), sum(o.amount) - coalesce(r.refunded, 0), round(avg(o.amount), 2)
FROM raw.orders o
LEFT JOIN (SELECT x.customer, sum(f.amount) AS refunded
           FROM raw.refunds f JOIN raw.orders x USING (order_id) GROUP BY x.customer) r USING (customer)
GROUP BY o.customer, r.refunded;
SELECT relation, check_name, status FROM elt.check_run('dash__green') ORDER BY 1, 2;
SELECT relation, compatibility, changed FROM elt.deploy_compare('dash');

\echo '== 20. A canary: the dashboards_beta role reads version 2, everyone else version 1'
SELECT elt.deploy_canary('dash', roles => ARRAY['dashboards_beta']) AS deployment;
SET ROLE dashboards;
SELECT 'dashboards' AS reader, * FROM bi.top_customers;
SET ROLE dashboards_beta;
SELECT 'dashboards_beta' AS reader, * FROM bi.top_customers;
RESET ROLE;
\echo each query picks its branch once, and keeps its indexes:
EXPLAIN (COSTS OFF) SELECT revenue FROM dash.customer_revenue WHERE customer = 'c7';

\echo
\echo '== 21. Promote: every view switches to dash__green in one transaction; the report follows'
SELECT elt.deploy_promote('dash', 'v2: net revenue, average order') AS deployment;
SET ROLE dashboards;
SELECT * FROM bi.top_customers;
SELECT customer, revenue, avg_order FROM dash.customer_revenue ORDER BY customer LIMIT 3;
RESET ROLE;
\echo the totals look wrong to finance: roll back, in one transaction (the new column reads NULL)
SELECT elt.deploy_rollback('dash', 'finance disputes net revenue') AS deployment;
SELECT customer, revenue, avg_order FROM dash.customer_revenue ORDER BY customer LIMIT 3;
SELECT * FROM bi.top_customers;
SELECT deployment_id, from_color, to_color, state, promote_reason, rollback_reason, gates ->> 'shape' AS shape
FROM elt.deployments WHERE interface = 'dash';
SELECT event_id, action, actor, reason, details ->> 'lock_attempts' AS lock_attempts
FROM elt.deployment_events WHERE interface = 'dash' ORDER BY event_id;

\echo
\echo '== 22. Many roles, least privilege: what an analyst sees, what the platform team may do'
CREATE ROLE demo_analyst;
CREATE ROLE demo_platform IN ROLE elt_admin;
GRANT USAGE ON SCHEMA marts TO demo_analyst;
GRANT SELECT ON marts.region_months TO demo_analyst;
SET ROLE demo_analyst;
\echo the catalog tables that hold values of tables (run parameters, errors, key bounds) are not for everyone ...
\set ON_ERROR_STOP 0
SELECT count(*) FROM elt.transform_runs;
\set ON_ERROR_STOP 1
\echo ... the views show every run and every action, without the values of the work of other roles
SELECT run_id, transform, status, rows_written, params IS NULL AS params_hidden
FROM elt.transform_run_history ORDER BY run_id LIMIT 4;
SELECT action, count(*) AS actions, count(details) AS with_details
FROM elt.audit_trail GROUP BY action ORDER BY action;
\echo lineage shows only the relations the analyst may read (the NOTICE counts what it left out)
SELECT depth, relation, count(*) AS rows FROM elt.trace('marts.region_months', '(north,2026-02-01)') GROUP BY 1, 2;
\echo any role verifies the audit chain
SELECT valid, checked FROM elt.audit_verify();
RESET ROLE;
SET ROLE demo_platform;
\echo the platform team (elt_admin) adds approvers and sees every run, without being superuser
SELECT elt.approver_add('data-platform-oncall', 'pages the platform team');
SELECT count(*) AS runs_seen, count(params) AS with_params FROM elt.runs;
RESET ROLE;

\echo
\echo '== 23. Sandboxes: personal data masked once, a 1% sample closed under foreign keys, for the analyst'
CREATE SCHEMA crm;
CREATE TABLE crm.customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE, full_name text,
                            phone text, birth_date date, region text);
CREATE TABLE crm.orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES crm.customers,
                         amount numeric(10,2) NOT NULL, ordered_at date NOT NULL);
INSERT INTO crm.customers (email, full_name, phone, birth_date, region)
SELECT 'customer' || g || '@mail.test', 'Customer ' || g, '+44 20 7946 ' || lpad(g::text, 4, '0'),
       date '1960-01-01' + g * 11, (ARRAY['north', 'south'])[1 + g % 2]
FROM generate_series(1, 2000) g;
INSERT INTO crm.orders SELECT o, 1 + (o * 13) % 2000, (o % 300) + 0.99, date '2026-01-01' + o % 300
FROM generate_series(1, 20000) o;
\echo which columns look personal, by name or by their values?
SELECT relation, column_name, reason, rule, args FROM elt.mask_suggest('crm');
\echo mask them: pseudonyms that keep the format, a keyed hash for keys (joins survive), the birth year only
SELECT elt.mask_set('crm.customers', 'email', 'pseudonym', '{"kind": "email"}') > 0 AS email,
       elt.mask_set('crm.customers', 'full_name', 'pseudonym', '{"kind": "name"}') > 0 AS name,
       elt.mask_set('crm.customers', 'phone', 'pseudonym', '{"kind": "phone"}') > 0 AS phone,
       elt.mask_set('crm.customers', 'birth_date', 'generalize', '{"to": "year"}') > 0 AS birth,
       elt.mask_set('crm.customers', 'id', 'hash') > 0 AS id,
       elt.mask_set('crm.orders', 'customer_id', 'hash') > 0 AS order_customer,
       elt.mask_set('crm.orders', 'amount', 'noise', '{"ratio": 0.05}') > 0 AS amount;
SELECT * FROM elt.mask_preview('crm.customers', 2);
\echo a 1% sample of the orders, with every customer they reference, masked, for demo_analyst for three days
GRANT demo_analyst TO CURRENT_USER;
SELECT * FROM elt.sandbox_create('sandbox_crm', ARRAY['crm'], '{"percent": 1, "seed": 2026}', true, '3 days', 'demo_analyst');
SET ROLE demo_analyst;
\echo the analyst reads the copies (the keys still join) and nothing of crm itself
SELECT c.region, count(*) AS orders, round(sum(o.amount)) AS amount
FROM sandbox_crm.orders o JOIN sandbox_crm.customers c ON c.id = o.customer_id GROUP BY 1 ORDER BY 1;
SELECT email, full_name, phone, birth_date FROM sandbox_crm.customers ORDER BY id LIMIT 3;
RESET ROLE;
SELECT name, owner, expires_at > now() AS live, tables, masked, sample FROM elt.sandboxes;
\echo the same query on the live tables, for comparison (a 1% sample: about 1/100 of the orders)
SELECT c.region, count(*) AS orders, round(sum(o.amount)) AS amount
FROM crm.orders o JOIN crm.customers c ON c.id = o.customer_id GROUP BY 1 ORDER BY 1;
\echo a transform over crm, run live: monthly revenue per region
CREATE TABLE marts.crm_region_months (region text, month date, orders bigint NOT NULL,
                                      revenue numeric NOT NULL, PRIMARY KEY (region, month));
SELECT elt.transform_create('crm_region_months', 'marts.crm_region_months', $$
  SELECT c.region, date_trunc('month', o.ordered_at)::date AS month, count(*) AS orders, sum(o.amount) AS revenue
  FROM crm.orders o JOIN crm.customers c ON c.id = o.customer_id GROUP BY 1, 2 $$, 'replace') > 0 AS created;
SELECT elt.transform_run('crm_region_months') > 0 AS live_run;
SET ROLE demo_analyst;
\echo the analyst runs it in the sandbox: its SQL reads the copies there, and the sandbox gets a target of its own ...
SELECT elt.transform_run('crm_region_months', sandbox => 'sandbox_crm') > 0 AS sandbox_run;
CREATE TABLE sandbox_crm.live_version AS SELECT * FROM sandbox_crm.crm_region_months;
\echo ... then a new version, revenue net of 20% VAT and only from orders above 10, before anyone makes it live
SELECT elt.transform_run('crm_region_months', sandbox => 'sandbox_crm', sql => $$
  SELECT c.region, date_trunc('month', o.ordered_at)::date AS month, count(*) AS orders,
         round(sum(o.amount) / 1.2, 2) AS revenue
  FROM crm.orders o JOIN crm.customers c ON c.id = o.customer_id
  WHERE o.amount > 10 GROUP BY 1, 2 $$) AS trial \gset
\echo the new version against the live one, on the same sandbox rows, per region
SELECT region, sum(l.orders) AS live_orders, sum(n.orders) AS new_orders,
       round(sum(l.revenue)) AS live_revenue, round(sum(n.revenue)) AS new_revenue,
       round(sum(n.revenue) / sum(l.revenue), 3) AS ratio
FROM sandbox_crm.live_version l LEFT JOIN sandbox_crm.crm_region_months n USING (region, month)
GROUP BY region ORDER BY region;
RESET ROLE;
\echo and the live version in the sandbox against live itself: the share of the 1% sample per region
SELECT region, sum(l.orders) AS live_orders, s.orders AS sandbox_orders,
       round(100.0 * s.orders / sum(l.orders), 2) AS sample_pct
FROM marts.crm_region_months l
JOIN (SELECT region, sum(orders) AS orders FROM sandbox_crm.live_version GROUP BY region) s USING (region)
GROUP BY region, s.orders ORDER BY region;
\echo the trial is a run of its own, with a manifest of what it read in the sandbox
SELECT kind, pipeline, role, sandbox, status, steps FROM elt.runs WHERE run_id = :trial;

\echo
\echo '== 24. The audit trail is a hash chain; keep its digest outside the database'
SELECT count(*) AS audit_rows FROM elt.audit_log;
SELECT * FROM (SELECT id, action, object, left(prev_hash, 12) AS prev_hash, left(row_hash, 12) AS row_hash
               FROM elt.audit_log ORDER BY id DESC LIMIT 8) last ORDER BY id;
SELECT elt.audit_digest() AS digest \gset
\echo digest: :digest
SELECT * FROM elt.audit_verify(:'digest');

\echo
\echo '== 25. History cannot be rewritten through SQL ...'
\set ON_ERROR_STOP 0
UPDATE elt.schema_versions SET statement = 'nothing to see here' WHERE version = 2;
DELETE FROM elt.audit_log WHERE id = 3;
\set ON_ERROR_STOP 1

\echo
\echo '== 26. ... and a superuser who goes around the triggers is caught'
SET session_replication_role = replica;
UPDATE elt.schema_versions SET statement = 'ALTER TABLE nothing'
WHERE table_name = 'customers' AND version = 2;
RESET session_replication_role;
SELECT * FROM elt.audit_verify(:'digest');
