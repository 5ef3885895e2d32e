# ALTER EXTENSION elt_governance UPDATE from 0.1.0, step by step to the
# default version, keeps the history and the audit chain; the contracts
# start to apply at 0.2.0, backfills at 0.3.0, transforms at 0.4.0 and
# checksums at 0.5.0; the 0.2.0 library also runs a 0.1.0 catalog (capture
# only) until the update.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance VERSION '0.1.0';
CREATE SCHEMA s;
CREATE TABLE s.t (id int PRIMARY KEY, a int, b int);
SELECT elt.govern('s');
ALTER TABLE s.t ADD COLUMN c int;
});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.1.0', 'installed at 0.1.0');

# with the 0.1.0 catalog, the library records versions and judges nothing
$node->safe_psql('postgres', 'ALTER TABLE s.t DROP COLUMN b');
is($node->safe_psql('postgres', q{SELECT string_agg(version::text, ',' ORDER BY version) FROM elt.schema_versions}),
	'1,2,3', 'versions recorded before the update');

$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.2.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.2.0', 'updated to 0.2.0');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't',
	'the audit chain verifies after the update');

my ($ret, $out, $err) = $node->psql('postgres', 'ALTER TABLE s.t DROP COLUMN a');
isnt($ret, 0, 'a breaking change is blocked after the update');
like($err, qr/EG104/, 'with its rule code');

$node->safe_psql('postgres', q{
SELECT elt.approver_add('cto');
SELECT elt.migration_begin('drop a', 'unused', 'cto');
ALTER TABLE s.t DROP COLUMN a;
SELECT elt.migration_end();
});
is($node->safe_psql('postgres',
		q{SELECT string_agg(version || ':' || coalesce(migration_id::text, '-'), ',' ORDER BY version) FROM elt.schema_versions}),
	'1:-,2:-,3:-,4:1', 'history continues, the new version in its migration');
is($node->safe_psql('postgres', q{SELECT rule || ':' || decision FROM elt.schema_changes}),
	'EG104:approved', 'the approved change is recorded');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain still verifies');

# 0.2.0 -> 0.3.0: backfills
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.3.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.3.0', 'updated to 0.3.0');
$node->safe_psql('postgres', q{
SELECT elt.backfill_create('fill_c', 's.t', 'UPDATE s.t SET c = id WHERE id >= $1 AND id < $2');
INSERT INTO s.t (id) SELECT generate_series(1, 100);
});
$node->safe_psql('postgres', q{CALL elt.backfill_run('fill_c')});
is($node->safe_psql('postgres', q{SELECT state || ':' || rows_done FROM elt.backfill_status}),
	'finished:100', 'a backfill runs after the update');
is($node->safe_psql('postgres', q{SELECT count(*) FROM s.t WHERE c = id}), '100', 'and did its work');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain verifies at 0.3.0');

# 0.3.0 -> 0.4.0: transforms and row lineage
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.4.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.4.0', 'updated to 0.4.0');
$node->safe_psql('postgres', q{
CREATE TABLE s.c_totals (c int PRIMARY KEY, n bigint);
SELECT elt.transform_create('c_totals', 's.c_totals', 'SELECT c, count(*) AS n FROM s.t GROUP BY c');
SELECT elt.transform_run('c_totals');
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.trace('s.c_totals', '7')}), '1',
	'a transform runs and is traced after the update');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.backfill_status WHERE state = 'finished'}), '1',
	'the backfill is still there');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain verifies at 0.4.0');

# 0.4.0 -> 0.5.0: environment fingerprint and table checksums
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.5.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.5.0', 'updated to 0.5.0');
like($node->safe_psql('postgres', q{SELECT elt.table_checksum('s.c_totals')}), qr/^v1:\d+:[0-9a-f]{32}$/,
	'a table checksum after the update');
is($node->safe_psql('postgres', q{SELECT elt.env_fingerprint() ? 'id'}), 't', 'a fingerprint after the update');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.trace('s.c_totals', '7')}), '1',
	'lineage is still traced');

# 0.5.0 -> 0.6.0: blue-green deployments and quality checks
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.6.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.6.0', 'updated to 0.6.0');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.deployments}), '0', 'deployments after the update');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.check_run('s')}), '0', 'checks after the update');
# the snapshot schema as 0.6.0 made it: usable only by the roles it granted
$node->safe_psql('postgres', q{CREATE SCHEMA elt_snapshots; REVOKE ALL ON SCHEMA elt_snapshots FROM PUBLIC});

# 0.6.0 -> 0.7.0: the role model and least privilege
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.7.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.7.0', 'updated to 0.7.0');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain verifies at 0.7.0');
is($node->safe_psql('postgres', q{SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'elt\_%'}),
	'elt_admin,elt_operator,elt_reader', 'the group roles exist after the update');
$node->safe_psql('postgres', q{CREATE ROLE nobody});
my ($rc, $stdout, $stderr) = $node->psql('postgres', q{SET ROLE nobody; SELECT count(*) FROM elt.audit_log});
like($stderr, qr/permission denied for table audit_log/, 'the audit log is no longer readable by PUBLIC');
is($node->safe_psql('postgres', q{SET ROLE nobody; SELECT count(*) > 0 FROM elt.audit_trail WHERE details IS NULL}),
	't', 'elt.audit_trail shows every row, without the details of others\' runs');
is($node->safe_psql('postgres', q{SET ROLE nobody; SELECT valid FROM elt.audit_verify()}), 't',
	'any role may verify the chain');
is($node->safe_psql('postgres',
	q{SELECT has_schema_privilege('nobody', 'elt_snapshots', 'USAGE') || ':' || has_schema_privilege('nobody', 'elt_snapshots', 'CREATE')}),
	'true:false', 'every role may use the snapshot schema, so that no creation grants on it; none creates in it');

# a fresh install of the default version is the same catalog as an update
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION elt_governance');
my $objects = q{SELECT string_agg(pg_describe_object(classid, objid, 0), ',' ORDER BY 1)
	FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'elt_governance')};
is($node->safe_psql('fresh', $objects), $node->safe_psql('postgres', $objects),
	'a fresh install and an update have the same objects');

$node->stop;
done_testing();
