/*
 * lineage_chunk.h — the encoding of elt.lineage_chunks (lineage_chunk.c),
 * private to the lineage files that write chunks (lineage_capture.c) and
 * read them (lineage_store.c).  The hashing and varint helpers are inline:
 * capture calls them once per key of every written row.
 */
#ifndef ELT_LINEAGE_CHUNK_H
#define ELT_LINEAGE_CHUNK_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "lineage_keys.h"
#include "util.h"

#define CHUNK_FORMAT 2			/* written; format 1 (lists with their byte length) is read too */
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
	bool		list_len;		/* format 1: each list follows its byte length */
} Reader;

pg_noreturn extern void EltChunkCorrupt(void);

static inline uint64
get_varint(Reader *r)
{
	uint64		v = 0;
	int			shift = 0;

	for (;;)
	{
		unsigned char b;

		if (r->p >= r->end || shift > 63)
			EltChunkCorrupt();
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
		EltChunkCorrupt();
	r->p += n;
	*len = (int) n;
	return s;
}

/*
 * The list of the entry whose key r has just read: returns its count, sets
 * *lr to a reader over the list's bytes and leaves r at the next entry.
 * Format 1 gives each list's byte length; format 2 does not (a byte per
 * entry saved), and the list is stepped over key by key.
 */
static inline uint64
get_list(Reader *r, bool list_text, Reader *lr)
{
	uint64		count;

	if (r->list_len)
	{
		uint64		len = get_varint(r);

		count = get_varint(r);
		if (len > (uint64) (r->end - r->p))
			EltChunkCorrupt();
		*lr = *r;
		lr->end = r->p + len;
		r->p += len;
		return count;
	}
	count = get_varint(r);
	/* every key takes a byte at least */
	if (count > (uint64) (r->end - r->p))
		EltChunkCorrupt();
	*lr = *r;
	if (list_text)
	{
		uint64		i;

		for (i = 0; i < count; i++)
		{
			int			len;

			(void) get_text(r, &len);
		}
	}
	else
	{
		const unsigned char *p = r->p;
		uint64		left = count;

		/* a varint ends at its first byte without the high bit */
		while (left > 0)
		{
			if (p >= r->end)
				EltChunkCorrupt();
			if ((*p++ & 0x80) == 0)
				left--;
		}
		r->p = p;
	}
	lr->end = r->p;
	return count;
}

/* lineage_chunk.c */
extern void EltChunkPutIntList(StringInfo s, const int64 *keys, uint64 n);
extern bool EltKeyPackWorth(const EltKeyPrinter *p);
extern void EltKeyPack(EltKeyPrinter *p, const Datum *values, StringInfo out);
extern void EltKeyUnpack(const Reader *layout, const unsigned char *p, const unsigned char *end,
						 StringInfo out);
extern bool EltKeyPackText(const Reader *layout, const char *text, StringInfo out);
extern void EltChunkDecodeList(Reader *r, bool text, uint64 count, int64 **ints, char ***texts);
extern void EltChunkHeader(Reader *r, bytea *data, bool *key_text, bool *list_text);

#endif							/* ELT_LINEAGE_CHUNK_H */
