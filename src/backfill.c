/*
 * backfill.c — the backfill engine: chunked, checkpointed, exactly-once
 * re-processing of a relation by key range.
 *
 * Owns: elt.backfills and elt.backfill_chunks, the SQL API (backfill_create,
 * _start, _pause, _resume, _cancel, _retry, _purge, the procedure
 * backfill_run) and one step of the work, shared by background workers
 * (backfill_worker.c) and backfill_run.
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
 * advisory lock on it (shared mode); elt._backfill_live_workers counts the
 * holders.  A process that dies for any reason stops holding it.  The caps
 * on backfill workers count the holders that are workers, and every launch
 * happens under the launch lock (backfill_worker.c).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "audit.h"
#include "backfill.h"
#include "roles.h"

/* a retried chunk waits 100 ms, then 200 ms, ..., at most this long */
#define ELT_BACKFILL_MAX_BACKOFF_MS 30000

/* the option names, in the order they are documented */
static const char *const option_names[] = {
	"follow_tail", "continue_on_error", "max_attempts", "target_chunk_ms",
	"min_chunk_rows", "max_chunk_rows", "max_rows_per_second",
	"lock_timeout_ms", "statement_timeout_ms", "pause_when_lag_bytes",
	"allow_null_keys", "allow_duplicate_keys"
};

/* A backfill as the engine needs it, read from elt.backfills. */
typedef struct Backfill
{
	int64		id;
	char	   *name;
	Oid			relid;
	char	   *relname;		/* qualified and quoted, for SQL and messages */
	char	   *key;
	Oid			keytype;
	Oid			keycoll;
	char	   *sql;
	char	   *search_path;
	char	   *owner;
	Oid			owner_oid;		/* InvalidOid when the role is gone */
	char	   *state;
	char	   *runner;			/* NULL before the first start */
	int32		generation;
	int			workers;
	bool		planning_done;
	char	   *planned_end;
	char	   *next_lower;
	int			chunks_planned;
	int			chunk_rows;
	int			chunk_rows_current;
	bool		started;
	/* options */
	bool		follow_tail;
	bool		continue_on_error;
	int			max_attempts;
	int			target_chunk_ms;
	int			min_chunk_rows;
	int			max_chunk_rows;
	int64		max_rows_per_second;
	int			lock_timeout_ms;
	int			statement_timeout_ms;
	int64		pause_when_lag_bytes;
	bool		allow_duplicate_keys;
} Backfill;

/* A claimed chunk. */
typedef struct BfChunk
{
	int			chunk_no;
	char	   *lower;			/* NULL: the first key when it runs */
	char	   *upper;			/* NULL: final chunk */
	bool		final;
	int			attempts;
	int64		rows_planned;	/* keys in the range when planned (not final) */
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
static volatile sig_atomic_t chunk_timed_out = false;

/* ---------------------------------------------------------------------
 * Small helpers
 * --------------------------------------------------------------------- */

/* An integer column of the current SPI result row, 0 when NULL. */
static int64
spi_int(int row, const char *column)
{
	bool		isnull;

	return EltSpiGetInt64(row, column, &isnull);
}

/* A text column of the current SPI result, copied into cxt (NULL stays NULL). */
static char *
spi_text(int row, const char *column, MemoryContext cxt)
{
	char	   *s = EltSpiGetText(row, column);

	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

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

/* How a backfill is looked up by bf_load. */
typedef enum BfLookup
{
	BF_BY_ID,
	BF_BY_ID_FOR_UPDATE,
	BF_BY_ID_FOR_SHARE,
	BF_BY_NAME_FOR_UPDATE
} BfLookup;

/*
 * Read a backfill, inside the catalog write context, with the latest
 * snapshot (locking its row if asked).  False when there is none.
 */
static bool
bf_load(Backfill *bf, BfLookup how, int64 id, const char *name, MemoryContext cxt)
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

/* A backfill by name, its row locked, or an error. */
static void
bf_load_named(Backfill *bf, const char *name, MemoryContext cxt)
{
	if (!bf_load(bf, BF_BY_NAME_FOR_UPDATE, 0, name, cxt))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("backfill \"%s\" does not exist", name),
				 errhint("See SELECT name, state FROM elt.backfill_status.")));
}

/*
 * Only the backfill's owner, its members, elt_operator and superusers
 * control it (its chunks run as the owner whoever starts them).  actor is
 * the calling role (inside the catalog write context, the current user is
 * the extension owner).
 */
static void
bf_check_control(Backfill *bf, Oid actor)
{
	if (EltRoleIsOperator(actor))
		return;
	if (!OidIsValid(bf->owner_oid) || !has_privs_of_role(actor, bf->owner_oid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for backfill \"%s\"", bf->name),
				 errdetail("It belongs to role \"%s\".", bf->owner),
				 errhint("Only the role that created a backfill, the members of that role, members of %s and superusers may control it.",
						 ELT_ROLE_OPERATOR)));
}

/* Whether the key column is still there, with the type the bounds have. */
static bool
bf_key_intact(Backfill *bf)
{
	AttrNumber	attnum = get_attnum(bf->relid, bf->key);

	return attnum != InvalidAttrNumber && get_atttype(bf->relid, attnum) == bf->keytype;
}

/* Whether the owner exists and may log in (workers connect as the owner). */
static bool
bf_can_login(Backfill *bf)
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
static void
bf_check_relation(Backfill *bf)
{
	AttrNumber	attnum;

	if (bf->relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the relation of backfill \"%s\" no longer exists", bf->name),
				 errhint("Cancel the backfill with elt.backfill_cancel('%s').", bf->name)));
	if (bf_key_intact(bf))
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
	if (SPI_execute_with_args(sql, nargs, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "query on the backfill's relation failed: %s", sql);
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

/* Number of processes holding a backfill (see the file header). */
PG_FUNCTION_INFO_V1(elt_backfill_live_workers);
Datum
elt_backfill_live_workers(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	LockData   *data = GetLockStatusData();
	int			n = 0;
	int			i;

	for (i = 0; i < data->nelements; i++)
	{
		LockInstanceData *inst = &data->locks[i];

		if (inst->locktag.locktag_type == LOCKTAG_ADVISORY &&
			inst->locktag.locktag_field1 == MyDatabaseId &&
			inst->locktag.locktag_field2 == (uint32) (id >> 32) &&
			inst->locktag.locktag_field3 == (uint32) id &&
			inst->locktag.locktag_field4 == ELT_BACKFILL_LOCKTAG &&
			(inst->holdMask & LOCKBIT_ON(AccessShareLock)) != 0)
			n++;
	}
	PG_RETURN_INT32(n);
}

/* ---------------------------------------------------------------------
 * Creation
 * --------------------------------------------------------------------- */

/* Key types whose chunks can be bounded. */
static bool
supported_key_type(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case TEXTOID:
		case VARCHAROID:
		case UUIDOID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return true;
		default:
			return false;
	}
}

/* The access method of an index. */
static Oid
index_am(Oid indexoid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(indexoid));
	Oid			am;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	am = ((Form_pg_class) GETSTRUCT(tup))->relam;
	ReleaseSysCache(tup);
	return am;
}

/*
 * A valid, non-partial btree index whose first column is the key, with the
 * type's default operator class and the column's collation (so that ORDER BY
 * key walks it).  Sets *unique when one such index is unique on the key
 * alone.
 */
static bool
find_key_index(Relation rel, AttrNumber attnum, Oid keytype, Oid keycoll, bool *unique)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;
	Oid			defclass = GetDefaultOpClass(keytype, BTREE_AM_OID);

	*unique = false;
	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		Form_pg_index index;
		bool		isnull;
		oidvector  *classes;
		oidvector  *colls;

		if (!HeapTupleIsValid(tup))
			continue;
		index = (Form_pg_index) GETSTRUCT(tup);
		classes = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tup,
																Anum_pg_index_indclass, &isnull));
		colls = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tup,
															  Anum_pg_index_indcollation, &isnull));
		if (index->indisvalid && index->indkey.values[0] == attnum &&
			heap_attisnull(tup, Anum_pg_index_indpred, NULL) &&
			index_am(indexoid) == BTREE_AM_OID &&
			classes->values[0] == defclass && colls->values[0] == keycoll)
		{
			found = true;
			if (index->indisunique && index->indnkeyatts == 1 &&
				heap_attisnull(tup, Anum_pg_index_indexprs, NULL))
				*unique = true;
		}
		ReleaseSysCache(tup);
	}
	list_free(indexes);
	return found;
}

/* Walker: note which $n a query references. */
static bool
find_params_walker(Node *node, int *used)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param))
	{
		Param	   *p = (Param *) node;

		if (p->paramkind == PARAM_EXTERN && p->paramid >= 1 && p->paramid <= 2)
			used[p->paramid - 1] = 1;
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, find_params_walker, used, 0);
	return expression_tree_walker(node, find_params_walker, used);
}

/* Error context: which statement was being checked. */
static void
statement_context(void *arg)
{
	errcontext("chunk statement of backfill \"%s\"", (const char *) arg);
}

/*
 * The chunk statement must prepare, as the caller, with $1 and $2 of the
 * key's type, be one SELECT, INSERT, UPDATE, DELETE or MERGE, and use both
 * bounds.
 */
static void
check_statement(const char *name, const char *sql, Oid keytype)
{
	Oid			types[2] = {keytype, keytype};
	SPIPlanPtr	plan;
	List	   *sources;
	CachedPlanSource *src;
	int			used[2] = {0, 0};
	ListCell   *lc;
	ErrorContextCallback cb;

	cb.callback = statement_context;
	cb.arg = (void *) name;
	cb.previous = error_context_stack;
	error_context_stack = &cb;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql, 2, types);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the chunk statement could not be prepared: %s",
						SPI_result_code_string(SPI_result))));
	sources = SPI_plan_get_plan_sources(plan);
	if (list_length(sources) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the chunk statement must be exactly one statement, not %d",
						list_length(sources)),
				 errhint("Put several steps in one statement with WITH, or in a function called by the statement.")));
	src = (CachedPlanSource *) linitial(sources);
	if (src->commandTag != CMDTAG_SELECT && src->commandTag != CMDTAG_INSERT &&
		src->commandTag != CMDTAG_UPDATE && src->commandTag != CMDTAG_DELETE &&
		src->commandTag != CMDTAG_MERGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the chunk statement must be a SELECT, INSERT, UPDATE, DELETE or MERGE, not %s",
						GetCommandTagName(src->commandTag))));
	foreach(lc, src->query_list)
		(void) find_params_walker((Node *) lfirst(lc), used);
	if (!used[0] || !used[1])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the chunk statement must use $1 and $2, the chunk's lower (inclusive) and upper (exclusive) key bounds"),
				 errdetail("It does not use %s.", !used[0] && !used[1] ? "either" :
						   !used[0] ? "$1" : "$2"),
				 errhint("For example: UPDATE t SET ... WHERE id >= $1 AND id < $2.")));
	SPI_freeplan(plan);
	SPI_finish();
	error_context_stack = cb.previous;
}

/* An integer option: a JSON number in [min, max]. */
static int64
option_int(const char *key, const char *type, const char *value, int64 min, int64 max)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(value ? value : "", &end, 10);
	if (strcmp(type, "number") != 0 || value == NULL || *end != '\0' || errno != 0 ||
		v < min || v > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be an integer between " INT64_FORMAT " and " INT64_FORMAT,
						key, min, max)));
	return v;
}

/* A boolean option. */
static bool
option_bool(const char *key, const char *type, const char *value)
{
	if (strcmp(type, "boolean") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be true or false", key)));
	return strcmp(value, "true") == 0;
}

/*
 * Validate options and fill every option with its value or default, as the
 * JSON stored in elt.backfills.options.
 */
static char *
normalize_options(Jsonb *options, int chunk_rows, bool *allow_nulls, bool *allow_dups)
{
	bool		follow_tail = false,
				continue_on_error = false;
	int64		max_attempts = 10,
				target_chunk_ms = 200,
				min_chunk_rows = Max(1, chunk_rows / 10),
				max_chunk_rows = Min((int64) chunk_rows * 10, PG_INT32_MAX),
				max_rows_per_second = 0,
				lock_timeout_ms = 1000,
				statement_timeout_ms = 0,
				pause_when_lag_bytes = 0;
	StringInfoData buf;
	Oid			argtypes[1] = {JSONBOID};
	Datum		arg = JsonbPGetDatum(options);
	uint64		i;

	*allow_nulls = false;
	*allow_dups = false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_typeof($1) AS t", 1, argtypes, &arg,
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read options");
	if (strcmp(EltSpiGetText(0, "t"), "object") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object"),
				 errhint("For example '{\"target_chunk_ms\": 100}'.")));
	if (SPI_execute_with_args("SELECT key, pg_catalog.jsonb_typeof(value) AS type,"
							  " value #>> '{}' AS value FROM pg_catalog.jsonb_each($1)",
							  1, argtypes, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read options");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *key = EltSpiGetText(i, "key");
		char	   *type = EltSpiGetText(i, "type");
		char	   *value = EltSpiGetText(i, "value");

		if (strcmp(key, "follow_tail") == 0)
			follow_tail = option_bool(key, type, value);
		else if (strcmp(key, "continue_on_error") == 0)
			continue_on_error = option_bool(key, type, value);
		else if (strcmp(key, "allow_null_keys") == 0)
			*allow_nulls = option_bool(key, type, value);
		else if (strcmp(key, "allow_duplicate_keys") == 0)
			*allow_dups = option_bool(key, type, value);
		else if (strcmp(key, "max_attempts") == 0)
			max_attempts = option_int(key, type, value, 1, 1000);
		else if (strcmp(key, "target_chunk_ms") == 0)
			target_chunk_ms = option_int(key, type, value, 0, 3600000);
		else if (strcmp(key, "min_chunk_rows") == 0)
			min_chunk_rows = option_int(key, type, value, 1, PG_INT32_MAX);
		else if (strcmp(key, "max_chunk_rows") == 0)
			max_chunk_rows = option_int(key, type, value, 1, PG_INT32_MAX);
		else if (strcmp(key, "max_rows_per_second") == 0)
			max_rows_per_second = option_int(key, type, value, 0, PG_INT64_MAX);
		else if (strcmp(key, "lock_timeout_ms") == 0)
			lock_timeout_ms = option_int(key, type, value, 0, PG_INT32_MAX);
		else if (strcmp(key, "statement_timeout_ms") == 0)
			statement_timeout_ms = option_int(key, type, value, 0, PG_INT32_MAX);
		else if (strcmp(key, "pause_when_lag_bytes") == 0)
			pause_when_lag_bytes = option_int(key, type, value, 0, PG_INT64_MAX);
		else
		{
			StringInfoData names;
			int			j;

			initStringInfo(&names);
			for (j = 0; j < (int) lengthof(option_names); j++)
				appendStringInfo(&names, "%s%s", j ? ", " : "", option_names[j]);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown backfill option \"%s\"", key),
					 errhint("The options are: %s.", names.data)));
		}
	}
	SPI_finish();
	if (min_chunk_rows > max_chunk_rows)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_chunk_rows (" INT64_FORMAT ") is greater than max_chunk_rows (" INT64_FORMAT ")",
						min_chunk_rows, max_chunk_rows)));
	if (chunk_rows < min_chunk_rows || chunk_rows > max_chunk_rows)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk_rows (%d) must lie between min_chunk_rows (" INT64_FORMAT ") and max_chunk_rows (" INT64_FORMAT ")",
						chunk_rows, min_chunk_rows, max_chunk_rows)));

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "{\"follow_tail\": %s, \"continue_on_error\": %s, \"max_attempts\": " INT64_FORMAT
					 ", \"target_chunk_ms\": " INT64_FORMAT ", \"min_chunk_rows\": " INT64_FORMAT
					 ", \"max_chunk_rows\": " INT64_FORMAT ", \"max_rows_per_second\": " INT64_FORMAT
					 ", \"lock_timeout_ms\": " INT64_FORMAT ", \"statement_timeout_ms\": " INT64_FORMAT
					 ", \"pause_when_lag_bytes\": " INT64_FORMAT ", \"allow_null_keys\": %s"
					 ", \"allow_duplicate_keys\": %s}",
					 follow_tail ? "true" : "false", continue_on_error ? "true" : "false",
					 max_attempts, target_chunk_ms, min_chunk_rows, max_chunk_rows,
					 max_rows_per_second, lock_timeout_ms, statement_timeout_ms,
					 pause_when_lag_bytes, *allow_nulls ? "true" : "false",
					 *allow_dups ? "true" : "false");
	return buf.data;
}

/* The single-column primary key of a relation, or an error. */
static char *
primary_key_column(Relation rel, const char *relname)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	char	   *result = NULL;

	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;

		if (!HeapTupleIsValid(tup))
			continue;
		index = (Form_pg_index) GETSTRUCT(tup);
		if (index->indisprimary)
		{
			if (index->indnkeyatts != 1 || index->indkey.values[0] == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the primary key of %s has more than one column", relname),
						 errhint("Name the key column: key => 'column', a NOT NULL column with a unique btree index.")));
			result = get_attname(RelationGetRelid(rel), index->indkey.values[0], false);
		}
		ReleaseSysCache(tup);
	}
	list_free(indexes);
	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has no primary key", relname),
				 errhint("Name the key column: key => 'column', a NOT NULL column with a unique btree index.")));
	return result;
}

PG_FUNCTION_INFO_V1(elt_backfill_create);
Datum
elt_backfill_create(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr exists_plan = NULL;
	static SPIPlanPtr version_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	char	   *name;
	Oid			relid;
	char	   *sql;
	char	   *key;
	int			chunk_rows;
	char	   *options;
	bool		allow_nulls;
	bool		allow_dups;
	Relation	rel;
	char	   *relname;
	AttrNumber	attnum;
	Oid			keytype;
	int32		keytypmod;
	Oid			keycoll;
	bool		unique;
	Form_pg_attribute att;
	EltCatalogWrite cw;
	Oid			ntypes[1] = {TEXTOID};
	Oid			vtypes[1] = {OIDOID};
	Oid			itypes[11] = {TEXTOID, OIDOID, NAMEOID, OIDOID, TEXTOID, TEXTOID,
	INT4OID, JSONBOID, NAMEOID, INT4OID, INT4OID};
	Datum		values[11];
	char		nulls[11];
	int64		id;
	Datum		arg;
	int			schema_version = 0;
	bool		have_version = false;
	StringInfoData details;
	char	   *search_path;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation must not be null")));
	relid = PG_GETARG_OID(1);
	sql = EltRequiredText(fcinfo, 2, "sql");
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("chunk_rows must not be null")));
	chunk_rows = PG_GETARG_INT32(4);
	if (chunk_rows < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk_rows must be at least 1")));
	EltCheckObjectName("backfill", name);

	/* the relation, locked against concurrent DDL while it is checked */
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	rel = table_open(relid, AccessShareLock);
	relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										 RelationGetRelationName(rel));
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table", relname),
				 errhint("A backfill runs on a table or a partitioned table.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot backfill temporary table %s",
						quote_identifier(RelationGetRelationName(rel))),
				 errdetail("Backfills run in other sessions, which cannot see it.")));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_UPDATE | ACL_INSERT | ACL_DELETE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to backfill %s", relname),
				 errhint("A backfill can be created only by a role that may write the relation (UPDATE, INSERT or DELETE).")));

	key = PG_ARGISNULL(3) ? primary_key_column(rel, relname)
		: text_to_cstring(PG_GETARG_TEXT_PP(3));
	attnum = get_attnum(relid, key);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation %s does not exist", key, relname)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck(relid, attnum, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read key column \"%s\" of %s", key, relname),
				 errhint("Chunks are planned by reading the key column, as the backfill's owner.")));
	get_atttypetypmodcoll(relid, attnum, &keytype, &keytypmod, &keycoll);
	if (!supported_key_type(keytype))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("key column \"%s\" has type %s, which a backfill cannot chunk",
						key, format_type_be(keytype)),
				 errhint("Key types: smallint, integer, bigint, numeric, text, varchar, uuid, date, timestamp, timestamptz.")));
	options = normalize_options(PG_ARGISNULL(5) ? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))
								: PG_GETARG_JSONB_P(5),
								chunk_rows, &allow_nulls, &allow_dups);
	att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	if (!att->attnotnull && !allow_nulls)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key column \"%s\" of %s is nullable", key, relname),
				 errdetail("Rows whose key is NULL lie in no chunk, and would not be processed."),
				 errhint("Use a NOT NULL key, or pass options => '{\"allow_null_keys\": true}' to leave those rows out.")));
	if (!find_key_index(rel, attnum, keytype, keycoll, &unique))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key column \"%s\" of %s has no btree index that chunks can be planned on", key, relname),
				 errdetail("Chunks are planned by walking an index whose first column is the key, with the type's default operator class and the column's collation."),
				 errhint("Create one first, for example CREATE INDEX CONCURRENTLY ON %s (%s).",
						 relname, quote_identifier(key))));
	if (!unique && !allow_dups)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key column \"%s\" of %s is not unique", key, relname),
				 errdetail("No unique index covers exactly that column."),
				 errhint("Use a unique key, or pass options => '{\"allow_duplicate_keys\": true}': rows with equal keys then share a chunk.")));
	table_close(rel, NoLock);

	check_statement(name, sql, keytype);
	search_path = GetConfigOptionByName("search_path", NULL, false);

	EltCatalogWriteBegin(&cw);
	EltPrepare(&exists_plan, "SELECT 1 FROM elt.backfills WHERE name = $1", 1, ntypes);
	arg = CStringGetTextDatum(name);
	EltExecLatest(exists_plan, &arg, NULL, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("backfill \"%s\" already exists", name),
				 errhint("Choose another name, or purge the old one with elt.backfill_purge().")));
	EltPrepare(&version_plan,
			   "SELECT version FROM elt.schema_versions WHERE relid = $1"
			   " ORDER BY recorded_at DESC, version DESC LIMIT 1", 1, vtypes);
	arg = ObjectIdGetDatum(relid);
	EltExec(version_plan, &arg, NULL, 1);
	if (SPI_processed > 0)
	{
		schema_version = (int) spi_int(0, "version");
		have_version = true;
	}

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(key));
	values[3] = ObjectIdGetDatum(keytype);
	values[4] = CStringGetTextDatum(sql);
	values[5] = CStringGetTextDatum(search_path);
	values[6] = Int32GetDatum(chunk_rows);
	values[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(options));
	values[8] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(cw.actor, false)));
	values[9] = Int32GetDatum(schema_version);
	if (!have_version)
		nulls[9] = 'n';
	values[10] = Int32GetDatum(chunk_rows);
	EltPrepare(&insert_plan,
			   "INSERT INTO elt.backfills (name, rel, key_column, key_type, sql, search_path,"
			   " chunk_rows, options, owner, schema_version, chunk_rows_current, created_at)"
			   " VALUES ($1, $2::pg_catalog.regclass, $3, $4::pg_catalog.regtype, $5, $6, $7, $8,"
			   " $9, $10, $11, pg_catalog.now()) RETURNING backfill_id",
			   11, itypes);
	EltExec(insert_plan, values, nulls, 1);
	id = spi_int(0, "backfill_id");

	initStringInfo(&details);
	appendStringInfoChar(&details, '{');
	EltAppendJsonInt(&details, "backfill_id", id);
	EltAppendJsonString(&details, "relation", relname);
	EltAppendJsonString(&details, "key", key);
	EltAppendJsonInt(&details, "chunk_rows", chunk_rows);
	if (have_version)
		EltAppendJsonInt(&details, "schema_version", schema_version);
	appendStringInfo(&details, ", \"options\": %s}", options);
	EltAuditRecord(cw.actor, "backfill_created", name, details.data, EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(id);
}

/* ---------------------------------------------------------------------
 * State changes
 * --------------------------------------------------------------------- */

/* Audit a backfill action with optional extra JSON members. */
static void
bf_audit(Oid actor, const char *action, Backfill *bf, const char *extra)
{
	StringInfoData details;

	initStringInfo(&details);
	appendStringInfoChar(&details, '{');
	EltAppendJsonInt(&details, "backfill_id", bf->id);
	EltAppendJsonString(&details, "relation", bf->relname);
	if (extra != NULL && extra[0] != '\0')
		appendStringInfo(&details, ", %s", extra);
	appendStringInfoChar(&details, '}');
	EltAuditRecord(actor, action, bf->name, details.data, EltAuditReason(NULL));
}

/*
 * First start (by workers or a session): record where the planned range
 * ends and how many rows it has.  Inside the catalog write context.
 */
static void
bf_first_start(Backfill *bf)
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

	bf_check_relation(bf);
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
static void
bf_set_state(Backfill *bf, const char *state, const char *reason, const char *runner,
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

/* Workers connect as the owner: it must exist and be able to log in. */
static void
bf_check_login(Backfill *bf)
{
	if (!OidIsValid(bf->owner_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\", owner of backfill \"%s\", no longer exists",
						bf->owner, bf->name),
				 errhint("Cancel the backfill and create it again as another role.")));
	if (!bf_can_login(bf))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\", owner of backfill \"%s\", cannot log in",
						bf->owner, bf->name),
				 errdetail("Background workers connect as the backfill's owner."),
				 errhint("Run it in a session with CALL elt.backfill_run('%s'), or grant the role LOGIN.",
						 bf->name)));
}

/* Check a worker count against what the server allows. */
static int
bf_check_workers(FunctionCallInfo fcinfo, int argno)
{
	int			n;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("workers must not be null")));
	n = PG_GETARG_INT32(argno);
	if (n < 1 || n > max_worker_processes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("workers must be between 1 and max_worker_processes (%d), not %d",
						max_worker_processes, n),
				 errhint("Start fewer workers, or raise max_worker_processes (needs a restart).")));
	return n;
}

/*
 * How many workers to relaunch a backfill with: as many as it last had
 * (within what the server allows), none for one run by sessions.
 */
static int
bf_worker_count(Backfill *bf)
{
	if (bf->runner == NULL || strcmp(bf->runner, "workers") != 0)
		return 0;
	return Min(Max(bf->workers, 1), max_worker_processes);
}

/* "1 worker", "2 workers" */
static char *
bf_workers_text(int n)
{
	return psprintf("%d %s", n, n == 1 ? "worker" : "workers");
}

/*
 * Why no more workers may start for bf now (room, from
 * EltBackfillWorkerRoom), as a sentence.
 */
static char *
bf_cap_detail(Backfill *bf, EltWorkerRoom *room)
{
	if (room->role_binds)
		return psprintf("Role \"%s\" runs %s for its backfills; elt.max_backfill_workers_per_role is %d.",
						bf->owner, bf_workers_text(room->live_role), room->cap_role);
	return psprintf("%s run for backfills in the cluster; elt.max_backfill_workers is %d.",
					bf_workers_text(room->live_all), room->cap_all);
}

/*
 * Take the launch lock and decide how many of wanted workers bf may start
 * now, under the caps (see backfill_worker.c): the caller launches them
 * with bf_launch, which releases the lock.  None: an error (verb says what
 * was refused; nothing changes).  Fewer than wanted: they start, and a
 * NOTICE says why.  Fewer rather than none, because a backfill does the
 * same work with fewer workers, and a resume or retry has no count to lower
 * but the last one; the caller learns the count from the return value.
 */
static int
bf_capped_workers(Backfill *bf, int wanted, const char *verb)
{
	EltWorkerRoom room;

	EltBackfillLaunchLock();
	EltBackfillWorkerRoom(bf->owner_oid, &room);
	if (room.room == 0 && room.role_binds)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot %s backfill \"%s\" on workers: its role already has as many backfill workers as elt.max_backfill_workers_per_role allows (%d)",
						verb, bf->name, room.cap_role),
				 errdetail("%s", bf_cap_detail(bf, &room)),
				 errhint("Wait for one of the role's backfills to finish or pause one with elt.backfill_pause(), "
						 "or run this one in a session with CALL elt.backfill_run('%s').", bf->name)));
	if (room.room == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot %s backfill \"%s\" on workers: the cluster already has as many backfill workers as elt.max_backfill_workers allows (%d)",
						verb, bf->name, room.cap_all),
				 errdetail("%s", bf_cap_detail(bf, &room)),
				 errhint("Wait for a backfill to finish, or run this one in a session with CALL elt.backfill_run('%s'); "
						 "a superuser can raise elt.max_backfill_workers.", bf->name)));
	if (room.room < wanted)
		ereport(NOTICE,
				(errmsg("backfill \"%s\" gets %d of %s", bf->name, room.room, bf_workers_text(wanted)),
				 errdetail("%s", bf_cap_detail(bf, &room))));
	return Min(room.room, wanted);
}

/*
 * Launch n workers for the backfill, as its owner (checked by the caller
 * with bf_check_login before changing anything), after bf_capped_workers;
 * all or an error.  Releases the launch lock.
 */
static void
bf_launch(Backfill *bf, int n)
{
	(void) EltBackfillLaunch(bf->id, bf->generation, bf->name, bf->owner_oid, n, ERROR);
	EltBackfillLaunchUnlock();
}

/* The error for a state a function cannot act on. */
static void
bf_wrong_state(Backfill *bf, const char *verb)
{
	const char *hint;

	if (strcmp(bf->state, "finished") == 0)
		hint = "Create a new backfill to run the statement again.";
	else if (strcmp(bf->state, "cancelled") == 0)
		hint = "A cancelled backfill cannot run again; create a new one.";
	else if (strcmp(bf->state, "failed") == 0)
		hint = psprintf("Rerun its failed chunks with elt.backfill_retry('%s').", bf->name);
	else if (strcmp(bf->state, "paused") == 0)
		hint = psprintf("Resume it with elt.backfill_resume('%s').", bf->name);
	else if (strcmp(bf->state, "created") == 0)
		hint = psprintf("Start it with elt.backfill_start('%s') or CALL elt.backfill_run('%s').",
						bf->name, bf->name);
	else
		hint = psprintf("Pause it with elt.backfill_pause('%s'), or cancel it.", bf->name);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s backfill \"%s\": it is %s", verb, bf->name, bf->state),
			 errhint("%s", hint)));
}

PG_FUNCTION_INFO_V1(elt_backfill_start);
Datum
elt_backfill_start(PG_FUNCTION_ARGS)
{
	char	   *name;
	int			n;
	Backfill	bf;
	EltCatalogWrite cw;
	MemoryContext cxt = CurrentMemoryContext;
	bool		resume = false;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	n = bf_check_workers(fcinfo, 1);
	EltCatalogWriteBegin(&cw);
	bf_load_named(&bf, name, cxt);
	bf_check_control(&bf, cw.actor);
	if (strcmp(bf.state, "running") == 0)
	{
		int			live = DatumGetInt32(DirectFunctionCall1(elt_backfill_live_workers,
															 Int64GetDatum(bf.id)));

		if (live > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("backfill \"%s\" is already running, with %d live %s",
							name, live, live == 1 ? "process" : "processes"),
					 errhint("Follow it in elt.backfill_status; pause it with elt.backfill_pause('%s').",
							 name)));
		resume = true;			/* interrupted: resume from the checkpoint */
	}
	else if (strcmp(bf.state, "created") != 0)
		bf_wrong_state(&bf, "start");
	bf_check_relation(&bf);
	bf_check_login(&bf);
	if (!bf.started)
		bf_first_start(&bf);
	n = bf_capped_workers(&bf, n, "start");
	bf_set_state(&bf, "running", NULL, "workers", n, true);
	bf_audit(cw.actor, resume ? "backfill_resumed" : "backfill_started", &bf,
			 psprintf("\"workers\": %d", n));
	EltCatalogWriteEnd(&cw);
	bf_launch(&bf, n);
	PG_RETURN_INT32(n);
}

PG_FUNCTION_INFO_V1(elt_backfill_pause);
Datum
elt_backfill_pause(PG_FUNCTION_ARGS)
{
	char	   *name;
	Backfill	bf;
	EltCatalogWrite cw;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	EltCatalogWriteBegin(&cw);
	bf_load_named(&bf, name, CurrentMemoryContext);
	bf_check_control(&bf, cw.actor);
	if (strcmp(bf.state, "running") != 0)
		bf_wrong_state(&bf, "pause");
	bf_set_state(&bf, "paused",
				 psprintf("paused by %s", GetUserNameFromId(cw.actor, false)),
				 NULL, 0, false);
	bf_audit(cw.actor, "backfill_paused", &bf, NULL);
	EltCatalogWriteEnd(&cw);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(elt_backfill_resume);
Datum
elt_backfill_resume(PG_FUNCTION_ARGS)
{
	char	   *name;
	Backfill	bf;
	EltCatalogWrite cw;
	int			n = 0;
	MemoryContext cxt = CurrentMemoryContext;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	EltCatalogWriteBegin(&cw);
	bf_load_named(&bf, name, cxt);
	bf_check_control(&bf, cw.actor);
	if (strcmp(bf.state, "paused") != 0 &&
		!(strcmp(bf.state, "running") == 0 &&
		  DatumGetInt32(DirectFunctionCall1(elt_backfill_live_workers, Int64GetDatum(bf.id))) == 0))
		bf_wrong_state(&bf, "resume");
	bf_check_relation(&bf);
	n = bf_worker_count(&bf);
	if (n > 0)
	{
		bf_check_login(&bf);
		n = bf_capped_workers(&bf, n, "resume");
	}
	bf_set_state(&bf, "running", NULL, NULL, n, true);
	bf_audit(cw.actor, "backfill_resumed", &bf, psprintf("\"workers\": %d", n));
	EltCatalogWriteEnd(&cw);
	if (n > 0)
		bf_launch(&bf, n);
	PG_RETURN_INT32(n);
}

PG_FUNCTION_INFO_V1(elt_backfill_cancel);
Datum
elt_backfill_cancel(PG_FUNCTION_ARGS)
{
	char	   *name;
	Backfill	bf;
	EltCatalogWrite cw;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	EltCatalogWriteBegin(&cw);
	bf_load_named(&bf, name, CurrentMemoryContext);
	bf_check_control(&bf, cw.actor);
	if (strcmp(bf.state, "finished") == 0 || strcmp(bf.state, "cancelled") == 0)
		bf_wrong_state(&bf, "cancel");
	bf_set_state(&bf, "cancelled",
				 psprintf("cancelled by %s", GetUserNameFromId(cw.actor, false)),
				 NULL, 0, true);
	bf_audit(cw.actor, "backfill_cancelled", &bf, NULL);
	EltCatalogWriteEnd(&cw);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(elt_backfill_retry);
Datum
elt_backfill_retry(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	char	   *name;
	Backfill	bf;
	EltCatalogWrite cw;
	Oid			types[1] = {INT8OID};
	Datum		arg;
	int			chunks;
	int			n = 0;
	MemoryContext cxt = CurrentMemoryContext;

	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	EltCatalogWriteBegin(&cw);
	bf_load_named(&bf, name, cxt);
	bf_check_control(&bf, cw.actor);
	if (strcmp(bf.state, "cancelled") == 0 || strcmp(bf.state, "finished") == 0 ||
		strcmp(bf.state, "created") == 0)
		bf_wrong_state(&bf, "retry");
	EltPrepare(&plan,
			   "UPDATE elt.backfill_chunks SET state = 'pending', attempts = 0, retry_at = NULL,"
			   " finished_at = NULL WHERE backfill_id = $1 AND state = 'failed'",
			   1, types);
	arg = Int64GetDatum(bf.id);
	EltExec(plan, &arg, NULL, 0);
	chunks = (int) SPI_processed;
	if (chunks == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("backfill \"%s\" has no failed chunks", name),
				 errhint("See elt.backfill_chunks for the state of its chunks.")));
	if (strcmp(bf.state, "failed") == 0)
	{
		bf_check_relation(&bf);
		n = bf_worker_count(&bf);
		if (n > 0)
		{
			bf_check_login(&bf);
			n = bf_capped_workers(&bf, n, "retry");
		}
		bf_set_state(&bf, "running", NULL, NULL, n, true);
	}
	bf_audit(cw.actor, "backfill_retried", &bf, psprintf("\"chunks\": %d", chunks));
	EltCatalogWriteEnd(&cw);
	if (n > 0)
		bf_launch(&bf, n);
	PG_RETURN_INT32(chunks);
}

PG_FUNCTION_INFO_V1(elt_backfill_purge);

/*
 * elt.backfill_purge(older_than interval) RETURNS integer: delete the
 * finished, failed and cancelled backfills (and their chunks) that ended
 * more than older_than ago, of the roles the caller has the privileges of
 * (all, for elt_operator and superusers); the audit log keeps their story.
 */
Datum
elt_backfill_purge(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Interval   *older;
	EltCatalogWrite cw;
	Oid			types[3] = {INTERVALOID, OIDOID, BOOLOID};
	Datum		values[3];
	int			n;
	StringInfoData details;
	uint64		i;

	EltRequireCatalog("backfills");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("older_than must not be null")));
	older = PG_GETARG_INTERVAL_P(0);
	if (older->time < 0 || older->day < 0 || older->month < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative")));
	EltCatalogWriteBegin(&cw);
	values[0] = IntervalPGetDatum(older);
	values[1] = ObjectIdGetDatum(cw.actor);
	values[2] = BoolGetDatum(EltRoleIsOperator(cw.actor));
	EltPrepare(&plan,
			   "WITH purged AS (DELETE FROM elt.backfills b"
			   " WHERE b.state IN ('finished', 'cancelled', 'failed')"
			   "   AND b.finished_at < pg_catalog.now() - $1"
			   "   AND ($3 OR (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = b.owner)"
			   "                AND pg_catalog.pg_has_role($2, b.owner, 'USAGE')))"
			   " RETURNING b.name) SELECT name FROM purged ORDER BY name",
			   3, types);
	EltExec(plan, values, NULL, 0);
	n = (int) SPI_processed;
	if (n > 0)
	{
		initStringInfo(&details);
		appendStringInfoString(&details, "{\"backfills\": [");
		for (i = 0; i < SPI_processed; i++)
		{
			if (i > 0)
				appendStringInfoString(&details, ", ");
			escape_json(&details, EltSpiGetText(i, "name"));
		}
		appendStringInfoString(&details, "]}");
		EltAuditRecord(cw.actor, "backfill_purged", NULL, details.data, EltAuditReason(NULL));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT32(n);
}

/*
 * A breaking change to a relation that is going ahead pauses its running
 * backfills, with the change as the reason.  Called by the contracts engine
 * inside its catalog write context.
 */
void
EltBackfillPauseForChange(Oid actor, Oid relid, const char *code, const char *reason)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	uint64		i;
	char	   *why;
	SPITupleTable *tt;
	uint64		n;

	if (!OidIsValid(EltCatalogRelid("backfills")))
		return;
	why = psprintf("paused by breaking change %s: %s", code, reason);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(why);
	EltPrepare(&plan,
			   "UPDATE elt.backfills SET state = 'paused', state_reason = $2"
			   " WHERE rel = $1::pg_catalog.regclass AND state = 'running'"
			   " RETURNING backfill_id, name, owner::pg_catalog.text AS owner",
			   2, types);
	EltExec(plan, values, NULL, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		Backfill	bf;
		char	   *extra;

		SPI_tuptable = tt;
		memset(&bf, 0, sizeof(bf));
		bf.id = spi_int(i, "backfill_id");
		bf.name = EltSpiGetText(i, "name");
		bf.relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												get_rel_name(relid));
		extra = psprintf("\"rule\": \"%s\"", code);
		ereport(NOTICE,
				(errmsg("backfill \"%s\" paused: breaking change %s to %s",
						bf.name, code, bf.relname),
				 errhint("Check its chunk statement against the new shape, then elt.backfill_resume('%s').",
						 bf.name)));
		bf_audit(actor, "backfill_paused", &bf, extra);
	}
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

/* Claim a pending chunk that is due, inside the catalog write context. */
static bool
bf_claim(Backfill *bf, BfChunk *ch, MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {INT8OID};
	Datum		arg = Int64GetDatum(bf->id);
	bool		isnull;

	EltPrepare(&plan,
			   "SELECT chunk_no, lower_bound, upper_bound, final, attempts, rows_planned"
			   " FROM elt.backfill_chunks"
			   " WHERE backfill_id = $1 AND state = 'pending'"
			   "   AND (retry_at IS NULL OR retry_at <= pg_catalog.clock_timestamp())"
			   " ORDER BY chunk_no LIMIT 1 FOR UPDATE SKIP LOCKED",
			   1, types);
	EltExec(plan, &arg, NULL, 1);
	if (SPI_processed == 0)
		return false;
	ch->chunk_no = (int) spi_int(0, "chunk_no");
	ch->lower = spi_text(0, "lower_bound", cxt);
	ch->upper = spi_text(0, "upper_bound", cxt);
	ch->final = EltSpiGetBool(0, "final", &isnull);
	ch->attempts = (int) spi_int(0, "attempts");
	ch->rows_planned = spi_int(0, "rows_planned");
	return true;
}

/*
 * Run a claimed chunk's statement as the owner, in a subtransaction, with
 * the backfill's settings.  Errors are caught and returned, except a cancel
 * that is not our own timeout: that one propagates, and the chunk stays
 * pending.
 */
static void
bf_execute(Backfill *bf, BfChunk *ch, EltBackfillRunner *r, BfOutcome *out)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool timer = false;

	memset(out, 0, sizeof(BfOutcome));
	if (chunk_timeout_id == MAX_TIMEOUTS)
		chunk_timeout_id = RegisterTimeout(USER_TIMEOUT, chunk_timeout_handler);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
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
			rc = SPI_execute_with_args(bf->sql, 2, types, bounds, NULL, false, 0);
			if (rc < 0)
				elog(ERROR, "chunk statement failed: %s", SPI_result_code_string(rc));
			out->rows_affected = (int64) SPI_processed;
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
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		out->ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (timer)
			disable_timeout(chunk_timeout_id, false);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
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
		if (bf_load(&cur, BF_BY_ID_FOR_UPDATE, bf->id, NULL, CurrentMemoryContext) &&
			strcmp(cur.state, "running") == 0)
		{
			char	   *reason = psprintf("chunk %d failed: %s", ch->chunk_no, out->error);
			StringInfoData extra;

			initStringInfo(&extra);
			appendStringInfo(&extra, "\"chunk\": %d, \"error\": ", ch->chunk_no);
			escape_json(&extra, out->error);
			bf_set_state(&cur, "failed", reason, NULL, 0, false);
			bf_audit(actor, "backfill_failed", &cur, extra.data);
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
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr cursor_plan = NULL;
	Oid			itypes[6] = {INT8OID, INT4OID, TEXTOID, TEXTOID, BOOLOID, INT8OID};
	Oid			ctypes[5] = {INT8OID, INT4OID, TEXTOID, BOOLOID, INT4OID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			size = bf_next_size(bf);
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

	EltCatalogWriteEnd(cw);
	q = quote_identifier(bf->key);	/* after SPI_finish: it must outlive it */
	bf_check_relation(bf);
	level = EltPinPrintSettings();
	if (bf->chunks_planned == 0)
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
	EltPrepare(&insert_plan,
			   "INSERT INTO elt.backfill_chunks (backfill_id, chunk_no, lower_bound, upper_bound,"
			   " final, rows_planned, planned_at)"
			   " VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.clock_timestamp())",
			   6, itypes);
	EltExec(insert_plan, values, nulls, 0);

	values[2] = values[3];
	nulls[2] = nulls[3];
	values[3] = BoolGetDatum(final);
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
	Oid			types[1] = {INT8OID};
	Datum		arg = Int64GetDatum(r->backfill_id);
	int64		pending;
	int64		failed;
	int64		rows;
	uint64		i;
	double		wait = -1;

	EltCatalogWriteBegin(&cw);
	if (!bf_load(&bf, BF_BY_ID_FOR_UPDATE, r->backfill_id, NULL, cxt))
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
		bf_set_state(&bf, "failed",
					 psprintf("%lld %s failed", (long long) failed, failed == 1 ? "chunk" : "chunks"),
					 NULL, 0, false);
	else
		bf_set_state(&bf, "finished", NULL, NULL, 0, false);
	bf_audit(OidIsValid(bf.owner_oid) ? bf.owner_oid : cw.actor,
			 failed > 0 ? "backfill_failed" : "backfill_finished", &bf,
			 psprintf("\"chunks\": %d, \"failed_chunks\": %lld, \"rows_affected\": %lld",
					  bf.chunks_planned, (long long) failed, (long long) rows));
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

	EltCatalogWriteBegin(&cw);
	/* a worker's first step waits for the transaction that launched it */
	if (!bf_load(&bf, r->is_worker && !r->started ? BF_BY_ID_FOR_SHARE : BF_BY_ID,
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

	bf_check_relation(&bf);
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
		StringInfoData extra;
		Oid			relid = (Oid) spi_int(0, "relid");
		Oid			owner = get_role_oid(EltSpiGetText(0, "owner"), true);

		memset(&bf, 0, sizeof(bf));
		bf.id = backfill_id;
		bf.name = EltSpiGetText(0, "name");
		bf.relname = get_rel_name(relid) ?
			quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									   get_rel_name(relid)) : psprintf("%u", relid);
		initStringInfo(&extra);
		appendStringInfoString(&extra, "\"error\": ");
		escape_json(&extra, error);
		bf_audit(OidIsValid(owner) ? owner : cw.actor, "backfill_paused", &bf, extra.data);
	}
	EltCatalogWriteEnd(&cw);
}

/* ---------------------------------------------------------------------
 * In a session: CALL elt.backfill_run
 * --------------------------------------------------------------------- */

/* A NOTICE with the backfill's progress from elt.backfill_status. */
static void
bf_progress_notice(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		arg = CStringGetTextDatum(name);

	if (SPI_execute_with_args("SELECT chunks_done, chunks_total, percent, rows_per_second, eta"
							  " FROM elt.backfill_status WHERE name = $1",
							  1, types, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed == 0)
		return;
	ereport(NOTICE,
			(errmsg("backfill \"%s\": %s of ~%s chunks done (%s%%), %s rows/s, about %s left",
					name, EltSpiGetText(0, "chunks_done"), EltSpiGetText(0, "chunks_total"),
					EltSpiGetText(0, "percent"),
					EltSpiGetText(0, "rows_per_second") ? EltSpiGetText(0, "rows_per_second") : "0",
					EltSpiGetText(0, "eta") ? EltSpiGetText(0, "eta") : "?")));
}

/* Sleep ms milliseconds, waking for interrupts. */
static void
bf_sleep(long ms)
{
	if (ms <= 0)
		return;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
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

PG_FUNCTION_INFO_V1(elt_backfill_run);
Datum
elt_backfill_run(PG_FUNCTION_ARGS)
{
	char	   *name;
	int			max_chunks = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	int			max_seconds = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	bool		atomic;
	Backfill	bf;
	EltCatalogWrite cw;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext stepcxt;
	EltBackfillRunner r;
	volatile int chunks = 0;
	volatile int64 rows = 0;
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz last_notice = start;
	const char *ended = NULL;

	atomic = !(fcinfo->context && IsA(fcinfo->context, CallContext) &&
			   !castNode(CallContext, fcinfo->context)->atomic);
	EltRequireCatalog("backfills");
	name = EltRequiredText(fcinfo, 0, "name");
	if (atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("elt.backfill_run cannot run inside a transaction block"),
				 errhint("Call it with CALL at the top level, outside BEGIN ... COMMIT, so that it can commit each chunk.")));
	if (max_chunks < 0 || max_seconds < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_chunks and max_seconds must not be negative")));
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	EltCatalogWriteBegin(&cw);
	bf_load_named(&bf, name, callcxt);
	bf_check_control(&bf, cw.actor);
	/* an operator's temporary objects must not stand for names in the owner's statement */
	if (OidIsValid(bf.owner_oid) && !has_privs_of_role(cw.actor, bf.owner_oid) && EltSessionHasTempObjects())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("backfill \"%s\" runs as role \"%s\", and this session has temporary tables or types",
						name, bf.owner),
				 errdetail("A temporary object could stand for a name in the backfill's statement, which runs as its owner."),
				 errhint("Run it from a session without temporary objects (a new session, or after DISCARD TEMP), "
						 "or start it on workers with elt.backfill_start('%s').", name)));
	if (strcmp(bf.state, "finished") == 0 || strcmp(bf.state, "paused") == 0)
	{
		EltCatalogWriteEnd(&cw);
		ereport(NOTICE,
				(errmsg("backfill \"%s\" is %s; nothing to do", name, bf.state),
				 strcmp(bf.state, "paused") == 0 ?
				 errhint("Resume it with elt.backfill_resume('%s').", name) : 0));
		SPI_finish();
		PG_RETURN_VOID();
	}
	if (strcmp(bf.state, "created") == 0)
	{
		bf_check_relation(&bf);
		if (!bf.started)
			bf_first_start(&bf);
		bf_set_state(&bf, "running", NULL, "session", 0, true);
		bf_audit(cw.actor, "backfill_started", &bf, "\"runner\": \"session\"");
	}
	else if (strcmp(bf.state, "running") != 0)
		bf_wrong_state(&bf, "run");
	EltCatalogWriteEnd(&cw);
	SPI_commit();

	stepcxt = AllocSetContextCreate(callcxt, "elt backfill step", ALLOCSET_DEFAULT_SIZES);
	memset(&r, 0, sizeof(r));
	r.backfill_id = bf.id;
	r.is_worker = false;
	EltBackfillAdvisoryLock(bf.id, true);
	PG_TRY();
	{
		for (;;)
		{
			EltBackfillStep step;
			instr_time	t0;
			instr_time	t1;

			CHECK_FOR_INTERRUPTS();
			if (max_chunks > 0 && chunks >= max_chunks)
			{
				ended = "max_chunks reached";
				break;
			}
			if (max_seconds > 0 &&
				GetCurrentTimestamp() >= start + (int64) max_seconds * USECS_PER_SEC)
			{
				ended = "max_seconds reached";
				break;
			}
			EltBackfillReadCommitted();
			INSTR_TIME_SET_CURRENT(t0);
			MemoryContextSwitchTo(stepcxt);
			step = EltBackfillStepRun(&r);
			MemoryContextSwitchTo(callcxt);
			SPI_commit();
			INSTR_TIME_SET_CURRENT(t1);
			INSTR_TIME_SUBTRACT(t1, t0);
			if (step == BF_STEP_CHUNK && r.chunk_done)
			{
				chunks++;
				rows += r.rows;
			}
			if (r.state)
				ended = pstrdup(r.state);
			MemoryContextReset(stepcxt);
			if (step == BF_STEP_FINISHED || step == BF_STEP_STOPPED)
				break;
			if (step == BF_STEP_IDLE)
			{
				ended = "other processes are running its last chunks";
				break;
			}
			if (step == BF_STEP_WAIT)
				bf_sleep(r.wait_ms);
			else if (step == BF_STEP_CHUNK)
				bf_sleep(EltBackfillThrottleMs(&r, INSTR_TIME_GET_MILLISEC(t1)));
			if (TimestampDifferenceExceeds(last_notice, GetCurrentTimestamp(), 10000))
			{
				last_notice = GetCurrentTimestamp();
				bf_progress_notice(name);
				SPI_commit();
			}
		}
	}
	PG_CATCH();
	{
		EltBackfillAdvisoryLock(bf.id, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	EltBackfillAdvisoryLock(bf.id, false);

	ereport(NOTICE,
			(errmsg("backfill \"%s\": %d %s done in this call (" INT64_FORMAT " rows); %s",
					name, chunks, chunks == 1 ? "chunk" : "chunks", rows,
					ended ? ended : "stopped")));
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * After a restart (called by the launcher's per-database scanner)
 * --------------------------------------------------------------------- */

/*
 * Launch workers for every backfill that should be running on workers and
 * has no live process, unless it was launched a moment ago (its workers may
 * still be starting).  An owner that cannot log in any more pauses it.
 */
void
EltBackfillResumeInterrupted(void)
{
	EltCatalogWrite cw;
	List	   *ids = NIL;
	ListCell   *lc;
	uint64		i;

	EltCatalogWriteBegin(&cw);
	/* a row someone holds is someone's business now; look next time */
	if (SPI_execute("SELECT backfill_id FROM elt.backfills"
					" WHERE state = 'running' AND runner = 'workers'"
					"   AND (launched_at IS NULL OR launched_at < pg_catalog.now() - interval '5 seconds')"
					"   AND elt._backfill_live_workers(backfill_id) = 0"
					" FOR UPDATE SKIP LOCKED",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list interrupted backfills");
	for (i = 0; i < SPI_processed; i++)
	{
		int64	   *id = palloc(sizeof(int64));

		*id = spi_int(i, "backfill_id");
		ids = lappend(ids, id);
	}
	foreach(lc, ids)
	{
		Backfill	bf;
		EltWorkerRoom room;
		int			n;

		if (!bf_load(&bf, BF_BY_ID, *(int64 *) lfirst(lc), NULL, CurrentMemoryContext))
			continue;
		if (bf.relname == NULL || !bf_key_intact(&bf) || !bf_can_login(&bf))
		{
			char	   *why = bf.relname == NULL ? "its relation no longer exists" :
				!bf_key_intact(&bf) ?
				psprintf("key column \"%s\" was dropped or changed type", bf.key) :
				psprintf("role \"%s\" cannot log in", bf.owner);

			bf_set_state(&bf, "paused", psprintf("could not resume after a restart: %s", why),
						 NULL, 0, false);
			bf_audit(cw.actor, "backfill_paused", &bf, "\"by\": \"launcher\"");
			ereport(LOG,
					(errmsg("elt_governance: backfill \"%s\" paused: %s", bf.name, why)));
			continue;
		}
		n = bf_worker_count(&bf);
		/* under the caps, as bf_capped_workers; at none, wait for the next round */
		EltBackfillLaunchLock();
		EltBackfillWorkerRoom(bf.owner_oid, &room);
		if (room.room == 0)
		{
			EltBackfillLaunchUnlock();
			bf_set_state(&bf, "running",
						 psprintf("waiting for a background worker: %s", bf_cap_detail(&bf, &room)),
						 NULL, 0, false);
			continue;
		}
		n = Min(n, room.room);
		bf_set_state(&bf, "running", NULL, NULL, n, false);	/* launched_at */
		n = EltBackfillLaunch(bf.id, bf.generation, bf.name, bf.owner_oid, n, LOG);
		EltBackfillLaunchUnlock();
		if (n > 0)
		{
			bf_audit(bf.owner_oid, "backfill_resumed", &bf,
					 psprintf("\"by\": \"launcher\", \"workers\": %d", n));
			ereport(LOG,
					(errmsg("elt_governance: resumed backfill \"%s\" with %d %s",
							bf.name, n, n == 1 ? "worker" : "workers")));
		}
	}
	EltCatalogWriteEnd(&cw);
}
