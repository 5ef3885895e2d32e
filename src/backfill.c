/*
 * backfill.c — the backfill engine: chunked, checkpointed, exactly-once
 * re-processing of a relation by key range.  This file is its SQL API and
 * the state changes a user asks for.
 *
 * Owns: elt.backfills and elt.backfill_chunks, the SQL API (backfill_create
 * and its checks of the relation, key, statement and options; _start,
 * _pause, _resume, _cancel, _retry, _purge; the procedure backfill_run, a
 * session stepping through the work; _backfill_live_workers) and the pause
 * of running backfills by a breaking change (EltBackfillPauseForChange, for
 * the contracts engine).
 *
 * Layering: the top of the engine.  Calls backfill_worker.c (launching
 * workers under the caps) and backfill_chunk.c (reading the backfill's
 * row, setting its state, one step of the work: see its header for chunks,
 * their transactions and liveness), and the shared layers (audit, roles,
 * util).  Neither of them calls back here.
 *
 * Transactions.  A state change runs in the caller's transaction, in the
 * catalog write context (EltCatalogWriteBegin), holding the backfill's row
 * FOR UPDATE (bf_open) so that it is ordered with the workers' planning and
 * finishing.  Workers are launched after the catalog write context ends,
 * under the launch lock (backfill_worker.c); a worker waits for the
 * launching transaction to commit.  backfill_run is a procedure: it commits
 * after every step, and holds the backfill (EltBackfillAdvisoryLock) while
 * it steps.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "backfill_int.h"
#include "citus.h"
#include "roles.h"

/* the option names, in the order they are documented */
static const char *const option_names[] = {
	"follow_tail", "continue_on_error", "max_attempts", "target_chunk_ms",
	"min_chunk_rows", "max_chunk_rows", "max_rows_per_second",
	"lock_timeout_ms", "statement_timeout_ms", "pause_when_lag_bytes",
	"allow_null_keys", "allow_duplicate_keys"
};
/* A backfill by name, its row locked, or an error. */
static void
bf_load_named(Backfill *bf, const char *name, MemoryContext cxt)
{
	if (!EltBackfillLoad(bf, BF_BY_NAME_FOR_UPDATE, 0, name, cxt))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("backfill \"%s\" does not exist", name),
				 errhint("See SELECT name, state FROM elt.backfill_status.")));
}

/*
 * Only the backfill's owner, its members, elt_operator and superusers
 * control it (its chunks run as the owner whoever starts them).  actor is
 * the calling role (inside the catalog write context, the current user is
 * the extension owner).
 */
static void
bf_check_control(Backfill *bf, Oid actor)
{
	if (EltRoleIsOperator(actor))
		return;
	if (!EltRoleMayActAs(actor, bf->owner_oid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for backfill \"%s\"", bf->name),
				 errdetail("It belongs to role \"%s\".", bf->owner),
				 errhint("Only the role that created a backfill, the members of that role, members of %s and superusers may control it.",
						 ELT_ROLE_OPERATOR)));
}

/*
 * The opening shared by the functions that act on one backfill by name
 * (start, pause, resume, cancel, retry, run), once each has checked its
 * own arguments: enter the catalog write context, lock the backfill's row,
 * and check that the caller may control it.
 */
static void
bf_open(const char *name, Backfill *bf, EltCatalogWrite *cw, MemoryContext cxt)
{
	EltCatalogWriteBegin(cw);
	bf_load_named(bf, name, cxt);
	bf_check_control(bf, cw->actor);
}

/* Number of processes holding a backfill (see the file header). */
PG_FUNCTION_INFO_V1(elt_backfill_live_workers);
Datum
elt_backfill_live_workers(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	LockData   *data = GetLockStatusData();
	int			n = 0;
	int			i;

	for (i = 0; i < data->nelements; i++)
	{
		LockInstanceData *inst = &data->locks[i];

		if (inst->locktag.locktag_type == LOCKTAG_ADVISORY &&
			inst->locktag.locktag_field1 == MyDatabaseId &&
			inst->locktag.locktag_field2 == (uint32) (id >> 32) &&
			inst->locktag.locktag_field3 == (uint32) id &&
			inst->locktag.locktag_field4 == ELT_BACKFILL_LOCKTAG &&
			(inst->holdMask & LOCKBIT_ON(AccessShareLock)) != 0)
			n++;
	}
	PG_RETURN_INT32(n);
}

/* ---------------------------------------------------------------------
 * Creation
 * --------------------------------------------------------------------- */

/* Key types whose chunks can be bounded. */
static bool
supported_key_type(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case TEXTOID:
		case VARCHAROID:
		case UUIDOID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return true;
		default:
			return false;
	}
}

/* The access method of an index. */
static Oid
index_am(Oid indexoid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(indexoid));
	Oid			am;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	am = ((Form_pg_class) GETSTRUCT(tup))->relam;
	ReleaseSysCache(tup);
	return am;
}

/*
 * A valid, non-partial btree index whose first column is the key, with the
 * type's default operator class and the column's collation (so that ORDER BY
 * key walks it).  Sets *unique when one such index is unique on the key
 * alone.
 */
static bool
find_key_index(Relation rel, AttrNumber attnum, Oid keytype, Oid keycoll, bool *unique)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;
	Oid			defclass = GetDefaultOpClass(keytype, BTREE_AM_OID);

	*unique = false;
	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		Form_pg_index index;
		bool		isnull;
		oidvector  *classes;
		oidvector  *colls;

		if (!HeapTupleIsValid(tup))
			continue;
		index = (Form_pg_index) GETSTRUCT(tup);
		classes = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tup,
																Anum_pg_index_indclass, &isnull));
		colls = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tup,
															  Anum_pg_index_indcollation, &isnull));
		if (index->indisvalid && index->indkey.values[0] == attnum &&
			heap_attisnull(tup, Anum_pg_index_indpred, NULL) &&
			index_am(indexoid) == BTREE_AM_OID &&
			classes->values[0] == defclass && colls->values[0] == keycoll)
		{
			found = true;
			if (index->indisunique && index->indnkeyatts == 1 &&
				heap_attisnull(tup, Anum_pg_index_indexprs, NULL))
				*unique = true;
		}
		ReleaseSysCache(tup);
	}
	list_free(indexes);
	return found;
}

/* Walker: note which $n a query references. */
static bool
find_params_walker(Node *node, int *used)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param))
	{
		Param	   *p = (Param *) node;

		if (p->paramkind == PARAM_EXTERN && p->paramid >= 1 && p->paramid <= 2)
			used[p->paramid - 1] = 1;
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, find_params_walker, used, 0);
	return expression_tree_walker(node, find_params_walker, used);
}

/* Error context: which statement was being checked. */
static void
statement_context(void *arg)
{
	errcontext("chunk statement of backfill \"%s\"", (const char *) arg);
}

/*
 * The chunk statement must prepare, as the caller, with $1 and $2 of the
 * key's type, be one SELECT, INSERT, UPDATE, DELETE or MERGE, and use both
 * bounds.
 */
static void
check_statement(const char *name, const char *sql, Oid keytype)
{
	Oid			types[2] = {keytype, keytype};
	SPIPlanPtr	plan;
	List	   *sources;
	CachedPlanSource *src;
	int			used[2] = {0, 0};
	ListCell   *lc;
	ErrorContextCallback cb;

	cb.callback = statement_context;
	cb.arg = (void *) name;
	cb.previous = error_context_stack;
	error_context_stack = &cb;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql, 2, types);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the chunk statement could not be prepared: %s",
						SPI_result_code_string(SPI_result))));
	sources = SPI_plan_get_plan_sources(plan);
	if (list_length(sources) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the chunk statement must be exactly one statement, not %d",
						list_length(sources)),
				 errhint("Put several steps in one statement with WITH, or in a function called by the statement.")));
	src = (CachedPlanSource *) linitial(sources);
	if (src->commandTag != CMDTAG_SELECT && src->commandTag != CMDTAG_INSERT &&
		src->commandTag != CMDTAG_UPDATE && src->commandTag != CMDTAG_DELETE &&
		src->commandTag != CMDTAG_MERGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the chunk statement must be a SELECT, INSERT, UPDATE, DELETE or MERGE, not %s",
						GetCommandTagName(src->commandTag))));
	foreach(lc, src->query_list)
		(void) find_params_walker((Node *) lfirst(lc), used);
	if (!used[0] || !used[1])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the chunk statement must use $1 and $2, the chunk's lower (inclusive) and upper (exclusive) key bounds"),
				 errdetail("It does not use %s.", !used[0] && !used[1] ? "either" :
						   !used[0] ? "$1" : "$2"),
				 errhint("For example: UPDATE t SET ... WHERE id >= $1 AND id < $2.")));
	SPI_freeplan(plan);
	SPI_finish();
	error_context_stack = cb.previous;
}

/* An integer option: a JSON number in [min, max]. */
static int64
option_int(const char *key, const char *type, const char *value, int64 min, int64 max)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(value ? value : "", &end, 10);
	if (strcmp(type, "number") != 0 || value == NULL || *end != '\0' || errno != 0 ||
		v < min || v > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be an integer between " INT64_FORMAT " and " INT64_FORMAT,
						key, min, max)));
	return v;
}

/* A boolean option. */
static bool
option_bool(const char *key, const char *type, const char *value)
{
	if (strcmp(type, "boolean") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be true or false", key)));
	return strcmp(value, "true") == 0;
}

/*
 * A backfill of a hash-distributed Citus table is keyed on its
 * distribution column: a chunk is then a range of that column, which the
 * shards split by hash, and never a statement that must find its rows by
 * another column on every shard.
 */
static void
check_citus_key(Oid relid, const char *key, const char *relname)
{
	EltCitusTable citus;

	if (EltCitusTableInfo(relid, &citus) && citus.method == 'h' && citus.column != NULL &&
		strcmp(citus.column, key) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key column \"%s\" of %s is not its distribution column", key, relname),
				 errdetail("%s is a Citus table distributed by column \"%s\".", relname, citus.column),
				 errhint("Key the backfill on \"%s\": key => '%s'.", citus.column, citus.column)));
}

/*
 * Validate options and fill every option with its value or default, as the
 * JSON stored in elt.backfills.options.
 */
static char *
normalize_options(Jsonb *options, int chunk_rows, bool *allow_nulls, bool *allow_dups)
{
	bool		follow_tail = false,
				continue_on_error = false;
	int64		max_attempts = 10,
				target_chunk_ms = 200,
				min_chunk_rows = Max(1, chunk_rows / 10),
				max_chunk_rows = Min((int64) chunk_rows * 10, PG_INT32_MAX),
				max_rows_per_second = 0,
				lock_timeout_ms = 1000,
				statement_timeout_ms = 0,
				pause_when_lag_bytes = 0;
	EltJson		json;
	Oid			argtypes[1] = {JSONBOID};
	Datum		arg = JsonbPGetDatum(options);
	uint64		i;

	*allow_nulls = false;
	*allow_dups = false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_typeof($1) AS t", 1, argtypes, &arg,
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read options");
	if (strcmp(EltSpiGetText(0, "t"), "object") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object"),
				 errhint("For example '{\"target_chunk_ms\": 100}'.")));
	if (SPI_execute_with_args("SELECT key, pg_catalog.jsonb_typeof(value) AS type,"
							  " value #>> '{}' AS value FROM pg_catalog.jsonb_each($1)",
							  1, argtypes, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read options");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *key = EltSpiGetText(i, "key");
		char	   *type = EltSpiGetText(i, "type");
		char	   *value = EltSpiGetText(i, "value");

		if (strcmp(key, "follow_tail") == 0)
			follow_tail = option_bool(key, type, value);
		else if (strcmp(key, "continue_on_error") == 0)
			continue_on_error = option_bool(key, type, value);
		else if (strcmp(key, "allow_null_keys") == 0)
			*allow_nulls = option_bool(key, type, value);
		else if (strcmp(key, "allow_duplicate_keys") == 0)
			*allow_dups = option_bool(key, type, value);
		else if (strcmp(key, "max_attempts") == 0)
			max_attempts = option_int(key, type, value, 1, 1000);
		else if (strcmp(key, "target_chunk_ms") == 0)
			target_chunk_ms = option_int(key, type, value, 0, 3600000);
		else if (strcmp(key, "min_chunk_rows") == 0)
			min_chunk_rows = option_int(key, type, value, 1, PG_INT32_MAX);
		else if (strcmp(key, "max_chunk_rows") == 0)
			max_chunk_rows = option_int(key, type, value, 1, PG_INT32_MAX);
		else if (strcmp(key, "max_rows_per_second") == 0)
			max_rows_per_second = option_int(key, type, value, 0, PG_INT64_MAX);
		else if (strcmp(key, "lock_timeout_ms") == 0)
			lock_timeout_ms = option_int(key, type, value, 0, PG_INT32_MAX);
		else if (strcmp(key, "statement_timeout_ms") == 0)
			statement_timeout_ms = option_int(key, type, value, 0, PG_INT32_MAX);
		else if (strcmp(key, "pause_when_lag_bytes") == 0)
			pause_when_lag_bytes = option_int(key, type, value, 0, PG_INT64_MAX);
		else
		{
			StringInfoData names;
			int			j;

			initStringInfo(&names);
			for (j = 0; j < (int) lengthof(option_names); j++)
				appendStringInfo(&names, "%s%s", j ? ", " : "", option_names[j]);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown backfill option \"%s\"", key),
					 errhint("The options are: %s.", names.data)));
		}
	}
	SPI_finish();
	if (min_chunk_rows > max_chunk_rows)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_chunk_rows (" INT64_FORMAT ") is greater than max_chunk_rows (" INT64_FORMAT ")",
						min_chunk_rows, max_chunk_rows)));
	if (chunk_rows < min_chunk_rows || chunk_rows > max_chunk_rows)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk_rows (%d) must lie between min_chunk_rows (" INT64_FORMAT ") and max_chunk_rows (" INT64_FORMAT ")",
						chunk_rows, min_chunk_rows, max_chunk_rows)));

	EltJsonBegin(&json);
	EltJsonBool(&json, "follow_tail", follow_tail);
	EltJsonBool(&json, "continue_on_error", continue_on_error);
	EltJsonInt(&json, "max_attempts", max_attempts);
	EltJsonInt(&json, "target_chunk_ms", target_chunk_ms);
	EltJsonInt(&json, "min_chunk_rows", min_chunk_rows);
	EltJsonInt(&json, "max_chunk_rows", max_chunk_rows);
	EltJsonInt(&json, "max_rows_per_second", max_rows_per_second);
	EltJsonInt(&json, "lock_timeout_ms", lock_timeout_ms);
	EltJsonInt(&json, "statement_timeout_ms", statement_timeout_ms);
	EltJsonInt(&json, "pause_when_lag_bytes", pause_when_lag_bytes);
	EltJsonBool(&json, "allow_null_keys", *allow_nulls);
	EltJsonBool(&json, "allow_duplicate_keys", *allow_dups);
	return EltJsonFinish(&json);
}

/* The single-column primary key of a relation, or an error. */
static char *
primary_key_column(Relation rel, const char *relname)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	char	   *result = NULL;

	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;

		if (!HeapTupleIsValid(tup))
			continue;
		index = (Form_pg_index) GETSTRUCT(tup);
		if (index->indisprimary)
		{
			if (index->indnkeyatts != 1 || index->indkey.values[0] == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the primary key of %s has more than one column", relname),
						 errhint("Name the key column: key => 'column', a NOT NULL column with a unique btree index.")));
			result = get_attname(RelationGetRelid(rel), index->indkey.values[0], false);
		}
		ReleaseSysCache(tup);
	}
	list_free(indexes);
	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has no primary key", relname),
				 errhint("Name the key column: key => 'column', a NOT NULL column with a unique btree index.")));
	return result;
}

PG_FUNCTION_INFO_V1(elt_backfill_create);
Datum
elt_backfill_create(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr exists_plan = NULL;
	static SPIPlanPtr version_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	char	   *name;
	Oid			relid;
	char	   *sql;
	char	   *key;
	int			chunk_rows;
	char	   *options;
	bool		allow_nulls;
	bool		allow_dups;
	Relation	rel;
	char	   *relname;
	AttrNumber	attnum;
	Oid			keytype;
	int32		keytypmod;
	Oid			keycoll;
	bool		unique;
	Form_pg_attribute att;
	EltCatalogWrite cw;
	Oid			ntypes[1] = {TEXTOID};
	Oid			vtypes[1] = {OIDOID};
	Oid			itypes[11] = {TEXTOID, OIDOID, NAMEOID, OIDOID, TEXTOID, TEXTOID,
	INT4OID, JSONBOID, NAMEOID, INT4OID, INT4OID};
	Datum		values[11];
	char		nulls[11];
	int64		id;
	Datum		arg;
	int			schema_version = 0;
	bool		have_version = false;
	EltJson		details;
	char	   *search_path;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation must not be null")));
	relid = PG_GETARG_OID(1);
	sql = EltRequiredText(fcinfo, 2, "sql");
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("chunk_rows must not be null")));
	chunk_rows = PG_GETARG_INT32(4);
	if (chunk_rows < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk_rows must be at least 1")));
	EltCheckObjectName("backfill", name);

	/* the relation, locked against concurrent DDL while it is checked */
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	rel = table_open(relid, AccessShareLock);
	relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										 RelationGetRelationName(rel));
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table", relname),
				 errhint("A backfill runs on a table or a partitioned table.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot backfill temporary table %s",
						quote_identifier(RelationGetRelationName(rel))),
				 errdetail("Backfills run in other sessions, which cannot see it.")));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_UPDATE | ACL_INSERT | ACL_DELETE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to backfill %s", relname),
				 errhint("A backfill can be created only by a role that may write the relation (UPDATE, INSERT or DELETE).")));

	key = PG_ARGISNULL(3) ? primary_key_column(rel, relname)
		: text_to_cstring(PG_GETARG_TEXT_PP(3));
	attnum = get_attnum(relid, key);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation %s does not exist", key, relname)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck(relid, attnum, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read key column \"%s\" of %s", key, relname),
				 errhint("Chunks are planned by reading the key column, as the backfill's owner.")));
	check_citus_key(relid, key, relname);
	get_atttypetypmodcoll(relid, attnum, &keytype, &keytypmod, &keycoll);
	if (!supported_key_type(keytype))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("key column \"%s\" has type %s, which a backfill cannot chunk",
						key, format_type_be(keytype)),
				 errhint("Key types: smallint, integer, bigint, numeric, text, varchar, uuid, date, timestamp, timestamptz.")));
	options = normalize_options(PG_ARGISNULL(5) ? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))
								: PG_GETARG_JSONB_P(5),
								chunk_rows, &allow_nulls, &allow_dups);
	att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	if (!att->attnotnull && !allow_nulls)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key column \"%s\" of %s is nullable", key, relname),
				 errdetail("Rows whose key is NULL lie in no chunk, and would not be processed."),
				 errhint("Use a NOT NULL key, or pass options => '{\"allow_null_keys\": true}' to leave those rows out.")));
	if (!find_key_index(rel, attnum, keytype, keycoll, &unique))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key column \"%s\" of %s has no btree index that chunks can be planned on", key, relname),
				 errdetail("Chunks are planned by walking an index whose first column is the key, with the type's default operator class and the column's collation."),
				 errhint("Create one first, for example CREATE INDEX CONCURRENTLY ON %s (%s).",
						 relname, quote_identifier(key))));
	if (!unique && !allow_dups)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key column \"%s\" of %s is not unique", key, relname),
				 errdetail("No unique index covers exactly that column."),
				 errhint("Use a unique key, or pass options => '{\"allow_duplicate_keys\": true}': rows with equal keys then share a chunk.")));
	table_close(rel, NoLock);

	check_statement(name, sql, keytype);
	search_path = GetConfigOptionByName("search_path", NULL, false);

	EltCatalogWriteBegin(&cw);
	EltPrepare(&exists_plan, "SELECT 1 FROM elt.backfills WHERE name = $1", 1, ntypes);
	arg = CStringGetTextDatum(name);
	EltExecLatest(exists_plan, &arg, NULL, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("backfill \"%s\" already exists", name),
				 errhint("Choose another name, or purge the old one with elt.backfill_purge().")));
	EltPrepare(&version_plan,
			   /* by table_id: a version's relid is the oid it had then, not after a restore */
			   "SELECT v.version FROM elt.schema_versions v JOIN elt.tracked_tables t USING (table_id)"
			   " WHERE t.relid = $1 ORDER BY v.recorded_at DESC, v.version DESC LIMIT 1", 1, vtypes);
	arg = ObjectIdGetDatum(relid);
	EltExec(version_plan, &arg, NULL, 1);
	if (SPI_processed > 0)
	{
		schema_version = (int) spi_int(0, "version");
		have_version = true;
	}

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(key));
	values[3] = ObjectIdGetDatum(keytype);
	values[4] = CStringGetTextDatum(sql);
	values[5] = CStringGetTextDatum(search_path);
	values[6] = Int32GetDatum(chunk_rows);
	values[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(options));
	values[8] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(cw.actor, false)));
	values[9] = Int32GetDatum(schema_version);
	if (!have_version)
		nulls[9] = 'n';
	values[10] = Int32GetDatum(chunk_rows);
	EltPrepare(&insert_plan,
			   "INSERT INTO elt.backfills (name, rel, key_column, key_type, sql, search_path,"
			   " chunk_rows, options, owner, schema_version, chunk_rows_current, created_at)"
			   " VALUES ($1, $2::pg_catalog.regclass, $3, $4::pg_catalog.regtype, $5, $6, $7, $8,"
			   " $9, $10, $11, pg_catalog.now()) RETURNING backfill_id",
			   11, itypes);
	EltExec(insert_plan, values, nulls, 1);
	id = spi_int(0, "backfill_id");

	EltJsonBegin(&details);
	EltJsonInt(&details, "backfill_id", id);
	EltJsonString(&details, "relation", relname);
	EltJsonString(&details, "key", key);
	EltJsonInt(&details, "chunk_rows", chunk_rows);
	if (have_version)
		EltJsonInt(&details, "schema_version", schema_version);
	EltJsonRaw(&details, "options", options);
	EltAuditRecord(cw.actor, "backfill_created", name, EltJsonFinish(&details),
				   EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(id);
}

/* ---------------------------------------------------------------------
 * State changes
 * --------------------------------------------------------------------- */

/* Workers connect as the owner: it must exist and be able to log in. */
static void
bf_check_login(Backfill *bf)
{
	if (!OidIsValid(bf->owner_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\", owner of backfill \"%s\", no longer exists",
						bf->owner, bf->name),
				 errhint("Cancel the backfill and create it again as another role.")));
	if (!EltBackfillCanLogin(bf))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\", owner of backfill \"%s\", cannot log in",
						bf->owner, bf->name),
				 errdetail("Background workers connect as the backfill's owner."),
				 errhint("Run it in a session with CALL elt.backfill_run('%s'), or grant the role LOGIN.",
						 bf->name)));
}

/* Check a worker count against what the server allows. */
static int
bf_check_workers(FunctionCallInfo fcinfo, int argno)
{
	int			n;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("workers must not be null")));
	n = PG_GETARG_INT32(argno);
	if (n < 1 || n > max_worker_processes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("workers must be between 1 and max_worker_processes (%d), not %d",
						max_worker_processes, n),
				 errhint("Start fewer workers, or raise max_worker_processes (needs a restart).")));
	return n;
}

/*
 * Launch n workers for the backfill, as its owner (checked by the caller
 * with bf_check_login before changing anything), after
 * EltBackfillCappedWorkers (backfill_worker.c);
 * all or an error.  Releases the launch lock.
 */
static void
bf_launch(Backfill *bf, int n)
{
	(void) EltBackfillLaunch(bf->id, bf->generation, bf->name, bf->owner_oid, n, ERROR);
	EltBackfillLaunchUnlock();
}

/* The error for a state a function cannot act on. */
static void
bf_wrong_state(Backfill *bf, const char *verb)
{
	const char *hint;

	if (strcmp(bf->state, "finished") == 0)
		hint = "Create a new backfill to run the statement again.";
	else if (strcmp(bf->state, "cancelled") == 0)
		hint = "A cancelled backfill cannot run again; create a new one.";
	else if (strcmp(bf->state, "failed") == 0)
		hint = psprintf("Rerun its failed chunks with elt.backfill_retry('%s').", bf->name);
	else if (strcmp(bf->state, "paused") == 0)
		hint = psprintf("Resume it with elt.backfill_resume('%s').", bf->name);
	else if (strcmp(bf->state, "created") == 0)
		hint = psprintf("Start it with elt.backfill_start('%s') or CALL elt.backfill_run('%s').",
						bf->name, bf->name);
	else
		hint = psprintf("Pause it with elt.backfill_pause('%s'), or cancel it.", bf->name);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s backfill \"%s\": it is %s", verb, bf->name, bf->state),
			 errhint("%s", hint)));
}

PG_FUNCTION_INFO_V1(elt_backfill_start);
Datum
elt_backfill_start(PG_FUNCTION_ARGS)
{
	char	   *name;
	int			n;
	Backfill	bf;
	EltCatalogWrite cw;
	EltJson		details;
	MemoryContext cxt = CurrentMemoryContext;
	bool		resume = false;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	n = bf_check_workers(fcinfo, 1);
	bf_open(name, &bf, &cw, cxt);
	if (strcmp(bf.state, "running") == 0)
	{
		int			live = DatumGetInt32(DirectFunctionCall1(elt_backfill_live_workers,
															 Int64GetDatum(bf.id)));

		if (live > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("backfill \"%s\" is already running, with %d live %s",
							name, live, live == 1 ? "process" : "processes"),
					 errhint("Follow it in elt.backfill_status; pause it with elt.backfill_pause('%s').",
							 name)));
		resume = true;			/* interrupted: resume from the checkpoint */
	}
	else if (strcmp(bf.state, "created") != 0)
		bf_wrong_state(&bf, "start");
	EltBackfillCheckRelation(&bf);
	bf_check_login(&bf);
	if (!bf.started)
		EltBackfillFirstStart(&bf);
	n = EltBackfillCappedWorkers(&bf, n, "start");
	EltBackfillSetState(&bf, "running", NULL, "workers", n, true);
	EltBackfillAuditDetails(&details, &bf);
	EltJsonInt(&details, "workers", n);
	EltBackfillAudit(cw.actor, resume ? "backfill_resumed" : "backfill_started", &bf, &details);
	EltCatalogWriteEnd(&cw);
	bf_launch(&bf, n);
	PG_RETURN_INT32(n);
}

PG_FUNCTION_INFO_V1(elt_backfill_pause);
Datum
elt_backfill_pause(PG_FUNCTION_ARGS)
{
	char	   *name;
	Backfill	bf;
	EltCatalogWrite cw;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	bf_open(name, &bf, &cw, CurrentMemoryContext);
	if (strcmp(bf.state, "running") != 0)
		bf_wrong_state(&bf, "pause");
	EltBackfillSetState(&bf, "paused",
				 psprintf("paused by %s", GetUserNameFromId(cw.actor, false)),
				 NULL, 0, false);
	EltBackfillAudit(cw.actor, "backfill_paused", &bf, NULL);
	EltCatalogWriteEnd(&cw);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(elt_backfill_resume);
Datum
elt_backfill_resume(PG_FUNCTION_ARGS)
{
	char	   *name;
	Backfill	bf;
	EltCatalogWrite cw;
	EltJson		details;
	int			n = 0;
	MemoryContext cxt = CurrentMemoryContext;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	bf_open(name, &bf, &cw, cxt);
	if (strcmp(bf.state, "paused") != 0 &&
		!(strcmp(bf.state, "running") == 0 &&
		  DatumGetInt32(DirectFunctionCall1(elt_backfill_live_workers, Int64GetDatum(bf.id))) == 0))
		bf_wrong_state(&bf, "resume");
	EltBackfillCheckRelation(&bf);
	n = EltBackfillWorkerCount(&bf);
	if (n > 0)
	{
		bf_check_login(&bf);
		n = EltBackfillCappedWorkers(&bf, n, "resume");
	}
	EltBackfillSetState(&bf, "running", NULL, NULL, n, true);
	EltBackfillAuditDetails(&details, &bf);
	EltJsonInt(&details, "workers", n);
	EltBackfillAudit(cw.actor, "backfill_resumed", &bf, &details);
	EltCatalogWriteEnd(&cw);
	if (n > 0)
		bf_launch(&bf, n);
	PG_RETURN_INT32(n);
}

PG_FUNCTION_INFO_V1(elt_backfill_cancel);
Datum
elt_backfill_cancel(PG_FUNCTION_ARGS)
{
	char	   *name;
	Backfill	bf;
	EltCatalogWrite cw;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	bf_open(name, &bf, &cw, CurrentMemoryContext);
	if (strcmp(bf.state, "finished") == 0 || strcmp(bf.state, "cancelled") == 0)
		bf_wrong_state(&bf, "cancel");
	EltBackfillSetState(&bf, "cancelled",
				 psprintf("cancelled by %s", GetUserNameFromId(cw.actor, false)),
				 NULL, 0, true);
	EltBackfillAudit(cw.actor, "backfill_cancelled", &bf, NULL);
	EltCatalogWriteEnd(&cw);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(elt_backfill_retry);
Datum
elt_backfill_retry(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	char	   *name;
	Backfill	bf;
	EltCatalogWrite cw;
	EltJson		details;
	Oid			types[1] = {INT8OID};
	Datum		arg;
	int			chunks;
	int			n = 0;
	MemoryContext cxt = CurrentMemoryContext;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	bf_open(name, &bf, &cw, cxt);
	if (strcmp(bf.state, "cancelled") == 0 || strcmp(bf.state, "finished") == 0 ||
		strcmp(bf.state, "created") == 0)
		bf_wrong_state(&bf, "retry");
	EltPrepare(&plan,
			   "UPDATE elt.backfill_chunks SET state = 'pending', attempts = 0, retry_at = NULL,"
			   " finished_at = NULL WHERE backfill_id = $1 AND state = 'failed'",
			   1, types);
	arg = Int64GetDatum(bf.id);
	EltExec(plan, &arg, NULL, 0);
	chunks = (int) SPI_processed;
	if (chunks == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("backfill \"%s\" has no failed chunks", name),
				 errhint("See elt.backfill_chunks for the state of its chunks.")));
	if (strcmp(bf.state, "failed") == 0)
	{
		EltBackfillCheckRelation(&bf);
		n = EltBackfillWorkerCount(&bf);
		if (n > 0)
		{
			bf_check_login(&bf);
			n = EltBackfillCappedWorkers(&bf, n, "retry");
		}
		EltBackfillSetState(&bf, "running", NULL, NULL, n, true);
	}
	EltBackfillAuditDetails(&details, &bf);
	EltJsonInt(&details, "chunks", chunks);
	EltBackfillAudit(cw.actor, "backfill_retried", &bf, &details);
	EltCatalogWriteEnd(&cw);
	if (n > 0)
		bf_launch(&bf, n);
	PG_RETURN_INT32(chunks);
}

PG_FUNCTION_INFO_V1(elt_backfill_purge);

/*
 * elt.backfill_purge(older_than interval) RETURNS integer: delete the
 * finished, failed and cancelled backfills (and their chunks) that ended
 * more than older_than ago, of the roles the caller has the privileges of
 * (all, for elt_operator and superusers); the audit log keeps their story.
 */
Datum
elt_backfill_purge(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Interval   *older;
	EltCatalogWrite cw;
	Oid			types[3] = {INTERVALOID, OIDOID, BOOLOID};
	Datum		values[3];
	int			n;
	EltJson		details;
	uint64		i;

	EltRequireCatalog("backfills");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("older_than must not be null")));
	older = PG_GETARG_INTERVAL_P(0);
	if (older->time < 0 || older->day < 0 || older->month < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative")));
	EltCatalogWriteBegin(&cw);
	values[0] = IntervalPGetDatum(older);
	values[1] = ObjectIdGetDatum(cw.actor);
	values[2] = BoolGetDatum(EltRoleIsOperator(cw.actor));
	EltPrepare(&plan,
			   "WITH purged AS (DELETE FROM elt.backfills b"
			   " WHERE b.state IN ('finished', 'cancelled', 'failed')"
			   "   AND b.finished_at < pg_catalog.now() - $1"
			   "   AND ($3 OR (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = b.owner)"
			   "                AND pg_catalog.pg_has_role($2, b.owner, 'USAGE')))"
			   " RETURNING b.name) SELECT name FROM purged ORDER BY name",
			   3, types);
	EltExec(plan, values, NULL, 0);
	n = (int) SPI_processed;
	if (n > 0)
	{
		EltJsonBegin(&details);
		EltJsonBeginArray(&details, "backfills");
		for (i = 0; i < SPI_processed; i++)
			EltJsonString(&details, NULL, EltSpiGetText(i, "name"));
		EltJsonEndArray(&details);
		EltAuditRecord(cw.actor, "backfill_purged", NULL, EltJsonFinish(&details),
					   EltAuditReason(NULL));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT32(n);
}

/*
 * A breaking change to a relation that is going ahead pauses its running
 * backfills, with the change as the reason.  Called by the contracts engine
 * inside its catalog write context.
 */
void
EltBackfillPauseForChange(Oid actor, Oid relid, const char *code, const char *reason)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	uint64		i;
	char	   *why;
	SPITupleTable *tt;
	uint64		n;

	if (!OidIsValid(EltCatalogRelid("backfills")))
		return;
	why = psprintf("paused by breaking change %s: %s", code, reason);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(why);
	EltPrepare(&plan,
			   "UPDATE elt.backfills SET state = 'paused', state_reason = $2"
			   " WHERE rel = $1::pg_catalog.regclass AND state = 'running'"
			   " RETURNING backfill_id, name, owner::pg_catalog.text AS owner",
			   2, types);
	EltExec(plan, values, NULL, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		Backfill	bf;
		EltJson		details;

		SPI_tuptable = tt;
		memset(&bf, 0, sizeof(bf));
		bf.id = spi_int(i, "backfill_id");
		bf.name = EltSpiGetText(i, "name");
		bf.relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												get_rel_name(relid));
		ereport(NOTICE,
				(errmsg("backfill \"%s\" paused: breaking change %s to %s",
						bf.name, code, bf.relname),
				 errhint("Check its chunk statement against the new shape, then elt.backfill_resume('%s').",
						 bf.name)));
		EltBackfillAuditDetails(&details, &bf);
		EltJsonString(&details, "rule", code);
		EltBackfillAudit(actor, "backfill_paused", &bf, &details);
	}
}

/* ---------------------------------------------------------------------
 * In a session: CALL elt.backfill_run
 * --------------------------------------------------------------------- */

/* A NOTICE with the backfill's progress from elt.backfill_status. */
static void
bf_progress_notice(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		arg = CStringGetTextDatum(name);

	if (SPI_execute_with_args("SELECT chunks_done, chunks_total, percent, rows_per_second, eta"
							  " FROM elt.backfill_status WHERE name = $1",
							  1, types, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed == 0)
		return;
	ereport(NOTICE,
			(errmsg("backfill \"%s\": %s of ~%s chunks done (%s%%), %s rows/s, about %s left",
					name, EltSpiGetText(0, "chunks_done"), EltSpiGetText(0, "chunks_total"),
					EltSpiGetText(0, "percent"),
					EltSpiGetText(0, "rows_per_second") ? EltSpiGetText(0, "rows_per_second") : "0",
					EltSpiGetText(0, "eta") ? EltSpiGetText(0, "eta") : "?")));
}

/* Sleep ms milliseconds, waking for interrupts. */
static void
bf_sleep(long ms)
{
	if (ms <= 0)
		return;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* What to do about a paused backfill, by the reason it was paused. */
static char *
bf_paused_hint(const char *name, const char *reason)
{
	if (reason && strncmp(reason, "paused by breaking change", 25) == 0)
		return psprintf("Check its chunk statement against the new shape, then resume it with elt.backfill_resume('%s').",
						name);
	if (reason && strncmp(reason, "paused by ", 10) == 0)
		return psprintf("Resume it with elt.backfill_resume('%s') when it should go on.", name);
	return psprintf("Fix the cause, then resume it with elt.backfill_resume('%s').", name);
}

/*
 * End CALL elt.backfill_run in an error because its backfill is failed or
 * paused and cannot progress, so that a scheduler (pg_cron) records the run
 * as failed, with the reason, instead of succeeded.  The chunks this call did
 * are committed already and stay so.  The reason (state_reason, the last
 * chunk error) quotes the table's values: it is read through
 * elt.backfill_status, which shows it only to the roles that may see it (the
 * owner's members, elt_reader); others are told where to look.
 */
static void
bf_run_cannot_progress(const char *name, const char *state, int chunks, int64 rows)
{
	Oid			types[1] = {TEXTOID};
	Datum		arg = CStringGetTextDatum(name);
	char	   *reason = NULL;
	char	   *last_error = NULL;
	char	   *owner = NULL;
	bool		sees = false;
	bool		failed = strcmp(state, "failed") == 0;
	StringInfoData detail;

	if (SPI_execute_with_args("SELECT state_reason, last_error, owner::pg_catalog.text AS owner,"
							  " elt._sees_role_name(owner) AS sees"
							  " FROM elt.backfill_status WHERE name = $1",
							  1, types, &arg, NULL, true, 1) == SPI_OK_SELECT && SPI_processed > 0)
	{
		reason = EltSpiGetText(0, "state_reason");
		last_error = EltSpiGetText(0, "last_error");
		owner = EltSpiGetText(0, "owner");
		sees = EltSpiGetText(0, "sees") && strcmp(EltSpiGetText(0, "sees"), "t") == 0;
	}
	initStringInfo(&detail);
	if (!sees)
		appendStringInfo(&detail, "Its reason is shown in elt.backfill_status to the members of role \"%s\" and to elt_reader.",
						 owner ? owner : "?");
	else if (reason)
	{
		appendStringInfo(&detail, "Reason: %s.", reason);
		/* a failed backfill's reason may only count its failed chunks */
		if (failed && last_error && strstr(reason, last_error) == NULL)
			appendStringInfo(&detail, " The last chunk error: %s.", last_error);
	}
	else
		appendStringInfo(&detail, "No reason was recorded.");
	if (chunks > 0)
		appendStringInfo(&detail, " This call did %d %s (" INT64_FORMAT " rows), which stay committed.",
						 chunks, chunks == 1 ? "chunk" : "chunks", rows);
	if (failed)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("backfill \"%s\" failed", name),
				 errdetail_internal("%s", detail.data),
				 errhint("Fix the cause, then rerun its failed chunks with elt.backfill_retry('%s') "
						 "and run it again; see elt.backfill_chunk_status for the chunks.", name)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("backfill \"%s\" is paused", name),
			 errdetail_internal("%s", detail.data),
			 errhint("%s", bf_paused_hint(name, reason))));
}

PG_FUNCTION_INFO_V1(elt_backfill_run);
Datum
elt_backfill_run(PG_FUNCTION_ARGS)
{
	char	   *name;
	/* volatile: read inside PG_TRY (newer compilers and headers warn) */
	volatile int max_chunks = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	volatile int max_seconds = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	bool		atomic;
	Backfill	bf;
	EltCatalogWrite cw;
	EltJson		details;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext stepcxt;
	EltBackfillRunner r;
	volatile int chunks = 0;
	volatile int64 rows = 0;
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz last_notice = start;
	const char *ended = NULL;

	atomic = !(fcinfo->context && IsA(fcinfo->context, CallContext) &&
			   !castNode(CallContext, fcinfo->context)->atomic);
	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	if (atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("elt.backfill_run cannot run inside a transaction block"),
				 errhint("Call it with CALL at the top level, outside BEGIN ... COMMIT, so that it can commit each chunk.")));
	if (max_chunks < 0 || max_seconds < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_chunks and max_seconds must not be negative")));
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	bf_open(name, &bf, &cw, callcxt);
	/* an operator's temporary objects must not stand for names in the owner's statement */
	if (OidIsValid(bf.owner_oid) && !has_privs_of_role(cw.actor, bf.owner_oid) && EltSessionHasTempObjects())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("backfill \"%s\" runs as role \"%s\", and this session has temporary tables or types",
						name, bf.owner),
				 errdetail("A temporary object could stand for a name in the backfill's statement, which runs as its owner."),
				 errhint("Run it from a session without temporary objects (a new session, or after DISCARD TEMP), "
						 "or start it on workers with elt.backfill_start('%s').", name)));
	if (strcmp(bf.state, "finished") == 0)
	{
		EltCatalogWriteEnd(&cw);
		ereport(NOTICE,
				(errmsg("backfill \"%s\" is %s; nothing to do", name, bf.state)));
		SPI_finish();
		PG_RETURN_VOID();
	}
	if (strcmp(bf.state, "paused") == 0 || strcmp(bf.state, "failed") == 0)
	{
		EltCatalogWriteEnd(&cw);
		bf_run_cannot_progress(name, bf.state, 0, 0);
	}
	if (strcmp(bf.state, "created") == 0)
	{
		EltBackfillCheckRelation(&bf);
		if (!bf.started)
			EltBackfillFirstStart(&bf);
		EltBackfillSetState(&bf, "running", NULL, "session", 0, true);
		EltBackfillAuditDetails(&details, &bf);
		EltJsonString(&details, "runner", "session");
		EltBackfillAudit(cw.actor, "backfill_started", &bf, &details);
	}
	else if (strcmp(bf.state, "running") != 0)
		bf_wrong_state(&bf, "run");
	EltCatalogWriteEnd(&cw);
	SPI_commit();

	stepcxt = AllocSetContextCreate(callcxt, "elt backfill step", ALLOCSET_DEFAULT_SIZES);
	memset(&r, 0, sizeof(r));
	r.backfill_id = bf.id;
	r.is_worker = false;
	EltBackfillAdvisoryLock(bf.id, true);
	PG_TRY();
	{
		for (;;)
		{
			EltBackfillStep step;
			instr_time	t0;
			instr_time	t1;

			CHECK_FOR_INTERRUPTS();
			if (max_chunks > 0 && chunks >= max_chunks)
			{
				ended = "max_chunks reached";
				break;
			}
			if (max_seconds > 0 &&
				GetCurrentTimestamp() >= start + (int64) max_seconds * USECS_PER_SEC)
			{
				ended = "max_seconds reached";
				break;
			}
			EltBackfillReadCommitted();
			INSTR_TIME_SET_CURRENT(t0);
			MemoryContextSwitchTo(stepcxt);
			step = EltBackfillStepRun(&r);
			MemoryContextSwitchTo(callcxt);
			SPI_commit();
			INSTR_TIME_SET_CURRENT(t1);
			INSTR_TIME_SUBTRACT(t1, t0);
			if (step == BF_STEP_CHUNK && r.chunk_done)
			{
				chunks++;
				rows += r.rows;
			}
			if (r.state)
				ended = pstrdup(r.state);
			MemoryContextReset(stepcxt);
			if (step == BF_STEP_FINISHED || step == BF_STEP_STOPPED)
				break;
			if (step == BF_STEP_IDLE)
			{
				ended = "other processes are running its last chunks";
				break;
			}
			if (step == BF_STEP_WAIT)
				bf_sleep(r.wait_ms);
			else if (step == BF_STEP_CHUNK)
				bf_sleep(EltBackfillThrottleMs(&r, INSTR_TIME_GET_MILLISEC(t1)));
			if (TimestampDifferenceExceeds(last_notice, GetCurrentTimestamp(), 10000))
			{
				last_notice = GetCurrentTimestamp();
				bf_progress_notice(name);
				SPI_commit();
			}
		}
	}
	PG_CATCH();
	{
		EltBackfillAdvisoryLock(bf.id, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	EltBackfillAdvisoryLock(bf.id, false);

	if (ended && (strcmp(ended, "failed") == 0 || strcmp(ended, "paused") == 0))
		bf_run_cannot_progress(name, ended, chunks, rows);
	ereport(NOTICE,
			(errmsg("backfill \"%s\": %d %s done in this call (" INT64_FORMAT " rows); %s",
					name, chunks, chunks == 1 ? "chunk" : "chunks", rows,
					ended ? ended : "stopped")));
	SPI_finish();
	PG_RETURN_VOID();
}

