/*
 * lineage_keys.c — canonical key text: how a row's key is printed, so that
 * the key a run captures, the key kept in a chunk and the key a user gives
 * to elt.trace() compare equal.
 *
 * Owns: the key printer (EltKeyPrinterInit, EltKeyPrint, EltKeyPrintValue,
 * EltKeyQuoteField), the canonical text of any value (EltLineageKeyText,
 * elt._lineage_key_text()), and the reading of a row literal back into its
 * fields (EltSplitRowLiteral).
 *
 * Keys: an integer primary key is kept as bigint; any other is kept as
 * canonical text, the key's output with DateStyle ISO, IntervalStyle
 * postgres, TimeZone UTC, extra_float_digits 1 and bytea_output hex (a row
 * literal for a composite key), whatever the session's settings.  Integers,
 * dates and strings are printed directly; other types through their output
 * function with those settings pinned for the call and restored after it,
 * even on error.
 *
 * Layering: the lowest lineage layer.  Called by lineage_rows.c (keys
 * typed by a user), lineage_capture.c and lineage_chunk.c (keys of a run,
 * packed keys) and checksum.c (segment bounds); calls nothing of the
 * extension.  No SPI, no locks; allocates in the caller's memory context
 * (a printer in the context it is given).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "lineage_keys.h"

/* ---------------------------------------------------------------------
 * Canonical key text
 * ---------------------------------------------------------------------
 */

/* Call a type's output function with the canonical settings pinned. */
char *
EltKeyTextCall(FmgrInfo *out, Datum value)
{
	static pg_tz *utc = NULL;
	int			save_datestyle = DateStyle;
	int			save_dateorder = DateOrder;
	int			save_intervalstyle = IntervalStyle;
	int			save_float = extra_float_digits;
	int			save_bytea = bytea_output;
	pg_tz	   *save_tz = session_timezone;
	char	   *result;

	if (utc == NULL)
		utc = pg_tzset("UTC");
	DateStyle = USE_ISO_DATES;
	DateOrder = DATEORDER_YMD;
	IntervalStyle = INTSTYLE_POSTGRES;
	extra_float_digits = 1;
	bytea_output = BYTEA_OUTPUT_HEX;
	if (utc != NULL)
		session_timezone = utc;
	PG_TRY();
	{
		result = OutputFunctionCall(out, value);
	}
	PG_FINALLY();
	{
		DateStyle = save_datestyle;
		DateOrder = save_dateorder;
		IntervalStyle = save_intervalstyle;
		extra_float_digits = save_float;
		bytea_output = save_bytea;
		session_timezone = save_tz;
	}
	PG_END_TRY();
	return result;
}

/*
 * The printer of a key of ncols columns of the given types.  Integers,
 * dates and strings are printed directly (they do not depend on any
 * setting); other types through their output function, with the settings
 * pinned.  Lives in cxt.
 */
void
EltKeyPrinterInit(EltKeyPrinter *p, int ncols, const Oid *types, MemoryContext cxt)
{
	int			i;

	p->ncols = ncols;
	p->row = (ncols != 1);
	p->cols = MemoryContextAllocZero(cxt, sizeof(EltKeyCol) * Max(ncols, 1));
	for (i = 0; i < ncols; i++)
	{
		Oid			base = getBaseType(types[i]);
		EltKeyCol  *c = &p->cols[i];

		switch (base)
		{
			case INT2OID:
				c->kind = ELT_KP_INT2;
				break;
			case INT4OID:
				c->kind = ELT_KP_INT4;
				break;
			case INT8OID:
				c->kind = ELT_KP_INT8;
				break;
			case DATEOID:
				c->kind = ELT_KP_DATE;
				break;
			case TEXTOID:
			case VARCHAROID:
			case BPCHAROID:
				c->kind = ELT_KP_TEXT;
				break;
			default:
				{
					Oid			outfn;
					bool		varlena;

					c->kind = ELT_KP_OUT;
					getTypeOutputInfo(base, &outfn, &varlena);
					fmgr_info_cxt(outfn, &c->out, cxt);
				}
				break;
		}
	}
}

/* Append the canonical text of one column's value (out: the output function of ELT_KP_OUT). */
void
EltKeyPrintValue(EltKeyPrintKind kind, FmgrInfo *outfn, Datum v, StringInfo out)
{
	char		buf[MAXDATELEN + 1];

	switch (kind)
	{
		case ELT_KP_INT2:
			pg_itoa(DatumGetInt16(v), buf);
			break;
		case ELT_KP_INT4:
			pg_ltoa(DatumGetInt32(v), buf);
			break;
		case ELT_KP_INT8:
			pg_lltoa(DatumGetInt64(v), buf);
			break;
		case ELT_KP_DATE:
			{
				DateADT		d = DatumGetDateADT(v);

				if (DATE_NOT_FINITE(d))
					EncodeSpecialDate(d, buf);
				else
				{
					struct pg_tm tm;

					j2date(d + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
					EncodeDateOnly(&tm, USE_ISO_DATES, buf);
				}
			}
			break;
		case ELT_KP_TEXT:
			{
				text	   *t = DatumGetTextPP(v);

				appendBinaryStringInfo(out, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				if ((Pointer) t != DatumGetPointer(v))
					pfree(t);
			}
			return;
		case ELT_KP_OUT:
			{
				char	   *s = EltKeyTextCall(outfn, v);

				appendStringInfoString(out, s);
				pfree(s);
			}
			return;
	}
	appendStringInfoString(out, buf);
}

/*
 * Quote the field of a row literal that starts at start of out, as
 * record_out does: empty strings and fields with special characters.
 */
void
EltKeyQuoteField(StringInfo out, int start)
{
	bool		quote = (out->len == start);
	int			j;
	int			len;
	char	   *field;

	for (j = start; j < out->len && !quote; j++)
	{
		char		ch = out->data[j];

		quote = (ch == '"' || ch == '\\' || ch == '(' || ch == ')' || ch == ',' ||
				 isspace((unsigned char) ch));
	}
	if (!quote)
		return;
	len = out->len - start;
	field = palloc(len);
	memcpy(field, out->data + start, len);
	out->len = start;
	appendStringInfoChar(out, '"');
	for (j = 0; j < len; j++)
	{
		if (field[j] == '"' || field[j] == '\\')
			appendStringInfoChar(out, field[j]);
		appendStringInfoChar(out, field[j]);
	}
	appendStringInfoChar(out, '"');
	pfree(field);
}

/*
 * Append the canonical text of a key: the value for one column; for
 * several, a row literal exactly as record_out writes it.
 */
void
EltKeyPrint(EltKeyPrinter *p, const Datum *values, const bool *isnull, StringInfo out)
{
	int			i;

	if (!p->row)
	{
		EltKeyPrintValue(p->cols[0].kind, &p->cols[0].out, values[0], out);
		return;
	}
	appendStringInfoChar(out, '(');
	for (i = 0; i < p->ncols; i++)
	{
		int			start;

		if (i > 0)
			appendStringInfoChar(out, ',');
		if (isnull[i])
			continue;
		start = out->len;
		EltKeyPrintValue(p->cols[i].kind, &p->cols[i].out, values[i], out);
		EltKeyQuoteField(out, start);
	}
	appendStringInfoChar(out, ')');
	out->data[out->len] = '\0';
}

/* A key printer for a row type, and its descriptor's identity. */
typedef struct RowKeyPrinter
{
	Oid			typid;
	int32		typmod;
	TupleDesc	desc;
	EltKeyPrinter printer;
	Datum	   *values;
	bool	   *nulls;
} RowKeyPrinter;

/* Canonical text of value of type typid: a scalar, or a row (one column per field). */
static char *
key_text_of(Datum value, Oid typid, RowKeyPrinter *rp, MemoryContext cxt)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (type_is_rowtype(typid))
	{
		HeapTupleHeader th = DatumGetHeapTupleHeader(value);
		Oid			rtyp = HeapTupleHeaderGetTypeId(th);
		int32		rmod = HeapTupleHeaderGetTypMod(th);
		HeapTupleData tup;

		if (rp->desc == NULL || rp->typid != rtyp || rp->typmod != rmod)
		{
			TupleDesc	d = lookup_rowtype_tupdesc(rtyp, rmod);
			MemoryContext old = MemoryContextSwitchTo(cxt);
			Oid		   *types;
			int			i,
						n = 0;

			rp->desc = CreateTupleDescCopy(d);
			ReleaseTupleDesc(d);
			MemoryContextSwitchTo(old);
			types = palloc(sizeof(Oid) * Max(rp->desc->natts, 1));
			for (i = 0; i < rp->desc->natts; i++)
				if (!TupleDescAttr(rp->desc, i)->attisdropped)
					types[n++] = TupleDescAttr(rp->desc, i)->atttypid;
			EltKeyPrinterInit(&rp->printer, n, types, cxt);
			/* record_out writes a row literal even for one field */
			rp->printer.row = true;
			rp->values = MemoryContextAlloc(cxt, sizeof(Datum) * Max(rp->desc->natts, 1));
			rp->nulls = MemoryContextAlloc(cxt, sizeof(bool) * Max(rp->desc->natts, 1));
			rp->typid = rtyp;
			rp->typmod = rmod;
		}
		tup.t_len = HeapTupleHeaderGetDatumLength(th);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = InvalidOid;
		tup.t_data = th;
		heap_deform_tuple(&tup, rp->desc, rp->values, rp->nulls);
		if (rp->printer.ncols != rp->desc->natts)
		{
			int			i,
						n = 0;

			for (i = 0; i < rp->desc->natts; i++)
				if (!TupleDescAttr(rp->desc, i)->attisdropped)
				{
					rp->values[n] = rp->values[i];
					rp->nulls[n++] = rp->nulls[i];
				}
		}
		EltKeyPrint(&rp->printer, rp->values, rp->nulls, &buf);
	}
	else
	{
		bool		isnull = false;

		if (rp->printer.cols == NULL)
			EltKeyPrinterInit(&rp->printer, 1, &typid, cxt);
		EltKeyPrint(&rp->printer, &value, &isnull, &buf);
	}
	return buf.data;
}

/* Print value of type typid as canonical key text. */
char *
EltLineageKeyText(Datum value, Oid typid)
{
	RowKeyPrinter rp;

	memset(&rp, 0, sizeof(rp));
	return key_text_of(value, typid, &rp, CurrentMemoryContext);
}

PG_FUNCTION_INFO_V1(elt_lineage_key_text);

/*
 * elt._lineage_key_text(anyelement): canonical text of a key.  Called once
 * per source row of a run: the printer is made once per call site.
 */
Datum
elt_lineage_key_text(PG_FUNCTION_ARGS)
{
	RowKeyPrinter *rp = (RowKeyPrinter *) fcinfo->flinfo->fn_extra;
	text	   *result;
	char	   *s;

	if (rp == NULL)
	{
		rp = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(RowKeyPrinter));
		fcinfo->flinfo->fn_extra = rp;
	}
	s = key_text_of(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), rp,
					fcinfo->flinfo->fn_mcxt);
	result = cstring_to_text(s);
	pfree(s);
	PG_RETURN_TEXT_P(result);
}

/* Split a row literal "(a,b)" into its fields (NULL for an empty field). */
List *
EltSplitRowLiteral(const char *s, bool *ok)
{
	List	   *fields = NIL;
	const char *p = s;

	*ok = false;
	while (*p && isspace((unsigned char) *p))
		p++;
	if (*p++ != '(')
		return NIL;
	for (;;)
	{
		StringInfoData buf;
		bool		quoted = false;
		bool		any = false;

		initStringInfo(&buf);
		while (*p && (quoted || (*p != ',' && *p != ')')))
		{
			any = true;
			if (*p == '\\')
			{
				p++;
				if (*p == '\0')
					return NIL;
				appendStringInfoChar(&buf, *p++);
			}
			else if (*p == '"')
			{
				p++;
				if (quoted && *p == '"')
					appendStringInfoChar(&buf, *p++);
				else
					quoted = !quoted;
			}
			else
				appendStringInfoChar(&buf, *p++);
		}
		if (*p == '\0')
			return NIL;
		fields = lappend(fields, any ? buf.data : NULL);
		if (*p++ == ')')
			break;
	}
	while (*p && isspace((unsigned char) *p))
		p++;
	*ok = (*p == '\0');
	return fields;
}
