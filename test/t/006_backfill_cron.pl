# The real pg_cron can drive a backfill: a job that runs
# CALL elt.backfill_run(...) every minute (pg_cron in its default libpq mode
# sends the command as a top-level query, so the procedure may commit) takes
# the backfill to 'finished', with every key range applied exactly once in
# contiguous, non-overlapping chunks, each done on its first attempt; and a
# job with max_chunks does only that many chunks in one run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
# pg_cron: Debian's for 15, built by scripts/pg_build.sh for 16 to 18
my $cron_share = $node->config_data('--sharedir');
plan skip_all => "pg_cron is not installed for this PostgreSQL (no $cron_share/extension/pg_cron.control)"
  unless -f "$cron_share/extension/pg_cron.control";
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron,elt_governance'
cron.database_name = 'postgres'
# pg_cron connects over libpq; the node only listens on its socket directory
cron.host = '@{[ $node->host ]}'
# the NOTICE elt.backfill_run sends at its end goes to the server log too
log_min_messages = notice
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION elt_governance;
CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, applied int NOT NULL DEFAULT 0);
INSERT INTO t (id, v) SELECT i, i FROM generate_series(1, 20000) i;
CREATE TABLE u (id bigint PRIMARY KEY, v int NOT NULL, applied int NOT NULL DEFAULT 0);
INSERT INTO u (id, v) SELECT i, i FROM generate_series(1, 10000) i;
ANALYZE t, u;
SELECT elt.backfill_create('x', 't',
	'UPDATE t SET v = v * 2, applied = applied + 1 WHERE id >= $1 AND id < $2',
	chunk_rows => 1000, options => '{"target_chunk_ms": 0}');
SELECT elt.backfill_create('y', 'u',
	'UPDATE u SET v = v * 2, applied = applied + 1 WHERE id >= $1 AND id < $2',
	chunk_rows => 1000, options => '{"target_chunk_ms": 0}');
});

# pg_cron 1.4 has minute granularity: both jobs fire at the next minute
# boundary, so the second part costs no extra wait
my $log_offset = -s $node->logfile;
# (cron.unschedule deletes the cron.job row; job_run_details keeps the jobid)
my $job = $node->safe_psql('postgres',
	q{SELECT cron.schedule('bf', '* * * * *', $$CALL elt.backfill_run('x', max_seconds => 300)$$)});
my $job3 = $node->safe_psql('postgres',
	q{SELECT cron.schedule('bf3', '* * * * *', $$CALL elt.backfill_run('y', max_chunks => 3)$$)});

# 1. the whole backfill in one cron run
ok($node->poll_query_until('postgres',
		q{SELECT state FROM elt.backfill_status WHERE name = 'x'}, 'finished'),
	'pg_cron ran backfill x to the end')
  or diag($node->safe_psql('postgres',
		q{SELECT jobid, status, return_message FROM cron.job_run_details}));
# the CALL has committed its last chunk; pg_cron records the run's end just
# after it returns.  Then stop the job, which would run again every minute
# (and find nothing to do).
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) FROM cron.job_run_details
	WHERE jobid = $job AND status IN ('succeeded', 'failed')}, '1'),
	'the job of x ended its run');
$node->safe_psql('postgres', q{SELECT cron.unschedule('bf')});
note($node->safe_psql('postgres', q{
	SELECT string_agg(format('%s #%s [%s, %s) final=%s %s attempts=%s rows=%s', b.name, chunk_no,
	       lower_bound, upper_bound, final, c.state, attempts, rows_affected), E'\n'
	       ORDER BY b.name, chunk_no)
	FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)}));

# 2. the max_chunks job: wait for its first run to end, then stop it before
# the next minute fires it again
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) FROM cron.job_run_details d
	WHERE d.jobid = $job3 AND d.status IN ('succeeded', 'failed')}, '1'),
	'the max_chunks job ran once');
my $y = $node->safe_psql('postgres', qq{
	SELECT (SELECT count(*) FROM cron.job_run_details WHERE jobid = $job3) || ':'
	    || (SELECT chunks_done || ':' || state FROM elt.backfill_status WHERE name = 'y')
	    || ':' || (SELECT count(*) FROM u WHERE applied = 1)
	    || ':' || (SELECT count(*) FROM u WHERE applied = 0)});
$node->safe_psql('postgres', q{SELECT cron.unschedule('bf3')});
is($y, '1:3:running:3000:7000',
	'one run of the max_chunks job did 3 chunks (3000 rows) and left the backfill running');
is($node->safe_psql('postgres', q{
	SELECT string_agg(chunk_no || '=' || c.state || '/' || attempts, ',' ORDER BY chunk_no)
	FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
	WHERE b.name = 'y' AND c.state <> 'pending'}),
	'1=done/1,2=done/1,3=done/1', 'its first three chunks are done');
is($node->safe_psql('postgres', qq{
	SELECT status || ' ' || return_message FROM cron.job_run_details WHERE jobid = $job3}),
	'succeeded CALL', 'the max_chunks run succeeded');

# the results of backfill x
is($node->safe_psql('postgres', q{
	SELECT count(*) || ':' || count(*) FILTER (WHERE applied = 1)
	    || ':' || count(*) FILTER (WHERE v = id * 2) FROM t}),
	'20000:20000:20000', 'every row applied exactly once and doubled once');
my $chunks = $node->safe_psql('postgres', q{
	SELECT count(*), count(*) FILTER (WHERE c.state = 'done' AND attempts = 1),
	       sum(rows_affected)
	FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id) WHERE b.name = 'x'});
my ($nchunks, $ndone, $affected) = split /\|/, $chunks;
is($nchunks, '20', '20 chunks of 1000 rows');
is($ndone, $nchunks, 'every chunk done on its first attempt');
is($affected, '20000', 'the chunks affected 20000 rows in all');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
	WHERE b.name = 'x' AND c.rows_affected <> 1000}),
	'0', 'every chunk updated 1000 rows (target_chunk_ms 0 keeps the size)');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
		SELECT chunk_no, lower_bound::bigint AS lo, upper_bound::bigint AS hi,
		       lag(upper_bound::bigint) OVER (ORDER BY chunk_no) AS prev_hi,
		       lag(chunk_no) OVER (ORDER BY chunk_no) AS prev_no
		FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
		WHERE b.name = 'x') s
	WHERE hi IS NULL OR lo IS NULL OR hi <= lo
	   OR (prev_no IS NOT NULL AND (prev_no <> chunk_no - 1 OR lo <> prev_hi))}),
	'0', 'chunks are numbered without gaps and their ranges are contiguous and ordered');
is($node->safe_psql('postgres', q{
	SELECT min(lower_bound::bigint) <= 1 AND max(upper_bound::bigint) > 20000
	FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id) WHERE b.name = 'x'}),
	't', 'the ranges cover every key');
is($node->safe_psql('postgres', q{
	SELECT chunks_done = chunks_total AND runner = 'session' AND chunks_failed = 0
	FROM elt.backfill_status WHERE name = 'x'}),
	't', 'backfill_status: all chunks done by a session runner');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM cron.job_run_details WHERE jobid = $job AND status = 'succeeded'
	  AND command = \$\$CALL elt.backfill_run('x', max_seconds => 300)\$\$}),
	'1', 'cron.job_run_details has one succeeded run of the command');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cron.job_run_details WHERE status <> 'succeeded'}),
	'0', 'no cron run failed');

my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/NOTICE:  backfill "x": $nchunks chunks done in this call \(20000 rows\)/,
	'one cron call did every chunk of x');
like($log, qr/NOTICE:  backfill "y": 3 chunks done in this call \(3000 rows\); max_chunks reached/,
	'the max_chunks call stopped after 3 chunks');
unlike($log, qr/cannot run inside a transaction block/, 'no transaction block error');

is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't',
	'the audit chain verifies');

$node->stop;
done_testing();
