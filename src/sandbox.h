/*
 * sandbox.h — sandboxes: what the launcher's scanner calls (sandbox.c), and
 * runs in a sandbox (sandbox_run.c), called by transform_run.c and replay.c.
 */
#ifndef ELT_SANDBOX_H
#define ELT_SANDBOX_H

#include "postgres.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "manifest.h"

extern int	EltSandboxExpire(void);

/* A sandbox opened for a run: its schema, and its copies by source. */
typedef struct EltSandboxMap
{
	char	   *name;
	Oid			owner;
	Oid			nsp;
	char	   *schema;			/* the schema's name now */
	List	   *sources;		/* Oid of each source table */
	List	   *copies;			/* Oid of its copy, in the same order */
} EltSandboxMap;

extern void EltSandboxOpen(EltSandboxMap *m, const char *name);
extern Oid	EltSandboxTarget(EltSandboxMap *m, Oid target);
extern Oid	EltSandboxRelationByName(const char *qualified);
extern void EltSandboxStep(EltSandboxMap *m, EltRunStep *st, List *relids, List *names, Oid author,
						   const char *what);
extern int64 EltSandboxTransformRun(const char *name, Jsonb *params, const char *sandbox, const char *sql,
									int version);

#endif							/* ELT_SANDBOX_H */
