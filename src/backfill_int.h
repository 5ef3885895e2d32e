/*
 * backfill_int.h — what the files of the backfill engine share and nothing
 * else sees: the backfill as the engine reads it from elt.backfills, how
 * one step of the work ends, and the functions each file exports to the
 * files above it.
 *
 * Layering (never backwards): backfill.c (SQL API, state changes) ->
 * backfill_worker.c (launching, caps, the worker and launcher processes) ->
 * backfill_chunk.c (the backfill's row, one step of the work: planning,
 * claiming and running a chunk).
 */
#ifndef ELT_BACKFILL_INT_H
#define ELT_BACKFILL_INT_H

#include "postgres.h"

#include "fmgr.h"

#include "backfill.h"
#include "util.h"

/* advisory lock tag field4 of "a process works on backfill N" (backfill_chunk.c) */
#define ELT_BACKFILL_LOCKTAG 0x4542

/* A backfill as the engine needs it, read from elt.backfills. */
typedef struct Backfill
{
	int64		id;
	char	   *name;
	Oid			relid;
	char	   *relname;		/* qualified and quoted, for SQL and messages */
	char	   *key;
	Oid			keytype;
	Oid			keycoll;
	char	   *sql;
	char	   *search_path;
	char	   *owner;
	Oid			owner_oid;		/* InvalidOid when the role is gone */
	char	   *state;
	char	   *runner;			/* NULL before the first start */
	int32		generation;
	int			workers;
	bool		planning_done;
	char	   *planned_end;
	char	   *next_lower;
	int			chunks_planned;
	int			chunk_rows;
	int			chunk_rows_current;
	bool		started;
	/* options */
	bool		follow_tail;
	bool		continue_on_error;
	int			max_attempts;
	int			target_chunk_ms;
	int			min_chunk_rows;
	int			max_chunk_rows;
	int64		max_rows_per_second;
	int			lock_timeout_ms;
	int			statement_timeout_ms;
	int64		pause_when_lag_bytes;
	bool		allow_duplicate_keys;
} Backfill;

/* How a backfill is looked up by EltBackfillLoad. */
typedef enum BfLookup
{
	BF_BY_ID,
	BF_BY_ID_FOR_UPDATE,
	BF_BY_ID_FOR_SHARE,
	BF_BY_NAME_FOR_UPDATE
} BfLookup;


/* An integer column of the current SPI result row, 0 when NULL. */
static inline int64
spi_int(int row, const char *column)
{
	bool		isnull;

	return EltSpiGetInt64(row, column, &isnull);
}

/* A text column of the current SPI result, copied into cxt (NULL stays NULL). */
static inline char *
spi_text(int row, const char *column, MemoryContext cxt)
{
	char	   *s = EltSpiGetText(row, column);

	return s ? MemoryContextStrdup(cxt, s) : NULL;
}


/* How many more backfill workers may start now, and why not more. */
typedef struct EltWorkerRoom
{
	int			live_all;		/* backfill workers running in the cluster */
	int			live_role;		/* ... whose backfills belong to the role */
	int			cap_all;		/* elt.max_backfill_workers, in effect */
	int			cap_role;		/* elt.max_backfill_workers_per_role, in effect */
	int			room;			/* Min of what both caps leave, >= 0 */
	bool		role_binds;		/* the role's cap leaves no more than the cluster's */
} EltWorkerRoom;

/* How one step of a backfill ended. */
typedef enum EltBackfillStep
{
	BF_STEP_CHUNK,				/* ran a chunk (done, failed or to retry) */
	BF_STEP_PLANNED,			/* planned the next chunk */
	BF_STEP_WAIT,				/* nothing to do now: wait wait_ms, then step again */
	BF_STEP_IDLE,				/* nothing left but chunks others are running */
	BF_STEP_FINISHED,			/* the backfill is over: finished or failed */
	BF_STEP_STOPPED				/* paused, cancelled, purged, or superseded */
} EltBackfillStep;

/* One process working on one backfill: a worker or a backfill_run session. */
typedef struct EltBackfillRunner
{
	int64		backfill_id;
	int32		generation;		/* workers: the start they were launched by */
	bool		is_worker;
	bool		started;		/* a worker has taken its first step */
	/* set by each step */
	bool		chunk_done;		/* the step's chunk committed as done */
	int64		rows;			/* rows in the step's chunk */
	long		wait_ms;		/* BF_STEP_WAIT: how long */
	int64		max_rows_per_second;
	int			workers;
	char	   *state;			/* BF_STEP_FINISHED / STOPPED: the state */
} EltBackfillRunner;

/* backfill_chunk.c: the backfill's row */
extern bool EltBackfillLoad(Backfill *bf, BfLookup how, int64 id, const char *name,
							MemoryContext cxt);
extern bool EltBackfillKeyIntact(Backfill *bf);
extern bool EltBackfillCanLogin(Backfill *bf);
extern void EltBackfillCheckRelation(Backfill *bf);
extern void EltBackfillFirstStart(Backfill *bf);
extern void EltBackfillSetState(Backfill *bf, const char *state, const char *reason,
								const char *runner, int workers, bool new_generation);
extern void EltBackfillAuditDetails(EltJson *details, Backfill *bf);
extern void EltBackfillAudit(Oid actor, const char *action, Backfill *bf, EltJson *details);

/* backfill_chunk.c: one step of the work, for workers and backfill_run */
extern EltBackfillStep EltBackfillStepRun(EltBackfillRunner *r);
extern void EltBackfillReadCommitted(void);
extern long EltBackfillThrottleMs(EltBackfillRunner *r, double elapsed_ms);
extern void EltBackfillAdvisoryLock(int64 backfill_id, bool acquire);
extern void EltBackfillPauseAfterError(int64 backfill_id, int32 generation,
									   const char *error);

/* A chunk's shard on Citus (backfill_shard.c); shard_id 0: not per shard. */
typedef struct EltBackfillShard
{
	int64		shard_id;		/* pg_dist_shard.shardid when planned */
	int32		hash_min;		/* its hash range, inclusive */
	int32		hash_max;
} EltBackfillShard;

/* backfill_shard.c: chunks per shard on Citus, for backfill_chunk.c */
extern void EltBackfillShardInit(void);
extern bool EltBackfillPerShard(Backfill *bf);
extern bool EltBackfillShardNext(Oid relid, bool first, int32 after, EltBackfillShard *s);
extern void EltBackfillShardScopeBegin(Backfill *bf, const EltBackfillShard *s, bool inject);
extern bool EltBackfillShardScopeEnd(void);
extern void EltBackfillShardTwoPhase(void);

/* backfill_worker.c: launching under the caps, for the SQL API */
extern void EltBackfillLaunchLock(void);
extern void EltBackfillLaunchUnlock(void);
extern void EltBackfillWorkerRoom(Oid role, EltWorkerRoom *room);
extern int	EltBackfillLaunch(int64 backfill_id, int32 generation, const char *name,
							  Oid roleoid, int n, int elevel);
extern int	EltBackfillWorkerCount(Backfill *bf);
extern int	EltBackfillCappedWorkers(Backfill *bf, int wanted, const char *verb);

/* backfill.c (SQL: elt._backfill_live_workers) */
extern Datum elt_backfill_live_workers(PG_FUNCTION_ARGS);

#endif							/* ELT_BACKFILL_INT_H */
