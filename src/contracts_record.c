/*
 * contracts_record.c — what the contracts engine writes for a statement
 * that goes ahead.
 *
 * Owns: elt.schema_changes (one row per finding, or one 'safe' row), the
 * change_classified and consumer_unregistered audit rows, the classification
 * kept for a concurrent index build or drop until ddl_command_end, and
 * registered consumers following a column renamed or dropped.
 *
 * Calls: contracts_rules.c, audit.c, backfill.c (a backfill pauses on a
 * breaking change of its table), migrations.c (EltContractsReady), util.c.
 * Called by contracts_judge.c and, for EltContractsRecordDeferred, by
 * ddl_command_end.
 *
 * Everything is written in the statement's own transaction through the
 * caller's EltCatalogWrite.  The kept classification lives in a memory
 * context under TopMemoryContext, dropped when the next statement starts or
 * once written.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/heap.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_index.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "mb/pg_wchar.h"
#include "optimizer/plancat.h"
#include "parser/parse_coerce.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "audit.h"
#include "backfill.h"
#include "contracts.h"
#include "contracts_int.h"
#include "deploy.h"
#include "govern.h"
#include "settings.h"
#include "util.h"

/* Insert one elt.schema_changes row and add it to the audit details. */
static void
record_change(EltCatalogWrite *cw, EltCandidate *f, const char *tag,
			  const char *statement, const char *decision, int64 migration,
			  EltJson *audit)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[12] = {NAMEOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[12];
	char		nulls[12];
	bool		safe = f->rule < 0;
	bool		isnull;
	int64		change_id;

	memset(nulls, ' ', sizeof(nulls));
	EltPrepare(&plan,
			   "INSERT INTO elt.schema_changes (recorded_at, role, xid, command_tag,"
			   " statement, rule, class, object, reason, dependents, suggestion, policy,"
			   " decision, migration_id)"
			   " VALUES (pg_catalog.now(), $1, pg_catalog.pg_current_xact_id(), $2, $3,"
			   " $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING change_id",
			   12, argtypes);
	values[0] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(cw->actor, false)));
	if (tag)
		values[1] = CStringGetTextDatum(tag);
	else
		nulls[1] = 'n';
	if (statement)
		values[2] = CStringGetTextDatum(statement);
	else
		nulls[2] = 'n';
	if (safe)
		nulls[3] = 'n';
	else
		values[3] = CStringGetTextDatum(EltContractRules[f->rule].code);
	values[4] = CStringGetTextDatum(safe ? "safe" : EltContractRules[f->rule].class);
	values[5] = CStringGetTextDatum(f->object);
	values[6] = CStringGetTextDatum(safe ? "no compatibility or locking finding" : f->reason);
	values[7] = EltTextArray(f->dependents);
	if (safe)
		nulls[8] = 'n';
	else
		values[8] = CStringGetTextDatum(EltContractRules[f->rule].suggestion);
	values[9] = CStringGetTextDatum(f->policy);
	values[10] = CStringGetTextDatum(decision);
	if (migration > 0)
		values[11] = Int64GetDatum(migration);
	else
		nulls[11] = 'n';
	if (EltExec(plan, values, nulls, 1) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not insert into elt.schema_changes");
	change_id = EltSpiGetInt64(0, "change_id", &isnull);

	EltJsonBeginObject(audit, NULL);
	EltJsonInt(audit, "change_id", change_id);
	EltJsonString(audit, "rule", safe ? NULL : EltContractRules[f->rule].code);
	EltJsonString(audit, "class", safe ? "safe" : EltContractRules[f->rule].class);
	EltJsonString(audit, "object", f->object);
	EltJsonString(audit, "decision", decision);
	EltJsonEndObject(audit);
}

/*
 * DROP INDEX CONCURRENTLY must be the first action of its transaction, so
 * nothing can be written before it runs, and CREATE INDEX CONCURRENTLY
 * commits between its phases, so what is written before it survives a build
 * that fails: the classification of both is kept here, in a memory context
 * of its own, and written by ddl_command_end.
 */
typedef struct EltDeferred
{
	List	   *findings;		/* EltCandidate *, copied */
	List	   *decisions;		/* char * */
	char	   *tag;
	char	   *statement;
	int64		migration;
} EltDeferred;

static EltDeferred *deferred = NULL;
static MemoryContext deferred_cxt = NULL;

/* Deep copy of a finding, in the current memory context. */
static EltCandidate *
copy_candidate(EltCandidate *f)
{
	EltCandidate *n = palloc(sizeof(EltCandidate));
	ListCell   *lc;

	memcpy(n, f, sizeof(EltCandidate));
	n->colname = f->colname ? pstrdup(f->colname) : NULL;
	n->newname = f->newname ? pstrdup(f->newname) : NULL;
	n->object = pstrdup(f->object);
	n->reason = f->reason ? pstrdup(f->reason) : NULL;
	n->policy = pstrdup(f->policy);
	n->dependents = NIL;
	foreach(lc, f->dependents)
		n->dependents = lappend(n->dependents, pstrdup((char *) lfirst(lc)));
	return n;
}

/*
 * Whether elt.schema_changes accepts class 'advice' (the catalog is at
 * 0.9.0 or later; the library may run on an older one until ALTER
 * EXTENSION UPDATE): 0.9.0 also brought elt.check_ddl(text, boolean),
 * which the syscache finds cheaply.
 */
bool
EltAdviceRecordable(void)
{
	Oid			nsp = get_namespace_oid(ELT_SCHEMA_NAME, true);
	Oid			argtypes[2] = {TEXTOID, BOOLOID};

	return OidIsValid(nsp) &&
		SearchSysCacheExists3(PROCNAMEARGSNSP, CStringGetDatum("check_ddl"),
							  PointerGetDatum(buildoidvector(argtypes, 2)),
							  ObjectIdGetDatum(nsp));
}

/* Write what a statement did to elt.schema_changes and the audit log. */
void
EltContractsWriteRecords(EltCatalogWrite *cw, List *findings, List *decisions,
						 const char *tagname, const char *statement, int64 migration)
{
	EltJson		details;
	ListCell   *lf;
	ListCell   *ld;
	EltCandidate *first = NULL;

	/* the details of the audit row: {"command_tag", "migration_id", "changes": [...]} */
	EltJsonBegin(&details);
	EltJsonString(&details, "command_tag", tagname);
	if (migration > 0)
		EltJsonInt(&details, "migration_id", migration);
	EltJsonBeginArray(&details, "changes");
	forboth(lf, findings, ld, decisions)
	{
		EltCandidate *f = (EltCandidate *) lfirst(lf);

		if (first == NULL)
			first = f;
		record_change(cw, f, tagname, statement, (const char *) lfirst(ld),
					  migration, &details);
		if (f->rule >= 0 && strcmp(EltContractRules[f->rule].class, "breaking") == 0 &&
			OidIsValid(f->relid))
			EltBackfillPauseForChange(cw->actor, f->relid, EltContractRules[f->rule].code, f->reason);
	}
	EltJsonEndArray(&details);
	if (first == NULL)
		return;
	EltAuditRecord(cw->actor, "change_classified", first->object, EltJsonFinish(&details),
				   EltAuditReason(NULL));
}

/* ddl_command_end: write the classification kept for a concurrent drop. */
void
EltContractsRecordDeferred(EltCatalogWrite *cw)
{
	EltDeferred *d = deferred;

	if (d != NULL && EltContractsReady())
		EltContractsWriteRecords(cw, d->findings, d->decisions, d->tag, d->statement, d->migration);
	EltContractsForgetDeferred();
}

/* Forget a kept classification (a new statement starts, or it was written). */
void
EltContractsForgetDeferred(void)
{
	deferred = NULL;
	if (deferred_cxt != NULL)
	{
		MemoryContextDelete(deferred_cxt);
		deferred_cxt = NULL;
	}
}

/*
 * Keep the classification of a concurrent index build or drop, copied into
 * a memory context of its own, for ddl_command_end to write.
 */
void
EltContractsKeepDeferred(List *findings, List *decisions, const char *tagname,
						 const char *statement, int64 migration)
{
	MemoryContext old;
	EltDeferred *d;
	ListCell   *lc;

	EltContractsForgetDeferred();
	deferred_cxt = AllocSetContextCreate(TopMemoryContext, "elt deferred change",
										 ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(deferred_cxt);
	d = palloc0(sizeof(EltDeferred));

	foreach(lc, findings)
		d->findings = lappend(d->findings, copy_candidate((EltCandidate *) lfirst(lc)));
	foreach(lc, decisions)
		d->decisions = lappend(d->decisions, pstrdup((char *) lfirst(lc)));
	d->tag = pstrdup(tagname);
	d->statement = statement ? pstrdup(statement) : NULL;
	d->migration = migration;
	deferred = d;
	MemoryContextSwitchTo(old);
}

/*
 * Registered consumers follow a column that an allowed statement renames
 * (its readers have moved, or the rename was approved) and lose one it
 * drops; a registration left with no column goes, recorded in the audit log.
 */
void
EltContractsFollowRegistrations(EltCatalogWrite *cw, List *findings)
{
	static SPIPlanPtr rename_plan = NULL;
	static SPIPlanPtr drop_plan = NULL;
	static SPIPlanPtr empty_plan = NULL;
	Oid			rtypes[3] = {OIDOID, TEXTOID, TEXTOID};
	Oid			dtypes[2] = {OIDOID, TEXTOID};
	ListCell   *lc;

	foreach(lc, findings)
	{
		EltCandidate *f = (EltCandidate *) lfirst(lc);
		Datum		args[3];
		uint64		i;
		bool		emptied;
		bool		registered;
		ListCell   *dc;

		if (f->colname == NULL || !OidIsValid(f->relid))
			continue;
		/* judge listed the registered consumers of the column: none, no work */
		registered = false;
		foreach(dc, f->dependents)
		{
			if (strncmp((const char *) lfirst(dc), "consumer ", 9) == 0)
				registered = true;
		}
		if (!registered)
			continue;
		args[0] = ObjectIdGetDatum(f->relid);
		args[1] = CStringGetTextDatum(f->colname);
		if (f->rule == R_RENAME_COLUMN && f->newname != NULL)
		{
			EltPrepare(&rename_plan,
					   "UPDATE elt.consumer_registrations"
					   " SET columns = pg_catalog.array_replace(columns, $2, $3)"
					   " WHERE rel = $1::pg_catalog.regclass AND $2 = ANY (columns)",
					   3, rtypes);
			args[2] = CStringGetTextDatum(f->newname);
			EltExec(rename_plan, args, NULL, 0);
		}
		else if (f->rule == R_DROP_COLUMN)
		{
			SPITupleTable *tt;
			uint64		n;

			EltPrepare(&drop_plan,
					   "UPDATE elt.consumer_registrations"
					   " SET columns = pg_catalog.array_remove(columns, $2)"
					   " WHERE rel = $1::pg_catalog.regclass AND $2 = ANY (columns)"
					   " RETURNING pg_catalog.cardinality(columns) = 0 AS emptied",
					   2, dtypes);
			EltExec(drop_plan, args, NULL, 0);
			emptied = false;
			for (i = 0; i < SPI_processed; i++)
			{
				bool		isnull;

				if (EltSpiGetBool((int) i, "emptied", &isnull))
					emptied = true;
			}
			if (!emptied)
				continue;
			/* a registration left with no column goes */
			EltPrepare(&empty_plan,
					   "DELETE FROM elt.consumer_registrations"
					   " WHERE rel = $1::pg_catalog.regclass"
					   "   AND pg_catalog.cardinality(columns) = 0"
					   " RETURNING consumer",
					   1, dtypes);
			EltExec(empty_plan, args, NULL, 0);
			tt = SPI_tuptable;
			n = SPI_processed;
			for (i = 0; i < n; i++)
			{
				EltJson		details;

				EltJsonBegin(&details);
				EltJsonString(&details, "consumer",
							  SPI_getvalue(tt->vals[i], tt->tupdesc, 1));
				EltJsonString(&details, "cause", "its last column dropped");
				EltAuditRecord(cw->actor, "consumer_unregistered", EltRelDisplay(f->relid),
							   EltJsonFinish(&details), EltAuditReason(NULL));
			}
		}
	}
}
