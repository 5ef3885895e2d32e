# sqitch, the real one (/usr/bin/sqitch, engine pg: one psql per change):
# a plan that creates a governed schema's table, then renames a column and
# adds one.  Without a migration a fresh deploy stops half-way and its
# automatic revert is blocked too; with PGOPTIONS='-c elt.migration=NAME' it
# deploys and reverts under enforce (the table was created by the same named
# migration and nothing reads it); once another consumer's view reads the
# table the rename is stopped unless the run is approved with
# elt.approved_by, under elt.require_second_approver's rules.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $sqitch = '/usr/bin/sqitch';
plan skip_all => 'sqitch is not installed (scripts/setup.sh installs it)' unless -x $sqitch;

my $node = PostgreSQL::Test::Cluster->new('sqitch');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->start;

# the sqitch project: two changes, each with deploy, revert and verify
my $proj = PostgreSQL::Test::Utils::tempdir;
my %tool_env = (
	PGHOST => $node->host,
	PGPORT => $node->port,
	SQITCH_USER_CONFIG => "$proj/user.conf",
	SQITCH_FULLNAME => 'Deploy Bot',
	SQITCH_EMAIL => 'deploy@example.com',
	HOME => $proj);

# Run sqitch in the project with PGOPTIONS (undef: none) as database user $user.
sub sqitch
{
	my ($user, $pgoptions, @args) = @_;
	local %ENV = (%ENV, %tool_env, PGUSER => $user);
	delete $ENV{PGOPTIONS};
	$ENV{PGOPTIONS} = $pgoptions if defined $pgoptions;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $sqitch, @args ], '<', \undef, '>', \$out, '2>', \$err,
		init => sub { chdir $proj or die "chdir $proj: $!" });
	return ($? >> 8, $out, $err);
}

# Write a file of the project.
sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', "$proj/$path" or die "$path: $!";
	print $fh $text;
	close $fh;
}

my ($rc, $out, $err) = sqitch('postgres', undef, 'init', 'shop', '--engine', 'pg');
is($rc, 0, 'sqitch init') or diag($err);
($rc, $out, $err) = sqitch('postgres', undef, 'add', 'orders', '-n', 'orders table');
is($rc, 0, 'sqitch add orders') or diag($err);
($rc, $out, $err) = sqitch('postgres', undef, 'add', 'orders_total', '--requires', 'orders',
	'-n', 'rename amt to total, add note');
is($rc, 0, 'sqitch add orders_total') or diag($err);
write_file('deploy/orders.sql', "BEGIN;\nCREATE TABLE app.orders (id int PRIMARY KEY, amt numeric);\nCOMMIT;\n");
write_file('revert/orders.sql', "BEGIN;\nDROP TABLE app.orders;\nCOMMIT;\n");
write_file('verify/orders.sql', "SELECT id, amt FROM app.orders WHERE false;\n");
write_file('deploy/orders_total.sql', "BEGIN;\nALTER TABLE app.orders RENAME COLUMN amt TO total;\n"
	  . "ALTER TABLE app.orders ADD COLUMN note text;\nCOMMIT;\n");
write_file('revert/orders_total.sql', "BEGIN;\nALTER TABLE app.orders DROP COLUMN note;\n"
	  . "ALTER TABLE app.orders RENAME COLUMN total TO amt;\nCOMMIT;\n");
write_file('verify/orders_total.sql', "SELECT id, total, note FROM app.orders WHERE false;\n");

# A database with the extension and the governed, empty schema app (enforce).
sub governed_db
{
	my ($db, $owner) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
CREATE EXTENSION elt_governance;
CREATE SCHEMA app AUTHORIZATION $owner;
SELECT elt.govern('app', 'enforce');
SELECT elt.approver_add('lead');
});
}

# --- today without settings: the fresh deploy stops at the rename, and its
# automatic revert cannot drop the table the first change committed
governed_db('shop0', 'postgres');
($rc, $out, $err) = sqitch('postgres', undef, 'deploy', 'db:pg:shop0');
isnt($rc, 0, 'without a migration, a fresh deploy fails');
like($out . $err, qr/EG106/, 'at the rename (EG106)');
like($out . $err, qr/EG101/, 'and its automatic revert is blocked (EG101)');

# --- a named migration (no approval): deploy and revert complete under enforce
governed_db('shop1', 'postgres');
my $named = '-c elt.migration=release-1';
($rc, $out, $err) = sqitch('postgres', $named, 'deploy', 'db:pg:shop1');
is($rc, 0, 'a fresh deploy completes under enforce with elt.migration') or diag($out . $err);
is($node->safe_psql('shop1',
		q{SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
		  WHERE attrelid = 'app.orders'::regclass AND attnum > 0 AND NOT attisdropped}),
	'id,total,note', 'the plan ran to its end');
is($node->safe_psql('shop1',
		q{SELECT name || ' ' || coalesce(approved_by, '-') || ' ' || status || ' ' || opened_via
		  FROM elt.migrations}),
	'release-1 - open settings', 'elt.migrations shows one migration, approving nothing');
is($node->safe_psql('shop1',
		q{SELECT count(*) FILTER (WHERE migration_id IS NULL) || '/' || count(*)
		  FROM elt.schema_versions WHERE table_name = 'orders'}),
	'0/3', 'every version of the table (created, renamed, added) carries the migration');
is($node->safe_psql('shop1',
		q{SELECT string_agg(DISTINCT decision, ',') FROM elt.schema_changes
		  WHERE object LIKE 'app.orders%'}),
	'allowed', 'nothing was approved: a table of the same migration is not judged');
cmp_ok($node->safe_psql('shop1', q{SELECT count(DISTINCT xid) FROM elt.schema_versions v
	JOIN elt.migrations m USING (migration_id)}), '>=', 2,
	'the migration spans the transactions of several psql sessions');
($rc, $out, $err) = sqitch('postgres', $named, 'revert', '-y', 'db:pg:shop1');
is($rc, 0, 'sqitch revert completes under enforce') or diag($out . $err);
is($node->safe_psql('shop1', q{SELECT to_regclass('app.orders') IS NULL}), 't', 'the table is gone');
is($node->safe_psql('shop1', q{SELECT count(*) FROM elt.migrations}), '1',
	'the revert joined the same migration');
$rc = $node->psql('shop1', q{SELECT elt.migration_end()},
	connstr => $node->connstr('shop1') . " options='$named'");
is($rc, 0, 'elt.migration_end() in a session with the settings ends it');
is($node->safe_psql('shop1', q{SELECT status FROM elt.migrations}), 'closed', 'the migration is closed');
is($node->safe_psql('shop1', q{SELECT valid FROM elt.audit_verify()}), 't', 'the audit chain verifies');

# --- another consumer's view reads the table: the rename needs approval,
# and with elt.require_second_approver on, an approval by someone else
$node->append_conf('postgresql.conf', 'elt.require_second_approver = on');
$node->reload;
$node->safe_psql('postgres', q{
CREATE ROLE deployer LOGIN;
CREATE ROLE lead LOGIN;
CREATE ROLE reporter LOGIN;
});
governed_db('shop2', 'deployer');
$node->safe_psql('shop2', q{
GRANT CREATE ON DATABASE shop2 TO deployer;
SELECT elt.approver_add('deployer');
CREATE SCHEMA rep AUTHORIZATION reporter;
});
my $mig = '-c elt.migration=release-2';
($rc, $out, $err) = sqitch('deployer', $mig, 'deploy', '--to', 'orders', 'db:pg:shop2');
is($rc, 0, 'the first change deploys') or diag($out . $err);
$node->safe_psql('shop2', q{
GRANT USAGE ON SCHEMA app TO reporter;
GRANT SELECT ON app.orders TO reporter;
SET ROLE reporter;
CREATE VIEW rep.order_amounts AS SELECT id, amt FROM app.orders;
});
($rc, $out, $err) = sqitch('deployer', $mig, 'deploy', 'db:pg:shop2');
isnt($rc, 0, 'a view outside the migration reads the table: the rename is stopped');
like($out . $err, qr/EG106.*\n.*Breaks: view rep\.order_amounts/, 'naming the view');
($rc, $out, $err) = sqitch('deployer', "$mig -c elt.approved_by=deployer", 'deploy', 'db:pg:shop2');
isnt($rc, 0, 'the deployer cannot approve its own migration by a setting');
like($err, qr/cannot be approved by the session user "deployer"/, 'self-approval refused');
($rc, $out, $err) = sqitch('deployer', "$mig -c elt.approved_by=lead", 'deploy', 'db:pg:shop2');
isnt($rc, 0, 'naming an approver who did not approve is refused');
like($err, qr/has no approval from "lead" for "deployer"/, 'the approval is missing');
is($node->safe_psql('shop2', q{SELECT count(*) FROM pg_attribute
	WHERE attrelid = 'app.orders'::regclass AND attname = 'amt'}), '1', 'the table is unchanged');

$node->psql('shop2', q{SELECT elt.migration_approve('release-2', 'deployer')},
	on_error_die => 1, connstr => $node->connstr('shop2') . ' user=lead');
($rc, $out, $err) = sqitch('deployer', "$mig -c elt.approved_by=lead", 'deploy', 'db:pg:shop2');
is($rc, 0, 'approved by lead, the deploy completes') or diag($out . $err);
is($node->safe_psql('shop2', q{SELECT string_agg(id::text, ',') FROM rep.order_amounts}), '',
	'the view still reads the table');
is($node->safe_psql('shop2',
		q{SELECT string_agg(m.name || ' ' || coalesce(m.approved_by, '-') || ' ' || m.status, ';' ORDER BY m.migration_id)
		  FROM elt.migrations m}),
	'release-2 - open;release-2 lead open', 'elt.migrations: the named one, and the approved one');
is($node->safe_psql('shop2',
		q{SELECT count(*) || ' ' || bool_and(a.migration_id = m.migration_id)::int
		  FROM elt.migration_approvals a, elt.migration_windows m WHERE m.approved_by = 'lead'}),
	'1 1', 'one approval, used by the approved migration');
is($node->safe_psql('shop2',
		q{SELECT string_agg(c.rule || ' ' || c.decision, ',' ORDER BY c.change_id)
		  FROM elt.schema_changes c JOIN elt.migration_windows m USING (migration_id)
		  WHERE m.approved_by = 'lead' AND c.class <> 'safe'}),
	'EG106 approved,EG208 allowed',
	'the rename was approved by the migration (its locks, with no lock_timeout, are advice)');
is($node->safe_psql('shop2', q{SELECT count(*) FROM elt.audit_log
	WHERE action = 'migration_begun' AND details->>'via' = 'settings' AND details->>'approved_by' = 'lead'}),
	'1', 'the audit log records the approval by settings');

# the revert joins the approved migration: the approval is used once, for
# every session of the run
($rc, $out, $err) = sqitch('deployer', "$mig -c elt.approved_by=lead", 'revert', '-y', '--to', 'orders',
	'db:pg:shop2');
is($rc, 0, 'sqitch revert joins the approved migration') or diag($out . $err);
is($node->safe_psql('shop2', q{SELECT string_agg(id::text, ',') FROM rep.order_amounts}), '',
	'the view still reads the table');
is($node->safe_psql('shop2', q{SELECT count(*) FROM elt.migrations WHERE approved_by = 'lead'}), '1',
	'still one approved migration');
$node->psql('shop2', q{SELECT elt.migration_end()}, on_error_die => 1,
	connstr => $node->connstr('shop2') . " user=deployer options='$mig -c elt.approved_by=lead'");
($rc, $out, $err) = sqitch('deployer', "$mig -c elt.approved_by=lead", 'deploy', 'db:pg:shop2');
isnt($rc, 0, 'once ended, the approval is used up: a new run needs a new one');
like($err, qr/has no approval from "lead"/, 'asking for it');

is($node->safe_psql('shop2', q{SELECT valid FROM elt.audit_verify()}), 't', 'the audit chain verifies');

$node->stop;
done_testing();
