/*
 * contracts_keys.c — the keys of unique indexes, for the contracts engine:
 * what decides which rows a unique index lets in (its key columns,
 * operator families, collations, expressions, predicate), compared between
 * indexes and with an index a statement would build.
 *
 * Owns: EltUniqueIndexIsDuplicate (CREATE UNIQUE INDEX of a twin, as
 * pg_repack builds), EltUniqueIndexHasTwin (DROP INDEX of one), and
 * EltKeySwapKeepsKey (DROP CONSTRAINT pkey, ADD PRIMARY KEY USING INDEX on
 * the same key).
 *
 * Calls: PostgreSQL's catalogs (pg_index through the syscache and a catalog
 * scan) and parse analysis of a CREATE INDEX.  Called by
 * contracts_classify.c.
 *
 * Locking: the keys of existing indexes are read from pg_index, with no
 * lock on the table or its indexes (a dry run must never wait, and an index
 * is never locked before its table).  Transforming a statement's index
 * needs an ACCESS SHARE lock on its table: taken only if free at once, and
 * let go at once; busy, the key is unknown ("not the same key").
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_utilcmd.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "contracts_int.h"

/* What decides which rows a unique index lets in: its keys, not its name. */
typedef struct UniqueKey
{
	Oid			am;
	int			nkeys;
	AttrNumber	attnums[INDEX_MAX_KEYS];	/* 0 for an expression */
	Oid			opfamily[INDEX_MAX_KEYS];
	Oid			opcintype[INDEX_MAX_KEYS];
	Oid			collation[INDEX_MAX_KEYS];
	List	   *exprs;			/* planner form, as the relcache keeps it */
	List	   *pred;			/* implicit-AND list, NIL for none */
	bool		nulls_not_distinct;
} UniqueKey;

/* forward: used to read stored keys too */
static bool calls_user_function(Node *node, void *context);

/*
 * A stored expression list (indexprs, indpred) in the planner's form, as
 * the relcache builds it: constants folded, unless a function that is not
 * built in is called (folding would run it with the checker's rights; two
 * stored trees still compare equal unfolded).  pred: canonicalized as a
 * qual, into an implicit-AND list.
 */
static List *
stored_exprs(HeapTuple tup, int attno, bool pred)
{
	bool		isnull;
	Datum		d = SysCacheGetAttr(INDEXRELID, tup, attno, &isnull);
	Node	   *n;

	if (isnull)
		return NIL;
	n = (Node *) stringToNode(TextDatumGetCString(d));
	if (!calls_user_function(n, NULL))
	{
		n = eval_const_expressions(NULL, n);
		if (pred)
			n = (Node *) canonicalize_qual((Expr *) n, false);
	}
	fix_opfuncids(n);
	return pred ? make_ands_implicit((Expr *) n) : (List *) n;
}

/*
 * The key of an existing index, whatever its state, read from pg_index with
 * no lock (see the file header); *ix_out gets a copy of its flags.  False if
 * the index is gone.
 */
static bool
unique_key_of_index(Oid ioid, UniqueKey *k, FormData_pg_index *ix_out)
{
	HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(ioid));
	HeapTuple	ctup;
	Form_pg_index ix;
	oidvector  *indclass;
	oidvector  *indcoll;
	bool		isnull;
	int			i;

	if (!HeapTupleIsValid(tup))
		return false;
	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(ioid));
	if (!HeapTupleIsValid(ctup))
	{
		ReleaseSysCache(tup);
		return false;
	}
	k->am = ((Form_pg_class) GETSTRUCT(ctup))->relam;
	ReleaseSysCache(ctup);
	ix = (Form_pg_index) GETSTRUCT(tup);
	indclass = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tup,
															 Anum_pg_index_indclass, &isnull));
	indcoll = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tup,
															Anum_pg_index_indcollation, &isnull));
	k->nkeys = ix->indnkeyatts;
	for (i = 0; i < k->nkeys; i++)
	{
		k->attnums[i] = ix->indkey.values[i];
		k->opfamily[i] = get_opclass_family(indclass->values[i]);
		k->opcintype[i] = get_opclass_input_type(indclass->values[i]);
		k->collation[i] = indcoll->values[i];
	}
	k->exprs = stored_exprs(tup, Anum_pg_index_indexprs, false);
	k->pred = stored_exprs(tup, Anum_pg_index_indpred, true);
	k->nulls_not_distinct = ix->indnullsnotdistinct;
	if (ix_out != NULL)
		memcpy(ix_out, ix, sizeof(FormData_pg_index));
	ReleaseSysCache(tup);
	return true;
}

/* Whether an index is unique and checks every write now: valid, not deferrable. */
static bool
unique_index_checks_now(const FormData_pg_index *ix)
{
	return ix->indisunique && ix->indisvalid && ix->indisready && ix->indislive &&
		ix->indimmediate;
}

/* check_functions_in_node callback: a function not built into PostgreSQL. */
static bool
user_function_checker(Oid func_id, void *context)
{
	return func_id >= FirstNormalObjectId;
}

/*
 * Whether an analyzed expression calls a function (or operator, cast, type
 * I/O) that is not built in.  Such an expression is never folded: folding
 * runs IMMUTABLE functions called with constants, and a user's function run
 * here would run with the rights of whoever checks the statement (a
 * superuser linting someone's script), before PostgreSQL's own checks.
 */
static bool
calls_user_function(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, user_function_checker, context))
		return true;
	return expression_tree_walker(node, calls_user_function, context);
}

/*
 * The key CREATE UNIQUE INDEX would build, from its statement transformed
 * as PostgreSQL transforms it (expressions and predicate cooked, then
 * brought to the relcache's planner form), or false if a name in it does
 * not resolve (PostgreSQL reports that when it runs the statement).
 */
static bool
unique_key_of_stmt(Oid relid, IndexStmt *stmt, UniqueKey *k)
{
	IndexStmt  *t;
	ListCell   *lc;
	int			i = 0;

	/* transformIndexStmt opens the table: only under a lock free at once */
	if (!ConditionalLockRelationOid(relid, AccessShareLock))
		return false;
	/* it scribbles on its argument: PostgreSQL transforms the original later */
	t = transformIndexStmt(relid, copyObject(stmt), NULL);
	UnlockRelationOid(relid, AccessShareLock);

	k->am = get_index_am_oid(t->accessMethod, true);
	if (!OidIsValid(k->am) || list_length(t->indexParams) > INDEX_MAX_KEYS)
		return false;
	k->nkeys = list_length(t->indexParams);
	k->exprs = NIL;
	foreach(lc, t->indexParams)
	{
		IndexElem  *e = lfirst_node(IndexElem, lc);
		Oid			type;
		Oid			coll;
		Oid			opclass;

		if (e->name != NULL)
		{
			k->attnums[i] = get_attnum(relid, e->name);
			if (k->attnums[i] == InvalidAttrNumber)
				return false;
			{
				int32		typmod;

				get_atttypetypmodcoll(relid, k->attnums[i], &type, &typmod, &coll);
			}
		}
		else
		{
			Node	   *expr;

			if (calls_user_function(e->expr, NULL))
				return false;	/* compared only when folding runs no user code */
			expr = eval_const_expressions(NULL, e->expr);

			fix_opfuncids(expr);
			k->attnums[i] = 0;
			k->exprs = lappend(k->exprs, expr);
			type = exprType(expr);
			coll = exprCollation(expr);
		}
		if (e->collation != NIL)
			coll = get_collation_oid(e->collation, true);
		opclass = e->opclass != NIL ? get_opclass_oid(k->am, e->opclass, true)
			: GetDefaultOpClass(type, k->am);
		if (!OidIsValid(opclass))
			return false;
		k->opfamily[i] = get_opclass_family(opclass);
		k->opcintype[i] = get_opclass_input_type(opclass);
		k->collation[i] = coll;
		i++;
	}
	k->pred = NIL;
	if (t->whereClause != NULL)
	{
		Node	   *pred;

		if (calls_user_function(t->whereClause, NULL))
			return false;
		pred = eval_const_expressions(NULL, t->whereClause);

		pred = (Node *) canonicalize_qual((Expr *) pred, false);
		fix_opfuncids(pred);
		k->pred = make_ands_implicit((Expr *) pred);
	}
	k->nulls_not_distinct = t->nulls_not_distinct;
	return true;
}

/*
 * Whether every write that "have" lets in, "want" lets in too: the same
 * access method, key columns and expressions (operator families, input
 * types, collations) and predicate, and NULLs distinct in "want" unless
 * "have" treats them as not distinct.  INCLUDE columns and sort orders do
 * not decide which rows a unique index lets in.
 */
static bool
unique_key_covers(const UniqueKey *have, const UniqueKey *want)
{
	int			i;

	if (have->am != want->am || have->nkeys != want->nkeys ||
		(want->nulls_not_distinct && !have->nulls_not_distinct))
		return false;
	for (i = 0; i < have->nkeys; i++)
		if (have->attnums[i] != want->attnums[i] || have->opfamily[i] != want->opfamily[i] ||
			have->opcintype[i] != want->opcintype[i] || have->collation[i] != want->collation[i])
			return false;
	return equal(have->exprs, want->exprs) && equal(have->pred, want->pred);
}

/*
 * Whether a valid unique index of the table, other than skip and the
 * indexes in also_dropped, lets in no more writes than key: then a new
 * unique index with that key (pg_repack --only-indexes builds one on the
 * key of every unique index) makes no write fail, and dropping an index
 * with that key leaves the same rule in place.
 */
static bool
unique_key_exists(Oid relid, const UniqueKey *key, Oid skip, List *also_dropped)
{
	Relation	pgindex = table_open(IndexRelationId, AccessShareLock);
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *indexes = NIL;
	ListCell   *lc;
	bool		found = false;

	/* the table's indexes from pg_index (RelationGetIndexList would lock it) */
	ScanKeyInit(&skey, Anum_pg_index_indrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(pgindex, IndexIndrelidIndexId, true, NULL, 1, &skey);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		indexes = lappend_oid(indexes, ((Form_pg_index) GETSTRUCT(tup))->indexrelid);
	systable_endscan(scan);
	table_close(pgindex, AccessShareLock);
	foreach(lc, indexes)
	{
		Oid			ioid = lfirst_oid(lc);
		UniqueKey	have;
		FormData_pg_index ix;

		if (ioid == skip || list_member_oid(also_dropped, ioid))
			continue;
		if (unique_key_of_index(ioid, &have, &ix) && unique_index_checks_now(&ix) &&
			unique_key_covers(&have, key))
		{
			found = true;
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * Whether CREATE UNIQUE INDEX duplicates a unique index (of a primary key,
 * a unique constraint, or alone) the table has: exactly the same key
 * columns, expressions and predicate.
 */
bool
EltUniqueIndexIsDuplicate(Oid relid, IndexStmt *stmt)
{
	UniqueKey	want;

	if (!unique_key_of_stmt(relid, stmt, &want))
		return false;
	return unique_key_exists(relid, &want, InvalidOid, NIL);
}

/*
 * Whether dropping the unique index idx of table, with the indexes in
 * also_dropped, leaves a twin that lets in no more writes: then upserts
 * find the twin and no duplicate becomes possible.  Not for the replica
 * identity index (logical replication would lose its key).
 */
bool
EltUniqueIndexHasTwin(Oid table, Oid idx, List *also_dropped)
{
	UniqueKey	key;
	FormData_pg_index ix;

	if (!unique_key_of_index(idx, &key, &ix) || !ix.indisunique || ix.indisreplident)
		return false;
	return unique_key_exists(table, &key, idx, also_dropped);
}

/*
 * The key of the index a USING INDEX constraint names: a live index of the
 * table, else (check_ddl) one a CREATE UNIQUE INDEX earlier in the script
 * builds on it, from its statement.  False if neither.
 */
static bool
key_of_named_index(EltClassified *c, Oid relid, const char *name, UniqueKey *k)
{
	Oid			ioid = get_relname_relid(name, get_rel_namespace(relid));
	ListCell   *lc;

	if (OidIsValid(ioid))
	{
		FormData_pg_index ix;

		if (IndexGetRelation(ioid, true) != relid || !unique_key_of_index(ioid, k, &ix))
			return false;
		return unique_index_checks_now(&ix) || c->script != NULL;
	}
	if (c->script == NULL)
		return false;
	foreach(lc, c->script->index_stmts)
	{
		IndexStmt  *stmt = (IndexStmt *) lfirst(lc);

		if (stmt->idxname != NULL && strcmp(stmt->idxname, name) == 0 &&
			RangeVarGetRelid(stmt->relation, NoLock, true) == relid)
			return unique_key_of_stmt(relid, stmt, k);
	}
	return false;
}

/*
 * Whether dropping constraint conname (a PRIMARY KEY or UNIQUE constraint
 * of relid) is half of a swap that keeps its key: another subcommand of
 * the same ALTER TABLE adds a constraint of the same kind (a primary key
 * for a primary key) USING INDEX an index with exactly the same key, as
 * after CREATE UNIQUE INDEX CONCURRENTLY, and as deferrable (and initially
 * deferred) as the dropped one.  Upserts and foreign keys then find the
 * same rule in place.
 */
bool
EltKeySwapKeepsKey(EltClassified *c, Oid relid, const char *conname, char contype,
				   List *cmds)
{
	Oid			conoid = get_relation_constraint_oid(relid, conname, true);
	Oid			idx = OidIsValid(conoid) ? get_constraint_index(conoid) : InvalidOid;
	UniqueKey	old;
	ListCell   *lc;
	bool		deferrable;
	bool		deferred;

	if (!OidIsValid(idx))
		return false;
	if (!unique_key_of_index(idx, &old, NULL))
		return false;
	{
		HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));

		if (!HeapTupleIsValid(tup))
			return false;
		deferrable = ((Form_pg_constraint) GETSTRUCT(tup))->condeferrable;
		deferred = ((Form_pg_constraint) GETSTRUCT(tup))->condeferred;
		ReleaseSysCache(tup);
	}
	foreach(lc, cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
		Constraint *con = (Constraint *) cmd->def;
		UniqueKey	new;

		if (cmd->subtype != AT_AddConstraint || con == NULL || !IsA(con, Constraint) ||
			con->indexname == NULL)
			continue;
		if (!(con->contype == CONSTR_PRIMARY ||
			  (con->contype == CONSTR_UNIQUE && contype == CONSTRAINT_UNIQUE)))
			continue;
		/* a deferrable key is no key for ON CONFLICT or a new foreign key */
		if (con->deferrable != deferrable || con->initdeferred != deferred)
			continue;
		if (key_of_named_index(c, relid, con->indexname, &new) &&
			old.nulls_not_distinct == new.nulls_not_distinct &&
			unique_key_covers(&old, &new) && unique_key_covers(&new, &old))
			return true;
	}
	return false;
}
