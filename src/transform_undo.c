/*
 * transform_undo.c — what a transform run keeps so that it can be reverted:
 * the transaction id its rows carry, the shape of its target, and the
 * before-images of the rows it updated (merge) or deleted (replace).
 *
 * Owns: the capture of before-images while a run's statement executes
 * (EltUndoBegin/End/Drop, elt._undo_image(), elt._undo_pending()), their
 * record with the run (EltUndoRecord: elt.run_undo, elt.run_undo_images),
 * their retention (elt.undo_max_rows, elt.undo_retention,
 * elt.run_undo_purge()).  The revert itself is transform_revert.c.
 *
 * A run's statement calls elt._undo_image(token, xmin, key, row) for each
 * row it is about to change: in the WHERE of ON CONFLICT DO UPDATE (merge),
 * which PostgreSQL evaluates once per row it locked and will update, and in
 * the WHERE of replace's DELETE.  The row is kept as its record text under
 * the canonical print settings (record_in reads it back whatever the
 * session's DateStyle or TimeZone), in a tuplestore that spills to disk
 * past work_mem.  Past elt.undo_max_rows rows the run keeps none and is not
 * revertible.  The rows a run inserted need nothing: they carry its
 * transaction id.
 *
 * Layering: part of the transform engine, called by transform_run.c (the
 * capture, the record) and transform_revert.c (the settings); calls util
 * and audit.  One capture at a time per backend, checked by the run's
 * token; its memory lives in the run's context.  SPI only in the record and
 * the purge, as the extension's owner (inside the caller's catalog write).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "access/table.h"

#include "audit.h"
#include "lineage.h"
#include "lineage_keys.h"
#include "roles.h"
#include "transform.h"
#include "util.h"

/* elt.undo_max_rows: before-images a run keeps at most */
int			elt_undo_max_rows = 1000000;

/* elt.undo_retention (seconds): how long a run stays revertible; 0: never */
int			elt_undo_retention = 7 * 24 * 3600;

typedef struct UndoCapture
{
	int64		token;
	int64		n;				/* images kept */
	bool		over;			/* more than elt.undo_max_rows */
	Tuplestorestate *store;
	TupleDesc	desc;
	FmgrInfo	recout;
	MemoryContext cxt;
} UndoCapture;

static UndoCapture *undo = NULL;
static bool undo_pending_open = false;

/* Start keeping before-images for the run with this token. */
void
EltUndoBegin(int64 token, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	UndoCapture *u = palloc0(sizeof(UndoCapture));

	u->token = token;
	u->cxt = cxt;
	u->desc = CreateTemplateTupleDesc(3);
	TupleDescInitEntry(u->desc, 1, "key", TEXTOID, -1, 0);
	TupleDescInitEntry(u->desc, 2, "image", TEXTOID, -1, 0);
	TupleDescInitEntry(u->desc, 3, "image_xid", INT8OID, -1, 0);
	u->store = tuplestore_begin_heap(false, false, work_mem);
	fmgr_info_cxt(F_RECORD_OUT, &u->recout, cxt);
	MemoryContextSwitchTo(old);
	undo = u;
}

/* The statement has run: how many images were kept, and whether too many. */
void
EltUndoEnd(int64 *images, bool *over)
{
	if (undo == NULL)
		elog(ERROR, "no undo capture is running");
	*images = undo->n;
	*over = undo->over;
	undo->token = 0;			/* no more images */
}

/* Forget the capture (its memory goes with the run's context). */
void
EltUndoDrop(void)
{
	undo = NULL;
	undo_pending_open = false;
}

/*
 * Is undo kept: elt.undo_retention > 0, and a catalog of 0.9.0 or later
 * (a run under an older one, before ALTER EXTENSION UPDATE, keeps none).
 */
bool
EltUndoEnabled(void)
{
	return elt_undo_retention > 0 && OidIsValid(EltCatalogRelid("run_undo"));
}

PG_FUNCTION_INFO_V1(elt_undo_image);

/*
 * elt._undo_image(token, xmin, key, row): keep the row a run is about to
 * update or delete.  Always true.
 */
Datum
elt_undo_image(PG_FUNCTION_ARGS)
{
	UndoCapture *u = undo;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	MemoryContext old;

	if (u == NULL || u->token == 0 || PG_ARGISNULL(0) || PG_GETARG_INT64(0) != u->token)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("elt._undo_image() is used only by elt.transform_run()")));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		elog(ERROR, "elt._undo_image() needs a transaction id, a key and a row");
	if (u->over)
		PG_RETURN_BOOL(true);
	if (u->n >= elt_undo_max_rows)
	{
		/* too many: keep none, the run is not revertible */
		u->over = true;
		tuplestore_end(u->store);
		u->store = NULL;
		PG_RETURN_BOOL(true);
	}
	old = MemoryContextSwitchTo(u->cxt);
	values[0] = PointerGetDatum(PG_GETARG_TEXT_PP(2));
	values[1] = CStringGetTextDatum(EltKeyTextCall(&u->recout, PG_GETARG_DATUM(3)));
	values[2] = Int64GetDatum((int64) PG_GETARG_TRANSACTIONID(1));
	tuplestore_putvalues(u->store, u->desc, values, nulls);
	MemoryContextSwitchTo(old);
	u->n++;
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(elt_undo_pending);

/* elt._undo_pending(): the before-images of the current run, once. */
Datum
elt_undo_pending(PG_FUNCTION_ARGS)
{
	UndoCapture *u = undo;
	Tuplestorestate *none = NULL;

	if (!undo_pending_open)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("elt._undo_pending() is used only by elt.transform_run()")));
	if (u == NULL)
		return EltReturnStoreOnce(fcinfo, &none, NULL);
	return EltReturnStoreOnce(fcinfo, &u->store, u->desc);
}

/*
 * The shape of a relation as undo needs it to stay: its columns (name and
 * type, in order) and its primary key.  A revert refuses a target whose
 * shape changed since the run: its before-images would not read back.
 */
char *
EltUndoShape(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;
	List	   *pk = EltPrimaryKeyColumns(rel);
	ListCell   *lc;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped)
			continue;
		/* qualified: the same text whatever the search_path */
		appendStringInfo(&buf, "%s%s %s", buf.len ? ", " : "", quote_identifier(NameStr(a->attname)),
						 format_type_extended(a->atttypid, a->atttypmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
	}
	appendStringInfoString(&buf, "; primary key (");
	foreach(lc, pk)
		appendStringInfo(&buf, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(NameStr(TupleDescAttr(desc, lfirst_int(lc) - 1)->attname)));
	appendStringInfoChar(&buf, ')');
	table_close(rel, AccessShareLock);
	return buf.data;
}

/*
 * The key of a row of relid as undo keeps it, over the row alias: the
 * canonical text of its primary key as a row, or of the whole row when it
 * has none.
 */
char *
EltUndoKeySql(Oid relid, const char *alias)
{
	Relation	rel = table_open(relid, AccessShareLock);
	List	   *pk = EltPrimaryKeyColumns(rel);
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	if (pk == NIL)
		appendStringInfo(&buf, "elt._lineage_key_text(%s)", alias);
	else
	{
		appendStringInfoString(&buf, "elt._lineage_key_text(ROW(");
		foreach(lc, pk)
			appendStringInfo(&buf, "%s%s.%s", foreach_current_index(lc) ? ", " : "", alias,
							 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel),
																	lfirst_int(lc) - 1)->attname)));
		appendStringInfoString(&buf, "))");
	}
	table_close(rel, AccessShareLock);
	return buf.data;
}

/* The call a run's statement makes for a row it changes, over the row alias. */
char *
EltUndoImageSql(Oid relid, const char *alias)
{
	return psprintf("elt._undo_image($1, %s.xmin, %s, %s)", alias, EltUndoKeySql(relid, alias), alias);
}

/* Apply elt.undo_retention to the runs of a transform (at most 100 a call). */
static void
undo_retire(int64 transform_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		v[2];

	EltPrepare(&plan,
			   "WITH o AS (SELECT u.run_id FROM elt.run_undo u"
			   "           WHERE u.transform_id = $1 AND u.state <> 'purged'"
			   "             AND u.finished_at < pg_catalog.now() - pg_catalog.make_interval(secs => $2)"
			   "           ORDER BY u.finished_at LIMIT 100),"
			   " i AS (DELETE FROM elt.run_undo_images m USING o WHERE m.run_id = o.run_id)"
			   " UPDATE elt.run_undo u SET state = 'purged', images = 0 FROM o WHERE u.run_id = o.run_id",
			   2, types);
	v[0] = Int64GetDatum(transform_id);
	v[1] = Int32GetDatum(elt_undo_retention);
	EltExec(plan, v, NULL, 0);
}

/*
 * Record what a run keeps for its revert (as the extension's owner, in the
 * run's catalog write): its transaction id (0 when it wrote nothing), the
 * target's shape, and the before-images, each with the transaction id of
 * the run that wrote it (a row a revert put back counts as its writer's).
 */
void
EltUndoRecord(int64 run_id, int64 transform_id, Oid target, TransactionId xid,
			  const char *shape, TimestampTz finished)
{
	static SPIPlanPtr undo_plan = NULL;
	static SPIPlanPtr images_plan = NULL;
	static SPIPlanPtr plain_plan = NULL;
	Oid			types[8] = {INT8OID, INT8OID, OIDOID, INT8OID, TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID};
	Oid			itypes[2] = {INT8OID, OIDOID};
	Datum		v[8];
	int64		images = 0;
	bool		over = false;

	if (undo != NULL)
		EltUndoEnd(&images, &over);
	EltPrepare(&undo_plan,
			   "INSERT INTO elt.run_undo (run_id, transform_id, target, xid, shape, images, state, finished_at)"
			   " VALUES ($1, $2, $3::pg_catalog.regclass, $4, $5, $6, $7, $8)",
			   8, types);
	v[0] = Int64GetDatum(run_id);
	v[1] = Int64GetDatum(transform_id);
	v[2] = ObjectIdGetDatum(target);
	v[3] = Int64GetDatum((int64) xid);
	v[4] = CStringGetTextDatum(shape);
	v[5] = Int64GetDatum(over ? 0 : images);
	v[6] = CStringGetTextDatum(over ? "over_limit" : "kept");
	v[7] = TimestampTzGetDatum(finished);
	EltExec(undo_plan, v, NULL, 0);
	if (!over && images > 0)
	{
		/*
		 * The images, each with the run that wrote its row (a row a revert
		 * put back: the run that first wrote it, looked up only when there
		 * are such rows), and the distinct writers on the run's record, for
		 * a revert to find the later runs that changed a run's rows.
		 */
		bool		restored = false;
		SPIPlanPtr volatile plan;

		{
			Oid			rtypes[1] = {OIDOID};
			Datum		rv[1];
			static SPIPlanPtr any_plan = NULL;
			bool		isnull;

			EltPrepare(&any_plan,
					   "SELECT EXISTS (SELECT 1 FROM elt.run_undo_restored r WHERE r.rel = $1::pg_catalog.regclass) AS any",
					   1, rtypes);
			rv[0] = ObjectIdGetDatum(target);
			EltExec(any_plan, rv, NULL, 1);
			restored = EltSpiGetBool(0, "any", &isnull);
		}
		if (restored)
			plan = EltPrepare(&images_plan,
							  "WITH i AS (INSERT INTO elt.run_undo_images (run_id, key, image, image_xid)"
							  " SELECT $1, p.key, p.image,"
							  "        coalesce((SELECT r.owner_xid FROM elt.run_undo_restored r"
							  "                  WHERE r.rel = $2::pg_catalog.regclass AND r.xid = p.image_xid"
							  "                    AND r.key = p.key LIMIT 1), p.image_xid)"
							  " FROM elt._undo_pending() p RETURNING image_xid)"
							  " UPDATE elt.run_undo u SET image_xids = (SELECT pg_catalog.array_agg(DISTINCT i.image_xid) FROM i)"
							  " WHERE u.run_id = $1",
							  2, itypes);
		else
			plan = EltPrepare(&plain_plan,
							  "WITH i AS (INSERT INTO elt.run_undo_images (run_id, key, image, image_xid)"
							  " SELECT $1, p.key, p.image, p.image_xid FROM elt._undo_pending() p"
							  " RETURNING image_xid)"
							  " UPDATE elt.run_undo u SET image_xids = (SELECT pg_catalog.array_agg(DISTINCT i.image_xid) FROM i)"
							  " WHERE u.run_id = $1",
							  2, itypes);
		v[1] = ObjectIdGetDatum(target);
		undo_pending_open = true;
		PG_TRY();
		{
			EltExec(plan, v, NULL, 0);
		}
		PG_FINALLY();
		{
			undo_pending_open = false;
		}
		PG_END_TRY();
	}
	undo_retire(transform_id);
}

PG_FUNCTION_INFO_V1(elt_run_undo_purge);

/*
 * elt.run_undo_purge(before): forget what the runs that finished before the
 * given time keep for a revert, for the transforms the caller owns (all of
 * them for elt_operator and superusers): they can no longer be reverted.
 */
Datum
elt_run_undo_purge(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {TIMESTAMPTZOID, OIDOID, BOOLOID};
	Datum		args[3];
	EltCatalogWrite cw;
	int64		purged;
	bool		isnull;
	EltJson		details;

	EltRequireCatalog("run_undo");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("before must not be null"),
				 errhint("For example elt.run_undo_purge(now() - interval '1 day').")));
	args[2] = BoolGetDatum(EltRoleIsOperator(GetUserId()));
	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "WITH o AS (SELECT u.run_id FROM elt.run_undo u"
			   "           JOIN elt.transform_defs d ON d.transform_id = u.transform_id"
			   "           WHERE u.state <> 'purged' AND u.finished_at < $1"
			   "             AND ($3 OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = d.owner"
			   "                                AND pg_catalog.pg_has_role($2, r.oid, 'MEMBER')))),"
			   " i AS (DELETE FROM elt.run_undo_images m USING o WHERE m.run_id = o.run_id),"
			   " u AS (UPDATE elt.run_undo u SET state = 'purged', images = 0 FROM o"
			   "       WHERE u.run_id = o.run_id RETURNING u.run_id)"
			   " SELECT pg_catalog.count(*) AS n FROM u",
			   3, argtypes);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = ObjectIdGetDatum(cw.actor);
	EltExec(plan, args, NULL, 0);
	purged = EltSpiGetInt64(0, "n", &isnull);
	/* rows put back by reverts before that: no run left to revert needs them */
	EltSpiExec("DELETE FROM elt.run_undo_restored r WHERE NOT EXISTS"
			   " (SELECT 1 FROM elt.run_undo u WHERE u.target = r.rel AND u.xid = r.owner_xid"
			   "  AND u.state <> 'purged')");
	EltJsonBegin(&details);
	EltJsonString(&details, "before",
				  DatumGetCString(DirectFunctionCall1(timestamptz_out, PG_GETARG_DATUM(0))));
	EltJsonInt(&details, "runs", purged);
	EltAuditRecord(cw.actor, "run_undo_purge", NULL, EltJsonFinish(&details), EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(purged);
}
