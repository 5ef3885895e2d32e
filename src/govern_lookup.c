/*
 * govern_lookup.c — the questions every DDL statement asks of the governed
 * targets, answered without SPI: is anything governed (EltAnyTarget), which
 * policy does a table's own target or its schema's give (EltTargetPolicy),
 * is a table in scope and does it have a history (EltTableScope), is it a
 * partition of a governed parent (EltPartitionOfGoverned, in SQL: only
 * partitions ask it).
 *
 * They run in the event triggers of every DDL statement once anything in
 * the database is governed, several times per statement.  An SPI query,
 * even with a saved plan, pays the executor's start-up on every call (the
 * plan of EltTableScope had four sub-plans); reading elt.governed_targets
 * and elt.tracked_tables through their indexes here costs a few index
 * probes.  The answers are those of the SQL they replace (kept in the
 * comments), in the latest snapshot like EltExecLatest, so that a target
 * committed by another session while this one waited for its lock counts.
 *
 * No privilege is checked: the answers decide what governance does and are
 * never shown to the caller (the catalog is readable by every role anyway).
 * The indexes are found by name; if one was renamed, the table is scanned.
 *
 * Layering: the policy layer, under govern.c, which owns the tables and
 * calls it.  Calls util.c and citus.c only.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "citus.h"
#include "govern.h"
#include "util.h"

/* One of our catalog tables, opened for a lookup. */
typedef struct EltLookup
{
	Relation	rel;
	Oid			index;			/* InvalidOid: scan the table */
	Snapshot	snapshot;
} EltLookup;

static bool
lookup_open(EltLookup *l, const char *table, const char *index)
{
	Oid			nsp = get_namespace_oid(ELT_SCHEMA_NAME, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(table, nsp) : InvalidOid;

	if (!OidIsValid(relid))
		return false;
	l->rel = table_open(relid, AccessShareLock);
	l->index = get_relname_relid(index, nsp);
	l->snapshot = RegisterSnapshot(GetLatestSnapshot());
	return true;
}

static void
lookup_close(EltLookup *l)
{
	UnregisterSnapshot(l->snapshot);
	table_close(l->rel, AccessShareLock);
}

static AttrNumber
column(EltLookup *l, const char *name)
{
	AttrNumber	attnum = attnameAttNum(l->rel, name, false);

	if (attnum == InvalidAttrNumber)
		elog(ERROR, "column \"%s\" of the elt_governance catalog is missing", name);
	return attnum;
}

/*
 * The policy of the target of the given kind that matches: a table target
 * on relid (kind 'table'), or a schema target on nspname (kind 'schema').
 * NULL if there is none.  Both indexes are partial (WHERE kind = ...), so
 * the kind is checked on every row found, which a table scan needs.
 */
static char *
target_policy(const char *kind, Oid relid, const char *nspname)
{
	EltLookup	l;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	AttrNumber	kind_att,
				policy_att;
	char	   *policy = NULL;
	bool		is_table = strcmp(kind, "table") == 0;
	NameData	name;

	if (!lookup_open(&l, "governed_targets",
					 is_table ? "governed_targets_rel_idx" : "governed_targets_schema_idx"))
		return NULL;
	kind_att = column(&l, "kind");
	policy_att = column(&l, "policy");
	if (is_table)
		ScanKeyInit(&key, column(&l, "rel"), BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(relid));
	else
	{
		namestrcpy(&name, nspname);
		ScanKeyInit(&key, column(&l, "schema_name"), BTEqualStrategyNumber, F_NAMEEQ,
					NameGetDatum(&name));
	}
	scan = systable_beginscan(l.rel, l.index, OidIsValid(l.index), l.snapshot, 1, &key);
	while (policy == NULL && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		k = heap_getattr(tup, kind_att, RelationGetDescr(l.rel), &isnull);
		Datum		p;

		if (isnull || strcmp(TextDatumGetCString(k), kind) != 0)
			continue;
		p = heap_getattr(tup, policy_att, RelationGetDescr(l.rel), &isnull);
		if (!isnull)
			policy = TextDatumGetCString(p);
	}
	systable_endscan(scan);
	lookup_close(&l);
	return policy;
}

/*
 * Whether anything at all is governed; the fast path for everything else.
 * SELECT EXISTS (SELECT 1 FROM elt.governed_targets)
 */
bool
EltAnyTarget(void)
{
	EltLookup	l;
	SysScanDesc scan;
	bool		any;

	if (!lookup_open(&l, "governed_targets", "governed_targets_pkey"))
		return false;
	scan = systable_beginscan(l.rel, InvalidOid, false, l.snapshot, 0, NULL);
	any = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	lookup_close(&l);
	return any;
}

/*
 * The policy of a relation's own target, else of its schema's (a temporary
 * table is in no schema's scope); NULL if neither is governed, and for a
 * Citus shard, which is governed only through its table.  Ancestors
 * are the caller's concern.
 *
 * COALESCE((SELECT policy ... WHERE kind = 'table' AND rel = $1),
 *          (SELECT policy ... WHERE kind = 'schema' AND schema_name = <the
 *           relation's schema> AND <not temporary>))
 */
const char *
EltTargetPolicy(Oid relid)
{
	char	   *policy;
	HeapTuple	tup;

	/* a Citus shard is governed through its table, never on its own */
	if (EltIsCitusShard(relid))
		return NULL;
	policy = target_policy("table", relid, NULL);
	if (policy != NULL)
		return policy;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		Form_pg_class form = (Form_pg_class) GETSTRUCT(tup);
		char	   *nspname = form->relpersistence == RELPERSISTENCE_TEMP ? NULL :
			get_namespace_name(form->relnamespace);

		ReleaseSysCache(tup);
		if (nspname != NULL)
			policy = target_policy("schema", InvalidOid, nspname);
	}
	return policy;
}

/*
 * The history of a live table: whether elt.tracked_tables has a row for it,
 * and the schema it was last recorded under (palloc'd, or NULL).
 */
static bool
tracked_row(Oid relid, char **schema_name)
{
	EltLookup	l;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	*schema_name = NULL;
	if (!lookup_open(&l, "tracked_tables", "tracked_tables_relid_key"))
		return false;
	ScanKeyInit(&key, column(&l, "relid"), BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(l.rel, l.index, OidIsValid(l.index), l.snapshot, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, column(&l, "schema_name"),
									 RelationGetDescr(l.rel), &isnull);

		found = true;
		if (!isnull)
			*schema_name = pstrdup(NameStr(*DatumGetName(d)));
	}
	systable_endscan(scan);
	lookup_close(&l);
	return found;
}

/*
 * SQL condition: the relation (alias c of pg_class) is a partition whose
 * parent is governed, by its own target or its schema's.  Such a partition
 * is no table of its own for governance: its rows are the parent's, and
 * creating, attaching, detaching and dropping it is recorded in the
 * parent's history.  A table target on the partition itself still governs
 * it.
 */
#define PARTITION_OF_GOVERNED_SQL(c) \
	"(" c ".relispartition AND EXISTS (" \
	"   SELECT 1 FROM pg_inherits i" \
	"   JOIN pg_class pc ON pc.oid = i.inhparent" \
	"   JOIN pg_namespace pn ON pn.oid = pc.relnamespace" \
	"   JOIN elt.governed_targets pg" \
	"     ON (pg.kind = 'table' AND pg.rel = pc.oid::regclass)" \
	"     OR (pg.kind = 'schema' AND pg.schema_name = pn.nspname)" \
	"   WHERE i.inhrelid = " c ".oid))"

/*
 * Whether a live relation is a partition of a governed parent (by the
 * parent's own target or its schema's): see PARTITION_OF_GOVERNED_SQL.
 */
bool
EltPartitionOfGoverned(Oid relid)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	bool		isnull;

	if (!get_rel_relispartition(relid))
		return false;
	EltPrepare(&plan,
			   "SELECT " PARTITION_OF_GOVERNED_SQL("c") " AS partition_of_governed"
			   " FROM pg_class c WHERE c.oid = $1",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	EltExecLatest(plan, args, NULL, 1);
	return SPI_processed > 0 && EltSpiGetBool(0, "partition_of_governed", &isnull);
}

/*
 * Whether a live table is in the scope of a governed target now; *tracked
 * tells whether it has a history.  *was_in_scope (when not NULL) tells
 * whether the schema or table under which it was last recorded is governed.
 * Returns false for anything that is not an ordinary or partitioned
 * permanent table, and for a Citus shard (citus.c).  A partition of a
 * governed parent (EltPartitionOfGoverned) is in scope only by a table
 * target of its own: its rows are the parent's.
 *
 * in_scope:     a table target on it, or a schema target on its schema
 *               when it is not a partition of a governed parent
 * was_in_scope: tracked, and a table target on it, or a schema target on
 *               the schema it was recorded under, under the same condition
 */
bool
EltTableScope(Oid relid, bool *tracked, bool *was_in_scope)
{
	HeapTuple	tup;
	Form_pg_class form;
	char		relkind;
	char		relpersistence;
	bool		relispartition;
	Oid			nspoid;
	char	   *recorded_schema;
	bool		own_target;
	bool		schema_scope_ok;
	bool		in_scope;
	char	   *nspname;

	*tracked = false;
	if (was_in_scope)
		*was_in_scope = false;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return false;
	form = (Form_pg_class) GETSTRUCT(tup);
	relkind = form->relkind;
	relpersistence = form->relpersistence;
	relispartition = form->relispartition;
	nspoid = form->relnamespace;
	ReleaseSysCache(tup);
	if ((relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE) ||
		relpersistence == RELPERSISTENCE_TEMP)
		return false;
	/* a Citus shard: its table's DDL is recorded on the table (citus.c) */
	if (EltIsCitusShard(relid))
		return false;

	*tracked = tracked_row(relid, &recorded_schema);
	own_target = target_policy("table", relid, NULL) != NULL;
	/* computed only when a schema target would decide */
	schema_scope_ok = !relispartition || !EltPartitionOfGoverned(relid);

	nspname = get_namespace_name(nspoid);
	in_scope = own_target ||
		(schema_scope_ok && nspname != NULL &&
		 target_policy("schema", InvalidOid, nspname) != NULL);
	if (was_in_scope && *tracked)
		*was_in_scope = own_target ||
			(schema_scope_ok && recorded_schema != NULL &&
			 target_policy("schema", InvalidOid, recorded_schema) != NULL);
	return in_scope;
}
