# DDL that only PostgreSQL 18 has, as the contracts and the version recorder
# see it: a VIRTUAL generated column is computed when read, so adding one
# rewrites nothing (no EG202, unlike a STORED one) and is allowed under
# enforce; the recorded shape says the column is virtual ("virtual": true,
# absent for a stored one, so that shapes recorded before keep their text).
# SET EXPRESSION of a virtual column is EG123 without a rewrite.  NOT NULL
# constraints: ADD CONSTRAINT nn NOT NULL col is EG109 + EG203, NOT VALID
# EG109 only, VALIDATE CONSTRAINT safe, DROP CONSTRAINT of one EG108; the shape says "not_null" only when
# validated ("not_null_not_valid": true otherwise).  NOT ENFORCED
# constraints are safe to add; ALTER CONSTRAINT ... ENFORCED is EG114 +
# EG204.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pg18_ddl');
plan skip_all => 'virtual generated columns are PostgreSQL 18 DDL (make test PG_MAJOR=18)'
  if $node->pg_version < 18;
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'\nlc_messages = 'C'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance;
CREATE SCHEMA g;
CREATE TABLE g.t (id int PRIMARY KEY, a int);
INSERT INTO g.t SELECT x, x FROM generate_series(1, 100) x;
ANALYZE g.t;
SELECT elt.govern('g', 'enforce', 'generated columns');
});

# check_ddl: the rules each statement meets (advice left out), on a table
# that counts as large (the rewrite of a stored column is size-aware)
sub rules
{
	my ($sql) = @_;
	return $node->safe_psql('postgres',
		qq{SET elt.large_table_rows = 10;
SELECT coalesce(string_agg(rule, ',' ORDER BY rule), '') FROM elt.check_ddl(\$x\$$sql\$x\$) WHERE rule <> 'EG208'});
}
is(rules('ALTER TABLE g.t ADD COLUMN v int GENERATED ALWAYS AS (a * 2) VIRTUAL'), '',
	'a virtual generated column rewrites nothing: no finding');
like(rules('ALTER TABLE g.t ADD COLUMN s int GENERATED ALWAYS AS (a * 2) STORED'), qr/EG202/,
	'a stored one rewrites the table: EG202');

# under enforce: the virtual column is added and recorded as virtual
$node->safe_psql('postgres', q{ALTER TABLE g.t ADD COLUMN v int GENERATED ALWAYS AS (a * 2) VIRTUAL});
is($node->safe_psql('postgres', q{SELECT sum(v) FROM g.t}), '10100', 'the virtual column reads');
is($node->safe_psql('postgres', q{
SELECT c->>'generated' || '|' || coalesce(c->>'virtual', 'absent')
FROM elt.schema_versions v, jsonb_array_elements(v.shape->'columns') c
WHERE v.table_name = 't' AND c->>'name' = 'v' ORDER BY v.version DESC LIMIT 1}),
	'(a * 2)|true', 'the shape records the column as virtual');

my ($rc, $out, $err);
($rc, $out, $err) = $node->psql('postgres',
	q{SET elt.large_table_rows = 10; ALTER TABLE g.t ADD COLUMN s int GENERATED ALWAYS AS (a * 2) STORED});
isnt($rc, 0, 'a stored generated column is still refused under enforce');
like($err, qr/EG202/, 'as EG202');
$node->safe_psql('postgres', q{SET elt.enabled = off; ALTER TABLE g.t ADD COLUMN s int GENERATED ALWAYS AS (a * 2) STORED});
$node->safe_psql('postgres', q{ALTER TABLE g.t ADD COLUMN w int});
is($node->safe_psql('postgres', q{
SELECT coalesce(c->>'virtual', 'absent')
FROM elt.schema_versions v, jsonb_array_elements(v.shape->'columns') c
WHERE v.table_name = 't' AND c->>'name' = 's' ORDER BY v.version DESC LIMIT 1}),
	'absent', 'a stored one has no "virtual" key');

# ---------------------------------------------------------------------------
# check_ddl findings, advice (EG208) left out: statement_no|rule|class|object
sub findings
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', qq{
SET elt.large_table_rows = 10;
SELECT coalesce(string_agg(statement_no || '|' || rule || '|' || class || '|' || object, E'\\n'
                           ORDER BY statement_no, rule), '')
FROM elt.check_ddl(\$x\$$sql\$x\$) WHERE rule <> 'EG208'});
}
$node->safe_psql('postgres', q{
CREATE TABLE g.n (id int PRIMARY KEY, a int, b int, c int, CONSTRAINT b_chk CHECK (b IS NOT NULL));
INSERT INTO g.n SELECT x, x, x, x FROM generate_series(1, 100) x;
CREATE TABLE g.p (id int PRIMARY KEY);
CREATE TABLE g.ch (id int PRIMARY KEY, p_id int);
INSERT INTO g.p SELECT generate_series(1, 100);
INSERT INTO g.ch SELECT x, x FROM generate_series(1, 100) x;
ANALYZE g.t; ANALYZE g.n; ANALYZE g.p; ANALYZE g.ch;
});

# SET EXPRESSION (17) of a virtual column: new values, no rewrite
is(findings('ALTER TABLE g.t ALTER COLUMN v SET EXPRESSION AS (a * 3)'), '1|EG123|breaking|g.t.v',
	'SET EXPRESSION of a virtual column: EG123 only, even on a large table');
is(findings('ALTER TABLE g.t ALTER COLUMN s SET EXPRESSION AS (a * 3)'),
	"1|EG123|breaking|g.t.s\n1|EG209|lock_hazard|g.t.s", 'of a stored one: EG123 and EG209');

# NOT NULL constraints (18): valid, NOT VALID, validated later, proven
is(findings('ALTER TABLE g.n ADD CONSTRAINT a_nn NOT NULL a'),
	"1|EG109|breaking|g.n.a\n1|EG203|lock_hazard|g.n.a", 'ADD CONSTRAINT NOT NULL: EG109 and EG203');
is(findings('ALTER TABLE g.n ADD CONSTRAINT a_nn NOT NULL a NOT VALID; ALTER TABLE g.n VALIDATE CONSTRAINT a_nn'),
	'1|EG109|breaking|g.n.a', 'NOT VALID: EG109 only; VALIDATE CONSTRAINT later is safe');
is(findings('ALTER TABLE g.n ADD CONSTRAINT a_nn NOT NULL a NOT VALID; ALTER TABLE g.n VALIDATE CONSTRAINT a_nn; ALTER TABLE g.n ALTER COLUMN a SET NOT NULL'),
	'1|EG109|breaking|g.n.a', 'the script remembers the validated NOT NULL: SET NOT NULL after it is safe');
is(findings('ALTER TABLE g.n ADD CONSTRAINT b_nn NOT NULL b'), '',
	'a validated CHECK (b IS NOT NULL) proves it: no finding');
is(findings('ALTER TABLE g.n ADD CONSTRAINT x_nn NOT NULL nope'), '1|EG001|error|g.n.nope',
	'a missing column: EG001');

# live under enforce
($rc, $out, $err) = $node->psql('postgres', 'ALTER TABLE g.n ADD CONSTRAINT c_nn NOT NULL c NOT VALID');
isnt($rc, 0, 'ADD CONSTRAINT NOT NULL NOT VALID is refused under enforce');
like($err, qr/ERROR:  EG109: adds NOT NULL constraint c_nn NOT VALID/, 'as EG109');
$node->safe_psql('postgres', q{SET elt.enabled = off; ALTER TABLE g.n ADD CONSTRAINT c_nn NOT NULL c NOT VALID});
$node->safe_psql('postgres', q{ALTER TABLE g.n ADD COLUMN w int});
sub col_shape
{
	my ($col) = @_;
	return $node->safe_psql('postgres', qq{
SELECT (c->>'not_null') || '|' || coalesce(c->>'not_null_not_valid', 'absent')
FROM elt.schema_versions v, jsonb_array_elements(v.shape->'columns') c
WHERE v.table_name = 'n' AND c->>'name' = '$col' ORDER BY v.version DESC LIMIT 1});
}
is(col_shape('c'), 'false|true', 'the shape: a NOT VALID NOT NULL is not "not_null", it is "not_null_not_valid"');
is(col_shape('id'), 'true|absent', 'a validated one is "not_null", with no other key');
is(findings('ALTER TABLE g.n ALTER COLUMN c SET NOT NULL'), '1|EG203|lock_hazard|g.n.c',
	'SET NOT NULL over a NOT VALID NOT NULL: the scan only (writers are checked already)');
$node->safe_psql('postgres', q{ALTER TABLE g.n VALIDATE CONSTRAINT c_nn});
is(col_shape('c'), 'true|absent', 'VALIDATE CONSTRAINT is allowed under enforce, and the shape says it holds');
is(findings('ALTER TABLE g.n DROP CONSTRAINT c_nn'), '1|EG108|breaking|g.n.c',
	'DROP CONSTRAINT of a NOT NULL constraint is DROP NOT NULL: EG108');
($rc, $out, $err) = $node->psql('postgres', 'ALTER TABLE g.n DROP CONSTRAINT c_nn');
like($err, qr/ERROR:  EG108: drops NOT NULL constraint c_nn of column g\.n\.c/, 'refused under enforce as EG108');

# NOT ENFORCED (18): adding one is safe; ENFORCED is adding the foreign key
is(findings('ALTER TABLE g.ch ADD CONSTRAINT ch_p FOREIGN KEY (p_id) REFERENCES g.p NOT ENFORCED; ALTER TABLE g.ch ADD CONSTRAINT ch_chk CHECK (p_id > 0) NOT ENFORCED'),
	'', 'NOT ENFORCED constraints check nothing: no finding');
$node->safe_psql('postgres', q{
ALTER TABLE g.ch ADD CONSTRAINT ch_p FOREIGN KEY (p_id) REFERENCES g.p NOT ENFORCED;
ALTER TABLE g.ch ADD CONSTRAINT ch_chk CHECK (p_id > 0) NOT ENFORCED;
});
is(findings('ALTER TABLE g.ch ALTER CONSTRAINT ch_p ENFORCED'),
	"1|EG114|breaking|g.ch\n1|EG204|lock_hazard|g.ch", 'ALTER CONSTRAINT ENFORCED: EG114 and EG204');
is(findings('ALTER TABLE g.ch ALTER CONSTRAINT nope ENFORCED'), '1|EG001|error|nope on g.ch',
	'a missing constraint: EG001');
($rc, $out, $err) = $node->psql('postgres', 'ALTER TABLE g.ch ALTER CONSTRAINT ch_p ENFORCED');
isnt($rc, 0, 'ENFORCED is refused under enforce');
like($err, qr/ERROR:  EG114: makes FOREIGN KEY ch_p on g.ch ENFORCED/, 'as EG114');
$node->safe_psql('postgres', q{SET elt.enabled = off; ALTER TABLE g.ch ALTER CONSTRAINT ch_p ENFORCED});
is(findings('ALTER TABLE g.ch ALTER CONSTRAINT ch_p NOT ENFORCED'), '', 'NOT ENFORCED on an enforced one: no finding');
$node->safe_psql('postgres', q{ALTER TABLE g.ch ALTER CONSTRAINT ch_p NOT ENFORCED});
is($node->safe_psql('postgres', q{SELECT conenforced FROM pg_constraint WHERE conname = 'ch_p'}), 'f',
	'and it is allowed under enforce');

is($node->safe_psql('postgres', 'SELECT valid FROM elt.audit_verify()'), 't', 'the chain verifies');

$node->stop;
done_testing();
