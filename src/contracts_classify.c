/*
 * contracts.c — backward-compatibility contracts: every DDL statement that
 * touches a governed object is classified from its parse tree, against the
 * live catalog, before PostgreSQL runs it.
 *
 * Owns: the rule table (codes EG1xx breaking, EG2xx lock hazards, EG001 for
 * check_ddl), elt.schema_changes, elt.check_ddl() and elt.rules().
 *
 * Flow of one statement (EltContractsCheck, from ddl_command_start, or from
 * the ProcessUtility hook for TRUNCATE, which fires no event trigger):
 *   1. classify   reads the parse tree in the caller's context (its
 *                 search_path resolves the names) and makes candidates:
 *                 findings, and "touches" of objects with no finding;
 *   2. judge      in the catalog context keeps what concerns governed
 *                 objects, with its policy; adds the dependents of breaking
 *                 findings (pg_depend views, materialized views and
 *                 functions, per column where PostgreSQL records it, and
 *                 registered consumers), table sizes for index builds,
 *                 EG117 for columns a registered consumer uses, EG208;
 *   3. decide     a statement is judged as a whole: outside a migration any
 *                 breaking or lock-hazard finding under policy enforce
 *                 blocks it (SQLSTATE EG000), policy warn raises one
 *                 WARNING, policy off records only; inside a migration
 *                 everything is approved.  What goes ahead is written to
 *                 elt.schema_changes and the audit log in the statement's
 *                 own transaction, so a statement that fails leaves nothing;
 *                 a blocked one is written to the server log.
 *
 * elt.check_ddl() runs steps 1 and 2 on every statement of a script parsed
 * with the raw parser, and remembers simple effects of earlier statements
 * (tables created, renamed or dropped, columns added, renamed or dropped,
 * SET lock_timeout) for the later ones.
 *
 * Locking: classification takes no lock, except to estimate the size of a
 * governed table for CREATE INDEX and DROP INDEX without CONCURRENTLY: it
 * then takes the lock the statement is about to take anyway (SHARE, ACCESS
 * EXCLUSIVE), so that it never upgrades a lock it holds.
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
#include "deploy.h"
#include "ddl_capture.h"
#include "elt_governance.h"
#include "util.h"

int			elt_large_table_rows = 100000;

/* ------------------------------------------------------------------------
 * Rules
 * ------------------------------------------------------------------------
 */
typedef enum EltRuleId
{
	R_MISSING,
	R_DROP_TABLE,
	R_DROP_VIEW,
	R_DROP_SCHEMA,
	R_DROP_COLUMN,
	R_RENAME_TABLE,
	R_RENAME_COLUMN,
	R_TYPE_NARROWING,
	R_DROP_NOT_NULL,
	R_SET_NOT_NULL,
	R_ADD_NOT_NULL_COLUMN,
	R_DROP_DEFAULT,
	R_ADD_CHECK,
	R_ADD_UNIQUE,
	R_ADD_FOREIGN_KEY,
	R_ENUM_ADD_VALUE,
	R_ENUM_RENAME_VALUE,
	R_CONSUMER_COLUMN,
	R_TRUNCATE,
	R_RENAME_SCHEMA,
	R_DETACH_PARTITION,
	R_ROW_SECURITY,
	R_DROP_UNIQUE,
	R_TYPE_REWRITE,
	R_VOLATILE_DEFAULT,
	R_NOT_NULL_SCAN,
	R_VALIDATION_SCAN,
	R_INDEX_BUILD,
	R_CREATE_INDEX,
	R_DROP_INDEX,
	R_NO_LOCK_TIMEOUT,
	R_TABLE_REWRITE,
	R_COUNT
} EltRuleId;

typedef struct EltRule
{
	const char *code;
	const char *class;			/* breaking, lock_hazard, error */
	const char *title;
	const char *suggestion;
} EltRule;

static const EltRule rules[R_COUNT] = {
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
	[R_ENUM_ADD_VALUE] = {"EG115", "breaking", "ALTER TYPE ... ADD VALUE without BEFORE or AFTER",
		"Say where the value goes with BEFORE or AFTER once the readers of the columns handle it, or add it inside an approved migration."},
	[R_ENUM_RENAME_VALUE] = {"EG116", "breaking", "ALTER TYPE ... RENAME VALUE",
		"Add the new value, update the rows and move the readers to it, inside an approved migration."},
	[R_CONSUMER_COLUMN] = {"EG117", "breaking", "change to a column a registered consumer uses",
		"Agree the change with the consumer (elt.consumers lists them), then make it inside an approved migration."},
	[R_TRUNCATE] = {"EG118", "breaking", "TRUNCATE",
		"Delete the rows you mean to replace in the same transaction as their replacement, or truncate inside an approved migration."},
	[R_RENAME_SCHEMA] = {"EG119", "breaking", "ALTER SCHEMA ... RENAME",
		"Create the new schema with views over the old tables, move the readers, then rename inside an approved migration."},
	[R_DETACH_PARTITION] = {"EG120", "breaking", "ALTER TABLE ... DETACH PARTITION or NO INHERIT",
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
	[R_NO_LOCK_TIMEOUT] = {"EG208", "lock_hazard", "hazardous DDL with no lock_timeout",
		"SET lock_timeout (for example to '5s') before the statement, and retry it if it times out."},
	[R_TABLE_REWRITE] = {"EG209", "lock_hazard", "SET TABLESPACE, SET LOGGED, SET UNLOGGED or SET ACCESS METHOD rewrites the table",
		"Schedule it in a maintenance window, inside an approved migration."},
};

#define RULE_IS_BREAKING(r) (strcmp(rules[r].class, "breaking") == 0)
#define RULE_IS_HAZARD(r) (strcmp(rules[r].class, "lock_hazard") == 0)

/* Candidate flags */
#define CAND_NEEDS_SIZE		0x01	/* keep only on a large table */
#define CAND_NOT_NULL_PROOF	0x02	/* drop if a valid CHECK proves NOT NULL */
#define CAND_WRITERS		0x04	/* breaks writers: dependents are functions */

/*
 * One candidate finding, or (rule < 0) a touch: an object the statement
 * changes in a way no rule flags (kept to record a 'safe' change, and for
 * EG117 when it is a column a registered consumer uses).
 */
typedef struct EltCandidate
{
	int			rule;			/* EltRuleId, or -1 for a touch */
	Oid			relid;			/* relation concerned */
	Oid			nspoid;			/* schema concerned */
	Oid			typid;			/* enum type concerned */
	AttrNumber	attnum;			/* column of relid, or 0 */
	char	   *colname;		/* its name */
	char	   *object;
	char	   *reason;
	int			flags;
	LOCKMODE	lockmode;		/* for CAND_NEEDS_SIZE */
	bool		recurse;		/* also acts on inheritors (and partitions) */
	char	   *newname;		/* a renamed column's new name */
	Oid			privrel;		/* relation whose owner may run it, if not relid */
	bool		schema_owner_may;	/* DROP: the schema's owner may too */
	/* set by judge */
	const char *policy;
	List	   *dependents;		/* of char * */
} EltCandidate;

/* What earlier statements of a check_ddl script did. */
typedef struct EltScript
{
	List	   *created;		/* char *: qualified names of new relations */
	List	   *created_types;	/* char *: qualified names of new types */
	List	   *created_schemas;	/* char * */
	List	   *alias_names;	/* char *: new qualified name of a live rel */
	List	   *alias_oids;		/* its oid */
	List	   *gone;			/* oids dropped, renamed or moved away */
	List	   *col_keys;		/* char *: "<oid>.<name>" */
	List	   *col_attnums;	/* int: live attnum, 0 new, -1 gone */
	bool		lock_timeout;	/* a lock_timeout is set */
} EltScript;

typedef enum
{
	FOUND_LIVE,
	FOUND_NEW,					/* created by the script: nothing to judge */
	FOUND_MISSING
} EltFound;

typedef struct EltClassified
{
	List	   *cands;			/* EltCandidate * */
	EltScript  *script;			/* NULL for a live statement */
	MemoryContext cxt;			/* where candidates live */
	Oid			actor;			/* the role running the statement */
	bool		recurse;		/* the statement also acts on inheritors */
} EltClassified;

/* Append a candidate finding (rule >= 0) or touch (rule -1) to c. */
static EltCandidate *
add_cand(EltClassified *c, int rule, Oid relid, AttrNumber attnum,
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
	c->cands = lappend(c->cands, cand);
	return cand;
}

/* A relation's schema-qualified name, quoted where needed. */
static char *
rel_display(Oid relid)
{
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));
	char	   *rel = get_rel_name(relid);

	if (nsp == NULL || rel == NULL)
		return psprintf("relation %u", relid);
	return quote_qualified_identifier(nsp, rel);
}

/* A column's qualified name: schema.table.column. */
static char *
col_display(Oid relid, const char *col)
{
	return psprintf("%s.%s", rel_display(relid), quote_identifier(col));
}

/* ------------------------------------------------------------------------
 * Names: live catalog, or the script's view of it
 * ------------------------------------------------------------------------
 */

static bool string_member(List *list, const char *s);

/*
 * Schemas a check_ddl script created: they count as existing.  Reset at the
 * start of every check and of every live classification, so that one left
 * behind by a check that failed is never read.
 */
static List *script_schemas = NIL;

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
			if (OidIsValid(get_namespace_oid(name, true)) || string_member(script_schemas, name))
				return name;
		}
	}
	return "public";
}

/* The qualified name a RangeVar would create or find first. */
static char *
rangevar_qualified(const RangeVar *rv)
{
	const char *nsp = rv->schemaname;

	if (nsp == NULL)
		nsp = creation_schema();
	return quote_qualified_identifier(nsp, rv->relname);
}

/* Whether a list of C strings holds s. */
static bool
string_member(List *list, const char *s)
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
static EltFound
find_relation(EltClassified *c, const RangeVar *rv, Oid *relid)
{
	EltScript  *s = c->script;

	*relid = InvalidOid;
	if (s != NULL)
	{
		char	   *qual = rangevar_qualified(rv);
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
		if (string_member(s->created, qual))
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
static char *
col_key(Oid relid, const char *col)
{
	return psprintf("%u.%s", relid, col);
}

/* Find a column of a live relation; *att is a copy of its attribute row. */
static EltFound
find_column(EltClassified *c, Oid relid, const char *col, FormData_pg_attribute *att)
{
	HeapTuple	tup;
	AttrNumber	attnum = InvalidAttrNumber;
	bool		found = false;
	int			last = 0;

	if (c->script != NULL)
	{
		char	   *key = col_key(relid, col);
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

/* EG001 for check_ddl: the statement names something that is not there. */
static void
missing(EltClassified *c, char *object, const char *what)
{
	if (c->script == NULL)
		return;					/* a live statement fails by itself */
	add_cand(c, R_MISSING, InvalidOid, 0, NULL, object,
			 psprintf("%s %s does not exist, so the statement would fail", what, object), 0);
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
static bool
type_is_widening(Oid otyp, int32 omod, Oid ntyp, int32 nmod)
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
static bool
type_change_rewrites(Oid otyp, int32 omod, Oid ntyp, int32 nmod, bool using)
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

/* A type with its modifier, as in a column definition. */
static char *
type_display(Oid typid, int32 typmod)
{
	return format_type_with_typemod(typid, typmod);
}

/* Whether a raw expression calls a volatile function (any overload). */
static bool
raw_volatile_walker(Node *node, void *context)
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
	return raw_expression_tree_walker(node, raw_volatile_walker, context);
}

/* Whether a column's type name is one of the serial pseudo-types. */
static bool
is_serial_type(TypeName *tn)
{
	const char *name;

	if (tn == NULL || list_length(tn->names) != 1 || tn->arrayBounds != NIL)
		return false;
	name = strVal(linitial(tn->names));
	return strcmp(name, "serial") == 0 || strcmp(name, "serial4") == 0 ||
		strcmp(name, "bigserial") == 0 || strcmp(name, "serial8") == 0 ||
		strcmp(name, "smallserial") == 0 || strcmp(name, "serial2") == 0;
}

/* ------------------------------------------------------------------------
 * Step 1: classify a statement from its parse tree
 * ------------------------------------------------------------------------
 */

static void classify_add_constraint(EltClassified *c, Oid relid, Constraint *con);

/* Whether a raw expression names a column other than colname. */
static bool
raw_names_other_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, ColumnRef))
	{
		ColumnRef  *ref = (ColumnRef *) node;
		Node	   *last = llast(ref->fields);

		return !(IsA(last, String) && strcmp(strVal(last), (const char *) context) == 0);
	}
	return raw_expression_tree_walker(node, raw_names_other_walker, context);
}

static bool
raw_names_other_column(Node *expr, const char *colname)
{
	return raw_names_other_walker(expr, (void *) colname);
}

/* ADD COLUMN: NOT NULL without a default, per-row defaults, inline constraints. */
static void
classify_add_column(EltClassified *c, Oid relid, AlterTableCmd *cmd)
{
	ColumnDef  *cd = (ColumnDef *) cmd->def;
	ListCell   *lc;
	bool		not_null = false;
	bool		has_default = false;
	bool		rewrite = false;
	bool		builds_index = false;
	List	   *inline_checks = NIL;
	FormData_pg_attribute att;
	char	   *object;

	if (cd == NULL || !IsA(cd, ColumnDef))
		return;
	if (find_column(c, relid, cd->colname, &att) == FOUND_LIVE)
	{
		return;					/* IF NOT EXISTS does nothing; else it fails */
	}
	object = col_display(relid, cd->colname);
	if (is_serial_type(cd->typeName))
	{
		has_default = true;
		rewrite = true;
	}
	foreach(lc, cd->constraints)
	{
		Constraint *con = (Constraint *) lfirst(lc);

		switch (con->contype)
		{
			case CONSTR_NOTNULL:
				not_null = true;
				break;
			case CONSTR_PRIMARY:
				not_null = true;
				builds_index = true;
				break;
			case CONSTR_UNIQUE:
				builds_index = true;
				break;
			case CONSTR_DEFAULT:
				has_default = true;
				if (raw_volatile_walker(con->raw_expr, NULL))
					rewrite = true;
				break;
			case CONSTR_IDENTITY:
			case CONSTR_GENERATED:
				has_default = true;
				rewrite = true;
				break;
			case CONSTR_CHECK:
				/* checked against every row: matters once it can fail on them */
				if (!con->skip_validation)
					inline_checks = lappend(inline_checks, con);
				break;
			default:
				break;
		}
	}
	foreach(lc, inline_checks)
	{
		Constraint *con = (Constraint *) lfirst(lc);

		if (has_default || raw_names_other_column(con->raw_expr, cd->colname))
			classify_add_constraint(c, relid, con);
	}
	if (not_null && !has_default)
		add_cand(c, R_ADD_NOT_NULL_COLUMN, relid, 0, NULL, object,
				 psprintf("adds column %s NOT NULL without a default: every INSERT that does not name it fails",
						  object), CAND_WRITERS);
	if (rewrite)
		add_cand(c, R_VOLATILE_DEFAULT, relid, 0, NULL, object,
				 psprintf("adds column %s whose default is computed per row: the table is rewritten under an ACCESS EXCLUSIVE lock",
						  object), 0);
	if (builds_index)
		add_cand(c, R_INDEX_BUILD, relid, 0, NULL, object,
				 psprintf("adds column %s with a PRIMARY KEY or UNIQUE constraint: its index is built under an ACCESS EXCLUSIVE lock",
						  object), 0);
	if (!not_null || has_default)
		add_cand(c, -1, relid, 0, NULL, object, NULL, 0);
}

/*
 * Whether a USING expression is just the column, or the column cast to a
 * type: the conversion ALTER COLUMN TYPE would make without it.
 */
static bool
using_is_plain(Node *expr, const char *colname)
{
	ColumnRef  *ref;

	if (IsA(expr, TypeCast))
		expr = ((TypeCast *) expr)->arg;
	if (!IsA(expr, ColumnRef))
		return false;
	ref = (ColumnRef *) expr;
	return list_length(ref->fields) == 1 && IsA(linitial(ref->fields), String) &&
		strcmp(strVal(linitial(ref->fields)), colname) == 0;
}

/* ALTER COLUMN TYPE: widening or not, rewrite or not, collation. */
static void
classify_type_change(EltClassified *c, Oid relid, AlterTableCmd *cmd)
{
	ColumnDef  *cd = (ColumnDef *) cmd->def;
	FormData_pg_attribute att;
	EltFound	f;
	Type		tup;
	int32		nmod = -1;
	Oid			ntyp;
	char	   *object;
	char	   *from;
	char	   *to;
	bool		widening;
	bool		rewrite;
	bool		using;
	bool		collation_changes = false;

	f = find_column(c, relid, cmd->name, &att);
	if (f == FOUND_NEW)
		return;
	object = col_display(relid, cmd->name);
	if (f == FOUND_MISSING)
	{
		missing(c, object, "column");
		return;
	}
	if (cd == NULL || !IsA(cd, ColumnDef) || cd->typeName == NULL)
		return;
	tup = LookupTypeName(NULL, cd->typeName, &nmod, true);
	if (tup == NULL)
		return;					/* a type the script creates: cannot judge */
	ntyp = typeTypeId(tup);
	ReleaseSysCache(tup);

	using = cd->raw_default != NULL && !using_is_plain(cd->raw_default, cmd->name);
	if (cd->collClause != NULL)
	{
		Oid			coll = get_collation_oid(cd->collClause->collname, true);

		if (OidIsValid(coll) && coll != att.attcollation)
			collation_changes = true;
	}
	if (ntyp == att.atttypid && nmod == att.atttypmod && !using && !collation_changes)
		return;					/* the type it already has: no change */
	from = type_display(att.atttypid, att.atttypmod);
	to = type_display(ntyp, nmod);
	widening = type_is_widening(att.atttypid, att.atttypmod, ntyp, nmod) && !using;
	rewrite = type_change_rewrites(att.atttypid, att.atttypmod, ntyp, nmod, using);
	if (collation_changes && widening)
		add_cand(c, R_TYPE_NARROWING, relid, att.attnum, cmd->name, object,
				 psprintf("changes the collation of column %s: ordering, comparisons and unique keys change for readers",
						  object), 0);
	if (!widening)
		add_cand(c, R_TYPE_NARROWING, relid, att.attnum, cmd->name, object,
				 psprintf("changes column %s from %s to %s, which is not a widening: values or their text change for readers",
						  object, from, to), 0);
	if (rewrite)
		add_cand(c, R_TYPE_REWRITE, relid, att.attnum, cmd->name, object,
				 psprintf("changes column %s from %s to %s, which rewrites the table and its indexes under an ACCESS EXCLUSIVE lock",
						  object, from, to), 0);
	add_cand(c, -1, relid, att.attnum, cmd->name, object, NULL, 0);
}

/* A column subcommand: look the column up; returns false if nothing to judge. */
static bool
column_of(EltClassified *c, Oid relid, const char *name, FormData_pg_attribute *att,
		  char **object)
{
	EltFound	f;

	if (name == NULL)
		return false;
	f = find_column(c, relid, name, att);
	if (f == FOUND_NEW)
		return false;
	*object = col_display(relid, name);
	if (f == FOUND_MISSING)
	{
		missing(c, *object, "column");
		return false;
	}
	return true;
}

/* Whether the columns of an existing index are all NOT NULL. */
static bool
index_columns_not_null(Oid relid, const char *indexname)
{
	Oid			indexoid = get_relname_relid(indexname, get_rel_namespace(relid));
	HeapTuple	tup;
	Form_pg_index idx;
	bool		all = true;
	int			i;

	if (!OidIsValid(indexoid))
		return true;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(tup))
		return true;
	idx = (Form_pg_index) GETSTRUCT(tup);
	for (i = 0; i < idx->indnkeyatts; i++)
	{
		AttrNumber	a = idx->indkey.values[i];
		HeapTuple	atup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(a));

		if (HeapTupleIsValid(atup))
		{
			if (!((Form_pg_attribute) GETSTRUCT(atup))->attnotnull)
				all = false;
			ReleaseSysCache(atup);
		}
	}
	ReleaseSysCache(tup);
	return all;
}

static void
classify_add_constraint(EltClassified *c, Oid relid, Constraint *con)
{
	char	   *table = rel_display(relid);
	char	   *name = con->conname ? psprintf("%s on %s", quote_identifier(con->conname), table) :
		psprintf("(unnamed) on %s", table);

	switch (con->contype)
	{
		case CONSTR_CHECK:
			if (con->skip_validation)
				break;
			add_cand(c, R_ADD_CHECK, relid, 0, NULL, table,
					 psprintf("adds CHECK constraint %s: writes that break it start to fail", name),
					 CAND_WRITERS);
			add_cand(c, R_VALIDATION_SCAN, relid, 0, NULL, table,
					 psprintf("adds CHECK constraint %s without NOT VALID: the whole table is scanned under an ACCESS EXCLUSIVE lock", name), 0);
			break;
		case CONSTR_FOREIGN:
			if (con->skip_validation)
				break;
			add_cand(c, R_ADD_FOREIGN_KEY, relid, 0, NULL, table,
					 psprintf("adds FOREIGN KEY %s: writes of keys missing from the referenced table start to fail", name),
					 CAND_WRITERS);
			add_cand(c, R_VALIDATION_SCAN, relid, 0, NULL, table,
					 psprintf("adds FOREIGN KEY %s without NOT VALID: the whole table is scanned while writes are blocked", name), 0);
			break;
		case CONSTR_PRIMARY:
		case CONSTR_UNIQUE:
		case CONSTR_EXCLUSION:
			if (con->indexname != NULL)
			{
				/* the index already enforces it; a primary key adds NOT NULL */
				if (con->contype == CONSTR_PRIMARY &&
					!index_columns_not_null(relid, con->indexname))
				{
					add_cand(c, R_SET_NOT_NULL, relid, 0, NULL, table,
							 psprintf("adds PRIMARY KEY %s over nullable columns, which become NOT NULL: writers that store NULL start to fail", name),
							 CAND_WRITERS);
					add_cand(c, R_NOT_NULL_SCAN, relid, 0, NULL, table,
							 psprintf("adds PRIMARY KEY %s over nullable columns: the whole table is scanned under an ACCESS EXCLUSIVE lock", name), 0);
				}
				break;
			}
			add_cand(c, R_ADD_UNIQUE, relid, 0, NULL, table,
					 psprintf("adds %s constraint %s: writes of duplicate values start to fail",
							  con->contype == CONSTR_PRIMARY ? "PRIMARY KEY" :
							  con->contype == CONSTR_UNIQUE ? "UNIQUE" : "EXCLUDE", name),
					 CAND_WRITERS);
			add_cand(c, R_INDEX_BUILD, relid, 0, NULL, table,
					 psprintf("adds constraint %s without USING INDEX: its index is built under an ACCESS EXCLUSIVE lock", name), 0);
			break;
		default:
			break;
	}
}

/* The type of a table's constraint, or '\0' if it has none of that name. */
static char
constraint_type(Oid relid, const char *conname)
{
	Oid			conoid = get_relation_constraint_oid(relid, conname, true);
	HeapTuple	tup;
	char		contype = '\0';

	if (!OidIsValid(conoid))
		return '\0';
	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (HeapTupleIsValid(tup))
	{
		contype = ((Form_pg_constraint) GETSTRUCT(tup))->contype;
		ReleaseSysCache(tup);
	}
	return contype;
}

/* ALTER TABLE: every subcommand on a table or partitioned table. */
static void
classify_alter_table(EltClassified *c, AlterTableStmt *stmt)
{
	Oid			relid;
	EltFound	f;
	ListCell   *lc;
	char		relkind;

	if (stmt->objtype != OBJECT_TABLE || stmt->relation == NULL)
		return;
	f = find_relation(c, stmt->relation, &relid);
	if (f == FOUND_NEW)
		return;
	if (f == FOUND_MISSING)
	{
		if (!stmt->missing_ok)
			missing(c, rangevar_qualified(stmt->relation), "relation");
		return;
	}
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		return;

	c->recurse = stmt->relation->inh;
	add_cand(c, -1, relid, 0, NULL, rel_display(relid), NULL, 0);
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
		FormData_pg_attribute att;
		char	   *object;

		switch (cmd->subtype)
		{
			case AT_AddColumn:
				classify_add_column(c, relid, cmd);
				break;
			case AT_DropColumn:
				{
					EltFound	cf;

					cf = find_column(c, relid, cmd->name, &att);
					if (cf == FOUND_NEW)
						break;
					object = col_display(relid, cmd->name);
					if (cf == FOUND_MISSING)
					{
						if (!cmd->missing_ok)
							missing(c, object, "column");
						break;
					}
					add_cand(c, R_DROP_COLUMN, relid, att.attnum, cmd->name, object,
							 psprintf("drops column %s: readers that select it fail", object), 0);
					break;
				}
			case AT_AlterColumnType:
				classify_type_change(c, relid, cmd);
				break;
			case AT_SetNotNull:
				if (!column_of(c, relid, cmd->name, &att, &object) || att.attnotnull)
					break;
				add_cand(c, R_SET_NOT_NULL, relid, att.attnum, cmd->name, object,
						 psprintf("sets column %s NOT NULL: writers that store NULL in it start to fail", object),
						 CAND_WRITERS | CAND_NOT_NULL_PROOF);
				add_cand(c, R_NOT_NULL_SCAN, relid, att.attnum, cmd->name, object,
						 psprintf("sets column %s NOT NULL: the whole table is scanned under an ACCESS EXCLUSIVE lock", object),
						 CAND_NOT_NULL_PROOF);
				break;
			case AT_DropNotNull:
				if (!column_of(c, relid, cmd->name, &att, &object) || !att.attnotnull)
					break;
				add_cand(c, R_DROP_NOT_NULL, relid, att.attnum, cmd->name, object,
						 psprintf("drops NOT NULL on column %s: readers that rely on a value meet NULL", object), 0);
				break;
			case AT_ColumnDefault:
				if (!column_of(c, relid, cmd->name, &att, &object))
					break;
				if (cmd->def == NULL ||
					(IsA(cmd->def, A_Const) && ((A_Const *) cmd->def)->isnull))
				{
					if (att.atthasdef)
						add_cand(c, R_DROP_DEFAULT, relid, att.attnum, cmd->name, object,
								 psprintf("drops the default of column %s: writers that leave it out store NULL or fail", object),
								 CAND_WRITERS);
				}
				else
					add_cand(c, -1, relid, att.attnum, cmd->name, object, NULL, 0);
				break;
			case AT_DropIdentity:
				if (!column_of(c, relid, cmd->name, &att, &object) || att.attidentity == '\0')
					break;
				add_cand(c, R_DROP_DEFAULT, relid, att.attnum, cmd->name, object,
						 psprintf("drops the identity of column %s: writers that leave it out store NULL or fail", object),
						 CAND_WRITERS);
				break;
			case AT_AddIdentity:
			case AT_SetIdentity:
			case AT_DropExpression:
			case AT_SetStorage:
			case AT_SetCompression:
			case AT_SetStatistics:
			case AT_SetOptions:
			case AT_ResetOptions:
				if (column_of(c, relid, cmd->name, &att, &object) &&
					(cmd->subtype == AT_AddIdentity || cmd->subtype == AT_SetIdentity ||
					 cmd->subtype == AT_DropExpression))
					add_cand(c, -1, relid, att.attnum, cmd->name, object, NULL, 0);
				break;
			case AT_AddConstraint:
				if (cmd->def != NULL && IsA(cmd->def, Constraint))
					classify_add_constraint(c, relid, (Constraint *) cmd->def);
				break;
			case AT_DropInherit:
				if (cmd->def != NULL && IsA(cmd->def, RangeVar))
				{
					Oid			parent = RangeVarGetRelid((RangeVar *) cmd->def, NoLock, true);

					if (OidIsValid(parent))
					{
						EltCandidate *cand;

						/* the parent's readers lose this table's rows */
						cand = add_cand(c, R_DETACH_PARTITION, parent, 0, NULL, rel_display(parent),
										psprintf("takes %s out of the inheritance of %s: readers of %s no longer see its rows",
												 rel_display(relid), rel_display(parent), rel_display(parent)), 0);
						cand->recurse = false;
						cand->privrel = relid;	/* the child's owner runs it */
					}
				}
				break;
			case AT_EnableRowSecurity:
			case AT_ForceRowSecurity:
				add_cand(c, R_ROW_SECURITY, relid, 0, NULL, rel_display(relid),
						 psprintf("%s row level security on %s: readers no policy lets through see no rows",
								  cmd->subtype == AT_EnableRowSecurity ? "enables" : "forces",
								  rel_display(relid)), 0);
				break;
			case AT_DropConstraint:
				if (cmd->name != NULL)
				{
					char		contype = constraint_type(relid, cmd->name);

					if (contype == CONSTRAINT_PRIMARY || contype == CONSTRAINT_UNIQUE)
						add_cand(c, R_DROP_UNIQUE, relid, 0, NULL, rel_display(relid),
								 psprintf("drops %s constraint %s of %s: upserts (ON CONFLICT) and foreign keys that rely on it fail, and duplicates become possible",
										  contype == CONSTRAINT_PRIMARY ? "PRIMARY KEY" : "UNIQUE",
										  quote_identifier(cmd->name), rel_display(relid)), 0);
				}
				break;
			case AT_DetachPartition:
				if (cmd->def != NULL && IsA(cmd->def, PartitionCmd))
				{
					Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
														NoLock, true);

					if (OidIsValid(part))
					{
						EltCandidate *cand;

						cand = add_cand(c, R_DETACH_PARTITION, relid, 0, NULL, rel_display(relid),
										psprintf("detaches partition %s from %s: readers of %s no longer see its rows",
												 rel_display(part), rel_display(relid), rel_display(relid)), 0);
						cand->recurse = false;	/* siblings keep their rows */
					}
				}
				break;
			case AT_SetTableSpace:
			case AT_SetLogged:
			case AT_SetUnLogged:
			case AT_SetAccessMethod:
				if (relkind == RELKIND_PARTITIONED_TABLE)
					break;		/* no storage of its own to copy */
				add_cand(c, R_TABLE_REWRITE, relid, 0, NULL, rel_display(relid),
						 psprintf("%s copies every row of %s under an ACCESS EXCLUSIVE lock",
								  cmd->subtype == AT_SetTableSpace ? "SET TABLESPACE" :
								  cmd->subtype == AT_SetLogged ? "SET LOGGED" :
								  cmd->subtype == AT_SetUnLogged ? "SET UNLOGGED" :
								  "SET ACCESS METHOD",
								  rel_display(relid)), 0);
				break;
			default:
				break;
		}
	}
}

/* Views and materialized views. */
static bool
is_view_kind(char relkind)
{
	return relkind == RELKIND_VIEW || relkind == RELKIND_MATVIEW;
}

/* Ordinary and partitioned tables. */
static bool
is_table_kind(char relkind)
{
	return relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE;
}

static void classify_type_rename(EltClassified *c, List *names, const char *what,
								 const char *to);

/* RENAME of a schema, table, view, materialized view or column. */
static void
classify_rename(EltClassified *c, RenameStmt *stmt)
{
	Oid			relid;
	EltFound	f;
	char		relkind;

	switch (stmt->renameType)
	{
		case OBJECT_SCHEMA:
			{
				Oid			nsp = get_namespace_oid(stmt->subname, true);
				EltCandidate *cand;

				if (!OidIsValid(nsp))
					return;
				cand = add_cand(c, R_RENAME_SCHEMA, InvalidOid, 0, NULL,
								pstrdup(quote_identifier(stmt->subname)),
								psprintf("renames schema %s to %s: readers that name its tables and views fail",
										 quote_identifier(stmt->subname),
										 quote_identifier(stmt->newname)), 0);
				cand->nspoid = nsp;
				return;
			}
		case OBJECT_TYPE:
		case OBJECT_DOMAIN:
			if (stmt->object != NULL && IsA(stmt->object, List))
				classify_type_rename(c, (List *) stmt->object, "renames",
									 psprintf("to %s", quote_identifier(stmt->newname)));
			return;
		case OBJECT_TABLE:
		case OBJECT_VIEW:
		case OBJECT_MATVIEW:
		case OBJECT_COLUMN:
			break;
		default:
			return;
	}
	if (stmt->relation == NULL)
		return;
	f = find_relation(c, stmt->relation, &relid);
	if (f == FOUND_NEW)
		return;
	if (f == FOUND_MISSING)
	{
		if (!stmt->missing_ok)
			missing(c, rangevar_qualified(stmt->relation), "relation");
		return;
	}
	relkind = get_rel_relkind(relid);
	if (!is_table_kind(relkind) && !is_view_kind(relkind))
		return;
	if (stmt->renameType == OBJECT_COLUMN)
	{
		FormData_pg_attribute att;
		char	   *object;
		EltCandidate *cand;

		if (!column_of(c, relid, stmt->subname, &att, &object))
			return;
		c->recurse = stmt->relation->inh;
		cand = add_cand(c, R_RENAME_COLUMN, relid, att.attnum, stmt->subname, object,
						psprintf("renames column %s to %s: readers that select it by its old name fail",
								 object, quote_identifier(stmt->newname)), 0);
		cand->newname = pstrdup(stmt->newname);
		return;
	}
	add_cand(c, R_RENAME_TABLE, relid, 0, NULL, rel_display(relid),
			 psprintf("renames %s %s to %s: readers that name it fail",
					  is_view_kind(relkind) ? "view" : "table", rel_display(relid),
					  quote_identifier(stmt->newname)), 0);
}

/* ALTER TABLE/VIEW ... SET SCHEMA: a rename of the qualified name. */
static void
classify_set_schema(EltClassified *c, AlterObjectSchemaStmt *stmt)
{
	Oid			relid;
	EltFound	f;
	char		relkind;

	if ((stmt->objectType == OBJECT_TYPE || stmt->objectType == OBJECT_DOMAIN) &&
		stmt->object != NULL && IsA(stmt->object, List))
	{
		classify_type_rename(c, (List *) stmt->object, "moves",
							 psprintf("to schema %s", quote_identifier(stmt->newschema)));
		return;
	}
	if ((stmt->objectType != OBJECT_TABLE && stmt->objectType != OBJECT_VIEW &&
		 stmt->objectType != OBJECT_MATVIEW) || stmt->relation == NULL)
		return;
	f = find_relation(c, stmt->relation, &relid);
	if (f == FOUND_NEW)
		return;
	if (f == FOUND_MISSING)
	{
		if (!stmt->missing_ok)
			missing(c, rangevar_qualified(stmt->relation), "relation");
		return;
	}
	relkind = get_rel_relkind(relid);
	if (!is_table_kind(relkind) && !is_view_kind(relkind))
		return;
	/* elt.deploy_init() puts a view of the same name and columns in its place */
	if (relid == EltDeployMovingTable)
		return;
	add_cand(c, R_RENAME_TABLE, relid, 0, NULL, rel_display(relid),
			 psprintf("moves %s %s to schema %s: readers that name it fail",
					  is_view_kind(relkind) ? "view" : "table", rel_display(relid),
					  quote_identifier(stmt->newschema)), 0);
}

/* DROP SCHEMA, TABLE, VIEW, MATERIALIZED VIEW or INDEX, several at once. */
static void
classify_drop(EltClassified *c, DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		Node	   *obj = (Node *) lfirst(lc);

		if (stmt->removeType == OBJECT_SCHEMA)
		{
			const char *name = strVal(obj);
			Oid			nsp = get_namespace_oid(name, true);
			EltCandidate *cand;

			if (!OidIsValid(nsp))
			{
				if (!stmt->missing_ok &&
					(c->script == NULL || !string_member(c->script->created_schemas, name)))
					missing(c, pstrdup(quote_identifier(name)), "schema");
				continue;
			}
			cand = add_cand(c, R_DROP_SCHEMA, InvalidOid, 0, NULL,
							pstrdup(quote_identifier(name)),
							psprintf("drops schema %s%s: readers of its tables and views fail",
									 quote_identifier(name),
									 stmt->behavior == DROP_CASCADE ? " and everything in it" : ""), 0);
			cand->nspoid = nsp;
		}
		else if (stmt->removeType == OBJECT_TABLE || stmt->removeType == OBJECT_VIEW ||
				 stmt->removeType == OBJECT_MATVIEW || stmt->removeType == OBJECT_INDEX)
		{
			RangeVar   *rv = makeRangeVarFromNameList(castNode(List, obj));
			Oid			relid;
			EltFound	f = find_relation(c, rv, &relid);
			char		relkind;

			if (f == FOUND_NEW)
				continue;
			if (f == FOUND_MISSING)
			{
				if (!stmt->missing_ok)
					missing(c, rangevar_qualified(rv), "relation");
				continue;
			}
			relkind = get_rel_relkind(relid);
			if (stmt->removeType == OBJECT_INDEX)
			{
				Oid			table;

				if (relkind != RELKIND_INDEX && relkind != RELKIND_PARTITIONED_INDEX)
					continue;
				table = IndexGetRelation(relid, true);
				if (!OidIsValid(table))
					continue;
				{
					HeapTuple	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(relid));

					if (HeapTupleIsValid(itup))
					{
						if (((Form_pg_index) GETSTRUCT(itup))->indisunique)
							add_cand(c, R_DROP_UNIQUE, table, 0, NULL, rel_display(table),
									 psprintf("drops unique index %s of %s: upserts (ON CONFLICT) that rely on it fail, and duplicates become possible",
											  rel_display(relid), rel_display(table)), 0);
						ReleaseSysCache(itup);
					}
				}
				if (!stmt->concurrent)
				{
					EltCandidate *cand;

					cand = add_cand(c, R_DROP_INDEX, table, 0, NULL, rel_display(relid),
									psprintf("drops index %s of %s without CONCURRENTLY: reads and writes of the table wait for it",
											 rel_display(relid), rel_display(table)),
									CAND_NEEDS_SIZE);
					cand->lockmode = AccessExclusiveLock;
				}
				add_cand(c, -1, table, 0, NULL, rel_display(table), NULL, 0);
			}
			else if (is_table_kind(relkind))
			{
				/* partitions go with their table, children with CASCADE */
				c->recurse = true;
				add_cand(c, R_DROP_TABLE, relid, 0, NULL, rel_display(relid),
						 psprintf("drops table %s: its readers fail and its rows are gone", rel_display(relid)), 0);
				c->recurse = false;
			}
			else if (is_view_kind(relkind))
				add_cand(c, R_DROP_VIEW, relid, 0, NULL, rel_display(relid),
						 psprintf("drops %s %s: its readers fail",
								  relkind == RELKIND_MATVIEW ? "materialized view" : "view",
								  rel_display(relid)), 0);
		}
	}
}

/* A type named by a list of names, or InvalidOid. */
static Oid
type_from_names(List *names)
{
	Type		tup = LookupTypeName(NULL, makeTypeNameFromNameList(names), NULL, true);
	Oid			typid;

	if (tup == NULL)
		return InvalidOid;
	typid = typeTypeId(tup);
	ReleaseSysCache(tup);
	return typid;
}

/*
 * A rename or move of a type or domain: readers and writers that name it
 * (casts, function signatures) fail.  Judged by the governed columns that
 * use it.
 */
static void
classify_type_rename(EltClassified *c, List *names, const char *what, const char *to)
{
	Oid			typid = type_from_names(names);
	EltCandidate *cand;
	char	   *object;

	if (!OidIsValid(typid))
		return;
	object = format_type_be_qualified(typid);
	cand = add_cand(c, R_RENAME_TABLE, InvalidOid, 0, NULL, object,
					psprintf("%s type %s %s: readers and writers that name it (casts, function signatures) fail",
							 what, object, to), 0);
	cand->typid = typid;
}

/* ALTER DOMAIN: its default, NOT NULL and constraints apply to every column of it. */
static void
classify_domain(EltClassified *c, AlterDomainStmt *stmt)
{
	Oid			typid = type_from_names(stmt->typeName);
	char	   *object;
	HeapTuple	tup;
	bool		notnull = false;
	bool		hasdefault = false;
	EltCandidate *cand = NULL;
	EltCandidate *hazard = NULL;

	if (!OidIsValid(typid) || get_typtype(typid) != TYPTYPE_DOMAIN)
	{
		if (!OidIsValid(typid) && c->script != NULL &&
			!string_member(c->script->created_types, NameListToQuotedString(stmt->typeName)))
			missing(c, NameListToQuotedString(stmt->typeName), "domain");
		return;
	}
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (HeapTupleIsValid(tup))
	{
		Form_pg_type form = (Form_pg_type) GETSTRUCT(tup);

		notnull = form->typnotnull;
		hasdefault = !heap_attisnull(tup, Anum_pg_type_typdefault, NULL);
		ReleaseSysCache(tup);
	}
	object = format_type_be_qualified(typid);
	switch (stmt->subtype)
	{
		case 'T':
			if (stmt->def == NULL && hasdefault)
				cand = add_cand(c, R_DROP_DEFAULT, InvalidOid, 0, NULL, object,
								psprintf("drops the default of domain %s: writers that leave its columns out store NULL or fail",
										 object), CAND_WRITERS);
			break;
		case 'N':
			if (notnull)
				cand = add_cand(c, R_DROP_NOT_NULL, InvalidOid, 0, NULL, object,
								psprintf("drops NOT NULL on domain %s: readers of its columns meet NULL", object), 0);
			break;
		case 'O':
			if (!notnull)
			{
				cand = add_cand(c, R_SET_NOT_NULL, InvalidOid, 0, NULL, object,
								psprintf("sets domain %s NOT NULL: writers that store NULL in its columns start to fail",
										 object), CAND_WRITERS);
				hazard = add_cand(c, R_NOT_NULL_SCAN, InvalidOid, 0, NULL, object,
								  psprintf("sets domain %s NOT NULL: every table with a column of it is scanned", object), 0);
			}
			break;
		case 'C':
			if (stmt->def != NULL && IsA(stmt->def, Constraint) &&
				!((Constraint *) stmt->def)->skip_validation)
			{
				cand = add_cand(c, R_ADD_CHECK, InvalidOid, 0, NULL, object,
								psprintf("adds a constraint to domain %s: writes of its columns that break it start to fail",
										 object), CAND_WRITERS);
				hazard = add_cand(c, R_VALIDATION_SCAN, InvalidOid, 0, NULL, object,
								  psprintf("adds a constraint to domain %s without NOT VALID: every table with a column of it is scanned",
										   object), 0);
			}
			break;
		default:
			break;
	}
	if (cand == NULL)
		cand = add_cand(c, -1, InvalidOid, 0, NULL, object, NULL, 0);
	cand->typid = typid;
	if (hazard != NULL)
		hazard->typid = typid;
}

/*
 * Whether an ALTER TYPE ... ADD VALUE IF NOT EXISTS will find its value
 * there and do nothing.  Also used by the version recorder.
 */
bool
EltEnumAddFindsValue(AlterEnumStmt *stmt)
{
	Oid			typid;

	if (stmt->oldVal != NULL || !stmt->skipIfNewValExists)
		return false;
	typid = type_from_names(stmt->typeName);
	return OidIsValid(typid) &&
		SearchSysCacheExists2(ENUMTYPOIDNAME, ObjectIdGetDatum(typid),
							  CStringGetDatum(stmt->newVal));
}

/* ALTER TYPE ... ADD VALUE / RENAME VALUE on an enum. */
static void
classify_enum(EltClassified *c, AlterEnumStmt *stmt)
{
	TypeName   *tn = makeTypeNameFromNameList(stmt->typeName);
	Type		tup = LookupTypeName(NULL, tn, NULL, true);
	Oid			typid;
	char	   *object;
	EltCandidate *cand;

	if (tup == NULL)
	{
		if (c->script != NULL &&
			!string_member(c->script->created_types, NameListToQuotedString(stmt->typeName)))
			missing(c, NameListToQuotedString(stmt->typeName), "type");
		return;
	}
	typid = typeTypeId(tup);
	ReleaseSysCache(tup);
	if (get_typtype(typid) != TYPTYPE_ENUM)
		return;
	object = format_type_be_qualified(typid);
	if (EltEnumAddFindsValue(stmt))
		return;					/* IF NOT EXISTS on a value that exists */
	if (stmt->oldVal != NULL)
		cand = add_cand(c, R_ENUM_RENAME_VALUE, InvalidOid, 0, NULL, object,
						psprintf("renames value %s of type %s to %s: rows and readers that use the old value change meaning",
								 quote_literal_cstr(stmt->oldVal), object,
								 quote_literal_cstr(stmt->newVal)), 0);
	else if (stmt->newValNeighbor == NULL)
		cand = add_cand(c, R_ENUM_ADD_VALUE, InvalidOid, 0, NULL, object,
						psprintf("adds value %s to type %s without BEFORE or AFTER: readers that handle a closed set of values meet one they do not know, sorted last",
								 quote_literal_cstr(stmt->newVal), object), 0);
	else
		cand = add_cand(c, -1, InvalidOid, 0, NULL, object, NULL, 0);
	cand->typid = typid;
}

/* CREATE INDEX: unique (stricter writes) and blocking builds. */
static void
classify_index(EltClassified *c, IndexStmt *stmt)
{
	Oid			relid;
	EltFound	f;
	char	   *table;
	char	   *name;

	if (stmt->relation == NULL)
		return;
	f = find_relation(c, stmt->relation, &relid);
	if (f == FOUND_NEW)
		return;
	if (f == FOUND_MISSING)
	{
		missing(c, rangevar_qualified(stmt->relation), "relation");
		return;
	}
	if (!is_table_kind(get_rel_relkind(relid)))
		return;
	/* IF NOT EXISTS on an index that exists does nothing */
	if (stmt->if_not_exists && stmt->idxname != NULL &&
		OidIsValid(get_relname_relid(stmt->idxname, get_rel_namespace(relid))))
		return;
	c->recurse = stmt->relation->inh;
	table = rel_display(relid);
	name = stmt->idxname ? pstrdup(quote_identifier(stmt->idxname)) : "(unnamed)";
	if (stmt->unique)
		add_cand(c, R_ADD_UNIQUE, relid, 0, NULL, table,
				 psprintf("creates unique index %s on %s: writes of duplicate values start to fail",
						  name, table), CAND_WRITERS);
	/* ON ONLY a partitioned table builds nothing but an invalid parent index */
	if (!stmt->concurrent &&
		!(get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE && !stmt->relation->inh))
	{
		EltCandidate *cand;

		cand = add_cand(c, R_CREATE_INDEX, relid, 0, NULL, table,
						psprintf("creates index %s on %s without CONCURRENTLY: writes to the table wait until it is built",
								 name, table), CAND_NEEDS_SIZE);
		cand->lockmode = ShareLock;
	}
	add_cand(c, -1, relid, 0, NULL, table, NULL, 0);
}

/* TRUNCATE (from the ProcessUtility hook). */
static void
classify_truncate(EltClassified *c, TruncateStmt *stmt)
{
	ListCell   *lc;
	List	   *named = NIL;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = (RangeVar *) lfirst(lc);
		Oid			relid;

		if (find_relation(c, rv, &relid) != FOUND_LIVE)
			continue;
		if (!is_table_kind(get_rel_relkind(relid)))
			continue;
		c->recurse = rv->inh;
		add_cand(c, R_TRUNCATE, relid, 0, NULL, rel_display(relid),
				 psprintf("truncates %s: its readers see no rows until it is loaded again",
						  rel_display(relid)), 0);
		named = lappend_oid(named, relid);
	}
	/* CASCADE also truncates every table that references them, transitively */
	if (stmt->behavior == DROP_CASCADE && named != NIL)
	{
		List	   *all = NIL;
		List	   *next;

		/* what TRUNCATE empties: the named tables and, unless ONLY, their inheritors */
		foreach(lc, stmt->relations)
		{
			RangeVar   *rv = (RangeVar *) lfirst(lc);
			Oid			relid;

			if (find_relation(c, rv, &relid) != FOUND_LIVE)
				continue;
			if (rv->inh && has_subclass(relid))
				all = list_concat_unique_oid(all, find_all_inheritors(relid, NoLock, NULL));
			else
				all = list_append_unique_oid(all, relid);
		}
		next = list_copy(all);

		while (next != NIL)
		{
			List	   *refs = heap_truncate_find_FKs(next);

			next = NIL;
			foreach(lc, refs)
			{
				Oid			ref = lfirst_oid(lc);

				if (list_member_oid(all, ref))
					continue;
				all = lappend_oid(all, ref);
				next = lappend_oid(next, ref);
				c->recurse = true;
				add_cand(c, R_TRUNCATE, ref, 0, NULL, rel_display(ref),
						 psprintf("truncates %s through TRUNCATE ... CASCADE (it references a truncated table): its readers see no rows",
								  rel_display(ref)), 0);
			}
		}
	}
}

/* Step 1 for one statement. */
static void
classify(EltClassified *c, Node *stmt)
{
	MemoryContext old = MemoryContextSwitchTo(c->cxt);

	c->recurse = false;
	switch (nodeTag(stmt))
	{
		case T_AlterTableStmt:
			classify_alter_table(c, (AlterTableStmt *) stmt);
			break;
		case T_RenameStmt:
			classify_rename(c, (RenameStmt *) stmt);
			break;
		case T_AlterObjectSchemaStmt:
			classify_set_schema(c, (AlterObjectSchemaStmt *) stmt);
			break;
		case T_DropStmt:
			{
				int			before = list_length(c->cands);
				int			i;

				classify_drop(c, (DropStmt *) stmt);
				/* the owner of a schema may drop what is in it */
				for (i = before; i < list_length(c->cands); i++)
					((EltCandidate *) list_nth(c->cands, i))->schema_owner_may = true;
				break;
			}
		case T_AlterEnumStmt:
			classify_enum(c, (AlterEnumStmt *) stmt);
			break;
		case T_AlterDomainStmt:
			classify_domain(c, (AlterDomainStmt *) stmt);
			break;
		case T_IndexStmt:
			classify_index(c, (IndexStmt *) stmt);
			break;
		case T_TruncateStmt:
			classify_truncate(c, (TruncateStmt *) stmt);
			break;
		default:
			break;
	}
	MemoryContextSwitchTo(old);
}

/* ------------------------------------------------------------------------
 * Step 2: judge the candidates against governance and the catalog
 * ------------------------------------------------------------------------
 */

/* Order of strictness of a policy: enforce > warn > off > none. */
static int
policy_rank(const char *policy)
{
	if (policy == NULL)
		return 0;
	if (strcmp(policy, "off") == 0)
		return 1;
	if (strcmp(policy, "warn") == 0)
		return 2;
	return 3;
}

/*
 * SQL condition: the relation (an expression of type regclass) was created
 * by this very transaction — its history starts with a 'created' version
 * carrying our xid.
 */
#define CREATED_NOW_SQL(rel) \
	"EXISTS (SELECT 1 FROM elt.tracked_tables t" \
	"        JOIN elt.schema_versions v ON v.table_id = t.table_id AND v.version = 1" \
	"        WHERE t.relid = " rel " AND v.event = 'created'" \
	"          AND v.xid = pg_catalog.pg_current_xact_id_if_assigned())"

/*
 * Policy in force for a relation: the strictest of its own (its table
 * target's, else its schema's), its ancestors' (a partition or inheritance
 * child carries its parent's rows) and, when the statement recurses, its
 * descendants'.  NULL if none is governed.  *created_now tells whether the
 * relation was created by this very transaction (a governed table whose
 * first version, 'created', carries our xid): it has no readers yet.
 */
static const char *
relation_policy(Oid relid, bool recurse, bool live, bool *created_now)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plain_plan = NULL;
	Oid			argtypes[3] = {OIDOID, BOOLOID, BOOLOID};
	Datum		args[3];
	bool		isnull;

	if (!has_superclass(relid) && !(recurse && has_subclass(relid)))
	{
		/* the common case: no inheritance to follow */
		EltPrepare(&plain_plan,
				   "SELECT COALESCE("
				   "  (SELECT g.policy FROM elt.governed_targets g"
				   "   WHERE g.kind = 'table' AND g.rel = $1::pg_catalog.regclass),"
				   "  (SELECT g.policy FROM elt.governed_targets g"
				   "   JOIN pg_catalog.pg_namespace n ON n.nspname = g.schema_name"
				   "   JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
				   "   WHERE g.kind = 'schema' AND c.oid = $1 AND c.relpersistence <> 't'))"
				   "    AS policy, "
				   CREATED_NOW_SQL("$1::pg_catalog.regclass") " AS created_now",
				   1, argtypes);
		args[0] = ObjectIdGetDatum(relid);
		EltExecLatest(plain_plan, args, NULL, 1);
		if (SPI_processed == 0)
			return NULL;
		*created_now = EltSpiGetBool(0, "created_now", &isnull);
		return EltSpiGetText(0, "policy");
	}
	EltPrepare(&plan,
			   "WITH RECURSIVE up(oid) AS ("
			   "  SELECT $1"
			   "  UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.oid),"
			   " down(oid) AS ("
			   "  SELECT $1 WHERE $2"
			   "  UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN down ON i.inhparent = down.oid),"
			   " pol AS ("
			   "  SELECT NOT " CREATED_NOW_SQL("r.oid::pg_catalog.regclass") " AS old,"
			   "         COALESCE("
			   "    (SELECT g.policy FROM elt.governed_targets g"
			   "     WHERE g.kind = 'table' AND g.rel = r.oid::pg_catalog.regclass),"
			   "    (SELECT g.policy FROM elt.governed_targets g"
			   "     JOIN pg_catalog.pg_namespace n ON n.nspname = g.schema_name"
			   "     JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
			   "     WHERE g.kind = 'schema' AND c.oid = r.oid AND c.relpersistence <> 't'))"
			   "    AS policy"
			   "  FROM (SELECT oid FROM up UNION SELECT oid FROM down) r)"
			   " SELECT (SELECT p.policy FROM pol p WHERE p.policy IS NOT NULL"
			   "           AND (p.old OR NOT $3)"
			   "         ORDER BY pg_catalog.array_position(ARRAY['enforce', 'warn', 'off'], p.policy)"
			   "         LIMIT 1) AS policy,"
			   "        false AS created_now",
			   3, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = BoolGetDatum(recurse);
	args[2] = BoolGetDatum(live);
	EltExecLatest(plan, args, NULL, 1);
	if (SPI_processed == 0)
		return NULL;
	*created_now = EltSpiGetBool(0, "created_now", &isnull);
	return EltSpiGetText(0, "policy");
}

/* Policy for a schema: its own target's, else the strictest of its tables'. */
static const char *
schema_policy(Oid nspoid)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];

	EltPrepare(&plan,
			   "SELECT COALESCE("
			   "  (SELECT g.policy FROM elt.governed_targets g"
			   "   JOIN pg_catalog.pg_namespace n ON n.nspname = g.schema_name"
			   "   WHERE g.kind = 'schema' AND n.oid = $1),"
			   "  (SELECT g.policy FROM elt.governed_targets g"
			   "   JOIN pg_catalog.pg_class c ON c.oid = g.rel::pg_catalog.oid"
			   "   WHERE g.kind = 'table' AND c.relnamespace = $1"
			   "   ORDER BY array_position(ARRAY['enforce', 'warn', 'off'], g.policy)"
			   "   LIMIT 1)) AS policy",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(nspoid);
	EltExecLatest(plan, args, NULL, 1);
	return SPI_processed > 0 ? EltSpiGetText(0, "policy") : NULL;
}

/*
 * Governed tables with a column of an enum type (an array of it, or a domain
 * over either): the strictest policy among them, and the columns as
 * dependents.
 */
static const char *
type_policy(Oid typid, List **dependents)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	const char *policy = NULL;
	uint64		i;

	EltPrepare(&plan,
			   "SELECT format('column %s.%I', c.oid::pg_catalog.regclass, a.attname) AS dependent,"
			   "       elt.policy_for(c.oid::pg_catalog.regclass) AS policy"
			   " FROM pg_catalog.pg_attribute a"
			   " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
			   " JOIN pg_catalog.pg_type t ON t.oid = $1"
			   " WHERE (a.atttypid IN (t.oid, t.typarray)"
			   "        OR a.atttypid IN (SELECT d.oid FROM pg_catalog.pg_type d"
			   "                          WHERE d.typtype = 'd' AND d.typbasetype IN (t.oid, t.typarray)))"
			   "   AND a.attnum > 0"
			   "   AND NOT a.attisdropped AND c.relkind IN ('r', 'p')"
			   "   AND elt.policy_for(c.oid::pg_catalog.regclass) IS NOT NULL"
			   " ORDER BY 1",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(typid);
	EltExecLatest(plan, args, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *p = EltSpiGetText((int) i, "policy");

		if (policy_rank(p) > policy_rank(policy))
			policy = p;
		*dependents = lappend(*dependents, EltSpiGetText((int) i, "dependent"));
	}
	return policy;
}

/*
 * Views, materialized views (also through other views) and functions that
 * depend on a relation or one of its columns; only functions when
 * writers_only.
 */
static void
add_dependents(Oid relid, AttrNumber attnum, bool writers_only, List **out)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {OIDOID, INT2OID, BOOLOID};
	Datum		args[3];
	uint64		i;

	EltPrepare(&plan,
			   "WITH RECURSIVE dep(is_rule, oid) AS ("
			   "  SELECT d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass,"
			   "         COALESCE(r.ev_class, d.objid)"
			   "  FROM pg_catalog.pg_depend d"
			   "  LEFT JOIN pg_catalog.pg_rewrite r"
			   "         ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND r.oid = d.objid"
			   "  WHERE d.deptype = 'n'"
			   "    AND ((d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
			   "          AND d.refobjid = $1 AND ($2 = 0 OR d.refobjsubid IN (0, $2)))"
			   "      OR (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass"
			   "          AND d.refobjid = (SELECT c.reltype FROM pg_catalog.pg_class c WHERE c.oid = $1)))"
			   "    AND ((d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"
			   "          AND (NOT $3 OR (SELECT p.provolatile FROM pg_catalog.pg_proc p"
			   "                          WHERE p.oid = d.objid) = 'v'))"
			   "         OR (NOT $3 AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass))"
			   "  UNION"
			   "  SELECT d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass,"
			   "         COALESCE(r.ev_class, d.objid)"
			   "  FROM dep"
			   "  JOIN pg_catalog.pg_depend d"
			   "    ON dep.is_rule AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
			   "   AND d.refobjid = dep.oid AND d.deptype = 'n'"
			   "  LEFT JOIN pg_catalog.pg_rewrite r"
			   "         ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND r.oid = d.objid"
			   "  WHERE dep.oid <> $1"
			   "    AND COALESCE(r.ev_class, d.objid) <> dep.oid"
			   "    AND d.classid IN ('pg_catalog.pg_rewrite'::pg_catalog.regclass,"
			   "                      'pg_catalog.pg_proc'::pg_catalog.regclass))"
			   " SELECT DISTINCT"
			   "   CASE WHEN NOT dep.is_rule THEN 'function ' || dep.oid::pg_catalog.regprocedure::text"
			   "        WHEN c.relkind = 'm' THEN 'materialized view ' || dep.oid::pg_catalog.regclass::text"
			   "        ELSE 'view ' || dep.oid::pg_catalog.regclass::text END AS dependent"
			   " FROM dep"
			   " LEFT JOIN pg_catalog.pg_class c ON dep.is_rule AND c.oid = dep.oid"
			   " WHERE NOT (dep.is_rule AND dep.oid = $1)"
			   " ORDER BY 1",
			   3, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = Int16GetDatum(attnum);
	args[2] = BoolGetDatum(writers_only);
	EltExecLatest(plan, args, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *d = EltSpiGetText((int) i, "dependent");

		if (!string_member(*out, d))
			*out = lappend(*out, d);
	}
}

/* Registered consumers of a relation, or of one of its columns. */
static void
add_consumers(Oid relid, const char *colname, List **out)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	uint64		i;

	EltPrepare(&plan,
			   "SELECT 'consumer ' || r.consumer AS dependent"
			   " FROM elt.consumer_registrations r"
			   " WHERE r.rel = $1::pg_catalog.regclass"
			   "   AND ($2 IS NULL OR r.columns IS NULL OR $2 = ANY (r.columns))"
			   " ORDER BY r.consumer",
			   2, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	if (colname)
		args[1] = CStringGetTextDatum(colname);
	else
		nulls[1] = 'n';
	EltExecLatest(plan, args, nulls, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *d = EltSpiGetText((int) i, "dependent");

		if (!string_member(*out, d))
			*out = lappend(*out, d);
	}
}

/* Dependents of every table and view of a schema, outside that schema. */
static void
add_schema_dependents(Oid nspoid, List **out)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	List	   *rels;
	ListCell   *lc;

	EltPrepare(&plan,
			   "SELECT c.oid FROM pg_catalog.pg_class c"
			   " WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'v', 'm')"
			   " ORDER BY c.relname",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(nspoid);
	EltExecLatest(plan, args, NULL, 0);
	rels = EltSpiAppendOids(NIL);
	foreach(lc, rels)
	{
		add_dependents(lfirst_oid(lc), 0, false, out);
		add_consumers(lfirst_oid(lc), NULL, out);
	}
	/* what lives in the schema goes with it */
	{
		char	   *prefix = psprintf(" %s.", quote_identifier(get_namespace_name(nspoid)));
		List	   *kept = NIL;
		ListCell   *dc;

		foreach(dc, *out)
		{
			char	   *d = (char *) lfirst(dc);

			if (strncmp(d, "consumer ", 9) == 0 || strstr(d, prefix) == NULL)
				kept = lappend(kept, d);
		}
		*out = kept;
	}
}

/*
 * Rows the planner expects in a table, or -1 when it is not ours to look at.
 * A live statement takes the lock it is about to take anyway (see the file
 * header), and only when the role running it owns the table: otherwise the
 * statement is about to fail on privileges, and a lock taken first would
 * let a role without rights queue up everyone behind it.  A dry run locks
 * nothing it cannot get at once, and lets go at once.  A partitioned table
 * counts its leaf partitions' statistics.
 */
static double
estimated_rows(Oid relid, LOCKMODE lockmode, Oid actor, bool live)
{
	Relation	rel;
	BlockNumber pages;
	double		tuples = 0;
	double		allvisfrac;
	HeapTuple	tup;

	if (live && !pg_class_ownercheck(relid, actor))
		return -1;
	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
	{
		List	   *parts = find_all_inheritors(relid, NoLock, NULL);
		ListCell   *lc;

		foreach(lc, parts)
		{
			tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));
			if (HeapTupleIsValid(tup))
			{
				Form_pg_class form = (Form_pg_class) GETSTRUCT(tup);

				if (form->relkind == RELKIND_RELATION && form->reltuples > 0)
					tuples += form->reltuples;
				ReleaseSysCache(tup);
			}
		}
		return tuples;
	}
	/*
	 * Statistics first: a statement that is about to be blocked must not wait
	 * for its lock.  Only a table never vacuumed or analyzed needs its size
	 * read, under the statement's own lock if that is free at once.
	 */
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		float4		reltuples = ((Form_pg_class) GETSTRUCT(tup))->reltuples;

		ReleaseSysCache(tup);
		if (reltuples >= 0)
			return reltuples;
	}
	if (!ConditionalLockRelationOid(relid, live ? lockmode : AccessShareLock))
		return -2;				/* never analyzed, and busy: size unknown */
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		tuples = 0;				/* dropped meanwhile */
	else
	{
		rel = relation_open(relid, NoLock);
		estimate_rel_size(rel, NULL, &pages, &tuples, &allvisfrac);
		relation_close(rel, NoLock);
	}
	if (!live)
		UnlockRelationOid(relid, AccessShareLock);
	return tuples;
}

/* Whether a validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan. */
static bool
not_null_proven(Oid relid, const char *colname)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2];

	EltPrepare(&plan,
			   "SELECT 1 FROM pg_catalog.pg_constraint"
			   " WHERE conrelid = $1 AND contype = 'c' AND convalidated"
			   "   AND pg_catalog.pg_get_constraintdef(oid)"
			   "       = pg_catalog.format('CHECK ((%s IS NOT NULL))', pg_catalog.quote_ident($2))",
			   2, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetTextDatum(colname);
	EltExecLatest(plan, args, NULL, 1);
	return SPI_processed > 0;
}

/* Whether the statement already has a breaking finding on a column. */
static bool
has_breaking_on_column(List *cands, Oid relid, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, cands)
	{
		EltCandidate *o = (EltCandidate *) lfirst(lc);

		if (o->rule >= 0 && RULE_IS_BREAKING(o->rule) && o->relid == relid &&
			o->attnum == attnum)
			return true;
	}
	return false;
}

/*
 * Whether the role running a live statement may do what a candidate is
 * about: own the relation, type or schema (TRUNCATE: hold the privilege).
 * If not, the statement is about to fail on privileges, and that is the
 * error to see; a dry run judges whatever it is given.
 */
static bool
actor_may(EltClassified *c, EltCandidate *cand)
{
	if (c->script != NULL || superuser_arg(c->actor))
		return true;
	if (OidIsValid(cand->typid))
		return pg_type_ownercheck(cand->typid, c->actor);
	if (OidIsValid(cand->nspoid))
		return pg_namespace_ownercheck(cand->nspoid, c->actor);
	if (!OidIsValid(cand->relid))
		return true;
	if (cand->rule == R_TRUNCATE)
		return pg_class_aclcheck(cand->relid, c->actor, ACL_TRUNCATE) == ACLCHECK_OK;
	if (OidIsValid(cand->privrel))
		return pg_class_ownercheck(cand->privrel, c->actor);
	if (cand->schema_owner_may &&
		pg_namespace_ownercheck(get_rel_namespace(cand->relid), c->actor))
		return true;
	return pg_class_ownercheck(cand->relid, c->actor);
}

/*
 * Step 2.  Inside the catalog context.  Keeps the candidates that concern
 * governed objects, with their policy and dependents; list allocations go
 * to c->cxt.  lock_timeout_set: whether the statement will run with one.
 */
static void
judge(EltClassified *c, bool lock_timeout_set)
{
	List	   *kept = NIL;
	List	   *looked_up = NIL;	/* candidates whose relation was looked up */
	ListCell   *lc;
	EltCandidate *hazard = NULL;

	foreach(lc, c->cands)
	{
		EltCandidate *cand = (EltCandidate *) lfirst(lc);
		MemoryContext old;
		List	   *deps = NIL;
		const char *policy;

		if (cand->rule == R_MISSING)
		{
			kept = lappend(kept, cand);
			continue;
		}
		if (!actor_may(c, cand))
			continue;
		old = MemoryContextSwitchTo(c->cxt);
		if (OidIsValid(cand->typid))
			policy = type_policy(cand->typid, &deps);
		else if (OidIsValid(cand->nspoid))
			policy = schema_policy(cand->nspoid);
		else if (OidIsValid(cand->relid))
		{
			/* one lookup per relation: a statement's candidates share tables */
			EltCandidate *same = NULL;
			ListCell   *pc;

			foreach(pc, looked_up)
			{
				EltCandidate *o = (EltCandidate *) lfirst(pc);

				if (o->relid == cand->relid && o->recurse == cand->recurse)
					same = o;
			}
			if (same != NULL)
				policy = same->policy;
			else
			{
				bool		created_now = false;

				policy = relation_policy(cand->relid, cand->recurse, c->script == NULL,
										 &created_now);
				/* created by this transaction: nobody reads it yet */
				if (created_now && c->script == NULL)
					policy = NULL;
				cand->policy = policy ? pstrdup(policy) : NULL;
				looked_up = lappend(looked_up, cand);
			}
		}
		else
			policy = NULL;
		if (policy == NULL)
		{
			MemoryContextSwitchTo(old);
			continue;
		}
		cand->policy = pstrdup(policy);

		if (cand->rule < 0)
		{
			/* a touched column that a registered consumer uses: EG117 */
			if (cand->attnum > 0 &&
				!has_breaking_on_column(c->cands, cand->relid, cand->attnum))
			{
				add_consumers(cand->relid, cand->colname, &deps);
				if (deps != NIL)
				{
					cand->rule = R_CONSUMER_COLUMN;
					cand->reason = psprintf("changes column %s, which registered consumers use",
											cand->object);
				}
			}
		}
		else if (cand->flags & CAND_NEEDS_SIZE)
		{
			double		rows = estimated_rows(cand->relid, cand->lockmode, c->actor,
											  c->script == NULL);

			if (rows == -2)
			{
				/* never analyzed and locked by others: assume it is large */
				cand->reason = psprintf("%s (size unknown: never analyzed, and in use; ANALYZE it)",
										cand->reason);
			}
			else if (rows <= (double) elt_large_table_rows)
			{
				MemoryContextSwitchTo(old);
				continue;
			}
			if (rows >= 0)
				cand->reason = psprintf("%s (about %.0f rows, over elt.large_table_rows = %d)",
										cand->reason, rows, elt_large_table_rows);
			cand->reason = psprintf("%s%s", cand->reason,
									get_rel_relkind(cand->relid) == RELKIND_PARTITIONED_TABLE ?
									"; a partitioned table cannot be indexed CONCURRENTLY: create the index ON ONLY the parent, CONCURRENTLY on each partition, then ATTACH PARTITION each" : "");
		}
		else if ((cand->flags & CAND_NOT_NULL_PROOF) &&
				 not_null_proven(cand->relid, cand->colname))
		{
			MemoryContextSwitchTo(old);
			continue;
		}
		else if (RULE_IS_BREAKING(cand->rule))
		{
			if (OidIsValid(cand->typid))
				 /* dependents are the columns using the type */ ;
			else if (OidIsValid(cand->nspoid))
				add_schema_dependents(cand->nspoid, &deps);
			else if (cand->flags & CAND_WRITERS)
				add_dependents(cand->relid, cand->attnum, true, &deps);
			else
			{
				add_dependents(cand->relid, cand->attnum, false, &deps);
				add_consumers(cand->relid, cand->colname, &deps);
			}
		}
		if (cand->rule >= 0 && RULE_IS_HAZARD(cand->rule) && hazard == NULL)
			hazard = cand;
		cand->dependents = deps;
		kept = lappend(kept, cand);
		MemoryContextSwitchTo(old);
	}
	if (hazard != NULL && !lock_timeout_set)
	{
		MemoryContext old = MemoryContextSwitchTo(c->cxt);
		EltCandidate *cand = palloc0(sizeof(EltCandidate));

		cand->rule = R_NO_LOCK_TIMEOUT;
		cand->relid = hazard->relid;
		cand->object = hazard->object;
		cand->policy = hazard->policy;
		cand->reason = psprintf("runs a lock hazard (%s) on %s with lock_timeout = 0: while it waits for its lock, every query on the table queues behind it",
								rules[hazard->rule].code, hazard->object);
		kept = lappend(kept, cand);
		MemoryContextSwitchTo(old);
	}
	c->cands = kept;
}

/* ------------------------------------------------------------------------
 * Step 3: decide and record (live statements)
 * ------------------------------------------------------------------------
 */

/* Join a list of C strings with a separator. */
static char *
join_strings(List *list, const char *sep)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, list)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, sep);
		appendStringInfoString(&buf, (const char *) lfirst(lc));
	}
	return buf.data;
}

/* A text[] Datum from a list of C strings. */
static Datum
text_array(List *list)
{
	int			n = list_length(list);
	Datum	   *elems = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, list)
		elems[i++] = CStringGetTextDatum((const char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Message, detail and hint of findings that block or warn. */
static void
describe(List *findings, char **msg, char **detail, char **hint)
{
	StringInfoData m;
	StringInfoData d;
	StringInfoData h;
	ListCell   *lc;
	List	   *codes = NIL;

	initStringInfo(&m);
	initStringInfo(&d);
	initStringInfo(&h);
	foreach(lc, findings)
	{
		EltCandidate *f = (EltCandidate *) lfirst(lc);

		if (!string_member(codes, rules[f->rule].code))
			codes = lappend(codes, (char *) rules[f->rule].code);
	}
	if (list_length(findings) == 1)
	{
		EltCandidate *f = (EltCandidate *) linitial(findings);

		appendStringInfo(&m, "%s: %s", rules[f->rule].code, f->reason);
		if (f->dependents != NIL)
			appendStringInfo(&d, "Breaks: %s. ", join_strings(f->dependents, ", "));
		appendStringInfo(&d, "Class %s, under policy %s.", rules[f->rule].class, f->policy);
		appendStringInfoString(&h, rules[f->rule].suggestion);
	}
	else
	{
		List	   *hints = NIL;

		appendStringInfo(&m, "%s: this statement has %d findings under the contract",
						 join_strings(codes, ", "), list_length(findings));
		foreach(lc, findings)
		{
			EltCandidate *f = (EltCandidate *) lfirst(lc);
			char	   *s = psprintf("%s: %s", rules[f->rule].code, rules[f->rule].suggestion);

			if (d.len > 0)
				appendStringInfoChar(&d, '\n');
			appendStringInfo(&d, "%s (%s, policy %s): %s.", rules[f->rule].code,
							 rules[f->rule].class, f->policy, f->reason);
			if (f->dependents != NIL)
				appendStringInfo(&d, " Breaks: %s.", join_strings(f->dependents, ", "));
			if (!string_member(hints, s))
				hints = lappend(hints, s);
		}
		appendStringInfoString(&h, join_strings(hints, "\n"));
	}
	*msg = m.data;
	*detail = d.data;
	*hint = h.data;
}

/* Insert one elt.schema_changes row and add it to the audit details. */
static void
record_change(EltCatalogWrite *cw, EltCandidate *f, const char *tag,
			  const char *statement, const char *decision, int64 migration,
			  StringInfo audit)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[12] = {NAMEOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[12];
	char		nulls[12];
	bool		safe = f->rule < 0;
	bool		isnull;
	int64		change_id;
	StringInfoData one;

	memset(nulls, ' ', sizeof(nulls));
	EltPrepare(&plan,
			   "INSERT INTO elt.schema_changes (recorded_at, role, xid, command_tag,"
			   " statement, rule, class, object, reason, dependents, suggestion, policy,"
			   " decision, migration_id)"
			   " VALUES (pg_catalog.now(), $1, pg_catalog.pg_current_xact_id(), $2, $3,"
			   " $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING change_id",
			   12, argtypes);
	values[0] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(cw->actor, false)));
	if (tag)
		values[1] = CStringGetTextDatum(tag);
	else
		nulls[1] = 'n';
	if (statement)
		values[2] = CStringGetTextDatum(statement);
	else
		nulls[2] = 'n';
	if (safe)
		nulls[3] = 'n';
	else
		values[3] = CStringGetTextDatum(rules[f->rule].code);
	values[4] = CStringGetTextDatum(safe ? "safe" : rules[f->rule].class);
	values[5] = CStringGetTextDatum(f->object);
	values[6] = CStringGetTextDatum(safe ? "no compatibility or locking finding" : f->reason);
	values[7] = text_array(f->dependents);
	if (safe)
		nulls[8] = 'n';
	else
		values[8] = CStringGetTextDatum(rules[f->rule].suggestion);
	values[9] = CStringGetTextDatum(f->policy);
	values[10] = CStringGetTextDatum(decision);
	if (migration > 0)
		values[11] = Int64GetDatum(migration);
	else
		nulls[11] = 'n';
	if (EltExec(plan, values, nulls, 1) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not insert into elt.schema_changes");
	change_id = EltSpiGetInt64(0, "change_id", &isnull);

	initStringInfo(&one);
	appendStringInfoChar(&one, '{');
	EltAppendJsonInt(&one, "change_id", change_id);
	EltAppendJsonString(&one, "rule", safe ? NULL : rules[f->rule].code);
	EltAppendJsonString(&one, "class", safe ? "safe" : rules[f->rule].class);
	EltAppendJsonString(&one, "object", f->object);
	EltAppendJsonString(&one, "decision", decision);
	appendStringInfoChar(&one, '}');
	if (audit->len > 1)
		appendStringInfoString(audit, ", ");
	appendBinaryStringInfo(audit, one.data, one.len);
}

/*
 * DROP INDEX CONCURRENTLY must be the first action of its transaction, so
 * nothing can be written before it runs, and CREATE INDEX CONCURRENTLY
 * commits between its phases, so what is written before it survives a build
 * that fails: the classification of both is kept here, in a memory context
 * of its own, and written by ddl_command_end.
 */
typedef struct EltDeferred
{
	List	   *findings;		/* EltCandidate *, copied */
	List	   *decisions;		/* char * */
	char	   *tag;
	char	   *statement;
	int64		migration;
} EltDeferred;

static EltDeferred *deferred = NULL;
static MemoryContext deferred_cxt = NULL;

static void forget_deferred(void);

/* Deep copy of a finding, in the current memory context. */
static EltCandidate *
copy_candidate(EltCandidate *f)
{
	EltCandidate *n = palloc(sizeof(EltCandidate));
	ListCell   *lc;

	memcpy(n, f, sizeof(EltCandidate));
	n->colname = f->colname ? pstrdup(f->colname) : NULL;
	n->newname = f->newname ? pstrdup(f->newname) : NULL;
	n->object = pstrdup(f->object);
	n->reason = f->reason ? pstrdup(f->reason) : NULL;
	n->policy = pstrdup(f->policy);
	n->dependents = NIL;
	foreach(lc, f->dependents)
		n->dependents = lappend(n->dependents, pstrdup((char *) lfirst(lc)));
	return n;
}

/* Write what a statement did to elt.schema_changes and the audit log. */
static void
write_records(EltCatalogWrite *cw, List *findings, List *decisions,
			  const char *tagname, const char *statement, int64 migration)
{
	StringInfoData audit;
	StringInfoData details;
	ListCell   *lf;
	ListCell   *ld;
	EltCandidate *first = NULL;

	initStringInfo(&audit);
	appendStringInfoChar(&audit, '[');
	forboth(lf, findings, ld, decisions)
	{
		EltCandidate *f = (EltCandidate *) lfirst(lf);

		if (first == NULL)
			first = f;
		record_change(cw, f, tagname, statement, (const char *) lfirst(ld),
					  migration, &audit);
		if (f->rule >= 0 && strcmp(rules[f->rule].class, "breaking") == 0 &&
			OidIsValid(f->relid))
			EltBackfillPauseForChange(cw->actor, f->relid, rules[f->rule].code, f->reason);
	}
	appendStringInfoChar(&audit, ']');
	if (first == NULL)
		return;

	initStringInfo(&details);
	appendStringInfoChar(&details, '{');
	EltAppendJsonString(&details, "command_tag", tagname);
	if (migration > 0)
		EltAppendJsonInt(&details, "migration_id", migration);
	appendStringInfo(&details, ", \"changes\": %s}", audit.data);
	EltAuditRecord(cw->actor, "change_classified", first->object, details.data,
				   EltAuditReason(NULL));
}

/* ddl_command_end: write the classification kept for a concurrent drop. */
void
EltContractsRecordDeferred(EltCatalogWrite *cw)
{
	EltDeferred *d = deferred;

	if (d != NULL && EltContractsReady())
		write_records(cw, d->findings, d->decisions, d->tag, d->statement, d->migration);
	forget_deferred();
}

/* Forget a kept classification (a new statement starts, or it was written). */
static void
forget_deferred(void)
{
	deferred = NULL;
	if (deferred_cxt != NULL)
	{
		MemoryContextDelete(deferred_cxt);
		deferred_cxt = NULL;
	}
}

/*
 * Registered consumers follow a column that an allowed statement renames
 * (its readers have moved, or the rename was approved) and lose one it
 * drops; a registration left with no column goes, recorded in the audit log.
 */
static void
follow_registrations(EltCatalogWrite *cw, List *findings)
{
	static SPIPlanPtr rename_plan = NULL;
	static SPIPlanPtr drop_plan = NULL;
	static SPIPlanPtr empty_plan = NULL;
	Oid			rtypes[3] = {OIDOID, TEXTOID, TEXTOID};
	Oid			dtypes[2] = {OIDOID, TEXTOID};
	ListCell   *lc;

	foreach(lc, findings)
	{
		EltCandidate *f = (EltCandidate *) lfirst(lc);
		Datum		args[3];
		uint64		i;
		bool		emptied;
		bool		registered;
		ListCell   *dc;

		if (f->colname == NULL || !OidIsValid(f->relid))
			continue;
		/* judge listed the registered consumers of the column: none, no work */
		registered = false;
		foreach(dc, f->dependents)
		{
			if (strncmp((const char *) lfirst(dc), "consumer ", 9) == 0)
				registered = true;
		}
		if (!registered)
			continue;
		args[0] = ObjectIdGetDatum(f->relid);
		args[1] = CStringGetTextDatum(f->colname);
		if (f->rule == R_RENAME_COLUMN && f->newname != NULL)
		{
			EltPrepare(&rename_plan,
					   "UPDATE elt.consumer_registrations"
					   " SET columns = pg_catalog.array_replace(columns, $2, $3)"
					   " WHERE rel = $1::pg_catalog.regclass AND $2 = ANY (columns)",
					   3, rtypes);
			args[2] = CStringGetTextDatum(f->newname);
			EltExec(rename_plan, args, NULL, 0);
		}
		else if (f->rule == R_DROP_COLUMN)
		{
			SPITupleTable *tt;
			uint64		n;

			EltPrepare(&drop_plan,
					   "UPDATE elt.consumer_registrations"
					   " SET columns = pg_catalog.array_remove(columns, $2)"
					   " WHERE rel = $1::pg_catalog.regclass AND $2 = ANY (columns)"
					   " RETURNING pg_catalog.cardinality(columns) = 0 AS emptied",
					   2, dtypes);
			EltExec(drop_plan, args, NULL, 0);
			emptied = false;
			for (i = 0; i < SPI_processed; i++)
			{
				bool		isnull;

				if (EltSpiGetBool((int) i, "emptied", &isnull))
					emptied = true;
			}
			if (!emptied)
				continue;
			/* a registration left with no column goes */
			EltPrepare(&empty_plan,
					   "DELETE FROM elt.consumer_registrations"
					   " WHERE rel = $1::pg_catalog.regclass"
					   "   AND pg_catalog.cardinality(columns) = 0"
					   " RETURNING consumer",
					   1, dtypes);
			EltExec(empty_plan, args, NULL, 0);
			tt = SPI_tuptable;
			n = SPI_processed;
			for (i = 0; i < n; i++)
			{
				StringInfoData details;

				initStringInfo(&details);
				appendStringInfoChar(&details, '{');
				EltAppendJsonString(&details, "consumer",
									SPI_getvalue(tt->vals[i], tt->tupdesc, 1));
				EltAppendJsonString(&details, "cause", "its last column dropped");
				appendStringInfoChar(&details, '}');
				EltAuditRecord(cw->actor, "consumer_unregistered", rel_display(f->relid),
							   details.data, EltAuditReason(NULL));
			}
		}
	}
}

/*
 * Step 3: block, warn or approve the statement as a whole, then record what
 * goes ahead (now, or at ddl_command_end when defer).
 */
static void
decide_and_record(EltCatalogWrite *cw, EltClassified *c, CommandTag tag, bool defer)
{
	int64		migration = EltCurrentMigration();
	List	   *blocked = NIL;
	List	   *warned = NIL;
	List	   *findings = NIL;
	EltCandidate *touch = NULL;
	ListCell   *lc;
	const char *tagname = GetCommandTagName(tag);
	char	   *statement;
	List	   *decisions = NIL;
	char	   *msg;
	char	   *detail;
	char	   *hint;

	foreach(lc, c->cands)
	{
		EltCandidate *f = (EltCandidate *) lfirst(lc);

		if (f->rule < 0)
		{
			if (touch == NULL)
				touch = f;
			continue;
		}
		findings = lappend(findings, f);
		if (migration > 0)
			continue;
		if (strcmp(f->policy, "enforce") == 0)
			blocked = lappend(blocked, f);
		else if (strcmp(f->policy, "warn") == 0)
			warned = lappend(warned, f);
	}
	if (findings == NIL && touch == NULL)
		return;

	if (blocked != NIL)
	{
		describe(blocked, &msg, &detail, &hint);
		ereport(LOG,
				(errmsg("elt_governance blocked a change by role \"%s\": %s",
						GetUserNameFromId(cw->actor, false), msg),
				 errhidecontext(true)));
		ereport(ERROR,
				(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
				 errmsg("%s", msg),
				 errdetail("%s", detail),
				 errhint("%s\nTo approve the change, run it after SELECT elt.migration_begin(name, reason, approved_by).",
						 hint)));
	}
	if (warned != NIL)
	{
		describe(warned, &msg, &detail, &hint);
		ereport(WARNING,
				(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
				 errmsg("%s", msg),
				 errdetail("%s", detail),
				 errhint("%s", hint)));
	}
	if (migration > 0 && findings != NIL)
	{
		List	   *codes = NIL;

		foreach(lc, findings)
		{
			EltCandidate *f = (EltCandidate *) lfirst(lc);

			if (!string_member(codes, rules[f->rule].code))
				codes = lappend(codes, (char *) rules[f->rule].code);
		}
		ereport(NOTICE,
				(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
				 errmsg("%s approved by migration %lld",
						join_strings(codes, ", "), (long long) migration)));
	}

	follow_registrations(cw, findings);
	statement = EltCurrentStatement();
	if (findings == NIL)
	{
		findings = list_make1(touch);
		decisions = list_make1("allowed");
	}
	else
	{
		foreach(lc, findings)
		{
			EltCandidate *f = (EltCandidate *) lfirst(lc);

			if (migration > 0 && strcmp(f->policy, "off") != 0)
				decisions = lappend(decisions, "approved");
			else if (strcmp(f->policy, "warn") == 0)
				decisions = lappend(decisions, "warned");
			else
				decisions = lappend(decisions, "recorded");
		}
	}
	if (defer)
	{
		MemoryContext old;
		EltDeferred *d;

		forget_deferred();
		deferred_cxt = AllocSetContextCreate(TopMemoryContext, "elt deferred change",
											 ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(deferred_cxt);
		d = palloc0(sizeof(EltDeferred));

		foreach(lc, findings)
			d->findings = lappend(d->findings, copy_candidate((EltCandidate *) lfirst(lc)));
		foreach(lc, decisions)
			d->decisions = lappend(d->decisions, pstrdup((char *) lfirst(lc)));
		d->tag = pstrdup(tagname);
		d->statement = statement ? pstrdup(statement) : NULL;
		d->migration = migration;
		deferred = d;
		MemoryContextSwitchTo(old);
		return;
	}
	write_records(cw, findings, decisions, tagname, statement, migration);
}

/*
 * Whether the statement being run had breaking findings that went ahead
 * (under warn or off, or approved): then what it drops by cascade was part
 * of what was judged.  See EltContractsCheckCascade.
 */
static int	judged_rank = 0;		/* strictest policy it went ahead under */
static List *judged_relids = NIL;	/* relations its findings named */

/*
 * sql_drop: a governed table, view or column dropped by a statement that was
 * not judged as dropping it — DROP ... CASCADE of an ungoverned object
 * (a type, a sequence, a view), DROP OWNED BY — is judged here, after the
 * fact but before the transaction commits: under enforce the statement
 * fails, under warn it warns.  relid is the dropped relation (or the table
 * of a dropped column), schema and name its names, column NULL for a
 * relation.
 */
void
EltContractsCheckCascade(EltCatalogWrite *cw, Oid relid, const char *type,
						 const char *schema, const char *name, const char *column)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {OIDOID, NAMEOID};
	Datum		args[2];
	char	   *policy;
	int			rule;
	char	   *object;
	char	   *reason;

	if (!elt_enabled || EltCurrentMigration() > 0 || !EltContractsReady() ||
		list_member_oid(judged_relids, relid))
		return;
	EltPrepare(&plan,
			   "SELECT COALESCE("
			   "  (SELECT g.policy FROM elt.governed_targets g"
			   "   WHERE g.kind = 'table' AND g.rel = $1::pg_catalog.regclass),"
			   "  (SELECT g.policy FROM elt.governed_targets g"
			   "   WHERE g.kind = 'schema' AND g.schema_name = $2)) AS policy"
			   " WHERE NOT " CREATED_NOW_SQL("$1::pg_catalog.regclass"),
			   2, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(schema));
	EltExecLatest(plan, args, NULL, 1);
	policy = SPI_processed > 0 ? EltSpiGetText(0, "policy") : NULL;
	/* off, or no stricter than what the statement itself went ahead under */
	if (policy == NULL || strcmp(policy, "off") == 0 ||
		policy_rank(policy) <= judged_rank)
		return;
	object = quote_qualified_identifier(schema, name);
	if (strcmp(type, "default value") == 0 && column != NULL)
	{
		rule = R_DROP_DEFAULT;
		object = psprintf("%s.%s", object, quote_identifier(column));
		reason = psprintf("drops the default of column %s as a side effect (CASCADE): writers that leave it out store NULL or fail",
						  object);
	}
	else if (column != NULL)
	{
		rule = R_DROP_COLUMN;
		object = psprintf("%s.%s", object, quote_identifier(column));
		reason = psprintf("drops column %s as a side effect (CASCADE or DROP OWNED): readers that select it fail",
						  object);
	}
	else if (strcmp(type, "table") == 0)
	{
		rule = R_DROP_TABLE;
		reason = psprintf("drops table %s as a side effect (CASCADE or DROP OWNED): its readers fail and its rows are gone",
						  object);
	}
	else
	{
		rule = R_DROP_VIEW;
		reason = psprintf("drops %s %s as a side effect (CASCADE or DROP OWNED): its readers fail",
						  type, object);
	}
	if (strcmp(policy, "enforce") == 0)
	{
		ereport(LOG,
				(errmsg("elt_governance blocked a change by role \"%s\": %s: %s",
						GetUserNameFromId(cw->actor, false), rules[rule].code, reason),
				 errhidecontext(true)));
		ereport(ERROR,
				(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
				 errmsg("%s: %s", rules[rule].code, reason),
				 errdetail("Class breaking; %s is governed with policy enforce.", object),
				 errhint("Drop the governed object by name, or run the statement inside an approved migration: SELECT elt.migration_begin(name, reason, approved_by).")));
	}
	ereport(WARNING,
			(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
			 errmsg("%s: %s", rules[rule].code, reason),
			 errdetail("Class breaking; %s is governed with policy warn.", object),
			 errhint("%s", rules[rule].suggestion)));
}

/* Whether the catalog has the contracts tables (extension at 0.2.0 or later). */
bool
EltContractsReady(void)
{
	return OidIsValid(EltCatalogRelid("schema_changes"));
}

/*
 * Classify a statement about to run, and block, warn about or record it.
 * Called from ddl_command_start and, for TRUNCATE, the ProcessUtility hook.
 */
void
EltContractsCheck(Node *parsetree, CommandTag tag)
{
	EltClassified c;
	EltCatalogWrite cw;

	forget_deferred();
	script_schemas = NIL;		/* only a dry run has a script */
	judged_rank = 0;
	list_free(judged_relids);
	judged_relids = NIL;
	if (!elt_enabled || parsetree == NULL || !EltCatalogReady() || !EltContractsReady())
		return;
	memset(&c, 0, sizeof(c));
	c.cxt = CurrentMemoryContext;
	c.actor = GetUserId();
	classify(&c, parsetree);
	if (c.cands == NIL)
		return;
	EltCatalogWriteBegin(&cw);
	if (EltAnyTarget())
	{
		ListCell   *lc;

		judge(&c, LockTimeout > 0);
		decide_and_record(&cw, &c, tag,
						  (IsA(parsetree, DropStmt) && ((DropStmt *) parsetree)->concurrent) ||
						  (IsA(parsetree, IndexStmt) && ((IndexStmt *) parsetree)->concurrent));
		/*
		 * It goes ahead: note what it was judged on, so that sql_drop judges
		 * only what it drops beyond that under a stricter policy.
		 */
		foreach(lc, c.cands)
		{
			EltCandidate *f = (EltCandidate *) lfirst(lc);

			if (f->rule >= 0 && RULE_IS_BREAKING(f->rule))
				judged_rank = Max(judged_rank, policy_rank(f->policy));
			/* what it names, found safe or not, is judged already */
			if (OidIsValid(f->relid))
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				judged_relids = list_append_unique_oid(judged_relids, f->relid);
				MemoryContextSwitchTo(old);
			}
		}
	}
	EltCatalogWriteEnd(&cw);
}

/* ------------------------------------------------------------------------
 * elt.check_ddl(sql): a dry run of a script
 * ------------------------------------------------------------------------
 */

/* A live relation now goes by another name; forget its earlier aliases. */
static void
script_alias(EltScript *s, Oid relid, char *qualified)
{
	List	   *names = NIL;
	List	   *oids = NIL;
	ListCell   *ln;
	ListCell   *lo;

	forboth(ln, s->alias_names, lo, s->alias_oids)
	{
		if (lfirst_oid(lo) != relid)
		{
			names = lappend(names, lfirst(ln));
			oids = lappend_oid(oids, lfirst_oid(lo));
		}
	}
	s->alias_names = lappend(names, qualified);
	s->alias_oids = lappend_oid(oids, relid);
	if (!list_member_oid(s->gone, relid))
		s->gone = lappend_oid(s->gone, relid);
}

/* Note what the script did to a column (attnum, 0 new, -1 gone). */
static void
script_add_col(EltScript *s, Oid relid, const char *col, int attnum)
{
	s->col_keys = lappend(s->col_keys, col_key(relid, col));
	s->col_attnums = lappend_int(s->col_attnums, attnum);
}

/* Whether a lock_timeout value ('5s', 5000, '0') sets a timeout. */
static bool
timeout_is_set(const char *value)
{
	int			ms = 0;
	char	   *v;

	if (value == NULL)
		return false;
	v = pstrdup(value);
	/* ExtractSetVariableArgs quotes strings */
	if (v[0] == '\'' && strlen(v) >= 2)
	{
		v[strlen(v) - 1] = '\0';
		v++;
	}
	if (!parse_int(v, &ms, GUC_UNIT_MS, NULL))
		return true;			/* PostgreSQL will refuse it; do not guess */
	return ms != 0;
}

/* Remember what a statement of the script does, for the later ones. */
static void
script_apply(EltClassified *c, Node *stmt)
{
	EltScript  *s = c->script;
	MemoryContext old = MemoryContextSwitchTo(c->cxt);
	Oid			relid;

	switch (nodeTag(stmt))
	{
		case T_CreateStmt:
			s->created = lappend(s->created, rangevar_qualified(((CreateStmt *) stmt)->relation));
			break;
		case T_CreateTableAsStmt:
			s->created = lappend(s->created,
								 rangevar_qualified(((CreateTableAsStmt *) stmt)->into->rel));
			break;
		case T_ViewStmt:
			s->created = lappend(s->created, rangevar_qualified(((ViewStmt *) stmt)->view));
			break;
		case T_CreateEnumStmt:
			s->created_types = lappend(s->created_types,
									   NameListToQuotedString(((CreateEnumStmt *) stmt)->typeName));
			break;
		case T_CreateDomainStmt:
			s->created_types = lappend(s->created_types,
									   NameListToQuotedString(((CreateDomainStmt *) stmt)->domainname));
			break;
		case T_CreateSchemaStmt:
			{
				CreateSchemaStmt *cs = (CreateSchemaStmt *) stmt;
				ListCell   *lc;

				if (cs->schemaname == NULL)
					break;
				s->created_schemas = lappend(s->created_schemas, pstrdup(cs->schemaname));
				script_schemas = s->created_schemas;
				/* tables and views created with it live in it */
				foreach(lc, cs->schemaElts)
				{
					Node	   *e = (Node *) lfirst(lc);
					RangeVar   *rv = IsA(e, CreateStmt) ? ((CreateStmt *) e)->relation :
						IsA(e, ViewStmt) ? ((ViewStmt *) e)->view : NULL;

					if (rv != NULL)
						s->created = lappend(s->created,
											 quote_qualified_identifier(rv->schemaname ? rv->schemaname : cs->schemaname,
																		rv->relname));
				}
				break;
			}
		case T_AlterTableStmt:
			{
				AlterTableStmt *at = (AlterTableStmt *) stmt;
				ListCell   *lc;

				if (at->relation == NULL || find_relation(c, at->relation, &relid) != FOUND_LIVE)
					break;
				foreach(lc, at->cmds)
				{
					AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

					if (cmd->subtype == AT_AddColumn && cmd->def && IsA(cmd->def, ColumnDef))
						script_add_col(s, relid, ((ColumnDef *) cmd->def)->colname, 0);
					else if (cmd->subtype == AT_DropColumn && cmd->name)
						script_add_col(s, relid, cmd->name, -1);
				}
				break;
			}
		case T_RenameStmt:
			{
				RenameStmt *rs = (RenameStmt *) stmt;

				if (rs->relation == NULL || find_relation(c, rs->relation, &relid) != FOUND_LIVE)
					break;
				if (rs->renameType == OBJECT_COLUMN)
				{
					FormData_pg_attribute att;

					if (find_column(c, relid, rs->subname, &att) == FOUND_LIVE)
						script_add_col(s, relid, rs->newname, att.attnum);
					else
						script_add_col(s, relid, rs->newname, 0);
					script_add_col(s, relid, rs->subname, -1);
				}
				else if (rs->renameType == OBJECT_TABLE || rs->renameType == OBJECT_VIEW ||
						 rs->renameType == OBJECT_MATVIEW)
					script_alias(s, relid,
								 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
															rs->newname));
				break;
			}
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *as = (AlterObjectSchemaStmt *) stmt;

				if (as->relation == NULL || find_relation(c, as->relation, &relid) != FOUND_LIVE)
					break;
				script_alias(s, relid,
							 quote_qualified_identifier(as->newschema, get_rel_name(relid)));
				break;
			}
		case T_DropStmt:
			{
				DropStmt   *ds = (DropStmt *) stmt;
				ListCell   *lc;

				if (ds->removeType != OBJECT_TABLE && ds->removeType != OBJECT_VIEW &&
					ds->removeType != OBJECT_MATVIEW)
					break;
				foreach(lc, ds->objects)
				{
					RangeVar   *rv = makeRangeVarFromNameList(castNode(List, lfirst(lc)));

					if (find_relation(c, rv, &relid) == FOUND_LIVE)
					{
						script_alias(s, relid, "");
						s->alias_names = list_truncate(s->alias_names, list_length(s->alias_names) - 1);
						s->alias_oids = list_truncate(s->alias_oids, list_length(s->alias_oids) - 1);
					}
				}
				break;
			}
		case T_VariableSetStmt:
			{
				VariableSetStmt *vs = (VariableSetStmt *) stmt;

				/* later names resolve in the script's search_path */
				if (vs->name != NULL && strcmp(vs->name, "search_path") == 0)
				{
					if (vs->kind == VAR_SET_VALUE)
						(void) set_config_option("search_path", ExtractSetVariableArgs(vs),
												 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
												 true, 0, false);
					else if (vs->kind == VAR_SET_DEFAULT || vs->kind == VAR_RESET)
						(void) set_config_option("search_path", NULL,
												 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
												 true, 0, false);
					break;
				}
				if (vs->name == NULL || strcmp(vs->name, "lock_timeout") != 0)
					break;
				if (vs->kind == VAR_SET_VALUE)
					s->lock_timeout = timeout_is_set(ExtractSetVariableArgs(vs));
				else if (vs->kind == VAR_SET_DEFAULT || vs->kind == VAR_RESET)
					s->lock_timeout = timeout_is_set(GetConfigOptionResetString("lock_timeout"));
				break;
			}
		default:
			break;
	}
	MemoryContextSwitchTo(old);
}

/* The text of one statement of a script, trimmed. */
static char *
statement_text(const char *sql, RawStmt *rs)
{
	int			len = strlen(sql);
	int			start = rs->stmt_location < 0 ? 0 : rs->stmt_location;
	int			end = rs->stmt_len > 0 ? start + rs->stmt_len : len;

	if (end > len)
		end = len;
	while (start < end && isspace((unsigned char) sql[start]))
		start++;
	while (end > start && (isspace((unsigned char) sql[end - 1]) || sql[end - 1] == ';'))
		end--;
	return pnstrdup(sql + start, end - start);
}

/* Parse a script; a syntax error points at its line and column. */
static List *
parse_script(const char *sql)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *stmts = NIL;

	PG_TRY();
	{
		stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			line = 1;
		int			col = 1;
		int			i;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* cursorpos counts characters from 1 */
		for (i = 0; sql[i] != '\0' && i < edata->cursorpos - 1;)
		{
			int			l = pg_mblen(&sql[i]);

			if (sql[i] == '\n')
			{
				line++;
				col = 1;
			}
			else
				col++;
			i += l;
		}
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("%s in the script at line %d, column %d", edata->message, line, col),
				 edata->cursorpos > 0 ? internalerrposition(edata->cursorpos) : 0,
				 edata->cursorpos > 0 ? internalerrquery(sql) : 0,
				 errhint("elt.check_ddl() parses the whole script before it classifies any statement.")));
	}
	PG_END_TRY();
	return stmts;
}

/*
 * elt.check_ddl(sql): parse the script, then classify and judge each
 * statement in turn (as the caller, then in the catalog context), remembering
 * what it does for the later ones.  Nothing is executed.
 */
/* Error context: which statement of the script was being checked. */
static void
check_ddl_context(void *arg)
{
	errcontext("elt.check_ddl(), statement %d of the script", *(int *) arg);
}

PG_FUNCTION_INFO_V1(elt_check_ddl);
Datum
elt_check_ddl(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *stmts;
	ListCell   *lc;
	EltScript	script;
	EltClassified c;
	int			n = 0;
	bool		governed;
	int			guc_level;
	ErrorContextCallback errcb;

	if (!EltContractsReady())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the elt_governance catalog is older than its library"),
				 errhint("Run ALTER EXTENSION elt_governance UPDATE.")));
	InitMaterializedSRF(fcinfo, 0);
	stmts = parse_script(sql);

	memset(&script, 0, sizeof(script));
	script.lock_timeout = LockTimeout > 0;
	memset(&c, 0, sizeof(c));
	c.script = &script;
	c.cxt = CurrentMemoryContext;
	c.actor = GetUserId();

	{
		EltCatalogWrite cw;

		EltCatalogWriteBegin(&cw);
		governed = EltAnyTarget();
		EltCatalogWriteEnd(&cw);
	}
	/* SET search_path in the script holds until the end of the check */
	guc_level = NewGUCNestLevel();
	script_schemas = NIL;

	errcb.callback = check_ddl_context;
	errcb.arg = &n;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	foreach(lc, stmts)
	{
		RawStmt    *rs = lfirst_node(RawStmt, lc);
		char	   *text = statement_text(sql, rs);
		ListCell   *fc;

		n++;
		c.cands = NIL;
		classify(&c, rs->stmt);
		if (c.cands != NIL)
		{
			EltCatalogWrite cw;

			EltCatalogWriteBegin(&cw);
			if (governed)
				judge(&c, script.lock_timeout);
			else
			{
				/* only EG001 can concern an ungoverned database */
				List	   *kept = NIL;

				foreach(fc, c.cands)
				{
					if (((EltCandidate *) lfirst(fc))->rule == R_MISSING)
						kept = lappend(kept, lfirst(fc));
				}
				c.cands = kept;
			}
			EltCatalogWriteEnd(&cw);
		}
		foreach(fc, c.cands)
		{
			EltCandidate *f = (EltCandidate *) lfirst(fc);
			Datum		values[8];
			bool		nulls[8] = {false, false, false, false, false, false, false, false};

			if (f->rule < 0)
				continue;
			values[0] = Int32GetDatum(n);
			values[1] = CStringGetTextDatum(text);
			values[2] = CStringGetTextDatum(rules[f->rule].code);
			values[3] = CStringGetTextDatum(rules[f->rule].class);
			values[4] = CStringGetTextDatum(f->object);
			values[5] = CStringGetTextDatum(f->reason);
			values[6] = text_array(f->dependents);
			values[7] = CStringGetTextDatum(rules[f->rule].suggestion);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		script_apply(&c, rs->stmt);
	}
	error_context_stack = errcb.previous;
	AtEOXact_GUC(true, guc_level);
	script_schemas = NIL;
	return (Datum) 0;
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

		values[0] = CStringGetTextDatum(rules[i].code);
		values[1] = CStringGetTextDatum(rules[i].class);
		values[2] = CStringGetTextDatum(rules[i].title);
		values[3] = CStringGetTextDatum(rules[i].suggestion);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
