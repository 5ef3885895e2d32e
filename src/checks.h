/*
 * checks.h — quality checks.
 */
#ifndef ELT_CHECKS_H
#define ELT_CHECKS_H

extern char *EltChecksRunGate(const char *candidate, int64 deployment_id, char **failed);

#endif							/* ELT_CHECKS_H */
