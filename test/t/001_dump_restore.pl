# pg_dump / pg_restore of a governed database into a new database keeps the
# schema versions and an audit chain that still verifies, re-attaches the
# history to the restored tables, and goes on recording from there; a
# snapshot keeps its rows, its checksum and its immutability.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA analytics;
CREATE TABLE analytics.customers (customer_id int PRIMARY KEY, name text);
CREATE TABLE analytics.orders (order_id bigint PRIMARY KEY, amount numeric NOT NULL,
                               customer_id int REFERENCES analytics.customers);
SELECT elt.govern('analytics', 'warn', 'first contract');
ALTER TABLE analytics.orders ADD COLUMN status text DEFAULT 'new';
CREATE INDEX orders_status_idx ON analytics.orders (status);
ALTER TABLE analytics.orders RENAME COLUMN status TO state;
CREATE TABLE analytics.scratch (id int);
DROP TABLE analytics.scratch;
CREATE TABLE public.solo (id int);
SELECT elt.govern('public.solo', 'off');
ALTER TABLE public.solo ADD COLUMN v text;
SELECT elt.consumer_register('analytics.orders', 'dashboard:revenue', ARRAY['amount', 'state']);
SELECT elt.approver_add('lead');
SELECT elt.migration_begin('drop state', 'unused', 'lead');
ALTER TABLE analytics.orders DROP COLUMN state;
SELECT elt.migration_end();
INSERT INTO analytics.customers SELECT g, 'c' || g FROM generate_series(1, 50) g;
SELECT elt.backfill_create('names', 'analytics.customers',
  'UPDATE analytics.customers SET name = upper(name) WHERE customer_id >= $1 AND customer_id < $2',
  chunk_rows => 10, options => '{"target_chunk_ms": 0}');
});
$node->safe_psql('src', q{CALL elt.backfill_run('names', max_chunks => 2)});
# a check, a transform and its run: audit_verify compares them with the chain
$node->safe_psql('src', q{
SELECT elt.check_create('analytics.customers', 'not_null', '{"column": "name"}');
CREATE TABLE analytics.name_counts (name text PRIMARY KEY, n bigint);
SELECT elt.transform_create('name_counts', 'analytics.name_counts',
  'SELECT name, count(*) AS n FROM analytics.customers GROUP BY name', 'replace');
SELECT elt.transform_run('name_counts');
});
$node->safe_psql('src', q{SELECT elt.snapshot_create('analytics.customers')});
# masking rules and the masking key: a restored database masks alike
$node->safe_psql('src', q{
SELECT elt.mask_set('analytics.customers', 'name', 'pseudonym', '{"kind": "name"}');
SELECT elt.mask_set_pattern('%name%', 'hash', '{}', 'analytics');
});
my $mask_sql = q{SELECT string_agg(r::text, ',' ORDER BY r::text) FROM elt.mask_preview('analytics.customers', 1000) r};
my $masked = $node->safe_psql('src', $mask_sql);
my $rules_sql = q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s', relation, column_name, pattern, in_schema, rule, args), ',' ORDER BY rule_id) FROM elt.mask_rules};
my $rules = $node->safe_psql('src', $rules_sql);
my $snapshot_sum = $node->safe_psql('src', q{SELECT checksum FROM elt.snapshots WHERE snapshot_id = 1});

my $versions_sql = q{
SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s', table_id, version, schema_name,
                         table_name, event, md5(shape::text), statement),
                  E'\n' ORDER BY table_id, version)
FROM elt.schema_versions};
my $audit_sql = q{SELECT string_agg(id || ':' || row_hash, ',' ORDER BY id) FROM elt.audit_log};
my $targets_sql = q{SELECT string_agg(kind || ':' || target || ':' || policy, ',' ORDER BY target) FROM elt.governed};
my $contracts_sql = q{SELECT (SELECT string_agg(format('%s|%s|%s|%s|%s', change_id, rule, object, decision, migration_id), ',' ORDER BY change_id) FROM elt.schema_changes)
	|| ';' || (SELECT string_agg(format('%s|%s|%s', rel, consumer, columns), ',') FROM elt.consumer_registrations)
	|| ';' || (SELECT string_agg(format('%s|%s|%s', migration_id, name, approved_by), ',') FROM elt.migration_windows)
	|| ';' || (SELECT string_agg(approver, ',') FROM elt.approvers)
	|| ';' || (SELECT string_agg(format('%s|%s|%s|%s|%s|%s', name, rel, state, chunks_planned, next_lower, options), ',') FROM elt.backfills)
	|| ';' || (SELECT string_agg(format('%s|%s|%s|%s', chunk_no, lower_bound, upper_bound, state), ',' ORDER BY chunk_no) FROM elt.backfill_chunks)};

my $versions = $node->safe_psql('src', $versions_sql);
my $audit    = $node->safe_psql('src', $audit_sql);
my $targets  = $node->safe_psql('src', $targets_sql);
my $contracts = $node->safe_psql('src', $contracts_sql);
my $digest   = $node->safe_psql('src', 'SELECT elt.audit_digest()');
is($node->safe_psql('src', 'SELECT valid FROM elt.audit_verify()'), 't', 'source chain verifies');

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');

# Restore with DDL capture switched off, as the README says: the restore's
# own CREATE INDEX and ALTER TABLE ... ADD CONSTRAINT are not new versions.
$node->safe_psql('postgres', 'CREATE DATABASE dst');
{
	local $ENV{PGOPTIONS} = '-c elt.enabled=off';
	$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
		'pg_restore');
}

is($node->safe_psql('dst', $versions_sql), $versions, 'schema versions restored unchanged');
is($node->safe_psql('dst', $rules_sql), $rules, 'masking rules restored');
is($node->safe_psql('dst', $mask_sql), $masked, 'the restored masking key masks alike');
is($node->safe_psql('dst', $audit_sql), $audit, 'audit rows restored unchanged');
is($node->safe_psql('dst', $targets_sql), $targets, 'governed targets restored');
is($node->safe_psql('dst', $contracts_sql), $contracts,
	'changes, consumer registrations, migrations and approvers restored');
is($node->safe_psql('dst', q{SELECT count(*) FROM elt.check_defs}) . ':'
	. $node->safe_psql('dst', q{SELECT string_agg(status, ',') FROM elt.transform_runs}),
	'1:succeeded', 'checks and transform runs restored');
is($node->safe_psql('dst', q{SELECT valid::int || ':' || checked FROM elt.audit_verify()}),
	'1:' . $node->safe_psql('src', 'SELECT count(*) FROM elt.audit_log'),
	'restored chain verifies');
is($node->safe_psql('dst', qq{SELECT valid FROM elt.audit_verify('$digest')}), 't',
	'restored chain contains the digest taken before the dump');

# a snapshot's rows, catalog entry and immutability survive
is($node->safe_psql('dst', q{SELECT checksum FROM elt.snapshots WHERE snapshot_id = 1}), $snapshot_sum,
	'the snapshot is listed with its checksum');
is($node->safe_psql('dst', q{SELECT elt.snapshot_verify(1)}), 't', 'and its restored rows verify');
my $storage = $node->safe_psql('dst', q{SELECT storage FROM elt.snapshots WHERE snapshot_id = 1});
my ($sret, $sout, $serr) = $node->psql('dst', "DELETE FROM $storage");
like($serr, qr/is immutable/, 'and stay immutable');

# the history follows the restored tables, whose oids are new
isnt($node->safe_psql('dst', q{SELECT 'analytics.orders'::regclass::oid}),
	$node->safe_psql('src', q{SELECT 'analytics.orders'::regclass::oid}),
	'restored table has a new oid');
is($node->safe_psql('dst', q{SELECT max(version) FROM elt.table_versions('analytics.orders')}),
	'5', 'table_versions finds the restored table');
is($node->safe_psql('dst',
		q{SELECT string_agg(change, ',') FROM elt.schema_diff('analytics.orders', 1, 4)}),
	'column_added,index_added', 'schema_diff works on the restored history');
is($node->safe_psql('dst', q{SELECT consumer FROM elt.consumers WHERE kind = 'registered'}),
	'dashboard:revenue', 'the registration follows the restored table');

# contracts hold in the restored database
my ($ret, $out, $err) = $node->psql('dst', 'ALTER TABLE analytics.orders DROP COLUMN amount');
is($ret, 0, 'policy warn lets the breaking change run');
like($err, qr/WARNING:  EG104.*consumer dashboard:revenue/s, 'with the restored consumer named');
is($node->safe_psql('dst', q{SELECT elt.policy_for('public.solo')}), 'off',
	'table target re-attached to the restored table');

# and recording goes on from the restored head
$node->safe_psql('dst', 'ALTER TABLE analytics.orders ADD COLUMN after_restore int');
is($node->safe_psql('dst',
		q{SELECT version || ':' || event FROM elt.table_versions('analytics.orders') ORDER BY version DESC LIMIT 1}),
	'7:altered', 'new DDL after the restore goes on from the restored head');
is($node->safe_psql('dst', 'SELECT valid FROM elt.audit_verify()'), 't',
	'chain verifies after new actions');
is($node->safe_psql('dst', qq{SELECT valid FROM elt.audit_verify('$digest')}), 't',
	'old digest still verifies after new actions');
# a restored backfill goes on from its checkpoint
$node->safe_psql('dst', q{CALL elt.backfill_run('names')});
is($node->safe_psql('dst', q{SELECT state || ':' || chunks_done FROM elt.backfill_status}), 'finished:5',
	'the restored backfill finishes from its checkpoint');
is($node->safe_psql('dst', q{SELECT count(*) FROM analytics.customers WHERE name = upper('c' || customer_id)}),
	'50', 'and every row is processed once');
$node->safe_psql('dst', 'CREATE TABLE analytics.newer (id int)');
is($node->safe_psql('dst', q{SELECT table_id > 3 FROM elt.tracked_tables WHERE table_name = 'newer'}),
	't', 'table ids continue after the restored ones');

is($node->safe_psql('dst', q{SELECT elt.mask_set('analytics.customers', 'name', 'partial', '{"prefix": 1}') > 0}), 't',
	'masking rules can be set after a restore (the sequence came along)');

$node->stop;

done_testing();
