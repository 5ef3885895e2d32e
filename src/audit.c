/*
 * audit.c — the hash-chained, append-only audit log (elt.audit_log).
 *
 * Owns: appending governance actions, the canonical hashes of audit rows and
 * of schema version rows, elt.audit_verify(), and the trigger that makes the
 * history tables append-only.
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
 * 64 zeros.  A version_recorded row carries in details the SHA-256 of its
 * schema_versions row, so an edited or deleted version breaks the chain too.
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
#include "elt_governance.h"

#define ELT_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"

static const char *const audit_hash_columns[] = {
	"id", "logged_at", "role", "session_role", "action", "object",
	"details", "reason", "prev_hash"
};

static const char *const version_hash_columns[] = {
	"table_id", "version", "relid", "schema_name", "table_name", "event",
	"shape", "statement", "command_tag", "role", "xid", "recorded_at",
	"migration_id"
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
} EltPendingAudit;

/* Actions of the current transaction, in order; in TopTransactionContext. */
static List *pending_audit = NIL;

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
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_audit)
		{
			EltPendingAudit *pa = (EltPendingAudit *) lfirst(lc);

			if (pa->nest_level >= level)
				pa->nest_level = level - 1;
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

/* A governed target as the audit log describes it, replayed by audit_verify. */
typedef struct ReplayTarget
{
	bool		is_schema;
	char	   *schema;
	int64		table_id;
	char	   *policy;
} ReplayTarget;

/* A string member of a jsonb object, or NULL. */
static char *
jsonb_text_member(Jsonb *jb, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* An integer member of a jsonb object; false if absent. */
static bool
jsonb_int_member(Jsonb *jb, const char *key, int64 *value)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvNumeric)
		return false;
	*value = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
	return true;
}

/* The replayed target with the same identity, or NULL. */
static ReplayTarget *
replay_find(List *targets, bool is_schema, const char *schema, int64 table_id)
{
	ListCell   *lc;

	foreach(lc, targets)
	{
		ReplayTarget *rt = (ReplayTarget *) lfirst(lc);

		if (rt->is_schema == is_schema &&
			(is_schema ? strcmp(rt->schema, schema) == 0 : rt->table_id == table_id))
			return rt;
	}
	return NULL;
}

/*
 * Apply one governance action to the replayed targets.  Returns false when
 * the action does not carry what a replay needs (then no replay is made).
 */
static bool
replay_action(List **targets, const char *action, Jsonb *details)
{
	char	   *kind = jsonb_text_member(details, "kind");
	bool		is_schema;
	char	   *schema = NULL;
	int64		table_id = 0;
	ReplayTarget *rt;

	if (kind == NULL)
		return false;
	is_schema = strcmp(kind, "schema") == 0;
	if (strcmp(action, "target_renamed") == 0)
	{
		char	   *from = jsonb_text_member(details, "from");
		char	   *to = jsonb_text_member(details, "to");

		if (!is_schema || from == NULL || to == NULL)
			return false;
		rt = replay_find(*targets, true, from, 0);
		if (rt)
			rt->schema = to;
		return true;
	}
	if (is_schema ? (schema = jsonb_text_member(details, "schema")) == NULL :
		!jsonb_int_member(details, "table_id", &table_id))
		return false;
	rt = replay_find(*targets, is_schema, schema, table_id);
	if (strcmp(action, "ungovern") == 0)
	{
		if (rt)
			*targets = list_delete_ptr(*targets, rt);
		return true;
	}
	if (strcmp(action, "govern") != 0 && strcmp(action, "policy_changed") != 0)
		return true;
	if (rt == NULL)
	{
		rt = palloc0(sizeof(ReplayTarget));
		rt->is_schema = is_schema;
		rt->schema = schema;
		rt->table_id = table_id;
		*targets = lappend(*targets, rt);
	}
	rt->policy = jsonb_text_member(details, strcmp(action, "govern") == 0 ? "policy" : "to");
	return rt->policy != NULL;
}

/*
 * Compare the replayed targets with elt.governed_targets (read with the same
 * snapshot as the chain).  Returns a description of the first difference,
 * or NULL.
 */
static char *
replay_compare(List *expected)
{
	uint64		i;
	uint64		n;
	SPITupleTable *tt;
	List	   *seen = NIL;
	ListCell   *lc;

	if (SPI_execute("SELECT g.kind = 'schema' AS is_schema, g.schema_name::text AS schema_name,"
					"       t.table_id, g.rel::text AS rel, g.policy"
					" FROM elt.governed_targets g"
					" LEFT JOIN elt.tracked_tables t ON t.relid = g.rel"
					" ORDER BY g.target_id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read elt.governed_targets");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		TupleDesc	desc = tt->tupdesc;
		bool		isnull;
		bool		is_schema = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *schema = SPI_getvalue(tup, desc, 2);
		int64		table_id = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		bool		untracked = isnull;
		char	   *policy = SPI_getvalue(tup, desc, 5);
		const char *what = is_schema ? psprintf("schema \"%s\"", schema) :
			psprintf("table %s", SPI_getvalue(tup, desc, 4));
		ReplayTarget *rt = (!is_schema && untracked) ? NULL :
			replay_find(expected, is_schema, schema, table_id);

		if (rt == NULL)
			return psprintf("elt.governed_targets governs %s (policy %s), which no governance action in the audit log accounts for",
							what, policy);
		if (strcmp(rt->policy, policy) != 0)
			return psprintf("elt.governed_targets has policy %s for %s, but the audit log says %s",
							policy, what, rt->policy);
		seen = lappend(seen, rt);
	}
	foreach(lc, expected)
	{
		ReplayTarget *rt = (ReplayTarget *) lfirst(lc);

		if (!list_member_ptr(seen, rt))
			return rt->is_schema ?
				psprintf("the audit log says schema \"%s\" is governed (policy %s), but elt.governed_targets has no such target",
						 rt->schema, rt->policy) :
				psprintf("the audit log says the table with table_id %lld is governed (policy %s), but elt.governed_targets has no such target",
						 (long long) rt->table_id, rt->policy);
	}
	return NULL;
}

/*
 * elt.audit_verify(digest jsonb DEFAULT NULL): walk the chain in id order and
 * report whether it holds, how many rows were checked, the first broken id
 * and what is wrong.  With a digest from elt.audit_digest(), also check that
 * the chain still contains the digest's head row unchanged.  Finally replay
 * the governance actions and check that elt.governed_targets holds exactly
 * what they leave behind, so that a target removed or changed behind the
 * extension's back is caught too.
 */
PG_FUNCTION_INFO_V1(elt_audit_verify);
Datum
elt_audit_verify(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		result[4];
	bool		rnulls[4] = {false, false, false, false};
	Portal		portal;
	SPIPlanPtr	plan;
	int64		checked = 0;
	int64		expected_id = 1;
	char		expected_prev[ELT_SHA256_HEX_LEN + 1];
	int64		broken_id = 0;
	char	   *detail = NULL;
	bool		broken = false;
	int64		digest_id = 0;
	char	   *digest_hash = NULL;
	bool		digest_seen = false;
	MemoryContext outer = CurrentMemoryContext;
	List	   *replayed = NIL;
	bool		replayable = true;
	EltCatalogWrite cw;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (!PG_ARGISNULL(0))
	{
		Jsonb	   *digest = PG_GETARG_JSONB_P(0);
		JsonbValue *v_id;
		JsonbValue *v_hash;

		v_id = getKeyJsonValueFromContainer(&digest->root, "head_id", 7, NULL);
		v_hash = getKeyJsonValueFromContainer(&digest->root, "head_hash", 9, NULL);
		if (v_id != NULL && v_id->type == jbvNull &&
			v_hash != NULL && v_hash->type == jbvNull)
		{
			/* the digest of an empty chain: every chain contains it */
		}
		else
		{
			bool		ok = v_id != NULL && v_id->type == jbvNumeric &&
				v_hash != NULL && v_hash->type == jbvString;

			if (ok)
			{
				char	   *idtext = DatumGetCString(DirectFunctionCall1(numeric_out,
																		 NumericGetDatum(v_id->val.numeric)));
				char	   *end;

				errno = 0;
				digest_id = strtoll(idtext, &end, 10);
				ok = (*end == '\0' && errno == 0 && digest_id > 0);
			}
			if (!ok)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("digest must have a positive integer \"head_id\" and a string \"head_hash\""),
						 errhint("Pass a value returned by elt.audit_digest().")));
			digest_hash = pnstrdup(v_hash->val.string.val, v_hash->val.string.len);
		}
	}

	strlcpy(expected_prev, ELT_GENESIS_HASH, sizeof(expected_prev));

	/* as the extension owner: any role may verify the chain, few may read it */
	EltCatalogWriteBegin(&cw);

	/*
	 * One statement, so one snapshot: audit rows in id order, each
	 * version_recorded row joined to its version, then any version row that
	 * no audit row accounts for.
	 */
	plan = SPI_prepare(
					   "WITH a AS ("
					   "  SELECT a.*,"
					   "         CASE WHEN a.action = 'version_recorded'"
					   "              THEN (a.details->>'table_id')::bigint END AS ref_table,"
					   "         CASE WHEN a.action = 'version_recorded'"
					   "              THEN (a.details->>'version')::int END AS ref_version"
					   "  FROM elt.audit_log a)"
					   " SELECT a.id, a.logged_at, a.role, a.session_role, a.action,"
					   "        a.object, a.details, a.reason, a.prev_hash, a.row_hash,"
					   "        a.ref_table, a.details->>'version_hash' AS ref_hash,"
					   "        v.table_id AS v_table_id, v.version AS v_version,"
					   "        v.relid AS v_relid, v.schema_name AS v_schema_name,"
					   "        v.table_name AS v_table_name, v.event AS v_event,"
					   "        v.shape AS v_shape, v.statement AS v_statement,"
					   "        v.command_tag AS v_command_tag, v.role AS v_role,"
					   "        v.xid AS v_xid, v.recorded_at AS v_recorded_at,"
					   "        v.migration_id AS v_migration_id"
					   " FROM a FULL JOIN elt.schema_versions v"
					   "   ON v.table_id = a.ref_table AND v.version = a.ref_version"
					   " ORDER BY a.id NULLS LAST, v.table_id, v.version",
					   0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);

	while (!broken)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed && !broken; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		id;
			char	   *prev_hash;
			char	   *row_hash;
			char	   *ref_hash;
			char		computed[ELT_SHA256_HEX_LEN + 1];

			id = DatumGetInt64(SPI_getbinval(tup, desc, SPI_fnumber(desc, "id"), &isnull));
			if (isnull)
			{
				/* a version row with no audit row: inserted behind our back */
				broken = true;
				detail = psprintf("schema version %s of %s.%s (table_id %s) has no audit row",
								  SPI_getvalue(tup, desc, SPI_fnumber(desc, "v_version")),
								  SPI_getvalue(tup, desc, SPI_fnumber(desc, "v_schema_name")),
								  SPI_getvalue(tup, desc, SPI_fnumber(desc, "v_table_name")),
								  SPI_getvalue(tup, desc, SPI_fnumber(desc, "v_table_id")));
				break;
			}
			checked++;
			if (id != expected_id)
			{
				broken = true;
				broken_id = id;
				detail = psprintf("row %lld follows row %lld: rows are missing from the chain",
								  (long long) id, (long long) (expected_id - 1));
				break;
			}
			prev_hash = SPI_getvalue(tup, desc, SPI_fnumber(desc, "prev_hash"));
			row_hash = SPI_getvalue(tup, desc, SPI_fnumber(desc, "row_hash"));
			if (prev_hash == NULL || strcmp(prev_hash, expected_prev) != 0)
			{
				broken = true;
				broken_id = id;
				detail = psprintf("prev_hash of row %lld does not match the row_hash of the row before it",
								  (long long) id);
				break;
			}
			EltCanonicalTupleHash(tup, desc, "", audit_hash_columns,
								  lengthof(audit_hash_columns), computed);
			if (row_hash == NULL || strcmp(row_hash, computed) != 0)
			{
				broken = true;
				broken_id = id;
				detail = psprintf("row %lld was modified after it was written: its content does not match its row_hash",
								  (long long) id);
				break;
			}
			ref_hash = SPI_getvalue(tup, desc, SPI_fnumber(desc, "ref_hash"));
			(void) SPI_getbinval(tup, desc, SPI_fnumber(desc, "ref_table"), &isnull);
			if (!isnull)
			{
				(void) SPI_getbinval(tup, desc, SPI_fnumber(desc, "v_table_id"), &isnull);
				if (isnull)
				{
					broken = true;
					broken_id = id;
					detail = psprintf("the schema version recorded by row %lld was deleted",
									  (long long) id);
					break;
				}
				EltVersionRowHash(tup, desc, "v_", computed);
				if (ref_hash == NULL || strcmp(ref_hash, computed) != 0)
				{
					broken = true;
					broken_id = id;
					detail = psprintf("the schema version recorded by row %lld was modified after it was written",
									  (long long) id);
					break;
				}
			}
			/* governance actions, replayed to check the targets afterwards */
			{
				char	   *action = SPI_getvalue(tup, desc, SPI_fnumber(desc, "action"));
				Datum		dd = SPI_getbinval(tup, desc, SPI_fnumber(desc, "details"), &isnull);

				if (replayable && !isnull &&
					(strcmp(action, "govern") == 0 || strcmp(action, "ungovern") == 0 ||
					 strcmp(action, "policy_changed") == 0 ||
					 strcmp(action, "target_renamed") == 0))
				{
					MemoryContext spi = MemoryContextSwitchTo(outer);

					replayable = replay_action(&replayed, action,
											   DatumGetJsonbPCopy(dd));
					MemoryContextSwitchTo(spi);
				}
			}
			if (digest_hash != NULL && id == digest_id)
			{
				digest_seen = true;
				if (strcmp(row_hash, digest_hash) != 0)
				{
					broken = true;
					broken_id = id;
					detail = psprintf("row %lld is not the row the digest recorded: its row_hash differs",
									  (long long) id);
					break;
				}
			}
			strlcpy(expected_prev, row_hash, sizeof(expected_prev));
			expected_id = id + 1;
		}
		if (!broken)
			SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);

	if (!broken && digest_hash != NULL && !digest_seen)
	{
		broken = true;
		broken_id = digest_id;
		detail = psprintf("the chain ends at row %lld and no longer contains row %lld, the head recorded by the digest",
						  (long long) (expected_id - 1), (long long) digest_id);
	}

	if (!broken && replayable)
	{
		detail = replay_compare(replayed);
		broken = (detail != NULL);
	}

	/* the result outlives SPI's memory */
	if (detail)
		detail = MemoryContextStrdup(outer, detail);
	EltCatalogWriteEnd(&cw);

	result[0] = BoolGetDatum(!broken);
	result[1] = Int64GetDatum(checked);
	if (broken && broken_id > 0)
		result[2] = Int64GetDatum(broken_id);
	else
		rnulls[2] = true;
	if (detail)
		result[3] = CStringGetTextDatum(detail);
	else
		rnulls[3] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, result, rnulls)));
}

/*
 * Trigger on the history tables: UPDATE, DELETE and TRUNCATE are refused.
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
