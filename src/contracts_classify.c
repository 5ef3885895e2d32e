/*
 * contracts_classify.c — step 1 of the contracts engine: every DDL statement
 * that may touch a governed object is classified from its parse tree,
 * against the live catalog, before PostgreSQL runs it.
 *
 * Owns: the classify_* functions, one per kind of statement (ALTER TABLE,
 * RENAME, SET SCHEMA, DROP, ALTER TYPE ... VALUE, ALTER DOMAIN, CREATE
 * INDEX, TRUNCATE), which turn a statement into candidates: findings under
 * a rule of the table in contracts_rules.c, and "touches" of objects with
 * no finding; the EG208 candidates of the locks each takes.  Scans,
 * builds and rewrites are marked CAND_NEEDS_SIZE (add_cand).  Rebuild
 * commands (REINDEX, VACUUM, CLUSTER, REFRESH MATERIALIZED VIEW) are
 * dispatched to contracts_maintain.c.  Nothing here knows about policies:
 * contracts_judge.c keeps the candidates that concern governed objects.
 *
 * Calls: contracts_newer.c (ALTER TABLE forms of 17 and 18: SET EXPRESSION,
 * NOT NULL constraints, ALTER CONSTRAINT ... ENFORCED); contracts_maintain.c (rebuilds, locks, domain scans, EG214, no-op
 * settings); contracts_keys.c (unique keys: twins, key swaps);
 * contracts_rules.c (names, rule codes, type widening); deploy.c
 * (the table elt.deploy_init() is moving).  Called by contracts_judge.c
 * (live statements), contracts_script.c (elt.check_ddl()) and, for
 * EltEnumAddFindsValue, the version recorder.
 *
 * Runs in the caller's context (its search_path resolves the names) and
 * allocates candidates in c->cxt.  Runs no SQL.  Takes no lock itself;
 * contracts_keys.c takes AccessShareLock on a table whose unique keys it
 * compares (the statement takes a stronger lock on it anyway).
 */
#include "postgres.h"

#include <ctype.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
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
#include "commands/defrem.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "mb/pg_wchar.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "parser/parse_coerce.h"
#include "parser/parse_type.h"
#include "parser/parse_utilcmd.h"
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

/* A type with its modifier, as in a column definition. */
static char *
type_display(Oid typid, int32 typmod)
{
	return format_type_with_typemod(typid, typmod);
}

/* ------------------------------------------------------------------------
 * Step 1: classify a statement from its parse tree
 * ------------------------------------------------------------------------
 */

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

/* Tables, partitioned tables, views and materialized views. */
static bool
is_table_or_view_kind(char relkind)
{
	return is_table_kind(relkind) || is_view_kind(relkind);
}

/*
 * The guard at the top of a classify_* function on a relation: find it,
 * live or as a check_ddl script left it; report EG001 for one that is
 * missing unless missing_ok; true only for a live relation of a kind the
 * caller judges (kind_ok NULL: any kind), with *relid and *relkind set.
 * A relation the script created is new: nothing to judge.
 */
static bool
target_relation(EltClassified *c, const RangeVar *rv, bool missing_ok,
				bool (*kind_ok) (char relkind), Oid *relid, char *relkind)
{
	EltFound	f = EltFindRelation(c, rv, relid);

	if (f == FOUND_NEW)
		return false;
	if (f == FOUND_MISSING)
	{
		if (!missing_ok)
			EltAddMissing(c, EltRangeVarQualified(rv), "relation");
		return false;
	}
	*relkind = get_rel_relkind(*relid);
	return kind_ok == NULL || kind_ok(*relkind);
}

static void classify_add_constraint(EltClassified *c, Oid relid, Constraint *con);

/*
 * A column subcommand: look the column up (EG001 if it is missing, unless
 * missing_ok); returns false if there is nothing to judge.
 */
static bool
column_of(EltClassified *c, Oid relid, const char *name, bool missing_ok,
		  FormData_pg_attribute *att, char **object)
{
	EltFound	f;

	if (name == NULL)
		return false;
	f = EltFindColumn(c, relid, name, att);
	if (f == FOUND_NEW)
		return false;
	*object = EltColDisplay(relid, name);
	/* a script's ADD COLUMN merged into an inheritor's column: judged as live */
	if (f == FOUND_MISSING && c->script != NULL && EltInheritorHasColumn(c, relid, name, att))
		return true;
	if (f == FOUND_MISSING)
	{
		if (!missing_ok)
			EltAddMissing(c, *object, "column");
		return false;
	}
	return true;
}

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
	/* live, or added by the script: IF NOT EXISTS does nothing; else it fails */
	if (EltFindColumn(c, relid, cd->colname, &att) != FOUND_MISSING)
		return;
	object = EltColDisplay(relid, cd->colname);
	if (EltIsSerialType(cd->typeName))
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
				if (EltRawVolatileWalker(con->raw_expr, NULL))
					rewrite = true;
				break;
			case CONSTR_IDENTITY:
			case CONSTR_GENERATED:
				has_default = true;
				rewrite = !EltGeneratedIsVirtual(con);	/* 18: VIRTUAL, no rewrite */
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
		EltAddCandidate(c, R_ADD_NOT_NULL_COLUMN, relid, 0, NULL, object,
				 psprintf("adds column %s NOT NULL without a default: every INSERT that does not name it fails",
						  object), CAND_WRITERS);
	if (rewrite)
		EltAddCandidate(c, R_VOLATILE_DEFAULT, relid, 0, NULL, object,
				 psprintf("adds column %s whose default is computed per row: the table is rewritten under an ACCESS EXCLUSIVE lock",
						  object), 0);
	if (builds_index)
		EltAddCandidate(c, R_INDEX_BUILD, relid, 0, NULL, object,
				 psprintf("adds column %s with a PRIMARY KEY or UNIQUE constraint: its index is built under an ACCESS EXCLUSIVE lock",
						  object), 0);
	if (!not_null || has_default)
		EltAddCandidate(c, -1, relid, 0, NULL, object, NULL, 0);
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

	if (!column_of(c, relid, cmd->name, false, &att, &object))
		return;
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
	widening = EltTypeIsWidening(att.atttypid, att.atttypmod, ntyp, nmod) && !using;
	rewrite = EltTypeChangeRewrites(att.atttypid, att.atttypmod, ntyp, nmod, using);
	if (collation_changes && widening)
		EltAddCandidate(c, R_TYPE_NARROWING, relid, att.attnum, cmd->name, object,
				 psprintf("changes the collation of column %s: ordering, comparisons and unique keys change for readers",
						  object), 0);
	if (!widening)
		EltAddCandidate(c, R_TYPE_NARROWING, relid, att.attnum, cmd->name, object,
				 psprintf("changes column %s from %s to %s, which is not a widening: values or their text change for readers",
						  object, from, to), 0);
	if (rewrite)
		EltAddCandidate(c, R_TYPE_REWRITE, relid, att.attnum, cmd->name, object,
				 psprintf("changes column %s from %s to %s, which rewrites the table and its indexes under an ACCESS EXCLUSIVE lock",
						  object, from, to), 0);
	else
	{
		Oid			ncoll = cd->collClause != NULL ?
			get_collation_oid(cd->collClause->collname, true) : get_typcollation(ntyp);
		char	   *indexes = EltIndexesRebuilt(relid, att.attnum, att.atttypid,
												att.attcollation, ntyp, ncoll);

		if (indexes != NULL)
			EltAddCandidate(c, R_INDEX_REBUILD, relid, att.attnum, cmd->name, object,
					 psprintf("changes column %s from %s to %s, which does not rewrite the table but rebuilds its index%s %s under an ACCESS EXCLUSIVE lock",
							  object, from, to, strchr(indexes, ',') ? "es" : "", indexes), 0);
	}
	EltAddCandidate(c, -1, relid, att.attnum, cmd->name, object, NULL, 0);
}

/*
 * Whether the key columns of index indexname of relid are all NOT NULL, as
 * the script left them (a column it SET NOT NULL counts; an index it built
 * is read from its CREATE INDEX).  An index that is not there is EG001
 * (the statement fails), and "true".
 */
static bool
index_columns_not_null(EltClassified *c, Oid relid, const char *indexname)
{
	RangeVar   *rv = makeRangeVar(get_namespace_name(get_rel_namespace(relid)),
								  pstrdup(indexname), -1);
	Oid			indexoid;
	HeapTuple	tup;
	Form_pg_index idx;
	bool		all = true;
	int			i;
	ListCell   *lc;

	switch (EltFindRelation(c, rv, &indexoid))
	{
		case FOUND_MISSING:
			EltAddMissing(c, EltRangeVarQualified(rv), "index");
			return true;
		case FOUND_NEW:
			/* (not a unique index of relid the script built: the statement fails) */
			foreach(lc, c->script->index_stmts)
			{
				IndexStmt  *is = (IndexStmt *) lfirst(lc);
				ListCell   *ec;

				if (strcmp(is->idxname, indexname) != 0 ||
					RangeVarGetRelid(is->relation, NoLock, true) != relid)
					continue;
				all = true;
				foreach(ec, is->indexParams)
				{
					IndexElem  *e = (IndexElem *) lfirst(ec);

					if (e->name != NULL && !EltScriptColumnNotNull(c, relid, 0, e->name))
						all = false;
				}
			}
			return all;
		default:
			break;
	}
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(tup))
		return true;
	idx = (Form_pg_index) GETSTRUCT(tup);
	for (i = 0; i < idx->indnkeyatts; i++)
	{
		AttrNumber	a = idx->indkey.values[i];

		if (a > 0 && !EltScriptColumnNotNull(c, relid, a, NULL))
			all = false;
	}
	ReleaseSysCache(tup);
	return all;
}

static void
classify_add_constraint(EltClassified *c, Oid relid, Constraint *con)
{
	char	   *table = EltRelDisplay(relid);
	char	   *name = con->conname ? psprintf("%s on %s", quote_identifier(con->conname), table) :
		psprintf("(unnamed) on %s", table);

	switch (con->contype)
	{
		case CONSTR_CHECK:
			if (con->skip_validation)
				break;
			EltAddCandidate(c, R_ADD_CHECK, relid, 0, NULL, table,
					 psprintf("adds CHECK constraint %s: writes that break it start to fail", name),
					 CAND_WRITERS);
			EltAddCandidate(c, R_VALIDATION_SCAN, relid, 0, NULL, table,
					 psprintf("adds CHECK constraint %s without NOT VALID: the whole table is scanned under an ACCESS EXCLUSIVE lock", name), 0);
			break;
		case CONSTR_FOREIGN:
			if (con->skip_validation)
				break;
			EltAddCandidate(c, R_ADD_FOREIGN_KEY, relid, 0, NULL, table,
					 psprintf("adds FOREIGN KEY %s: writes of keys missing from the referenced table start to fail", name),
					 CAND_WRITERS);
			EltAddCandidate(c, R_VALIDATION_SCAN, relid, 0, NULL, table,
					 psprintf("adds FOREIGN KEY %s without NOT VALID: the whole table is scanned while writes are blocked", name),
					 0)->lockmode = ShareRowExclusiveLock;
			break;
		case CONSTR_PRIMARY:
		case CONSTR_UNIQUE:
		case CONSTR_EXCLUSION:
			if (con->indexname != NULL)
			{
				/* the index already enforces it; a primary key adds NOT NULL */
				if (!index_columns_not_null(c, relid, con->indexname) &&
					con->contype == CONSTR_PRIMARY)
				{
					EltAddCandidate(c, R_SET_NOT_NULL, relid, 0, NULL, table,
							 psprintf("adds PRIMARY KEY %s over nullable columns, which become NOT NULL: writers that store NULL start to fail", name),
							 CAND_WRITERS);
					EltAddCandidate(c, R_NOT_NULL_SCAN, relid, 0, NULL, table,
							 psprintf("adds PRIMARY KEY %s over nullable columns: the whole table is scanned under an ACCESS EXCLUSIVE lock", name), 0);
				}
				break;
			}
			EltAddCandidate(c, R_ADD_UNIQUE, relid, 0, NULL, table,
					 psprintf("adds %s constraint %s: writes of duplicate values start to fail",
							  con->contype == CONSTR_PRIMARY ? "PRIMARY KEY" :
							  con->contype == CONSTR_UNIQUE ? "UNIQUE" : "EXCLUDE", name),
					 CAND_WRITERS);
			EltAddCandidate(c, R_INDEX_BUILD, relid, 0, NULL, table,
					 psprintf("adds constraint %s without USING INDEX: its index is built under an ACCESS EXCLUSIVE lock", name), 0);
			break;
		case CONSTR_NOTNULL:	/* 18: ADD CONSTRAINT nn NOT NULL col */
			EltClassifyNotNullConstraint(c, relid, con);
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

/* Whether relid's schema has a relation of that name, live or as the script left it. */
static bool
index_named(EltClassified *c, Oid relid, const char *name)
{
	Oid			found;

	return name != NULL &&
		EltFindRelation(c, makeRangeVar(get_namespace_name(get_rel_namespace(relid)),
										pstrdup(name), -1), &found) != FOUND_MISSING;
}

/* ALTER TABLE: every subcommand on a table or partitioned table. */
static void
classify_alter_table(EltClassified *c, AlterTableStmt *stmt)
{
	Oid			relid;
	ListCell   *lc;
	char		relkind;

	if (stmt->objtype != OBJECT_TABLE || stmt->relation == NULL ||
		!target_relation(c, stmt->relation, stmt->missing_ok, is_table_kind, &relid, &relkind))
		return;

	c->recurse = stmt->relation->inh;
	EltAddCandidate(c, -1, relid, 0, NULL, EltRelDisplay(relid), NULL, 0);
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
				if (!column_of(c, relid, cmd->name, cmd->missing_ok, &att, &object))
					break;
				EltAddCandidate(c, R_DROP_COLUMN, relid, att.attnum, cmd->name, object,
						 psprintf("drops column %s: readers that select it fail", object), 0);
				break;
			case AT_AlterColumnType:
				classify_type_change(c, relid, cmd);
				break;
			case AT_SetNotNull:
				/* 18: a NOT VALID NOT NULL is validated (scanned) by it */
				if (!column_of(c, relid, cmd->name, false, &att, &object) ||
					EltAttNotNullState(relid, att.attnum, att.attnotnull) == 'v')
					break;
				if (!att.attnotnull)
					EltAddCandidate(c, R_SET_NOT_NULL, relid, att.attnum, cmd->name, object,
							 psprintf("sets column %s NOT NULL: writers that store NULL in it start to fail", object),
							 CAND_WRITERS | CAND_NOT_NULL_PROOF);
				EltAddCandidate(c, R_NOT_NULL_SCAN, relid, att.attnum, cmd->name, object,
						 psprintf("sets column %s NOT NULL: the whole table is scanned under an ACCESS EXCLUSIVE lock", object),
						 CAND_NOT_NULL_PROOF);
				break;
			case AT_DropNotNull:
				if (!column_of(c, relid, cmd->name, false, &att, &object) || !att.attnotnull)
					break;
				EltAddCandidate(c, R_DROP_NOT_NULL, relid, att.attnum, cmd->name, object,
						 psprintf("drops NOT NULL on column %s: readers that rely on a value meet NULL", object), 0);
				break;
			case AT_ColumnDefault:
				if (!column_of(c, relid, cmd->name, false, &att, &object))
					break;
				if (cmd->def == NULL ||
					(IsA(cmd->def, A_Const) && ((A_Const *) cmd->def)->isnull))
				{
					if (att.atthasdef)
						EltAddCandidate(c, R_DROP_DEFAULT, relid, att.attnum, cmd->name, object,
								 psprintf("drops the default of column %s: writers that leave it out store NULL or fail", object),
								 CAND_WRITERS);
				}
				else
					EltAddCandidate(c, -1, relid, att.attnum, cmd->name, object, NULL, 0);
				break;
			case AT_DropIdentity:
				if (!column_of(c, relid, cmd->name, false, &att, &object) || att.attidentity == '\0')
					break;
				EltAddCandidate(c, R_DROP_DEFAULT, relid, att.attnum, cmd->name, object,
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
				if (column_of(c, relid, cmd->name, false, &att, &object) &&
					(cmd->subtype == AT_AddIdentity || cmd->subtype == AT_SetIdentity ||
					 cmd->subtype == AT_DropExpression))
					EltAddCandidate(c, -1, relid, att.attnum, cmd->name, object, NULL, 0);
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
						cand = EltAddCandidate(c, R_DETACH_PARTITION, parent, 0, NULL, EltRelDisplay(parent),
										psprintf("takes %s out of the inheritance of %s: readers of %s no longer see its rows",
												 EltRelDisplay(relid), EltRelDisplay(parent), EltRelDisplay(parent)), 0);
						cand->recurse = false;
						cand->privrel = relid;	/* the child's owner runs it */
					}
				}
				break;
			case AT_EnableRowSecurity:
			case AT_ForceRowSecurity:
				EltAddCandidate(c, R_ROW_SECURITY, relid, 0, NULL, EltRelDisplay(relid),
						 psprintf("%s row level security on %s: readers no policy lets through see no rows",
								  cmd->subtype == AT_EnableRowSecurity ? "enables" : "forces",
								  EltRelDisplay(relid)), 0);
				break;
			case AT_DropConstraint:
				if (cmd->name != NULL)
				{
					char		contype = constraint_type(relid, cmd->name);

					/* 18: a NOT NULL constraint: DROP NOT NULL of its column */
					if (contype != '\0' && contype == EltConstraintNotNull)
						EltClassifyDropNotNullConstraint(c, relid, cmd->name);
					/* not half of a swap for an index on the same key */
					if ((contype == CONSTRAINT_PRIMARY || contype == CONSTRAINT_UNIQUE) &&
						!EltKeySwapKeepsKey(c, relid, cmd->name, contype, stmt->cmds))
						EltAddCandidate(c, R_DROP_UNIQUE, relid, 0, NULL, EltRelDisplay(relid),
								 psprintf("drops %s constraint %s of %s: upserts (ON CONFLICT) and foreign keys that rely on it fail, and duplicates become possible",
										  contype == CONSTRAINT_PRIMARY ? "PRIMARY KEY" : "UNIQUE",
										  quote_identifier(cmd->name), EltRelDisplay(relid)), 0);
				}
				break;
			case AT_DetachPartition:
				if (cmd->def != NULL && IsA(cmd->def, PartitionCmd))
				{
					Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
														NoLock, true);

					/*
					 * Not breaking: the parent's shape is unchanged, and rows
					 * leave with a partition on purpose (retention, archiving,
					 * pg_partman).  Recorded as a safe change of the parent.
					 */
					if (OidIsValid(part))
					{
						EltCandidate *cand;

						cand = EltAddCandidate(c, -1, relid, 0, NULL, EltRelDisplay(relid), NULL, 0);
						cand->recurse = false;	/* siblings are not touched */
					}
				}
				break;
			case AT_SetTableSpace:
			case AT_SetLogged:
			case AT_SetUnLogged:
			case AT_SetAccessMethod:
				/* (the catalog's setting is not the one the script left) */
				if (relkind == RELKIND_PARTITIONED_TABLE ||
					((c->script == NULL ||
					  !EltStringMember(c->script->settings_changed, EltSettingKey(relid, cmd))) &&
					 EltTableSettingIsNoop(relid, cmd)))
					break;		/* no storage of its own to copy, or no change */
				EltAddCandidate(c, R_TABLE_REWRITE, relid, 0, NULL, EltRelDisplay(relid),
						 psprintf("%s copies every row of %s under an ACCESS EXCLUSIVE lock",
								  cmd->subtype == AT_SetTableSpace ? "SET TABLESPACE" :
								  cmd->subtype == AT_SetLogged ? "SET LOGGED" :
								  cmd->subtype == AT_SetUnLogged ? "SET UNLOGGED" :
								  "SET ACCESS METHOD",
								  EltRelDisplay(relid)), 0);
				break;
			default:
				/* 17 and 18: SET EXPRESSION, ALTER CONSTRAINT ... ENFORCED */
				(void) EltClassifyNewerAlter(c, relid, cmd);
				break;
		}
	}
	EltAlterTableLocks(c, relid, stmt);
}

static void classify_type_rename(EltClassified *c, List *names, const char *what,
								 const char *to);

/* RENAME of a schema, table, view, materialized view or column. */
static void
classify_rename(EltClassified *c, RenameStmt *stmt)
{
	Oid			relid;
	char		relkind;

	switch (stmt->renameType)
	{
		case OBJECT_SCHEMA:
			{
				Oid			nsp = get_namespace_oid(stmt->subname, true);
				EltCandidate *cand;

				if (!OidIsValid(nsp))
					return;
				cand = EltAddCandidate(c, R_RENAME_SCHEMA, InvalidOid, 0, NULL,
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
	if (stmt->relation == NULL ||
		!target_relation(c, stmt->relation, stmt->missing_ok, is_table_or_view_kind,
						 &relid, &relkind))
		return;
	if (stmt->renameType == OBJECT_COLUMN)
	{
		FormData_pg_attribute att;
		char	   *object;
		EltCandidate *cand;

		if (!column_of(c, relid, stmt->subname, false, &att, &object))
			return;
		c->recurse = stmt->relation->inh;
		cand = EltAddCandidate(c, R_RENAME_COLUMN, relid, att.attnum, stmt->subname, object,
						psprintf("renames column %s to %s: readers that select it by its old name fail",
								 object, quote_identifier(stmt->newname)), 0);
		cand->newname = pstrdup(stmt->newname);
		EltAddLock(c, relid, AccessExclusiveLock);
		return;
	}
	EltAddCandidate(c, R_RENAME_TABLE, relid, 0, NULL, EltRelDisplay(relid),
			 psprintf("renames %s %s to %s: readers that name it fail",
					  is_view_kind(relkind) ? "view" : "table", EltRelDisplay(relid),
					  quote_identifier(stmt->newname)), 0);
	EltAddLock(c, relid, AccessExclusiveLock);
}

/* ALTER TABLE/VIEW ... SET SCHEMA: a rename of the qualified name. */
static void
classify_set_schema(EltClassified *c, AlterObjectSchemaStmt *stmt)
{
	Oid			relid;
	char		relkind;

	if ((stmt->objectType == OBJECT_TYPE || stmt->objectType == OBJECT_DOMAIN) &&
		stmt->object != NULL && IsA(stmt->object, List))
	{
		classify_type_rename(c, (List *) stmt->object, "moves",
							 psprintf("to schema %s", quote_identifier(stmt->newschema)));
		return;
	}
	if ((stmt->objectType != OBJECT_TABLE && stmt->objectType != OBJECT_VIEW &&
		 stmt->objectType != OBJECT_MATVIEW) || stmt->relation == NULL ||
		!target_relation(c, stmt->relation, stmt->missing_ok, is_table_or_view_kind,
						 &relid, &relkind))
		return;
	/* elt.deploy_init() puts a view of the same name and columns in its place */
	if (relid == EltDeployMovingTable)
		return;
	EltAddCandidate(c, R_RENAME_TABLE, relid, 0, NULL, EltRelDisplay(relid),
			 psprintf("moves %s %s to schema %s: readers that name it fail",
					  is_view_kind(relkind) ? "view" : "table", EltRelDisplay(relid),
					  quote_identifier(stmt->newschema)), 0);
	EltAddLock(c, relid, AccessExclusiveLock);
}

/* The indexes a DROP INDEX statement names that exist. */
static List *
drop_index_oids(DropStmt *stmt)
{
	List	   *oids = NIL;
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		Oid			oid = RangeVarGetRelid(makeRangeVarFromNameList(castNode(List, lfirst(lc))),
										   NoLock, true);

		if (OidIsValid(oid))
			oids = lappend_oid(oids, oid);
	}
	return oids;
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
					(c->script == NULL || !EltStringMember(c->script->created_schemas, name)))
					EltAddMissing(c, pstrdup(quote_identifier(name)), "schema");
				continue;
			}
			cand = EltAddCandidate(c, R_DROP_SCHEMA, InvalidOid, 0, NULL,
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
			char		relkind;

			if (!target_relation(c, rv, stmt->missing_ok, NULL, &relid, &relkind))
				continue;
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
						/* not when a twin with the same key stays (pg_repack --only-indexes) */
						if (((Form_pg_index) GETSTRUCT(itup))->indisunique &&
							(stmt->behavior == DROP_CASCADE ||
							 !EltUniqueIndexHasTwin(table, relid, drop_index_oids(stmt))))
							EltAddCandidate(c, R_DROP_UNIQUE, table, 0, NULL, EltRelDisplay(table),
									 psprintf("drops unique index %s of %s: upserts (ON CONFLICT) that rely on it fail, and duplicates become possible",
											  EltRelDisplay(relid), EltRelDisplay(table)), 0);
						ReleaseSysCache(itup);
					}
				}
				if (!stmt->concurrent)
				{
					EltCandidate *cand;

					cand = EltAddCandidate(c, R_DROP_INDEX, table, 0, NULL, EltRelDisplay(relid),
									psprintf("drops index %s of %s without CONCURRENTLY: reads and writes of the table wait for it",
											 EltRelDisplay(relid), EltRelDisplay(table)),
									CAND_NEEDS_SIZE);
					cand->lockmode = AccessExclusiveLock;
					EltAddLock(c, table, AccessExclusiveLock);
				}
				EltAddCandidate(c, -1, table, 0, NULL, EltRelDisplay(table), NULL, 0);
			}
			else if (is_table_kind(relkind))
			{
				/* partitions go with their table, children with CASCADE */
				c->recurse = true;
				EltAddCandidate(c, R_DROP_TABLE, relid, 0, NULL, EltRelDisplay(relid),
						 psprintf("drops table %s: its readers fail and its rows are gone", EltRelDisplay(relid)),
						 get_rel_relispartition(relid) ? CAND_PARTITION : 0);
				c->recurse = false;
				EltAddLock(c, relid, AccessExclusiveLock);
			}
			else if (is_view_kind(relkind))
			{
				EltAddCandidate(c, R_DROP_VIEW, relid, 0, NULL, EltRelDisplay(relid),
						 psprintf("drops %s %s: its readers fail",
								  relkind == RELKIND_MATVIEW ? "materialized view" : "view",
								  EltRelDisplay(relid)), 0);
				EltAddLock(c, relid, AccessExclusiveLock);
			}
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
 * The guard at the top of classify_domain and classify_enum: find the type
 * a statement names; for check_ddl, report EG001 (as a "what") for one that
 * is missing and not created earlier in the script; true only when it is
 * of the kind (typtype) the caller judges.
 */
static bool
target_type(EltClassified *c, List *names, char typtype, const char *what, Oid *typid)
{
	*typid = type_from_names(names);
	if (!OidIsValid(*typid))
	{
		if (c->script != NULL &&
			!EltStringMember(c->script->created_types, NameListToQuotedString(names)))
			EltAddMissing(c, NameListToQuotedString(names), what);
		return false;
	}
	return get_typtype(*typid) == typtype;
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
	cand = EltAddCandidate(c, R_RENAME_TABLE, InvalidOid, 0, NULL, object,
					psprintf("%s type %s %s: readers and writers that name it (casts, function signatures) fail",
							 what, object, to), 0);
	cand->typid = typid;
}

/* ALTER DOMAIN: its default, NOT NULL and constraints apply to every column of it. */
static void
classify_domain(EltClassified *c, AlterDomainStmt *stmt)
{
	Oid			typid;
	char	   *object;
	HeapTuple	tup;
	bool		notnull = false;
	bool		hasdefault = false;
	EltCandidate *cand = NULL;

	if (!target_type(c, stmt->typeName, TYPTYPE_DOMAIN, "domain", &typid))
		return;
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
				cand = EltAddCandidate(c, R_DROP_DEFAULT, InvalidOid, 0, NULL, object,
								psprintf("drops the default of domain %s: writers that leave its columns out store NULL or fail",
										 object), CAND_WRITERS);
			break;
		case 'N':
			if (notnull)
				cand = EltAddCandidate(c, R_DROP_NOT_NULL, InvalidOid, 0, NULL, object,
								psprintf("drops NOT NULL on domain %s: readers of its columns meet NULL", object), 0);
			break;
		case 'O':
			if (!notnull)
			{
				cand = EltAddCandidate(c, R_SET_NOT_NULL, InvalidOid, 0, NULL, object,
								psprintf("sets domain %s NOT NULL: writers that store NULL in its columns start to fail",
										 object), CAND_WRITERS);
				EltAddDomainScans(c, typid, R_NOT_NULL_SCAN, "sets NOT NULL on domain");
			}
			break;
		case 'C':
			if (stmt->def != NULL && IsA(stmt->def, Constraint) &&
				!((Constraint *) stmt->def)->skip_validation)
			{
				cand = EltAddCandidate(c, R_ADD_CHECK, InvalidOid, 0, NULL, object,
								psprintf("adds a constraint to domain %s: writes of its columns that break it start to fail",
										 object), CAND_WRITERS);
				EltAddDomainScans(c, typid, R_VALIDATION_SCAN,
								  "adds a constraint without NOT VALID to domain");
			}
			break;
		case 'V':
			EltAddDomainScans(c, typid, R_DOMAIN_VALIDATE, "validates a constraint of domain");
			break;
		default:
			break;
	}
	if (cand == NULL)
		cand = EltAddCandidate(c, -1, InvalidOid, 0, NULL, object, NULL, 0);
	cand->typid = typid;
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
	Oid			typid;
	char	   *object;
	EltCandidate *cand;

	if (!target_type(c, stmt->typeName, TYPTYPE_ENUM, "type", &typid))
		return;
	object = format_type_be_qualified(typid);
	if (EltEnumAddFindsValue(stmt))
		return;					/* IF NOT EXISTS on a value that exists */
	if (stmt->oldVal != NULL)
		cand = EltAddCandidate(c, R_ENUM_RENAME_VALUE, InvalidOid, 0, NULL, object,
						psprintf("renames value %s of type %s to %s: rows and readers that use the old value change meaning",
								 quote_literal_cstr(stmt->oldVal), object,
								 quote_literal_cstr(stmt->newVal)), 0);
	else
		cand = EltAddCandidate(c, R_ENUM_ADD_VALUE, InvalidOid, 0, NULL, object,
						psprintf("adds value %s to type %s%s: readers that handle a closed set of values (an ORM's or a client language's enum) meet one they do not know",
								 quote_literal_cstr(stmt->newVal), object,
								 stmt->newValNeighbor == NULL ? ", sorted last" : ""), 0);
	cand->typid = typid;
}


/* CREATE INDEX: unique (stricter writes) and blocking builds. */
static void
classify_index(EltClassified *c, IndexStmt *stmt)
{
	Oid			relid;
	char		relkind;
	char	   *table;
	char	   *name;

	if (stmt->relation == NULL ||
		!target_relation(c, stmt->relation, false, is_table_kind, &relid, &relkind))
		return;
	/* IF NOT EXISTS on an index that exists (live or the script's) does nothing */
	if (stmt->if_not_exists && index_named(c, relid, stmt->idxname))
		return;
	c->recurse = stmt->relation->inh;
	table = EltRelDisplay(relid);
	name = stmt->idxname ? pstrdup(quote_identifier(stmt->idxname)) : "(unnamed)";
	/* a twin of a unique index the table has (pg_repack --only-indexes) lets in the same writes */
	if (stmt->unique && !EltUniqueIndexIsDuplicate(relid, stmt))
		EltAddCandidate(c, R_ADD_UNIQUE, relid, 0, NULL, table,
				 psprintf("creates unique index %s on %s: writes of duplicate values start to fail",
						  name, table), CAND_WRITERS);
	/* ON ONLY a partitioned table builds nothing but an invalid parent index */
	if (!stmt->concurrent &&
		!(relkind == RELKIND_PARTITIONED_TABLE && !stmt->relation->inh))
	{
		EltCandidate *cand;

		cand = EltAddCandidate(c, R_CREATE_INDEX, relid, 0, NULL, table,
						psprintf("creates index %s on %s without CONCURRENTLY: writes to the table wait until it is built",
								 name, table), CAND_NEEDS_SIZE);
		cand->lockmode = ShareLock;
		EltAddLock(c, relid, ShareLock);
	}
	EltAddCandidate(c, -1, relid, 0, NULL, table, NULL, 0);
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
		char		relkind;

		if (!target_relation(c, rv, true, is_table_kind, &relid, &relkind))
			continue;
		c->recurse = rv->inh;
		EltAddCandidate(c, R_TRUNCATE, relid, 0, NULL, EltRelDisplay(relid),
				 psprintf("truncates %s: its readers see no rows until it is loaded again",
						  EltRelDisplay(relid)), 0);
		EltAddLock(c, relid, AccessExclusiveLock);
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
			char		relkind;

			if (!target_relation(c, rv, true, NULL, &relid, &relkind))
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
				EltAddCandidate(c, R_TRUNCATE, ref, 0, NULL, EltRelDisplay(ref),
						 psprintf("truncates %s through TRUNCATE ... CASCADE (it references a truncated table): its readers see no rows",
								  EltRelDisplay(ref)), 0);
			}
		}
	}
}

/* Step 1 for one statement. */
void
EltClassify(EltClassified *c, Node *stmt)
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
			{
				IndexStmt  *is = (IndexStmt *) stmt;
				Oid			relid;

				/* a key swap later in the script may use it (EltKeySwapKeepsKey) */
				if (c->script != NULL && is->unique && is->idxname != NULL &&
					is->relation != NULL &&
					EltFindRelation(c, is->relation, &relid) == FOUND_LIVE &&
					!(is->if_not_exists && index_named(c, relid, is->idxname)))
				{
					/* the script's state outlives the statement's context */
					MemoryContext prev = MemoryContextSwitchTo(c->script->cxt);

					c->script->index_stmts = lappend(c->script->index_stmts, copyObject(stmt));
					MemoryContextSwitchTo(prev);
				}
				classify_index(c, is);
			}
			break;
		case T_TruncateStmt:
			classify_truncate(c, (TruncateStmt *) stmt);
			break;
		case T_ReindexStmt:
		case T_VacuumStmt:
		case T_ClusterStmt:
		case T_RefreshMatViewStmt:
			EltClassifyMaintain(c, stmt);
			break;
		default:
			break;
	}
	/* the lock of a trigger, policy or rule statement, of LOCK TABLE */
	EltClassifyLockOnly(c, stmt);
	MemoryContextSwitchTo(old);
}
