# The launcher drops expired sandboxes by itself, in every database, and
# goes on doing it after the server was killed and restarted; sandboxes
# that have not expired stay.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sandbox_expiry');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'elt_governance'
elt.launcher_naptime = 1
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA src;
CREATE TABLE src.people (id int PRIMARY KEY, email text NOT NULL);
INSERT INTO src.people SELECT g, 'user' || g || '@mail.test' FROM generate_series(1, 20) g;
SELECT elt.mask_set('src.people', 'email', 'pseudonym', '{"kind": "email"}');
});
$node->safe_psql('postgres', q{CREATE DATABASE other});
$node->safe_psql('other', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA src;
CREATE TABLE src.t (id int PRIMARY KEY);
INSERT INTO src.t SELECT generate_series(1, 5);
});

$node->safe_psql('postgres', q{SELECT count(*) FROM elt.sandbox_create('brief', ARRAY['src'], NULL, true, '2 seconds')});
$node->safe_psql('postgres', q{SELECT count(*) FROM elt.sandbox_create('kept', ARRAY['src'], NULL, true, '1 day')});
$node->safe_psql('other', q{SELECT count(*) FROM elt.sandbox_create('brief_other', ARRAY['src'], NULL, true, '2 seconds')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM brief.people WHERE email LIKE '%@example.%'}), '20',
	'the sandbox holds masked copies');

ok($node->poll_query_until('postgres', q{SELECT NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'brief')}),
	'the launcher drops an expired sandbox');
ok($node->poll_query_until('other', q{SELECT NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'brief_other')}),
	'in every database');
is($node->safe_psql('postgres', q{SELECT string_agg(name, ',') FROM elt.sandbox_defs}), 'kept',
	'its catalog row goes with it; the sandbox that has not expired stays');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kept.people}), '20', 'with its rows');
is($node->safe_psql('postgres',
		q{SELECT action || ':' || object FROM elt.audit_log WHERE action = 'sandbox_expire'}),
	'sandbox_expire:brief', 'the drop is audited');
ok($node->log_contains('dropped 1 expired sandbox'), 'and logged');

# killed and restarted: the launcher comes back and goes on
$node->safe_psql('postgres', q{SELECT count(*) FROM elt.sandbox_create('brief2', ARRAY['src'], NULL, true, '3 seconds')});
$node->stop('immediate');
$node->start;
ok($node->poll_query_until('postgres', q{SELECT NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'brief2')}),
	'after a crash restart the launcher drops expired sandboxes');
is($node->safe_psql('postgres', q{SELECT string_agg(name, ',') FROM elt.sandbox_defs}), 'kept', 'only the live one is left');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the audit chain verifies');

$node->stop;
done_testing();
