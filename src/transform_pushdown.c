/*
 * transform_pushdown.c — a transform run with row lineage whose row work
 * Citus pushes down to the shards.
 *
 * On one node (and on Citus when the tables are not colocated) a run's one
 * INSERT ... SELECT hands each written row to elt._lineage_capture() in its
 * WHERE clause: a volatile call that makes Citus pull the whole SELECT to
 * the coordinator and send every row back to the target's shards.  When
 * the target is a hash-distributed table and Citus would push the run's
 * INSERT ... SELECT down to the shards (sources colocated with the target,
 * joined and grouped by the distribution column; Citus decides), the run
 * goes through a staging table instead, in the run's transaction:
 *
 *   1. an UNLOGGED table <target's schema>.__elt_stage_<random>, with the
 *      target's columns the query writes and the key columns of the
 *      rewritten query, distributed on the target's distribution column
 *      and colocated with it, created and dropped by the transform's owner
 *      (the run's user: Citus lets a transaction use a placement only
 *      through the user that changed it), who needs CREATE on that schema
 *      for the run to be pushed down; governance leaves it alone like a
 *      shard (citus.c);
 *   2. INSERT INTO stage SELECT <rewritten query> RETURNING <target key>,
 *      <key columns>: pushed down, the joins, grouping and key aggregates
 *      run on the shards in parallel; only the keys come back to the
 *      coordinator, where each returned row goes straight into the run's
 *      capture (EltCaptureRow, from C: no token, nothing a worker runs can
 *      write lineage);
 *   3. INSERT INTO target SELECT ... FROM stage [ON CONFLICT ...]: pushed
 *      down, shard to colocated shard;
 *   4. DROP TABLE stage.
 * Every written row and its keys come from one evaluation of the query
 * (the stage holds both), so the lineage is exactly that of the
 * single-statement run.  The stage is created in the run's
 * (sub)transaction and dropped before it ends: no other session ever sees
 * it, and a failed run leaves nothing.
 *
 * Whether Citus pushes a statement down is read off its plan: Citus's
 * adaptive executor ("Citus Adaptive") runs it on the shards; "Citus
 * INSERT ... SELECT" pulls it to the coordinator or repartitions it.  When
 * it would not push the run's statement down (or cannot plan it), the run
 * takes the single-statement path, as on one node.  elt.citus_pushdown
 * off always does.
 *
 * Layering: an engine helper, called by transform_run.c only; calls
 * lineage_capture.c (EltCaptureRow), citus.c and util.  Locking: what the
 * statements take; distributing the stage also takes Citus's placement
 * lock of the target's colocation group in share mode, so shard moves and
 * splits of that group wait for the run's transaction (other runs and
 * writers do not).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/plannodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/syscache.h"

#include "citus.h"
#include "lineage.h"
#include "transform.h"
#include "util.h"

bool		elt_citus_pushdown = true;

/* Whether every relation in rels is a Citus table. */
static bool
all_citus(List *rels)
{
	ListCell   *lc;
	EltCitusTable info;

	foreach(lc, rels)
		if (!EltCitusTableInfo(lfirst_oid(lc), &info))
			return false;
	return rels != NIL;
}

/* The type of a target column, with its modifier and collation, qualified. */
static char *
stage_column_type(Oid relid, AttrNumber attnum)
{
	Oid			typid;
	int32		typmod;
	Oid			collid;
	char	   *type;

	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &collid);
	type = format_type_extended(typid, typmod,
								FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
	if (OidIsValid(collid) && collid != DEFAULT_COLLATION_OID)
	{
		HeapTuple	tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(collid));
		Form_pg_collation coll;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for collation %u", collid);
		coll = (Form_pg_collation) GETSTRUCT(tup);
		type = psprintf("%s COLLATE %s", type,
						quote_qualified_identifier(get_namespace_name(coll->collnamespace),
												   NameStr(coll->collname)));
		ReleaseSysCache(tup);
	}
	return type;
}

/* The SQL type of a key column of the rewritten query. */
static const char *
slot_sql_type(EltLineageSlot *s)
{
	if (s->text)
		return s->array ? "pg_catalog.text[]" : "pg_catalog.text";
	return s->array ? "pg_catalog.int8[]" : "pg_catalog.int8";
}

/*
 * Prepare the pushdown of a run with row lineage into target (see the file
 * header): false, with nothing prepared, when it cannot be one whatever
 * Citus says — elt.citus_pushdown is off, the target is not
 * hash-distributed, a source is not a Citus table, a key column of the
 * target is filled by a default, or the distribution column is not written
 * by the query.  key_sql: the target key over __elt_src (as the
 * single-statement run hands it to elt._lineage_capture()); conflict: the
 * ON CONFLICT clause of a merge, or "".
 */
bool
EltPushdownPrepare(EltPushdown *pd, Oid target, EltLineageInfo *info, EltTargetInfo *ti,
				   const char *key_sql, const char *conflict)
{
	EltCitusTable dist;
	StringInfoData cols;
	StringInfoData src;
	StringInfoData alias;
	StringInfoData stage;
	ListCell   *lc;
	int			i;
	uint64		token;
	bool		dist_written = false;

	memset(pd, 0, sizeof(*pd));
	if (!elt_citus_pushdown || info->rewritten == NULL)
		return false;
	if (!EltCitusTableInfo(target, &dist) || dist.method != 'h' || dist.column == NULL)
		return false;
	if (!all_citus(info->sources))
		return false;
	foreach(lc, ti->pk_defaults)
		if (lfirst(lc) != NULL)
			return false;

	/* the stage is the owner's, beside the target: Citus's workers too create its shards as the owner */
	pd->nspoid = get_rel_namespace(target);
	if (pg_namespace_aclcheck(pd->nspoid, GetUserId(), ACL_CREATE) != ACLCHECK_OK)
		return false;
	if (!pg_strong_random(&token, sizeof(token)))
		return false;
	pd->stage_name = psprintf("__elt_stage_%016llx", (unsigned long long) token);
	pd->stage = quote_qualified_identifier(get_namespace_name(pd->nspoid), pd->stage_name);
	pd->dist_column = pstrdup(dist.column);
	pd->target_name = psprintf("%s", ti->relname);

	initStringInfo(&cols);
	initStringInfo(&src);
	initStringInfo(&alias);
	initStringInfo(&stage);
	foreach(lc, ti->columns)
	{
		const char *name = (const char *) lfirst(lc);
		const char *c = quote_identifier(name);
		AttrNumber	attnum = get_attnum(target, name);

		if (strcmp(name, dist.column) == 0)
			dist_written = true;
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", c);
		appendStringInfo(&src, "%s__elt_src.%s", src.len ? ", " : "", c);
		appendStringInfo(&alias, "%s%s", alias.len ? ", " : "", c);
		appendStringInfo(&stage, "%s%s %s", stage.len ? ", " : "", c,
						 stage_column_type(target, attnum));
	}
	if (!dist_written)
		return false;
	i = 0;
	foreach(lc, info->slots)
	{
		i++;
		appendStringInfo(&alias, ", " ELT_KEY_PREFIX "%d", i);
		appendStringInfo(&stage, ", " ELT_KEY_PREFIX "%d %s", i,
						 slot_sql_type((EltLineageSlot *) lfirst(lc)));
	}

	/* the run's INSERT as Citus would plan it without capture: pushed down? */
	pd->check = psprintf("INSERT INTO %s AS __elt_t (%s) SELECT %s FROM"
						 " (SELECT __elt_q.* FROM (%s) __elt_q(%s)) __elt_src%s",
						 ti->relname, cols.data, src.data, info->rewritten, alias.data, conflict);
	pd->create = psprintf("CREATE UNLOGGED TABLE %s (%s)", pd->stage, stage.data);
	{
		StringInfoData fill;

		initStringInfo(&fill);
		appendStringInfo(&fill, "INSERT INTO %s AS __elt_src SELECT __elt_q.* FROM (%s) __elt_q(%s)"
						 " RETURNING %s",
						 pd->stage, info->rewritten, alias.data, key_sql);
		for (i = 1; i <= list_length(info->slots); i++)
			appendStringInfo(&fill, ", __elt_src." ELT_KEY_PREFIX "%d", i);
		pd->fill = fill.data;
	}
	pd->write = psprintf("INSERT INTO %s AS __elt_t (%s) SELECT %s FROM %s __elt_src%s",
						 ti->relname, cols.data, src.data, pd->stage, conflict);
	return true;
}

/* Whether a planned statement runs on the shards: Citus's adaptive executor. */
static bool
plan_pushed_down(CachedPlan *cplan)
{
	PlannedStmt *stmt;
	CustomScan *scan;

	if (cplan == NULL || list_length(cplan->stmt_list) != 1)
		return false;
	stmt = linitial_node(PlannedStmt, cplan->stmt_list);
	if (stmt->planTree == NULL || !IsA(stmt->planTree, CustomScan))
		return false;
	scan = (CustomScan *) stmt->planTree;
	return scan->methods != NULL && scan->methods->CustomName != NULL &&
		strcmp(scan->methods->CustomName, "Citus Adaptive") == 0;
}

/* Prepare sql (SPI connected); *pushed: Citus runs it on the shards. */
static SPIPlanPtr
prepare_checked(const char *sql, bool *pushed)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);
	CachedPlan *cplan;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	cplan = SPI_plan_get_cached_plan(plan);
	*pushed = plan_pushed_down(cplan);
	if (cplan != NULL)
		ReleaseCachedPlan(cplan, NULL);
	return plan;
}

/* What check_pushdown finds, in a subtransaction. */
typedef struct CheckArg
{
	const char *sql;
	bool		pushed;
} CheckArg;

static void
check_body(void *arg)
{
	CheckArg   *ca = arg;
	SPIPlanPtr	plan;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = prepare_checked(ca->sql, &ca->pushed);
	SPI_freeplan(plan);
	SPI_finish();
}

/*
 * After fn failed in a subtransaction: the run takes the single-statement
 * path (an interrupt is raised again).
 */
static void
not_pushed_down(ErrorData *edata)
{
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
		edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
		ReThrowError(edata);
	ereport(DEBUG1,
			(errmsg_internal("transform run not pushed down to Citus's shards: %s", edata->message)));
}

/*
 * Whether Citus pushes sql down.  Planned in a subtransaction: a statement
 * Citus cannot plan without capture takes the single-statement path, which
 * may still run.
 */
static bool
check_pushdown(const char *sql)
{
	CheckArg	ca;
	ErrorData  *edata;

	ca.sql = sql;
	ca.pushed = false;
	edata = EltTrySubxact(check_body, &ca);
	if (edata != NULL)
	{
		not_pushed_down(edata);
		return false;
	}
	return ca.pushed;
}

/*
 * Create and distribute the staging table, as the transform's owner (in a
 * subtransaction, EltPushdownRun): the shards Citus creates for it are
 * then the owner's own placements, which the owner's statements may use
 * in this transaction (Citus refuses placements another user modified).
 */
static void
stage_create(void *arg)
{
	EltPushdown *pd = arg;
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		v[3];
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute(pd->create, false, 0);
	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "creating the staging table failed: %s", SPI_result_code_string(rc));
	v[0] = CStringGetTextDatum(pd->stage);
	v[1] = CStringGetTextDatum(pd->dist_column);
	v[2] = CStringGetTextDatum(pd->target_name);
	rc = SPI_execute_with_args("SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, $2,"
							   " colocate_with => $3)", 3, types, v, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "distributing the staging table failed: %s", SPI_result_code_string(rc));
	SPI_finish();
}

/* Drop the staging table (SPI connected, as the transform's owner). */
static void
stage_drop(EltPushdown *pd)
{
	int			rc = SPI_execute(psprintf("DROP TABLE %s", pd->stage), false, 0);

	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "dropping the staging table failed: %s", SPI_result_code_string(rc));
}

/* A receiver of the fill statement's RETURNING rows: each into the capture. */
typedef struct CaptureDest
{
	DestReceiver pub;
	Oid		   *types;
} CaptureDest;

static void
capture_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	CaptureDest *d = (CaptureDest *) self;
	int			i;

	d->types = palloc(sizeof(Oid) * Max(typeinfo->natts, 1));
	for (i = 0; i < typeinfo->natts; i++)
		d->types[i] = TupleDescAttr(typeinfo, i)->atttypid;
}

static bool
capture_receive(TupleTableSlot *slot, DestReceiver *self)
{
	CaptureDest *d = (CaptureDest *) self;

	slot_getallattrs(slot);
	EltCaptureRow(slot->tts_values, slot->tts_isnull, d->types,
				  slot->tts_tupleDescriptor->natts);
	return true;
}

static void
capture_shutdown(DestReceiver *self)
{
}

static void
capture_destroy(DestReceiver *self)
{
}

/* The pushdown's statements, the staging table created (see EltPushdownRun). */
static bool
run_staged(EltPushdown *pd, int64 *written)
{
	SPIPlanPtr	fill;
	bool		pushed;
	SPIExecuteOptions opts;
	CaptureDest dest;
	ErrorData  *edata;
	int			rc;

	/* a transaction in which Citus cannot distribute it runs on the coordinator */
	edata = EltTrySubxact(stage_create, pd);
	if (edata != NULL)
	{
		not_pushed_down(edata);
		return false;
	}
	fill = prepare_checked(pd->fill, &pushed);
	if (!pushed)
	{
		/* Citus said yes for the target and no for its colocated stage */
		SPI_freeplan(fill);
		stage_drop(pd);
		return false;
	}

	memset(&dest, 0, sizeof(dest));
	dest.pub.receiveSlot = capture_receive;
	dest.pub.rStartup = capture_startup;
	dest.pub.rShutdown = capture_shutdown;
	dest.pub.rDestroy = capture_destroy;
	dest.pub.mydest = DestNone;
	memset(&opts, 0, sizeof(opts));
	opts.dest = (DestReceiver *) &dest;
	rc = SPI_execute_plan_extended(fill, &opts);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "SPI_execute_plan_extended failed: %s", SPI_result_code_string(rc));
	SPI_freeplan(fill);

	rc = SPI_execute(pd->write, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	*written = (int64) SPI_processed;
	stage_drop(pd);
	return true;
}

/*
 * Run a prepared pushdown (SPI connected, as the transform's owner, the
 * run's capture begun).  False, having done nothing, when Citus would not
 * push the run's statement down: the caller runs the single-statement
 * path.  Else *written is the rows the target INSERT wrote.
 */
bool
EltPushdownRun(EltPushdown *pd, int64 *written)
{
	volatile bool pushed = false;

	if (!check_pushdown(pd->check))
	{
		ereport(DEBUG1,
				(errmsg_internal("transform run not pushed down to Citus's shards: Citus would not push its INSERT ... SELECT down")));
		return false;
	}
	/* governance leaves the stage alone, as it does shards (citus.c) */
	EltCitusStageBegin(pd->nspoid, pd->stage_name);
	PG_TRY();
	{
		pushed = run_staged(pd, written);
	}
	PG_FINALLY();
	{
		EltCitusStageEnd();
	}
	PG_END_TRY();
	return pushed;
}
