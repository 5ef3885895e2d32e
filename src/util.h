/*
 * util.h — helpers shared by every engine of elt_governance.
 */
#ifndef ELT_UTIL_H
#define ELT_UTIL_H

#include "postgres.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "storage/lockdefs.h"
#include "utils/relcache.h"
#include "utils/resowner.h"

#include "pg_compat.h"

#define ELT_EXTENSION_NAME "elt_governance"
#define ELT_SCHEMA_NAME "elt"
#define ELT_SHA256_HEX_LEN 64

/* The caller's identity, saved while a role's code runs (EltAsRoleBegin). */
typedef struct EltAsRole
{
	Oid			save_userid;
	int			save_sec_context;
	int			guc_level;
	List	   *cursors;		/* the session's cursors before */
} EltAsRole;

/* State saved while an engine writes the elt catalog for the caller. */
typedef struct EltCatalogWrite
{
	Oid			actor;			/* the role that asked: current_user before */
	Oid			save_userid;
	int			save_sec_context;
	int			guc_level;
} EltCatalogWrite;

/*
 * Write v as a varint (7 bits a byte, low first, at most 10 bytes) at p;
 * returns the end.  Used by the lineage chunks and the table checksums.
 */
static inline char *
EltWriteVarint(char *p, uint64 v)
{
	while (v >= 0x80)
	{
		*p++ = (char) ((v & 0x7f) | 0x80);
		v >>= 7;
	}
	*p++ = (char) v;
	return p;
}

extern void EltSha256Hex(const char *data, size_t len, char *out);
extern int	EltCmpInt64(const void *a, const void *b);
extern void EltCanonicalAppend(StringInfo buf, Datum value, bool isnull, Oid typid);
extern int *EltColumnAttnos(TupleDesc desc, const char *prefix,
							const char *const *columns, int ncolumns);
extern void EltCanonicalValuesHash(const Datum *values, const bool *nulls,
								   TupleDesc desc, const int *attnos, int n,
								   char *out);
extern void EltCanonicalTupleHash(HeapTuple tuple, TupleDesc desc,
								  const char *prefix,
								  const char *const *columns, int ncolumns,
								  char *out);

extern bool EltCatalogReady(void);
extern Oid	EltCatalogRelid(const char *relname);
extern void EltRequireCatalog(const char *relname);
extern char *EltRequiredText(FunctionCallInfo fcinfo, int argno, const char *argname);
extern void EltCheckObjectName(const char *kind, const char *name);
extern char *EltRelDisplayName(Oid relid);
extern Relation EltOpenGivenRelation(Oid relid, LOCKMODE lockmode);
extern Oid	EltNamespaceOwner(Oid nsp);
extern Oid	EltExtensionOwner(void);
extern void EltCatalogWriteBegin(EltCatalogWrite *cw);
extern void EltCatalogWriteEnd(EltCatalogWrite *cw);
extern void EltAsRoleBegin(EltAsRole *ar, Oid role, const char *search_path, bool restricted);
extern void EltAsRoleEnd(EltAsRole *ar);
extern int	EltPinPrintSettings(void);
extern char *EltSearchPathTempLast(const char *path);
extern bool EltSessionHasTempObjects(void);

extern SPIPlanPtr EltPrepare(SPIPlanPtr *cache, const char *sql,
							 int nargs, Oid *argtypes);
extern int	EltExecLatest(SPIPlanPtr plan, Datum *values, const char *nulls,
						  long count);
extern int	EltExec(SPIPlanPtr plan, Datum *values, const char *nulls,
					long count);

extern void EltSpiExec(const char *sql);
extern char *EltSpiGetText(int row, const char *column);
extern int64 EltSpiGetInt64(int row, const char *column, bool *isnull);
extern bool EltSpiGetBool(int row, const char *column, bool *isnull);
extern Datum EltSpiGetDatum(int row, const char *column, bool *isnull);
extern List *EltSpiAppendOids(List *list);
extern Datum EltReturnStoreOnce(FunctionCallInfo fcinfo, Tuplestorestate **store, TupleDesc desc);


/* util_sql.c: SQL text normalized for a code hash */
extern char *EltNormalizeSql(const char *sql);

/* util_json.c: a JSON document built with escaping (audit and event details) */
#define ELT_JSON_MAX_DEPTH 8
typedef struct EltJson
{
	StringInfoData buf;
	int			depth;
	bool		first[ELT_JSON_MAX_DEPTH];
	bool		in_array[ELT_JSON_MAX_DEPTH];
} EltJson;

extern void EltJsonBegin(EltJson *j);
extern void EltJsonBeginList(EltJson *j);
extern char *EltJsonFinish(EltJson *j);
extern void EltJsonString(EltJson *j, const char *key, const char *value);
extern void EltJsonInt(EltJson *j, const char *key, int64 value);
extern void EltJsonFloat(EltJson *j, const char *key, double value);
extern void EltJsonBool(EltJson *j, const char *key, bool value);
extern void EltJsonNull(EltJson *j, const char *key);
extern void EltJsonRaw(EltJson *j, const char *key, const char *json);
extern void EltJsonBeginObject(EltJson *j, const char *key);
extern void EltJsonEndObject(EltJson *j);
extern void EltJsonBeginArray(EltJson *j, const char *key);
extern void EltJsonEndArray(EltJson *j);

/* util_subxact.c: work that may fail without failing the caller */
typedef struct EltSubxact
{
	MemoryContext cxt;
	ResourceOwner owner;
} EltSubxact;

extern void EltSubxactBegin(EltSubxact *s);
extern void EltSubxactCommit(EltSubxact *s);
extern void EltSubxactRollback(EltSubxact *s);
extern ErrorData *EltTrySubxact(void (*fn) (void *arg), void *arg);

#endif							/* ELT_UTIL_H */
