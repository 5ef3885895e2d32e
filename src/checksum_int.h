/*
 * checksum_int.h — shared inside the checksum engine: a checksum being
 * computed and its steps (checksum.c), used by the range checksums
 * (checksum_ranges.c); checksums of Citus tables (checksum_citus.c),
 * called by both.
 */
#ifndef ELT_CHECKSUM_INT_H
#define ELT_CHECKSUM_INT_H

#include "postgres.h"

#include "fmgr.h"
#include "access/tupdesc.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "storage/itemptr.h"

/* the format of a checksum: "v1:<rows>:<32 hex digits of the sum>" */
#define CHECKSUM_PREFIX "v1"

/* How a column's values are encoded (checksum.c's row encoding). */
typedef enum ColKind
{
	CK_BOOL,
	CK_INT2,
	CK_INT4,					/* int4, oid, date */
	CK_INT8,					/* int8, time, timestamp(tz) */
	CK_FLOAT4,
	CK_FLOAT8,
	CK_STRING,					/* text, varchar, bpchar, json */
	CK_NAME,
	CK_NUMERIC,					/* as numeric_send writes it, without the call */
	CK_JSONB,					/* a token stream */
	CK_ARRAY,					/* dimensions, then each element */
	CK_RECORD,					/* each field */
	CK_SEND
} ColKind;

typedef struct ChecksumCol
{
	char	   *name;
	ColKind		kind;
	FmgrInfo	send;
	AttrNumber	attnum;			/* in the relation being read */
	/* CK_ARRAY: the element */
	struct ChecksumCol *elem;
	Oid			elemtype;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	/* CK_RECORD: the fields (dropped ones included, and skipped) */
	TupleDesc	fdesc;
	struct ChecksumCol *fields;
} ChecksumCol;

typedef struct Checksum
{
	int			ncols;
	ChecksumCol *cols;
	uint64		sum[2];			/* [0] low, [1] high word */
	uint64		rows;
	StringInfoData buf;
	StringInfoData scratch;		/* an aligned copy of a jsonb value */
	MemoryContext rowcxt;
	/* by ranges of a key column: segment 0 holds NULL keys, segment i >= 1 the keys in [bounds[i-2], bounds[i-1]) */
	char	   *keyname;		/* NULL: one sum for the table */
	AttrNumber	keyattnum;		/* in the relation being read */
	Oid			keytype;
	Oid			keycoll;
	FmgrInfo	cmp;
	int			nbounds;
	Datum	   *bounds;
	uint64	   *seg_sum;		/* 2 words per segment */
	uint64	   *seg_rows;
	/* some rows only (EltRowsChecksum): rows tids[i] of relation rels[i] */
	int64		nsel;
	const Oid  *sel_rels;
	const ItemPointerData *sel_tids;
} Checksum;

/* A checksum being computed (checksum.c): set up, scan, format. */
extern List *EltChecksumSetup(Checksum *cs, Oid relid, List *colnames);
extern void EltChecksumScan(Checksum *cs, List *rels);
extern char **EltChecksumColumnNames(Checksum *cs);
extern char *EltChecksumFormat(uint64 rows, const uint64 *sum);
extern List *EltChecksumColumnList(FunctionCallInfo fcinfo, int argno);

extern void EltChecksumCitus(Oid relid, char **cols, int ncols, uint64 *rows, uint64 *sum);
extern void EltChecksumRangesCitus(Oid relid, const char *key, char **cols, int ncols,
								   char **bounds, int nbounds,
								   uint64 *seg_rows, uint64 *seg_sum);

#endif							/* ELT_CHECKSUM_INT_H */
