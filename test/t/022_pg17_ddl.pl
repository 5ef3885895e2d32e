# DDL that PostgreSQL 17 added, as the contracts see it: ALTER COLUMN ...
# SET EXPRESSION AS (...) gives a generated column new values (EG123,
# breaking, with the views that read the column as dependents) and, for a
# stored column, rewrites the table under ACCESS EXCLUSIVE (EG209, on a large
# table only).  A login event trigger of another role that calls the
# extension's API works, and the extension's own event triggers do not fire
# at login.  Runs on 17 and later (make test PG_MAJOR=17 or 18).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pg17_ddl');
plan skip_all => 'SET EXPRESSION and login event triggers are PostgreSQL 17 DDL (make test PG_MAJOR=17)'
  if $node->pg_version < 17;
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'\nlc_messages = 'C'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA g;
CREATE TABLE g.t (id int PRIMARY KEY, a int, s int GENERATED ALWAYS AS (a * 2) STORED);
INSERT INTO g.t (id, a) SELECT x, x FROM generate_series(1, 100) x;
ANALYZE g.t;
CREATE VIEW g.v AS SELECT id, s FROM g.t;
SELECT elt.govern('g', 'enforce', 'generated columns');
});

# check_ddl: statement_no|rule|class|object|dependents, one line each;
# the advice EG208 (no lock_timeout) is left out
sub findings
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', qq{
SELECT coalesce(string_agg(statement_no || '|' || rule || '|' || class || '|' || object || '|' ||
                           coalesce(array_to_string(dependents, ','), ''), E'\\n'
                           ORDER BY statement_no, rule), '')
FROM elt.check_ddl(\$x\$$sql\$x\$) WHERE rule <> 'EG208'});
}

my $set = 'ALTER TABLE g.t ALTER COLUMN s SET EXPRESSION AS (a * 3)';
is(findings($set), '1|EG123|breaking|g.t.s|view g.v',
	'SET EXPRESSION on a small table: EG123 with the view that reads it');
$node->safe_psql('postgres', 'SET elt.large_table_rows = 10; ALTER SYSTEM SET elt.large_table_rows = 10; SELECT pg_reload_conf()');
is(findings($set), "1|EG123|breaking|g.t.s|view g.v\n1|EG209|lock_hazard|g.t.s|",
	'on a large table the rewrite is EG209 too');
like($node->safe_psql('postgres', "SELECT reason FROM elt.check_ddl(\$x\$$set\$x\$) WHERE rule = 'EG209'"),
	qr/SET EXPRESSION of stored generated column g\.t\.s recomputes every row/,
	'EG209 names SET EXPRESSION');
is(findings('ALTER TABLE g.t ALTER COLUMN a SET EXPRESSION AS (id)'), '',
	'a column that is not generated: PostgreSQL refuses it, nothing to judge');
is(findings('ALTER TABLE g.t ALTER COLUMN nope SET EXPRESSION AS (id)'),
	'1|EG001|error|g.t.nope|', 'a missing column: EG001');
is(findings('ALTER TABLE g.t ADD COLUMN n int GENERATED ALWAYS AS (a) STORED; ALTER TABLE g.t ALTER COLUMN n SET EXPRESSION AS (a + 1)'),
	'1|EG202|lock_hazard|g.t.n|', 'a column the script added has no readers yet: only its EG202');

# live, under enforce: blocked with EG123
my ($rc, $out, $err) = $node->psql('postgres', $set);
isnt($rc, 0, 'SET EXPRESSION is refused under enforce');
like($err, qr/EG123/, 'as EG123');
is($node->safe_psql('postgres', 'SELECT sum(s) FROM g.t'), '10100', 'the values are unchanged');

# in an approved migration it runs, and the version records the new expression
$node->safe_psql('postgres', "SET elt.enabled = off; $set");
$node->safe_psql('postgres', 'ALTER TABLE g.t ADD COLUMN w int');
is($node->safe_psql('postgres', q{
SELECT c->>'generated' FROM elt.schema_versions v, jsonb_array_elements(v.shape->'columns') c
WHERE v.table_name = 't' AND c->>'name' = 's' ORDER BY v.version DESC LIMIT 1}),
	'(a * 3)', 'the recorded shape has the new expression');

# login event triggers (17): ours do not fire at login; another role's
# login trigger may call the extension's API
$node->safe_psql('postgres', q{
CREATE TABLE public.logins (who text, governed int);
CREATE FUNCTION public.on_login() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE login_scratch (x int);  -- DDL at login passes our ddl_command_start
  INSERT INTO public.logins SELECT current_user, count(*)
  FROM elt.check_ddl('ALTER TABLE g.t DROP COLUMN a') WHERE rule = 'EG104';
END $$;
CREATE EVENT TRIGGER on_login ON login EXECUTE FUNCTION public.on_login();
});
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'a session logs in with a login trigger calling elt');
is($node->safe_psql('postgres', 'SELECT max(governed) FROM public.logins'), '1',
	'the login trigger ran DDL and elt.check_ddl');
is($node->safe_psql('postgres', q{SELECT string_agg(evtevent, ',' ORDER BY evtevent) FROM pg_event_trigger
WHERE evtname LIKE 'elt%'}) !~ /login/ ? 'none' : 'some', 'none',
	'the extension has no login event trigger');
$node->safe_psql('postgres', 'DROP EVENT TRIGGER on_login');

# 17's event_triggers = off (superuser only) stops every event trigger,
# ours too: DDL then goes unjudged and unrecorded, as with elt.enabled =
# off.  A known gap (docs/design.md, Upgrading PostgreSQL), pinned here so
# that a change is noticed.
$node->safe_psql('postgres', 'SET event_triggers = off; ALTER TABLE g.t DROP COLUMN w');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'g.t'::regclass AND attname = 'w'}),
	'0', 'with event_triggers = off a breaking change is not blocked (known gap)');
is($node->safe_psql('postgres', 'SELECT valid FROM elt.audit_verify()'), 't', 'the chain verifies');

$node->stop;
done_testing();
