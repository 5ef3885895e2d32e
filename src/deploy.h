/*
 * deploy.h — blue-green deployments.
 */
#ifndef ELT_DEPLOY_H
#define ELT_DEPLOY_H

#include "nodes/nodes.h"

extern void EltDeployInit(void);

/*
 * The table elt.deploy_init() is moving to the blue color, while its ALTER
 * TABLE ... SET SCHEMA runs (InvalidOid otherwise): a view with the same
 * name and columns takes its place in the same transaction, so the
 * contracts do not classify the move.
 */
extern Oid	EltDeployMovingTable;

/*
 * From ddl_command_start, whatever elt.enabled and the policies: refuse
 * ALTER TABLE ... ENABLE or FORCE ROW LEVEL SECURITY on a table of a color
 * schema of an interface, and moving a table with row level security into
 * one (the interface's views would read it as their owner, so its policies
 * would restrict no reader).
 */
extern void EltDeployGuardRowSecurity(Node *parsetree);

#endif							/* ELT_DEPLOY_H */
