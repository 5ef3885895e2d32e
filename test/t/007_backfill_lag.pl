# pause_when_lag_bytes: while a standby's replay is further behind than the
# bound, a backfill does no chunk (and says so in pg_stat_activity); once
# the standby catches up, it goes on to the end.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('lag_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$primary->start;
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('lag_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "wal_receiver_status_interval = 1");
$standby->start;

$primary->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE TABLE t (id int PRIMARY KEY, applied int NOT NULL DEFAULT 0);
INSERT INTO t (id) SELECT generate_series(1, 1000);
SELECT elt.backfill_create('lagged', 't', 'UPDATE t SET applied = applied + 1 WHERE id >= $1 AND id < $2',
  chunk_rows => 100, options => '{"target_chunk_ms": 0, "pause_when_lag_bytes": 1000000}');
});
$primary->wait_for_catchup($standby, 'replay');

# replay stops; the primary writes a few megabytes more
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$primary->safe_psql('postgres', q{CREATE TABLE filler AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 20000) g});
$primary->poll_query_until('postgres', q{SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) > 1000000
	FROM pg_stat_replication}) or die 'no lag';

my ($ret, $out, $err) = $primary->psql('postgres', q{CALL elt.backfill_run('lagged', max_seconds => 3)});
is($ret, 0, 'backfill_run returns');
like($err, qr/0 chunks done in this call .*max_seconds reached/, 'no chunk while the standby lags');
is($primary->safe_psql('postgres', q{SELECT count(*) FROM t WHERE applied > 0}), '0', 'nothing processed');

$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
$primary->wait_for_catchup($standby, 'replay');
$primary->poll_query_until('postgres', q{SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) < 1000000
	FROM pg_stat_replication}) or die 'lag stays';
($ret, $out, $err) = $primary->psql('postgres', q{CALL elt.backfill_run('lagged')});
is($ret, 0, 'backfill_run returns once the standby caught up');
like($err, qr/10 chunks done in this call .*finished/, 'and finishes');
is($primary->safe_psql('postgres', q{SELECT count(*) FROM t WHERE applied = 1}), '1000', 'every row once');

$standby->stop;
$primary->stop;
done_testing();
