/*
 * sandbox.h — sandboxes (sandbox.c): what the launcher's scanner calls;
 * synthetic rows (sandbox_synth_plan.c, sandbox_synth.c): what sandbox.c
 * calls.
 */
#ifndef ELT_SANDBOX_H
#define ELT_SANDBOX_H

#include "postgres.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

extern int	EltSandboxExpire(void);

/* sandbox_synth_plan.c and sandbox_synth.c: rows generated from the sources' statistics */
typedef struct EltSynth EltSynth;

extern EltSynth *EltSynthParse(Jsonb *sample, int64 *seed);
extern int *EltSynthPlan(EltSynth *s, int64 seed, int ntables, const Oid *relids,
						 const char *const *dsts, Oid reader);
extern int64 EltSynthRows(EltSynth *s, Oid relid, Relation rel, bool masked, Oid reader,
						  int64 *asked);
extern void EltSynthFinish(EltSynth *s, Oid reader);

#endif							/* ELT_SANDBOX_H */
