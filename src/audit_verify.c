/*
 * audit_verify.c — elt.audit_verify(): the check that the audit chain holds,
 * and that the catalog tables it vouches for say what it says.
 *
 * Owns: walking the chain (ids, links, row hashes), the digest check, and
 * the cross-checks of catalog tables against the chain: schema versions by
 * their version_hash, and governed targets by replaying the governance
 * actions.
 *
 * Transactions and locking: read-only.  Every table is read by one
 * statement, so with one snapshot, and with AccessShareLock only: a
 * verification never waits for appenders and never holds them up.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "audit.h"

/* The audit row's fields that its row_hash covers, in order (see audit.c). */
static const char *const audit_hash_columns[] = {
	"id", "logged_at", "role", "session_role", "action", "object",
	"details", "reason", "prev_hash"
};

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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

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
	SPI_finish();

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
