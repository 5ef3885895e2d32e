/*
 * lineage_functions.c — which functions row lineage can see through.
 *
 * Row lineage knows the rows a transform reads from its query tree.  A
 * function called in the query may read more than the tree shows: a
 * function written in SQL or a procedural language may select from tables,
 * some built-ins run a query given as text (query_to_xml, ts_stat), read
 * another server (dblink), or read server files and large objects
 * (pg_read_file, lo_get).  EltFunctionHiddenRead says which of these a
 * function may do; lineage.c refuses row lineage for a transform that
 * calls one, naming it.
 *
 * Built-in functions written in SQL (textanycat behind `'o' || id`,
 * quote_literal(anyelement), col_description) are judged by their body:
 * one that reads no table, and calls only functions that read none, hides
 * nothing whatever its volatility; col_description selects from
 * pg_description and is refused.  A body is read from its stored query
 * tree (pg_proc.prosqlbody) or, for the old-style ones, parsed from its
 * text: a FROM item there is a table read, and every function or operator
 * it may call (all candidates of its name) is judged the same way.  Casts
 * in an old-style body are not resolved: the built-in ones go through the
 * types' output functions, which are written in C.
 *
 * Other functions in C or internal, and IMMUTABLE ones in any language,
 * are trusted to read no table (an IMMUTABLE function must not); any other
 * function outside pg_catalog may.
 *
 * Layering: a leaf of the lineage engine, called by lineage.c; calls
 * nothing of the extension.  No SPI; catalog lookups only.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_language.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "lineage.h"

/* How deep bodies calling bodies are followed before giving up. */
#define MAX_BODY_DEPTH 8

typedef struct BodyCheck
{
	List	   *seen;			/* functions being or already judged */
	int			depth;
	EltHiddenRead result;
} BodyCheck;

static EltHiddenRead judge_function(Oid funcid, BodyCheck *bc);

/* Built-ins that run a query given as text. */
static bool
runs_query(const char *name)
{
	return strncmp(name, "query_to_xml", 12) == 0 ||
		strncmp(name, "cursor_to_xml", 13) == 0 ||
		strncmp(name, "table_to_xml", 12) == 0 ||
		strncmp(name, "schema_to_xml", 13) == 0 ||
		strncmp(name, "database_to_xml", 15) == 0 ||
		strcmp(name, "ts_stat") == 0;
}

/* Built-ins that read server files or large objects. */
static bool
reads_server_data(const char *name)
{
	return strcmp(name, "pg_read_file") == 0 ||
		strcmp(name, "pg_read_binary_file") == 0 ||
		strcmp(name, "lo_get") == 0 ||
		strcmp(name, "loread") == 0;
}

/* Keep the worst of two answers (anything hidden beats nothing). */
static void
note(BodyCheck *bc, EltHiddenRead r)
{
	if (bc->result == ELT_READS_NOTHING_HIDDEN)
		bc->result = r;
}

/* Callback for check_functions_in_node: judge a function a body calls. */
static bool
body_function(Oid funcid, void *context)
{
	BodyCheck  *bc = (BodyCheck *) context;

	note(bc, judge_function(funcid, bc));
	return bc->result != ELT_READS_NOTHING_HIDDEN;
}

/* Walker over a stored body (prosqlbody): table reads and calls. */
static bool
stored_body_walker(Node *node, BodyCheck *bc)
{
	if (node == NULL || bc->result != ELT_READS_NOTHING_HIDDEN)
		return bc->result != ELT_READS_NOTHING_HIDDEN;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, stored_body_walker, bc,
								 QTW_EXAMINE_RTES_BEFORE);
	if (IsA(node, RangeTblEntry))
	{
		if (((RangeTblEntry *) node)->rtekind == RTE_RELATION)
			note(bc, ELT_MAY_READ_TABLES);
		return bc->result != ELT_READS_NOTHING_HIDDEN;
	}
	if (check_functions_in_node(node, body_function, bc))
		return true;
	return expression_tree_walker(node, stored_body_walker, bc);
}

/* Judge every function in a list of candidate oids (FuncCandidateList). */
static void
judge_candidates(FuncCandidateList cands, BodyCheck *bc)
{
	for (; cands != NULL && bc->result == ELT_READS_NOTHING_HIDDEN; cands = cands->next)
		note(bc, judge_function(cands->oid, bc));
}

/* Walker over the raw parse tree of an old-style body (prosrc). */
static bool
raw_body_walker(Node *node, BodyCheck *bc)
{
	if (node == NULL || bc->result != ELT_READS_NOTHING_HIDDEN)
		return bc->result != ELT_READS_NOTHING_HIDDEN;
	if (IsA(node, RangeVar))
	{
		note(bc, ELT_MAY_READ_TABLES);
		return true;
	}
	if (IsA(node, FuncCall))
		judge_candidates(FuncnameGetCandidates(((FuncCall *) node)->funcname, -1, NIL,
											   false, false, false, true), bc);
	else if (IsA(node, A_Expr) && ((A_Expr *) node)->kind == AEXPR_OP)
	{
		FuncCandidateList ops = OpernameGetCandidates(((A_Expr *) node)->name, '\0', true);

		for (; ops != NULL && bc->result == ELT_READS_NOTHING_HIDDEN; ops = ops->next)
			note(bc, judge_function(get_opcode(ops->oid), bc));
	}
	return raw_expression_tree_walker(node, raw_body_walker, bc);
}

/* Judge the body of a built-in function written in SQL. */
static EltHiddenRead
judge_sql_body(HeapTuple tup, BodyCheck *bc)
{
	bool		isnull;
	Datum		body;

	if (bc->depth >= MAX_BODY_DEPTH)
		return ELT_MAY_READ_TABLES;
	bc->depth++;
	body = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosqlbody, &isnull);
	if (!isnull)
		(void) stored_body_walker(stringToNode(TextDatumGetCString(body)), bc);
	else
	{
		ListCell   *lc;

		body = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);
		if (isnull)
			note(bc, ELT_MAY_READ_TABLES);
		else
			foreach(lc, raw_parser(TextDatumGetCString(body), RAW_PARSE_DEFAULT))
				(void) raw_body_walker(lfirst_node(RawStmt, lc)->stmt, bc);
	}
	bc->depth--;
	return bc->result;
}

static EltHiddenRead
judge_function(Oid funcid, BodyCheck *bc)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	EltHiddenRead r = ELT_READS_NOTHING_HIDDEN;
	bool		builtin;

	if (!OidIsValid(funcid) || list_member_oid(bc->seen, funcid))
		return ELT_READS_NOTHING_HIDDEN;	/* judged, or being judged */
	bc->seen = lappend_oid(bc->seen, funcid);
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		return ELT_READS_NOTHING_HIDDEN;
	proc = (Form_pg_proc) GETSTRUCT(tup);
	builtin = proc->pronamespace == PG_CATALOG_NAMESPACE;

	if (builtin && runs_query(NameStr(proc->proname)))
		r = ELT_RUNS_QUERY;
	else if (strncmp(NameStr(proc->proname), "dblink", 6) == 0)
		r = ELT_READS_REMOTE;
	else if (builtin && reads_server_data(NameStr(proc->proname)))
		r = ELT_READS_SERVER_DATA;
	else if (proc->prolang == INTERNALlanguageId || proc->prolang == ClanguageId ||
			 proc->provolatile == PROVOLATILE_IMMUTABLE)
		r = ELT_READS_NOTHING_HIDDEN;
	else if (builtin && proc->prolang == SQLlanguageId)
	{
		BodyCheck	inner = {bc->seen, bc->depth, ELT_READS_NOTHING_HIDDEN};

		r = judge_sql_body(tup, &inner);
		bc->seen = inner.seen;
	}
	else
		r = ELT_MAY_READ_TABLES;
	ReleaseSysCache(tup);
	return r;
}

/* What a function may read that row lineage cannot see (see above). */
EltHiddenRead
EltFunctionHiddenRead(Oid funcid)
{
	BodyCheck	bc = {NIL, 0, ELT_READS_NOTHING_HIDDEN};
	EltHiddenRead r = judge_function(funcid, &bc);

	list_free(bc.seen);
	return r;
}

/* The end of the error message for a function that hides a read. */
const char *
EltHiddenReadWhat(EltHiddenRead r)
{
	switch (r)
	{
		case ELT_RUNS_QUERY:
			return "runs a query that row lineage cannot see";
		case ELT_READS_REMOTE:
			return "reads rows that row lineage cannot see";
		case ELT_READS_SERVER_DATA:
			return "reads server files or large objects that row lineage cannot see";
		case ELT_MAY_READ_TABLES:
			return "may read tables that row lineage cannot see";
		default:
			return "hides nothing";
	}
}

/* What to do about it. */
const char *
EltHiddenReadHint(EltHiddenRead r)
{
	switch (r)
	{
		case ELT_RUNS_QUERY:
			return "Read the tables in the query itself, or create the transform with options => '{\"lineage\": \"table\"}'.";
		case ELT_READS_REMOTE:
			return "Load the remote rows into a table first, or create the transform with options => '{\"lineage\": \"table\"}'.";
		case ELT_READS_SERVER_DATA:
			return "Load the file or large object into a table first, or create the transform with options => '{\"lineage\": \"table\"}'.";
		default:
			return "Declare the function IMMUTABLE if it reads no tables, or create the transform with options => '{\"lineage\": \"table\"}'.";
	}
}
