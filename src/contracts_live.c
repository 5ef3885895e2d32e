/*
 * contracts_live.c — the columns the current transaction added, for the
 * live trigger: check_ddl judges a column a script added by what still
 * applies to it (contracts_script_state.c); the live check does the same
 * for a column added earlier in the same transaction.
 *
 * Owns: EltLiveAddedColumns and its list: a static list in
 * TopTransactionContext of "<oid>.<name>" keys with the subtransaction
 * nesting level that noted each, forgotten when the local transaction id
 * changes, trimmed by a subtransaction callback when a savepoint is rolled
 * back (also by the error of a statement blocked inside one), handed to
 * the parent when one is released.  A column merged into an inheritor's
 * column of the same name is not noted (it is not new).
 *
 * Calls: contracts_rules.c (EltColKey, EltInheritorHasColumn);
 * PostgreSQL's RegisterSubXactCallback, syscache.  Called by
 * contracts_judge.c at ddl_command_start.  Locking: none.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "contracts_int.h"

/* ------------------------------------------------------------------------
 * Live: columns added by the current transaction
 * ------------------------------------------------------------------------
 */

/*
 * A column ("<oid>.<name>") the current transaction added, and the
 * (sub)transaction nesting level that added it: a subtransaction rolled
 * back takes its columns with it; one committed hands them to its parent.
 */
typedef struct LiveAdded
{
	char	   *key;
	int			level;
} LiveAdded;

/* The columns (LiveAdded *) the current transaction added, and its lxid. */
static List *live_added = NIL;
static LocalTransactionId live_added_lxid = InvalidLocalTransactionId;
static bool live_callback_set = false;

/* The list of the current transaction (a new one starts empty). */
static List *
live_added_now(void)
{
	if (live_added_lxid != EltMyLocalTransactionId())
	{
		live_added = NIL;		/* freed with the transaction that made it */
		live_added_lxid = EltMyLocalTransactionId();
	}
	return live_added;
}

/*
 * Subtransaction end: a rolled-back one (ROLLBACK TO, or the error of a
 * statement blocked or failing inside a savepoint) forgets the columns it
 * noted; a released one hands them to its parent.
 */
static void
live_added_subxact(SubXactEvent event, SubTransactionId mySubid,
				   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	List	   *kept = NIL;
	ListCell   *lc;
	MemoryContext old;

	if ((event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB) ||
		live_added == NIL || live_added_lxid != EltMyLocalTransactionId())
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	foreach(lc, live_added)
	{
		LiveAdded  *a = (LiveAdded *) lfirst(lc);

		if (a->level < level)
			kept = lappend(kept, a);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			a->level = level - 1;
			kept = lappend(kept, a);
		}
	}
	live_added = kept;
	MemoryContextSwitchTo(old);
}

/* Whether key is a column the transaction added (and still has). */
static bool
live_added_has(List *added, const char *key)
{
	ListCell   *lc;

	foreach(lc, added)
	{
		if (strcmp(((LiveAdded *) lfirst(lc))->key, key) == 0)
			return true;
	}
	return false;
}

/* Forget key: the column was dropped, or another one takes its name. */
static List *
live_added_forget(List *added, const char *key)
{
	List	   *kept = NIL;
	ListCell   *lc;

	foreach(lc, added)
	{
		if (strcmp(((LiveAdded *) lfirst(lc))->key, key) != 0)
			kept = lappend(kept, lfirst(lc));
	}
	return kept;
}

/* Note key as added at the current nesting level. */
static List *
live_added_note(List *added, char *key)
{
	LiveAdded  *a = palloc(sizeof(LiveAdded));

	a->key = key;
	a->level = GetCurrentTransactionNestLevel();
	return lappend(live_added_forget(added, key), a);
}

/* Whether a finding on a column the transaction added still applies. */
static bool
added_finding_applies(EltCandidate *cand)
{
	FormData_pg_attribute att;
	HeapTuple	tup;

	switch (cand->rule)
	{
		case R_DROP_COLUMN:
		case R_RENAME_COLUMN:
		case R_TYPE_NARROWING:
		case R_DROP_NOT_NULL:
		case R_CONSUMER_COLUMN:
			return false;		/* no reader knows it yet */
		case R_SET_NOT_NULL:
		case R_DROP_DEFAULT:
			tup = SearchSysCacheAttName(cand->relid, cand->colname);
			if (!HeapTupleIsValid(tup))
				return true;
			memcpy(&att, GETSTRUCT(tup), ATTRIBUTE_FIXED_PART_SIZE);
			ReleaseSysCache(tup);
			/* writers that know it yet: only those that leave it out */
			return cand->rule == R_SET_NOT_NULL ? !att.atthasdef : att.attnotnull;
		default:
			return true;
	}
}

/*
 * A live statement: judge the columns the current transaction added as
 * check_ddl judges the columns a script added (only what still applies to
 * them), and note the columns this statement adds, renames or drops.
 * Noted at ddl_command_start: a statement that is then blocked or fails
 * aborts its (sub)transaction, and live_added_subxact forgets what a
 * rolled-back subtransaction noted.  A column dropped, or a name another
 * column is renamed into, is forgotten; a column merged into an
 * inheritor's column of the same name is not new.
 */
void
EltLiveAddedColumns(EltClassified *c, Node *stmt)
{
	List	   *added = live_added_now();
	MemoryContext old;
	Oid			relid;
	ListCell   *lc;

	if (!live_callback_set)
	{
		RegisterSubXactCallback(live_added_subxact, NULL);
		live_callback_set = true;
	}

	if (IsA(stmt, AlterTableStmt) && ((AlterTableStmt *) stmt)->objtype == OBJECT_TABLE &&
		((AlterTableStmt *) stmt)->relation != NULL)
		relid = RangeVarGetRelid(((AlterTableStmt *) stmt)->relation, NoLock, true);
	else if (IsA(stmt, RenameStmt) && ((RenameStmt *) stmt)->renameType == OBJECT_COLUMN &&
			 ((RenameStmt *) stmt)->relation != NULL)
		relid = RangeVarGetRelid(((RenameStmt *) stmt)->relation, NoLock, true);
	else
		return;
	if (!OidIsValid(relid))
		return;
	if (added != NIL)
	{
		List	   *kept = NIL;

		foreach(lc, c->cands)
		{
			EltCandidate *cand = (EltCandidate *) lfirst(lc);

			if (cand->rule >= 0 && cand->relid == relid && cand->colname != NULL &&
				live_added_has(added, EltColKey(relid, cand->colname)) &&
				!added_finding_applies(cand))
				continue;
			kept = lappend(kept, cand);
		}
		c->cands = kept;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	if (IsA(stmt, RenameStmt))
	{
		RenameStmt *rs = (RenameStmt *) stmt;

		if (live_added_has(added, EltColKey(relid, rs->subname)))
			added = live_added_note(live_added_forget(added, EltColKey(relid, rs->subname)),
									EltColKey(relid, rs->newname));
		else
			added = live_added_forget(added, EltColKey(relid, rs->newname));
	}
	else
	{
		foreach(lc, ((AlterTableStmt *) stmt)->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
			ColumnDef  *cd = (ColumnDef *) cmd->def;

			FormData_pg_attribute att;

			/* merged into an inheritor's column of that name: not new */
			if (cmd->subtype == AT_AddColumn && cd != NULL && IsA(cd, ColumnDef) &&
				get_attnum(relid, cd->colname) == InvalidAttrNumber &&
				!EltInheritorHasColumn(c, relid, cd->colname, &att))
				added = live_added_note(added, EltColKey(relid, cd->colname));
			else if (cmd->subtype == AT_DropColumn && cmd->name != NULL)
				added = live_added_forget(added, EltColKey(relid, cmd->name));
		}
	}
	live_added = added;
	MemoryContextSwitchTo(old);
}
