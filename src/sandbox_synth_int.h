/*
 * sandbox_synth_int.h — synthetic sandboxes, inside: the plan that
 * sandbox_synth_plan.c makes (tables, their foreign keys, the rows each
 * gets) and sandbox_synth.c follows, and the helpers both use.  Not for
 * other files: sandbox.c sees EltSynth through sandbox.h only.
 */
#ifndef ELT_SANDBOX_SYNTH_INT_H
#define ELT_SANDBOX_SYNTH_INT_H

#include "postgres.h"
#include "access/attnum.h"
#include "nodes/pg_list.h"
#include "sandbox.h"

/* A foreign key between two tables of the sandbox. */
typedef struct SynthFk
{
	char	   *name;
	int			child;			/* index in tables */
	int			parent;
	int			nkeys;
	AttrNumber	ckeys[INDEX_MAX_KEYS];
	AttrNumber	pkeys[INDEX_MAX_KEYS];
	bool		self;			/* filled after the rows: earlier rows */
	bool		one_to_one;		/* the child's columns are unique: parents without repeats */
	bool		nullable;		/* every child column may be NULL */
} SynthFk;

/* A table of the sandbox: its source, copy and the rows it gets. */
typedef struct SynthTable
{
	Oid			relid;
	char	   *src;			/* qualified, quoted */
	char	   *dst;
	int64		asked;
	bool		given;			/* "rows" names it */
	int64		given_rows;
	bool		orphan;			/* a parent it needs has no rows: it gets none */
} SynthTable;

/* The plan of a synthetic sandbox (opaque to sandbox.c). */
struct EltSynth
{
	MemoryContext cxt;
	double		scale;
	int64		seed;
	List	   *given;			/* SynthGiven */
	SynthTable *tables;
	int			ntables;
	SynthFk    *fkeys;
	int			nfkeys;
	int		   *order;
};

/* A table "rows" names, with its count. */
typedef struct SynthGiven
{
	char	   *name;
	Oid			relid;
	int64		rows;
} SynthGiven;

/* sandbox_synth_plan.c */
extern void EltSynthAsReader(Oid reader, Oid *save_user, int *save_sec);
extern int	EltSynthIndex(EltSynth *s, Oid relid);
extern bool EltSynthColumnsUnique(Oid relid, int n, const AttrNumber *keys);

#endif							/* ELT_SANDBOX_SYNTH_INT_H */
