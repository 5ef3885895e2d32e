/*
 * mask_rules.c — the masking rules: checking a rule against a column, and
 * applying it to a value with the extension's key.
 *
 * Every keyed rule uses SipHash-2-4 (a keyed pseudo-random function, 128-bit
 * key: the first half of the extension's 32-byte masking key; the second
 * half keys the integer permutation) over a tag naming what is computed and
 * the value's canonical text, so that:
 *   - hash and pseudonym depend on the value only: the same e-mail address
 *     masks to the same output in every table and column, and joins on a
 *     masked key still match;
 *   - hash of an integer is a keyed permutation of the type's range (a
 *     four-round Feistel network), so distinct keys stay distinct: primary
 *     and foreign keys still hold;
 *   - noise depends on the row's key (its primary key's text) and the
 *     column, so a row keeps its noise when masked again, and two rows
 *     with the same value get different noise.
 * Without the key nothing can be recomputed: elt.mask_key is readable by
 * the extension's owner only, and the function that applies rules takes a
 * per-statement token (mask.c).
 *
 * Layering: a leaf of the masking engine, called by mask.c; calls util
 * only.  No SPI except EltMaskCustomCheck (parse analysis of an expression,
 * inside the caller's SPI connection).  No locks.
 */
#include "postgres.h"

#include <ctype.h>
#include <float.h>
#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "optimizer/optimizer.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/plancache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "mask.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * SipHash-2-4
 * ---------------------------------------------------------------------
 */

#define ROTL(x, b) (uint64) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
	do { \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)

static inline uint64
load64(const uint8 *p)
{
	uint64		v = 0;
	int			i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64
siphash(const uint8 *key, const uint8 *in, size_t len)
{
	uint64		k0 = load64(key);
	uint64		k1 = load64(key + 8);
	uint64		v0 = UINT64CONST(0x736f6d6570736575) ^ k0;
	uint64		v1 = UINT64CONST(0x646f72616e646f6d) ^ k1;
	uint64		v2 = UINT64CONST(0x6c7967656e657261) ^ k0;
	uint64		v3 = UINT64CONST(0x7465646279746573) ^ k1;
	uint64		b = ((uint64) len) << 56;
	const uint8 *end = in + len - (len % 8);
	int			left = (int) (len & 7);
	uint64		m;

	for (; in != end; in += 8)
	{
		m = load64(in);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	while (left-- > 0)
		b |= ((uint64) in[left]) << (8 * left);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The keyed hash of (tag, counter, text): a stream of 64-bit words. */
static uint64
keyed(const uint8 *key, const char *tag, uint32 counter, const char *s, int len)
{
	char		stack[256];
	int			tlen = strlen(tag);
	int			n = tlen + 1 + 4 + len;
	char	   *buf = (n <= (int) sizeof(stack)) ? stack : palloc(n);
	char	   *p = buf;
	uint64		h;

	/* called for every masked value: no allocation for the usual short ones */
	memcpy(p, tag, tlen + 1);	/* the tag and its zero byte */
	p += tlen + 1;
	/* little-endian whatever the machine: the same key masks the same way everywhere */
	*p++ = (char) (counter & 0xff);
	*p++ = (char) ((counter >> 8) & 0xff);
	*p++ = (char) ((counter >> 16) & 0xff);
	*p++ = (char) ((counter >> 24) & 0xff);
	memcpy(p, s, len);
	h = siphash(key, (const uint8 *) buf, n);
	if (buf != stack)
		pfree(buf);
	return h;
}

/*
 * The key of a key domain: four SipHash words keyed by the first half of
 * the master key, over the word's number, the second half and the domain's
 * name.  Values masked in one domain can be compared; across domains they
 * cannot.
 */
void
EltMaskDeriveKey(const uint8 *master, const char *domain, uint8 *out)
{
	int			w;

	for (w = 0; w < ELT_MASK_KEY_BYTES / 8; w++)
	{
		StringInfoData buf;
		uint64		h;
		int			i;

		initStringInfo(&buf);
		appendStringInfo(&buf, "elt-mask-domain-%d", w);
		appendStringInfoChar(&buf, '\0');
		appendBinaryStringInfo(&buf, (const char *) master + 16, 16);
		appendStringInfoString(&buf, domain);
		h = siphash(master, (const uint8 *) buf.data, buf.len);
		for (i = 0; i < 8; i++)
			out[w * 8 + i] = (uint8) (h >> (8 * i));
		pfree(buf.data);
	}
}

/* A uniform double in [-1, 1) from a word. */
static double
unit_interval(uint64 h)
{
	return ((double) (h >> 11) / (double) (UINT64CONST(1) << 53)) * 2.0 - 1.0;
}

/*
 * A keyed permutation of the integers of `bits` bits (16, 32 or 64): a
 * four-round Feistel network over two halves, SipHash as round function.
 */
static uint64
permute(const uint8 *key, uint64 v, int bits)
{
	int			half = bits / 2;
	uint64		mask = (half == 32) ? UINT64CONST(0xffffffff) : ((UINT64CONST(1) << half) - 1);
	uint64		l = (v >> half) & mask;
	uint64		r = v & mask;
	int			round;

	for (round = 0; round < 4; round++)
	{
		uint8		in[9];
		uint64		f;
		uint64		t;
		int			i;

		for (i = 0; i < 8; i++)
			in[i] = (uint8) (r >> (8 * i));
		in[8] = (uint8) round;
		f = siphash(key + 16, in, 9) & mask;
		t = l ^ f;
		l = r;
		r = t;
	}
	return ((l << half) | r) & (bits == 64 ? ~UINT64CONST(0) : ((UINT64CONST(1) << bits) - 1));
}

/* ---------------------------------------------------------------------
 * Rules and types
 * ---------------------------------------------------------------------
 */

static const char *const kind_names[] = {
	"null", "constant", "hash", "pseudonym", "partial", "noise", "generalize", "custom", NULL
};

static const char *const pseudo_names[] = {
	"email", "name", "first_name", "last_name", "phone", "address", "iban", "text", NULL
};

EltMaskKind
EltMaskKindFromName(const char *name)
{
	int			i;

	for (i = 0; kind_names[i]; i++)
		if (strcmp(kind_names[i], name) == 0)
			return (EltMaskKind) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown masking rule \"%s\"", name),
			 errhint("The rules are null, constant, hash, pseudonym, partial, noise, generalize and custom.")));
	return ELT_MASK_NULL;		/* not reached */
}

const char *
EltMaskKindName(EltMaskKind kind)
{
	return kind_names[kind];
}

static EltMaskType
mask_type(Oid base)
{
	switch (base)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return ELT_MT_TEXT;
		case INT2OID:
			return ELT_MT_INT2;
		case INT4OID:
			return ELT_MT_INT4;
		case INT8OID:
			return ELT_MT_INT8;
		case NUMERICOID:
			return ELT_MT_NUMERIC;
		case FLOAT4OID:
			return ELT_MT_FLOAT4;
		case FLOAT8OID:
			return ELT_MT_FLOAT8;
		case DATEOID:
			return ELT_MT_DATE;
		case TIMESTAMPOID:
			return ELT_MT_TIMESTAMP;
		case TIMESTAMPTZOID:
			return ELT_MT_TIMESTAMPTZ;
		case UUIDOID:
			return ELT_MT_UUID;
		case BYTEAOID:
			return ELT_MT_BYTEA;
		default:
			return ELT_MT_OTHER;
	}
}

static bool
is_number(EltMaskType t)
{
	return t == ELT_MT_INT2 || t == ELT_MT_INT4 || t == ELT_MT_INT8 || t == ELT_MT_NUMERIC ||
		t == ELT_MT_FLOAT4 || t == ELT_MT_FLOAT8;
}

static bool
is_time(EltMaskType t)
{
	return t == ELT_MT_DATE || t == ELT_MT_TIMESTAMP || t == ELT_MT_TIMESTAMPTZ;
}

/* A rule that does not fit the column's type: say which types it takes. */
pg_noreturn static void
type_misfit(const EltMaskRule *r, const char *column, const char *takes)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("masking rule %s does not fit column %s of type %s",
					EltMaskKindName(r->kind), column, format_type_with_typemod(r->typid, r->typmod)),
			 errdetail("Rule %s applies to %s.", EltMaskKindName(r->kind), takes),
			 errhint("Choose another rule for this column (null, constant and custom fit every type).")));
}

/* ---------------------------------------------------------------------
 * Arguments
 * ---------------------------------------------------------------------
 */

/* Refuse arguments the rule does not take (a misspelt one would be ignored). */
static void
check_arg_names(const EltMaskRule *r, Jsonb *args, const char *const *allowed)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(args))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the arguments of a masking rule must be a JSON object")));
	it = JsonbIteratorInit(&args->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		int			i;
		bool		ok = false;
		StringInfoData names;

		if (tok != WJB_KEY)
			continue;
		for (i = 0; allowed[i]; i++)
			if ((int) strlen(allowed[i]) == v.val.string.len &&
				strncmp(allowed[i], v.val.string.val, v.val.string.len) == 0)
				ok = true;
		if (ok)
			continue;
		initStringInfo(&names);
		for (i = 0; allowed[i]; i++)
			appendStringInfo(&names, "%s%s", i ? ", " : "", allowed[i]);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("masking rule %s takes no argument \"%.*s\"", EltMaskKindName(r->kind),
						v.val.string.len, v.val.string.val),
				 names.len > 0 ? errhint("It takes: %s.", names.data)
				 : errhint("It takes no arguments.")));
	}
}

static JsonbValue *
arg(Jsonb *args, const char *key)
{
	return getKeyJsonValueFromContainer(&args->root, key, strlen(key), NULL);
}

/* A string argument (NULL if absent). */
static char *
arg_text(const EltMaskRule *r, Jsonb *args, const char *key)
{
	JsonbValue *v = arg(args, key);

	if (v == NULL)
		return NULL;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" of masking rule %s must be a string", key, EltMaskKindName(r->kind))));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* A number argument, as double (isnull if absent). */
static double
arg_number(const EltMaskRule *r, Jsonb *args, const char *key, bool *absent, char **text)
{
	JsonbValue *v = arg(args, key);

	*absent = (v == NULL);
	if (v == NULL)
		return 0;
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" of masking rule %s must be a number", key, EltMaskKindName(r->kind))));
	if (text)
		*text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

/* A non-negative whole-number argument, default def. */
static int
arg_count(const EltMaskRule *r, Jsonb *args, const char *key, int def, int max)
{
	bool		absent;
	double		d = arg_number(r, args, key, &absent, NULL);

	if (absent)
		return def;
	if (d < 0 || d > max || d != floor(d))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" of masking rule %s must be a whole number from 0 to %d",
						key, EltMaskKindName(r->kind), max)));
	return (int) d;
}

/* The key domain argument of a keyed rule, checked (NULL if absent). */
static char *
arg_domain(const EltMaskRule *r, Jsonb *args)
{
	char	   *d = arg_text(r, args, "domain");

	if (d != NULL && (d[0] == '\0' || strlen(d) > 63))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"domain\" of masking rule %s must be a name of 1 to 63 bytes",
						EltMaskKindName(r->kind))));
	return d;
}

/* ---------------------------------------------------------------------
 * Checking a rule against a column
 * ---------------------------------------------------------------------
 */

/*
 * Check the rule r->kind with its arguments against a column (named for
 * messages) of type typid/typmod, and fill in r.  Bad input is an error
 * naming what is wrong.
 */
void
EltMaskRuleCheck(EltMaskRule *r, const char *column, Oid typid, int32 typmod, bool notnull,
				 Jsonb *args)
{
	int32		basemod = typmod;

	r->typid = typid;
	r->typmod = typmod;
	r->basetype = getBaseTypeAndTypmod(typid, &basemod);
	r->mtype = mask_type(r->basetype);
	r->maxlen = (r->mtype == ELT_MT_TEXT && basemod >= (int32) VARHDRSZ) ? basemod - VARHDRSZ : -1;

	switch (r->kind)
	{
		case ELT_MASK_NULL:
			check_arg_names(r, args, (const char *const[]) {NULL});
			if (notnull)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("masking rule null does not fit column %s: it is NOT NULL", column),
						 errhint("Use constant, or hash for a key.")));
			break;
		case ELT_MASK_CONSTANT:
			{
				JsonbValue *v;
				char	   *text;
				Oid			input;
				Oid			ioparam;

				check_arg_names(r, args, (const char *const[]) {"value", NULL});
				v = arg(args, "value");
				if (v == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("masking rule constant needs argument \"value\""),
							 errhint("For example '{\"value\": \"redacted\"}'.")));
				r->constant_null = (v->type == jbvNull);
				if (r->constant_null)
				{
					if (notnull)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("masking rule constant with a null value does not fit column %s: it is NOT NULL",
										column)));
					break;
				}
				if (v->type == jbvString)
					text = pnstrdup(v->val.string.val, v->val.string.len);
				else if (v->type == jbvNumeric)
					text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
				else if (v->type == jbvBool)
					text = pstrdup(v->val.boolean ? "true" : "false");
				else
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("argument \"value\" of masking rule constant must be a string, a number, a boolean or null")));
				/*
				 * A value of the column's base type, read by the base type's
				 * input function: a domain's CHECK is code of the domain's
				 * owner, and must not run with the rights of whoever sets
				 * or applies the rule (the copy's own constraints hold it).
				 */
				getTypeInputInfo(r->basetype, &input, &ioparam);
				r->constant = OidInputFunctionCall(input, text, ioparam, basemod);
				break;
			}
		case ELT_MASK_HASH:
			check_arg_names(r, args, (const char *const[]) {"length", "domain", NULL});
			r->domain = arg_domain(r, args);
			if (r->mtype == ELT_MT_TEXT)
			{
				r->hash_len = arg_count(r, args, "length", 16, 32);
				if (r->hash_len < 8)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("argument \"length\" of masking rule hash must be from 8 to 32"),
							 errdetail("Fewer than 8 hex digits would make distinct values collide.")));
				if (r->maxlen >= 0 && r->maxlen < r->hash_len)
				{
					if (arg(args, "length") != NULL || r->maxlen < 8)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("masking rule hash makes %d characters, column %s holds %d",
										arg(args, "length") ? r->hash_len : Max(r->maxlen, 8), column, r->maxlen),
								 errhint("Give a \"length\" the column holds (8 at least), or choose pseudonym or partial.")));
					r->hash_len = r->maxlen;
				}
			}
			else if (r->mtype == ELT_MT_INT2 || r->mtype == ELT_MT_INT4 || r->mtype == ELT_MT_INT8 ||
					 r->mtype == ELT_MT_UUID || r->mtype == ELT_MT_BYTEA)
			{
				if (arg(args, "length") != NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("argument \"length\" of masking rule hash applies to text columns only")));
			}
			else
				type_misfit(r, column, "text, integers, uuid and bytea");
			break;
		case ELT_MASK_PSEUDONYM:
			{
				char	   *kind;
				int			i;

				check_arg_names(r, args, (const char *const[]) {"kind", "domain", NULL});
				r->domain = arg_domain(r, args);
				if (r->mtype != ELT_MT_TEXT)
					type_misfit(r, column, "text columns (text, varchar, char)");
				kind = arg_text(r, args, "kind");
				if (kind == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("masking rule pseudonym needs argument \"kind\""),
							 errhint("The kinds are email, name, first_name, last_name, phone, address, iban and text.")));
				for (i = 0; pseudo_names[i]; i++)
					if (strcmp(pseudo_names[i], kind) == 0)
						break;
				if (pseudo_names[i] == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("unknown pseudonym kind \"%s\"", kind),
							 errhint("The kinds are email, name, first_name, last_name, phone, address, iban and text.")));
				r->pseudo = (EltPseudoKind) i;
				break;
			}
		case ELT_MASK_PARTIAL:
			{
				char	   *fill;

				check_arg_names(r, args, (const char *const[]) {"prefix", "suffix", "fill", NULL});
				if (r->mtype != ELT_MT_TEXT)
					type_misfit(r, column, "text columns (text, varchar, char)");
				r->prefix = arg_count(r, args, "prefix", 0, 1000);
				r->suffix = arg_count(r, args, "suffix", 0, 1000);
				fill = arg_text(r, args, "fill");
				if (fill != NULL && (strlen(fill) != 1 || !isprint((unsigned char) fill[0])))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("argument \"fill\" of masking rule partial must be one printable ASCII character")));
				r->fill = fill ? fill[0] : '*';
				if (r->prefix + r->suffix == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("masking rule partial needs \"prefix\" or \"suffix\" (characters kept)"),
							 errhint("To keep nothing, use constant or hash.")));
				break;
			}
		case ELT_MASK_NOISE:
			{
				bool		no_ratio,
							no_amount,
							no_days;

				check_arg_names(r, args, (const char *const[]) {"ratio", "amount", "days", "domain", NULL});
				r->domain = arg_domain(r, args);
				r->ratio = arg_number(r, args, "ratio", &no_ratio, NULL);
				r->amount = arg_number(r, args, "amount", &no_amount, NULL);
				if (is_number(r->mtype))
				{
					if (arg(args, "days"))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("argument \"days\" of masking rule noise applies to dates and timestamps")));
					if (no_ratio == no_amount)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("masking rule noise on a number needs one of \"ratio\" (a fraction of the value, above 0, at most 1) or \"amount\" (at most this much either way)")));
					if (!no_ratio && !(r->ratio > 0 && r->ratio <= 1))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("argument \"ratio\" of masking rule noise must be above 0 and at most 1")));
					if (!no_amount && !(r->amount > 0 && isfinite(r->amount)))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("argument \"amount\" of masking rule noise must be above 0")));
				}
				else if (is_time(r->mtype))
				{
					if (!no_ratio || !no_amount)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("masking rule noise on a date or timestamp takes \"days\" only")));
					r->amount = arg_number(r, args, "days", &no_days, NULL);
					if (no_days || !(r->amount > 0 && r->amount <= 36500))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("masking rule noise on a date or timestamp needs \"days\", above 0 and at most 36500")));
				}
				else
					type_misfit(r, column, "numbers (integers, numeric, float), dates and timestamps");
				break;
			}
		case ELT_MASK_GENERALIZE:
			check_arg_names(r, args, (const char *const[]) {"to", "step", NULL});
			if (is_time(r->mtype))
			{
				static const char *const units[] = {"year", "quarter", "month", "week", "day", "hour", NULL};
				char	   *to = arg_text(r, args, "to");
				int			i;

				if (arg(args, "step"))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("argument \"step\" of masking rule generalize applies to numbers")));
				for (i = 0; to && units[i]; i++)
					if (strcmp(units[i], to) == 0)
						break;
				if (to == NULL || units[i] == NULL ||
					(r->mtype == ELT_MT_DATE && strcmp(to, "hour") == 0))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("masking rule generalize on column %s needs \"to\": year, quarter, month, week or day%s",
									column, r->mtype == ELT_MT_DATE ? "" : " or hour")));
				r->unit = units[i];
			}
			else if (is_number(r->mtype))
			{
				bool		absent;
				double		step;

				if (arg(args, "to"))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("argument \"to\" of masking rule generalize applies to dates and timestamps")));
				step = arg_number(r, args, "step", &absent, &r->step);
				if (absent || !(step > 0) || !isfinite(step))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("masking rule generalize on a number needs \"step\", above 0"),
							 errhint("Values become the start of their range: with step 10, 37 becomes 30.")));
				if ((r->mtype == ELT_MT_INT2 || r->mtype == ELT_MT_INT4 || r->mtype == ELT_MT_INT8) &&
					step != floor(step))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("argument \"step\" of masking rule generalize must be a whole number for column %s",
									column)));
			}
			else
				type_misfit(r, column, "numbers, dates and timestamps");
			break;
		case ELT_MASK_CUSTOM:
			check_arg_names(r, args, (const char *const[]) {"expression", NULL});
			r->expression = arg_text(r, args, "expression");
			if (r->expression == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("masking rule custom needs argument \"expression\""),
						 errhint("An expression over the column, called value: '{\"expression\": \"left(value, 1) || ''***''\"}'.")));
			EltMaskCustomCheck(column, r->expression, typid, typmod);
			break;
	}
}

/* ---------------------------------------------------------------------
 * Custom expressions
 * ---------------------------------------------------------------------
 */

/* A function a custom expression may call: built in and IMMUTABLE. */
static bool
custom_function_bad(Oid func, void *context)
{
	Oid		   *bad = context;

	if (get_func_namespace(func) != PG_CATALOG_NAMESPACE || func_volatile(func) != PROVOLATILE_IMMUTABLE)
	{
		*bad = func;
		return true;
	}
	return false;
}

typedef struct CustomWalk
{
	Oid			bad_func;
	const char *bad_what;
} CustomWalk;

static bool
custom_walker(Node *node, CustomWalk *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
	{
		w->bad_what = "a subquery";
		return true;
	}
	if (IsA(node, Aggref) || IsA(node, WindowFunc) || IsA(node, GroupingFunc))
	{
		w->bad_what = "an aggregate or window function";
		return true;
	}
	if (IsA(node, Param))
	{
		w->bad_what = "a parameter";
		return true;
	}
	if (IsA(node, CoerceToDomain))
	{
		w->bad_what = "a domain (its constraints are its owner's code)";
		return true;
	}
	if (check_functions_in_node(node, custom_function_bad, &w->bad_func))
		return true;
	return expression_tree_walker(node, custom_walker, (void *) w);
}

static char *
qualified_type(Oid typid, int32 typmod)
{
	return format_type_extended(typid, typmod, FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
}

/*
 * The scalar subquery that applies a custom expression to column_sql (SQL
 * giving the column's value): the expression sees the value as "value".
 */
char *
EltMaskCustomSql(const char *expression, const char *column_sql, Oid typid, int32 typmod)
{
	return psprintf("(SELECT CAST((%s) AS %s) FROM (SELECT %s AS value) AS elt_mask_value)",
					expression, qualified_type(typid, typmod), column_sql);
}

/*
 * A custom expression is one SQL expression over "value" (the column), that
 * calls only built-in IMMUTABLE functions and operators: it runs with the
 * rights of whoever masks, so it must not be able to do anything but
 * compute.  Its result must convert to the column's type.  Called inside
 * SPI, with search_path pg_catalog.
 */
/* Every type named in a custom expression: built in, not a domain. */
static bool
custom_raw_types(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, TypeName))
	{
		TypeName   *tn = (TypeName *) node;
		Type		t = LookupTypeName(NULL, tn, NULL, true);
		bool		ok = false;

		if (t != NULL)
		{
			Form_pg_type typ = (Form_pg_type) GETSTRUCT(t);

			ok = typ->typnamespace == PG_CATALOG_NAMESPACE && typ->typtype != TYPTYPE_DOMAIN;
			ReleaseSysCache(t);
		}
		if (!ok)
		{
			*(const char **) context = TypeNameToString(tn);
			return true;
		}
		return false;
	}
	return raw_expression_tree_walker(node, custom_raw_types, context);
}

void
EltMaskCustomCheck(const char *column, const char *expression, Oid typid, int32 typmod)
{
	MemoryContext outer = CurrentMemoryContext;
	const char *bad_type = NULL;
	int			guc_level;
	List	   *raw;
	RawStmt    *rs;
	SelectStmt *sel;
	SPIPlanPtr	plan;
	List	   *sources;
	CachedPlanSource *src;
	Query	   *q;
	CustomWalk	w = {InvalidOid, NULL};
	char	   *sql;

	/* one expression, nothing else: no FROM, no second statement, no comment trick */
	raw = raw_parser(psprintf("SELECT (%s)", expression), RAW_PARSE_DEFAULT);
	rs = (list_length(raw) == 1) ? linitial_node(RawStmt, raw) : NULL;
	sel = (rs && IsA(rs->stmt, SelectStmt)) ? (SelectStmt *) rs->stmt : NULL;
	if (sel == NULL || list_length(sel->targetList) != 1 || sel->fromClause != NIL ||
		sel->whereClause != NULL || sel->withClause != NULL || sel->op != SETOP_NONE ||
		sel->groupClause != NIL || sel->havingClause != NULL || sel->sortClause != NIL ||
		sel->limitCount != NULL || sel->limitOffset != NULL || sel->lockingClause != NIL ||
		sel->distinctClause != NIL || sel->intoClause != NULL || sel->windowClause != NIL ||
		sel->valuesLists != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the expression of a custom masking rule must be one SQL expression over the column, called value"),
				 errhint("For example: left(value, 1) || '***'.")));

	/*
	 * Types first, on the raw tree: parse analysis reads a literal of a type
	 * with its input function, and a domain's with its CHECK constraints:
	 * code that is not built in would run before anything else is judged.
	 */
	{
		Oid			base = getBaseType(typid);

		HeapTuple	tt = SearchSysCache1(TYPEOID, ObjectIdGetDatum(base));
		bool		builtin = HeapTupleIsValid(tt) &&
			((Form_pg_type) GETSTRUCT(tt))->typnamespace == PG_CATALOG_NAMESPACE;

		if (HeapTupleIsValid(tt))
			ReleaseSysCache(tt);
		if (typid != base || !builtin)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("a custom masking rule cannot apply to column %s of type %s", column,
							format_type_be(typid)),
					 errdetail("A custom rule runs as whoever reads the column; a domain's constraints or a type that is not built in would run their owner's code with those rights."),
					 errhint("Use another rule, or a custom rule on a column of a built-in type.")));
	}
	if (raw_expression_tree_walker((Node *) sel->targetList, custom_raw_types, (void *) &bad_type))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the expression of the custom masking rule for column %s names type %s, which is not a built-in type",
						column, bad_type ? bad_type : "?"),
				 errdetail("A custom rule may use only built-in types, functions and operators: it runs as whoever reads the column.")));

	sql = psprintf("SELECT %s", EltMaskCustomSql(expression, psprintf("CAST(NULL AS %s)",
																	  qualified_type(typid, typmod)),
												 typid, typmod));
	/* analysed in a connection of its own, names resolved in pg_catalog only */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "preparing a custom masking expression failed: %s", SPI_result_code_string(SPI_result));
	sources = SPI_plan_get_plan_sources(plan);
	src = linitial(sources);
	q = linitial_node(Query, src->query_list);
	{
		/* the outer SELECT and its scalar subquery are ours: walk what that selects */
		TargetEntry *te = linitial_node(TargetEntry, q->targetList);
		SubLink    *sl = (SubLink *) te->expr;
		Query	   *inner;

		if (!IsA(sl, SubLink))
			elog(ERROR, "unexpected shape of a custom masking expression");
		inner = castNode(Query, sl->subselect);
		(void) expression_tree_walker((Node *) inner->targetList, custom_walker, &w);
	}
	SPI_freeplan(plan);
	AtEOXact_GUC(true, guc_level);
	SPI_finish();
	/* SPI leaves a context of its own current: what the caller allocates next must outlive it */
	MemoryContextSwitchTo(outer);
	if (OidIsValid(w.bad_func))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the expression of the custom masking rule for column %s calls %s, which is not a built-in IMMUTABLE function",
						column, format_procedure(w.bad_func)),
				 errdetail("A custom rule runs with the rights of whoever masks the column: it may call only built-in functions and operators that are IMMUTABLE.")));
	if (w.bad_what)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the expression of the custom masking rule for column %s contains %s", column, w.bad_what),
				 errdetail("It may compute only from the column's value, with built-in IMMUTABLE functions and operators.")));
}

/* ---------------------------------------------------------------------
 * Pseudonyms
 * ---------------------------------------------------------------------
 */

static const char *const first_names[] = {
	"Ada", "Alan", "Alice", "Amara", "Anna", "Arjun", "Ben", "Bruno", "Carla", "Chen", "Clara",
	"Daniel", "Diego", "Elena", "Emil", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines",
	"Ivan", "Jonas", "Julia", "Kai", "Karin", "Lars", "Layla", "Leo", "Lina", "Lucas", "Maya",
	"Mateo", "Mia", "Nadia", "Noah", "Nora", "Omar", "Oscar", "Paula", "Priya", "Rafael", "Rosa",
	"Sami", "Sara", "Sofia", "Tariq", "Theo", "Tomas", "Una", "Victor", "Vera", "Wei", "Yara",
	"Yusuf", "Zoe", "Marta", "Pavel", "Ingrid", "Kofi", "Aiko", "Liam", "Elif", NULL
};

static const char *const last_names[] = {
	"Adler", "Alvarez", "Bauer", "Berg", "Brandt", "Castro", "Costa", "Dahl", "Dubois", "Eriksen",
	"Fischer", "Fontaine", "Garcia", "Hahn", "Hansen", "Ito", "Jensen", "Kaya", "Keller", "Kim",
	"Kowalski", "Lang", "Larsen", "Lopez", "Marsh", "Meyer", "Moreau", "Nakamura", "Nielsen",
	"Novak", "Okafor", "Olsen", "Park", "Petrov", "Quinn", "Reyes", "Rossi", "Sato", "Schmidt",
	"Silva", "Singh", "Sousa", "Stone", "Tanaka", "Torres", "Varga", "Vogel", "Walsh", "Weber",
	"Wong", "Yilmaz", "Young", "Zhang", "Ziegler", "Moretti", "Haddad", "Mensah", "Lindqvist",
	"Ferreira", "Horvat", "Dimitrov", "Ncube", "Oliveira", "Bergstrom", NULL
};

static const char *const streets[] = {
	"Oak", "Maple", "Cedar", "Elm", "Willow", "Birch", "Pine", "Chestnut", "Linden", "Ash",
	"Harbor", "Meadow", "River", "Hill", "Garden", "Station", "Market", "Church", "Mill", "Park",
	"Lake", "Forest", "Bridge", "Castle", "Orchard", "Spring", "Valley", "Sunset", "Highland",
	"Quarry", "Beacon", "Clover", NULL
};

static const char *const street_types[] = {
	"Street", "Road", "Avenue", "Lane", "Way", "Drive", "Court", "Place", NULL
};

static int
list_len(const char *const *list)
{
	int			n = 0;

	while (list[n])
		n++;
	return n;
}

static const char *
pick(const char *const *list, uint64 h)
{
	return list[h % (uint64) list_len(list)];
}

/* Upper-case a name if the original was all upper case, lower if all lower. */
static void
follow_case(char *out, const char *orig, int len)
{
	bool		upper = false,
				lower = false;
	int			i;

	for (i = 0; i < len; i++)
	{
		if (isupper((unsigned char) orig[i]))
			upper = true;
		else if (islower((unsigned char) orig[i]))
			lower = true;
	}
	for (i = 0; out[i]; i++)
	{
		if (upper && !lower)
			out[i] = pg_toupper((unsigned char) out[i]);
		else if (lower && !upper)
			out[i] = pg_tolower((unsigned char) out[i]);
	}
}

/*
 * Each letter by a keyed letter of the same case, each digit by a keyed
 * digit; everything else kept: the format and length of the original.
 * Characters from keep on are kept as they are.
 */
static char *
scramble(const uint8 *key, const char *tag, const char *s, int len, int keep_from)
{
	StringInfoData out;
	uint64		h = 0;
	int			i = 0;
	int			k = 0;

	initStringInfo(&out);
	while (i < len)
	{
		unsigned char c = (unsigned char) s[i];
		int			clen = (c < 0x80) ? 1 : Min(pg_mblen(s + i), len - i);
		int			byte;

		if (k % 8 == 0)
			h = keyed(key, tag, (uint32) (k / 8), s, len);
		byte = (int) ((h >> ((k % 8) * 8)) & 0xff);
		if (i >= keep_from)
			appendBinaryStringInfo(&out, s + i, clen);
		else if (c >= '0' && c <= '9')
			appendStringInfoChar(&out, '0' + byte % 10);
		else if (c >= 'a' && c <= 'z')
			appendStringInfoChar(&out, 'a' + byte % 26);
		else if (c >= 'A' && c <= 'Z')
			appendStringInfoChar(&out, 'A' + byte % 26);
		else if (clen > 1)
			appendStringInfoChar(&out, 'a' + byte % 26);	/* any other letter of any script */
		else
			appendStringInfoChar(&out, (char) c);	/* punctuation, spaces */
		i += clen;
		k++;
	}
	return out.data;
}

/* An IBAN-like text: country kept, rest scrambled, check digits recomputed (ISO 7064 mod 97). */
static char *
pseudo_iban(const uint8 *key, const char *s, int len)
{
	char	   *out = scramble(key, "iban", s, len, len);
	int			pos[64];
	int			n = 0;
	int			i;
	int			rem = 0;

	/* the positions of the alphanumerics: country, check digits, account */
	for (i = 0; i < len && n < 64; i++)
		if (isalnum((unsigned char) out[i]))
			pos[n++] = i;
	if (n < 5)
		return out;
	/* the country (two letters) as given */
	out[pos[0]] = s[pos[0]];
	out[pos[1]] = s[pos[1]];
	if (!isalpha((unsigned char) out[pos[0]]) || !isalpha((unsigned char) out[pos[1]]))
		return out;
	/* mod 97 of account + country + "00", letters as 10..35 */
	for (i = 4; i < n + 2; i++)
	{
		char		c = (i < n) ? out[pos[i]] : out[pos[i - n]];
		int			v = isdigit((unsigned char) c) ? c - '0' : pg_toupper((unsigned char) c) - 'A' + 10;

		rem = (v >= 10) ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
	}
	rem = (rem * 100) % 97;		/* the "00" check digits */
	rem = 98 - rem;
	out[pos[2]] = '0' + rem / 10;
	out[pos[3]] = '0' + rem % 10;
	return out;
}

static char *
pseudonym(const EltMaskRule *r, const uint8 *key, const char *s, int len)
{
	uint64		h = keyed(key, pseudo_names[r->pseudo], 0, s, len);
	uint64		h2 = keyed(key, pseudo_names[r->pseudo], 1, s, len);
	char	   *out;

	switch (r->pseudo)
	{
		case ELT_PSEUDO_EMAIL:
			{
				static const char *const domains[] = {"example.com", "example.org", "example.net", NULL};
				int			i;

				/*
				 * first.last and a number of up to 13 digits (40 bits of
				 * the keyed hash) at a reserved domain (RFC 2606: never a
				 * real mailbox): about 10^16 addresses, so that a unique
				 * column of a million addresses keeps them apart (two meet
				 * with a chance of about 4 in 100,000; at ten million, 4 in
				 * 1,000: hash such a column instead)
				 */
				out = psprintf("%s.%s" UINT64_FORMAT "@%s", pick(first_names, h), pick(last_names, h >> 20),
							   (h2 >> 2) & UINT64CONST(0xffffffffff), pick(domains, h2 >> 42));
				for (i = 0; out[i]; i++)
					out[i] = pg_tolower((unsigned char) out[i]);
				break;
			}
		case ELT_PSEUDO_NAME:
			out = psprintf("%s %s", pick(first_names, h), pick(last_names, h >> 20));
			follow_case(out, s, len);
			break;
		case ELT_PSEUDO_FIRST_NAME:
			out = pstrdup(pick(first_names, h));
			follow_case(out, s, len);
			break;
		case ELT_PSEUDO_LAST_NAME:
			out = pstrdup(pick(last_names, h));
			follow_case(out, s, len);
			break;
		case ELT_PSEUDO_PHONE:
			{
				/* a leading + and the two digits after it (the country) are kept */
				int			keep = 0;

				if (len > 3 && s[0] == '+' && isdigit((unsigned char) s[1]) && isdigit((unsigned char) s[2]))
					keep = 3;
				out = scramble(key, "phone", s + keep, len - keep, len - keep);
				out = psprintf("%.*s%s", keep, s, out);
				break;
			}
		case ELT_PSEUDO_ADDRESS:
			out = psprintf("%d %s %s", (int) (1 + (h % 999)), pick(streets, h >> 16),
						   pick(street_types, h >> 40));
			follow_case(out, s, len);
			break;
		case ELT_PSEUDO_IBAN:
			out = pseudo_iban(key, s, len);
			break;
		case ELT_PSEUDO_TEXT:
		default:
			out = scramble(key, "text", s, len, len);
			break;
	}
	return out;
}

/* ---------------------------------------------------------------------
 * Applying a rule
 * ---------------------------------------------------------------------
 */

/* The first n characters of s (the database encoding's), as bytes. */
static int
char_bytes(const char *s, int len, int n)
{
	int			bytes = 0;
	int			i;

	for (i = 0; i < n && bytes < len; i++)
		bytes += pg_mblen(s + bytes);
	return Min(bytes, len);
}

static text *
partial(const EltMaskRule *r, const char *s, int len)
{
	int			nchars = pg_mbstrlen_with_len(s, len);
	int			keep_pre = Min(r->prefix, nchars);
	int			keep_suf = Min(r->suffix, nchars - keep_pre);
	StringInfoData buf;
	int			pre_bytes;
	int			suf_start;
	int			i;

	/* a value no longer than what is kept would be shown whole: mask all of it */
	if (keep_pre + keep_suf >= nchars)
	{
		keep_pre = 0;
		keep_suf = 0;
	}
	pre_bytes = char_bytes(s, len, keep_pre);
	suf_start = char_bytes(s, len, nchars - keep_suf);
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, s, pre_bytes);
	for (i = keep_pre; i < nchars - keep_suf; i++)
		appendStringInfoChar(&buf, r->fill);
	appendBinaryStringInfo(&buf, s + suf_start, len - suf_start);
	return cstring_to_text_with_len(buf.data, buf.len);
}

/* The value as a text of at most maxlen characters (a varchar's limit). */
static Datum
fit_text(const EltMaskRule *r, char *s)
{
	int			len = strlen(s);

	if (r->maxlen >= 0)
		len = char_bytes(s, len, r->maxlen);
	return PointerGetDatum(cstring_to_text_with_len(s, len));
}

static double
noise_unit(const EltMaskRule *r, const uint8 *key, const char *rowkey, const char *valtext)
{
	const char *k = rowkey ? rowkey : valtext;
	StringInfoData buf;
	uint64		h;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s", r->salt ? r->salt : "");
	appendStringInfoChar(&buf, '\0');
	appendStringInfoString(&buf, k);
	h = keyed(key, rowkey ? "noise-row" : "noise-value", 0, buf.data, buf.len);
	pfree(buf.data);
	return unit_interval(h);
}

/*
 * A double as numeric, to six decimals: built from an integer where it
 * fits (float8_numeric prints the double first, which costs more than the
 * rest of a row's masking).
 */
static Datum
numeric_of_double(double d)
{
	if (fabs(d) < 9e12)
		return NumericGetDatum(int64_div_fast_to_numeric((int64) rint(d * 1e6), 6));
	return DirectFunctionCall1(float8_numeric, Float8GetDatum(d));
}

/*
 * The characters of a text value; a char(n)'s padding is not part of it
 * (char(5) 'abc' equals text 'abc' in a join: it must mask the same).
 */
static const char *
text_chars(const EltMaskRule *r, Datum value, int *len)
{
	text	   *t = DatumGetTextPP(value);
	const char *s = VARDATA_ANY(t);
	int			n = VARSIZE_ANY_EXHDR(t);

	if (r->basetype == BPCHAROID)
		while (n > 0 && s[n - 1] == ' ')
			n--;
	*len = n;
	return s;
}

/*
 * The rule applied to one value (never NULL: a NULL stays NULL, mask.c sees
 * to it).  rowkey is the row's primary key as text (NULL: the table has
 * none; noise is then keyed by the value).  The result is of the column's
 * base type; *isnull for the rules that give NULL.
 */
Datum
EltMaskApply(const EltMaskRule *r, const uint8 *key, Datum value, const char *rowkey, bool *isnull)
{
	*isnull = false;
	switch (r->kind)
	{
		case ELT_MASK_NULL:
			*isnull = true;
			return (Datum) 0;
		case ELT_MASK_CONSTANT:
			*isnull = r->constant_null;
			return r->constant;
		case ELT_MASK_CUSTOM:
			elog(ERROR, "custom masking rules are applied in SQL");
			break;
		case ELT_MASK_HASH:
			switch (r->mtype)
			{
				case ELT_MT_TEXT:
					{
						int			len;
						const char *t = text_chars(r, value, &len);
						uint64		h1 = keyed(key, "hash", 0, t, len);
						uint64		h2 = keyed(key, "hash", 1, t, len);
						char	   *hex = psprintf("%016" PRIx64 "%016" PRIx64, h1, h2);

						hex[r->hash_len] = '\0';
						return fit_text(r, hex);
					}
				case ELT_MT_INT2:
					return Int16GetDatum((int16) (uint16) permute(key, (uint16) DatumGetInt16(value), 16));
				case ELT_MT_INT4:
					return Int32GetDatum((int32) (uint32) permute(key, (uint32) DatumGetInt32(value), 32));
				case ELT_MT_INT8:
					return Int64GetDatum((int64) permute(key, (uint64) DatumGetInt64(value), 64));
				case ELT_MT_UUID:
					{
						pg_uuid_t  *u = DatumGetUUIDP(value);
						pg_uuid_t  *o = palloc(sizeof(pg_uuid_t));
						uint64		h1 = keyed(key, "uuid", 0, (const char *) u->data, UUID_LEN);
						uint64		h2 = keyed(key, "uuid", 1, (const char *) u->data, UUID_LEN);
						int			i;

						for (i = 0; i < 8; i++)
						{
							o->data[i] = (unsigned char) (h1 >> (8 * i));
							o->data[8 + i] = (unsigned char) (h2 >> (8 * i));
						}
						/* a version 4, variant 1 uuid */
						o->data[6] = (o->data[6] & 0x0f) | 0x40;
						o->data[8] = (o->data[8] & 0x3f) | 0x80;
						return UUIDPGetDatum(o);
					}
				case ELT_MT_BYTEA:
					{
						bytea	   *b = DatumGetByteaPP(value);
						bytea	   *o = palloc(VARHDRSZ + 16);
						uint64		h1 = keyed(key, "bytea", 0, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
						uint64		h2 = keyed(key, "bytea", 1, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));

						int			i;

						SET_VARSIZE(o, VARHDRSZ + 16);
						for (i = 0; i < 8; i++)
						{
							((uint8 *) VARDATA(o))[i] = (uint8) (h1 >> (8 * i));
							((uint8 *) VARDATA(o))[8 + i] = (uint8) (h2 >> (8 * i));
						}
						return PointerGetDatum(o);
					}
				default:
					break;
			}
			break;
		case ELT_MASK_PSEUDONYM:
			{
				int			len;
				const char *t = text_chars(r, value, &len);

				return fit_text(r, pseudonym(r, key, t, len));
			}
		case ELT_MASK_PARTIAL:
			{
				int			len;
				const char *t = text_chars(r, value, &len);

				return PointerGetDatum(partial(r, t, len));
			}
		case ELT_MASK_NOISE:
			{
				char	   *vtext = NULL;
				double		u;

				/* the value's text keys the noise only where there is no row key */
				if (rowkey == NULL)
				{
					Oid			out;
					bool		varlena;

					getTypeOutputInfo(r->basetype, &out, &varlena);
					vtext = OidOutputFunctionCall(out, value);
				}
				u = noise_unit(r, key, rowkey, vtext);
				switch (r->mtype)
				{
					case ELT_MT_INT2:
					case ELT_MT_INT4:
					case ELT_MT_INT8:
						{
							int64		v = r->mtype == ELT_MT_INT2 ? DatumGetInt16(value)
								: r->mtype == ELT_MT_INT4 ? DatumGetInt32(value) : DatumGetInt64(value);
							double		d = r->ratio > 0 ? (double) v * (1.0 + u * r->ratio)
								: (double) v + u * r->amount;
							double		lo = r->mtype == ELT_MT_INT2 ? PG_INT16_MIN
								: r->mtype == ELT_MT_INT4 ? PG_INT32_MIN : -9.2e18;
							double		hi = r->mtype == ELT_MT_INT2 ? PG_INT16_MAX
								: r->mtype == ELT_MT_INT4 ? PG_INT32_MAX : 9.2e18;

							d = rint(Min(Max(d, lo), hi));
							return r->mtype == ELT_MT_INT2 ? Int16GetDatum((int16) d)
								: r->mtype == ELT_MT_INT4 ? Int32GetDatum((int32) d) : Int64GetDatum((int64) d);
						}
					case ELT_MT_FLOAT4:
					case ELT_MT_FLOAT8:
						{
							double		v = r->mtype == ELT_MT_FLOAT4 ? DatumGetFloat4(value) : DatumGetFloat8(value);
							double		d = r->ratio > 0 ? v * (1.0 + u * r->ratio) : v + u * r->amount;

							if (!isfinite(v))
								d = v;
							else
							{
								/* within the type's range */
								double		big = r->mtype == ELT_MT_FLOAT4 ? FLT_MAX : DBL_MAX;

								d = isfinite(d) ? Min(Max(d, -big), big) : (d > 0 ? big : -big);
							}
							return r->mtype == ELT_MT_FLOAT4 ? Float4GetDatum((float4) d) : Float8GetDatum(d);
						}
					case ELT_MT_NUMERIC:
						{
							/* exact: value * (1 + u * ratio) or value + u * amount, at the value's scale */
							Datum		delta;
							Datum		res;
							int32		scale;

							if (numeric_is_nan(DatumGetNumeric(value)) || numeric_is_inf(DatumGetNumeric(value)))
								return value;
							if (r->ratio > 0)
								delta = DirectFunctionCall2(numeric_mul, value, numeric_of_double(u * r->ratio));
							else
								delta = numeric_of_double(u * r->amount);
							res = DirectFunctionCall2(numeric_add, value, delta);
							scale = DatumGetInt32(DirectFunctionCall1(numeric_scale, value));
							return DirectFunctionCall2(numeric_round, res, Int32GetDatum(Max(scale, 0)));
						}
					case ELT_MT_DATE:
						{
							DateADT		d = DatumGetDateADT(value);

							if (DATE_NOT_FINITE(d))
								return value;
							d += (DateADT) rint(u * r->amount);
							/* near the ends of the range the value is kept */
							return IS_VALID_DATE(d) ? DateADTGetDatum(d) : value;
						}
					case ELT_MT_TIMESTAMP:
					case ELT_MT_TIMESTAMPTZ:
						{
							Timestamp	t = DatumGetTimestamp(value);

							if (TIMESTAMP_NOT_FINITE(t))
								return value;
							/* whole seconds; near the ends of the range the value is kept */
							t += (int64) rint(u * r->amount * 86400.0) * USECS_PER_SEC;
							return IS_VALID_TIMESTAMP(t) ? TimestampGetDatum(t) : value;
						}
					default:
						break;
				}
				break;
			}
		case ELT_MASK_GENERALIZE:
			switch (r->mtype)
			{
				case ELT_MT_DATE:
					{
						DateADT		d = DatumGetDateADT(value);
						Datum		ts;

						if (DATE_NOT_FINITE(d))
							return value;
						ts = DirectFunctionCall1(date_timestamp, value);
						ts = DirectFunctionCall2(timestamp_trunc, CStringGetTextDatum(r->unit), ts);
						return DirectFunctionCall1(timestamp_date, ts);
					}
				case ELT_MT_TIMESTAMP:
					if (TIMESTAMP_NOT_FINITE(DatumGetTimestamp(value)))
						return value;
					return DirectFunctionCall2(timestamp_trunc, CStringGetTextDatum(r->unit), value);
				case ELT_MT_TIMESTAMPTZ:
					if (TIMESTAMP_NOT_FINITE(DatumGetTimestamp(value)))
						return value;
					/* in UTC, whatever the session's time zone */
					return DirectFunctionCall3(timestamptz_trunc_zone, CStringGetTextDatum(r->unit), value,
											   CStringGetTextDatum("UTC"));
				case ELT_MT_INT2:
				case ELT_MT_INT4:
				case ELT_MT_INT8:
					{
						double		dstep = strtod(r->step, NULL);
						int64		lo = r->mtype == ELT_MT_INT2 ? PG_INT16_MIN
							: r->mtype == ELT_MT_INT4 ? PG_INT32_MIN : PG_INT64_MIN;
						int64		step = dstep >= 9.2e18 ? PG_INT64_MAX : (int64) dstep;
						int64		v = r->mtype == ELT_MT_INT2 ? DatumGetInt16(value)
							: r->mtype == ELT_MT_INT4 ? DatumGetInt32(value) : DatumGetInt64(value);
						int64		q = v / step;
						int64		res;

						if (v % step != 0 && v < 0)
							q--;
						/* the start of the range, or the type's least value when that is below it */
						if (pg_mul_s64_overflow(q, step, &res) || res < lo)
							res = lo;
						return r->mtype == ELT_MT_INT2 ? Int16GetDatum((int16) res)
							: r->mtype == ELT_MT_INT4 ? Int32GetDatum((int32) res) : Int64GetDatum(res);
					}
				case ELT_MT_FLOAT4:
				case ELT_MT_FLOAT8:
					{
						double		step = strtod(r->step, NULL);
						double		v = r->mtype == ELT_MT_FLOAT4 ? DatumGetFloat4(value) : DatumGetFloat8(value);

						if (isfinite(v))
							v = floor(v / step) * step;
						return r->mtype == ELT_MT_FLOAT4 ? Float4GetDatum((float4) v) : Float8GetDatum(v);
					}
				case ELT_MT_NUMERIC:
					{
						Datum		step = DirectFunctionCall3(numeric_in, CStringGetDatum(r->step),
															   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
						Datum		q;

						if (numeric_is_nan(DatumGetNumeric(value)) || numeric_is_inf(DatumGetNumeric(value)))
							return value;
						q = DirectFunctionCall2(numeric_div_trunc, value, step);
						/* floor, not toward zero: -0.5 with step 1 is in [-1, 0) */
						if (DatumGetBool(DirectFunctionCall2(numeric_lt, value,
															 DirectFunctionCall2(numeric_mul, q, step))))
							q = DirectFunctionCall2(numeric_sub, q,
													DirectFunctionCall1(int4_numeric, Int32GetDatum(1)));
						return DirectFunctionCall2(numeric_mul, q, step);
					}
				default:
					break;
			}
			break;
	}
	elog(ERROR, "masking rule %s cannot apply to type %s", EltMaskKindName(r->kind),
		 format_type_be(r->basetype));
	return (Datum) 0;			/* not reached */
}
