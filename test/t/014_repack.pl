# The real pg_repack on a governed table under enforce, with a dependent
# view: a plain repack, --order-by, --only-indexes and -t one table all exit
# 0, rebuild the table or its indexes (new relfilenodes), keep every row and
# the view, and record no schema version: the unique indexes pg_repack builds
# over the keys of the primary key and of a unique constraint (index_<oid>)
# are judged safe, its drops of them too, and its passing copies of indexes
# are not part of the table's shape.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('repack');
$node->init;
$node->append_conf('postgresql.conf', qq{shared_preload_libraries = 'elt_governance'});
$node->start;

my $bindir = $node->config_data('--bindir');
my $repack = "$bindir/pg_repack";
plan skip_all => "pg_repack not found in $bindir" unless -x $repack;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE EXTENSION pg_repack;
CREATE SCHEMA wh;
CREATE TABLE wh.orders (id bigint PRIMARY KEY, code text NOT NULL, amount int NOT NULL,
  note text, CONSTRAINT orders_code_key UNIQUE (code));
CREATE INDEX orders_amount_idx ON wh.orders (amount);
CREATE UNIQUE INDEX orders_note_uq ON wh.orders (lower(note)) WHERE amount > 0;
INSERT INTO wh.orders SELECT i, 'c' || i, i % 97, 'n' || i FROM generate_series(1, 20000) i;
DELETE FROM wh.orders WHERE id % 3 = 0;
CREATE TABLE wh.other (id int PRIMARY KEY);
INSERT INTO wh.other SELECT generate_series(1, 100);
CREATE VIEW wh.big_orders AS SELECT id, code, amount FROM wh.orders WHERE amount > 50;
SELECT elt.govern('wh', 'enforce');
});

my $data_q = q{SELECT count(*) || ':' || sum(id) || ':' || sum(amount) || ':' || count(DISTINCT code)
	|| ':' || (SELECT count(*) FROM wh.big_orders) FROM wh.orders};
my $data = $node->safe_psql('postgres', $data_q);
my $versions = $node->safe_psql('postgres',
	q{SELECT count(*) || ':' || string_agg(table_name || '@' || version, ',' ORDER BY table_id, version)
	  FROM elt.schema_versions});
my $shape = $node->safe_psql('postgres', q{SELECT elt.table_shape('wh.orders')::text});
# relfilenode of one relation
sub filenode
{
	my ($rel) = @_;
	return $node->safe_psql('postgres', qq{SELECT relfilenode FROM pg_class WHERE oid = '$rel'::regclass});
}

# run pg_repack, the way its users do
sub repack
{
	my ($name, @args) = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ $repack, '-h', $node->host, '-p', $node->port, '-d', 'postgres', @args ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "$name: pg_repack exits 0") or diag($stderr);
	unlike($stderr, qr/WARNING|ERROR|EG1\d\d/, "$name: no warning, no error") or diag($stderr);
	return $stderr;
}

my @indexes = qw(wh.orders_pkey wh.orders_code_key wh.orders_amount_idx wh.orders_note_uq);
for my $run (
	[ 'plain repack', [ '-t', 'wh.orders' ], 1 ],
	[ '--order-by', [ '-t', 'wh.orders', '--order-by', 'amount, id' ], 1 ],
	[ '--only-indexes', [ '-t', 'wh.orders', '--only-indexes' ], 0 ])
{
	my ($name, $args, $table_too) = @$run;
	my %before = map { $_ => filenode($_) } ('wh.orders', @indexes);
	repack($name, @$args);
	for my $rel (@indexes)
	{
		isnt(filenode($rel), $before{$rel}, "$name: index $rel rebuilt");
	}
	if ($table_too)
	{
		isnt(filenode('wh.orders'), $before{'wh.orders'}, "$name: table rewritten");
	}
	else
	{
		is(filenode('wh.orders'), $before{'wh.orders'}, "$name: table left as it was");
	}
	is($node->safe_psql('postgres', $data_q), $data, "$name: rows and the view intact");
	is($node->safe_psql('postgres',
		q{SELECT count(*) || ':' || string_agg(table_name || '@' || version, ',' ORDER BY table_id, version)
		  FROM elt.schema_versions}), $versions, "$name: no schema version recorded");
	is($node->safe_psql('postgres', q{SELECT elt.table_shape('wh.orders')::text}), $shape,
		"$name: the shape is unchanged");
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_class WHERE relnamespace = 'wh'::regnamespace AND relname ~ '^index_[0-9]+$'}),
		'0', "$name: no index_<oid> left behind");
}

# -t a single table, --only-indexes: the other table is not touched
my $other = filenode('wh.other_pkey');
repack('-t other', '-t', 'wh.orders', '--only-indexes');
is(filenode('wh.other_pkey'), $other, '-t: the other table\'s index is not touched');

# the repack did its changes as safe ones, never blocked; and no advice:
# pg_repack takes its ACCESS EXCLUSIVE lock (LOCK TABLE, with its own
# wait-and-retry) before the ALTER TABLE of its swap, which then waits for
# nothing (EG208 is only for a lock the transaction does not hold yet)
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM elt.schema_changes
	WHERE (rule IS NOT NULL AND class <> 'advice') OR decision <> 'allowed'}),
	'0', 'every change pg_repack made was judged safe and allowed');
is($node->safe_psql('postgres', q{
	SELECT coalesce(string_agg(DISTINCT rule || ':' || command_tag, ','), '')
	FROM elt.schema_changes WHERE class = 'advice'}),
	'', 'no advice: its swap runs under the lock it already holds');

# the view still reads the table, and writes still meet every key
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM wh.big_orders}), 't', 'the view reads the table');
my ($ret, $out, $err) = $node->psql('postgres', q{INSERT INTO wh.orders VALUES (1, 'dup', 1, 'x')});
like($err, qr/orders_pkey/, 'the primary key still refuses a duplicate');
($ret, $out, $err) = $node->psql('postgres', q{INSERT INTO wh.orders VALUES (-1, 'c1', 1, 'x')});
like($err, qr/orders_code_key/, 'the unique constraint still refuses a duplicate');

# outside pg_repack, a unique index that is stricter than the keys is still judged
($ret, $out, $err) = $node->psql('postgres', q{CREATE UNIQUE INDEX CONCURRENTLY index_1 ON wh.orders (amount)});
like($err, qr/EG113/, 'a new unique rule is still EG113 under enforce');

is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the audit chain verifies');
$node->stop;
done_testing();
