-- dbt under enforce.  dbt cannot be installed here: this suite replays the
-- exact SQL that dbt-postgres issues, taken from dbt-labs/dbt-adapters at
-- commit 802d40f0f0eb663c17e5be08d1e3fb2e55b9ee34:
--   dbt-adapters/src/dbt/include/global_project/macros/materializations/models/view.sql
--     (create the intermediate "<model>__dbt_tmp", rename the existing
--      relation to "<model>__dbt_backup", rename the intermediate to the
--      model, commit, then drop the backup)
--   dbt-adapters/src/dbt/include/global_project/macros/relations/view/create.sql
--     default__create_view_as: create view <relation> as ( <sql> );
--   dbt-adapters/src/dbt/include/global_project/macros/relations/rename.sql
--     default__rename_relation: alter table <from> rename to <identifier>
--   dbt-postgres/src/dbt/include/postgres/macros/relations/view/drop.sql
--     postgres__drop_view: drop view if exists <relation> cascade
-- Relations are rendered database-qualified and quoted, as dbt renders them;
-- dbt runs each model's statements between BEGIN and COMMIT.
CREATE EXTENSION IF NOT EXISTS elt_governance;
CREATE SCHEMA dbt_src;
CREATE TABLE dbt_src.orders (order_id int PRIMARY KEY, customer_id int, amount numeric(10,2), status text);
INSERT INTO dbt_src.orders VALUES (1, 10, 5.00, 'new'), (2, 11, 7.50, 'paid');
CREATE SCHEMA dbt_marts;
SELECT elt.govern('dbt_marts');

-- view model, first build (view.sql): runs under enforce
BEGIN;
create view "contrib_regression"."dbt_marts"."stg_orders__dbt_tmp"
  as (
    select order_id, customer_id, amount from dbt_src.orders
  );
alter table "contrib_regression"."dbt_marts"."stg_orders__dbt_tmp" rename to "stg_orders";
COMMIT;
SELECT * FROM dbt_marts.stg_orders ORDER BY order_id;

-- a view created by an earlier transaction is still judged
CREATE VIEW dbt_marts.old_view AS SELECT 1 AS one;
alter table "contrib_regression"."dbt_marts"."old_view" rename to "renamed_view";
-- nor does CREATE OR REPLACE make an existing view new
BEGIN;
CREATE OR REPLACE VIEW dbt_marts.old_view AS SELECT 1 AS one, 2 AS two;
alter table "contrib_regression"."dbt_marts"."old_view" rename to "renamed_view";
ROLLBACK;
-- a view created in the same transaction, then renamed twice: not judged
BEGIN;
CREATE VIEW dbt_marts.tmp_v AS SELECT 1 AS one;
ALTER VIEW dbt_marts.tmp_v RENAME TO tmp_v2;
ALTER VIEW dbt_marts.tmp_v2 RENAME TO tmp_v3;
COMMIT;
-- and judged again in the next transaction
ALTER VIEW dbt_marts.tmp_v3 RENAME TO tmp_v4;

-- table model, first build (table.sql; postgres__create_table_as in
-- dbt-postgres/src/dbt/include/postgres/macros/adapters.sql): runs
BEGIN;

  create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
  
  
    as
  
  (
    select customer_id, sum(amount) as revenue from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
COMMIT;
SELECT dense_rank() OVER (ORDER BY table_id) AS history, table_name, version, event, summary FROM elt.schema_history WHERE schema_name = 'dbt_marts' ORDER BY table_id, version;

-- view model, rebuild with a compatible change (view.sql): the existing view
-- is renamed out of the way, the new one takes its name, the backup is
-- dropped after the commit
BEGIN;
create view "contrib_regression"."dbt_marts"."stg_orders__dbt_tmp"
  as (
    select order_id, customer_id, amount, status from dbt_src.orders
  );
alter table "contrib_regression"."dbt_marts"."stg_orders" rename to "stg_orders__dbt_backup";
alter table "contrib_regression"."dbt_marts"."stg_orders__dbt_tmp" rename to "stg_orders";
COMMIT;
drop view if exists "contrib_regression"."dbt_marts"."stg_orders__dbt_backup" cascade;
SELECT * FROM dbt_marts.stg_orders ORDER BY order_id;

-- a view on a view model follows it too (dbt's view on view, or a
-- reporting view): view.sql rebuild with a new column
CREATE VIEW dbt_marts.stg_paid AS SELECT order_id, amount FROM dbt_marts.stg_orders WHERE status = 'paid';
BEGIN;
create view "contrib_regression"."dbt_marts"."stg_orders__dbt_tmp"
  as (
    select order_id, customer_id, amount, status, amount * 2 as double_amount from dbt_src.orders
  );
alter table "contrib_regression"."dbt_marts"."stg_orders" rename to "stg_orders__dbt_backup";
alter table "contrib_regression"."dbt_marts"."stg_orders__dbt_tmp" rename to "stg_orders";
COMMIT;
drop view if exists "contrib_regression"."dbt_marts"."stg_orders__dbt_backup" cascade;
SELECT * FROM dbt_marts.stg_paid;
SELECT refobjid::regclass AS reads FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid
WHERE w.ev_class = 'dbt_marts.stg_paid'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> w.ev_class
GROUP BY 1;

-- table model, rebuild with a compatible change (table.sql): a new column
BEGIN;

  create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
  
  
    as
  
  (
    select customer_id, sum(amount) as revenue, count(*) as orders from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
COMMIT;
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue__dbt_backup" cascade;
SELECT * FROM dbt_marts.customer_revenue ORDER BY customer_id;
-- one history per model: the rebuild is the next version of the same table,
-- compared with the old shape; the backup has no history of its own
SELECT dense_rank() OVER (ORDER BY table_id) AS history, table_name, version, event, summary FROM elt.schema_history WHERE table_name LIKE 'customer_revenue%' ORDER BY table_id, version;
SELECT count(*) AS tables FROM elt.tracked_tables WHERE table_name LIKE 'customer_revenue%';
-- a rebuild that changes nothing records no version
BEGIN;
  create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
    as
  (
    select customer_id, sum(amount) as revenue, count(*) as orders from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
COMMIT;
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue__dbt_backup" cascade;
SELECT max(version) AS last_version, count(DISTINCT table_id) AS histories FROM elt.schema_history WHERE table_name LIKE 'customer_revenue%';

-- rebuild with an incompatible change: a column removed, another retyped;
-- stopped at the rename in, before anything is dropped
BEGIN;

  create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
  
  
    as
  
  (
    select customer_id, sum(amount)::float8 as revenue from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
ROLLBACK;
SELECT * FROM dbt_marts.customer_revenue ORDER BY customer_id;

-- the first half of a swap alone does not commit
BEGIN;
create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" as (select 1 as customer_id);
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
COMMIT;
SELECT count(*) FROM dbt_marts.customer_revenue;

-- nor does a swap whose new relation gives the name up again, or loses
-- columns, after the rename in: dropping it, then the backup, would drop the
-- model unjudged
BEGIN;
create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" as (select * from dbt_marts.customer_revenue);
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
DROP TABLE dbt_marts.customer_revenue;
COMMIT;
BEGIN;
create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" as (select * from dbt_marts.customer_revenue);
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
ALTER TABLE dbt_marts.customer_revenue DROP COLUMN revenue;
COMMIT;
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue__dbt_backup" cascade;
SELECT * FROM dbt_marts.customer_revenue ORDER BY customer_id;

-- an analyst's own view on the model follows it to the rebuilt table: made
-- again from its definition as its owner at the rename in, before dbt's
-- drop ... cascade of the backup, keeping its oid, owner, grants, column
-- grants, comments and options (and the views on it)
CREATE ROLE dbt_analyst;
CREATE ROLE dbt_reader;
CREATE ROLE dbt_nobody;
GRANT USAGE ON SCHEMA dbt_marts TO dbt_analyst, dbt_reader, dbt_nobody;
GRANT CREATE ON SCHEMA dbt_marts TO dbt_analyst, dbt_nobody;
GRANT SELECT ON dbt_marts.customer_revenue TO dbt_analyst;
CREATE SCHEMA dbt_analyst_priv AUTHORIZATION dbt_analyst;  -- the builder has no USAGE on it
SET ROLE dbt_analyst;
CREATE TABLE dbt_analyst_priv.excluded (customer_id int);
CREATE VIEW dbt_marts.analyst_top WITH (security_barrier) AS SELECT customer_id, revenue FROM dbt_marts.customer_revenue
  WHERE revenue > 6 AND customer_id NOT IN (SELECT customer_id FROM dbt_analyst_priv.excluded);
CREATE VIEW dbt_marts.analyst_top_ids AS SELECT customer_id FROM dbt_marts.analyst_top;
COMMENT ON VIEW dbt_marts.analyst_top IS 'big customers';
COMMENT ON COLUMN dbt_marts.analyst_top.revenue IS 'in euros';
GRANT SELECT (customer_id) ON dbt_marts.analyst_top TO dbt_reader;
RESET ROLE;
CREATE TEMP TABLE analyst_before AS SELECT 'dbt_marts.analyst_top'::regclass::oid AS oid;
BEGIN;
create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
    as
  (
    select customer_id, sum(amount) as revenue, count(*) as orders, max(order_id) as last_order from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
COMMIT;
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue__dbt_backup" cascade;
-- the view reads the new table with its owner's rights: the owner needs
-- SELECT on it, as the model's grants config gives it (dbt's apply_grants)
SELECT * FROM dbt_marts.analyst_top;
grant select on "contrib_regression"."dbt_marts"."customer_revenue" to "dbt_analyst";
SELECT * FROM dbt_marts.analyst_top;
SELECT * FROM dbt_marts.analyst_top_ids;
SELECT c.oid = b.oid AS same_view, pg_get_userbyid(c.relowner) AS owner, c.reloptions,
       obj_description(c.oid, 'pg_class') AS comment, col_description(c.oid, 2) AS column_comment,
       has_column_privilege('dbt_reader', c.oid, 'customer_id', 'SELECT') AS reader_id,
       has_column_privilege('dbt_reader', c.oid, 'revenue', 'SELECT') AS reader_revenue,
       (SELECT array_agg(DISTINCT d.refobjid::regclass::text) FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid
        WHERE w.ev_class = c.oid AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid) AS reads
FROM pg_class c, analyst_before b WHERE c.oid = 'dbt_marts.analyst_top'::regclass;
SELECT valid FROM elt.audit_verify();

-- a view that reads a column the rebuild leaves out cannot follow: under an
-- approved migration the swap itself is not judged, the view is; the build
-- is stopped at the rename in, naming it, and nothing is dropped
SELECT elt.approver_add('dbt_lead');
SET client_min_messages = warning;
BEGIN;
select elt.migration_begin('drop customer_revenue.revenue', 'no longer used', 'dbt_lead') > 0 AS migration;
create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
    as
  (
    select customer_id, count(*) as orders from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
ROLLBACK;
RESET client_min_messages;
SELECT * FROM dbt_marts.analyst_top;

-- a role that owns nothing cannot start a swap of the model (PostgreSQL
-- refuses the rename out), so it cannot get the analyst's view made again
SET ROLE dbt_nobody;
BEGIN;
create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" as (select 1 as customer_id, 1::numeric as revenue);
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
ROLLBACK;
-- nor make its own relation take the name of one it built
BEGIN;
create  table "contrib_regression"."dbt_marts"."analyst_top__dbt_tmp" as (select 1 as customer_id, 1::numeric as revenue);
alter table "contrib_regression"."dbt_marts"."analyst_top" rename to "analyst_top__dbt_backup";
ROLLBACK;
RESET ROLE;
-- a model whose view follows is built by a role that is not a member of the
-- view's owner: the view is made again as its owner, not as the builder
-- (who could not, having no USAGE on the analyst's schema the view names)
CREATE ROLE dbt_builder;
GRANT USAGE, CREATE ON SCHEMA dbt_marts TO dbt_builder;
GRANT SELECT ON dbt_src.orders TO dbt_builder;
GRANT USAGE ON SCHEMA dbt_src TO dbt_builder;
ALTER TABLE dbt_marts.customer_revenue OWNER TO dbt_builder;
SET ROLE dbt_builder;
BEGIN;
create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
    as
  (
    select customer_id, sum(amount) as revenue, count(*) as orders, max(order_id) as last_order from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
COMMIT;
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue__dbt_backup" cascade;
RESET ROLE;
SELECT pg_get_userbyid(relowner) AS owner, pg_has_role('dbt_builder', 'dbt_analyst', 'MEMBER') AS builder_is_member
FROM pg_class WHERE oid = 'dbt_marts.analyst_top'::regclass;
SET ROLE dbt_builder;
SELECT count(*) FROM dbt_analyst_priv.excluded;
RESET ROLE;
GRANT SELECT ON dbt_marts.customer_revenue TO dbt_analyst;
SELECT * FROM dbt_marts.analyst_top;
ALTER TABLE dbt_marts.customer_revenue OWNER TO CURRENT_USER;

-- a plain drop of a model is still judged (the swap retires only its backup)
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue" cascade;

-- incremental model (incremental.sql; postgres__make_temp_relation: a
-- temporary "<model>__dbt_tmp<HHMMSSffffff>"; on_schema_change.sql,
-- default__alter_relation_add_remove_columns in adapters/columns.sql;
-- get_insert_into_sql in incremental/strategies.sql).  First build: the
-- table is created under its own name
BEGIN;

  create  table "contrib_regression"."dbt_marts"."order_facts"
  
  
    as
  
  (
    select order_id, customer_id, amount from dbt_src.orders where order_id <= 1
  );
COMMIT;
CREATE VIEW dbt_marts.analyst_amounts AS SELECT customer_id, amount FROM dbt_marts.order_facts;
INSERT INTO dbt_src.orders VALUES (3, 10, 2.50, 'new');
-- incremental run, on_schema_change='append_new_columns', the model gained
-- status: the column is added, the new rows inserted; runs
BEGIN;

  create temporary table "order_facts__dbt_tmp051503123456"
  
  
    as
  
  (
    select order_id, customer_id, amount, status from dbt_src.orders where order_id > (select max(order_id) from "contrib_regression"."dbt_marts"."order_facts")
  );
alter table "contrib_regression"."dbt_marts"."order_facts"

            
               add column "status" text
            
;
    insert into "contrib_regression"."dbt_marts"."order_facts" ("order_id", "customer_id", "amount", "status")
    (
        select "order_id", "customer_id", "amount", "status"
        from "order_facts__dbt_tmp051503123456"
    )
;
COMMIT;
SELECT * FROM dbt_marts.order_facts ORDER BY order_id;
-- on_schema_change='sync_all_columns', the model gained note and lost
-- amount, which the analyst's view reads: stopped at the ALTER, in the
-- run's transaction (nothing inserted, nothing dropped)
BEGIN;

  create temporary table "order_facts__dbt_tmp051611654321"
  
  
    as
  
  (
    select order_id, customer_id, status, 'x'::text as note from dbt_src.orders where order_id > (select max(order_id) from "contrib_regression"."dbt_marts"."order_facts")
  );
alter table "contrib_regression"."dbt_marts"."order_facts"

            
               add column "note" text
            ,

            
                drop column "amount"
            
;
ROLLBACK;
-- sync_all_columns with only an added column: runs
BEGIN;

  create temporary table "order_facts__dbt_tmp051702000001"
  
  
    as
  
  (
    select order_id, customer_id, amount, status, 'x'::text as note from dbt_src.orders where order_id > (select max(order_id) from "contrib_regression"."dbt_marts"."order_facts")
  );
alter table "contrib_regression"."dbt_marts"."order_facts"

            
               add column "note" text
            
;
    insert into "contrib_regression"."dbt_marts"."order_facts" ("order_id", "customer_id", "amount", "status", "note")
    (
        select "order_id", "customer_id", "amount", "status", "note"
        from "order_facts__dbt_tmp051702000001"
    )
;
COMMIT;
-- sync_all_columns with a column retyped (default__alter_column_type): the
-- drop ... cascade of the old column is judged as a drop, and stopped
BEGIN;
    alter table "contrib_regression"."dbt_marts"."order_facts" add column "status__dbt_alter" character varying(10);
    update "contrib_regression"."dbt_marts"."order_facts" set "status__dbt_alter" = "status";
    alter table "contrib_regression"."dbt_marts"."order_facts" drop column "status" cascade;
    alter table "contrib_regression"."dbt_marts"."order_facts" rename column "status__dbt_alter" to "status";
ROLLBACK;
SELECT * FROM dbt_marts.analyst_amounts ORDER BY customer_id, amount;
SELECT version, event, summary FROM elt.schema_history WHERE table_name = 'order_facts' ORDER BY version;
DELETE FROM dbt_src.orders WHERE order_id = 3;

-- the approval pattern of docs/tools/dbt.md: the model's pre-hook opens an
-- approved migration in the model's transaction, its post-hook closes it;
-- the incompatible rebuild runs, and its backup's drop after the commit too
SET client_min_messages = warning;  -- the NOTICEs name the migration's id
BEGIN;
select elt.migration_begin('drop customer_revenue.orders', 'orders moved to a model of its own', 'dbt_lead') > 0 AS migration;
DROP VIEW dbt_marts.analyst_top CASCADE;  -- the analyst agreed to move off the column
  create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
    as
  (
    select customer_id, sum(amount)::float8 as revenue from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
select elt.migration_end() > 0 AS ended;
COMMIT;
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue__dbt_backup" cascade;
SELECT * FROM dbt_marts.customer_revenue ORDER BY customer_id;
RESET client_min_messages;
SELECT count(*) AS approved FROM elt.schema_changes WHERE statement LIKE '%customer_revenue%' AND migration_id IS NOT NULL;
-- the model's whole history, one table: the approved rebuild is its last
-- version, a retyped column and dropped ones
SELECT h.version, h.event, replace(h.summary, current_user, 'CURRENT_USER') AS summary, (SELECT s.migration_id IS NOT NULL FROM elt.schema_versions s WHERE s.table_id = h.table_id AND s.version = h.version) AS approved FROM elt.schema_history h WHERE table_name LIKE 'customer_revenue%' ORDER BY table_id, version;
SELECT valid FROM elt.audit_verify();
SELECT elt.approver_remove('dbt_lead');

-- findings reach the dbt user where it looks: under warn, the builder's
-- incompatible rebuild runs with WARNINGs that dbt's log buries; the builder
-- finds them in elt.my_findings, a role that owns nothing and ran nothing
-- sees none of them there (a superuser sees every role's)
SELECT elt.govern('dbt_marts', 'warn') >= 0 AS governed;
ALTER TABLE dbt_marts.customer_revenue OWNER TO dbt_builder;
SET ROLE dbt_builder;
BEGIN;
create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
    as
  (
    select customer_id from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
COMMIT;
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue__dbt_backup" cascade;
SELECT role, rule, class, decision, policy, object, command_tag, migration,
       statement LIKE '%customer_revenue%' AS names_model, recorded_at <= now() AS recorded
FROM elt.my_findings ORDER BY change_id;
RESET ROLE;
SET ROLE dbt_nobody;
SELECT count(*) AS nobody_sees FROM elt.my_findings;
SELECT count(*) > 0 AS still_in_schema_changes FROM elt.schema_changes WHERE role = 'dbt_builder' AND class <> 'safe';
RESET ROLE;
SET ROLE dbt_analyst;
SELECT count(*) AS analyst_sees FROM elt.my_findings WHERE role = 'dbt_builder';
RESET ROLE;
SELECT count(*) > 0 AS superuser_sees FROM elt.my_findings WHERE role = 'dbt_builder';
-- a member of the builder sees the builder's
GRANT dbt_builder TO dbt_analyst;
SET ROLE dbt_analyst;
SELECT count(*) > 0 AS member_sees FROM elt.my_findings WHERE role = 'dbt_builder';
RESET ROLE;
REVOKE dbt_builder FROM dbt_analyst;

-- snapshot models (snapshot.sql, helpers.sql, strategies.sql in
-- dbt-adapters/src/dbt/include/global_project/macros/materializations/snapshots,
-- postgres__snapshot_merge_sql in
-- dbt-postgres/src/dbt/include/postgres/macros/materializations/snapshot_merge.sql):
-- first run builds the table in place (create_table_as, no rename), later
-- runs stage the changes in a temporary table, close the changed rows
-- (update of dbt_valid_to) and insert their new versions
CREATE TABLE dbt_src.customers (id int PRIMARY KEY, name text, updated_at timestamp);
INSERT INTO dbt_src.customers VALUES (1, 'Ann', '2026-01-01'), (2, 'Bob', '2026-01-01');
-- strategy timestamp, first run
BEGIN;

  create  table "contrib_regression"."dbt_marts"."customers_snap"
  
  
    as
  
  (
    

    select *,
        md5(coalesce(cast(id as varchar ), '')
         || '|' || coalesce(cast(updated_at as varchar ), '')
        ) as dbt_scd_id,
        updated_at as dbt_updated_at,
        updated_at as dbt_valid_from,
        
  
  coalesce(nullif(updated_at, updated_at), null)
  as dbt_valid_to
from (
        select * from dbt_src.customers
    ) sbq



  );
COMMIT;
-- strategy check (check_cols: ['name']), first run
BEGIN;
  create  table "contrib_regression"."dbt_marts"."customers_check_snap"
    as
  (
    select *,
        md5(coalesce(cast(id as varchar ), '')
         || '|' || coalesce(cast(now()::timestamp without time zone as varchar ), '')
        ) as dbt_scd_id,
        now()::timestamp without time zone as dbt_updated_at,
        now()::timestamp without time zone as dbt_valid_from,
  coalesce(nullif(now()::timestamp without time zone, now()::timestamp without time zone), null)
  as dbt_valid_to
from (
        select * from dbt_src.customers
    ) sbq
  );
COMMIT;
-- an analyst's view on the snapshot (current rows)
GRANT SELECT ON dbt_marts.customers_snap TO dbt_analyst;
SET ROLE dbt_analyst;
CREATE VIEW dbt_marts.analyst_customers_now AS
  SELECT id, name FROM dbt_marts.customers_snap WHERE dbt_valid_to IS NULL;
RESET ROLE;
-- the source changes: Ann renamed, Carl new
UPDATE dbt_src.customers SET name = 'Anne', updated_at = '2026-02-01' WHERE id = 1;
INSERT INTO dbt_src.customers VALUES (3, 'Carl', '2026-02-01');
-- strategy timestamp, second run: the staging temp table
-- (build_snapshot_staging_table; postgres__make_temp_relation), then the merge
BEGIN;
  create temporary table "customers_snap__dbt_tmp053519000000"
  
  
    as
  
  (
    with snapshot_query as (
        select * from dbt_src.customers
    ),
    snapshotted_data as (
        select *, id as dbt_unique_key
        from "contrib_regression"."dbt_marts"."customers_snap"
        where
                dbt_valid_to is null
    ),
    insertions_source_data as (
        select *, id as dbt_unique_key,
            updated_at as dbt_updated_at,
            updated_at as dbt_valid_from,
  coalesce(nullif(updated_at, updated_at), null)
  as dbt_valid_to,
            md5(coalesce(cast(id as varchar ), '')
         || '|' || coalesce(cast(updated_at as varchar ), '')
        ) as dbt_scd_id
        from snapshot_query
    ),
    updates_source_data as (
        select *, id as dbt_unique_key,
            updated_at as dbt_updated_at,
            updated_at as dbt_valid_from,
            updated_at as dbt_valid_to
        from snapshot_query
    ),
    insertions as (
        select
            'insert' as dbt_change_type,
            source_data.*
        from insertions_source_data as source_data
        left outer join snapshotted_data
            on snapshotted_data.dbt_unique_key = source_data.dbt_unique_key
            where snapshotted_data.dbt_unique_key is null
            or (snapshotted_data.dbt_unique_key is not null and (
               (snapshotted_data.dbt_valid_from < source_data.updated_at)
            )
        )
    ),
    updates as (
        select
            'update' as dbt_change_type,
            source_data.*,
            snapshotted_data.dbt_scd_id
        from updates_source_data as source_data
        join snapshotted_data
            on snapshotted_data.dbt_unique_key = source_data.dbt_unique_key
        where (
            (snapshotted_data.dbt_valid_from < source_data.updated_at)
        )
    )
    select * from insertions
    union all
    select * from updates
  );

    update "contrib_regression"."dbt_marts"."customers_snap"
    set dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to
    from "customers_snap__dbt_tmp053519000000" as DBT_INTERNAL_SOURCE
    where DBT_INTERNAL_SOURCE.dbt_scd_id::text = "contrib_regression"."dbt_marts"."customers_snap".dbt_scd_id::text
      and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)
        and "contrib_regression"."dbt_marts"."customers_snap".dbt_valid_to is null;

    insert into "contrib_regression"."dbt_marts"."customers_snap" ("id", "name", "updated_at", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_scd_id")
    select DBT_INTERNAL_SOURCE."id",DBT_INTERNAL_SOURCE."name",DBT_INTERNAL_SOURCE."updated_at",DBT_INTERNAL_SOURCE."dbt_updated_at",DBT_INTERNAL_SOURCE."dbt_valid_from",DBT_INTERNAL_SOURCE."dbt_valid_to",DBT_INTERNAL_SOURCE."dbt_scd_id"
    from "customers_snap__dbt_tmp053519000000" as DBT_INTERNAL_SOURCE
    where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'::text;
COMMIT;
-- strategy check, second run: row_changed compares the check columns
BEGIN;
  create temporary table "customers_check_snap__dbt_tmp053519000001"
    as
  (
    with snapshot_query as (
        select * from dbt_src.customers
    ),
    snapshotted_data as (
        select *, id as dbt_unique_key
        from "contrib_regression"."dbt_marts"."customers_check_snap"
        where
                dbt_valid_to is null
    ),
    insertions_source_data as (
        select *, id as dbt_unique_key,
            now()::timestamp without time zone as dbt_updated_at,
            now()::timestamp without time zone as dbt_valid_from,
  coalesce(nullif(now()::timestamp without time zone, now()::timestamp without time zone), null)
  as dbt_valid_to,
            md5(coalesce(cast(id as varchar ), '')
         || '|' || coalesce(cast(now()::timestamp without time zone as varchar ), '')
        ) as dbt_scd_id
        from snapshot_query
    ),
    updates_source_data as (
        select *, id as dbt_unique_key,
            now()::timestamp without time zone as dbt_updated_at,
            now()::timestamp without time zone as dbt_valid_from,
            now()::timestamp without time zone as dbt_valid_to
        from snapshot_query
    ),
    insertions as (
        select
            'insert' as dbt_change_type,
            source_data.*
        from insertions_source_data as source_data
        left outer join snapshotted_data
            on snapshotted_data.dbt_unique_key = source_data.dbt_unique_key
            where snapshotted_data.dbt_unique_key is null
            or (snapshotted_data.dbt_unique_key is not null and (
               (snapshotted_data."name" != source_data."name"
        or
        (
            ((snapshotted_data."name" is null) and not (source_data."name" is null))
            or
            ((not snapshotted_data."name" is null) and (source_data."name" is null))
        ))
            )
        )
    ),
    updates as (
        select
            'update' as dbt_change_type,
            source_data.*,
            snapshotted_data.dbt_scd_id
        from updates_source_data as source_data
        join snapshotted_data
            on snapshotted_data.dbt_unique_key = source_data.dbt_unique_key
        where (
            (snapshotted_data."name" != source_data."name"
        or
        (
            ((snapshotted_data."name" is null) and not (source_data."name" is null))
            or
            ((not snapshotted_data."name" is null) and (source_data."name" is null))
        ))
        )
    )
    select * from insertions
    union all
    select * from updates
  );
    update "contrib_regression"."dbt_marts"."customers_check_snap"
    set dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to
    from "customers_check_snap__dbt_tmp053519000001" as DBT_INTERNAL_SOURCE
    where DBT_INTERNAL_SOURCE.dbt_scd_id::text = "contrib_regression"."dbt_marts"."customers_check_snap".dbt_scd_id::text
      and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)
        and "contrib_regression"."dbt_marts"."customers_check_snap".dbt_valid_to is null;
    insert into "contrib_regression"."dbt_marts"."customers_check_snap" ("id", "name", "updated_at", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_scd_id")
    select DBT_INTERNAL_SOURCE."id",DBT_INTERNAL_SOURCE."name",DBT_INTERNAL_SOURCE."updated_at",DBT_INTERNAL_SOURCE."dbt_updated_at",DBT_INTERNAL_SOURCE."dbt_valid_from",DBT_INTERNAL_SOURCE."dbt_valid_to",DBT_INTERNAL_SOURCE."dbt_scd_id"
    from "customers_check_snap__dbt_tmp053519000001" as DBT_INTERNAL_SOURCE
    where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'::text;
COMMIT;
-- the history reads: Ann closed at Anne's updated_at, Anne and Carl current
SELECT id, name, dbt_valid_from, dbt_valid_to FROM dbt_marts.customers_snap ORDER BY id, dbt_valid_from;
SELECT id, name, dbt_valid_to IS NULL AS current FROM dbt_marts.customers_check_snap ORDER BY id, dbt_valid_from, name;
-- a source column added: the next run adds it to the snapshot table
-- (create_columns: alter table ... add column), then merges
ALTER TABLE dbt_src.customers ADD COLUMN tier text;
UPDATE dbt_src.customers SET tier = 'gold', updated_at = '2026-03-01' WHERE id = 2;
BEGIN;
  create temporary table "customers_snap__dbt_tmp053519000002"
    as
  (
    with snapshot_query as (
        select * from dbt_src.customers
    ),
    snapshotted_data as (
        select *, id as dbt_unique_key
        from "contrib_regression"."dbt_marts"."customers_snap"
        where
                dbt_valid_to is null
    ),
    insertions_source_data as (
        select *, id as dbt_unique_key,
            updated_at as dbt_updated_at,
            updated_at as dbt_valid_from,
  coalesce(nullif(updated_at, updated_at), null)
  as dbt_valid_to,
            md5(coalesce(cast(id as varchar ), '')
         || '|' || coalesce(cast(updated_at as varchar ), '')
        ) as dbt_scd_id
        from snapshot_query
    ),
    updates_source_data as (
        select *, id as dbt_unique_key,
            updated_at as dbt_updated_at,
            updated_at as dbt_valid_from,
            updated_at as dbt_valid_to
        from snapshot_query
    ),
    insertions as (
        select
            'insert' as dbt_change_type,
            source_data.*
        from insertions_source_data as source_data
        left outer join snapshotted_data
            on snapshotted_data.dbt_unique_key = source_data.dbt_unique_key
            where snapshotted_data.dbt_unique_key is null
            or (snapshotted_data.dbt_unique_key is not null and (
               (snapshotted_data.dbt_valid_from < source_data.updated_at)
            )
        )
    ),
    updates as (
        select
            'update' as dbt_change_type,
            source_data.*,
            snapshotted_data.dbt_scd_id
        from updates_source_data as source_data
        join snapshotted_data
            on snapshotted_data.dbt_unique_key = source_data.dbt_unique_key
        where (
            (snapshotted_data.dbt_valid_from < source_data.updated_at)
        )
    )
    select * from insertions
    union all
    select * from updates
  );
      alter table "contrib_regression"."dbt_marts"."customers_snap" add column "tier" text;
    update "contrib_regression"."dbt_marts"."customers_snap"
    set dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to
    from "customers_snap__dbt_tmp053519000002" as DBT_INTERNAL_SOURCE
    where DBT_INTERNAL_SOURCE.dbt_scd_id::text = "contrib_regression"."dbt_marts"."customers_snap".dbt_scd_id::text
      and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)
        and "contrib_regression"."dbt_marts"."customers_snap".dbt_valid_to is null;
    insert into "contrib_regression"."dbt_marts"."customers_snap" ("id", "name", "updated_at", "tier", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_scd_id")
    select DBT_INTERNAL_SOURCE."id",DBT_INTERNAL_SOURCE."name",DBT_INTERNAL_SOURCE."updated_at",DBT_INTERNAL_SOURCE."tier",DBT_INTERNAL_SOURCE."dbt_updated_at",DBT_INTERNAL_SOURCE."dbt_valid_from",DBT_INTERNAL_SOURCE."dbt_valid_to",DBT_INTERNAL_SOURCE."dbt_scd_id"
    from "customers_snap__dbt_tmp053519000002" as DBT_INTERNAL_SOURCE
    where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'::text;
COMMIT;
SELECT id, name, tier, dbt_valid_from, dbt_valid_to FROM dbt_marts.customers_snap ORDER BY id, dbt_valid_from;
-- one history for the snapshot table: created, then the added column
SELECT table_name, version, event, summary FROM elt.schema_history WHERE table_name = 'customers_snap' ORDER BY version;
-- the staging temporary tables have no history
SELECT count(*) AS staging_tracked FROM elt.tracked_tables WHERE table_name LIKE '%dbt_tmp0535%';
-- the analyst's view survives and reads the current rows
SELECT c.oid IS NOT NULL AS view_kept FROM pg_class c WHERE c.oid = 'dbt_marts.analyst_customers_now'::regclass;
SET ROLE dbt_analyst;
SELECT * FROM dbt_marts.analyst_customers_now ORDER BY id;
RESET ROLE;

-- a model governed on its own as a table target, its schema not governed:
-- a compatible table.sql rebuild keeps one history and the target follows
-- the rebuilt relation
CREATE SCHEMA dbt_solo;
CREATE TABLE dbt_solo.m AS SELECT customer_id, sum(amount) AS revenue FROM dbt_src.orders GROUP BY customer_id;
SELECT elt.govern('dbt_solo.m', 'enforce');
BEGIN;
  create  table "contrib_regression"."dbt_solo"."m__dbt_tmp"
    as
  (
    select customer_id, sum(amount) as revenue, count(*) as orders from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_solo"."m" rename to "m__dbt_backup";
alter table "contrib_regression"."dbt_solo"."m__dbt_tmp" rename to "m";
COMMIT;
drop table if exists "contrib_regression"."dbt_solo"."m__dbt_backup" cascade;
SELECT kind, target, policy, tables FROM elt.governed WHERE target LIKE 'dbt_solo.%';
SELECT count(*) AS targets_on_new_relation FROM elt.governed_targets WHERE rel = 'dbt_solo.m'::regclass;
SELECT dense_rank() OVER (ORDER BY table_id) AS history, table_name, version, event, summary FROM elt.schema_history WHERE schema_name = 'dbt_solo' ORDER BY table_id, version;
-- an incompatible rebuild of it is stopped at the rename in
BEGIN;
  create  table "contrib_regression"."dbt_solo"."m__dbt_tmp"
    as
  (
    select customer_id, sum(amount) as revenue from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_solo"."m" rename to "m__dbt_backup";
alter table "contrib_regression"."dbt_solo"."m__dbt_tmp" rename to "m";
COMMIT;
SELECT kind, target FROM elt.governed WHERE target LIKE 'dbt_solo.%';
-- still enforced on the rebuilt relation: a breaking change is stopped
ALTER TABLE dbt_solo.m DROP COLUMN orders;
SELECT elt.ungovern('dbt_solo.m');
DROP SCHEMA dbt_solo CASCADE;

-- cleanup
SELECT elt.ungovern('dbt_marts');
DROP SCHEMA dbt_marts CASCADE;
DROP SCHEMA dbt_src CASCADE;
DROP SCHEMA dbt_analyst_priv CASCADE;
DROP ROLE dbt_analyst;
DROP ROLE dbt_reader;
DROP ROLE dbt_nobody;
DROP ROLE dbt_builder;
