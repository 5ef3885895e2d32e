# pg_upgrade from PostgreSQL 15 (Debian's) to the version under test (16,
# 17 or 18: make test PG_MAJOR=18) of a cluster with every engine in use: a
# governed schema under enforce with its history, a consumer and an approved
# migration, a backfill half done, a transform run with row and column
# lineage inside a pipeline run (its manifest and snapshot), a blue-green
# deployment with a candidate in a canary.  After the upgrade the audit chain
# verifies (and holds the digest taken before), everything reads as before,
# and every engine keeps working: the contract still blocks, the backfill
# finishes from its checkpoint, the transform runs again, the canary is
# stopped and the candidate promoted and rolled back.
#
# What a DBA does (docs/design.md, "Upgrading PostgreSQL"): install the same
# elt_governance version for both PostgreSQL versions, keep
# shared_preload_libraries = 'elt_governance' in the new cluster's
# configuration, stop the backfills' workers or let them be interrupted (the
# backfill resumes from its checkpoint), and run pg_upgrade with
# -O '-c elt.enabled=off' so that restoring the schema is not judged as DDL.
#
# ELT_UPGRADE_FROM: the installation prefix of the old PostgreSQL (default
# /usr/lib/postgresql/15); it needs elt_governance of the same version.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $old_prefix = $ENV{ELT_UPGRADE_FROM} // '/usr/lib/postgresql/15';
my $new = PostgreSQL::Test::Cluster->new('upgraded');
my $new_bindir = $new->config_data('--bindir');
my $new_share = $new->config_data('--sharedir');

plan skip_all => 'pg_upgrade from 15 runs when testing PostgreSQL 16 to 18 (make test PG_MAJOR=18)'
  if $new->pg_version < 16;
plan skip_all => "no PostgreSQL 15 installation at $old_prefix (set ELT_UPGRADE_FROM)"
  unless -x "$old_prefix/bin/pg_ctl";

# the same extension version on both sides
sub control_version
{
	my ($sharedir) = @_;
	open(my $fh, '<', "$sharedir/extension/elt_governance.control") or return undef;
	while (<$fh>) { return $1 if /^default_version\s*=\s*'([^']+)'/; }
	return undef;
}
my $old_share = `$old_prefix/bin/pg_config --sharedir`;
chomp $old_share;
my $old_version = control_version($old_share);
my $new_version = control_version($new_share);
plan skip_all => "elt_governance is not installed for PostgreSQL 15 at $old_prefix "
  . '(make install PG_CONFIG=.../15/bin/pg_config first)'
  unless defined $old_version;
plan skip_all => "elt_governance $old_version is installed for PostgreSQL 15 but $new_version here: install the same version for both"
  unless $old_version eq $new_version;

my $old = PostgreSQL::Test::Cluster->new('old15', install_path => $old_prefix);
$old->init(extra => [ '--locale=C', '--encoding=UTF8' ]);
$old->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'\nlc_messages = 'C'");
$old->start;

$old->safe_psql('postgres', q{
CREATE ROLE etl SUPERUSER LOGIN;
CREATE ROLE analyst_beta LOGIN;
CREATE ROLE analyst_other LOGIN;
CREATE DATABASE wh OWNER etl;
});
$old->safe_psql('wh', q{
SET ROLE etl;
CREATE EXTENSION elt_governance;
CREATE SCHEMA analytics;
CREATE TABLE analytics.customers (customer_id int PRIMARY KEY, name text, region text);
INSERT INTO analytics.customers SELECT g, 'c' || g, 'r' || (g % 3) FROM generate_series(1, 30) g;
SELECT elt.govern('analytics', 'enforce', 'the warehouse contract');
ALTER TABLE analytics.customers ADD COLUMN email text;
SELECT elt.consumer_register('analytics.customers', 'dashboard:names', ARRAY['name']);
SELECT elt.approver_add('lead');
SELECT elt.migration_begin('drop region', 'unused', 'lead');
ALTER TABLE analytics.customers DROP COLUMN region;
SELECT elt.migration_end();
SELECT elt.backfill_create('emails', 'analytics.customers',
  'UPDATE analytics.customers SET email = name || ''@x'' WHERE customer_id >= $1 AND customer_id < $2',
  chunk_rows => 10, options => '{"target_chunk_ms": 0}');
});
# the backfill is half done: one chunk of three, then the upgrade
$old->safe_psql('wh', q{SET ROLE etl; CALL elt.backfill_run('emails', max_chunks => 1)});
$old->safe_psql('wh', q{
SET ROLE etl;
CREATE TABLE analytics.region_counts (name text PRIMARY KEY, n bigint);
SELECT elt.transform_create('names', 'analytics.region_counts',
  'SELECT upper(name) AS name, count(*) AS n FROM analytics.customers GROUP BY upper(name)', 'replace');
SELECT elt.run_begin('nightly', '{}', 'full');
SELECT elt.transform_run('names');
SELECT elt.run_end();
CREATE SCHEMA mart;
GRANT USAGE ON SCHEMA mart TO analyst_beta, analyst_other;
CREATE TABLE mart.orders (id int PRIMARY KEY, amount numeric NOT NULL, status text);
GRANT SELECT ON mart.orders TO analyst_beta, analyst_other;
INSERT INTO mart.orders SELECT g, g, 'new' FROM generate_series(1, 10) g;
SELECT elt.deploy_init('mart');
SELECT elt.check_create('mart.orders', 'not_null', '{"column": "status"}', name => 'status_set');
SELECT elt.deploy_prepare('mart', copy_data => true);
});
my $cand = $old->safe_psql('wh',
	q{SELECT candidate_schema FROM elt.deployments WHERE state = 'prepared'});
$old->safe_psql('wh', qq{
SET ROLE etl;
UPDATE $cand.orders SET amount = amount + 1000;
SELECT elt.deploy_canary('mart', roles => ARRAY['analyst_beta']);
});

my %q = (
	versions => q{SELECT string_agg(format('%s|%s|%s|%s', table_id, version, event, md5(shape::text)), ',' ORDER BY table_id, version) FROM elt.schema_versions},
	checks   => q{SELECT string_agg(format('%s|%s|%s|%s', check_id, name, relation, owner), ',') FROM elt.checks},
	deploys  => q{SELECT string_agg(format('%s|%s|%s|%s', deployment_id, state, canary, canary_roles), ',' ORDER BY deployment_id) FROM elt.deployments},
	trace    => q{SELECT string_agg(format('%s|%s|%s', depth, relation, key), ',' ORDER BY depth, relation, key) FROM elt.trace('analytics.region_counts', 'C7')},
	columns  => q{SELECT string_agg(format('%s<-%s.%s:%s', target_column, source_relation, source_column, kind), ',' ORDER BY target_column, kind) FROM elt.column_lineage('analytics.region_counts')},
	runs     => q{SELECT string_agg(format('%s|%s|%s', run_id, kind, status), ',' ORDER BY run_id) FROM elt.runs},
	snaps    => q{SELECT string_agg(format('%s|%s|%s', snapshot_id, source_name, checksum), ',' ORDER BY snapshot_id) FROM elt.snapshots},
	backfill => q{SELECT string_agg(format('%s|%s|%s', name, rel, state), ',') FROM elt.backfills},
	emails   => q{SELECT count(email) FROM analytics.customers},
	consumer => q{SELECT string_agg(format('%s|%s', rel, consumer), ',') FROM elt.consumer_registrations},
);
my %before;
$before{$_} = $old->safe_psql('wh', $q{$_}) for keys %q;
like($before{trace}, qr/analytics\.customers/, 'row lineage traces to the source rows');
like($before{columns}, qr/name<-analytics\.customers\.name/, 'column lineage follows the grouped column');
like($before{deploys}, qr/\|t\|\{analyst_beta\}/, 'the canary is analyst_beta');
is($before{emails}, '10', 'the backfill did one chunk of three');
is($old->safe_psql('wh', 'SELECT valid FROM elt.audit_verify()'), 't', 'the chain verifies on 15');
my $digest = $old->safe_psql('wh', 'SELECT elt.audit_digest()');
my $old_versions = $old->safe_psql('wh', q{SELECT count(*) FROM elt.schema_versions v JOIN elt.tracked_tables t USING (table_id) WHERE t.relid = 'analytics.customers'::regclass});
# Debian's PostgreSQL 15 on this machine stamps every column with an
# attribute option, pg_attver, that no other build knows: pg_upgrade's
# restore of any table fails on it ("unrecognized parameter").  ALTER TABLE
# cannot reset it, so it is cleared in the catalog, as a DBA of such a build
# would have to before pg_upgrade (a vanilla 15 needs nothing of the kind).
for my $db ('postgres', 'wh')
{
	my $n = $old->safe_psql($db, q{
WITH c AS (
  UPDATE pg_attribute a
  SET attoptions = NULLIF(ARRAY(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg_attver=%'), '{}')
  FROM pg_class r
  WHERE r.oid = a.attrelid AND a.attoptions::text LIKE '%pg_attver=%'
    AND r.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  RETURNING 1)
SELECT count(*) FROM c});
	note("cleared pg_attver of $n columns in $db") if $n > 0;
}
$old->stop;

# the new cluster: same locale and encoding; no data checksums (initdb
# enables them by default from 18 on, and 15's initdb did not)
my @extra = ('--locale=C', '--encoding=UTF8');
push @extra, '--no-data-checksums' if $new->pg_version >= 18;
$new->init(extra => \@extra);
$new->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'\nlc_messages = 'C'");

my $workdir = PostgreSQL::Test::Utils::tempdir;
chdir $workdir;
command_ok(
	[
		"$new_bindir/pg_upgrade", '--no-sync',
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-b', "$old_prefix/bin", '-B', $new_bindir,
		'-s', $new->host, '-p', $old->port, '-P', $new->port,
		'-O', '-c elt.enabled=off',
	],
	'pg_upgrade from 15');
$new->start;

is($new->safe_psql('wh', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	$new_version, 'the extension keeps its version');
is($new->safe_psql('wh', 'SELECT valid FROM elt.audit_verify()'), 't', 'the chain verifies after the upgrade');
is($new->safe_psql('wh', qq{SELECT valid FROM elt.audit_verify('$digest')}), 't',
	'and holds the digest taken before');
is($new->safe_psql('wh', $q{$_}), $before{$_}, "$_ reads as before") for sort keys %q;
is($new->safe_psql('wh', q{SELECT bool_and(elt.snapshot_verify(snapshot_id)) FROM elt.snapshots}), 't',
	'the snapshot rows verify');

# contracts: a breaking change is still blocked, a safe one recorded
my ($ret, $out, $err) = $new->psql('wh', q{SET ROLE etl; ALTER TABLE analytics.customers DROP COLUMN name});
isnt($ret, 0, 'dropping a column a consumer reads is still blocked');
like($err, qr/EG1\d\d/, 'by a contract rule');
$new->safe_psql('wh', q{SET ROLE etl; ALTER TABLE analytics.customers ADD COLUMN phone text});
is($new->safe_psql('wh', q{SELECT count(*) FROM elt.schema_versions v JOIN elt.tracked_tables t USING (table_id) WHERE t.relid = 'analytics.customers'::regclass}),
	$old_versions + 1, 'a new schema version is recorded');

# the backfill goes on from its checkpoint
$new->safe_psql('wh', q{SET ROLE etl; CALL elt.backfill_run('emails')});
is($new->safe_psql('wh', q{SELECT state FROM elt.backfills WHERE name = 'emails'}), 'finished',
	'the backfill completes');
is($new->safe_psql('wh', q{SELECT count(email) FROM analytics.customers}), '30', 'every row filled');

# transforms and lineage
$new->safe_psql('wh', q{SET ROLE etl; SELECT elt.transform_run('names')});
is($new->safe_psql('wh', q{SELECT status FROM elt.transform_runs ORDER BY run_id DESC LIMIT 1}),
	'succeeded', 'the transform runs again');
like($new->safe_psql('wh', q{SELECT string_agg(format('%s<-%s.%s:%s', target_column, source_relation, source_column, kind), ',' ORDER BY target_column, kind) FROM elt.column_lineage('analytics.region_counts')}),
	qr/name<-analytics\.customers\.name/, 'column lineage of the new run follows the grouped column');

# deployments: the canary routes by role, then stop, promote, roll back
is($new->safe_psql('wh', q{SET ROLE analyst_beta; SELECT sum(amount) FROM mart.orders}), '10055',
	'analyst_beta reads the candidate');
is($new->safe_psql('wh', q{SET ROLE analyst_other; SELECT sum(amount) FROM mart.orders}), '55',
	'analyst_other reads live');
$new->safe_psql('wh', q{SET ROLE etl; SELECT elt.deploy_canary_stop('mart', 'upgraded')});
$new->safe_psql('wh', q{SET ROLE etl; SELECT elt.deploy_promote('mart', 'after the upgrade')});
is($new->safe_psql('wh', q{SELECT sum(amount) FROM mart.orders}), '10055', 'the candidate is promoted');
$new->safe_psql('wh', q{SET ROLE etl; SELECT elt.deploy_rollback('mart', 'back')});
is($new->safe_psql('wh', q{SELECT sum(amount) FROM mart.orders}), '55', 'and rolled back');
is($new->safe_psql('wh', 'SELECT valid FROM elt.audit_verify()'), 't', 'the chain verifies after new actions');

$new->stop;
done_testing();
