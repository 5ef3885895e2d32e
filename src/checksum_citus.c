/*
 * checksum_citus.c — checksums of Citus distributed and reference tables
 * (elt.table_checksum, elt.table_checksum_ranges), for checksum.c.
 *
 * The rows of a Citus table live in its shards (on the workers, and the
 * coordinator's copy of a reference table), not in the table on the
 * coordinator: each shard is checksummed where it lives, in parallel
 * (Citus's run_command_on_shards, one placement per shard), by the same
 * SQL function, and the sums added as checksum.c adds rows.  The order of
 * the rows never mattered, so the result equals the checksum of the same
 * rows in a local table; ranges are cut at the same bounds on every shard
 * and added range by range.  Each shard is read under its own snapshot:
 * while writes run, the total is not of one moment.  The caller checked
 * the caller's right to read the columns, on the table; each shard checks
 * it again.
 *
 * Layering: a leaf of the checksum engine; calls SPI and util.c.  Takes
 * no locks of its own (the workers lock their shards).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "checksum_int.h"
#include "util.h"

/* Append a quoted literal, '%' doubled for Citus's format(). */
static void
append_literal(StringInfo out, const char *value)
{
	const char *c;

	for (c = quote_literal_cstr(value); *c; c++)
		appendStringInfoString(out, *c == '%' ? "%%" : (char[]) {*c, '\0'});
}

/* Append a text[] literal of items, as append_literal. */
static void
append_text_array(StringInfo out, char **items, int n)
{
	StringInfoData a;
	int			i;

	initStringInfo(&a);
	appendStringInfoChar(&a, '{');
	for (i = 0; i < n; i++)
	{
		const char *c;

		appendStringInfoString(&a, i > 0 ? ",\"" : "\"");
		for (c = items[i]; *c; c++)
		{
			if (*c == '"' || *c == '\\')
				appendStringInfoChar(&a, '\\');
			appendStringInfoChar(&a, *c);
		}
		appendStringInfoChar(&a, '"');
	}
	appendStringInfoChar(&a, '}');
	append_literal(out, a.data);
	appendStringInfoString(out, "::pg_catalog.text[]");
}

/* The columns argument of a checksum run on a shard (NULL: none, all). */
static void
append_shard_columns(StringInfo out, char **cols, int ncols)
{
	if (ncols == 0)
		appendStringInfoString(out, "NULL");
	else
		append_text_array(out, cols, ncols);
}

/* Add a checksum's rows and sum ("v1:<rows>:<hex>") to rows and sum. */
static void
add_checksum_text(Oid relid, const char *text, uint64 *rows, uint64 *sum)
{
	uint64		n;
	char		hex[33];
	uint64		part[2];

	if (text == NULL ||
		sscanf(text, CHECKSUM_PREFIX ":" UINT64_FORMAT ":%32[0-9a-f]", &n, hex) != 2 ||
		strlen(hex) != 32)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not checksum a shard of %s", EltRelDisplayName(relid)),
				 errdetail("The shard answered: %s", text ? text : "nothing")));
	part[0] = strtou64(hex + 16, NULL, 16);
	hex[16] = '\0';
	part[1] = strtou64(hex, NULL, 16);
	sum[0] += part[0];
	sum[1] += part[1] + (sum[0] < part[0] ? 1 : 0);
	*rows += n;
}

/*
 * Run cmd (a query with one %L for the shard's name) on every shard of
 * relid and return each shard's answer (palloc'd text): its result, or its
 * error, which add_checksum_text reports.
 */
static List *
on_shards(Oid relid, const char *cmd)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(cmd)};
	MemoryContext outer = CurrentMemoryContext;
	List	   *results = NIL;
	uint64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT success, result FROM pg_catalog.run_command_on_shards($1, $2)",
							  2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "run_command_on_shards failed");
	for (n = 0; n < SPI_processed; n++)
	{
		char	   *result = SPI_getvalue(SPI_tuptable->vals[n], SPI_tuptable->tupdesc, 2);
		MemoryContext spi = MemoryContextSwitchTo(outer);

		results = lappend(results, result ? pstrdup(result) : NULL);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return results;
}

/* elt.table_checksum of a Citus table: see the file header. */
void
EltChecksumCitus(Oid relid, char **cols, int ncols, uint64 *rows, uint64 *sum)
{
	StringInfoData cmd;
	ListCell   *lc;

	initStringInfo(&cmd);
	appendStringInfo(&cmd, "SELECT %s.table_checksum(%%L::pg_catalog.regclass, ",
					 quote_identifier(ELT_SCHEMA_NAME));
	append_shard_columns(&cmd, cols, ncols);
	appendStringInfoChar(&cmd, ')');
	foreach(lc, on_shards(relid, cmd.data))
		add_checksum_text(relid, lfirst(lc), rows, sum);
}

/*
 * elt.table_checksum_ranges of a Citus table: each shard's ranges cut at
 * the same bounds (as text), where it lives, added range by range into
 * seg_rows and seg_sum (nbounds + 2 segments).
 */
void
EltChecksumRangesCitus(Oid relid, const char *key, char **cols, int ncols,
					   char **bounds, int nbounds, uint64 *seg_rows, uint64 *seg_sum)
{
	StringInfoData cmd;
	ListCell   *lc;

	initStringInfo(&cmd);
	appendStringInfo(&cmd, "SELECT pg_catalog.string_agg(x.checksum, ' ' ORDER BY x.segment)"
					 " FROM %s.table_checksum_ranges(%%L::pg_catalog.regclass, ",
					 quote_identifier(ELT_SCHEMA_NAME));
	append_literal(&cmd, key);
	appendStringInfoString(&cmd, ", ");
	append_text_array(&cmd, bounds, nbounds);
	appendStringInfoString(&cmd, ", ");
	append_shard_columns(&cmd, cols, ncols);
	appendStringInfoString(&cmd, ") x");
	foreach(lc, on_shards(relid, cmd.data))
	{
		char	   *segs = lfirst(lc);
		char	   *tok;
		char	   *save = NULL;
		int			seg = 0;

		/* an error, or an answer of another shape, is reported whole */
		if (segs == NULL || strncmp(segs, CHECKSUM_PREFIX ":", strlen(CHECKSUM_PREFIX) + 1) != 0)
			add_checksum_text(relid, segs, &seg_rows[0], &seg_sum[0]);
		for (tok = strtok_r(segs, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
		{
			if (seg > nbounds + 1)
				elog(ERROR, "a shard of %s answered more ranges than asked", EltRelDisplayName(relid));
			add_checksum_text(relid, tok, &seg_rows[seg], &seg_sum[2 * seg]);
			seg++;
		}
	}
}

