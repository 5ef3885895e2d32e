/*
 * transform.h — versioned SQL transforms (transform.c) and their runs
 * (transform_run.c).
 */
#ifndef ELT_TRANSFORM_H
#define ELT_TRANSFORM_H

#include "postgres.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "util.h"

/* A transform and its current version, copied out of SPI. */
typedef struct EltTransform
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
} EltTransform;

/* What the target requires of the query, found while checking it. */
typedef struct EltTargetInfo
{
	char	   *relname;		/* qualified, quoted */
	List	   *columns;		/* names of the columns the query writes */
	List	   *pk;				/* attnums of the primary key */
	List	   *pk_exprs;		/* per pk column: output name, or NULL */
	List	   *pk_defaults;	/* per pk column not written: default SQL */
	bool		override;		/* a pk column is GENERATED ALWAYS */
	bool		key_text;		/* target key kept as text */
} EltTargetInfo;

/* transform.c: the SQL API, and what a run shares with it */
extern void EltTransformCheckTarget(Query *q, Oid target, const char *mode, bool row_lineage,
									EltTargetInfo *ti, char **blocker);
extern void EltTransformCheckPrivileges(Oid target, const char *relname, const char *mode, Oid actor);
extern void EltTransformLoad(EltTransform *t, const char *name, bool for_update, MemoryContext cxt);
extern void EltTransformDetails(EltJson *d, int64 id, const char *target, int version,
								const char *hash);
extern void EltTransformCheckOwner(EltTransform *t, Oid actor, const char *verb);
extern void EltTransformRequireTarget(EltTransform *t);

/* transform_run.c: running a transform, and a step of a replay */
extern void EltReplayStep(const char *sql, const char *search_path, List *remap, Oid target,
						  const char *mode, Jsonb *params, TimestampTz clock, int64 seed,
						  int64 *written, int64 *deleted, int64 *read);
extern Datum EltTransformRunLive(FunctionCallInfo fcinfo);
extern PGDLLEXPORT void elt_transform_failure_main(Datum main_arg);

/* transform_pushdown.c: a run's row work pushed down to Citus's shards */
typedef struct EltPushdown
{
	char	   *stage;			/* the staging table, qualified and quoted */
	char	   *stage_name;		/* its name, unquoted */
	Oid			nspoid;			/* its schema: the target's */
	char	   *dist_column;	/* the target's distribution column */
	char	   *target_name;	/* the target, qualified and quoted */
	char	   *check;			/* the run's INSERT without capture */
	char	   *create;			/* CREATE of the staging table */
	char	   *fill;			/* INSERT INTO stage ... RETURNING the keys */
	char	   *write;			/* INSERT INTO target ... FROM stage */
} EltPushdown;

extern bool elt_citus_pushdown;
struct EltLineageInfo;
extern bool EltPushdownPrepare(EltPushdown *pd, Oid target, struct EltLineageInfo *info,
							   EltTargetInfo *ti, const char *key_sql, const char *conflict);
extern bool EltPushdownRun(EltPushdown *pd, int64 *written);

/* transform_undo.c: what a run keeps for its revert (transform_revert.c) */
extern int	elt_undo_max_rows;
extern int	elt_undo_retention;
extern bool EltUndoEnabled(void);
extern void EltUndoBegin(int64 token, MemoryContext cxt);
extern void EltUndoEnd(int64 *images, bool *over);
extern void EltUndoDrop(void);
extern char *EltUndoShape(Oid relid);
extern char *EltUndoKeySql(Oid relid, const char *alias);
extern char *EltUndoImageSql(Oid relid, const char *alias);
extern void EltUndoRecord(int64 run_id, int64 transform_id, Oid target, TransactionId xid,
						  const char *shape, TimestampTz finished);

#endif							/* ELT_TRANSFORM_H */
