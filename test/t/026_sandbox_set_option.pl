# A run in a sandbox acts as the sandbox's owner, so it needs the right to
# become that role.  PostgreSQL 16 and later let a membership grant a
# role's privileges without it (GRANT ... WITH INHERIT TRUE, SET FALSE):
# such a member may not run in the owner's sandbox, make or refresh a
# sandbox for it — a superuser owner least of all — while a member that
# may SET ROLE may.  So does any code run as a role on a caller's behalf:
# a transform's runs and versions, a backfill, a check, a revert.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sandbox_set_option');
plan skip_all => 'GRANT ... WITH SET FALSE is PostgreSQL 16 and later (make test PG_MAJOR=16)'
  if $node->pg_version < 16;
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'\nlc_messages = 'C'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE ROLE dba SUPERUSER NOLOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN;
GRANT dba TO bob WITH INHERIT TRUE, SET FALSE;
GRANT dba TO carol WITH INHERIT TRUE, SET TRUE;
CREATE SCHEMA shop;
CREATE TABLE shop.src (id int PRIMARY KEY, v text);
INSERT INTO shop.src SELECT g, 'v' || g FROM generate_series(1, 20) g;
CREATE TABLE shop.dst (id int PRIMARY KEY, v text);
SELECT elt.transform_create('t', 'shop.dst', 'SELECT s.id, s.v FROM shop.src s', 'replace');
SELECT count(*) FROM elt.sandbox_create('sb_dba', ARRAY['shop'], NULL, false, '1 day', 'dba');
});

# bob has dba's privileges but may not become dba: refused everywhere, nothing written
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT elt.transform_run('t', sandbox => 'sb_dba', sql => $q$SELECT 1 AS id, pg_read_file('PG_VERSION') AS v$q$)},
	extra_params => [ '-U', 'bob' ]);
isnt($rc, 0, 'a member without SET may not run in the sandbox of a superuser role');
like($err, qr/there is no sandbox "sb_dba" you may run in/, '... and is told no such sandbox');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sb_dba.dst'), '0', '... nothing was written');

($rc, $out, $err) = $node->psql('postgres',
	q{SELECT count(*) FROM elt.sandbox_create('sb_bob', ARRAY['shop'], NULL, false, '1 day', 'dba')},
	extra_params => [ '-U', 'bob' ]);
isnt($rc, 0, 'a member without SET may not make a sandbox for the role');
like($err, qr/permission denied to make a sandbox for role dba/, '... with the reason');

($rc, $out, $err) = $node->psql('postgres', q{SELECT count(*) FROM elt.sandbox_refresh('sb_dba')},
	extra_params => [ '-U', 'bob' ]);
isnt($rc, 0, 'nor refresh one of it');

# carol may SET ROLE dba: her own SQL runs in dba's sandbox, as dba
is( $node->safe_psql('postgres',
		q{SELECT elt.transform_run('t', sandbox => 'sb_dba', sql => 'SELECT s.id, current_user::text AS v FROM shop.src s') > 0},
		extra_params => [ '-U', 'carol' ]),
	't',
	'a member that may SET ROLE runs in the sandbox');
is($node->safe_psql('postgres', 'SELECT DISTINCT v FROM sb_dba.dst'), 'dba', '... as its owner');

# The same wherever code runs as a role on a caller's behalf: bob may not
# run or change dba's transform, control dba's backfill (its chunks run as
# dba), run dba's check or revert dba's run; carol may.
$node->safe_psql('postgres', q{
SET ROLE dba;
CREATE TABLE shop.tgt (id int PRIMARY KEY, v text);
SELECT elt.transform_create('t_dba', 'shop.tgt', 'SELECT s.id, s.v FROM shop.src s WHERE s.id <= 10', 'append');
SELECT elt.backfill_create('b_dba', 'shop.src',
  'UPDATE shop.src SET v = v || ''!'' WHERE id >= $1 AND id < $2', chunk_rows => 5);
SELECT elt.check_create('shop.src', 'not_null', '{"column": "v"}', 'error', 'c_dba');
SELECT elt.transform_run('t_dba');
RESET ROLE;
GRANT USAGE ON SCHEMA shop TO bob, carol;
GRANT SELECT ON shop.src TO bob, carol;
});
my $run = $node->safe_psql('postgres', q{SELECT max(run_id) FROM elt.transform_runs});
my %refused = (
	'run the transform' => [ q{SELECT elt.transform_run('t_dba')}, qr/permission denied for transform "t_dba"/ ],
	'change the transform' => [ q{SELECT elt.transform_update('t_dba', 'SELECT s.id, current_user::text AS v FROM shop.src s')},
		qr/permission denied for transform "t_dba"/ ],
	'run the backfill' => [ q{CALL elt.backfill_run('b_dba')}, qr/permission denied for backfill "b_dba"/ ],
	'start the backfill' => [ q{SELECT elt.backfill_start('b_dba')}, qr/permission denied for backfill "b_dba"/ ],
	'revert the run' => [ "SELECT count(*) FROM elt.run_revert($run, 'x')", qr/permission denied to revert run $run/ ]);
for my $what (sort keys %refused)
{
	my ($sql, $re) = @{ $refused{$what} };
	($rc, $out, $err) = $node->psql('postgres', $sql, extra_params => [ '-U', 'bob' ]);
	isnt($rc, 0, "a member without SET may not $what of a superuser role");
	like($err, $re, '... with the reason');
}
like($node->safe_psql('postgres', q{SELECT status || ': ' || message FROM elt.check_run('shop.src') WHERE check_name = 'c_dba'},
		extra_params => [ '-U', 'bob' ]),
	qr/^error: check "c_dba" belongs to role dba/, 'nor run its check');
is($node->safe_psql('postgres', q{SELECT count(*) FROM shop.tgt}), '10', 'nothing was run, changed or reverted');
is($node->safe_psql('postgres', q{SELECT count(*) FROM shop.src WHERE v LIKE '%!'}), '0', '... nor backfilled');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.transform_versions WHERE transform = 't_dba'}), '1', '... no new version');

is($node->safe_psql('postgres', q{SELECT status FROM elt.check_run('shop.src') WHERE check_name = 'c_dba'},
		extra_params => [ '-U', 'carol' ]),
	'pass', 'a member that may SET ROLE runs the check');
is($node->safe_psql('postgres', "SELECT sum(rows_removed) FROM elt.run_revert($run, 'carol undoes it')",
		extra_params => [ '-U', 'carol' ]),
	'10', '... reverts the run');
is($node->safe_psql('postgres', q{SELECT elt.transform_run('t_dba') > 0}, extra_params => [ '-U', 'carol' ]),
	't', '... runs the transform');
$node->safe_psql('postgres', q{CALL elt.backfill_run('b_dba')}, extra_params => [ '-U', 'carol' ]);
is($node->safe_psql('postgres', q{SELECT count(*) FROM shop.src WHERE v LIKE '%!'}), '20', '... and the backfill');

$node->stop;
done_testing();
