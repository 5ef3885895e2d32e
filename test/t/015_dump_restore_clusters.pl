# pg_dump (custom format) of a database with every engine in use, restored
# with pg_restore into ANOTHER cluster whose roles were created in another
# order and whose oid counter is elsewhere (so role and relation oids
# differ): the audit chain verifies, histories, lineage and manifests read,
# sequences go on (a deployment action, a check result, a transform run), a
# check still gates a promotion (a failing candidate is stopped), the
# canary's roles are the same roles by name, a rollback works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $src = PostgreSQL::Test::Cluster->new('dump_src');
$src->init;
$src->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'\nlc_messages = 'C'");
$src->start;

# roles in one order here ...
$src->safe_psql('postgres', q{
CREATE ROLE etl SUPERUSER LOGIN;
CREATE ROLE analyst_beta LOGIN;
CREATE ROLE analyst_other LOGIN;
CREATE DATABASE wh OWNER etl;
});
$src->safe_psql('wh', q{
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
$src->safe_psql('wh', q{SET ROLE etl; CALL elt.backfill_run('emails')});
$src->safe_psql('wh', q{
SET ROLE etl;
CREATE TABLE analytics.customer_names (customer_id int PRIMARY KEY, name text);
SELECT elt.transform_create('names', 'analytics.customer_names',
  'SELECT customer_id, upper(name) AS name FROM analytics.customers', 'replace');
SELECT elt.run_begin('nightly', '{}', 'full');
SELECT elt.transform_run('names');
SELECT elt.run_end();
});
# a deployment: initialized, a check on its view, promoted once, then a
# candidate prepared and in a canary for analyst_beta
$src->safe_psql('wh', q{
SET ROLE etl;
CREATE SCHEMA mart;
GRANT USAGE ON SCHEMA mart TO analyst_beta, analyst_other;
CREATE TABLE mart.orders (id int PRIMARY KEY, amount numeric NOT NULL, status text);
GRANT SELECT ON mart.orders TO analyst_beta, analyst_other;
INSERT INTO mart.orders SELECT g, g, 'new' FROM generate_series(1, 10) g;
SELECT elt.deploy_init('mart');
SELECT elt.check_create('mart.orders', 'not_null', '{"column": "status"}', name => 'status_set');
SELECT elt.deploy_prepare('mart', copy_data => true);
SELECT elt.deploy_promote('mart', 'release 2');
SELECT elt.deploy_decommission('mart', keep => '0');
SELECT elt.deploy_prepare('mart', copy_data => true);
});
my $cand = $src->safe_psql('wh',
	q{SELECT candidate_schema FROM elt.deployments WHERE state = 'prepared'});
is($cand, 'mart__blue', 'the second candidate is blue');
$src->safe_psql('wh', qq{
SET ROLE etl;
UPDATE $cand.orders SET amount = amount + 1000;
SELECT elt.deploy_canary('mart', roles => ARRAY['analyst_beta']);
});

my %before;
my %q = (
	versions => q{SELECT string_agg(format('%s|%s|%s|%s', table_id, version, event, md5(shape::text)), ',' ORDER BY table_id, version) FROM elt.schema_versions},
	checks   => q{SELECT string_agg(format('%s|%s|%s|%s', check_id, name, relation, owner), ',') FROM elt.checks},
	deploys  => q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s', deployment_id, state, prepared_by, promoted_by, decommissioned_by, canary, canary_roles), ',' ORDER BY deployment_id) FROM elt.deployments},
	events   => q{SELECT string_agg(format('%s|%s|%s', event_id, action, actor), ',' ORDER BY event_id) FROM elt.deployment_events},
	results  => q{SELECT string_agg(format('%s|%s|%s|%s', result_id, declared_on, status, checked_by), ',' ORDER BY result_id) FROM elt.check_results},
	iface    => q{SELECT format('%s|%s|%s', live_color, owner::regrole, initialized_by::regrole) FROM elt.deploy_interfaces},
	trace    => q{SELECT string_agg(format('%s|%s|%s', depth, relation, key), ',' ORDER BY depth, relation, key) FROM elt.trace('analytics.customer_names', '7')},
	runs     => q{SELECT string_agg(format('%s|%s|%s', run_id, kind, status), ',' ORDER BY run_id) FROM elt.runs},
	snaps    => q{SELECT string_agg(format('%s|%s|%s|%s', snapshot_id, source_name, checksum, created_by), ',' ORDER BY snapshot_id) FROM elt.snapshots},
	backfill => q{SELECT string_agg(format('%s|%s|%s', name, rel, state), ',') FROM elt.backfills},
	consumer => q{SELECT string_agg(format('%s|%s', rel, consumer), ',') FROM elt.consumer_registrations},
);
$before{$_} = $src->safe_psql('wh', $q{$_}) for keys %q;
like($before{trace}, qr/analytics\.customers\|7/, 'the row lineage traces to its source row');
like($before{runs}, qr/pipeline\|finished/, 'the pipeline run finished');
isnt($before{snaps}, '', 'the run took a snapshot');
like($before{deploys}, qr/\|t\|\{analyst_beta\}/, 'the canary is analyst_beta');
my $manifest = $src->safe_psql('wh', q{SELECT manifest_id FROM elt.run_manifests});
my $max_event = $src->safe_psql('wh', q{SELECT max(event_id) FROM elt.deployment_event_log});
my $max_result = $src->safe_psql('wh', q{SELECT max(result_id) FROM elt.check_result_log});
is($src->safe_psql('wh', 'SELECT valid FROM elt.audit_verify()'), 't', 'the source chain verifies');
my $digest = $src->safe_psql('wh', 'SELECT elt.audit_digest()');

my $dump = $src->basedir . '/wh.dump';
$src->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $src->connstr('wh') ], 'pg_dump -Fc');

# ... and in another order there, after other roles and relations, so that
# no oid is the same
my $dst = PostgreSQL::Test::Cluster->new('dump_dst');
$dst->init;
$dst->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'\nlc_messages = 'C'");
$dst->start;
$dst->safe_psql('postgres', q{
CREATE ROLE someone_else;
CREATE ROLE analyst_other LOGIN;
CREATE ROLE yet_another;
CREATE ROLE analyst_beta LOGIN;
CREATE ROLE etl SUPERUSER LOGIN;
CREATE TABLE filler_a (id int PRIMARY KEY, t text);
CREATE TABLE filler_b (id int PRIMARY KEY, t text);
CREATE VIEW filler_v AS SELECT * FROM filler_a;
CREATE DATABASE wh OWNER etl;
});
{
	local $ENV{PGOPTIONS} = '-c elt.enabled=off';
	$dst->command_ok([ 'pg_restore', '--exit-on-error', '-d', $dst->connstr('wh'), $dump ],
		'pg_restore into the other cluster');
}
for my $r (qw(etl analyst_beta analyst_other))
{
	isnt($dst->safe_psql('postgres', "SELECT '$r'::regrole::oid"),
		$src->safe_psql('postgres', "SELECT '$r'::regrole::oid"), "role $r has another oid");
}
isnt($dst->safe_psql('wh', q{SELECT 'mart.orders'::regclass::oid}),
	$src->safe_psql('wh', q{SELECT 'mart.orders'::regclass::oid}), 'the checked view has another oid');

is($dst->safe_psql('wh', 'SELECT valid FROM elt.audit_verify()'), 't', 'the restored chain verifies');
is($dst->safe_psql('wh', qq{SELECT valid FROM elt.audit_verify('$digest')}), 't',
	'and holds the digest taken before the dump');
is($dst->safe_psql('wh', $q{$_}), $before{$_}, "$_ restored, every reference by name") for sort keys %q;
is($dst->safe_psql('wh', q{SELECT manifest_id FROM elt.run_manifests}), $manifest, 'the manifest is kept');
is($dst->safe_psql('wh', q{SELECT bool_and(elt.snapshot_verify(snapshot_id)) FROM elt.snapshots}), 't',
	'the snapshot rows verify');
is($dst->safe_psql('wh', q{SELECT string_agg(change, ',') FROM elt.schema_diff('analytics.customers', 1, 2)}),
	'column_added', 'the history reads on the restored table');

# the canary's roles are the same roles, by name, and route as before
is($dst->safe_psql('wh', q{SET ROLE analyst_beta; SELECT sum(amount) FROM mart.orders}), '10055',
	'analyst_beta reads the candidate');
is($dst->safe_psql('wh', q{SET ROLE analyst_other; SELECT sum(amount) FROM mart.orders}), '55',
	'analyst_other reads live');

# sequences go on: a deployment action, a check result, a transform run
$dst->safe_psql('wh', q{SET ROLE etl; SELECT elt.deploy_canary_stop('mart', 'restored')});
ok($dst->safe_psql('wh', q{SELECT max(event_id) FROM elt.deployment_event_log}) > $max_event,
	'a new deployment event after the restored ones');
is($dst->safe_psql('wh', q{SELECT status FROM elt.check_run('mart.orders')}), 'pass', 'the check runs');
ok($dst->safe_psql('wh', q{SELECT max(result_id) FROM elt.check_result_log}) > $max_result,
	'a new check result after the restored ones');
$dst->safe_psql('wh', q{SET ROLE etl; SELECT elt.transform_run('names')});
is($dst->safe_psql('wh', q{SELECT status FROM elt.transform_runs ORDER BY run_id DESC LIMIT 1}),
	'succeeded', 'a new transform run succeeds');
is($dst->safe_psql('wh', q{SELECT count(DISTINCT run_id) FROM elt.transform_runs}), '2',
	'with a new run id');

# the restored check still gates: a failing candidate is not promoted
$dst->safe_psql('wh', qq{UPDATE $cand.orders SET status = NULL WHERE id = 3});
my ($ret, $out, $err) = $dst->psql('wh', q{SET ROLE etl; SELECT elt.deploy_promote('mart', 'broken')});
isnt($ret, 0, 'the promotion of a failing candidate is refused');
like($err, qr/status_set/, 'by the restored check');
is($dst->safe_psql('wh', q{SELECT live_color FROM elt.deploy_interfaces}), 'green', 'live stays green');
$dst->safe_psql('wh', qq{UPDATE $cand.orders SET status = 'fixed' WHERE id = 3});
$dst->safe_psql('wh', q{SET ROLE etl; SELECT elt.deploy_promote('mart', 'fixed')});
is($dst->safe_psql('wh', q{SELECT sum(amount) FROM mart.orders}), '10055', 'the fixed candidate is promoted');
$dst->safe_psql('wh', q{SET ROLE etl; SELECT elt.deploy_rollback('mart', 'back')});
is($dst->safe_psql('wh', q{SELECT sum(amount) FROM mart.orders}), '55', 'and rolled back');
is($dst->safe_psql('wh',
		q{SELECT string_agg(action || ':' || actor, ',' ORDER BY event_id) FROM elt.deployment_events WHERE event_id > } . $max_event),
	'deploy_canary_stop:etl,deploy_promote:etl,deploy_rollback:etl', 'every action recorded, by etl');
is($dst->safe_psql('wh', 'SELECT valid FROM elt.audit_verify()'), 't', 'the chain verifies after new actions');

# The upgrade from 0.7.0 converts the columns in place and moves the ids
# to the new sequences, going on after the last one.
$dst->safe_psql('postgres', 'CREATE DATABASE old OWNER etl');
$dst->safe_psql('old', q{
SET ROLE etl;
CREATE EXTENSION elt_governance VERSION '0.7.0';
CREATE SCHEMA shop;
CREATE TABLE shop.items (id int PRIMARY KEY, label text);
INSERT INTO shop.items VALUES (1, 'a'), (2, NULL);
SELECT elt.deploy_init('shop');
SELECT elt.check_create('shop.items', 'not_null', '{"column": "label"}', name => 'labelled');
SELECT elt.deploy_prepare('shop');
SELECT status FROM elt.check_run('shop.items');
SELECT status FROM elt.check_run('shop.items');
});
my $events_old = $dst->safe_psql('old', q{SELECT max(event_id) FROM elt.deployment_event_log});
$dst->safe_psql('old', q{ALTER EXTENSION elt_governance UPDATE TO '0.8.0'});
is($dst->safe_psql('old', q{
SELECT string_agg(format('%s.%s:%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod)), ',' ORDER BY c.relname, a.attname)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'elt'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
  AND a.atttypid IN ('oid'::regtype, 'oid[]'::regtype)}),
	'schema_versions.relid:oid', 'after the upgrade only schema_versions.relid is an oid');
is($dst->safe_psql('old', q{SELECT format('%s|%s', relation, owner) FROM elt.checks}),
	'shop.items|etl', 'the check keeps its relation and owner');
$dst->safe_psql('old', q{SET ROLE etl; SELECT elt.check_run('shop.items'); SELECT elt.deploy_canary('shop', percent => 10)});
is($dst->safe_psql('old', q{SELECT string_agg(result_id::text, ',' ORDER BY result_id) FROM elt.check_result_log}),
	'1,2,3,4', 'check results go on after the upgrade (a check_run, then the gate of the canary)');
ok($dst->safe_psql('old', q{SELECT max(event_id) FROM elt.deployment_event_log}) > $events_old,
	'deployment events go on after the upgrade');
is($dst->safe_psql('old', 'SELECT valid FROM elt.audit_verify()'), 't', 'the upgraded chain verifies');

$src->stop;
$dst->stop;
done_testing();
