/*
 * versions_capture.c — schema versions of governed tables, recorded by event
 * triggers (ddl_command_start, sql_drop, ddl_command_end).
 *
 * Owns: deciding which tables a DDL statement changed and recording their
 * versions; the ProcessUtility hook that tells settings.c the text of the
 * statement being run (and classifies TRUNCATE, which fires no event
 * trigger) and notes the views it creates (settings.c); the three event
 * trigger functions.
 *
 * Layering: an engine.  It calls the version store (versions_store.c) to
 * write versions and histories, govern.c for what is governed and for the
 * targets a drop or a schema rename changes, contracts_judge.c to judge the
 * statement, contracts_swap.c for the swap whose new relation takes over the
 * old one's history, deploy.c's row security guard, citus.c (statements
 * Citus runs on its shards), settings.c, audit.c and util.c.
 * Nothing but _PG_init (EltDdlCaptureInit) and the event triggers calls it.
 *
 * Flow of one DDL statement:
 *   ddl_command_start  forgets what the previous statement left pending and
 *                      notes the old name of a schema being renamed and a
 *                      partition being attached or detached; refuses row
 *                      level security on a deployment color's table, even
 *                      with elt.enabled off (deploy.c's rule);
 *   sql_drop           notes dropped tables, and tables that lost a column,
 *                      constraint, default or index;
 *   ddl_command_end    maps pg_event_trigger_ddl_commands() and the notes to
 *                      tables, and records one version per governed table
 *                      whose shape or name changed.
 * A partition of a governed parent that is not governed on its own gets no
 * version: creating, attaching, detaching and dropping it changes the list
 * of partitions in its parent's shape, and the parent's version records it
 * (the history reads "partition ... attached"); a table that the same
 * transaction created and then attached has its versions taken back
 * (versions_store.c), and an older table's own history records its attach,
 * pauses while it is a partition, and goes on once it is detached.
 * One statement therefore makes at most one version per table it touched,
 * however many subcommands it had; a statement that changed nothing the
 * shape records (ADD COLUMN IF NOT EXISTS that found the column, SET
 * STATISTICS, OWNER TO) makes none.  DDL on a type that a table's columns
 * use makes one whatever: the change lives outside the table's shape.
 *
 * Locking and transactions: versions are written in the DDL's own
 * transaction, through the version store, which takes the history locks
 * and keeps version numbers gap-free (see versions_store.c); the table
 * locks are the DDL's own.
 *
 * Notes kept between the three events live in TopMemoryContext, because DROP
 * INDEX CONCURRENTLY commits between ddl_command_start and the other two;
 * they are reset at every ddl_command_start.
 *
 * A dropped table's history is always detached from its dead oid, even with
 * elt.enabled off or nothing governed, so that a new table that reuses the
 * oid never inherits it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "nodes/parsenodes.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "audit.h"
#include "citus.h"
#include "contracts.h"
#include "contracts_swap.h"
#include "deploy.h"
#include "govern.h"
#include "settings.h"
#include "mask.h"
#include "versions_capture.h"
#include "versions_store.h"

/* The hook that remembers the text of each statement (see settings.c). */
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* Notes from ddl_command_start and sql_drop for ddl_command_end. */
static List *pending_changed = NIL; /* oids of tables that lost a part */
static List *pending_dropped = NIL; /* oids of dropped tables */
static List *pending_dropped_schemas = NIL; /* names of dropped schemas */
static List *pending_detached = NIL;	/* oids of partitions being detached */
static List *pending_attached = NIL;	/* oids of tables being attached */
static char *pending_schema_rename = NULL;	/* old name of a renamed schema */
static Oid	pending_schema_oid = InvalidOid;	/* and its oid */
static bool pending_noop = false;	/* ADD VALUE IF NOT EXISTS that will skip */

/*
 * Statements Citus runs on its shards inside one of ours (DDL on a
 * distributed or reference table reaches this node's shards through the
 * event triggers again; Citus drops them from its own sql_drop trigger):
 * their parse trees, innermost last, in the transaction shard_lxid.  Their
 * events return at once and leave the notes of the statement around them
 * alone (citus.c).
 */
static List *shard_statements = NIL;
static LocalTransactionId shard_lxid = InvalidLocalTransactionId;

static SPIPlanPtr tracked_drop_plan = NULL;
static SPIPlanPtr commands_plan = NULL;
static SPIPlanPtr dropped_plan = NULL;
static SPIPlanPtr index_owner_plan = NULL;
static SPIPlanPtr type_users_plan = NULL;
static SPIPlanPtr partition_parent_plan = NULL;

/*
 * The relation a name stands for, or InvalidOid, looked up without any
 * privilege check: the hook runs for every role in every database, and a
 * role may create in a schema it has CREATE but not USAGE on, where
 * RangeVarGetRelid would raise "permission denied for schema".  An
 * unqualified name is looked up in the search path, which holds only the
 * schemas the role may use (and its temporary schema).
 */
static Oid
relation_named(const RangeVar *rv)
{
	if (rv->schemaname != NULL)
	{
		Oid			nsp = get_namespace_oid(rv->schemaname, true);

		return OidIsValid(nsp) ? get_relname_relid(rv->relname, nsp) : InvalidOid;
	}
	return RangeVarGetRelid(rv, NoLock, true);
}

/*
 * The name of the view or materialized view a statement is about to create,
 * or NULL: not such a statement, or CREATE OR REPLACE VIEW (or IF NOT
 * EXISTS) of a view that exists already, which keeps its readers.
 */
static pg_noinline RangeVar *
created_view_name(Node *stmt)
{
	RangeVar   *rv = NULL;

	if (IsA(stmt, ViewStmt))
		rv = ((ViewStmt *) stmt)->view;
	else if (IsA(stmt, CreateTableAsStmt) &&
			 ((CreateTableAsStmt *) stmt)->objtype == OBJECT_MATVIEW)
		rv = ((CreateTableAsStmt *) stmt)->into->rel;
	if (rv == NULL || OidIsValid(relation_named(rv)))
		return NULL;
	return rv;
}

/*
 * The name of the table a statement is about to create (CREATE TABLE, CREATE
 * TABLE AS), or NULL: not such a statement, or IF NOT EXISTS of a table that
 * exists already.
 */
static pg_noinline RangeVar *
created_table_name(Node *stmt)
{
	RangeVar   *rv = NULL;

	if (IsA(stmt, CreateStmt))
		rv = ((CreateStmt *) stmt)->relation;
	else if (IsA(stmt, CreateTableAsStmt) &&
			 ((CreateTableAsStmt *) stmt)->objtype == OBJECT_TABLE)
		rv = ((CreateTableAsStmt *) stmt)->into->rel;
	if (rv == NULL || OidIsValid(relation_named(rv)))
		return NULL;
	return rv;
}

/*
 * Remember the text of each utility statement while it runs, and note the
 * views it creates (settings.c: they are not judged in their own transaction)
 * and the tables (the new relation of a swap, contracts_swap.c).
 */
static void
elt_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	EltStatementText saved = {NULL, -1, 0};
	bool		top = (context != PROCESS_UTILITY_SUBCOMMAND);
	RangeVar   *new_view = created_view_name(pstmt->utilityStmt);
	RangeVar   *new_table = created_table_name(pstmt->utilityStmt);

	if (top)
		EltStatementEnter(queryString, pstmt->stmt_location, pstmt->stmt_len,
						  &saved);
	PG_TRY();
	{
		/*
		 * TRUNCATE, VACUUM and CLUSTER fire no event trigger, nor does
		 * REINDEX before PostgreSQL 17: classify them here
		 */
		if (IsA(pstmt->utilityStmt, TruncateStmt) && elt_enabled &&
			!EltCitusShardStatement(pstmt->utilityStmt))
			EltContractsCheck(pstmt->utilityStmt, CMDTAG_TRUNCATE_TABLE);
		else if (((IsA(pstmt->utilityStmt, ReindexStmt) && !ELT_REINDEX_FIRES_EVENT_TRIGGERS) ||
				  IsA(pstmt->utilityStmt, VacuumStmt) ||
				  IsA(pstmt->utilityStmt, ClusterStmt)) && elt_enabled)
			EltContractsCheck(pstmt->utilityStmt, CreateCommandTag(pstmt->utilityStmt));
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
		if (new_view != NULL)
		{
			Oid			relid = relation_named(new_view);

			if (OidIsValid(relid))
				EltNoteCreatedView(relid);
		}
		if (new_table != NULL)
		{
			Oid			relid = relation_named(new_table);

			if (OidIsValid(relid))
				EltNoteCreatedTable(relid);
		}
	}
	PG_FINALLY();
	{
		if (top)
			EltStatementLeave(&saved);
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

/* Forget the notes of the previous statement. */
static void
reset_pending(void)
{
	list_free(pending_changed);
	list_free(pending_dropped);
	list_free_deep(pending_dropped_schemas);
	list_free(pending_detached);
	list_free(pending_attached);
	pending_detached = NIL;
	pending_attached = NIL;
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

	EltLockTableHistory(relid);
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

	EltCheckHistoryVisible(table_id, nspname, relname);
	if (was_in_scope)
		EltInsertVersion(cw, table_id, version, relid, nspname, relname,
						 "dropped", shape, command_tag, statement, NULL);
	(void) EltDetachHistory(relid, NULL);
	EltRemoveTableTarget(cw, relid, table_id, quote_qualified_identifier(nspname, relname),
						 "table dropped");
}

/*
 * Record a version of a table touched by DDL, if it is governed: only when
 * its shape or name changed, unless always (the DDL changed a type its
 * columns use, which its own shape does not show).  A table without a
 * history, or coming back into scope, gets a version whatever changed.  A
 * partition of a governed parent is recorded only in its parent's history;
 * if this transaction created it, the versions it got before it was
 * attached are taken back.
 */
static void
record_if_governed(EltCatalogWrite *cw, Oid relid, const char *command_tag,
				   const char *statement, bool always)
{
	bool		tracked;
	bool		was_in_scope;
	bool		in_scope;
	const char *event;
	bool		only_if_changed = false;
	Oid			swapped_out = EltSwapHistoryFrom(relid);

	/* the second half of a swap: the model's history goes on (contracts_swap.c) */
	if (OidIsValid(swapped_out) && EltTakeOverHistory(swapped_out, relid))
		EltMoveTableTarget(swapped_out, relid);	/* a model governed by name */
	in_scope = EltTableScope(relid, &tracked, &was_in_scope);

	if (!in_scope && !(tracked && was_in_scope))
	{
		/*
		 * Attached to a governed parent: a history this transaction started
		 * is taken back; an older one records the attach, then pauses.
		 */
		if (tracked && EltPartitionOfGoverned(relid) &&
			!EltTakeBackNewHistory(relid) && list_member_oid(pending_attached, relid))
			EltRecordVersion(cw, relid, "altered", command_tag, statement, NULL, true);
		return;
	}
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
	char	   *newname = get_namespace_name(nspoid);

	if (newname == NULL || strcmp(oldname, newname) == 0)
		return;
	EltRenameSchemaTarget(cw, oldname, newname);

	/* the tables now in the schema, whatever name their history last had */
	EltRenameSchemaHistories(nspoid, newname);

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

/*
 * ddl_command_start: whether the statement is one Citus runs on its shards
 * (remembered until its ddl_command_end).  Any other statement is one of
 * the user's: what is left of shard statements is stale (one failed).
 */
static bool
shard_statement_begins(Node *parsetree)
{
	bool		shard = EltCitusShardStatement(parsetree);
	MemoryContext old;

	if (!shard || shard_lxid != EltMyLocalTransactionId())
	{
		list_free(shard_statements);
		shard_statements = NIL;
		shard_lxid = EltMyLocalTransactionId();
	}
	if (!shard)
		return false;
	old = MemoryContextSwitchTo(TopMemoryContext);
	shard_statements = lappend(shard_statements, parsetree);
	MemoryContextSwitchTo(old);
	return true;
}

/* sql_drop, ddl_command_end: whether the statement is a shard statement. */
static bool
in_shard_statement(Node *parsetree, bool ending)
{
	if (shard_statements == NIL || shard_lxid != EltMyLocalTransactionId() ||
		llast(shard_statements) != parsetree)
		return false;
	if (ending)
		shard_statements = list_delete_last(shard_statements);
	return true;
}

/* ddl_command_start: forget old notes; note a schema rename. */
PG_FUNCTION_INFO_V1(elt_on_ddl_command_start);
Datum
elt_on_ddl_command_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = event_trigger_data(fcinfo, "on_ddl_command_start");

	/* Citus running its table's statement on a shard: see citus.c */
	if (shard_statement_begins(trigdata->parsetree))
		PG_RETURN_NULL();
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
		/*
		 * A partition being detached is no longer found from its parent; a
		 * table being attached may have a history of its own to pause.
		 */
		ListCell   *lc;

		foreach(lc, ((AlterTableStmt *) trigdata->parsetree)->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

			if ((cmd->subtype == AT_DetachPartition ||
				 cmd->subtype == AT_DetachPartitionFinalize ||
				 cmd->subtype == AT_AttachPartition) && cmd->def != NULL &&
				IsA(cmd->def, PartitionCmd))
			{
				Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
													NoLock, true);

				if (OidIsValid(part))
					remember_oid(cmd->subtype == AT_AttachPartition ?
								 &pending_attached : &pending_detached, part);
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

/*
 * A dropped table may have been a partition without a history of its own:
 * the governed parent whose last version lists it records the drop.
 */
static void
note_partition_parent(const char *schema, const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	uint64		i;

	EltPrepare(&partition_parent_plan,
			   "SELECT t.relid::oid AS relid FROM elt.tracked_tables t"
			   " JOIN pg_class c ON c.oid = t.relid AND c.relkind = 'p'"
			   " JOIN LATERAL (SELECT s.shape FROM elt.schema_versions s"
			   "               WHERE s.table_id = t.table_id"
			   "               ORDER BY s.version DESC LIMIT 1) v ON true"
			   " WHERE v.shape->'partitions' @> pg_catalog.jsonb_build_array($1)",
			   1, argtypes);
	args[0] = CStringGetTextDatum(quote_qualified_identifier(schema, name));
	EltExecLatest(partition_parent_plan, args, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		int64		rel = EltSpiGetInt64((int) i, "relid", &isnull);

		if (!isnull)
			remember_oid(&pending_changed, (Oid) rel);
	}
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

	EventTriggerData *trigdata = event_trigger_data(fcinfo, "on_sql_drop");

	if (!EltCatalogReady() || in_shard_statement(trigdata->parsetree, false))
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
			EltMaskForget(objid);
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
			{
				remember_oid(&pending_dropped, objid);
				if (address_schema_and_name(tup, tt->tupdesc, 3, &schema, &name))
					note_partition_parent(schema, name);
			}
			else
			{
				int64		table_id;
				char	   *detached = EltDetachHistory(objid, &table_id);

				if (detached != NULL)
					EltRemoveTableTarget(&cw, objid, table_id, detached, "table dropped");
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

	if (in_shard_statement(trigdata->parsetree, true))
		PG_RETURN_NULL();
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
	/*
	 * A detached partition with a history of its own records the detach; one
	 * without gets none now (its parent's history records the detach), and
	 * a baseline at the first DDL that touches it as a table.
	 */
	foreach(lc, pending_detached)
	{
		bool		tracked;

		(void) EltTableInScope(lfirst_oid(lc), &tracked);
		if (tracked)
			changed = list_append_unique_oid(changed, lfirst_oid(lc));
	}

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
	/* the views on a swapped-out model follow it (after our notes: it runs DDL) */
	EltSwapFollowViews();
	PG_RETURN_NULL();
}
