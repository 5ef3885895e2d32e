# The real pg_partman 4.7 maintains a partitioned table of a governed schema
# under policy enforce, from run_maintenance(), run_maintenance_proc() and its
# background worker: partitions are created, attached, dropped and detached
# without an EG error; the parent's history records each as "partition ...
# attached/dropped/detached"; no partition gets a history (or a
# tracked_tables row) of its own; a second partition set in another schema
# keeps being maintained; a breaking change to the parent's shape is still
# blocked.  Then the one case that can still block maintenance (a partition
# governed on its own under enforce, reached by retention) and what to
# configure for it: automatic_maintenance = 'off' for that set, so that the
# other sets are maintained (docs/tools/pg_partman.md).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('partman');
# Debian packages pg_partman for PostgreSQL 15 only (scripts/setup.sh)
my $sharedir = $node->config_data('--sharedir');
plan skip_all => "pg_partman is not installed for this PostgreSQL (no $sharedir/extension/pg_partman.control)"
  unless -f "$sharedir/extension/pg_partman.control";
$node->init;
# the background worker waits an hour: the first part runs maintenance by hand
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'elt_governance,pg_partman_bgw'
pg_partman_bgw.dbname = 'postgres'
pg_partman_bgw.interval = 3600
});
$node->start;

# partition names of a daily set: <table>_pYYYY_MM_DD
sub part
{
	my ($table, $days) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT '$table' || '_p' || to_char(current_date + $days, 'YYYY_MM_DD')});
}

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
CREATE SCHEMA ev;
CREATE TABLE ev.events (id bigint NOT NULL, at timestamptz NOT NULL, payload text)
    PARTITION BY RANGE (at);
CREATE VIEW ev.recent AS SELECT id, at, payload FROM ev.events;
SELECT elt.govern('ev', 'enforce');
SELECT partman.create_parent('ev.events', 'at', 'native', 'daily',
    p_premake := 3, p_start_partition := (current_date - 6)::text);
CREATE SCHEMA other;
CREATE TABLE other.metrics (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
SELECT partman.create_parent('other.metrics', 'at', 'native', 'daily',
    p_premake := 3, p_start_partition := (current_date - 6)::text);
INSERT INTO ev.events SELECT g, current_date - g, 'x' FROM generate_series(0, 6) g;
});

# 1. create_parent: 7 past days and 3 ahead, and a default partition, each
# one version of the parent; no partition (nor the template) has a history
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM partman.show_partitions('ev.events')}),
	'10', 'create_parent made ten daily partitions of the governed table');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM elt.schema_history
	WHERE schema_name = 'ev' AND table_name = 'events'
	  AND summary ~ '^partition ev\.events_(p\d{4}_\d\d_\d\d|default) attached$'}),
	'11', 'the parent history records each partition attached, one version each');
is($node->safe_psql('postgres',
		q{SELECT string_agg(format('%s.%s', schema_name, table_name), ', ') FROM elt.tracked_tables}),
	'ev.events', 'no partition and no template table has a history of its own');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM elt.audit_log
	WHERE action = 'version_recorded' AND object <> 'ev.events'}),
	'0', 'and no audit row for a version of a partition');

# 2. retention that drops tables, from run_maintenance()
my $log_offset = -s $node->logfile;
my $dropped = part('ev.events', -6);
$node->safe_psql('postgres', q{
UPDATE partman.part_config SET retention = '4 days', retention_keep_table = false
WHERE parent_table IN ('ev.events', 'other.metrics');
SELECT partman.run_maintenance();
});
is($node->safe_psql('postgres', qq{SELECT to_regclass('$dropped') IS NULL}),
	't', 'run_maintenance dropped the partitions past retention');
is($node->safe_psql('postgres', q{
	SELECT string_agg(command_tag, ',' ORDER BY version) FROM elt.schema_history
	WHERE table_name = 'events' AND summary ~ '^partition ev\.events_p\S+ dropped$'}),
	'DROP TABLE,DROP TABLE', 'the parent history records the partitions dropped');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM partman.show_partitions('other.metrics')}),
	'8', 'the other partition set was maintained in the same run');

# 3. retention that keeps the tables (DETACH PARTITION), from the procedure
my $detached = part('ev.events', -4);
$node->safe_psql('postgres', q{
UPDATE partman.part_config SET retention = '3 days', retention_keep_table = true
WHERE parent_table = 'ev.events';
CALL partman.run_maintenance_proc();
});
is($node->safe_psql('postgres', qq{
	SELECT c.relispartition FROM pg_class c WHERE c.oid = '$detached'::regclass}),
	'f', 'run_maintenance_proc detached the partition past retention, keeping the table');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM elt.schema_history
	WHERE table_name = 'events' AND summary = 'partition $detached detached'}),
	'1', 'the parent history records the partition detached');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.tracked_tables}),
	'1', 'the kept table got no history either');
# retention_schema: detach, then ALTER TABLE ... SET SCHEMA in the same run
my $moved = part('events', -3);
$node->safe_psql('postgres', q{
CREATE SCHEMA archive;
UPDATE partman.part_config SET retention = '2 days', retention_schema = 'archive'
WHERE parent_table = 'ev.events';
CALL partman.run_maintenance_proc();
UPDATE partman.part_config SET retention = '3 days', retention_schema = NULL
WHERE parent_table = 'ev.events';
});
is($node->safe_psql('postgres', qq{SELECT to_regclass('archive.$moved') IS NOT NULL}),
	't', 'retention_schema moved the detached partition to the archive schema');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.tracked_tables}),
	'1', 'the moved table got no history either');
unlike(slurp_file($node->logfile, $log_offset), qr/EG\d{3}/,
	'maintenance met no EG error');

# 4. a breaking change to the parent's shape is still blocked
my ($ret, $out, $err) = $node->psql('postgres',
	'ALTER TABLE ev.events DROP COLUMN payload');
like($err, qr/EG104: drops column ev\.events\.payload.*\n.*Breaks: view ev\.recent/,
	'dropping a column the view reads from the parent is blocked under enforce');

# 5. the background worker: more premade partitions for both sets
$node->safe_psql('postgres', q{
UPDATE partman.part_config SET premake = 6, infinite_time_partitions = true
WHERE parent_table IN ('ev.events', 'other.metrics');
});
$node->append_conf('postgresql.conf', 'pg_partman_bgw.interval = 1');
$node->restart;
my $ev_ahead = part('ev.events', 6);
my $m_ahead = part('other.metrics', 6);
ok($node->poll_query_until('postgres', qq{
	SELECT to_regclass('$ev_ahead') IS NOT NULL AND to_regclass('$m_ahead') IS NOT NULL}),
	'the background worker created partitions of both sets');
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) FROM elt.schema_history
	WHERE table_name = 'events' AND summary = 'partition $ev_ahead attached'}, '1'),
	'the parent history records the partition the worker attached');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.tracked_tables}),
	'1', 'still no partition history');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}),
	't', 'the audit chain verifies');

# 6. a partition governed on its own under enforce is judged on its own: its
# drop by retention is blocked, and run_maintenance() is one transaction ...
# The worker is stopped meanwhile: a run of its own that began before the
# new settings committed reads each set's settings afresh (READ COMMITTED)
# and could premake the other set's partition while this run is checked.
$node->append_conf('postgresql.conf', q{pg_partman_bgw.dbname = ''});
$node->restart;
my $own = part('ev.events', -2);
# the day after the other set's last partition: how far premake reaches
# depends on the time of day (pg_partman rounds), so premake goes from 6 to
# 9, which reaches past it at any hour
my $m_next = $node->safe_psql('postgres', q{
SELECT 'other.metrics_p' || to_char(max(to_date(substring(c.relname FROM '_p(\d{4}_\d\d_\d\d)$'),
                                                'YYYY_MM_DD')) + 1, 'YYYY_MM_DD')
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'other.metrics'::regclass});
$node->safe_psql('postgres', qq{
SELECT elt.govern('$own', 'enforce');
UPDATE partman.part_config SET retention = '1 day', retention_keep_table = false,
    premake = 9 WHERE parent_table IN ('ev.events', 'other.metrics');
});
($ret, $out, $err) = $node->psql('postgres', 'SELECT partman.run_maintenance()');
like($err, qr/EG101: drops table \Q$own\E/,
	'retention reaching a partition governed on its own is blocked');
is($node->safe_psql('postgres', qq{SELECT to_regclass('$m_next') IS NULL}),
	't', 'and that run left the other set unmaintained');
# ... so such a set is maintained on its own: automatic maintenance off
$node->safe_psql('postgres', q{
UPDATE partman.part_config SET automatic_maintenance = 'off' WHERE parent_table = 'ev.events';
});
$node->append_conf('postgresql.conf', q{pg_partman_bgw.dbname = 'postgres'});
$node->restart;
ok($node->poll_query_until('postgres', qq{SELECT to_regclass('$m_next') IS NOT NULL}),
	'with automatic_maintenance off for the blocked set, the worker maintains the others');
($ret, $out, $err) = $node->psql('postgres', q{SELECT partman.run_maintenance('ev.events')});
like($err, qr/EG101/, 'the blocked set, run on its own, stops only itself');
$node->safe_psql('postgres', qq{
SELECT elt.approver_add('dba');
SELECT elt.migration_begin('retention', 'partition governed on its own reached retention', 'dba');
SELECT partman.run_maintenance('ev.events');
SELECT elt.migration_end();
});
is($node->safe_psql('postgres', qq{SELECT to_regclass('$own') IS NULL}),
	't', 'inside an approved migration, retention drops it');

$node->stop;
done_testing();
