/*
 * contracts_script_state.c — what a check_ddl script remembers beyond the
 * relations it creates, renames and drops: its transaction blocks and
 * savepoints, the locks a transaction holds (with the strongest mode per
 * relation), SET [LOCAL] lock_timeout, the constraints, columns, NOT NULL
 * changes, table settings, functions and indexes it adds; and the findings
 * that follow from them (EG002, EG210, EG001, and the rules that still
 * apply to a column the script added in the same transaction).
 *
 * Owns: the transaction model of elt.check_ddl(); EltClassifyHeldLocks,
 * which contracts_judge.c also calls for a live statement (there the locks
 * are the ones the transaction really holds, looked up at
 * ddl_command_start, before the statement takes its own).  The live list
 * of the columns a transaction added is contracts_live.c's.
 *
 * The model.  Outside a block every statement is a transaction of its own.
 * BEGIN / START TRANSACTION opens a block (a second one is ignored, as
 * PostgreSQL does with a warning); COMMIT / END / PREPARE TRANSACTION closes
 * it and lets go of its locks and its SET LOCAL; ROLLBACK / ABORT closes it
 * and undoes everything the script remembered from it (objects created,
 * renamed or dropped, columns, constraints, indexes, locks, SET
 * lock_timeout; SET search_path is not undone); AND CHAIN opens the next
 * block at once.  SAVEPOINT saves the state; ROLLBACK TO restores it (and
 * keeps the savepoint); RELEASE forgets it and the later ones.  A column
 * the script added is new (only what still applies to it is judged) until
 * its transaction ends; then it is judged as a live column.
 * single_transaction opens a block before the first statement, as psql -1
 * does: a COMMIT in the script ends it, and the statements after it run
 * each on its own.
 *
 * Calls: contracts_rules.c, contracts_maintain.c (EltLockHeld,
 * EltStatementLock, EltTableSettingIsNoop); PostgreSQL's
 * FuncnameGetCandidates, LockHeldByMe (EltLockHeldByMe, through
 * EltLockHeld).  Locking: AccessShareLock on
 * pg_constraint to read live CHECK constraints; nothing else.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_proc.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/primnodes.h"
#include "parser/parse_type.h"
#include "storage/bufmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "contracts_int.h"

/* ------------------------------------------------------------------------
 * Transaction blocks
 * ------------------------------------------------------------------------
 */

static void cols_end_transaction(EltScript *s);
static EltScriptCol *col_find(EltScript *s, Oid relid, const char *name);

/*
 * Recompute whether a lock_timeout is in force: SET LOCAL inside a block,
 * else the session's.  The one place that says so (contracts_script.c
 * calls it after a SET).
 */
void
EltScriptLockTimeoutNow(EltScript *s)
{
	s->lock_timeout = (s->in_block && s->lt_local >= 0) ? s->lt_local == 1 : s->lt_session;
}

/*
 * A copy of the script's state, for ROLLBACK or ROLLBACK TO to restore.
 * Every List field is copied (lappend may grow a list in place, which the
 * copy must not see): created, created_types, created_schemas,
 * alias_names, alias_oids, gone, col_keys, col_attnums, index_stmts,
 * held_rels, held_modes, emptied, cons, unnamed_con_rels, cols, created_funcs,
 * nn_keys, settings_changed, savepoints.  Their members are never changed in place (a new state is a
 * new entry), so a shallow copy is enough.  saved is not copied.
 */
static EltScript *
script_copy(EltScript *s)
{
	EltScript  *copy = palloc(sizeof(EltScript));

	memcpy(copy, s, sizeof(EltScript));
	copy->created = list_copy(s->created);
	copy->created_types = list_copy(s->created_types);
	copy->created_schemas = list_copy(s->created_schemas);
	copy->alias_names = list_copy(s->alias_names);
	copy->alias_oids = list_copy(s->alias_oids);
	copy->gone = list_copy(s->gone);
	copy->col_keys = list_copy(s->col_keys);
	copy->col_attnums = list_copy(s->col_attnums);
	copy->index_stmts = list_copy(s->index_stmts);
	copy->held_rels = list_copy(s->held_rels);
	copy->held_modes = list_copy(s->held_modes);
	copy->emptied = list_copy(s->emptied);
	copy->cons = list_copy(s->cons);
	copy->unnamed_con_rels = list_copy(s->unnamed_con_rels);
	copy->cols = list_copy(s->cols);
	copy->created_funcs = list_copy(s->created_funcs);
	copy->nn_keys = list_copy(s->nn_keys);
	copy->settings_changed = list_copy(s->settings_changed);
	copy->savepoints = list_copy(s->savepoints);
	copy->saved = NULL;
	return copy;
}

/* Restore a saved state (a copy of it: the saved one may be restored again). */
static void
script_restore(EltScript *s, EltScript *state)
{
	EltScript  *copy = script_copy(state);

	memcpy(s, copy, sizeof(EltScript));
	EltScriptSchemas = s->created_schemas;
}

/* The position of the innermost savepoint of that name, or -1. */
static int
savepoint_find(EltScript *s, const char *name)
{
	int			found = -1;
	int			i = 0;
	ListCell   *lc;

	foreach(lc, s->savepoints)
	{
		if (name != NULL && strcmp(((EltScriptSavepoint *) lfirst(lc))->name, name) == 0)
			found = i;
		i++;
	}
	return found;
}

/*
 * SAVEPOINT, RELEASE, ROLLBACK TO inside a block: a savepoint saves the
 * state; RELEASE forgets it and the ones after it; ROLLBACK TO restores
 * it (locks, SET LOCAL and everything the script remembered) and keeps it,
 * forgetting the ones after it.  Outside a block they fail: nothing.
 */
static void
script_savepoint(EltScript *s, TransactionStmt *ts)
{
	int			i;

	if (!s->in_block)
		return;
	if (ts->kind == TRANS_STMT_SAVEPOINT)
	{
		EltScriptSavepoint *sp = palloc(sizeof(EltScriptSavepoint));

		sp->name = pstrdup(ts->savepoint_name);
		sp->state = script_copy(s);
		s->savepoints = lappend(s->savepoints, sp);
		return;
	}
	if ((i = savepoint_find(s, ts->savepoint_name)) < 0)
		return;
	if (ts->kind == TRANS_STMT_RELEASE)
		s->savepoints = list_truncate(list_copy(s->savepoints), i);
	else
	{
		EltScript  *saved = s->saved;
		List	   *savepoints = list_truncate(list_copy(s->savepoints), i + 1);

		script_restore(s, ((EltScriptSavepoint *) list_nth(savepoints, i))->state);
		s->saved = saved;
		s->savepoints = savepoints;
		EltScriptLockTimeoutNow(s);
	}
}

/* Open a transaction block. */
static void
block_open(EltScript *s)
{
	s->saved = script_copy(s);
	s->in_block = true;
	s->lt_local = -1;
	s->held_rels = NIL;
	s->held_modes = NIL;
	s->emptied = NIL;
	EltScriptLockTimeoutNow(s);
}

/* Start of a script: the session's lock_timeout, and -1's block. */
void
EltScriptBegin(EltScript *s, bool single_transaction)
{
	s->lt_session = s->lock_timeout;
	s->lt_local = -1;
	if (single_transaction)
		block_open(s);
	EltScriptLockTimeoutNow(s);
}

/*
 * A transaction control statement: follow it; true if stmt was one (it
 * has no finding of its own).
 */
bool
EltScriptTransaction(EltScript *s, Node *stmt)
{
	TransactionStmt *ts;

	if (!IsA(stmt, TransactionStmt))
		return false;
	ts = (TransactionStmt *) stmt;
	switch (ts->kind)
	{
		case TRANS_STMT_BEGIN:
		case TRANS_STMT_START:
			if (!s->in_block)
				block_open(s);
			break;
		case TRANS_STMT_COMMIT:
		case TRANS_STMT_PREPARE:
			cols_end_transaction(s);
			s->in_block = false;
			s->saved = NULL;
			break;
		case TRANS_STMT_ROLLBACK:
			if (s->in_block && s->saved != NULL)
				script_restore(s, s->saved);
			s->in_block = false;
			s->saved = NULL;
			break;
		case TRANS_STMT_SAVEPOINT:
		case TRANS_STMT_RELEASE:
		case TRANS_STMT_ROLLBACK_TO:
			script_savepoint(s, ts);
			return true;
		default:
			/* COMMIT/ROLLBACK PREPARED */
			return true;
	}
	s->savepoints = NIL;
	s->held_rels = NIL;
	s->held_modes = NIL;
	s->emptied = NIL;
	s->lt_local = -1;
	EltScriptLockTimeoutNow(s);
	/* COMMIT AND CHAIN, ROLLBACK AND CHAIN: a new block at once */
	if (ts->chain && ts->kind != TRANS_STMT_PREPARE)
		block_open(s);
	return true;
}

/*
 * The end of a transaction of the script: the columns it added are now
 * columns readers may know (the live trigger judges them in full in a
 * later transaction): ELT_COL_EARLIER from now on.
 */
static void
cols_end_transaction(EltScript *s)
{
	int			n = list_length(s->col_keys);

	for (int i = 0; i < n; i++)
	{
		char	   *key = (char *) list_nth(s->col_keys, i);
		int			j;

		if (list_nth_int(s->col_attnums, i) != 0)
			continue;
		/* only a name's last entry counts */
		for (j = i + 1; j < list_length(s->col_keys); j++)
			if (strcmp((char *) list_nth(s->col_keys, j), key) == 0)
				break;
		if (j < list_length(s->col_keys))
			continue;
		s->col_keys = lappend(s->col_keys, key);
		s->col_attnums = lappend_int(s->col_attnums, ELT_COL_EARLIER);
	}
}

/* After a statement: outside a block its transaction ends with it. */
void
EltScriptEndStatement(EltScript *s)
{
	if (!s->in_block)
	{
		cols_end_transaction(s);
		s->held_rels = NIL;
	s->held_modes = NIL;
		s->emptied = NIL;
		s->lt_local = -1;
		EltScriptLockTimeoutNow(s);
	}
}

/* EG002 for a statement PostgreSQL refuses inside a block; else NULL. */
static const char *
not_in_block(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_IndexStmt:
			return ((IndexStmt *) stmt)->concurrent ? "CREATE INDEX CONCURRENTLY" : NULL;
		case T_DropStmt:
			return ((DropStmt *) stmt)->concurrent ? "DROP INDEX CONCURRENTLY" : NULL;
		case T_ReindexStmt:
			{
				ReindexStmt *rs = (ReindexStmt *) stmt;
				ListCell   *lc;

				if (rs->kind == REINDEX_OBJECT_SCHEMA || rs->kind == REINDEX_OBJECT_SYSTEM ||
					rs->kind == REINDEX_OBJECT_DATABASE)
					return "REINDEX SCHEMA, SYSTEM or DATABASE";
				foreach(lc, rs->params)
				{
					DefElem    *opt = (DefElem *) lfirst(lc);

					if (strcmp(opt->defname, "concurrently") == 0 && defGetBoolean(opt))
						return "REINDEX CONCURRENTLY";
				}
				return NULL;
			}
		case T_AlterTableStmt:
			{
				ListCell   *lc;

				foreach(lc, ((AlterTableStmt *) stmt)->cmds)
				{
					AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

					if (cmd->subtype == AT_DetachPartition && cmd->def != NULL &&
						IsA(cmd->def, PartitionCmd) && ((PartitionCmd *) cmd->def)->concurrent)
						return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY";
				}
				return NULL;
			}
		case T_VacuumStmt:
			return ((VacuumStmt *) stmt)->is_vacuumcmd ? "VACUUM" : NULL;
		case T_ClusterStmt:
			return ((ClusterStmt *) stmt)->relation == NULL ? "CLUSTER without a table" : NULL;
		case T_CreatedbStmt:
			return "CREATE DATABASE";
		case T_DropdbStmt:
			return "DROP DATABASE";
		case T_AlterSystemStmt:
			return "ALTER SYSTEM";
		case T_CreateTableSpaceStmt:
			return "CREATE TABLESPACE";
		case T_DropTableSpaceStmt:
			return "DROP TABLESPACE";
		case T_DiscardStmt:
			return ((DiscardStmt *) stmt)->target == DISCARD_ALL ? "DISCARD ALL" : NULL;
		case T_AlterDatabaseStmt:
			{
				ListCell   *lc;

				foreach(lc, ((AlterDatabaseStmt *) stmt)->options)
				{
					if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
						return "ALTER DATABASE ... SET TABLESPACE";
				}
				return NULL;
			}
		default:
			return NULL;
	}
}

/*
 * EG002: a statement that cannot run in a transaction block, in one.
 * Reported whatever is governed; returned apart, not judged.
 */
List *
EltScriptBlockFindings(EltClassified *c, Node *stmt)
{
	const char *what;
	EltCandidate *cand;

	if (c->script == NULL || !c->script->in_block || (what = not_in_block(stmt)) == NULL)
		return NIL;
	cand = palloc0(sizeof(EltCandidate));
	cand->rule = R_TRANSACTION_BLOCK;
	cand->object = pstrdup(what);
	cand->reason = psprintf("%s cannot run inside a transaction block, and the script is in one here, so the statement would fail",
							what);
	return list_make1(cand);
}

/* ------------------------------------------------------------------------
 * Locks held by the transaction: EG210
 * ------------------------------------------------------------------------
 */

/*
 * Whether the transaction holds ACCESS EXCLUSIVE on relid before stmt
 * (EltLockHeld), on a table that is not empty: a table the transaction
 * truncated (a script: and has not loaded since; live: with no blocks) is
 * scanned at once.  The empty-table rule is EG210's only: EG208 is about
 * waiting for the lock, which an empty table does not shorten.
 */
static bool
held_ae(EltClassified *c, Oid relid)
{
	if (!EltLockHeld(c, relid, AccessExclusiveLock))
		return false;
	if (c->script != NULL)
		return !list_member_oid(c->script->emptied, relid);
	/* held: opening it waits for nothing; truncated (or created) and empty */
	{
		Relation	rel = relation_open(relid, NoLock);
		bool		empty = RELKIND_HAS_STORAGE(rel->rd_rel->relkind) &&
			RelationGetNumberOfBlocks(rel) == 0;

		relation_close(rel, NoLock);
		return !empty;
	}
}

/* Append an EG210 candidate on a table. */
static void
add_held(EltClassified *c, Oid relid, char *reason)
{
	EltCandidate *cand = EltAddCandidate(c, R_HELD_LOCK_SCAN, relid, 0, NULL,
										 EltRelDisplay(relid), reason, CAND_NEEDS_SIZE);

	cand->lockmode = AccessExclusiveLock;
}

/*
 * EG210: a scan or build that normally runs under a weaker lock, while
 * ACCESS EXCLUSIVE on its table is held by an earlier statement of the
 * transaction, or taken by another subcommand of the same ALTER TABLE.
 */
void
EltClassifyHeldLocks(EltClassified *c, Node *stmt)
{
	MemoryContext old = MemoryContextSwitchTo(c->cxt);
	Oid			relid;

	if (IsA(stmt, AlterTableStmt))
	{
		AlterTableStmt *at = (AlterTableStmt *) stmt;
		ListCell   *lc;
		bool		same = false;
		bool		earlier;

		/* only a validation scans: most statements stop here */
		foreach(lc, at->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

			if (cmd->subtype == AT_ValidateConstraint ||
				(cmd->subtype == AT_AddConstraint && cmd->def != NULL &&
				 IsA(cmd->def, Constraint) && ((Constraint *) cmd->def)->contype == CONSTR_FOREIGN))
				break;
		}
		if (lc == NULL || at->objtype != OBJECT_TABLE || at->relation == NULL ||
			EltFindRelation(c, at->relation, &relid) != FOUND_LIVE)
			goto done;
		earlier = held_ae(c, relid);
		foreach(lc, at->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
			Constraint *fk = NULL;
			char	   *what;

			/* a foreign key added without NOT VALID is validated by a scan too */
			if (cmd->subtype == AT_AddConstraint && cmd->def != NULL && IsA(cmd->def, Constraint) &&
				((Constraint *) cmd->def)->contype == CONSTR_FOREIGN &&
				!((Constraint *) cmd->def)->skip_validation)
				fk = (Constraint *) cmd->def;
			else if (cmd->subtype != AT_ValidateConstraint || cmd->name == NULL)
				continue;
			if (!earlier && !same)
				same = list_length(at->cmds) > 1 &&
					EltStatementLock(c, relid) == AccessExclusiveLock;
			if (!earlier && !same)
				continue;
			what = fk == NULL ? psprintf("validates constraint %s", quote_identifier(cmd->name)) :
				psprintf("adds and validates FOREIGN KEY %s",
						 fk->conname ? quote_identifier(fk->conname) : "(unnamed)");
			add_held(c, relid,
					 psprintf("%s of %s while %s holds an ACCESS EXCLUSIVE lock on it: reads and writes of the table wait for the whole scan",
							  what, EltRelDisplay(relid),
							  earlier ? "an earlier statement of the transaction" :
							  "another subcommand of the same ALTER TABLE"));
		}
	}
	else if (IsA(stmt, IndexStmt))
	{
		IndexStmt  *is = (IndexStmt *) stmt;

		if (is->concurrent || is->relation == NULL ||
			(c->script != NULL && c->script->held_rels == NIL) ||
			EltFindRelation(c, is->relation, &relid) != FOUND_LIVE || !held_ae(c, relid))
			goto done;
		add_held(c, relid,
				 psprintf("builds index %s on %s while an earlier statement of the transaction holds an ACCESS EXCLUSIVE lock on it: reads and writes of the table wait for the whole build",
						  is->idxname ? quote_identifier(is->idxname) : "(unnamed)",
						  EltRelDisplay(relid)));
	}
done:
	MemoryContextSwitchTo(old);
}

/* Note a lock the transaction now holds on a live relation (the strongest wins). */
static void
note_held(EltScript *s, Oid relid, LOCKMODE mode)
{
	ListCell   *lr;
	ListCell   *lm;

	forboth(lr, s->held_rels, lm, s->held_modes)
	{
		if (lfirst_oid(lr) == relid)
		{
			if (mode > lfirst_int(lm))
				lfirst_int(lm) = mode;	/* (s's own copy: see script_copy) */
			return;
		}
	}
	s->held_rels = lappend_oid(s->held_rels, relid);
	s->held_modes = lappend_int(s->held_modes, mode);
}

/*
 * The locks a statement takes, held to the end of its transaction: those
 * its classification told EltAddLock of, and LOCK TABLE's; and which
 * tables it empties (TRUNCATE) or loads again (INSERT, COPY FROM).
 */
static void
remember_locks(EltClassified *c, Node *stmt)
{
	ListCell   *lc;
	Oid			relid;

	foreach(lc, c->locks)
	{
		EltLock    *l = (EltLock *) lfirst(lc);

		note_held(c->script, l->relid, l->mode);
	}
	switch (nodeTag(stmt))
	{
		case T_TruncateStmt:
			foreach(lc, ((TruncateStmt *) stmt)->relations)
			{
				if (EltFindRelation(c, (RangeVar *) lfirst(lc), &relid) == FOUND_LIVE)
					c->script->emptied = list_append_unique_oid(c->script->emptied, relid);
			}
			break;
		case T_InsertStmt:
		case T_CopyStmt:
			{
				RangeVar   *rv = IsA(stmt, InsertStmt) ? ((InsertStmt *) stmt)->relation :
					((CopyStmt *) stmt)->is_from ? ((CopyStmt *) stmt)->relation : NULL;

				/* loaded again: as large as its statistics say (the live size may differ) */
				if (rv != NULL && EltFindRelation(c, rv, &relid) == FOUND_LIVE)
					c->script->emptied = list_delete_oid(c->script->emptied, relid);
				break;
			}
		case T_LockStmt:
			foreach(lc, ((LockStmt *) stmt)->relations)
			{
				if (EltFindRelation(c, (RangeVar *) lfirst(lc), &relid) == FOUND_LIVE)
					note_held(c->script, relid, ((LockStmt *) stmt)->mode);
			}
			break;
		default:
			break;
	}
}

/* ------------------------------------------------------------------------
 * Constraints, columns, functions and indexes
 * ------------------------------------------------------------------------
 */

/* The last thing the script did to a constraint of relid, or NULL. */
static EltScriptCon *
con_find(EltScript *s, Oid relid, const char *name)
{
	EltScriptCon *found = NULL;
	ListCell   *lc;

	foreach(lc, s->cons)
	{
		EltScriptCon *k = (EltScriptCon *) lfirst(lc);

		if (k->relid == relid && strcmp(k->name, name) == 0)
			found = k;
	}
	return found;
}

/* Note a constraint's new state (entries are never changed in place). */
static EltScriptCon *
con_note(EltScript *s, Oid relid, const char *name, bool gone, bool valid, char *notnull_col)
{
	EltScriptCon *k = palloc0(sizeof(EltScriptCon));

	k->relid = relid;
	k->name = pstrdup(name);
	k->gone = gone;
	k->valid = valid;
	k->notnull_col = notnull_col;
	s->cons = lappend(s->cons, k);
	return k;
}

/* The column of a raw CHECK (col IS NOT NULL), or NULL. */
static char *
raw_not_null_col(Node *expr)
{
	NullTest   *nt;
	ColumnRef  *ref;

	if (expr == NULL || !IsA(expr, NullTest))
		return NULL;
	nt = (NullTest *) expr;
	if (nt->nulltesttype != IS_NOT_NULL || !IsA(nt->arg, ColumnRef))
		return NULL;
	ref = (ColumnRef *) nt->arg;
	if (list_length(ref->fields) != 1 || !IsA(linitial(ref->fields), String))
		return NULL;
	return pstrdup(strVal(linitial(ref->fields)));
}

/*
 * The column of 18's NOT NULL constraint (ADD CONSTRAINT nn NOT NULL col),
 * or NULL: once validated it proves the column as CHECK (col IS NOT NULL)
 * does.
 */
static char *
con_notnull_key(Constraint *con)
{
	if (con->contype != CONSTR_NOTNULL || list_length(con->keys) != 1 ||
		!IsA(linitial(con->keys), String))
		return NULL;
	return pstrdup(strVal(linitial(con->keys)));
}

/*
 * The name the script now gives live column attnum of relid (renamed by
 * the script, or as in the catalog), or NULL if the script dropped it.
 */
static char *
live_col_now(EltScript *s, Oid relid, AttrNumber attnum)
{
	char	   *prefix = psprintf("%u.", relid);
	size_t		len = strlen(prefix);
	char	   *live = get_attname(relid, attnum, true);
	char	   *live_key = live ? EltColKey(relid, live) : NULL;
	bool		live_touched = false;
	ListCell   *lk;
	ListCell   *la;

	/* the last name whose last entry is attnum */
	for (int i = list_length(s->col_keys) - 1; i >= 0; i--)
	{
		char	   *key = (char *) list_nth(s->col_keys, i);
		int			j;

		if (strncmp(key, prefix, len) != 0)
			continue;
		/* only the last entry of each name counts */
		for (j = list_length(s->col_keys) - 1; j > i; j--)
			if (strcmp((char *) list_nth(s->col_keys, j), key) == 0)
				break;
		if (j > i)
			continue;
		if (list_nth_int(s->col_attnums, i) == attnum)
			return pstrdup(key + len);
	}
	forboth(lk, s->col_keys, la, s->col_attnums)
	{
		if (live_key != NULL && strcmp((char *) lfirst(lk), live_key) == 0)
			live_touched = true;
	}
	return live_touched ? NULL : live;
}

/*
 * A column of relid renamed (newname) or dropped (newname NULL) by the
 * script: the CHECK (col IS NOT NULL) entries on it follow (a dropped
 * column takes its constraints with it).
 */
static void
cons_follow_column(EltScript *s, Oid relid, const char *oldname, const char *newname)
{
	ListCell   *lc;
	List	   *now = NIL;

	foreach(lc, s->cons)
	{
		EltScriptCon *k = (EltScriptCon *) lfirst(lc);

		if (k->relid == relid && !k->gone && k->notnull_col != NULL &&
			strcmp(k->notnull_col, oldname) == 0 && con_find(s, relid, k->name) == k)
			now = lappend(now, k);
	}
	foreach(lc, now)
	{
		EltScriptCon *k = (EltScriptCon *) lfirst(lc);

		con_note(s, relid, k->name, newname == NULL, newname != NULL && k->valid,
				 newname ? pstrdup(newname) : NULL);
	}
}

/* SET/DROP NOT NULL the script did on a column: '+', '-', or 0 for none. */
static char
nn_last(EltScript *s, Oid relid, const char *col)
{
	char	   *key = EltColKey(relid, col);
	char		last = 0;
	ListCell   *lc;

	foreach(lc, s->nn_keys)
	{
		char	   *e = (char *) lfirst(lc);

		if (strcmp(e + 1, key) == 0)
			last = e[0];
	}
	return last == '0' ? 0 : last;	/* '0': dropped or added since */
}

/* A column renamed by the script keeps what SET/DROP NOT NULL did to it. */
static void
nn_follow_column(EltScript *s, Oid relid, const char *oldname, const char *newname)
{
	char		last = nn_last(s, relid, oldname);

	if (last != 0)
		s->nn_keys = lappend(s->nn_keys, psprintf("%c%s", last, EltColKey(relid, newname)));
}

/*
 * Whether a column of relid is NOT NULL before the statement, as the
 * script left it: col by the name the script now gives it, or (col NULL)
 * live column attnum.  A column the script dropped counts as NOT NULL (the
 * statement fails anyway).  Live: the catalog.
 */
bool
EltScriptColumnNotNull(EltClassified *c, Oid relid, AttrNumber attnum, const char *col)
{
	FormData_pg_attribute att;
	char		last;

	if (c->script == NULL)
	{
		HeapTuple	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
		bool		nn = true;

		if (HeapTupleIsValid(tup))
		{
			nn = ((Form_pg_attribute) GETSTRUCT(tup))->attnotnull;
			ReleaseSysCache(tup);
		}
		return nn;
	}
	if (col == NULL && (col = live_col_now(c->script, relid, attnum)) == NULL)
		return true;
	if ((last = nn_last(c->script, relid, col)) != 0)
		return last == '+';
	switch (EltFindColumn(c, relid, col, &att))
	{
		case FOUND_LIVE:
			return att.attnotnull;
		case FOUND_NEW:
			{
				EltScriptCol *k = col_find(c->script, relid, col);

				return k != NULL && k->not_null;
			}
		default:
			return true;
	}
}

/*
 * A live constraint as the script first meets it: noted with whether it
 * is validated and, for CHECK (col IS NOT NULL), its column; NULL if the
 * table has none of that name.
 */
static EltScriptCon *
con_live(EltScript *s, Oid relid, const char *name)
{
	Oid			conoid = get_relation_constraint_oid(relid, name, true);
	HeapTuple	tup;
	Form_pg_constraint con;
	char	   *col = NULL;
	bool		valid;

	if (!OidIsValid(conoid))
		return NULL;
	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tup))
		return NULL;
	con = (Form_pg_constraint) GETSTRUCT(tup);
	valid = con->convalidated;
	if (con->contype == EltConstraintNotNull)	/* 18: NOT NULL col */
		col = get_attname(relid, EltNotNullColumn(tup), true);
	else if (con->contype == CONSTRAINT_CHECK)
	{
		bool		isnull;
		Datum		bin = SysCacheGetAttr(CONSTROID, tup, Anum_pg_constraint_conbin, &isnull);

		if (!isnull)
		{
			Node	   *expr = stringToNode(TextDatumGetCString(bin));

			if (IsA(expr, NullTest) && ((NullTest *) expr)->nulltesttype == IS_NOT_NULL &&
				IsA(((NullTest *) expr)->arg, Var))
				col = live_col_now(s, relid, ((Var *) ((NullTest *) expr)->arg)->varattno);
		}
	}
	ReleaseSysCache(tup);
	return con_note(s, relid, name, false, valid, col);
}

/* The script's view of a constraint: NULL if it does not exist now. */
static EltScriptCon *
con_now(EltScript *s, Oid relid, const char *name)
{
	EltScriptCon *k = con_find(s, relid, name);

	if (k == NULL)
		k = con_live(s, relid, name);
	return (k == NULL || k->gone) ? NULL : k;
}

/* The column the script added to relid under that name, or NULL. */
static EltScriptCol *
col_find(EltScript *s, Oid relid, const char *name)
{
	EltScriptCol *found = NULL;
	ListCell   *lc;

	foreach(lc, s->cols)
	{
		EltScriptCol *k = (EltScriptCol *) lfirst(lc);

		if (k->relid == relid && strcmp(k->name, name) == 0)
			found = k;
	}
	return found;
}

/* Note an added column's new state (a new entry: ROLLBACK keeps the old). */
static EltScriptCol *
col_note(EltScript *s, EltScriptCol *from, Oid relid, const char *name)
{
	EltScriptCol *k = palloc0(sizeof(EltScriptCol));

	if (from != NULL)
		memcpy(k, from, sizeof(EltScriptCol));
	k->relid = relid;
	k->name = pstrdup(name);
	s->cols = lappend(s->cols, k);
	return k;
}

/* Walker: EG001 for each function a default calls that does not exist. */
static bool
missing_func_walker(Node *node, void *context)
{
	EltClassified *c = (EltClassified *) context;

	if (node == NULL)
		return false;
	if (IsA(node, FuncCall))
	{
		FuncCall   *fc = (FuncCall *) node;
		char	   *name = strVal(llast(fc->funcname));

		/* (an extension the script created brings functions we cannot see) */
		if (!c->script->created_extension &&
			!EltStringMember(c->script->created_funcs, name) &&
			FuncnameGetCandidates(fc->funcname, -1, NIL, false, false, false, true) == NULL)
			EltAddMissing(c, NameListToQuotedString(fc->funcname), "function");
	}
	return raw_expression_tree_walker(node, missing_func_walker, context);
}

/* The default a column definition gives, or NULL. */
static Node *
coldef_default(ColumnDef *cd)
{
	ListCell   *lc;

	foreach(lc, cd->constraints)
	{
		Constraint *con = (Constraint *) lfirst(lc);

		if (con->contype == CONSTR_DEFAULT)
			return con->raw_expr;
	}
	return NULL;
}

/* EG001 for a constraint that is not there (unless the script named it unknowingly). */
static void
check_con(EltClassified *c, Oid relid, const char *name)
{
	if (con_now(c->script, relid, name) != NULL ||
		(con_find(c->script, relid, name) == NULL &&
		 list_member_oid(c->script->unnamed_con_rels, relid)))
		return;
	EltAddMissing(c, psprintf("%s on %s", quote_identifier(name), EltRelDisplay(relid)),
				 "constraint");
}

/* The rules that still apply to a column the script added. */
static void
classify_added_column(EltClassified *c, Oid relid, AlterTableCmd *cmd)
{
	EltScriptCol *k = cmd->name ? col_find(c->script, relid, cmd->name) : NULL;
	FormData_pg_attribute att;
	char	   *object;

	/* added by the script, and not dropped or renamed away since */
	if (k == NULL || EltFindColumn(c, relid, cmd->name, &att) != FOUND_NEW)
		return;
	object = EltColDisplay(relid, cmd->name);
	switch (cmd->subtype)
	{
		case AT_ColumnDefault:
			if ((cmd->def == NULL || (IsA(cmd->def, A_Const) && ((A_Const *) cmd->def)->isnull)) &&
				k->has_default && k->not_null)
				EltAddCandidate(c, R_DROP_DEFAULT, relid, 0, NULL, object,
						 psprintf("drops the default of column %s, which the script added NOT NULL: every INSERT that does not name it fails", object),
						 CAND_WRITERS);
			break;
		case AT_SetNotNull:
			if (k->not_null)
				break;
			/* with a default, no writer that knows the column yet stores NULL */
			if (!k->has_default)
				EltAddCandidate(c, R_SET_NOT_NULL, relid, 0, NULL, object,
						 psprintf("sets column %s, which the script added without a default, NOT NULL: every INSERT that does not name it fails", object),
						 CAND_WRITERS | CAND_NOT_NULL_PROOF)->colname = pstrdup(cmd->name);
			EltAddCandidate(c, R_NOT_NULL_SCAN, relid, 0, NULL, object,
					 psprintf("sets column %s NOT NULL: the whole table is scanned under an ACCESS EXCLUSIVE lock", object),
					 CAND_NOT_NULL_PROOF)->colname = pstrdup(cmd->name);
			break;
		case AT_AlterColumnType:
			{
				ColumnDef  *cd = (ColumnDef *) cmd->def;
				int32		nmod = -1;
				Type		tup;
				Oid			ntyp;
				EltCandidate *cand;

				if (!OidIsValid(k->typid) || cd == NULL || !IsA(cd, ColumnDef) || cd->typeName == NULL ||
					(tup = LookupTypeName(NULL, cd->typeName, &nmod, true)) == NULL)
					break;
				ntyp = typeTypeId(tup);
				ReleaseSysCache(tup);
				if (!EltTypeChangeRewrites(k->typid, k->typmod, ntyp, nmod, cd->raw_default != NULL))
					break;
				cand = EltAddCandidate(c, R_TYPE_REWRITE, relid, 0, NULL, object,
								psprintf("changes column %s, which the script added, from %s to %s, which rewrites the table and its indexes under an ACCESS EXCLUSIVE lock",
										 object, format_type_with_typemod(k->typid, k->typmod),
										 format_type_with_typemod(ntyp, nmod)), CAND_NEEDS_SIZE);
				cand->lockmode = AccessExclusiveLock;
				break;
			}
		default:
			break;
	}
}

/*
 * Whether a live validated CHECK (col IS NOT NULL) the script has not
 * touched proves column colname of relid (the name the script now gives
 * it) NOT NULL.
 */
static bool
live_proof(EltClassified *c, Oid relid, const char *colname)
{
	FormData_pg_attribute att;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		proven = false;

	if (EltFindColumn(c, relid, colname, &att) != FOUND_LIVE)
		return false;
	rel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, ConstraintRelidTypidNameIndexId, true, NULL, 1, &key);
	while (!proven && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
		bool		isnull;
		Datum		bin;
		Node	   *expr;

		/* one the script renamed, dropped or validated is in s->cons */
		if (con->contype != CONSTRAINT_CHECK || !con->convalidated ||
			con_find(c->script, relid, NameStr(con->conname)) != NULL)
			continue;
		bin = heap_getattr(tup, Anum_pg_constraint_conbin, RelationGetDescr(rel), &isnull);
		if (isnull)
			continue;
		expr = stringToNode(TextDatumGetCString(bin));
		if (IsA(expr, NullTest) && ((NullTest *) expr)->nulltesttype == IS_NOT_NULL &&
			IsA(((NullTest *) expr)->arg, Var) &&
			((Var *) ((NullTest *) expr)->arg)->varattno == att.attnum)
			proven = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return proven;
}

/*
 * Drop NOT NULL candidates a validated CHECK (col IS NOT NULL) proves, as
 * the script left the constraints and the columns (renamed, dropped); the
 * others lose CAND_NOT_NULL_PROOF: the judge's live lookup by name would
 * not see what the script did.
 */
static void
drop_proven(EltClassified *c)
{
	List	   *kept = NIL;
	ListCell   *lc;

	foreach(lc, c->cands)
	{
		EltCandidate *cand = (EltCandidate *) lfirst(lc);
		bool		proven = false;

		if ((cand->flags & CAND_NOT_NULL_PROOF) && cand->colname != NULL)
		{
			ListCell   *kc;

			foreach(kc, c->script->cons)
			{
				EltScriptCon *k = (EltScriptCon *) lfirst(kc);

				/* the constraint's last entry says whether it still holds */
				if (k->relid == cand->relid && k->valid && !k->gone &&
					k->notnull_col != NULL && strcmp(k->notnull_col, cand->colname) == 0 &&
					con_find(c->script, k->relid, k->name) == k)
					proven = true;
			}
			if (!proven)
				proven = live_proof(c, cand->relid, cand->colname);
			cand->flags &= ~CAND_NOT_NULL_PROOF;
		}
		if (!proven)
			kept = lappend(kept, cand);
	}
	c->cands = kept;
}

/*
 * Before judging a statement of a script: EG001 for a function, constraint
 * or index it names that is not there; the rules that still apply to the
 * columns the script added; NOT NULL findings a CHECK the script validated
 * proves wrong are dropped.
 */
void
EltScriptClassify(EltClassified *c, Node *stmt)
{
	MemoryContext old = MemoryContextSwitchTo(c->cxt);
	Oid			relid;
	ListCell   *lc;

	if (IsA(stmt, AlterTableStmt))
	{
		AlterTableStmt *at = (AlterTableStmt *) stmt;

		if (at->relation == NULL)
			goto done;
		if (at->objtype == OBJECT_INDEX)
		{
			if (EltFindRelation(c, at->relation, &relid) == FOUND_MISSING && !at->missing_ok)
				EltAddMissing(c, EltRangeVarQualified(at->relation), "index");
			goto done;
		}
		if (at->objtype != OBJECT_TABLE || EltFindRelation(c, at->relation, &relid) != FOUND_LIVE)
			goto done;
		foreach(lc, at->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

			if (cmd->subtype == AT_AddColumn && cmd->def && IsA(cmd->def, ColumnDef))
				(void) missing_func_walker(coldef_default((ColumnDef *) cmd->def), c);
			else if (cmd->subtype == AT_ColumnDefault && cmd->def != NULL)
				(void) missing_func_walker(cmd->def, c);
			if ((cmd->subtype == AT_DropConstraint && !cmd->missing_ok) ||
				cmd->subtype == AT_ValidateConstraint)
			{
				if (cmd->name != NULL)
					check_con(c, relid, cmd->name);
			}
			classify_added_column(c, relid, cmd);
		}
	}
	else if (IsA(stmt, RenameStmt))
	{
		RenameStmt *rs = (RenameStmt *) stmt;

		if (rs->relation == NULL)
			goto done;
		if (rs->renameType == OBJECT_INDEX &&
			EltFindRelation(c, rs->relation, &relid) == FOUND_MISSING && !rs->missing_ok)
			EltAddMissing(c, EltRangeVarQualified(rs->relation), "index");
		else if (rs->renameType == OBJECT_TABCONSTRAINT && rs->subname != NULL &&
				 EltFindRelation(c, rs->relation, &relid) == FOUND_LIVE)
			check_con(c, relid, rs->subname);
	}
done:
	drop_proven(c);
	MemoryContextSwitchTo(old);
}

/* Remember the constraints and columns an ALTER TABLE adds, validates and drops. */
static void
remember_alter_table(EltClassified *c, AlterTableStmt *at)
{
	EltScript  *s = c->script;
	ListCell   *lc;
	Oid			relid;

	if (at->objtype != OBJECT_TABLE || at->relation == NULL ||
		EltFindRelation(c, at->relation, &relid) != FOUND_LIVE)
		return;
	foreach(lc, at->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
		EltScriptCol *k = cmd->name ? col_find(s, relid, cmd->name) : NULL;
		FormData_pg_attribute att;

		switch (cmd->subtype)
		{
			case AT_AddConstraint:
				if (cmd->def != NULL && IsA(cmd->def, Constraint))
				{
					Constraint *con = (Constraint *) cmd->def;

					/* (one of that name already there: the statement fails) */
					if (con->conname == NULL)
						s->unnamed_con_rels = list_append_unique_oid(s->unnamed_con_rels, relid);
					else
						con_note(s, relid, con->conname, false, !con->skip_validation,
								 con->contype == CONSTR_CHECK ? raw_not_null_col(con->raw_expr) :
								 con_notnull_key(con));
				}
				break;
			case AT_ValidateConstraint:
				if (cmd->name != NULL)
				{
					EltScriptCon *k2 = con_now(s, relid, cmd->name);

					if (k2 != NULL)
						con_note(s, relid, cmd->name, false, true, k2->notnull_col);
				}
				break;
			case AT_DropConstraint:
				if (cmd->name != NULL)
					con_note(s, relid, cmd->name, true, false, NULL);
				break;
			case AT_SetLogged:
			case AT_SetUnLogged:
			case AT_SetTableSpace:
			case AT_SetAccessMethod:
				/* (from then on the catalog's setting is not the table's) */
				if (!EltTableSettingIsNoop(relid, cmd))
					s->settings_changed = lappend(s->settings_changed, EltSettingKey(relid, cmd));
				break;
			case AT_DropColumn:
				if (cmd->name != NULL)
				{
					cons_follow_column(s, relid, cmd->name, NULL);
					s->nn_keys = lappend(s->nn_keys, psprintf("0%s", EltColKey(relid, cmd->name)));
				}
				break;
			case AT_AddColumn:
				{
					ColumnDef  *cd = (ColumnDef *) cmd->def;
					ListCell   *cc;
					Type		tup;
					EltScriptCol *n;

					/* (IF NOT EXISTS on one the script added: its state stays) */
					if (cd == NULL || !IsA(cd, ColumnDef) ||
						EltFindColumn(c, relid, cd->colname, &att) != FOUND_MISSING ||
						EltInheritorHasColumn(c, relid, cd->colname, &att))
						break;
					n = col_note(s, NULL, relid, cd->colname);
					tup = cd->typeName ? LookupTypeName(NULL, cd->typeName, &n->typmod, true) : NULL;
					if (tup != NULL)
					{
						n->typid = typeTypeId(tup);
						ReleaseSysCache(tup);
					}
					n->has_default = EltIsSerialType(cd->typeName);
					foreach(cc, cd->constraints)
					{
						Constraint *con = (Constraint *) lfirst(cc);

						if (con->contype == CONSTR_NOTNULL || con->contype == CONSTR_PRIMARY)
							n->not_null = true;
						if (con->contype == CONSTR_DEFAULT || con->contype == CONSTR_IDENTITY ||
							con->contype == CONSTR_GENERATED)
							n->has_default = true;
						if (con->contype == CONSTR_CHECK || con->contype == CONSTR_PRIMARY ||
							con->contype == CONSTR_UNIQUE || con->contype == CONSTR_FOREIGN)
						{
							if (con->conname == NULL)
								s->unnamed_con_rels = list_append_unique_oid(s->unnamed_con_rels, relid);
							else
								con_note(s, relid, con->conname, false, !con->skip_validation, NULL);
						}
					}
					break;
				}
			case AT_ColumnDefault:
				if (k != NULL)
					col_note(s, k, relid, cmd->name)->has_default =
						!(cmd->def == NULL || (IsA(cmd->def, A_Const) && ((A_Const *) cmd->def)->isnull));
				break;
			case AT_SetNotNull:
			case AT_DropNotNull:
				if (k != NULL)
					col_note(s, k, relid, cmd->name)->not_null = cmd->subtype == AT_SetNotNull;
				if (cmd->name != NULL)
					s->nn_keys = lappend(s->nn_keys,
										 psprintf("%c%s", cmd->subtype == AT_SetNotNull ? '+' : '-',
												  EltColKey(relid, cmd->name)));
				break;
			case AT_AlterColumnType:
				if (k != NULL && cmd->def != NULL && IsA(cmd->def, ColumnDef))
				{
					ColumnDef  *cd = (ColumnDef *) cmd->def;
					EltScriptCol *n = col_note(s, k, relid, cmd->name);
					Type		tup = LookupTypeName(NULL, cd->typeName, &n->typmod, true);

					n->typid = InvalidOid;
					if (tup != NULL)
					{
						n->typid = typeTypeId(tup);
						ReleaseSysCache(tup);
					}
				}
				break;
			default:
				break;
		}
	}
}

/*
 * After a statement of a script (before script_apply notes its relations
 * and columns): the locks it holds, and the constraints, added columns,
 * functions and indexes it creates, renames or drops.
 */
void
EltScriptRemember(EltClassified *c, Node *stmt)
{
	EltScript  *s = c->script;
	MemoryContext old = MemoryContextSwitchTo(c->cxt);
	Oid			relid;

	/* outside a block the statement's locks end with it */
	if (s->in_block)
		remember_locks(c, stmt);
	switch (nodeTag(stmt))
	{
		case T_AlterTableStmt:
			remember_alter_table(c, (AlterTableStmt *) stmt);
			break;
		case T_RenameStmt:
			{
				RenameStmt *rs = (RenameStmt *) stmt;

				if (rs->relation == NULL || EltFindRelation(c, rs->relation, &relid) != FOUND_LIVE)
					break;
				if (rs->renameType == OBJECT_TABCONSTRAINT && rs->subname != NULL)
				{
					EltScriptCon *k = con_now(s, relid, rs->subname);

					if (k != NULL)
						con_note(s, relid, rs->newname, false, k->valid, k->notnull_col);
					con_note(s, relid, rs->subname, true, false, NULL);
				}
				else if (rs->renameType == OBJECT_COLUMN && rs->subname != NULL)
				{
					EltScriptCol *k = col_find(s, relid, rs->subname);

					if (k != NULL)
						col_note(s, k, relid, rs->newname);
					cons_follow_column(s, relid, rs->subname, rs->newname);
					nn_follow_column(s, relid, rs->subname, rs->newname);
				}
				break;
			}
		case T_CreateExtensionStmt:
			s->created_extension = true;
			break;
		case T_CreateFunctionStmt:
			s->created_funcs = lappend(s->created_funcs,
									   pstrdup(strVal(llast(((CreateFunctionStmt *) stmt)->funcname))));
			break;
		default:
			break;
	}
	MemoryContextSwitchTo(old);
}
