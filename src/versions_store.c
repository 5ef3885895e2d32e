/*
 * versions_store.c — the version store: elt.tracked_tables and
 * elt.schema_versions.
 *
 * Owns: starting a table's history (its stable table_id), recording its next
 * version (EltRecordVersion, EltInsertVersion, with the audit action
 * version_recorded for each), detaching the history of a dropped table from
 * its dead oid, taking back the history of a table created and attached as
 * a partition of a governed parent in the same transaction
 * (EltTakeBackNewHistory), handing a relation's history to the relation
 * that took its name in a swap (EltTakeOverHistory), following a renamed
 * schema, and the history locks.
 *
 * Layering: a shared layer under the engines.  The capture triggers
 * (versions_capture.c) and elt.govern() (govern.c) call it; it calls
 * versions_shape.c for a table's shape, audit.c for the audit rows,
 * EltMigrationJoin (migrations.c, migrations.h) for the
 * migration a version belongs to (joining the one elt.migration names, at
 * a session's first governed change), and util.c and util_json.c.  It never
 * decides whether a table is governed: its callers have (govern.c).  The
 * one call upward, to migrations.c, reads or sets the session's window;
 * migrations.c does not call the store, so there is no circle.
 *
 * Locking and transactions: versions are written in the caller's
 * transaction (the DDL's own, or elt.govern's), so a rolled-back DDL leaves
 * nothing; every write runs inside the caller's catalog write context
 * (EltCatalogWriteBegin).  Before reading a table's last version, the
 * recorder takes an exclusive object lock on that table's history (class
 * elt.tracked_tables, object = table oid; EltLockTableHistory), held to the
 * end of the transaction; with reads done under the latest snapshot,
 * version numbers stay gap-free even for DDL that takes weak table locks
 * (CREATE INDEX) and under REPEATABLE READ.  Audit rows for each version
 * are recorded with EltAuditRecord and chained at commit (see audit.c).
 *
 * Under REPEATABLE READ and SERIALIZABLE, a history that another transaction
 * started after our snapshot is seen by the latest-snapshot reads but not by
 * our writes: recording then fails with a serialization failure, to be
 * retried, rather than writing past it (EltCheckHistoryVisible).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "audit.h"
#include "migrations.h"
#include "versions_shape.h"
#include "versions_store.h"

static SPIPlanPtr tracked_plan = NULL;
static SPIPlanPtr tracked_insert_plan = NULL;
static SPIPlanPtr tracked_rename_plan = NULL;
static SPIPlanPtr version_insert_plan = NULL;

/* Serialize the recording of one table's versions; see the file header. */
void
EltLockTableHistory(Oid relid)
{
	LockDatabaseObject(EltCatalogRelid("tracked_tables"), relid, 0, ExclusiveLock);
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

	EltLockTableHistory(relid);
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

/*
 * Under REPEATABLE READ or SERIALIZABLE, stop with a serialization failure
 * when a table's history row, found with the latest snapshot, is invisible
 * to this transaction's own snapshot (see the file header).
 */
void
EltCheckHistoryVisible(int64 table_id, const char *nspname, const char *relname)
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
void
EltInsertVersion(EltCatalogWrite *cw, int64 table_id, int32 version, Oid relid,
				 const char *nspname, const char *relname, const char *event,
				 Datum shape, const char *command_tag, const char *statement,
				 const char *reason)
{
	Oid			argtypes[11] = {INT8OID, INT4OID, OIDOID, NAMEOID, NAMEOID,
	TEXTOID, JSONBOID, TEXTOID, TEXTOID, NAMEOID, INT8OID};
	Datum		values[11];
	char		nulls[11] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int64		migration = EltMigrationJoin(cw);
	char		hash[ELT_SHA256_HEX_LEN + 1];
	EltJson		details;
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

	EltJsonBegin(&details);
	EltJsonInt(&details, "table_id", table_id);
	EltJsonInt(&details, "version", version);
	EltJsonString(&details, "event", event);
	EltJsonString(&details, "command_tag", command_tag);
	EltJsonString(&details, "version_hash", hash);
	object = quote_qualified_identifier(nspname, relname);
	EltAuditRecord(cw->actor, "version_recorded", object, EltJsonFinish(&details),
				   EltAuditReason(reason));
	EltAuditTagVersion(table_id, version);
}

/*
 * A table that this very transaction created (its history starts with a
 * 'created' version, and every version carries our xid) has just become a
 * partition of a governed parent, and is not governed on its own: take its
 * history back, so that it never gets one (pg_partman creates each
 * partition with CREATE TABLE ... (LIKE parent) and attaches it in the same
 * transaction).  Its version rows and history row are deleted, and their
 * version_recorded actions are never appended to the audit log; nothing
 * committed changes.  Returns whether it was taken back.  Inside the
 * catalog write context; the caller has checked the scope.
 */
bool
EltTakeBackNewHistory(Oid relid)
{
	static SPIPlanPtr own_plan = NULL;
	static SPIPlanPtr delete_versions_plan = NULL;
	static SPIPlanPtr delete_tracked_plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Oid			idtypes[1] = {INT8OID};
	Datum		args[1];
	bool		isnull;
	int64		table_id;

	EltLockTableHistory(relid);
	EltPrepare(&own_plan,
			   "SELECT t.table_id FROM elt.tracked_tables t"
			   " WHERE t.relid = $1::regclass"
			   "   AND EXISTS (SELECT 1 FROM elt.schema_versions v"
			   "               WHERE v.table_id = t.table_id AND v.version = 1"
			   "                 AND v.event = 'created'"
			   "                 AND v.xid = pg_catalog.pg_current_xact_id_if_assigned())"
			   "   AND NOT EXISTS (SELECT 1 FROM elt.schema_versions v"
			   "                   WHERE v.table_id = t.table_id"
			   "                     AND v.xid IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned())"
			   "   AND NOT EXISTS (SELECT 1 FROM elt.governed_targets g"
			   "                   WHERE g.kind = 'table' AND g.rel = t.relid)",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	EltExecLatest(own_plan, args, NULL, 1);
	if (SPI_processed == 0)
		return false;
	table_id = EltSpiGetInt64(0, "table_id", &isnull);

	EltPrepare(&delete_versions_plan,
			   "DELETE FROM elt.schema_versions WHERE table_id = $1"
			   "   AND xid = pg_catalog.pg_current_xact_id_if_assigned()",
			   1, idtypes);
	EltPrepare(&delete_tracked_plan,
			   "DELETE FROM elt.tracked_tables WHERE table_id = $1", 1, idtypes);
	args[0] = Int64GetDatum(table_id);
	EltAuditAllowTakeBack(true);
	PG_TRY();
	{
		EltExec(delete_versions_plan, args, NULL, 0);
	}
	PG_FINALLY();
	{
		EltAuditAllowTakeBack(false);
	}
	PG_END_TRY();
	EltExec(delete_tracked_plan, args, NULL, 0);
	EltAuditTakeBackVersions(table_id, 0);
	return true;
}

/*
 * Delete this transaction's versions of table_id (only the one numbered
 * version, unless version is 0), with their pending audit actions.
 */
static void
take_back_versions(int64 table_id, int32 version)
{
	static SPIPlanPtr delete_plan = NULL;
	Oid			argtypes[2] = {INT8OID, INT4OID};
	Datum		args[2];

	EltPrepare(&delete_plan,
			   "DELETE FROM elt.schema_versions WHERE table_id = $1"
			   "   AND ($2 = 0 OR version = $2)"
			   "   AND xid = pg_catalog.pg_current_xact_id_if_assigned()",
			   2, argtypes);
	args[0] = Int64GetDatum(table_id);
	args[1] = Int32GetDatum(version);
	EltAuditAllowTakeBack(true);
	PG_TRY();
	{
		EltExec(delete_plan, args, NULL, 0);
	}
	PG_FINALLY();
	{
		EltAuditAllowTakeBack(false);
	}
	PG_END_TRY();
	EltAuditTakeBackVersions(table_id, version);
}

/*
 * A swap (dbt's table materialization): new_relid, built by this
 * transaction, has just taken the name of old_relid, which this transaction
 * renamed out of the way.  The new relation takes over the old one's
 * history, so that a model keeps one table_id: the history the new relation
 * got in this transaction (its 'created' version and the rename) is taken
 * back, so is the old history's last version if it is this transaction's
 * rename out (the old relation's current name), and the old history row is
 * pointed at the new relation under its name.  The caller then records the
 * new relation's version, which compares its shape with the old one's.  The
 * relation left under the backup name has no history any more.  Returns
 * whether the history was taken over: not when the old relation has none,
 * or when the new one has versions of an earlier transaction.  Inside the
 * catalog write context.
 */
bool
EltTakeOverHistory(Oid old_relid, Oid new_relid)
{
	static SPIPlanPtr old_plan = NULL;
	static SPIPlanPtr new_plan = NULL;
	static SPIPlanPtr drop_new_plan = NULL;
	static SPIPlanPtr move_plan = NULL;
	Oid			argtypes[2] = {OIDOID, NAMEOID};
	Oid			movetypes[4] = {INT8OID, OIDOID, NAMEOID, NAMEOID};
	Datum		args[2];
	Datum		margs[4];
	bool		isnull;
	int64		old_id;
	int64		new_id = 0;
	int32		last_rename = 0;
	char	   *oldname = get_rel_name(old_relid);
	char	   *nspname = get_namespace_name(get_rel_namespace(new_relid));
	char	   *newname = get_rel_name(new_relid);

	if (oldname == NULL || nspname == NULL || newname == NULL)
		return false;
	EltLockTableHistory(old_relid);
	EltLockTableHistory(new_relid);

	/* the old history, and its last version if it is our rename out */
	EltPrepare(&old_plan,
			   "SELECT t.table_id,"
			   "       (SELECT v.version FROM elt.schema_versions v"
			   "        WHERE v.table_id = t.table_id"
			   "          AND v.version = (SELECT max(w.version) FROM elt.schema_versions w"
			   "                           WHERE w.table_id = t.table_id)"
			   "          AND v.xid = pg_catalog.pg_current_xact_id_if_assigned()"
			   "          AND v.event = 'altered' AND v.table_name = $2) AS rename_out"
			   " FROM elt.tracked_tables t WHERE t.relid = $1::regclass",
			   2, argtypes);
	args[0] = ObjectIdGetDatum(old_relid);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(oldname));
	EltExecLatest(old_plan, args, NULL, 1);
	if (SPI_processed == 0)
		return false;
	old_id = EltSpiGetInt64(0, "table_id", &isnull);
	last_rename = (int32) EltSpiGetInt64(0, "rename_out", &isnull);
	if (isnull)
		last_rename = 0;

	/* the new relation's own history: only one this transaction started */
	EltPrepare(&new_plan,
			   "SELECT t.table_id,"
			   "       EXISTS (SELECT 1 FROM elt.schema_versions v"
			   "               WHERE v.table_id = t.table_id"
			   "                 AND v.xid IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned())"
			   "         AS older"
			   " FROM elt.tracked_tables t WHERE t.relid = $1::regclass",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(new_relid);
	EltExecLatest(new_plan, args, NULL, 1);
	if (SPI_processed > 0)
	{
		new_id = EltSpiGetInt64(0, "table_id", &isnull);
		if (EltSpiGetBool(0, "older", &isnull))
			return false;
	}
	EltCheckHistoryVisible(old_id, nspname, newname);

	if (new_id > 0)
	{
		Oid			idtypes[1] = {INT8OID};

		take_back_versions(new_id, 0);
		EltPrepare(&drop_new_plan,
				   "DELETE FROM elt.tracked_tables WHERE table_id = $1", 1, idtypes);
		args[0] = Int64GetDatum(new_id);
		EltExec(drop_new_plan, args, NULL, 0);
	}
	if (last_rename > 0)
		take_back_versions(old_id, last_rename);

	/* the history follows the name; its last version is the old shape */
	EltPrepare(&move_plan,
			   "UPDATE elt.tracked_tables t SET relid = $2::regclass,"
			   "       schema_name = COALESCE(v.schema_name, $3),"
			   "       table_name = COALESCE(v.table_name, $4)"
			   " FROM (SELECT NULL::name AS schema_name, NULL::name AS table_name) d"
			   " LEFT JOIN LATERAL (SELECT s.schema_name, s.table_name FROM elt.schema_versions s"
			   "                    WHERE s.table_id = $1 ORDER BY s.version DESC LIMIT 1) v ON true"
			   " WHERE t.table_id = $1",
			   4, movetypes);
	margs[0] = Int64GetDatum(old_id);
	margs[1] = ObjectIdGetDatum(new_relid);
	margs[2] = DirectFunctionCall1(namein, CStringGetDatum(nspname));
	margs[3] = DirectFunctionCall1(namein, CStringGetDatum(newname));
	EltExec(move_plan, margs, NULL, 0);
	return true;
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

	EltLockTableHistory(relid);

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
		EltCheckHistoryVisible(table_id, nspname, relname);

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

	EltInsertVersion(cw, table_id, version, relid, nspname, relname, event,
					 shape, command_tag, statement, reason);
	return version;
}

/*
 * Detach the history of a dropped table from its dead oid.  Returns the
 * table's quoted name and sets *table_id (if not NULL), or returns NULL if
 * it had no history.
 */
char *
EltDetachHistory(Oid relid, int64 *table_id)
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
 * A schema was renamed: the histories of the tables now in it take its new
 * name, whatever name they were last recorded under.  Inside the catalog
 * write context.
 */
void
EltRenameSchemaHistories(Oid nspoid, const char *newname)
{
	static SPIPlanPtr tracked_schema_plan = NULL;
	Oid			ttypes[2] = {NAMEOID, OIDOID};
	Datum		targs[2];

	EltPrepare(&tracked_schema_plan,
			   "UPDATE elt.tracked_tables t SET schema_name = $1"
			   " FROM pg_class c WHERE c.oid = t.relid AND c.relnamespace = $2",
			   2, ttypes);
	targs[0] = DirectFunctionCall1(namein, CStringGetDatum(newname));
	targs[1] = ObjectIdGetDatum(nspoid);
	EltExec(tracked_schema_plan, targs, NULL, 0);
}
