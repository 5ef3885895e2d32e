/*
 * audit_replay.c — the replays of elt.audit_verify(): what the actions the
 * audit chain records say the tables the extension updates hold, compared
 * with those tables.
 *
 * Owns: replaying govern, ungovern, policy_changed and target_renamed
 * (elt.governed_targets), check_create, check_moved and check_drop
 * (elt.check_defs), approver_added and approver_removed (elt.approvers),
 * migration_approved, migration_begun and migration_ended
 * (elt.migration_windows, elt.migration_approvals), in memory, row by row
 * as audit_verify.c walks the chain; then comparing each table with its
 * replay (the first difference, in words).  Also the helpers both files
 * use to read an audit row's details and to word a difference
 * (audit_replay.h).
 *
 * Layering: called by audit_verify.c only; calls util*.c only.  Values
 * of elt.check_defs are named in a difference only when EltVerifyReveals
 * (elt_reader, superusers), which audit_verify.c sets.
 *
 * Transactions and locking: read-only, SPI connected by the caller.  Each
 * table is read by one read-only statement with the calling statement's
 * snapshot, as the chain is (AccessShareLock only); elt.check_defs is read
 * as the extension's owner.  The replays live in the memory context the
 * caller gives, which outlives SPI's.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "audit_replay.h"
#include "util.h"

/* A governed target as the audit log describes it, replayed by audit_verify. */
typedef struct ReplayTarget
{
	bool		is_schema;
	char	   *schema;
	int64		table_id;
	char	   *policy;
} ReplayTarget;

/*
 * A field of a table's row that differs from what the audit log says:
 * "<table> has <field> <value> for <what>, but the audit log says <said>",
 * both values as the message shows them (quoted, shown, a role).  Every
 * replay compares its rows this way.
 */
char *
EltVerifyDiffers(const char *table, const char *field, const char *value, const char *what, const char *said)
{
	return psprintf("%s has %s %s for %s, but the audit log says %s", table, field, value, what, said);
}

/*
 * The entry with the lowest key among those of a replay's hash table that
 * its table did not have (whose bool at seen_offset is false), or NULL:
 * the first row the audit log has and the table lacks.  The key is the
 * int64 an entry starts with.
 */
static void *
first_unseen(HTAB *replayed, size_t seen_offset)
{
	HASH_SEQ_STATUS seq;
	char	   *entry;
	char	   *first = NULL;

	hash_seq_init(&seq, replayed);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (!*(bool *) (entry + seen_offset) && (first == NULL || *(int64 *) entry < *(int64 *) first))
			first = entry;
	return first;
}

/* A string member of a jsonb object, or NULL. */
char *
EltJsonbTextMember(Jsonb *jb, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* An integer member of a jsonb object; false if absent. */
static bool
jsonb_int_member(Jsonb *jb, const char *key, int64 *value)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvNumeric)
		return false;
	*value = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
	return true;
}

/* The replayed target with the same identity, or NULL. */
static ReplayTarget *
replay_find(List *targets, bool is_schema, const char *schema, int64 table_id)
{
	ListCell   *lc;

	foreach(lc, targets)
	{
		ReplayTarget *rt = (ReplayTarget *) lfirst(lc);

		if (rt->is_schema == is_schema &&
			(is_schema ? strcmp(rt->schema, schema) == 0 : rt->table_id == table_id))
			return rt;
	}
	return NULL;
}

/*
 * Apply one governance action to the replayed targets.  Returns false when
 * the action does not carry what a replay needs (then no replay is made).
 */
static bool
replay_action(List **targets, const char *action, Jsonb *details)
{
	char	   *kind = EltJsonbTextMember(details, "kind");
	bool		is_schema;
	char	   *schema = NULL;
	int64		table_id = 0;
	ReplayTarget *rt;

	if (kind == NULL)
		return false;
	is_schema = strcmp(kind, "schema") == 0;
	if (strcmp(action, "target_renamed") == 0)
	{
		char	   *from = EltJsonbTextMember(details, "from");
		char	   *to = EltJsonbTextMember(details, "to");

		if (!is_schema || from == NULL || to == NULL)
			return false;
		rt = replay_find(*targets, true, from, 0);
		if (rt)
			rt->schema = to;
		return true;
	}
	if (is_schema ? (schema = EltJsonbTextMember(details, "schema")) == NULL :
		!jsonb_int_member(details, "table_id", &table_id))
		return false;
	rt = replay_find(*targets, is_schema, schema, table_id);
	if (strcmp(action, "ungovern") == 0)
	{
		if (rt)
			*targets = list_delete_ptr(*targets, rt);
		return true;
	}
	if (strcmp(action, "govern") != 0 && strcmp(action, "policy_changed") != 0)
		return true;
	if (rt == NULL)
	{
		rt = palloc0(sizeof(ReplayTarget));
		rt->is_schema = is_schema;
		rt->schema = schema;
		rt->table_id = table_id;
		*targets = lappend(*targets, rt);
	}
	rt->policy = EltJsonbTextMember(details, strcmp(action, "govern") == 0 ? "policy" : "to");
	return rt->policy != NULL;
}

/*
 * Compare the replayed targets with elt.governed_targets (read with the same
 * snapshot as the chain).  Returns a description of the first difference,
 * or NULL.
 */
static char *
replay_compare(List *expected)
{
	uint64		i;
	uint64		n;
	SPITupleTable *tt;
	List	   *seen = NIL;
	ListCell   *lc;

	if (SPI_execute("SELECT g.kind = 'schema' AS is_schema, g.schema_name::text AS schema_name,"
					"       t.table_id, g.rel::text AS rel, g.policy"
					" FROM elt.governed_targets g"
					" LEFT JOIN elt.tracked_tables t ON t.relid = g.rel"
					" ORDER BY g.target_id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read elt.governed_targets");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		TupleDesc	desc = tt->tupdesc;
		bool		isnull;
		bool		is_schema = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *schema = SPI_getvalue(tup, desc, 2);
		int64		table_id = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		bool		untracked = isnull;
		char	   *policy = SPI_getvalue(tup, desc, 5);
		const char *what = is_schema ? psprintf("schema \"%s\"", schema) :
			psprintf("table %s", SPI_getvalue(tup, desc, 4));
		ReplayTarget *rt = (!is_schema && untracked) ? NULL :
			replay_find(expected, is_schema, schema, table_id);

		if (rt == NULL)
			return psprintf("elt.governed_targets governs %s (policy %s), which no governance action in the audit log accounts for",
							what, policy);
		if (strcmp(rt->policy, policy) != 0)
			return EltVerifyDiffers("elt.governed_targets", "policy", policy, what, rt->policy);
		seen = lappend(seen, rt);
	}
	foreach(lc, expected)
	{
		ReplayTarget *rt = (ReplayTarget *) lfirst(lc);

		if (!list_member_ptr(seen, rt))
			return rt->is_schema ?
				psprintf("the audit log says schema \"%s\" is governed (policy %s), but elt.governed_targets has no such target",
						 rt->schema, rt->policy) :
				psprintf("the audit log says the table with table_id %lld is governed (policy %s), but elt.governed_targets has no such target",
						 (long long) rt->table_id, rt->policy);
	}
	return NULL;
}

/* A member of a jsonb object as text, or NULL for null; *present: whether it is there. */
char *
EltJsonbMemberAsText(Jsonb *jb, const char *key, bool *present)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);

	*present = (v != NULL);
	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvNull:
			return NULL;
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			{
				Jsonb	   *sub = JsonbValueToJsonb(v);

				return JsonbToCString(NULL, &sub->root, VARSIZE(sub));
			}
	}
}

/* Whether two values (NULL for SQL NULL) differ. */
bool
EltVerifyTextDiffers(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a == NULL) != (b == NULL);
	return strcmp(a, b) != 0;
}

/* A value for a message. */
const char *
EltVerifyShown(const char *value)
{
	return value ? value : "NULL";
}

/* Free text for a message: in double quotes, or NULL. */
char *
EltVerifyQuoted(const char *value)
{
	return value ? psprintf("\"%s\"", value) : "NULL";
}

/* ---------------------------------------------------------------------
 * Quality checks, replayed from check_create, check_moved and check_drop
 * ---------------------------------------------------------------------
 */

/* A check as the audit log describes it. */
typedef struct ReplayCheck
{
	int64		check_id;		/* hash key */
	char	   *name;
	char	   *kind;
	char	   *severity;
	char	   *args;			/* JSON text */
	char	   *object;			/* its relation's name when it was declared */
	bool		has_relation;	/* recorded from 0.7.0 on, or by a check_moved */
	Oid			relation;
	char	   *relation_name;	/* its name when declared or moved */
	bool		has_owner;		/* recorded from 0.7.0 on */
	Oid			owner;
	char	   *owner_name;		/* the role of the check_create row */
	bool		has_search_path;	/* recorded from 0.7.0 on */
	char	   *search_path;
	int64		audit_id;		/* the check_create row */
	bool		seen;			/* found in elt.check_defs */
} ReplayCheck;

/*
 * The check a check_drop written before 0.7.0 (no check_id) dropped: the
 * only replayed check of that name, else the only one of that name declared
 * on a relation of the name the drop names.  NULL when that is ambiguous.
 */
static ReplayCheck *
replay_check_legacy_drop(HTAB *checks, const char *name, const char *object)
{
	HASH_SEQ_STATUS seq;
	ReplayCheck *rc;
	ReplayCheck *by_name = NULL;
	ReplayCheck *by_object = NULL;
	int			n_name = 0;
	int			n_object = 0;

	hash_seq_init(&seq, checks);
	while ((rc = hash_seq_search(&seq)) != NULL)
	{
		if (strcmp(rc->name, name) != 0)
			continue;
		n_name++;
		by_name = rc;
		if (object != NULL && strcmp(rc->object, object) == 0)
		{
			n_object++;
			by_object = rc;
		}
	}
	if (n_name == 1)
		return by_name;
	if (n_object == 1)
		return by_object;
	return NULL;
}

/*
 * Apply one check action (row id) to the replayed checks.  Returns false
 * when the action does not carry what a replay needs, or a check_drop
 * written before 0.7.0 cannot be told apart (then no comparison is made).
 */
static bool
replay_check(HTAB *checks, int64 id, const char *action, const char *object, const char *role,
			 Jsonb *details)
{
	int64		check_id;
	int64		oid;
	ReplayCheck *rc;
	bool		found;
	bool		present;

	if (strcmp(action, "check_create") == 0)
	{
		if (!jsonb_int_member(details, "check_id", &check_id) || object == NULL)
			return false;
		rc = hash_search(checks, &check_id, HASH_ENTER, &found);
		rc->name = EltJsonbTextMember(details, "name");
		rc->kind = EltJsonbTextMember(details, "kind");
		rc->severity = EltJsonbTextMember(details, "severity");
		rc->args = EltJsonbMemberAsText(details, "args", &present);
		rc->object = pstrdup(object);
		rc->has_relation = jsonb_int_member(details, "relation", &oid);
		rc->relation = (Oid) oid;
		rc->relation_name = rc->object;
		rc->has_owner = jsonb_int_member(details, "owner", &oid);
		rc->owner = (Oid) oid;
		rc->owner_name = role != NULL ? pstrdup(role) : NULL;
		rc->search_path = EltJsonbTextMember(details, "search_path");
		rc->has_search_path = rc->search_path != NULL;
		rc->audit_id = id;
		rc->seen = false;
		return rc->name != NULL && rc->kind != NULL && rc->severity != NULL && rc->args != NULL;
	}
	if (strcmp(action, "check_moved") == 0)
	{
		if (!jsonb_int_member(details, "check_id", &check_id) ||
			!jsonb_int_member(details, "relation", &oid))
			return false;
		rc = hash_search(checks, &check_id, HASH_FIND, NULL);
		if (rc != NULL)
		{
			rc->has_relation = true;
			rc->relation = (Oid) oid;
			rc->relation_name = object != NULL ? pstrdup(object) : NULL;
		}
		return true;
	}
	/* check_drop */
	if (jsonb_int_member(details, "check_id", &check_id))
	{
		(void) hash_search(checks, &check_id, HASH_REMOVE, NULL);
		return true;
	}
	else
	{
		char	   *name = EltJsonbTextMember(details, "name");

		if (name == NULL || (rc = replay_check_legacy_drop(checks, name, object)) == NULL)
			return false;
		(void) hash_search(checks, &rc->check_id, HASH_REMOVE, NULL);
		return true;
	}
}

/* A replayed check's relation, for a message. */
static char *
replay_check_relation(ReplayCheck *rc)
{
	return rc->has_relation ? EltRelDisplayName(rc->relation) : rc->object;
}

/* A role's name for a message, or its oid when it is gone. */
static char *
role_display(Oid role)
{
	char	   *name = GetUserNameFromId(role, true);

	return name ? pstrdup(quote_identifier(name)) : psprintf("%u", role);
}

/*
 * Whether relation, the regclass elt.check_defs has for a check, is the
 * relation the audit log recorded by the oid it had then.  The same oid;
 * else (a restore, into another database or cluster, resolved the
 * relation by name to a new oid) a relation of the name the audit log
 * recorded, or the live table of a history in which it had that oid
 * (elt.schema_versions keeps the oids a table had: it may have been
 * renamed since).  Runs a query: tt, the caller's tuple table, stays.
 */
static bool
check_same_relation(ReplayCheck *rc, Oid relation)
{
	if (rc->relation == relation)
		return true;
	if (rc->relation_name != NULL && strcmp(rc->relation_name, EltRelDisplayName(relation)) == 0)
		return true;
	if (!OidIsValid(EltCatalogRelid("schema_versions")))
		return false;
	if (SPI_execute_with_args("SELECT FROM elt.tracked_tables t JOIN elt.schema_versions v USING (table_id)"
							  " WHERE t.relid OPERATOR(pg_catalog.=) $1 AND v.relid OPERATOR(pg_catalog.=) $2 LIMIT 1",
							  2, (Oid[]) {OIDOID, OIDOID},
							  (Datum[]) {ObjectIdGetDatum(relation), ObjectIdGetDatum(rc->relation)},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read elt.schema_versions");
	return SPI_processed > 0;
}

/*
 * Whether owner, the regrole elt.check_defs has for a check, is the role
 * the audit log recorded: the same oid, or (a restore into another
 * cluster, which resolves roles by name) the same name as the role of the
 * check_create row.
 */
static bool
check_same_owner(ReplayCheck *rc, Oid owner)
{
	char	   *name;

	if (rc->owner == owner)
		return true;
	name = GetUserNameFromId(owner, true);
	return name != NULL && rc->owner_name != NULL && strcmp(name, rc->owner_name) == 0;
}

/*
 * Compare the replayed checks with the rows of elt.check_defs in
 * SPI_tuptable (ordered by check_id): every check there was declared (and
 * not dropped) according to the audit log, with the name, relation, kind,
 * arguments, severity and owner it says; every check the log leaves behind
 * is there.  Relation, owner and search_path are compared for checks
 * declared from 0.7.0 on (a relation also for checks moved since); a
 * relation and an owner that a restore resolved to new oids are the same
 * (check_same_relation, check_same_owner).
 * Returns the first difference, or NULL.
 */
static char *
checks_compare_rows(HTAB *checks)
{
	SPITupleTable *tt = SPI_tuptable;
	uint64		n = SPI_processed;
	uint64		i;
	ReplayCheck *rc;
	ReplayCheck *missing = NULL;

	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		TupleDesc	desc = tt->tupdesc;
		bool		isnull;
		int64		check_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *name = SPI_getvalue(tup, desc, 2);
		Oid			relation = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		char	   *kind = SPI_getvalue(tup, desc, 4);
		char	   *args = SPI_getvalue(tup, desc, 5);
		char	   *severity = SPI_getvalue(tup, desc, 6);
		Oid			owner = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
		char	   *search_path = SPI_getvalue(tup, desc, 8);
		char	   *rel = EltRelDisplayName(relation);
		char	   *what = psprintf("check \"%s\" (check_id %lld) on %s",
									name, (long long) check_id, rel);

		rc = hash_search(checks, &check_id, HASH_FIND, NULL);
		if (rc == NULL)
			return psprintf("elt.check_defs has %s, which no check_create in the audit log accounts for",
							what);
		rc->seen = true;
		if (strcmp(rc->name, name) != 0)
			return EltVerifyDiffers("elt.check_defs", "name", EltVerifyQuoted(name), psprintf("check_id %lld on %s", (long long) check_id, rel),
						   EltVerifyQuoted(rc->name));
		if (rc->has_relation && !check_same_relation(rc, relation))
			return psprintf("elt.check_defs has %s, but the audit log says it is on %s",
							what, replay_check_relation(rc));
		if (strcmp(rc->kind, kind) != 0)
			return EltVerifyDiffers("elt.check_defs", "kind", kind, what, rc->kind);
		if (strcmp(rc->args, args) != 0)
			return EltVerifyDiffers("elt.check_defs", "args", args, what, rc->args);
		if (strcmp(rc->severity, severity) != 0)
			return EltVerifyDiffers("elt.check_defs", "severity", severity, what, rc->severity);
		if (rc->has_owner && !check_same_owner(rc, owner))
			return EltVerifyDiffers("elt.check_defs", "owner", role_display(owner), what, role_display(rc->owner));
		/* the names in its SQL resolve with it: a changed one could make it call other functions */
		if (rc->has_search_path && (search_path == NULL || strcmp(rc->search_path, search_path) != 0))
			return EltVerifyDiffers("elt.check_defs", "search_path", search_path ? quote_literal_cstr(search_path) : "NULL", what,
						   quote_literal_cstr(rc->search_path));
	}
	/* the first check, by check_id, that the log has and the table does not */
	missing = first_unseen(checks, offsetof(ReplayCheck, seen));
	if (missing != NULL)
		return psprintf("the audit log says check \"%s\" (check_id %lld) on %s exists (declared in row %lld), but elt.check_defs has no such check",
						missing->name, (long long) missing->check_id,
						replay_check_relation(missing), (long long) missing->audit_id);
	return NULL;
}

/*
 * Whether the caller of audit_verify may read what it compares in full
 * (elt_reader, superusers): the chain is read as the extension's owner for
 * every role, so values of tables that PUBLIC may not read (a check's
 * arguments, a run's error) are named in a difference only for them.
 */
bool		EltVerifyReveals = false;

/*
 * Compare the replayed checks with elt.check_defs, read as the extension's
 * owner (with search_path pinned, as a catalog write does); a caller that
 * may not read it learns that the table differs from the log, not which
 * check.  Returns the first difference, in memory context cxt, or NULL.
 */
static char *
checks_compare(HTAB *checks, MemoryContext cxt)
{
	bool		reveal = EltVerifyReveals;
	EltCatalogWrite cw;
	char	   *detail;

	EltCatalogWriteBegin(&cw);
	if (SPI_execute(psprintf("SELECT check_id, name, relation, kind, args::pg_catalog.text, severity, owner, %s"
							 " FROM elt.check_defs ORDER BY check_id",
							 get_attnum(EltCatalogRelid("check_defs"), "search_path") != InvalidAttrNumber ?
							 "search_path" : "NULL::pg_catalog.text AS search_path"),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read elt.check_defs");
	detail = checks_compare_rows(checks);
	if (detail != NULL && !reveal)
		detail = "elt.check_defs differs from what the check actions in the audit log leave behind; a role that may read elt.check_defs sees which check";
	if (detail != NULL)
		detail = MemoryContextStrdup(cxt, detail);
	EltCatalogWriteEnd(&cw);
	return detail;
}

/* ---------------------------------------------------------------------
 * Approvers, replayed from approver_added and approver_removed
 * ---------------------------------------------------------------------
 */

/* An approver as the audit log describes it. */
typedef struct ReplayApprover
{
	char	   *approver;
	char	   *added_by;		/* the role of the approver_added row */
	bool		has_note;		/* recorded from 0.7.0 on */
	char	   *note;
	bool		seen;
} ReplayApprover;

/* The replayed approver of that name, or NULL. */
static ReplayApprover *
replay_approver_find(List *approvers, const char *approver)
{
	ListCell   *lc;

	foreach(lc, approvers)
	{
		ReplayApprover *ra = (ReplayApprover *) lfirst(lc);

		if (strcmp(ra->approver, approver) == 0)
			return ra;
	}
	return NULL;
}

/*
 * Apply approver_added or approver_removed to the replayed approvers.
 * Returns false when the action does not carry what a replay needs.
 */
static bool
replay_approver(List **approvers, const char *action, const char *role, Jsonb *details)
{
	char	   *approver = EltJsonbTextMember(details, "approver");
	ReplayApprover *ra;

	if (approver == NULL)
		return false;
	ra = replay_approver_find(*approvers, approver);
	if (strcmp(action, "approver_removed") == 0)
	{
		if (ra != NULL)
			*approvers = list_delete_ptr(*approvers, ra);
		return true;
	}
	if (ra == NULL)
	{
		ra = palloc0(sizeof(ReplayApprover));
		ra->approver = approver;
		*approvers = lappend(*approvers, ra);
	}
	ra->added_by = pstrdup(role);
	ra->note = EltJsonbMemberAsText(details, "note", &ra->has_note);
	return true;
}

/*
 * Compare the replayed approvers with elt.approvers: the same names, each
 * added by the role the log says, with the note it says (recorded from
 * 0.7.0 on).  Returns the first difference, or NULL.
 */
static char *
approvers_compare(List *approvers)
{
	uint64		i;
	uint64		n;
	SPITupleTable *tt;
	ListCell   *lc;

	if (SPI_execute("SELECT approver, added_by::text AS added_by, note"
					" FROM elt.approvers ORDER BY approver", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read elt.approvers");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		char	   *approver = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		char	   *added_by = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
		char	   *note = SPI_getvalue(tt->vals[i], tt->tupdesc, 3);
		ReplayApprover *ra = replay_approver_find(approvers, approver);

		if (ra == NULL)
			return psprintf("elt.approvers lists \"%s\", which no approver_added in the audit log accounts for",
							approver);
		ra->seen = true;
		if (strcmp(ra->added_by, added_by) != 0)
			return EltVerifyDiffers("elt.approvers", "added_by", added_by, psprintf("approver \"%s\"", approver), ra->added_by);
		if (ra->has_note && EltVerifyTextDiffers(note, ra->note))
			return EltVerifyDiffers("elt.approvers", "note", EltVerifyQuoted(note), psprintf("approver \"%s\"", approver), EltVerifyQuoted(ra->note));
	}
	foreach(lc, approvers)
	{
		ReplayApprover *ra = (ReplayApprover *) lfirst(lc);

		if (!ra->seen)
			return psprintf("the audit log says \"%s\" is an approver, but elt.approvers does not list it",
							ra->approver);
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * Migration windows and approvals, replayed from migration_approved,
 * migration_begun and migration_ended
 * ---------------------------------------------------------------------
 */

/* A migration window as the audit log describes it. */
typedef struct ReplayMigration
{
	int64		migration_id;	/* hash key */
	char	   *name;
	char	   *reason;
	char	   *approved_by;
	char	   *role;
	char	   *opened_by;		/* recorded from 0.7.0 on, else NULL */
	bool		ended;
	int64		audit_id;		/* the migration_begun row */
	bool		seen;			/* found in elt.migration_windows */
} ReplayMigration;

/* An approval of a migration as the audit log describes it. */
typedef struct ReplayApproval
{
	int64		approval_id;	/* hash key */
	char	   *name;
	char	   *approver;
	char	   *requested_by;	/* NULL when not recorded */
	int64		migration_id;	/* the window it opened, or 0 */
	int64		audit_id;		/* the migration_approved row */
	bool		seen;			/* found in elt.migration_approvals */
} ReplayApproval;

/*
 * Apply migration_approved, migration_begun or migration_ended (row id) to
 * the replayed windows and approvals.  Returns false when the action does
 * not carry what a replay needs.
 */
static bool
replay_migration(HTAB *migrations, HTAB *approvals, int64 id, const char *action,
				 const char *object, const char *role, const char *reason, Jsonb *details)
{
	int64		key;
	bool		found;

	if (strcmp(action, "migration_approved") == 0)
	{
		ReplayApproval *ra;

		if (!jsonb_int_member(details, "approval_id", &key) || object == NULL)
			return false;
		ra = hash_search(approvals, &key, HASH_ENTER, &found);
		ra->name = pstrdup(object);
		ra->approver = EltJsonbTextMember(details, "approver");
		ra->requested_by = EltJsonbTextMember(details, "requested_by");
		ra->migration_id = 0;
		ra->audit_id = id;
		ra->seen = false;
		return ra->approver != NULL;
	}
	if (!jsonb_int_member(details, "migration_id", &key))
		return false;
	if (strcmp(action, "migration_ended") == 0)
	{
		ReplayMigration *rm = hash_search(migrations, &key, HASH_FIND, NULL);

		if (rm != NULL)
			rm->ended = true;
		return true;
	}
	/* migration_begun */
	{
		ReplayMigration *rm = hash_search(migrations, &key, HASH_ENTER, &found);
		int64		approval_id;

		rm->name = EltJsonbTextMember(details, "name");
		rm->approved_by = EltJsonbTextMember(details, "approved_by");
		rm->reason = reason ? pstrdup(reason) : NULL;
		rm->role = pstrdup(role);
		rm->opened_by = EltJsonbTextMember(details, "opened_by");
		rm->ended = false;
		rm->audit_id = id;
		rm->seen = false;
		if (jsonb_int_member(details, "approval_id", &approval_id))
		{
			ReplayApproval *ra = hash_search(approvals, &approval_id, HASH_FIND, NULL);

			if (ra != NULL)
				ra->migration_id = key;
		}
		/* approved_by is absent for a named window that approves nothing */
		return rm->name != NULL;
	}
}

/*
 * Compare the replayed migration windows with elt.migration_windows: every
 * window there was begun according to the audit log, with the name,
 * reason, approver and role it says (and the session user, from 0.7.0 on),
 * closed exactly when the log says it was ended; every window the log has
 * is there.  A window whose session ended without elt.migration_end() stays
 * unclosed in both.  Returns the first difference, or NULL.
 */
static char *
migrations_compare(HTAB *migrations)
{
	uint64		i;
	uint64		n;
	SPITupleTable *tt;
	ReplayMigration *rm;
	ReplayMigration *missing = NULL;

	if (SPI_execute("SELECT migration_id, name, reason, approved_by, opened_by::pg_catalog.text,"
					" role::pg_catalog.text, closed_at IS NOT NULL"
					" FROM elt.migration_windows ORDER BY migration_id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read elt.migration_windows");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		TupleDesc	desc = tt->tupdesc;
		bool		isnull;
		int64		migration_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *name = SPI_getvalue(tup, desc, 2);
		char	   *reason = SPI_getvalue(tup, desc, 3);
		char	   *approved_by = SPI_getvalue(tup, desc, 4);
		char	   *opened_by = SPI_getvalue(tup, desc, 5);
		char	   *role = SPI_getvalue(tup, desc, 6);
		bool		closed = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		char	   *what = psprintf("migration %lld (%s)", (long long) migration_id, EltVerifyQuoted(name));

		rm = hash_search(migrations, &migration_id, HASH_FIND, NULL);
		if (rm == NULL)
			return psprintf("elt.migration_windows has %s, which no migration_begun in the audit log accounts for",
							what);
		rm->seen = true;
		if (strcmp(rm->name, name) != 0)
			return EltVerifyDiffers("elt.migration_windows", "name", EltVerifyQuoted(name), psprintf("migration %lld", (long long) migration_id),
						   EltVerifyQuoted(rm->name));
		if (EltVerifyTextDiffers(reason, rm->reason))
			return EltVerifyDiffers("elt.migration_windows", "reason", EltVerifyQuoted(reason), what, EltVerifyQuoted(rm->reason));
		if (EltVerifyTextDiffers(rm->approved_by, approved_by))
			return EltVerifyDiffers("elt.migration_windows", "approved_by", EltVerifyQuoted(approved_by), what, EltVerifyQuoted(rm->approved_by));
		if (strcmp(rm->role, role) != 0)
			return EltVerifyDiffers("elt.migration_windows", "role", role, what, rm->role);
		if (rm->opened_by != NULL && strcmp(rm->opened_by, opened_by) != 0)
			return EltVerifyDiffers("elt.migration_windows", "opened_by", opened_by, what, rm->opened_by);
		if (closed != rm->ended)
			return closed ?
				psprintf("elt.migration_windows has %s closed, but the audit log says it was never ended", what) :
				psprintf("elt.migration_windows has %s open, but the audit log says it was ended", what);
	}
	missing = first_unseen(migrations, offsetof(ReplayMigration, seen));
	if (missing != NULL)
		return psprintf("the audit log says migration %lld (%s) was begun (row %lld), but elt.migration_windows has no such migration",
						(long long) missing->migration_id, EltVerifyQuoted(missing->name),
						(long long) missing->audit_id);
	return NULL;
}

/*
 * Compare the replayed approvals with elt.migration_approvals: every
 * approval there was given according to the audit log, by the approver,
 * for the migration name and session user it says, and used by the window
 * it says (or by none); every approval the log has is there.  Returns the
 * first difference, or NULL.
 */
static char *
approvals_compare(HTAB *approvals)
{
	uint64		i;
	uint64		n;
	SPITupleTable *tt;
	ReplayApproval *ra;
	ReplayApproval *missing = NULL;

	if (SPI_execute("SELECT approval_id, name, approver, requested_by, migration_id"
					" FROM elt.migration_approvals ORDER BY approval_id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read elt.migration_approvals");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		TupleDesc	desc = tt->tupdesc;
		bool		isnull;
		int64		approval_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *name = SPI_getvalue(tup, desc, 2);
		char	   *approver = SPI_getvalue(tup, desc, 3);
		char	   *requested_by = SPI_getvalue(tup, desc, 4);
		char	   *used_by = SPI_getvalue(tup, desc, 5);
		char	   *said_used_by;
		char	   *what = psprintf("approval %lld of migration %s", (long long) approval_id, EltVerifyQuoted(name));

		ra = hash_search(approvals, &approval_id, HASH_FIND, NULL);
		if (ra == NULL)
			return psprintf("elt.migration_approvals has %s, which no migration_approved in the audit log accounts for",
							what);
		ra->seen = true;
		if (strcmp(ra->name, name) != 0)
			return EltVerifyDiffers("elt.migration_approvals", "migration", EltVerifyQuoted(name), psprintf("approval %lld", (long long) approval_id),
						   EltVerifyQuoted(ra->name));
		if (strcmp(ra->approver, approver) != 0)
			return EltVerifyDiffers("elt.migration_approvals", "approver", EltVerifyQuoted(approver), what, EltVerifyQuoted(ra->approver));
		if (ra->requested_by != NULL && strcmp(ra->requested_by, requested_by) != 0)
			return EltVerifyDiffers("elt.migration_approvals", "requested_by", EltVerifyQuoted(requested_by), what, EltVerifyQuoted(ra->requested_by));
		said_used_by = ra->migration_id > 0 ? psprintf("%lld", (long long) ra->migration_id) : NULL;
		if (EltVerifyTextDiffers(used_by, said_used_by))
			return EltVerifyDiffers("elt.migration_approvals", "migration_id", EltVerifyShown(used_by), what, EltVerifyShown(said_used_by));
	}
	missing = first_unseen(approvals, offsetof(ReplayApproval, seen));
	if (missing != NULL)
		return psprintf("the audit log says approval %lld of migration %s was given (row %lld), but elt.migration_approvals has no such approval",
						(long long) missing->approval_id, EltVerifyQuoted(missing->name),
						(long long) missing->audit_id);
	return NULL;
}

/* ---------------------------------------------------------------------
 * The replays together, as elt.audit_verify drives them
 * ---------------------------------------------------------------------
 */

/* An empty hash table of replayed rows keyed by an int64 id, in memory context cxt. */
static HTAB *
replay_hash_create(const char *name, Size entrysize, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = entrysize;
	ctl.hcxt = cxt;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Start the replays of what this catalog has, in memory context cxt. */
void
EltReplayInit(Replay *rp, MemoryContext cxt)
{
	memset(rp, 0, sizeof(Replay));
	rp->targets_ok = true;
	if (OidIsValid(EltCatalogRelid("check_defs")))
		rp->checks = replay_hash_create("elt audit_verify checks", sizeof(ReplayCheck), cxt);
	rp->checks_ok = true;
	rp->has_contracts = OidIsValid(EltCatalogRelid("approvers"));
	rp->approvers_ok = true;
	if (rp->has_contracts)
	{
		rp->migrations = replay_hash_create("elt audit_verify migrations", sizeof(ReplayMigration), cxt);
		rp->approvals = replay_hash_create("elt audit_verify approvals", sizeof(ReplayApproval), cxt);
	}
	rp->migrations_ok = true;
}

/* Feed one audit row (id) to the replays it concerns; in memory context cxt. */
void
EltReplayRow(Replay *rp, MemoryContext cxt, int64 id, const char *action, const char *object,
		   const char *role, const char *reason, Datum details)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	if (strcmp(action, "govern") == 0 || strcmp(action, "ungovern") == 0 ||
		strcmp(action, "policy_changed") == 0 || strcmp(action, "target_renamed") == 0)
	{
		if (rp->targets_ok)
			rp->targets_ok = replay_action(&rp->targets, action, DatumGetJsonbPCopy(details));
	}
	else if (strcmp(action, "check_create") == 0 || strcmp(action, "check_moved") == 0 ||
			 strcmp(action, "check_drop") == 0)
	{
		if (rp->checks != NULL && rp->checks_ok)
			rp->checks_ok = replay_check(rp->checks, id, action, object, role, DatumGetJsonbPCopy(details));
	}
	else if (strcmp(action, "approver_added") == 0 || strcmp(action, "approver_removed") == 0)
	{
		if (rp->has_contracts && rp->approvers_ok)
			rp->approvers_ok = replay_approver(&rp->approvers, action, role, DatumGetJsonbPCopy(details));
	}
	else if (strcmp(action, "migration_approved") == 0 || strcmp(action, "migration_begun") == 0 ||
			 strcmp(action, "migration_ended") == 0)
	{
		if (rp->has_contracts && rp->migrations_ok)
			rp->migrations_ok = replay_migration(rp->migrations, rp->approvals, id, action, object,
												 role, reason, DatumGetJsonbPCopy(details));
	}
	MemoryContextSwitchTo(old);
}

/*
 * Compare what the replays leave behind with the tables.  Returns the
 * first difference, in memory context cxt, or NULL.
 */
char *
EltReplayCompareAll(Replay *rp, MemoryContext cxt)
{
	char	   *detail = NULL;

	if (rp->targets_ok)
		detail = replay_compare(rp->targets);
	if (detail == NULL && rp->checks != NULL && rp->checks_ok)
		detail = checks_compare(rp->checks, cxt);
	if (detail == NULL && rp->has_contracts && rp->approvers_ok)
		detail = approvers_compare(rp->approvers);
	if (detail == NULL && rp->has_contracts && rp->migrations_ok)
		detail = migrations_compare(rp->migrations);
	if (detail == NULL && rp->has_contracts && rp->migrations_ok)
		detail = approvals_compare(rp->approvals);
	return detail ? MemoryContextStrdup(cxt, detail) : NULL;
}

