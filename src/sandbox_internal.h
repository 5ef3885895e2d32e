/*
 * sandbox_internal.h — what sandbox.c and sandbox_sample.c share: a
 * sandbox being made, its tables and the foreign keys between them.
 */
#ifndef ELT_SANDBOX_INTERNAL_H
#define ELT_SANDBOX_INTERNAL_H

#include "postgres.h"
#include "utils/jsonb.h"

#include "sandbox.h"

/* A source table and its copy. */
typedef struct SbTable
{
	Oid			relid;
	char	   *src;			/* qualified, quoted */
	char	   *from;			/* what reads its rows: ONLY src for a plain table */
	char	   *dst;			/* qualified, quoted */
	char	   *keys;			/* the temporary table of kept ctids (samples) */
	char	   *delta;			/* the kept rows the closure's next round follows */
	char	   *next;			/* the rows this round added */
	char	   *scratch;		/* by key: the rows a step found, before dedup */
	int64		added;			/* rows in delta */
	int64		added_next;		/* rows in next */
	int64		rows;
	char	   *checksum;		/* of the whole source, before a whole copy */
	char	   *sampled;		/* of the source rows a sample took */
	char	   *rules;			/* the masking rules applied, JSON */
	int64		asked;			/* synthetic: the rows it should get */
	bool		bykey;			/* kept rows told apart by key (Citus), not by ctid */
} SbTable;

/* A foreign key between two copied tables. */
typedef struct SbFkey
{
	Oid			conid;
	char	   *name;
	int			child;			/* index in tables */
	int			parent;
	char	   *join;			/* c.a = p.x AND ... */
	char	   *def;			/* FOREIGN KEY (...) REFERENCES, for the copy */
	char	   *def_after;		/* (...) MATCH ... ON UPDATE ... ON DELETE ... DEFERRABLE */
	int64		pulled;			/* rows it added to the closure */
} SbFkey;

typedef struct Sandbox
{
	char	   *name;
	Oid			owner;
	Oid			creator;
	List	   *schemas;		/* char * */
	bool		masked;
	int64		seed;
	Jsonb	   *sample;			/* NULL: full copies */
	double		percent;		/* -1: none */
	int64		nrows;			/* -1: none */
	Oid			root;
	char	   *where;
	int64		max_rows;
	SbTable    *tables;
	int			ntables;
	SbFkey	   *fkeys;
	int			nfkeys;
	Oid			schema_oid;
	EltSynth   *synth;			/* synthetic rows (sandbox_synth.c), or NULL */
	bool		citus;			/* a source is a Citus table: rows kept by key, not ctid */
} Sandbox;

extern int	EltSandboxTableIndex(Sandbox *sb, Oid relid);
extern void EltSandboxSample(Sandbox *sb, Oid reader);
extern char *EltSandboxKeptRows(SbTable *t, const char *alias, const char *keys);
extern char *EltSandboxKeptChecksum(SbTable *t);

#endif							/* ELT_SANDBOX_INTERNAL_H */
