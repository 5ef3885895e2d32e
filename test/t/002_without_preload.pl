# The extension works without shared_preload_libraries: CREATE EXTENSION,
# governing and version capture load the library on demand.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;

is($node->safe_psql('postgres', q{SHOW shared_preload_libraries}), '', 'library not preloaded');
$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA s;
CREATE TABLE s.t (id int);
SELECT elt.govern('s');
});

# a new session whose first statement is DDL loads the library in the event trigger
$node->safe_psql('postgres', 'ALTER TABLE s.t ADD COLUMN a int');
$node->safe_psql('postgres', 'ALTER TABLE s.t ADD COLUMN b int; ALTER TABLE s.t ADD COLUMN c int;');
is($node->safe_psql('postgres',
		q{SELECT string_agg(version || ':' || coalesce(command_tag, ''), ',' ORDER BY version) FROM elt.schema_versions}),
	'1:,2:ALTER TABLE,3:ALTER TABLE,4:ALTER TABLE', 'one version per DDL statement');
is($node->safe_psql('postgres', q{SELECT statement FROM elt.schema_versions WHERE version = 2}),
	'ALTER TABLE s.t ADD COLUMN a int', 'statement text recorded');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'audit chain verifies');
# govern, a baseline, then per ALTER its classification and its version
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.audit_log}), '8', 'one audit row per action');

# contracts are enforced by the event trigger, which loads the library
my ($ret, $out, $err) = $node->psql('postgres', 'ALTER TABLE s.t DROP COLUMN a');
isnt($ret, 0, 'a breaking change is blocked without preload');
like($err, qr/EG104/, 'with its rule code');

# TRUNCATE fires no event trigger: without preload it is caught only in a
# session that has loaded the library
($ret, $out, $err) = $node->psql('postgres', 'TRUNCATE s.t');
is($ret, 0, 'TRUNCATE in a session that never loaded the library is not seen');
($ret, $out, $err) = $node->psql('postgres', q{LOAD 'elt_governance'; TRUNCATE s.t});
isnt($ret, 0, 'TRUNCATE is blocked once the library is loaded');
like($err, qr/EG118/, 'with its rule code');

$node->stop;
done_testing();
