/*
 * audit_replay.h — what audit_verify.c uses of audit_replay.c: the
 * replays of the tables the extension updates (what the audit log says
 * they hold), and the helpers both files use to read an audit row's
 * details and to word a difference.  Private to the two files.
 */
#ifndef ELT_AUDIT_REPLAY_H
#define ELT_AUDIT_REPLAY_H

#include "nodes/pg_list.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"

/* The replays of one verification: what the audit log says the tables hold. */
typedef struct Replay
{
	List	   *targets;
	bool		targets_ok;		/* false: an action could not be replayed */
	HTAB	   *checks;			/* NULL: no elt.check_defs in this catalog */
	bool		checks_ok;
	bool		has_contracts;	/* approvers and migrations are in this catalog */
	List	   *approvers;
	bool		approvers_ok;
	HTAB	   *migrations;
	HTAB	   *approvals;
	bool		migrations_ok;
} Replay;

/*
 * Whether the caller of audit_verify may read what it compares in full
 * (set by elt.audit_verify before the comparisons).
 */
extern bool EltVerifyReveals;

extern void EltReplayInit(Replay *rp, MemoryContext cxt);
extern void EltReplayRow(Replay *rp, MemoryContext cxt, int64 id, const char *action, const char *object,
						 const char *role, const char *reason, Datum details);
extern char *EltReplayCompareAll(Replay *rp, MemoryContext cxt);

extern char *EltJsonbTextMember(Jsonb *jb, const char *key);
extern char *EltJsonbMemberAsText(Jsonb *jb, const char *key, bool *present);
extern bool EltVerifyTextDiffers(const char *a, const char *b);
extern const char *EltVerifyShown(const char *value);
extern char *EltVerifyQuoted(const char *value);
extern char *EltVerifyDiffers(const char *table, const char *field, const char *value, const char *what,
							  const char *said);

#endif							/* ELT_AUDIT_REPLAY_H */
