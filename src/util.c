/*
 * util.c — helpers shared by every engine of elt_governance.
 *
 * Owns: SHA-256 through OpenSSL; the canonical serialization behind every
 * hash the extension stores; the "catalog write" context in which an engine
 * writes the elt catalog on behalf of the calling role; SPI conveniences;
 * a tuplestore handed once to the executor (EltReturnStoreOnce).
 *
 * Transaction rules: EltCatalogWriteBegin and EltCatalogWriteEnd pair up in
 * one (sub)transaction.  Between them the user id is the extension owner's,
 * search_path is pinned to pg_catalog and SPI is connected.  An error in
 * between needs no cleanup here: (sub)transaction abort restores the user id,
 * the GUC nest level and SPI.
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/varlena.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "util.h"

/* Hex SHA-256 of a byte string; out must hold 65 bytes. */
void
EltSha256Hex(const char *data, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned int i;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a SHA-256 digest")));
	for (i = 0; i < mdlen; i++)
	{
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0x0f];
	}
	out[2 * mdlen] = '\0';
}

/*
 * Append one field to a canonical serialization: "<bytes>:<text>" or "-1:"
 * for NULL.  The length prefix makes the concatenation unambiguous.  A
 * timestamptz is written as microseconds since the Unix epoch, so that the
 * text never depends on DateStyle or TimeZone; every other type used in
 * hashed rows (integers, oid, name, text, jsonb, xid8) prints the same under
 * every setting.
 */
void
EltCanonicalAppend(StringInfo buf, Datum value, bool isnull, Oid typid)
{
	char	   *text;

	if (isnull)
	{
		appendStringInfoString(buf, "-1:");
		return;
	}
	if (typid == TIMESTAMPTZOID || typid == TIMESTAMPOID)
	{
		int64		us = DatumGetInt64(value) +
			(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

		text = psprintf(INT64_FORMAT, us);
	}
	else
	{
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(typid, &outfunc, &isvarlena);
		text = OidOutputFunctionCall(outfunc, value);
	}
	appendStringInfo(buf, "%zu:", strlen(text));
	appendBinaryStringInfo(buf, text, strlen(text));
	pfree(text);
}

/*
 * The attribute numbers in desc of the named columns (each name prefixed by
 * prefix, for joined result sets), looked up once for many rows.
 */
int *
EltColumnAttnos(TupleDesc desc, const char *prefix, const char *const *columns, int ncolumns)
{
	int		   *attnos = palloc(sizeof(int) * ncolumns);
	int			i;

	for (i = 0; i < ncolumns; i++)
	{
		char	   *name = psprintf("%s%s", prefix, columns[i]);

		attnos[i] = SPI_fnumber(desc, name);
		if (attnos[i] <= 0)
			elog(ERROR, "column \"%s\" missing from hashed row", name);
		pfree(name);
	}
	return attnos;
}

/*
 * SHA-256 of the canonical serialization of the given attributes of a row
 * deformed into values and nulls.
 */
void
EltCanonicalValuesHash(const Datum *values, const bool *nulls, TupleDesc desc,
					   const int *attnos, int n, char *out)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
		EltCanonicalAppend(&buf, values[attnos[i] - 1], nulls[attnos[i] - 1],
						   TupleDescAttr(desc, attnos[i] - 1)->atttypid);
	EltSha256Hex(buf.data, buf.len, out);
	pfree(buf.data);
}

/*
 * SHA-256 of the canonical serialization of the named columns of a tuple
 * (each column name prefixed by prefix, for joined result sets).
 */
void
EltCanonicalTupleHash(HeapTuple tuple, TupleDesc desc, const char *prefix,
					  const char *const *columns, int ncolumns, char *out)
{
	int		   *attnos = EltColumnAttnos(desc, prefix, columns, ncolumns);
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);

	heap_deform_tuple(tuple, desc, values, nulls);
	EltCanonicalValuesHash(values, nulls, desc, attnos, ncolumns, out);
	pfree(values);
	pfree(nulls);
	pfree(attnos);
}

/*
 * Whether the extension's catalog can be used now.  False while the
 * extension is being created or dropped, and in databases without it.
 */
bool
EltCatalogReady(void)
{
	Oid			extoid;

	if (!IsTransactionState())
		return false;
	extoid = get_extension_oid(ELT_EXTENSION_NAME, true);
	if (!OidIsValid(extoid))
		return false;
	if (creating_extension && CurrentExtensionObject == extoid)
		return false;
	return OidIsValid(EltCatalogRelid("audit_log"));
}

/*
 * Stop unless the catalog is there and has the relation an engine needs
 * (an older catalog under a newer library: the update was not run yet).
 */
void
EltRequireCatalog(const char *relname)
{
	if (!EltCatalogReady() || !OidIsValid(EltCatalogRelid(relname)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the elt_governance catalog is older than its library"),
				 errhint("Run ALTER EXTENSION elt_governance UPDATE.")));
}

/* A text argument that must be given and not empty. */
char *
EltRequiredText(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname)));
	return s;
}

/* Oid of a relation in schema elt, or InvalidOid. */
Oid
EltCatalogRelid(const char *relname)
{
	Oid			nsp = get_namespace_oid(ELT_SCHEMA_NAME, true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid(relname, nsp);
}

/*
 * The role that owns the extension, and with it the elt catalog.  Looked up
 * once per transaction: every governed DDL statement asks several times.
 */
Oid
EltExtensionOwner(void)
{
	static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
	static Oid	cached_owner = InvalidOid;
	Oid			extoid;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			owner;

	if (cached_lxid != InvalidLocalTransactionId && cached_lxid == EltMyLocalTransactionId())
		return cached_owner;
	extoid = get_extension_oid(ELT_EXTENSION_NAME, false);

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "could not find extension \"%s\"", ELT_EXTENSION_NAME);
	owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	cached_owner = owner;
	cached_lxid = EltMyLocalTransactionId();
	return owner;
}

/*
 * Enter the catalog write context: act as the extension owner, with a pinned
 * search_path, and connect SPI.  The caller's own privileges must have been
 * checked before.
 */
void
EltCatalogWriteBegin(EltCatalogWrite *cw)
{
	Oid			owner = EltExtensionOwner();

	GetUserIdAndSecContext(&cw->save_userid, &cw->save_sec_context);
	cw->actor = cw->save_userid;
	SetUserIdAndSecContext(owner, cw->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	cw->guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Leave the catalog write context. */
void
EltCatalogWriteEnd(EltCatalogWrite *cw)
{
	SPI_finish();
	AtEOXact_GUC(true, cw->guc_level);
	SetUserIdAndSecContext(cw->save_userid, cw->save_sec_context);
}

/* The names of this session's open cursors (String nodes), as pg_cursors lists them. */
static List *
session_cursors(void)
{
	List	   *names = NIL;
	MemoryContext outer = CurrentMemoryContext;
	uint64		i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT name FROM pg_catalog.pg_cursors", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "listing the session's cursors failed");
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);

		names = lappend(names, makeString(pstrdup(SPI_getvalue(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 1))));
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return names;
}

/*
 * Act as role, to run code that is role's (a transform's SQL, a check, a
 * backfill chunk, a replayed step, a deployment copy): never with the
 * caller's rights on role's behalf.  restricted makes it a
 * security-restricted operation (no SET ROLE, no temporary objects, no
 * cursors that outlive it: nothing that outlives the code in the caller's
 * session; cursors it leaves open are closed at the end).  A new GUC nest
 * level holds what the code sets, and
 * search_path, unless NULL, is set to it with pg_temp named last, so that
 * the caller's temporary objects never stand for role's.  The caller's
 * privileges to have role act must have been checked before.
 */
void
EltAsRoleBegin(EltAsRole *ar, Oid role, const char *search_path, bool restricted)
{
	ar->cursors = session_cursors();
	GetUserIdAndSecContext(&ar->save_userid, &ar->save_sec_context);
	SetUserIdAndSecContext(role, ar->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   (restricted ? SECURITY_RESTRICTED_OPERATION : 0));
	ar->guc_level = NewGUCNestLevel();
	if (search_path != NULL)
		(void) set_config_option("search_path", EltSearchPathTempLast(search_path),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Back to the caller: every cursor the code left open is closed (a FETCH
 * by the caller would run role's query with the caller's rights), every
 * setting it changed is rolled back, plain SETs too (a search_path left in
 * the caller's session would make the caller run role's functions), then
 * the caller's identity is back.
 */
void
EltAsRoleEnd(EltAsRole *ar)
{
	ListCell   *lc;

	foreach(lc, session_cursors())
	{
		Portal		portal;

		if (list_member(ar->cursors, lfirst(lc)))
			continue;
		portal = GetPortalByName(strVal(lfirst(lc)));
		if (PortalIsValid(portal) && portal->status != PORTAL_ACTIVE && !portal->portalPinned)
			PortalDrop(portal, false);
	}
	AtEOXact_GUC(false, ar->guc_level);
	SetUserIdAndSecContext(ar->save_userid, ar->save_sec_context);
}

/*
 * Settings under which values print (and read back) the same whatever the
 * session's settings, as pg_dump pins them: dates, times and intervals in
 * ISO form and UTC, floats exact, every name qualified.
 */
static const char *const print_settings[][2] = {
	{"search_path", "pg_catalog, pg_temp"},
	{"DateStyle", "ISO, YMD"},
	{"IntervalStyle", "postgres"},
	{"TimeZone", "UTC"},
	{"extra_float_digits", "1"},
	{"standard_conforming_strings", "on"},
	{"bytea_output", "hex"},
};

/*
 * Pin the print settings at a new GUC nest level; the caller closes it with
 * AtEOXact_GUC(true, level).
 */
int
EltPinPrintSettings(void)
{
	int			level = NewGUCNestLevel();
	size_t		i;

	for (i = 0; i < lengthof(print_settings); i++)
		(void) set_config_option(print_settings[i][0], print_settings[i][1],
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	return level;
}

/*
 * A search_path with pg_temp named last (unless it names pg_temp already),
 * for code that runs as another role than the caller: left unnamed,
 * pg_temp is searched first for relations and types, so that the caller's
 * temporary objects would stand for the owner's.
 */
char *
EltSearchPathTempLast(const char *path)
{
	char	   *copy = pstrdup(path);
	List	   *names;
	ListCell   *lc;

	if (!SplitIdentifierString(copy, ',', &names))
		return psprintf("%s, pg_temp", path);	/* PostgreSQL rejects it as it is */
	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), "pg_temp") == 0)
			return pstrdup(path);
	return names == NIL ? pstrdup("pg_temp") : psprintf("%s, pg_temp", path);
}

/*
 * Whether this session has temporary relations or types.  Even named last
 * in search_path, pg_temp answers for a name no schema before it has: code
 * of another role's that names something missing would find the session's
 * object, and run as that role.
 */
bool
EltSessionHasTempObjects(void)
{
	Oid			nsp = LookupNamespaceNoError("pg_temp");
	static const struct
	{
		Oid			catalog;
		AttrNumber	attnum;
	}			kinds[] = {
		{RelationRelationId, Anum_pg_class_relnamespace},
		{TypeRelationId, Anum_pg_type_typnamespace},
	};
	size_t		i;
	bool		found = false;

	if (!OidIsValid(nsp))
		return false;
	for (i = 0; i < lengthof(kinds) && !found; i++)
	{
		Relation	rel = table_open(kinds[i].catalog, AccessShareLock);
		ScanKeyData key;
		SysScanDesc scan;

		ScanKeyInit(&key, kinds[i].attnum, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(nsp));
		scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
		found = HeapTupleIsValid(systable_getnext(scan));
		systable_endscan(scan);
		table_close(rel, AccessShareLock);
	}
	return found;
}

/*
 * Prepare a statement once per backend, with a generic plan, and keep it.
 * Returns in the caller's memory context, like EltExec: SPI_prepare leaves
 * SPI's procedure context current, and what a caller allocated next (the
 * first time a lookup ran in a backend) was freed by SPI_finish.
 */
SPIPlanPtr
EltPrepare(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	if (*cache == NULL)
	{
		MemoryContext caller = CurrentMemoryContext;
		/*
		 * A generic plan, made once: these are short catalog lookups, and
		 * re-planning them with their parameters (the plan cache's default
		 * for the first executions, and for good when a custom plan looks
		 * cheaper) costs more than running them.
		 */
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*cache = plan;
		MemoryContextSwitchTo(caller);
	}
	return *cache;
}

/*
 * Run a prepared statement with the latest snapshot, so that governance
 * state committed by others is seen even under REPEATABLE READ.  Used after
 * taking the lock that orders governance actions.
 */
int
EltExecLatest(SPIPlanPtr plan, Datum *values, const char *nulls, long count)
{
	int			rc;
	MemoryContext caller = CurrentMemoryContext;

	rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
							  InvalidSnapshot, false, true, count);
	/* SPI leaves us in its procedure context: back to the caller's */
	MemoryContextSwitchTo(caller);
	if (rc < 0)
		elog(ERROR, "SPI_execute_snapshot failed: %s", SPI_result_code_string(rc));
	return rc;
}

/* Run a prepared statement normally. */
int
EltExec(SPIPlanPtr plan, Datum *values, const char *nulls, long count)
{
	MemoryContext caller = CurrentMemoryContext;
	int			rc = SPI_execute_plan(plan, values, nulls, false, count);

	/* SPI leaves us in its procedure context: back to the caller's */
	MemoryContextSwitchTo(caller);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return rc;
}

/* Run one statement without parameters through SPI (connected). */
void
EltSpiExec(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s: %s", SPI_result_code_string(rc), sql);
}

/* Attribute number of a column of the current SPI result, or an error. */
static int
EltSpiColumn(const char *column)
{
	int			attno = SPI_fnumber(SPI_tuptable->tupdesc, column);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" missing from SPI result", column);
	return attno;
}

/* Text of a column of an SPI result row (NULL when SQL NULL). */
char *
EltSpiGetText(int row, const char *column)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						EltSpiColumn(column));
}

/* Binary value of a column of an SPI result row. */
Datum
EltSpiGetDatum(int row, const char *column, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 EltSpiColumn(column), isnull);
}

/* An integer column (int2, int4, int8 or oid) of an SPI result row. */
int64
EltSpiGetInt64(int row, const char *column, bool *isnull)
{
	int			attno = EltSpiColumn(column);
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
								  attno, isnull);

	if (*isnull)
		return 0;
	switch (SPI_gettypeid(SPI_tuptable->tupdesc, attno))
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		case OIDOID:
		case REGCLASSOID:
			return DatumGetObjectId(d);
		default:
			return DatumGetInt64(d);
	}
}

/* A boolean column of an SPI result row. */
bool
EltSpiGetBool(int row, const char *column, bool *isnull)
{
	Datum		d = EltSpiGetDatum(row, column, isnull);

	return *isnull ? false : DatumGetBool(d);
}

/* Add the oids in the first column of the last SPI result to a list, once each. */
List *
EltSpiAppendOids(List *list)
{
	SPITupleTable *tt = SPI_tuptable;
	uint64		n = SPI_processed;
	uint64		i;

	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull);

		if (!isnull)
			list = list_append_unique_oid(list, DatumGetObjectId(d));
	}
	return list;
}

/*
 * Refuse a name for a backfill or a transform that is too long or has
 * characters other than letters, digits, "_", "-", "." and ":".
 */
void
EltCheckObjectName(const char *kind, const char *name)
{
	if (strlen(name) >= 64 ||
		strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:") != strlen(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s name \"%s\"", kind, name),
				 errdetail("A name has at most 63 characters: letters, digits, \"_\", \"-\", \".\" and \":\".")));
}

/* The owner of a schema. */
Oid
EltNamespaceOwner(Oid nsp)
{
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/* Qualified, quoted name of a relation, or its OID if it is gone. */
char *
EltRelDisplayName(Oid relid)
{
	char	   *rel = get_rel_name(relid);
	char	   *nsp = rel ? get_namespace_name(get_rel_namespace(relid)) : NULL;

	if (nsp == NULL || rel == NULL)
		return psprintf("%u", relid);
	return quote_qualified_identifier(nsp, rel);
}

/*
 * Open a relation that a caller passed by OID (a regclass argument), with
 * an error a user can act on when the OID names no relation: 0, or a
 * relation that was dropped.  try_relation_open locks before it looks, so
 * a relation dropped meanwhile gets this error too, never an internal one.
 */
Relation
EltOpenGivenRelation(Oid relid, LOCKMODE lockmode)
{
	Relation	rel = try_relation_open(relid, lockmode);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("Name the relation, as in 'schema.table'; an OID names nothing once its relation is dropped.")));
	return rel;
}

/* qsort comparator for int64. */
int
EltCmpInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Return *store as the result of a set-returning function, once: the
 * executor takes it over (and frees it), and *store is left NULL.  An
 * empty result when there is none.
 */
Datum
EltReturnStoreOnce(FunctionCallInfo fcinfo, Tuplestorestate **store, TupleDesc desc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (*store == NULL)
	{
		InitMaterializedSRF(fcinfo, 0);
		return (Datum) 0;
	}
	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = *store;
	rsinfo->setDesc = CreateTupleDescCopy(desc);
	*store = NULL;
	return (Datum) 0;
}
