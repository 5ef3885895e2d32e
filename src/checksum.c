/*
 * checksum.c — table checksums: an order-independent hash of a relation's
 * rows that does not depend on session settings.
 *
 * elt.table_checksum(rel, columns) reads the rows of rel (under the
 * statement's snapshot), encodes each row from the values' binary form,
 * hashes it with SipHash-1-3 (128-bit output, a fixed public key) and adds
 * the row hashes modulo 2^128.  Addition, unlike XOR, does not cancel a
 * row that appears twice; the order of the rows, their physical place
 * (VACUUM FULL, CLUSTER) and the session's DateStyle, TimeZone,
 * extra_float_digits or client_encoding do not change the result.
 *
 * Row encoding, per column in the order given: a NULL is the byte 0; a
 * value is the byte 1 and then its bytes, preceded by their length (a
 * varint) unless the type has a fixed width or its bytes say where they
 * end (numeric: its digit count; jsonb: its closing bracket; arrays and
 * composites: their elements').  So NULL, '' and 'NULL' differ, and no
 * value can run into the next column.  A value's bytes are:
 *   - bool, int2/4/8, oid, float4/8, date, time, timestamp, timestamptz:
 *     the value big-endian, as the type's send function writes it (any
 *     float NaN as the one NaN float8in makes);
 *   - text, varchar, char(n), name, json: the stored characters;
 *   - numeric: what numeric_send writes (read from the stored form),
 *     which starts with its number of digits;
 *   - jsonb: its tokens ('{' 'k' key value ... '}', '[' ... ']', '$' for a
 *     bare scalar, 's' and a string, '#' and a numeric, 'n', 't', 'f'),
 *     object keys in jsonb's stored order;
 *   - arrays: the number of dimensions, each dimension's length and lower
 *     bound, then each element (NULL marker, encoding); composites: each
 *     field the same way (so no type oids, no NULL bitmap left by updates);
 *   - any other type: its send function's output (binary COPY format),
 *     with client_encoding pinned to the database encoding.
 * Domains use their base type.
 *
 * Result: "v1:<rows>:<32 hex digits of the sum>".  The prefix versions the
 * format.
 *
 * elt.table_checksum_ranges(), the same by ranges of a key column, is
 * checksum_ranges.c's, over this file's setup and scan (checksum_int.h).
 *
 * A Citus distributed or reference table is checksummed on its shards,
 * where its rows are, and the sums added (checksum_citus.c); one made or
 * written by this transaction is read through Citus over the
 * transaction's own connections and checksummed on the coordinator
 * (checksum_citus_here): other connections do not see its uncommitted
 * shards and rows.
 */
#include "postgres.h"

#include <math.h>

#include "access/heapam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/partition.h"
#include "catalog/pg_am.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "catalog/namespace.h"
#include "utils/typcache.h"
#include "utils/datum.h"
#include "funcapi.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "checksum.h"
#include "checksum_int.h"
#include "citus.h"
#include "util.h"


/* ---------------------------------------------------------------------
 * SipHash-1-3, 128-bit output: one compression round per word and three
 * finalization rounds (the variant Rust's compiler and Python's hash
 * tables use).  The checksum detects accidental differences, and its key
 * is public either way; SipHash-2-4 made the whole checksum about 10%
 * slower.
 * ---------------------------------------------------------------------
 */

/* The fixed key: the bytes "elt_governance01", read as two little-endian words. */
static const uint8 checksum_key[16] = {
	'e', 'l', 't', '_', 'g', 'o', 'v', 'e', 'r', 'n', 'a', 'n', 'c', 'e', '0', '1'
};

static inline uint64
load_le64(const uint8 *p)
{
	uint64		v;

	memcpy(&v, p, 8);
#ifdef WORDS_BIGENDIAN
	v = pg_bswap64(v);
#endif
	return v;
}

static inline uint64
rotl64(uint64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIP_ROUND(v0, v1, v2, v3) \
	do { \
		v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32); \
		v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32); \
	} while (0)

/* SipHash-2-4-128 of in[0..len) under key; out[0] is the first 8 bytes of the tag (little-endian). */
static void
siphash128(const uint8 *in, size_t len, const uint8 *key, uint64 out[2])
{
	uint64		k0 = load_le64(key);
	uint64		k1 = load_le64(key + 8);
	uint64		v0 = UINT64CONST(0x736f6d6570736575) ^ k0;
	uint64		v1 = UINT64CONST(0x646f72616e646f6d) ^ k1;
	uint64		v2 = UINT64CONST(0x6c7967656e657261) ^ k0;
	uint64		v3 = UINT64CONST(0x7465646279746573) ^ k1;
	const uint8 *end = in + (len - len % 8);
	uint64		b = ((uint64) len) << 56;
	int			left = (int) (len & 7);

	v1 ^= 0xee;
	for (; in != end; in += 8)
	{
		uint64		m = load_le64(in);

		v3 ^= m;
		SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	while (left-- > 0)
		b |= ((uint64) in[left]) << (8 * left);
	v3 ^= b;
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xee;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	out[0] = v0 ^ v1 ^ v2 ^ v3;
	v1 ^= 0xdd;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	out[1] = v0 ^ v1 ^ v2 ^ v3;
}

/* ---------------------------------------------------------------------
 * Row encoding
 * ---------------------------------------------------------------------
 */

/* How values of type typid are encoded; arrays and composites recursively. */
static void
col_setup(ChecksumCol *c, Oid typid, const char *colname, char *relname)
{
	Oid			base = getBaseType(typid);
	Oid			sendfn;
	bool		varlena;
	Oid			elem;

	check_stack_depth();
	switch (base)
	{
		case BOOLOID:
			c->kind = CK_BOOL;
			return;
		case INT2OID:
			c->kind = CK_INT2;
			return;
		case INT4OID:
		case OIDOID:
		case DATEOID:
			c->kind = CK_INT4;
			return;
		case INT8OID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			c->kind = CK_INT8;
			return;
		case FLOAT4OID:
			c->kind = CK_FLOAT4;
			return;
		case FLOAT8OID:
			c->kind = CK_FLOAT8;
			return;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case JSONOID:
			c->kind = CK_STRING;
			return;
		case NAMEOID:
			c->kind = CK_NAME;
			return;
		case NUMERICOID:
			c->kind = CK_NUMERIC;
			return;
		case JSONBOID:
			c->kind = CK_JSONB;
			return;
		default:
			break;
	}
	/* array_send would write the element type's oid and whether a NULL bitmap is stored */
	elem = get_element_type(base);
	if (OidIsValid(elem) && get_typlen(base) == -1)
	{
		c->kind = CK_ARRAY;
		c->elemtype = elem;
		get_typlenbyvalalign(elem, &c->elmlen, &c->elmbyval, &c->elmalign);
		c->elem = palloc0(sizeof(ChecksumCol));
		col_setup(c->elem, elem, colname, relname);
		return;
	}
	/* and record_send each field's type oid */
	if (get_typtype(base) == TYPTYPE_COMPOSITE)
	{
		int			i;

		c->kind = CK_RECORD;
		c->fdesc = lookup_rowtype_tupdesc_copy(base, -1);
		c->fields = palloc0(sizeof(ChecksumCol) * Max(c->fdesc->natts, 1));
		for (i = 0; i < c->fdesc->natts; i++)
			if (!TupleDescAttr(c->fdesc, i)->attisdropped)
				col_setup(&c->fields[i], TupleDescAttr(c->fdesc, i)->atttypid, colname, relname);
		return;
	}
	getTypeBinaryOutputInfo(base, &sendfn, &varlena);
	if (!OidIsValid(sendfn))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("column \"%s\" of %s has type %s, which has no binary output function",
						colname, relname, format_type_be(typid)),
				 errhint("Leave the column out with the columns argument.")));
	fmgr_info(sendfn, &c->send);
	c->kind = CK_SEND;
}

/* Room for n more bytes at the end of s; returns where they go. */
static inline char *
reserve(StringInfo s, int n)
{
	if (s->len + n >= s->maxlen)
		enlargeStringInfo(s, n);
	return s->data + s->len;
}

static inline void
put_byte(StringInfo s, char c)
{
	*reserve(s, 1) = c;
	s->len++;
}

static inline void
put_be32(StringInfo s, uint32 v)
{
	v = pg_hton32(v);
	memcpy(reserve(s, 4), &v, 4);
	s->len += 4;
}

static inline void
put_be64(StringInfo s, uint64 v)
{
	v = pg_hton64(v);
	memcpy(reserve(s, 8), &v, 8);
	s->len += 8;
}

/* Write len as a varint at d; returns its size (at most 5). */
static inline int
write_len(char *d, uint32 len)
{
	return (int) (EltWriteVarint(d, len) - d);
}

/* A length, as a varint. */
static inline void
put_len(StringInfo s, uint32 len)
{
	s->len += write_len(reserve(s, 5), len);
}

/* A length and the bytes. */
static inline void
put_bytes(StringInfo s, const char *p, int len)
{
	put_len(s, (uint32) len);
	memcpy(reserve(s, len), p, len);
	s->len += len;
}

/* A varlena value as stored, detoasted only if it is compressed or out of line. */
static inline struct varlena *
varlena_value(Datum v)
{
	struct varlena *p = (struct varlena *) DatumGetPointer(v);

	if (VARATT_IS_COMPRESSED(p) || VARATT_IS_EXTERNAL(p))
		return PG_DETOAST_DATUM_PACKED(v);
	return p;
}

/*
 * A numeric's on-disk header (see numeric.c; the format is fixed by
 * pg_upgrade): a 16-bit word that is either the short header (sign, display
 * scale and weight packed) or, for the long header, the sign and display
 * scale followed by a 16-bit weight; then the base-10000 digits.
 */
#define NUM_SIGN_MASK 0xC000
#define NUM_NEG 0x4000
#define NUM_SHORT 0x8000
#define NUM_SPECIAL 0xC000
#define NUM_SHORT_SIGN_MASK 0x2000
#define NUM_SHORT_DSCALE_MASK 0x1F80
#define NUM_SHORT_DSCALE_SHIFT 7
#define NUM_SHORT_WEIGHT_SIGN_MASK 0x0040
#define NUM_SHORT_WEIGHT_MASK 0x003F
#define NUM_DSCALE_MASK 0x3FFF


/*
 * Append what numeric_send writes for v (ndigits, weight, sign, dscale,
 * digits, 16 bits each, big-endian), read from the stored form.  NaN and
 * the infinities go through numeric_send itself.
 */
static pg_attribute_always_inline void
encode_numeric(Datum v, StringInfo s)
{
	struct varlena *n = varlena_value(v);
	const char *data = VARDATA_ANY(n);
	int			len = VARSIZE_ANY_EXHDR(n);
	uint16		head;
	uint16		sign,
				dscale;
	int16		weight;
	int			hdr,
				ndigits,
				i;

	if (len < 2)
		elog(ERROR, "numeric value too short");
	memcpy(&head, data, 2);
	if ((head & NUM_SIGN_MASK) == NUM_SPECIAL)
	{
		bytea	   *b = DatumGetByteaPP(DirectFunctionCall1(numeric_send, PointerGetDatum(n)));

		memcpy(reserve(s, VARSIZE_ANY_EXHDR(b)), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
		s->len += VARSIZE_ANY_EXHDR(b);
		return;
	}
	if ((head & NUM_SIGN_MASK) == NUM_SHORT)
	{
		hdr = 2;
		sign = (head & NUM_SHORT_SIGN_MASK) ? NUM_NEG : 0;
		dscale = (head & NUM_SHORT_DSCALE_MASK) >> NUM_SHORT_DSCALE_SHIFT;
		weight = (head & NUM_SHORT_WEIGHT_SIGN_MASK)
			? (int16) (~NUM_SHORT_WEIGHT_MASK | (head & NUM_SHORT_WEIGHT_MASK))
			: (int16) (head & NUM_SHORT_WEIGHT_MASK);
	}
	else
	{
		if (len < 4)
			elog(ERROR, "numeric value too short");
		hdr = 4;
		sign = head & NUM_SIGN_MASK;
		dscale = head & NUM_DSCALE_MASK;
		memcpy(&weight, data + 2, 2);
	}
	ndigits = (len - hdr) / 2;
	{
		char	   *d = reserve(s, 8 + 2 * ndigits);
		uint16		w[4];

		w[0] = pg_hton16((uint16) ndigits);
		w[1] = pg_hton16((uint16) weight);
		w[2] = pg_hton16(sign);
		w[3] = pg_hton16(dscale);
		memcpy(d, w, 8);
		d += 8;
		for (i = 0; i < ndigits; i++)
		{
			uint16		x;

			memcpy(&x, data + hdr + 2 * i, 2);
			x = pg_hton16(x);
			memcpy(d + 2 * i, &x, 2);
		}
		s->len += 8 + 2 * ndigits;
	}
}

/*
 * A jsonb value as the stream of its tokens, read from its binary
 * containers (whose object keys are stored sorted): '{' 'k' key value ...
 * '}', '[' elements ']', '$' scalar ']' for a bare scalar; a string is 's'
 * and its length and bytes, a number '#' and its numeric encoding, then
 * 'n', 't', 'f'.
 */
static void encode_jsonb_container(const JsonbContainer *jc, StringInfo s);

static pg_attribute_always_inline void
encode_jsonb_child(JEntry e, const char *base, uint32 off, uint32 len, StringInfo s)
{
	if (JBE_ISSTRING(e))
	{
		put_byte(s, 's');
		put_bytes(s, base + off, (int) len);
	}
	else if (JBE_ISNUMERIC(e))
	{
		put_byte(s, '#');
		encode_numeric(PointerGetDatum(base + INTALIGN(off)), s);
	}
	else if (JBE_ISNULL(e))
		put_byte(s, 'n');
	else if (JBE_ISBOOL_TRUE(e))
		put_byte(s, 't');
	else if (JBE_ISBOOL_FALSE(e))
		put_byte(s, 'f');
	else if (JBE_ISCONTAINER(e))
		encode_jsonb_container((const JsonbContainer *) (base + INTALIGN(off)), s);
	else
		elog(ERROR, "unexpected jsonb entry type %u", (unsigned) (e & JENTRY_TYPEMASK));
}

static void
encode_jsonb_container(const JsonbContainer *jc, StringInfo s)
{
	uint32		count = JsonContainerSize(jc);
	bool		object = JsonContainerIsObject(jc);
	uint32		nchildren = object ? count * 2 : count;
	const char *base = (const char *) &jc->children[nchildren];
	uint32		local[2 * 32];
	uint32	   *offlen = nchildren <= 32 ? local : palloc(sizeof(uint32) * 2 * nchildren);
	uint32		off = 0,
				i;

	check_stack_depth();
	/* each child's offset and length, in storage order (keys, then values) */
	for (i = 0; i < nchildren; i++)
	{
		JEntry		e = jc->children[i];
		uint32		len = JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) - off : JBE_OFFLENFLD(e);

		offlen[2 * i] = off;
		offlen[2 * i + 1] = len;
		off += len;
	}
	put_byte(s, object ? '{' : JsonContainerIsScalar(jc) ? '$' : '[');
	for (i = 0; i < count; i++)
	{
		if (object)
		{
			put_byte(s, 'k');
			encode_jsonb_child(jc->children[i], base, offlen[2 * i], offlen[2 * i + 1], s);
			encode_jsonb_child(jc->children[i + count], base, offlen[2 * (i + count)],
							   offlen[2 * (i + count) + 1], s);
		}
		else
			encode_jsonb_child(jc->children[i], base, offlen[2 * i], offlen[2 * i + 1], s);
	}
	put_byte(s, object ? '}' : ']');
	if (offlen != local)
		pfree(offlen);
}

/*
 * A jsonb value: its token stream, which needs no length in front (it
 * ends with the bracket that closes its first token, and its strings and
 * numbers carry their lengths).
 */
static void
encode_jsonb(Datum d, StringInfo s, StringInfo scratch)
{
	struct varlena *v = varlena_value(d);

	/* the container, 4-byte aligned: a value with a short header is copied */
	if (VARATT_IS_SHORT(v))
	{
		int			n = VARSIZE_ANY_EXHDR(v);

		scratch->len = 0;
		memcpy(reserve(scratch, n), VARDATA_ANY(v), n);
		encode_jsonb_container((const JsonbContainer *) scratch->data, s);
	}
	else
		encode_jsonb_container((const JsonbContainer *) VARDATA(v), s);
}

/*
 * The common kinds of value, inline (the row loop calls this for every
 * column); false for the others, which encode_value() handles.
 */
static pg_attribute_always_inline bool
encode_common(ChecksumCol *col, Datum v, StringInfo s)
{
	switch (col->kind)
	{
		case CK_INT4:
			put_be32(s, (uint32) DatumGetInt32(v));
			return true;
		case CK_INT8:
			put_be64(s, (uint64) DatumGetInt64(v));
			return true;
		case CK_STRING:
			{
				struct varlena *t = varlena_value(v);

				put_bytes(s, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
			return true;
		case CK_NUMERIC:
			encode_numeric(v, s);
			return true;
		default:
			return false;
	}
}

/*
 * Append the encoding of one value (not NULL): fixed-width values as their
 * bytes, the others as a length and their bytes; an array as its
 * dimensions and elements, a composite as its fields (each element or
 * field with a NULL marker).
 */
static void
encode_value(ChecksumCol *col, Datum v, StringInfo s, StringInfo scratch)
{
	if (encode_common(col, v, s))
		return;
	switch (col->kind)
	{
		case CK_BOOL:
			put_byte(s, DatumGetBool(v) ? 1 : 0);
			break;
		case CK_INT2:
			{
				uint16		x = pg_hton16((uint16) DatumGetInt16(v));

				memcpy(reserve(s, 2), &x, 2);
				s->len += 2;
			}
			break;
		case CK_FLOAT4:
			{
				float4		f = DatumGetFloat4(v);
				uint32		bits;

				/* every NaN prints as NaN: one bit pattern for all */
				if (isnan(f))
					bits = (uint32) 0x7FC00000;
				else
					memcpy(&bits, &f, 4);
				put_be32(s, bits);
			}
			break;
		case CK_FLOAT8:
			{
				float8		f = DatumGetFloat8(v);
				uint64		bits;

				if (isnan(f))
					bits = UINT64CONST(0x7FF8000000000000);
				else
					memcpy(&bits, &f, 8);
				put_be64(s, bits);
			}
			break;
		case CK_NAME:
			{
				const char *n = NameStr(*DatumGetName(v));

				put_bytes(s, n, strlen(n));
			}
			break;
		case CK_JSONB:
			encode_jsonb(v, s, scratch);
			break;
		case CK_ARRAY:
			{
				ArrayType  *a = DatumGetArrayTypeP(v);
				int			ndim = ARR_NDIM(a);
				Datum	   *elems;
				bool	   *nulls;
				int			n,
							i;

				put_byte(s, (char) ndim);
				for (i = 0; i < ndim; i++)
				{
					put_be32(s, (uint32) ARR_DIMS(a)[i]);
					put_be32(s, (uint32) ARR_LBOUND(a)[i]);
				}
				deconstruct_array(a, col->elemtype, col->elmlen, col->elmbyval, col->elmalign,
								  &elems, &nulls, &n);
				for (i = 0; i < n; i++)
				{
					if (nulls[i])
						put_byte(s, 0);
					else
					{
						put_byte(s, 1);
						encode_value(col->elem, elems[i], s, scratch);
					}
				}
			}
			break;
		case CK_RECORD:
			{
				HeapTupleHeader th = DatumGetHeapTupleHeader(v);
				HeapTupleData tup;
				Datum	   *values = palloc(sizeof(Datum) * Max(col->fdesc->natts, 1));
				bool	   *nulls = palloc(sizeof(bool) * Max(col->fdesc->natts, 1));
				int			i;

				tup.t_len = HeapTupleHeaderGetDatumLength(th);
				ItemPointerSetInvalid(&tup.t_self);
				tup.t_tableOid = InvalidOid;
				tup.t_data = th;
				heap_deform_tuple(&tup, col->fdesc, values, nulls);
				for (i = 0; i < col->fdesc->natts; i++)
				{
					if (TupleDescAttr(col->fdesc, i)->attisdropped)
						continue;
					if (nulls[i])
						put_byte(s, 0);
					else
					{
						put_byte(s, 1);
						encode_value(&col->fields[i], values[i], s, scratch);
					}
				}
			}
			break;
		case CK_SEND:
			{
				bytea	   *b = SendFunctionCall(&col->send, v);

				put_bytes(s, VARDATA(b), VARSIZE(b) - VARHDRSZ);
			}
			break;
		default:
			/* encode_common() did it */
			break;
	}
}

/* The segment of a row: 0 for a NULL key, else 1 + the bounds at or below its key. */
static int
key_segment(Checksum *cs, const Datum *values, const bool *nulls)
{
	int			a = cs->keyattnum - 1;
	Datum		key;
	int			lo = 0,
				hi = cs->nbounds;

	if (nulls[a])
		return 0;
	key = values[a];
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (DatumGetInt32(FunctionCall2Coll(&cs->cmp, cs->keycoll, cs->bounds[mid], key)) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 1 + lo;
}

/* Add one row, its column values (by attribute number - 1) in values/nulls. */
static inline void
checksum_row(Checksum *cs, const Datum *values, const bool *nulls)
{
	MemoryContext old = MemoryContextSwitchTo(cs->rowcxt);
	uint64		h[2];
	uint64		lo;
	int			i;

	cs->buf.len = 0;
	for (i = 0; i < cs->ncols; i++)
	{
		int			a = cs->cols[i].attnum - 1;

		if (nulls[a])
			put_byte(&cs->buf, 0);
		else
		{
			put_byte(&cs->buf, 1);
			if (!encode_common(&cs->cols[i], values[a], &cs->buf))
				encode_value(&cs->cols[i], values[a], &cs->buf, &cs->scratch);
		}
	}
	siphash128((const uint8 *) cs->buf.data, cs->buf.len, checksum_key, h);
	if (cs->keyname)
	{
		int			seg = key_segment(cs, values, nulls);
		uint64	   *sum = &cs->seg_sum[2 * seg];

		lo = sum[0] + h[0];
		sum[1] += h[1] + (lo < sum[0] ? 1 : 0);
		sum[0] = lo;
		cs->seg_rows[seg]++;
	}
	MemoryContextSwitchTo(old);
	/* only detoasted values, send functions, arrays and composites allocate */
	if (!cs->rowcxt->isReset)
		MemoryContextReset(cs->rowcxt);
	/* sum modulo 2^128 */
	lo = cs->sum[0] + h[0];
	cs->sum[1] += h[1] + (lo < cs->sum[0] ? 1 : 0);
	cs->sum[0] = lo;
	cs->rows++;
}

/*
 * Add the selected rows of rel (EltRowsChecksum) that the active snapshot
 * sees, each fetched by its TID.
 */
static void
checksum_selected(Checksum *cs, Relation rel)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Oid			relid = RelationGetRelid(rel);
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	int64		i;

	/* the rows are sorted by relation: rel's are one run */
	for (i = 0; i < cs->nsel && cs->sel_rels[i] != relid; i++)
		;
	for (; i < cs->nsel && cs->sel_rels[i] == relid; i++)
	{
		ItemPointerData tid = cs->sel_tids[i];

		CHECK_FOR_INTERRUPTS();
		/* a row past the end (the table was truncated since) is gone */
		if (ItemPointerGetBlockNumber(&tid) >= nblocks ||
			!table_tuple_fetch_row_version(rel, &tid, GetActiveSnapshot(), slot))
			continue;
		slot_getallattrs(slot);
		checksum_row(cs, slot->tts_values, slot->tts_isnull);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/* Add the rows of one relation (a table, a leaf partition or a materialized view). */
static void
checksum_relation(Checksum *cs, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TableScanDesc scan;
	int			i;

	/* columns by name: a partition may number them differently */
	for (i = 0; i < cs->ncols; i++)
	{
		AttrNumber	a = get_attnum(RelationGetRelid(rel), cs->cols[i].name);

		if (a == InvalidAttrNumber)
			elog(ERROR, "column \"%s\" not found in %s", cs->cols[i].name,
				 RelationGetRelationName(rel));
		cs->cols[i].attnum = a;
	}
	if (cs->keyname)
	{
		cs->keyattnum = get_attnum(RelationGetRelid(rel), cs->keyname);
		if (cs->keyattnum == InvalidAttrNumber)
			elog(ERROR, "column \"%s\" not found in %s", cs->keyname, RelationGetRelationName(rel));
	}
	if (cs->sel_tids != NULL)
	{
		checksum_selected(cs, rel);
		return;
	}
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	if (rel->rd_rel->relam == HEAP_TABLE_AM_OID)
	{
		/* the heap's tuples deformed straight into arrays, without a slot */
		Datum	   *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
		bool	   *nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
		HeapTuple	tuple;

		while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			heap_deform_tuple(tuple, desc, values, nulls);
			checksum_row(cs, values, nulls);
		}
		pfree(values);
		pfree(nulls);
	}
	else
	{
		TupleTableSlot *slot = table_slot_create(rel, NULL);

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			CHECK_FOR_INTERRUPTS();
			slot_getallattrs(slot);
			checksum_row(cs, slot->tts_values, slot->tts_isnull);
		}
		ExecDropSingleTupleTableSlot(slot);
	}
	table_endscan(scan);
}

/* Run the scans with client_encoding set to the database's (send functions convert text to it). */
void
EltChecksumScan(Checksum *cs, List *rels)
{
	int			save_encoding = pg_get_client_encoding();
	ListCell   *lc;

	if (save_encoding != GetDatabaseEncoding())
		SetClientEncoding(GetDatabaseEncoding());
	PG_TRY();
	{
		foreach(lc, rels)
		{
			Relation	r = table_open(lfirst_oid(lc), AccessShareLock);

			checksum_relation(cs, r);
			table_close(r, AccessShareLock);
		}
	}
	PG_FINALLY();
	{
		if (pg_get_client_encoding() != save_encoding)
			SetClientEncoding(save_encoding);
	}
	PG_END_TRY();
}

/*
 * Add the rows of Citus table relid as this transaction sees them: read by
 * a query that Citus runs over the transaction's own connections to the
 * shards, the rows sent to the coordinator and checksummed here.  For a
 * table whose shards this transaction made or wrote: run_command_on_shards
 * (checksum_citus.c) reads each shard over a connection of its own, which
 * sees only what is committed.
 */
static void
checksum_citus_here(Checksum *cs, Oid relid)
{
	StringInfoData sql;
	int			save_encoding = pg_get_client_encoding();
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (i = 0; i < cs->ncols; i++)
	{
		appendStringInfo(&sql, "%sm.%s", i > 0 ? ", " : "", quote_identifier(cs->cols[i].name));
		cs->cols[i].attnum = i + 1;
	}
	appendStringInfo(&sql, " FROM %s%s AS m", get_rel_relkind(relid) == RELKIND_RELATION ? "ONLY " : "",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)));
	if (save_encoding != GetDatabaseEncoding())
		SetClientEncoding(GetDatabaseEncoding());
	PG_TRY();
	{
		Datum	   *values = palloc(sizeof(Datum) * Max(cs->ncols, 1));
		bool	   *nulls = palloc(sizeof(bool) * Max(cs->ncols, 1));
		Portal		portal;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
		for (;;)
		{
			uint64		n;

			SPI_cursor_fetch(portal, true, 1000);
			if (SPI_processed == 0)
				break;
			for (n = 0; n < SPI_processed; n++)
			{
				CHECK_FOR_INTERRUPTS();
				heap_deform_tuple(SPI_tuptable->vals[n], SPI_tuptable->tupdesc, values, nulls);
				checksum_row(cs, values, nulls);
			}
			SPI_freetuptable(SPI_tuptable);
		}
		SPI_cursor_close(portal);
		SPI_finish();
	}
	PG_FINALLY();
	{
		if (pg_get_client_encoding() != save_encoding)
			SetClientEncoding(save_encoding);
	}
	PG_END_TRY();
}

/* Whether relid was made in this transaction (its Citus shards are not committed). */
static bool
made_here(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	bool		here = rel->rd_createSubid != InvalidSubTransactionId;

	relation_close(rel, AccessShareLock);
	return here;
}

/*
 * Check relid and the named columns (all, in order, if NIL) and the
 * caller's right to read them, and list the relations to scan.
 */
List *
EltChecksumSetup(Checksum *cs, Oid relid, List *colnames)
{
	Relation	rel = EltOpenGivenRelation(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	char	   *relname = EltRelDisplayName(relid);
	char		kind = rel->rd_rel->relkind;
	List	   *rels = NIL;
	ListCell   *lc;
	int			i;

	if (kind != RELKIND_RELATION && kind != RELKIND_MATVIEW && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table or materialized view", relname),
				 errhint("Checksum the tables it reads, or a table made from it with CREATE TABLE ... AS.")));
	if (kind == RELKIND_MATVIEW && !RelationIsPopulated(rel))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("materialized view %s has not been populated", relname),
				 errhint("Use REFRESH MATERIALIZED VIEW.")));
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s has row-level security for the current role", relname),
				 errdetail("A checksum reads every row of the table."),
				 errhint("Run it as the table's owner or a role that bypasses row-level security.")));

	if (colnames == NIL)
	{
		for (i = 0; i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped)
				colnames = lappend(colnames, pstrdup(NameStr(TupleDescAttr(desc, i)->attname)));
	}
	cs->ncols = list_length(colnames);
	cs->cols = palloc0(sizeof(ChecksumCol) * Max(cs->ncols, 1));
	i = 0;
	foreach(lc, colnames)
	{
		char	   *name = lfirst(lc);
		AttrNumber	a = get_attnum(relid, name);
		int			j;

		if (a == InvalidAttrNumber || a < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of %s does not exist", name, relname)));
		for (j = 0; j < i; j++)
			if (strcmp(cs->cols[j].name, name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" is listed twice", name)));
		if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
			pg_attribute_aclcheck(relid, a, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to read column \"%s\" of %s", name, relname)));
		cs->cols[i].name = name;
		col_setup(&cs->cols[i], TupleDescAttr(desc, a - 1)->atttypid, name, relname);
		i++;
	}
	if (cs->ncols == 0 && pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read %s", relname)));

	if (kind == RELKIND_PARTITIONED_TABLE)
	{
		foreach(lc, find_all_inheritors(relid, AccessShareLock, NULL))
		{
			Oid			child = lfirst_oid(lc);

			if (get_rel_relkind(child) == RELKIND_FOREIGN_TABLE)
				ereport(ERROR,
						(errcode(ERRCODE_WRONG_OBJECT_TYPE),
						 errmsg("partition %s of %s is a foreign table", EltRelDisplayName(child), relname),
						 errdetail("A checksum reads the rows stored in this database only."),
						 errhint("Checksum the other partitions one by one.")));
			if (RELKIND_HAS_STORAGE(get_rel_relkind(child)))
				rels = lappend_oid(rels, child);
		}
	}
	else
		rels = list_make1_oid(relid);
	relation_close(rel, NoLock);
	initStringInfo(&cs->buf);
	initStringInfo(&cs->scratch);
	cs->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "elt checksum row", ALLOCSET_DEFAULT_SIZES);
	return rels;
}

/* The names of the columns a checksum reads. */
char **
EltChecksumColumnNames(Checksum *cs)
{
	char	  **names = palloc(sizeof(char *) * Max(cs->ncols, 1));
	int			i;

	for (i = 0; i < cs->ncols; i++)
		names[i] = cs->cols[i].name;
	return names;
}

char *
EltChecksumFormat(uint64 rows, const uint64 *sum)
{
	return psprintf(CHECKSUM_PREFIX ":" UINT64_FORMAT ":" ELT_INT64_HEX ELT_INT64_HEX,
					rows, sum[1], sum[0]);
}

/*
 * The checksum of relid's rows over the named columns (all columns, in
 * order, if NIL), after checking that the caller may read them.
 */
char *
EltTableChecksum(Oid relid, List *colnames)
{
	return EltTableChecksumHere(relid, colnames, false);
}

/*
 * EltTableChecksum, of the rows as this transaction sees them when written
 * (or when the table was made in it): a Citus table's rows are then read
 * over the transaction's own connections, not each shard's committed rows.
 */
char *
EltTableChecksumHere(Oid relid, List *colnames, bool written)
{
	Checksum	cs;
	List	   *rels;
	EltCitusTable citus;

	memset(&cs, 0, sizeof(cs));
	rels = EltChecksumSetup(&cs, relid, colnames);
	/* a Citus table's rows are in its shards (checksum_citus.c) */
	if (EltCitusTableInfo(relid, &citus))
	{
		if (written || made_here(relid))
			checksum_citus_here(&cs, relid);
		else
			EltChecksumCitus(relid, EltChecksumColumnNames(&cs), cs.ncols, &cs.rows, cs.sum);
	}
	else
		EltChecksumScan(&cs, rels);
	MemoryContextDelete(cs.rowcxt);
	return EltChecksumFormat(cs.rows, cs.sum);
}

/*
 * The checksum of some rows of relid, over all its columns: row tids[i] of
 * relation rels[i] (relid, or a leaf partition of it), n in all, sorted
 * by relation (then by TID, for a sequential read), each counted when the
 * active snapshot sees it.  Equals elt.table_checksum()
 * of a table holding just those rows.  Checks privileges as
 * EltTableChecksum does; not for a Citus table (its rows are on shards).
 */
char *
EltRowsChecksum(Oid relid, int64 n, const Oid *rels, const ItemPointerData *tids)
{
	Checksum	cs;
	List	   *leaves;
	int64		i;

	memset(&cs, 0, sizeof(cs));
	leaves = EltChecksumSetup(&cs, relid, NIL);
	for (i = 0; i < n; i++)
		if (!list_member_oid(leaves, rels[i]) || (i > 0 && rels[i] < rels[i - 1]))
			elog(ERROR, "rows of relation %u are not sorted rows of %s", rels[i], EltRelDisplayName(relid));
	cs.nsel = n;
	cs.sel_rels = rels;
	cs.sel_tids = tids;
	EltChecksumScan(&cs, leaves);
	MemoryContextDelete(cs.rowcxt);
	return EltChecksumFormat(cs.rows, cs.sum);
}

PG_FUNCTION_INFO_V1(elt_table_checksum);

/* The column names of a columns argument (NIL for NULL: all columns). */
List *
EltChecksumColumnList(FunctionCallInfo fcinfo, int argno)
{
	List	   *cols = NIL;
	ArrayType  *a;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NIL;
	a = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("columns is empty"),
				 errhint("Give at least one column, or NULL for all of them.")));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("columns contains a NULL")));
		cols = lappend(cols, TextDatumGetCString(elems[i]));
	}
	return cols;
}

/* elt.table_checksum(rel regclass, columns text[] DEFAULT NULL) */
Datum
elt_table_checksum(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(EltTableChecksum(PG_GETARG_OID(0), EltChecksumColumnList(fcinfo, 1))));
}

PG_FUNCTION_INFO_V1(elt_checksum_selftest);

/*
 * elt._checksum_selftest(): the row hash against the SipHash-1-3-128
 * reference vectors (key 00..0f, messages 00..(n-1)) for n = 0 to 4, 7,
 * 8, 15 and 16, and
 * the encoding of numerics against numeric_send.
 */
Datum
elt_checksum_selftest(PG_FUNCTION_ARGS)
{
	static const int lengths[9] = {0, 1, 2, 3, 4, 7, 8, 15, 16};
	static const uint8 expected[9][16] = {
		{0xe7, 0x7e, 0xbc, 0xb2, 0x27, 0x88, 0xa5, 0xbe, 0xfd, 0x62, 0xdb, 0x6a, 0xdd, 0x30, 0x30, 0x01},
		{0xfc, 0x6f, 0x37, 0x04, 0x60, 0xd3, 0xed, 0xa8, 0x5e, 0x05, 0x73, 0xcc, 0x2b, 0x2f, 0xf0, 0x63},
		{0x75, 0x78, 0x7f, 0x09, 0x05, 0x69, 0x83, 0x9b, 0x85, 0x5b, 0xc9, 0x54, 0x8c, 0x6a, 0xea, 0x95},
		{0x6b, 0xc5, 0xcc, 0xfa, 0x1e, 0xdc, 0xf7, 0x9f, 0x48, 0x23, 0x18, 0x77, 0x12, 0xeb, 0xd7, 0x43},
		{0x0c, 0x78, 0x4e, 0x71, 0xac, 0x2b, 0x28, 0x5a, 0x9f, 0x8e, 0x92, 0xe7, 0x8f, 0xbf, 0x2c, 0x25},
		{0x10, 0x84, 0xb9, 0x23, 0xf2, 0xaa, 0xe0, 0xc3, 0xa6, 0x2f, 0x2e, 0xc8, 0x08, 0x48, 0xab, 0x77},
		{0xaa, 0x12, 0xfe, 0xe1, 0xd5, 0xe3, 0xda, 0xb4, 0x72, 0x4f, 0x16, 0xab, 0x35, 0xf9, 0xc7, 0x99},
		{0xc1, 0x7e, 0x55, 0x05, 0xb2, 0xbd, 0x52, 0x6c, 0x29, 0x21, 0xcd, 0xec, 0x1e, 0x7e, 0x01, 0x09},
		{0xd0, 0xa8, 0xd9, 0x57, 0x15, 0x51, 0x8e, 0xeb, 0xb5, 0x13, 0xb0, 0xf8, 0x3d, 0x9e, 0x17, 0x93},
	};
	uint8		key[16];
	uint8		msg[16];
	int			n,
				i;

	for (i = 0; i < 16; i++)
		key[i] = (uint8) i;
	for (i = 0; i < 16; i++)
		msg[i] = (uint8) i;
	for (n = 0; n < (int) lengthof(lengths); n++)
	{
		uint64		h[2];
		uint8		tag[16];

		siphash128(msg, lengths[n], key, h);
		for (i = 0; i < 8; i++)
		{
			tag[i] = (uint8) (h[0] >> (8 * i));
			tag[8 + i] = (uint8) (h[1] >> (8 * i));
		}
		if (memcmp(tag, expected[n], 16) != 0)
			PG_RETURN_BOOL(false);
	}
	/* numerics read from their stored form, short and long headers: as numeric_send */
	{
		static const char *const nums[] = {
			"0", "1", "-1", "1.50", "-0.001", "123456789.123456789", "1e100", "-1e-100",
			"1e300", "-1e-300", "0.0000000000000000000000000000000000000000000000000000000000000000000001",
			"99999999999999999999.99", "NaN", "Infinity", "-Infinity"
		};

		for (i = 0; i < (int) lengthof(nums); i++)
		{
			Datum		num = DirectFunctionCall3(numeric_in, CStringGetDatum(nums[i]),
												  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
			bytea	   *b = DatumGetByteaPP(DirectFunctionCall1(numeric_send, num));
			StringInfoData a;

			initStringInfo(&a);
			encode_numeric(num, &a);
			/* numeric_send's bytes exactly */
			if (a.len != (int) VARSIZE_ANY_EXHDR(b) ||
				memcmp(a.data, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b)) != 0)
				PG_RETURN_BOOL(false);
		}
	}
	PG_RETURN_BOOL(true);
}

/* The row count in a checksum "v1:<rows>:<hex>". */
int64
EltChecksumRows(const char *checksum)
{
	const char *p = strchr(checksum, ':');

	return p ? strtoi64(p + 1, NULL, 10) : 0;
}
