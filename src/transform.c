/*
 * transform.c — versioned SQL transforms and their runs.
 *
 * A transform is a named SELECT that feeds a target table in one of three
 * modes (append, replace, merge).  Each edit is an immutable version with
 * the SHA-256 of its normalized SQL.  elt.transform_run() runs the current
 * version in the caller's transaction and as the transform's owner (like a
 * view; restricted when the caller is another role): the target is written
 * with the owner's privileges, and a failed run leaves nothing.  A replay
 * runs a recorded step as the run's role (EltReplayStep, manifest.c).
 * Row lineage comes from the rewritten query (lineage.c) and is stored with
 * the run record as the extension's owner once the statement has run.
 *
 * A run executes in a subtransaction of the caller's transaction; when it
 * fails, the subtransaction is rolled back (no rows, no lineage) and a
 * short-lived background worker records the run as failed in a transaction
 * of its own, before the error goes on to the caller.
 *
 * Locking: replace mode takes SHARE ROW EXCLUSIVE on the target, so that two
 * replace runs of one target follow each other while readers go on; new
 * versions lock the transform's row.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "tcop/tcopprot.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "lineage.h"
#include "manifest.h"
#include "transform.h"
#include "util.h"

/* The run in progress in this backend, for elt.param(), elt.now(), elt.random(). */
typedef struct RunState
{
	int64		run_id;			/* drawn when the run is recorded */
	int64		seed;			/* of elt.random() */
	Jsonb	   *params;
	TimestampTz started_at;
	TimestampTz clock;			/* of elt.now(): the run's logical time */
	pg_prng_state prng;
} RunState;

static RunState *current_run = NULL;

/* A transform and its current version, copied out of SPI. */
typedef struct Transform
{
	int64		id;
	char	   *name;
	Oid			target;
	char	   *mode;
	char	   *lineage;
	int			keep_runs;		/* 0: keep all */
	char	   *owner;
	int			version;
	char	   *sql;
	char	   *code_hash;
	char	   *search_path;
	char	   *lineage_level;
} Transform;

/* What the target requires of the query, found while checking it. */
typedef struct TargetInfo
{
	char	   *relname;		/* qualified, quoted */
	List	   *columns;		/* names of the columns the query writes */
	List	   *pk;				/* attnums of the primary key */
	List	   *pk_exprs;		/* per pk column: output name, or NULL */
	List	   *pk_defaults;	/* per pk column not written: default SQL */
	bool		override;		/* a pk column is GENERATED ALWAYS */
	bool		key_text;		/* target key kept as text */
} TargetInfo;

/* ---------------------------------------------------------------------
 * Normalizing SQL for the code hash
 * ---------------------------------------------------------------------
 */

static bool
word_char(char c)
{
	return isalnum((unsigned char) c) || c == '_' || c == '$' || c == '"' ||
		c == '\'' || IS_HIGHBIT_SET(c);
}

static bool
op_char(char c)
{
	return strchr("+-*/<>=~!@#%^&|`?", c) != NULL;
}

/*
 * The SQL with comments removed, whitespace runs collapsed (and dropped
 * where no token boundary needs them), text outside quotes lower-cased (the
 * parser folds it anyway) and trailing semicolons removed.  Quoted
 * identifiers, string and dollar-quoted literals are kept as they are.
 */
char *
EltNormalizeSql(const char *sql)
{
	StringInfoData out;
	const char *p = sql;
	bool		pending_space = false;

	initStringInfo(&out);
	while (*p)
	{
		if (isspace((unsigned char) *p))
		{
			pending_space = true;
			p++;
			continue;
		}
		if (p[0] == '-' && p[1] == '-')
		{
			while (*p && *p != '\n')
				p++;
			pending_space = true;
			continue;
		}
		if (p[0] == '/' && p[1] == '*')
		{
			int			depth = 0;

			do
			{
				if (p[0] == '/' && p[1] == '*')
				{
					depth++;
					p += 2;
				}
				else if (p[0] == '*' && p[1] == '/')
				{
					depth--;
					p += 2;
				}
				else
					p++;
			} while (*p && depth > 0);
			pending_space = true;
			continue;
		}
		if (pending_space && out.len > 0)
		{
			char		prev = out.data[out.len - 1];

			if ((word_char(prev) && word_char(*p)) || (op_char(prev) && op_char(*p)))
				appendStringInfoChar(&out, ' ');
		}
		pending_space = false;

		if (*p == '\'' || *p == '"')
		{
			char		q = *p;
			bool		escapes = (q == '\'' && p > sql &&
								   (p[-1] == 'e' || p[-1] == 'E') &&
								   (p - 1 == sql || !word_char(p[-2])));

			appendStringInfoChar(&out, *p++);
			while (*p)
			{
				if (escapes && *p == '\\' && p[1])
				{
					appendStringInfoChar(&out, *p++);
					appendStringInfoChar(&out, *p++);
					continue;
				}
				if (*p == q)
				{
					appendStringInfoChar(&out, *p++);
					if (*p == q)
					{
						appendStringInfoChar(&out, *p++);
						continue;
					}
					break;
				}
				appendStringInfoChar(&out, *p++);
			}
			continue;
		}
		if (*p == '$' && (out.len == 0 || !word_char(out.data[out.len - 1]) ||
						  out.data[out.len - 1] == '$'))
		{
			/* a dollar quote: $tag$ ... $tag$ */
			const char *end = p + 1;

			while (*end && (isalnum((unsigned char) *end) || *end == '_'))
				end++;
			if (*end == '$' && !isdigit((unsigned char) p[1]))
			{
				int			taglen = end - p + 1;
				const char *close = strstr(end + 1, pnstrdup(p, taglen));

				if (close != NULL)
				{
					appendBinaryStringInfo(&out, p, close + taglen - p);
					p = close + taglen;
					continue;
				}
			}
		}
		appendStringInfoChar(&out, pg_tolower((unsigned char) *p));
		p++;
	}
	while (out.len > 0 && (out.data[out.len - 1] == ';' || out.data[out.len - 1] == ' '))
		out.data[--out.len] = '\0';
	return out.data;
}


/* ---------------------------------------------------------------------
 * Checking a query against its target
 * ---------------------------------------------------------------------
 */

/* Check that the query can write the target in the mode; fill ti. */
static void
check_target(Query *q, Oid target, const char *mode, bool row_lineage, TargetInfo *ti,
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
static void
check_target_privileges(Oid target, const char *relname, const char *mode, Oid actor)
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
transform_from_spi(Transform *t, MemoryContext cxt)
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
static void
transform_load(Transform *t, const char *name, bool for_update, MemoryContext cxt)
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

/* Audit details of a transform action. */
static char *
transform_details(int64 id, const char *target, int version, const char *hash, const char *extra)
{
	StringInfoData d;

	initStringInfo(&d);
	appendStringInfoChar(&d, '{');
	EltAppendJsonInt(&d, "transform_id", id);
	EltAppendJsonString(&d, "target", target);
	EltAppendJsonInt(&d, "version", version);
	EltAppendJsonString(&d, "code_hash", hash);
	if (extra)
		appendStringInfo(&d, ", %s", extra);
	appendStringInfoChar(&d, '}');
	return d.data;
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
				const char *lineage, char **level, char **note, TargetInfo *ti)
{
	EltLineageInfo *info = EltLineageAnalyze(sql, true);
	char	   *target_blocker = NULL;

	check_target(info->query, target, mode, true, ti, &target_blocker);
	check_target_privileges(target, ti->relname, mode, GetUserId());
	check_source_privileges(info->sources, GetUserId());
	if (target_blocker != NULL && info->row_ok)
	{
		info->row_ok = false;
		info->blocker = target_blocker;
		info->blocker_hint = "Add a primary key to the target, or create the transform with lineage => 'table'.";
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
	TargetInfo	ti;
	EltLineageInfo *info;
	char		hash[ELT_SHA256_HEX_LEN + 1];
	char	   *norm;
	char	   *search_path;
	EltCatalogWrite cw;
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
	EltAuditRecord(cw.actor, "transform_create", name,
				   transform_details(id, ti.relname, 1, hash,
									 psprintf("\"mode\": \"%s\", \"lineage\": \"%s\"", mode, level)),
				   EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(id);
}

/* Only the transform's owner role, its members and superusers may change it. */
static void
check_owner(Transform *t, Oid actor, const char *verb)
{
	Oid			owner;

	if (superuser_arg(actor))
		return;
	owner = get_role_oid(t->owner, true);
	if (!OidIsValid(owner) || !has_privs_of_role(actor, owner))
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
static void
require_target(Transform *t)
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
	Transform	t;
	char	   *level;
	char	   *note;
	TargetInfo	ti;
	EltLineageInfo *info;
	char		hash[ELT_SHA256_HEX_LEN + 1];
	char	   *norm;
	char	   *search_path;
	EltCatalogWrite cw;
	MemoryContext cxt = CurrentMemoryContext;
	int			version;

	EltRequireCatalog("transform_defs");
	name = EltRequiredText(fcinfo, 0, "name");
	sql = EltRequiredText(fcinfo, 1, "sql");

	EltCatalogWriteBegin(&cw);
	transform_load(&t, name, true, cxt);
	EltCatalogWriteEnd(&cw);
	check_owner(&t, GetUserId(), "change");
	require_target(&t);

	info = analyze_version(name, sql, t.target, t.mode, t.lineage, &level, &note, &ti);
	warn_nondeterministic(name, info->nondeterministic);
	norm = EltNormalizeSql(sql);
	EltSha256Hex(norm, strlen(norm), hash);
	search_path = GetConfigOptionByName("search_path", NULL, false);

	/* the current version again, now that the row lock is held */
	EltCatalogWriteBegin(&cw);
	transform_load(&t, name, false, cxt);
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
	EltAuditRecord(cw.actor, "transform_update", name,
				   transform_details(t.id, ti.relname, version, hash,
									 psprintf("\"previous_hash\": \"%s\", \"lineage\": \"%s\"",
											  t.code_hash, level)),
				   EltAuditReason(NULL));
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT32(version);
}

/* ---------------------------------------------------------------------
 * Runs
 * ---------------------------------------------------------------------
 */

/* Rows read so far in this transaction from relations (and their partitions). */
static int64
rows_read(List *sources)
{
	int64		total = 0;
	ListCell   *lc;

	foreach(lc, sources)
	{
		Oid			relid = lfirst_oid(lc);
		List	   *rels;
		ListCell   *lc2;

		if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
			rels = find_all_inheritors(relid, NoLock, NULL);
		else
			rels = list_make1_oid(relid);
		foreach(lc2, rels)
		{
			PgStat_TableStatus *st = find_tabstat_entry(lfirst_oid(lc2));

			if (st != NULL)
				total += st->t_counts.t_tuples_returned + st->t_counts.t_tuples_fetched;
		}
	}
	return total;
}

/* The type of a column with its modifier (char(4), numeric(10,2)), qualified. */
static char *
column_type(Oid relid, AttrNumber attnum)
{
	Oid			typid;
	int32		typmod;
	Oid			collid;

	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &collid);
	return format_type_extended(typid, typmod,
								FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
}

/* The expression of the target key over __elt_src: a bigint, or a value or row to print. */
static char *
target_key_sql(Oid target, TargetInfo *ti)
{
	StringInfoData buf;
	ListCell   *l1,
			   *l2;
	int			i = 0;

	initStringInfo(&buf);
	if (!ti->key_text)
	{
		char	   *col = linitial(ti->pk_exprs);

		if (col)
			appendStringInfo(&buf, "(__elt_src.%s)::pg_catalog.int8", quote_identifier(col));
		else
			appendStringInfoString(&buf, "(__elt_src.__elt_pk_1)::pg_catalog.int8");
		return buf.data;
	}
	/* one argument per key column: elt._lineage_capture() prints them */
	forboth(l1, ti->pk, l2, ti->pk_exprs)
	{
		AttrNumber	attnum = lfirst_int(l1);
		char	   *col = lfirst(l2);

		i++;
		if (i > 1)
			appendStringInfoString(&buf, ", ");
		if (col)
			appendStringInfo(&buf, "CAST(__elt_src.%s AS %s)", quote_identifier(col),
							 column_type(target, attnum));
		else
			appendStringInfo(&buf, "CAST(__elt_src.__elt_pk_%d AS %s)", i,
							 column_type(target, attnum));
	}
	return buf.data;
}

/*
 * The statement of a run: one INSERT ... SELECT.  With row lineage its
 * WHERE clause hands each written row's target key and key columns to
 * elt._lineage_capture(), with the run's token as $1, which keeps them.
 */
static char *
run_statement(Transform *t, EltLineageInfo *info, TargetInfo *ti, bool row)
{
	StringInfoData s;
	StringInfoData cols;
	StringInfoData vals;
	StringInfoData alias;
	ListCell   *lc;
	int			i;

	initStringInfo(&cols);
	initStringInfo(&vals);
	foreach(lc, ti->columns)
	{
		const char *c = quote_identifier((char *) lfirst(lc));

		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", c);
		appendStringInfo(&vals, "%s__elt_src.%s", vals.len ? ", " : "", c);
	}
	initStringInfo(&s);
	appendStringInfoString(&s, "SELECT __elt_q.*");
	if (row)
	{
		ListCell   *l1,
				   *l2;

		/* key columns filled by defaults are computed here, once per row */
		i = 0;
		forboth(l1, ti->pk_defaults, l2, ti->pk)
		{
			char	   *def = lfirst(l1);

			i++;
			if (def == NULL)
				continue;
			appendStringInfo(&s, ", (%s) AS __elt_pk_%d", def, i);
			appendStringInfo(&cols, ", %s",
							 quote_identifier(get_attname(t->target, lfirst_int(l2), false)));
			appendStringInfo(&vals, ", __elt_src.__elt_pk_%d", i);
		}
	}
	/* output columns are named by position: set operations name them after their first branch */
	initStringInfo(&alias);
	foreach(lc, ti->columns)
		appendStringInfo(&alias, "%s%s", alias.len ? ", " : "", quote_identifier((char *) lfirst(lc)));
	if (row)
		for (i = 1; i <= list_length(info->slots); i++)
			appendStringInfo(&alias, ", " ELT_KEY_PREFIX "%d", i);
	/* OFFSET 0 keeps the subquery (and its defaults) evaluated once per row */
	appendStringInfo(&s, " FROM (%s) __elt_q(%s) OFFSET 0",
					 row ? info->rewritten : pg_get_querydef(info->query, false), alias.data);
	{
		char	   *inner = s.data;

		initStringInfo(&s);
		appendStringInfo(&s, "INSERT INTO %s AS __elt_t (%s)%s SELECT %s FROM (%s) __elt_src",
						 ti->relname, cols.data, ti->override ? " OVERRIDING SYSTEM VALUE" : "",
						 vals.data, inner);
	}
	if (row)
	{
		appendStringInfo(&s, " WHERE elt._lineage_capture($1, %s", target_key_sql(t->target, ti));
		for (i = 1; i <= list_length(info->slots); i++)
			appendStringInfo(&s, ", __elt_src." ELT_KEY_PREFIX "%d", i);
		appendStringInfoChar(&s, ')');
	}
	if (strcmp(t->mode, "merge") == 0)
	{
		Relation	rel = table_open(t->target, AccessShareLock);
		List	   *pk = EltPrimaryKeyColumns(rel);
		StringInfoData set;

		initStringInfo(&set);
		appendStringInfoString(&s, " ON CONFLICT (");
		i = 0;
		foreach(lc, pk)
			appendStringInfo(&s, "%s%s", i++ ? ", " : "",
							 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel), lfirst_int(lc) - 1)->attname)));
		foreach(lc, ti->columns)
		{
			const char *c = (char *) lfirst(lc);
			AttrNumber	attnum = get_attnum(t->target, c);

			if (list_member_int(pk, attnum))
				continue;
			appendStringInfo(&set, "%s%s = EXCLUDED.%s", set.len ? ", " : "",
							 quote_identifier(c), quote_identifier(c));
		}
		if (set.len == 0)
		{
			const char *c = quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel), linitial_int(pk) - 1)->attname));

			appendStringInfo(&set, "%s = EXCLUDED.%s", c, c);
		}
		appendStringInfo(&s, ") DO UPDATE SET %s", set.data);
		table_close(rel, AccessShareLock);
	}
	return s.data;
}

/* Record a run, store its lineage and apply keep_runs (inside a catalog write). */
static int64
record_run(Transform *t, int64 seed, Jsonb *params, const char *lineage,
		   TimestampTz started, TimestampTz finished, int64 read, int64 written,
		   int64 deleted, bool store_lineage, int64 lineage_rows, Oid actor, const char *relname)
{
	static SPIPlanPtr run_plan = NULL;
	static SPIPlanPtr lineage_plan = NULL;
	static SPIPlanPtr keep_plan = NULL;
	Oid			rtypes[13] = {INT8OID, INT4OID, TEXTOID, JSONBOID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, NAMEOID, INT8OID, INT8OID};
	Datum		v[13];
	char		n[13] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int64		run_id;
	bool		isnull;
	StringInfoData extra;
	char		run_hash[ELT_SHA256_HEX_LEN + 1];

	/*
	 * The run id is drawn now, after the target rows are written and locked:
	 * of two runs that wrote one row, the one that wrote it last has the
	 * greater id, whichever started first.
	 */
	EltPrepare(&run_plan,
			   "INSERT INTO elt.transform_runs (run_id, transform_id, version, code_hash, params, lineage,"
			   " status, started_at, finished_at, rows_read, rows_written, rows_deleted, role, random_seed)"
			   " VALUES (pg_catalog.nextval('elt.run_id_seq'), $1, $2, $3, $4, $5, 'succeeded', $6, $7, $8, $9,"
			   " $10, $11, $12) RETURNING *",
			   12, rtypes);
	v[0] = Int64GetDatum(t->id);
	v[1] = Int32GetDatum(t->version);
	v[2] = CStringGetTextDatum(t->code_hash);
	v[3] = JsonbPGetDatum(params);
	v[4] = CStringGetTextDatum(lineage);
	v[5] = TimestampTzGetDatum(started);
	v[6] = TimestampTzGetDatum(finished);
	v[7] = Int64GetDatum(read);
	v[8] = Int64GetDatum(written);
	v[9] = Int64GetDatum(deleted);
	if (strcmp(t->mode, "replace") != 0)
		n[9] = 'n';
	v[10] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(actor, false)));
	v[11] = Int64GetDatum(seed);
	EltExec(run_plan, v, n, 0);
	run_id = EltSpiGetInt64(0, "run_id", &isnull);
	EltRunRowHash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, "", run_hash);

	if (store_lineage)
	{
		Oid			ltypes[1] = {INT8OID};
		Datum		lv[1];

		/* the run's chunks, and the bucket sizes they use for lookups */
		EltPrepare(&lineage_plan,
				   "WITH c AS (INSERT INTO elt.lineage_chunks (run_id, rel, dir, other_rel, bucket, entries, data)"
				   " SELECT $1, p.rel::pg_catalog.regclass, p.dir, p.other_rel::pg_catalog.regclass, p.bucket,"
				   " p.entries, p.data FROM elt._lineage_pending() p RETURNING rel, dir, bucket)"
				   " INSERT INTO elt.lineage_layout (rel, dir, bits)"
				   " SELECT DISTINCT c.rel, c.dir, (c.bucket OPERATOR(pg_catalog.>>) 32)::pg_catalog.int4 FROM c"
				   " ON CONFLICT DO NOTHING",
				   1, ltypes);
		lv[0] = Int64GetDatum(run_id);
		EltCaptureOpenPending(true);
		EltExec(lineage_plan, lv, NULL, 0);
		EltCaptureOpenPending(false);
	}
	if (t->keep_runs > 0)
	{
		Oid			ktypes[2] = {INT8OID, INT4OID};
		Datum		kv[2];

		/* runs that left the window of the last keep_runs runs (and a margin) */
		EltPrepare(&keep_plan,
				   "DELETE FROM elt.lineage_chunks WHERE run_id IN ("
				   " SELECT r.run_id FROM elt.transform_runs r WHERE r.transform_id = $1"
				   " ORDER BY r.run_id DESC OFFSET $2 LIMIT 100)",
				   2, ktypes);
		kv[0] = Int64GetDatum(t->id);
		kv[1] = Int32GetDatum(t->keep_runs);
		EltExec(keep_plan, kv, NULL, 0);
	}

	initStringInfo(&extra);
	appendStringInfoChar(&extra, '{');
	EltAppendJsonInt(&extra, "run_id", run_id);
	EltAppendJsonString(&extra, "status", "succeeded");
	EltAppendJsonString(&extra, "lineage", lineage);
	EltAppendJsonInt(&extra, "rows_written", written);
	EltAppendJsonInt(&extra, "lineage_rows", lineage_rows);
	EltAppendJsonString(&extra, "run_hash", run_hash);
	EltAuditRecord(actor, "transform_run", t->name,
				   transform_details(t->id, relname, t->version, t->code_hash, extra.data + 1),
				   EltAuditReason(NULL));
	return run_id;
}

/* A new id of a transform run or run (inside a catalog write). */
int64
EltDrawRunId(void)
{
	bool		isnull;

	if (SPI_execute("SELECT pg_catalog.nextval('elt.run_id_seq') AS run_id", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "drawing a run id failed");
	return EltSpiGetInt64(0, "run_id", &isnull);
}

/* Counts of one run. */
typedef struct RunCounts
{
	int64		read;
	int64		written;
	int64		deleted;
	int64		lineage_rows;	/* (target row, source relation) pairs */
} RunCounts;

/* Execute a run's statement as the caller, with the run's state set. */
static void
execute_run(Transform *t, RunState *run, EltLineageInfo *info, TargetInfo *ti, bool row,
			const char *stmt, int64 token, MemoryContext cxt, RunCounts *counts)
{
	memset(counts, 0, sizeof(*counts));
	current_run = run;
	PG_TRY();
	{
		int			rc;
		int64		before;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (strcmp(t->mode, "replace") == 0)
		{
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("replace mode runs only at isolation level READ COMMITTED"),
						 errdetail("Under a transaction snapshot, rows another run wrote meanwhile would be neither deleted nor seen."),
						 errhint("Run it in a READ COMMITTED transaction, or use merge mode.")));
			rc = SPI_execute(psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", ti->relname), false, 0);
			if (rc < 0)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
			rc = SPI_execute(psprintf("DELETE FROM %s", ti->relname), false, 0);
			if (rc < 0)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
			counts->deleted = (int64) SPI_processed;
		}
		before = rows_read(info->sources);
		if (row)
			EltCaptureBegin(t->target, ti->key_text ? list_length(ti->pk) : 0, info->slots, token, cxt);
		{
			Oid			types[1] = {INT8OID};
			Datum		args[1];

			args[0] = Int64GetDatum(token);
			rc = SPI_execute_with_args(stmt, row ? 1 : 0, types, args, NULL, false, 0);
		}
		if (rc < 0)
			elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
		counts->written = (int64) SPI_processed;
		if (row)
			counts->lineage_rows = EltCaptureEnd();
		counts->read = rows_read(info->sources) - before;
		SPI_finish();
	}
	PG_FINALLY();
	{
		current_run = NULL;
	}
	PG_END_TRY();
}

/* Record a run and its lineage; pending lineage never outlives this. */
static int64
store_run(Transform *t, int64 seed, Jsonb *params, const char *lineage,
		  TimestampTz started, TimestampTz finished, RunCounts *counts,
		  bool store_lineage, Oid actor, const char *relname)
{
	int64		run_id = 0;

	PG_TRY();
	{
		run_id = record_run(t, seed, params, lineage, started, finished, counts->read,
							counts->written, counts->deleted, store_lineage, counts->lineage_rows,
							actor, relname);
	}
	PG_CATCH();
	{
		EltCaptureDrop();
		PG_RE_THROW();
	}
	PG_END_TRY();
	EltCaptureDrop();
	return run_id;
}

/* A run in progress, shared by its body and its failure handler. */
typedef struct RunCall
{
	Transform	t;
	RunState	run;
	const char *lineage;		/* what the run records */
	bool		row;
	MemoryContext cxt;
	EltRunStep	step;			/* its part of a run manifest */
} RunCall;

/*
 * The body of a run: analyze and execute as the transform's owner, record
 * as the extension's owner.
 */
static void
run_body(RunCall *rc)
{
	Transform  *t = &rc->t;
	EltLineageInfo *info;
	TargetInfo	ti;
	char	   *blocker = NULL;
	char	   *stmt;
	int64		token;
	RunCounts	counts;
	TimestampTz finished;
	EltCatalogWrite cw;
	Oid			owner = get_role_oid(t->owner, false);
	EltAsRole	ar;

	/*
	 * As the transform's owner, like a view: the caller is a member of that
	 * role (or a superuser), and a superuser running someone's transform
	 * does not run their functions with superuser rights (restricted when
	 * the caller is another role).  The version's SQL means what it meant
	 * when it was written: its search_path.
	 */
	EltAsRoleBegin(&ar, owner, t->search_path, owner != GetUserId());

	info = EltLineageAnalyze(t->sql, rc->row);
	check_target(info->query, t->target, t->mode, rc->row, &ti, &blocker);
	check_target_privileges(t->target, ti.relname, t->mode, GetUserId());
	if (rc->row && (!info->row_ok || blocker != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("row lineage can no longer be recorded for transform \"%s\": %s",
						t->name, blocker ? blocker : info->blocker),
				 errhint("A table it reads or writes has changed since version %d. Run it with lineage => 'table', or add a new version.",
						 t->version)));
	if (!pg_strong_random(&token, sizeof(token)))
		token = (int64) pg_prng_uint64(&pg_global_prng_state);
	stmt = run_statement(t, info, &ti, rc->row);
	/* the manifest's inputs: what the statement is about to read */
	EltRunStepInputs(&rc->step, info->sources);
	execute_run(t, &rc->run, info, &ti, rc->row, stmt, token, rc->cxt, &counts);
	rc->step.rows_read = counts.read;
	rc->step.rows_written = counts.written;
	rc->step.rows_deleted = counts.deleted;
	rc->step.rows_deleted_known = strcmp(t->mode, "replace") == 0;
	EltRunStepOutput(&rc->step);
	EltAsRoleEnd(&ar);
	finished = GetCurrentTimestamp();
	rc->step.finished_at = finished;

	EltCatalogWriteBegin(&cw);
	rc->run.run_id = store_run(t, rc->run.seed, rc->run.params, rc->lineage, rc->run.started_at,
							   finished, &counts, rc->row, cw.actor, ti.relname);
	EltRunStepRecord(&rc->step, rc->run.run_id);
	EltCatalogWriteEnd(&cw);
}

/* What the failure recorder is told: the failed run, in a DSM segment. */
typedef struct FailedRun
{
	int64		run_id;
	int64		transform_id;
	int64		seed;
	int32		version;
	Oid			actor;
	TimestampTz started_at;
	TimestampTz finished_at;
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* name, code_hash, params,
												 * lineage, role, error:
												 * NUL-terminated, in turn */
} FailedRun;

/* bgw_extra of the failure recorder. */
typedef struct FailedRunArgs
{
	Oid			dboid;
	Oid			roleoid;
} FailedRunArgs;

/*
 * Record a failed run through a background worker (a transaction of its
 * own, which outlives the caller's rollback) and wait for it.  Best effort:
 * a WARNING when it cannot be done.
 */
static void
record_failure(RunCall *rc, ErrorData *edata)
{
	const char *strings[6];
	char	   *params = JsonbToCString(NULL, &rc->run.params->root, VARSIZE(rc->run.params));
	char	   *error = psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode),
								 edata->message ? edata->message : "error");
	Size		len = 0;
	int			i;
	dsm_segment *seg;
	FailedRun  *fr;
	char	   *p;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	FailedRunArgs args;
	Oid			owner = EltExtensionOwner();
	EltCatalogWrite cw;

	/* the failed run's id */
	EltCatalogWriteBegin(&cw);
	rc->run.run_id = EltDrawRunId();
	EltCatalogWriteEnd(&cw);

	strings[0] = rc->t.name;
	strings[1] = rc->t.code_hash;
	strings[2] = params;
	strings[3] = rc->lineage;
	strings[4] = GetUserNameFromId(GetUserId(), false);
	strings[5] = error;
	for (i = 0; i < 6; i++)
		len += strlen(strings[i]) + 1;
	seg = dsm_create(offsetof(FailedRun, data) + len, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
	{
		ereport(WARNING,
				(errmsg("failed run %lld of transform \"%s\" could not be recorded: no shared memory segment",
						(long long) rc->run.run_id, rc->t.name)));
		return;
	}
	fr = dsm_segment_address(seg);
	fr->run_id = rc->run.run_id;
	fr->transform_id = rc->t.id;
	fr->seed = rc->run.seed;
	fr->version = rc->t.version;
	fr->actor = GetUserId();
	fr->started_at = rc->run.started_at;
	fr->finished_at = GetCurrentTimestamp();
	p = fr->data;
	for (i = 0; i < 6; i++)
	{
		strcpy(p, strings[i]);
		p += strlen(strings[i]) + 1;
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "elt_governance");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "elt_transform_failure_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "elt_governance failed run %lld", (long long) rc->run.run_id);
	snprintf(worker.bgw_type, BGW_MAXLEN, "elt_governance failed run");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;
	args.dboid = MyDatabaseId;
	args.roleoid = owner;
	memcpy(worker.bgw_extra, &args, sizeof(args));
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(WARNING,
				(errmsg("failed run %lld of transform \"%s\" could not be recorded: no background worker slot",
						(long long) rc->run.run_id, rc->t.name),
				 errhint("Raise max_worker_processes.")));
	else
	{
		/* at most 10 s: it could wait for a lock this transaction holds */
		pid_t		pid;
		int			waited;

		for (waited = 0; waited < 10000; waited += 50)
		{
			if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 50, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		if (waited >= 10000)
			ereport(WARNING,
					(errmsg("failed run %lld of transform \"%s\" is not recorded yet",
							(long long) rc->run.run_id, rc->t.name),
					 errdetail("Its recorder is still waiting, probably for a lock this transaction holds; it records the run once the transaction ends.")));
	}
	dsm_detach(seg);
}


/* Background worker: write one failed run (and its audit row), then exit. */
void
elt_transform_failure_main(Datum main_arg)
{
	FailedRunArgs args;
	dsm_segment *seg;
	FailedRun  *fr;
	const char *strings[6];
	const char *p;
	int			i;
	Oid			types[11] = {INT8OID, INT8OID, INT4OID, TEXTOID, JSONBOID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, NAMEOID, TEXTOID, INT8OID};
	Datum		v[11];
	int			rc;
	StringInfoData details;
	char		run_hash[ELT_SHA256_HEX_LEN + 1];

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleoid, 0);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the failed run to record is gone")));
	fr = dsm_segment_address(seg);
	p = fr->data;
	for (i = 0; i < 6; i++)
	{
		strings[i] = pstrdup(p);
		p += strlen(p) + 1;
	}
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	v[0] = Int64GetDatum(fr->run_id);
	v[1] = Int64GetDatum(fr->transform_id);
	v[2] = Int32GetDatum(fr->version);
	v[3] = CStringGetTextDatum(strings[1]);
	v[4] = DirectFunctionCall1(jsonb_in, CStringGetDatum(strings[2]));
	v[5] = CStringGetTextDatum(strings[3]);
	v[6] = TimestampTzGetDatum(fr->started_at);
	v[7] = TimestampTzGetDatum(fr->finished_at);
	v[8] = DirectFunctionCall1(namein, CStringGetDatum(strings[4]));
	v[9] = CStringGetTextDatum(strings[5]);
	v[10] = Int64GetDatum(fr->seed);
	rc = SPI_execute_with_args("INSERT INTO elt.transform_runs (run_id, transform_id, version, code_hash,"
							   " params, lineage, status, started_at, finished_at, role, error, random_seed)"
							   " VALUES ($1, $2, $3, $4, $5, $6, 'failed', $7, $8, $9, $10, $11) RETURNING *",
							   11, types, v, NULL, false, 0);
	if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "recording failed run: %s", SPI_result_code_string(rc));
	EltRunRowHash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, "", run_hash);
	initStringInfo(&details);
	appendStringInfoChar(&details, '{');
	EltAppendJsonInt(&details, "run_id", fr->run_id);
	EltAppendJsonInt(&details, "transform_id", fr->transform_id);
	EltAppendJsonInt(&details, "version", fr->version);
	EltAppendJsonString(&details, "code_hash", strings[1]);
	EltAppendJsonString(&details, "status", "failed");
	EltAppendJsonString(&details, "lineage", strings[3]);
	EltAppendJsonString(&details, "error", strings[5]);
	EltAppendJsonString(&details, "run_hash", run_hash);
	appendStringInfoChar(&details, '}');
	EltAuditRecord(fr->actor, "transform_run", strings[0], details.data, NULL);
	SPI_finish();
	PopActiveSnapshot();
	dsm_detach(seg);
	CommitTransactionCommand();
	proc_exit(0);
}

PG_FUNCTION_INFO_V1(elt_transform_run);

/*
 * elt.transform_run(name, params, lineage): run the current version in the
 * caller's transaction, as the transform's owner, and record the run.
 */
Datum
elt_transform_run(PG_FUNCTION_ARGS)
{
	char	   *name;
	Jsonb	   *params;
	char	   *lineage;
	RunCall    *rc;
	EltCatalogWrite cw;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	EltRequireCatalog("transform_runs");
	name = EltRequiredText(fcinfo, 0, "name");
	params = PG_ARGISNULL(1)
		? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))
		: PG_GETARG_JSONB_P_COPY(1);
	if (!JB_ROOT_IS_OBJECT(params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be a JSON object"),
				 errhint("For example '{\"day\": \"2026-01-31\"}'; read a parameter with elt.param('day').")));
	lineage = PG_ARGISNULL(2) ? "row" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(lineage, "row") != 0 && strcmp(lineage, "table") != 0 && strcmp(lineage, "none") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid lineage \"%s\"", lineage),
				 errhint("Lineage: \"row\" (keys of every row), \"table\" (relations and columns only) or \"none\".")));
	if (current_run != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.transform_run() cannot be called inside a transform run"),
				 errhint("Chain transforms by running them one after the other.")));

	rc = palloc0(sizeof(RunCall));
	rc->cxt = cxt;
	EltCatalogWriteBegin(&cw);
	transform_load(&rc->t, name, false, cxt);
	EltCatalogWriteEnd(&cw);
	check_owner(&rc->t, GetUserId(), "run");
	require_target(&rc->t);

	/* a version that only supports table lineage records table lineage */
	rc->row = strcmp(lineage, "row") == 0 && strcmp(rc->t.lineage_level, "row") == 0;
	rc->lineage = (strcmp(lineage, "row") == 0 && !rc->row) ? "table" : lineage;
	rc->run.params = params;
	rc->run.started_at = GetCurrentTimestamp();

	/* the run's step of a manifest: its clock and seed */
	EltRunStepBegin(&rc->step, rc->run.started_at);
	rc->step.role = get_role_oid(rc->t.owner, false);
	rc->step.transform = rc->t.name;
	rc->step.transform_id = rc->t.id;
	rc->step.version = rc->t.version;
	rc->step.code_hash = rc->t.code_hash;
	rc->step.mode = rc->t.mode;
	rc->step.lineage = rc->lineage;
	rc->step.sql = rc->t.sql;
	rc->step.search_path = rc->t.search_path;
	rc->step.params = params;
	rc->step.target = rc->t.target;
	rc->step.started_at = rc->run.started_at;
	rc->run.clock = rc->step.clock;
	rc->run.seed = rc->step.seed;
	pg_prng_seed(&rc->run.prng, (uint64) rc->run.seed);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		run_body(rc);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		EltCaptureDrop();
		current_run = NULL;
		record_failure(rc, edata);
		ReThrowError(edata);
	}
	PG_END_TRY();
	PG_RETURN_INT64(rc->run.run_id);
}

/* ---------------------------------------------------------------------
 * Inside a run
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(elt_param);

/* elt.param(name): a parameter of the run in progress, as text. */
Datum
elt_param(PG_FUNCTION_ARGS)
{
	char	   *name;
	JsonbValue	k;
	JsonbValue *v;

	name = EltRequiredText(fcinfo, 0, "name");
	if (current_run == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("elt.param() can be used only while a transform runs"),
				 errhint("Run the transform with elt.transform_run(name, params).")));
	k.type = jbvString;
	k.val.string.val = name;
	k.val.string.len = strlen(name);
	v = findJsonbValueFromContainer(&current_run->params->root, JB_FOBJECT, &k);
	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run parameter \"%s\" is not set", name),
				 errhint("Pass it in params, for example elt.transform_run('transform', '{\"%s\": ...}').",
						 name)));
	switch (v->type)
	{
		case jbvNull:
			PG_RETURN_NULL();
		case jbvString:
			PG_RETURN_TEXT_P(cstring_to_text_with_len(v->val.string.val, v->val.string.len));
		case jbvNumeric:
			PG_RETURN_TEXT_P(cstring_to_text(DatumGetCString(DirectFunctionCall1(numeric_out,
																				 NumericGetDatum(v->val.numeric)))));
		case jbvBool:
			PG_RETURN_TEXT_P(cstring_to_text(v->val.boolean ? "true" : "false"));
		default:
			PG_RETURN_TEXT_P(cstring_to_text(JsonbToCString(NULL, v->val.binary.data, v->val.binary.len)));
	}
}

PG_FUNCTION_INFO_V1(elt_now);

/* elt.now(): the run's clock (see manifest.c), else the transaction's start. */
Datum
elt_now(PG_FUNCTION_ARGS)
{
	TimestampTz clock;

	if (current_run != NULL)
		PG_RETURN_TIMESTAMPTZ(current_run->clock);
	if (EltPipelineClock(&clock))
		PG_RETURN_TIMESTAMPTZ(clock);
	PG_RETURN_TIMESTAMPTZ(GetCurrentTransactionStartTimestamp());
}

PG_FUNCTION_INFO_V1(elt_random);

/* elt.random(): the run's random sequence, seeded from the run and step. */
Datum
elt_random(PG_FUNCTION_ARGS)
{
	double		v;

	if (current_run != NULL)
		PG_RETURN_FLOAT8(pg_prng_double(&current_run->prng));
	if (EltPipelineRandom(&v))
		PG_RETURN_FLOAT8(v);
	PG_RETURN_FLOAT8(pg_prng_double(&pg_global_prng_state));
}

/* The run in progress in this backend, or 0. */
int64
EltCurrentRunId(void)
{
	return current_run ? current_run->run_id : 0;
}

/*
 * Replay one step (manifest.c): the recorded SQL with its relation
 * references replaced (remap: schema, name, ...), written into a sandbox
 * table in the recorded mode, with the recorded search_path, parameters,
 * clock and seed.  No lineage is recorded.  It runs as the current user:
 * manifest.c has switched to the run's role, in a security-restricted
 * operation (like run_body); anything else is a bug that would run the
 * recorded SQL with the caller's privileges.
 */
void
EltReplayStep(const char *sql, const char *search_path, List *remap, Oid target,
			  const char *mode, Jsonb *params, TimestampTz clock, int64 seed,
			  int64 *written, int64 *deleted)
{
	Transform	t;
	EltLineageInfo info;
	TargetInfo	ti;
	char	   *blocker = NULL;
	char	   *stmt;
	RunState	run;
	RunCounts	counts;
	int			guc_level;

	if (!InSecurityRestrictedOperation())
		elog(ERROR, "a replayed step must run in a security-restricted operation");
	memset(&t, 0, sizeof(t));
	t.name = "replay";
	t.target = target;
	t.mode = (char *) mode;
	memset(&info, 0, sizeof(info));

	guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", EltSearchPathTempLast(search_path), PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	info.query = EltAnalyzeSelectRemapped(sql, remap);
	check_target(info.query, target, mode, false, &ti, &blocker);
	stmt = run_statement(&t, &info, &ti, false);

	memset(&run, 0, sizeof(run));
	run.seed = seed;
	run.params = params;
	run.started_at = GetCurrentTimestamp();
	run.clock = clock;
	pg_prng_seed(&run.prng, (uint64) seed);
	execute_run(&t, &run, &info, &ti, false, stmt, 0, CurrentMemoryContext, &counts);
	AtEOXact_GUC(false, guc_level);
	*written = counts.written;
	*deleted = counts.deleted;
}
