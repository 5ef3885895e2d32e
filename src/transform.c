/*
 * transform.c — versioned SQL transforms: their SQL API and catalog.
 *
 * A transform is a named SELECT that feeds a target table in one of three
 * modes (append, replace, merge).  Each edit is an immutable version with
 * the SHA-256 of its normalized SQL (EltNormalizeSql, util_sql.c).  This
 * file owns elt.transform_create() and elt.transform_update(), the checks
 * of a query against its target, and loading a transform's current
 * version; running one is transform_run.c's, which uses those checks
 * (EltTransformCheckTarget, EltTransformLoad, ...).
 *
 * Layering: an engine; it calls lineage.c (analysis), roles.c, audit and util,
 * never transform_run.c or manifest.c.
 *
 * Locking: new versions lock the transform's row (SELECT ... FOR UPDATE
 * in EltTransformLoad).
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "audit.h"
#include "lineage.h"
#include "roles.h"
#include "transform.h"
#include "util.h"

/* ---------------------------------------------------------------------
 * Checking a query against its target
 * ---------------------------------------------------------------------
 */

/* Check that the query can write the target in the mode; fill ti. */
void
EltTransformCheckTarget(Query *q, Oid target, const char *mode, bool row_lineage, EltTargetInfo *ti,
			 char **blocker)
{
	Relation	rel = table_open(target, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	ListCell   *lc;
	int			i;
	bool	   *written = palloc0(sizeof(bool) * (desc->natts + 1));

	memset(ti, 0, sizeof(*ti));
	ti->relname = EltRelDisplayName(target);
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		AttrNumber	attnum;
		Form_pg_attribute att;
		Oid			srctype = exprType((Node *) tle->expr);

		if (tle->resjunk)
			continue;
		if (tle->resname == NULL || strcmp(tle->resname, "?column?") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("output column %d of the transform's SQL has no name", tle->resno),
					 errhint("Name it after the target column it fills, with AS.")));
		attnum = get_attnum(target, tle->resname);
		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("output column \"%s\" matches no column of the target %s",
							tle->resname, ti->relname),
					 errhint("Output columns are matched to target columns by name.")));
		att = TupleDescAttr(desc, attnum - 1);
		if (written[attnum])
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("output column \"%s\" appears more than once", tle->resname)));
		written[attnum] = true;
		if (att->attgenerated)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" of %s is a generated column and cannot be written",
							tle->resname, ti->relname)));
		if (!can_coerce_type(1, &srctype, &att->atttypid, COERCION_ASSIGNMENT))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("output column \"%s\" has type %s, which cannot be assigned to column \"%s\" of %s (type %s)",
							tle->resname, format_type_be(srctype), tle->resname, ti->relname,
							format_type_be(att->atttypid))));
		ti->columns = lappend(ti->columns, pstrdup(tle->resname));
	}
	if (ti->columns == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the transform's SQL has no output columns")));
	for (i = 1; i <= desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i - 1);

		if (att->attisdropped || written[i] || !att->attnotnull || att->atthasdef ||
			att->attidentity || att->attgenerated)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("column \"%s\" of %s is NOT NULL without a default, and the SQL does not write it",
						NameStr(att->attname), ti->relname),
				 errhint("Add an output column named \"%s\".", NameStr(att->attname))));
	}

	ti->pk = EltPrimaryKeyColumns(rel);
	if (strcmp(mode, "merge") == 0)
	{
		if (ti->pk == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("merge mode needs a primary key on the target %s", ti->relname),
					 errdetail("Rows are merged on the primary key.")));
		foreach(lc, ti->pk)
			if (!written[lfirst_int(lc)])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("merge mode needs the primary key column \"%s\" of %s in the output",
								NameStr(TupleDescAttr(desc, lfirst_int(lc) - 1)->attname), ti->relname)));
	}
	if (row_lineage)
	{
		if (ti->pk == NIL)
			*blocker = psprintf("the target %s has no primary key, and row lineage identifies target rows by primary key",
								ti->relname);
		else
		{
			ti->key_text = !(list_length(ti->pk) == 1 &&
							 EltIntegerKeyType(TupleDescAttr(desc, linitial_int(ti->pk) - 1)->atttypid));
			foreach(lc, ti->pk)
			{
				Form_pg_attribute att = TupleDescAttr(desc, lfirst_int(lc) - 1);

				if (written[att->attnum])
				{
					ti->pk_exprs = lappend(ti->pk_exprs, pstrdup(NameStr(att->attname)));
					ti->pk_defaults = lappend(ti->pk_defaults, NULL);
				}
				else
				{
					Node	   *def = build_column_default(rel, att->attnum);

					if (def == NULL)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("primary key column \"%s\" of %s has no default, and the SQL does not write it",
										NameStr(att->attname), ti->relname)));
					ti->pk_exprs = lappend(ti->pk_exprs, NULL);
					ti->pk_defaults = lappend(ti->pk_defaults,
											  deparse_expression(def, NIL, false, false));
					if (att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS)
						ti->override = true;
				}
			}
		}
	}
	table_close(rel, AccessShareLock);
}

/* Check the caller's privileges on the target for the mode. */
void
EltTransformCheckPrivileges(Oid target, const char *relname, const char *mode, Oid actor)
{
	AclMode		need = ACL_INSERT;

	if (strcmp(mode, "merge") == 0)
		need |= ACL_UPDATE;
	else if (strcmp(mode, "replace") == 0)
		need |= ACL_DELETE;
	if (pg_class_aclcheck(target, actor, need) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to write %s in %s mode", relname, mode),
				 errdetail("Mode %s needs %s on the target.", mode,
						   strcmp(mode, "merge") == 0 ? "INSERT and UPDATE"
						   : strcmp(mode, "replace") == 0 ? "INSERT and DELETE" : "INSERT")));
}

/* Check the caller may read every source of the query. */
static void
check_source_privileges(List *sources, Oid actor)
{
	ListCell   *lc;

	foreach(lc, sources)
	{
		Oid			relid = lfirst_oid(lc);

		if (pg_class_aclcheck(relid, actor, ACL_SELECT) != ACLCHECK_OK &&
			pg_attribute_aclcheck_all(relid, actor, ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to read %s", EltRelDisplayName(relid)),
					 errhint("A transform may read only what its creator may read.")));
	}
}

/* Warn about functions whose results depend on when the transform runs. */
static void
warn_nondeterministic(const char *name, List *funcs)
{
	StringInfoData buf;
	ListCell   *lc;

	if (funcs == NIL)
		return;
	initStringInfo(&buf);
	foreach(lc, funcs)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, (char *) lfirst(lc));
	}
	ereport(WARNING,
			(errmsg("transform \"%s\" calls %s, so its results depend on when it runs",
					name, buf.data),
			 errhint("Use elt.now() for the run's clock and elt.random() for random numbers: both are fixed per run, so a run can be reproduced.")));
}

/* ---------------------------------------------------------------------
 * Catalog
 * ---------------------------------------------------------------------
 */

static void
transform_from_spi(EltTransform *t, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	bool		isnull;

	t->id = EltSpiGetInt64(0, "transform_id", &isnull);
	t->name = EltSpiGetText(0, "name");
	t->target = (Oid) EltSpiGetInt64(0, "target", &isnull);
	t->mode = EltSpiGetText(0, "mode");
	t->lineage = EltSpiGetText(0, "lineage");
	t->keep_runs = (int) EltSpiGetInt64(0, "keep_runs", &isnull);
	if (isnull)
		t->keep_runs = 0;
	t->owner = EltSpiGetText(0, "owner");
	t->version = (int) EltSpiGetInt64(0, "version", &isnull);
	t->sql = EltSpiGetText(0, "sql");
	t->code_hash = EltSpiGetText(0, "code_hash");
	t->search_path = EltSpiGetText(0, "search_path");
	t->lineage_level = EltSpiGetText(0, "lineage_level");
	MemoryContextSwitchTo(old);
}

/* Load a transform and its current version (inside a catalog write). */
void
EltTransformLoad(EltTransform *t, const char *name, bool for_update, MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_locked = NULL;
	Oid			types[1] = {TEXTOID};
	Datum		arg = CStringGetTextDatum(name);
	const char *sql =
	"SELECT d.transform_id, d.name, d.target::oid AS target, d.mode, d.lineage, d.keep_runs,"
	" d.owner::text AS owner, c.version, c.sql, c.code_hash, c.search_path, c.lineage_level"
	" FROM elt.transform_defs d"
	" JOIN LATERAL (SELECT * FROM elt.transform_code v WHERE v.transform_id = d.transform_id"
	"               ORDER BY v.version DESC LIMIT 1) c ON true"
	" WHERE d.name = $1";

	if (for_update)
	{
		/* not FOR UPDATE: a failed run's recorder checks its key meanwhile */
		EltPrepare(&plan_locked, psprintf("%s FOR NO KEY UPDATE OF d", sql), 1, types);
		EltExecLatest(plan_locked, &arg, NULL, 1);
	}
	else
	{
		EltPrepare(&plan, sql, 1, types);
		EltExecLatest(plan, &arg, NULL, 1);
	}
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("transform \"%s\" does not exist", name),
				 errhint("See elt.transforms for the transforms that exist.")));
	transform_from_spi(t, cxt);
}

/* Build an oid[] and a text[] of the sources' names. */
static void
source_arrays(List *sources, Datum *oids, Datum *names)
{
	int			n = list_length(sources);
	Datum	   *o = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *s = palloc(sizeof(Datum) * Max(n, 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, sources)
	{
		Oid			relid = lfirst_oid(lc);

		o[i] = ObjectIdGetDatum(relid);
		s[i] = CStringGetTextDatum(EltRelDisplayName(relid));
		i++;
	}
	*oids = PointerGetDatum(construct_array(o, n, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT));
	*names = PointerGetDatum(construct_array(s, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Insert one version and its column lineage (inside a catalog write). */
static void
insert_version(int64 transform_id, int version, const char *sql, const char *hash,
			   const char *search_path, EltLineageInfo *info, const char *level,
			   const char *note, Oid actor)
{
	static SPIPlanPtr vplan = NULL;
	static SPIPlanPtr cplan = NULL;
	Oid			vtypes[10] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	REGCLASSARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		v[10];
	char		n[10];
	Oid			ctypes[7] = {INT8OID, INT4OID, NAMEOID, REGCLASSOID, TEXTOID, NAMEOID, TEXTOID};
	ListCell   *lc;
	Datum	   *nd;
	int			i = 0;

	EltPrepare(&vplan,
			   "INSERT INTO elt.transform_code (transform_id, version, sql, code_hash, search_path,"
			   " lineage_level, lineage_note, sources, source_names, nondeterministic, created_by, created_at)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, session_user, pg_catalog.now())",
			   10, vtypes);
	memset(n, ' ', sizeof(n));
	v[0] = Int64GetDatum(transform_id);
	v[1] = Int32GetDatum(version);
	v[2] = CStringGetTextDatum(sql);
	v[3] = CStringGetTextDatum(hash);
	v[4] = CStringGetTextDatum(search_path);
	v[5] = CStringGetTextDatum(level);
	if (note)
		v[6] = CStringGetTextDatum(note);
	else
		n[6] = 'n';
	source_arrays(info->sources, &v[7], &v[8]);
	nd = palloc(sizeof(Datum) * Max(list_length(info->nondeterministic), 1));
	foreach(lc, info->nondeterministic)
		nd[i++] = CStringGetTextDatum((char *) lfirst(lc));
	v[9] = PointerGetDatum(construct_array(nd, i, TEXTOID, -1, false, TYPALIGN_INT));
	EltExec(vplan, v, n, 0);

	EltPrepare(&cplan,
			   "INSERT INTO elt.lineage_columns (transform_id, version, target_column, source_rel,"
			   " source_name, source_column, kind) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			   7, ctypes);
	foreach(lc, info->columns)
	{
		EltColumnEdge *e = lfirst(lc);
		Datum		cv[7];
		char		cn[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

		cv[0] = Int64GetDatum(transform_id);
		cv[1] = Int32GetDatum(version);
		if (e->target_column)
			cv[2] = DirectFunctionCall1(namein, CStringGetDatum(e->target_column));
		else
			cn[2] = 'n';
		cv[3] = ObjectIdGetDatum(e->relid);
		cv[4] = CStringGetTextDatum(e->relname);
		cv[5] = DirectFunctionCall1(namein, CStringGetDatum(e->column));
		cv[6] = CStringGetTextDatum(e->kind);
		EltExec(cplan, cv, cn, 0);
	}
}

/* Begin the audit details of a transform action; the caller adds its own and finishes. */
void
EltTransformDetails(EltJson *d, int64 id, const char *target, int version, const char *hash)
{
	EltJsonBegin(d);
	EltJsonInt(d, "transform_id", id);
	EltJsonString(d, "target", target);
	EltJsonInt(d, "version", version);
	EltJsonString(d, "code_hash", hash);
}

/* Options of elt.transform_create(): lineage and keep_runs. */
static void
parse_options(Jsonb *options, char **lineage, int *keep_runs)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	*lineage = "row";
	*keep_runs = 0;
	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			if (strcmp(key, "lineage") == 0)
			{
				if (v.type != jbvString ||
					!((v.val.string.len == 3 && strncmp(v.val.string.val, "row", 3) == 0) ||
					  (v.val.string.len == 5 && strncmp(v.val.string.val, "table", 5) == 0)))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"lineage\" must be \"row\" or \"table\"")));
				*lineage = pnstrdup(v.val.string.val, v.val.string.len);
			}
			else if (strcmp(key, "keep_runs") == 0)
			{
				int64		n = 0;

				if (v.type != jbvNumeric ||
					(n = DatumGetInt64(DirectFunctionCall1(numeric_int8,
														   NumericGetDatum(v.val.numeric)))) < 1 ||
					n > INT_MAX)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"keep_runs\" must be a positive integer"),
							 errdetail("It is how many of the transform's latest runs keep their row lineage.")));
				*keep_runs = (int) n;
			}
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown option \"%s\"", key),
						 errhint("Valid options: \"lineage\" (\"row\" or \"table\"), \"keep_runs\" (a positive integer).")));
		}
	}
}

/*
 * Analyze a transform's SQL for a version: shape against the target,
 * privileges, lineage level.  Returns the lineage info; *level and *note
 * say what lineage the version supports.
 */
static EltLineageInfo *
analyze_version(const char *name, const char *sql, Oid target, const char *mode,
				const char *lineage, char **level, char **note, EltTargetInfo *ti)
{
	EltLineageInfo *info = EltLineageAnalyze(sql, true);
	char	   *target_blocker = NULL;

	EltTransformCheckTarget(info->query, target, mode, true, ti, &target_blocker);
	EltTransformCheckPrivileges(target, ti->relname, mode, GetUserId());
	check_source_privileges(info->sources, GetUserId());
	if (target_blocker != NULL && info->row_ok)
	{
		info->row_ok = false;
		info->blocker = target_blocker;
		info->blocker_hint = "Add a primary key to the target, or create the transform with options => '{\"lineage\": \"table\"}'.";
	}
	if (info->row_ok)
	{
		*level = "row";
		*note = NULL;
	}
	else if (strcmp(lineage, "row") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("row lineage cannot be recorded for transform \"%s\": %s", name, info->blocker),
				 info->blocker_hint ? errhint("%s", info->blocker_hint) : 0));
	else
	{
		*level = "table";
		*note = info->blocker;
	}
	return info;
}

PG_FUNCTION_INFO_V1(elt_transform_create);

/* elt.transform_create(name, target, sql, mode, options) */
Datum
elt_transform_create(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr exists_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	char	   *name;
	Oid			target;
	char	   *sql;
	char	   *mode;
	Jsonb	   *options;
	char	   *lineage;
	int			keep_runs;
	char	   *level;
	char	   *note;
	EltTargetInfo	ti;
	EltLineageInfo *info;
	char		hash[ELT_SHA256_HEX_LEN + 1];
	char	   *norm;
	char	   *search_path;
	EltCatalogWrite cw;
	EltJson		d;
	Oid			itypes[7] = {TEXTOID, OIDOID, TEXTOID, TEXTOID, INT4OID, JSONBOID, NAMEOID};
	Datum		v[7];
	char		n[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Oid			ntypes[1] = {TEXTOID};
	Datum		arg;
	int64		id;
	bool		isnull;
	char		relkind;

	EltRequireCatalog("transform_defs");
	name = EltRequiredText(fcinfo, 0, "name");
	EltCheckObjectName("transform", name);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target must not be null")));
	target = PG_GETARG_OID(1);
	sql = EltRequiredText(fcinfo, 2, "sql");
	mode = PG_ARGISNULL(3) ? "append" : text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (strcmp(mode, "append") != 0 && strcmp(mode, "replace") != 0 && strcmp(mode, "merge") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid mode \"%s\"", mode),
				 errhint("Modes: \"append\" (insert), \"replace\" (the whole target), \"merge\" (upsert on the primary key).")));
	options = PG_ARGISNULL(4)
		? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))
		: PG_GETARG_JSONB_P(4);
	parse_options(options, &lineage, &keep_runs);

	relkind = get_rel_relkind(target);
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", target)));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table", EltRelDisplayName(target)),
				 errhint("A transform writes a table or a partitioned table.")));
	if (get_rel_persistence(target) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a transform cannot write temporary table %s", quote_identifier(get_rel_name(target))),
				 errdetail("Transforms are run from other sessions too (backfills, pg_cron), which cannot see it.")));

	info = analyze_version(name, sql, target, mode, lineage, &level, &note, &ti);
	warn_nondeterministic(name, info->nondeterministic);
	norm = EltNormalizeSql(sql);
	EltSha256Hex(norm, strlen(norm), hash);
	search_path = GetConfigOptionByName("search_path", NULL, false);

	EltCatalogWriteBegin(&cw);
	EltPrepare(&exists_plan, "SELECT 1 FROM elt.transform_defs WHERE name = $1", 1, ntypes);
	arg = CStringGetTextDatum(name);
	EltExecLatest(exists_plan, &arg, NULL, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("transform \"%s\" already exists", name),
				 errhint("Add a version with elt.transform_update(), or choose another name.")));
	EltPrepare(&insert_plan,
			   "INSERT INTO elt.transform_defs (name, target, mode, lineage, keep_runs, options, owner, created_at)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, pg_catalog.now()) RETURNING transform_id",
			   7, itypes);
	v[0] = CStringGetTextDatum(name);
	v[1] = ObjectIdGetDatum(target);
	v[2] = CStringGetTextDatum(mode);
	v[3] = CStringGetTextDatum(lineage);
	if (keep_runs > 0)
		v[4] = Int32GetDatum(keep_runs);
	else
		n[4] = 'n';
	v[5] = JsonbPGetDatum(options);
	v[6] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(cw.actor, false)));
	EltExec(insert_plan, v, n, 0);
	id = EltSpiGetInt64(0, "transform_id", &isnull);
	insert_version(id, 1, sql, hash, search_path, info, level, note, cw.actor);
	EltTransformDetails(&d, id, ti.relname, 1, hash);
	EltJsonString(&d, "mode", mode);
	EltJsonString(&d, "lineage", level);
	EltAuditRecord(cw.actor, "transform_create", name, EltJsonFinish(&d), EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(id);
}

/* Only the transform's owner role, its members and superusers may change it. */
void
EltTransformCheckOwner(EltTransform *t, Oid actor, const char *verb)
{
	Oid			owner;

	if (superuser_arg(actor))
		return;
	owner = get_role_oid(t->owner, true);
	if (!EltRoleMayActAs(actor, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for transform \"%s\"", t->name),
				 errdetail("It belongs to role \"%s\".", t->owner),
				 errhint("Only the role that created a transform, the members of that role and superusers may %s it.",
						 verb)));
}

/*
 * Stop when the transform's target was dropped.  A transform writes one
 * table for its whole life (elt.transform_defs keeps its OID), so neither
 * a run nor a new version can do anything for it; say so before anything
 * is recorded.
 */
void
EltTransformRequireTarget(EltTransform *t)
{
	if (get_rel_relkind(t->target) == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the target table of transform \"%s\" no longer exists", t->name),
				 errdetail("The table it wrote was dropped; a new table of the same name is another table."),
				 errhint("A transform writes one table for its whole life: create a transform with another name for the new table.")));
}

PG_FUNCTION_INFO_V1(elt_transform_update);

/* elt.transform_update(name, sql): a new version, unless the code is unchanged. */
Datum
elt_transform_update(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *sql;
	EltTransform	t;
	char	   *level;
	char	   *note;
	EltTargetInfo	ti;
	EltLineageInfo *info;
	char		hash[ELT_SHA256_HEX_LEN + 1];
	char	   *norm;
	char	   *search_path;
	EltCatalogWrite cw;
	EltJson		d;
	MemoryContext cxt = CurrentMemoryContext;
	int			version;

	EltRequireCatalog("transform_defs");
	name = EltRequiredText(fcinfo, 0, "name");
	sql = EltRequiredText(fcinfo, 1, "sql");

	EltCatalogWriteBegin(&cw);
	EltTransformLoad(&t, name, true, cxt);
	EltCatalogWriteEnd(&cw);
	EltTransformCheckOwner(&t, GetUserId(), "change");
	EltTransformRequireTarget(&t);

	info = analyze_version(name, sql, t.target, t.mode, t.lineage, &level, &note, &ti);
	warn_nondeterministic(name, info->nondeterministic);
	norm = EltNormalizeSql(sql);
	EltSha256Hex(norm, strlen(norm), hash);
	search_path = GetConfigOptionByName("search_path", NULL, false);

	/* the current version again, now that the row lock is held */
	EltCatalogWriteBegin(&cw);
	EltTransformLoad(&t, name, false, cxt);
	if (strcmp(hash, t.code_hash) == 0)
	{
		EltCatalogWriteEnd(&cw);
		ereport(NOTICE,
				(errmsg("transform \"%s\" is unchanged at version %d", name, t.version),
				 errdetail("The SQL differs from the current version's only in comments, whitespace or case.")));
		PG_RETURN_INT32(t.version);
	}
	version = t.version + 1;

	insert_version(t.id, version, sql, hash, search_path, info, level, note, cw.actor);
	EltTransformDetails(&d, t.id, ti.relname, version, hash);
	EltJsonString(&d, "previous_hash", t.code_hash);
	EltJsonString(&d, "lineage", level);
	EltAuditRecord(cw.actor, "transform_update", name, EltJsonFinish(&d), EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT32(version);
}
