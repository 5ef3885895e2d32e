/*
 * sandbox_synth_plan.c — synthetic sandboxes, before any row: the
 * arguments of a synthetic sample (EltSynthParse) and the plan
 * (EltSynthPlan): the foreign keys between the sandbox's tables, an order
 * parents first (a cycle refused; a NOT NULL self-reference refused), and
 * how many rows each table gets, by scale times its row estimate or as
 * "rows" says; a table that should get rows and whose statistics the
 * reader cannot see (never analyzed, or hidden by pg_stats for row-level
 * security) is refused, and so is a Citus table (its statistics are on
 * its shards).  sandbox_synth.c generates the rows.
 *
 * Layering: called by sandbox.c (EltSynthParse, EltSynthPlan) and
 * sandbox_synth.c (the helpers of sandbox_synth_int.h); calls util and
 * citus.c.
 * Reads the catalog and pg_stats inside sandbox.c's SPI connection, as the
 * reader where pg_stats' filtering matters; reads one row of a source
 * never analyzed, to tell whether it is empty.  Locks: none.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "citus.h"
#include "pg_compat.h"
#include "sandbox.h"
#include "sandbox_synth_int.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * Arguments
 * ---------------------------------------------------------------------
 */

/* A number of the sample (what: its name, for the error). */
static double
synth_number(JsonbValue *v, const char *what)
{
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample %s must be a number", what)));
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

/*
 * The synthetic sample's arguments, checked: NULL when sample asks for no
 * synthetic rows.  *seed gets the seed it gives, if any.  Table names in
 * "rows" are resolved now, on the caller's search_path.
 */
EltSynth *
EltSynthParse(Jsonb *sample, int64 *seed)
{
	JsonbValue *a;
	JsonbIteratorToken tok;
	char	   *unknown;
	EltSynth   *s;

	if (sample == NULL || !JB_ROOT_IS_OBJECT(sample))
		return NULL;
	a = getKeyJsonValueFromContainer(&sample->root, "synthetic", strlen("synthetic"), NULL);
	if (a == NULL)
		return NULL;
	if (a->type != jbvBool || !a->val.boolean)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample synthetic must be true"),
				 errhint("Leave synthetic out for a sample of real rows.")));
	s = palloc0(sizeof(EltSynth));
	s->cxt = CurrentMemoryContext;
	s->scale = 1;
	unknown = EltSandboxUnknownKey(sample, (const char *const[]) {"synthetic", "scale", "rows", "seed", NULL});
	if (unknown != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a synthetic sample takes no \"%s\"", unknown),
				 errdetail("Synthetic rows are generated from statistics: no row of the source is chosen."),
				 errhint("A synthetic sample takes scale, rows (an object of row counts per table) and seed.")));
	if ((a = getKeyJsonValueFromContainer(&sample->root, "scale", strlen("scale"), NULL)) != NULL)
	{
		s->scale = synth_number(a, "scale");
		if (!(s->scale > 0 && s->scale <= 1e6))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample scale must be above 0 and at most 1000000"),
					 errhint("Each table gets scale times its rows, for example 0.1 for a tenth.")));
	}
	if ((a = getKeyJsonValueFromContainer(&sample->root, "seed", strlen("seed"), NULL)) != NULL)
	{
		double		d = synth_number(a, "seed");

		if (d != floor(d) || fabs(d) > 9e15)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample seed must be a whole number")));
		*seed = (int64) d;
	}
	if ((a = getKeyJsonValueFromContainer(&sample->root, "rows", strlen("rows"), NULL)) != NULL)
	{
		JsonbIterator *ri;
		JsonbValue	rv;
		char	   *name = NULL;

		if (a->type != jbvBinary || !JsonContainerIsObject(a->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample rows of a synthetic sample must be an object of row counts per table"),
					 errhint("For example '{\"synthetic\": true, \"rows\": {\"shop.orders\": 1000000}}'.")));
		ri = JsonbIteratorInit(a->val.binary.data);
		while ((tok = JsonbIteratorNext(&ri, &rv, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				name = pnstrdup(rv.val.string.val, rv.val.string.len);
			else if (tok == WJB_VALUE)
			{
				SynthGiven *g = palloc0(sizeof(SynthGiven));
				double		d;

				if (rv.type != jbvNumeric)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("sample rows for \"%s\" must be a whole number, 0 at least", name)));
				d = synth_number(&rv, "rows");
				if (!(d >= 0 && d <= 1e12) || d != floor(d))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("sample rows for \"%s\" must be a whole number, 0 at least", name)));
				g->name = name;
				g->rows = (int64) d;
				g->relid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(name)),
											NoLock, true);
				if (!OidIsValid(g->relid))
					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_TABLE),
							 errmsg("sample rows names \"%s\", which does not exist", name),
							 errhint("Name tables of from_schemas, qualified, for example \"shop.orders\".")));
				s->given = lappend(s->given, g);
			}
		}
	}
	return s;
}

/* ---------------------------------------------------------------------
 * The plan: order, row counts, statistics
 * ---------------------------------------------------------------------
 */

/*
 * Become the reader, restricted (no temporary objects, no changes of
 * settings); SetUserIdAndSecContext(*save_user, *save_sec) goes back.
 */
void
EltSynthAsReader(Oid reader, Oid *save_user, int *save_sec)
{
	GetUserIdAndSecContext(save_user, save_sec);
	SetUserIdAndSecContext(reader, *save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

/* The index of relid among the tables (not inlined: called before a PG_TRY). */
pg_noinline int
EltSynthIndex(EltSynth *s, Oid relid)
{
	int			i;

	for (i = 0; i < s->ntables; i++)
		if (s->tables[i].relid == relid)
			return i;
	return -1;
}

/* Whether the columns of relid form exactly a unique index of it (keys in any order). */
bool
EltSynthColumnsUnique(Oid relid, int n, const AttrNumber *keys)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%d", i ? "," : "", keys[i]);
	appendStringInfoChar(&buf, '}');
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND i.indisunique"
							  " AND i.indexprs IS NULL AND i.indpred IS NULL AND i.indnkeyatts = $2"
							  " AND (i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1] OPERATOR(pg_catalog.<@) $3::pg_catalog.int2[]",
							  3, (Oid[]) {OIDOID, INT4OID, TEXTOID},
							  (Datum[]) {ObjectIdGetDatum(relid), Int32GetDatum(n), CStringGetTextDatum(buf.data)},
							  NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading unique indexes failed");
	return SPI_processed > 0;
}

/* The foreign keys between the sandbox's tables. */
static void
read_fkeys(EltSynth *s)
{
	int			i;
	int			cap = 8;

	s->fkeys = MemoryContextAllocZero(s->cxt, sizeof(SynthFk) * cap);
	for (i = 0; i < s->ntables; i++)
	{
		uint64		r,
					n;
		SPITupleTable *tt;

		if (SPI_execute_with_args("SELECT k.conname::pg_catalog.text, k.confrelid, k.conkey, k.confkey"
								  " FROM pg_catalog.pg_constraint k WHERE k.conrelid = $1 AND k.contype = 'f'"
								  " ORDER BY k.conname",
								  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(s->tables[i].relid)},
								  NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading foreign keys failed");
		tt = SPI_tuptable;
		n = SPI_processed;
		for (r = 0; r < n; r++)
		{
			bool		isnull;
			int			p = EltSynthIndex(s, DatumGetObjectId(SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull)));
			Datum	   *ck,
					   *pk;
			int			nck,
						npk,
						k;
			SynthFk    *f;
			MemoryContext old;

			if (p < 0)
				continue;		/* left out of the sandbox (sandbox.c says so) */
			old = MemoryContextSwitchTo(s->cxt);
			if (s->nfkeys == cap)
			{
				cap *= 2;
				s->fkeys = repalloc(s->fkeys, sizeof(SynthFk) * cap);
			}
			f = &s->fkeys[s->nfkeys++];
			memset(f, 0, sizeof(SynthFk));
			f->name = pstrdup(SPI_getvalue(tt->vals[r], tt->tupdesc, 1));
			f->child = i;
			f->parent = p;
			f->self = (p == i);
			deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tt->vals[r], tt->tupdesc, 3, &isnull)),
							  INT2OID, 2, true, TYPALIGN_SHORT, &ck, NULL, &nck);
			deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tt->vals[r], tt->tupdesc, 4, &isnull)),
							  INT2OID, 2, true, TYPALIGN_SHORT, &pk, NULL, &npk);
			f->nkeys = Min(nck, INDEX_MAX_KEYS);
			f->nullable = true;
			for (k = 0; k < f->nkeys; k++)
			{
				HeapTuple	at;

				f->ckeys[k] = DatumGetInt16(ck[k]);
				f->pkeys[k] = DatumGetInt16(pk[k]);
				at = SearchSysCache2(ATTNUM, ObjectIdGetDatum(s->tables[i].relid), Int16GetDatum(f->ckeys[k]));
				if (HeapTupleIsValid(at))
				{
					if (((Form_pg_attribute) GETSTRUCT(at))->attnotnull)
						f->nullable = false;
					ReleaseSysCache(at);
				}
			}
			MemoryContextSwitchTo(old);
			f->one_to_one = EltSynthColumnsUnique(s->tables[i].relid, f->nkeys, f->ckeys);
			MemoryContextSwitchTo(old);
			if (f->self && !f->nullable)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("synthetic rows cannot fill %s: its foreign key %s references the table itself through NOT NULL columns",
								s->tables[i].src, f->name),
						 errdetail("Generated rows point at earlier rows, so the first row must hold NULL there."),
						 errhint("Make the sandbox from a sample of real rows, or make the referencing columns nullable.")));
		}
	}
}

/* The tables in an order where every parent comes before its children. */
static void
order_tables(EltSynth *s)
{
	bool	   *placed = palloc0(sizeof(bool) * s->ntables);
	int			n = 0;

	s->order = MemoryContextAlloc(s->cxt, sizeof(int) * s->ntables);
	while (n < s->ntables)
	{
		int			i,
					k;
		bool		progress = false;

		for (i = 0; i < s->ntables; i++)
		{
			bool		ready = !placed[i];

			for (k = 0; k < s->nfkeys && ready; k++)
				if (s->fkeys[k].child == i && !s->fkeys[k].self && !placed[s->fkeys[k].parent])
					ready = false;
			if (ready)
			{
				placed[i] = true;
				s->order[n++] = i;
				progress = true;
			}
		}
		if (!progress)
		{
			for (k = 0; k < s->nfkeys; k++)
				if (!s->fkeys[k].self && !placed[s->fkeys[k].child] && !placed[s->fkeys[k].parent])
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("synthetic rows cannot follow foreign keys in a cycle: %s and %s reference each other",
									s->tables[s->fkeys[k].child].src, s->tables[s->fkeys[k].parent].src),
							 errdetail("Generated rows take their keys from the parent's copy, made first."),
							 errhint("Make the sandbox from a sample of real rows, or leave one of the tables' schemas out.")));
			elog(ERROR, "ordering the tables failed");
		}
	}
}

/*
 * How many rows each table gets; a table that should get rows but whose
 * statistics the reader cannot see is refused.
 */
static void
plan_rows(EltSynth *s, Oid reader)
{
	int			i;

	for (i = 0; i < s->ntables; i++)
	{
		SynthTable *t = &s->tables[i];
		bool		isnull;
		double		reltuples;
		bool		partitioned = get_rel_relkind(t->relid) == RELKIND_PARTITIONED_TABLE;
		int64		stats;

		if (SPI_execute_with_args("SELECT CASE WHEN c.relkind = 'p' THEN"
								  "  (SELECT CASE WHEN pg_catalog.bool_and(l.reltuples < 0) THEN -1"
								  "          ELSE COALESCE(pg_catalog.sum(GREATEST(l.reltuples, 0)), 0) END"
								  "   FROM pg_catalog.pg_partition_tree(c.oid) p JOIN pg_catalog.pg_class l ON l.oid = p.relid"
								  "   WHERE p.isleaf)"
								  "  ELSE c.reltuples END::pg_catalog.float8 AS reltuples,"
								  " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stats st"
								  "  WHERE st.schemaname = n.nspname AND st.tablename = c.relname AND st.inherited = $2) AS stats"
								  " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
								  " WHERE c.oid = $1",
								  2, (Oid[]) {OIDOID, BOOLOID},
								  (Datum[]) {ObjectIdGetDatum(t->relid), BoolGetDatum(partitioned)},
								  NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "reading the size of %s failed", t->src);
		reltuples = DatumGetFloat8(EltSpiGetDatum(0, "reltuples", &isnull));
		if (isnull)
			reltuples = -1;
		stats = EltSpiGetInt64(0, "stats", &isnull);
		if (reltuples < 0)
		{
			/* never analyzed: is it empty? (one row read, not kept) */
			if (SPI_execute(psprintf("SELECT 1 FROM %s%s LIMIT 1", partitioned ? "" : "ONLY ", t->src),
							false, 1) != SPI_OK_SELECT)
				elog(ERROR, "reading %s failed", t->src);
			reltuples = SPI_processed > 0 ? -1 : 0;
		}
		if (t->given)
			t->asked = t->given_rows;
		else if (reltuples > 0)
			t->asked = Max((int64) 1, (int64) rint(s->scale * reltuples));
		else
			t->asked = 0;
		/* rows to make, or rows there and no estimate of how many */
		if ((t->asked > 0 && stats == 0) || (!t->given && reltuples < 0))
		{
			bool		rls = check_enable_rls(t->relid, reader, true) == RLS_ENABLED;

			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s has no statistics to generate synthetic rows from", t->src),
					 rls ? errdetail("pg_stats shows role %s no statistics of a table whose row-level security applies to it.",
									 GetUserNameFromId(reader, false))
					 : errdetail("Synthetic rows are drawn from pg_stats, which holds nothing for it%s.",
								 reltuples < 0 ? " (it has never been analyzed)" : ""),
					 rls ? errhint("Make the sandbox as a role the table's row-level security does not apply to, or leave its schema out.")
					 : errhint("Run ANALYZE on it.")));
		}
	}
}

/* plan_rows as the reader. */
static void
plan_rows_as(EltSynth *s, Oid reader)
{
	Oid			save_user;
	int			save_sec;

	EltSynthAsReader(reader, &save_user, &save_sec);
	PG_TRY();
	{
		plan_rows(s, reader);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
}

/*
 * Plan the generation of the sandbox's tables (relids[i] copied as
 * dsts[i], both quoted): their foreign keys, an order parents first, the
 * rows of each.  Returns the order (indexes into relids).  Inside SPI.
 */
int *
EltSynthPlan(EltSynth *s, int64 seed, int ntables, const Oid *relids, const char *const *dsts, Oid reader)
{
	ListCell   *lc;
	int			i;
	MemoryContext old = MemoryContextSwitchTo(s->cxt);

	s->seed = seed;
	s->ntables = ntables;
	s->tables = palloc0(sizeof(SynthTable) * Max(ntables, 1));
	for (i = 0; i < ntables; i++)
	{
		EltCitusTable citus;

		/*
		 * A Citus table's rows, and so their statistics, are on its
		 * shards: the coordinator's pg_stats holds nothing for it
		 */
		if (EltCitusTableInfo(relids[i], &citus))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("synthetic rows cannot be generated for %s: it is a Citus table",
							EltRelDisplayName(relids[i])),
					 errdetail("Synthetic rows are drawn from pg_stats, and a Citus table's statistics are on its shards, not on the coordinator."),
					 errhint("Make a masked sample of its real rows instead (for example sample => '{\"percent\": 1}'), or leave its schema out.")));
		s->tables[i].relid = relids[i];
		s->tables[i].src = EltRelDisplayName(relids[i]);
		s->tables[i].dst = pstrdup(dsts[i]);
	}
	foreach(lc, s->given)
	{
		SynthGiven *g = lfirst(lc);

		i = EltSynthIndex(s, g->relid);
		if (i < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample rows names \"%s\", which is not a table of the source schemas", g->name),
					 errhint("Name tables of from_schemas.")));
		s->tables[i].given = true;
		s->tables[i].given_rows = g->rows;
	}
	MemoryContextSwitchTo(old);
	read_fkeys(s);
	order_tables(s);
	plan_rows_as(s, reader);
	MemoryContextSwitchTo(old);
	return s->order;
}
