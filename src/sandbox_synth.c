/*
 * sandbox_synth.c — synthetic sandboxes: rows generated from the sources'
 * statistics (pg_stats) and constraints instead of copied, so that no
 * value of a source reaches the sandbox other than through pg_stats (and
 * masked as in copies).  No source is read, but for one row of a table
 * never analyzed, to tell whether it is empty.
 *
 * sample => '{"synthetic": true, "scale": s, "rows": {"schema.table": n},
 * "seed": k}'.  sandbox.c makes the copies as for any sandbox (LIKE,
 * sequences, owner, foreign keys added and validated after the rows) and
 * asks for each copy's rows instead of reading the source:
 * sandbox_synth_plan.c reads the arguments and plans (tables parents
 * first, how many rows each, statistics the reader can see); this file
 * generates: EltSynthRows fills one copy, EltSynthFinish points
 * self-references at earlier rows.
 *
 * A copy's rows are one set-based INSERT … SELECT over generate_series per
 * round: every value is drawn by a keyed hash of (seed, table, column, row
 * number) — hashint8extended, never random() — so the same seed and the
 * same statistics give the same rows.  Per column: NULL with null_frac, a
 * most common value with its frequency, else a histogram bucket chosen
 * uniformly (numbers, dates and timestamps uniform within it, other types
 * a bound).  Unique columns get distinct values (integers counted up from
 * the histogram's low end, text tagged with the row number, uuids from the
 * hash); foreign-key columns take the key of a random row of the parent's
 * copy (as it is there: masked by the parent's rules, not again); the
 * rows go through the masking select list of mask.c as copies do; CHECK
 * constraints are evaluated on the final values in the same statement and
 * rows that fail, or that conflict with a unique index, are dropped and
 * the copy topped up, for at most SYNTH_MAX_ROUNDS rounds.
 *
 * Layering: an engine's third file, called by sandbox.c only; calls
 * sandbox_synth_plan.c (the helpers of sandbox_synth_int.h), mask.c and
 * util.  Statistics are read and rows written as the reader
 * sandbox.c names (pg_stats' own filtering of column privileges and
 * row-level security applies), inside sandbox.c's SPI connection, with its
 * pinned search_path.  Locks: none of its own (the new copies are the
 * sandbox's; the sources are not locked).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/rls.h"

#include "mask.h"
#include "pg_compat.h"
#include "sandbox.h"
#include "sandbox_synth_int.h"
#include "util.h"

/* Rounds of topping a copy up after rows failed a CHECK or a unique index. */
#define SYNTH_MAX_ROUNDS 20

/* How a column's values are drawn. */
typedef enum SynthKind
{
	SK_INT,
	SK_FLOAT,
	SK_NUMERIC,
	SK_DATE,
	SK_TS,
	SK_TEXT,
	SK_UUID,
	SK_BOOL,
	SK_OTHER
} SynthKind;

/* A column to fill: how, and what pg_stats says of it. */
typedef struct SynthCol
{
	char	   *name;
	AttrNumber	attnum;
	Oid			basetype;
	int32		typmod;
	char	   *type;			/* the base type with its modifier, qualified */
	SynthKind	kind;
	bool		notnull;
	bool		unique;			/* a unique index of this column alone */
	int			fk;				/* an inline foreign key it belongs to, or -1 */
	int			fkpos;
	bool		deferred;		/* a self-reference: NULL now, filled after */
	/* from pg_stats */
	bool		has_stats;
	double		null_frac;
	int			nmcv;
	Datum		mcv;
	int			nhist;
	Datum		hist;			/* numeric: as float8[] (fixed width, O(1) to index) */
	Oid			histtype;
	int			hscale;			/* numeric: the most digits after the point of a bound;
								 * timestamps: 0 when every bound is a whole second */
	Datum		thresholds;		/* float8[]: null_frac, then cumulative MCV frequencies */
	int64		lo;				/* unique integers start here */
} SynthCol;

/* The parts of the statement that generates a table's rows. */
typedef struct SynthParts
{
	StringInfoData draws;		/* the random draws of each row (w) */
	StringInfoData gen;			/* the values, as the source's columns (m) */
	StringInfoData joins;		/* the parents' keys, numbered */
	StringInfoData raws;		/* the parents' keys beside the masked values (x) */
	StringInfoData outer;		/* the final values (y) */
	StringInfoData names;		/* the columns inserted */
	StringInfoData filter;		/* the CHECK constraints */
	StringInfoData generated;	/* generated columns computed again (z) */
	bool		conflict;		/* ON CONFLICT DO NOTHING */
} SynthParts;

/* The SQL and parameters of one statement being built. */
typedef struct SynthSql
{
	int			nparams;
	Oid			types[MaxTupleAttributeNumber * 3 + 1];	/* the token; per column at most 3 */
	Datum		values[MaxTupleAttributeNumber * 3 + 1];
} SynthSql;

/* ---------------------------------------------------------------------
 * Generation
 * ---------------------------------------------------------------------
 */

/*
 * Hash joins for the statements that follow, until AtEOXact_GUC(true, the
 * level returned): the planner cannot estimate a join on a drawn row
 * number, takes its keys for 200 values, and would sort a million rows
 * for a merge join (or loop) instead.
 */
static int
hash_joins(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_nestloop", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

/* ---------------------------------------------------------------------
 * One table's rows
 * ---------------------------------------------------------------------
 */

/* How values of a base type are drawn. */
static SynthKind
kind_of(Oid type)
{
	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return SK_INT;
		case FLOAT4OID:
		case FLOAT8OID:
			return SK_FLOAT;
		case NUMERICOID:
			return SK_NUMERIC;
		case DATEOID:
			return SK_DATE;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return SK_TS;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return SK_TEXT;
		case UUIDOID:
			return SK_UUID;
		case BOOLOID:
			return SK_BOOL;
		default:
			return SK_OTHER;
	}
}

/* A parameter of the statement being built: its number. */
static int
add_param(SynthSql *q, Oid type, Datum value)
{
	if (q->nparams >= (int) lengthof(q->types))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many columns for synthetic rows")));
	q->types[q->nparams] = type;
	q->values[q->nparams] = value;
	return ++q->nparams;
}

/* A uniform double in [0, 1) from row number expr and a seed, as SQL. */
static char *
uniform(const char *g, uint64 seed)
{
	return psprintf("((pg_catalog.hashint8extended(%s, %lld) & 9007199254740991)::pg_catalog.float8"
					" / 9007199254740992.0::pg_catalog.float8)", g, (long long) seed);
}

/* A stream of random numbers of one column: hash of the table's seed and its name. */
static uint64
col_seed(uint64 table_seed, const char *name, int stream)
{
	return hash_bytes_extended((const unsigned char *) name, strlen(name), table_seed) + (uint64) stream * 7919;
}

/* The columns of rel to fill, with what their statistics say; as the reader. */
static SynthCol *
read_columns(EltSynth *s, SynthTable *t, Relation rel, int *ncols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	SynthCol   *cols = palloc0(sizeof(SynthCol) * Max(desc->natts, 1));
	bool		partitioned = rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE;
	char	   *schema = get_namespace_name(RelationGetNamespace(rel));
	int			n = 0;
	int			i,
				k;
	MemoryContext mine = CurrentMemoryContext;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		SynthCol   *c;
		int32		typmod = att->atttypmod;
		Oid			arr;
		char	   *what;

		if (att->attisdropped || att->attgenerated != '\0')
			continue;
		c = &cols[n++];
		c->name = pstrdup(NameStr(att->attname));
		c->attnum = att->attnum;
		c->basetype = getBaseTypeAndTypmod(att->atttypid, &typmod);
		c->typmod = typmod;
		c->type = format_type_extended(c->basetype, typmod, FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
		c->kind = kind_of(c->basetype);
		c->notnull = att->attnotnull;
		c->fk = -1;
		c->lo = 1;
		c->unique = EltSynthColumnsUnique(t->relid, 1, &c->attnum);
		for (k = 0; k < s->nfkeys; k++)
		{
			SynthFk    *f = &s->fkeys[k];
			int			j;

			if (&s->tables[f->child] != t)
				continue;
			for (j = 0; j < f->nkeys; j++)
				if (f->ckeys[j] == c->attnum)
				{
					if (f->self)
						c->deferred = true;
					else if (c->fk < 0)
					{
						c->fk = k;
						c->fkpos = j;
					}
				}
		}
		if (c->name[0] == '#')
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("synthetic rows cannot fill %s: its column \"%s\" begins with \"#\"", t->src, c->name)));

		/*
		 * pg_stats as the reader sees it; its arrays read as arrays of the
		 * column's type (numeric bounds as float8), with what the draws need
		 * of them: the digits of numeric bounds, whether timestamps are
		 * whole seconds, where counted integers start
		 */
		arr = get_array_type(c->basetype);
		if (OidIsValid(arr))
		{
			const char *ty = format_type_extended(c->basetype, -1, FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
			char	   *mcv = psprintf("(s.most_common_vals::pg_catalog.text)::%s[]", ty);
			char	   *hist = psprintf("(s.histogram_bounds::pg_catalog.text)::%s[]", ty);

			what = psprintf("%s AS mcv, %s AS hist, %s AS hscale, %s AS lo", mcv,
							c->kind == SK_NUMERIC ? "(s.histogram_bounds::pg_catalog.text)::pg_catalog.float8[]" : hist,
							c->kind == SK_NUMERIC
							? psprintf("(SELECT pg_catalog.max(pg_catalog.scale(x)) FROM pg_catalog.unnest(%s) x)", hist)
							: c->kind == SK_TS
							? psprintf("CASE WHEN (SELECT pg_catalog.bool_and(pg_catalog.date_trunc('second', x) = x)"
									   " FROM pg_catalog.unnest(%s) x) THEN 0 ELSE 6 END", hist)
							: "0",
							c->kind == SK_INT
							? psprintf("LEAST((SELECT pg_catalog.min(x) FROM pg_catalog.unnest(%s) x), (%s)[1])::pg_catalog.int8",
									   mcv, hist)
							: "NULL::pg_catalog.int8");
		}
		else
			what = "NULL::pg_catalog.text AS mcv, NULL::pg_catalog.text AS hist, 0 AS hscale, NULL::pg_catalog.int8 AS lo";
		if (SPI_execute_with_args(psprintf("SELECT s.null_frac::pg_catalog.float8 AS null_frac,"
										   " s.most_common_freqs::pg_catalog.float8[] AS freqs, %s"
										   " FROM pg_catalog.pg_stats s WHERE s.schemaname = $1 AND s.tablename = $2"
										   " AND s.attname = $3 AND s.inherited = $4", what),
								  4, (Oid[]) {NAMEOID, NAMEOID, NAMEOID, BOOLOID},
								  (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(schema)),
									  DirectFunctionCall1(namein, CStringGetDatum(RelationGetRelationName(rel))),
									  DirectFunctionCall1(namein, CStringGetDatum(c->name)),
								  BoolGetDatum(partitioned)},
								  NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading the statistics of %s failed", t->src);
		MemoryContextSwitchTo(mine);
		if (SPI_processed == 1)
		{
			bool		isnull;
			Datum		d;
			double		sum = 0;
			float8	   *th;
			Datum	   *freqs = NULL;
			int			nfreqs = 0;

			c->has_stats = true;
			d = EltSpiGetDatum(0, "lo", &isnull);
			if (!isnull)
				c->lo = DatumGetInt64(d);
			d = EltSpiGetDatum(0, "null_frac", &isnull);
			c->null_frac = isnull ? 0 : DatumGetFloat8(d);
			if (c->notnull)
				c->null_frac = 0;
			d = EltSpiGetDatum(0, "freqs", &isnull);
			if (!isnull && OidIsValid(arr))
				deconstruct_array(DatumGetArrayTypePCopy(d), FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
								  &freqs, NULL, &nfreqs);
			d = EltSpiGetDatum(0, "mcv", &isnull);
			if (!isnull && OidIsValid(arr) && nfreqs > 0)
			{
				c->mcv = PointerGetDatum(DatumGetArrayTypePCopy(d));
				c->nmcv = ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(c->mcv)), ARR_DIMS(DatumGetArrayTypeP(c->mcv)));
				c->nmcv = Min(c->nmcv, nfreqs);
			}
			d = EltSpiGetDatum(0, "hist", &isnull);
			if (!isnull && OidIsValid(arr))
			{
				c->hist = PointerGetDatum(DatumGetArrayTypePCopy(d));
				c->histtype = c->kind == SK_NUMERIC ? FLOAT8ARRAYOID : arr;
				d = EltSpiGetDatum(0, "hscale", &isnull);
				c->hscale = isnull ? 0 : DatumGetInt32(d);
				c->nhist = ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(c->hist)), ARR_DIMS(DatumGetArrayTypeP(c->hist)));
				if (c->nhist < 2)
					c->nhist = 0;
			}
			/* thresholds: NULL below the first, MCV i below the (i+1)th, the histogram above */
			th = palloc(sizeof(float8) * (c->nmcv + 1));
			th[0] = c->null_frac;
			for (k = 0; k < c->nmcv; k++)
				sum += DatumGetFloat8(freqs[k]);
			for (k = 0; k < c->nmcv; k++)
			{
				double		f = DatumGetFloat8(freqs[k]);

				if (c->nhist == 0 && sum > 0)
					f = f / sum * (1 - c->null_frac);
				th[k + 1] = Max(th[k], th[k] + f);
			}
			if (c->nhist == 0 && c->nmcv > 0)
				th[c->nmcv] = 2.0;	/* no histogram: the MCVs are every non-null value */
			{
				Datum	   *e = palloc(sizeof(Datum) * (c->nmcv + 1));

				for (k = 0; k <= c->nmcv; k++)
					e[k] = Float8GetDatum(th[k]);
				c->thresholds = PointerGetDatum(construct_array(e, c->nmcv + 1, FLOAT8OID, 8, FLOAT8PASSBYVAL,
																TYPALIGN_DOUBLE));
			}
		}
	}
	*ncols = n;
	return cols;
}

/*
 * The SQL of one column's value drawn from row w (alias w: "#g" the row
 * number, "#bN" its bucket, "#iN" a histogram bucket, "#vN" a uniform
 * number), never NULL (the caller adds NULLs); NULL when the statistics
 * give no value.
 */
static char *
value_sql(SynthSql *q, SynthCol *c, int n)
{
	StringInfoData b;
	char	   *hist = NULL;
	char	   *h;

	if (c->nmcv == 0 && c->nhist == 0)
		return NULL;
	initStringInfo(&b);
	if (c->nhist > 0)
	{
		int			hp = add_param(q, c->histtype, c->hist);
		char	   *i = psprintf("w.\"#i%d\"", n);
		char	   *v = psprintf("w.\"#v%d\"", n);

		h = psprintf("$%d", hp);
		switch (c->kind)
		{
			case SK_INT:
				hist = psprintf("LEAST(%s[%s]::pg_catalog.float8 + pg_catalog.floor((%s[%s + 1]::pg_catalog.float8"
								" - %s[%s]::pg_catalog.float8 + 1) * %s), %s[%s + 1]::pg_catalog.float8)",
								h, i, h, i, h, i, v, h, i);
				break;
			case SK_FLOAT:
				hist = psprintf("(%s[%s] + (%s[%s + 1] - %s[%s]) * %s)", h, i, h, i, h, i, v);
				break;
			case SK_NUMERIC:
				/* in float8, rounded to the bounds' digits */
				hist = psprintf("pg_catalog.round((%s[%s] + (%s[%s + 1] - %s[%s]) * %s)::pg_catalog.numeric, %d)",
								h, i, h, i, h, i, v, c->hscale);
				break;
			case SK_DATE:
				hist = psprintf("CASE WHEN pg_catalog.isfinite(%s[%s]) AND pg_catalog.isfinite(%s[%s + 1])"
								" THEN %s[%s] + LEAST(pg_catalog.floor((%s[%s + 1] - %s[%s] + 1) * %s)::pg_catalog.int4,"
								" %s[%s + 1] - %s[%s]) ELSE %s[%s] END",
								h, i, h, i, h, i, h, i, h, i, v, h, i, h, i, h, i);
				break;
			case SK_TS:
				/* whole seconds when every bound is */
				hist = psprintf("CASE WHEN pg_catalog.isfinite(%s[%s]) AND pg_catalog.isfinite(%s[%s + 1])"
								" THEN %s%s[%s] + (%s[%s + 1] - %s[%s]) * %s%s ELSE %s[%s] END",
								h, i, h, i, c->hscale == 0 ? "pg_catalog.date_trunc('second', " : "",
								h, i, h, i, h, i, v, c->hscale == 0 ? ")" : "", h, i);
				break;
			default:
				/* a bound, the buckets' ends equally often */
				hist = psprintf("%s[%s + (%s >= 0.5)::pg_catalog.int4]", h, i, v);
				break;
		}
	}
	if (c->nmcv > 0)
	{
		int			mp = add_param(q, get_array_type(c->basetype), c->mcv);

		appendStringInfo(&b, "CASE WHEN w.\"#b%d\" <= %d THEN $%d[w.\"#b%d\"] ELSE %s END",
						 n, c->nmcv, mp, n, hist ? hist : "NULL");
	}
	else
		appendStringInfoString(&b, hist);
	return b.data;
}

/* A value of the type that a NOT NULL column without statistics gets (NULL: none). */
static const char *
default_value(SynthCol *c)
{
	switch (c->kind)
	{
		case SK_INT:
		case SK_FLOAT:
		case SK_NUMERIC:
			return "0";
		case SK_DATE:
		case SK_TS:
			return "2000-01-01";
		case SK_TEXT:
			return "";
		case SK_BOOL:
			return "false";
		default:
			return NULL;
	}
}

/*
 * The select list entry of column c (number n) in the generating query:
 * its value for row w, cast to its base type.
 */
static char *
column_sql(SynthSql *q, SynthCol *c, int n, uint64 tseed, const char *src)
{
	char	   *value;
	char	   *nonnull;
	uint64		cs = col_seed(tseed, c->name, 0);

	if (c->deferred)
		return psprintf("NULL::%s", c->type);
	if (c->unique && c->kind == SK_UUID)
		nonnull = psprintf("CAST(pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.hashint8extended(w.\"#g\", %lld)), 16, '0')"
						   " || pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.hashint8extended(w.\"#g\", %lld)), 16, '0')"
						   " AS pg_catalog.uuid)", (long long) (cs + 11), (long long) (cs + 13));
	else if (c->unique && c->kind == SK_INT)
		nonnull = psprintf("(%lld + w.\"#g\" - 1)", (long long) c->lo);
	else
	{
		value = value_sql(q, c, n);
		if (value == NULL)
		{
			const char *dv = default_value(c);

			if (c->unique && c->kind == SK_TEXT)
				dv = "";
			if (!c->notnull && !(c->unique && c->kind == SK_TEXT))
				return psprintf("NULL::%s", c->type);
			if (dv == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("column \"%s\" of %s is NOT NULL and its statistics give no value to draw", c->name, src),
						 errdetail("A column of a type without most common values or a histogram (json, for one) gets NULLs only."),
						 errhint("Run ANALYZE on it; or make the sandbox from a sample of real rows.")));
			value = psprintf("CAST($%d AS %s)", add_param(q, TEXTOID, CStringGetTextDatum(dv)), c->type);
		}
		if (c->unique && c->kind == SK_TEXT)
		{
			/* distinct: tagged with the row number, the tag kept within the column's length */
			char	   *tag = "('-' || pg_catalog.to_hex(w.\"#g\"))";
			int			maxlen = c->typmod > (int32) VARHDRSZ ? c->typmod - VARHDRSZ : 1 << 20;

			value = psprintf("pg_catalog.left(%s::pg_catalog.text, GREATEST(%d - pg_catalog.length%s, 0)) || %s",
							 value, maxlen, tag, tag);
		}
		nonnull = value;
	}
	if (c->null_frac > 0 && !c->notnull)
		return psprintf("CASE WHEN w.\"#b%d\" = 0 THEN NULL ELSE CAST(%s AS %s) END", n, nonnull, c->type);
	return psprintf("CAST(%s AS %s)", nonnull, c->type);
}

/* The parent keys of foreign key f, numbered from 0 in key order, as SQL; *count how many. */
static char *
parent_keys_sql(EltSynth *s, SynthFk *f, int64 *count)
{
	SynthTable *p = &s->tables[f->parent];
	StringInfoData sel,
				ord,
				nn;
	int			k;
	bool		isnull;

	initStringInfo(&sel);
	initStringInfo(&ord);
	initStringInfo(&nn);
	for (k = 0; k < f->nkeys; k++)
	{
		const char *col = quote_identifier(get_attname(p->relid, f->pkeys[k], false));

		appendStringInfo(&sel, ", p.%s AS v%d", col, k);
		appendStringInfo(&ord, "%sp.%s", k ? ", " : "", col);
		appendStringInfo(&nn, "%sp.%s IS NOT NULL", k ? " AND " : "", col);
	}
	if (SPI_execute(psprintf("SELECT pg_catalog.count(*) AS n FROM %s AS p WHERE %s", p->dst, nn.data),
					false, 1) != SPI_OK_SELECT)
		elog(ERROR, "counting the rows of %s failed", p->dst);
	*count = EltSpiGetInt64(0, "n", &isnull);
	return psprintf("(SELECT pg_catalog.row_number() OVER (ORDER BY %s) - 1 AS i%s FROM %s AS p WHERE %s)",
					ord.data, sel.data, p->dst, nn.data);
}

/* The greatest common divisor, for a stride that visits every parent once. */
static int64
gcd64(int64 a, int64 b)
{
	while (b != 0)
	{
		int64		t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * Whether rows that conflict with a unique index must be dropped (ON
 * CONFLICT DO NOTHING, whose speculative insertion costs): not when every
 * unique index is of one column whose generated values are distinct by
 * construction (counted integers, uuids from the hash) and stay so masked
 * (no rule, or hash: a permutation).  Never with a deferrable unique index
 * (ON CONFLICT refuses those; values are then inserted as generated).
 */
static bool
needs_conflict(Relation rel, SynthCol *cols, int ncols, bool masked)
{
	Jsonb	   *rules = masked ? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(EltMaskRulesJson(rel))))
		: NULL;
	uint64		r,
				n;
	SPITupleTable *tt;
	bool		needed = false;

	if (SPI_execute_with_args("SELECT i.indimmediate, i.indisunique AND i.indexprs IS NULL AND i.indpred IS NULL AS plain,"
							  " (i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1] AS keys"
							  " FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND (i.indisunique OR i.indisexclusion)",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(RelationGetRelid(rel))},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading indexes failed");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (r = 0; r < n; r++)
	{
		bool		isnull;
		bool		distinct = false;
		Datum	   *keys;
		int			nkeys,
					i,
					k;

		if (!DatumGetBool(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull)))
			return false;
		if (!DatumGetBool(SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull)))
		{
			needed = true;
			continue;
		}
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tt->vals[r], tt->tupdesc, 3, &isnull)),
						  INT2OID, 2, true, TYPALIGN_SHORT, &keys, NULL, &nkeys);
		/* one column distinct by construction makes the whole key so */
		for (k = 0; k < nkeys; k++)
			for (i = 0; i < ncols; i++)
				if (cols[i].attnum == DatumGetInt16(keys[k]) && cols[i].unique && cols[i].fk < 0 &&
					!cols[i].deferred && (cols[i].kind == SK_INT || cols[i].kind == SK_UUID))
				{
					JsonbValue *rule = rules ? getKeyJsonValueFromContainer(&rules->root, cols[i].name,
																			strlen(cols[i].name), NULL) : NULL;
					JsonbValue *kind = NULL;

					if (rule && rule->type == jbvBinary)
						kind = getKeyJsonValueFromContainer(rule->val.binary.data, "rule", 4, NULL);
					if (rule == NULL ||
						(kind && kind->type == jbvString && kind->val.string.len == 4 &&
						 strncmp(kind->val.string.val, "hash", 4) == 0))
						distinct = true;
				}
		if (!distinct)
			needed = true;
	}
	return needed;
}

/*
 * A unique index of several columns none of which is generated distinct
 * (a partitioned table's key with its partition column, say): its first
 * integer column that is no foreign key is counted up instead, so that
 * the key is unique by construction rather than by dropping the rows that
 * repeat one (which would skew the other columns).
 */
static void
count_composite_keys(Oid relid, SynthCol *cols, int ncols)
{
	uint64		r,
				n;
	SPITupleTable *tt;

	if (SPI_execute_with_args("SELECT (i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1] AS keys"
							  " FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND i.indisunique"
							  " AND i.indexprs IS NULL AND i.indpred IS NULL AND i.indnkeyatts > 1"
							  " ORDER BY i.indisprimary DESC, i.indexrelid",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(relid)}, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading indexes failed");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (r = 0; r < n; r++)
	{
		bool		isnull;
		Datum	   *keys;
		int			nkeys,
					i,
					k;
		SynthCol   *first = NULL;
		bool		done = false;

		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull)),
						  INT2OID, 2, true, TYPALIGN_SHORT, &keys, NULL, &nkeys);
		for (k = 0; k < nkeys; k++)
			for (i = 0; i < ncols; i++)
				if (cols[i].attnum == DatumGetInt16(keys[k]) && cols[i].fk < 0 && !cols[i].deferred)
				{
					if (cols[i].unique && (cols[i].kind == SK_INT || cols[i].kind == SK_UUID))
						done = true;
					else if (first == NULL && cols[i].kind == SK_INT)
						first = &cols[i];
				}
		if (!done && first)
			first->unique = true;
	}
}

/*
 * One round: rows next .. next + want - 1 generated, masked as a copy's
 * rows are, filtered by the CHECK constraints and inserted; how many went
 * in.
 */
static int64
run_round(SynthTable *t, Relation rel, bool masked, SynthSql *q, int64 next, int64 want, SynthParts *p)
{
	char	   *columns = NULL;
	char	   *list;
	volatile int64 got = 0;

	list = EltMaskBegin(rel, masked, true, &columns);
	PG_TRY();
	{
		/*
		 * w: the row numbers and their draws; m: the values, named as the
		 * source's columns, beside the parents' keys; x: masked as a copy
		 * is; y: the final values (foreign keys as the parents' copies hold
		 * them); z: with the generated columns, for the CHECK constraints
		 */
		char	   *x = psprintf("SELECT %s%s FROM (SELECT %s FROM (SELECT g AS \"#g\"%s"
								 " FROM pg_catalog.generate_series(%lld::pg_catalog.int8, %lld::pg_catalog.int8) AS g"
								 " OFFSET 0) AS w%s OFFSET 0) AS m OFFSET 0",
								 list, p->raws.data, p->gen.data, p->draws.data, (long long) next,
								 (long long) (next + want - 1), p->joins.data);
		char	   *y = psprintf("SELECT %s FROM (%s) AS x", p->outer.data, x);
		char	   *z = p->generated.len ? psprintf("SELECT y.*%s FROM (%s) AS y", p->generated.data, y) : y;
		char	   *sql = psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM (%s) AS z%s%s%s",
								   t->dst, p->names.data, p->names.data, z,
								   p->filter.len ? " WHERE " : "", p->filter.len ? p->filter.data : "",
								   p->conflict ? " ON CONFLICT DO NOTHING" : "");

		q->values[0] = Int64GetDatum(EltMaskToken());
		if (SPI_execute_with_args(sql, q->nparams, q->types, q->values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "generating the rows of %s failed", t->dst);
		got = (int64) SPI_processed;
	}
	PG_FINALLY();
	{
		EltMaskEnd();
	}
	PG_END_TRY();
	return got;
}

/*
 * Build the statement that generates t's rows (into *q and *p) and run it,
 * in rounds, until the copy has its rows or the rounds are spent; how many
 * rows it got.  As the reader.
 */
static int64
fill_copy(EltSynth *s, int ti, Relation rel, bool masked, SynthSql *q, SynthParts *p)
{
	SynthTable *t = &s->tables[ti];
	Oid			relid = t->relid;
	SynthCol   *cols;
	int			ncols;
	uint64		tseed = hash_bytes_extended((const unsigned char *) t->src, strlen(t->src), (uint64) s->seed);
	int64		done = 0;
	int64		next = 1;
	int			rounds = 0;
	bool		impossible = false;
	Bitmapset  *pkey;
	int			i,
				k;
	uint64		r;
	MemoryContext mine = CurrentMemoryContext;

	cols = read_columns(s, t, rel, &ncols);
	MemoryContextSwitchTo(mine);
	if (ncols == 0)
		return 0;				/* no column to fill: a table of no columns */

	count_composite_keys(relid, cols, ncols);
	MemoryContextSwitchTo(mine);
	/* counted integers: room for the rows and as many again (top-ups) below the type's end */
	for (i = 0; i < ncols; i++)
	{
		SynthCol   *c = &cols[i];
		int64		max = c->basetype == INT2OID ? PG_INT16_MAX : c->basetype == INT4OID ? PG_INT32_MAX : PG_INT64_MAX;

		if (c->unique && c->kind == SK_INT && c->lo > max - 2 * t->asked)
			c->lo = max - 2 * t->asked;
	}

	/* the draws of each row */
	initStringInfo(&p->draws);
	initStringInfo(&p->gen);
	initStringInfo(&p->joins);
	initStringInfo(&p->raws);
	initStringInfo(&p->outer);
	initStringInfo(&p->names);
	initStringInfo(&p->filter);
	initStringInfo(&p->generated);
	for (i = 0; i < ncols; i++)
	{
		SynthCol   *c = &cols[i];
		uint64		cs = col_seed(tseed, c->name, 0);

		if (c->fk >= 0 || c->deferred)
			continue;
		if (c->has_stats && (c->nmcv > 0 || c->null_frac > 0))
			appendStringInfo(&p->draws, ", pg_catalog.width_bucket(%s, $%d::pg_catalog.float8[]) AS \"#b%d\"",
							 uniform("g", cs), add_param(q, FLOAT8ARRAYOID, c->thresholds), i);
		else
			appendStringInfo(&p->draws, ", 99999 AS \"#b%d\"", i);
		if (c->nhist > 0)
			appendStringInfo(&p->draws, ", 1 + pg_catalog.floor(%s * %d)::pg_catalog.int4 AS \"#i%d\", %s AS \"#v%d\"",
							 uniform("g", cs + 1), c->nhist - 1, i, uniform("g", cs + 2), i);
	}
	/* foreign keys: a random row of the parent's copy (a 1:1 key: each parent once) */
	for (k = 0; k < s->nfkeys; k++)
	{
		SynthFk    *f = &s->fkeys[k];
		int64		np;
		double		nf = 0;
		char	   *keys;
		uint64		fs = col_seed(tseed, f->name, 3);

		if (f->child != ti || f->self)
			continue;
		keys = parent_keys_sql(s, f, &np);
		MemoryContextSwitchTo(mine);
		for (i = 0; i < ncols; i++)
			if (cols[i].fk == k && f->nullable)
				nf = Max(nf, cols[i].null_frac);
		if (np == 0 && !f->nullable)
			impossible = true;
		if (np == 0)
			nf = 1;
		if (f->one_to_one && np > 0)
		{
			int64		stride = 1 + (int64) (hash_bytes_extended((const unsigned char *) "stride", 6, fs) % (uint64) np);
			int64		off = (int64) (hash_bytes_extended((const unsigned char *) "offset", 6, fs) % (uint64) np);

			while (gcd64(stride, np) != 1)
				stride++;
			appendStringInfo(&p->draws, ", CASE WHEN %s < %.17g THEN NULL"
							 " ELSE ((g - 1) %% %lld * %lld + %lld) %% %lld END AS \"#p%d\"",
							 uniform("g", fs), nf, (long long) np, (long long) (stride % np), (long long) off,
							 (long long) np, k);
		}
		else
			appendStringInfo(&p->draws, ", CASE WHEN %s < %.17g THEN NULL"
							 " ELSE pg_catalog.floor(%s * %lld)::pg_catalog.int8 END AS \"#p%d\"",
							 uniform("g", fs), nf, uniform("g", fs + 1), (long long) Max(np, 1), k);
		appendStringInfo(&p->joins, " LEFT JOIN %s AS \"#k%d\" ON \"#k%d\".i = w.\"#p%d\"", keys, k, k, k);
	}
	t->orphan = impossible;
	if (impossible)
		ereport(NOTICE,
				(errmsg("%s gets no synthetic rows: a parent it references through NOT NULL columns has none", t->src)));
	/* the generating query (alias m), the raw foreign keys beside it, the final list */
	pkey = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	for (i = 0; i < ncols; i++)
	{
		SynthCol   *c = &cols[i];
		const char *qn = quote_identifier(c->name);

		if (c->fk >= 0)
		{
			/*
			 * the parent's key beside the values, as the final value; masked
			 * with the rest only if it keys the row (noise is keyed by the
			 * primary key), else not at all: the masked value is not used
			 */
			if (bms_is_member(c->attnum - FirstLowInvalidHeapAttributeNumber, pkey))
				appendStringInfo(&p->gen, "%s\"#k%d\".v%d AS %s, \"#k%d\".v%d AS \"#f%d\"", i ? ", " : "",
								 c->fk, c->fkpos, qn, c->fk, c->fkpos, i);
			else
				appendStringInfo(&p->gen, "%sNULL::%s AS %s, \"#k%d\".v%d AS \"#f%d\"", i ? ", " : "",
								 c->type, qn, c->fk, c->fkpos, i);
			appendStringInfo(&p->raws, ", m.\"#f%d\"", i);
			appendStringInfo(&p->outer, "%sx.\"#f%d\" AS %s", i ? ", " : "", i, qn);
		}
		else
		{
			appendStringInfo(&p->gen, "%s%s AS %s", i ? ", " : "", column_sql(q, c, i, tseed, t->src), qn);
			if (c->deferred)
				appendStringInfo(&p->outer, "%sNULL::%s AS %s", i ? ", " : "", c->type, qn);
			else
				appendStringInfo(&p->outer, "%sx.%s", i ? ", " : "", qn);
		}
		appendStringInfo(&p->names, "%s%s", i ? ", " : "", qn);
	}
	/* the CHECK constraints, on the final values (generated columns computed again) */
	if (SPI_execute_with_args("SELECT pg_catalog.format(', (%s) AS %I', pg_catalog.pg_get_expr(d.adbin, d.adrelid),"
							  "   a.attname) AS g"
							  " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_attrdef d"
							  "   ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
							  " WHERE a.attrelid = $1 AND a.attgenerated <> '' AND NOT a.attisdropped ORDER BY a.attnum",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(relid)}, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading generated columns failed");
	MemoryContextSwitchTo(mine);
	for (r = 0; r < SPI_processed; r++)
		appendStringInfoString(&p->generated, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));
	if (SPI_execute_with_args("SELECT pg_catalog.pg_get_expr(k.conbin, k.conrelid) FROM pg_catalog.pg_constraint k"
							  " WHERE k.conrelid = $1 AND k.contype = 'c' ORDER BY k.conname",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(relid)}, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading check constraints failed");
	MemoryContextSwitchTo(mine);
	for (r = 0; r < SPI_processed; r++)
		appendStringInfo(&p->filter, "%s(%s) IS NOT FALSE", p->filter.len ? " AND " : "",
						 SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));
	p->conflict = needs_conflict(rel, cols, ncols, masked);
	MemoryContextSwitchTo(mine);

	while (!impossible && done < t->asked && rounds++ < SYNTH_MAX_ROUNDS)
	{
		int64		want = t->asked - done;
		int64		got;

		CHECK_FOR_INTERRUPTS();
		got = run_round(t, rel, masked, q, next, want, p);
		MemoryContextSwitchTo(mine);
		done += got;
		next += want;
		if (got == 0)
			break;
	}
	return done;
}

/*
 * Fill the copy of relid (rel, the source) with generated rows, masked
 * unless masked is false, as reader; how many rows it got (*asked: how
 * many it should have).  Called by sandbox.c instead of its copy of the
 * rows, inside its SPI connection.
 */
int64
EltSynthRows(EltSynth *s, Oid relid, Relation rel, bool masked, Oid reader, int64 *asked)
{
	int			ti = EltSynthIndex(s, relid);
	SynthTable *t;
	Oid			save_user;
	int			save_sec;
	volatile int64 done = 0;
	SynthSql   *q = palloc0(sizeof(SynthSql));
	SynthParts *p = palloc0(sizeof(SynthParts));
	int			guc_level;

	if (ti < 0)
		elog(ERROR, "table %u is not planned for synthetic rows", relid);
	t = &s->tables[ti];
	if (t->asked == 0)
	{
		*asked = 0;
		return 0;
	}
	q->nparams = 1;				/* $1: the masking token */
	q->types[0] = INT8OID;
	guc_level = hash_joins();
	EltSynthAsReader(reader, &save_user, &save_sec);
	PG_TRY();
	{
		done = fill_copy(s, ti, rel, masked, q, p);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, guc_level);
	*asked = t->asked;
	if (done < t->asked && !t->orphan)
		ereport(NOTICE,
				(errmsg("%s got %lld synthetic rows of %lld", t->dst, (long long) done, (long long) t->asked),
				 errdetail("Generated rows that failed a CHECK constraint or a unique index were dropped, and %d rounds did not make up for them.",
						   SYNTH_MAX_ROUNDS)));
	return done;
}

/*
 * After every copy has its rows: point each self-reference at an earlier
 * row (in the order of the referenced key; the one just before when the
 * referencing columns are unique), NULL by the column's null fraction,
 * the first row NULL.  As reader.
 */
void
EltSynthFinish(EltSynth *s, Oid reader)
{
	int			k;
	Oid			save_user;
	int			save_sec;
	int			guc_level = hash_joins();

	EltSynthAsReader(reader, &save_user, &save_sec);
	PG_TRY();
	{
		for (k = 0; k < s->nfkeys; k++)
		{
			SynthFk    *f = &s->fkeys[k];
			SynthTable *t = &s->tables[f->child];
			StringInfoData set,
						ord,
						sel,
						nn;
			double		nf = 0;
			int			j;
			uint64		fs;

			if (!f->self || t->asked == 0)
				continue;
			fs = col_seed(hash_bytes_extended((const unsigned char *) t->src, strlen(t->src), (uint64) s->seed),
						  f->name, 3);
			initStringInfo(&set);
			initStringInfo(&ord);
			initStringInfo(&sel);
			initStringInfo(&nn);
			for (j = 0; j < f->nkeys; j++)
			{
				const char *cc = quote_identifier(get_attname(t->relid, f->ckeys[j], false));
				const char *pc = quote_identifier(get_attname(t->relid, f->pkeys[j], false));
				bool		isnull;
				Datum		d;

				appendStringInfo(&set, "%s%s = q.v%d", j ? ", " : "", cc, j);
				appendStringInfo(&ord, "%sp.%s", j ? ", " : "", pc);
				appendStringInfo(&sel, ", p.%s AS v%d", pc, j);
				appendStringInfo(&nn, "%sp.%s IS NOT NULL", j ? " AND " : "", pc);
				/* the referencing column's null fraction, as the reader sees it */
				if (SPI_execute_with_args("SELECT s.null_frac::pg_catalog.float8 AS nf FROM pg_catalog.pg_stats s"
										  " WHERE s.schemaname = $1 AND s.tablename = $2 AND s.attname = $3"
										  " AND s.inherited = $4",
										  4, (Oid[]) {NAMEOID, NAMEOID, NAMEOID, BOOLOID},
										  (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(get_namespace_name(get_rel_namespace(t->relid)))),
											  DirectFunctionCall1(namein, CStringGetDatum(get_rel_name(t->relid))),
											  DirectFunctionCall1(namein, CStringGetDatum(get_attname(t->relid, f->ckeys[j], false))),
										  BoolGetDatum(get_rel_relkind(t->relid) == RELKIND_PARTITIONED_TABLE)},
										  NULL, false, 1) != SPI_OK_SELECT)
					elog(ERROR, "reading statistics failed");
				if (SPI_processed == 1)
				{
					d = EltSpiGetDatum(0, "nf", &isnull);
					if (!isnull)
						nf = Max(nf, DatumGetFloat8(d));
				}
			}
			EltSpiExec(psprintf("UPDATE %s AS t SET %s"
								" FROM (SELECT p.ctid AS tid, pg_catalog.row_number() OVER (ORDER BY %s) - 1 AS i"
								"       FROM %s AS p WHERE %s) AS me"
								" JOIN (SELECT pg_catalog.row_number() OVER (ORDER BY %s) - 1 AS i%s"
								"       FROM %s AS p WHERE %s) AS q"
								"   ON q.i = %s"
								" WHERE t.ctid = me.tid AND me.i > 0 AND %s >= %.17g",
								t->dst, set.data, ord.data, t->dst, nn.data, ord.data, sel.data, t->dst, nn.data,
								/* a unique reference: the row just before (chains) */
								f->one_to_one ? "me.i - 1"
								: psprintf("pg_catalog.floor(%s * me.i)::pg_catalog.int8", uniform("me.i", fs + 1)),
								uniform("me.i", fs), nf));
		}
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, guc_level);
}
