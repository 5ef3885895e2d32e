# Alembic, the real one (python3 -m alembic, psycopg2), with alembic.ini and
# env.py exactly as `alembic init` writes them (only sqlalchemy.url set):
# a run becomes one migration through PGOPTIONS (elt.migration, and
# elt.approved_by to approve); a breaking change without approval fails with
# SQLSTATE 42ZEG, which psycopg2 raises as ProgrammingError.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Compare;

my $python = '/usr/bin/python3';
plan skip_all => 'Alembic with psycopg2 is not installed (scripts/setup.sh installs it)'
  unless system($python, '-c', 'import alembic, psycopg2') == 0;

my $node = PostgreSQL::Test::Cluster->new('alembic');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->start;

my $proj = PostgreSQL::Test::Utils::tempdir;

# Run python3 in the project with PGOPTIONS (undef: none) against database $db.
sub py
{
	my ($db, $pgoptions, @args) = @_;
	local %ENV = (%ENV, PGHOST => $node->host, PGPORT => $node->port,
		PGUSER => 'postgres', PGDATABASE => $db);
	delete $ENV{PGOPTIONS};
	$ENV{PGOPTIONS} = $pgoptions if defined $pgoptions;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $python, @args ], '<', \undef, '>', \$out, '2>', \$err,
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

my ($rc, $out, $err) = py('postgres', undef, '-m', 'alembic', 'init', 'migrations');
is($rc, 0, 'alembic init') or diag($err);
# the one setting every project makes: where the database is (libpq's
# environment gives host, port, user and database)
{
	open my $fh, '<', "$proj/alembic.ini" or die;
	local $/;
	my $ini = <$fh>;
	close $fh;
	$ini =~ s/^sqlalchemy\.url = .*$/sqlalchemy.url = postgresql+psycopg2:\/\//m or die 'no sqlalchemy.url';
	write_file('alembic.ini', $ini);
}
my ($template) = glob('/usr/lib/python3/dist-packages/alembic/templates/generic/env.py');
SKIP:
{
	skip 'alembic template not found', 1 unless defined $template;
	is(compare("$proj/migrations/env.py", $template), 0, 'env.py is the one alembic init wrote, unchanged');
}

my $head = q{import sqlalchemy as sa
from alembic import op

};
write_file('migrations/versions/0001_orders.py', $head . q{revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('orders',
                    sa.Column('id', sa.Integer, primary_key=True),
                    sa.Column('amt', sa.Numeric),
                    schema='app')


def downgrade():
    op.drop_table('orders', schema='app')
});
write_file('migrations/versions/0002_total.py', $head . q{revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column('orders', 'amt', new_column_name='total', schema='app')
    op.add_column('orders', sa.Column('note', sa.Text), schema='app')
    op.add_column('orders', sa.Column('tmp', sa.Text), schema='app')
    op.drop_column('orders', 'tmp', schema='app')


def downgrade():
    op.drop_column('orders', 'note', schema='app')
    op.alter_column('orders', 'total', new_column_name='amt', schema='app')
});
write_file('migrations/versions/0003_remark.py', $head . q{revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column('orders', 'note', new_column_name='remark', schema='app')


def downgrade():
    op.alter_column('orders', 'remark', new_column_name='note', schema='app')
});

# the tiny client check: a blocked change is a ProgrammingError with its SQLSTATE
write_file('check_error.py', q{import psycopg2
conn = psycopg2.connect('')
try:
    with conn.cursor() as cur:
        cur.execute('ALTER TABLE app.orders RENAME COLUMN note TO remark')
    print('not blocked')
except psycopg2.ProgrammingError as e:
    print(type(e).__module__ + '.' + type(e).__name__, e.pgcode, e.pgerror.split(':')[1].strip())
except psycopg2.DatabaseError as e:
    print('other', type(e).__name__, e.pgcode)
});

# A database with the extension and the governed, empty schema app (enforce).
sub governed_db
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA app;
SELECT elt.govern('app', 'enforce');
SELECT elt.approver_add('lead');
});
}

# --- a fresh upgrade and a full downgrade, as one named migration
governed_db('alem1');
my $named = '-c elt.migration=rel-1';
($rc, $out, $err) = py('alem1', $named, '-m', 'alembic', 'upgrade', 'head');
is($rc, 0, 'alembic upgrade head completes under enforce') or diag($err);
is($node->safe_psql('alem1',
		q{SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
		  WHERE attrelid = 'app.orders'::regclass AND attnum > 0 AND NOT attisdropped}),
	'id,total,remark', 'every revision ran');
($rc, $out, $err) = py('alem1', undef, '-m', 'alembic', 'downgrade', 'base');
isnt($rc, 0, 'without the migration, downgrade base is blocked: the table was committed');
like($err, qr/sqlalchemy\.exc\.ProgrammingError: \(psycopg2\.ProgrammingError\) EG106/,
	'as a ProgrammingError (SQLSTATE class 42)');
($rc, $out, $err) = py('alem1', $named, '-m', 'alembic', 'downgrade', 'base');
is($rc, 0, 'with it, alembic downgrade base completes: the migration created the table') or diag($err);
is($node->safe_psql('alem1', q{SELECT to_regclass('app.orders') IS NULL}), 't', 'the table is gone');
is($node->safe_psql('alem1',
		q{SELECT count(*) || ' ' || min(name) || ' ' || min(status) FROM elt.migrations}),
	'1 rel-1 open', 'elt.migrations shows one migration');
is($node->safe_psql('alem1',
		q{SELECT count(*) FILTER (WHERE migration_id IS NULL) FROM elt.schema_versions}),
	'0', 'every version carries it');

# --- a reader's view: the breaking change needs approval
governed_db('alem2');
($rc, $out, $err) = py('alem2', '-c elt.migration=rel-2', '-m', 'alembic', 'upgrade', '0002');
is($rc, 0, 'upgrade to 0002') or diag($err);
$node->safe_psql('alem2', q{
CREATE SCHEMA rep;
CREATE VIEW rep.notes AS SELECT id, note FROM app.orders;
});
($rc, $out, $err) = py('alem2', '-c elt.migration=rel-2', '-m', 'alembic', 'upgrade', 'head');
isnt($rc, 0, 'a view reads the column: the rename is stopped without approval');
like($err, qr/sqlalchemy\.exc\.ProgrammingError: \(psycopg2\.ProgrammingError\) EG106.*\nDETAIL:  Breaks: view rep\.notes/,
	'a ProgrammingError naming the view');
($rc, $out, $err) = py('alem2', undef, 'check_error.py');
is($rc, 0, 'the client check runs') or diag($err);
is($out, "psycopg2.ProgrammingError 42ZEG EG106\n", 'psycopg2 raises ProgrammingError, pgcode 42ZEG');
($rc, $out, $err) = py('alem2', '-c elt.migration=rel-3 -c elt.approved_by=nobody', '-m', 'alembic',
	'upgrade', 'head');
isnt($rc, 0, 'an approver not in elt.approvers is refused');
like($err, qr/"nobody" is not an approver/, 'saying so');
($rc, $out, $err) = py('alem2', '-c elt.migration=rel-3 -c elt.approved_by=lead', '-m', 'alembic',
	'upgrade', 'head');
is($rc, 0, 'approved through PGOPTIONS, alembic upgrade head completes') or diag($err);
is($node->safe_psql('alem2', q{SELECT count(*) FROM rep.notes}), '0', 'the view follows the rename');
is($node->safe_psql('alem2',
		q{SELECT c.decision || ' ' || m.name || ' ' || m.approved_by FROM elt.schema_changes c
		  JOIN elt.migrations m USING (migration_id) WHERE c.rule = 'EG106' AND m.name = 'rel-3'}),
	'approved rel-3 lead', 'approved by the migration, with its approver');
($rc, $out, $err) = py('alem2', '-c elt.migration=rel-3 -c elt.approved_by=lead', '-m', 'alembic',
	'downgrade', '-1');
is($rc, 0, 'the downgrade joins the approved migration') or diag($err);
is($node->safe_psql('alem2', q{SELECT count(*) FROM elt.migrations WHERE name = 'rel-3'}), '1',
	'one migration rel-3');
is($node->safe_psql('alem2', q{SELECT valid FROM elt.audit_verify()}), 't', 'the audit chain verifies');

$node->stop;
done_testing();
