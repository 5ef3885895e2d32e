/*
 * audit.c — the hash-chained, append-only audit log (elt.audit_log).
 *
 * Owns: appending governance actions, the canonical hashes of audit rows and
 * of schema version rows, and the trigger that makes the history tables
 * append-only.  elt.audit_verify() is in audit_verify.c.
 *
 * Transactions and locking: an engine records an action with EltAuditRecord;
 * it waits in memory, per (sub)transaction, and is appended only just before
 * the transaction commits (XACT_EVENT_PRE_COMMIT).  Then, and only then, the
 * appender takes an exclusive object lock on elt.audit_log (not a table lock,
 * so VACUUM does not interfere), held to the end of the commit, so
 * appenders queue up and the
 * chain stays linear: each new row links to the row_hash of the last
 * committed row, read with the latest snapshot.  As the lock is taken by a
 * transaction that requests no other lock afterwards, it cannot deadlock
 * with DDL.  A rolled-back (sub)transaction appends nothing.  Ids are
 * consecutive and give commit order; logged_at is when the action happened.
 * A transaction that recorded actions cannot be prepared (two-phase commit):
 * it would hold the lock until COMMIT PREPARED.
 * Readers (SELECT, audit_verify) take only AccessShareLock and never wait.
 *
 * Row hash: row_hash = SHA-256 over the canonical serialization
 * (EltCanonicalAppend) of id, logged_at, role, session_role, action, object,
 * details, reason and prev_hash, in that order.  The first row's prev_hash is
 * 64 zeros (audit_hash_columns lists the same fields, for audit_verify).  A
 * version_recorded row carries in details the SHA-256 of its schema_versions
 * row, and a transform_run row that of its transform_runs row, so that an
 * edited or deleted version or run is caught too.
 *
 * Take-back: the versions a transaction recorded for a table it then
 * attached as a partition of a governed parent are deleted before commit
 * (versions_store.c), and their pending version_recorded actions are never
 * appended; nothing committed is ever changed.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "settings.h"

static const char *const audit_hash_columns[] = {
	"id", "logged_at", "role", "session_role", "action", "object",
	"details", "reason", "prev_hash"
};

static const char *const version_hash_columns[] = {
	"table_id", "version", "relid", "schema_name", "table_name", "event",
	"shape", "statement", "command_tag", "role", "xid", "recorded_at",
	"migration_id"
};

static const char *const run_hash_columns[] = {
	"run_id", "transform_id", "version", "code_hash", "params", "lineage",
	"status", "started_at", "finished_at", "rows_read", "rows_written",
	"rows_deleted", "role", "error", "random_seed"
};

static SPIPlanPtr head_plan = NULL;
static SPIPlanPtr insert_plan = NULL;

/* One governance action waiting for its transaction to commit. */
typedef struct EltPendingAudit
{
	int			nest_level;		/* subtransaction that recorded it */
	Oid			actor;
	TimestampTz at;
	char	   *action;
	char	   *object;
	char	   *details;
	char	   *reason;
	int64		version_table;	/* version_recorded: its table_id, else 0 */
	int32		version_number;	/* version_recorded: the version, else 0 */
	int			taken_back;		/* nest level that took it back, or 0 */
} EltPendingAudit;

/* Actions of the current transaction, in order; in TopTransactionContext. */
static List *pending_audit = NIL;

/* Set only while EltHistoryTakeBack deletes this transaction's versions. */
static bool history_takeback = false;

/*
 * Serialize appenders: see the file header.  An object lock of our own, not
 * a lock on the table, so that VACUUM and autovacuum of elt.audit_log never
 * hold up a commit.
 */
void
EltAuditLock(void)
{
	Oid			relid = EltCatalogRelid("audit_log");

	if (!OidIsValid(relid))
		elog(ERROR, "elt.audit_log is missing");
	LockDatabaseObject(RelationRelationId, relid, 0, ExclusiveLock);
}

/* The reason to record: the given one, else the session's elt.reason. */
const char *
EltAuditReason(const char *given)
{
	if (given != NULL && given[0] != '\0')
		return given;
	if (elt_reason != NULL && elt_reason[0] != '\0')
		return elt_reason;
	return NULL;
}

/* The hash that a version_recorded audit row carries for its version row. */
void
EltVersionRowHash(HeapTuple tuple, TupleDesc desc, const char *prefix, char *out)
{
	EltCanonicalTupleHash(tuple, desc, prefix, version_hash_columns,
						  lengthof(version_hash_columns), out);
}

/*
 * The hash that a transform_run audit row carries for its run row (from
 * 0.7.0 on), so that a run edited or deleted behind the extension's back is
 * caught by audit_verify.
 */
void
EltRunRowHash(HeapTuple tuple, TupleDesc desc, const char *prefix, char *out)
{
	EltCanonicalTupleHash(tuple, desc, prefix, run_hash_columns,
						  lengthof(run_hash_columns), out);
}

/*
 * The attribute numbers in desc of the fields that the hash of a row of the
 * given kind covers, in order, named with prefix; *n is how many.  For
 * audit_verify, which hashes many rows of one result set.
 */
int *
EltHashedRowAttnos(EltHashedRow kind, TupleDesc desc, const char *prefix, int *n)
{
	switch (kind)
	{
		case ELT_HASHED_AUDIT:
			*n = lengthof(audit_hash_columns);
			return EltColumnAttnos(desc, prefix, audit_hash_columns, *n);
		case ELT_HASHED_VERSION:
			*n = lengthof(version_hash_columns);
			return EltColumnAttnos(desc, prefix, version_hash_columns, *n);
		case ELT_HASHED_RUN:
			*n = lengthof(run_hash_columns);
			return EltColumnAttnos(desc, prefix, run_hash_columns, *n);
	}
	elog(ERROR, "unknown kind of hashed row %d", (int) kind);
	return NULL;
}

/*
 * Record a governance action of the current transaction.  It is appended to
 * the chain when the transaction commits, and vanishes if it (or the
 * subtransaction that recorded it) aborts.
 */
void
EltAuditRecord(Oid actor, const char *action, const char *object,
			   const char *details_json, const char *reason)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	EltPendingAudit *pa = palloc0(sizeof(EltPendingAudit));

	/* reject malformed details now, not at commit */
	(void) DirectFunctionCall1(jsonb_in, CStringGetDatum(details_json));

	pa->nest_level = GetCurrentTransactionNestLevel();
	pa->actor = actor;
	pa->at = GetCurrentTimestamp();
	pa->action = pstrdup(action);
	pa->object = object ? pstrdup(object) : NULL;
	pa->details = pstrdup(details_json);
	pa->reason = reason ? pstrdup(reason) : NULL;
	pending_audit = lappend(pending_audit, pa);
	MemoryContextSwitchTo(old);
}

/*
 * Tag the action just recorded as the version_recorded action of version
 * of table_id, so that EltAuditTakeBackVersions can find it.
 */
void
EltAuditTagVersion(int64 table_id, int32 version)
{
	if (pending_audit != NIL)
	{
		((EltPendingAudit *) llast(pending_audit))->version_table = table_id;
		((EltPendingAudit *) llast(pending_audit))->version_number = version;
	}
}

/*
 * The versions of table_id recorded by this transaction (only the one
 * numbered version, unless version is 0) are being taken back (see
 * versions_store.c, EltTakeBackNewHistory and EltTakeOverHistory): their
 * version_recorded actions are not appended at commit.  Undone if the
 * subtransaction that takes them back aborts, as the deletion of the rows
 * is.
 */
void
EltAuditTakeBackVersions(int64 table_id, int32 version)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	foreach(lc, pending_audit)
	{
		EltPendingAudit *pa = (EltPendingAudit *) lfirst(lc);

		if (pa->version_table == table_id && pa->taken_back == 0 &&
			(version == 0 || pa->version_number == version))
			pa->taken_back = level;
	}
}

/*
 * Allow (on) or refuse again (off) the deletion of schema_versions rows by
 * the append-only trigger.  Only EltTakeBackNewHistory and EltTakeOverHistory
 * turn it on, around one DELETE of rows this very transaction wrote.
 */
void
EltAuditAllowTakeBack(bool on)
{
	history_takeback = on;
}

/*
 * Append the transaction's pending actions to the chain.  Runs just before
 * commit, under the audit lock, which it holds until the commit is done.
 */
static void
EltAuditFlush(void)
{
	Oid			argtypes[10] = {INT8OID, TIMESTAMPTZOID, NAMEOID, NAMEOID,
	TEXTOID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, TEXTOID};
	EltCatalogWrite cw;
	int64		id;
	char		prev_hash[ELT_SHA256_HEX_LEN + 1];
	ListCell   *lc;
	char	   *session_role;

	if (pending_audit == NIL)
		return;
	/* the extension was dropped in this transaction: nothing to append to */
	if (!EltCatalogReady())
	{
		pending_audit = NIL;
		return;
	}

	/* at commit there is no active snapshot; the inserts need one */
	PushActiveSnapshot(GetTransactionSnapshot());
	EltCatalogWriteBegin(&cw);
	EltAuditLock();

	EltPrepare(&head_plan,
			   "SELECT id, row_hash FROM elt.audit_log ORDER BY id DESC LIMIT 1",
			   0, NULL);
	EltExecLatest(head_plan, NULL, NULL, 1);
	if (SPI_processed == 0)
	{
		id = 0;
		strlcpy(prev_hash, ELT_GENESIS_HASH, sizeof(prev_hash));
	}
	else
	{
		bool		n;

		id = EltSpiGetInt64(0, "id", &n);
		strlcpy(prev_hash, EltSpiGetText(0, "row_hash"), sizeof(prev_hash));
	}
	EltPrepare(&insert_plan,
			   "INSERT INTO elt.audit_log (id, logged_at, role, session_role,"
			   " action, object, details, reason, prev_hash, row_hash)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			   10, argtypes);

	session_role = GetUserNameFromId(GetSessionUserId(), false);
	foreach(lc, pending_audit)
	{
		EltPendingAudit *pa = (EltPendingAudit *) lfirst(lc);
		Datum		values[10];
		bool		isnull[10] = {false};
		char		nulls[10];
		char		row_hash[ELT_SHA256_HEX_LEN + 1];
		StringInfoData canon;
		int			i;

		if (pa->taken_back > 0)
			continue;			/* its version was taken back */
		values[0] = Int64GetDatum(++id);
		values[1] = TimestampTzGetDatum(pa->at);
		values[2] = DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(pa->actor, false)));
		values[3] = DirectFunctionCall1(namein, CStringGetDatum(session_role));
		values[4] = CStringGetTextDatum(pa->action);
		isnull[5] = (pa->object == NULL);
		values[5] = isnull[5] ? (Datum) 0 : CStringGetTextDatum(pa->object);
		values[6] = DirectFunctionCall1(jsonb_in, CStringGetDatum(pa->details));
		isnull[7] = (pa->reason == NULL);
		values[7] = isnull[7] ? (Datum) 0 : CStringGetTextDatum(pa->reason);
		values[8] = CStringGetTextDatum(prev_hash);

		initStringInfo(&canon);
		for (i = 0; i < 9; i++)
			EltCanonicalAppend(&canon, values[i], isnull[i], argtypes[i]);
		EltSha256Hex(canon.data, canon.len, row_hash);
		pfree(canon.data);
		values[9] = CStringGetTextDatum(row_hash);

		for (i = 0; i < 10; i++)
			nulls[i] = isnull[i] ? 'n' : ' ';
		if (EltExec(insert_plan, values, nulls, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not append to elt.audit_log");
		strlcpy(prev_hash, row_hash, sizeof(prev_hash));
	}
	pending_audit = NIL;
	EltCatalogWriteEnd(&cw);
	PopActiveSnapshot();
}

/* Flush pending actions before commit; forget them at the end. */
static void
EltAuditXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			EltAuditFlush();
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * A prepared transaction would hold the audit lock until COMMIT
			 * PREPARED, stopping every other governance action meanwhile.
			 */
			if (pending_audit != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that recorded governance actions"),
						 errdetail("Governance actions are chained into elt.audit_log at commit."),
						 errhint("Run DDL on governed tables, and elt.govern() or elt.ungovern(), outside two-phase transactions.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending_audit = NIL;
			break;
		default:
			break;
	}
}

/* Drop the actions of an aborted subtransaction; hand a committed one's up. */
static void
EltAuditSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending_audit)
		{
			EltPendingAudit *pa = (EltPendingAudit *) lfirst(lc);

			if (pa->nest_level >= level)
				pending_audit = foreach_delete_current(pending_audit, lc);
			else if (pa->taken_back >= level)
				pa->taken_back = 0; /* the take-back is rolled back too */
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_audit)
		{
			EltPendingAudit *pa = (EltPendingAudit *) lfirst(lc);

			if (pa->nest_level >= level)
				pa->nest_level = level - 1;
			if (pa->taken_back >= level)
				pa->taken_back = level - 1;
		}
	}
}

/* Register the transaction callbacks; called once from _PG_init. */
void
EltAuditInit(void)
{
	RegisterXactCallback(EltAuditXactCallback, NULL);
	RegisterSubXactCallback(EltAuditSubXactCallback, NULL);
}

/*
 * Trigger on the history tables: UPDATE, DELETE and TRUNCATE are refused,
 * except the one DELETE of EltAuditAllowTakeBack.
 */
PG_FUNCTION_INFO_V1(elt_refuse_history_change);
Datum
elt_refuse_history_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;
	char	   *relname;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"refuse_history_change\" must be called as a trigger")));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		op = "TRUNCATE";
	else
		op = "this command";

	/* this transaction's own versions of a table attached as a partition */
	if (history_takeback && TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) &&
		TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) &&
		RelationGetRelid(trigdata->tg_relation) == EltCatalogRelid("schema_versions"))
		return PointerGetDatum(trigdata->tg_trigtuple);

	relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(trigdata->tg_relation)),
										 RelationGetRelationName(trigdata->tg_relation));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("table \"%s\" is append-only", relname),
			 errdetail("%s is not allowed on %s: it holds governance history, which is never rewritten.",
					   op, relname),
			 errhint("Rows are added only by elt_governance itself, and never changed.")));
	PG_RETURN_NULL();
}
