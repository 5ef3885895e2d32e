/*
 * contracts_swap.c — the table swap of dbt (and of anyone who builds a
 * relation beside the old one and swaps names), judged as the replacement
 * of one relation instead of a rename and a drop.
 *
 * Owns: the swaps of the running transaction and the relations the session
 * swapped out (EltSwapRenameOut, EltSwapRenameIn, EltSwapRetired).  dbt's
 * table, view and incremental --full-refresh materializations run, in one
 * transaction:
 *     create table|view m__dbt_tmp ...;
 *     alter table m rename to m__dbt_backup;        -- "rename out"
 *     alter table m__dbt_tmp rename to m;           -- "rename in"
 *     commit;
 *     drop table|view if exists m__dbt_backup cascade;
 * A rename out of a governed relation m is deferred when this transaction
 * created m__dbt_tmp in the same schema and nothing depends on m (a view or
 * a registered consumer would be lost with the backup, so that case is still
 * judged, and stopped, at the rename).  The rename in then compares the new
 * relation's columns with the old one's: a column removed or retyped is a
 * breaking change, stopped under enforce before anything is dropped.  At
 * commit, a rename out that nothing took the name back from, or whose new
 * relation no longer holds the name, is an EG105 error after all; under
 * enforce the new relation's columns are judged again there, since this
 * transaction, which created it, may have changed it unjudged since.  A committed swap's old relation is retired for the
 * session: dbt's drop of the backup, in its next transaction, is not judged
 * (the views a CASCADE would take with it still are).  Inside an approved
 * migration the rename out is approved as usual and still noted, so that
 * the backup is retired.
 *
 * Layering: part of the contracts engine; called by contracts_judge.c;
 * calls settings.c and util.c only.  State is backend-local, in
 * TopMemoryContext, reset by a transaction callback.  Takes no lock beyond
 * the statements' own.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_attribute.h"
#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "contracts.h"
#include "contracts_swap.h"
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
} EltSwap;

static List *swaps = NIL;		/* of EltSwap, this transaction */
static List *retired = NIL;		/* old relids of committed swaps, this session */
static bool callback_set = false;

static const char tmp_suffix[] = "__dbt_tmp";

static void swap_compare(EltSwap *s, int elevel);

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
				swap_compare(s, ERROR);
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

			pfree(s->reason);
			pfree(s->policy);
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
 * Defer the rename out of relid (judged breaking under policy, for reason):
 * the transaction built tmp_relid to take its name.
 */
void
EltSwapRenameOut(Oid relid, Oid tmp_relid, const char *reason, const char *policy)
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
 * Judge the columns of a swap's new relation against the old one's: a
 * column of the old relation that the new one lacks, or has with another
 * type, is breaking; under enforce (elevel ERROR) the statement or the
 * commit fails, under warn it raises a WARNING.  The old relation is still
 * there: dropping it in the swap's own transaction is judged as usual.
 */
static void
swap_compare(EltSwap *s, int elevel)
{
	Relation	rel;
	TupleDesc	desc;
	StringInfoData changes;
	int			i;
	int			n = 0;
	Oid			relid = s->tmp_relid;

	/* gone: its drop was judged on its own */
	rel = try_relation_open(s->old_relid, AccessShareLock);
	if (rel == NULL)
		return;
	initStringInfo(&changes);
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
			appendStringInfo(&changes, "%sdrops column %s", n++ ? "; " : "",
							 quote_identifier(colname));
		else if (typid != att->atttypid || typmod != att->atttypmod)
			appendStringInfo(&changes, "%schanges the type of column %s from %s to %s",
							 n++ ? "; " : "", quote_identifier(colname),
							 format_type_with_typemod(att->atttypid, att->atttypmod),
							 newtype);
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
}

/*
 * relid is being renamed to newname: if that completes a swap, judge the
 * new relation's columns against the old one's (swap_compare): under
 * enforce the rename fails (the old relation keeps its name and nothing is
 * dropped), under warn it raises a WARNING.  The commit judges them again.
 */
void
EltSwapRenameIn(Oid relid, const char *newname)
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
			swap_compare(s, strcmp(s->policy, "enforce") == 0 ? ERROR : WARNING);
		s->done = true;
	}
}

/* Was relid swapped out by a transaction of this session that committed? */
bool
EltSwapRetired(Oid relid)
{
	return list_member_oid(retired, relid);
}
