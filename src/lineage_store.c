/*
 * lineage_store.c — how row lineage is kept: captured while a run's INSERT
 * executes, written in chunks, and looked up in both directions.
 *
 * Capture.  The run's INSERT ... SELECT calls elt._lineage_capture() once
 * per written row, in its WHERE clause, with the row's target key columns
 * and the key columns the rewritten query added.  Each row is encoded at
 * once into partitions by key hash (see "Capture" below); past
 * maintenance_work_mem the partitions are cut into chunks and set aside,
 * and capture goes on.
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
 * keys are text, 2: listed keys are text, 4: listed keys are packed target
 * keys, 8: entry keys are packed target keys), with 4 or 8 the layout of
 * packed keys (a byte for the number of columns, a byte per column for its
 * kind), then per entry: the key, the byte length of its list, the list's
 * count, the list.  Integers are zigzag varints; a list of integers is
 * sorted, stored as its first value and the gaps; a text is its length as
 * a varint and its bytes; a packed key is a text whose bytes are, per
 * column, a zigzag varint (integers, dates) or a text (canonical text of
 * any other type), and it is read back as the key's canonical text.  A
 * packed key is binary (a 0, a date 2000-01-01 or an empty text is a zero
 * byte): it is copied and compared by its length, never as a C string.
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
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "lineage.h"
#include "lineage_keys.h"
#include "util.h"

#define CHUNK_FORMAT 1
#define CHUNK_BYTES 2048		/* at most this much encoded lineage per chunk, on average */
#define CHUNK_MAX_BITS 20

#define FLAG_KEY_TEXT 1
#define FLAG_LIST_TEXT 2
#define FLAG_LIST_PACKED 4		/* listed keys are packed target keys */
#define FLAG_KEY_PACKED 8		/* entry keys are packed target keys */
#define MAX_PACKED_COLS 32

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
	enlargeStringInfo(s, 10);
	s->len = EltWriteVarint(s->data + s->len, v) - s->data;
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
	/* packed keys: the kind of each column */
	int			ncols;
	const unsigned char *kinds;
	bool		key_packed;
	bool		list_packed;
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

/*
 * Packed keys.  A target key of several columns, or of an integer or date
 * column, is kept in the lists of 's' chunks packed: per column, an
 * integer or a date as a zigzag varint, any other value as its canonical
 * text (length and bytes).  The chunk's header lists the columns' kinds,
 * and unpacking prints exactly the canonical text of the key.
 */

/* Whether keys of these kinds are worth packing. */
static bool
pack_worth(const EltKeyPrinter *p)
{
	int			i;

	if (p->ncols > MAX_PACKED_COLS)
		return false;
	for (i = 0; i < p->ncols; i++)
		if (p->cols[i].kind != ELT_KP_TEXT && p->cols[i].kind != ELT_KP_OUT)
			return true;
	return false;
}

/* Pack a key's values (no NULLs) into out. */
static void
key_pack(EltKeyPrinter *p, const Datum *values, StringInfo out)
{
	int			i;

	for (i = 0; i < p->ncols; i++)
	{
		EltKeyCol  *col = &p->cols[i];

		switch (col->kind)
		{
			case ELT_KP_INT2:
				put_varint(out, zigzag(DatumGetInt16(values[i])));
				break;
			case ELT_KP_INT4:
				put_varint(out, zigzag(DatumGetInt32(values[i])));
				break;
			case ELT_KP_INT8:
				put_varint(out, zigzag(DatumGetInt64(values[i])));
				break;
			case ELT_KP_DATE:
				put_varint(out, zigzag(DatumGetDateADT(values[i])));
				break;
			case ELT_KP_TEXT:
			case ELT_KP_OUT:
				{
					StringInfoData t;

					initStringInfo(&t);
					EltKeyPrintValue(col->kind, &col->out, values[i], &t);
					put_text(out, t.data, t.len);
					pfree(t.data);
				}
				break;
		}
	}
}

/* Print the canonical text of the packed key [p, end) into out. */
static void
key_unpack(const Reader *layout, const unsigned char *p, const unsigned char *end, StringInfo out)
{
	Reader		r;
	int			i;
	bool		row = (layout->ncols != 1);

	r.p = p;
	r.end = end;
	if (row)
		appendStringInfoChar(out, '(');
	for (i = 0; i < layout->ncols; i++)
	{
		int			start;

		if (i > 0)
			appendStringInfoChar(out, ',');
		start = out->len;
		switch (layout->kinds[i])
		{
			case ELT_KP_INT2:
			case ELT_KP_INT4:
			case ELT_KP_INT8:
				EltKeyPrintValue(ELT_KP_INT8, NULL, Int64GetDatum(unzigzag(get_varint(&r))), out);
				break;
			case ELT_KP_DATE:
				{
					int64		d = unzigzag(get_varint(&r));

					if (d < PG_INT32_MIN || d > PG_INT32_MAX ||
						!(DATE_NOT_FINITE((DateADT) d) || IS_VALID_DATE((DateADT) d)))
						corrupt();
					EltKeyPrintValue(ELT_KP_DATE, NULL, DateADTGetDatum((DateADT) d), out);
				}
				break;
			default:
				{
					int			len;
					const char *t = get_text(&r, &len);

					/* canonical text never holds a zero byte */
					if (memchr(t, 0, len) != NULL)
						corrupt();
					appendBinaryStringInfo(out, t, len);
				}
				break;
		}
		if (row)
			EltKeyQuoteField(out, start);
	}
	if (row)
		appendStringInfoChar(out, ')');
	if (r.p != r.end)
		corrupt();
}

/* Read an unsigned decimal of 1 to 9 digits at *p; false if there is none. */
static bool
iso_field(const char **p, int *v)
{
	const char *s = *p;
	int			n = 0;

	*v = 0;
	while (*s >= '0' && *s <= '9' && n < 9)
	{
		*v = *v * 10 + (*s++ - '0');
		n++;
	}
	*p = s;
	return n > 0 && !(*s >= '0' && *s <= '9');
}

/* An ISO date as date_out prints it under DateStyle ISO; false if it is not one. */
static bool
parse_iso_date(const char *s, DateADT *d)
{
	int			y,
				m,
				day;
	const char *p = s;

	if (strcmp(s, "infinity") == 0)
	{
		DATE_NOEND(*d);
		return true;
	}
	if (strcmp(s, "-infinity") == 0)
	{
		DATE_NOBEGIN(*d);
		return true;
	}
	if (!iso_field(&p, &y) || *p++ != '-' || !iso_field(&p, &m) || *p++ != '-' ||
		!iso_field(&p, &day) || y < 1)
		return false;
	if (strcmp(p, " BC") == 0)
		y = -(y - 1);
	else if (*p != '\0')
		return false;
	if (m < 1 || m > 12 || day < 1 || day > 31 || !IS_VALID_JULIAN(y, m, day))
		return false;
	*d = date2j(y, m, day) - POSTGRES_EPOCH_JDATE;
	return IS_VALID_DATE(*d);
}

/*
 * Pack a key given as canonical text, for the layout of r; false if it
 * cannot be a key of that layout.  A packed key unpacks to one text only,
 * so the result is checked by unpacking it: no text that is not exactly
 * canonical can match.
 */
static bool
key_pack_text(const Reader *layout, const char *text, StringInfo out)
{
	List	   *fields;
	bool		ok = true;
	int			i;
	StringInfoData check;

	resetStringInfo(out);
	if (layout->ncols == 1)
		fields = list_make1((char *) text);
	else
	{
		fields = EltSplitRowLiteral(text, &ok);
		if (!ok || list_length(fields) != layout->ncols)
			return false;
	}
	for (i = 0; i < layout->ncols && ok; i++)
	{
		const char *f = list_nth(fields, i);

		if (f == NULL)
			return false;
		switch (layout->kinds[i])
		{
			case ELT_KP_INT2:
			case ELT_KP_INT4:
			case ELT_KP_INT8:
				{
					char	   *end;
					int64		v;

					errno = 0;
					v = strtoi64(f, &end, 10);
					ok = (*f != '\0' && *end == '\0' && errno == 0);
					if (ok)
						put_varint(out, zigzag(v));
				}
				break;
			case ELT_KP_DATE:
				{
					DateADT		d;

					ok = parse_iso_date(f, &d);
					if (ok)
						put_varint(out, zigzag(d));
				}
				break;
			default:
				put_text(out, f, strlen(f));
				break;
		}
	}
	if (!ok)
		return false;
	initStringInfo(&check);
	key_unpack(layout, (const unsigned char *) out->data,
			   (const unsigned char *) out->data + out->len, &check);
	ok = (strcmp(check.data, text) == 0);
	pfree(check.data);
	return ok;
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
		put_int_list(list, r->ints, r->n);
	tk = c->pack ? &c->keypack : &c->keybuf;
	s = &r->tpart[thash >> (32 - PART_BITS)];
	/* hash, length, three varints, the key's and the list's bytes */
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
		p = EltWriteVarint(p, (uint64) list->len);
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
			c->pack = pack_worth(&c->keyprint);
			c->keyprint_set = true;
		}
		for (i = 0; i < c->key_cols; i++)
			c->keyvals[i] = PG_GETARG_DATUM(i + 1);
		resetStringInfo(&c->keybuf);
		EltKeyPrint(&c->keyprint, c->keyvals, c->keynulls, &c->keybuf);
		if (c->pack)
		{
			resetStringInfo(&c->keypack);
			key_pack(&c->keyprint, c->keyvals, &c->keypack);
		}
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
		StringInfoData buf;

		*texts = palloc(sizeof(char *) * Max(count, 1));
		if (r->list_packed)
			initStringInfo(&buf);
		for (i = 0; i < count; i++)
		{
			int			len;
			const char *s = get_text(r, &len);

			if (r->list_packed)
			{
				resetStringInfo(&buf);
				key_unpack(r, (const unsigned char *) s, (const unsigned char *) s + len, &buf);
				(*texts)[i] = pstrdup(buf.data);
			}
			else
			{
				if (memchr(s, '\0', len) != NULL)
					corrupt();
				(*texts)[i] = pnstrdup(s, len);
			}
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
	r->ncols = 0;
	r->kinds = NULL;
	r->key_packed = (r->p[1] & FLAG_KEY_PACKED) != 0;
	r->list_packed = (r->p[1] & FLAG_LIST_PACKED) != 0;
	if (r->p[1] & ~(FLAG_KEY_TEXT | FLAG_LIST_TEXT | FLAG_LIST_PACKED | FLAG_KEY_PACKED))
		corrupt();
	if (r->key_packed || r->list_packed)
	{
		int			i;

		if ((r->key_packed && !*key_text) || (r->list_packed && !*list_text) ||
			r->end - r->p < 3)
			corrupt();
		r->ncols = r->p[2];
		r->kinds = r->p + 3;
		if (r->ncols < 1 || r->ncols > MAX_PACKED_COLS || r->end - r->kinds < r->ncols)
			corrupt();
		for (i = 0; i < r->ncols; i++)
			if (r->kinds[i] < ELT_KP_INT2 || r->kinds[i] > ELT_KP_OUT)
				corrupt();
		r->p = r->kinds + r->ncols;
	}
	else
		r->p += 2;
}

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
		corrupt();
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

			if (r.key_packed)
			{
				StringInfoData buf;

				initStringInfo(&buf);
				key_unpack(&r, (const unsigned char *) s, (const unsigned char *) s + klen, &buf);
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
		len = get_varint(&r);
		count = get_varint(&r);
		if (len > (uint64) (r.end - r.p))
			corrupt();
		lr = r;
		lr.end = r.p + len;
		r.p += len;
		decode_list(&lr, list_text, count, &ints, &texts);
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
		if (is_int[i] || !key_pack_text(r, tvals[i], &buf))
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

/* Call fn for each wanted key equal to the packed entry key ks. */
static void
packed_want_match(PackedWant *pw, const char *ks, int klen, HitFn fn, void *arg, int64 run_id,
				  Oid other, bool list_text, uint64 count, const Reader *list)
{
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
			fn(arg, x, run_id, other, list_text, count, &copy);
	}
}

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
	int		   *wlen;
	PackedWant	packed;
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
			   "SELECT run_id, other_rel::pg_catalog.oid, bucket, data FROM elt.lineage_chunks"
			   " WHERE rel = $1::pg_catalog.regclass AND dir = $2 AND bucket = ANY ($3)",
			   3, ctypes);
	args[2] = PointerGetDatum(construct_array(elems, j, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	EltExec(chunk_plan, args, NULL, 0);
	tt = SPI_tuptable;
	nrows = SPI_processed;

	wlen = palloc(sizeof(int) * n);
	for (i = 0; i < n; i++)
		wlen[i] = is_int[i] ? 0 : (int) strlen(tvals[i]);
	memset(&packed, 0, sizeof(packed));
	for (row = 0; row < nrows; row++)
	{
		HeapTuple	tup = tt->vals[row];
		bool		isnull;
		int64		run_id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
		Oid			other = DatumGetObjectId(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
		uint64		bucket = (uint64) DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
		bytea	   *data = DatumGetByteaPP(SPI_getbinval(tup, tt->tupdesc, 4, &isnull));
		int			bbits = (int) (bucket >> 32);
		uint32		prefix = (uint32) bucket;
		int			first,
					last;
		bool		by_hash;
		Reader		r;
		bool		key_text,
					list_text;

		/* the wanted keys in this chunk's bucket: a range of want[] */
		first = 0;
		last = n;
		if (bbits > 0)
		{
			int			lo = 0,
						hi = n;

			while (lo < hi)
			{
				int			mid = (lo + hi) / 2;

				if ((want[mid].hash >> (32 - bbits)) < prefix)
					lo = mid + 1;
				else
					hi = mid;
			}
			first = lo;
			hi = n;
			while (lo < hi)
			{
				int			mid = (lo + hi) / 2;

				if ((want[mid].hash >> (32 - bbits)) <= prefix)
					lo = mid + 1;
				else
					hi = mid;
			}
			last = lo;
		}
		if (first == last)
			continue;
		/* few keys: compare each entry with them; many: look each entry up by hash */
		by_hash = (last - first > 4);

		chunk_header(&r, data, &key_text, &list_text);
		if (r.key_packed)
			packed_want_layout(&packed, &r, n, is_int, tvals);
		while (r.p < r.end)
		{
			bool		kint = !key_text;
			int64		kv = 0;
			const char *ks = NULL;
			int			klen = 0;
			uint64		len,
						count;
			Reader		lr;
			int			lo;
			uint32		h = 0;

			if (key_text)
				ks = get_text(&r, &klen);
			else
				kv = unzigzag(get_varint(&r));
			len = get_varint(&r);
			count = get_varint(&r);
			if (len > (uint64) (r.end - r.p))
				corrupt();
			lr = r;
			lr.end = r.p + len;
			r.p += len;

			if (by_hash)
			{
				int			hi = last;

				if (r.key_packed)
				{
					/* compare packed forms, found by their own hash */
					packed_want_match(&packed, ks, klen, fn, arg, run_id, other, list_text,
									  count, &lr);
					continue;
				}
				/* the first wanted key with this hash */
				h = kint ? hash_int_key(kv) : hash_text_key(ks, klen);
				lo = first;
				while (lo < hi)
				{
					int			mid = (lo + hi) / 2;

					if (want[mid].hash < h)
						lo = mid + 1;
					else
						hi = mid;
				}
			}
			else
				lo = first;
			for (; lo < last; lo++)
			{
				int			x = want[lo].index;
				Reader		copy = lr;

				if (by_hash && want[lo].hash != h)
					break;
				if (is_int[x] != kint)
					continue;
				if (r.key_packed)
				{
					if (packed.len[x] != klen || memcmp(packed.keys[x], ks, klen) != 0)
						continue;
				}
				else if (kint ? ivals[x] != kv
						 : (wlen[x] != klen || memcmp(tvals[x], ks, klen) != 0))
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
