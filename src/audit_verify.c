/*
 * audit_verify.c — elt.audit_verify(): the check that the audit chain holds,
 * and that the catalog tables it vouches for say what it says.
 *
 * Owns: walking the chain (ids, links, row hashes), the digest check, and
 * the cross-checks of catalog tables against the chain:
 *  - append-only tables, joined row by row to the audit row that recorded
 *    each of their rows: elt.schema_versions (version_hash),
 *    elt.transform_runs (run_hash from 0.7.0 on, the fields the details
 *    carry before) and elt.transform_code (code_hash, which is also
 *    recomputed from the SQL);
 *  - tables the extension updates, whose content the actions recorded in the
 *    chain determine, replayed in memory and compared at the end:
 *    elt.governed_targets, elt.check_defs, elt.approvers,
 *    elt.migration_windows and elt.migration_approvals.
 * Any role may verify: everything is read as the extension's owner, and
 * values of tables that PUBLIC may not read (a check's arguments, a run's
 * error) are named in a difference only to elt_reader and superusers.
 * What is not covered is listed in the README ("What audit_verify covers").
 *
 * Transactions and locking: read-only.  The chain and the append-only
 * tables are read by one statement, streamed through a cursor; the replayed
 * tables afterwards, each by one statement.  Every statement runs read-only,
 * with the calling statement's snapshot, so all see the same committed
 * state.  Only AccessShareLock is taken: a verification never waits for
 * appenders and never holds them up.  Tables that an older catalog does not
 * have yet (audit_verify runs on every catalog from 0.1.0 on) are left out.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "audit.h"
#include "roles.h"
#include "transform.h"

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
static char *
differs(const char *table, const char *field, const char *value, const char *what, const char *said)
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
static char *
jsonb_text_member(Jsonb *jb, const char *key)
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
	char	   *kind = jsonb_text_member(details, "kind");
	bool		is_schema;
	char	   *schema = NULL;
	int64		table_id = 0;
	ReplayTarget *rt;

	if (kind == NULL)
		return false;
	is_schema = strcmp(kind, "schema") == 0;
	if (strcmp(action, "target_renamed") == 0)
	{
		char	   *from = jsonb_text_member(details, "from");
		char	   *to = jsonb_text_member(details, "to");

		if (!is_schema || from == NULL || to == NULL)
			return false;
		rt = replay_find(*targets, true, from, 0);
		if (rt)
			rt->schema = to;
		return true;
	}
	if (is_schema ? (schema = jsonb_text_member(details, "schema")) == NULL :
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
	rt->policy = jsonb_text_member(details, strcmp(action, "govern") == 0 ? "policy" : "to");
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
			return differs("elt.governed_targets", "policy", policy, what, rt->policy);
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
static char *
jsonb_member_as_text(Jsonb *jb, const char *key, bool *present)
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
static bool
text_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a == NULL) != (b == NULL);
	return strcmp(a, b) != 0;
}

/* A value for a message. */
static const char *
shown(const char *value)
{
	return value ? value : "NULL";
}

/* Free text for a message: in double quotes, or NULL. */
static char *
quoted(const char *value)
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
	bool		has_owner;		/* recorded from 0.7.0 on */
	Oid			owner;
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
replay_check(HTAB *checks, int64 id, const char *action, const char *object, Jsonb *details)
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
		rc->name = jsonb_text_member(details, "name");
		rc->kind = jsonb_text_member(details, "kind");
		rc->severity = jsonb_text_member(details, "severity");
		rc->args = jsonb_member_as_text(details, "args", &present);
		rc->object = pstrdup(object);
		rc->has_relation = jsonb_int_member(details, "relation", &oid);
		rc->relation = (Oid) oid;
		rc->has_owner = jsonb_int_member(details, "owner", &oid);
		rc->owner = (Oid) oid;
		rc->search_path = jsonb_text_member(details, "search_path");
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
		char	   *name = jsonb_text_member(details, "name");

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
 * Compare the replayed checks with the rows of elt.check_defs in
 * SPI_tuptable (ordered by check_id): every check there was declared (and
 * not dropped) according to the audit log, with the name, relation, kind,
 * arguments, severity and owner it says; every check the log leaves behind
 * is there.  Relation, owner and search_path are compared for checks
 * declared from 0.7.0 on (a relation also for checks moved since).
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
			return differs("elt.check_defs", "name", quoted(name), psprintf("check_id %lld on %s", (long long) check_id, rel),
						   quoted(rc->name));
		if (rc->has_relation && rc->relation != relation)
			return psprintf("elt.check_defs has %s, but the audit log says it is on %s",
							what, replay_check_relation(rc));
		if (strcmp(rc->kind, kind) != 0)
			return differs("elt.check_defs", "kind", kind, what, rc->kind);
		if (strcmp(rc->args, args) != 0)
			return differs("elt.check_defs", "args", args, what, rc->args);
		if (strcmp(rc->severity, severity) != 0)
			return differs("elt.check_defs", "severity", severity, what, rc->severity);
		if (rc->has_owner && rc->owner != owner)
			return differs("elt.check_defs", "owner", role_display(owner), what, role_display(rc->owner));
		/* the names in its SQL resolve with it: a changed one could make it call other functions */
		if (rc->has_search_path && (search_path == NULL || strcmp(rc->search_path, search_path) != 0))
			return differs("elt.check_defs", "search_path", search_path ? quote_literal_cstr(search_path) : "NULL", what,
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
static bool verify_reveals = false;

/*
 * Compare the replayed checks with elt.check_defs, read as the extension's
 * owner (with search_path pinned, as a catalog write does); a caller that
 * may not read it learns that the table differs from the log, not which
 * check.  Returns the first difference, in memory context cxt, or NULL.
 */
static char *
checks_compare(HTAB *checks, MemoryContext cxt)
{
	bool		reveal = verify_reveals;
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
	char	   *approver = jsonb_text_member(details, "approver");
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
	ra->note = jsonb_member_as_text(details, "note", &ra->has_note);
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
			return differs("elt.approvers", "added_by", added_by, psprintf("approver \"%s\"", approver), ra->added_by);
		if (ra->has_note && text_differs(note, ra->note))
			return differs("elt.approvers", "note", quoted(note), psprintf("approver \"%s\"", approver), quoted(ra->note));
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
		ra->approver = jsonb_text_member(details, "approver");
		ra->requested_by = jsonb_text_member(details, "requested_by");
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

		rm->name = jsonb_text_member(details, "name");
		rm->approved_by = jsonb_text_member(details, "approved_by");
		rm->reason = reason ? pstrdup(reason) : NULL;
		rm->role = pstrdup(role);
		rm->opened_by = jsonb_text_member(details, "opened_by");
		rm->ended = false;
		rm->audit_id = id;
		rm->seen = false;
		if (jsonb_int_member(details, "approval_id", &approval_id))
		{
			ReplayApproval *ra = hash_search(approvals, &approval_id, HASH_FIND, NULL);

			if (ra != NULL)
				ra->migration_id = key;
		}
		return rm->name != NULL && rm->approved_by != NULL;
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
		char	   *what = psprintf("migration %lld (%s)", (long long) migration_id, quoted(name));

		rm = hash_search(migrations, &migration_id, HASH_FIND, NULL);
		if (rm == NULL)
			return psprintf("elt.migration_windows has %s, which no migration_begun in the audit log accounts for",
							what);
		rm->seen = true;
		if (strcmp(rm->name, name) != 0)
			return differs("elt.migration_windows", "name", quoted(name), psprintf("migration %lld", (long long) migration_id),
						   quoted(rm->name));
		if (text_differs(reason, rm->reason))
			return differs("elt.migration_windows", "reason", quoted(reason), what, quoted(rm->reason));
		if (strcmp(rm->approved_by, approved_by) != 0)
			return differs("elt.migration_windows", "approved_by", quoted(approved_by), what, quoted(rm->approved_by));
		if (strcmp(rm->role, role) != 0)
			return differs("elt.migration_windows", "role", role, what, rm->role);
		if (rm->opened_by != NULL && strcmp(rm->opened_by, opened_by) != 0)
			return differs("elt.migration_windows", "opened_by", opened_by, what, rm->opened_by);
		if (closed != rm->ended)
			return closed ?
				psprintf("elt.migration_windows has %s closed, but the audit log says it was never ended", what) :
				psprintf("elt.migration_windows has %s open, but the audit log says it was ended", what);
	}
	missing = first_unseen(migrations, offsetof(ReplayMigration, seen));
	if (missing != NULL)
		return psprintf("the audit log says migration %lld (%s) was begun (row %lld), but elt.migration_windows has no such migration",
						(long long) missing->migration_id, quoted(missing->name),
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
		char	   *what = psprintf("approval %lld of migration %s", (long long) approval_id, quoted(name));

		ra = hash_search(approvals, &approval_id, HASH_FIND, NULL);
		if (ra == NULL)
			return psprintf("elt.migration_approvals has %s, which no migration_approved in the audit log accounts for",
							what);
		ra->seen = true;
		if (strcmp(ra->name, name) != 0)
			return differs("elt.migration_approvals", "migration", quoted(name), psprintf("approval %lld", (long long) approval_id),
						   quoted(ra->name));
		if (strcmp(ra->approver, approver) != 0)
			return differs("elt.migration_approvals", "approver", quoted(approver), what, quoted(ra->approver));
		if (ra->requested_by != NULL && strcmp(ra->requested_by, requested_by) != 0)
			return differs("elt.migration_approvals", "requested_by", quoted(requested_by), what, quoted(ra->requested_by));
		said_used_by = ra->migration_id > 0 ? psprintf("%lld", (long long) ra->migration_id) : NULL;
		if (text_differs(used_by, said_used_by))
			return differs("elt.migration_approvals", "migration_id", shown(used_by), what, shown(said_used_by));
	}
	missing = first_unseen(approvals, offsetof(ReplayApproval, seen));
	if (missing != NULL)
		return psprintf("the audit log says approval %lld of migration %s was given (row %lld), but elt.migration_approvals has no such approval",
						(long long) missing->approval_id, quoted(missing->name),
						(long long) missing->audit_id);
	return NULL;
}

/* ---------------------------------------------------------------------
 * elt.audit_verify
 * ---------------------------------------------------------------------
 */

/* The replays of one verification: what the audit log says the tables hold. */
typedef struct Replay
{
	List	   *targets;
	bool		targets_ok;		/* false: an action could not be replayed */
	HTAB	   *checks;			/* NULL: no elt.check_defs in this catalog */
	bool		checks_ok;
	bool		has_contracts;	/* approvers and migrations are in this catalog */
	List	   *approvers;
	bool		approvers_ok;
	HTAB	   *migrations;
	HTAB	   *approvals;
	bool		migrations_ok;
} Replay;

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
static void
replay_init(Replay *rp, MemoryContext cxt)
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
static void
replay_row(Replay *rp, MemoryContext cxt, int64 id, const char *action, const char *object,
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
			rp->checks_ok = replay_check(rp->checks, id, action, object, DatumGetJsonbPCopy(details));
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
static char *
replay_compare_all(Replay *rp, MemoryContext cxt)
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

/* ---------------------------------------------------------------------
 * The chain, joined to the append-only tables whose rows it recorded
 * ---------------------------------------------------------------------
 */

/* The columns of the chain query that audit_verify reads by name. */
typedef enum ChainCol
{
	COL_ID,
	COL_ROLE,
	COL_ACTION,
	COL_OBJECT,
	COL_REASON,
	COL_DETAILS,
	COL_PREV_HASH,
	COL_ROW_HASH,
	COL_REF_TABLE,
	COL_REF_HASH,
	COL_V_TABLE_ID,
	COL_V_VERSION,
	COL_V_SCHEMA_NAME,
	COL_V_TABLE_NAME,
	COL_REF_RUN,
	COL_R_RUN_ID,
	COL_R_TRANSFORM_ID,
	COL_R_VERSION,
	COL_R_CODE_HASH,
	COL_R_STATUS,
	COL_R_LINEAGE,
	COL_R_ROWS_WRITTEN,
	COL_R_ERROR,
	COL_R_ROLE,
	COL_REF_TRANSFORM,
	COL_REF_CODE_VERSION,
	COL_C_TRANSFORM_ID,
	COL_C_VERSION,
	COL_C_SQL,
	COL_C_CODE_HASH,
	COL_C_LINEAGE_LEVEL,
	NUM_CHAIN_COLS
} ChainCol;

static const char *const chain_col_names[NUM_CHAIN_COLS] = {
	"id", "role", "action", "object", "reason", "details", "prev_hash", "row_hash",
	"ref_table", "ref_hash", "v_table_id", "v_version", "v_schema_name", "v_table_name",
	"ref_run", "r_run_id", "r_transform_id", "r_version", "r_code_hash", "r_status",
	"r_lineage", "r_rows_written", "r_error", "r_role",
	"ref_transform", "ref_code_version", "c_transform_id", "c_version", "c_sql",
	"c_code_hash", "c_lineage_level"
};

/*
 * A column of the chain query: the integer member key of the details of an
 * audit row whose action is one of actions, else NULL (NULL too when it is
 * not a plain integer: such a row fails its row_hash check first).
 */
static void
ref_column(StringInfo q, const char *actions, const char *key, const char *type, const char *name)
{
	appendStringInfo(q,
					 ", CASE WHEN a.action IN (%s) AND (a.details->>'%s') ~ '^[0-9]{1,%d}$'"
					 " THEN (a.details->>'%s')::%s END AS %s",
					 actions, key, strcmp(type, "int") == 0 ? 9 : 18, key, type, name);
}

/*
 * The statement that reads the chain in id order, each audit row joined to
 * the row it recorded in an append-only table — version_recorded to its
 * schema version, transform_run to its run, transform_create and
 * transform_update to their code version — followed by the rows of those
 * tables that no audit row accounts for.  Tables this catalog does not
 * have yet are left out.
 */
static char *
chain_query(bool has_runs, bool has_code)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoString(&q, "WITH a AS (SELECT a.*");
	ref_column(&q, "'version_recorded'", "table_id", "bigint", "ref_table");
	ref_column(&q, "'version_recorded'", "version", "int", "ref_version");
	if (has_runs)
		ref_column(&q, "'transform_run'", "run_id", "bigint", "ref_run");
	if (has_code)
	{
		ref_column(&q, "'transform_create', 'transform_update'", "transform_id", "bigint", "ref_transform");
		ref_column(&q, "'transform_create', 'transform_update'", "version", "int", "ref_code_version");
	}
	appendStringInfoString(&q,
						   "  FROM elt.audit_log a)"
						   " SELECT a.id, a.logged_at, a.role, a.session_role, a.action,"
						   "        a.object, a.details, a.reason, a.prev_hash, a.row_hash,"
						   "        a.ref_table, a.details->>'version_hash' AS ref_hash,"
						   "        v.table_id AS v_table_id, v.version AS v_version,"
						   "        v.relid AS v_relid, v.schema_name AS v_schema_name,"
						   "        v.table_name AS v_table_name, v.event AS v_event,"
						   "        v.shape AS v_shape, v.statement AS v_statement,"
						   "        v.command_tag AS v_command_tag, v.role AS v_role,"
						   "        v.xid AS v_xid, v.recorded_at AS v_recorded_at,"
						   "        v.migration_id AS v_migration_id");
	if (has_runs)
		appendStringInfoString(&q,
							   ", a.ref_run, r.run_id AS r_run_id, r.transform_id AS r_transform_id,"
							   "  r.version AS r_version, r.code_hash AS r_code_hash, r.params AS r_params,"
							   "  r.lineage AS r_lineage, r.status AS r_status, r.started_at AS r_started_at,"
							   "  r.finished_at AS r_finished_at, r.rows_read AS r_rows_read,"
							   "  r.rows_written AS r_rows_written, r.rows_deleted AS r_rows_deleted,"
							   "  r.role AS r_role, r.error AS r_error, r.random_seed AS r_random_seed");
	if (has_code)
		appendStringInfoString(&q,
							   ", a.ref_transform, a.ref_code_version,"
							   "  c.transform_id AS c_transform_id, c.version AS c_version,"
							   "  c.sql AS c_sql, c.code_hash AS c_code_hash, c.lineage_level AS c_lineage_level");
	appendStringInfoString(&q,
						   " FROM a FULL JOIN elt.schema_versions v"
						   "   ON v.table_id = a.ref_table AND v.version = a.ref_version");
	if (has_runs)
		appendStringInfoString(&q, " FULL JOIN elt.transform_runs r ON r.run_id = a.ref_run");
	if (has_code)
		appendStringInfoString(&q,
							   " FULL JOIN elt.transform_code c"
							   "   ON c.transform_id = a.ref_transform AND c.version = a.ref_code_version");
	appendStringInfoString(&q, " ORDER BY a.id NULLS LAST, v.table_id, v.version");
	if (has_runs)
		appendStringInfoString(&q, ", r.run_id");
	if (has_code)
		appendStringInfoString(&q, ", c.transform_id, c.version");
	return q.data;
}

/* Where a verification stands, and the row of the chain query it is at. */
typedef struct Verify
{
	MemoryContext outer;		/* outlives SPI: the replays, the result */
	bool		has_runs;
	bool		has_code;
	int64		checked;
	int64		expected_id;
	char		expected_prev[ELT_SHA256_HEX_LEN + 1];
	int64		digest_id;		/* 0: no digest, or that of an empty chain */
	char	   *digest_hash;
	bool		digest_seen;
	Replay		rp;
	/* the chain query's columns, looked up once (attno 0: not in it) */
	TupleDesc	desc;
	int			attno[NUM_CHAIN_COLS];
	FmgrInfo	output[NUM_CHAIN_COLS];
	int		   *audit_attnos;
	int			n_audit;
	int		   *version_attnos;
	int			n_version;
	int		   *run_attnos;
	int			n_run;
	/* the current row, deformed */
	Datum	   *values;
	bool	   *nulls;
} Verify;

/* Look the chain query's columns up, once, in memory that outlives SPI's. */
static void
verify_columns(Verify *vf, TupleDesc desc)
{
	MemoryContext old = MemoryContextSwitchTo(vf->outer);
	int			c;

	vf->desc = CreateTupleDescCopy(desc);
	for (c = 0; c < NUM_CHAIN_COLS; c++)
	{
		int			attno = SPI_fnumber(desc, chain_col_names[c]);
		Oid			outfunc;
		bool		isvarlena;

		vf->attno[c] = attno > 0 ? attno : 0;
		if (attno <= 0)
			continue;
		getTypeOutputInfo(TupleDescAttr(desc, attno - 1)->atttypid, &outfunc, &isvarlena);
		fmgr_info(outfunc, &vf->output[c]);
	}
	vf->audit_attnos = EltHashedRowAttnos(ELT_HASHED_AUDIT, desc, "", &vf->n_audit);
	vf->version_attnos = EltHashedRowAttnos(ELT_HASHED_VERSION, desc, "v_", &vf->n_version);
	if (vf->has_runs)
		vf->run_attnos = EltHashedRowAttnos(ELT_HASHED_RUN, desc, "r_", &vf->n_run);
	vf->values = palloc(sizeof(Datum) * desc->natts);
	vf->nulls = palloc(sizeof(bool) * desc->natts);
	MemoryContextSwitchTo(old);
}

/* Whether a column of the current row is NULL (or not in the query). */
static bool
col_null(Verify *vf, ChainCol c)
{
	return vf->attno[c] == 0 || vf->nulls[vf->attno[c] - 1];
}

/* A column of the current row as text, or NULL. */
static char *
col_text(Verify *vf, ChainCol c)
{
	if (col_null(vf, c))
		return NULL;
	return OutputFunctionCall(&vf->output[c], vf->values[vf->attno[c] - 1]);
}

/* A column of the current row (not NULL). */
static Datum
col_datum(Verify *vf, ChainCol c)
{
	Assert(!col_null(vf, c));
	return vf->values[vf->attno[c] - 1];
}

/* The fields of a run that a transform_run audit row carries, and their columns. */
static const struct
{
	const char *key;
	ChainCol	column;
	bool		free_text;		/* quoted in messages */
}			run_fields[] =
{
	{"transform_id", COL_R_TRANSFORM_ID, false},
	{"version", COL_R_VERSION, false},
	{"code_hash", COL_R_CODE_HASH, false},
	{"status", COL_R_STATUS, false},
	{"lineage", COL_R_LINEAGE, false},
	{"rows_written", COL_R_ROWS_WRITTEN, false},
	{"error", COL_R_ERROR, true},
};

/*
 * Compare the current row's transform_runs row with the transform_run
 * audit row (id) that recorded it: the fields its details carry (before
 * 0.7.0 a succeeded run carries transform_id, version, code_hash, lineage
 * and rows_written and no status, a failed one version, status and error),
 * the role that ran it, then, from 0.7.0 on, the run_hash of the whole row.
 * Returns the first difference, in words, or NULL.
 */
static char *
run_compare(Verify *vf, int64 id, Jsonb *details)
{
	char	   *run_id = col_text(vf, COL_R_RUN_ID);
	char	   *run_hash;
	char	   *role;
	char	   *has;
	char		computed[ELT_SHA256_HEX_LEN + 1];
	int			i;

	for (i = 0; i < (int) lengthof(run_fields); i++)
	{
		bool		present;
		char	   *said = jsonb_member_as_text(details, run_fields[i].key, &present);

		if (!present && strcmp(run_fields[i].key, "status") == 0)
		{
			/* before 0.7.0 only a failed run said its status */
			said = "succeeded";
			present = true;
		}
		if (!present)
			continue;
		has = col_text(vf, run_fields[i].column);
		if (text_differs(has, said) && run_fields[i].free_text && !verify_reveals)
			return psprintf("elt.transform_runs has another %s for run %s (recorded by row %lld) than the audit log says; "
							"a role that may read elt.transform_runs sees both",
							run_fields[i].key, run_id, (long long) id);
		if (text_differs(has, said))
			return differs("elt.transform_runs", run_fields[i].key, run_fields[i].free_text ? quoted(has) : shown(has),
						   psprintf("run %s (recorded by row %lld)", run_id, (long long) id),
						   run_fields[i].free_text ? quoted(said) : shown(said));
	}
	role = col_text(vf, COL_ROLE);
	has = col_text(vf, COL_R_ROLE);
	if (text_differs(has, role))
		return differs("elt.transform_runs", "role", shown(has), psprintf("run %s (recorded by row %lld)", run_id, (long long) id),
					   shown(role));
	run_hash = jsonb_text_member(details, "run_hash");
	if (run_hash != NULL)
	{
		EltCanonicalValuesHash(vf->values, vf->nulls, vf->desc, vf->run_attnos, vf->n_run, computed);
		if (strcmp(run_hash, computed) != 0)
			return psprintf("run %s in elt.transform_runs (recorded by row %lld) was modified after it was written: it does not match the run_hash in the audit log",
							run_id, (long long) id);
	}
	return NULL;
}

/*
 * Compare the current row's transform_code row with the transform_create
 * or transform_update audit row (id) that recorded it: its code_hash and
 * lineage level, then its SQL with its code_hash (the SHA-256 of the
 * normalized SQL), so that SQL edited behind the extension's back is
 * caught.  Returns the first difference, in words, or NULL.
 */
static char *
code_compare(Verify *vf, int64 id, Jsonb *details)
{
	char	   *what = psprintf("version %s of transform_id %s",
								col_text(vf, COL_C_VERSION), col_text(vf, COL_C_TRANSFORM_ID));
	char	   *hash = col_text(vf, COL_C_CODE_HASH);
	char	   *sql = col_text(vf, COL_C_SQL);
	char	   *has;
	char	   *said;
	char	   *norm;
	bool		present;
	char		computed[ELT_SHA256_HEX_LEN + 1];

	said = jsonb_member_as_text(details, "code_hash", &present);
	if (text_differs(hash, said))
		return differs("elt.transform_code", "code_hash", shown(hash), psprintf("%s (recorded by row %lld)", what, (long long) id),
					   shown(said));
	said = jsonb_member_as_text(details, "lineage", &present);
	has = col_text(vf, COL_C_LINEAGE_LEVEL);
	if (present && text_differs(has, said))
		return differs("elt.transform_code", "lineage_level", shown(has), psprintf("%s (recorded by row %lld)", what, (long long) id),
					   shown(said));
	norm = EltNormalizeSql(sql ? sql : "");
	EltSha256Hex(norm, strlen(norm), computed);
	if (hash == NULL || strcmp(hash, computed) != 0)
		return psprintf("the sql of %s in elt.transform_code (recorded by row %lld) was modified after it was written: it does not match its code_hash",
						what, (long long) id);
	return NULL;
}

/*
 * The current row has no audit row: it is a row of an append-only table
 * that no audit row accounts for, inserted behind the extension's back.
 */
static char *
orphan_detail(Verify *vf)
{
	if (!col_null(vf, COL_V_TABLE_ID))
		return psprintf("schema version %s of %s.%s (table_id %s) has no audit row",
						col_text(vf, COL_V_VERSION), col_text(vf, COL_V_SCHEMA_NAME),
						col_text(vf, COL_V_TABLE_NAME), col_text(vf, COL_V_TABLE_ID));
	if (!col_null(vf, COL_R_RUN_ID))
		return psprintf("transform run %s (transform_id %s, version %s, status %s) has no audit row",
						col_text(vf, COL_R_RUN_ID), col_text(vf, COL_R_TRANSFORM_ID),
						col_text(vf, COL_R_VERSION), col_text(vf, COL_R_STATUS));
	return psprintf("version %s of transform_id %s in elt.transform_code has no audit row",
					col_text(vf, COL_C_VERSION), col_text(vf, COL_C_TRANSFORM_ID));
}

/*
 * The row the current audit row (id) recorded in an append-only table, if
 * any, against what the audit row says of it.  Returns the first
 * difference, in words, or NULL.
 */
static char *
recorded_row_detail(Verify *vf, int64 id)
{
	char		computed[ELT_SHA256_HEX_LEN + 1];

	if (!col_null(vf, COL_REF_TABLE))
	{
		char	   *ref_hash = col_text(vf, COL_REF_HASH);

		if (col_null(vf, COL_V_TABLE_ID))
			return psprintf("the schema version recorded by row %lld was deleted",
							(long long) id);
		EltCanonicalValuesHash(vf->values, vf->nulls, vf->desc, vf->version_attnos,
							   vf->n_version, computed);
		if (ref_hash == NULL || strcmp(ref_hash, computed) != 0)
			return psprintf("the schema version recorded by row %lld was modified after it was written",
							(long long) id);
		return NULL;
	}
	if (!col_null(vf, COL_REF_RUN))
	{
		if (col_null(vf, COL_R_RUN_ID))
			return psprintf("transform run %s recorded by row %lld was deleted from elt.transform_runs",
							col_text(vf, COL_REF_RUN), (long long) id);
		return run_compare(vf, id, DatumGetJsonbP(col_datum(vf, COL_DETAILS)));
	}
	if (!col_null(vf, COL_REF_TRANSFORM))
	{
		if (col_null(vf, COL_C_TRANSFORM_ID))
			return psprintf("version %s of transform_id %s recorded by row %lld was deleted from elt.transform_code",
							shown(col_text(vf, COL_REF_CODE_VERSION)),
							col_text(vf, COL_REF_TRANSFORM), (long long) id);
		return code_compare(vf, id, DatumGetJsonbP(col_datum(vf, COL_DETAILS)));
	}
	return NULL;
}

/*
 * Check one row of the chain query: its place in the chain, its row_hash,
 * the row it recorded in an append-only table, and the digest's head; feed
 * it to the replays.  Returns what is wrong, with *broken_id, or NULL.
 */
static char *
verify_row(Verify *vf, HeapTuple tup, int64 *broken_id)
{
	int64		id;
	char	   *prev_hash;
	char	   *row_hash;
	char	   *detail;
	char		computed[ELT_SHA256_HEX_LEN + 1];

	heap_deform_tuple(tup, vf->desc, vf->values, vf->nulls);
	if (col_null(vf, COL_ID))
		return orphan_detail(vf);
	id = DatumGetInt64(col_datum(vf, COL_ID));
	vf->checked++;
	*broken_id = id;
	if (id != vf->expected_id)
		return psprintf("row %lld follows row %lld: rows are missing from the chain",
						(long long) id, (long long) (vf->expected_id - 1));
	prev_hash = col_text(vf, COL_PREV_HASH);
	row_hash = col_text(vf, COL_ROW_HASH);
	if (prev_hash == NULL || strcmp(prev_hash, vf->expected_prev) != 0)
		return psprintf("prev_hash of row %lld does not match the row_hash of the row before it",
						(long long) id);
	EltCanonicalValuesHash(vf->values, vf->nulls, vf->desc, vf->audit_attnos, vf->n_audit, computed);
	if (row_hash == NULL || strcmp(row_hash, computed) != 0)
		return psprintf("row %lld was modified after it was written: its content does not match its row_hash",
						(long long) id);
	detail = recorded_row_detail(vf, id);
	if (detail != NULL)
		return detail;
	/* actions that determine what the updatable tables hold */
	if (!col_null(vf, COL_DETAILS))
		replay_row(&vf->rp, vf->outer, id, col_text(vf, COL_ACTION), col_text(vf, COL_OBJECT),
				   col_text(vf, COL_ROLE), col_text(vf, COL_REASON), col_datum(vf, COL_DETAILS));
	if (vf->digest_hash != NULL && id == vf->digest_id)
	{
		vf->digest_seen = true;
		if (strcmp(row_hash, vf->digest_hash) != 0)
			return psprintf("row %lld is not the row the digest recorded: its row_hash differs",
							(long long) id);
	}
	strlcpy(vf->expected_prev, row_hash, sizeof(vf->expected_prev));
	vf->expected_id = id + 1;
	*broken_id = 0;
	return NULL;
}

/*
 * elt.audit_verify(digest jsonb DEFAULT NULL): walk the chain in id order and
 * report whether it holds, how many rows were checked, the first broken id
 * and what is wrong.  On the way, check each row an audit row recorded in
 * an append-only table (schema versions, transform runs, transform
 * versions) against it, and that no such row lacks its audit row.  With a
 * digest from elt.audit_digest(), also check that the chain still contains
 * the digest's head row unchanged.  Finally replay the governance, check,
 * approver and migration actions, and check that elt.governed_targets,
 * elt.check_defs, elt.approvers, elt.migration_windows and
 * elt.migration_approvals hold exactly what they leave behind, so that a
 * row removed, added or changed behind the extension's back is caught too.
 */
PG_FUNCTION_INFO_V1(elt_audit_verify);
Datum
elt_audit_verify(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		result[4];
	bool		rnulls[4] = {false, false, false, false};
	Portal		portal;
	SPIPlanPtr	plan;
	int64		broken_id = 0;
	char	   *detail = NULL;
	Verify		vf;
	MemoryContext rowcxt;
	EltCatalogWrite cw;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(&vf, 0, sizeof(vf));
	vf.outer = CurrentMemoryContext;
	vf.expected_id = 1;
	strlcpy(vf.expected_prev, ELT_GENESIS_HASH, sizeof(vf.expected_prev));

	if (!PG_ARGISNULL(0))
	{
		Jsonb	   *digest = PG_GETARG_JSONB_P(0);
		JsonbValue *v_id;
		JsonbValue *v_hash;

		v_id = getKeyJsonValueFromContainer(&digest->root, "head_id", 7, NULL);
		v_hash = getKeyJsonValueFromContainer(&digest->root, "head_hash", 9, NULL);
		if (v_id != NULL && v_id->type == jbvNull &&
			v_hash != NULL && v_hash->type == jbvNull)
		{
			/* the digest of an empty chain: every chain contains it */
		}
		else
		{
			bool		ok = v_id != NULL && v_id->type == jbvNumeric &&
				v_hash != NULL && v_hash->type == jbvString;

			if (ok)
			{
				char	   *idtext = DatumGetCString(DirectFunctionCall1(numeric_out,
																		 NumericGetDatum(v_id->val.numeric)));
				char	   *end;

				errno = 0;
				vf.digest_id = strtoll(idtext, &end, 10);
				ok = (*end == '\0' && errno == 0 && vf.digest_id > 0);
			}
			if (!ok)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("digest must have a positive integer \"head_id\" and a string \"head_hash\""),
						 errhint("Pass a value returned by elt.audit_digest().")));
			vf.digest_hash = pnstrdup(v_hash->val.string.val, v_hash->val.string.len);
		}
	}

	/* read as the extension's owner (any role may verify); values named for elt_reader */
	verify_reveals = EltRoleIsReader(GetUserId());

	/* what this catalog has: audit_verify runs on every catalog from 0.1.0 on */
	vf.has_runs = OidIsValid(EltCatalogRelid("transform_runs"));
	vf.has_code = OidIsValid(EltCatalogRelid("transform_code"));
	replay_init(&vf.rp, vf.outer);

	EltCatalogWriteBegin(&cw);

	/* one statement, so one snapshot, streamed; each row checked in a memory context of its own */
	plan = SPI_prepare(chain_query(vf.has_runs, vf.has_code), 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "audit_verify row", ALLOCSET_DEFAULT_SIZES);
	while (detail == NULL)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed && detail == NULL; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			if (vf.desc == NULL)
				verify_columns(&vf, SPI_tuptable->tupdesc);
			detail = verify_row(&vf, SPI_tuptable->vals[i], &broken_id);
			MemoryContextSwitchTo(old);
			if (detail != NULL)
				detail = MemoryContextStrdup(vf.outer, detail);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);

	if (detail == NULL && vf.digest_hash != NULL && !vf.digest_seen)
	{
		broken_id = vf.digest_id;
		detail = psprintf("the chain ends at row %lld and no longer contains row %lld, the head recorded by the digest",
						  (long long) (vf.expected_id - 1), (long long) vf.digest_id);
	}

	/* the tables the extension updates, against what the actions leave behind */
	if (detail == NULL)
		detail = replay_compare_all(&vf.rp, vf.outer);

	/* the result outlives SPI's memory */
	if (detail)
		detail = MemoryContextStrdup(vf.outer, detail);
	EltCatalogWriteEnd(&cw);

	result[0] = BoolGetDatum(detail == NULL);
	result[1] = Int64GetDatum(vf.checked);
	if (detail != NULL && broken_id > 0)
		result[2] = Int64GetDatum(broken_id);
	else
		rnulls[2] = true;
	if (detail)
		result[3] = CStringGetTextDatum(detail);
	else
		rnulls[3] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, result, rnulls)));
}
