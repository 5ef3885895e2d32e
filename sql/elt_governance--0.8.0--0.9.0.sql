-- elt_governance 0.8.0 -> 0.9.0: contracts that are right more often than
-- any linter (a transaction model for scripts, the rebuild commands,
-- size-aware hazards).
-- sql/elt_governance--0.9.0.sql is the same schema as one full script; every
-- change here is also made there (test/t/004_upgrade.pl compares them).

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.9.0'" to load this file. \quit

-- --------------------------------------------------------------------------
-- Contracts: the advice class (EG208, a lock taken with no lock_timeout,
-- never blocks) and check_ddl(sql, single_transaction) for scripts that a
-- migration tool runs as one transaction (issue 21)
-- --------------------------------------------------------------------------
ALTER TABLE elt.schema_changes DROP CONSTRAINT schema_changes_class_check,
    ADD CONSTRAINT schema_changes_class_check
        CHECK (class IN ('safe', 'breaking', 'lock_hazard', 'advice'));

DROP FUNCTION elt.check_ddl(text);
CREATE FUNCTION elt.check_ddl(sql text, single_transaction boolean DEFAULT false,
    OUT statement_no integer, OUT statement text, OUT rule text,
    OUT class text, OUT object text, OUT reason text, OUT dependents text[],
    OUT suggestion text)
    RETURNS SETOF record
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'elt_check_ddl';
