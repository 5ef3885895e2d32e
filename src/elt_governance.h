/*
 * elt_governance.h — module-wide settings (GUCs) of elt_governance.
 */
#ifndef ELT_GOVERNANCE_H
#define ELT_GOVERNANCE_H

#include "postgres.h"

/* elt.enabled: superuser-only switch; off skips all DDL capture */
extern bool elt_enabled;
/* elt.reason: recorded as the reason of governance actions of the session */
extern char *elt_reason;

#endif							/* ELT_GOVERNANCE_H */
