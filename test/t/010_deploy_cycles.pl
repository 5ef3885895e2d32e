# Blue-green switches under a concurrent read load: 20 cycles of prepare,
# promote and rollback of an interface of six views, while pgbench clients
# (simple and prepared statements) keep reading the views and a view of
# another schema made on one of them.  No reader query fails; a query, or a
# transaction, that reads several interface views sees one color for all of
# them (version 1 is blue, 2 is green); the dependent view, and statements
# prepared before the switches, follow every switch.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $cycles = 20;
# table => rows; every table has ids 1..rows, and readers pick ids in 1..200
my %rows = (customers => 200, orders => 400, products => 200,
	items => 300, payments => 250, shipments => 220);
my @tables = sort keys %rows;

my $node = PostgreSQL::Test::Cluster->new('deploy_cycles');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'elt_governance'
log_statement = none
log_lock_waits = on
lc_messages = 'C'
});
$node->start;

my $setup = q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA mart;
};
$setup .= "CREATE TABLE mart.$_ (id int PRIMARY KEY, version int NOT NULL DEFAULT 1, payload text);\n"
  . "INSERT INTO mart.$_ (id, payload) SELECT g, md5(g::text) FROM generate_series(1, $rows{$_}) g;\n"
  for @tables;
$setup .= q{
SELECT elt.deploy_init('mart');
CREATE SCHEMA reports;
CREATE VIEW reports.customer_versions AS
  SELECT min(version) AS lo, max(version) AS hi, count(*) AS n FROM mart.customers;
-- what the readers saw: mixed colors (expected never), reads per color
CREATE TABLE public.mixed_reads (id serial, query text, a int, b int, at timestamptz DEFAULT clock_timestamp());
CREATE SEQUENCE public.reads_blue;
CREATE SEQUENCE public.reads_green;
};
$node->safe_psql('postgres', $setup);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_views WHERE schemaname = 'mart'}),
	scalar(@tables), 'the interface has one view per table');

###############################################################################
# The readers: pgbench scripts
###############################################################################
my $dir = PostgreSQL::Test::Utils::tempdir();

# Several interface views per query, named in different orders; each pair of
# versions that must be equal is checked, and a mismatch is recorded.
my $union = join("\n    UNION ALL ",
	map { "SELECT version FROM mart.$_ WHERE id = :id" } reverse @tables);
PostgreSQL::Test::Utils::append_to_file("$dir/reads.sql", qq{\\set id random(1, 200)
SELECT c.version AS v1, o.version AS v2
  FROM mart.customers c JOIN mart.orders o ON o.id = c.id WHERE c.id = :id \\gset
\\if :v1 <> :v2
INSERT INTO public.mixed_reads (query, a, b) VALUES ('customers join orders', :v1, :v2);
\\endif
SELECT coalesce((SELECT version FROM mart.shipments WHERE id = :id), -1) AS v3,
       coalesce((SELECT max(version) FROM mart.products), -1) AS v4 \\gset
\\if :v3 <> :v4
INSERT INTO public.mixed_reads (query, a, b) VALUES ('shipments, products sub-selects', :v3, :v4);
\\endif
SELECT coalesce(min(version), -1) AS lo, coalesce(max(version), -1) AS hi, count(*) AS n FROM (
    $union) u \\gset
\\if :lo <> :hi or :n <> 6
INSERT INTO public.mixed_reads (query, a, b) VALUES ('six views, union all', :lo, :hi);
\\endif
SELECT d.lo AS v5, d.hi AS v6, i.version AS v7
  FROM reports.customer_versions d, mart.items i WHERE i.id = :id \\gset
\\if :v5 <> :v6 or :v6 <> :v7
INSERT INTO public.mixed_reads (query, a, b) VALUES ('reports.customer_versions, items', :v5, :v7);
\\endif
\\if :v1 = 1
SELECT nextval('public.reads_blue');
\\elif :v1 = 2
SELECT nextval('public.reads_green');
\\else
INSERT INTO public.mixed_reads (query, a, b) VALUES ('unexpected version', :v1, :v2);
\\endif
});

# One transaction, two statements, two views (the higher-numbered one first):
# the first view stays locked until the end, so no switch can come between.
PostgreSQL::Test::Utils::append_to_file("$dir/txn.sql", q{\set id random(1, 200)
BEGIN;
SELECT version AS t1 FROM mart.shipments WHERE id = :id \gset
SELECT version AS t2 FROM mart.customers WHERE id = :id \gset
\if :t1 <> :t2
INSERT INTO public.mixed_reads (query, a, b) VALUES ('one transaction: shipments, then customers', :t1, :t2);
\endif
END;
});

# Each reader group runs pgbench in chunks of a few seconds until the stop
# file exists (pgbench prints its summary only when it ends by itself); the
# outputs of all the chunks are appended to one file per group.
my $stop = "$dir/stop";
my $pgbench = $node->installed_command('pgbench');
my $loop = q{
pgbench=$1 host=$2 port=$3 mode=$4 dir=$5 stop=$6 out=$7 err=$8
export PGAPPNAME=reader_$mode
i=0
while [ ! -e "$stop" ] && [ $i -lt 300 ]; do
	i=$((i + 1))
	"$pgbench" -n -h "$host" -p "$port" -c 2 -j 2 -T 3 -M "$mode" --failures-detailed --verbose-errors \
		-f "$dir/reads.sql@4" -f "$dir/txn.sql@1" postgres >>"$out" 2>>"$err"
	rc=$?
	echo "pgbench exit status: $rc" >>"$out"
	# 1: could not start (no server any more): give up
	[ $rc -eq 1 ] && break
done
};
my $log_path = $PostgreSQL::Test::Utils::log_path;
my %readers;
for my $mode (qw(simple prepared))
{
	my ($out, $err) = ("$log_path/010_readers_$mode.out", "$log_path/010_readers_$mode.err");
	unlink $out, $err;
	my $bash_err = '';
	$readers{$mode} = {
		out => $out,
		err => $err,
		bash_err => \$bash_err,
		h => IPC::Run::start(
			[ 'bash', '-c', $loop, 'readers', $pgbench, $node->host, $node->port, $mode, $dir, $stop, $out, $err ],
			'<', \undef, '>', \$bash_err, '2>', \$bash_err),
	};
}

sub reads_done
{
	return $node->safe_psql('postgres', q{
SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.reads_blue)
     + (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.reads_green)});
}

# both groups connected and reading before the first switch
$node->poll_query_until('postgres', q{
SELECT count(DISTINCT application_name) = 2 FROM pg_stat_activity
WHERE application_name IN ('reader_simple', 'reader_prepared')})
  or die 'the readers did not start';
$node->poll_query_until('postgres',
	q{SELECT (SELECT is_called FROM public.reads_blue) AND (SELECT last_value FROM public.reads_blue) > 20})
  or die 'the readers read nothing';

###############################################################################
# The cycles
###############################################################################

# what a new session reads: each view's distinct versions, then the dependent view
sub live_versions
{
	my $sql = join(" || ' ' || ",
		map { "(SELECT string_agg(DISTINCT version::text, ',') FROM mart.$_)" } @tables)
	  . " || ' | ' || (SELECT lo || '-' || hi || '/' || n FROM reports.customer_versions)";
	return $node->safe_psql('postgres', "SELECT $sql");
}

sub expected_versions
{
	my ($v) = @_;
	return join(' ', ($v) x @tables) . " | $v-$v/$rows{customers}";
}

# a session that stays across every switch, with statements prepared before
# the first one: their cached plans must follow the views
my $watcher = $node->background_psql('postgres');
$watcher->query_safe(q{
SET client_min_messages = warning;
PREPARE dep AS SELECT lo || '-' || hi || '/' || n FROM reports.customer_versions;
PREPARE pair(int) AS SELECT c.version || ' ' || o.version FROM mart.customers c JOIN mart.orders o USING (id) WHERE id = $1;
});
# past the first five executions, so that the generic plan is cached
$watcher->query_safe("EXECUTE dep; EXECUTE pair($_);") for 1 .. 6;

sub watched
{
	return join(' ; ', map { $watcher->query_safe($_) } 'EXECUTE dep', 'EXECUTE pair(7)');
}

sub expected_watched
{
	my ($v) = @_;
	return "$v-$v/$rows{customers} ; $v $v";
}

# the switches run in one long-lived session too
my $driver = $node->background_psql('postgres');
$driver->query_safe('SET client_min_messages = warning');
my $to_green = join('', map { "UPDATE mart__green.$_ SET version = 2;\n" } @tables);

my $reads_before = reads_done();
my $started = time();
my @cycle_seconds;
my $done = 0;
eval {
	for my $cycle (1 .. $cycles)
	{
		my $t0 = time();
		is($driver->query_safe(q{SELECT elt.deploy_prepare('mart', copy_data => true)}),
			'mart__green', "cycle $cycle: prepared");
		$driver->query_safe($to_green);
		is(live_versions() . ' || ' . watched(), expected_versions(1) . ' || ' . expected_watched(1),
			"cycle $cycle: before the promotion, views and the dependent view read version 1");

		$driver->query_safe(qq{SELECT elt.deploy_promote('mart', 'cycle $cycle')});
		is(live_versions() . ' || ' . watched(), expected_versions(2) . ' || ' . expected_watched(2),
			"cycle $cycle: after the promotion, views and the dependent view read version 2");

		$driver->query_safe(qq{SELECT elt.deploy_rollback('mart', 'cycle $cycle rolled back')});
		is(live_versions() . ' || ' . watched(), expected_versions(1) . ' || ' . expected_watched(1),
			"cycle $cycle: after the rollback, views and the dependent view read version 1");
		push @cycle_seconds, time() - $t0;
		$done++;
	}
	1;
} or do {
	# the driver's psql stops at the first error: show what the server said
	fail("the cycles stopped after $done of $cycles: $@");
	diag("driver's stderr: " . ($driver->{stderr} // ''));
};
my $cycles_took = time() - $started;
my $reads_during = reads_done() - $reads_before;

# stop the readers: each group ends its current chunk
PostgreSQL::Test::Utils::append_to_file($stop, '');
$_->{h}->finish for values %readers;
eval { $watcher->quit };
eval { $driver->quit };

is($done, $cycles, "$cycles promote/rollback cycles done");
note(sprintf('cycles took %.1f s (slowest cycle %.2f s)', $cycles_took,
	(sort { $b <=> $a } @cycle_seconds)[0] // 0));

###############################################################################
# The readers' results
###############################################################################
my $total = 0;
for my $mode (qw(simple prepared))
{
	my $r = $readers{$mode};
	my $out = -e $r->{out} ? slurp_file($r->{out}) : '';
	my $err = -e $r->{err} ? slurp_file($r->{err}) : '';
	my ($processed, $failed, $chunks) = (0, 0, 0);
	$processed += $1 while $out =~ /^number of transactions actually processed: (\d+)/mg;
	$failed += $1 while $out =~ /^number of failed transactions: (\d+)/mg;
	my @status = $out =~ /^pgbench exit status: (\d+)$/mg;
	$chunks = scalar @status;
	$total += $processed;
	note("readers ($mode): $chunks pgbench runs, $processed transactions, $failed failed");

	ok($chunks > 0 && !grep({ $_ != 0 } @status), "readers ($mode): every pgbench run exited with status 0")
	  or diag("exit statuses: @status\n${$r->{bash_err}}");
	is(scalar(() = $out =~ /^number of failed transactions: /mg), $chunks,
		"readers ($mode): every pgbench run printed its summary");
	is($failed, 0, "readers ($mode): no failed transaction");
	unlike($out, qr/aborted|Run was aborted/, "readers ($mode): no aborted client");
	unlike($err, qr/ERROR|FATAL|abort|error/i, "readers ($mode): nothing went wrong on stderr")
	  or diag($err);
	cmp_ok($processed, '>', 100, "readers ($mode): more than 100 transactions");
}
cmp_ok($reads_during, '>', 100, 'the readers read more than 100 times while the cycles ran');

my $mixed = $node->safe_psql('postgres', q{SELECT count(*) FROM public.mixed_reads});
is($mixed, '0', 'no read saw two colors at once');
diag($node->safe_psql('postgres', q{SELECT query, a, b, at FROM public.mixed_reads ORDER BY id LIMIT 20}))
  if $mixed ne '0';
my ($blue, $green) = split /\|/, $node->safe_psql('postgres', q{
SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.reads_blue),
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.reads_green)});
note("reads of blue: $blue, of green: $green");
ok($blue > 0 && $green > 0, 'readers read both colors');

# the server saw no error in a reader's session
my @reader_errors = grep { /\] reader_\w+ (?:ERROR|FATAL|PANIC):/ }
  split /\n/, slurp_file($node->logfile);
is(scalar(@reader_errors), 0, 'no error in the server log from the readers')
  or diag(join("\n", @reader_errors[0 .. ($#reader_errors < 19 ? $#reader_errors : 19)]));

# the deployments, and how hard the switches had to try for their locks
is($node->safe_psql('postgres', q{SELECT count(*) || ' ' || string_agg(DISTINCT state, ',') FROM elt.deployments WHERE interface = 'mart'}),
	"$cycles rolled_back", "$cycles deployments, all rolled back");
note($node->safe_psql('postgres', q{
SELECT action || ': lock attempts max ' || max((details->>'lock_attempts')::int)
       || ', total ' || sum((details->>'lock_attempts')::int) || ' for ' || count(*) || ' switches'
FROM elt.deployment_events WHERE interface = 'mart' AND action IN ('deploy_promote', 'deploy_rollback')
GROUP BY action ORDER BY action}));
my $waits = () = slurp_file($node->logfile) =~ /still waiting for/g;
note("lock waits longer than deadlock_timeout in the server log: $waits");

$node->stop;
done_testing();
