# Run manifests survive crashes and keep nothing half-done: a session killed
# with SIGKILL in the middle of a pipeline run leaves the run abandoned, with
# only the steps that committed and no manifest; a manifest kept before a
# postmaster SIGKILL is intact afterwards, and the run replays and verifies.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('manifest_crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->append_conf('postgresql.conf', "restart_after_crash = on");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA s;
CREATE TABLE s.src (id int PRIMARY KEY, grp int NOT NULL, v numeric NOT NULL);
INSERT INTO s.src SELECT g, g % 4, g * 1.5 FROM generate_series(1, 400) g;
CREATE TABLE s.totals (grp int PRIMARY KEY, total numeric, at timestamptz);
CREATE TABLE s.copy (id int PRIMARY KEY, v numeric);
SELECT elt.transform_create('totals', 's.totals',
  'SELECT grp, sum(v) AS total, elt.now() AS at FROM s.src GROUP BY grp', 'replace');
SELECT elt.transform_create('copy', 's.copy', 'SELECT id, v FROM s.src', 'replace');
});

# 1. a session killed inside a pipeline run, with a step in flight
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $victim->query_safe('SELECT pg_backend_pid()');
my $run = $victim->query_safe(q{SELECT elt.run_begin('nightly', '{}', 'full')});
$victim->query_safe(q{SELECT elt.transform_run('totals')});
$victim->query_safe('BEGIN');
$victim->query_safe(q{SELECT elt.transform_run('copy')});
is($node->safe_psql('postgres', qq{SELECT status || ' ' || steps FROM elt.runs WHERE run_id = $run}),
	'open 1', 'the run is open with one committed step');
kill 'KILL', $pid;
$victim->quit;
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'server did not come back';

is($node->safe_psql('postgres', qq{SELECT status || ' ' || steps FROM elt.runs WHERE run_id = $run}),
	'abandoned 1', 'after the crash the run is abandoned, with the committed step only');
is($node->safe_psql('postgres', q{SELECT count(*) FROM s.copy}), '0', 'the step in flight left no rows');
my ($ret, $out, $err) = $node->psql('postgres', qq{SELECT elt.run_manifest($run)});
like($err, qr/run $run was abandoned: its session ended before elt.run_end\(\)/,
	'an abandoned run has no manifest, and says why');

# 2. a manifest kept, then the postmaster killed
my $kept = $node->safe_psql('postgres', q{
SELECT elt.run_begin('kept', '{}', 'full');
SELECT elt.transform_run('totals') > 0;
SELECT elt.transform_run('copy') > 0;
SELECT elt.run_end();
});
($kept) = (split /\n/, $kept)[-1];
my $manifest_id = $node->safe_psql('postgres', qq{SELECT manifest_id FROM elt.runs WHERE run_id = $kept});
my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
$node->kill9;
for (my $i = 0; $i < 600 && kill(0, $postmaster); $i++) { usleep(100_000); }
my $started = 0;
for (my $i = 0; $i < 60 && !$started; $i++)
{
	$started = $node->start(fail_ok => 1);
	sleep(1) unless $started;
}
ok($started, 'server restarted after the postmaster was killed');
is($node->safe_psql('postgres', qq{
SELECT m->>'id' = '$manifest_id'
   AND m->>'id' = encode(sha256(convert_to((m - 'id')::text, 'UTF8')), 'hex')
FROM elt.run_manifest($kept) m}), 't', 'the kept manifest is intact and still hashes to its id');

# 3. the sources change; the run replays from its snapshots and verifies
$node->safe_psql('postgres', q{
ALTER TABLE s.src ADD COLUMN note text;
UPDATE s.src SET v = v + 1000 WHERE id <= 50;
});
my $replay = $node->safe_psql('postgres', qq{SELECT elt.replay($kept)});
is($node->safe_psql('postgres', qq{SELECT bool_and(ok) FROM elt.verify_replay($kept, $replay)}), 't',
	'the replay after recovery verifies');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the audit chain verifies');

$node->stop;
done_testing();
