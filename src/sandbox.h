/*
 * sandbox.h — sandboxes: what the launcher's scanner calls (sandbox.c);
 * runs in a sandbox (sandbox_run.c), called by transform_run.c and
 * replay.c; synthetic rows (sandbox_synth_plan.c, sandbox_synth.c), what
 * sandbox.c calls.
 */
#ifndef ELT_SANDBOX_H
#define ELT_SANDBOX_H

#include "postgres.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "manifest.h"

extern int	EltSandboxExpire(void);
extern char *EltSandboxUnknownKey(Jsonb *j, const char *const *known);

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

/* sandbox_synth_plan.c and sandbox_synth.c: rows generated from the sources' statistics */
typedef struct EltSynth EltSynth;

extern EltSynth *EltSynthParse(Jsonb *sample, int64 *seed);
extern int *EltSynthPlan(EltSynth *s, int64 seed, int ntables, const Oid *relids,
						 const char *const *dsts, Oid reader);
extern int64 EltSynthRows(EltSynth *s, Oid relid, Relation rel, bool masked, Oid reader,
						  int64 *asked);
extern void EltSynthFinish(EltSynth *s, Oid reader);

#endif							/* ELT_SANDBOX_H */
