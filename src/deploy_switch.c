/*
 * deploy_switch.c — switching the views of a deployment interface:
 * elt.deploy_promote(), elt.deploy_rollback(), elt.deploy_canary(),
 * elt.deploy_canary_stop() and elt._canary(), the gates a promotion and a
 * canary pass first (shape_gate, and the checks through checks.c), and
 * the settings elt.deploy_lock_timeout and elt.deploy_lock_retries.
 *
 * Layering: called from the entry point (EltDeployInit) and through SQL;
 * calls deploy.c for what both halves of the engine share (deploy_int.h:
 * reading and locking the interface, the row level security refusal,
 * grants of a new view, the event log), checks.c for the gates and
 * migrations.c for the current migration (contracts.h); below those,
 * audit.c and util*.c (util_subxact.c for the lock attempts, util_json.c
 * for the event details).
 * deploy.c never calls this file.
 *
 * Privileges: as in deploy.c — the views are replaced as the caller, the
 * catalog rows and the audit written as the extension's owner
 * (EltCatalogWriteBegin); a new or remade view gets its table's owner and
 * grants.  Nothing here runs code of another role with the caller's
 * rights: views are column references over a table, the canary's add only
 * elt._canary, the gates run each check as its owner (checks.c), and views
 * elsewhere made again after a forced switch are made as their owners
 * (deploy.c), when the caller has their privileges.
 *
 * Locking: a switch first locks the interface's row FOR UPDATE
 * (EltDeployLoadInterface), so the deployments of an interface change one
 * at a time; then it takes ACCESS EXCLUSIVE locks on every view of the
 * interface (lock_views: never waiting long for one while holding others,
 * so that it closes no lock cycle with readers, each attempt in a
 * subtransaction that gives every lock back when it fails, and retried),
 * then replaces the views in the same transaction, so a query sees either
 * every old definition or every new one.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "citus.h"
#include "checks.h"
#include "migrations.h"
#include "deploy.h"
#include "deploy_int.h"
#include "util.h"

static int	deploy_lock_timeout_ms = 500;
static int	deploy_lock_retries = 20;

/* Settings. */
void
EltDeployInit(void)
{
	DefineCustomIntVariable("elt.deploy_lock_timeout",
							"How long a promotion, rollback or canary switch waits for a view of the interface while it holds none.",
							"Readers that come meanwhile queue behind it, so none waits longer; then the attempt is given up and retried (elt.deploy_lock_retries).",
							&deploy_lock_timeout_ms, 500, 1, 60000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("elt.deploy_lock_retries",
							"How many times a promotion, rollback or canary switch tries again to lock the interface's views.",
							NULL,
							&deploy_lock_retries, 20, 0, 1000,
							PGC_USERSET, 0, NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Switching the views
 * ---------------------------------------------------------------------
 */

/* What wait_for_lock's subtransaction needs. */
typedef struct LockWait
{
	Oid			relid;
	int			timeout_ms;
} LockWait;

/* The lock request itself, with lock_timeout set for it alone. */
static void
lock_with_timeout(void *arg)
{
	LockWait   *w = arg;
	int			level = NewGUCNestLevel();

	(void) set_config_option("lock_timeout", psprintf("%d", w->timeout_ms),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	LockRelationOid(w->relid, AccessExclusiveLock);
	AtEOXact_GUC(true, level);
}

/*
 * Wait at most timeout_ms for an ACCESS EXCLUSIVE lock on relid, queued like
 * any lock request (readers that come later queue behind it); false when
 * the wait timed out (or was a deadlock's victim).  The lock belongs to
 * the current (sub)transaction.
 */
static bool
wait_for_lock(Oid relid, int timeout_ms)
{
	LockWait	w = {relid, timeout_ms};
	ErrorData  *e = EltTrySubxact(lock_with_timeout, &w);

	if (e == NULL)
		return true;
	if (e->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE && e->sqlerrcode != ERRCODE_T_R_DEADLOCK_DETECTED)
		ReThrowError(e);
	FreeErrorData(e);
	return false;
}

/*
 * Lock the interface's views in ACCESS EXCLUSIVE mode, all of them, without
 * ever making a reader fail or wait long.
 *
 * Readers lock views in any order (a join, a UNION ALL, one statement after
 * another in a transaction), so a switch that waited for a view while
 * holding others would close lock cycles with them: readers would stall
 * until the wait timed out, and a deadlock check could cancel a reader.
 * So an attempt takes each view at once if it can; it waits for a view
 * while holding none for up to elt.deploy_lock_timeout (readers that come
 * later queue behind it, the ones before finish), and while holding some
 * only briefly (at most 50 ms, and never so long that a reader it blocks
 * reaches deadlock_timeout).  When that is not enough, the attempt gives
 * every lock back, and the next one starts by waiting for that view: the
 * order adapts to the readers'.  Attempts are retried
 * (elt.deploy_lock_retries) with a growing pause.  Returns the number of
 * attempts.  SPI connected.
 */
static int
lock_views(Oid nsp, const char *interface)
{
	Oid		   *order;
	int			n;
	int			attempt;
	int			slice = Max(1, Min(Min(50, deploy_lock_timeout_ms), DeadlockTimeout / 4));
	uint64		i;

	if (SPI_execute_with_args("SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'v' ORDER BY c.oid",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(nsp)}, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "listing views failed");
	n = (int) SPI_processed;
	if (n == 0)
		return 0;
	order = palloc(sizeof(Oid) * n);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		order[i] = DatumGetObjectId(EltSpiGetDatum(i, "oid", &isnull));
	}
	for (attempt = 1;; attempt++)
	{
		EltSubxact	sub;
		int			contended = -1;
		bool		holding = false;
		TimestampTz since = GetCurrentTimestamp();
		int			k;

		EltSubxactBegin(&sub);
		for (k = 0; k < n && contended < 0; k++)
		{
			bool		locked;

			if (ConditionalLockRelationOid(order[k], AccessExclusiveLock))
				locked = true;
			else if (!holding)
				locked = wait_for_lock(order[k], deploy_lock_timeout_ms);

			/*
			 * Readers may have queued behind this attempt since it began:
			 * wait while holding locks only while none of them can have
			 * reached deadlock_timeout (its deadlock check could then find
			 * a cycle through this wait and cancel the reader).
			 */
			else if (TimestampDifferenceExceeds(since, GetCurrentTimestamp(), DeadlockTimeout / 2 - slice))
				locked = false;
			else
				locked = wait_for_lock(order[k], slice);
			if (!locked)
				contended = k;
			holding = holding || locked;
		}
		if (contended < 0)
		{
			EltSubxactCommit(&sub);
			return attempt;
		}
		EltSubxactRollback(&sub);
		if (attempt > deploy_lock_retries)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not lock the views of interface \"%s\" after %d attempts", interface, attempt),
					 errdetail("Queries held them through every attempt; the last one could not lock %s.",
							   EltRelDisplayName(order[contended])),
					 errhint("pg_locks and pg_stat_activity show who holds it. Try again later, or raise elt.deploy_lock_timeout or elt.deploy_lock_retries.")));
		/* next, wait for that view first, holding nothing */
		{
			Oid			v = order[contended];

			memmove(order + 1, order, sizeof(Oid) * contended);
			order[0] = v;
		}
		/*
		 * A growing pause, so that the readers that hold the views finish;
		 * with jitter, so that two switches do not keep meeting.
		 */
		pg_usleep(Min(attempt, 10) * 20000L + (long) pg_prng_uint64_range(&pg_global_prng_state, 0, 20000));
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Point every view of the interface at the tables of schema target.  A
 * view keeps its columns in order (its dependents use them): a column the
 * target lacks reads NULL (a rollback to a version before a column was
 * added); the target's other columns are appended.  A table the target
 * lacks (forced promotions only) loses its view; a new table gets one.
 * With a column of another type (forced only), the view is made again;
 * views elsewhere built on it (and on those) are dropped with it and made
 * again after it, as their owners, with their grants and comments
 * (deploy.c), their checks following them through *remade; other objects
 * that depend on it make it fail.  A new or remade view gets its
 * table's owner, grants, column grants and comments; a repointed view keeps
 * its own, and the columns appended to it get the table's column grants.
 * Writes what changed into the open array of views, one object a view; the
 * views made again go into *remade, allocated in keep (which outlives the
 * SPI connection).  SPI connected, views locked.
 */
static void
point_views(Oid nsp, const char *interface, const char *target, bool allow_drop, List **remade,
			MemoryContext keep, EltJson *views)
{
	uint64		i;
	List	   *stmts = NIL;
	List	   *grants = NIL;
	List	   *added_grants = NIL;
	Oid		   *retyped_views;
	int			n_retyped = 0;
	List	   *outside = NIL;
	MemoryContext outer = CurrentMemoryContext;
	ListCell   *lc;

	if (SPI_execute_with_args("SELECT coalesce(v.relname, t.relname) AS name, v.oid IS NULL AS no_view, t.oid AS tab, v.oid AS view,"
							  " k.cols AS kept,"
							  " (SELECT pg_catalog.string_agg(pg_catalog.format('%I', tc.name), ', ' ORDER BY tc.attnum)"
							  "  FROM elt._deploy_columns(t.oid) tc"
							  "  WHERE v.oid IS NULL OR tc.name NOT IN (SELECT vc.name FROM elt._deploy_columns(v.oid) vc)) AS added,"
							  " (SELECT pg_catalog.array_agg(tc.name) FROM elt._deploy_columns(t.oid) tc"
							  "  WHERE tc.name NOT IN (SELECT vc.name FROM elt._deploy_columns(v.oid) vc))::text AS added_names,"
							  " k.retyped"
							  " FROM (SELECT c.oid, c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'v') v"
							  " FULL JOIN (SELECT c.oid, c.relname FROM pg_catalog.pg_class c"
							  "            WHERE c.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($2))"
							  "              AND c.relkind IN ('r', 'p') AND NOT c.relispartition) t ON t.relname = v.relname"
							  " LEFT JOIN LATERAL elt._deploy_kept_columns(v.oid, t.oid) k ON true"
							  " ORDER BY 1",
							  2, (Oid[]) {OIDOID, TEXTOID},
							  (Datum[]) {ObjectIdGetDatum(nsp), CStringGetTextDatum(target)}, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the views failed");
	retyped_views = palloc(sizeof(Oid) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = EltSpiGetText(i, "name");
		bool		isnull_t,
					isnull;
		bool		no_view = EltSpiGetBool(i, "no_view", &isnull);
		Datum		tab = EltSpiGetDatum(i, "tab", &isnull_t);
		char	   *kept = EltSpiGetText(i, "kept");
		char	   *added = EltSpiGetText(i, "added");
		bool		retyped = EltSpiGetBool(i, "retyped", &isnull);
		char	   *qview = quote_qualified_identifier(interface, name);
		char	   *qtab = quote_qualified_identifier(target, name);
		char	   *cols;
		const char *what;

		if (isnull_t)
		{
			if (!allow_drop)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("schema \"%s\" has no table \"%s\" for the view %s", target, name, qview)));
			stmts = lappend(stmts, psprintf("DROP VIEW %s", qview));
			what = "view dropped";
		}
		else if (no_view || retyped)
		{
			if (retyped && !allow_drop)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("table %s changes the type of a column of the view %s", qtab, qview)));
			if (retyped)
			{
				bool		isnull_v;
				Datum		old = EltSpiGetDatum(i, "view", &isnull_v);

				/* its columns as before, in the same order, then the new ones */
				stmts = lappend(stmts, psprintf("DROP VIEW %s", qview));
				retyped_views[n_retyped++] = DatumGetObjectId(old);
				cols = added ? psprintf("%s, %s", kept, added) : kept;
				/* the checks declared on it follow it to the new view */
				{
					MemoryContext cxt = MemoryContextSwitchTo(keep);

					*remade = lappend(*remade, list_make2((void *) (uintptr_t) DatumGetObjectId(old), pstrdup(qview)));
					MemoryContextSwitchTo(cxt);
				}
			}
			else
				cols = added;
			stmts = lappend(stmts, psprintf("CREATE VIEW %s AS SELECT %s FROM %s", qview, cols, qtab));
			grants = lappend(grants, list_make3(MemoryContextStrdup(outer, qview), (void *) (uintptr_t) DatumGetObjectId(tab), NULL));
			what = retyped ? "view made again" : "view created";
		}
		else
		{
			cols = added ? psprintf("%s, %s", kept, added) : kept;
			stmts = lappend(stmts, psprintf("CREATE OR REPLACE VIEW %s AS SELECT %s FROM %s", qview, cols, qtab));
			/* the view keeps its columns' grants; the appended ones get the table's */
			if (added)
				added_grants = lappend(added_grants,
									   list_make3(MemoryContextStrdup(outer, qview),
												  (void *) (uintptr_t) DatumGetObjectId(tab),
												  MemoryContextStrdup(outer, EltSpiGetText(i, "added_names"))));
			what = "view repointed";
		}
		EltJsonBeginObject(views, NULL);
		EltJsonString(views, "view", name);
		EltJsonString(views, "change", what);
		EltJsonEndObject(views);
	}

	/*
	 * Views elsewhere on a view made again (a reporting schema's) are made
	 * again after it, from their definitions, as their owners, with their
	 * grants and comments; their checks follow them too.
	 */
	outside = EltDeployOutsideViews(retyped_views, n_retyped, nsp, interface, true, true, outer);
	if (outside != NIL)
	{
		StringInfoData drop;

		initStringInfo(&drop);
		foreach(lc, outside)
		{
			DeployOutsideView *v = lfirst(lc);

			appendStringInfo(&drop, "%s%s", drop.len > 0 ? ", " : "DROP VIEW ", v->name);
		}
		/* one statement: they may depend on each other */
		stmts = lcons(drop.data, stmts);
	}
	foreach(lc, stmts)
		EltSpiExec(lfirst(lc));
	CommandCounterIncrement();
	foreach(lc, outside)
	{
		DeployOutsideView *v = lfirst(lc);
		MemoryContext cxt;

		EltDeployRemakeOutsideView(v, interface, false);
		CommandCounterIncrement();
		EltJsonBeginObject(views, NULL);
		EltJsonString(views, "view", v->name);
		EltJsonString(views, "change", "dependent view made again");
		EltJsonEndObject(views);
		cxt = MemoryContextSwitchTo(keep);
		*remade = lappend(*remade, list_make2((void *) (uintptr_t) v->oid, pstrdup(v->name)));
		MemoryContextSwitchTo(cxt);
	}
	foreach(lc, grants)
	{
		List	   *g = lfirst(lc);

		EltDeployCopyRelationGrants((Oid) (uintptr_t) lsecond(g), psprintf("TABLE %s", (char *) linitial(g)),
							 linitial(g), true);
	}
	foreach(lc, added_grants)
	{
		List	   *g = lfirst(lc);

		EltDeployExecGenerated("SELECT g FROM elt._column_acl_grants($1, $2, $3::pg_catalog.text[]) g",
					   3, (Oid[]) {OIDOID, TEXTOID, TEXTOID},
					   (Datum[]) {ObjectIdGetDatum((Oid) (uintptr_t) lsecond(g)),
					   CStringGetTextDatum(psprintf("TABLE %s", (char *) linitial(g))),
					   CStringGetTextDatum(lthird(g))});
	}
}

/* ---------------------------------------------------------------------
 * elt.deploy_promote, elt.deploy_rollback
 * ---------------------------------------------------------------------
 */

/*
 * The shape gate: tables of live missing in the candidate, and breaking
 * column changes, as lines of text ("" when compatible).
 */
static char *
shape_gate(const char *interface)
{
	MemoryContext outer = CurrentMemoryContext;
	StringInfoData out;
	uint64		i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT p.name, d.change, d.col, d.before, d.after FROM elt._deploy_pairs($1) p"
							  " LEFT JOIN LATERAL elt._deploy_shape_diff(p.live, p.candidate) d ON p.live IS NOT NULL AND p.candidate IS NOT NULL"
							  " WHERE p.live IS NOT NULL AND (p.candidate IS NULL OR d.compatibility = 'breaking')"
							  " ORDER BY 1, 3",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(interface)}, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "comparing shapes failed");
	initStringInfo(&out);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *change = EltSpiGetText(i, "change");

		if (out.len > 0)
			appendStringInfoChar(&out, '\n');
		if (change == NULL)
			appendStringInfo(&out, "table %s is missing in the candidate", EltSpiGetText(i, "name"));
		else
			appendStringInfo(&out, "%s.%s: %s%s%s%s", EltSpiGetText(i, "name"), EltSpiGetText(i, "col"), change,
							 EltSpiGetText(i, "before") ? " (" : "",
							 EltSpiGetText(i, "before") ? EltSpiGetText(i, "before") : "",
							 EltSpiGetText(i, "before") ? (EltSpiGetText(i, "after") ? psprintf(" -> %s)", EltSpiGetText(i, "after")) : ")") : "");
	}
	out.data = MemoryContextStrdup(outer, out.data);
	SPI_finish();
	return out.data;
}

/*
 * Switch the interface's views to schema target; writes the lock attempts
 * and what changed into event (members lock_attempts and views).  The
 * checks of a view made again move to the new view, each move audited
 * (check_moved) with the switch's reason.
 */
static void
switch_views(Interface *iface, const char *target, bool allow_drop, const char *reason, EltJson *event)
{
	int			attempts;

	MemoryContext outer = CurrentMemoryContext;
	List	   *remade = NIL;
	ListCell   *lc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	attempts = lock_views(iface->nsp, iface->name);
	EltJsonInt(event, "lock_attempts", attempts);
	EltJsonBeginArray(event, "views");
	point_views(iface->nsp, iface->name, target, allow_drop, &remade, outer, event);
	EltJsonEndArray(event);
	SPI_finish();
	if (remade != NIL)
	{
		EltCatalogWrite cw;

		EltCatalogWriteBegin(&cw);
		foreach(lc, remade)
		{
			List	   *r = lfirst(lc);
			Oid			from = (Oid) (uintptr_t) linitial(r);
			uint64		i;

			if (SPI_execute_with_args("UPDATE elt.check_defs SET relation = pg_catalog.to_regclass($2) WHERE relation = $1"
									  " RETURNING check_id, name, relation",
									  2, (Oid[]) {OIDOID, TEXTOID},
									  (Datum[]) {ObjectIdGetDatum(from), CStringGetTextDatum(lsecond(r))},
									  NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
				elog(ERROR, "moving the checks of a view failed");
			/* each move audited, so that audit_verify can replay it */
			for (i = 0; i < SPI_processed; i++)
			{
				EltJson		d;
				bool		isnull;

				EltJsonBegin(&d);
				EltJsonInt(&d, "check_id", EltSpiGetInt64(i, "check_id", &isnull));
				EltJsonString(&d, "name", EltSpiGetText(i, "name"));
				EltJsonInt(&d, "from_relation", from);
				EltJsonInt(&d, "relation", DatumGetObjectId(EltSpiGetDatum(i, "relation", &isnull)));
				EltAuditRecord(cw.actor, "check_moved", lsecond(r), EltJsonFinish(&d), EltAuditReason(reason));
			}
		}
		EltCatalogWriteEnd(&cw);
	}
}

PG_FUNCTION_INFO_V1(elt_deploy_promote);

/*
 * elt.deploy_promote(interface text, reason text, force boolean DEFAULT
 * false) RETURNS bigint: the gates — every error-severity check passes on
 * the candidate, and the candidate's shape is backward compatible with
 * live (unless forced inside an approved migration) — then every view of
 * the interface switched to the candidate in this transaction.  The
 * previous color stays as it is.  Returns the deployment id.
 */
Datum
elt_deploy_promote(PG_FUNCTION_ARGS)
{
	char	   *name = EltDeployInterfaceArg(fcinfo, 0);
	char	   *reason = EltRequiredText(fcinfo, 1, "reason");
	bool		force = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	Interface	iface;
	char	   *candidate;
	char	   *shape;
	char	   *checks;
	char	   *failed;
	char	   *gates;
	EltCatalogWrite cw;
	EltJson		g;
	EltJson		event;

	EltDeployLoadInterface(name, &iface);
	if (iface.last.id == 0 || strcmp(iface.last.state, "prepared") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interface \"%s\" has nothing prepared to promote", name),
				 errhint("Prepare a candidate with elt.deploy_prepare('%s') and build the new version into it.", name)));
	candidate = EltDeployColorSchema(name, iface.last.to_color);
	if (force && EltCurrentMigration() == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a forced promotion needs an approved migration"),
				 errhint("Begin one with elt.migration_begin(name, reason, approved_by) and promote inside it.")));
	EltDeployRefuseRowSecurity(name, "elt.deploy_promote()", EltDeployColorSchema(name, iface.live_color), candidate);

	/* gate 1: the shape */
	shape = shape_gate(name);
	if (shape[0] != '\0' && !force)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the candidate %s is not backward compatible with the live version of \"%s\"", candidate, name),
				 errdetail("%s", shape),
				 errhint("Fix the candidate, or promote with force => true inside an approved migration.")));

	/* gate 2: the checks, run against the candidate */
	checks = EltChecksRunGate(candidate, iface.last.id, &failed);
	if (failed != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("the candidate %s fails checks of severity error", candidate),
				 errdetail("%s", failed),
				 errhint("elt.check_run('%s') shows the failing rows; fix them and promote again.", candidate)));

	EltJsonBegin(&g);
	EltJsonRaw(&g, "checks", checks);
	EltJsonString(&g, "shape", shape[0] ? shape : "compatible");
	EltJsonBool(&g, "forced", force);
	gates = EltJsonFinish(&g);

	EltJsonBegin(&event);
	EltJsonString(&event, "live", candidate);
	EltJsonRaw(&event, "gates", gates);
	switch_views(&iface, candidate, force, reason, &event);
	if (iface.canary != 0)
		EltJsonBool(&event, "canary_ended", true);

	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("UPDATE elt.deploy_interfaces SET live_color = $2, canary_deployment = NULL,"
							  " canary_roles = NULL, canary_percent = NULL WHERE interface = $1",
							  2, (Oid[]) {NAMEOID, TEXTOID},
							  (Datum[]) {CStringGetDatum(name), CStringGetTextDatum(iface.last.to_color)}, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_execute_with_args("UPDATE elt.deployment_defs SET state = 'promoted', promoted_by = $2, promoted_at = pg_catalog.now(),"
							  " promote_reason = $3, forced = $4, gates = $5::pg_catalog.jsonb WHERE deployment_id = $1",
							  5, (Oid[]) {INT8OID, OIDOID, TEXTOID, BOOLOID, TEXTOID},
							  (Datum[]) {Int64GetDatum(iface.last.id), ObjectIdGetDatum(cw.actor), CStringGetTextDatum(reason),
							  BoolGetDatum(force), CStringGetTextDatum(gates)}, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "recording the promotion failed");
	EltDeployRecordEvent(&cw, iface.last.id, name, "deploy_promote", reason, EltJsonFinish(&event));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(iface.last.id);
}

PG_FUNCTION_INFO_V1(elt_deploy_rollback);

/*
 * elt.deploy_rollback(interface text, reason text) RETURNS bigint: switch
 * the views back to the color the last promotion left, in one
 * transaction.  Columns the promotion added read NULL, so that views made
 * on the interface since keep working.
 */
Datum
elt_deploy_rollback(PG_FUNCTION_ARGS)
{
	char	   *name = EltDeployInterfaceArg(fcinfo, 0);
	char	   *reason = EltRequiredText(fcinfo, 1, "reason");
	Interface	iface;
	char	   *previous;
	EltJson		event;
	EltCatalogWrite cw;

	EltDeployLoadInterface(name, &iface);
	if (iface.last.id == 0 || strcmp(iface.last.state, "promoted") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interface \"%s\" has no promotion to roll back", name),
				 errhint("elt.deployments lists its deployments and their states.")));
	previous = EltDeployColorSchema(name, iface.last.from_color);
	if (!OidIsValid(get_namespace_oid(previous, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" of the previous version no longer exists", previous),
				 errhint("It was dropped outside elt.deploy_decommission(); prepare and promote a fixed version instead.")));
	EltDeployRefuseRowSecurity(name, "elt.deploy_rollback()", previous, NULL);
	EltJsonBegin(&event);
	EltJsonString(&event, "live", previous);
	switch_views(&iface, previous, true, reason, &event);

	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("UPDATE elt.deploy_interfaces SET live_color = $2 WHERE interface = $1",
							  2, (Oid[]) {NAMEOID, TEXTOID},
							  (Datum[]) {CStringGetDatum(name), CStringGetTextDatum(iface.last.from_color)}, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_execute_with_args("UPDATE elt.deployment_defs SET state = 'rolled_back', rolled_back_by = $2,"
							  " rolled_back_at = pg_catalog.now(), rollback_reason = $3 WHERE deployment_id = $1",
							  3, (Oid[]) {INT8OID, OIDOID, TEXTOID},
							  (Datum[]) {Int64GetDatum(iface.last.id), ObjectIdGetDatum(cw.actor), CStringGetTextDatum(reason)},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "recording the rollback failed");
	EltDeployRecordEvent(&cw, iface.last.id, name, "deploy_rollback", reason, EltJsonFinish(&event));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(iface.last.id);
}

/* ---------------------------------------------------------------------
 * Canary: some sessions read the candidate
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(elt_deploy_canary_reads);

/*
 * elt._canary(deployment bigint, roles regrole[], percent integer)
 * RETURNS boolean, STABLE: whether this session reads the candidate of a
 * canary.  True when the current role is one of roles or a member of one
 * (superusers only when they are: a pipeline running as a superuser keeps
 * reading live), or when the session falls in the percent share.  The share is drawn from
 * the session's backend slot (the leader's, in a parallel worker; on
 * Citus, the session's global process id, which the workers' connections
 * for it share) and the deployment, so that it holds for the whole
 * session, in parallel workers and on every shard too, and differs
 * between deployments.  The canary's views call it with
 * constants only, so the planner makes it a one-time filter: each query
 * reads one branch.
 */
Datum
elt_deploy_canary_reads(PG_FUNCTION_ARGS)
{
	int64		deployment = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);

	if (!PG_ARGISNULL(1))
	{
		ArrayType  *roles = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(roles, REGROLEOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n; i++)
			if (!nulls[i] && is_member_of_role_nosuper(GetUserId(), DatumGetObjectId(elems[i])))
				PG_RETURN_BOOL(true);
	}
	if (!PG_ARGISNULL(2))
	{
		uint32		session = (uint32) BackendIdForTempRelations();
		int64		gpid;
		uint32		h;

		/*
		 * On Citus the views' filters run on the workers too, in
		 * connections Citus opens for the session: the share is drawn
		 * from the session's global process id, the same there, so that
		 * a session reads every shard of one color
		 */
		if (EltCitusSessionGpid(&gpid))
			session = (uint32) gpid ^ (uint32) (gpid >> 32);
		h = hash_combine(hash_uint32(session),
						 hash_uint32((uint32) deployment ^ (uint32) (deployment >> 32)));

		PG_RETURN_BOOL((int) (h % 100) < PG_GETARG_INT32(2));
	}
	PG_RETURN_BOOL(false);
}

/*
 * Make every view of the interface read the live tables in sessions
 * outside the canary and the candidate's in sessions inside it:
 *   SELECT cols FROM live.t WHERE NOT elt._canary(...)
 *   UNION ALL SELECT cols FROM candidate.t WHERE elt._canary(...)
 * The views keep their columns (the candidate's new columns and tables
 * appear at promotion).  Writes the views' names into the open array
 * views.  SPI connected, views locked, shapes compatible.
 */
static void
canary_views(Oid nsp, const char *interface, const char *live, const char *candidate, const char *pick,
			 EltJson *views)
{
	uint64		i;
	List	   *stmts = NIL;
	ListCell   *lc;

	if (SPI_execute_with_args("SELECT v.relname AS name, l.oid IS NULL AS no_live, c.oid IS NULL AS no_candidate,"
							  " lk.cols AS live_cols, lk.retyped AS live_retyped, ck.cols AS candidate_cols, ck.retyped AS candidate_retyped"
							  " FROM pg_catalog.pg_class v"
							  " LEFT JOIN pg_catalog.pg_class l ON l.relname = v.relname AND l.relkind IN ('r', 'p')"
							  "  AND l.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($2))"
							  " LEFT JOIN pg_catalog.pg_class c ON c.relname = v.relname AND c.relkind IN ('r', 'p')"
							  "  AND c.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($3))"
							  " LEFT JOIN LATERAL elt._deploy_kept_columns(v.oid, l.oid) lk ON true"
							  " LEFT JOIN LATERAL elt._deploy_kept_columns(v.oid, c.oid) ck ON true"
							  " WHERE v.relnamespace = $1 AND v.relkind = 'v' ORDER BY 1",
							  3, (Oid[]) {OIDOID, TEXTOID, TEXTOID},
							  (Datum[]) {ObjectIdGetDatum(nsp), CStringGetTextDatum(live), CStringGetTextDatum(candidate)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the views failed");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = EltSpiGetText(i, "name");
		char	   *qview = quote_qualified_identifier(interface, name);
		bool		isnull;

		if (EltSpiGetBool(i, "no_live", &isnull) || EltSpiGetBool(i, "no_candidate", &isnull))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("schema \"%s\" has no table \"%s\" for the view %s",
							EltSpiGetBool(i, "no_live", &isnull) ? live : candidate, name, qview)));
		if (EltSpiGetBool(i, "live_retyped", &isnull) || EltSpiGetBool(i, "candidate_retyped", &isnull))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("a column of the view %s has another type in %s or %s", qview, live, candidate),
					 errhint("A canary reads both colors through the same view columns.")));
		stmts = lappend(stmts, psprintf("CREATE OR REPLACE VIEW %s AS SELECT %s FROM %s WHERE NOT %s"
										" UNION ALL SELECT %s FROM %s WHERE %s",
										qview, EltSpiGetText(i, "live_cols"), quote_qualified_identifier(live, name), pick,
										EltSpiGetText(i, "candidate_cols"), quote_qualified_identifier(candidate, name), pick));
		EltJsonString(views, NULL, name);
	}
	foreach(lc, stmts)
		EltSpiExec(lfirst(lc));
}

PG_FUNCTION_INFO_V1(elt_deploy_canary);

/*
 * elt.deploy_canary(interface text, roles text[] DEFAULT NULL, percent
 * integer DEFAULT NULL) RETURNS bigint: sessions of the given roles (and
 * of their members), and that share of all sessions, read the prepared
 * candidate through the interface's views; the others read live.  The
 * candidate must be shape-compatible and pass its error-severity checks.
 * Called again, it changes who reads the candidate.  Returns the
 * deployment id.
 */
Datum
elt_deploy_canary(PG_FUNCTION_ARGS)
{
	char	   *name = EltDeployInterfaceArg(fcinfo, 0);
	bool		has_percent = !PG_ARGISNULL(2);
	int			percent = has_percent ? PG_GETARG_INT32(2) : -1;
	List	   *roles = NIL;
	Interface	iface;
	char	   *candidate;
	char	   *live;
	char	   *shape;
	char	   *checks;
	char	   *failed;
	StringInfoData rolearr;
	EltJson		d;
	EltCatalogWrite cw;
	ListCell   *lc;

	if (!PG_ARGISNULL(1))
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			Oid			role;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("roles must not contain null")));
			role = get_role_oid(TextDatumGetCString(elems[i]), false);
			if (!list_member_oid(roles, role))
				roles = lappend_oid(roles, role);
		}
	}
	if (has_percent && (percent < 1 || percent > 100))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("percent must be between 1 and 100, not %d", percent)));
	if (roles == NIL && percent == -1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a canary needs roles, a percent of sessions, or both"),
				 errhint("For example elt.deploy_canary('%s', roles => ARRAY['analyst_beta']) or elt.deploy_canary('%s', percent => 10).",
						 name, name)));

	EltDeployLoadInterface(name, &iface);
	if (iface.last.id == 0 || strcmp(iface.last.state, "prepared") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interface \"%s\" has no prepared candidate for a canary", name),
				 errhint("Prepare one with elt.deploy_prepare('%s') and build the new version into it.", name)));
	candidate = EltDeployColorSchema(name, iface.last.to_color);
	live = EltDeployColorSchema(name, iface.live_color);
	EltDeployRefuseRowSecurity(name, "elt.deploy_canary()", live, candidate);

	/* the gates: a compatible shape (always), and the checks */
	shape = shape_gate(name);
	if (shape[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a canary needs a candidate that is backward compatible with the live version of \"%s\"", name),
				 errdetail("%s", shape),
				 errhint("Consumers in and out of the canary read the same view columns. Fix the candidate, "
						 "or promote it without a canary (with force => true inside an approved migration).")));
	checks = EltChecksRunGate(candidate, iface.last.id, &failed);
	if (failed != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("the candidate %s fails checks of severity error", candidate),
				 errdetail("%s", failed),
				 errhint("elt.check_run('%s') shows the failing rows; fix them before a canary.", candidate)));

	/* the event: the settings and the gates, then the views as they are switched */
	EltJsonBegin(&d);
	EltJsonString(&d, "candidate", candidate);
	EltJsonBeginArray(&d, "roles");
	foreach(lc, roles)
		EltJsonString(&d, NULL, GetUserNameFromId(lfirst_oid(lc), false));
	EltJsonEndArray(&d);
	if (percent != -1)
		EltJsonInt(&d, "percent", percent);
	EltJsonBeginObject(&d, "gates");
	EltJsonRaw(&d, "checks", checks);
	EltJsonEndObject(&d);

	/* the views' branch choice, with the settings as constants */
	initStringInfo(&rolearr);
	foreach(lc, roles)
		appendStringInfo(&rolearr, "%s%u", rolearr.len > 0 ? "," : "", lfirst_oid(lc));
	{
		/* the settings as typed constants: the stored views read clearly, and the planner makes a one-time filter */
		char	   *pick = psprintf("%s._canary(" INT64_FORMAT "::pg_catalog.int8, %s::pg_catalog.regrole[], %s::pg_catalog.int4)",
									 ELT_SCHEMA_NAME, iface.last.id,
									 roles != NIL ? quote_literal_cstr(psprintf("{%s}", rolearr.data)) : "NULL",
									 percent != -1 ? psprintf("%d", percent) : "NULL");

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		EltJsonInt(&d, "lock_attempts", lock_views(iface.nsp, name));
		EltJsonBeginArray(&d, "views");
		canary_views(iface.nsp, name, live, candidate, pick, &d);
		EltJsonEndArray(&d);
		SPI_finish();
	}

	EltCatalogWriteBegin(&cw);
	{
		Datum		rolesd = (Datum) 0;

		if (roles != NIL)
		{
			Datum	   *r = palloc(sizeof(Datum) * list_length(roles));
			int			k = 0;

			foreach(lc, roles)
				r[k++] = ObjectIdGetDatum(lfirst_oid(lc));
			rolesd = PointerGetDatum(construct_array(r, k, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
		}
		if (SPI_execute_with_args("UPDATE elt.deploy_interfaces SET canary_deployment = $2, canary_roles = $3, canary_percent = $4"
								  " WHERE interface = $1",
								  4, (Oid[]) {NAMEOID, INT8OID, OIDARRAYOID, INT4OID},
								  (Datum[]) {CStringGetDatum(name), Int64GetDatum(iface.last.id), rolesd, Int32GetDatum(percent)},
								  (char[]) {' ', ' ', roles != NIL ? ' ' : 'n', percent != -1 ? ' ' : 'n'}, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "recording the canary failed");
	}
	EltDeployRecordEvent(&cw, iface.last.id, name, iface.canary != 0 ? "deploy_canary_change" : "deploy_canary", NULL,
						 EltJsonFinish(&d));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(iface.last.id);
}

PG_FUNCTION_INFO_V1(elt_deploy_canary_stop);

/*
 * elt.deploy_canary_stop(interface text, reason text DEFAULT NULL) RETURNS
 * bigint: every session reads live again; the candidate stays prepared.
 * Returns the deployment id.
 */
Datum
elt_deploy_canary_stop(PG_FUNCTION_ARGS)
{
	char	   *name = EltDeployInterfaceArg(fcinfo, 0);
	char	   *reason = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	Interface	iface;
	EltJson		event;
	EltCatalogWrite cw;
	int64		id;

	EltDeployLoadInterface(name, &iface);
	if (iface.canary == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interface \"%s\" has no canary running", name),
				 errhint("elt.deployments shows which deployment, if any, is in a canary.")));
	id = iface.canary;
	EltJsonBegin(&event);
	EltJsonString(&event, "live", EltDeployColorSchema(name, iface.live_color));
	switch_views(&iface, EltDeployColorSchema(name, iface.live_color), false, reason, &event);

	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("UPDATE elt.deploy_interfaces SET canary_deployment = NULL, canary_roles = NULL,"
							  " canary_percent = NULL WHERE interface = $1",
							  1, (Oid[]) {NAMEOID}, (Datum[]) {CStringGetDatum(name)}, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "recording the end of the canary failed");
	EltDeployRecordEvent(&cw, id, name, "deploy_canary_stop", reason, EltJsonFinish(&event));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(id);
}
