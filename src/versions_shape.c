/*
 * versions_shape.c — the shape of a table as jsonb, as schema versions record
 * it: kind, persistence, partition key, storage options, access method,
 * the type of a typed table, owner, tablespace,
 * row level security, replica identity, inheritance and partitions, the
 * clustering index, columns (with storage, compression and statistics
 * target where not the default), primary key, constraints and indexes;
 * for a Citus table, its distribution.
 *
 * Built in C from the relcache and the syscache (one index scan of
 * pg_constraint), because it runs for every DDL statement on a governed
 * table.  Expressions, constraints and indexes are printed by PostgreSQL's
 * own deparsers under pinned settings (EltPinPrintSettings), so that every name
 * is qualified and the same shape always prints the same, whatever the
 * session's settings.
 *
 * The document is written with EltJson (util_json.c) and parsed into jsonb.
 *
 * Layering: a leaf of the versions engine.  The version store
 * (versions_store.c) and elt.table_shape() call it; it calls only util.c,
 * util_json.c and citus.c.
 *
 * Locking: takes AccessShareLock on the table, kept to the end of the
 * transaction, like any reader of its definition.
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/tablespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "citus.h"
#include "versions_shape.h"
#include "util.h"

/* Call a deparser taking an oid and returning text. */
static char *
deparse_oid(PGFunction fn, Oid oid)
{
	return TextDatumGetCString(DirectFunctionCall1(fn, ObjectIdGetDatum(oid)));
}

/* The expression text of a column default or generation expression. */
static char *
column_expression(Relation rel, AttrNumber attnum)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	int			i;

	if (constr == NULL)
		return NULL;
	for (i = 0; i < constr->num_defval; i++)
	{
		if (constr->defval[i].adnum == attnum)
			return TextDatumGetCString(DirectFunctionCall2(pg_get_expr,
														   CStringGetTextDatum(constr->defval[i].adbin),
														   ObjectIdGetDatum(RelationGetRelid(rel))));
	}
	return NULL;
}

/* The collation of a column: null, "default" for its type's, or its name. */
static char *
column_collation(Form_pg_attribute att)
{
	HeapTuple	tup;
	Form_pg_collation coll;
	char	   *result;

	if (!OidIsValid(att->attcollation))
		return NULL;
	if (att->attcollation == get_typcollation(att->atttypid))
		return pstrdup("default");
	tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(att->attcollation));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for collation %u", att->attcollation);
	coll = (Form_pg_collation) GETSTRUCT(tup);
	if (coll->collnamespace == PG_CATALOG_NAMESPACE)
		result = pstrdup(quote_identifier(NameStr(coll->collname)));
	else
		result = quote_qualified_identifier(get_namespace_name(coll->collnamespace),
											NameStr(coll->collname));
	ReleaseSysCache(tup);
	return result;
}

/*
 * Table-level settings readers and replication depend on: storage options
 * (as pg_class.reloptions lists them, or null), row level security and the
 * replica identity.
 */
static void
append_table_options(EltJson *out, Relation rel)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(RelationGetRelid(rel)));
	bool		isnull;
	Datum		options;
	const char *rls;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", RelationGetRelid(rel));
	options = SysCacheGetAttr(RELOID, tup, Anum_pg_class_reloptions, &isnull);
	if (isnull)
		EltJsonNull(out, "options");
	else
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(options), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &nulls, &n);
		EltJsonBeginArray(out, "options");
		for (i = 0; i < n; i++)
			EltJsonString(out, NULL, nulls[i] ? NULL : TextDatumGetCString(elems[i]));
		EltJsonEndArray(out);
	}
	ReleaseSysCache(tup);

	EltJsonString(out, "access_method", OidIsValid(rel->rd_rel->relam) ?
				  get_am_name(rel->rd_rel->relam) : NULL);
	EltJsonString(out, "of_type", OidIsValid(rel->rd_rel->reloftype) ?
				  format_type_be(rel->rd_rel->reloftype) : NULL);
	EltJsonString(out, "owner", GetUserNameFromId(rel->rd_rel->relowner, true));
	EltJsonString(out, "tablespace", OidIsValid(rel->rd_rel->reltablespace) ?
				  get_tablespace_name(rel->rd_rel->reltablespace) : NULL);

	rls = !rel->rd_rel->relrowsecurity ? "disabled" :
		rel->rd_rel->relforcerowsecurity ? "forced" : "enabled";
	EltJsonString(out, "row_security", rls);

	switch (rel->rd_rel->relreplident)
	{
		case REPLICA_IDENTITY_NOTHING:
			EltJsonString(out, "replica_identity", "nothing");
			break;
		case REPLICA_IDENTITY_FULL:
			EltJsonString(out, "replica_identity", "full");
			break;
		case REPLICA_IDENTITY_INDEX:
			{
				Oid			idx = RelationGetReplicaIndex(rel);

				EltJsonString(out, "replica_identity",
							  psprintf("index %s", OidIsValid(idx) ?
									   quote_identifier(get_rel_name(idx)) : "?"));
				break;
			}
		default:
			EltJsonString(out, "replica_identity", "default");
			break;
	}
}

/* list_sort comparator for strings. */
static int
string_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp((char *) lfirst(a), (char *) lfirst(b));
}

/* The qualified name of a relation. */
static char *
qualified_relname(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* A JSON array of strings. */
static void
shape_str_array(EltJson *out, const char *key, List *strings)
{
	ListCell   *lc;

	EltJsonBeginArray(out, key);
	foreach(lc, strings)
		EltJsonString(out, NULL, (char *) lfirst(lc));
	EltJsonEndArray(out);
}

/*
 * Where the table sits among others: its inheritance parents in order, or
 * the partitioned table it is a partition of with its bound; the partitions
 * of a partitioned table; the index it is clustered on.
 */
static void
append_inheritance(EltJson *out, Relation rel)
{
	Relation	inh = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *parents = NIL;
	List	   *partitions = NIL;
	char	   *clustered = NULL;
	ListCell   *lc;

	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationGetRelid(rel)));
	scan = systable_beginscan(inh, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		parents = lappend(parents,
						  qualified_relname(((Form_pg_inherits) GETSTRUCT(tup))->inhparent));
	systable_endscan(scan);

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		ScanKeyInit(&key, Anum_pg_inherits_inhparent, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(RelationGetRelid(rel)));
		scan = systable_beginscan(inh, InheritsParentIndexId, true, NULL, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
			partitions = lappend(partitions,
								 qualified_relname(((Form_pg_inherits) GETSTRUCT(tup))->inhrelid));
		systable_endscan(scan);
		list_sort(partitions, string_cmp);
	}
	table_close(inh, AccessShareLock);

	if (rel->rd_rel->relispartition)
	{
		HeapTuple	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(RelationGetRelid(rel)));
		bool		isnull;
		Datum		bound;

		if (!HeapTupleIsValid(ctup))
			elog(ERROR, "cache lookup failed for relation %u", RelationGetRelid(rel));
		bound = SysCacheGetAttr(RELOID, ctup, Anum_pg_class_relpartbound, &isnull);
		shape_str_array(out, "inherits", NIL);
		EltJsonString(out, "partition_of", parents ? (char *) linitial(parents) : NULL);
		EltJsonString(out, "partition_bound", isnull ? NULL :
					  TextDatumGetCString(DirectFunctionCall2(pg_get_expr, bound,
															  ObjectIdGetDatum(RelationGetRelid(rel)))));
		ReleaseSysCache(ctup);
	}
	else
	{
		shape_str_array(out, "inherits", parents);
		EltJsonString(out, "partition_of", NULL);
		EltJsonString(out, "partition_bound", NULL);
	}
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		shape_str_array(out, "partitions", partitions);
	else
		EltJsonString(out, "partitions", NULL);

	foreach(lc, RelationGetIndexList(rel))
	{
		HeapTuple	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (HeapTupleIsValid(itup))
		{
			if (((Form_pg_index) GETSTRUCT(itup))->indisclustered)
				clustered = get_rel_name(lfirst_oid(lc));
			ReleaseSysCache(itup);
		}
	}
	EltJsonString(out, "clustered_on", clustered);
}

/* The name of a column storage strategy, as ALTER TABLE spells it. */
static const char *
storage_name(char storage)
{
	switch (storage)
	{
		case TYPSTORAGE_PLAIN:
			return "plain";
		case TYPSTORAGE_EXTERNAL:
			return "external";
		case TYPSTORAGE_MAIN:
			return "main";
		default:
			return "extended";
	}
}

/* The columns, in attribute-number order, dropped ones left out. */
static void
append_columns(EltJson *out, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			position = 0;
	int			i;

	EltJsonBeginArray(out, "columns");
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		char	   *expr;
		char		not_null;

		if (att->attisdropped)
			continue;
		expr = att->atthasdef ? column_expression(rel, att->attnum) : NULL;
		EltJsonBeginObject(out, NULL);
		EltJsonString(out, "name", NameStr(att->attname));
		EltJsonInt(out, "attnum", att->attnum);
		EltJsonInt(out, "position", ++position);
		EltJsonString(out, "type", format_type_with_typemod(att->atttypid, att->atttypmod));
		not_null = EltAttNotNullState(RelationGetRelid(rel), att->attnum, att->attnotnull);
		EltJsonBool(out, "not_null", not_null == 'v');
		if (not_null == 'n')	/* 18: NOT VALID; absent otherwise, as before */
			EltJsonBool(out, "not_null_not_valid", true);
		EltJsonString(out, "default", att->attgenerated == '\0' ? expr : NULL);
		EltJsonString(out, "collation", column_collation(att));
		EltJsonString(out, "identity",
					  att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS ? "always" :
					  att->attidentity == ATTRIBUTE_IDENTITY_BY_DEFAULT ? "by default" : NULL);
		EltJsonString(out, "generated", att->attgenerated != '\0' ? expr : NULL);
		if (EltAttIsVirtual(att))	/* 18; absent for a stored one, as before */
			EltJsonBool(out, "virtual", true);
		EltJsonString(out, "storage", att->attstorage != get_typstorage(att->atttypid) ?
					  storage_name(att->attstorage) : NULL);
		EltJsonString(out, "compression",
					  att->attcompression == 'p' ? "pglz" :
					  att->attcompression == 'l' ? "lz4" : NULL);
		if (EltAttStatTarget(att) >= 0)
			EltJsonInt(out, "statistics", EltAttStatTarget(att));
		else
			EltJsonNull(out, "statistics");
		EltJsonEndObject(out);
	}
	EltJsonEndArray(out);
}

/* One constraint of the table, as read from pg_constraint. */
typedef struct ShapeConstraint
{
	char	   *name;
	Oid			oid;
	char		contype;
	bool		validated;
	List	   *columns;		/* attribute names, for the primary key */
} ShapeConstraint;

/* list_sort comparator: constraints by name. */
static int
constraint_name_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(((ShapeConstraint *) lfirst(a))->name,
				  ((ShapeConstraint *) lfirst(b))->name);
}

/* Primary key, unique, check, foreign key and exclusion constraints, by name. */
static List *
table_constraints(Relation rel)
{
	Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationGetRelid(rel)));
	scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true,
							  NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
		ShapeConstraint *sc;

		if (con->contype != CONSTRAINT_PRIMARY && con->contype != CONSTRAINT_UNIQUE &&
			con->contype != CONSTRAINT_CHECK && con->contype != CONSTRAINT_FOREIGN &&
			con->contype != CONSTRAINT_EXCLUSION)
			continue;
		sc = palloc0(sizeof(ShapeConstraint));
		sc->name = pstrdup(NameStr(con->conname));
		sc->oid = con->oid;
		sc->contype = con->contype;
		sc->validated = con->convalidated;
		if (con->contype == CONSTRAINT_PRIMARY)
		{
			bool		isnull;
			Datum		d = heap_getattr(tup, Anum_pg_constraint_conkey,
										 RelationGetDescr(conrel), &isnull);

			if (!isnull)
			{
				Datum	   *keys;
				int			n;
				int			i;

				deconstruct_array(DatumGetArrayTypeP(d), INT2OID, 2, true,
								  TYPALIGN_SHORT, &keys, NULL, &n);
				for (i = 0; i < n; i++)
					sc->columns = lappend(sc->columns,
										  get_attname(RelationGetRelid(rel),
													  DatumGetInt16(keys[i]), false));
			}
		}
		result = lappend(result, sc);
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
	list_sort(result, constraint_name_cmp);
	return result;
}

/* The name of a constraint type, as the shape spells it. */
static const char *
constraint_type_name(char contype)
{
	switch (contype)
	{
		case CONSTRAINT_PRIMARY:
			return "primary key";
		case CONSTRAINT_UNIQUE:
			return "unique";
		case CONSTRAINT_CHECK:
			return "check";
		case CONSTRAINT_FOREIGN:
			return "foreign key";
		default:
			return "exclusion";
	}
}

/* The primary key on its own, then every constraint with its definition. */
static void
append_constraints(EltJson *out, List *constraints)
{
	ListCell   *lc;
	ShapeConstraint *pk = NULL;

	foreach(lc, constraints)
	{
		if (((ShapeConstraint *) lfirst(lc))->contype == CONSTRAINT_PRIMARY)
			pk = (ShapeConstraint *) lfirst(lc);
	}
	if (pk)
	{
		ListCell   *c;

		EltJsonBeginObject(out, "primary_key");
		EltJsonString(out, "name", pk->name);
		EltJsonBeginArray(out, "columns");
		foreach(c, pk->columns)
			EltJsonString(out, NULL, (char *) lfirst(c));
		EltJsonEndArray(out);
		EltJsonEndObject(out);
	}
	else
		EltJsonNull(out, "primary_key");

	EltJsonBeginArray(out, "constraints");
	foreach(lc, constraints)
	{
		ShapeConstraint *sc = (ShapeConstraint *) lfirst(lc);

		EltJsonBeginObject(out, NULL);
		EltJsonString(out, "name", sc->name);
		EltJsonString(out, "type", constraint_type_name(sc->contype));
		EltJsonString(out, "definition", deparse_oid(pg_get_constraintdef, sc->oid));
		EltJsonBool(out, "validated", sc->validated);
		EltJsonEndObject(out);
	}
	EltJsonEndArray(out);
}

/* One index of the table. */
typedef struct ShapeIndex
{
	char	   *name;
	Oid			oid;
	char	   *definition;		/* from USING on */
	bool		unique;
	bool		primary;
	bool		valid;
} ShapeIndex;

/* list_sort comparator: indexes by name. */
static int
index_name_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(((ShapeIndex *) lfirst(a))->name, ((ShapeIndex *) lfirst(b))->name);
}

/*
 * Whether an index is the copy pg_repack builds of another index of the
 * table while it repacks indexes: named index_<oid of the other>, with the
 * same definition and validity (a valid copy of an invalid index enforces
 * what the other does not: a change of its own).  It lives only until
 * pg_repack swaps the files and drops it, so it is not part of the table's
 * shape (a repack records no version).
 */
static bool
index_is_repack_twin(const ShapeIndex *si, List *indexes)
{
	ListCell   *lc;
	char	   *end;
	unsigned long other;

	if (strncmp(si->name, "index_", 6) != 0 || !isdigit((unsigned char) si->name[6]))
		return false;
	errno = 0;
	other = strtoul(si->name + 6, &end, 10);
	if (*end != '\0' || errno != 0 || other == si->oid)
		return false;
	foreach(lc, indexes)
	{
		ShapeIndex *o = (ShapeIndex *) lfirst(lc);

		if (o->oid == (Oid) other)
			return o->unique == si->unique && o->valid == si->valid &&
				strcmp(o->definition, si->definition) == 0;
	}
	return false;
}

/*
 * Indexes by name, each with its definition from USING on: the table's own
 * name is left out, so that renaming the table does not change its indexes.
 * pg_repack's passing copies of indexes are left out too.
 */
static void
append_indexes(EltJson *out, Relation rel)
{
	List	   *indexes = NIL;
	ListCell   *lc;
	char	   *qualified = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													   RelationGetRelationName(rel));

	foreach(lc, RelationGetIndexList(rel))
	{
		ShapeIndex *si = palloc(sizeof(ShapeIndex));
		HeapTuple	tup;
		Form_pg_index idx;
		char	   *def;
		char	   *prefix;

		si->oid = lfirst_oid(lc);
		si->name = get_rel_name(si->oid);
		tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(si->oid));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for index %u", si->oid);
		idx = (Form_pg_index) GETSTRUCT(tup);
		def = deparse_oid(pg_get_indexdef, si->oid);
		prefix = psprintf("CREATE %sINDEX %s ON %s%s ",
						  idx->indisunique ? "UNIQUE " : "",
						  quote_identifier(si->name),
						  rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ? "ONLY " : "",
						  qualified);
		si->definition = strncmp(def, prefix, strlen(prefix)) == 0 ? def + strlen(prefix) : def;
		si->unique = idx->indisunique;
		si->primary = idx->indisprimary;
		si->valid = idx->indisvalid;
		ReleaseSysCache(tup);
		indexes = lappend(indexes, si);
	}
	list_sort(indexes, index_name_cmp);

	EltJsonBeginArray(out, "indexes");
	foreach(lc, indexes)
	{
		ShapeIndex *si = (ShapeIndex *) lfirst(lc);

		if (index_is_repack_twin(si, indexes))
			continue;
		EltJsonBeginObject(out, NULL);
		EltJsonString(out, "name", si->name);
		EltJsonString(out, "definition", si->definition);
		EltJsonBool(out, "unique", si->unique);
		EltJsonBool(out, "primary", si->primary);
		EltJsonBool(out, "valid", si->valid);
		EltJsonEndObject(out);
	}
	EltJsonEndArray(out);
}

/*
 * The shape of a relation as a jsonb datum, or (Datum) 0 if no relation has
 * that oid.
 */
Datum
EltTableShape(Oid relid)
{
	Relation	rel;
	EltJson		out;
	char	   *text;
	int			guc_level;
	Datum		result;

	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		return (Datum) 0;

	/* constants in defaults, checks and bounds print the same for everyone */
	guc_level = EltPinPrintSettings();

	EltJsonBegin(&out);
	EltJsonString(&out, "kind", rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ?
				  "partitioned table" : "table");
	EltJsonBool(&out, "unlogged", rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED);
	EltJsonString(&out, "partition_key",
				  rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ?
				  deparse_oid(pg_get_partkeydef, relid) : NULL);
	EltCitusDistributionJson(&out, relid);
	append_table_options(&out, rel);
	append_inheritance(&out, rel);
	append_columns(&out, rel);
	append_constraints(&out, table_constraints(rel));
	append_indexes(&out, rel);
	text = EltJsonFinish(&out);

	AtEOXact_GUC(true, guc_level);
	relation_close(rel, NoLock);

	result = DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
	pfree(text);
	return result;
}

/*
 * elt.table_shape(rel regclass): the current shape of a table, exactly as a
 * version would record it.
 */
PG_FUNCTION_INFO_V1(elt_table_shape);
Datum
elt_table_shape(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char		relkind = get_rel_relkind(relid);
	Datum		shape;

	if (relkind != '\0' && relkind != RELKIND_RELATION &&
		relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", get_rel_name(relid)),
				 errdetail("Shapes are recorded for ordinary and partitioned tables.")));
	shape = EltTableShape(relid);

	if (shape == (Datum) 0)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(shape);
}
