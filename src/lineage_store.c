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
#define CHUNK_BYTES 4096		/* at most this much encoded lineage per chunk, on average */
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
 *
 * Each captured row is encoded at once, while its values are at hand,
 * into partitions by the top PART_BITS bits of a key hash: for each
 * source relation, its 't' entry (target key and its source keys) goes
 * to the partition of the target key's hash, and one 's' record per
 * (source key, target key) pair to the partition of the source key's
 * hash.  A flush then reads the partitions in hash order, each small
 * enough to sort in cache, and cuts them into chunks.
 *
 *   't' record: hash (4 bytes), length (4), the entry as a chunk holds it;
 *   's' record: hash (4), length (4), source key, target key; a key is
 *               8 bytes for an integer, else its length (4) and bytes.
 * ---------------------------------------------------------------------
 */

#define PART_BITS 8
#define NPART (1 << PART_BITS)

/* The lineage captured for one source relation. */
typedef struct CapRel
{
	Oid			relid;
	bool		text;
	/* the keys of the row being captured */
	int64	   *ints;
	char	  **texts;			/* NUL-terminated copies */
	uint32	   *lens;
	uint64		n;
	uint64		cap;
	/* encoded records, by partition */
	StringInfoData tpart[NPART];
	StringInfoData spart[NPART];
	uint64		tbytes;			/* size of the 't' entries */
	uint64		sbytes;			/* about the size of the 's' entries */
} CapRel;

typedef struct Capture
{
	MemoryContext cxt;			/* the capture, its chunks */
	MemoryContext arena;		/* captured records, reset at each flush */
	MemoryContext rowcxt;		/* one row's scratch */
	int64		token;
	Oid			target;
	bool		target_text;
	int			key_cols;		/* arguments that make the target key */
	EltKeyPrinter keyprint;
	bool		keyprint_set;
	StringInfoData keybuf;		/* the row's target key, printed */
	StringInfoData list;		/* scratch: an encoded list */
	Datum	   *keyvals;
	bool	   *keynulls;
	int			nslots;
	EltLineageSlot *slots;
	int		   *slot_rel;		/* the index in rels of each slot's relation */
	int			nrels;
	CapRel	   *rels;
	uint64		n;				/* rows in this batch */
	Size		mem;
	Size		limit;
	int64		lineage_rows;	/* (target row, source relation) pairs */
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
 * passes token, the target key (a bigint, or key_cols columns printed as
 * text) and one value per slot to elt._lineage_capture().  Lives in cxt.
 */
void
EltCaptureBegin(Oid target, int key_cols, List *slots, int64 token, MemoryContext cxt)
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
	c->target_text = (key_cols > 0);
	c->key_cols = Max(key_cols, 1);
	initStringInfo(&c->keybuf);
	initStringInfo(&c->list);
	c->keyvals = palloc(sizeof(Datum) * c->key_cols);
	c->keynulls = palloc0(sizeof(bool) * c->key_cols);
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
	/* a flush needs little more than the records themselves */
	c->limit = (Size) maintenance_work_mem * 1024;
	c->desc = pending_tupdesc();
	c->store = tuplestore_begin_heap(false, false, work_mem);
	MemoryContextSwitchTo(old);
	capture = c;
}

/* Room for more keys of the current row of r (in the row context). */
static void
cap_grow_keys(Capture *c, CapRel *r, uint64 more)
{
	uint64		cap;
	MemoryContext old;

	if (r->n + more <= r->cap)
		return;
	cap = r->cap ? r->cap : 16;
	while (r->n + more > cap)
		cap *= 2;
	old = MemoryContextSwitchTo(c->cxt);
	if (r->text)
	{
		r->texts = r->cap ? repalloc_huge(r->texts, sizeof(char *) * cap)
			: MemoryContextAllocHuge(c->cxt, sizeof(char *) * cap);
		r->lens = r->cap ? repalloc_huge(r->lens, sizeof(uint32) * cap)
			: MemoryContextAllocHuge(c->cxt, sizeof(uint32) * cap);
	}
	else
		r->ints = r->cap ? repalloc_huge(r->ints, sizeof(int64) * cap)
			: MemoryContextAllocHuge(c->cxt, sizeof(int64) * cap);
	MemoryContextSwitchTo(old);
	r->cap = cap;
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sort the current row's keys of r and drop duplicates. */
static void
cap_unique(CapRel *r)
{
	uint64		n = r->n;
	uint64		i,
				j;

	if (n < 2)
		return;
	if (r->text)
	{
		qsort(r->texts, n, sizeof(char *), cmp_cstr);
		for (i = 1, j = 0; i < n; i++)
			if (strcmp(r->texts[i], r->texts[j]) != 0)
			{
				j++;
				r->texts[j] = r->texts[i];
				r->lens[j] = r->lens[i];
			}
	}
	else
	{
		qsort(r->ints, n, sizeof(int64), EltCmpInt64);
		for (i = 1, j = 0; i < n; i++)
			if (r->ints[i] != r->ints[j])
				r->ints[++j] = r->ints[i];
	}
	r->n = j + 1;
}

/* Add one text key to the current row of r (copied into the row context). */
static inline void
cap_add_text(Capture *c, CapRel *r, text *t)
{
	uint32		len = VARSIZE_ANY_EXHDR(t);

	r->lens[r->n] = len;
	r->texts[r->n] = MemoryContextAlloc(c->rowcxt, len + 1);
	memcpy(r->texts[r->n], VARDATA_ANY(t), len);
	r->texts[r->n][len] = '\0';
	r->n++;
}

/* Add the keys of one slot value (one key, or an array of them) to the current row. */
static void
cap_add(Capture *c, CapRel *r, EltLineageSlot *s, Datum v)
{
	if (!s->array)
	{
		cap_grow_keys(c, r, 1);
		if (s->text)
			cap_add_text(c, r, DatumGetTextPP(v));
		else
			r->ints[r->n++] = DatumGetInt64(v);
	}
	else
	{
		ArrayType  *a = DatumGetArrayTypeP(v);
		int			n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));

		cap_grow_keys(c, r, n);
		if (!s->text && !ARR_HASNULL(a))
		{
			/* bigint[] without NULLs: the values are an aligned C array */
			memcpy(r->ints + r->n, (char *) a + ARR_OVERHEAD_NONULLS(ARR_NDIM(a)), sizeof(int64) * n);
			r->n += n;
		}
		else
		{
			Datum	   *elems;
			bool	   *nulls;
			int			i;
			MemoryContext old = MemoryContextSwitchTo(c->rowcxt);

			if (s->text)
				deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
			else
				deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
			MemoryContextSwitchTo(old);
			for (i = 0; i < n; i++)
			{
				if (nulls[i])
					continue;
				if (s->text)
					cap_add_text(c, r, DatumGetTextPP(elems[i]));
				else
					r->ints[r->n++] = DatumGetInt64(elems[i]);
			}
		}
	}
}

static inline uint32
get_u32(const char *p)
{
	uint32		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline int64
get_i64(const char *p)
{
	int64		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Write a varint at p; returns the end. */
static inline char *
write_varint(char *p, uint64 v)
{
	while (v >= 0x80)
	{
		*p++ = (char) ((v & 0x7f) | 0x80);
		v >>= 7;
	}
	*p++ = (char) v;
	return p;
}

/* Write an 's' record key at p: 8 bytes, or length and bytes; returns the end. */
static inline char *
write_rec_key(char *p, bool is_text, int64 v, const char *t, uint32 len)
{
	if (is_text)
	{
		memcpy(p, &len, sizeof(len));
		memcpy(p + sizeof(len), t, len);
		return p + sizeof(len) + len;
	}
	memcpy(p, &v, sizeof(v));
	return p + sizeof(v);
}

/* Room for more bytes at the end of a partition buffer, counted in c->mem. */
static inline char *
part_reserve(Capture *c, StringInfo s, Size more)
{
	if (s->data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(c->arena);

		initStringInfo(s);
		MemoryContextSwitchTo(old);
		c->mem += s->maxlen;
	}
	if ((Size) s->len + more >= (Size) s->maxlen)
	{
		int			before = s->maxlen;

		enlargeStringInfo(s, (int) more);
		c->mem += s->maxlen - before;
	}
	return s->data + s->len;
}

/* Encode the current row's keys of r: its 't' entry and its 's' pairs. */
static void
cap_encode_row(Capture *c, CapRel *r, uint32 thash, int64 tkey)
{
	StringInfo	list = &c->list;
	StringInfo	s;
	char	   *p;
	char	   *lenp;
	uint32		len;
	uint64		x;

	/* 't': the target key and the sorted source keys */
	resetStringInfo(list);
	if (r->text)
		for (x = 0; x < r->n; x++)
			put_text(list, r->texts[x], r->lens[x]);
	else
		put_int_list(list, r->ints, r->n);
	s = &r->tpart[thash >> (32 - PART_BITS)];
	p = part_reserve(c, s, 2 * sizeof(uint32) + 30 + c->keybuf.len + list->len);
	memcpy(p, &thash, sizeof(thash));
	lenp = p + sizeof(uint32);
	p = lenp + sizeof(uint32);
	{
		char	   *entry = p;

		if (c->target_text)
		{
			p = write_varint(p, (uint64) c->keybuf.len);
			memcpy(p, c->keybuf.data, c->keybuf.len);
			p += c->keybuf.len;
		}
		else
			p = write_varint(p, zigzag(tkey));
		p = write_varint(p, (uint64) list->len);
		p = write_varint(p, r->n);
		memcpy(p, list->data, list->len);
		p += list->len;
		len = (uint32) (p - entry);
	}
	memcpy(lenp, &len, sizeof(len));
	r->tbytes += len;
	s->len = p - s->data;

	/* 's': one pair per source key */
	for (x = 0; x < r->n; x++)
	{
		uint32		h = r->text ? hash_text_key(r->texts[x], r->lens[x]) : hash_int_key(r->ints[x]);

		len = (r->text ? sizeof(uint32) + r->lens[x] : sizeof(int64)) +
			(c->target_text ? sizeof(uint32) + c->keybuf.len : sizeof(int64));
		s = &r->spart[h >> (32 - PART_BITS)];
		p = part_reserve(c, s, 2 * sizeof(uint32) + len);
		memcpy(p, &h, sizeof(h));
		memcpy(p + sizeof(uint32), &len, sizeof(len));
		p += 2 * sizeof(uint32);
		p = write_rec_key(p, r->text, r->text ? 0 : r->ints[x], r->text ? r->texts[x] : NULL,
						  r->text ? r->lens[x] : 0);
		p = write_rec_key(p, c->target_text, tkey, c->keybuf.data, c->keybuf.len);
		s->len = p - s->data;
		/* the entry's key once per pair at most, the list's share */
		r->sbytes += (r->text ? r->lens[x] + 1 : 4) + (c->target_text ? c->keybuf.len + 1 : 3);
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

/* The chunk being filled while a flush walks the partitions in hash order. */
typedef struct ChunkOut
{
	Capture    *c;
	Oid			rel;
	char		dir;
	Oid			other;
	int			bits;
	char		flags;
	bool		open;
	uint64		bucket;
	int			entries;
	StringInfoData buf;
} ChunkOut;

static void
out_flush(ChunkOut *o)
{
	if (o->open && o->entries > 0)
		cap_put_chunk(o->c, o->rel, o->dir, o->other, o->bucket, o->entries, &o->buf);
	o->open = false;
}

/* Make the chunk of hash's bucket the current one; the previous is stored. */
static inline void
out_bucket(ChunkOut *o, uint32 hash)
{
	uint64		b = bucket_of(hash, o->bits);

	if (o->open && o->bucket == b)
		return;
	out_flush(o);
	resetStringInfo(&o->buf);
	appendStringInfoChar(&o->buf, CHUNK_FORMAT);
	appendStringInfoChar(&o->buf, o->flags);
	o->bucket = b;
	o->entries = 0;
	o->open = true;
}

/* An 's' record of a partition, for sorting; text keys point into the record. */
typedef struct SRec
{
	uint32		hash;
	uint32		seq;			/* capture order */
	uint32		slen;
	uint32		tlen;
	int64		s;				/* the key, or its bytes */
	int64		t;
} SRec;

#define SREC_TEXT(v) ((const char *) (uintptr_t) (v))

static inline int
cmp_bytes(const char *a, uint32 alen, const char *b, uint32 blen)
{
	int			r = memcmp(a, b, Min(alen, blen));

	if (r != 0)
		return r;
	return (alen > blen) - (alen < blen);
}

/*
 * 's' records in hash order, the pairs of a source key together, sorted
 * by target key (integers) or in capture order.  flags: 1 source keys are
 * text, 2 target keys are text.
 */
static inline int
cmp_srec(const SRec *x, const SRec *y, int *flags)
{
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (*flags & 1)
	{
		int			r = cmp_bytes(SREC_TEXT(x->s), x->slen, SREC_TEXT(y->s), y->slen);

		if (r != 0)
			return r;
	}
	else if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	if (!(*flags & 2) && x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

#define ST_SORT sort_srec
#define ST_ELEMENT_TYPE SRec
#define ST_COMPARE(a, b, arg) cmp_srec(a, b, arg)
#define ST_COMPARE_ARG_TYPE int
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

static inline bool
same_source(const SRec *x, const SRec *y, bool text)
{
	if (x->hash != y->hash)
		return false;
	return text ? cmp_bytes(SREC_TEXT(x->s), x->slen, SREC_TEXT(y->s), y->slen) == 0
		: x->s == y->s;
}

/* Read a key of an 's' record at p into *v (or its bytes) and *len; returns the end. */
static inline const char *
read_rec_key(const char *p, bool is_text, int64 *v, uint32 *len)
{
	if (is_text)
	{
		*len = get_u32(p);
		*v = (int64) (uintptr_t) (p + sizeof(uint32));
		return p + sizeof(uint32) + *len;
	}
	*v = get_i64(p);
	*len = 0;
	return p + sizeof(int64);
}

/* Chunks of direction 't' for source relation k: target key -> its keys. */
static void
flush_target(Capture *c, int k)
{
	CapRel	   *r = &c->rels[k];
	ChunkOut	o;
	int			p;
	int			sub_bits;
	uint32	   *offs = NULL;
	uint64	   *start = NULL;
	uint64		offcap = 0;

	if (r->tbytes == 0)
		return;
	memset(&o, 0, sizeof(o));
	o.c = c;
	o.rel = c->target;
	o.dir = 't';
	o.other = r->relid;
	o.bits = bits_for(r->tbytes);
	o.flags = (c->target_text ? FLAG_KEY_TEXT : 0) | (r->text ? FLAG_LIST_TEXT : 0);
	initStringInfo(&o.buf);
	/* a partition holds one bucket, part of one, or several buckets */
	sub_bits = Max(o.bits - PART_BITS, 0);
	if (sub_bits > 0)
		start = palloc(sizeof(uint64) * (((uint64) 1 << sub_bits) + 1));
	for (p = 0; p < NPART; p++)
	{
		StringInfo	s = &r->tpart[p];
		int			pos;

		CHECK_FOR_INTERRUPTS();
		if (s->data == NULL)
			continue;
		if (sub_bits == 0)
		{
			/* in capture order */
			for (pos = 0; pos < s->len;)
			{
				uint32		len = get_u32(s->data + pos + sizeof(uint32));

				out_bucket(&o, get_u32(s->data + pos));
				appendBinaryStringInfo(&o.buf, s->data + pos + 2 * sizeof(uint32), len);
				o.entries++;
				pos += 2 * sizeof(uint32) + len;
			}
		}
		else
		{
			/* counting sort of the records by bucket */
			uint64		nb = (uint64) 1 << sub_bits;
			uint64		n = 0,
						i;
			uint64	   *fill;

			memset(start, 0, sizeof(uint64) * (nb + 1));
			for (pos = 0; pos < s->len; n++)
			{
				start[((get_u32(s->data + pos) << PART_BITS) >> (32 - sub_bits)) + 1]++;
				pos += 2 * sizeof(uint32) + get_u32(s->data + pos + sizeof(uint32));
			}
			for (i = 0; i < nb; i++)
				start[i + 1] += start[i];
			if (n > offcap)
			{
				offcap = n;
				offs = offs ? repalloc_huge(offs, sizeof(uint32) * offcap)
					: MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * offcap);
			}
			fill = palloc(sizeof(uint64) * nb);
			memcpy(fill, start, sizeof(uint64) * nb);
			for (pos = 0; pos < s->len;)
			{
				offs[fill[(get_u32(s->data + pos) << PART_BITS) >> (32 - sub_bits)]++] = (uint32) pos;
				pos += 2 * sizeof(uint32) + get_u32(s->data + pos + sizeof(uint32));
			}
			pfree(fill);
			for (i = 0; i < n; i++)
			{
				const char *rec = s->data + offs[i];
				uint32		len = get_u32(rec + sizeof(uint32));

				out_bucket(&o, get_u32(rec));
				appendBinaryStringInfo(&o.buf, rec + 2 * sizeof(uint32), len);
				o.entries++;
			}
		}
	}
	out_flush(&o);
	if (start)
		pfree(start);
	if (offs)
		pfree(offs);
	pfree(o.buf.data);
}

/* Chunks of direction 's' for source relation k: source key -> target keys. */
static void
flush_source(Capture *c, int k)
{
	CapRel	   *r = &c->rels[k];
	ChunkOut	o;
	StringInfo	list = &c->list;
	int64	   *tk;
	uint64		tkcap = 64;
	SRec	   *recs = NULL;
	uint64		reccap = 0;
	int			flags = (r->text ? 1 : 0) | (c->target_text ? 2 : 0);
	int			p;

	if (r->sbytes == 0)
		return;
	memset(&o, 0, sizeof(o));
	o.c = c;
	o.rel = r->relid;
	o.dir = 's';
	o.other = c->target;
	o.bits = bits_for(r->sbytes);
	o.flags = (r->text ? FLAG_KEY_TEXT : 0) | (c->target_text ? FLAG_LIST_TEXT : 0);
	initStringInfo(&o.buf);
	tk = palloc(sizeof(int64) * tkcap);
	for (p = 0; p < NPART; p++)
	{
		StringInfo	s = &r->spart[p];
		uint64		n = 0,
					i,
					j;
		int			pos;

		CHECK_FOR_INTERRUPTS();
		if (s->data == NULL)
			continue;
		for (pos = 0; pos < s->len; n++)
		{
			const char *q;

			if (n == reccap)
			{
				reccap = reccap ? reccap * 2 : 4096;
				recs = recs ? repalloc_huge(recs, sizeof(SRec) * reccap)
					: MemoryContextAllocHuge(CurrentMemoryContext, sizeof(SRec) * reccap);
			}
			recs[n].hash = get_u32(s->data + pos);
			recs[n].seq = (uint32) n;
			q = read_rec_key(s->data + pos + 2 * sizeof(uint32), r->text, &recs[n].s, &recs[n].slen);
			(void) read_rec_key(q, c->target_text, &recs[n].t, &recs[n].tlen);
			pos += 2 * sizeof(uint32) + get_u32(s->data + pos + sizeof(uint32));
		}
		sort_srec(recs, n, &flags);
		for (i = 0; i < n; i = j)
		{
			uint64		cnt;

			/* the pairs of one source key */
			for (j = i + 1; j < n && same_source(&recs[j], &recs[i], r->text); j++)
				;
			cnt = j - i;
			out_bucket(&o, recs[i].hash);
			if (r->text)
				put_text(&o.buf, SREC_TEXT(recs[i].s), recs[i].slen);
			else
				put_varint(&o.buf, zigzag(recs[i].s));
			resetStringInfo(list);
			if (c->target_text)
			{
				uint64		x;

				for (x = i; x < j; x++)
					put_text(list, SREC_TEXT(recs[x].t), recs[x].tlen);
			}
			else
			{
				uint64		x;

				/* sorted by target key; a target row is written once per batch */
				if (cnt > tkcap)
				{
					tkcap = cnt;
					tk = repalloc_huge(tk, sizeof(int64) * tkcap);
				}
				for (x = i; x < j; x++)
					tk[x - i] = recs[x].t;
				put_int_list(list, tk, cnt);
			}
			put_varint(&o.buf, (uint64) list->len);
			put_varint(&o.buf, cnt);
			appendBinaryStringInfo(&o.buf, list->data, list->len);
			o.entries++;
		}
	}
	out_flush(&o);
	if (recs)
		pfree(recs);
	pfree(tk);
	pfree(o.buf.data);
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
	c->n = 0;
	c->mem = 0;
	for (k = 0; k < c->nrels; k++)
	{
		CapRel	   *r = &c->rels[k];

		memset(r->tpart, 0, sizeof(r->tpart));
		memset(r->spart, 0, sizeof(r->spart));
		r->tbytes = r->sbytes = 0;
	}
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
 * elt._lineage_capture(token, target key columns, key columns): keep the
 * lineage of one row the running transform writes.  Always true.
 */
Datum
elt_lineage_capture(PG_FUNCTION_ARGS)
{
	Capture    *c = capture;
	MemoryContext old;
	uint32		thash;
	int64		tkey = 0;
	int			i,
				k;

	if (c == NULL || c->arena == NULL || PG_ARGISNULL(0) || PG_GETARG_INT64(0) != c->token)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("elt._lineage_capture() is used only by elt.transform_run()")));
	if (PG_NARGS() != c->nslots + 1 + c->key_cols)
		elog(ERROR, "elt._lineage_capture() expected %d arguments, got %d",
			 c->nslots + 1 + c->key_cols, PG_NARGS());
	for (i = 1; i <= c->key_cols; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("a row written by the transform has a NULL primary key")));

	old = MemoryContextSwitchTo(c->rowcxt);
	if (c->target_text)
	{
		if (!c->keyprint_set)
		{
			Oid		   *types = palloc(sizeof(Oid) * c->key_cols);

			for (i = 0; i < c->key_cols; i++)
				types[i] = get_fn_expr_argtype(fcinfo->flinfo, i + 1);
			EltKeyPrinterInit(&c->keyprint, c->key_cols, types, c->cxt);
			c->keyprint_set = true;
		}
		for (i = 0; i < c->key_cols; i++)
			c->keyvals[i] = PG_GETARG_DATUM(i + 1);
		resetStringInfo(&c->keybuf);
		EltKeyPrint(&c->keyprint, c->keyvals, c->keynulls, &c->keybuf);
		thash = hash_text_key(c->keybuf.data, c->keybuf.len);
	}
	else
	{
		tkey = PG_GETARG_INT64(1);
		thash = hash_int_key(tkey);
	}
	for (k = 0; k < c->nrels; k++)
	{
		CapRel	   *r = &c->rels[k];
		int			used = 0;

		r->n = 0;
		for (i = 0; i < c->nslots; i++)
		{
			if (c->slot_rel[i] != k || PG_ARGISNULL(i + 1 + c->key_cols))
				continue;
			cap_add(c, r, &c->slots[i], PG_GETARG_DATUM(i + 1 + c->key_cols));
			used++;
		}
		if (r->n == 0)
			continue;
		if (used > 1)
			cap_unique(r);
		if (r->n > PG_UINT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a row written by the transform has too many source rows")));
		cap_encode_row(c, r, thash, tkey);
		c->lineage_rows++;
	}
	c->n++;
	MemoryContextSwitchTo(old);
	MemoryContextReset(c->rowcxt);
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
