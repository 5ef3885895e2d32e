/*
 * versions_capture.c — schema versions of governed tables, recorded by event
 * triggers (ddl_command_start, sql_drop, ddl_command_end).
 *
 * Owns: elt.tracked_tables and elt.schema_versions; the ProcessUtility hook
 * that remembers the text of the statement being run; the three event
 * trigger functions.
 *
 * Flow of one DDL statement:
 *   ddl_command_start  forgets what the previous statement left pending and
 *                      notes the old name of a schema being renamed and a
 *                      partition being detached; refuses row level security
 *                      on a deployment color's table, even with elt.enabled
 *                      off (deploy.c's rule);
 *   sql_drop           notes dropped tables, and tables that lost a column,
 *                      constraint, default or index;
 *   ddl_command_end    maps pg_event_trigger_ddl_commands() and the notes to
 *                      tables, and records one version per governed table
 *                      whose shape or name changed.
 * One statement therefore makes at most one version per table it touched,
 * however many subcommands it had; a statement that changed nothing the
 * shape records (ADD COLUMN IF NOT EXISTS that found the column, SET
 * STATISTICS, OWNER TO) makes none.  DDL on a type that a table's columns
 * use makes one whatever: the change lives outside the table's shape.
 *
 * Locking and transactions: versions are written in the DDL's own
 * transaction, so a rolled-back DDL leaves nothing.  Before reading a
 * table's last version, the recorder takes an exclusive object lock on that
 * table's history (class elt.tracked_tables, object = table oid), held to
 * the end of the transaction; with reads done under the latest snapshot,
 * version numbers stay gap-free even for DDL that takes weak table locks
 * (CREATE INDEX) and under REPEATABLE READ.  Audit rows for each version
 * are recorded with EltAuditRecord and chained at commit (see audit.c).
 *
 * Notes kept between the three events live in TopMemoryContext, because DROP
 * INDEX CONCURRENTLY commits between ddl_command_start and the other two;
 * they are reset at every ddl_command_start.
 *
 * Under REPEATABLE READ and SERIALIZABLE, a history that another transaction
 * started after our snapshot is seen by the latest-snapshot reads but not by
 * our writes: recording then fails with a serialization failure, to be
 * retried, rather than writing past it.
 *
 * A dropped table's history is always detached from its dead oid, even with
 * elt.enabled off or nothing governed, so that a new table that reuses the
 * oid never inherits it.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "tcop/cmdtag.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "audit.h"
#include "contracts.h"
#include "versions_capture.h"
#include "deploy.h"
#include "govern.h"
#include "versions_shape.h"
#include "elt_governance.h"

/* Text of the utility statement being executed (see EltCurrentStatement). */
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static const char *stmt_source = NULL;
static int	stmt_location = -1;
static int	stmt_len = 0;

/* Notes from ddl_command_start and sql_drop for ddl_command_end. */
static List *pending_changed = NIL; /* oids of tables that lost a part */
static List *pending_dropped = NIL; /* oids of dropped tables */
static List *pending_dropped_schemas = NIL; /* names of dropped schemas */
static char *pending_schema_rename = NULL;	/* old name of a renamed schema */
static Oid	pending_schema_oid = InvalidOid;	/* and its oid */
static bool pending_noop = false;	/* ADD VALUE IF NOT EXISTS that will skip */

static SPIPlanPtr any_target_plan = NULL;
static SPIPlanPtr scope_plan = NULL;
static SPIPlanPtr tracked_plan = NULL;
static SPIPlanPtr tracked_insert_plan = NULL;
static SPIPlanPtr tracked_rename_plan = NULL;
static SPIPlanPtr tracked_drop_plan = NULL;
static SPIPlanPtr version_insert_plan = NULL;
static SPIPlanPtr commands_plan = NULL;
static SPIPlanPtr dropped_plan = NULL;
static SPIPlanPtr index_owner_plan = NULL;
static SPIPlanPtr type_users_plan = NULL;
static SPIPlanPtr schema_rename_plan = NULL;

/* Remember the text of each utility statement while it runs. */
static void
elt_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	const char *save_source = stmt_source;
	int			save_location = stmt_location;
	int			save_len = stmt_len;

	if (context != PROCESS_UTILITY_SUBCOMMAND)
	{
		stmt_source = queryString;
		stmt_location = pstmt->stmt_location;
		stmt_len = pstmt->stmt_len;
	}
	PG_TRY();
	{
		/* TRUNCATE fires no event trigger: classify it here */
		if (IsA(pstmt->utilityStmt, TruncateStmt) && elt_enabled)
			EltContractsCheck(pstmt->utilityStmt, CMDTAG_TRUNCATE_TABLE);
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		stmt_source = save_source;
		stmt_location = save_location;
		stmt_len = save_len;
	}
	PG_END_TRY();
}

/* Install the hook; called once from _PG_init. */
void
EltDdlCaptureInit(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = elt_ProcessUtility;
}

/*
 * The text of the statement being run, trimmed: exactly the statement when
 * the hook saw it start, else the whole query string the client sent (the
 * case for the first statement of a session that loaded the library).
 */
char *
EltCurrentStatement(void)
{
	const char *src = stmt_source ? stmt_source : debug_query_string;
	int			loc = stmt_source ? stmt_location : -1;
	int			len = stmt_source ? stmt_len : 0;
	size_t		srclen;
	const char *start;
	const char *end;

	if (src == NULL)
		return NULL;
	srclen = strlen(src);
	if (loc < 0 || (size_t) loc > srclen)
	{
		loc = 0;
		len = 0;
	}
	start = src + loc;
	end = (len > 0 && (size_t) loc + len <= srclen) ? start + len : src + srclen;
	while (start < end && isspace((unsigned char) *start))
		start++;
	while (end > start && (isspace((unsigned char) end[-1]) || end[-1] == ';'))
		end--;
	return pnstrdup(start, end - start);
}

/* Forget the notes of the previous statement. */
static void
reset_pending(void)
{
	list_free(pending_changed);
	list_free(pending_dropped);
	list_free_deep(pending_dropped_schemas);
	if (pending_schema_rename)
		pfree(pending_schema_rename);
	pending_changed = NIL;
	pending_dropped = NIL;
	pending_dropped_schemas = NIL;
	pending_schema_rename = NULL;
	pending_schema_oid = InvalidOid;
	pending_noop = false;
}

/* Add an oid to a note list, in TopMemoryContext. */
static void
remember_oid(List **list, Oid oid)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	*list = list_append_unique_oid(*list, oid);
	MemoryContextSwitchTo(old);
}

/* Whether anything at all is governed; the fast path for everything else. */
bool
EltAnyTarget(void)
{
	bool		isnull;

	EltPrepare(&any_target_plan,
			   "SELECT EXISTS (SELECT 1 FROM elt.governed_targets) AS any", 0, NULL);
	EltExecLatest(any_target_plan, NULL, NULL, 1);
	return EltSpiGetBool(0, "any", &isnull);
}

/* Serialize the recording of one table's versions; see the file header. */
static void
lock_table_history(Oid relid)
{
	LockDatabaseObject(EltCatalogRelid("tracked_tables"), relid, 0, ExclusiveLock);
}

/*
 * Whether a live table is in the scope of a governed target now; *tracked
 * tells whether it has a history.  *was_in_scope (when not NULL) tells
 * whether the schema or table under which it was last recorded is governed.
 * Returns false for anything that is not an ordinary or partitioned
 * permanent table.
 */
static bool
table_scope(Oid relid, bool *tracked, bool *was_in_scope)
{
	Datum		args[1];
	Oid			argtypes[1] = {OIDOID};
	bool		isnull;

	EltPrepare(&scope_plan,
			   "SELECT c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AS is_table,"
			   "       t.table_id IS NOT NULL AS tracked,"
			   "       EXISTS (SELECT 1 FROM elt.governed_targets g"
			   "               WHERE (g.kind = 'table' AND g.rel = c.oid::regclass)"
			   "                  OR (g.kind = 'schema' AND g.schema_name = n.nspname))"
			   "         AS in_scope,"
			   "       t.table_id IS NOT NULL AND"
			   "       EXISTS (SELECT 1 FROM elt.governed_targets g"
			   "               WHERE (g.kind = 'table' AND g.rel = t.relid)"
			   "                  OR (g.kind = 'schema' AND g.schema_name = t.schema_name))"
			   "         AS was_in_scope"
			   " FROM pg_class c"
			   " JOIN pg_namespace n ON n.oid = c.relnamespace"
			   " LEFT JOIN elt.tracked_tables t ON t.relid = c.oid::regclass"
			   " WHERE c.oid = $1",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	EltExecLatest(scope_plan, args, NULL, 1);
	if (SPI_processed == 0 || !EltSpiGetBool(0, "is_table", &isnull))
	{
		*tracked = false;
		if (was_in_scope)
			*was_in_scope = false;
		return false;
	}
	*tracked = EltSpiGetBool(0, "tracked", &isnull);
	if (was_in_scope)
		*was_in_scope = EltSpiGetBool(0, "was_in_scope", &isnull);
	return EltSpiGetBool(0, "in_scope", &isnull);
}

/*
 * The stable identity (table_id) of a live table, starting its history row
 * (with no version yet) if it has none.  Inside the catalog write context.
 */
int64
EltEnsureTracked(Oid relid)
{
	static SPIPlanPtr find_plan = NULL;
	static SPIPlanPtr start_plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	bool		isnull;

	lock_table_history(relid);
	args[0] = ObjectIdGetDatum(relid);
	EltPrepare(&find_plan,
			   "SELECT table_id FROM elt.tracked_tables WHERE relid = $1::regclass",
			   1, argtypes);
	EltExecLatest(find_plan, args, NULL, 1);
	if (SPI_processed > 0)
		return EltSpiGetInt64(0, "table_id", &isnull);
	EltPrepare(&start_plan,
			   "INSERT INTO elt.tracked_tables (relid, schema_name, table_name, tracked_at)"
			   " SELECT c.oid, n.nspname, c.relname, pg_catalog.now()"
			   " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
			   " WHERE c.oid = $1"
			   " RETURNING table_id",
			   1, argtypes);
	if (EltExec(start_plan, args, NULL, 1) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not start the history of relation %u", relid);
	return EltSpiGetInt64(0, "table_id", &isnull);
}

/* Exported form of table_scope for the governing functions. */
bool
EltTableInScope(Oid relid, bool *tracked)
{
	return table_scope(relid, tracked, NULL);
}

/*
 * Under REPEATABLE READ or SERIALIZABLE, stop with a serialization failure
 * when a table's history row, found with the latest snapshot, is invisible
 * to this transaction's own snapshot (see the file header).
 */
static void
check_history_visible(int64 table_id, const char *nspname, const char *relname)
{
	static SPIPlanPtr visible_plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];

	if (!IsolationUsesXactSnapshot())
		return;
	EltPrepare(&visible_plan,
			   "SELECT 1 FROM elt.tracked_tables WHERE table_id = $1", 1, argtypes);
	args[0] = Int64GetDatum(table_id);
	EltExec(visible_plan, args, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access to the history of table \"%s.%s\"",
						nspname, relname),
				 errdetail("Its history was started by a transaction that committed after this one began."),
				 errhint("Retry the transaction.")));
}

/*
 * Insert one version row and record its audit action.  The SPI result of the
 * INSERT ... RETURNING is what gets hashed, so the hash covers exactly what
 * was stored.
 */
static void
insert_version(EltCatalogWrite *cw, int64 table_id, int32 version, Oid relid,
			   const char *nspname, const char *relname, const char *event,
			   Datum shape, const char *command_tag, const char *statement,
			   const char *reason)
{
	Oid			argtypes[11] = {INT8OID, INT4OID, OIDOID, NAMEOID, NAMEOID,
	TEXTOID, JSONBOID, TEXTOID, TEXTOID, NAMEOID, INT8OID};
	Datum		values[11];
	char		nulls[11] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int64		migration = EltCurrentMigration();
	char		hash[ELT_SHA256_HEX_LEN + 1];
	StringInfoData details;
	char	   *object;

	EltPrepare(&version_insert_plan,
			   "INSERT INTO elt.schema_versions (table_id, version, relid,"
			   " schema_name, table_name, event, shape, statement, command_tag,"
			   " role, xid, recorded_at, migration_id)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
			   " pg_catalog.pg_current_xact_id(), pg_catalog.now(), $11)"
			   " RETURNING *",
			   11, argtypes);
	values[0] = Int64GetDatum(table_id);
	values[1] = Int32GetDatum(version);
	values[2] = ObjectIdGetDatum(relid);
	values[3] = DirectFunctionCall1(namein, CStringGetDatum(nspname));
	values[4] = DirectFunctionCall1(namein, CStringGetDatum(relname));
	values[5] = CStringGetTextDatum(event);
	values[6] = shape;
	if (statement)
		values[7] = CStringGetTextDatum(statement);
	else
		nulls[7] = 'n';
	if (command_tag)
		values[8] = CStringGetTextDatum(command_tag);
	else
		nulls[8] = 'n';
	values[9] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(cw->actor, false)));
	if (migration > 0)
		values[10] = Int64GetDatum(migration);
	else
		nulls[10] = 'n';
	if (EltExec(version_insert_plan, values, nulls, 1) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not insert into elt.schema_versions");
	EltVersionRowHash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, "", hash);

	initStringInfo(&details);
	appendStringInfoChar(&details, '{');
	EltAppendJsonInt(&details, "table_id", table_id);
	EltAppendJsonInt(&details, "version", version);
	EltAppendJsonString(&details, "event", event);
	EltAppendJsonString(&details, "command_tag", command_tag);
	EltAppendJsonString(&details, "version_hash", hash);
	appendStringInfoChar(&details, '}');
	object = quote_qualified_identifier(nspname, relname);
	EltAuditRecord(cw->actor, "version_recorded", object, details.data,
				   EltAuditReason(reason));
}

/*
 * Record the next version of a live table: its current shape, the statement
 * and the role.  Starts the table's history if it has none.  With
 * only_if_changed, nothing is recorded when neither the shape nor the
 * qualified name differs from the last version.
 * Returns the version number, or 0 when nothing was recorded.  The caller
 * has decided that the table is governed and is inside the catalog write
 * context.
 */
int
EltRecordVersion(EltCatalogWrite *cw, Oid relid, const char *event,
				 const char *command_tag, const char *statement,
				 const char *reason, bool only_if_changed)
{
	Oid			argtypes[3] = {OIDOID, NAMEOID, NAMEOID};
	Datum		args[3];
	char	   *nspname = get_namespace_name(get_rel_namespace(relid));
	char	   *relname = get_rel_name(relid);
	int64		table_id;
	int32		version = 1;
	bool		have_last = false;
	Datum		last_shape = (Datum) 0;
	Datum		shape;
	bool		isnull;
	bool		renamed = false;

	if (nspname == NULL || relname == NULL)
		elog(ERROR, "cache lookup failed for relation %u", relid);

	lock_table_history(relid);

	args[0] = ObjectIdGetDatum(relid);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(nspname));
	args[2] = DirectFunctionCall1(namein, CStringGetDatum(relname));

	EltPrepare(&tracked_plan,
			   "SELECT t.table_id, t.schema_name::text AS schema_name,"
			   "       t.table_name::text AS table_name, v.version, v.shape"
			   " FROM elt.tracked_tables t"
			   " LEFT JOIN LATERAL (SELECT s.version, s.shape FROM elt.schema_versions s"
			   "                    WHERE s.table_id = t.table_id"
			   "                    ORDER BY s.version DESC LIMIT 1) v ON true"
			   " WHERE t.relid = $1::regclass",
			   1, argtypes);
	EltExecLatest(tracked_plan, args, NULL, 1);
	if (SPI_processed > 0)
	{
		char	   *old_nsp = EltSpiGetText(0, "schema_name");
		char	   *old_rel = EltSpiGetText(0, "table_name");

		table_id = EltSpiGetInt64(0, "table_id", &isnull);
		version = (int32) EltSpiGetInt64(0, "version", &isnull);
		if (!isnull)
		{
			last_shape = EltSpiGetDatum(0, "shape", &isnull);
			have_last = true;
			version++;
		}
		else
			version = 1;
		check_history_visible(table_id, nspname, relname);

		renamed = (strcmp(old_nsp, nspname) != 0 || strcmp(old_rel, relname) != 0);
		if (renamed)
		{
			Oid			rtypes[3] = {INT8OID, NAMEOID, NAMEOID};
			Datum		rargs[3];

			EltPrepare(&tracked_rename_plan,
					   "UPDATE elt.tracked_tables SET schema_name = $2, table_name = $3"
					   " WHERE table_id = $1",
					   3, rtypes);
			rargs[0] = Int64GetDatum(table_id);
			rargs[1] = args[1];
			rargs[2] = args[2];
			EltExec(tracked_rename_plan, rargs, NULL, 0);
		}
	}
	else
	{
		EltPrepare(&tracked_insert_plan,
				   "INSERT INTO elt.tracked_tables (relid, schema_name, table_name, tracked_at)"
				   " VALUES ($1::regclass, $2, $3, pg_catalog.now()) RETURNING table_id",
				   3, argtypes);
		if (EltExec(tracked_insert_plan, args, NULL, 1) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert into elt.tracked_tables");
		table_id = EltSpiGetInt64(0, "table_id", &isnull);
	}

	shape = EltTableShape(relid);
	if (shape == (Datum) 0)
		elog(ERROR, "could not compute the shape of relation %u", relid);

	if (only_if_changed && have_last && !renamed &&
		DatumGetBool(DirectFunctionCall2(jsonb_eq, shape, last_shape)))
		return 0;

	insert_version(cw, table_id, version, relid, nspname, relname, event,
				   shape, command_tag, statement, reason);
	return version;
}

/*
 * Detach the history of a dropped table from its dead oid.  Returns the
 * table's quoted name and sets *table_id (if not NULL), or returns NULL if
 * it had no history.
 */
static char *
detach_history(Oid relid, int64 *table_id)
{
	static SPIPlanPtr detach_plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	bool		isnull;

	EltPrepare(&detach_plan,
			   "UPDATE elt.tracked_tables SET relid = NULL, dropped_at = pg_catalog.now()"
			   " WHERE relid = $1::regclass"
			   " RETURNING format('%I.%I', schema_name, table_name) AS name, table_id",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	EltExec(detach_plan, args, NULL, 0);
	if (SPI_processed == 0)
		return NULL;
	if (table_id)
		*table_id = EltSpiGetInt64(0, "table_id", &isnull);
	return EltSpiGetText(0, "name");
}

/*
 * A tracked table was dropped: if it was governed, record a last version
 * marked dropped, with the last shape; detach its history from the dead oid
 * and end its own target.  A dropped partition's parent goes into changed.
 */
static void
record_dropped(EltCatalogWrite *cw, Oid relid, const char *command_tag,
			   const char *statement, List **changed)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	bool		isnull;
	int64		table_id;
	int32		version;
	Datum		shape;
	char	   *nspname;
	char	   *relname;
	bool		was_in_scope;

	lock_table_history(relid);
	args[0] = ObjectIdGetDatum(relid);
	EltPrepare(&tracked_drop_plan,
			   "SELECT t.table_id, t.schema_name::text AS schema_name,"
			   "       t.table_name::text AS table_name, v.version, v.shape,"
			   "       pg_catalog.to_regclass(v.shape->>'partition_of')::oid AS parent,"
			   "       EXISTS (SELECT 1 FROM elt.governed_targets g"
			   "               WHERE (g.kind = 'table' AND g.rel = t.relid)"
			   "                  OR (g.kind = 'schema' AND g.schema_name = t.schema_name))"
			   "         AS was_in_scope"
			   " FROM elt.tracked_tables t"
			   " JOIN LATERAL (SELECT s.version, s.shape FROM elt.schema_versions s"
			   "               WHERE s.table_id = t.table_id"
			   "               ORDER BY s.version DESC LIMIT 1) v ON true"
			   " WHERE t.relid = $1::regclass",
			   1, argtypes);
	EltExecLatest(tracked_drop_plan, args, NULL, 1);
	if (SPI_processed == 0)
		return;
	table_id = EltSpiGetInt64(0, "table_id", &isnull);
	version = (int32) EltSpiGetInt64(0, "version", &isnull) + 1;
	shape = EltSpiGetDatum(0, "shape", &isnull);
	nspname = EltSpiGetText(0, "schema_name");
	relname = EltSpiGetText(0, "table_name");
	was_in_scope = EltSpiGetBool(0, "was_in_scope", &isnull);
	/* a dropped partition leaves its parent's list of partitions */
	{
		int64		parent = EltSpiGetInt64(0, "parent", &isnull);

		if (!isnull)
			*changed = list_append_unique_oid(*changed, (Oid) parent);
	}

	check_history_visible(table_id, nspname, relname);
	if (was_in_scope)
		insert_version(cw, table_id, version, relid, nspname, relname,
					   "dropped", shape, command_tag, statement, NULL);
	(void) detach_history(relid, NULL);
	EltRemoveTableTarget(cw, relid, table_id, quote_qualified_identifier(nspname, relname),
						 "table dropped");
}

/*
 * Record a version of a table touched by DDL, if it is governed: only when
 * its shape or name changed, unless always (the DDL changed a type its
 * columns use, which its own shape does not show).  A table without a
 * history, or coming back into scope, gets a version whatever changed.
 */
static void
record_if_governed(EltCatalogWrite *cw, Oid relid, const char *command_tag,
				   const char *statement, bool always)
{
	bool		tracked;
	bool		was_in_scope;
	bool		in_scope = table_scope(relid, &tracked, &was_in_scope);
	const char *event;
	bool		only_if_changed = false;

	if (!in_scope && !(tracked && was_in_scope))
		return;
	if (tracked && !was_in_scope)
		event = "baseline";		/* back in scope: changes made outside */
	else if (tracked)
	{
		event = "altered";
		only_if_changed = !always;
	}
	else if (command_tag != NULL &&
			 (strcmp(command_tag, "CREATE TABLE") == 0 ||
			  strcmp(command_tag, "CREATE TABLE AS") == 0 ||
			  strcmp(command_tag, "SELECT INTO") == 0))
		event = "created";
	else
		event = "baseline";
	EltRecordVersion(cw, relid, event, command_tag, statement, NULL,
					 only_if_changed);
}

/*
 * Tables whose constraints, defaults, indexes or columns depend on an object
 * (refs = the object, or with in_schema every table, sequence, function,
 * type and collation of a schema): their shapes print its qualified name, so
 * renaming or moving it changes them.  Called only for renames and moves.
 */
#define DEPENDENTS_SQL(refs) \
	"WITH refs(classid, objid) AS (" refs ")" \
	" SELECT DISTINCT u.relid FROM (" \
	"  SELECT con.conrelid AS relid FROM refs" \
	"  JOIN pg_depend d ON d.refclassid = refs.classid AND d.refobjid = refs.objid" \
	"  JOIN pg_constraint con ON d.classid = 'pg_constraint'::regclass AND con.oid = d.objid" \
	"  UNION ALL" \
	"  SELECT ad.adrelid FROM refs" \
	"  JOIN pg_depend d ON d.refclassid = refs.classid AND d.refobjid = refs.objid" \
	"  JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid" \
	"  UNION ALL" \
	"  SELECT CASE WHEN d.objsubid > 0 THEN d.objid" \
	"              ELSE (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = d.objid) END" \
	"  FROM refs" \
	"  JOIN pg_depend d ON d.refclassid = refs.classid AND d.refobjid = refs.objid" \
	"  WHERE d.classid = 'pg_class'::regclass) u" \
	" JOIN pg_class c ON c.oid = u.relid" \
	" WHERE c.relkind IN ('r', 'p')" \
	"   AND NOT EXISTS (SELECT 1 FROM refs WHERE refs.classid = 'pg_class'::regclass" \
	"                   AND refs.objid = u.relid)"

static void
add_dependent_tables(Oid classid, Oid objid, bool in_schema, List **tables)
{
	static SPIPlanPtr object_plan = NULL;
	static SPIPlanPtr schema_plan = NULL;
	Oid			argtypes[2] = {OIDOID, OIDOID};
	Datum		args[2];

	args[0] = ObjectIdGetDatum(classid);
	args[1] = ObjectIdGetDatum(objid);
	if (in_schema)
	{
		EltPrepare(&schema_plan,
				   DEPENDENTS_SQL("SELECT 'pg_class'::regclass::oid, oid FROM pg_class WHERE relnamespace = $2"
								  " UNION ALL SELECT 'pg_proc'::regclass::oid, oid FROM pg_proc WHERE pronamespace = $2"
								  " UNION ALL SELECT 'pg_type'::regclass::oid, oid FROM pg_type WHERE typnamespace = $2"
								  " UNION ALL SELECT 'pg_collation'::regclass::oid, oid FROM pg_collation"
								  "   WHERE collnamespace = $2"),
				   2, argtypes);
		EltExec(schema_plan, args, NULL, 0);
	}
	else
	{
		EltPrepare(&object_plan, DEPENDENTS_SQL("VALUES ($1::oid, $2::oid)"), 2, argtypes);
		EltExec(object_plan, args, NULL, 0);
	}
	*tables = EltSpiAppendOids(*tables);
}

/*
 * Tables with a column of this type, or of a domain, array, composite, range
 * or multirange over it, and tables typed by it (CREATE TABLE ... OF type).
 */
static void
add_type_users(Oid typid, List **tables)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];

	EltPrepare(&type_users_plan,
			   "WITH RECURSIVE ty(oid) AS ("
			   "  SELECT $1"
			   "  UNION"
			   "  SELECT d.oid FROM ty, LATERAL ("
			   "    SELECT t.oid FROM pg_type t"
			   "    WHERE t.typbasetype = ty.oid"
			   "       OR (t.typelem = ty.oid AND t.typcategory = 'A')"
			   "    UNION ALL"
			   "    SELECT c.reltype FROM pg_attribute a"
			   "    JOIN pg_class c ON c.oid = a.attrelid AND c.relkind = 'c'"
			   "    WHERE a.atttypid = ty.oid AND NOT a.attisdropped"
			   "    UNION ALL"
			   "    SELECT r.rngtypid FROM pg_range r WHERE r.rngsubtype = ty.oid"
			   "    UNION ALL"
			   "    SELECT r.rngmultitypid FROM pg_range r WHERE r.rngsubtype = ty.oid) d)"
			   " SELECT DISTINCT u.relid FROM ("
			   "   SELECT a.attrelid AS relid FROM pg_attribute a JOIN ty ON a.atttypid = ty.oid"
			   "   WHERE a.attnum > 0 AND NOT a.attisdropped"
			   "   UNION ALL"
			   "   SELECT c.oid FROM pg_class c JOIN ty ON c.reloftype = ty.oid) u"
			   " JOIN pg_class c ON c.oid = u.relid"
			   " WHERE c.relkind IN ('r', 'p')",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(typid);
	EltExec(type_users_plan, args, NULL, 0);
	*tables = EltSpiAppendOids(*tables);
}

/*
 * Add the ordinary and partitioned tables of a schema to a list, read with
 * the latest snapshot.  Used for a renamed schema and by elt.govern().
 */
List *
EltSchemaTables(Oid nspoid, List *tables)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];

	EltPrepare(&plan,
			   "SELECT c.oid FROM pg_class c"
			   " WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p')"
			   " ORDER BY c.relname",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(nspoid);
	EltExecLatest(plan, args, NULL, 0);
	return EltSpiAppendOids(tables);
}

/*
 * A schema was renamed: a governed one stays governed under its new name,
 * and the histories of its tables follow it.  With tables lists (capture
 * on), every table in it, and every table elsewhere whose shape names one of
 * its objects, is up for a version.  Runs with capture off too, so that no
 * target is left behind under the old name.
 */
static void
rename_schema_target(EltCatalogWrite *cw, const char *oldname, Oid nspoid,
					 List **always, List **changed)
{
	static SPIPlanPtr tracked_schema_plan = NULL;
	Oid			argtypes[2] = {NAMEOID, NAMEOID};
	Oid			ttypes[2] = {NAMEOID, OIDOID};
	Datum		args[2];
	Datum		targs[2];
	char	   *newname = get_namespace_name(nspoid);
	StringInfoData details;

	if (newname == NULL || strcmp(oldname, newname) == 0)
		return;
	args[0] = DirectFunctionCall1(namein, CStringGetDatum(oldname));
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(newname));

	/* a target under the new name can only be a stale one */
	EltRemoveSchemaTarget(cw, newname, "stale target replaced by a renamed schema");

	EltPrepare(&schema_rename_plan,
			   "UPDATE elt.governed_targets SET schema_name = $2"
			   " WHERE kind = 'schema' AND schema_name = $1",
			   2, argtypes);
	EltExec(schema_rename_plan, args, NULL, 0);
	if (SPI_processed > 0)
	{
		initStringInfo(&details);
		appendStringInfoChar(&details, '{');
		EltAppendJsonString(&details, "kind", "schema");
		EltAppendJsonString(&details, "from", oldname);
		EltAppendJsonString(&details, "to", newname);
		appendStringInfoChar(&details, '}');
		EltAuditRecord(cw->actor, "target_renamed", quote_identifier(newname),
					   details.data, EltAuditReason(NULL));
	}

	/* the tables now in the schema, whatever name their history last had */
	EltPrepare(&tracked_schema_plan,
			   "UPDATE elt.tracked_tables t SET schema_name = $1"
			   " FROM pg_class c WHERE c.oid = t.relid AND c.relnamespace = $2",
			   2, ttypes);
	targs[0] = args[1];
	targs[1] = ObjectIdGetDatum(nspoid);
	EltExec(tracked_schema_plan, targs, NULL, 0);

	if (always != NULL)
	{
		*always = EltSchemaTables(nspoid, *always);
		add_dependent_tables(NamespaceRelationId, nspoid, true, changed);
	}
}

/* Inheritance children and partitions, at every level, of a table. */
static void
add_inheritors(Oid relid, List **tables)
{
	List	   *children;
	ListCell   *lc;

	if (!has_subclass(relid))
		return;
	children = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, children)
	{
		if (lfirst_oid(lc) != relid)
			*tables = list_append_unique_oid(*tables, lfirst_oid(lc));
	}
}

/* Command tags whose collected objects do not change a table's shape. */
static bool
tag_changes_nothing(const char *tag)
{
	return strcmp(tag, "COMMENT") == 0 ||
		strcmp(tag, "GRANT") == 0 ||
		strcmp(tag, "REVOKE") == 0 ||
		strcmp(tag, "SECURITY LABEL") == 0 ||
		strcmp(tag, "ALTER DEFAULT PRIVILEGES") == 0;
}

/*
 * Map the commands collected for this statement to the tables they may have
 * changed: the tables themselves, their inheritance children and partitions,
 * and tables depending on the object (all into changed); tables using an
 * altered type (into always).
 */
static void
collect_commands(EltCatalogWrite *cw, bool renaming, List **changed, List **always)
{
	SPITupleTable *tt;
	uint64		n;
	uint64		i;

	EltPrepare(&commands_plan,
			   "SELECT classid, objid, objsubid, command_tag"
			   " FROM pg_catalog.pg_event_trigger_ddl_commands()",
			   0, NULL);
	EltExec(commands_plan, NULL, NULL, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		bool		isnull;
		Oid			classid = DatumGetObjectId(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
		Oid			objid = DatumGetObjectId(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
		char	   *cmdtag = SPI_getvalue(tup, tt->tupdesc, 4);

		if (cmdtag == NULL || tag_changes_nothing(cmdtag))
			continue;

		if (classid == RelationRelationId)
		{
			char		relkind = get_rel_relkind(objid);

			if (relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE)
			{
				*changed = list_append_unique_oid(*changed, objid);
				if (strcmp(cmdtag, "ALTER TABLE") == 0)
					add_inheritors(objid, changed);
				/* a new or renamed partition shows in its parent's shape */
				if ((renaming || strncmp(cmdtag, "CREATE TABLE", 12) == 0) &&
					get_rel_relispartition(objid))
				{
					Oid			parent = get_partition_parent(objid, true);

					if (OidIsValid(parent))
						*changed = list_append_unique_oid(*changed, parent);
				}
			}
			else if (relkind == RELKIND_INDEX || relkind == RELKIND_PARTITIONED_INDEX)
			{
				Oid			tbl = IndexGetRelation(objid, true);

				if (OidIsValid(tbl))
				{
					*changed = list_append_unique_oid(*changed, tbl);
					/* an index on a partitioned table is built on each partition */
					if (relkind == RELKIND_PARTITIONED_INDEX)
						add_inheritors(tbl, changed);
				}
			}
			else if (relkind == RELKIND_COMPOSITE_TYPE)
				add_type_users(get_rel_type_id(objid), always);
		}
		else if (classid == TypeRelationId)
			add_type_users(objid, always);
		else if (classid == ConstraintRelationId)
		{
			HeapTuple	ctup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(objid));

			if (HeapTupleIsValid(ctup))
			{
				Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(ctup);

				if (OidIsValid(con->conrelid))
					*changed = list_append_unique_oid(*changed, con->conrelid);
				else if (OidIsValid(con->contypid))
					add_type_users(con->contypid, always);
				ReleaseSysCache(ctup);
			}
		}

		/* a renamed or moved object shows in the shapes of tables naming it */
		if (renaming && classid != NamespaceRelationId)
			add_dependent_tables(classid, objid, false, changed);
	}
}

/* Check that an event trigger function was called as one. */
static EventTriggerData *
event_trigger_data(FunctionCallInfo fcinfo, const char *fname)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired by an event trigger", fname)));
	return (EventTriggerData *) fcinfo->context;
}

/* ddl_command_start: forget old notes; note a schema rename. */
PG_FUNCTION_INFO_V1(elt_on_ddl_command_start);
Datum
elt_on_ddl_command_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = event_trigger_data(fcinfo, "on_ddl_command_start");

	reset_pending();

	/* a security invariant, enforced even with capture off: see deploy.h */
	EltDeployGuardRowSecurity(trigdata->parsetree);

	/* noted even with capture off: see rename_schema_target */
	if (IsA(trigdata->parsetree, RenameStmt))
	{
		RenameStmt *rs = (RenameStmt *) trigdata->parsetree;

		if (rs->renameType == OBJECT_SCHEMA && rs->subname != NULL)
		{
			pending_schema_rename = MemoryContextStrdup(TopMemoryContext, rs->subname);
			pending_schema_oid = get_namespace_oid(rs->subname, true);
		}
	}
	if (!elt_enabled)
		PG_RETURN_NULL();

	/* an enum value that exists already: the statement changes nothing */
	if (IsA(trigdata->parsetree, AlterEnumStmt))
		pending_noop = EltEnumAddFindsValue((AlterEnumStmt *) trigdata->parsetree);

	if (IsA(trigdata->parsetree, AlterTableStmt))
	{
		/* a partition being detached is no longer found from its parent */
		ListCell   *lc;

		foreach(lc, ((AlterTableStmt *) trigdata->parsetree)->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

			if ((cmd->subtype == AT_DetachPartition ||
				 cmd->subtype == AT_DetachPartitionFinalize) && cmd->def != NULL &&
				IsA(cmd->def, PartitionCmd))
			{
				Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
													NoLock, true);

				if (OidIsValid(part))
					remember_oid(&pending_changed, part);
			}
		}
	}

	/* judge the statement against the contracts before it runs */
	EltContractsCheck(trigdata->parsetree, trigdata->tag);
	PG_RETURN_NULL();
}

/* The elements of a dropped object's address_names (text[]). */
static int
address_names(HeapTuple tup, TupleDesc desc, int attno, char ***names)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, attno, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			i;

	if (isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &nelems);
	*names = palloc0(sizeof(char *) * (nelems + 1));
	for (i = 0; i < nelems; i++)
	{
		if (nulls[i])
			return i;
		(*names)[i] = TextDatumGetCString(elems[i]);
	}
	return nelems;
}

/* The first name of a dropped object's address, or NULL. */
static char *
address_first_name(HeapTuple tup, TupleDesc desc, int attno)
{
	char	  **names;

	return address_names(tup, desc, attno, &names) >= 1 ? names[0] : NULL;
}

/* The first two names of a dropped object's address (schema and name). */
static bool
address_schema_and_name(HeapTuple tup, TupleDesc desc, int attno,
						char **schema, char **name)
{
	char	  **names;

	if (address_names(tup, desc, attno, &names) < 2)
		return false;
	*schema = names[0];
	*name = names[1];
	return true;
}

/* sql_drop: note dropped tables and tables that lost a part. */
PG_FUNCTION_INFO_V1(elt_on_sql_drop);
Datum
elt_on_sql_drop(PG_FUNCTION_ARGS)
{
	EltCatalogWrite cw;
	SPITupleTable *tt;
	uint64		n;
	uint64		i;
	bool		capturing;

	(void) event_trigger_data(fcinfo, "on_sql_drop");
	if (!EltCatalogReady())
		PG_RETURN_NULL();

	EltCatalogWriteBegin(&cw);
	capturing = elt_enabled && EltAnyTarget();

	EltPrepare(&dropped_plan,
			   "SELECT objid, object_type, address_names"
			   " FROM pg_catalog.pg_event_trigger_dropped_objects()",
			   0, NULL);
	EltExec(dropped_plan, NULL, NULL, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		bool		isnull;
		Oid			objid = DatumGetObjectId(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
		char	   *type = SPI_getvalue(tup, tt->tupdesc, 2);
		char	   *schema;
		char	   *name;

		if (type == NULL)
			continue;
		if ((strcmp(type, "table") == 0 || strcmp(type, "view") == 0 ||
			 strcmp(type, "materialized view") == 0 ||
			 strcmp(type, "foreign table") == 0) &&
			address_schema_and_name(tup, tt->tupdesc, 3, &schema, &name))
		{
			if (capturing && strcmp(type, "foreign table") != 0)
				EltContractsCheckCascade(&cw, objid, type, schema, name, NULL);
			EltForgetConsumers(&cw, objid, quote_qualified_identifier(schema, name));
		}
		else if (capturing && (strcmp(type, "table column") == 0 ||
							   strcmp(type, "default value") == 0))
		{
			char	  **names;

			if (address_names(tup, tt->tupdesc, 3, &names) >= 3)
			{
				/* a default's objid is its pg_attrdef row: find the table */
				Oid			nsp = get_namespace_oid(names[0], true);
				Oid			rel = strcmp(type, "table column") == 0 ? objid :
					OidIsValid(nsp) ? get_relname_relid(names[1], nsp) : InvalidOid;

				if (OidIsValid(rel))
					EltContractsCheckCascade(&cw, rel, type, names[0], names[1], names[2]);
			}
		}
		if (strcmp(type, "table") == 0)
		{
			/* ddl_command_end records its last version and detaches it */
			if (capturing)
				remember_oid(&pending_dropped, objid);
			else
			{
				int64		table_id;
				char	   *name = detach_history(objid, &table_id);

				if (name != NULL)
					EltRemoveTableTarget(&cw, objid, table_id, name, "table dropped");
			}
		}
		else if (strcmp(type, "schema") == 0)
		{
			char	   *nspname = address_first_name(tup, tt->tupdesc, 3);

			if (nspname == NULL)
				continue;
			if (capturing)
			{
				/* ends its governance after its tables' last versions */
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				pending_dropped_schemas = lappend(pending_dropped_schemas,
												  pstrdup(nspname));
				MemoryContextSwitchTo(old);
			}
			else
				EltRemoveSchemaTarget(&cw, nspname, "schema dropped");
		}
		else if (!capturing)
			continue;
		else if (strcmp(type, "table column") == 0)
			remember_oid(&pending_changed, objid);
		else if ((strcmp(type, "table constraint") == 0 ||
				  strcmp(type, "default value") == 0) &&
				 address_schema_and_name(tup, tt->tupdesc, 3, &schema, &name))
		{
			Oid			nsp = get_namespace_oid(schema, true);
			Oid			rel = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;

			if (OidIsValid(rel))
				remember_oid(&pending_changed, rel);
		}
		else if (strcmp(type, "index") == 0 &&
				 address_schema_and_name(tup, tt->tupdesc, 3, &schema, &name))
		{
			/* the index is gone: find the table whose last shape had it */
			Oid			argtypes[2] = {NAMEOID, TEXTOID};
			Datum		args[2];

			EltPrepare(&index_owner_plan,
					   "SELECT t.relid::oid AS relid FROM elt.tracked_tables t"
					   " JOIN LATERAL (SELECT s.shape FROM elt.schema_versions s"
					   "               WHERE s.table_id = t.table_id"
					   "               ORDER BY s.version DESC LIMIT 1) v ON true"
					   " WHERE t.relid IS NOT NULL AND t.schema_name = $1"
					   "   AND v.shape->'indexes' @>"
					   "       jsonb_build_array(jsonb_build_object('name', $2))",
					   2, argtypes);
			args[0] = DirectFunctionCall1(namein, CStringGetDatum(schema));
			args[1] = CStringGetTextDatum(name);
			EltExecLatest(index_owner_plan, args, NULL, 1);
			if (SPI_processed > 0)
			{
				int64		rel = EltSpiGetInt64(0, "relid", &isnull);

				if (!isnull)
					remember_oid(&pending_changed, (Oid) rel);
			}
		}
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_NULL();
}

/* ddl_command_end: record one version per governed table the statement touched. */
PG_FUNCTION_INFO_V1(elt_on_ddl_command_end);
Datum
elt_on_ddl_command_end(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = event_trigger_data(fcinfo, "on_ddl_command_end");
	EltCatalogWrite cw;
	const char *tag;
	char	   *statement;
	List	   *changed = NIL;
	List	   *always = NIL;
	ListCell   *lc;
	bool		renaming;

	if (!EltCatalogReady() ||
		(!elt_enabled && pending_schema_rename == NULL))
	{
		reset_pending();
		PG_RETURN_NULL();
	}

	EltCatalogWriteBegin(&cw);
	if (!elt_enabled || !EltAnyTarget())
	{
		/* bookkeeping only: a renamed schema keeps its target */
		if (pending_schema_rename != NULL && OidIsValid(pending_schema_oid))
			rename_schema_target(&cw, pending_schema_rename, pending_schema_oid,
								 NULL, NULL);
		EltCatalogWriteEnd(&cw);
		reset_pending();
		PG_RETURN_NULL();
	}

	EltContractsRecordDeferred(&cw);
	tag = GetCommandTagName(trigdata->tag);
	statement = EltCurrentStatement();
	renaming = IsA(trigdata->parsetree, RenameStmt) ||
		IsA(trigdata->parsetree, AlterObjectSchemaStmt);

	if (pending_schema_rename != NULL && OidIsValid(pending_schema_oid))
		rename_schema_target(&cw, pending_schema_rename, pending_schema_oid,
							 &always, &changed);
	collect_commands(&cw, renaming, &changed, &always);
	if (pending_noop)
		always = NIL;			/* the enum already had the value */
	foreach(lc, pending_changed)
		changed = list_append_unique_oid(changed, lfirst_oid(lc));

	foreach(lc, pending_dropped)
		record_dropped(&cw, lfirst_oid(lc), tag, statement, &changed);
	foreach(lc, changed)
	{
		Oid			relid = lfirst_oid(lc);

		if (!list_member_oid(pending_dropped, relid))
			record_if_governed(&cw, relid, tag, statement,
							   list_member_oid(always, relid));
	}
	foreach(lc, always)
	{
		Oid			relid = lfirst_oid(lc);

		if (!list_member_oid(pending_dropped, relid) && !list_member_oid(changed, relid))
			record_if_governed(&cw, relid, tag, statement, true);
	}
	foreach(lc, pending_dropped_schemas)
		EltRemoveSchemaTarget(&cw, (const char *) lfirst(lc), "schema dropped");

	EltCatalogWriteEnd(&cw);
	reset_pending();
	PG_RETURN_NULL();
}
