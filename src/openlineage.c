/*
 * openlineage.c — a transform run as an OpenLineage RunEvent.
 *
 * elt.openlineage_event(run_id) builds the event from the catalog: the run,
 * the version's SQL, its sources and target with their current columns, and
 * the version's column lineage.  Datasets are named as OpenLineage names
 * PostgreSQL tables: namespace postgres://host:port, name db.schema.table.
 * The run id is a UUIDv7: the run's start time, then bits of the SHA-256 of
 * the cluster's system identifier, the database and the run number, so the
 * same run always gets the same id.  A failed run's error message (which
 * can quote the values that failed) is in the event only for the members of
 * the role that ran it or of the transform's owner, and elt_reader; others
 * get "failed".  Read-only; no locks beyond the reads.
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "lineage.h"
#include "openlineage.h"
#include "roles.h"
#include "util.h"

/* the producer of every event: this build's version (the control file's) */
#define ELT_OL_PRODUCER "https://github.com/elt-governance/elt_governance/tree/v" ELT_EXTVERSION

static char *elt_openlineage_namespace = NULL;

/* Define elt.openlineage_namespace. */
void
EltOpenLineageInit(void)
{
	DefineCustomStringVariable("elt.openlineage_namespace",
							   "Namespace of the datasets and jobs in OpenLineage events.",
							   "Empty means postgres://<host name>:<port> of this server.",
							   &elt_openlineage_namespace,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
}

/* postgres://host:port, or the configured namespace. */
static char *
ol_namespace(void)
{
	char		host[256];

	if (elt_openlineage_namespace != NULL && elt_openlineage_namespace[0] != '\0')
		return pstrdup(elt_openlineage_namespace);
	if (gethostname(host, sizeof(host)) != 0)
		strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	return psprintf("postgres://%s:%d", host, PostPortNumber);
}

/* A UUIDv7 for a run: its start in milliseconds, then hashed bits. */
static char *
run_uuid(int64 run_id, int64 start_ms)
{
	char		seed[128];
	char		hex[ELT_SHA256_HEX_LEN + 1];
	char		out[37];
	char		digits[33];
	int			i,
				o;

	snprintf(seed, sizeof(seed), UINT64_FORMAT ":%u:" INT64_FORMAT,
			 GetSystemIdentifier(), MyDatabaseId, run_id);
	EltSha256Hex(seed, strlen(seed), hex);
	/* 48 bits of time, version 7, 12 bits, variant 10, 62 bits */
	snprintf(digits, sizeof(digits), "%012llx", (unsigned long long) (start_ms & UINT64CONST(0xFFFFFFFFFFFF)));
	digits[12] = '7';
	memcpy(digits + 13, hex, 3);
	digits[16] = "89ab"[(hex[3] >= 'a' ? hex[3] - 'a' + 10 : hex[3] - '0') & 3];
	memcpy(digits + 17, hex + 4, 15);
	digits[32] = '\0';
	for (i = 0, o = 0; i < 32; i++)
	{
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[o++] = '-';
		out[o++] = digits[i];
	}
	out[o] = '\0';
	return pstrdup(out);
}

static const char *event_sql =
"WITH run AS ("
"  SELECT r.*, d.name, d.target, c.sql, c.sources, c.source_names"
"  FROM elt.transform_runs r"
"  JOIN elt.transform_defs d ON d.transform_id = r.transform_id"
"  JOIN elt.transform_code c ON c.transform_id = r.transform_id AND c.version = r.version"
"  WHERE r.run_id = $1),"
" ds(rel, name) AS ("
"  SELECT s.rel, pg_catalog.current_database() || '.' || COALESCE(n.nspname || '.' || cl.relname, s.stored)"
"  FROM (SELECT u.rel::oid AS rel, u.stored FROM run, ROWS FROM (pg_catalog.unnest(run.sources), pg_catalog.unnest(run.source_names)) u(rel, stored)"
"        UNION SELECT run.target::oid, run.target::oid::text FROM run) s"
"  LEFT JOIN pg_catalog.pg_class cl ON cl.oid = s.rel"
"  LEFT JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace),"
" cols AS ("
"  SELECT lc.* FROM run JOIN elt.lineage_columns lc"
"    ON lc.transform_id = run.transform_id AND lc.version = run.version)"
" SELECT pg_catalog.jsonb_build_object("
"  'eventType', CASE WHEN run.status = 'succeeded' THEN 'COMPLETE' ELSE 'FAIL' END,"
"  'eventTime', pg_catalog.to_char(run.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
"  'producer', $3,"
"  'schemaURL', 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent',"
"  'run', pg_catalog.jsonb_build_object('runId', $4, 'facets',"
"     CASE WHEN run.status = 'failed' THEN pg_catalog.jsonb_build_object('errorMessage',"
"       pg_catalog.jsonb_build_object('_producer', $3,"
"         '_schemaURL', 'https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet',"
"         'message', CASE WHEN $5 THEN COALESCE(run.error, 'failed') ELSE 'failed' END,"
"         'programmingLanguage', 'SQL'))"
"     ELSE '{}'::jsonb END),"
"  'job', pg_catalog.jsonb_build_object('namespace', $2,"
"     'name', pg_catalog.current_database() || '.' || run.name,"
"     'facets', pg_catalog.jsonb_build_object('sql', pg_catalog.jsonb_build_object('_producer', $3,"
"        '_schemaURL', 'https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet',"
"        'query', run.sql))),"
"  'inputs', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
"        'namespace', $2, 'name', ds.name, 'facets', elt._ol_schema_facet(ds.rel, $3)) ORDER BY ds.name), '[]')"
"     FROM ds, pg_catalog.unnest(run.sources) s(rel) WHERE ds.rel = s.rel::oid),"
"  'outputs', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object("
"     'namespace', $2,"
"     'name', (SELECT ds.name FROM ds WHERE ds.rel = run.target::oid),"
"     'facets', elt._ol_schema_facet(run.target::oid, $3) || pg_catalog.jsonb_build_object('columnLineage',"
"        pg_catalog.jsonb_build_object('_producer', $3,"
"          '_schemaURL', 'https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet',"
"          'fields', (SELECT COALESCE(pg_catalog.jsonb_object_agg(f.target_column, f.v), '{}')"
"             FROM (SELECT cols.target_column, pg_catalog.jsonb_build_object('inputFields',"
"                     pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('namespace', $2,"
"                       'name', COALESCE((SELECT ds.name FROM ds WHERE ds.rel = cols.source_rel::oid), cols.source_name),"
"                       'field', cols.source_column,"
"                       'transformations', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object("
"                          'type', 'DIRECT', 'subtype', pg_catalog.upper(cols.kind))))"
"                     ORDER BY cols.source_name, cols.source_column)) AS v"
"                   FROM cols WHERE cols.target_column IS NOT NULL GROUP BY cols.target_column) f),"
"          'dataset', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('namespace', $2,"
"                       'name', COALESCE((SELECT ds.name FROM ds WHERE ds.rel = cols.source_rel::oid), cols.source_name),"
"                       'field', cols.source_column,"
"                       'transformations', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object("
"                          'type', 'INDIRECT', 'subtype', pg_catalog.upper(cols.kind))))"
"                     ORDER BY cols.source_name, cols.source_column, cols.kind), '[]')"
"             FROM cols WHERE cols.target_column IS NULL))),"
"     'outputFacets', pg_catalog.jsonb_build_object('outputStatistics', pg_catalog.jsonb_build_object("
"        '_producer', $3,"
"        '_schemaURL', 'https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet',"
"        'rowCount', COALESCE(run.rows_written, 0)))))"
" ) AS event FROM run";

PG_FUNCTION_INFO_V1(elt_openlineage_event);

/* elt.openlineage_event(run_id): the run as an OpenLineage RunEvent. */
Datum
elt_openlineage_event(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr find_plan = NULL;
	static SPIPlanPtr event_plan = NULL;
	Oid			ftypes[1] = {INT8OID};
	Oid			etypes[5] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	Datum		args[5];
	bool		shown;
	int64		run_id;
	int64		start_ms;
	bool		isnull;
	EltCatalogWrite cw;
	Jsonb	   *result;
	MemoryContext outer = CurrentMemoryContext;

	EltRequireCatalog("transform_runs");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("run_id must not be null")));
	run_id = PG_GETARG_INT64(0);

	EltCatalogWriteBegin(&cw);
	EltPrepare(&find_plan,
			   "SELECT (EXTRACT(epoch FROM r.started_at) * 1000)::int8 AS ms,"
			   " (SELECT o.oid FROM pg_catalog.pg_roles o WHERE o.rolname = r.role) AS runner,"
			   " (SELECT o.oid FROM pg_catalog.pg_roles o WHERE o.rolname = d.owner) AS owner"
			   " FROM elt.transform_runs r JOIN elt.transform_defs d ON d.transform_id = r.transform_id"
			   " WHERE r.run_id = $1", 1, ftypes);
	args[0] = Int64GetDatum(run_id);
	EltExecLatest(find_plan, args, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("transform run %lld does not exist", (long long) run_id),
				 errhint("See elt.transform_run_history for the runs recorded.")));
	start_ms = EltSpiGetInt64(0, "ms", &isnull);
	/* a failed run's error quotes what failed: for those who see the run's details */
	{
		Oid			runner = DatumGetObjectId(EltSpiGetDatum(0, "runner", &isnull));
		Oid			owner;

		if (isnull)
			runner = InvalidOid;
		owner = DatumGetObjectId(EltSpiGetDatum(0, "owner", &isnull));
		if (isnull)
			owner = InvalidOid;
		shown = EltRoleSeesRole(cw.actor, runner) || EltRoleSeesRole(cw.actor, owner);
	}

	EltPrepare(&event_plan, event_sql, 5, etypes);
	args[1] = CStringGetTextDatum(ol_namespace());
	args[2] = CStringGetTextDatum(ELT_OL_PRODUCER);
	args[3] = CStringGetTextDatum(run_uuid(run_id, start_ms));
	args[4] = BoolGetDatum(shown);
	EltExecLatest(event_plan, args, NULL, 1);
	{
		Datum		d = EltSpiGetDatum(0, "event", &isnull);
		MemoryContext old = MemoryContextSwitchTo(outer);

		result = DatumGetJsonbPCopy(d);
		MemoryContextSwitchTo(old);
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_JSONB_P(result);
}
