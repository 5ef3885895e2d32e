/*
 * deploy_int.h — what the two halves of the deployments engine share:
 * deploy.c (the SQL API that makes and drops colors, the row level
 * security guard, and the helpers below) and deploy_switch.c (locking an
 * interface's views and switching them: promote, rollback, canary).
 * deploy_switch.c calls deploy.c, never the other way round.  Not for
 * other engines: they use deploy.h.
 */
#ifndef ELT_DEPLOY_INT_H
#define ELT_DEPLOY_INT_H

#include "fmgr.h"
#include "utils/timestamp.h"

#include "util.h"

/* A deployment as the catalog has it. */
typedef struct Deployment
{
	int64		id;				/* 0: none */
	char	   *state;
	char	   *from_color;
	char	   *to_color;
	TimestampTz promoted_at;
} Deployment;

/* An interface as the catalog has it. */
typedef struct Interface
{
	char	   *name;
	Oid			nsp;
	char	   *live_color;
	Oid			owner;
	int64		canary;			/* deployment a canary reads, 0: none */
	Deployment last;
} Interface;

/*
 * A view outside an interface schema that reads one of its relations (its
 * tables at deploy_init, its views at a forced switch), as it was before:
 * enough to make it again, as its owner, reading what then has the name.
 */
typedef struct DeployOutsideView
{
	Oid			oid;
	Oid			owner;
	char	   *name;			/* qualified, quoted */
	char	   *reads;			/* the relations it reads, for messages */
	char	   *options;		/* " WITH (...)" or "" */
	char	   *definition;		/* pg_get_viewdef(), every name qualified */
	List	   *grants;			/* its owner, grants and comments as statements (when asked) */
} DeployOutsideView;

extern char *EltDeployColorSchema(const char *interface, const char *color);
extern char *EltDeployInterfaceArg(FunctionCallInfo fcinfo, int argno);
extern void EltDeployLoadInterface(const char *name, Interface *iface);
extern void EltDeployRefuseRowSecurity(const char *interface, const char *action, const char *a, const char *b);
extern void EltDeployExecGenerated(const char *query, int nargs, Oid *types, Datum *values);
extern void EltDeployCopyRelationGrants(Oid src, const char *object, const char *target_rel, bool comments);
extern List *EltDeployOutsideViews(Oid *rels, int nrels, Oid inside, const char *interface, bool transitive,
								   bool grants, MemoryContext cxt);
extern void EltDeployRequireViewOwner(DeployOutsideView *v, const char *interface);
extern void EltDeployRemakeOutsideView(DeployOutsideView *v, const char *interface, bool replace);
extern void EltDeployRecordEvent(EltCatalogWrite *cw, int64 deployment_id, const char *interface, const char *action,
								 const char *reason, const char *details);

#endif							/* ELT_DEPLOY_INT_H */
