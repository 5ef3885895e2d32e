/*
 * contracts_newer.c — step 1 of the contracts engine for the ALTER TABLE
 * forms that only newer PostgreSQL versions parse: 17's ALTER COLUMN ...
 * SET EXPRESSION, 18's ADD CONSTRAINT ... NOT NULL col [NOT VALID] and
 * ALTER CONSTRAINT ... ENFORCED.  On a version without the form the parser
 * never produces it, so these functions find nothing there; the version
 * tests themselves are macros of pg_compat.h (ELT_AT_SET_EXPRESSION,
 * EltAlterConstraintEnforces, EltAttNotNullState).
 *
 * Owns: EltClassifyNewerAlter (SET EXPRESSION: EG123, and EG209 for a
 * stored column; ALTER CONSTRAINT ENFORCED: EG114 and EG204, as adding the
 * foreign key) and EltClassifyNotNullConstraint (EG109, and EG203 unless
 * NOT VALID; both dropped when a validated CHECK (col IS NOT NULL) proves
 * the column, as for SET NOT NULL) and EltClassifyDropNotNullConstraint
 * (DROP CONSTRAINT of a NOT NULL constraint: EG108).
 *
 * Calls: contracts_rules.c (candidates, names, the script's view of a
 * column).  Called by contracts_classify.c (classify_alter_table and
 * classify_add_constraint).  Runs no SQL, takes no lock; allocates in the
 * caller's context (c->cxt).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_constraint.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "contracts_int.h"

/*
 * 17: ALTER COLUMN ... SET EXPRESSION AS (...).  Every reader sees new
 * values (EG123); a stored column is recomputed by rewriting the table
 * under ACCESS EXCLUSIVE (EG209, on a large table).  18's virtual column
 * is computed when read: no rewrite.
 */
static void
classify_set_expression(EltClassified *c, Oid relid, AlterTableCmd *cmd)
{
	FormData_pg_attribute att;
	EltFound	f;
	char	   *object;

	if (cmd->name == NULL)
		return;
	f = EltFindColumn(c, relid, cmd->name, &att);
	if (f == FOUND_NEW)
		return;					/* added by the script: no reader yet */
	object = EltColDisplay(relid, cmd->name);
	if (f == FOUND_MISSING)
	{
		EltAddMissing(c, object, "column");
		return;
	}
	if (att.attgenerated == '\0')
		return;					/* not generated: the statement fails */
	EltAddCandidate(c, R_SET_EXPRESSION, relid, att.attnum, cmd->name, object,
					psprintf("sets a new expression for generated column %s: the values readers see change",
							 object), 0);
	if (!EltAttIsVirtual(&att))
		EltAddCandidate(c, R_TABLE_REWRITE, relid, att.attnum, cmd->name, object,
						psprintf("SET EXPRESSION of stored generated column %s recomputes every row of %s under an ACCESS EXCLUSIVE lock",
								 object, EltRelDisplay(relid)), 0);
}

/*
 * 18: ALTER CONSTRAINT c ENFORCED on a NOT ENFORCED foreign key: its
 * triggers come back and existing rows are validated (phase 3 of ALTER
 * TABLE, while writes are blocked), as when the foreign key is added.
 * NOT ENFORCED, or a constraint already enforced, changes nothing readers
 * or writers meet.
 */
static void
classify_enforce(EltClassified *c, Oid relid, const char *conname)
{
	Oid			conoid = get_relation_constraint_oid(relid, conname, true);
	HeapTuple	tup;
	char		contype;
	bool		enforced;
	char	   *table = EltRelDisplay(relid);
	char	   *name;

	if (!OidIsValid(conoid))
	{
		EltAddMissing(c, psprintf("%s on %s", quote_identifier(conname), table), "constraint");
		return;
	}
	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tup))
		return;
	contype = ((Form_pg_constraint) GETSTRUCT(tup))->contype;
	enforced = EltConstraintEnforced(tup);
	ReleaseSysCache(tup);
	if (contype != CONSTRAINT_FOREIGN || enforced)
		return;					/* fails, or already enforced: no change */
	name = psprintf("%s on %s", quote_identifier(conname), table);
	EltAddCandidate(c, R_ADD_FOREIGN_KEY, relid, 0, NULL, table,
					psprintf("makes FOREIGN KEY %s ENFORCED: writes of keys missing from the referenced table start to fail", name),
					CAND_WRITERS);
	EltAddCandidate(c, R_VALIDATION_SCAN, relid, 0, NULL, table,
					psprintf("makes FOREIGN KEY %s ENFORCED: the whole table is scanned while writes are blocked", name),
					0)->lockmode = ShareRowExclusiveLock;
}

/*
 * The ALTER TABLE subcommands only newer versions have; true if cmd was
 * one of them (judged here), false to let the caller go on.
 */
bool
EltClassifyNewerAlter(EltClassified *c, Oid relid, AlterTableCmd *cmd)
{
	const char *conname;

	if ((int) cmd->subtype == ELT_AT_SET_EXPRESSION)
	{
		classify_set_expression(c, relid, cmd);
		return true;
	}
	if ((conname = EltAlterConstraintEnforces(cmd)) != NULL)
	{
		classify_enforce(c, relid, conname);
		return true;
	}
	return false;
}

/*
 * 18: ADD CONSTRAINT nn NOT NULL col [NOT VALID].  Writers of NULL fail
 * from now on either way (EG109); without NOT VALID the whole table is
 * scanned under ACCESS EXCLUSIVE (EG203).  A column whose NOT NULL holds
 * already (validated) changes nothing; one whose NOT NULL is NOT VALID is
 * only scanned.  Both findings fall when a validated CHECK (col IS NOT
 * NULL) proves the column (CAND_NOT_NULL_PROOF, as for SET NOT NULL).
 */
void
EltClassifyNotNullConstraint(EltClassified *c, Oid relid, Constraint *con)
{
	FormData_pg_attribute att;
	const char *col;
	EltFound	f;
	char	   *object;
	const char *name;
	char		state;

	if (list_length(con->keys) != 1 || !IsA(linitial(con->keys), String))
		return;
	col = strVal(linitial(con->keys));
	f = EltFindColumn(c, relid, col, &att);
	if (f == FOUND_NEW)
		return;
	object = EltColDisplay(relid, col);
	if (f == FOUND_MISSING)
	{
		EltAddMissing(c, object, "column");
		return;
	}
	state = EltAttNotNullState(relid, att.attnum, att.attnotnull);
	if (state == 'v' || (state == 'n' && con->skip_validation))
		return;					/* what the constraint says holds already */
	name = con->conname ? quote_identifier(con->conname) : "(unnamed)";
	if (state == '\0')
		EltAddCandidate(c, R_SET_NOT_NULL, relid, att.attnum, col, object,
						psprintf("adds NOT NULL constraint %s%s on column %s: writers that store NULL in it start to fail",
								 name, con->skip_validation ? " NOT VALID" : "", object),
						CAND_WRITERS | CAND_NOT_NULL_PROOF);
	if (!con->skip_validation)
		EltAddCandidate(c, R_NOT_NULL_SCAN, relid, att.attnum, col, object,
						psprintf("adds NOT NULL constraint %s on column %s without NOT VALID: the whole table is scanned under an ACCESS EXCLUSIVE lock",
								 name, object),
						CAND_NOT_NULL_PROOF);
}

/*
 * 18: DROP CONSTRAINT of a NOT NULL constraint is DROP NOT NULL of its
 * column (EG108): readers that rely on a value meet NULL.  A NOT VALID one
 * never promised the old rows anything, but new rows lose the promise too,
 * so it is a finding as well.  Before 18 no constraint has contype 'n'.
 */
void
EltClassifyDropNotNullConstraint(EltClassified *c, Oid relid, const char *conname)
{
	Oid			conoid = get_relation_constraint_oid(relid, conname, true);
	HeapTuple	tup;
	AttrNumber	attnum = InvalidAttrNumber;
	char	   *col;
	char	   *object;

	if (!OidIsValid(conoid))
		return;
	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tup))
		return;
	if (((Form_pg_constraint) GETSTRUCT(tup))->contype == EltConstraintNotNull)
		attnum = EltNotNullColumn(tup);
	ReleaseSysCache(tup);
	if (attnum <= 0 || (col = get_attname(relid, attnum, true)) == NULL)
		return;
	object = EltColDisplay(relid, col);
	EltAddCandidate(c, R_DROP_NOT_NULL, relid, attnum, col, object,
					psprintf("drops NOT NULL constraint %s of column %s: readers that rely on a value meet NULL",
							 quote_identifier(conname), object), 0);
}
