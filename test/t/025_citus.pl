# elt_governance on a real Citus cluster (issue 25): a coordinator and two
# workers on this machine, Citus preloaded first.  A schema with a
# distributed table (shop.orders, hash-distributed on id) and a reference
# table (shop.customers) is governed on the coordinator, and each engine is
# run against them:
#   - CREATE EXTENSION on the coordinator reaches the workers;
#   - ADD COLUMN is recorded once and reaches every shard;
#   - DROP COLUMN, a type change, renames and DROP TABLE are refused under
#     enforce before any shard changes; an approved migration goes through;
#   - check_ddl, schema_diff, backfills (in the session and by two
#     workers, every row exactly once), a merge transform from a
#     distributed and a reference table into a distributed target with row
#     lineage (its manifest recording each relation's distribution;
#     none for a run between plain tables), audit_verify;
#   - backfills planned per shard (section 7b): chunks within one shard's
#     hash range, each chunk's statement sent to that shard alone, two
#     workers, a failed chunk resumed, every row exactly once;
#   - snapshots, sandboxes (whole, sampled, masked), transform runs and
#     replays in a sandbox and the canary: copies distributed like their
#     sources, checksums, masking and foreign keys checked against the
#     sources and against the same sample of plain tables;
#   - no node's log shows a crash.
# What is known not to work yet on Citus is asserted as TODO, with what
# happens today, so that the day it works shows in the output.
#
# Skipped when Citus is not installed for this PostgreSQL: make test-citus
# (scripts/citus_build.sh) builds it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $coord = PostgreSQL::Test::Cluster->new('coordinator');
my $sharedir = $coord->config_data('--sharedir');
plan skip_all =>
  "Citus is not installed for this PostgreSQL (no $sharedir/extension/citus.control; make test-citus builds it)"
  unless -f "$sharedir/extension/citus.control";

my $w1 = PostgreSQL::Test::Cluster->new('worker1');
my $w2 = PostgreSQL::Test::Cluster->new('worker2');
my @nodes = ($coord, $w1, $w2);

# Citus connects between nodes over TCP: every node listens on 127.0.0.1
# (the port the framework picked is free there).  Citus comes first in
# shared_preload_libraries, as Citus requires.  Statistics collection is
# off: this machine has no network.
foreach my $node (@nodes)
{
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'citus,elt_governance'
listen_addresses = '127.0.0.1'
max_prepared_transactions = 20
max_worker_processes = 20
lc_messages = 'C'
citus.local_hostname = '127.0.0.1'
citus.enable_statistics_collection = off
elt.launcher_naptime = 1
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION citus');
}
my $port = $coord->port;
$coord->safe_psql('postgres', qq{
SELECT citus_set_coordinator_host('127.0.0.1', $port);
SELECT citus_add_node('127.0.0.1', ${\ $w1->port});
SELECT citus_add_node('127.0.0.1', ${\ $w2->port});
CREATE EXTENSION elt_governance;
});

# SQL on the coordinator
sub cq
{
	my ($sql) = @_;
	return $coord->safe_psql('postgres', $sql);
}

# The error of a statement that must fail on the coordinator ('' if it ran).
sub fails
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $coord->psql('postgres', $sql);
	return $rc == 0 ? '' : $err;
}

# The columns of every shard of a table, one line per distinct column list,
# with how many placements have it (on the workers and the coordinator).
sub shard_columns
{
	my ($rel) = @_;
	return cq(qq{
SELECT result || ' x' || count(*) FROM run_command_on_placements('$rel',
  \$\$SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
     WHERE attrelid = '%s'::regclass AND attnum > 0 AND NOT attisdropped\$\$)
GROUP BY result ORDER BY 1});
}

# 1. the extension is on every node, in the same version
is( cq(q{SELECT count(*) FROM pg_dist_node WHERE isactive}),
	'3', 'a coordinator and two workers');
my $version = cq(q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'});
foreach my $w ($w1, $w2)
{
	is($w->safe_psql('postgres',
			q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
		$version, 'CREATE EXTENSION on the coordinator reached worker ' . $w->name);
}

# 2. a governed schema with a distributed and a reference table
cq(q{
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL,
                          amount numeric NOT NULL, note text);
CREATE TABLE shop.customers (id bigint PRIMARY KEY, name text NOT NULL, region text);
SELECT create_distributed_table('shop.orders', 'id', shard_count => 4);
SELECT create_reference_table('shop.customers');
INSERT INTO shop.customers SELECT g, 'customer ' || g, CASE WHEN g % 2 = 0 THEN 'east' ELSE 'west' END
  FROM generate_series(1, 10) g;
INSERT INTO shop.orders SELECT g, 1 + g % 10, g * 1.5, 'n' FROM generate_series(1, 100) g;
CREATE VIEW shop.order_list AS SELECT id, customer_id, amount, note FROM shop.orders;
SELECT elt.govern('shop', 'enforce');
});
is(cq(q{SELECT string_agg(relid::text, ', ' ORDER BY relid::text) FROM elt.tracked_tables}),
	'shop.customers, shop.orders',
	'govern: the distributed and the reference table have a history, no shard');
is(cq(q{SELECT count(*) FROM citus_shards WHERE table_name = 'shop.orders'::regclass}),
	'4', 'shop.orders has four shards');
# the shape records the distribution: method, column, colocation group
my $coloc = cq(q{SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'shop.orders'::regclass});
is(cq(q{SELECT shape->'distribution' FROM elt.schema_versions v JOIN elt.tracked_tables t USING (table_id)
        WHERE t.relid = 'shop.orders'::regclass AND v.version = 1}),
	qq({"column": "id", "method": "hash", "colocation": $coloc}),
	"the distributed table's baseline records its distribution");
is(cq(q{SELECT elt.table_shape('shop.customers')->'distribution'->>'method'}), 'reference',
	'and a reference table is recorded as one');

# 3. ADD COLUMN: one version, on every shard
cq(q{ALTER TABLE shop.orders ADD COLUMN status text});
is(cq(q{SELECT string_agg(format('%s %s %s', table_name, version, summary), '; ' ORDER BY table_name, version)
       FROM elt.schema_history}),
	'customers 1 baseline with 3 columns; orders 1 baseline with 4 columns; orders 2 added column status text',
	'ADD COLUMN on a distributed table is recorded once');
is(shard_columns('shop.orders'), 'id,customer_id,amount,note,status x4',
	'and every shard has the column');

# 4. breaking DDL refused under enforce, before any shard changes
my %breaking = (
	'ALTER TABLE shop.orders DROP COLUMN note' => 'EG104',
	'ALTER TABLE shop.customers DROP COLUMN region' => 'EG104',
	'ALTER TABLE shop.orders ALTER COLUMN amount TYPE text' => 'EG107',
	'ALTER TABLE shop.orders RENAME COLUMN note TO remark' => 'EG106',
	'ALTER TABLE shop.orders RENAME TO orders_old' => 'EG105',
	'DROP TABLE shop.customers' => 'EG101',
	'DROP TABLE shop.orders CASCADE' => 'EG101');
foreach my $sql (sort keys %breaking)
{
	like(fails($sql), qr/ERROR:  $breaking{$sql}: /, "enforce refuses: $sql");
}
is(shard_columns('shop.orders'), 'id,customer_id,amount,note,status x4',
	'no shard of shop.orders changed');
is(shard_columns('shop.customers'), 'id,name,region x3',
	'no placement of shop.customers changed (two workers and the coordinator)');
is(cq(q{SELECT count(*) FROM elt.schema_versions}), '3', 'and no version was recorded');

# 5. an approved migration goes through, once, everywhere
cq(q{
SELECT elt.approver_add('alice');
SELECT elt.migration_begin('drop-note', 'nobody reads it', 'alice');
DROP VIEW shop.order_list;
ALTER TABLE shop.orders DROP COLUMN note;
SELECT elt.migration_end();
});
is(cq(q{SELECT string_agg(format('%s %s', version, summary), '; ' ORDER BY version)
       FROM elt.schema_history WHERE table_name = 'orders'}),
	'1 baseline with 4 columns; 2 added column status text; 3 dropped column note',
	'the approved DROP COLUMN is recorded once');
is(cq(q{SELECT migration_id FROM elt.schema_changes WHERE rule = 'EG104'}), '1',
	'and linked to its migration');
is(shard_columns('shop.orders'), 'id,customer_id,amount,status x4',
	'and reached every shard');

# 5b. governance sees tables, never shards: the coordinator's copy of a
# reference table (shop.customers_<shard id>) is a local table in the same
# schema, and Citus runs the table's DDL on it through our event triggers
my $hidden = cq(q{SELECT format('shop.customers_%s', shardid) FROM pg_dist_shard
                  WHERE logicalrelid = 'shop.customers'::regclass});
is(cq(qq{SET citus.override_table_visibility = off; SELECT to_regclass('$hidden') IS NOT NULL}),
	't', "the coordinator holds the reference table's copy $hidden");
like(fails(qq{SELECT elt.govern('$hidden', 'warn')}),
	qr/ERROR:  "\Q$hidden\E" is a Citus shard/, 'governing a shard by name is refused');
like(fails(qq{SELECT elt.snapshot_create('$hidden')}),
	qr/ERROR:  \Q$hidden\E is a Citus shard/, 'and so is snapshotting one');
# under warn (a table target) in a schema under enforce: one warning, on
# the table, and the DROP runs; the copy is not judged under the schema's
# policy
cq(q{SELECT elt.govern('shop.customers', 'warn')});
my ($rc, $out, $err) = $coord->psql('postgres', q{ALTER TABLE shop.customers DROP COLUMN region});
is($rc, 0, 'DROP COLUMN on a reference table under warn runs');
is(join("\n", $err =~ /WARNING:  (EG\d+: .*)$/mg),
	'EG104: drops column shop.customers.region: readers that select it fail',
	'with one warning, on the table, none on its copy');
cq(q{SELECT elt.ungovern('shop.customers')});
is(shard_columns('shop.customers'), 'id,name x3', 'the column left every placement');
cq(q{ALTER TABLE shop.customers ADD COLUMN region text});
is(cq(q{SELECT string_agg(format('%s %s', version, summary), '; ' ORDER BY version)
        FROM elt.schema_history WHERE table_name = 'customers'}),
	'1 baseline with 3 columns; 2 dropped column region; 3 added column region text',
	'the reference table has one version per statement');
# a table distributed after it was governed: its next version says so
cq(q{
CREATE TABLE shop.events (id bigint PRIMARY KEY, at timestamptz);
SELECT create_distributed_table('shop.events', 'id', colocate_with => 'shop.orders');
ALTER TABLE shop.events ADD COLUMN kind text;
});
is(cq(q{SELECT string_agg(format('%s %s', version, summary), '; ' ORDER BY version)
        FROM elt.schema_history WHERE table_name = 'events'}),
	"1 created with 2 columns; 2 distributed by Citus: hash (id) colocation $coloc; added column kind text",
	'a table distributed after its first version: the next version records the distribution');
is(cq(q{SELECT count(*) FROM elt.schema_history WHERE table_name ~ '_\d+$'}), '0',
	'no shard has a history');
is(cq(q{SELECT count(*) FROM elt.schema_changes WHERE object ~ '_\d+(\.|$)'}), '0',
	'no change of a shard was classified');
is(cq(q{SELECT count(*) FROM elt.audit_log WHERE object ~ '_\d+(\.|$)'}), '0',
	'and the audit log names no shard');

# 6. check_ddl and schema_diff
is(cq(q{SELECT string_agg(rule, ',' ORDER BY rule) FROM elt.check_ddl(
       'ALTER TABLE shop.customers DROP COLUMN region') WHERE class <> 'advice'}),
	'EG104', 'check_ddl classifies a drop on the reference table');
is(cq(q{SELECT string_agg(change || ' ' || object, ', ' ORDER BY change)
       FROM elt.schema_diff('shop.orders', 1, 3)}),
	'column_added status, column_dropped note', 'schema_diff of the distributed table');

# 7. backfills on the distribution column: in the session, then two workers
cq(q{
ALTER TABLE shop.orders ADD COLUMN total numeric, ADD COLUMN applied int NOT NULL DEFAULT 0;
SELECT elt.backfill_create('bf', 'shop.orders',
  'UPDATE shop.orders SET total = amount * 2, applied = applied + 1 WHERE id >= $1 AND id < $2',
  'id', chunk_rows => 10, options => '{"target_chunk_ms": 0}');
CALL elt.backfill_run('bf');
});
is(cq(q{SELECT count(*) FILTER (WHERE total = amount * 2 AND applied = 1) FROM shop.orders}),
	'100', 'backfill_run: every row of the distributed table updated once');
is(cq(q{SELECT state || ' ' || rows_done FROM elt.backfill_status WHERE name = 'bf'}),
	'finished 100', 'and the backfill finished over 100 rows');
cq(q{
SELECT elt.backfill_create('bf2', 'shop.orders',
  'UPDATE shop.orders SET applied = applied + 1 WHERE id >= $1 AND id < $2',
  'id', chunk_rows => 5, options => '{"target_chunk_ms": 0}');
SELECT elt.backfill_start('bf2', 2);
});
$coord->poll_query_until('postgres',
	q{SELECT state FROM elt.backfill_status WHERE name = 'bf2'}, 'finished')
  or die 'backfill bf2 did not finish: '
  . cq(q{SELECT state, state_reason, last_error FROM elt.backfill_status});
is(cq(q{SELECT count(*) FILTER (WHERE applied = 2) FROM shop.orders}),
	'100', 'two backfill workers: every row once');
like(fails(q{SELECT elt.backfill_create('bf3', 'shop.orders',
               'UPDATE shop.orders SET applied = 0 WHERE customer_id >= $1 AND customer_id < $2',
               'customer_id', options => '{"allow_duplicate_keys": true}')}),
	qr/key column "customer_id" of shop.orders is not its distribution column.*HINT:  Key the backfill on "id"/s,
	'a backfill keyed on another column than the distribution column is refused');
is(cq(q{SELECT count(*) FROM elt.backfills WHERE name = 'bf3'}), '0', 'and nothing was made');

# 7b. backfills planned per shard (issue 25): an UPDATE (or DELETE) of a
# hash-distributed table keyed on its distribution column has its chunks
# planned shard by shard, each a key range within one shard's hash range;
# each chunk's statement goes to that one shard (a router query) and commits
# with its checkpoint.  Every row exactly once (applied counts the updates:
# 2 after section 7).
my $chunks_vs_shards = q{
SELECT format('%%s chunks, %%s shards, %%s off a shard of shop.orders',
              count(*), count(DISTINCT c.shard_id), count(*) FILTER (WHERE s.shardid IS NULL))
FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
LEFT JOIN pg_dist_shard s ON s.shardid = c.shard_id AND s.logicalrelid = 'shop.orders'::regclass
     AND s.shardminvalue::int = c.shard_min AND s.shardmaxvalue::int = c.shard_max
WHERE b.name = '%s'};
# how many chunks of a backfill hold each row (by its key and its hash)
my $chunks_per_row = q{
WITH r AS MATERIALIZED (SELECT id, worker_hash(id) h FROM shop.orders)
SELECT string_agg(DISTINCT n::text, ',') FROM (
  SELECT r.id, count(c.chunk_no) n
  FROM r
  LEFT JOIN (elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id) ) ON b.name = '%s'
       AND r.h BETWEEN c.shard_min AND c.shard_max
       AND r.id >= c.lower_bound::bigint AND r.id < c.upper_bound::bigint
  GROUP BY r.id) x};
my $shards = cq(q{SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'shop.orders'::regclass});
cq(q{SELECT elt.backfill_create('bfs', 'shop.orders',
  'UPDATE shop.orders SET applied = applied + 1 WHERE id >= $1 AND id < $2',
  'id', chunk_rows => 5, options => '{"target_chunk_ms": 0}')});
# the statements Citus sends to the workers, as NOTICEs
($rc, $out, $err) = $coord->psql('postgres', q{
SET citus.log_remote_commands = on;
CALL elt.backfill_run('bfs');
});
is($rc, 0, 'backfill_run of a backfill planned per shard');
is(cq(q{SELECT count(*) FILTER (WHERE applied = 3) FROM shop.orders}), '100',
	'per shard: every row updated once');
is(cq(q{SELECT state || ' ' || rows_done FROM elt.backfill_status WHERE name = 'bfs'}),
	'finished 100', 'and the backfill finished over 100 rows');
my $bfs_chunks = cq(q{SELECT count(*) FROM elt.backfill_chunks JOIN elt.backfills USING (backfill_id) WHERE name = 'bfs'});
like(cq(sprintf($chunks_vs_shards, 'bfs')), qr/^\d+ chunks, $shards shards, 0 off a shard of shop\.orders$/,
	"every chunk lies in a shard of shop.orders, with that shard's hash range (pg_dist_shard), in all $shards shards");
ok($bfs_chunks > $shards, "several chunks per shard ($bfs_chunks chunks)");
is(cq(sprintf($chunks_per_row, 'bfs')), '1', 'every row lies in exactly one chunk (key range and hash range)');
# A chunk's UPDATE goes to its shard alone (a router query) where Citus can
# be asked for two-phase commit (PostgreSQL 15); from 16 on it also goes to
# a partner shard, where it changes no row, so that Citus commits in two
# phases (src/backfill_shard.c).
my $per_chunk = $coord->pg_version >= 16 ? 2 : 1;
my @updates = $err =~ /NOTICE:  issuing (UPDATE shop\.orders\S* .*)$/mg;
my %shard_of_update = map { /UPDATE shop\.orders_(\d+) / ? ($1 => 1) : ('none' => 1) } @updates;
ok(@updates > 0 && @updates <= $per_chunk * $bfs_chunks,
	"$per_chunk UPDATE(s) sent per chunk at most (" . scalar(@updates) . " for $bfs_chunks chunks), none to every shard");
is(join(',', sort keys %shard_of_update),
	cq(q{SELECT string_agg(shardid::text, ',' ORDER BY shardid::text) FROM pg_dist_shard WHERE logicalrelid = 'shop.orders'::regclass}),
	'each sent to one shard, every shard reached');
like($updates[0] // '', qr/hashint8\(id\) (?:OPERATOR\(pg_catalog\.)?>=\)? \S+ AND \(hashint8\(id\) (?:OPERATOR\(pg_catalog\.)?<=/,
	"a chunk's statement keeps to its shard's hash range");
my @prepared = $err =~ /NOTICE:  issuing (PREPARE TRANSACTION) /mg;
my $chunks_sent = scalar(@updates) / $per_chunk;
ok(@prepared >= $chunks_sent && @prepared <= @updates,
	"each chunk commits with its checkpoint in two phases (" . scalar(@prepared)
	  . " PREPARE TRANSACTION for $chunks_sent chunks, " . scalar(@updates) . ' UPDATEs)');
my @one_phase = $err =~ /NOTICE:  issuing (COMMIT)\s*$/mg;
is(scalar(@one_phase), 0, 'no chunk commits a worker in one phase');

# the plan of a chunk's statement (auto_explain): a router query, one task
SKIP:
{
	skip 'auto_explain is not installed', 2
	  unless -f $coord->config_data('--pkglibdir') . '/auto_explain.so';
	cq(q{SELECT elt.backfill_create('bfx', 'shop.orders',
	  'UPDATE shop.orders SET applied = applied + 1 WHERE id >= $1 AND id < $2',
	  'id', chunk_rows => 50, options => '{"target_chunk_ms": 0}')});
	($rc, $out, $err) = $coord->psql('postgres', q{
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
CALL elt.backfill_run('bfx');
});
	my @plans = grep { /Query Text: UPDATE shop\.orders SET applied/ } split /NOTICE:  duration: /, $err;
	ok(@plans > 0 && !grep({ !/Task Count: $per_chunk\b/ } @plans),
		"the plan of every chunk statement has $per_chunk task(s) (its shard"
		  . ($per_chunk > 1 ? ' and a partner' : '') . '): ' . scalar(@plans) . ' plans');
	is(cq(q{SELECT count(*) FILTER (WHERE applied = 4) FROM shop.orders}), '100', 'and every row once');
	cq(q{UPDATE shop.orders SET applied = applied - 1});
}

# two workers, chunks per shard, every row once
cq(q{SELECT elt.backfill_create('bfs2', 'shop.orders',
  'UPDATE shop.orders SET applied = applied + 1 WHERE id >= $1 AND id < $2',
  'id', chunk_rows => 4, options => '{"target_chunk_ms": 0}');
SELECT elt.backfill_start('bfs2', 2);});
$coord->poll_query_until('postgres',
	q{SELECT state FROM elt.backfill_status WHERE name = 'bfs2'}, 'finished')
  or die 'backfill bfs2 did not finish: '
  . cq(q{SELECT state, state_reason, last_error FROM elt.backfill_status WHERE name = 'bfs2'});
is(cq(q{SELECT count(*) FILTER (WHERE applied = 4) FROM shop.orders}), '100',
	'two workers, chunks per shard: every row once');
like(cq(sprintf($chunks_vs_shards, 'bfs2')), qr/^\d+ chunks, $shards shards, 0 off a shard/,
	'and every chunk lies in one shard');
is(cq(sprintf($chunks_per_row, 'bfs2')), '1', 'and every row in exactly one chunk');

# A session's multi-shard UPDATE holds Citus's executor lock of every
# shard (SHARE UPDATE EXCLUSIVE) until it commits. A chunk sent to its
# shard alone (15), or with a partner shard (16+), does not wait for it:
# the partner's part locks no row, and the chunk asks for ROW EXCLUSIVE.
my $holder = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $coord->connstr('postgres'), '-c',
		q{BEGIN; UPDATE shop.orders SET applied = applied WHERE status = 'none such'; SELECT pg_sleep(6); COMMIT;} ],
	'>', \my $holder_out, '2>', \my $holder_err);
$coord->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareUpdateExclusiveLock' AND granted})
  or die 'the multi-shard UPDATE took no executor lock';
cq(q{SELECT elt.backfill_create('bfl', 'shop.orders',
  'UPDATE shop.orders SET total = total WHERE id >= $1 AND id < $2',
  'id', chunk_rows => 25, options => '{"target_chunk_ms": 0, "lock_timeout_ms": 200, "max_attempts": 1}')});
is(fails(q{CALL elt.backfill_run('bfl')}), '', 'a backfill planned per shard runs while a multi-shard UPDATE is open');
is(cq(q{SELECT count(*) FILTER (WHERE state <> 'done' OR attempts <> 1) || ' of ' || (count(*) > 0)
        FROM elt.backfill_chunk_status WHERE backfill = 'bfl'}),
	'0 of true', 'every chunk done on its first attempt, none waited for the lock');
$holder->finish;

# a chunk that fails, then resumes: the failed chunk changes nothing, the
# chunks done stay done, and after the fix every row is updated once
cq(q{SELECT elt.backfill_create('bfs3', 'shop.orders',
  'UPDATE shop.orders SET applied = applied + 1 + 0 / (CASE WHEN status = ''bad'' THEN 0 ELSE 1 END) WHERE id >= $1 AND id < $2',
  'id', chunk_rows => 5, options => '{"target_chunk_ms": 0, "max_attempts": 1}')});
($rc, $out, $err) = $coord->psql('postgres', q{CALL elt.backfill_run('bfs3', 3)});
is($rc, 0, 'a backfill stopped after 3 chunks (max_chunks)');
is(cq(q{SELECT count(*) FILTER (WHERE applied = 5) FROM shop.orders}),
	cq(q{SELECT sum(rows_affected) FROM elt.backfill_chunks JOIN elt.backfills USING (backfill_id) WHERE name = 'bfs3'}),
	'the rows of its done chunks are updated, no other');
# a row no chunk has reached yet goes bad
my $bad = cq(q{SELECT min(id) FROM shop.orders WHERE applied = 4});
cq(qq{UPDATE shop.orders SET status = 'bad' WHERE id = $bad});
($rc, $out, $err) = $coord->psql('postgres', q{CALL elt.backfill_run('bfs3')});
like($err, qr/ERROR:  backfill "bfs3" failed/, 'resumed, it fails at the chunk of the bad row');
is(cq(qq{SELECT applied FROM shop.orders WHERE id = $bad}), '4', 'whose row is unchanged');
is(cq(qq{SELECT count(*) FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
        WHERE b.name = 'bfs3' AND c.state = 'failed' AND c.last_error LIKE '%division by zero%'
          AND worker_hash(${bad}::bigint) BETWEEN c.shard_min AND c.shard_max
          AND (c.lower_bound IS NULL OR $bad >= c.lower_bound::bigint)
          AND (c.upper_bound IS NULL OR $bad < c.upper_bound::bigint)}),
	'1', "the failed chunk is the one of the bad row's shard and key");
is(cq(q{SELECT count(*) FILTER (WHERE applied = 5) FROM shop.orders}),
	cq(q{SELECT sum(c.rows_affected) FROM elt.backfill_chunks c JOIN elt.backfills b USING (backfill_id)
	     WHERE b.name = 'bfs3' AND c.state = 'done'}),
	'the rows of the done chunks are updated once, the others not');
cq(qq{UPDATE shop.orders SET status = NULL WHERE id = $bad; SELECT elt.backfill_retry('bfs3')});
($rc, $out, $err) = $coord->psql('postgres', q{CALL elt.backfill_run('bfs3')});
is($rc, 0, 'after the fix and backfill_retry, it runs again');
is(cq(q{SELECT count(*) FILTER (WHERE applied = 5) FROM shop.orders}), '100',
	'and every row is updated exactly once');
is(cq(q{SELECT state || ' ' || rows_done FROM elt.backfill_status WHERE name = 'bfs3'}),
	'finished 100', 'and the backfill finished over 100 rows');
is(cq(sprintf($chunks_per_row, 'bfs3')), '1', 'every row in exactly one chunk');

# what is not planned per shard: a reference table, and a statement that
# is not an UPDATE or DELETE of the table (chunks over the whole table)
cq(q{SELECT elt.backfill_create('bfr', 'shop.customers',
  'UPDATE shop.customers SET name = name WHERE id >= $1 AND id < $2', 'id', chunk_rows => 3,
  options => '{"target_chunk_ms": 0}');
CALL elt.backfill_run('bfr');
SELECT elt.backfill_create('bfsel', 'shop.orders',
  'SELECT count(*) FROM shop.orders WHERE id >= $1 AND id < $2', 'id', chunk_rows => 30,
  options => '{"target_chunk_ms": 0}');
CALL elt.backfill_run('bfsel');});
is(cq(q{SELECT string_agg(format('%s %s %s', b.name, b.state, (SELECT count(*) FROM elt.backfill_chunks c
                                   WHERE c.backfill_id = b.backfill_id AND c.shard_id IS NOT NULL)), ', ' ORDER BY b.name)
        FROM elt.backfills b WHERE b.name IN ('bfr', 'bfsel')}),
	'bfr finished 0, bfsel finished 0',
	'a reference table, and a SELECT statement: chunks over the whole table, none per shard');
is(cq(q{SELECT string_agg(format('%s %s', name, rows_done), ', ' ORDER BY name) FROM elt.backfill_status
        WHERE name IN ('bfr', 'bfsel')}),
	'bfr 10, bfsel 100', 'over every row');

# 8. a merge transform from a distributed and a reference table into a
# distributed target (colocated with the source), with row lineage
cq(q{
CREATE SCHEMA mart;
CREATE TABLE mart.order_facts (id bigint PRIMARY KEY, customer_name text, amount numeric);
SELECT create_distributed_table('mart.order_facts', 'id', colocate_with => 'shop.orders');
SELECT elt.transform_create('facts', 'mart.order_facts',
  'SELECT o.id, c.name AS customer_name, o.amount
     FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id', 'merge');
});
# a run into a Citus table keeps no before-images (its rows are written on
# the shards): it says so, and runs
($rc, $out, $err) = $coord->psql('postgres', q{SELECT elt.transform_run('facts')});
is($rc, 0, 'merge transform into a distributed target');
like($err, qr/NOTICE:  this run of transform "facts" keeps no undo: it cannot be reverted/,
	'which says that it keeps no undo');
my $run = cq(q{SELECT max(run_id) FROM elt.transform_runs WHERE status = 'succeeded'});
is(cq(q{SELECT count(*) FROM mart.order_facts WHERE customer_name = 'customer ' || (1 + id % 10)}),
	'100', 'merge transform: every target row from its source rows');
is(cq(q{SELECT string_agg(format('%s %s', relation, key), ', ' ORDER BY relation::text)
       FROM elt.trace('mart.order_facts', '7')}),
	'shop.customers 8, shop.orders 7', 'row lineage of a target row: its order and its customer');
is(cq(q{SELECT count(*) FROM elt.lineage_rows}), '200', 'one edge per source row and target row');
is(cq(qq{SELECT rows_written FROM elt.transform_runs WHERE run_id = $run}), '100',
	'rows_written of the run');
is(cq(qq{SELECT string_agg(format('%s %s %s', i->>'relation', i->>'rows', i->>'checksum' = elt.table_checksum((i->>'relation')::regclass)), ', '
                           ORDER BY i->>'relation')
         FROM elt.run_steps s, jsonb_array_elements(s.fragment->'inputs') i
         WHERE s.run_id = $run AND i->>'role' = 'source'}),
	'shop.customers 10 t, shop.orders 100 t',
	"the run's manifest has the rows and checksums of its distributed and reference inputs");
# the manifest records how each Citus relation is distributed
my $ref_coloc = cq(q{SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'shop.customers'::regclass});
is(cq(qq{SELECT string_agg(format('%s %s %s', r->>'relation', coalesce(r->>'role', 'output'), r->'distribution'), '; '
                           ORDER BY r->>'relation', coalesce(r->>'role', 'output'))
         FROM (SELECT jsonb_array_elements(m->'inputs') r FROM elt.run_manifest($run) m
               UNION ALL SELECT jsonb_array_elements(m->'outputs') FROM elt.run_manifest($run) m) x}),
	qq(mart.order_facts output {"column": "id", "method": "hash", "colocation": $coloc}; )
	  . qq(mart.order_facts target {"column": "id", "method": "hash", "colocation": $coloc}; )
	  . qq(shop.customers source {"column": null, "method": "reference", "colocation": $ref_coloc}; )
	  . qq(shop.orders source {"column": "id", "method": "hash", "colocation": $coloc}),
	"the run's manifest records the distribution of its inputs and output: method, column, colocation");
like(fails(qq{SELECT elt.run_revert($run, 'test')}), qr/run $run cannot be reverted: it kept no undo/,
	'run_revert of the run says why it cannot');
cq(q{UPDATE shop.orders SET amount = amount + 1000 WHERE id <= 10;
     SELECT elt.transform_run('facts')});
is(cq(q{SELECT count(*) FROM mart.order_facts f JOIN shop.orders o USING (id) WHERE f.amount = o.amount}),
	'100', 'a second merge run updates the changed rows of the distributed target');

# 9. what is wrong today (issue 25)
# checksums of a distributed and a reference table: each shard where it
# lives, the sums added (the checksum of the same rows in a local table)
cq(q{CREATE TABLE public.orders_local AS SELECT * FROM shop.orders;
     CREATE TABLE public.customers_local AS SELECT * FROM shop.customers});
is(cq(q{SELECT elt.table_checksum('shop.orders')}),
	cq(q{SELECT elt.table_checksum('public.orders_local')}),
	'table_checksum of a distributed table equals that of the same rows in a local table');
like(cq(q{SELECT elt.table_checksum('shop.orders')}), qr/^v1:100:[0-9a-f]{32}$/,
	'and counts its 100 rows');
is(cq(q{SELECT elt.table_checksum('shop.customers')}),
	cq(q{SELECT elt.table_checksum('public.customers_local')}),
	'table_checksum of a reference table equals that of the same rows in a local table');
is(cq(q{SELECT string_agg(format('%s %s %s', segment, row_count, checksum), ', ' ORDER BY segment)
        FROM elt.table_checksum_ranges('shop.orders', 'id', 4)}),
	cq(q{SELECT string_agg(format('%s %s %s', segment, row_count, checksum), ', ' ORDER BY segment)
        FROM elt.table_checksum_ranges('public.orders_local', 'id', 4)}),
	'range checksums of a distributed table equal those of the same rows in a local table');
is(cq(q{SELECT elt.table_checksum('shop.orders', ARRAY['amount', 'id'])}),
	cq(q{SELECT elt.table_checksum('public.orders_local', ARRAY['amount', 'id'])}),
	'and over the columns given, in their order');
# a run between plain tables on the same cluster: no distribution in its manifest
cq(q{ALTER TABLE public.orders_local ADD PRIMARY KEY (id);
     CREATE TABLE public.orders_copy (id bigint PRIMARY KEY, amount numeric);
     SELECT elt.transform_create('local_copy', 'public.orders_copy', 'SELECT id, amount FROM public.orders_local', 'append')});
my $local_run = cq(q{SELECT elt.transform_run('local_copy')});
is(cq(qq{SELECT count(*) FILTER (WHERE r ? 'distribution') || ' of ' || count(*)
         FROM (SELECT jsonb_array_elements(m->'inputs') r FROM elt.run_manifest($local_run) m
               UNION ALL SELECT jsonb_array_elements(m->'outputs') FROM elt.run_manifest($local_run) m) x}),
	'0 of 3', "a run's manifest records no distribution for plain tables");
# rows_read: the shards are read by other sessions, whose counts the run's
# session does not see; unknown (NULL), not a wrong 0
is(cq(qq{SELECT coalesce(rows_read::text, 'unknown') FROM elt.transform_runs WHERE run_id = $run}),
	'unknown', 'rows_read of a run over distributed tables is unknown, not 0');
is(cq(qq{SELECT fragment->'step' ? 'rows_read' FROM elt.run_steps WHERE run_id = $run}), 'f',
	'and its manifest step has no rows_read');

# 10. blue-green deployments of a schema with a distributed and a reference
# table
cq(q{
CREATE SCHEMA app;
CREATE TABLE app.items (id bigint PRIMARY KEY, kind int NOT NULL, v text);
CREATE TABLE app.kinds (id int PRIMARY KEY, label text);
SELECT create_distributed_table('app.items', 'id', shard_count => 4);
-- a key that does not start with the distribution column (rows are
-- compared by (line, item))
CREATE TABLE app.lines (line int, item bigint, qty int, PRIMARY KEY (line, item));
SELECT create_distributed_table('app.lines', 'item', colocate_with => 'app.items');
INSERT INTO app.lines SELECT l, g, l * g FROM generate_series(1, 50) g, generate_series(1, 3) l;
SELECT create_reference_table('app.kinds');
INSERT INTO app.items SELECT g, 1 + g % 2, 'v' || g FROM generate_series(1, 100) g;
INSERT INTO app.kinds VALUES (1, 'a'), (2, 'b');
CREATE SCHEMA app2;
CREATE TABLE app2.kinds (id int PRIMARY KEY, label text);
SELECT create_reference_table('app2.kinds');
SELECT elt.govern('app2', 'enforce');
});
is(cq(q{SELECT elt.deploy_init('app')}), '3', 'deploy_init of an ungoverned schema');
is(cq(q{SELECT string_agg(format('%s %s', logicalrelid, partmethod), ', ' ORDER BY logicalrelid::text)
        FROM pg_dist_partition WHERE logicalrelid::text LIKE 'app\_\_blue.%'}),
	'app__blue.items h, app__blue.kinds n, app__blue.lines h', 'the blue tables stay distributed and reference');
is(cq(q{SELECT count(*) FROM app.items JOIN app.kinds k ON k.id = items.kind}), '100',
	'the interface views read them');
is(fails(q{SELECT elt.deploy_init('app2')}), '',
	'deploy_init of a governed schema with a reference table (its copy is not judged)');
is(cq(q{SELECT relid::text FROM elt.tracked_tables WHERE schema_name LIKE 'app2%'}),
	'app2__blue.kinds', 'and the moved table keeps its history, no shard has one');
cq(q{
SELECT elt.deploy_prepare('app', true);
UPDATE app__green.items SET v = 'changed' WHERE id = 5;
UPDATE app__green.lines SET qty = 0 WHERE line = 2 AND item = 7;
DELETE FROM app__green.lines WHERE line = 3 AND item = 40;
INSERT INTO app__green.lines VALUES (4, 9, 36);
});
is(cq(q{SELECT string_agg(format('%s %s %s', logicalrelid, partmethod,
                                 colocationid = (SELECT colocationid FROM pg_dist_partition
                                                 WHERE logicalrelid = 'app__blue.items'::regclass)),
                          ', ' ORDER BY logicalrelid::text)
        FROM pg_dist_partition WHERE logicalrelid::text LIKE 'app\_\_green.%'}),
	'app__green.items h t, app__green.kinds n f, app__green.lines h t',
	'deploy_prepare(copy_data): the candidates are a distributed table colocated with live, and a reference table');
is(cq(q{SELECT count(*) FROM app__green.items}), '100', 'with the rows copied');
is(cq(q{SELECT format('%s %s %s %s %s', live_rows, candidate_rows, missing, extra, changed)
        FROM elt.deploy_compare('app') WHERE relation = 'app.items'}),
	'100 100 0 0 1', 'deploy_compare counts the rows of both colors and finds the changed one');
is(cq(q{SELECT format('%s %s %s', key, change, columns) FROM elt.deploy_diff('app', 'items')}),
	'{"id": 5} changed {v}', 'deploy_diff finds the changed row of the distributed table and its column');
is(cq(q{SELECT format('%s %s %s %s %s', live_rows, candidate_rows, missing, extra, changed)
        FROM elt.deploy_compare('app') WHERE relation = 'app.lines'}),
	'150 150 1 1 1', 'deploy_compare of a table whose key starts with another column than the distribution column');
is(cq(q{SELECT string_agg(format('%s %s %s', key, change, columns), '; ') FROM elt.deploy_diff('app', 'lines')}),
	'{"item": 7, "line": 2} changed {qty}; {"item": 40, "line": 3} missing ; {"item": 9, "line": 4} extra ',
	'and deploy_diff lists its changed, missing and extra rows by that key');
is(fails(q{SELECT elt.deploy_promote('app', 'go')}), '',
	'deploy_promote to distributed candidates');
is(cq(q{SELECT v FROM app.items WHERE id = 5}), 'changed', 'the interface reads green');
is(fails(q{SELECT elt.deploy_rollback('app', 'back')}), '', 'deploy_rollback');
is(cq(q{SELECT v FROM app.items WHERE id = 5}), 'v5', 'the interface reads blue again');
{
	local $TODO = 'issue 25: Citus cannot modify the interface views';
	is(fails(q{INSERT INTO app.items VALUES (1000, 1, 'x')}), '',
		'writes through an interface view');
}

# 11. a reference table renamed, moved and dropped: Citus renames (moves)
# the table before its copy, so while the copy's statement runs its name
# (schema) lags behind; it is still known as a shard
cq(q{
CREATE SCHEMA refs;
CREATE SCHEMA refs_old;
CREATE TABLE refs.regions (id int PRIMARY KEY, name text);
SELECT create_reference_table('refs.regions');
SELECT elt.govern('refs', 'enforce');
SELECT elt.migration_begin('rename-regions', 'a clearer name', 'alice');
ALTER TABLE refs.regions RENAME TO areas;
SELECT elt.migration_end();
});
is(cq(q{SELECT string_agg(object, ', ' ORDER BY change_id) FROM elt.schema_changes
        WHERE migration_id = (SELECT max(migration_id) FROM elt.schema_changes)}),
	'refs.regions', 'an approved rename of a reference table: one change, on the table');
is(cq(q{SELECT string_agg(relid::text, ', ') FROM elt.tracked_tables WHERE schema_name = 'refs'}),
	'refs.areas', 'which keeps its history under its new name');
cq(q{SELECT elt.govern('refs.areas', 'warn')});
($rc, $out, $err) = $coord->psql('postgres', q{ALTER TABLE refs.areas SET SCHEMA refs_old});
is($rc, 0, 'moving a reference table to another schema under warn runs');
is(join("\n", $err =~ /WARNING:  (EG\d+: .*)$/mg),
	'EG105: moves table refs.areas to schema refs_old: readers that name it fail',
	'with one warning, on the table');
($rc, $out, $err) = $coord->psql('postgres', q{DROP TABLE refs_old.areas});
is($rc, 0, 'dropping a reference table governed under warn runs');
# Citus drops the copy from its own sql_drop trigger, with a DROP TABLE
# inside ours: that statement is left alone, so the outer DROP is not
# judged a second time as a side effect
is(join("\n", $err =~ /WARNING:  (EG\d+: .*)$/mg),
	'EG101: drops table refs_old.areas: its readers fail and its rows are gone',
	'with one warning, on the table');

# a distributed partitioned table: the partitions are the parent's history,
# their shards (partitions of the parent's shards) nobody's
cq(q{
CREATE TABLE refs.visits (id bigint NOT NULL, at date NOT NULL, PRIMARY KEY (id, at))
    PARTITION BY RANGE (at);
CREATE TABLE refs.visits_y2024 PARTITION OF refs.visits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
SELECT create_distributed_table('refs.visits', 'id', shard_count => 2);
CREATE TABLE refs.visits_y2025 PARTITION OF refs.visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
ALTER TABLE refs.visits ADD COLUMN page text;
INSERT INTO refs.visits SELECT g, date '2024-06-01' + g, 'p' FROM generate_series(1, 300) g;
});
is(cq(q{SELECT string_agg(format('%s %s', version, summary), '; ' ORDER BY version)
        FROM elt.schema_history WHERE table_name = 'visits'}),
	'1 created with 2 columns; 2 partition refs.visits_y2024 attached; '
	  . '3 partition refs.visits_y2025 attached; distributed by Citus: hash (id) colocation '
	  . cq(q{SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'refs.visits'::regclass})
	  . '; 4 added column page text',
	'a distributed partitioned table: one history, partitions in it');
is(cq(q{SELECT string_agg(relid::text, ', ' ORDER BY relid::text) FROM elt.tracked_tables WHERE schema_name = 'refs'}),
	'refs.visits', 'no partition and no shard has a history of its own');
like(cq(q{SELECT elt.table_checksum('refs.visits')}), qr/^v1:300:/,
	'the checksum of a distributed partitioned table counts its rows');

# no shard anywhere in the catalog of governance
is(cq(q{SELECT count(*) FROM elt.tracked_tables WHERE table_name ~ '_\d+$'}), '0',
	'no shard was ever tracked');
is(cq(q{SELECT count(*) FROM elt.schema_changes WHERE object ~ '_\d+(\.|$)'}), '0',
	'no change of a shard was ever classified');
is(cq(q{SELECT count(*) FROM elt.audit_log WHERE object ~ '_\d+(\.|$)'}), '0',
	'and the audit log never names a shard');

# 11b. transforms between colocated tables (issue 25): the row work (joins,
# grouping, each group's source keys) runs on the shards, through a staging
# table colocated with the target; only the keys come back to the
# coordinator, where the run captures them.  Sales are distributed by
# customer, colocated with the customers and the targets; a target that is
# not colocated stays on the coordinator.  For every target row, elt.trace
# must equal its sources found by plain SQL.  The transforms belong to a
# role that is not a superuser and are run by the superuser (as their
# owner, restricted).
cq(q{
CREATE ROLE dw_owner LOGIN;
CREATE SCHEMA dw AUTHORIZATION dw_owner;
SET ROLE dw_owner;
CREATE TABLE dw.customers (id bigint PRIMARY KEY, name text NOT NULL, region text NOT NULL);
CREATE TABLE dw.sales (customer_id bigint NOT NULL, id bigint NOT NULL, amount numeric NOT NULL,
                       PRIMARY KEY (customer_id, id));
CREATE TABLE dw.customer_totals (customer_id bigint PRIMARY KEY, name text, n bigint, total numeric);
CREATE TABLE dw.sale_facts (customer_id bigint NOT NULL, id bigint NOT NULL, name text, amount numeric,
                            PRIMARY KEY (customer_id, id));
CREATE TABLE dw.sale_counts (customer_id bigint PRIMARY KEY, n bigint);
CREATE TABLE dw.region_totals (region text PRIMARY KEY, n bigint, total numeric);
SELECT create_distributed_table('dw.customers', 'id', shard_count => 4);
SELECT create_distributed_table('dw.sales', 'customer_id', colocate_with => 'dw.customers');
SELECT create_distributed_table('dw.customer_totals', 'customer_id', colocate_with => 'dw.customers');
SELECT create_distributed_table('dw.sale_facts', 'customer_id', colocate_with => 'dw.customers');
SELECT create_distributed_table('dw.sale_counts', 'customer_id', colocate_with => 'dw.customers');
SELECT create_distributed_table('dw.region_totals', 'region', shard_count => 4);
INSERT INTO dw.customers
  SELECT g, 'customer ' || g, CASE WHEN g % 3 = 0 THEN 'east' ELSE 'west' END FROM generate_series(1, 20) g;
-- customers 18 to 20 have no sales
INSERT INTO dw.sales SELECT 1 + g % 17, g, g * 0.5 FROM generate_series(1, 300) g;
SELECT elt.transform_create('dw_totals', 'dw.customer_totals',
  'SELECT c.id AS customer_id, c.name, count(*) AS n, sum(s.amount) AS total
     FROM dw.customers c JOIN dw.sales s ON s.customer_id = c.id GROUP BY c.id, c.name', 'merge');
SELECT elt.transform_create('dw_facts', 'dw.sale_facts',
  'SELECT s.customer_id, s.id, c.name, s.amount
     FROM dw.sales s JOIN dw.customers c ON c.id = s.customer_id', 'append');
SELECT elt.transform_create('dw_counts', 'dw.sale_counts',
  'SELECT customer_id, count(*) AS n FROM dw.sales GROUP BY customer_id', 'merge');
SELECT elt.transform_create('dw_regions', 'dw.region_totals',
  'SELECT c.region, count(*) AS n, sum(s.amount) AS total
     FROM dw.customers c JOIN dw.sales s ON s.customer_id = c.id GROUP BY c.region', 'merge');
RESET ROLE;
SELECT elt.govern('dw', 'enforce');
});

# "<mismatches> of <rows>": target rows of $target (key expression $key)
# whose elt.trace differs from $oracle (relation and key text of each
# source row, for the target row t), computed over local copies of the
# tables (l_customers, l_sales): Citus does not run elt.trace() or these
# correlated subqueries over distributed tables
sub trace_mismatches
{
	my ($target, $key, $oracle) = @_;
	return cq(qq{
CREATE TEMP TABLE l_target AS SELECT * FROM $target;
CREATE TEMP TABLE l_customers AS SELECT * FROM dw.customers;
CREATE TEMP TABLE l_sales AS SELECT * FROM dw.sales;
SELECT count(*) FILTER (WHERE traced IS DISTINCT FROM expected) || ' of ' || count(*)
  FROM (SELECT (SELECT string_agg(relation::text || ' ' || key, ', ' ORDER BY relation::text, key)
                  FROM elt.trace('$target', $key, 1)) AS traced,
               (SELECT string_agg(r || ' ' || k, ', ' ORDER BY r, k) FROM ($oracle) o(r, k)) AS expected
          FROM l_target t) x});
}
my $totals_oracle = q{SELECT 'dw.customers', c.id::text FROM l_customers c WHERE c.id = t.customer_id
                      UNION ALL
                      SELECT 'dw.sales', format('(%s,%s)', s.customer_id, s.id) FROM l_sales s
                       WHERE s.customer_id = t.customer_id};
my $facts_oracle = q{SELECT 'dw.customers', c.id::text FROM l_customers c JOIN l_sales s ON s.customer_id = c.id
                      WHERE (s.customer_id, s.id) = (t.customer_id, t.id)
                     UNION ALL
                     SELECT 'dw.sales', format('(%s,%s)', s.customer_id, s.id) FROM l_sales s
                      WHERE (s.customer_id, s.id) = (t.customer_id, t.id)};
my $counts_oracle = q{SELECT 'dw.sales', format('(%s,%s)', s.customer_id, s.id) FROM l_sales s
                       WHERE s.customer_id = t.customer_id};
my $regions_oracle = q{SELECT 'dw.customers', c.id::text FROM l_customers c
                        WHERE c.region = t.region AND EXISTS (SELECT FROM l_sales s WHERE s.customer_id = c.id)
                       UNION ALL
                       SELECT 'dw.sales', format('(%s,%s)', s.customer_id, s.id)
                         FROM l_sales s JOIN l_customers c ON c.id = s.customer_id WHERE c.region = t.region};

# where each run's row work ran: the audit row of the run says so
sub pushed_down
{
	my ($run) = @_;
	return cq(qq{SELECT coalesce(details->>'pushed_down', 'false') FROM elt.audit_log
                 WHERE action = 'transform_run' AND (details->>'run_id')::bigint = $run});
}
# staging tables left anywhere (coordinator, workers, their shards)
sub stages_left
{
	my $n = 0;
	foreach my $node (@nodes)
	{
		$n += $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_class WHERE relname LIKE '\_\_elt\_stage%'});
	}
	return $n;
}

my %runs;
foreach my $tr (qw(dw_totals dw_facts dw_counts dw_regions))
{
	($rc, $out, $err) = $coord->psql('postgres', qq{SELECT elt.transform_run('$tr')});
	is($rc, 0, "transform $tr runs") or diag($err);
	$runs{$tr} = $out;
}
is(pushed_down($runs{dw_totals}), 'true',
	'a join of colocated tables grouped by the distribution column: the row work runs on the shards');
is(pushed_down($runs{dw_facts}), 'true', 'and so does a join of colocated tables, ungrouped');
is(pushed_down($runs{dw_counts}), 'true', 'and a GROUP BY the distribution column of one table');
is(pushed_down($runs{dw_regions}), 'false',
	'a target grouped by another column than the distribution column stays on the coordinator');
is(cq(q{SELECT format('%s %s %s', count(*), sum(n), sum(total)) FROM dw.customer_totals}),
	cq(q{SELECT format('%s %s %s', count(DISTINCT customer_id), count(*), sum(amount)) FROM dw.sales}),
	'the pushed-down grouped run wrote one row per customer with sales, with their sums');
is(cq(qq{SELECT rows_written FROM elt.transform_runs WHERE run_id = $runs{dw_facts}}), '300',
	'rows_written of a pushed-down run');
is(cq(qq{SELECT string_agg(format('%s %s', (details->>'run_id'), details->>'lineage_rows'), ', '
                           ORDER BY (details->>'run_id')::bigint)
         FROM elt.audit_log WHERE action = 'transform_run'
          AND (details->>'run_id')::bigint IN ($runs{dw_totals}, $runs{dw_facts})}),
	"$runs{dw_totals} 34, $runs{dw_facts} 600",
	'lineage_rows: one per target row and source table');
is(trace_mismatches('dw.customer_totals', 't.customer_id::text', $totals_oracle), '0 of 17',
	'pushed down, grouped: elt.trace of every target row equals its customer and its sales');
is(trace_mismatches('dw.sale_facts', q{format('(%s,%s)', t.customer_id, t.id)}, $facts_oracle),
	'0 of 300', 'pushed down, a join: elt.trace of every target row equals its sale and its customer');
is(trace_mismatches('dw.sale_counts', 't.customer_id::text', $counts_oracle), '0 of 17',
	'pushed down, grouped by the distribution column: elt.trace of every target row equals its sales');
is(trace_mismatches('dw.region_totals', 't.region', $regions_oracle), '0 of 2',
	'on the coordinator: elt.trace of every target row equals its customers and sales');
is(stages_left(), 0, 'no staging table is left on any node');
is(cq(q{SELECT count(*) FROM elt.schema_history WHERE table_name LIKE '\_\_elt\_stage%'})
	  . ' ' . cq(q{SELECT count(*) FROM elt.audit_log WHERE object LIKE '%\_\_elt\_stage%'}),
	'0 0', 'the governed schema\'s history and the audit log never name a staging table');

# the same transform with elt.citus_pushdown off: the same lineage, from
# the coordinator; a second pushed-down run after a change: the same as
# the coordinator's again
cq(q{UPDATE dw.sales SET amount = amount + 1 WHERE id % 5 = 0;
     INSERT INTO dw.sales VALUES (18, 1001, 7), (18, 1002, 8)});
my $off = cq(q{SET elt.citus_pushdown = off; SELECT elt.transform_run('dw_counts')});
my $on = cq(q{SELECT elt.transform_run('dw_counts')});
is(pushed_down($off) . ' ' . pushed_down($on), 'false true',
	'elt.citus_pushdown off keeps a colocated run on the coordinator');
my $lineage_of = sub {
	my ($run) = @_;
	return cq(qq{SELECT string_agg(format('%s %s %s', target_key, source_rel, source_keys_text), '; '
                                   ORDER BY target_key)
                 FROM elt.lineage_rows WHERE run_id = $run});
};
is($lineage_of->($on), $lineage_of->($off),
	'a pushed-down run records the same lineage as the same run on the coordinator');
like($lineage_of->($on), qr/^1 dw\.sales \{[^}]*"\(1,17\)"/, 'which lists each group\'s sales');
is(cq(q{SELECT n FROM dw.sale_counts WHERE customer_id = 18}), '2', 'and the merge added the new customer');
# replace mode: the target's rows deleted, then written from the stage
cq(q{SET ROLE dw_owner;
     CREATE TABLE dw.sale_counts_r (customer_id bigint PRIMARY KEY, n bigint);
     SELECT create_distributed_table('dw.sale_counts_r', 'customer_id', colocate_with => 'dw.customers');
     SELECT elt.transform_create('dw_counts_r', 'dw.sale_counts_r',
       'SELECT customer_id, count(*) AS n FROM dw.sales GROUP BY customer_id', 'replace');
     RESET ROLE});
cq(q{SELECT elt.transform_run('dw_counts_r')});
my $replaced = cq(q{SELECT elt.transform_run('dw_counts_r')});
is(pushed_down($replaced), 'true', 'a replace run between colocated tables is pushed down');
is(cq(qq{SELECT format('%s %s', rows_written, rows_deleted) FROM elt.transform_runs WHERE run_id = $replaced}),
	'18 18', 'and deletes the rows of the run before it, then writes its own');
is($lineage_of->($replaced), $lineage_of->($off), 'with the same lineage as the merge on the coordinator');

# a pushed-down run that fails on the shards (a merge writing one target
# row twice) leaves nothing: no row, no lineage, no staging table; the run
# is recorded as failed
cq(q{SET ROLE dw_owner;
     SELECT elt.transform_create('dw_dup', 'dw.sale_counts',
       'SELECT s.customer_id, count(*) AS n FROM dw.sales s GROUP BY s.customer_id, s.id % 2', 'merge');
     RESET ROLE});
my $before = cq(q{SELECT format('%s %s', count(*), sum(n)) FROM dw.sale_counts});
my $chunks = cq(q{SELECT count(*) FROM elt.lineage_chunks});
like(fails(q{SELECT elt.transform_run('dw_dup')}),
	qr/ON CONFLICT DO UPDATE command cannot affect row a second time/,
	'a pushed-down merge that writes a row twice fails with the shard\'s error');
is(cq(q{SELECT format('%s %s', count(*), sum(n)) FROM dw.sale_counts}), $before,
	'and changes no target row');
is(cq(q{SELECT count(*) FROM elt.lineage_chunks}), $chunks, 'stores no lineage');
is(cq(q{SELECT status FROM elt.transform_runs r JOIN elt.transform_defs t USING (transform_id)
        WHERE t.name = 'dw_dup'}), 'failed', 'and is recorded as failed');
is(stages_left(), 0, 'and leaves no staging table on any node');

# 14. snapshots, sandboxes, runs in a sandbox, replay and the canary of
# Citus tables (issue 25): copies are distributed like their sources
sub dist_of
{
	my ($rel) = @_;
	return cq(qq{SELECT coalesce((SELECT format('%s %s %s', partmethod, repmodel,
	                  coalesce(column_to_column_name(logicalrelid, partkey), '-'))
	                  FROM pg_dist_partition WHERE logicalrelid = '$rel'::regclass), 'local')});
}
sub colocated
{
	my ($a, $b) = @_;
	return cq(qq{SELECT (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = '$a'::regclass)
	                  = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = '$b'::regclass)});
}

# snapshots: a distributed table's is distributed on its column, colocated
# with it (as many shards); a reference table's is a reference table; the
# checksums are the sources'
my $snap_orders = cq(q{SELECT elt.snapshot_create('shop.orders')});
my $snap_rel = cq(qq{SELECT 'elt_snapshots.' || storage FROM elt.snapshot_defs WHERE snapshot_id = $snap_orders});
is(dist_of($snap_rel), 'h s id', 'snapshot of a distributed table: distributed on its column');
is(colocated($snap_rel, 'shop.orders'), 't', 'and colocated with its source');
is(cq(qq{SELECT count(*) FROM citus_shards WHERE table_name = '$snap_rel'::regclass}), '4',
	'with as many shards');
is(cq(qq{SELECT elt.table_checksum('$snap_rel')}), cq(q{SELECT elt.table_checksum('shop.orders')}),
	"its checksum is the source's");
is(cq(qq{SELECT checksum FROM elt.snapshot_defs WHERE snapshot_id = $snap_orders}),
	cq(q{SELECT elt.table_checksum('shop.orders')}), 'and so is the recorded one');
is(cq(qq{SELECT elt.snapshot_verify($snap_orders)}), 't', 'snapshot_verify of it');
like(fails(qq{TRUNCATE $snap_rel}), qr/snapshot .* is immutable/,
	'it cannot be truncated, even by a superuser');
like(fails(qq{DELETE FROM $snap_rel WHERE id = 1}), qr/snapshot .* is immutable/,
	'nor its rows changed (the trigger is on every shard)');
is(cq(qq{SELECT count(*) FROM $snap_rel}), '100', 'it keeps every row');
my $snap_cust = cq(q{SELECT elt.snapshot_create('shop.customers')});
my $snap_crel = cq(qq{SELECT 'elt_snapshots.' || storage FROM elt.snapshot_defs WHERE snapshot_id = $snap_cust});
is(dist_of($snap_crel), 'n t -', 'snapshot of a reference table: a reference table');
is(cq(qq{SELECT elt.table_checksum('$snap_crel')}), cq(q{SELECT elt.table_checksum('shop.customers')}),
	"with the source's checksum");
is(cq(q{SELECT elt.snapshot_create('shop.orders')}), $snap_orders,
	'the same content is the same snapshot');
my $snap_local = cq(q{SELECT elt.snapshot_create('public.orders_local')});
isnt($snap_local, $snap_orders, 'a local table of the same rows gets a snapshot of its own');
is(dist_of(cq(qq{SELECT 'elt_snapshots.' || storage FROM elt.snapshot_defs WHERE snapshot_id = $snap_local})),
	'local', 'which is a plain table');

# a schema of Citus tables with foreign keys between them, and masking rules
cq(q{
CREATE SCHEMA crm;
CREATE TABLE crm.regions (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE crm.accounts (id bigint PRIMARY KEY, email text NOT NULL, region_id int, balance numeric);
CREATE TABLE crm.contacts (account_id bigint NOT NULL, id bigint NOT NULL, phone text,
                           PRIMARY KEY (account_id, id));
SELECT create_reference_table('crm.regions');
SELECT create_distributed_table('crm.accounts', 'id', shard_count => 4);
SELECT create_distributed_table('crm.contacts', 'account_id', colocate_with => 'crm.accounts');
ALTER TABLE crm.accounts ADD FOREIGN KEY (region_id) REFERENCES crm.regions (id);
ALTER TABLE crm.contacts ADD FOREIGN KEY (account_id) REFERENCES crm.accounts (id);
INSERT INTO crm.regions SELECT g, 'region ' || g FROM generate_series(1, 5) g;
INSERT INTO crm.accounts SELECT g, 'user' || g || '@corp.example', 1 + g % 5, g * 10 FROM generate_series(1, 60) g;
INSERT INTO crm.contacts SELECT 1 + g % 60, g, '+1 555 01' || lpad(g::text, 2, '0') FROM generate_series(1, 150) g;
SELECT elt.mask_set('crm.accounts', 'email', 'pseudonym', '{"kind": "email"}');
SELECT elt.mask_set('crm.accounts', 'id', 'hash');
SELECT elt.mask_set('crm.contacts', 'account_id', 'hash');
SELECT elt.mask_set('crm.contacts', 'phone', 'partial', '{"prefix": 3}');
});
# plain tables of the same rows: what the copies are checked against
cq(q{
CREATE SCHEMA crm_plain;
CREATE TABLE crm_plain.regions (LIKE crm.regions INCLUDING ALL);
CREATE TABLE crm_plain.accounts (LIKE crm.accounts INCLUDING ALL,
                                 FOREIGN KEY (region_id) REFERENCES crm_plain.regions (id));
CREATE TABLE crm_plain.contacts (LIKE crm.contacts INCLUDING ALL,
                                 FOREIGN KEY (account_id) REFERENCES crm_plain.accounts (id));
INSERT INTO crm_plain.regions SELECT * FROM crm.regions;
INSERT INTO crm_plain.accounts SELECT * FROM crm.accounts;
INSERT INTO crm_plain.contacts SELECT * FROM crm.contacts;
});
# whole, masked: every copy distributed like its source, every masked
# value masked, every foreign key holding
is(cq(q{SELECT string_agg(format('%s %s', relation, rows), ', ' ORDER BY relation::text)
        FROM elt.sandbox_create('crm_sbx', ARRAY['crm'])}),
	'crm_sbx.accounts 60, crm_sbx.contacts 150, crm_sbx.regions 5',
	'sandbox_create of a schema of Citus tables: every row copied');
is(dist_of('crm_sbx.accounts') . '; ' . dist_of('crm_sbx.contacts') . '; ' . dist_of('crm_sbx.regions'),
	'h s id; h s account_id; n t -',
	'each copy distributed like its source (reference as reference)');
is(colocated('crm_sbx.accounts', 'crm.accounts') . colocated('crm_sbx.contacts', 'crm.accounts'), 'tt',
	'and colocated with it');
is(cq(q{SELECT count(*) FROM crm_sbx.accounts a JOIN crm_plain.accounts s ON s.email = a.email OR s.id = a.id}), '0',
	'no masked email or id of the copy is a source value');
is(cq(q{SELECT count(*) FILTER (WHERE a.email LIKE '%@example.%') || ' ' || count(DISTINCT a.email)
        FROM crm_sbx.accounts a}), '60 60', 'every email is a distinct pseudonym');
# what the shards would do with elt._mask: refuse (no token, no key there),
# never return the value; hence the masking on the coordinator
is(cq(q{SELECT string_agg(DISTINCT CASE WHEN result LIKE '%internal to elt_governance%' THEN 'refused' ELSE result END, ',')
        FROM run_command_on_shards('crm.accounts', $$SELECT elt._mask(1, 0, email, NULL) FROM %s LIMIT 1$$)}),
	'refused', 'elt._mask called on a shard refuses: it never returns an unmasked value there');
is(cq(q{SELECT count(*) FROM crm_sbx.contacts c JOIN crm_plain.contacts s ON s.phone = c.phone}), '0',
	'no phone of the copy is a source value');
is(cq(q{SELECT count(*) FILTER (WHERE phone ~ '^\+1 \*+$') FROM crm_sbx.contacts}), '150',
	'every phone masked (its prefix kept)');
is(cq(q{SELECT string_agg(conrelid::regclass || ' ' || confrelid::regclass, ', ' ORDER BY conrelid::regclass::text)
        FROM pg_constraint WHERE contype = 'f' AND connamespace = 'crm_sbx'::regnamespace}),
	'crm_sbx.accounts crm_sbx.regions, crm_sbx.contacts crm_sbx.accounts',
	'the foreign keys between the copies are there');
is(cq(q{SELECT count(*) FROM crm_sbx.contacts c LEFT JOIN crm_sbx.accounts a ON a.id = c.account_id
        WHERE a.id IS NULL}), '0', 'and hold: every contact has its (hashed) account');
is(cq(q{SELECT sum(balance) FROM crm_sbx.accounts}), cq(q{SELECT sum(balance) FROM crm.accounts}),
	'unmasked columns copied as they are');
# unmasked: the copies have the sources' checksums
cq(q{SELECT count(*) FROM elt.sandbox_create('crm_raw', ARRAY['crm'], masked => false)});
foreach my $t (qw(accounts contacts regions))
{
	is(cq(qq{SELECT elt.table_checksum('crm_raw.$t')}), cq(qq{SELECT elt.table_checksum('crm.$t')}),
		"an unmasked copy of crm.$t has its checksum");
}
# samples: the rows chosen are those a sample of the same seed chooses from
# the plain tables, closed under the foreign keys
foreach my $sample ('{"percent": 20, "seed": 7}', '{"rows": 10, "seed": 3}',
	'{"root": "crm.accounts", "where": "id <= 4"}')
{
	my $plain = $sample =~ s/crm\.accounts/crm_plain.accounts/r;
	cq(qq{SELECT count(*) FROM elt.sandbox_create('crm_smp', ARRAY['crm'], '$sample', masked => false);
	      SELECT count(*) FROM elt.sandbox_create('crm_pls', ARRAY['crm_plain'], '$plain', masked => false)});
	is(cq(q{SELECT string_agg(format('%s %s %s', t, n, d), ', ' ORDER BY t) FROM (
	          SELECT 'accounts' t, (SELECT count(*) FROM crm_smp.accounts) n,
	                 (SELECT count(*) FROM (SELECT * FROM crm_smp.accounts EXCEPT SELECT * FROM crm_pls.accounts) x) d
	          UNION ALL SELECT 'contacts', (SELECT count(*) FROM crm_smp.contacts),
	                 (SELECT count(*) FROM (SELECT * FROM crm_smp.contacts EXCEPT SELECT * FROM crm_pls.contacts) x)
	          UNION ALL SELECT 'regions', (SELECT count(*) FROM crm_smp.regions),
	                 (SELECT count(*) FROM (SELECT * FROM crm_smp.regions EXCEPT SELECT * FROM crm_pls.regions) x)) s}),
		cq(q{SELECT string_agg(format('%s %s 0', t, n), ', ' ORDER BY t) FROM (
	          SELECT 'accounts' t, (SELECT count(*) FROM crm_pls.accounts) n
	          UNION ALL SELECT 'contacts', (SELECT count(*) FROM crm_pls.contacts)
	          UNION ALL SELECT 'regions', (SELECT count(*) FROM crm_pls.regions)) s}),
		"sample $sample of Citus tables: the rows of the same sample of plain tables");
	is(dist_of('crm_smp.contacts') . '; ' . dist_of('crm_smp.regions'), 'h s account_id; n t -',
		'distributed like the sources');
	cq(q{SELECT elt.sandbox_drop('crm_smp'); SELECT elt.sandbox_drop('crm_pls')});
}
isnt(cq(q{SELECT count(*) FROM elt.sandbox_create('crm_smp', ARRAY['crm'], '{"percent": 20}')}), '0',
	'a masked sample');
is(cq(q{SELECT count(*) FROM crm_smp.contacts c LEFT JOIN crm_smp.accounts a ON a.id = c.account_id
        WHERE a.id IS NULL}) . ' ' . cq(q{SELECT count(*) FROM crm_smp.accounts a JOIN crm_plain.accounts s ON s.email = a.email}),
	'0 0', 'closed under its foreign keys, every email masked');
cq(q{SELECT count(*) FROM elt.sandbox_refresh('crm_smp')});
is(dist_of('crm_smp.accounts'), 'h s id', 'sandbox_refresh makes it distributed again');
cq(q{SELECT elt.sandbox_drop('crm_smp')});
# synthetic rows are drawn from pg_stats, which the coordinator does not
# have for a Citus table: refused, saying what to do, nothing made
cq(q{ANALYZE crm.accounts});
like(fails(q{SELECT elt.sandbox_create('crm_syn', ARRAY['crm'], '{"synthetic": true, "seed": 1}')}),
	qr/ERROR:  synthetic rows cannot be generated for crm\.\w+: it is a Citus table.*HINT:  Make a masked sample/s,
	'a synthetic sandbox of Citus tables is refused, with what to do');
is(cq(q{SELECT count(*) FROM pg_namespace WHERE nspname = 'crm_syn'}) . ' '
	  . cq(q{SELECT count(*) FROM elt.sandboxes WHERE name = 'crm_syn'}),
	'0 0', 'and nothing is made');
is(cq(q{SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'crm\_smp.%'}), '0',
	'sandbox_drop drops its distributed copies');

# a transform run in the sandbox writes a distributed copy of its target;
# its manifest records how each relation is distributed
cq(q{
CREATE TABLE mart.account_facts (id bigint PRIMARY KEY, region text, balance numeric);
SELECT create_distributed_table('mart.account_facts', 'id', colocate_with => 'crm.accounts');
SELECT elt.transform_create('account_facts', 'mart.account_facts',
  'SELECT a.id, r.name AS region, a.balance FROM crm.accounts a JOIN crm.regions r ON r.id = a.region_id', 'merge');
});
my $sbx_run = cq(q{SELECT elt.transform_run('account_facts', sandbox => 'crm_sbx')});
is(cq(q{SELECT count(*) FROM crm_sbx.account_facts}), '60', 'transform_run in the sandbox: every row');
is(dist_of('crm_sbx.account_facts'), 'h s id', "the sandbox's table of the target is distributed like it");
is(colocated('crm_sbx.account_facts', 'crm_sbx.accounts'), 't', 'colocated with the copies it reads');
is(cq(q{SELECT count(*) FROM crm_sbx.account_facts f JOIN crm_sbx.accounts a USING (id)}), '60',
	'its rows are the masked copies\'');
is(cq(qq{SELECT string_agg(format('%s %s %s', r->>'relation', r->'distribution'->>'method', coalesce(r->'distribution'->>'column', '-')), '; '
                           ORDER BY r->>'relation')
         FROM (SELECT jsonb_array_elements(m->'inputs') r FROM elt.run_manifest($sbx_run) m
               UNION ALL SELECT jsonb_array_elements(m->'outputs') FROM elt.run_manifest($sbx_run) m) x}),
	'crm_sbx.account_facts hash id; crm_sbx.account_facts hash id; crm_sbx.accounts hash id; crm_sbx.regions reference -',
	"the sandbox run's manifest records the distribution of what it read and wrote");
# a live run under 'full' keeps distributed snapshots; its replay in a
# sandbox of its own is distributed as the run recorded; and in crm_sbx.
# The run snapshots a reference and a distributed table, then joins them:
# with a connection per shard (force_max_query_parallelization), Citus
# would find the placements it joins written over two connections, unless
# the run keeps to one connection per node (it failed so now and then)
my $full_run = cq(q{SET elt.manifest_policy = 'full'; SET citus.force_max_query_parallelization = on;
SELECT elt.transform_run('account_facts')});
is(cq(q{SET elt.manifest_policy = 'full'; SELECT elt.transform_run('account_facts');
        SHOW citus.multi_shard_modify_mode}) =~ s/.*\n//sr,
	'parallel', 'the run keeps to one connection per node for itself alone: the session is parallel again after it');
is(cq(qq{SELECT string_agg(dist, '; ' ORDER BY dist) FROM (
          SELECT format('%s %s', p.partmethod, coalesce(column_to_column_name(p.logicalrelid, p.partkey), '-')) dist
          FROM elt.run_snapshots rs JOIN elt.snapshot_defs d USING (snapshot_id)
          JOIN pg_dist_partition p ON p.logicalrelid = ('elt_snapshots.' || d.storage)::regclass
          WHERE rs.run_id = $full_run) s}),
	'h id; h id; h id; n -',
	"the run's snapshots (its sources, its target before and after) are distributed like them");
is(cq(qq{SELECT o->>'checksum' FROM elt.run_manifest($full_run) m, jsonb_array_elements(m->'outputs') o}),
	cq(q{SELECT elt.table_checksum('mart.account_facts')}),
	"the checksum of the run's distributed output is of what the run wrote");
is(cq(qq{SELECT o->>'checksum' FROM elt.run_manifest($sbx_run) m, jsonb_array_elements(m->'outputs') o}),
	cq(q{SELECT elt.table_checksum('crm_sbx.account_facts')}),
	"and so is the sandbox run's, into the distributed table it made");
my $replay = cq(qq{SELECT elt.replay($full_run, 'crm_replay')});
is(dist_of('crm_replay.accounts') . '; ' . dist_of('crm_replay.regions') . '; ' . dist_of('crm_replay.account_facts'),
	'h s id; n t -; h s id', 'replay: its copies distributed as the run recorded');
is(colocated('crm_replay.account_facts', 'crm_replay.accounts'), 't', 'colocated as they were');
is(cq(qq{SELECT count(*) FILTER (WHERE NOT ok) || ' of ' || count(*) FROM elt.verify_replay($full_run, $replay)}),
	'0 of ' . cq(qq{SELECT count(*) FROM elt.verify_replay($full_run, $replay)}),
	'verify_replay: the replay is identical');
my $sbx_replay = cq(qq{SELECT elt.replay($full_run, sandbox => 'crm_sbx')});
is(cq(qq{SELECT r->'distribution'->>'method' FROM elt.run_manifest($sbx_replay) m, jsonb_array_elements(m->'outputs') r}),
	'hash', 'replay in the sandbox: writes its distributed table, recorded so');
is(cq(q{SELECT count(*) FROM crm_sbx.account_facts}), '60', 'every row');

# the canary: sessions of a role, or a share of sessions, read the candidate
# through the interface's views, every other session live; each session
# reads one color whole (never some shards of each)
cq(q{
SELECT elt.deploy_prepare('app', true);
UPDATE app__green.items SET v = 'canary' WHERE id <= 10;
CREATE ROLE canary_reader LOGIN;  -- Citus reads the shards as the session's role
GRANT USAGE ON SCHEMA app TO canary_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO canary_reader;
});
my $colors = q{SELECT count(*) || ' ' || count(*) FILTER (WHERE v = 'canary') FROM app.items};
is(fails(q{SELECT elt.deploy_canary('app', ARRAY['canary_reader'])}), '', 'deploy_canary for a role');
is(cq($colors), '100 0', 'a session of another role reads live');
{
	local $TODO = 'issue 25: Citus reads the shards as the session role, not the views\' owner';
	is(fails("SET ROLE canary_reader; $colors"), '',
		'a role granted the interface views alone reads them');
}
# Citus reads the shards as the session's role: it needs the colors' tables too
cq(q{GRANT USAGE ON SCHEMA app__blue, app__green TO canary_reader;
     GRANT SELECT ON ALL TABLES IN SCHEMA app__blue, app__green TO canary_reader});
is(cq("SET ROLE canary_reader; $colors"), '100 10', 'a session of the role reads the candidate');
{
	local $TODO = 'issue 25: Citus cannot join the canary views (a UNION ALL of both colors each)';
	is(fails(q{SELECT count(*) FROM app.items i JOIN app.kinds k ON k.id = i.kind}), '',
		'a join of the interface views (distributed and reference) under a canary');
}
cq(q{SELECT elt.deploy_canary('app', percent => 100)});
is(cq($colors), '100 10', 'percent 100: every session reads the candidate');
cq(q{SELECT elt.deploy_canary('app', percent => 50)});
my %seen;
foreach my $i (1 .. 8)
{
	$seen{ cq($colors) }++;
}
is(join(', ', grep { $_ ne '100 0' && $_ ne '100 10' } sort keys %seen), '',
	'percent 50: each session reads one color whole (' . join(', ', map { "$_ x$seen{$_}" } sort keys %seen) . ')');
is(fails(q{SELECT elt.deploy_canary_stop('app')}), '', 'deploy_canary_stop');
is(cq("SET ROLE canary_reader; $colors"), '100 0', 'every session reads live again');

# 12. the audit chain holds
is(cq(q{SELECT valid FROM elt.audit_verify()}), 't', 'audit_verify');

# 13. no crash on any node
foreach my $node (@nodes)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/terminated by signal|PANIC|TRAP:/,
		'no crash in the log of ' . $node->name);
}

$_->stop foreach @nodes;
done_testing();
