/*
 * replay.c — replaying a run and verifying the replay.
 *
 * elt.replay() re-executes the recorded SQL of every step, its relation
 * references replaced by copies of the run's snapshots in a new sandbox
 * schema, with the recorded settings, clock and seeds, and records the
 * replay as a run of its own; elt.verify_replay() compares the two.  Both
 * run as the run's role in a security-restricted operation, never as the
 * caller (who makes the sandbox schema for that role): the sandbox, its
 * rows and the code that writes and reads them are that role's.  A
 * relation the manifest records as a Citus table ("distribution") gets a
 * copy distributed the same way, colocated as the run's relations were.
 *
 * Layering: the top of the runs engine.  It calls citus.c, manifest.c (the run
 * record: loading a manifest, recording the replay as a run and its steps)
 * and transform_run.c (EltReplayStep, one step's statement); neither calls
 * back.  Locking: a replay writes only its own sandbox schema; reading a
 * run's manifest takes no lock beyond the catalog reads of manifest.c.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "citus.h"
#include "manifest.h"
#include "sandbox.h"
#include "transform.h"
#include "util.h"

/* The settings a replay applies from the recorded fingerprint. */
static const char *const replay_settings[] = {
	"TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits",
	"standard_conforming_strings", "bytea_output", "lc_monetary", "lc_numeric",
	"lc_time", "default_text_search_config", "timezone_abbreviations", "xmloption",
	NULL
};


/* ---------------------------------------------------------------------
 * Replay
 * ---------------------------------------------------------------------
 */

/* A relation as a step of the run being replayed read it (an input). */
typedef struct ReplayInput
{
	int			step;
	char	   *role;
	char	   *columns;		/* JSON */
	char	   *snapshot_id;
	char	   *snapshot_checksum;
	char	   *snapshot_shape;
	char	   *storage;		/* the snapshot it is copied from */
} ReplayInput;

/* A relation of the run being replayed, and its copy in the sandbox. */
typedef struct ReplayRel
{
	char	   *relation;		/* as recorded: qualified, quoted */
	char	   *schema;
	char	   *name;
	List	   *inputs;			/* ReplayInput, by step: each time a step read it */
	char	   *output_shape;	/* {"columns": ..., "primary_key": ...}, or NULL */
	char	   *sandbox_schema;
	char	   *sandbox_name;
	char	   *sandbox;		/* qualified, quoted */
	Oid			sandbox_oid;
	ReplayInput *loaded;		/* the input whose rows the copy holds */
	char	   *dist_method;	/* its recorded Citus distribution, or NULL */
	char	   *dist_column;
	char	   *dist_colocation;
	char		distributed;	/* how its copy was made: 'h', 'r' or 0 (plain) */
} ReplayRel;

/*
 * Make r's new, empty sandbox copy a Citus table distributed as the run
 * recorded r ("distribution" in the manifest): hash on the same column,
 * colocated with the copies of the relations that were colocated with it,
 * or a reference table.  Nothing for a relation that was a plain table,
 * or where Citus is not installed.  SPI connected, as the copy's owner.
 */
static void
distribute_copy(ReplayRel *r, List *rels)
{
	ListCell   *lc;
	Oid			with = InvalidOid;

	if (r->dist_method == NULL)
		return;
	foreach(lc, rels)
	{
		ReplayRel  *o = lfirst(lc);

		if (o != r && o->distributed == 'h' && r->dist_colocation != NULL && o->dist_colocation != NULL &&
			strcmp(o->dist_colocation, r->dist_colocation) == 0)
		{
			with = o->sandbox_oid;
			break;
		}
	}
	CommandCounterIncrement();
	r->distributed = EltCitusDistributeAs(RangeVarGetRelid(makeRangeVar(r->sandbox_schema, r->sandbox_name, -1),
														   NoLock, false),
										  r->dist_method, r->dist_column, with);
}

static char *spi_text(MemoryContext cxt, uint64 row, const char *column);

/* The recorded distribution of a relation (columns dist_*), if r has none yet. */
static void
read_distribution(ReplayRel *r, MemoryContext cxt, uint64 row)
{
	if (r->dist_method != NULL || EltSpiGetText(row, "dist_method") == NULL)
		return;
	r->dist_method = spi_text(cxt, row, "dist_method");
	r->dist_column = spi_text(cxt, row, "dist_column");
	r->dist_colocation = spi_text(cxt, row, "dist_colocation");
}

static ReplayRel *
find_rel(List *rels, const char *relation)
{
	ListCell   *lc;

	foreach(lc, rels)
		if (strcmp(((ReplayRel *) lfirst(lc))->relation, relation) == 0)
			return lfirst(lc);
	return NULL;
}

/* Check that expr is one expression, not more SQL (it comes from a manifest). */
static void
check_expression(const char *expr, const char *relation)
{
	List	   *raw = raw_parser(psprintf("SELECT (%s)", expr), RAW_PARSE_DEFAULT);
	SelectStmt *s;

	if (list_length(raw) != 1 || !IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt) ||
		(s = (SelectStmt *) linitial_node(RawStmt, raw)->stmt)->fromClause != NIL ||
		list_length(s->targetList) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the manifest's default for a column of %s is not an expression: %s",
						relation, expr)));
}

/*
 * The CREATE TABLE statement of a relation's sandbox copy from its
 * recorded shape: column types checked as type names, defaults as single
 * expressions, identity columns as identity columns of the sandbox.
 */
static char *
sandbox_table_sql(ReplayRel *r)
{
	StringInfoData buf;
	uint64		i;
	int			rc;

	rc = SPI_execute_with_args("SELECT c ->> 'name' AS name, c ->> 'type' AS type,"
							   " (c ->> 'not_null')::boolean AS not_null, c ->> 'default' AS def,"
							   " c ->> 'generated' AS generated, (c ->> 'identity')::boolean AS identity"
							   " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb -> 'columns') c",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(r->output_shape)},
							   NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading a recorded shape failed");
	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE TABLE %s (", r->sandbox);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = EltSpiGetText(i, "name");
		char	   *type = EltSpiGetText(i, "type");
		char	   *def = EltSpiGetText(i, "def");
		char	   *gen = EltSpiGetText(i, "generated");
		bool		isnull;
		bool		notnull = EltSpiGetBool(i, "not_null", &isnull);
		bool		identity = EltSpiGetBool(i, "identity", &isnull);
		Oid			typid;
		int32		typmod;

		if (name == NULL || type == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the manifest's shape of %s has a column without a name or type", r->relation)));
		parseTypeString(type, &typid, &typmod, false);
		appendStringInfo(&buf, "%s%s %s", i > 0 ? ", " : "", quote_identifier(name),
						 format_type_extended(typid, typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
		if (gen)
		{
			check_expression(gen, r->relation);
			appendStringInfo(&buf, " GENERATED ALWAYS AS (%s) STORED", gen);
		}
		else if (identity)
			appendStringInfoString(&buf, " GENERATED BY DEFAULT AS IDENTITY");
		else if (def)
		{
			check_expression(def, r->relation);
			appendStringInfo(&buf, " DEFAULT (%s)", def);
		}
		if (notnull)
			appendStringInfoString(&buf, " NOT NULL");
	}
	rc = SPI_execute_with_args("SELECT k FROM pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb -> 'primary_key') k",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(r->output_shape)},
							   NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading a recorded key failed");
	if (SPI_processed > 0)
	{
		appendStringInfoString(&buf, ", PRIMARY KEY (");
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *k = EltSpiGetText(i, "k");

			if (k == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("the manifest's primary key of %s has a NULL column", r->relation)));
			appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", quote_identifier(k));
		}
		appendStringInfoChar(&buf, ')');
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * The storage of the snapshot an input refers to, among those that role
 * (the one the replay runs as) may read: a snapshot is readable by the
 * role that made it and its members (snapshot.c), and a replay's steps
 * ran as that role, so the recorded snapshot is normally one.  Preferred is
 * the recorded snapshot, if it is there with the recorded checksum, else
 * one with the same shape and checksum (an imported manifest's, or one made
 * again).  NULL when there is none.
 */
static char *
snapshot_storage(ReplayInput *in, Oid role)
{
	static SPIPlanPtr plan = NULL;
	MemoryContext outer = CurrentMemoryContext;
	EltCatalogWrite cw;
	char	   *storage = NULL;

	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "SELECT pg_catalog.format('elt_snapshots.%I', s.storage) AS storage FROM elt.snapshot_defs s"
			   " WHERE s.checksum = $2 AND s.shape_hash = $3"
			   "   AND pg_catalog.pg_has_role($4, s.created_by, 'USAGE')"
			   "   AND pg_catalog.to_regclass(pg_catalog.format('elt_snapshots.%I', s.storage)) IS NOT NULL"
			   " ORDER BY s.snapshot_id = $1 DESC, s.snapshot_id DESC LIMIT 1",
			   4, (Oid[]) {INT8OID, TEXTOID, TEXTOID, OIDOID});
	EltExecLatest(plan, (Datum[]) {Int64GetDatum(strtoi64(in->snapshot_id, NULL, 10)),
				  CStringGetTextDatum(in->snapshot_checksum), CStringGetTextDatum(in->snapshot_shape),
				  ObjectIdGetDatum(role)}, NULL, 1);
	if (SPI_processed > 0)
		storage = MemoryContextStrdup(outer, EltSpiGetText(0, "storage"));
	EltCatalogWriteEnd(&cw);
	return storage;
}

/* A text column of an SPI result row, copied into cxt (NULL stays NULL). */
static char *
spi_text(MemoryContext cxt, uint64 row, const char *column)
{
	char	   *v = EltSpiGetText(row, column);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/*
 * Read the relations of a manifest (inputs first, each with the steps that
 * read it in order, then outputs not read), into cxt.
 */
static List *
replay_relations(const char *manifest, int64 run_id, MemoryContext cxt)
{
	List	   *rels = NIL;
	uint64		i;
	int			rc;

	rc = SPI_execute_with_args("SELECT i ->> 'relation' AS relation, i ->> 'schema' AS schema, i ->> 'name' AS name,"
							   " (i ->> 'step')::int AS step, i ->> 'role' AS role, (i -> 'columns')::text AS columns,"
							   " i -> 'snapshot' ->> 'id' AS snapshot_id, i -> 'snapshot' ->> 'checksum' AS snapshot_checksum,"
							   " i -> 'snapshot' ->> 'shape_hash' AS snapshot_shape, i ->> 'not_checksummed' AS not_checksummed,"
							   " i -> 'distribution' ->> 'method' AS dist_method, i -> 'distribution' ->> 'column' AS dist_column,"
							   " i -> 'distribution' ->> 'colocation' AS dist_colocation"
							   " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb -> 'inputs') WITH ORDINALITY e(i, n)"
							   " ORDER BY (i ->> 'step')::int, n",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the manifest's inputs failed");
	for (i = 0; i < SPI_processed; i++)
	{
		ReplayInput *in = MemoryContextAllocZero(cxt, sizeof(ReplayInput));
		char	   *relation = spi_text(cxt, i, "relation");
		ReplayRel  *r;
		bool		isnull;
		MemoryContext old;

		in->step = (int) EltSpiGetInt64(i, "step", &isnull);
		in->role = spi_text(cxt, i, "role");
		in->columns = spi_text(cxt, i, "columns");
		in->snapshot_id = spi_text(cxt, i, "snapshot_id");
		in->snapshot_checksum = spi_text(cxt, i, "snapshot_checksum");
		in->snapshot_shape = spi_text(cxt, i, "snapshot_shape");
		if (relation == NULL || EltSpiGetText(i, "name") == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("run " INT64_FORMAT "'s manifest has an input without a name", run_id)));
		if (in->snapshot_id == NULL || in->snapshot_checksum == NULL || in->snapshot_shape == NULL)
		{
			const char *why = EltSpiGetText(i, "not_checksummed");

			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("run " INT64_FORMAT " cannot be replayed: it kept no snapshot of %s",
							run_id, relation),
					 why ? errdetail("Its manifest says it was not checksummed: %s.", why) : 0,
					 errhint("Runs recorded with snapshot_policy 'full' can be replayed: "
							 "elt.run_begin(pipeline, params, 'full'), or SET elt.manifest_policy = 'full' for transform runs on their own.")));
		}
		if (in->columns == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the manifest's input %s has no columns", relation)));
		old = MemoryContextSwitchTo(cxt);
		r = find_rel(rels, relation);
		if (r == NULL)
		{
			r = palloc0(sizeof(ReplayRel));
			r->relation = relation;
			r->schema = spi_text(cxt, i, "schema");
			r->name = spi_text(cxt, i, "name");
			rels = lappend(rels, r);
		}
		r->inputs = lappend(r->inputs, in);
		MemoryContextSwitchTo(old);
		read_distribution(r, cxt, i);
	}
	rc = SPI_execute_with_args("SELECT o ->> 'relation' AS relation, o ->> 'schema' AS schema, o ->> 'name' AS name,"
							   " pg_catalog.jsonb_build_object('columns', o -> 'columns',"
							   "  'primary_key', o -> 'primary_key')::text AS shape,"
							   " o -> 'distribution' ->> 'method' AS dist_method, o -> 'distribution' ->> 'column' AS dist_column,"
							   " o -> 'distribution' ->> 'colocation' AS dist_colocation"
							   " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb -> 'outputs') o",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the manifest's outputs failed");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *relation = spi_text(cxt, i, "relation");
		ReplayRel  *r = relation ? find_rel(rels, relation) : NULL;

		if (relation == NULL || EltSpiGetText(i, "name") == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("run " INT64_FORMAT "'s manifest has an output without a name", run_id)));
		if (r == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			r = palloc0(sizeof(ReplayRel));
			r->relation = relation;
			r->schema = spi_text(cxt, i, "schema");
			r->name = spi_text(cxt, i, "name");
			rels = lappend(rels, r);
			MemoryContextSwitchTo(old);
		}
		r->output_shape = spi_text(cxt, i, "shape");
		read_distribution(r, cxt, i);
	}
	return rels;
}

/* Apply the recorded settings; WARNING with what still differs from the recorded fingerprint. */
static void
apply_recorded_settings(const char *manifest, int64 run_id)
{
	uint64		i;
	int			rc;

	rc = SPI_execute_with_args("SELECT s.key, s.value FROM pg_catalog.jsonb_each_text($1::pg_catalog.jsonb -> 'fingerprint' -> 'settings') s",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the recorded settings failed");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *key = EltSpiGetText(i, "key");
		char	   *value = EltSpiGetText(i, "value");
		int			k;

		for (k = 0; replay_settings[k]; k++)
			if (strcmp(replay_settings[k], key) == 0 && value != NULL)
				(void) set_config_option(key, value, PGC_USERSET, PGC_S_SESSION,
										 GUC_ACTION_SAVE, true, 0, false);
	}
	rc = SPI_execute_with_args("SELECT pg_catalog.count(*) AS n, pg_catalog.string_agg(pg_catalog.format('%s: %s, now %s', d.key,"
							   " coalesce(d.a_value::text, 'none'), coalesce(d.b_value::text, 'none')),"
							   " E'\\n' ORDER BY d.key) AS diff"
							   " FROM elt.env_diff($1::pg_catalog.jsonb -> 'fingerprint', elt.env_fingerprint()) d"
							   " WHERE d.key NOT IN ('settings.search_path', 'settings.elt.reason')",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "comparing fingerprints failed");
	{
		bool		isnull;

		if (EltSpiGetInt64(0, "n", &isnull) > 0)
			ereport(WARNING,
					(errmsg("the environment differs from the one run " INT64_FORMAT " recorded", run_id),
					 errdetail("%s", EltSpiGetText(0, "diff")),
					 errhint("Results that depend on these may differ; elt.verify_replay() shows whether they do.")));
	}
}

/* One step of the manifest, as read for its replay. */
typedef struct ReplayStep
{
	int			step;
	char	   *transform;
	int64		transform_id;
	int			version;
	char	   *code_hash;
	char	   *mode;
	char	   *lineage;
	char	   *target;
	char	   *sql;
	char	   *search_path;
	char	   *params;
	int64		seed;
	char	   *relations;		/* JSON array */
	bool		replayable;
	char	   *not_replayable;
} ReplayStep;

static List *
replay_steps(const char *manifest, int64 run_id, MemoryContext cxt)
{
	List	   *steps = NIL;
	uint64		i;
	int			rc;

	rc = SPI_execute_with_args("SELECT (s ->> 'step')::int AS step, s ->> 'transform' AS transform,"
							   " (s ->> 'transform_id')::int8 AS transform_id,"
							   " (s ->> 'version')::int AS version, s ->> 'code_hash' AS code_hash,"
							   " s ->> 'mode' AS mode, s ->> 'lineage' AS lineage, s ->> 'target' AS target,"
							   " s ->> 'sql' AS sql, s ->> 'search_path' AS search_path,"
							   " coalesce(s -> 'params', '{}')::text AS params,"
							   " (s ->> 'seed')::int8 AS seed, coalesce(s -> 'relations', '[]')::text AS relations,"
							   " coalesce((s ->> 'replayable')::boolean, false) AS replayable,"
							   " s ->> 'not_replayable' AS not_replayable"
							   " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb -> 'steps') s"
							   " ORDER BY 1",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the manifest's steps failed");
	for (i = 0; i < SPI_processed; i++)
	{
		ReplayStep *s = MemoryContextAllocZero(cxt, sizeof(ReplayStep));
		bool		isnull;

		s->step = (int) EltSpiGetInt64(i, "step", &isnull);
		s->transform = spi_text(cxt, i, "transform");
		s->transform_id = EltSpiGetInt64(i, "transform_id", &isnull);
		s->version = (int) EltSpiGetInt64(i, "version", &isnull);
		s->code_hash = spi_text(cxt, i, "code_hash");
		s->mode = spi_text(cxt, i, "mode");
		s->lineage = spi_text(cxt, i, "lineage");
		s->target = spi_text(cxt, i, "target");
		s->sql = spi_text(cxt, i, "sql");
		s->search_path = spi_text(cxt, i, "search_path");
		s->params = spi_text(cxt, i, "params");
		s->seed = EltSpiGetInt64(i, "seed", &isnull);
		s->relations = spi_text(cxt, i, "relations");
		s->replayable = EltSpiGetBool(i, "replayable", &isnull);
		s->not_replayable = spi_text(cxt, i, "not_replayable");
		if (s->transform == NULL || s->code_hash == NULL || s->mode == NULL || s->target == NULL ||
			s->sql == NULL || s->search_path == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("step %d of run " INT64_FORMAT "'s manifest is incomplete", s->step, run_id)));
		if (!s->replayable)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("run " INT64_FORMAT " cannot be replayed: step %d (transform \"%s\") %s",
							run_id, s->step, s->transform,
							s->not_replayable ? s->not_replayable : "was not recorded as replayable")));
		if (strcmp(s->mode, "append") != 0 && strcmp(s->mode, "replace") != 0 &&
			strcmp(s->mode, "merge") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("step %d of run " INT64_FORMAT " has an unknown mode \"%s\"", s->step, run_id, s->mode)));
		{
			char	   *norm = EltNormalizeSql(s->sql);
			char		hash[ELT_SHA256_HEX_LEN + 1];

			EltSha256Hex(norm, strlen(norm), hash);
			if (strcmp(hash, s->code_hash) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("step %d of run " INT64_FORMAT ": its SQL does not match its code hash",
								s->step, run_id)));
		}
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			steps = lappend(steps, s);
			MemoryContextSwitchTo(old);
		}
	}
	if (steps == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run " INT64_FORMAT " has no steps to replay", run_id),
				 errhint("Only transform runs are replayed: work between elt.run_begin() and elt.run_end() other than elt.transform_run() is not recorded.")));
	return steps;
}

/* A sandbox table name for r not used yet. */
static char *
sandbox_name(List *rels, ReplayRel *r)
{
	char	   *name = r->name;
	int			n = 1;

	for (;;)
	{
		ListCell   *lc;
		bool		used = false;

		foreach(lc, rels)
		{
			ReplayRel  *o = lfirst(lc);

			if (o != r && o->sandbox_name && strcmp(o->sandbox_name, name) == 0)
				used = true;
		}
		if (!used)
			return name;
		n++;
		name = psprintf("%s_%d", r->name, n);
		if (strlen(name) >= NAMEDATALEN)
			name = psprintf("rel_%d", n);
	}
}

/*
 * A relation's JSON made by EltRelationJson() for a sandbox table, named as
 * the original relation (with sandbox_relation when given).
 */
static char *
rename_relation_json(const char *json, ReplayRel *r, const char *sandbox_relation)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *out;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT ($1::pg_catalog.jsonb OPERATOR(pg_catalog.||)"
							  " pg_catalog.jsonb_build_object('relation', $2, 'schema', $3, 'name', $4)"
							  " OPERATOR(pg_catalog.||) CASE WHEN $5 IS NULL THEN '{}'::pg_catalog.jsonb"
							  "  ELSE pg_catalog.jsonb_build_object('sandbox_relation', $5) END)::text AS o",
							  5, (Oid[]) {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID},
							  (Datum[]) {CStringGetTextDatum(json), CStringGetTextDatum(r->relation),
							  r->schema ? CStringGetTextDatum(r->schema) : (Datum) 0, CStringGetTextDatum(r->name),
							  sandbox_relation ? CStringGetTextDatum(sandbox_relation) : (Datum) 0},
							  r->schema ? (sandbox_relation ? "     " : "    n") : (sandbox_relation ? "  n  " : "  n n"),
							  true, 1) != SPI_OK_SELECT)
		elog(ERROR, "naming a replayed relation failed");
	out = MemoryContextStrdup(outer, EltSpiGetText(0, "o"));
	SPI_finish();
	return out;
}

/*
 * Fill r's sandbox copy with the rows of the snapshot of input in (SPI
 * connected, as the role the replay runs as, so that the defaults of
 * columns the snapshot lacks run as that role): a table made from the
 * relation's output shape gets the snapshot's columns that it has; another
 * is made from the snapshot.  A copy filled before is emptied (or made
 * again) first.
 */
static void
load_sandbox(ReplayRel *r, ReplayInput *in, List *rels)
{
	if (r->output_shape != NULL)
	{
		char	   *cols;

		if (r->loaded != NULL)
			EltSpiExec(psprintf("TRUNCATE %s", r->sandbox));
		if (SPI_execute_with_args("SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c ->> 'name'), ', ') AS cols"
								  " FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) c"
								  " WHERE c ->> 'name' IN (SELECT o ->> 'name' FROM pg_catalog.jsonb_array_elements($2::pg_catalog.jsonb -> 'columns') o"
								  "                       WHERE o ->> 'generated' IS NULL)",
								  2, (Oid[]) {TEXTOID, TEXTOID},
								  (Datum[]) {CStringGetTextDatum(in->columns), CStringGetTextDatum(r->output_shape)},
								  NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading columns failed");
		cols = EltSpiGetText(0, "cols");
		if (cols != NULL)
			EltSpiExec(psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
								r->sandbox, cols, cols, in->storage));
	}
	else
	{
		/*
		 * its columns may have changed between the steps that read it; a
		 * relation that was a Citus table is distributed as it was before
		 * its rows are copied (by Citus, shard to shard when the snapshot
		 * is colocated with it)
		 */
		if (r->loaded != NULL)
		{
			EltSpiExec(psprintf("DROP TABLE %s", r->sandbox));
			r->distributed = 0;
		}
		if (r->dist_method != NULL && EltCitusInstalled())
		{
			EltSpiExec(psprintf("CREATE TABLE %s AS SELECT * FROM %s WITH NO DATA", r->sandbox, in->storage));
			distribute_copy(r, rels);
			EltSpiExec(psprintf("INSERT INTO %s SELECT * FROM %s", r->sandbox, in->storage));
		}
		else
			EltSpiExec(psprintf("CREATE TABLE %s AS SELECT * FROM %s", r->sandbox, in->storage));
	}
	CommandCounterIncrement();
	r->sandbox_oid = RangeVarGetRelid(makeRangeVar(r->sandbox_schema, r->sandbox_name, -1), NoLock, false);
	r->loaded = in;
}

/* What a replayed step runs, as its run recorded it, into st (no lineage). */
static void
replayed_step(EltRunStep *st, ReplayStep *s, const char *policy, TimestampTz clock)
{
	st->enabled = true;
	st->policy = policy;
	st->step = s->step;
	st->clock = clock;
	st->seed = s->seed;
	st->transform = s->transform;
	st->transform_id = s->transform_id;
	st->version = s->version;
	st->code_hash = s->code_hash;
	st->mode = s->mode;
	st->lineage = "none";
	st->sql = s->sql;
	st->search_path = s->search_path;
	st->params = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s->params)));
}

/*
 * The replay of one step, executed and recorded in st, as the role the
 * replay runs as (elt_replay has switched to it).
 */
static void
replay_step(ReplayStep *s, List *rels, const char *sandbox, TimestampTz clock, EltRunStep *st, int64 run_id)
{
	List	   *remap = NIL;
	MemoryContext outer = CurrentMemoryContext;
	ReplayRel  *target = find_rel(rels, s->target);
	uint64		i;
	int			rc;
	ListCell   *lc;

	if (target == NULL || target->sandbox_oid == InvalidOid || target->output_shape == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("step %d of run " INT64_FORMAT " writes %s, which the manifest does not list as an output",
						s->step, run_id, s->target)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT r FROM pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb) r",
							   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(s->relations)}, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading a step's relations failed");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = EltSpiGetText(i, "r");
		ReplayRel  *r = name ? find_rel(rels, name) : NULL;

		if (r == NULL || r->sandbox_oid == InvalidOid)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("step %d of run " INT64_FORMAT " reads %s, which the manifest lists neither as an input nor as an output",
							s->step, run_id, name ? name : "a relation")));
		{
			MemoryContext spi = MemoryContextSwitchTo(outer);

			remap = lappend(remap, pstrdup(sandbox));
			remap = lappend(remap, pstrdup(r->sandbox_name));
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();

	/*
	 * What this step read, as the run recorded it: a copy that holds other
	 * rows (the relation changed since an earlier step read it) is filled
	 * again, then recorded as the step finds it.
	 */
	initStringInfo(&st->inputs);
	foreach(lc, rels)
	{
		ReplayRel  *r = lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, r->inputs)
		{
			ReplayInput *in = lfirst(lc2);
			EltRunStep	ist;
			char	   *json;

			if (in->step != s->step)
				continue;
			if (r->loaded != in && strcmp(r->loaded->storage, in->storage) != 0)
			{
				if (SPI_connect() != SPI_OK_CONNECT)
					elog(ERROR, "SPI_connect failed");
				load_sandbox(r, in, rels);
				SPI_finish();
			}
			memset(&ist, 0, sizeof(ist));
			ist.policy = "checksum";
			ist.step = s->step;
			PushActiveSnapshot(GetTransactionSnapshot());
			json = EltRelationJson(&ist, r->sandbox_oid, in->role, false);
			PopActiveSnapshot();
			if (st->inputs.len > 0)
				appendStringInfoString(&st->inputs, ", ");
			appendStringInfoString(&st->inputs, rename_relation_json(json, r, r->sandbox));
		}
	}
	replayed_step(st, s, "checksum", clock);
	st->run_id = run_id;
	st->target = target->sandbox_oid;
	st->sandbox_target = target->sandbox;
	st->relations = NIL;
	{
		/* the step's references, as recorded */
		int			k;

		for (k = 0; k < list_length(remap); k += 2)
			st->relations = lappend(st->relations,
									quote_qualified_identifier(list_nth(remap, k), list_nth(remap, k + 1)));
	}
	st->started_at = GetCurrentTimestamp();
	EltReplayStep(s->sql, s->search_path, remap, target->sandbox_oid, s->mode, st->params,
				  clock, s->seed, &st->rows_written, &st->rows_deleted, &st->rows_read);
	st->rows_deleted_known = strcmp(s->mode, "replace") == 0;
	st->finished_at = GetCurrentTimestamp();
	EltRunStepOutput(st);
	/* recorded under the original's name, with the sandbox table */
	st->output = rename_relation_json(st->output, target, NULL);
}

/*
 * The role a replay runs as, checked: the run's role, which the caller has
 * the privileges of (load_manifest), and which must still exist.  The
 * steps of a non-imported pipeline run must have run as that role too: a
 * transform runs as its owner (transform_run.c), who may be another role than
 * the one that began the run (a superuser, or a member of the owner), and
 * replaying that role's SQL as the run's role would give it privileges it
 * did not have.  An imported run's role is the importer, and its
 * transforms are another database's.
 */
static Oid
replay_role(int64 run_id, Oid role, const char *kind, bool imported, List *steps)
{
	ListCell   *lc;

	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run " INT64_FORMAT " cannot be replayed: its role no longer exists", run_id),
				 errdetail("The run belongs to the role with OID %u, which has been dropped. "
						   "A replay runs the recorded SQL as the run's role, never as another.", role),
				 errhint("Read what it ran with elt.run_manifest(" INT64_FORMAT "). To replay it, run its transforms "
						 "again as an existing role with snapshot_policy 'full', and replay that run.", run_id)));
	if (!imported && kind != NULL && strcmp(kind, "pipeline") == 0)
	{
		static SPIPlanPtr plan = NULL;
		EltCatalogWrite cw;

		EltCatalogWriteBegin(&cw);
		EltPrepare(&plan,
				   "SELECT owner::pg_catalog.text AS owner FROM elt.transform_defs WHERE transform_id = $1",
				   1, (Oid[]) {INT8OID});
		foreach(lc, steps)
		{
			ReplayStep *s = lfirst(lc);
			char	   *owner;
			Oid			o;

			EltExecLatest(plan, (Datum[]) {Int64GetDatum(s->transform_id)}, NULL, 1);
			owner = SPI_processed > 0 ? EltSpiGetText(0, "owner") : NULL;
			if (owner == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("step %d of run " INT64_FORMAT " names transform \"%s\" (id " INT64_FORMAT "), which does not exist",
								s->step, run_id, s->transform, s->transform_id)));
			/* an owner dropped since is not the run's role either */
			o = get_role_oid(owner, true);
			if (o != role)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("run " INT64_FORMAT " cannot be replayed: step %d ran transform \"%s\" as role \"%s\", not as the run's role \"%s\"",
								run_id, s->step, s->transform, owner, GetUserNameFromId(role, false)),
						 errdetail("A transform runs as its owner, and a replay runs every step as the run's role: "
								   "role \"%s\"'s SQL would run with the privileges of role \"%s\".",
								   owner, GetUserNameFromId(role, false)),
						 errhint("To record a run that can be replayed, begin it as the owner of its transforms: "
								 "SET ROLE %s before elt.run_begin().", quote_identifier(owner))));
		}
		EltCatalogWriteEnd(&cw);
	}
	return role;
}

/*
 * The replay of every step of run run_id in sandbox `sandbox` (elt.replay
 * with sandbox =>): each step's recorded SQL, search_path, parameters,
 * clock and seed over the sandbox's copies of the relations it named,
 * writing the sandbox's place of its target, as the sandbox's owner
 * (sandbox_run.c).  The SQL is the run's role's.  Recorded as a replay
 * (kind 'replay') of the sandbox's owner, with the sandbox.
 */
static int64
replay_in_sandbox(int64 run_id, const char *sandbox, List *steps, Oid role, const char *pipeline_name,
				  const char *params, TimestampTz clock, int64 seed, TimestampTz started)
{
	EltSandboxMap m;
	List	   *done = NIL;
	ListCell   *lc;
	int64		replay_id;
	EltCatalogWrite cw;
	char	   *id;
	const char *policy = EltManifestChecksums() ? "checksum" : "none";
	MemoryContext fn = CurrentMemoryContext;

	EltSandboxOpen(&m, sandbox);
	foreach(lc, steps)
	{
		ReplayStep *s = lfirst(lc);
		EltRunStep *st = palloc0(sizeof(EltRunStep));
		List	   *relids = NIL;
		List	   *names = NIL;
		uint64		i;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT r FROM pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb) r",
								  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(s->relations)},
								  NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading a step's relations failed");
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *name = EltSpiGetText(i, "r");
			MemoryContext spi = MemoryContextSwitchTo(fn);

			relids = lappend_oid(relids, name ? EltSandboxRelationByName(name) : InvalidOid);
			names = lappend(names, pstrdup(name ? name : "?"));
			MemoryContextSwitchTo(spi);
		}
		SPI_finish();
		replayed_step(st, s, policy, clock);
		st->target = EltSandboxRelationByName(s->target);
		if (!OidIsValid(st->target))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("step %d of run " INT64_FORMAT " wrote %s, which no longer exists", s->step, run_id, s->target),
					 errhint("In a sandbox a step writes the sandbox's place of its target, found by the target's name.")));
		EltSandboxStep(&m, st, relids, names, role,
					   psprintf("step %d of run " INT64_FORMAT " (transform \"%s\")", s->step, run_id, s->transform));
		done = lappend(done, st);
	}

	EltCatalogWriteBegin(&cw);
	replay_id = EltDrawRunId();
	EltInsertRun(replay_id, pipeline_name, "replay",
				 DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(params))),
				 policy, clock, seed, EltCurrentFingerprint(), m.owner, started, run_id, m.name, false);
	foreach(lc, done)
	{
		((EltRunStep *) lfirst(lc))->run_id = replay_id;
		EltInsertStep(replay_id, lfirst(lc), 0);
	}
	id = EltStoreManifest(replay_id, GetCurrentTimestamp());
	{
		EltJson		extra;

		EltAuditRunBegin(&extra, run_id);
		EltJsonInt(&extra, "replay_id", replay_id);
		EltJsonString(&extra, "sandbox", m.name);
		EltJsonBool(&extra, "into_sandbox", true);
		EltJsonString(&extra, "manifest_id", id);
		EltAuditRun(cw.actor, "replay", pipeline_name, &extra);
	}
	EltCatalogWriteEnd(&cw);
	MemoryContextSwitchTo(fn);
	return replay_id;
}

PG_FUNCTION_INFO_V1(elt_replay);

/*
 * elt.replay(run_id bigint, into_schema text DEFAULT NULL, trust_imported
 * boolean DEFAULT false) RETURNS bigint:
 * re-execute a run's steps against copies of its snapshots in a new
 * sandbox schema (elt_replay_<id> unless named), with the recorded
 * settings, clock and seeds, as the run's role (replay_role): the caller
 * makes the schema for that role, which makes, fills and writes the
 * sandbox.  The replay is recorded as a run of that role's, audited as
 * the caller's; its id is returned.
 */
Datum
elt_replay(PG_FUNCTION_ARGS)
{
	int64		run_id;
	char	   *into;
	char	   *sandbox;
	char	   *manifest;
	Oid			role;
	char	   *kind;
	EltAsRole	ra;
	List	   *rels;
	List	   *steps;
	List	   *done = NIL;
	int64		replay_id;
	char	   *fingerprint;
	TimestampTz clock;
	TimestampTz started = GetCurrentTimestamp();
	int64		seed;
	char	   *pipeline_name;
	char	   *params;
	char	   *policy;
	int			guc_level;
	EltCatalogWrite cw;
	bool		isnull;
	ListCell   *lc;
	char	   *id;
	bool		imported;
	bool		trust_imported;
	MemoryContext fn = CurrentMemoryContext;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("run_id must not be null")));
	EltRequireCatalog("run_manifests");
	run_id = PG_GETARG_INT64(0);
	into = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	trust_imported = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	sandbox = (PG_NARGS() > 3 && !PG_ARGISNULL(3)) ? pstrdup(NameStr(*PG_GETARG_NAME(3))) : NULL;
	if (into != NULL && sandbox != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("into_schema and sandbox cannot both be given"),
				 errhint("into_schema makes a new schema from the run's snapshots; sandbox runs the steps over an existing sandbox's copies.")));
	if (into != NULL && (into[0] == '\0' || strlen(into) >= NAMEDATALEN))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid into_schema \"%s\"", into),
				 errhint("Name a new schema (at most 63 bytes), or pass NULL for elt_replay_<id>.")));
	if (EltPipelineRunId() != 0 || EltInTransformRun())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.replay() cannot be called inside a run"),
				 errhint("End the run with elt.run_end() first.")));
	manifest = EltLoadManifest(run_id, &role, &imported, true);
	if (imported && !trust_imported)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("run " INT64_FORMAT " was imported: replaying it runs its SQL as you", run_id),
				 errdetail("An imported manifest's SQL, search_path and column defaults come from another database; its id proves only that it is intact, not who wrote it."),
				 errhint("Read its steps with elt.run_manifest(); if you trust them, call elt.replay(run_id, into_schema, trust_imported => true).")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT m -> 'run' ->> 'kind' AS kind, m -> 'run' ->> 'pipeline' AS pipeline,"
							  " coalesce(m -> 'run' -> 'params', '{}')::text AS params,"
							  " (m -> 'run' ->> 'clock')::pg_catalog.timestamptz AS clock,"
							  " (m -> 'run' ->> 'random_seed')::pg_catalog.int8 AS seed,"
							  " m -> 'run' ->> 'snapshot_policy' AS policy"
							  " FROM (SELECT $1::pg_catalog.jsonb AS m) s",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(manifest)}, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading the manifest failed");
	kind = EltSpiGetText(0, "kind") ? MemoryContextStrdup(fn, EltSpiGetText(0, "kind")) : NULL;
	if (kind != NULL && strcmp(kind, "replay") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("run " INT64_FORMAT " is a replay", run_id),
				 errhint("Replay the original run.")));
	if (kind != NULL && strcmp(kind, "sandbox") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("run " INT64_FORMAT " ran in a sandbox", run_id),
				 errhint("Run it again with elt.transform_run(name, sandbox => ...): its manifest has the SQL and the sandbox.")));
	pipeline_name = MemoryContextStrdup(TopTransactionContext, EltSpiGetText(0, "pipeline"));
	params = MemoryContextStrdup(TopTransactionContext, EltSpiGetText(0, "params"));
	policy = MemoryContextStrdup(TopTransactionContext, EltSpiGetText(0, "policy"));
	clock = DatumGetTimestampTz(EltSpiGetDatum(0, "clock", &isnull));
	seed = EltSpiGetInt64(0, "seed", &isnull);
	SPI_finish();

	/* steps and relations, read into this function's context */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	steps = replay_steps(manifest, run_id, fn);
	/* in a sandbox the steps read its copies, not the run's snapshots */
	rels = sandbox != NULL ? NIL : replay_relations(manifest, run_id, fn);
	SPI_finish();

	/* the role whose SQL it is: the replay runs as that role, or not at all */
	role = replay_role(run_id, role, kind, imported, steps);

	if (sandbox != NULL)
	{
		guc_level = NewGUCNestLevel();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		apply_recorded_settings(manifest, run_id);
		SPI_finish();
		replay_id = replay_in_sandbox(run_id, sandbox, steps, role, pipeline_name, params, clock, seed, started);
		AtEOXact_GUC(true, guc_level);
		PG_RETURN_INT64(replay_id);
	}

	/* the snapshots first: a missing one is an error naming what is missing */
	foreach(lc, rels)
	{
		ReplayRel  *r = lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, r->inputs)
		{
			ReplayInput *in = lfirst(lc2);

			in->storage = snapshot_storage(in, role);
			if (in->storage == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("run " INT64_FORMAT " cannot be replayed: snapshot %s of %s (read by step %d) is missing",
								run_id, in->snapshot_id, r->relation, in->step),
						 errdetail("No snapshot readable by role \"%s\", the run's role, has its checksum %s.",
								   GetUserNameFromId(role, false), in->snapshot_checksum),
						 errhint("It was dropped with force, or the manifest was imported without its snapshots.")));
		}
	}

	guc_level = NewGUCNestLevel();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	apply_recorded_settings(manifest, run_id);
	SPI_finish();
	/* Citus puts the new schema on the workers with its first distributed copy (ended with guc_level) */
	foreach(lc, rels)
	{
		if (((ReplayRel *) lfirst(lc))->dist_method != NULL)
		{
			(void) EltCitusSequentialForSchema(InvalidOid);
			break;
		}
	}

	EltCatalogWriteBegin(&cw);
	replay_id = EltDrawRunId();
	EltCatalogWriteEnd(&cw);
	if (into == NULL)
		into = psprintf("elt_replay_" INT64_FORMAT, replay_id);
	if (OidIsValid(get_namespace_oid(into, true)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_SCHEMA),
				 errmsg("schema \"%s\" already exists", into),
				 errhint("A replay writes into a new schema: name another, or drop that one first.")));

	/*
	 * The sandbox schema, made by the caller for the role (CREATE on the
	 * database is the caller's; the caller has the role's privileges), then
	 * its tables, made and filled as the role, and the steps.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	EltSpiExec(psprintf("CREATE SCHEMA %s AUTHORIZATION %s", quote_identifier(into),
						quote_identifier(GetUserNameFromId(role, false))));
	SPI_finish();
	CommandCounterIncrement();

	/*
	 * As the run's role, restricted, also when the caller is that role: the
	 * sandbox's tables, their filling from the snapshots, the steps and the
	 * checksums of what they read and wrote are that role's doing, and the
	 * SQL, column defaults and functions never run with the caller's
	 * privileges nor leave anything in the caller's session.
	 */
	EltAsRoleBegin(&ra, role, NULL, true);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, rels)
	{
		ReplayRel  *r = lfirst(lc);

		r->sandbox_schema = into;
		r->sandbox_name = MemoryContextStrdup(fn, sandbox_name(rels, r));
		r->sandbox = MemoryContextStrdup(fn, quote_qualified_identifier(into, r->sandbox_name));
		if (r->output_shape != NULL)
		{
			EltSpiExec(sandbox_table_sql(r));
			CommandCounterIncrement();
			r->sandbox_oid = RangeVarGetRelid(makeRangeVar(into, r->sandbox_name, -1), NoLock, false);
			distribute_copy(r, rels);
		}
		/* the rows the first step that read it found */
		if (r->inputs != NIL)
			load_sandbox(r, linitial(r->inputs), rels);
	}
	SPI_finish();

	foreach(lc, steps)
	{
		EltRunStep *st = palloc0(sizeof(EltRunStep));

		replay_step(lfirst(lc), rels, into, clock, st, replay_id);
		done = lappend(done, st);
	}
	EltAsRoleEnd(&ra);
	AtEOXact_GUC(true, guc_level);

	fingerprint = EltCurrentFingerprint();
	EltCatalogWriteBegin(&cw);
	/* a run of the role the code ran as; the audit row names the caller */
	EltInsertRun(replay_id, pipeline_name, "replay",
			   DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(params))),
			   "checksum", clock, seed, fingerprint, role, started, run_id, into, false);
	foreach(lc, done)
		EltInsertStep(replay_id, lfirst(lc), 0);
	id = EltStoreManifest(replay_id, GetCurrentTimestamp());
	{
		EltJson		extra;

		EltAuditRunBegin(&extra, run_id);
		EltJsonInt(&extra, "replay_id", replay_id);
		EltJsonString(&extra, "sandbox", into);
		EltJsonString(&extra, "manifest_id", id);
		EltJsonString(&extra, "snapshot_policy", policy ? policy : "none");
		EltAuditRun(cw.actor, "replay", pipeline_name, &extra);
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(replay_id);
}

/* ---------------------------------------------------------------------
 * Verification
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(elt_verify_replay);

/*
 * elt.verify_replay(original bigint, replay bigint, numeric_tolerance
 * float8 DEFAULT 0): the checks of elt._verify_replay(), audited.  They
 * read the replay's sandbox, which belongs to the replay's role, and the
 * run's relations, so they run as that role (restricted, as the replay
 * did): what that role has put there — a view in place of a sandbox table,
 * a row-level security policy — never runs with the caller's privileges.
 * The caller needs the privileges of the replay's role (load_manifest).
 */
Datum
elt_verify_replay(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		original,
				replay;
	double		tolerance;
	uint64		i,
				failed = 0,
				n;
	Oid			role;
	EltAsRole	ra;
	EltCatalogWrite cw;
	MemoryContext per_query;
	MemoryContext old;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("original and replay must not be null"),
				 errhint("Pass the run and its replay: elt.verify_replay(run_id, elt.replay(run_id)).")));
	EltRequireCatalog("run_manifests");
	original = PG_GETARG_INT64(0);
	replay = PG_GETARG_INT64(1);
	tolerance = PG_ARGISNULL(2) ? 0 : PG_GETARG_FLOAT8(2);
	if (isnan(tolerance) || isinf(tolerance) || tolerance < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("numeric_tolerance must be zero or a positive finite number"),
				 errhint("For example 1e-9: numbers that differ by at most that count as equal.")));
	(void) EltLoadManifest(replay, &role, NULL, true);
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("replay " INT64_FORMAT " cannot be verified: its role no longer exists", replay),
				 errdetail("It belongs to the role with OID %u, which has been dropped. "
						   "A replay's sandbox is read as the replay's role, never as another.", role),
				 errhint("Compare the manifests instead: elt.run_manifest(" INT64_FORMAT ") and elt.run_manifest(" INT64_FORMAT ").",
						 original, replay)));
	InitMaterializedSRF(fcinfo, 0);
	per_query = rsinfo->econtext->ecxt_per_query_memory;

	EltAsRoleBegin(&ra, role, NULL, true);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT check_name, relation, expected, actual, ok"
							  " FROM elt._verify_replay($1, $2, $3)",
							  3, (Oid[]) {INT8OID, INT8OID, FLOAT8OID},
							  (Datum[]) {Int64GetDatum(original), Int64GetDatum(replay), Float8GetDatum(tolerance)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "verifying the replay failed");
	n = SPI_processed;
	old = MemoryContextSwitchTo(per_query);
	for (i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5];
		int			c;

		for (c = 0; c < 5; c++)
		{
			values[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1, &nulls[c]);
			if (!nulls[c] && c < 4)
				values[c] = PointerGetDatum(PG_DETOAST_DATUM_COPY(values[c]));
		}
		if (nulls[4] || !DatumGetBool(values[4]))
			failed++;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	EltAsRoleEnd(&ra);

	EltCatalogWriteBegin(&cw);
	{
		EltJson		extra;

		EltAuditRunBegin(&extra, original);
		EltJsonInt(&extra, "replay_id", replay);
		EltJsonInt(&extra, "checks", (int64) n);
		EltJsonInt(&extra, "failed", (int64) failed);
		EltJsonRaw(&extra, "numeric_tolerance", psprintf("%g", tolerance));
		EltAuditRun(cw.actor, "verify_replay", NULL, &extra);
	}
	EltCatalogWriteEnd(&cw);
	return (Datum) 0;
}
