/*
 * contracts_rules.c — the rule table of the contracts engine and the
 * catalog facts its rules rest on.
 *
 * Owns: the rule table (codes EG1xx breaking, EG2xx lock hazards, EG208
 * advice, EG001/EG002 for check_ddl) and elt.rules(); EltAddCandidate, which
 * every part uses to add a candidate finding (and marks the hazards that
 * depend on size); finding a relation or column in the live
 * catalog or, for elt.check_ddl(), in the script's view of it (what earlier
 * statements of the script created, renamed or dropped); whether a type
 * change is a widening and whether it rewrites the table; display names.
 *
 * Calls: nothing of the extension but util.c.  Called by the other
 * contracts_*.c files (through contracts_int.h).
 *
 * No locking, no SPI: only the syscache and the namespace search path.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/heap.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_index.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "mb/pg_wchar.h"
#include "optimizer/plancat.h"
#include "parser/parse_coerce.h"
#include "parser/parse_target.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "audit.h"
#include "backfill.h"
#include "contracts.h"
#include "contracts_int.h"
#include "deploy.h"
#include "govern.h"
#include "settings.h"
#include "util.h"

const EltRule EltContractRules[R_COUNT] = {
	[R_MISSING] = {"EG001", "error", "object does not exist",
		"Create the object first, or fix its name: the statement would fail."},
	[R_DROP_TABLE] = {"EG101", "breaking", "DROP TABLE",
		"Move every reader to the replacement first, then drop the table inside an approved migration."},
	[R_DROP_VIEW] = {"EG102", "breaking", "DROP VIEW or MATERIALIZED VIEW",
		"Keep the view until its readers have moved; drop it inside an approved migration."},
	[R_DROP_SCHEMA] = {"EG103", "breaking", "DROP SCHEMA",
		"Move the readers of its tables and views first, then drop the schema inside an approved migration."},
	[R_DROP_COLUMN] = {"EG104", "breaking", "DROP COLUMN",
		"Stop writing the column, move every reader off it, then drop it inside an approved migration."},
	[R_RENAME_TABLE] = {"EG105", "breaking", "rename or move a table, view, type or domain",
		"Create the new object beside the old one (for a table, a view under the new name), move the readers, then drop the old name inside an approved migration."},
	[R_RENAME_COLUMN] = {"EG106", "breaking", "RENAME COLUMN",
		"Add the new column, backfill it, move the readers to it, then drop the old column inside an approved migration."},
	[R_TYPE_NARROWING] = {"EG107", "breaking", "column type change that is not a widening",
		"Add a column of the new type, backfill it, move the readers, then drop the old column inside an approved migration."},
	[R_DROP_NOT_NULL] = {"EG108", "breaking", "DROP NOT NULL",
		"Check that every reader handles NULL in the column, then drop NOT NULL inside an approved migration."},
	[R_SET_NOT_NULL] = {"EG109", "breaking", "SET NOT NULL",
		"Fix the writers that store NULL, add CHECK (column IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL inside an approved migration."},
	[R_ADD_NOT_NULL_COLUMN] = {"EG110", "breaking", "ADD COLUMN ... NOT NULL without a default",
		"Add the column with a constant DEFAULT, or nullable; backfill it, then SET NOT NULL inside an approved migration."},
	[R_DROP_DEFAULT] = {"EG111", "breaking", "DROP DEFAULT or DROP IDENTITY",
		"Keep the default until every writer supplies the column, then drop it inside an approved migration."},
	[R_ADD_CHECK] = {"EG112", "breaking", "ADD CHECK constraint",
		"Add the constraint NOT VALID (existing rows are not checked), fix the writers, then VALIDATE CONSTRAINT."},
	[R_ADD_UNIQUE] = {"EG113", "breaking", "ADD UNIQUE, PRIMARY KEY or EXCLUDE constraint, CREATE UNIQUE INDEX",
		"Check for duplicates and fix the writers; then, inside an approved migration, CREATE UNIQUE INDEX CONCURRENTLY and ADD CONSTRAINT ... USING INDEX."},
	[R_ADD_FOREIGN_KEY] = {"EG114", "breaking", "ADD FOREIGN KEY",
		"Add the foreign key NOT VALID, fix the writers and the orphan rows, then VALIDATE CONSTRAINT."},
	[R_ENUM_ADD_VALUE] = {"EG115", "breaking", "ALTER TYPE ... ADD VALUE (with or without BEFORE or AFTER)",
		"Make every reader of the columns handle the new value (an ORM's or a client language's enum type), then add it inside an approved migration."},
	[R_ENUM_RENAME_VALUE] = {"EG116", "breaking", "ALTER TYPE ... RENAME VALUE",
		"Add the new value, update the rows and move the readers to it, inside an approved migration."},
	[R_CONSUMER_COLUMN] = {"EG117", "breaking", "change to a column a registered consumer uses",
		"Agree the change with the consumer (elt.consumers lists them), then make it inside an approved migration."},
	[R_TRUNCATE] = {"EG118", "breaking", "TRUNCATE",
		"Delete the rows you mean to replace in the same transaction as their replacement, or truncate inside an approved migration."},
	[R_RENAME_SCHEMA] = {"EG119", "breaking", "ALTER SCHEMA ... RENAME",
		"Create the new schema with views over the old tables, move the readers, then rename inside an approved migration."},
	[R_DETACH_PARTITION] = {"EG120", "breaking", "ALTER TABLE ... NO INHERIT from a governed parent",
		"Copy the rows the readers still need elsewhere and move the readers first, then detach inside an approved migration."},
	[R_ROW_SECURITY] = {"EG121", "breaking", "ENABLE ROW LEVEL SECURITY",
		"Create the policies that let every reader see what it saw before, then enable row level security inside an approved migration."},
	[R_DROP_UNIQUE] = {"EG122", "breaking", "DROP of a PRIMARY KEY or UNIQUE constraint, or of a unique index",
		"Check that no upsert (INSERT ... ON CONFLICT), foreign key or reader relies on the key, then drop it inside an approved migration."},
	[R_TYPE_REWRITE] = {"EG201", "lock_hazard", "column type change that rewrites the table",
		"Add a column of the new type, backfill it in chunks, then swap the columns inside an approved migration."},
	[R_VOLATILE_DEFAULT] = {"EG202", "lock_hazard", "ADD COLUMN with a volatile default, identity, serial or stored generated column",
		"Add the column with no default or a constant one, set the default for new rows, and backfill the old rows in chunks."},
	[R_NOT_NULL_SCAN] = {"EG203", "lock_hazard", "SET NOT NULL scans the table",
		"Add CHECK (column IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT (no exclusive lock), then SET NOT NULL, which uses the constraint and skips the scan."},
	[R_VALIDATION_SCAN] = {"EG204", "lock_hazard", "ADD CONSTRAINT without NOT VALID",
		"Add the constraint NOT VALID, then VALIDATE CONSTRAINT in a second statement: validation takes a lock that lets reads and writes go on."},
	[R_INDEX_BUILD] = {"EG205", "lock_hazard", "ADD PRIMARY KEY or UNIQUE without USING INDEX",
		"CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX."},
	[R_CREATE_INDEX] = {"EG206", "lock_hazard", "CREATE INDEX without CONCURRENTLY on a large table",
		"Use CREATE INDEX CONCURRENTLY."},
	[R_DROP_INDEX] = {"EG207", "lock_hazard", "DROP INDEX without CONCURRENTLY on a large table",
		"Use DROP INDEX CONCURRENTLY."},
	[R_NO_LOCK_TIMEOUT] = {"EG208", "advice", "a lock that blocks reads or writes, taken with no lock_timeout",
		"SET lock_timeout (for example to '5s') before the statement, and retry it if it times out: while it waits for its lock, every query on the table queues behind it."},
	[R_TABLE_REWRITE] = {"EG209", "lock_hazard", "rewrites a large table under an ACCESS EXCLUSIVE lock: SET TABLESPACE, SET LOGGED, SET UNLOGGED, SET ACCESS METHOD, VACUUM FULL, CLUSTER, SET EXPRESSION of a stored generated column",
		"Rewrite it online with pg_repack, or schedule it in a maintenance window, inside an approved migration."},
	[R_TRANSACTION_BLOCK] = {"EG002", "error", "cannot run inside a transaction block",
		"Run the statement on its own, outside BEGIN ... COMMIT (a migration tool: in a migration that is not run in a transaction)."},
	[R_HELD_LOCK_SCAN] = {"EG210", "lock_hazard", "scan or build while an ACCESS EXCLUSIVE lock on the table is held from an earlier statement or subcommand of the transaction",
		"Commit after the statement that takes the ACCESS EXCLUSIVE lock, and run the validation or build in a transaction of its own (and alone in its ALTER TABLE)."},
	[R_REINDEX] = {"EG211", "lock_hazard", "REINDEX without CONCURRENTLY on a large table",
		"Use REINDEX ... CONCURRENTLY, outside a transaction block."},
	[R_REFRESH_MATVIEW] = {"EG212", "lock_hazard", "REFRESH MATERIALIZED VIEW without CONCURRENTLY on a large materialized view",
		"Give the materialized view a unique index and use REFRESH MATERIALIZED VIEW CONCURRENTLY."},
	[R_DOMAIN_VALIDATE] = {"EG213", "lock_hazard", "ALTER DOMAIN ... VALIDATE CONSTRAINT scans every table with a column of the domain while blocking its writes",
		"Validate in a quiet period, or move to a CHECK constraint on each column (NOT VALID, then VALIDATE CONSTRAINT, which lets writes go on)."},
	[R_INDEX_REBUILD] = {"EG214", "lock_hazard", "column type change that rebuilds the column's indexes on a large table",
		"Add a column of the new type, backfill it in chunks, index it CONCURRENTLY, then swap the columns inside an approved migration."},
	[R_SET_EXPRESSION] = {"EG123", "breaking", "SET EXPRESSION of a generated column: its values change for readers",
		"Add a new generated column beside the old one, move the readers to it, then drop the old one in an approved migration."},
};

/*
 * Append a candidate finding (rule >= 0) or touch (rule -1) to c; a scan,
 * build or rewrite is kept by judging only on a large relation.  Every
 * part of the engine adds its candidates here.
 */
EltCandidate *
EltAddCandidate(EltClassified *c, int rule, Oid relid, AttrNumber attnum,
				const char *colname, char *object, char *reason, int flags)
{
	EltCandidate *cand = palloc0(sizeof(EltCandidate));

	cand->rule = rule;
	cand->relid = relid;
	cand->attnum = attnum;
	cand->colname = colname ? pstrdup(colname) : NULL;
	cand->object = object;
	cand->reason = reason;
	cand->flags = flags;
	cand->recurse = c->recurse;
	/* a scan, build or rewrite matters on a large table only */
	if (OidIsValid(relid) &&
		(rule == R_TYPE_REWRITE || rule == R_VOLATILE_DEFAULT || rule == R_NOT_NULL_SCAN ||
		 rule == R_VALIDATION_SCAN || rule == R_INDEX_BUILD || rule == R_TABLE_REWRITE ||
		 rule == R_INDEX_REBUILD))
	{
		cand->flags |= CAND_NEEDS_SIZE;
		cand->lockmode = AccessExclusiveLock;
	}
	c->cands = lappend(c->cands, cand);
	return cand;
}

/* A relation's schema-qualified name, quoted where needed. */
char *
EltRelDisplay(Oid relid)
{
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));
	char	   *rel = get_rel_name(relid);

	if (nsp == NULL || rel == NULL)
		return psprintf("relation %u", relid);
	return quote_qualified_identifier(nsp, rel);
}

/* A column's qualified name: schema.table.column. */
char *
EltColDisplay(Oid relid, const char *col)
{
	return psprintf("%s.%s", EltRelDisplay(relid), quote_identifier(col));
}

/* ------------------------------------------------------------------------
 * Names: live catalog, or the script's view of it
 * ------------------------------------------------------------------------
 */

/*
 * Schemas a check_ddl script created: they count as existing.  Reset at the
 * start of every check and of every live classification, so that one left
 * behind by a check that failed is never read.
 */
List	   *EltScriptSchemas = NIL;

/*
 * The first schema of search_path that exists, live or created earlier in
 * the script ($user stands for the current role): where an unqualified name
 * is created.
 */
static const char *
creation_schema(void)
{
	char	   *raw = pstrdup(namespace_search_path);
	List	   *names;
	ListCell   *lc;

	if (SplitIdentifierString(raw, ',', &names))
	{
		foreach(lc, names)
		{
			char	   *name = (char *) lfirst(lc);

			if (strcmp(name, "$user") == 0)
				name = GetUserNameFromId(GetUserId(), false);
			if (OidIsValid(get_namespace_oid(name, true)) || EltStringMember(EltScriptSchemas, name))
				return name;
		}
	}
	return "public";
}

/* The qualified name a RangeVar would create or find first. */
char *
EltRangeVarQualified(const RangeVar *rv)
{
	const char *nsp = rv->schemaname;

	if (nsp == NULL)
		nsp = creation_schema();
	return quote_qualified_identifier(nsp, rv->relname);
}

/* Whether a list of C strings holds s. */
bool
EltStringMember(List *list, const char *s)
{
	ListCell   *lc;

	foreach(lc, list)
	{
		if (strcmp((const char *) lfirst(lc), s) == 0)
			return true;
	}
	return false;
}

/* Find a relation, in the catalog and, for check_ddl, in the script. */
EltFound
EltFindRelation(EltClassified *c, const RangeVar *rv, Oid *relid)
{
	EltScript  *s = c->script;

	*relid = InvalidOid;
	if (s != NULL)
	{
		char	   *qual = EltRangeVarQualified(rv);
		ListCell   *ln;
		ListCell   *lo;

		forboth(ln, s->alias_names, lo, s->alias_oids)
		{
			if (strcmp((char *) lfirst(ln), qual) == 0)
			{
				*relid = lfirst_oid(lo);
				return FOUND_LIVE;
			}
		}
		if (EltStringMember(s->created, qual))
			return FOUND_NEW;
	}
	*relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(*relid))
		return FOUND_MISSING;
	if (s != NULL && list_member_oid(s->gone, *relid))
	{
		*relid = InvalidOid;
		return FOUND_MISSING;
	}
	return FOUND_LIVE;
}

/* Key of a column in the script's column map. */
char *
EltColKey(Oid relid, const char *col)
{
	return psprintf("%u.%s", relid, col);
}

/*
 * A column an earlier transaction of the script added: *att as its
 * EltScriptCol says (attnum ELT_COL_EARLIER); FOUND_LIVE.
 */
static EltFound
earlier_column(EltScript *s, Oid relid, const char *col, FormData_pg_attribute *att)
{
	EltScriptCol *k = NULL;
	ListCell   *lc;

	foreach(lc, s->cols)
	{
		EltScriptCol *e = (EltScriptCol *) lfirst(lc);

		if (e->relid == relid && strcmp(e->name, col) == 0)
			k = e;
	}
	memset(att, 0, ATTRIBUTE_FIXED_PART_SIZE);
	att->attrelid = relid;
	namestrcpy(&att->attname, col);
	att->attnum = ELT_COL_EARLIER;
	att->atttypmod = -1;
	if (k != NULL)
	{
		att->atttypid = k->typid;
		att->atttypmod = k->typmod;
		att->attnotnull = k->not_null;
		att->atthasdef = k->has_default;
		att->attcollation = OidIsValid(k->typid) ? get_typcollation(k->typid) : InvalidOid;
	}
	return FOUND_LIVE;
}

/* Find a column of a live relation; *att is a copy of its attribute row. */
EltFound
EltFindColumn(EltClassified *c, Oid relid, const char *col, FormData_pg_attribute *att)
{
	HeapTuple	tup;
	AttrNumber	attnum = InvalidAttrNumber;
	bool		found = false;
	int			last = 0;

	if (c->script != NULL)
	{
		char	   *key = EltColKey(relid, col);
		ListCell   *lk;
		ListCell   *la;

		forboth(lk, c->script->col_keys, la, c->script->col_attnums)
		{
			/* the last entry for a name is what the script did last */
			if (strcmp((char *) lfirst(lk), key) == 0)
			{
				found = true;
				last = lfirst_int(la);
			}
		}
		if (found && last == 0)
			return FOUND_NEW;
		if (found && last == ELT_COL_EARLIER)
			return earlier_column(c->script, relid, col, att);
		if (found && last < 0)
			return FOUND_MISSING;
		if (found)
			attnum = (AttrNumber) last;
	}
	if (attnum != InvalidAttrNumber)
		tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
	else
		tup = SearchSysCacheAttName(relid, col);
	if (!HeapTupleIsValid(tup))
		return FOUND_MISSING;
	memcpy(att, GETSTRUCT(tup), ATTRIBUTE_FIXED_PART_SIZE);
	ReleaseSysCache(tup);
	if (att->attisdropped || att->attnum <= 0)
		return FOUND_MISSING;
	return FOUND_LIVE;
}

/*
 * Whether an inheritor of relid (not relid itself) has a live column col,
 * as the live catalog or the script's view of it says; *att is a copy of
 * its attribute row with attnum 0 (no column of relid).  ADD COLUMN of
 * that name on relid merges into that column instead of adding a new one:
 * the column is not new, and what later renames or retypes it on relid
 * recurses into a column that readers of the inheritor know.
 */
bool
EltInheritorHasColumn(EltClassified *c, Oid relid, const char *col, FormData_pg_attribute *att)
{
	ListCell   *lc;

	if (col == NULL || !has_subclass(relid))
		return false;
	foreach(lc, find_all_inheritors(relid, NoLock, NULL))
	{
		Oid			child = lfirst_oid(lc);

		if (child != relid && EltFindColumn(c, child, col, att) == FOUND_LIVE)
		{
			att->attnum = 0;
			return true;
		}
	}
	return false;
}

/*
 * EG001: the statement names something that is not there (what: "relation",
 * "column", "index", ...).  Only for check_ddl: a live statement fails by
 * itself.  Every "would fail because X does not exist" comes from here.
 */
void
EltAddMissing(EltClassified *c, char *object, const char *what)
{
	if (c->script == NULL)
		return;
	EltAddCandidate(c, R_MISSING, InvalidOid, 0, NULL, object,
					psprintf("%s %s does not exist, so the statement would fail", what, object), 0);
}

/*
 * The key of the table setting an ALTER TABLE subcommand changes:
 * persistence (SET LOGGED / UNLOGGED), tablespace or access method.
 */
char *
EltSettingKey(Oid relid, AlterTableCmd *cmd)
{
	char		kind = cmd->subtype == AT_SetTableSpace ? 't' :
		cmd->subtype == AT_SetAccessMethod ? 'a' : 'p';

	return psprintf("%c%u", kind, relid);
}

/* ------------------------------------------------------------------------
 * Types: widening and rewrites
 * ------------------------------------------------------------------------
 */

/* Precision and scale of a numeric typmod. */
static void
numeric_typmod(int32 typmod, int *precision, int *scale)
{
	int32		tmp = typmod - VARHDRSZ;

	*precision = (tmp >> 16) & 0xffff;
	*scale = ((tmp & 0x7ff) ^ 1024) - 1024;
}

/* Whether numeric(typmod) holds every value of an integer type. */
static bool
numeric_holds_integer(Oid from, int32 typmod)
{
	int			digits = from == INT2OID ? 5 : from == INT4OID ? 10 : 19;
	int			p;
	int			s;

	if (typmod < 0)
		return true;
	numeric_typmod(typmod, &p, &s);
	return s >= 0 && p - s >= digits;
}

/*
 * Whether a change of type modifier within one type keeps every value as it
 * was.  PostgreSQL then also keeps the data (its length-coercion support
 * functions make the cast a no-op), so this answers both questions for a
 * same-type change: widening, and no rewrite.
 */
static bool
typmod_change_keeps_values(Oid typid, int32 omod, int32 nmod)
{
	if (nmod == omod)
		return true;
	switch (typid)
	{
		case VARCHAROID:
		case VARBITOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
		case TIMETZOID:
			return nmod < 0 || (omod >= 0 && nmod >= omod);
		case INTERVALOID:
			return nmod < 0;
		case NUMERICOID:
			{
				int			op,
							os,
							np,
							ns;

				if (nmod < 0)
					return true;
				if (omod < 0)
					return false;
				numeric_typmod(omod, &op, &os);
				numeric_typmod(nmod, &np, &ns);
				return ns == os && np >= op;
			}
		default:
			return false;
	}
}

/* Whether every value of the old type reads the same in the new one. */
bool
EltTypeIsWidening(Oid otyp, int32 omod, Oid ntyp, int32 nmod)
{
	if (otyp == ntyp)
		return typmod_change_keeps_values(otyp, omod, nmod);
	switch (otyp)
	{
		case INT2OID:
			return ntyp == INT4OID || ntyp == INT8OID || ntyp == FLOAT4OID ||
				ntyp == FLOAT8OID ||
				(ntyp == NUMERICOID && numeric_holds_integer(otyp, nmod));
		case INT4OID:
			return ntyp == INT8OID || ntyp == FLOAT8OID ||
				(ntyp == NUMERICOID && numeric_holds_integer(otyp, nmod));
		case INT8OID:
			return ntyp == NUMERICOID && numeric_holds_integer(otyp, nmod);
		case FLOAT4OID:
			return ntyp == FLOAT8OID;
		case VARCHAROID:
			return ntyp == TEXTOID;
		case TEXTOID:
			return ntyp == VARCHAROID && nmod < 0;
		case CIDROID:
			return ntyp == INETOID;
		default:
			return false;
	}
}

/* Whether ALTER COLUMN TYPE rewrites the table (PostgreSQL's own cases). */
bool
EltTypeChangeRewrites(Oid otyp, int32 omod, Oid ntyp, int32 nmod, bool using)
{
	if (using)
		return true;
	/* PostgreSQL keeps the data when the session's time zone is UTC */
	if (otyp == TIMESTAMPOID && ntyp == TIMESTAMPTZOID &&
		(nmod < 0 || (omod >= 0 && nmod >= omod)) &&
		!TimestampTimestampTzRequiresRewrite())
		return false;
	if (otyp == ntyp)
		return !typmod_change_keeps_values(otyp, omod, nmod);
	return !(IsBinaryCoercible(otyp, ntyp) && nmod < 0);
}

/* Whether a raw expression calls a volatile function (any overload). */
bool
EltRawVolatileWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncCall))
	{
		FuncCall   *fc = (FuncCall *) node;
		FuncCandidateList cl = FuncnameGetCandidates(fc->funcname, -1, NIL,
													 false, false, false, true);

		for (; cl != NULL; cl = cl->next)
		{
			if (func_volatile(cl->oid) == PROVOLATILE_VOLATILE)
				return true;
		}
	}
	return raw_expression_tree_walker(node, EltRawVolatileWalker, context);
}

/* Whether a column's type name is one of the serial pseudo-types. */
bool
EltIsSerialType(TypeName *tn)
{
	const char *name;

	if (tn == NULL || list_length(tn->names) != 1 || tn->arrayBounds != NIL)
		return false;
	name = strVal(linitial(tn->names));
	return strcmp(name, "serial") == 0 || strcmp(name, "serial4") == 0 ||
		strcmp(name, "bigserial") == 0 || strcmp(name, "serial8") == 0 ||
		strcmp(name, "smallserial") == 0 || strcmp(name, "serial2") == 0;
}

/* A text[] Datum from a list of C strings. */
Datum
EltTextArray(List *list)
{
	int			n = list_length(list);
	Datum	   *elems = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, list)
		elems[i++] = CStringGetTextDatum((const char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* elt.rules(): the rule table, for the README and for tools. */
PG_FUNCTION_INFO_V1(elt_rules);
Datum
elt_rules(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < R_COUNT; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(EltContractRules[i].code);
		values[1] = CStringGetTextDatum(EltContractRules[i].class);
		values[2] = CStringGetTextDatum(EltContractRules[i].title);
		values[3] = CStringGetTextDatum(EltContractRules[i].suggestion);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Whether a SELECT outputs a column of the given name (a transform writes
 * its target's columns by the names of its output).  Read from the raw
 * parse tree, without looking anything up: the first branch of a set
 * operation names the columns; an unnamed output gets the name PostgreSQL
 * would give it; a * or a VALUES list may output anything, so it counts.
 */
bool
EltSelectWritesColumn(const char *sql, const char *colname)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	SelectStmt *sel;
	ListCell   *lc;

	if (list_length(raw) != 1 || !IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt))
		return true;
	sel = (SelectStmt *) linitial_node(RawStmt, raw)->stmt;
	while (sel->op != SETOP_NONE && sel->larg != NULL)
		sel = sel->larg;
	if (sel->valuesLists != NIL)
		return true;
	foreach(lc, sel->targetList)
	{
		ResTarget  *rt = lfirst_node(ResTarget, lc);
		const char *name = rt->name;

		if (name == NULL && IsA(rt->val, ColumnRef) &&
			IsA(llast(((ColumnRef *) rt->val)->fields), A_Star))
			return true;
		if (name == NULL)
			name = FigureColname(rt->val);
		if (strcmp(name, colname) == 0)
			return true;
	}
	return false;
}
