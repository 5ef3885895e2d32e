-- elt_governance 0.6.0 -> 0.7.0: least privilege — a role model, catalog
-- views that show each role what it may read, and every engine's code run
-- as the role that owns it.

\echo Use "ALTER EXTENSION elt_governance UPDATE TO '0.7.0'" to load this file. \quit
