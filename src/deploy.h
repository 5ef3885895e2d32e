/*
 * deploy.h — blue-green deployments.
 */
#ifndef ELT_DEPLOY_H
#define ELT_DEPLOY_H

extern void EltDeployInit(void);

#endif							/* ELT_DEPLOY_H */
