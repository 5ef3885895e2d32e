/*
 * govern.c — putting schemas and tables under governance: elt.govern() and
 * elt.ungovern().  Owns elt.governed_targets, and answers the questions
 * asked of it: which tables does a schema hold (EltSchemaTables); and
 * the changes of targets that DDL causes (a dropped table or schema, a
 * renamed schema, a table target whose model a swap rebuilt).  The questions
 * every DDL statement asks (is anything governed, is this table in scope,
 * which policy applies, is it a partition of a governed parent) are
 * answered in govern_lookup.c.
 *
 * Layering: the policy layer, under the engines.  The capture triggers
 * (versions_capture.c) and contracts call it; it calls the version store
 * (versions_store.c: a baseline, a table's stable id), settings.c (the
 * statement being run), audit.c, roles.c and util.c, never the capture
 * triggers.
 *
 * Privileges: only the owner of a schema or table, a member of elt_admin
 * or a superuser may govern or ungovern it; the check runs as the caller
 * before anything is written.  The catalog is then written as the extension owner.
 *
 * Locking: governing a schema takes AccessExclusiveLock on the schema object
 * (the lock DROP SCHEMA takes; CREATE TABLE in the schema takes
 * AccessShareLock), so no table can appear in the schema between the
 * listing and the commit.  Governing a schema or a table takes
 * ShareUpdateExclusiveLock on each table, which every DDL conflicts with
 * (CREATE INDEX, CONCURRENTLY or not, ADD FOREIGN KEY and VALIDATE
 * CONSTRAINT included) while reads and writes go on: no DDL can run
 * unrecorded between the baseline and the commit, when its own event
 * trigger would not yet see the new target.  All locks are taken before any
 * history lock (see versions_store.c) and are held to the end of the
 * transaction.
 */
#include "postgres.h"

#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "audit.h"
#include "citus.h"
#include "govern.h"
#include "roles.h"
#include "settings.h"
#include "util.h"
#include "versions_store.h"

/* A resolved target of govern/ungovern. */
typedef struct EltTarget
{
	bool		is_schema;
	char	   *schema;
	char	   *table;			/* NULL for a schema */
	Oid			nspoid;			/* InvalidOid if the schema is gone */
	Oid			relid;			/* table only */
	char	   *display;		/* quoted name, as shown in elt.governed */
	char	   *label;			/* plain name, for messages */
	const char *verb;			/* govern or ungovern, for messages */
} EltTarget;

static SPIPlanPtr target_lookup_plan = NULL;
static SPIPlanPtr target_insert_plan = NULL;
static SPIPlanPtr target_policy_plan = NULL;
static SPIPlanPtr target_delete_plan = NULL;
static SPIPlanPtr schema_rename_plan = NULL;

/* Validate a policy name. */
static void
check_policy(const char *policy)
{
	if (strcmp(policy, "enforce") != 0 &&
		strcmp(policy, "warn") != 0 &&
		strcmp(policy, "off") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown policy \"%s\"", policy),
				 errdetail("Allowed policies are enforce, warn and off."),
				 errhint("Policy enforce is to block breaking changes, warn to report them, off to record them only.")));
}

/* Schemas that belong to PostgreSQL or to elt_governance itself. */
static void
check_not_system_schema(const char *nspname, Oid nspoid, const char *verb)
{
	if (IsCatalogNamespace(nspoid) || IsToastNamespace(nspoid) ||
		isAnyTempNamespace(nspoid) || IsReservedName(nspname) ||
		strcmp(nspname, "information_schema") == 0 ||
		strcmp(nspname, ELT_SCHEMA_NAME) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot %s objects in system schema \"%s\"", verb, nspname),
				 errdetail("pg_catalog, information_schema, pg_toast, temporary schemas and elt itself cannot be governed."),
				 errhint("Govern the schemas that hold your own tables, for example elt.govern('analytics').")));
}

/* The argument of a function as a C string, or an error naming it. */
static char *
required_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
				  const char *hint)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errhint("%s", hint)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * RangeVarGetRelidExtended callback: a table target must be a table the
 * caller owns.  Runs before the table is locked.
 */
static void
check_table_target(const RangeVar *relation, Oid relid, Oid oldrelid, void *arg)
{
	EltTarget  *t = (EltTarget *) arg;
	char		relkind;

	if (!OidIsValid(relid))
		return;
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", t->label),
				 errdetail("Only ordinary and partitioned tables can be governed.")));
	if (EltIsCitusShard(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a Citus shard", t->label),
				 errdetail("A shard is governed through its distributed or reference table."),
				 errhint("Govern the table the shard belongs to, or its schema.")));
	if (!pg_class_ownercheck(relid, GetUserId()) && !EltRoleIsAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table \"%s\" to %s it", t->label, t->verb),
				 errhint("Ask the owner of the table, a member of %s or a superuser to run it.",
						 ELT_ROLE_ADMIN)));
}

/*
 * Parse and check a target: a schema name, or schema.table.  When must_exist
 * is false (ungovern), a schema that no longer exists is accepted so that a
 * stale target can still be removed.
 */
static void
resolve_target(const char *target, bool must_exist, const char *verb,
			   EltTarget *t)
{
	List	   *names;

	if (target[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target must not be empty"),
				 errhint("Write a schema, such as 'analytics', or a table with its schema, such as 'analytics.orders'.")));
	names = stringToQualifiedNameList(target);
	memset(t, 0, sizeof(EltTarget));
	t->verb = verb;
	if (list_length(names) == 1)
	{
		t->is_schema = true;
		t->schema = strVal(linitial(names));
		t->display = pstrdup(quote_identifier(t->schema));
		t->label = t->schema;
		t->nspoid = LookupNamespaceNoError(t->schema);
		if (!OidIsValid(t->nspoid))
		{
			if (!must_exist)
				return;
			if (OidIsValid(RelnameGetRelid(t->schema)) &&
				isAnyTempNamespace(get_rel_namespace(RelnameGetRelid(t->schema))))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("cannot %s temporary table \"%s\"", verb, t->schema),
						 errdetail("Temporary tables cannot be governed.")));
			if (OidIsValid(RelnameGetRelid(t->schema)))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_SCHEMA),
						 errmsg("schema \"%s\" does not exist", t->schema),
						 errhint("To %s the table \"%s\", qualify it with its schema, for example '%s'.",
								 verb, t->schema,
								 quote_qualified_identifier(get_namespace_name(get_rel_namespace(RelnameGetRelid(t->schema))),
															t->schema))));
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_SCHEMA),
					 errmsg("schema \"%s\" does not exist", t->schema),
					 errhint("Pass the name of an existing schema, or a table as schema.table.")));
		}
		check_not_system_schema(t->schema, t->nspoid, verb);
		if (!pg_namespace_ownercheck(t->nspoid, GetUserId()) && !EltRoleIsAdmin(GetUserId()))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of schema \"%s\" to %s it", t->schema, verb),
					 errhint("Ask the owner of the schema, a member of %s or a superuser to run it.",
							 ELT_ROLE_ADMIN)));
	}
	else if (list_length(names) == 2)
	{
		t->is_schema = false;
		t->schema = strVal(linitial(names));
		t->table = strVal(lsecond(names));
		t->display = quote_qualified_identifier(t->schema, t->table);
		t->label = psprintf("%s.%s", t->schema, t->table);
		t->nspoid = LookupNamespaceNoError(t->schema);
		if (!OidIsValid(t->nspoid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_SCHEMA),
					 errmsg("schema \"%s\" does not exist", t->schema),
					 errhint("Pass a table as schema.table, with an existing schema.")));
		check_not_system_schema(t->schema, t->nspoid, verb);

		/*
		 * Check ownership before locking, then lock out DDL on the table
		 * (CREATE INDEX, ADD FOREIGN KEY and VALIDATE included) until commit,
		 * so that none runs unrecorded between the baseline and the commit.
		 */
		t->relid = RangeVarGetRelidExtended(makeRangeVar(t->schema, t->table, -1),
											ShareUpdateExclusiveLock, RVR_MISSING_OK,
											check_table_target, t);
		if (!OidIsValid(t->relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation \"%s\" does not exist", t->label),
					 errhint("Pass an existing table as schema.table.")));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target \"%s\" is neither a schema nor a schema-qualified table", target),
				 errhint("Write a schema, such as 'analytics', or a table with its schema, such as 'analytics.orders'.")));
}

/* Look up the governed_targets row of a target; returns whether it exists. */
static bool
lookup_target(EltTarget *t, char **policy)
{
	Oid			argtypes[3] = {BOOLOID, NAMEOID, OIDOID};
	Datum		args[3];

	EltPrepare(&target_lookup_plan,
			   "SELECT target_id, policy FROM elt.governed_targets"
			   " WHERE CASE WHEN $1 THEN kind = 'schema' AND schema_name = $2"
			   "            ELSE kind = 'table' AND rel = $3::regclass END",
			   3, argtypes);
	args[0] = BoolGetDatum(t->is_schema);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(t->schema));
	args[2] = ObjectIdGetDatum(t->relid);
	EltExecLatest(target_lookup_plan, args, NULL, 1);
	if (SPI_processed == 0)
		return false;
	*policy = EltSpiGetText(0, "policy");
	return true;
}

/*
 * The tables of a target, locked against concurrent DDL (see the file
 * header).  A table dropped or moved out of the schema while we waited for
 * its lock is left out.
 */
static List *
target_tables(EltTarget *t)
{
	List	   *listed = NIL;
	List	   *tables = NIL;
	ListCell   *lc;

	if (!t->is_schema)
		return list_make1_oid(t->relid);

	LockDatabaseObject(NamespaceRelationId, t->nspoid, 0, AccessExclusiveLock);
	if (!SearchSysCacheExists1(NAMESPACEOID, ObjectIdGetDatum(t->nspoid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" was dropped while waiting for its lock", t->label)));
	listed = EltSchemaTables(t->nspoid, NIL);
	foreach(lc, listed)
	{
		Oid			relid = lfirst_oid(lc);

		LockRelationOid(relid, ShareUpdateExclusiveLock);
		if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)) &&
			get_rel_namespace(relid) == t->nspoid)
			tables = lappend_oid(tables, relid);
		else
			UnlockRelationOid(relid, ShareUpdateExclusiveLock);
	}
	return tables;
}

/* EltTableScope without was_in_scope, for the governing functions. */
bool
EltTableInScope(Oid relid, bool *tracked)
{
	return EltTableScope(relid, tracked, NULL);
}

/*
 * Add the ordinary and partitioned tables of a schema to a list, read with
 * the latest snapshot; not its Citus shards.  Used for a renamed schema and by elt.govern().
 */
List *
EltSchemaTables(Oid nspoid, List *tables)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	uint64		i;

	EltPrepare(&plan,
			   "SELECT c.oid FROM pg_class c"
			   " WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p')"
			   " ORDER BY c.relname",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(nspoid);
	EltExecLatest(plan, args, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));

		/* a Citus shard is no table of the schema for governance (citus.c) */
		if (!EltIsCitusShard(relid))
			tables = list_append_unique_oid(tables, relid);
	}
	return tables;
}

/*
 * A schema was renamed: a governed one stays governed under its new name
 * (a target already under the new name can only be a stale one, and goes).
 * Inside the catalog write context; runs with capture off too, so that no
 * target is left behind under the old name.
 */
void
EltRenameSchemaTarget(EltCatalogWrite *cw, const char *oldname, const char *newname)
{
	Oid			argtypes[2] = {NAMEOID, NAMEOID};
	Datum		args[2];
	EltJson		details;

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
		EltJsonBegin(&details);
		EltJsonString(&details, "kind", "schema");
		EltJsonString(&details, "from", oldname);
		EltJsonString(&details, "to", newname);
		EltAuditRecord(cw->actor, "target_renamed", quote_identifier(newname),
					   EltJsonFinish(&details), EltAuditReason(NULL));
	}
}

/*
 * Record the end of a target's governance in the audit log, with what a
 * replay by elt.audit_verify() needs: its kind, schema name or table_id, and
 * its policy.  The governed_targets row has just been deleted.
 */
static void
audit_target_removed(EltCatalogWrite *cw, const char *object, const char *schema,
					 int64 table_id, const char *policy, const char *cause,
					 const char *reason)
{
	EltJson		details;

	EltJsonBegin(&details);
	EltJsonString(&details, "kind", schema ? "schema" : "table");
	if (schema)
		EltJsonString(&details, "schema", schema);
	else
		EltJsonInt(&details, "table_id", table_id);
	EltJsonString(&details, "policy", policy);
	if (cause)
		EltJsonString(&details, "cause", cause);
	EltAuditRecord(cw->actor, "ungovern", object, EltJsonFinish(&details),
				   EltAuditReason(reason));
}

/*
 * A table governed by name is gone (cause says why): remove its target, if
 * it has one.  Inside the catalog write context.
 */
void
EltRemoveTableTarget(EltCatalogWrite *cw, Oid relid, int64 table_id,
					 const char *object, const char *cause)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];

	EltPrepare(&plan,
			   "DELETE FROM elt.governed_targets"
			   " WHERE kind = 'table' AND rel = $1::regclass RETURNING policy",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	EltExec(plan, args, NULL, 0);
	if (SPI_processed > 0)
		audit_target_removed(cw, object, NULL, table_id, EltSpiGetText(0, "policy"),
							 cause, NULL);
}

/*
 * A swap (contracts_swap.c): new_relid has taken the name, and the history
 * (EltTakeOverHistory), of old_relid.  A table target on old_relid moves to
 * new_relid, so that the model stays governed under its name and the backup
 * dbt drops next is not.  The table_id the audit log knows the target by is
 * unchanged.  Inside the catalog write context.
 */
void
EltMoveTableTarget(Oid old_relid, Oid new_relid)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {OIDOID, OIDOID};
	Datum		args[2];

	EltPrepare(&plan,
			   "UPDATE elt.governed_targets SET rel = $2::regclass"
			   " WHERE kind = 'table' AND rel = $1::regclass",
			   2, argtypes);
	args[0] = ObjectIdGetDatum(old_relid);
	args[1] = ObjectIdGetDatum(new_relid);
	EltExec(plan, args, NULL, 0);
}

/*
 * A governed schema is gone (cause says why): remove its target, if it has
 * one.  Inside the catalog write context.
 */
void
EltRemoveSchemaTarget(EltCatalogWrite *cw, const char *schema, const char *cause)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {NAMEOID};
	Datum		args[1];

	EltPrepare(&plan,
			   "DELETE FROM elt.governed_targets"
			   " WHERE kind = 'schema' AND schema_name = $1 RETURNING policy",
			   1, argtypes);
	args[0] = DirectFunctionCall1(namein, CStringGetDatum(schema));
	EltExec(plan, args, NULL, 0);
	if (SPI_processed > 0)
		audit_target_removed(cw, quote_identifier(schema), schema, 0,
							 EltSpiGetText(0, "policy"), cause, NULL);
}

/*
 * elt.govern(target, policy, reason): put a schema or a table under
 * governance, recording the baseline version of every table in scope that
 * has no current history (a partition of a governed parent is not in
 * scope: its parent's history records it).  Governing again changes the policy, and records a
 * baseline for every table whose shape differs from its last version (DDL
 * run while elt.enabled was off).  Returns the number of baselines recorded.
 */
PG_FUNCTION_INFO_V1(elt_govern);
Datum
elt_govern(PG_FUNCTION_ARGS)
{
	char	   *target = required_text_arg(fcinfo, 0, "target",
										   "Pass a schema such as 'analytics' or a table such as 'analytics.orders'.");
	char	   *policy = required_text_arg(fcinfo, 1, "policy",
										   "Pass enforce, warn or off.");
	const char *reason = EltAuditReason(PG_ARGISNULL(2) ? NULL :
										text_to_cstring(PG_GETARG_TEXT_PP(2)));
	EltTarget	t;
	EltCatalogWrite cw;
	List	   *tables;
	List	   *needs_baseline = NIL;
	List	   *resync = NIL;
	ListCell   *lc;
	char	   *old_policy = NULL;
	char	   *statement;
	int			baselines = 0;
	EltJson		details;

	check_policy(policy);
	resolve_target(target, true, "govern", &t);
	statement = EltCurrentStatement();

	EltCatalogWriteBegin(&cw);
	tables = target_tables(&t);

	/*
	 * Tables without a history in scope now need a baseline; the others get
	 * one only if their shape moved on unobserved (while elt.enabled was off).
	 */
	foreach(lc, tables)
	{
		bool		tracked;
		bool		in_scope = EltTableInScope(lfirst_oid(lc), &tracked);

		if (tracked && in_scope)
			resync = lappend_oid(resync, lfirst_oid(lc));
		else
			needs_baseline = lappend_oid(needs_baseline, lfirst_oid(lc));
	}

	EltJsonBegin(&details);
	EltJsonString(&details, "kind", t.is_schema ? "schema" : "table");
	/* the audit log knows a target by its schema name or stable table_id */
	if (t.is_schema)
		EltJsonString(&details, "schema", t.schema);
	else
		EltJsonInt(&details, "table_id", EltEnsureTracked(t.relid));
	if (lookup_target(&t, &old_policy))
	{
		if (strcmp(old_policy, policy) != 0)
		{
			Datum		args[4];
			Oid			ptypes[4] = {BOOLOID, NAMEOID, OIDOID, TEXTOID};

			EltPrepare(&target_policy_plan,
					   "UPDATE elt.governed_targets SET policy = $4"
					   " WHERE CASE WHEN $1 THEN kind = 'schema' AND schema_name = $2"
					   "            ELSE kind = 'table' AND rel = $3::regclass END",
					   4, ptypes);
			args[0] = BoolGetDatum(t.is_schema);
			args[1] = DirectFunctionCall1(namein, CStringGetDatum(t.schema));
			args[2] = ObjectIdGetDatum(t.relid);
			args[3] = CStringGetTextDatum(policy);
			EltExec(target_policy_plan, args, NULL, 0);
			EltJsonString(&details, "from", old_policy);
			EltJsonString(&details, "to", policy);
			EltAuditRecord(cw.actor, "policy_changed", t.display,
						   EltJsonFinish(&details), reason);
		}
		else
			ereport(NOTICE,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("%s \"%s\" is already governed with policy %s",
							t.is_schema ? "schema" : "table", t.label, policy)));
	}
	else
	{
		Oid			argtypes[6] = {TEXTOID, NAMEOID, OIDOID, TEXTOID, NAMEOID, TEXTOID};
		Datum		args[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

		EltPrepare(&target_insert_plan,
				   "INSERT INTO elt.governed_targets (kind, schema_name, rel, policy,"
				   " governed_at, governed_by, reason)"
				   " VALUES ($1, $2, $3::regclass, $4, pg_catalog.now(), $5, $6)",
				   6, argtypes);
		args[0] = CStringGetTextDatum(t.is_schema ? "schema" : "table");
		if (t.is_schema)
		{
			args[1] = DirectFunctionCall1(namein, CStringGetDatum(t.schema));
			nulls[2] = 'n';
		}
		else
		{
			nulls[1] = 'n';
			args[2] = ObjectIdGetDatum(t.relid);
		}
		args[3] = CStringGetTextDatum(policy);
		args[4] = DirectFunctionCall1(namein,
									  CStringGetDatum(GetUserNameFromId(cw.actor, false)));
		if (reason)
			args[5] = CStringGetTextDatum(reason);
		else
			nulls[5] = 'n';
		EltExec(target_insert_plan, args, nulls, 0);

		EltJsonString(&details, "policy", policy);
		EltJsonInt(&details, "tables", list_length(tables));
		EltAuditRecord(cw.actor, "govern", t.display, EltJsonFinish(&details), reason);
	}

	foreach(lc, tables)
	{
		Oid			relid = lfirst_oid(lc);
		bool		fresh = list_member_oid(needs_baseline, relid);

		if (!fresh && !list_member_oid(resync, relid))
			continue;
		/* a partition of a governed parent has no history of its own */
		if (fresh && t.is_schema)
		{
			bool		tracked;

			if (!EltTableInScope(relid, &tracked))
				continue;
		}
		if (EltRecordVersion(&cw, relid, "baseline", NULL, statement, reason, !fresh) > 0)
			baselines++;
	}

	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT32(baselines);
}

/*
 * elt.ungovern(target, reason): take a schema or table out of governance.
 * Its history stays; DDL on it is no longer recorded.
 */
PG_FUNCTION_INFO_V1(elt_ungovern);
Datum
elt_ungovern(PG_FUNCTION_ARGS)
{
	char	   *target = required_text_arg(fcinfo, 0, "target",
										   "Pass a governed schema or table, as listed in elt.governed.");
	const char *reason = EltAuditReason(PG_ARGISNULL(1) ? NULL :
										text_to_cstring(PG_GETARG_TEXT_PP(1)));
	EltTarget	t;
	EltCatalogWrite cw;
	char	   *policy = NULL;
	Oid			argtypes[3] = {BOOLOID, NAMEOID, OIDOID};
	Datum		args[3];

	resolve_target(target, false, "ungovern", &t);
	if (t.is_schema && !OidIsValid(t.nspoid) && !EltRoleIsAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a member of %s or a superuser can ungovern schema \"%s\", which no longer exists",
						ELT_ROLE_ADMIN, t.schema)));

	EltCatalogWriteBegin(&cw);
	if (t.is_schema && OidIsValid(t.nspoid))
		LockDatabaseObject(NamespaceRelationId, t.nspoid, 0, AccessExclusiveLock);

	if (!lookup_target(&t, &policy))
	{
		if (!t.is_schema)
		{
			char	   *nspname = get_namespace_name(t.nspoid);
			bool		tracked;

			if (EltTableInScope(t.relid, &tracked))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("table \"%s\" is not governed on its own", t.label),
						 errdetail("It is governed through its schema \"%s\".", nspname),
						 errhint("Ungovern the schema, or govern the table with policy 'off' to stop checks on it.")));
		}
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("%s \"%s\" is not governed", t.is_schema ? "schema" : "table",
						t.label),
				 errhint("The view elt.governed lists what is governed.")));
	}

	EltPrepare(&target_delete_plan,
			   "DELETE FROM elt.governed_targets"
			   " WHERE CASE WHEN $1 THEN kind = 'schema' AND schema_name = $2"
			   "            ELSE kind = 'table' AND rel = $3::regclass END",
			   3, argtypes);
	args[0] = BoolGetDatum(t.is_schema);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(t.schema));
	args[2] = ObjectIdGetDatum(t.relid);
	EltExec(target_delete_plan, args, NULL, 0);

	audit_target_removed(&cw, t.display, t.is_schema ? t.schema : NULL,
						 t.is_schema ? 0 : EltEnsureTracked(t.relid), policy, NULL,
						 reason);

	EltCatalogWriteEnd(&cw);
	PG_RETURN_VOID();
}
