/*
 * sandbox_run.c — transforms and replays that run in a sandbox.
 *
 * elt.transform_run(name, ..., sandbox => s) runs a transform — its
 * current version, a recorded one (version => n) or SQL not yet recorded
 * (sql => '...') — with every relation its SQL names replaced by that
 * relation's copy in sandbox s, writing s's copy of the target (a table
 * of the target's columns and primary key, made in s on first use when s
 * has no copy of it).  elt.replay(run_id, sandbox => s) does the same for
 * every step of a recorded run, with the step's recorded SQL, search_path,
 * parameters, clock and seed.  Either is recorded as a run of its own
 * (kind 'sandbox' or 'replay', with the sandbox) with a manifest: the
 * sandbox's copies it read, with their checksums, and what it wrote.
 * The run writes only the sandbox's table; no lineage is recorded.  A
 * table made for a Citus target is distributed like it (citus.c),
 * colocated with the sandbox's copies it was colocated with.
 *
 * Privileges.  The caller must be able to SET ROLE to the sandbox's owner; the
 * SQL runs as that owner, in a security-restricted operation, reading the
 * owner's copies.  So it must be the owner's own SQL: a version of the
 * owner's transform, a run of the owner's, SQL the caller passes (sql =>),
 * or a superuser's (which runs with less than its author's rights there).
 * Another role's SQL is refused: anything it calls, built-ins included,
 * would act with the owner's rights on that role's behalf.  The table it
 * writes is a plain table of the owner's in the sandbox, without triggers
 * or rules, and so are its partitions; the types of a table it makes are
 * built in or a superuser's.
 *
 * Layering: an engine over sandbox.c's catalog (elt.sandbox_defs), the
 * runs engine (transform_run.c's EltReplayStep, manifest.c's recording)
 * and lineage.c's parsing.  Called by replay.c; its elt_transform_run is
 * the SQL function, which hands live runs to transform_run.c.
 * Locks: those the step's statements take on the sandbox's copies.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_attribute.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "citus.h"
#include "lineage.h"
#include "manifest.h"
#include "sandbox.h"
#include "transform.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * The sandbox
 * ---------------------------------------------------------------------
 */

/*
 * Open sandbox `name` for a run: it must exist, not have expired, have
 * its schema, and the caller must be a member of its owner.  Its copies
 * are mapped to their sources by the names the sandbox recorded.
 */
void
EltSandboxOpen(EltSandboxMap *m, const char *name)
{
	MemoryContext outer = CurrentMemoryContext;
	EltCatalogWrite cw;
	TimestampTz expires_at;
	Oid			schema_oid;
	bool		isnull;
	uint64		i;

	memset(m, 0, sizeof(*m));
	EltRequireCatalog("sandbox_defs");
	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("SELECT owner::pg_catalog.oid AS owner, schema_oid, expires_at"
							  " FROM elt.sandbox_defs WHERE name = $1 FOR SHARE",
							  1, (Oid[]) {NAMEOID}, (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(name))},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the sandbox failed");
	/* a sandbox the caller may not run in is one it does not see: no owner, no existence told */
	if (SPI_processed > 0)
	{
		m->owner = DatumGetObjectId(EltSpiGetDatum(0, "owner", &isnull));
		schema_oid = DatumGetObjectId(EltSpiGetDatum(0, "schema_oid", &isnull));
		expires_at = DatumGetTimestampTz(EltSpiGetDatum(0, "expires_at", &isnull));
	}
	if (SPI_processed == 0 || !EltCanSetRole(cw.actor, m->owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("there is no sandbox \"%s\" you may run in", name),
				 errdetail("A run in a sandbox reads and writes its copies as the sandbox's owner: only roles that may SET ROLE to the owner may ask for one."),
				 errhint("elt.sandboxes lists the sandboxes you own; elt.sandbox_create makes one.")));
	if (expires_at <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sandbox \"%s\" has expired", name),
				 errhint("Make a new one with elt.sandbox_create.")));
	if (!SearchSysCacheExists1(NAMESPACEOID, ObjectIdGetDatum(schema_oid)) ||
		EltNamespaceOwner(schema_oid) != m->owner)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("the schema of sandbox \"%s\" is gone", name),
				 errhint("Make it again with elt.sandbox_refresh('%s'), or drop it with elt.sandbox_drop.", name)));

	/* sources and copies, as recorded: the copy is the same name in the schema */
	if (SPI_execute_with_args("SELECT pg_catalog.to_regclass(t ->> 'source')::pg_catalog.oid AS source,"
							  " t ->> 'copy' AS copy"
							  " FROM elt.sandbox_defs d,"
							  "      pg_catalog.jsonb_array_elements(d.manifest -> 'tables') t"
							  " WHERE d.name = $1",
							  1, (Oid[]) {NAMEOID}, (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(name))},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the sandbox's tables failed");
	for (i = 0; i < SPI_processed; i++)
	{
		Oid			source = DatumGetObjectId(EltSpiGetDatum(i, "source", &isnull));
		char	   *copy = EltSpiGetText(i, "copy");
		List	   *names;
		Oid			copy_oid;
		MemoryContext spi;

		if (isnull || copy == NULL)
			continue;			/* a source dropped or renamed since: nothing maps to it */
		names = stringToQualifiedNameList(copy);
		copy_oid = get_relname_relid(strVal(llast(names)), schema_oid);
		if (!OidIsValid(copy_oid))
			continue;			/* the owner dropped that copy */
		spi = MemoryContextSwitchTo(outer);
		m->sources = lappend_oid(m->sources, source);
		m->copies = lappend_oid(m->copies, copy_oid);
		MemoryContextSwitchTo(spi);
	}
	EltCatalogWriteEnd(&cw);
	MemoryContextSwitchTo(outer);
	m->name = pstrdup(name);
	m->nsp = schema_oid;
	m->schema = get_namespace_name(schema_oid);
}

/* The copy of relid in the sandbox: relid itself if it is in the sandbox, else InvalidOid. */
static Oid
copy_of(EltSandboxMap *m, Oid relid)
{
	ListCell   *s,
			   *c;

	if (get_rel_namespace(relid) == m->nsp)
		return relid;
	forboth(s, m->sources, c, m->copies)
		if (lfirst_oid(s) == relid)
			return lfirst_oid(c);
	return InvalidOid;
}

/*
 * Code that may run as runner: built in, or owned by a superuser (an
 * extension's own objects are) or by runner itself.  Membership of an
 * extension is not enough: the owner of a trusted extension may add any
 * object of its own to it.
 */
static bool
trusted_object(Oid classid, Oid objid, Oid nspid, Oid owner, Oid runner)
{
	if (nspid == PG_CATALOG_NAMESPACE || objid < FirstNormalObjectId)
		return true;
	return owner == runner || superuser_arg(owner);
}

static bool
trusted_type(Oid typid, Oid runner)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	Form_pg_type typ;
	bool		ok;
	Oid			relid;

	if (!HeapTupleIsValid(tup))
		return false;
	typ = (Form_pg_type) GETSTRUCT(tup);
	ok = trusted_object(TypeRelationId, typid, typ->typnamespace, typ->typowner, runner);
	relid = typ->typtype == TYPTYPE_COMPOSITE ? typ->typrelid : InvalidOid;
	if (ok && typ->typtype == TYPTYPE_DOMAIN)
		ok = trusted_type(typ->typbasetype, runner);
	if (ok && OidIsValid(typ->typelem) && typ->typelem != typid && IsTrueArrayType(typ))
		ok = trusted_type(typ->typelem, runner);
	if (ok && typ->typtype == TYPTYPE_RANGE)
		ok = trusted_type(get_range_subtype(typid), runner);
	if (ok && typ->typtype == TYPTYPE_MULTIRANGE)
		ok = trusted_type(get_multirange_range(typid), runner);
	ReleaseSysCache(tup);
	/* a composite's attributes (a domain among them runs its CHECK on input) */
	if (ok && OidIsValid(relid))
	{
		HeapTuple	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		int			natts = HeapTupleIsValid(ctup) ? ((Form_pg_class) GETSTRUCT(ctup))->relnatts : 0;
		int			k;

		if (HeapTupleIsValid(ctup))
			ReleaseSysCache(ctup);
		for (k = 1; ok && k <= natts; k++)
		{
			HeapTuple	atup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(k));

			if (!HeapTupleIsValid(atup))
				continue;
			if (!((Form_pg_attribute) GETSTRUCT(atup))->attisdropped)
				ok = trusted_type(((Form_pg_attribute) GETSTRUCT(atup))->atttypid, runner);
			ReleaseSysCache(atup);
		}
	}
	return ok;
}

/*
 * A copy in sandbox m of a hash-distributed table colocated with target
 * (its copy is colocated with it, sandbox.c), or InvalidOid.
 */
static Oid
colocated_copy(EltSandboxMap *m, Oid target)
{
	EltCitusTable tt;
	EltCitusTable st;
	ListCell   *a;
	ListCell   *b;

	if (!EltCitusTableInfo(target, &tt) || tt.method != 'h')
		return InvalidOid;
	forboth(a, m->sources, b, m->copies)
	{
		if (EltCitusTableInfo(lfirst_oid(a), &st) && st.method == 'h' && st.colocation == tt.colocation &&
			EltCitusTableInfo(lfirst_oid(b), &st) && st.method == 'h')
			return lfirst_oid(b);
	}
	return InvalidOid;
}

/*
 * The target's place in the sandbox: its copy, or a table of its columns
 * and primary key made in the sandbox (as its owner) the first time, named
 * as the target.  A table of that name the sandbox made for another source
 * is not taken.
 */
Oid
EltSandboxTarget(EltSandboxMap *m, Oid target)
{
	Oid			copy = copy_of(m, target);
	char	   *relname = get_rel_name(target);
	Oid			existing;
	StringInfoData sql;
	EltAsRole	ra;
	uint64		i,
				n;
	SPITupleTable *tt;
	char	   *dst;

	if (OidIsValid(copy))
		return copy;
	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the target of the run (relation with OID %u) does not exist", target)));
	existing = get_relname_relid(relname, m->nsp);
	if (OidIsValid(existing))
	{
		if (list_member_oid(m->copies, existing))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("sandbox \"%s\" has no copy of %s, and its table %s is the copy of another source",
							m->name, EltRelDisplayName(target), quote_identifier(relname)),
					 errhint("Make the sandbox from the target's schema too, so that it has a copy of the target.")));
		/* made by an earlier run in the sandbox (or by its owner): checked by the caller */
		return existing;
	}

	dst = quote_qualified_identifier(m->schema, relname);
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", dst);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT a.attname, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,"
							  " a.attnotnull, CASE WHEN a.attcollation <> 0 AND a.attcollation <> y.typcollation"
							  "   THEN pg_catalog.format('%I.%I', cn.nspname, co.collname) END AS coll"
							  " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type y ON y.oid = a.atttypid"
							  " LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation"
							  " LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace"
							  " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(target)}, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the target's columns failed");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *col = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		Oid			typid = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
		char	   *coll = SPI_getvalue(tt->vals[i], tt->tupdesc, 5);

		if (!trusted_type(typid, m->owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("column %s of %s has type %s, which is neither built in nor a superuser's",
							quote_identifier(col), EltRelDisplayName(target), format_type_be(typid)),
					 errdetail("Writing a value of that type runs its owner's code with the rights of the sandbox's owner."),
					 errhint("Make the sandbox from the target's schema, or write into a target of built-in types.")));
		appendStringInfo(&sql, "%s%s %s%s%s%s", i > 0 ? ", " : "", quote_identifier(col),
						 SPI_getvalue(tt->vals[i], tt->tupdesc, 3),
						 coll ? " COLLATE " : "", coll ? coll : "",
						 DatumGetBool(SPI_getbinval(tt->vals[i], tt->tupdesc, 4, &isnull)) ? " NOT NULL" : "");
	}
	/* the primary key, for merge */
	if (SPI_execute_with_args("SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n) AS cols"
							  " FROM pg_catalog.pg_index i,"
							  "      LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k(attnum, n)"
							  " JOIN pg_catalog.pg_attribute a ON a.attrelid = $1 AND a.attnum = k.attnum"
							  " WHERE i.indrelid = $1 AND i.indisprimary",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(target)}, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the target's key failed");
	if (SPI_processed > 0 && EltSpiGetText(0, "cols") != NULL)
		appendStringInfo(&sql, ", PRIMARY KEY (%s)", EltSpiGetText(0, "cols"));
	appendStringInfoChar(&sql, ')');

	EltAsRoleBegin(&ra, m->owner, "pg_catalog, pg_temp", true);
	EltSpiExec(sql.data);
	CommandCounterIncrement();
	existing = get_relname_relid(relname, m->nsp);
	/*
	 * a Citus target's table is distributed like it: colocated with the
	 * sandbox's copies of the tables the target was colocated with (the
	 * owner's own), else with the target
	 */
	(void) EltCitusDistributeLike(existing, target, colocated_copy(m, target));
	/* the owner's alone, as the sandbox's copies: default privileges revoked */
	if (SPI_execute_with_args("SELECT pg_catalog.format('REVOKE ALL ON TABLE %s FROM %s', $2,"
							  "   CASE WHEN a.grantee = 0 THEN 'PUBLIC'"
							  "        ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END) AS sql"
							  " FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a"
							  " WHERE c.oid = $1 AND a.grantee <> c.relowner GROUP BY 1",
							  2, (Oid[]) {OIDOID, TEXTOID},
							  (Datum[]) {ObjectIdGetDatum(existing), CStringGetTextDatum(dst)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the new table's privileges failed");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
		EltSpiExec(SPI_getvalue(tt->vals[i], tt->tupdesc, 1));
	EltAsRoleEnd(&ra);
	SPI_finish();
	return existing;
}

/*
 * Whether relid has a trigger other than Citus's own on a Citus table (the
 * statement trigger citus_truncate_trigger, in pg_catalog, that Citus
 * gives each distributed and reference table to truncate its shards).
 */
static bool
has_triggers(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	bool		found = false;
	int			i;

	for (i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		Oid			fn = rel->trigdesc->triggers[i].tgfoid;
		char	   *name = get_func_name(fn);

		if (!(name && strcmp(name, "citus_truncate_trigger") == 0 &&
			  get_func_namespace(fn) == PG_CATALOG_NAMESPACE))
			found = true;
	}
	relation_close(rel, AccessShareLock);
	return found;
}

/*
 * The table a run writes must write nothing else: a plain table of the
 * sandbox's owner in the sandbox (or a partitioned one all of whose
 * partitions are), without triggers (Citus's truncate trigger aside) or
 * rules — not a view over a live
 * table, nor a partition attached from elsewhere.  Whether it is a copy
 * or not: the owner may have replaced a copy since the sandbox was made.
 */
static void
check_written(EltSandboxMap *m, Oid relid)
{
	List	   *rels = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE
		? find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
	ListCell   *lc;

	foreach(lc, rels)
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_class c;
		bool		plain;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", lfirst_oid(lc));
		c = (Form_pg_class) GETSTRUCT(tup);
		plain = (c->relkind == RELKIND_RELATION || c->relkind == RELKIND_PARTITIONED_TABLE) &&
			c->relnamespace == m->nsp && c->relowner == m->owner &&
			!c->relhasrules && c->relpersistence != RELPERSISTENCE_TEMP;
		ReleaseSysCache(tup);
		plain = plain && !has_triggers(lfirst_oid(lc));
		if (!plain)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("%s is not a plain table of sandbox \"%s\": a run does not write it",
							EltRelDisplayName(lfirst_oid(lc)), m->name),
					 errdetail("A run writes only a table in the sandbox's schema, owned by the sandbox's owner, without triggers or rules (and so are its partitions)."),
					 errhint("Drop or rename it (elt.sandbox_refresh makes the copies again): the run makes the table it writes itself.")));
	}
}

/* ---------------------------------------------------------------------
 * Whose SQL runs
 * ---------------------------------------------------------------------
 */

/*
 * In a sandbox the SQL runs as the sandbox's owner, so it must be the
 * owner's own: a version of a transform the owner owns, a run of the
 * owner's, or SQL the caller (a member of the owner) passes itself.  A
 * superuser's SQL runs with less than its author's rights there, which
 * is allowed too.  Another role's SQL is not run: whatever it calls —
 * its own functions, or built-ins that read what the owner may read
 * (query_to_xml) or act on the owner's behalf (pg_notify, setval, lo_*) —
 * would run with the owner's rights on that role's behalf.
 */
static void
check_author(EltSandboxMap *m, Oid author, const char *what)
{
	if (author == m->owner || superuser_arg(author))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is role %s's SQL: it does not run in sandbox \"%s\" of role %s", what,
					GetUserNameFromId(author, false), m->name, GetUserNameFromId(m->owner, false)),
			 errdetail("In a sandbox the SQL runs as the sandbox's owner: another role's SQL would run with the owner's rights."),
			 errhint("Read the SQL (elt.transform_versions, elt.run_manifest), and to run it, pass it yourself: "
					 "elt.transform_run(name, sandbox => ..., sql => ...); or run it in a sandbox of role %s.",
					 GetUserNameFromId(author, false))));
}

/* ---------------------------------------------------------------------
 * One step in the sandbox
 * ---------------------------------------------------------------------
 */

/*
 * Run step st in the sandbox: st->sql (of author) with the relations its
 * references name (relids, live relations in reference order; InvalidOid
 * where the reference names nothing) replaced by their copies, writing the
 * sandbox's place of st->target (live).  st->inputs gets the copies read,
 * st->output what was written; st->target becomes the sandbox's table.
 */
void
EltSandboxStep(EltSandboxMap *m, EltRunStep *st, List *relids, List *names, Oid author, const char *what)
{
	List	   *remap = NIL;
	List	   *read = NIL;
	Oid			target_copy;
	ListCell   *lc,
			   *ln;
	EltAsRole	ra;

	check_author(m, author, what);
	target_copy = EltSandboxTarget(m, st->target);
	check_written(m, target_copy);
	forboth(lc, relids, ln, names)
	{
		Oid			relid = lfirst_oid(lc);
		Oid			copy = !OidIsValid(relid) ? InvalidOid
			: relid == st->target ? target_copy : copy_of(m, relid);

		if (!OidIsValid(copy))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("%s reads %s, of which sandbox \"%s\" has no copy", what,
							OidIsValid(relid) ? EltRelDisplayName(relid) : (char *) lfirst(ln), m->name),
					 errdetail("In a sandbox a run reads the sandbox's copies only."),
					 errhint("Make the sandbox from that relation's schema too (elt.sandbox_create(..., from_schemas => ...)); "
							 "a view is not copied: read its tables.")));
		remap = lappend(remap, m->schema);
		remap = lappend(remap, get_rel_name(copy));
		read = list_append_unique_oid(read, copy);
	}

	st->relations = NIL;
	for (lc = list_head(remap); lc != NULL; lc = lnext(remap, lnext(remap, lc)))
		st->relations = lappend(st->relations,
								quote_qualified_identifier(lfirst(lc), lfirst(lnext(remap, lc))));
	st->sandbox_target = quote_qualified_identifier(m->schema, get_rel_name(target_copy));
	st->target = target_copy;

	EltAsRoleBegin(&ra, m->owner, NULL, true);
	/* what it reads, before it writes: the copies, and the target's rows it adds to */
	initStringInfo(&st->inputs);
	if (strcmp(st->mode, "replace") != 0)
		read = list_append_unique_oid(read, target_copy);
	foreach(lc, read)
	{
		EltRunStep	ist;
		char	   *json;

		memset(&ist, 0, sizeof(ist));
		ist.policy = st->policy;
		ist.step = st->step;
		PushActiveSnapshot(GetTransactionSnapshot());
		json = EltRelationJson(&ist, lfirst_oid(lc), lfirst_oid(lc) == target_copy ? "target" : "source", false);
		PopActiveSnapshot();
		if (st->inputs.len > 0)
			appendStringInfoString(&st->inputs, ", ");
		appendStringInfoString(&st->inputs, json);
	}
	st->started_at = GetCurrentTimestamp();
	EltReplayStep(st->sql, st->search_path, remap, target_copy, st->mode, st->params,
				  st->clock, st->seed, &st->rows_written, &st->rows_deleted, &st->rows_read);
	st->rows_deleted_known = strcmp(st->mode, "replace") == 0;
	st->finished_at = GetCurrentTimestamp();
	EltRunStepOutput(st);
	EltAsRoleEnd(&ra);
}

/*
 * The relation a qualified name recorded in a manifest names now, or
 * InvalidOid; looked up without USAGE on its schema, as references are.
 */
Oid
EltSandboxRelationByName(const char *qualified)
{
	List	   *names = stringToQualifiedNameList(qualified);
	Oid			nsp;

	if (list_length(names) != 2)
		return InvalidOid;
	nsp = get_namespace_oid(strVal(linitial(names)), true);
	return OidIsValid(nsp) ? get_relname_relid(strVal(lsecond(names)), nsp) : InvalidOid;
}

/*
 * The live relations sql's references name, in order, as role (the
 * sandbox's owner, who runs it) reads them under search_path.  Only to find their copies: a qualified name is
 * looked up without the author's USAGE on its schema (an analyst's SQL
 * names the production tables it has never been allowed to read).
 */
static void
resolve_references(const char *sql, const char *search_path, Oid role, List **relids, List **names)
{
	EltAsRole	ra;
	ListCell   *lc;
	List	   *refs = EltRawRelationRefs(sql);

	*relids = NIL;
	*names = NIL;
	EltAsRoleBegin(&ra, role, search_path, true);
	foreach(lc, refs)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid;

		if (rv->schemaname != NULL)
		{
			Oid			nsp = get_namespace_oid(rv->schemaname, true);

			relid = OidIsValid(nsp) ? get_relname_relid(rv->relname, nsp) : InvalidOid;
		}
		else
			relid = RelnameGetRelid(rv->relname);
		*relids = lappend_oid(*relids, relid);
		*names = lappend(*names, quote_qualified_identifier(rv->schemaname, rv->relname));
	}
	EltAsRoleEnd(&ra);
}

/*
 * elt.transform_run(name, params, ..., sandbox, sql, version): the
 * transform run in sandbox `sandbox` and recorded as a run of kind
 * 'sandbox'; returns its run id.
 */
int64
EltSandboxTransformRun(const char *name, Jsonb *params, const char *sandbox, const char *sql, int version)
{
	EltSandboxMap m;
	EltTransform t;
	EltRunStep	st;
	EltCatalogWrite cw;
	Oid			author;
	List	   *relids;
	List	   *names;
	int64		run_id;
	char	   *id;
	char	   *what;
	TimestampTz started = GetCurrentTimestamp();
	MemoryContext cxt = CurrentMemoryContext;

	if (EltPipelineRunId() != 0 || EltInTransformRun())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a run in a sandbox cannot be part of another run"),
				 errhint("End the run with elt.run_end() first.")));
	if (sql != NULL && version != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sql and version cannot both be given"),
				 errhint("Run a recorded version (version => n), or SQL that is not one yet (sql => '...').")));
	EltCatalogWriteBegin(&cw);
	EltTransformLoad(&t, name, false, cxt);
	if (version != 0 && version != t.version)
	{
		if (SPI_execute_with_args("SELECT c.sql, c.code_hash, c.search_path FROM elt.transform_code c"
								  " WHERE c.transform_id = $1 AND c.version = $2",
								  2, (Oid[]) {INT8OID, INT4OID},
								  (Datum[]) {Int64GetDatum(t.id), Int32GetDatum(version)},
								  NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading the transform's version failed");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("transform \"%s\" has no version %d", name, version),
					 errhint("elt.transform_versions lists its versions (1 to %d).", t.version)));
		t.sql = MemoryContextStrdup(cxt, EltSpiGetText(0, "sql"));
		t.code_hash = MemoryContextStrdup(cxt, EltSpiGetText(0, "code_hash"));
		t.search_path = MemoryContextStrdup(cxt, EltSpiGetText(0, "search_path"));
		t.version = version;
	}
	EltCatalogWriteEnd(&cw);
	MemoryContextSwitchTo(cxt);
	author = get_role_oid(t.owner, false);
	EltSandboxOpen(&m, sandbox);
	if (sql != NULL)
	{
		char		hash[ELT_SHA256_HEX_LEN + 1];
		char	   *norm = EltNormalizeSql(sql);

		EltSha256Hex(norm, strlen(norm), hash);
		t.sql = pstrdup(sql);
		t.code_hash = pstrdup(hash);
		t.search_path = GetConfigOptionByName("search_path", NULL, false);
		t.version = 0;
		/* the caller's, who has the owner's privileges: as if the owner wrote it */
		author = m.owner;
	}
	what = t.version != 0 ? psprintf("version %d of transform \"%s\"", t.version, t.name)
		: psprintf("the SQL given for transform \"%s\"", t.name);

	memset(&st, 0, sizeof(st));
	st.enabled = true;
	st.policy = EltManifestChecksums() ? "checksum" : "none";
	st.step = 1;
	st.clock = started;
	st.seed = (int64) pg_prng_uint64(&pg_global_prng_state);
	st.transform = t.name;
	st.transform_id = t.id;
	st.version = t.version;
	st.code_hash = t.code_hash;
	st.mode = t.mode;
	st.lineage = "none";
	st.sql = t.sql;
	st.search_path = t.search_path;
	st.params = params;
	st.target = t.target;
	resolve_references(t.sql, t.search_path, m.owner, &relids, &names);
	EltSandboxStep(&m, &st, relids, names, author, what);

	EltCatalogWriteBegin(&cw);
	run_id = EltDrawRunId();
	st.run_id = run_id;
	EltInsertRun(run_id, t.name, "sandbox", params, st.policy, st.clock, st.seed, EltCurrentFingerprint(),
				 m.owner, started, 0, m.name, false);
	EltInsertStep(run_id, &st, 0);
	id = EltStoreManifest(run_id, GetCurrentTimestamp());
	{
		EltJson		d;

		EltAuditRunBegin(&d, run_id);
		EltJsonString(&d, "sandbox", m.name);
		EltJsonString(&d, "transform", t.name);
		if (t.version != 0)
			EltJsonInt(&d, "version", t.version);
		EltJsonString(&d, "code_hash", t.code_hash);
		EltJsonString(&d, "target", st.sandbox_target);
		EltJsonInt(&d, "rows_written", st.rows_written);
		EltJsonString(&d, "manifest_id", id);
		EltAuditRun(cw.actor, "sandbox_run", t.name, &d);
	}
	EltCatalogWriteEnd(&cw);
	MemoryContextSwitchTo(cxt);
	return run_id;
}

PG_FUNCTION_INFO_V1(elt_transform_run);

/*
 * elt.transform_run(name, params, lineage, sandbox, sql, version): with a
 * sandbox, the run in it (EltSandboxTransformRun); without, the live run
 * (transform_run.c), which sql and version are not for.  The first three
 * arguments alone are 0.8.0's function, before ALTER EXTENSION UPDATE.
 */
Datum
elt_transform_run(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *sandbox = (PG_NARGS() > 3 && !PG_ARGISNULL(3)) ? pstrdup(NameStr(*PG_GETARG_NAME(3))) : NULL;
	char	   *sql = (PG_NARGS() > 4 && !PG_ARGISNULL(4)) ? text_to_cstring(PG_GETARG_TEXT_PP(4)) : NULL;
	int			version = (PG_NARGS() > 5 && !PG_ARGISNULL(5)) ? PG_GETARG_INT32(5) : 0;
	Jsonb	   *params;

	if (PG_NARGS() > 5 && !PG_ARGISNULL(5) && version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version must be 1 or more")));
	if (sandbox == NULL)
	{
		if (sql != NULL || version != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s can only be given with sandbox", sql != NULL ? "sql" : "version"),
					 errdetail("A transform's live runs run its current version."),
					 errhint("Try other SQL or an older version in a sandbox: elt.transform_run(name, sandbox => ..., %s => ...); "
							 "make SQL the current version with elt.transform_update.", sql != NULL ? "sql" : "version")));
		return EltTransformRunLive(fcinfo);
	}
	EltRequireCatalog("run_defs");
	name = EltRequiredText(fcinfo, 0, "name");
	if (sql != NULL && sql[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sql must not be empty")));
	params = PG_ARGISNULL(1)
		? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))
		: PG_GETARG_JSONB_P_COPY(1);
	if (!JB_ROOT_IS_OBJECT(params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be a JSON object"),
				 errhint("For example '{\"day\": \"2026-01-31\"}'; read a parameter with elt.param('day').")));
	PG_RETURN_INT64(EltSandboxTransformRun(name, params, sandbox, sql, version));
}
