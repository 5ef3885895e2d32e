/*
 * checksum_ranges.c — elt.table_checksum_ranges(): the checksum of each
 * range of a key column, cut at the key's quantiles or at bounds given, in
 * one scan of the table (checksum.c's scan, each row added to the sum of
 * its range); a Citus table's ranges are checksummed on its shards and
 * added (checksum_citus.c).  The sums of the ranges add up to the table's
 * checksum, so two copies can be compared range by range to find where
 * they differ.
 *
 * Layering: part of the checksum engine; calls checksum.c (setup, scan,
 * format), checksum_citus.c, lineage_keys.c (a bound printed as a key)
 * and util.  Reads the table under the statement's snapshot; the
 * quantiles are read by one more query (SPI, read-only).
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "checksum_int.h"
#include "citus.h"
#include "lineage_keys.h"
#include "util.h"

/* The distinct values of the key at the quantiles i / segments (0 < i < segments), sorted. */
static Datum *
quantile_bounds(Checksum *cs, Oid relid, int segments, int *nbounds)
{
	Datum	   *fr;
	Datum		arg;
	Oid			argtype = FLOAT8ARRAYOID;
	char	   *sql;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *bounds = NULL;
	int			n = 0,
				i;
	MemoryContext outer = CurrentMemoryContext;

	*nbounds = 0;
	if (segments < 2)
		return NULL;
	fr = palloc(sizeof(Datum) * (segments - 1));
	for (i = 1; i < segments; i++)
		fr[i - 1] = Float8GetDatum((double) i / segments);
	arg = PointerGetDatum(construct_array(fr, segments - 1, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	/* the rows the scan reads: a table's own (ONLY), a partitioned table's partitions' */
	sql = psprintf("SELECT pg_catalog.percentile_disc($1) WITHIN GROUP (ORDER BY %s) FROM %s%s",
				   quote_identifier(cs->keyname),
				   get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											  get_rel_name(relid)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the quantiles of %s", cs->keyname);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		a = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			ne;
			MemoryContext spi = MemoryContextSwitchTo(outer);

			ArrayType  *arr = DatumGetArrayTypeP(a);

			get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
			deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
							  &elems, &nulls, &ne);
			bounds = palloc(sizeof(Datum) * Max(ne, 1));
			for (i = 0; i < ne; i++)
				if (!nulls[i])
					bounds[n++] = datumCopy(elems[i], typbyval, typlen);
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	/* sorted already (quantiles ascend); drop repeats */
	if (n > 1)
	{
		int			j = 0;

		for (i = 1; i < n; i++)
			if (DatumGetInt32(FunctionCall2Coll(&cs->cmp, cs->keycoll, bounds[j], bounds[i])) != 0)
				bounds[++j] = bounds[i];
		n = j + 1;
	}
	*nbounds = n;
	return bounds;
}

/*
 * Bounds given as text: read with the input function of the key's type
 * (of its base type for a domain: a domain's CHECK is code of the domain's
 * owner, and a bound need not be a value of the domain), strictly
 * increasing.
 */
static Datum *
given_bounds(Checksum *cs, ArrayType *arr, int *nbounds)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	Oid			infn,
				ioparam;
	Datum	   *bounds;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	getTypeInputInfo(getBaseType(cs->keytype), &infn, &ioparam);
	bounds = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("bounds contains a NULL")));
		bounds[i] = OidInputFunctionCall(infn, TextDatumGetCString(elems[i]), ioparam, -1);
		if (i > 0 &&
			DatumGetInt32(FunctionCall2Coll(&cs->cmp, cs->keycoll, bounds[i - 1], bounds[i])) >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bounds must be strictly increasing: \"%s\" does not follow \"%s\"",
							TextDatumGetCString(elems[i]), TextDatumGetCString(elems[i - 1]))));
	}
	*nbounds = n;
	return bounds;
}

/*
 * elt.table_checksum_ranges(rel, key, segments int) and
 * elt.table_checksum_ranges(rel, key, bounds text[]): the rows and checksum
 * of each range of the key column, cut at the key's quantiles or at the
 * bounds given; one scan of the table.
 */
static Datum
checksum_ranges(FunctionCallInfo fcinfo, bool by_segments)
{
	ReturnSetInfo *rsinfo;
	Oid			relid;
	char	   *key;
	Checksum	cs;
	List	   *rels;
	AttrNumber	ka;
	int32		typmod;
	TypeCacheEntry *tc;
	int			seg;
	EltCitusTable citus;

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("elt.table_checksum_ranges() needs a relation, a key column and segments or bounds")));
	relid = PG_GETARG_OID(0);
	key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	memset(&cs, 0, sizeof(cs));
	rels = EltChecksumSetup(&cs, relid, EltChecksumColumnList(fcinfo, 3));
	ka = get_attnum(relid, key);
	if (ka == InvalidAttrNumber || ka < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of %s does not exist", key, EltRelDisplayName(relid)),
				 errhint("Give the column that identifies rows, usually the primary key.")));
	cs.keyname = key;
	get_atttypetypmodcoll(relid, ka, &cs.keytype, &typmod, &cs.keycoll);
	tc = lookup_type_cache(cs.keytype, TYPECACHE_CMP_PROC_FINFO);
	if (!OidIsValid(tc->cmp_proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("column \"%s\" of %s has type %s, which has no ordering",
						key, EltRelDisplayName(relid), format_type_be(cs.keytype)),
				 errhint("Give a key column whose type has a btree operator class.")));
	fmgr_info_copy(&cs.cmp, &tc->cmp_proc_finfo, CurrentMemoryContext);
	if (by_segments)
	{
		int			segments = PG_GETARG_INT32(2);

		if (segments < 1 || segments > 100000)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("segments must be between 1 and 100000, not %d", segments)));
		cs.bounds = quantile_bounds(&cs, relid, segments, &cs.nbounds);
	}
	else
		cs.bounds = given_bounds(&cs, PG_GETARG_ARRAYTYPE_P(2), &cs.nbounds);
	cs.seg_sum = palloc0(sizeof(uint64) * 2 * (cs.nbounds + 2));
	cs.seg_rows = palloc0(sizeof(uint64) * (cs.nbounds + 2));
	if (EltCitusTableInfo(relid, &citus))
	{
		char	  **bounds = palloc(sizeof(char *) * Max(cs.nbounds, 1));

		for (seg = 0; seg < cs.nbounds; seg++)
			bounds[seg] = EltLineageKeyText(cs.bounds[seg], cs.keytype);
		EltChecksumRangesCitus(relid, key, EltChecksumColumnNames(&cs), cs.ncols, bounds, cs.nbounds,
							   cs.seg_rows, cs.seg_sum);
	}
	else
		EltChecksumScan(&cs, rels);
	MemoryContextDelete(cs.rowcxt);

	for (seg = 0; seg <= cs.nbounds + 1; seg++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, true, true, false, false};

		values[0] = Int32GetDatum(seg);
		if (seg >= 2)
		{
			values[1] = CStringGetTextDatum(EltLineageKeyText(cs.bounds[seg - 2], cs.keytype));
			nulls[1] = false;
		}
		if (seg >= 1 && seg <= cs.nbounds)
		{
			values[2] = CStringGetTextDatum(EltLineageKeyText(cs.bounds[seg - 1], cs.keytype));
			nulls[2] = false;
		}
		values[3] = Int64GetDatum((int64) cs.seg_rows[seg]);
		values[4] = CStringGetTextDatum(EltChecksumFormat(cs.seg_rows[seg], &cs.seg_sum[2 * seg]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(elt_table_checksum_ranges_n);
PG_FUNCTION_INFO_V1(elt_table_checksum_ranges_b);

Datum
elt_table_checksum_ranges_n(PG_FUNCTION_ARGS)
{
	return checksum_ranges(fcinfo, true);
}

Datum
elt_table_checksum_ranges_b(PG_FUNCTION_ARGS)
{
	return checksum_ranges(fcinfo, false);
}
