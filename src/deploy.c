/*
 * deploy.c — blue-green deployments of a schema behind an interface of
 * views.
 *
 * Owns elt.deploy_interfaces, elt.deployment_defs and
 * elt.deployment_event_log, and the rule that a color's tables never have
 * row level security (EltDeployGuardRowSecurity, which ddl_capture.c calls
 * at ddl_command_start).  elt.deploy_init() moves a schema's tables to
 * <interface>__blue (ALTER TABLE ... SET SCHEMA keeps oids, data, indexes
 * and grants) and puts one view per table in the interface schema;
 * deploy_prepare() makes the idle color's tables; deploy_promote() runs
 * the gates and repoints every view to the candidate; deploy_rollback()
 * repoints them back; deploy_decommission() drops the old color.  The
 * comparisons (deploy_compare, deploy_diff) are in deploy_compare.c.
 *
 * Privileges: the DDL runs as the caller (but see below for the
 * candidate's tables), so PostgreSQL checks that the caller may move,
 * create and drop what it touches; catalog rows and the
 * audit are written as the extension's owner (EltCatalogWriteBegin).  An
 * interface must not widen what a role reads: views and candidate tables
 * get the owner, grants and column grants of their tables; and as a view
 * reads its table as its owner, whom row level security does not restrict,
 * an interface's tables never have it (deploy_init refuses such a table,
 * the ddl_command_start trigger refuses turning it on in a color, and the
 * deployments refuse to go on when it was turned on behind its back).
 *
 * Whose code runs: deploy_prepare makes and fills each candidate table as
 * the live table's owner, in a security-restricted operation with a pinned
 * search_path (exec_as_owner): CREATE TABLE ... LIKE plans the index
 * expressions and predicates it copies, which calls their functions over
 * constants, and writing rows runs index expressions, constraints and
 * defaults, all code of the owner's.  Nothing else here runs code of
 * another role with the caller's rights: the other statements move,
 * create, grant and drop without evaluating an expression (views are
 * column references over a table), setval and the catalog queries call
 * built-in functions only, the gates run each check as its owner
 * (checks.c), and the canary's views add only elt._canary.  The
 * comparisons (deploy_compare, deploy_diff) compare each table as its
 * owner, the same way (deploy_compare.c).
 *
 * Locking: a switch takes ACCESS EXCLUSIVE locks on every view of the
 * interface (lock_views: never waiting long for one while holding others,
 * so that it closes no lock cycle with readers, and retried), then
 * replaces the views in the same transaction, so a query sees either every
 * old definition or every new one.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/htup_details.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/backendid.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "checks.h"
#include "contracts.h"
#include "deploy.h"
#include "util.h"

Oid			EltDeployMovingTable = InvalidOid;

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

/* A deployment as the catalog has it. */
typedef struct Deployment
{
	int64		id;				/* 0: none */
	char	   *state;
	char	   *from_color;
	char	   *to_color;
	TimestampTz promoted_at;
} Deployment;

/* An interface as the catalog has it. */
typedef struct Interface
{
	char	   *name;
	Oid			nsp;
	char	   *live_color;
	Oid			owner;
	int64		canary;			/* deployment a canary reads, 0: none */
	Deployment last;
} Interface;

static const char *
other_color(const char *color)
{
	return strcmp(color, "blue") == 0 ? "green" : "blue";
}

static char *
color_schema(const char *interface, const char *color)
{
	return psprintf("%s__%s", interface, color);
}

/* The interface argument: a name that leaves room for "__green". */
static char *
interface_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *name = EltRequiredText(fcinfo, argno, "interface");

	if (strlen(name) + strlen("__green") >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("interface name \"%s\" is too long", name),
				 errdetail("Its colors are named <interface>__blue and <interface>__green, which must fit in %d bytes.",
						   NAMEDATALEN - 1)));
	return name;
}

/*
 * Read an interface and its last deployment (as the extension owner);
 * check that the caller has the privileges of the interface schema's
 * owner.  The interface's row is locked FOR UPDATE first, so that the
 * deployments of an interface change one at a time, and each reads the
 * state the one before it left (a statement after the lock, with a new
 * snapshot).
 */
static void
load_interface(const char *name, Interface *iface)
{
	EltCatalogWrite cw;
	MemoryContext outer = CurrentMemoryContext;
	bool		isnull;

	memset(iface, 0, sizeof(*iface));
	iface->name = pstrdup(name);
	EltRequireCatalog("deploy_interfaces");
	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("SELECT FROM elt.deploy_interfaces WHERE interface = $1 FOR UPDATE",
							  1, (Oid[]) {NAMEOID}, (Datum[]) {CStringGetDatum(name)}, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "locking the interface failed");
	if (SPI_execute_with_args("SELECT i.live_color, i.owner, i.canary_deployment, d.deployment_id, d.state, d.from_color, d.to_color, d.promoted_at"
							  " FROM elt.deploy_interfaces i"
							  " LEFT JOIN LATERAL (SELECT * FROM elt.deployment_defs x WHERE x.interface = i.interface"
							  "                    ORDER BY x.deployment_id DESC LIMIT 1) d ON true"
							  " WHERE i.interface = $1",
							  1, (Oid[]) {NAMEOID}, (Datum[]) {CStringGetDatum(name)}, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading the interface failed");
	if (SPI_processed == 0)
	{
		size_t		len = strlen(name);

		if ((len > 6 && strcmp(name + len - 6, "__blue") == 0) || (len > 7 && strcmp(name + len - 7, "__green") == 0))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("schema \"%s\" is not a deployment interface", name),
					 errhint("Give the interface, not one of its colors: \"%.*s\".", (int) (len - (name[len - 1] == 'e' ? 6 : 7)), name)));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("schema \"%s\" is not a deployment interface", name),
				 errhint("Make it one with elt.deploy_init('%s').", name)));
	}
	iface->live_color = MemoryContextStrdup(outer, EltSpiGetText(0, "live_color"));
	iface->owner = DatumGetObjectId(EltSpiGetDatum(0, "owner", &isnull));
	iface->canary = EltSpiGetInt64(0, "canary_deployment", &isnull);
	if (isnull)
		iface->canary = 0;
	iface->last.id = EltSpiGetInt64(0, "deployment_id", &isnull);
	if (!isnull)
	{
		Datum		p;

		iface->last.state = MemoryContextStrdup(outer, EltSpiGetText(0, "state"));
		iface->last.from_color = MemoryContextStrdup(outer, EltSpiGetText(0, "from_color"));
		iface->last.to_color = MemoryContextStrdup(outer, EltSpiGetText(0, "to_color"));
		p = EltSpiGetDatum(0, "promoted_at", &isnull);
		iface->last.promoted_at = isnull ? 0 : DatumGetTimestampTz(p);
	}
	else
		iface->last.id = 0;
	EltCatalogWriteEnd(&cw);
	iface->nsp = get_namespace_oid(name, true);
	if (!OidIsValid(iface->nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("the interface schema \"%s\" no longer exists", name),
				 errhint("It was dropped or renamed outside elt_governance; rename it back, or make it again with its views.")));
	if (!pg_namespace_ownercheck(iface->nsp, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for interface \"%s\"", name),
				 errhint("Only members of the role that owns schema \"%s\" may deploy it.", name)));
}

/*
 * Refuse to go on when a table of color schema a or b (b may be NULL) has
 * row level security enabled or forced.  The interface's views read their
 * tables as their owner, so policies never restrict the views' readers:
 * every reader would read every row.  The event trigger refuses to enable
 * it on a color's table (EltDeployGuardRowSecurity); this catches what was
 * done while event triggers did not fire.  action names the function, for
 * the hint.
 */
static void
refuse_row_security(const char *interface, const char *action, const char *a, const char *b)
{
	char	   *tables = NULL;
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s)', c.oid::pg_catalog.regclass,"
							  "  CASE WHEN NOT c.relrowsecurity THEN 'forced' WHEN c.relforcerowsecurity THEN 'enabled and forced'"
							  "  ELSE 'enabled' END), ', ' ORDER BY n.nspname, c.relname) AS tables"
							  " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							  " WHERE n.nspname IN ($1, $2) AND c.relkind IN ('r', 'p')"
							  "   AND (c.relrowsecurity OR c.relforcerowsecurity)",
							  2, (Oid[]) {TEXTOID, TEXTOID},
							  (Datum[]) {CStringGetTextDatum(a), b ? CStringGetTextDatum(b) : (Datum) 0},
							  (char[]) {' ', b ? ' ' : 'n'}, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading row level security failed");
	if (SPI_processed > 0 && EltSpiGetText(0, "tables") != NULL)
		tables = MemoryContextStrdup(outer, EltSpiGetText(0, "tables"));
	SPI_finish();
	if (tables != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tables of interface \"%s\" have row level security", interface),
				 errdetail("Row level security is on for %s. The interface's views read their tables as their owner, "
						   "so the policies would not restrict the views' readers: every reader would read every row.", tables),
				 errhint("It was turned on while elt_governance's event triggers did not fire. If the policies are not needed, "
						 "turn it off (ALTER TABLE ... DISABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY) and run %s again; "
						 "a table that needs them belongs outside the interface.", action)));
}

/*
 * The statements an SQL query returns (one text column), in order, in the
 * current memory context (SPI connected).
 */
static List *
generated_statements(const char *query, int nargs, Oid *types, Datum *values)
{
	List	   *stmts = NIL;
	uint64		i;
	MemoryContext outer = CurrentMemoryContext;

	/* not read-only: it must see what the statements before it made */
	CommandCounterIncrement();
	if (SPI_execute_with_args(query, nargs, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "generating statements failed");
	for (i = 0; i < SPI_processed; i++)
		stmts = lappend(stmts, MemoryContextStrdup(outer, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	return stmts;
}

/* Run the statements an SQL query returns (one text column), in order (SPI connected). */
static void
exec_generated(const char *query, int nargs, Oid *types, Datum *values)
{
	ListCell   *lc;

	foreach(lc, generated_statements(query, nargs, types, values))
		EltSpiExec(lfirst(lc));
}

/*
 * Run statements as role owner, in a security-restricted operation with
 * search_path pinned to pg_catalog, pg_temp: for statements that run code
 * of owner's (see the file header), so that it never runs with the
 * caller's rights.  The statements name everything with its schema.  SPI
 * connected.
 */
static void
exec_as_owner(Oid owner, List *stmts)
{
	EltAsRole	ar;
	ListCell   *lc;

	EltAsRoleBegin(&ar, owner, "pg_catalog, pg_temp", true);
	foreach(lc, stmts)
		EltSpiExec(lfirst(lc));
	EltAsRoleEnd(&ar);
}

/*
 * Give object (e.g. "TABLE a.b", a view or table with src's column names)
 * the owner of relation src, its grants and its column grants: a reader
 * granted only some columns of a table reads the same columns through its
 * view, and through the candidate's table after a promotion.
 */
static void
copy_relation_grants(Oid src, const char *object, const char *target_rel, bool comments)
{
	exec_generated("SELECT pg_catalog.format('ALTER %s OWNER TO %I', $2, pg_catalog.pg_get_userbyid(c.relowner))"
				   " FROM pg_catalog.pg_class c WHERE c.oid = $1"
				   " UNION ALL SELECT g FROM pg_catalog.pg_class c, elt._acl_grants(c.relacl, c.relowner, $2) g"
				   " WHERE c.oid = $1"
				   " UNION ALL SELECT g FROM elt._column_acl_grants($1, $2) g",
				   2, (Oid[]) {OIDOID, TEXTOID}, (Datum[]) {ObjectIdGetDatum(src), CStringGetTextDatum(object)});
	if (comments)
		exec_generated("SELECT elt._comment_copies($1, $2)", 2, (Oid[]) {OIDOID, TEXTOID},
					   (Datum[]) {ObjectIdGetDatum(src), CStringGetTextDatum(target_rel)});
}

/* Write an event (and the audit row) as the extension's owner. */
static void
record_event(EltCatalogWrite *cw, int64 deployment_id, const char *interface, const char *action,
			 const char *reason, const char *details)
{
	static SPIPlanPtr plan = NULL;
	StringInfoData a;

	EltPrepare(&plan,
			   "INSERT INTO elt.deployment_event_log (deployment_id, interface, action, actor, happened_at, reason, details)"
			   " VALUES ($1, $2, $3, $4, pg_catalog.clock_timestamp(), $5, $6::pg_catalog.jsonb)",
			   6, (Oid[]) {INT8OID, NAMEOID, TEXTOID, OIDOID, TEXTOID, TEXTOID});
	EltExec(plan, (Datum[]) {Int64GetDatum(deployment_id), CStringGetDatum(interface),
			CStringGetTextDatum(action), ObjectIdGetDatum(cw->actor),
			reason ? CStringGetTextDatum(reason) : (Datum) 0, CStringGetTextDatum(details)},
			(char[]) {deployment_id ? ' ' : 'n', ' ', ' ', ' ', reason ? ' ' : 'n', ' '}, 0);
	initStringInfo(&a);
	appendStringInfoChar(&a, '{');
	if (deployment_id)
		EltAppendJsonInt(&a, "deployment_id", deployment_id);
	appendStringInfo(&a, "%s\"event\": %s}", deployment_id ? ", " : "", details);
	EltAuditRecord(cw->actor, action, interface, a.data, EltAuditReason(reason));
}

/* ---------------------------------------------------------------------
 * Switching the views
 * ---------------------------------------------------------------------
 */

/*
 * Wait at most timeout_ms for an ACCESS EXCLUSIVE lock on relid, queued like
 * any lock request (readers that come later queue behind it); false when
 * the wait timed out (or was a deadlock's victim).  The lock belongs to
 * the current (sub)transaction.
 */
static bool
wait_for_lock(Oid relid, int timeout_ms)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool locked = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int			level = NewGUCNestLevel();

		(void) set_config_option("lock_timeout", psprintf("%d", timeout_ms),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		LockRelationOid(relid, AccessExclusiveLock);
		AtEOXact_GUC(true, level);
		ReleaseCurrentSubTransaction();
		locked = true;
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (e->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE && e->sqlerrcode != ERRCODE_T_R_DEADLOCK_DETECTED)
			ReThrowError(e);
		FreeErrorData(e);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return locked;
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
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		int			contended = -1;
		bool		holding = false;
		TimestampTz since = GetCurrentTimestamp();
		int			k;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
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
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			return attempt;
		}
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
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
 * With a column of another type (forced only), the view is made again,
 * which fails if objects depend on it.  A new or remade view gets its
 * table's owner, grants, column grants and comments; a repointed view keeps
 * its own, and the columns appended to it get the table's column grants.
 * Returns a JSON list of what changed.  SPI connected, views locked.
 */
static char *
point_views(Oid nsp, const char *interface, const char *target, bool allow_drop, List **remade)
{
	uint64		i;
	List	   *stmts = NIL;
	List	   *grants = NIL;
	List	   *added_grants = NIL;
	MemoryContext outer = CurrentMemoryContext;
	ListCell   *lc;
	StringInfoData changes;

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
	initStringInfo(&changes);
	appendStringInfoChar(&changes, '[');
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
				cols = added ? psprintf("%s, %s", kept, added) : kept;
				/* the checks declared on it follow it to the new view */
				*remade = lappend(*remade, list_make2((void *) (uintptr_t) DatumGetObjectId(old),
													  MemoryContextStrdup(outer, qview)));
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
		if (changes.len > 1)
			appendStringInfoString(&changes, ", ");
		{
			StringInfoData one;

			initStringInfo(&one);
			appendStringInfoChar(&one, '{');
			EltAppendJsonString(&one, "view", name);
			EltAppendJsonString(&one, "change", what);
			appendStringInfo(&changes, "%s}", one.data);
		}
	}
	appendStringInfoChar(&changes, ']');
	foreach(lc, stmts)
		EltSpiExec(lfirst(lc));
	CommandCounterIncrement();
	foreach(lc, grants)
	{
		List	   *g = lfirst(lc);

		copy_relation_grants((Oid) (uintptr_t) lsecond(g), psprintf("TABLE %s", (char *) linitial(g)),
							 linitial(g), true);
	}
	foreach(lc, added_grants)
	{
		List	   *g = lfirst(lc);

		exec_generated("SELECT g FROM elt._column_acl_grants($1, $2, $3::pg_catalog.text[]) g",
					   3, (Oid[]) {OIDOID, TEXTOID, TEXTOID},
					   (Datum[]) {ObjectIdGetDatum((Oid) (uintptr_t) lsecond(g)),
					   CStringGetTextDatum(psprintf("TABLE %s", (char *) linitial(g))),
					   CStringGetTextDatum(lthird(g))});
	}
	return changes.data;
}

/* ---------------------------------------------------------------------
 * Row level security stays off behind an interface
 * ---------------------------------------------------------------------
 */

/*
 * The interface whose color schema nsp is, or NULL: a schema named
 * <interface>__blue or __green whose interface is in
 * elt.deploy_interfaces (read as the extension's owner).
 */
static char *
interface_of_color(Oid nsp)
{
	char	   *schema = get_namespace_name(nsp);
	size_t		len = schema ? strlen(schema) : 0;
	size_t		suffix;
	char	   *interface = NULL;
	MemoryContext outer = CurrentMemoryContext;
	EltCatalogWrite cw;

	if (len > 6 && strcmp(schema + len - 6, "__blue") == 0)
		suffix = 6;
	else if (len > 7 && strcmp(schema + len - 7, "__green") == 0)
		suffix = 7;
	else
		return NULL;
	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("SELECT interface::text AS i FROM elt.deploy_interfaces WHERE interface = $1",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(pnstrdup(schema, len - suffix))},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading interfaces failed");
	if (SPI_processed > 0)
		interface = MemoryContextStrdup(outer, EltSpiGetText(0, "i"));
	EltCatalogWriteEnd(&cw);
	return interface;
}

/* Whether relation relid has row level security enabled or forced. */
static bool
has_row_security(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		on;

	if (!HeapTupleIsValid(tup))
		return false;
	on = ((Form_pg_class) GETSTRUCT(tup))->relrowsecurity || ((Form_pg_class) GETSTRUCT(tup))->relforcerowsecurity;
	ReleaseSysCache(tup);
	return on;
}

/*
 * See deploy.h.  A security invariant rather than a governance policy, so
 * it holds with elt.enabled off as well: that setting is for maintenance
 * windows and restores, and neither needs row level security on an
 * interface's tables (a restore never has it to restore: it was refused).
 * Names resolve as the statement will resolve them (the caller's
 * search_path); a relation that does not exist is left to the statement.
 */
void
EltDeployGuardRowSecurity(Node *parsetree)
{
	RangeVar   *relation = NULL;
	const char *what = NULL;
	const char *into = NULL;
	Oid			relid;
	Oid			nsp;
	char	   *interface;

	if (IsA(parsetree, AlterTableStmt))
	{
		ListCell   *lc;

		foreach(lc, ((AlterTableStmt *) parsetree)->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

			if (cmd->subtype == AT_EnableRowSecurity)
				what = "enable";
			else if (cmd->subtype == AT_ForceRowSecurity && what == NULL)
				what = "force";
		}
		relation = ((AlterTableStmt *) parsetree)->relation;
	}
	else if (IsA(parsetree, AlterObjectSchemaStmt) && ((AlterObjectSchemaStmt *) parsetree)->relation != NULL)
	{
		relation = ((AlterObjectSchemaStmt *) parsetree)->relation;
		into = ((AlterObjectSchemaStmt *) parsetree)->newschema;
	}
	if ((what == NULL && into == NULL) || relation == NULL ||
		!EltCatalogReady() || !OidIsValid(EltCatalogRelid("deploy_interfaces")))
		return;
	relid = RangeVarGetRelid(relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	if (into != NULL)
	{
		if (!has_row_security(relid))
			return;
		nsp = get_namespace_oid(into, true);
	}
	else
		nsp = get_rel_namespace(relid);
	if (!OidIsValid(nsp) || (interface = interface_of_color(nsp)) == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 into ? errmsg("cannot move table %s with row level security into schema \"%s\"", EltRelDisplayName(relid), into)
			 : errmsg("cannot %s row level security on table %s", what, EltRelDisplayName(relid)),
			 errdetail("Schema \"%s\" is a color of deployment interface \"%s\", whose views read its tables as their owner: "
					   "the policies would not restrict the views' readers.", get_namespace_name(nsp), interface),
			 errhint("Keep tables that need row level security outside deployment interfaces. "
					 "To limit what readers see through the interface, grant them only some columns, "
					 "or give them views of their own on the interface's views.")));
}

/* ---------------------------------------------------------------------
 * elt.deploy_init
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(elt_deploy_init);

/*
 * elt.deploy_init(interface text) RETURNS integer: move the schema's
 * tables to <interface>__blue and give the schema one view per table;
 * returns the number of tables.  Anything else in the schema, and objects
 * elsewhere that depend on its tables, are listed in an error and nothing
 * changes.
 */
Datum
elt_deploy_init(PG_FUNCTION_ARGS)
{
	char	   *name = interface_arg(fcinfo, 0);
	Oid			nsp = get_namespace_oid(name, true);
	char	   *blue = color_schema(name, "blue");
	EltCatalogWrite cw;
	List	   *tables = NIL;
	StringInfoData problems;
	uint64		i;
	ListCell   *lc;
	int			n;
	bool		row_security = false;

	EltRequireCatalog("deploy_interfaces");
	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", name),
				 errhint("Give the schema whose tables consumers read.")));
	if (!pg_namespace_ownercheck(nsp, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of schema %s", name)));
	if (strcmp(name, ELT_SCHEMA_NAME) == 0 || strcmp(name, "elt_snapshots") == 0 || IsCatalogNamespace(nsp) ||
		isAnyTempNamespace(nsp) || strcmp(name, "public") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schema \"%s\" cannot be a deployment interface", name),
				 errhint("Move the tables consumers read into a schema of their own first.")));
	{
		EltCatalogWrite rcw;
		bool		exists;
		bool		isnull_same;
		char	   *color_of = NULL;

		EltCatalogWriteBegin(&rcw);
		if (SPI_execute_with_args("SELECT interface::text AS i, interface = $1 AS same FROM elt.deploy_interfaces"
								  " WHERE interface = $1 OR $1::text IN (interface || '__blue', interface || '__green')",
								  1, (Oid[]) {NAMEOID},
								  (Datum[]) {CStringGetDatum(name)}, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading interfaces failed");
		exists = SPI_processed > 0;
		if (exists && !EltSpiGetBool(0, "same", &isnull_same))
			color_of = pstrdup(EltSpiGetText(0, "i"));
		EltCatalogWriteEnd(&rcw);
		if (color_of)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("schema \"%s\" is a color of interface \"%s\"", name, color_of),
					 errhint("Consumers read the interface; deploy it with elt.deploy_prepare('%s') and elt.deploy_promote().", color_of)));
		if (exists)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("schema \"%s\" is already a deployment interface", name),
					 errhint("elt.deployments lists its deployments; elt.deploy_prepare('%s') starts a new one.", name)));
	}
	if (OidIsValid(get_namespace_oid(blue, true)) || OidIsValid(get_namespace_oid(color_schema(name, "green"), true)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_SCHEMA),
				 errmsg("schema \"%s\" or \"%s\" already exists", blue, color_schema(name, "green")),
				 errhint("The colors of an interface are schemas of their own: rename or drop those first.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* what cannot be handled, in one list */
	if (SPI_execute_with_args(
		"SELECT o, p FROM ("
		" SELECT 1 AS o, pg_catalog.format('%s %s', CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'"
		"   WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'S' THEN 'sequence' WHEN 'c' THEN 'type'"
		"   ELSE 'relation' END, c.oid::pg_catalog.regclass) AS p"
		"  FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind NOT IN ('r', 'i', 'I', 't')"
		"   AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
		"        AND d.objid = c.oid AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass))"
		" UNION ALL SELECT 1, pg_catalog.format('partition %s', c.oid::pg_catalog.regclass) FROM pg_catalog.pg_class c"
		"  WHERE c.relnamespace = $1 AND c.relkind = 'r' AND c.relispartition"
		" UNION ALL SELECT 2, pg_catalog.format('function %s', p.oid::pg_catalog.regprocedure) FROM pg_catalog.pg_proc p WHERE p.pronamespace = $1"
		" UNION ALL SELECT 3, pg_catalog.format('type %s', t.oid::pg_catalog.regtype) FROM pg_catalog.pg_type t"
		"  WHERE t.typnamespace = $1 AND t.typrelid = 0 AND t.typelem = 0"
		" UNION ALL SELECT 4, pg_catalog.format('table %s is owned by %s, not by you', c.oid::pg_catalog.regclass, c.relowner::pg_catalog.regrole)"
		"  FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'r'"
		"   AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE')"
		" UNION ALL SELECT DISTINCT 5, pg_catalog.format('%s %s depends on %s (it would keep reading the moved table)',"
		"   CASE v.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END, v.oid::pg_catalog.regclass, t.oid::pg_catalog.regclass)"
		"  FROM pg_catalog.pg_class t JOIN pg_catalog.pg_depend d ON d.refobjid = t.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
		"  JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
		"  JOIN pg_catalog.pg_class v ON v.oid = w.ev_class"
		"  WHERE t.relnamespace = $1 AND t.relkind = 'r' AND v.oid <> t.oid"
		" UNION ALL SELECT 6, pg_catalog.format('foreign key %I of %s references %s (it would keep checking the moved table)',"
		"   k.conname, k.conrelid::pg_catalog.regclass, k.confrelid::pg_catalog.regclass)"
		"  FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class t ON t.oid = k.confrelid"
		"  JOIN pg_catalog.pg_class r ON r.oid = k.conrelid"
		"  WHERE k.contype = 'f' AND t.relnamespace = $1 AND r.relnamespace <> $1"
		" UNION ALL SELECT 7, pg_catalog.format('table %s has row level security %s (its view would show every row to every reader: a view reads as its owner)',"
		"   c.oid::pg_catalog.regclass, CASE WHEN NOT c.relrowsecurity THEN 'forced' WHEN c.relforcerowsecurity THEN 'enabled and forced' ELSE 'enabled' END)"
		"  FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'r' AND (c.relrowsecurity OR c.relforcerowsecurity)"
		" ) x ORDER BY o, p",
		1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(nsp)}, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "inspecting the schema failed");
	initStringInfo(&problems);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		appendStringInfo(&problems, "%s%s", i > 0 ? "\n" : "", EltSpiGetText(i, "p"));
		if (DatumGetInt32(EltSpiGetDatum(i, "o", &isnull)) == 7)
			row_security = true;
	}
	if (problems.len > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("schema \"%s\" has objects a deployment interface cannot handle", name),
				 errdetail("%s", problems.data),
				 errhint("An interface holds ordinary tables (with their indexes, constraints and sequences). "
						 "Move the rest to another schema, make dependent views again on the interface's views after elt.deploy_init(), "
						 "and drop foreign keys from other schemas into it (a view cannot be referenced).%s",
						 row_security ? " Keep tables with row level security outside the interface schema, "
						 "or DISABLE ROW LEVEL SECURITY on them if their policies are not needed." : "")));
	if (SPI_execute_with_args("SELECT c.oid, c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'r' ORDER BY c.relname",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(nsp)}, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "listing tables failed");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext spi = MemoryContextSwitchTo(TopTransactionContext);

		tables = lappend(tables, list_make2((void *) (uintptr_t) DatumGetObjectId(EltSpiGetDatum(i, "oid", &isnull)),
											pstrdup(EltSpiGetText(i, "relname"))));
		MemoryContextSwitchTo(spi);
	}
	if (tables == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("schema \"%s\" has no tables", name),
				 errhint("An interface puts a view in front of each table: create the tables first.")));

	/* the blue color, owned and granted as the interface schema */
	EltSpiExec(psprintf("CREATE SCHEMA %s AUTHORIZATION %s", quote_identifier(blue),
						quote_identifier(GetUserNameFromId(EltNamespaceOwner(nsp), false))));
	exec_generated("SELECT g FROM pg_catalog.pg_namespace n, elt._acl_grants(n.nspacl, n.nspowner, $2) g WHERE n.oid = $1",
				   2, (Oid[]) {OIDOID, TEXTOID},
				   (Datum[]) {ObjectIdGetDatum(nsp), CStringGetTextDatum(psprintf("SCHEMA %s", quote_identifier(blue)))});
	foreach(lc, tables)
	{
		List	   *t = lfirst(lc);
		Oid			relid = (Oid) (uintptr_t) linitial(t);
		char	   *rel = lsecond(t);
		char	   *qview = quote_qualified_identifier(name, rel);

		EltDeployMovingTable = relid;
		PG_TRY();
		{
			EltSpiExec(psprintf("ALTER TABLE %s SET SCHEMA %s", qview, quote_identifier(blue)));
		}
		PG_FINALLY();
		{
			EltDeployMovingTable = InvalidOid;
		}
		PG_END_TRY();
		CommandCounterIncrement();
		exec_generated("SELECT pg_catalog.format('CREATE VIEW %s AS SELECT %s FROM %s', $2,"
					   " pg_catalog.string_agg(pg_catalog.format('%I', c.name), ', ' ORDER BY c.attnum), $1::pg_catalog.regclass)"
					   " FROM elt._deploy_columns($1) c",
					   2, (Oid[]) {OIDOID, TEXTOID}, (Datum[]) {ObjectIdGetDatum(relid), CStringGetTextDatum(qview)});
		CommandCounterIncrement();
		copy_relation_grants(relid, psprintf("TABLE %s", qview), qview, true);
	}
	SPI_finish();
	n = list_length(tables);

	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("INSERT INTO elt.deploy_interfaces (interface, live_color, owner, initialized_by, initialized_at)"
							  " VALUES ($1, 'blue', $2, $3, pg_catalog.now())",
							  3, (Oid[]) {NAMEOID, OIDOID, OIDOID},
							  (Datum[]) {CStringGetDatum(name), ObjectIdGetDatum(EltNamespaceOwner(nsp)), ObjectIdGetDatum(cw.actor)},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "recording the interface failed");
	{
		StringInfoData d;

		initStringInfo(&d);
		appendStringInfoChar(&d, '{');
		EltAppendJsonString(&d, "live", blue);
		EltAppendJsonInt(&d, "tables", n);
		appendStringInfoChar(&d, '}');
		record_event(&cw, 0, name, "deploy_init", NULL, d.data);
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT32(n);
}

/* ---------------------------------------------------------------------
 * elt.deploy_prepare
 * ---------------------------------------------------------------------
 */

/* Drop the tables of a color schema and the schema (RESTRICT: dependents are an error). SPI connected. */
static void
drop_color(const char *schema)
{
	/* one statement, so that foreign keys between them are no obstacle */
	exec_generated("SELECT pg_catalog.format('DROP TABLE %s', pg_catalog.string_agg(c.oid::pg_catalog.regclass::text, ', ' ORDER BY c.relname))"
				   " FROM pg_catalog.pg_class c"
				   " WHERE c.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($1))"
				   "   AND c.relkind IN ('r', 'p') AND NOT c.relispartition HAVING count(*) > 0",
				   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(schema)});
	EltSpiExec(psprintf("DROP SCHEMA %s", quote_identifier(schema)));
}

/*
 * Check that role owner, the owner of live table from, may make and fill
 * its candidate in schema idle_schema as deploy_prepare does it (as that
 * role): USAGE on both schemas, CREATE on the candidate's.  A clear error
 * rather than a failure on a name.
 */
static void
require_owner_can_build(Oid owner, const char *from, const char *live_schema, const char *idle_schema)
{
	static const struct
	{
		bool		idle;
		AclMode		mode;
		const char *name;
	}			needs[] = {{false, ACL_USAGE, "USAGE"}, {true, ACL_USAGE, "USAGE"}, {true, ACL_CREATE, "CREATE"}};
	size_t		k;

	for (k = 0; k < lengthof(needs); k++)
	{
		const char *schema = needs[k].idle ? idle_schema : live_schema;
		const char *privilege = needs[k].name;

		if (pg_namespace_aclcheck(get_namespace_oid(schema, false), owner, needs[k].mode) == ACLCHECK_OK)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" cannot make the candidate of table %s", GetUserNameFromId(owner, false), from),
				 errdetail("It owns the table but has no %s privilege on schema \"%s\".", privilege, schema),
				 errhint("A candidate's tables are made and filled as their owners, so that their code never runs with your rights. "
						 "Grant that role USAGE and CREATE on schema \"%s\", whose grants the candidate's schema takes, and prepare again.",
						 live_schema)));
	}
}

PG_FUNCTION_INFO_V1(elt_deploy_prepare);

/*
 * elt.deploy_prepare(interface text, copy_data boolean DEFAULT false)
 * RETURNS text: make the idle color's schema with the live tables'
 * definitions (and rows, if asked) for the new version to build into;
 * returns its name.  A candidate that was never promoted, or was rolled
 * back, is replaced; the previous live color, kept for rollback after a
 * promotion, must be decommissioned first.
 */
Datum
elt_deploy_prepare(PG_FUNCTION_ARGS)
{
	char	   *name = interface_arg(fcinfo, 0);
	bool		copy_data = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	Interface	iface;
	const char *idle;
	char	   *idle_schema;
	char	   *live_schema;
	EltCatalogWrite cw;
	int64		id;
	bool		replaced = false;
	uint64		i;
	List	   *tables = NIL;
	ListCell   *lc;

	load_interface(name, &iface);
	idle = other_color(iface.live_color);
	idle_schema = color_schema(name, idle);
	live_schema = color_schema(name, iface.live_color);
	if (iface.canary != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a canary of deployment " INT64_FORMAT " reads schema \"%s\"", iface.canary, idle_schema),
				 errhint("Stop it with elt.deploy_canary_stop('%s'), or promote it, before preparing again.", name)));
	if (iface.last.id != 0 && strcmp(iface.last.state, "promoted") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("schema \"%s\" still holds the version before deployment " INT64_FORMAT, idle_schema, iface.last.id),
				 errdetail("It is kept so that elt.deploy_rollback() can switch back to it."),
				 errhint("Drop it with elt.deploy_decommission('%s') after its grace period, then prepare again.", name)));
	refuse_row_security(name, "elt.deploy_prepare()", live_schema, NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (OidIsValid(get_namespace_oid(idle_schema, true)))
	{
		if (iface.last.id == 0 || strcmp(iface.last.state, "decommissioned") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_SCHEMA),
					 errmsg("schema \"%s\" exists but belongs to no deployment", idle_schema),
					 errhint("Rename or drop it; deploy_prepare makes the idle color itself.")));
		/* an unpromoted or rolled-back candidate: replaced */
		drop_color(idle_schema);
		replaced = true;
	}
	EltSpiExec(psprintf("CREATE SCHEMA %s AUTHORIZATION %s", quote_identifier(idle_schema),
						quote_identifier(GetUserNameFromId(EltNamespaceOwner(iface.nsp), false))));
	exec_generated("SELECT g FROM pg_catalog.pg_namespace n, elt._acl_grants(n.nspacl, n.nspowner, $2) g"
				   " WHERE n.oid = pg_catalog.to_regnamespace(pg_catalog.quote_ident($1))",
				   2, (Oid[]) {TEXTOID, TEXTOID},
				   (Datum[]) {CStringGetTextDatum(live_schema), CStringGetTextDatum(psprintf("SCHEMA %s", quote_identifier(idle_schema)))});
	if (SPI_execute_with_args("SELECT c.oid, c.relname, c.relowner,"
							  " (SELECT pg_catalog.string_agg(pg_catalog.format('%I', a.attname), ', ' ORDER BY a.attnum)"
							  "  FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
							  "   AND a.attgenerated = '') AS cols"
							  " FROM pg_catalog.pg_class c WHERE c.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($1))"
							  "   AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(live_schema)}, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "listing tables failed");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext spi = MemoryContextSwitchTo(TopTransactionContext);

		tables = lappend(tables, list_make4((void *) (uintptr_t) DatumGetObjectId(EltSpiGetDatum(i, "oid", &isnull)),
											pstrdup(EltSpiGetText(i, "relname")),
											pstrdup(EltSpiGetText(i, "cols")),
											(void *) (uintptr_t) DatumGetObjectId(EltSpiGetDatum(i, "relowner", &isnull))));
		MemoryContextSwitchTo(spi);
	}
	foreach(lc, tables)
	{
		List	   *t = lfirst(lc);
		Oid			relid = (Oid) (uintptr_t) linitial(t);
		char	   *from = quote_qualified_identifier(live_schema, lsecond(t));
		char	   *to = quote_qualified_identifier(idle_schema, lsecond(t));

		Oid			owner = (Oid) (uintptr_t) lfourth(t);

		/*
		 * As the live table's owner: LIKE plans the index expressions and
		 * predicates it copies, which calls the owner's functions over
		 * constants, and writing the rows runs index expressions,
		 * constraints and defaults (see the file header).  The caller may
		 * act as the owner anyway (see copy_relation_grants below).
		 */
		require_owner_can_build(owner, from, live_schema, idle_schema);
		exec_as_owner(owner, list_make1(psprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)", to, from)));

		/*
		 * Sequences: LIKE gives an identity column a sequence of its own, but
		 * a serial column's default would go on drawing from live's sequence
		 * (and keep the previous color from being dropped): the candidate
		 * gets its own, owned by its column and so by the table's owner.
		 * Both continue from live's (read as the caller).
		 */
		exec_as_owner(owner, generated_statements("SELECT x.s FROM (SELECT a.attnum, a.attidentity, q.oid AS seq, q.relname AS seqname,"
					   "   pg_catalog.format_type(sq.seqtypid, NULL) AS seqtype,"
					   "   pg_catalog.pg_sequence_last_value(q.oid) AS last, a.attname"
					   "  FROM pg_catalog.pg_attribute a"
					   "  JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					   "   AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					   "   AND d.deptype IN ('a', 'i')"
					   "  JOIN pg_catalog.pg_class q ON q.oid = d.objid AND q.relkind = 'S'"
					   "  JOIN pg_catalog.pg_sequence sq ON sq.seqrelid = q.oid"
					   "  WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped) c,"
					   " LATERAL (VALUES"
					   "  (1, CASE WHEN c.attidentity = '' THEN pg_catalog.format('CREATE SEQUENCE %I.%I AS %s OWNED BY %s.%I',"
					   "        $2, c.seqname, c.seqtype, $3, c.attname) END),"
					   "  (2, CASE WHEN c.attidentity = '' THEN pg_catalog.format("
					   "        'ALTER TABLE %s ALTER COLUMN %I SET DEFAULT pg_catalog.nextval(%L::pg_catalog.regclass)',"
					   "        $3, c.attname, pg_catalog.format('%I.%I', $2, c.seqname)) END),"
					   "  (3, CASE WHEN c.last IS NOT NULL THEN pg_catalog.format("
					   "        'SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(%L, %L), %s)', $3, c.attname, c.last) END)"
					   " ) x(o, s) WHERE x.s IS NOT NULL ORDER BY c.attnum, x.o",
					   3, (Oid[]) {OIDOID, TEXTOID, TEXTOID},
					   (Datum[]) {ObjectIdGetDatum(relid), CStringGetTextDatum(idle_schema), CStringGetTextDatum(to)}));
		/* the grants and column grants, given by the caller (a member of the owner, or a superuser) */
		copy_relation_grants(relid, psprintf("TABLE %s", to), to, false);
		if (copy_data)
			exec_as_owner(owner, list_make1(psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
													 to, (char *) lthird(t), (char *) lthird(t), from)));
	}
	SPI_finish();

	EltCatalogWriteBegin(&cw);
	if (replaced && strcmp(iface.last.state, "prepared") == 0)
	{
		if (SPI_execute_with_args("UPDATE elt.deployment_defs SET state = 'abandoned' WHERE deployment_id = $1",
								  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(iface.last.id)}, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "updating the deployment failed");
	}
	if (SPI_execute("SELECT pg_catalog.nextval('elt.deployment_id_seq') AS id", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "drawing a deployment id failed");
	{
		bool		isnull;

		id = EltSpiGetInt64(0, "id", &isnull);
	}
	if (SPI_execute_with_args("INSERT INTO elt.deployment_defs (deployment_id, interface, from_color, to_color, state, copy_data,"
							  " prepared_by, prepared_at) VALUES ($1, $2, $3, $4, 'prepared', $5, $6, pg_catalog.now())",
							  6, (Oid[]) {INT8OID, NAMEOID, TEXTOID, TEXTOID, BOOLOID, OIDOID},
							  (Datum[]) {Int64GetDatum(id), CStringGetDatum(name), CStringGetTextDatum(iface.live_color),
							  CStringGetTextDatum(idle), BoolGetDatum(copy_data), ObjectIdGetDatum(cw.actor)},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "recording the deployment failed");
	{
		StringInfoData d;

		initStringInfo(&d);
		appendStringInfoChar(&d, '{');
		EltAppendJsonString(&d, "candidate", idle_schema);
		EltAppendJsonInt(&d, "tables", list_length(tables));
		appendStringInfo(&d, ", \"copy_data\": %s", copy_data ? "true" : "false");
		if (replaced)
			EltAppendJsonInt(&d, "replaces_deployment", iface.last.id);
		appendStringInfoChar(&d, '}');
		record_event(&cw, id, name, "deploy_prepare", NULL, d.data);
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_TEXT_P(cstring_to_text(idle_schema));
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
 * Switch the interface's views to schema target; returns what changed and
 * the lock attempts, as JSON.  The checks of a view made again move to the
 * new view, each move audited (check_moved) with the switch's reason.
 */
static char *
switch_views(Interface *iface, const char *target, bool allow_drop, const char *reason)
{
	int			attempts;
	char	   *changes;

	MemoryContext outer = CurrentMemoryContext;
	List	   *remade = NIL;
	ListCell   *lc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	attempts = lock_views(iface->nsp, iface->name);
	changes = MemoryContextStrdup(outer, point_views(iface->nsp, iface->name, target, allow_drop, &remade));
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
				StringInfoData d;
				bool		isnull;

				initStringInfo(&d);
				appendStringInfoChar(&d, '{');
				EltAppendJsonInt(&d, "check_id", EltSpiGetInt64(i, "check_id", &isnull));
				EltAppendJsonString(&d, "name", EltSpiGetText(i, "name"));
				EltAppendJsonInt(&d, "from_relation", from);
				EltAppendJsonInt(&d, "relation", DatumGetObjectId(EltSpiGetDatum(i, "relation", &isnull)));
				appendStringInfoChar(&d, '}');
				EltAuditRecord(cw.actor, "check_moved", lsecond(r), d.data, EltAuditReason(reason));
			}
		}
		EltCatalogWriteEnd(&cw);
	}
	return psprintf("\"lock_attempts\": %d, \"views\": %s", attempts, changes);
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
	char	   *name = interface_arg(fcinfo, 0);
	char	   *reason = EltRequiredText(fcinfo, 1, "reason");
	bool		force = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	Interface	iface;
	char	   *candidate;
	char	   *shape;
	char	   *checks;
	char	   *failed;
	char	   *switched;
	EltCatalogWrite cw;
	StringInfoData gates;

	load_interface(name, &iface);
	if (iface.last.id == 0 || strcmp(iface.last.state, "prepared") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interface \"%s\" has nothing prepared to promote", name),
				 errhint("Prepare a candidate with elt.deploy_prepare('%s') and build the new version into it.", name)));
	candidate = color_schema(name, iface.last.to_color);
	if (force && EltCurrentMigration() == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a forced promotion needs an approved migration"),
				 errhint("Begin one with elt.migration_begin(name, reason, approved_by) and promote inside it.")));
	refuse_row_security(name, "elt.deploy_promote()", color_schema(name, iface.live_color), candidate);

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

	switched = switch_views(&iface, candidate, force, reason);

	initStringInfo(&gates);
	appendStringInfoString(&gates, "{\"checks\": ");
	appendStringInfoString(&gates, checks);
	EltAppendJsonString(&gates, "shape", shape[0] ? shape : "compatible");
	appendStringInfo(&gates, ", \"forced\": %s}", force ? "true" : "false");

	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("UPDATE elt.deploy_interfaces SET live_color = $2, canary_deployment = NULL,"
							  " canary_roles = NULL, canary_percent = NULL WHERE interface = $1",
							  2, (Oid[]) {NAMEOID, TEXTOID},
							  (Datum[]) {CStringGetDatum(name), CStringGetTextDatum(iface.last.to_color)}, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_execute_with_args("UPDATE elt.deployment_defs SET state = 'promoted', promoted_by = $2, promoted_at = pg_catalog.now(),"
							  " promote_reason = $3, forced = $4, gates = $5::pg_catalog.jsonb WHERE deployment_id = $1",
							  5, (Oid[]) {INT8OID, OIDOID, TEXTOID, BOOLOID, TEXTOID},
							  (Datum[]) {Int64GetDatum(iface.last.id), ObjectIdGetDatum(cw.actor), CStringGetTextDatum(reason),
							  BoolGetDatum(force), CStringGetTextDatum(gates.data)}, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "recording the promotion failed");
	record_event(&cw, iface.last.id, name, "deploy_promote", reason,
				 psprintf("{\"live\": \"%s\", \"gates\": %s, %s%s}", candidate, gates.data, switched,
						  iface.canary != 0 ? ", \"canary_ended\": true" : ""));
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
	char	   *name = interface_arg(fcinfo, 0);
	char	   *reason = EltRequiredText(fcinfo, 1, "reason");
	Interface	iface;
	char	   *previous;
	char	   *switched;
	EltCatalogWrite cw;

	load_interface(name, &iface);
	if (iface.last.id == 0 || strcmp(iface.last.state, "promoted") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interface \"%s\" has no promotion to roll back", name),
				 errhint("elt.deployments lists its deployments and their states.")));
	previous = color_schema(name, iface.last.from_color);
	if (!OidIsValid(get_namespace_oid(previous, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" of the previous version no longer exists", previous),
				 errhint("It was dropped outside elt.deploy_decommission(); prepare and promote a fixed version instead.")));
	refuse_row_security(name, "elt.deploy_rollback()", previous, NULL);
	switched = switch_views(&iface, previous, true, reason);

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
	record_event(&cw, iface.last.id, name, "deploy_rollback", reason,
				 psprintf("{\"live\": \"%s\", %s}", previous, switched));
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
 * the session's backend slot (the leader's, in a parallel worker) and the
 * deployment, so that it holds for the whole session, in parallel workers
 * too, and differs between deployments.  The canary's views call it with
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
		uint32		h = hash_combine(hash_uint32((uint32) BackendIdForTempRelations()),
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
 * appear at promotion).  Returns a JSON list of the views.  SPI connected,
 * views locked, shapes compatible.
 */
static char *
canary_views(Oid nsp, const char *interface, const char *live, const char *candidate, const char *pick)
{
	uint64		i;
	List	   *stmts = NIL;
	ListCell   *lc;
	StringInfoData changes;
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
	initStringInfo(&changes);
	appendStringInfoChar(&changes, '[');
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
		if (changes.len > 1)
			appendStringInfoString(&changes, ", ");
		escape_json(&changes, name);
	}
	appendStringInfoChar(&changes, ']');
	foreach(lc, stmts)
		EltSpiExec(lfirst(lc));
	return changes.data;
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
	char	   *name = interface_arg(fcinfo, 0);
	bool		has_percent = !PG_ARGISNULL(2);
	int			percent = has_percent ? PG_GETARG_INT32(2) : -1;
	List	   *roles = NIL;
	Interface	iface;
	char	   *candidate;
	char	   *live;
	char	   *shape;
	char	   *checks;
	char	   *failed;
	char	   *views;
	int			attempts;
	StringInfoData rolearr;
	StringInfoData d;
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

	load_interface(name, &iface);
	if (iface.last.id == 0 || strcmp(iface.last.state, "prepared") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interface \"%s\" has no prepared candidate for a canary", name),
				 errhint("Prepare one with elt.deploy_prepare('%s') and build the new version into it.", name)));
	candidate = color_schema(name, iface.last.to_color);
	live = color_schema(name, iface.live_color);
	refuse_row_security(name, "elt.deploy_canary()", live, candidate);

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

		MemoryContext outer = CurrentMemoryContext;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		attempts = lock_views(iface.nsp, name);
		views = MemoryContextStrdup(outer, canary_views(iface.nsp, name, live, candidate, pick));
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
	initStringInfo(&d);
	appendStringInfoChar(&d, '{');
	EltAppendJsonString(&d, "candidate", candidate);
	appendStringInfoString(&d, ", \"roles\": [");
	foreach(lc, roles)
	{
		if (lc != list_head(roles))
			appendStringInfoString(&d, ", ");
		escape_json(&d, GetUserNameFromId(lfirst_oid(lc), false));
	}
	appendStringInfoChar(&d, ']');
	if (percent != -1)
		EltAppendJsonInt(&d, "percent", percent);
	appendStringInfo(&d, ", \"gates\": {\"checks\": %s}, \"lock_attempts\": %d, \"views\": %s}", checks, attempts, views);
	record_event(&cw, iface.last.id, name, iface.canary != 0 ? "deploy_canary_change" : "deploy_canary", NULL, d.data);
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
	char	   *name = interface_arg(fcinfo, 0);
	char	   *reason = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	Interface	iface;
	char	   *switched;
	EltCatalogWrite cw;
	int64		id;

	load_interface(name, &iface);
	if (iface.canary == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interface \"%s\" has no canary running", name),
				 errhint("elt.deployments shows which deployment, if any, is in a canary.")));
	id = iface.canary;
	switched = switch_views(&iface, color_schema(name, iface.live_color), false, reason);

	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("UPDATE elt.deploy_interfaces SET canary_deployment = NULL, canary_roles = NULL,"
							  " canary_percent = NULL WHERE interface = $1",
							  1, (Oid[]) {NAMEOID}, (Datum[]) {CStringGetDatum(name)}, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "recording the end of the canary failed");
	record_event(&cw, id, name, "deploy_canary_stop", reason,
				 psprintf("{\"live\": \"%s\", %s}", color_schema(name, iface.live_color), switched));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(elt_deploy_decommission);

/*
 * elt.deploy_decommission(interface text, keep interval DEFAULT '7 days')
 * RETURNS text: drop the color the last promotion left, once the grace
 * period since the promotion has passed and if it was not rolled back;
 * returns the schema dropped.
 */
Datum
elt_deploy_decommission(PG_FUNCTION_ARGS)
{
	char	   *name = interface_arg(fcinfo, 0);
	Interval   *keep;
	Interface	iface;
	char	   *old;
	TimestampTz until;
	EltCatalogWrite cw;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("keep must not be null")));
	keep = PG_GETARG_INTERVAL_P(1);
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(keep),
										  DirectFunctionCall3(interval_in, CStringGetDatum("0"),
															  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keep must not be negative"),
				 errhint("It is how long the previous color is kept after the promotion, for example '7 days'.")));
	load_interface(name, &iface);
	if (iface.last.id == 0 || strcmp(iface.last.state, "promoted") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interface \"%s\" has no previous color to decommission", name),
				 errdetail("%s", iface.last.id == 0 ? "Nothing was promoted yet." :
						   strcmp(iface.last.state, "rolled_back") == 0 ?
						   psprintf("Deployment " INT64_FORMAT " was rolled back: the live color is the previous one again.", iface.last.id) :
						   psprintf("Deployment " INT64_FORMAT " is %s.", iface.last.id, iface.last.state)),
				 errhint("A rolled-back candidate is replaced by the next elt.deploy_prepare().")));
	until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(iface.last.promoted_at),
													IntervalPGetDatum(keep)));
	if (GetCurrentTransactionStartTimestamp() < until)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the grace period of deployment " INT64_FORMAT " ends at %s", iface.last.id,
						timestamptz_to_str(until)),
				 errdetail("Until then the previous color is kept for elt.deploy_rollback()."),
				 errhint("Decommission after that, or pass a shorter keep.")));
	old = color_schema(name, iface.last.from_color);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (OidIsValid(get_namespace_oid(old, true)))
		drop_color(old);
	SPI_finish();

	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("UPDATE elt.deployment_defs SET state = 'decommissioned', decommissioned_by = $2,"
							  " decommissioned_at = pg_catalog.now() WHERE deployment_id = $1",
							  2, (Oid[]) {INT8OID, OIDOID},
							  (Datum[]) {Int64GetDatum(iface.last.id), ObjectIdGetDatum(cw.actor)}, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "recording the decommission failed");
	{
		StringInfoData d;

		initStringInfo(&d);
		appendStringInfoChar(&d, '{');
		EltAppendJsonString(&d, "dropped", old);
		appendStringInfoChar(&d, '}');
		record_event(&cw, iface.last.id, name, "deploy_decommission", NULL, d.data);
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_TEXT_P(cstring_to_text(old));
}
