/*
 * audit_verify.c — elt.audit_verify(): the check that the audit chain holds,
 * and that the catalog tables it vouches for say what it says.
 *
 * Owns: walking the chain (ids, links, row hashes), the digest check, and
 * the cross-checks of the append-only tables, joined row by row to the
 * audit row that recorded each of their rows: elt.schema_versions
 * (version_hash), elt.transform_runs (run_hash from 0.7.0 on, the fields
 * the details carry before) and elt.transform_code (code_hash, which is
 * also recomputed from the SQL).  The tables the extension updates, whose
 * content the actions recorded in the chain determine (elt.governed_targets,
 * elt.check_defs, elt.approvers, elt.migration_windows and
 * elt.migration_approvals), are replayed in memory as the chain is walked
 * and compared at the end by audit_replay.c.
 *
 * Layering: the SQL entry point; calls audit_replay.c (audit_replay.h),
 * audit.c (row hashes), util_sql.c (normalized SQL), roles.c and util*.c.
 *
 * Any role may verify: everything is read as the extension's owner, and
 * values of tables that PUBLIC may not read (a check's arguments, a run's
 * error) are named in a difference only to elt_reader and superusers.
 * What is not covered is listed in the README ("What audit_verify covers").
 *
 * Transactions and locking: read-only.  The chain and the append-only
 * tables are read by one statement, streamed through a cursor; the replayed
 * tables afterwards, each by one statement.  Every statement runs read-only,
 * with the calling statement's snapshot, so all see the same committed
 * state.  Only AccessShareLock is taken: a verification never waits for
 * appenders and never holds them up.  Tables that an older catalog does not
 * have yet (audit_verify runs on every catalog from 0.1.0 on) are left out.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "audit.h"
#include "audit_replay.h"
#include "roles.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * The chain, joined to the append-only tables whose rows it recorded
 * ---------------------------------------------------------------------
 */

/* The columns of the chain query that audit_verify reads by name. */
typedef enum ChainCol
{
	COL_ID,
	COL_ROLE,
	COL_ACTION,
	COL_OBJECT,
	COL_REASON,
	COL_DETAILS,
	COL_PREV_HASH,
	COL_ROW_HASH,
	COL_REF_TABLE,
	COL_REF_HASH,
	COL_V_TABLE_ID,
	COL_V_VERSION,
	COL_V_SCHEMA_NAME,
	COL_V_TABLE_NAME,
	COL_REF_RUN,
	COL_R_RUN_ID,
	COL_R_TRANSFORM_ID,
	COL_R_VERSION,
	COL_R_CODE_HASH,
	COL_R_STATUS,
	COL_R_LINEAGE,
	COL_R_ROWS_WRITTEN,
	COL_R_ERROR,
	COL_R_ROLE,
	COL_REF_TRANSFORM,
	COL_REF_CODE_VERSION,
	COL_C_TRANSFORM_ID,
	COL_C_VERSION,
	COL_C_SQL,
	COL_C_CODE_HASH,
	COL_C_LINEAGE_LEVEL,
	NUM_CHAIN_COLS
} ChainCol;

static const char *const chain_col_names[NUM_CHAIN_COLS] = {
	"id", "role", "action", "object", "reason", "details", "prev_hash", "row_hash",
	"ref_table", "ref_hash", "v_table_id", "v_version", "v_schema_name", "v_table_name",
	"ref_run", "r_run_id", "r_transform_id", "r_version", "r_code_hash", "r_status",
	"r_lineage", "r_rows_written", "r_error", "r_role",
	"ref_transform", "ref_code_version", "c_transform_id", "c_version", "c_sql",
	"c_code_hash", "c_lineage_level"
};

/*
 * A column of the chain query: the integer member key of the details of an
 * audit row whose action is one of actions, else NULL (NULL too when it is
 * not a plain integer: such a row fails its row_hash check first).
 */
static void
ref_column(StringInfo q, const char *actions, const char *key, const char *type, const char *name)
{
	appendStringInfo(q,
					 ", CASE WHEN a.action IN (%s) AND (a.details->>'%s') ~ '^[0-9]{1,%d}$'"
					 " THEN (a.details->>'%s')::%s END AS %s",
					 actions, key, strcmp(type, "int") == 0 ? 9 : 18, key, type, name);
}

/*
 * The statement that reads the chain in id order, each audit row joined to
 * the row it recorded in an append-only table — version_recorded to its
 * schema version, transform_run to its run, transform_create and
 * transform_update to their code version — followed by the rows of those
 * tables that no audit row accounts for.  Tables this catalog does not
 * have yet are left out.
 */
static char *
chain_query(bool has_runs, bool has_code)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoString(&q, "WITH a AS (SELECT a.*");
	ref_column(&q, "'version_recorded'", "table_id", "bigint", "ref_table");
	ref_column(&q, "'version_recorded'", "version", "int", "ref_version");
	if (has_runs)
		ref_column(&q, "'transform_run'", "run_id", "bigint", "ref_run");
	if (has_code)
	{
		ref_column(&q, "'transform_create', 'transform_update'", "transform_id", "bigint", "ref_transform");
		ref_column(&q, "'transform_create', 'transform_update'", "version", "int", "ref_code_version");
	}
	appendStringInfoString(&q,
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
						   "        v.migration_id AS v_migration_id");
	if (has_runs)
		appendStringInfoString(&q,
							   ", a.ref_run, r.run_id AS r_run_id, r.transform_id AS r_transform_id,"
							   "  r.version AS r_version, r.code_hash AS r_code_hash, r.params AS r_params,"
							   "  r.lineage AS r_lineage, r.status AS r_status, r.started_at AS r_started_at,"
							   "  r.finished_at AS r_finished_at, r.rows_read AS r_rows_read,"
							   "  r.rows_written AS r_rows_written, r.rows_deleted AS r_rows_deleted,"
							   "  r.role AS r_role, r.error AS r_error, r.random_seed AS r_random_seed");
	if (has_code)
		appendStringInfoString(&q,
							   ", a.ref_transform, a.ref_code_version,"
							   "  c.transform_id AS c_transform_id, c.version AS c_version,"
							   "  c.sql AS c_sql, c.code_hash AS c_code_hash, c.lineage_level AS c_lineage_level");
	appendStringInfoString(&q,
						   " FROM a FULL JOIN elt.schema_versions v"
						   "   ON v.table_id = a.ref_table AND v.version = a.ref_version");
	if (has_runs)
		appendStringInfoString(&q, " FULL JOIN elt.transform_runs r ON r.run_id = a.ref_run");
	if (has_code)
		appendStringInfoString(&q,
							   " FULL JOIN elt.transform_code c"
							   "   ON c.transform_id = a.ref_transform AND c.version = a.ref_code_version");
	appendStringInfoString(&q, " ORDER BY a.id NULLS LAST, v.table_id, v.version");
	if (has_runs)
		appendStringInfoString(&q, ", r.run_id");
	if (has_code)
		appendStringInfoString(&q, ", c.transform_id, c.version");
	return q.data;
}

/* Where a verification stands, and the row of the chain query it is at. */
typedef struct Verify
{
	MemoryContext outer;		/* outlives SPI: the replays, the result */
	bool		has_runs;
	bool		has_code;
	int64		checked;
	int64		expected_id;
	char		expected_prev[ELT_SHA256_HEX_LEN + 1];
	int64		digest_id;		/* 0: no digest, or that of an empty chain */
	char	   *digest_hash;
	bool		digest_seen;
	Replay		rp;
	/* the chain query's columns, looked up once (attno 0: not in it) */
	TupleDesc	desc;
	int			attno[NUM_CHAIN_COLS];
	FmgrInfo	output[NUM_CHAIN_COLS];
	int		   *audit_attnos;
	int			n_audit;
	int		   *version_attnos;
	int			n_version;
	int		   *run_attnos;
	int			n_run;
	/* the current row, deformed */
	Datum	   *values;
	bool	   *nulls;
} Verify;

/* Look the chain query's columns up, once, in memory that outlives SPI's. */
static void
verify_columns(Verify *vf, TupleDesc desc)
{
	MemoryContext old = MemoryContextSwitchTo(vf->outer);
	int			c;

	vf->desc = CreateTupleDescCopy(desc);
	for (c = 0; c < NUM_CHAIN_COLS; c++)
	{
		int			attno = SPI_fnumber(desc, chain_col_names[c]);
		Oid			outfunc;
		bool		isvarlena;

		vf->attno[c] = attno > 0 ? attno : 0;
		if (attno <= 0)
			continue;
		getTypeOutputInfo(TupleDescAttr(desc, attno - 1)->atttypid, &outfunc, &isvarlena);
		fmgr_info(outfunc, &vf->output[c]);
	}
	vf->audit_attnos = EltHashedRowAttnos(ELT_HASHED_AUDIT, desc, "", &vf->n_audit);
	vf->version_attnos = EltHashedRowAttnos(ELT_HASHED_VERSION, desc, "v_", &vf->n_version);
	if (vf->has_runs)
		vf->run_attnos = EltHashedRowAttnos(ELT_HASHED_RUN, desc, "r_", &vf->n_run);
	vf->values = palloc(sizeof(Datum) * desc->natts);
	vf->nulls = palloc(sizeof(bool) * desc->natts);
	MemoryContextSwitchTo(old);
}

/* Whether a column of the current row is NULL (or not in the query). */
static bool
col_null(Verify *vf, ChainCol c)
{
	return vf->attno[c] == 0 || vf->nulls[vf->attno[c] - 1];
}

/* A column of the current row as text, or NULL. */
static char *
col_text(Verify *vf, ChainCol c)
{
	if (col_null(vf, c))
		return NULL;
	return OutputFunctionCall(&vf->output[c], vf->values[vf->attno[c] - 1]);
}

/* A column of the current row (not NULL). */
static Datum
col_datum(Verify *vf, ChainCol c)
{
	Assert(!col_null(vf, c));
	return vf->values[vf->attno[c] - 1];
}

/* The fields of a run that a transform_run audit row carries, and their columns. */
static const struct
{
	const char *key;
	ChainCol	column;
	bool		free_text;		/* quoted in messages */
}			run_fields[] =
{
	{"transform_id", COL_R_TRANSFORM_ID, false},
	{"version", COL_R_VERSION, false},
	{"code_hash", COL_R_CODE_HASH, false},
	{"status", COL_R_STATUS, false},
	{"lineage", COL_R_LINEAGE, false},
	{"rows_written", COL_R_ROWS_WRITTEN, false},
	{"error", COL_R_ERROR, true},
};

/*
 * Compare the current row's transform_runs row with the transform_run
 * audit row (id) that recorded it: the fields its details carry (before
 * 0.7.0 a succeeded run carries transform_id, version, code_hash, lineage
 * and rows_written and no status, a failed one version, status and error),
 * the role that ran it, then, from 0.7.0 on, the run_hash of the whole row.
 * Returns the first difference, in words, or NULL.
 */
static char *
run_compare(Verify *vf, int64 id, Jsonb *details)
{
	char	   *run_id = col_text(vf, COL_R_RUN_ID);
	char	   *run_hash;
	char	   *role;
	char	   *has;
	char		computed[ELT_SHA256_HEX_LEN + 1];
	int			i;

	for (i = 0; i < (int) lengthof(run_fields); i++)
	{
		bool		present;
		char	   *said = EltJsonbMemberAsText(details, run_fields[i].key, &present);

		if (!present && strcmp(run_fields[i].key, "status") == 0)
		{
			/* before 0.7.0 only a failed run said its status */
			said = "succeeded";
			present = true;
		}
		if (!present)
			continue;
		has = col_text(vf, run_fields[i].column);
		if (EltVerifyTextDiffers(has, said) && run_fields[i].free_text && !EltVerifyReveals)
			return psprintf("elt.transform_runs has another %s for run %s (recorded by row %lld) than the audit log says; "
							"a role that may read elt.transform_runs sees both",
							run_fields[i].key, run_id, (long long) id);
		if (EltVerifyTextDiffers(has, said))
			return EltVerifyDiffers("elt.transform_runs", run_fields[i].key, run_fields[i].free_text ? EltVerifyQuoted(has) : EltVerifyShown(has),
						   psprintf("run %s (recorded by row %lld)", run_id, (long long) id),
						   run_fields[i].free_text ? EltVerifyQuoted(said) : EltVerifyShown(said));
	}
	role = col_text(vf, COL_ROLE);
	has = col_text(vf, COL_R_ROLE);
	if (EltVerifyTextDiffers(has, role))
		return EltVerifyDiffers("elt.transform_runs", "role", EltVerifyShown(has), psprintf("run %s (recorded by row %lld)", run_id, (long long) id),
					   EltVerifyShown(role));
	run_hash = EltJsonbTextMember(details, "run_hash");
	if (run_hash != NULL)
	{
		EltCanonicalValuesHash(vf->values, vf->nulls, vf->desc, vf->run_attnos, vf->n_run, computed);
		if (strcmp(run_hash, computed) != 0)
			return psprintf("run %s in elt.transform_runs (recorded by row %lld) was modified after it was written: it does not match the run_hash in the audit log",
							run_id, (long long) id);
	}
	return NULL;
}

/*
 * Compare the current row's transform_code row with the transform_create
 * or transform_update audit row (id) that recorded it: its code_hash and
 * lineage level, then its SQL with its code_hash (the SHA-256 of the
 * normalized SQL), so that SQL edited behind the extension's back is
 * caught.  Returns the first difference, in words, or NULL.
 */
static char *
code_compare(Verify *vf, int64 id, Jsonb *details)
{
	char	   *what = psprintf("version %s of transform_id %s",
								col_text(vf, COL_C_VERSION), col_text(vf, COL_C_TRANSFORM_ID));
	char	   *hash = col_text(vf, COL_C_CODE_HASH);
	char	   *sql = col_text(vf, COL_C_SQL);
	char	   *has;
	char	   *said;
	char	   *norm;
	bool		present;
	char		computed[ELT_SHA256_HEX_LEN + 1];

	said = EltJsonbMemberAsText(details, "code_hash", &present);
	if (EltVerifyTextDiffers(hash, said))
		return EltVerifyDiffers("elt.transform_code", "code_hash", EltVerifyShown(hash), psprintf("%s (recorded by row %lld)", what, (long long) id),
					   EltVerifyShown(said));
	said = EltJsonbMemberAsText(details, "lineage", &present);
	has = col_text(vf, COL_C_LINEAGE_LEVEL);
	if (present && EltVerifyTextDiffers(has, said))
		return EltVerifyDiffers("elt.transform_code", "lineage_level", EltVerifyShown(has), psprintf("%s (recorded by row %lld)", what, (long long) id),
					   EltVerifyShown(said));
	norm = EltNormalizeSql(sql ? sql : "");
	EltSha256Hex(norm, strlen(norm), computed);
	if (hash == NULL || strcmp(hash, computed) != 0)
		return psprintf("the sql of %s in elt.transform_code (recorded by row %lld) was modified after it was written: it does not match its code_hash",
						what, (long long) id);
	return NULL;
}

/*
 * The current row has no audit row: it is a row of an append-only table
 * that no audit row accounts for, inserted behind the extension's back.
 */
static char *
orphan_detail(Verify *vf)
{
	if (!col_null(vf, COL_V_TABLE_ID))
		return psprintf("schema version %s of %s.%s (table_id %s) has no audit row",
						col_text(vf, COL_V_VERSION), col_text(vf, COL_V_SCHEMA_NAME),
						col_text(vf, COL_V_TABLE_NAME), col_text(vf, COL_V_TABLE_ID));
	if (!col_null(vf, COL_R_RUN_ID))
		return psprintf("transform run %s (transform_id %s, version %s, status %s) has no audit row",
						col_text(vf, COL_R_RUN_ID), col_text(vf, COL_R_TRANSFORM_ID),
						col_text(vf, COL_R_VERSION), col_text(vf, COL_R_STATUS));
	return psprintf("version %s of transform_id %s in elt.transform_code has no audit row",
					col_text(vf, COL_C_VERSION), col_text(vf, COL_C_TRANSFORM_ID));
}

/*
 * The row the current audit row (id) recorded in an append-only table, if
 * any, against what the audit row says of it.  Returns the first
 * difference, in words, or NULL.
 */
static char *
recorded_row_detail(Verify *vf, int64 id)
{
	char		computed[ELT_SHA256_HEX_LEN + 1];

	if (!col_null(vf, COL_REF_TABLE))
	{
		char	   *ref_hash = col_text(vf, COL_REF_HASH);

		if (col_null(vf, COL_V_TABLE_ID))
			return psprintf("the schema version recorded by row %lld was deleted",
							(long long) id);
		EltCanonicalValuesHash(vf->values, vf->nulls, vf->desc, vf->version_attnos,
							   vf->n_version, computed);
		if (ref_hash == NULL || strcmp(ref_hash, computed) != 0)
			return psprintf("the schema version recorded by row %lld was modified after it was written",
							(long long) id);
		return NULL;
	}
	if (!col_null(vf, COL_REF_RUN))
	{
		if (col_null(vf, COL_R_RUN_ID))
			return psprintf("transform run %s recorded by row %lld was deleted from elt.transform_runs",
							col_text(vf, COL_REF_RUN), (long long) id);
		return run_compare(vf, id, DatumGetJsonbP(col_datum(vf, COL_DETAILS)));
	}
	if (!col_null(vf, COL_REF_TRANSFORM))
	{
		if (col_null(vf, COL_C_TRANSFORM_ID))
			return psprintf("version %s of transform_id %s recorded by row %lld was deleted from elt.transform_code",
							EltVerifyShown(col_text(vf, COL_REF_CODE_VERSION)),
							col_text(vf, COL_REF_TRANSFORM), (long long) id);
		return code_compare(vf, id, DatumGetJsonbP(col_datum(vf, COL_DETAILS)));
	}
	return NULL;
}

/*
 * Check one row of the chain query: its place in the chain, its row_hash,
 * the row it recorded in an append-only table, and the digest's head; feed
 * it to the replays.  Returns what is wrong, with *broken_id, or NULL.
 */
static char *
verify_row(Verify *vf, HeapTuple tup, int64 *broken_id)
{
	int64		id;
	char	   *prev_hash;
	char	   *row_hash;
	char	   *detail;
	char		computed[ELT_SHA256_HEX_LEN + 1];

	heap_deform_tuple(tup, vf->desc, vf->values, vf->nulls);
	if (col_null(vf, COL_ID))
		return orphan_detail(vf);
	id = DatumGetInt64(col_datum(vf, COL_ID));
	vf->checked++;
	*broken_id = id;
	if (id != vf->expected_id)
		return psprintf("row %lld follows row %lld: rows are missing from the chain",
						(long long) id, (long long) (vf->expected_id - 1));
	prev_hash = col_text(vf, COL_PREV_HASH);
	row_hash = col_text(vf, COL_ROW_HASH);
	if (prev_hash == NULL || strcmp(prev_hash, vf->expected_prev) != 0)
		return psprintf("prev_hash of row %lld does not match the row_hash of the row before it",
						(long long) id);
	EltCanonicalValuesHash(vf->values, vf->nulls, vf->desc, vf->audit_attnos, vf->n_audit, computed);
	if (row_hash == NULL || strcmp(row_hash, computed) != 0)
		return psprintf("row %lld was modified after it was written: its content does not match its row_hash",
						(long long) id);
	detail = recorded_row_detail(vf, id);
	if (detail != NULL)
		return detail;
	/* actions that determine what the updatable tables hold */
	if (!col_null(vf, COL_DETAILS))
		EltReplayRow(&vf->rp, vf->outer, id, col_text(vf, COL_ACTION), col_text(vf, COL_OBJECT),
				   col_text(vf, COL_ROLE), col_text(vf, COL_REASON), col_datum(vf, COL_DETAILS));
	if (vf->digest_hash != NULL && id == vf->digest_id)
	{
		vf->digest_seen = true;
		if (strcmp(row_hash, vf->digest_hash) != 0)
			return psprintf("row %lld is not the row the digest recorded: its row_hash differs",
							(long long) id);
	}
	strlcpy(vf->expected_prev, row_hash, sizeof(vf->expected_prev));
	vf->expected_id = id + 1;
	*broken_id = 0;
	return NULL;
}

/*
 * elt.audit_verify(digest jsonb DEFAULT NULL): walk the chain in id order and
 * report whether it holds, how many rows were checked, the first broken id
 * and what is wrong.  On the way, check each row an audit row recorded in
 * an append-only table (schema versions, transform runs, transform
 * versions) against it, and that no such row lacks its audit row.  With a
 * digest from elt.audit_digest(), also check that the chain still contains
 * the digest's head row unchanged.  Finally replay the governance, check,
 * approver and migration actions, and check that elt.governed_targets,
 * elt.check_defs, elt.approvers, elt.migration_windows and
 * elt.migration_approvals hold exactly what they leave behind, so that a
 * row removed, added or changed behind the extension's back is caught too.
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
	int64		broken_id = 0;
	char	   *detail = NULL;
	Verify		vf;
	MemoryContext rowcxt;
	EltCatalogWrite cw;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(&vf, 0, sizeof(vf));
	vf.outer = CurrentMemoryContext;
	vf.expected_id = 1;
	strlcpy(vf.expected_prev, ELT_GENESIS_HASH, sizeof(vf.expected_prev));

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
				vf.digest_id = strtoll(idtext, &end, 10);
				ok = (*end == '\0' && errno == 0 && vf.digest_id > 0);
			}
			if (!ok)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("digest must have a positive integer \"head_id\" and a string \"head_hash\""),
						 errhint("Pass a value returned by elt.audit_digest().")));
			vf.digest_hash = pnstrdup(v_hash->val.string.val, v_hash->val.string.len);
		}
	}

	/* read as the extension's owner (any role may verify); values named for elt_reader */
	EltVerifyReveals = EltRoleIsReader(GetUserId());

	/* what this catalog has: audit_verify runs on every catalog from 0.1.0 on */
	vf.has_runs = OidIsValid(EltCatalogRelid("transform_runs"));
	vf.has_code = OidIsValid(EltCatalogRelid("transform_code"));
	EltReplayInit(&vf.rp, vf.outer);

	EltCatalogWriteBegin(&cw);

	/* one statement, so one snapshot, streamed; each row checked in a memory context of its own */
	plan = SPI_prepare(chain_query(vf.has_runs, vf.has_code), 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "audit_verify row", ALLOCSET_DEFAULT_SIZES);
	while (detail == NULL)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed && detail == NULL; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			if (vf.desc == NULL)
				verify_columns(&vf, SPI_tuptable->tupdesc);
			detail = verify_row(&vf, SPI_tuptable->vals[i], &broken_id);
			MemoryContextSwitchTo(old);
			if (detail != NULL)
				detail = MemoryContextStrdup(vf.outer, detail);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);

	if (detail == NULL && vf.digest_hash != NULL && !vf.digest_seen)
	{
		broken_id = vf.digest_id;
		detail = psprintf("the chain ends at row %lld and no longer contains row %lld, the head recorded by the digest",
						  (long long) (vf.expected_id - 1), (long long) vf.digest_id);
	}

	/* the tables the extension updates, against what the actions leave behind */
	if (detail == NULL)
		detail = EltReplayCompareAll(&vf.rp, vf.outer);

	/* the result outlives SPI's memory */
	if (detail)
		detail = MemoryContextStrdup(vf.outer, detail);
	EltCatalogWriteEnd(&cw);

	result[0] = BoolGetDatum(detail == NULL);
	result[1] = Int64GetDatum(vf.checked);
	if (detail != NULL && broken_id > 0)
		result[2] = Int64GetDatum(broken_id);
	else
		rnulls[2] = true;
	if (detail)
		result[3] = CStringGetTextDatum(detail);
	else
		rnulls[3] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, result, rnulls)));
}
