/*
 * backfill.h — the backfill engine: chunked, checkpointed re-processing of a
 * relation's rows by key range, as the rest of the extension sees it.  The
 * engine's files (backfill.c, backfill_worker.c, backfill_chunk.c) share
 * backfill_int.h besides.
 */
#ifndef ELT_BACKFILL_H
#define ELT_BACKFILL_H

#include "postgres.h"

/* backfill.c: called by the contracts engine */
extern void EltBackfillPauseForChange(Oid actor, Oid relid, const char *code,
									  const char *reason);

/* backfill_worker.c: settings, registration, the processes */
extern int	elt_launcher_naptime;
extern int	elt_max_backfill_workers;
extern int	elt_max_backfill_workers_per_role;
extern void EltBackfillInit(void);
extern PGDLLEXPORT void elt_backfill_worker_main(Datum arg);
extern PGDLLEXPORT void elt_launcher_main(Datum arg);
extern PGDLLEXPORT void elt_backfill_scanner_main(Datum arg);

#endif							/* ELT_BACKFILL_H */
