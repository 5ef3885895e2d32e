/*
 * sandbox.c — sandboxes: a schema of copies of the tables of one or more
 * schemas, masked by their masking rules (mask.c), whole or a sample closed
 * under foreign keys, owned by one role, dropped when they expire.
 *
 * elt.sandbox_create(name, from_schemas, sample, masked, expires, owner)
 * makes schema `name` owned by `owner` and in it, per table of the source
 * schemas (plain and partitioned tables; partitions are read through
 * their parent), a table LIKE the source (defaults, NOT NULL and CHECK
 * constraints, indexes, identity, generated columns, comments), new
 * sequences for serial columns, the rows, then the foreign keys between
 * the copied tables.  Everything is done as the owner: the copies are its
 * own and nobody else's.  Rows are read by a statement of the creator's
 * (masked) or of the owner's (masked => false: the owner sees unmasked
 * only what it may read itself), so privileges, column grants and
 * row-level security hold.
 *
 * Samples (sandbox_sample.c).  {"percent": p} keeps each row whose hash
 * (of its primary key, else the whole row, and the seed) falls under p%;
 * {"rows": n} the n rows of each table with the smallest hashes;
 * {"root": rel, "where": sql} the rows of rel where the condition holds
 * and, following foreign keys down, the rows that reference them.  Then
 * the sample is closed upwards: every row a kept row references is kept,
 * until nothing is added, so every foreign key of the sandbox holds.  A
 * closure that grows past max_rows (default ten times the rows first
 * chosen, at least 10 000) is refused, naming the foreign key that pulled
 * in the most rows.  Kept rows are tracked by ctid
 * in temporary tables, under a SHARE lock on every source.
 * {"synthetic": true, ...} reads no row: sandbox_synth.c generates each
 * copy's rows from the sources' statistics, parents first.
 *
 * Citus.  The copy of a hash-distributed table is distributed on the same
 * column and colocated with its source, a reference table's is a
 * reference table (so the foreign keys Citus allowed between the sources
 * hold between the copies); another kind of Citus table is refused.  A
 * sample of Citus tables keeps rows by key, not ctid (sandbox_sample.c).
 * Masked rows are read into a temporary table first and masked from it on
 * the coordinator: elt._mask's token and keys exist only in this backend,
 * and the copying statement must not run on the shards.
 *
 * Layering: an engine; calls sandbox_sample.c, sandbox_synth_plan.c and
 * sandbox_synth.c, mask.c, checksum.c, citus.c, manifest.c (the policy), audit.c,
 * roles.c and util.
 * Called by backfill_worker.c's scanner (EltSandboxExpire).  Locks: SHARE on
 * every source table for the whole copy (none for synthetic rows); the new
 * schema's own objects.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "checksum.h"
#include "citus.h"
#include "manifest.h"
#include "mask.h"
#include "roles.h"
#include "sandbox.h"
#include "util.h"

#include "sandbox_internal.h"

/* ---------------------------------------------------------------------
 * Arguments
 * ---------------------------------------------------------------------
 */

static JsonbValue *
jarg(Jsonb *j, const char *key)
{
	return getKeyJsonValueFromContainer(&j->root, key, strlen(key), NULL);
}

static double
jnumber(JsonbValue *v, const char *key)
{
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample argument \"%s\" must be a number", key)));
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

/* The sample argument, checked (sb->sample NULL: whole tables). */
static void
parse_sample(Sandbox *sb)
{
	char	   *unknown;
	JsonbValue *a;
	int			modes = 0;

	sb->percent = -1;
	sb->nrows = -1;
	sb->root = InvalidOid;
	sb->where = NULL;
	sb->max_rows = -1;
	if (sb->sample == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(sb->sample))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample must be a JSON object"),
				 errhint("For example '{\"percent\": 1}', '{\"rows\": 1000}' or '{\"root\": \"shop.customers\", \"where\": \"region = ''north''\"}'.")));
	/* generated rows, not chosen ones: sandbox_synth.c checks its own arguments */
	if ((sb->synth = EltSynthParse(sb->sample, &sb->seed)) != NULL)
		return;
	unknown = EltSandboxUnknownKey(sb->sample, (const char *const[]) {"percent", "rows", "root", "where", "seed", "max_rows", NULL});
	if (unknown != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown sample argument \"%s\"", unknown),
				 errhint("A sample takes percent, rows, or root with where; and seed and max_rows.")));
	if ((a = jarg(sb->sample, "percent")) != NULL)
	{
		sb->percent = jnumber(a, "percent");
		if (!(sb->percent > 0 && sb->percent <= 100))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample percent must be above 0 and at most 100")));
		modes++;
	}
	if ((a = jarg(sb->sample, "rows")) != NULL)
	{
		double		d = jnumber(a, "rows");

		if (!(d >= 1 && d <= 1e12) || d != floor(d))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample rows must be a whole number, 1 at least")));
		sb->nrows = (int64) d;
		modes++;
	}
	if ((a = jarg(sb->sample, "root")) != NULL)
	{
		char	   *root;
		List	   *names;

		if (a->type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample root must be a table name, as a string")));
		root = pnstrdup(a->val.string.val, a->val.string.len);
		names = stringToQualifiedNameList(root);
		sb->root = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
		if (!OidIsValid(sb->root))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("sample root \"%s\" does not exist", root)));
		modes++;
	}
	if ((a = jarg(sb->sample, "where")) != NULL)
	{
		List	   *raw;
		RawStmt    *rs;
		SelectStmt *sel;

		if (!OidIsValid(sb->root))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample where needs a root: the table it filters")));
		if (a->type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample where must be an SQL condition, as a string")));
		sb->where = pnstrdup(a->val.string.val, a->val.string.len);
		/* one condition, nothing else (it runs in the reader's statement) */
		raw = raw_parser(psprintf("SELECT 1 WHERE (%s)", sb->where), RAW_PARSE_DEFAULT);
		rs = (list_length(raw) == 1) ? linitial_node(RawStmt, raw) : NULL;
		sel = (rs && IsA(rs->stmt, SelectStmt)) ? (SelectStmt *) rs->stmt : NULL;
		if (sel == NULL || sel->fromClause != NIL || sel->groupClause != NIL || sel->sortClause != NIL ||
			sel->limitCount != NULL || sel->limitOffset != NULL || sel->windowClause != NIL ||
			sel->distinctClause != NIL || sel->op != SETOP_NONE || sel->withClause != NULL ||
			sel->havingClause != NULL || sel->lockingClause != NIL || list_length(sel->targetList) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample where must be one SQL condition on the root's columns"),
					 errhint("For example: region = 'north' AND created_at >= '2026-01-01'.")));
	}
	if (modes != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sample takes one of percent, rows and root"),
				 errhint("For example '{\"percent\": 1}'.")));
	if ((a = jarg(sb->sample, "seed")) != NULL)
	{
		double		d = jnumber(a, "seed");

		if (d != floor(d) || fabs(d) > 9e15)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample seed must be a whole number")));
		sb->seed = (int64) d;
	}
	if ((a = jarg(sb->sample, "max_rows")) != NULL)
	{
		double		d = jnumber(a, "max_rows");

		if (!(d >= 1) || d != floor(d))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample max_rows must be a whole number, 1 at least")));
		sb->max_rows = (int64) d;
	}
}

/* ---------------------------------------------------------------------
 * What is copied
 * ---------------------------------------------------------------------
 */

/* The tables of the source schemas (plain and partitioned, not partitions), locked SHARE. */
static void
list_tables(Sandbox *sb)
{
	ListCell   *lc;
	int			cap = 16;

	MemoryContext mine = CurrentMemoryContext;

	sb->tables = palloc0(sizeof(SbTable) * cap);
	sb->ntables = 0;
	foreach(lc, sb->schemas)
	{
		char	   *schema = lfirst(lc);
		Oid			nsp = get_namespace_oid(schema, false);
		uint64		i;
		int			j;

		if (SPI_execute_with_args("SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = $1"
								  " AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname",
								  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(nsp)}, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "listing the tables of schema %s failed", schema);
		/* SPI leaves a context of its own current: the list must outlive it */
		MemoryContextSwitchTo(mine);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			SbTable    *t;

			if (sb->ntables == cap)
			{
				cap *= 2;
				sb->tables = repalloc(sb->tables, sizeof(SbTable) * cap);
			}
			t = &sb->tables[sb->ntables++];
			memset(t, 0, sizeof(SbTable));
			t->relid = relid;
			t->src = EltRelDisplayName(relid);
			/* a plain table's inheritance children are copied on their own, if at all */
			t->from = get_rel_relkind(relid) == RELKIND_RELATION ? psprintf("ONLY %s", t->src) : t->src;
			t->dst = quote_qualified_identifier(sb->name, get_rel_name(relid));
			for (j = 0; j < sb->ntables - 1; j++)
				if (strcmp(get_rel_name(sb->tables[j].relid), get_rel_name(relid)) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_DUPLICATE_TABLE),
							 errmsg("%s and %s would both be copied as %s", sb->tables[j].src, t->src, t->dst),
							 errhint("Make a sandbox of each schema.")));
		}
	}
	if (sb->ntables == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the source schemas hold no tables")));
}

/* The foreign keys between copied tables; the others are reported and left out. */
static void
list_fkeys(Sandbox *sb)
{
	int			i;
	MemoryContext mine = CurrentMemoryContext;

	sb->fkeys = palloc0(sizeof(SbFkey) * 8);
	sb->nfkeys = 0;
	for (i = 0; i < sb->ntables; i++)
	{
		uint64		r;
		SPITupleTable *tt;
		uint64		n;

		/*
		 * The copy's definition is built from the catalog, column by column
		 * (never by editing pg_get_constraintdef's text, where a column's
		 * name could hold anything)
		 */
		if (SPI_execute_with_args("SELECT k.oid, k.conname, k.confrelid,"
								  " pg_catalog.format('FOREIGN KEY (%s) REFERENCES ', c.ccols) AS def,"
								  " c.join,"
								  " pg_catalog.format(' (%s)%s ON UPDATE %s ON DELETE %s%s',"
								  "   c.pcols, CASE k.confmatchtype WHEN 'f' THEN ' MATCH FULL' ELSE '' END,"
								  "   a.upd, a.del,"
								  "   CASE WHEN k.condeferred THEN ' DEFERRABLE INITIALLY DEFERRED'"
								  "        WHEN k.condeferrable THEN ' DEFERRABLE' ELSE '' END) AS def_after"
								  " FROM pg_catalog.pg_constraint k"
								  " CROSS JOIN LATERAL (SELECT"
								  "   pg_catalog.string_agg(pg_catalog.quote_ident(ca.attname), ', ' ORDER BY u.ord) AS ccols,"
								  "   pg_catalog.string_agg(pg_catalog.quote_ident(pa.attname), ', ' ORDER BY u.ord) AS pcols,"
								  "   pg_catalog.string_agg(pg_catalog.format('c.%I OPERATOR(pg_catalog.=) p.%I',"
								  "          ca.attname, pa.attname), ' AND ' ORDER BY u.ord) AS join"
								  "  FROM ROWS FROM (pg_catalog.unnest(k.conkey), pg_catalog.unnest(k.confkey))"
								  "       WITH ORDINALITY AS u(ck, pk, ord)"
								  "  JOIN pg_catalog.pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = u.ck"
								  "  JOIN pg_catalog.pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = u.pk) c"
								  " CROSS JOIN LATERAL (SELECT"
								  "   CASE k.confupdtype WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL'"
								  "        WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END AS upd,"
								  "   CASE k.confdeltype WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL'"
								  "        WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END AS del) a"
								  " WHERE k.conrelid = $1 AND k.contype = 'f'"
								  " ORDER BY k.conname",
								  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(sb->tables[i].relid)},
								  NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "listing foreign keys failed");
		MemoryContextSwitchTo(mine);
		tt = SPI_tuptable;
		n = SPI_processed;
		for (r = 0; r < n; r++)
		{
			bool		isnull;
			Oid			parent = DatumGetObjectId(SPI_getbinval(tt->vals[r], tt->tupdesc, 3, &isnull));
			int			p = EltSandboxTableIndex(sb, parent);
			SbFkey	   *f;

			if (p < 0)
			{
				ereport(NOTICE,
						(errmsg("foreign key %s of %s references %s, which is not copied: the sandbox leaves it out",
								SPI_getvalue(tt->vals[r], tt->tupdesc, 2), sb->tables[i].src,
								EltRelDisplayName(parent)),
						 errhint("Name that table's schema in from_schemas to keep the foreign key.")));
				continue;
			}
			if (sb->nfkeys % 8 == 0)
				sb->fkeys = repalloc(sb->fkeys, sizeof(SbFkey) * (sb->nfkeys + 8));
			f = &sb->fkeys[sb->nfkeys++];
			memset(f, 0, sizeof(SbFkey));
			f->conid = DatumGetObjectId(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull));
			f->name = SPI_getvalue(tt->vals[r], tt->tupdesc, 2);
			f->child = i;
			f->parent = p;
			f->def = SPI_getvalue(tt->vals[r], tt->tupdesc, 4);
			f->join = SPI_getvalue(tt->vals[r], tt->tupdesc, 5);
			f->def_after = SPI_getvalue(tt->vals[r], tt->tupdesc, 6);
		}
	}
}

/* ---------------------------------------------------------------------
 * Copies
 * ---------------------------------------------------------------------
 */

/*
 * Copying a table inserts its rows, which runs its CHECK constraints',
 * indexes', defaults' and generated columns' functions and operators and
 * its domains' checks with the rights of whoever inserts them; and the
 * copy keeps them, so the sandbox's owner would run them at every write.
 * Code that is not built in nor a superuser's (an extension's own objects
 * are: its script ran as a superuser — but not objects the owner of a
 * trusted extension added to it) is someone's, and must not run with the
 * caller's rights, a superuser's least of all: such a table is not copied.
 */
static void
check_foreign_code(Sandbox *sb, SbTable *t)
{
	char	   *what;

	if (SPI_execute_with_args(
							  "SELECT pg_catalog.string_agg(DISTINCT x, ', ') FROM ("
							  " SELECT CASE d.refclassid"
							  "   WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN d.refobjid::pg_catalog.regprocedure::pg_catalog.text"
							  "   WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN 'operator ' || d.refobjid::pg_catalog.regoperator::pg_catalog.text"
							  "   ELSE 'type ' || pg_catalog.format_type(d.refobjid, NULL) END AS x"
							  " FROM pg_catalog.pg_depend d"
							  " WHERE ((d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							  "         AND (d.objid = $1 OR d.objid IN (SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid = $1)))"
							  "     OR (d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass"
							  "         AND d.objid IN (SELECT k.oid FROM pg_catalog.pg_constraint k WHERE k.conrelid = $1))"
							  "     OR (d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass"
							  "         AND d.objid IN (SELECT a.oid FROM pg_catalog.pg_attrdef a WHERE a.adrelid = $1)))"
							  "   AND ((d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass"
							  "         AND (SELECT p.pronamespace FROM pg_catalog.pg_proc p WHERE p.oid = d.refobjid)"
							  "             <> 'pg_catalog'::pg_catalog.regnamespace)"
							  "     OR (d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass"
							  "         AND (SELECT o.oprnamespace FROM pg_catalog.pg_operator o WHERE o.oid = d.refobjid)"
							  "             <> 'pg_catalog'::pg_catalog.regnamespace)"
							  "     OR (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass"
							  "         AND EXISTS (SELECT 1 FROM pg_catalog.pg_type y WHERE y.oid = d.refobjid"
							  "                     AND y.typnamespace <> 'pg_catalog'::pg_catalog.regnamespace"
							  "                     AND y.typtype <> 'e' AND y.typrelid <> $1)))"
							  "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolsuper AND r.oid = CASE d.refclassid"
							  "         WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass"
							  "           THEN (SELECT p.proowner FROM pg_catalog.pg_proc p WHERE p.oid = d.refobjid)"
							  "         WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass"
							  "           THEN (SELECT o.oprowner FROM pg_catalog.pg_operator o WHERE o.oid = d.refobjid)"
							  "         ELSE (SELECT y.typowner FROM pg_catalog.pg_type y WHERE y.oid = d.refobjid) END)) s",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(t->relid)}, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading what %s depends on failed", t->src);
	what = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (what != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s cannot be copied into a sandbox: it uses code that is not built in: %s", t->src, what),
				 errdetail("Inserting its rows runs its constraints, indexes, defaults and domains, and its copy would keep them; "
						   "that code is its author's and would run with the rights of whoever copies or writes the copy."),
				 errhint("Leave that table's schema out of from_schemas.")));
}

/*
 * A Citus table is copied as a table of the same kind: hash-distributed on
 * the same column and colocated with it, or a reference table; a table
 * Citus manages on the coordinator alone (a Citus local table) as a plain
 * table.  Any other kind (append or range distribution, a single shard)
 * cannot be made alike: refused, before anything is made.
 */
static void
check_citus_kind(Sandbox *sb, SbTable *t)
{
	EltCitusTable ct;

	if (!EltCitusTableInfo(t->relid, &ct))
		return;
	sb->citus = true;
	if ((ct.method == 'h' && ct.column != NULL) || (ct.method == 'n' && ct.replication == 't') ||
		(ct.method == 'n' && ct.colocation == 0))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s cannot be copied into a sandbox: it is a Citus table neither hash-distributed nor a reference table",
					t->src),
			 errdetail("A sandbox's copy is distributed like its source, and only those two kinds are made alike."),
			 errhint("Leave that table's schema out of from_schemas.")));
}

/* While a foreign key is added to a copy: say what masking has to do with it. */
static void
fkey_context(void *arg)
{
	SbFkey	   *f = arg;

	errcontext("adding foreign key %s to the sandbox: the referencing and referenced columns must be masked by the same rule (hash, in one key domain) or not at all",
			   f->name);
}

/* INSERT the copy's rows, read and masked by the reader's statement; how many. */
static int64
copy_rows(Sandbox *sb, SbTable *t, Relation rel, Oid reader)
{
	static int	serial = 0;
	Oid			save_user;
	int			save_sec;
	volatile int64 rows = 0;
	char	   *volatile stage = NULL;
	EltCitusTable ct;

	if (sb->synth)
		return EltSynthRows(sb->synth, t->relid, rel, sb->masked, reader, &t->asked);
	/*
	 * A masked copy of a Citus table: elt._mask works only in this backend
	 * (its token and keys never leave it), and Citus would run the copying
	 * statement on the shards, in the workers' backends, where it refuses.
	 * So the rows are first read (unmasked, by the reader, who may read
	 * them) into a temporary table of this backend, and masked from there
	 * on the coordinator; Citus then writes them to the copy's shards.
	 */
	if (sb->masked && EltCitusTableInfo(t->relid, &ct))
	{
		stage = psprintf("pg_temp.elt_sandbox_rows_%d", ++serial);
		EltSpiExec(psprintf("CREATE TEMPORARY TABLE %s ON COMMIT DROP AS SELECT * FROM %s WITH NO DATA",
							stage, t->from));
	}
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(reader, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		char	   *columns = NULL;
		char	   *list = EltMaskBegin(rel, sb->masked, true, &columns);
		const char *from = t->from;
		const char *kept = t->keys ? EltSandboxKeptRows(t, "m", t->keys) : NULL;
		char	   *sql;

		if (stage != NULL)
		{
			EltSpiExec(psprintf("INSERT INTO %s SELECT * FROM %s AS m%s%s", stage, t->from,
								kept ? " WHERE " : "", kept ? kept : ""));
			from = stage;
			kept = NULL;
		}
		sql = psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s AS m%s%s",
					   t->dst, columns, list, from, kept ? " WHERE " : "", kept ? kept : "");

		if (SPI_execute_with_args(sql, 1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(EltMaskToken())},
								  NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "copying %s failed", t->src);
		rows = (int64) SPI_processed;
	}
	PG_FINALLY();
	{
		EltMaskEnd();
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	if (stage != NULL)
		EltSpiExec(psprintf("DROP TABLE %s", stage));
	return rows;
}

/* The copy of one table, made by the caller; its rows read by `reader`. */
static void
copy_table(Sandbox *sb, SbTable *t, Oid reader)
{
	Relation	rel = table_open(t->relid, NoLock);
	uint64		i;
	SPITupleTable *tt;
	uint64		n;
	Oid			nsp = get_namespace_oid(sb->name, false);

	/* generated columns are computed again, from the masked values */
	EltSpiExec(psprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
						" INCLUDING INDEXES INCLUDING IDENTITY INCLUDING GENERATED INCLUDING COMMENTS)",
						t->dst, t->src));
	/* serial columns: a sequence of the sandbox's own, not the source's */
	if (SPI_execute_with_args("SELECT a.attname FROM pg_catalog.pg_attribute a"
							  " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped"
							  " AND a.attidentity = '' AND pg_catalog.pg_get_serial_sequence($2, a.attname) IS NOT NULL"
							  " ORDER BY a.attnum",
							  2, (Oid[]) {OIDOID, TEXTOID},
							  (Datum[]) {ObjectIdGetDatum(t->relid), CStringGetTextDatum(t->src)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "listing serial columns failed");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		char	   *col = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		char	   *seq = quote_qualified_identifier(sb->name,
													 ChooseRelationName(get_rel_name(t->relid), col, "seq", nsp, false));

		EltSpiExec(psprintf("CREATE SEQUENCE %s OWNED BY %s.%s", seq, t->dst, quote_identifier(col)));
		EltSpiExec(psprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT pg_catalog.nextval(%s::pg_catalog.regclass)",
							t->dst, quote_identifier(col), quote_literal_cstr(seq)));
	}
	/*
	 * A copy of a Citus table is distributed like it, colocated with it (a
	 * reference table's copy is a reference table), while the caller owns
	 * it (Citus distributes only its owner's tables)
	 */
	CommandCounterIncrement();
	if (sb->citus)
		(void) EltCitusDistributeLike(get_relname_relid(get_rel_name(t->relid), nsp), t->relid, InvalidOid);
	/* the owner's from the start (its sequences with it), so that its own reading can write it */
	if (sb->owner != sb->creator)
		EltSpiExec(psprintf("ALTER TABLE %s OWNER TO %s", t->dst,
							quote_identifier(GetUserNameFromId(sb->owner, false))));

	/*
	 * Indexes (and the constraints they back) are built after copied rows:
	 * one sort each instead of an insert per row into them, which for
	 * hashed keys lands on a random page every time.  Made again from the
	 * copy's own definitions, with their comments.  Not for synthetic rows,
	 * which the unique indexes sort out as they are inserted.
	 */
	if (SPI_execute_with_args("SELECT CASE WHEN k.oid IS NULL THEN pg_catalog.pg_get_indexdef(i.indexrelid)"
							  "   ELSE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', $2, k.conname,"
							  "                          pg_catalog.pg_get_constraintdef(k.oid)) END AS make,"
							  " CASE WHEN k.oid IS NULL THEN pg_catalog.format('DROP INDEX %s', i.indexrelid::pg_catalog.regclass)"
							  "   ELSE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', $2, k.conname) END AS drop,"
							  " CASE WHEN k.oid IS NULL THEN pg_catalog.format('COMMENT ON INDEX %s IS %L',"
							  "        i.indexrelid::pg_catalog.regclass, pg_catalog.obj_description(i.indexrelid, 'pg_class'))"
							  "   ELSE pg_catalog.format('COMMENT ON CONSTRAINT %I ON %s IS %L', k.conname, $2,"
							  "        pg_catalog.obj_description(k.oid, 'pg_constraint')) END AS comment"
							  " FROM pg_catalog.pg_index i"
							  " LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid"
							  "      AND k.contype IN ('p', 'u', 'x')"
							  " WHERE i.indrelid = $1::pg_catalog.regclass"
							  " ORDER BY k.contype = 'p' DESC NULLS LAST, i.indexrelid",
							  2, (Oid[]) {TEXTOID, TEXTOID},
							  (Datum[]) {CStringGetTextDatum(t->dst), CStringGetTextDatum(t->dst)},
							  NULL, false, 0) != SPI_OK_SELECT)	/* sees the new table */
		elog(ERROR, "listing the copy's indexes failed");
	tt = SPI_tuptable;
	n = SPI_processed;
	{
		char	  **make = palloc0(sizeof(char *) * Max(n, 1));
		char	  **drop = palloc0(sizeof(char *) * Max(n, 1));
		char	  **comment = palloc0(sizeof(char *) * Max(n, 1));
		/* synthetic rows are checked against the unique indexes as they are made */
		uint64		nidx = sb->synth ? 0 : n;

		for (i = 0; i < nidx; i++)
		{
			make[i] = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
			drop[i] = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
			comment[i] = SPI_getvalue(tt->vals[i], tt->tupdesc, 3);	/* NULL: none */
		}
		for (i = 0; i < nidx; i++)
			EltSpiExec(drop[i]);

		/* the rows: read (and masked) by the reader's statement */
		t->rows = copy_rows(sb, t, rel, reader);

		for (i = 0; i < nidx; i++)
		{
			EltSpiExec(make[i]);
			if (comment[i] != NULL)
				EltSpiExec(comment[i]);
		}
	}

	/* sequences and identities go on after the copied rows (hashed keys may be anywhere) */
	if (SPI_execute_with_args("SELECT a.attname FROM pg_catalog.pg_attribute a"
							  " WHERE a.attrelid = $1::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped"
							  " AND pg_catalog.pg_get_serial_sequence($2, a.attname) IS NOT NULL",
							  2, (Oid[]) {TEXTOID, TEXTOID},
							  (Datum[]) {CStringGetTextDatum(t->dst), CStringGetTextDatum(t->dst)},
							  NULL, false, 0) != SPI_OK_SELECT)	/* sees the new table */
		elog(ERROR, "listing sequences failed");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		char	   *col = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);

		EltSpiExec(psprintf("SELECT pg_catalog.setval(x.seq, CASE WHEN x.v >= x.mx THEN x.mx"
							"   ELSE GREATEST(x.v + 1, x.mn) END, x.v >= x.mx)"
							" FROM (SELECT q.seq, p.seqmax AS mx, p.seqmin AS mn,"
							"        COALESCE((SELECT pg_catalog.max(%s)::pg_catalog.int8 FROM %s), p.seqmin) AS v"
							"       FROM (SELECT pg_catalog.pg_get_serial_sequence(%s, %s)::pg_catalog.regclass AS seq) q"
							"       JOIN pg_catalog.pg_sequence p ON p.seqrelid OPERATOR(pg_catalog.=) q.seq) x",
							quote_identifier(col), t->dst, quote_literal_cstr(t->dst), quote_literal_cstr(col)));
	}
	table_close(rel, NoLock);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/* The catalog row and the manifest of a new sandbox. */
static int64
record_sandbox(Sandbox *sb, TimestampTz expires, EltCatalogWrite *cw)
{
	StringInfoData tables;
	EltJson		m;
	int			i;
	ArrayBuildState *schemas = NULL;
	ListCell   *lc;
	int64		id;
	bool		isnull;
	char	   *sample = sb->sample ? JsonbToCString(NULL, &sb->sample->root, VARSIZE(sb->sample)) : NULL;

	initStringInfo(&tables);
	EltJsonBegin(&m);
	EltJsonInt(&m, "seed", sb->seed);
	EltJsonBool(&m, "masked", sb->masked);
	EltJsonBool(&m, "synthetic", sb->synth != NULL);
	if (sample)
		EltJsonRaw(&m, "sample", sample);
	else
		EltJsonNull(&m, "sample");
	EltJsonBeginArray(&m, "tables");
	for (i = 0; i < sb->ntables; i++)
	{
		SbTable    *t = &sb->tables[i];

		EltJsonBeginObject(&m, NULL);
		EltJsonString(&m, "source", t->src);
		EltJsonString(&m, "copy", t->dst);
		EltJsonInt(&m, "rows", t->rows);
		if (sb->synth)
			EltJsonInt(&m, "rows_asked", t->asked);
		EltJsonString(&m, "source_checksum", t->checksum);
		if (sb->sample && !sb->synth)
			EltJsonString(&m, "sampled_checksum", t->sampled);
		EltJsonRaw(&m, "masking", sb->masked ? t->rules : "{}");
		EltJsonEndObject(&m);
	}
	EltJsonEndArray(&m);
	foreach(lc, sb->schemas)
		schemas = accumArrayResult(schemas, CStringGetTextDatum(lfirst(lc)), false, TEXTOID, CurrentMemoryContext);
	if (SPI_execute_with_args("INSERT INTO elt.sandbox_defs (name, owner, created_by, expires_at, sources,"
							  " sample, masked, seed, manifest, schema_oid)"
							  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING sandbox_id",
							  10, (Oid[]) {NAMEOID, OIDOID, OIDOID, TIMESTAMPTZOID, TEXTARRAYOID, JSONBOID, BOOLOID,
								  INT8OID, JSONBOID, OIDOID},
							  (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(sb->name)),
								  ObjectIdGetDatum(sb->owner), ObjectIdGetDatum(sb->creator),
								  TimestampTzGetDatum(expires), makeArrayResult(schemas, CurrentMemoryContext),
								  sb->sample ? JsonbPGetDatum(sb->sample) : (Datum) 0, BoolGetDatum(sb->masked),
								  Int64GetDatum(sb->seed),
								  DirectFunctionCall1(jsonb_in, CStringGetDatum(EltJsonFinish(&m))),
								  ObjectIdGetDatum(sb->schema_oid)},
							  sb->sample ? "          " : "     n    ", false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "recording the sandbox failed");
	id = EltSpiGetInt64(0, "sandbox_id", &isnull);
	return id;
}

/* Refuse a name that is taken, reserved or not a plain identifier. */
static void
check_new_name(const char *name)
{
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("a sandbox needs a name of 1 to %d bytes", NAMEDATALEN - 1)));
	if (OidIsValid(get_namespace_oid(name, true)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_SCHEMA),
				 errmsg("schema \"%s\" already exists", name),
				 errhint("A sandbox is a schema of its own: choose another name, or drop the old sandbox with elt.sandbox_drop.")));
}

/* Whether role may read every column of relid. */
static bool
reads_all(Oid relid, Oid role)
{
	return pg_class_aclcheck(relid, role, ACL_SELECT) == ACLCHECK_OK ||
		pg_attribute_aclcheck_all(relid, role, ACL_SELECT, ACLMASK_ALL) == ACLCHECK_OK;
}

/* The source schemas, checked: they exist and the reader may use them. */
static void
set_sources(Sandbox *sb, Oid reader, char **names, int n)
{
	int			i;

	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_schemas must name at least one schema")));
	sb->schemas = NIL;
	for (i = 0; i < n; i++)
	{
		char	   *schema = names[i];
		Oid			nsp;

		if (schema == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("from_schemas must not hold nulls")));
		nsp = get_namespace_oid(schema, false);
		if (pg_namespace_aclcheck(nsp, reader, ACL_USAGE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for schema %s", schema),
					 reader != sb->creator ? errdetail("An unmasked sandbox is read with the rights of its owner, %s.",
													   GetUserNameFromId(reader, false)) : 0));
		if (strcmp(schema, sb->name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a sandbox cannot copy itself")));
		sb->schemas = lappend(sb->schemas, schema);
	}
}

/*
 * Make the sandbox sb describes (its arguments checked), read by reader,
 * expiring at expires_at; one result row per copy into rsinfo; audited as
 * action.
 */
static void
make_sandbox(Sandbox *sbp, Oid reader, TimestampTz expires_at, const char *action, ReturnSetInfo *rsinfo)
{
	Sandbox		sb = *sbp;
	int			guc_level;
	int			i;
	int64		sandbox_id;
	int		   *order = NULL;
	int			citus_level = 0;
	MemoryContext outer = CurrentMemoryContext;

	guc_level = EltPinPrintSettings();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);

		list_tables(&sb);
		MemoryContextSwitchTo(spi);
	}
	for (i = 0; i < sb.ntables; i++)
	{
		SbTable    *t = &sb.tables[i];

		if (!reads_all(t->relid, reader))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("role %s may not read every column of %s", GetUserNameFromId(reader, false), t->src),
					 reader != sb.creator ? errdetail("An unmasked sandbox is read with the rights of its owner.")
					 : errdetail("A sandbox copies whole tables: it needs SELECT on each."),
					 errhint("Leave that schema out, or ask for SELECT on the table.")));
		check_foreign_code(&sb, t);
		check_citus_kind(&sb, t);

		/*
		 * A consistent copy: no writes to the sources meanwhile, where the
		 * caller may lock them so (LOCK TABLE … IN SHARE MODE needs UPDATE,
		 * DELETE or TRUNCATE); under REPEATABLE READ every statement reads
		 * one snapshot anyway.  Privileges are checked first: a role that
		 * may not read a table never queues a lock on it.
		 */
		if (!sb.synth && !IsolationUsesXactSnapshot() &&
			pg_class_aclcheck(t->relid, sb.creator, ACL_UPDATE | ACL_DELETE | ACL_TRUNCATE) == ACLCHECK_OK)
			LockRelationOid(t->relid, ShareLock);
	}
	/*
	 * Citus puts the new schema on the workers with its first copy, and
	 * only if nothing ran on shards in parallel before in the transaction
	 */
	if (sb.citus)
		citus_level = EltCitusSequentialForSchema(InvalidOid);
	/* a sandbox of Citus tables tells kept rows apart by key (sandbox_sample.c) */
	for (i = 0; i < sb.ntables; i++)
		sb.tables[i].bykey = sb.citus;
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);

		list_fkeys(&sb);
		MemoryContextSwitchTo(spi);
	}
	EltSpiExec(psprintf("CREATE SCHEMA %s AUTHORIZATION %s", quote_identifier(sb.name),
						quote_identifier(GetUserNameFromId(sb.owner, false))));
	if (sb.synth)
	{
		/* synthetic rows: parents first, each copy's rows generated, not read */
		MemoryContext spi = MemoryContextSwitchTo(outer);
		Oid		   *relids = palloc(sizeof(Oid) * sb.ntables);
		const char **dsts = palloc(sizeof(char *) * sb.ntables);

		for (i = 0; i < sb.ntables; i++)
		{
			relids[i] = sb.tables[i].relid;
			dsts[i] = sb.tables[i].dst;
		}
		MemoryContextSwitchTo(spi);
		order = EltSynthPlan(sb.synth, sb.seed, sb.ntables, relids, dsts, reader);
	}
	else if (sb.sample)
		EltSandboxSample(&sb, reader);
	for (i = 0; i < sb.ntables; i++)
	{
		SbTable    *t = &sb.tables[order ? order[i] : i];
		Relation	rel = table_open(t->relid, NoLock);
		MemoryContext spi = MemoryContextSwitchTo(outer);

		/*
		 * as for runs: elt.manifest_policy = none records no checksum; nor
		 * does a table whose row-level security applies to the caller (its
		 * checksum would be of rows it cannot see); nor a synthetic copy
		 * (no row of the source is read)
		 */
		if (!sb.synth && EltManifestChecksums() &&
			check_enable_rls(t->relid, InvalidOid, true) != RLS_ENABLED)
		{
			/*
			 * a sample: of the rows it took, not of the whole source (but
			 * for Citus tables, whose rows it keeps by key, not by TID)
			 */
			if (t->keys != NULL && !t->bykey)
				t->sampled = EltSandboxKeptChecksum(t);
			else
				t->checksum = EltTableChecksum(t->relid, NIL);
		}
		t->rules = EltMaskRulesJson(rel);
		MemoryContextSwitchTo(spi);
		table_close(rel, NoLock);
		copy_table(&sb, t, reader);
	}
	if (sb.synth)
		EltSynthFinish(sb.synth, reader);
	/* the foreign keys between the copies, checked on their rows */
	for (i = 0; i < sb.nfkeys; i++)
	{
		SbFkey	   *f = &sb.fkeys[i];
		ErrorContextCallback cb;

		cb.callback = fkey_context;
		cb.arg = f;
		cb.previous = error_context_stack;
		error_context_stack = &cb;
		EltSpiExec(psprintf("ALTER TABLE %s ADD CONSTRAINT %s %s%s%s", sb.tables[f->child].dst,
							quote_identifier(f->name), f->def, sb.tables[f->parent].dst, f->def_after));
		error_context_stack = cb.previous;
	}
	/*
	 * The owner's alone: whatever default privileges granted on the new
	 * schema, tables and sequences to others is revoked.
	 */
	{
		uint64		r,
					nr;
		SPITupleTable *tt;
		Oid			nsp = get_namespace_oid(sb.name, false);

		if (SPI_execute_with_args("SELECT pg_catalog.format('REVOKE ALL ON %s %s FROM %s', o.kind, o.name,"
								  "   CASE WHEN a.grantee = 0 THEN 'PUBLIC'"
								  "        ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END) AS sql"
								  " FROM (SELECT 'SCHEMA' AS kind, pg_catalog.quote_ident(n.nspname) AS name, n.nspacl AS acl,"
								  "              n.nspowner AS owner FROM pg_catalog.pg_namespace n WHERE n.oid = $1"
								  "       UNION ALL"
								  "       SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,"
								  "              pg_catalog.format('%I.%I', n.nspname, c.relname), c.relacl, c.relowner"
								  "       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
								  "       WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'S')) o,"
								  "      pg_catalog.aclexplode(o.acl) a"
								  " WHERE a.grantee <> o.owner GROUP BY 1",
								  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(nsp)}, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading the sandbox's privileges failed");
		tt = SPI_tuptable;
		nr = SPI_processed;
		for (r = 0; r < nr; r++)
			EltSpiExec(SPI_getvalue(tt->vals[r], tt->tupdesc, 1));
		sb.schema_oid = nsp;
	}
	SPI_finish();
	if (citus_level > 0)
		AtEOXact_GUC(true, citus_level);
	AtEOXact_GUC(true, guc_level);

	{
		EltCatalogWrite cw;
		EltJson		d;

		EltCatalogWriteBegin(&cw);
		sandbox_id = record_sandbox(&sb, expires_at, &cw);
		EltJsonBegin(&d);
		EltJsonInt(&d, "sandbox_id", sandbox_id);
		EltJsonString(&d, "owner", GetUserNameFromId(sb.owner, false));
		EltJsonBool(&d, "masked", sb.masked);
		EltJsonInt(&d, "tables", sb.ntables);
		if (sb.sample)
			EltJsonRaw(&d, "sample", JsonbToCString(NULL, &sb.sample->root, VARSIZE(sb.sample)));
		EltAuditRecord(cw.actor, action, sb.name, EltJsonFinish(&d), EltAuditReason(NULL));
		EltCatalogWriteEnd(&cw);
	}
	for (i = 0; i < sb.ntables; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = ObjectIdGetDatum(get_relname_relid(get_rel_name(sb.tables[i].relid),
													   get_namespace_oid(sb.name, false)));
		values[1] = ObjectIdGetDatum(sb.tables[i].relid);
		values[2] = Int64GetDatum(sb.tables[i].rows);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}


PG_FUNCTION_INFO_V1(elt_sandbox_create);

/*
 * elt.sandbox_create(name name, from_schemas name[], sample jsonb DEFAULT
 * NULL, masked boolean DEFAULT true, expires interval DEFAULT '7 days',
 * owner regrole DEFAULT NULL) RETURNS TABLE (relation regclass, source
 * regclass, rows bigint): see the file header.
 */
Datum
elt_sandbox_create(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	Sandbox		sb;
	Interval   *expires;
	TimestampTz expires_at;
	Datum	   *elems;
	bool	   *enulls;
	int			nelems;
	int			i;
	Oid			reader;
	char	  **names;

	memset(&sb, 0, sizeof(sb));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name and from_schemas must not be null")));
	EltRequireCatalog("sandbox_defs");
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	sb.name = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	sb.sample = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P_COPY(2);
	sb.masked = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);
	sb.creator = GetUserId();
	sb.owner = PG_ARGISNULL(5) ? sb.creator : PG_GETARG_OID(5);
	check_new_name(sb.name);

	/* expiry: in the future */
	if (PG_ARGISNULL(4))
		expires_at = TimestampTzPlusMilliseconds(GetCurrentTransactionStartTimestamp(),
												 (int64) 7 * 24 * 3600 * 1000);
	else
	{
		expires = PG_GETARG_INTERVAL_P(4);
		expires_at = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
															 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
															 IntervalPGetDatum(expires)));
		if (expires_at <= GetCurrentTransactionStartTimestamp())
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("expires must be in the future"),
					 errhint("Give how long the sandbox lives, for example interval '3 days'.")));
	}

	/* the owner: the caller, or a role whose privileges the caller has */
	if (!OidIsValid(sb.owner) || !SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(sb.owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("owner does not name a role")));
	if (!EltCanSetRole(sb.creator, sb.owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to make a sandbox for role %s", GetUserNameFromId(sb.owner, false)),
				 errhint("Be a member of role %s, or make the sandbox for yourself.",
						 GetUserNameFromId(sb.owner, false))));
	/* unmasked copies are read with the owner's rights: it gets only what it may read */
	reader = sb.masked ? sb.creator : sb.owner;

	deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
					  &elems, &enulls, &nelems);
	names = palloc0(sizeof(char *) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
		names[i] = enulls[i] ? NULL : pstrdup(NameStr(*DatumGetName(elems[i])));
	set_sources(&sb, reader, names, nelems);
	if (!pg_strong_random(&sb.seed, sizeof(sb.seed)))
		sb.seed = (int64) GetCurrentTransactionStartTimestamp();
	sb.seed &= INT64CONST(0x1fffffffffffff);	/* a JSON number reads back exactly */
	parse_sample(&sb);

	make_sandbox(&sb, reader, expires_at, "sandbox_create", rsinfo);
	return (Datum) 0;
}

/*
 * The schema a sandbox is now: the one it was made as (by OID), whatever
 * its name; after a dump and restore (new OIDs), the schema of its name if
 * its recorded owner owns it.  InvalidOid when there is none: a schema that
 * merely took the name is never the sandbox.  *owner gets its owner.
 */
static Oid
sandbox_schema(const char *name, Oid schema_oid, Oid recorded_owner, Oid *owner)
{
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(schema_oid));
	Oid			nsp = InvalidOid;

	if (HeapTupleIsValid(tup))
	{
		nsp = schema_oid;
		*owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
		return nsp;
	}
	nsp = get_namespace_oid(name, true);
	if (OidIsValid(nsp) && EltNamespaceOwner(nsp) == recorded_owner)
	{
		/* made before a restore: only if no live sandbox row names that schema by OID */
		if (SPI_execute_with_args("SELECT 1 FROM elt.sandbox_defs WHERE schema_oid = $1", 1, (Oid[]) {OIDOID},
								  (Datum[]) {ObjectIdGetDatum(nsp)}, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading the sandboxes failed");
		if (SPI_processed == 0)
		{
			*owner = recorded_owner;
			return nsp;
		}
	}
	return InvalidOid;
}

/*
 * Drop a sandbox's schema as its owner, and its catalog row.  Inside the
 * catalog write context.
 */
static void
drop_sandbox(const char *name, Oid nsp, Oid owner, Oid actor, const char *action, const char *reason)
{
	Oid			save_user;
	int			save_sec;
	int			guc_level;
	char	   *dropped = NULL;
	EltJson		d;

	if (OidIsValid(nsp))
	{
		dropped = get_namespace_name(nsp);
		GetUserIdAndSecContext(&save_user, &save_sec);
		SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
		guc_level = NewGUCNestLevel();
		(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		EltSpiExec(psprintf("DROP SCHEMA %s CASCADE", quote_identifier(dropped)));
		AtEOXact_GUC(true, guc_level);
		SetUserIdAndSecContext(save_user, save_sec);
	}
	if (SPI_execute_with_args("DELETE FROM elt.sandbox_defs WHERE name = $1", 1, (Oid[]) {NAMEOID},
							  (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(name))}, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "forgetting the sandbox failed");
	if (action == NULL)
		return;					/* a refresh: audited once, when made again */
	EltJsonBegin(&d);
	EltJsonString(&d, "schema_dropped", dropped);
	EltAuditRecord(actor, action, name, EltJsonFinish(&d), EltAuditReason(reason));
}

PG_FUNCTION_INFO_V1(elt_sandbox_drop);

/* elt.sandbox_drop(name name, reason text DEFAULT NULL) RETURNS boolean */
Datum
elt_sandbox_drop(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *reason = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	EltCatalogWrite cw;
	Oid			recorded_owner,
				schema_oid,
				owner,
				nsp;
	bool		isnull;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null")));
	name = NameStr(*PG_GETARG_NAME(0));
	EltRequireCatalog("sandbox_defs");
	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("SELECT owner::pg_catalog.oid AS owner, schema_oid"
							  " FROM elt.sandbox_defs WHERE name = $1 FOR UPDATE",
							  1, (Oid[]) {NAMEOID}, (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(name))},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the sandbox failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("there is no sandbox \"%s\"", name),
				 errhint("elt.sandboxes lists the sandboxes you may see.")));
	recorded_owner = DatumGetObjectId(EltSpiGetDatum(0, "owner", &isnull));
	schema_oid = DatumGetObjectId(EltSpiGetDatum(0, "schema_oid", &isnull));
	owner = recorded_owner;
	nsp = sandbox_schema(name, schema_oid, recorded_owner, &owner);
	/* the rights of its owner now (or elt_admin): having made it once is not enough */
	if (!has_privs_of_role(cw.actor, owner) && !has_privs_of_role(cw.actor, recorded_owner) &&
		!EltRoleIsAdmin(cw.actor))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to drop sandbox \"%s\"", name),
				 errhint("Members of its owner, members of %s and superusers may.", ELT_ROLE_ADMIN)));
	drop_sandbox(name, nsp, owner, cw.actor, "sandbox_drop", reason);
	EltCatalogWriteEnd(&cw);
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(elt_sandbox_refresh);

/*
 * elt.sandbox_refresh(name name) RETURNS TABLE (relation regclass, source
 * regclass, rows bigint): the sandbox made again from the same sources,
 * sample and seed, masked the same way, for the same owner and expiry; its
 * old copies are dropped first (in the same transaction).  By members of
 * its owner, as sandbox_create.
 */
Datum
elt_sandbox_refresh(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	Sandbox		sb;
	EltCatalogWrite cw;
	char	   *name;
	Oid			owner,
				schema_oid,
				nsp,
				reader;
	TimestampTz expires_at;
	Datum	   *elems;
	bool	   *enulls;
	int			nelems,
				i;
	char	  **names;
	bool		isnull;
	Datum		d;
	MemoryContext outer = CurrentMemoryContext;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null")));
	EltRequireCatalog("sandbox_defs");
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	name = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	memset(&sb, 0, sizeof(sb));

	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("SELECT owner::pg_catalog.oid AS owner, schema_oid, expires_at, sources, sample,"
							  " masked, seed FROM elt.sandbox_defs WHERE name = $1 FOR UPDATE",
							  1, (Oid[]) {NAMEOID}, (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(name))},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the sandbox failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("there is no sandbox \"%s\"", name),
				 errhint("elt.sandboxes lists the sandboxes you may see.")));
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);

		owner = DatumGetObjectId(EltSpiGetDatum(0, "owner", &isnull));
		schema_oid = DatumGetObjectId(EltSpiGetDatum(0, "schema_oid", &isnull));
		expires_at = DatumGetTimestampTz(EltSpiGetDatum(0, "expires_at", &isnull));
		d = EltSpiGetDatum(0, "sources", &isnull);
		deconstruct_array(DatumGetArrayTypePCopy(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &nelems);
		names = palloc0(sizeof(char *) * Max(nelems, 1));
		for (i = 0; i < nelems; i++)
			names[i] = enulls[i] ? NULL : TextDatumGetCString(elems[i]);
		d = EltSpiGetDatum(0, "sample", &isnull);
		sb.sample = isnull ? NULL : DatumGetJsonbPCopy(d);
		sb.masked = DatumGetBool(EltSpiGetDatum(0, "masked", &isnull));
		sb.seed = DatumGetInt64(EltSpiGetDatum(0, "seed", &isnull));
		MemoryContextSwitchTo(spi);
	}
	if (expires_at <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sandbox \"%s\" has expired", name),
				 errhint("Make a new one with elt.sandbox_create.")));
	sb.name = name;
	sb.owner = owner;
	sb.creator = cw.actor;
	if (!EltCanSetRole(sb.creator, sb.owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to refresh sandbox \"%s\"", name),
				 errhint("Members of its owner, %s, may: it is made again as sandbox_create makes it.",
						 GetUserNameFromId(sb.owner, false))));
	nsp = sandbox_schema(name, schema_oid, owner, &owner);
	drop_sandbox(name, nsp, owner, cw.actor, NULL, NULL);
	EltCatalogWriteEnd(&cw);
	MemoryContextSwitchTo(outer);

	check_new_name(sb.name);
	reader = sb.masked ? sb.creator : sb.owner;
	set_sources(&sb, reader, names, nelems);
	parse_sample(&sb);
	make_sandbox(&sb, reader, expires_at, "sandbox_refresh", rsinfo);
	return (Datum) 0;
}

/* One expired sandbox dropped, in a subtransaction. */
typedef struct ExpireOne
{
	char	   *name;
	Oid			owner;
	Oid			schema_oid;
	Oid			actor;
} ExpireOne;

static void
expire_one_fn(void *arg)
{
	ExpireOne  *e = arg;
	Oid			owner = e->owner;
	Oid			nsp = sandbox_schema(e->name, e->schema_oid, e->owner, &owner);

	drop_sandbox(e->name, nsp, owner, e->actor, "sandbox_expire", "expired");
}

/*
 * Drop every expired sandbox (each in a subtransaction: one that fails is
 * logged and left for the next time); returns how many went.  Called by
 * the launcher's scanner and by elt.sandbox_expire().
 */
int
EltSandboxExpire(void)
{
	EltCatalogWrite cw;
	uint64		i,
				n;
	int			dropped = 0;
	ExpireOne  *todo;
	MemoryContext outer = CurrentMemoryContext;

	if (!OidIsValid(EltCatalogRelid("sandbox_defs")))
		return 0;
	EltCatalogWriteBegin(&cw);
	if (SPI_execute("SELECT name::pg_catalog.text AS name, owner::pg_catalog.oid AS owner, schema_oid FROM elt.sandbox_defs"
					" WHERE expires_at <= pg_catalog.now() ORDER BY expires_at", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the sandboxes failed");
	n = SPI_processed;
	todo = MemoryContextAllocZero(outer, sizeof(ExpireOne) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		todo[i].name = MemoryContextStrdup(outer, EltSpiGetText(i, "name"));
		todo[i].owner = DatumGetObjectId(EltSpiGetDatum(i, "owner", &isnull));
		todo[i].schema_oid = DatumGetObjectId(EltSpiGetDatum(i, "schema_oid", &isnull));
		todo[i].actor = cw.actor;
	}
	for (i = 0; i < n; i++)
	{
		ErrorData  *edata = EltTrySubxact(expire_one_fn, &todo[i]);

		if (edata)
		{
			ereport(LOG,
					(errmsg("elt_governance: could not drop expired sandbox \"%s\": %s",
							todo[i].name, edata->message)));
			FreeErrorData(edata);
		}
		else
			dropped++;
	}
	EltCatalogWriteEnd(&cw);
	return dropped;
}

PG_FUNCTION_INFO_V1(elt_sandbox_expire);

/* elt.sandbox_expire() RETURNS integer: drop the expired sandboxes now (elt_admin). */
Datum
elt_sandbox_expire(PG_FUNCTION_ARGS)
{
	EltRequireCatalog("sandbox_defs");
	if (!EltRoleIsAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to expire sandboxes"),
				 errhint("Members of %s and superusers may; the launcher drops expired sandboxes by itself.",
						 ELT_ROLE_ADMIN)));
	PG_RETURN_INT32(EltSandboxExpire());
}
