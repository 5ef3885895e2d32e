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
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.audit_log}), '5', 'one audit row per action');

$node->stop;
done_testing();
