/*
 * migrations.c — the change protocol of the contracts engine: approvers,
 * migration windows, registered consumers.
 *
 * Owns: elt.approvers, elt.migration_windows, elt.consumer_registrations;
 * the settings elt.migration and elt.approved_by (defined in _PG_init);
 * EltContractsReady (whether the catalog has these tables yet).
 *
 * Calls: audit.c, roles.c, settings.c (elt.reason), util.c, util_json.c.
 * The contracts_*.c files and versions_store.c (EltMigrationJoin)
 * call into this one (EltCurrentMigration, EltContractsReady,
 * EltForgetConsumers), never the other way.
 *
 * A migration window belongs to the session that opened it: the open
 * migration's id lives in this backend's memory (never in a setting a user
 * could change), so a window open in one session lets nothing through in
 * another.  The row in elt.migration_windows is written in the caller's
 * transaction; if that transaction (or the subtransaction that opened or
 * closed the window) rolls back, the session's state rolls back with it.
 * A session that ends with a window open leaves it open in the catalog; the
 * view elt.migrations shows it as 'abandoned'.
 *
 * approved_by must be listed in elt.approvers.  With
 * elt.require_second_approver off it is a name that is recorded and audited,
 * not authenticated.  With it on, it must differ from the session user, and
 * the approver must have approved a migration of that name in their own
 * session (elt.migration_approve, checked against their session user); each
 * approval opens one window.
 *
 * Windows named by settings (for migration tools that run a session per
 * change): with elt.migration set, the first governed statement of a
 * session (EltMigrationJoin, from the capture and contracts engines) joins
 * the open window opened through the settings with that name, the same
 * elt.approved_by (or none) and the same session user, or opens one with
 * migration_begin's checks (an approval, under elt.require_second_approver,
 * is used up by the session that opens it; the others join, and under that
 * rule only a window opened with an approval can be joined).  A session
 * that joined leaves the window as soon as it is ended (in any session) or
 * its approver is removed: its next governed statement joins or opens one
 * again, with these checks.  Such a
 * window is not tied to a session: it stays open until elt.migration_end()
 * runs in a session with the same settings.  Without elt.approved_by it
 * approves nothing (EltCurrentMigration stays 0): it only names the run,
 * and its id is what the run's versions and changes carry.  Opening takes
 * an advisory lock, on a tag no SQL can take, per session user and
 * settings, until the transaction ends, so that sessions starting together
 * open one window.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "audit.h"
#include "migrations.h"
#include "roles.h"
#include "settings.h"
#include "util.h"

/* advisory lock tag field4 of the lock that opens a settings window once */
#define ELT_MIGRATION_JOIN_LOCKTAG 0x4D49

bool		elt_require_second_approver = false;
char	   *elt_migration_setting = NULL;
char	   *elt_approved_by_setting = NULL;

/*
 * This session's migration state: the approved window open in it (0: none),
 * the window its changes carry (the approved one, or a named window joined
 * through elt.migration without approval; 0: none), and, for a window
 * joined through the settings, the settings it was joined with.
 */
typedef struct MigrationState
{
	int64		approved;
	int64		window;
	char	   *key;			/* "name\napprover" (TopMemoryContext), or NULL */
} MigrationState;

static MigrationState state = {0, 0, NULL};

/* Changes of the state in the open transaction, to undo on abort. */
typedef struct MigrationChange
{
	SubTransactionId subid;
	MigrationState before;
} MigrationChange;

static List *changes = NIL;

/* Change this session's migration state, undoably. */
static void
set_state(int64 approved, int64 window, const char *key)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	MigrationChange *ch = palloc(sizeof(MigrationChange));

	ch->subid = GetCurrentSubTransactionId();
	ch->before = state;
	changes = lappend(changes, ch);
	state.approved = approved;
	state.window = window;
	state.key = key ? pstrdup(key) : NULL;
	MemoryContextSwitchTo(old);
}

/* Open this session's approved window, undoably. */
static void
set_current_migration(int64 id)
{
	set_state(id, id, NULL);
}

/* End of a transaction: keep the window's changes, or undo them. */
static void
migration_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (changes != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that began or ended a migration"),
						 errhint("Begin and end migrations in ordinary transactions.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (changes != NIL)
				state = ((MigrationChange *) linitial(changes))->before;
			list_free_deep(changes);
			changes = NIL;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			list_free_deep(changes);
			changes = NIL;
			break;
		default:
			break;
	}
}

/* End of a subtransaction: hand its changes to the parent, or undo them. */
static void
migration_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (changes == NIL)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, changes)
		{
			MigrationChange *ch = (MigrationChange *) lfirst(lc);

			if (ch->subid == mySubid)
				ch->subid = parentSubid;
		}
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* changes of this subtransaction are the last ones in the list */
		foreach(lc, changes)
		{
			MigrationChange *ch = (MigrationChange *) lfirst(lc);

			if (ch->subid == mySubid)
			{
				int			keep = foreach_current_index(lc);
				int			j;

				state = ch->before;
				for (j = keep; j < list_length(changes); j++)
					pfree(list_nth(changes, j));
				changes = list_truncate(changes, keep);
				break;
			}
		}
	}
}

/* Register the transaction callbacks; called once from _PG_init. */
void
EltMigrationsInit(void)
{
	RegisterXactCallback(migration_xact_callback, NULL);
	RegisterSubXactCallback(migration_subxact_callback, NULL);
}

/* The id of the migration open in this session, or 0. */
int64
EltCurrentMigration(void)
{
	return state.approved;
}
/*
 * Whether the catalog has the contracts tables (extension at 0.2.0 or
 * later): elt.schema_changes, elt.consumer_registrations and the migration
 * tables came in the same version step.
 */
bool
EltContractsReady(void)
{
	return OidIsValid(EltCatalogRelid("schema_changes"));
}

/* Only elt_admin, the extension owner's members and superusers manage approvers. */
static void
require_catalog_owner(const char *what)
{
	if (!EltRoleIsAdmin(GetUserId()) && !has_privs_of_role(GetUserId(), EltExtensionOwner()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errhint("Only members of %s, of the role that owns the extension (%s) and superusers may do it.",
						 ELT_ROLE_ADMIN, GetUserNameFromId(EltExtensionOwner(), false))));
}

PG_FUNCTION_INFO_V1(elt_approver_add);
Datum
elt_approver_add(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	char	   *approver = EltRequiredText(fcinfo, 0, "approver");
	char	   *note = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	Oid			argtypes[3] = {TEXTOID, NAMEOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	EltCatalogWrite cw;
	EltJson		details;

	EltRequireCatalog("schema_changes");
	require_catalog_owner("add an approver");
	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "INSERT INTO elt.approvers (approver, added_by, added_at, note)"
			   " VALUES ($1, $2, pg_catalog.now(), $3) ON CONFLICT (approver) DO NOTHING",
			   3, argtypes);
	values[0] = CStringGetTextDatum(approver);
	values[1] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(cw.actor, false)));
	if (note)
		values[2] = CStringGetTextDatum(note);
	else
		nulls[2] = 'n';
	EltExec(plan, values, nulls, 0);
	if (SPI_processed == 0)
		ereport(NOTICE,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("\"%s\" is already an approver, skipping", approver)));
	else
	{
		EltJsonBegin(&details);
		EltJsonString(&details, "approver", approver);
		EltJsonString(&details, "note", note);
		EltAuditRecord(cw.actor, "approver_added", approver, EltJsonFinish(&details),
					   EltAuditReason(note));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(elt_approver_remove);
Datum
elt_approver_remove(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	char	   *approver = EltRequiredText(fcinfo, 0, "approver");
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	EltCatalogWrite cw;
	EltJson		details;

	EltRequireCatalog("schema_changes");
	require_catalog_owner("remove an approver");
	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan, "DELETE FROM elt.approvers WHERE approver = $1", 1, argtypes);
	values[0] = CStringGetTextDatum(approver);
	EltExec(plan, values, NULL, 0);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("\"%s\" is not an approver", approver),
				 errhint("SELECT * FROM elt.approvers lists the approvers.")));
	EltJsonBegin(&details);
	EltJsonString(&details, "approver", approver);
	EltAuditRecord(cw.actor, "approver_removed", approver, EltJsonFinish(&details),
				   EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_VOID();
}

/* Whether the catalog has windows opened through settings (0.8.0 on). */
static bool
settings_ready(void)
{
	return get_attnum(EltCatalogRelid("migration_windows"), "opened_via") != InvalidAttrNumber;
}

/*
 * Open a migration window in the catalog context and audit it: approved_by
 * (NULL for a named window opened through elt.migration without approval)
 * must be in elt.approvers, and with elt.require_second_approver on it must
 * differ from the session user and have approved a migration of that name
 * for the session user, an approval this window uses up.  via_settings:
 * opened through elt.migration and elt.approved_by, for every session of
 * the same session user with the same settings to join.
 */
static int64
open_window(EltCatalogWrite *cw, const char *name, const char *reason,
			const char *approved_by, bool via_settings)
{
	static SPIPlanPtr approver_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr old_insert_plan = NULL;
	static SPIPlanPtr approval_plan = NULL;
	static SPIPlanPtr use_plan = NULL;
	SPIPlanPtr	plan;
	int64		approval_id = 0;
	char	   *session_user = GetUserNameFromId(GetSessionUserId(), false);
	Oid			argtypes[8] = {TEXTOID, TEXTOID, TEXTOID, NAMEOID, NAMEOID, INT4OID,
	TIMESTAMPTZOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Datum		args[1];
	Oid			argtypes1[1] = {TEXTOID};
	EltJson		details;
	bool		isnull;
	int64		id;

	if (approved_by != NULL && elt_require_second_approver &&
		strcmp(approved_by, session_user) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("migration \"%s\" cannot be approved by the session user \"%s\"",
						name, session_user),
				 errdetail("elt.require_second_approver is on."),
				 errhint("Ask another approver (SELECT * FROM elt.approvers).")));
	if (approved_by != NULL)
	{
		EltPrepare(&approver_plan, "SELECT 1 FROM elt.approvers WHERE approver = $1",
				   1, argtypes1);
		args[0] = CStringGetTextDatum(approved_by);
		EltExecLatest(approver_plan, args, NULL, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("\"%s\" is not an approver", approved_by),
					 errhint("SELECT * FROM elt.approvers lists who may approve; a superuser adds one with elt.approver_add().")));
	}
	if (approved_by != NULL && elt_require_second_approver)
	{
		Oid			atypes[3] = {TEXTOID, TEXTOID, TEXTOID};
		Datum		aargs[3];

		EltPrepare(&approval_plan,
				   "SELECT approval_id FROM elt.migration_approvals"
				   " WHERE name = $1 AND approver = $2 AND requested_by = $3"
				   "   AND migration_id IS NULL"
				   " ORDER BY approval_id LIMIT 1 FOR UPDATE",
				   3, atypes);
		aargs[0] = CStringGetTextDatum(name);
		aargs[1] = CStringGetTextDatum(approved_by);
		aargs[2] = CStringGetTextDatum(session_user);
		EltExec(approval_plan, aargs, NULL, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("migration \"%s\" has no approval from \"%s\" for \"%s\"",
							name, approved_by, session_user),
					 errdetail("elt.require_second_approver is on."),
					 errhint("Ask %s to run SELECT elt.migration_approve(%s, %s) in their own session.",
							 approved_by, quote_literal_cstr(name),
							 quote_literal_cstr(session_user))));
		approval_id = EltSpiGetInt64(0, "approval_id", &isnull);
	}

	if (!settings_ready())
	{
		if (via_settings)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("elt.migration needs elt_governance 0.8.0 or later in this database"),
					 errhint("Run ALTER EXTENSION elt_governance UPDATE, or reset elt.migration.")));
		/* a catalog from before 0.8.0: every window is opened by the function */
		EltPrepare(&old_insert_plan,
				   "INSERT INTO elt.migration_windows (name, reason, approved_by, opened_by,"
				   " role, backend_pid, backend_start, opened_at)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, pg_catalog.now())"
				   " RETURNING migration_id",
				   7, argtypes);
		plan = old_insert_plan;
	}
	else
	{
		EltPrepare(&insert_plan,
				   "INSERT INTO elt.migration_windows (name, reason, approved_by, opened_by,"
				   " role, backend_pid, backend_start, opened_at, opened_via)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, pg_catalog.now(), $8)"
				   " RETURNING migration_id",
				   8, argtypes);
		plan = insert_plan;
	}
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(reason);
	if (approved_by != NULL)
		values[2] = CStringGetTextDatum(approved_by);
	else
		nulls[2] = 'n';
	values[3] = DirectFunctionCall1(namein, CStringGetDatum(session_user));
	values[4] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(cw->actor, false)));
	values[5] = Int32GetDatum(MyProcPid);
	values[6] = TimestampTzGetDatum(MyStartTimestamp);
	values[7] = CStringGetTextDatum(via_settings ? "settings" : "function");
	if (EltExec(plan, values, nulls, 1) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not insert into elt.migration_windows");
	id = EltSpiGetInt64(0, "migration_id", &isnull);
	if (approval_id > 0)
	{
		Oid			utypes[2] = {INT8OID, INT8OID};
		Datum		uargs[2];

		EltPrepare(&use_plan,
				   "UPDATE elt.migration_approvals SET migration_id = $2 WHERE approval_id = $1",
				   2, utypes);
		uargs[0] = Int64GetDatum(approval_id);
		uargs[1] = Int64GetDatum(id);
		EltExec(use_plan, uargs, NULL, 0);
	}

	EltJsonBegin(&details);
	EltJsonInt(&details, "migration_id", id);
	EltJsonString(&details, "name", name);
	EltJsonString(&details, "approved_by", approved_by);
	EltJsonString(&details, "opened_by", session_user);
	if (approval_id > 0)
		EltJsonInt(&details, "approval_id", approval_id);
	if (via_settings)
		EltJsonString(&details, "via", "settings");
	EltAuditRecord(cw->actor, "migration_begun", name, EltJsonFinish(&details), reason);
	return id;
}

PG_FUNCTION_INFO_V1(elt_migration_begin);
Datum
elt_migration_begin(PG_FUNCTION_ARGS)
{
	char	   *name = EltRequiredText(fcinfo, 0, "name");
	char	   *reason = EltRequiredText(fcinfo, 1, "reason");
	char	   *approved_by = EltRequiredText(fcinfo, 2, "approved_by");
	EltCatalogWrite cw;
	int64		id;

	EltRequireCatalog("schema_changes");
	if (state.approved != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration %lld is already open in this session",
						(long long) state.approved),
				 errhint("End it with SELECT elt.migration_end() before beginning another.")));
	EltCatalogWriteBegin(&cw);
	id = open_window(&cw, name, reason, approved_by, false);
	EltCatalogWriteEnd(&cw);
	set_current_migration(id);
	PG_RETURN_INT64(id);
}

/* ------------------------------------------------------------------------
 * Migrations named by settings: elt.migration and elt.approved_by
 * ------------------------------------------------------------------------
 */

/* Whether a setting holds a value (set and not empty). */
static bool
setting_given(const char *value)
{
	return value != NULL && value[0] != '\0';
}

/* "name\napprover" of the settings now, or NULL when elt.migration is unset. */
static char *
settings_key(void)
{
	if (!setting_given(elt_migration_setting))
		return NULL;
	return psprintf("%s\n%s", elt_migration_setting,
					setting_given(elt_approved_by_setting) ? elt_approved_by_setting : "");
}

/*
 * The open window the settings name for this session user: opened through
 * the settings, of that name and approver (or none), not closed.  0 if
 * none.  In the catalog context.
 */
static int64
find_settings_window(void)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, NAMEOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;

	if (!settings_ready())
		return 0;
	EltPrepare(&plan,
			   "SELECT migration_id FROM elt.migration_windows"
			   " WHERE name = $1 AND approved_by IS NOT DISTINCT FROM $2"
			   "   AND opened_by = $3 AND opened_via = 'settings' AND closed_at IS NULL"
			   " ORDER BY migration_id DESC LIMIT 1",
			   3, argtypes);
	args[0] = CStringGetTextDatum(elt_migration_setting);
	if (setting_given(elt_approved_by_setting))
		args[1] = CStringGetTextDatum(elt_approved_by_setting);
	else
		nulls[1] = 'n';
	args[2] = DirectFunctionCall1(namein,
								  CStringGetDatum(GetUserNameFromId(GetSessionUserId(), false)));
	EltExecLatest(plan, args, nulls, 1);
	if (SPI_processed == 0)
		return 0;
	return EltSpiGetInt64(0, "migration_id", &isnull);
}

/*
 * The window this session's changes carry, joining or opening the one that
 * elt.migration and elt.approved_by name if the session has none yet (see
 * the file header).  Called in the catalog context by the first governed
 * statement of a session; 0 when neither a window nor the settings.
 */
int64
EltMigrationJoin(EltCatalogWrite *cw)
{
	static SPIPlanPtr approver_plan = NULL;
	char	   *key = settings_key();
	const char *approved_by;
	int64		id;

	/* joined through settings that changed since: leave that window */
	if (state.key != NULL && (key == NULL || strcmp(key, state.key) != 0))
		set_state(0, 0, NULL);
	/* joined, and ended or its approver removed since (in any session): leave it */
	if (state.key != NULL && state.window != 0)
	{
		static SPIPlanPtr open_plan = NULL;
		Oid			argtypes1[1] = {INT8OID};
		Datum		args[1];

		EltPrepare(&open_plan,
				   "SELECT 1 FROM elt.migration_windows w"
				   " WHERE w.migration_id = $1 AND w.closed_at IS NULL"
				   "   AND (w.approved_by IS NULL"
				   "        OR EXISTS (SELECT 1 FROM elt.approvers a WHERE a.approver = w.approved_by))",
				   1, argtypes1);
		args[0] = Int64GetDatum(state.window);
		EltExecLatest(open_plan, args, NULL, 1);
		if (SPI_processed == 0)
			set_state(0, 0, NULL);
	}
	if (state.window != 0 || key == NULL)
		return state.window;
	approved_by = setting_given(elt_approved_by_setting) ? elt_approved_by_setting : NULL;

	/* one window per name: sessions that start together open it once */
	{
		LOCKTAG		tag;
		uint32		h = hash_bytes((const unsigned char *) key, strlen(key));

		/* field4 no SQL advisory lock uses: no role can hold it to stall a deploy */
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, h, GetSessionUserId(),
							 ELT_MIGRATION_JOIN_LOCKTAG);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
	id = find_settings_window();
	if (id != 0 && approved_by != NULL)
	{
		Oid			argtypes1[1] = {TEXTOID};
		Datum		args[1];

		/* an approver removed since stops every later session from joining */
		EltPrepare(&approver_plan, "SELECT 1 FROM elt.approvers WHERE approver = $1",
				   1, argtypes1);
		args[0] = CStringGetTextDatum(approved_by);
		EltExecLatest(approver_plan, args, NULL, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("\"%s\" is not an approver", approved_by),
					 errdetail("elt.approved_by names \"%s\" for migration \"%s\".",
							   approved_by, elt_migration_setting),
					 errhint("SELECT * FROM elt.approvers lists who may approve; a superuser adds one with elt.approver_add().")));
	}
	if (id != 0 && approved_by != NULL && elt_require_second_approver)
	{
		static SPIPlanPtr approval_plan = NULL;
		Oid			argtypes1[1] = {INT8OID};
		Datum		args[1];
		char	   *session_user = GetUserNameFromId(GetSessionUserId(), false);

		/*
		 * A window opened while the rule was off may be self-approved: the
		 * rule holds for every session that joins it, not only the first.
		 */
		EltPrepare(&approval_plan,
				   "SELECT 1 FROM elt.migration_approvals WHERE migration_id = $1",
				   1, argtypes1);
		args[0] = Int64GetDatum(id);
		EltExecLatest(approval_plan, args, NULL, 1);
		if (SPI_processed == 0 || strcmp(approved_by, session_user) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("migration \"%s\" (window %lld) was opened without a second approver",
							elt_migration_setting, (long long) id),
					 errdetail("elt.require_second_approver is on; the window was opened while it was off."),
					 errhint("End the window with SELECT elt.migration_end() under the same settings; then an approver other than %s runs SELECT elt.migration_approve(%s, %s) in their own session, and elt.approved_by names them.",
							 session_user, quote_literal_cstr(elt_migration_setting),
							 quote_literal_cstr(session_user))));
	}
	if (id == 0)
		id = open_window(cw, elt_migration_setting,
						 setting_given(elt_reason) ? elt_reason :
						 (approved_by ? "opened through elt.migration and elt.approved_by" :
						  "opened through elt.migration, without approval"),
						 approved_by, true);
	set_state(approved_by ? id : 0, id, key);
	return id;
}

/*
 * The window this session's changes carry or would carry: the one it has,
 * else the open one its settings name (without opening it).  0 if none.
 * In the catalog context.
 */
int64
EltMigrationWindowPeek(void)
{
	char	   *key = settings_key();

	if (state.window != 0 &&
		(state.key == NULL || (key != NULL && strcmp(key, state.key) == 0)))
		return state.window;
	if (key == NULL)
		return 0;
	return find_settings_window();
}

/*
 * elt.migration_approve(name, requested_by, note): the session user, who
 * must be an approver, approves one migration of that name, to be opened by
 * requested_by's elt.migration_begin() while elt.require_second_approver is
 * on.
 */
PG_FUNCTION_INFO_V1(elt_migration_approve);
Datum
elt_migration_approve(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr approver_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	char	   *name = EltRequiredText(fcinfo, 0, "name");
	char	   *requested_by = EltRequiredText(fcinfo, 1, "requested_by");
	char	   *note = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *approver = GetUserNameFromId(GetSessionUserId(), false);
	Oid			argtypes1[1] = {TEXTOID};
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	EltCatalogWrite cw;
	EltJson		details;
	bool		isnull;
	int64		id;

	EltRequireCatalog("schema_changes");
	EltCatalogWriteBegin(&cw);
	EltPrepare(&approver_plan, "SELECT 1 FROM elt.approvers WHERE approver = $1",
			   1, argtypes1);
	values[0] = CStringGetTextDatum(approver);
	EltExecLatest(approver_plan, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("session user \"%s\" is not an approver", approver),
				 errhint("SELECT * FROM elt.approvers lists who may approve; a superuser adds one with elt.approver_add().")));
	if (strcmp(requested_by, approver) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("an approver cannot approve their own migration"),
				 errhint("Name the session user who will run elt.migration_begin().")));
	EltPrepare(&insert_plan,
			   "INSERT INTO elt.migration_approvals (name, approver, requested_by, note, approved_at)"
			   " VALUES ($1, $2, $3, $4, pg_catalog.now()) RETURNING approval_id",
			   4, argtypes);
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(approver);
	values[2] = CStringGetTextDatum(requested_by);
	if (note)
		values[3] = CStringGetTextDatum(note);
	else
		nulls[3] = 'n';
	if (EltExec(insert_plan, values, nulls, 1) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not insert into elt.migration_approvals");
	id = EltSpiGetInt64(0, "approval_id", &isnull);
	EltJsonBegin(&details);
	EltJsonInt(&details, "approval_id", id);
	EltJsonString(&details, "approver", approver);
	EltJsonString(&details, "requested_by", requested_by);
	EltAuditRecord(cw.actor, "migration_approved", name, EltJsonFinish(&details),
				   EltAuditReason(note));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(elt_migration_end);
Datum
elt_migration_end(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	EltCatalogWrite cw;
	EltJson		details;
	int64		id;
	char	   *name;

	EltRequireCatalog("schema_changes");
	EltCatalogWriteBegin(&cw);
	id = EltMigrationWindowPeek();
	if (id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no migration is open in this session"),
				 errhint("Begin one with SELECT elt.migration_begin(name, reason, approved_by).")));
	EltPrepare(&plan,
			   "UPDATE elt.migration_windows SET closed_at = pg_catalog.now()"
			   " WHERE migration_id = $1 AND closed_at IS NULL RETURNING name",
			   1, argtypes);
	values[0] = Int64GetDatum(id);
	EltExec(plan, values, NULL, 1);
	if (SPI_processed != 1)
		elog(ERROR, "migration " INT64_FORMAT " is not open in elt.migration_windows", id);
	name = EltSpiGetText(0, "name");
	EltJsonBegin(&details);
	EltJsonInt(&details, "migration_id", id);
	EltAuditRecord(cw.actor, "migration_ended", name, EltJsonFinish(&details),
				   EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);

	set_state(0, 0, NULL);
	PG_RETURN_INT64(id);
}

/*
 * elt._backend_alive(pid, started): whether the session that opened a
 * window still runs.  Read from the backend status array directly, because
 * pg_stat_activity hides other roles' backend_start from roles without
 * pg_read_all_stats.
 */
PG_FUNCTION_INFO_V1(elt_backend_alive);
Datum
elt_backend_alive(PG_FUNCTION_ARGS)
{
	int32		pid = PG_GETARG_INT32(0);
	TimestampTz started = PG_GETARG_TIMESTAMPTZ(1);
	int			n = pgstat_fetch_stat_numbackends();
	int			i;

	for (i = 1; i <= n; i++)
	{
		PgBackendStatus *be = EltBackendStatusByIndex(i);

		if (be != NULL && be->st_procpid == pid &&
			be->st_proc_start_timestamp == started)
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}

PG_FUNCTION_INFO_V1(elt_migration_current);
Datum
elt_migration_current(PG_FUNCTION_ARGS)
{
	if (state.approved == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(state.approved);
}

/* ------------------------------------------------------------------------
 * Registered consumers
 * ------------------------------------------------------------------------
 */

/* Lock a relation against DROP and check it is one with columns. */
static void
lock_consumed_relation(Oid relid)
{
	char		relkind;

	LockRelationOid(relid, AccessShareLock);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table, view, materialized view or foreign table",
						get_rel_name(relid)),
				 errhint("Register consumers of the relations they read.")));
}

PG_FUNCTION_INFO_V1(elt_consumer_register);
Datum
elt_consumer_register(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			relid;
	char	   *consumer;
	Datum	   *elems = NULL;
	bool	   *elnulls = NULL;
	int			nelems = 0;
	int			i;
	bool		table_select;
	Oid			argtypes[4] = {OIDOID, TEXTOID, TEXTARRAYOID, NAMEOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	EltCatalogWrite cw;
	EltJson		details;
	char	   *object;

	EltRequireCatalog("schema_changes");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel must not be null")));
	relid = PG_GETARG_OID(0);
	consumer = EltRequiredText(fcinfo, 1, "consumer");
	lock_consumed_relation(relid);
	object = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										get_rel_name(relid));

	table_select = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
	if (!PG_ARGISNULL(2))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(2);

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("columns must be a one-dimensional array")));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elnulls, &nelems);
		if (nelems == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("columns must not be empty"),
					 errhint("Pass NULL for a consumer of every column.")));
		for (i = 0; i < nelems; i++)
		{
			char	   *col;
			AttrNumber	attnum;
			int			j;

			if (elnulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("columns must not contain nulls")));
			col = TextDatumGetCString(elems[i]);
			attnum = get_attnum(relid, col);
			if (attnum <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation %s does not exist", col, object),
						 errhint("Name the columns as the relation has them now.")));
			for (j = 0; j < i; j++)
			{
				if (strcmp(col, TextDatumGetCString(elems[j])) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("column \"%s\" is listed twice", col)));
			}
			if (!table_select &&
				pg_attribute_aclcheck(relid, attnum, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied to register a consumer of column %s.%s",
								object, quote_identifier(col)),
						 errhint("A consumer can be registered only by a role that may read what it reads.")));
		}
	}
	else if (!table_select)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to register a consumer of %s", object),
				 errhint("A consumer can be registered only by a role that may read what it reads.")));

	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "INSERT INTO elt.consumer_registrations"
			   " (rel, consumer, columns, registered_by, registered_at)"
			   " VALUES ($1::pg_catalog.regclass, $2, $3, $4, pg_catalog.now())"
			   " ON CONFLICT (rel, consumer) DO UPDATE"
			   " SET columns = EXCLUDED.columns, registered_by = EXCLUDED.registered_by,"
			   "     registered_at = EXCLUDED.registered_at",
			   4, argtypes);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(consumer);
	if (PG_ARGISNULL(2))
		nulls[2] = 'n';
	else
		values[2] = PG_GETARG_DATUM(2);
	values[3] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(cw.actor, false)));
	EltExec(plan, values, nulls, 0);

	EltJsonBegin(&details);
	EltJsonString(&details, "consumer", consumer);
	if (!PG_ARGISNULL(2))
	{
		EltJsonBeginArray(&details, "columns");
		for (i = 0; i < nelems; i++)
			EltJsonString(&details, NULL, TextDatumGetCString(elems[i]));
		EltJsonEndArray(&details);
	}
	EltAuditRecord(cw.actor, "consumer_registered", object, EltJsonFinish(&details),
				   EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(elt_consumer_unregister);
Datum
elt_consumer_unregister(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr find_plan = NULL;
	static SPIPlanPtr delete_plan = NULL;
	Oid			relid;
	char	   *consumer;
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	EltCatalogWrite cw;
	EltJson		details;
	char	   *object;
	char	   *registered_by;
	char	   *me = GetUserNameFromId(GetUserId(), false);

	EltRequireCatalog("schema_changes");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel must not be null")));
	relid = PG_GETARG_OID(0);
	consumer = EltRequiredText(fcinfo, 1, "consumer");
	lock_consumed_relation(relid);
	object = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										get_rel_name(relid));

	EltCatalogWriteBegin(&cw);
	EltPrepare(&find_plan,
			   "SELECT registered_by::text AS registered_by FROM elt.consumer_registrations"
			   " WHERE rel = $1::pg_catalog.regclass AND consumer = $2 FOR UPDATE",
			   2, argtypes);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(consumer);
	EltExec(find_plan, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("consumer \"%s\" of %s is not registered", consumer, object),
				 errhint("SELECT * FROM elt.consumers WHERE kind = 'registered' lists them.")));
	registered_by = EltSpiGetText(0, "registered_by");
	if (strcmp(registered_by, me) != 0 && !EltRoleIsAdmin(cw.actor) &&
		!pg_class_ownercheck(relid, cw.actor))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to unregister consumer \"%s\" of %s", consumer, object),
				 errhint("The role that registered it (%s), the owner of the relation, members of %s and superusers may.",
						 registered_by, ELT_ROLE_ADMIN)));
	EltPrepare(&delete_plan,
			   "DELETE FROM elt.consumer_registrations"
			   " WHERE rel = $1::pg_catalog.regclass AND consumer = $2",
			   2, argtypes);
	EltExec(delete_plan, values, NULL, 0);

	EltJsonBegin(&details);
	EltJsonString(&details, "consumer", consumer);
	EltAuditRecord(cw.actor, "consumer_unregistered", object, EltJsonFinish(&details),
				   EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_VOID();
}

/*
 * A relation was dropped: its registrations go with it (a dangling regclass
 * would break pg_dump), each recorded in the audit log.  Inside the catalog
 * write context.
 */
void
EltForgetConsumers(EltCatalogWrite *cw, Oid relid, const char *object)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	uint64		i;
	uint64		n;
	SPITupleTable *tt;

	if (!EltContractsReady())
		return;
	EltPrepare(&plan,
			   "DELETE FROM elt.consumer_registrations WHERE rel = $1::pg_catalog.regclass"
			   " RETURNING consumer",
			   1, argtypes);
	values[0] = ObjectIdGetDatum(relid);
	EltExec(plan, values, NULL, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		EltJson		details;

		EltJsonBegin(&details);
		EltJsonString(&details, "consumer", SPI_getvalue(tt->vals[i], tt->tupdesc, 1));
		EltJsonString(&details, "cause", "relation dropped");
		EltAuditRecord(cw->actor, "consumer_unregistered", object, EltJsonFinish(&details),
					   EltAuditReason(NULL));
	}
}
