/*
 * citus.h — what governance knows about Citus (citus.c): which relations are
 * shards, and how a Citus table is distributed.  Read from Citus's catalogs
 * by name; elt_governance does not link against Citus.
 */
#ifndef ELT_CITUS_H
#define ELT_CITUS_H

#include "postgres.h"

#include "nodes/nodes.h"

#include "util.h"

/* How a Citus table is distributed (pg_dist_partition). */
typedef struct EltCitusTable
{
	char		method;			/* 'h' hash, 'n' none (reference or local), 'r', 'a' */
	char	   *column;			/* the distribution column; NULL for method 'n' */
	int32		colocation;		/* colocation group id (0: none) */
	char		replication;	/* repmodel: 's' streaming, 't' two-phase (reference) */
} EltCitusTable;

extern bool EltIsCitusShard(Oid relid);
extern void EltCitusStageBegin(Oid nspoid, const char *relname);
extern void EltCitusStageEnd(void);
extern bool EltCitusShardStatement(Node *parsetree);
extern bool EltCitusTableInfo(Oid relid, EltCitusTable *info);
extern void EltCitusDistributionJson(EltJson *out, Oid relid);
extern bool EltCitusInstalled(void);
extern char EltCitusDistributeAs(Oid copy, const char *method, const char *column, Oid colocate_with);
extern char EltCitusDistributeLike(Oid copy, Oid source, Oid colocate_with);
extern int	EltCitusSequentialForSchema(Oid nsp);
extern void EltCitusSequential(void);
extern bool EltCitusSessionGpid(int64 *gpid);

#endif							/* ELT_CITUS_H */
