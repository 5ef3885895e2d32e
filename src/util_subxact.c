/*
 * util_subxact.c — running a piece of work in an internal subtransaction.
 *
 * Owns: the one way engines run something that may fail without failing
 * the caller's transaction — a quality check, a chunk of a backfill, the
 * body of a transform run, a lock attempt of a deployment switch.
 *
 * EltSubxactBegin / EltSubxactCommit / EltSubxactRollback pair up for code
 * that decides itself whether to keep the work (no error involved).
 * EltTrySubxact runs a function and catches its error: the subtransaction is
 * rolled back (with everything it did: SPI connections, GUC changes, locks,
 * the user id) and the error comes back, copied into the caller's memory
 * context, for the caller to record, rethrow (ReThrowError) or turn into a
 * status.  Either way the caller's memory context and resource owner are
 * what they were before.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/resowner.h"

#include "util.h"

/* Start an internal subtransaction; the caller's memory context stays current. */
void
EltSubxactBegin(EltSubxact *s)
{
	s->cxt = CurrentMemoryContext;
	s->owner = CurrentResourceOwner;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(s->cxt);
}

/* Commit the subtransaction started by EltSubxactBegin. */
void
EltSubxactCommit(EltSubxact *s)
{
	ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(s->cxt);
	CurrentResourceOwner = s->owner;
}

/* Roll back the subtransaction started by EltSubxactBegin. */
void
EltSubxactRollback(EltSubxact *s)
{
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(s->cxt);
	CurrentResourceOwner = s->owner;
}

/*
 * Run fn(arg) in a subtransaction.  Returns NULL when fn returned (the
 * subtransaction is committed), or the error fn raised (the subtransaction
 * is rolled back and the error state flushed).  fn keeps what it must hand
 * back in *arg, allocated in the caller's memory context (the one current
 * when EltTrySubxact was called, and current again when fn starts).
 */
ErrorData *
EltTrySubxact(void (*fn) (void *arg), void *arg)
{
	EltSubxact	s;
	ErrorData  *volatile error = NULL;

	EltSubxactBegin(&s);
	PG_TRY();
	{
		fn(arg);
		EltSubxactCommit(&s);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(s.cxt);
		error = CopyErrorData();
		FlushErrorState();
		EltSubxactRollback(&s);
	}
	PG_END_TRY();
	return error;
}
