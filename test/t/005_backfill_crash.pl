# Backfills survive crashes exactly once.  A worker killed with SIGKILL in
# the middle of a chunk, and an immediate shutdown of the server in the
# middle of a run: after the restart the launcher resumes the backfill on
# its own, and when it finishes every key range was applied exactly once
# (a per-row counter and a side table written by the chunk statement) and
# the table equals the result of one single UPDATE.  Without the library
# preloaded, nothing resumes by itself, the backfill shows as interrupted,
# and elt.backfill_start resumes it from its checkpoint.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('backfill_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'elt_governance'
restart_after_crash = on
elt.launcher_naptime = 1
});
$node->start;

# Each chunk sleeps a little, so that kills land inside chunks.
my $setup = q{
CREATE TABLE t (id bigint PRIMARY KEY, amount int NOT NULL, total bigint,
                applied int NOT NULL DEFAULT 0);
INSERT INTO t (id, amount) SELECT g, g % 97 FROM generate_series(1, 30000) g;
CREATE TABLE ranges (lo bigint, hi bigint, n bigint);
CREATE TABLE expected AS SELECT id, amount, amount * 100 AS total FROM t;
SELECT elt.backfill_create('bf', 't',
  'WITH pause AS (SELECT pg_sleep(0.05)),
        u AS (UPDATE t SET total = amount * 100, applied = applied + 1
              FROM pause WHERE id >= $1 AND id < $2 RETURNING 1)
   INSERT INTO ranges SELECT $1, $2, count(*) FROM u',
  chunk_rows => 500, options => '{"target_chunk_ms": 0}');
};
$node->safe_psql('postgres', "CREATE EXTENSION elt_governance;\n$setup");

sub wait_for_workers
{
	my ($n, $what) = @_;
	$node->poll_query_until('postgres',
		qq{SELECT count(*) >= $n FROM pg_stat_activity
		   WHERE backend_type = 'elt_governance backfill' AND query LIKE 'backfill bf: chunk%'})
	  or die "no worker running a chunk ($what)";
}

sub wait_finished
{
	my ($what) = @_;
	$node->poll_query_until('postgres',
		q{SELECT state FROM elt.backfill_status WHERE name = 'bf'}, 'finished')
	  or die "backfill did not finish ($what): "
	  . $node->safe_psql('postgres', 'SELECT state, state_reason, last_error FROM elt.backfill_status');
}

sub check_exactly_once
{
	my ($what) = @_;
	is($node->safe_psql('postgres', q{SELECT string_agg(applied || ':' || n, ',') FROM
		(SELECT applied, count(*) AS n FROM t GROUP BY applied) s}),
		'1:30000', "$what: every row applied exactly once");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM (
		SELECT lo, lead(lo) OVER (ORDER BY lo) AS next, hi FROM ranges) s
		WHERE next IS NOT NULL AND next <> hi}), '0',
		"$what: the ranges applied are contiguous");
	is($node->safe_psql('postgres', q{SELECT count(*) - count(DISTINCT lo) FROM ranges}), '0',
		"$what: no range applied twice");
	is($node->safe_psql('postgres', q{SELECT sum(n) FROM ranges}), '30000',
		"$what: the ranges cover every row once");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM t FULL JOIN expected e USING (id)
		WHERE t.total IS DISTINCT FROM e.total OR t.amount IS DISTINCT FROM e.amount}), '0',
		"$what: the table equals the single-statement result");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.backfill_chunks WHERE state <> 'done'}),
		'0', "$what: every chunk is done");
	is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't',
		"$what: the audit chain verifies");
}

# 1. a worker killed with SIGKILL in the middle of a chunk
$node->safe_psql('postgres', q{SELECT elt.backfill_start('bf', 2)});
wait_for_workers(1, 'before the kill');
$node->poll_query_until('postgres',
	q{SELECT count(*) >= 3 FROM elt.backfill_chunks WHERE state = 'done'})
  or die 'no chunk done';
my $pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'elt_governance backfill'
	  AND query LIKE 'backfill bf: chunk%' LIMIT 1});
ok($pid =~ /^\d+$/, 'found a worker inside a chunk');
kill 'KILL', $pid;
# the postmaster restarts every process after a crashed one
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'server did not come back';
my $done_after_kill = $node->safe_psql('postgres',
	q{SELECT count(*) FROM elt.backfill_chunks WHERE state = 'done'});
ok($done_after_kill < 60, "killed before the end ($done_after_kill of 60 chunks done)");
wait_finished('after SIGKILL of a worker');
check_exactly_once('worker SIGKILL');
like($node->safe_psql('postgres',
		q{SELECT string_agg(details->>'by', ',') FROM elt.audit_log WHERE action = 'backfill_resumed'}),
	qr/launcher/, 'the launcher resumed it');

# 2. an immediate shutdown in the middle of a run
$node->safe_psql('postgres', q{
DROP TABLE t, ranges, expected;
SELECT elt.backfill_purge('0');
} . $setup);
$node->safe_psql('postgres', q{SELECT elt.backfill_start('bf', 1)});
$node->poll_query_until('postgres',
	q{SELECT count(*) >= 5 FROM elt.backfill_chunks WHERE state = 'done'})
  or die 'no chunk done';
wait_for_workers(1, 'before the shutdown');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', q{SELECT state <> 'finished' FROM elt.backfill_status}), 't',
	'not finished at the restart');
wait_finished('after an immediate shutdown');
check_exactly_once('immediate shutdown');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM elt.backfill_chunks WHERE attempts <> 1}), '0',
	'no chunk was attempted twice (the one in flight rolled back)');

# 3. without the library preloaded: interrupted until started again
$node->stop;
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->start;
$node->safe_psql('postgres', q{
DROP TABLE t, ranges, expected;
SELECT elt.backfill_purge('0');
} . $setup);
$node->safe_psql('postgres', q{SELECT elt.backfill_start('bf', 1)});
$node->poll_query_until('postgres',
	q{SELECT count(*) >= 3 FROM elt.backfill_chunks WHERE state = 'done'})
  or die 'no chunk done';
$node->stop('immediate');
$node->start;
sleep(2);
is($node->safe_psql('postgres', q{SELECT state || ':' || live_workers FROM elt.backfill_status}),
	'interrupted:0', 'without preload, the backfill shows as interrupted');
$node->safe_psql('postgres', q{SELECT elt.backfill_start('bf', 2)});
wait_finished('started again without preload');
check_exactly_once('without preload');

# 4. a worker stopped by an error outside a chunk pauses the backfill, with
# the error, rather than leaving it running with no worker
$node->safe_psql('postgres', q{
DROP TABLE t, ranges, expected;
SELECT elt.backfill_purge('0');
} . $setup);
$node->safe_psql('postgres', q{SELECT elt.backfill_start('bf', 1)});
$node->poll_query_until('postgres',
	q{SELECT count(*) >= 2 FROM elt.backfill_chunks WHERE state = 'done'})
  or die 'no chunk done';
$node->safe_psql('postgres', q{ALTER TABLE t ALTER COLUMN id TYPE numeric});
$node->poll_query_until('postgres', q{SELECT state FROM elt.backfill_status}, 'paused')
  or die 'not paused: ' . $node->safe_psql('postgres', 'SELECT state, state_reason FROM elt.backfill_status');
like($node->safe_psql('postgres', q{SELECT state_reason FROM elt.backfill_status}),
	qr/stopped by an error: key column "id" of public\.t changed type/,
	'a worker error pauses the backfill with the error');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.audit_log WHERE action = 'backfill_paused'}),
	'1', 'once, in the audit log');

$node->stop;
done_testing();
