/*
 * contracts_swap.c — the table swap of dbt (and of anyone who builds a
 * relation beside the old one and swaps names), judged as the replacement
 * of one relation instead of a rename and a drop.
 *
 * Owns: the swaps of the running transaction and the relations the session
 * swapped out (EltSwapRenameOut, EltSwapRenameIn, EltSwapHistoryFrom,
 * EltSwapRetired).  dbt's
 * table, view and incremental --full-refresh materializations run, in one
 * transaction:
 *     create table|view m__dbt_tmp ...;
 *     alter table m rename to m__dbt_backup;        -- "rename out"
 *     alter table m__dbt_tmp rename to m;           -- "rename in"
 *     commit;
 *     drop table|view if exists m__dbt_backup cascade;
 * A rename out of a governed relation m is deferred when this transaction
 * created m__dbt_tmp in the same schema and nothing depends on m but views
 * (a materialized view, a function, a rule or a registered consumer would
 * be lost with the backup, so that case is still judged, and stopped, at
 * the rename).  The views that read m are noted with their definitions at
 * the rename out (EltSwapCaptureViews), and made again as their owners on
 * the new relation at the end of the rename in (EltSwapFollowViews), before
 * dbt drops the backup.  The rename in then compares the new
 * relation's columns with the old one's: a column removed or retyped is a
 * breaking change, stopped under enforce before anything is dropped.  At
 * commit, a rename out that nothing took the name back from, or whose new
 * relation no longer holds the name, is an EG105 error after all; under
 * enforce the new relation's columns are judged again there, since this
 * transaction, which created it, may have changed it unjudged since.  A committed swap's old relation is retired for the
 * session: dbt's drop of the backup, in its next transaction, is not judged
 * (the views a CASCADE would take with it still are).  The version capture
 * asks EltSwapHistoryFrom at the rename in, and hands the old relation's
 * history to the new one: a model keeps one table_id, and its new version
 * is compared with its old shape; a model governed by name (a table target)
 * has its target moved to the new relation (govern.c, EltMoveTableTarget).
 * The new relation may lie outside governed scope until then: the capture
 * hook notes the tables this transaction created (EltTableCreatedNow).  Inside an approved
 * migration the rename out is approved as usual and still noted, so that
 * the backup is retired.
 *
 * Layering: part of the contracts engine; called by contracts_judge.c and
 * the capture triggers (versions_capture.c); calls settings.c, util.c,
 * contracts_record.c and migrations.c (to record, under warn, the findings
 * of a swap that goes ahead, in the window the session joined).  State is backend-local, in
 * TopMemoryContext, reset by a transaction callback.  Takes no lock beyond
 * the statements' own.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "contracts.h"
#include "contracts_int.h"
#include "contracts_swap.h"
#include "migrations.h"
#include "settings.h"
#include "util.h"

/* A rename out waiting for its rename in. */
typedef struct EltSwap
{
	Oid			old_relid;		/* the model's relation, renamed out */
	Oid			tmp_relid;		/* the relation this transaction built */
	Oid			nspoid;
	char		name[NAMEDATALEN];	/* the model's name, to be taken back */
	char	   *reason;			/* the EG105 finding, for the commit check */
	char	   *policy;
	bool		done;
	bool		handed;			/* history handed to the new relation */
	bool		followed;		/* views made again on the new relation */
	List	   *views;			/* of EltSwapView: the views that read it */
} EltSwap;

/* A view that reads a swapped-out relation, to be made again on the new one. */
typedef struct EltSwapView
{
	Oid			oid;
	Oid			owner;
	char	   *name;			/* qualified and quoted */
	char	   *options;		/* " WITH (...)" or "" */
	char	   *definition;		/* every name qualified but pg_catalog's */
} EltSwapView;

static List *swaps = NIL;		/* of EltSwap, this transaction */
static List *retired = NIL;		/* old relids of committed swaps, this session */
static bool callback_set = false;

static const char tmp_suffix[] = "__dbt_tmp";

static void swap_compare(EltSwap *s, int elevel, const char *tagname);

/*
 * At commit, a rename out whose name nothing took back is the EG105 it was
 * deferred from; committed swaps retire their old relations; an abort
 * forgets them.
 */
static void
swap_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (swaps == NIL)
		return;
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PARALLEL_PRE_COMMIT)
	{
		foreach(lc, swaps)
		{
			EltSwap    *s = (EltSwap *) lfirst(lc);

			/*
			 * The relation that took the name must still hold it, with the
			 * old columns: this transaction may have renamed, dropped or
			 * altered it since (a relation it created is not judged).
			 */
			if (s->done && get_relname_relid(s->name, s->nspoid) != s->tmp_relid)
				s->done = false;
			else if (s->done && strcmp(s->policy, "enforce") == 0)
				swap_compare(s, ERROR, NULL);
			if (!s->done && strcmp(s->policy, "enforce") == 0)
				ereport(ERROR,
						(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
						 errmsg("EG105: %s", s->reason),
						 errdetail("Class breaking, under policy enforce. The rename was let through as the first half of a swap, but no relation built by this transaction took the name \"%s\" back before the commit.",
								   s->name),
						 errhint("Rename the new relation to \"%s\" in the same transaction, or run the rename inside an approved migration.",
								 s->name)));
		}
		return;
	}
	if (event == XACT_EVENT_COMMIT)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		foreach(lc, swaps)
		{
			EltSwap    *s = (EltSwap *) lfirst(lc);

			if (s->done)
				retired = list_append_unique_oid(retired, s->old_relid);
		}
		MemoryContextSwitchTo(old);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		/* the list lives in TopMemoryContext: free it with its entries */
		foreach(lc, swaps)
		{
			EltSwap    *s = (EltSwap *) lfirst(lc);

			ListCell   *vc;

			pfree(s->reason);
			pfree(s->policy);
			foreach(vc, s->views)
			{
				EltSwapView *v = (EltSwapView *) lfirst(vc);

				pfree(v->name);
				pfree(v->options);
				pfree(v->definition);
			}
			list_free_deep(s->views);
		}
		list_free_deep(swaps);
		swaps = NIL;
	}
}

/*
 * The relation dbt builds for a model: "<name>__dbt_tmp" in the model's
 * schema, the name cut as dbt-postgres cuts it (make_relation_with_suffix)
 * to fit 63 bytes.
 */
Oid
EltSwapTmpFor(Oid relid)
{
	char	   *name = get_rel_name(relid);
	Oid			nspoid = get_rel_namespace(relid);
	char		tmpname[NAMEDATALEN];
	int			keep;

	if (name == NULL)
		return InvalidOid;
	keep = Min((int) strlen(name), NAMEDATALEN - 1 - (int) strlen(tmp_suffix));
	keep = pg_mbcliplen(name, strlen(name), keep);
	snprintf(tmpname, sizeof(tmpname), "%.*s%s", keep, name, tmp_suffix);
	if (strcmp(tmpname, name) == 0)
		return InvalidOid;
	return get_relname_relid(tmpname, nspoid);
}

/*
 * The views that read relid directly, with their owners, options and
 * definitions, to be made again on the relation that takes relid's name
 * (EltSwapFollowViews), in TopMemoryContext; *ok is false, and the list
 * NIL, when something reads relid that cannot follow that way: a rule of
 * another kind, a temporary view (another session's cannot be made again
 * from here).  The definitions are read with search_path pinned to
 * pg_catalog (the caller is in the catalog write context), so that every
 * other name in them is qualified: made again after the swap, the same
 * text reads the new relation.  SPI connected.
 */
List *
EltSwapCaptureViews(Oid relid, bool *ok)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	List	   *views = NIL;
	uint64		i;

	*ok = true;
	EltPrepare(&plan,
			   "SELECT DISTINCT v.oid, v.relowner,"
			   "       v.relkind = 'v' AND w.rulename = '_RETURN' AND v.relpersistence <> 't' AS followable,"
			   "       v.oid::pg_catalog.regclass::pg_catalog.text AS name,"
			   "       (SELECT pg_catalog.string_agg(pg_catalog.format('%I=%L', pg_catalog.split_part(o, '=', 1),"
			   "          pg_catalog.substr(o, pg_catalog.strpos(o, '=') + 1)), ', ')"
			   "        FROM pg_catalog.unnest(v.reloptions) o) AS options,"
			   "       CASE WHEN v.relkind = 'v' THEN pg_catalog.pg_get_viewdef(v.oid) END AS definition"
			   " FROM pg_catalog.pg_depend d"
			   " JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid"
			   " JOIN pg_catalog.pg_class v ON v.oid = w.ev_class"
			   " WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
			   "   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
			   "   AND d.refobjid = $1 AND v.oid <> $1"
			   " ORDER BY v.oid",
			   1, argtypes);
	args[0] = ObjectIdGetDatum(relid);
	EltExecLatest(plan, args, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		char	   *options;
		MemoryContext old;
		EltSwapView *v;

		if (!EltSpiGetBool((int) i, "followable", &isnull))
		{
			*ok = false;
			return NIL;
		}
		options = EltSpiGetText((int) i, "options");
		old = MemoryContextSwitchTo(TopMemoryContext);
		v = palloc0(sizeof(EltSwapView));
		v->oid = DatumGetObjectId(EltSpiGetDatum((int) i, "oid", &isnull));
		v->owner = DatumGetObjectId(EltSpiGetDatum((int) i, "relowner", &isnull));
		v->name = pstrdup(EltSpiGetText((int) i, "name"));
		v->options = options ? psprintf(" WITH (%s)", options) : pstrdup("");
		v->definition = pstrdup(EltSpiGetText((int) i, "definition"));
		views = lappend(views, v);
		MemoryContextSwitchTo(old);
	}
	return views;
}

/*
 * Defer the rename out of relid (judged breaking under policy, for reason):
 * the transaction built tmp_relid to take its name.  views (from
 * EltSwapCaptureViews) are made again on tmp_relid once it has the name.
 */
void
EltSwapRenameOut(Oid relid, Oid tmp_relid, const char *reason, const char *policy,
				 List *views)
{
	MemoryContext old;
	EltSwap    *s;

	if (!callback_set)
	{
		RegisterXactCallback(swap_xact_callback, NULL);
		callback_set = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	s = palloc0(sizeof(EltSwap));
	s->old_relid = relid;
	s->tmp_relid = tmp_relid;
	s->nspoid = get_rel_namespace(relid);
	strlcpy(s->name, get_rel_name(relid), NAMEDATALEN);
	s->reason = pstrdup(reason);
	s->policy = pstrdup(policy);
	s->views = views;
	swaps = lappend(swaps, s);
	MemoryContextSwitchTo(old);
}

/* The type of a column as SQL writes it, or NULL if the relation lacks it. */
static char *
column_type(Oid relid, const char *colname, Oid *typid, int32 *typmod)
{
	HeapTuple	tup = SearchSysCacheAttName(relid, colname);
	Form_pg_attribute att;
	char	   *display;

	if (!HeapTupleIsValid(tup))
		return NULL;
	att = (Form_pg_attribute) GETSTRUCT(tup);
	*typid = att->atttypid;
	*typmod = att->atttypmod;
	display = format_type_with_typemod(att->atttypid, att->atttypmod);
	ReleaseSysCache(tup);
	return display;
}

/*
 * One finding of a swap that goes ahead under warn, as elt.schema_changes
 * records it: the column of the model (object "schema.model.column") that
 * the new relation drops or retypes.  relid is left invalid: the old
 * relation is on its way out, and its backfills are not the new one's.
 */
static EltCandidate *
swap_finding(EltSwap *s, int rule, const char *model, const char *colname,
			 char *reason)
{
	EltCandidate *f = palloc0(sizeof(EltCandidate));

	f->rule = rule;
	f->relid = InvalidOid;
	f->nspoid = s->nspoid;
	f->colname = pstrdup(colname);
	f->object = psprintf("%s.%s", model, quote_identifier(colname));
	f->reason = reason;
	f->policy = s->policy;
	f->dependents = NIL;
	return f;
}

/*
 * Judge the columns of a swap's new relation against the old one's: a
 * column of the old relation that the new one lacks, or has with another
 * type, is breaking; under enforce (elevel ERROR) the statement or the
 * commit fails, under warn it raises a WARNING and records the findings in
 * elt.schema_changes (decision warned, tagname the statement's tag).  The old relation is still
 * there: dropping it in the swap's own transaction is judged as usual.
 */
static void
swap_compare(EltSwap *s, int elevel, const char *tagname)
{
	Relation	rel;
	TupleDesc	desc;
	StringInfoData changes;
	int			i;
	int			n = 0;
	Oid			relid = s->tmp_relid;
	char	   *model;
	List	   *findings = NIL;

	/* gone: its drop was judged on its own */
	rel = try_relation_open(s->old_relid, AccessShareLock);
	if (rel == NULL)
		return;
	initStringInfo(&changes);
	model = quote_qualified_identifier(get_namespace_name(s->nspoid), s->name);
	desc = RelationGetDescr(rel);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *colname = NameStr(att->attname);
		Oid			typid;
		int32		typmod;
		char	   *newtype;

		if (att->attisdropped)
			continue;
		newtype = column_type(relid, colname, &typid, &typmod);
		if (newtype == NULL)
		{
			appendStringInfo(&changes, "%sdrops column %s", n++ ? "; " : "",
							 quote_identifier(colname));
			findings = lappend(findings,
							   swap_finding(s, R_DROP_COLUMN, model, colname,
											psprintf("replaces %s with a relation that drops column %s: readers that select it fail",
													 model, quote_identifier(colname))));
		}
		else if (typid != att->atttypid || typmod != att->atttypmod)
		{
			appendStringInfo(&changes, "%schanges the type of column %s from %s to %s",
							 n++ ? "; " : "", quote_identifier(colname),
							 format_type_with_typemod(att->atttypid, att->atttypmod),
							 newtype);
			findings = lappend(findings,
							   swap_finding(s, R_TYPE_NARROWING, model, colname,
											psprintf("replaces %s with a relation that changes the type of column %s from %s to %s: readers of it may fail",
													 model, quote_identifier(colname),
													 format_type_with_typemod(att->atttypid, att->atttypmod),
													 newtype)));
		}
	}
	relation_close(rel, AccessShareLock);
	if (n > 0)
		ereport(elevel,
				(errcode(ERRCODE_ELT_CHANGE_BLOCKED),
				 errmsg("%s: replaces %s with a relation that %s: readers of the removed or retyped columns fail",
						n > 0 && strstr(changes.data, "drops") ? "EG104" : "EG107",
						quote_qualified_identifier(get_namespace_name(s->nspoid), s->name),
						changes.data),
				 errdetail("Class breaking, under policy %s. The new relation takes the name of the old one, which was renamed out of the way in the same transaction (a dbt swap); nothing has been dropped.",
						   s->policy),
				 errhint("Keep the old columns and their types in the model, or approve the change: run the build after SELECT elt.migration_begin(name, reason, approved_by).")));
	/* under warn it goes ahead: record each finding, as the judge does */
	if (findings != NIL)
	{
		EltCatalogWrite cw;
		List	   *decisions = NIL;
		int			k;

		for (k = 0; k < list_length(findings); k++)
			decisions = lappend(decisions, "warned");
		EltCatalogWriteBegin(&cw);
		EltContractsWriteRecords(&cw, findings, decisions, tagname,
								 EltCurrentStatement(), EltMigrationJoin(&cw));
		EltCatalogWriteEnd(&cw);
	}
}

/*
 * relid is being renamed to newname: if that completes a swap, judge the
 * new relation's columns against the old one's (swap_compare): under
 * enforce the rename fails (the old relation keeps its name and nothing is
 * dropped), under warn it raises a WARNING and records the findings under
 * tagname.  The commit judges them again under enforce.
 */
void
EltSwapRenameIn(Oid relid, const char *newname, const char *tagname)
{
	ListCell   *lc;

	foreach(lc, swaps)
	{
		EltSwap    *s = (EltSwap *) lfirst(lc);

		if (s->done || s->tmp_relid != relid || strcmp(s->name, newname) != 0 ||
			get_rel_namespace(relid) != s->nspoid)
			continue;
		/* approved by a migration, or under policy off: nothing to judge */
		if (strcmp(s->policy, "off") != 0)
			swap_compare(s, strcmp(s->policy, "enforce") == 0 ? ERROR : WARNING, tagname);
		s->done = true;
	}
}

/*
 * The relation whose name relid took back in this transaction's swap, once:
 * the capture trigger hands its history to relid (versions_store.c,
 * EltTakeOverHistory).  InvalidOid when relid completed no swap.
 */
Oid
EltSwapHistoryFrom(Oid relid)
{
	ListCell   *lc;

	foreach(lc, swaps)
	{
		EltSwap    *s = (EltSwap *) lfirst(lc);

		if (s->done && !s->handed && s->tmp_relid == relid)
		{
			s->handed = true;
			return s->old_relid;
		}
	}
	return InvalidOid;
}

/* Run one statement (EltTrySubxact's callback). */
static void
exec_statement(void *sql)
{
	EltSpiExec((const char *) sql);
}

/*
 * The rename in of a swap has given the model's name to the new relation:
 * make every view that read the old relation again from its definition
 * (CREATE OR REPLACE VIEW, which keeps its oid, owner, grants, column
 * grants, comments and the views on it; with its options), so that it
 * reads the new relation and dbt's drop ... cascade of the backup does not
 * take it.  Each is made as its owner, in a security-restricted operation
 * with search_path pinned: never with the build's rights.  The text is
 * the owner's own; the caller only has to be who could drop the view with
 * the old relation (drop ... cascade): a role with the privileges of the
 * old relation's owner, as PostgreSQL required of the rename out.  A view
 * that cannot be made again (a column it reads is gone, or its columns
 * would change type) stops the statement, naming it: nothing has been
 * dropped.  Called by the capture trigger at ddl_command_end, outside the
 * catalog write context, as the statement's role.
 */
void
EltSwapFollowViews(void)
{
	ListCell   *lc;

	foreach(lc, swaps)
	{
		EltSwap    *s = (EltSwap *) lfirst(lc);
		ListCell   *vc;
		Oid			old_owner;
		HeapTuple	tup;

		if (!s->done || s->followed || s->views == NIL)
			continue;
		s->followed = true;
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(s->old_relid));
		if (!HeapTupleIsValid(tup))
			continue;
		old_owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
		if (!has_privs_of_role(GetUserId(), old_owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to make the views on %s read the relation that replaces it",
							quote_qualified_identifier(get_namespace_name(s->nspoid), s->name)),
					 errdetail("The relation it replaces is owned by role \"%s\", whose privileges you do not have.",
							   GetUserNameFromId(old_owner, false)),
					 errhint("Run the build as the owner of the model.")));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		foreach(vc, s->views)
		{
			EltSwapView *v = (EltSwapView *) lfirst(vc);
			EltAsRole	ar;
			ErrorData  *e;

			if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(v->oid)))
				continue;		/* dropped by the build itself */
			EltAsRoleBegin(&ar, v->owner, "pg_catalog, pg_temp", true);
			e = EltTrySubxact(exec_statement,
							  psprintf("CREATE OR REPLACE VIEW %s%s AS %s",
									   v->name, v->options, v->definition));
			EltAsRoleEnd(&ar);
			if (e != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
						 errmsg("view %s cannot follow %s to the relation that replaces it",
								v->name, quote_qualified_identifier(get_namespace_name(s->nspoid), s->name)),
						 errdetail("Made again from its definition on the new relation: %s. Nothing has been dropped.",
								   e->message),
						 errhint("Keep the columns the view reads, with their types, in the model; or drop the view (or change it) in the build's transaction, for example in an approved migration.")));
		}
		SPI_finish();
	}
}

/* Was relid swapped out by a transaction of this session that committed? */
bool
EltSwapRetired(Oid relid)
{
	return list_member_oid(retired, relid);
}
