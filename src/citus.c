/*
 * citus.c — what governance needs to know about Citus: whether a relation
 * is a shard (EltIsCitusShard), and how a Citus table is distributed
 * (EltCitusTableInfo).
 *
 * Governance sees tables, never shards.  On a Citus cluster a distributed
 * or reference table is a shell on the coordinator, and its rows live in
 * shards, ordinary tables named <table>_<shard id> in the same schema: on
 * the workers, and on the coordinator for the coordinator's copy of each
 * reference table (and for any shard placed there).  DDL on the table is
 * judged and recorded on the coordinator, against the shell; Citus then
 * runs the same DDL on each shard, and where a shard is local that DDL
 * fires our event triggers again.  Every place that decides whether a
 * relation is in scope asks EltIsCitusShard first, so a shard is never
 * governed, judged, versioned or listed.
 *
 * Citus is not linked against: its catalogs (pg_dist_shard,
 * pg_dist_partition, in pg_catalog) are found by name, once per
 * transaction, and read through their indexes like any table.  Without
 * Citus in the database the catalogs are not found and every answer is
 * false, at the cost of a name check and, for a name ending in _<digits>,
 * one syscache lookup.
 *
 * A relation is a shard when its name ends in _<digits>, pg_dist_shard has
 * a row with that shard id for another relation (its table), and the
 * shard is in its table's schema or has the name Citus gives that shard of
 * its table (AppendShardIdToName in Citus: <name>_<shard id>, or for a
 * long name a clipped name, a hash of the whole name and the shard id).
 * Citus itself asks for both (RelationIsAKnownShard); one is enough here
 * because Citus renames or moves the table before its shards, so while a
 * shard's own ALTER ... RENAME or SET SCHEMA runs, its name or its schema
 * still lags behind its table's.  The shards found are remembered for the
 * rest of the transaction (DDL on a Citus table touches many of them).
 *
 * Locking: AccessShareLock on the Citus catalog read, released at the end
 * of the transaction like any catalog read.  No state outlives a
 * transaction.  Layering: a shared layer; calls PostgreSQL only.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_namespace.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "nodes/primnodes.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "citus.h"
#include "pg_compat.h"

/* The Citus catalogs of this transaction (InvalidOid: not there). */
typedef struct CitusCatalogs
{
	LocalTransactionId lxid;
	Oid			dist_shard;
	Oid			dist_shard_idx;
	Oid			dist_partition;
	Oid			dist_partition_idx;
	List	   *shards;			/* shards found (in TopTransactionContext) */
} CitusCatalogs;

static CitusCatalogs catalogs = {InvalidLocalTransactionId};

/* The Citus catalogs, looked up by name once per transaction. */
static CitusCatalogs *
citus_catalogs(void)
{
	if (catalogs.lxid != EltMyLocalTransactionId())
	{
		catalogs.lxid = EltMyLocalTransactionId();
		catalogs.dist_shard = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
		catalogs.dist_shard_idx = get_relname_relid("pg_dist_shard_shardid_index",
													PG_CATALOG_NAMESPACE);
		catalogs.dist_partition = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
		catalogs.dist_partition_idx = get_relname_relid("pg_dist_partition_logical_relid_index",
														PG_CATALOG_NAMESPACE);
		catalogs.shards = NIL;	/* the list died with the last transaction */
	}
	return &catalogs;
}

/* A column of a Citus catalog, by name (Citus may add columns). */
static AttrNumber
citus_column(Relation rel, const char *name)
{
	AttrNumber	attnum = attnameAttNum(rel, name, false);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of Citus catalog \"%s\" is missing",
						name, RelationGetRelationName(rel)),
				 errhint("This Citus version is not supported by elt_governance.")));
	return attnum;
}

/*
 * The name Citus gives shard shardid of a relation called name
 * (AppendShardIdToName in Citus's relay_event_utility.c).
 */
static void
shard_name(const char *name, uint64 shardid, char *out)
{
	char		suffix[NAMEDATALEN];
	int			len = strlen(name);
	int			suffixlen;

	snprintf(suffix, sizeof(suffix), "_" UINT64_FORMAT, shardid);
	suffixlen = strlen(suffix);
	if (len < NAMEDATALEN - suffixlen)
		snprintf(out, NAMEDATALEN, "%s%s", name, suffix);
	else
	{
		uint32		hash = DatumGetUInt32(hash_any((const unsigned char *) name, len));
		int			clip = pg_mbcliplen(name, len, NAMEDATALEN - suffixlen - 10);

		snprintf(out, NAMEDATALEN, "%.*s_%.8x%s", clip, name, hash, suffix);
	}
}

/*
 * The table a shard id belongs to (pg_dist_shard.logicalrelid), or
 * InvalidOid.
 */
static Oid
shard_table(CitusCatalogs *c, int64 shardid)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			table = InvalidOid;

	rel = table_open(c->dist_shard, AccessShareLock);
	ScanKeyInit(&key, citus_column(rel, "shardid"), BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(shardid));
	scan = systable_beginscan(rel, c->dist_shard_idx, OidIsValid(c->dist_shard_idx),
							  NULL, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, citus_column(rel, "logicalrelid"),
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			table = DatumGetObjectId(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return table;
}

/*
 * Whether a relation is a Citus shard (see the file header).  False for a
 * relation that does not exist, and whenever Citus is not installed in the
 * database.
 */
bool
EltIsCitusShard(Oid relid)
{
	char	   *relname;
	const char *sep;
	const char *p;
	CitusCatalogs *c;
	int64		shardid;
	Oid			table;
	char	   *table_name;
	char		expected[NAMEDATALEN];
	bool		shard;

	relname = get_rel_name(relid);
	if (relname == NULL)
		return false;
	sep = strrchr(relname, '_');
	/* at most 18 digits: a shard id is a positive int8 */
	if (sep == NULL || sep[1] == '\0' || sep == relname || strlen(sep + 1) > 18)
		return false;
	for (p = sep + 1; *p; p++)
	{
		if (*p < '0' || *p > '9')
			return false;
	}
	c = citus_catalogs();
	if (!OidIsValid(c->dist_shard))
		return false;
	if (list_member_oid(c->shards, relid))
		return true;
	shardid = pg_strtoint64(sep + 1);
	table = shard_table(c, shardid);
	if (!OidIsValid(table) || table == relid ||
		(table_name = get_rel_name(table)) == NULL)
		return false;
	/* the same schema or the name Citus gives it: one may lag, see above */
	shard_name(table_name, (uint64) shardid, expected);
	shard = get_rel_namespace(table) == get_rel_namespace(relid) ||
		strcmp(expected, relname) == 0;
	if (shard)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		c->shards = lappend_oid(c->shards, relid);
		MemoryContextSwitchTo(old);
	}
	return shard;
}

/*
 * How a Citus table is distributed: false (info untouched) when relid is
 * not in pg_dist_partition or Citus is not installed.
 */
bool
EltCitusTableInfo(Oid relid, EltCitusTable *info)
{
	CitusCatalogs *c = citus_catalogs();
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(c->dist_partition))
		return false;
	rel = table_open(c->dist_partition, AccessShareLock);
	ScanKeyInit(&key, citus_column(rel, "logicalrelid"), BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, c->dist_partition_idx, OidIsValid(c->dist_partition_idx),
							  NULL, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;

		found = true;
		d = heap_getattr(tup, citus_column(rel, "partmethod"), desc, &isnull);
		info->method = isnull ? 'n' : DatumGetChar(d);
		d = heap_getattr(tup, citus_column(rel, "colocationid"), desc, &isnull);
		info->colocation = isnull ? 0 : DatumGetInt32(d);
		d = heap_getattr(tup, citus_column(rel, "repmodel"), desc, &isnull);
		info->replication = isnull ? 's' : DatumGetChar(d);
		info->column = NULL;
		d = heap_getattr(tup, citus_column(rel, "partkey"), desc, &isnull);
		if (!isnull)
		{
			/* the distribution column, as a Var in node form */
			Node	   *key_node = stringToNode(TextDatumGetCString(d));

			if (key_node != NULL && IsA(key_node, Var))
				info->column = get_attname(relid, ((Var *) key_node)->varattno, true);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}
