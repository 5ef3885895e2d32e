-- elt_governance 0.7.0 -> 0.8.0: working with the tools warehouses already
-- run (dbt, pg_partman, pg_repack, sqitch, Alembic, pg_cron, pg_dump).
-- sql/elt_governance--0.8.0.sql is the same schema as one full script; every
-- change here is also made there (test/t/004_upgrade.pl compares them).

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.8.0'" to load this file. \quit
