# dbt's approval pattern for a whole run: dbt opens a connection per model,
# and libpq's PGOPTIONS reaches every one of them, so
#   PGOPTIONS='-c elt.migration=dbt-release-42 -c elt.approved_by=alice' dbt run
# makes every model's session join one approved migration window.  dbt
# cannot be installed here: each model is replayed, in a psql session of its
# own started with that PGOPTIONS, with the exact SQL dbt-postgres issues
# (dbt-labs/dbt-adapters 802d40f0: table.sql and view.sql materializations,
# postgres__create_table_as, default__create_view_as, default__rename_relation,
# postgres__drop_relation; as test/sql/tools_dbt.sql replays them).  One
# breaking table-model rebuild (a column dropped) and one breaking view-model
# rebuild (a column dropped): without the settings the first is stopped
# under enforce; with them both pass, in two sessions of one window.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dbt_sessions');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->start;

# dbt renders relations database-qualified: the database is "warehouse"
$node->safe_psql('postgres', q{
CREATE ROLE dbt LOGIN;
CREATE ROLE alice LOGIN;
CREATE ROLE nobody LOGIN;
CREATE DATABASE warehouse;
});
$node->safe_psql('warehouse', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA dbt_src;
CREATE TABLE dbt_src.orders (order_id int PRIMARY KEY, customer_id int, amount numeric(10,2), status text);
INSERT INTO dbt_src.orders VALUES (1, 10, 5.00, 'new'), (2, 11, 7.50, 'paid');
GRANT USAGE ON SCHEMA dbt_src TO dbt;
GRANT SELECT ON dbt_src.orders TO dbt;
CREATE SCHEMA dbt_marts AUTHORIZATION dbt;
SELECT elt.govern('dbt_marts', 'enforce');
SELECT elt.approver_add('alice');
});

# The SQL of one model build by dbt: the statements of the materialization
# between BEGIN and COMMIT, then the drop of the backup (rebuilds only).
sub table_model
{
	my ($name, $sql, $rebuild) = @_;
	my $q = qq{"warehouse"."dbt_marts"};
	my $s = qq{BEGIN;
  create  table $q."${name}__dbt_tmp"
    as
  (
    $sql
  );
};
	$s .= qq{alter table $q."$name" rename to "${name}__dbt_backup";\n} if $rebuild;
	$s .= qq{alter table $q."${name}__dbt_tmp" rename to "$name";\nCOMMIT;\n};
	$s .= qq{drop table if exists $q."${name}__dbt_backup" cascade;\n} if $rebuild;
	return $s;
}

sub view_model
{
	my ($name, $sql, $rebuild) = @_;
	my $q = qq{"warehouse"."dbt_marts"};
	my $s = qq{BEGIN;
create view $q."${name}__dbt_tmp"
  as (
    $sql
  );
};
	$s .= qq{alter table $q."$name" rename to "${name}__dbt_backup";\n} if $rebuild;
	$s .= qq{alter table $q."${name}__dbt_tmp" rename to "$name";\nCOMMIT;\n};
	$s .= qq{drop view if exists $q."${name}__dbt_backup" cascade;\n} if $rebuild;
	return $s;
}

# Run one model in a psql session of its own as dbt, with PGOPTIONS (undef:
# none) in the environment as dbt's libpq connection gets it.
sub run_model
{
	my ($pgoptions, $sql) = @_;
	local $ENV{PGOPTIONS};
	delete $ENV{PGOPTIONS};
	$ENV{PGOPTIONS} = $pgoptions if defined $pgoptions;
	my ($out, $err);
	my $rc = $node->psql('warehouse', $sql,
		stdout => \$out, stderr => \$err, on_error_stop => 1,
		connstr => $node->connstr('warehouse') . ' user=dbt');
	return ($rc, $out, $err);
}

sub columns
{
	my ($rel) = @_;
	return $node->safe_psql('warehouse',
		qq{SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
		   WHERE attrelid = '$rel'::regclass AND attnum > 0 AND NOT attisdropped});
}

# first builds: not judged (the transaction created the relations)
my ($rc, $out, $err) = run_model(undef,
	table_model('customer_revenue',
		'select customer_id, sum(amount) as revenue, count(*) as orders from dbt_src.orders group by customer_id', 0));
is($rc, 0, 'table model, first build') or diag($err);
($rc, $out, $err) = run_model(undef,
	view_model('stg_orders', 'select order_id, customer_id, amount, status from dbt_src.orders', 0));
is($rc, 0, 'view model, first build') or diag($err);

my $table_rebuild = table_model('customer_revenue',
	'select customer_id, sum(amount) as revenue from dbt_src.orders group by customer_id', 1);
my $view_rebuild = view_model('stg_orders',
	'select order_id, customer_id, amount from dbt_src.orders', 1);

# --- without the settings: the breaking rebuild is stopped under enforce
($rc, $out, $err) = run_model(undef, $table_rebuild);
isnt($rc, 0, 'without the settings, the breaking table rebuild fails');
like($err, qr/EG104: replaces dbt_marts\.customer_revenue with a relation that drops column orders/,
	'stopped at the rename in (EG104)');
is(columns('dbt_marts.customer_revenue'), 'customer_id,revenue,orders', 'the model is unchanged');
($rc, $out, $err) = run_model(undef, $view_rebuild);
isnt($rc, 0, 'without the settings, the breaking view rebuild fails');
like($err, qr/EG104/, 'stopped too (EG104)');
is($node->safe_psql('warehouse', q{SELECT count(*) FROM elt.migrations}), '0', 'no migration window');

# --- with them: each model in its own session joins one approved window
my $opts = '-c elt.migration=dbt-release-42 -c elt.approved_by=alice';
($rc, $out, $err) = run_model($opts, $table_rebuild);
is($rc, 0, 'with the settings, the breaking table rebuild passes') or diag($err);
# approved, the swap is recorded as its rename out (EG105), approved
like($err, qr/NOTICE:  EG105 approved by migration \d+/, 'approved by the migration');
($rc, $out, $err) = run_model($opts, $view_rebuild);
is($rc, 0, 'the breaking view rebuild, in another session, passes') or diag($err);
is(columns('dbt_marts.customer_revenue'), 'customer_id,revenue', 'the table model was rebuilt');
is(columns('dbt_marts.stg_orders'), 'order_id,customer_id,amount', 'the view model was rebuilt');
is($node->safe_psql('warehouse', q{SELECT to_regclass('dbt_marts.customer_revenue__dbt_backup') IS NULL
	AND to_regclass('dbt_marts.stg_orders__dbt_backup') IS NULL}), 't', 'both backups are dropped');
is($node->safe_psql('warehouse',
		q{SELECT string_agg(name || ' ' || coalesce(approved_by, '-') || ' ' || opened_via || ' ' || status
		  || ' ' || role, ';') FROM elt.migrations}),
	'dbt-release-42 alice settings open dbt', 'elt.migrations shows one window, approved by alice');
is($node->safe_psql('warehouse',
		q{SELECT count(DISTINCT c.xid) || ' ' || string_agg(DISTINCT c.decision, ',')
		  FROM elt.schema_changes c JOIN elt.migration_windows m USING (migration_id)
		  WHERE m.name = 'dbt-release-42' AND c.class NOT IN ('safe', 'advice')}),
	'2 approved', 'the findings of both sessions carry the window, approved');
is($node->safe_psql('warehouse',
		q{SELECT count(*) FROM elt.schema_changes WHERE role = 'dbt' AND class <> 'safe' AND migration_id IS NULL}),
	'0', 'nothing of the run went unapproved');

# the findings are dbt's to find in elt.my_findings; a role that owns
# nothing sees none there
my $seen = $node->safe_psql('warehouse',
	q{SELECT string_agg(DISTINCT rule || ' ' || decision || ' ' || migration, ',') FROM elt.my_findings},
	connstr => $node->connstr('warehouse') . ' user=dbt');
is($seen, 'EG105 approved dbt-release-42,EG208 allowed dbt-release-42',
	'dbt sees its approved findings (and its advice), with the window');
is($node->safe_psql('warehouse', q{SELECT count(*) FROM elt.my_findings},
		connstr => $node->connstr('warehouse') . ' user=nobody'),
	'0', 'another role sees none of them');

# ending the window: the next run without a new window is judged again
{
	local $ENV{PGOPTIONS} = $opts;
	$node->safe_psql('warehouse', q{SELECT elt.migration_end()},
		connstr => $node->connstr('warehouse') . ' user=dbt');
}
is($node->safe_psql('warehouse', q{SELECT status FROM elt.migrations}), 'closed', 'the window is closed');
($rc, $out, $err) = run_model(undef, table_model('customer_revenue',
	'select customer_id from dbt_src.orders group by customer_id', 1));
isnt($rc, 0, 'after the window, a breaking rebuild is stopped again');
is($node->safe_psql('warehouse', q{SELECT valid FROM elt.audit_verify()}), 't', 'the audit chain verifies');

done_testing();
