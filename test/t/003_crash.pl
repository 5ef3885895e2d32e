# Crashes lose nothing that committed and leave nothing half-written: a
# backend killed with SIGKILL in the middle of a DDL transaction leaves no
# version and no audit row; a postmaster killed with SIGKILL keeps every
# committed version; the chain verifies after recovery and numbering goes on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
# the test framework turns this off; here the postmaster must recover by itself
$node->append_conf('postgresql.conf', "restart_after_crash = on");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA s;
CREATE TABLE s.t (id int PRIMARY KEY);
SELECT elt.govern('s');
ALTER TABLE s.t ADD COLUMN committed_before int;
});

my $versions = q{SELECT string_agg(version::text, ',' ORDER BY version) FROM elt.schema_versions};
is($node->safe_psql('postgres', $versions), '1,2', 'two versions before the crash');

# 1. a backend killed inside its DDL transaction, after the version was written
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $victim->query_safe('SELECT pg_backend_pid()');
$victim->query_safe('BEGIN');
$victim->query_safe('ALTER TABLE s.t ADD COLUMN never_committed int');
is($victim->query_safe(q{SELECT count(*) FROM elt.schema_versions WHERE statement LIKE '%never_committed%'}),
	'1', 'the version exists inside the open transaction');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
$victim->quit;

# the postmaster restarts every backend after a crashed one: wait until it
# has noticed (a query could otherwise still reach the old server, or find
# it in recovery), then until it accepts connections again
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'server did not come back';
is($node->safe_psql('postgres', $versions), '1,2', 'no version from the killed transaction');
# govern, baseline, then the first ALTER's classification and version
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.audit_log}), '4',
	'no audit row from the killed transaction');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM elt.schema_changes WHERE statement LIKE '%never_committed%'}),
	'0', 'no classified change from the killed transaction');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't',
	'chain verifies after the backend crash');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_attribute WHERE attrelid = 's.t'::regclass AND attname = 'never_committed'}),
	'0', 'and the column itself is not there');

# 2. the whole server killed right after a commit
$node->safe_psql('postgres', 'ALTER TABLE s.t ADD COLUMN committed_last int');
my $digest = $node->safe_psql('postgres', 'SELECT elt.audit_digest()');
my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
$node->kill9;
# wait for the killed postmaster, then start again once its children let go
# of shared memory
for (my $i = 0; $i < 600 && kill(0, $postmaster); $i++) { usleep(100_000); }
my $started = 0;
for (my $i = 0; $i < 60 && !$started; $i++)
{
	$started = $node->start(fail_ok => 1);
	sleep(1) unless $started;
}
ok($started, 'server restarted after the postmaster was killed');
is($node->safe_psql('postgres', $versions), '1,2,3', 'committed version survives a postmaster SIGKILL');
is($node->safe_psql('postgres', qq{SELECT valid FROM elt.audit_verify('$digest')}), 't',
	'chain and digest verify after crash recovery');

# 3. recording goes on with the next number
$node->safe_psql('postgres', 'ALTER TABLE s.t ADD COLUMN after_recovery int');
is($node->safe_psql('postgres', $versions), '1,2,3,4', 'numbering goes on without a gap');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'chain still verifies');

$node->stop;
done_testing();
