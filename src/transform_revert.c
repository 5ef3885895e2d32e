/*
 * transform_revert.c — undoing transform runs: elt.run_revert() and
 * elt.run_dependents().
 *
 * A run's rows are the rows of its target whose xmin is the run's
 * transaction id (transform_undo.c records it), and the rows a revert put
 * back that it had written (elt.run_undo_restored).  Reverting it deletes
 * them and inserts its before-images, in the caller's transaction and, like
 * the run, as the transform's owner (restricted when the caller is another
 * role: a superuser reverting someone's run does not run their triggers
 * with superuser rights); then its lineage is deleted (no
 * longer traced) and the revert recorded and audited.  It is refused,
 * before anything changes, when a later run that is not reverted changed
 * or deleted rows it wrote (its before-images name it), holds a key it must
 * put back, or read rows it wrote (its row lineage says so, or its table
 * lineage when either kept no row lineage); with cascade they are reverted
 * first, newest first, each checked the same way.  What the checks cannot
 * see (an UPDATE or DELETE outside transform runs) shows in the count of
 * the run's rows: the revert fails, and the transaction with it.
 *
 * Locking: SHARE ROW EXCLUSIVE on each target, before its run is read
 * again: a run of the same target waits for the revert, and a revert
 * waiting for a run sees it once it commits.  READ COMMITTED only (a
 * transaction snapshot would not see the run that committed meanwhile).
 *
 * Layering: part of the transform engine; calls transform_undo.c (shapes
 * and keys), roles, audit and util.  Catalog statements run as the
 * extension's owner (owner_begin/end), statements on targets as the
 * transform's owner (target_begin/end).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "access/table.h"

#include "audit.h"
#include "lineage.h"
#include "roles.h"
#include "transform.h"
#include "util.h"

/* rows read back and put back at a time */
#define REVERT_BATCH 10000

/* A transform run as a revert reads it. */
typedef struct RevRun
{
	int64		run_id;
	int64		transform_id;
	char	   *transform;
	char	   *owner;
	char	   *mode;			/* of the transform: append, merge, replace */
	Oid			target;
	char	   *role;
	char	   *status;
	char	   *lineage;
	int64		rows_written;
	bool		reverted;
	bool		has_undo;
	char	   *state;
	int64		xid;
	char	   *shape;
	int64		images;
	char	   *finished_at;
} RevRun;

/* A later run that stands in the way, and why. */
typedef struct Blocker
{
	int64		run_id;
	const char *why;
} Blocker;

/* One call of elt.run_revert(). */
typedef struct Revert
{
	bool		cascade;
	const char *reason;
	Oid			caller;
	int			caller_sec;
	Oid			owner;			/* the extension's */
	List	   *done;			/* run ids reverted by this call (int64 *) */
	Tuplestorestate *out;
	TupleDesc	desc;
	MemoryContext cxt;			/* the call's */
} Revert;

typedef struct OwnerSave
{
	Oid			userid;
	int			sec;
} OwnerSave;

/* Catalog statements: as the extension's owner, restricted. */
static void
owner_begin(OwnerSave *s)
{
	GetUserIdAndSecContext(&s->userid, &s->sec);
	SetUserIdAndSecContext(EltExtensionOwner(), s->sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

static void
owner_end(OwnerSave *s)
{
	SetUserIdAndSecContext(s->userid, s->sec);
}

/* Statements on a run's target: as the transform's owner, like the run. */
static void
target_begin(EltAsRole *ar, const char *owner)
{
	Oid			role = get_role_oid(owner, false);

	EltAsRoleBegin(ar, role, "pg_catalog, pg_temp", role != GetUserId());
}

/*
 * Run one statement through SPI, checking its result: as the transform's
 * owner when r is given (a statement on its target), else as the
 * extension's owner (the catalog).  Returns the rows it processed.
 */
static uint64
exec_as(RevRun *r, const char *sql, int nargs, Oid *types, Datum *values, int expect)
{
	EltAsRole	ar;
	OwnerSave	os;
	int			rc;

	if (r != NULL)
		target_begin(&ar, r->owner);
	else
		owner_begin(&os);
	rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);
	if (r != NULL)
		EltAsRoleEnd(&ar);
	else
		owner_end(&os);
	if (rc != expect)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}


static bool
done_has(List *done, int64 run_id)
{
	ListCell   *lc;

	foreach(lc, done)
		if (*(int64 *) lfirst(lc) == run_id)
			return true;
	return false;
}

/* A text column of the SPI result, copied into cxt (NULL stays NULL). */
static char *
get_text(int row, const char *col, MemoryContext cxt)
{
	char	   *v = EltSpiGetText(row, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/* Read a transform run; false when there is none. */
static bool
load_run(int64 run_id, RevRun *r, MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		v[2];
	OwnerSave	os;
	bool		isnull;

	owner_begin(&os);
	EltPrepare(&plan,
			   "SELECT r.run_id, r.transform_id, d.name, d.owner, d.mode, d.target::pg_catalog.oid AS target,"
			   "       r.role, r.status, r.lineage, r.rows_written,"
			   "       EXISTS (SELECT 1 FROM elt.run_reverts v WHERE v.run_id = r.run_id) AS reverted,"
			   "       u.run_id IS NOT NULL AS has_undo, u.state, u.xid, u.shape, u.images,"
			   "       r.finished_at::pg_catalog.text AS finished_at,"
			   "       u.finished_at < pg_catalog.now() - pg_catalog.make_interval(secs => $2) AS expired"
			   " FROM elt.transform_runs r"
			   " JOIN elt.transform_defs d ON d.transform_id = r.transform_id"
			   " LEFT JOIN elt.run_undo u ON u.run_id = r.run_id"
			   " WHERE r.run_id = $1",
			   2, types);
	v[0] = Int64GetDatum(run_id);
	v[1] = Int32GetDatum(elt_undo_retention);
	EltExec(plan, v, NULL, 1);
	owner_end(&os);
	if (SPI_processed == 0)
		return false;
	memset(r, 0, sizeof(*r));
	r->run_id = run_id;
	r->transform_id = EltSpiGetInt64(0, "transform_id", &isnull);
	r->transform = get_text(0, "name", cxt);
	r->owner = get_text(0, "owner", cxt);
	r->mode = get_text(0, "mode", cxt);
	r->target = (Oid) EltSpiGetInt64(0, "target", &isnull);
	r->role = get_text(0, "role", cxt);
	r->status = get_text(0, "status", cxt);
	r->lineage = get_text(0, "lineage", cxt);
	r->rows_written = EltSpiGetInt64(0, "rows_written", &isnull);
	r->reverted = EltSpiGetBool(0, "reverted", &isnull);
	r->has_undo = EltSpiGetBool(0, "has_undo", &isnull);
	r->state = get_text(0, "state", cxt);
	r->xid = EltSpiGetInt64(0, "xid", &isnull);
	r->shape = get_text(0, "shape", cxt);
	r->images = EltSpiGetInt64(0, "images", &isnull);
	r->finished_at = get_text(0, "finished_at", cxt);
	/* past elt.undo_retention, whether or not a run of the transform has retired it yet */
	if (r->has_undo && EltSpiGetBool(0, "expired", &isnull) && strcmp(r->state, "kept") == 0)
		r->state = "purged";
	return true;
}

/*
 * May the caller revert this run: it has, now, the privileges of the
 * transform's owner, as whoever ran it had (a member since revoked may not).
 */
static bool
may_revert(Oid caller, RevRun *r)
{
	Oid			owner = get_role_oid(r->owner, true);

	return EltRoleMayActAs(caller, owner);
}

/* The refusals that concern the run itself, in the order a user meets them. */
static void
check_run(Revert *rv, RevRun *r, int64 cascade_of)
{
	if (!may_revert(rv->caller, r))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to revert run %lld", (long long) r->run_id),
				 cascade_of ? errdetail("Run %lld of transform \"%s\" changed or read rows run %lld wrote; only roles with the privileges of its owner \"%s\" can revert it.",
										(long long) r->run_id, r->transform, (long long) cascade_of, r->owner)
				 : errdetail("Only roles with the privileges of the owner of transform \"%s\", \"%s\", can revert its runs.",
							 r->transform, r->owner)));
	if (strcmp(r->status, "succeeded") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run %lld failed: it wrote nothing to revert", (long long) r->run_id)));
	if (r->reverted)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run %lld was already reverted", (long long) r->run_id),
				 errhint("elt.transform_run_history shows when.")));
	if (!r->has_undo)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run %lld cannot be reverted: it kept no undo", (long long) r->run_id),
				 errdetail("It ran before elt_governance 0.9.0, while elt.undo_retention was 0, into a Citus table, or in the database this one was restored from.")));
	if (strcmp(r->state, "over_limit") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run %lld cannot be reverted: it changed more rows than elt.undo_max_rows", (long long) r->run_id),
				 errdetail("It updated or deleted more rows than elt.undo_max_rows allowed when it ran, so it kept no before-images."),
				 errhint("Raise elt.undo_max_rows for the runs that must stay revertible.")));
	if (strcmp(r->state, "purged") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run %lld cannot be reverted: its undo was purged", (long long) r->run_id),
				 errdetail("It finished at %s; runs stay revertible for elt.undo_retention, unless elt.run_undo_purge() removes their undo sooner.",
						   r->finished_at)));
	if (get_rel_name(r->target) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("run %lld cannot be reverted: its target no longer exists", (long long) r->run_id)));
}

/* The target's privileges and shape: what the revert itself needs. */
static void
check_target(RevRun *r)
{
	char	   *now = EltUndoShape(r->target);

	if (pg_class_aclcheck(r->target, get_role_oid(r->owner, false),
						  ACL_SELECT | ACL_INSERT | ACL_DELETE |
						  (strcmp(r->mode, "merge") == 0 ? ACL_UPDATE : 0)) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", EltRelDisplayName(r->target)),
				 errdetail("Reverting run %lld deletes the rows it wrote and puts back the rows it replaced, as the transform's owner \"%s\": it needs SELECT, INSERT and DELETE on the table (and UPDATE for a merge run).",
						   (long long) r->run_id, r->owner)));
	if (strcmp(now, r->shape) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run %lld cannot be reverted: table %s changed since", (long long) r->run_id,
						EltRelDisplayName(r->target)),
				 errdetail("When the run wrote it: %s. Now: %s.", r->shape, now),
				 errhint("A revert puts back rows of the shape the run replaced; reverse the schema change first.")));
}

static void
add_blocker(List **out, int64 run_id, const char *why)
{
	Blocker    *b;
	ListCell   *lc;

	foreach(lc, *out)
		if (((Blocker *) lfirst(lc))->run_id == run_id)
			return;
	b = palloc(sizeof(Blocker));
	b->run_id = run_id;
	b->why = why;
	*out = lappend(*out, b);
}

/*
 * The later runs that read rows r wrote: of its target's readers, those
 * whose row lineage holds one of the keys r's row lineage wrote, and, when
 * either kept no row lineage, every one that read the target ('table').
 */
static void
dependents_of(RevRun *r, List **out, List **via)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[3] = {INT8OID, OIDOID, BOOLOID};
	Datum		v[3];
	OwnerSave	os;
	uint64		i;
	MemoryContext cxt = CurrentMemoryContext;

	/* a run that changed nothing has no readers; one that emptied the table has */
	if (r->rows_written == 0 && r->images == 0)
		return;
	owner_begin(&os);
	EltPrepare(&plan,
			   "WITH mine AS MATERIALIZED ("
			   "   SELECT DISTINCT coalesce(e.key::pg_catalog.text, e.key_text) AS k"
			   "   FROM elt.lineage_chunks x, LATERAL elt._lineage_chunk_entries(x.data) e"
			   "   WHERE x.run_id = $1 AND x.rel = $2::pg_catalog.regclass AND x.dir = 't'),"
			   /* the target and the views that read it, at any depth */
			   " via AS (WITH RECURSIVE v(rel) AS ("
			   "           SELECT $2::pg_catalog.oid"
			   "           UNION SELECT w.ev_class FROM v"
			   "           JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
			   "            AND d.refobjid = v.rel AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
			   "           JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid AND w.ev_class <> v.rel)"
			   "         SELECT pg_catalog.array_agg(v.rel) AS rels FROM v),"
			   " readers AS ("
			   "   SELECT t.run_id, t.lineage = 'row' AND $3 AND EXISTS (SELECT 1 FROM mine)"
			   "          AND EXISTS (SELECT 1 FROM elt.lineage_chunks y WHERE y.run_id = t.run_id) AS by_rows"
			   "   FROM elt.transform_runs t"
			   "   JOIN elt.transform_code c ON c.transform_id = t.transform_id AND c.version = t.version"
			   "   WHERE t.run_id > $1 AND t.status = 'succeeded' AND t.rows_written > 0"
			   /* it reads the target, itself or through views */
			   "     AND c.sources::pg_catalog.oid[] OPERATOR(pg_catalog.&&) (SELECT via.rels FROM via)"
			   "     AND NOT EXISTS (SELECT 1 FROM elt.run_reverts v WHERE v.run_id = t.run_id))"
			   " SELECT d.run_id, CASE WHEN d.by_rows THEN 'rows' ELSE 'table' END AS via FROM readers d"
			   " WHERE NOT d.by_rows OR EXISTS ("
			   "   SELECT 1 FROM elt.lineage_chunks y, LATERAL elt._lineage_chunk_entries(y.data) e"
			   "   WHERE y.run_id = d.run_id AND y.rel = $2::pg_catalog.regclass AND y.dir = 's'"
			   "     AND coalesce(e.key::pg_catalog.text, e.key_text) IN (SELECT m.k FROM mine m))"
			   " ORDER BY d.run_id",
			   3, types);
	v[0] = Int64GetDatum(r->run_id);
	v[1] = ObjectIdGetDatum(r->target);
	/*
	 * By rows only when r kept row lineage and deleted nothing: a later run
	 * that read the target after r deleted rows depends on their absence,
	 * which no key records.
	 */
	v[2] = BoolGetDatum(strcmp(r->lineage, "row") == 0 && strcmp(r->mode, "replace") != 0);
	EltExec(plan, v, NULL, 0);
	owner_end(&os);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = EltSpiGetInt64(i, "run_id", &isnull);
		char	   *how = EltSpiGetText(i, "via");

		if (strcmp(how, "rows") == 0)
			add_blocker(out, id, "read rows it wrote");
		else
			add_blocker(out, id, "read its target after it (no row lineage to tell which rows)");
		if (via)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			*via = lappend(*via, pstrdup(how));
			MemoryContextSwitchTo(old);
		}
	}
}

/* The key of a target row, over alias t (as the images keep it). */
static char *
key_sql(RevRun *r)
{
	return EltUndoKeySql(r->target, "t");
}

/* A cursor over a run's before-images, read as the extension's owner. */
static Portal
images_open(int64 run_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {INT8OID};
	Datum		v[1];
	OwnerSave	os;
	Portal		portal;

	owner_begin(&os);
	EltPrepare(&plan,
			   "SELECT i.key, i.image, i.image_xid FROM elt.run_undo_images i WHERE i.run_id = $1",
			   1, types);
	v[0] = Int64GetDatum(run_id);
	/* not read-only: a fresh snapshot, which sees a run that committed while the revert waited */
	portal = SPI_cursor_open(NULL, plan, v, NULL, false);
	owner_end(&os);
	return portal;
}

/* A batch of a run's before-images, as arrays for one statement. */
typedef struct ImageBatch
{
	uint64		n;
	Datum		images;			/* text[] */
	Datum		keys;			/* text[] */
	Datum		xids;			/* bigint[]: the writers of the rows */
} ImageBatch;

/* The next REVERT_BATCH images; false when there are no more. */
static bool
images_next(Portal portal, ImageBatch *b, MemoryContext cxt)
{
	OwnerSave	os;
	ArrayBuildState *images = initArrayResult(TEXTOID, cxt, false);
	ArrayBuildState *keys = initArrayResult(TEXTOID, cxt, false);
	ArrayBuildState *xids = initArrayResult(INT8OID, cxt, false);
	uint64		i;

	owner_begin(&os);
	SPI_cursor_fetch(portal, true, REVERT_BATCH);
	owner_end(&os);
	b->n = SPI_processed;
	for (i = 0; i < b->n; i++)
	{
		bool		isnull;

		accumArrayResult(images, CStringGetTextDatum(EltSpiGetText(i, "image")), false, TEXTOID, cxt);
		accumArrayResult(keys, CStringGetTextDatum(EltSpiGetText(i, "key")), false, TEXTOID, cxt);
		accumArrayResult(xids, Int64GetDatum(EltSpiGetInt64(i, "image_xid", &isnull)), false, INT8OID, cxt);
	}
	b->images = makeArrayResult(images, cxt);
	b->keys = makeArrayResult(keys, cxt);
	b->xids = makeArrayResult(xids, cxt);
	return b->n > 0;
}

/*
 * The primary key of a run's target: its columns (attnums), and in tkey
 * and skey their list over the target row "t" and over an image "(s.r)".
 */
static List *
target_key_columns(Oid target, StringInfo tkey, StringInfo skey)
{
	Relation	rel = table_open(target, AccessShareLock);
	List	   *pk = EltPrimaryKeyColumns(rel);
	ListCell   *lc;

	initStringInfo(tkey);
	initStringInfo(skey);
	foreach(lc, pk)
	{
		const char *c = quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel), lfirst_int(lc) - 1)->attname));

		appendStringInfo(tkey, "%st.%s", tkey->len ? ", " : "", c);
		appendStringInfo(skey, "%s(s.r).%s", skey->len ? ", " : "", c);
	}
	table_close(rel, AccessShareLock);
	return pk;
}

/*
 * The rows r must put back that the target holds under the same key and
 * that are not r's: the runs that wrote them (later, not reverted), or an
 * error when something else did.
 */
static void
holders_of_keys(RevRun *r, List **out)
{
	Oid			xtypes[5] = {OIDOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum		v[5];
	Portal		cur;
	char	   *relname = EltRelDisplayName(r->target);
	char	   *key = key_sql(r);
	MemoryContext cxt = CurrentMemoryContext;
	List	   *pk;
	StringInfoData tcols;
	StringInfoData scols;
	ImageBatch	b;

	if (r->images == 0)
		return;
	/* without a primary key no row can hold a key the revert puts back */
	pk = target_key_columns(r->target, &tcols, &scols);
	if (pk == NIL)
		return;
	cur = images_open(r->run_id);
	while (images_next(cur, &b, cxt))
	{
		ArrayBuildState *keys = NULL;
		ArrayBuildState *xids = NULL;
		uint64		i;
		int			rc;

		/* as the transform's owner: the rows holding those keys that are not r's */
		{
			Oid			ctypes[2] = {TEXTARRAYOID, INT8OID};
			Datum		cv[2];
			EltAsRole	ar;

			cv[0] = b.images;
			cv[1] = Int64GetDatum(r->xid);
			target_begin(&ar, r->owner);
			rc = SPI_execute_with_args(psprintf("SELECT t.xmin::pg_catalog.text::pg_catalog.int8 AS x, %s AS k"
												" FROM %s AS t WHERE (%s) IN (SELECT %s FROM"
												"   (SELECT CAST(i AS %s) AS r FROM pg_catalog.unnest($1) AS i) s)"
												"   AND t.xmin::pg_catalog.text::pg_catalog.int8 <> $2",
												key, relname, tcols.data, scols.data, relname),
									   2, ctypes, cv, NULL, false, 0);
			EltAsRoleEnd(&ar);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
		}
		if (SPI_processed == 0)
			continue;
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			xids = accumArrayResult(xids, Int64GetDatum(EltSpiGetInt64(i, "x", &isnull)), false, INT8OID, cxt);
			keys = accumArrayResult(keys, CStringGetTextDatum(EltSpiGetText(i, "k")), false, TEXTOID, cxt);
		}
		/*
		 * who wrote them: a run by its xid, or a row a revert put back by its
		 * writer.  A row still as the image has it was never changed by r (a
		 * BEFORE trigger cancelled the update or delete): not in the way.
		 */
		v[0] = ObjectIdGetDatum(r->target);
		v[1] = makeArrayResult(xids, cxt);
		v[2] = makeArrayResult(keys, cxt);
		v[3] = b.keys;
		v[4] = b.xids;
		(void) exec_as(NULL, "WITH h AS (SELECT h.x, h.k FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS h(x, k)),"
						" w AS (SELECT h.k, coalesce((SELECT rs.owner_xid FROM elt.run_undo_restored rs"
						"                             WHERE rs.rel = $1::pg_catalog.regclass AND rs.xid = h.x"
						"                               AND rs.key = h.k LIMIT 1), h.x) AS x FROM h),"
						" img AS (SELECT m.k, m.x FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5)) AS m(k, x))"
						" SELECT w.k, w.x, u.run_id, v.run_id IS NOT NULL AS reverted FROM w"
						" LEFT JOIN elt.run_undo u ON u.target = $1::pg_catalog.regclass AND u.xid = w.x"
						" LEFT JOIN elt.run_reverts v ON v.run_id = u.run_id"
						" WHERE NOT EXISTS (SELECT 1 FROM img WHERE img.k = w.k AND img.x = w.x)",
						5, xtypes, v, SPI_OK_SELECT);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int64		x = EltSpiGetInt64(i, "x", &isnull);
			int64		id = EltSpiGetInt64(i, "run_id", &isnull);

			if (x == r->xid)
				continue;		/* r's own row, put back by a revert */
			if (isnull || id < r->run_id || EltSpiGetBool(i, "reverted", &isnull))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("run %lld cannot be reverted: a row it wrote or must put back was changed outside transform runs",
								(long long) r->run_id),
						 errdetail("Table %s holds key %s, written by a transaction that is not a later transform run that kept its undo (a write outside transform runs, or a run made while elt.undo_retention was 0).",
								   relname, EltSpiGetText(i, "k")),
						 errhint("Delete or restore that row by hand, then revert again.")));
			add_blocker(out, id, "wrote a key it must put back");
		}
	}
	SPI_cursor_close(cur);
}

/* The later runs that stand in the way of reverting r, oldest first. */
static List *
blockers_of(RevRun *r)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[3] = {INT8OID, OIDOID, INT8OID};
	Datum		v[3];
	OwnerSave	os;
	List	   *out = NIL;
	uint64		i;

	/* runs that updated or deleted its rows (their images say who wrote them), or may have */
	owner_begin(&os);
	EltPrepare(&plan,
			   "SELECT u.run_id, u.state FROM elt.run_undo u"
			   " WHERE u.target = $2::pg_catalog.regclass AND u.run_id > $1"
			   "   AND NOT EXISTS (SELECT 1 FROM elt.run_reverts v WHERE v.run_id = u.run_id)"
			   "   AND (u.state = 'over_limit' OR $3 OPERATOR(pg_catalog.=) ANY (u.image_xids))"
			   " ORDER BY u.run_id",
			   3, types);
	v[0] = Int64GetDatum(r->run_id);
	v[1] = ObjectIdGetDatum(r->target);
	v[2] = Int64GetDatum(r->xid);
	EltExec(plan, v, NULL, 0);
	owner_end(&os);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = EltSpiGetInt64(i, "run_id", &isnull);

		add_blocker(&out, id, strcmp(EltSpiGetText(i, "state"), "over_limit") == 0
					? "kept no before-images, so it may have changed rows it wrote"
					: "changed or deleted rows it wrote");
	}
	holders_of_keys(r, &out);
	dependents_of(r, &out, NULL);
	return out;
}

static int
cmp_blocker_desc(const ListCell *a, const ListCell *b)
{
	int64		x = ((Blocker *) lfirst(a))->run_id;
	int64		y = ((Blocker *) lfirst(b))->run_id;

	return x < y ? 1 : (x > y ? -1 : 0);
}

/* "run 12 (transform "x", changed ...), ..." for an error's detail. */
static char *
describe_blockers(List *blockers, MemoryContext cxt)
{
	StringInfoData buf;
	ListCell   *lc;
	int			shown = 0;

	initStringInfo(&buf);
	foreach(lc, blockers)
	{
		Blocker    *b = lfirst(lc);
		RevRun		br;

		if (shown == 10)
		{
			appendStringInfo(&buf, ", and %d more", list_length(blockers) - shown);
			break;
		}
		if (!load_run(b->run_id, &br, cxt))
			continue;
		appendStringInfo(&buf, "%srun %lld of transform \"%s\" (%s)", shown ? "; " : "",
						 (long long) b->run_id, br.transform, b->why);
		shown++;
	}
	return buf.data;
}

/* What the apply step of a revert works with (in a subtransaction of its own). */
typedef struct Apply
{
	RevRun	   *r;
	char	   *relname;
	Datum		mine_x;			/* rows a revert put back for r: their xmin, */
	Datum		mine_k;			/* and their key */
	int64		updated;		/* rows r updated or replaced, put back in place */
	int64		inserted;		/* rows r deleted, inserted again */
	int64		removed;		/* rows r added, deleted */
	TransactionId xid;			/* of the subtransaction: carried by the rows put back */
} Apply;

/* "alias is a row of r" with the parameters $n ($n: r's xid, $n+1, $n+2: mine_x, mine_k). */
static char *
mine_pred_of(RevRun *r, const char *alias, int n)
{
	return psprintf("(%s.xmin::pg_catalog.text::pg_catalog.int8 = $%d"
					" OR (%s.xmin::pg_catalog.text::pg_catalog.int8, %s)"
					"    IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($%d), pg_catalog.unnest($%d))))",
					alias, n, alias, EltUndoKeySql(r->target, alias), n + 1, n + 2);
}

/* "t is a row of r". */
static char *
mine_pred(RevRun *r, int n)
{
	return mine_pred_of(r, "t", n);
}


/*
 * Put back r's before-images, REVERT_BATCH at a time.  With in_place, a
 * row r updated is updated back (foreign keys that reference it see no
 * delete); otherwise an image whose row is not there is inserted: the row
 * r deleted (replace), or the row r updated once r's rows are deleted.  A
 * row an image stands for that is still there and not r's (a BEFORE trigger
 * cancelled r's change) is left as it is.  Each batch counts what it must
 * do first, and a trigger or rule that keeps the revert's own write from
 * happening fails the revert.
 */
static void
put_back(Apply *ap, List *pk, bool in_place)
{
	RevRun	   *r = ap->r;
	Portal		cur;
	Relation	rel;
	TupleDesc	desc;
	StringInfoData cols;
	StringInfoData vals;
	StringInfoData set_cols;
	StringInfoData set_vals;
	StringInfoData tkey;
	StringInfoData skey;
	bool		override = false;
	int			a;
	char	   *insert;
	char	   *insert_count;
	char	   *missing;
	char	   *update_count = NULL;
	ImageBatch	b;
	char	   *update = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	if (r->images == 0)
		return;
	/* every column but generated ones, identity values as they were */
	rel = table_open(r->target, AccessShareLock);
	desc = RelationGetDescr(rel);
	initStringInfo(&cols);
	initStringInfo(&vals);
	initStringInfo(&set_cols);
	initStringInfo(&set_vals);
	for (a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		const char *c = quote_identifier(NameStr(att->attname));

		if (att->attisdropped || att->attgenerated)
			continue;
		if (att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS)
			override = true;
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", c);
		appendStringInfo(&vals, "%s(s.r).%s", vals.len ? ", " : "", c);
		/* an update puts back what merge's DO UPDATE can change: not the key, not ALWAYS identities */
		if (list_member_int(pk, att->attnum) || att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS)
			continue;
		appendStringInfo(&set_cols, "%s%s", set_cols.len ? ", " : "", c);
		appendStringInfo(&set_vals, "%s(s.r).%s", set_vals.len ? ", " : "", c);
	}
	table_close(rel, AccessShareLock);
	(void) target_key_columns(r->target, &tkey, &skey);
	if (pk != NIL)
	{
		const char *first = quote_identifier(get_attname(r->target, linitial_int(pk), false));

		char	   *images = psprintf("(SELECT CAST(i AS %s) AS r FROM pg_catalog.unnest($1) AS i) s",
									  ap->relname);

		update = psprintf("UPDATE %s AS t SET %s FROM %s WHERE (%s) = (%s) AND %s",
						  ap->relname,
						  set_cols.len ? psprintf("(%s) = ROW(%s)", set_cols.data, set_vals.data)
						  : psprintf("%s = t.%s", first, first),
						  images, tkey.data, skey.data, mine_pred(r, 2));
		update_count = psprintf("SELECT pg_catalog.count(*) AS n FROM %s AS t, %s WHERE (%s) = (%s) AND %s",
								ap->relname, images, tkey.data, skey.data, mine_pred(r, 2));
		missing = psprintf("FROM %s WHERE NOT EXISTS (SELECT 1 FROM %s AS t WHERE (%s) = (%s))",
						   images, ap->relname, tkey.data, skey.data);
	}
	else
		missing = psprintf("FROM (SELECT CAST(m.i AS %s) AS r, m.k, m.x"
						   "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($5), pg_catalog.unnest($6)) AS m(i, k, x)) s"
						   " WHERE NOT EXISTS (SELECT 1 FROM %s AS t WHERE t.xmin::pg_catalog.text::pg_catalog.int8 = s.x"
						   "                   AND %s = s.k)",
						   ap->relname, ap->relname, key_sql(r));
	insert = psprintf("INSERT INTO %s (%s)%s SELECT %s %s",
					  ap->relname, cols.data, override ? " OVERRIDING SYSTEM VALUE" : "", vals.data, missing);
	insert_count = psprintf("SELECT pg_catalog.count(*) AS n %s", missing);
	cur = images_open(r->run_id);
	while (images_next(cur, &b, cxt))
	{
		Oid			itypes[6] = {TEXTARRAYOID, INT8OID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
		Datum		iv[6];
		int64		want;
		int64		done;
		bool		isnull;

		iv[0] = b.images;
		iv[1] = Int64GetDatum(r->xid);
		iv[2] = ap->mine_x;
		iv[3] = ap->mine_k;
		iv[4] = b.keys;
		iv[5] = b.xids;
		if (in_place)
		{
			exec_as(r, update_count, 4, itypes, iv, SPI_OK_SELECT);
			want = EltSpiGetInt64(0, "n", &isnull);
			done = (int64) exec_as(r, update, 4, itypes, iv, SPI_OK_UPDATE);
			ap->updated += done;
		}
		else
		{
			exec_as(r, insert_count, pk != NIL ? 1 : 6, itypes, iv, SPI_OK_SELECT);
			want = EltSpiGetInt64(0, "n", &isnull);
			done = (int64) exec_as(r, insert, pk != NIL ? 1 : 6, itypes, iv, SPI_OK_INSERT);
			ap->inserted += done;
		}
		if (done != want)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("run %lld cannot be reverted: a trigger or rule on %s kept %lld of the rows it replaced from being put back",
							(long long) r->run_id, ap->relname, (long long) (want - done)),
					 errdetail("The revert %s them as the transform's owner, and the table's BEFORE triggers or rules skipped them.",
							   in_place ? "updated" : "inserted"),
					 errhint("Nothing was reverted. Disable the trigger for the revert (ALTER TABLE … DISABLE TRIGGER) or put the rows back by hand.")));
	}
	SPI_cursor_close(cur);
}

/* Does a foreign key reference the target (or a table it is a partition of)? */
static bool
target_referenced(Oid target)
{
	Oid			types[1] = {OIDOID};
	Datum		v[1];
	bool		isnull;

	v[0] = ObjectIdGetDatum(target);
	(void) exec_as(NULL, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.contype = 'f'"
					"  AND c.confrelid IN (SELECT $1 UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i"
					"                      WHERE i.inhrelid = $1)) AS referenced",
					1, types, v, SPI_OK_SELECT);
	return EltSpiGetBool(0, "referenced", &isnull);
}

/*
 * Deleting the rows r added must not reach other tables: refuse when a row
 * of another table references one of them through a foreign key that would
 * cascade, or set it to NULL or to its default.  Asked as the extension's
 * owner (it reads the referencing tables, as the foreign key's own action
 * would), and answered with no value of theirs.
 */
static void
check_cascading_keys(Apply *ap)
{
	RevRun	   *r = ap->r;
	Oid			types[1] = {OIDOID};
	Datum		v[1];
	uint64		i,
				nkeys;
	List	   *checks = NIL;
	List	   *names = NIL;
	ListCell   *l1,
			   *l2;
	MemoryContext cxt = CurrentMemoryContext;

	v[0] = ObjectIdGetDatum(r->target);
	(void) exec_as(NULL, "SELECT c.conname::pg_catalog.text AS conname,"
					"       c.conrelid::pg_catalog.regclass::pg_catalog.text AS rel,"
					"       c.conrelid IN (SELECT $1 UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i"
					"                      WHERE i.inhrelid = $1) AS self,"
					"       CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL'"
					"            ELSE 'SET DEFAULT' END AS action,"
					"       (SELECT pg_catalog.string_agg(pg_catalog.format('c.%I', a.attname), ', ' ORDER BY k.n)"
					"        FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY k(attnum, n)"
					"        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS fk,"
					"       (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY k.n)"
					"        FROM pg_catalog.unnest(c.confkey) WITH ORDINALITY k(attnum, n)"
					"        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum) AS pk"
					" FROM pg_catalog.pg_constraint c"
					" WHERE c.contype = 'f' AND c.confdeltype IN ('c', 'n', 'd') AND c.conparentid = 0"
					"   AND c.confrelid IN (SELECT $1 UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i"
					"                       WHERE i.inhrelid = $1)"
					" ORDER BY 1",
					1, types, v, SPI_OK_SELECT);
	nkeys = SPI_processed;
	for (i = 0; i < nkeys; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		bool		isnull;

		/* a row of r that references another is deleted with it: not in the way */
		checks = lappend(checks, psprintf("SELECT EXISTS (SELECT 1 FROM %s AS t JOIN %s AS c ON (%s) = (%s) WHERE %s%s) AS hit",
										  ap->relname, EltSpiGetText(i, "rel"), EltSpiGetText(i, "pk"),
										  EltSpiGetText(i, "fk"), mine_pred(r, 1),
										  EltSpiGetBool(i, "self", &isnull)
										  ? psprintf(" AND NOT %s", mine_pred_of(r, "c", 1)) : ""));
		names = lappend(names, psprintf("Foreign key \"%s\" of %s references it ON DELETE %s.",
										EltSpiGetText(i, "conname"), EltSpiGetText(i, "rel"),
										EltSpiGetText(i, "action")));
		MemoryContextSwitchTo(old);
	}
	forboth(l1, checks, l2, names)
	{
		Oid			ptypes[3] = {INT8OID, INT8ARRAYOID, TEXTARRAYOID};
		Datum		pv[3];
		bool		isnull;

		pv[0] = Int64GetDatum(r->xid);
		pv[1] = ap->mine_x;
		pv[2] = ap->mine_k;
		/* not read-only: it must see the rows put back in place just now */
		(void) exec_as(NULL, (char *) lfirst(l1), 3, ptypes, pv, SPI_OK_SELECT);
		if (EltSpiGetBool(0, "hit", &isnull))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("run %lld cannot be reverted: deleting the rows it added to %s would change rows that reference them",
							(long long) r->run_id, ap->relname),
					 errdetail_internal("%s", (char *) lfirst(l2)),
					 errhint("Delete or change the rows that reference them first (the revert does not decide that for you), then revert again.")));
	}
}

/* The body of a revert's subtransaction: the rows of the target, then the record of what was put back. */
static void
apply_revert(void *arg)
{
	Apply	   *ap = arg;
	RevRun	   *r = ap->r;
	Relation	rel;
	List	   *pk;
	Oid			types[3] = {INT8OID, INT8ARRAYOID, TEXTARRAYOID};
	Datum		v[3];
	char	   *count_sql;
	char	   *delete_sql;
	int64		mine;
	OwnerSave	os;

	/* every row the revert writes carries this subtransaction's id, unlike any other */
	ap->xid = GetCurrentTransactionId();
	rel = table_open(r->target, AccessShareLock);
	pk = EltPrimaryKeyColumns(rel);
	table_close(rel, AccessShareLock);
	v[0] = Int64GetDatum(r->xid);
	v[1] = ap->mine_x;
	v[2] = ap->mine_k;

	/* r's rows are all there, as it wrote them */
	count_sql = psprintf("SELECT pg_catalog.count(*) AS n FROM %s AS t WHERE %s", ap->relname, mine_pred(r, 1));
	exec_as(r, count_sql, 3, types, v, SPI_OK_SELECT);
	{
		bool		isnull;

		mine = EltSpiGetInt64(0, "n", &isnull);
	}
	if (mine != r->rows_written)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run %lld cannot be reverted: %lld of the %lld rows it wrote to %s are no longer as it wrote them",
						(long long) r->run_id, (long long) (r->rows_written - mine),
						(long long) r->rows_written, ap->relname),
				 errdetail("They were changed or deleted since by writes that are not transform runs (UPDATE, DELETE, TRUNCATE, or a rewrite such as pg_repack that gives rows new transaction ids)."),
				 errhint("Nothing was reverted. Put those rows back as the run wrote them, or correct the table by hand.")));

	/*
	 * A merge run's updated rows, in a table that foreign keys reference,
	 * are updated back in place: deleting them would fire the keys' ON
	 * DELETE actions.  Everywhere else r's rows are deleted first, so that
	 * the rows put back meet no unique value of theirs.
	 */
	delete_sql = psprintf("DELETE FROM %s AS t WHERE %s", ap->relname, mine_pred(r, 1));
	if (pk != NIL && strcmp(r->mode, "merge") == 0 && target_referenced(r->target))
		put_back(ap, pk, true);
	/* what is left of r's rows, it added (or all of them) */
	if (mine > ap->updated)
		check_cascading_keys(ap);
	ap->removed = exec_as(r, delete_sql, 3, types, v, SPI_OK_DELETE);
	put_back(ap, pk, false);
	if (ap->removed + ap->updated != r->rows_written)
		elog(ERROR, "revert of run %lld: %lld rows deleted and %lld updated, of %lld it wrote",
			 (long long) r->run_id, (long long) ap->removed, (long long) ap->updated,
			 (long long) r->rows_written);

	/* rows put back are the runs' that wrote them; what was r's is gone */
	{
		static SPIPlanPtr plan = NULL;
		Oid			mtypes[3] = {INT8OID, OIDOID, INT8OID};
		Datum		mv[3];

		owner_begin(&os);
		EltPrepare(&plan,
				   "WITH gone AS (DELETE FROM elt.run_undo_restored s"
				   "              WHERE s.rel = $2::pg_catalog.regclass AND s.owner_xid = (SELECT u.xid FROM elt.run_undo u WHERE u.run_id = $1))"
				   " INSERT INTO elt.run_undo_restored (rel, xid, key, owner_xid, restored_at)"
				   " SELECT $2::pg_catalog.regclass, $3, i.key, i.image_xid, pg_catalog.now()"
				   " FROM elt.run_undo_images i WHERE i.run_id = $1"
				   /* only rows of runs that can still be reverted need to be found again */
				   "   AND EXISTS (SELECT 1 FROM elt.run_undo u WHERE u.target = $2::pg_catalog.regclass"
				   "               AND u.xid = i.image_xid AND u.state <> 'purged')",
				   3, mtypes);
		mv[0] = Int64GetDatum(r->run_id);
		mv[1] = ObjectIdGetDatum(r->target);
		mv[2] = Int64GetDatum((int64) ap->xid);
		EltExec(plan, mv, NULL, 0);
		owner_end(&os);
	}
}

/* Revert one run: its blockers first (with cascade), then its rows. */
static void
revert_one(Revert *rv, int64 run_id, int64 cascade_of)
{
	RevRun		r;
	List	   *blockers;
	char	   *relname;
	int64		removed;
	int64		restored;
	Apply		ap;
	OwnerSave	os;
	MemoryContext cxt = CurrentMemoryContext;

	CHECK_FOR_INTERRUPTS();
	check_stack_depth();
	if (done_has(rv->done, run_id))
		return;
	if (!load_run(run_id, &r, cxt))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run %lld does not exist", (long long) run_id)));
	check_run(rv, &r, cascade_of);
	/* the lock orders us with the runs and reverts of the target; then read it again */
	LockRelationOid(r.target, ShareRowExclusiveLock);
	if (!load_run(run_id, &r, cxt))
		elog(ERROR, "run %lld disappeared", (long long) run_id);
	check_run(rv, &r, cascade_of);
	check_target(&r);
	relname = EltRelDisplayName(r.target);

	while ((blockers = blockers_of(&r)) != NIL)
	{
		ListCell   *lc;

		if (!rv->cascade)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("run %lld cannot be reverted alone: later runs depend on what it wrote",
							(long long) r.run_id),
					 errdetail("%s.", describe_blockers(blockers, cxt)),
					 errhint("Revert them first, or revert them with it, newest first: elt.run_revert(%lld, reason, cascade => true).",
							 (long long) r.run_id)));
		list_sort(blockers, cmp_blocker_desc);
		foreach(lc, blockers)
			revert_one(rv, ((Blocker *) lfirst(lc))->run_id, r.run_id);
	}

	/* the rows a revert put back for r, then the target, in a subtransaction of its own */
	{
		static SPIPlanPtr mine_plan = NULL;
		Oid			types[2] = {OIDOID, INT8OID};
		Datum		v[2];
		ArrayBuildState *xs;
		ArrayBuildState *ks;
		uint64		i;
		ErrorData  *edata;

		owner_begin(&os);
		EltPrepare(&mine_plan,
				   "SELECT s.xid, s.key FROM elt.run_undo_restored s"
				   " WHERE s.rel = $1::pg_catalog.regclass AND s.owner_xid = $2",
				   2, types);
		v[0] = ObjectIdGetDatum(r.target);
		v[1] = Int64GetDatum(r.xid);
		EltExec(mine_plan, v, NULL, 0);
		owner_end(&os);
		xs = initArrayResult(INT8OID, cxt, false);
		ks = initArrayResult(TEXTOID, cxt, false);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			accumArrayResult(xs, Int64GetDatum(EltSpiGetInt64(i, "xid", &isnull)), false, INT8OID, cxt);
			accumArrayResult(ks, CStringGetTextDatum(EltSpiGetText(i, "key")), false, TEXTOID, cxt);
		}
		memset(&ap, 0, sizeof(ap));
		ap.r = &r;
		ap.relname = relname;
		ap.mine_x = makeArrayResult(xs, cxt);
		ap.mine_k = makeArrayResult(ks, cxt);
		edata = EltTrySubxact(apply_revert, &ap);
		if (edata != NULL)
			ReThrowError(edata);
		removed = ap.removed;
		restored = ap.updated + ap.inserted;
	}

	/* record: what was put back and for whom, the revert; the run's lineage and images go */
	{
		static SPIPlanPtr rec_plan = NULL;
		Oid			types[6] = {INT8OID, NAMEOID, TEXTOID, INT8OID, INT8OID, INT8OID};
		Datum		v[6];
		char		n[6] = {' ', ' ', ' ', ' ', ' ', ' '};
		EltJson		details;

		owner_begin(&os);
		EltPrepare(&rec_plan,
				   "WITH v AS (INSERT INTO elt.run_reverts (run_id, reverted_at, reverted_by, reason, cascade_of,"
				   "                                    rows_removed, rows_restored)"
				   "       VALUES ($1, pg_catalog.now(), $2, $3, $4, $5, $6)),"
				   " l AS (DELETE FROM elt.lineage_chunks c WHERE c.run_id = $1)"
				   " DELETE FROM elt.run_undo_images i WHERE i.run_id = $1",
				   6, types);
		v[0] = Int64GetDatum(r.run_id);
		v[1] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(rv->caller, false)));
		v[2] = CStringGetTextDatum(rv->reason);
		v[3] = Int64GetDatum(cascade_of);
		if (cascade_of == 0)
			n[3] = 'n';
		v[4] = Int64GetDatum(removed);
		v[5] = Int64GetDatum(restored);
		EltExec(rec_plan, v, n, 0);
		EltJsonBegin(&details);
		EltJsonInt(&details, "run_id", r.run_id);
		EltJsonString(&details, "target", relname);
		EltJsonInt(&details, "rows_removed", removed);
		EltJsonInt(&details, "rows_restored", restored);
		if (cascade_of)
			EltJsonInt(&details, "cascade_of", cascade_of);
		EltAuditRecord(rv->caller, "run_revert", r.transform, EltJsonFinish(&details), rv->reason);
		owner_end(&os);
	}

	{
		MemoryContext old = MemoryContextSwitchTo(rv->cxt);
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		int64	   *id = palloc(sizeof(int64));

		*id = r.run_id;
		rv->done = lappend(rv->done, id);
		values[0] = Int64GetDatum(r.run_id);
		values[1] = CStringGetTextDatum(r.transform);
		values[2] = ObjectIdGetDatum(r.target);
		values[3] = Int64GetDatum(removed);
		values[4] = Int64GetDatum(restored);
		values[5] = Int64GetDatum(cascade_of);
		nulls[5] = cascade_of == 0;
		tuplestore_putvalues(rv->out, rv->desc, values, nulls);
		MemoryContextSwitchTo(old);
	}
}

/*
 * The transform runs a run id stands for: itself, or the transform runs of
 * a finished pipeline run, newest first.  Refuses what cannot be reverted.
 */
static List *
runs_of(int64 run_id, MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {INT8OID};
	Datum		v[1];
	OwnerSave	os;
	List	   *out = NIL;
	uint64		i;
	char	   *kind;

	owner_begin(&os);
	EltPrepare(&plan,
			   "SELECT 'transform' AS kind, NULL::pg_catalog.int8 AS step_run, true AS finished, NULL::pg_catalog.text AS role"
			   " FROM elt.transform_runs t WHERE t.run_id = $1"
			   " UNION ALL"
			   " SELECT r.kind, s.transform_run_id, m.run_id IS NOT NULL, r.role::pg_catalog.text"
			   " FROM elt.run_defs r"
			   " LEFT JOIN elt.run_manifests m ON m.run_id = r.run_id"
			   " LEFT JOIN elt.run_steps s ON s.run_id = r.run_id AND s.transform_run_id IS NOT NULL"
			   " WHERE r.run_id = $1 AND r.kind <> 'transform'"
			   " ORDER BY 2 DESC NULLS LAST",
			   1, types);
	v[0] = Int64GetDatum(run_id);
	EltExec(plan, v, NULL, 0);
	owner_end(&os);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run %lld does not exist", (long long) run_id),
				 errhint("elt.transform_run_history and elt.runs list the runs.")));
	kind = EltSpiGetText(0, "kind");
	if (strcmp(kind, "transform") == 0)
	{
		int64	   *id = MemoryContextAlloc(cxt, sizeof(int64));

		*id = run_id;
		return list_make1(id);
	}
	{
		bool		isnull;
		Oid			role = get_role_oid(EltSpiGetText(0, "role"), true);

		if (!EltRoleMayActAs(GetUserId(), role))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to revert run %lld", (long long) run_id),
					 errdetail("Only members of the role that began it can revert a pipeline run.")));
		if (strcmp(kind, "replay") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("run %lld is a replay: it wrote a sandbox, not its targets", (long long) run_id),
					 errhint("Drop the replay's schema to undo it.")));
		if (!EltSpiGetBool(0, "finished", &isnull))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("run %lld is not finished", (long long) run_id),
					 errhint("End it with elt.run_end() first (in the session that began it).")));
	}
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		step = EltSpiGetInt64(i, "step_run", &isnull);
		int64	   *id;

		if (isnull)
			continue;
		id = MemoryContextAlloc(cxt, sizeof(int64));
		*id = step;
		out = lappend(out, id);
	}
	if (out == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run %lld ran no transform: there is nothing to revert", (long long) run_id)));
	return out;
}

PG_FUNCTION_INFO_V1(elt_run_revert);

/*
 * elt.run_revert(run_id, reason, cascade): put every relation the run
 * wrote back as it was just before it, in the caller's transaction.
 */
Datum
elt_run_revert(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Revert		rv;
	int64		run_id;
	List	   *runs;
	ListCell   *lc;
	int			guc_level;

	EltRequireCatalog("run_undo");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("run_id must not be null")));
	run_id = PG_GETARG_INT64(0);
	memset(&rv, 0, sizeof(rv));
	rv.reason = EltAuditReason(PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (rv.reason == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a reason is required to revert a run"),
				 errhint("Pass reason => '...', or set elt.reason.")));
	rv.cascade = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("elt.run_revert() runs only at isolation level READ COMMITTED"),
				 errdetail("Under a transaction snapshot, a run that wrote the same rows meanwhile would not be seen."),
				 errhint("Revert in a READ COMMITTED transaction.")));
	rv.caller = GetUserId();
	rv.cxt = CurrentMemoryContext;

	InitMaterializedSRF(fcinfo, 0);
	rv.out = rsinfo->setResult;
	rv.desc = rsinfo->setDesc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* names qualified, values printed and read back the canonical way */
	guc_level = EltPinPrintSettings();
	runs = runs_of(run_id, rv.cxt);
	foreach(lc, runs)
		revert_one(&rv, *(int64 *) lfirst(lc), 0);
	AtEOXact_GUC(true, guc_level);
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(elt_run_dependents);

/*
 * elt.run_dependents(run_id): the runs that read what the run wrote, and
 * the runs that read what those wrote, with their distance.
 */
Datum
elt_run_dependents(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext cxt = CurrentMemoryContext;
	int64		run_id;
	List	   *frontier;
	List	   *seen = NIL;
	int			depth = 0;
	RevRun		r;
	ListCell   *lc;

	EltRequireCatalog("run_undo");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("run_id must not be null")));
	run_id = PG_GETARG_INT64(0);
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	frontier = runs_of(run_id, cxt);
	foreach(lc, frontier)
	{
		int64	   *id = lfirst(lc);

		if (!load_run(*id, &r, cxt))
			continue;
		if (!EltRoleSeesRole(GetUserId(), get_role_oid(r.role, true)) &&
			!EltRoleSeesRole(GetUserId(), get_role_oid(r.owner, true)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to see the dependents of run %lld", (long long) run_id),
					 errdetail("Only members of the role that ran it or of the transform's owner, and elt_reader, see what read its rows.")));
	}
	while (frontier != NIL)
	{
		List	   *next = NIL;

		depth++;
		foreach(lc, frontier)
		{
			int64	   *id = lfirst(lc);
			List	   *found = NIL;
			List	   *via = NIL;
			ListCell   *l1,
					   *l2;

			if (!load_run(*id, &r, cxt) || strcmp(r.status, "succeeded") != 0)
				continue;
			dependents_of(&r, &found, &via);
			forboth(l1, found, l2, via)
			{
				Blocker    *b = lfirst(l1);
				RevRun		d;
				Datum		values[6];
				bool		nulls[6] = {false, false, false, false, false, false};
				MemoryContext old;
				int64	   *nid;

				if (done_has(seen, b->run_id) || !load_run(b->run_id, &d, cxt))
					continue;
				old = MemoryContextSwitchTo(cxt);
				nid = palloc(sizeof(int64));
				*nid = b->run_id;
				seen = lappend(seen, nid);
				next = lappend(next, nid);
				values[0] = Int64GetDatum(d.run_id);
				values[1] = Int32GetDatum(depth);
				values[2] = CStringGetTextDatum(d.transform);
				values[3] = ObjectIdGetDatum(d.target);
				values[4] = CStringGetTextDatum((char *) lfirst(l2));
				values[5] = DirectFunctionCall3(timestamptz_in, CStringGetDatum(d.finished_at),
												ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
				MemoryContextSwitchTo(old);
			}
		}
		frontier = next;
	}
	SPI_finish();
	return (Datum) 0;
}
