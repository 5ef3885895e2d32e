/*
 * deploy.c — blue-green deployments of a schema behind an interface of
 * views: the SQL API that makes and drops colors, and what the switches
 * share.
 *
 * Owns elt.deploy_interfaces, elt.deployment_defs and
 * elt.deployment_event_log, and the rule that a color's tables never have
 * row level security (EltDeployGuardRowSecurity, which versions_capture.c calls
 * at ddl_command_start).  elt.deploy_init() moves a schema's tables to
 * <interface>__blue (ALTER TABLE ... SET SCHEMA keeps oids, data, indexes
 * and grants) and puts one view per table in the interface schema;
 * views elsewhere that read those tables (a reporting schema's) are made
 * again to read the interface's views (EltDeployOutsideViews,
 * EltDeployRemakeOutsideView, which deploy_switch.c also uses when a forced
 * switch makes an interface view again);
 * deploy_prepare() makes the idle color's tables; deploy_decommission()
 * drops the old color.  Switching the views (deploy_promote,
 * deploy_rollback, the canary) is in deploy_switch.c, which shares
 * reading the interface, the event log and the grant copies with this
 * file (deploy_int.h); the comparisons (deploy_compare, deploy_diff) are
 * in deploy_compare.c.
 *
 * Layering: called from the entry point and versions_capture.c (deploy.h) and
 * from deploy_switch.c (deploy_int.h); calls audit.c and util*.c only.
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
 * defaults, all code of the owner's.  A view elsewhere that reads the
 * interface is made again as its owner in the same way (names in it are
 * resolved with the owner's privileges), and only when the caller has the
 * owner's privileges.  Nothing else here runs code of
 * another role with the caller's rights: the other statements move,
 * create, grant and drop without evaluating an expression (views are
 * column references over a table), setval and the catalog queries call
 * built-in functions only, and the switches run none either
 * (deploy_switch.c).  The
 * comparisons (deploy_compare, deploy_diff) compare each table as its
 * owner, the same way (deploy_compare.c).
 *
 * Locking: every function here but deploy_init first locks the
 * interface's row FOR UPDATE (EltDeployLoadInterface), so the deployments
 * of an interface change one at a time; the DDL takes the locks PostgreSQL
 * takes for it.  A switch's locking of the views is described in
 * deploy_switch.c.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "citus.h"
#include "deploy.h"
#include "deploy_int.h"
#include "util.h"

Oid			EltDeployMovingTable = InvalidOid;

static const char *
other_color(const char *color)
{
	return strcmp(color, "blue") == 0 ? "green" : "blue";
}

/* The schema of one color of an interface: <interface>__<color>. */
char *
EltDeployColorSchema(const char *interface, const char *color)
{
	return psprintf("%s__%s", interface, color);
}

/* The interface argument: a name that leaves room for "__green". */
char *
EltDeployInterfaceArg(FunctionCallInfo fcinfo, int argno)
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
void
EltDeployLoadInterface(const char *name, Interface *iface)
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
void
EltDeployRefuseRowSecurity(const char *interface, const char *action, const char *a, const char *b)
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
void
EltDeployExecGenerated(const char *query, int nargs, Oid *types, Datum *values)
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
void
EltDeployCopyRelationGrants(Oid src, const char *object, const char *target_rel, bool comments)
{
	EltDeployExecGenerated("SELECT pg_catalog.format('ALTER %s OWNER TO %I', $2, pg_catalog.pg_get_userbyid(c.relowner))"
				   " FROM pg_catalog.pg_class c WHERE c.oid = $1"
				   " UNION ALL SELECT g FROM pg_catalog.pg_class c, elt._acl_grants(c.relacl, c.relowner, $2) g"
				   " WHERE c.oid = $1"
				   " UNION ALL SELECT g FROM elt._column_acl_grants($1, $2) g",
				   2, (Oid[]) {OIDOID, TEXTOID}, (Datum[]) {ObjectIdGetDatum(src), CStringGetTextDatum(object)});
	if (comments)
		EltDeployExecGenerated("SELECT elt._comment_copies($1, $2)", 2, (Oid[]) {OIDOID, TEXTOID},
					   (Datum[]) {ObjectIdGetDatum(src), CStringGetTextDatum(target_rel)});
}

/*
 * The views outside schema inside (InvalidOid: none) that read one of the
 * relations rels, and with transitive the views that read those, in
 * dependency order (a view after the views it reads), allocated in cxt.
 * Their definitions are read with search_path pinned to pg_catalog, so
 * that every other name in them is qualified: made again after the
 * interface's view took a table's name, the same text reads the view.
 * With grants, each also gets the statements that give it back its
 * grants, column grants and comments (for a view dropped and made again),
 * once the caller is found to have its owner's privileges (interface
 * names the interface in the error).  Materialized views are not listed (deploy_init refuses them).
 * SPI connected.
 */
List *
EltDeployOutsideViews(Oid *rels, int nrels, Oid inside, const char *interface, bool transitive, bool grants,
					  MemoryContext cxt)
{
	EltAsRole	ar;
	List	   *views = NIL;
	uint64		i;
	Datum	   *d;
	int			k;

	if (nrels == 0)
		return NIL;
	d = palloc(sizeof(Datum) * nrels);
	for (k = 0; k < nrels; k++)
		d[k] = ObjectIdGetDatum(rels[k]);
	/* as the caller, with only the search_path pinned: built-in functions over the catalogs */
	EltAsRoleBegin(&ar, GetUserId(), "pg_catalog, pg_temp", false);
	if (SPI_execute_with_args("WITH RECURSIVE dep(oid, depth, reads) AS ("
							  " SELECT v.oid, 1, d.refobjid FROM pg_catalog.pg_depend d"
							  "  JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid JOIN pg_catalog.pg_class v ON v.oid = w.ev_class"
							  "  WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
							  "   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							  "   AND d.refobjid OPERATOR(pg_catalog.=) ANY ($1) AND v.oid <> d.refobjid AND v.relkind = 'v' AND v.relpersistence <> 't' AND v.relnamespace <> $2"
							  " UNION ALL"
							  " SELECT v.oid, dep.depth + 1, d.refobjid FROM dep JOIN pg_catalog.pg_depend d ON d.refobjid = dep.oid"
							  "   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
							  "  JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid JOIN pg_catalog.pg_class v ON v.oid = w.ev_class"
							  "  WHERE $3 AND v.oid <> dep.oid AND v.relkind = 'v' AND v.relpersistence <> 't' AND v.relnamespace <> $2)"
							  " SELECT c.oid, c.relowner, c.oid::pg_catalog.regclass::pg_catalog.text AS name,"
							  "  (SELECT pg_catalog.string_agg(DISTINCT x.reads::pg_catalog.regclass::pg_catalog.text, ', ')"
							  "   FROM dep x WHERE x.oid = c.oid) AS reads,"
							  "  (SELECT pg_catalog.string_agg(pg_catalog.format('%I=%L', pg_catalog.split_part(o, '=', 1),"
							  "     pg_catalog.substr(o, pg_catalog.strpos(o, '=') + 1)), ', ') FROM pg_catalog.unnest(c.reloptions) o) AS options,"
							  "  pg_catalog.pg_get_viewdef(c.oid) AS definition"
							  " FROM (SELECT oid, pg_catalog.max(depth) AS depth FROM dep GROUP BY oid) o"
							  " JOIN pg_catalog.pg_class c ON c.oid = o.oid ORDER BY o.depth, c.oid",
							  3, (Oid[]) {OIDARRAYOID, OIDOID, BOOLOID},
							  (Datum[]) {PointerGetDatum(construct_array(d, nrels, OIDOID, sizeof(Oid), true, TYPALIGN_INT)),
							  ObjectIdGetDatum(inside), BoolGetDatum(transitive)}, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "listing the views that read the interface failed");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext spi = MemoryContextSwitchTo(cxt);
		DeployOutsideView *v = palloc0(sizeof(DeployOutsideView));
		char	   *options = EltSpiGetText(i, "options");

		v->oid = DatumGetObjectId(EltSpiGetDatum(i, "oid", &isnull));
		v->owner = DatumGetObjectId(EltSpiGetDatum(i, "relowner", &isnull));
		v->name = pstrdup(EltSpiGetText(i, "name"));
		v->reads = pstrdup(EltSpiGetText(i, "reads"));
		v->options = options ? psprintf(" WITH (%s)", options) : pstrdup("");
		v->definition = pstrdup(EltSpiGetText(i, "definition"));
		views = lappend(views, v);
		MemoryContextSwitchTo(spi);
	}
	EltAsRoleEnd(&ar);
	if (grants)
	{
		ListCell   *lc;

		foreach(lc, views)
		{
			DeployOutsideView *v = lfirst(lc);
			char	   *object = psprintf("TABLE %s", v->name);
			List	   *stmts;
			ListCell   *sc;
			MemoryContext spi;

			EltDeployRequireViewOwner(v, interface);
			stmts = generated_statements("SELECT g FROM pg_catalog.pg_class c, elt._acl_grants(c.relacl, c.relowner, $2) g"
										 " WHERE c.oid = $1"
										 " UNION ALL SELECT g FROM elt._column_acl_grants($1, $2) g"
										 " UNION ALL SELECT elt._comment_copies($1, $3)",
										 3, (Oid[]) {OIDOID, TEXTOID, TEXTOID},
										 (Datum[]) {ObjectIdGetDatum(v->oid), CStringGetTextDatum(object),
										 CStringGetTextDatum(v->name)});
			spi = MemoryContextSwitchTo(cxt);
			foreach(sc, stmts)
				v->grants = lappend(v->grants, pstrdup(lfirst(sc)));
			MemoryContextSwitchTo(spi);
		}
	}
	return views;
}

/* Run one statement (EltTrySubxact's callback). */
static void
exec_statement(void *sql)
{
	EltSpiExec(sql);
}

/*
 * Refuse to drop or remake outside view v unless the caller has the
 * privileges of its owner (or is a superuser): what it could do to the
 * view directly.
 */
void
EltDeployRequireViewOwner(DeployOutsideView *v, const char *interface)
{
	if (!has_privs_of_role(GetUserId(), v->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to make view %s read the views of interface \"%s\"", v->name, interface),
				 errdetail("The view reads %s and is owned by role \"%s\", whose privileges you do not have.",
						   v->reads, GetUserNameFromId(v->owner, false)),
				 errhint("A member of role \"%s\" (or a superuser) must do it, or the view must be dropped first.",
						 GetUserNameFromId(v->owner, false))));
}

/*
 * Make outside view v again from its definition (CREATE OR REPLACE with
 * replace, which keeps its oid, owner, grants, comments and the views on
 * it; else CREATE, after which v->grants are run), with its options, so
 * that it reads what now has the names it names: the interface's views.
 * It is made as its owner, in a security-restricted operation with a
 * pinned search_path, so that no one gains rights: the caller must have
 * the privileges of the owner (or be a superuser), as to replace it
 * directly.  A failure names the view and says what to do.  SPI
 * connected.
 */
void
EltDeployRemakeOutsideView(DeployOutsideView *v, const char *interface, bool replace)
{
	EltAsRole	ar;
	ErrorData  *e;
	ListCell   *lc;

	EltDeployRequireViewOwner(v, interface);
	EltAsRoleBegin(&ar, v->owner, "pg_catalog, pg_temp", true);
	e = EltTrySubxact(exec_statement, psprintf("CREATE %sVIEW %s%s AS %s", replace ? "OR REPLACE " : "",
											   v->name, v->options, v->definition));
	EltAsRoleEnd(&ar);
	if (e != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("view %s cannot be made to read the views of interface \"%s\"", v->name, interface),
				 errdetail("It reads %s; made again on the interface's views: %s.", v->reads, e->message),
				 errhint("It is made again as its owner, role \"%s\", with that role's privileges (USAGE on the schemas it names), "
						 "and follows the interface when it reads columns the interface's views have, with the same types "
						 "(not a whole-row reference or a system column such as ctid). Fix that, or drop the view "
						 "and make it again on the interface's views afterwards.", GetUserNameFromId(v->owner, false))));
	if (!replace)
	{
		CommandCounterIncrement();
		foreach(lc, v->grants)
			EltSpiExec(lfirst(lc));
	}
}

/* Write an event (and the audit row) as the extension's owner. */
void
EltDeployRecordEvent(EltCatalogWrite *cw, int64 deployment_id, const char *interface, const char *action,
			 const char *reason, const char *details)
{
	static SPIPlanPtr plan = NULL;
	EltJson		a;

	EltPrepare(&plan,
			   "INSERT INTO elt.deployment_event_log (deployment_id, interface, action, actor, happened_at, reason, details)"
			   " VALUES ($1, $2, $3, $4, pg_catalog.clock_timestamp(), $5, $6::pg_catalog.jsonb)",
			   6, (Oid[]) {INT8OID, NAMEOID, TEXTOID, OIDOID, TEXTOID, TEXTOID});
	EltExec(plan, (Datum[]) {Int64GetDatum(deployment_id), CStringGetDatum(interface),
			CStringGetTextDatum(action), ObjectIdGetDatum(cw->actor),
			reason ? CStringGetTextDatum(reason) : (Datum) 0, CStringGetTextDatum(details)},
			(char[]) {deployment_id ? ' ' : 'n', ' ', ' ', ' ', reason ? ' ' : 'n', ' '}, 0);
	EltJsonBegin(&a);
	if (deployment_id)
		EltJsonInt(&a, "deployment_id", deployment_id);
	EltJsonRaw(&a, "event", details);
	EltAuditRecord(cw->actor, action, interface, EltJsonFinish(&a), EltAuditReason(reason));
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
 * returns the number of tables.  Views elsewhere that read the tables are
 * made again to read the interface's views instead (as their owners), so
 * that they follow every switch.  Anything else in the schema, and objects
 * elsewhere that name its tables and cannot follow (foreign keys,
 * materialized views, function bodies, rules, policies, views of owners
 * the caller cannot act for), are listed in an error and nothing changes.
 */
Datum
elt_deploy_init(PG_FUNCTION_ARGS)
{
	char	   *name = EltDeployInterfaceArg(fcinfo, 0);
	Oid			nsp = get_namespace_oid(name, true);
	char	   *blue = EltDeployColorSchema(name, "blue");
	EltCatalogWrite cw;
	List	   *tables = NIL;
	StringInfoData problems;
	uint64		i;
	ListCell   *lc;
	int			n;
	bool		row_security = false;
	List	   *outside = NIL;
	MemoryContext outer = CurrentMemoryContext;

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
	if (OidIsValid(get_namespace_oid(blue, true)) || OidIsValid(get_namespace_oid(EltDeployColorSchema(name, "green"), true)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_SCHEMA),
				 errmsg("schema \"%s\" or \"%s\" already exists", blue, EltDeployColorSchema(name, "green")),
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
		" UNION ALL SELECT DISTINCT 5, pg_catalog.format('materialized view %s reads %s (it holds rows: refreshed, it would keep reading the moved table)',"
		"   v.oid::pg_catalog.regclass, t.oid::pg_catalog.regclass)"
		"  FROM pg_catalog.pg_class t JOIN pg_catalog.pg_depend d ON d.refobjid = t.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
		"  JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
		"  JOIN pg_catalog.pg_class v ON v.oid = w.ev_class"
		"  WHERE t.relnamespace = $1 AND t.relkind = 'r' AND v.oid <> t.oid AND v.relkind = 'm'"
		" UNION ALL SELECT 5, pg_catalog.format('view %s reads %s and is owned by %s, whose privileges you do not have"
		" (it would be made again as its owner to read the interface''s views)',"
		"   v.oid::pg_catalog.regclass, pg_catalog.string_agg(DISTINCT t.oid::pg_catalog.regclass::pg_catalog.text, ', '),"
		"   v.relowner::pg_catalog.regrole)"
		"  FROM pg_catalog.pg_class t JOIN pg_catalog.pg_depend d ON d.refobjid = t.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
		"  JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
		"  JOIN pg_catalog.pg_class v ON v.oid = w.ev_class"
		"  WHERE t.relnamespace = $1 AND t.relkind = 'r' AND v.oid <> t.oid AND v.relkind = 'v' AND v.relnamespace <> $1"
		"   AND NOT pg_catalog.pg_has_role(v.relowner, 'USAGE') AND v.relpersistence <> 't' GROUP BY v.oid"
		" UNION ALL SELECT DISTINCT 5, pg_catalog.format('temporary view %s reads %s (it would keep reading the moved table: its session must end first)',"
		"   v.oid::pg_catalog.regclass, t.oid::pg_catalog.regclass)"
		"  FROM pg_catalog.pg_class t JOIN pg_catalog.pg_depend d ON d.refobjid = t.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
		"  JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
		"  JOIN pg_catalog.pg_class v ON v.oid = w.ev_class"
		"  WHERE t.relnamespace = $1 AND t.relkind = 'r' AND v.oid <> t.oid AND v.relkind = 'v' AND v.relpersistence = 't'"
		" UNION ALL SELECT DISTINCT 5, pg_catalog.format('%s names %s (it would keep using the moved table)',"
		"   pg_catalog.pg_describe_object(d.classid, d.objid, 0), t.oid::pg_catalog.regclass)"
		"  FROM pg_catalog.pg_class t JOIN pg_catalog.pg_depend d ON d.refobjid = t.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
		"  LEFT JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
		"  LEFT JOIN pg_catalog.pg_class wr ON wr.oid = w.ev_class"
		"  LEFT JOIN pg_catalog.pg_policy y ON y.oid = d.objid AND d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass"
		"  LEFT JOIN pg_catalog.pg_trigger g ON g.oid = d.objid AND d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass"
		"  LEFT JOIN pg_catalog.pg_proc f ON f.oid = d.objid AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"
		"  WHERE t.relnamespace = $1 AND t.relkind = 'r' AND d.deptype = 'n'"
		"   AND COALESCE((SELECT o.relnamespace FROM pg_catalog.pg_class o WHERE o.oid = COALESCE(w.ev_class, y.polrelid, g.tgrelid)),"
		"        f.pronamespace) <> $1"
		"   AND (f.oid IS NOT NULL OR y.oid IS NOT NULL OR g.oid IS NOT NULL"
		"        OR (w.oid IS NOT NULL AND NOT (w.rulename = '_RETURN' AND wr.relkind IN ('v', 'm'))))"
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
				 errhint("An interface holds ordinary tables (with their indexes, constraints and sequences); "
						 "views elsewhere that read them are made to read the interface's views. "
						 "Move the rest to another schema; drop what names its tables elsewhere (foreign keys into it: a view cannot be referenced; "
						 "materialized views, functions, rules, policies) and make it again on the interface's views after elt.deploy_init(); "
						 "a view owned by a role whose privileges you lack is made to follow by a member of that role.%s",
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

	/*
	 * The views elsewhere that read the tables, with their definitions as
	 * they are now (every name qualified): made again once the interface's
	 * views have the tables' names, they read those.
	 */
	{
		Oid		   *rels = palloc(sizeof(Oid) * list_length(tables));
		int			k = 0;

		foreach(lc, tables)
			rels[k++] = (Oid) (uintptr_t) linitial((List *) lfirst(lc));
		outside = EltDeployOutsideViews(rels, k, nsp, name, false, false, outer);
	}

	/* the blue color, owned and granted as the interface schema */
	EltSpiExec(psprintf("CREATE SCHEMA %s AUTHORIZATION %s", quote_identifier(blue),
						quote_identifier(GetUserNameFromId(EltNamespaceOwner(nsp), false))));
	EltDeployExecGenerated("SELECT g FROM pg_catalog.pg_namespace n, elt._acl_grants(n.nspacl, n.nspowner, $2) g WHERE n.oid = $1",
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
		EltDeployExecGenerated("SELECT pg_catalog.format('CREATE VIEW %s AS SELECT %s FROM %s', $2,"
					   " pg_catalog.string_agg(pg_catalog.format('%I', c.name), ', ' ORDER BY c.attnum), $1::pg_catalog.regclass)"
					   " FROM elt._deploy_columns($1) c",
					   2, (Oid[]) {OIDOID, TEXTOID}, (Datum[]) {ObjectIdGetDatum(relid), CStringGetTextDatum(qview)});
		CommandCounterIncrement();
		EltDeployCopyRelationGrants(relid, psprintf("TABLE %s", qview), qview, true);
	}
	CommandCounterIncrement();
	foreach(lc, outside)
		EltDeployRemakeOutsideView(lfirst(lc), name, true);
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
		EltJson		d;

		EltJsonBegin(&d);
		EltJsonString(&d, "live", blue);
		EltJsonInt(&d, "tables", n);
		if (outside != NIL)
		{
			EltJsonBeginArray(&d, "views_repointed");
			foreach(lc, outside)
				EltJsonString(&d, NULL, ((DeployOutsideView *) lfirst(lc))->name);
			EltJsonEndArray(&d);
		}
		EltDeployRecordEvent(&cw, 0, name, "deploy_init", NULL, EltJsonFinish(&d));
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
	EltDeployExecGenerated("SELECT pg_catalog.format('DROP TABLE %s', pg_catalog.string_agg(c.oid::pg_catalog.regclass::text, ', ' ORDER BY c.relname))"
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
 * The candidate of a Citus table is a Citus table of the same kind: a
 * distributed table on the same column, colocated with the live one (so
 * with as many shards, placed alike), or a reference table.  As the
 * owner, like the rest of the build.  Any other kind of Citus table is
 * refused rather than made local without a word.
 */
static void
distribute_like(Oid owner, Oid relid, const char *from, const char *to)
{
	EltCitusTable info;
	char	   *stmt;

	if (!EltCitusTableInfo(relid, &info))
		return;
	if (info.method == 'h' && info.column != NULL)
		stmt = psprintf("SELECT pg_catalog.create_distributed_table(%s, %s, colocate_with => %s)",
						quote_literal_cstr(to), quote_literal_cstr(info.column),
						quote_literal_cstr(from));
	else if (info.method == 'n' && info.replication == 't')
		stmt = psprintf("SELECT pg_catalog.create_reference_table(%s)", quote_literal_cstr(to));
	else
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot prepare a candidate of Citus table %s", from),
				 errdetail("Only hash-distributed and reference tables get candidates distributed like them."),
				 errhint("Make %s a hash-distributed or a reference table, or take it out of the interface.", from)));
	exec_as_owner(owner, list_make1(stmt));
}

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
	char	   *name = EltDeployInterfaceArg(fcinfo, 0);
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

	EltDeployLoadInterface(name, &iface);
	idle = other_color(iface.live_color);
	idle_schema = EltDeployColorSchema(name, idle);
	live_schema = EltDeployColorSchema(name, iface.live_color);
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
	EltDeployRefuseRowSecurity(name, "elt.deploy_prepare()", live_schema, NULL);

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
	EltDeployExecGenerated("SELECT g FROM pg_catalog.pg_namespace n, elt._acl_grants(n.nspacl, n.nspowner, $2) g"
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
		 * act as the owner anyway (see EltDeployCopyRelationGrants below).
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
		EltDeployCopyRelationGrants(relid, psprintf("TABLE %s", to), to, false);
		/* a Citus table's candidate is distributed as it is, before any row */
		distribute_like(owner, relid, from, to);
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
		EltJson		d;

		EltJsonBegin(&d);
		EltJsonString(&d, "candidate", idle_schema);
		EltJsonInt(&d, "tables", list_length(tables));
		EltJsonBool(&d, "copy_data", copy_data);
		if (replaced)
			EltJsonInt(&d, "replaces_deployment", iface.last.id);
		EltDeployRecordEvent(&cw, id, name, "deploy_prepare", NULL, EltJsonFinish(&d));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_TEXT_P(cstring_to_text(idle_schema));
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
	char	   *name = EltDeployInterfaceArg(fcinfo, 0);
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
	EltDeployLoadInterface(name, &iface);
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
	old = EltDeployColorSchema(name, iface.last.from_color);
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
		EltJson		d;

		EltJsonBegin(&d);
		EltJsonString(&d, "dropped", old);
		EltDeployRecordEvent(&cw, iface.last.id, name, "deploy_decommission", NULL, EltJsonFinish(&d));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_TEXT_P(cstring_to_text(old));
}
