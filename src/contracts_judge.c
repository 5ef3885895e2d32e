/*
 * contracts_judge.c — steps 2 and 3 of the contracts engine for a live
 * statement: judge its candidates against governance, then block, warn or
 * approve it as a whole.
 *
 * Owns: the check at ddl_command_start (EltContractsCheck, also called from
 * the ProcessUtility hook for TRUNCATE, which fires no event trigger) and
 * at sql_drop (EltContractsCheckCascade); EltJudge, also used by
 * elt.check_ddl(); the GUC elt.large_table_rows.
 *
 *   judge    in the catalog context keeps what concerns governed objects,
 *            with its policy (dropping a partition of a governed parent is
 *            judged only under the partition's own target, else recorded
 *            as safe); adds the dependents of breaking findings
 *            (pg_depend views, materialized views and functions, per column
 *            where PostgreSQL records it, and registered consumers);
 *            keeps scans, builds and rewrites (CAND_NEEDS_SIZE) only on a
 *            relation over elt.large_table_rows; EG117 for columns a
 *            registered consumer uses; EG208 (advice: a lock of SHARE or
 *            stronger on a live governed relation, whatever its size) only
 *            when no lock_timeout is set; drops breaking findings on a
 *            table the session's named migration created that nothing
 *            reads (at sql_drop: no consumer, no view dropped with it);
 *   decide   advice never blocks nor warns: it is recorded ('allowed', or
 *            'recorded' under off) and listed in the detail of a statement
 *            blocked or warned for other findings;
 *            outside a migration any breaking or lock-hazard finding under
 *            policy enforce blocks the statement (SQLSTATE 42ZEG), policy
 *            warn raises one WARNING, policy off records only; inside a
 *            migration everything is approved.  What goes ahead is written
 *            by contracts_record.c in the statement's own transaction, so a
 *            statement that fails leaves nothing; a blocked one is written
 *            to the server log.
 *
 * Calls: contracts_classify.c, contracts_maintain.c (EltEstimatedRows),
 * contracts_script_state.c (EG210 and the
 * columns the transaction added, before judging), contracts_record.c,
 * contracts_rules.c,
 * contracts_swap.c (dbt's swap: a rename out deferred to the rename in);
 * migrations.c (EltCurrentMigration, EltMigrationJoin, EltContractsReady); SQL on
 * elt.governed_targets for policies; util.c; the shared layers govern.c
 * (EltAnyTarget) and settings.c (EltCurrentStatement, elt_enabled).
 * Called by the capture triggers (versions_capture.c) and
 * contracts_script.c.
 *
 * Locking: judging takes no lock, except to read the page count of a
 * governed relation for a hazard that depends on size (scans, builds,
 * rewrites: CAND_NEEDS_SIZE; reltuples is scaled by it as the planner
 * does): it then takes, if it is free at once, the lock the statement is
 * about to take anyway (the candidate's lockmode: SHARE, SHARE ROW
 * EXCLUSIVE, ACCESS EXCLUSIVE), so that it never upgrades a lock it holds;
 * a dry run takes ACCESS SHARE, if free at once, and lets go at once.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/heap.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_database.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_index.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "mb/pg_wchar.h"
#include "optimizer/plancat.h"
#include "parser/parse_coerce.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "audit.h"
#include "backfill.h"
#include "citus.h"
#include "contracts.h"
#include "contracts_int.h"
#include "deploy.h"
#include "govern.h"
#include "contracts_swap.h"
#include "settings.h"
#include "util.h"

int			elt_large_table_rows = 100000;

/* ------------------------------------------------------------------------
 * Step 2: judge the candidates against governance and the catalog
 * ------------------------------------------------------------------------
 */

/*
 * Lookups cached for one elt.check_ddl() call.  A dry run changes nothing in
 * the catalog, so within one call a lookup by oid (a relation's policy, its
 * dependents, its consumers, a proof of NOT NULL, a type's or a schema's
 * policy) answers the same every time: the script's own renames and drops
 * are resolved to oids before the judge runs (EltFindRelation), and the
 * lookups never read the script's view.  The cache lives in a memory
 * context under the call's: EltJudgeCacheBegin makes it, EltJudgeCacheEnd
 * (or the end of the call's context, on error) deletes it, and a reset
 * callback forgets it, so it never outlives the call.  Live statements
 * never use it (their catalog changes between statements).
 */
typedef struct JudgeCacheEntry
{
	char		key[128];		/* kind, oid, number, name */
	const char *text;			/* a policy (NULL: none) */
	List	   *list;			/* char *: dependents */
	bool		flag;			/* a proof */
} JudgeCacheEntry;

static MemoryContext script_cache_cxt = NULL;
static HTAB *script_cache = NULL;
static HTAB *judge_lookups = NULL;	/* the cache, while EltJudge judges a script */

/* The cache's context is gone: forget it. */
static void
script_cache_forget(void *arg)
{
	script_cache_cxt = NULL;
	script_cache = NULL;
	judge_lookups = NULL;
}

/* Start caching lookups for one elt.check_ddl() call (see above). */
void
EltJudgeCacheBegin(void)
{
	HASHCTL		ctl;
	MemoryContextCallback *cb;

	EltJudgeCacheEnd();
	script_cache_cxt = AllocSetContextCreate(CurrentMemoryContext,
											 "elt check_ddl lookups",
											 ALLOCSET_DEFAULT_SIZES);
	cb = MemoryContextAlloc(script_cache_cxt, sizeof(MemoryContextCallback));
	cb->func = script_cache_forget;
	cb->arg = NULL;
	MemoryContextRegisterResetCallback(script_cache_cxt, cb);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(((JudgeCacheEntry *) NULL)->key);
	ctl.entrysize = sizeof(JudgeCacheEntry);
	ctl.hcxt = script_cache_cxt;
	script_cache = hash_create("elt check_ddl lookups", 256, &ctl,
							   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/* Stop caching: the end of an elt.check_ddl() call. */
void
EltJudgeCacheEnd(void)
{
	if (script_cache_cxt != NULL)
		MemoryContextDelete(script_cache_cxt);	/* the callback forgets it */
}

/*
 * The cached answer of a lookup, if any (*hit); else a new entry to fill in,
 * or NULL when nothing is cached (a live statement).
 */
static JudgeCacheEntry *
cache_entry(char kind, Oid oid, int num, const char *name, bool *hit)
{
	char		key[128];

	*hit = false;
	if (judge_lookups == NULL)
		return NULL;
	snprintf(key, sizeof(key), "%c:%u:%d:%s", kind, oid, num, name ? name : "");
	return (JudgeCacheEntry *) hash_search(judge_lookups, key, HASH_ENTER, hit);
}

/* A copy of a string in the cache's context (NULL stays NULL). */
static const char *
cache_strdup(const char *s)
{
	return s ? MemoryContextStrdup(script_cache_cxt, s) : NULL;
}

/*
 * Append cached dependents to *out, skipping those already there; into an
 * empty list as they are (15,000 columns of a type, compared pairwise: 1 s).
 */
static void
cache_append(List *cached, List **out)
{
	ListCell   *lc;
	bool		was_empty = (*out == NIL);

	foreach(lc, cached)
	{
		if (was_empty || !EltStringMember(*out, (char *) lfirst(lc)))
			*out = lappend(*out, pstrdup((char *) lfirst(lc)));
	}
}

/* Remember the dependents a lookup found. */
static void
cache_keep(JudgeCacheEntry *e, List *found)
{
	MemoryContext old;
	ListCell   *lc;

	if (e == NULL)
		return;
	old = MemoryContextSwitchTo(script_cache_cxt);
	e->list = NIL;
	foreach(lc, found)
		e->list = lappend(e->list, pstrdup((char *) lfirst(lc)));
	MemoryContextSwitchTo(old);
}

/* Order of strictness of a policy: enforce > warn > off > none. */
static int
policy_rank(const char *policy)
{
	if (policy == NULL)
		return 0;
	if (strcmp(policy, "off") == 0)
		return 1;
	if (strcmp(policy, "warn") == 0)
		return 2;
	return 3;
}

/*
 * SQL condition: the relation (an expression of type regclass) was created
 * by this very transaction — its history starts with a 'created' version
 * carrying our xid.
 */
#define CREATED_NOW_SQL(rel) \
	"EXISTS (SELECT 1 FROM elt.tracked_tables t" \
	"        JOIN elt.schema_versions v ON v.table_id = t.table_id AND v.version = 1" \
	"        WHERE t.relid = " rel " AND v.event = 'created'" \
	"          AND v.xid = pg_catalog.pg_current_xact_id_if_assigned())"

/*
 * A rename of a relation out of the way of one this transaction built to
 * replace it (dbt's swap, see contracts_swap.c): deferred to the rename in,
 * true, when nothing depends on the relation; else the finding stays, and
 * says that the dependents would be lost with the old relation.
 */
static bool swap_rename_out(EltClassified *c, EltCandidate *cand);

/*
 * SQL condition: the relation (an expression of type oid) was a partition of
 * a governed parent until this very transaction detached it: the parent's
 * version recorded by this transaction no longer lists it, and its last
 * version from before this transaction did.  Like a table created now, it
 * has no readers as a table of its own yet (pg_partman's retention_schema
 * detaches a partition, then moves it).  Not so for a table this
 * transaction attached and detached again (its readers are those of a
 * table), nor for one governed on its own (a table target) or read by
 * registered consumers.  Versions of this transaction carry its start
 * time: the recorded_at index finds them.
 */
#define DETACHED_NOW_SQL(rel) \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_class dc" \
	"        JOIN pg_catalog.pg_namespace dn ON dn.oid = dc.relnamespace," \
	"        LATERAL pg_catalog.jsonb_build_array(pg_catalog.format('%I.%I', dn.nspname, dc.relname)) dp(name)," \
	"        elt.schema_versions v" \
	"        WHERE dc.oid = " rel " AND NOT dc.relispartition" \
	"          AND v.recorded_at = pg_catalog.now()" \
	"          AND v.xid = pg_catalog.pg_current_xact_id_if_assigned()" \
	"          AND NOT v.shape->'partitions' @> dp.name" \
	"          AND (SELECT p.shape->'partitions' @> dp.name FROM elt.schema_versions p" \
	"               WHERE p.table_id = v.table_id AND p.version < v.version" \
	"                 AND p.xid IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned()" \
	"               ORDER BY p.version DESC LIMIT 1)" \
	"          AND NOT EXISTS (SELECT 1 FROM elt.governed_targets g" \
	"                          WHERE g.kind = 'table' AND g.rel = dc.oid::pg_catalog.regclass)" \
	"          AND NOT EXISTS (SELECT 1 FROM elt.consumer_registrations r" \
	"                          WHERE r.rel = dc.oid::pg_catalog.regclass))"

/*
 * Policy in force for a relation: the strictest of its own (its table
 * target's, else its schema's), its ancestors' (a partition or inheritance
 * child carries its parent's rows) and, when the statement recurses, its
 * descendants'.  NULL if none is governed.  *created_now tells whether the
 * relation was created by this very transaction (a governed table whose
 * first version, 'created', carries our xid), or detached by it from a
 * governed parent (DETACHED_NOW_SQL): it has no readers yet.
 */
static const char *
relation_policy(Oid relid, bool recurse, bool live, bool *created_now)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {OIDOID, BOOLOID, BOOLOID};
	Datum		args[3];
	bool		isnull;

	if (!has_superclass(relid) && !(recurse && has_subclass(relid)))
	{
		/* the common case: no inheritance to follow */
		static SPIPlanPtr now_plan = NULL;
		const char *policy;

		policy = EltTargetPolicy(relid);
		args[0] = ObjectIdGetDatum(relid);
		*created_now = false;

		/* a transaction without an xid yet created and detached nothing */
		if (policy != NULL &&
			FullTransactionIdIsValid(GetTopFullTransactionIdIfAny()))
		{
			EltPrepare(&now_plan,
					   "SELECT " CREATED_NOW_SQL("$1::pg_catalog.regclass")
					   " OR " DETACHED_NOW_SQL("$1") " AS created_now",
					   1, argtypes);
			EltExecLatest(now_plan, args, NULL, 1);
			*created_now = SPI_processed > 0 &&
				EltSpiGetBool(0, "created_now", &isnull);
		}
		return policy;
	}
	EltPrepare(&plan,
			   "WITH RECURSIVE up(oid) AS ("
			   "  SELECT $1"
			   "  UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.oid),"
			   " down(oid) AS ("
			   "  SELECT $1 WHERE $2"
			   "  UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN down ON i.inhparent = down.oid),"
			   " pol AS ("
			   "  SELECT NOT " CREATED_NOW_SQL("r.oid::pg_catalog.regclass") " AS old,"
			   "         COALESCE("
			   "    (SELECT g.policy FROM elt.governed_targets g"
			   "     WHERE g.kind = 'table' AND g.rel = r.oid::pg_catalog.regclass),"
			   "    (SELECT g.policy FROM elt.governed_targets g"
			   "     JOIN pg_catalog.pg_namespace n ON n.nspname = g.schema_name"
			   "     JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
			   "     WHERE g.kind = 'schema' AND c.oid = r.oid AND c.relpersistence <> 't'))"
			   "    AS policy"
			   "  FROM (SELECT oid FROM up UNION SELECT oid FROM down) r)"
			   " SELECT (SELECT p.policy FROM pol p WHERE p.policy IS NOT NULL"
			   "           AND (p.old OR NOT $3)"
			   "         ORDER BY pg_catalog.array_position(ARRAY['enforce', 'warn', 'off'], p.policy)"
			   "         LIMIT 1) AS policy,"
			   "        false AS created_now",
			   3, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = BoolGetDatum(recurse);
	args[2] = BoolGetDatum(live);
	EltExecLatest(plan, args, NULL, 1);
	if (SPI_processed == 0)
		return NULL;
	*created_now = EltSpiGetBool(0, "created_now", &isnull);
	return EltSpiGetText(0, "policy");
}

static void add_dependents(Oid relid, AttrNumber attnum, bool writers_only, List **out);
static void add_consumers(Oid relid, const char *colname, bool transforms, List **out);

/* See the declaration above. */
static bool
swap_rename_out(EltClassified *c, EltCandidate *cand)
{
	Oid			tmp;
	bool		created_now = false;
	List	   *deps = NIL;
	List	   *views;
	bool		views_ok;
	ListCell   *lc;

	if (c->script != NULL)
		return false;
	tmp = EltSwapTmpFor(cand->relid);
	if (!OidIsValid(tmp))
		return false;
	(void) relation_policy(tmp, false, true, &created_now);
	if (!created_now && !EltViewCreatedNow(tmp) && !EltTableCreatedNow(tmp))
		return false;
	/* the views that read it follow it to the new relation */
	views = EltSwapCaptureViews(cand->relid, &views_ok);
	if (EltCurrentMigration() > 0)
	{
		/* approved: recorded as such, and its backup retired at commit */
		EltSwapRenameOut(cand->relid, tmp, cand->reason, "off", views);
		return false;
	}
	add_dependents(cand->relid, 0, false, &deps);
	/* transforms read it by name: after the swap, the new relation */
	add_consumers(cand->relid, NULL, false, &deps);
	/* views (and views on them) follow; anything else would be lost */
	foreach(lc, deps)
	{
		if (strncmp((const char *) lfirst(lc), "view ", 5) != 0)
			views_ok = false;
	}
	if (views_ok)
	{
		EltSwapRenameOut(cand->relid, tmp, cand->reason, cand->policy, views);
		return true;
	}
	list_free_deep(views);		/* (none when views_ok was false from the start) */
	cand->reason = psprintf("%s; as the first half of a swap with %s, built by this transaction, it would leave its dependents on the old relation, which the build then drops",
							cand->reason, EltRelDisplay(tmp));
	return false;
}

/*
 * Policy for dropping a partition of a governed parent: a partition governed
 * on its own (a table target) is judged under that target's policy only;
 * otherwise the drop is no finding but a safe change of the partition set
 * (the candidate becomes a touch, recorded under the parent's policy): the
 * parent's shape is unchanged and retention drops rows on purpose.
 */
static const char *
partition_policy(EltCandidate *cand)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	bool		created_now = false;
	const char *policy;

	EltPrepare(&plan,
			   "SELECT g.policy FROM elt.governed_targets g"
			   " WHERE g.kind = 'table' AND g.rel = $1::pg_catalog.regclass",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(cand->relid);
	EltExecLatest(plan, args, NULL, 1);
	if (SPI_processed > 0)
		return EltSpiGetText(0, "policy");
	policy = relation_policy(cand->relid, false, true, &created_now);
	cand->rule = -1;
	cand->reason = NULL;
	cand->attnum = 0;
	return policy;
}

/* Policy for a schema: its own target's, else the strictest of its tables'. */
static const char *
schema_policy(Oid nspoid)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	const char *policy;
	bool		hit;
	JudgeCacheEntry *e = cache_entry('s', nspoid, 0, NULL, &hit);

	if (hit)
		return e->text ? pstrdup(e->text) : NULL;

	EltPrepare(&plan,
			   "SELECT COALESCE("
			   "  (SELECT g.policy FROM elt.governed_targets g"
			   "   JOIN pg_catalog.pg_namespace n ON n.nspname = g.schema_name"
			   "   WHERE g.kind = 'schema' AND n.oid = $1),"
			   "  (SELECT g.policy FROM elt.governed_targets g"
			   "   JOIN pg_catalog.pg_class c ON c.oid = g.rel::pg_catalog.oid"
			   "   WHERE g.kind = 'table' AND c.relnamespace = $1"
			   "   ORDER BY array_position(ARRAY['enforce', 'warn', 'off'], g.policy)"
			   "   LIMIT 1)) AS policy",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(nspoid);
	EltExecLatest(plan, args, NULL, 1);
	policy = SPI_processed > 0 ? EltSpiGetText(0, "policy") : NULL;
	if (e != NULL)
		e->text = cache_strdup(policy);
	return policy;
}

/*
 * Governed tables with a column of an enum type (an array of it, or a domain
 * over either): the strictest policy among them, and the columns as
 * dependents.  The columns are found through pg_depend (a column depends on
 * its type, a domain on its base type), so the cost grows with the tables
 * that use the type, not with the catalog; the policy is elt.policy_for()'s,
 * inlined (a function with SET search_path is never inlined by the planner),
 * and looked up once per table.
 */
static const char *
type_policy(Oid typid, List **dependents)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	const char *policy = NULL;
	uint64		i;
	bool		hit;
	JudgeCacheEntry *e = cache_entry('t', typid, 0, NULL, &hit);
	List	   *found = NIL;

	if (hit)
	{
		cache_append(e->list, dependents);
		return e->text ? pstrdup(e->text) : NULL;
	}
	EltPrepare(&plan,
			   "WITH t AS (SELECT p.oid, p.typarray FROM pg_catalog.pg_type p WHERE p.oid = $1),"
			   " ty(oid) AS ("
			   "  SELECT t.oid FROM t"
			   "  UNION SELECT t.typarray FROM t WHERE t.typarray <> 0"
			   "  UNION SELECT d.objid FROM t, pg_catalog.pg_depend d"
			   "   JOIN pg_catalog.pg_type dt ON dt.oid = d.objid"
			   "   WHERE d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass"
			   "     AND d.refobjid IN (t.oid, t.typarray) AND d.refobjsubid = 0"
			   "     AND d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass"
			   "     AND dt.typtype = 'd' AND dt.typbasetype IN (t.oid, t.typarray)),"
			   " col AS MATERIALIZED ("
			   "  SELECT DISTINCT d.objid AS relid, d.objsubid::pg_catalog.int2 AS attnum,"
			   "         d.refobjid AS typ"
			   "  FROM ty JOIN pg_catalog.pg_depend d ON d.refobjid = ty.oid"
			   "  WHERE d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass"
			   "    AND d.refobjsubid = 0 AND d.objsubid > 0"
			   "    AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass)"
			   " SELECT format('column %s.%I', c.oid::pg_catalog.regclass, a.attname) AS dependent,"
			   "        COALESCE(gt.policy, gs.policy) AS policy, c.oid AS relid"
			   " FROM col"
			   " JOIN pg_catalog.pg_class c ON c.oid = col.relid"
			   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
			   " JOIN pg_catalog.pg_attribute a ON a.attrelid = col.relid AND a.attnum = col.attnum"
			   /* joins, not a sub-select per column: thousands of columns, hundreds of targets */
			   " LEFT JOIN elt.governed_targets gt"
			   "   ON gt.kind = 'table' AND gt.rel = c.oid::pg_catalog.regclass"
			   " LEFT JOIN elt.governed_targets gs"
			   "   ON gs.kind = 'schema' AND gs.schema_name = n.nspname AND c.relpersistence <> 't'"
			   " WHERE c.relkind IN ('r', 'p') AND NOT a.attisdropped AND a.atttypid = col.typ"
			   "   AND COALESCE(gt.policy, gs.policy) IS NOT NULL"
			   " ORDER BY 1",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(typid);
	EltExecLatest(plan, args, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *p = EltSpiGetText((int) i, "policy");
		bool		isnull;

		/* a Citus shard's column is its table's, listed already */
		if (EltIsCitusShard(DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc,
														   3, &isnull))))
			continue;
		if (policy_rank(p) > policy_rank(policy))
			policy = p;
		found = lappend(found, EltSpiGetText((int) i, "dependent"));
	}
	if (e != NULL)
	{
		cache_keep(e, found);
		e->text = cache_strdup(policy);
	}
	*dependents = list_concat(*dependents, found);
	return policy;
}

/*
 * Views, materialized views (also through other views) and functions that
 * depend on a relation or one of its columns; only functions when
 * writers_only.
 */
static void
add_dependents(Oid relid, AttrNumber attnum, bool writers_only, List **out)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {OIDOID, INT2OID, BOOLOID};
	Datum		args[3];
	uint64		i;
	bool		hit;
	JudgeCacheEntry *e = cache_entry(writers_only ? 'w' : 'd', relid, attnum, NULL, &hit);
	List	   *found = NIL;

	if (hit)
	{
		cache_append(e->list, out);
		return;
	}
	EltPrepare(&plan,
			   "WITH RECURSIVE dep(is_rule, oid) AS ("
			   "  SELECT d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass,"
			   "         COALESCE(r.ev_class, d.objid)"
			   "  FROM pg_catalog.pg_depend d"
			   "  LEFT JOIN pg_catalog.pg_rewrite r"
			   "         ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND r.oid = d.objid"
			   "  WHERE d.deptype = 'n'"
			   "    AND ((d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
			   "          AND d.refobjid = $1 AND ($2 = 0 OR d.refobjsubid IN (0, $2)))"
			   "      OR (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass"
			   "          AND d.refobjid = (SELECT c.reltype FROM pg_catalog.pg_class c WHERE c.oid = $1)))"
			   "    AND ((d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"
			   "          AND (NOT $3 OR (SELECT p.provolatile FROM pg_catalog.pg_proc p"
			   "                          WHERE p.oid = d.objid) = 'v'))"
			   "         OR (NOT $3 AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass))"
			   "  UNION"
			   "  SELECT d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass,"
			   "         COALESCE(r.ev_class, d.objid)"
			   "  FROM dep"
			   "  JOIN pg_catalog.pg_depend d"
			   "    ON dep.is_rule AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
			   "   AND d.refobjid = dep.oid AND d.deptype = 'n'"
			   "  LEFT JOIN pg_catalog.pg_rewrite r"
			   "         ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND r.oid = d.objid"
			   "  WHERE dep.oid <> $1"
			   "    AND COALESCE(r.ev_class, d.objid) <> dep.oid"
			   "    AND d.classid IN ('pg_catalog.pg_rewrite'::pg_catalog.regclass,"
			   "                      'pg_catalog.pg_proc'::pg_catalog.regclass))"
			   " SELECT DISTINCT"
			   "   CASE WHEN NOT dep.is_rule THEN 'function ' || dep.oid::pg_catalog.regprocedure::text"
			   "        WHEN c.relkind = 'm' THEN 'materialized view ' || dep.oid::pg_catalog.regclass::text"
			   "        ELSE 'view ' || dep.oid::pg_catalog.regclass::text END AS dependent"
			   " FROM dep"
			   " LEFT JOIN pg_catalog.pg_class c ON dep.is_rule AND c.oid = dep.oid"
			   " WHERE NOT (dep.is_rule AND dep.oid = $1)"
			   " ORDER BY 1",
			   3, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = Int16GetDatum(attnum);
	args[2] = BoolGetDatum(writers_only);
	EltExecLatest(plan, args, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
		found = lappend(found, EltSpiGetText((int) i, "dependent"));
	cache_keep(e, found);
	cache_append(found, out);
}

/*
 * Registered consumers of a relation, or of one of its columns; with
 * transforms, also the transforms whose current version reads it (its SQL
 * reads the relation; its column lineage names the column) or writes it
 * (the target, or a column of it the SQL outputs): their next run fails
 * when it is dropped, renamed or narrowed.  Named with their owner, as
 * elt.transforms shows them to everyone.
 */
static void
add_consumers(Oid relid, const char *colname, bool transforms, List **out)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr transforms_plan = NULL;
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	uint64		i;
	bool		hit;
	JudgeCacheEntry *e = cache_entry(transforms ? 'C' : 'c', relid, colname ? 1 : 0,
									 colname, &hit);
	List	   *found = NIL;

	if (hit)
	{
		cache_append(e->list, out);
		return;
	}
	args[0] = ObjectIdGetDatum(relid);
	if (colname)
		args[1] = CStringGetTextDatum(colname);
	else
		nulls[1] = 'n';
	EltPrepare(&plan,
			   "SELECT 'consumer ' || r.consumer AS dependent"
			   " FROM elt.consumer_registrations r"
			   " WHERE r.rel = $1::pg_catalog.regclass"
			   "   AND ($2 IS NULL OR r.columns IS NULL OR $2 = ANY (r.columns))"
			   " ORDER BY r.consumer",
			   2, argtypes);
	EltExecLatest(plan, args, nulls, 0);
	for (i = 0; i < SPI_processed; i++)
		found = lappend(found, EltSpiGetText((int) i, "dependent"));

	/* a catalog from before transforms and column lineage (0.4.0) has none */
	if (transforms && OidIsValid(EltCatalogRelid("lineage_columns")))
	{
		/*
		 * Each transform with its current version's SQL: it depends on the
		 * column if its column lineage reads it, or if the relation is its
		 * target and the SQL outputs the column; on the relation if the SQL
		 * reads it or writes it.
		 */
		EltPrepare(&transforms_plan,
				   "SELECT t.dependent, t.sql, t.reads FROM ("
				   " SELECT pg_catalog.format('transform %s (owner %s)', d.name, d.owner) AS dependent,"
				   "        cv.sql, d.target = $1::pg_catalog.regclass AS writes,"
				   "        ($2 IS NULL AND $1::pg_catalog.regclass = ANY (cv.sources)"
				   "         OR EXISTS (SELECT 1 FROM elt.lineage_columns c"
				   "                    WHERE c.transform_id = d.transform_id AND c.version = cv.version"
				   "                      AND c.source_rel = $1::pg_catalog.regclass"
				   "                      AND c.source_column = $2)) AS reads"
				   " FROM elt.transform_defs d"
				   " JOIN LATERAL (SELECT v.version, v.sources, v.sql FROM elt.transform_code v"
				   "               WHERE v.transform_id = d.transform_id"
				   "               ORDER BY v.version DESC LIMIT 1) cv ON true) t"
				   " WHERE t.reads OR t.writes ORDER BY 1",
				   2, argtypes);
		EltExecLatest(transforms_plan, args, nulls, 0);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			/* the rest write the relation: the whole of it, or that column */
			if (EltSpiGetBool((int) i, "reads", &isnull) || colname == NULL ||
				EltSelectWritesColumn(EltSpiGetText((int) i, "sql"), colname))
				found = lappend(found, EltSpiGetText((int) i, "dependent"));
		}
	}
	cache_keep(e, found);
	cache_append(found, out);
}

/* Dependents of every table and view of a schema, outside that schema. */
static void
add_schema_dependents(Oid nspoid, List **out)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	List	   *rels;
	ListCell   *lc;

	EltPrepare(&plan,
			   "SELECT c.oid FROM pg_catalog.pg_class c"
			   " WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'v', 'm')"
			   " ORDER BY c.relname",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(nspoid);
	EltExecLatest(plan, args, NULL, 0);
	rels = EltSpiAppendOids(NIL);
	foreach(lc, rels)
	{
		add_dependents(lfirst_oid(lc), 0, false, out);
		add_consumers(lfirst_oid(lc), NULL, true, out);
	}
	/* what lives in the schema goes with it */
	{
		char	   *prefix = psprintf(" %s.", quote_identifier(get_namespace_name(nspoid)));
		List	   *kept = NIL;
		ListCell   *dc;

		foreach(dc, *out)
		{
			char	   *d = (char *) lfirst(dc);

			if (strncmp(d, "consumer ", 9) == 0 || strstr(d, prefix) == NULL)
				kept = lappend(kept, d);
		}
		*out = kept;
	}
}

/* Whether a validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan. */
static bool
not_null_proven(Oid relid, const char *colname)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2];
	bool		hit;
	JudgeCacheEntry *e = cache_entry('n', relid, 0, colname, &hit);

	if (hit)
		return e->flag;
	EltPrepare(&plan,
			   "SELECT 1 FROM pg_catalog.pg_constraint"
			   " WHERE conrelid = $1 AND contype = 'c' AND convalidated"
			   "   AND pg_catalog.pg_get_constraintdef(oid)"
			   "       = pg_catalog.format('CHECK ((%s IS NOT NULL))', pg_catalog.quote_ident($2))",
			   2, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetTextDatum(colname);
	EltExecLatest(plan, args, NULL, 1);
	if (e != NULL)
		e->flag = SPI_processed > 0;
	return SPI_processed > 0;
}

/* Whether the statement already has a breaking finding on a column. */
static bool
has_breaking_on_column(List *cands, Oid relid, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, cands)
	{
		EltCandidate *o = (EltCandidate *) lfirst(lc);

		if (o->rule >= 0 && RULE_IS_BREAKING(o->rule) && o->relid == relid &&
			o->attnum == attnum)
			return true;
	}
	return false;
}

/*
 * Whether the role running a live statement may do what a candidate is
 * about: own the relation, type or schema (TRUNCATE: hold the privilege;
 * a maintenance command: PostgreSQL's rule for it, see CAND_MAINTAIN).
 * If not, the statement is about to fail on privileges, and that is the
 * error to see; a dry run judges whatever it is given.
 */
static bool
actor_may(EltClassified *c, EltCandidate *cand)
{
	if (c->script != NULL || superuser_arg(c->actor))
		return true;
	if (OidIsValid(cand->typid))
		return pg_type_ownercheck(cand->typid, c->actor);
	if (OidIsValid(cand->nspoid))
		return pg_namespace_ownercheck(cand->nspoid, c->actor);
	if (!OidIsValid(cand->relid))
		return true;
	if (cand->rule == R_TRUNCATE)
		return pg_class_aclcheck(cand->relid, c->actor, ACL_TRUNCATE) == ACLCHECK_OK;
	if (cand->flags & CAND_MAINTAIN)
		return EltMaintainCheck(cand->relid, c->actor) ||
			((cand->flags & CAND_DB_OWNER_MAY) &&
			 pg_database_ownercheck(MyDatabaseId, c->actor)) ||
			(cand->schema_owner_may &&
			 pg_namespace_ownercheck(get_rel_namespace(cand->relid), c->actor));
	if (OidIsValid(cand->privrel))
		return pg_class_ownercheck(cand->privrel, c->actor);
	if (cand->schema_owner_may &&
		pg_namespace_ownercheck(get_rel_namespace(cand->relid), c->actor))
		return true;
	return pg_class_ownercheck(cand->relid, c->actor);
}

/*
 * Whether a relation was created by the migration window this session's
 * changes carry (elt.migration, in any of the window's sessions): its first
 * version, 'created', carries the window's id.  *window caches the window
 * (-1: not looked up yet).
 */
static bool
created_by_window(Oid relid, int64 *window)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {OIDOID, INT8OID};
	Datum		args[2];

	if (*window < 0)
		*window = EltMigrationWindowPeek();
	if (*window == 0)
		return false;
	EltPrepare(&plan,
			   "SELECT 1 FROM elt.tracked_tables t"
			   " JOIN elt.schema_versions v ON v.table_id = t.table_id AND v.version = 1"
			   " WHERE t.relid = $1::pg_catalog.regclass AND v.event = 'created'"
			   "   AND v.migration_id = $2",
			   2, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = Int64GetDatum(*window);
	EltExecLatest(plan, args, NULL, 1);
	return SPI_processed > 0;
}

/*
 * Step 2.  Inside the catalog context.  Keeps the candidates that concern
 * governed objects, with their policy and dependents; list allocations go
 * to c->cxt.  lock_timeout_set: whether the statement will run with one.
 */
void
EltJudge(EltClassified *c, bool lock_timeout_set)
{
	List	   *kept = NIL;
	List	   *looked_up = NIL;	/* candidates whose relation was looked up */
	ListCell   *lc;
	int64		window = -1;	/* the session's migration window, once looked up */

	/* a dry run uses the call's cache of lookups; a live statement none */
	judge_lookups = c->script != NULL ? script_cache : NULL;

	foreach(lc, c->cands)
	{
		EltCandidate *cand = (EltCandidate *) lfirst(lc);
		MemoryContext old;
		List	   *deps = NIL;
		const char *policy;

		if (cand->rule == R_MISSING)
		{
			kept = lappend(kept, cand);
			continue;
		}
		if (!actor_may(c, cand))
			continue;
		/*
		 * A Citus shard: the statement on its table was judged on the
		 * coordinator, and Citus runs it on each shard (citus.c).
		 */
		if (OidIsValid(cand->relid) && EltIsCitusShard(cand->relid))
			continue;
		/* EG208: a lock taken with a lock_timeout cannot queue traffic for long */
		if ((cand->flags & CAND_LOCK) && lock_timeout_set)
			continue;
		/* the old relation of a committed swap: dbt drops its backup */
		if ((cand->rule == R_DROP_TABLE || cand->rule == R_DROP_VIEW ||
			 (cand->flags & CAND_LOCK)) &&
			EltSwapRetired(cand->relid))
			continue;
		old = MemoryContextSwitchTo(c->cxt);
		if (OidIsValid(cand->typid))
			policy = type_policy(cand->typid, &deps);
		else if (OidIsValid(cand->nspoid))
			policy = schema_policy(cand->nspoid);
		else if ((cand->flags & CAND_PARTITION) && EltPartitionOfGoverned(cand->relid))
			policy = partition_policy(cand);
		else if (OidIsValid(cand->relid))
		{
			/* one lookup per relation: a statement's candidates share tables */
			EltCandidate *same = NULL;
			ListCell   *pc;

			foreach(pc, looked_up)
			{
				EltCandidate *o = (EltCandidate *) lfirst(pc);

				if (o->relid == cand->relid && o->recurse == cand->recurse)
					same = o;
			}
			if (same != NULL)
				policy = same->policy;
			else
			{
				bool		created_now = false;
				bool		hit;
				JudgeCacheEntry *e = cache_entry(cand->recurse ? 'R' : 'r', cand->relid,
												 0, NULL, &hit);

				/* a dry run: created_now changes nothing (below) */
				if (hit)
					policy = e->text;
				else
				{
					policy = relation_policy(cand->relid, cand->recurse, c->script == NULL,
											 &created_now);
					if (e != NULL)
						e->text = cache_strdup(policy);
				}
				/* a view has no history: the capture hook noted its creation */
				if (!created_now && c->script == NULL && EltViewCreatedNow(cand->relid))
					created_now = true;
				/* created by this transaction: nobody reads it yet */
				if (created_now && c->script == NULL)
					policy = NULL;
				cand->policy = policy ? pstrdup(policy) : NULL;
				looked_up = lappend(looked_up, cand);
			}
		}
		else
			policy = NULL;
		if (policy == NULL)
		{
			MemoryContextSwitchTo(old);
			continue;
		}
		cand->policy = pstrdup(policy);
		if (cand->rule == R_RENAME_TABLE && swap_rename_out(c, cand))
		{
			MemoryContextSwitchTo(old);
			continue;
		}

		if (cand->rule < 0)
		{
			/*
			 * A touched column that a registered consumer uses: EG117 (not
			 * the transforms that read it: a change that keeps its values
			 * readable keeps them running).
			 */
			if (cand->attnum > 0 &&
				!has_breaking_on_column(c->cands, cand->relid, cand->attnum))
			{
				add_consumers(cand->relid, cand->colname, false, &deps);
				if (deps != NIL)
				{
					cand->rule = R_CONSUMER_COLUMN;
					cand->reason = psprintf("changes column %s, which registered consumers use",
											cand->object);
				}
			}
		}
		else if ((cand->flags & CAND_NOT_NULL_PROOF) &&
				 not_null_proven(cand->relid, cand->colname))
		{
			/* a validated CHECK (col IS NOT NULL): no scan, no NULL to fail on */
			MemoryContextSwitchTo(old);
			continue;
		}
		else if (cand->flags & CAND_NEEDS_SIZE)
		{
			double		rows = EltEstimatedRows(cand->relid, cand->lockmode,
												c->script == NULL);

			if (rows == -2)
			{
				/* never analyzed and locked by others: assume it is large */
				cand->reason = psprintf("%s (size unknown: never analyzed, and in use; ANALYZE it)",
										cand->reason);
			}
			else if (rows <= (double) elt_large_table_rows)
			{
				MemoryContextSwitchTo(old);
				continue;
			}
			if (rows >= 0)
				cand->reason = psprintf("%s (about %.0f rows, over elt.large_table_rows = %d)",
										cand->reason, rows, elt_large_table_rows);
			cand->reason = psprintf("%s%s", cand->reason,
									cand->rule == R_CREATE_INDEX &&
									get_rel_relkind(cand->relid) == RELKIND_PARTITIONED_TABLE ?
									"; a partitioned table cannot be indexed CONCURRENTLY: create the index ON ONLY the parent, CONCURRENTLY on each partition, then ATTACH PARTITION each" : "");
		}
		else if (RULE_IS_BREAKING(cand->rule))
		{
			if (OidIsValid(cand->typid))
				 /* dependents are the columns using the type */ ;
			else if (OidIsValid(cand->nspoid))
				add_schema_dependents(cand->nspoid, &deps);
			else if (cand->flags & CAND_WRITERS)
				add_dependents(cand->relid, cand->attnum, true, &deps);
			else
			{
				add_dependents(cand->relid, cand->attnum, false, &deps);
				add_consumers(cand->relid, cand->colname, true, &deps);
			}
			/* a table its own migration created, that nothing reads yet */
			if (deps == NIL && c->script == NULL && OidIsValid(cand->relid) &&
				!OidIsValid(cand->typid) && !OidIsValid(cand->nspoid) &&
				created_by_window(cand->relid, &window))
			{
				MemoryContextSwitchTo(old);
				continue;
			}
		}
		cand->dependents = deps;
		kept = lappend(kept, cand);
		MemoryContextSwitchTo(old);
	}
	c->cands = kept;
	judge_lookups = NULL;
}

/* ------------------------------------------------------------------------
 * Step 3: decide and record (live statements)
 * ------------------------------------------------------------------------
 */

/* Join a list of C strings with a separator. */
static char *
join_strings(List *list, const char *sep)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, list)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, sep);
		appendStringInfoString(&buf, (const char *) lfirst(lc));
	}
	return buf.data;
}

/*
 * Message, detail and hint of findings that block or warn; the statement's
 * advice (EG208), which never blocks or warns by itself, is listed at the
 * end of the detail.
 */
static void
describe(List *findings, List *advice, char **msg, char **detail, char **hint)
{
	StringInfoData m;
	StringInfoData d;
	StringInfoData h;
	ListCell   *lc;
	List	   *codes = NIL;

	initStringInfo(&m);
	initStringInfo(&d);
	initStringInfo(&h);
	foreach(lc, findings)
	{
		EltCandidate *f = (EltCandidate *) lfirst(lc);

		if (!EltStringMember(codes, EltContractRules[f->rule].code))
			codes = lappend(codes, (char *) EltContractRules[f->rule].code);
	}
	if (list_length(findings) == 1)
	{
		EltCandidate *f = (EltCandidate *) linitial(findings);

		appendStringInfo(&m, "%s: %s", EltContractRules[f->rule].code, f->reason);
		if (f->dependents != NIL)
			appendStringInfo(&d, "Breaks: %s. ", join_strings(f->dependents, ", "));
		appendStringInfo(&d, "Class %s, under policy %s.", EltContractRules[f->rule].class, f->policy);
		appendStringInfoString(&h, EltContractRules[f->rule].suggestion);
	}
	else
	{
		List	   *hints = NIL;

		appendStringInfo(&m, "%s: this statement has %d findings under the contract",
						 join_strings(codes, ", "), list_length(findings));
		foreach(lc, findings)
		{
			EltCandidate *f = (EltCandidate *) lfirst(lc);
			char	   *s = psprintf("%s: %s", EltContractRules[f->rule].code, EltContractRules[f->rule].suggestion);

			if (d.len > 0)
				appendStringInfoChar(&d, '\n');
			appendStringInfo(&d, "%s (%s, policy %s): %s.", EltContractRules[f->rule].code,
							 EltContractRules[f->rule].class, f->policy, f->reason);
			if (f->dependents != NIL)
				appendStringInfo(&d, " Breaks: %s.", join_strings(f->dependents, ", "));
			if (!EltStringMember(hints, s))
				hints = lappend(hints, s);
		}
		appendStringInfoString(&h, join_strings(hints, "\n"));
	}
	foreach(lc, advice)
	{
		EltCandidate *f = (EltCandidate *) lfirst(lc);

		appendStringInfo(&d, "\nAdvice %s: %s.", EltContractRules[f->rule].code, f->reason);
	}
	*msg = m.data;
	*detail = d.data;
	*hint = h.data;
}

/*
 * Step 3: block, warn or approve the statement as a whole, then record what
 * goes ahead (now, or at ddl_command_end when defer).
 */
static void
decide_and_record(EltCatalogWrite *cw, EltClassified *c, CommandTag tag, bool defer)
{
	int64		window;
	int64		migration;
	List	   *blocked = NIL;
	List	   *warned = NIL;
	List	   *advice = NIL;
	List	   *findings = NIL;
	EltCandidate *touch = NULL;
	ListCell   *lc;
	const char *tagname = GetCommandTagName(tag);
	char	   *statement;
	List	   *decisions = NIL;
	char	   *msg;
	char	   *detail;
	char	   *hint;

	if (c->cands == NIL)
		return;
	/* a governed statement: join the migration the settings name, if any */
	window = EltMigrationJoin(cw);
	migration = EltCurrentMigration();
	foreach(lc, c->cands)
	{
		EltCandidate *f = (EltCandidate *) lfirst(lc);

		if (f->rule < 0)
		{
			if (touch == NULL)
				touch = f;
			continue;
		}
		findings = lappend(findings, f);
		/* advice never blocks nor warns by itself */
		if (RULE_IS_ADVICE(f->rule))
		{
			advice = lappend(advice, f);
			continue;
		}
		if (migration > 0)
			continue;
		if (strcmp(f->policy, "enforce") == 0)
			blocked = lappend(blocked, f);
		else if (strcmp(f->policy, "warn") == 0)
			warned = lappend(warned, f);
	}
	if (findings == NIL && touch == NULL)
		return;

	if (blocked != NIL)
	{
		describe(blocked, advice, &msg, &detail, &hint);
		ereport(LOG,
				(errmsg("elt_governance blocked a change by role \"%s\": %s",
						GetUserNameFromId(cw->actor, false), msg),
				 errhidecontext(true)));
		ereport(ERROR,
				(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
				 errmsg("%s", msg),
				 errdetail("%s", detail),
				 errhint("%s\nTo approve the change, run it after SELECT elt.migration_begin(name, reason, approved_by).",
						 hint)));
	}
	if (warned != NIL)
	{
		describe(warned, advice, &msg, &detail, &hint);
		ereport(WARNING,
				(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
				 errmsg("%s", msg),
				 errdetail("%s", detail),
				 errhint("%s", hint)));
	}
	if (migration > 0 && list_length(findings) > list_length(advice))
	{
		List	   *codes = NIL;

		foreach(lc, findings)
		{
			EltCandidate *f = (EltCandidate *) lfirst(lc);

			if (!RULE_IS_ADVICE(f->rule) &&
				!EltStringMember(codes, EltContractRules[f->rule].code))
				codes = lappend(codes, (char *) EltContractRules[f->rule].code);
		}
		ereport(NOTICE,
				(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
				 errmsg("%s approved by migration %lld",
						join_strings(codes, ", "), (long long) migration)));
	}

	EltContractsFollowRegistrations(cw, findings);
	/* a catalog older than 0.9.0 has no class 'advice': its statement is safe */
	if (advice != NIL && !EltAdviceRecordable())
	{
		List	   *kept = NIL;

		foreach(lc, findings)
		{
			if (!list_member_ptr(advice, lfirst(lc)))
				kept = lappend(kept, lfirst(lc));
		}
		findings = kept;
		if (findings == NIL && touch == NULL)
			return;
	}
	statement = EltCurrentStatement();
	if (findings == NIL)
	{
		findings = list_make1(touch);
		decisions = list_make1("allowed");
	}
	else
	{
		foreach(lc, findings)
		{
			EltCandidate *f = (EltCandidate *) lfirst(lc);

			if (RULE_IS_ADVICE(f->rule))
				decisions = lappend(decisions,
									strcmp(f->policy, "off") == 0 ? "recorded" : "allowed");
			else if (migration > 0 && strcmp(f->policy, "off") != 0)
				decisions = lappend(decisions, "approved");
			else if (strcmp(f->policy, "warn") == 0)
				decisions = lappend(decisions, "warned");
			else
				decisions = lappend(decisions, "recorded");
		}
	}
	if (defer)
	{
		EltContractsKeepDeferred(findings, decisions, tagname, statement, window);
		return;
	}
	EltContractsWriteRecords(cw, findings, decisions, tagname, statement, window);
}

/*
 * Whether the statement being run had breaking findings that went ahead
 * (under warn or off, or approved): then what it drops by cascade was part
 * of what was judged.  See EltContractsCheckCascade.
 */
static int	judged_rank = 0;		/* strictest policy it went ahead under */
static List *judged_relids = NIL;	/* relations its findings named */

/*
 * sql_drop: a governed table, view or column dropped by a statement that was
 * not judged as dropping it — DROP ... CASCADE of an ungoverned object
 * (a type, a sequence, a view), DROP OWNED BY — is judged here, after the
 * fact but before the transaction commits: under enforce the statement
 * fails, under warn it warns.  relid is the dropped relation (or the table
 * of a dropped column), schema and name its names, column NULL for a
 * relation.
 */
void
EltContractsCheckCascade(EltCatalogWrite *cw, Oid relid, const char *type,
						 const char *schema, const char *name, const char *column)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {OIDOID, NAMEOID};
	Datum		args[2];
	char	   *policy;
	int			rule;
	char	   *object;
	char	   *reason;

	/* a Citus shard's column goes with its table's, judged already */
	if (!elt_enabled || EltCurrentMigration() > 0 || !EltContractsReady() ||
		list_member_oid(judged_relids, relid) || EltIsCitusShard(relid) ||
		(column == NULL && EltSwapRetired(relid)))
		return;
	EltPrepare(&plan,
			   "SELECT COALESCE("
			   "  (SELECT g.policy FROM elt.governed_targets g"
			   "   WHERE g.kind = 'table' AND g.rel = $1::pg_catalog.regclass),"
			   "  (SELECT g.policy FROM elt.governed_targets g"
			   "   WHERE g.kind = 'schema' AND g.schema_name = $2)) AS policy"
			   " WHERE NOT " CREATED_NOW_SQL("$1::pg_catalog.regclass"),
			   2, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(schema));
	EltExecLatest(plan, args, NULL, 1);
	policy = SPI_processed > 0 ? EltSpiGetText(0, "policy") : NULL;
	/* off, or no stricter than what the statement itself went ahead under */
	if (policy == NULL || strcmp(policy, "off") == 0 ||
		policy_rank(policy) <= judged_rank)
		return;
	/* approved by the migration the settings name, or created by it */
	EltMigrationJoin(cw);
	if (EltCurrentMigration() > 0)
		return;
	{
		static SPIPlanPtr readers_plan = NULL;
		int64		window = -1;
		Oid			rtypes[1] = {OIDOID};
		Datum		rargs[1];

		/*
		 * Created by the window, and nothing read it: no registered
		 * consumer, no view the same statement took with it (pg_depend no
		 * longer shows what read it).
		 */
		if (created_by_window(relid, &window))
		{
			EltPrepare(&readers_plan,
					   "SELECT 1 WHERE EXISTS (SELECT 1 FROM elt.consumer_registrations r"
					   "                       WHERE r.rel = $1::pg_catalog.regclass)"
					   "   OR EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() d"
					   "              WHERE d.object_type IN ('view', 'materialized view'))",
					   1, rtypes);
			rargs[0] = ObjectIdGetDatum(relid);
			EltExecLatest(readers_plan, rargs, NULL, 1);
			if (SPI_processed == 0)
				return;
		}
	}
	object = quote_qualified_identifier(schema, name);
	if (strcmp(type, "default value") == 0 && column != NULL)
	{
		rule = R_DROP_DEFAULT;
		object = psprintf("%s.%s", object, quote_identifier(column));
		reason = psprintf("drops the default of column %s as a side effect (CASCADE): writers that leave it out store NULL or fail",
						  object);
	}
	else if (column != NULL)
	{
		rule = R_DROP_COLUMN;
		object = psprintf("%s.%s", object, quote_identifier(column));
		reason = psprintf("drops column %s as a side effect (CASCADE or DROP OWNED): readers that select it fail",
						  object);
	}
	else if (strcmp(type, "table") == 0)
	{
		rule = R_DROP_TABLE;
		reason = psprintf("drops table %s as a side effect (CASCADE or DROP OWNED): its readers fail and its rows are gone",
						  object);
	}
	else
	{
		rule = R_DROP_VIEW;
		reason = psprintf("drops %s %s as a side effect (CASCADE or DROP OWNED): its readers fail",
						  type, object);
	}
	if (strcmp(policy, "enforce") == 0)
	{
		ereport(LOG,
				(errmsg("elt_governance blocked a change by role \"%s\": %s: %s",
						GetUserNameFromId(cw->actor, false), EltContractRules[rule].code, reason),
				 errhidecontext(true)));
		ereport(ERROR,
				(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
				 errmsg("%s: %s", EltContractRules[rule].code, reason),
				 errdetail("Class breaking; %s is governed with policy enforce.", object),
				 errhint("Drop the governed object by name, or run the statement inside an approved migration: SELECT elt.migration_begin(name, reason, approved_by).")));
	}
	ereport(WARNING,
			(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
			 errmsg("%s: %s", EltContractRules[rule].code, reason),
			 errdetail("Class breaking; %s is governed with policy warn.", object),
			 errhint("%s", EltContractRules[rule].suggestion)));
}

/*
 * Classify a statement about to run, and block, warn about or record it.
 * Called from ddl_command_start and, for TRUNCATE, the ProcessUtility hook.
 */
void
EltContractsCheck(Node *parsetree, CommandTag tag)
{
	EltClassified c;
	EltCatalogWrite cw;
	Oid			swap_out = InvalidOid;

	EltContractsForgetDeferred();
	EltScriptSchemas = NIL;		/* only a dry run has a script */
	judged_rank = 0;
	list_free(judged_relids);
	judged_relids = NIL;
	if (!elt_enabled || parsetree == NULL || !EltCatalogReady() || !EltContractsReady())
		return;
	/* the second half of a swap judges the new relation against the old */
	if (IsA(parsetree, RenameStmt) && ((RenameStmt *) parsetree)->relation != NULL &&
		(((RenameStmt *) parsetree)->renameType == OBJECT_TABLE ||
		 ((RenameStmt *) parsetree)->renameType == OBJECT_VIEW ||
		 ((RenameStmt *) parsetree)->renameType == OBJECT_MATVIEW))
	{
		RenameStmt *rs = (RenameStmt *) parsetree;
		Oid			relid = RangeVarGetRelid(rs->relation, NoLock, true);

		if (OidIsValid(relid))
		{
			EltSwapRenameIn(relid, rs->newname, GetCommandTagName(tag));
			if (OidIsValid(EltSwapTmpFor(relid)))
				swap_out = relid;
		}
	}
	memset(&c, 0, sizeof(c));
	c.cxt = CurrentMemoryContext;
	c.actor = GetUserId();
	EltClassify(&c, parsetree);
	/*
	 * The locks the transaction already holds: looked up before the
	 * statement takes its own and before the judging locks anything
	 * (EltClassify itself takes at most ACCESS SHARE, which no check here
	 * counts).
	 */
	EltClassifyHeldLocks(&c, parsetree);
	EltLiveAddedColumns(&c, parsetree);
	if (c.cands == NIL)
		return;
	EltCatalogWriteBegin(&cw);
	if (EltAnyTarget())
	{
		ListCell   *lc;
		bool		created_now;

		/*
		 * A swap's rename out is approved or deferred by the window the
		 * session is in (swap_rename_out): join the one the settings name
		 * first.  A view model's rename out is its first governed statement
		 * (the view built beside it is not judged).
		 */
		if (OidIsValid(swap_out) && relation_policy(swap_out, false, true, &created_now) != NULL)
			(void) EltMigrationJoin(&cw);
		EltJudge(&c, LockTimeout > 0);
		decide_and_record(&cw, &c, tag,
						  (IsA(parsetree, DropStmt) && ((DropStmt *) parsetree)->concurrent) ||
						  (IsA(parsetree, IndexStmt) && ((IndexStmt *) parsetree)->concurrent));
		/*
		 * It goes ahead: note what it was judged on, so that sql_drop judges
		 * only what it drops beyond that under a stricter policy.
		 */
		foreach(lc, c.cands)
		{
			EltCandidate *f = (EltCandidate *) lfirst(lc);

			if (f->rule >= 0 && RULE_IS_BREAKING(f->rule))
				judged_rank = Max(judged_rank, policy_rank(f->policy));
			/* what it names, found safe or not, is judged already */
			if (OidIsValid(f->relid))
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				judged_relids = list_append_unique_oid(judged_relids, f->relid);
				MemoryContextSwitchTo(old);
			}
		}
	}
	EltCatalogWriteEnd(&cw);
}
