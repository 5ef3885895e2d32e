/*
 * checks.c — quality checks: declared expectations on relations, run on
 * demand and as gates of a promotion.
 *
 * Owns elt.check_defs and elt.check_result_log.  A check's query (made by
 * elt._check_sql from its kind and arguments) returns the failing rows; it
 * runs as the check's owner, as a security-restricted operation, in a
 * subtransaction (an error is the check's status, not the caller's), and
 * only for callers that have the privileges of that owner or are
 * elt_operator: a check never runs with more rights than the role that
 * declared it.  What it finds (the count and a sample of failing rows, an
 * error message) was read with the owner's rights, so elt.check_run()
 * returns it only to the owner's members and elt_reader (an operator gets
 * the status), and elt.check_results shows it, the status too, to them and
 * to roles that read the relations themselves (no row-level security
 * applying; never for custom checks).  A check declared
 * on a view of a deployment interface also applies to the table of the
 * same name in either color, so that a candidate is checked before it is
 * promoted.
 *
 * Layering: an engine below deploy.c (EltChecksRunGate).  It calls
 * manifest.c only for the run a result belongs to (EltPipelineRunId,
 * EltCurrentRunId), and the shared layers: audit, roles, util.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "checks.h"
#include "manifest.h"
#include "roles.h"
#include "util.h"

#define CHECK_SAMPLE_ROWS 5

/* One check to run on one relation. */
typedef struct CheckJob
{
	int64		check_id;
	char	   *name;
	char	   *kind;
	char	   *args;
	char	   *severity;
	Oid			owner;
	char	   *search_path;	/* recorded at creation; NULL before 0.7.0 */
	Oid			declared_on;
	char	   *checked;		/* the relation checked, quoted */
	char	   *live;			/* the interface view (live rows), for row_count_delta */
	char	   *related;		/* relationships: the referenced table in the same color */
	/* the result */
	char	   *status;
	int64		failing;
	bool		failing_null;
	char	   *sample;
	char	   *message;
	bool		refused;		/* not run: the caller may not run it */
	double		ms;
} CheckJob;

/* Refuse SQL that is not one SELECT (a check's query comes from its arguments). */
static void
require_one_select(const char *sql)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);

	if (list_length(raw) != 1 || !IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a check's query must be one SELECT"),
				 errdetail("Query: %s", sql),
				 errhint("A custom check is one SELECT that returns the failing rows; {rel} stands for the relation checked.")));
}

/* The failing-rows query of a job (SPI connected). */
static char *
job_sql(CheckJob *j)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *sql;

	if (SPI_execute_with_args("SELECT elt._check_sql($1, $2::pg_catalog.jsonb, $3, $4, $5) AS q",
							  5, (Oid[]) {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID},
							  (Datum[]) {CStringGetTextDatum(j->kind), CStringGetTextDatum(j->args),
							  CStringGetTextDatum(j->checked), j->live ? CStringGetTextDatum(j->live) : (Datum) 0,
							  j->related ? CStringGetTextDatum(j->related) : (Datum) 0},
							  (char[]) {' ', ' ', ' ', j->live ? ' ' : 'n', j->related ? ' ' : 'n'}, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "making a check's query failed");
	sql = MemoryContextStrdup(outer, EltSpiGetText(0, "q"));
	require_one_select(sql);
	return sql;
}

/*
 * The body of run_job, in a subtransaction (EltTrySubxact): the check's
 * query as its owner; the failing rows and sample are set.
 */
static void
run_job_query(void *arg)
{
	CheckJob   *j = arg;
	MemoryContext cxt = CurrentMemoryContext;
	EltAsRole	ar;
	char	   *sql;
	const char *path = j->search_path;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql = job_sql(j);

	/*
	 * Names in the check's SQL mean what they meant to its owner: the
	 * search_path it was declared with, never one the caller chose (an
	 * operator's function would run as the owner).  A check declared
	 * before 0.7.0 has none: a member of the owner keeps its own, anyone
	 * else gets pg_catalog only.
	 */
	if (path == NULL && !EltRoleMayActAs(GetUserId(), j->owner))
		path = "pg_catalog, pg_temp";
	EltAsRoleBegin(&ar, j->owner, path, true);
	if (SPI_execute_with_args(psprintf("WITH q AS MATERIALIZED (%s)"
									   " SELECT (SELECT pg_catalog.count(*) FROM q) AS n,"
									   " (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s)) FROM (SELECT * FROM q LIMIT %d) s)::text AS sample",
									   sql, CHECK_SAMPLE_ROWS),
							  0, NULL, NULL, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "running a check failed");
	EltAsRoleEnd(&ar);
	{
		bool		isnull;
		char	   *sample = EltSpiGetText(0, "sample");

		j->failing = EltSpiGetInt64(0, "n", &isnull);
		j->failing_null = false;
		j->sample = sample ? MemoryContextStrdup(cxt, sample) : NULL;
	}
	SPI_finish();
}

/* Run one job as its owner; its status, failing rows, sample or message are set. */
static void
run_job(CheckJob *j)
{
	TimestampTz start = GetCurrentTimestamp();
	long		secs;
	int			usecs;
	ErrorData  *e;

	j->failing_null = true;
	if (!EltRoleMayActAs(GetUserId(), j->owner) && !EltRoleIsOperator(GetUserId()))
	{
		const char *owner = GetUserNameFromId(j->owner, true);

		j->status = "error";
		j->message = psprintf("check \"%s\" belongs to role %s: only its members and members of %s may run it",
							  j->name, owner ? owner : psprintf("%u (dropped)", j->owner), ELT_ROLE_OPERATOR);
		j->refused = true;
		return;
	}
	if (!EltRoleMayActAs(GetUserId(), j->owner) && EltSessionHasTempObjects())
	{
		j->status = "error";
		j->message = psprintf("check \"%s\" runs as its owner, and this session has temporary tables or types: "
							  "run it in a session without them (a temporary object could stand for a name in its SQL)",
							  j->name);
		j->refused = true;
		return;
	}
	e = EltTrySubxact(run_job_query, j);
	if (e == NULL)
		j->status = j->failing == 0 ? "pass" : strcmp(j->severity, "error") == 0 ? "fail" : "warn";
	else
	{
		j->status = "error";
		j->message = e->message;
		j->failing_null = true;
		j->sample = NULL;
	}
	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	j->ms = secs * 1000.0 + usecs / 1000.0;
}

/*
 * The checks that apply to target — a relation, or every relation of a
 * schema (a name without a dot that names a schema) — including those
 * declared on interface views for the tables of either color.
 */
static List *
find_jobs(const char *target)
{
	EltCatalogWrite cw;
	MemoryContext outer = CurrentMemoryContext;
	Oid			relid = InvalidOid;
	Oid			nsp = InvalidOid;
	List	   *jobs = NIL;
	uint64		i;

	if (strchr(target, '.') == NULL)
		nsp = get_namespace_oid(target, true);
	if (!OidIsValid(nsp))
	{
		List	   *names = stringToQualifiedNameList(target);

		/* a quoted schema name, or a relation */
		if (list_length(names) == 1)
			nsp = get_namespace_oid(strVal(linitial(names)), true);
		if (!OidIsValid(nsp))
			relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
		if (!OidIsValid(nsp) && !OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("\"%s\" is neither a relation nor a schema", target),
					 errhint("Give a table or view (schema.name) or a schema.")));
	}
	EltRequireCatalog("check_defs");
	EltCatalogWriteBegin(&cw);
	/* a 0.6.0 catalog (not updated yet) records no search_path */
	if (SPI_execute_with_args(psprintf(
		"WITH t AS ("
		"  SELECT c.oid AS rel, n.nspname, c.relname, i.interface"
		"  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		"  LEFT JOIN elt.deploy_interfaces i ON n.nspname::text IN (i.interface || '__blue', i.interface || '__green')"
		"  WHERE (c.oid = $1 OR (c.relnamespace = $2 AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition)))"
		" SELECT d.check_id, d.name, d.kind, d.args::text AS args, d.severity, d.owner, d.relation AS declared_on,"
		" %s AS search_path,"
		"  t.rel::pg_catalog.regclass::text AS checked,"
		"  CASE WHEN t.interface IS NOT NULL THEN pg_catalog.format('%%I.%%I', t.interface, t.relname) END AS live,"
		"  CASE WHEN d.kind = 'relationships' AND t.interface IS NOT NULL AND r.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident(t.interface))"
		"   THEN pg_catalog.format('%%I.%%I', t.nspname, r.relname) END AS related"
		/* quote_ident, not format: the planner may evaluate it where interface is NULL (an index key) */
		" FROM t JOIN elt.check_defs d ON d.relation = t.rel"
		"  OR (t.interface IS NOT NULL AND d.relation = pg_catalog.to_regclass(pg_catalog.quote_ident(t.interface)"
		"      OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(t.relname)))"
		" LEFT JOIN pg_catalog.pg_class r ON r.oid = pg_catalog.to_regclass(d.args ->> 'to')"
		" ORDER BY 9, 2",
		get_attnum(EltCatalogRelid("check_defs"), "search_path") != InvalidAttrNumber ? "d.search_path" : "NULL::text"),
		2, (Oid[]) {OIDOID, OIDOID}, (Datum[]) {ObjectIdGetDatum(relid), ObjectIdGetDatum(nsp)},
		NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "finding checks failed");
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);
		CheckJob   *j = palloc0(sizeof(CheckJob));
		bool		isnull;
		char	   *v;

		j->check_id = EltSpiGetInt64(i, "check_id", &isnull);
		j->name = pstrdup(EltSpiGetText(i, "name"));
		j->kind = pstrdup(EltSpiGetText(i, "kind"));
		j->args = pstrdup(EltSpiGetText(i, "args"));
		j->severity = pstrdup(EltSpiGetText(i, "severity"));
		j->owner = DatumGetObjectId(EltSpiGetDatum(i, "owner", &isnull));
		v = EltSpiGetText(i, "search_path");
		j->search_path = v ? pstrdup(v) : NULL;
		j->declared_on = DatumGetObjectId(EltSpiGetDatum(i, "declared_on", &isnull));
		j->checked = pstrdup(EltSpiGetText(i, "checked"));
		v = EltSpiGetText(i, "live");
		j->live = v ? pstrdup(v) : NULL;
		v = EltSpiGetText(i, "related");
		j->related = v ? pstrdup(v) : NULL;
		jobs = lappend(jobs, j);
		MemoryContextSwitchTo(spi);
	}
	EltCatalogWriteEnd(&cw);
	return jobs;
}

/* Keep the results of jobs, with the run or deployment they belong to. */
static void
record_results(List *jobs, int64 deployment_id)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_0_6 = NULL;
	SPIPlanPtr	insert;
	EltCatalogWrite cw;
	int64		run_id = EltPipelineRunId();
	ListCell   *lc;
	Oid			types[15] = {INT8OID, TEXTOID, OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID,
	TEXTOID, INT8OID, INT8OID, OIDOID, FLOAT8OID, OIDOID};

	if (run_id == 0)
		run_id = EltCurrentRunId();
	EltCatalogWriteBegin(&cw);
	/* a 0.6.0 catalog (not updated yet) has no check_owner: results keep the runner */
	if (get_attnum(EltCatalogRelid("check_result_log"), "check_owner") != InvalidAttrNumber)
		insert = EltPrepare(&plan,
							"INSERT INTO elt.check_result_log (check_id, check_name, declared_on, checked_relation, kind,"
							" severity, status, failing_rows, sample, message, run_id, deployment_id, checked_by, checked_at,"
							" duration_ms, check_owner)"
							" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::pg_catalog.jsonb, $10, $11, $12, $13,"
							" pg_catalog.clock_timestamp(), $14, $15)",
							15, types);
	else
		insert = EltPrepare(&plan_0_6,
							"INSERT INTO elt.check_result_log (check_id, check_name, declared_on, checked_relation, kind,"
							" severity, status, failing_rows, sample, message, run_id, deployment_id, checked_by, checked_at,"
							" duration_ms)"
							" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::pg_catalog.jsonb, $10, $11, $12, $13,"
							" pg_catalog.clock_timestamp(), $14)",
							14, types);
	foreach(lc, jobs)
	{
		CheckJob   *j = lfirst(lc);

		EltExec(insert, (Datum[]) {Int64GetDatum(j->check_id), CStringGetTextDatum(j->name), ObjectIdGetDatum(j->declared_on),
				CStringGetTextDatum(j->checked), CStringGetTextDatum(j->kind), CStringGetTextDatum(j->severity),
				CStringGetTextDatum(j->status), Int64GetDatum(j->failing),
				j->sample ? CStringGetTextDatum(j->sample) : (Datum) 0,
				j->message ? CStringGetTextDatum(j->message) : (Datum) 0,
				Int64GetDatum(run_id), Int64GetDatum(deployment_id), ObjectIdGetDatum(cw.actor), Float8GetDatum(j->ms),
				ObjectIdGetDatum(j->owner)},
				(char[]) {' ', ' ', ' ', ' ', ' ', ' ', ' ', j->failing_null ? 'n' : ' ', j->sample ? ' ' : 'n',
				j->message ? ' ' : 'n', run_id ? ' ' : 'n', deployment_id ? ' ' : 'n', ' ', ' ', ' '}, 0);
	}
	EltCatalogWriteEnd(&cw);
}

/*
 * Run the checks that apply to a promotion's candidate schema, keep their
 * results with the deployment, and return them as a JSON array; *failed is
 * the list of error-severity checks that did not pass (NULL if none).
 */
char *
EltChecksRunGate(const char *candidate, int64 deployment_id, char **failed)
{
	List	   *jobs = find_jobs(candidate);
	EltJson		out;
	StringInfoData bad;
	ListCell   *lc;

	EltJsonBeginList(&out);
	initStringInfo(&bad);
	foreach(lc, jobs)
	{
		CheckJob   *j = lfirst(lc);

		run_job(j);
		EltJsonBeginObject(&out, NULL);
		EltJsonString(&out, "check", j->name);
		EltJsonString(&out, "relation", j->checked);
		EltJsonString(&out, "severity", j->severity);
		EltJsonString(&out, "status", j->status);
		if (!j->failing_null)
			EltJsonInt(&out, "failing_rows", j->failing);
		EltJsonEndObject(&out);
		if (strcmp(j->severity, "error") == 0 && strcmp(j->status, "pass") != 0)
			appendStringInfo(&bad, "%s%s on %s: %s", bad.len > 0 ? "\n" : "", j->name, j->checked,
							 j->failing_null ? j->message : psprintf(INT64_FORMAT " failing rows", j->failing));
	}
	record_results(jobs, deployment_id);
	*failed = bad.len > 0 ? bad.data : NULL;
	return EltJsonFinish(&out);
}

PG_FUNCTION_INFO_V1(elt_check_run);

/*
 * elt.check_run(target text): run the checks of a relation, or of every
 * relation of a schema, keep their results in elt.check_results, and
 * return them.
 */
Datum
elt_check_run(PG_FUNCTION_ARGS)
{
	char	   *target = EltRequiredText(fcinfo, 0, "target");
	ReturnSetInfo *rsinfo;
	List	   *jobs;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	jobs = find_jobs(target);
	foreach(lc, jobs)
		run_job(lfirst(lc));
	record_results(jobs, 0);
	foreach(lc, jobs)
	{
		CheckJob   *j = lfirst(lc);
		Datum		values[9];
		bool		nulls[9] = {false};
		/* rows read as the owner: for those who may see its results */
		bool		shown = j->refused || EltRoleSeesRole(GetUserId(), j->owner);

		values[0] = Int64GetDatum(j->check_id);
		values[1] = CStringGetTextDatum(j->name);
		values[2] = CStringGetTextDatum(j->checked);
		values[3] = CStringGetTextDatum(j->kind);
		values[4] = CStringGetTextDatum(j->severity);
		values[5] = CStringGetTextDatum(j->status);
		values[6] = Int64GetDatum(j->failing);
		nulls[6] = j->failing_null || !shown;
		if (j->sample && shown)
			values[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(j->sample));
		nulls[7] = j->sample == NULL || !shown;
		if (j->message && shown)
			values[8] = CStringGetTextDatum(j->message);
		nulls[8] = j->message == NULL || !shown;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(elt_check_create);

/*
 * elt.check_create(rel regclass, kind text, args jsonb DEFAULT '{}',
 * severity text DEFAULT 'error', name text DEFAULT NULL) RETURNS bigint:
 * declare a check, after making and planning its query as the caller (so
 * that a wrong column or expression is an error now, not at promotion).
 */
Datum
elt_check_create(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *kind = EltRequiredText(fcinfo, 1, "kind");
	char	   *args = PG_ARGISNULL(2) ? "{}" : JsonbToCString(NULL, &PG_GETARG_JSONB_P(2)->root, 0);
	char	   *severity = PG_ARGISNULL(3) ? "error" : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *name = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	char	   *rel;
	char	   *search_path;
	EltCatalogWrite cw;
	int64		id;
	bool		isnull;
	bool		exists;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel must not be null")));
	relid = PG_GETARG_OID(0);
	rel = EltRelDisplayName(relid);
	EltRequireCatalog("check_defs");
	/* the check's SQL will always mean what it means now (0.7.0 catalogs record it) */
	if (get_attnum(EltCatalogRelid("check_defs"), "search_path") == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the elt_governance catalog is older than its library"),
				 errhint("Run ALTER EXTENSION elt_governance UPDATE.")));
	search_path = GetConfigOptionByName("search_path", NULL, false);
	if (!OidIsValid(get_rel_namespace(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read %s", rel),
				 errhint("A check runs as the role that declared it, which must be able to read the relation.")));
	/* the checks of an interface gate its promotions: its owner declares them */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT i.interface::text AS i FROM elt.deploy_interfaces i, pg_catalog.pg_namespace n"
							  " WHERE n.oid = $1 AND n.nspname::text IN (i.interface, i.interface || '__blue', i.interface || '__green')",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(get_rel_namespace(relid))},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading interfaces failed");
	if (SPI_processed > 0)
	{
		char	   *interface = pstrdup(EltSpiGetText(0, "i"));
		Oid			insp = get_namespace_oid(interface, true);

		if (OidIsValid(insp) && !pg_namespace_ownercheck(insp, GetUserId()))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to declare checks on %s", rel),
					 errdetail("It belongs to deployment interface \"%s\", whose checks gate its promotions.", interface),
					 errhint("Only members of the role that owns schema \"%s\" may declare them.", interface)));
	}
	SPI_finish();
	if (strcmp(severity, "error") != 0 && strcmp(severity, "warn") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid severity \"%s\"", severity),
				 errhint("Severities: error (blocks a promotion), warn.")));
	if (name == NULL)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT $1 || coalesce('_' || ($2::pg_catalog.jsonb ->> 'column'),"
								  " '_' || (SELECT pg_catalog.string_agg(c, '_') FROM pg_catalog.jsonb_array_elements_text("
								  "  CASE WHEN pg_catalog.jsonb_typeof($2::pg_catalog.jsonb -> 'columns') = 'array'"
								  "  THEN $2::pg_catalog.jsonb -> 'columns' END) c), '') AS n",
								  2, (Oid[]) {TEXTOID, TEXTOID}, (Datum[]) {CStringGetTextDatum(kind), CStringGetTextDatum(args)},
								  NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "naming the check failed");
		name = MemoryContextStrdup(TopTransactionContext, EltSpiGetText(0, "n"));
		SPI_finish();
	}
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid check name \"%s\"", name),
				 errhint("A check name has 1 to 63 bytes.")));

	/* its query, made and planned as the caller */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		CheckJob	j;
		char	   *sql;

		memset(&j, 0, sizeof(j));
		j.kind = kind;
		j.args = args;
		j.checked = rel;
		/* a relationship's table, qualified, so that it means the same to everyone */
		if (strcmp(kind, "relationships") == 0 && SPI_execute_with_args(
			"SELECT CASE WHEN pg_catalog.jsonb_typeof($1::pg_catalog.jsonb -> 'to') = 'string'"
			" THEN $1::pg_catalog.jsonb OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('to',"
			"  pg_catalog.format('%I.%I', n.nspname, c.relname)) ELSE $1::pg_catalog.jsonb END::text AS a"
			" FROM (SELECT CASE WHEN pg_catalog.jsonb_typeof($1::pg_catalog.jsonb -> 'to') = 'string'"
			"  THEN ($1::pg_catalog.jsonb ->> 'to')::pg_catalog.regclass END AS r) x"
			" LEFT JOIN pg_catalog.pg_class c ON c.oid = x.r LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
			1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(args)}, NULL, true, 1) == SPI_OK_SELECT)
			j.args = args = MemoryContextStrdup(TopTransactionContext, EltSpiGetText(0, "a"));
		sql = job_sql(&j);
		/* LIMIT 0: planned and started, not run */
		if (SPI_execute(psprintf("SELECT FROM (%s) q LIMIT 0", sql), true, 0) != SPI_OK_SELECT)
			elog(ERROR, "planning the check's query failed");
	}
	SPI_finish();

	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("SELECT FROM elt.check_defs WHERE relation = $1 AND name = $2", 2, (Oid[]) {OIDOID, TEXTOID},
							  (Datum[]) {ObjectIdGetDatum(relid), CStringGetTextDatum(name)}, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading checks failed");
	exists = SPI_processed > 0;
	if (exists)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("%s already has a check named \"%s\"", rel, name),
				 errhint("Give another name, or drop it with elt.check_drop(rel, name).")));
	if (SPI_execute("SELECT pg_catalog.nextval('elt.check_id_seq') AS id", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "drawing a check id failed");
	id = EltSpiGetInt64(0, "id", &isnull);
	if (SPI_execute_with_args("INSERT INTO elt.check_defs (check_id, name, relation, kind, args, severity, owner, created_at,"
							  " search_path)"
							  " VALUES ($1, $2, $3, $4, $5::pg_catalog.jsonb, $6, $7, pg_catalog.now(), $8)",
							  8, (Oid[]) {INT8OID, TEXTOID, OIDOID, TEXTOID, TEXTOID, TEXTOID, OIDOID, TEXTOID},
							  (Datum[]) {Int64GetDatum(id), CStringGetTextDatum(name), ObjectIdGetDatum(relid),
							  CStringGetTextDatum(kind), CStringGetTextDatum(args), CStringGetTextDatum(severity),
							  ObjectIdGetDatum(cw.actor), CStringGetTextDatum(search_path)}, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "recording the check failed");
	{
		EltJson		d;

		EltJsonBegin(&d);
		EltJsonInt(&d, "check_id", id);
		EltJsonString(&d, "name", name);
		EltJsonString(&d, "kind", kind);
		EltJsonString(&d, "severity", severity);
		EltJsonString(&d, "search_path", search_path);
		/* oids, as elt.check_defs has them, for audit_verify to compare */
		EltJsonInt(&d, "relation", relid);
		EltJsonInt(&d, "owner", cw.actor);
		EltJsonRaw(&d, "args", args);
		EltAuditRecord(cw.actor, "check_create", rel, EltJsonFinish(&d), EltAuditReason(NULL));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(elt_check_drop);

/* elt.check_drop(rel regclass, name text) RETURNS boolean: drop a check (its results stay). */
Datum
elt_check_drop(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *name = EltRequiredText(fcinfo, 1, "name");
	EltCatalogWrite cw;
	Oid			owner;
	int64		check_id;
	bool		isnull;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel must not be null")));
	relid = PG_GETARG_OID(0);
	EltRequireCatalog("check_defs");
	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("SELECT owner, check_id FROM elt.check_defs WHERE relation = $1 AND name = $2", 2, (Oid[]) {OIDOID, TEXTOID},
							  (Datum[]) {ObjectIdGetDatum(relid), CStringGetTextDatum(name)}, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading checks failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("%s has no check named \"%s\"", EltRelDisplayName(relid), name),
				 errhint("elt.checks lists the checks.")));
	owner = DatumGetObjectId(EltSpiGetDatum(0, "owner", &isnull));
	check_id = EltSpiGetInt64(0, "check_id", &isnull);
	if (!has_privs_of_role(cw.actor, owner) && !EltRoleIsAdmin(cw.actor))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("check \"%s\" belongs to role %s", name, GetUserNameFromId(owner, true)),
				 errhint("Only members of the role that declared it, members of %s and superusers may drop it.",
						 ELT_ROLE_ADMIN)));
	if (SPI_execute_with_args("DELETE FROM elt.check_defs WHERE relation = $1 AND name = $2", 2, (Oid[]) {OIDOID, TEXTOID},
							  (Datum[]) {ObjectIdGetDatum(relid), CStringGetTextDatum(name)}, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "dropping the check failed");
	{
		EltJson		d;

		EltJsonBegin(&d);
		EltJsonInt(&d, "check_id", check_id);
		EltJsonString(&d, "name", name);
		EltAuditRecord(cw.actor, "check_drop", EltRelDisplayName(relid), EltJsonFinish(&d), EltAuditReason(NULL));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_BOOL(true);
}
