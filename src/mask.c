/*
 * mask.c — masking rules declared once (elt.mask_rules) and applied as the
 * reader: elt.mask_set / mask_drop (a column, by its table's owner),
 * elt.mask_set_pattern / mask_drop_pattern (every column whose name matches,
 * by elt_admin), elt.mask_key_rotate, elt.mask_for (the rule each column
 * of a table gets), elt.mask_suggest (columns that look personal and have
 * none) and elt.mask_preview (rows of a table as a masked copy would hold
 * them).
 *
 * Which rule a column gets: its own (elt.mask_set), else the pattern rules
 * of its schema, else those of every schema; among several patterns the
 * longest, then the first set.  A pattern rule applies only to the columns
 * whose type it fits (an "email" pattern with a pseudonym rule skips an
 * email_verified boolean): elt.mask_suggest lists what is left.
 *
 * Applying rules.  Rows are read by the caller's own query (its privileges,
 * column grants and row-level security hold); each masked column goes
 * through elt._mask(token, slot, value, row key), which applies the rule of
 * the slot with the extension's key.  The token is random, made for one
 * statement and passed as a parameter, never in the text: without it
 * elt._mask refuses, so no one computes the keyed hash of a value of their
 * choosing (which would let them match masked values to guesses).  The key
 * (elt.mask_key) is read as the extension's owner and never leaves the
 * backend.  Custom rules are SQL expressions over the value that call only
 * built-in IMMUTABLE functions: they run as the reader, inline.
 *
 * Layering: an engine; calls mask_rules.c, audit.c, roles.c and util.
 * Locking: catalog rows only (elt.mask_rules, elt.mask_key).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "audit.h"
#include "mask.h"
#include "roles.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * The key
 * ---------------------------------------------------------------------
 */

/*
 * The extension's masking key, made on first use (not by the install
 * script: a restored dump brings the key back, and a key made by CREATE
 * EXTENSION would collide with it).  Inside SPI, as the extension's owner.
 */
static void
load_key(uint8 *key)
{
	bool		isnull;
	bytea	   *b;

	if (SPI_execute("SELECT key FROM elt.mask_key WHERE id = 1", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading the masking key failed");
	if (SPI_processed == 0)
	{
		uint8		fresh[ELT_MASK_KEY_BYTES];
		bytea	   *v = palloc(VARHDRSZ + ELT_MASK_KEY_BYTES);

		if (!pg_strong_random(fresh, sizeof(fresh)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a masking key")));
		SET_VARSIZE(v, VARHDRSZ + ELT_MASK_KEY_BYTES);
		memcpy(VARDATA(v), fresh, ELT_MASK_KEY_BYTES);
		if (SPI_execute_with_args("INSERT INTO elt.mask_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
								  1, (Oid[]) {BYTEAOID}, (Datum[]) {PointerGetDatum(v)}, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "storing the masking key failed");
		if (SPI_execute("SELECT key FROM elt.mask_key WHERE id = 1", false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "reading the masking key failed");
	}
	b = DatumGetByteaPP(EltSpiGetDatum(0, "key", &isnull));
	if (isnull || VARSIZE_ANY_EXHDR(b) != ELT_MASK_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the masking key in elt.mask_key is not %d bytes", ELT_MASK_KEY_BYTES)));
	memcpy(key, VARDATA_ANY(b), ELT_MASK_KEY_BYTES);
}

/* ---------------------------------------------------------------------
 * Columns and their rules
 * ---------------------------------------------------------------------
 */

/* A column of a table and the rule it gets. */
typedef struct MaskColumn
{
	AttrNumber	attnum;
	char	   *name;
	Oid			typid;
	int32		typmod;
	bool		notnull;
	bool		has_rule;
	int64		rule_id;
	char	   *rule;			/* its name */
	char	   *args;			/* jsonb text */
	char	   *source;			/* "column", "pattern in schema", "pattern" */
	char	   *misfit;			/* a pattern rule that matched but does not fit */
	char	   *owner;			/* the table owner's name: its key domain */
	bool		generated;		/* a generated column: not inserted into a copy */
	EltMaskRule mr;
} MaskColumn;

/* The relation, checked to be a table or a view we can mask (a table, partitioned or not, a view, a matview). */
static Relation
open_maskable(Oid relid)
{
	Relation	rel = EltOpenGivenRelation(relid, AccessShareLock);
	char		kind = rel->rd_rel->relkind;

	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE && kind != RELKIND_MATVIEW &&
		kind != RELKIND_VIEW && kind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table or a view", EltRelDisplayName(relid)),
				 errhint("Masking rules are declared on the columns of tables and views.")));
	return rel;
}

static Jsonb *
jsonb_of(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/* EltMaskRuleCheck in a subtransaction: the error it raised, or NULL. */
typedef struct RuleTry
{
	EltMaskRule *mr;
	const char *column;
	Oid			typid;
	int32		typmod;
	bool		notnull;
	Jsonb	   *args;
} RuleTry;

static void
rule_try_fn(void *arg)
{
	RuleTry    *t = arg;

	EltMaskRuleCheck(t->mr, t->column, t->typid, t->typmod, t->notnull, t->args);
}

static ErrorData *
rule_try(EltMaskRule *mr, const char *column, Oid typid, int32 typmod, bool notnull, Jsonb *args)
{
	RuleTry		t = {mr, column, typid, typmod, notnull, args};

	return EltTrySubxact(rule_try_fn, &t);
}

/* A rule that may apply to a column, as read from elt.mask_rules. */
typedef struct RuleRow
{
	int64		rule_id;
	char	   *rule;
	char	   *args;
	char	   *source;
	char	   *pattern;
} RuleRow;

/*
 * The rule every column of rel gets.  The candidate rules are read as the
 * extension's owner (elt.mask_rules is not readable by PUBLIC) and checked
 * as the caller, after: checking a rule reads the column's type, and no
 * code of any type or domain may run with the owner's rights.  A column's
 * own rule comes first, then those of the partitioned tables it is a
 * partition of (nearest first), then the patterns of its schema, then
 * those of every schema (longest first).  Columns without a rule have
 * has_rule false.
 */
static MaskColumn *
rel_columns(Relation rel, int *ncols)
{
	static SPIPlanPtr plan = NULL;
	TupleDesc	desc = RelationGetDescr(rel);
	MaskColumn *cols = palloc0(sizeof(MaskColumn) * Max(desc->natts, 1));
	List	  **candidates = palloc0(sizeof(List *) * Max(desc->natts, 1));
	char	   *schema = get_namespace_name(RelationGetNamespace(rel));
	char	   *relname = EltRelDisplayName(RelationGetRelid(rel));
	MemoryContext outer = CurrentMemoryContext;
	EltCatalogWrite cw;
	int			n = 0;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		MaskColumn *c;

		if (att->attisdropped)
			continue;
		c = &cols[n++];
		c->attnum = att->attnum;
		c->name = pstrdup(NameStr(att->attname));
		c->typid = att->atttypid;
		c->typmod = att->atttypmod;
		c->notnull = att->attnotnull;
		c->owner = GetUserNameFromId(rel->rd_rel->relowner, false);
		c->generated = att->attgenerated != '\0';
	}

	/* read as the owner: plain copies out, no rule checked here */
	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "WITH a AS (SELECT $1::pg_catalog.oid AS relid, 0::pg_catalog.int8 AS lvl"
			   "           UNION ALL"
			   "           SELECT p.relid, pg_catalog.row_number() OVER ()"
			   "           FROM pg_catalog.pg_partition_ancestors($1) AS p"
			   "           WHERE p.relid OPERATOR(pg_catalog.<>) $1)"
			   " SELECT r.rule_id, r.rule, r.args::pg_catalog.text AS args,"
			   "        CASE WHEN r.relation IS NOT NULL AND a.lvl = 0 THEN 'column'"
			   "             WHEN r.relation IS NOT NULL THEN 'partitioned table'"
			   "             WHEN r.in_schema IS NOT NULL THEN 'pattern in schema' ELSE 'pattern' END AS source,"
			   "        r.pattern"
			   " FROM elt.mask_rules r LEFT JOIN a ON a.relid OPERATOR(pg_catalog.=) r.relation::pg_catalog.oid"
			   " WHERE (a.relid IS NOT NULL AND r.column_name OPERATOR(pg_catalog.=) $2)"
			   "    OR (r.pattern IS NOT NULL AND $2 OPERATOR(pg_catalog.~~*) r.pattern"
			   "        AND (r.in_schema IS NULL OR r.in_schema OPERATOR(pg_catalog.=) $3))"
			   " ORDER BY r.relation IS NULL, a.lvl, r.in_schema IS NULL,"
			   "          pg_catalog.length(r.pattern) DESC, r.rule_id",
			   3, (Oid[]) {OIDOID, NAMEOID, NAMEOID});
	for (i = 0; i < n; i++)
	{
		uint64		row;
		SPITupleTable *tt;
		uint64		nrows;

		EltExec(plan, (Datum[]) {ObjectIdGetDatum(RelationGetRelid(rel)),
					DirectFunctionCall1(namein, CStringGetDatum(cols[i].name)),
				DirectFunctionCall1(namein, CStringGetDatum(schema))}, NULL, 0);
		tt = SPI_tuptable;
		nrows = SPI_processed;
		for (row = 0; row < nrows; row++)
		{
			MemoryContext spi = MemoryContextSwitchTo(outer);
			RuleRow    *rr = palloc0(sizeof(RuleRow));
			bool		isnull;

			rr->rule_id = DatumGetInt64(SPI_getbinval(tt->vals[row], tt->tupdesc, 1, &isnull));
			rr->rule = SPI_getvalue(tt->vals[row], tt->tupdesc, 2);
			rr->args = SPI_getvalue(tt->vals[row], tt->tupdesc, 3);
			rr->source = SPI_getvalue(tt->vals[row], tt->tupdesc, 4);
			rr->pattern = SPI_getvalue(tt->vals[row], tt->tupdesc, 5);
			candidates[i] = lappend(candidates[i], rr);
			MemoryContextSwitchTo(spi);
		}
	}
	EltCatalogWriteEnd(&cw);
	MemoryContextSwitchTo(outer);

	/* checked as the caller: the first that fits */
	for (i = 0; i < n; i++)
	{
		MaskColumn *c = &cols[i];
		ListCell   *lc;
		char	   *colname = psprintf("%s.%s", relname, quote_identifier(c->name));

		foreach(lc, candidates[i])
		{
			RuleRow    *rr = lfirst(lc);
			EltMaskRule mr;
			ErrorData  *edata;

			memset(&mr, 0, sizeof(mr));
			mr.kind = EltMaskKindFromName(rr->rule);
			if (rr->pattern == NULL)
				EltMaskRuleCheck(&mr, colname, c->typid, c->typmod, c->notnull, jsonb_of(rr->args));
			else
			{
				/* a pattern rule applies where it fits, and says why it does not elsewhere */
				edata = rule_try(&mr, colname, c->typid, c->typmod, c->notnull, jsonb_of(rr->args));
				if (edata)
				{
					if (edata->sqlerrcode == ERRCODE_DATATYPE_MISMATCH ||
						edata->sqlerrcode == ERRCODE_INVALID_PARAMETER_VALUE ||
						edata->sqlerrcode == ERRCODE_INVALID_TEXT_REPRESENTATION)
					{
						if (c->misfit == NULL)
							c->misfit = psprintf("pattern '%s': %s", rr->pattern, edata->message);
						FreeErrorData(edata);
						continue;
					}
					ReThrowError(edata);
				}
			}
			c->has_rule = true;
			c->rule_id = rr->rule_id;
			c->rule = rr->rule;
			c->args = rr->args;
			c->source = rr->source;
			mr.salt = colname;
			c->mr = mr;
			break;
		}
	}
	*ncols = n;
	return cols;
}

/* Whether role may read rel: a member of its owner, or SELECT on some column. */
static bool
may_read(Oid role, Relation rel)
{
	return has_privs_of_role(role, rel->rd_rel->relowner) ||
		pg_class_aclcheck(RelationGetRelid(rel), role, ACL_SELECT) == ACLCHECK_OK ||
		pg_attribute_aclcheck_all(RelationGetRelid(rel), role, ACL_SELECT, ACLMASK_ANY) == ACLCHECK_OK;
}

static void
require_read(Oid role, Relation rel, const char *what)
{
	if (!may_read(role, rel))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s", EltRelDisplayName(RelationGetRelid(rel))),
				 errdetail("%s needs SELECT on the relation or one of its columns.", what)));
}

/* ---------------------------------------------------------------------
 * Declaring rules
 * ---------------------------------------------------------------------
 */

static bool
arg_is_present(Jsonb *args, const char *key)
{
	return JB_ROOT_IS_OBJECT(args) &&
		getKeyJsonValueFromContainer(&args->root, key, strlen(key), NULL) != NULL;
}

static Jsonb *
args_or_empty(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? jsonb_of("{}") : PG_GETARG_JSONB_P(argno);
}

static char *
jsonb_text(Jsonb *j)
{
	return JsonbToCString(NULL, &j->root, VARSIZE(j));
}

/*
 * The relation and column named by a column rule's first two arguments,
 * opened, for a role that may change its rules (a member of its owner or
 * of elt_admin); verb says what it would do, for the error.
 */
static Relation
open_rule_target(FunctionCallInfo fcinfo, const char *verb, char **col)
{
	Oid			relid;
	Relation	rel;
	Oid			owner;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel and col must not be null")));
	relid = PG_GETARG_OID(0);
	*col = NameStr(*PG_GETARG_NAME(1));
	EltRequireCatalog("mask_rules");
	rel = open_maskable(relid);
	owner = rel->rd_rel->relowner;
	if (!has_privs_of_role(GetUserId(), owner) && !EltRoleIsAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the owner of %s may %s its masking rules", EltRelDisplayName(relid), verb),
				 errdetail("%s is owned by role %s.", EltRelDisplayName(relid), GetUserNameFromId(owner, true)),
				 errhint("Members of the owner, members of %s and superusers may %s them.", ELT_ROLE_ADMIN, verb)));
	return rel;
}

PG_FUNCTION_INFO_V1(elt_mask_set);

/*
 * elt.mask_set(rel regclass, col name, rule text, args jsonb DEFAULT '{}')
 * RETURNS bigint: the column's rule, set or replaced; by a member of the
 * table's owner or of elt_admin.
 */
Datum
elt_mask_set(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *col;
	char	   *rule = EltRequiredText(fcinfo, 2, "rule");
	Jsonb	   *args = args_or_empty(fcinfo, 3);
	Relation	rel;
	AttrNumber	attnum;
	Form_pg_attribute att;
	EltMaskRule mr;
	EltCatalogWrite cw;
	char	   *colname;
	int64		rule_id;
	bool		isnull;

	rel = open_rule_target(fcinfo, "set", &col);
	relid = RelationGetRelid(rel);
	attnum = get_attnum(relid, col);
	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of %s does not exist", col, EltRelDisplayName(relid))));
	att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	colname = psprintf("%s.%s", EltRelDisplayName(relid), quote_identifier(col));
	memset(&mr, 0, sizeof(mr));
	mr.kind = EltMaskKindFromName(rule);

	if (arg_is_present(args, "domain") && !EltRoleIsAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to give a masking rule a key domain"),
				 errdetail("Columns of one key domain mask alike; whoever could put values of their choosing into a column of the domain could learn what masked values stand for."),
				 errhint("Members of %s and superusers may; without a domain, a rule uses the key of the table's owner.",
						 ELT_ROLE_ADMIN)));
	EltCatalogWriteBegin(&cw);
	EltMaskRuleCheck(&mr, colname, att->atttypid, att->atttypmod, att->attnotnull, args);
	if (SPI_execute_with_args("INSERT INTO elt.mask_rules (relation, column_name, rule, args, set_by)"
							  " VALUES ($1, $2, $3, $4, $5)"
							  " ON CONFLICT (relation, column_name) WHERE relation IS NOT NULL"
							  " DO UPDATE SET rule = EXCLUDED.rule, args = EXCLUDED.args,"
							  "   set_by = EXCLUDED.set_by, set_at = pg_catalog.now()"
							  " RETURNING rule_id",
							  5, (Oid[]) {OIDOID, NAMEOID, TEXTOID, JSONBOID, OIDOID},
							  (Datum[]) {ObjectIdGetDatum(relid), DirectFunctionCall1(namein, CStringGetDatum(col)),
								  CStringGetTextDatum(rule), JsonbPGetDatum(args), ObjectIdGetDatum(cw.actor)},
							  NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "storing the masking rule failed");
	rule_id = EltSpiGetInt64(0, "rule_id", &isnull);
	{
		EltJson		d;

		EltJsonBegin(&d);
		EltJsonInt(&d, "rule_id", rule_id);
		EltJsonString(&d, "column", col);
		EltJsonString(&d, "rule", rule);
		EltJsonRaw(&d, "args", jsonb_text(args));
		EltAuditRecord(cw.actor, "mask_set", EltRelDisplayName(relid), EltJsonFinish(&d), EltAuditReason(NULL));
	}
	EltCatalogWriteEnd(&cw);
	table_close(rel, NoLock);
	PG_RETURN_INT64(rule_id);
}

PG_FUNCTION_INFO_V1(elt_mask_drop);

/* elt.mask_drop(rel regclass, col name) RETURNS boolean: the column's own rule dropped. */
Datum
elt_mask_drop(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *col;
	Relation	rel;
	EltCatalogWrite cw;

	rel = open_rule_target(fcinfo, "drop", &col);
	relid = RelationGetRelid(rel);
	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("DELETE FROM elt.mask_rules WHERE relation = $1 AND column_name = $2 RETURNING rule_id",
							  2, (Oid[]) {OIDOID, NAMEOID},
							  (Datum[]) {ObjectIdGetDatum(relid), DirectFunctionCall1(namein, CStringGetDatum(col))},
							  NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "dropping the masking rule failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("column \"%s\" of %s has no masking rule of its own", col, EltRelDisplayName(relid)),
				 errhint("elt.mask_for(rel) shows the rule each column gets and where it comes from.")));
	{
		EltJson		d;
		bool		isnull;

		EltJsonBegin(&d);
		EltJsonInt(&d, "rule_id", EltSpiGetInt64(0, "rule_id", &isnull));
		EltJsonString(&d, "column", col);
		EltAuditRecord(cw.actor, "mask_drop", EltRelDisplayName(relid), EltJsonFinish(&d), EltAuditReason(NULL));
	}
	EltCatalogWriteEnd(&cw);
	table_close(rel, NoLock);
	PG_RETURN_BOOL(true);
}

static void
require_admin(const char *what)
{
	if (!EltRoleIsAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errdetail("A pattern rule masks columns of tables owned by many roles, and the key masks them all."),
				 errhint("Members of %s and superusers may; a table's owner sets rules for its columns with elt.mask_set.",
						 ELT_ROLE_ADMIN)));
}

PG_FUNCTION_INFO_V1(elt_mask_set_pattern);

/*
 * elt.mask_set_pattern(pattern text, rule text, args jsonb DEFAULT '{}',
 * in_schema name DEFAULT NULL) RETURNS bigint: a rule for every column whose
 * name matches the ILIKE pattern (in one schema, or all); by elt_admin.
 */
Datum
elt_mask_set_pattern(PG_FUNCTION_ARGS)
{
	char	   *pattern = EltRequiredText(fcinfo, 0, "pattern");
	char	   *rule = EltRequiredText(fcinfo, 1, "rule");
	Jsonb	   *args = args_or_empty(fcinfo, 2);
	char	   *schema = PG_ARGISNULL(3) ? NULL : pstrdup(NameStr(*PG_GETARG_NAME(3)));
	EltMaskKind kind;
	EltCatalogWrite cw;
	int64		rule_id;
	bool		isnull;

	EltRequireCatalog("mask_rules");
	require_admin("set a masking rule by pattern");
	if (pattern[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern must not be empty"),
				 errhint("An ILIKE pattern on column names, such as 'email' or '%%phone%%'.")));
	/* a pattern ILIKE cannot read (a trailing escape) is refused now, not at every use */
	(void) DirectFunctionCall2Coll(texticlike, DEFAULT_COLLATION_OID, CStringGetTextDatum("x"),
								   CStringGetTextDatum(pattern));
	if (schema && !OidIsValid(get_namespace_oid(schema, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", schema)));
	kind = EltMaskKindFromName(rule);
	if (arg_is_present(args, "domain"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a masking rule by pattern takes no key domain"),
				 errdetail("A pattern also matches columns of tables that any role can create and fill."),
				 errhint("A pattern rule uses the key of each table's owner; give a column rule a domain with elt.mask_set.")));
	/* the arguments are checked against a text column (a rule for numbers or dates: one of those) */
	{
		EltMaskRule mr;
		ErrorData  *edata;

		memset(&mr, 0, sizeof(mr));
		mr.kind = kind;
		edata = rule_try(&mr, "(pattern)", TEXTOID, -1, false, args);
		if (edata && edata->sqlerrcode == ERRCODE_DATATYPE_MISMATCH)
		{
			FreeErrorData(edata);
			memset(&mr, 0, sizeof(mr));
			mr.kind = kind;
			edata = rule_try(&mr, "(pattern)",
							 (arg_is_present(args, "days") || arg_is_present(args, "to")) ? DATEOID : NUMERICOID,
							 -1, false, args);
		}
		if (edata)
			ReThrowError(edata);
	}
	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("INSERT INTO elt.mask_rules (pattern, in_schema, rule, args, set_by)"
							  " VALUES ($1, $2, $3, $4, $5)"
							  " ON CONFLICT (pattern, (COALESCE(in_schema, ''::name))) WHERE pattern IS NOT NULL"
							  " DO UPDATE SET rule = EXCLUDED.rule, args = EXCLUDED.args,"
							  "   set_by = EXCLUDED.set_by, set_at = pg_catalog.now()"
							  " RETURNING rule_id",
							  5, (Oid[]) {TEXTOID, NAMEOID, TEXTOID, JSONBOID, OIDOID},
							  (Datum[]) {CStringGetTextDatum(pattern),
								  schema ? DirectFunctionCall1(namein, CStringGetDatum(schema)) : (Datum) 0,
								  CStringGetTextDatum(rule), JsonbPGetDatum(args), ObjectIdGetDatum(cw.actor)},
							  schema ? "     " : " n   ", false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "storing the masking rule failed");
	rule_id = EltSpiGetInt64(0, "rule_id", &isnull);
	{
		EltJson		d;

		EltJsonBegin(&d);
		EltJsonInt(&d, "rule_id", rule_id);
		EltJsonString(&d, "pattern", pattern);
		EltJsonString(&d, "in_schema", schema);
		EltJsonString(&d, "rule", rule);
		EltJsonRaw(&d, "args", jsonb_text(args));
		EltAuditRecord(cw.actor, "mask_set_pattern", schema ? schema : "*", EltJsonFinish(&d), EltAuditReason(NULL));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(rule_id);
}

PG_FUNCTION_INFO_V1(elt_mask_drop_pattern);

/* elt.mask_drop_pattern(pattern text, in_schema name DEFAULT NULL) RETURNS boolean */
Datum
elt_mask_drop_pattern(PG_FUNCTION_ARGS)
{
	char	   *pattern = EltRequiredText(fcinfo, 0, "pattern");
	char	   *schema = PG_ARGISNULL(1) ? NULL : pstrdup(NameStr(*PG_GETARG_NAME(1)));
	EltCatalogWrite cw;

	EltRequireCatalog("mask_rules");
	require_admin("drop a masking rule by pattern");
	EltCatalogWriteBegin(&cw);
	if (SPI_execute_with_args("DELETE FROM elt.mask_rules WHERE pattern = $1"
							  " AND COALESCE(in_schema, ''::name) = COALESCE($2, ''::name) RETURNING rule_id",
							  2, (Oid[]) {TEXTOID, NAMEOID},
							  (Datum[]) {CStringGetTextDatum(pattern),
								  schema ? DirectFunctionCall1(namein, CStringGetDatum(schema)) : (Datum) 0},
							  schema ? "  " : " n", false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "dropping the masking rule failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("there is no masking rule for pattern \"%s\"%s%s", pattern,
						schema ? " in schema " : "", schema ? schema : ""),
				 errhint("elt.masks lists the rules.")));
	{
		EltJson		d;
		bool		isnull;

		EltJsonBegin(&d);
		EltJsonInt(&d, "rule_id", EltSpiGetInt64(0, "rule_id", &isnull));
		EltJsonString(&d, "pattern", pattern);
		EltJsonString(&d, "in_schema", schema);
		EltAuditRecord(cw.actor, "mask_drop_pattern", schema ? schema : "*", EltJsonFinish(&d), EltAuditReason(NULL));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(elt_mask_key_rotate);

/*
 * elt.mask_key_rotate(reason text) RETURNS timestamptz: a new masking key
 * (every hash, pseudonym and noise changes); by elt_admin.
 */
Datum
elt_mask_key_rotate(PG_FUNCTION_ARGS)
{
	char	   *reason = EltRequiredText(fcinfo, 0, "reason");
	EltCatalogWrite cw;
	uint8		fresh[ELT_MASK_KEY_BYTES];
	bytea	   *v = palloc(VARHDRSZ + ELT_MASK_KEY_BYTES);
	uint8		old[ELT_MASK_KEY_BYTES];

	EltRequireCatalog("mask_key");
	if (!EltRoleIsAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to rotate the masking key"),
				 errhint("Members of %s and superusers may.", ELT_ROLE_ADMIN)));
	if (!pg_strong_random(fresh, sizeof(fresh)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a masking key")));
	SET_VARSIZE(v, VARHDRSZ + ELT_MASK_KEY_BYTES);
	memcpy(VARDATA(v), fresh, ELT_MASK_KEY_BYTES);
	EltCatalogWriteBegin(&cw);
	load_key(old);				/* makes sure the row exists */
	if (SPI_execute_with_args("UPDATE elt.mask_key SET key = $1, created_at = pg_catalog.now() WHERE id = 1",
							  1, (Oid[]) {BYTEAOID}, (Datum[]) {PointerGetDatum(v)}, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "storing the masking key failed");
	EltAuditRecord(cw.actor, "mask_key_rotate", "elt.mask_key", "{}", EltAuditReason(reason));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_TIMESTAMPTZ(GetCurrentTransactionStartTimestamp());
}

/* ---------------------------------------------------------------------
 * Reading rules
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(elt_mask_for);

/*
 * elt.mask_for(rel regclass) RETURNS TABLE (column_name name, type text,
 * rule text, args jsonb, source text, rule_id bigint, note text): the rule
 * each column gets, for a role that may read rel.
 */
Datum
elt_mask_for(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	Relation	rel;
	MaskColumn *cols;
	int			n,
				i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel must not be null")));
	EltRequireCatalog("mask_rules");
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	rel = open_maskable(PG_GETARG_OID(0));
	require_read(GetUserId(), rel, "elt.mask_for");
	cols = rel_columns(rel, &n);
	for (i = 0; i < n; i++)
	{
		MaskColumn *c = &cols[i];
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};

		values[0] = DirectFunctionCall1(namein, CStringGetDatum(c->name));
		values[1] = CStringGetTextDatum(format_type_with_typemod(c->typid, c->typmod));
		if (c->has_rule)
		{
			values[2] = CStringGetTextDatum(c->rule);
			values[3] = JsonbPGetDatum(jsonb_of(c->args));
			values[4] = CStringGetTextDatum(c->source);
			values[5] = Int64GetDatum(c->rule_id);
		}
		else
			nulls[2] = nulls[3] = nulls[4] = nulls[5] = true;
		if (c->misfit && !c->has_rule)
			values[6] = CStringGetTextDatum(psprintf("a pattern rule matched but does not fit (%s)", c->misfit));
		else
			nulls[6] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	table_close(rel, NoLock);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Applying rules: the statement's token and slots
 * ---------------------------------------------------------------------
 */

/* The masking of the statement running now, if any. */
static struct
{
	bool		active;
	int64		token;
	int			nslots;
	EltMaskRule *slots;
	char	  **domains;		/* per slot, the key domain */
	uint8	   *keys;			/* per slot, ELT_MASK_KEY_BYTES: the domain's key */
	uint8		key[ELT_MASK_KEY_BYTES];	/* the master key */
	MemoryContext cxt;
} masking;

PG_FUNCTION_INFO_V1(elt_mask_value);

/*
 * elt._mask(token bigint, slot integer, value anyelement, rowkey text)
 * RETURNS anyelement: the value masked by the rule of the slot.  Only the
 * statement that was given the token can call it.
 */
Datum
elt_mask_value(PG_FUNCTION_ARGS)
{
	int			slot;
	Datum		result;
	bool		isnull;
	char	   *rowkey;

	if (!masking.active || PG_ARGISNULL(0) || PG_GETARG_INT64(0) != masking.token)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("elt._mask() is internal to elt_governance"),
				 errhint("Rows are masked by elt.mask_preview and by sandboxes.")));
	slot = PG_GETARG_INT32(1);
	if (slot < 0 || slot >= masking.nslots)
		elog(ERROR, "masking slot %d out of range", slot);
	if (PG_ARGISNULL(2))
		PG_RETURN_NULL();
	rowkey = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	result = EltMaskApply(&masking.slots[slot], masking.keys + slot * ELT_MASK_KEY_BYTES,
						  PG_GETARG_DATUM(2), rowkey, &isnull);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/*
 * The primary key of rel as a text expression over its columns read as
 * alias (NULL if none): each column through format's %L, which prints with
 * the type's output function (never a cast a user defined, which would
 * run their code as the reader), under the pinned print settings.  Two
 * rows with the same key are the same row of the table.
 */
char *
EltMaskRowKeySql(Relation rel, const char *alias)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	StringInfoData buf;

	initStringInfo(&buf);
	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index idx;
		int			k;

		if (!HeapTupleIsValid(tup))
			continue;
		idx = (Form_pg_index) GETSTRUCT(tup);
		if (idx->indisprimary)
		{
			appendStringInfoString(&buf, "pg_catalog.format('");
			for (k = 0; k < idx->indnkeyatts; k++)
				appendStringInfoString(&buf, k ? ",%L" : "%L");
			appendStringInfoChar(&buf, '\'');
			for (k = 0; k < idx->indnkeyatts; k++)
				appendStringInfo(&buf, ", %s.%s", alias,
								 quote_identifier(get_attname(RelationGetRelid(rel), idx->indkey.values[k], false)));
			appendStringInfoChar(&buf, ')');
		}
		ReleaseSysCache(tup);
	}
	return buf.len > 0 ? buf.data : NULL;
}

/*
 * The select list that masks every column of rel read as alias m (the
 * generated ones left out when for_insert), for the caller's statement;
 * fills in the slots it uses.  *columns gets the quoted column names.
 */
static char *
masked_select_list(Relation rel, MaskColumn *cols, int n, bool masked, bool for_insert,
				   char **columns)
{
	StringInfoData buf;
	StringInfoData names;
	char	   *rowkey = EltMaskRowKeySql(rel, "m");
	int			i;
	bool		first = true;

	masking.slots = palloc(sizeof(EltMaskRule) * Max(n, 1));
	masking.domains = palloc(sizeof(char *) * Max(n, 1));
	masking.nslots = 0;
	initStringInfo(&buf);
	initStringInfo(&names);
	for (i = 0; i < n; i++)
	{
		MaskColumn *c = &cols[i];
		char	   *qcol = psprintf("m.%s", quote_identifier(c->name));

		if (for_insert && c->generated)
			continue;
		if (!first)
		{
			appendStringInfoString(&buf, ", ");
			appendStringInfoString(&names, ", ");
		}
		first = false;
		appendStringInfoString(&names, quote_identifier(c->name));
		if (!masked || !c->has_rule)
			appendStringInfoString(&buf, qcol);
		else if (c->mr.kind == ELT_MASK_CUSTOM)
		{
			/* checked again: the column's type may have changed since */
			EltMaskCustomCheck(psprintf("%s.%s", EltRelDisplayName(RelationGetRelid(rel)),
										quote_identifier(c->name)),
							   c->mr.expression, c->typid, c->typmod);
			appendStringInfoString(&buf, EltMaskCustomSql(c->mr.expression, qcol, c->typid, c->typmod));
		}
		else
		{
			masking.slots[masking.nslots] = c->mr;

			/*
			 * Keyed rules use the key of a domain: the one an administrator
			 * named, else the table owner's.  A role that fills a table of
			 * its own with guesses gets them masked with its own key, not
			 * with the key of the tables it may read only masked.
			 */
			masking.domains[masking.nslots] = c->mr.domain ? psprintf("domain:%s", c->mr.domain)
				: psprintf("owner:%s", c->owner);
			/* of the base type: a domain's CHECK is its owner's code, not run here */
			/* the row's key only for the rule that reads it: it costs a format() per value */
			appendStringInfo(&buf, "CAST(elt._mask($1, %d, %s, %s) AS %s)", masking.nslots, qcol,
							 rowkey && c->mr.kind == ELT_MASK_NOISE ? rowkey : "NULL",
							 format_type_extended(c->mr.basetype, c->mr.basetype == c->typid ? c->typmod : -1,
												  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
			masking.nslots++;
		}
		appendStringInfo(&buf, " AS %s", quote_identifier(c->name));
	}
	if (columns)
		*columns = names.data;
	return buf.data;
}

/*
 * Begin masking one statement that reads rel as alias m: returns its
 * select list (each masked column through elt._mask($1, ...); unmasked
 * when masked is false) and the quoted column names in *columns.  The
 * statement passes EltMaskToken() as $1 and runs before EltMaskEnd(),
 * which must be called on error too.  Called inside SPI, with search_path
 * pinned to pg_catalog and the print settings pinned (EltPinPrintSettings),
 * so that custom expressions resolve to built-ins and row keys print the
 * canonical way.  The key is read as the extension's owner.
 */
char *
EltMaskBegin(Relation rel, bool masked, bool for_insert, char **columns)
{
	MaskColumn *cols;
	int			ncols;
	char	   *list;
	int			k;
	MemoryContext outer = CurrentMemoryContext;

	if (masking.active)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a masking statement cannot run inside another one")));
	EltRequireCatalog("mask_rules");
	cols = rel_columns(rel, &ncols);
	{
		EltCatalogWrite cw;

		EltCatalogWriteBegin(&cw);
		load_key(masking.key);
		EltCatalogWriteEnd(&cw);
	}
	MemoryContextSwitchTo(outer);
	masking.cxt = outer;
	list = masked_select_list(rel, cols, ncols, masked, for_insert, columns);
	masking.keys = palloc(ELT_MASK_KEY_BYTES * Max(masking.nslots, 1));
	for (k = 0; k < masking.nslots; k++)
		EltMaskDeriveKey(masking.key, masking.domains[k], masking.keys + k * ELT_MASK_KEY_BYTES);
	memset(masking.key, 0, sizeof(masking.key));
	if (!pg_strong_random(&masking.token, sizeof(masking.token)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a masking token")));
	masking.active = true;
	return list;
}

/* The token of the masking statement running now. */
int64
EltMaskToken(void)
{
	return masking.token;
}

/* End the masking statement: the token and the keys are forgotten. */
void
EltMaskEnd(void)
{
	masking.active = false;
	masking.token = 0;
	memset(masking.key, 0, sizeof(masking.key));
	if (masking.keys)
		memset(masking.keys, 0, ELT_MASK_KEY_BYTES * Max(masking.nslots, 1));
	masking.keys = NULL;
	masking.nslots = 0;
}

PG_FUNCTION_INFO_V1(elt_mask_preview);

/*
 * elt.mask_preview(rel regclass, n integer DEFAULT 10) RETURNS SETOF jsonb:
 * n rows of rel read by the caller (its privileges and row-level security
 * hold), each column masked by its rule.
 */
Datum
elt_mask_preview(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	Relation	rel;
	int64		limit;
	int			guc_level;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel must not be null")));
	limit = PG_ARGISNULL(1) ? 10 : PG_GETARG_INT32(1);
	if (limit < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must not be negative")));
	EltRequireCatalog("mask_rules");
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	rel = open_maskable(PG_GETARG_OID(0));
	require_read(GetUserId(), rel, "elt.mask_preview");

	/* the caller's statement, with names resolved in pg_catalog and values printed the canonical way */
	guc_level = EltPinPrintSettings();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		uint64		row;
		char	   *sql;

		sql = psprintf("SELECT pg_catalog.to_jsonb(elt_mask_row) FROM (SELECT %s FROM %s AS m LIMIT $2) AS elt_mask_row",
					   EltMaskBegin(rel, true, false, NULL), EltRelDisplayName(RelationGetRelid(rel)));
		if (SPI_execute_with_args(sql, 2, (Oid[]) {INT8OID, INT8OID},
								  (Datum[]) {Int64GetDatum(EltMaskToken()), Int64GetDatum(limit)},
								  NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading %s failed", EltRelDisplayName(RelationGetRelid(rel)));
		for (row = 0; row < SPI_processed; row++)
		{
			bool		isnull;
			Datum		v = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull);
			MemoryContext spi = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
			MemoryContextSwitchTo(spi);
		}
	}
	PG_FINALLY();
	{
		EltMaskEnd();
	}
	PG_END_TRY();
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	table_close(rel, NoLock);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Suggestions
 * ---------------------------------------------------------------------
 */

/* A kind of personal column: its name pattern, value pattern and the rule suggested. */
typedef struct PersonalKind
{
	const char *name_re;		/* on the lower-case column name */
	const char *value_re;		/* on sampled text values; NULL: by name only */
	const char *what;
	const char *rule;
	const char *args;			/* for text columns */
	const char *other_rule;		/* for other types (NULL: hash) */
	const char *other_args;
} PersonalKind;

static const PersonalKind personal[] = {
	{"e_?mail", "^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$", "an e-mail address",
	"pseudonym", "{\"kind\": \"email\"}", NULL, NULL},
	{"(phone|mobile|^tel$|_tel$|^tel_|fax)", "^\\+?[0-9][0-9 ().-]{6,}[0-9]$", "a phone number",
	"pseudonym", "{\"kind\": \"phone\"}", NULL, NULL},
	{"(iban|bank_?account|account_?number)", "^[A-Z]{2}[0-9]{2}[A-Z0-9 ]{10,30}$", "a bank account number",
	"pseudonym", "{\"kind\": \"iban\"}", NULL, NULL},
	{"(ssn|social_?security|national_?id|passport|tax_?id|^nin$|driver_?licen)", NULL, "a national identifier",
	"hash", "{}", NULL, NULL},
	{"(credit_?card|card_?number|^pan$)", "^[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{1,7}$", "a card number",
	"partial", "{\"suffix\": 4}", NULL, NULL},
	{"(birth|^dob$)", NULL, "a date of birth",
	"partial", "{\"prefix\": 4}", "generalize", "{\"to\": \"year\"}"},
	{"(first_?name|given_?name|forename)", NULL, "a first name",
	"pseudonym", "{\"kind\": \"first_name\"}", NULL, NULL},
	{"(last_?name|surname|family_?name)", NULL, "a last name",
	"pseudonym", "{\"kind\": \"last_name\"}", NULL, NULL},
	{"(^name$|full_?name|customer_?name|person_?name|contact_?name)", NULL, "a person's name",
	"pseudonym", "{\"kind\": \"name\"}", NULL, NULL},
	{"(address|street|^addr)", NULL, "an address",
	"pseudonym", "{\"kind\": \"address\"}", NULL, NULL},
	{"(zip|post_?code|postal)", NULL, "a postal code",
	"partial", "{\"prefix\": 2}", NULL, NULL},
	{"(^ip$|ip_?addr)", "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$", "an IP address",
	"hash", "{}", NULL, NULL},
	{"(salary|income|wage)", NULL, "an income",
	"hash", "{}", "noise", "{\"ratio\": 0.1}"},
	{"(^lat$|^lon$|^lng$|latitude|longitude)", NULL, "a location",
	"partial", "{\"prefix\": 4}", "noise", "{\"amount\": 0.01}"},
	{NULL, NULL, NULL, NULL, NULL, NULL, NULL}
};

/* A sample of a column's values matched against a pattern, in a subtransaction. */
typedef struct SampleTry
{
	Oid			relid;
	const char *column;
	const char *regex;
	int64		n;
	int64		hits;
} SampleTry;

static void
sample_try_fn(void *arg)
{
	SampleTry  *st = arg;
	char	   *sql = psprintf("SELECT pg_catalog.count(*) AS n,"
							   " pg_catalog.count(*) FILTER (WHERE v OPERATOR(pg_catalog.~) $1) AS hits"
							   " FROM (SELECT CAST(%s AS pg_catalog.text) AS v FROM %s"
							   "       WHERE %s IS NOT NULL LIMIT 200) AS s",
							   quote_identifier(st->column), EltRelDisplayName(st->relid),
							   quote_identifier(st->column));
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql, 1, (Oid[]) {TEXTOID},
							  (Datum[]) {CStringGetTextDatum(st->regex)}, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "sampling %s failed", EltRelDisplayName(st->relid));
	st->n = EltSpiGetInt64(0, "n", &isnull);
	st->hits = EltSpiGetInt64(0, "hits", &isnull);
	SPI_finish();
}

PG_FUNCTION_INFO_V1(elt_mask_suggest);

/*
 * elt.mask_suggest(schema name) RETURNS TABLE (relation regclass,
 * column_name name, type text, reason text, rule text, args jsonb): the
 * columns of the schema's tables that look personal (by name, or by a
 * sample of their text values) and get no masking rule, with a rule that
 * would fit.  Only tables the caller may read are looked at, and values
 * are sampled by the caller's own query (its column grants and row-level
 * security hold).
 */
Datum
elt_mask_suggest(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	char	   *schema;
	Oid			nsp;
	List	   *rels = NIL;
	ListCell   *lc;
	Oid			me = GetUserId();

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("schema must not be null")));
	schema = NameStr(*PG_GETARG_NAME(0));
	nsp = get_namespace_oid(schema, false);
	EltRequireCatalog("mask_rules");
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (pg_namespace_aclcheck(nsp, me, ACL_USAGE) != ACLCHECK_OK && !has_privs_of_role(me, EltNamespaceOwner(nsp)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for schema %s", schema)));

	/* the schema's tables, by name */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = $1"
							  " AND c.relkind IN ('r', 'p', 'm', 'f', 'v') AND NOT c.relispartition"
							  " ORDER BY c.relname",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(nsp)}, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "listing the tables of schema %s failed", schema);
	{
		uint64		i;
		MemoryContext spi = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);

		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			rels = lappend_oid(rels, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																	SPI_tuptable->tupdesc, 1, &isnull)));
		}
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();

	foreach(lc, rels)
	{
		Oid			relid = lfirst_oid(lc);
		Relation	rel = EltOpenGivenRelation(relid, AccessShareLock);
		MaskColumn *cols;
		int			n,
					i;
		bool		sample_ok;

		if (!may_read(me, rel))
		{
			table_close(rel, AccessShareLock);
			continue;
		}
		/*
		 * Values are sampled from tables and materialized views only, and
		 * from a table with row-level security only by its owner's members
		 * (and superusers, whom it does not apply to): a view's functions
		 * and a policy's are their owner's code, which would run as the
		 * caller without the caller having asked to read that relation.
		 */
		sample_ok = (rel->rd_rel->relkind == RELKIND_RELATION ||
					 rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ||
					 rel->rd_rel->relkind == RELKIND_MATVIEW) &&
			(!rel->rd_rel->relrowsecurity || superuser_arg(me) ||
			 has_privs_of_role(me, rel->rd_rel->relowner));
		cols = rel_columns(rel, &n);
		for (i = 0; i < n; i++)
		{
			MaskColumn *c = &cols[i];
			const PersonalKind *k;
			char	   *lname = pstrdup(c->name);
			char	   *reason = NULL;
			bool		is_text;
			int			j;

			if (c->has_rule)
				continue;
			for (j = 0; lname[j]; j++)
				lname[j] = pg_tolower((unsigned char) lname[j]);
			is_text = (getBaseType(c->typid) == TEXTOID || getBaseType(c->typid) == VARCHAROID ||
					   getBaseType(c->typid) == BPCHAROID);
			for (k = personal; k->name_re && reason == NULL; k++)
			{
				if (DatumGetBool(DirectFunctionCall2Coll(textregexeq, C_COLLATION_OID,
														 CStringGetTextDatum(lname),
														 CStringGetTextDatum(k->name_re))))
					reason = psprintf("its name looks like %s", k->what);
				else if (is_text && k->value_re && sample_ok &&
						 (pg_class_aclcheck(relid, me, ACL_SELECT) == ACLCHECK_OK ||
						  pg_attribute_aclcheck(relid, c->attnum, me, ACL_SELECT) == ACLCHECK_OK))
				{
					/* a sample of the values, read by the caller; a table that fails is skipped */
					SampleTry	st;
					ErrorData  *edata;

					st.relid = relid;
					st.column = c->name;
					st.regex = k->value_re;
					st.n = st.hits = 0;
					edata = EltTrySubxact(sample_try_fn, &st);
					if (edata)
						FreeErrorData(edata);
					else if (st.n > 0 && st.hits * 2 >= st.n)
						reason = psprintf("%lld of %lld sampled values look like %s",
										  (long long) st.hits, (long long) st.n, k->what);
				}
				if (reason)
				{
					Datum		values[6];
					bool		nulls[6] = {false, false, false, false, false, false};
					const char *rule = is_text ? k->rule : (k->other_rule ? k->other_rule : "hash");
					const char *args = is_text ? k->args : (k->other_rule ? k->other_args : "{}");
					EltMaskRule mr;
					ErrorData  *edata;

					/* a suggestion that fits the column, or none */
					memset(&mr, 0, sizeof(mr));
					mr.kind = EltMaskKindFromName(rule);
					edata = rule_try(&mr, c->name, c->typid, c->typmod, c->notnull, jsonb_of(args));
					values[0] = ObjectIdGetDatum(relid);
					values[1] = DirectFunctionCall1(namein, CStringGetDatum(c->name));
					values[2] = CStringGetTextDatum(format_type_with_typemod(c->typid, c->typmod));
					values[3] = CStringGetTextDatum(c->misfit
													? psprintf("%s; a pattern rule matched but does not fit (%s)",
															   reason, c->misfit)
													: reason);
					if (edata)
					{
						nulls[4] = nulls[5] = true;
						FreeErrorData(edata);
					}
					else
					{
						values[4] = CStringGetTextDatum(rule);
						values[5] = JsonbPGetDatum(jsonb_of(args));
					}
					tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
				}
			}
		}
		table_close(rel, AccessShareLock);
	}
	return (Datum) 0;
}

/*
 * A dropped relation's column rules go with it (called at sql_drop, inside
 * the catalog write context): a rule must never attach to a relation that
 * later gets the same OID.
 */
void
EltMaskForget(Oid relid)
{
	static SPIPlanPtr plan = NULL;

	if (!OidIsValid(EltCatalogRelid("mask_rules")))
		return;
	EltPrepare(&plan, "DELETE FROM elt.mask_rules WHERE relation OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
			   1, (Oid[]) {OIDOID});
	EltExec(plan, (Datum[]) {ObjectIdGetDatum(relid)}, NULL, 0);
}

/* The rules rel's columns get, as JSON {column: {rule, args, source}}, for a sandbox's manifest. */
char *
EltMaskRulesJson(Relation rel)
{
	MaskColumn *cols;
	int			n,
				i;
	EltJson		j;

	cols = rel_columns(rel, &n);
	EltJsonBegin(&j);
	for (i = 0; i < n; i++)
	{
		if (!cols[i].has_rule)
			continue;
		EltJsonBeginObject(&j, cols[i].name);
		EltJsonString(&j, "rule", cols[i].rule);
		EltJsonRaw(&j, "args", cols[i].args);
		EltJsonString(&j, "source", cols[i].source);
		EltJsonEndObject(&j);
	}
	return EltJsonFinish(&j);
}
