/*
 * checksum.c — table checksums: an order-independent hash of a relation's
 * rows that does not depend on session settings.
 *
 * elt.table_checksum(rel, columns) reads the rows of rel (under the
 * statement's snapshot), encodes each row from the values' binary form,
 * hashes it with SipHash-2-4 (128-bit output, a fixed public key) and adds
 * the row hashes modulo 2^128.  Addition, unlike XOR, does not cancel a
 * row that appears twice; the order of the rows, their physical place
 * (VACUUM FULL, CLUSTER) and the session's DateStyle, TimeZone,
 * extra_float_digits or client_encoding do not change the result.
 *
 * Row encoding, per column in the order given: a NULL is the byte 0; a
 * value is the byte 1, its length as 4 bytes big-endian and its bytes.  So
 * NULL, '' and 'NULL' differ, and no value can run into the next column.
 * A value's bytes are:
 *   - for bool, int2/4/8, oid, float4/8, date, time, timestamp and
 *     timestamptz: the value big-endian, as the type's send function
 *     writes it;
 *   - for text, varchar, char(n), name and json: the stored characters;
 *   - for any other type: its send function's output (binary COPY
 *     format), with client_encoding pinned to the database encoding.
 * Domains use their base type.
 *
 * Result: "v1:<rows>:<32 hex digits of the sum>".  The prefix versions the
 * format.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "checksum.h"
#include "util.h"

#define CHECKSUM_PREFIX "v1"

/* ---------------------------------------------------------------------
 * SipHash-2-4, 128-bit output
 * ---------------------------------------------------------------------
 */

/* The fixed key: the bytes "elt_governance01", read as two little-endian words. */
static const uint8 checksum_key[16] = {
	'e', 'l', 't', '_', 'g', 'o', 'v', 'e', 'r', 'n', 'a', 'n', 'c', 'e', '0', '1'
};

static inline uint64
load_le64(const uint8 *p)
{
	uint64		v = 0;
	int			i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
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
		SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	while (left-- > 0)
		b |= ((uint64) in[left]) << (8 * left);
	v3 ^= b;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xee;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	out[0] = v0 ^ v1 ^ v2 ^ v3;
	v1 ^= 0xdd;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	out[1] = v0 ^ v1 ^ v2 ^ v3;
}

/* ---------------------------------------------------------------------
 * Row encoding
 * ---------------------------------------------------------------------
 */

typedef enum ColKind
{
	CK_BOOL,
	CK_INT2,
	CK_INT4,					/* int4, oid, date, float4 (bits) */
	CK_INT8,					/* int8, time, timestamp(tz), float8 (bits) */
	CK_FLOAT4,
	CK_FLOAT8,
	CK_STRING,					/* text, varchar, bpchar, json */
	CK_NAME,
	CK_SEND
} ColKind;

typedef struct ChecksumCol
{
	char	   *name;
	ColKind		kind;
	FmgrInfo	send;
	AttrNumber	attnum;			/* in the relation being read */
} ChecksumCol;

typedef struct Checksum
{
	int			ncols;
	ChecksumCol *cols;
	uint64		sum[2];			/* [0] low, [1] high word */
	uint64		rows;
	StringInfoData buf;
	MemoryContext rowcxt;
} Checksum;

static ColKind
col_kind(Oid typid, const char *colname, char *relname, FmgrInfo *send)
{
	Oid			base = getBaseType(typid);
	Oid			sendfn;
	bool		varlena;

	switch (base)
	{
		case BOOLOID:
			return CK_BOOL;
		case INT2OID:
			return CK_INT2;
		case INT4OID:
		case OIDOID:
		case DATEOID:
			return CK_INT4;
		case INT8OID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return CK_INT8;
		case FLOAT4OID:
			return CK_FLOAT4;
		case FLOAT8OID:
			return CK_FLOAT8;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case JSONOID:
			return CK_STRING;
		case NAMEOID:
			return CK_NAME;
		default:
			break;
	}
	getTypeBinaryOutputInfo(base, &sendfn, &varlena);
	if (!OidIsValid(sendfn))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("column \"%s\" of %s has type %s, which has no binary output function",
						colname, relname, format_type_be(typid)),
				 errhint("Leave the column out with the columns argument.")));
	fmgr_info(sendfn, send);
	return CK_SEND;
}

static inline void
put_be32(StringInfo s, uint32 v)
{
	v = pg_hton32(v);
	appendBinaryStringInfo(s, (char *) &v, 4);
}

static inline void
put_be64(StringInfo s, uint64 v)
{
	v = pg_hton64(v);
	appendBinaryStringInfo(s, (char *) &v, 8);
}

/* Append the encoding of one value (not NULL). */
static void
encode_value(ChecksumCol *col, Datum v, StringInfo s)
{
	switch (col->kind)
	{
		case CK_BOOL:
			put_be32(s, 1);
			appendStringInfoChar(s, DatumGetBool(v) ? 1 : 0);
			break;
		case CK_INT2:
			{
				uint16		x = pg_hton16((uint16) DatumGetInt16(v));

				put_be32(s, 2);
				appendBinaryStringInfo(s, (char *) &x, 2);
			}
			break;
		case CK_INT4:
			put_be32(s, 4);
			put_be32(s, (uint32) DatumGetInt32(v));
			break;
		case CK_INT8:
			put_be32(s, 8);
			put_be64(s, (uint64) DatumGetInt64(v));
			break;
		case CK_FLOAT4:
			{
				float4		f = DatumGetFloat4(v);
				uint32		bits;

				memcpy(&bits, &f, 4);
				put_be32(s, 4);
				put_be32(s, bits);
			}
			break;
		case CK_FLOAT8:
			{
				float8		f = DatumGetFloat8(v);
				uint64		bits;

				memcpy(&bits, &f, 8);
				put_be32(s, 8);
				put_be64(s, bits);
			}
			break;
		case CK_STRING:
			{
				text	   *t = DatumGetTextPP(v);
				int			len = VARSIZE_ANY_EXHDR(t);

				put_be32(s, (uint32) len);
				appendBinaryStringInfo(s, VARDATA_ANY(t), len);
				if ((Pointer) t != DatumGetPointer(v))
					pfree(t);
			}
			break;
		case CK_NAME:
			{
				const char *n = NameStr(*DatumGetName(v));
				int			len = strlen(n);

				put_be32(s, (uint32) len);
				appendBinaryStringInfo(s, n, len);
			}
			break;
		case CK_SEND:
			{
				bytea	   *b = SendFunctionCall(&col->send, v);
				int			len = VARSIZE(b) - VARHDRSZ;

				put_be32(s, (uint32) len);
				appendBinaryStringInfo(s, VARDATA(b), len);
			}
			break;
	}
}

/* Add the rows of one relation (a table, a leaf partition or a materialized view). */
static void
checksum_relation(Checksum *cs, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TableScanDesc scan;
	TupleTableSlot *slot;
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
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old;
		uint64		h[2];
		uint64		lo;

		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		old = MemoryContextSwitchTo(cs->rowcxt);
		resetStringInfo(&cs->buf);
		for (i = 0; i < cs->ncols; i++)
		{
			int			a = cs->cols[i].attnum - 1;

			if (slot->tts_isnull[a])
				appendStringInfoChar(&cs->buf, 0);
			else
			{
				appendStringInfoChar(&cs->buf, 1);
				encode_value(&cs->cols[i], slot->tts_values[a], &cs->buf);
			}
		}
		siphash128((const uint8 *) cs->buf.data, cs->buf.len, checksum_key, h);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cs->rowcxt);
		/* sum modulo 2^128 */
		lo = cs->sum[0] + h[0];
		cs->sum[1] += h[1] + (lo < cs->sum[0] ? 1 : 0);
		cs->sum[0] = lo;
		cs->rows++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	(void) desc;
}

/* Run the scans with client_encoding set to the database's (send functions convert text to it). */
static void
checksum_scan(Checksum *cs, List *rels)
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
 * The checksum of relid's rows over the named columns (all columns, in
 * order, if NIL), after checking that the caller may read them.
 */
char *
EltTableChecksum(Oid relid, List *colnames)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	char	   *relname = EltRelDisplayName(relid);
	char		kind = rel->rd_rel->relkind;
	Checksum	cs;
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

	memset(&cs, 0, sizeof(cs));
	if (colnames == NIL)
	{
		for (i = 0; i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped)
				colnames = lappend(colnames, pstrdup(NameStr(TupleDescAttr(desc, i)->attname)));
	}
	cs.ncols = list_length(colnames);
	cs.cols = palloc0(sizeof(ChecksumCol) * Max(cs.ncols, 1));
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
			if (strcmp(cs.cols[j].name, name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" is listed twice", name)));
		if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
			pg_attribute_aclcheck(relid, a, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to read column \"%s\" of %s", name, relname)));
		cs.cols[i].name = name;
		cs.cols[i].kind = col_kind(TupleDescAttr(desc, a - 1)->atttypid, name, relname, &cs.cols[i].send);
		i++;
	}
	if (cs.ncols == 0 && pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read %s", relname)));

	if (kind == RELKIND_PARTITIONED_TABLE)
	{
		foreach(lc, find_all_inheritors(relid, AccessShareLock, NULL))
		{
			Oid			child = lfirst_oid(lc);

			if (RELKIND_HAS_STORAGE(get_rel_relkind(child)))
				rels = lappend_oid(rels, child);
		}
	}
	else
		rels = list_make1_oid(relid);
	relation_close(rel, NoLock);

	initStringInfo(&cs.buf);
	cs.rowcxt = AllocSetContextCreate(CurrentMemoryContext, "elt checksum row", ALLOCSET_DEFAULT_SIZES);
	checksum_scan(&cs, rels);
	MemoryContextDelete(cs.rowcxt);
	return psprintf(CHECKSUM_PREFIX ":" UINT64_FORMAT ":%016" INT64_MODIFIER "x%016" INT64_MODIFIER "x",
					cs.rows, cs.sum[1], cs.sum[0]);
}

PG_FUNCTION_INFO_V1(elt_table_checksum);

/* elt.table_checksum(rel regclass, columns text[] DEFAULT NULL) */
Datum
elt_table_checksum(PG_FUNCTION_ARGS)
{
	List	   *cols = NIL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(1))
	{
		ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *nulls;
		int			n,
					i;

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
	}
	PG_RETURN_TEXT_P(cstring_to_text(EltTableChecksum(PG_GETARG_OID(0), cols)));
}

PG_FUNCTION_INFO_V1(elt_checksum_selftest);

/*
 * elt._checksum_selftest(): the row hash against the SipHash-2-4-128
 * reference vectors (key 00..0f, messages 00..(n-1)) for n = 0 .. 4.
 */
Datum
elt_checksum_selftest(PG_FUNCTION_ARGS)
{
	static const uint8 expected[5][16] = {
		{0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93},
		{0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45},
		{0x81, 0x77, 0x22, 0x8d, 0xa4, 0xa4, 0x5d, 0xc7, 0xfc, 0xa3, 0x8b, 0xde, 0xf6, 0x0a, 0xff, 0xe4},
		{0x9c, 0x70, 0xb6, 0x0c, 0x52, 0x67, 0xa9, 0x4e, 0x5f, 0x33, 0xb6, 0xb0, 0x29, 0x85, 0xed, 0x51},
		{0xf8, 0x81, 0x64, 0xc1, 0x2d, 0x9c, 0x8f, 0xaf, 0x7d, 0x0f, 0x6e, 0x7c, 0x7b, 0xcd, 0x55, 0x79},
	};
	uint8		key[16];
	uint8		msg[8];
	int			n,
				i;

	for (i = 0; i < 16; i++)
		key[i] = (uint8) i;
	for (i = 0; i < 8; i++)
		msg[i] = (uint8) i;
	for (n = 0; n < 5; n++)
	{
		uint64		h[2];
		uint8		tag[16];

		siphash128(msg, n, key, h);
		for (i = 0; i < 8; i++)
		{
			tag[i] = (uint8) (h[0] >> (8 * i));
			tag[8 + i] = (uint8) (h[1] >> (8 * i));
		}
		if (memcmp(tag, expected[n], 16) != 0)
			PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
}
