/*
 * transform_run.c — running a transform, and the state of the run in
 * progress (elt.param(), elt.now(), elt.random()).
 *
 * elt.transform_run() runs the current version in the caller's
 * transaction and as the transform's owner (like a view; restricted when
 * the caller is another role): the target is written with the owner's
 * privileges, and a failed run leaves nothing.  A replay runs a recorded
 * step as the run's role (EltReplayStep, called by replay.c).  Row lineage
 * comes from the rewritten query (lineage.c) and is stored with the run
 * record as the extension's owner once the statement has run.
 *
 * A run executes in a subtransaction of the caller's transaction
 * (EltTrySubxact); when it fails, the subtransaction is rolled back (no
 * rows, no lineage) and a short-lived background worker records the run as
 * failed in a transaction of its own, before the error goes on to the
 * caller.
 *
 * On Citus, a run with row lineage whose tables are colocated computes its
 * rows and their keys on the shards (transform_pushdown.c) instead of in
 * the one statement; everything else about the run is the same.
 *
 * Layering: an engine.  It calls transform.c (loading and checking a
 * transform), transform_pushdown.c (the Citus pushdown), manifest.c (the run's step of a manifest, the run id, the
 * pipeline's clock and seed), lineage, audit and util; only replay.c calls
 * into it (EltReplayStep).
 *
 * Locking: replace mode takes SHARE ROW EXCLUSIVE on the target, so that two
 * replace runs of one target follow each other while readers go on.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "citus.h"
#include "lineage.h"
#include "manifest.h"
#include "transform.h"
#include "util.h"

/* The run in progress in this backend, for elt.param(), elt.now(), elt.random(). */
typedef struct RunState
{
	int64		run_id;			/* drawn when the run is recorded */
	int64		seed;			/* of elt.random() */
	Jsonb	   *params;
	TimestampTz started_at;
	TimestampTz clock;			/* of elt.now(): the run's logical time */
	pg_prng_state prng;
} RunState;

static RunState *current_run = NULL;

/* ---------------------------------------------------------------------
 * Runs
 * ---------------------------------------------------------------------
 */

/*
 * A run into a Citus distributed or reference table keeps no undo: its
 * rows are written on the shards, where merge's DO UPDATE cannot hand the
 * rows it replaces to this session (Citus refuses the volatile call) and
 * the rows carry the workers' transaction ids, not ours.  Said once per
 * run; elt.run_revert then says it kept no undo.
 */
static bool
citus_target(EltTransform *t)
{
	EltCitusTable info;

	if (!EltCitusTableInfo(t->target, &info))
		return false;
	ereport(NOTICE,
			(errmsg("this run of transform \"%s\" keeps no undo: it cannot be reverted", t->name),
			 errdetail("Its target %s is a Citus table, whose rows are written on its shards.",
					   EltRelDisplayName(t->target))));
	return true;
}

/* Whether target or one of sources is a Citus table. */
static bool
any_citus(List *sources, Oid target)
{
	EltCitusTable info;
	ListCell   *lc;

	if (EltCitusTableInfo(target, &info))
		return true;
	foreach(lc, sources)
		if (EltCitusTableInfo(lfirst_oid(lc), &info))
			return true;
	return false;
}

/*
 * Rows read so far in this transaction from relations (and their
 * partitions).  *unknown: one of them is a Citus table, whose rows are read
 * on its shards, by other sessions, whose counts this one does not see.
 */
static int64
rows_read(List *sources, bool *unknown)
{
	int64		total = 0;
	ListCell   *lc;

	foreach(lc, sources)
	{
		Oid			relid = lfirst_oid(lc);
		List	   *rels;
		ListCell   *lc2;
		EltCitusTable citus;

		if (EltCitusTableInfo(relid, &citus))
			*unknown = true;

		if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
			rels = find_all_inheritors(relid, NoLock, NULL);
		else
			rels = list_make1_oid(relid);
		foreach(lc2, rels)
		{
			PgStat_TableStatus *st = find_tabstat_entry(lfirst_oid(lc2));

			if (st != NULL)
				total += EltTableStatusTuplesRead(st);
		}
	}
	return total;
}

/* The type of a column with its modifier (char(4), numeric(10,2)), qualified. */
static char *
column_type(Oid relid, AttrNumber attnum)
{
	Oid			typid;
	int32		typmod;
	Oid			collid;

	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &collid);
	return format_type_extended(typid, typmod,
								FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
}

/* The expression of the target key over __elt_src: a bigint, or a value or row to print. */
static char *
target_key_sql(Oid target, EltTargetInfo *ti)
{
	StringInfoData buf;
	ListCell   *l1,
			   *l2;
	int			i = 0;

	initStringInfo(&buf);
	if (!ti->key_text)
	{
		char	   *col = linitial(ti->pk_exprs);

		if (col)
			appendStringInfo(&buf, "(__elt_src.%s)::pg_catalog.int8", quote_identifier(col));
		else
			appendStringInfoString(&buf, "(__elt_src.__elt_pk_1)::pg_catalog.int8");
		return buf.data;
	}
	/* one argument per key column: elt._lineage_capture() prints them */
	forboth(l1, ti->pk, l2, ti->pk_exprs)
	{
		AttrNumber	attnum = lfirst_int(l1);
		char	   *col = lfirst(l2);

		i++;
		if (i > 1)
			appendStringInfoString(&buf, ", ");
		if (col)
			appendStringInfo(&buf, "CAST(__elt_src.%s AS %s)", quote_identifier(col),
							 column_type(target, attnum));
		else
			appendStringInfo(&buf, "CAST(__elt_src.__elt_pk_%d AS %s)", i,
							 column_type(target, attnum));
	}
	return buf.data;
}

/*
 * The ON CONFLICT clause of a merge run's INSERT (empty for the other
 * modes): upsert on the target's primary key; with undo, the row it
 * replaces goes to elt._undo_image() (transform_undo.c).
 */
static char *
conflict_clause(EltTransform *t, EltTargetInfo *ti, bool undo)
{
	StringInfoData s;
	ListCell   *lc;
	int			i;

	initStringInfo(&s);
	if (strcmp(t->mode, "merge") == 0)
	{
		Relation	rel = table_open(t->target, AccessShareLock);
		List	   *pk = EltPrimaryKeyColumns(rel);
		StringInfoData set;

		initStringInfo(&set);
		appendStringInfoString(&s, " ON CONFLICT (");
		i = 0;
		foreach(lc, pk)
			appendStringInfo(&s, "%s%s", i++ ? ", " : "",
							 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel), lfirst_int(lc) - 1)->attname)));
		foreach(lc, ti->columns)
		{
			const char *c = (char *) lfirst(lc);
			AttrNumber	attnum = get_attnum(t->target, c);

			if (list_member_int(pk, attnum))
				continue;
			appendStringInfo(&set, "%s%s = EXCLUDED.%s", set.len ? ", " : "",
							 quote_identifier(c), quote_identifier(c));
		}
		if (set.len == 0)
		{
			const char *c = quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel), linitial_int(pk) - 1)->attname));

			appendStringInfo(&set, "%s = EXCLUDED.%s", c, c);
		}
		appendStringInfo(&s, ") DO UPDATE SET %s", set.data);
		/* the row it replaces, kept for a revert */
		if (undo)
			appendStringInfo(&s, " WHERE %s", EltUndoImageSql(t->target, "__elt_t"));
		table_close(rel, AccessShareLock);
	}
	return s.data;
}

/*
 * The statement of a run: one INSERT ... SELECT.  With row lineage its
 * WHERE clause hands each written row's target key and key columns to
 * elt._lineage_capture(), with the run's token as $1, which keeps them;
 * with undo, merge's DO UPDATE hands each row it replaces to
 * elt._undo_image() (transform_undo.c).
 */
static char *
run_statement(EltTransform *t, EltLineageInfo *info, EltTargetInfo *ti, bool row, bool undo)
{
	StringInfoData s;
	StringInfoData cols;
	StringInfoData vals;
	StringInfoData alias;
	ListCell   *lc;
	int			i;

	initStringInfo(&cols);
	initStringInfo(&vals);
	foreach(lc, ti->columns)
	{
		const char *c = quote_identifier((char *) lfirst(lc));

		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", c);
		appendStringInfo(&vals, "%s__elt_src.%s", vals.len ? ", " : "", c);
	}
	initStringInfo(&s);
	appendStringInfoString(&s, "SELECT __elt_q.*");
	if (row)
	{
		ListCell   *l1,
				   *l2;

		/* key columns filled by defaults are computed here, once per row */
		i = 0;
		forboth(l1, ti->pk_defaults, l2, ti->pk)
		{
			char	   *def = lfirst(l1);

			i++;
			if (def == NULL)
				continue;
			appendStringInfo(&s, ", (%s) AS __elt_pk_%d", def, i);
			appendStringInfo(&cols, ", %s",
							 quote_identifier(get_attname(t->target, lfirst_int(l2), false)));
			appendStringInfo(&vals, ", __elt_src.__elt_pk_%d", i);
		}
	}
	/* output columns are named by position: set operations name them after their first branch */
	initStringInfo(&alias);
	foreach(lc, ti->columns)
		appendStringInfo(&alias, "%s%s", alias.len ? ", " : "", quote_identifier((char *) lfirst(lc)));
	if (row)
		for (i = 1; i <= list_length(info->slots); i++)
			appendStringInfo(&alias, ", " ELT_KEY_PREFIX "%d", i);
	/* OFFSET 0 keeps the subquery (and its defaults) evaluated once per row */
	appendStringInfo(&s, " FROM (%s) __elt_q(%s) OFFSET 0",
					 row ? info->rewritten : pg_get_querydef(info->query, false), alias.data);
	{
		char	   *inner = s.data;

		initStringInfo(&s);
		appendStringInfo(&s, "INSERT INTO %s AS __elt_t (%s)%s SELECT %s FROM (%s) __elt_src",
						 ti->relname, cols.data, ti->override ? " OVERRIDING SYSTEM VALUE" : "",
						 vals.data, inner);
	}
	if (row)
	{
		appendStringInfo(&s, " WHERE elt._lineage_capture($1, %s", target_key_sql(t->target, ti));
		for (i = 1; i <= list_length(info->slots); i++)
			appendStringInfo(&s, ", __elt_src." ELT_KEY_PREFIX "%d", i);
		appendStringInfoChar(&s, ')');
	}
	appendStringInfoString(&s, conflict_clause(t, ti, undo));
	return s.data;
}

/* Counts of one run, and what it keeps for a revert. */
typedef struct RunCounts
{
	int64		read;
	bool		read_unknown;	/* it read a Citus table (rows_read) */
	int64		written;
	int64		deleted;
	int64		lineage_rows;	/* (target row, source relation) pairs */
	bool		undo;			/* keeps undo (elt.undo_retention > 0) */
	bool		pushed_down;	/* its row work ran on Citus's shards */
	TransactionId xid;			/* its rows' xmin; invalid: it wrote none */
	char	   *shape;			/* of the target (EltUndoShape) */
} RunCounts;

/* Record a run, store its lineage and apply keep_runs (inside a catalog write). */
static int64
record_run(EltTransform *t, int64 seed, Jsonb *params, const char *lineage,
		   TimestampTz started, TimestampTz finished, const RunCounts *counts,
		   bool store_lineage, Oid actor, const char *relname)
{
	static SPIPlanPtr run_plan = NULL;
	static SPIPlanPtr lineage_plan = NULL;
	static SPIPlanPtr keep_plan = NULL;
	Oid			rtypes[13] = {INT8OID, INT4OID, TEXTOID, JSONBOID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, NAMEOID, INT8OID, INT8OID};
	Datum		v[13];
	char		n[13] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int64		run_id;
	bool		isnull;
	EltJson		extra;
	char		run_hash[ELT_SHA256_HEX_LEN + 1];

	/*
	 * The run id is drawn now, after the target rows are written and locked:
	 * of two runs that wrote one row, the one that wrote it last has the
	 * greater id, whichever started first.
	 */
	EltPrepare(&run_plan,
			   "INSERT INTO elt.transform_runs (run_id, transform_id, version, code_hash, params, lineage,"
			   " status, started_at, finished_at, rows_read, rows_written, rows_deleted, role, random_seed)"
			   " VALUES (pg_catalog.nextval('elt.run_id_seq'), $1, $2, $3, $4, $5, 'succeeded', $6, $7, $8, $9,"
			   " $10, $11, $12) RETURNING *",
			   12, rtypes);
	v[0] = Int64GetDatum(t->id);
	v[1] = Int32GetDatum(t->version);
	v[2] = CStringGetTextDatum(t->code_hash);
	v[3] = JsonbPGetDatum(params);
	v[4] = CStringGetTextDatum(lineage);
	v[5] = TimestampTzGetDatum(started);
	v[6] = TimestampTzGetDatum(finished);
	v[7] = Int64GetDatum(counts->read);
	if (counts->read_unknown)
		n[7] = 'n';
	v[8] = Int64GetDatum(counts->written);
	v[9] = Int64GetDatum(counts->deleted);
	if (strcmp(t->mode, "replace") != 0)
		n[9] = 'n';
	v[10] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(actor, false)));
	v[11] = Int64GetDatum(seed);
	EltExec(run_plan, v, n, 0);
	run_id = EltSpiGetInt64(0, "run_id", &isnull);
	EltRunRowHash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, "", run_hash);

	if (store_lineage)
	{
		Oid			ltypes[1] = {INT8OID};
		Datum		lv[1];

		/* the run's chunks, and the bucket sizes they use for lookups */
		EltPrepare(&lineage_plan,
				   "WITH c AS (INSERT INTO elt.lineage_chunks (run_id, rel, dir, other_rel, bucket, entries, data)"
				   " SELECT $1, p.rel::pg_catalog.regclass, p.dir, p.other_rel::pg_catalog.regclass, p.bucket,"
				   " p.entries, p.data FROM elt._lineage_pending() p RETURNING rel, dir, bucket)"
				   " INSERT INTO elt.lineage_layout (rel, dir, bits)"
				   " SELECT DISTINCT c.rel, c.dir, (c.bucket OPERATOR(pg_catalog.>>) 32)::pg_catalog.int4 FROM c"
				   " ON CONFLICT DO NOTHING",
				   1, ltypes);
		lv[0] = Int64GetDatum(run_id);
		EltCaptureOpenPending(true);
		EltExec(lineage_plan, lv, NULL, 0);
		EltCaptureOpenPending(false);
	}
	if (counts->undo)
		EltUndoRecord(run_id, t->id, t->target, counts->xid, counts->shape, finished);
	if (t->keep_runs > 0)
	{
		Oid			ktypes[2] = {INT8OID, INT4OID};
		Datum		kv[2];

		/* runs that left the window of the last keep_runs runs (and a margin) */
		EltPrepare(&keep_plan,
				   "DELETE FROM elt.lineage_chunks WHERE run_id IN ("
				   " SELECT r.run_id FROM elt.transform_runs r WHERE r.transform_id = $1"
				   " ORDER BY r.run_id DESC OFFSET $2 LIMIT 100)",
				   2, ktypes);
		kv[0] = Int64GetDatum(t->id);
		kv[1] = Int32GetDatum(t->keep_runs);
		EltExec(keep_plan, kv, NULL, 0);
	}

	EltTransformDetails(&extra, t->id, relname, t->version, t->code_hash);
	EltJsonInt(&extra, "run_id", run_id);
	EltJsonString(&extra, "status", "succeeded");
	EltJsonString(&extra, "lineage", lineage);
	EltJsonInt(&extra, "rows_written", counts->written);
	EltJsonInt(&extra, "lineage_rows", counts->lineage_rows);
	/* on Citus: the row work ran on the shards (transform_pushdown.c) */
	if (counts->pushed_down)
		EltJsonBool(&extra, "pushed_down", true);
	EltJsonString(&extra, "run_hash", run_hash);
	EltAuditRecord(actor, "transform_run", t->name, EltJsonFinish(&extra), EltAuditReason(NULL));
	return run_id;
}

/* Execute a run's statement as the caller, with the run's state set. */
static void
execute_run(EltTransform *t, RunState *run, EltLineageInfo *info, EltTargetInfo *ti, bool row,
			bool undo, const char *stmt, EltPushdown *pd, int64 token, MemoryContext cxt,
			RunCounts *counts)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1];

	memset(counts, 0, sizeof(*counts));
	counts->undo = undo;
	current_run = run;
	EltTransformRunEnter(run->run_id);
	PG_TRY();
	{
		int			rc;
		int64		before;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		args[0] = Int64GetDatum(token);
		if (undo)
			EltUndoBegin(token, cxt);
		if (strcmp(t->mode, "replace") == 0)
		{
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("replace mode runs only at isolation level READ COMMITTED"),
						 errdetail("Under a transaction snapshot, rows another run wrote meanwhile would be neither deleted nor seen."),
						 errhint("Run it in a READ COMMITTED transaction, or use merge mode.")));
			rc = SPI_execute(psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", ti->relname), false, 0);
			if (rc < 0)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
			/* the rows it deletes are kept for a revert */
			if (undo)
				rc = SPI_execute_with_args(psprintf("DELETE FROM %s AS __elt_t WHERE %s", ti->relname,
													EltUndoImageSql(t->target, "__elt_t")),
										   1, types, args, NULL, false, 0);
			else
				rc = SPI_execute(psprintf("DELETE FROM %s", ti->relname), false, 0);
			if (rc < 0)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
			counts->deleted = (int64) SPI_processed;
		}
		before = rows_read(info->sources, &counts->read_unknown);
		if (row)
			EltCaptureBegin(t->target, ti->key_text ? list_length(ti->pk) : 0, info->slots, token, cxt);
		/* the row work on Citus's shards, or the one statement */
		if (pd != NULL && EltPushdownRun(pd, &counts->written))
			counts->pushed_down = true;
		else
		{
			rc = SPI_execute_with_args(stmt, (row || undo) ? 1 : 0, types, args, NULL, false, 0);
			if (rc < 0)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
			counts->written = (int64) SPI_processed;
		}
		if (row)
			counts->lineage_rows = EltCaptureEnd();
		counts->read = rows_read(info->sources, &counts->read_unknown) - before;
		/* the run's subtransaction: its rows carry this xid */
		counts->xid = GetCurrentTransactionIdIfAny();
		SPI_finish();
	}
	PG_FINALLY();
	{
		current_run = NULL;
		EltTransformRunLeave();
	}
	PG_END_TRY();
}

/* Record a run and its lineage; pending lineage never outlives this. */
static int64
store_run(EltTransform *t, int64 seed, Jsonb *params, const char *lineage,
		  TimestampTz started, TimestampTz finished, RunCounts *counts,
		  bool store_lineage, Oid actor, const char *relname)
{
	int64		run_id = 0;

	PG_TRY();
	{
		run_id = record_run(t, seed, params, lineage, started, finished, counts,
							store_lineage, actor, relname);
	}
	PG_CATCH();
	{
		EltCaptureDrop();
		EltUndoDrop();
		PG_RE_THROW();
	}
	PG_END_TRY();
	EltCaptureDrop();
	EltUndoDrop();
	return run_id;
}

/* A run in progress, shared by its body and its failure handler. */
typedef struct RunCall
{
	EltTransform	t;
	RunState	run;
	const char *lineage;		/* what the run records */
	bool		row;
	bool		undo;			/* keep what a revert needs */
	MemoryContext cxt;
	EltRunStep	step;			/* its part of a run manifest */
} RunCall;

/*
 * The body of a run: analyze and execute as the transform's owner, record
 * as the extension's owner.
 */
static void
run_body(void *arg)
{
	RunCall    *rc = arg;
	EltTransform *t = &rc->t;
	EltLineageInfo *info;
	EltTargetInfo	ti;
	char	   *blocker = NULL;
	char	   *stmt;
	int64		token;
	RunCounts	counts;
	TimestampTz finished;
	EltCatalogWrite cw;
	EltPushdown pd;
	EltPushdown *pdp = NULL;
	EltCitusTable citus;
	Oid			owner = get_role_oid(t->owner, false);
	EltAsRole	ar;

	/*
	 * As the transform's owner, like a view: the caller is a member of that
	 * role (or a superuser), and a superuser running someone's transform
	 * does not run their functions with superuser rights (restricted when
	 * the caller is another role).  The version's SQL means what it meant
	 * when it was written: its search_path.
	 */
	EltAsRoleBegin(&ar, owner, t->search_path, owner != GetUserId());

	info = EltLineageAnalyze(t->sql, rc->row);
	EltTransformCheckTarget(info->query, t->target, t->mode, rc->row, &ti, &blocker);
	EltTransformCheckPrivileges(t->target, ti.relname, t->mode, GetUserId());
	if (rc->row && (!info->row_ok || blocker != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("row lineage can no longer be recorded for transform \"%s\": %s",
						t->name, blocker ? blocker : info->blocker),
				 errhint("A table it reads or writes has changed since version %d. Run it with lineage => 'table', or add a new version.",
						 t->version)));
	if (!pg_strong_random(&token, sizeof(token)))
		token = (int64) pg_prng_uint64(&pg_global_prng_state);
	stmt = run_statement(t, info, &ti, rc->row, rc->undo);
	/*
	 * on Citus, the row work on the shards when the tables are colocated
	 * (the pushdown's SQL is built only for a Citus target)
	 */
	if (rc->row && !rc->undo && elt_citus_pushdown && EltCitusTableInfo(t->target, &citus) &&
		EltPushdownPrepare(&pd, t->target, info, &ti, target_key_sql(t->target, &ti),
						   conflict_clause(t, &ti, false)))
		pdp = &pd;
	/*
	 * Under the full policy the step copies its Citus tables (snapshots
	 * of two colocation groups at least: a reference table's and a
	 * distributed table's) in this transaction, then reads them together:
	 * one connection per node until EltAsRoleEnd (EltCitusSequential).
	 */
	if (rc->step.enabled && strcmp(rc->step.policy, "full") == 0 &&
		any_citus(info->sources, t->target))
		EltCitusSequential();
	/* the manifest's inputs: what the statement is about to read */
	EltRunStepInputs(&rc->step, info->sources);
	execute_run(t, &rc->run, info, &ti, rc->row, rc->undo, stmt, pdp, token, rc->cxt, &counts);
	if (rc->undo)
		counts.shape = EltUndoShape(t->target);
	rc->step.rows_read = counts.read;
	rc->step.rows_read_unknown = counts.read_unknown;
	rc->step.rows_written = counts.written;
	rc->step.rows_deleted = counts.deleted;
	rc->step.rows_deleted_known = strcmp(t->mode, "replace") == 0;
	EltRunStepOutput(&rc->step);
	EltAsRoleEnd(&ar);
	finished = GetCurrentTimestamp();
	rc->step.finished_at = finished;

	EltCatalogWriteBegin(&cw);
	rc->run.run_id = store_run(t, rc->run.seed, rc->run.params, rc->lineage, rc->run.started_at,
							   finished, &counts, rc->row, cw.actor, ti.relname);
	EltRunStepRecord(&rc->step, rc->run.run_id);
	EltCatalogWriteEnd(&cw);
}

/* What the failure recorder is told: the failed run, in a DSM segment. */
typedef struct FailedRun
{
	int64		run_id;
	int64		transform_id;
	int64		seed;
	int32		version;
	Oid			actor;
	TimestampTz started_at;
	TimestampTz finished_at;
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* name, code_hash, params,
												 * lineage, role, error:
												 * NUL-terminated, in turn */
} FailedRun;

/* bgw_extra of the failure recorder. */
typedef struct FailedRunArgs
{
	Oid			dboid;
	Oid			roleoid;
} FailedRunArgs;

/*
 * Record a failed run through a background worker (a transaction of its
 * own, which outlives the caller's rollback) and wait for it.  Best effort:
 * a WARNING when it cannot be done.
 */
static void
record_failure(RunCall *rc, ErrorData *edata)
{
	const char *strings[6];
	char	   *params = JsonbToCString(NULL, &rc->run.params->root, VARSIZE(rc->run.params));
	char	   *error = psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode),
								 edata->message ? edata->message : "error");
	Size		len = 0;
	int			i;
	dsm_segment *seg;
	FailedRun  *fr;
	char	   *p;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	FailedRunArgs args;
	Oid			owner = EltExtensionOwner();
	EltCatalogWrite cw;

	/* the failed run's id */
	EltCatalogWriteBegin(&cw);
	rc->run.run_id = EltDrawRunId();
	EltCatalogWriteEnd(&cw);

	strings[0] = rc->t.name;
	strings[1] = rc->t.code_hash;
	strings[2] = params;
	strings[3] = rc->lineage;
	strings[4] = GetUserNameFromId(GetUserId(), false);
	strings[5] = error;
	for (i = 0; i < 6; i++)
		len += strlen(strings[i]) + 1;
	seg = dsm_create(offsetof(FailedRun, data) + len, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
	{
		ereport(WARNING,
				(errmsg("failed run %lld of transform \"%s\" could not be recorded: no shared memory segment",
						(long long) rc->run.run_id, rc->t.name)));
		return;
	}
	fr = dsm_segment_address(seg);
	fr->run_id = rc->run.run_id;
	fr->transform_id = rc->t.id;
	fr->seed = rc->run.seed;
	fr->version = rc->t.version;
	fr->actor = GetUserId();
	fr->started_at = rc->run.started_at;
	fr->finished_at = GetCurrentTimestamp();
	p = fr->data;
	for (i = 0; i < 6; i++)
	{
		strcpy(p, strings[i]);
		p += strlen(strings[i]) + 1;
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "elt_governance");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "elt_transform_failure_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "elt_governance failed run %lld", (long long) rc->run.run_id);
	snprintf(worker.bgw_type, BGW_MAXLEN, "elt_governance failed run");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;
	args.dboid = MyDatabaseId;
	args.roleoid = owner;
	memcpy(worker.bgw_extra, &args, sizeof(args));
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(WARNING,
				(errmsg("failed run %lld of transform \"%s\" could not be recorded: no background worker slot",
						(long long) rc->run.run_id, rc->t.name),
				 errhint("Raise max_worker_processes.")));
	else
	{
		/* at most 10 s: it could wait for a lock this transaction holds */
		pid_t		pid;
		int			waited;

		for (waited = 0; waited < 10000; waited += 50)
		{
			if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 50, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		if (waited >= 10000)
			ereport(WARNING,
					(errmsg("failed run %lld of transform \"%s\" is not recorded yet",
							(long long) rc->run.run_id, rc->t.name),
					 errdetail("Its recorder is still waiting, probably for a lock this transaction holds; it records the run once the transaction ends.")));
	}
	dsm_detach(seg);
}


/* Background worker: write one failed run (and its audit row), then exit. */
void
elt_transform_failure_main(Datum main_arg)
{
	FailedRunArgs args;
	dsm_segment *seg;
	FailedRun  *fr;
	const char *strings[6];
	const char *p;
	int			i;
	Oid			types[11] = {INT8OID, INT8OID, INT4OID, TEXTOID, JSONBOID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, NAMEOID, TEXTOID, INT8OID};
	Datum		v[11];
	int			rc;
	EltJson		details;
	char		run_hash[ELT_SHA256_HEX_LEN + 1];

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleoid, 0);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the failed run to record is gone")));
	fr = dsm_segment_address(seg);
	p = fr->data;
	for (i = 0; i < 6; i++)
	{
		strings[i] = pstrdup(p);
		p += strlen(p) + 1;
	}
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	v[0] = Int64GetDatum(fr->run_id);
	v[1] = Int64GetDatum(fr->transform_id);
	v[2] = Int32GetDatum(fr->version);
	v[3] = CStringGetTextDatum(strings[1]);
	v[4] = DirectFunctionCall1(jsonb_in, CStringGetDatum(strings[2]));
	v[5] = CStringGetTextDatum(strings[3]);
	v[6] = TimestampTzGetDatum(fr->started_at);
	v[7] = TimestampTzGetDatum(fr->finished_at);
	v[8] = DirectFunctionCall1(namein, CStringGetDatum(strings[4]));
	v[9] = CStringGetTextDatum(strings[5]);
	v[10] = Int64GetDatum(fr->seed);
	rc = SPI_execute_with_args("INSERT INTO elt.transform_runs (run_id, transform_id, version, code_hash,"
							   " params, lineage, status, started_at, finished_at, role, error, random_seed)"
							   " VALUES ($1, $2, $3, $4, $5, $6, 'failed', $7, $8, $9, $10, $11) RETURNING *",
							   11, types, v, NULL, false, 0);
	if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "recording failed run: %s", SPI_result_code_string(rc));
	EltRunRowHash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, "", run_hash);
	EltJsonBegin(&details);
	EltJsonInt(&details, "run_id", fr->run_id);
	EltJsonInt(&details, "transform_id", fr->transform_id);
	EltJsonInt(&details, "version", fr->version);
	EltJsonString(&details, "code_hash", strings[1]);
	EltJsonString(&details, "status", "failed");
	EltJsonString(&details, "lineage", strings[3]);
	EltJsonString(&details, "error", strings[5]);
	EltJsonString(&details, "run_hash", run_hash);
	EltAuditRecord(fr->actor, "transform_run", strings[0], EltJsonFinish(&details), NULL);
	SPI_finish();
	PopActiveSnapshot();
	dsm_detach(seg);
	CommitTransactionCommand();
	proc_exit(0);
}

/*
 * elt.transform_run(name, params, lineage) without a sandbox (the SQL
 * function is sandbox_run.c's elt_transform_run): run the current version
 * in the caller's transaction, as the transform's owner, and record the run.
 */
Datum
EltTransformRunLive(FunctionCallInfo fcinfo)
{
	char	   *name;
	Jsonb	   *params;
	char	   *lineage;
	RunCall    *rc;
	EltCatalogWrite cw;
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *edata;

	EltRequireCatalog("transform_runs");
	name = EltRequiredText(fcinfo, 0, "name");
	params = PG_ARGISNULL(1)
		? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))
		: PG_GETARG_JSONB_P_COPY(1);
	if (!JB_ROOT_IS_OBJECT(params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be a JSON object"),
				 errhint("For example '{\"day\": \"2026-01-31\"}'; read a parameter with elt.param('day').")));
	lineage = PG_ARGISNULL(2) ? "row" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(lineage, "row") != 0 && strcmp(lineage, "table") != 0 && strcmp(lineage, "none") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid lineage \"%s\"", lineage),
				 errhint("Lineage: \"row\" (keys of every row), \"table\" (relations and columns only) or \"none\".")));
	if (current_run != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.transform_run() cannot be called inside a transform run"),
				 errhint("Chain transforms by running them one after the other.")));

	rc = palloc0(sizeof(RunCall));
	rc->cxt = cxt;
	EltCatalogWriteBegin(&cw);
	EltTransformLoad(&rc->t, name, false, cxt);
	EltCatalogWriteEnd(&cw);
	EltTransformCheckOwner(&rc->t, GetUserId(), "run");
	EltTransformRequireTarget(&rc->t);

	/* a version that only supports table lineage records table lineage */
	rc->row = strcmp(lineage, "row") == 0 && strcmp(rc->t.lineage_level, "row") == 0;
	rc->lineage = (strcmp(lineage, "row") == 0 && !rc->row) ? "table" : lineage;
	rc->undo = EltUndoEnabled();
	if (rc->undo && citus_target(&rc->t))
		rc->undo = false;
	rc->run.params = params;
	rc->run.started_at = GetCurrentTimestamp();

	/* the run's step of a manifest: its clock and seed */
	EltRunStepBegin(&rc->step, rc->run.started_at);
	rc->step.role = get_role_oid(rc->t.owner, false);
	rc->step.transform = rc->t.name;
	rc->step.transform_id = rc->t.id;
	rc->step.version = rc->t.version;
	rc->step.code_hash = rc->t.code_hash;
	rc->step.mode = rc->t.mode;
	rc->step.lineage = rc->lineage;
	rc->step.sql = rc->t.sql;
	rc->step.search_path = rc->t.search_path;
	rc->step.params = params;
	rc->step.target = rc->t.target;
	rc->step.started_at = rc->run.started_at;
	rc->run.clock = rc->step.clock;
	rc->run.seed = rc->step.seed;
	pg_prng_seed(&rc->run.prng, (uint64) rc->run.seed);

	edata = EltTrySubxact(run_body, rc);
	if (edata != NULL)
	{
		EltCaptureDrop();
		EltUndoDrop();
		current_run = NULL;
		EltTransformRunLeave();
		record_failure(rc, edata);
		ReThrowError(edata);
	}
	PG_RETURN_INT64(rc->run.run_id);
}

/* ---------------------------------------------------------------------
 * Inside a run
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(elt_param);

/* elt.param(name): a parameter of the run in progress, as text. */
Datum
elt_param(PG_FUNCTION_ARGS)
{
	char	   *name;
	JsonbValue	k;
	JsonbValue *v;

	name = EltRequiredText(fcinfo, 0, "name");
	if (current_run == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.param() can be used only while a transform runs"),
				 errhint("Run the transform with elt.transform_run(name, params).")));
	k.type = jbvString;
	k.val.string.val = name;
	k.val.string.len = strlen(name);
	v = findJsonbValueFromContainer(&current_run->params->root, JB_FOBJECT, &k);
	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run parameter \"%s\" is not set", name),
				 errhint("Pass it in params, for example elt.transform_run('transform', '{\"%s\": ...}').",
						 name)));
	switch (v->type)
	{
		case jbvNull:
			PG_RETURN_NULL();
		case jbvString:
			PG_RETURN_TEXT_P(cstring_to_text_with_len(v->val.string.val, v->val.string.len));
		case jbvNumeric:
			PG_RETURN_TEXT_P(cstring_to_text(DatumGetCString(DirectFunctionCall1(numeric_out,
																				 NumericGetDatum(v->val.numeric)))));
		case jbvBool:
			PG_RETURN_TEXT_P(cstring_to_text(v->val.boolean ? "true" : "false"));
		default:
			PG_RETURN_TEXT_P(cstring_to_text(JsonbToCString(NULL, v->val.binary.data, v->val.binary.len)));
	}
}

PG_FUNCTION_INFO_V1(elt_now);

/* elt.now(): the run's clock (see manifest.c), else the transaction's start. */
Datum
elt_now(PG_FUNCTION_ARGS)
{
	TimestampTz clock;

	if (current_run != NULL)
		PG_RETURN_TIMESTAMPTZ(current_run->clock);
	if (EltPipelineClock(&clock))
		PG_RETURN_TIMESTAMPTZ(clock);
	PG_RETURN_TIMESTAMPTZ(GetCurrentTransactionStartTimestamp());
}

PG_FUNCTION_INFO_V1(elt_random);

/* elt.random(): the run's random sequence, seeded from the run and step. */
Datum
elt_random(PG_FUNCTION_ARGS)
{
	double		v;

	if (current_run != NULL)
		PG_RETURN_FLOAT8(pg_prng_double(&current_run->prng));
	if (EltPipelineRandom(&v))
		PG_RETURN_FLOAT8(v);
	PG_RETURN_FLOAT8(pg_prng_double(&pg_global_prng_state));
}

/*
 * Replay one step (manifest.c): the recorded SQL with its relation
 * references replaced (remap: schema, name, ...), written into a sandbox
 * table in the recorded mode, with the recorded search_path, parameters,
 * clock and seed.  No lineage is recorded.  It runs as the current user:
 * manifest.c has switched to the run's role, in a security-restricted
 * operation (like run_body); anything else is a bug that would run the
 * recorded SQL with the caller's privileges.
 */
/* query_tree_walker callback: the relations a query reads, into *context. */
static bool
read_relations(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			*(List **) context = list_append_unique_oid(*(List **) context, rte->relid);
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, read_relations, context, QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, read_relations, context);
}

void
EltReplayStep(const char *sql, const char *search_path, List *remap, Oid target,
			  const char *mode, Jsonb *params, TimestampTz clock, int64 seed,
			  int64 *written, int64 *deleted, int64 *read)
{
	EltTransform	t;
	EltLineageInfo info;
	EltTargetInfo	ti;
	char	   *blocker = NULL;
	char	   *stmt;
	RunState	run;
	RunCounts	counts;
	int			guc_level;

	if (!InSecurityRestrictedOperation())
		elog(ERROR, "a replayed step must run in a security-restricted operation");
	memset(&t, 0, sizeof(t));
	t.name = "replay";
	t.target = target;
	t.mode = (char *) mode;
	memset(&info, 0, sizeof(info));

	guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", EltSearchPathTempLast(search_path), PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	info.query = EltAnalyzeSelectRemapped(sql, remap);
	EltTransformCheckTarget(info.query, target, mode, false, &ti, &blocker);
	if (read != NULL)
		(void) read_relations((Node *) info.query, &info.sources);
	stmt = run_statement(&t, &info, &ti, false, false);

	memset(&run, 0, sizeof(run));
	run.seed = seed;
	run.params = params;
	run.started_at = GetCurrentTimestamp();
	run.clock = clock;
	pg_prng_seed(&run.prng, (uint64) seed);
	execute_run(&t, &run, &info, &ti, false, false, stmt, NULL, 0, CurrentMemoryContext, &counts);
	AtEOXact_GUC(false, guc_level);
	*written = counts.written;
	*deleted = counts.deleted;
	if (read != NULL)
		*read = counts.read;
}
