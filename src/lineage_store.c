/*
 * lineage_store.c — how row lineage is kept: captured while a run's INSERT
 * executes, written in chunks, and looked up in both directions.
 *
 * Capture.  The run's INSERT ... SELECT calls elt._lineage_capture() once
 * per written row, in its WHERE clause, with the row's target key and the
 * key columns the rewritten query added.  The keys go to memory; past half
 * of maintenance_work_mem (encoding takes as much again) they are encoded
 * and set aside, and capture goes on.
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
 * direction, so that a lookup knows which buckets to read.
 *
 * Encoding of a chunk (format 1): a format byte, a flags byte (1: entry
 * keys are text, 2: listed keys are text), then per entry: the key, the
 * byte length of its list, the list's count, the list.  Integers are
 * zigzag varints; a list of integers is sorted, stored as its first value
 * and the gaps; a text is its length as a varint and its bytes.
 *
 * The hash (FNV-1a over the key's canonical bytes for text, a 64-bit mix
 * for integers) depends on nothing but the key, so chunks mean the same
 * after pg_dump and restore on another machine.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "lineage.h"
#include "util.h"

#define CHUNK_FORMAT 1
#define CHUNK_BYTES 1024		/* about this much encoded lineage per chunk */
#define CHUNK_MAX_BITS 20

#define FLAG_KEY_TEXT 1
#define FLAG_LIST_TEXT 2

/* ---------------------------------------------------------------------
 * Hashing and encoding
 * ---------------------------------------------------------------------
 */

static inline uint32
hash_int_key(int64 v)
{
	uint64		x = (uint64) v;

	/* splitmix64's finalizer */
	x ^= x >> 30;
	x *= UINT64CONST(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64CONST(0x94d049bb133111eb);
	x ^= x >> 31;
	return (uint32) (x >> 32);
}

static inline uint32
hash_text_key(const char *s, int len)
{
	uint64		h = UINT64CONST(0xcbf29ce484222325);
	int			i;

	for (i = 0; i < len; i++)
	{
		h ^= (unsigned char) s[i];
		h *= UINT64CONST(0x100000001b3);
	}
	return hash_int_key((int64) h);
}

static inline uint64
bucket_of(uint32 hash, int bits)
{
	return ((uint64) bits << 32) | (bits > 0 ? (hash >> (32 - bits)) : 0);
}

static inline void
put_varint(StringInfo s, uint64 v)
{
	char	   *p;

	enlargeStringInfo(s, 10);
	p = s->data + s->len;
	while (v >= 0x80)
	{
		*p++ = (char) ((v & 0x7f) | 0x80);
		v >>= 7;
	}
	*p++ = (char) v;
	s->len = p - s->data;
	s->data[s->len] = '\0';
}

static inline uint64
zigzag(int64 v)
{
	return ((uint64) v << 1) ^ (uint64) (v >> 63);
}

static inline int64
unzigzag(uint64 v)
{
	return (int64) (v >> 1) ^ -(int64) (v & 1);
}

static inline void
put_text(StringInfo s, const char *t, int len)
{
	put_varint(s, (uint64) len);
	appendBinaryStringInfo(s, t, len);
}

/* A reader over a chunk; running off its end is an error, not a crash. */
typedef struct Reader
{
	const unsigned char *p;
	const unsigned char *end;
} Reader;

static void
corrupt(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("a chunk of elt.lineage_chunks is corrupt")));
}

static inline uint64
get_varint(Reader *r)
{
	uint64		v = 0;
	int			shift = 0;

	for (;;)
	{
		unsigned char b;

		if (r->p >= r->end || shift > 63)
			corrupt();
		b = *r->p++;
		v |= (uint64) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return v;
		shift += 7;
	}
}

static inline const char *
get_text(Reader *r, int *len)
{
	uint64		n = get_varint(r);
	const char *s = (const char *) r->p;

	if (n > (uint64) (r->end - r->p))
		corrupt();
	r->p += n;
	*len = (int) n;
	return s;
}

/* Append a sorted, distinct list of integer keys. */
static void
put_int_list(StringInfo s, const int64 *keys, uint64 n)
{
	uint64		i;

	/* gaps wrap around modulo 2^64: any order decodes back exactly */
	for (i = 0; i < n; i++)
		put_varint(s, i == 0 ? zigzag(keys[0]) : (uint64) keys[i] - (uint64) keys[i - 1]);
}

/* ---------------------------------------------------------------------
 * Capture
 * ---------------------------------------------------------------------
 */

/* The keys of one source relation, for all captured rows, in row order. */
typedef struct CapRel
{
	Oid			relid;
	bool		text;
	int64	   *ints;
	char	  **texts;
	uint32	   *lens;			/* of texts */
	uint64		n;
	uint64		cap;
} CapRel;

typedef struct Capture
{
	MemoryContext cxt;			/* the capture, its chunks */
	MemoryContext arena;		/* captured rows, reset at each flush */
	MemoryContext rowcxt;		/* printing one row's key */
	char	   *pool;			/* key texts, packed */
	Size		pool_left;
	int64		token;
	Oid			target;
	bool		target_text;
	int			nslots;
	EltLineageSlot *slots;
	int		   *slot_rel;		/* the index in rels of each slot's relation */
	int			nrels;
	CapRel	   *rels;
	/* per captured row */
	uint64		n;
	uint64		cap;
	int64	   *tint;
	char	  **ttext;
	uint32	   *tlen;
	uint32	   *thash;
	uint64	   *kstart;			/* n * nrels: where its keys start in rels[k] */
	uint32	   *kcount;			/* n * nrels: how many */
	Size		mem;
	Size		limit;
	int64		lineage_rows;	/* (target row, source relation) pairs */
	FmgrInfo	keyout;
	bool		keyout_set;
	Tuplestorestate *store;		/* encoded chunks */
	TupleDesc	desc;
} Capture;

static Capture *capture = NULL;
static bool pending_open = false;	/* the catalog insert is reading it */

/* Columns of elt._lineage_pending(). */
static TupleDesc
pending_tupdesc(void)
{
	TupleDesc	d = CreateTemplateTupleDesc(6);

	TupleDescInitEntry(d, 1, "rel", OIDOID, -1, 0);
	TupleDescInitEntry(d, 2, "dir", CHAROID, -1, 0);
	TupleDescInitEntry(d, 3, "other_rel", OIDOID, -1, 0);
	TupleDescInitEntry(d, 4, "bucket", INT8OID, -1, 0);
	TupleDescInitEntry(d, 5, "entries", INT4OID, -1, 0);
	TupleDescInitEntry(d, 6, "data", BYTEAOID, -1, 0);
	return BlessTupleDesc(d);
}

/*
 * Start capturing the lineage of a run that writes target, whose statement
 * passes token, the target key and one value per slot to
 * elt._lineage_capture().  Lives in cxt.
 */
void
EltCaptureBegin(Oid target, bool target_text, List *slots, int64 token, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Capture    *c = palloc0(sizeof(Capture));
	ListCell   *lc;
	int			i = 0;

	if (capture != NULL)
		elog(ERROR, "a lineage capture is already running");
	c->cxt = cxt;
	c->arena = AllocSetContextCreate(cxt, "elt lineage capture", ALLOCSET_DEFAULT_SIZES);
	c->rowcxt = AllocSetContextCreate(cxt, "elt lineage capture row", ALLOCSET_SMALL_SIZES);
	c->token = token;
	c->target = target;
	c->target_text = target_text;
	c->nslots = list_length(slots);
	c->slots = palloc0(sizeof(EltLineageSlot) * Max(c->nslots, 1));
	c->slot_rel = palloc0(sizeof(int) * Max(c->nslots, 1));
	c->rels = palloc0(sizeof(CapRel) * Max(c->nslots, 1));
	foreach(lc, slots)
	{
		EltLineageSlot *s = lfirst(lc);
		int			k;

		c->slots[i] = *s;
		for (k = 0; k < c->nrels; k++)
			if (c->rels[k].relid == s->relid)
				break;
		if (k == c->nrels)
		{
			c->rels[k].relid = s->relid;
			c->rels[k].text = s->text;
			c->nrels++;
		}
		c->slot_rel[i++] = k;
	}
	/* encoding a batch needs about as much again */
	c->limit = (Size) maintenance_work_mem * 1024 / 2;
	c->desc = pending_tupdesc();
	c->store = tuplestore_begin_heap(false, false, work_mem);
	MemoryContextSwitchTo(old);
	capture = c;
}

/* A NUL-terminated copy of a key text, packed with the others. */
static char *
pool_copy(Capture *c, const char *s, Size len)
{
	char	   *p;

	if (c->pool_left < len + 1)
	{
		Size		size = Max(len + 1, 64 * 1024);

		c->pool = MemoryContextAlloc(c->arena, size);
		c->pool_left = size;
		c->mem += size;
	}
	p = c->pool;
	memcpy(p, s, len);
	p[len] = '\0';
	c->pool += len + 1;
	c->pool_left -= len + 1;
	return p;
}

static void
cap_grow_rows(Capture *c)
{
	uint64		cap = c->cap ? c->cap * 2 : 1024;

	if (c->cap == 0)
	{
		c->tint = MemoryContextAllocHuge(c->arena, sizeof(int64) * cap);
		c->ttext = MemoryContextAllocHuge(c->arena, sizeof(char *) * cap);
		c->tlen = MemoryContextAllocHuge(c->arena, sizeof(uint32) * cap);
		c->thash = MemoryContextAllocHuge(c->arena, sizeof(uint32) * cap);
		c->kstart = MemoryContextAllocHuge(c->arena, sizeof(uint64) * cap * Max(c->nrels, 1));
		c->kcount = MemoryContextAllocHuge(c->arena, sizeof(uint32) * cap * Max(c->nrels, 1));
	}
	else
	{
		c->tint = repalloc_huge(c->tint, sizeof(int64) * cap);
		c->ttext = repalloc_huge(c->ttext, sizeof(char *) * cap);
		c->tlen = repalloc_huge(c->tlen, sizeof(uint32) * cap);
		c->thash = repalloc_huge(c->thash, sizeof(uint32) * cap);
		c->kstart = repalloc_huge(c->kstart, sizeof(uint64) * cap * Max(c->nrels, 1));
		c->kcount = repalloc_huge(c->kcount, sizeof(uint32) * cap * Max(c->nrels, 1));
	}
	c->mem += (cap - c->cap) * (sizeof(int64) + sizeof(char *) + 2 * sizeof(uint32) +
								(sizeof(uint64) + sizeof(uint32)) * Max(c->nrels, 1));
	c->cap = cap;
}

static void
cap_grow_keys(Capture *c, CapRel *r, uint64 more)
{
	uint64		cap;

	if (r->n + more <= r->cap)
		return;
	cap = r->cap ? r->cap : 1024;
	while (r->n + more > cap)
		cap *= 2;
	if (r->text)
	{
		r->texts = r->cap ? repalloc_huge(r->texts, sizeof(char *) * cap)
			: MemoryContextAllocHuge(c->arena, sizeof(char *) * cap);
		r->lens = r->cap ? repalloc_huge(r->lens, sizeof(uint32) * cap)
			: MemoryContextAllocHuge(c->arena, sizeof(uint32) * cap);
		c->mem += (cap - r->cap) * sizeof(uint32);
	}
	else
		r->ints = r->cap ? repalloc_huge(r->ints, sizeof(int64) * cap)
			: MemoryContextAllocHuge(c->arena, sizeof(int64) * cap);
	c->mem += (cap - r->cap) * (r->text ? sizeof(char *) : sizeof(int64));
	r->cap = cap;
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sort keys [from, r->n) of r and drop duplicates. */
static void
cap_unique(CapRel *r, uint64 from)
{
	uint64		n = r->n - from;
	uint64		i,
				j;

	if (n < 2)
		return;
	if (r->text)
	{
		char	  **t = r->texts + from;

		qsort(t, n, sizeof(char *), cmp_cstr);
		for (i = 1, j = 0; i < n; i++)
			if (strcmp(t[i], t[j]) != 0)
				t[++j] = t[i];
	}
	else
	{
		int64	   *v = r->ints + from;

		qsort(v, n, sizeof(int64), EltCmpInt64);
		for (i = 1, j = 0; i < n; i++)
			if (v[i] != v[j])
				v[++j] = v[i];
	}
	r->n = from + j + 1;
}

/* Append the keys of one slot value (one key, or an array of them). */
static void
cap_add(Capture *c, CapRel *r, EltLineageSlot *s, Datum v)
{
	if (!s->array)
	{
		cap_grow_keys(c, r, 1);
		if (s->text)
		{
			text	   *t = DatumGetTextPP(v);

			r->lens[r->n] = VARSIZE_ANY_EXHDR(t);
			r->texts[r->n] = pool_copy(c, VARDATA_ANY(t), r->lens[r->n]);

		}
		else
			r->ints[r->n] = DatumGetInt64(v);
		r->n++;
	}
	else
	{
		ArrayType  *a = DatumGetArrayTypeP(v);
		Datum	   *elems;
		bool	   *nulls;
		int			n,
					i;

		if (s->text)
			deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		else
			deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
		cap_grow_keys(c, r, n);
		for (i = 0; i < n; i++)
		{
			if (nulls[i])
				continue;
			if (s->text)
			{
				text	   *t = DatumGetTextPP(elems[i]);

				r->lens[r->n] = VARSIZE_ANY_EXHDR(t);
				r->texts[r->n] = pool_copy(c, VARDATA_ANY(t), r->lens[r->n]);

			}
			else
				r->ints[r->n] = DatumGetInt64(elems[i]);
			r->n++;
		}
		pfree(elems);
		pfree(nulls);
		if ((Pointer) a != DatumGetPointer(v))
			pfree(a);
	}
}

/* Put one encoded chunk into the capture's store. */
static void
cap_put_chunk(Capture *c, Oid rel, char dir, Oid other, uint64 bucket, int entries,
			  StringInfo data)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	bytea	   *b = palloc(VARHDRSZ + data->len);

	SET_VARSIZE(b, VARHDRSZ + data->len);
	memcpy(VARDATA(b), data->data, data->len);
	values[0] = ObjectIdGetDatum(rel);
	values[1] = CharGetDatum(dir);
	values[2] = ObjectIdGetDatum(other);
	values[3] = Int64GetDatum((int64) bucket);
	values[4] = Int32GetDatum(entries);
	values[5] = PointerGetDatum(b);
	tuplestore_putvalues(c->store, c->desc, values, nulls);
	pfree(b);
}

static int
bits_for(uint64 bytes)
{
	int			bits = 0;

	while (bits < CHUNK_MAX_BITS && (bytes >> bits) > CHUNK_BYTES)
		bits++;
	return bits;
}

/*
 * Counting sort of n items by bucket (their hash's top bits): on return
 * order[] lists the items bucket by bucket and start[b] .. start[b + 1]
 * delimits bucket b.
 */
static void
bucket_sort(const uint32 *hash, const uint32 *items, uint64 n, int bits,
			uint32 *order, uint64 *start)
{
	uint64		nb = (uint64) 1 << bits;
	uint64		i;

	memset(start, 0, sizeof(uint64) * (nb + 1));
	for (i = 0; i < n; i++)
		start[(bits ? hash[i] >> (32 - bits) : 0) + 1]++;
	for (i = 0; i < nb; i++)
		start[i + 1] += start[i];
	{
		uint64	   *pos = palloc(sizeof(uint64) * nb);

		memcpy(pos, start, sizeof(uint64) * nb);
		for (i = 0; i < n; i++)
			order[pos[bits ? hash[i] >> (32 - bits) : 0]++] = items ? items[i] : (uint32) i;
		pfree(pos);
	}
}

/* Chunks of direction 't' for source relation k: target key -> its keys. */
static void
flush_target(Capture *c, int k)
{
	CapRel	   *r = &c->rels[k];
	uint32	   *items;
	uint32	   *hash;
	uint32	   *order;
	uint64	   *start;
	uint64		m = 0,
				i,
				bytes = 0;
	int			bits;
	uint64		b;
	StringInfoData buf;
	StringInfoData list;

	items = MemoryContextAllocHuge(c->arena, sizeof(uint32) * Max(c->n, 1));
	hash = MemoryContextAllocHuge(c->arena, sizeof(uint32) * Max(c->n, 1));
	for (i = 0; i < c->n; i++)
	{
		uint32		cnt = c->kcount[i * c->nrels + k];

		if (cnt == 0)
			continue;
		items[m] = (uint32) i;
		hash[m] = c->thash[i];
		m++;
		bytes += (c->target_text ? c->tlen[i] + 1 : 5) + 3 + (uint64) cnt * (r->text ? 16 : 3);
	}
	if (m == 0)
		return;
	bits = bits_for(bytes);
	order = MemoryContextAllocHuge(c->arena, sizeof(uint32) * m);
	start = MemoryContextAllocHuge(c->arena, sizeof(uint64) * (((uint64) 1 << bits) + 1));
	bucket_sort(hash, items, m, bits, order, start);
	initStringInfo(&buf);
	initStringInfo(&list);
	for (b = 0; b < ((uint64) 1 << bits); b++)
	{
		uint64		j;

		CHECK_FOR_INTERRUPTS();
		if (start[b] == start[b + 1])
			continue;
		resetStringInfo(&buf);
		appendStringInfoChar(&buf, CHUNK_FORMAT);
		appendStringInfoChar(&buf, (c->target_text ? FLAG_KEY_TEXT : 0) | (r->text ? FLAG_LIST_TEXT : 0));
		for (j = start[b]; j < start[b + 1]; j++)
		{
			uint64		e = order[j];
			uint64		ks = c->kstart[e * c->nrels + k];
			uint32		cnt = c->kcount[e * c->nrels + k];
			uint32		x;

			if (c->target_text)
				put_text(&buf, c->ttext[e], c->tlen[e]);
			else
				put_varint(&buf, zigzag(c->tint[e]));
			resetStringInfo(&list);
			if (r->text)
				for (x = 0; x < cnt; x++)
					put_text(&list, r->texts[ks + x], r->lens[ks + x]);
			else
				put_int_list(&list, r->ints + ks, cnt);
			put_varint(&buf, (uint64) list.len);
			put_varint(&buf, cnt);
			appendBinaryStringInfo(&buf, list.data, list.len);
		}
		cap_put_chunk(c, c->target, 't', r->relid, bucket_of((uint32) (b << (32 - Max(bits, 1))), bits),
					  (int) (start[b + 1] - start[b]), &buf);
	}
	pfree(buf.data);
	pfree(list.data);
	pfree(items);
	pfree(hash);
	pfree(order);
	pfree(start);
}

/* One (source key, target row) pair of direction 's'. */
typedef struct SPair
{
	uint32		hash;
	uint32		row;			/* the captured target row */
	uint64		pos;			/* the source key in rels[k] */
} SPair;

static const Capture *sort_cap;
static const CapRel *sort_rel;

static int
cmp_spair(const void *a, const void *b)
{
	const SPair *x = a;
	const SPair *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (sort_rel->text)
	{
		int			r = strcmp(sort_rel->texts[x->pos], sort_rel->texts[y->pos]);

		if (r != 0)
			return r;
	}
	else if (sort_rel->ints[x->pos] != sort_rel->ints[y->pos])
		return sort_rel->ints[x->pos] < sort_rel->ints[y->pos] ? -1 : 1;
	if (!sort_cap->target_text && sort_cap->tint[x->row] != sort_cap->tint[y->row])
		return sort_cap->tint[x->row] < sort_cap->tint[y->row] ? -1 : 1;
	return (x->row > y->row) - (x->row < y->row);
}

static inline bool
same_source(const CapRel *r, const SPair *x, const SPair *y)
{
	if (x->hash != y->hash)
		return false;
	return r->text ? strcmp(r->texts[x->pos], r->texts[y->pos]) == 0
		: r->ints[x->pos] == r->ints[y->pos];
}

/* Chunks of direction 's' for source relation k: source key -> target keys. */
static void
flush_source(Capture *c, int k)
{
	CapRel	   *r = &c->rels[k];
	SPair	   *pairs;
	SPair	   *sorted;
	uint32	   *hash;
	uint32	   *order;
	uint64	   *start;
	uint64		n = r->n,
				i,
				p = 0,
				bytes = 0;
	int			bits;
	uint64		b;
	StringInfoData buf;
	StringInfoData list;
	int64	   *tk;
	uint64		tkcap;

	if (n == 0)
		return;
	if (n > PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many lineage keys in one batch"),
				 errhint("Lower maintenance_work_mem for the run.")));
	pairs = MemoryContextAllocHuge(c->arena, sizeof(SPair) * n);
	hash = MemoryContextAllocHuge(c->arena, sizeof(uint32) * n);
	for (i = 0; i < c->n; i++)
	{
		uint64		ks = c->kstart[i * c->nrels + k];
		uint32		cnt = c->kcount[i * c->nrels + k];
		uint32		x;

		for (x = 0; x < cnt; x++)
		{
			uint64		pos = ks + x;

			pairs[p].hash = r->text ? hash_text_key(r->texts[pos], r->lens[pos])
				: hash_int_key(r->ints[pos]);
			pairs[p].row = (uint32) i;
			pairs[p].pos = pos;
			hash[p] = pairs[p].hash;
			bytes += (r->text ? r->lens[pos] + 1 : 4) +
				(c->target_text ? c->tlen[i] + 1 : 3);
			p++;
		}
	}
	Assert(p == n);
	bits = bits_for(bytes);
	order = MemoryContextAllocHuge(c->arena, sizeof(uint32) * n);
	start = MemoryContextAllocHuge(c->arena, sizeof(uint64) * (((uint64) 1 << bits) + 1));
	bucket_sort(hash, NULL, n, bits, order, start);
	pfree(hash);
	sorted = MemoryContextAllocHuge(c->arena, sizeof(SPair) * n);
	for (i = 0; i < n; i++)
		sorted[i] = pairs[order[i]];
	pfree(pairs);
	pfree(order);
	sort_cap = c;
	sort_rel = r;
	initStringInfo(&buf);
	initStringInfo(&list);
	tkcap = 64;
	tk = palloc(sizeof(int64) * tkcap);
	for (b = 0; b < ((uint64) 1 << bits); b++)
	{
		uint64		j,
					entries = 0;

		CHECK_FOR_INTERRUPTS();
		if (start[b] == start[b + 1])
			continue;
		qsort(sorted + start[b], start[b + 1] - start[b], sizeof(SPair), cmp_spair);
		resetStringInfo(&buf);
		appendStringInfoChar(&buf, CHUNK_FORMAT);
		appendStringInfoChar(&buf, (r->text ? FLAG_KEY_TEXT : 0) | (c->target_text ? FLAG_LIST_TEXT : 0));
		for (j = start[b]; j < start[b + 1];)
		{
			uint64		g = j;
			uint64		cnt;

			while (g < start[b + 1] && same_source(r, &sorted[j], &sorted[g]))
				g++;
			cnt = g - j;
			if (r->text)
				put_text(&buf, r->texts[sorted[j].pos], r->lens[sorted[j].pos]);
			else
				put_varint(&buf, zigzag(r->ints[sorted[j].pos]));
			resetStringInfo(&list);
			if (c->target_text)
			{
				uint64		x;

				for (x = j; x < g; x++)
					put_text(&list, c->ttext[sorted[x].row], c->tlen[sorted[x].row]);
			}
			else
			{
				uint64		x;

				/* sorted by target key within the group; one row per key */
				if (cnt > tkcap)
				{
					tkcap = cnt;
					tk = repalloc_huge(tk, sizeof(int64) * tkcap);
				}
				for (x = j; x < g; x++)
					tk[x - j] = c->tint[sorted[x].row];
				put_int_list(&list, tk, cnt);
			}
			put_varint(&buf, (uint64) list.len);
			put_varint(&buf, cnt);
			appendBinaryStringInfo(&buf, list.data, list.len);
			entries++;
			j = g;
		}
		cap_put_chunk(c, r->relid, 's', c->target, bucket_of((uint32) (b << (32 - Max(bits, 1))), bits),
					  (int) entries, &buf);
	}
	pfree(tk);
	pfree(buf.data);
	pfree(list.data);
	pfree(sorted);
	pfree(start);
}

/* Encode what was captured so far into chunks, and forget it. */
static void
cap_flush(Capture *c)
{
	MemoryContext old = MemoryContextSwitchTo(c->arena);
	int			k;

	for (k = 0; k < c->nrels; k++)
	{
		flush_target(c, k);
		flush_source(c, k);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(c->arena);
	c->pool = NULL;
	c->pool_left = 0;
	c->n = c->cap = 0;
	c->mem = 0;
	for (k = 0; k < c->nrels; k++)
		c->rels[k].n = c->rels[k].cap = 0;
}

/* The run's statement is done: encode the rest.  Returns the lineage rows. */
int64
EltCaptureEnd(void)
{
	Capture    *c = capture;

	if (c == NULL)
		elog(ERROR, "no lineage capture is running");
	cap_flush(c);
	MemoryContextDelete(c->arena);
	c->arena = NULL;
	return c->lineage_rows;
}

/* Forget the capture and its chunks (their memory goes with their context). */
void
EltCaptureDrop(void)
{
	capture = NULL;
	pending_open = false;
}

/* Allow elt._lineage_pending() while the run's catalog insert reads it. */
void
EltCaptureOpenPending(bool open)
{
	pending_open = open;
}

PG_FUNCTION_INFO_V1(elt_lineage_capture);

/*
 * elt._lineage_capture(token, target_key, VARIADIC keys): keep the lineage
 * of one row the running transform writes.  Always true.
 */
Datum
elt_lineage_capture(PG_FUNCTION_ARGS)
{
	Capture    *c = capture;
	MemoryContext old;
	uint64		e;
	int			i,
				k;

	if (c == NULL || c->arena == NULL || PG_ARGISNULL(0) || PG_GETARG_INT64(0) != c->token)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("elt._lineage_capture() is used only by elt.transform_run()")));
	if (PG_NARGS() != c->nslots + 2)
		elog(ERROR, "elt._lineage_capture() expected %d arguments, got %d", c->nslots + 2, PG_NARGS());
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("a row written by the transform has a NULL primary key")));

	old = MemoryContextSwitchTo(c->arena);
	if (c->n == c->cap)
		cap_grow_rows(c);
	e = c->n;
	if (c->target_text)
	{
		if (!c->keyout_set)
		{
			Oid			outfn;
			bool		varlena;

			getTypeOutputInfo(get_fn_expr_argtype(fcinfo->flinfo, 1), &outfn, &varlena);
			fmgr_info_cxt(outfn, &c->keyout, c->cxt);
			c->keyout_set = true;
		}
		{
			MemoryContext o2 = MemoryContextSwitchTo(c->rowcxt);
			char	   *k = EltKeyTextCall(&c->keyout, PG_GETARG_DATUM(1));

			MemoryContextSwitchTo(o2);
			c->tlen[e] = strlen(k);
			c->ttext[e] = pool_copy(c, k, c->tlen[e]);
			MemoryContextReset(c->rowcxt);
		}
		c->thash[e] = hash_text_key(c->ttext[e], c->tlen[e]);
	}
	else
	{
		c->tint[e] = PG_GETARG_INT64(1);
		c->thash[e] = hash_int_key(c->tint[e]);
	}
	for (k = 0; k < c->nrels; k++)
	{
		CapRel	   *r = &c->rels[k];
		uint64		from = r->n;
		int			used = 0;

		for (i = 0; i < c->nslots; i++)
		{
			if (c->slot_rel[i] != k || PG_ARGISNULL(i + 2))
				continue;
			cap_add(c, r, &c->slots[i], PG_GETARG_DATUM(i + 2));
			used++;
		}
		if (used > 1)
			cap_unique(r, from);
		if (r->n - from > PG_UINT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a row written by the transform has too many source rows")));
		c->kstart[e * c->nrels + k] = from;
		c->kcount[e * c->nrels + k] = (uint32) (r->n - from);
		if (r->n > from)
			c->lineage_rows++;
	}
	c->n++;
	MemoryContextSwitchTo(old);
	if (c->mem > c->limit || c->n >= PG_UINT32_MAX - 1)
		cap_flush(c);
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(elt_lineage_pending);

/* elt._lineage_pending(): the chunks of the current run, once. */
Datum
elt_lineage_pending(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Capture    *c = capture;

	if (!pending_open)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("elt._lineage_pending() is used only by elt.transform_run()")));
	if (c == NULL || c->store == NULL)
	{
		InitMaterializedSRF(fcinfo, 0);
		return (Datum) 0;
	}
	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = c->store;
	rsinfo->setDesc = CreateTupleDescCopy(c->desc);
	c->store = NULL;
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Decoding
 * ---------------------------------------------------------------------
 */

/* Decode a list of count keys (ints or texts) from r. */
static void
decode_list(Reader *r, bool text, uint64 count, int64 **ints, char ***texts)
{
	uint64		i;

	if (count > (uint64) (r->end - r->p))
		corrupt();				/* every key takes a byte at least */
	if (text)
	{
		*texts = palloc(sizeof(char *) * Max(count, 1));
		for (i = 0; i < count; i++)
		{
			int			len;
			const char *s = get_text(r, &len);

			(*texts)[i] = pnstrdup(s, len);
		}
	}
	else
	{
		int64		prev = 0;

		*ints = palloc(sizeof(int64) * Max(count, 1));
		for (i = 0; i < count; i++)
		{
			uint64		v = get_varint(r);

			prev = i == 0 ? unzigzag(v) : (int64) ((uint64) prev + v);
			(*ints)[i] = prev;
		}
	}
}

static void
chunk_header(Reader *r, bytea *data, bool *key_text, bool *list_text)
{
	r->p = (const unsigned char *) VARDATA_ANY(data);
	r->end = r->p + VARSIZE_ANY_EXHDR(data);
	if (r->end - r->p < 2 || r->p[0] != CHUNK_FORMAT)
		corrupt();
	*key_text = (r->p[1] & FLAG_KEY_TEXT) != 0;
	*list_text = (r->p[1] & FLAG_LIST_TEXT) != 0;
	r->p += 2;
}

PG_FUNCTION_INFO_V1(elt_lineage_chunk_entries);

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
	chunk_header(&r, data, &key_text, &list_text);
	while (r.p < r.end)
	{
		Datum		values[4];
		bool		nulls[4] = {true, true, true, true};
		uint64		len,
					count,
					i;
		Reader		lr;
		int64	   *ints = NULL;
		char	  **texts = NULL;
		Datum	   *elems;

		if (key_text)
		{
			int			klen;
			const char *s = get_text(&r, &klen);

			values[1] = PointerGetDatum(cstring_to_text_with_len(s, klen));
			nulls[1] = false;
		}
		else
		{
			values[0] = Int64GetDatum(unzigzag(get_varint(&r)));
			nulls[0] = false;
		}
		len = get_varint(&r);
		count = get_varint(&r);
		if (len > (uint64) (r.end - r.p))
			corrupt();
		lr.p = r.p;
		lr.end = r.p + len;
		r.p += len;
		decode_list(&lr, list_text, count, &ints, &texts);
		elems = palloc(sizeof(Datum) * Max(count, 1));
		for (i = 0; i < count; i++)
			elems[i] = list_text ? CStringGetTextDatum(texts[i]) : Int64GetDatum(ints[i]);
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

static void
scan_chunks(Oid rel, char dir, int n, const bool *is_int, const int64 *ivals,
			char *const *tvals, HitFn fn, void *arg)
{
	static SPIPlanPtr bits_plan = NULL;
	static SPIPlanPtr chunk_plan = NULL;
	Oid			btypes[2] = {OIDOID, CHAROID};
	Oid			ctypes[3] = {OIDOID, CHAROID, INT8ARRAYOID};
	Datum		args[3];
	int		   *bits;
	int			nbits,
				i,
				j;
	WantKey    *want;
	uint64	   *buckets;
	int			nb = 0;
	Datum	   *elems;
	uint64		row,
				nrows;
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

	want = palloc(sizeof(WantKey) * n);
	buckets = palloc(sizeof(uint64) * n * nbits);
	for (i = 0; i < n; i++)
	{
		want[i].index = i;
		want[i].hash = is_int[i] ? hash_int_key(ivals[i]) : hash_text_key(tvals[i], strlen(tvals[i]));
		for (j = 0; j < nbits; j++)
			buckets[nb++] = bucket_of(want[i].hash, bits[j]);
	}
	qsort(want, n, sizeof(WantKey), cmp_want);
	/* buckets are below 2^37: they sort as signed */
	qsort(buckets, nb, sizeof(uint64), EltCmpInt64);
	elems = palloc(sizeof(Datum) * nb);
	for (i = 0, j = 0; i < nb; i++)
		if (i == 0 || buckets[i] != buckets[i - 1])
			elems[j++] = Int64GetDatum((int64) buckets[i]);

	EltPrepare(&chunk_plan,
			   "SELECT run_id, other_rel::pg_catalog.oid, data FROM elt.lineage_chunks"
			   " WHERE rel = $1::pg_catalog.regclass AND dir = $2 AND bucket = ANY ($3)",
			   3, ctypes);
	args[2] = PointerGetDatum(construct_array(elems, j, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	EltExec(chunk_plan, args, NULL, 0);
	tt = SPI_tuptable;
	nrows = SPI_processed;

	for (row = 0; row < nrows; row++)
	{
		HeapTuple	tup = tt->vals[row];
		bool		isnull;
		int64		run_id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
		Oid			other = DatumGetObjectId(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
		bytea	   *data = DatumGetByteaPP(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
		Reader		r;
		bool		key_text,
					list_text;

		chunk_header(&r, data, &key_text, &list_text);
		while (r.p < r.end)
		{
			bool		kint = !key_text;
			int64		kv = 0;
			const char *ks = NULL;
			int			klen = 0;
			uint32		h;
			uint64		len,
						count;
			Reader		lr;
			int			lo,
						hi;

			if (key_text)
			{
				ks = get_text(&r, &klen);
				h = hash_text_key(ks, klen);
			}
			else
			{
				kv = unzigzag(get_varint(&r));
				h = hash_int_key(kv);
			}
			len = get_varint(&r);
			count = get_varint(&r);
			if (len > (uint64) (r.end - r.p))
				corrupt();
			lr.p = r.p;
			lr.end = r.p + len;
			r.p += len;

			/* the first wanted key with this hash */
			lo = 0;
			hi = n;
			while (lo < hi)
			{
				int			mid = (lo + hi) / 2;

				if (want[mid].hash < h)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (; lo < n && want[lo].hash == h; lo++)
			{
				int			x = want[lo].index;
				Reader		copy = lr;

				if (is_int[x] != kint)
					continue;
				if (kint ? ivals[x] != kv
					: ((int) strlen(tvals[x]) != klen || memcmp(tvals[x], ks, klen) != 0))
					continue;
				fn(arg, x, run_id, other, list_text, count, &copy);
			}
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
		decode_list(list, list_text, count, &hit->ints, &hit->texts);
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
	decode_list(list, list_text, count, &hit->ints, &hit->texts);
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
		scan_chunks(rel, 't', n, is_int, ivals, tvals, up_hit, &st);
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
		scan_chunks(rel, 's', n, is_int, ivals, tvals, down_hit, &st);
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
			scan_chunks(target, 't', m, tint, tiv, ttv, latest_hit, latest);
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
