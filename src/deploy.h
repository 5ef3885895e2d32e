/*
 * deploy.h — blue-green deployments.
 */
#ifndef ELT_DEPLOY_H
#define ELT_DEPLOY_H

extern void EltDeployInit(void);

/*
 * The table elt.deploy_init() is moving to the blue color, while its ALTER
 * TABLE ... SET SCHEMA runs (InvalidOid otherwise): a view with the same
 * name and columns takes its place in the same transaction, so the
 * contracts do not classify the move.
 */
extern Oid	EltDeployMovingTable;

#endif							/* ELT_DEPLOY_H */
