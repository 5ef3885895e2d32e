/*
 * manifest.c — run manifests, replay and verification.
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
 * elt.replay() re-executes the recorded SQL of every step, its relation
 * references replaced by copies of the run's snapshots in a new sandbox
 * schema, with the recorded settings, clock and seeds, and records the
 * replay as a run of its own; elt.verify_replay() compares the two.  Both
 * run as the run's role in a security-restricted operation, never as the
 * caller (who makes the sandbox schema for that role): the sandbox, its
 * rows and the code that writes and reads them are that role's.
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
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "checksum.h"
#include "lineage.h"
#include "manifest.h"
#include "roles.h"
#include "transform.h"
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

/* The settings a replay applies from the recorded fingerprint. */
static const char *const replay_settings[] = {
	"TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits",
	"standard_conforming_strings", "bytea_output", "lc_monetary", "lc_numeric",
	"lc_time", "default_text_search_config", "timezone_abbreviations", "xmloption",
	NULL
};

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

static void
json_key(StringInfo buf, const char *key)
{
	if (buf->len > 0 && buf->data[buf->len - 1] != '{' && buf->data[buf->len - 1] != '[')
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
}

static void
json_text(StringInfo buf, const char *key, const char *value)
{
	json_key(buf, key);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

static void
json_int(StringInfo buf, const char *key, int64 value)
{
	json_key(buf, key);
	appendStringInfo(buf, INT64_FORMAT, value);
}

static void
json_raw(StringInfo buf, const char *key, const char *json)
{
	json_key(buf, key);
	appendStringInfoString(buf, json ? json : "null");
}

/* The fingerprint of the environment, as the current user sees it. */
static char *
current_fingerprint(void)
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
 * snapshot.  Read with the active snapshot, as the current user.  A
 * relation the step could not lock (st->unlocked) is not checksummed.
 */
static char *
relation_json(EltRunStep *st, Oid relid, const char *role, bool output)
{
	MemoryContext outer = CurrentMemoryContext;
	StringInfoData buf;
	char	   *shape;
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

		EltPrepare(&plan, "SELECT elt._relation_shape($1)::pg_catalog.text AS s", 1, types);
		args[0] = ObjectIdGetDatum(relid);
		EltExec(plan, args, NULL, 1);
		shape = MemoryContextStrdup(outer, EltSpiGetText(0, "s"));
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
			StringInfoData s;

			initStringInfo(&s);
			appendStringInfoChar(&s, '{');
			json_int(&s, "id", id);
			json_text(&s, "checksum", checksum);
			json_text(&s, "shape_hash", shape_hash);
			appendStringInfoChar(&s, '}');
			snapshot = s.data;
			st->snapshots = lappend(st->snapshots, psprintf(INT64_FORMAT, id));
		}
		else if (note == NULL)
			checksum = EltTableChecksum(relid, NIL);
	}

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_text(&buf, "relation", EltRelDisplayName(relid));
	json_text(&buf, "schema", get_namespace_name(get_rel_namespace(relid)));
	json_text(&buf, "name", get_rel_name(relid));
	json_int(&buf, "step", st->step);
	if (!output)
		json_text(&buf, "role", role);
	/* the shape's keys: columns, primary_key, schema_version */
	appendStringInfoString(&buf, ", ");
	appendBinaryStringInfo(&buf, shape + 1, strlen(shape) - 2);
	json_raw(&buf, "rows", checksum ? psprintf(INT64_FORMAT, EltChecksumRows(checksum)) : NULL);
	json_text(&buf, "checksum", checksum);
	json_raw(&buf, "snapshot", snapshot);
	if (note)
		json_text(&buf, "not_checksummed", note);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* ---------------------------------------------------------------------
 * Steps: called by transform.c for every transform run
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
		st->fingerprint = current_fingerprint();
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
							   relation_json(st, lfirst_oid(lc),
											 lfirst_oid(lc) == st->target ? "source, target" : "source",
											 false));
	}
	if (target_input)
	{
		if (st->inputs.len > 0)
			appendStringInfoString(&st->inputs, ", ");
		appendStringInfoString(&st->inputs, relation_json(st, st->target, "target", false));
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
	st->output = relation_json(st, st->target, NULL, true);
	PopActiveSnapshot();
	if (st->sandbox_target)
	{
		/* a replay's output: named as the original, with the sandbox table */
		StringInfoData buf;

		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, st->output, strlen(st->output) - 1);
		json_text(&buf, "sandbox_relation", st->sandbox_target);
		appendStringInfoChar(&buf, '}');
		st->output = buf.data;
	}
}

/* The step's part of the manifest. */
static char *
step_json(EltRunStep *st, int64 transform_run_id)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"step\": {");
	json_int(&buf, "step", st->step);
	json_text(&buf, "transform", st->transform);
	if (st->transform_id != 0)
		json_int(&buf, "transform_id", st->transform_id);
	json_int(&buf, "version", st->version);
	json_text(&buf, "code_hash", st->code_hash);
	json_text(&buf, "mode", st->mode);
	json_text(&buf, "lineage", st->lineage);
	json_text(&buf, "target", st->sandbox_target ? NULL : EltRelDisplayName(st->target));
	json_text(&buf, "sql", st->sql);
	json_text(&buf, "search_path", st->search_path);
	json_raw(&buf, "params", JsonbToCString(NULL, &st->params->root, VARSIZE(st->params)));
	json_int(&buf, "seed", st->seed);
	json_text(&buf, "started_at", utc_text(st->started_at));
	json_text(&buf, "finished_at", utc_text(st->finished_at));
	json_raw(&buf, "duration_ms", psprintf("%.3f", (double) (st->finished_at - st->started_at) / 1000.0));
	json_int(&buf, "rows_read", st->rows_read);
	json_int(&buf, "rows_written", st->rows_written);
	if (st->rows_deleted_known)
		json_int(&buf, "rows_deleted", st->rows_deleted);
	if (transform_run_id != 0)
		json_int(&buf, "transform_run_id", transform_run_id);
	json_key(&buf, "relations");
	appendStringInfoChar(&buf, '[');
	foreach(lc, st->relations)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, (char *) lfirst(lc));
	}
	appendStringInfoChar(&buf, ']');
	json_raw(&buf, "replayable", st->not_replayable ? "false" : "true");
	if (st->not_replayable)
		json_text(&buf, "not_replayable", st->not_replayable);
	if (st->sandbox_target)
		json_text(&buf, "sandbox_target", st->sandbox_target);
	appendStringInfoString(&buf, "}, \"inputs\": [");
	appendStringInfoString(&buf, st->inputs.data);
	appendStringInfoChar(&buf, ']');
	if (st->output)
		appendStringInfo(&buf, ", \"output\": %s", st->output);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Insert a run's row (inside a catalog write). */
static void
insert_run(int64 run_id, const char *pipeline_name, const char *kind, Jsonb *params,
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
static void
insert_step(int64 run_id, EltRunStep *st, int64 transform_run_id)
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
static char *
store_manifest(int64 run_id, TimestampTz finished)
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
		insert_run(run_id, st->transform, "transform", st->params, st->policy, st->clock,
				   st->seed, st->fingerprint, st->role, st->started_at, 0, NULL, false);
	}
	insert_step(run_id, st, transform_run_id);
	if (st->run_id == 0)
		(void) store_manifest(run_id, st->finished_at);
}

/* ---------------------------------------------------------------------
 * elt.run_begin, elt.run_end, elt.run_manifest, elt.run_manifest_import
 * ---------------------------------------------------------------------
 */

static void
audit_run(Oid actor, const char *action, const char *object, int64 run_id, const char *extra)
{
	StringInfoData d;

	initStringInfo(&d);
	appendStringInfoChar(&d, '{');
	EltAppendJsonInt(&d, "run_id", run_id);
	if (extra)
		appendStringInfo(&d, ", %s", extra);
	appendStringInfoChar(&d, '}');
	EltAuditRecord(actor, action, object, d.data, EltAuditReason(NULL));
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
	if (EltCurrentRunId() != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.run_begin() cannot be called inside a transform run")));

	fingerprint = current_fingerprint();
	clock = GetCurrentTimestamp();
	seed = (int64) pg_prng_uint64(&pg_global_prng_state);
	EltCatalogWriteBegin(&cw);
	run_id = EltDrawRunId();
	insert_run(run_id, name, "pipeline", params, policy_names[p], clock, seed, fingerprint,
			   cw.actor, clock, 0, NULL, false);
	{
		StringInfoData extra;

		initStringInfo(&extra);
		appendStringInfoChar(&extra, '{');
		EltAppendJsonString(&extra, "snapshot_policy", policy_names[p]);
		audit_run(cw.actor, "run_begin", name, run_id, extra.data + 1);
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
	if (EltCurrentRunId() != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.run_end() cannot be called inside a transform run")));
	run_id = p->run_id;
	EltCatalogWriteBegin(&cw);
	id = store_manifest(run_id, GetCurrentTimestamp());
	{
		StringInfoData extra;

		initStringInfo(&extra);
		appendStringInfoChar(&extra, '{');
		EltAppendJsonString(&extra, "manifest_id", id);
		audit_run(cw.actor, "run_end", p->pipeline, run_id, extra.data + 1);
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
static char *
load_manifest(int64 run_id, Oid *role_out, bool *imported_out, bool to_replay)
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
										CStringGetDatum(load_manifest(PG_GETARG_INT64(0), NULL, NULL, false))));
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
			   " ($1 -> 'run' ->> 'kind') IN ('transform', 'pipeline', 'replay')"
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
		StringInfoData extra;

		initStringInfo(&extra);
		appendStringInfoChar(&extra, '{');
		EltAppendJsonString(&extra, "manifest_id", id);
		audit_run(cw.actor, "run_manifest_import", pipeline_name, run_id, extra.data + 1);
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(run_id);
}

/* ---------------------------------------------------------------------
 * Replay
 * ---------------------------------------------------------------------
 */

/* A relation as a step of the run being replayed read it (an input). */
typedef struct ReplayInput
{
	int			step;
	char	   *role;
	char	   *columns;		/* JSON */
	char	   *snapshot_id;
	char	   *snapshot_checksum;
	char	   *snapshot_shape;
	char	   *storage;		/* the snapshot it is copied from */
} ReplayInput;

/* A relation of the run being replayed, and its copy in the sandbox. */
typedef struct ReplayRel
{
	char	   *relation;		/* as recorded: qualified, quoted */
	char	   *schema;
	char	   *name;
	List	   *inputs;			/* ReplayInput, by step: each time a step read it */
	char	   *output_shape;	/* {"columns": ..., "primary_key": ...}, or NULL */
	char	   *sandbox_schema;
	char	   *sandbox_name;
	char	   *sandbox;		/* qualified, quoted */
	Oid			sandbox_oid;
	ReplayInput *loaded;		/* the input whose rows the copy holds */
} ReplayRel;

static ReplayRel *
find_rel(List *rels, const char *relation)
{
	ListCell   *lc;

	foreach(lc, rels)
		if (strcmp(((ReplayRel *) lfirst(lc))->relation, relation) == 0)
			return lfirst(lc);
	return NULL;
}

/* Check that expr is one expression, not more SQL (it comes from a manifest). */
static void
check_expression(const char *expr, const char *relation)
{
	List	   *raw = raw_parser(psprintf("SELECT (%s)", expr), RAW_PARSE_DEFAULT);
	SelectStmt *s;

	if (list_length(raw) != 1 || !IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt) ||
		(s = (SelectStmt *) linitial_node(RawStmt, raw)->stmt)->fromClause != NIL ||
		list_length(s->targetList) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the manifest's default for a column of %s is not an expression: %s",
						relation, expr)));
}

/*
 * The CREATE TABLE statement of a relation's sandbox copy from its
 * recorded shape: column types checked as type names, defaults as single
 * expressions, identity columns as identity columns of the sandbox.
 */
static char *
sandbox_table_sql(ReplayRel *r)
{
	StringInfoData buf;
	uint64		i;
	int			rc;

	rc = SPI_execute_with_args("SELECT c ->> 'name' AS name, c ->> 'type' AS type,"
							   " (c ->> 'not_null')::boolean AS not_null, c ->> 'default' AS def,"
							   " c ->> 'generated' AS generated, (c ->> 'identity')::boolean AS identity"
							   " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb -> 'columns') c",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(r->output_shape)},
							   NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading a recorded shape failed");
	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE TABLE %s (", r->sandbox);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = EltSpiGetText(i, "name");
		char	   *type = EltSpiGetText(i, "type");
		char	   *def = EltSpiGetText(i, "def");
		char	   *gen = EltSpiGetText(i, "generated");
		bool		isnull;
		bool		notnull = EltSpiGetBool(i, "not_null", &isnull);
		bool		identity = EltSpiGetBool(i, "identity", &isnull);
		Oid			typid;
		int32		typmod;

		if (name == NULL || type == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the manifest's shape of %s has a column without a name or type", r->relation)));
		parseTypeString(type, &typid, &typmod, false);
		appendStringInfo(&buf, "%s%s %s", i > 0 ? ", " : "", quote_identifier(name),
						 format_type_extended(typid, typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
		if (gen)
		{
			check_expression(gen, r->relation);
			appendStringInfo(&buf, " GENERATED ALWAYS AS (%s) STORED", gen);
		}
		else if (identity)
			appendStringInfoString(&buf, " GENERATED BY DEFAULT AS IDENTITY");
		else if (def)
		{
			check_expression(def, r->relation);
			appendStringInfo(&buf, " DEFAULT (%s)", def);
		}
		if (notnull)
			appendStringInfoString(&buf, " NOT NULL");
	}
	rc = SPI_execute_with_args("SELECT k FROM pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb -> 'primary_key') k",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(r->output_shape)},
							   NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading a recorded key failed");
	if (SPI_processed > 0)
	{
		appendStringInfoString(&buf, ", PRIMARY KEY (");
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *k = EltSpiGetText(i, "k");

			if (k == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("the manifest's primary key of %s has a NULL column", r->relation)));
			appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", quote_identifier(k));
		}
		appendStringInfoChar(&buf, ')');
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * The storage of the snapshot an input refers to, among those that role
 * (the one the replay runs as) may read: a snapshot is readable by the
 * role that made it and its members (snapshot.c), and a replay's steps
 * ran as that role, so the recorded snapshot is normally one.  Preferred is
 * the recorded snapshot, if it is there with the recorded checksum, else
 * one with the same shape and checksum (an imported manifest's, or one made
 * again).  NULL when there is none.
 */
static char *
snapshot_storage(ReplayInput *in, Oid role)
{
	static SPIPlanPtr plan = NULL;
	MemoryContext outer = CurrentMemoryContext;
	EltCatalogWrite cw;
	char	   *storage = NULL;

	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "SELECT pg_catalog.format('elt_snapshots.%I', s.storage) AS storage FROM elt.snapshot_defs s"
			   " WHERE s.checksum = $2 AND s.shape_hash = $3"
			   "   AND pg_catalog.pg_has_role($4, s.created_by, 'USAGE')"
			   "   AND pg_catalog.to_regclass(pg_catalog.format('elt_snapshots.%I', s.storage)) IS NOT NULL"
			   " ORDER BY s.snapshot_id = $1 DESC, s.snapshot_id DESC LIMIT 1",
			   4, (Oid[]) {INT8OID, TEXTOID, TEXTOID, OIDOID});
	EltExecLatest(plan, (Datum[]) {Int64GetDatum(strtoi64(in->snapshot_id, NULL, 10)),
				  CStringGetTextDatum(in->snapshot_checksum), CStringGetTextDatum(in->snapshot_shape),
				  ObjectIdGetDatum(role)}, NULL, 1);
	if (SPI_processed > 0)
		storage = MemoryContextStrdup(outer, EltSpiGetText(0, "storage"));
	EltCatalogWriteEnd(&cw);
	return storage;
}

/* A text column of an SPI result row, copied into cxt (NULL stays NULL). */
static char *
spi_text(MemoryContext cxt, uint64 row, const char *column)
{
	char	   *v = EltSpiGetText(row, column);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/*
 * Read the relations of a manifest (inputs first, each with the steps that
 * read it in order, then outputs not read), into cxt.
 */
static List *
replay_relations(const char *manifest, int64 run_id, MemoryContext cxt)
{
	List	   *rels = NIL;
	uint64		i;
	int			rc;

	rc = SPI_execute_with_args("SELECT i ->> 'relation' AS relation, i ->> 'schema' AS schema, i ->> 'name' AS name,"
							   " (i ->> 'step')::int AS step, i ->> 'role' AS role, (i -> 'columns')::text AS columns,"
							   " i -> 'snapshot' ->> 'id' AS snapshot_id, i -> 'snapshot' ->> 'checksum' AS snapshot_checksum,"
							   " i -> 'snapshot' ->> 'shape_hash' AS snapshot_shape, i ->> 'not_checksummed' AS not_checksummed"
							   " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb -> 'inputs') WITH ORDINALITY e(i, n)"
							   " ORDER BY (i ->> 'step')::int, n",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the manifest's inputs failed");
	for (i = 0; i < SPI_processed; i++)
	{
		ReplayInput *in = MemoryContextAllocZero(cxt, sizeof(ReplayInput));
		char	   *relation = spi_text(cxt, i, "relation");
		ReplayRel  *r;
		bool		isnull;
		MemoryContext old;

		in->step = (int) EltSpiGetInt64(i, "step", &isnull);
		in->role = spi_text(cxt, i, "role");
		in->columns = spi_text(cxt, i, "columns");
		in->snapshot_id = spi_text(cxt, i, "snapshot_id");
		in->snapshot_checksum = spi_text(cxt, i, "snapshot_checksum");
		in->snapshot_shape = spi_text(cxt, i, "snapshot_shape");
		if (relation == NULL || EltSpiGetText(i, "name") == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("run " INT64_FORMAT "'s manifest has an input without a name", run_id)));
		if (in->snapshot_id == NULL || in->snapshot_checksum == NULL || in->snapshot_shape == NULL)
		{
			const char *why = EltSpiGetText(i, "not_checksummed");

			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("run " INT64_FORMAT " cannot be replayed: it kept no snapshot of %s",
							run_id, relation),
					 why ? errdetail("Its manifest says it was not checksummed: %s.", why) : 0,
					 errhint("Runs recorded with snapshot_policy 'full' can be replayed: "
							 "elt.run_begin(pipeline, params, 'full'), or SET elt.manifest_policy = 'full' for transform runs on their own.")));
		}
		if (in->columns == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the manifest's input %s has no columns", relation)));
		old = MemoryContextSwitchTo(cxt);
		r = find_rel(rels, relation);
		if (r == NULL)
		{
			r = palloc0(sizeof(ReplayRel));
			r->relation = relation;
			r->schema = spi_text(cxt, i, "schema");
			r->name = spi_text(cxt, i, "name");
			rels = lappend(rels, r);
		}
		r->inputs = lappend(r->inputs, in);
		MemoryContextSwitchTo(old);
	}
	rc = SPI_execute_with_args("SELECT o ->> 'relation' AS relation, o ->> 'schema' AS schema, o ->> 'name' AS name,"
							   " pg_catalog.jsonb_build_object('columns', o -> 'columns',"
							   "  'primary_key', o -> 'primary_key')::text AS shape"
							   " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb -> 'outputs') o",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the manifest's outputs failed");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *relation = spi_text(cxt, i, "relation");
		ReplayRel  *r = relation ? find_rel(rels, relation) : NULL;

		if (relation == NULL || EltSpiGetText(i, "name") == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("run " INT64_FORMAT "'s manifest has an output without a name", run_id)));
		if (r == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			r = palloc0(sizeof(ReplayRel));
			r->relation = relation;
			r->schema = spi_text(cxt, i, "schema");
			r->name = spi_text(cxt, i, "name");
			rels = lappend(rels, r);
			MemoryContextSwitchTo(old);
		}
		r->output_shape = spi_text(cxt, i, "shape");
	}
	return rels;
}

/* Apply the recorded settings; WARNING with what still differs from the recorded fingerprint. */
static void
apply_recorded_settings(const char *manifest, int64 run_id)
{
	uint64		i;
	int			rc;

	rc = SPI_execute_with_args("SELECT s.key, s.value FROM pg_catalog.jsonb_each_text($1::pg_catalog.jsonb -> 'fingerprint' -> 'settings') s",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the recorded settings failed");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *key = EltSpiGetText(i, "key");
		char	   *value = EltSpiGetText(i, "value");
		int			k;

		for (k = 0; replay_settings[k]; k++)
			if (strcmp(replay_settings[k], key) == 0 && value != NULL)
				(void) set_config_option(key, value, PGC_USERSET, PGC_S_SESSION,
										 GUC_ACTION_SAVE, true, 0, false);
	}
	rc = SPI_execute_with_args("SELECT pg_catalog.count(*) AS n, pg_catalog.string_agg(pg_catalog.format('%s: %s, now %s', d.key,"
							   " coalesce(d.a_value::text, 'none'), coalesce(d.b_value::text, 'none')),"
							   " E'\\n' ORDER BY d.key) AS diff"
							   " FROM elt.env_diff($1::pg_catalog.jsonb -> 'fingerprint', elt.env_fingerprint()) d"
							   " WHERE d.key NOT IN ('settings.search_path', 'settings.elt.reason')",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "comparing fingerprints failed");
	{
		bool		isnull;

		if (EltSpiGetInt64(0, "n", &isnull) > 0)
			ereport(WARNING,
					(errmsg("the environment differs from the one run " INT64_FORMAT " recorded", run_id),
					 errdetail("%s", EltSpiGetText(0, "diff")),
					 errhint("Results that depend on these may differ; elt.verify_replay() shows whether they do.")));
	}
}

/* One step of the manifest, as read for its replay. */
typedef struct ReplayStep
{
	int			step;
	char	   *transform;
	int64		transform_id;
	int			version;
	char	   *code_hash;
	char	   *mode;
	char	   *lineage;
	char	   *target;
	char	   *sql;
	char	   *search_path;
	char	   *params;
	int64		seed;
	char	   *relations;		/* JSON array */
	bool		replayable;
	char	   *not_replayable;
} ReplayStep;

static List *
replay_steps(const char *manifest, int64 run_id, MemoryContext cxt)
{
	List	   *steps = NIL;
	uint64		i;
	int			rc;

	rc = SPI_execute_with_args("SELECT (s ->> 'step')::int AS step, s ->> 'transform' AS transform,"
							   " (s ->> 'transform_id')::int8 AS transform_id,"
							   " (s ->> 'version')::int AS version, s ->> 'code_hash' AS code_hash,"
							   " s ->> 'mode' AS mode, s ->> 'lineage' AS lineage, s ->> 'target' AS target,"
							   " s ->> 'sql' AS sql, s ->> 'search_path' AS search_path,"
							   " coalesce(s -> 'params', '{}')::text AS params,"
							   " (s ->> 'seed')::int8 AS seed, coalesce(s -> 'relations', '[]')::text AS relations,"
							   " coalesce((s ->> 'replayable')::boolean, false) AS replayable,"
							   " s ->> 'not_replayable' AS not_replayable"
							   " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb -> 'steps') s"
							   " ORDER BY 1",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the manifest's steps failed");
	for (i = 0; i < SPI_processed; i++)
	{
		ReplayStep *s = MemoryContextAllocZero(cxt, sizeof(ReplayStep));
		bool		isnull;

		s->step = (int) EltSpiGetInt64(i, "step", &isnull);
		s->transform = spi_text(cxt, i, "transform");
		s->transform_id = EltSpiGetInt64(i, "transform_id", &isnull);
		s->version = (int) EltSpiGetInt64(i, "version", &isnull);
		s->code_hash = spi_text(cxt, i, "code_hash");
		s->mode = spi_text(cxt, i, "mode");
		s->lineage = spi_text(cxt, i, "lineage");
		s->target = spi_text(cxt, i, "target");
		s->sql = spi_text(cxt, i, "sql");
		s->search_path = spi_text(cxt, i, "search_path");
		s->params = spi_text(cxt, i, "params");
		s->seed = EltSpiGetInt64(i, "seed", &isnull);
		s->relations = spi_text(cxt, i, "relations");
		s->replayable = EltSpiGetBool(i, "replayable", &isnull);
		s->not_replayable = spi_text(cxt, i, "not_replayable");
		if (s->transform == NULL || s->code_hash == NULL || s->mode == NULL || s->target == NULL ||
			s->sql == NULL || s->search_path == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("step %d of run " INT64_FORMAT "'s manifest is incomplete", s->step, run_id)));
		if (!s->replayable)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("run " INT64_FORMAT " cannot be replayed: step %d (transform \"%s\") %s",
							run_id, s->step, s->transform,
							s->not_replayable ? s->not_replayable : "was not recorded as replayable")));
		if (strcmp(s->mode, "append") != 0 && strcmp(s->mode, "replace") != 0 &&
			strcmp(s->mode, "merge") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("step %d of run " INT64_FORMAT " has an unknown mode \"%s\"", s->step, run_id, s->mode)));
		{
			char	   *norm = EltNormalizeSql(s->sql);
			char		hash[ELT_SHA256_HEX_LEN + 1];

			EltSha256Hex(norm, strlen(norm), hash);
			if (strcmp(hash, s->code_hash) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("step %d of run " INT64_FORMAT ": its SQL does not match its code hash",
								s->step, run_id)));
		}
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			steps = lappend(steps, s);
			MemoryContextSwitchTo(old);
		}
	}
	if (steps == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run " INT64_FORMAT " has no steps to replay", run_id),
				 errhint("Only transform runs are replayed: work between elt.run_begin() and elt.run_end() other than elt.transform_run() is not recorded.")));
	return steps;
}

/* A sandbox table name for r not used yet. */
static char *
sandbox_name(List *rels, ReplayRel *r)
{
	char	   *name = r->name;
	int			n = 1;

	for (;;)
	{
		ListCell   *lc;
		bool		used = false;

		foreach(lc, rels)
		{
			ReplayRel  *o = lfirst(lc);

			if (o != r && o->sandbox_name && strcmp(o->sandbox_name, name) == 0)
				used = true;
		}
		if (!used)
			return name;
		n++;
		name = psprintf("%s_%d", r->name, n);
		if (strlen(name) >= NAMEDATALEN)
			name = psprintf("rel_%d", n);
	}
}

/*
 * A relation's JSON made by relation_json() for a sandbox table, named as
 * the original relation (with sandbox_relation when given).
 */
static char *
rename_relation_json(const char *json, ReplayRel *r, const char *sandbox_relation)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *out;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT ($1::pg_catalog.jsonb OPERATOR(pg_catalog.||)"
							  " pg_catalog.jsonb_build_object('relation', $2, 'schema', $3, 'name', $4)"
							  " OPERATOR(pg_catalog.||) CASE WHEN $5 IS NULL THEN '{}'::pg_catalog.jsonb"
							  "  ELSE pg_catalog.jsonb_build_object('sandbox_relation', $5) END)::text AS o",
							  5, (Oid[]) {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID},
							  (Datum[]) {CStringGetTextDatum(json), CStringGetTextDatum(r->relation),
							  r->schema ? CStringGetTextDatum(r->schema) : (Datum) 0, CStringGetTextDatum(r->name),
							  sandbox_relation ? CStringGetTextDatum(sandbox_relation) : (Datum) 0},
							  r->schema ? (sandbox_relation ? "     " : "    n") : (sandbox_relation ? "  n  " : "  n n"),
							  true, 1) != SPI_OK_SELECT)
		elog(ERROR, "naming a replayed relation failed");
	out = MemoryContextStrdup(outer, EltSpiGetText(0, "o"));
	SPI_finish();
	return out;
}

/*
 * Fill r's sandbox copy with the rows of the snapshot of input in (SPI
 * connected, as the role the replay runs as, so that the defaults of
 * columns the snapshot lacks run as that role): a table made from the
 * relation's output shape gets the snapshot's columns that it has; another
 * is made from the snapshot.  A copy filled before is emptied (or made
 * again) first.
 */
static void
load_sandbox(ReplayRel *r, ReplayInput *in)
{
	if (r->output_shape != NULL)
	{
		char	   *cols;

		if (r->loaded != NULL)
			EltSpiExec(psprintf("TRUNCATE %s", r->sandbox));
		if (SPI_execute_with_args("SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c ->> 'name'), ', ') AS cols"
								  " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) c"
								  " WHERE c ->> 'name' IN (SELECT o ->> 'name' FROM pg_catalog.jsonb_array_elements($2::pg_catalog.jsonb -> 'columns') o"
								  "                       WHERE o ->> 'generated' IS NULL)",
								  2, (Oid[]) {TEXTOID, TEXTOID},
								  (Datum[]) {CStringGetTextDatum(in->columns), CStringGetTextDatum(r->output_shape)},
								  NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading columns failed");
		cols = EltSpiGetText(0, "cols");
		if (cols != NULL)
			EltSpiExec(psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
								r->sandbox, cols, cols, in->storage));
	}
	else
	{
		/* its columns may have changed between the steps that read it */
		if (r->loaded != NULL)
			EltSpiExec(psprintf("DROP TABLE %s", r->sandbox));
		EltSpiExec(psprintf("CREATE TABLE %s AS SELECT * FROM %s", r->sandbox, in->storage));
	}
	CommandCounterIncrement();
	r->sandbox_oid = RangeVarGetRelid(makeRangeVar(r->sandbox_schema, r->sandbox_name, -1), NoLock, false);
	r->loaded = in;
}

/*
 * The replay of one step, executed and recorded in st, as the role the
 * replay runs as (elt_replay has switched to it).
 */
static void
replay_step(ReplayStep *s, List *rels, const char *sandbox, TimestampTz clock, EltRunStep *st, int64 run_id)
{
	List	   *remap = NIL;
	MemoryContext outer = CurrentMemoryContext;
	ReplayRel  *target = find_rel(rels, s->target);
	uint64		i;
	int			rc;
	ListCell   *lc;

	if (target == NULL || target->sandbox_oid == InvalidOid || target->output_shape == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("step %d of run " INT64_FORMAT " writes %s, which the manifest does not list as an output",
						s->step, run_id, s->target)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT r FROM pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb) r",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(s->relations)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading a step's relations failed");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = EltSpiGetText(i, "r");
		ReplayRel  *r = name ? find_rel(rels, name) : NULL;

		if (r == NULL || r->sandbox_oid == InvalidOid)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("step %d of run " INT64_FORMAT " reads %s, which the manifest lists neither as an input nor as an output",
							s->step, run_id, name ? name : "a relation")));
		{
			MemoryContext spi = MemoryContextSwitchTo(outer);

			remap = lappend(remap, pstrdup(sandbox));
			remap = lappend(remap, pstrdup(r->sandbox_name));
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();

	/*
	 * What this step read, as the run recorded it: a copy that holds other
	 * rows (the relation changed since an earlier step read it) is filled
	 * again, then recorded as the step finds it.
	 */
	initStringInfo(&st->inputs);
	foreach(lc, rels)
	{
		ReplayRel  *r = lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, r->inputs)
		{
			ReplayInput *in = lfirst(lc2);
			EltRunStep	ist;
			char	   *json;

			if (in->step != s->step)
				continue;
			if (r->loaded != in && strcmp(r->loaded->storage, in->storage) != 0)
			{
				if (SPI_connect() != SPI_OK_CONNECT)
					elog(ERROR, "SPI_connect failed");
				load_sandbox(r, in);
				SPI_finish();
			}
			memset(&ist, 0, sizeof(ist));
			ist.policy = "checksum";
			ist.step = s->step;
			PushActiveSnapshot(GetTransactionSnapshot());
			json = relation_json(&ist, r->sandbox_oid, in->role, false);
			PopActiveSnapshot();
			if (st->inputs.len > 0)
				appendStringInfoString(&st->inputs, ", ");
			appendStringInfoString(&st->inputs, rename_relation_json(json, r, r->sandbox));
		}
	}
	st->enabled = true;
	st->run_id = run_id;
	st->policy = "checksum";
	st->step = s->step;
	st->clock = clock;
	st->seed = s->seed;
	st->transform = s->transform;
	st->transform_id = s->transform_id;
	st->version = s->version;
	st->code_hash = s->code_hash;
	st->mode = s->mode;
	st->lineage = "none";
	st->sql = s->sql;
	st->search_path = s->search_path;
	st->params = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s->params)));
	st->target = target->sandbox_oid;
	st->sandbox_target = target->sandbox;
	st->relations = NIL;
	{
		/* the step's references, as recorded */
		int			k;

		for (k = 0; k < list_length(remap); k += 2)
			st->relations = lappend(st->relations,
									quote_qualified_identifier(list_nth(remap, k), list_nth(remap, k + 1)));
	}
	st->started_at = GetCurrentTimestamp();
	EltReplayStep(s->sql, s->search_path, remap, target->sandbox_oid, s->mode, st->params,
				  clock, s->seed, &st->rows_written, &st->rows_deleted);
	st->rows_deleted_known = strcmp(s->mode, "replace") == 0;
	st->finished_at = GetCurrentTimestamp();
	EltRunStepOutput(st);
	/* recorded under the original's name, with the sandbox table */
	st->output = rename_relation_json(st->output, target, NULL);
}

/*
 * The role a replay runs as, checked: the run's role, which the caller has
 * the privileges of (load_manifest), and which must still exist.  The
 * steps of a non-imported pipeline run must have run as that role too: a
 * transform runs as its owner (transform.c), who may be another role than
 * the one that began the run (a superuser, or a member of the owner), and
 * replaying that role's SQL as the run's role would give it privileges it
 * did not have.  An imported run's role is the importer, and its
 * transforms are another database's.
 */
static Oid
replay_role(int64 run_id, Oid role, const char *kind, bool imported, List *steps)
{
	ListCell   *lc;

	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run " INT64_FORMAT " cannot be replayed: its role no longer exists", run_id),
				 errdetail("The run belongs to the role with OID %u, which has been dropped. "
						   "A replay runs the recorded SQL as the run's role, never as another.", role),
				 errhint("Read what it ran with elt.run_manifest(" INT64_FORMAT "). To replay it, run its transforms "
						 "again as an existing role with snapshot_policy 'full', and replay that run.", run_id)));
	if (!imported && kind != NULL && strcmp(kind, "pipeline") == 0)
	{
		static SPIPlanPtr plan = NULL;
		EltCatalogWrite cw;

		EltCatalogWriteBegin(&cw);
		EltPrepare(&plan,
				   "SELECT owner::pg_catalog.text AS owner FROM elt.transform_defs WHERE transform_id = $1",
				   1, (Oid[]) {INT8OID});
		foreach(lc, steps)
		{
			ReplayStep *s = lfirst(lc);
			char	   *owner;
			Oid			o;

			EltExecLatest(plan, (Datum[]) {Int64GetDatum(s->transform_id)}, NULL, 1);
			owner = SPI_processed > 0 ? EltSpiGetText(0, "owner") : NULL;
			if (owner == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("step %d of run " INT64_FORMAT " names transform \"%s\" (id " INT64_FORMAT "), which does not exist",
								s->step, run_id, s->transform, s->transform_id)));
			/* an owner dropped since is not the run's role either */
			o = get_role_oid(owner, true);
			if (o != role)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("run " INT64_FORMAT " cannot be replayed: step %d ran transform \"%s\" as role \"%s\", not as the run's role \"%s\"",
								run_id, s->step, s->transform, owner, GetUserNameFromId(role, false)),
						 errdetail("A transform runs as its owner, and a replay runs every step as the run's role: "
								   "role \"%s\"'s SQL would run with the privileges of role \"%s\".",
								   owner, GetUserNameFromId(role, false)),
						 errhint("To record a run that can be replayed, begin it as the owner of its transforms: "
								 "SET ROLE %s before elt.run_begin().", quote_identifier(owner))));
		}
		EltCatalogWriteEnd(&cw);
	}
	return role;
}

PG_FUNCTION_INFO_V1(elt_replay);

/*
 * elt.replay(run_id bigint, into_schema text DEFAULT NULL, trust_imported
 * boolean DEFAULT false) RETURNS bigint:
 * re-execute a run's steps against copies of its snapshots in a new
 * sandbox schema (elt_replay_<id> unless named), with the recorded
 * settings, clock and seeds, as the run's role (replay_role): the caller
 * makes the schema for that role, which makes, fills and writes the
 * sandbox.  The replay is recorded as a run of that role's, audited as
 * the caller's; its id is returned.
 */
Datum
elt_replay(PG_FUNCTION_ARGS)
{
	int64		run_id;
	char	   *into;
	char	   *manifest;
	Oid			role;
	char	   *kind;
	EltAsRole	ra;
	List	   *rels;
	List	   *steps;
	List	   *done = NIL;
	int64		replay_id;
	char	   *fingerprint;
	TimestampTz clock;
	TimestampTz started = GetCurrentTimestamp();
	int64		seed;
	char	   *pipeline_name;
	char	   *params;
	char	   *policy;
	int			guc_level;
	EltCatalogWrite cw;
	bool		isnull;
	ListCell   *lc;
	char	   *id;
	bool		imported;
	bool		trust_imported;
	MemoryContext fn = CurrentMemoryContext;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("run_id must not be null")));
	EltRequireCatalog("run_manifests");
	run_id = PG_GETARG_INT64(0);
	into = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	trust_imported = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	if (into != NULL && (into[0] == '\0' || strlen(into) >= NAMEDATALEN))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid into_schema \"%s\"", into),
				 errhint("Name a new schema (at most 63 bytes), or pass NULL for elt_replay_<id>.")));
	if (active_pipeline() != NULL || EltCurrentRunId() != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.replay() cannot be called inside a run"),
				 errhint("End the run with elt.run_end() first.")));
	manifest = load_manifest(run_id, &role, &imported, true);
	if (imported && !trust_imported)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("run " INT64_FORMAT " was imported: replaying it runs its SQL as you", run_id),
				 errdetail("An imported manifest's SQL, search_path and column defaults come from another database; its id proves only that it is intact, not who wrote it."),
				 errhint("Read its steps with elt.run_manifest(); if you trust them, call elt.replay(run_id, into_schema, trust_imported => true).")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT m -> 'run' ->> 'kind' AS kind, m -> 'run' ->> 'pipeline' AS pipeline,"
							  " coalesce(m -> 'run' -> 'params', '{}')::text AS params,"
							  " (m -> 'run' ->> 'clock')::pg_catalog.timestamptz AS clock,"
							  " (m -> 'run' ->> 'random_seed')::pg_catalog.int8 AS seed,"
							  " m -> 'run' ->> 'snapshot_policy' AS policy"
							  " FROM (SELECT $1::pg_catalog.jsonb AS m) s",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading the manifest failed");
	kind = EltSpiGetText(0, "kind") ? MemoryContextStrdup(fn, EltSpiGetText(0, "kind")) : NULL;
	if (kind != NULL && strcmp(kind, "replay") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("run " INT64_FORMAT " is a replay", run_id),
				 errhint("Replay the original run.")));
	pipeline_name = MemoryContextStrdup(TopTransactionContext, EltSpiGetText(0, "pipeline"));
	params = MemoryContextStrdup(TopTransactionContext, EltSpiGetText(0, "params"));
	policy = MemoryContextStrdup(TopTransactionContext, EltSpiGetText(0, "policy"));
	clock = DatumGetTimestampTz(EltSpiGetDatum(0, "clock", &isnull));
	seed = EltSpiGetInt64(0, "seed", &isnull);
	SPI_finish();

	/* steps and relations, read into this function's context */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	steps = replay_steps(manifest, run_id, fn);
	rels = replay_relations(manifest, run_id, fn);
	SPI_finish();

	/* the role whose SQL it is: the replay runs as that role, or not at all */
	role = replay_role(run_id, role, kind, imported, steps);

	/* the snapshots first: a missing one is an error naming what is missing */
	foreach(lc, rels)
	{
		ReplayRel  *r = lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, r->inputs)
		{
			ReplayInput *in = lfirst(lc2);

			in->storage = snapshot_storage(in, role);
			if (in->storage == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("run " INT64_FORMAT " cannot be replayed: snapshot %s of %s (read by step %d) is missing",
								run_id, in->snapshot_id, r->relation, in->step),
						 errdetail("No snapshot readable by role \"%s\", the run's role, has its checksum %s.",
								   GetUserNameFromId(role, false), in->snapshot_checksum),
						 errhint("It was dropped with force, or the manifest was imported without its snapshots.")));
		}
	}

	guc_level = NewGUCNestLevel();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	apply_recorded_settings(manifest, run_id);
	SPI_finish();

	EltCatalogWriteBegin(&cw);
	replay_id = EltDrawRunId();
	EltCatalogWriteEnd(&cw);
	if (into == NULL)
		into = psprintf("elt_replay_" INT64_FORMAT, replay_id);
	if (OidIsValid(get_namespace_oid(into, true)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_SCHEMA),
				 errmsg("schema \"%s\" already exists", into),
				 errhint("A replay writes into a new schema: name another, or drop that one first.")));

	/*
	 * The sandbox schema, made by the caller for the role (CREATE on the
	 * database is the caller's; the caller has the role's privileges), then
	 * its tables, made and filled as the role, and the steps.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	EltSpiExec(psprintf("CREATE SCHEMA %s AUTHORIZATION %s", quote_identifier(into),
						quote_identifier(GetUserNameFromId(role, false))));
	SPI_finish();
	CommandCounterIncrement();

	/*
	 * As the run's role, restricted, also when the caller is that role: the
	 * sandbox's tables, their filling from the snapshots, the steps and the
	 * checksums of what they read and wrote are that role's doing, and the
	 * SQL, column defaults and functions never run with the caller's
	 * privileges nor leave anything in the caller's session.
	 */
	EltAsRoleBegin(&ra, role, NULL, true);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, rels)
	{
		ReplayRel  *r = lfirst(lc);

		r->sandbox_schema = into;
		r->sandbox_name = MemoryContextStrdup(fn, sandbox_name(rels, r));
		r->sandbox = MemoryContextStrdup(fn, quote_qualified_identifier(into, r->sandbox_name));
		if (r->output_shape != NULL)
		{
			EltSpiExec(sandbox_table_sql(r));
			CommandCounterIncrement();
			r->sandbox_oid = RangeVarGetRelid(makeRangeVar(into, r->sandbox_name, -1), NoLock, false);
		}
		/* the rows the first step that read it found */
		if (r->inputs != NIL)
			load_sandbox(r, linitial(r->inputs));
	}
	SPI_finish();

	foreach(lc, steps)
	{
		EltRunStep *st = palloc0(sizeof(EltRunStep));

		replay_step(lfirst(lc), rels, into, clock, st, replay_id);
		done = lappend(done, st);
	}
	EltAsRoleEnd(&ra);
	AtEOXact_GUC(true, guc_level);

	fingerprint = current_fingerprint();
	EltCatalogWriteBegin(&cw);
	/* a run of the role the code ran as; the audit row names the caller */
	insert_run(replay_id, pipeline_name, "replay",
			   DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(params))),
			   "checksum", clock, seed, fingerprint, role, started, run_id, into, false);
	foreach(lc, done)
		insert_step(replay_id, lfirst(lc), 0);
	id = store_manifest(replay_id, GetCurrentTimestamp());
	{
		StringInfoData extra;

		initStringInfo(&extra);
		appendStringInfoChar(&extra, '{');
		EltAppendJsonInt(&extra, "replay_id", replay_id);
		EltAppendJsonString(&extra, "sandbox", into);
		EltAppendJsonString(&extra, "manifest_id", id);
		EltAppendJsonString(&extra, "snapshot_policy", policy ? policy : "none");
		audit_run(cw.actor, "replay", pipeline_name, run_id, extra.data + 1);
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(replay_id);
}

/* ---------------------------------------------------------------------
 * Verification
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(elt_verify_replay);

/*
 * elt.verify_replay(original bigint, replay bigint, numeric_tolerance
 * float8 DEFAULT 0): the checks of elt._verify_replay(), audited.  They
 * read the replay's sandbox, which belongs to the replay's role, and the
 * run's relations, so they run as that role (restricted, as the replay
 * did): what that role has put there — a view in place of a sandbox table,
 * a row-level security policy — never runs with the caller's privileges.
 * The caller needs the privileges of the replay's role (load_manifest).
 */
Datum
elt_verify_replay(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		original,
				replay;
	double		tolerance;
	uint64		i,
				failed = 0,
				n;
	Oid			role;
	EltAsRole	ra;
	EltCatalogWrite cw;
	MemoryContext per_query;
	MemoryContext old;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("original and replay must not be null"),
				 errhint("Pass the run and its replay: elt.verify_replay(run_id, elt.replay(run_id)).")));
	EltRequireCatalog("run_manifests");
	original = PG_GETARG_INT64(0);
	replay = PG_GETARG_INT64(1);
	tolerance = PG_ARGISNULL(2) ? 0 : PG_GETARG_FLOAT8(2);
	if (isnan(tolerance) || isinf(tolerance) || tolerance < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("numeric_tolerance must be zero or a positive finite number"),
				 errhint("For example 1e-9: numbers that differ by at most that count as equal.")));
	(void) load_manifest(replay, &role, NULL, true);
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("replay " INT64_FORMAT " cannot be verified: its role no longer exists", replay),
				 errdetail("It belongs to the role with OID %u, which has been dropped. "
						   "A replay's sandbox is read as the replay's role, never as another.", role),
				 errhint("Compare the manifests instead: elt.run_manifest(" INT64_FORMAT ") and elt.run_manifest(" INT64_FORMAT ").",
						 original, replay)));
	InitMaterializedSRF(fcinfo, 0);
	per_query = rsinfo->econtext->ecxt_per_query_memory;

	EltAsRoleBegin(&ra, role, NULL, true);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT check_name, relation, expected, actual, ok"
							  " FROM elt._verify_replay($1, $2, $3)",
							  3, (Oid[]) {INT8OID, INT8OID, FLOAT8OID},
							  (Datum[]) {Int64GetDatum(original), Int64GetDatum(replay), Float8GetDatum(tolerance)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "verifying the replay failed");
	n = SPI_processed;
	old = MemoryContextSwitchTo(per_query);
	for (i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5];
		int			c;

		for (c = 0; c < 5; c++)
		{
			values[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1, &nulls[c]);
			if (!nulls[c] && c < 4)
				values[c] = PointerGetDatum(PG_DETOAST_DATUM_COPY(values[c]));
		}
		if (nulls[4] || !DatumGetBool(values[4]))
			failed++;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	EltAsRoleEnd(&ra);

	EltCatalogWriteBegin(&cw);
	{
		StringInfoData extra;

		initStringInfo(&extra);
		appendStringInfoChar(&extra, '{');
		EltAppendJsonInt(&extra, "replay_id", replay);
		EltAppendJsonInt(&extra, "checks", (int64) n);
		EltAppendJsonInt(&extra, "failed", (int64) failed);
		appendStringInfo(&extra, ", \"numeric_tolerance\": %s", psprintf("%g", tolerance));
		audit_run(cw.actor, "verify_replay", NULL, original, extra.data + 1);
	}
	EltCatalogWriteEnd(&cw);
	return (Datum) 0;
}
