/*
 * contracts_script.c — elt.check_ddl(sql): a dry run of the contracts
 * engine on a script.
 *
 * Owns: elt.check_ddl().  The script is parsed with the raw parser; every
 * statement is classified (contracts_classify.c) and judged
 * (contracts_judge.c) in turn, and simple effects of earlier statements
 * (tables and indexes created, renamed or dropped, columns added, renamed
 * or dropped, SET search_path, SET lock_timeout) are remembered for the
 * later ones; transaction blocks, locks held, constraints, added columns
 * and functions are contracts_script_state.c's.  Nothing is executed and
 * nothing is recorded.
 *
 * Calls: contracts_script_state.c, contracts_classify.c, contracts_judge.c,
 * contracts_rules.c,
 * migrations.c (EltContractsReady), util.c, and govern.c (EltAnyTarget).
 *
 * Memory: what the script remembers (EltScript) lives in script.cxt for
 * the whole check; each statement is classified and judged in a context
 * reset after its rows are in the tuplestore, so a long script of
 * statements that reach every table (REINDEX DATABASE) stays small.
 *
 * Locking: as judging (a dry run locks nothing it cannot get at once, and
 * lets go at once).  SET search_path in the script holds until the end of
 * the check, in a GUC nest level of its own.
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
#include "contracts_int.h"
#include "deploy.h"
#include "govern.h"
#include "settings.h"
#include "util.h"

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
	s->col_keys = lappend(s->col_keys, EltColKey(relid, col));
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
			/* IF NOT EXISTS on a live table does nothing: it stays live */
			if (((CreateStmt *) stmt)->if_not_exists &&
				EltFindRelation(c, ((CreateStmt *) stmt)->relation, &relid) == FOUND_LIVE)
				break;
			s->created = lappend(s->created, EltRangeVarQualified(((CreateStmt *) stmt)->relation));
			break;
		case T_CreateTableAsStmt:
			if (((CreateTableAsStmt *) stmt)->if_not_exists &&
				EltFindRelation(c, ((CreateTableAsStmt *) stmt)->into->rel, &relid) == FOUND_LIVE)
				break;
			s->created = lappend(s->created,
								 EltRangeVarQualified(((CreateTableAsStmt *) stmt)->into->rel));
			break;
		case T_ViewStmt:
			/* OR REPLACE on a live view changes that view: it stays live */
			if (((ViewStmt *) stmt)->replace &&
				EltFindRelation(c, ((ViewStmt *) stmt)->view, &relid) == FOUND_LIVE)
				break;
			s->created = lappend(s->created, EltRangeVarQualified(((ViewStmt *) stmt)->view));
			break;
		case T_IndexStmt:
			{
				IndexStmt  *is = (IndexStmt *) stmt;
				Oid			nsp;

				/* an index of a live table, named: later statements may name it */
				if (is->idxname == NULL || is->relation == NULL ||
					EltFindRelation(c, is->relation, &relid) != FOUND_LIVE)
					break;
				nsp = get_rel_namespace(relid);
				if (is->if_not_exists &&
					EltFindRelation(c, makeRangeVar(get_namespace_name(nsp), is->idxname, -1),
									&relid) != FOUND_MISSING)
					break;
				s->created = lappend(s->created,
									 quote_qualified_identifier(get_namespace_name(nsp), is->idxname));
				break;
			}
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

				if (cs->schemaname == NULL ||
					(cs->if_not_exists && OidIsValid(get_namespace_oid(cs->schemaname, true))))
					break;
				s->created_schemas = lappend(s->created_schemas, pstrdup(cs->schemaname));
				EltScriptSchemas = s->created_schemas;
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

				if (at->relation == NULL || EltFindRelation(c, at->relation, &relid) != FOUND_LIVE)
					break;
				foreach(lc, at->cmds)
				{
					AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

					FormData_pg_attribute att;

					/* ADD COLUMN IF NOT EXISTS on a live column does nothing */
					if (cmd->subtype == AT_AddColumn && cmd->def && IsA(cmd->def, ColumnDef))
					{
						const char *name = ((ColumnDef *) cmd->def)->colname;

						/* (merged into an inheritor's column: not new) */
						if (EltFindColumn(c, relid, name, &att) != FOUND_LIVE &&
							!EltInheritorHasColumn(c, relid, name, &att))
							script_add_col(s, relid, name, 0);
					}
					else if (cmd->subtype == AT_DropColumn && cmd->name)
						script_add_col(s, relid, cmd->name, -1);
				}
				break;
			}
		case T_RenameStmt:
			{
				RenameStmt *rs = (RenameStmt *) stmt;

				if (rs->relation == NULL || EltFindRelation(c, rs->relation, &relid) != FOUND_LIVE)
					break;
				if (rs->renameType == OBJECT_COLUMN)
				{
					FormData_pg_attribute att;

					if (EltFindColumn(c, relid, rs->subname, &att) == FOUND_LIVE)
						script_add_col(s, relid, rs->newname, att.attnum);
					else
						script_add_col(s, relid, rs->newname, 0);
					script_add_col(s, relid, rs->subname, -1);
				}
				else if (rs->renameType == OBJECT_TABLE || rs->renameType == OBJECT_VIEW ||
						 rs->renameType == OBJECT_MATVIEW || rs->renameType == OBJECT_INDEX)
					script_alias(s, relid,
								 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
															rs->newname));
				break;
			}
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *as = (AlterObjectSchemaStmt *) stmt;

				if (as->relation == NULL || EltFindRelation(c, as->relation, &relid) != FOUND_LIVE)
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
					ds->removeType != OBJECT_MATVIEW && ds->removeType != OBJECT_INDEX)
					break;
				foreach(lc, ds->objects)
				{
					RangeVar   *rv = makeRangeVarFromNameList(castNode(List, lfirst(lc)));

					if (EltFindRelation(c, rv, &relid) == FOUND_LIVE)
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
				{
					bool		set;

					if (vs->kind == VAR_SET_VALUE)
						set = timeout_is_set(ExtractSetVariableArgs(vs));
					else if (vs->kind == VAR_SET_DEFAULT || vs->kind == VAR_RESET)
						set = timeout_is_set(GetConfigOptionResetString("lock_timeout"));
					else
						break;
					/* SET LOCAL holds to the end of the block; outside one it does nothing */
					if (vs->is_local)
					{
						if (s->in_block)
							s->lt_local = set ? 1 : 0;
					}
					else
					{
						s->lt_session = set;
						s->lt_local = -1;
					}
					EltScriptLockTimeoutNow(s);
				}
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
	MemoryContext call_cxt = CurrentMemoryContext;
	MemoryContext stmt_cxt;

	if (!EltContractsReady())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the elt_governance catalog is older than its library"),
				 errhint("Run ALTER EXTENSION elt_governance UPDATE.")));
	InitMaterializedSRF(fcinfo, 0);
	stmts = parse_script(sql);

	/*
	 * What the script remembers lives for the whole check; what one
	 * statement classifies and judges (REINDEX DATABASE: a candidate per
	 * table) is freed once its rows are in the tuplestore.
	 */
	memset(&script, 0, sizeof(script));
	script.cxt = AllocSetContextCreate(call_cxt, "elt.check_ddl script",
									   ALLOCSET_DEFAULT_SIZES);
	stmt_cxt = AllocSetContextCreate(call_cxt, "elt.check_ddl statement",
									 ALLOCSET_DEFAULT_SIZES);
	script.lock_timeout = LockTimeout > 0;
	MemoryContextSwitchTo(script.cxt);
	EltScriptBegin(&script, PG_NARGS() > 1 && !PG_ARGISNULL(1) && PG_GETARG_BOOL(1));
	MemoryContextSwitchTo(call_cxt);
	memset(&c, 0, sizeof(c));
	c.script = &script;
	c.actor = GetUserId();

	{
		EltCatalogWrite cw;

		EltCatalogWriteBegin(&cw);
		governed = EltAnyTarget();
		EltCatalogWriteEnd(&cw);
	}
	/* SET search_path in the script holds until the end of the check */
	guc_level = NewGUCNestLevel();
	EltScriptSchemas = NIL;

	/* lookups cached for this call only (contracts_judge.c) */
	EltJudgeCacheBegin();
	errcb.callback = check_ddl_context;
	errcb.arg = &n;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	foreach(lc, stmts)
	{
		RawStmt    *rs = lfirst_node(RawStmt, lc);
		char	   *text;
		ListCell   *fc;
		bool		txn;

		CHECK_FOR_INTERRUPTS();
		n++;
		MemoryContextReset(stmt_cxt);
		MemoryContextSwitchTo(script.cxt);
		txn = EltScriptTransaction(&script, rs->stmt);
		MemoryContextSwitchTo(stmt_cxt);
		if (txn)
			continue;
		text = statement_text(sql, rs);
		c.cxt = stmt_cxt;
		c.cands = NIL;
		c.locks = NIL;
		EltClassify(&c, rs->stmt);
		/* these note what they look up in the script's state (con_live) */
		c.cxt = script.cxt;
		EltClassifyHeldLocks(&c, rs->stmt);
		EltScriptClassify(&c, rs->stmt);
		c.cxt = stmt_cxt;
		if (c.cands != NIL)
		{
			EltCatalogWrite cw;

			EltCatalogWriteBegin(&cw);

			/*
			 * SPI_connect left us in SPI's procedure context, which
			 * EltCatalogWriteEnd frees: the findings (their dependents:
			 * thousands for a widely used type) are read after it.
			 */
			MemoryContextSwitchTo(stmt_cxt);
			if (governed)
				EltJudge(&c, script.lock_timeout);
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
		/* EG002, whatever is governed */
		c.cands = list_concat(c.cands, EltScriptBlockFindings(&c, rs->stmt));
		foreach(fc, c.cands)
		{
			EltCandidate *f = (EltCandidate *) lfirst(fc);
			Datum		values[8];
			bool		nulls[8] = {false, false, false, false, false, false, false, false};

			if (f->rule < 0)
				continue;
			values[0] = Int32GetDatum(n);
			values[1] = CStringGetTextDatum(text);
			values[2] = CStringGetTextDatum(EltContractRules[f->rule].code);
			values[3] = CStringGetTextDatum(EltContractRules[f->rule].class);
			values[4] = CStringGetTextDatum(f->object);
			values[5] = CStringGetTextDatum(f->reason);
			values[6] = EltTextArray(f->dependents);
			values[7] = CStringGetTextDatum(EltContractRules[f->rule].suggestion);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		/* what the statement leaves for the later ones: the script's */
		c.cxt = script.cxt;
		MemoryContextSwitchTo(script.cxt);
		EltScriptRemember(&c, rs->stmt);
		script_apply(&c, rs->stmt);
		EltScriptEndStatement(&script);
		MemoryContextSwitchTo(stmt_cxt);
	}
	MemoryContextSwitchTo(call_cxt);
	error_context_stack = errcb.previous;
	EltJudgeCacheEnd();
	AtEOXact_GUC(true, guc_level);
	EltScriptSchemas = NIL;
	MemoryContextDelete(stmt_cxt);
	MemoryContextDelete(script.cxt);
	return (Datum) 0;
}
