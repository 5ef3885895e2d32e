/*
 * lineage.c — lineage of a transform's query, read off its analyzed tree.
 *
 * Row lineage: the query is parsed and analyzed (never read as text), each
 * construct is checked, and the tree is rewritten so that every output row
 * also carries the keys of the source rows that made it: one key column per
 * base table the query reads, at every level (subqueries and CTEs in FROM,
 * UNION ALL branches), an array of keys where rows are grouped (GROUP BY,
 * aggregates, DISTINCT).  The rewritten tree is printed back to SQL with
 * the server's own deparser, and transform.c runs it.  A construct whose
 * lineage cannot be captured exactly stops row lineage with a message that
 * names it; the caller turns that into an error or into table lineage.
 *
 * Column lineage: every output column's expression is followed down through
 * subqueries, CTEs, joins and set operations to base table columns, and
 * classified (identity, transformation, aggregation); the columns that
 * filter, join or group the rows are indirect edges.
 *
 * Nothing here writes the catalog or takes locks beyond the AccessShareLock
 * that parse analysis takes on each relation.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_collation.h"
#include "parser/parsetree.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_language.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_func.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "lineage.h"
#include "util.h"

/* A query level, for Vars that point up and CTEs defined above. */
typedef struct Scope
{
	Query	   *q;
	struct Scope *parent;
	List	   *cte_slots;		/* per q->cteList entry: RwCte *, or NULL */
} Scope;

/* The key columns one CTE was given. */
typedef struct RwCte
{
	List	   *slots;			/* EltLineageSlot * */
	List	   *names;			/* names of its key columns */
	int			first_attno;	/* attno of its first key column */
} RwCte;

/* State of one rewrite. */
typedef struct Rewrite
{
	char	   *blocker;
	char	   *hint;
	int			counter;		/* for unique key column names */
	Oid			key_text_fn;
	Oid			agg_int8;
	Oid			agg_int8_arr;
	Oid			agg_text;
	Oid			agg_text_arr;
	List	   *setop_names;	/* names of the key columns of the set
								 * operation rewritten last (its leftmost
								 * branch's, which its output takes) */
} Rewrite;

static void block(Rewrite *rw, const char *hint, const char *fmt,...) pg_attribute_printf(3, 4);
static List *rewrite_query(Rewrite *rw, Query *q, Scope *parent, List **exprs);

/* Record the first construct that prevents row lineage. */
static void
block(Rewrite *rw, const char *hint, const char *fmt,...)
{
	va_list		args;
	StringInfoData buf;

	if (rw->blocker != NULL)
		return;
	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	rw->blocker = buf.data;
	rw->hint = hint ? pstrdup(hint) : NULL;
}

/*
 * Relation references in a SELECT's raw parse tree, in the order the
 * parser's walker meets them.  A name without a schema that a WITH clause
 * around it defines is a CTE reference, not a relation; every other
 * RangeVar is.  With remap, the references are replaced in turn by the
 * qualified names it lists (pairs of schema and relation), which is how a
 * replay reads its sandbox copies with the recorded SQL.
 */
typedef struct RawRefs
{
	List	   *ctes;			/* stack of lists of CTE names in scope */
	List	   *refs;			/* RangeVar *, in order */
	List	   *remap;			/* char *: schema, name, schema, name, ... */
	int			next;
} RawRefs;

static bool
raw_refs_walker(Node *node, RawRefs *rr)
{
	if (node == NULL)
		return false;
	if (IsA(node, SelectStmt) && ((SelectStmt *) node)->withClause != NULL)
	{
		SelectStmt *stmt = (SelectStmt *) node;
		WithClause *with = stmt->withClause;
		List	   *names = NIL;
		ListCell   *lc;
		bool		r;

		/*
		 * A CTE's body sees the CTEs before it (all of them, and itself,
		 * under WITH RECURSIVE); the statement sees them all.
		 */
		if (with->recursive)
			foreach(lc, with->ctes)
				names = lappend(names, lfirst_node(CommonTableExpr, lc)->ctename);
		rr->ctes = lcons(names, rr->ctes);
		foreach(lc, with->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (raw_refs_walker(cte->ctequery, rr))
				return true;
			if (!with->recursive)
				linitial(rr->ctes) = lappend((List *) linitial(rr->ctes), cte->ctename);
		}
		stmt->withClause = NULL;
		r = raw_expression_tree_walker(node, raw_refs_walker, (void *) rr);
		stmt->withClause = with;
		rr->ctes = list_delete_first(rr->ctes);
		return r;
	}
	if (IsA(node, RangeVar))
	{
		RangeVar   *rv = (RangeVar *) node;
		ListCell   *lc;

		if (rv->schemaname == NULL)
			foreach(lc, rr->ctes)
			{
				ListCell   *lc2;

				foreach(lc2, (List *) lfirst(lc))
					if (strcmp((char *) lfirst(lc2), rv->relname) == 0)
						return false;
			}
		rr->refs = lappend(rr->refs, rv);
		if (rr->remap != NIL)
		{
			if (rr->next + 1 >= list_length(rr->remap))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("the recorded SQL names more relations than its step recorded"),
						 errhint("The manifest is inconsistent: its step lists the relations its SQL names, in order.")));
			/* columns qualified by the relation's name keep resolving */
			if (rv->alias == NULL)
				rv->alias = makeAlias(rv->relname, NIL);
			rv->catalogname = NULL;
			rv->schemaname = list_nth(rr->remap, rr->next);
			rv->relname = list_nth(rr->remap, rr->next + 1);
			rr->next += 2;
		}
		return false;
	}
	return raw_expression_tree_walker(node, raw_refs_walker, (void *) rr);
}

/* The relation references (RangeVar *) of a SELECT, in walk order. */
List *
EltRawRelationRefs(const char *sql)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	RawRefs		rr;

	memset(&rr, 0, sizeof(rr));
	if (list_length(raw) == 1)
		(void) raw_refs_walker(linitial_node(RawStmt, raw)->stmt, &rr);
	return rr.refs;
}

/*
 * Parse and analyze sql, which must be exactly one plain SELECT.  Errors
 * say what is wrong with the statement.  With remap (pairs of schema and
 * relation names), its relation references are replaced in turn first.
 */
static Query *
analyze_select(const char *sql, List *remap)
{
	List	   *raw;
	RawStmt    *stmt;
	Query	   *q;

	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transform's SQL must be exactly one SELECT statement, not %d statements",
						list_length(raw))));
	stmt = linitial_node(RawStmt, raw);
	if (!IsA(stmt->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transform's SQL must be a SELECT statement"),
				 errdetail("The target is written by elt.transform_run() according to the mode; the SQL only says what to write.")));
	if (((SelectStmt *) stmt->stmt)->intoClause != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transform's SQL must not use SELECT INTO")));
	if (remap != NIL)
	{
		RawRefs		rr;

		memset(&rr, 0, sizeof(rr));
		rr.remap = remap;
		(void) raw_refs_walker(stmt->stmt, &rr);
		if (rr.next != list_length(remap))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the recorded SQL names fewer relations than its step recorded"),
					 errhint("The manifest is inconsistent: its step lists the relations its SQL names, in order.")));
	}
	q = parse_analyze_fixedparams(stmt, sql, NULL, 0, NULL);
	if (q->commandType != CMD_SELECT || q->utilityStmt != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transform's SQL must be a SELECT statement")));
	if (q->hasModifyingCTE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transform's SQL must not modify data"),
				 errdetail("It has a WITH clause that contains INSERT, UPDATE or DELETE.")));
	return q;
}

Query *
EltAnalyzeSelect(const char *sql)
{
	return analyze_select(sql, NIL);
}

/* The SELECT sql analyzed with its relation references replaced (replay). */
Query *
EltAnalyzeSelectRemapped(const char *sql, List *remap)
{
	return analyze_select(sql, remap);
}

/* ---------------------------------------------------------------------
 * Functions: hidden reads and non-determinism
 * ---------------------------------------------------------------------
 */

typedef struct FuncCheck
{
	Rewrite    *rw;
	List	  **nondeterministic;
	Oid			elt_random;
} FuncCheck;

/* Append name to list unless it is there. */
static List *
add_name(List *list, const char *name)
{
	ListCell   *lc;

	foreach(lc, list)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return list;
	return lappend(list, pstrdup(name));
}

/* Callback for check_functions_in_node: look at one function. */
static bool
check_one_function(Oid funcid, void *context)
{
	FuncCheck  *fc = (FuncCheck *) context;
	HeapTuple	tup;
	Form_pg_proc proc;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		return false;
	proc = (Form_pg_proc) GETSTRUCT(tup);

	if (funcid != fc->elt_random &&
		(proc->provolatile == PROVOLATILE_VOLATILE ||
		 funcid == F_NOW || funcid == F_STATEMENT_TIMESTAMP ||
		 funcid == F_TRANSACTION_TIMESTAMP))
		*fc->nondeterministic = add_name(*fc->nondeterministic,
										 psprintf("%s()", NameStr(proc->proname)));

	/* what the query tree does not show, row lineage would miss */
	if (fc->rw != NULL)
	{
		EltHiddenRead r = EltFunctionHiddenRead(funcid);

		if (r != ELT_READS_NOTHING_HIDDEN)
			block(fc->rw, EltHiddenReadHint(r), "function %s() %s",
				  NameStr(proc->proname), EltHiddenReadWhat(r));
	}
	ReleaseSysCache(tup);
	return false;
}

/* Walker: every function and time value in a query tree. */
static bool
functions_walker(Node *node, FuncCheck *fc)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, functions_walker, fc, 0);
	if (IsA(node, SQLValueFunction))
	{
		SQLValueFunction *svf = (SQLValueFunction *) node;

		switch (svf->op)
		{
			case SVFOP_CURRENT_DATE:
				*fc->nondeterministic = add_name(*fc->nondeterministic, "current_date");
				break;
			case SVFOP_CURRENT_TIME:
			case SVFOP_CURRENT_TIME_N:
				*fc->nondeterministic = add_name(*fc->nondeterministic, "current_time");
				break;
			case SVFOP_CURRENT_TIMESTAMP:
			case SVFOP_CURRENT_TIMESTAMP_N:
				*fc->nondeterministic = add_name(*fc->nondeterministic, "current_timestamp");
				break;
			case SVFOP_LOCALTIME:
			case SVFOP_LOCALTIME_N:
				*fc->nondeterministic = add_name(*fc->nondeterministic, "localtime");
				break;
			case SVFOP_LOCALTIMESTAMP:
			case SVFOP_LOCALTIMESTAMP_N:
				*fc->nondeterministic = add_name(*fc->nondeterministic, "localtimestamp");
				break;
			default:
				break;
		}
		return false;
	}
	(void) check_functions_in_node(node, check_one_function, fc);
	return expression_tree_walker(node, functions_walker, fc);
}

/* ---------------------------------------------------------------------
 * Row lineage: checking and rewriting
 * ---------------------------------------------------------------------
 */

/* The key columns of a relation's primary key, in key order (NIL if none). */
List *
EltPrimaryKeyColumns(Relation rel)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	Relation	idx;
	List	   *cols = NIL;
	int			i;

	if (!OidIsValid(pk))
		return NIL;
	idx = index_open(pk, AccessShareLock);
	for (i = 0; i < idx->rd_index->indnkeyatts; i++)
		cols = lappend_int(cols, idx->rd_index->indkey.values[i]);
	index_close(idx, AccessShareLock);
	return cols;
}

/* An integer type whose values are kept as bigint keys. */
bool
EltIntegerKeyType(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID;
}

/*
 * The key expression of base relation rtindex: its primary key as bigint,
 * or as canonical text.  NULL (with a blocker) when it has none.
 */
static Expr *
base_key_expr(Rewrite *rw, RangeTblEntry *rte, int rtindex, EltLineageSlot *slot)
{
	Relation	rel;
	List	   *cols;
	Expr	   *result;
	char	   *relname = EltRelDisplayName(rte->relid);

	switch (rte->relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
			break;
		case RELKIND_VIEW:
			block(rw, "Read the view's tables directly, or create the transform with options => '{\"lineage\": \"table\"}'.",
				  "view %s has no key to record", relname);
			return NULL;
		case RELKIND_MATVIEW:
			block(rw, "Read the tables it is built from, or create the transform with options => '{\"lineage\": \"table\"}'.",
				  "materialized view %s has no primary key to record", relname);
			return NULL;
		case RELKIND_FOREIGN_TABLE:
			block(rw, "Load it into a table with a primary key first, or create the transform with options => '{\"lineage\": \"table\"}'.",
				  "foreign table %s has no primary key to record", relname);
			return NULL;
		default:
			block(rw, NULL, "relation %s cannot be a lineage source", relname);
			return NULL;
	}
	if (rte->inh && rte->relkind == RELKIND_RELATION && has_subclass(rte->relid))
	{
		block(rw, "Read it with ONLY, or create the transform with options => '{\"lineage\": \"table\"}'.",
			  "table %s has inheritance children, whose keys may repeat the parent's", relname);
		return NULL;
	}

	rel = table_open(rte->relid, AccessShareLock);
	cols = EltPrimaryKeyColumns(rel);
	if (cols == NIL)
	{
		table_close(rel, AccessShareLock);
		block(rw, "Add a primary key to it, or create the transform with options => '{\"lineage\": \"table\"}'.",
			  "table %s has no primary key, and row lineage identifies source rows by primary key",
			  relname);
		return NULL;
	}
	slot->relid = rte->relid;
	slot->array = false;
	if (list_length(cols) == 1 &&
		EltIntegerKeyType(TupleDescAttr(RelationGetDescr(rel), linitial_int(cols) - 1)->atttypid))
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), linitial_int(cols) - 1);
		Var		   *v = makeVar(rtindex, att->attnum, att->atttypid, att->atttypmod,
								att->attcollation, 0);

		slot->text = false;
		if (att->atttypid == INT8OID)
			result = (Expr *) v;
		else
			result = (Expr *) makeFuncExpr(att->atttypid == INT4OID ? F_INT8_INT4 : F_INT8_INT2,
										   INT8OID, list_make1(v), InvalidOid, InvalidOid,
										   COERCE_EXPLICIT_CAST);
	}
	else
	{
		Expr	   *arg;
		ListCell   *lc;

		slot->text = true;
		if (list_length(cols) == 1)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), linitial_int(cols) - 1);

			arg = (Expr *) makeVar(rtindex, att->attnum, att->atttypid, att->atttypmod,
								   att->attcollation, 0);
		}
		else
		{
			RowExpr    *row = makeNode(RowExpr);

			foreach(lc, cols)
			{
				Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), lfirst_int(lc) - 1);

				row->args = lappend(row->args,
									makeVar(rtindex, att->attnum, att->atttypid, att->atttypmod,
											att->attcollation, 0));
			}
			row->row_typeid = RECORDOID;
			row->row_format = COERCE_EXPLICIT_CALL;
			row->colnames = NIL;
			row->location = -1;
			arg = (Expr *) row;
		}
		result = (Expr *) makeFuncExpr(rw->key_text_fn, TEXTOID, list_make1(arg),
									   DEFAULT_COLLATION_OID, InvalidOid,
									   COERCE_EXPLICIT_CALL);
	}
	table_close(rel, AccessShareLock);
	return result;
}

/* Type of a slot's column. */
static Oid
slot_type(EltLineageSlot *s)
{
	if (s->text)
		return s->array ? TEXTARRAYOID : TEXTOID;
	return s->array ? INT8ARRAYOID : INT8OID;
}

static Oid
slot_collation(EltLineageSlot *s)
{
	return s->text ? DEFAULT_COLLATION_OID : InvalidOid;
}

/* Whether every column expr reads is a plain grouping column. */
static bool
grouped_by(Node *expr, List *group_exprs)
{
	List	   *vars;
	ListCell   *lc;

	if (group_exprs == NIL)
		return false;
	vars = pull_var_clause(expr, 0);
	if (vars == NIL)
		return false;
	foreach(lc, vars)
	{
		Var		   *v = lfirst(lc);
		ListCell   *lg;
		bool		found = false;

		foreach(lg, group_exprs)
		{
			Var		   *g = lfirst(lg);

			if (IsA(g, Var) && g->varno == v->varno && g->varattno == v->varattno &&
				g->varlevelsup == v->varlevelsup)
			{
				found = true;
				break;
			}
		}
		if (!found)
			return false;
	}
	return true;
}

/* Wrap a slot expression in the aggregate that collects a group's keys. */
static Expr *
aggregate_slot(Rewrite *rw, EltLineageSlot *s, Expr *arg)
{
	Aggref	   *a = makeNode(Aggref);

	if (s->text)
		a->aggfnoid = s->array ? rw->agg_text_arr : rw->agg_text;
	else
		a->aggfnoid = s->array ? rw->agg_int8_arr : rw->agg_int8;
	s->array = true;
	a->aggtype = slot_type(s);
	a->aggcollid = slot_collation(s);
	a->inputcollid = exprCollation((Node *) arg);
	a->aggtranstype = InvalidOid;
	a->aggargtypes = list_make1_oid(exprType((Node *) arg));
	a->aggdirectargs = NIL;
	a->args = list_make1(makeTargetEntry(arg, 1, NULL, false));
	a->aggorder = NIL;
	a->aggdistinct = NIL;
	a->aggfilter = NULL;
	a->aggstar = false;
	a->aggvariadic = false;
	a->aggkind = AGGKIND_NORMAL;
	a->agglevelsup = 0;
	a->aggsplit = AGGSPLIT_SIMPLE;
	a->aggno = -1;
	a->aggtransno = -1;
	a->location = -1;
	return (Expr *) a;
}

/*
 * Append key columns to q's output, before its resjunk columns (ORDER BY
 * expressions), so that their attribute numbers follow the visible ones.
 * Returns the names given.
 */
static List *
append_slot_columns(Rewrite *rw, Query *q, List *exprs, bool top, List *names_given)
{
	List	   *visible = NIL;
	List	   *junk = NIL;
	List	   *names = NIL;
	ListCell   *lc;
	AttrNumber	resno = 1;

	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (tle->resjunk)
			junk = lappend(junk, tle);
		else
			visible = lappend(visible, tle);
	}
	foreach(lc, visible)
		lfirst_node(TargetEntry, lc)->resno = resno++;
	foreach(lc, exprs)
	{
		char	   *name = names_given ? strVal(list_nth(names_given, list_length(names)))
			: top ? psprintf(ELT_KEY_PREFIX "%d", list_length(names) + 1)
			: psprintf(ELT_SLOT_PREFIX "%d", ++rw->counter);

		visible = lappend(visible, makeTargetEntry((Expr *) lfirst(lc), resno++, name, false));
		names = lappend(names, makeString(name));
	}
	foreach(lc, junk)
	{
		lfirst_node(TargetEntry, lc)->resno = resno++;
		visible = lappend(visible, lfirst(lc));
	}
	q->targetList = visible;
	return names;
}

/* Number of visible output columns of q. */
static int
visible_columns(Query *q)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, q->targetList)
		if (!lfirst_node(TargetEntry, lc)->resjunk)
			n++;
	return n;
}

/* Walk a set operation tree: refuse what is not UNION ALL; collect leaves. */
static void
setop_leaves(Rewrite *rw, Node *node, List **leaves)
{
	if (IsA(node, RangeTblRef))
	{
		*leaves = lappend_int(*leaves, ((RangeTblRef *) node)->rtindex);
		return;
	}
	if (IsA(node, SetOperationStmt))
	{
		SetOperationStmt *op = (SetOperationStmt *) node;

		if (op->op != SETOP_UNION)
			block(rw, "Rewrite it with joins, or create the transform with options => '{\"lineage\": \"table\"}'.",
				  "%s makes each row's sources a matter of other rows",
				  op->op == SETOP_INTERSECT ? "INTERSECT" : "EXCEPT");
		else if (!op->all)
			block(rw, "Use UNION ALL and SELECT DISTINCT over it in an outer query, whose lineage can be recorded.",
				  "UNION without ALL merges rows across branches");
		setop_leaves(rw, op->larg, leaves);
		setop_leaves(rw, op->rarg, leaves);
		return;
	}
	elog(ERROR, "unexpected node type %d in set operation tree", (int) nodeTag(node));
}

/* Add the key columns' types to every node of a set operation tree. */
static void
setop_extend(Node *node, List *slots)
{
	SetOperationStmt *op;
	ListCell   *lc;

	if (!IsA(node, SetOperationStmt))
		return;
	op = (SetOperationStmt *) node;
	foreach(lc, slots)
	{
		EltLineageSlot *s = lfirst(lc);

		op->colTypes = lappend_oid(op->colTypes, slot_type(s));
		op->colTypmods = lappend_int(op->colTypmods, -1);
		op->colCollations = lappend_oid(op->colCollations, slot_collation(s));
	}
	setop_extend(op->larg, slots);
	setop_extend(op->rarg, slots);
}

typedef struct WholeRow
{
	Rewrite    *rw;
	List	   *stack;			/* Query *, innermost first */
} WholeRow;

/*
 * Walker: refuse a whole-row reference to a subquery or WITH query, which
 * would see the key columns the rewrite adds to it.
 */
static bool
wholerow_walker(Node *node, WholeRow *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		if (v->varattno == 0 && v->varlevelsup < (Index) list_length(w->stack))
		{
			Query	   *q = list_nth(w->stack, v->varlevelsup);
			RangeTblEntry *rte = rt_fetch(v->varno, q->rtable);

			if (rte->rtekind == RTE_SUBQUERY || rte->rtekind == RTE_CTE)
				block(w->rw, "Name the columns instead of the whole row, or create the transform with options => '{\"lineage\": \"table\"}'.",
					  "a whole-row reference to subquery or WITH query \"%s\"",
					  rte->eref->aliasname);
		}
		return false;
	}
	if (IsA(node, Query))
	{
		bool		result;

		w->stack = lcons(node, w->stack);
		result = query_tree_walker((Query *) node, wholerow_walker, w, 0);
		w->stack = list_delete_first(w->stack);
		return result;
	}
	return expression_tree_walker(node, wholerow_walker, w);
}

/* Refuse volatile join conditions anywhere in a join tree. */
static void
check_join_quals(Rewrite *rw, Node *node)
{
	if (node == NULL)
		return;
	if (IsA(node, FromExpr))
	{
		FromExpr   *f = (FromExpr *) node;
		ListCell   *lc;
		List	   *conds = make_ands_implicit((Expr *) f->quals);

		foreach(lc, f->fromlist)
			check_join_quals(rw, lfirst(lc));
		foreach(lc, conds)
		{
			Node	   *cond = lfirst(lc);

			if (contain_volatile_functions(cond) &&
				bms_num_members(pull_varnos(NULL, cond)) > 1)
				block(rw, "Compute the volatile value in a subquery first, or create the transform with options => '{\"lineage\": \"table\"}'.",
					  "a volatile function in a join condition");
		}
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		check_join_quals(rw, j->larg);
		check_join_quals(rw, j->rarg);
		if (contain_volatile_functions(j->quals))
			block(rw, "Compute the volatile value in a subquery first, or create the transform with options => '{\"lineage\": \"table\"}'.",
				  "a volatile function in a join condition");
	}
}

/* The RwCte of CTE name, levelsup levels above scope. */
static RwCte *
find_cte(Scope *scope, Index levelsup, const char *name)
{
	ListCell   *lc1,
			   *lc2;

	while (levelsup-- > 0 && scope != NULL)
		scope = scope->parent;
	if (scope == NULL)
		return NULL;
	forboth(lc1, scope->q->cteList, lc2, scope->cte_slots)
	{
		CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc1);

		if (strcmp(cte->ctename, name) == 0)
			return (RwCte *) lfirst(lc2);
	}
	return NULL;
}

/*
 * Rewrite one query level.  Returns the key slots of its output rows and,
 * in *exprs, their expressions in q's scope, which the caller appends to
 * q's target list (a set operation leaf gets others' slots too).
 */
static List *
rewrite_query(Rewrite *rw, Query *q, Scope *parent, List **exprs)
{
	Scope		scope;
	List	   *slots = NIL;
	ListCell   *lc;
	int			rtindex;
	bool		grouped;

	*exprs = NIL;
	scope.q = q;
	scope.parent = parent;
	scope.cte_slots = NIL;

	if (q->hasWindowFuncs)
		block(rw, "Compute the window in a later transform over this one's target, or create the transform with options => '{\"lineage\": \"table\"}'.",
			  "window functions");
	if (q->hasTargetSRFs)
		block(rw, "Call the function in FROM (LATERAL) instead, or create the transform with options => '{\"lineage\": \"table\"}'.",
			  "a set-returning function in the select list");
	/*
	 * DISTINCT ON, LIMIT and OFFSET keep some of the level's rows whole: a
	 * row kept carries its own keys (or its group's), which the columns
	 * added for them do not change.
	 */
	if (q->hasRecursive)
		block(rw, "Create the transform with options => '{\"lineage\": \"table\"}'.", "a recursive WITH query");
	if (q->hasSubLinks)
		block(rw, "Write the subquery as a join or a subquery in FROM, or create the transform with options => '{\"lineage\": \"table\"}'.",
			  "a subquery in an expression (EXISTS, IN, ANY or a scalar subquery)");
	if (q->rowMarks != NIL)
		block(rw, "Remove the locking clause.", "FOR UPDATE or FOR SHARE");
	if (rw->blocker != NULL)
		return NIL;

	/* CTEs first: references to them below need their key columns */
	foreach(lc, q->cteList)
	{
		CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);
		Query	   *cq = castNode(Query, cte->ctequery);
		RwCte	   *rc = palloc0(sizeof(RwCte));
		List	   *cexprs;
		List	   *names;
		ListCell   *lc2;

		rc->first_attno = visible_columns(cq) + 1;
		rc->slots = rewrite_query(rw, cq, &scope, &cexprs);
		if (rw->blocker != NULL)
			return NIL;
		names = append_slot_columns(rw, cq, cexprs, false,
									 cq->setOperations ? rw->setop_names : NIL);
		rc->names = names;
		cte->ctecolnames = list_concat(cte->ctecolnames, list_copy(names));
		foreach(lc2, rc->slots)
		{
			EltLineageSlot *s = lfirst(lc2);

			cte->ctecoltypes = lappend_oid(cte->ctecoltypes, slot_type(s));
			cte->ctecoltypmods = lappend_int(cte->ctecoltypmods, -1);
			cte->ctecolcollations = lappend_oid(cte->ctecolcollations, slot_collation(s));
		}
		scope.cte_slots = lappend(scope.cte_slots, rc);
	}

	if (q->setOperations != NULL)
	{
		List	   *leaves = NIL;
		List	   *leaf_slots = NIL;
		List	   *leaf_exprs = NIL;
		List	   *all = NIL;
		int			offset = 0;
		int			leftmost;
		int			first_attno;
		List	   *leftmost_names = NIL;

		setop_leaves(rw, q->setOperations, &leaves);
		if (rw->blocker != NULL)
			return NIL;
		foreach(lc, leaves)
		{
			RangeTblEntry *rte = rt_fetch(lfirst_int(lc), q->rtable);
			List	   *lexprs;
			List	   *ls = rewrite_query(rw, rte->subquery, &scope, &lexprs);

			if (rw->blocker != NULL)
				return NIL;
			leaf_slots = lappend(leaf_slots, ls);
			leaf_exprs = lappend(leaf_exprs, lexprs);
			all = list_concat(all, ls);
		}
		leftmost = linitial_int(leaves);
		first_attno = visible_columns(rt_fetch(leftmost, q->rtable)->subquery) + 1;

		/* each leaf carries every branch's key columns, NULL but its own */
		{
			ListCell   *l1,
					   *l2,
					   *l3;

			forthree(l1, leaves, l2, leaf_slots, l3, leaf_exprs)
			{
				RangeTblEntry *rte = rt_fetch(lfirst_int(l1), q->rtable);
				List	   *own = (List *) lfirst(l2);
				List	   *ownx = (List *) lfirst(l3);
				List	   *full = NIL;
				int			i = 0;
				ListCell   *ls;
				List	   *names;

				foreach(ls, all)
				{
					EltLineageSlot *s = lfirst(ls);

					if (i >= offset && i < offset + list_length(own))
						full = lappend(full, list_nth(ownx, i - offset));
					else
						full = lappend(full, makeNullConst(slot_type(s), -1, slot_collation(s)));
					i++;
				}
				names = append_slot_columns(rw, rte->subquery, full, false, NIL);
				rte->eref->colnames = list_concat(rte->eref->colnames, names);
				if (l1 == list_head(leaves))
					leftmost_names = names;
				offset += list_length(own);
			}
		}
		setop_extend(q->setOperations, all);
		/* the set operation's output columns are named after its first branch's */
		rw->setop_names = leftmost_names;
		foreach(lc, all)
		{
			EltLineageSlot *s = lfirst(lc);

			*exprs = lappend(*exprs, makeVar(leftmost, first_attno++, slot_type(s), -1,
											 slot_collation(s), 0));
		}
		return all;
	}

	check_join_quals(rw, (Node *) q->jointree);
	if (rw->blocker != NULL)
		return NIL;

	rtindex = 0;
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		rtindex++;
		switch (rte->rtekind)
		{
			case RTE_RELATION:
				{
					EltLineageSlot *s = palloc0(sizeof(EltLineageSlot));
					Expr	   *e = base_key_expr(rw, rte, rtindex, s);

					if (e == NULL)
						return NIL;
					slots = lappend(slots, s);
					*exprs = lappend(*exprs, e);
					break;
				}
			case RTE_SUBQUERY:
				{
					List	   *sexprs;
					List	   *ss;
					List	   *names;
					int			attno = visible_columns(rte->subquery) + 1;
					ListCell   *l2;

					ss = rewrite_query(rw, rte->subquery, &scope, &sexprs);
					if (rw->blocker != NULL)
						return NIL;
					names = append_slot_columns(rw, rte->subquery, sexprs, false,
										 rte->subquery->setOperations ? rw->setop_names : NIL);
					rte->eref->colnames = list_concat(rte->eref->colnames, names);
					foreach(l2, ss)
					{
						EltLineageSlot *s = lfirst(l2);

						slots = lappend(slots, s);
						*exprs = lappend(*exprs, makeVar(rtindex, attno++, slot_type(s), -1,
														 slot_collation(s), 0));
					}
					break;
				}
			case RTE_CTE:
				{
					RwCte	   *rc = find_cte(&scope, rte->ctelevelsup, rte->ctename);
					int			attno;
					ListCell   *l2,
							   *l3;

					if (rc == NULL)
					{
						block(rw, NULL, "WITH query \"%s\" could not be followed", rte->ctename);
						return NIL;
					}
					attno = rc->first_attno;
					forboth(l2, rc->slots, l3, rc->names)
					{
						EltLineageSlot *s = palloc(sizeof(EltLineageSlot));

						*s = *(EltLineageSlot *) lfirst(l2);
						rte->eref->colnames = lappend(rte->eref->colnames, lfirst(l3));
						rte->coltypes = lappend_oid(rte->coltypes, slot_type(s));
						rte->coltypmods = lappend_int(rte->coltypmods, -1);
						rte->colcollations = lappend_oid(rte->colcollations, slot_collation(s));
						slots = lappend(slots, s);
						*exprs = lappend(*exprs, makeVar(rtindex, attno++, slot_type(s), -1,
														 slot_collation(s), 0));
					}
					break;
				}
			case RTE_JOIN:
				if (rte->alias != NULL)
				{
					block(rw, "Remove the alias of the parenthesized join, or create the transform with options => '{\"lineage\": \"table\"}'.",
						  "a join with an alias (\"%s\"), which hides its tables' keys",
						  rte->alias->aliasname);
					return NIL;
				}
				break;
			default:
				/* functions, VALUES, XMLTABLE: no rows of a table */
				break;
		}
	}

	grouped = q->hasAggs || q->groupClause != NIL || q->groupingSets != NIL ||
		q->havingQual != NULL;
	if (q->distinctClause != NIL && !q->hasDistinctOn)
	{
		if (grouped)
		{
			block(rw, "Apply DISTINCT in an outer query over the grouped one.",
				  "DISTINCT over grouped rows");
			return NIL;
		}
		/* DISTINCT is GROUP BY every output column: its groups' keys */
		q->groupClause = q->distinctClause;
		q->distinctClause = NIL;
		grouped = true;
	}
	if (grouped)
	{
		ListCell   *l1,
				   *l2;

		List	   *group_exprs = NIL;

		/* without grouping sets, a grouping column is one value per group */
		if (q->groupingSets == NIL)
			foreach(l1, q->groupClause)
				group_exprs = lappend(group_exprs,
									  EltGroupedExpr(q->rtable, get_sortgroupclause_expr(lfirst(l1),
																						 q->targetList), 0));
		q->hasAggs = true;
		forboth(l1, slots, l2, *exprs)
		{
			EltLineageSlot *s = lfirst(l1);

			/* a source's key that is grouped by is its group's only key */
			if (!s->array && grouped_by(lfirst(l2), group_exprs))
				continue;
			lfirst(l2) = aggregate_slot(rw, s, lfirst(l2));
		}
	}
	return slots;
}

/* ---------------------------------------------------------------------
 * Column lineage
 * ---------------------------------------------------------------------
 */

typedef struct ColCtx
{
	List	   *edges;
	const char *target;			/* the output column, NULL for indirect */
} ColCtx;

enum
{
	K_IDENTITY = 0, K_TRANSFORMATION = 1, K_AGGREGATION = 2
};

static const char *direct_kinds[] = {"identity", "transformation", "aggregation"};

static void col_expr(ColCtx *cc, Scope *scope, Node *expr, int kind, const char *indirect);

/* Add an edge unless it is there. */
static void
add_edge(ColCtx *cc, Oid relid, const char *column, const char *kind)
{
	ListCell   *lc;
	EltColumnEdge *e;

	foreach(lc, cc->edges)
	{
		e = lfirst(lc);
		if (e->relid == relid && strcmp(e->column, column) == 0 &&
			strcmp(e->kind, kind) == 0 &&
			((e->target_column == NULL && cc->target == NULL) ||
			 (e->target_column != NULL && cc->target != NULL &&
			  strcmp(e->target_column, cc->target) == 0)))
			return;
	}
	e = palloc0(sizeof(EltColumnEdge));
	e->target_column = cc->target ? pstrdup(cc->target) : NULL;
	e->relid = relid;
	e->relname = EltRelDisplayName(relid);
	e->column = pstrdup(column);
	e->kind = kind;
	cc->edges = lappend(cc->edges, e);
}

/* Output column attno of q (visible columns only), following set operations. */
static void
col_output(ColCtx *cc, Scope *parent, Query *q, int attno, int kind, const char *indirect)
{
	Scope		scope;

	scope.q = q;
	scope.parent = parent;
	scope.cte_slots = NIL;
	if (q->setOperations != NULL)
	{
		ListCell   *lc;

		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

			if (rte->rtekind == RTE_SUBQUERY && rte->subquery != NULL)
				col_output(cc, &scope, rte->subquery, attno, kind, indirect);
		}
		return;
	}
	if (attno >= 1 && attno <= list_length(q->targetList))
	{
		TargetEntry *tle = list_nth_node(TargetEntry, q->targetList, attno - 1);

		col_expr(cc, &scope, (Node *) tle->expr, kind, indirect);
	}
}

/* Follow a Var to base table columns. */
static void
col_var(ColCtx *cc, Scope *scope, Var *var, int kind, const char *indirect)
{
	Index		up = var->varlevelsup;
	RangeTblEntry *rte;

	while (up-- > 0 && scope != NULL)
		scope = scope->parent;
	if (scope == NULL || var->varno < 1 || var->varno > list_length(scope->q->rtable))
		return;
	rte = rt_fetch(var->varno, scope->q->rtable);
	if (EltGroupedExpr(scope->q->rtable, (Node *) var, var->varlevelsup) != (Node *) var)
		col_expr(cc, scope, EltGroupedExpr(scope->q->rtable, (Node *) var, var->varlevelsup), kind, indirect);
	switch (rte->rtekind)
	{
		case RTE_RELATION:
			if (var->varattno > 0)
			{
				char	   *att = get_attname(rte->relid, var->varattno, true);

				if (att != NULL)
					add_edge(cc, rte->relid, att, indirect ? indirect : direct_kinds[kind]);
			}
			else if (var->varattno == 0)
			{
				/* a whole-row reference: every column */
				Relation	rel = table_open(rte->relid, AccessShareLock);
				int			i;

				for (i = 0; i < RelationGetDescr(rel)->natts; i++)
				{
					Form_pg_attribute a = TupleDescAttr(RelationGetDescr(rel), i);

					if (!a->attisdropped)
						add_edge(cc, rte->relid, NameStr(a->attname),
								 indirect ? indirect : direct_kinds[K_TRANSFORMATION]);
				}
				table_close(rel, AccessShareLock);
			}
			break;
		case RTE_SUBQUERY:
			col_output(cc, scope, rte->subquery, var->varattno, kind, indirect);
			break;
		case RTE_JOIN:
			if (var->varattno > 0 && var->varattno <= list_length(rte->joinaliasvars))
				col_expr(cc, scope, list_nth(rte->joinaliasvars, var->varattno - 1), kind, indirect);
			break;
		case RTE_CTE:
			{
				Scope	   *s = scope;
				Index		cup = rte->ctelevelsup;
				ListCell   *lc;

				while (cup-- > 0 && s != NULL)
					s = s->parent;
				if (s == NULL)
					break;
				foreach(lc, s->q->cteList)
				{
					CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

					if (strcmp(cte->ctename, rte->ctename) == 0)
					{
						/* a recursive query is not followed into itself */
						if (!cte->cterecursive)
							col_output(cc, s, castNode(Query, cte->ctequery), var->varattno, kind, indirect);
						break;
					}
				}
				break;
			}
		default:
			break;
	}
}

typedef struct ColWalk
{
	ColCtx	   *cc;
	Scope	   *scope;
	int			kind;
	const char *indirect;
} ColWalk;

/* Walker: Vars of an expression, noting whether they are aggregated. */
static bool
col_walker(Node *node, ColWalk *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		col_var(w->cc, w->scope, (Var *) node, w->kind, w->indirect);
		return false;
	}
	if (IsA(node, Aggref))
	{
		ColWalk		inner = *w;

		inner.kind = K_AGGREGATION;
		return expression_tree_walker(node, col_walker, &inner);
	}
	if (IsA(node, Query))
		return false;			/* sublinks: not followed */
	return expression_tree_walker(node, col_walker, w);
}

/* Follow an expression: a bare column keeps its kind, anything else transforms. */
static void
col_expr(ColCtx *cc, Scope *scope, Node *expr, int kind, const char *indirect)
{
	ColWalk		w;
	Node	   *bare = expr;

	while (bare != NULL && IsA(bare, RelabelType))
		bare = (Node *) ((RelabelType *) bare)->arg;
	if (bare != NULL && IsA(bare, Var))
	{
		col_var(cc, scope, (Var *) bare, kind, indirect);
		return;
	}
	w.cc = cc;
	w.scope = scope;
	w.kind = kind > K_TRANSFORMATION ? kind : K_TRANSFORMATION;
	w.indirect = indirect;
	(void) col_walker(expr, &w);
}

static void col_indirect_query(ColCtx *cc, Scope *parent, Query *q);

/* Indirect edges of a join tree: join conditions and filters. */
static void
col_indirect_jointree(ColCtx *cc, Scope *scope, Node *node)
{
	ListCell   *lc;

	if (node == NULL)
		return;
	if (IsA(node, FromExpr))
	{
		FromExpr   *f = (FromExpr *) node;

		foreach(lc, f->fromlist)
			col_indirect_jointree(cc, scope, lfirst(lc));
		if (f->quals != NULL)
			col_expr(cc, scope, f->quals, K_TRANSFORMATION, "filter");
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		col_indirect_jointree(cc, scope, j->larg);
		col_indirect_jointree(cc, scope, j->rarg);
		if (j->quals != NULL)
			col_expr(cc, scope, j->quals, K_TRANSFORMATION, "join");
	}
}

/* Indirect edges of a query level and of the queries below it. */
static void
col_indirect_query(ColCtx *cc, Scope *parent, Query *q)
{
	Scope		scope;
	ListCell   *lc;

	scope.q = q;
	scope.parent = parent;
	scope.cte_slots = NIL;
	foreach(lc, q->cteList)
	{
		CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

		if (!cte->cterecursive)
			col_indirect_query(cc, &scope, castNode(Query, cte->ctequery));
	}
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_SUBQUERY && rte->subquery != NULL)
			col_indirect_query(cc, &scope, rte->subquery);
	}
	col_indirect_jointree(cc, &scope, (Node *) q->jointree);
	if (q->havingQual != NULL)
		col_expr(cc, &scope, q->havingQual, K_TRANSFORMATION, "filter");
	foreach(lc, q->groupClause)
	{
		SortGroupClause *sgc = lfirst_node(SortGroupClause, lc);
		TargetEntry *tle = get_sortgroupclause_tle(sgc, q->targetList);

		col_expr(cc, &scope, (Node *) tle->expr, K_TRANSFORMATION, "group_by");
	}
	foreach(lc, q->distinctClause)
	{
		SortGroupClause *sgc = lfirst_node(SortGroupClause, lc);
		TargetEntry *tle = get_sortgroupclause_tle(sgc, q->targetList);

		col_expr(cc, &scope, (Node *) tle->expr, K_TRANSFORMATION, "group_by");
	}
}

/* Column lineage of a whole (unmodified) transform query. */
static List *
column_lineage(Query *q)
{
	ColCtx		cc;
	ListCell   *lc;
	int			attno = 0;

	cc.edges = NIL;
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		attno++;
		if (tle->resjunk)
			continue;
		cc.target = tle->resname;
		col_output(&cc, NULL, q, attno, K_IDENTITY, NULL);
	}
	cc.target = NULL;
	col_indirect_query(&cc, NULL, q);
	return cc.edges;
}

/* Walker: every relation a query reads, at any level. */
static bool
sources_walker(Node *node, List **sources)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;
		ListCell   *lc;

		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

			if (rte->rtekind == RTE_RELATION)
				*sources = list_append_unique_oid(*sources, rte->relid);
		}
		return query_tree_walker(q, sources_walker, sources, 0);
	}
	return expression_tree_walker(node, sources_walker, sources);
}

/* Look up one of the extension's functions by name and argument types. */
static Oid
elt_function(const char *name, int nargs, Oid arg)
{
	Oid			args[1];

	args[0] = arg;
	return LookupFuncName(list_make2(makeString(ELT_SCHEMA_NAME), makeString(pstrdup(name))),
						  nargs, args, false);
}

/*
 * Analyze a transform's SQL: sources, column lineage, non-deterministic
 * functions and whether row lineage is possible; with rewrite, also the
 * SQL of the query with its key columns.
 */
EltLineageInfo *
EltLineageAnalyze(const char *sql, bool rewrite)
{
	EltLineageInfo *info = palloc0(sizeof(EltLineageInfo));
	Rewrite		rw;
	FuncCheck	fc;
	Query	   *copy;
	List	   *exprs;
	ListCell   *lc;

	info->query = EltAnalyzeSelect(sql);
	foreach(lc, info->query->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (!tle->resjunk && tle->resname != NULL &&
			strncmp(tle->resname, "__elt_", 6) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("output column \"%s\" uses the prefix \"__elt_\", which is reserved",
							tle->resname)));
	}

	memset(&rw, 0, sizeof(rw));
	rw.key_text_fn = elt_function("_lineage_key_text", 1, ANYELEMENTOID);
	rw.agg_int8 = elt_function("_lineage_keys", 1, INT8OID);
	rw.agg_int8_arr = elt_function("_lineage_keys", 1, INT8ARRAYOID);
	rw.agg_text = elt_function("_lineage_keys", 1, TEXTOID);
	rw.agg_text_arr = elt_function("_lineage_keys", 1, TEXTARRAYOID);

	(void) sources_walker((Node *) info->query, &info->sources);
	info->columns = column_lineage(info->query);

	fc.rw = &rw;
	fc.nondeterministic = &info->nondeterministic;
	fc.elt_random = elt_function("random", 0, InvalidOid);
	(void) functions_walker((Node *) info->query, &fc);

	{
		WholeRow	w;

		w.rw = &rw;
		w.stack = NIL;
		(void) wholerow_walker((Node *) info->query, &w);
	}

	copy = copyObject(info->query);
	info->slots = rewrite_query(&rw, copy, NULL, &exprs);
	info->row_ok = (rw.blocker == NULL);
	info->blocker = rw.blocker;
	info->blocker_hint = rw.hint;
	if (info->row_ok && rewrite)
	{
		(void) append_slot_columns(&rw, copy, exprs, true, NIL);
		info->rewritten = pg_get_querydef(copy, false);
		/* what runs must parse, and have the columns the run expects */
		if (list_length(EltAnalyzeSelect(info->rewritten)->targetList) <
			list_length(info->query->targetList) + list_length(info->slots))
			elog(ERROR, "rewritten transform query lost columns: %s", info->rewritten);
	}
	return info;
}
