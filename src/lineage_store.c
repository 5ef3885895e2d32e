/*
 * lineage_store.c — how row lineage is kept once a run has written it:
 * the chunks of elt.lineage_chunks, read by elt._lineage_chunk_entries()
 * and looked up in both directions (EltLineageLookup).
 *
 * Chunks.  elt.lineage_chunks holds the lineage of one run, one direction
 * and one pair of relations, split by a hash of the key it is looked up by:
 *   dir 't': rel is the target, other_rel a source; each entry is a target
 *            key and the keys of its source rows in other_rel;
 *   dir 's': rel is a source, other_rel the target; each entry is a source
 *            key and the keys of the target rows it went into.
 * A chunk's bucket is (bits << 32) | the top `bits` bits of the key's hash,
 * with bits chosen per batch so that a chunk holds about CHUNK_BYTES of
 * entries: a run of ten rows makes one chunk, a run of a million rows some
 * thousands, and a lookup reads one chunk per run and relation.
 * elt.lineage_layout lists the bit counts used for a relation and
 * direction, so that a lookup knows which buckets to read.  How a chunk
 * is encoded is in lineage_chunk.c; how a run captures and cuts them, in
 * lineage_capture.c.
 *
 * Layering: called by lineage_rows.c (tracing); calls lineage_chunk.c
 * (decoding, packed keys) and util (SPI helpers).  A lookup runs inside
 * SPI, as the extension's owner, after lineage_rows.c has checked the
 * caller's privileges; it only reads elt.lineage_layout,
 * elt.lineage_chunks, elt.transform_runs and elt.transform_defs, and
 * takes no locks beyond those reads.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "lineage.h"
#include "lineage_chunk.h"
#include "lineage_keys.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * Decoding
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(elt_lineage_chunk_entries);

/*
 * A text decoded from a chunk, checked: canonical texts of keys are valid
 * in the database encoding and hold no zero byte, and anything else is a
 * corrupt chunk (never a text value that could not be stored or dumped).
 */
static text *
chunk_text(const char *s, int len)
{
	if (memchr(s, '\0', len) != NULL || !pg_verifymbstr(s, len, true))
		EltChunkCorrupt();
	return cstring_to_text_with_len(s, len);
}

/*
 * elt._lineage_chunk_entries(data bytea): the entries of a chunk, as
 * (key bigint, key_text text, keys bigint[], keys_text text[]).
 */
Datum
elt_lineage_chunk_entries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	bytea	   *data;
	Reader		r;
	bool		key_text,
				list_text;

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	data = PG_GETARG_BYTEA_PP(0);
	EltChunkHeader(&r, data, &key_text, &list_text);
	while (r.p < r.end)
	{
		Datum		values[4];
		bool		nulls[4] = {true, true, true, true};
		uint64		count,
					i;
		Reader		lr;
		int64	   *ints = NULL;
		char	  **texts = NULL;
		Datum	   *elems;

		if (key_text)
		{
			int			klen;
			const char *s = get_text(&r, &klen);

			if (r.key_packed)
			{
				StringInfoData buf;

				initStringInfo(&buf);
				EltKeyUnpack(&r, (const unsigned char *) s, (const unsigned char *) s + klen, &buf);
				values[1] = PointerGetDatum(chunk_text(buf.data, buf.len));
				pfree(buf.data);
			}
			else
				values[1] = PointerGetDatum(chunk_text(s, klen));
			nulls[1] = false;
		}
		else
		{
			values[0] = Int64GetDatum(unzigzag(get_varint(&r)));
			nulls[0] = false;
		}
		count = get_list(&r, list_text, &lr);
		EltChunkDecodeList(&lr, list_text, count, &ints, &texts);
		elems = palloc(sizeof(Datum) * Max(count, 1));
		for (i = 0; i < count; i++)
			elems[i] = list_text ? PointerGetDatum(chunk_text(texts[i], strlen(texts[i]))) : Int64GetDatum(ints[i]);
		if (list_text)
		{
			values[3] = PointerGetDatum(construct_array(elems, (int) count, TEXTOID, -1, false, TYPALIGN_INT));
			nulls[3] = false;
		}
		else
		{
			values[2] = PointerGetDatum(construct_array(elems, (int) count, INT8OID, 8, FLOAT8PASSBYVAL,
														TYPALIGN_DOUBLE));
			nulls[2] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Lookup
 * ---------------------------------------------------------------------
 */

/* A key looked for, with its place in the caller's list. */
typedef struct WantKey
{
	uint32		hash;
	int			index;
} WantKey;

static int
cmp_want(const void *a, const void *b)
{
	const WantKey *x = a;
	const WantKey *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

/* The latest run that wrote rel without row lineage, which hides older lineage; 0 if none. */
static int64
hiding_run(Oid rel)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {OIDOID};
	Datum		args[1];
	bool		isnull;
	int64		v;

	EltPrepare(&plan,
			   "SELECT pg_catalog.max(s.run_id) AS run_id FROM elt.transform_defs sd"
			   " JOIN elt.transform_runs s ON s.transform_id = sd.transform_id"
			   " WHERE sd.target OPERATOR(pg_catalog.=) $1::pg_catalog.regclass"
			   "   AND sd.mode IN ('merge', 'replace') AND s.lineage <> 'row'"
			   "   AND s.status = 'succeeded' AND s.rows_written > 0",
			   1, types);
	args[0] = ObjectIdGetDatum(rel);
	EltExec(plan, args, NULL, 1);
	v = EltSpiGetInt64(0, "run_id", &isnull);
	return isnull ? 0 : v;
}

/*
 * The entries of direction dir whose key (of relation rel) is one of the
 * n keys given; for each, the callback gets the key's index, the run, the
 * other relation and a reader over the entry's list.
 */
typedef void (*HitFn) (void *arg, int index, int64 run_id, Oid other, bool list_text,
					   uint64 count, Reader *list);

/*
 * The wanted keys packed for a layout of target keys (kept for the last
 * layout seen: a relation's chunks share one unless its key changed), with
 * the hashes of their packed forms for chunks where many keys are wanted.
 */
typedef struct PackedWant
{
	StringInfoData layout;		/* ncols and kinds, as in the header */
	char	  **keys;			/* per wanted key, len bytes (not a C string:
								 * zero bytes are common); NULL if it cannot
								 * be one */
	int		   *len;
	WantKey    *byhash;			/* packable keys by hash of the packed form */
	int			nbyhash;
} PackedWant;

/*
 * Pack the wanted keys for the layout of the chunk r is reading, once per
 * layout, and index them by the hash of their packed form.  Packed keys
 * are bytes, not C strings: they are copied and compared by length.
 */
static void
packed_want_layout(PackedWant *pw, const Reader *r, int n, const bool *is_int, char *const *tvals)
{
	StringInfoData buf;
	int			i;

	if (pw->layout.data != NULL && pw->layout.len == r->ncols + 1 &&
		(unsigned char) pw->layout.data[0] == r->ncols &&
		memcmp(pw->layout.data + 1, r->kinds, r->ncols) == 0)
		return;
	if (pw->layout.data == NULL)
	{
		initStringInfo(&pw->layout);
		pw->keys = palloc(sizeof(char *) * n);
		pw->len = palloc(sizeof(int) * n);
		pw->byhash = palloc(sizeof(WantKey) * n);
	}
	resetStringInfo(&pw->layout);
	appendStringInfoChar(&pw->layout, (char) r->ncols);
	appendBinaryStringInfo(&pw->layout, (const char *) r->kinds, r->ncols);
	initStringInfo(&buf);
	pw->nbyhash = 0;
	for (i = 0; i < n; i++)
	{
		pw->keys[i] = NULL;
		pw->len[i] = -1;
		if (is_int[i] || !EltKeyPackText(r, tvals[i], &buf))
			continue;
		/* by length: a packed key holds zero bytes (a varint 0, an empty text) */
		pw->keys[i] = palloc(buf.len);
		memcpy(pw->keys[i], buf.data, buf.len);
		pw->len[i] = buf.len;
		pw->byhash[pw->nbyhash].hash = hash_text_key(buf.data, buf.len);
		pw->byhash[pw->nbyhash].index = i;
		pw->nbyhash++;
	}
	pfree(buf.data);
	qsort(pw->byhash, pw->nbyhash, sizeof(WantKey), cmp_want);
}

/* What scan_chunk() needs to know of a lookup. */
typedef struct ChunkScan
{
	int			n;
	WantKey    *want;			/* the wanted keys by hash */
	const bool *is_int;
	const int64 *ivals;
	char	   *const *tvals;
	int		   *wlen;
	PackedWant	packed;
	int64	   *found;			/* per key, the latest run found; NULL if not kept */
	HitFn		fn;
	void	   *arg;
} ChunkScan;

static inline void
scan_hit(ChunkScan *sc, int x, int64 run_id, Oid other, bool list_text, uint64 count, Reader *list)
{
	if (sc->found && run_id > sc->found[x])
		sc->found[x] = run_id;
	sc->fn(sc->arg, x, run_id, other, list_text, count, list);
}

/* scan_hit() for each wanted key equal to the packed entry key ks. */
static void
packed_want_match(ChunkScan *sc, const char *ks, int klen, int64 run_id, Oid other, bool list_text,
				  uint64 count, const Reader *list)
{
	PackedWant *pw = &sc->packed;
	uint32		h = hash_text_key(ks, klen);
	int			lo = 0,
				hi = pw->nbyhash;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (pw->byhash[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < pw->nbyhash && pw->byhash[lo].hash == h; lo++)
	{
		int			x = pw->byhash[lo].index;
		Reader		copy = *list;

		if (pw->len[x] == klen && memcmp(pw->keys[x], ks, klen) == 0)
			scan_hit(sc, x, run_id, other, list_text, count, &copy);
	}
}


/* The range [*first, *last) of want[] whose keys fall in bucket. */
static void
bucket_range(const ChunkScan *sc, uint64 bucket, int *first, int *last)
{
	int			bbits = (int) (bucket >> 32);
	uint32		prefix = (uint32) bucket;
	int			lo = 0,
				hi = sc->n;

	*first = 0;
	*last = sc->n;
	if (bbits == 0)
		return;
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if ((sc->want[mid].hash >> (32 - bbits)) < prefix)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	hi = sc->n;
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if ((sc->want[mid].hash >> (32 - bbits)) <= prefix)
			lo = mid + 1;
		else
			hi = mid;
	}
	*last = lo;
}

/* The entries of one chunk whose key is wanted, each given to scan_hit(). */
static void
scan_chunk(ChunkScan *sc, int64 run_id, Oid other, uint64 bucket, bytea *data)
{
	int			first,
				last;
	bool		by_hash;
	Reader		r;
	bool		key_text,
				list_text;

	/* the wanted keys in this chunk's bucket: a range of want[] */
	bucket_range(sc, bucket, &first, &last);
	if (first == last)
		return;
	/* few keys: compare each entry with them; many: look each entry up by hash */
	by_hash = (last - first > 4);

	EltChunkHeader(&r, data, &key_text, &list_text);
	if (r.key_packed)
		packed_want_layout(&sc->packed, &r, sc->n, sc->is_int, sc->tvals);
	while (r.p < r.end)
	{
		bool		kint = !key_text;
		int64		kv = 0;
		const char *ks = NULL;
		int			klen = 0;
		uint64		count;
		Reader		lr;
		int			lo;
		uint32		h = 0;

		if (key_text)
			ks = get_text(&r, &klen);
		else
			kv = unzigzag(get_varint(&r));
		count = get_list(&r, list_text, &lr);

		if (by_hash)
		{
			int			hi = last;

			if (r.key_packed)
			{
				/* compare packed forms, found by their own hash */
				packed_want_match(sc, ks, klen, run_id, other, list_text, count, &lr);
				continue;
			}
			/* the first wanted key with this hash */
			h = kint ? hash_int_key(kv) : hash_text_key(ks, klen);
			lo = first;
			while (lo < hi)
			{
				int			mid = (lo + hi) / 2;

				if (sc->want[mid].hash < h)
					lo = mid + 1;
				else
					hi = mid;
			}
		}
		else
			lo = first;
		for (; lo < last; lo++)
		{
			int			x = sc->want[lo].index;
			Reader		copy = lr;

			if (by_hash && sc->want[lo].hash != h)
				break;
			if (sc->is_int[x] != kint)
				continue;
			if (r.key_packed)
			{
				if (sc->packed.len[x] != klen || memcmp(sc->packed.keys[x], ks, klen) != 0)
					continue;
			}
			else if (kint ? sc->ivals[x] != kv
					 : (sc->wlen[x] != klen || memcmp(sc->tvals[x], ks, klen) != 0))
				continue;
			scan_hit(sc, x, run_id, other, list_text, count, &copy);
		}
	}
}

/* The columns of a chunk row SPI returned: run_id, other_rel, bucket, data. */
static void
scan_row(ChunkScan *sc, SPITupleTable *tt, uint64 row, int64 *run_id, uint64 *bucket)
{
	HeapTuple	tup = tt->vals[row];
	bool		isnull;
	Oid			other;
	bytea	   *data;

	*run_id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
	other = DatumGetObjectId(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
	*bucket = (uint64) DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
	data = DatumGetByteaPP(SPI_getbinval(tup, tt->tupdesc, 4, &isnull));
	scan_chunk(sc, *run_id, other, *bucket, data);
}

/*
 * How many rounds a latest-only lookup reads newest chunks before it reads
 * what is left in one go: round k reads, per bucket still open, the chunks
 * of the newest 2^k chunks' runs.
 */
#define LATEST_ROUNDS 5

/*
 * Give fn the entries of direction dir whose key (of relation rel) is one
 * of the n keys given.  With latest_only, only entries of each key's latest
 * run matter to fn (it ignores older ones): chunks are then read newest
 * first, bucket by bucket, and a bucket is left as soon as every wanted
 * key in it has been found in a run at least as new as any chunk left in
 * it (a key rewritten by 60 runs costs one chunk, not 60).  Otherwise
 * every chunk of the keys' buckets is read.
 */
static void
scan_chunks(Oid rel, char dir, bool latest_only, int n, const bool *is_int, const int64 *ivals,
			char *const *tvals, HitFn fn, void *arg)
{
	static SPIPlanPtr bits_plan = NULL;
	static SPIPlanPtr chunk_plan = NULL;
	static SPIPlanPtr newest_plan = NULL;
	Oid			btypes[2] = {OIDOID, CHAROID};
	Oid			ctypes[3] = {OIDOID, CHAROID, INT8ARRAYOID};
	Oid			ntypes[5] = {OIDOID, CHAROID, INT8ARRAYOID, INT8ARRAYOID, INT8OID};
	Datum		args[5];
	int		   *bits;
	ChunkScan		sc;
	int			nbits,
				i,
				j;
	uint64	   *buckets;
	int			nb = 0;
	Datum	   *elems;
	uint64		row;
	SPITupleTable *tt;

	if (n == 0)
		return;
	EltPrepare(&bits_plan,
			   "SELECT bits FROM elt.lineage_layout WHERE rel = $1::pg_catalog.regclass AND dir = $2",
			   2, btypes);
	args[0] = ObjectIdGetDatum(rel);
	args[1] = CharGetDatum(dir);
	EltExec(bits_plan, args, NULL, 0);
	nbits = (int) SPI_processed;
	if (nbits == 0)
		return;
	bits = palloc(sizeof(int) * nbits);
	for (i = 0; i < nbits; i++)
	{
		bool		isnull;

		bits[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}

	memset(&sc, 0, sizeof(sc));
	sc.n = n;
	sc.is_int = is_int;
	sc.ivals = ivals;
	sc.tvals = tvals;
	sc.fn = fn;
	sc.arg = arg;
	sc.want = palloc(sizeof(WantKey) * n);
	sc.wlen = palloc(sizeof(int) * n);
	buckets = palloc(sizeof(uint64) * n * nbits);
	for (i = 0; i < n; i++)
	{
		sc.want[i].index = i;
		sc.want[i].hash = is_int[i] ? hash_int_key(ivals[i]) : hash_text_key(tvals[i], strlen(tvals[i]));
		sc.wlen[i] = is_int[i] ? 0 : (int) strlen(tvals[i]);
		for (j = 0; j < nbits; j++)
			buckets[nb++] = bucket_of(sc.want[i].hash, bits[j]);
	}
	qsort(sc.want, n, sizeof(WantKey), cmp_want);
	/* buckets are below 2^37: they sort as signed */
	qsort(buckets, nb, sizeof(uint64), EltCmpInt64);
	for (i = 0, j = 0; i < nb; i++)
		if (i == 0 || buckets[i] != buckets[i - 1])
			buckets[j++] = buckets[i];
	nb = j;
	elems = palloc(sizeof(Datum) * nb);
	for (i = 0; i < nb; i++)
		elems[i] = Int64GetDatum((int64) buckets[i]);

	if (!latest_only)
	{
		EltPrepare(&chunk_plan,
				   "SELECT run_id, other_rel::pg_catalog.oid, bucket, data FROM elt.lineage_chunks"
				   " WHERE rel = $1::pg_catalog.regclass AND dir = $2 AND bucket = ANY ($3)",
				   3, ctypes);
		args[2] = PointerGetDatum(construct_array(elems, nb, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		EltExec(chunk_plan, args, NULL, 0);
		tt = SPI_tuptable;
		for (row = 0; row < SPI_processed; row++)
		{
			int64		run_id;
			uint64		bucket;

			scan_row(&sc, tt, row, &run_id, &bucket);
		}
		return;
	}

	/*
	 * Newest first.  Per open bucket (kept sorted), everything at or above
	 * below[] has been read; a round reads the chunks from the run of the
	 * bucket's 2^round-th newest chunk under below[] (all of them if it has
	 * fewer, and in the last round), and the oldest run it read becomes
	 * below[].  A bucket where a round read nothing is done.
	 */
	EltPrepare(&newest_plan,
			   "SELECT c.run_id, c.other_rel::pg_catalog.oid, c.bucket, c.data"
			   " FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4)) AS w(bucket, below)"
			   " JOIN elt.lineage_chunks c ON c.rel = $1::pg_catalog.regclass AND c.dir = $2"
			   "  AND c.bucket = w.bucket AND c.run_id < w.below"
			   "  AND c.run_id >= COALESCE((SELECT m.run_id FROM elt.lineage_chunks m"
			   "    WHERE m.rel = $1::pg_catalog.regclass AND m.dir = $2 AND m.bucket = w.bucket"
			   "      AND m.run_id < w.below ORDER BY m.run_id DESC OFFSET $5 LIMIT 1), 0)",
			   5, ntypes);
	{
		int64	   *below = palloc(sizeof(int64) * nb);
		int64	   *bound = palloc(sizeof(int64) * nb);
		Datum	   *belems = palloc(sizeof(Datum) * nb);
		int			round;

		sc.found = palloc0(sizeof(int64) * n);
		for (i = 0; i < nb; i++)
			below[i] = PG_INT64_MAX;
		for (round = 0; nb > 0; round++)
		{
			bool		last = (round == LATEST_ROUNDS - 1);

			for (i = 0; i < nb; i++)
			{
				elems[i] = Int64GetDatum((int64) buckets[i]);
				belems[i] = Int64GetDatum(below[i]);
				bound[i] = 0;	/* nothing read: the bucket is done */
			}
			args[2] = PointerGetDatum(construct_array(elems, nb, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			args[3] = PointerGetDatum(construct_array(belems, nb, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			args[4] = Int64GetDatum(last ? PG_INT64_MAX : ((int64) 1 << round) - 1);
			EltExec(newest_plan, args, NULL, 0);
			tt = SPI_tuptable;
			for (row = 0; row < SPI_processed; row++)
			{
				int64		run_id;
				uint64		bucket;
				int			lo = 0,
							hi = nb;

				scan_row(&sc, tt, row, &run_id, &bucket);
				while (lo < hi)
				{
					int			mid = (lo + hi) / 2;

					if (buckets[mid] < bucket)
						lo = mid + 1;
					else
						hi = mid;
				}
				if (lo < nb && buckets[lo] == bucket && (bound[lo] == 0 || run_id < bound[lo]))
					bound[lo] = run_id;
			}
			/* hits hold copies of what they need */
			SPI_freetuptable(tt);
			if (last)
				break;
			/* keep the buckets where a wanted key may have a newer run still unread */
			for (i = 0, j = 0; i < nb; i++)
			{
				int			first,
							lastk,
							k;
				bool		open = false;

				if (bound[i] <= 0)
					continue;
				bucket_range(&sc, buckets[i], &first, &lastk);
				for (k = first; k < lastk && !open; k++)
					open = sc.found[sc.want[k].index] < bound[i];
				if (!open)
					continue;
				buckets[j] = buckets[i];
				below[j] = bound[i];
				j++;
			}
			nb = j;
		}
	}
}

/* Upstream: per key, the entries of its latest run. */
typedef struct UpState
{
	bool		want_keys;		/* else only whether there are any */
	int64	   *latest;			/* per key */
	List	  **hits;			/* per key: EltLineageHit * of that run */
} UpState;

static void
up_hit(void *arg, int index, int64 run_id, Oid other, bool list_text, uint64 count, Reader *list)
{
	UpState    *st = arg;
	EltLineageHit *hit;

	if (run_id < st->latest[index])
		return;
	if (run_id > st->latest[index])
	{
		st->latest[index] = run_id;
		st->hits[index] = NIL;
	}
	hit = palloc0(sizeof(EltLineageHit));
	hit->index = index;
	hit->run_id = run_id;
	hit->rel = other;
	hit->is_int = !list_text;
	hit->n = (int) count;
	if (st->want_keys)
		EltChunkDecodeList(list, list_text, count, &hit->ints, &hit->texts);
	st->hits[index] = lappend(st->hits[index], hit);
}

/* Only the latest run of each key, for checking downstream edges. */
static void
latest_hit(void *arg, int index, int64 run_id, Oid other, bool list_text, uint64 count, Reader *list)
{
	int64	   *latest = arg;

	if (run_id > latest[index])
		latest[index] = run_id;
}

/* Downstream: every (source key, run, target, target keys) entry. */
typedef struct DownState
{
	List	   *hits;
} DownState;

static void
down_hit(void *arg, int index, int64 run_id, Oid other, bool list_text, uint64 count, Reader *list)
{
	DownState  *st = arg;
	EltLineageHit *hit = palloc0(sizeof(EltLineageHit));

	hit->index = index;
	hit->run_id = run_id;
	hit->rel = other;
	hit->is_int = !list_text;
	hit->n = (int) count;
	EltChunkDecodeList(list, list_text, count, &hit->ints, &hit->texts);
	st->hits = lappend(st->hits, hit);
}

/*
 * Row lineage of n rows of rel (key i: ivals[i] if is_int[i], else the
 * canonical text tvals[i]).  Upstream: for each row, the source keys that
 * its latest run recorded, one hit per source relation.  Downstream: the
 * target rows whose latest run used one of the rows, one hit per target
 * row.  Lineage hidden by a later run without row lineage is left out.
 * Without want_keys, upstream hits only say that there are keys (their
 * lists are not decoded).
 * Called inside SPI, as the extension's owner.
 */
List *
EltLineageLookup(Oid rel, bool upstream, bool want_keys, int n, const bool *is_int,
				 const int64 *ivals, char *const *tvals)
{
	List	   *result = NIL;
	int			i;

	if (upstream)
	{
		UpState		st;
		int64		hide;

		st.want_keys = want_keys;
		st.latest = palloc0(sizeof(int64) * Max(n, 1));
		st.hits = palloc0(sizeof(List *) * Max(n, 1));
		scan_chunks(rel, 't', true, n, is_int, ivals, tvals, up_hit, &st);
		hide = hiding_run(rel);
		for (i = 0; i < n; i++)
			if (st.hits[i] != NIL && st.latest[i] >= hide)
				result = list_concat(result, st.hits[i]);
		return result;
	}
	else
	{
		DownState	st;
		List	   *targets = NIL;
		ListCell   *lc;
		ListCell   *lt;

		st.hits = NIL;
		scan_chunks(rel, 's', false, n, is_int, ivals, tvals, down_hit, &st);
		/* the targets reached, each checked against its rows' latest runs */
		foreach(lc, st.hits)
			targets = list_append_unique_oid(targets, ((EltLineageHit *) lfirst(lc))->rel);
		foreach(lt, targets)
		{
			Oid			target = lfirst_oid(lt);
			int			m = 0;
			bool	   *tint;
			int64	   *tiv;
			char	  **ttv;
			int64	   *latest;
			int64		hide = hiding_run(target);
			int			x;

			foreach(lc, st.hits)
			{
				EltLineageHit *h = lfirst(lc);

				if (h->rel == target)
					m += h->n;
			}
			tint = palloc(sizeof(bool) * Max(m, 1));
			tiv = palloc0(sizeof(int64) * Max(m, 1));
			ttv = palloc0(sizeof(char *) * Max(m, 1));
			latest = palloc0(sizeof(int64) * Max(m, 1));
			m = 0;
			foreach(lc, st.hits)
			{
				EltLineageHit *h = lfirst(lc);

				if (h->rel != target)
					continue;
				for (x = 0; x < h->n; x++, m++)
				{
					tint[m] = h->is_int;
					if (h->is_int)
						tiv[m] = h->ints[x];
					else
						ttv[m] = h->texts[x];
				}
			}
			scan_chunks(target, 't', true, m, tint, tiv, ttv, latest_hit, latest);
			m = 0;
			foreach(lc, st.hits)
			{
				EltLineageHit *h = lfirst(lc);

				if (h->rel != target)
					continue;
				for (x = 0; x < h->n; x++, m++)
				{
					EltLineageHit *one;

					if (latest[m] != h->run_id || h->run_id < hide)
						continue;
					one = palloc0(sizeof(EltLineageHit));
					*one = *h;
					one->n = 1;
					if (h->is_int)
					{
						one->ints = palloc(sizeof(int64));
						one->ints[0] = h->ints[x];
						one->texts = NULL;
					}
					else
					{
						one->texts = palloc(sizeof(char *));
						one->texts[0] = h->texts[x];
						one->ints = NULL;
					}
					result = lappend(result, one);
				}
			}
		}
		return result;
	}
}
