# ALTER EXTENSION elt_governance UPDATE from 0.1.0, step by step to the
# default version, keeps the history and the audit chain; the contracts
# start to apply at 0.2.0, backfills at 0.3.0, transforms at 0.4.0 and
# checksums at 0.5.0; the 0.2.0 library also runs a 0.1.0 catalog (capture
# only) until the update.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION elt_governance VERSION '0.1.0';
CREATE SCHEMA s;
CREATE TABLE s.t (id int PRIMARY KEY, a int, b int);
SELECT elt.govern('s');
ALTER TABLE s.t ADD COLUMN c int;
});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.1.0', 'installed at 0.1.0');

# with the 0.1.0 catalog, the library records versions and judges nothing
$node->safe_psql('postgres', 'ALTER TABLE s.t DROP COLUMN b');
is($node->safe_psql('postgres', q{SELECT string_agg(version::text, ',' ORDER BY version) FROM elt.schema_versions}),
	'1,2,3', 'versions recorded before the update');

$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.2.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.2.0', 'updated to 0.2.0');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't',
	'the audit chain verifies after the update');

my ($ret, $out, $err) = $node->psql('postgres', 'ALTER TABLE s.t DROP COLUMN a');
isnt($ret, 0, 'a breaking change is blocked after the update');
like($err, qr/EG104/, 'with its rule code');

$node->safe_psql('postgres', q{
SELECT elt.approver_add('cto');
SELECT elt.migration_begin('drop a', 'unused', 'cto');
ALTER TABLE s.t DROP COLUMN a;
SELECT elt.migration_end();
});
is($node->safe_psql('postgres',
		q{SELECT string_agg(version || ':' || coalesce(migration_id::text, '-'), ',' ORDER BY version) FROM elt.schema_versions}),
	'1:-,2:-,3:-,4:1', 'history continues, the new version in its migration');
is($node->safe_psql('postgres', q{SELECT rule || ':' || decision FROM elt.schema_changes}),
	'EG104:approved', 'the approved change is recorded');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain still verifies');

# 0.2.0 -> 0.3.0: backfills
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.3.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.3.0', 'updated to 0.3.0');
$node->safe_psql('postgres', q{
SELECT elt.backfill_create('fill_c', 's.t', 'UPDATE s.t SET c = id WHERE id >= $1 AND id < $2');
INSERT INTO s.t (id) SELECT generate_series(1, 100);
});
$node->safe_psql('postgres', q{CALL elt.backfill_run('fill_c')});
is($node->safe_psql('postgres', q{SELECT state || ':' || rows_done FROM elt.backfill_status}),
	'finished:100', 'a backfill runs after the update');
is($node->safe_psql('postgres', q{SELECT count(*) FROM s.t WHERE c = id}), '100', 'and did its work');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain verifies at 0.3.0');

# 0.3.0 -> 0.4.0: transforms and row lineage
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.4.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.4.0', 'updated to 0.4.0');
$node->safe_psql('postgres', q{
CREATE TABLE s.c_totals (c int PRIMARY KEY, n bigint);
SELECT elt.transform_create('c_totals', 's.c_totals', 'SELECT c, count(*) AS n FROM s.t GROUP BY c');
SELECT elt.transform_run('c_totals');
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.trace('s.c_totals', '7')}), '1',
	'a transform runs and is traced after the update');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.backfill_status WHERE state = 'finished'}), '1',
	'the backfill is still there');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain verifies at 0.4.0');

# 0.4.0 -> 0.5.0: environment fingerprint and table checksums
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.5.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.5.0', 'updated to 0.5.0');
like($node->safe_psql('postgres', q{SELECT elt.table_checksum('s.c_totals')}), qr/^v1:\d+:[0-9a-f]{32}$/,
	'a table checksum after the update');
# 0.5.0 to 0.8.0 read pg_database.daticulocale, which PostgreSQL 17 renamed
# datlocale: their fingerprint works on 15 and 16 only (0.9.0 reads either)
is($node->safe_psql('postgres', q{SELECT elt.env_fingerprint() ? 'id'}), 't', 'a fingerprint after the update')
  if $node->pg_version < 17;
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.trace('s.c_totals', '7')}), '1',
	'lineage is still traced');

# 0.5.0 -> 0.6.0: blue-green deployments and quality checks
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.6.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.6.0', 'updated to 0.6.0');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.deployments}), '0', 'deployments after the update');
is($node->safe_psql('postgres', q{SELECT count(*) FROM elt.check_run('s')}), '0', 'checks after the update');
# the snapshot schema as 0.6.0 made it: usable only by the roles it granted
$node->safe_psql('postgres', q{CREATE SCHEMA elt_snapshots; REVOKE ALL ON SCHEMA elt_snapshots FROM PUBLIC});

# 0.6.0 -> 0.7.0: the role model and least privilege
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.7.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.7.0', 'updated to 0.7.0');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain verifies at 0.7.0');
is($node->safe_psql('postgres', q{SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'elt\_%'}),
	'elt_admin,elt_operator,elt_reader', 'the group roles exist after the update');
$node->safe_psql('postgres', q{CREATE ROLE nobody});
my ($rc, $stdout, $stderr) = $node->psql('postgres', q{SET ROLE nobody; SELECT count(*) FROM elt.audit_log});
like($stderr, qr/permission denied for table audit_log/, 'the audit log is no longer readable by PUBLIC');
is($node->safe_psql('postgres', q{SET ROLE nobody; SELECT count(*) > 0 FROM elt.audit_trail WHERE details IS NULL}),
	't', 'elt.audit_trail shows every row, without the details of others\' runs');
is($node->safe_psql('postgres', q{SET ROLE nobody; SELECT valid FROM elt.audit_verify()}), 't',
	'any role may verify the chain');
is($node->safe_psql('postgres',
	q{SELECT has_schema_privilege('nobody', 'elt_snapshots', 'USAGE') || ':' || has_schema_privilege('nobody', 'elt_snapshots', 'CREATE')}),
	'true:false', 'every role may use the snapshot schema, so that no creation grants on it; none creates in it');

# 0.7.0 -> 0.8.0: working with the tools warehouses run
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.8.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.8.0', 'updated to 0.8.0');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain verifies at 0.8.0');

# 0.8.0 -> 0.9.0: contracts with a transaction model, rebuild commands, size-aware hazards
$node->safe_psql('postgres', q{ALTER EXTENSION elt_governance UPDATE TO '0.9.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	'0.9.0', 'updated to 0.9.0');
is($node->safe_psql('postgres', q{SELECT elt.env_fingerprint() -> 'database' ? 'icu_locale'}), 't',
	'the fingerprint works at 0.9.0 on every PostgreSQL');
is($node->safe_psql('postgres', q{SELECT valid FROM elt.audit_verify()}), 't', 'the chain verifies at 0.9.0');

# A fresh install of the default version is the same catalog as an update.
# CREATE EXTENSION without a version runs the full script of the default
# version (sql/elt_governance--<default>.sql), not the chain from 0.1.0.
my $default = (PostgreSQL::Test::Utils::slurp_file("elt_governance.control") =~ /^default_version\s*=\s*'([^']+)'/m)[0];
ok(defined $default, "the default version is $default");
my $sharedir = $node->config_data('--sharedir');
ok(-f "$sharedir/extension/elt_governance--$default.sql", 'the full script of the default version is installed');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION elt_governance');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'elt_governance'}),
	$default, 'a fresh install is at the default version');
# objects get oids in the order a script makes them: the full script makes
# the role helpers (0.7.0) before the governed targets (0.1.0), the chain after
is($node->safe_psql('fresh',
		q{SELECT 'elt._sees_all()'::regprocedure::oid < 'elt.governed_targets'::regclass::oid}),
	't', 'the fresh install ran the full script, not the chain from 0.1.0');
is($node->safe_psql('postgres',
		q{SELECT 'elt._sees_all()'::regprocedure::oid < 'elt.governed_targets'::regclass::oid}),
	'f', 'the updated database went through the chain');

# The catalog as one sorted line (or block) per fact: the extension's member
# objects, the tables pg_dump dumps (pg_extension_config_dump), the schema,
# every relation in elt with its kind, options and privileges, columns in
# order (by position among the live columns: an upgrade's dropped column
# leaves a gap the full script cannot have) with type, default, not null,
# collation, storage and privileges, constraints, indexes, sequences and
# their owning columns, functions (pg_get_functiondef, volatility,
# strictness, security, parallel safety, settings, owner, privileges),
# aggregates, views (pg_get_viewdef; security_barrier is a relation option),
# rules, triggers, event triggers, policies, types, comments and the
# initial privileges pg_dump compares with (pg_init_privs).  Column options
# leave out pg_attver, which some server builds set to a different value
# for every column made.
my $catalog = q{
	CREATE FUNCTION pg_temp.acl(a aclitem[]) RETURNS text LANGUAGE sql IMMUTABLE AS
	$$SELECT CASE WHEN a IS NULL THEN 'default' ELSE array(SELECT x::text FROM unnest(a) x ORDER BY 1)::text END$$;
	WITH ext AS (SELECT e.* FROM pg_extension e WHERE e.extname = 'elt_governance'),
	members AS (
	    SELECT d.classid, d.objid FROM pg_depend d, ext
	    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
	owned AS (
	    SELECT classid, objid FROM members
	    UNION ALL SELECT 'pg_extension'::regclass, oid FROM ext
	    UNION ALL SELECT 'pg_namespace'::regclass, 'elt'::regnamespace),
	rels AS (SELECT c.* FROM pg_class c WHERE c.relnamespace = 'elt'::regnamespace),
	procs AS (SELECT p.* FROM pg_proc p WHERE p.pronamespace = 'elt'::regnamespace)
	SELECT l FROM (
	    SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
	    UNION ALL
	    SELECT format('extension %s relocatable=%s schema=%s owner=%s', extversion, extrelocatable,
	                  extnamespace::regnamespace, extowner::regrole) FROM ext
	    UNION ALL
	    SELECT format('config_dump %s condition=%L', c.cfg::regclass, c.cond)
	    FROM ext, unnest(ext.extconfig, ext.extcondition) c(cfg, cond)
	    UNION ALL
	    SELECT format('schema %s owner=%s acl=%s', nspname, nspowner::regrole, pg_temp.acl(nspacl))
	    FROM pg_namespace WHERE nspname = 'elt'
	    UNION ALL
	    SELECT format('relation %s kind=%s persistence=%s am=%s owner=%s options=%s acl=%s rls=%s/%s replident=%s oftype=%s',
	                  c.oid::regclass, c.relkind, c.relpersistence, (SELECT amname FROM pg_am WHERE oid = c.relam), c.relowner::regrole,
	                  c.reloptions, pg_temp.acl(c.relacl), c.relrowsecurity, c.relforcerowsecurity,
	                  c.relreplident, c.reloftype::regtype)
	    FROM rels c
	    UNION ALL
	    SELECT format('column %s #%s %s %s notnull=%s default=%s identity=%s generated=%s collation=%s storage=%s compression=%s stats=%s acl=%s options=%s',
	                  a.attrelid::regclass,
	                  row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
	                  a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
	                  pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
	                  a.attcollation::regcollation, a.attstorage, a.attcompression, a.attstattarget,
	                  pg_temp.acl(a.attacl),
	                  array(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%'))
	    FROM rels c
	    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	    UNION ALL
	    SELECT format('constraint %s %s type=%s %s deferrable=%s/%s validated=%s noinherit=%s',
	                  x.conrelid::regclass, x.conname, x.contype, pg_get_constraintdef(x.oid),
	                  x.condeferrable, x.condeferred, x.convalidated, x.connoinherit)
	    FROM pg_constraint x WHERE x.connamespace = 'elt'::regnamespace
	    UNION ALL
	    SELECT format('index %s primary=%s unique=%s clustered=%s replident=%s immediate=%s',
	                  pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisunique, i.indisclustered,
	                  i.indisreplident, i.indimmediate)
	    FROM pg_index i JOIN rels c ON c.oid = i.indrelid
	    UNION ALL
	    SELECT format('sequence %s type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
	                  s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin,
	                  s.seqmax, s.seqcache, s.seqcycle,
	                  (SELECT string_agg(format('%s.%s (%s)', d.refobjid::regclass, a.attname, d.deptype), ', ')
	                   FROM pg_depend d
	                   JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
	                   WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
	                     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
	    FROM pg_sequence s JOIN rels c ON c.oid = s.seqrelid
	    UNION ALL
	    SELECT format('function %s kind=%s volatile=%s strict=%s secdef=%s leakproof=%s parallel=%s cost=%s rows=%s config=%s owner=%s acl=%s' || chr(10) || '%s',
	                  p.oid::regprocedure, p.prokind, p.provolatile, p.proisstrict, p.prosecdef,
	                  p.proleakproof, p.proparallel, p.procost, p.prorows, p.proconfig,
	                  p.proowner::regrole, pg_temp.acl(p.proacl),
	                  CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END)
	    FROM procs p
	    UNION ALL
	    SELECT format('aggregate %s kind=%s direct=%s trans=%s final=%s extra=%s modify=%s combine=%s serial=%s deserial=%s mtrans=%s minv=%s mfinal=%s sortop=%s type=%s space=%s mtype=%s init=%s',
	                  g.aggfnoid::regprocedure, g.aggkind, g.aggnumdirectargs, g.aggtransfn::regprocedure,
	                  g.aggfinalfn::regprocedure, g.aggfinalextra, g.aggfinalmodify, g.aggcombinefn,
	                  g.aggserialfn, g.aggdeserialfn, g.aggmtransfn, g.aggminvtransfn, g.aggmfinalfn,
	                  g.aggsortop, g.aggtranstype::regtype, g.aggtransspace, g.aggmtranstype, g.agginitval)
	    FROM pg_aggregate g JOIN procs p ON p.oid = g.aggfnoid
	    UNION ALL
	    SELECT format('view %s' || chr(10) || '%s', c.oid::regclass, pg_get_viewdef(c.oid))
	    FROM rels c WHERE c.relkind IN ('v', 'm')
	    UNION ALL
	    SELECT format('rule %s %s', r.ev_class::regclass, pg_get_ruledef(r.oid))
	    FROM pg_rewrite r JOIN rels c ON c.oid = r.ev_class WHERE r.rulename <> '_RETURN'
	    UNION ALL
	    SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
	    FROM pg_trigger t JOIN rels c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
	    UNION ALL
	    SELECT format('event trigger %s on %s tags=%s function=%s enabled=%s owner=%s',
	                  e.evtname, e.evtevent, e.evttags, e.evtfoid::regprocedure, e.evtenabled, e.evtowner::regrole)
	    FROM pg_event_trigger e
	    UNION ALL
	    SELECT format('policy %s %s cmd=%s permissive=%s roles=%s using=%s check=%s',
	                  p.polrelid::regclass, p.polname, p.polcmd, p.polpermissive, p.polroles::regrole[],
	                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
	    FROM pg_policy p JOIN rels c ON c.oid = p.polrelid
	    UNION ALL
	    SELECT format('type %s kind=%s owner=%s acl=%s', t.oid::regtype, t.typtype, t.typowner::regrole, pg_temp.acl(t.typacl))
	    FROM pg_type t WHERE t.typnamespace = 'elt'::regnamespace
	    UNION ALL
	    SELECT format('comment on %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
	    FROM pg_description d JOIN owned o ON o.classid = d.classoid AND o.objid = d.objoid
	    UNION ALL
	    SELECT format('initial privileges of %s (%s): %s', pg_describe_object(i.classoid, i.objoid, i.objsubid),
	                  i.privtype, pg_temp.acl(i.initprivs))
	    FROM pg_init_privs i JOIN owned o ON o.classid = i.classoid AND o.objid = i.objoid
	) x(l)
	ORDER BY l COLLATE "C";
};
my $fresh = $node->safe_psql('fresh', $catalog);
my $upgraded = $node->safe_psql('postgres', $catalog);
cmp_ok(scalar(() = $fresh =~ /^(?:relation|column|function|view|trigger|config_dump) /mg), '>', 500,
	'the catalog comparison sees the whole catalog');
my %fresh_lines = map { $_ => 1 } split /\n/, $fresh;
my %upgraded_lines = map { $_ => 1 } split /\n/, $upgraded;
ok($fresh eq $upgraded, 'a fresh install and an update have the same catalog')
	or diag(join("\n",
		(map { "only in the fresh install: $_" } grep { !$upgraded_lines{$_} } split /\n/, $fresh),
		(map { "only in the updated one:   $_" } grep { !$fresh_lines{$_} } split /\n/, $upgraded)));

$node->stop;
done_testing();
