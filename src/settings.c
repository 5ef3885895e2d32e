/*
 * settings.c — session state that several engines read, below all of them.
 *
 * Owns: the variables behind the elt.* settings that more than one engine
 * reads (elt.enabled: contracts and capture; elt.reason: audit), and the
 * text of the utility statement being run (EltCurrentStatement: versions,
 * govern, contracts).  The settings are defined in _PG_init
 * (elt_governance.c), which points them at these variables; the statement
 * text is set by the ProcessUtility hook of versions_capture.c through
 * EltStatementEnter/Leave; the views created by the running transaction
 * (EltNoteCreatedView, EltViewCreatedNow), noted by the same hook, so that
 * the contracts engine does not judge a view nobody can read yet; and the
 * tables it created (EltNoteCreatedTable, EltTableCreatedNow), so that a
 * swap is recognised when the new relation is outside governed scope (a
 * model governed as a table target, its schema not governed).
 *
 * Layering: calls nothing of the extension; every engine may call it.
 * No locking, no SPI, no catalog access: backend-local state only.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/transam.h"
#include "access/xact.h"
#include "nodes/pg_list.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"

#include "settings.h"

bool		elt_enabled = true;
char	   *elt_reason = NULL;

/* Text of the utility statement being executed (see EltCurrentStatement). */
static const char *stmt_source = NULL;
static int	stmt_location = -1;
static int	stmt_len = 0;

/* Views and tables created by the transaction created_xid (see EltNoteCreatedView). */
static List *created_views = NIL;
static List *created_tables = NIL;
static TransactionId created_xid = InvalidTransactionId;

/*
 * A utility statement starts: remember where its text lies, and save in
 * *saved what was remembered before (the statement it is nested in).
 */
void
EltStatementEnter(const char *source, int location, int len,
				  EltStatementText *saved)
{
	saved->source = stmt_source;
	saved->location = stmt_location;
	saved->len = stmt_len;
	stmt_source = source;
	stmt_location = location;
	stmt_len = len;
}

/* A utility statement ended, or failed: restore what EltStatementEnter saved. */
void
EltStatementLeave(const EltStatementText *saved)
{
	stmt_source = saved->source;
	stmt_location = saved->location;
	stmt_len = saved->len;
}

/*
 * The text of the statement being run, trimmed: exactly the statement when
 * the hook saw it start, else the whole query string the client sent (the
 * case for the first statement of a session that loaded the library).
 */
char *
EltCurrentStatement(void)
{
	const char *src = stmt_source ? stmt_source : debug_query_string;
	int			loc = stmt_source ? stmt_location : -1;
	int			len = stmt_source ? stmt_len : 0;
	size_t		srclen;
	const char *start;
	const char *end;

	if (src == NULL)
		return NULL;
	srclen = strlen(src);
	if (loc < 0 || (size_t) loc > srclen)
	{
		loc = 0;
		len = 0;
	}
	start = src + loc;
	end = (len > 0 && (size_t) loc + len <= srclen) ? start + len : src + srclen;
	while (start < end && isspace((unsigned char) *start))
		start++;
	while (end > start && (isspace((unsigned char) end[-1]) || end[-1] == ';'))
		end--;
	return pnstrdup(start, end - start);
}

/*
 * A view or materialized view was created by the running transaction (not
 * replaced: CREATE OR REPLACE of an existing view is not noted).  The note
 * holds for the top-level transaction only: a later transaction finds the
 * list stale and starts a new one.  A view created by a subtransaction that
 * rolled back has vanished, and its oid is not handed out again within the
 * transaction, so the note can stay.
 */
static void
note_created(List **list, Oid relid)
{
	TransactionId xid = GetTopTransactionIdIfAny();
	MemoryContext old;

	if (!TransactionIdIsValid(xid))
		return;
	if (!TransactionIdEquals(xid, created_xid))
	{
		list_free(created_views);
		created_views = NIL;
		list_free(created_tables);
		created_tables = NIL;
		created_xid = xid;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	*list = list_append_unique_oid(*list, relid);
	MemoryContextSwitchTo(old);
}

/* Note a view created by the running transaction (see note_created). */
void
EltNoteCreatedView(Oid relid)
{
	note_created(&created_views, relid);
}

/*
 * Note a table created by the running transaction (see note_created): the
 * relation dbt builds beside a model (contracts_swap.c), wherever it is.
 */
void
EltNoteCreatedTable(Oid relid)
{
	note_created(&created_tables, relid);
}

/* Was this view created by the running transaction?  (See EltNoteCreatedView.) */
bool
EltViewCreatedNow(Oid relid)
{
	TransactionId xid = GetTopTransactionIdIfAny();

	return TransactionIdIsValid(xid) && TransactionIdEquals(xid, created_xid) &&
		list_member_oid(created_views, relid);
}

/* Was this table created by the running transaction?  (See EltNoteCreatedTable.) */
bool
EltTableCreatedNow(Oid relid)
{
	TransactionId xid = GetTopTransactionIdIfAny();

	return TransactionIdIsValid(xid) && TransactionIdEquals(xid, created_xid) &&
		list_member_oid(created_tables, relid);
}
