# OpenLineage events of transform runs validate against the OpenLineage
# RunEvent schema (test/openlineage/OpenLineage.json, draft 2020-12, with
# uuid, uri and date-time formats checked) — for every kind of run: row and
# table lineage, each mode, a source dropped since the run.
use strict;
use warnings;
use File::Basename qw(dirname);
use IPC::Run qw(run);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $validator = dirname(__FILE__) . '/../openlineage/validate.py';

my $node = PostgreSQL::Test::Cluster->new('openlineage');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA raw;
CREATE SCHEMA mart;
CREATE TABLE raw.customers (id int PRIMARY KEY, region text NOT NULL);
CREATE TABLE raw.orders (id bigint PRIMARY KEY, customer_id int, day date, amount numeric);
CREATE TABLE raw.scratch (id int PRIMARY KEY, v int);
INSERT INTO raw.customers SELECT g, (ARRAY['north', 'south'])[1 + g % 2] FROM generate_series(1, 10) g;
INSERT INTO raw.orders SELECT g, 1 + g % 10, date '2026-01-01' + g % 3, g FROM generate_series(1, 100) g;
INSERT INTO raw.scratch VALUES (1, 1);
CREATE TABLE mart.daily (customer_id int, day date, region text, revenue numeric, PRIMARY KEY (customer_id, day));
CREATE TABLE mart.regions (region text PRIMARY KEY, revenue numeric);
CREATE TABLE mart.top (id bigint PRIMARY KEY, amount numeric);
CREATE TABLE mart.scratch_copy (id int PRIMARY KEY, v int);
SELECT elt.transform_create('daily', 'mart.daily',
  'SELECT c.id AS customer_id, o.day, c.region, sum(o.amount) AS revenue
   FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id GROUP BY 1, 2, 3', 'merge');
SELECT elt.transform_create('regions', 'mart.regions',
  'SELECT region, sum(revenue) AS revenue FROM mart.daily GROUP BY region', 'replace');
SELECT elt.transform_create('top', 'mart.top',
  'SELECT id, amount FROM raw.orders ORDER BY amount DESC LIMIT 3', options => '{"lineage": "table"}');
SELECT elt.transform_create('scratch', 'mart.scratch_copy', 'SELECT id, v FROM raw.scratch');
SELECT elt.transform_run('daily');
SELECT elt.transform_run('daily', lineage => 'none');
SELECT elt.transform_run('regions');
SELECT elt.transform_run('top');
SELECT elt.transform_run('scratch');
DROP TABLE raw.scratch;
});
# a failed run: recorded as failed by a worker, while the caller's work is undone
my ($ret, $o, $e) = $node->psql('postgres', q{SELECT elt.transform_run('top')});
isnt($ret, 0, 'a run that violates the target key fails');
is($node->safe_psql('postgres', q{SELECT count(*) FROM mart.top}), '3', 'and writes nothing');

my $events = $node->safe_psql('postgres',
	q{SELECT elt.openlineage_event(run_id)::text FROM elt.transform_runs ORDER BY run_id});
my @lines = split /\n/, $events;
is(scalar(@lines), 6, 'one event per run');

my ($out, $err);
my $ok = run([ '/usr/bin/python3', $validator ], '<', \$events, '>', \$out, '2>', \$err);
ok($ok, 'every event validates against the OpenLineage schema') or diag("$out\n$err");
like($out, qr/^ok 6$/m, 'six events checked');

# the validator does reject a broken event
my $broken = $lines[0];
$broken =~ s/"runId": "[^"]+"/"runId": "run-1"/;
$ok = run([ '/usr/bin/python3', $validator ], '<', \$broken, '>', \$out, '2>', \$err);
ok(!$ok, 'a run id that is not a UUID is refused');
like($out, qr/is not a 'uuid'/, 'by the uuid format check');

# what the events say
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT e->>'eventType', ',')
	FROM elt.transform_runs r, elt.openlineage_event(r.run_id) e WHERE r.status = 'succeeded'}),
	'COMPLETE', 'runs that committed are COMPLETE');
is($node->safe_psql('postgres', q{
	SELECT e->>'eventType' || ' ' || (e->'run'->'facets'->'errorMessage'->>'message' LIKE '23505: duplicate key%')::text
	FROM elt.transform_runs r, elt.openlineage_event(r.run_id) e WHERE r.status = 'failed'}),
	'FAIL true', 'the failed run is a FAIL event with its error');
is($node->safe_psql('postgres', q{
	SELECT e->'inputs'->0->>'name' || ' ' || (e->'inputs'->0->'facets' ? 'schema')::text
	FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id),
	     elt.openlineage_event(r.run_id) e WHERE d.name = 'scratch'}),
	'postgres.raw.scratch false', 'a dropped source keeps its name and loses its schema facet');
like($node->safe_psql('postgres', q{
	SELECT e->'outputs'->0->'facets'->'columnLineage'->'fields'->'revenue'->'inputFields'->0->>'field'
	FROM elt.transform_runs r JOIN elt.transform_defs d USING (transform_id),
	     elt.openlineage_event(r.run_id) e WHERE d.name = 'regions'}),
	qr/^revenue$/, 'column lineage names the source column');
like($node->safe_psql('postgres', q{SELECT elt.openlineage_event(1)->'job'->>'namespace'}),
	qr{^postgres://[^:/]+:\d+$}, 'namespace is postgres://host:port');

$node->stop;
done_testing();
