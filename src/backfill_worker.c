/*
 * backfill_worker.c — the processes of the backfill engine: backfill workers,
 * the launcher, and its per-database scanners; and every launch of workers,
 * under the caps.
 *
 * Layering: called by backfill.c (the SQL API: start, resume and retry
 * launch here); calls backfill_chunk.c (the backfill's row, one step of the
 * work), never backfill.c.
 *
 * Workers are dynamic background workers, one per requested worker, in the
 * backfill's database, connected as the backfill's owner (so the chunk
 * statement never runs with more rights than the role that wrote it).  Each
 * loops over EltBackfillStepRun (backfill_chunk.c), one transaction per
 * step, until the backfill is over, stopped, or has nothing left for it.  A worker waits
 * for the transaction that launched it: its first step locks the backfill's
 * row FOR SHARE, and a worker whose start rolled back, or was superseded by a
 * later start (generation), exits.
 *
 * The launcher exists only with the library in shared_preload_libraries.  It
 * starts with the server (and again after a crash restart) and every
 * elt.launcher_naptime seconds starts, one database at a time, a short-lived
 * scanner in each database that accepts connections.  A scanner resumes the
 * backfills of its database that should be running on workers but have no
 * live process (resume_interrupted), drops the sandboxes past their expiry
 * (EltSandboxExpire, sandbox.c), then exits.  Scanners connect
 * as the bootstrap superuser and run no user SQL; the workers they launch
 * connect as each backfill's owner.
 *
 * Caps.  Backfill workers take slots of max_worker_processes, which
 * parallel queries, replication and other extensions need too, and a
 * backfill's own SQL decides how long they run.  So the backfill workers of
 * the cluster are capped (elt.max_backfill_workers) and so are those of
 * each role, the backfills' owner (elt.max_backfill_workers_per_role): one
 * role cannot take every slot.  Every launch (start, resume, retry, the
 * scanner's) counts the running workers and registers new ones under one
 * cluster-wide lock (EltBackfillLaunchLock, a session-level lock in a
 * space no SQL can lock: an advisory tag whose database is 0), and waits,
 * before releasing it, until each new worker is counted: a worker's first
 * act is to take its hold on its backfill, which is what is counted
 * (EltBackfillWorkerRoom).  So the counts are exact: only a worker that
 * takes longer than ELT_WORKER_START_WAIT_MS to start goes uncounted until
 * it does.  The lock is held only while a launch runs, never to the end of
 * the caller's transaction.
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
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/timestamp.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "backfill_int.h"
#include "sandbox.h"

int			elt_launcher_naptime = 10;
int			elt_max_backfill_workers = -1;
int			elt_max_backfill_workers_per_role = -1;

/* advisory lock tag field4 of the launch lock (on database 0: see the file header) */
#define ELT_BACKFILL_LAUNCH_LOCKTAG 0x4543

/* how long a launch waits for a new worker to be counted */
#define ELT_WORKER_START_WAIT_MS 30000

static bool launch_lock_held = false;
static int	launch_lock_level = 0;
static bool launch_callbacks_registered = false;

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

	DefineCustomIntVariable("elt.max_backfill_workers",
							"Most backfill workers that may run at once in the cluster.",
							"-1 means half of max_worker_processes. The rest of max_worker_processes "
							"stays free for parallel queries, replication and other extensions.",
							&elt_max_backfill_workers,
							-1, -1, MAX_BACKENDS,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("elt.max_backfill_workers_per_role",
							"Most backfill workers that the backfills of one role may run at once.",
							"-1 means half of elt.max_backfill_workers (at least 1). Counted in every "
							"database, by the role that owns the backfills.",
							&elt_max_backfill_workers_per_role,
							-1, -1, MAX_BACKENDS,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	/* chunks per shard on Citus: planner hooks in every backend */
	EltBackfillShardInit();
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

static void
launch_lock_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, InvalidOid, 0, 0, ELT_BACKFILL_LAUNCH_LOCKTAG);
}

/* The launch lock is never kept past the (sub)transaction that took it. */
static void
launch_xact_callback(XactEvent event, void *arg)
{
	EltBackfillLaunchUnlock();
}

static void
launch_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && launch_lock_held &&
		GetCurrentTransactionNestLevel() <= launch_lock_level)
		EltBackfillLaunchUnlock();
}

/*
 * Take the cluster-wide lock that orders launches of backfill workers (see
 * the file header), until EltBackfillLaunchUnlock, or an error that ends
 * the (sub)transaction that took it.
 */
void
EltBackfillLaunchLock(void)
{
	LOCKTAG		tag;

	if (launch_lock_held)
		return;
	if (!launch_callbacks_registered)
	{
		RegisterXactCallback(launch_xact_callback, NULL);
		RegisterSubXactCallback(launch_subxact_callback, NULL);
		launch_callbacks_registered = true;
	}
	launch_lock_tag(&tag);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);
	launch_lock_held = true;
	launch_lock_level = GetCurrentTransactionNestLevel();
}

/* Release the launch lock, if held. */
void
EltBackfillLaunchUnlock(void)
{
	LOCKTAG		tag;

	if (!launch_lock_held)
		return;
	launch_lock_tag(&tag);
	LockRelease(&tag, ExclusiveLock, true);
	launch_lock_held = false;
}

/*
 * The PGPROC of a process that holds a backfill (ELT_BACKFILL_LOCKTAG, in
 * any database) as a background worker, or NULL: a session running
 * elt.backfill_run holds one too, but takes no worker slot.
 */
static PGPROC *
backfill_worker_proc(LockInstanceData *inst)
{
	PGPROC	   *proc;

	if (inst->locktag.locktag_type != LOCKTAG_ADVISORY ||
		inst->locktag.locktag_field4 != ELT_BACKFILL_LOCKTAG ||
		(inst->holdMask & LOCKBIT_ON(AccessShareLock)) == 0)
		return NULL;
	proc = BackendPidGetProc(inst->pid);
	return proc != NULL && EltProcIsBackgroundWorker(proc) ? proc : NULL;
}

/* The caps in effect (see the settings' descriptions). */
static void
worker_caps(int *cap_all, int *cap_role)
{
	*cap_all = elt_max_backfill_workers >= 0 ? elt_max_backfill_workers :
		Max(max_worker_processes / 2, 1);
	*cap_role = elt_max_backfill_workers_per_role >= 0 ? elt_max_backfill_workers_per_role :
		Max(*cap_all / 2, 1);
}

/*
 * How many more backfill workers may start now for a backfill of role:
 * the running ones counted in every database (each holds its backfill),
 * against both caps.  Exact under the launch lock (see the file header).
 */
void
EltBackfillWorkerRoom(Oid role, EltWorkerRoom *room)
{
	LockData   *data = GetLockStatusData();
	int			i;

	memset(room, 0, sizeof(*room));
	worker_caps(&room->cap_all, &room->cap_role);
	for (i = 0; i < data->nelements; i++)
	{
		PGPROC	   *proc = backfill_worker_proc(&data->locks[i]);

		if (proc == NULL)
			continue;
		room->live_all++;
		if (proc->roleId == role)
			room->live_role++;
	}
	pfree(data->locks);
	pfree(data);
	room->role_binds = room->cap_role - room->live_role <= room->cap_all - room->live_all;
	room->room = Max(Min(room->cap_all - room->live_all, room->cap_role - room->live_role), 0);
}

/* Whether process pid holds backfill backfill_id of this database. */
static bool
holds_backfill(LockData *data, int pid, int64 backfill_id)
{
	int			i;

	for (i = 0; i < data->nelements; i++)
	{
		LockInstanceData *inst = &data->locks[i];

		if (inst->pid == pid &&
			inst->locktag.locktag_type == LOCKTAG_ADVISORY &&
			inst->locktag.locktag_field1 == MyDatabaseId &&
			inst->locktag.locktag_field2 == (uint32) (backfill_id >> 32) &&
			inst->locktag.locktag_field3 == (uint32) backfill_id &&
			inst->locktag.locktag_field4 == ELT_BACKFILL_LOCKTAG &&
			(inst->holdMask & LOCKBIT_ON(AccessShareLock)) != 0)
			return true;
	}
	return false;
}

/*
 * Wait until each registered worker holds its backfill (and is counted by
 * EltBackfillWorkerRoom) or has exited, for at most
 * ELT_WORKER_START_WAIT_MS.  A worker takes its hold before it waits for
 * the transaction that launched it, so this does not wait for us.
 */
static void
wait_counted(int64 backfill_id, BackgroundWorkerHandle **handles, int n)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   ELT_WORKER_START_WAIT_MS);
	bool	   *done = palloc0(sizeof(bool) * Max(n, 1));

	for (;;)
	{
		LockData   *data = NULL;
		int			pending = 0;
		int			i;

		for (i = 0; i < n; i++)
		{
			pid_t		pid;
			BgwHandleStatus st;

			if (done[i])
				continue;
			st = GetBackgroundWorkerPid(handles[i], &pid);
			if (st == BGWH_STOPPED || st == BGWH_POSTMASTER_DIED)
				done[i] = true;
			else if (st == BGWH_STARTED)
			{
				if (data == NULL)
					data = GetLockStatusData();
				done[i] = holds_backfill(data, (int) pid, backfill_id);
			}
			if (!done[i])
				pending++;
		}
		if (data != NULL)
		{
			pfree(data->locks);
			pfree(data);
		}
		if (pending == 0 || GetCurrentTimestamp() >= deadline)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(done);
}

/*
 * Register n workers for a backfill, under the launch lock (taken by the
 * caller, who counted the room for them), and wait until they are counted.
 * Returns how many were registered; when fewer than n, reports at elevel
 * (ERROR stops the caller, whose transaction then rolls back and so turns
 * away the workers already registered).
 */
int
EltBackfillLaunch(int64 backfill_id, int32 generation, const char *name,
				  Oid roleoid, int n, int elevel)
{
	BackgroundWorker worker;
	EltWorkerArgs args;
	BackgroundWorkerHandle **handles = palloc(sizeof(BackgroundWorkerHandle *) * Max(n, 1));
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

	Assert(launch_lock_held);
	for (i = 0; i < n; i++)
	{
		if (!RegisterDynamicBackgroundWorker(&worker, &handles[i]))
		{
			ereport(elevel,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start %d background %s for backfill \"%s\"",
							n, n == 1 ? "worker" : "workers", name),
					 errdetail("Every slot of max_worker_processes (%d) is taken.",
							   max_worker_processes),
					 errhint("Start fewer workers, raise max_worker_processes, or run the backfill in a session with CALL elt.backfill_run('%s').",
							 name)));
			break;
		}
	}
	wait_counted(backfill_id, handles, i);
	return i;
}

/*
 * How many workers to relaunch a backfill with: as many as it last had
 * (within what the server allows), none for one run by sessions.
 */
int
EltBackfillWorkerCount(Backfill *bf)
{
	if (bf->runner == NULL || strcmp(bf->runner, "workers") != 0)
		return 0;
	return Min(Max(bf->workers, 1), max_worker_processes);
}

/* "1 worker", "2 workers" */
static char *
bf_workers_text(int n)
{
	return psprintf("%d %s", n, n == 1 ? "worker" : "workers");
}

/*
 * Why no more workers may start for bf now (room, from
 * EltBackfillWorkerRoom), as a sentence.
 */
static char *
bf_cap_detail(Backfill *bf, EltWorkerRoom *room)
{
	if (room->role_binds)
		return psprintf("Role \"%s\" runs %s for its backfills; elt.max_backfill_workers_per_role is %d.",
						bf->owner, bf_workers_text(room->live_role), room->cap_role);
	return psprintf("%s run for backfills in the cluster; elt.max_backfill_workers is %d.",
					bf_workers_text(room->live_all), room->cap_all);
}

/*
 * Take the launch lock and decide how many of wanted workers bf may start
 * now, under the caps (see the file header): the caller launches them
 * with EltBackfillLaunch, then releases the lock.  None: an error (verb
 * says what was refused; nothing changes).  Fewer than wanted: they start,
 * and a NOTICE says why.  Fewer rather than none, because a backfill does the
 * same work with fewer workers, and a resume or retry has no count to lower
 * but the last one; the caller learns the count from the return value.
 */
int
EltBackfillCappedWorkers(Backfill *bf, int wanted, const char *verb)
{
	EltWorkerRoom room;

	EltBackfillLaunchLock();
	EltBackfillWorkerRoom(bf->owner_oid, &room);
	if (room.room == 0 && room.role_binds)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot %s backfill \"%s\" on workers: its role already has as many backfill workers as elt.max_backfill_workers_per_role allows (%d)",
						verb, bf->name, room.cap_role),
				 errdetail("%s", bf_cap_detail(bf, &room)),
				 errhint("Wait for one of the role's backfills to finish or pause one with elt.backfill_pause(), "
						 "or run this one in a session with CALL elt.backfill_run('%s').", bf->name)));
	if (room.room == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot %s backfill \"%s\" on workers: the cluster already has as many backfill workers as elt.max_backfill_workers allows (%d)",
						verb, bf->name, room.cap_all),
				 errdetail("%s", bf_cap_detail(bf, &room)),
				 errhint("Wait for a backfill to finish, or run this one in a session with CALL elt.backfill_run('%s'); "
						 "a superuser can raise elt.max_backfill_workers.", bf->name)));
	if (room.room < wanted)
		ereport(NOTICE,
				(errmsg("backfill \"%s\" gets %d of %s", bf->name, room.room, bf_workers_text(wanted)),
				 errdetail("%s", bf_cap_detail(bf, &room))));
	return Min(room.room, wanted);
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
		/* set before PG_TRY: a variable set inside may be clobbered */
		INSTR_TIME_SET_CURRENT(t0);
		PG_TRY();
		{
			MemoryContext old;

			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			EltBackfillReadCommitted();
			PushActiveSnapshot(GetTransactionSnapshot());
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

/* ---------------------------------------------------------------------
 * After a restart (called by the launcher's per-database scanner)
 * --------------------------------------------------------------------- */

/*
 * Launch workers for every backfill that should be running on workers and
 * has no live process, unless it was launched a moment ago (its workers may
 * still be starting).  An owner that cannot log in any more pauses it.
 */
static void
resume_interrupted(void)
{
	EltCatalogWrite cw;
	List	   *ids = NIL;
	ListCell   *lc;
	uint64		i;

	EltCatalogWriteBegin(&cw);
	/* a row someone holds is someone's business now; look next time */
	if (SPI_execute("SELECT backfill_id FROM elt.backfills"
					" WHERE state = 'running' AND runner = 'workers'"
					"   AND (launched_at IS NULL OR launched_at < pg_catalog.now() - interval '5 seconds')"
					"   AND elt._backfill_live_workers(backfill_id) = 0"
					" FOR UPDATE SKIP LOCKED",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list interrupted backfills");
	for (i = 0; i < SPI_processed; i++)
	{
		int64	   *id = palloc(sizeof(int64));

		*id = spi_int(i, "backfill_id");
		ids = lappend(ids, id);
	}
	foreach(lc, ids)
	{
		Backfill	bf;
		EltWorkerRoom room;
		EltJson		details;
		int			n;

		if (!EltBackfillLoad(&bf, BF_BY_ID, *(int64 *) lfirst(lc), NULL, CurrentMemoryContext))
			continue;
		if (bf.relname == NULL || !EltBackfillKeyIntact(&bf) || !EltBackfillCanLogin(&bf))
		{
			char	   *why = bf.relname == NULL ? "its relation no longer exists" :
				!EltBackfillKeyIntact(&bf) ?
				psprintf("key column \"%s\" was dropped or changed type", bf.key) :
				psprintf("role \"%s\" cannot log in", bf.owner);

			EltBackfillSetState(&bf, "paused", psprintf("could not resume after a restart: %s", why),
						 NULL, 0, false);
			EltBackfillAuditDetails(&details, &bf);
			EltJsonString(&details, "by", "launcher");
			EltBackfillAudit(cw.actor, "backfill_paused", &bf, &details);
			ereport(LOG,
					(errmsg("elt_governance: backfill \"%s\" paused: %s", bf.name, why)));
			continue;
		}
		n = EltBackfillWorkerCount(&bf);
		/* under the caps, as EltBackfillCappedWorkers; at none, wait for the next round */
		EltBackfillLaunchLock();
		EltBackfillWorkerRoom(bf.owner_oid, &room);
		if (room.room == 0)
		{
			EltBackfillLaunchUnlock();
			EltBackfillSetState(&bf, "running",
						 psprintf("waiting for a background worker: %s", bf_cap_detail(&bf, &room)),
						 NULL, 0, false);
			continue;
		}
		n = Min(n, room.room);
		EltBackfillSetState(&bf, "running", NULL, NULL, n, false);	/* launched_at */
		n = EltBackfillLaunch(bf.id, bf.generation, bf.name, bf.owner_oid, n, LOG);
		EltBackfillLaunchUnlock();
		if (n > 0)
		{
			EltBackfillAuditDetails(&details, &bf);
			EltJsonString(&details, "by", "launcher");
			EltJsonInt(&details, "workers", n);
			EltBackfillAudit(bf.owner_oid, "backfill_resumed", &bf, &details);
			ereport(LOG,
					(errmsg("elt_governance: resumed backfill \"%s\" with %d %s",
							bf.name, n, n == 1 ? "worker" : "workers")));
		}
	}
	EltCatalogWriteEnd(&cw);
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
		resume_interrupted();
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* then, in a transaction of its own, the sandboxes past their expiry */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (EltCatalogReady())
	{
		int			n = EltSandboxExpire();

		if (n > 0)
			ereport(LOG,
					(errmsg("elt_governance: dropped %d expired %s", n, n == 1 ? "sandbox" : "sandboxes")));
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	proc_exit(0);
}
