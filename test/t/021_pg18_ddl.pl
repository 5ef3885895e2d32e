# DDL that only PostgreSQL 18 has, as the contracts and the version recorder
# see it: a VIRTUAL generated column is computed when read, so adding one
# rewrites nothing (no EG202, unlike a STORED one) and is allowed under
# enforce; the recorded shape says the column is virtual ("virtual": true,
# absent for a stored one, so that shapes recorded before keep their text).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pg18_ddl');
plan skip_all => 'virtual generated columns are PostgreSQL 18 DDL (make test PG_MAJOR=18)'
  if $node->pg_version < 18;
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'\nlc_messages = 'C'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA g;
CREATE TABLE g.t (id int PRIMARY KEY, a int);
INSERT INTO g.t SELECT x, x FROM generate_series(1, 100) x;
SELECT elt.govern('g', 'enforce', 'generated columns');
});

# check_ddl: the rules each statement meets
sub rules
{
	my ($sql) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT coalesce(string_agg(rule, ',' ORDER BY rule), '') FROM elt.check_ddl(\$x\$$sql\$x\$)});
}
is(rules('ALTER TABLE g.t ADD COLUMN v int GENERATED ALWAYS AS (a * 2) VIRTUAL'), '',
	'a virtual generated column rewrites nothing: no finding');
like(rules('ALTER TABLE g.t ADD COLUMN s int GENERATED ALWAYS AS (a * 2) STORED'), qr/EG202/,
	'a stored one rewrites the table: EG202');

# under enforce: the virtual column is added and recorded as virtual
$node->safe_psql('postgres', q{ALTER TABLE g.t ADD COLUMN v int GENERATED ALWAYS AS (a * 2) VIRTUAL});
is($node->safe_psql('postgres', q{SELECT sum(v) FROM g.t}), '10100', 'the virtual column reads');
is($node->safe_psql('postgres', q{
SELECT c->>'generated' || '|' || coalesce(c->>'virtual', 'absent')
FROM elt.schema_versions v, jsonb_array_elements(v.shape->'columns') c
WHERE v.table_name = 't' AND c->>'name' = 'v' ORDER BY v.version DESC LIMIT 1}),
	'(a * 2)|true', 'the shape records the column as virtual');

my ($rc, $out, $err) = $node->psql('postgres',
	q{ALTER TABLE g.t ADD COLUMN s int GENERATED ALWAYS AS (a * 2) STORED});
isnt($rc, 0, 'a stored generated column is still refused under enforce');
like($err, qr/EG202/, 'as EG202');
$node->safe_psql('postgres', q{SET elt.enabled = off; ALTER TABLE g.t ADD COLUMN s int GENERATED ALWAYS AS (a * 2) STORED});
$node->safe_psql('postgres', q{ALTER TABLE g.t ADD COLUMN w int});
is($node->safe_psql('postgres', q{
SELECT coalesce(c->>'virtual', 'absent')
FROM elt.schema_versions v, jsonb_array_elements(v.shape->'columns') c
WHERE v.table_name = 't' AND c->>'name' = 's' ORDER BY v.version DESC LIMIT 1}),
	'absent', 'a stored one has no "virtual" key');
is($node->safe_psql('postgres', 'SELECT valid FROM elt.audit_verify()'), 't', 'the chain verifies');

$node->stop;
done_testing();
