/*
 * lineage_capture.c — row lineage captured while a run's INSERT executes,
 * and cut into chunks for elt.lineage_chunks.
 *
 * The run's INSERT ... SELECT calls elt._lineage_capture() once per
 * written row, in its WHERE clause, with the row's target key columns and
 * the key columns the rewritten query added.  Each row is encoded at once
 * into partitions by key hash (see "Capture" below); past
 * maintenance_work_mem the partitions are cut into chunks and set aside,
 * and capture goes on.  When the statement is done (EltCaptureEnd), the
 * rest is cut, and the run's catalog insert reads the chunks through
 * elt._lineage_pending() (opened only for that insert by
 * EltCaptureOpenPending).
 *
 * A run pushed down to Citus's workers (transform_pushdown.c) hands each
 * row that its statement returns to EltCaptureRow() instead: the same
 * encoding, called from C, so no token is needed.
 *
 * Layering: called by transform_run.c (EltCaptureBegin/End/Drop/OpenPending)
 * and transform_pushdown.c (EltCaptureRow);
 * calls lineage_chunk.c (the encoding of a chunk) and lineage_keys.c
 * (canonical key text).  One capture at a time per backend, held in a
 * static for the run that started it and checked by the run's token; its
 * memory lives in the context the run gives, and EltCaptureDrop forgets
 * it at the end of the run or on error.  No SPI, no locks: the run
 * writes the chunks.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "lineage.h"
#include "lineage_chunk.h"
#include "lineage_keys.h"
#include "util.h"

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

#define PART_BITS 6
#define NPART (1 << PART_BITS)
#define PART_BLOCK_MAX (64 * 1024)

/* A partition: a list of blocks of records (a record never spans blocks). */
typedef struct PartBlock
{
	struct PartBlock *next;
	Size		len;
	Size		cap;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} PartBlock;

typedef struct Part
{
	char	   *pos;			/* where the next record goes in tail */
	char	   *lim;			/* the end of tail */
	PartBlock  *head;
	PartBlock  *tail;			/* its len is set when it is left, or by part_close() */
	uint64		nrec;
} Part;

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
	Part		tpart[NPART];
	Part		spart[NPART];
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
	bool		pack;			/* pack target keys in 's' lists */
	StringInfoData keypack;		/* the row's target key, packed */
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
	initStringInfo(&c->keypack);
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

/*
 * Room for a record of up to more bytes at the end of a partition; blocks
 * grow from 1 kB to PART_BLOCK_MAX, and are counted in c->mem.
 */
static inline char *
part_reserve(Capture *c, Part *pt, Size more)
{
	PartBlock  *b;
	Size		cap;

	if (pt->pos != NULL && (Size) (pt->lim - pt->pos) >= more)
		return pt->pos;
	cap = pt->tail ? Min(pt->tail->cap * 2, PART_BLOCK_MAX) : 1024;
	cap = Max(cap, more);
	b = MemoryContextAllocHuge(c->arena, offsetof(PartBlock, data) + cap);
	b->next = NULL;
	b->len = 0;
	b->cap = cap;
	if (pt->tail)
	{
		pt->tail->len = pt->pos - pt->tail->data;
		pt->tail->next = b;
	}
	else
		pt->head = b;
	pt->tail = b;
	pt->pos = b->data;
	pt->lim = b->data + cap;
	c->mem += offsetof(PartBlock, data) + cap;
	return pt->pos;
}

/* The record reserved by part_reserve() ends at end. */
static inline void
part_commit(Part *pt, char *end)
{
	pt->pos = end;
	pt->nrec++;
}

/* Before reading a partition: the length of its last block. */
static inline void
part_close(Part *pt)
{
	if (pt->tail)
		pt->tail->len = pt->pos - pt->tail->data;
}

/* Encode the current row's keys of r: its 't' entry and its 's' pairs. */
static void
cap_encode_row(Capture *c, CapRel *r, uint32 thash, int64 tkey)
{
	StringInfo	list = &c->list;
	StringInfo	tk;
	Part	   *s;
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
		EltChunkPutIntList(list, r->ints, r->n);
	tk = c->pack ? &c->keypack : &c->keybuf;
	s = &r->tpart[thash >> (32 - PART_BITS)];
	/* hash, length, two varints, the key's and the list's bytes */
	p = part_reserve(c, s, 2 * sizeof(uint32) + 3 * 10 + tk->len + list->len);
	memcpy(p, &thash, sizeof(thash));
	lenp = p + sizeof(uint32);
	p = lenp + sizeof(uint32);
	{
		char	   *entry = p;

		if (c->target_text)
		{
			p = EltWriteVarint(p, (uint64) tk->len);
			memcpy(p, tk->data, tk->len);
			p += tk->len;
		}
		else
			p = EltWriteVarint(p, zigzag(tkey));
		p = EltWriteVarint(p, r->n);
		memcpy(p, list->data, list->len);
		p += list->len;
		len = (uint32) (p - entry);
	}
	memcpy(lenp, &len, sizeof(len));
	r->tbytes += len;
	part_commit(s, p);

	/* 's': one pair per source key; the target key packed if worth it */
	for (x = 0; x < r->n; x++)
	{
		uint32		h = r->text ? hash_text_key(r->texts[x], r->lens[x]) : hash_int_key(r->ints[x]);

		len = (r->text ? sizeof(uint32) + r->lens[x] : sizeof(int64)) +
			(c->target_text ? sizeof(uint32) + tk->len : sizeof(int64));
		s = &r->spart[h >> (32 - PART_BITS)];
		p = part_reserve(c, s, 2 * sizeof(uint32) + len);
		memcpy(p, &h, sizeof(h));
		memcpy(p + sizeof(uint32), &len, sizeof(len));
		p += 2 * sizeof(uint32);
		p = write_rec_key(p, r->text, r->text ? 0 : r->ints[x], r->text ? r->texts[x] : NULL,
						  r->text ? r->lens[x] : 0);
		p = write_rec_key(p, c->target_text, tkey, tk->data, tk->len);
		part_commit(s, p);
		/* the entry's key once per pair at most, the list's share */
		r->sbytes += (r->text ? r->lens[x] + 1 : 4) + (c->target_text ? tk->len + 1 : 3);
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
	StringInfoData hdr;			/* after the flags: the packed layout, if any */
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

/* The layout of packed target keys, for a chunk's header. */
static void
out_layout(Capture *c, StringInfo hdr)
{
	int			i;

	appendStringInfoChar(hdr, (char) c->keyprint.ncols);
	for (i = 0; i < c->keyprint.ncols; i++)
		appendStringInfoChar(hdr, (char) c->keyprint.cols[i].kind);
}

/*
 * Start the chunks of one direction and pair of relations, sized for bytes
 * of entries; packed_flag marks the side that holds target keys, packed
 * when the capture packs them.
 */
static void
out_begin(ChunkOut *o, Capture *c, Oid rel, char dir, Oid other, uint64 bytes, char flags,
		  char packed_flag)
{
	memset(o, 0, sizeof(*o));
	o->c = c;
	o->rel = rel;
	o->dir = dir;
	o->other = other;
	o->bits = bits_for(bytes);
	o->flags = flags;
	initStringInfo(&o->buf);
	initStringInfo(&o->hdr);
	if (c->pack)
	{
		o->flags |= packed_flag;
		out_layout(c, &o->hdr);
	}
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
	if (o->hdr.len > 0)
		appendBinaryStringInfo(&o->buf, o->hdr.data, o->hdr.len);
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
	const char **offs = NULL;
	uint64	   *start = NULL;
	uint64		offcap = 0;

	if (r->tbytes == 0)
		return;
	out_begin(&o, c, c->target, 't', r->relid, r->tbytes,
			  (c->target_text ? FLAG_KEY_TEXT : 0) | (r->text ? FLAG_LIST_TEXT : 0), FLAG_KEY_PACKED);
	/* a partition holds one bucket, part of one, or several buckets */
	sub_bits = Max(o.bits - PART_BITS, 0);
	if (sub_bits > 0)
		start = palloc(sizeof(uint64) * (((uint64) 1 << sub_bits) + 1));
	for (p = 0; p < NPART; p++)
	{
		Part	   *pt = &r->tpart[p];
		PartBlock  *blk;
		Size		pos;

		CHECK_FOR_INTERRUPTS();
		if (pt->head == NULL)
			continue;
		part_close(pt);
		if (sub_bits == 0)
		{
			/* in capture order */
			for (blk = pt->head; blk; blk = blk->next)
				for (pos = 0; pos < blk->len;)
				{
					const char *rec = blk->data + pos;
					uint32		len = get_u32(rec + sizeof(uint32));

					out_bucket(&o, get_u32(rec));
					appendBinaryStringInfo(&o.buf, rec + 2 * sizeof(uint32), len);
					o.entries++;
					pos += 2 * sizeof(uint32) + len;
				}
		}
		else
		{
			/* counting sort of the records by bucket */
			uint64		nb = (uint64) 1 << sub_bits;
			uint64		i;
			uint64	   *fill;

			memset(start, 0, sizeof(uint64) * (nb + 1));
			for (blk = pt->head; blk; blk = blk->next)
				for (pos = 0; pos < blk->len;)
				{
					const char *rec = blk->data + pos;

					start[((get_u32(rec) << PART_BITS) >> (32 - sub_bits)) + 1]++;
					pos += 2 * sizeof(uint32) + get_u32(rec + sizeof(uint32));
				}
			for (i = 0; i < nb; i++)
				start[i + 1] += start[i];
			if (pt->nrec > offcap)
			{
				offcap = pt->nrec;
				offs = offs ? repalloc_huge(offs, sizeof(char *) * offcap)
					: MemoryContextAllocHuge(CurrentMemoryContext, sizeof(char *) * offcap);
			}
			fill = palloc(sizeof(uint64) * nb);
			memcpy(fill, start, sizeof(uint64) * nb);
			for (blk = pt->head; blk; blk = blk->next)
				for (pos = 0; pos < blk->len;)
				{
					const char *rec = blk->data + pos;

					offs[fill[(get_u32(rec) << PART_BITS) >> (32 - sub_bits)]++] = rec;
					pos += 2 * sizeof(uint32) + get_u32(rec + sizeof(uint32));
				}
			pfree(fill);
			for (i = 0; i < pt->nrec; i++)
			{
				const char *rec = offs[i];
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

/*
 * Sort the n records of a partition (all share the top PART_BITS bits of
 * their hash): distributed by the next bits of the hash, about one record
 * per slot, then each slot sorted.  *recs and *tmp (both of room for n)
 * may be swapped.
 */
static void
sort_srecs(SRec **recs, SRec **tmp, uint64 n, int *flags)
{
	int			rb = 0;
	uint64		nb,
				i;
	uint32	   *start;
	uint32	   *fill;
	SRec	   *in = *recs;
	SRec	   *out = *tmp;

	while (rb < 16 && ((uint64) 1 << rb) < n)
		rb++;
	if (rb < 4 || n > PG_UINT32_MAX)
	{
		sort_srec(in, n, flags);
		return;
	}
	nb = (uint64) 1 << rb;
	start = palloc0(sizeof(uint32) * (nb + 1));
	for (i = 0; i < n; i++)
		start[((in[i].hash << PART_BITS) >> (32 - rb)) + 1]++;
	for (i = 0; i < nb; i++)
		start[i + 1] += start[i];
	fill = palloc(sizeof(uint32) * nb);
	memcpy(fill, start, sizeof(uint32) * nb);
	for (i = 0; i < n; i++)
		out[fill[(in[i].hash << PART_BITS) >> (32 - rb)]++] = in[i];
	for (i = 0; i < nb; i++)
		if (start[i + 1] - start[i] > 1)
			sort_srec(out + start[i], start[i + 1] - start[i], flags);
	pfree(fill);
	pfree(start);
	*recs = out;
	*tmp = in;
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
	SRec	   *tmp = NULL;
	uint64		reccap = 0;
	int			flags = (r->text ? 1 : 0) | (c->target_text ? 2 : 0);
	int			p;

	if (r->sbytes == 0)
		return;
	out_begin(&o, c, r->relid, 's', c->target, r->sbytes,
			  (r->text ? FLAG_KEY_TEXT : 0) | (c->target_text ? FLAG_LIST_TEXT : 0), FLAG_LIST_PACKED);
	tk = palloc(sizeof(int64) * tkcap);
	for (p = 0; p < NPART; p++)
	{
		Part	   *pt = &r->spart[p];
		PartBlock  *blk;
		uint64		n = 0,
					i,
					j;

		CHECK_FOR_INTERRUPTS();
		if (pt->head == NULL)
			continue;
		part_close(pt);
		if (pt->nrec > reccap)
		{
			reccap = pt->nrec;
			recs = recs ? repalloc_huge(recs, sizeof(SRec) * reccap)
				: MemoryContextAllocHuge(CurrentMemoryContext, sizeof(SRec) * reccap);
			tmp = tmp ? repalloc_huge(tmp, sizeof(SRec) * reccap)
				: MemoryContextAllocHuge(CurrentMemoryContext, sizeof(SRec) * reccap);
		}
		for (blk = pt->head; blk; blk = blk->next)
		{
			Size		pos;

			for (pos = 0; pos < blk->len; n++)
			{
				const char *rec = blk->data + pos;
				const char *q;

				recs[n].hash = get_u32(rec);
				recs[n].seq = (uint32) n;
				q = read_rec_key(rec + 2 * sizeof(uint32), r->text, &recs[n].s, &recs[n].slen);
				(void) read_rec_key(q, c->target_text, &recs[n].t, &recs[n].tlen);
				pos += 2 * sizeof(uint32) + get_u32(rec + sizeof(uint32));
			}
		}
		Assert(n == pt->nrec);
		sort_srecs(&recs, &tmp, n, &flags);
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
				EltChunkPutIntList(list, tk, cnt);
			}
			put_varint(&o.buf, cnt);
			appendBinaryStringInfo(&o.buf, list->data, list->len);
			o.entries++;
		}
	}
	out_flush(&o);
	if (recs)
		pfree(recs);
	if (tmp)
		pfree(tmp);
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

/*
 * Keep the lineage of one written row: vals[0 .. key_cols-1] are its target
 * key (a bigint, or the key columns to print), the rest one value per slot.
 * key_types: the types of the key columns, read at the first row of a text
 * key.
 */
static void
capture_row(Capture *c, const Datum *vals, const bool *nulls, const Oid *key_types)
{
	MemoryContext old;
	uint32		thash;
	int64		tkey = 0;
	int			i,
				k;

	for (i = 0; i < c->key_cols; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("a row written by the transform has a NULL primary key")));

	old = MemoryContextSwitchTo(c->rowcxt);
	if (c->target_text)
	{
		if (!c->keyprint_set)
		{
			EltKeyPrinterInit(&c->keyprint, c->key_cols, key_types, c->cxt);
			c->pack = EltKeyPackWorth(&c->keyprint);
			c->keyprint_set = true;
		}
		for (i = 0; i < c->key_cols; i++)
			c->keyvals[i] = vals[i];
		resetStringInfo(&c->keybuf);
		EltKeyPrint(&c->keyprint, c->keyvals, c->keynulls, &c->keybuf);
		if (c->pack)
		{
			resetStringInfo(&c->keypack);
			EltKeyPack(&c->keyprint, c->keyvals, &c->keypack);
		}
		thash = hash_text_key(c->keybuf.data, c->keybuf.len);
	}
	else
	{
		tkey = DatumGetInt64(vals[0]);
		thash = hash_int_key(tkey);
	}
	for (k = 0; k < c->nrels; k++)
	{
		CapRel	   *r = &c->rels[k];
		int			used = 0;

		r->n = 0;
		for (i = 0; i < c->nslots; i++)
		{
			if (c->slot_rel[i] != k || nulls[i + c->key_cols])
				continue;
			cap_add(c, r, &c->slots[i], vals[i + c->key_cols]);
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
}

/*
 * Keep the lineage of one row that a run's statement returned (RETURNING
 * of a Citus pushdown, transform_pushdown.c): values as for
 * elt._lineage_capture() without the token, types of the key columns
 * first.  Called only by the run's own code, never from SQL.
 */
void
EltCaptureRow(const Datum *values, const bool *nulls, const Oid *types, int natts)
{
	Capture    *c = capture;

	if (c == NULL || c->arena == NULL)
		elog(ERROR, "no lineage capture is running");
	if (natts != c->nslots + c->key_cols)
		elog(ERROR, "a returned lineage row has %d columns, expected %d",
			 natts, c->nslots + c->key_cols);
	capture_row(c, values, nulls, types);
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
	Datum		vbuf[16];
	bool		nbuf[16];
	Oid			tbuf[16];
	Datum	   *vals = vbuf;
	bool	   *nulls = nbuf;
	Oid		   *types = NULL;
	int			n = PG_NARGS() - 1;
	int			i;

	if (c == NULL || c->arena == NULL || PG_ARGISNULL(0) || PG_GETARG_INT64(0) != c->token)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("elt._lineage_capture() is used only by elt.transform_run()")));
	if (n != c->nslots + c->key_cols)
		elog(ERROR, "elt._lineage_capture() expected %d arguments, got %d",
			 c->nslots + 1 + c->key_cols, PG_NARGS());
	if (n > 16)
	{
		vals = palloc(sizeof(Datum) * n);
		nulls = palloc(sizeof(bool) * n);
	}
	for (i = 0; i < n; i++)
	{
		nulls[i] = PG_ARGISNULL(i + 1);
		vals[i] = nulls[i] ? (Datum) 0 : PG_GETARG_DATUM(i + 1);
	}
	if (c->target_text && !c->keyprint_set)
	{
		types = c->key_cols > 16 ? palloc(sizeof(Oid) * c->key_cols) : tbuf;
		for (i = 0; i < c->key_cols; i++)
			types[i] = get_fn_expr_argtype(fcinfo->flinfo, i + 1);
	}
	capture_row(c, vals, nulls, types);
	if (vals != vbuf)
	{
		pfree(vals);
		pfree(nulls);
	}
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(elt_lineage_pending);

/* elt._lineage_pending(): the chunks of the current run, once. */
Datum
elt_lineage_pending(PG_FUNCTION_ARGS)
{
	Capture    *c = capture;
	Tuplestorestate *none = NULL;

	if (!pending_open)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("elt._lineage_pending() is used only by elt.transform_run()")));
	if (c == NULL)
		return EltReturnStoreOnce(fcinfo, &none, NULL);
	return EltReturnStoreOnce(fcinfo, &c->store, c->desc);
}
