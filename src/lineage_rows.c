/*
 * lineage_rows.c — row lineage at run time and afterwards: the aggregates
 * that collect a group's keys, tracing and purging.
 *
 * A key given to elt.trace() is read with the session's settings and
 * printed as canonical text (lineage_keys.c), the way a run printed the
 * keys it captured, so both sides compare equal.
 *
 * Layering: calls lineage_keys.c (canonical keys), lineage_store.c
 * (EltLineageLookup), lineage.c (primary key columns), audit.c, roles.c
 * and util.  Lineage is read only here, as the extension's owner, after
 * the caller's privileges on each relation have been checked: a trace
 * starts only from a relation the caller may read in full (SELECT, and no
 * row-level security that applies to it), and leaves out the relations it
 * reaches that the caller may not read in full.  elt.lineage_purge()
 * deletes chunks in the caller's transaction and records it in the audit
 * log.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "lineage.h"
#include "lineage_keys.h"
#include "roles.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * Keys typed by a user
 * ---------------------------------------------------------------------
 */

/*
 * The canonical form of key, a primary key value of relation relid typed
 * by a user: *is_int and *ival for an integer key, else the text.
 */
char *
EltNormalizeKey(Oid relid, const char *key, bool *is_int, int64 *ival)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *cols = EltPrimaryKeyColumns(rel);
	char	   *relname = EltRelDisplayName(relid);
	char	   *result;

	if (cols == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relation %s has no primary key", relname),
				 errdetail("Row lineage identifies rows by primary key.")));
	*is_int = false;
	if (list_length(cols) == 1)
	{
		Form_pg_attribute att = TupleDescAttr(desc, linitial_int(cols) - 1);
		Oid			infn,
					ioparam;
		Datum		v;

		if (EltIntegerKeyType(att->atttypid))
		{
			bool		bad = false;

			PG_TRY();
			{
				*ival = DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(key)));
			}
			PG_CATCH();
			{
				FlushErrorState();
				bad = true;
			}
			PG_END_TRY();
			if (bad)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid key \"%s\" for %s", key, relname),
						 errdetail("Its primary key \"%s\" is an integer.", NameStr(att->attname))));
			*is_int = true;
			table_close(rel, AccessShareLock);
			return psprintf(INT64_FORMAT, *ival);
		}
		getTypeInputInfo(att->atttypid, &infn, &ioparam);
		v = OidInputFunctionCall(infn, (char *) key, ioparam, att->atttypmod);
		result = EltLineageKeyText(v, att->atttypid);
	}
	else
	{
		bool		ok;
		List	   *fields = EltSplitRowLiteral(key, &ok);
		TupleDesc	rowdesc;
		Datum	   *values;
		bool	   *nulls;
		ListCell   *lc;
		int			i = 0;

		if (!ok || list_length(fields) != list_length(cols))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid key \"%s\" for %s", key, relname),
					 errdetail("Its primary key has %d columns; give them as a row literal, for example (1,2026-01-31).",
							   list_length(cols))));
		rowdesc = CreateTemplateTupleDesc(list_length(cols));
		values = palloc(sizeof(Datum) * list_length(cols));
		nulls = palloc(sizeof(bool) * list_length(cols));
		foreach(lc, cols)
		{
			Form_pg_attribute att = TupleDescAttr(desc, lfirst_int(lc) - 1);
			char	   *field = list_nth(fields, i);
			Oid			infn,
						ioparam;

			TupleDescInitEntry(rowdesc, i + 1, NameStr(att->attname), att->atttypid,
							   att->atttypmod, 0);
			getTypeInputInfo(att->atttypid, &infn, &ioparam);
			nulls[i] = (field == NULL);
			values[i] = field ? OidInputFunctionCall(infn, field, ioparam, att->atttypmod) : (Datum) 0;
			i++;
		}
		rowdesc = BlessTupleDesc(rowdesc);
		result = EltLineageKeyText(HeapTupleGetDatum(heap_form_tuple(rowdesc, values, nulls)),
								   RECORDOID);
	}
	table_close(rel, AccessShareLock);
	return result;
}

/* ---------------------------------------------------------------------
 * Aggregates: the distinct keys of a group
 * ---------------------------------------------------------------------
 */

typedef struct KeyAcc
{
	int			n;
	int			cap;
	bool		sorted;
	int64	   *ints;
	text	  **texts;
} KeyAcc;

/* The group's accumulator, made in the aggregate's context. */
static KeyAcc *
key_acc(FunctionCallInfo fcinfo, bool is_text, MemoryContext *aggcxt)
{
	KeyAcc	   *acc;

	if (!AggCheckCallContext(fcinfo, aggcxt))
		elog(ERROR, "lineage key aggregate called in non-aggregate context");
	if (!PG_ARGISNULL(0))
		return (KeyAcc *) PG_GETARG_POINTER(0);
	acc = MemoryContextAllocZero(*aggcxt, sizeof(KeyAcc));
	acc->cap = 4;
	if (is_text)
		acc->texts = MemoryContextAlloc(*aggcxt, sizeof(text *) * acc->cap);
	else
		acc->ints = MemoryContextAlloc(*aggcxt, sizeof(int64) * acc->cap);
	return acc;
}

static void
key_grow(KeyAcc *acc, int more)
{
	if (acc->n + more <= acc->cap)
		return;
	while (acc->n + more > acc->cap)
		acc->cap *= 2;
	if (acc->texts)
		acc->texts = repalloc(acc->texts, sizeof(text *) * acc->cap);
	else
		acc->ints = repalloc(acc->ints, sizeof(int64) * acc->cap);
}

/* A bigint[] of n keys. */
static ArrayType *
int8_array(const int64 *keys, int n)
{
	Size		nbytes = ARR_OVERHEAD_NONULLS(1) + sizeof(int64) * n;
	ArrayType  *a = palloc0(nbytes);

	SET_VARSIZE(a, nbytes);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = INT8OID;
	ARR_DIMS(a)[0] = n;
	ARR_LBOUND(a)[0] = 1;
	memcpy((char *) a + ARR_OVERHEAD_NONULLS(1), keys, sizeof(int64) * n);
	return a;
}

/*
 * The integer keys of a group: one allocation, small at first (most groups
 * have a key or two), so that a hash aggregate keeps as many groups in
 * memory as it can.
 */
typedef struct IntAcc
{
	int32		n;
	int32		cap;
	bool		sorted;
	int64		ints[FLEXIBLE_ARRAY_MEMBER];
} IntAcc;

/* The group's accumulator with room for more keys (it may move). */
static IntAcc *
int_acc(FunctionCallInfo fcinfo, int more)
{
	MemoryContext aggcxt;
	IntAcc	   *acc;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "lineage key aggregate called in non-aggregate context");
	if (PG_ARGISNULL(0))
	{
		int			cap = Max(more, 2);

		acc = MemoryContextAlloc(aggcxt, offsetof(IntAcc, ints) + sizeof(int64) * cap);
		acc->n = 0;
		acc->cap = cap;
		acc->sorted = true;
		return acc;
	}
	acc = (IntAcc *) PG_GETARG_POINTER(0);
	if ((int64) acc->n + more > acc->cap)
	{
		int64		cap = acc->cap;

		while ((int64) acc->n + more > cap)
			cap *= 2;
		if (cap > (int64) (MaxAllocSize - offsetof(IntAcc, ints)) / (int64) sizeof(int64))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a group of the transform has too many source rows")));
		acc = repalloc(acc, offsetof(IntAcc, ints) + sizeof(int64) * cap);
		acc->cap = (int32) cap;
	}
	return acc;
}

PG_FUNCTION_INFO_V1(elt_lineage_int8_add);
Datum
elt_lineage_int8_add(PG_FUNCTION_ARGS)
{
	IntAcc	   *acc = int_acc(fcinfo, PG_ARGISNULL(1) ? 0 : 1);

	if (!PG_ARGISNULL(1))
	{
		int64		v = PG_GETARG_INT64(1);

		if (acc->n > 0 && acc->ints[acc->n - 1] >= v)
			acc->sorted = false;
		acc->ints[acc->n++] = v;
	}
	PG_RETURN_POINTER(acc);
}

PG_FUNCTION_INFO_V1(elt_lineage_int8_cat);
Datum
elt_lineage_int8_cat(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);
	int			n = a ? ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a)) : 0;
	IntAcc	   *acc;

	if (a && ARR_HASNULL(a))
		elog(ERROR, "lineage key array contains NULL");
	acc = int_acc(fcinfo, n);
	if (n > 0)
	{
		memcpy(acc->ints + acc->n, (char *) a + ARR_OVERHEAD_NONULLS(ARR_NDIM(a)), sizeof(int64) * n);
		acc->n += n;
		acc->sorted = false;
	}
	PG_RETURN_POINTER(acc);
}

PG_FUNCTION_INFO_V1(elt_lineage_int8_final);
Datum
elt_lineage_int8_final(PG_FUNCTION_ARGS)
{
	IntAcc	   *acc;
	int			i,
				j;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	acc = (IntAcc *) PG_GETARG_POINTER(0);
	if (acc->n == 0)
		PG_RETURN_NULL();
	if (!acc->sorted)
	{
		/* sort and drop duplicates, in place (idempotent) */
		qsort(acc->ints, acc->n, sizeof(int64), EltCmpInt64);
		for (i = 1, j = 0; i < acc->n; i++)
			if (acc->ints[i] != acc->ints[j])
				acc->ints[++j] = acc->ints[i];
		acc->n = j + 1;
		acc->sorted = true;
	}
	PG_RETURN_ARRAYTYPE_P(int8_array(acc->ints, acc->n));
}

static int
cmp_text(const void *a, const void *b)
{
	text	   *x = *(text *const *) a;
	text	   *y = *(text *const *) b;
	int			lx = VARSIZE_ANY_EXHDR(x);
	int			ly = VARSIZE_ANY_EXHDR(y);
	int			c = memcmp(VARDATA_ANY(x), VARDATA_ANY(y), Min(lx, ly));

	return c != 0 ? c : (lx > ly) - (lx < ly);
}

/* Sort and remove duplicates, in place (idempotent). */
static void
key_unique(KeyAcc *acc)
{
	int			i,
				j;

	if (acc->sorted || acc->n < 2)
	{
		acc->sorted = true;
		return;
	}
	if (acc->texts)
	{
		qsort(acc->texts, acc->n, sizeof(text *), cmp_text);
		for (i = 1, j = 0; i < acc->n; i++)
			if (cmp_text(&acc->texts[i], &acc->texts[j]) != 0)
				acc->texts[++j] = acc->texts[i];
	}
	else
	{
		qsort(acc->ints, acc->n, sizeof(int64), EltCmpInt64);
		for (i = 1, j = 0; i < acc->n; i++)
			if (acc->ints[i] != acc->ints[j])
				acc->ints[++j] = acc->ints[i];
	}
	acc->n = j + 1;
	acc->sorted = true;
}

/* Append a copy of a text key, made in the aggregate's context. */
static void
key_add_text(KeyAcc *acc, MemoryContext aggcxt, Datum v)
{
	Size		len = VARSIZE_ANY(DatumGetPointer(v));

	acc->texts[acc->n] = (text *) MemoryContextAlloc(aggcxt, len);
	memcpy(acc->texts[acc->n++], DatumGetPointer(v), len);
}

PG_FUNCTION_INFO_V1(elt_lineage_text_add);
Datum
elt_lineage_text_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	KeyAcc	   *acc = key_acc(fcinfo, true, &aggcxt);

	if (!PG_ARGISNULL(1))
	{
		key_grow(acc, 1);
		key_add_text(acc, aggcxt, PG_GETARG_DATUM(1));
		acc->sorted = false;
	}
	PG_RETURN_POINTER(acc);
}

PG_FUNCTION_INFO_V1(elt_lineage_text_cat);
Datum
elt_lineage_text_cat(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	KeyAcc	   *acc = key_acc(fcinfo, true, &aggcxt);

	if (!PG_ARGISNULL(1))
	{
		ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *nulls;
		int			n,
					i;

		deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		key_grow(acc, n);
		for (i = 0; i < n; i++)
		{
			if (!nulls[i])
				key_add_text(acc, aggcxt, elems[i]);
		}
		acc->sorted = false;
	}
	PG_RETURN_POINTER(acc);
}

PG_FUNCTION_INFO_V1(elt_lineage_text_final);
Datum
elt_lineage_text_final(PG_FUNCTION_ARGS)
{
	KeyAcc	   *acc;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	acc = (KeyAcc *) PG_GETARG_POINTER(0);
	if (acc->n == 0)
		PG_RETURN_NULL();
	key_unique(acc);
	PG_RETURN_ARRAYTYPE_P(construct_array((Datum *) acc->texts, acc->n, TEXTOID, -1, false,
										  TYPALIGN_INT));
}

/* ---------------------------------------------------------------------
 * Tracing
 * ---------------------------------------------------------------------
 */

/* A row of some relation, as lineage knows it. */
typedef struct TNode
{
	Oid			relid;
	bool		is_int;
	int64		ival;
	char	   *tval;
} TNode;

typedef struct TVisitKey
{
	Oid			relid;
	char		key[NAMEDATALEN * 2];
} TVisitKey;

/* One output row waiting for its raw flag. */
typedef struct TRow
{
	int			depth;
	TNode		node;
	char	   *transform;
	int			version;
	int64		run_id;
	TimestampTz run_at;
	bool		expanded;		/* shown before: not walked again */
	struct TRow *first;			/* for those: where it was first shown */
	bool		raw;
} TRow;

/* A node seen by the walk, and the first output row that showed it. */
typedef struct TVisited
{
	TVisitKey	key;
	TRow	   *first;			/* NULL for the row the walk started from */
} TVisited;

/* The output rows of one level that show one node. */
typedef struct TLevelEntry
{
	TVisitKey	key;
	List	   *rows;
} TLevelEntry;

/* Key of a node for the visited set (long text keys are hashed). */
static void
visit_key(TNode *n, TVisitKey *k)
{
	memset(k, 0, sizeof(*k));
	k->relid = n->relid;
	if (n->is_int)
		snprintf(k->key, sizeof(k->key), "i" INT64_FORMAT, n->ival);
	else if (strlen(n->tval) < sizeof(k->key) - 2)
		snprintf(k->key, sizeof(k->key), "t%s", n->tval);
	else
	{
		char		hex[ELT_SHA256_HEX_LEN + 1];

		EltSha256Hex(n->tval, strlen(n->tval), hex);
		snprintf(k->key, sizeof(k->key), "h%s", hex);
	}
}

/* A run, as trace shows it. */
typedef struct TRunInfo
{
	int64		run_id;
	bool		exists;
	char	   *name;
	int			version;
	TimestampTz finished_at;
} TRunInfo;

/* The transform, version and end of a run (NULL if it is not recorded), cached. */
static TRunInfo *
run_info(HTAB *cache, int64 run_id, MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	bool		found;
	TRunInfo   *ri = hash_search(cache, &run_id, HASH_ENTER, &found);

	if (!found)
	{
		Oid			types[1] = {INT8OID};
		Datum		args[1];
		bool		isnull;
		MemoryContext old;

		EltPrepare(&plan,
				   "SELECT d.name, r.version, r.finished_at FROM elt.transform_runs r"
				   " JOIN elt.transform_defs d ON d.transform_id = r.transform_id WHERE r.run_id = $1",
				   1, types);
		args[0] = Int64GetDatum(run_id);
		EltExec(plan, args, NULL, 1);
		ri->exists = SPI_processed == 1;
		if (ri->exists)
		{
			old = MemoryContextSwitchTo(cxt);
			ri->name = EltSpiGetText(0, "name");
			MemoryContextSwitchTo(old);
			ri->version = (int) EltSpiGetInt64(0, "version", &isnull);
			ri->finished_at = DatumGetTimestampTz(EltSpiGetDatum(0, "finished_at", &isnull));
		}
	}
	return ri->exists ? ri : NULL;
}

typedef struct ReadableEntry
{
	Oid			relid;
	bool		ok;
} ReadableEntry;

/*
 * Whether the caller (actor) may read every row of relid: it has SELECT
 * and no row-level security applies to it there (a relation that is gone:
 * no).  Checked as actor, not as the current user: the walk runs in a
 * catalog write, as the extension's owner.  Lineage shows keys, so a row
 * a policy hides from the caller must not be shown by its key either.
 */
static bool
can_read(Oid relid, Oid actor, HTAB *cache)
{
	bool		found;
	ReadableEntry *entry = hash_search(cache, &relid, HASH_ENTER, &found);

	if (!found)
		entry->ok = get_rel_name(relid) != NULL &&
			pg_class_aclcheck(relid, actor, ACL_SELECT) == ACLCHECK_OK &&
			check_enable_rls(relid, actor, true) != RLS_ENABLED;
	return entry->ok;
}

/*
 * Walk lineage from (relid, key) upstream (to sources) or downstream (to
 * targets), level by level, one catalog query per relation and level.
 */
static void
trace_walk(FunctionCallInfo fcinfo, bool upstream)
{
	ReturnSetInfo *rsinfo;
	Oid			relid;
	char	   *key;
	int			maxdepth = -1;
	TNode		start;
	List	   *frontier;
	List	   *level_rows = NIL;
	HTAB	   *visited;
	HTAB	   *readable;
	HTAB	   *runs;
	HASHCTL		ctl;
	EltCatalogWrite cw;
	int			depth = 0;
	int64		hidden = 0;
	char	   *relname;
	MemoryContext outer = CurrentMemoryContext;

	EltRequireCatalog("lineage_chunks");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel must not be null")));
	relid = PG_GETARG_OID(0);
	/* an empty text key is a key like any other ('' is a valid text value) */
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key must not be null")));
	key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
	{
		maxdepth = PG_GETARG_INT32(2);
		if (maxdepth < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("depth must be at least 1, or NULL for no limit")));
	}
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relname = EltRelDisplayName(relid);
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to trace %s", relname),
				 errhint("Lineage shows key values; it is shown only to roles that may read the relation.")));
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s has row-level security for the current role", relname),
				 errdetail("Lineage shows the keys of rows, and row-level security may hide some of them from you."),
				 errhint("Run it as the table's owner or a role that bypasses row-level security.")));

	start.relid = relid;
	start.tval = EltNormalizeKey(relid, key, &start.is_int, &start.ival);

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(TVisitKey);
	ctl.entrysize = sizeof(TVisited);
	ctl.hcxt = CurrentMemoryContext;
	visited = hash_create("elt trace visited", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(ReadableEntry);
	ctl.hcxt = CurrentMemoryContext;
	readable = hash_create("elt trace readable", 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(TRunInfo);
	ctl.hcxt = CurrentMemoryContext;
	runs = hash_create("elt trace runs", 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	{
		TVisitKey	vk;
		TVisited   *ve;

		visit_key(&start, &vk);
		ve = hash_search(visited, &vk, HASH_ENTER, NULL);
		ve->first = NULL;
	}
	frontier = list_make1(palloc(sizeof(TNode)));
	*(TNode *) linitial(frontier) = start;

	EltCatalogWriteBegin(&cw);
	/* short catalog queries: compiling them would cost more than running them */
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	while (frontier != NIL)
	{
		List	   *next = NIL;
		List	   *rels = NIL;
		ListCell   *lc;
		ListCell   *lr;
		bool		last = (maxdepth > 0 && depth >= maxdepth);
		HTAB	   *level;

		depth++;
		/* the rows of the level being looked up, by node */
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(TVisitKey);
		ctl.entrysize = sizeof(TLevelEntry);
		ctl.hcxt = outer;
		level = hash_create("elt trace level", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		foreach(lc, level_rows)
		{
			TRow	   *tr = lfirst(lc);
			TVisitKey	vk;
			bool		found;
			TLevelEntry *le;
			MemoryContext old = MemoryContextSwitchTo(outer);

			visit_key(&tr->node, &vk);
			le = hash_search(level, &vk, HASH_ENTER, &found);
			if (!found)
				le->rows = NIL;
			le->rows = lappend(le->rows, tr);
			MemoryContextSwitchTo(old);
		}
		/* one query per relation of the frontier */
		foreach(lc, frontier)
			rels = list_append_unique_oid(rels, ((TNode *) lfirst(lc))->relid);
		foreach(lr, rels)
		{
			Oid			rel = lfirst_oid(lr);
			List	   *nodes = NIL;
			List	   *hits;
			TNode	  **nv;
			bool	   *is_int;
			int64	   *ivals;
			char	  **tvals;
			int			i = 0;

			foreach(lc, frontier)
			{
				TNode	   *n = lfirst(lc);

				if (n->relid == rel)
					nodes = lappend(nodes, n);
			}
			nv = palloc(sizeof(TNode *) * list_length(nodes));
			is_int = palloc(sizeof(bool) * list_length(nodes));
			ivals = palloc(sizeof(int64) * list_length(nodes));
			tvals = palloc(sizeof(char *) * list_length(nodes));
			foreach(lc, nodes)
			{
				TNode	   *n = lfirst(lc);

				nv[i] = n;
				is_int[i] = n->is_int;
				ivals[i] = n->ival;
				tvals[i] = n->tval;
				i++;
			}
			hits = EltLineageLookup(rel, upstream, !last, i, is_int, ivals, tvals);

			foreach(lc, hits)
			{
				EltLineageHit *h = lfirst(lc);
				TRunInfo   *ri = run_info(runs, h->run_id, outer);
				int			j;
				MemoryContext old;

				/* the rows that showed this node are not leaves */
				{
					TVisitKey	vk;
					TLevelEntry *le;

					visit_key(nv[h->index], &vk);
					le = hash_search(level, &vk, HASH_FIND, NULL);
					if (le != NULL)
					{
						ListCell   *l2;

						foreach(l2, le->rows)
							((TRow *) lfirst(l2))->raw = false;
					}
				}
				if (last || ri == NULL)
					continue;
				if (!can_read(h->rel, cw.actor, readable))
				{
					hidden++;
					continue;
				}
				old = MemoryContextSwitchTo(outer);
				for (j = 0; j < h->n; j++)
				{
					TRow	   *tr = palloc0(sizeof(TRow));
					TVisitKey	vk;
					bool		found;
					TVisited   *ve;

					tr->depth = depth;
					tr->node.relid = h->rel;
					tr->node.is_int = h->is_int;
					if (h->is_int)
					{
						tr->node.ival = h->ints[j];
						tr->node.tval = psprintf(INT64_FORMAT, tr->node.ival);
					}
					else
						tr->node.tval = pstrdup(h->texts[j]);
					tr->transform = ri->name;
					tr->version = ri->version;
					tr->run_id = h->run_id;
					tr->run_at = ri->finished_at;
					tr->raw = true;
					next = lappend(next, tr);
					visit_key(&tr->node, &vk);
					ve = hash_search(visited, &vk, HASH_ENTER, &found);
					if (found)
					{
						tr->expanded = true;	/* shown, not walked again */
						tr->first = ve->first;
					}
					else
						ve->first = tr;
				}
				MemoryContextSwitchTo(old);
			}
		}

		/* emit the previous level, now that its raw flags are known */
		foreach(lc, level_rows)
		{
			TRow	   *tr = lfirst(lc);
			Datum		values[8];
			bool		nulls[8] = {false, false, false, false, false, false, false, false};

			values[0] = Int32GetDatum(tr->depth);
			values[1] = ObjectIdGetDatum(tr->node.relid);
			values[2] = CStringGetTextDatum(tr->node.tval);
			values[3] = CStringGetTextDatum(tr->transform);
			values[4] = Int32GetDatum(tr->version);
			values[5] = Int64GetDatum(tr->run_id);
			values[6] = TimestampTzGetDatum(tr->run_at);
			/* a node shown before is a leaf if it was one there */
			values[7] = BoolGetDatum(tr->expanded ? (tr->first ? tr->first->raw : false) : tr->raw);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}

		/* the next frontier: new rows not walked before */
		{
			List	   *nf = NIL;

			foreach(lc, next)
			{
				TRow	   *tr = lfirst(lc);

				if (!tr->expanded)
					nf = lappend(nf, &tr->node);
			}
			level_rows = next;
			frontier = nf;
			hash_destroy(level);
		}
		if (last)
			break;
	}
	EltCatalogWriteEnd(&cw);

	if (hidden > 0)
		ereport(NOTICE,
				(errmsg_plural("%lld lineage row of a relation you cannot read in full was left out",
							   "%lld lineage rows of relations you cannot read in full were left out",
							   (unsigned long) hidden, (long long) hidden),
				 errdetail("Lineage leaves out the relations you have no SELECT privilege on and those whose row-level security applies to you.")));
}

PG_FUNCTION_INFO_V1(elt_trace);

/* elt.trace(rel, key, depth): the source rows a row was made from. */
Datum
elt_trace(PG_FUNCTION_ARGS)
{
	trace_walk(fcinfo, true);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(elt_impact);

/* elt.impact(rel, key, depth): the rows made from a row, downstream. */
Datum
elt_impact(PG_FUNCTION_ARGS)
{
	trace_walk(fcinfo, false);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Retention
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(elt_lineage_purge);

/*
 * elt.lineage_purge(before): delete the row lineage of runs that finished
 * before the given time, for the transforms the caller owns (all of them
 * for elt_operator and superusers).  Runs stay recorded.
 */
Datum
elt_lineage_purge(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {TIMESTAMPTZOID, OIDOID, BOOLOID};
	Datum		args[3];
	EltCatalogWrite cw;
	int64		deleted;
	EltJson		details;
	bool		super;

	EltRequireCatalog("lineage_chunks");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("before must not be null")));
	super = EltRoleIsOperator(GetUserId());
	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "WITH d AS (DELETE FROM elt.lineage_chunks l USING elt.transform_runs r, elt.transform_defs d"
			   " WHERE l.run_id = r.run_id AND d.transform_id = r.transform_id"
			   "   AND r.finished_at < $1"
			   "   AND ($3 OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.rolname = d.owner"
			   "                      AND pg_catalog.pg_has_role($2, o.oid, 'MEMBER')))"
			   " RETURNING l.dir, l.entries)"
			   " SELECT pg_catalog.sum(d.entries) FILTER (WHERE d.dir = 't') AS n FROM d",
			   3, argtypes);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = ObjectIdGetDatum(cw.actor);
	args[2] = BoolGetDatum(super);
	EltExec(plan, args, NULL, 0);
	{
		bool		isnull;

		deleted = EltSpiGetInt64(0, "n", &isnull);
	}
	EltJsonBegin(&details);
	EltJsonString(&details, "before",
				  DatumGetCString(DirectFunctionCall1(timestamptz_out, PG_GETARG_DATUM(0))));
	EltJsonInt(&details, "lineage_rows", deleted);
	EltAuditRecord(cw.actor, "lineage_purge", NULL, EltJsonFinish(&details), EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(deleted);
}
