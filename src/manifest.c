/*
 * manifest.c — run manifests: recording runs and their steps.
 *
 * A run is a transform run on its own, or the work between elt.run_begin()
 * and elt.run_end().  Each of its steps (a transform run) records, in the
 * transaction of its work, what it executed (version, code hash, SQL,
 * search_path, parameters, seed, timings) and the relations it read first
 * (inputs) and wrote (outputs): their columns and schema version, and by
 * policy their rows and checksum ('checksum') and a snapshot ('full').
 * When the run ends its manifest is assembled from the steps, with the
 * environment fingerprint, the run's clock and random seed, and kept
 * immutable with an id: the SHA-256 of its canonical JSON (jsonb's text
 * form) without "id".
 *
 * Consistency: with a policy other than 'none', under READ COMMITTED the
 * inputs of a step are locked in SHARE mode (and a target whose earlier
 * rows count, in SHARE ROW EXCLUSIVE mode) before they are checksummed, so
 * that the checksums and snapshots are of the rows the step reads; writers
 * of those relations wait until the transaction ends.  Only where the
 * step's role (the transform's owner) could take that lock itself, by
 * PostgreSQL's rule for LOCK TABLE (UPDATE, DELETE or TRUNCATE on the
 * relation): a role that may only read a table must not make its writers
 * wait.  A relation it may not lock is recorded as not checksummed, with
 * the reason, and under the policy 'full' the run is refused.  Under
 * REPEATABLE READ the transaction's snapshot does the same without locks,
 * for every relation.
 *
 * Inside a run, elt.now() is the run's clock (the time elt.run_begin() was
 * called, or a transform run's start) and elt.random() draws from a seed
 * derived from the run's seed and the step's number, so that a replayed
 * step draws the same numbers.
 *
 * The replay and verification of a run are replay.c's; they read the
 * manifests recorded here and record a replay through EltInsertRun,
 * EltInsertStep and EltStoreManifest.
 *
 * Layering: transform_run.c calls the EltRunStep* functions for every
 * transform run and tells the run in progress (EltTransformRunEnter); run ids
 * are drawn here (EltDrawRunId), where the run record lives.  This file
 * calls the shared layers (audit, checksum, lineage, snapshot, roles,
 * util) and never an engine above it.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "checksum.h"
#include "citus.h"
#include "lineage.h"
#include "manifest.h"
#include "roles.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * Settings and the run in progress
 * ---------------------------------------------------------------------
 */

enum
{
	POLICY_NONE,
	POLICY_CHECKSUM,
	POLICY_FULL
};

static const char *const policy_names[] = {"none", "checksum", "full"};

static const struct config_enum_entry policy_options[] = {
	{"none", POLICY_NONE, false},
	{"checksum", POLICY_CHECKSUM, false},
	{"full", POLICY_FULL, false},
	{NULL, 0, false}
};

static int	manifest_policy = POLICY_CHECKSUM;

/* The run begun by elt.run_begin() in this session. */
typedef struct PipelineRun
{
	int64		run_id;
	char	   *pipeline;
	const char *policy;
	TimestampTz clock;
	int64		seed;
	pg_prng_state prng;
	Oid			role;			/* who began it: other roles of the session do not see it */
	SubTransactionId begin_subid;	/* while elt.run_begin() is uncommitted */
	SubTransactionId end_subid; /* while elt.run_end() is uncommitted */
} PipelineRun;

static PipelineRun *pipeline = NULL;

static void
free_pipeline(void)
{
	if (pipeline == NULL)
		return;
	pfree(pipeline->pipeline);
	pfree(pipeline);
	pipeline = NULL;
}

/* The run in progress: begun, and not ended. */
static PipelineRun *
active_pipeline(void)
{
	if (pipeline == NULL || pipeline->end_subid != InvalidSubTransactionId ||
		pipeline->role != GetUserId())
		return NULL;
	return pipeline;
}

/* The id of the run this session's role has begun and not ended, or 0. */
int64
EltPipelineRunId(void)
{
	PipelineRun *p = active_pipeline();

	return p ? p->run_id : 0;
}

/*
 * The transform run in progress in this backend, as transform_run.c tells
 * it (EltTransformRunEnter/Leave): whether its statement is executing, and
 * its run id (0 while the statement executes: the id is drawn when the run
 * is recorded, after it).
 */
static bool in_transform_run = false;
static int64 current_transform_run = 0;

/* Called by transform_run.c when a run's statement starts executing. */
void
EltTransformRunEnter(int64 run_id)
{
	in_transform_run = true;
	current_transform_run = run_id;
}

/* Called by transform_run.c when the statement has ended, or failed. */
void
EltTransformRunLeave(void)
{
	in_transform_run = false;
	current_transform_run = 0;
}

/* Whether a transform run's statement is executing in this backend. */
bool
EltInTransformRun(void)
{
	return in_transform_run;
}

/* The id of the transform run in progress in this backend, or 0. */
int64
EltCurrentRunId(void)
{
	return current_transform_run;
}

/* A new id of a transform run or run (inside a catalog write). */
int64
EltDrawRunId(void)
{
	bool		isnull;

	if (SPI_execute("SELECT pg_catalog.nextval('elt.run_id_seq') AS run_id", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "drawing a run id failed");
	return EltSpiGetInt64(0, "run_id", &isnull);
}

/*
 * A run begun in a transaction that rolls back never began; a run ended
 * in one that rolls back is still open.
 */
static void
manifest_xact_callback(XactEvent event, void *arg)
{
	if (pipeline == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (pipeline->begin_subid != InvalidSubTransactionId ||
				pipeline->end_subid != InvalidSubTransactionId)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that began or ended a run"),
						 errhint("Begin and end runs in transactions that commit directly.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			if (pipeline->end_subid != InvalidSubTransactionId)
				free_pipeline();
			else
				pipeline->begin_subid = InvalidSubTransactionId;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (pipeline->begin_subid != InvalidSubTransactionId)
				free_pipeline();
			else
				pipeline->end_subid = InvalidSubTransactionId;
			break;
		default:
			break;
	}
}

static void
manifest_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (pipeline == NULL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		if (pipeline->begin_subid == mySubid)
			free_pipeline();
		else if (pipeline->end_subid == mySubid)
			pipeline->end_subid = InvalidSubTransactionId;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		if (pipeline->begin_subid == mySubid)
			pipeline->begin_subid = parentSubid;
		if (pipeline->end_subid == mySubid)
			pipeline->end_subid = parentSubid;
	}
}

void
EltManifestInit(void)
{
	DefineCustomEnumVariable("elt.manifest_policy",
							 "What the manifest of a transform run on its own records of the relations it reads and writes.",
							 "none: their columns; checksum: also their rows and checksums; "
							 "full: also snapshots, so that the run can be replayed. "
							 "elt.run_begin() takes its own policy.",
							 &manifest_policy,
							 POLICY_CHECKSUM,
							 policy_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	RegisterXactCallback(manifest_xact_callback, NULL);
	RegisterSubXactCallback(manifest_subxact_callback, NULL);
}

/* Whether manifests record checksums (elt.manifest_policy is not none); sandboxes ask too. */
bool
EltManifestChecksums(void)
{
	return manifest_policy != POLICY_NONE;
}

/* elt.now() outside a transform run: the clock of the run in progress. */
bool
EltPipelineClock(TimestampTz *clock)
{
	PipelineRun *p = active_pipeline();

	if (p == NULL)
		return false;
	*clock = p->clock;
	return true;
}

/* elt.random() outside a transform run: the run's own sequence. */
bool
EltPipelineRandom(double *value)
{
	PipelineRun *p = active_pipeline();

	if (p == NULL)
		return false;
	*value = pg_prng_double(&p->prng);
	return true;
}

/* The seed of step n of a run seeded with seed. */
static int64
step_seed(int64 seed, int step)
{
	return (int64) hash_bytes_uint32_extended((uint32) step, (uint64) seed);
}

/* ---------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------
 */

/* A timestamp as canonical text: ISO 8601, UTC, microseconds. */
static char *
utc_text(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

/* The fingerprint of the environment, as the current user sees it. */
char *
EltCurrentFingerprint(void)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *fp;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT elt.env_fingerprint()::pg_catalog.text AS f", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "computing the environment fingerprint failed");
	fp = MemoryContextStrdup(outer, EltSpiGetText(0, "f"));
	SPI_finish();
	return fp;
}

/* Why relid cannot be checksummed by role, or NULL. */
static const char *
not_checksummable(Oid relid)
{
	char		relkind = get_rel_relkind(relid);

	if (relkind == RELKIND_VIEW)
		return "it is a view";
	if (relkind == RELKIND_FOREIGN_TABLE)
		return "it is a foreign table";
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_MATVIEW)
		return "it is not a table";
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return "row-level security applies to it";
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		return "the role running it may not read all of it";
	return NULL;
}

/*
 * Whether the current user may lock relid in SHARE mode or stronger, by
 * PostgreSQL's rule for LOCK TABLE: UPDATE, DELETE or TRUNCATE on it.
 */
static bool
may_lock_share(Oid relid)
{
	return pg_class_aclcheck(relid, GetUserId(), ACL_UPDATE | ACL_DELETE | ACL_TRUNCATE) == ACLCHECK_OK;
}

/* Why a relation the step's role may not lock is not checksummed. */
static const char *
unlocked_note(bool target)
{
	return target ?
		"the role running it cannot lock it in SHARE ROW EXCLUSIVE mode (needs UPDATE, DELETE or TRUNCATE on it); "
		"under REPEATABLE READ it is checksummed without a lock" :
		"the role running it cannot lock it in SHARE mode (needs UPDATE, DELETE or TRUNCATE on it); "
		"under REPEATABLE READ it is checksummed without a lock";
}

/*
 * The JSON of a relation read or written by a step: its name, columns,
 * primary key and schema version, and by policy its rows, checksum and
 * snapshot; a Citus table's distribution (method, column, colocation
 * group).  Read with the active snapshot, as the current user.  A
 * relation the step could not lock (st->unlocked) is not checksummed.
 * A replay's output also names its sandbox table.
 */
char *
EltRelationJson(EltRunStep *st, Oid relid, const char *role, bool output)
{
	MemoryContext outer = CurrentMemoryContext;
	EltJson		buf;
	char	   *columns;
	char	   *primary_key;
	char	   *schema_version;
	char	   *checksum = NULL;
	const char *note = NULL;
	int			policy = strcmp(st->policy, "full") == 0 ? POLICY_FULL :
		strcmp(st->policy, "checksum") == 0 ? POLICY_CHECKSUM : POLICY_NONE;
	char	   *snapshot = NULL;
	EltCatalogWrite cw;

	/* columns, key and schema version, read as the extension's owner */
	EltCatalogWriteBegin(&cw);
	{
		static SPIPlanPtr plan = NULL;
		Oid			types[1] = {OIDOID};
		Datum		args[1];

		/* the shape's keys, each as jsonb writes it */
		EltPrepare(&plan,
				   "SELECT (s OPERATOR(pg_catalog.->) 'columns')::pg_catalog.text AS c,"
				   " (s OPERATOR(pg_catalog.->) 'primary_key')::pg_catalog.text AS k,"
				   " (s OPERATOR(pg_catalog.->) 'schema_version')::pg_catalog.text AS v"
				   " FROM elt._relation_shape($1) s",
				   1, types);
		args[0] = ObjectIdGetDatum(relid);
		EltExec(plan, args, NULL, 1);
		columns = MemoryContextStrdup(outer, EltSpiGetText(0, "c"));
		primary_key = MemoryContextStrdup(outer, EltSpiGetText(0, "k"));
		schema_version = MemoryContextStrdup(outer, EltSpiGetText(0, "v"));
	}
	EltCatalogWriteEnd(&cw);

	if (policy != POLICY_NONE)
	{
		note = not_checksummable(relid);
		if (note && policy == POLICY_FULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot snapshot %s for the run's manifest: %s", EltRelDisplayName(relid), note),
					 errhint("Under snapshot_policy 'full' (or elt.manifest_policy = full) every relation a run reads or writes is copied. "
							 "Read the tables behind it, or use the policy 'checksum'.")));
		if (note == NULL && list_member_oid(st->unlocked, relid))
		{
			note = unlocked_note(relid == st->target);
			if (policy == POLICY_FULL)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("cannot snapshot %s for the run's manifest: %s", EltRelDisplayName(relid),
								relid == st->target ?
								"the role running it cannot lock it in SHARE ROW EXCLUSIVE mode" :
								"the role running it cannot lock it in SHARE mode"),
						 errdetail("At READ COMMITTED the copy is kept consistent with what the step reads by that lock, "
								   "which needs UPDATE, DELETE or TRUNCATE on the table."),
						 errhint("Run the step in a REPEATABLE READ transaction, where the copy is taken without a lock, "
								 "or use the policy 'checksum'.")));
		}
		if (note == NULL && policy == POLICY_FULL)
		{
			char	   *shape_hash;
			int64		id = EltSnapshotCreate(relid, &checksum, &shape_hash);
			EltJson		s;

			EltJsonBegin(&s);
			EltJsonInt(&s, "id", id);
			EltJsonString(&s, "checksum", checksum);
			EltJsonString(&s, "shape_hash", shape_hash);
			snapshot = EltJsonFinish(&s);
			st->snapshots = lappend(st->snapshots, psprintf(INT64_FORMAT, id));
		}
		else if (note == NULL)
			checksum = EltTableChecksumHere(relid, NIL, output);
	}

	EltJsonBegin(&buf);
	EltJsonString(&buf, "relation", EltRelDisplayName(relid));
	EltJsonString(&buf, "schema", get_namespace_name(get_rel_namespace(relid)));
	EltJsonString(&buf, "name", get_rel_name(relid));
	EltJsonInt(&buf, "step", st->step);
	if (!output)
		EltJsonString(&buf, "role", role);
	/* the shape's keys: columns, primary_key, schema_version */
	EltJsonRaw(&buf, "columns", columns);
	EltJsonRaw(&buf, "primary_key", primary_key);
	EltJsonRaw(&buf, "schema_version", schema_version);
	/* a Citus table: how it is distributed (nothing for a plain table) */
	EltCitusDistributionJson(&buf, relid);
	if (checksum)
		EltJsonInt(&buf, "rows", EltChecksumRows(checksum));
	else
		EltJsonNull(&buf, "rows");
	EltJsonString(&buf, "checksum", checksum);
	EltJsonRaw(&buf, "snapshot", snapshot);
	if (note)
		EltJsonString(&buf, "not_checksummed", note);
	/* a replay's output: named as the original, with the sandbox table */
	if (output && st->sandbox_target)
		EltJsonString(&buf, "sandbox_relation", st->sandbox_target);
	return EltJsonFinish(&buf);
}

/* ---------------------------------------------------------------------
 * Steps: called by transform_run.c for every transform run
 * ---------------------------------------------------------------------
 */

/*
 * Start a step: the run it belongs to, its number, clock and seed.  A
 * transform run on its own is a run of one step with its own fingerprint,
 * whose clock is its start.
 */
void
EltRunStepBegin(EltRunStep *st, TimestampTz started)
{
	PipelineRun *p = active_pipeline();

	initStringInfo(&st->inputs);
	st->relations = NIL;
	st->snapshots = NIL;
	st->unlocked = NIL;
	st->output = NULL;
	st->not_replayable = NULL;
	/* a library newer than the extension's SQL (before ALTER EXTENSION UPDATE) */
	st->enabled = OidIsValid(EltCatalogRelid("run_manifests"));
	if (!st->enabled)
	{
		st->run_id = 0;
		st->policy = "none";
		st->clock = GetCurrentTimestamp();
		st->step = 1;
		st->seed = (int64) pg_prng_uint64(&pg_global_prng_state);
		st->fingerprint = NULL;
		return;
	}
	if (p != NULL)
	{
		static SPIPlanPtr plan = NULL;
		Oid			types[1] = {INT8OID};
		Datum		args[1];
		EltCatalogWrite cw;
		bool		isnull;

		st->run_id = p->run_id;
		st->policy = p->policy;
		st->clock = p->clock;
		/* steps that rolled back left no row: their numbers are used again */
		EltCatalogWriteBegin(&cw);
		EltPrepare(&plan,
				   "SELECT coalesce(pg_catalog.max(step), 0) + 1 AS n"
				   " FROM elt.run_steps WHERE run_id = $1",
				   1, types);
		args[0] = Int64GetDatum(p->run_id);
		EltExecLatest(plan, args, NULL, 1);
		st->step = (int) EltSpiGetInt64(0, "n", &isnull);
		EltCatalogWriteEnd(&cw);
		st->seed = step_seed(p->seed, st->step);
		st->fingerprint = NULL;
	}
	else
	{
		st->run_id = 0;
		st->policy = policy_names[manifest_policy];
		st->clock = started;
		st->step = 1;
		st->seed = (int64) pg_prng_uint64(&pg_global_prng_state);
		st->fingerprint = EltCurrentFingerprint();
	}
}

/* The relations a step's relation references name, and whether it can be replayed. */
static void
step_references(EltRunStep *st, List *sources)
{
	List	   *refs = EltRawRelationRefs(st->sql);
	List	   *named = NIL;
	ListCell   *lc;

	foreach(lc, refs)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);

		if (!OidIsValid(relid))
		{
			st->not_replayable = psprintf("relation \"%s\" it names was not found", rv->relname);
			st->relations = lappend(st->relations, pstrdup(rv->relname));
			continue;
		}
		st->relations = lappend(st->relations, EltRelDisplayName(relid));
		named = list_append_unique_oid(named, relid);
	}
	foreach(lc, sources)
	{
		Oid			relid = lfirst_oid(lc);

		if (!list_member_oid(named, relid))
			st->not_replayable = psprintf("it reads %s, which its SQL does not name", EltRelDisplayName(relid));
		else if (get_rel_relkind(relid) == RELKIND_VIEW || get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE)
			st->not_replayable = psprintf("it reads %s, which is not a table", EltRelDisplayName(relid));
	}
	foreach(lc, named)
		if (!list_member_oid(sources, lfirst_oid(lc)))
			st->not_replayable = psprintf("its SQL names %s, which the analyzed query does not read",
										  EltRelDisplayName(lfirst_oid(lc)));
}

/*
 * The relations a pipeline run has written in earlier steps: a later step
 * that reads one reads the run's own rows, which a replay makes again.
 */
static List *
written_relations(int64 run_id)
{
	static SPIPlanPtr plan = NULL;
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[1] = {INT8OID};
	Datum		args[1];
	EltCatalogWrite cw;
	List	   *names = NIL;
	uint64		i;

	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "SELECT DISTINCT s.fragment -> 'output' ->> 'relation' AS relation FROM elt.run_steps s"
			   " WHERE s.run_id = $1 AND s.fragment ? 'output'",
			   1, types);
	args[0] = Int64GetDatum(run_id);
	EltExecLatest(plan, args, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);

		names = lappend(names, pstrdup(EltSpiGetText(i, "relation")));
		MemoryContextSwitchTo(spi);
	}
	EltCatalogWriteEnd(&cw);
	return names;
}

static bool
name_member(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

static int
cmp_oid(const ListCell *a, const ListCell *b)
{
	Oid			x = lfirst_oid(a);
	Oid			y = lfirst_oid(b);

	return (x > y) - (x < y);
}

/*
 * Before a step executes (as the transform's owner, with its search_path):
 * its relation references, and the relations it reads that the run has
 * not written, as inputs.  A target whose earlier rows stay (append,
 * merge) is an input too.  A relation read by several steps is recorded
 * at each, since it may have changed in between (another transaction of
 * the pipeline, another session); a replay reloads its copy when it did.
 * At READ COMMITTED the relations to checksum are locked first (see the
 * file header), those the owner may lock; the others are not checksummed.
 */
void
EltRunStepInputs(EltRunStep *st, List *sources)
{
	List	   *written = st->run_id != 0 ? written_relations(st->run_id) : NIL;
	List	   *inputs = NIL;
	bool		target_input = false;
	ListCell   *lc;

	if (!st->enabled)
		return;

	step_references(st, sources);
	foreach(lc, sources)
		if (!name_member(written, EltRelDisplayName(lfirst_oid(lc))))
			inputs = lappend_oid(inputs, lfirst_oid(lc));
	if (strcmp(st->mode, "replace") != 0 && !list_member_oid(sources, st->target) &&
		!name_member(written, EltRelDisplayName(st->target)))
		target_input = true;

	if (strcmp(st->policy, "none") != 0 && !IsolationUsesXactSnapshot())
	{
		List	   *sorted = list_copy(inputs);

		/*
		 * In OID order, the target among them, so that two runs lock in
		 * the same order; the target in SHARE ROW EXCLUSIVE mode (which a
		 * replace run takes anyway) so that no one else writes it either.
		 * Not a relation that is not checksummed anyway (a view, a foreign
		 * table, row-level security, no SELECT), nor one the owner could
		 * not lock with LOCK TABLE: reading a table must not let a role
		 * hold up its writers.
		 */
		if (!list_member_oid(sorted, st->target))
			sorted = lappend_oid(sorted, st->target);
		list_sort(sorted, cmp_oid);
		foreach(lc, sorted)
		{
			Oid			relid = lfirst_oid(lc);

			if (not_checksummable(relid) != NULL)
				continue;
			if (!may_lock_share(relid))
			{
				st->unlocked = lappend_oid(st->unlocked, relid);
				continue;
			}
			LockRelationOid(relid, relid == st->target ? ShareRowExclusiveLock : ShareLock);
		}
	}

	/* what the step will read: a snapshot taken after the locks */
	PushActiveSnapshot(GetTransactionSnapshot());
	foreach(lc, inputs)
	{
		if (st->inputs.len > 0)
			appendStringInfoString(&st->inputs, ", ");
		appendStringInfoString(&st->inputs,
							   EltRelationJson(st, lfirst_oid(lc),
											 lfirst_oid(lc) == st->target ? "source, target" : "source",
											 false));
	}
	if (target_input)
	{
		if (st->inputs.len > 0)
			appendStringInfoString(&st->inputs, ", ");
		appendStringInfoString(&st->inputs, EltRelationJson(st, st->target, "target", false));
	}
	PopActiveSnapshot();
}

/* After a step executed: its target, as an output (seeing the step's rows). */
void
EltRunStepOutput(EltRunStep *st)
{
	if (!st->enabled)
		return;
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	st->output = EltRelationJson(st, st->target, NULL, true);
	PopActiveSnapshot();
}

/* The step's part of the manifest. */
static char *
step_json(EltRunStep *st, int64 transform_run_id)
{
	EltJson		buf;
	ListCell   *lc;

	EltJsonBegin(&buf);
	EltJsonBeginObject(&buf, "step");
	EltJsonInt(&buf, "step", st->step);
	EltJsonString(&buf, "transform", st->transform);
	if (st->transform_id != 0)
		EltJsonInt(&buf, "transform_id", st->transform_id);
	EltJsonInt(&buf, "version", st->version);
	EltJsonString(&buf, "code_hash", st->code_hash);
	EltJsonString(&buf, "mode", st->mode);
	EltJsonString(&buf, "lineage", st->lineage);
	EltJsonString(&buf, "target", st->sandbox_target ? NULL : EltRelDisplayName(st->target));
	EltJsonString(&buf, "sql", st->sql);
	EltJsonString(&buf, "search_path", st->search_path);
	EltJsonRaw(&buf, "params", JsonbToCString(NULL, &st->params->root, VARSIZE(st->params)));
	EltJsonInt(&buf, "seed", st->seed);
	EltJsonString(&buf, "started_at", utc_text(st->started_at));
	EltJsonString(&buf, "finished_at", utc_text(st->finished_at));
	EltJsonRaw(&buf, "duration_ms", psprintf("%.3f", (double) (st->finished_at - st->started_at) / 1000.0));
	if (!st->rows_read_unknown)
		EltJsonInt(&buf, "rows_read", st->rows_read);
	EltJsonInt(&buf, "rows_written", st->rows_written);
	if (st->rows_deleted_known)
		EltJsonInt(&buf, "rows_deleted", st->rows_deleted);
	if (transform_run_id != 0)
		EltJsonInt(&buf, "transform_run_id", transform_run_id);
	EltJsonBeginArray(&buf, "relations");
	foreach(lc, st->relations)
		EltJsonString(&buf, NULL, (char *) lfirst(lc));
	EltJsonEndArray(&buf);
	EltJsonBool(&buf, "replayable", st->not_replayable == NULL);
	if (st->not_replayable)
		EltJsonString(&buf, "not_replayable", st->not_replayable);
	if (st->sandbox_target)
		EltJsonString(&buf, "sandbox_target", st->sandbox_target);
	EltJsonEndObject(&buf);
	/* the inputs: finished documents, comma separated */
	EltJsonRaw(&buf, "inputs", psprintf("[%s]", st->inputs.data));
	if (st->output)
		EltJsonRaw(&buf, "output", st->output);
	return EltJsonFinish(&buf);
}

/* Insert a run's row (inside a catalog write). */
void
EltInsertRun(int64 run_id, const char *pipeline_name, const char *kind, Jsonb *params,
		   const char *policy, TimestampTz clock, int64 seed, const char *fingerprint,
		   Oid role, TimestampTz started, int64 replay_of, const char *sandbox, bool imported)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[14] = {INT8OID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID, INT8OID,
	TEXTOID, OIDOID, TIMESTAMPTZOID, INT8OID, TEXTOID, BOOLOID, TIMESTAMPTZOID};
	Datum		v[14];
	char		n[14] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	EltPrepare(&plan,
			   "INSERT INTO elt.run_defs (run_id, pipeline, kind, params, snapshot_policy, clock,"
			   " random_seed, fingerprint, role, started_at, replay_of, sandbox, imported,"
			   " backend_pid, backend_start)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::pg_catalog.jsonb, $9::pg_catalog.regrole, $10,"
			   " $11, $12, $13, CASE WHEN $3 = 'pipeline' THEN pg_catalog.pg_backend_pid() END,"
			   " CASE WHEN $3 = 'pipeline' THEN $14 END)",
			   14, types);
	v[0] = Int64GetDatum(run_id);
	v[1] = CStringGetTextDatum(pipeline_name);
	v[2] = CStringGetTextDatum(kind);
	v[3] = JsonbPGetDatum(params);
	v[4] = CStringGetTextDatum(policy);
	v[5] = TimestampTzGetDatum(clock);
	v[6] = Int64GetDatum(seed);
	v[7] = CStringGetTextDatum(fingerprint);
	v[8] = ObjectIdGetDatum(role);
	v[9] = TimestampTzGetDatum(started);
	v[10] = Int64GetDatum(replay_of);
	n[10] = replay_of ? ' ' : 'n';
	v[11] = sandbox ? CStringGetTextDatum(sandbox) : (Datum) 0;
	n[11] = sandbox ? ' ' : 'n';
	v[12] = BoolGetDatum(imported);
	v[13] = TimestampTzGetDatum(MyStartTimestamp);
	EltExec(plan, v, n, 0);
}

/* Insert a step and the snapshots it references (inside a catalog write). */
void
EltInsertStep(int64 run_id, EltRunStep *st, int64 transform_run_id)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr snap_plan = NULL;
	Oid			types[4] = {INT8OID, INT4OID, INT8OID, TEXTOID};
	Datum		v[4];
	char		n[4] = {' ', ' ', ' ', ' '};
	ListCell   *lc;

	EltPrepare(&plan,
			   "INSERT INTO elt.run_steps (run_id, step, transform_run_id, fragment)"
			   " VALUES ($1, $2, $3, $4::pg_catalog.jsonb)",
			   4, types);
	v[0] = Int64GetDatum(run_id);
	v[1] = Int32GetDatum(st->step);
	v[2] = Int64GetDatum(transform_run_id);
	n[2] = transform_run_id ? ' ' : 'n';
	v[3] = CStringGetTextDatum(step_json(st, transform_run_id));
	EltExec(plan, v, n, 0);

	EltPrepare(&snap_plan,
			   "INSERT INTO elt.run_snapshots (run_id, snapshot_id)"
			   " SELECT $1, pg_catalog.unnest($2::pg_catalog.int8[]) ON CONFLICT DO NOTHING",
			   2, (Oid[]) {INT8OID, TEXTOID});
	if (st->snapshots != NIL)
	{
		StringInfoData arr;

		initStringInfo(&arr);
		appendStringInfoChar(&arr, '{');
		foreach(lc, st->snapshots)
			appendStringInfo(&arr, "%s%s", foreach_current_index(lc) > 0 ? "," : "", (char *) lfirst(lc));
		appendStringInfoChar(&arr, '}');
		EltExec(snap_plan, (Datum[]) {Int64GetDatum(run_id), CStringGetTextDatum(arr.data)}, NULL, 0);
	}
}

/* Assemble, hash and keep a finished run's manifest (inside a catalog write). */
char *
EltStoreManifest(int64 run_id, TimestampTz finished)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr ins = NULL;
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		v[2];
	char	   *manifest;
	char		id[ELT_SHA256_HEX_LEN + 1];

	EltPrepare(&plan, "SELECT elt._run_manifest_assemble($1, $2)::pg_catalog.text AS m", 2, types);
	v[0] = Int64GetDatum(run_id);
	v[1] = TimestampTzGetDatum(finished);
	EltExecLatest(plan, v, NULL, 1);
	manifest = SPI_processed > 0 ? EltSpiGetText(0, "m") : NULL;
	if (manifest == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run " INT64_FORMAT " is not recorded", run_id),
				 errdetail("The transaction that began it did not commit, or the extension was created again since.")));
	EltSha256Hex(manifest, strlen(manifest), id);
	EltPrepare(&ins,
			   "INSERT INTO elt.run_manifests (run_id, manifest_id, manifest, finished_at)"
			   " VALUES ($1, $2, pg_catalog.jsonb_build_object('id', $2) OPERATOR(pg_catalog.||)"
			   " $3::pg_catalog.jsonb, $4)",
			   4, (Oid[]) {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID});
	EltExec(ins, (Datum[]) {Int64GetDatum(run_id), CStringGetTextDatum(id),
			CStringGetTextDatum(manifest), TimestampTzGetDatum(finished)}, NULL, 0);
	return pstrdup(id);
}

/*
 * Record a step (inside the catalog write of its transform run).  A
 * transform run on its own is also recorded as a run, with its manifest,
 * under the transform run's id.
 */
void
EltRunStepRecord(EltRunStep *st, int64 transform_run_id)
{
	int64		run_id = st->run_id;

	if (!st->enabled)
		return;

	if (run_id == 0)
	{
		run_id = transform_run_id;
		EltInsertRun(run_id, st->transform, "transform", st->params, st->policy, st->clock,
				   st->seed, st->fingerprint, st->role, st->started_at, 0, NULL, false);
	}
	EltInsertStep(run_id, st, transform_run_id);
	if (st->run_id == 0)
		(void) EltStoreManifest(run_id, st->finished_at);
}

/* ---------------------------------------------------------------------
 * elt.run_begin, elt.run_end, elt.run_manifest, elt.run_manifest_import
 * ---------------------------------------------------------------------
 */

/* Begin the audit details of an action on a run: {"run_id": ..., then the caller's. */
void
EltAuditRunBegin(EltJson *d, int64 run_id)
{
	EltJsonBegin(d);
	EltJsonInt(d, "run_id", run_id);
}

/* Audit an action on a run, with the details begun by EltAuditRunBegin. */
void
EltAuditRun(Oid actor, const char *action, const char *object, EltJson *d)
{
	EltAuditRecord(actor, action, object, EltJsonFinish(d), EltAuditReason(NULL));
}

PG_FUNCTION_INFO_V1(elt_run_begin);

/*
 * elt.run_begin(pipeline text, params jsonb DEFAULT '{}', snapshot_policy
 * text DEFAULT 'checksum') RETURNS bigint: begin a run in this session.
 */
Datum
elt_run_begin(PG_FUNCTION_ARGS)
{
	char	   *name;
	Jsonb	   *params;
	char	   *policy;
	int			p;
	char	   *fingerprint;
	EltCatalogWrite cw;
	int64		run_id;
	int64		seed;
	TimestampTz clock;
	MemoryContext old;

	EltRequireCatalog("run_defs");
	name = EltRequiredText(fcinfo, 0, "pipeline");
	EltCheckObjectName("pipeline", name);
	params = PG_ARGISNULL(1)
		? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))
		: PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_OBJECT(params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be a JSON object"),
				 errhint("For example '{\"day\": \"2026-01-31\"}'.")));
	policy = PG_ARGISNULL(2) ? "checksum" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	for (p = 0; p < 3; p++)
		if (strcmp(policy, policy_names[p]) == 0)
			break;
	if (p == 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid snapshot_policy \"%s\"", policy),
				 errhint("Policies: \"none\" (columns only), \"checksum\" (also rows and checksums) or \"full\" (also snapshots, for replay).")));
	if (pipeline != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run " INT64_FORMAT " (\"%s\") is already open in this session",
						pipeline->run_id, pipeline->pipeline),
				 errhint(pipeline->end_subid != InvalidSubTransactionId
						 ? "It ends when this transaction commits."
						 : "End it with elt.run_end() first.")));
	if (EltInTransformRun())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.run_begin() cannot be called inside a transform run")));

	fingerprint = EltCurrentFingerprint();
	clock = GetCurrentTimestamp();
	seed = (int64) pg_prng_uint64(&pg_global_prng_state);
	EltCatalogWriteBegin(&cw);
	run_id = EltDrawRunId();
	EltInsertRun(run_id, name, "pipeline", params, policy_names[p], clock, seed, fingerprint,
			   cw.actor, clock, 0, NULL, false);
	{
		EltJson		extra;

		EltAuditRunBegin(&extra, run_id);
		EltJsonString(&extra, "snapshot_policy", policy_names[p]);
		EltAuditRun(cw.actor, "run_begin", name, &extra);
	}
	EltCatalogWriteEnd(&cw);

	old = MemoryContextSwitchTo(TopMemoryContext);
	pipeline = palloc0(sizeof(PipelineRun));
	pipeline->run_id = run_id;
	pipeline->pipeline = pstrdup(name);
	pipeline->policy = policy_names[p];
	pipeline->clock = clock;
	pipeline->seed = seed;
	pg_prng_seed(&pipeline->prng, (uint64) seed);
	pipeline->role = GetUserId();
	pipeline->begin_subid = GetCurrentSubTransactionId();
	pipeline->end_subid = InvalidSubTransactionId;
	MemoryContextSwitchTo(old);
	PG_RETURN_INT64(run_id);
}

PG_FUNCTION_INFO_V1(elt_run_end);

/* elt.run_end() RETURNS bigint: end the session's run and keep its manifest. */
Datum
elt_run_end(PG_FUNCTION_ARGS)
{
	PipelineRun *p = active_pipeline();
	EltCatalogWrite cw;
	char	   *id;
	int64		run_id;

	EltRequireCatalog("run_defs");
	if (p == NULL && pipeline != NULL && pipeline->end_subid == InvalidSubTransactionId)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("run " INT64_FORMAT " was begun by role %s", pipeline->run_id,
						GetUserNameFromId(pipeline->role, false)),
				 errhint("End it as that role.")));
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no run is open in this session"),
				 errhint("Begin one with elt.run_begin(pipeline).")));
	if (EltInTransformRun())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.run_end() cannot be called inside a transform run")));
	run_id = p->run_id;
	EltCatalogWriteBegin(&cw);
	id = EltStoreManifest(run_id, GetCurrentTimestamp());
	{
		EltJson		extra;

		EltAuditRunBegin(&extra, run_id);
		EltJsonString(&extra, "manifest_id", id);
		EltAuditRun(cw.actor, "run_end", p->pipeline, &extra);
	}
	EltCatalogWriteEnd(&cw);
	p->end_subid = GetCurrentSubTransactionId();
	PG_RETURN_INT64(run_id);
}

/*
 * A finished run's manifest, its role, kind and sandbox, read as the
 * extension's owner; an error unless the caller has the privileges of the
 * run's role (or, to read it without replaying or verifying it, which runs
 * the role's SQL, is elt_reader).
 */
char *
EltLoadManifest(int64 run_id, Oid *role_out, bool *imported_out, bool to_replay)
{
	static SPIPlanPtr plan = NULL;
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[1] = {INT8OID};
	Datum		args[1];
	EltCatalogWrite cw;
	char	   *manifest;
	Oid			role;
	bool		isnull;

	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "SELECT r.role::pg_catalog.oid AS role, m.manifest::pg_catalog.text AS manifest, r.imported,"
			   " elt._backend_alive(r.backend_pid, r.backend_start) AS alive"
			   " FROM elt.run_defs r LEFT JOIN elt.run_manifests m ON m.run_id = r.run_id"
			   " WHERE r.run_id = $1",
			   1, types);
	args[0] = Int64GetDatum(run_id);
	EltExecLatest(plan, args, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run " INT64_FORMAT " does not exist", run_id),
				 errhint("elt.runs lists the runs you may read.")));
	role = DatumGetObjectId(EltSpiGetDatum(0, "role", &isnull));
	if (!superuser_arg(cw.actor) && !has_privs_of_role(cw.actor, role) &&
		(to_replay || !EltRoleIsReader(cw.actor)))
	{
		/* a dropped role: run_defs.role is a regrole, it keeps the number */
		const char *name = GetUserNameFromId(role, true);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for run " INT64_FORMAT, run_id),
				 name == NULL ?
				 (to_replay ?
				  errhint("Its role (OID %u) has been dropped: nobody may replay or verify it.", role) :
				  errhint("Its role (OID %u) has been dropped: only members of %s and superusers may read it.",
						  role, ELT_ROLE_READER)) :
				 to_replay ?
				 errhint("Only members of role %s, whose run it is, and superusers may replay or verify it: that runs the role's SQL.",
						 name) :
				 errhint("Only members of role %s, whose run it is, members of %s and superusers may read it.",
						 name, ELT_ROLE_READER)));
	}
	(void) EltSpiGetDatum(0, "manifest", &isnull);
	if (isnull && !EltSpiGetBool(0, "alive", &isnull))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run " INT64_FORMAT " was abandoned: its session ended before elt.run_end()", run_id),
				 errdetail("It has no manifest; the steps that committed are in elt.run_steps."),
				 errhint("Begin a new run with elt.run_begin().")));
	(void) EltSpiGetDatum(0, "manifest", &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run " INT64_FORMAT " is still open: it has no manifest yet", run_id),
				 errhint("The session that began it ends it with elt.run_end().")));
	manifest = MemoryContextStrdup(outer, EltSpiGetText(0, "manifest"));
	if (imported_out)
		*imported_out = EltSpiGetBool(0, "imported", &isnull);
	EltCatalogWriteEnd(&cw);
	if (role_out)
		*role_out = role;
	return manifest;
}

PG_FUNCTION_INFO_V1(elt_run_manifest);

/* elt.run_manifest(run_id bigint) RETURNS jsonb */
Datum
elt_run_manifest(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("run_id must not be null")));
	EltRequireCatalog("run_manifests");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in,
										CStringGetDatum(EltLoadManifest(PG_GETARG_INT64(0), NULL, NULL, false))));
}

PG_FUNCTION_INFO_V1(elt_run_manifest_import);

/*
 * elt.run_manifest_import(manifest jsonb) RETURNS bigint: keep a manifest
 * exported from another database as a run of the caller's, after checking
 * that its id is the hash of its content.  Importing one twice returns
 * the run made the first time.
 */
Datum
elt_run_manifest_import(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr check = NULL;
	static SPIPlanPtr find = NULL;
	static SPIPlanPtr ins = NULL;
	Jsonb	   *m;
	EltCatalogWrite cw;
	char	   *given;
	char	   *content;
	char		id[ELT_SHA256_HEX_LEN + 1];
	char	   *pipeline_name;
	bool		isnull;
	int64		run_id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("manifest must not be null")));
	EltRequireCatalog("run_manifests");
	m = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(m) || JB_ROOT_IS_SCALAR(m))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not a run manifest: a manifest is a JSON object"),
				 errhint("Export one with elt.run_manifest(run_id).")));
	EltCatalogWriteBegin(&cw);
	EltPrepare(&check,
			   "SELECT $1 ->> 'id' AS id, ($1 OPERATOR(pg_catalog.-) 'id'::pg_catalog.text)::pg_catalog.text AS content,"
			   " $1 ->> 'format' AS format, pg_catalog.jsonb_typeof($1 -> 'run') AS run,"
			   " pg_catalog.jsonb_typeof($1 -> 'steps') AS steps,"
			   " $1 -> 'run' ->> 'kind' AS kind, $1 -> 'run' ->> 'pipeline' AS pipeline,"
			   " $1 -> 'run' ->> 'snapshot_policy' AS policy,"
			   " ($1 -> 'run' ->> 'kind') IN ('transform', 'pipeline', 'replay', 'sandbox')"
			   "  AND ($1 -> 'run' ->> 'snapshot_policy') IN ('none', 'checksum', 'full')"
			   "  AND pg_catalog.jsonb_typeof($1 -> 'run' -> 'random_seed') = 'number'"
			   "  AND ($1 -> 'run' ->> 'clock') IS NOT NULL AND ($1 -> 'run' ->> 'started_at') IS NOT NULL"
			   "  AND ($1 -> 'run' ->> 'finished_at') IS NOT NULL AS complete",
			   1, (Oid[]) {JSONBOID});
	EltExec(check, (Datum[]) {JsonbPGetDatum(m)}, NULL, 1);
	if (!JB_ROOT_IS_OBJECT(m) || EltSpiGetText(0, "format") == NULL ||
		strcmp(EltSpiGetText(0, "format"), "elt_governance.run_manifest.v1") != 0 ||
		EltSpiGetText(0, "run") == NULL || strcmp(EltSpiGetText(0, "run"), "object") != 0 ||
		EltSpiGetText(0, "steps") == NULL || strcmp(EltSpiGetText(0, "steps"), "array") != 0 ||
		EltSpiGetText(0, "kind") == NULL || EltSpiGetText(0, "pipeline") == NULL ||
		EltSpiGetText(0, "policy") == NULL || EltSpiGetText(0, "complete") == NULL ||
		strcmp(EltSpiGetText(0, "complete"), "t") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not a run manifest"),
				 errdetail("A manifest is an object with \"format\": \"elt_governance.run_manifest.v1\", \"id\", \"steps\" and \"run\" with its kind, snapshot_policy, random_seed, clock, started_at and finished_at."),
				 errhint("Export one with elt.run_manifest(run_id).")));
	pipeline_name = pstrdup(EltSpiGetText(0, "pipeline"));
	given = EltSpiGetText(0, "id");
	content = EltSpiGetText(0, "content");
	EltSha256Hex(content, strlen(content), id);
	if (given == NULL || strcmp(given, id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the manifest's id does not match its content"),
				 errdetail("The id is %s; the SHA-256 of the rest is %s.", given ? given : "missing", id),
				 errhint("The manifest was changed after it was exported. Export it again.")));

	/* the same manifest again: the run it became */
	EltPrepare(&find,
			   "SELECT r.run_id FROM elt.run_manifests m JOIN elt.run_defs r ON r.run_id = m.run_id"
			   " WHERE m.manifest_id = $1 AND r.imported AND r.role = $2::pg_catalog.regrole",
			   2, (Oid[]) {TEXTOID, OIDOID});
	EltExecLatest(find, (Datum[]) {CStringGetTextDatum(id), ObjectIdGetDatum(cw.actor)}, NULL, 1);
	if (SPI_processed > 0)
	{
		run_id = EltSpiGetInt64(0, "run_id", &isnull);
		EltCatalogWriteEnd(&cw);
		PG_RETURN_INT64(run_id);
	}
	run_id = EltDrawRunId();
	EltPrepare(&ins,
			   "WITH r AS (INSERT INTO elt.run_defs (run_id, pipeline, kind, params, snapshot_policy, clock,"
			   "  random_seed, fingerprint, role, started_at, imported)"
			   " SELECT $1, $2 -> 'run' ->> 'pipeline', $2 -> 'run' ->> 'kind',"
			   "  coalesce($2 -> 'run' -> 'params', '{}'), $2 -> 'run' ->> 'snapshot_policy',"
			   "  ($2 -> 'run' ->> 'clock')::pg_catalog.timestamptz,"
			   "  ($2 -> 'run' ->> 'random_seed')::pg_catalog.int8,"
			   "  coalesce($2 -> 'fingerprint', '{}'), $3::pg_catalog.regrole,"
			   "  ($2 -> 'run' ->> 'started_at')::pg_catalog.timestamptz, true"
			   " RETURNING run_id)"
			   " INSERT INTO elt.run_manifests (run_id, manifest_id, manifest, finished_at)"
			   " SELECT r.run_id, $4, $2, ($2 -> 'run' ->> 'finished_at')::pg_catalog.timestamptz FROM r",
			   4, (Oid[]) {INT8OID, JSONBOID, OIDOID, TEXTOID});
	EltExec(ins, (Datum[]) {Int64GetDatum(run_id), JsonbPGetDatum(m), ObjectIdGetDatum(cw.actor),
			CStringGetTextDatum(id)}, NULL, 0);
	{
		EltJson		extra;

		EltAuditRunBegin(&extra, run_id);
		EltJsonString(&extra, "manifest_id", id);
		EltAuditRun(cw.actor, "run_manifest_import", pipeline_name, &extra);
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(run_id);
}
