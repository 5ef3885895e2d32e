/*
 * backfill_worker.c — the processes of the backfill engine: backfill workers,
 * the launcher, and its per-database scanners.
 *
 * Workers are dynamic background workers, one per requested worker, in the
 * backfill's database, connected as the backfill's owner (so the chunk
 * statement never runs with more rights than the role that wrote it).  Each
 * loops over EltBackfillStepRun (backfill.c), one transaction per step, until
 * the backfill is over, stopped, or has nothing left for it.  A worker waits
 * for the transaction that launched it: its first step locks the backfill's
 * row FOR SHARE, and a worker whose start rolled back, or was superseded by a
 * later start (generation), exits.
 *
 * The launcher exists only with the library in shared_preload_libraries.  It
 * starts with the server (and again after a crash restart) and every
 * elt.launcher_naptime seconds starts, one database at a time, a short-lived
 * scanner in each database that accepts connections.  A scanner resumes the
 * backfills of its database that should be running on workers but have no
 * live process (EltBackfillResumeInterrupted), then exits.  Scanners connect
 * as the bootstrap superuser and run no user SQL; the workers they launch
 * connect as each backfill's owner.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "backfill.h"

int			elt_launcher_naptime = 10;

/* What a backfill worker is told at launch (bgw_extra). */
typedef struct EltWorkerArgs
{
	Oid			dboid;
	Oid			roleoid;
	int64		backfill_id;
	int32		generation;
} EltWorkerArgs;

/* Define the launcher's setting and register it when preloaded. */
void
EltBackfillInit(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("elt.launcher_naptime",
							"Seconds between the launcher's checks for interrupted backfills.",
							"With the library preloaded, a backfill that should be running on workers "
							"but has none is resumed within this time (at once after a restart).",
							&elt_launcher_naptime,
							10, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "elt_governance");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "elt_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "elt_governance launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "elt_governance launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * Register n workers for a backfill.  Returns how many were registered; when
 * fewer than n, reports at elevel (ERROR stops the caller, whose transaction
 * then rolls back and so turns away the workers already registered).
 */
int
EltBackfillLaunch(int64 backfill_id, int32 generation, const char *name,
				  Oid roleoid, int n, int elevel)
{
	BackgroundWorker worker;
	EltWorkerArgs args;
	int			i;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "elt_governance");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "elt_backfill_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "elt_governance backfill %s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "elt_governance backfill");
	worker.bgw_notify_pid = 0;
	args.dboid = MyDatabaseId;
	args.roleoid = roleoid;
	args.backfill_id = backfill_id;
	args.generation = generation;
	StaticAssertStmt(sizeof(EltWorkerArgs) <= BGW_EXTRALEN, "worker arguments too long");
	memcpy(worker.bgw_extra, &args, sizeof(args));

	for (i = 0; i < n; i++)
	{
		if (!RegisterDynamicBackgroundWorker(&worker, NULL))
		{
			ereport(elevel,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start %d background %s for backfill \"%s\"",
							n, n == 1 ? "worker" : "workers", name),
					 errdetail("Every slot of max_worker_processes (%d) is taken.",
							   max_worker_processes),
					 errhint("Start fewer workers, raise max_worker_processes, or run the backfill in a session with CALL elt.backfill_run('%s').",
							 name)));
			return i;
		}
	}
	return n;
}

/*
 * A backfill worker: wait for the start that launched it, hold the backfill,
 * then step until there is nothing left for it.
 */
void
elt_backfill_worker_main(Datum main_arg)
{
	EltWorkerArgs args;
	EltBackfillRunner r;
	MemoryContext stepcxt;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleoid, 0);

	memset(&r, 0, sizeof(r));
	r.backfill_id = args.backfill_id;
	r.generation = args.generation;
	r.is_worker = true;
	stepcxt = AllocSetContextCreate(TopMemoryContext, "elt backfill step",
									ALLOCSET_DEFAULT_SIZES);

	/* hold the backfill first, so that live_workers counts us from here on */
	EltBackfillAdvisoryLock(args.backfill_id, true);
	for (;;)
	{
		volatile EltBackfillStep step = BF_STEP_STOPPED;
		volatile bool failed = false;
		instr_time	t0;
		instr_time	t1;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		PG_TRY();
		{
			MemoryContext old;

			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			EltBackfillReadCommitted();
			PushActiveSnapshot(GetTransactionSnapshot());
			INSTR_TIME_SET_CURRENT(t0);
			old = MemoryContextSwitchTo(stepcxt);
			step = EltBackfillStepRun(&r);
			MemoryContextSwitchTo(old);
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		PG_CATCH();
		{
			ErrorData  *edata;
			bool		transient;

			MemoryContextSwitchTo(TopMemoryContext);
			edata = CopyErrorData();
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			transient = edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
				edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
				edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
			/* a transient error: the launcher starts a worker again */
			if (!transient)
			{
				StartTransactionCommand();
				PushActiveSnapshot(GetTransactionSnapshot());
				EltBackfillPauseAfterError(r.backfill_id, r.generation, edata->message);
				PopActiveSnapshot();
				CommitTransactionCommand();
			}
			failed = true;
		}
		PG_END_TRY();
		if (failed)
			break;
		INSTR_TIME_SET_CURRENT(t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		pgstat_report_stat(false);
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextReset(stepcxt);

		if (step == BF_STEP_FINISHED || step == BF_STEP_STOPPED || step == BF_STEP_IDLE)
			break;
		if (step == BF_STEP_WAIT)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(r.wait_ms, 1000L), PG_WAIT_EXTENSION);
		else if (step == BF_STEP_CHUNK)
		{
			long		ms = EltBackfillThrottleMs(&r, INSTR_TIME_GET_MILLISEC(t1));

			if (ms > 0)
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 ms, PG_WAIT_EXTENSION);
		}
		ResetLatch(MyLatch);
	}
	EltBackfillAdvisoryLock(args.backfill_id, false);
	proc_exit(0);
}

/* A database the launcher scans. */
typedef struct EltDatabase
{
	Oid			oid;
	char		name[NAMEDATALEN];
} EltDatabase;

/* The databases that accept connections and are not templates. */
static List *
launcher_databases(MemoryContext cxt)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;
		EltDatabase *d;

		if (!db->datallowconn || db->datistemplate || db->datconnlimit == -2)
			continue;
		old = MemoryContextSwitchTo(cxt);
		d = palloc(sizeof(EltDatabase));
		d->oid = db->oid;
		strlcpy(d->name, NameStr(db->datname), NAMEDATALEN);
		dbs = lappend(dbs, d);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

/* Run one scanner in a database and wait for it to end. */
static void
launcher_scan(EltDatabase *db)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	pid_t		pid;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "elt_governance");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "elt_backfill_scanner_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "elt_governance scanner %s", db->name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "elt_governance scanner");
	worker.bgw_main_arg = ObjectIdGetDatum(db->oid);
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(LOG,
				(errmsg("elt_governance launcher: no free background worker slot to check database \"%s\"",
						db->name),
				 errhint("Raise max_worker_processes.")));
		return;
	}
	if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		return;
	(void) WaitForBackgroundWorkerShutdown(handle);
}

/* The launcher: see the file header. */
void
elt_launcher_main(Datum main_arg)
{
	MemoryContext cxt;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	cxt = AllocSetContextCreate(TopMemoryContext, "elt launcher", ALLOCSET_DEFAULT_SIZES);

	while (!ShutdownRequestPending)
	{
		List	   *dbs;
		ListCell   *lc;

		dbs = launcher_databases(cxt);
		foreach(lc, dbs)
		{
			if (ShutdownRequestPending)
				break;
			launcher_scan((EltDatabase *) lfirst(lc));
		}
		MemoryContextReset(cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 elt_launcher_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	proc_exit(0);
}

/* A scanner: resume the database's interrupted backfills, then exit. */
void
elt_backfill_scanner_main(Datum main_arg)
{
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (EltCatalogReady() && OidIsValid(EltCatalogRelid("backfills")))
		EltBackfillResumeInterrupted();
	PopActiveSnapshot();
	CommitTransactionCommand();
	proc_exit(0);
}
