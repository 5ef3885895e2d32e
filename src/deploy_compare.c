/*
 * deploy_compare.c — elt.deploy_compare() and elt.deploy_diff(): the
 * candidate of a prepared deployment compared with live, table by table.
 *
 * Owns the two entry points.  The comparisons themselves are PL/pgSQL
 * functions of the extension script: elt._deploy_compare_pair (one row of
 * deploy_compare) and elt._deploy_diff_rows (the rows of deploy_diff), over
 * elt._deploy_rowmatch and elt.table_checksum_ranges; elt._deploy_pairs
 * lists an interface's tables.
 *
 * Whose code runs: comparing rows calls code of the tables' owner — a cast
 * of a column's type to text (compare) or json (diff), the CHECK of a
 * domain on the key when range bounds are cast to it, its input function
 * when table_checksum_ranges reads the bounds, and the constant parts of
 * index expressions and predicates, which PostgreSQL evaluates when it
 * plans a query on the tables.  So each table is compared as its owner
 * (query_as_owner), in a security-restricted operation with search_path
 * pinned to pg_catalog, pg_temp, at a GUC nest level rolled back
 * afterwards, so that nothing the owner's code sets stays in the caller's
 * session: as deploy_prepare makes the candidates (exec_as_owner in
 * deploy.c) and as a transform runs (run_body in transform_run.c).  A
 * table's owner is the live table's (the candidate's, for a table only in
 * the candidate); the candidate must have the same (deploy_prepare makes
 * it so).  The caller must have the privileges of that owner (superusers
 * have): it is shown what the owner reads, and could run the owner's code
 * as the owner anyway.  The tables are listed as the caller
 * (elt._deploy_pairs reads elt.deployments, which shows the interfaces
 * whose schema the caller may use, and says when an interface is unknown
 * or has no prepared deployment), and every table's owner is checked
 * before any table is compared.
 *
 * Locking: each table is locked ACCESS SHARE when its owner is read, until
 * the end of the transaction, so that its owner does not change before it
 * is compared (ALTER TABLE ... OWNER TO takes ACCESS EXCLUSIVE); the
 * comparison's own queries take the same lock.  Nothing is written.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "util.h"

/* A table of an interface, in one color or both. */
typedef struct ComparePair
{
	char	   *name;			/* the table's name in its color schema */
	Oid			live;			/* InvalidOid: only in the candidate */
	Oid			candidate;		/* InvalidOid: only in live */
	Oid			owner;			/* the role it is compared as */
} ComparePair;

/* A text argument that must not be NULL (an empty one is passed on). */
static char *
text_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * The tables of the prepared deployment of an interface, in name order
 * (elt._deploy_pairs, run as the caller: its errors say when the interface
 * is unknown or has no prepared deployment), in the current memory context.
 */
static List *
list_pairs(const char *interface)
{
	MemoryContext outer = CurrentMemoryContext;
	List	   *pairs = NIL;
	uint64		i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT x.name, x.live, x.candidate FROM elt._deploy_pairs($1) x",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(interface)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "listing the tables of the interface failed");
	for (i = 0; i < SPI_processed; i++)
	{
		ComparePair *p = MemoryContextAllocZero(outer, sizeof(ComparePair));
		bool		isnull;
		Datum		d;

		p->name = MemoryContextStrdup(outer, EltSpiGetText(i, "name"));
		d = EltSpiGetDatum(i, "live", &isnull);
		p->live = isnull ? InvalidOid : DatumGetObjectId(d);
		d = EltSpiGetDatum(i, "candidate", &isnull);
		p->candidate = isnull ? InvalidOid : DatumGetObjectId(d);
		{
			MemoryContext spi = MemoryContextSwitchTo(outer);

			pairs = lappend(pairs, p);
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	return pairs;
}

/*
 * The owner of a table, which is locked ACCESS SHARE until the end of the
 * transaction (see the file header); a clear error if it was dropped.
 */
static Oid
locked_table_owner(Oid relid)
{
	Relation	rel = EltOpenGivenRelation(relid, AccessShareLock);
	Oid			owner = rel->rd_rel->relowner;

	relation_close(rel, NoLock);
	return owner;
}

/*
 * Set the role pair p is compared as: the live table's owner, or the
 * candidate's for a table only in the candidate.  Refused when the
 * candidate has another owner than its live table, and when the caller
 * lacks the privileges of that role: comparing runs the owner's code,
 * which must never run with the caller's rights (see the file header).
 */
static void
check_pair_owner(ComparePair *p)
{
	Oid			live_owner = OidIsValid(p->live) ? locked_table_owner(p->live) : InvalidOid;
	Oid			candidate_owner = OidIsValid(p->candidate) ? locked_table_owner(p->candidate) : InvalidOid;
	char	   *table = EltRelDisplayName(OidIsValid(p->live) ? p->live : p->candidate);
	char	   *owner;

	if (OidIsValid(live_owner) && OidIsValid(candidate_owner) && live_owner != candidate_owner)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the candidate %s has another owner than %s", EltRelDisplayName(p->candidate), table),
				 errdetail("The live table belongs to role \"%s\", the candidate to role \"%s\". "
						   "A table is compared as its owner, which both colors must share.",
						   GetUserNameFromId(live_owner, false), GetUserNameFromId(candidate_owner, false)),
				 errhint("Give the candidate the live table's owner, as elt.deploy_prepare() does: ALTER TABLE %s OWNER TO %s.",
						 EltRelDisplayName(p->candidate), quote_identifier(GetUserNameFromId(live_owner, false)))));
	p->owner = OidIsValid(live_owner) ? live_owner : candidate_owner;
	if (has_privs_of_role(GetUserId(), p->owner))
		return;
	owner = GetUserNameFromId(p->owner, false);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to compare table %s", table),
			 errdetail("The comparison runs as the table's owner, role \"%s\", so that the owner's code it calls "
					   "(casts, domain checks, index expressions) never runs with the rights of the role comparing; "
					   "you do not have the privileges of role \"%s\".", owner, owner),
			 errhint("Ask a member of role \"%s\" to compare it, or to grant you that role.", owner)));
}

/*
 * Run query (a call of an elt function that compares a pair of tables) as
 * role owner, in a security-restricted operation with search_path pinned
 * to pg_catalog, pg_temp, at a GUC nest level rolled back afterwards, and
 * add the rows it returns, whose columns are the function's result
 * columns, to the function's result.
 */
static void
query_as_owner(ReturnSetInfo *rsinfo, Oid owner, const char *query,
			   int nargs, Oid *types, Datum *values, const char *nulls)
{
	EltAsRole	ar;
	uint64		i;
	int			natts = rsinfo->setDesc->natts;
	Datum	   *row = palloc(sizeof(Datum) * natts);
	bool	   *isnull = palloc(sizeof(bool) * natts);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	EltAsRoleBegin(&ar, owner, "pg_catalog, pg_temp", true);
	if (SPI_execute_with_args(query, nargs, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "comparing tables failed: %s", query);
	EltAsRoleEnd(&ar);
	if (SPI_tuptable->tupdesc->natts != natts)
		elog(ERROR, "comparing tables returned %d columns, not %d", SPI_tuptable->tupdesc->natts, natts);
	for (i = 0; i < SPI_processed; i++)
	{
		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, row, isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, isnull);
	}
	SPI_finish();
}

PG_FUNCTION_INFO_V1(elt_deploy_compare);

/*
 * elt.deploy_compare(interface text, segments integer DEFAULT 16): per
 * table of the interface's prepared deployment, its shape differences and
 * the rows missing, extra and changed in the candidate, each table
 * compared as its owner (elt._deploy_compare_pair).
 */
Datum
elt_deploy_compare(PG_FUNCTION_ARGS)
{
	char	   *interface;
	int32		segments;
	ReturnSetInfo *rsinfo;
	List	   *pairs;
	ListCell   *lc;

	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1 || PG_GETARG_INT32(1) > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("segments must be between 1 and 1000")));
	segments = PG_GETARG_INT32(1);
	interface = text_arg(fcinfo, 0, "interface");
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pairs = list_pairs(interface);
	foreach(lc, pairs)
		check_pair_owner(lfirst(lc));
	foreach(lc, pairs)
	{
		ComparePair *p = lfirst(lc);

		query_as_owner(rsinfo, p->owner, "SELECT * FROM elt._deploy_compare_pair($1, $2, $3, $4, $5)", 5,
					   (Oid[]) {TEXTOID, TEXTOID, REGCLASSOID, REGCLASSOID, INT4OID},
					   (Datum[]) {CStringGetTextDatum(interface), CStringGetTextDatum(p->name),
					   ObjectIdGetDatum(p->live), ObjectIdGetDatum(p->candidate), Int32GetDatum(segments)},
					   (char[]) {' ', ' ', OidIsValid(p->live) ? ' ' : 'n', OidIsValid(p->candidate) ? ' ' : 'n', ' '});
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(elt_deploy_diff);

/*
 * elt.deploy_diff(interface text, rel text, max_rows integer DEFAULT 100):
 * the rows of one table of the interface's prepared deployment (rel: its
 * name, or its view's as deploy_compare lists it) that differ between live
 * and the candidate, compared as the table's owner (elt._deploy_diff_rows).
 */
Datum
elt_deploy_diff(PG_FUNCTION_ARGS)
{
	char	   *interface;
	char	   *rel;
	int32		max_rows;
	ReturnSetInfo *rsinfo;
	ListCell   *lc;
	ComparePair *p = NULL;

	if (PG_ARGISNULL(2) || PG_GETARG_INT32(2) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must be at least 1")));
	max_rows = PG_GETARG_INT32(2);
	interface = text_arg(fcinfo, 0, "interface");
	rel = text_arg(fcinfo, 1, "rel");
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	foreach(lc, list_pairs(interface))
	{
		ComparePair *x = lfirst(lc);

		if (strcmp(x->name, rel) == 0 || strcmp(quote_qualified_identifier(interface, x->name), rel) == 0)
		{
			p = x;
			break;
		}
	}
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("interface \"%s\" has no table \"%s\"", interface, rel),
				 errhint("elt.deploy_compare(interface) lists its tables.")));
	if (!OidIsValid(p->live) || !OidIsValid(p->candidate))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is only in the %s color", rel, OidIsValid(p->live) ? "live" : "candidate"),
				 errhint("elt.deploy_compare(interface) shows it as a shape difference.")));
	check_pair_owner(p);
	query_as_owner(rsinfo, p->owner, "SELECT * FROM elt._deploy_diff_rows($1, $2, $3)", 3,
				   (Oid[]) {REGCLASSOID, REGCLASSOID, INT4OID},
				   (Datum[]) {ObjectIdGetDatum(p->live), ObjectIdGetDatum(p->candidate), Int32GetDatum(max_rows)},
				   NULL);
	return (Datum) 0;
}
