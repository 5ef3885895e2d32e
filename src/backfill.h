/*
 * backfill.h — the backfill engine: chunked, checkpointed re-processing of a
 * relation's rows by key range (backfill.c), run by background workers or in
 * a session (backfill_worker.c).
 */
#ifndef ELT_BACKFILL_H
#define ELT_BACKFILL_H

#include "postgres.h"

#include "util.h"

/* advisory lock tag field4 of "a process works on backfill N" (backfill.c) */
#define ELT_BACKFILL_LOCKTAG 0x4542

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

/* backfill.c */
extern EltBackfillStep EltBackfillStepRun(EltBackfillRunner *r);
extern void EltBackfillReadCommitted(void);
extern long EltBackfillThrottleMs(EltBackfillRunner *r, double elapsed_ms);
extern void EltBackfillAdvisoryLock(int64 backfill_id, bool acquire);
extern void EltBackfillPauseForChange(Oid actor, Oid relid, const char *code,
									  const char *reason);
extern void EltBackfillPauseAfterError(int64 backfill_id, int32 generation,
									   const char *error);
extern void EltBackfillResumeInterrupted(void);

/* backfill_worker.c */
extern int	elt_launcher_naptime;
extern int	elt_max_backfill_workers;
extern int	elt_max_backfill_workers_per_role;
extern void EltBackfillInit(void);
extern void EltBackfillLaunchLock(void);
extern void EltBackfillLaunchUnlock(void);
extern void EltBackfillWorkerRoom(Oid role, EltWorkerRoom *room);
extern int	EltBackfillLaunch(int64 backfill_id, int32 generation, const char *name,
							  Oid roleoid, int n, int elevel);
extern PGDLLEXPORT void elt_backfill_worker_main(Datum arg);
extern PGDLLEXPORT void elt_launcher_main(Datum arg);
extern PGDLLEXPORT void elt_backfill_scanner_main(Datum arg);

#endif							/* ELT_BACKFILL_H */
