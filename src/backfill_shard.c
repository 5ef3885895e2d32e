/*
 * backfill_shard.c — the backfill engine's chunks per shard on Citus: the
 * shards of a hash-distributed table in hash order, whether a backfill's
 * chunks can be planned per shard, and the planner hooks that keep a
 * chunk's statement (and the queries that plan chunks) inside one shard.
 *
 * A backfill of a hash-distributed table keyed on its distribution column
 * (of a type whose hash function takes it as it is: not date or
 * timestamptz), whose statement is an UPDATE or DELETE of that table, plans its chunks
 * shard by shard: a chunk is a key range within one shard's hash range
 * [shard_min, shard_max] (from pg_dist_shard when it was planned).  While
 * such a chunk's statement is planned (EltBackfillShardScopeBegin/End):
 *   - the statement's target gets a predicate on the shard's hash range,
 *     hash(key) BETWEEN shard_min AND shard_max (the key type's hash
 *     function, which Citus distributes by: hashint8 for bigint): the statement
 *     changes the chunk's rows of that shard and no other row, whatever
 *     Citus does with it (this is what keeps every row in one chunk);
 *   - when one shard still holds that whole hash range (no split since),
 *     Citus is told that hash value as a restriction of the table (the
 *     form Citus's own INSERT ... SELECT uses, a restriction on its
 *     reserved hashed column), so that it prunes to that shard and sends
 *     the statement to that one shard (a router query).  The restriction
 *     is a pseudoconstant clause of the table's scan: PostgreSQL's plan of
 *     the shell never evaluates it, and Citus reads it only to prune.
 * The queries that plan chunk bounds get the same routing, without the
 * predicate: their bounds only size the chunks, which the statement's
 * predicate then keeps in the shard.
 *
 * A chunk's statement then writes one node while its checkpoint is written
 * on the coordinator, and the two must commit together even if the
 * coordinator crashes at commit: in two phases.  Citus commits a statement
 * sent to one shard in one phase (the worker's part at pre-commit, then the
 * coordinator), and a statement sent to several shards in two.  Where
 * Citus's library exports the function that turns two-phase commit on
 * (PostgreSQL 15), EltBackfillShardTwoPhase calls it.  Where it does not
 * (from 16 modules are built with hidden symbols), the statement is routed
 * to its shard and to a partner shard, the next in hash order: the hash
 * range predicate leaves the partner's rows untouched (its part changes no
 * row), and the two tasks make Citus commit in two phases.  A table of one
 * shard has no partner, and commits such chunks in one phase.  The
 * statement then runs as a multi-shard one: a statement Citus can run
 * only as a router query (one shard) fails there, as it does over the
 * whole table.
 *
 * State: one scope at a time, per process, set only around the SPI call
 * that runs the statement or a planning query, and cleared by
 * EltBackfillShardScopeEnd (also on error: the callers' PG_CATCH).  The
 * hooks act only in the outermost planner call made in that scope, on the
 * statement's own query level; every other planning passes through.
 *
 * Layering: a leaf of the backfill engine, called by backfill_chunk.c (and
 * its Init by backfill_worker.c); calls PostgreSQL, the shared layers and
 * citus.c only.  Citus is not linked against: its function that turns on
 * two-phase commit is looked up by name in its library.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/paths.h"
#include "optimizer/planner.h"
#include "optimizer/restrictinfo.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/typcache.h"

#include "backfill_int.h"
#include "citus.h"

/* Citus's reserved "hashed column" attribute number (RESERVED_HASHED_COLUMN_ID) */
#define CITUS_HASHED_COLUMN MaxAttrNumber

/* The scope of one chunk's statement or planning query. */
typedef struct ShardScope
{
	bool		active;
	Oid			relid;
	AttrNumber	attnum;
	Oid			keytype;
	int32		keytypmod;
	Oid			keycoll;
	int32		hash_min;
	int32		hash_max;
	bool		inject;			/* add the hash range predicate to the statement */
	bool		route;			/* tell Citus the shard */
	bool		partner;		/* and a partner shard, starting at partner_min */
	int32		partner_min;
	bool		injected;		/* the predicate was added */
	bool		routed;			/* the restriction was added */
	int			depth;			/* planner calls under way in the scope */
} ShardScope;

static ShardScope scope;
static planner_hook_type prev_planner_hook = NULL;
static set_rel_pathlist_hook_type prev_set_rel_pathlist_hook = NULL;

/* An int4 comparison operator of pg_catalog by name. */
static Oid
int4_operator(const char *name)
{
	return OpernameGetOprid(list_make2(makeString("pg_catalog"), makeString(pstrdup(name))),
							INT4OID, INT4OID);
}

/*
 * The hash function Citus distributes a key type by (the type's default
 * hash support function, as Citus's own hash), when it can be called on the
 * key as it is, on the coordinator and in the statement a worker parses:
 * it takes the key's type (text's for varchar).  InvalidOid otherwise.
 * Citus's worker_hash computes the same, but is volatile, which Citus
 * refuses in the WHERE of an UPDATE or DELETE.
 */
static Oid
key_hash_fn(Oid keytype)
{
	TypeCacheEntry *tce = lookup_type_cache(keytype, TYPECACHE_HASH_PROC);
	Oid			fn = tce->hash_proc;
	Oid		   *argtypes;
	int			nargs;

	if (!OidIsValid(fn) || func_volatile(fn) != PROVOLATILE_IMMUTABLE ||
		get_func_signature(fn, &argtypes, &nargs) != INT4OID || nargs != 1)
		return InvalidOid;
	if (argtypes[0] != keytype && !(keytype == VARCHAROID && argtypes[0] == TEXTOID))
		return InvalidOid;
	return fn;
}

/* int4 operator expression a <op> b. */
static Expr *
int4_op(const char *name, Expr *a, Expr *b)
{
	Oid			opno = int4_operator(name);
	OpExpr	   *op;

	if (!OidIsValid(opno))
		elog(ERROR, "operator pg_catalog.%s(integer, integer) not found", name);
	op = (OpExpr *) make_opclause(opno, BOOLOID, false, a, b, InvalidOid, InvalidOid);
	set_opfuncid(op);
	return (Expr *) op;
}

static Const *
int4_const(int32 v)
{
	return makeConst(INT4OID, -1, InvalidOid, sizeof(int32), Int32GetDatum(v), false, true);
}

/*
 * The statement's query: add hash(key) BETWEEN min AND max to the
 * WHERE of an UPDATE or DELETE of the scope's relation.
 */
static Query *
inject_predicate(Query *parse)
{
	RangeTblEntry *rte;
	Oid			hashfn;
	Var		   *var;
	Expr	   *hash;
	Expr	   *range;

	if ((parse->commandType != CMD_UPDATE && parse->commandType != CMD_DELETE) ||
		parse->resultRelation <= 0 || parse->jointree == NULL)
		return parse;
	rte = rt_fetch(parse->resultRelation, parse->rtable);
	if (rte->rtekind != RTE_RELATION || rte->relid != scope.relid)
		return parse;
	hashfn = key_hash_fn(scope.keytype);
	if (!OidIsValid(hashfn))
		return parse;
	parse = copyObject(parse);
	var = makeVar(parse->resultRelation, scope.attnum, scope.keytype, scope.keytypmod,
				  scope.keycoll, 0);
	if (scope.keytype == VARCHAROID)
		var = (Var *) makeRelabelType((Expr *) var, TEXTOID, -1, scope.keycoll,
									  COERCE_IMPLICIT_CAST);
	hash = (Expr *) makeFuncExpr(hashfn, INT4OID, list_make1(var), InvalidOid,
								 scope.keycoll, COERCE_EXPLICIT_CALL);
	range = make_andclause(list_make2(int4_op(">=", hash, (Expr *) int4_const(scope.hash_min)),
									  int4_op("<=", copyObject(hash),
											  (Expr *) int4_const(scope.hash_max))));
	parse->jointree->quals = make_and_qual(parse->jointree->quals, (Node *) range);
	scope.injected = true;
	return parse;
}

/* The planner this hook replaced. */
static PlannedStmt *
next_planner(Query *parse, const char *query_string, int cursorOptions,
			 ParamListInfo boundParams)
{
	if (prev_planner_hook)
		return prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/* The next planner, one level deeper in the scope. */
static PlannedStmt *
scoped_planner(Query *parse, const char *query_string, int cursorOptions,
			   ParamListInfo boundParams)
{
	PlannedStmt *result;

	scope.depth++;
	PG_TRY();
	{
		result = next_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		scope.depth--;
	}
	PG_END_TRY();
	return result;
}

/* planner_hook: in a scope, the outermost query is the statement's. */
static PlannedStmt *
shard_planner(Query *parse, const char *query_string, int cursorOptions,
			  ParamListInfo boundParams)
{
	if (!scope.active)
		return next_planner(parse, query_string, cursorOptions, boundParams);
	return scoped_planner(scope.depth == 0 && scope.inject ? inject_predicate(parse) : parse,
						  query_string, cursorOptions, boundParams);
}

/*
 * set_rel_pathlist_hook: the scope's relation in the outermost query (the
 * statement's target, or the planning query's table) gets Citus's hashed
 * column restriction, so that Citus prunes it to the shard (file header).
 */
static void
shard_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	if (prev_set_rel_pathlist_hook)
		prev_set_rel_pathlist_hook(root, rel, rti, rte);
	if (scope.active && scope.route && !scope.routed && scope.depth == 1 &&
		root->query_level == 1 && rel->reloptkind == RELOPT_BASEREL &&
		rte->rtekind == RTE_RELATION && rte->relid == scope.relid &&
		(root->parse->resultRelation == 0 || root->parse->resultRelation == (int) rti))
	{
		Var		   *hashed = makeVar(rti, CITUS_HASHED_COLUMN, INT4OID, -1, InvalidOid, 0);
		Expr	   *clause;
		RestrictInfo *ri;

		/* Citus reads hashed >= v as "the shard of hash value v" */
		clause = int4_op(">=", (Expr *) hashed, (Expr *) int4_const(scope.hash_min));
		if (scope.partner)
			clause = make_orclause(list_make2(clause,
											  int4_op(">=", (Expr *) copyObject(hashed),
													  (Expr *) int4_const(scope.partner_min))));
		ri = make_simple_restrictinfo(root, clause);
		/* never a qual of PostgreSQL's scan of the shell: Citus alone reads it */
		ri->pseudoconstant = true;
		rel->baserestrictinfo = lappend(rel->baserestrictinfo, ri);
		scope.routed = true;
	}
}

/* Install the hooks (from _PG_init, through EltBackfillInit). */
void
EltBackfillShardInit(void)
{
	prev_planner_hook = planner_hook;
	planner_hook = shard_planner;
	prev_set_rel_pathlist_hook = set_rel_pathlist_hook;
	set_rel_pathlist_hook = shard_set_rel_pathlist;
}

/*
 * Whether one shard of relid holds the whole hash range [min, max] now
 * (none was split or merged since the chunk was planned).
 */
static bool
one_shard_holds(Oid relid, int32 min, int32 max)
{
	Oid			types[3] = {OIDOID, INT4OID, INT4OID};
	Datum		values[3] = {ObjectIdGetDatum(relid), Int32GetDatum(min), Int32GetDatum(max)};
	bool		found;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_dist_shard"
							  " WHERE logicalrelid = $1::pg_catalog.regclass"
							  "   AND shardminvalue::pg_catalog.int4 <= $2"
							  "   AND shardmaxvalue::pg_catalog.int4 >= $3",
							  3, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_dist_shard");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * Citus's Use2PCForCoordinatedTransaction, where its library exports it
 * (PostgreSQL 15); NULL elsewhere.
 */
static void (*
			 citus_use2pc(void)) (void)
{
	static void (*use2pc) (void) = NULL;
	static bool looked = false;

	if (!looked)
	{
		looked = true;
		use2pc = (void (*) (void)) load_external_function("$libdir/citus",
														  "Use2PCForCoordinatedTransaction",
														  false, NULL);
	}
	return use2pc;
}

/*
 * Enter the scope of a chunk in shard s of bf's relation: inject adds the
 * hash range predicate to the statement about to be planned (the chunk's
 * statement; planning queries need none).  Routing is asked for when one
 * shard still holds the range; for the statement, to a partner shard too
 * when Citus cannot be asked for two phases otherwise (file header).
 */
void
EltBackfillShardScopeBegin(Backfill *bf, const EltBackfillShard *s, bool inject)
{
	AttrNumber	attnum = get_attnum(bf->relid, bf->key);
	bool		route = one_shard_holds(bf->relid, s->hash_min, s->hash_max);
	EltBackfillShard partner;
	bool		has_partner = false;

	if (inject && route && citus_use2pc() == NULL)
		has_partner = (EltBackfillShardNext(bf->relid, false, s->hash_min, &partner) ||
					   EltBackfillShardNext(bf->relid, true, 0, &partner)) &&
			partner.hash_min != s->hash_min;

	memset(&scope, 0, sizeof(scope));
	scope.relid = bf->relid;
	scope.attnum = attnum;
	get_atttypetypmodcoll(bf->relid, attnum, &scope.keytype, &scope.keytypmod, &scope.keycoll);
	scope.hash_min = s->hash_min;
	scope.hash_max = s->hash_max;
	scope.inject = inject;
	scope.route = route;
	scope.partner = has_partner;
	scope.partner_min = has_partner ? partner.hash_min : 0;
	scope.active = true;

	/*
	 * A statement on two shards takes Citus's executor lock of each in
	 * SHARE UPDATE EXCLUSIVE mode, which conflicts with itself: two
	 * workers' chunks sharing a shard as their own and the other's
	 * partner, or a user's multi-shard UPDATE, would wait for each other.
	 * That lock guards against concurrent multi-shard statements locking
	 * rows of several shards in different orders; the partner's part
	 * locks no row (the hash range predicate leaves all its rows out), so
	 * the chunk asks for ROW EXCLUSIVE, as a statement on one shard does.
	 * Saved in the caller's GUC nest level (the chunk's, as its owner).
	 */
	if (has_partner)
		(void) set_config_option("citus.enable_deadlock_prevention", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

/* Leave the scope; whether the statement got its predicate. */
bool
EltBackfillShardScopeEnd(void)
{
	bool		injected = scope.injected;

	memset(&scope, 0, sizeof(scope));
	return injected;
}

/*
 * The shard of relid whose hash range starts first after hash value
 * "after" (the first shard when first), from pg_dist_shard.  False when
 * there is none.
 */
bool
EltBackfillShardNext(Oid relid, bool first, int32 after, EltBackfillShard *s)
{
	Oid			types[3] = {OIDOID, BOOLOID, INT4OID};
	Datum		values[3] = {ObjectIdGetDatum(relid), BoolGetDatum(first), Int32GetDatum(after)};
	bool		found;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT shardid, shardminvalue::pg_catalog.int4 AS lo,"
							  " shardmaxvalue::pg_catalog.int4 AS hi"
							  " FROM pg_catalog.pg_dist_shard"
							  " WHERE logicalrelid = $1::pg_catalog.regclass"
							  "   AND ($2 OR shardminvalue::pg_catalog.int4 > $3)"
							  " ORDER BY shardminvalue::pg_catalog.int4 LIMIT 1",
							  3, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_dist_shard");
	found = SPI_processed > 0;
	if (found)
	{
		s->shard_id = spi_int(0, "shardid");
		s->hash_min = (int32) spi_int(0, "lo");
		s->hash_max = (int32) spi_int(0, "hi");
	}
	SPI_finish();
	return found;
}

/*
 * Whether bf's chunks are planned per shard: its relation is a
 * hash-distributed Citus table keyed on its distribution column, whose
 * hash function can be called on the key (key_hash_fn), and its statement (prepared as the owner, with its
 * search_path) is an UPDATE or DELETE of that relation.
 */
bool
EltBackfillPerShard(Backfill *bf)
{
	EltCitusTable citus;
	EltAsRole	ar;
	SPIPlanPtr	plan;
	List	   *sources;
	bool		result = false;
	Oid			types[2] = {bf->keytype, bf->keytype};

	if (!OidIsValid(bf->owner_oid) ||
		!EltCitusTableInfo(bf->relid, &citus) || citus.method != 'h' ||
		citus.column == NULL || strcmp(citus.column, bf->key) != 0 ||
		!OidIsValid(key_hash_fn(bf->keytype)))
		return false;
	EltAsRoleBegin(&ar, bf->owner_oid, EltSearchPathTempLast(bf->search_path),
				   GetUserId() != bf->owner_oid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(bf->sql, 2, types);
	if (plan != NULL)
	{
		sources = SPI_plan_get_plan_sources(plan);
		if (list_length(sources) == 1)
		{
			CachedPlanSource *src = (CachedPlanSource *) linitial(sources);

			if (list_length(src->query_list) == 1)
			{
				Query	   *q = linitial_node(Query, src->query_list);

				if ((q->commandType == CMD_UPDATE || q->commandType == CMD_DELETE) &&
					q->resultRelation > 0 &&
					rt_fetch(q->resultRelation, q->rtable)->relid == bf->relid)
					result = true;
			}
		}
		SPI_freeplan(plan);
	}
	SPI_finish();
	EltAsRoleEnd(&ar);
	return result;
}

/*
 * Have Citus commit this transaction in two phases when it wrote another
 * node: the chunk's rows on a worker and its checkpoint here commit
 * together (file header).  Nothing where Citus's library hides the
 * function (PostgreSQL 16 and later): there the statement went to a
 * partner shard too.
 */
void
EltBackfillShardTwoPhase(void)
{
	void		(*use2pc) (void) = citus_use2pc();

	if (use2pc)
		use2pc();
}
