# A pg_cron job running CALL elt.backfill_run(...) is recorded 'failed' in
# cron.job_run_details, with the reason in return_message, when its backfill
# fails (a chunk's statement errors) or is paused (by a breaking change made
# in an approved migration under enforce); a healthy one 'succeeded'.  The
# chunks a failing run did stay committed.  With the real pg_cron.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron_fail');
# pg_cron: Debian's for 15, built by scripts/pg_build.sh for 16 to 18
my $cron_share = $node->config_data('--sharedir');
plan skip_all => "pg_cron is not installed for this PostgreSQL (no $cron_share/extension/pg_cron.control)"
  unless -f "$cron_share/extension/pg_cron.control";
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron,elt_governance'
cron.database_name = 'postgres'
cron.host = '@{[ $node->host ]}'
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION elt_governance;
SELECT elt.approver_add('lead');
CREATE SCHEMA wh;
-- f: its chunk over id 2500 divides by zero
CREATE TABLE wh.f (id bigint PRIMARY KEY, d int NOT NULL, applied int NOT NULL DEFAULT 0);
INSERT INTO wh.f (id, d) SELECT i, CASE WHEN i = 2500 THEN 0 ELSE 1 END FROM generate_series(1, 5000) i;
-- p: paused by a breaking change before its job runs
CREATE TABLE wh.p (id bigint PRIMARY KEY, a int, b int, applied int NOT NULL DEFAULT 0);
INSERT INTO wh.p (id, a, b) SELECT i, i, i FROM generate_series(1, 3000) i;
-- h: healthy
CREATE TABLE wh.h (id bigint PRIMARY KEY, applied int NOT NULL DEFAULT 0);
INSERT INTO wh.h (id) SELECT i FROM generate_series(1, 3000) i;
ANALYZE wh.f, wh.p, wh.h;
SELECT elt.govern('wh', 'enforce');
SELECT elt.backfill_create('f', 'wh.f',
	'UPDATE wh.f SET applied = applied + 1 / d WHERE id >= $1 AND id < $2',
	chunk_rows => 1000, options => '{"target_chunk_ms": 0, "max_attempts": 1}');
SELECT elt.backfill_create('p', 'wh.p',
	'UPDATE wh.p SET applied = applied + 1 WHERE id >= $1 AND id < $2',
	chunk_rows => 1000, options => '{"target_chunk_ms": 0}');
SELECT elt.backfill_create('h', 'wh.h',
	'UPDATE wh.h SET applied = applied + 1 WHERE id >= $1 AND id < $2',
	chunk_rows => 1000, options => '{"target_chunk_ms": 0}');
});

# p runs one chunk, then a breaking change made in an approved migration
# pauses it (EltBackfillPauseForChange)
$node->safe_psql('postgres', q{CALL elt.backfill_run('p', max_chunks => 1)});
$node->safe_psql('postgres', q{
SELECT elt.migration_begin('drop b', 'b is unused', 'lead');
ALTER TABLE wh.p DROP COLUMN b;
SELECT elt.migration_end();
});
is($node->safe_psql('postgres', q{SELECT state FROM elt.backfill_status WHERE name = 'p'}),
	'paused', 'the breaking change paused backfill p');

my %job;
for my $n (qw(f p h))
{
	$job{$n} = $node->safe_psql('postgres',
		qq{SELECT cron.schedule('bf_$n', '* * * * *', \$\$CALL elt.backfill_run('$n', max_seconds => 300)\$\$)});
}

# every job's first run ends at the next minute boundary; then unschedule
# them all before the following minute fires them again
my $ids = join(',', values %job);
ok($node->poll_query_until('postgres', qq{
	SELECT count(DISTINCT jobid) FROM cron.job_run_details
	WHERE jobid IN ($ids) AND status IN ('succeeded', 'failed')}, '3'),
	'the three jobs ran')
  or diag($node->safe_psql('postgres', q{SELECT jobid, status, return_message FROM cron.job_run_details}));
$node->safe_psql('postgres', qq{SELECT cron.unschedule('bf_$_')}) for qw(f p h);

sub run_of
{
	my ($n) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT status || E'\\n' || return_message FROM cron.job_run_details
		WHERE jobid = $job{$n} AND status IN ('succeeded', 'failed') ORDER BY runid LIMIT 1});
}

# f: failed, with the chunk's error
my ($st, $msg) = split /\n/, run_of('f'), 2;
is($st, 'failed', 'the job of the failing backfill is recorded failed');
like($msg, qr/backfill "f" failed/, 'its return_message names the backfill and its state');
like($msg, qr/chunk 3 failed: division by zero/, 'its return_message gives the reason');
is($node->safe_psql('postgres', q{
	SELECT state || ':' || chunks_done || ':' || chunks_failed FROM elt.backfill_status WHERE name = 'f'}),
	'failed:2:1', 'f is failed with its first two chunks done');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE applied = 1) || ':' || count(*) FILTER (WHERE applied = 0) FROM wh.f}),
	'2000:3000', 'the chunks the failing run did stay committed');

# p: failed, paused by the breaking change
($st, $msg) = split /\n/, run_of('p'), 2;
is($st, 'failed', 'the job of the paused backfill is recorded failed');
like($msg, qr/backfill "p" is paused/, 'its return_message names the backfill and its state');
like($msg, qr/paused by breaking change EG104: drops column wh\.p\.b/,
	'its return_message gives the breaking change');
like($msg, qr/elt\.backfill_resume\('p'\)/, 'and says how to resume it');
is($node->safe_psql('postgres', q{
	SELECT state || ':' || chunks_done FROM elt.backfill_status WHERE name = 'p'}),
	'paused:1', 'p is still paused, with its one chunk done');

# h: succeeded, finished
($st, $msg) = split /\n/, run_of('h'), 2;
is($st, 'succeeded', 'the job of the healthy backfill is recorded succeeded');
is($node->safe_psql('postgres', q{
	SELECT state || ':' || chunks_done FROM elt.backfill_status WHERE name = 'h'}),
	'finished:3', 'h finished');
is($node->safe_psql('postgres', q{SELECT count(*) FROM wh.h WHERE applied <> 1}), '0',
	'every row of h applied once');

is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't',
	'the audit chain verifies');

$node->stop;
done_testing();
