/*
 * lineage_chunk.c — the encoding of a chunk of elt.lineage_chunks: how
 * keys and lists of keys are written and read back, and packed target keys.
 *
 * Encoding of a chunk (format 2): a format byte, a flags byte (1: entry
 * keys are text, 2: listed keys are text, 4: listed keys are packed target
 * keys, 8: entry keys are packed target keys), with 4 or 8 the layout of
 * packed keys (a byte for the number of columns, a byte per column for its
 * kind), then per entry: the key, the list's count, the list.  Format 1
 * (0.4.0 to 0.8.0) also has the list's byte length before its count; it
 * is still read, so a store kept across upgrades needs no rewrite.  Integers are zigzag varints; a list of integers is
 * sorted, stored as its first value and the gaps; a text is its length as
 * a varint and its bytes; a packed key is a text whose bytes are, per
 * column, a zigzag varint (integers, dates) or a text (canonical text of
 * any other type), and it is read back as the key's canonical text.  A
 * packed key is binary (a 0, a date 2000-01-01 or an empty text is a zero
 * byte): it is copied and compared by its length, never as a C string.
 *
 * The hash (FNV-1a over the key's canonical bytes for text, a 64-bit mix
 * for integers) depends on nothing but the key, so chunks mean the same
 * after pg_dump and restore on another machine.  The hashing, varint and
 * reader helpers are inline in lineage_chunk.h.
 *
 * Layering: called by lineage_capture.c (writing) and lineage_store.c
 * (reading); calls lineage_keys.c (canonical key text) and util.h's inline
 * EltWriteVarint.  Pure encoding: no SPI, no locks; a chunk that does not
 * decode is an error (ERRCODE_DATA_CORRUPTED), never a crash.
 */
#include "postgres.h"

#include "utils/date.h"
#include "utils/datetime.h"

#include "lineage_chunk.h"

/* ---------------------------------------------------------------------
 * Encoding
 * ---------------------------------------------------------------------
 */

/* A chunk that does not decode: an error, never a crash. */
void
EltChunkCorrupt(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("a chunk of elt.lineage_chunks is corrupt")));
}

/* Append a sorted, distinct list of integer keys. */
void
EltChunkPutIntList(StringInfo s, const int64 *keys, uint64 n)
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
bool
EltKeyPackWorth(const EltKeyPrinter *p)
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
void
EltKeyPack(EltKeyPrinter *p, const Datum *values, StringInfo out)
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
void
EltKeyUnpack(const Reader *layout, const unsigned char *p, const unsigned char *end, StringInfo out)
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
						EltChunkCorrupt();
					EltKeyPrintValue(ELT_KP_DATE, NULL, DateADTGetDatum((DateADT) d), out);
				}
				break;
			default:
				{
					int			len;
					const char *t = get_text(&r, &len);

					/* canonical text never holds a zero byte */
					if (memchr(t, 0, len) != NULL)
						EltChunkCorrupt();
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
		EltChunkCorrupt();
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
bool
EltKeyPackText(const Reader *layout, const char *text, StringInfo out)
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
	EltKeyUnpack(layout, (const unsigned char *) out->data,
			   (const unsigned char *) out->data + out->len, &check);
	ok = (strcmp(check.data, text) == 0);
	pfree(check.data);
	return ok;
}

/* ---------------------------------------------------------------------
 * Decoding
 * ---------------------------------------------------------------------
 */

/* Decode a list of count keys (ints or texts) from r. */
void
EltChunkDecodeList(Reader *r, bool text, uint64 count, int64 **ints, char ***texts)
{
	uint64		i;

	if (count > (uint64) (r->end - r->p))
		EltChunkCorrupt();				/* every key takes a byte at least */
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
				EltKeyUnpack(r, (const unsigned char *) s, (const unsigned char *) s + len, &buf);
				(*texts)[i] = pstrdup(buf.data);
			}
			else
			{
				if (memchr(s, '\0', len) != NULL)
					EltChunkCorrupt();
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

/*
 * Read the header of a chunk into r (its flags and the layout of packed
 * keys) and leave r at its first entry.
 */
void
EltChunkHeader(Reader *r, bytea *data, bool *key_text, bool *list_text)
{
	r->p = (const unsigned char *) VARDATA_ANY(data);
	r->end = r->p + VARSIZE_ANY_EXHDR(data);
	if (r->end - r->p < 2 || (r->p[0] != CHUNK_FORMAT && r->p[0] != 1))
		EltChunkCorrupt();
	r->list_len = (r->p[0] == 1);
	*key_text = (r->p[1] & FLAG_KEY_TEXT) != 0;
	*list_text = (r->p[1] & FLAG_LIST_TEXT) != 0;
	r->ncols = 0;
	r->kinds = NULL;
	r->key_packed = (r->p[1] & FLAG_KEY_PACKED) != 0;
	r->list_packed = (r->p[1] & FLAG_LIST_PACKED) != 0;
	if (r->p[1] & ~(FLAG_KEY_TEXT | FLAG_LIST_TEXT | FLAG_LIST_PACKED | FLAG_KEY_PACKED))
		EltChunkCorrupt();
	if (r->key_packed || r->list_packed)
	{
		int			i;

		if ((r->key_packed && !*key_text) || (r->list_packed && !*list_text) ||
			r->end - r->p < 3)
			EltChunkCorrupt();
		r->ncols = r->p[2];
		r->kinds = r->p + 3;
		if (r->ncols < 1 || r->ncols > MAX_PACKED_COLS || r->end - r->kinds < r->ncols)
			EltChunkCorrupt();
		for (i = 0; i < r->ncols; i++)
			if (r->kinds[i] < ELT_KP_INT2 || r->kinds[i] > ELT_KP_OUT)
				EltChunkCorrupt();
		r->p = r->kinds + r->ncols;
	}
	else
		r->p += 2;
}
