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
-- what the history holds today: each build is a table of its own (the old one dropped)
SELECT table_name, version, event FROM elt.schema_history WHERE table_name LIKE 'customer_revenue%' ORDER BY table_id, version;

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

-- an analyst's own view on the model: the rebuild is stopped at the rename,
-- before the drop ... cascade could take the view with the backup
CREATE VIEW dbt_marts.analyst_top AS SELECT customer_id FROM dbt_marts.customer_revenue WHERE revenue > 6;
BEGIN;
create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
    as
  (
    select customer_id, sum(amount) as revenue, count(*) as orders from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
ROLLBACK;
SELECT * FROM dbt_marts.analyst_top;
-- a plain drop of a model is still judged (the swap retires only its backup)
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue" cascade;

-- the approval pattern of docs/tools/dbt.md: the model's pre-hook opens an
-- approved migration in the model's transaction, its post-hook closes it;
-- the incompatible rebuild runs, and its backup's drop after the commit too
SELECT elt.approver_add('dbt_lead');
SET client_min_messages = warning;  -- the NOTICEs name the migration's id
BEGIN;
select elt.migration_begin('drop customer_revenue.orders', 'orders moved to a model of its own', 'dbt_lead') > 0 AS migration;
DROP VIEW dbt_marts.analyst_top;  -- the analyst agreed to move off the column
  create  table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp"
    as
  (
    select customer_id, sum(amount) as revenue from dbt_src.orders group by customer_id
  );
alter table "contrib_regression"."dbt_marts"."customer_revenue" rename to "customer_revenue__dbt_backup";
alter table "contrib_regression"."dbt_marts"."customer_revenue__dbt_tmp" rename to "customer_revenue";
select elt.migration_end() > 0 AS ended;
COMMIT;
drop table if exists "contrib_regression"."dbt_marts"."customer_revenue__dbt_backup" cascade;
SELECT * FROM dbt_marts.customer_revenue ORDER BY customer_id;
RESET client_min_messages;
SELECT count(*) AS approved FROM elt.schema_changes WHERE statement LIKE '%customer_revenue%' AND migration_id IS NOT NULL;
SELECT elt.approver_remove('dbt_lead');

-- cleanup
SELECT elt.ungovern('dbt_marts');
DROP SCHEMA dbt_marts CASCADE;
DROP SCHEMA dbt_src CASCADE;
