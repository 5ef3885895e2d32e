/*
 * citus.c — what governance needs to know about Citus: whether a relation
 * is a shard (EltIsCitusShard), whether a DDL statement is one Citus runs
 * on its shards (EltCitusShardStatement), and how a Citus table is
 * distributed (EltCitusTableInfo) and that distribution as JSON
 * (EltCitusDistributionJson); and making a copy a Citus table distributed
 * like its source (EltCitusDistributeLike).
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
 * still lags behind its table's.  And when the table is gone, the shard is
 * being dropped with it (Citus drops the shards from its sql_drop trigger,
 * before it deletes their rows).  The shards found are remembered for the
 * rest of the transaction (DDL on a Citus table touches many of them).
 *
 * The staging table of a transform run pushed down to the shards
 * (transform_pushdown.c) is treated like a shard while that run uses it
 * in this backend (EltCitusStageBegin/End): created and dropped inside the
 * run, it is never governed or judged.
 *
 * Locking: AccessShareLock on the Citus catalog read, released at the end
 * of the transaction like any catalog read.  No state outlives a
 * transaction.  Layering: a shared layer; calls PostgreSQL, util, and
 * Citus's own SQL functions (to distribute a copy) through SPI.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "catalog/pg_namespace.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "catalog/namespace.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "parser/parse_func.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
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
 * The staging table of the transform run in progress in this backend
 * (transform_pushdown.c): like a shard, the run's own scaffolding, created
 * and dropped inside the run's transaction, never governed or judged.
 * Known by schema and name, set only while the run uses it.
 */
static Oid	run_stage_nsp = InvalidOid;
static char run_stage_name[NAMEDATALEN] = "";

void
EltCitusStageBegin(Oid nspoid, const char *relname)
{
	run_stage_nsp = nspoid;
	strlcpy(run_stage_name, relname, NAMEDATALEN);
}

void
EltCitusStageEnd(void)
{
	run_stage_nsp = InvalidOid;
	run_stage_name[0] = '\0';
}

static bool
run_stage_named(Oid nspoid, const char *relname)
{
	return run_stage_name[0] != '\0' && nspoid == run_stage_nsp &&
		strcmp(relname, run_stage_name) == 0;
}

/*
 * Whether relname in namespace nspoid names a Citus shard (see the file
 * header); relid is the relation if it exists, else InvalidOid (a shard
 * being created, or dropped already).
 */
static bool
shard_named(Oid nspoid, const char *relname, Oid relid)
{
	const char *sep = strrchr(relname, '_');
	const char *p;
	CitusCatalogs *c;
	int64		shardid;
	Oid			table;
	char	   *table_name;
	char		expected[NAMEDATALEN];
	bool		shard;

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
	if (OidIsValid(relid) && list_member_oid(c->shards, relid))
		return true;
	shardid = pg_strtoint64(sep + 1);
	table = shard_table(c, shardid);
	if (!OidIsValid(table) || table == relid)
		return false;
	table_name = get_rel_name(table);
	if (table_name == NULL)
		shard = true;			/* its table is gone: Citus drops its shards */
	else
	{
		/* the same schema or the name Citus gives it: one may lag, see above */
		shard_name(table_name, (uint64) shardid, expected);
		shard = get_rel_namespace(table) == nspoid || strcmp(expected, relname) == 0;
	}
	if (shard && OidIsValid(relid))
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		c->shards = lappend_oid(c->shards, relid);
		MemoryContextSwitchTo(old);
	}
	return shard;
}

/*
 * Whether a relation is a Citus shard (see the file header).  False for a
 * relation that does not exist, and whenever Citus is not installed in the
 * database.
 */
bool
EltIsCitusShard(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname != NULL && run_stage_named(get_rel_namespace(relid), relname))
		return true;
	return relname != NULL && shard_named(get_rel_namespace(relid), relname, relid);
}

/* Whether a relation named in a statement is a Citus shard (or will be one). */
static bool
shard_rangevar(RangeVar *rv)
{
	Oid			relid;
	Oid			nspoid;
	size_t		len = strlen(rv->relname);

	if (run_stage_name[0] != '\0' && strcmp(rv->relname, run_stage_name) == 0)
		return rv->schemaname != NULL &&
			run_stage_named(get_namespace_oid(rv->schemaname, true), rv->relname);
	/* the cheap test first: a shard's name ends in a digit */
	if (len == 0 || rv->relname[len - 1] < '0' || rv->relname[len - 1] > '9')
		return false;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (OidIsValid(relid))
		return EltIsCitusShard(relid);
	/* Citus names a shard with its schema */
	nspoid = rv->schemaname ? get_namespace_oid(rv->schemaname, true) : InvalidOid;
	return OidIsValid(nspoid) && shard_named(nspoid, rv->relname, InvalidOid);
}

/*
 * Whether a DDL statement is one Citus runs on its shards: every relation
 * it names (a table or an index, to create, alter, rename, move, truncate
 * or drop) is a shard.  Such a statement runs inside the statement on the table
 * (DDL on a distributed or reference table reaches the shards on this
 * node through the event triggers again); the triggers leave it alone.
 */
bool
EltCitusShardStatement(Node *parsetree)
{
	ListCell   *lc;

	if (parsetree == NULL)
		return false;
	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			return shard_rangevar(((AlterTableStmt *) parsetree)->relation);
		case T_IndexStmt:
			return shard_rangevar(((IndexStmt *) parsetree)->relation);
		case T_CreateStmt:
			return shard_rangevar(((CreateStmt *) parsetree)->relation);
		case T_RenameStmt:
			return ((RenameStmt *) parsetree)->relation != NULL &&
				shard_rangevar(((RenameStmt *) parsetree)->relation);
		case T_AlterObjectSchemaStmt:
			return ((AlterObjectSchemaStmt *) parsetree)->relation != NULL &&
				shard_rangevar(((AlterObjectSchemaStmt *) parsetree)->relation);
		case T_TruncateStmt:
			foreach(lc, ((TruncateStmt *) parsetree)->relations)
			{
				if (!shard_rangevar((RangeVar *) lfirst(lc)))
					return false;
			}
			return ((TruncateStmt *) parsetree)->relations != NIL;
		case T_DropStmt:
			{
				DropStmt   *ds = (DropStmt *) parsetree;

				if (ds->removeType != OBJECT_TABLE && ds->removeType != OBJECT_INDEX &&
					ds->removeType != OBJECT_FOREIGN_TABLE)
					return false;
				foreach(lc, ds->objects)
				{
					if (!shard_rangevar(makeRangeVarFromNameList((List *) lfirst(lc))))
						return false;
				}
				return ds->objects != NIL;
			}
		default:
			return false;
	}
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

/*
 * A Citus table's distribution as JSON: its method, distribution column
 * and colocation group, under "distribution", appended to out; nothing for
 * any other table.  Both a table's shape (versions_shape.c) and a run
 * manifest's relations (manifest.c) record it, in this one form.
 */
void
EltCitusDistributionJson(EltJson *out, Oid relid)
{
	EltCitusTable t;
	const char *method;

	if (!EltCitusTableInfo(relid, &t))
		return;
	switch (t.method)
	{
		case 'h':
			method = "hash";
			break;
		case 'r':
			method = "range";
			break;
		case 'a':
			method = "append";
			break;
		default:
			/* no distribution column: copied everywhere, one shard, or local */
			method = t.replication == 't' ? "reference" :
				t.colocation != 0 ? "single shard" : "citus local";
			break;
	}
	EltJsonBeginObject(out, "distribution");
	EltJsonString(out, "method", method);
	EltJsonString(out, "column", t.column);
	EltJsonInt(out, "colocation", t.colocation);
	EltJsonEndObject(out);
}

/* Whether Citus is installed in this database. */
bool
EltCitusInstalled(void)
{
	return OidIsValid(citus_catalogs()->dist_partition);
}

/*
 * Make copy, a new empty table, a Citus table distributed as method says
 * ("hash" on column, colocated with colocate_with when given, else in
 * Citus's default group for its column type; "reference"): the form a
 * manifest records (EltCitusDistributionJson).  Returns 'h' or 'r', or 0
 * for any other method (the copy stays a plain table) and when Citus is
 * not installed.  Run as the copy's owner (Citus requires it), SPI
 * connected.
 */
char
EltCitusDistributeAs(Oid copy, const char *method, const char *column, Oid colocate_with)
{
	char	   *copyname = EltRelDisplayName(copy);

	if (method == NULL || !EltCitusInstalled())
		return 0;
	if (strcmp(method, "hash") == 0 && column != NULL)
	{
		if (SPI_execute_with_args("SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, $2,"
								  " colocate_with => $3)",
								  3, (Oid[]) {OIDOID, TEXTOID, TEXTOID},
								  (Datum[]) {ObjectIdGetDatum(copy), CStringGetTextDatum(column),
									  CStringGetTextDatum(OidIsValid(colocate_with)
														  ? EltRelDisplayName(colocate_with) : "default")},
								  NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "distributing %s failed", copyname);
		return 'h';
	}
	if (strcmp(method, "reference") == 0)
	{
		if (SPI_execute_with_args("SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)",
								  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(copy)},
								  NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "making %s a reference table failed", copyname);
		return 'r';
	}
	return 0;
}

/*
 * Make copy, a new empty table with the columns of source, a Citus table
 * distributed like source: a hash-distributed source gives a table
 * distributed on the same column and colocated with colocate_with (source
 * itself when not given), so that the copy has as many shards, placed
 * alike, and a statement joining or copying between them runs on the
 * shards; a reference table gives a reference table.  Returns the kind
 * made ('h', 'r'), or 0 when source is no such Citus table (the copy stays
 * a plain table).  Run as the copy's owner, SPI connected.
 */
char
EltCitusDistributeLike(Oid copy, Oid source, Oid colocate_with)
{
	EltCitusTable t;

	if (!EltCitusTableInfo(source, &t))
		return 0;
	if (t.method == 'h' && t.column != NULL)
		return EltCitusDistributeAs(copy, "hash", t.column,
									OidIsValid(colocate_with) ? colocate_with : source);
	if (t.method == 'n' && t.replication == 't')
		return EltCitusDistributeAs(copy, "reference", NULL, InvalidOid);
	return 0;
}

/*
 * Before the first Citus table is made in schema nsp (InvalidOid: a schema
 * not made yet) in this transaction: Citus creates the schema on the
 * workers when it distributes that table, one connection per node, and
 * refuses to if a statement of the transaction ran on the shards in
 * parallel before.  So until the caller's AtEOXact_GUC(true, level), the
 * statements on several shards run one connection per node
 * (citus.multi_shard_modify_mode = sequential).  Returns the GUC nest
 * level to end, or 0 when nothing was set (no Citus, or the schema is
 * already on the workers).
 */
int
EltCitusSequentialForSchema(Oid nsp)
{
	int			level;

	if (!EltCitusInstalled())
		return 0;
	if (OidIsValid(nsp))
	{
		bool		known;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_dist_object"
								  " WHERE classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND objid = $1",
								  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(nsp)}, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading pg_dist_object failed");
		known = SPI_processed > 0;
		SPI_finish();
		if (known)
			return 0;
	}
	level = NewGUCNestLevel();
	EltCitusSequential();
	return level;
}

/*
 * From here to the end of the caller's GUC nest level, Citus runs a
 * statement on several shards over one connection per node
 * (citus.multi_shard_modify_mode = sequential).  Needed where one
 * transaction writes tables of two colocation groups, then runs a
 * statement that reads or writes both: Citus requires the placements a
 * task touches to have been written over one connection, and in parallel
 * mode which connection wrote which is left to timing.  Nothing without
 * Citus.
 */
void
EltCitusSequential(void)
{
	if (!EltCitusInstalled())
		return;
	(void) set_config_option("citus.multi_shard_modify_mode", "sequential", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * The session's global process id, as Citus numbers it (citus_backend_gpid):
 * the same in the coordinator's backend and in every connection Citus opens
 * to the workers on its behalf, where Citus runs the shards' part of its
 * queries.  False when Citus is not installed.
 */
bool
EltCitusSessionGpid(int64 *gpid)
{
	Oid			fn;

	if (!EltCitusInstalled())
		return false;
	fn = LookupFuncName(list_make2(makeString("pg_catalog"), makeString("citus_backend_gpid")), 0, NULL, true);
	if (!OidIsValid(fn))
		return false;
	*gpid = DatumGetInt64(OidFunctionCall0(fn));
	return true;
}
