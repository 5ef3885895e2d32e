# The demo of `make demo` (scripts/demo.sql) runs to its end on a fresh
# cluster with the library preloaded, as `make demo` runs it (psql with
# ON_ERROR_STOP), and shows what it says it shows: the errors it expects
# and no other.  Without this, a demo broken by a change of behaviour (an
# ALTER that starts to be blocked) would go unnoticed until someone ran it.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $demo = dirname(__FILE__) . '/../../scripts/demo.sql';

my $node = PostgreSQL::Test::Cluster->new('demo');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE demo');

my ($stdout, $stderr);
my $rc = IPC::Run::run(
	[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-P', 'pager=off', '-e',
	  '-d', $node->connstr('demo'), '-f', $demo ],
	'>', \$stdout, '2>', \$stderr);
ok($rc, 'scripts/demo.sql runs to its end') or diag($stderr);
like($stdout, qr/== 1\. A small warehouse/, 'it starts with the warehouse');

# the errors it shows on purpose, each once, and nothing else
my @errors = ($stderr =~ /ERROR:\s+(.*)/g);
my @expected = (
	qr/^EG106: renames column analytics\.customers\.lifetime_value/,
	qr/^EG107, EG109: this statement has 2 findings/,
	qr/^EG104: drops column raw\.orders\.amount/,
	qr/^the candidate dash__green fails checks of severity error/,
	qr/^permission denied for table transform_runs/,
	qr/^table "elt\.schema_versions" is append-only/,
	qr/^table "elt\.audit_log" is append-only/,
);
is(scalar(@errors), scalar(@expected), 'the demo shows exactly its expected errors')
  or diag(join("\n", @errors));
for my $i (0 .. $#expected)
{
	like($errors[$i] // '', $expected[$i], "expected error " . ($i + 1));
}
like($stderr, qr/Breaks: transform customer_days \(owner \w+\)/,
	'the blocked DROP COLUMN names the transform it would break');

$node->stop;
done_testing();
