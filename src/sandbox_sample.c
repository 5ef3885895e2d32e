/*
 * sandbox_sample.c — choosing a sandbox's rows (sandbox.c): a sample by a
 * hash of each row's primary key (or whole row) and a seed, or from a root
 * and a condition following foreign keys down, then closed upwards under
 * the foreign keys until every kept row's references are kept.
 *
 * Kept rows are (tableoid, ctid) in temporary tables, one per table; the
 * closure is semi-naive: each round follows only the rows the round
 * before added (delta), so a table nothing was added to is not scanned
 * again.  Everything runs as the reader (sandbox.c switched to it), so
 * its privileges and row-level security choose what may be kept.
 *
 * Layering: part of the sandbox engine; called by sandbox.c only; calls
 * lineage.c (primary key columns), mask.c (a row's key as text),
 * checksum.c (the rows taken) and util.  Locks: none of its own
 * (sandbox.c holds SHARE on the sources).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/itemptr.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "checksum.h"
#include "lineage.h"
#include "mask.h"
#include "sandbox_internal.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * Samples
 * ---------------------------------------------------------------------
 */

static int64
exec_count(const char *sql)
{
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "sampling failed: %s", sql);
	return (int64) SPI_processed;
}

/* A closure that needs more rounds than this is refused (a chain of references that long). */
#define MAX_CLOSURE_ROUNDS 1000

pg_noreturn static void
too_many_rounds(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("closing the sample under foreign keys takes more than %d rounds", MAX_CLOSURE_ROUNDS),
			 errdetail("A chain of references (a table that references itself) is longer than that."),
			 errhint("Sample from a root whose rows reference fewer levels, or copy the table whole.")));
}

/* The first key of object j that is not in known (NULL-ended), or NULL. */
char *
EltSandboxUnknownKey(Jsonb *j, const char *const *known)
{
	JsonbIterator *it = JsonbIteratorInit(&j->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		int			i;

		if (tok != WJB_KEY)
			continue;
		for (i = 0; known[i]; i++)
			if ((int) strlen(known[i]) == v.val.string.len &&
				strncmp(known[i], v.val.string.val, v.val.string.len) == 0)
				break;
		if (known[i] == NULL)
			return pnstrdup(v.val.string.val, v.val.string.len);
	}
	return NULL;
}

/* The index of relid in sb->tables, or -1. */
int
EltSandboxTableIndex(Sandbox *sb, Oid relid)
{
	int			i;

	for (i = 0; i < sb->ntables; i++)
		if (sb->tables[i].relid == relid)
			return i;
	return -1;
}

/*
 * A row's key as text, read as alias: its primary key's columns
 * (EltMaskRowKeySql), else the whole row.  Two rows with the same key are
 * the same row of the table.
 */
static char *
row_key_sql(Oid relid, const char *alias)
{
	Relation	rel = table_open(relid, NoLock);
	char	   *key = EltMaskRowKeySql(rel, alias);

	table_close(rel, NoLock);
	return key ? key : psprintf("CAST(%s AS pg_catalog.text)", alias);
}

/*
 * How t's kept rows are told apart, read as alias: (tableoid, ctid), or on
 * a sandbox of Citus tables the row's key as text (row_key_sql).  A Citus
 * table's rows live in shards, each with its own ctids and its own OID on
 * its node: a ctid names no row of the table.
 */
static char *
kept_id(SbTable *t, const char *alias)
{
	if (!t->bykey)
		return psprintf("%s.tableoid, %s.ctid", alias, alias);
	return row_key_sql(t->relid, alias);
}

/* The columns of a table of kept rows, read as alias k. */
static const char *
kept_cols(SbTable *t, const char *alias)
{
	return !t->bykey ? psprintf("%s.r, %s.t", alias, alias) : psprintf("%s.k", alias);
}

/*
 * The condition that keeps t's rows (read as alias) listed in the
 * temporary table keys: for a plain table a TID scan of exactly those rows
 * (ctid = ANY of the list, read once), not a scan of the whole table
 * joined with the list; a partitioned table's rows are told apart by
 * their partition too; a Citus table's by their key (kept_id).
 */
char *
EltSandboxKeptRows(SbTable *t, const char *alias, const char *keys)
{
	if (t->bykey)
		return psprintf("%s IN (SELECT k.k FROM %s AS k)", kept_id(t, alias), keys);
	if (get_rel_relkind(t->relid) == RELKIND_RELATION)
		return psprintf("%s.ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT k.t FROM %s AS k))", alias, keys);
	return psprintf("(%s.tableoid, %s.ctid) IN (SELECT k.r, k.t FROM %s AS k)", alias, alias, keys);
}

/*
 * The checksum of the source rows a sample took (all columns, before
 * masking): what the sample was made from, which a manifest records rather
 * than a checksum of the whole source (a read of every row, most of a
 * small sample's time).  Equals elt.table_checksum() of a table holding
 * just those rows.
 */
char *
EltSandboxKeptChecksum(SbTable *t)
{
	Oid		   *rels;
	ItemPointerData *tids;
	int64		n;
	int64		i;
	char	   *result;

	/* not read-only: the list was filled by this transaction's last commands */
	if (SPI_execute(psprintf("SELECT k.r, k.t FROM %s AS k ORDER BY k.r, k.t", t->keys), false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the rows of a sample failed");
	n = (int64) SPI_processed;
	rels = palloc(sizeof(Oid) * Max(n, 1));
	tids = palloc(sizeof(ItemPointerData) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;

		rels[i] = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		tids[i] = *(ItemPointer) DatumGetPointer(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	/* under the snapshot the copy's statement will take, as the list was made */
	PushActiveSnapshot(GetTransactionSnapshot());
	result = EltRowsChecksum(t->relid, n, rels, tids);
	PopActiveSnapshot();
	pfree(rels);
	pfree(tids);
	return result;
}

/*
 * The hash by which a sample chooses a row (read as alias m), with the
 * seed: of its primary key, which stays when other columns change and is
 * cheaper to read than the whole row (an integer key is hashed as an
 * integer, not printed); of the whole row when the table has none.
 */
static char *
row_hash_sql(Oid relid, int64 seed)
{
	StringInfoData buf;
	Relation	rel = table_open(relid, NoLock);
	List	   *pk = EltPrimaryKeyColumns(rel);
	ListCell   *lc;

	table_close(rel, NoLock);
	if (pk == NIL)
		return psprintf("pg_catalog.hashtextextended(CAST(m AS pg_catalog.text), %lld)", (long long) seed);
	initStringInfo(&buf);
	if (list_length(pk) == 1 && EltIntegerKeyType(get_atttype(relid, linitial_int(pk))))
		appendStringInfo(&buf, "pg_catalog.hashint8extended(m.%s::pg_catalog.int8, %lld)",
						 quote_identifier(get_attname(relid, linitial_int(pk), false)), (long long) seed);
	else
	{
		appendStringInfoString(&buf, "pg_catalog.hashtextextended(CAST(ROW(");
		foreach(lc, pk)
			appendStringInfo(&buf, "%sm.%s", foreach_current_index(lc) ? ", " : "",
							 quote_identifier(get_attname(relid, lfirst_int(lc), false)));
		appendStringInfo(&buf, ") AS pg_catalog.text), %lld)", (long long) seed);
	}
	return buf.data;
}

/*
 * One step of the closure along foreign key f: keep the rows that reference
 * kept rows (down: the referencing table's) or that kept rows reference
 * (up: the referenced table's); how many were added.
 */
static int64
close_step(Sandbox *sb, SbFkey *f, bool down)
{
	SbTable    *to = &sb->tables[down ? f->child : f->parent];
	SbTable    *from = &sb->tables[down ? f->parent : f->child];
	const char *to_alias = down ? "c" : "p";
	const char *from_alias = down ? "p" : "c";
	int64		n;

	/* only from the rows the last round added: the others were followed already */
	if (from->added == 0)
		return 0;
	if (to->bykey)
	{
		/*
		 * Citus tables: the rows found (read on the shards) first, then
		 * those not kept yet, by a statement on temporary tables alone
		 */
		exec_count(psprintf("INSERT INTO %s SELECT %s FROM %s AS %s JOIN %s AS %s ON %s WHERE %s",
							to->scratch, kept_id(to, to_alias), to->from, to_alias, from->from, from_alias,
							f->join, EltSandboxKeptRows(from, from_alias, from->delta)));
		n = exec_count(psprintf("WITH added AS (INSERT INTO %s SELECT s.k FROM %s AS s"
								" ON CONFLICT DO NOTHING RETURNING k)"
								" INSERT INTO %s SELECT a.k FROM added AS a",
								to->keys, to->scratch, to->next));
		EltSpiExec(psprintf("TRUNCATE %s", to->scratch));
	}
	else
		n = exec_count(psprintf("WITH added AS (INSERT INTO %s SELECT %s.tableoid, %s.ctid FROM %s AS %s JOIN %s AS %s ON %s"
								" WHERE %s"
								" ON CONFLICT DO NOTHING RETURNING r, t)"
								" INSERT INTO %s SELECT a.r, a.t FROM added AS a",
								to->keys, to_alias, to_alias, to->from, to_alias, from->from, from_alias, f->join,
								EltSandboxKeptRows(from, from_alias, from->delta), to->next));
	f->pulled += n;
	to->added_next += n;
	return n;
}

/*
 * The end of a round of the closure: what it added (next) is what the next
 * round follows (delta).
 */
static void
next_round(Sandbox *sb)
{
	int			i;

	for (i = 0; i < sb->ntables; i++)
	{
		SbTable    *t = &sb->tables[i];
		char	   *swap = t->delta;

		EltSpiExec(psprintf("TRUNCATE %s", t->delta));
		t->delta = t->next;
		t->next = swap;
		t->added = t->added_next;
		t->added_next = 0;
	}
}

/*
 * Choose the kept rows of every table, closed under the foreign keys.
 * Kept rows are (tableoid, ctid): a partitioned table's partitions each
 * have their own ctids; in a sandbox of Citus tables, their keys
 * (kept_id).
 */
static void
sample(Sandbox *sb)
{
	static int	serial = 0;
	int			i;
	int64		chosen = 0;
	int64		total = 0;
	int64		bound;
	bool		grew;
	int			rounds = 0;

	for (i = 0; i < sb->ntables; i++)
	{
		SbTable    *t = &sb->tables[i];
		char	   *hashed = row_hash_sql(t->relid, sb->seed);

		const char *cols = t->bykey ? "k pg_catalog.text" : "r pg_catalog.oid, t pg_catalog.tid";
		char	   *id = kept_id(t, "m");

		t->keys = psprintf("pg_temp.elt_sandbox_keys_%d", ++serial);
		t->delta = psprintf("pg_temp.elt_sandbox_delta_%d", serial);
		t->next = psprintf("pg_temp.elt_sandbox_next_%d", serial);
		EltSpiExec(psprintf("CREATE TEMPORARY TABLE %s (%s, PRIMARY KEY (%s))"
							" ON COMMIT DROP", t->keys, cols, t->bykey ? "k" : "r, t"));
		EltSpiExec(psprintf("CREATE TEMPORARY TABLE %s (%s) ON COMMIT DROP", t->delta, cols));
		EltSpiExec(psprintf("CREATE TEMPORARY TABLE %s (%s) ON COMMIT DROP", t->next, cols));
		if (t->bykey)
		{
			t->scratch = psprintf("pg_temp.elt_sandbox_found_%d", serial);
			EltSpiExec(psprintf("CREATE TEMPORARY TABLE %s (%s) ON COMMIT DROP", t->scratch, cols));
		}
		if (sb->percent > 0)
			t->added = exec_count(psprintf("INSERT INTO %s SELECT %s FROM %s AS m"
										   " WHERE (%s OPERATOR(pg_catalog.&) 1048575) < %lld",
										   t->keys, id, t->from, hashed,
										   (long long) ceil(sb->percent / 100.0 * 1048576.0)));
		else if (sb->nrows > 0)
			t->added = exec_count(psprintf("INSERT INTO %s SELECT %s FROM %s AS m"
										   " ORDER BY %s, %s LIMIT %lld",
										   t->keys, id, t->from, hashed, id, (long long) sb->nrows));
		else if (t->relid == sb->root)
			t->added = exec_count(psprintf("INSERT INTO %s SELECT %s FROM %s AS m WHERE (%s)",
										   t->keys, id, t->from, sb->where ? sb->where : "true"));
		else
			t->added = 0;
		chosen += t->added;
		/* what the closure starts from */
		if (t->added > 0)
			EltSpiExec(psprintf("INSERT INTO %s SELECT %s FROM %s AS k", t->delta, kept_cols(t, "k"), t->keys));
	}
	if (OidIsValid(sb->root) && EltSandboxTableIndex(sb, sb->root) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample root %s is not a table of the source schemas", EltRelDisplayName(sb->root)),
				 errhint("Name a table of from_schemas as the root.")));
	bound = sb->max_rows > 0 ? sb->max_rows : Max(chosen * 10, 10000);

	/* from a root, down: the rows that reference kept rows, level by level */
	if (OidIsValid(sb->root))
	{
		do
		{
			grew = false;
			if (++rounds > MAX_CLOSURE_ROUNDS)
				too_many_rounds();
			for (i = 0; i < sb->nfkeys && chosen <= bound; i++)
			{
				SbFkey	   *f = &sb->fkeys[i];
				int64		n;

				n = close_step(sb, f, true);
				chosen += n;
				grew |= (n > 0);
			}
			next_round(sb);
		} while (grew && chosen <= bound);
		/* the closure upwards starts again from every kept row */
		for (i = 0; i < sb->ntables; i++)
		{
			SbTable    *t = &sb->tables[i];

			EltSpiExec(psprintf("TRUNCATE %s", t->delta));
			t->added = exec_count(psprintf("INSERT INTO %s SELECT %s FROM %s AS k", t->delta, kept_cols(t, "k"), t->keys));
		}
	}

	if (chosen > bound)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the sample chooses %lld rows, more than max_rows (%lld)", (long long) chosen,
						(long long) bound),
				 errhint("Sample less, or raise max_rows.")));
	/* up: every row a kept row references, until nothing is added */
	total = chosen;
	rounds = 0;
	do
	{
		grew = false;
		if (++rounds > MAX_CLOSURE_ROUNDS)
			too_many_rounds();
		for (i = 0; i < sb->nfkeys && total <= bound; i++)
		{
			SbFkey	   *f = &sb->fkeys[i];
			int64		n;

			n = close_step(sb, f, false);
			total += n;
			grew |= (n > 0);
		}
		next_round(sb);
	} while (grew && total <= bound);
	if (total > bound)
	{
		SbFkey	   *worst = NULL;

		for (i = 0; i < sb->nfkeys; i++)
			if (sb->fkeys[i].pulled > 0 && (worst == NULL || sb->fkeys[i].pulled > worst->pulled))
				worst = &sb->fkeys[i];
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the sample cannot be closed under foreign keys within %lld rows", (long long) bound),
				 worst ? errdetail("Foreign key %s of %s pulled in %lld rows.", worst->name,
								   sb->tables[worst->child].src, (long long) worst->pulled) : 0,
				 errhint("Sample from a root instead ('{\"root\": \"schema.table\", \"where\": \"...\"}'), or raise max_rows.")));
	}
}
/* The sample, chosen by the reader's statements. */
void
EltSandboxSample(Sandbox *sb, Oid reader)
{
	Oid			save_user;
	int			save_sec;

	GetUserIdAndSecContext(&save_user, &save_sec);
	if (reader != save_user)
		SetUserIdAndSecContext(reader, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		sample(sb);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
}

