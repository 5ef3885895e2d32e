# The launcher resumes backfills under the caps on backfill workers.  Two
# backfills of one role ran four workers between them (a superuser's session
# had raised the caps); after an immediate shutdown the launcher gives them
# no more than elt.max_backfill_workers_per_role: one resumes, the other
# waits and says why in its state_reason, and resumes once the first is
# done.  Every row is applied exactly once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('backfill_caps');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'elt_governance'
elt.launcher_naptime = 1
elt.max_backfill_workers = 3
elt.max_backfill_workers_per_role = 2
});
$node->start;

# The chunks wait until a row is in go (a new snapshot at each look).
$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE ROLE capper LOGIN;
CREATE TABLE go (ok bool);
GRANT SELECT ON go TO capper;
CREATE FUNCTION wait_for_go() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  WHILE NOT EXISTS (SELECT FROM go) LOOP
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN true;
END $$;
CREATE TABLE t (id int PRIMARY KEY, applied int NOT NULL DEFAULT 0);
INSERT INTO t (id) SELECT generate_series(1, 40);
ALTER TABLE t OWNER TO capper;
SET ROLE capper;
SELECT elt.backfill_create('low', 't',
  'UPDATE t SET applied = applied + 1 WHERE id >= $1 AND id < $2 AND id <= 20 AND public.wait_for_go()',
  chunk_rows => 2, options => '{"target_chunk_ms": 0, "max_chunk_rows": 2}');
SELECT elt.backfill_create('high', 't',
  'UPDATE t SET applied = applied + 1 WHERE id >= $1 AND id < $2 AND id > 20 AND public.wait_for_go()',
  chunk_rows => 2, options => '{"target_chunk_ms": 0, "max_chunk_rows": 2}');
});

is($node->safe_psql('postgres', q{
SET elt.max_backfill_workers = 4;
SET elt.max_backfill_workers_per_role = 4;
SELECT elt.backfill_start('low', 2) + elt.backfill_start('high', 2);
}), '4', 'a superuser\'s session raised the caps: four workers');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'elt_governance backfill'}),
	'4', 'four workers run');

$node->stop('immediate');
$node->start;

# the launcher resumes one backfill with the role's two workers, not the other
$node->poll_query_until('postgres', q{
SELECT count(*) FILTER (WHERE live_workers = 2 AND state_reason IS NULL) = 1
   AND count(*) FILTER (WHERE live_workers = 0 AND state_reason LIKE 'waiting for a background worker:%') = 1
FROM elt.backfill_status})
  or die 'the launcher did not resume the backfills as expected: '
  . $node->safe_psql('postgres', 'SELECT name, state, live_workers, state_reason FROM elt.backfill_status');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'elt_governance backfill'}),
	'2', 'the launcher started no more workers than the role\'s cap');
is($node->safe_psql('postgres',
	q{SELECT state || ': ' || state_reason FROM elt.backfill_status WHERE live_workers = 0}),
	'interrupted: waiting for a background worker: Role "capper" runs 2 workers for its backfills; elt.max_backfill_workers_per_role is 2.',
	'the one left waiting shows as interrupted, and says why');

# once the chunks may go on, both finish, the second on the launcher's next round
$node->safe_psql('postgres', 'INSERT INTO go VALUES (true)');
$node->poll_query_until('postgres',
	q{SELECT count(*) = 2 FROM elt.backfill_status WHERE state = 'finished'})
  or die 'the backfills did not finish: '
  . $node->safe_psql('postgres', 'SELECT name, state, live_workers, state_reason FROM elt.backfill_status');
is($node->safe_psql('postgres', q{SELECT string_agg(applied || ':' || n, ',') FROM
	(SELECT applied, count(*) AS n FROM t GROUP BY applied) s}),
	'1:40', 'every row applied exactly once');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.backfill_status WHERE state_reason IS NOT NULL}),
	'0', 'no reason left once running');
is($node->safe_psql('postgres', q{SELECT string_agg(details->>'workers', ',') FROM elt.audit_log
	WHERE action = 'backfill_resumed' AND details->>'by' = 'launcher'}),
	'2,2', 'the launcher resumed each with two workers');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the audit chain verifies');

$node->stop;
done_testing();
