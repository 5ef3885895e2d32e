/*
 * backfill_chunk.c — the working half of the backfill engine: the
 * backfill's row in elt.backfills (reading it, setting its state, auditing
 * it) and one step of the work, shared by background workers
 * (backfill_worker.c) and CALL elt.backfill_run (backfill.c): planning the
 * next chunk, claiming one, running its statement as the owner, recording
 * its outcome, and finishing the backfill.
 *
 * Layering: the bottom of the engine.  Called by backfill.c and
 * backfill_worker.c; calls only the shared layers (audit, roles, util),
 * never the engine's other files.
 *
 * Chunks.  A chunk is a key range [lower, upper).  Chunks are planned one at
 * a time by keyset pagination on a btree index whose first column is the
 * key: the next upper bound is the key "chunk size" rows after the lower
 * one, so planning reads one chunk's worth of index entries and never sorts
 * the table.  Keys up to the greatest key when the backfill first started
 * (planned_end) are planned that way; what is left, including keys added
 * since, is one final chunk whose upper bound is set when it runs, above the
 * greatest key then (with option follow_tail, keys past planned_end are
 * paginated too, and only the last chunk is final).  The chunk size adapts to
 * target_chunk_ms between min_chunk_rows and max_chunk_rows.
 *
 * Transactions.  Every step runs in a transaction of its own, at READ
 * COMMITTED, started and committed by the caller:
 *   - claim: a pending chunk is locked with FOR UPDATE SKIP LOCKED, so two
 *     processes never hold one chunk; the chunk's statement runs in a
 *     subtransaction, and the chunk's row is set to 'done' in the same
 *     transaction, so the effect and its checkpoint commit together or not
 *     at all.  A crash loses the chunk in flight, which is still pending.
 *   - plan: when nothing is claimable, the backfill's row is locked FOR
 *     UPDATE (ordering planners), one chunk is planned and committed
 *     pending.  Planning and running are separate transactions, so the
 *     backfill's row is never held while a chunk runs.
 *   - finish: with planning done and no chunk pending (in flight chunks are
 *     still pending), the process that holds the backfill's row marks it
 *     finished or failed.
 * The statement and the planning queries run as the backfill's owner, never
 * as the process's other roles; the catalog is written as the extension
 * owner (EltCatalogWriteBegin).  Key bounds are converted to and from text
 * with DateStyle ISO and TimeZone UTC, so stored bounds read back the same.
 *
 * Liveness.  Every process working on a backfill holds a session-level
 * advisory lock on it (shared mode, EltBackfillAdvisoryLock);
 * elt._backfill_live_workers (backfill.c) counts the holders.  A process
 * that dies for any reason stops holding it.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "audit.h"
#include "backfill_int.h"

/* a retried chunk waits 100 ms, then 200 ms, ..., at most this long */
#define ELT_BACKFILL_MAX_BACKOFF_MS 30000

/* A claimed chunk. */
typedef struct BfChunk
{
	int			chunk_no;
	char	   *lower;			/* NULL: the first key when it runs */
	char	   *upper;			/* NULL: final chunk */
	bool		final;
	int			attempts;
	int64		rows_planned;	/* keys in the range when planned (not final) */
	EltBackfillShard shard;		/* on Citus, the shard it lies in (shard_id 0: none) */
} BfChunk;

/* What a chunk's statement did. */
typedef struct BfOutcome
{
	bool		ok;
	int64		rows_affected;
	double		duration_ms;
	char	   *error;
	bool		retryable;
	/* final chunk: the bounds it ran with */
	char	   *lower;
	char	   *upper;
	int64		rows_planned;
	bool		have_planned;
} BfOutcome;

/* user id switched to a backfill's owner, with its own settings level */
typedef EltAsRole BfAsOwner;

#define BF_COLUMNS \
	"SELECT backfill_id, name, rel::pg_catalog.oid AS relid, key_column::pg_catalog.text AS key_column," \
	" key_type::pg_catalog.oid AS key_type, sql, search_path, owner::pg_catalog.text AS owner," \
	" state, runner, generation, workers, planning_done, planned_end, next_lower," \
	" chunks_planned, chunk_rows, chunk_rows_current, started_at IS NOT NULL AS started," \
	" (options->>'follow_tail')::pg_catalog.bool AS follow_tail," \
	" (options->>'continue_on_error')::pg_catalog.bool AS continue_on_error," \
	" (options->>'max_attempts')::pg_catalog.int4 AS max_attempts," \
	" (options->>'target_chunk_ms')::pg_catalog.int4 AS target_chunk_ms," \
	" (options->>'min_chunk_rows')::pg_catalog.int4 AS min_chunk_rows," \
	" (options->>'max_chunk_rows')::pg_catalog.int4 AS max_chunk_rows," \
	" (options->>'max_rows_per_second')::pg_catalog.int8 AS max_rows_per_second," \
	" (options->>'lock_timeout_ms')::pg_catalog.int4 AS lock_timeout_ms," \
	" (options->>'statement_timeout_ms')::pg_catalog.int4 AS statement_timeout_ms," \
	" (options->>'pause_when_lag_bytes')::pg_catalog.int8 AS pause_when_lag_bytes," \
	" (options->>'allow_duplicate_keys')::pg_catalog.bool AS allow_duplicate_keys" \
	" FROM elt.backfills"

static TimeoutId chunk_timeout_id = MAX_TIMEOUTS;

/* the shard the queries of bf_query are sent to (backfill_shard.c); shard_id 0: all */
static EltBackfillShard query_shard;
static volatile sig_atomic_t chunk_timed_out = false;

/* ---------------------------------------------------------------------
 * Reading the backfill and its relation
 * --------------------------------------------------------------------- */

/* Fill bf from row 0 of the current SPI result; strings go to cxt. */
static void
bf_from_spi(Backfill *bf, MemoryContext cxt)
{
	bool		isnull;
	AttrNumber	attnum;
	Oid			nsp;

	memset(bf, 0, sizeof(Backfill));
	bf->id = spi_int(0, "backfill_id");
	bf->name = spi_text(0, "name", cxt);
	bf->relid = (Oid) spi_int(0, "relid");
	bf->key = spi_text(0, "key_column", cxt);
	bf->keytype = (Oid) spi_int(0, "key_type");
	bf->sql = spi_text(0, "sql", cxt);
	bf->search_path = spi_text(0, "search_path", cxt);
	bf->owner = spi_text(0, "owner", cxt);
	bf->state = spi_text(0, "state", cxt);
	bf->runner = spi_text(0, "runner", cxt);
	bf->generation = (int32) spi_int(0, "generation");
	bf->workers = (int) spi_int(0, "workers");
	bf->planning_done = EltSpiGetBool(0, "planning_done", &isnull);
	bf->planned_end = spi_text(0, "planned_end", cxt);
	bf->next_lower = spi_text(0, "next_lower", cxt);
	bf->chunks_planned = (int) spi_int(0, "chunks_planned");
	bf->chunk_rows = (int) spi_int(0, "chunk_rows");
	bf->chunk_rows_current = (int) spi_int(0, "chunk_rows_current");
	bf->started = EltSpiGetBool(0, "started", &isnull);
	bf->follow_tail = EltSpiGetBool(0, "follow_tail", &isnull);
	bf->continue_on_error = EltSpiGetBool(0, "continue_on_error", &isnull);
	bf->max_attempts = (int) spi_int(0, "max_attempts");
	bf->target_chunk_ms = (int) spi_int(0, "target_chunk_ms");
	bf->min_chunk_rows = (int) spi_int(0, "min_chunk_rows");
	bf->max_chunk_rows = (int) spi_int(0, "max_chunk_rows");
	bf->max_rows_per_second = spi_int(0, "max_rows_per_second");
	bf->lock_timeout_ms = (int) spi_int(0, "lock_timeout_ms");
	bf->statement_timeout_ms = (int) spi_int(0, "statement_timeout_ms");
	bf->pause_when_lag_bytes = spi_int(0, "pause_when_lag_bytes");
	bf->allow_duplicate_keys = EltSpiGetBool(0, "allow_duplicate_keys", &isnull);

	bf->owner_oid = get_role_oid(bf->owner, true);
	nsp = get_rel_namespace(bf->relid);
	if (OidIsValid(nsp))
		bf->relname = MemoryContextStrdup(cxt,
										  quote_qualified_identifier(get_namespace_name(nsp),
																	 get_rel_name(bf->relid)));
	attnum = OidIsValid(nsp) ? get_attnum(bf->relid, bf->key) : InvalidAttrNumber;
	if (attnum != InvalidAttrNumber)
	{
		Oid			typid;
		int32		typmod;

		get_atttypetypmodcoll(bf->relid, attnum, &typid, &typmod, &bf->keycoll);
	}
}

/*
 * Read a backfill, inside the catalog write context, with the latest
 * snapshot (locking its row if asked).  False when there is none.
 */
bool
EltBackfillLoad(Backfill *bf, BfLookup how, int64 id, const char *name, MemoryContext cxt)
{
	static SPIPlanPtr plans[4];
	static const char *const where[4] = {
		" WHERE backfill_id = $1",
		" WHERE backfill_id = $1 FOR UPDATE",
		" WHERE backfill_id = $1 FOR SHARE",
		" WHERE name = $1 FOR UPDATE"
	};
	Oid			idtype = INT8OID;
	Oid			nametype = TEXTOID;
	Datum		arg;

	EltPrepare(&plans[how], psprintf("%s%s", BF_COLUMNS, where[how]), 1,
			   how == BF_BY_NAME_FOR_UPDATE ? &nametype : &idtype);
	arg = how == BF_BY_NAME_FOR_UPDATE ? CStringGetTextDatum(name) : Int64GetDatum(id);
	if (how == BF_BY_ID)
		EltExecLatest(plans[how], &arg, NULL, 1);
	else
		EltExec(plans[how], &arg, NULL, 1);
	if (SPI_processed == 0)
		return false;
	bf_from_spi(bf, cxt);
	return true;
}

/* Whether the key column is still there, with the type the bounds have. */
bool
EltBackfillKeyIntact(Backfill *bf)
{
	AttrNumber	attnum = get_attnum(bf->relid, bf->key);

	return attnum != InvalidAttrNumber && get_atttype(bf->relid, attnum) == bf->keytype;
}

/* Whether the owner exists and may log in (workers connect as the owner). */
bool
EltBackfillCanLogin(Backfill *bf)
{
	HeapTuple	tup;
	bool		canlogin;

	if (!OidIsValid(bf->owner_oid))
		return false;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(bf->owner_oid));
	if (!HeapTupleIsValid(tup))
		return false;
	canlogin = ((Form_pg_authid) GETSTRUCT(tup))->rolcanlogin;
	ReleaseSysCache(tup);
	return canlogin;
}

/* The relation must still be there for the backfill to run. */
void
EltBackfillCheckRelation(Backfill *bf)
{
	AttrNumber	attnum;

	if (bf->relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the relation of backfill \"%s\" no longer exists", bf->name),
				 errhint("Cancel the backfill with elt.backfill_cancel('%s').", bf->name)));
	if (EltBackfillKeyIntact(bf))
		return;
	attnum = get_attnum(bf->relid, bf->key);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("key column \"%s\" of backfill \"%s\" no longer exists in %s",
						bf->key, bf->name, bf->relname),
				 errhint("Cancel the backfill with elt.backfill_cancel('%s').", bf->name)));
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("key column \"%s\" of %s changed type since backfill \"%s\" was created",
					bf->key, bf->relname, bf->name),
			 errdetail("It was %s; it is %s.", format_type_be(bf->keytype),
					   format_type_be(get_atttype(bf->relid, attnum))),
			 errhint("Its chunk bounds no longer apply: cancel it and create a new backfill.")));
}

/* A key value from its stored text (EltPinPrintSettings by the caller). */
static Datum
bf_key_in(Backfill *bf, const char *text)
{
	Oid			infunc;
	Oid			ioparam;

	getTypeInputInfo(bf->keytype, &infunc, &ioparam);
	return OidInputFunctionCall(infunc, (char *) text, ioparam, -1);
}

/* The stored text of a key value (EltPinPrintSettings by the caller). */
static char *
bf_key_out(Backfill *bf, Datum value)
{
	Oid			outfunc;
	bool		isvarlena;

	getTypeOutputInfo(bf->keytype, &outfunc, &isvarlena);
	return OidOutputFunctionCall(outfunc, value);
}

/* Compare two key values as the key's btree index does. */
static int
bf_key_cmp(Backfill *bf, Datum a, Datum b)
{
	Oid			opclass = GetDefaultOpClass(bf->keytype, BTREE_AM_OID);
	Oid			intype = get_opclass_input_type(opclass);
	Oid			proc = get_opfamily_proc(get_opclass_family(opclass), intype, intype,
										 BTORDER_PROC);

	if (!OidIsValid(proc))
		elog(ERROR, "no btree comparison for type %u", bf->keytype);
	return DatumGetInt32(OidFunctionCall2Coll(proc, bf->keycoll, a, b));
}

/*
 * A value of the key's type greater than v: the exclusive upper bound of
 * the final chunk.  An error when the type has none (v is its maximum).
 */
static Datum
bf_key_above(Backfill *bf, Datum v)
{
	Datum		r = (Datum) 0;
	bool		ok = true;

	switch (bf->keytype)
	{
		case INT2OID:
			ok = DatumGetInt16(v) < PG_INT16_MAX;
			if (ok)
				r = Int16GetDatum(DatumGetInt16(v) + 1);
			break;
		case INT4OID:
			ok = DatumGetInt32(v) < PG_INT32_MAX;
			if (ok)
				r = Int32GetDatum(DatumGetInt32(v) + 1);
			break;
		case INT8OID:
			ok = DatumGetInt64(v) < PG_INT64_MAX;
			if (ok)
				r = Int64GetDatum(DatumGetInt64(v) + 1);
			break;
		case NUMERICOID:
			{
				Numeric		n = DatumGetNumeric(v);

				if (numeric_is_nan(n))
					ok = false;
				else if (numeric_is_inf(n))
					r = DirectFunctionCall3(numeric_in, CStringGetDatum("NaN"),
											ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
				else
					r = DirectFunctionCall2(numeric_add, v,
											NumericGetDatum(int64_to_numeric(1)));
				break;
			}
		case DATEOID:
			{
				DateADT		d = DatumGetDateADT(v);

				if (DATE_IS_NOEND(d) || d >= DATEVAL_NOEND - 1)
					ok = false;
				else
					r = DateADTGetDatum(DATE_IS_NOBEGIN(d) ? 0 : d + 1);
				break;
			}
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				Timestamp	t = DatumGetTimestamp(v);

				if (TIMESTAMP_IS_NOEND(t) || (!TIMESTAMP_NOT_FINITE(t) && !IS_VALID_TIMESTAMP(t + 1)))
					ok = false;
				else
					r = TimestampGetDatum(TIMESTAMP_IS_NOBEGIN(t) ? 0 : t + 1);
				break;
			}
		case UUIDOID:
			{
				pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));
				int			i;

				memcpy(u, DatumGetUUIDP(v), sizeof(pg_uuid_t));
				for (i = UUID_LEN - 1; i >= 0; i--)
				{
					if (++u->data[i] != 0)
						break;
				}
				ok = i >= 0;
				r = UUIDPGetDatum(u);
				break;
			}
		case TEXTOID:
		case VARCHAROID:
			{
				/* a longer string with v as its prefix; checked below */
				char	   *s = text_to_cstring(DatumGetTextPP(v));

				r = CStringGetTextDatum(psprintf("%sz", s));
				break;
			}
		default:
			ok = false;
	}
	if (!ok || bf_key_cmp(bf, r, v) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the greatest key of %s, %s, has no greater value of type %s",
						bf->relname, bf_key_out(bf, v), format_type_be(bf->keytype)),
				 errdetail("The final chunk needs an exclusive upper bound above every key."),
				 errhint("Process the row with that key by hand, then retry with elt.backfill_retry('%s').",
						 bf->name)));
	return r;
}

/*
 * Act as the backfill's owner (never as the process's other roles) with
 * pinned planner settings, for queries on the relation; SPI connected.
 */
static void
bf_as_owner_begin(Backfill *bf, BfAsOwner *s, bool planning)
{
	if (!OidIsValid(bf->owner_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\", owner of backfill \"%s\", no longer exists",
						bf->owner, bf->name),
				 errhint("Cancel the backfill and create it again as another role.")));
	/* another role's statement may not change this session's state */
	EltAsRoleBegin(s, bf->owner_oid, planning ? "pg_catalog, pg_temp" : NULL,
				   GetUserId() != bf->owner_oid);
	if (planning)
	{
		/* keyset pagination must walk the index, never sort the table */
		(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
bf_as_owner_end(BfAsOwner *s)
{
	SPI_finish();
	/* settings the statement changed, even with SET, are undone */
	EltAsRoleEnd(s);
}

/*
 * Run a query of bf_query, sent to query_shard's shard when there is one;
 * its result in SPI_tuptable.
 */
static void
bf_query_exec(Backfill *bf, const char *sql, int nargs, Oid *types, Datum *values)
{
	if (query_shard.shard_id != 0)
		EltBackfillShardScopeBegin(bf, &query_shard, false);
	PG_TRY();
	{
		if (SPI_execute_with_args(sql, nargs, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "query on the backfill's relation failed: %s", sql);
	}
	PG_FINALLY();
	{
		if (query_shard.shard_id != 0)
			(void) EltBackfillShardScopeEnd();
	}
	PG_END_TRY();
}

/*
 * One value from the relation, as its owner: "SELECT <what> FROM rel
 * <tail>" with up to two key arguments and an optional integer (after
 * them).  The value is copied into cxt; found is false when there is no row
 * or it is NULL.
 */
static Datum
bf_query(Backfill *bf, const char *what, const char *tail, int nkeys, Datum *keys,
		 int64 n, bool *found, MemoryContext cxt)
{
	BfAsOwner	s;
	Oid			types[3];
	Datum		values[3];
	int			nargs = 0;
	int			i;
	char	   *sql;
	Datum		result = (Datum) 0;
	int16		typlen;
	bool		typbyval;

	for (i = 0; i < nkeys; i++)
	{
		types[nargs] = bf->keytype;
		values[nargs++] = keys[i];
	}
	if (n >= 0)
	{
		types[nargs] = INT8OID;
		values[nargs++] = Int64GetDatum(n);
	}
	sql = psprintf("SELECT %s FROM %s %s", what, bf->relname, tail);
	bf_as_owner_begin(bf, &s, true);
	bf_query_exec(bf, sql, nargs, types, values);
	*found = SPI_processed > 0;
	if (*found)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		get_typlenbyval(SPI_gettypeid(SPI_tuptable->tupdesc, 1), &typlen, &typbyval);
		*found = !isnull;
		if (!isnull)
			result = datumCopy(d, typbyval, typlen);
		MemoryContextSwitchTo(old);
	}
	bf_as_owner_end(&s);
	return result;
}

/* One key of the relation, as its owner: "SELECT key FROM rel <tail>". */
static Datum
bf_key_query(Backfill *bf, const char *tail, int nkeys, Datum *keys,
			 int64 n, bool *found, MemoryContext cxt)
{
	return bf_query(bf, quote_identifier(bf->key), tail, nkeys, keys, n, found, cxt);
}

/* The number of keys in [lower, upper), as the owner. */
static int64
bf_count_range(Backfill *bf, Datum lower, Datum upper)
{
	Datum		keys[2] = {lower, upper};
	const char *q = quote_identifier(bf->key);
	bool		found;

	return DatumGetInt64(bf_query(bf, "pg_catalog.count(*)",
								  psprintf("WHERE %s >= $1 AND %s < $2", q, q),
								  2, keys, -1, &found, CurrentMemoryContext));
}

/* Timeout handler: the chunk ran longer than statement_timeout_ms. */
static void
chunk_timeout_handler(void)
{
	chunk_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

/* Run the rest of the transaction at READ COMMITTED (before its first query). */
void
EltBackfillReadCommitted(void)
{
	if (!FirstSnapshotSet)
		XactIsoLevel = XACT_READ_COMMITTED;
}

/* Take or release this process's hold on a backfill (see the file header). */
void
EltBackfillAdvisoryLock(int64 backfill_id, bool acquire)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (backfill_id >> 32),
						 (uint32) backfill_id, ELT_BACKFILL_LOCKTAG);
	if (acquire)
		(void) LockAcquire(&tag, AccessShareLock, true, false);
	else
		LockRelease(&tag, AccessShareLock, true);
}

/* ---------------------------------------------------------------------
 * The backfill's row: state changes and their audit
 * --------------------------------------------------------------------- */

/*
 * Start the details of a backfill's audit row: its id and relation.  The
 * caller adds its own members, then passes them to EltBackfillAudit.
 */
void
EltBackfillAuditDetails(EltJson *details, Backfill *bf)
{
	EltJsonBegin(details);
	EltJsonInt(details, "backfill_id", bf->id);
	EltJsonString(details, "relation", bf->relname);
}

/*
 * Audit a backfill action, with the details started by
 * EltBackfillAuditDetails, or (NULL) just the backfill's id and relation.
 */
void
EltBackfillAudit(Oid actor, const char *action, Backfill *bf, EltJson *details)
{
	EltJson		plain;

	if (details == NULL)
	{
		EltBackfillAuditDetails(&plain, bf);
		details = &plain;
	}
	EltAuditRecord(actor, action, bf->name, EltJsonFinish(details), EltAuditReason(NULL));
}

/*
 * First start (by workers or a session): record where the planned range
 * ends and how many rows it has.  Inside the catalog write context.
 */
void
EltBackfillFirstStart(Backfill *bf)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[3] = {INT8OID, TEXTOID, INT8OID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	MemoryContext cxt = CurrentMemoryContext;
	bool		found;
	Datum		last;
	int			level;
	List	   *rels;
	ListCell   *lc;
	double		tuples = 0;
	bool		unknown = false;

	EltBackfillCheckRelation(bf);
	last = bf_key_query(bf, psprintf("WHERE %s IS NOT NULL ORDER BY 1 DESC LIMIT 1",
									 quote_identifier(bf->key)),
						0, NULL, -1, &found, cxt);
	rels = find_all_inheritors(bf->relid, NoLock, NULL);
	foreach(lc, rels)
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (HeapTupleIsValid(tup))
		{
			Form_pg_class c = (Form_pg_class) GETSTRUCT(tup);

			if (c->relkind == RELKIND_RELATION)
			{
				if (c->reltuples < 0)
					unknown = true;
				else
					tuples += c->reltuples;
			}
			ReleaseSysCache(tup);
		}
	}
	if (unknown && found)
	{
		/* never analyzed: count the keys once */
		bool		counted;

		tuples = (double) DatumGetInt64(bf_query(bf, psprintf("pg_catalog.count(%s)",
															  quote_identifier(bf->key)),
												 "", 0, NULL, -1, &counted, cxt));
	}
	values[0] = Int64GetDatum(bf->id);
	level = EltPinPrintSettings();
	if (found)
		values[1] = CStringGetTextDatum(bf_key_out(bf, last));
	else
		nulls[1] = 'n';
	AtEOXact_GUC(true, level);
	values[2] = Int64GetDatum((int64) tuples);
	EltPrepare(&plan,
			   "UPDATE elt.backfills SET planned_end = $2, rows_estimate = $3,"
			   " started_at = pg_catalog.now() WHERE backfill_id = $1",
			   3, types);
	EltExec(plan, values, nulls, 0);
}

/* Set state (and runner, generation, workers) of a backfill. */
void
EltBackfillSetState(Backfill *bf, const char *state, const char *reason, const char *runner,
					int workers, bool new_generation)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, BOOLOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(bf->id);
	values[1] = CStringGetTextDatum(state);
	if (reason)
		values[2] = CStringGetTextDatum(reason);
	else
		nulls[2] = 'n';
	if (runner)
		values[3] = CStringGetTextDatum(runner);
	else
		nulls[3] = 'n';
	values[4] = Int32GetDatum(workers);
	values[5] = BoolGetDatum(new_generation);
	EltPrepare(&plan,
			   "UPDATE elt.backfills SET state = $2, state_reason = $3,"
			   " runner = COALESCE($4, runner),"
			   " workers = CASE WHEN $5 > 0 THEN $5 ELSE workers END,"
			   " generation = generation + CASE WHEN $6 THEN 1 ELSE 0 END,"
			   " launched_at = CASE WHEN $5 > 0 THEN pg_catalog.now() ELSE launched_at END,"
			   " finished_at = CASE WHEN $2 IN ('finished', 'failed', 'cancelled')"
			   "                    THEN pg_catalog.now() END"
			   " WHERE backfill_id = $1 RETURNING generation",
			   6, types);
	EltExec(plan, values, nulls, 1);
	bf->generation = (int32) spi_int(0, "generation");
	bf->state = pstrdup(state);
}

/* ---------------------------------------------------------------------
 * One step of the work
 * --------------------------------------------------------------------- */

/* Whether the backfill is one this process should keep working on. */
static EltBackfillStep
bf_runnable(Backfill *bf, EltBackfillRunner *r)
{
	r->state = bf->state;
	if (strcmp(bf->state, "finished") == 0 || strcmp(bf->state, "failed") == 0)
		return BF_STEP_FINISHED;
	if (strcmp(bf->state, "running") != 0)
		return BF_STEP_STOPPED;
	if (r->is_worker && bf->generation != r->generation)
	{
		r->state = "superseded";
		return BF_STEP_STOPPED;
	}
	return BF_STEP_CHUNK;
}

/* Bytes the furthest standby's replay is behind, as the extension owner. */
static int64
bf_standby_lag(void)
{
	if (SPI_execute("SELECT COALESCE(max(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),"
					" replay_lsn)), 0)::pg_catalog.int8 AS lag FROM pg_catalog.pg_stat_replication",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_replication");
	return spi_int(0, "lag");
}

/*
 * Whether elt.backfill_chunks has the shard columns (0.9.0): the library
 * may run before ALTER EXTENSION ... UPDATE reached that version.
 */
static bool
bf_has_shard_columns(void)
{
	return get_attnum(EltCatalogRelid("backfill_chunks"), "shard_id") != InvalidAttrNumber;
}

/* The shard columns of a chunk, or NULLs before 0.9.0. */
#define BF_SHARD_COLUMNS(has) \
	((has) ? " shard_id, shard_min, shard_max" \
	 : " NULL::pg_catalog.int8 AS shard_id, NULL::pg_catalog.int4 AS shard_min," \
	   " NULL::pg_catalog.int4 AS shard_max")

/* Claim a pending chunk that is due, inside the catalog write context. */
static bool
bf_claim(Backfill *bf, BfChunk *ch, MemoryContext cxt)
{
	static SPIPlanPtr plans[2] = {NULL, NULL};
	Oid			types[1] = {INT8OID};
	Datum		arg = Int64GetDatum(bf->id);
	bool		isnull;
	bool		has = bf_has_shard_columns();

	EltPrepare(&plans[has],
			   psprintf("SELECT chunk_no, lower_bound, upper_bound, final, attempts, rows_planned,%s"
						" FROM elt.backfill_chunks"
						" WHERE backfill_id = $1 AND state = 'pending'"
						"   AND (retry_at IS NULL OR retry_at <= pg_catalog.clock_timestamp())"
						" ORDER BY chunk_no LIMIT 1 FOR UPDATE SKIP LOCKED",
						BF_SHARD_COLUMNS(has)),
			   1, types);
	EltExec(plans[has], &arg, NULL, 1);
	if (SPI_processed == 0)
		return false;
	ch->chunk_no = (int) spi_int(0, "chunk_no");
	ch->lower = spi_text(0, "lower_bound", cxt);
	ch->upper = spi_text(0, "upper_bound", cxt);
	ch->final = EltSpiGetBool(0, "final", &isnull);
	ch->attempts = (int) spi_int(0, "attempts");
	ch->rows_planned = spi_int(0, "rows_planned");
	ch->shard.shard_id = spi_int(0, "shard_id");
	ch->shard.hash_min = (int32) spi_int(0, "shard_min");
	ch->shard.hash_max = (int32) spi_int(0, "shard_max");
	return true;
}

/*
 * Run a claimed chunk's statement as the owner, in a subtransaction, with
 * the backfill's settings.  Errors are caught and returned, except a cancel
 * that is not our own timeout: that one propagates, and the chunk stays
 * pending.  The subtransaction is EltSubxactBegin/Commit/Rollback in a
 * PG_TRY of its own rather than EltTrySubxact, because the chunk's timer
 * must be disarmed before the rollback (which may take long enough for it
 * to fire, and cancel whatever runs next).
 */
static void
bf_execute(Backfill *bf, BfChunk *ch, EltBackfillRunner *r, BfOutcome *out)
{
	MemoryContext cxt = CurrentMemoryContext;
	EltSubxact	subxact;
	volatile bool timer = false;

	memset(out, 0, sizeof(BfOutcome));
	if (chunk_timeout_id == MAX_TIMEOUTS)
		chunk_timeout_id = RegisterTimeout(USER_TIMEOUT, chunk_timeout_handler);

	EltSubxactBegin(&subxact);
	PG_TRY();
	{
		Datum		bounds[2];
		Oid			types[2] = {bf->keytype, bf->keytype};
		bool		run = true;
		int			level;
		BfAsOwner	s;
		instr_time	start;
		instr_time	duration;
		int			rc;

		level = EltPinPrintSettings();
		query_shard = ch->shard;
		if (ch->lower != NULL)
			bounds[0] = bf_key_in(bf, ch->lower);
		if (ch->upper != NULL)
			bounds[1] = bf_key_in(bf, ch->upper);
		if (ch->final)
		{
			bool		found;
			Datum		last;
			const char *q = quote_identifier(bf->key);

			/* bounded now: from its lower bound to above the greatest key */
			if (ch->lower == NULL)
			{
				bounds[0] = bf_key_query(bf, psprintf("WHERE %s IS NOT NULL ORDER BY 1 LIMIT 1", q),
										 0, NULL, -1, &found, cxt);
				run = found;
			}
			if (run)
			{
				last = bf_key_query(bf, psprintf("WHERE %s IS NOT NULL ORDER BY 1 DESC LIMIT 1", q),
									0, NULL, -1, &found, cxt);
				run = found && bf_key_cmp(bf, last, bounds[0]) >= 0;
			}
			if (run)
			{
				bounds[1] = bf_key_above(bf, last);
				out->lower = bf_key_out(bf, bounds[0]);
				out->upper = bf_key_out(bf, bounds[1]);
				out->rows_planned = bf_count_range(bf, bounds[0], bounds[1]);
			}
			out->have_planned = true;
		}
		AtEOXact_GUC(true, level);

		if (run)
		{
			if (r->is_worker)
				pgstat_report_activity(STATE_RUNNING,
									   psprintf("backfill %s: chunk %d [%s, %s), attempt %d",
												bf->name, ch->chunk_no,
												out->lower ? out->lower : ch->lower,
												out->upper ? out->upper : ch->upper,
												ch->attempts + 1));
			bf_as_owner_begin(bf, &s, false);
			/* pg_temp last: the session's temporary objects never stand for the owner's */
			(void) set_config_option("search_path", EltSearchPathTempLast(bf->search_path), PGC_USERSET,
									 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
			(void) set_config_option("lock_timeout", psprintf("%d", bf->lock_timeout_ms),
									 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
			chunk_timed_out = false;
			if (bf->statement_timeout_ms > 0)
			{
				enable_timeout_after(chunk_timeout_id, bf->statement_timeout_ms);
				timer = true;
			}
			INSTR_TIME_SET_CURRENT(start);
			if (query_shard.shard_id != 0)
				EltBackfillShardScopeBegin(bf, &query_shard, true);
			rc = SPI_execute_with_args(bf->sql, 2, types, bounds, NULL, false, 0);
			if (query_shard.shard_id != 0 && !EltBackfillShardScopeEnd())
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the chunk statement of backfill \"%s\" could not be kept to shard " INT64_FORMAT,
								bf->name, query_shard.shard_id),
						 errdetail("Its chunks are planned per shard, which needs an UPDATE or DELETE of %s.",
								   bf->relname),
						 errhint("Cancel the backfill and create it again.")));
			if (rc < 0)
				elog(ERROR, "chunk statement failed: %s", SPI_result_code_string(rc));
			out->rows_affected = (int64) SPI_processed;
			/* its rows on a worker, its checkpoint here: one commit */
			if (query_shard.shard_id != 0)
				EltBackfillShardTwoPhase();
			INSTR_TIME_SET_CURRENT(duration);
			INSTR_TIME_SUBTRACT(duration, start);
			out->duration_ms = INSTR_TIME_GET_MILLISEC(duration);
			if (timer)
			{
				disable_timeout(chunk_timeout_id, false);
				timer = false;
				/* fired after the statement ended: nothing left to cancel */
				if (chunk_timed_out)
					QueryCancelPending = false;
			}
			bf_as_owner_end(&s);
		}
		EltSubxactCommit(&subxact);
		out->ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (timer)
			disable_timeout(chunk_timeout_id, false);
		(void) EltBackfillShardScopeEnd();
		query_shard.shard_id = 0;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		EltSubxactRollback(&subxact);
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && !chunk_timed_out)
			ReThrowError(edata);
		out->ok = false;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			out->error = psprintf("the chunk ran longer than statement_timeout_ms (%d ms)",
								  bf->statement_timeout_ms);
		else
			out->error = psprintf("%s (SQLSTATE %s)", edata->message,
								  unpack_sql_state(edata->sqlerrcode));
		out->retryable = edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
			edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
			edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED;
		FreeErrorData(edata);
	}
	PG_END_TRY();
	query_shard.shard_id = 0;
	chunk_timed_out = false;
}

/* Record a chunk's outcome, inside the catalog write context. */
static void
bf_record(Backfill *bf, BfChunk *ch, BfOutcome *out, Oid actor)
{
	static SPIPlanPtr done_plan = NULL;
	static SPIPlanPtr retry_plan = NULL;
	static SPIPlanPtr fail_plan = NULL;
	Oid			dtypes[7] = {INT8OID, INT4OID, INT8OID, FLOAT8OID, TEXTOID, TEXTOID, INT8OID};
	Oid			ftypes[5] = {INT8OID, INT4OID, TEXTOID, INT4OID, FLOAT8OID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			attempts = ch->attempts + 1;

	values[0] = Int64GetDatum(bf->id);
	values[1] = Int32GetDatum(ch->chunk_no);
	if (out->ok)
	{
		values[2] = Int64GetDatum(out->rows_affected);
		values[3] = Float8GetDatum(out->duration_ms);
		if (out->lower)
			values[4] = CStringGetTextDatum(out->lower);
		else
			nulls[4] = 'n';
		if (out->upper)
			values[5] = CStringGetTextDatum(out->upper);
		else
			nulls[5] = 'n';
		values[6] = Int64GetDatum(out->rows_planned);
		if (!out->have_planned)
			nulls[6] = 'n';
		EltPrepare(&done_plan,
				   "UPDATE elt.backfill_chunks SET state = 'done', attempts = attempts + 1,"
				   " rows_affected = $3, duration_ms = $4, retry_at = NULL,"
				   " finished_at = pg_catalog.clock_timestamp(),"
				   " lower_bound = COALESCE($5, lower_bound), upper_bound = COALESCE($6, upper_bound),"
				   " rows_planned = COALESCE($7, rows_planned)"
				   " WHERE backfill_id = $1 AND chunk_no = $2",
				   7, dtypes);
		EltExec(done_plan, values, nulls, 0);
		return;
	}
	values[2] = CStringGetTextDatum(out->error);
	if (out->retryable && attempts < bf->max_attempts)
	{
		int64		backoff = 100;
		int			i;

		for (i = 1; i < attempts && backoff < ELT_BACKFILL_MAX_BACKOFF_MS; i++)
			backoff *= 2;
		values[3] = Int32GetDatum((int32) Min(backoff, ELT_BACKFILL_MAX_BACKOFF_MS));
		EltPrepare(&retry_plan,
				   "UPDATE elt.backfill_chunks SET attempts = attempts + 1, last_error = $3,"
				   " retry_at = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $4 / 1000.0)"
				   " WHERE backfill_id = $1 AND chunk_no = $2",
				   4, ftypes);
		EltExec(retry_plan, values, nulls, 0);
		return;
	}
	values[3] = Int32GetDatum(attempts);
	values[4] = Float8GetDatum(out->duration_ms);
	EltPrepare(&fail_plan,
			   "UPDATE elt.backfill_chunks SET state = 'failed', attempts = $4, last_error = $3,"
			   " retry_at = NULL, duration_ms = NULLIF($5, 0),"
			   " finished_at = pg_catalog.clock_timestamp()"
			   " WHERE backfill_id = $1 AND chunk_no = $2",
			   5, ftypes);
	EltExec(fail_plan, values, nulls, 0);
	if (!bf->continue_on_error)
	{
		Backfill	cur;

		/* fail the backfill, unless someone stopped it meanwhile */
		if (EltBackfillLoad(&cur, BF_BY_ID_FOR_UPDATE, bf->id, NULL, CurrentMemoryContext) &&
			strcmp(cur.state, "running") == 0)
		{
			char	   *reason = psprintf("chunk %d failed: %s", ch->chunk_no, out->error);
			EltJson		details;

			EltBackfillSetState(&cur, "failed", reason, NULL, 0, false);
			EltBackfillAuditDetails(&details, &cur);
			EltJsonInt(&details, "chunk", ch->chunk_no);
			EltJsonString(&details, "error", out->error);
			EltBackfillAudit(actor, "backfill_failed", &cur, &details);
		}
	}
}

/* The next chunk's size: adapted to target_chunk_ms from the last chunks. */
static int
bf_next_size(Backfill *bf)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {INT8OID};
	Datum		arg = Int64GetDatum(bf->id);
	bool		isnull;
	double		rows;
	double		ms;
	double		size = bf->chunk_rows_current;
	double		ideal;

	if (bf->target_chunk_ms <= 0)
		return bf->chunk_rows_current;
	EltPrepare(&plan,
			   "SELECT sum(rows_planned)::pg_catalog.float8 AS rows, sum(duration_ms) AS ms"
			   " FROM (SELECT rows_planned, duration_ms FROM elt.backfill_chunks"
			   "       WHERE backfill_id = $1 AND state = 'done' AND NOT final"
			   "         AND duration_ms IS NOT NULL"
			   "       ORDER BY chunk_no DESC LIMIT 3) recent",
			   1, types);
	EltExec(plan, &arg, NULL, 1);
	rows = DatumGetFloat8(EltSpiGetDatum(0, "rows", &isnull));
	if (isnull)
		return bf->chunk_rows_current;
	ms = DatumGetFloat8(EltSpiGetDatum(0, "ms", &isnull));
	if (isnull || rows <= 0)
		return bf->chunk_rows_current;
	ideal = rows * bf->target_chunk_ms / Max(ms, 0.1);
	size = Min(Max(ideal, size / 2), size * 2);
	size = Min(Max(size, bf->min_chunk_rows), bf->max_chunk_rows);
	return (int) rint(size);
}

/*
 * Plan the next chunk: its bounds from the key's index, as the owner.  The
 * backfill's row is locked by the caller.  Inside the catalog write context
 * on entry and exit.
 */
static void
bf_plan(Backfill *bf, EltCatalogWrite *cw, MemoryContext cxt)
{
	static SPIPlanPtr insert_plans[2] = {NULL, NULL};
	static SPIPlanPtr cursor_plan = NULL;
	static SPIPlanPtr last_plans[2] = {NULL, NULL};
	bool		has = bf_has_shard_columns();
	Oid			itypes[9] = {INT8OID, INT4OID, TEXTOID, TEXTOID, BOOLOID, INT8OID,
	INT8OID, INT4OID, INT4OID};
	Oid			ctypes[5] = {INT8OID, INT4OID, TEXTOID, BOOLOID, INT4OID};
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			size = bf_next_size(bf);
	EltBackfillShard shard = {0, 0, 0};
	EltBackfillShard more;
	bool		first_in_shard = bf->chunks_planned == 0;
	bool		last_final = false;
	bool		planning_done;
	int			level;
	bool		found;
	bool		final = false;
	Datum		lower = (Datum) 0;
	Datum		upper = (Datum) 0;
	bool		have_lower;
	char	   *lower_text = NULL;
	char	   *upper_text = NULL;
	int64		rows = size;
	const char *q;

	/* per shard on Citus: the shard of the last chunk planned */
	if (bf->chunks_planned > 0)
	{
		Oid			ltypes[1] = {INT8OID};
		Datum		id = Int64GetDatum(bf->id);

		EltPrepare(&last_plans[has],
				   psprintf("SELECT%s, final FROM elt.backfill_chunks"
							" WHERE backfill_id = $1 ORDER BY chunk_no DESC LIMIT 1",
							BF_SHARD_COLUMNS(has)),
				   1, ltypes);
		EltExec(last_plans[has], &id, NULL, 1);
		if (SPI_processed > 0)
		{
			bool		isnull;

			shard.shard_id = spi_int(0, "shard_id");
			shard.hash_min = (int32) spi_int(0, "shard_min");
			shard.hash_max = (int32) spi_int(0, "shard_max");
			last_final = EltSpiGetBool(0, "final", &isnull);
		}
	}
	EltCatalogWriteEnd(cw);
	q = quote_identifier(bf->key);	/* after SPI_finish: it must outlive it */
	EltBackfillCheckRelation(bf);
	if (bf->chunks_planned == 0 && has && EltBackfillPerShard(bf))
	{
		if (!EltBackfillShardNext(bf->relid, true, 0, &shard))
			shard.shard_id = 0;
	}
	else if (shard.shard_id != 0 && last_final)
	{
		/* the last shard's chunks are planned: on to the next one */
		if (!EltBackfillShardNext(bf->relid, false, shard.hash_max, &shard))
			elog(ERROR, "backfill \"%s\" has no shard left to plan", bf->name);
		first_in_shard = true;
	}
	query_shard = shard;
	level = EltPinPrintSettings();
	if (first_in_shard)
	{
		lower = bf_key_query(bf, psprintf("WHERE %s IS NOT NULL ORDER BY 1 LIMIT 1", q),
							 0, NULL, -1, &have_lower, cxt);
		if (!have_lower)
			final = true;		/* empty now: the final chunk looks again */
	}
	else
	{
		lower = bf_key_in(bf, bf->next_lower);
		have_lower = true;
	}
	if (!final)
	{
		upper = bf_key_query(bf, psprintf("WHERE %s >= $1 ORDER BY 1 OFFSET $2 LIMIT 1", q),
							 1, &lower, size, &found, cxt);
		if (!found)
			final = true;
		else if (!bf->follow_tail &&
				 (bf->planned_end == NULL ||
				  bf_key_cmp(bf, upper, bf_key_in(bf, bf->planned_end)) > 0))
			final = true;
		else if (bf_key_cmp(bf, upper, lower) == 0)
		{
			/* more than a chunk of equal keys: the chunk takes them all */
			upper = bf_key_query(bf, psprintf("WHERE %s > $1 ORDER BY 1 LIMIT 1", q),
								 1, &lower, -1, &found, cxt);
			if (!found)
				final = true;
			else
				rows = bf_count_range(bf, lower, upper);
		}
	}
	if (have_lower)
		lower_text = bf_key_out(bf, lower);
	if (!final)
		upper_text = bf_key_out(bf, upper);
	AtEOXact_GUC(true, level);
	query_shard.shard_id = 0;
	/* per shard, planning is done after the last shard's final chunk */
	planning_done = final &&
		!(shard.shard_id != 0 && EltBackfillShardNext(bf->relid, false, shard.hash_max, &more));
	EltCatalogWriteBegin(cw);

	values[0] = Int64GetDatum(bf->id);
	values[1] = Int32GetDatum(bf->chunks_planned + 1);
	if (lower_text)
		values[2] = CStringGetTextDatum(lower_text);
	else
		nulls[2] = 'n';
	if (upper_text)
		values[3] = CStringGetTextDatum(upper_text);
	else
		nulls[3] = 'n';
	values[4] = BoolGetDatum(final);
	values[5] = Int64GetDatum(rows);
	if (final)
		nulls[5] = 'n';
	values[6] = Int64GetDatum(shard.shard_id);
	values[7] = Int32GetDatum(shard.hash_min);
	values[8] = Int32GetDatum(shard.hash_max);
	if (shard.shard_id == 0)
		nulls[6] = nulls[7] = nulls[8] = 'n';
	EltPrepare(&insert_plans[has],
			   has ? "INSERT INTO elt.backfill_chunks (backfill_id, chunk_no, lower_bound, upper_bound,"
			   " final, rows_planned, planned_at, shard_id, shard_min, shard_max)"
			   " VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.clock_timestamp(), $7, $8, $9)"
			   : "INSERT INTO elt.backfill_chunks (backfill_id, chunk_no, lower_bound, upper_bound,"
			   " final, rows_planned, planned_at)"
			   " VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.clock_timestamp())",
			   has ? 9 : 6, itypes);
	EltExec(insert_plans[has], values, nulls, 0);

	values[2] = values[3];
	nulls[2] = nulls[3];
	values[3] = BoolGetDatum(planning_done);
	nulls[3] = ' ';
	values[4] = Int32GetDatum(size);
	nulls[4] = ' ';
	EltPrepare(&cursor_plan,
			   "UPDATE elt.backfills SET chunks_planned = $2, next_lower = $3,"
			   " planning_done = $4, chunk_rows_current = $5 WHERE backfill_id = $1",
			   5, ctypes);
	EltExec(cursor_plan, values, nulls, 0);
}

/*
 * Nothing was claimable: plan a chunk, or see whether the backfill is over,
 * or how long to wait.
 */
static EltBackfillStep
bf_plan_or_finish(EltBackfillRunner *r, MemoryContext cxt)
{
	static SPIPlanPtr free_plan = NULL;
	static SPIPlanPtr count_plan = NULL;
	EltCatalogWrite cw;
	Backfill	bf;
	EltBackfillStep step;
	EltJson		details;
	Oid			types[1] = {INT8OID};
	Datum		arg = Int64GetDatum(r->backfill_id);
	int64		pending;
	int64		failed;
	int64		rows;
	uint64		i;
	double		wait = -1;

	EltCatalogWriteBegin(&cw);
	if (!EltBackfillLoad(&bf, BF_BY_ID_FOR_UPDATE, r->backfill_id, NULL, cxt))
	{
		EltCatalogWriteEnd(&cw);
		r->state = "purged";
		return BF_STEP_STOPPED;
	}
	step = bf_runnable(&bf, r);
	if (step != BF_STEP_CHUNK)
	{
		EltCatalogWriteEnd(&cw);
		return step;
	}
	if (!bf.planning_done)
	{
		/*
		 * Holding the backfill's row, do not wait for the table: DDL that
		 * pauses backfills holds the table and then wants the row.
		 */
		if (!ConditionalLockRelationOid(bf.relid, AccessShareLock))
		{
			EltCatalogWriteEnd(&cw);
			r->wait_ms = 100;
			return BF_STEP_WAIT;
		}
		bf_plan(&bf, &cw, cxt);
		EltCatalogWriteEnd(&cw);
		return BF_STEP_PLANNED;
	}

	/* pending chunks no one holds: due now, or when */
	EltPrepare(&free_plan,
			   "SELECT EXTRACT(epoch FROM COALESCE(retry_at, pg_catalog.clock_timestamp())"
			   "                          - pg_catalog.clock_timestamp()) * 1000 AS wait_ms"
			   " FROM elt.backfill_chunks WHERE backfill_id = $1 AND state = 'pending'"
			   " FOR UPDATE SKIP LOCKED",
			   1, types);
	EltExec(free_plan, &arg, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		double		w = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
														   EltSpiGetDatum(i, "wait_ms", &isnull)));

		w = Max(w, 0);
		if (wait < 0 || w < wait)
			wait = w;
	}
	if (wait >= 0)
	{
		EltCatalogWriteEnd(&cw);
		r->wait_ms = (long) ceil(wait);
		return BF_STEP_WAIT;
	}
	EltPrepare(&count_plan,
			   "SELECT count(*) FILTER (WHERE state = 'pending') AS pending,"
			   " count(*) FILTER (WHERE state = 'failed') AS failed,"
			   " COALESCE(sum(rows_affected) FILTER (WHERE state = 'done'), 0)::pg_catalog.int8 AS rows"
			   " FROM elt.backfill_chunks WHERE backfill_id = $1",
			   1, types);
	EltExecLatest(count_plan, &arg, NULL, 1);
	pending = spi_int(0, "pending");
	failed = spi_int(0, "failed");
	rows = spi_int(0, "rows");
	if (pending > 0)
	{
		EltCatalogWriteEnd(&cw);
		return BF_STEP_IDLE;
	}
	if (failed > 0)
		EltBackfillSetState(&bf, "failed",
					 psprintf("%lld %s failed", (long long) failed, failed == 1 ? "chunk" : "chunks"),
					 NULL, 0, false);
	else
		EltBackfillSetState(&bf, "finished", NULL, NULL, 0, false);
	EltBackfillAuditDetails(&details, &bf);
	EltJsonInt(&details, "chunks", bf.chunks_planned);
	EltJsonInt(&details, "failed_chunks", failed);
	EltJsonInt(&details, "rows_affected", rows);
	EltBackfillAudit(OidIsValid(bf.owner_oid) ? bf.owner_oid : cw.actor,
					 failed > 0 ? "backfill_failed" : "backfill_finished", &bf, &details);
	EltCatalogWriteEnd(&cw);
	r->state = failed > 0 ? "failed" : "finished";
	return BF_STEP_FINISHED;
}

/*
 * One step of work on a backfill, inside a READ COMMITTED transaction that
 * the caller starts and commits (see the file header).
 */
EltBackfillStep
EltBackfillStepRun(EltBackfillRunner *r)
{
	MemoryContext cxt = CurrentMemoryContext;
	EltCatalogWrite cw;
	Backfill	bf;
	BfChunk		ch;
	BfOutcome	out;
	EltBackfillStep step;
	bool		claimed;

	r->chunk_done = false;
	r->rows = 0;
	r->wait_ms = 0;
	r->state = NULL;
	query_shard.shard_id = 0;

	EltCatalogWriteBegin(&cw);
	/* a worker's first step waits for the transaction that launched it */
	if (!EltBackfillLoad(&bf, r->is_worker && !r->started ? BF_BY_ID_FOR_SHARE : BF_BY_ID,
				 r->backfill_id, NULL, cxt))
	{
		EltCatalogWriteEnd(&cw);
		r->state = "purged";
		return BF_STEP_STOPPED;
	}
	step = bf_runnable(&bf, r);
	if (step != BF_STEP_CHUNK)
	{
		EltCatalogWriteEnd(&cw);
		return step;
	}
	if (r->is_worker && !r->started)
	{
		/* only that: taking the row for update too could deadlock */
		EltCatalogWriteEnd(&cw);
		r->started = true;
		pgstat_report_appname(psprintf("elt backfill %s", bf.name));
		return BF_STEP_WAIT;
	}
	r->max_rows_per_second = bf.max_rows_per_second;
	r->workers = Max(bf.workers, 1);
	if (bf.pause_when_lag_bytes > 0)
	{
		int64		lag = bf_standby_lag();

		if (lag > bf.pause_when_lag_bytes)
		{
			EltCatalogWriteEnd(&cw);
			if (r->is_worker)
				pgstat_report_activity(STATE_RUNNING,
									   psprintf("backfill %s: waiting, a standby is %lld bytes behind",
												bf.name, (long long) lag));
			r->wait_ms = 1000;
			r->state = "waiting for standby";
			return BF_STEP_WAIT;
		}
	}
	claimed = bf_claim(&bf, &ch, cxt);
	EltCatalogWriteEnd(&cw);
	if (!claimed)
		return bf_plan_or_finish(r, cxt);

	EltBackfillCheckRelation(&bf);
	bf_execute(&bf, &ch, r, &out);
	EltCatalogWriteBegin(&cw);
	bf_record(&bf, &ch, &out, OidIsValid(bf.owner_oid) ? bf.owner_oid : cw.actor);
	EltCatalogWriteEnd(&cw);
	r->chunk_done = out.ok;
	r->rows = out.have_planned ? out.rows_planned : ch.rows_planned;
	if (r->is_worker)
		pgstat_report_activity(STATE_IDLE, NULL);
	return BF_STEP_CHUNK;
}


/*
 * A worker stopped by an error outside a chunk (the relation or its key
 * changed, a privilege was revoked, ...): pause the backfill with the error
 * as the reason, so that it is neither left running with no worker nor
 * relaunched into the same error.  In a transaction of its own.
 */
void
EltBackfillPauseAfterError(int64 backfill_id, int32 generation, const char *error)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3];
	EltCatalogWrite cw;

	values[0] = Int64GetDatum(backfill_id);
	values[1] = Int32GetDatum(generation);
	values[2] = CStringGetTextDatum(psprintf("stopped by an error: %s", error));
	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "UPDATE elt.backfills SET state = 'paused', state_reason = $3"
			   " WHERE backfill_id = $1 AND generation = $2 AND state = 'running'"
			   " RETURNING name, rel::pg_catalog.oid AS relid, owner::pg_catalog.text AS owner",
			   3, types);
	EltExec(plan, values, NULL, 1);
	if (SPI_processed > 0)
	{
		Backfill	bf;
		EltJson		details;
		Oid			relid = (Oid) spi_int(0, "relid");
		Oid			owner = get_role_oid(EltSpiGetText(0, "owner"), true);

		memset(&bf, 0, sizeof(bf));
		bf.id = backfill_id;
		bf.name = EltSpiGetText(0, "name");
		bf.relname = get_rel_name(relid) ?
			quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									   get_rel_name(relid)) : psprintf("%u", relid);
		EltBackfillAuditDetails(&details, &bf);
		EltJsonString(&details, "error", error);
		EltBackfillAudit(OidIsValid(owner) ? owner : cw.actor, "backfill_paused", &bf, &details);
	}
	EltCatalogWriteEnd(&cw);
}

/* How long to sleep after a chunk of rows that took elapsed_ms to stay under the rate. */
long
EltBackfillThrottleMs(EltBackfillRunner *r, double elapsed_ms)
{
	double		per_process;

	if (r->max_rows_per_second <= 0 || r->rows <= 0)
		return 0;
	per_process = (double) r->max_rows_per_second / Max(r->workers, 1);
	return (long) Max(0, r->rows * 1000.0 / per_process - elapsed_ms);
}

